//! Reading an HTTP/1.x request head off a connection.

use std::io::{self, BufRead, Read};

/// Longest request line or header line accepted; longer ones are answered with 400.
const MAX_LINE_LEN: u64 = 16 * 1024;
/// Most header fields accepted in one request.
const MAX_HEADERS: usize = 100;

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The method, as sent (`GET`, `HEAD`, …).
    pub method: String,
    /// The URL path without the query, e.g. `/data/64k`.
    pub path: String,
    /// The query without the leading `?`, still percent-encoded; empty if there was none.
    pub query: String,
    /// Header fields in the order they arrived, names as the client spelled them.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The value of the first header field called `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// How the request's body (if any) is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestBody {
    Length(u64),
    /// Transfer-Encoding: the server does not decode request bodies, so it answers and
    /// then closes the connection rather than guess where the next request starts.
    Unframed,
}

/// A parsed request head.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub(crate) request: RecordedRequest,
    /// Whether the client allows the connection to stay open after this exchange.
    pub(crate) keep_alive: bool,
    pub(crate) body: RequestBody,
}

/// Why no request could be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The client closed the connection (or it failed) between or inside requests.
    Disconnected,
    /// The bytes are not an HTTP/1.x request; the reason goes into the 400 body.
    Malformed(String),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> ReadError {
        ReadError::Disconnected
    }
}

/// Reads one request head (request line and header fields, up to the empty line).
pub(crate) fn read_request_head(reader: &mut impl BufRead) -> Result<RequestHead, ReadError> {
    // RFC 9112 §2.2: a server should ignore empty lines received before the request line.
    let request_line = loop {
        let line = read_line(reader)?.ok_or(ReadError::Disconnected)?;
        if !line.is_empty() {
            break line;
        }
    };
    let (method, target, minor_version) = parse_request_line(&request_line)?;
    let (path, query) = split_target(target)?;

    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?.ok_or(ReadError::Disconnected)?;
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(malformed(format!("more than {MAX_HEADERS} header fields")));
        }
        headers.push(parse_header_line(&line)?);
    }

    let request = RecordedRequest {
        method: method.to_owned(),
        path,
        query,
        headers,
    };
    let body = body_framing(&request)?;
    let keep_alive = minor_version == 1
        && !request.header("connection").is_some_and(|value| {
            value
                .split(',')
                .any(|token| token.trim().eq_ignore_ascii_case("close"))
        });
    Ok(RequestHead {
        request,
        keep_alive,
        body,
    })
}

/// Reads and throws away a request body of `len` bytes.
pub(crate) fn discard_body(reader: &mut impl BufRead, len: u64) -> Result<(), ReadError> {
    let copied = io::copy(&mut reader.take(len), &mut io::sink())?;
    if copied == len {
        Ok(())
    } else {
        Err(ReadError::Disconnected)
    }
}

fn malformed(reason: impl Into<String>) -> ReadError {
    ReadError::Malformed(reason.into())
}

/// One line without its CRLF (or bare LF), `None` on a clean end of stream.
fn read_line(reader: &mut impl BufRead) -> Result<Option<String>, ReadError> {
    let mut line = Vec::new();
    reader.take(MAX_LINE_LEN).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.pop() != Some(b'\n') {
        return if line.len() as u64 + 1 >= MAX_LINE_LEN {
            Err(malformed(format!("line longer than {MAX_LINE_LEN} bytes")))
        } else {
            // The peer hung up in the middle of a line.
            Err(ReadError::Disconnected)
        };
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| malformed("request head is not UTF-8"))
}

fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

/// `METHOD SP request-target SP HTTP/1.x` → (method, target, minor version).
fn parse_request_line(line: &str) -> Result<(&str, &str, u8), ReadError> {
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(format!("bad request line {line:?}")));
    };
    if !is_token(method) {
        return Err(malformed(format!("bad method {method:?}")));
    }
    let minor_version = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        _ => {
            return Err(malformed(format!(
                "unsupported protocol version {version:?}"
            )));
        }
    };
    Ok((method, target, minor_version))
}

