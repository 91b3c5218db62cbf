//! The server side of [MC-BUP]: each `BITS_POST` packet answered with its Ack.
//!
//! [`UploadServer::handle`] takes any `http::Request` whose body is a hyper body, so the
//! server can be mounted in another Rust HTTP stack; [`serve`] runs it on a listener.

use std::convert::Infallible;
use std::fmt::Display;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Body;

use crate::access::{Access, Denied};
use crate::config::{Config, Location, Overwrite, ReplyBackend};
use crate::names::{self, Destination, Published};
use crate::protocol::{self, ContentRange, Packet, Refusal, code};
use crate::reply::{self, Wanted};
use crate::session::{self, Record, Session, Sessions, SharedSession};
use crate::writer;

/// The most a session's record may lag its idle clock, in seconds: rewriting the record
/// for every fragment costs a file's creation and rename each time.
const MAX_IDLE_CLOCK_SLACK_SECONDS: u64 = 60;
/// The most a connection reads at once, and so the largest body frame [`serve`] gives.
const READ_BUFFER_BYTES: usize = 256 * 1024;
/// Expiry looks at the sessions at least this often.
const MAX_EXPIRY_INTERVAL: Duration = Duration::from_secs(60);

/// A BITS upload server: its configuration, the access checks of its locations and its
/// sessions.
#[derive(Debug)]
pub struct UploadServer {
    config: Config,
    access: Vec<Access>,
    sessions: Sessions,
}

type Answer = Response<BoxBody<Bytes, std::io::Error>>;

/// The body of every Ack: none.
fn empty() -> BoxBody<Bytes, std::io::Error> {
    Full::default().map_err(|never| match never {}).boxed()
}

