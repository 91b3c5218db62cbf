//! A burst of engine events applied as one store transaction.
//!
//! When many transfers end at once (a job of small files), the driver applies every event
//! waiting in one batch: one commit for all of them instead of one each. The rules of a
//! single write still hold for the batch as a whole:
//!
//! - nothing is announced before it is in the store: subscribers hear of what a batch
//!   changed once its commit succeeded;
//! - no temporary file exists that the store does not know of: the next files of a job
//!   whose file finished start after the commit (naming them is a commit of its own);
//! - a change the store refused stops its job in ERROR: if the commit fails, nothing of
//!   the batch is in the store, and every job it changed stops with the store's error.

use qmgr_core::service::Notification;
use qmgr_core::{Guid, Timestamp};
use qmgr_transfer::Engine;

use super::State;

/// What an open batch holds back until its commit.
#[derive(Default)]
pub(super) struct Batch {
    /// Jobs with changes in the batch.
    jobs: Vec<Guid>,
    /// What to tell subscribers once committed: each notification with its job's owner.
    notices: Vec<(u32, Notification)>,
    /// Jobs whose next files start once committed.
    fills: Vec<Guid>,
    /// Jobs whose own row is written once, just before the commit (see
    /// `save_job_and_file`): a burst of a job's files finishing costs one row write.
    rows: Vec<Guid>,
}

impl Batch {
    /// The batch holds a change of job `id`.
    pub(super) fn touched(&mut self, id: Guid) {
        if self.jobs.last() != Some(&id) {
            self.jobs.push(id);
        }
    }
}

impl State {
    /// Opens a batch: the store's writes until `end_batch` join one transaction. If the
    /// store cannot open one, each write commits on its own as usual.
    pub(super) fn begin_batch(&mut self) {
        if self.batch.is_some() {
            return;
        }
        match self.store.begin_batch() {
            Ok(()) => self.batch = Some(Batch::default()),
            Err(error) => tracing::warn!("{}", error.description),
        }
    }

    /// Commits the open batch, then tells subscribers what it changed and starts the next
    /// files of the jobs that asked for them.
    pub(super) fn end_batch(&mut self, engine: &Engine, now: Timestamp) {
        self.name_files_starting_next();
        self.write_batched_rows(engine, now);
        let Some(batch) = self.batch.take() else {
            return;
        };
        match self.store.end_batch() {
            Ok(()) => {
                for (owner, notification) in batch.notices {
                    self.deliver(owner, &notification);
                }
            }
            Err(error) => {
                let mut jobs = batch.jobs;
                jobs.sort_unstable();
                jobs.dedup();
                for id in jobs {
                    let Some(before) = self.jobs.get(&id).map(|entry| entry.job.state) else {
                        continue;
                    };
                    self.saved_or_stopped(engine, id, before, Err(error.clone()), now);
                }
            }
        }
        let mut fills = batch.fills;
        fills.dedup();
        for id in fills {
            self.fill_transfers(engine, id, now);
        }
    }

    /// Writes the job's row and the row of its file `index`, for a file that finished (its
    /// job's settings, names and owner unchanged; `state_changed` says whether its state
    /// did). With a batch open, the file's row is written now, and the job's state columns
    /// once for the whole batch, as they are just before the commit, if its state changed;
    /// if it did not, the finished file changed only what progress changes in the job's
    /// row (its modification time), which is written with the next progress. What the
    /// batch tells is then in the store all the same, and a job of small files pays one
    /// row write per second instead of one per file.
    pub(super) fn save_job_and_file(
        &mut self,
        id: Guid,
        index: usize,
        state_changed: bool,
    ) -> qmgr_core::Result<()> {
        let Some(entry) = self.jobs.get(&id) else {
            return Ok(());
        };
        let Some(batch) = &mut self.batch else {
            return self.store.save_job_and_files(&entry.job, &[index]);
        };
        self.store.save_file_outcome(&entry.job, index)?;
        if !state_changed {
            self.batcher.record_job_row(id);
        } else if batch.rows.last() != Some(&id) {
            batch.rows.push(id);
        }
        Ok(())
    }

    /// The files that start once the batch is committed get their temporary names in it,
    /// so that the commit which makes them known is the batch's own rather than one more
    /// (see `State::name_temp_file`). A job whose names the store refuses is left to its
    /// fill, which fails it as a start would.
    fn name_files_starting_next(&mut self) {
        let Some(batch) = &mut self.batch else {
            return;
        };
        let mut fills = std::mem::take(&mut batch.fills);
        fills.dedup();
        for &id in &fills {
            if self.name_next_files(id)
                && let Some(batch) = &mut self.batch
            {
                batch.touched(id);
            }
        }
        if let Some(batch) = &mut self.batch {
            batch.fills = fills;
        }
    }

