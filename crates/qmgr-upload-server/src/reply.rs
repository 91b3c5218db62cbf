//! Upload-reply: when the last byte of an upload arrives in a location with a
//! `reply_command`, the command makes the reply from the uploaded file; the client then
//! downloads the reply (GET with ranges) from the URL the last Fragment's Ack names, before
//! it closes the session ([MC-BUP] §1.3.3).

use std::fs::File;
use std::future::Future as _;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use hyper::body::{Body, Frame, SizeHint};

use crate::protocol::{Refusal, context};

/// The URL path component, under a location's prefix, of the replies it serves. It starts
/// with the reserved prefix, so no upload can take the name.
pub const REPLY_COMPONENT: &str = ".bits-reply";
/// How long the reply command may take: a client waits 5 minutes for the last Ack.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(300);
/// The PATH the reply command gets (its environment is otherwise empty but for the
/// `BITS_*` variables).
const COMMAND_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// HRESULT_FROM_WIN32(ERROR_TIMEOUT): the server application did not answer in time.
const TIMEOUT_CODE: u32 = 0x8007_05B4;
/// How much of a reply one read hands to the connection.
const CHUNK_BYTES: usize = 256 * 1024;

/// Where a session's reply is kept: the server's state directory, never the uploads'.
pub fn reply_path(state_dir: &Path, session_hex: &str) -> PathBuf {
    state_dir.join("replies").join(session_hex)
}

/// Runs the reply command for an upload: `command… REQUEST_FILE REPLY_FILE`, with
/// `BITS_ORIGINAL_REQUEST_URL`, `BITS_REQUEST_DATAFILE_NAME` and
/// `BITS_RESPONSE_DATAFILE_NAME` in its environment (the names of the IIS notification
/// headers). A failure or a timeout is the server application's error (context 7); the
/// client sends the last fragment again later and the command runs again.
pub async fn make(
    command: &[String],
    request_file: &Path,
    reply_file: &Path,
    original_url: &str,
    timeout: Duration,
) -> Result<(), Refusal> {
    let (program, arguments) = command
        .split_first()
        .ok_or_else(|| Refusal::bad_request("no reply command"))?;
    // An empty reply file exists even when the command writes nothing: the client then
    // gets an empty reply, as BITS does for an application that sends none.
    File::create(reply_file).map_err(|error| {
        application_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            crate::protocol::code::E_FAIL,
            format!("cannot create {}: {error}", reply_file.display()),
        )
    })?;
    let mut child = tokio::process::Command::new(program)
        .args(arguments)
        .arg(request_file)
        .arg(reply_file)
        .env_clear()
        .env("PATH", COMMAND_PATH)
        .env("BITS_ORIGINAL_REQUEST_URL", original_url)
        .env("BITS_REQUEST_DATAFILE_NAME", request_file)
        .env("BITS_RESPONSE_DATAFILE_NAME", reply_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| {
            application_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                crate::protocol::code::E_FAIL,
                format!("cannot run {program}: {error}"),
            )
        })?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(application_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            crate::protocol::code::E_FAIL,
            format!("{program} failed: {status}"),
        )),
        Ok(Err(error)) => Err(application_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            crate::protocol::code::E_FAIL,
            format!("{program}: {error}"),
        )),
        Err(_) => {
            let _ = child.kill().await;
            Err(application_error(
                StatusCode::REQUEST_TIMEOUT,
                TIMEOUT_CODE,
                format!("{program} took longer than {timeout:?}"),
            ))
        }
    }
}

/// Tells an HTTP back-end (IIS's notification protocol) of an upload and takes its reply:
/// `POST url` with `BITS-Original-Request-URL`; by reference, the uploaded file's and the
/// reply file's paths in `BITS-Request-DataFile-Name` / `BITS-Response-DataFile-Name` and no
/// body (the back-end writes the reply file); by value, the file as the body and the
/// response's body as the reply. A `BITS-Static-Response-URL` in the answer is the reply's
/// URL instead (returned). A status other than 200 is the server application's error
/// (context 7), as is a back-end that cannot be reached or takes longer than `timeout`.
pub async fn notify(
    url: &str,
    notification: crate::config::Notification,
    request_file: &Path,
    reply_file: &Path,
    original_url: &str,
    timeout: Duration,
) -> Result<Option<String>, Refusal> {
    match tokio::time::timeout(
        timeout,
        notify_now(url, notification, request_file, reply_file, original_url),
    )
    .await
    {
        Ok(answer) => answer,
        Err(_) => Err(application_error(
            StatusCode::REQUEST_TIMEOUT,
            TIMEOUT_CODE,
            format!("{url} took longer than {timeout:?}"),
        )),
    }
}

