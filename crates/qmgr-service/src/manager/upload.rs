//! Upload jobs in the queue: their one file is sent over the BITS upload protocol by the
//! engine; the server's word on where the upload stands is kept in the file's record, so an
//! upload resumes after a drop, a SIGKILL or a reboot without resending what the server
//! holds, and a source that changed meanwhile stops the job rather than splicing it.

use std::path::Path;
use std::time::Duration;

use qmgr_core::error::{ErrorContext, QmgrError, Result};
use qmgr_core::file::{SourceIdentity, UploadRecord};
use qmgr_core::{Guid, Timestamp, hresult};
use qmgr_transfer::upload::UploadState;
use qmgr_transfer::{Engine, TransferId, UploadPhase, UploadRequest};

use super::{Slot, State};

/// AddFile of an upload job: the source must be a regular file this user can read. Its
/// identity is what later attempts compare against.
pub(super) fn check_source(local_name: &str) -> Result<SourceIdentity> {
    let opened =
        qmgr_transfer::upload::open_source(Path::new(local_name)).and_then(|file| file.metadata());
    match opened {
        Ok(status) => Ok(SourceIdentity::of_status(&status)),
        Err(error) if error.kind() == std::io::ErrorKind::InvalidInput => {
            Err(QmgrError::invalid_arg(format!(
                "the file to upload, {local_name}, is not a regular file"
            )))
        }
        Err(error) => Err(QmgrError::new(
            qmgr_transfer::hresult_for_io(&error),
            ErrorContext::LocalFile,
            format!("the file to upload, {local_name}, cannot be read: {error}"),
        )),
    }
}

/// The longest BITS keeps telling a server about a cancelled upload.
const MAX_CANCEL_SESSION_TRIES: Duration = Duration::from_secs(24 * 3600);

/// A cancelled job's unfinished uploads: their servers are told to drop the partial files
/// (Cancel-Session), retried for up to a day or the job's no-progress timeout if shorter.
pub(super) fn cancel_sessions(engine: &Engine, job: &qmgr_core::Job) {
    let headers = job
        .settings
        .custom_headers
        .as_deref()
        .and_then(|text| qmgr_core::job::parse_custom_headers(text).ok())
        .unwrap_or_default();
    let give_up_after = job
        .settings
        .no_progress_timeout
        .min(MAX_CANCEL_SESSION_TRIES);
    for file in &job.files {
        if let Some(upload) = &file.upload
            && !upload.closed
            && let Some(session) = &upload.session
        {
            engine.cancel_upload_session(
                file.remote_name.clone(),
                session.clone(),
                upload.host.clone(),
                headers.clone(),
                give_up_after,
            );
        }
    }
}

/// The source must be the file that was added: one that changed is never sent half old,
/// half new.
fn check_unchanged(local_name: &str, record: &UploadRecord) -> Result<()> {
    let now = SourceIdentity::of(Path::new(local_name)).map_err(|error| {
        QmgrError::new(
            qmgr_transfer::hresult_for_io(&error),
            ErrorContext::LocalFile,
            format!("the file to upload, {local_name}: {error}"),
        )
    })?;
    if now != record.source {
        return Err(QmgrError::new(
            hresult::BG_E_LOCAL_FILE_CHANGED,
            ErrorContext::LocalFile,
            format!(
                "{local_name} changed since it was added to the job ({} bytes then, {} now, or \
                 another modification time or inode): it is not uploaded half old, half new",
                record.source.size, now.size
            ),
        ));
    }
    Ok(())
}

/// The engine's view of a recorded upload.
fn resume_state(record: &UploadRecord) -> Option<UploadState> {
    record.session.as_ref()?;
    let mut state = UploadState::new(record.source.size);
    state.session.clone_from(&record.session);
    state.offset = record.offset.min(record.source.size);
    state.host.clone_from(&record.host);
    state.sent_hash = record.sent_hash;
    state.host_fallback = record.host_fallback_secs.map(Duration::from_secs);
    if record.fragment_bytes > 0 {
        state.fragment_bytes = record.fragment_bytes;
    }
    Some(state)
}

/// What runs next for an upload job's file: a part of the upload, or an upload-reply
/// job's reply (`None`).
fn next_part(job: &qmgr_core::Job) -> Option<UploadPhase> {
    match &job.reply {
        None => Some(UploadPhase::Whole),
        Some(reply) if reply.done => Some(UploadPhase::CloseOnly),
        Some(reply) if reply.url.is_some() => None,
        Some(_) => Some(UploadPhase::SendOnly),
    }
}

impl State {
    /// Starts what comes next for file `index` of upload job `id` (its one file): the
    /// upload, the reply's download, or the Close-Session after the reply.
    pub(super) fn start_upload(
        &mut self,
        engine: &Engine,
        id: Guid,
        index: usize,
    ) -> Result<TransferId> {
        let job = &self.jobs[&id].job;
        let Some(phase) = next_part(job) else {
            return self.start_reply(engine, id, index);
        };
        let file = &job.files[index];
        let record = file.upload.clone().unwrap_or_default();
        // After the reply only Close-Session is left: the source is not read again.
        if phase != UploadPhase::CloseOnly {
            check_unchanged(&file.local_name, &record)?;
        }
        let headers = match &job.settings.custom_headers {
            Some(text) => qmgr_core::job::parse_custom_headers(text)?,
            None => Vec::new(),
        };
        let request = UploadRequest {
            url: file.remote_name.clone(),
            source: file.local_name.clone().into(),
            resume: resume_state(&record),
            headers,
            phase,
            throttled: job.priority != qmgr_core::JobPriority::Foreground,
            priority_class: super::policy::priority_class(job.priority),
            idle: job.priority != qmgr_core::JobPriority::Foreground
                && job.settings.idle_mode
                && self.config.idle_mode,
        };
        let transfer = engine.submit_upload(request)?;
        let started_at = file.bytes_transferred;
        self.transfers.insert(
            transfer,
            // An upload resumes wherever the server says: it can always yield.
            Slot::new(id, index, started_at, true),
        );
        Ok(transfer)
    }

