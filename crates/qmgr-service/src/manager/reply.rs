//! The reply of an upload-reply job. Once the server holds every byte, its last Ack names
//! a reply URL (see `upload.rs`); the reply is downloaded like a file of a download job
//! (a temporary file recorded before it is made, resumed with validated ranges) and only
//! then is the session closed, so that the server keeps the reply until the client has it.
//! Complete puts the reply at the reply file name (an empty file when the server sent
//! none).

use std::path::Path;

use qmgr_core::error::{ErrorContext, QmgrError, Result};
use qmgr_core::file::SIZE_UNKNOWN;
use qmgr_core::reply::{self, ReplyData};
use qmgr_core::{FileRecord, Guid, JobState, Timestamp, hresult};
use qmgr_transfer::{Engine, EngineEvent, Finalizer, TransferId};

use super::transfer_request::file_request;
use super::{Slot, State};

impl State {
    /// Starts the download of job `id`'s reply (the job's upload is file `index`).
    pub(super) fn start_reply(
        &mut self,
        engine: &Engine,
        id: Guid,
        index: usize,
    ) -> Result<TransferId> {
        let job = &self.jobs[&id].job;
        let reply = job.reply.as_ref().ok_or_else(|| no_reply(id))?;
        let (Some(url), Some(file_name)) = (reply.url.clone(), reply.file_name.clone()) else {
            return Err(no_reply(id));
        };
        super::jobs::check_local_directory(&file_name)?;
        if reply.temp_name.is_none() {
            // The name is in the store before the engine makes the file, as for a download.
            let temp = qmgr_transfer::new_temp_path(Path::new(&file_name))?;
            let temp = temp.to_string_lossy().into_owned();
            self.store.record_temp_name(&temp)?;
            let entry = self.jobs.get_mut(&id).expect("looked up");
            let reply = entry.job.reply.as_mut().expect("looked up");
            reply.temp_name = Some(temp);
            self.store.save_job_row(&entry.job)?;
        }
        let job = &self.jobs[&id].job;
        let reply = job.reply.as_ref().expect("looked up");
        let mut record = FileRecord::new(&url, &file_name);
        record.temp_name.clone_from(&reply.temp_name);
        record.bytes_total = reply.bytes_total;
        record.bytes_transferred = reply.bytes;
        record.validator = reply.validator.clone();
        let mut request = file_request(job, &record, &self.paths)?;
        if !qmgr_transfer::same_origin(&url, &job.files[index].remote_name) {
            // A reply on another server gets none of the job's secrets.
            request.headers.clear();
            request.credentials = qmgr_core::credentials::Credentials::default();
        }
        let started_at = reply.bytes;
        let transfer = engine.submit(request)?;
        self.transfers.insert(
            transfer,
            Slot {
                reply: true,
                ..Slot::new(id, index, started_at, true)
            },
        );
        Ok(transfer)
    }

    /// What the engine reports about a reply's download: its progress is the reply's
    /// (GetReplyProgress), not the upload's.
    pub(super) fn on_reply_event(
        &mut self,
        engine: &Engine,
        transfer: TransferId,
        event: EngineEvent,
        now: Timestamp,
    ) {
        let Some(slot) = self.transfers.get_mut(&transfer) else {
            return;
        };
        let (id, index) = (slot.job, slot.file);
        match event {
            EngineEvent::Started { temp_path, .. } => {
                let temp = temp_path.to_string_lossy().into_owned();
                self.change_reply(engine, id, now, |reply| {
                    // The recorded name was taken by something not ours: the engine's own
                    // name is recorded instead.
                    let replaced = reply.temp_name.replace(temp.clone());
                    (replaced.as_deref() != Some(temp.as_str())).then_some(())
                });
            }
            EngineEvent::Responded {
                total,
                validator,
                resumed_at,
                restart,
                ..
            } => {
                if let Some(reason) = &restart {
                    slot.started_at = 0;
                    slot.restart = Some(format!("the reply restarted from zero: {reason}"));
                }
                self.change_reply(engine, id, now, |reply| {
                    reply.bytes_total = total.unwrap_or(SIZE_UNKNOWN);
                    reply.validator = validator;
                    reply.bytes = resumed_at;
                    Some(())
                });
            }
            EngineEvent::Progress {
                bytes_on_disk,
                throttled,
                ..
            } => {
                slot.throttled = throttled;
                // Kept in memory: the next write of the job's row records it. A reply is
                // small next to its upload, and a restart re-checks the bytes held.
                if let Some(reply) = self.jobs.get_mut(&id).and_then(|e| e.job.reply.as_mut()) {
                    reply.bytes = bytes_on_disk;
                }
            }
            EngineEvent::Completed { bytes, .. } => {
                let slot = self.transfers.remove(&transfer).expect("slot present");
                self.record_attempt(id, index, &slot, bytes, None, None, now);
                let saved = self.change_reply(engine, id, now, |reply| {
                    reply.bytes = bytes;
                    reply.bytes_total = bytes;
                    reply.done = true;
                    Some(())
                });
                if saved {
                    self.next_upload_part(engine, transfer, id, index, now);
                }
            }
            EngineEvent::Failed { error, .. } => {
                let slot = self.transfers.remove(&transfer).expect("slot present");
                let bytes = self
                    .jobs
                    .get(&id)
                    .and_then(|e| e.job.reply.as_ref())
                    .map_or(0, |reply| reply.bytes);
                self.transfer_failed(engine, &slot, bytes, error, now);
            }
            EngineEvent::Cancelled { .. } => {
                self.transfers.remove(&transfer);
            }
            // A reply is a download: upload steps never come here.
            EngineEvent::Uploaded { .. } => {}
        }
    }

