//! Operations on one job: create, add files, move through the state machine, change
//! settings, cancel and complete; saving a change and telling subscribers.

use std::hash::BuildHasher;
use std::path::Path;
use std::time::Duration;

use qmgr_core::error::{ErrorContext, QmgrError, Result};
use qmgr_core::hresult;
use qmgr_core::job::JobSnapshot;
use qmgr_core::service::{JobChange, NewFile, Response};
use qmgr_core::{Guid, Job, JobState, JobType, Timestamp};
use qmgr_transfer::{Engine, Overwrite};

use super::settings::apply_change;
use super::{ROOT, State};

/// How long Cancel and Complete wait for the engine to let go of a job's transfers before
/// deleting their temporary files (a guard; the engine answers within one loop).
pub(super) const ENGINE_SYNC_TIMEOUT: Duration = Duration::from_secs(10);

impl State {
    pub(super) fn create_job(
        &mut self,
        uid: u32,
        display_name: &str,
        job_type: JobType,
        group: Option<(Guid, Guid)>,
        umask: Option<u32>,
        now: Timestamp,
    ) -> Result<Response> {
        // A group's job takes the place its group already counts for.
        if group.is_none() {
            self.check_job_quota(uid)?;
        }
        let defaults = &self.config.job_defaults;
        let settings = qmgr_core::JobSettings {
            minimum_retry_delay: defaults.minimum_retry_delay,
            no_progress_timeout: defaults.no_progress_timeout,
            parallel_files: defaults.parallel_files,
            ..qmgr_core::JobSettings::default()
        };
        let id = group.map_or_else(Guid::new_random, |(_, job)| job);
        let mut job = Job::new(id, display_name, job_type, uid, settings, now)?;
        job.priority = defaults.priority;
        job.group = group.map(|(group, _)| group);
        // The files get the mode the creating process would give them (DESIGN "Decisions,
        // second round"), not the one of whoever started qmgrd.
        job.umask = umask
            .filter(|umask| *umask <= 0o777)
            .unwrap_or(qmgr_core::job::DEFAULT_UMASK);
        self.store.insert_job(&job)?;
        self.add_entry(job);
        Ok(Response::JobCreated(id))
    }

    /// `max_jobs_per_user` (root is unlimited): a user's jobs and legacy groups count, a
    /// group together with its job once.
    pub(super) fn check_job_quota(&self, uid: u32) -> Result<()> {
        if uid == ROOT {
            return Ok(());
        }
        let jobs = self.owned.get(&uid).copied().unwrap_or(0);
        let groups = self
            .groups
            .values()
            .filter(|g| g.owner_uid == uid && g.job.is_none_or(|job| !self.jobs.contains_key(&job)))
            .count();
        let limit = self.config.max_jobs_per_user as usize;
        if jobs + groups >= limit {
            return Err(
                QmgrError::from_code(hresult::BG_E_TOO_MANY_JOBS_PER_USER).context(format_args!(
                    "you have {jobs} jobs and {groups} legacy groups without one; the limit is \
                     {limit} (config key max_jobs_per_user)"
                )),
            );
        }
        Ok(())
    }

