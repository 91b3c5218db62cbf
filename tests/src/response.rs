//! Writing responses: the head, short text bodies, and paced, cut or chunked file bodies.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use crate::content::BodySource;
use crate::http_date::now_http_date;
use crate::state::Shared;

/// Largest body piece written at once: one content block, so pieces are contiguous.
const MAX_PIECE: usize = 65_521;
/// With a `rate`, the body goes out in this many pieces per second.
const PACED_PIECES_PER_SECOND: u64 = 20;

/// How the end of a response body is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Length(u64),
    Chunked,
    /// No length: the body ends when the server closes the connection.
    CloseDelimited,
    /// No body at all (HEAD answers announce the framing they would use instead).
    Empty,
}

/// What happens to the connection after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    KeepOpen,
    /// Close after everything was sent.
    Close,
    /// Close at once, without finishing: a cut body, or the server shutting down.
    Abort,
}

/// A response head under construction.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    text: String,
}

impl ResponseHead {
    pub(crate) fn new(status: u16) -> ResponseHead {
        let mut head = ResponseHead {
            text: format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status)),
        };
        head.header("Date", &now_http_date());
        head.header("Server", "qmgr-testserver");
        head
    }

    pub(crate) fn header(&mut self, name: &str, value: &str) -> &mut ResponseHead {
        self.text.push_str(name);
        self.text.push_str(": ");
        self.text.push_str(value);
        self.text.push_str("\r\n");
        self
    }

    /// Adds the framing and connection fields and writes the head. Returns whether the
    /// connection may stay open after the body.
    pub(crate) fn send(
        mut self,
        writer: &mut impl Write,
        framing: Framing,
        keep_alive: bool,
    ) -> io::Result<bool> {
        match framing {
            Framing::Length(len) => {
                self.header("Content-Length", &len.to_string());
            }
            Framing::Chunked => {
                self.header("Transfer-Encoding", "chunked");
            }
            Framing::CloseDelimited | Framing::Empty => {}
        }
        let keep_open = keep_alive && framing != Framing::CloseDelimited;
        if !keep_open {
            self.header("Connection", "close");
        }
        self.text.push_str("\r\n");
        writer.write_all(self.text.as_bytes())?;
        writer.flush()?;
        Ok(keep_open)
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Precondition Failed",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// Sends `status` with a one-line text body (none for HEAD, 204 and 304).
pub(crate) fn send_text(
    writer: &mut impl Write,
    status: u16,
    message: &str,
    extra_headers: &[(&str, &str)],
    is_head: bool,
    keep_alive: bool,
) -> io::Result<After> {
    let mut head = ResponseHead::new(status);
    for (name, value) in extra_headers {
        head.header(name, value);
    }
    let body = format!("{status} {}: {message}\n", reason_phrase(status));
    let bodyless_status = status == 204 || status == 304;
    let framing = if bodyless_status {
        Framing::Empty
    } else {
        head.header("Content-Type", "text/plain; charset=utf-8");
        Framing::Length(body.len() as u64)
    };
    let keep_open = head.send(writer, framing, keep_alive)?;
    if !is_head && !bodyless_status {
        writer.write_all(body.as_bytes())?;
        writer.flush()?;
    }
    Ok(if keep_open {
        After::KeepOpen
    } else {
        After::Close
    })
}

/// The part of a file to send and how.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyPlan {
    pub(crate) first: u64,
    pub(crate) len: u64,
    /// Cut the connection after this many body bytes.
    pub(crate) cut_after: Option<u64>,
    /// Bytes per second.
    pub(crate) rate: Option<u64>,
    pub(crate) chunked: bool,
}

/// How sending a body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyEnd {
    Complete,
    Cut,
    ShuttingDown,
}

/// Sends `plan.len` bytes of `source` from `plan.first`, counting them for `path` as
/// they go out.
pub(crate) fn send_body(
    shared: &Shared,
    writer: &mut impl Write,
    path: &str,
    source: &(impl BodySource + ?Sized),
    plan: BodyPlan,
) -> io::Result<BodyEnd> {
    let to_send = plan.cut_after.map_or(plan.len, |limit| limit.min(plan.len));
    let piece_limit = plan.rate.map_or(MAX_PIECE, |rate| {
        usize::try_from(rate / PACED_PIECES_PER_SECOND)
            .unwrap_or(MAX_PIECE)
            .clamp(1, MAX_PIECE)
    });
    let started = Instant::now();
    let mut sent = 0;
    while sent < to_send {
        if shared.is_shutting_down() {
            return Ok(BodyEnd::ShuttingDown);
        }
        let wanted =
            usize::try_from(to_send - sent).map_or(piece_limit, |left| left.min(piece_limit));
        let piece = source.slice_at(plan.first + sent, wanted);
        if piece.is_empty() {
            // The plan promised more than the source holds; looping would never end.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the body of {path} ends at byte {} of {}",
                    plan.first + sent,
                    plan.first + plan.len
                ),
            ));
        }
        if plan.chunked {
            write!(writer, "{:x}\r\n", piece.len())?;
            write_counted(shared, path, writer, piece)?;
            writer.write_all(b"\r\n")?;
        } else {
            write_counted(shared, path, writer, piece)?;
        }
        sent += piece.len() as u64;
        if let Some(rate) = plan.rate {
            let due = started + duration_for(sent, rate);
            let now = Instant::now();
            if due > now && !shared.pause(due - now) {
                return Ok(BodyEnd::ShuttingDown);
            }
        }
    }
    if to_send < plan.len {
        writer.flush()?;
        return Ok(BodyEnd::Cut);
    }
    if plan.chunked {
        writer.write_all(b"0\r\n\r\n")?;
    }
    writer.flush()?;
    Ok(BodyEnd::Complete)
}