    /// Whether an upload transfer of job `id` that just completed leaves a part of the
    /// upload to run (an upload-reply job whose session is not closed yet).
    pub(super) fn upload_part_left(&self, id: Guid, index: usize) -> bool {
        self.jobs.get(&id).is_some_and(|entry| {
            entry.job.reply.is_some()
                && entry
                    .job
                    .files
                    .get(index)
                    .is_some_and(|file| file.upload.as_ref().is_some_and(|record| !record.closed))
        })
    }

    /// One part of an upload-reply upload ended (`finished`): the next one starts in its
    /// place.
    pub(super) fn next_upload_part(
        &mut self,
        engine: &Engine,
        finished: TransferId,
        id: Guid,
        index: usize,
        now: Timestamp,
    ) {
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(run) = entry.run.as_mut() else {
            return;
        };
        run.transfers.retain(|t| *t != finished);
        if let Some(reply) = entry.job.reply.as_mut()
            && !reply.done
            && reply.url.is_none()
        {
            // Every byte went and no Ack named a reply: there is none (and sending again
            // would only ask the same server the same question).
            reply.done = true;
            reply.bytes_total = 0;
            let before = entry.job.state;
            let saved = self.store.save_job_row(&entry.job);
            if !self.saved_or_stopped(engine, id, before, saved, now) {
                return;
            }
        }
        match self.start_upload(engine, id, index) {
            Ok(transfer) => {
                if let Some(run) = self.jobs.get_mut(&id).and_then(|e| e.run.as_mut()) {
                    run.transfers.push(transfer);
                }
                self.share_job_limit(engine, id);
            }
            Err(error) => self.fail_job(engine, id, index, error, false, None, now),
        }
    }

    /// The server acknowledged a step of an upload. A new session (or a forgotten one, or
    /// another host) is committed at once: without it the server's bytes could not be
    /// found again. The offset alone is not: a resumed upload's first fragment is answered
    /// with wherever the server stands, so a stale offset costs at most one fragment sent
    /// again; it goes to the store with the next write of the job's row or files.
    pub(super) fn on_uploaded(
        &mut self,
        engine: &Engine,
        id: Guid,
        index: usize,
        state: &UploadState,
        now: Timestamp,
    ) {
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(file) = entry.job.files.get_mut(index) else {
            return;
        };
        let previous = file.upload.clone().unwrap_or_default();
        let record = UploadRecord {
            session: state.session.clone(),
            offset: state.offset,
            host: state.host.clone(),
            host_fallback_secs: state.host_fallback.map(|d| d.as_secs()),
            fragment_bytes: state.fragment_bytes,
            closed: state.closed,
            sent_hash: state.sent_hash,
            source: previous.source,
        };
        let lost_session = previous.session.is_some() && previous.session != state.session;
        let mut worth_a_commit = previous.session != record.session
            || previous.host != record.host
            || previous.closed != record.closed
            || previous.fragment_bytes != record.fragment_bytes;
        file.upload = Some(Box::new(record));
        let mut dropped_reply = None;
        if let Some(reply) = entry.job.reply.as_mut() {
            if lost_session {
                // A new session's reply will be another.
                dropped_reply = reply.reset();
            }
            // Only the Ack of the last byte names the reply (an empty file has no fragment).
            let all_sent = state.session.is_some()
                && state.offset >= state.total
                && (state.last_byte_acknowledged || state.total == 0 || state.reply_url.is_some())
                && !state.closed;
            if all_sent && !reply.done && reply.url.is_none() {
                if let Some(url) = &state.reply_url {
                    reply.url = Some(url.clone());
                } else {
                    // The server sent no reply: the reply is empty ([MC-BUP] §3.1.5.1.4).
                    reply.done = true;
                    reply.bytes_total = 0;
                }
                worth_a_commit = true;
            }
        }
        if lost_session {
            // The server forgot the session: what it held is gone, the upload starts over.
            entry
                .job
                .restart_file(index, qmgr_core::Validator::default());
        }
        if let Some(temp) = dropped_reply {
            match qmgr_transfer::discard(Path::new(&temp)) {
                Ok(()) => self.forget_temp_names(&[temp]),
                Err(error) => tracing::warn!(job = %id, "{}", error.description),
            }
        }
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        if !worth_a_commit {
            return;
        }
        let before = entry.job.state;
        let saved = self.store.save_job_and_files(&entry.job, &[index]);
        self.batcher
            .forget_file(id, u32::try_from(index).unwrap_or(u32::MAX));
        if self.saved_or_stopped(engine, id, before, saved, now) {
            self.announce(id, before, now);
        }
    }
}
