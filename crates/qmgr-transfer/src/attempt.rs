//! How one attempt at a transfer begins (which file, from which offset, or why it starts
//! over) and how it ends (complete, failed, or to be asked again from zero).

use std::ffi::c_long;
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use qmgr_core::{ErrorContext, hresult};
use rustix::fs::{Mode, OFlags};

use crate::error::TransferError;
use crate::event::RestartReason;
use crate::files::{TempDirectory, is_unusable_partial};
use crate::http_date;
use crate::request::{CheckedRequest, TransferRequest, Validator};
use crate::response::{Expectation, RangeRefusal, already_complete};
use crate::sink::{KnownSource, Sink, SinkFailure, range_refusal};
use crate::source::Scheme;

/// One request's starting point.
pub(crate) struct Attempt {
    pub file: File,
    pub temp_path: PathBuf,
    pub expectation: Expectation,
    /// Why the bytes of an earlier attempt were dropped before this one began.
    pub prior_restart: Option<RestartReason>,
    pub known_source: Option<KnownSource>,
    /// A local source, opened and checked by us; curl reads it through
    /// `/proc/self/fd/N`, so it must stay open for the whole attempt.
    pub source_file: Option<File>,
}

impl Attempt {
    /// The next request of a ranged file, continuing the same file after a span arrived.
    pub fn next_span(file: File, temp_path: PathBuf, expectation: Expectation) -> Attempt {
        Attempt {
            file,
            temp_path,
            expectation,
            prior_restart: None,
            known_source: None,
            source_file: None,
        }
    }

    /// The first attempt: a local source is examined, the temporary file created or
    /// reopened, and kept bytes dropped if they cannot be continued. A local source that
    /// is missing fails before any file is made.
    pub fn first(checked: &CheckedRequest) -> Result<Attempt, TransferError> {
        let local_source = checked
            .source
            .local_path
            .as_deref()
            .map(|path| open_local_source(path, &checked.source.url))
            .transpose()?;
        let (source_file, known_source) = local_source.unzip();
        let mut opened = open_target(&checked.request)?;
        let mut prior_restart = opened.lost.then_some(RestartReason::PartialFileLost);
        let obstacle = (opened.kept > 0)
            .then(|| resume_obstacle(checked, &opened, known_source.as_ref()))
            .flatten();
        if let Some(reason) = obstacle {
            empty(&mut opened.file, &opened.temp_path)?;
            opened.kept = 0;
            prior_restart = Some(reason);
        }
        let partial = checked.request.partial.as_ref();
        Ok(Attempt {
            file: opened.file,
            temp_path: opened.temp_path,
            expectation: Expectation {
                offset: opened.kept,
                validator: partial.map(|p| p.validator.clone()).unwrap_or_default(),
                total: partial.and_then(|p| p.total),
                ranged: None,
            },
            prior_restart,
            known_source,
            source_file,
        })
    }

    /// An attempt from zero in an emptied file, after an answer that did not fit.
    pub fn over_again(
        file: File,
        temp_path: PathBuf,
        reason: RestartReason,
        known_source: Option<KnownSource>,
        source_file: Option<File>,
    ) -> Attempt {
        Attempt {
            file,
            temp_path,
            expectation: Expectation::default(),
            prior_restart: Some(reason),
            known_source,
            source_file,
        }
    }
}

/// The temporary file a transfer writes to.
struct OpenedTarget {
    file: File,
    temp_path: PathBuf,
    /// Bytes kept from an earlier attempt.
    kept: u64,
    /// The earlier attempt's file was gone or unusable; a new one was made.
    lost: bool,
}

