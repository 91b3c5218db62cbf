//! What root may ask of another user's qmgrd.
//!
//! Root counts as the administrator (DESIGN "Owner and other users"). On Windows an
//! administrator enumerates every user's jobs and may cancel them; qmgr draws the line so
//! that root sees everything of a user's queue and may move a job through its life, but
//! never makes that user's daemon do something new in the user's name:
//!
//! - allowed: every read (jobs, summaries, files, response headers, legacy groups),
//!   notifications, Suspend, Resume, Cancel and Complete (of a job or a legacy group's
//!   job), and TakeOwnership, which the queue answers itself (`E_NOTIMPL` for another
//!   user's job);
//! - refused with `E_ACCESSDENIED`: creating jobs or groups (they would belong to root but
//!   run as the user), adding files, and every property change (what a job fetches, where
//!   it writes, with which credentials or headers, which command it runs afterwards, its
//!   priority).
//!
//! Root's own jobs live in root's own queue; a user's own changes are made as that user.

use qmgr_core::service::Request;
use qmgr_core::{ErrorContext, QmgrError, hresult};

use crate::message::request_name;

/// Whether root may make `request` in another user's qmgrd.
pub fn administrator_may(request: &Request) -> bool {
    // Every request is named here, so a new one must be placed on one side.
    match request {
        Request::Ping
        | Request::GetJob { .. }
        | Request::ListJobs { .. }
        | Request::GetJobSummary { .. }
        | Request::ListJobSummaries { .. }
        | Request::GetJobFiles { .. }
        | Request::GetFileResponseHeaders { .. }
        | Request::GetReplyData { .. }
        | Request::GetPolicy
        | Request::GetGroup { .. }
        | Request::ListGroups { .. }
        | Request::Suspend { .. }
        | Request::Resume { .. }
        | Request::Cancel { .. }
        | Request::Complete { .. }
        | Request::CompleteWithoutReplacing { .. }
        | Request::SuspendGroup { .. }
        | Request::ResumeGroup { .. }
        | Request::CancelGroup { .. }
        | Request::TakeOwnership { .. } => true,
        Request::CreateJob { .. }
        | Request::AddFiles { .. }
        | Request::SetJob { .. }
        | Request::CreateGroup { .. }
        | Request::CreateGroupJob { .. }
        | Request::SetGroup { .. }
        | Request::SwitchGroupToForeground { .. }
        // Certificate checks belong to the job's own program: root neither registers a
        // validator in another user's qmgrd nor reads or answers its checks.
        | Request::SetCertificateValidator { .. }
        | Request::GetCertificateCheck { .. }
        | Request::CertificateVerdict { .. }
        // Which bytes of an on-demand file to fetch is the reading program's choice.
        | Request::RequestFileRanges { .. }
        | Request::UpdateDownloadPosition { .. } => false,
    }
}

/// The answer to a request [`administrator_may`] refuses, in the qmgrd of `service_uid`.
pub fn refusal(request: &Request, service_uid: u32) -> QmgrError {
    QmgrError::new(
        hresult::E_ACCESSDENIED,
        ErrorContext::GeneralQueueManager,
        format!(
            "root may read, suspend, resume, cancel and complete the jobs in the qmgrd of uid \
             {service_uid}, but not make {} there: create or change jobs as that user",
            request_name(request)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmgr_core::Guid;
    use qmgr_core::service::JobChange;

    #[test]
    fn reads_and_life_changes_are_allowed_new_jobs_and_changes_are_not() {
        let job = Guid::new_random();
        for allowed in [
            Request::GetJob { job },
            Request::ListJobSummaries {
                all_users: true,
                after: None,
            },
            Request::GetJobFiles {
                job,
                start: 0,
                max: None,
            },
            Request::Cancel { job },
            Request::Complete { job },
            Request::Suspend { job },
            Request::Resume { job },
        ] {
            assert!(administrator_may(&allowed), "{allowed:?}");
        }
        for refused in [
            Request::CreateJob {
                display_name: "root's".into(),
                job_type: qmgr_core::JobType::Download,
                umask: None,
            },
            Request::AddFiles {
                job,
                files: Vec::new(),
            },
            Request::SetJob {
                job,
                change: JobChange::DisplayName("renamed".into()),
            },
            Request::CreateGroup { group: job },
            Request::RequestFileRanges {
                job,
                file: 0,
                ranges: Vec::new(),
            },
        ] {
            assert!(!administrator_may(&refused), "{refused:?}");
            let error = refusal(&refused, 1234);
            assert_eq!(error.hresult, hresult::E_ACCESSDENIED);
            assert!(error.description.contains("uid 1234"), "{error}");
            assert!(
                error.description.contains(request_name(&refused)),
                "{error}"
            );
        }
    }
}
