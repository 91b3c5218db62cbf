//! The engine: one thread that owns a curl multi handle and every transfer in it. Callers
//! talk to it through a command channel (waking it from `curl_multi_poll`) and hear from
//! it on an event channel.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use curl::multi::{Multi, MultiWaker};
use qmgr_core::QmgrError;

use crate::event::EngineEvent;
use crate::idle::StatusBoard;
use crate::priority_limit::PriorityClass;
use crate::request::{CheckedRequest, TransferId, TransferRequest, check};
use crate::upload::{
    ChannelOptions, SendIdle, SendLimit, UploadState, Uploader, cancel_session, close_session,
};
use qmgr_core::idle::IdleView;

/// The longest wait between two tries of a Cancel-Session.
const MAX_CANCEL_SESSION_DELAY: Duration = Duration::from_secs(600);
use crate::worker::Worker;

/// Engine-wide settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub user_agent: String,
    pub connect_timeout: Duration,
    /// A transfer that receives nothing for this long fails with a (transient) timeout.
    pub stall_timeout: Duration,
    /// The shortest time between two `Progress` events of one transfer.
    pub progress_interval: Duration,
    /// Connections open to one host at once; more transfers wait for a free one. 0 means
    /// no limit.
    pub max_connections_per_host: usize,
    /// The bandwidth cap shared by throttled transfers, in bytes per second.
    pub global_limit: Option<u64>,
    /// The queueing delay idle transfers aim for (clamped to 20–100 ms).
    pub idle_target: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            user_agent: concat!("qmgr/", env!("CARGO_PKG_VERSION")).to_owned(),
            connect_timeout: Duration::from_secs(60),
            stall_timeout: Duration::from_secs(120),
            progress_interval: Duration::from_millis(100),
            max_connections_per_host: 16,
            global_limit: None,
            idle_target: crate::idle::DEFAULT_TARGET,
        }
    }
}

/// What callers ask of the engine thread.
pub(crate) enum Command {
    Start(TransferId, Box<CheckedRequest>),
    Pause(TransferId),
    Resume(TransferId),
    Cancel(TransferId),
    SetGlobalLimit(Option<u64>),
    SetTransferLimit(TransferId, Option<u64>),
    /// A lane's new width (see [`crate::Lane`]).
    SetLaneWidth(u64, u32),
    /// The cap shared by the transfers of one background priority (a schedule's).
    SetPriorityLimit(PriorityClass, Option<u64>),
    /// Answered once every command sent before it has been applied.
    Barrier(Sender<()>),
    Shutdown,
}

/// The caller's handle on the engine thread. Dropping it shuts the engine down.
#[derive(Debug)]
pub struct Engine {
    commands: Sender<Command>,
    waker: MultiWaker,
    /// Whether a wake-up is already on its way to the engine thread (see `send`).
    wake_pending: Arc<AtomicBool>,
    next_id: AtomicU64,
    thread: Option<JoinHandle<()>>,
    /// Uploads run on threads of their own (one request at a time per session, rare next
    /// to downloads); their events go to the same channel.
    events: Sender<EngineEvent>,
    uploads: Arc<Mutex<HashMap<TransferId, RunningUpload>>>,
    upload_defaults: ChannelOptions,
    /// The global cap as background uploads read it (bytes per second, 0: none).
    upload_global_limit: Arc<AtomicU64>,
    /// The schedule's cap of each background priority as uploads read it (HIGH, NORMAL,
    /// LOW; 0: none). Each upload is held to it on its own, as to the global cap.
    upload_priority_limits: [Arc<AtomicU64>; 3],
    /// What idle mode is doing for each idle transfer with a connection.
    idle_statuses: IdleStatuses,
    /// The queueing delay idle uploads aim for.
    idle_target: Duration,
}

/// A reader of what idle mode is doing, for each idle transfer with a connection; cheap to
/// clone, readable from any thread.
#[derive(Clone, Debug, Default)]
pub struct IdleStatuses(StatusBoard);

impl IdleStatuses {
    /// The transfer's state as of idle mode's last tick (every 25 ms); `None` for other
    /// transfers and before the transfer has a connection.
    pub fn get(&self, id: TransferId) -> Option<IdleView> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .copied()
    }
}

/// What the engine holds of an upload running on its own thread.
#[derive(Debug)]
struct RunningUpload {
    stop: Arc<AtomicBool>,
    /// Its own cap (the job's), bytes per second, 0: none.
    limit: Arc<AtomicU64>,
}

