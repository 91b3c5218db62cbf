//! The BITS upload side of the test server ([MC-BUP]): `BITS_POST` packets to any path,
//! kept in memory, with the faults an upload client must survive, asked for in the query
//! (every packet of an upload goes to the same URL):
//!
//! | parameter | fault |
//! |---|---|
//! | `max_fragment=N` | fragments longer than N bytes get 413 (they do not count as the K-th below) |
//! | `drop_fragment=K[,K…]` | the K-th Fragments (from 1) are cut after half their body; the server keeps that half |
//! | `drop_discard=1` | with `drop_fragment`: the server keeps nothing of the cut fragment |
//! | `lose_bytes=K` | the K-th Fragment's Ack says the server holds only half of it (it "lost" the rest) |
//! | `lie_received=K` | the K-th Fragment's Ack claims a byte beyond the file |
//! | `forget_after=K` | at the (K+1)-th Fragment the server forgets every session, once (`BG_E_SESSION_NOT_FOUND`) |
//! | `create_error=STATUS:CODE:CONTEXT` | Create-Session is refused with that status and BITS error |
//! | `fragment_error=STATUS` | every Fragment is answered with that status and no BITS error |
//! | `fragment_delay_ms=N` | each Fragment is acknowledged N ms late (an upload to stop midway) |
//! | `reply=N` | an upload-reply upload: see below |
//! | `reply_relative=1` | with `reply`: the Reply-URL is relative, with back-slashes, as IIS sends it |
//! | `reply_missing=1` | with `reply`: the last Fragment's Ack carries no `BITS-Reply-URL` |
//! | `reply_status=S` | with `reply`: every GET or HEAD of the reply answers S with an empty body |
//! | `reply_drop=1` | with `reply`: the first GET of the reply is cut after half the reply |
//! | `reply_delay_ms=N` | with `reply`: the Ack of the Fragment that makes the upload whole comes N ms late (a slow server application) |
//!
//! A Close-Session of a whole upload publishes it; [`crate::TestServer::uploaded`] reads it.
//!
//! # Upload-reply
//!
//! With `reply=N` (N may be 0), the Fragment that makes the upload whole also makes a
//! reply of N bytes, [`expected_reply`] of the uploaded bytes, and its Ack carries
//! `BITS-Reply-URL`: `http://127.0.0.1:PORT/bits-replies/<session>/reply.bin`, where
//! `<session>` is the session id without its braces, or with `reply_relative=1`
//! `bits-replies\<session>\reply.bin`, to be resolved against the upload URL's
//! directory. A repeated last Fragment gets the same URL; the reply is made once.
//!
//! Any path that ends with `/bits-replies/<session>/reply.bin` serves the reply by GET and
//! HEAD as files are served (Content-Length, ETag, Last-Modified, Range and If-Range),
//! until the session ends: Close-Session publishes the upload and drops the reply,
//! Cancel-Session drops both. [`crate::TestServer::reply_gets`] and
//! [`crate::TestServer::upload_log`] tell what the client asked for, and in which order.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use crate::request::RecordedRequest;
use crate::response::After;
use crate::state::Shared;

const PROTOCOL: &str = "{7df0354d-249b-430f-820d-3d2a9bef4931}";
const SESSION_NOT_FOUND: &str = "0x8020001F";

/// The last path segments of every reply URL: `…/bits-replies/<session>/reply.bin`.
const REPLY_DIRECTORY: &str = "bits-replies";
const REPLY_FILE: &str = "reply.bin";

/// One upload session in memory.
#[derive(Debug, Default)]
pub(crate) struct Session {
    path: String,
    data: Vec<u8>,
    total: Option<u64>,
    /// Upload-reply: made when the upload became whole, kept until the session ends.
    reply: Option<Reply>,
}

/// An upload's reply and the faults its GETs meet.
#[derive(Debug)]
struct Reply {
    bytes: Arc<[u8]>,
    /// The `BITS-Reply-URL` value, repeated for a repeated last Fragment.
    url: String,
    /// `reply_status`: what every GET or HEAD answers instead of the reply.
    status: Option<u16>,
    /// `reply_drop`: the next GET is cut after half the reply.
    cut_next_get: bool,
}

/// What a GET or HEAD of a reply is answered with.
#[derive(Debug)]
pub(crate) struct ReplyAnswer {
    pub(crate) bytes: Arc<[u8]>,
    /// The reply's path as the server names it, whatever path the client used, so that
    /// every form of the URL has the same validators.
    pub(crate) canonical_path: String,
    /// Answer this status with an empty body instead.
    pub(crate) status: Option<u16>,
    /// Cut the body after this many bytes.
    pub(crate) cut_after: Option<u64>,
}

