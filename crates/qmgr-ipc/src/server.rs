//! The service side of the socket: binding the listener, the accept loop (a thread per
//! connection), and serving one connection: handshake, peer check, then calls or a
//! notification stream.
//!
//! What a peer sends can end its own connection and nothing else: every frame is bounded
//! and decoded defensively, and a handler that panics answers that call with an error.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufReader, Write};
use std::net::Shutdown;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use qmgr_core::config::MAX_FILES_PER_JOB_CEILING;
use qmgr_core::hresult;
use qmgr_core::paths::StatePaths;
use qmgr_core::service::{NewFile, PROTOCOL_VERSION, Request, Response};
use qmgr_core::{ErrorContext, Guid, QmgrError, Result};

use crate::frame::{
    FrameError, MAX_HANDSHAKE_FRAME_LEN, MAX_REQUEST_FRAME_LEN, decode, encode_frame, encoded_len,
    read_frame, read_payload, write_frame,
};
use crate::message::{
    ClientMessage, Purpose, ServiceMessage, handshake_version, request_name, version_mismatch,
};
use qmgr_core::trust::{check_trusted_path, prepare_private_dir};

use crate::administrator::{self, administrator_may};
use crate::runtime_dir::{check_socket_path_len, effective_uid, io_error};
use crate::socket::{
    NoSignalWriter, Silence, check_silence, peer_credentials, wait_eagerly, wait_readable,
};
use crate::subscription::{RecvError, Subscription};

/// The shortest time between two writes of notifications to one subscriber.
const NOTIFICATION_GAP: Duration = Duration::from_millis(20);
/// The most notification bytes gathered into one write.
const NOTIFICATIONS_PER_WRITE_BYTES: usize = 64 * 1024;
/// How long a new connection may take to send its Hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Once a request's first byte has arrived, how long the service waits for each further
/// part of it before it drops the connection: a client that announces a frame and stalls
/// does not hold a connection's thread forever. Between requests a calls connection may
/// stay idle as long as the client likes (libqmgr keeps one open for the process's life).
pub const FRAME_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest client name kept for the log.
const MAX_CLIENT_NAME_CHARS: usize = 256;

/// The version the service reports in its Welcome.
pub const SERVICE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The socket's mode: only its owner may connect.
const SOCKET_MODE: u32 = 0o600;

/// A connected client as the service sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// From `SO_PEERCRED`: the uid the requests are made as.
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
    /// What the client called itself in its Hello (empty before it).
    pub client_name: String,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} (uid {}", self.pid, self.uid)?;
        if !self.client_name.is_empty() {
            write!(f, ", {:?}", self.client_name)?;
        }
        f.write_str(")")
    }
}

/// What the service does with the connections it accepts.
pub trait ConnectionHandler: Send + Sync {
    /// Carries out one request on behalf of `peer`.
    fn execute(&self, peer: &Peer, request: Request) -> Result<Response>;

    /// Starts a stream of `peer`'s notifications; the stream ends when the publisher is
    /// dropped or the client goes away (the subscription is then dropped, which the
    /// publisher sees at its next push).
    fn subscribe(&self, peer: &Peer) -> Result<Subscription>;

    /// Hears why a connection ended abnormally (refused, malformed, broken), for the log.
    fn connection_failed(&self, _error: &ConnectionError) {}

    /// The most files one AddFiles may carry (max_files_per_job): parts of a longer one
    /// are dropped as they arrive and the call is refused.
    fn max_files_per_job(&self) -> u32 {
        MAX_FILES_PER_JOB_CEILING
    }
}

/// Why a connection ended other than by the client closing it.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("cannot read the credentials of a new connection: {0}")]
    Credentials(io::Error),
    #[error("refused {peer}: {reason}")]
    Refused { peer: Peer, reason: QmgrError },
    #[error("connection from {peer}: {source}")]
    Frame { peer: Peer, source: FrameError },
    #[error("connection from {peer}: {what}")]
    Protocol { peer: Peer, what: String },
}

/// Serves one connection until the client closes it or breaks the protocol: reads the
/// Hello, checks the peer's uid (ours or root) and the protocol version, then answers
/// calls or streams notifications. The caller closes the stream afterwards.
pub fn serve_connection(
    stream: &UnixStream,
    handler: &dyn ConnectionHandler,
) -> Result<(), ConnectionError> {
    serve_connection_with(stream, handler, FRAME_STALL_TIMEOUT)
}

