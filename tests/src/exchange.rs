//! Answering one request: faults first, then the file.

use std::io::{self, Write};
use std::time::Duration;

use crate::content::{BodySource, ContentPattern, INITIAL_VERSION, etag, last_modified_secs};
use crate::http_date::format_http_date;
use crate::range::{self, Selection, Validators};
use crate::request::RecordedRequest;
use crate::response::{After, BodyEnd, BodyPlan, Framing, ResponseHead, send_body, send_text};
use crate::route::{Faults, Lie206, data_file_size, with_redirect_hops};
use crate::state::Shared;
use crate::upload::reply_session_key;

/// Answers `request`, which has already been logged as the `request_number`-th request
/// to its path. The faults apply in this order: `change_after`, `delay_ms`, `location`,
/// `redirect`, `proxy_auth`, `auth`, `require_header`, `status`/`fail_first`; then the file, under `ignore_range`, `drop_after`,
/// `rate`, `chunked` and `no_length`.
pub(crate) fn answer(
    shared: &Shared,
    writer: &mut impl Write,
    request: &RecordedRequest,
    request_number: u64,
    keep_alive: bool,
) -> io::Result<After> {
    let is_head = request.method == "HEAD";
    let faults = match Faults::parse(&request.query) {
        Ok(faults) => faults,
        Err(reason) => return send_text(writer, 400, &reason, &[], is_head, keep_alive),
    };
    if faults
        .change_after
        .is_some_and(|unchanged_requests| request_number == unchanged_requests + 1)
    {
        shared.bump_version(&request.path);
    }
    if let Some(delay_ms) = faults.delay_ms
        && !shared.pause(Duration::from_millis(delay_ms))
    {
        return Ok(After::Abort);
    }
    if let Some(location) = &faults.location {
        return send_redirect(writer, location, is_head, keep_alive);
    }
    if let Some(hops) = faults.redirect.filter(|&hops| hops > 0) {
        let location = format!(
            "{}{}?{}",
            shared.base_url(),
            request.path,
            with_redirect_hops(&request.query, hops - 1)
        );
        return send_redirect(writer, &location, is_head, keep_alive);
    }
    let target = if request.query.is_empty() {
        request.path.clone()
    } else {
        format!("{}?{}", request.path, request.query)
    };
    for (expected, proxy) in [(&faults.proxy_auth, true), (&faults.auth, false)] {
        let Some(expected) = expected else {
            continue;
        };
        let (status, asked, answer) = if proxy {
            (407, "Proxy-Authenticate", "Proxy-Authorization")
        } else {
            (401, "WWW-Authenticate", "Authorization")
        };
        let nonce = format!("qmgr-nonce-{request_number}");
        if let Err(challenges) =
            expected.verdict(request.header(answer), &request.method, &target, &nonce)
        {
            let headers: Vec<(&str, &str)> = challenges
                .iter()
                .map(|challenge| (asked, challenge.as_str()))
                .collect();
            return send_text(
                writer,
                status,
                "credentials required",
                &headers,
                is_head,
                keep_alive,
            );
        }
    }
    if let Some((name, wanted)) = &faults.require_header
        && request.header(name) != Some(wanted.as_str())
    {
        let reason = format!("the request lacks the header {name}: {wanted}");
        return send_text(writer, 403, &reason, &[], is_head, keep_alive);
    }
    if let Some(status) = faults.injected_status(request_number) {
        let retry_after: Vec<(&str, &str)> = faults
            .retry_after
            .as_deref()
            .map(|seconds| ("Retry-After", seconds))
            .into_iter()
            .collect();
        return send_text(
            writer,
            status,
            "injected by the query",
            &retry_after,
            is_head,
            keep_alive,
        );
    }
    let resource = if let Some(size) = data_file_size(&request.path) {
        Resource::Data(size)
    } else if let Some(upload_path) = request.path.strip_prefix(PUBLISHED_PREFIX) {
        Resource::Published(upload_path)
    } else if let Some(session_key) = reply_session_key(&request.path) {
        Resource::Reply(session_key)
    } else {
        return send_text(writer, 404, "no such file", &[], is_head, keep_alive);
    };
    if !is_head && request.method != "GET" && !faults.any_method {
        return send_text(
            writer,
            405,
            "files are read-only",
            &[("Allow", "GET, HEAD")],
            is_head,
            keep_alive,
        );
    }
    match resource {
        Resource::Data(size) => {
            let path = &request.path;
            let version = shared.version(path);
            let size = match faults.resize {
                Some(delta) if version > INITIAL_VERSION => size.saturating_add_signed(delta),
                _ => size,
            };
            let file = ServedFile {
                size,
                etag: etag(path, version, size),
                last_modified: format_http_date(last_modified_secs(path, version)),
                bytes: &ContentPattern::new(path, version),
            };
            send_file(shared, writer, request, &faults, &file, keep_alive)
        }
        Resource::Reply(session_key) => {
            send_reply(shared, writer, request, faults, session_key, keep_alive)
        }
        Resource::Published(upload_path) => {
            let Some(bytes) = shared.with_uploads(|uploads| uploads.published(upload_path)) else {
                let reason = format!("no upload to {upload_path} was published");
                return send_text(writer, 404, &reason, &[], is_head, keep_alive);
            };
            let size = bytes.len() as u64;
            let file = ServedFile {
                size,
                etag: etag(&request.path, INITIAL_VERSION, size),
                last_modified: format_http_date(last_modified_secs(&request.path, INITIAL_VERSION)),
                bytes: &*bytes,
            };
            send_file(shared, writer, request, &faults, &file, keep_alive)
        }
    }
}

