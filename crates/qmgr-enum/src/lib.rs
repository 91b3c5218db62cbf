//! Snapshot enumerators with the semantics of BITS' COM enumerators
//! (`IEnumBackgroundCopyJobs`, `IEnumBackgroundCopyFiles`, `IEnumBackgroundCopyGroups`).
//!
//! `EnumJobs`, `EnumFiles` and `EnumGroups` take a [`Snapshot`] of the queue when they are
//! called; jobs or files added or removed afterwards never show up in it, and the objects
//! it holds stay valid even if a job is cancelled meanwhile. Each COM enumerator is a
//! [`SnapshotEnumerator`]: the shared snapshot plus a cursor of its own.
//!
//! | COM method | here | result |
//! |---|---|---|
//! | `Next(celt, rgelt, pceltFetched)` | [`SnapshotEnumerator::next`] | `S_OK` if [`Fetched::All`], `S_FALSE` if [`Fetched::Short`] |
//! | `Skip(celt)` | [`SnapshotEnumerator::skip`] | `S_OK` if [`Fetched::All`], `S_FALSE` if [`Fetched::Short`] |
//! | `Reset()` | [`SnapshotEnumerator::reset`] | `S_OK` |
//! | `Clone(ppenum)` | [`Clone::clone`] | `S_OK`; same snapshot and position, independent cursor |
//! | `GetCount(puCount)` | [`SnapshotEnumerator::count`] | `S_OK`; snapshot size, whatever the cursor |
//!
//! ```
//! use qmgr_enum::{Fetched, Snapshot};
//!
//! let mut jobs = Snapshot::new(vec!["a", "b", "c"]).enumerator();
//! let first = jobs.next(2);
//! assert_eq!((first.items, first.fetched), (&["a", "b"][..], Fetched::All));
//!
//! let mut saved = jobs.clone();
//! let rest = jobs.next(5);
//! assert_eq!((rest.items, rest.fetched), (&["c"][..], Fetched::Short));
//! assert_eq!(saved.next(1).items, ["c"]);
//! assert_eq!(jobs.count(), 3);
//! ```

#![forbid(unsafe_code)]

mod enumerator;
mod snapshot;

pub use enumerator::{Batch, Fetched, SnapshotEnumerator};
pub use snapshot::Snapshot;