impl Engine {
    /// Starts the engine thread. Events for every transfer arrive on the returned channel.
    pub fn start(config: EngineConfig) -> Result<(Engine, Receiver<EngineEvent>), QmgrError> {
        let (command_sender, command_receiver) = crossbeam_channel::unbounded();
        let (event_sender, event_receiver) = crossbeam_channel::unbounded();
        let events = event_sender.clone();
        let upload_defaults = ChannelOptions {
            user_agent: config.user_agent.clone(),
            connect_timeout: config.connect_timeout,
            ..ChannelOptions::default()
        };
        let (waker_sender, waker_receiver) = crossbeam_channel::bounded(1);
        let idle_statuses = IdleStatuses::default();
        let idle_target = config.idle_target;
        let worker_statuses = Arc::clone(&idle_statuses.0);
        let wake_pending = Arc::new(AtomicBool::new(false));
        let worker_wake_pending = Arc::clone(&wake_pending);
        let thread = std::thread::Builder::new()
            .name("qmgr-transfer".to_owned())
            .spawn(move || {
                let multi = match new_multi(&config) {
                    Ok(multi) => multi,
                    Err(error) => {
                        let _ = waker_sender.send(Err(error));
                        return;
                    }
                };
                let _ = waker_sender.send(Ok(multi.waker()));
                Worker::new(
                    multi,
                    config,
                    command_receiver,
                    worker_wake_pending,
                    event_sender,
                    worker_statuses,
                )
                .run();
            })
            .map_err(|error| {
                QmgrError::internal(format!("starting the transfer engine thread: {error}"))
            })?;
        let waker = waker_receiver
            .recv()
            .map_err(|_| QmgrError::internal("the transfer engine thread died while starting"))?
            .map_err(|error| {
                QmgrError::internal(format!("setting up curl's multi handle: {error}"))
            })?;
        let engine = Engine {
            commands: command_sender,
            waker,
            wake_pending,
            next_id: AtomicU64::new(1),
            thread: Some(thread),
            events,
            uploads: Arc::new(Mutex::new(HashMap::new())),
            upload_defaults,
            upload_global_limit: Arc::new(AtomicU64::new(0)),
            upload_priority_limits: Default::default(),
            idle_statuses,
            idle_target,
        };
        Ok((engine, event_receiver))
    }