    /// AddFiles, all or nothing: the files are added to the job (each name checked, local
    /// names against the job's index of them), then only their rows and the job's row are
    /// written. A refused file or write takes every file of the call back out.
    pub(super) fn add_files(
        &mut self,
        uid: u32,
        id: Guid,
        files: &[NewFile],
        now: Timestamp,
    ) -> Result<Response> {
        let max_files = self.config.max_files_per_job;
        self.entry(uid, id)?;
        let hasher = &self.name_hasher;
        let entry = self.jobs.get_mut(&id).expect("looked up");
        let undo = entry.job.snapshot(None);
        let first_new = entry.job.files.len();
        let mut checked_directory: Option<&Path> = None;
        let mut added = Ok(());
        for file in files {
            let hash = hasher.hash_one(&file.local_name);
            // A hash hit may be another name with the same hash: only then are names compared.
            let taken = entry.local_names.contains(&hash)
                && entry
                    .job
                    .files
                    .iter()
                    .any(|f| f.local_name == file.local_name);
            added = entry
                .job
                .add_file_known_taken(
                    &file.remote_name,
                    &file.local_name,
                    file.ranges.as_deref(),
                    max_files,
                    taken,
                    now,
                )
                .map(|_| ());
            if added.is_err() {
                break;
            }
            entry.local_names.insert(hash);
            if entry.job.job_type.is_upload() {
                // An upload's local name is its source, not a destination to make.
                let lower = file.remote_name.to_ascii_lowercase();
                if !lower.starts_with("http://") && !lower.starts_with("https://") {
                    added = Err(QmgrError::invalid_arg(format!(
                        "{}: uploads go to http and https servers only",
                        file.remote_name
                    )));
                    break;
                }
                match super::upload::check_source(&file.local_name) {
                    Ok(source) => {
                        let index = entry.job.files.len() - 1;
                        let record = &mut entry.job.files[index];
                        record.bytes_total = source.size;
                        record.upload = Some(Box::new(qmgr_core::file::UploadRecord {
                            source,
                            ..qmgr_core::file::UploadRecord::default()
                        }));
                        entry.job.recount_files();
                    }
                    Err(error) => {
                        added = Err(error);
                        break;
                    }
                }
                continue;
            }
            // Files of one call mostly share a directory: it is checked once.
            let directory = Path::new(&file.local_name).parent();
            if directory.is_none() || directory != checked_directory {
                added = check_local_directory(&file.local_name);
                if added.is_err() {
                    break;
                }
                checked_directory = directory;
            }
        }
        if let Err(error) = added {
            entry.job.restore(undo);
            entry.index_local_names(hasher);
            return Err(error);
        }
        if let Err(error) = self.commit(id, undo, Changed::FilesFrom(first_new), now) {
            if let Some(entry) = self.jobs.get_mut(&id) {
                entry.index_local_names(&self.name_hasher);
            }
            return Err(error);
        }
        self.schedule_if_runnable(id);
        Ok(Response::Done(hresult::S_OK))
    }

    /// A call that moves the job through the state machine.
    pub(super) fn change(
        &mut self,
        engine: &Engine,
        uid: u32,
        id: Guid,
        now: Timestamp,
        call: impl FnOnce(&mut Job, Timestamp) -> Result<qmgr_core::HResult>,
    ) -> Result<Response> {
        self.entry(uid, id)?;
        let job = &mut self.jobs.get_mut(&id).expect("looked up").job;
        let undo = job.snapshot(None);
        let code = match call(job, now) {
            Ok(code) => code,
            Err(error) => {
                job.restore(undo);
                return Err(error);
            }
        };
        let stops = !job.state.is_runnable();
        self.commit(id, undo, Changed::Row, now)?;
        if stops {
            self.stop_transfers(engine, id);
        }
        self.schedule_needed = true;
        Ok(Response::Done(code))
    }

    /// Saves what a request changed in job `id` (`changed` says what: the narrowest write
    /// that holds it), keeps its timers right and tells subscribers. A request changes the
    /// job in place after taking `undo`: if the store refuses the write, the job is put
    /// back as it was and the request fails with the store's error.
    pub(super) fn commit(
        &mut self,
        id: Guid,
        undo: JobSnapshot,
        changed: Changed,
        now: Timestamp,
    ) -> Result<()> {
        let entry = self.jobs.get_mut(&id).expect("committed jobs exist");
        let written = match changed {
            Changed::Row => self.store.save_job_row(&entry.job),
            Changed::File(index) => self.store.save_job_and_files(&entry.job, &[index]),
            Changed::FilesFrom(first) => self.store.insert_files(&entry.job, first),
            Changed::Credentials => self.store.save_job_credentials(&entry.job),
        };
        let before = undo.state();
        if let Err(error) = written {
            entry.job.restore(undo);
            return Err(error);
        }
        if let Changed::File(index) = changed {
            // The file's row carries its bytes, newer than any progress pending for it.
            self.batcher
                .forget_file(id, u32::try_from(index).unwrap_or(u32::MAX));
        }
        self.after_change(id, before, now);
        Ok(())
    }

