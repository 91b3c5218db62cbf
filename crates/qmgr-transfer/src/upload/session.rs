//! The client side of the BITS upload protocol ([MC-BUP] §3.1) as a pure state machine:
//! which packet goes next, and what each Ack means. It does no I/O, so every rule is tested
//! without a server; [`super::channel`] carries the packets.

use std::fmt::Write as _;
use std::time::Duration;

use qmgr_core::hresult::{self, HResult};
use qmgr_core::{ErrorContext, QmgrError};

use crate::TransferError;

/// The one upload protocol: "BITS 1.5 Upload Protocol" ([MC-BUP] §1.7.1).
pub const PROTOCOL_GUID: &str = "{7df0354d-249b-430f-820d-3d2a9bef4931}";
/// Windows' fragments are at most 13 MB without a server's 413 ([MC-BUP] <10>); qmgr
/// starts smaller, so a drop costs little to resend.
pub const FIRST_FRAGMENT_BYTES: u64 = 4 * 1024 * 1024;
/// A 413 halves the fragment size, never below this ([MC-BUP] <16>: 5 KB).
pub const MIN_FRAGMENT_BYTES: u64 = 5 * 1024;

/// A packet the client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    CreateSession,
    /// Bytes `offset .. offset + length` of the file.
    Fragment {
        offset: u64,
        length: u64,
    },
    CloseSession,
    CancelSession,
}

impl Step {
    pub fn packet_type(self) -> &'static str {
        match self {
            Step::CreateSession => "Create-Session",
            Step::Fragment { .. } => "Fragment",
            Step::CloseSession => "Close-Session",
            Step::CancelSession => "Cancel-Session",
        }
    }
}

/// What the client needs of an Ack: its status and BITS headers, as received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ack {
    pub status: u16,
    pub packet_type: Option<String>,
    pub session_id: Option<String>,
    pub protocol: Option<String>,
    pub received: Option<String>,
    pub reply_url: Option<String>,
    pub error_code: Option<String>,
    pub error_context: Option<String>,
    pub host_id: Option<String>,
    pub host_id_fallback: Option<String>,
    pub retry_after: Option<Duration>,
}

/// Where an upload stands: what survives a restart of the client is `session`, `offset`
/// (the server's last word on what it holds) and `host`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadState {
    pub total: u64,
    /// The server's session, echoed verbatim in every later packet.
    pub session: Option<String>,
    /// The next byte to send: what the server said it holds.
    pub offset: u64,
    pub fragment_bytes: u64,
    /// `BITS-Host-Id`: the host later packets go to.
    pub host: Option<String>,
    /// How long to keep trying `host` before going back to the first (`None`: for ever).
    pub host_fallback: Option<Duration>,
    /// Upload-reply: where the reply is.
    pub reply_url: Option<String>,
    /// The server acknowledged the fragment holding the file's last byte: the Ack the
    /// server names a reply in ([MC-BUP] §2.2.7.2). An Ack of an earlier fragment that
    /// found the server already whole (a resumed upload) names none.
    pub last_byte_acknowledged: bool,
    /// The hash of the source's bytes `0..offset` (see [`super::prefix_hash`]): what a
    /// resumed upload checks its source against. `None` before any byte is acknowledged.
    pub sent_hash: Option<u64>,
    /// Close-Session was acknowledged: the server published the file.
    pub closed: bool,
    /// The state was recorded earlier (a restart, a retry): the first fragment is one byte,
    /// so the server's answer says where it stands before more than that is sent again.
    pub resync: bool,
}

/// What an Ack tells the client to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Send the packet [`UploadState::next_step`] gives.
    Continue,
    /// Every byte is acknowledged: close the session (after fetching a reply, if any).
    AllSent,
    /// The session is closed (or cancelled): the upload is over.
    Done,
}

impl UploadState {
    pub fn new(total: u64) -> UploadState {
        UploadState {
            total,
            session: None,
            offset: 0,
            fragment_bytes: FIRST_FRAGMENT_BYTES,
            host: None,
            host_fallback: None,
            reply_url: None,
            last_byte_acknowledged: false,
            sent_hash: None,
            closed: false,
            resync: false,
        }
    }