/// [`serve_connection`] with another [`FRAME_STALL_TIMEOUT`] (tests use a short one).
pub fn serve_connection_with(
    stream: &UnixStream,
    handler: &dyn ConnectionHandler,
    frame_stall_timeout: Duration,
) -> Result<(), ConnectionError> {
    let credentials = peer_credentials(stream).map_err(ConnectionError::Credentials)?;
    let mut peer = Peer {
        uid: credentials.uid,
        gid: credentials.gid,
        pid: credentials.pid,
        client_name: String::new(),
    };
    let mut reader = BufReader::new(stream);
    let purpose = handshake(stream, &mut reader, &mut peer)?;
    match purpose {
        Purpose::Calls => {
            send(stream, &peer, &welcome(&peer))?;
            stream
                .set_read_timeout(Some(frame_stall_timeout))
                .map_err(|error| ConnectionError::Frame {
                    peer: peer.clone(),
                    source: error.into(),
                })?;
            serve_calls(stream, &mut reader, handler, &peer)
        }
        Purpose::Notifications => match handler.subscribe(&peer) {
            Ok(notifications) => {
                send(stream, &peer, &welcome(&peer))?;
                stream_notifications(stream, &notifications, &peer)
            }
            Err(reason) => Err(refuse(stream, peer, reason)),
        },
    }
}

fn handshake(
    stream: &UnixStream,
    reader: &mut BufReader<&UnixStream>,
    peer: &mut Peer,
) -> Result<Purpose, ConnectionError> {
    let frame_error = |peer: &Peer, source| ConnectionError::Frame {
        peer: peer.clone(),
        source,
    };
    stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(|error| frame_error(peer, error.into()))?;
    let payload = read_payload(reader, MAX_HANDSHAKE_FRAME_LEN)
        .map_err(|source| frame_error(peer, source))?;
    let service_uid = effective_uid();
    if peer.uid != service_uid && peer.uid != 0 {
        let reason = QmgrError::new(
            hresult::E_ACCESSDENIED,
            ErrorContext::GeneralQueueManager,
            format!(
                "this qmgrd serves uid {service_uid}; uid {} may not use it",
                peer.uid
            ),
        );
        return Err(refuse(stream, peer.clone(), reason));
    }
    match handshake_version(&payload) {
        None => {
            return Err(ConnectionError::Protocol {
                peer: peer.clone(),
                what: "the first frame is not a Hello".into(),
            });
        }
        Some(version) if version != PROTOCOL_VERSION => {
            return Err(refuse(
                stream,
                peer.clone(),
                version_mismatch(version, PROTOCOL_VERSION),
            ));
        }
        Some(_) => {}
    }
    let message = decode::<ClientMessage>(&payload).map_err(|source| frame_error(peer, source))?;
    let ClientMessage::Hello {
        purpose,
        client_name,
        ..
    } = message
    else {
        return Err(ConnectionError::Protocol {
            peer: peer.clone(),
            what: "the first frame is not a Hello".into(),
        });
    };
    peer.client_name = client_name.chars().take(MAX_CLIENT_NAME_CHARS).collect();
    stream
        .set_read_timeout(None)
        .map_err(|error| frame_error(peer, error.into()))?;
    Ok(purpose)
}

fn welcome(peer: &Peer) -> ServiceMessage {
    ServiceMessage::Welcome {
        protocol_version: PROTOCOL_VERSION,
        service_version: SERVICE_VERSION.to_owned(),
        peer_uid: peer.uid,
    }
}

/// Tells the peer why it is refused (best effort: it may be gone) and ends the connection.
fn refuse(stream: &UnixStream, peer: Peer, reason: QmgrError) -> ConnectionError {
    let _ = write_frame(
        &mut NoSignalWriter(stream),
        &ServiceMessage::Refused(reason.clone()),
    );
    ConnectionError::Refused { peer, reason }
}

fn send(stream: &UnixStream, peer: &Peer, message: &ServiceMessage) -> Result<(), ConnectionError> {
    write_frame(&mut NoSignalWriter(stream), message).map_err(|source| ConnectionError::Frame {
        peer: peer.clone(),
        source,
    })
}

