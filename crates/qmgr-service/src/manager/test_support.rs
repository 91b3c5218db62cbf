//! What the queue's unit tests share.

use std::path::Path;
use std::sync::Arc;

use qmgr_core::config::Config;
use qmgr_core::paths::StatePaths;
use qmgr_core::service::{NewFile, Request, Response};
use qmgr_core::{Guid, JobType, Timestamp};

use crate::{ManualClock, QueueManager};

pub(super) const UID: u32 = 1000;

/// A queue with a suspended job of three files (their source is missing), whose driver's
/// clock stands still: only the test moves it.
pub(super) fn job_of_three_files(dir: &Path) -> (QueueManager, Guid) {
    let manager = QueueManager::start(
        Config::default(),
        &StatePaths::isolated(&dir.join("state")),
        Arc::new(ManualClock::new(Timestamp(133_000_000_000_000_000))),
    )
    .unwrap();
    let Response::JobCreated(job) = manager
        .handle(
            UID,
            Request::CreateJob {
                display_name: "three files".into(),
                job_type: JobType::Download,
                umask: None,
            },
        )
        .unwrap()
    else {
        panic!("no job made");
    };
    let files = (0..3)
        .map(|i| {
            NewFile::whole(
                dir.join("nowhere").to_string_lossy(),
                dir.join(format!("f{i}")).to_string_lossy(),
            )
        })
        .collect();
    manager
        .handle(UID, Request::AddFiles { job, files })
        .unwrap();
    (manager, job)
}
