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
//!
//! A Close-Session of a whole upload publishes it; [`crate::TestServer::uploaded`] reads it.

use std::collections::HashMap;
use std::io::{self, Read, Write};

use crate::request::RecordedRequest;
use crate::response::After;
use crate::state::Shared;

const PROTOCOL: &str = "{7df0354d-249b-430f-820d-3d2a9bef4931}";
const SESSION_NOT_FOUND: &str = "0x8020001F";

/// One upload session in memory.
#[derive(Debug, Default)]
pub(crate) struct Session {
    path: String,
    data: Vec<u8>,
    total: Option<u64>,
}

/// Every session and every published upload.
#[derive(Debug, Default)]
pub(crate) struct Uploads {
    sessions: HashMap<String, Session>,
    published: HashMap<String, Vec<u8>>,
    next_session: u64,
    /// Fragments received per path, for the K-th-fragment faults.
    fragments: HashMap<String, u64>,
}

impl Uploads {
    pub(crate) fn published(&self, path: &str) -> Option<Vec<u8>> {
        self.published.get(path).cloned()
    }
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
    let received = shared.with_uploads(|uploads| {
        let session = uploads
            .sessions
            .get_mut(session_id.unwrap_or_default())
            .expect("known above");
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
        session.data.len() as u64
    });
    if cut {
        // The connection dies mid-body; the client sees no Ack.
        return Ok(After::Abort);
    }
    if let Some(delay) = faults.fragment_delay_ms
        && !shared.pause(std::time::Duration::from_millis(delay))
    {
        return Ok(After::Abort);
    }
    let claimed = if faults.lie_received == Some(number) {
        total + 1
    } else {
        received
    };
    ack(
        reader.get_mut(),
        200,
        session_id,
        &[("BITS-Received-Content-Range", &claimed.to_string())],
        keep_alive,
    )
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
