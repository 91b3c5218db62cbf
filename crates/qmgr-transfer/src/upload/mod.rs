//! Uploads over the BITS upload protocol ([MC-BUP]): a pure client state machine
//! ([`session`]), the packets on the wire ([`channel`]), and [`Uploader`], which drives one
//! upload through them and reports each step the server acknowledged, so a caller can
//! record the session and resume it after a drop or a restart without resending what the
//! server holds.

pub mod channel;
pub mod prefix_hash;
pub mod session;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use qmgr_core::ErrorContext;
use qmgr_core::hresult;

pub use channel::{ChannelOptions, PacketChannel, SendIdle, SendLimit};
pub use prefix_hash::PrefixHash;
pub use session::{Ack, Next, Step, UploadState};

use crate::TransferError;

/// One upload: its URL, its source file and where it stands.
#[derive(Debug)]
pub struct Uploader {
    url: String,
    path: PathBuf,
    file: Arc<File>,
    content_name: String,
    channel: PacketChannel,
    state: UploadState,
    /// When packets to the Host-Id host started failing.
    host_failing_since: Option<Instant>,
    /// Sessions the server forgot since the caller last asked for progress: a server that
    /// keeps forgetting is retried after the caller's delay, not in a tight loop.
    sessions_lost: u32,
}

/// How many forgotten sessions one call starts over from before it gives up (transiently).
const MAX_SESSIONS_LOST_PER_CALL: u32 = 3;