/// `GET /published/<path>` reads what a BITS upload to `<path>` published: a client in
/// another process (a C example) can check what arrived.
const PUBLISHED_PREFIX: &str = "/published";

/// What a path names.
enum Resource<'a> {
    /// `/data/<size>…`: a file of that many bytes.
    Data(u64),
    /// `…/bits-replies/<session key>/reply.bin`: the reply of an upload.
    Reply(&'a str),
    /// `/published/<path>`: what an upload to `<path>` published.
    Published(&'a str),
}

/// A file as served: its length, validators and bytes.
struct ServedFile<'a, B: BodySource + ?Sized> {
    size: u64,
    etag: String,
    last_modified: String,
    bytes: &'a B,
}

/// Serves an upload's reply like a file, under the faults its upload URL asked for.
fn send_reply(
    shared: &Shared,
    writer: &mut impl Write,
    request: &RecordedRequest,
    mut faults: Faults,
    session_key: &str,
    keep_alive: bool,
) -> io::Result<After> {
    let is_head = request.method == "HEAD";
    let Some(reply) =
        shared.with_uploads(|uploads| uploads.answer_reply_request(session_key, request))
    else {
        return send_text(
            writer,
            404,
            "no such reply: its session is unknown, closed or has no reply",
            &[],
            is_head,
            keep_alive,
        );
    };
    if let Some(status) = reply.status {
        let keep_open = ResponseHead::new(status).send(writer, Framing::Length(0), keep_alive)?;
        return Ok(if keep_open {
            After::KeepOpen
        } else {
            After::Close
        });
    }
    if let Some(cut_after) = reply.cut_after {
        faults.drop_after = Some(cut_after);
        faults.drop_once = false;
    }
    // Every form of the reply's URL names one file: same validators whatever the path.
    let size = reply.bytes.len() as u64;
    let file = ServedFile {
        size,
        etag: etag(&reply.canonical_path, INITIAL_VERSION, size),
        last_modified: format_http_date(last_modified_secs(&reply.canonical_path, INITIAL_VERSION)),
        bytes: &*reply.bytes,
    };
    send_file(shared, writer, request, &faults, &file, keep_alive)
}

fn send_redirect(
    writer: &mut impl Write,
    location: &str,
    is_head: bool,
    keep_alive: bool,
) -> io::Result<After> {
    send_text(
        writer,
        302,
        "redirected",
        &[("Location", location)],
        is_head,
        keep_alive,
    )
}

fn send_file<B: BodySource + ?Sized>(
    shared: &Shared,
    writer: &mut impl Write,
    request: &RecordedRequest,
    faults: &Faults,
    file: &ServedFile<'_, B>,
    keep_alive: bool,
) -> io::Result<After> {
    let path = &request.path;
    let is_head = request.method == "HEAD";
    let size = file.size;
    let etag = file.etag.as_str();
    let last_modified = file.last_modified.as_str();
    let selection = if faults.ignore_range {
        Selection::Whole
    } else if faults.lie206.is_some() {
        // A liar ignores If-Range: any Range gets a 206.
        range::select(
            request.header("range"),
            None,
            size,
            Validators {
                etag,
                last_modified,
            },
        )
    } else {
        range::select(
            request.header("range"),
            request.header("if-range"),
            size,
            Validators {
                etag,
                last_modified,
            },
        )
    };
    let mut partial = false;
    let (first, len, mut head) = match selection {
        Selection::Whole => (0, size, ResponseHead::new(200)),
        Selection::Partial { first, last } => {
            partial = true;
            let mut head = ResponseHead::new(206);
            let (first, complete) = match faults.lie206 {
                Some(Lie206::Start) => (first / 2, size),
                Some(Lie206::Total) => (first, size + 1000),
                _ => (first, size),
            };
            head.header("Content-Range", &format!("bytes {first}-{last}/{complete}"));
            (first, last - first + 1, head)
        }
        Selection::Unsatisfiable => {
            let content_range = format!("bytes */{size}");
            return send_text(
                writer,
                416,
                "range not satisfiable",
                &[("Content-Range", &content_range)],
                is_head,
                keep_alive,
            );
        }
    };
    head.header("Content-Type", "application/octet-stream");
    match faults.lie206 {
        Some(Lie206::Date) => {
            head.header("Last-Modified", last_modified);
        }
        Some(Lie206::Weak) if partial => {
            let claimed = request.header("if-range").unwrap_or(etag).trim();
            head.header("ETag", &format!("W/{claimed}"));
        }
        _ => {
            head.header("ETag", etag)
                .header("Last-Modified", last_modified);
        }
    }
    head.header("Accept-Ranges", "bytes");
    let framing = if faults.chunked {
        Framing::Chunked
    } else if faults.no_length {
        Framing::CloseDelimited
    } else if let Some(lie) = faults.length_lie {
        Framing::Length(len.saturating_add_signed(lie))
    } else {
        Framing::Length(len)
    };
    // After a lying length the connection is out of step: it closes after the body.
    let keep_alive = keep_alive && faults.length_lie.is_none();
    let keep_open = head.send(writer, framing, keep_alive)?;
    let after_complete = if keep_open {
        After::KeepOpen
    } else {
        After::Close
    };
    if is_head {
        return Ok(after_complete);
    }

    let plan = BodyPlan {
        first,
        len,
        cut_after: faults
            .drop_after
            .filter(|_| !(faults.drop_once && shared.was_cut_before(path))),
        rate: faults.rate,
        chunked: framing == Framing::Chunked,
    };
    Ok(match send_body(shared, writer, path, file.bytes, plan)? {
        BodyEnd::Complete => after_complete,
        BodyEnd::Cut => {
            shared.mark_cut(path);
            After::Abort
        }
        BodyEnd::ShuttingDown => After::Abort,
    })
}
