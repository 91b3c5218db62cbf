//! Events gathered during one turn of the engine's loop and handed over together at its
//! end: the service's thread is woken once for a burst of small files finishing, not once
//! per event.

use std::cell::RefCell;
use std::rc::Rc;

use crossbeam_channel::Sender;

use crate::durable::{Finished, Syncer};
use crate::event::EngineEvent;

/// Shared by the worker and its transfers' sinks, all on the engine thread.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    queued: Rc<RefCell<Vec<EngineEvent>>>,
    /// Finished files whose reports wait for their sync, handed over after the events
    /// queued before them.
    finished: Rc<RefCell<Vec<Finished>>>,
    syncer: Rc<RefCell<Syncer>>,
    to: Sender<EngineEvent>,
}

impl Outbox {
    pub(crate) fn new(to: Sender<EngineEvent>) -> Outbox {
        Outbox {
            queued: Rc::new(RefCell::new(Vec::new())),
            finished: Rc::new(RefCell::new(Vec::new())),
            syncer: Rc::new(RefCell::new(Syncer::new(to.clone()))),
            to,
        }
    }

    /// Queues the report of a finished file, `Completed`, to be sent once the file is
    /// durable (see [`crate::durable`]), after every event queued before it.
    pub(crate) fn push_once_durable(&self, file: std::fs::File, event: EngineEvent) {
        self.finished.borrow_mut().push(Finished { file, event });
    }

    /// Queues `event` for the next [`Outbox::deliver`], after every event queued before it.
    pub(crate) fn push(&self, event: EngineEvent) {
        self.queued.borrow_mut().push(event);
    }

    /// Hands every queued event over, in order. Nobody listening is not the engine's
    /// problem; it keeps its promises to the files.
    pub(crate) fn deliver(&self) {
        let queued = std::mem::take(&mut *self.queued.borrow_mut());
        for event in queued {
            let _ = self.to.send(event);
        }
        let finished = std::mem::take(&mut *self.finished.borrow_mut());
        let mut syncer = self.syncer.borrow_mut();
        for file in finished {
            syncer.hand_over(file);
        }
    }
}
