//! Events gathered during one turn of the engine's loop and handed over together at its
//! end: the service's thread is woken once for a burst of small files finishing, not once
//! per event.
//!
//! The service hears of events in the order they happened. A finished file is reported
//! once it is durable (see [`crate::durable`]), and the events after it wait for that
//! report: a later file's failure never arrives before an earlier file's completion, which
//! a job stopped by that failure would otherwise drop.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use crossbeam_channel::{Sender, TryRecvError};

use crate::durable::{Finished, Receipt, Syncer, Wake};
use crate::event::EngineEvent;

/// Shared by the worker and its transfers' sinks, all on the engine thread.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    /// Events not yet handed over, in the order they happened.
    line: Rc<RefCell<VecDeque<Receipt>>>,
    syncer: Rc<RefCell<Syncer>>,
    to: Sender<EngineEvent>,
}

impl Outbox {
    /// `wake` wakes the engine thread when a sync it waits on is done.
    pub(crate) fn new(to: Sender<EngineEvent>, wake: Wake) -> Outbox {
        Outbox {
            line: Rc::new(RefCell::new(VecDeque::new())),
            syncer: Rc::new(RefCell::new(Syncer::new(wake))),
            to,
        }
    }

    /// Queues the report of a finished file, `Completed`, to be sent once the file is
    /// durable, after every event queued before it. Its sync starts now.
    pub(crate) fn push_once_durable(&self, file: std::fs::File, event: EngineEvent) {
        let receipt = self.syncer.borrow_mut().hand_over(Finished { file, event });
        self.line.borrow_mut().push_back(receipt);
    }

    /// Queues `event` for the next [`Outbox::deliver`], after every event queued before it.
    pub(crate) fn push(&self, event: EngineEvent) {
        self.line.borrow_mut().push_back(Receipt::Now(event));
    }

    /// Hands over the queued events, in order, up to the first report still waiting for
    /// its sync. Nobody listening is not the engine's problem; it keeps its promises to
    /// the files.
    pub(crate) fn deliver(&self) {
        let mut line = self.line.borrow_mut();
        while let Some(front) = line.front() {
            let event = match front {
                Receipt::Now(_) => match line.pop_front() {
                    Some(Receipt::Now(event)) => event,
                    _ => unreachable!("the front was ready"),
                },
                Receipt::Later(report) => match report.try_recv() {
                    Ok(event) => {
                        line.pop_front();
                        event
                    }
                    Err(TryRecvError::Empty) => return,
                    // Sync threads answer before they end; a report cannot be lost.
                    Err(TryRecvError::Disconnected) => {
                        line.pop_front();
                        continue;
                    }
                },
            };
            let _ = self.to.send(event);
        }
    }

    /// Hands over every queued event, waiting for the syncs under way (the engine stops).
    pub(crate) fn finish(&self) {
        let mut line = self.line.borrow_mut();
        while let Some(receipt) = line.pop_front() {
            let event = match receipt {
                Receipt::Now(event) => event,
                Receipt::Later(report) => match report.recv() {
                    Ok(event) => event,
                    Err(_) => continue,
                },
            };
            let _ = self.to.send(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::request::TransferId;

    fn completed(id: u64, temp_path: &Path) -> EngineEvent {
        EngineEvent::Completed {
            id: TransferId(id),
            temp_path: temp_path.to_owned(),
            bytes: 3,
            validator: qmgr_core::Validator::default(),
        }
    }

    #[test]
    fn events_after_a_report_waiting_for_its_sync_wait_for_it_too() {
        let (to, received) = crossbeam_channel::unbounded();
        let outbox = Outbox::new(to, Arc::new(|| {}));
        let (report, receipt) = crossbeam_channel::bounded(1);
        outbox.push(EngineEvent::Cancelled { id: TransferId(1) });
        outbox.line.borrow_mut().push_back(Receipt::Later(receipt));
        outbox.push(EngineEvent::Cancelled { id: TransferId(3) });
        outbox.deliver();
        let first: Vec<EngineEvent> = received.try_iter().collect();
        assert_eq!(first, [EngineEvent::Cancelled { id: TransferId(1) }]);
        report
            .send(completed(2, Path::new("/tmp/qmgr-outbox-test")))
            .unwrap();
        outbox.deliver();
        let ids: Vec<u64> = received.try_iter().map(|event| event.id().0).collect();
        assert_eq!(ids, [2, 3], "the synced report, then what came after it");
    }

    #[test]
    fn finishing_waits_for_the_syncs_under_way() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let (to, received) = crossbeam_channel::unbounded();
        let outbox = Outbox::new(to, Arc::new(|| {}));
        outbox.push_once_durable(std::fs::File::open(&path).unwrap(), completed(1, &path));
        outbox.push(EngineEvent::Cancelled { id: TransferId(2) });
        outbox.finish();
        let events: Vec<EngineEvent> = received.try_iter().collect();
        let ids: Vec<u64> = events.iter().map(|event| event.id().0).collect();
        assert_eq!(ids, [1, 2], "{events:?}");
        assert!(outbox.line.borrow().is_empty());
    }
}
