//! The driver's timed work: retry and no-progress timers, auto-completes, expiry of
//! inactive jobs, progress checkpoints, and how long to sleep.

use std::path::Path;
use std::time::Duration;

use qmgr_core::job::AutoComplete;
use qmgr_core::store::ProgressUpdate;
use qmgr_core::{Guid, JobState, Outcome, Timestamp};
use qmgr_transfer::{Engine, Overwrite};

use super::completion::PendingComplete;
use super::{Entry, State};

/// A wall clock that moved this much more or less than real time has jumped. NTP's slew
/// (at most 0.05 %) moves it under 2 s in the hour a pass may be apart.
const WALL_CLOCK_JUMP_TOLERANCE: Duration = Duration::from_secs(5);

impl State {
    /// Sets the timer of job `id` for its retry or its no-progress timeout, if it is in
    /// TRANSIENT_ERROR (and removes any other).
    pub(super) fn arm_timer(&mut self, id: Guid, now: Timestamp) {
        self.timers.retain(|(_, job)| *job != id);
        let Some(job) = self.jobs.get(&id).map(|e| &e.job) else {
            return;
        };
        if job.state != JobState::TransientError {
            return;
        }
        let retry = job.retry_at.unwrap_or(now);
        let give_up = job
            .no_progress_since
            .map(|since| since.plus(job.settings.no_progress_timeout));
        let at = give_up.map_or(retry, |g| g.min(retry));
        self.timers.insert((at, job.id));
    }

    /// Notices the wall clock jumping (set by hand, or corrected after a boot with a wrong
    /// clock) against a clock that counts real time, suspend included. Waits keep their
    /// length: a retry due in five minutes is still due in five minutes, a clock set back a
    /// day does not hold a job a day longer, nor does one set forward end its
    /// NoProgressTimeout early. The moved times are saved with their jobs.
    pub(super) fn absorb_wall_clock_jump(
        &mut self,
        engine: &Engine,
        now: Timestamp,
        elapsed: Duration,
    ) {
        let Some((wall, at)) = self.wall_anchor.replace((now, elapsed)) else {
            return;
        };
        let expected = wall.plus(elapsed.saturating_sub(at));
        let jump = now.0.saturating_sub(expected.0);
        if u128::from(jump.unsigned_abs()) < WALL_CLOCK_JUMP_TOLERANCE.as_micros() {
            return;
        }
        tracing::info!(
            "the wall clock jumped {} s {}: retry waits and time limits keep their length",
            jump.unsigned_abs() / 1_000_000,
            if jump < 0 { "back" } else { "forward" }
        );
        let moved = |at: Timestamp| Timestamp(at.0.saturating_add(jump));
        let waiting: Vec<Guid> = self
            .jobs
            .values()
            .filter(|e| e.job.retry_at.is_some() || e.job.no_progress_since.is_some())
            .map(|e| e.job.id)
            .collect();
        for id in waiting {
            let Some(entry) = self.jobs.get_mut(&id) else {
                continue;
            };
            entry.job.retry_at = entry.job.retry_at.map(moved);
            entry.job.no_progress_since = entry.job.no_progress_since.map(moved);
            let before = entry.job.state;
            let saved = self.store.save_job_row(&entry.job);
            if self.saved_or_stopped(engine, id, before, saved, now) {
                self.arm_timer(id, now);
            }
        }
        self.download_clocks.shift(jump);
        // Bandwidth windows are in local time: the one in force may have changed.
        self.policy.next_check = now;
    }