/// Every session and every published upload.
#[derive(Debug, Default)]
pub(crate) struct Uploads {
    sessions: HashMap<String, Session>,
    published: HashMap<String, Vec<u8>>,
    next_session: u64,
    /// Fragments received per path, for the K-th-fragment faults.
    fragments: HashMap<String, u64>,
    /// Packets and reply requests in arrival order ("Fragment", "GET reply", …).
    log: Vec<String>,
    /// The Range field of every GET of a reply, in arrival order.
    reply_gets: Vec<Option<String>>,
}

impl Uploads {
    pub(crate) fn published(&self, path: &str) -> Option<Vec<u8>> {
        self.published.get(path).cloned()
    }

    pub(crate) fn log(&self) -> Vec<String> {
        self.log.clone()
    }

    pub(crate) fn reply_gets(&self) -> Vec<Option<String>> {
        self.reply_gets.clone()
    }

    pub(crate) fn forget_log(&mut self) {
        self.log.clear();
        self.reply_gets.clear();
    }

    /// Logs a GET or HEAD (or, with `any_method`, another method) of the reply of
    /// `session_key` (a session id without braces) and says how to answer it; `None` when
    /// no open session has a reply by that name.
    pub(crate) fn answer_reply_request(
        &mut self,
        session_key: &str,
        request: &RecordedRequest,
    ) -> Option<ReplyAnswer> {
        let reply = self
            .sessions
            .get_mut(&format!("{{{session_key}}}"))?
            .reply
            .as_mut()?;
        let is_get = request.method == "GET";
        let cut = is_get && reply.status.is_none() && reply.cut_next_get;
        if cut {
            reply.cut_next_get = false;
        }
        let answer = ReplyAnswer {
            bytes: Arc::clone(&reply.bytes),
            canonical_path: reply_path(session_key),
            status: reply.status,
            cut_after: cut.then_some(reply.bytes.len() as u64 / 2),
        };
        self.log.push(format!("{} reply", request.method));
        if is_get {
            self.reply_gets
                .push(request.header("Range").map(str::to_owned));
        }
        Some(answer)
    }
}

/// The reply of an upload of `uploaded` whose URL asked for `reply=length`: byte `i` is
/// `uploaded[i % uploaded.len()] ^ 0x5A`, or `i % 251` for an empty upload, so a test can
/// tell a reply from the upload and a misplaced byte from a right one.
pub fn expected_reply(uploaded: &[u8], length: usize) -> Vec<u8> {
    if uploaded.is_empty() {
        return (0..length)
            .map(|i| u8::try_from(i % 251).expect("below 251"))
            .collect();
    }
    (0..length)
        .map(|i| uploaded[i % uploaded.len()] ^ 0x5A)
        .collect()
}

/// `/bits-replies/<session key>/reply.bin`.
fn reply_path(session_key: &str) -> String {
    format!("/{REPLY_DIRECTORY}/{session_key}/{REPLY_FILE}")
}

/// The session key (the session id without braces) of a path that ends with
/// `/bits-replies/<session key>/reply.bin`, or `None` for any other path. Any prefix is
/// allowed because a relative Reply-URL is resolved against the upload URL's directory.
pub(crate) fn reply_session_key(path: &str) -> Option<&str> {
    let directory = path.strip_suffix(REPLY_FILE)?.strip_suffix('/')?;
    let (parent, session_key) = directory.rsplit_once('/')?;
    let in_reply_directory = parent
        .strip_suffix(REPLY_DIRECTORY)
        .is_some_and(|above| above.ends_with('/'));
    (in_reply_directory && !session_key.is_empty()).then_some(session_key)
}

/// The faults of an upload URL's query.
#[derive(Debug, Default)]
struct UploadFaults {
    max_fragment: Option<u64>,
    drop_fragment: Vec<u64>,
    drop_discard: bool,
    lose_bytes: Option<u64>,
    lie_received: Option<u64>,
    forget_after: Option<u64>,
    create_error: Option<(u16, String, String)>,
    fragment_error: Option<u16>,
    fragment_delay_ms: Option<u64>,
    reply: Option<usize>,
    reply_relative: bool,
    reply_missing: bool,
    reply_status: Option<u16>,
    reply_drop: bool,
    reply_delay_ms: Option<u64>,
}

