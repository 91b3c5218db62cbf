//! What clients see of jobs: why a job waits, and listings a page at a time.

use qmgr_core::credentials::Credentials;
use qmgr_core::error::{ErrorContext, QmgrError, Result};
use qmgr_core::hresult;
use qmgr_core::idle::IdleView;
use qmgr_core::job::JobPriority;
use qmgr_core::policy::{self, PriorityCaps};
use qmgr_core::service::{IndexedFile, JobSummary, MAX_ACTIVE_FILES};
use qmgr_core::service::{JobView, LIST_PAGE_BYTES, ListCursor, Response, WaitReason};
use qmgr_core::{Job, JobState};
use qmgr_ipc::frame::encoded_len;
use qmgr_transfer::IdleStatuses;

use std::sync::Arc;

use qmgr_core::Guid;

use super::{Entry, ROOT, State};

/// What views of jobs share within one request: the global cap, and whether the machine has
/// a network (looked up at most once per request, and only if some view needs it).
pub(super) struct ViewContext {
    pub(super) global_cap: Option<u64>,
    /// The bandwidth schedule's caps in effect.
    pub(super) schedule_caps: PriorityCaps,
    /// The network's cost state, and the COST_FLAGS of background jobs that set none.
    pub(super) cost_state: u32,
    pub(super) background_cost_flags: u32,
    pub(super) network_up: std::cell::OnceCell<bool>,
    pub(super) idle: IdleStatuses,
}

impl ViewContext {
    /// The COST_FLAGS `job` obeys: its own, or its priority's default.
    fn cost_flags(&self, job: &Job) -> u32 {
        policy::effective_cost_flags(
            job.settings.cost_flags,
            job.priority,
            self.background_cost_flags,
        )
    }

    pub(super) fn network_up(&self) -> bool {
        *self
            .network_up
            .get_or_init(crate::network::has_default_route)
    }
}

impl Entry {
    /// The job as clients see it, with why it is not moving (or not faster).
    pub(super) fn view(&self, context: &ViewContext) -> JobView {
        // Credentials stay in the service, also for an in-process client, which gets the
        // view without serialisation.
        let mut job = self.job.clone();
        hide_secrets(&mut job);
        job.settings.cost_flags = Some(context.cost_flags(&job));
        JobView {
            job,
            waiting: self.waiting(context),
            attempts: self.attempts.iter().cloned().collect(),
            idle: self.idle(context),
        }
    }

    /// What idle mode does for the first of the job's transfers it controls.
    fn idle(&self, context: &ViewContext) -> Option<IdleView> {
        self.run
            .iter()
            .flat_map(|run| &run.transfers)
            .find_map(|transfer| context.idle.get(*transfer))
    }

    /// Why the job is not moving (or not faster), if it is not.
    fn waiting(&self, context: &ViewContext) -> Option<WaitReason> {
        let job = &self.job;
        let global_cap = context.global_cap;
        match job.state {
            // A cap is reported only while it binds: a job far below it is held back by
            // its link or server, not by the cap.
            JobState::Connecting | JobState::Transferring if self.throttled => {
                let background_cap = global_cap.filter(|_| job.priority != JobPriority::Foreground);
                let cap = [
                    job.settings.bandwidth_limit,
                    background_cap,
                    context.schedule_caps.of(job.priority),
                ]
                .into_iter()
                .flatten()
                .min();
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
            JobState::Queued
                if !policy::cost_allows(context.cost_flags(job), context.cost_state) =>
            {
                Some(WaitReason::Metered {
                    cost_state: context.cost_state,
                })
            }
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
                        WaitReason::CompleteFailed { error: *error }
                    }),
            ),
            _ => None,
        }
    }
}

/// A copy of the job without its file records and without its credentials (which stay in
/// the service).
fn without_files(job: &Job) -> Job {
    let mut copy = job.without_files();
    hide_secrets(&mut copy);
    copy
}

/// What stays in the service of a job a client sees: its credentials, and its custom
/// headers once they are write-only.
fn hide_secrets(job: &mut Job) {
    job.credentials = Credentials::default();
    if job.settings.custom_headers_write_only {
        job.settings.custom_headers = None;
    }
}