fn open_target(request: &TransferRequest) -> Result<OpenedTarget, TransferError> {
    // A name recorded before its file was made (the usual case for a file not yet begun) is
    // made at once, saving the failed open; if something holds the name, the ordinary path
    // below looks at it.
    if let Some(partial) = &request.partial
        && partial.bytes == 0
        && let Ok(file) =
            TempDirectory::create_named_beside(&request.destination, &partial.temp_path)
    {
        return Ok(OpenedTarget {
            file,
            temp_path: partial.temp_path.clone(),
            kept: 0,
            lost: false,
        });
    }
    let directory = TempDirectory::of(&request.destination).map_err(|error| {
        TransferError::local(&error, "opening the directory of", &request.destination)
    })?;
    if let Some(partial) = &request.partial {
        match directory.reopen_partial(&partial.temp_path, partial.bytes) {
            Ok((file, kept)) => {
                return Ok(OpenedTarget {
                    file,
                    temp_path: partial.temp_path.clone(),
                    kept,
                    lost: false,
                });
            }
            // The recorded name holds nothing (yet): make the file under that very name, so
            // the caller's record stays true. Should someone take the name first, a new
            // random one is used below.
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                if let Ok(file) = directory.create_named(&partial.temp_path) {
                    return Ok(OpenedTarget {
                        file,
                        temp_path: partial.temp_path.clone(),
                        kept: 0,
                        lost: partial.bytes > 0,
                    });
                }
            }
            // Whatever is there now is left alone: it may be another user's file.
            Err(error) if is_unusable_partial(&error) => {}
            Err(error) => {
                return Err(TransferError::local(
                    &error,
                    "reopening",
                    &partial.temp_path,
                ));
            }
        }
    }
    let (file, temp_path) = directory.create_temp().map_err(|error| {
        TransferError::local(
            &error,
            "creating a temporary file for",
            &request.destination,
        )
    })?;
    Ok(OpenedTarget {
        file,
        temp_path,
        kept: 0,
        lost: request.partial.is_some(),
    })
}

/// Why the bytes held cannot be continued, if they cannot.
fn resume_obstacle(
    checked: &CheckedRequest,
    opened: &OpenedTarget,
    known_source: Option<&KnownSource>,
) -> Option<RestartReason> {
    let partial = checked.request.partial.as_ref()?;
    match checked.source.scheme {
        Scheme::File => {
            let known = known_source?;
            let unchanged = known.validator == partial.validator
                && partial.total.is_none_or(|total| total == known.total)
                && opened.kept <= known.total;
            (!unchanged).then_some(RestartReason::ValidatorChanged)
        }
        Scheme::Http | Scheme::Https => partial
            .validator
            .if_range()
            .is_none()
            .then_some(RestartReason::NoValidator),
        Scheme::Ftp | Scheme::Ftps => partial
            .validator
            .is_empty()
            .then_some(RestartReason::NoValidator),
    }
}

fn empty(file: &mut File, path: &Path) -> Result<(), TransferError> {
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)).map(drop))
        .map_err(|error| TransferError::local(&error, "emptying", path))
}

/// Opens a local source and takes its size and validator from the open descriptor, so
/// what is checked is what is read. `O_NONBLOCK` keeps a FIFO (or a device) put under the
/// name from stalling the engine thread in open(2); anything but a regular file is
/// refused, and the flag is cleared on the regular file that remains. The entity tag is
/// made of inode, size and modification time in nanoseconds, so a rewrite within the same
/// second is still seen.
fn open_local_source(path: &Path, url: &str) -> Result<(File, KnownSource), TransferError> {
    let describe = |error: io::Error| {
        let mut failure = TransferError::local(&error, "reading", path);
        failure.error.context = ErrorContext::RemoteFile;
        if error.kind() == io::ErrorKind::NotFound {
            failure.error.hresult = hresult::HRESULT_FILE_NOT_FOUND;
        }
        failure.error.description = format!("{url}: {}", failure.error.description);
        failure
    };
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(|error| describe(error.into()))?;
    let file = File::from(fd);
    let metadata = file.metadata().map_err(describe)?;
    if !metadata.is_file() {
        return Err(TransferError::permanent(
            hresult::E_INVALIDARG,
            ErrorContext::RemoteFile,
            format!("{url}: {} is not a regular file", path.display()),
        ));
    }
    rustix::fs::fcntl_getfl(&file)
        .and_then(|flags| rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK))
        .map_err(|error| describe(error.into()))?;
    let modified = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let known = KnownSource {
        total: metadata.len(),
        validator: Validator {
            etag: Some(
                format!(
                    "\"{:x}-{:x}-{:x}.{:09}\"",
                    metadata.ino(),
                    metadata.len(),
                    metadata.mtime(),
                    metadata.mtime_nsec()
                )
                .into(),
            ),
            last_modified: Some(http_date::format(modified).into()),
        },
    };
    Ok((file, known))
}

