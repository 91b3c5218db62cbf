//! What this process remembers about jobs beyond what the service stores: settings that
//! have no effect on Linux and are kept only so that a Set is answered by the matching Get
//! (file ACL flags, peer caching), and the final state of jobs that left the queue through this
//! process, so that an interface pointer still held reads ACKNOWLEDGED or CANCELLED.
//!
//! None of it is persisted; another process sees the defaults.

use std::collections::HashMap;

use parking_lot::Mutex;
use qmgr_core::{Guid, JobState};

/// Per-job settings kept in this process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LocalSettings {
    pub file_acl_flags: u32,
    pub peer_caching_flags: u32,
}

#[derive(Default)]
struct Memory {
    settings: HashMap<Guid, LocalSettings>,
    ended: HashMap<Guid, JobState>,
}

static MEMORY: Mutex<Option<Memory>> = Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut Memory) -> R) -> R {
    f(MEMORY.lock().get_or_insert_with(Memory::default))
}

pub(crate) fn settings(job: Guid) -> LocalSettings {
    with(|m| m.settings.get(&job).copied().unwrap_or_default())
}

pub(crate) fn update_settings(job: Guid, change: impl FnOnce(&mut LocalSettings)) {
    with(|m| change(m.settings.entry(job).or_default()));
}

/// The job left the queue in `state`; its local settings go.
pub(crate) fn ended(job: Guid, state: JobState) {
    with(|m| {
        m.settings.remove(&job);
        m.ended.insert(job, state);
    });
}

/// How the job left the queue, if it did so through this process.
pub(crate) fn final_state(job: Guid) -> Option<JobState> {
    with(|m| m.ended.get(&job).copied())
}