/// GetJobFiles: the job's records from `start` on while they fit [`LIST_PAGE_BYTES`] (at
/// least one while any are left), at most `max` of them if given.
pub(super) fn files_page(job: &Job, start: u32, max: Option<u32>) -> Response {
    let total = u32::try_from(job.files.len()).unwrap_or(u32::MAX);
    let from = usize::try_from(start).unwrap_or(usize::MAX);
    let mut files = Vec::new();
    let mut bytes = 0usize;
    let most = max.map_or(usize::MAX, |max| usize::try_from(max).unwrap_or(usize::MAX));
    for file in job.files.iter().skip(from).take(most) {
        bytes = bytes.saturating_add(encoded_len(file));
        if !files.is_empty() && bytes > LIST_PAGE_BYTES {
            break;
        }
        files.push(file.clone());
    }
    Response::FilePage {
        start,
        files,
        total,
    }
}

impl State {
    /// GetJobSummary: the view without the file list, with the totals and the files that
    /// are moving (or partly moved) now.
    pub(super) fn summary(&self, entry: &Entry, context: &ViewContext) -> JobSummary {
        let job = &entry.job;
        let mut active: Vec<usize> = entry
            .run
            .iter()
            .flat_map(|run| &run.transfers)
            .filter_map(|transfer| self.transfers.get(transfer))
            .filter(|slot| slot.started)
            .map(|slot| slot.file)
            .filter(|&index| index < job.files.len())
            .collect();
        active.sort_unstable();
        active.dedup();
        active.truncate(MAX_ACTIVE_FILES);
        if active.len() < MAX_ACTIVE_FILES {
            let partial = job
                .files
                .iter()
                .enumerate()
                .filter(|(index, file)| {
                    !file.completed && file.bytes_transferred > 0 && !active.contains(index)
                })
                .map(|(index, _)| index)
                .take(MAX_ACTIVE_FILES - active.len())
                .collect::<Vec<_>>();
            active.extend(partial);
            active.sort_unstable();
        }
        let active_files = active
            .into_iter()
            .filter_map(|index| {
                Some(IndexedFile {
                    index: u32::try_from(index).ok()?,
                    file: job.files[index].clone(),
                })
            })
            .collect();
        let mut copy = without_files(job);
        copy.settings.cost_flags = Some(context.cost_flags(job));
        JobSummary {
            job: copy,
            progress: job.progress(),
            active_files,
            waiting: entry.waiting(context),
            attempts: entry.attempts.iter().cloned().collect(),
            idle: entry.idle(context),
        }
    }

    /// ListJobs: the caller's jobs (root: everyone's with `all_users`), one page at a
    /// time in creation order.
    pub(super) fn list_jobs(
        &self,
        uid: u32,
        all_users: bool,
        after: Option<ListCursor>,
    ) -> Result<Response> {
        let context = self.view_context();
        let (jobs, next) =
            self.listed_page(uid, all_users, after, |e| e.view(&context), encoded_len)?;
        Ok(Response::JobPage { jobs, next })
    }

    /// ListJobSummaries: as ListJobs, each job as a summary.
    pub(super) fn list_job_summaries(
        &self,
        uid: u32,
        all_users: bool,
        after: Option<ListCursor>,
    ) -> Result<Response> {
        let context = self.view_context();
        let (jobs, next) = self.listed_page(
            uid,
            all_users,
            after,
            |e| self.summary(e, &context),
            encoded_len,
        )?;
        Ok(Response::SummaryPage { jobs, next })
    }

    /// One page of the jobs a listing holds after `after`, in creation order, each seen
    /// through `view`. The page is read from the listing order (`State::listing_order`):
    /// only the jobs on the page and the one after it are looked at.
    fn listed_page<V>(
        &self,
        uid: u32,
        all_users: bool,
        after: Option<ListCursor>,
        view: impl Fn(&Entry) -> V,
        encoded_len: impl Fn(&V) -> usize,
    ) -> Result<(Vec<V>, Option<ListCursor>)> {
        if all_users && uid != ROOT {
            return Err(QmgrError::from_code(hresult::E_ACCESSDENIED)
                .context("listing every user's jobs needs root"));
        }
        let order = self.listing_order();
        let from = after.map_or(0, |after| {
            order.partition_point(|&(seq, id)| cursor(seq, id) <= after)
        });
        let entries = order[from..].iter().filter_map(|&(seq, id)| {
            // A job that left the queue since the order was made is passed over.
            let entry = self.jobs.get(&id).filter(|e| e.seq == seq)?;
            (all_users || entry.job.owner_uid == uid).then_some((cursor(seq, id), &**entry))
        });
        Ok(page_of(entries, view, encoded_len))
    }

