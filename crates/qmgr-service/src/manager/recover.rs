//! Start-up: loading the store, finishing interrupted Completes, trusting partial files as
//! far as a crash or reboot allows, and sweeping leftover temporary files.

use std::path::Path;

use qmgr_core::error::{ErrorContext, Result};
use qmgr_core::{Job, JobError, JobState, Timestamp};
use qmgr_transfer::Overwrite;

use super::{Entry, State};

impl State {
    /// Loads the store: finishes interrupted Completes, puts running jobs back in the
    /// queue, and trusts partial files as far as a crash or reboot allows.
    ///
    /// Each job goes into the queue as it is read, so the queue is never in memory twice;
    /// what must be written back (rare: a job that was running, a partial file that changed,
    /// a Complete to finish) is written once the store has been read through.
    pub(super) fn recover(&mut self, now: Timestamp, rebooted: bool) -> Result<()> {
        for group in self.store.load_groups()? {
            self.groups.insert(group.id, group);
        }
        let mut changed_jobs = Vec::new();
        let mut completed_jobs = Vec::new();
        let mut retrying_jobs = Vec::new();
        self.store.for_each_job(|mut job| {
            match recover_job(&mut job, now, rebooted) {
                Recovered::Completed => {
                    // Complete was committed: its renames are finished now, and the job is
                    // forgotten below, with the names of its unfinished files, which the
                    // sweep then makes sure are gone.
                    finish_renames(&job);
                    completed_jobs.push((job.id, job.unfinished_temp_names()));
                    return Ok(());
                }
                Recovered::Changed => changed_jobs.push(job.id),
                Recovered::AsStored => {}
            }
            // A job that transferred while no service could complete it (or whose
            // completion a crash interrupted before COMPLETING was marked).
            if job.state == JobState::Transferred && job.auto_complete.is_some() {
                self.auto_complete_due.push(job.id);
            }
            if job.state == JobState::TransientError {
                retrying_jobs.push(job.id);
            }
            // As `add_entry`, which cannot be called while the store is being read.
            *self.owned.entry(job.owner_uid).or_default() += 1;
            let id = job.id;
            let entry = Entry::new(job, self.next_seq, self.next_turn, &self.name_hasher);
            self.next_seq += 1;
            self.next_turn += 1;
            self.jobs.insert(id, Box::new(entry));
            Ok(())
        })?;
        for (id, unfinished) in completed_jobs {
            let left: Vec<&str> = unfinished.iter().map(String::as_str).collect();
            self.store.delete_job(id, &left)?;
        }
        for id in changed_jobs {
            if let Some(entry) = self.jobs.get(&id) {
                self.store.save_job(&entry.job)?;
            }
        }
        for id in retrying_jobs {
            self.arm_timer(id, now);
        }
        self.sweep_temp_files();
        Ok(())
    }

    /// Deletes the temporary files this store recorded that no job holds any more (a crash
    /// came between a Cancel, a Complete or a failed delete and the file's end), and
    /// forgets their names. Nothing else is touched: a `.BIT*.tmp` name this store never
    /// handed out may be another store's or another user's download; and `discard` leaves
    /// whatever belongs to another uid.
    pub(super) fn sweep_temp_files(&mut self) {
        let held: std::collections::HashSet<&str> = self
            .jobs
            .values()
            .flat_map(|e| e.job.temp_names())
            .collect();
        let recorded = match self.store.temp_names() {
            Ok(names) => names,
            Err(error) => {
                tracing::error!("{error}");
                return;
            }
        };
        let mut gone = Vec::new();
        for name in recorded.into_iter().filter(|n| !held.contains(n.as_str())) {
            let path = Path::new(&name);
            let ours_in_shape = path.is_absolute()
                && path
                    .file_name()
                    .is_some_and(qmgr_core::file::is_temp_file_name);
            if ours_in_shape && let Err(error) = qmgr_transfer::discard(path) {
                tracing::warn!("cannot delete the leftover temporary file {name}: {error}");
                continue;
            }
            gone.push(name);
        }
        if let Err(error) = self.store.forget_temp_names(&gone) {
            tracing::error!("{error}");
        }
    }
}

/// What start-up made of a job read from the store.
#[derive(Debug, PartialEq, Eq)]
enum Recovered {
    /// Nothing to write: a queue of many waiting jobs starts without rewriting any of them.
    AsStored,
    /// The job changed and must be written back.
    Changed,
    /// Its Complete was committed before the service stopped: the renames are to be
    /// finished and the job forgotten.
    Completed,
}