impl UploadServer {
    /// Loads the password files and the sessions a previous run left. A session whose
    /// location is gone, or whose partial file cannot be found, is dropped.
    pub fn new(config: Config) -> Result<Arc<UploadServer>> {
        let access = config
            .locations
            .iter()
            .map(|location| {
                Access::for_location(location)
                    .with_context(|| format!("location {:?}", location.prefix))
            })
            .collect::<Result<Vec<_>>>()?;
        let (sessions, records) = Sessions::open(&config.state_dir)?;
        let server = UploadServer {
            config,
            access,
            sessions,
        };
        for record in records {
            match server.reopen(&record) {
                Ok(session) => {
                    server.sessions.restore(session);
                }
                Err(refusal) => {
                    tracing::warn!("dropping session {}: {}", record.id, refusal.why);
                    server.sessions.remove(&record.id);
                }
            }
        }
        Ok(Arc::new(server))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How many sessions are open.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    fn reopen(&self, record: &Record) -> Result<Session, Refusal> {
        let location = self
            .config
            .locations
            .iter()
            .find(|location| location.prefix == record.prefix)
            .ok_or_else(|| Refusal::bad_request("its location is no longer configured"))?;
        let dir = record.destination.open_dir(&location.directory)?;
        let file = names::open_part(&dir, &record.part)
            .map_err(|error| io_refusal(&error, "its partial file"))?;
        let received = file
            .metadata()
            .map_err(|error| io_refusal(&error, "its partial file"))?
            .len();
        Ok(Session {
            record: record.clone(),
            received,
            file: Some(Arc::new(file)),
            ended: false,
            recorded_active: record.last_active,
        })
    }

    /// Answers one request. `peer` names the client when its location has no
    /// authentication.
    pub async fn handle<B>(self: &Arc<Self>, request: Request<B>, peer: IpAddr) -> Answer
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Display,
    {
        let (parts, body) = request.into_parts();
        let session_id = header_text(&parts.headers, protocol::SESSION_ID).map(str::to_owned);
        let mut body = Some(body);
        let answer = self.answer(&parts, &mut body, peer).await;
        if let Some(unread) = body {
            // A refused fragment's body is read and dropped: a client still sending it
            // would otherwise meet a reset connection instead of the answer.
            drain(unread).await;
        }
        answer.unwrap_or_else(|refusal| {
            tracing::debug!(
                "{} {}: {} ({})",
                parts.method,
                parts.uri.path(),
                refusal.status,
                refusal.why
            );
            refused(&refusal, session_id.as_deref())
        })
    }

    async fn answer<B>(
        self: &Arc<Self>,
        parts: &http::request::Parts,
        body: &mut Option<B>,
        peer: IpAddr,
    ) -> Result<Answer, Refusal>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Display,
    {
        let is_read = parts.method == http::Method::GET || parts.method == http::Method::HEAD;
        if parts.method.as_str() != protocol::METHOD && !is_read {
            return Ok(Response::builder()
                .status(StatusCode::METHOD_NOT_ALLOWED)
                .header(header::ALLOW, "BITS_POST, GET, HEAD")
                .header(header::CONTENT_LENGTH, 0)
                .body(empty())
                .expect("a valid answer"));
        }
        let path = parts.uri.path();
        let (index, location) = self
            .config
            .locations
            .iter()
            .enumerate()
            .filter(|(_, location)| path.starts_with(&location.prefix))
            .max_by_key(|(_, location)| location.prefix.len())
            .ok_or_else(|| {
                Refusal::status_only(StatusCode::NOT_FOUND, "no location takes this path")
            })?;
        let user = match self.authenticate(index, &parts.headers).await {
            Ok(user) => user,
            Err(Denied::Unauthenticated) => return Ok(challenge()),
            Err(Denied::NoUser) => {
                return Err(Refusal::access_denied("the proxy named no usable user"));
            }
        };
        let client = user.clone().unwrap_or_else(|| peer.to_string());
        if is_read {
            let rest = &path[location.prefix.len()..];
            return self
                .serve_reply(
                    &parts.headers,
                    parts.method == http::Method::HEAD,
                    rest,
                    &client,
                )
                .await;
        }
        if parts
            .headers
            .values()
            .any(|value| value.len() > protocol::MAX_HEADER_VALUE_BYTES)
        {
            return Err(Refusal::bad_request("a header value is longer than 4 KB"));
        }
        let packet = header_text(&parts.headers, protocol::PACKET_TYPE)
            .and_then(Packet::parse)
            .ok_or_else(|| Refusal::bad_request("no known BITS-Packet-Type"))?;
        let length = header_text(&parts.headers, header::CONTENT_LENGTH.as_str())
            .and_then(|text| text.trim().parse::<u64>().ok())
            .ok_or_else(|| Refusal::bad_request("no Content-Length"))?;
        if packet != Packet::Fragment && length != 0 {
            return Err(Refusal::bad_request(format!(
                "a {packet} packet carries no body"
            )));
        }
        let session_id = header_text(&parts.headers, protocol::SESSION_ID);
        match packet {
            Packet::Ping => Ok(ack(StatusCode::OK, session_id)
                .body(empty())
                .expect("valid")),
            Packet::CreateSession => {
                let rest = &path[location.prefix.len()..];
                let per_user = location
                    .per_user_directories
                    .then_some(user.as_deref())
                    .flatten();
                self.create_session(location, &parts.headers, rest, per_user, client, path)
                    .await
            }
            Packet::Fragment => {
                let session = self.session(session_id, &client)?;
                self.fragment(location, &parts.headers, length, session, body, path)
                    .await
            }
            Packet::CloseSession => {
                let session = self.session(session_id, &client)?;
                self.close_session(location, session).await
            }
            Packet::CancelSession => {
                let session = self.session(session_id, &client)?;
                self.cancel_session(location, session).await
            }
        }
    }

    async fn authenticate(
        self: &Arc<Self>,
        index: usize,
        headers: &HeaderMap,
    ) -> Result<Option<String>, Denied> {
        if self.access[index].is_anonymous() {
            return Ok(None);
        }
        // A password check takes milliseconds of CPU on purpose: not on the async threads.
        let server = self.clone();
        let headers = headers.clone();
        tokio::task::spawn_blocking(move || server.access[index].check(&headers))
            .await
            .unwrap_or(Err(Denied::Unauthenticated))
    }

    fn session(&self, id: Option<&str>, client: &str) -> Result<SharedSession, Refusal> {
        let id = id.ok_or_else(|| Refusal::bad_request("no BITS-Session-Id"))?;
        self.sessions
            .get(id, client)
            .ok_or_else(|| Refusal::session_not_found(id))
    }

    async fn create_session(
        self: &Arc<Self>,
        location: &Location,
        headers: &HeaderMap,
        rest: &str,
        user: Option<&str>,
        client: String,
        path: &str,
    ) -> Result<Answer, Refusal> {
        let offered = header_text(headers, protocol::SUPPORTED_PROTOCOLS)
            .ok_or_else(|| Refusal::bad_request("no BITS-Supported-Protocols"))?;
        match protocol::offers_protocol(offered) {
            Some(true) => {}
            Some(false) => return Err(Refusal::bad_request("no protocol in common")),
            None => return Err(Refusal::bad_request("more than 100 protocols offered")),
        }
        let destination = Destination::parse(rest, user)?;
        if self.sessions.len() >= self.config.max_sessions
            || self.sessions.count_for(&client) >= self.config.max_sessions_per_client
        {
            return Err(Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code::TOO_MANY_SESSIONS,
                format!("the session limit is reached (client {client})"),
            ));
        }
        let id = session::new_session_id().map_err(|error| {
            Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::E_FAIL,
                format!("{error:#}"),
            )
        })?;
        let part = names::part_name(&id);
        let record = Record {
            id: id.clone(),
            client,
            prefix: location.prefix.clone(),
            destination,
            part,
            total: None,
            last_active: session::now_seconds(),
            reply_ready: false,
            static_reply_url: None,
        };
        let root = location.directory.clone();
        let overwrite = location.overwrite;
        let server = self.clone();
        let record_for_files = record.clone();
        blocking(move || {
            let record = record_for_files;
            let dir = record.destination.open_dir(&root)?;
            if overwrite == Overwrite::Refuse && record.destination.exists_in(&dir)? {
                return Err(file_exists(&record.destination.name));
            }
            let file = names::create_part(&dir, &record.part)?;
            let inserted = server.sessions.insert(Session {
                record: record.clone(),
                received: 0,
                file: Some(Arc::new(file)),
                ended: false,
                recorded_active: record.last_active,
            });
            if let Err(error) = inserted {
                let _ = names::remove_part(&dir, &record.part);
                return Err(io_refusal(&error, "cannot record the session"));
            }
            Ok(())
        })
        .await?;
        tracing::info!("session {id} for {path} ({})", record.client);
        let mut answer = ack(StatusCode::OK, Some(&id))
            .header(protocol::PROTOCOL, protocol::PROTOCOL_GUID)
            .header(header::ACCEPT_ENCODING, "identity");
        if let Some(host) = &self.config.host_id {
            answer = answer.header(protocol::HOST_ID, host.as_str());
            if let Some(timeout) = self.config.host_id_fallback_timeout {
                answer = answer.header(protocol::HOST_ID_FALLBACK_TIMEOUT, timeout);
            }
        }
        Ok(answer.body(empty()).expect("valid"))
    }

    async fn fragment<B>(
        self: &Arc<Self>,
        location: &Location,
        headers: &HeaderMap,
        length: u64,
        shared: SharedSession,
        body: &mut Option<B>,
        path: &str,
    ) -> Result<Answer, Refusal>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Display,
    {
        let range = header_text(headers, header::CONTENT_RANGE.as_str())
            .and_then(ContentRange::parse)
            .ok_or_else(|| Refusal::bad_request("no valid Content-Range"))?;
        if length != range.length() {
            return Err(Refusal::bad_request(format!(
                "Content-Length {length} does not match Content-Range {}-{}",
                range.first, range.last
            )));
        }
        if location
            .max_upload_size
            .is_some_and(|largest| range.total > largest)
        {
            return Err(Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::BG_E_TOO_LARGE,
                format!("{} bytes is more than this location takes", range.total),
            ));
        }
        if length > self.config.max_fragment_size {
            return Err(Refusal::status_only(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a fragment of {length} bytes"),
            ));
        }
        let mut session = shared.lock().await;
        if session.ended {
            return Err(Refusal::session_not_found(&session.record.id));
        }
        let id = session.record.id.clone();
        match session.record.total {
            Some(total) if total != range.total => {
                return Err(Refusal::bad_request(format!(
                    "the file's size changed from {total} to {}",
                    range.total
                )));
            }
            Some(_) => {}
            None => {
                session.record.total = Some(range.total);
                let record = session.record.clone();
                let server = self.clone();
                blocking(move || {
                    server
                        .sessions
                        .save(&record, true)
                        .map_err(|error| io_refusal(&error, "cannot record the session"))
                })
                .await?;
            }
        }
        session.record.last_active = session::now_seconds();
        if range.first > session.received {
            // A gap: the client must go back to what the server holds.
            let received = session.received;
            return Ok(ack(StatusCode::RANGE_NOT_SATISFIABLE, Some(&id))
                .header(protocol::ERROR_CODE, protocol::hex(code::NONE))
                .header(
                    protocol::ERROR_CONTEXT,
                    protocol::hex(protocol::context::REMOTE_FILE),
                )
                .header(protocol::RECEIVED_CONTENT_RANGE, received)
                .body(empty())
                .expect("valid"));
        }
        if !session.complete() {
            let body = body
                .take()
                .ok_or_else(|| Refusal::bad_request("the fragment's body was already read"))?;
            let written = receive(&mut session, range, body).await;
            self.record_idle_clock(&mut session).await;
            written?;
        }
        let mut answer = ack(StatusCode::OK, Some(&id))
            .header(protocol::RECEIVED_CONTENT_RANGE, session.received);
        if session.complete()
            && let Some(backend) = location.reply_backend()
        {
            if !session.record.reply_ready {
                self.make_reply(location, backend, &mut session, path)
                    .await?;
            }
            let url = session.record.static_reply_url.clone().unwrap_or_else(|| {
                format!(
                    "{}{}/{}",
                    location.prefix,
                    reply::REPLY_COMPONENT,
                    session.record.hex()
                )
            });
            answer = answer.header(protocol::REPLY_URL, url);
        }
        Ok(answer.body(empty()).expect("valid"))
    }

    /// Rewrites a session's record when the idle clock it holds has fallen behind by more
    /// than [`UploadServer::idle_clock_slack`]; without a sync, as the clock is worth
    /// keeping across a restart but not worth a sync per fragment.
    async fn record_idle_clock(self: &Arc<Self>, session: &mut Session) {
        let behind = session
            .record
            .last_active
            .saturating_sub(session.recorded_active);
        if behind <= self.idle_clock_slack() {
            return;
        }
        let record = session.record.clone();
        let server = self.clone();
        let saved = blocking(move || {
            server
                .sessions
                .save(&record, false)
                .map_err(|error| io_refusal(&error, "cannot record the session"))
        })
        .await;
        if saved.is_ok() {
            session.recorded_active = session.record.last_active;
        }
    }

    /// How far (seconds) the idle clock in a session's record may lag the session's: a
    /// restart may then expire a session that much early, a tenth of the timeout at most.
    fn idle_clock_slack(&self) -> u64 {
        (self.config.session_timeout.as_secs() / 10).min(MAX_IDLE_CLOCK_SLACK_SECONDS)
    }

    /// Runs the location's reply command on a complete upload and records that the reply
    /// exists.
    async fn make_reply(
        self: &Arc<Self>,
        location: &Location,
        backend: ReplyBackend<'_>,
        session: &mut Session,
        path: &str,
    ) -> Result<(), Refusal> {
        let mut request_file = location.directory.clone();
        request_file.extend(&session.record.destination.dirs);
        request_file.push(&session.record.part);
        let reply_file = reply::reply_path(&self.config.state_dir, &session.record.hex());
        let timeout = self.config.reply_timeout;
        session.record.static_reply_url = match backend {
            ReplyBackend::Command(command) => {
                reply::make(command, &request_file, &reply_file, path, timeout).await?;
                None
            }
            ReplyBackend::Url(url, notification) => {
                reply::notify(url, notification, &request_file, &reply_file, path, timeout).await?
            }
        };
        session.record.reply_ready = true;
        let record = session.record.clone();
        let server = self.clone();
        blocking(move || {
            server
                .sessions
                .save(&record, true)
                .map_err(|error| io_refusal(&error, "cannot record the session"))
        })
        .await?;
        tracing::info!("session {} has its reply", session.record.id);
        Ok(())
    }

    /// GET/HEAD of a reply (`<prefix>.bits-reply/<session>`), with one byte range at most,
    /// to the session's own client while the session is open.
    async fn serve_reply(
        &self,
        headers: &HeaderMap,
        head_only: bool,
        rest: &str,
        client: &str,
    ) -> Result<Answer, Refusal> {
        let not_found =
            || Refusal::status_only(StatusCode::NOT_FOUND, format!("no reply at {rest:?}"));
        let hex = rest
            .strip_prefix(reply::REPLY_COMPONENT)
            .and_then(|tail| tail.strip_prefix('/'))
            .filter(|hex| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(not_found)?;
        let shared = self
            .sessions
            .find_by_hex(hex, client)
            .ok_or_else(not_found)?;
        let session = shared.lock().await;
        if session.ended || !session.record.reply_ready {
            return Err(not_found());
        }
        let file = std::fs::File::open(reply::reply_path(&self.config.state_dir, hex))
            .map_err(|error| io_refusal(&error, "the reply"))?;
        let size = file
            .metadata()
            .map_err(|error| io_refusal(&error, "the reply"))?
            .len();
        // The reply of a session never changes: its id names its version.
        let etag = format!("\"{hex}-{size}\"");
        let range = header_text(headers, header::RANGE.as_str()).filter(|_| {
            header_text(headers, header::IF_RANGE.as_str()).is_none_or(|tag| tag == etag)
        });
        let builder = Response::builder()
            .header(header::ETAG, &etag)
            .header(header::ACCEPT_RANGES, "bytes");
        let (builder, first, length) = match reply::wanted(range, size) {
            Wanted::Whole => (builder.status(StatusCode::OK), 0, size),
            Wanted::Part { first, last } => (
                builder.status(StatusCode::PARTIAL_CONTENT).header(
                    header::CONTENT_RANGE,
                    format!("bytes {first}-{last}/{size}"),
                ),
                first,
                last - first + 1,
            ),
            Wanted::Unsatisfiable => {
                return Ok(builder
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                    .header(header::CONTENT_LENGTH, 0)
                    .body(empty())
                    .expect("valid"));
            }
        };
        let body = if head_only {
            empty()
        } else {
            reply::FileBody::new(file, first, length).boxed()
        };
        Ok(builder
            .header(header::CONTENT_LENGTH, length)
            .body(body)
            .expect("valid"))
    }

    async fn close_session(
        self: &Arc<Self>,
        location: &Location,
        shared: SharedSession,
    ) -> Result<Answer, Refusal> {
        let mut session = ending(&shared).await?;
        let record = session.record.clone();
        // A session closed without any fragment is an empty file: a Content-Range cannot
        // name zero bytes, so Create-Session then Close-Session is how one is uploaded.
        let complete = session.complete() || session.record.total.is_none();
        let file = session.file.take();
        let root = location.directory.clone();
        let overwrite = location.overwrite;
        let server = self.clone();
        let outcome = blocking(move || {
            let dir = record.destination.open_dir(&root);
            let outcome = match (&dir, file) {
                (Ok(dir), Some(file)) if complete => {
                    match names::publish(
                        dir,
                        &record.part,
                        &file,
                        &record.destination.name,
                        overwrite,
                    ) {
                        Ok(Published::As(name)) => {
                            tracing::info!("session {} published {name:?}", record.id);
                            Ok(())
                        }
                        Ok(Published::Exists) => Err(file_exists(&record.destination.name)),
                        Err(error) => Err(io_refusal(&error, "cannot publish the upload")),
                    }
                }
                (Ok(_), _) => Ok(()),
                (Err(refusal), _) => Err(refusal.clone()),
            };
            if let Ok(dir) = &dir {
                // What was not published goes: a partial upload is never kept.
                let _ = names::remove_part(dir, &record.part);
            }
            server.forget(&record);
            outcome
        })
        .await;
        outcome?;
        Ok(ack(StatusCode::OK, Some(&session.record.id))
            .body(empty())
            .expect("valid"))
    }

    async fn cancel_session(
        self: &Arc<Self>,
        location: &Location,
        shared: SharedSession,
    ) -> Result<Answer, Refusal> {
        let mut session = ending(&shared).await?;
        session.file = None;
        let record = session.record.clone();
        let root = location.directory.clone();
        let server = self.clone();
        blocking(move || {
            server.discard(&root, &record);
            Ok(())
        })
        .await?;
        Ok(ack(StatusCode::OK, Some(&session.record.id))
            .body(empty())
            .expect("valid"))
    }

    /// Deletes a session's partial file, reply and record.
    fn discard(&self, root: &std::path::Path, record: &Record) {
        if let Ok(dir) = record.destination.open_dir(root) {
            let _ = names::remove_part(&dir, &record.part);
        }
        self.forget(record);
    }

    /// Deletes a session's reply and record.
    fn forget(&self, record: &Record) {
        let _ = std::fs::remove_file(reply::reply_path(&self.config.state_dir, &record.hex()));
        self.sessions.remove(&record.id);
    }

    /// Drops the sessions idle for longer than the session timeout, with their partial
    /// files; returns how many went. A session busy with a request is not idle.
    pub fn expire_idle_sessions(&self, now: u64) -> usize {
        let timeout = self.config.session_timeout.as_secs();
        let mut expired = 0;
        for shared in self.sessions.all() {
            let Ok(mut session) = shared.try_lock() else {
                continue;
            };
            if session.ended || now.saturating_sub(session.record.last_active) <= timeout {
                continue;
            }
            session.ended = true;
            session.file = None;
            if let Some(location) = self
                .config
                .locations
                .iter()
                .find(|location| location.prefix == session.record.prefix)
            {
                self.discard(&location.directory, &session.record);
            } else {
                self.forget(&session.record);
            }
            tracing::info!("session {} expired", session.record.id);
            expired += 1;
        }
        expired
    }
}

