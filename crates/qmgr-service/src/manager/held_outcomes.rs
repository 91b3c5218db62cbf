//! Finished files whose rows wait a moment.
//!
//! A file that finishes without changing its job's state is progress of that job, as
//! DESIGN's durability rules count it: its row (completed, size, validator, response head)
//! is written with the next write of held rows, at most [`OUTCOME_DELAY`] later, together
//! with every other file that finished meanwhile. A burst of small files then costs one
//! transaction per interval instead of one per handful of files, and a job's rows, which
//! lie together, are written once per interval instead of once per file.
//!
//! What does not change:
//!
//! - nothing is told before it is in the store: the file's FileTransferred (and the
//!   Modification that goes with it) wait with its row and are told once it is committed;
//! - a job's state never goes ahead of its files: the rows a job holds back are written
//!   in the same transaction as any change of its state that finishing a file makes (the
//!   last file: TRANSFERRED), before a Complete commits its COMPLETING mark, and before
//!   any other news of the job than a Modification while it transfers;
//! - after a crash, a file whose row was held is found unfinished with its temporary file
//!   whole, and is finished again from there, as a file whose progress was not written yet.

use std::collections::BTreeSet;
use std::time::Duration;

use qmgr_core::service::{Notification, NotificationKind};
use qmgr_core::{Guid, JobState};
use qmgr_transfer::Engine;

use super::State;

/// How long a finished file's row may wait for others to share its transaction.
pub(super) const OUTCOME_DELAY: Duration = Duration::from_millis(50);

/// Notifications in the order they were published, each with its job's owner.
type Notices = Vec<(u32, Notification)>;

/// The held rows and what to tell of them once they are written.
#[derive(Debug, Default)]
pub(super) struct HeldOutcomes {
    files: BTreeSet<(Guid, u32)>,
    notices: Notices,
    /// When the oldest held row was held (monotonic).
    since: Option<Duration>,
    /// The job whose notices `publish` holds right now (see `State::hold_outcome`).
    holding: Option<Guid>,
}

impl HeldOutcomes {
    fn is_empty(&self) -> bool {
        self.files.is_empty() && self.notices.is_empty()
    }

    /// When the held rows are to be written, if any are held.
    pub(super) fn due_at(&self) -> Option<Duration> {
        if self.is_empty() {
            None
        } else {
            Some(self.since.unwrap_or_default() + OUTCOME_DELAY)
        }
    }

    pub(super) fn is_due(&self, mono: Duration) -> bool {
        self.due_at().is_some_and(|due| due <= mono)
    }

    fn holds_job(&self, job: Guid) -> bool {
        self.files
            .range((job, 0)..=(job, u32::MAX))
            .next()
            .is_some()
            || self.notices.iter().any(|(_, notice)| notice.job == job)
    }

    /// Takes what is held of `job`: its files and its notices, in order.
    fn take_job(&mut self, job: Guid) -> (Vec<u32>, Notices) {
        let files: Vec<u32> = self
            .files
            .range((job, 0)..=(job, u32::MAX))
            .map(|(_, file)| *file)
            .collect();
        for file in &files {
            self.files.remove(&(job, *file));
        }
        let (notices, others) = std::mem::take(&mut self.notices)
            .into_iter()
            .partition(|(_, notice)| notice.job == job);
        self.notices = others;
        if self.is_empty() {
            self.since = None;
        }
        (files, notices)
    }

    /// Takes everything held.
    fn take_all(&mut self) -> (Vec<(Guid, u32)>, Notices) {
        self.since = None;
        (
            std::mem::take(&mut self.files).into_iter().collect(),
            std::mem::take(&mut self.notices),
        )
    }

    /// Whether `notification` is to wait with the rows of its job rather than be told now.
    pub(super) fn holds_notice(&self, notification: &Notification) -> bool {
        self.holding == Some(notification.job)
    }

    pub(super) fn hold_notice(&mut self, owner: u32, notification: Notification) {
        self.notices.push((owner, notification));
    }

    /// Whether the rows held for the job of `notification` must be written before it is
    /// told: anything but a Modification of a job still transferring, which says nothing
    /// the held rows would contradict.
    pub(super) fn must_release_before(&self, notification: &Notification) -> bool {
        let modification_while_transferring =
            matches!(notification.kind, NotificationKind::Modification)
                && notification.state == JobState::Transferring;
        !modification_while_transferring && self.holds_job(notification.job)
    }
}

