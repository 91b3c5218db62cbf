//! The engine: one thread that owns a curl multi handle and every transfer in it. Callers
//! talk to it through a command channel (waking it from `curl_multi_poll`) and hear from
//! it on an event channel.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use curl::easy::Easy2;
use curl::multi::{Easy2Handle, Multi, MultiWaker};
use qmgr_core::{ErrorContext, QmgrError, hresult};

use crate::error::TransferError;
use crate::event::{EngineEvent, RestartReason};
use crate::files::{create_temp, reopen_partial};
use crate::handle::{HandleDefaults, build};
use crate::http_date;
use crate::request::{CheckedRequest, TransferId, TransferRequest, Validator, check};
use crate::response::{Expectation, already_complete};
use crate::sink::{KnownSource, Sink, SinkFailure, SinkSetup};
use crate::source::Scheme;
use crate::throttle::{TokenBucket, fair_share};

/// How long the engine sleeps when nothing needs it; a command wakes it at once.
const IDLE_WAIT: Duration = Duration::from_secs(5);
/// The shortest sleep while waiting for a bandwidth bucket, so debt is not polled in a spin.
const MIN_THROTTLE_WAIT: Duration = Duration::from_millis(1);

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

enum Command {
    Start(TransferId, Box<CheckedRequest>),
    Pause(TransferId),
    Resume(TransferId),
    Cancel(TransferId),
    SetGlobalLimit(Option<u64>),
    SetTransferLimit(TransferId, Option<u64>),
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

/// One transfer in flight.
struct Transfer {
    handle: Easy2Handle<Sink>,
    checked: Box<CheckedRequest>,
    own_limit: Option<TokenBucket>,
    reported_bytes: u64,
    reported_at: Instant,
    /// Already asked again from zero once because of an inconsistent answer.
    restarted_here: bool,
}

/// How a finished attempt ends.
enum Verdict {
    Complete,
    Fail(TransferError),
    StartOver(RestartReason),
}

struct Worker {
    multi: Multi,
    defaults: HandleDefaults,
    progress_interval: Duration,
    commands: Receiver<Command>,
    events: Sender<EngineEvent>,
    transfers: HashMap<TransferId, Transfer>,
    global_limit: Option<TokenBucket>,
}

impl Worker {
    fn new(
        multi: Multi,
        config: EngineConfig,
        commands: Receiver<Command>,
        events: Sender<EngineEvent>,
    ) -> Self {
        let now = Instant::now();
        Self {
            multi,
            defaults: HandleDefaults {
                user_agent: config.user_agent,
                connect_timeout: config.connect_timeout,
                stall_timeout: config.stall_timeout,
            },
            progress_interval: config.progress_interval,
            commands,
            events,
            transfers: HashMap::new(),
            global_limit: config.global_limit.map(|rate| TokenBucket::new(rate, now)),
        }
    }

    fn run(mut self) {
        loop {
            if !self.take_commands() {
                break;
            }
            self.grant_allowances(Instant::now());
            if let Err(error) = self.multi.perform() {
                self.fail_everything(&format!("curl's multi handle failed: {error}"));
            }
            self.charge_consumption();
            self.finish_done_transfers();
            self.report_progress(Instant::now());
            let wait = self.next_wake(Instant::now());
            if let Err(error) = self.multi.poll(&mut [], wait) {
                self.fail_everything(&format!("waiting on curl's multi handle failed: {error}"));
            }
        }
        self.stop_everything();
    }

    /// Applies queued commands; false when the engine must stop.
    fn take_commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => return false,
                Ok(command) => self.apply(command),
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    fn apply(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Start(id, checked) => self.start(id, checked),
            Command::Pause(id) => {
                if let Some(transfer) = self.transfers.get_mut(&id) {
                    transfer.handle.get_mut().held = true;
                }
            }
            Command::Resume(id) => {
                // The next allowance round unpauses it.
                if let Some(transfer) = self.transfers.get_mut(&id) {
                    transfer.handle.get_mut().held = false;
                }
            }
            Command::Cancel(id) => {
                if let Some(transfer) = self.transfers.remove(&id) {
                    self.retire(id, transfer);
                    self.emit(EngineEvent::Cancelled { id });
                }
            }
            Command::SetGlobalLimit(rate) => {
                self.global_limit = update_limit(self.global_limit.take(), rate, now);
            }
            Command::SetTransferLimit(id, rate) => {
                if let Some(transfer) = self.transfers.get_mut(&id) {
                    transfer.own_limit = update_limit(transfer.own_limit.take(), rate, now);
                }
            }
            Command::Shutdown => {}
        }
    }