    /// The packet to send now.
    pub fn next_step(&self) -> Step {
        if self.session.is_none() {
            Step::CreateSession
        } else if self.offset < self.total {
            let length = if self.resync {
                1
            } else {
                self.fragment_bytes.min(self.total - self.offset)
            };
            Step::Fragment {
                offset: self.offset,
                length,
            }
        } else {
            Step::CloseSession
        }
    }

    /// Takes the Ack of `step`. Errors are the job's: transient ones are retried by the
    /// caller after its retry delay (from the same state), the others stop the job.
    pub fn take_ack(&mut self, step: Step, ack: &Ack, url: &str) -> Result<Next, TransferError> {
        if !ack
            .packet_type
            .as_deref()
            .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("ack"))
            && ack.status != 401
            && ack.status != 407
        {
            return Err(invalid_response(url, "the answer is not a BITS Ack"));
        }
        if let (Some(sent), Some(echoed)) = (&self.session, &ack.session_id)
            && step != Step::CreateSession
            && sent != echoed
        {
            return Err(invalid_response(
                url,
                &format!("the Ack names session {echoed:?}, not {sent:?}"),
            ));
        }
        let code = error_code(ack);
        if code == Some(hresult::BG_E_SESSION_NOT_FOUND) && step != Step::CancelSession {
            // The server forgot the session (restart, expiry, another host): start over.
            self.session = None;
            self.offset = 0;
            self.reply_url = None;
            return Ok(Next::Continue);
        }
        match step {
            Step::CreateSession => self.created(ack, url),
            Step::Fragment { offset, length } => self.fragment_acked(offset, length, ack, url),
            Step::CloseSession | Step::CancelSession => {
                if ack.status == 200 {
                    self.closed = step == Step::CloseSession;
                    Ok(Next::Done)
                } else if step == Step::CancelSession && ack.status < 500 {
                    // The server will not take the cancel: nothing more to tell it.
                    Ok(Next::Done)
                } else {
                    Err(server_error(ack, url))
                }
            }
        }
    }

    fn created(&mut self, ack: &Ack, url: &str) -> Result<Next, TransferError> {
        if ack.status != 200 && ack.status != 201 {
            return Err(server_error(ack, url));
        }
        let ours = |guid: &str| {
            guid.trim()
                .trim_matches(['{', '}'])
                .eq_ignore_ascii_case(PROTOCOL_GUID.trim_matches(['{', '}']))
        };
        if !ack.protocol.as_deref().is_some_and(ours) {
            return Err(TransferError::permanent(
                hresult::BG_E_CLIENT_SERVER_PROTOCOL_MISMATCH,
                ErrorContext::RemoteFile,
                format!("{url}: the server chose no upload protocol qmgr speaks"),
            ));
        }
        let session = ack
            .session_id
            .as_deref()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                invalid_response(url, "Create-Session was answered without a session id")
            })?;
        self.session = Some(session.to_owned());
        self.offset = 0;
        // A new session holds nothing: there is nothing to ask about.
        self.resync = false;
        self.host = ack.host_id.clone().filter(|host| !host.trim().is_empty());
        self.host_fallback = ack
            .host_id_fallback
            .as_deref()
            .and_then(|seconds| seconds.trim().parse().ok())
            .map(Duration::from_secs);
        Ok(if self.total == 0 {
            Next::AllSent
        } else {
            Next::Continue
        })
    }

    fn fragment_acked(
        &mut self,
        offset: u64,
        length: u64,
        ack: &Ack,
        url: &str,
    ) -> Result<Next, TransferError> {
        match ack.status {
            200 | 416 => self.resync = false,
            413 if self.fragment_bytes > MIN_FRAGMENT_BYTES => {
                self.fragment_bytes = (self.fragment_bytes / 2).max(MIN_FRAGMENT_BYTES);
                return Ok(Next::Continue);
            }
            _ => return Err(server_error(ack, url)),
        }
        let received = ack
            .received
            .as_deref()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                invalid_response(
                    url,
                    "a Fragment Ack without a valid BITS-Received-Content-Range",
                )
            })?;
        // The server is authoritative ([MC-BUP] §2.2.6): it may hold less than was sent (it
        // lost bytes: go back) or more (it had them from an earlier connection, which a
        // client resuming from an older record meets), but never more than the file.
        if received > self.total {
            return Err(invalid_response(
                url,
                &format!(
                    "the server claims {received} bytes of a {}-byte file after bytes {offset}..{}",
                    self.total,
                    offset + length
                ),
            ));
        }
        self.offset = received;
        if received == self.total && ack.status == 200 {
            self.last_byte_acknowledged = offset + length == self.total;
            self.reply_url = match ack.reply_url.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(reply) => Some(resolve_reply_url(url, reply).ok_or_else(|| {
                    invalid_response(url, &format!("the reply URL {reply:?} is not an http URL"))
                })?),
            };
            return Ok(Next::AllSent);
        }
        Ok(Next::Continue)
    }
}