impl UploadFaults {
    fn parse(query: &str) -> UploadFaults {
        let mut faults = UploadFaults::default();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let number = value.parse::<u64>().ok();
            match name {
                "max_fragment" => faults.max_fragment = number,
                "drop_fragment" => {
                    faults.drop_fragment =
                        value.split(',').filter_map(|k| k.parse().ok()).collect();
                }
                "drop_discard" => faults.drop_discard = value == "1",
                "lose_bytes" => faults.lose_bytes = number,
                "lie_received" => faults.lie_received = number,
                "forget_after" => faults.forget_after = number,
                "fragment_error" => faults.fragment_error = value.parse().ok(),
                "fragment_delay_ms" => faults.fragment_delay_ms = number,
                "reply" => faults.reply = value.parse().ok(),
                "reply_relative" => faults.reply_relative = value == "1",
                "reply_missing" => faults.reply_missing = value == "1",
                "reply_status" => {
                    faults.reply_status = value
                        .parse()
                        .ok()
                        .filter(|status| (200..=599).contains(status));
                }
                "reply_drop" => faults.reply_drop = value == "1",
                "reply_delay_ms" => faults.reply_delay_ms = number,
                "create_error" => {
                    let mut parts = value.split(':');
                    if let (Some(status), Some(code), Some(context)) =
                        (parts.next(), parts.next(), parts.next())
                        && let Ok(status) = status.parse()
                    {
                        faults.create_error = Some((status, code.to_owned(), context.to_owned()));
                    }
                }
                _ => {}
            }
        }
        faults
    }
}

