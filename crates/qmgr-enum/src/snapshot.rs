//! The immutable list an enumerator walks.

use std::sync::Arc;

use crate::SnapshotEnumerator;

/// An immutable list of items taken once, when an enumerator is created.
///
/// The items live in one shared allocation: cloning a snapshot (or an enumerator over it)
/// copies a pointer, never the items. Because the list is owned by the snapshot, later
/// changes to the collection it was built from — a job added to the queue, a file added
/// to a job — never alter it.
#[derive(Debug)]
pub struct Snapshot<T> {
    items: Arc<[T]>,
}

impl<T> Snapshot<T> {
    /// Takes ownership of `items` as the snapshot's content, in order.
    pub fn new(items: impl Into<Arc<[T]>>) -> Self {
        Self {
            items: items.into(),
        }
    }

    /// The number of items (what `GetCount` reports).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// All items, in enumeration order.
    pub fn as_slice(&self) -> &[T] {
        &self.items
    }

    /// A new enumerator over this snapshot, positioned before the first item.
    pub fn enumerator(&self) -> SnapshotEnumerator<T> {
        SnapshotEnumerator::new(self.clone())
    }

    /// Whether two snapshots share the same storage (one is a clone of the other).
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.items, &b.items)
    }

    /// How many snapshots and enumerators currently share this storage.
    pub fn share_count(&self) -> usize {
        Arc::strong_count(&self.items)
    }
}

// Written by hand so that cloning needs no `T: Clone`: only the pointer is copied.
impl<T> Clone for Snapshot<T> {
    fn clone(&self) -> Self {
        Self {
            items: Arc::clone(&self.items),
        }
    }
}

impl<T> From<Vec<T>> for Snapshot<T> {
    fn from(items: Vec<T>) -> Self {
        Self::new(items)
    }
}

impl<T> FromIterator<T> for Snapshot<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Self {
            items: iter.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_changes_to_the_source_do_not_reach_the_snapshot() {
        let mut queue = vec![String::from("job-1"), String::from("job-2")];
        let snapshot = Snapshot::new(queue.clone());
        queue.push(String::from("job-3"));
        queue[0].push_str("-renamed");
        queue.remove(1);

        assert_eq!(snapshot.len(), 2);
        assert_eq!(snapshot.as_slice(), ["job-1", "job-2"]);
    }

    #[test]
    fn clones_share_one_allocation() {
        let snapshot: Snapshot<u32> = (1..=3).collect();
        assert_eq!(snapshot.share_count(), 1);
        let copy = snapshot.clone();
        assert!(Snapshot::ptr_eq(&snapshot, &copy));
        assert_eq!(snapshot.share_count(), 2);
        drop(copy);
        assert_eq!(snapshot.share_count(), 1);
    }

    #[test]
    fn equal_contents_built_separately_are_distinct_snapshots() {
        let a = Snapshot::from(vec![1, 2]);
        let b = Snapshot::from(vec![1, 2]);
        assert!(!Snapshot::ptr_eq(&a, &b));
        assert_eq!(a.as_slice(), b.as_slice());
    }

    #[test]
    fn empty_snapshot_reports_empty() {
        let snapshot = Snapshot::<u8>::new(Vec::new());
        assert!(snapshot.is_empty());
        assert_eq!(snapshot.len(), 0);
        let non_empty = Snapshot::new([7_u8]);
        assert!(!non_empty.is_empty());
    }

    #[test]
    fn clone_does_not_require_cloneable_items() {
        struct NotClone(u8);
        let snapshot = Snapshot::new(vec![NotClone(4)]);
        let copy = snapshot.clone();
        assert_eq!(copy.as_slice()[0].0, 4);
    }
}