fn serve_calls(
    stream: &UnixStream,
    reader: &mut BufReader<&UnixStream>,
    handler: &dyn ConnectionHandler,
    peer: &Peer,
) -> Result<(), ConnectionError> {
    let mut staged = Staged::default();
    // Root in another user's qmgrd is the administrator, with the rights
    // `crate::administrator` gives it; in its own it is the owner.
    let service_uid = effective_uid();
    let as_administrator = peer.uid == 0 && service_uid != 0;
    loop {
        // Between requests the wait is unbounded; the socket's read timeout bounds only
        // a request that has begun.
        if reader.buffer().is_empty() && !wait_eagerly(stream) {
            wait_readable(stream);
        }
        let message = match read_frame::<ClientMessage>(reader, MAX_REQUEST_FRAME_LEN) {
            Ok(message) => message,
            Err(FrameError::Closed) => return Ok(()),
            Err(FrameError::Io(error))
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ConnectionError::Protocol {
                    peer: peer.clone(),
                    what: "stalled inside a request; dropped the connection".into(),
                });
            }
            Err(source) => {
                return Err(ConnectionError::Frame {
                    peer: peer.clone(),
                    source,
                });
            }
        };
        let (id, request) = match message {
            ClientMessage::Call { id, request } => (id, request),
            ClientMessage::AddFilesPart { job, files } => {
                staged.take_part(job, files, handler.max_files_per_job());
                continue;
            }
            ClientMessage::Hello { .. } => {
                return Err(ConnectionError::Protocol {
                    peer: peer.clone(),
                    what: "a second Hello".into(),
                });
            }
        };
        let result = match staged.complete(request) {
            Ok(request) if as_administrator && !administrator_may(&request) => {
                Err(administrator::refusal(&request, service_uid))
            }
            Ok(request) => execute_guarded(handler, peer, request),
            Err(Unstaged::Refused(error)) => Err(error),
            Err(Unstaged::Misplaced(name)) => {
                return Err(ConnectionError::Protocol {
                    peer: peer.clone(),
                    what: format!("sent {name} after parts of an AddFiles"),
                });
            }
        };
        let frame = match encode_frame(&ServiceMessage::Answer { id, result }) {
            Err(FrameError::TooLarge { len, limit }) => encode_frame(&ServiceMessage::Answer {
                id,
                result: Err(QmgrError::internal(format!(
                    "the answer is {len} bytes long, more than the {limit}-byte frame limit"
                ))),
            }),
            other => other,
        }
        .map_err(|source| ConnectionError::Frame {
            peer: peer.clone(),
            source,
        })?;
        io::Write::write_all(&mut NoSignalWriter(stream), &frame).map_err(|error| {
            ConnectionError::Frame {
                peer: peer.clone(),
                source: error.into(),
            }
        })?;
    }
}

/// The most bytes of AddFiles parts a connection may hold at once (as encoded): with the
/// file count bounded by max_files_per_job, a peer cannot make the service hold more than
/// this for one request.
pub const MAX_STAGED_BYTES: usize = 1024 * 1024 * 1024;

/// AddFiles parts received on a calls connection, waiting for the call that ends them.
#[derive(Default)]
struct Staged {
    job: Option<Guid>,
    files: Vec<NewFile>,
    bytes: usize,
    /// Why the parts cannot be added; the call that ends them gets this answer.
    refused: Option<QmgrError>,
}

/// Why a call could not take the staged parts.
enum Unstaged {
    /// The AddFiles is answered with this error, and nothing is added.
    Refused(QmgrError),
    /// Parts followed by another call: the protocol is broken.
    Misplaced(&'static str),
}

impl Staged {
    /// Holds one part, or notes why the whole request is refused (and lets go of what it
    /// held: the remaining parts are read and dropped).
    fn take_part(&mut self, job: Guid, files: Vec<NewFile>, max_files: u32) {
        if self.refused.is_some() {
            return;
        }
        let bytes = self.bytes.saturating_add(encoded_len(&files));
        let count = self.files.len().saturating_add(files.len());
        let refusal = if self.job.is_some_and(|staged| staged != job) {
            Some(QmgrError::invalid_arg(
                "the parts of one AddFiles named two different jobs",
            ))
        } else if count > usize::try_from(max_files).unwrap_or(usize::MAX) {
            Some(
                QmgrError::from_code(hresult::BG_E_TOO_MANY_FILES_IN_JOB).context(format_args!(
                    "AddFiles of more than {max_files} files (max_files_per_job)"
                )),
            )
        } else if bytes > MAX_STAGED_BYTES {
            Some(QmgrError::invalid_arg(format!(
                "AddFiles of more than {MAX_STAGED_BYTES} bytes of names"
            )))
        } else {
            None
        };
        if let Some(error) = refusal {
            *self = Staged {
                refused: Some(error),
                ..Staged::default()
            };
        } else {
            self.job = Some(job);
            self.files.extend(files);
            self.bytes = bytes;
        }
    }