impl State {
    /// Holds the row of file `index` of job `id`, which finished without changing the
    /// job's state, and what finishing it tells (see the module's text). `tell` publishes
    /// the notices, which wait with the row.
    pub(super) fn hold_outcome(
        &mut self,
        id: Guid,
        index: usize,
        mono: Duration,
        tell: impl FnOnce(&mut State),
    ) {
        let file = u32::try_from(index).unwrap_or(u32::MAX);
        self.held.files.insert((id, file));
        self.held.since.get_or_insert(mono);
        self.held.holding = Some(id);
        tell(self);
        self.held.holding = None;
    }

    /// Writes the rows held for job `id` (into the open batch, if one is open) and tells
    /// its held notices after them. Returns the first write the store refused; the rows
    /// are then behind as progress may be, and the job's next whole write brings them up
    /// to date.
    pub(super) fn release_held(&mut self, id: Guid) -> qmgr_core::Result<()> {
        if !self.held.holds_job(id) {
            return Ok(());
        }
        let (files, notices) = self.held.take_job(id);
        let files: Vec<(Guid, u32)> = files.into_iter().map(|file| (id, file)).collect();
        let written = self.write_held(&files);
        for (owner, notice) in notices {
            self.publish(owner, notice);
        }
        written
    }

    /// Writes every held row in one transaction, then tells what was held.
    pub(super) fn release_all_held(&mut self, engine: &Engine, now: qmgr_core::Timestamp) {
        if self.held.is_empty() {
            return;
        }
        let (files, notices) = self.held.take_all();
        self.begin_batch();
        if let Err(error) = self.write_held(&files) {
            tracing::error!("{}", error.description);
        }
        for (owner, notice) in notices {
            self.publish(owner, notice);
        }
        self.end_batch(engine, now);
    }