    /// Changes job `id`'s reply through `change` (`None`: nothing changed) and commits the
    /// job's row; returns whether the job is still fine (the store took it).
    fn change_reply(
        &mut self,
        engine: &Engine,
        id: Guid,
        now: Timestamp,
        change: impl FnOnce(&mut reply::ReplyRecord) -> Option<()>,
    ) -> bool {
        let Some(entry) = self.jobs.get_mut(&id) else {
            return false;
        };
        let Some(reply) = entry.job.reply.as_mut() else {
            return false;
        };
        if change(reply).is_none() {
            return true;
        }
        entry.job.times.modified = now;
        let before = entry.job.state;
        let saved = self.store.save_job_row(&entry.job);
        if self.saved_or_stopped(engine, id, before, saved, now) {
            self.announce(id, before, now);
            true
        } else {
            false
        }
    }

    /// IBackgroundCopyJob2::GetReplyData: the reply's bytes (at most a megabyte) once the
    /// job is TRANSFERRED.
    pub(super) fn reply_data(&self, uid: u32, id: Guid) -> Result<ReplyData> {
        let job = &self.entry(uid, id)?.job;
        let reply = job.reply.as_ref().ok_or_else(|| {
            QmgrError::from_code(hresult::E_NOTIMPL).context(format_args!(
                "job {id} is not an upload-reply job: it has no reply"
            ))
        })?;
        if job.state != JobState::Transferred {
            return Err(
                QmgrError::from_code(hresult::BG_E_INVALID_STATE).context(format_args!(
                    "job {id} is {}: its reply is not here yet",
                    job.state
                )),
            );
        }
        let path = reply.url.as_ref().and(reply.temp_name.as_deref());
        reply::read_reply(path.map(Path::new))
    }
}

/// Complete of an upload-reply job: its reply goes to the reply file name (an empty file
/// when the server sent none), with the mode the job's files get.
pub(super) fn place_reply(job: &mut qmgr_core::Job, finalizer: &mut Finalizer) -> Result<()> {
    let Some(reply) = job.reply.as_mut() else {
        return Ok(());
    };
    let Some(file_name) = reply.file_name.clone() else {
        return Ok(());
    };
    let temp = match reply.temp_name.clone() {
        Some(temp) if reply.url.is_some() => temp,
        // No reply: an empty one takes its place, made the way a download's is.
        _ => {
            let temp = qmgr_transfer::new_temp_path(Path::new(&file_name))?;
            std::fs::File::create_new(&temp).map_err(|error| {
                QmgrError::new(
                    qmgr_transfer::hresult_for_io(&error),
                    ErrorContext::LocalFile,
                    format!("cannot make the empty reply {}: {error}", temp.display()),
                )
            })?;
            temp.to_string_lossy().into_owned()
        }
    };
    finalizer.finalize(Path::new(&temp), Path::new(&file_name))?;
    reply.temp_name = None;
    Ok(())
}

fn no_reply(id: Guid) -> QmgrError {
    QmgrError::internal(format!(
        "job {id} has no reply to download (no reply URL or file name)"
    ))
}
