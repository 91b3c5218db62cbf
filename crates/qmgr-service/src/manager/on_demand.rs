//! On-demand files (Job5 ON_DEMAND_MODE, IBackgroundCopyFile6): only the bytes the
//! application asks for are fetched, each at its own offset in the file's temporary file.
//!
//! The engine downloads a file's pending spans as a file of byte ranges (the spans one
//! after another, in fetch order) into a scratch file of its own; when that transfer
//! completes, the service puts each span at its offset in the file's temporary file
//! (`qmgr_transfer::place_spans`, sized to the remote file and sparse), records the spans
//! as filled, announces FileRangesTransferred and discards the scratch file. The engine
//! keeps one way of fetching ranges; the copy costs no more than the bytes asked for.
//!
//! An on-demand job moves only while spans are pending: when none are left it stops in
//! SUSPENDED, or goes to TRANSFERRED once every byte of every file is there (a file whose
//! bytes are all there is finished at once, as any other file). A Resume with nothing
//! asked for therefore leaves the job SUSPENDED (or TRANSFERRED); RequestFileRanges and
//! UpdateDownloadPosition add to what is pending and do not change the job's state by
//! themselves: a running job fetches the new spans next, a suspended one when resumed.

use std::path::{Path, PathBuf};

use qmgr_core::error::{QmgrError, Result};
use qmgr_core::on_demand::{self, Span, SpanSet};
use qmgr_core::ranges::FileRange;
use qmgr_core::service::{NotificationKind, Response};
use qmgr_core::{Event, Guid, JobState, Timestamp, hresult};
use qmgr_transfer::{Engine, TransferId};

use super::{Slot, State};
use qmgr_core::file::SIZE_UNKNOWN;

impl State {
    /// IBackgroundCopyFile6::RequestFileRanges.
    pub(super) fn request_file_ranges(
        &mut self,
        engine: &Engine,
        uid: u32,
        id: Guid,
        file: u32,
        ranges: &[FileRange],
        now: Timestamp,
    ) -> Result<Response> {
        let index = self.random_access_file(uid, id, file)?;
        let entry = &self.jobs[&id];
        if !entry.job.settings.on_demand {
            return Err(QmgrError::from_code(hresult::E_NOTIMPL).context(
                "ranges fetched ahead of the rest of a file are for ON_DEMAND_MODE jobs only; \
                 this job downloads its files whole, from the start",
            ));
        }
        let size = entry.job.files[index].bytes_total;
        let asked = if size == SIZE_UNKNOWN {
            // The size comes with the first answer; a range beyond it then fails the job
            // with BG_E_INVALID_RANGE, as the engine finds it. A range to the end needs
            // the size now.
            if ranges.iter().any(|range| range.runs_to_eof()) {
                return Err(QmgrError::new(
                    hresult::BG_E_INVALID_RANGE,
                    qmgr_core::ErrorContext::None,
                    "a range to the end of the file (BG_LENGTH_TO_EOF) needs the file's size, \
                     which the server has not given yet: ask for a range of known length first",
                ));
            }
            on_demand::requested_spans(ranges, u64::MAX)?
        } else {
            on_demand::requested_spans(ranges, size)?
        };
        self.add_request(engine, id, index, now, |state| {
            state.request(&asked);
        })
    }

    /// IBackgroundCopyFile6::UpdateDownloadPosition. For a job that downloads whole files
    /// (not ON_DEMAND_MODE) the bytes are fetched from the start in one go, the order
    /// cannot change: `S_OK`, nothing done. For an on-demand file the bytes missing from
    /// `offset` to the end are asked for, before what was asked earlier.
    pub(super) fn update_download_position(
        &mut self,
        engine: &Engine,
        uid: u32,
        id: Guid,
        file: u32,
        offset: u64,
        now: Timestamp,
    ) -> Result<Response> {
        let index = self.random_access_file(uid, id, file)?;
        let entry = &self.jobs[&id];
        let size = entry.job.files[index].bytes_total;
        if size != SIZE_UNKNOWN && offset >= size {
            return Err(QmgrError::new(
                hresult::BG_E_INVALID_RANGE,
                qmgr_core::ErrorContext::None,
                format!("the position {offset} is beyond the end of the file ({size} bytes)"),
            ));
        }
        if !entry.job.settings.on_demand {
            return Ok(Response::Done(hresult::S_OK));
        }
        self.add_request(engine, id, index, now, |state| {
            state.position = offset;
            if size != SIZE_UNKNOWN {
                state.request(&SpanSet::of([Span {
                    start: offset,
                    end: size,
                }]));
            }
        })
    }