    fn emit(&self, event: EngineEvent) {
        // Nobody listening is not the engine's problem; it keeps its promises to the files.
        let _ = self.events.send(event);
    }

    /// Opens the file, works out where to continue from, and adds the first attempt.
    fn start(&mut self, id: TransferId, checked: Box<CheckedRequest>) {
        let opened = match open_target(&checked.request) {
            Ok(opened) => opened,
            Err(error) => {
                self.emit(EngineEvent::Failed { id, error });
                return;
            }
        };
        self.emit(EngineEvent::Started {
            id,
            temp_path: opened.temp_path.clone(),
        });
        let known_source = match checked.source.local_path.as_deref() {
            Some(path) => match stat_local_source(path, &checked.source.url) {
                Ok(known) => Some(known),
                Err(error) => {
                    self.emit(EngineEvent::Failed { id, error });
                    return;
                }
            },
            None => None,
        };
        let mut opened = opened;
        let mut prior_restart = opened.lost.then_some(RestartReason::PartialFileLost);
        let obstacle = (opened.kept > 0)
            .then(|| resume_obstacle(&checked, &opened, known_source.as_ref()))
            .flatten();
        if let Some(reason) = obstacle {
            if let Err(error) = empty(&mut opened.file, &opened.temp_path) {
                self.emit(EngineEvent::Failed { id, error });
                return;
            }
            opened.kept = 0;
            prior_restart = Some(reason);
        }
        let partial = checked.request.partial.as_ref();
        let expectation = Expectation {
            offset: opened.kept,
            validator: partial.map(|p| p.validator.clone()).unwrap_or_default(),
            total: partial.and_then(|p| p.total),
        };
        let attempt = Attempt {
            file: opened.file,
            temp_path: opened.temp_path,
            expectation,
            prior_restart,
            known_source,
        };
        self.add_attempt(id, checked, attempt, None, false);
    }

    /// Builds an easy handle for an attempt and adds it to the multi handle.
    fn add_attempt(
        &mut self,
        id: TransferId,
        checked: Box<CheckedRequest>,
        attempt: Attempt,
        own_limit: Option<TokenBucket>,
        restarted_here: bool,
    ) {
        let offset = attempt.expectation.offset;
        let if_range = attempt.expectation.validator.if_range().map(str::to_owned);
        let sink = Sink::new(SinkSetup {
            id,
            scheme: checked.source.scheme,
            url: checked.source.url.clone(),
            temp_path: attempt.temp_path,
            file: attempt.file,
            expectation: attempt.expectation,
            prior_restart: attempt.prior_restart,
            known_source: attempt.known_source,
            max_size: checked.request.max_size,
            events: self.events.clone(),
        });
        let added = build(
            sink,
            &checked.source,
            &checked.request,
            &self.defaults,
            offset,
            if_range.as_deref(),
        )
        .map_err(|error| describe_setup_error(&error, &checked.source.url))
        .and_then(|easy| self.add_to_multi(id, easy, &checked.source.url));
        match added {
            Ok(handle) => {
                let transfer = Transfer {
                    handle,
                    checked,
                    own_limit,
                    reported_bytes: offset,
                    reported_at: Instant::now(),
                    restarted_here,
                };
                self.transfers.insert(id, transfer);
            }
            Err(error) => self.emit(EngineEvent::Failed { id, error }),
        }
    }

