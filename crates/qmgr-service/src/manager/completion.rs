//! Complete in three steps, so that renaming a job's files does not hold the queue.
//!
//! Renaming is most of what Complete costs (a job of a thousand small files takes tens of
//! milliseconds), and with the queue's lock held, every other job's transfers stall
//! meanwhile: no finished file is recorded and no next file starts. So Complete
//!
//! 1. decides and commits the COMPLETING mark, with the lock (`begin_complete`);
//! 2. renames the files without it (`PendingComplete::rename`), on the caller's thread for
//!    a Complete call and on a thread of its own for auto-complete jobs;
//! 3. records the outcome, with the lock again (`finish_complete`).
//!
//! Between 1 and 3 the job still shows TRANSFERRED (its files are not all in place yet),
//! and calls that would change it get `BG_E_INVALID_STATE`, as they would once it is
//! ACKNOWLEDGED; the scheduler never runs a TRANSFERRED job. A crash in step 2 leaves the
//! mark, and the next start finishes the renames (see `recover.rs`).

use std::sync::Weak;

use qmgr_core::error::{QmgrError, Result};
use qmgr_core::hresult;
use qmgr_core::service::Response;
use qmgr_core::{Guid, Job, JobState, Timestamp};
use qmgr_transfer::{Engine, Overwrite};

use super::jobs::{ENGINE_SYNC_TIMEOUT, rename_finished};
use super::{Shared, State};

/// A Complete whose mark is committed and whose files wait to be renamed.
pub(super) struct PendingComplete {
    id: Guid,
    overwrite: Overwrite,
    /// The job as it is being completed (marked COMPLETING): the renames clear the
    /// temporary names of the files they move.
    job: Job,
    /// The renames' outcome, once they ran.
    renamed: Option<Result<()>>,
}

impl PendingComplete {
    /// Renames the job's finished files (no lock needed: nothing else touches a job being
    /// completed).
    pub(super) fn rename(&mut self) {
        self.renamed = Some(rename_finished(&mut self.job, self.overwrite));
    }
}

impl State {
    /// Step 1: refuses what the state machine refuses, stops the job's transfers and
    /// commits the COMPLETING mark durably. The job is then held for the renames.
    pub(super) fn begin_complete(
        &mut self,
        engine: &Engine,
        uid: u32,
        id: Guid,
        overwrite: Overwrite,
        now: Timestamp,
    ) -> Result<PendingComplete> {
        let entry = self.entry(uid, id)?;
        if entry.completing {
            return Err(being_completed(id));
        }
        // Decide first (the state machine may refuse, by the job's state alone), rename,
        // then commit: a failed rename leaves the job as it was so the caller can fix
        // things and call again. Whether the Complete is partial is told at the end, by
        // the job with its files.
        entry.job.without_files().complete(now)?;
        // The COMPLETING mark writes the job's row alone: its files' rows must be current.
        self.release_held(id)?;
        let Some(entry) = self.jobs.get(&id) else {
            return Err(crate::manager::not_found("job", id));
        };
        let mut job = entry.job.clone();
        self.stop_transfers(engine, id);
        job.completing = true;
        if let Err(error) = self.store.save_job_durably(&job) {
            // Nothing changed: the scheduler gives the job its slot back.
            self.schedule_needed = true;
            return Err(error);
        }
        if let Some(entry) = self.jobs.get_mut(&id) {
            entry.completing = true;
        }
        Ok(PendingComplete {
            id,
            overwrite,
            job,
            renamed: None,
        })
    }