    /// The index of file `file` of job `id`, checked for ranges: the caller's job, a file
    /// it has, a job and file that meet the random-access requirements, and a job still
    /// open.
    fn random_access_file(&self, uid: u32, id: Guid, file: u32) -> Result<usize> {
        let entry = self.entry(uid, id)?;
        let index = file as usize;
        let Some(record) = entry.job.files.get(index) else {
            return Err(QmgrError::invalid_arg(format!(
                "job {id} has no file {file}"
            )));
        };
        if entry.job.state.is_final() {
            return Err(QmgrError::from_code(hresult::BG_E_INVALID_STATE)
                .context(format_args!("job {id} is {}", entry.job.state)));
        }
        entry.job.check_on_demand_file(record)?;
        if entry.job.settings.http_method.is_some() {
            return Err(QmgrError::new(
                hresult::BG_E_RANDOM_ACCESS_NOT_SUPPORTED,
                qmgr_core::ErrorContext::None,
                "the job sends its own HTTP method, whose answers are not fetched in ranges",
            ));
        }
        Ok(index)
    }

    /// Changes file `index`'s on-demand state with `change`, saves it (put back if the
    /// store refuses) and, if the job runs, fetches what is now pending.
    fn add_request(
        &mut self,
        engine: &Engine,
        id: Guid,
        index: usize,
        now: Timestamp,
        change: impl FnOnce(&mut on_demand::OnDemandFile),
    ) -> Result<Response> {
        let entry = self.jobs.get_mut(&id).expect("checked");
        let file = &mut entry.job.files[index];
        let before = file.on_demand.clone();
        change(&mut file.on_demand);
        if file.on_demand == before {
            return Ok(Response::Done(hresult::S_OK));
        }
        if let Err(error) = self.store.save_job_and_files(&entry.job, &[index]) {
            entry.job.files[index].on_demand = before;
            return Err(error);
        }
        if entry.run.is_some() {
            self.restart_cursor(id);
            self.fill_transfers_soon(engine, id, now);
        }
        Ok(Response::Done(hresult::S_OK))
    }

    /// An on-demand job looks at its files from the first unfinished one again: a file
    /// passed over earlier may have spans pending now.
    pub(super) fn restart_cursor(&mut self, id: Guid) {
        if let Some(entry) = self.jobs.get_mut(&id)
            && let Some(run) = entry.run.as_mut()
        {
            run.next_file = entry.first_unfinished;
        }
    }

    /// Whether file `index` of an on-demand job has spans to fetch and no fetch under way.
    pub(super) fn wants_fetch(&self, id: Guid, index: usize) -> bool {
        let Some(entry) = self.jobs.get(&id) else {
            return false;
        };
        let pending = !entry.job.files[index].on_demand.requested.is_empty();
        let fetching = entry.run.as_ref().is_some_and(|run| {
            run.transfers.iter().any(|transfer| {
                self.transfers
                    .get(transfer)
                    .is_some_and(|slot| slot.file == index)
            })
        });
        pending && !fetching
    }

    /// A name for a fetch's scratch file, recorded in the store before the engine makes
    /// the file: a scratch file a crash leaves behind is deleted at the next start, as
    /// any temporary file no file holds.
    pub(super) fn name_scratch_file(&mut self, id: Guid, index: usize) -> Result<PathBuf> {
        let local = &self.jobs[&id].job.files[index].local_name;
        let scratch = qmgr_transfer::new_temp_path(Path::new(local))?;
        self.store.record_temp_name(&scratch.to_string_lossy())?;
        Ok(scratch)
    }

