//! What clients see of jobs and groups: why a job waits, and a group with its job.

use qmgr_core::JobState;
use qmgr_core::error::ErrorContext;
use qmgr_core::group::Group;
use qmgr_core::job::JobPriority;
use qmgr_core::service::{GroupView, JobView, WaitReason};

use super::{Entry, State};

/// What views of jobs share within one request: the global cap, and whether the machine has
/// a network (looked up at most once per request, and only if some view needs it).
pub(super) struct ViewContext {
    pub(super) global_cap: Option<u64>,
    pub(super) network_up: std::cell::OnceCell<bool>,
}

impl ViewContext {
    pub(super) fn network_up(&self) -> bool {
        *self
            .network_up
            .get_or_init(crate::network::has_default_route)
    }
}

impl Entry {
    /// The job as clients see it, with why it is not moving (or not faster).
    pub(super) fn view(&self, context: &ViewContext) -> JobView {
        let job = &self.job;
        let global_cap = context.global_cap;
        let waiting = match job.state {
            // A cap is reported only while it binds: a job far below it is held back by
            // its link or server, not by the cap.
            JobState::Connecting | JobState::Transferring if self.throttled => {
                let background_cap = global_cap.filter(|_| job.priority != JobPriority::Foreground);
                let cap = match (job.settings.bandwidth_limit, background_cap) {
                    (Some(own), Some(global)) => Some(own.min(global)),
                    (own, global) => own.or(global),
                };
                cap.map(|bytes_per_second| WaitReason::Throttled { bytes_per_second })
            }
            JobState::TransientError
                if job
                    .error
                    .as_ref()
                    .is_some_and(|e| e.error.context == ErrorContext::GeneralTransport)
                    && !context.network_up() =>
            {
                Some(WaitReason::NoNetwork)
            }
            JobState::Suspended => Some(WaitReason::Suspended),
            JobState::Queued => Some(WaitReason::WaitingForSlot { ahead: self.ahead }),
            JobState::TransientError => job.retry_at.map(|at| WaitReason::RetryAt {
                at,
                // The server's wait set the time when it is the retry time (interactive
                // retries wait less than MinimumRetryDelay) or longer than the job's own.
                server_asked: job.error.as_ref().is_some_and(|e| {
                    e.retry_after.is_some_and(|asked| {
                        job.retry_at == Some(e.at.plus(asked))
                            || asked > job.settings.minimum_retry_delay
                    })
                }),
            }),
            JobState::Error => Some(WaitReason::Failed),
            JobState::Transferred => Some(
                self.complete_error
                    .clone()
                    .map_or(WaitReason::AwaitingComplete, |error| {
                        WaitReason::CompleteFailed { error }
                    }),
            ),
            _ => None,
        };
        JobView {
            job: job.clone(),
            waiting,
            attempts: self.attempts.iter().cloned().collect(),
        }
    }
}

impl State {
    pub(super) fn group_view(&self, group: &Group, context: &ViewContext) -> GroupView {
        let job = group
            .job
            .and_then(|id| self.jobs.get(&id))
            .map(|e| e.view(context));
        GroupView {
            group: group.clone(),
            job,
        }
    }
}
