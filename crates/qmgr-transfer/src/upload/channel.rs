//! Carries upload packets: one `BITS_POST` request per packet on a reused curl handle (so
//! a session's packets share a connection), a Fragment's body read straight from the file.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use curl::easy::{Easy2, Handler, List, ReadError, SeekResult, WriteError};

use super::prefix_hash::PrefixHash;
use super::session::{Ack, PROTOCOL_GUID, Step};
use crate::TransferError;
use crate::idle::{SendRegulator, transfer_socket};

/// What every packet of an upload is sent with.
#[derive(Clone, Debug)]
pub struct ChannelOptions {
    pub user_agent: String,
    pub connect_timeout: Duration,
    /// A packet that moves no byte for this long has failed. The last Fragment of an
    /// upload-reply may wait minutes for the server's application, so this is long.
    pub stall_timeout: Duration,
    /// The job's custom headers, sent with every packet.
    pub headers: Vec<(String, String)>,
    /// The caps on how fast fragments go, read before each packet.
    pub send_limit: SendLimit,
    /// Idle mode, for a background upload: where its status goes, and its target.
    pub idle: Option<SendIdle>,
}

/// Idle mode for one upload.
#[derive(Clone, Debug)]
pub struct SendIdle {
    pub target: Duration,
    pub(crate) statuses: crate::idle::StatusBoard,
    pub(crate) id: crate::request::TransferId,
}

/// An upload's bandwidth caps, changed from outside while it runs: its own (the job's cap),
/// and for a background upload the engine's global cap and its priority's schedule cap.
/// Zero is no cap.
#[derive(Clone, Debug, Default)]
pub struct SendLimit {
    pub own: Arc<AtomicU64>,
    pub global: Option<Arc<AtomicU64>>,
    pub priority: Option<Arc<AtomicU64>>,
}

impl SendLimit {
    /// The lowest of the caps that are set, in bytes per second; 0 when none is.
    pub fn bytes_per_second(&self) -> u64 {
        let read = |cap: Option<&Arc<AtomicU64>>| cap.map_or(0, |cap| cap.load(Ordering::Relaxed));
        [
            self.own.load(Ordering::Relaxed),
            read(self.global.as_ref()),
            read(self.priority.as_ref()),
        ]
        .into_iter()
        .filter(|&cap| cap != 0)
        .min()
        .unwrap_or(0)
    }
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            user_agent: concat!("qmgr/", env!("CARGO_PKG_VERSION")).to_owned(),
            connect_timeout: Duration::from_secs(60),
            stall_timeout: Duration::from_secs(300),
            headers: Vec::new(),
            send_limit: SendLimit::default(),
            idle: None,
        }
    }
}

/// One packet's exchange: the body to send and the answer's headers.
#[derive(Debug, Default)]
struct Exchange {
    body: Option<Body>,
    status_line_seen: bool,
    headers: Vec<(String, String)>,
    sent: Option<SentReporter>,
    /// The hash of the source's prefix, fed with each fragment's bytes as they go.
    prefix: PrefixHash,
    /// Idle mode's sending side, for a background upload.
    idle: Option<SendRegulator>,
    /// The address of the easy handle this exchange belongs to (it lives as long), for
    /// the socket idle mode looks at; kept as a number so the exchange stays `Send`.
    easy_handle: usize,
}

/// Hears how far into the file a fragment's body has gone, while it goes: a fragment of
/// megabytes under a bandwidth cap takes long, and a progress display would otherwise
/// stand still until its Ack.
struct SentReporter {
    report: Box<dyn FnMut(u64) + Send>,
    last: Option<std::time::Instant>,
}

impl std::fmt::Debug for SentReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SentReporter")
    }
}

/// curl's buffer for a fragment's body.
const UPLOAD_BUFFER_BYTES: usize = 1 << 20;

/// How often a fragment's progress is reported.
const SENT_REPORT_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug)]
struct Body {
    file: Arc<File>,
    /// Where the fragment starts in the file, and its length: a rewind goes back here.
    start: u64,
    length: u64,
    offset: u64,
    remaining: u64,
}

