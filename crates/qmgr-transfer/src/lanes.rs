//! Lanes: the transfers given one lane (the files of one job) run at most `width` at once,
//! and the engine starts the lane's next waiting transfer the moment one of its transfers
//! ends. A caller that hands over a job's next files ahead of time thus keeps its transfers
//! busy without a round trip through its own thread for each file: for a job of small
//! files, that round trip was longer than the files took.

use std::collections::VecDeque;

use crate::request::{CheckedRequest, TransferId};

/// The lane a transfer waits in, and how many of the lane's transfers may run at once.
/// Every request of a lane carries the width; the latest one given is the lane's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lane {
    /// Chosen by the caller; transfers with the same key share the lane.
    pub key: u64,
    /// At least 1 (0 counts as 1).
    pub width: u32,
}

/// A transfer handed over but not started: what the caller said of it meanwhile is kept
/// for its start.
pub(crate) struct Waiting {
    pub id: TransferId,
    pub checked: Box<CheckedRequest>,
    /// Paused by the caller before it started.
    pub held: bool,
    /// Its own cap in bytes per second, if one was set before it started.
    pub limit: Option<u64>,
}

struct Queue {
    width: usize,
    waiting: VecDeque<Waiting>,
}

/// The waiting transfers of every lane, in the order they were handed over.
#[derive(Default)]
pub(crate) struct Lanes {
    queues: foldhash::HashMap<u64, Queue>,
    /// The lane of each waiting transfer, for cancelling one without a search.
    lane_of: foldhash::HashMap<TransferId, u64>,
}

impl Lanes {
    /// Puts a transfer at the end of its lane, whose width becomes the lane's.
    pub(crate) fn enqueue(&mut self, lane: Lane, waiting: Waiting) {
        self.lane_of.insert(waiting.id, lane.key);
        let queue = self.queues.entry(lane.key).or_insert_with(|| Queue {
            width: 1,
            waiting: VecDeque::new(),
        });
        queue.width = width(lane.width);
        queue.waiting.push_back(waiting);
    }

    /// A new width for the lane's next starts; nothing happens to transfers under way.
    pub(crate) fn set_width(&mut self, key: u64, new_width: u32) {
        if let Some(queue) = self.queues.get_mut(&key) {
            queue.width = width(new_width);
        }
    }

    /// A waiting transfer, for what the caller says of it before it starts.
    pub(crate) fn get_mut(&mut self, id: TransferId) -> Option<&mut Waiting> {
        let key = self.lane_of.get(&id)?;
        self.queues
            .get_mut(key)?
            .waiting
            .iter_mut()
            .find(|waiting| waiting.id == id)
    }

    /// Takes a waiting transfer out of its lane (it was cancelled).
    pub(crate) fn remove(&mut self, id: TransferId) -> Option<Waiting> {
        let key = self.lane_of.remove(&id)?;
        let queue = self.queues.get_mut(&key)?;
        let position = queue.waiting.iter().position(|waiting| waiting.id == id)?;
        let waiting = queue.waiting.remove(position);
        if queue.waiting.is_empty() {
            self.queues.remove(&key);
        }
        waiting
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// The transfers that may start now, in their lanes' order: each lane's first ones, as
    /// many as its width leaves room for beside `running(key)` transfers under way.
    pub(crate) fn ready(&mut self, running: impl Fn(u64) -> usize) -> Vec<Waiting> {
        let mut ready = Vec::new();
        self.queues.retain(|&key, queue| {
            let room = queue.width.saturating_sub(running(key));
            for waiting in queue.waiting.drain(..room.min(queue.waiting.len())) {
                self.lane_of.remove(&waiting.id);
                ready.push(waiting);
            }
            !queue.waiting.is_empty()
        });
        ready
    }

    /// Every waiting transfer (the engine stops).
    pub(crate) fn drain(&mut self) -> Vec<Waiting> {
        self.lane_of.clear();
        self.queues
            .drain()
            .flat_map(|(_, queue)| queue.waiting)
            .collect()
    }
}

fn width(width: u32) -> usize {
    usize::try_from(width.max(1)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{TransferRequest, check};

    fn waiting(id: u64) -> Waiting {
        let request = TransferRequest::new("http://127.0.0.1:9/f", "/tmp/qmgr-lanes-test/f");
        Waiting {
            id: TransferId(id),
            checked: Box::new(check(request).expect("a valid request")),
            held: false,
            limit: None,
        }
    }

    fn ids(ready: &[Waiting]) -> Vec<u64> {
        ready.iter().map(|waiting| waiting.id.0).collect()
    }

    #[test]
    fn a_lane_starts_its_transfers_in_order_up_to_its_width_beside_those_running() {
        let mut lanes = Lanes::default();
        for id in 1..=5 {
            lanes.enqueue(Lane { key: 7, width: 2 }, waiting(id));
        }
        assert_eq!(ids(&lanes.ready(|_| 0)), [1, 2]);
        assert!(lanes.ready(|_| 2).is_empty(), "two run: no room");
        assert_eq!(ids(&lanes.ready(|_| 1)), [3]);
        lanes.set_width(7, 4);
        assert_eq!(ids(&lanes.ready(|_| 2)), [4, 5]);
        assert!(lanes.is_empty(), "an emptied lane is forgotten");
    }

    #[test]
    fn lanes_are_counted_apart_and_a_width_of_zero_counts_as_one() {
        let mut lanes = Lanes::default();
        lanes.enqueue(Lane { key: 1, width: 0 }, waiting(1));
        lanes.enqueue(Lane { key: 1, width: 0 }, waiting(2));
        lanes.enqueue(Lane { key: 2, width: 1 }, waiting(3));
        let mut started = ids(&lanes.ready(|key| usize::from(key == 2)));
        started.sort_unstable();
        assert_eq!(started, [1], "lane 2 is full, lane 1 has room for one");
    }

    #[test]
    fn a_cancelled_waiting_transfer_leaves_its_lane_and_keeps_what_was_said_of_it() {
        let mut lanes = Lanes::default();
        for id in 1..=3 {
            lanes.enqueue(Lane { key: 9, width: 1 }, waiting(id));
        }
        let second = lanes.get_mut(TransferId(2)).expect("waiting");
        second.held = true;
        second.limit = Some(1000);
        let removed = lanes.remove(TransferId(2)).expect("waiting");
        assert!(removed.held);
        assert_eq!(removed.limit, Some(1000));
        assert!(lanes.remove(TransferId(2)).is_none(), "removed once");
        assert_eq!(ids(&lanes.ready(|_| 0)), [1]);
        assert_eq!(ids(&lanes.drain()), [3]);
        assert!(lanes.is_empty());
        assert!(lanes.get_mut(TransferId(3)).is_none());
    }
}