    /// Writes the rows of `files` (jobs gone meanwhile are skipped), in one transaction of
    /// their own unless a batch is open.
    fn write_held(&mut self, files: &[(Guid, u32)]) -> qmgr_core::Result<()> {
        if files.is_empty() {
            return Ok(());
        }
        let own_transaction = self.batch.is_none() && self.store.begin_batch().is_ok();
        let mut result = Ok(());
        for &(id, file) in files {
            let Some(entry) = self.jobs.get_mut(&id) else {
                continue;
            };
            let index = file as usize;
            match self.store.save_file_outcome(&entry.job, index) {
                Ok(()) => entry.job.response_headers_written(index),
                Err(error) => {
                    tracing::error!(job = %id, "{}", error.description);
                    if result.is_ok() {
                        result = Err(error);
                    }
                }
            }
            if let Some(batch) = &mut self.batch {
                batch.touched(id);
            }
        }
        if own_transaction && let Err(error) = self.store.end_batch() {
            tracing::error!("{}", error.description);
            if result.is_ok() {
                result = Err(error);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use qmgr_core::service::NotificationKind;
    use qmgr_core::{Guid, JobState, Timestamp};
    use qmgr_ipc::subscription::Subscription;

    use super::OUTCOME_DELAY;
    use crate::manager::State;
    use crate::manager::test_support::{UID, job_of_three_files};

    /// The job runs as the scheduler would have it, set by hand under the lock the test
    /// keeps, so that the driver never starts its transfers.
    fn run_by_hand(state: &mut State, job: Guid) {
        state.jobs.get_mut(&job).unwrap().job.state = JobState::Transferring;
        state.store.save_job_state(&state.jobs[&job].job).unwrap();
    }

    /// File `index` finishes without changing the job's state, as the engine's report of
    /// it would have it.
    fn finish_quietly(state: &mut State, job: Guid, index: usize, mono: Duration) {
        let now = Timestamp(133_000_000_000_000_000);
        state.jobs.get_mut(&job).unwrap().job.file_done(index, now);
        state.hold_outcome(job, index, mono, |state| {
            state.notify_file(job, index);
            state.announce(job, JobState::Transferring, now);
        });
    }

    fn stored_completed(state: &State, job: Guid) -> Vec<bool> {
        let jobs = state.store.load_jobs().unwrap();
        let stored = jobs.iter().find(|j| j.id == job).unwrap();
        stored.files.iter().map(|file| file.completed).collect()
    }

    /// What the subscription was told since the last look, with the job's state.
    fn told_with_state(subscription: &Subscription) -> Vec<(NotificationKind, JobState)> {
        std::iter::from_fn(|| subscription.try_recv().ok())
            .map(|notification| (notification.kind, notification.state))
            .collect()
    }

    fn told(subscription: &Subscription) -> Vec<NotificationKind> {
        told_with_state(subscription)
            .into_iter()
            .map(|(kind, _)| kind)
            .collect()
    }

    #[test]
    fn a_finished_files_row_and_news_wait_together_and_go_before_other_news_of_its_job() {
        let dir = tempfile::tempdir().unwrap();
        let (manager, job) = job_of_three_files(dir.path());
        let subscription = manager.subscribe(UID).unwrap();
        let mut guard = manager.shared.state.lock();
        let state = &mut *guard;
        run_by_hand(state, job);
        let engine = &manager.shared.engine;
        let now = Timestamp(133_000_000_000_000_000);

        finish_quietly(state, job, 0, Duration::from_secs(7));
        assert_eq!(stored_completed(state, job), [false, false, false]);
        assert!(
            told(&subscription).is_empty(),
            "told before the row was written"
        );
        assert_eq!(
            state.held.due_at(),
            Some(Duration::from_secs(7) + OUTCOME_DELAY)
        );
        assert!(
            !state
                .held
                .is_due(Duration::from_secs(7) + OUTCOME_DELAY / 2)
        );
        assert!(state.held.is_due(Duration::from_secs(7) + OUTCOME_DELAY));

        // A Modification of the job as it transfers does not need the row.
        state.publish_about(job, NotificationKind::Modification);
        assert_eq!(told(&subscription), [NotificationKind::Modification]);
        assert_eq!(stored_completed(state, job), [false, false, false]);

        // When due, the rows go in one transaction and their news after it.
        state.release_all_held(engine, now);
        assert_eq!(stored_completed(state, job), [true, false, false]);
        assert_eq!(
            told(&subscription),
            [
                NotificationKind::FileTransferred { file: 0 },
                NotificationKind::Modification
            ]
        );
        assert_eq!(state.held.due_at(), None);

        // Any other news of the job writes its held rows first and is told after them.
        finish_quietly(state, job, 1, Duration::from_secs(8));
        state.jobs.get_mut(&job).unwrap().job.state = JobState::Suspended;
        state.publish_about(job, NotificationKind::Modification);
        assert_eq!(stored_completed(state, job), [true, true, false]);
        let kinds = told_with_state(&subscription);
        assert_eq!(
            kinds.first(),
            Some(&(
                NotificationKind::FileTransferred { file: 1 },
                JobState::Transferring
            ))
        );
        assert_eq!(
            kinds.last(),
            Some(&(NotificationKind::Modification, JobState::Suspended))
        );
        drop(guard);
        manager.shutdown();
    }

    #[test]
    fn complete_writes_the_rows_its_job_held_before_its_mark() {
        let dir = tempfile::tempdir().unwrap();
        let (manager, job) = job_of_three_files(dir.path());
        let mut state = manager.shared.state.lock();
        run_by_hand(&mut state, job);
        for index in 0..3 {
            finish_quietly(&mut state, job, index, Duration::from_secs(7));
        }
        // As if the last one had moved the job on without its row (the path of a job
        // resumed with every file done).
        state.jobs.get_mut(&job).unwrap().job.state = JobState::Transferred;
        assert_eq!(stored_completed(&state, job), [false, false, false]);
        let engine = &manager.shared.engine;
        let pending = state
            .begin_complete(
                engine,
                UID,
                job,
                qmgr_transfer::Overwrite::Replace,
                Timestamp(133_000_000_000_000_000),
            )
            .unwrap();
        assert_eq!(stored_completed(&state, job), [true, true, true]);
        let stored = state.store.load_jobs().unwrap();
        assert!(stored.iter().find(|j| j.id == job).unwrap().completing);
        drop(pending);
        drop(state);
        manager.shutdown();
    }
}