    /// Deletes a fetch's scratch file and forgets its name.
    fn discard_scratch(&mut self, scratch: &Path) {
        match qmgr_transfer::discard(scratch) {
            Ok(()) => self.forget_temp_names(&[scratch.to_string_lossy()]),
            Err(error) => tracing::warn!("{}", error.description),
        }
    }

    /// The engine made a fetch's scratch file: remembered so that however the fetch ends,
    /// the file is placed or deleted.
    pub(super) fn fetch_started(&mut self, transfer: TransferId, scratch: &Path) {
        self.scratch_files.insert(transfer, scratch.to_path_buf());
    }

    /// A fetch ended without its bytes (failed or cancelled): its scratch file goes.
    pub(super) fn fetch_abandoned(&mut self, transfer: TransferId) {
        if let Some(scratch) = self.scratch_files.remove(&transfer) {
            self.discard_scratch(&scratch);
        }
    }

    /// The server answered a fetch: the remote file's size (what later requests are
    /// checked against) and validator are recorded.
    pub(super) fn fetch_responded(
        &mut self,
        engine: &Engine,
        id: Guid,
        index: usize,
        remote_size: Option<u64>,
        validator: qmgr_core::Validator,
        now: Timestamp,
    ) {
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        let file = &entry.job.files[index];
        // Bytes of two versions of the file never share the temporary file.
        let size_changed = file.bytes_total != SIZE_UNKNOWN
            && remote_size.is_some_and(|size| size != file.bytes_total);
        if !file.on_demand.filled.is_empty()
            && (size_changed || file.validator.differs_from(&validator))
        {
            let error = QmgrError::new(
                hresult::BG_E_REMOTE_FILE_CHANGED,
                qmgr_core::ErrorContext::RemoteFile,
                format!(
                    "{} changed on the server since its first ranges were fetched",
                    file.remote_name
                ),
            );
            self.fail_job(engine, id, index, error, false, None, now);
            return;
        }
        // Ranges asked for before the size was known are checked now: those beyond the end
        // are dropped and the job stops with BG_E_INVALID_RANGE (a Resume fetches the rest).
        if let Some(size) = remote_size
            && file
                .on_demand
                .requested
                .spans()
                .last()
                .is_some_and(|span| span.end > size)
        {
            let description = format!(
                "ranges of {} were asked for beyond its end ({size} bytes)",
                file.remote_name
            );
            let beyond = SpanSet::of([Span {
                start: size,
                end: u64::MAX,
            }]);
            let file = &mut entry.job.files[index];
            file.on_demand.requested = file.on_demand.requested.minus(&beyond);
            let kept = if file.validator.is_empty() {
                validator
            } else {
                file.validator.clone()
            };
            entry.job.record_response(index, Some(size), kept);
            let before = entry.job.state;
            let saved = self.store.save_job_and_files(&entry.job, &[index]);
            if self.saved_or_stopped(engine, id, before, saved, now) {
                let error = QmgrError::new(
                    hresult::BG_E_INVALID_RANGE,
                    qmgr_core::ErrorContext::RemoteFile,
                    description,
                );
                self.fail_job(engine, id, index, error, false, None, now);
            }
            return;
        }
        let size = remote_size.unwrap_or(file.bytes_total);
        let validator = if file.validator.is_empty() {
            validator
        } else {
            file.validator.clone()
        };
        let transferred = file.on_demand.filled.bytes();
        entry
            .job
            .record_response(index, (size != SIZE_UNKNOWN).then_some(size), validator);
        let before = entry.job.state;
        entry.job.record_progress(index, transferred, now);
        let saved = self.store.save_job_and_files(&entry.job, &[index]);
        if self.saved_or_stopped(engine, id, before, saved, now) {
            self.announce(id, before, now);
        }
    }