    /// Every job by creation order, made again when a job was created since it was last
    /// made, or when it holds many jobs that are gone.
    fn listing_order(&self) -> Arc<[(u64, Guid)]> {
        let mut order = self.listing_order.borrow_mut();
        let stale = order.made_at != Some(self.next_seq)
            || order.jobs.len() > 2 * self.jobs.len() + STALE_LISTING_SLACK;
        if stale {
            let mut jobs: Vec<(u64, Guid)> =
                self.jobs.values().map(|e| (e.seq, e.job.id)).collect();
            jobs.sort_unstable();
            order.jobs = jobs.into();
            order.made_at = Some(self.next_seq);
        }
        Arc::clone(&order.jobs)
    }
}

/// How many gone jobs the listing order may hold beyond as many as the queue holds before it
/// is made again.
const STALE_LISTING_SLACK: usize = 64;

/// Where a job is in listings.
fn cursor(seq: u64, id: Guid) -> ListCursor {
    ListCursor {
        key: i64::try_from(seq).unwrap_or(i64::MAX),
        id,
    }
}

/// One page of a listing sorted by cursor: items while their encoded size stays within
/// [`LIST_PAGE_BYTES`] (at least one), and the cursor of the last one if more follow.
pub(super) fn page<T, V>(
    sorted: Vec<(ListCursor, T)>,
    view: impl Fn(T) -> V,
    encoded_len: impl Fn(&V) -> usize,
) -> (Vec<V>, Option<ListCursor>) {
    page_of(sorted.into_iter(), view, encoded_len)
}

/// The most items a page holds, whatever their size: a page of a large queue is built in
/// memory before it is sent, and a page of small items costs that memory many times over
/// its encoded size (a job summary is several times larger in memory than on the wire).
/// Listings only follow cursors, so smaller pages change nothing but their number.
pub(super) const LIST_PAGE_ITEMS: usize = 2048;

/// [`page`] of items as they come, in cursor order: an item is made and measured only
/// while the page has room (in [`LIST_PAGE_BYTES`] and [`LIST_PAGE_ITEMS`]), and the
/// listing goes on (a cursor is returned) exactly when an item was left for the next page.
pub(super) fn page_of<T, V>(
    sorted: impl Iterator<Item = (ListCursor, T)>,
    view: impl Fn(T) -> V,
    encoded_len: impl Fn(&V) -> usize,
) -> (Vec<V>, Option<ListCursor>) {
    let mut views = Vec::new();
    let mut bytes = 0usize;
    let mut last = None;
    for (at, item) in sorted {
        if views.len() == LIST_PAGE_ITEMS {
            return (views, last);
        }
        let item = view(item);
        bytes = bytes.saturating_add(encoded_len(&item));
        if !views.is_empty() && bytes > LIST_PAGE_BYTES {
            return (views, last);
        }
        views.push(item);
        last = Some(at);
    }
    (views, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(n: usize) -> ListCursor {
        cursor(u64::try_from(n).unwrap(), Guid::NIL)
    }

    /// Every page of `items` (listed by cursor as a client does), each as its items.
    fn pages(items: usize, item_bytes: usize) -> Vec<Vec<usize>> {
        let mut pages = Vec::new();
        let mut after: Option<ListCursor> = None;
        loop {
            let rest = (0..items)
                .map(|n| (at(n), n))
                .filter(|(cursor, _)| after.is_none_or(|after| *cursor > after));
            let (page, next) = page_of(rest, |n| n, |_| item_bytes);
            pages.push(page);
            match next {
                Some(next) => after = Some(next),
                None => return pages,
            }
        }
    }

    #[test]
    fn a_page_of_small_items_stops_at_the_item_cap() {
        let items = 2 * LIST_PAGE_ITEMS + 5;
        let pages = pages(items, 10);
        assert_eq!(
            pages.iter().map(Vec::len).collect::<Vec<_>>(),
            [LIST_PAGE_ITEMS, LIST_PAGE_ITEMS, 5]
        );
        let listed: Vec<usize> = pages.concat();
        assert_eq!(listed, (0..items).collect::<Vec<_>>());
    }

    #[test]
    fn a_page_of_large_items_stops_at_the_byte_limit_and_holds_at_least_one() {
        let pages_of_thirds = pages(7, LIST_PAGE_BYTES / 3);
        assert_eq!(
            pages_of_thirds.iter().map(Vec::len).collect::<Vec<_>>(),
            [3, 3, 1]
        );
        let pages_of_giants = pages(2, LIST_PAGE_BYTES * 2);
        assert_eq!(pages_of_giants, [vec![0], vec![1]]);
        // Exactly a page's worth leaves no empty page behind.
        assert_eq!(pages(LIST_PAGE_ITEMS, 1).len(), 1);
        assert_eq!(pages(0, 1), [Vec::<usize>::new()]);
    }
}