    fn add_to_multi(
        &self,
        id: TransferId,
        easy: Easy2<Sink>,
        url: &str,
    ) -> Result<Easy2Handle<Sink>, TransferError> {
        let mut handle = self.multi.add2(easy).map_err(|error| {
            TransferError::permanent(
                hresult::E_FAIL,
                ErrorContext::GeneralQueueManager,
                format!("{url}: curl refused the transfer: {error}"),
            )
        })?;
        let token = usize::try_from(id.0).unwrap_or(usize::MAX);
        handle
            .set_token(token)
            .map_err(|error| describe_setup_error(&error, url))?;
        Ok(handle)
    }

    /// Gives every transfer its bandwidth allowance for the next round and unpauses those
    /// that may go on.
    fn grant_allowances(&mut self, now: Instant) {
        if let Some(global) = self.global_limit.as_mut() {
            global.refill(now);
        }
        let participants = self
            .transfers
            .values_mut()
            .filter(|transfer| {
                transfer.checked.request.throttled && !transfer.handle.get_ref().held
            })
            .count();
        let share = self
            .global_limit
            .as_ref()
            .map(|global| fair_share(global.available(), participants));
        for transfer in self.transfers.values_mut() {
            let mut allowance = if transfer.checked.request.throttled {
                share
            } else {
                None
            };
            if let Some(own) = transfer.own_limit.as_mut() {
                own.refill(now);
                let own_available = own.available();
                allowance = Some(allowance.map_or(own_available, |a| a.min(own_available)));
            }
            let sink = transfer.handle.get_mut();
            sink.allowance = allowance;
            if sink.paused && !sink.held && allowance != Some(0) {
                sink.paused = false;
                // curl may deliver the held data right here; the write callback sees the
                // new allowance.
                if let Err(error) = transfer.handle.unpause_write() {
                    let failure = TransferError::permanent(
                        hresult::E_FAIL,
                        ErrorContext::GeneralQueueManager,
                        format!("resuming a paused transfer failed: {error}"),
                    );
                    transfer.handle.get_mut().failure = Some(SinkFailure::Failed(failure));
                }
            }
        }
    }

    fn charge_consumption(&mut self) {
        for transfer in self.transfers.values_mut() {
            let consumed = transfer.handle.get_mut().take_consumed();
            if consumed == 0 {
                continue;
            }
            if let Some(global) = self
                .global_limit
                .as_mut()
                .filter(|_| transfer.checked.request.throttled)
            {
                global.charge(consumed);
            }
            if let Some(own) = transfer.own_limit.as_mut() {
                own.charge(consumed);
            }
        }
    }

    fn finish_done_transfers(&mut self) {
        let mut done = Vec::new();
        self.multi.messages(|message| {
            if let (Ok(token), Some(result)) = (message.token(), message.result()) {
                done.push((TransferId(token as u64), result));
            }
        });
        for (id, result) in done {
            if let Some(transfer) = self.transfers.remove(&id) {
                self.finish(id, transfer, result);
            }
        }
    }

    fn finish(&mut self, id: TransferId, transfer: Transfer, result: Result<(), curl::Error>) {
        let Transfer {
            handle,
            checked,
            own_limit,
            reported_bytes,
            restarted_here,
            ..
        } = transfer;
        let mut easy = match self.multi.remove2(handle) {
            Ok(easy) => easy,
            Err(error) => {
                let error = TransferError::permanent(
                    hresult::E_FAIL,
                    ErrorContext::GeneralQueueManager,
                    format!(
                        "{}: curl could not release the transfer: {error}",
                        checked.source.url
                    ),
                );
                self.emit(EngineEvent::Failed { id, error });
                return;
            }
        };
        let detail = easy.take_error_buf();
        let redirect_url = easy.redirect_url().ok().flatten().map(str::to_owned);
        let url = checked.source.url.clone();
        let sink = easy.get_mut();
        let redirect_target =
            redirect_url.or_else(|| sink.head.redirect_target().map(str::to_owned));
        let verdict = judge(
            sink,
            result,
            &url,
            detail.as_deref(),
            redirect_target.as_deref(),
        );
        match verdict {
            Verdict::StartOver(reason) if !restarted_here => {
                let temp_path = sink.temp_path.clone();
                match sink.take_emptied_file() {
                    Ok(file) => {
                        let attempt = Attempt {
                            file,
                            temp_path,
                            expectation: Expectation::default(),
                            prior_restart: Some(reason),
                            known_source: sink.known_source.take(),
                        };
                        self.add_attempt(id, checked, attempt, own_limit, true);
                    }
                    Err(error) => self.emit(EngineEvent::Failed { id, error }),
                }
            }
            Verdict::StartOver(_) => {
                let error = TransferError::transient(
                    hresult::BG_E_INVALID_SERVER_RESPONSE,
                    ErrorContext::RemoteFile,
                    format!(
                        "{url}: the server's partial answers do not match the file, even after starting over"
                    ),
                );
                self.end(id, sink, reported_bytes, Err(error));
            }
            Verdict::Complete => self.end(id, sink, reported_bytes, Ok(())),
            Verdict::Fail(error) => self.end(id, sink, reported_bytes, Err(error)),
        }
    }

