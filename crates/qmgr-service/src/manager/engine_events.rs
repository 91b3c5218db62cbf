//! What the engine reports about a transfer (started, responded, progress, completed,
//! failed), applied to its job, and the attempts kept for "why is it not moving?".

use std::path::Path;
use std::time::Duration;

use qmgr_core::error::QmgrError;
use qmgr_core::job::notify;
use qmgr_core::service::Attempt;
use qmgr_core::{Guid, JobError, JobState, Timestamp};
use qmgr_transfer::{Engine, EngineEvent, Overwrite, TransferId};

use super::{Slot, State};

/// Attempts remembered per job for "why is it not moving?".
const ATTEMPTS_KEPT: usize = 5;

impl State {
    pub(super) fn on_engine_event(
        &mut self,
        engine: &Engine,
        event: EngineEvent,
        now: Timestamp,
        mono: Duration,
    ) {
        let transfer = event.id();
        let Some(slot) = self.transfers.get_mut(&transfer) else {
            if let EngineEvent::Started { temp_path, .. } = &event {
                self.discard_unheld(transfer, temp_path);
            }
            if event.is_final() {
                self.stopped.remove(&transfer);
                self.fetch_abandoned(transfer);
            }
            return;
        };
        let (id, index) = (slot.job, slot.file);
        if matches!(event, EngineEvent::Started { .. }) {
            slot.started = true;
        }
        if slot.fetch.is_some() {
            self.on_fetch_event(engine, transfer, event, now);
            return;
        }
        if slot.reply {
            self.on_reply_event(engine, transfer, event, now);
            return;
        }
        match event {
            EngineEvent::Started { temp_path, .. } => {
                self.on_started(engine, id, index, &temp_path, now);
            }
            EngineEvent::Responded {
                total,
                validator,
                resumed_at,
                restart,
                headers,
                ..
            } => {
                // A file can stop and continue later if the server answered a range request
                // with 206, or gave what a later range request needs (size and validator).
                slot.can_yield = (resumed_at > 0 && restart.is_none())
                    || (total.is_some() && !validator.is_empty());
                if let Some(reason) = restart {
                    // The bytes held are dropped: this attempt counts from zero, and says why.
                    slot.started_at = 0;
                    slot.restart = Some(format!("restarted from zero: {reason}"));
                }
                let Some(entry) = self.jobs.get_mut(&id) else {
                    return;
                };
                // File5's HTTP_RESPONSE_HEADERS go to the store with the file's next row
                // write, like its size and validator.
                if !headers.is_empty() {
                    entry.job.keep_response_headers(index, headers);
                }
                if restart.is_some() {
                    entry.job.restart_file(index, validator.clone());
                }
                entry.job.record_response(index, total, validator);
                let before = entry.job.state;
                entry.job.record_progress(index, resumed_at, now);
                if restart.is_none() && before == entry.job.state {
                    // Nothing anyone waits on: the size and validator reach the store with
                    // the file's next write (its completion, most often), or with its
                    // progress, whose bytes never go without them. A small file thus costs
                    // one write, not two.
                    self.batcher
                        .record_response(id, file_number(index), resumed_at);
                    if entry.job.settings.notify_flags & notify::JOB_MODIFICATION != 0 {
                        self.announce(id, before, now);
                    }
                    return;
                }
                // A restart from zero is committed before its first byte is written, and a
                // new state before it is told. The file's row carries its bytes, newer than
                // any progress still pending.
                let saved = self.store.save_job_and_files(&entry.job, &[index]);
                if saved.is_ok() {
                    entry.job.response_headers_written(index);
                }
                self.batcher.forget_file(id, file_number(index));
                if self.saved_or_stopped(engine, id, before, saved, now) {
                    self.announce(id, before, now);
                }
            }
            EngineEvent::Progress {
                bytes_on_disk,
                throttled,
                ..
            } => {
                slot.throttled = throttled;
                let Some(entry) = self.jobs.get_mut(&id) else {
                    return;
                };
                entry.throttled = entry.run.as_ref().is_some_and(|run| {
                    run.transfers
                        .iter()
                        .any(|t| self.transfers.get(t).is_some_and(|s| s.throttled))
                });
                let before = entry.job.state;
                entry.job.record_progress(index, bytes_on_disk, now);
                self.batcher.record(id, file_number(index), bytes_on_disk);
                if before != entry.job.state
                    || entry.job.settings.notify_flags & notify::JOB_MODIFICATION != 0
                {
                    self.announce(id, before, now);
                }
                let _ = mono;
            }
            EngineEvent::Completed {
                temp_path, bytes, ..
            } => {
                let slot = self.transfers.remove(&transfer).expect("slot present");
                if self.upload_part_left(id, index) {
                    // An upload-reply upload sent its bytes: its reply, or Close-Session, next.
                    self.record_attempt(id, index, &slot, bytes, None, None, now);
                    self.next_upload_part(engine, transfer, id, index, now);
                    return;
                }
                self.on_completed(engine, transfer, &slot, &temp_path, bytes, now, mono);
            }
            EngineEvent::Failed { error, .. } => {
                let slot = self.transfers.remove(&transfer).expect("slot present");
                let bytes = self
                    .jobs
                    .get(&id)
                    .map_or(0, |e| e.job.files[index].bytes_transferred);
                self.transfer_failed(engine, &slot, bytes, error, now);
            }
            EngineEvent::Cancelled { .. } => {
                self.transfers.remove(&transfer);
            }
            EngineEvent::Uploaded { state, .. } => {
                self.on_uploaded(engine, id, index, &state, now);
            }
        }
    }

