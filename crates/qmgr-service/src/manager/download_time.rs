//! MaximumDownloadTime (IBackgroundCopyJob4): the time a job spends CONNECTING or
//! TRANSFERRING, counted from its last Resume; when it passes the job's limit the job stops
//! in ERROR with `BG_E_MAXDOWNLOAD_TIMEOUT`. Time QUEUED, suspended or in TRANSIENT_ERROR
//! does not count, as Microsoft documents.
//!
//! The count lives in memory: a restart of qmgrd starts it again, as a Resume would.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use qmgr_core::error::{ErrorContext, QmgrError};
use qmgr_core::{Guid, JobError, JobState, Timestamp, hresult};
use qmgr_transfer::Engine;

use super::State;

/// Each job's count, and when the running ones reach their limit.
#[derive(Default)]
pub(super) struct DownloadClocks {
    clocks: HashMap<Guid, Clock>,
    /// (when the limit is reached if the job keeps running, job), for running jobs.
    deadlines: BTreeSet<(Timestamp, Guid)>,
}

#[derive(Default)]
struct Clock {
    /// Time spent running before the current run.
    used: Duration,
    /// When the current run began, while the job is CONNECTING or TRANSFERRING.
    since: Option<Timestamp>,
    deadline: Option<Timestamp>,
}

impl DownloadClocks {
    /// The job went from `before` to `after`: a run begins or ends.
    pub(super) fn observe(
        &mut self,
        id: Guid,
        before: JobState,
        after: JobState,
        limit: Duration,
        now: Timestamp,
    ) {
        if before.is_active() == after.is_active() {
            return;
        }
        let clock = self.clocks.entry(id).or_default();
        if after.is_active() {
            clock.since = Some(now);
        } else if let Some(since) = clock.since.take() {
            clock.used += now.since(since);
        }
        self.arm(id, limit, now);
    }

    /// Resume: the count starts again.
    pub(super) fn reset(&mut self, id: Guid, limit: Duration, now: Timestamp) {
        if let Some(clock) = self.clocks.get_mut(&id) {
            clock.used = Duration::ZERO;
            if clock.since.is_some() {
                clock.since = Some(now);
            }
            self.arm(id, limit, now);
        }
    }

    /// The job is gone.
    pub(super) fn forget(&mut self, id: Guid) {
        if let Some(clock) = self.clocks.remove(&id)
            && let Some(deadline) = clock.deadline
        {
            self.deadlines.remove(&(deadline, id));
        }
    }

    /// Sets the job's deadline for `limit` (after SetMaximumDownloadTime too): when a
    /// running job reaches it, or none.
    pub(super) fn arm(&mut self, id: Guid, limit: Duration, now: Timestamp) {
        let Some(clock) = self.clocks.get_mut(&id) else {
            return;
        };
        if let Some(old) = clock.deadline.take() {
            self.deadlines.remove(&(old, id));
        }
        if let Some(since) = clock.since
            && !limit.is_zero()
        {
            let left = limit.saturating_sub(clock.used + now.since(since));
            let deadline = now.plus(left);
            clock.deadline = Some(deadline);
            self.deadlines.insert((deadline, id));
        }
    }

    /// The wall clock jumped by `micros`: runs keep the length they had, deadlines too.
    pub(super) fn shift(&mut self, micros: i64) {
        let moved = |at: Timestamp| Timestamp(at.0.saturating_add(micros));
        for clock in self.clocks.values_mut() {
            clock.since = clock.since.map(moved);
            clock.deadline = clock.deadline.map(moved);
        }
        self.deadlines = self
            .deadlines
            .iter()
            .map(|&(at, id)| (moved(at), id))
            .collect();
    }

    /// The next deadline, if any job runs under a limit.
    pub(super) fn next_deadline(&self) -> Option<Timestamp> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Takes the jobs whose deadline has come.
    fn due(&mut self, now: Timestamp) -> Vec<Guid> {
        let mut due = Vec::new();
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(clock) = self.clocks.get_mut(&id) {
                clock.deadline = None;
            }
            due.push(id);
        }
        due
    }

    /// Whether the job has run for at least `limit` (a zero limit never runs out).
    fn ran_out(&self, id: Guid, limit: Duration, now: Timestamp) -> bool {
        self.clocks.get(&id).is_some_and(|clock| {
            let running = clock.since.map_or(Duration::ZERO, |since| now.since(since));
            !limit.is_zero() && clock.used + running >= limit
        })
    }
}

impl State {
    /// Resume: the job's MaximumDownloadTime counts from now.
    pub(super) fn restart_download_clock(&mut self, id: Guid, now: Timestamp) {
        if let Some(entry) = self.jobs.get(&id) {
            let limit = entry.job.settings.maximum_download_time;
            self.download_clocks.reset(id, limit, now);
        }
    }

    /// Stops the running jobs that reached their MaximumDownloadTime.
    pub(super) fn enforce_download_time(&mut self, engine: &Engine, now: Timestamp) {
        for id in self.download_clocks.due(now) {
            let Some(entry) = self.jobs.get(&id) else {
                self.download_clocks.forget(id);
                continue;
            };
            let limit = entry.job.settings.maximum_download_time;
            if !entry.job.state.is_active() || !self.download_clocks.ran_out(id, limit, now) {
                // Its limit was raised, or it stopped without being told here: look again
                // when it would run out.
                self.download_clocks.arm(id, limit, now);
                continue;
            }
            self.stop_transfers(engine, id);
            let Some(entry) = self.jobs.get_mut(&id) else {
                continue;
            };
            let before = entry.job.state;
            let error = QmgrError::new(
                hresult::BG_E_MAXDOWNLOAD_TIMEOUT,
                ErrorContext::GeneralQueueManager,
                format!(
                    "the job spent its MaximumDownloadTime ({} s) connecting and transferring",
                    limit.as_secs()
                ),
            );
            entry.job.fail(
                JobError {
                    error,
                    file_index: None,
                    protocol: None,
                    at: now,
                    retry_after: None,
                },
                false,
                None,
                now,
            );
            let saved = self.store.save_job_row(&entry.job);
            if self.saved_or_stopped(engine, id, before, saved, now) {
                self.announce(id, before, now);
            }
            self.schedule_needed = true;
        }
    }
}