    /// The request with the staged files in front of its own (the staging emptied).
    fn complete(&mut self, request: Request) -> std::result::Result<Request, Unstaged> {
        let staged = std::mem::take(self);
        if staged.job.is_none() && staged.refused.is_none() {
            return Ok(request);
        }
        match request {
            Request::AddFiles { job, files } => {
                if let Some(error) = staged.refused {
                    return Err(Unstaged::Refused(error));
                }
                if staged.job != Some(job) {
                    return Err(Unstaged::Refused(QmgrError::invalid_arg(
                        "the parts of one AddFiles named two different jobs",
                    )));
                }
                let mut all = staged.files;
                all.extend(files);
                Ok(Request::AddFiles { job, files: all })
            }
            other => Err(Unstaged::Misplaced(request_name(&other))),
        }
    }
}

/// Runs the handler; a panic becomes an error answer instead of a silently dropped call.
fn execute_guarded(
    handler: &dyn ConnectionHandler,
    peer: &Peer,
    request: Request,
) -> Result<Response> {
    let name = request_name(&request);
    catch_unwind(AssertUnwindSafe(|| handler.execute(peer, request))).unwrap_or_else(|_| {
        Err(QmgrError::new(
            hresult::E_UNEXPECTED,
            ErrorContext::GeneralQueueManager,
            format!("qmgrd failed while carrying out {name}; see its log"),
        ))
    })
}

fn stream_notifications(
    stream: &UnixStream,
    notifications: &Subscription,
    peer: &Peer,
) -> Result<(), ConnectionError> {
    let frame_failure = |source| ConnectionError::Frame {
        peer: peer.clone(),
        source,
    };
    let mut waiting = Vec::new();
    let mut last_write: Option<Instant> = None;
    loop {
        // Writes are at least NOTIFICATION_GAP apart: meanwhile a job's Modifications
        // coalesce in the queue (its latest state is what counts), and everything queued
        // goes out in one write, so a burst of files finishing costs the client a few
        // wake-ups, not one per notification. A lone notification goes out at once, and so
        // does news of a job that stopped (the client acts on it at once: a `qmgr
        // transfer` whose last job completed exits).
        if let Some(at) = last_write {
            notifications.wait_for_stopped(NOTIFICATION_GAP.saturating_sub(at.elapsed()));
        }
        let mut closed = false;
        while waiting.len() < NOTIFICATIONS_PER_WRITE_BYTES {
            match notifications.try_recv() {
                Ok(notification) => waiting.extend(
                    encode_frame(&ServiceMessage::Notify(notification)).map_err(frame_failure)?,
                ),
                Err(RecvError::Closed) => {
                    closed = true;
                    break;
                }
                Err(RecvError::Empty) => break,
            }
        }
        if !waiting.is_empty() {
            match NoSignalWriter(stream).write_all(&waiting) {
                Ok(()) => {}
                Err(error) if peer_left(&error) => return Ok(()),
                Err(error) => return Err(frame_failure(FrameError::Io(error))),
            }
            waiting.clear();
            last_write = Some(Instant::now());
            continue;
        }
        last_write = None;
        if closed {
            return Ok(());
        }
        // Sleeps until a notification waits or the client does anything (hangs up, or
        // sends what it must not): no periodic wake-up.
        if wait_for_either(stream, notifications) {
            match check_silence(stream) {
                Silence::Kept => {}
                Silence::PeerLeft => return Ok(()),
                Silence::Broken => {
                    return Err(ConnectionError::Protocol {
                        peer: peer.clone(),
                        what: "sent data on a notifications connection".into(),
                    });
                }
            }
        }
    }
}

/// Blocks until the socket or the subscription's descriptor has something to say; returns
/// whether the socket does.
fn wait_for_either(stream: &UnixStream, notifications: &Subscription) -> bool {
    use rustix::event::{PollFd, PollFlags, poll};
    let ready = notifications.ready_fd();
    let mut fds = [
        PollFd::new(stream, PollFlags::IN | PollFlags::RDHUP),
        PollFd::new(&ready, PollFlags::IN),
    ];
    match poll(&mut fds, None) {
        Ok(_) => !fds[0].revents().is_empty(),
        Err(rustix::io::Errno::INTR) => false,
        // poll itself failed (out of memory): pause rather than spin, then look at the
        // socket, which ends the stream if it is broken.
        Err(_) => {
            thread::sleep(Duration::from_millis(10));
            true
        }
    }
}

fn peer_left(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::NotConnected
    )
}