/// Writes `bytes`, keeping `path`'s byte counter at least as high as what the client can
/// have received: a test that just finished reading a body may look at the counter at once.
fn write_counted(
    shared: &Shared,
    path: &str,
    writer: &mut impl Write,
    bytes: &[u8],
) -> io::Result<()> {
    shared.add_body_bytes(path, bytes.len() as u64);
    let mut unwritten = bytes;
    while !unwritten.is_empty() {
        match writer.write(unwritten) {
            Ok(0) => {
                shared.remove_body_bytes(path, unwritten.len() as u64);
                return Err(io::ErrorKind::WriteZero.into());
            }
            Ok(written) => unwritten = &unwritten[written..],
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                shared.remove_body_bytes(path, unwritten.len() as u64);
                return Err(error);
            }
        }
    }
    Ok(())
}

/// How long `bytes` take at `rate` bytes per second.
fn duration_for(bytes: u64, rate: u64) -> Duration {
    let nanos = u128::from(bytes) * 1_000_000_000 / u128::from(rate);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{ContentPattern, content};

    fn unpaced(first: u64, len: u64, cut_after: Option<u64>, chunked: bool) -> BodyPlan {
        BodyPlan {
            first,
            len,
            cut_after,
            rate: None,
            chunked,
        }
    }

    #[test]
    fn sends_the_planned_slice_and_counts_it() {
        let shared = Shared::new(String::new());
        let pattern = ContentPattern::new("/p", 2);
        let mut out = Vec::new();
        let end = send_body(
            &shared,
            &mut out,
            "/p",
            &pattern,
            unpaced(70_000, 200_000, None, false),
        )
        .expect("writing to memory");
        assert_eq!(end, BodyEnd::Complete);
        assert_eq!(out, content("/p", 2, 70_000, 200_000));
        assert_eq!(shared.body_bytes_sent("/p"), 200_000);
    }

    #[test]
    fn cut_after_stops_early() {
        let shared = Shared::new(String::new());
        let pattern = ContentPattern::new("/p", 0);
        let mut out = Vec::new();
        let end = send_body(
            &shared,
            &mut out,
            "/p",
            &pattern,
            unpaced(10, 100, Some(30), false),
        )
        .expect("writing to memory");
        assert_eq!(end, BodyEnd::Cut);
        assert_eq!(out, content("/p", 0, 10, 30));
        let mut whole = Vec::new();
        let end = send_body(
            &shared,
            &mut whole,
            "/p",
            &pattern,
            unpaced(0, 100, Some(100), false),
        )
        .expect("writing to memory");
        assert_eq!((end, whole.len()), (BodyEnd::Complete, 100));
    }

    #[test]
    fn chunked_bodies_are_framed() {
        let shared = Shared::new(String::new());
        let pattern = ContentPattern::new("/p", 0);
        let mut out = Vec::new();
        send_body(&shared, &mut out, "/p", &pattern, unpaced(0, 5, None, true))
            .expect("writing to memory");
        let mut expected = b"5\r\n".to_vec();
        expected.extend(content("/p", 0, 0, 5));
        expected.extend(b"\r\n0\r\n\r\n");
        assert_eq!(out, expected);
    }

    #[test]
    fn byte_bodies_are_sent_from_memory_and_may_not_fall_short() {
        let shared = Shared::new(String::new());
        let bytes: Vec<u8> = (0..=255).collect();
        let mut out = Vec::new();
        let end = send_body(
            &shared,
            &mut out,
            "/r",
            bytes.as_slice(),
            unpaced(200, 56, None, false),
        )
        .expect("writing to memory");
        assert_eq!((end, out.as_slice()), (BodyEnd::Complete, &bytes[200..]));
        let short = send_body(
            &shared,
            &mut Vec::new(),
            "/r",
            bytes.as_slice(),
            unpaced(200, 57, None, false),
        );
        assert_eq!(
            short.map_err(|error| error.kind()),
            Err(io::ErrorKind::UnexpectedEof)
        );
    }

    #[test]
    fn text_responses_carry_length_and_connection_fields() {
        let mut out = Vec::new();
        let after = send_text(
            &mut out,
            503,
            "try later",
            &[("Retry-After", "5")],
            false,
            false,
        )
        .expect("writing to memory");
        let text = String::from_utf8(out).expect("ASCII");
        assert_eq!(after, After::Close);
        assert!(
            text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nRetry-After: 5\r\n"), "{text}");
        assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
        let body = text.split("\r\n\r\n").nth(1).expect("a body");
        assert!(
            text.contains(&format!("\r\nContent-Length: {}\r\n", body.len())),
            "{text}"
        );
    }

    #[test]
    fn bodyless_statuses_and_head_send_no_body() {
        let mut out = Vec::new();
        send_text(&mut out, 304, "unchanged", &[], false, true).expect("writing to memory");
        assert!(String::from_utf8(out).expect("ASCII").ends_with("\r\n\r\n"));
        let mut out = Vec::new();
        send_text(&mut out, 500, "oops", &[], true, true).expect("writing to memory");
        let text = String::from_utf8(out).expect("ASCII");
        assert!(
            text.ends_with("\r\n\r\n") && text.contains("Content-Length: "),
            "{text}"
        );
    }
}