    /// Queues a transfer. Malformed URLs, unsupported schemes and bad headers are refused
    /// here with `E_INVALIDARG`; everything else is reported as events.
    pub fn submit(&self, request: TransferRequest) -> Result<TransferId, QmgrError> {
        let checked = check(request)?;
        let id = TransferId(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.send(Command::Start(id, Box::new(checked)))?;
        Ok(id)
    }

    /// Starts an upload over the BITS upload protocol on a thread of its own. Its events
    /// come on the engine's channel: `Uploaded` and `Progress` for each acknowledged step,
    /// then `Completed` (the session closed: the server has the file), `Failed` or
    /// `Cancelled`.
    pub fn submit_upload(&self, request: UploadRequest) -> Result<TransferId, QmgrError> {
        if !request.url.to_ascii_lowercase().starts_with("http://")
            && !request.url.to_ascii_lowercase().starts_with("https://")
        {
            return Err(QmgrError::invalid_arg(format!(
                "{}: uploads go to http and https servers only",
                request.url
            )));
        }
        let id = TransferId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let stop = Arc::new(AtomicBool::new(false));
        let limit = Arc::new(AtomicU64::new(0));
        lock(&self.uploads).insert(
            id,
            RunningUpload {
                stop: stop.clone(),
                limit: limit.clone(),
            },
        );
        let events = self.events.clone();
        let uploads = self.uploads.clone();
        let options = ChannelOptions {
            headers: request.headers.clone(),
            send_limit: SendLimit {
                own: limit,
                global: request.throttled.then(|| self.upload_global_limit.clone()),
                priority: request
                    .priority_class
                    .map(|class| self.upload_priority_limits[class.index()].clone()),
            },
            idle: request.idle.then(|| SendIdle {
                target: self.idle_target,
                statuses: Arc::clone(&self.idle_statuses.0),
                id,
            }),
            ..self.upload_defaults.clone()
        };
        std::thread::Builder::new()
            .name("qmgr-upload".to_owned())
            .spawn(move || {
                let last = run_upload(id, &request, options, &stop, &events);
                lock(&uploads).remove(&id);
                let _ = events.send(last);
            })
            .map_err(|error| QmgrError::internal(format!("starting an upload thread: {error}")))?;
        Ok(id)
    }

    /// Tells an upload server to drop a cancelled job's session, on a thread of its own:
    /// a refusal retrying can fix (5xx, a network failure) is tried again with growing
    /// delays until `give_up_after` has passed, as BITS does for at most a day.
    pub fn cancel_upload_session(
        &self,
        url: String,
        session: String,
        host: Option<String>,
        headers: Vec<(String, String)>,
        give_up_after: Duration,
    ) {
        let options = ChannelOptions {
            headers,
            ..self.upload_defaults.clone()
        };
        let spawned = std::thread::Builder::new()
            .name("qmgr-cancel-session".to_owned())
            .spawn(move || {
                let deadline = std::time::Instant::now() + give_up_after;
                let mut delay = Duration::from_secs(1);
                loop {
                    match cancel_session(&url, &session, host.as_deref(), options.clone()) {
                        // The job is gone: nobody is left to hear how it went.
                        Ok(()) => return,
                        Err(error) if !error.transient => return,
                        Err(_) if std::time::Instant::now() + delay > deadline => return,
                        Err(_) => {}
                    }
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(MAX_CANCEL_SESSION_DELAY);
                }
            });
        // Without a thread the server's session expires by itself instead.
        drop(spawned);
    }

    /// Holds a transfer without closing its connection.
    pub fn pause(&self, id: TransferId) -> Result<(), QmgrError> {
        self.send(Command::Pause(id))
    }

    pub fn resume(&self, id: TransferId) -> Result<(), QmgrError> {
        self.send(Command::Resume(id))
    }

    /// Stops a transfer; its temporary file stays (see [`crate::discard`]). Ends with
    /// `Cancelled` unless the transfer had already ended.
    pub fn cancel(&self, id: TransferId) -> Result<(), QmgrError> {
        if let Some(upload) = lock(&self.uploads).get(&id) {
            // The upload stops after the packet under way: a fragment is small.
            upload.stop.store(true, Ordering::Relaxed);
            return Ok(());
        }
        self.send(Command::Cancel(id))
    }

    /// Waits until the engine thread has applied every command sent before this call, at
    /// most `timeout`; returns whether it did. After a [`Engine::cancel`] and this, the
    /// engine no longer touches that transfer's temporary file (nor makes one for it), so
    /// the caller may delete it.
    pub fn sync(&self, timeout: Duration) -> bool {
        let (done, applied) = crossbeam_channel::bounded(1);
        self.send(Command::Barrier(done)).is_ok() && applied.recv_timeout(timeout).is_ok()
    }

    /// The cap in bytes per second shared by throttled transfers; `None` lifts it.
    /// Background uploads are held to it each on their own (they run outside the worker
    /// that shares it among downloads), from their next packet.
    pub fn set_global_limit(&self, bytes_per_second: Option<u64>) -> Result<(), QmgrError> {
        self.upload_global_limit
            .store(bytes_per_second.unwrap_or(0), Ordering::Relaxed);
        self.send(Command::SetGlobalLimit(bytes_per_second))
    }

    /// The cap in bytes per second shared by the downloads of one background priority (a
    /// bandwidth schedule's); `None` lifts it. It applies beside the global cap and each
    /// transfer's own: the lowest binds. Each upload of the priority is held to it on its own.
    pub fn set_priority_limit(
        &self,
        class: PriorityClass,
        bytes_per_second: Option<u64>,
    ) -> Result<(), QmgrError> {
        self.upload_priority_limits[class.index()]
            .store(bytes_per_second.unwrap_or(0), Ordering::Relaxed);
        self.send(Command::SetPriorityLimit(class, bytes_per_second))
    }

    /// A cap for one transfer, throttled or not; `None` lifts it.
    pub fn set_transfer_limit(
        &self,
        id: TransferId,
        bytes_per_second: Option<u64>,
    ) -> Result<(), QmgrError> {
        if let Some(upload) = lock(&self.uploads).get(&id) {
            // From the upload's next packet.
            upload
                .limit
                .store(bytes_per_second.unwrap_or(0), Ordering::Relaxed);
            return Ok(());
        }
        self.send(Command::SetTransferLimit(id, bytes_per_second))
    }

    /// How many transfers of lane `key` may run at once from now on (see [`crate::Lane`]);
    /// those under way go on.
    pub fn set_lane_width(&self, key: u64, width: u32) -> Result<(), QmgrError> {
        self.send(Command::SetLaneWidth(key, width))
    }

    /// What idle mode is doing for the engine's idle transfers.
    pub fn idle_statuses(&self) -> IdleStatuses {
        self.idle_statuses.clone()
    }

    /// Stops every transfer (their files flushed and kept) and waits for the thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.send(Command::Shutdown);
            let _ = thread.join();
        }
    }

    fn send(&self, command: Command) -> Result<(), QmgrError> {
        self.commands
            .send(command)
            .map_err(|_| QmgrError::internal("the transfer engine has stopped"))?;
        // One wake-up serves every command sent until the worker next takes its commands
        // (a pass that starts sixteen transfers wakes it once). The worker drains commands
        // before every wait, so a failed wake-up only delays.
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            let _ = self.waker.wakeup();
        }
        Ok(())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What an upload needs: the server's URL, the source, where it stood and the job's headers.