    /// Step 3: the renamed files' names are forgotten, unfinished files deleted and the job
    /// leaves the queue; or, if a rename failed, the job waits as it was for another
    /// Complete or a Cancel, with the files renamed so far in place (as on Windows).
    pub(super) fn finish_complete(
        &mut self,
        engine: &Engine,
        mut pending: PendingComplete,
        now: Timestamp,
    ) -> Result<Response> {
        let id = pending.id;
        if pending.renamed.is_none() {
            pending.rename();
        }
        let Some(entry) = self.jobs.get_mut(&id) else {
            // Nothing removes a job being completed; should something have, there is
            // nothing left to record.
            return Err(crate::manager::not_found("job", id));
        };
        entry.completing = false;
        let mut job = pending.job;
        if let Some(Err(error)) = pending.renamed {
            // The renamed files lost their temporary names: on this rare path the whole
            // job is written.
            job.completing = false;
            let before = entry.job.state;
            entry.job = job;
            self.store.save_job(&self.jobs[&id].job)?;
            self.after_change(id, before, now);
            return Err(error);
        }
        // The job as Complete leaves it (ACKNOWLEDGED, told to subscribers as it goes), and
        // the call's success code: S_OK, or BG_S_PARTIAL_COMPLETE if it kept only some files.
        let mut done = job;
        let mut code = match done.complete(now) {
            Ok(code) => code,
            Err(error) => {
                tracing::error!(job = %id, "completed, but its state says {error}");
                hresult::S_OK
            }
        };
        // The files' rows held their names; the reply's name is recorded apart.
        let renamed_reply = self.jobs[&id]
            .job
            .reply
            .as_ref()
            .and_then(|reply| reply.temp_name.clone());
        if let Some(reply) = renamed_reply
            && let Err(error) = self.store.forget_temp_names(&[reply])
        {
            tracing::error!("{error}");
        }
        let unfinished = done.unfinished_temp_names();
        let mut left: Vec<&str> = Vec::new();
        if !unfinished.is_empty() {
            // The engine may not have started a transfer it was told to stop: once it has
            // applied every command, it makes no more files.
            let engine_let_go = engine.sync(ENGINE_SYNC_TIMEOUT);
            let all_gone =
                self.discard_temp_files(unfinished.iter().map(String::as_str), engine_let_go);
            if !all_gone {
                code = hresult::BG_S_UNABLE_TO_DELETE_FILES;
            }
            if !(all_gone && engine_let_go) {
                left = unfinished.iter().map(String::as_str).collect();
            }
        }
        // The COMPLETING mark was the commit: a store that now refuses to delete the job
        // leaves it to the next start, which finds the mark, sees the files renamed, and
        // deletes it. The names of unfinished files that may still exist are recorded with
        // the deletion, for the next start to sweep.
        if let Err(error) = self.store.delete_job(id, &left) {
            tracing::warn!(
                job = %id,
                "completed, but {}; the next start removes it",
                error.description
            );
        }
        self.forget(id, done, now);
        Ok(Response::Done(code))
    }

    /// Complete in one go, with the lock held throughout (for callers that hold it anyway).
    pub(super) fn complete(
        &mut self,
        engine: &Engine,
        uid: u32,
        id: Guid,
        overwrite: Overwrite,
        now: Timestamp,
    ) -> Result<Response> {
        let pending = self.begin_complete(engine, uid, id, overwrite, now)?;
        self.finish_complete(engine, pending, now)
    }

    /// Refuses a call that would change job `id` while it is being completed.
    pub(super) fn refuse_if_completing(&self, id: Guid) -> Result<()> {
        if self.jobs.get(&id).is_some_and(|entry| entry.completing) {
            return Err(being_completed(id));
        }
        Ok(())
    }

    /// An auto-complete job that could not be completed stays TRANSFERRED and says why in
    /// its view, until a Complete or a Cancel.
    pub(super) fn auto_complete_failed(&mut self, id: Guid, error: QmgrError, now: Timestamp) {
        tracing::warn!(job = %id, "cannot complete it: {}", error.description);
        if let Some(entry) = self.jobs.get_mut(&id) {
            entry.complete_error = Some(Box::new(error));
        }
        let before = self
            .jobs
            .get(&id)
            .map_or(JobState::Transferred, |e| e.job.state);
        self.announce(id, before, now);
    }
}

/// Steps 2 and 3 of auto-completes begun by the driver, on a thread of their own (one for
/// the queue, started when first needed) so the driver goes on with the queue meanwhile.
/// The caller must not hold the queue's lock. If no thread can be made, the caller's
/// thread does them.
pub(super) fn finish_in_background(shared: &Weak<Shared>, pending: Vec<PendingComplete>) {
    if pending.is_empty() {
        return;
    }
    let Some(strong) = shared.upgrade() else {
        return;
    };
    let mut completer = strong.completer.lock();
    let pending = match completer.as_ref() {
        Some(sender) => match sender.send(pending) {
            Ok(()) => return,
            Err(returned) => returned.into_inner(),
        },
        None => pending,
    };
    let (sender, receiver) = crossbeam_channel::unbounded::<Vec<PendingComplete>>();
    let weak = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("qmgr-complete".into())
        .spawn(move || {
            // Renaming finished jobs' files is bulk work nobody waits on while transfers
            // run: it yields the processor to them (a failure to lower it changes nothing).
            let _ = rustix::process::setpriority_process(None, COMPLETER_NICENESS);
            // Ends when the queue is dropped (and with it the sender).
            for pending in receiver {
                rename_and_finish(&weak, pending);
            }
        });
    match spawned {
        Ok(_) => {
            let _ = sender.send(pending);
            *completer = Some(sender);
        }
        Err(error) => {
            drop(completer);
            drop(strong);
            tracing::warn!(
                "cannot start a thread to complete jobs ({error}); completing them here"
            );
            rename_and_finish(shared, pending);
        }
    }
}