    /// What the engine reports about an on-demand fetch (see `on_demand.rs`): its bytes go
    /// to a scratch file and count only once placed, so progress is not recorded.
    fn on_fetch_event(
        &mut self,
        engine: &Engine,
        transfer: TransferId,
        event: EngineEvent,
        now: Timestamp,
    ) {
        let Some(slot) = self.transfers.get(&transfer) else {
            return;
        };
        let (id, index) = (slot.job, slot.file);
        match event {
            EngineEvent::Started { temp_path, .. } => self.fetch_started(transfer, &temp_path),
            EngineEvent::Responded {
                validator,
                remote_size,
                ..
            } => self.fetch_responded(engine, id, index, remote_size, validator, now),
            EngineEvent::Progress { throttled, .. } => {
                if let Some(slot) = self.transfers.get_mut(&transfer) {
                    slot.throttled = throttled;
                }
            }
            EngineEvent::Completed { temp_path, .. } => {
                let slot = self.transfers.remove(&transfer).expect("slot present");
                self.record_attempt(id, index, &slot, 0, None, None, now);
                self.fetch_completed(engine, transfer, &slot, &temp_path, now);
            }
            EngineEvent::Failed { error, .. } => {
                let slot = self.transfers.remove(&transfer).expect("slot present");
                self.fetch_abandoned(transfer);
                // A fetch's bytes count only once placed: none did.
                self.transfer_failed(engine, &slot, 0, error, now);
            }
            EngineEvent::Cancelled { .. } => {
                self.transfers.remove(&transfer);
                self.fetch_abandoned(transfer);
            }
            // Fetches are downloads: an upload's events never come here.
            EngineEvent::Uploaded { .. } => {}
        }
    }

    /// A transfer (or an on-demand fetch) failed having moved the file to `bytes`: the
    /// attempt is recorded and the job stops or waits to retry.
    pub(super) fn transfer_failed(
        &mut self,
        engine: &Engine,
        slot: &Slot,
        bytes: u64,
        error: qmgr_transfer::TransferError,
        now: Timestamp,
    ) {
        let (id, index) = (slot.job, slot.file);
        self.record_attempt(
            id,
            index,
            slot,
            bytes,
            error.http_status,
            Some(error.error.clone()),
            now,
        );
        self.fail_job(
            engine,
            id,
            index,
            error.error,
            error.transient,
            error.retry_after,
            now,
        );
    }

    /// A stopped transfer's engine made its temporary file: kept if the file the transfer
    /// was for holds that name (the recorded one), deleted if the engine made a name of
    /// its own (the recorded one was taken) or the job is gone. Temporary names are random
    /// and made beside their file, so no other file can hold it.
    fn discard_unheld(&mut self, transfer: TransferId, temp_path: &Path) {
        let temp = temp_path.to_string_lossy();
        let held = self
            .stopped
            .get(&transfer)
            .and_then(|(job, file)| self.jobs.get(job)?.job.files.get(*file))
            .is_some_and(|f| f.temp_name.as_deref() == Some(&*temp));
        if !held {
            let _ = qmgr_transfer::discard(temp_path);
        }
    }

    /// The engine made the file's temporary file: if not under the recorded name, the new
    /// one is recorded.
    fn on_started(
        &mut self,
        engine: &Engine,
        id: Guid,
        index: usize,
        temp_path: &Path,
        now: Timestamp,
    ) {
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        let temp = temp_path.to_string_lossy().into_owned();
        let file = &mut entry.job.files[index];
        if file.temp_name.as_deref() == Some(temp.as_str()) {
            return;
        }
        // The recorded name was taken by something not ours: the engine made
        // another, which is recorded now.
        let replaced = file.temp_name.replace(temp.clone());
        let before = entry.job.state;
        let saved = self.store.save_files_with_temp_names(&entry.job, &[index]);
        self.batcher.forget_file(id, file_number(index));
        if !self.saved_or_stopped(engine, id, before, saved, now) {
            return;
        }
        if let Some(replaced) = replaced {
            self.forget_temp_names(&[replaced]);
        }
    }