impl Handler for Exchange {
    fn read(&mut self, data: &mut [u8]) -> Result<usize, ReadError> {
        let Some(body) = &mut self.body else {
            return Ok(0);
        };
        let want = usize::try_from(body.remaining)
            .unwrap_or(usize::MAX)
            .min(data.len());
        if want == 0 {
            return Ok(0);
        }
        match body.file.read_at(&mut data[..want], body.offset) {
            // A file that shrank under the upload: curl fails the request (it was promised
            // more bytes), and the service's change check names the cause.
            Ok(0) | Err(_) => Err(ReadError::Abort),
            Ok(read) => {
                self.prefix.feed(body.offset, &data[..read]);
                body.offset += read as u64;
                body.remaining -= read as u64;
                if let Some(sent) = &mut self.sent
                    && (body.remaining == 0
                        || sent
                            .last
                            .is_none_or(|last| last.elapsed() >= SENT_REPORT_INTERVAL))
                {
                    sent.last = Some(std::time::Instant::now());
                    (sent.report)(body.offset);
                }
                Ok(read)
            }
        }
    }

    fn seek(&mut self, whence: std::io::SeekFrom) -> SeekResult {
        // curl rewinds to send the body again (after an authentication round, or when a
        // server answered before reading it).
        match (whence, &mut self.body) {
            (std::io::SeekFrom::Start(position), Some(body)) if position <= body.length => {
                body.offset = body.start + position;
                body.remaining = body.length - position;
                SeekResult::Ok
            }
            (std::io::SeekFrom::Start(0), None) => SeekResult::Ok,
            _ => SeekResult::Fail,
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<usize, WriteError> {
        // An Ack has no body; whatever a server sends anyway is not kept.
        Ok(data.len())
    }

    fn open_socket(
        &mut self,
        family: std::ffi::c_int,
        socket_type: std::ffi::c_int,
        protocol: std::ffi::c_int,
    ) -> Option<curl_sys::curl_socket_t> {
        let socket = rustix::net::socket_with(
            rustix::net::AddressFamily::from_raw(u16::try_from(family).ok()?),
            rustix::net::SocketType::from_raw(u32::try_from(socket_type).ok()?),
            rustix::net::SocketFlags::CLOEXEC,
            std::num::NonZeroU32::new(u32::try_from(protocol).ok()?)
                .map(rustix::net::Protocol::from_raw),
        )
        .ok()?;
        if let Some(idle) = &mut self.idle
            && socket_type == libc::SOCK_STREAM
        {
            idle.on_new_socket(std::os::fd::AsFd::as_fd(&socket));
        }
        Some(std::os::fd::IntoRawFd::into_raw_fd(socket))
    }

    fn progress(&mut self, _: f64, _: f64, _: f64, _: f64) -> bool {
        if let Some(idle) = &mut self.idle
            && let Some(socket) = transfer_socket(self.easy_handle as *mut curl_sys::CURL)
        {
            idle.tick(std::time::Instant::now(), socket);
        }
        true
    }

    fn header(&mut self, data: &[u8]) -> bool {
        let line = String::from_utf8_lossy(data);
        let line = line.trim_end();
        if line.starts_with("HTTP/") {
            // A new response (after a 100 Continue or an authentication round): only the
            // last one's headers count.
            self.headers.clear();
            self.status_line_seen = true;
        } else if let Some((name, value)) = line.split_once(':') {
            self.headers
                .push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        true
    }
}

/// The packets of one upload, in order, on one connection where the server allows.
pub struct PacketChannel {
    easy: Easy2<Exchange>,
    options: ChannelOptions,
}

impl std::fmt::Debug for PacketChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketChannel").finish_non_exhaustive()
    }
}

impl PacketChannel {
    pub fn new(options: ChannelOptions) -> PacketChannel {
        let exchange = Exchange {
            idle: options
                .idle
                .as_ref()
                .map(|idle| SendRegulator::new(idle.target, idle.statuses.clone(), idle.id)),
            ..Exchange::default()
        };
        let mut easy = Easy2::new(exchange);
        easy.get_mut().easy_handle = easy.raw() as usize;
        PacketChannel { easy, options }
    }