/// Splits a request target into (path, query). Absolute-form targets, as sent to a
/// proxy, are reduced to their path and query.
fn split_target(target: &str) -> Result<(String, String), ReadError> {
    let origin_form = if target.starts_with('/') {
        target
    } else if let Some(after_scheme) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        after_scheme
            .find('/')
            .map_or("/", |path_start| &after_scheme[path_start..])
    } else {
        return Err(malformed(format!("unsupported request target {target:?}")));
    };
    if origin_form
        .bytes()
        .any(|byte| byte.is_ascii_control() || byte == b' ')
    {
        return Err(malformed(format!("bad request target {target:?}")));
    }
    let origin_form = origin_form.split('#').next().unwrap_or_default();
    Ok(match origin_form.split_once('?') {
        Some((path, query)) => (path.to_owned(), query.to_owned()),
        None => (origin_form.to_owned(), String::new()),
    })
}

fn parse_header_line(line: &str) -> Result<(String, String), ReadError> {
    if line.starts_with([' ', '\t']) {
        return Err(malformed("obsolete header line folding"));
    }
    let Some((name, value)) = line.split_once(':') else {
        return Err(malformed(format!("header line without a colon: {line:?}")));
    };
    if !is_token(name) {
        return Err(malformed(format!("bad header name {name:?}")));
    }
    Ok((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()))
}

fn body_framing(request: &RecordedRequest) -> Result<RequestBody, ReadError> {
    if request.header("transfer-encoding").is_some() {
        return Ok(RequestBody::Unframed);
    }
    let mut length = None;
    for (_, value) in request
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("content-length"))
    {
        let parsed: u64 = value
            .parse()
            .map_err(|_| malformed(format!("bad Content-Length {value:?}")))?;
        if length.is_some_and(|earlier| earlier != parsed) {
            return Err(malformed("conflicting Content-Length fields"));
        }
        length = Some(parsed);
    }
    Ok(RequestBody::Length(length.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<RequestHead, ReadError> {
        read_request_head(&mut raw.as_bytes())
    }

    #[test]
    fn parses_a_request_with_query_and_headers() {
        let head =
            parse("\r\nGET /data/10?rate=5&x=1 HTTP/1.1\r\nHost: a\r\nRange:  bytes=0-1 \r\n\r\n")
                .expect("valid request");
        assert_eq!(head.request.method, "GET");
        assert_eq!(head.request.path, "/data/10");
        assert_eq!(head.request.query, "rate=5&x=1");
        assert_eq!(head.request.header("RANGE"), Some("bytes=0-1"));
        assert_eq!(head.request.header("accept"), None);
        assert!(head.keep_alive);
        assert_eq!(head.body, RequestBody::Length(0));
    }

    #[test]
    fn connection_close_and_http_1_0_end_keep_alive() {
        let closing =
            parse("GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n").expect("valid");
        assert!(!closing.keep_alive);
        let old = parse("GET / HTTP/1.0\n\n").expect("valid");
        assert!(!old.keep_alive);
    }

    #[test]
    fn absolute_form_targets_are_reduced_to_the_path() {
        let head = parse("GET http://127.0.0.1:9/data/5?q=1 HTTP/1.1\r\n\r\n").expect("valid");
        assert_eq!(
            (head.request.path.as_str(), head.request.query.as_str()),
            ("/data/5", "q=1")
        );
    }

    #[test]
    fn body_framing_is_reported() {
        let sized = parse("POST /x HTTP/1.1\r\nContent-Length: 12\r\n\r\n").expect("valid");
        assert_eq!(sized.body, RequestBody::Length(12));
        let chunked =
            parse("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").expect("valid");
        assert_eq!(chunked.body, RequestBody::Unframed);
    }

    #[test]
    fn malformed_requests_are_rejected() {
        for raw in [
            "GET /\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "GET  / HTTP/1.1\r\n\r\n",
            "GET relative HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: ten\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        ] {
            assert!(
                matches!(parse(raw), Err(ReadError::Malformed(_))),
                "accepted {raw:?}"
            );
        }
        let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(20_000));
        assert!(matches!(parse(&long_line), Err(ReadError::Malformed(_))));
    }

    #[test]
    fn a_truncated_head_is_a_disconnect() {
        assert!(matches!(parse(""), Err(ReadError::Disconnected)));
        assert!(matches!(
            parse("GET / HTTP/1.1\r\nHost: a\r\n"),
            Err(ReadError::Disconnected)
        ));
        assert!(matches!(parse("GET / HT"), Err(ReadError::Disconnected)));
    }
}
