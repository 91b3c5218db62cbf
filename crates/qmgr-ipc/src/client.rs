//! The client: [`QueueService`] over qmgrd's socket.
//!
//! Calls share one connection behind a mutex (a call is a write and a read of a few
//! microseconds); each subscription has a connection and a reader thread of its own, so
//! notifications never arrive on a thread that is waiting for an answer. A connection
//! that broke is replaced on the next call (starting qmgrd again if the client was made by
//! [`Client::connect_or_spawn`]); the call that saw it break fails.

use std::io::{self, BufReader};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use qmgr_core::hresult;
use qmgr_core::paths::StatePaths;
use qmgr_core::service::{Notification, PROTOCOL_VERSION, QueueService, Request, Response};
use qmgr_core::{ErrorContext, QmgrError, Result};

use crate::frame::{
    FrameError, MAX_ANSWER_FRAME_LEN, MAX_HANDSHAKE_FRAME_LEN, MAX_NOTIFICATION_FRAME_LEN, decode,
    encoded_len, read_frame, read_payload, write_frame,
};
use crate::message::{
    ADD_FILES_PART_BYTES, ClientMessage, Purpose, ServiceMessage, handshake_version, request_name,
    split_files, version_mismatch,
};
use qmgr_core::trust::{check_private_dir_of, describe_uid};

use crate::runtime_dir::{check_socket_path_len, effective_uid};
use crate::socket::{NoSignalWriter, peer_credentials, wait_eagerly};
use crate::spawn::{Launcher, spawn_and_connect};

/// How long the client waits for the service's answer to its Hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a call waits for its answer before the client gives up on the connection. A
/// wedged qmgrd must not hang a C caller forever, and every legitimate call is far
/// shorter: listings and a job's files are paged, and the service answers from memory and
/// one SQLite transaction (the longest, an AddFiles of max_files_per_job files, takes
/// seconds). Generous, so a machine under heavy
/// load (swapping, a slow disk syncing the store) is not mistaken for a dead service.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A connection to qmgrd, usable from many threads.
#[derive(Debug)]
pub struct Client {
    endpoint: Endpoint,
    name: String,
    calls: Mutex<Option<Connection>>,
    next_call_id: AtomicU64,
    /// [`CALL_TIMEOUT`] unless a test shortens it.
    call_timeout: Duration,
    service_uid: u32,
    service_version: String,
    /// The uid the service said it serves this client as (its `SO_PEERCRED` view of us).
    caller_uid: u32,
}

/// Where the client's connections go, and whether it may start the service.
#[derive(Debug)]
enum Endpoint {
    /// A socket served by `owner`.
    Socket { socket: PathBuf, owner: u32 },
    Spawning {
        paths: StatePaths,
        launcher: Launcher,
    },
}

impl Endpoint {
    fn socket(&self) -> PathBuf {
        match self {
            Self::Socket { socket, .. } => socket.clone(),
            Self::Spawning { paths, .. } => paths.socket_path(),
        }
    }
}

impl Client {
    /// Connects to the qmgrd of `paths`; fails with `QM_E_SERVICE_UNAVAILABLE` (naming the
    /// socket) when none is running. Never starts one.
    pub fn connect(paths: &StatePaths) -> Result<Client> {
        Self::connect_socket(&paths.socket_path())
    }

    /// Connects to our own qmgrd listening on `socket`.
    pub fn connect_socket(socket: &Path) -> Result<Client> {
        Self::connect_socket_of(socket, effective_uid())
    }

    /// Connects to the qmgrd of user `owner` listening on `socket` (root uses this to
    /// reach each user's service). Nothing is sent unless the socket, the directory
    /// holding it and the process answering all belong to `owner`.
    pub fn connect_socket_of(socket: &Path, owner: u32) -> Result<Client> {
        Self::with_endpoint(Endpoint::Socket {
            socket: socket.to_owned(),
            owner,
        })
    }