    /// What follows a committed change of job `id` that was in state `before`: its
    /// complete error and timer follow the state, and subscribers are told.
    pub(super) fn after_change(&mut self, id: Guid, before: JobState, now: Timestamp) {
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        let after = entry.job.state;
        if before != after {
            entry.complete_error = None;
            if after == JobState::Transferred && entry.job.auto_complete.is_some() {
                self.auto_complete_due.push(id);
            }
        }
        if before == JobState::TransientError && after != JobState::TransientError {
            self.timers.retain(|(_, job)| *job != id);
        }
        self.announce(id, before, now);
    }

    pub(super) fn stop_transfers(&mut self, engine: &Engine, id: Guid) {
        if let Some(entry) = self.jobs.get_mut(&id) {
            // A check under way is for this run: its verdict no longer starts anything.
            entry.certificate_gate = None;
        }
        if let Some(entry) = self.jobs.get_mut(&id)
            && let Some(run) = entry.run.take()
        {
            entry.throttled = false;
            for transfer in run.transfers {
                let _ = engine.cancel(transfer);
                if let Some(slot) = self.transfers.remove(&transfer) {
                    self.stopped.insert(transfer, (slot.job, slot.file));
                }
            }
        }
    }

    pub(super) fn cancel(
        &mut self,
        engine: &Engine,
        uid: u32,
        id: Guid,
        now: Timestamp,
    ) -> Result<Response> {
        let mut job = self.entry(uid, id)?.job.clone();
        self.refuse_if_completing(id)?;
        let mut code = job.cancel(now)?;
        self.stop_transfers(engine, id);
        // The engine may not have started a transfer it was just told to cancel (or one of
        // an earlier Suspend): once it has applied every command, it makes no more files.
        let engine_let_go = engine.sync(ENGINE_SYNC_TIMEOUT);
        // Every temporary file goes: unfinished ones and finished ones not yet renamed.
        let temps: Vec<String> = job.temp_names().map(str::to_owned).collect();
        let left: Vec<&str> = temps.iter().map(String::as_str).collect();
        // The job leaves the store before its files go: if the store refuses, nothing
        // changed (the scheduler gives the job its slot back). Its files' names stay
        // recorded, so a crash in between leaves temporary files the next start sweeps.
        if let Err(error) = self.store.delete_job(id, &left) {
            self.schedule_needed = true;
            return Err(error);
        }
        if !self.discard_temp_files(left, engine_let_go) {
            code = hresult::BG_S_UNABLE_TO_DELETE_FILES;
        }
        super::upload::cancel_sessions(engine, &job);
        self.forget(id, job, now);
        Ok(Response::Done(code))
    }

    /// The job left the queue (ACKNOWLEDGED or CANCELLED) and the store (the caller
    /// deleted it).
    pub(super) fn forget(&mut self, id: Guid, job: Job, now: Timestamp) {
        self.batcher.forget(id);
        self.download_clocks.forget(id);
        self.timers.retain(|(_, job)| *job != id);
        let before = self.jobs.get(&id).map_or(job.state, |e| e.job.state);
        if let Some(entry) = self.jobs.get_mut(&id) {
            entry.job = job;
        }
        self.announce(id, before, now);
        self.forget_certificate_validator(id);
        if let Some(entry) = self.jobs.remove(&id)
            && let Some(count) = self.owned.get_mut(&entry.job.owner_uid)
        {
            *count = count.saturating_sub(1);
        }
        self.schedule_needed = true;
    }