/// Brings a job read from the store up to date with what survived: its untrusted paths
/// quarantined, a running job queued again, and partial files trusted as far as a crash or
/// reboot allows. Only reads the disk; the caller writes.
fn recover_job(job: &mut Job, now: Timestamp, rebooted: bool) -> Recovered {
    if quarantine_untrusted_paths(job, now) {
        job.recount_files();
        return Recovered::Changed;
    }
    if job.completing {
        return Recovered::Completed;
    }
    let mut changed = false;
    if job.state.is_active() {
        job.state = JobState::Queued;
        changed = true;
    }
    for file in &mut job.files {
        // An upload resumes from where its server last said, with the hash of that much of
        // its source (the progress may count bytes sent and not acknowledged); its first
        // fragment, one byte, asks the server where it stands. Nothing on disk to check.
        if file.upload.is_some() {
            continue;
        }
        // A file with nothing on disk and no name for it has nothing to check.
        if file.completed || (file.temp_name.is_none() && file.bytes_transferred == 0) {
            continue;
        }
        let on_disk = file
            .temp_name
            .as_deref()
            .and_then(|t| std::fs::metadata(t).ok())
            .map(|m| m.len());
        let (temp_name, bytes) = (file.temp_name.is_some(), file.bytes_transferred);
        match on_disk {
            // After a process crash the page cache kept every byte written; after a
            // reboot only the checkpointed length is known to be good.
            Some(len) if !rebooted => file.bytes_transferred = len.min(file.bytes_total),
            Some(_) => {}
            None => {
                file.temp_name = None;
                file.bytes_transferred = 0;
            }
        }
        changed |= (file.temp_name.is_some(), file.bytes_transferred) != (temp_name, bytes);
    }
    if let Some(reply) = job.reply.as_mut()
        && !reply.done
        && let Some(temp) = &reply.temp_name
    {
        let before = reply.bytes;
        match std::fs::metadata(temp).map(|m| m.len()) {
            Ok(len) if !rebooted => reply.bytes = len.min(reply.bytes_total),
            Ok(_) => {}
            Err(_) => reply.bytes = 0,
        }
        changed |= reply.bytes != before;
    }
    if changed {
        // The files' bytes were set from the disk in place: the job counts them again.
        job.recount_files();
        Recovered::Changed
    } else {
        Recovered::AsStored
    }
}

/// Whether the machine rebooted since the store was last used (the boot id changed); the
/// current boot id is recorded for next time.
pub(super) fn boot_changed(state_dir: &Path) -> Result<bool> {
    use qmgr_core::trust::{Access, open_private_file};
    use std::io::{Read, Seek, Write};

    let current = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let record = state_dir.join("boot_id");
    let mut file = open_private_file(&record, Access::ReadWriteCreate, "boot id record")?;
    let mut previous = String::new();
    let _ = file.read_to_string(&mut previous);
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = file.write_all(current.as_bytes());
    Ok(!previous.is_empty() && previous != current)
}

/// Checks the paths of a job read back from the store (see
/// `FileRecord::check_stored_paths`). A job with a path qmgr would never have written is
/// put in ERROR with the bad temporary names forgotten, so nothing of it is ever renamed,
/// opened or deleted; returns whether that happened.
pub(super) fn quarantine_untrusted_paths(job: &mut Job, now: Timestamp) -> bool {
    let mut first_bad = None;
    for (index, file) in job.files.iter_mut().enumerate() {
        if let Err(error) = file.check_stored_paths() {
            tracing::error!(job = %job.id, "file {index}: {}", error.description);
            file.temp_name = None;
            file.completed = false;
            file.bytes_transferred = 0;
            first_bad.get_or_insert((index, error));
        }
    }
    if let Some(reply) = job.reply.as_mut()
        && let (Some(file_name), Some(temp)) = (&reply.file_name, &reply.temp_name)
    {
        let mut as_file = qmgr_core::FileRecord::new("", file_name);
        as_file.temp_name = Some(temp.clone());
        if let Err(error) = as_file.check_stored_paths() {
            tracing::error!(job = %job.id, "reply: {}", error.description);
            let _ = reply.reset();
            first_bad.get_or_insert((0, error));
        }
    }
    let Some((index, error)) = first_bad else {
        return false;
    };
    job.completing = false;
    job.state = JobState::Error;
    let mut error = error;
    error.context = ErrorContext::LocalFile;
    job.error = Some(Box::new(JobError {
        error: error.context(format_args!(
            "the store of this job holds a path qmgr would not have written; nothing was \
             renamed or deleted"
        )),
        file_index: u32::try_from(index).ok(),
        protocol: None,
        at: now,
        retry_after: None,
    }));
    true
}

/// At start-up: the renames of a Complete that was interrupted. A temporary file already
/// renamed is simply gone.
pub(super) fn finish_renames(job: &Job) {
    for file in job.files.iter().filter(|f| f.completed) {
        if let Some(temp) = &file.temp_name
            && is_our_file(Path::new(temp))
            && let Err(error) = qmgr_transfer::finalize(
                Path::new(temp),
                Path::new(&file.local_name),
                Overwrite::Replace,
                job.umask,
            )
        {
            tracing::error!(job = %job.id, "cannot finish Complete: {error}");
        }
    }
    if let Some(reply) = &job.reply
        && let (Some(file_name), Some(temp)) = (&reply.file_name, &reply.temp_name)
        && is_our_file(Path::new(temp))
        && let Err(error) = qmgr_transfer::finalize(
            Path::new(temp),
            Path::new(file_name),
            Overwrite::Replace,
            job.umask,
        )
    {
        tracing::error!(job = %job.id, "cannot finish Complete of the reply: {error}");
    }
    for file in job.files.iter().filter(|f| !f.completed) {
        if let Some(temp) = &file.temp_name
            && is_our_file(Path::new(temp))
        {
            let _ = qmgr_transfer::discard(Path::new(temp));
        }
    }
}

/// Whether `path` is a regular file (not a link) of the user qmgr runs as: only those are
/// renamed into place or deleted when a Complete is finished at start-up.
pub(super) fn is_our_file(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.is_file() && m.uid() == qmgr_core::trust::effective_uid())
}