    /// Connects to the qmgrd of `paths`, starting it first if none is running (see
    /// [`crate::spawn`]). The executable is looked up with the process environment.
    pub fn connect_or_spawn(paths: &StatePaths) -> Result<Client> {
        Self::connect_or_spawn_with(paths, Launcher::from_process())
    }

    /// [`Client::connect_or_spawn`] with an explicit launcher (extra environment for the
    /// daemon, the library's directory to search).
    pub fn connect_or_spawn_with(paths: &StatePaths, launcher: Launcher) -> Result<Client> {
        Self::with_endpoint(Endpoint::Spawning {
            paths: paths.clone(),
            launcher,
        })
    }

    fn with_endpoint(endpoint: Endpoint) -> Result<Client> {
        let name = default_client_name();
        let connection = open(&endpoint, Purpose::Calls, &name)?;
        Ok(Client {
            service_uid: connection.service_uid,
            service_version: connection.service_version.clone(),
            caller_uid: connection.caller_uid,
            endpoint,
            name,
            calls: Mutex::new(Some(connection)),
            next_call_id: AtomicU64::new(1),
            call_timeout: CALL_TIMEOUT,
        })
    }

    /// Waits at most `timeout` for each call's answer instead of [`CALL_TIMEOUT`] (tests
    /// use a short one).
    #[must_use]
    pub fn with_call_timeout(mut self, timeout: Duration) -> Client {
        self.call_timeout = timeout;
        self
    }

    /// The socket this client talks to.
    pub fn socket_path(&self) -> PathBuf {
        self.endpoint.socket()
    }

    /// The uid of the process that answered when the client connected (`SO_PEERCRED`).
    pub fn service_uid(&self) -> u32 {
        self.service_uid
    }

    /// The version qmgrd reported when the client connected.
    pub fn service_version(&self) -> &str {
        &self.service_version
    }

    /// Asks the service to answer; returns its version.
    pub fn ping(&self) -> Result<String> {
        match self.execute(Request::Ping)? {
            Response::Pong { service_version } => Ok(service_version),
            other => Err(QmgrError::internal(format!(
                "qmgrd answered Ping with {other:?}"
            ))),
        }
    }
}

impl QueueService for Client {
    fn execute(&self, request: Request) -> Result<Response> {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let connection = match &mut *calls {
            Some(connection) => connection,
            empty => empty.insert(open(&self.endpoint, Purpose::Calls, &self.name)?),
        };
        let id = self.next_call_id.fetch_add(1, Ordering::Relaxed);
        let name = request_name(&request);
        match connection.call(id, request, self.call_timeout) {
            Ok(result) => result,
            Err(broken) => {
                *calls = None;
                Err(broken.into_error(name, &self.endpoint.socket()))
            }
        }
    }

    fn caller_uid(&self) -> Option<u32> {
        Some(self.caller_uid)
    }

    /// The stream is bounded as the service's subscriber queues are: a receiver that does
    /// not keep up (a C callback that blocks) holds at most one Modification per job, while
    /// Transferred, Error and FileTransferred are never dropped.
    fn subscribe(&self) -> Result<Receiver<Notification>> {
        let connection = open(&self.endpoint, Purpose::Notifications, &self.name)?;
        let Connection { mut reader, .. } = connection;
        // A dropped receiver ends the connection when the next notification finds it gone
        // (a std Receiver cannot tell anyone it was dropped); until then the connection and
        // its two threads stay.
        let hang_up = reader.get_ref().try_clone().map_err(|error| {
            QmgrError::internal(format!("cannot share the notification socket: {error}"))
        })?;
        let (receiver, feeder) = bounded_stream(move || {
            let _ = hang_up.shutdown(std::net::Shutdown::Both);
        })
        .map_err(|error| {
            QmgrError::internal(format!("cannot make the notification queue: {error}"))
        })?;
        let frames = std::iter::from_fn(move || {
            match read_frame::<ServiceMessage>(&mut reader, MAX_NOTIFICATION_FRAME_LEN) {
                Ok(ServiceMessage::Notify(notification)) => Some(notification),
                _ => None,
            }
        });
        thread::Builder::new()
            .name("qmgr-notifications".into())
            .spawn(move || feeder.run(frames))
            .map_err(|error| {
                QmgrError::internal(format!("cannot start the notification thread: {error}"))
            })?;
        Ok(receiver)
    }
}