    pub(super) fn set_job(
        &mut self,
        engine: &Engine,
        uid: u32,
        id: Guid,
        change: JobChange,
        now: Timestamp,
    ) -> Result<Response> {
        self.entry(uid, id)?;
        if let JobChange::ValidationState { file, valid } = change {
            return self.set_validation_state(engine, id, file, valid, now);
        }
        // Under a bandwidth schedule a transfer counts against its priority's cap, fixed
        // when it starts: a move between background priorities starts it again.
        let moves_between_caps = matches!(&change, JobChange::Priority(priority)
            if !self.config.schedules.is_empty()
                && self.jobs.get(&id).is_some_and(|e| e.job.priority != *priority));
        let job = &mut self.jobs.get_mut(&id).expect("looked up").job;
        job.ensure_mutable()?;
        let changed = match &change {
            JobChange::RemoteName { file, .. } => Changed::File(*file as usize),
            JobChange::Credentials(_) | JobChange::RemoveCredentials { .. } => Changed::Credentials,
            _ => Changed::Row,
        };
        let undo = job.snapshot(match changed {
            Changed::File(index) => Some(index),
            _ => None,
        });
        // A running job's new width takes effect at once: its files waiting in the engine's
        // lane, and more of them, may start now rather than when one of its files ends.
        let rewidens = matches!(change, JobChange::ParallelFiles(_));
        let applied = apply_change(job, change, &self.paths, now);
        let (restart, complete_now) = match applied {
            Ok(Some((restart, complete_now))) => (restart || moves_between_caps, complete_now),
            Ok(None) => {
                job.restore(undo);
                return Ok(Response::Done(hresult::S_FALSE));
            }
            Err(error) => {
                job.restore(undo);
                return Err(error);
            }
        };
        // Throttling and sources are fixed per transfer: start again with the new ones.
        if restart && job.state.is_active() {
            job.state = JobState::Queued;
        }
        let limit = job.settings.maximum_download_time;
        self.commit(id, undo, changed, now)?;
        self.download_clocks.arm(id, limit, now);
        if restart {
            self.stop_transfers(engine, id);
        }
        if complete_now {
            self.auto_complete_due.push(id);
        }
        self.share_job_limit(engine, id);
        if rewidens && self.jobs.get(&id).is_some_and(|e| e.run.is_some()) {
            self.fill_transfers(engine, id, now);
        }
        self.schedule_if_runnable(id);
        Ok(Response::Done(hresult::S_OK))
    }

    /// A change of job `id` asks for a scheduling pass only if the job may run: the files
    /// and settings given to a suspended job before its Resume change nobody's slot, and
    /// a pass they asked for would hold back the one the Resume asks for (passes are at
    /// least `MIN_PASS_INTERVAL` apart).
    fn schedule_if_runnable(&mut self, id: Guid) {
        if self
            .jobs
            .get(&id)
            .is_some_and(|e| e.job.state.is_runnable())
        {
            self.schedule_needed = true;
        }
    }

    /// IBackgroundCopyFile3::SetValidationState on a job looked up for its owner. A rejected
    /// file loses its bytes and its temporary file, and its job stops in ERROR.
    fn set_validation_state(
        &mut self,
        engine: &Engine,
        id: Guid,
        file: u32,
        valid: bool,
        now: Timestamp,
    ) -> Result<Response> {
        let entry = self.jobs.get_mut(&id).expect("looked up");
        let undo = entry.job.snapshot(Some(file as usize));
        let rejected_temp = match entry.job.set_validation_state(file, valid, now) {
            Ok(temp) => temp,
            Err(error) => {
                entry.job.restore(undo);
                return Err(error);
            }
        };
        if valid {
            self.commit(id, undo, Changed::File(file as usize), now)?;
            return Ok(Response::Done(hresult::S_OK));
        }
        // The file is unfinished again: the next run's cursor must see it.
        entry.first_unfinished = entry.first_unfinished.min(file as usize);
        // Its row lets go of the temporary file's name before the file is gone: the name
        // is recorded first, so a crash in between leaves nothing unknown behind.
        if let Some(temp) = &rejected_temp
            && let Err(error) = self.store.record_temp_name(temp)
        {
            entry.job.restore(undo);
            return Err(error);
        }
        self.stop_transfers(engine, id);
        self.commit(id, undo, Changed::File(file as usize), now)?;
        // Only now that the store no longer names it may the temporary file go.
        self.discard_temp_files(rejected_temp.as_deref(), true);
        self.schedule_needed = true;
        Ok(Response::Done(hresult::S_OK))
    }