    /// A file finished: a legacy group's file gets its name now; the job moves on to its
    /// next file or to TRANSFERRED.
    #[expect(
        clippy::too_many_arguments,
        reason = "a finished transfer's facts, and both clocks the driver reads"
    )]
    fn on_completed(
        &mut self,
        engine: &Engine,
        transfer: TransferId,
        slot: &Slot,
        temp_path: &Path,
        bytes: u64,
        now: Timestamp,
        mono: Duration,
    ) {
        let (id, index) = (slot.job, slot.file);
        self.record_attempt(id, index, slot, bytes, None, None, now);
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        if let Some(run) = entry.run.as_mut() {
            run.transfers.retain(|t| *t != transfer);
        }
        entry.job.record_progress(index, bytes, now);
        if entry.job.group.is_some() {
            // Legacy groups have no Complete: each file gets its name when it finishes.
            let local = entry.job.files[index].local_name.clone();
            if let Err(error) = qmgr_transfer::finalize(
                temp_path,
                Path::new(&local),
                Overwrite::Replace,
                entry.job.umask,
            ) {
                self.fail_job(engine, id, index, error, false, None, now);
                return;
            }
            // The row's next write, just below, lets go of the name with the file gone.
            if let Some(entry) = self.jobs.get_mut(&id) {
                entry.job.files[index].temp_name = None;
            }
        }
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        let before = entry.job.state;
        entry.job.file_done(index, now);
        let legacy = entry.job.group.is_some();
        // The file's completion is committed before it is announced; its row carries its
        // final bytes, so progress still pending for it is dropped.
        let state_changed = self.jobs.get(&id).is_some_and(|e| e.job.state != before);
        if !state_changed && !legacy {
            // Progress of its job: the row and the news wait to share a transaction.
            self.batcher.record_job_row(id);
            self.batcher.forget_file(id, file_number(index));
            self.hold_outcome(id, index, mono, |state| {
                state.notify_file(id, index);
                state.announce(id, before, now);
            });
            self.fill_transfers_soon(engine, id, now);
            return;
        }
        // The rows the job held back go in first: its new state never goes ahead of them.
        let saved = self
            .release_held(id)
            .and_then(|()| self.save_job_and_file(id, index, state_changed));
        if saved.is_ok()
            && let Some(entry) = self.jobs.get_mut(&id)
        {
            entry.job.response_headers_written(index);
        }
        self.batcher.forget_file(id, file_number(index));
        if !self.saved_or_stopped(engine, id, before, saved, now) {
            return;
        }
        self.notify_file(id, index);
        self.announce(id, before, now);
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        if entry.job.state == JobState::Transferred {
            entry.run = None;
            entry.throttled = false;
            entry.complete_error = None;
            if entry.job.auto_complete.is_some() {
                self.auto_complete_due.push(id);
            }
            self.schedule_needed = true;
        } else {
            self.fill_transfers_soon(engine, id, now);
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "an attempt record is made of this many separate facts"
    )]
    pub(super) fn record_attempt(
        &mut self,
        id: Guid,
        file: usize,
        slot: &Slot,
        bytes: u64,
        http_status: Option<u16>,
        error: Option<QmgrError>,
        now: Timestamp,
    ) {
        if let Some(entry) = self.jobs.get_mut(&id) {
            if entry.attempts.len() == ATTEMPTS_KEPT {
                entry.attempts.pop_front();
            }
            entry.attempts.push_back(Attempt {
                at: now,
                file: u32::try_from(file).unwrap_or(u32::MAX),
                http_status: http_status.or(slot.http_status),
                bytes: bytes.saturating_sub(slot.started_at),
                error,
                restart: slot.restart.clone(),
            });
        }
    }

    /// A file failed: the job stops all its transfers and goes to TRANSIENT_ERROR (retry
    /// later) or ERROR.
    #[expect(
        clippy::too_many_arguments,
        reason = "a failure carries the job, file, error, its class, Retry-After and time"
    )]
    pub(super) fn fail_job(
        &mut self,
        engine: &Engine,
        id: Guid,
        file: usize,
        error: QmgrError,
        transient: bool,
        retry_after: Option<Duration>,
        now: Timestamp,
    ) {
        self.stop_transfers(engine, id);
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        let protocol = entry
            .job
            .files
            .get(file)
            .and_then(|f| f.remote_name.split_once("://"))
            .map(|(s, _)| s.to_ascii_lowercase());
        let before = entry.job.state;
        let record = JobError {
            error,
            file_index: u32::try_from(file).ok(),
            protocol,
            at: now,
            retry_after: None,
        };
        entry.job.fail(record, transient, retry_after, now);
        // A failure changes the job's row, not its files.
        let saved = self.store.save_job_row(&entry.job);
        if self.saved_or_stopped(engine, id, before, saved, now) {
            self.arm_timer(id, now);
            self.announce(id, before, now);
        }
        self.schedule_needed = true;
    }
}

/// A file's index as the progress batcher and the store number it.
fn file_number(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}