/// The most of an unread body that is read to be dropped; past it the connection closes.
const MAX_DRAIN_BYTES: u64 = 64 * 1024 * 1024;

/// Reads a body to its end (at most [`MAX_DRAIN_BYTES`]) and drops it.
async fn drain<B>(mut body: B)
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Display,
{
    let mut drained = 0u64;
    while drained <= MAX_DRAIN_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => {
                drained += frame.data_ref().map_or(0, |data| data.len() as u64);
            }
            Some(Err(_)) | None => return,
        }
    }
}

/// Writes the fragment's bytes past what the session holds, frame by frame as they come
/// (see [`crate::writer`]); bytes it already holds are skipped (an overlap is trimmed,
/// never written twice). What was written before a failure or a broken-off body is kept:
/// the client resends from the offset the next Ack gives.
async fn receive<B>(session: &mut Session, range: ContentRange, mut body: B) -> Result<(), Refusal>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Display,
{
    let file = session
        .file
        .clone()
        .ok_or_else(|| Refusal::session_not_found(&session.record.id))?;
    let end = range.last + 1;
    let mut position = range.first;
    loop {
        let mut data = match body.frame().await {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
            Some(Err(error)) => {
                return Err(Refusal::bad_request(format!(
                    "the fragment broke off: {error}"
                )));
            }
            None => return Ok(()),
        };
        // Bytes before what the server holds, and any beyond the range, are dropped.
        let held = session.received;
        if position < held {
            let skip =
                usize::try_from((held - position).min(data.len() as u64)).unwrap_or(data.len());
            let _ = data.split_to(skip);
            position += skip as u64;
        }
        let room = usize::try_from(end.saturating_sub(position)).unwrap_or(usize::MAX);
        data.truncate(room);
        if data.is_empty() {
            continue;
        }
        if let Err(error) = writer::write_at_end(&file, &data, held) {
            // The client is still sending: it hears the error rather than a reset.
            drain(body).await;
            return Err(io_refusal(&error, "cannot write the upload"));
        }
        position += data.len() as u64;
        session.received = position;
    }
}

