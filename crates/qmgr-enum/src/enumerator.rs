//! A cursor over a [`Snapshot`], with `Next`/`Skip`/`Reset`/`Clone`/`GetCount` semantics.

use crate::Snapshot;

/// Whether a [`SnapshotEnumerator::next`] or [`SnapshotEnumerator::skip`] call got as many
/// items as it asked for.
///
/// This is the `S_OK` / `S_FALSE` distinction of COM enumerators: a request that runs into
/// the end of the snapshot is not an error, it is a short answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fetched {
    /// Every requested item was returned or skipped (`S_OK`). Asking for zero items is
    /// always answered with `All`.
    All,
    /// The end of the snapshot came first: fewer items than requested, possibly none
    /// (`S_FALSE`).
    Short,
}

impl Fetched {
    fn comparing(requested: usize, served: usize) -> Self {
        if served == requested {
            Self::All
        } else {
            Self::Short
        }
    }

    /// `true` for [`Fetched::All`].
    pub const fn is_all(self) -> bool {
        matches!(self, Self::All)
    }
}

/// The answer of [`SnapshotEnumerator::next`]: the items, borrowed from the snapshot, and
/// whether there were as many as requested.
///
/// `items.len()` is what `Next` stores in `*pceltFetched`.
#[derive(Debug, PartialEq, Eq)]
pub struct Batch<'a, T> {
    pub items: &'a [T],
    pub fetched: Fetched,
}

/// An enumerator: a shared, immutable [`Snapshot`] and this enumerator's own cursor.
///
/// The cursor is the index of the next item `next` returns; it runs from 0 (before the
/// first item) to [`count`](Self::count) (past the last) and never beyond.
///
/// Cloning (COM `Clone`) gives an enumerator over the very same snapshot — no item is
/// copied — at the same position; from then on the two cursors move independently.
/// The type is `Send` and `Sync` whenever `T` is.
#[derive(Debug)]
pub struct SnapshotEnumerator<T> {
    snapshot: Snapshot<T>,
    position: usize,
}

impl<T> SnapshotEnumerator<T> {
    /// An enumerator over `snapshot`, positioned before its first item.
    pub fn new(snapshot: Snapshot<T>) -> Self {
        Self {
            snapshot,
            position: 0,
        }
    }

    /// Returns up to `n` items from the cursor on and moves the cursor past them
    /// (COM `Next`).
    ///
    /// Fewer than `n` items — none at all once the cursor is at the end — come with
    /// [`Fetched::Short`]. `next(0)` returns no items, leaves the cursor alone and
    /// answers [`Fetched::All`].
    pub fn next(&mut self, n: usize) -> Batch<'_, T> {
        let start = self.position;
        let taken = n.min(self.remaining());
        self.position += taken;
        Batch {
            items: &self.snapshot.as_slice()[start..self.position],
            fetched: Fetched::comparing(n, taken),
        }
    }

    /// Moves the cursor forward by `n` items (COM `Skip`).
    ///
    /// If fewer than `n` items remain, the cursor stops at the end and the answer is
    /// [`Fetched::Short`].
    pub fn skip(&mut self, n: usize) -> Fetched {
        let skipped = n.min(self.remaining());
        self.position += skipped;
        Fetched::comparing(n, skipped)
    }

    /// Moves the cursor back before the first item (COM `Reset`). The snapshot is not
    /// retaken: items added to the queue since the enumerator was created stay invisible.
    pub fn reset(&mut self) {
        self.position = 0;
    }

    /// The number of items in the snapshot (COM `GetCount`), independent of the cursor.
    pub fn count(&self) -> usize {
        self.snapshot.len()
    }

    /// The index of the next item [`next`](Self::next) returns; equals
    /// [`count`](Self::count) at the end.
    pub fn position(&self) -> usize {
        self.position
    }

    /// How many items lie between the cursor and the end.
    pub fn remaining(&self) -> usize {
        self.snapshot.len() - self.position
    }

    /// The snapshot this enumerator walks (shared with its clones).
    pub fn snapshot(&self) -> &Snapshot<T> {
        &self.snapshot
    }
}

