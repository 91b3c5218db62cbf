//! The service API in-process: the queue manager hosted in the calling program.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};

use qmgr_core::instance::StoreLock;
use qmgr_core::service::{Notification, QueueService, Request, Response};
use qmgr_core::{QmgrError, Result};

use crate::manager::QueueManager;

/// A [`QueueService`] that calls the queue manager directly, as the user `uid`.
#[derive(Debug, Clone)]
pub struct LocalService {
    manager: QueueManager,
    uid: u32,
    /// The store lock, released after the manager (fields drop in order) when the last
    /// clone goes.
    lock: Option<Arc<StoreLock>>,
}

impl LocalService {
    pub fn new(manager: QueueManager, uid: u32) -> Self {
        Self {
            manager,
            uid,
            lock: None,
        }
    }

    /// Keeps `lock` (the store lock the manager was started under) for as long as the
    /// service lives.
    #[must_use]
    pub fn holding(mut self, lock: StoreLock) -> Self {
        self.lock = Some(Arc::new(lock));
        self
    }

    pub fn manager(&self) -> &QueueManager {
        &self.manager
    }
}

impl QueueService for LocalService {
    fn execute(&self, request: Request) -> Result<Response> {
        self.manager.handle(self.uid, request)
    }

    fn caller_uid(&self) -> Option<u32> {
        Some(self.uid)
    }

    fn subscribe(&self) -> Result<Receiver<Notification>> {
        // The manager's bounded queue, handed on by a thread of its own as the trait
        // promises; the stream ends for the manager at the first notification after the
        // receiver is dropped, as over the socket.
        let subscription = self.manager.subscribe(self.uid)?;
        let (sender, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("qmgr-local-notifications".into())
            .spawn(move || {
                while let Ok(notification) = subscription.recv() {
                    if sender.send(notification).is_err() {
                        break;
                    }
                }
            })
            .map_err(|error| {
                QmgrError::internal(format!("cannot start the notification thread: {error}"))
            })?;
        Ok(receiver)
    }
}