    /// Flushes the file and reports how the transfer ended.
    fn end(
        &self,
        id: TransferId,
        sink: &mut Sink,
        reported_bytes: u64,
        outcome: Result<(), TransferError>,
    ) {
        let flushed = sink.close();
        if sink.length != reported_bytes {
            self.emit(EngineEvent::Progress {
                id,
                bytes_on_disk: sink.length,
            });
        }
        let event = match outcome.and(flushed) {
            Ok(()) => EngineEvent::Completed {
                id,
                temp_path: sink.temp_path.clone(),
                bytes: sink.length,
                validator: sink.validator.clone(),
            },
            Err(error) => EngineEvent::Failed { id, error },
        };
        self.emit(event);
    }

    /// Takes a transfer out of curl, flushing its file and reporting its length.
    fn retire(&mut self, id: TransferId, transfer: Transfer) {
        if let Ok(mut easy) = self.multi.remove2(transfer.handle) {
            let sink = easy.get_mut();
            // The caller learns the length from the Progress below; a failed flush shows
            // there as fewer bytes.
            let _ = sink.close();
            if sink.length != transfer.reported_bytes {
                self.emit(EngineEvent::Progress {
                    id,
                    bytes_on_disk: sink.length,
                });
            }
        }
    }

    fn report_progress(&mut self, now: Instant) {
        let interval = self.progress_interval;
        let mut reports = Vec::new();
        for (id, transfer) in &mut self.transfers {
            let due = now.saturating_duration_since(transfer.reported_at) >= interval;
            let sink = transfer.handle.get_mut();
            if !due || sink.length == transfer.reported_bytes || !sink.is_writing() {
                continue;
            }
            if sink.flush().is_err() {
                continue;
            }
            transfer.reported_bytes = sink.length;
            transfer.reported_at = now;
            reports.push(EngineEvent::Progress {
                id: *id,
                bytes_on_disk: sink.length,
            });
        }
        for report in reports {
            self.emit(report);
        }
    }

    /// How long to sleep: until a progress report is due, or a bucket holding back a paused
    /// transfer has refilled. curl's own timers shorten the wait further by themselves.
    fn next_wake(&mut self, now: Instant) -> Duration {
        let mut wait = IDLE_WAIT;
        for transfer in self.transfers.values_mut() {
            let sink = transfer.handle.get_mut();
            if sink.length != transfer.reported_bytes {
                let due = transfer.reported_at + self.progress_interval;
                wait = wait.min(due.saturating_duration_since(now));
            }
            if sink.paused && !sink.held {
                let global = if transfer.checked.request.throttled {
                    self.global_limit.as_ref().map(TokenBucket::wait)
                } else {
                    None
                };
                let own = transfer.own_limit.as_ref().map(TokenBucket::wait);
                let refill = [global, own]
                    .into_iter()
                    .flatten()
                    .try_fold(Duration::ZERO, |longest, wait| wait.map(|w| longest.max(w)));
                if let Some(refill) = refill {
                    wait = wait.min(refill.max(MIN_THROTTLE_WAIT));
                }
            }
        }
        wait
    }