    /// `report` hears the file offset a Fragment's body has reached while it is sent (at
    /// most every quarter second); what the server holds is only what its Ack says.
    pub fn on_sent(&mut self, report: impl FnMut(u64) + Send + 'static) {
        self.easy.get_mut().sent = Some(SentReporter {
            report: Box::new(report),
            last: None,
        });
    }

    /// The hash of `file`'s bytes `0..end` (see [`PrefixHash::digest`]): the bytes this
    /// channel sent in order are not read again.
    pub fn prefix_digest(&mut self, file: &File, end: u64) -> std::io::Result<u64> {
        self.easy.get_mut().prefix.digest(file, end)
    }

    /// Sends `step` to `url` and returns the server's answer. `file` is the upload's source,
    /// read only for a Fragment (which needs one); `total` its size; `content_name` its file
    /// name.
    pub fn send(
        &mut self,
        url: &str,
        step: Step,
        session: Option<&str>,
        file: Option<&Arc<File>>,
        total: u64,
        content_name: &str,
    ) -> Result<Ack, TransferError> {
        let body = match (step, file) {
            (Step::Fragment { offset, length }, Some(file)) => Some(Body {
                file: file.clone(),
                start: offset,
                length,
                offset,
                remaining: length,
            }),
            (Step::Fragment { .. }, None) => {
                return Err(TransferError::permanent(
                    qmgr_core::hresult::E_UNEXPECTED,
                    qmgr_core::ErrorContext::LocalFile,
                    format!("{url}: a fragment without its source file"),
                ));
            }
            _ => None,
        };
        let length = body.as_ref().map_or(0, |body| body.remaining);
        {
            let exchange = self.easy.get_mut();
            exchange.body = body;
            exchange.headers.clear();
            exchange.status_line_seen = false;
        }
        let transport =
            |error: &curl::Error| TransferError::transport(error, url, None, None, None);
        self.configure(url, step, session, total, length, content_name)
            .map_err(|error| transport(&error))?;
        self.easy.perform().map_err(|error| transport(&error))?;
        let status = self
            .easy
            .response_code()
            .map_err(|error| transport(&error))?;
        let headers = &self.easy.get_ref().headers;
        let header = |name: &str| {
            headers
                .iter()
                .rev()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        Ok(Ack {
            status: u16::try_from(status).unwrap_or(0),
            packet_type: header("bits-packet-type"),
            session_id: header("bits-session-id"),
            protocol: header("bits-protocol"),
            received: header("bits-received-content-range"),
            reply_url: header("bits-reply-url"),
            error_code: header("bits-error-code").or_else(|| header("bits-error")),
            error_context: header("bits-error-context"),
            host_id: header("bits-host-id"),
            host_id_fallback: header("bits-host-id-fallback-timeout"),
            retry_after: header("retry-after")
                .and_then(|value| value.trim().parse().ok())
                .map(Duration::from_secs),
        })
    }

    fn configure(
        &mut self,
        url: &str,
        step: Step,
        session: Option<&str>,
        total: u64,
        length: u64,
        content_name: &str,
    ) -> Result<(), curl::Error> {
        let easy = &mut self.easy;
        easy.url(url)?;
        easy.useragent(&self.options.user_agent)?;
        easy.connect_timeout(self.options.connect_timeout)?;
        easy.low_speed_limit(1)?;
        easy.low_speed_time(self.options.stall_timeout)?;
        // Only HTTP(S) carries BITS_POST, and a redirect has no meaning for it.
        easy.follow_location(false)?;
        easy.max_send_speed(self.options.send_limit.bytes_per_second())?;
        // Idle mode looks at the connection from curl's progress callback.
        easy.progress(self.options.idle.is_some())?;
        // Fewer, larger reads and sends per fragment (curl's default is 64 KiB).
        easy.upload_buffer_size(UPLOAD_BUFFER_BYTES)?;
        easy.post(true)?;
        easy.post_field_size(length)?;
        easy.custom_request("BITS_POST")?;
        let mut headers = List::new();
        headers.append(&format!("BITS-Packet-Type: {}", step.packet_type()))?;
        if let Some(session) = session {
            headers.append(&format!("BITS-Session-Id: {session}"))?;
        }
        match step {
            Step::CreateSession => {
                headers.append(&format!("BITS-Supported-Protocols: {PROTOCOL_GUID}"))?;
            }
            Step::Fragment { offset, length } => {
                let last = offset + length - 1;
                headers.append(&format!("Content-Range: bytes {offset}-{last}/{total}"))?;
            }
            Step::CloseSession | Step::CancelSession => {}
        }
        if !content_name.is_empty() && !content_name.contains(['\r', '\n']) {
            headers.append(&format!("Content-Name: {content_name}"))?;
        }
        for (name, value) in &self.options.headers {
            headers.append(&format!("{name}: {value}"))?;
        }
        // No 100-continue round trip per fragment, and no form content type on a packet.
        headers.append("Expect:")?;
        headers.append("Content-Type:")?;
        easy.http_headers(headers)
    }
}

/// `url` with its host replaced by `host` (BITS-Host-Id), keeping scheme, port and path.
pub fn with_host(url: &str, host: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let (user_info, host_port) = match authority.rsplit_once('@') {
        Some((user, host_port)) => (Some(user), host_port),
        None => (None, authority),
    };
    let port = if host_port.starts_with('[') {
        host_port.split_once("]:").map(|(_, port)| port)
    } else {
        host_port.rsplit_once(':').map(|(_, port)| port)
    };
    let host = host.trim();
    if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let mut out = format!("{scheme}://");
    if let Some(user) = user_info {
        out.push_str(user);
        out.push('@');
    }
    out.push_str(&host);
    if let Some(port) = port {
        out.push(':');
        out.push_str(port);
    }
    out.push_str(path);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lower_of_the_caps_set_applies() {
        let limit = SendLimit::default();
        assert_eq!(limit.bytes_per_second(), 0, "no cap");
        limit.own.store(5000, Ordering::Relaxed);
        assert_eq!(limit.bytes_per_second(), 5000);
        let global = Arc::new(AtomicU64::new(0));
        let priority = Arc::new(AtomicU64::new(0));
        let background = SendLimit {
            own: limit.own.clone(),
            global: Some(global.clone()),
            priority: Some(priority.clone()),
        };
        assert_eq!(
            background.bytes_per_second(),
            5000,
            "a global cap of 0 is none"
        );
        global.store(2000, Ordering::Relaxed);
        assert_eq!(background.bytes_per_second(), 2000);
        limit.own.store(0, Ordering::Relaxed);
        assert_eq!(background.bytes_per_second(), 2000);
        global.store(9000, Ordering::Relaxed);
        assert_eq!(background.bytes_per_second(), 9000);
        assert_eq!(
            limit.bytes_per_second(),
            0,
            "a foreground upload has no global cap"
        );
        // A schedule's cap for the upload's priority: the lowest of the three binds.
        priority.store(3000, Ordering::Relaxed);
        assert_eq!(background.bytes_per_second(), 3000);
        priority.store(12_000, Ordering::Relaxed);
        assert_eq!(background.bytes_per_second(), 9000);
    }

    #[test]
    fn a_host_id_replaces_only_the_host() {
        assert_eq!(
            with_host("http://front.example:8080/up/x?y=1", "node7").as_deref(),
            Some("http://node7:8080/up/x?y=1")
        );
        assert_eq!(
            with_host("https://front.example/up/x", "fe80::1").as_deref(),
            Some("https://[fe80::1]/up/x")
        );
        assert_eq!(
            with_host("http://[::1]:81/a", "node7").as_deref(),
            Some("http://node7:81/a")
        );
        assert_eq!(with_host("http://a/b", "evil/path"), None);
    }
}