/// A session for its Close- or Cancel-Session: after this packet it takes none.
async fn ending(shared: &SharedSession) -> Result<tokio::sync::MutexGuard<'_, Session>, Refusal> {
    let mut session = shared.lock().await;
    if session.ended {
        return Err(Refusal::session_not_found(&session.record.id));
    }
    session.ended = true;
    Ok(session)
}

/// Runs file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Refusal> + Send + 'static,
) -> Result<T, Refusal> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|error| {
            Err(Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::E_FAIL,
                format!("file work failed: {error}"),
            ))
        })
}

fn io_refusal(error: &std::io::Error, what: &str) -> Refusal {
    let errno = error
        .raw_os_error()
        .map_or(rustix::io::Errno::IO, rustix::io::Errno::from_raw_os_error);
    names::io_refusal(errno, what)
}

fn file_exists(name: &str) -> Refusal {
    Refusal::new(
        StatusCode::CONFLICT,
        code::FILE_EXISTS,
        format!("{name:?} exists and this location does not replace files"),
    )
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The start of every Ack: its type, no body, the session echoed as the client sent it.
fn ack(status: StatusCode, session: Option<&str>) -> http::response::Builder {
    let mut builder = Response::builder()
        .status(status)
        .header(protocol::PACKET_TYPE, "Ack")
        .header(header::CONTENT_LENGTH, 0);
    if let Some(id) = session.filter(|id| http::HeaderValue::from_str(id).is_ok()) {
        builder = builder.header(protocol::SESSION_ID, id);
    }
    builder
}

fn refused(refusal: &Refusal, session: Option<&str>) -> Answer {
    let mut builder = ack(refusal.status, session);
    if let Some(code) = refusal.code {
        builder = builder
            .header(protocol::ERROR_CODE, protocol::hex(code))
            .header(protocol::ERROR_CONTEXT, protocol::hex(refusal.context));
    }
    builder.body(empty()).expect("valid")
}

fn challenge() -> Answer {
    Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header(header::WWW_AUTHENTICATE, "Basic realm=\"BITS uploads\"")
        .header(protocol::PACKET_TYPE, "Ack")
        .header(header::CONTENT_LENGTH, 0)
        .body(empty())
        .expect("valid")
}

/// Serves `server` on `listener` until `shutdown` completes, expiring idle sessions
/// meanwhile.
pub async fn serve(
    server: Arc<UploadServer>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let expiry = {
        let server = server.clone();
        let every = (server.config.session_timeout / 2).min(MAX_EXPIRY_INTERVAL);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                server.expire_idle_sessions(session::now_seconds());
            }
        })
    };
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!("accept: {error}");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let server = server.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(server.handle(request, client_address(peer)).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .max_buf_size(READ_BUFFER_BYTES)
                .title_case_headers(true)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!("connection from {peer}: {error}");
            }
        });
    }
    expiry.abort();
    Ok(())
}

fn client_address(peer: SocketAddr) -> IpAddr {
    match peer.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}