    pub(super) fn run_timers(&mut self, engine: &Engine, now: Timestamp) {
        while let Some(&(at, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let Some(entry) = self.jobs.get_mut(&id) else {
                continue;
            };
            let before = entry.job.state;
            if let Outcome::Apply { .. } = entry.job.on_timer(now) {
                let saved = self.store.save_job_row(&entry.job);
                if self.saved_or_stopped(engine, id, before, saved, now) {
                    self.announce(id, before, now);
                    self.schedule_needed = true;
                }
            }
            self.arm_timer(id, now);
        }
    }

    /// Begins Complete of the auto-complete jobs that reached TRANSFERRED; the caller
    /// finishes them without the lock (see `completion.rs`). A job that cannot be
    /// completed (a rename failed, or `--no-clobber` met an existing file) stays
    /// TRANSFERRED and says why in its view, until a Complete or a Cancel.
    pub(super) fn run_auto_completes(
        &mut self,
        engine: &Engine,
        now: Timestamp,
    ) -> Vec<PendingComplete> {
        let mut begun = Vec::new();
        for id in std::mem::take(&mut self.auto_complete_due) {
            let Some(entry) = self.jobs.get(&id) else {
                continue;
            };
            let (owner, mark) = (entry.job.owner_uid, entry.job.auto_complete);
            let Some(mark) = mark.filter(|_| entry.job.state == JobState::Transferred) else {
                continue;
            };
            if entry.completing {
                continue;
            }
            let overwrite = match mark {
                AutoComplete::Replace => Overwrite::Replace,
                AutoComplete::NoClobber => Overwrite::NoClobber,
            };
            match self.begin_complete(engine, owner, id, overwrite, now) {
                Ok(pending) => begun.push(pending),
                Err(error) => self.auto_complete_failed(id, error, now),
            }
        }
        begun
    }

    /// Cancels jobs nobody touched for `job_inactivity_timeout` (90 days by default), as
    /// Windows does, and plans the next look for when the next job would expire.
    pub(super) fn expire_inactive(&mut self, engine: &Engine, now: Timestamp) {
        if now < self.next_expiry_check {
            return;
        }
        let timeout = self.config.job_inactivity_timeout;
        let (expired, live): (Vec<&Entry>, Vec<&Entry>) = self
            .jobs
            .values()
            .map(|e| &**e)
            .partition(|e| now.since(e.job.times.modified) >= timeout);
        let next = live
            .iter()
            .map(|e| e.job.times.modified.plus(timeout))
            .min();
        let expired: Vec<(Guid, u32)> = expired
            .iter()
            .map(|e| (e.job.id, e.job.owner_uid))
            .collect();
        self.next_expiry_check = next.unwrap_or(now.plus(timeout));
        for (id, owner) in expired {
            tracing::info!(
                job = %id,
                "not touched for {} days: cancelling it",
                timeout.as_secs() / 86_400
            );
            if let Err(error) = self.cancel(engine, owner, id, now) {
                tracing::error!(job = %id, "cannot cancel the inactive job: {error}");
            }
        }
    }

    /// Writes pending progress, after making the bytes durable (fdatasync of each partial
    /// file) so a recorded length never runs ahead of the data.
    pub(super) fn flush_progress(&mut self, mono: Duration) {
        let updates = self.batcher.take(mono);
        let mut durable: Vec<ProgressUpdate> = Vec::with_capacity(updates.len());
        for update in updates {
            let temp = self
                .jobs
                .get(&update.job)
                .and_then(|e| e.job.files.get(update.file as usize))
                .and_then(|f| f.temp_name.clone());
            if let Some(temp) = temp
                && qmgr_transfer::sync_partial(Path::new(&temp)).is_ok()
            {
                durable.push(update);
            }
        }
        // A file whose response is not in the store yet gets its whole row: its bytes
        // never go without the size and validator they belong to.
        let (rows, bytes): (Vec<ProgressUpdate>, Vec<ProgressUpdate>) =
            durable.into_iter().partition(|update| update.whole_row);
        for update in rows {
            let Some(entry) = self.jobs.get_mut(&update.job) else {
                continue;
            };
            match self.store.save_file(&entry.job, update.file as usize) {
                Ok(()) => entry.job.response_headers_written(update.file as usize),
                Err(error) => tracing::error!(job = %update.job, "{error}"),
            }
        }
        if let Err(error) = self.store.save_progress(&bytes) {
            tracing::error!("{error}");
        }
        for id in self.batcher.take_job_rows() {
            let Some(entry) = self.jobs.get(&id) else {
                continue;
            };
            // Only progress is behind in the row: a refused write loses no state, and the
            // job's next written change brings the row up to date.
            if let Err(error) = self.store.save_job_state(&entry.job) {
                tracing::error!(job = %id, "{error}");
            }
        }
    }

    pub(super) fn next_wait(&self, now: Timestamp, mono: Duration) -> Duration {
        let mut wait = Duration::from_secs(3600);
        if let Some((at, _)) = self.timers.first() {
            wait = wait.min(at.since(now));
        }
        if let Some(due) = self.batcher.due_at() {
            wait = wait.min(due.saturating_sub(mono));
        }
        if let Some(due) = self.held.due_at() {
            wait = wait.min(due.saturating_sub(mono));
        }
        if let Some(at) = self.next_decision {
            wait = wait.min(at.saturating_sub(mono));
        }
        wait = wait.min(self.next_expiry_check.since(now));
        wait = wait.min(self.policy.next_check.since(now));
        if let Some(at) = self.download_clocks.next_deadline() {
            wait = wait.min(at.since(now));
        }
        wait
    }
}