/// Prepares the runtime directory and binds the service's socket in it: the runtime
/// directory is created 0700 if missing; a runtime or state directory owned by another
/// uid is refused; a stale socket is removed (a live one is not: another qmgrd answers
/// there); the socket is made 0600.
pub fn bind_listener(paths: &StatePaths) -> Result<UnixListener> {
    let socket = paths.socket_path();
    check_socket_path_len(&socket)?;
    check_trusted_path(paths.state_dir(), "state directory")?;
    prepare_private_dir(&paths.runtime_dir(), "runtime directory")?;
    remove_stale_socket(&socket)?;
    let listener = UnixListener::bind(&socket)
        .map_err(|error| io_error(&format!("cannot listen on {}", socket.display()), &error))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(|error| io_error(&format!("cannot make {} private", socket.display()), &error))?;
    Ok(listener)
}

fn remove_stale_socket(socket: &std::path::Path) -> Result<()> {
    let metadata = match std::fs::symlink_metadata(socket) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => {
            return Err(io_error(
                &format!("cannot inspect {}", socket.display()),
                &error,
            ));
        }
    };
    if !metadata.file_type().is_socket() {
        return Err(QmgrError::internal(format!(
            "{} exists and is not a socket; remove it so qmgrd can listen there",
            socket.display()
        )));
    }
    if UnixStream::connect(socket).is_ok() {
        return Err(QmgrError::new(
            hresult::HRESULT_ALREADY_EXISTS,
            ErrorContext::GeneralQueueManager,
            format!("another qmgrd is already listening on {}", socket.display()),
        ));
    }
    std::fs::remove_file(socket).map_err(|error| {
        io_error(
            &format!("cannot remove the stale socket {}", socket.display()),
            &error,
        )
    })
}

/// Starts accepting connections on `listener`, each served on a thread of its own by
/// [`serve_connection`], until [`ServerControl::stop`].
pub fn accept_loop(
    listener: UnixListener,
    handler: Arc<dyn ConnectionHandler>,
) -> Result<AcceptLoop> {
    accept_loop_capped(listener, handler, DEFAULT_MAX_CONNECTIONS)
}

/// The connections a service serves at once unless told otherwise (config
/// `max_connections`).
pub const DEFAULT_MAX_CONNECTIONS: usize = qmgr_core::config::DEFAULT_MAX_CONNECTIONS as usize;

/// [`accept_loop`] serving at most `max_connections` connections at once: a client beyond
/// them is told why (`QM_E_SERVICE_UNAVAILABLE`, naming the limit) and its connection
/// closed, so a flood of clients costs the service one short write each, not a thread.
pub fn accept_loop_capped(
    listener: UnixListener,
    handler: Arc<dyn ConnectionHandler>,
    max_connections: usize,
) -> Result<AcceptLoop> {
    let wake_listener = listener
        .try_clone()
        .map_err(|error| io_error("cannot duplicate the listening socket", &error))?;
    let shared = Arc::new(Shared {
        stopping: AtomicBool::new(false),
        max_connections: max_connections.max(1),
        listener: wake_listener,
        registry: Mutex::new(Registry {
            open: HashMap::new(),
            next_id: 0,
            idle_since: Some(Instant::now()),
        }),
        all_closed: Condvar::new(),
    });
    let control = ServerControl {
        shared: Arc::clone(&shared),
    };
    let thread = thread::Builder::new()
        .name("qmgr-accept".into())
        .spawn(move || accept_connections(&listener, &shared, &handler))
        .map_err(|error| io_error("cannot start the accept thread", &error))?;
    Ok(AcceptLoop {
        control,
        thread: Some(thread),
    })
}