/// How many notifications wait in the channel itself, beyond the coalescing queue: enough
/// that a receiver taking a burst does not wake the handoff thread once per notification,
/// few enough that a receiver that stops reading holds little.
const CHANNEL_SLOTS: usize = 256;

/// A receiver of notifications, and what feeds it from a source of them (on the
/// connection's reader thread). Between the two sit a coalescing queue (see
/// [`crate::subscription`]) and a thread that hands its notifications to the receiver one
/// at a time, blocking while the receiver does not take them. `receiver_gone` runs when
/// the handoff finds the receiver dropped.
fn bounded_stream(
    receiver_gone: impl FnOnce() + Send + 'static,
) -> io::Result<(Receiver<Notification>, Feeder)> {
    let (publisher, queue) = crate::subscription::subscription()?;
    let (sender, receiver) = mpsc::sync_channel(CHANNEL_SLOTS);
    let handoff = thread::Builder::new()
        .name("qmgr-notify-handoff".into())
        .spawn(move || {
            if !hand_over(&queue, &sender) {
                receiver_gone();
            }
        })?;
    drop(handoff);
    Ok((receiver, Feeder { publisher }))
}

/// The feeding end of [`bounded_stream`].
struct Feeder {
    publisher: crate::subscription::Publisher,
}

impl Feeder {
    /// Queues every notification of `source` until it ends or the receiver is gone
    /// (noticed at the next notification). The handoff thread goes on until it has
    /// handed over what waits (or the receiver is dropped), then ends.
    fn run(self, source: impl Iterator<Item = Notification>) {
        for notification in source {
            if !self.publisher.push(notification) {
                break;
            }
        }
    }
}

/// Hands the queue's notifications to the receiver in order until the queue ends (`true`)
/// or the receiver is gone (`false`; the queue is closed, so the feeding stops).
fn hand_over(queue: &crate::subscription::Subscription, sender: &SyncSender<Notification>) -> bool {
    while let Ok(notification) = queue.recv() {
        if sender.send(notification).is_err() {
            queue.close();
            return false;
        }
    }
    true
}

fn default_client_name() -> String {
    let program = std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "unknown program".into());
    format!("{program} (pid {})", std::process::id())
}

/// One handshaken connection; writes go to the stream under the reader.
#[derive(Debug)]
pub(crate) struct Connection {
    reader: BufReader<UnixStream>,
    service_uid: u32,
    service_version: String,
    caller_uid: u32,
    /// The read and write timeout set on the socket (none after the handshake).
    timeout: Option<Duration>,
}

/// Why a call could not complete; the connection is unusable afterwards.
enum Broken {
    Frame(FrameError),
    Protocol(String),
    /// No answer came within the call timeout.
    NoAnswer(Duration),
}

impl Broken {
    fn into_error(self, request: &str, socket: &Path) -> QmgrError {
        let why = match self {
            Self::Frame(FrameError::Closed) => "qmgrd closed the connection".to_owned(),
            Self::Frame(error) => error.to_string(),
            Self::Protocol(what) => what,
            Self::NoAnswer(timeout) => format!(
                "qmgrd did not answer within {} s; the connection was dropped and the next \
                 call reconnects",
                timeout.as_secs_f64()
            ),
        };
        QmgrError::new(
            hresult::QM_E_SERVICE_UNAVAILABLE,
            ErrorContext::GeneralQueueManager,
            format!(
                "the connection to qmgrd at {} failed during {request}: {why}",
                socket.display()
            ),
        )
    }
}

