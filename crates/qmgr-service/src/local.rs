//! The service API in-process: the queue manager hosted in the calling program.

use std::sync::Arc;
use std::sync::mpsc::Receiver;

use qmgr_core::Result;
use qmgr_core::instance::StoreLock;
use qmgr_core::service::{Notification, QueueService, Request, Response};

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

    fn subscribe(&self) -> Result<Receiver<Notification>> {
        Ok(self.manager.subscribe(self.uid))
    }
}