impl Uploader {
    /// Opens the source file. `resume` is a state recorded earlier; it must be for a file
    /// of the same size (the caller checks the file did not change in other ways).
    pub fn open(
        url: &str,
        path: &Path,
        resume: Option<UploadState>,
        options: ChannelOptions,
    ) -> Result<Uploader, TransferError> {
        let file =
            open_source(path).map_err(|error| TransferError::local(&error, "cannot open", path))?;
        let total = file
            .metadata()
            .map_err(|error| TransferError::local(&error, "cannot read", path))?
            .len();
        let state = match resume {
            Some(state) if state.total != total => {
                return Err(TransferError::permanent(
                    hresult::BG_E_LOCAL_FILE_CHANGED,
                    ErrorContext::LocalFile,
                    format!(
                        "{} changed during the upload: it was {} bytes, now {total}",
                        path.display(),
                        state.total
                    ),
                ));
            }
            // The server may hold more than the record says: a one-byte probe asks first.
            Some(state) => UploadState {
                resync: state.session.is_some(),
                ..state
            },
            None => UploadState::new(total),
        };
        let mut channel = PacketChannel::new(options);
        let mut state = state;
        if state.session.is_some() && state.offset > 0 {
            let changed = |why: String| {
                TransferError::permanent(
                    hresult::BG_E_LOCAL_FILE_CHANGED,
                    ErrorContext::LocalFile,
                    format!(
                        "{} changed during the upload ({why}): it is not uploaded half old, \
                         half new",
                        path.display()
                    ),
                )
            };
            let now = channel
                .prefix_digest(&file, state.offset.min(total))
                .map_err(|error| changed(format!("its first bytes cannot be read: {error}")))?;
            match state.sent_hash {
                Some(recorded) if recorded != now => {
                    return Err(changed(format!(
                        "its first {} bytes, which the server holds, are not the same",
                        state.offset
                    )));
                }
                _ => state.sent_hash = Some(now),
            }
        }
        let content_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Uploader {
            url: url.to_owned(),
            path: path.to_owned(),
            file: Arc::new(file),
            content_name,
            channel,
            state,
            host_failing_since: None,
            sessions_lost: 0,
        })
    }

    pub fn state(&self) -> &UploadState {
        &self.state
    }

    /// `report` hears how far into the file a fragment has been sent, while it is sent
    /// (see [`PacketChannel::on_sent`]).
    pub fn on_sent(&mut self, report: impl FnMut(u64) + Send + 'static) {
        self.channel.on_sent(report);
    }

    /// For an upload-reply upload whose server holds every byte without having acknowledged
    /// the last one to this client (a resumed upload: the Ack naming the reply may have been
    /// lost with a connection or a restart): the last byte is sent again, and the server's
    /// Ack of it names the reply ([MC-BUP]: a repeated last fragment is acknowledged as
    /// before).
    pub fn ask_again_for_last_ack(&mut self) {
        if self.state.session.is_some()
            && self.state.total > 0
            && self.state.offset >= self.state.total
            && !self.state.last_byte_acknowledged
        {
            self.state.offset = self.state.total - 1;
            self.state.resync = true;
        }
    }

    /// Sends fragments until the server holds every byte. `acknowledged` hears each state
    /// the server confirmed (persist it to resume later). Stops early, with a transient
    /// `E_ABORT`, when `stop` is set.
    pub fn send_all(
        &mut self,
        stop: &AtomicBool,
        acknowledged: impl FnMut(&UploadState),
    ) -> Result<(), TransferError> {
        self.sessions_lost = 0;
        self.send_remaining(stop, acknowledged)
    }

    fn send_remaining(
        &mut self,
        stop: &AtomicBool,
        mut acknowledged: impl FnMut(&UploadState),
    ) -> Result<(), TransferError> {
        loop {
            if self.state.session.is_some() && self.state.offset >= self.state.total {
                return Ok(());
            }
            if stop.load(Ordering::Relaxed) {
                return Err(stopped());
            }
            let step = self.state.next_step();
            self.exchange(step)?;
            acknowledged(&self.state);
        }
    }

    /// Close-Session: the server publishes the file. A session the server forgot meanwhile
    /// means the upload starts over, so it is sent again first.
    pub fn close(
        &mut self,
        stop: &AtomicBool,
        mut acknowledged: impl FnMut(&UploadState),
    ) -> Result<(), TransferError> {
        self.sessions_lost = 0;
        while !self.state.closed {
            self.send_remaining(stop, &mut acknowledged)?;
            if self.exchange(Step::CloseSession)? == Next::Done {
                acknowledged(&self.state);
                return Ok(());
            }
        }
        Ok(())
    }

    /// Cancel-Session: the server drops the partial upload. Without a session there is
    /// nothing to tell.
    pub fn cancel(&mut self) -> Result<(), TransferError> {
        if self.state.session.is_none() {
            return Ok(());
        }
        self.exchange(Step::CancelSession).map(|_| ())
    }

    fn exchange(&mut self, step: Step) -> Result<Next, TransferError> {
        let url = match (&self.state.host, step) {
            (Some(host), step) if step != Step::CreateSession => {
                channel::with_host(&self.url, host).unwrap_or_else(|| self.url.clone())
            }
            _ => self.url.clone(),
        };
        let had_session = self.state.session.is_some();
        let answer = self.channel.send(
            &url,
            step,
            self.state.session.as_deref(),
            Some(&self.file),
            self.state.total,
            &self.content_name,
        );
        let ack = match answer {
            Ok(ack) => {
                self.host_failing_since = None;
                ack
            }
            Err(error) => {
                self.fall_back_from_host();
                return Err(error);
            }
        };
        let before = self.state.offset;
        let next = self.state.take_ack(step, &ack, &url)?;
        if self.state.offset != before || self.state.sent_hash.is_none() {
            self.state.sent_hash = if self.state.offset == 0 {
                None
            } else {
                Some(
                    self.channel
                        .prefix_digest(&self.file, self.state.offset)
                        .map_err(|error| TransferError::local(&error, "cannot read", &self.path))?,
                )
            };
        }
        if had_session && self.state.session.is_none() {
            self.sessions_lost += 1;
            if self.sessions_lost > MAX_SESSIONS_LOST_PER_CALL {
                return Err(TransferError::transient(
                    hresult::BG_E_SESSION_NOT_FOUND,
                    ErrorContext::RemoteFile,
                    format!("{url}: the server keeps forgetting the upload's session"),
                ));
            }
        }
        Ok(next)
    }

    /// Packets to the Host-Id host fail: after its fallback timeout, go back to the URL's
    /// own host (whose server will not know the session, so the upload starts over).
    fn fall_back_from_host(&mut self) {
        let (Some(_), Some(timeout)) = (&self.state.host, self.state.host_fallback) else {
            return;
        };
        let since = *self.host_failing_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= timeout {
            self.state.host = None;
            self.host_failing_since = None;
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Cancel-Session for a session recorded earlier (the job was cancelled; its source may be
/// gone): the server drops its partial upload. `Ok` also when the server no longer knows
/// the session or refuses with a status retrying cannot change.
pub fn cancel_session(
    url: &str,
    session: &str,
    host: Option<&str>,
    options: ChannelOptions,
) -> Result<(), TransferError> {
    let url = host
        .and_then(|host| channel::with_host(url, host))
        .unwrap_or_else(|| url.to_owned());
    let mut channel = PacketChannel::new(options);
    let ack = channel.send(&url, Step::CancelSession, Some(session), None, 0, "")?;
    let mut state = UploadState::new(0);
    state.session = Some(session.to_owned());
    match state.take_ack(Step::CancelSession, &ack, &url) {
        Ok(_) => Ok(()),
        Err(error) if error.error.hresult == hresult::BG_E_SESSION_NOT_FOUND => Ok(()),
        Err(error) => Err(error),
    }
}

/// Close-Session for an upload-reply upload whose reply was fetched: the server holds every
/// byte and has answered, so a server that forgot the session meanwhile (it expired, or
/// the server restarted) has nothing left to publish or to send: `Ok` too.
pub fn close_session(
    url: &str,
    state: &UploadState,
    options: ChannelOptions,
) -> Result<(), TransferError> {
    let Some(session) = state.session.as_deref() else {
        return Ok(());
    };
    let url = state
        .host
        .as_deref()
        .and_then(|host| channel::with_host(url, host))
        .unwrap_or_else(|| url.to_owned());
    let mut channel = PacketChannel::new(options);
    let ack = channel.send(&url, Step::CloseSession, Some(session), None, 0, "")?;
    // A forgotten session is not an error here (see above): the Ack's state is dropped.
    state
        .clone()
        .take_ack(Step::CloseSession, &ack, &url)
        .map(|_| ())
}

/// Opens an upload's source for reading: without blocking (a FIFO put in its place would
/// otherwise hang the opener until someone writes to it), and only if it is a regular file.
pub fn open_source(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

fn stopped() -> TransferError {
    TransferError::transient(
        hresult::E_ABORT,
        ErrorContext::None,
        "the upload was stopped".to_owned(),
    )
}
