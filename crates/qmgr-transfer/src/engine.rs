//! The engine: one thread that owns a curl multi handle and every transfer in it. Callers
//! talk to it through a command channel (waking it from `curl_multi_poll`) and hear from
//! it on an event channel.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use curl::multi::{Multi, MultiWaker};
use qmgr_core::QmgrError;

use crate::event::EngineEvent;
use crate::request::{CheckedRequest, TransferId, TransferRequest, check};
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
    /// Answered once every command sent before it has been applied.
    Barrier(Sender<()>),
    Shutdown,
}

/// The caller's handle on the engine thread. Dropping it shuts the engine down.
#[derive(Debug)]
pub struct Engine {
    commands: Sender<Command>,
    waker: MultiWaker,
    next_id: AtomicU64,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// Starts the engine thread. Events for every transfer arrive on the returned channel.
    pub fn start(config: EngineConfig) -> Result<(Engine, Receiver<EngineEvent>), QmgrError> {
        let (command_sender, command_receiver) = crossbeam_channel::unbounded();
        let (event_sender, event_receiver) = crossbeam_channel::unbounded();
        let (waker_sender, waker_receiver) = crossbeam_channel::bounded(1);
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
                Worker::new(multi, config, command_receiver, event_sender).run();
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
            next_id: AtomicU64::new(1),
            thread: Some(thread),
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
    pub fn set_global_limit(&self, bytes_per_second: Option<u64>) -> Result<(), QmgrError> {
        self.send(Command::SetGlobalLimit(bytes_per_second))
    }

    /// A cap for one transfer, throttled or not; `None` lifts it.
    pub fn set_transfer_limit(
        &self,
        id: TransferId,
        bytes_per_second: Option<u64>,
    ) -> Result<(), QmgrError> {
        self.send(Command::SetTransferLimit(id, bytes_per_second))
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
        // The worker drains commands before every wait, so a failed wake-up only delays.
        let _ = self.waker.wakeup();
        Ok(())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

fn new_multi(config: &EngineConfig) -> Result<Multi, curl::MultiError> {
    let mut multi = Multi::new();
    if config.max_connections_per_host > 0 {
        multi.set_max_host_connections(config.max_connections_per_host)?;
    }
    Ok(multi)
}
