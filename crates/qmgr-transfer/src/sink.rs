//! The receiving end of one curl transfer: reads the response head, decides whether the body
//! belongs in the file, writes it through a buffer, and holds the transfer back when its
//! bandwidth allowance is spent.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;

use crate::buffered_file::BufferedFile;
use crate::outbox::Outbox;
use crate::quick_ack;
use curl::easy::{Handler, WriteError};
use qmgr_core::{ErrorContext, hresult};

use crate::error::TransferError;
use crate::event::{EngineEvent, RestartReason};
use crate::request::{IgnoredCertificateErrors, TransferId, Validator};
use crate::response::{BodyPlan, Expectation, RangeRefusal, ResponseHead, plan_body};
use crate::source::Scheme;
use crate::{ftp_info, http_date, tls};

/// How much of an error page is read (to keep the connection reusable) before giving up.
const MAX_DISCARDED_BODY: u64 = 1024 * 1024;

/// Why the sink stopped the transfer; the engine reads this before curl's own error.
#[derive(Debug)]
pub(crate) enum SinkFailure {
    Failed(TransferError),
    /// The source's answer does not continue our bytes: start over without a range.
    Mismatch(RestartReason),
}

/// What the sink does with the body, decided when its first byte (or the end) arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyUse {
    Write,
    Discard,
    Abort,
}

/// What the engine knows before the request about a `file` source.
#[derive(Clone, Debug)]
pub(crate) struct KnownSource {
    pub total: u64,
    pub validator: Validator,
}

pub(crate) struct Sink {
    id: TransferId,
    scheme: Scheme,
    url: String,
    pub temp_path: PathBuf,
    writer: Option<BufferedFile>,
    pub expectation: Expectation,
    /// A restart already decided before the request (lost file, no validator, changed file).
    pub prior_restart: Option<RestartReason>,
    pub known_source: Option<KnownSource>,
    /// The local source curl reads through `/proc/self/fd`; open as long as the handle.
    pub source_file: Option<File>,
    max_size: Option<u64>,
    events: Outbox,
    /// The easy handle this sink belongs to, for ftp facts only curl knows.
    pub(crate) easy: *mut curl_sys::CURL,

    pub head: ResponseHead,
    body_use: Option<BodyUse>,
    /// The total and validator announced in `Responded`.
    pub responded_total: Option<u64>,
    pub validator: Validator,
    /// Bytes in the file, buffered ones included.
    pub length: u64,
    /// For a ranged file: where the file stands when this answer's span is complete.
    pub span_end: Option<u64>,
    discarded: u64,
    pub failure: Option<SinkFailure>,

    /// Bytes this transfer may take before the engine grants more; `None` is unlimited.
    pub allowance: Option<u64>,
    /// Bytes taken since the engine last charged them to the buckets.
    pub consumed: u64,
    /// curl holds this transfer paused until the engine unpauses it.
    pub paused: bool,
    /// The caller paused the transfer.
    pub held: bool,
    /// A spent allowance paused the transfer since the engine last reported its progress.
    pub throttled: bool,
    /// How much curl reads from the socket at once for this transfer (see
    /// [`crate::handle::FREE_READS`]).
    pub read_size: usize,
    /// Certificate checks this transfer relaxes (applied in curl's SSL_CTX hook).
    pub ignored_certificate_errors: IgnoredCertificateErrors,
}

/// Everything a sink starts from.
pub(crate) struct SinkSetup {
    pub id: TransferId,
    pub scheme: Scheme,
    pub url: String,
    pub temp_path: PathBuf,
    pub file: File,
    pub expectation: Expectation,
    pub prior_restart: Option<RestartReason>,
    pub known_source: Option<KnownSource>,
    pub source_file: Option<File>,
    pub max_size: Option<u64>,
    pub events: Outbox,
}

impl Sink {
    pub fn new(setup: SinkSetup) -> Self {
        Self {
            id: setup.id,
            scheme: setup.scheme,
            url: setup.url,
            temp_path: setup.temp_path,
            writer: Some(BufferedFile::new(setup.file)),
            length: setup.expectation.offset,
            span_end: None,
            validator: setup.expectation.validator.clone(),
            responded_total: setup.expectation.total,
            expectation: setup.expectation,
            prior_restart: setup.prior_restart,
            known_source: setup.known_source,
            source_file: setup.source_file,
            max_size: setup.max_size,
            events: setup.events,
            easy: std::ptr::null_mut(),
            head: ResponseHead::default(),
            body_use: None,
            discarded: 0,
            failure: None,
            allowance: None,
            consumed: 0,
            paused: false,
            held: false,
            throttled: false,
            read_size: 0,
            ignored_certificate_errors: IgnoredCertificateErrors::default(),
        }
    }

    /// Whether this transfer speaks http or https (and so may be redirected).
    pub fn scheme_is_http(&self) -> bool {
        self.scheme.is_http()
    }

    /// Whether nothing of the transfer is held any more (its file and local source are
    /// closed or handed on), so its handle may serve another.
    pub fn is_spent(&self) -> bool {
        self.writer.is_none() && self.source_file.is_none()
    }