    /// Deletes temporary files of a job that is going away; returns whether every one is
    /// gone. Their names are forgotten only if `engine_let_go` (else the engine might still
    /// make one, and the next start sweeps it).
    pub(super) fn discard_temp_files<'a>(
        &mut self,
        temps: impl IntoIterator<Item = &'a str>,
        engine_let_go: bool,
    ) -> bool {
        let mut all_gone = true;
        let mut gone = Vec::new();
        for temp in temps {
            if qmgr_transfer::discard(Path::new(temp)).is_ok() {
                gone.push(temp);
            } else {
                all_gone = false;
            }
        }
        if engine_let_go && let Err(error) = self.store.forget_temp_names(&gone) {
            tracing::error!("{error}");
        }
        all_gone
    }
}

/// What a request changed in a job, so that `commit` writes only that.
#[derive(Clone, Copy, Debug)]
pub(super) enum Changed {
    /// The job's own row: state, settings, times.
    Row,
    /// The job's row and the row of this file.
    File(usize),
    /// The job's row and the files from this index on, just added.
    FilesFrom(usize),
    /// The job's row and its credentials.
    Credentials,
}

/// AddFile's check of the local name's directory: it must exist and be writable.
pub(super) fn check_local_directory(local_name: &str) -> Result<()> {
    let dir = Path::new(local_name).parent().unwrap_or(Path::new("/"));
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(QmgrError::new(
                hresult::HRESULT_PATH_NOT_FOUND,
                ErrorContext::LocalFile,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Err(error) => {
            return Err(QmgrError::new(
                qmgr_transfer::hresult_for_io(&error),
                ErrorContext::LocalFile,
                format!("the directory {} cannot be used: {error}", dir.display()),
            ));
        }
    }
    rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).map_err(|_| {
        QmgrError::new(
            hresult::E_ACCESSDENIED,
            ErrorContext::LocalFile,
            format!("the directory {} is not writable", dir.display()),
        )
    })
}

/// Renames every finished file of a job to its final name; each directory is synced once,
/// after its files (also when a rename failed: the files moved before it stay moved).
pub(super) fn rename_finished(job: &mut Job, overwrite: Overwrite) -> Result<()> {
    let mut finalizer = qmgr_transfer::Finalizer::new(overwrite, job.umask);
    let mut moved = Ok(());
    for file in job.files.iter_mut().filter(|f| f.completed) {
        if let Some(temp) = &file.temp_name {
            moved = finalizer.finalize(Path::new(temp), Path::new(&file.local_name));
            if moved.is_err() {
                break;
            }
            // A finished file without a temporary name is in place: a later Complete skips it.
            file.temp_name = None;
        }
    }
    if moved.is_ok() {
        moved = super::reply::place_reply(job, &mut finalizer);
    }
    let synced = finalizer.finish();
    moved.and(synced)
}

#[cfg(test)]
mod tests {
    use qmgr_core::JobPriority;
    use qmgr_core::service::{JobChange, NewFile, Request};

    use crate::manager::test_support::{UID, job_of_three_files};

    /// A client sets a job up (settings, files) before it resumes it: only the Resume may
    /// change who runs, and a pass asked for earlier would delay the one it asks for.
    #[test]
    fn setting_up_a_suspended_job_asks_for_no_scheduling_pass_and_resuming_it_does() {
        let dir = tempfile::tempdir().unwrap();
        let (manager, job) = job_of_three_files(dir.path());
        let engine = &manager.shared.engine;
        let now = manager.shared.clock.now();
        let mut guard = manager.shared.state.lock();
        let state = &mut *guard;
        let mut handle = |request: Request| {
            state.schedule_needed = false;
            state.handle(engine, UID, request, now).unwrap();
            state.schedule_needed
        };
        let priority = |priority| Request::SetJob {
            job,
            change: JobChange::Priority(priority),
        };
        assert!(
            !handle(priority(JobPriority::Low)),
            "SetJob of a suspended job"
        );
        let more = NewFile::whole(
            dir.path().join("nowhere").to_string_lossy(),
            dir.path().join("f3").to_string_lossy(),
        );
        let files = vec![more];
        assert!(!handle(Request::AddFiles { job, files }), "AddFiles to it");
        assert!(handle(Request::Resume { job }), "its Resume");
        assert!(
            handle(priority(JobPriority::High)),
            "SetJob of a job that may run"
        );
        drop(guard);
        manager.shutdown();
    }
}