/// Answers one `BITS_POST` packet whose head was read; reads its body (`body_length`
/// bytes) from `reader` itself, so that a fault can cut it.
pub(crate) fn answer<T: Read + Write>(
    shared: &Shared,
    reader: &mut io::BufReader<T>,
    request: &RecordedRequest,
    body_length: u64,
    keep_alive: bool,
) -> io::Result<After> {
    let faults = UploadFaults::parse(&request.query);
    let session_id = request.header("BITS-Session-Id").map(str::to_owned);
    let kind = request
        .header("BITS-Packet-Type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    shared.with_uploads(|uploads| uploads.log.push(packet_name(request, &kind)));
    if kind == "fragment" {
        return fragment(
            shared,
            reader,
            request,
            body_length,
            session_id.as_deref(),
            &faults,
            keep_alive,
        );
    }
    crate::request::discard_body(reader, body_length)
        .map_err(|_| io::Error::from(io::ErrorKind::UnexpectedEof))?;
    let writer = reader.get_mut();
    match kind.as_str() {
        "ping" => ack(writer, 200, session_id.as_deref(), &[], keep_alive),
        "create-session" => {
            if let Some((status, code, context)) = &faults.create_error {
                return ack(
                    writer,
                    *status,
                    None,
                    &[("BITS-Error-Code", code), ("BITS-Error-Context", context)],
                    keep_alive,
                );
            }
            let id = shared.with_uploads(|uploads| {
                uploads.next_session += 1;
                let id = format!("{{TEST-SESSION-{}}}", uploads.next_session);
                uploads.sessions.insert(
                    id.clone(),
                    Session {
                        path: request.path.clone(),
                        ..Session::default()
                    },
                );
                id
            });
            ack(
                writer,
                200,
                Some(&id),
                &[("BITS-Protocol", PROTOCOL), ("Accept-Encoding", "identity")],
                keep_alive,
            )
        }
        "close-session" | "cancel-session" => {
            let closing = kind == "close-session";
            let known = shared.with_uploads(|uploads| {
                let session = uploads
                    .sessions
                    .remove(session_id.as_deref().unwrap_or_default())?;
                let whole = session
                    .total
                    .is_none_or(|total| total == session.data.len() as u64);
                if closing && whole {
                    uploads.published.insert(session.path, session.data);
                }
                Some(())
            });
            match known {
                Some(()) => ack(writer, 200, session_id.as_deref(), &[], keep_alive),
                None => not_found(writer, session_id.as_deref(), keep_alive),
            }
        }
        _ => ack(
            writer,
            400,
            session_id.as_deref(),
            &[
                ("BITS-Error-Code", "0x80070057"),
                ("BITS-Error-Context", "0x5"),
            ],
            keep_alive,
        ),
    }
}

fn fragment<T: Read + Write>(
    shared: &Shared,
    reader: &mut io::BufReader<T>,
    request: &RecordedRequest,
    body_length: u64,
    session_id: Option<&str>,
    faults: &UploadFaults,
    keep_alive: bool,
) -> io::Result<After> {
    let range = request
        .header("Content-Range")
        .and_then(parse_content_range);
    let early_status = if let Some(status) = faults.fragment_error {
        Some(status)
    } else if faults
        .max_fragment
        .is_some_and(|largest| body_length > largest)
    {
        Some(413)
    } else if range.is_none_or(|(first, last, _)| last - first + 1 != body_length) {
        Some(400)
    } else {
        None
    };
    if let Some(status) = early_status {
        crate::request::discard_body(reader, body_length)
            .map_err(|_| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        return ack(reader.get_mut(), status, session_id, &[], keep_alive);
    }
    // Only fragments that get this far count for the K-th-fragment faults.
    let number = shared.with_uploads(|uploads| {
        let count = uploads.fragments.entry(request.path.clone()).or_default();
        *count += 1;
        *count
    });
    if faults.forget_after.is_some_and(|after| number == after + 1) {
        shared.with_uploads(|uploads| uploads.sessions.clear());
    }
    let known = shared.with_uploads(|uploads| {
        uploads
            .sessions
            .get(session_id.unwrap_or_default())
            .map(|session| session.data.len() as u64)
    });
    let Some(held) = known else {
        crate::request::discard_body(reader, body_length)
            .map_err(|_| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        return not_found(reader.get_mut(), session_id, keep_alive);
    };
    let (first, last, total) = range.expect("checked above");
    let cut = faults.drop_fragment.contains(&number);
    let to_read = if cut { body_length / 2 } else { body_length };
    let mut body = vec![0u8; usize::try_from(to_read).unwrap_or(usize::MAX)];
    reader.read_exact(&mut body)?;
    if first > held {
        return ack(
            reader.get_mut(),
            416,
            session_id,
            &[
                ("BITS-Error-Code", "0x0"),
                ("BITS-Error-Context", "0x5"),
                ("BITS-Received-Content-Range", &held.to_string()),
            ],
            keep_alive,
        );
    }
    let session_id = session_id.unwrap_or_default();
    let (received, reply) = shared.with_uploads(|uploads| {
        let session = uploads.sessions.get_mut(session_id).expect("known above");
        session.total = Some(total);
        if !(cut && faults.drop_discard) {
            // Only what lies beyond what the server holds is new.
            let skip = usize::try_from(held - first)
                .unwrap_or(usize::MAX)
                .min(body.len());
            session.data.extend_from_slice(&body[skip..]);
        }
        if faults.lose_bytes == Some(number) {
            let keep = first + (last - first).div_ceil(2);
            session
                .data
                .truncate(usize::try_from(keep).unwrap_or(usize::MAX));
        }
        let received = session.data.len() as u64;
        let reply = match faults.reply {
            Some(length) if received == total => {
                Some(reply_of(shared, session, session_id, length, faults))
            }
            _ => None,
        };
        (received, reply)
    });
    if cut {
        // The connection dies mid-body; the client sees no Ack.
        return Ok(After::Abort);
    }
    if let Some(delay) = faults.fragment_delay_ms
        && !shared.pause(Duration::from_millis(delay))
    {
        return Ok(After::Abort);
    }
    if let Some((_, true)) = reply
        && let Some(delay) = faults.reply_delay_ms
        && !shared.pause(Duration::from_millis(delay))
    {
        return Ok(After::Abort);
    }
    let claimed = if faults.lie_received == Some(number) {
        total + 1
    } else {
        received
    };
    let claimed = claimed.to_string();
    let mut fields = vec![("BITS-Received-Content-Range", claimed.as_str())];
    if let Some((url, _)) = &reply
        && !faults.reply_missing
    {
        fields.push(("BITS-Reply-URL", url));
    }
    ack(reader.get_mut(), 200, Some(session_id), &fields, keep_alive)
}

/// The Reply-URL of a whole upload-reply `session`, and whether the reply was made just
/// now: only the first Fragment that finds the upload whole makes it, as a server
/// application is notified once ([MC-BUP] NotifyCache).
fn reply_of(
    shared: &Shared,
    session: &mut Session,
    session_id: &str,
    length: usize,
    faults: &UploadFaults,
) -> (String, bool) {
    if let Some(reply) = &session.reply {
        return (reply.url.clone(), false);
    }
    let key = session_id.trim_start_matches('{').trim_end_matches('}');
    let url = if faults.reply_relative {
        format!("{REPLY_DIRECTORY}\\{key}\\{REPLY_FILE}")
    } else {
        format!("{}{}", shared.base_url(), reply_path(key))
    };
    session.reply = Some(Reply {
        bytes: expected_reply(&session.data, length).into(),
        url: url.clone(),
        status: faults.reply_status,
        cut_next_get: faults.reply_drop,
    });
    (url, true)
}

/// The upload log's name of a packet: the protocol's spelling for known packet types,
/// the type as sent otherwise.
fn packet_name(request: &RecordedRequest, kind: &str) -> String {
    let known = match kind {
        "ping" => "Ping",
        "create-session" => "Create-Session",
        "fragment" => "Fragment",
        "close-session" => "Close-Session",
        "cancel-session" => "Cancel-Session",
        _ => {
            return request
                .header("BITS-Packet-Type")
                .map_or_else(|| "(no packet type)".to_owned(), str::to_owned);
        }
    };
    known.to_owned()
}

/// `bytes FIRST-LAST/TOTAL`.
fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let (first, last, total) = (first.parse().ok()?, last.parse().ok()?, total.parse().ok()?);
    (first <= last && last < total).then_some((first, last, total))
}

fn not_found(
    writer: &mut impl Write,
    session: Option<&str>,
    keep_alive: bool,
) -> io::Result<After> {
    ack(
        writer,
        500,
        session,
        &[
            ("BITS-Error-Code", SESSION_NOT_FOUND),
            ("BITS-Error-Context", "0x5"),
        ],
        keep_alive,
    )
}

/// An Ack: no body, the session echoed.
fn ack(
    writer: &mut impl Write,
    status: u16,
    session: Option<&str>,
    extra: &[(&str, &str)],
    keep_alive: bool,
) -> io::Result<After> {
    let mut head =
        format!("HTTP/1.1 {status} BITS\r\nBITS-Packet-Type: Ack\r\nContent-Length: 0\r\n");
    if let Some(session) = session {
        head.push_str("BITS-Session-Id: ");
        head.push_str(session);
        head.push_str("\r\n");
    }
    for (name, value) in extra {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes())?;
    writer.flush()?;
    Ok(if keep_alive {
        After::KeepOpen
    } else {
        After::Close
    })
}

/// Whether `request` is an upload packet.
pub(crate) fn is_upload(request: &RecordedRequest) -> bool {
    request.method == "BITS_POST"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_the_upload_repeated_and_masked() {
        assert_eq!(
            expected_reply(&[0x00, 0xFF, 0x5A], 7),
            [0x5A, 0xA5, 0x00, 0x5A, 0xA5, 0x00, 0x5A]
        );
        assert_eq!(expected_reply(b"abc", 2), [b'a' ^ 0x5A, b'b' ^ 0x5A]);
        assert!(expected_reply(b"abc", 0).is_empty());
    }

    #[test]
    fn the_reply_to_an_empty_upload_counts_modulo_251() {
        let reply = expected_reply(&[], 600);
        assert_eq!((reply[0], reply[250], reply[251]), (0, 250, 0));
        assert_eq!((reply[502], reply[599]), (0, 97));
    }

    #[test]
    fn reply_paths_end_in_the_reply_directory_whatever_comes_before() {
        assert_eq!(
            reply_session_key("/bits-replies/TEST-SESSION-3/reply.bin"),
            Some("TEST-SESSION-3")
        );
        assert_eq!(
            reply_session_key("/up/dir/bits-replies/S/reply.bin"),
            Some("S")
        );
        for path in [
            "/bits-replies/S/other.bin",
            "/bits-replies//reply.bin",
            "/bits-replies/reply.bin",
            "/my-bits-replies/S/reply.bin",
            "/bits-replies/S/x/reply.bin",
            "/data/10/reply.bin",
        ] {
            assert_eq!(reply_session_key(path), None, "{path}");
        }
    }

    #[test]
    fn reply_parameters_are_parsed() {
        let faults = UploadFaults::parse(
            "reply=0&reply_relative=1&reply_missing=1&reply_status=503&reply_drop=1&reply_delay_ms=20",
        );
        assert_eq!(faults.reply, Some(0));
        assert!(faults.reply_relative && faults.reply_missing && faults.reply_drop);
        assert_eq!(faults.reply_status, Some(503));
        assert_eq!(faults.reply_delay_ms, Some(20));
        let plain = UploadFaults::parse("reply_status=99&other=1");
        assert_eq!((plain.reply, plain.reply_status), (None, None));
        assert!(!plain.reply_relative && !plain.reply_missing && !plain.reply_drop);
    }
}