    /// The job rows `save_job_and_file` left for the end of the batch; a job whose row the
    /// store refuses stops in ERROR, as it would have at the write itself.
    fn write_batched_rows(&mut self, engine: &Engine, now: Timestamp) {
        let Some(batch) = &mut self.batch else {
            return;
        };
        let mut rows = std::mem::take(&mut batch.rows);
        rows.sort_unstable();
        rows.dedup();
        for id in rows {
            let Some(entry) = self.jobs.get(&id) else {
                continue;
            };
            let before = entry.job.state;
            let saved = self.store.save_job_state(&entry.job);
            self.saved_or_stopped(engine, id, before, saved, now);
        }
    }

    /// Tells the subscribers who may see `owner`'s jobs: now, or when the open batch is
    /// committed.
    pub(super) fn publish(&mut self, owner: u32, notification: Notification) {
        if self.held.holds_notice(&notification) {
            self.held.hold_notice(owner, notification);
            return;
        }
        if self.held.must_release_before(&notification) {
            // Refused writes are logged; the news goes out all the same, as it would
            // have after a refused progress write.
            let _ = self.release_held(notification.job);
        }
        match &mut self.batch {
            Some(batch) => batch.notices.push((owner, notification)),
            None => self.deliver(owner, &notification),
        }
    }

    /// Starts the job's next files: now, or when the open batch is committed.
    /// With a batch open, the files already named in the store start at once (see
    /// `fill_named_transfers`) and the others after the commit.
    pub(super) fn fill_transfers_soon(&mut self, engine: &Engine, id: Guid, now: Timestamp) {
        match &mut self.batch {
            Some(batch) => {
                batch.fills.push(id);
                self.fill_named_transfers(engine, id, now);
            }
            None => self.fill_transfers(engine, id, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use qmgr_core::{Guid, JobState, Timestamp};

    use crate::manager::State;
    use crate::manager::test_support::job_of_three_files;

    /// The modification time the store holds for `job`.
    fn stored_modified(state: &State, job: Guid) -> Timestamp {
        let jobs = state.store.load_jobs().unwrap();
        jobs.iter().find(|j| j.id == job).unwrap().times.modified
    }

    #[test]
    fn a_finished_file_writes_its_jobs_row_at_once_only_if_the_jobs_state_changed() {
        let dir = tempfile::tempdir().unwrap();
        // The driver's clock stands still, so its own progress flush never comes due.
        let (manager, job) = job_of_three_files(dir.path());
        // The job runs (as the scheduler would have it) and its files finish by hand; the
        // lock is held throughout, so nothing but this test moves it.
        let mut guard = manager.shared.state.lock();
        let state = &mut *guard;
        let engine = &manager.shared.engine;
        let written = stored_modified(state, job);
        let later = |seconds: i64| Timestamp(written.0 + seconds * 10_000_000);
        state.jobs.get_mut(&job).unwrap().job.state = JobState::Transferring;
        state.store.save_job_state(&state.jobs[&job].job).unwrap();
        // The interval of progress writes starts now.
        state.batcher.take(Duration::ZERO);

        state.begin_batch();
        state.jobs.get_mut(&job).unwrap().job.file_done(0, later(5));
        state.save_job_and_file(job, 0, false).unwrap();
        state.end_batch(engine, later(5));
        assert_eq!(
            stored_modified(state, job),
            written,
            "a file that left the job's state as it was wrote the job's row"
        );
        assert!(
            state.batcher.due_at().is_some(),
            "the row is not held for later"
        );
        assert!(
            state.store.load_jobs().unwrap()[0].files[0].completed,
            "the file's own row is written with the batch"
        );

        // The next progress flush brings the row up to date.
        state.flush_progress(Duration::from_secs(1_000_000));
        assert_eq!(stored_modified(state, job), later(5));

        // A file whose end changes the job's state writes the row in its own batch.
        state.begin_batch();
        state.jobs.get_mut(&job).unwrap().job.file_done(1, later(9));
        state.jobs.get_mut(&job).unwrap().job.state = JobState::Transferred;
        state.save_job_and_file(job, 1, true).unwrap();
        state.end_batch(engine, later(9));
        assert_eq!(stored_modified(state, job), later(9));
        drop(guard);
        manager.shutdown();
    }
}