    /// Whether the response being received is the file's content.
    pub fn is_writing(&self) -> bool {
        self.body_use == Some(BodyUse::Write)
    }

    /// Flushes and closes the file. Returns the bytes that reached it: all of them, or
    /// after a failed flush whatever the file's length says.
    pub fn close(&mut self) -> (u64, Result<(), TransferError>) {
        let flushed = self.flush();
        let on_disk = match (&flushed, self.writer.as_ref()) {
            (Err(_), Some(writer)) => writer
                .get_ref()
                .metadata()
                .map_or(0, |metadata| metadata.len()),
            _ => self.length,
        };
        self.writer = None;
        (on_disk, flushed)
    }

    /// Flushes and takes the file of a transfer that ended well, for the caller to make
    /// durable; like [`Sink::close`] when the flush fails (the file is then closed).
    pub fn close_keeping_file(&mut self) -> (u64, Result<File, TransferError>) {
        let (on_disk, flushed) = match self.flush() {
            Ok(()) => (self.length, self.take_file()),
            Err(error) => (self.close().0, Err(error)),
        };
        self.writer = None;
        (on_disk, flushed)
    }

    /// Takes the file back, emptied, for an attempt that starts over.
    pub fn take_emptied_file(&mut self) -> Result<File, TransferError> {
        self.empty_file()?;
        self.take_file()
    }

    /// Takes the file back as it is, for the next request of the same attempt (a
    /// redirect's target continues where this one would have).
    pub fn take_file(&mut self) -> Result<File, TransferError> {
        let writer = self.writer.take().ok_or_else(|| {
            TransferError::permanent(
                hresult::E_FAIL,
                ErrorContext::GeneralQueueManager,
                format!("{}: the file was already closed", self.temp_path.display()),
            )
        })?;
        writer
            .into_inner()
            .map_err(|error| TransferError::local(&error, "writing", &self.temp_path))
    }