/// The URL curl reads a local source through: the descriptor we opened and checked, by
/// its `/proc` name, which reopens that very inode whatever the path points to now.
pub(crate) fn local_source_url(source: &File) -> String {
    format!("file:///proc/self/fd/{}", source.as_raw_fd())
}

/// How an attempt ended.
pub(crate) enum Verdict {
    Complete,
    Fail(TransferError),
    /// Ask again from zero: the answer did not continue the bytes held.
    StartOver(RestartReason),
}

/// Decides how an attempt ended, from what the sink saw and what curl reported.
pub(crate) fn judge(
    sink: &mut Sink,
    result: Result<(), curl::Error>,
    url: &str,
    detail: Option<&str>,
    redirect_target: Option<&str>,
    verify_result: Option<c_long>,
) -> Verdict {
    if let Some(failure) = sink.failure.take() {
        return match failure {
            SinkFailure::Failed(error) => Verdict::Fail(error),
            SinkFailure::Mismatch(reason) => Verdict::StartOver(reason),
        };
    }
    let http = sink.head.status.is_some();
    if let Err(error) = result {
        let redirect_trouble = error.is_too_many_redirects() || error.is_unsupported_protocol();
        if http && !sink.head.is_success() && !redirect_trouble {
            return http_verdict(sink, url);
        }
        if error.is_bad_download_resume() || error.is_range_error() {
            return Verdict::StartOver(RestartReason::RangeMismatch);
        }
        return Verdict::Fail(TransferError::transport(
            &error,
            url,
            detail,
            redirect_target,
            verify_result,
        ));
    }
    sink.decide();
    if let Some(failure) = sink.failure.take() {
        return match failure {
            SinkFailure::Failed(error) => Verdict::Fail(error),
            SinkFailure::Mismatch(reason) => Verdict::StartOver(reason),
        };
    }
    if !sink.is_writing() {
        return http_verdict(sink, url);
    }
    match sink.span_end.or(sink.responded_total) {
        Some(total) if total != sink.length => Verdict::Fail(TransferError::transient(
            hresult::HRESULT_WINHTTP_CONNECTION_ERROR,
            ErrorContext::GeneralTransport,
            format!(
                "{url}: the transfer ended after {} of {total} bytes",
                sink.length
            ),
        )),
        _ => Verdict::Complete,
    }
}

/// The verdict on a response that is not the file's content.
fn http_verdict(sink: &Sink, url: &str) -> Verdict {
    if already_complete(&sink.head, &sink.expectation) {
        return Verdict::Complete;
    }
    match sink.head.status {
        // The range starts beyond the end of the remote file.
        Some(416) if sink.expectation.ranged.is_some() => {
            Verdict::Fail(range_refusal(RangeRefusal::BeyondEnd, url))
        }
        Some(416) if sink.expectation.offset > 0 => {
            Verdict::StartOver(RestartReason::RangeMismatch)
        }
        Some(status) => Verdict::Fail(TransferError::http_status(
            status,
            url,
            sink.head.retry_after(SystemTime::now()),
        )),
        None => Verdict::Fail(TransferError::transient(
            hresult::BG_E_INVALID_SERVER_RESPONSE,
            ErrorContext::RemoteFile,
            format!("{url}: the server sent no status line"),
        )),
    }
}