/// The reply URL of an Ack as an absolute URL: IIS hands out a path relative to the upload
/// URL's directory, with back-slashes and braces (`BITS-Sessions\Replies\{…}\responsefile.bin`),
/// which is resolved as a browser would after turning the back-slashes into slashes;
/// characters a URL cannot carry are percent-encoded. Only http and https replies are
/// fetched (`None` for any other scheme).
pub fn resolve_reply_url(upload_url: &str, reply: &str) -> Option<String> {
    let reply = reply.trim().replace('\\', "/");
    let (scheme, rest) = upload_url.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let origin = &upload_url[..scheme.len() + 3 + authority_end];
    let resolved = if let Some((reply_scheme, _)) = reply.split_once("://")
        && !reply_scheme.contains('/')
    {
        reply
    } else if let Some(path) = reply.strip_prefix("//") {
        format!("{scheme}://{path}")
    } else if reply.starts_with('/') {
        format!("{origin}{reply}")
    } else {
        let path = &rest[authority_end..];
        let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
        let directory = &path[..path.rfind('/').map_or(0, |slash| slash + 1)];
        let directory = if directory.is_empty() { "/" } else { directory };
        format!("{origin}{directory}{reply}")
    };
    let lower = resolved.to_ascii_lowercase();
    if !lower.starts_with("http://") && !lower.starts_with("https://") {
        return None;
    }
    let mut encoded = String::with_capacity(resolved.len());
    for byte in resolved.bytes() {
        if byte.is_ascii_graphic() && !b"{}|^`\"<>".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    Some(encoded)
}

/// The HRESULT of `BITS-Error-Code` (or MC-BUP's `BITS-Error`), hex with or without `0x`.
fn error_code(ack: &Ack) -> Option<HResult> {
    let text = ack.error_code.as_deref()?.trim();
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .or_else(|| text.strip_prefix('x'))
        .unwrap_or(text);
    u32::from_str_radix(digits, 16).ok().map(HResult::from_bits)
}

/// A server's refusal as the job's error: its BITS error and context when it sent them,
/// else the HTTP status's `BG_E_HTTP_ERROR_*`. Overload and gateway troubles (and the
/// server application's timeouts and conflicts) are worth retrying; the codes [MC-BUP]
/// §3.1.5 says to report upward are not.
fn server_error(ack: &Ack, url: &str) -> TransferError {
    let status = ack.status;
    let code = error_code(ack).filter(|code| code.is_failure());
    let context = ack
        .error_context
        .as_deref()
        .and_then(|text| {
            u32::from_str_radix(
                text.trim()
                    .trim_start_matches("0x")
                    .trim_start_matches("0X"),
                16,
            )
            .ok()
        })
        .and_then(ErrorContext::from_raw)
        .filter(|context| {
            matches!(
                context,
                ErrorContext::RemoteFile | ErrorContext::RemoteApplication
            )
        })
        .unwrap_or(ErrorContext::RemoteFile);
    let hresult = code.unwrap_or_else(|| HResult::from_http_status(status));
    let reported_upward = matches!(
        code,
        Some(hresult::E_ACCESSDENIED | hresult::E_INVALIDARG | hresult::BG_E_TOO_LARGE)
    );
    let application = context == ErrorContext::RemoteApplication;
    let transient = !reported_upward
        && (matches!(status, 408 | 429)
            || (application && status == 409)
            || ((500..600).contains(&status) && status != 501 && status != 505));
    let description = format!(
        "{url}: the upload server answered {status}{}: {}",
        code.map(|code| format!(" with {code}")).unwrap_or_default(),
        hresult::description_for(hresult).unwrap_or_else(|| "no description".into())
    );
    TransferError {
        transient,
        error: QmgrError::new(hresult, context, description),
        retry_after: ack.retry_after,
        http_status: Some(status),
    }
}

fn invalid_response(url: &str, why: &str) -> TransferError {
    TransferError::permanent(
        hresult::BG_E_INVALID_SERVER_RESPONSE,
        ErrorContext::RemoteFile,
        format!("{url}: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://h/up/x";

    fn ack(status: u16) -> Ack {
        Ack {
            status,
            packet_type: Some("Ack".into()),
            ..Ack::default()
        }
    }

    fn created(total: u64) -> UploadState {
        let mut state = UploadState::new(total);
        let answer = Ack {
            session_id: Some("{S}".into()),
            protocol: Some(PROTOCOL_GUID.to_uppercase()),
            ..ack(200)
        };
        state.take_ack(Step::CreateSession, &answer, URL).unwrap();
        state
    }

    fn fragment_ack(status: u16, received: &str) -> Ack {
        Ack {
            session_id: Some("{S}".into()),
            received: Some(received.into()),
            ..ack(status)
        }
    }

    #[test]
    fn reply_urls_resolve_against_the_upload_urls_directory() {
        let upload = "http://h:8080/vdir/up/dump.bin?x=1";
        assert_eq!(
            resolve_reply_url(upload, "BITS-Sessions\\Replies\\{AB-12}\\responsefile.bin")
                .as_deref(),
            Some("http://h:8080/vdir/up/BITS-Sessions/Replies/%7BAB-12%7D/responsefile.bin")
        );
        assert_eq!(
            resolve_reply_url(upload, "/replies/r 1").as_deref(),
            Some("http://h:8080/replies/r%201")
        );
        assert_eq!(
            resolve_reply_url(upload, "https://other.example/r").as_deref(),
            Some("https://other.example/r")
        );
        assert_eq!(
            resolve_reply_url("https://h/u", "//cdn.example/r").as_deref(),
            Some("https://cdn.example/r")
        );
        assert_eq!(
            resolve_reply_url("http://h", "r.bin").as_deref(),
            Some("http://h/r.bin")
        );
        assert_eq!(resolve_reply_url(upload, "file:///etc/passwd"), None);
        assert_eq!(resolve_reply_url(upload, "ftp://h/r"), None);
    }

    #[test]
    fn the_last_ack_names_the_reply_and_a_bad_one_is_an_error() {
        let mut state = created(10);
        let step = Step::Fragment {
            offset: 0,
            length: 10,
        };
        let last = Ack {
            reply_url: Some("replies\\1".into()),
            ..fragment_ack(200, "10")
        };
        assert_eq!(state.take_ack(step, &last, URL).unwrap(), Next::AllSent);
        assert_eq!(state.reply_url.as_deref(), Some("http://h/up/replies/1"));

        let mut state = created(10);
        let bad = Ack {
            reply_url: Some("file:///etc/shadow".into()),
            ..fragment_ack(200, "10")
        };
        let error = state.take_ack(step, &bad, URL).unwrap_err();
        assert_eq!(error.error.hresult, hresult::BG_E_INVALID_SERVER_RESPONSE);
    }

    #[test]
    fn an_upload_goes_create_fragments_close() {
        let mut state = UploadState::new(10_000_000);
        assert_eq!(state.next_step(), Step::CreateSession);
        state = created(10_000_000);
        assert_eq!(
            state.next_step(),
            Step::Fragment {
                offset: 0,
                length: FIRST_FRAGMENT_BYTES
            }
        );
        let mut offset = 0;
        loop {
            let step = state.next_step();
            let Step::Fragment { offset: at, length } = step else {
                break;
            };
            assert_eq!(at, offset);
            offset += length;
            let next = state
                .take_ack(step, &fragment_ack(200, &offset.to_string()), URL)
                .unwrap();
            if offset == 10_000_000 {
                assert_eq!(next, Next::AllSent);
            }
        }
        assert_eq!(state.next_step(), Step::CloseSession);
        assert_eq!(
            state.take_ack(Step::CloseSession, &ack(200), URL).unwrap(),
            Next::Done
        );
        assert!(state.closed);
    }

    #[test]
    fn the_server_offset_rules_on_resync_and_lies_are_errors() {
        let mut state = created(1000);
        let step = Step::Fragment {
            offset: 0,
            length: 1000,
        };
        // 416: the server holds 300; the next fragment starts there.
        state
            .take_ack(step, &fragment_ack(416, "300"), URL)
            .unwrap();
        assert_eq!(
            state.next_step(),
            Step::Fragment {
                offset: 300,
                length: 700
            }
        );
        // It lost bytes: go back.
        let step = state.next_step();
        state
            .take_ack(step, &fragment_ack(200, "100"), URL)
            .unwrap();
        assert_eq!(state.offset, 100);
        for lie in ["1001", "-1", "12abc", ""] {
            let mut lied = state.clone();
            let error = lied
                .take_ack(
                    Step::Fragment {
                        offset: 100,
                        length: 100,
                    },
                    &fragment_ack(200, lie),
                    URL,
                )
                .unwrap_err();
            assert_eq!(
                error.error.hresult,
                hresult::BG_E_INVALID_SERVER_RESPONSE,
                "{lie:?}"
            );
            assert!(!error.transient);
        }
        // More than this fragment's end: the server had it already; go on from there.
        let mut ahead = state.clone();
        ahead
            .take_ack(
                Step::Fragment {
                    offset: 100,
                    length: 100,
                },
                &fragment_ack(200, "500"),
                URL,
            )
            .unwrap();
        assert_eq!(
            ahead.next_step(),
            Step::Fragment {
                offset: 500,
                length: 500
            }
        );
    }

    #[test]
    fn a_resumed_upload_asks_with_one_byte_first() {
        let mut state = created(100_000);
        state.offset = 1000;
        state.resync = true;
        assert_eq!(
            state.next_step(),
            Step::Fragment {
                offset: 1000,
                length: 1
            }
        );
        // The server had more: the probe cost one byte.
        state
            .take_ack(state.next_step(), &fragment_ack(200, "60000"), URL)
            .unwrap();
        assert_eq!(
            state.next_step(),
            Step::Fragment {
                offset: 60000,
                length: 40000
            }
        );
    }

    #[test]
    fn a_413_halves_fragments_down_to_5_kb() {
        let mut state = created(100 * 1024 * 1024);
        let mut sizes = Vec::new();
        loop {
            let step = state.next_step();
            match state.take_ack(step, &fragment_ack(413, "0"), URL) {
                Ok(_) => sizes.push(state.fragment_bytes),
                Err(error) => {
                    assert_eq!(error.http_status, Some(413));
                    break;
                }
            }
        }
        assert_eq!(sizes.last(), Some(&MIN_FRAGMENT_BYTES));
        assert!(sizes.windows(2).all(|pair| pair[1] < pair[0]));
    }

    #[test]
    fn a_forgotten_session_starts_over_except_for_cancel() {
        let mut state = created(1000);
        state.offset = 600;
        let lost = Ack {
            error_code: Some("0x8020001F".into()),
            error_context: Some("0x5".into()),
            ..ack(500)
        };
        assert_eq!(
            state
                .take_ack(
                    Step::Fragment {
                        offset: 600,
                        length: 400
                    },
                    &lost,
                    URL
                )
                .unwrap(),
            Next::Continue
        );
        assert_eq!((state.session.clone(), state.offset), (None, 0));
        assert_eq!(state.next_step(), Step::CreateSession);
        let mut cancelling = created(1000);
        let error = cancelling
            .take_ack(Step::CancelSession, &lost, URL)
            .unwrap_err();
        assert_eq!(error.error.hresult, hresult::BG_E_SESSION_NOT_FOUND);
    }

    #[test]
    fn server_errors_keep_their_code_and_context_and_only_some_are_retried() {
        let mut state = created(1000);
        let step = Step::Fragment {
            offset: 0,
            length: 1000,
        };
        let cases = [
            (
                403,
                Some("0x80070005"),
                Some("0x5"),
                hresult::E_ACCESSDENIED,
                ErrorContext::RemoteFile,
                false,
            ),
            (
                500,
                Some("0x80200020"),
                Some("0x5"),
                hresult::BG_E_TOO_LARGE,
                ErrorContext::RemoteFile,
                false,
            ),
            (
                500,
                Some("80004005"),
                Some("0x7"),
                hresult::E_FAIL,
                ErrorContext::RemoteApplication,
                true,
            ),
            (
                503,
                None,
                None,
                HResult::from_http_status(503),
                ErrorContext::RemoteFile,
                true,
            ),
            (
                501,
                Some("0x80070005"),
                Some("0x5"),
                hresult::E_ACCESSDENIED,
                ErrorContext::RemoteFile,
                false,
            ),
            (
                404,
                None,
                None,
                HResult::from_http_status(404),
                ErrorContext::RemoteFile,
                false,
            ),
        ];
        for (status, code, context, hresult, expected_context, transient) in cases {
            let answer = Ack {
                error_code: code.map(Into::into),
                error_context: context.map(Into::into),
                ..ack(status)
            };
            let error = state.take_ack(step, &answer, URL).unwrap_err();
            assert_eq!(error.error.hresult, hresult, "{status} {code:?}");
            assert_eq!(error.error.context, expected_context, "{status} {code:?}");
            assert_eq!(error.transient, transient, "{status} {code:?}");
        }
        // An answer that is no Ack at all (a proxy's error page, a plain web server).
        let plain = Ack {
            packet_type: None,
            ..ack(200)
        };
        let error = state.take_ack(step, &plain, URL).unwrap_err();
        assert_eq!(error.error.hresult, hresult::BG_E_INVALID_SERVER_RESPONSE);
    }

    #[test]
    fn create_session_needs_our_protocol_and_a_session_id() {
        let mut state = UploadState::new(10);
        let other = Ack {
            session_id: Some("{S}".into()),
            protocol: Some("{00000000-0000-0000-0000-000000000000}".into()),
            ..ack(200)
        };
        let error = state
            .take_ack(Step::CreateSession, &other, URL)
            .unwrap_err();
        assert_eq!(
            error.error.hresult,
            hresult::BG_E_CLIENT_SERVER_PROTOCOL_MISMATCH
        );
        let no_id = Ack {
            protocol: Some(PROTOCOL_GUID.into()),
            ..ack(200)
        };
        let error = state
            .take_ack(Step::CreateSession, &no_id, URL)
            .unwrap_err();
        assert_eq!(error.error.hresult, hresult::BG_E_INVALID_SERVER_RESPONSE);
        let farm = Ack {
            session_id: Some("{S}".into()),
            protocol: Some(PROTOCOL_GUID.into()),
            host_id: Some("node2".into()),
            host_id_fallback: Some("600".into()),
            ..ack(201)
        };
        state.take_ack(Step::CreateSession, &farm, URL).unwrap();
        assert_eq!(state.host.as_deref(), Some("node2"));
        assert_eq!(state.host_fallback, Some(Duration::from_secs(600)));
    }

    #[test]
    fn an_empty_file_is_a_session_closed_at_once() {
        let mut state = UploadState::new(0);
        let answer = Ack {
            session_id: Some("{S}".into()),
            protocol: Some(PROTOCOL_GUID.into()),
            ..ack(200)
        };
        assert_eq!(
            state.take_ack(Step::CreateSession, &answer, URL).unwrap(),
            Next::AllSent
        );
        assert_eq!(state.next_step(), Step::CloseSession);
    }
}
