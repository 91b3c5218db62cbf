//! What the engine reports about each transfer.
//!
//! Every accepted transfer ends with exactly one of `Completed`, `Failed` or `Cancelled`;
//! after that event the engine no longer touches its temporary file.

use std::path::PathBuf;

use crate::error::TransferError;
use crate::request::{TransferId, Validator};

/// Why a transfer that was meant to continue a partial file started it over from zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RestartReason {
    /// The server answered the range request with the whole file.
    RangeIgnored,
    /// The server's validator differs from the recorded one: the content changed.
    ValidatorChanged,
    /// The partial file came with no validator, so its bytes cannot be trusted to match.
    NoValidator,
    /// The server's partial answer did not start at our offset (or had no usable
    /// Content-Range).
    RangeMismatch,
    /// The server's partial answer gave another total size than the one recorded.
    TotalMismatch,
    /// The server's partial answer carried only a weak entity tag, which never vouches for
    /// a byte range.
    WeakValidator,
    /// The temporary file was gone or was not a regular file; a new one was made.
    PartialFileLost,
}

impl std::fmt::Display for RestartReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RestartReason::RangeIgnored => "the server ignored the range request and sent the whole file",
            RestartReason::ValidatorChanged => {
                "the server's ETag or Last-Modified differs from the one recorded: the content changed"
            }
            RestartReason::NoValidator => {
                "no strong ETag or Last-Modified proves the server's content is the one the bytes held came from"
            }
            RestartReason::RangeMismatch => {
                "the server's partial answer does not start where the bytes held end"
            }
            RestartReason::TotalMismatch => {
                "the server's partial answer gives another total size than the one recorded"
            }
            RestartReason::WeakValidator => {
                "the server's partial answer carries only a weak ETag, which cannot vouch for a range"
            }
            RestartReason::PartialFileLost => {
                "the temporary file was gone or was not this user's regular file"
            }
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineEvent {
    /// The temporary file is open; it is the one to record for resuming.
    Started { id: TransferId, temp_path: PathBuf },
    /// The source answered with the content. `resumed_at` is where its body goes in the
    /// file (0 when the file starts over, with `restart` saying why).
    Responded {
        id: TransferId,
        total: Option<u64>,
        validator: Validator,
        resumed_at: u64,
        restart: Option<RestartReason>,
        /// The response's head as received (status line and header lines, CRLF-separated;
        /// empty for file and ftp sources): IBackgroundCopyFile5's HTTP_RESPONSE_HEADERS.
        headers: String,
        /// The size of the remote file as the source gave it: `total` for a whole file;
        /// for a file of byte ranges, the complete length of the answer's Content-Range
        /// (what an on-demand file's requests are checked against).
        remote_size: Option<u64>,
    },
    /// Bytes written to the temporary file so far (flushed from the engine's buffer; the
    /// service makes them durable with [`crate::sync_partial`]). At most one every
    /// progress interval per transfer, and one as the transfer stops short of completion
    /// (a `Completed` tells its length itself, so none comes before it). `throttled`: a
    /// bandwidth cap (the transfer's own or the global one) paused it since the last
    /// report, so the cap, not the link, set its pace.
    Progress {
        id: TransferId,
        bytes_on_disk: u64,
        throttled: bool,
    },
    /// Every byte is in the temporary file and durable (see `durable.rs`); finish with
    /// [`crate::finalize`]. `bytes` is the file's length, newer than any `Progress`.
    Completed {
        id: TransferId,
        temp_path: PathBuf,
        bytes: u64,
        validator: Validator,
    },
    /// The transfer stopped; the temporary file keeps what was written (see the last
    /// `Progress`) for a later attempt if the error is transient.
    Failed {
        id: TransferId,
        error: TransferError,
    },
    /// The transfer stopped on request. The temporary file is left for the caller.
    Cancelled { id: TransferId },
    /// An upload's server acknowledged a step: where the upload stands now (record it to
    /// resume later). A `Progress` with the acknowledged bytes follows.
    Uploaded {
        id: TransferId,
        state: crate::upload::UploadState,
    },
}

impl EngineEvent {
    pub fn id(&self) -> TransferId {
        match self {
            EngineEvent::Started { id, .. }
            | EngineEvent::Responded { id, .. }
            | EngineEvent::Progress { id, .. }
            | EngineEvent::Completed { id, .. }
            | EngineEvent::Failed { id, .. }
            | EngineEvent::Uploaded { id, .. }
            | EngineEvent::Cancelled { id } => *id,
        }
    }

    /// Whether this is the last event of its transfer.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            EngineEvent::Completed { .. }
                | EngineEvent::Failed { .. }
                | EngineEvent::Cancelled { .. }
        )
    }
}