impl Connection {
    /// Sends one call and waits at most `timeout` for the answer to begin (and as long
    /// again for each later part of it, as the socket's read timeout does). The socket's
    /// timeouts are set when they change, not on every call.
    fn call(
        &mut self,
        id: u64,
        request: Request,
        timeout: Duration,
    ) -> Result<Result<Response>, Broken> {
        if self.timeout != Some(timeout) {
            let stream = self.reader.get_ref();
            stream
                .set_read_timeout(Some(timeout))
                .and_then(|()| stream.set_write_timeout(Some(timeout)))
                .map_err(|error| Broken::Frame(error.into()))?;
            self.timeout = Some(timeout);
        }
        let timed_out = |error: FrameError| match error {
            FrameError::Io(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Broken::NoAnswer(timeout)
            }
            other => Broken::Frame(other),
        };
        // A list of files too long for one frame goes ahead in parts; the call carries the
        // last of them.
        let request = match request {
            Request::AddFiles { job, files } if encoded_len(&files) > ADD_FILES_PART_BYTES => {
                let mut parts = split_files(files, ADD_FILES_PART_BYTES);
                let last = parts.pop().unwrap_or_default();
                for files in parts {
                    write_frame(
                        &mut NoSignalWriter(self.reader.get_ref()),
                        &ClientMessage::AddFilesPart { job, files },
                    )
                    .map_err(timed_out)?;
                }
                Request::AddFiles { job, files: last }
            }
            other => other,
        };
        write_frame(
            &mut NoSignalWriter(self.reader.get_ref()),
            &ClientMessage::Call { id, request },
        )
        .map_err(timed_out)?;
        if self.reader.buffer().is_empty() {
            let _ = wait_eagerly(self.reader.get_ref());
        }
        match read_frame::<ServiceMessage>(&mut self.reader, MAX_ANSWER_FRAME_LEN)
            .map_err(timed_out)?
        {
            ServiceMessage::Answer {
                id: answered,
                result,
            } if answered == id => Ok(result),
            ServiceMessage::Answer { id: answered, .. } => Err(Broken::Protocol(format!(
                "qmgrd answered call {answered} while call {id} was waiting"
            ))),
            other => Err(Broken::Protocol(format!(
                "qmgrd sent {} instead of an answer",
                message_kind(&other)
            ))),
        }
    }
}

fn message_kind(message: &ServiceMessage) -> &'static str {
    match message {
        ServiceMessage::Welcome { .. } => "a Welcome",
        ServiceMessage::Refused(_) => "a refusal",
        ServiceMessage::Answer { .. } => "an answer",
        ServiceMessage::Notify(_) => "a notification",
    }
}

/// Opens a connection for `purpose`, starting qmgrd first if the endpoint allows it.
fn open(endpoint: &Endpoint, purpose: Purpose, client_name: &str) -> Result<Connection> {
    match endpoint {
        Endpoint::Socket { socket, owner } => {
            handshake(socket, *owner, purpose, client_name).map_err(ConnectError::into_error)
        }
        Endpoint::Spawning { paths, launcher } => spawn_and_connect(paths, launcher, || {
            handshake(&paths.socket_path(), effective_uid(), purpose, client_name)
        }),
    }
}

/// Why connecting failed: nobody listens (starting qmgrd may help), or a service
/// answered and refused (it would not).
#[derive(Debug)]
pub(crate) enum ConnectError {
    NotRunning(QmgrError),
    Failed(QmgrError),
}

impl ConnectError {
    pub(crate) fn into_error(self) -> QmgrError {
        match self {
            Self::NotRunning(error) | Self::Failed(error) => error,
        }
    }
}

fn unavailable(socket: &Path, why: impl std::fmt::Display) -> QmgrError {
    QmgrError::new(
        hresult::QM_E_SERVICE_UNAVAILABLE,
        ErrorContext::GeneralQueueManager,
        format!("cannot talk to qmgrd at {}: {why}", socket.display()),
    )
}