async fn notify_now(
    url: &str,
    notification: crate::config::Notification,
    request_file: &Path,
    reply_file: &Path,
    original_url: &str,
) -> Result<Option<String>, Refusal> {
    use crate::config::Notification;
    use http_body_util::BodyExt as _;

    let unreachable = |why: String| {
        application_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            crate::protocol::code::E_FAIL,
            format!("{url}: {why}"),
        )
    };
    let (authority, path) =
        split_http_url(url).ok_or_else(|| unreachable("not an http URL".into()))?;
    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .map_err(|error| unreachable(error.to_string()))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|error| unreachable(error.to_string()))?;
    tokio::spawn(connection);
    let builder = http::Request::post(path)
        .header(http::header::HOST, authority.as_str())
        .header("BITS-Original-Request-URL", original_url);
    let request = match notification {
        Notification::Reference => {
            File::create(reply_file).map_err(|error| unreachable(error.to_string()))?;
            builder
                .header(
                    "BITS-Request-DataFile-Name",
                    request_file.display().to_string(),
                )
                .header(
                    "BITS-Response-DataFile-Name",
                    reply_file.display().to_string(),
                )
                .header(http::header::CONTENT_LENGTH, 0)
                .body(
                    http_body_util::Empty::<Bytes>::new()
                        .map_err(|never| match never {})
                        .boxed(),
                )
        }
        Notification::Value => {
            let file = File::open(request_file).map_err(|error| unreachable(error.to_string()))?;
            let length = file
                .metadata()
                .map_err(|error| unreachable(error.to_string()))?
                .len();
            builder
                .header(http::header::CONTENT_LENGTH, length)
                .body(FileBody::new(file, 0, length).boxed())
        }
    }
    .map_err(|error| unreachable(error.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| unreachable(error.to_string()))?;
    let status = response.status();
    if status != StatusCode::OK {
        return Err(application_error(
            status,
            crate::protocol::code::E_FAIL,
            format!("{url} answered {status}"),
        ));
    }
    if let Some(static_url) = response
        .headers()
        .get("BITS-Static-Response-URL")
        .and_then(|value| value.to_str().ok())
    {
        return Ok(Some(static_url.to_owned()));
    }
    if notification == Notification::Value {
        let mut out = File::create(reply_file).map_err(|error| unreachable(error.to_string()))?;
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|error| unreachable(error.to_string()))?;
            if let Some(data) = frame.data_ref() {
                std::io::Write::write_all(&mut out, data)
                    .map_err(|error| unreachable(error.to_string()))?;
            }
        }
    }
    Ok(None)
}

/// `http://host:port/path?query` → (`host:port`, `/path?query`).
fn split_http_url(url: &str) -> Option<(String, String)> {
    let rest = url
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("http://"))
        .map(|_| &url[7..])?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() {
        return None;
    }
    let authority = if authority.contains(':') || authority.starts_with('[') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let path = if path.is_empty() {
        "/".to_owned()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    Some((authority, path))
}

fn application_error(status: StatusCode, code: u32, why: String) -> Refusal {
    Refusal {
        status,
        code: Some(code),
        context: context::REMOTE_APPLICATION,
        why,
    }
}

/// What a GET's `Range` asks of a reply of `size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    Whole,
    /// Bytes `first..=last`.
    Part {
        first: u64,
        last: u64,
    },
    Unsatisfiable,
}

/// One `bytes=` range (`a-b`, `a-`, `-n`); several ranges or another unit are answered
/// whole, as HTTP allows.
pub fn wanted(range: Option<&str>, size: u64) -> Wanted {
    let Some(spec) = range.and_then(|value| value.trim().strip_prefix("bytes=")) else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let number = |text: &str| text.trim().parse::<u64>().ok();
    let (first, last) = match (first.trim().is_empty(), number(first), number(last)) {
        (true, _, Some(suffix)) if suffix > 0 => {
            (size.saturating_sub(suffix), size.saturating_sub(1))
        }
        (false, Some(first), _) if last.trim().is_empty() => (first, size.saturating_sub(1)),
        (false, Some(first), Some(last)) => (first, last.min(size.saturating_sub(1))),
        _ => return Wanted::Whole,
    };
    if size == 0 || first >= size || first > last {
        Wanted::Unsatisfiable
    } else {
        Wanted::Part { first, last }
    }
}

/// A response body that reads a file's bytes `offset..offset+remaining` a chunk at a time
/// off the async threads: a reply of any size costs one chunk of memory.
#[derive(Debug)]
pub struct FileBody {
    file: Arc<File>,
    offset: u64,
    remaining: u64,
    reading: Option<tokio::task::JoinHandle<io::Result<Bytes>>>,
}

impl FileBody {
    pub fn new(file: File, offset: u64, length: u64) -> FileBody {
        FileBody {
            file: Arc::new(file),
            offset,
            remaining: length,
            reading: None,
        }
    }
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        if self.reading.is_none() {
            let file = self.file.clone();
            let offset = self.offset;
            let want =
                usize::try_from(self.remaining.min(CHUNK_BYTES as u64)).unwrap_or(CHUNK_BYTES);
            self.reading = Some(tokio::task::spawn_blocking(move || {
                let mut buffer = vec![0u8; want];
                let read = file.read_at(&mut buffer, offset)?;
                if read == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the reply file is shorter than it was",
                    ));
                }
                buffer.truncate(read);
                Ok(Bytes::from(buffer))
            }));
        }
        let reading = self.reading.as_mut().expect("a read under way");
        let result = match Pin::new(reading).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result,
        };
        self.reading = None;
        let chunk = match result {
            Ok(Ok(chunk)) => chunk,
            Ok(Err(error)) => return Poll::Ready(Some(Err(error))),
            Err(error) => return Poll::Ready(Some(Err(io::Error::other(error)))),
        };
        self.offset += chunk.len() as u64;
        self.remaining -= chunk.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_http_says() {
        assert_eq!(wanted(None, 100), Wanted::Whole);
        assert_eq!(
            wanted(Some("bytes=0-9"), 100),
            Wanted::Part { first: 0, last: 9 }
        );
        assert_eq!(
            wanted(Some("bytes=90-"), 100),
            Wanted::Part {
                first: 90,
                last: 99
            }
        );
        assert_eq!(
            wanted(Some("bytes=-10"), 100),
            Wanted::Part {
                first: 90,
                last: 99
            }
        );
        assert_eq!(
            wanted(Some("bytes=50-500"), 100),
            Wanted::Part {
                first: 50,
                last: 99
            }
        );
        assert_eq!(wanted(Some("bytes=100-"), 100), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=0-1,5-6"), 100), Wanted::Whole);
        assert_eq!(wanted(Some("items=0-1"), 100), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=0-"), 0), Wanted::Unsatisfiable);
    }
}