/// The running accept loop. Dropping it stops it.
#[derive(Debug)]
pub struct AcceptLoop {
    control: ServerControl,
    thread: Option<JoinHandle<()>>,
}

impl AcceptLoop {
    /// A handle other threads (a signal handler thread, an idle timer) can stop it with.
    pub fn control(&self) -> ServerControl {
        self.control.clone()
    }

    /// Stops accepting, ends every open connection, and waits until their threads are done.
    pub fn stop(mut self) {
        self.control.stop();
        self.finish();
    }

    /// Waits until some [`ServerControl::stop`] has stopped the loop and every
    /// connection's thread is done.
    pub fn wait(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let shared = &self.control.shared;
        let mut registry = lock(&shared.registry);
        while !registry.open.is_empty() {
            registry = shared
                .all_closed
                .wait(registry)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for AcceptLoop {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.control.stop();
            self.finish();
        }
    }
}

/// Controls a running accept loop from any thread.
#[derive(Clone, Debug)]
pub struct ServerControl {
    shared: Arc<Shared>,
}

impl ServerControl {
    /// Stops accepting and shuts every open connection down; returns at once.
    pub fn stop(&self) {
        let shared = &self.shared;
        shared.stopping.store(true, Ordering::SeqCst);
        // On Linux, shutting down a listening socket wakes the thread blocked in accept().
        let _ = rustix::net::shutdown(&shared.listener, rustix::net::Shutdown::Read);
        for stream in lock(&shared.registry).open.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    pub fn is_stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::SeqCst)
    }

    /// How many connections are open now.
    pub fn open_connections(&self) -> usize {
        lock(&self.shared.registry).open.len()
    }

    /// How long no connection has been open (`None` while one is): for exiting when idle.
    pub fn idle_for(&self) -> Option<Duration> {
        lock(&self.shared.registry)
            .idle_since
            .map(|since| since.elapsed())
    }
}

#[derive(Debug)]
struct Shared {
    stopping: AtomicBool,
    max_connections: usize,
    /// A second handle on the listening socket, to wake the accept thread.
    listener: UnixListener,
    registry: Mutex<Registry>,
    all_closed: Condvar,
}

/// The open connections, so that stopping can shut them down.
#[derive(Debug)]
struct Registry {
    open: HashMap<u64, UnixStream>,
    next_id: u64,
    idle_since: Option<Instant>,
}