    /// A fetch completed: its spans go into the file's temporary file and count as filled;
    /// the application hears of them; the job fetches what else is pending, or stops.
    pub(super) fn fetch_completed(
        &mut self,
        engine: &Engine,
        transfer: TransferId,
        slot: &Slot,
        scratch: &Path,
        now: Timestamp,
    ) {
        let (id, index) = (slot.job, slot.file);
        self.scratch_files.remove(&transfer);
        let spans = slot.fetch.clone().unwrap_or_default();
        let Some(entry) = self.jobs.get_mut(&id) else {
            self.discard_scratch(scratch);
            return;
        };
        if let Some(run) = entry.run.as_mut() {
            run.transfers.retain(|t| *t != transfer);
        }
        let file = &entry.job.files[index];
        let placed = match (&file.temp_name, file.bytes_total) {
            (Some(temp), size) if size != SIZE_UNKNOWN => {
                qmgr_transfer::place_spans(scratch, &spans, Path::new(temp), size)
            }
            _ => Err(QmgrError::internal(format!(
                "the fetched ranges of {} have no temporary file of known size to go to",
                file.remote_name
            ))),
        };
        self.discard_scratch(scratch);
        if let Err(error) = placed {
            self.fail_job(engine, id, index, error, false, None, now);
            return;
        }
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        let file = &mut entry.job.files[index];
        for span in &spans {
            file.on_demand.fill(*span);
        }
        let transferred = file.on_demand.filled.bytes();
        let whole = file.on_demand.is_whole(file.bytes_total);
        let before = entry.job.state;
        entry.job.record_progress(index, transferred, now);
        if whole {
            entry.job.file_done(index, now);
        }
        let saved = self.store.save_job_and_files(&entry.job, &[index]);
        if !self.saved_or_stopped(engine, id, before, saved, now) {
            return;
        }
        let mut ranges = SpanSet::of(spans).to_file_ranges();
        ranges.sort_by_key(|range| range.offset);
        self.publish_about(
            id,
            NotificationKind::FileRangesTransferred {
                file: u32::try_from(index).unwrap_or(u32::MAX),
                ranges,
            },
        );
        if whole {
            self.notify_file(id, index);
        }
        self.announce(id, before, now);
        self.after_fetch(engine, id, now);
    }

    /// What an on-demand job does when a fetch ended or none could start: fetch more if
    /// anything is pending, else stop in SUSPENDED (TRANSFERRED comes by itself when the
    /// last file is whole).
    pub(super) fn after_fetch(&mut self, engine: &Engine, id: Guid, now: Timestamp) {
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        if entry.job.state == JobState::Transferred {
            entry.run = None;
            entry.throttled = false;
            if entry.job.auto_complete.is_some() {
                self.auto_complete_due.push(id);
            }
            self.schedule_needed = true;
            return;
        }
        if !entry.job.state.is_active() {
            return;
        }
        self.restart_cursor(id);
        self.fill_transfers(engine, id, now);
        self.suspend_if_idle(engine, id, now);
    }

    /// An on-demand job with nothing under way and nothing pending stops in SUSPENDED.
    pub(super) fn suspend_if_idle(&mut self, engine: &Engine, id: Guid, now: Timestamp) {
        let Some(entry) = self.jobs.get(&id) else {
            return;
        };
        if !entry.job.settings.on_demand || !entry.job.state.is_active() {
            return;
        }
        let busy = entry.run.as_ref().is_some_and(|run| {
            run.transfers
                .iter()
                .any(|transfer| self.transfers.contains_key(transfer))
        }) || entry.certificate_gate.is_some();
        let pending = entry
            .job
            .files
            .iter()
            .any(|file| !file.completed && !file.on_demand.requested.is_empty());
        if busy || pending {
            return;
        }
        let entry = self.jobs.get_mut(&id).expect("looked up");
        entry.run = None;
        entry.throttled = false;
        let before = entry.job.state;
        entry.job.apply(Event::Suspend, now);
        let saved = self.store.save_job_row(&entry.job);
        if self.saved_or_stopped(engine, id, before, saved, now) {
            self.announce(id, before, now);
        }
        self.schedule_needed = true;
    }
}

/// The spans of an on-demand fetch as the engine's ranges, in fetch order.
pub(super) fn fetch_ranges(spans: &[Span]) -> Vec<FileRange> {
    spans.iter().map(|span| span.to_file_range()).collect()
}