// Written by hand so that cloning needs no `T: Clone`: the snapshot is shared, not copied.
impl<T> Clone for SnapshotEnumerator<T> {
    fn clone(&self) -> Self {
        Self {
            snapshot: self.snapshot.clone(),
            position: self.position,
        }
    }
}

impl<T> From<Snapshot<T>> for SnapshotEnumerator<T> {
    fn from(snapshot: Snapshot<T>) -> Self {
        Self::new(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letters() -> SnapshotEnumerator<char> {
        Snapshot::new(vec!['a', 'b', 'c', 'd', 'e']).enumerator()
    }

    #[test]
    fn next_returns_items_in_order_and_advances() {
        let mut e = letters();
        let batch = e.next(2);
        assert_eq!(batch.items, ['a', 'b']);
        assert_eq!(batch.fetched, Fetched::All);
        assert_eq!(e.position(), 2);
        assert_eq!(e.next(1).items, ['c']);
        assert_eq!(e.position(), 3);
    }

    #[test]
    fn next_across_the_end_is_short_with_the_rest() {
        let mut e = letters();
        e.skip(3);
        let batch = e.next(10);
        assert_eq!(batch.items, ['d', 'e']);
        assert_eq!(batch.fetched, Fetched::Short);
        assert_eq!(e.position(), 5);
    }

    #[test]
    fn next_exactly_to_the_end_is_complete() {
        let mut e = letters();
        let batch = e.next(5);
        assert_eq!(batch.items.len(), 5);
        assert_eq!(batch.fetched, Fetched::All);
    }

    #[test]
    fn next_at_the_end_returns_nothing_and_is_short() {
        let mut e = letters();
        e.next(5);
        for _ in 0..2 {
            let batch = e.next(1);
            assert!(batch.items.is_empty());
            assert_eq!(batch.fetched, Fetched::Short);
            assert_eq!(e.position(), 5);
        }
    }

    #[test]
    fn next_zero_returns_nothing_and_is_complete_anywhere() {
        let mut e = letters();
        let batch = e.next(0);
        assert!(batch.items.is_empty());
        assert_eq!(batch.fetched, Fetched::All);
        assert_eq!(e.position(), 0);
        e.skip(5);
        assert_eq!(e.next(0).fetched, Fetched::All);
        assert_eq!(e.position(), 5);
    }

    #[test]
    fn huge_requests_do_not_overflow() {
        let mut e = letters();
        e.skip(1);
        assert_eq!(e.next(usize::MAX).items.len(), 4);
        e.reset();
        e.skip(2);
        assert_eq!(e.skip(usize::MAX), Fetched::Short);
        assert_eq!(e.position(), 5);
    }

    #[test]
    fn skip_within_range_is_complete() {
        let mut e = letters();
        assert_eq!(e.skip(2), Fetched::All);
        assert_eq!(e.position(), 2);
        assert_eq!(e.skip(0), Fetched::All);
        assert_eq!(e.position(), 2);
        assert_eq!(e.skip(3), Fetched::All);
        assert_eq!(e.position(), 5);
        assert_eq!(e.next(1).fetched, Fetched::Short);
    }

    #[test]
    fn skip_past_the_end_is_short_and_stops_at_the_end() {
        let mut e = letters();
        e.skip(4);
        assert_eq!(e.skip(3), Fetched::Short);
        assert_eq!(e.position(), 5);
        assert_eq!(e.skip(1), Fetched::Short);
        assert_eq!(e.position(), 5);
        assert_eq!(e.skip(0), Fetched::All);
    }

    #[test]
    fn reset_rewinds_to_the_first_item() {
        let mut e = letters();
        e.next(4);
        e.reset();
        assert_eq!(e.position(), 0);
        assert_eq!(e.next(1).items, ['a']);
    }

    #[test]
    fn count_is_the_snapshot_size_wherever_the_cursor_is() {
        let mut e = letters();
        assert_eq!(e.count(), 5);
        e.next(3);
        assert_eq!(e.count(), 5);
        assert_eq!(e.remaining(), 2);
        e.skip(10);
        assert_eq!(e.count(), 5);
        assert_eq!(e.remaining(), 0);
        e.reset();
        assert_eq!(e.count(), 5);
    }

    #[test]
    fn empty_snapshot_is_at_its_end_from_the_start() {
        let mut e = SnapshotEnumerator::from(Snapshot::<u8>::new(Vec::new()));
        assert_eq!(e.count(), 0);
        assert_eq!(e.next(1).fetched, Fetched::Short);
        assert_eq!(e.skip(1), Fetched::Short);
        assert_eq!(e.next(0).fetched, Fetched::All);
    }

    #[test]
    fn clone_starts_at_the_same_position() {
        let mut original = letters();
        original.next(2);
        let mut copy = original.clone();
        assert_eq!(copy.position(), 2);
        assert_eq!(copy.next(1).items, ['c']);
    }

    #[test]
    fn advancing_the_clone_leaves_the_original_alone() {
        let mut original = letters();
        original.skip(1);
        let mut copy = original.clone();
        copy.next(3);
        copy.reset();
        copy.skip(4);
        assert_eq!(original.position(), 1);
        assert_eq!(original.next(1).items, ['b']);
    }

    #[test]
    fn advancing_the_original_leaves_the_clone_alone() {
        let mut original = letters();
        original.skip(1);
        let mut copy = original.clone();
        original.next(10);
        original.reset();
        assert_eq!(copy.position(), 1);
        assert_eq!(copy.next(2).items, ['b', 'c']);
    }

    #[test]
    fn clones_share_the_snapshot_storage() {
        let original = letters();
        let copy = original.clone();
        let copy_of_copy = copy.clone();
        assert!(Snapshot::ptr_eq(original.snapshot(), copy.snapshot()));
        assert!(Snapshot::ptr_eq(
            original.snapshot(),
            copy_of_copy.snapshot()
        ));
        assert_eq!(original.snapshot().share_count(), 3);
        drop(copy_of_copy);
        assert_eq!(original.snapshot().share_count(), 2);
    }

    #[test]
    fn enumerators_from_one_snapshot_share_it_but_not_cursors() {
        let snapshot = Snapshot::new(vec![1, 2, 3]);
        let mut first = snapshot.enumerator();
        let mut second = snapshot.enumerator();
        assert!(Snapshot::ptr_eq(first.snapshot(), &snapshot));
        first.next(2);
        assert_eq!(second.next(1).items, [1]);
        assert_eq!(first.next(1).items, [3]);
    }

    #[test]
    fn queue_changes_after_creation_are_invisible_even_after_reset() {
        let mut queue = vec![10, 20];
        let mut e = Snapshot::new(queue.clone()).enumerator();
        queue.push(30);
        e.next(2);
        e.reset();
        assert_eq!(e.count(), 2);
        let batch = e.next(3);
        assert_eq!(batch.items, [10, 20]);
        assert_eq!(batch.fetched, Fetched::Short);
    }

    #[test]
    fn fetched_reports_completeness() {
        assert!(Fetched::All.is_all());
        assert!(!Fetched::Short.is_all());
    }

    #[test]
    fn enumerators_cross_threads_when_items_do() {
        fn assert_send_sync<V: Send + Sync>() {}
        assert_send_sync::<SnapshotEnumerator<String>>();
        assert_send_sync::<Snapshot<std::sync::Arc<String>>>();

        let mut e = letters();
        e.skip(1);
        let mut moved = e.clone();
        let from_thread = std::thread::spawn(move || moved.next(2).items.to_vec())
            .join()
            .expect("thread panicked");
        assert_eq!(from_thread, ['b', 'c']);
        assert_eq!(e.position(), 1);
    }
}