fn lock(registry: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

fn accept_connections(
    listener: &UnixListener,
    shared: &Arc<Shared>,
    handler: &Arc<dyn ConnectionHandler>,
) {
    while !shared.stopping.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => start_connection(stream, shared, handler),
            Err(_) if shared.stopping.load(Ordering::SeqCst) => break,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            // Out of descriptors or memory, or a connection aborted before accept: pause
            // briefly rather than spin, and keep serving.
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn start_connection(
    stream: UnixStream,
    shared: &Arc<Shared>,
    handler: &Arc<dyn ConnectionHandler>,
) {
    let id = match register(shared, &stream) {
        Registered::Open(id) => id,
        Registered::Stopping => return,
        Registered::Full => {
            refuse_over_capacity(&stream, shared.max_connections);
            return;
        }
    };
    let registration = Registration {
        shared: Arc::clone(shared),
        id,
    };
    let handler = Arc::clone(handler);
    let spawned = thread::Builder::new()
        .name("qmgr-connection".into())
        .spawn(move || {
            let _registration = registration;
            if let Err(error) = serve_connection(&stream, &*handler) {
                handler.connection_failed(&error);
            }
        });
    // Without a thread the connection (and its registration) is dropped: the client sees
    // it close and may retry.
    drop(spawned);
}

/// What became of an accepted connection.
enum Registered {
    Open(u64),
    /// The loop is stopping (or the stream cannot be duplicated): drop it.
    Stopping,
    /// `max_connections` are open already.
    Full,
}

/// Records an accepted connection.
fn register(shared: &Shared, stream: &UnixStream) -> Registered {
    let Ok(handle) = stream.try_clone() else {
        return Registered::Stopping;
    };
    let mut registry = lock(&shared.registry);
    if shared.stopping.load(Ordering::SeqCst) {
        return Registered::Stopping;
    }
    if registry.open.len() >= shared.max_connections {
        return Registered::Full;
    }
    let id = registry.next_id;
    registry.next_id += 1;
    registry.open.insert(id, handle);
    registry.idle_since = None;
    Registered::Open(id)
}

/// Tells a client beyond the connection limit why it is turned away, without waiting on it:
/// the frame fits the socket's empty buffer, and a client that is gone is simply dropped.
fn refuse_over_capacity(stream: &UnixStream, max_connections: usize) {
    let reason = QmgrError::new(
        hresult::QM_E_SERVICE_UNAVAILABLE,
        ErrorContext::GeneralQueueManager,
        format!(
            "qmgrd serves at most {max_connections} connections at once and all are in use; \
             close idle clients or raise max_connections in config.toml"
        ),
    );
    if stream.set_nonblocking(true).is_ok() {
        let _ = write_frame(
            &mut NoSignalWriter(stream),
            &ServiceMessage::Refused(reason),
        );
    }
}

/// Removes its connection from the registry when the connection's thread ends, even by
/// panic.
struct Registration {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut registry = lock(&self.shared.registry);
        registry.open.remove(&self.id);
        if registry.open.is_empty() {
            registry.idle_since = Some(Instant::now());
            self.shared.all_closed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(count: usize) -> Vec<NewFile> {
        (0..count)
            .map(|i| NewFile {
                remote_name: format!("https://h/{i}"),
                local_name: format!("/d/{i}"),
                ranges: None,
            })
            .collect()
    }

    fn refusal(result: std::result::Result<Request, Unstaged>) -> QmgrError {
        match result {
            Err(Unstaged::Refused(error)) => error,
            Ok(request) => panic!("passed on {}", request_name(&request)),
            Err(Unstaged::Misplaced(name)) => panic!("misplaced {name}"),
        }
    }

    #[test]
    fn parts_go_in_front_of_the_call_that_ends_them() {
        let job = Guid::new_random();
        let mut staged = Staged::default();
        staged.take_part(job, files(3), 10);
        staged.take_part(job, files(2), 10);
        let Ok(Request::AddFiles {
            job: added,
            files: all,
        }) = staged.complete(Request::AddFiles {
            job,
            files: files(1),
        })
        else {
            panic!("the call did not pass");
        };
        assert_eq!(added, job);
        let mut expected = files(3);
        expected.extend(files(2));
        expected.extend(files(1));
        assert_eq!(all, expected);
        // The staging is empty again: the next call passes as it is.
        assert_eq!(staged.complete(Request::Ping).ok(), Some(Request::Ping));
    }

    #[test]
    fn too_many_files_or_two_jobs_refuse_the_whole_request() {
        let job = Guid::new_random();
        let mut staged = Staged::default();
        staged.take_part(job, files(6), 10);
        staged.take_part(job, files(6), 10);
        assert!(staged.files.is_empty(), "what was held is let go");
        let error = refusal(staged.complete(Request::AddFiles {
            job,
            files: files(1),
        }));
        assert_eq!(error.hresult, hresult::BG_E_TOO_MANY_FILES_IN_JOB);

        staged.take_part(job, files(1), 10);
        staged.take_part(Guid::new_random(), files(1), 10);
        let error = refusal(staged.complete(Request::AddFiles {
            job,
            files: files(1),
        }));
        assert_eq!(error.hresult, hresult::E_INVALIDARG);

        staged.take_part(job, files(1), 10);
        let other = Guid::new_random();
        let error = refusal(staged.complete(Request::AddFiles {
            job: other,
            files: files(1),
        }));
        assert_eq!(error.hresult, hresult::E_INVALIDARG);
    }

    #[test]
    fn another_call_after_parts_breaks_the_protocol() {
        let mut staged = Staged::default();
        staged.take_part(Guid::new_random(), files(1), 10);
        assert!(matches!(
            staged.complete(Request::Ping),
            Err(Unstaged::Misplaced("Ping"))
        ));
    }
}