/// Before anything is sent: the directory holding `socket` must be `owner`'s, reached
/// through directories only root and `owner` control, not writable by others; the socket
/// must be a socket of `owner`'s. A missing directory or socket means no qmgrd runs.
fn check_socket_owner(socket: &Path, owner: u32) -> Result<(), ConnectError> {
    let refused = |why: String| {
        ConnectError::Failed(unavailable(
            socket,
            format!("refusing to talk to it: {why}"),
        ))
    };
    let Some(dir) = socket.parent() else {
        return Err(refused("it has no directory".into()));
    };
    match std::fs::symlink_metadata(dir) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(ConnectError::NotRunning(unavailable(
                socket,
                "qmgrd is not running",
            )));
        }
        _ => check_private_dir_of(dir, owner, "runtime directory")
            .map_err(|error| refused(error.description))?,
    }
    let metadata = match std::fs::symlink_metadata(socket) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(ConnectError::NotRunning(unavailable(
                socket,
                "qmgrd is not running",
            )));
        }
        Err(error) => return Err(refused(format!("cannot inspect it: {error}"))),
    };
    if !metadata.file_type().is_socket() {
        return Err(refused("it is not a socket".into()));
    }
    if metadata.uid() != owner {
        return Err(refused(format!(
            "it belongs to {}, not to uid {owner}",
            describe_uid(metadata.uid())
        )));
    }
    Ok(())
}