#[derive(Clone, Debug)]
pub struct UploadRequest {
    pub url: String,
    pub source: PathBuf,
    /// The state recorded from an earlier attempt, to resume the same session.
    pub resume: Option<UploadState>,
    pub headers: Vec<(String, String)>,
    pub phase: UploadPhase,
    /// A background upload: the global cap applies to it.
    pub throttled: bool,
    /// The background priority whose schedule cap applies to it; `None` for FOREGROUND.
    pub priority_class: Option<PriorityClass>,
    /// Idle mode: use only bandwidth nobody else is using.
    pub idle: bool,
}

/// Which part of an upload a request runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadPhase {
    /// Every byte, then Close-Session: a plain upload.
    Whole,
    /// Every byte, and no more: an upload-reply upload, whose reply (named by the last
    /// `Uploaded` state) is downloaded before the session is closed.
    SendOnly,
    /// Close-Session of a session whose bytes the server holds (`resume` names it); the
    /// source is not read again.
    CloseOnly,
}

/// Runs one upload to its end; returns its last event.
fn run_upload(
    id: TransferId,
    request: &UploadRequest,
    options: ChannelOptions,
    stop: &AtomicBool,
    events: &Sender<EngineEvent>,
) -> EngineEvent {
    if request.phase == UploadPhase::CloseOnly {
        return close_only(id, request, options, events);
    }
    let mut uploader = match Uploader::open(
        &request.url,
        &request.source,
        request.resume.clone(),
        options,
    ) {
        Ok(uploader) => uploader,
        Err(error) => return EngineEvent::Failed { id, error },
    };
    let progress = events.clone();
    uploader.on_sent(move |offset| {
        let _ = progress.send(EngineEvent::Progress {
            id,
            bytes_on_disk: offset,
            throttled: false,
        });
    });
    let mut acknowledged = |state: &UploadState| {
        let _ = events.send(EngineEvent::Uploaded {
            id,
            state: state.clone(),
        });
        let _ = events.send(EngineEvent::Progress {
            id,
            bytes_on_disk: state.offset,
            throttled: false,
        });
    };
    let ended = if request.phase == UploadPhase::SendOnly {
        uploader.ask_again_for_last_ack();
        uploader.send_all(stop, &mut acknowledged).and_then(|()| {
            // The server was whole before the last fragment came (a resumed upload).
            uploader.ask_again_for_last_ack();
            uploader.send_all(stop, &mut acknowledged)
        })
    } else {
        uploader.close(stop, acknowledged)
    };
    match ended {
        Ok(()) => EngineEvent::Completed {
            id,
            temp_path: PathBuf::new(),
            bytes: uploader.state().total,
            validator: qmgr_core::Validator::default(),
        },
        Err(_) if stop.load(Ordering::Relaxed) => EngineEvent::Cancelled { id },
        Err(error) => EngineEvent::Failed { id, error },
    }
}

/// Close-Session after an upload-reply's reply: the server already holds every byte.
fn close_only(
    id: TransferId,
    request: &UploadRequest,
    options: ChannelOptions,
    events: &Sender<EngineEvent>,
) -> EngineEvent {
    let Some(mut state) = request
        .resume
        .clone()
        .filter(|state| state.session.is_some())
    else {
        return EngineEvent::Failed {
            id,
            error: crate::TransferError::permanent(
                qmgr_core::hresult::E_UNEXPECTED,
                qmgr_core::ErrorContext::None,
                format!("{}: there is no upload session to close", request.url),
            ),
        };
    };
    match close_session(&request.url, &state, options) {
        Ok(()) => {
            state.closed = true;
            let total = state.total;
            let _ = events.send(EngineEvent::Uploaded { id, state });
            EngineEvent::Completed {
                id,
                temp_path: PathBuf::new(),
                bytes: total,
                validator: qmgr_core::Validator::default(),
            }
        }
        Err(error) => EngineEvent::Failed { id, error },
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn new_multi(config: &EngineConfig) -> Result<Multi, curl::MultiError> {
    let mut multi = Multi::new();
    if config.max_connections_per_host > 0 {
        multi.set_max_host_connections(config.max_connections_per_host)?;
    }
    Ok(multi)
}