    fn fail_everything(&mut self, why: &str) {
        let ids: Vec<TransferId> = self.transfers.keys().copied().collect();
        for id in ids {
            if let Some(transfer) = self.transfers.remove(&id) {
                self.retire(id, transfer);
                let error = TransferError::transient(
                    hresult::E_FAIL,
                    ErrorContext::GeneralQueueManager,
                    why.to_owned(),
                );
                self.emit(EngineEvent::Failed { id, error });
            }
        }
    }

    fn stop_everything(&mut self) {
        let ids: Vec<TransferId> = self.transfers.keys().copied().collect();
        for id in ids {
            if let Some(transfer) = self.transfers.remove(&id) {
                self.retire(id, transfer);
                self.emit(EngineEvent::Cancelled { id });
            }
        }
    }
}

fn update_limit(
    current: Option<TokenBucket>,
    rate: Option<u64>,
    now: Instant,
) -> Option<TokenBucket> {
    match (current, rate) {
        (_, None) => None,
        (Some(mut bucket), Some(rate)) => {
            bucket.set_rate(rate, now);
            Some(bucket)
        }
        (None, Some(rate)) => Some(TokenBucket::new(rate, now)),
    }
}

/// One request's starting point.
struct Attempt {
    file: File,
    temp_path: PathBuf,
    expectation: Expectation,
    prior_restart: Option<RestartReason>,
    known_source: Option<KnownSource>,
}

/// The temporary file a transfer writes to.
struct OpenedTarget {
    file: File,
    temp_path: PathBuf,
    /// Bytes kept from an earlier attempt.
    kept: u64,
    /// The earlier attempt's file was gone or unusable; a new one was made.
    lost: bool,
}

fn open_target(request: &TransferRequest) -> Result<OpenedTarget, TransferError> {
    if let Some(partial) = &request.partial {
        match reopen_partial(&partial.temp_path, partial.bytes) {
            Ok((file, kept)) => {
                return Ok(OpenedTarget {
                    file,
                    temp_path: partial.temp_path.clone(),
                    kept,
                    lost: false,
                });
            }
            Err(error) if is_lost_file(&error) => {}
            Err(error) => {
                return Err(TransferError::local(
                    &error,
                    "reopening",
                    &partial.temp_path,
                ));
            }
        }
    }
    let (file, temp_path) = create_temp(&request.destination).map_err(|error| {
        TransferError::local(
            &error,
            "creating a temporary file for",
            &request.destination,
        )
    })?;
    Ok(OpenedTarget {
        file,
        temp_path,
        kept: 0,
        lost: request.partial.is_some(),
    })
}

/// Errors that mean the partial file is simply not there to continue (deleted, replaced by
/// a symlink or something that is not a file), as opposed to a disk or permission problem.
fn is_lost_file(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::NotFound
        || error.kind() == io::ErrorKind::InvalidInput
        || error.raw_os_error() == Some(libc::ELOOP)
}

/// Why the bytes held cannot be continued, if they cannot.
fn resume_obstacle(
    checked: &CheckedRequest,
    opened: &OpenedTarget,
    known_source: Option<&KnownSource>,
) -> Option<RestartReason> {
    let partial = checked.request.partial.as_ref()?;
    match checked.source.scheme {
        Scheme::File => {
            let known = known_source?;
            let unchanged = known.validator == partial.validator
                && partial.total.is_none_or(|total| total == known.total)
                && opened.kept <= known.total;
            (!unchanged).then_some(RestartReason::ValidatorChanged)
        }
        Scheme::Http | Scheme::Https => partial
            .validator
            .if_range()
            .is_none()
            .then_some(RestartReason::NoValidator),
        Scheme::Ftp | Scheme::Ftps => partial
            .validator
            .is_empty()
            .then_some(RestartReason::NoValidator),
    }
}

fn empty(file: &mut File, path: &Path) -> Result<(), TransferError> {
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)).map(drop))
        .map_err(|error| TransferError::local(&error, "emptying", path))
}