/// Connects to `socket`, served by `owner`, and performs the handshake.
fn handshake(
    socket: &Path,
    owner: u32,
    purpose: Purpose,
    client_name: &str,
) -> Result<Connection, ConnectError> {
    check_socket_path_len(socket).map_err(ConnectError::Failed)?;
    check_socket_owner(socket, owner)?;
    let stream = UnixStream::connect(socket).map_err(|error| match error.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
            ConnectError::NotRunning(unavailable(socket, "qmgrd is not running"))
        }
        io::ErrorKind::PermissionDenied => ConnectError::Failed(QmgrError::new(
            hresult::E_ACCESSDENIED,
            ErrorContext::GeneralQueueManager,
            format!("cannot connect to qmgrd at {}: {error}", socket.display()),
        )),
        _ => ConnectError::Failed(unavailable(socket, error)),
    })?;
    let failed = |why: String| ConnectError::Failed(unavailable(socket, why));
    let mut reader = BufReader::new(stream);
    let stream = reader.get_ref();
    let service_uid = peer_credentials(stream)
        .map_err(|error| failed(format!("cannot read its credentials: {error}")))?
        .uid;
    if service_uid != owner {
        return Err(failed(format!(
            "refusing to talk to it: the process listening there runs as {}, not as uid \
             {owner} whose qmgrd it \
             should be; nothing was sent to it",
            describe_uid(service_uid)
        )));
    }
    stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(|error| failed(error.to_string()))?;
    let hello = ClientMessage::Hello {
        protocol_version: PROTOCOL_VERSION,
        purpose,
        client_name: client_name.to_owned(),
    };
    // A service that refuses may close before reading the Hello; its answer is still
    // readable, so a failed write is judged by what comes back.
    let written = write_frame(&mut NoSignalWriter(stream), &hello);
    let payload = match read_payload(&mut reader, MAX_HANDSHAKE_FRAME_LEN) {
        Ok(payload) => payload,
        Err(error) => {
            // A qmgrd killed or stopping as the connection came in drops it unanswered:
            // that one is gone, and starting another may help.
            let vanished = match &error {
                FrameError::Closed => true,
                FrameError::Io(error) => error.kind() == io::ErrorKind::ConnectionReset,
                _ => false,
            };
            let why = match (written, error) {
                (Err(write_error), _) => format!("sending the handshake failed: {write_error}"),
                (Ok(()), FrameError::Closed) => {
                    "it closed the connection during the handshake".into()
                }
                (Ok(()), error) => format!("reading its handshake failed: {error}"),
            };
            if vanished {
                return Err(ConnectError::NotRunning(unavailable(socket, why)));
            }
            return Err(failed(why));
        }
    };
    let (service_version, caller_uid) = match decode::<ServiceMessage>(&payload) {
        Ok(ServiceMessage::Welcome {
            protocol_version,
            service_version,
            peer_uid,
        }) if protocol_version == PROTOCOL_VERSION => (service_version, peer_uid),
        Ok(ServiceMessage::Refused(error)) => return Err(ConnectError::Failed(error)),
        _ => {
            return Err(ConnectError::Failed(match handshake_version(&payload) {
                Some(version) if version != PROTOCOL_VERSION => {
                    version_mismatch(PROTOCOL_VERSION, version)
                }
                _ => unavailable(socket, "its handshake is not a qmgrd Welcome"),
            }));
        }
    };
    reader
        .get_ref()
        .set_read_timeout(None)
        .map_err(|error| failed(error.to_string()))?;
    Ok(Connection {
        reader,
        service_uid,
        service_version,
        caller_uid,
        timeout: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmgr_core::service::NotificationKind;
    use qmgr_core::{Guid, JobState};

    fn notification(job: Guid, kind: NotificationKind) -> Notification {
        Notification {
            job,
            kind,
            state: JobState::Transferring,
        }
    }

    #[test]
    fn a_service_that_drops_the_connection_unanswered_counts_as_not_running() {
        // A qmgrd killed as a client connects leaves the connection in its backlog, then
        // closes it: the spawning client must start another rather than give up.
        let root = tempfile::tempdir().unwrap();
        let socket = root.path().join("dying.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let dying = std::thread::spawn(move || drop(listener.accept().unwrap()));
        let error = handshake(&socket, effective_uid(), Purpose::Calls, "test").unwrap_err();
        dying.join().unwrap();
        match error {
            ConnectError::NotRunning(error) => {
                assert_eq!(error.hresult, hresult::QM_E_SERVICE_UNAVAILABLE);
                assert!(error.description.contains("dying.sock"), "{error}");
            }
            ConnectError::Failed(error) => panic!("counted as refused: {error}"),
        }
    }

    #[test]
    fn a_receiver_that_does_not_read_holds_one_modification_per_job_and_every_event() {
        let (receiver, feeder) = bounded_stream(|| {}).unwrap();
        let (busy, quiet) = (Guid::new_random(), Guid::new_random());
        let mut source = Vec::new();
        for file in 0..3 {
            for _ in 0..1000 {
                source.push(notification(busy, NotificationKind::Modification));
            }
            source.push(notification(
                busy,
                NotificationKind::FileTransferred { file },
            ));
        }
        source.push(notification(quiet, NotificationKind::Modification));
        source.push(notification(busy, NotificationKind::Transferred));
        // Everything is queued before the receiver reads anything.
        feeder.run(source.into_iter());
        let received: Vec<Notification> = receiver.iter().collect();
        let busy_modifications = received
            .iter()
            .filter(|n| n.job == busy && n.kind == NotificationKind::Modification)
            .count();
        // At most those filling the channel, the one being handed over, and one per file
        // transferred after them.
        assert!(
            busy_modifications <= CHANNEL_SLOTS + 4,
            "{busy_modifications} of 3000 kept"
        );
        let events: Vec<NotificationKind> = received
            .iter()
            .filter(|n| n.kind != NotificationKind::Modification)
            .map(|n| n.kind.clone())
            .collect();
        assert_eq!(
            events,
            [
                NotificationKind::FileTransferred { file: 0 },
                NotificationKind::FileTransferred { file: 1 },
                NotificationKind::FileTransferred { file: 2 },
                NotificationKind::Transferred,
            ]
        );
        assert!(
            received
                .iter()
                .any(|n| n.job == quiet && n.kind == NotificationKind::Modification),
            "the other job's Modification is kept"
        );
    }
}
