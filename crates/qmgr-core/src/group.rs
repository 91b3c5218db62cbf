//! Legacy groups of the qmgr.h API. A group holds at most one job (qmgr-h.md); that job is
//! an ordinary [`crate::job::Job`] whose `group` field names the group, so a group schedules,
//! persists and transfers exactly like a job. What is particular to groups is here: their
//! properties and how a job state reads as `QM_STATUS_*` bits.

use crate::guid::Guid;
use crate::state::JobState;
use crate::time::Timestamp;

/// `QM_STATUS_*` bits.
pub mod status {
    pub const FILE_COMPLETE: u32 = 0x001;
    pub const FILE_INCOMPLETE: u32 = 0x002;
    pub const JOB_COMPLETE: u32 = 0x004;
    pub const JOB_INCOMPLETE: u32 = 0x008;
    pub const JOB_ERROR: u32 = 0x010;
    pub const JOB_FOREGROUND: u32 = 0x020;
    pub const GROUP_COMPLETE: u32 = 0x040;
    pub const GROUP_INCOMPLETE: u32 = 0x080;
    pub const GROUP_SUSPENDED: u32 = 0x100;
    pub const GROUP_ERROR: u32 = 0x200;
    pub const GROUP_FOREGROUND: u32 = 0x400;
}

/// `QM_NOTIFY_*` flags (GROUPPROP_NOTIFYFLAGS).
pub mod notify {
    pub const FILE_DONE: u32 = 0x01;
    pub const JOB_DONE: u32 = 0x02;
    pub const GROUP_DONE: u32 = 0x04;
    pub const DISABLE_NOTIFY: u32 = 0x40;
    pub const USE_PROGRESSEX: u32 = 0x80;
}

/// `QM_PROTOCOL_HTTP`: the only protocol a group accepts.
pub const PROTOCOL_HTTP: u32 = 1;

/// A legacy group.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Group {
    /// Chosen by the caller of CreateGroup.
    pub id: Guid,
    pub owner_uid: u32,
    pub created: Timestamp,
    pub display_name: String,
    pub description: String,
    pub notify_flags: u32,
    /// GROUPPROP_NOTIFYCLSID.
    pub notify_clsid: Option<Guid>,
    /// SwitchToForeground was called.
    pub foreground: bool,
    /// The group's one job (its id chosen by the caller of CreateJob).
    pub job: Option<Guid>,
}

impl Group {
    pub fn new(id: Guid, owner_uid: u32, now: Timestamp) -> Self {
        Self {
            id,
            owner_uid,
            created: now,
            display_name: String::new(),
            description: String::new(),
            notify_flags: 0,
            notify_clsid: None,
            foreground: false,
            job: None,
        }
    }

    /// `IBackgroundCopyGroup::GetStatus` for a group whose job is in `job_state` (`None`: no
    /// job yet). New, failed and finished groups read as suspended (state-machine.md §9).
    pub fn status(&self, job_state: Option<JobState>) -> u32 {
        let foreground = if self.foreground {
            status::GROUP_FOREGROUND
        } else {
            0
        };
        match job_state {
            None | Some(JobState::Suspended) => status::GROUP_SUSPENDED | status::GROUP_INCOMPLETE,
            Some(
                JobState::Queued
                | JobState::Connecting
                | JobState::Transferring
                | JobState::TransientError,
            ) => status::GROUP_INCOMPLETE | foreground,
            Some(JobState::Error) => status::GROUP_ERROR | status::GROUP_SUSPENDED,
            Some(JobState::Transferred | JobState::Acknowledged) => {
                status::GROUP_COMPLETE | status::GROUP_SUSPENDED
            }
            Some(JobState::Cancelled) => 0,
        }
    }
}

/// `IBackgroundCopyJob1::GetStatus` bits for the group's job.
pub fn job_status(job_state: JobState) -> u32 {
    match job_state {
        JobState::Error => status::JOB_ERROR,
        JobState::Transferred | JobState::Acknowledged => status::JOB_COMPLETE,
        _ => status::JOB_INCOMPLETE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_status_follows_the_mapping_table() {
        let mut group = Group::new(Guid::new_random(), 1000, Timestamp(1));
        assert_eq!(
            group.status(None),
            status::GROUP_SUSPENDED | status::GROUP_INCOMPLETE
        );
        assert_eq!(
            group.status(Some(JobState::Transferring)),
            status::GROUP_INCOMPLETE
        );
        group.foreground = true;
        assert_eq!(
            group.status(Some(JobState::Queued)),
            status::GROUP_INCOMPLETE | status::GROUP_FOREGROUND
        );
        assert_eq!(
            group.status(Some(JobState::Error)),
            status::GROUP_ERROR | status::GROUP_SUSPENDED
        );
        assert_eq!(
            group.status(Some(JobState::Transferred)),
            status::GROUP_COMPLETE | status::GROUP_SUSPENDED
        );
    }

    #[test]
    fn job_status_bits() {
        assert_eq!(job_status(JobState::Error), status::JOB_ERROR);
        assert_eq!(job_status(JobState::Transferred), status::JOB_COMPLETE);
        assert_eq!(job_status(JobState::TransientError), status::JOB_INCOMPLETE);
    }
}