fn rename_and_finish(shared: &Weak<Shared>, pending: Vec<PendingComplete>) {
    let mut renamed = Vec::with_capacity(pending.len());
    for mut each in pending {
        each.rename();
        renamed.push(each);
    }
    // A queue that was shut down meanwhile leaves the marks to the next start.
    let Some(shared) = shared.upgrade() else {
        return;
    };
    let now = shared.clock.now();
    let mut state = shared.state.lock();
    for each in renamed {
        let id = each.id;
        if let Err(error) = state.finish_complete(&shared.engine, each, now) {
            state.auto_complete_failed(id, error, now);
        }
    }
    let asked = state.schedule_needed;
    drop(state);
    if asked {
        let _ = shared.wake.send(());
    }
}

/// The niceness of the thread that completes `qmgr transfer`'s jobs (Linux sets it per
/// thread): below the transfers', so that renames never slow the downloads still running.
const COMPLETER_NICENESS: i32 = 10;

fn being_completed(id: Guid) -> QmgrError {
    QmgrError::from_code(hresult::BG_E_INVALID_STATE)
        .context(format_args!("job {id} is being completed"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use qmgr_core::config::Config;
    use qmgr_core::hresult;
    use qmgr_core::paths::StatePaths;
    use qmgr_core::service::{NewFile, Request, Response};
    use qmgr_core::{Guid, JobState, JobType};
    use qmgr_transfer::Overwrite;

    use crate::{QueueManager, SystemClock};

    const UID: u32 = 1000;

    fn call(manager: &QueueManager, request: Request) -> qmgr_core::Result<Response> {
        manager.handle(UID, request)
    }

    fn state_of(manager: &QueueManager, job: Guid) -> Option<JobState> {
        match call(manager, Request::GetJob { job }) {
            Ok(Response::Job(view)) => Some(view.job.state),
            Err(error) if error.hresult == hresult::BG_E_NOT_FOUND => None,
            other => panic!("{other:?}"),
        }
    }

    fn refused_as_invalid_state(outcome: qmgr_core::Result<Response>, what: &str) {
        match outcome {
            Err(error) => assert_eq!(
                error.hresult,
                hresult::BG_E_INVALID_STATE,
                "{what}: {}",
                error.description
            ),
            Ok(response) => panic!("{what} was accepted: {response:?}"),
        }
    }

    #[test]
    fn a_job_being_renamed_is_shown_transferred_refuses_changes_and_then_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let manager = QueueManager::start(
            Config::default(),
            &StatePaths::isolated(&dir.path().join("state")),
            Arc::new(SystemClock::new()),
        )
        .unwrap();
        let source = dir.path().join("source");
        std::fs::write(&source, b"the body").unwrap();
        let local = dir.path().join("local");
        let Response::JobCreated(job) = call(
            &manager,
            Request::CreateJob {
                display_name: "renamed later".into(),
                job_type: JobType::Download,
                umask: None,
            },
        )
        .unwrap() else {
            panic!("no job made");
        };
        call(
            &manager,
            Request::AddFiles {
                job,
                files: vec![NewFile::whole(
                    source.to_string_lossy(),
                    local.to_string_lossy(),
                )],
            },
        )
        .unwrap();
        call(&manager, Request::Resume { job }).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while state_of(&manager, job) != Some(JobState::Transferred) {
            assert!(Instant::now() < deadline, "never TRANSFERRED");
            std::thread::sleep(Duration::from_millis(10));
        }

        let mut pending = {
            let mut state = manager.shared.state.lock();
            let now = manager.shared.clock.now();
            state
                .begin_complete(&manager.shared.engine, UID, job, Overwrite::Replace, now)
                .unwrap()
        };
        // The lock is free while the files wait: reads are answered, changes refused.
        assert_eq!(state_of(&manager, job), Some(JobState::Transferred));
        refused_as_invalid_state(call(&manager, Request::Cancel { job }), "Cancel");
        refused_as_invalid_state(call(&manager, Request::Suspend { job }), "Suspend");
        refused_as_invalid_state(call(&manager, Request::Complete { job }), "Complete");
        refused_as_invalid_state(
            call(
                &manager,
                Request::AddFiles {
                    job,
                    files: vec![NewFile::whole(
                        source.to_string_lossy(),
                        dir.path().join("more").to_string_lossy(),
                    )],
                },
            ),
            "AddFiles",
        );
        assert!(!local.exists(), "renamed before its step");
        assert!(!manager.is_idle(), "idle with a Complete under way");

        pending.rename();
        assert_eq!(std::fs::read(&local).unwrap(), b"the body");
        let mut state = manager.shared.state.lock();
        let now = manager.shared.clock.now();
        let done = state.finish_complete(&manager.shared.engine, pending, now);
        drop(state);
        assert!(
            matches!(done, Ok(Response::Done(code)) if code == hresult::S_OK),
            "{done:?}"
        );
        assert_eq!(state_of(&manager, job), None);
        assert!(!dir.path().join("more").exists());
        manager.shutdown();
    }
}