/// Size and validator of a local source: the entity tag is made of inode, size and
/// modification time in nanoseconds, so a rewrite within the same second is still seen.
fn stat_local_source(path: &Path, url: &str) -> Result<KnownSource, TransferError> {
    let metadata = fs::metadata(path).map_err(|error| {
        let mut failure = TransferError::local(&error, "reading", path);
        failure.error.context = ErrorContext::RemoteFile;
        if error.kind() == io::ErrorKind::NotFound {
            failure.error.hresult = hresult::HRESULT_FILE_NOT_FOUND;
        }
        failure.error.description = format!("{url}: {}", failure.error.description);
        failure
    })?;
    if !metadata.is_file() {
        return Err(TransferError::permanent(
            hresult::E_INVALIDARG,
            ErrorContext::RemoteFile,
            format!("{url}: {} is not a regular file", path.display()),
        ));
    }
    let modified = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    Ok(KnownSource {
        total: metadata.len(),
        validator: Validator {
            etag: Some(format!(
                "\"{:x}-{:x}-{:x}.{:09}\"",
                metadata.ino(),
                metadata.len(),
                metadata.mtime(),
                metadata.mtime_nsec()
            )),
            last_modified: Some(http_date::format(modified)),
        },
    })
}

fn describe_setup_error(error: &curl::Error, url: &str) -> TransferError {
    TransferError::permanent(
        hresult::E_INVALIDARG,
        ErrorContext::GeneralQueueManager,
        format!("{url}: curl refused a setting: {error}"),
    )
}

/// Decides how an attempt ended, from what the sink saw and what curl reported.
fn judge(
    sink: &mut Sink,
    result: Result<(), curl::Error>,
    url: &str,
    detail: Option<&str>,
    redirect_target: Option<&str>,
) -> Verdict {
    if let Some(failure) = sink.failure.take() {
        return match failure {
            SinkFailure::Failed(error) => Verdict::Fail(error),
            SinkFailure::Mismatch(reason) => Verdict::StartOver(reason),
        };
    }
    let http = sink.head.status.is_some();
    if let Err(error) = result {
        let redirect_trouble = error.is_too_many_redirects() || error.is_unsupported_protocol();
        if http && !sink.head.is_success() && !redirect_trouble {
            return http_verdict(sink, url);
        }
        if error.is_bad_download_resume() || error.is_range_error() {
            return Verdict::StartOver(RestartReason::RangeMismatch);
        }
        return Verdict::Fail(TransferError::transport(
            &error,
            url,
            detail,
            redirect_target,
        ));
    }
    sink.decide();
    if let Some(failure) = sink.failure.take() {
        return match failure {
            SinkFailure::Failed(error) => Verdict::Fail(error),
            SinkFailure::Mismatch(reason) => Verdict::StartOver(reason),
        };
    }
    if !sink.is_writing() {
        return http_verdict(sink, url);
    }
    match sink.responded_total {
        Some(total) if total != sink.length => Verdict::Fail(TransferError::transient(
            hresult::HRESULT_WINHTTP_CONNECTION_ERROR,
            ErrorContext::GeneralTransport,
            format!(
                "{url}: the transfer ended after {} of {total} bytes",
                sink.length
            ),
        )),
        _ => Verdict::Complete,
    }
}

/// The verdict on a response that is not the file's content.
fn http_verdict(sink: &Sink, url: &str) -> Verdict {
    if already_complete(&sink.head, &sink.expectation) {
        return Verdict::Complete;
    }
    match sink.head.status {
        Some(416) if sink.expectation.offset > 0 => {
            Verdict::StartOver(RestartReason::RangeMismatch)
        }
        Some(status) => Verdict::Fail(TransferError::http_status(
            status,
            url,
            sink.head.retry_after(SystemTime::now()),
        )),
        None => Verdict::Fail(TransferError::transient(
            hresult::BG_E_INVALID_SERVER_RESPONSE,
            ErrorContext::RemoteFile,
            format!("{url}: the server sent no status line"),
        )),
    }
}
