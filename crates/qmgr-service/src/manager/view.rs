//! What clients see of jobs: why a job waits, and listings a page at a time.

use qmgr_core::JobState;
use qmgr_core::credentials::Credentials;
use qmgr_core::error::{ErrorContext, QmgrError, Result};
use qmgr_core::hresult;
use qmgr_core::job::JobPriority;
use qmgr_core::service::{JobView, LIST_PAGE_BYTES, ListCursor, Response, WaitReason};
use qmgr_ipc::frame::encoded_len;

use super::{Entry, ROOT, State};

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
        // Credentials stay in the service, also for an in-process client, which gets the
        // view without serialisation.
        let mut job = job.clone();
        job.credentials = Credentials::default();
        JobView {
            job,
            waiting,
            attempts: self.attempts.iter().cloned().collect(),
        }
    }
}

impl State {
    /// ListJobs: the caller's jobs (root: everyone's with `all_users`), one page at a
    /// time in creation order.
    pub(super) fn list_jobs(
        &self,
        uid: u32,
        all_users: bool,
        after: Option<ListCursor>,
    ) -> Result<Response> {
        if all_users && uid != ROOT {
            return Err(QmgrError::from_code(hresult::E_ACCESSDENIED)
                .context("listing every user's jobs needs root"));
        }
        let cursor = |e: &Entry| ListCursor {
            key: i64::try_from(e.seq).unwrap_or(i64::MAX),
            id: e.job.id,
        };
        let mut entries: Vec<(ListCursor, &Entry)> = self
            .jobs
            .values()
            .filter(|e| all_users || e.job.owner_uid == uid)
            .map(|e| (cursor(e), e))
            .filter(|(at, _)| after.is_none_or(|after| *at > after))
            .collect();
        entries.sort_unstable_by_key(|(at, _)| *at);
        let context = self.view_context();
        let (jobs, next) = page(entries, |e| e.view(&context), encoded_len);
        Ok(Response::JobPage { jobs, next })
    }
}

/// One page of a listing sorted by cursor: items while their encoded size stays within
/// [`LIST_PAGE_BYTES`] (at least one), and the cursor of the last one if more follow.
pub(super) fn page<T, V>(
    sorted: Vec<(ListCursor, T)>,
    view: impl Fn(T) -> V,
    encoded_len: impl Fn(&V) -> usize,
) -> (Vec<V>, Option<ListCursor>) {
    let total = sorted.len();
    let mut views = Vec::new();
    let mut bytes = 0usize;
    let mut last = None;
    for (at, item) in sorted {
        let item = view(item);
        bytes = bytes.saturating_add(encoded_len(&item));
        if !views.is_empty() && bytes > LIST_PAGE_BYTES {
            break;
        }
        views.push(item);
        last = Some(at);
    }
    let next = if views.len() < total { last } else { None };
    (views, next)
}