    /// Pushes buffered bytes to the file. A failure is kept and ends the transfer.
    pub fn flush(&mut self) -> Result<(), TransferError> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        writer.flush().map_err(|error| {
            let failure = TransferError::local(&error, "writing", &self.temp_path);
            self.failure = Some(SinkFailure::Failed(failure.clone()));
            failure
        })
    }

    /// Decides what the body is, from the final response head (http), curl's ftp facts or
    /// the stat of a local file; sends `Responded` when the body is the file's content.
    pub fn decide(&mut self) {
        if self.body_use.is_some() {
            return;
        }
        let plan = if self.scheme.is_http() {
            plan_body(&self.head, &self.expectation)
        } else if self.scheme.is_ftp() {
            self.plan_ftp_body()
        } else {
            let total = self.known_source.as_ref().map(|known| known.total);
            BodyPlan::Append { total }
        };
        let (use_, restart, total, remote_size) = match plan {
            BodyPlan::Append { total } => (BodyUse::Write, self.prior_restart, total, total),
            BodyPlan::AppendSpan {
                total,
                span_end,
                remote_size,
            } => {
                self.span_end = Some(span_end);
                (BodyUse::Write, self.prior_restart, total, remote_size)
            }
            BodyPlan::Refused(refusal) => {
                self.failure = Some(SinkFailure::Failed(range_refusal(refusal, &self.url)));
                self.body_use = Some(BodyUse::Abort);
                return;
            }
            BodyPlan::Restart { reason, total } => {
                if let Err(error) = self.empty_file() {
                    self.failure = Some(SinkFailure::Failed(error));
                    self.body_use = Some(BodyUse::Abort);
                    return;
                }
                (BodyUse::Write, Some(reason), total, total)
            }
            BodyPlan::NotContent => {
                self.body_use = Some(BodyUse::Discard);
                return;
            }
            BodyPlan::Mismatch(reason) => {
                self.failure = Some(SinkFailure::Mismatch(reason));
                self.body_use = Some(BodyUse::Abort);
                return;
            }
        };
        if let Err(error) = total.map_or(Ok(()), |total| self.check_size(total)) {
            self.failure = Some(SinkFailure::Failed(error));
            self.body_use = Some(BodyUse::Abort);
            return;
        }
        self.validator = self.received_validator();
        self.responded_total = total;
        self.body_use = Some(use_);
        self.events.push(EngineEvent::Responded {
            id: self.id,
            total,
            validator: self.validator.clone(),
            resumed_at: self.length,
            restart,
            headers: self.head.raw.clone(),
            remote_size,
        });
    }

    /// Whether some, but at most [`quick_ack::TAIL`], of an HTTP response's body is still to
    /// come.
    fn near_the_end_of_the_response(&self) -> bool {
        self.scheme.is_http()
            && quick_ack::near_the_end(self.span_end.or(self.responded_total), self.length)
    }

    /// The validator of the content now being received.
    fn received_validator(&self) -> Validator {
        if let Some(known) = &self.known_source {
            return known.validator.clone();
        }
        if self.scheme.is_ftp() {
            return self.ftp_validator();
        }
        if self.head.validator.is_empty() {
            // A 206 may omit the validators; If-Range already vouched for ours.
            return self.expectation.validator.clone();
        }
        self.head.validator.clone()
    }

    fn ftp_validator(&self) -> Validator {
        Validator {
            etag: None,
            last_modified: ftp_info::modification_time(self.easy)
                .map(|time| http_date::format(time).into()),
        }
    }

    /// ftp has no If-Range: the size and modification time curl learnt (SIZE, MDTM) before
    /// the download must match what was recorded for the bytes we hold.
    fn plan_ftp_body(&self) -> BodyPlan {
        let offset = self.expectation.offset;
        let total = ftp_info::remaining_length(self.easy).map(|remaining| remaining + offset);
        if offset == 0 {
            return BodyPlan::Append { total };
        }
        let same_size = match (self.expectation.total, total) {
            (Some(recorded), Some(now)) => recorded == now,
            _ => true,
        };
        let unchanged = same_size
            && !self
                .expectation
                .validator
                .differs_from(&self.ftp_validator());
        if unchanged {
            BodyPlan::Append { total }
        } else {
            // For ftp the check was of SIZE and MDTM: a mismatch is a changed file.
            BodyPlan::Mismatch(RestartReason::ValidatorChanged)
        }
    }

    fn empty_file(&mut self) -> Result<(), TransferError> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        writer
            .seek(SeekFrom::Start(0))
            .and_then(|_| writer.get_ref().set_len(0))
            .map_err(|error| TransferError::local(&error, "emptying", &self.temp_path))?;
        self.length = 0;
        Ok(())
    }

    fn check_size(&self, size: u64) -> Result<(), TransferError> {
        match self.max_size {
            Some(max) if size > max => Err(TransferError::permanent(
                hresult::BG_E_MAX_DOWNLOAD_SIZE_LIMIT_REACHED,
                ErrorContext::RemoteFile,
                format!(
                    "{}: the file is larger than the maximum download size of {max} bytes",
                    self.url
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Hands the bytes taken since the last call to the engine's accounting.
    pub fn take_consumed(&mut self) -> u64 {
        std::mem::take(&mut self.consumed)
    }
}

/// The error of a server that cannot give a ranged file's bytes: permanent, since retrying
/// asks the same of the same server.
pub(crate) fn range_refusal(refusal: RangeRefusal, url: &str) -> TransferError {
    match refusal {
        RangeRefusal::Ignored => TransferError::permanent(
            hresult::BG_E_INSUFFICIENT_RANGE_SUPPORT,
            ErrorContext::RemoteFile,
            format!(
                "{url}: the server answered a range request with the whole file; ranged files need servers that honour Range"
            ),
        ),
        RangeRefusal::BeyondEnd => TransferError::permanent(
            hresult::BG_E_INVALID_RANGE,
            ErrorContext::RemoteFile,
            format!("{url}: a requested range runs beyond the end of the file"),
        ),
    }
}

impl Handler for Sink {
    fn ssl_ctx(&mut self, ssl_ctx: *mut std::ffi::c_void) -> Result<(), curl::Error> {
        if self.ignored_certificate_errors.any() {
            tls::relax_checks(ssl_ctx, self.ignored_certificate_errors)?;
        }
        Ok(())
    }

    fn header(&mut self, line: &[u8]) -> bool {
        if self.scheme.is_http() && self.body_use.is_none() {
            self.head.absorb(line);
        }
        true
    }

    fn write(&mut self, data: &[u8]) -> Result<usize, WriteError> {
        const ABORT: Result<usize, WriteError> = Ok(0);
        if self.failure.is_some() {
            return ABORT;
        }
        self.decide();
        let length = data.len() as u64;
        match self.body_use {
            Some(BodyUse::Write) => {}
            Some(BodyUse::Discard) => {
                self.discarded += length;
                return if self.discarded > MAX_DISCARDED_BODY {
                    ABORT
                } else {
                    Ok(data.len())
                };
            }
            Some(BodyUse::Abort) | None => return ABORT,
        }
        if self.held || self.allowance == Some(0) {
            self.paused = true;
            self.throttled |= !self.held;
            return Err(WriteError::Pause);
        }
        if let Err(error) = self.check_size(self.length + length) {
            self.failure = Some(SinkFailure::Failed(error));
            return ABORT;
        }
        let Some(writer) = self.writer.as_mut() else {
            return ABORT;
        };
        if let Err(error) = writer.write_all(data) {
            let failure = TransferError::local(&error, "writing", &self.temp_path);
            self.failure = Some(SinkFailure::Failed(failure));
            return ABORT;
        }
        self.length += length;
        self.consumed += length;
        if let Some(allowance) = self.allowance.as_mut() {
            *allowance = allowance.saturating_sub(length);
        }
        if self.near_the_end_of_the_response() {
            quick_ack::acknowledge_now(self.easy);
        }
        Ok(data.len())
    }
}
