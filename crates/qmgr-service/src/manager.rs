//! The queue manager: owns the jobs, the store and the transfer engine, applies the state
//! machine to calls and engine events, schedules, retries, and notifies.
//!
//! Calls come from any thread and run under one lock; a driver thread handles engine events
//! and timers. Nothing scans all jobs periodically: timers live in an ordered set, and the
//! scheduler runs only when something changed.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select};
use parking_lot::Mutex;
use qmgr_core::certificate::{self, CertificateSelector, ClientCertificate};
use qmgr_core::config::Config;
use qmgr_core::error::{ErrorContext, QmgrError, Result};
use qmgr_core::file::SIZE_UNKNOWN;
use qmgr_core::group::Group;
use qmgr_core::hresult;
use qmgr_core::job::{
    AutoComplete, JobPriority, MAX_CUSTOM_HEADERS_CHARS, MAX_DESCRIPTION_CHARS,
    MAX_DISPLAY_NAME_CHARS, MAX_PROXY_LIST_CHARS, ProxyUsage, check_length, notify, security,
};
use qmgr_core::paths::StatePaths;
use qmgr_core::schedule::{self, Candidate, Limits, Running};
use qmgr_core::service::{
    Attempt, GroupChange, GroupView, JobChange, JobView, LIST_PAGE_BYTES, ListCursor, NewFile,
    Notification, NotificationKind, Request, Response, WaitReason,
};
use qmgr_core::store::{ProgressBatcher, ProgressUpdate, Store};
use qmgr_core::{Guid, Job, JobError, JobState, JobType, Outcome, Timestamp};
use qmgr_ipc::frame::encoded_len;
use qmgr_ipc::subscription::{Publisher, Subscription, subscription};
use qmgr_transfer::{
    Engine, EngineConfig, EngineEvent, Overwrite, PartialFile, ProxyChoice, TransferId,
    TransferRequest,
};

use crate::clock::Clock;
use crate::command_line;

/// How often progress reaches the store at most.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest time between two scheduling passes asked for by calls.
const MIN_PASS_INTERVAL: Duration = Duration::from_millis(5);
/// Attempts remembered per job for "why is it not moving?".
const ATTEMPTS_KEPT: usize = 5;
/// The uid with every right.
const ROOT: u32 = 0;
/// How long Cancel and Complete wait for the engine to let go of a job's transfers before
/// deleting their temporary files (a guard; the engine answers within one loop).
const ENGINE_SYNC_TIMEOUT: Duration = Duration::from_secs(10);
/// A certificate store name is one directory name (NAME_MAX bytes).
const MAX_CERTIFICATE_STORE_NAME_BYTES: usize = 255;
/// SetClientCertificateByName's subject, in characters.
const MAX_CERTIFICATE_SUBJECT_CHARS: usize = 1024;

/// The queue manager. Cloning gives another handle on the same queue.
#[derive(Clone)]
pub struct QueueManager {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for QueueManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueManager").finish_non_exhaustive()
    }
}

struct Shared {
    state: Mutex<State>,
    engine: Engine,
    clock: Arc<dyn Clock>,
    wake: Sender<()>,
    driver: Mutex<Option<JoinHandle<()>>>,
}

/// A job and what the manager knows about it beyond the store.
struct Entry {
    job: Job,
    /// Creation order.
    seq: u64,
    /// Place in line among equal priorities (see `schedule::Candidate::turn`).
    turn: u64,
    run: Option<Run>,
    attempts: VecDeque<Attempt>,
    /// Background jobs ahead of it in line, as of the last scheduling pass.
    ahead: u32,
    /// A bandwidth cap held a transfer of the job back in the engine's last report: the
    /// cap, not the link, sets its pace.
    throttled: bool,
    /// Why the service could not complete this auto-complete job when it reached
    /// TRANSFERRED (it then waits for Complete or Cancel).
    complete_error: Option<QmgrError>,
}

/// What views of jobs share within one request: the global cap, and whether the machine has
/// a network (looked up at most once per request, and only if some view needs it).
struct ViewContext {
    global_cap: Option<u64>,
    network_up: std::cell::OnceCell<bool>,
}

impl ViewContext {
    fn network_up(&self) -> bool {
        *self
            .network_up
            .get_or_init(crate::network::has_default_route)
    }
}

impl Entry {
    /// The job as clients see it, with why it is not moving (or not faster).
    fn view(&self, context: &ViewContext) -> JobView {
        let job = &self.job;
        let global_cap = context.global_cap;
        let waiting = match job.state {
            // A cap is reported only while it binds: a job far below it is held back by
            // its link or server, not by the cap.
            JobState::Connecting | JobState::Transferring if self.throttled => {
                let background_cap = global_cap.filter(|_| job.priority != JobPriority::Foreground);
                let cap = match (job.settings.bandwidth_limit, background_cap) {
                    (Some(own), Some(global)) => Some(own.min(global)),
                    (own, global) => own.or(global),
                };
                cap.map(|bytes_per_second| WaitReason::Throttled { bytes_per_second })
            }
            JobState::TransientError
                if job
                    .error
                    .as_ref()
                    .is_some_and(|e| e.error.context == ErrorContext::GeneralTransport)
                    && !context.network_up() =>
            {
                Some(WaitReason::NoNetwork)
            }
            JobState::Suspended => Some(WaitReason::Suspended),
            JobState::Queued => Some(WaitReason::WaitingForSlot { ahead: self.ahead }),
            JobState::TransientError => job.retry_at.map(|at| WaitReason::RetryAt {
                at,
                // The server's wait set the time when it is the retry time (interactive
                // retries wait less than MinimumRetryDelay) or longer than the job's own.
                server_asked: job.error.as_ref().is_some_and(|e| {
                    e.retry_after.is_some_and(|asked| {
                        job.retry_at == Some(e.at.plus(asked))
                            || asked > job.settings.minimum_retry_delay
                    })
                }),
            }),
            JobState::Error => Some(WaitReason::Failed),
            JobState::Transferred => Some(
                self.complete_error
                    .clone()
                    .map_or(WaitReason::AwaitingComplete, |error| {
                        WaitReason::CompleteFailed { error }
                    }),
            ),
            _ => None,
        };
        JobView {
            job: job.clone(),
            waiting,
            attempts: self.attempts.iter().cloned().collect(),
        }
    }
}

/// A job holding a transfer slot.
struct Run {
    since: Duration,
    transfers: Vec<TransferId>,
}

/// One file being transferred.
struct Slot {
    job: Guid,
    file: usize,
    /// The file could stop now and continue later from where it stopped.
    can_yield: bool,
    /// Bytes in the temporary file when this transfer began (for the attempt record).
    started_at: u64,
    http_status: Option<u16>,
    /// Why this transfer dropped the bytes held and started over (for the attempt record).
    restart: Option<String>,
    /// A bandwidth cap held this transfer back in the engine's last progress report.
    throttled: bool,
}

struct Subscriber {
    uid: u32,
    sender: Publisher,
}

struct State {
    config: Config,
    /// Where the client certificate stores are (`certs_dir`).
    paths: StatePaths,
    store: Store,
    jobs: HashMap<Guid, Entry>,
    groups: HashMap<Guid, Group>,
    transfers: HashMap<TransferId, Slot>,
    batcher: ProgressBatcher,
    next_seq: u64,
    next_turn: u64,
    /// When each job in TRANSIENT_ERROR must be looked at again.
    timers: BTreeSet<(Timestamp, Guid)>,
    schedule_needed: bool,
    next_decision: Option<Duration>,
    subscribers: Vec<Subscriber>,
    stopping: bool,
    /// When to look for jobs untouched for `job_inactivity_timeout`.
    next_expiry_check: Timestamp,
    /// The scheduler ran since the line was last numbered (see `number_the_line`).
    line_stale: bool,
    /// Jobs per owner, for `max_jobs_per_user` without counting the whole queue.
    owned: HashMap<u32, usize>,
    /// Auto-complete jobs that reached TRANSFERRED: the driver completes them.
    auto_complete_due: Vec<Guid>,
}

impl QueueManager {
    /// Opens the store in `paths.state_dir()`, resumes what was running, and starts the
    /// engine and the driver thread. Client certificates come from the stores under
    /// `paths.config_dir()`.
    pub fn start(
        config: Config,
        paths: &StatePaths,
        clock: Arc<dyn Clock>,
    ) -> Result<QueueManager> {
        let state_dir = paths.state_dir();
        let store = Store::open(state_dir)?;
        let (engine, events) = Engine::start(EngineConfig {
            global_limit: config.bandwidth_limit,
            ..EngineConfig::default()
        })?;
        let (wake, woken) = crossbeam_channel::unbounded();
        let mut state = State {
            batcher: ProgressBatcher::new(PROGRESS_INTERVAL),
            config,
            paths: paths.clone(),
            store,
            jobs: HashMap::new(),
            groups: HashMap::new(),
            transfers: HashMap::new(),
            next_seq: 0,
            next_turn: 0,
            timers: BTreeSet::new(),
            schedule_needed: true,
            next_decision: None,
            subscribers: Vec::new(),
            stopping: false,
            next_expiry_check: Timestamp::ZERO,
            line_stale: false,
            owned: HashMap::new(),
            auto_complete_due: Vec::new(),
        };
        state.recover(clock.now(), boot_changed(state_dir)?)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            engine,
            clock,
            wake,
            driver: Mutex::new(None),
        });
        let driver_shared = Arc::downgrade(&shared);
        let driver = std::thread::Builder::new()
            .name("qmgr-queue".into())
            .spawn(move || drive(&driver_shared, &events, &woken))
            .map_err(|e| QmgrError::internal(format!("cannot start the queue thread: {e}")))?;
        *shared.driver.lock() = Some(driver);
        Ok(QueueManager { shared })
    }

    /// Carries out a request for the user `uid`.
    pub fn handle(&self, uid: u32, request: Request) -> Result<Response> {
        let now = self.shared.clock.now();
        let mut state = self.shared.state.lock();
        let already_asked = state.schedule_needed;
        let response = state.handle(&self.shared.engine, uid, request, now);
        // The driver needs one wake-up per pending pass, not one per call.
        if state.schedule_needed && !already_asked {
            drop(state);
            let _ = self.shared.wake.send(());
        }
        response
    }

    /// A stream of notifications about the jobs `uid` may see, in a bounded queue (see
    /// [`qmgr_ipc::subscription`]: a subscriber that stops reading holds at most one
    /// Modification per job).
    ///
    /// # Errors
    /// When the queue's descriptor cannot be made (out of descriptors).
    pub fn subscribe(&self, uid: u32) -> Result<Subscription> {
        let (sender, receiver) = subscription().map_err(|error| {
            QmgrError::internal(format!("cannot make a notification queue: {error}"))
        })?;
        self.shared
            .state
            .lock()
            .subscribers
            .push(Subscriber { uid, sender });
        Ok(receiver)
    }

    /// Whether nothing is running or waiting to run (jobs may still be suspended, in
    /// ERROR or TRANSFERRED): an on-demand daemon may exit.
    pub fn is_idle(&self) -> bool {
        let state = self.shared.state.lock();
        state.transfers.is_empty()
            && state.timers.is_empty()
            && state.auto_complete_due.is_empty()
            && !state.jobs.values().any(|e| {
                matches!(
                    e.job.state,
                    JobState::Queued | JobState::Connecting | JobState::Transferring
                )
            })
    }

    /// Wakes the driver: tests call this after moving a manual clock.
    pub fn poke(&self) {
        let _ = self.shared.wake.send(());
    }

    /// Stops transfers, writes pending progress and ends the driver thread. Partial files
    /// stay for the next start.
    pub fn shutdown(&self) {
        {
            let mut state = self.shared.state.lock();
            if state.stopping {
                return;
            }
            state.stopping = true;
            let ids: Vec<TransferId> = state.transfers.keys().copied().collect();
            for id in ids {
                let _ = self.shared.engine.cancel(id);
            }
            let now = self.shared.clock.monotonic();
            state.flush_progress(now);
        }
        let _ = self.shared.wake.send(());
        let driver = self.shared.driver.lock().take();
        if let Some(driver) = driver
            && driver.thread().id() != std::thread::current().id()
        {
            let _ = driver.join();
        }
    }
}

/// The driver thread: engine events, timers, scheduling. It holds the queue only while it
/// works, so dropping the last [`QueueManager`] ends it (the engine stops, its event channel
/// closes).
fn drive(shared: &Weak<Shared>, events: &Receiver<EngineEvent>, woken: &Receiver<()>) {
    let mut last_pass: Option<Instant> = None;
    loop {
        let wait = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let mut state = shared.state.lock();
            if state.stopping {
                return;
            }
            let now = shared.clock.now();
            let mono = shared.clock.monotonic();
            state.run_timers(now);
            state.run_auto_completes(&shared.engine, now);
            state.expire_inactive(&shared.engine, now);
            if state.batcher.is_due(mono) {
                state.flush_progress(mono);
            }
            // A burst of calls (thousands of Resumes) asks for many passes; one every few
            // milliseconds serves them all and keeps the lock free for the calls.
            let since_pass = last_pass.map_or(MIN_PASS_INTERVAL, |at| at.elapsed());
            let decision_due = state.next_decision.is_some_and(|at| at <= mono);
            if decision_due || (state.schedule_needed && since_pass >= MIN_PASS_INTERVAL) {
                state.schedule(&shared.engine, now, mono);
                last_pass = Some(Instant::now());
            }
            let wait = state.next_wait(now, mono);
            if state.schedule_needed {
                wait.min(MIN_PASS_INTERVAL.saturating_sub(since_pass))
            } else {
                wait
            }
        };
        select! {
            recv(events) -> event => {
                let Ok(event) = event else { return };
                let Some(shared) = shared.upgrade() else { return };
                let now = shared.clock.now();
                let mono = shared.clock.monotonic();
                shared.state.lock().on_engine_event(&shared.engine, event, now, mono);
            }
            recv(woken) -> message => {
                if message.is_err() {
                    return;
                }
                // Many calls may have asked for a look; one pass serves them all.
                while woken.try_recv().is_ok() {}
            }
            default(wait) => {}
        }
    }
}

/// Whether the machine rebooted since the store was last used (the boot id changed); the
/// current boot id is recorded for next time.
fn boot_changed(state_dir: &Path) -> Result<bool> {
    use qmgr_core::trust::{Access, open_private_file};
    use std::io::{Read, Seek, Write};

    let current = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let record = state_dir.join("boot_id");
    let mut file = open_private_file(&record, Access::ReadWriteCreate, "boot id record")?;
    let mut previous = String::new();
    let _ = file.read_to_string(&mut previous);
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = file.write_all(current.as_bytes());
    Ok(!previous.is_empty() && previous != current)
}

fn not_found(what: &str, id: Guid) -> QmgrError {
    QmgrError::from_code(hresult::BG_E_NOT_FOUND).context(format_args!("{what} {id}"))
}

impl State {
    /// Loads the store: finishes interrupted Completes, puts running jobs back in the
    /// queue, and trusts partial files as far as a crash or reboot allows.
    fn recover(&mut self, now: Timestamp, rebooted: bool) -> Result<()> {
        for group in self.store.load_groups()? {
            self.groups.insert(group.id, group);
        }
        for mut job in self.store.load_jobs()? {
            if quarantine_untrusted_paths(&mut job, now) {
                self.store.save_job(&job)?;
                self.add_entry(job);
                continue;
            }
            if job.completing {
                // Complete was committed; finish its renames, then forget the job.
                finish_renames(&job);
                self.store.delete_job(job.id)?;
                continue;
            }
            if job.state.is_active() {
                job.state = JobState::Queued;
            }
            for file in &mut job.files {
                if file.completed {
                    continue;
                }
                let on_disk = file
                    .temp_name
                    .as_deref()
                    .and_then(|t| std::fs::metadata(t).ok())
                    .map(|m| m.len());
                match on_disk {
                    // After a process crash the page cache kept every byte written; after a
                    // reboot only the checkpointed length is known to be good.
                    Some(len) if !rebooted => file.bytes_transferred = len.min(file.bytes_total),
                    Some(_) => {}
                    None => {
                        file.temp_name = None;
                        file.bytes_transferred = 0;
                    }
                }
            }
            self.store.save_job(&job)?;
            if job.state == JobState::TransientError {
                self.arm_timer(&job, now);
            }
            // A job that transferred while no service could complete it (or whose
            // completion a crash interrupted before COMPLETING was marked).
            if job.state == JobState::Transferred && job.auto_complete.is_some() {
                self.auto_complete_due.push(job.id);
            }
            self.add_entry(job);
        }
        self.sweep_temp_files();
        Ok(())
    }

    /// Deletes the temporary files this store recorded that no job holds any more (a crash
    /// came between a Cancel, a Complete or a failed delete and the file's end), and
    /// forgets their names. Nothing else is touched: a `.BIT*.tmp` name this store never
    /// handed out may be another store's or another user's download; and `discard` leaves
    /// whatever belongs to another uid.
    fn sweep_temp_files(&mut self) {
        let held: std::collections::HashSet<&str> = self
            .jobs
            .values()
            .flat_map(|e| e.job.files.iter())
            .filter_map(|f| f.temp_name.as_deref())
            .collect();
        let recorded = match self.store.temp_names() {
            Ok(names) => names,
            Err(error) => {
                eprintln!("qmgr: {error}");
                return;
            }
        };
        let mut gone = Vec::new();
        for name in recorded.into_iter().filter(|n| !held.contains(n.as_str())) {
            let path = Path::new(&name);
            let ours_in_shape = path.is_absolute()
                && path
                    .file_name()
                    .is_some_and(qmgr_core::file::is_temp_file_name);
            if ours_in_shape && let Err(error) = qmgr_transfer::discard(path) {
                eprintln!("qmgr: cannot delete the leftover temporary file {name}: {error}");
                continue;
            }
            gone.push(name);
        }
        if let Err(error) = self.store.forget_temp_names(&gone) {
            eprintln!("qmgr: {error}");
        }
    }

    /// Deletes temporary files of a job that is going away; returns whether every one is
    /// gone. Their names are forgotten only if `engine_let_go` (else the engine might still
    /// make one, and the next start sweeps it).
    fn discard_temp_files<'a>(
        &mut self,
        temps: impl IntoIterator<Item = &'a str>,
        engine_let_go: bool,
    ) -> bool {
        let mut all_gone = true;
        let mut gone = Vec::new();
        for temp in temps {
            if qmgr_transfer::discard(Path::new(temp)).is_ok() {
                gone.push(temp);
            } else {
                all_gone = false;
            }
        }
        if engine_let_go && let Err(error) = self.store.forget_temp_names(&gone) {
            eprintln!("qmgr: {error}");
        }
        all_gone
    }

    fn add_entry(&mut self, job: Job) {
        *self.owned.entry(job.owner_uid).or_default() += 1;
        let id = job.id;
        let entry = Entry {
            job,
            seq: self.next_seq,
            turn: self.next_turn,
            run: None,
            attempts: VecDeque::new(),
            ahead: 0,
            throttled: false,
            complete_error: None,
        };
        self.next_seq += 1;
        self.next_turn += 1;
        self.jobs.insert(id, entry);
    }

    fn handle(
        &mut self,
        engine: &Engine,
        uid: u32,
        request: Request,
        now: Timestamp,
    ) -> Result<Response> {
        // Only a view of a job waiting in line shows its place in it.
        let shows_the_line = match &request {
            Request::GetJob { job } => self
                .jobs
                .get(job)
                .is_some_and(|e| e.job.state == JobState::Queued),
            Request::ListJobs { .. } | Request::GetGroup { .. } | Request::ListGroups { .. } => {
                true
            }
            _ => false,
        };
        if shows_the_line {
            self.number_the_line();
        }
        match request {
            Request::Ping => Ok(Response::Pong {
                service_version: env!("CARGO_PKG_VERSION").to_owned(),
            }),
            Request::CreateJob {
                display_name,
                job_type,
                umask,
            } => self.create_job(uid, &display_name, job_type, None, umask, now),
            Request::GetJob { job } => {
                let entry = self.entry(uid, job)?;
                Ok(Response::Job(Box::new(entry.view(&self.view_context()))))
            }
            Request::ListJobs { all_users, after } => {
                if all_users && uid != ROOT {
                    return Err(QmgrError::from_code(hresult::E_ACCESSDENIED)
                        .context("listing every user's jobs needs root"));
                }
                let cursor = |e: &Entry| ListCursor {
                    key: i64::try_from(e.seq).unwrap_or(i64::MAX),
                    id: e.job.id,
                };
                let mut entries: Vec<(ListCursor, &Entry)> = self
                    .jobs
                    .values()
                    .filter(|e| all_users || e.job.owner_uid == uid)
                    .map(|e| (cursor(e), e))
                    .filter(|(at, _)| after.is_none_or(|after| *at > after))
                    .collect();
                entries.sort_unstable_by_key(|(at, _)| *at);
                let context = self.view_context();
                let (jobs, next) = page(entries, |e| e.view(&context), encoded_len);
                Ok(Response::JobPage { jobs, next })
            }
            Request::AddFiles { job, files } => self.add_files(uid, job, &files, now),
            Request::Resume { job } => self.change(engine, uid, job, now, Job::resume),
            Request::Suspend { job } => self.change(engine, uid, job, now, Job::suspend),
            Request::Cancel { job } => self.cancel(engine, uid, job, now),
            Request::Complete { job } => self.complete(engine, uid, job, Overwrite::Replace, now),
            Request::CompleteWithoutReplacing { job } => {
                self.complete(engine, uid, job, Overwrite::NoClobber, now)
            }
            Request::TakeOwnership { job } => {
                let owner = self.entry(uid, job)?.job.owner_uid;
                if owner != uid {
                    return Err(QmgrError::from_code(hresult::E_NOTIMPL)
                        .context("taking over another user's job is not supported yet"));
                }
                self.change(engine, uid, job, now, |job, now| job.change_owner(uid, now))
            }
            Request::SetJob { job, change } => self.set_job(engine, uid, job, change, now),
            Request::CreateGroup { group } => {
                if self.groups.contains_key(&group) {
                    return Err(QmgrError::invalid_arg(format!(
                        "group {group} already exists"
                    )));
                }
                self.check_job_quota(uid)?;
                let new = Group::new(group, uid, now);
                self.store.save_group(&new)?;
                self.groups.insert(group, new);
                Ok(Response::Done(hresult::S_OK))
            }
            Request::GetGroup { group } => Ok(Response::Group(Box::new(
                self.group_view(self.group(uid, group)?, &self.view_context()),
            ))),
            Request::ListGroups { after } => {
                let mut groups: Vec<(ListCursor, &Group)> = self
                    .groups
                    .values()
                    .filter(|g| g.owner_uid == uid || uid == ROOT)
                    .map(|g| {
                        let at = ListCursor {
                            key: g.created.0,
                            id: g.id,
                        };
                        (at, g)
                    })
                    .filter(|(at, _)| after.is_none_or(|after| *at > after))
                    .collect();
                groups.sort_unstable_by_key(|(at, _)| *at);
                let context = self.view_context();
                let (groups, next) = page(groups, |g| self.group_view(g, &context), encoded_len);
                Ok(Response::GroupPage { groups, next })
            }
            Request::CreateGroupJob { group, job, umask } => {
                if self.group(uid, group)?.job.is_some() {
                    return Err(
                        QmgrError::from_code(hresult::E_NOTIMPL).context(format_args!(
                            "group {group} already has its job (a group holds one job)"
                        )),
                    );
                }
                if self.jobs.contains_key(&job) {
                    return Err(QmgrError::invalid_arg(format!(
                        "a job {job} already exists"
                    )));
                }
                self.create_job(uid, "", JobType::Download, Some((group, job)), umask, now)?;
                let mut updated = self.group(uid, group)?.clone();
                updated.job = Some(job);
                self.store.save_group(&updated)?;
                self.groups.insert(group, updated);
                Ok(Response::Done(hresult::S_OK))
            }
            Request::SetGroup { group, change } => {
                let mut updated = self.group(uid, group)?.clone();
                // The legacy API knows no BG_E_* codes: too long is E_INVALIDARG there.
                match change {
                    GroupChange::DisplayName(name) => {
                        check_length(
                            &name,
                            MAX_DISPLAY_NAME_CHARS,
                            "group display name",
                            hresult::E_INVALIDARG,
                        )?;
                        updated.display_name = name;
                    }
                    GroupChange::Description(text) => {
                        check_length(
                            &text,
                            MAX_DESCRIPTION_CHARS,
                            "group description",
                            hresult::E_INVALIDARG,
                        )?;
                        updated.description = text;
                    }
                    GroupChange::NotifyFlags(flags) => updated.notify_flags = flags,
                    GroupChange::NotifyClsid(clsid) => updated.notify_clsid = clsid,
                }
                self.store.save_group(&updated)?;
                self.groups.insert(group, updated);
                Ok(Response::Done(hresult::S_OK))
            }
            Request::ResumeGroup { group } => match self.group(uid, group)?.job {
                Some(job) => self.change(engine, uid, job, now, Job::resume),
                None => Ok(Response::Done(hresult::S_OK)),
            },
            Request::SuspendGroup { group } => match self.group(uid, group)?.job {
                Some(job) => self.change(engine, uid, job, now, Job::suspend),
                None => Ok(Response::Done(hresult::S_OK)),
            },
            Request::CancelGroup { group } => {
                if let Some(job) = self.group(uid, group)?.job {
                    // Files of a legacy group are finished one by one; only the rest goes.
                    if self.jobs.contains_key(&job) {
                        self.cancel(engine, uid, job, now)?;
                    }
                }
                self.store.delete_group(group)?;
                self.groups.remove(&group);
                Ok(Response::Done(hresult::S_OK))
            }
            Request::SwitchGroupToForeground { group } => {
                let mut updated = self.group(uid, group)?.clone();
                updated.foreground = true;
                self.store.save_group(&updated)?;
                self.groups.insert(group, updated.clone());
                match updated.job {
                    Some(job) => self.set_job(
                        engine,
                        uid,
                        job,
                        JobChange::Priority(JobPriority::Foreground),
                        now,
                    ),
                    None => Ok(Response::Done(hresult::S_OK)),
                }
            }
        }
    }

    fn view_context(&self) -> ViewContext {
        ViewContext {
            global_cap: self.config.bandwidth_limit,
            network_up: std::cell::OnceCell::new(),
        }
    }

    fn entry(&self, uid: u32, id: Guid) -> Result<&Entry> {
        let entry = self.jobs.get(&id).ok_or_else(|| not_found("job", id))?;
        if entry.job.owner_uid != uid && uid != ROOT {
            return Err(QmgrError::from_code(hresult::E_ACCESSDENIED)
                .context(format_args!("job {id} belongs to another user")));
        }
        Ok(entry)
    }

    fn group(&self, uid: u32, id: Guid) -> Result<&Group> {
        let group = self.groups.get(&id).ok_or_else(|| {
            QmgrError::from_code(hresult::QM_E_ITEM_NOT_FOUND).context(format_args!("group {id}"))
        })?;
        if group.owner_uid != uid && uid != ROOT {
            return Err(QmgrError::from_code(hresult::E_ACCESSDENIED)
                .context(format_args!("group {id} belongs to another user")));
        }
        Ok(group)
    }

    fn create_job(
        &mut self,
        uid: u32,
        display_name: &str,
        job_type: JobType,
        group: Option<(Guid, Guid)>,
        umask: Option<u32>,
        now: Timestamp,
    ) -> Result<Response> {
        if job_type != JobType::Download {
            return Err(QmgrError::from_code(hresult::E_NOTIMPL)
                .context("upload jobs are not supported yet"));
        }
        // A group's job takes the place its group already counts for.
        if group.is_none() {
            self.check_job_quota(uid)?;
        }
        let defaults = &self.config.job_defaults;
        let settings = qmgr_core::JobSettings {
            minimum_retry_delay: defaults.minimum_retry_delay,
            no_progress_timeout: defaults.no_progress_timeout,
            parallel_files: defaults.parallel_files,
            ..qmgr_core::JobSettings::default()
        };
        let id = group.map_or_else(Guid::new_random, |(_, job)| job);
        let mut job = Job::new(id, display_name, job_type, uid, settings, now)?;
        job.priority = defaults.priority;
        job.group = group.map(|(group, _)| group);
        // The files get the mode the creating process would give them (DESIGN "Decisions,
        // second round"), not the one of whoever started qmgrd.
        job.umask = umask
            .filter(|umask| *umask <= 0o777)
            .unwrap_or(qmgr_core::job::DEFAULT_UMASK);
        self.store.insert_job(&job)?;
        self.add_entry(job);
        Ok(Response::JobCreated(id))
    }

    /// `max_jobs_per_user` (root is unlimited): a user's jobs and legacy groups count, a
    /// group together with its job once.
    fn check_job_quota(&self, uid: u32) -> Result<()> {
        if uid == ROOT {
            return Ok(());
        }
        let jobs = self.owned.get(&uid).copied().unwrap_or(0);
        let groups = self
            .groups
            .values()
            .filter(|g| g.owner_uid == uid && g.job.is_none_or(|job| !self.jobs.contains_key(&job)))
            .count();
        let limit = self.config.max_jobs_per_user as usize;
        if jobs + groups >= limit {
            return Err(
                QmgrError::from_code(hresult::BG_E_TOO_MANY_JOBS_PER_USER).context(format_args!(
                    "you have {jobs} jobs and {groups} legacy groups without one; the limit is \
                     {limit} (config key max_jobs_per_user)"
                )),
            );
        }
        Ok(())
    }

    fn add_files(
        &mut self,
        uid: u32,
        id: Guid,
        files: &[NewFile],
        now: Timestamp,
    ) -> Result<Response> {
        let max_files = self.config.max_files_per_job;
        let mut job = self.entry(uid, id)?.job.clone();
        // The job is a copy: a refused file leaves the stored job as it was (all or nothing).
        for file in files {
            job.add_file(&file.remote_name, &file.local_name, max_files, now)?;
            check_local_directory(&file.local_name)?;
        }
        self.commit(id, job, now)?;
        self.schedule_needed = true;
        Ok(Response::Done(hresult::S_OK))
    }

    /// A call that moves the job through the state machine.
    fn change(
        &mut self,
        engine: &Engine,
        uid: u32,
        id: Guid,
        now: Timestamp,
        call: impl FnOnce(&mut Job, Timestamp) -> Result<qmgr_core::HResult>,
    ) -> Result<Response> {
        let mut job = self.entry(uid, id)?.job.clone();
        let code = call(&mut job, now)?;
        if !matches!(
            job.state,
            JobState::Queued | JobState::Connecting | JobState::Transferring
        ) {
            self.stop_transfers(engine, id);
        }
        self.commit(id, job, now)?;
        self.schedule_needed = true;
        Ok(Response::Done(code))
    }

    /// Saves a changed job, keeps its timers right and tells subscribers.
    fn commit(&mut self, id: Guid, job: Job, now: Timestamp) -> Result<()> {
        self.store.save_job(&job)?;
        self.batcher.forget(id);
        let entry = self.jobs.get_mut(&id).expect("committed jobs exist");
        let before = entry.job.state;
        entry.job = job;
        let after = entry.job.state;
        if before != after {
            entry.complete_error = None;
            if after == JobState::Transferred && entry.job.auto_complete.is_some() {
                self.auto_complete_due.push(id);
            }
        }
        if before == JobState::TransientError && after != JobState::TransientError {
            self.timers.retain(|(_, job)| *job != id);
        }
        self.announce(id, before, now);
        Ok(())
    }

    fn stop_transfers(&mut self, engine: &Engine, id: Guid) {
        if let Some(entry) = self.jobs.get_mut(&id)
            && let Some(run) = entry.run.take()
        {
            entry.throttled = false;
            for transfer in run.transfers {
                let _ = engine.cancel(transfer);
                self.transfers.remove(&transfer);
            }
        }
    }

    fn cancel(&mut self, engine: &Engine, uid: u32, id: Guid, now: Timestamp) -> Result<Response> {
        let mut job = self.entry(uid, id)?.job.clone();
        let mut code = job.cancel(now)?;
        self.stop_transfers(engine, id);
        // The engine may not have started a transfer it was just told to cancel (or one of
        // an earlier Suspend): once it has applied every command, it makes no more files.
        let engine_let_go = engine.sync(ENGINE_SYNC_TIMEOUT);
        // Every temporary file goes: unfinished ones and finished ones not yet renamed.
        let temps: Vec<String> = job
            .files
            .iter()
            .filter_map(|f| f.temp_name.clone())
            .collect();
        if !self.discard_temp_files(temps.iter().map(String::as_str), engine_let_go) {
            code = hresult::BG_S_UNABLE_TO_DELETE_FILES;
        }
        self.forget(id, job, now)?;
        Ok(Response::Done(code))
    }

    fn complete(
        &mut self,
        engine: &Engine,
        uid: u32,
        id: Guid,
        overwrite: Overwrite,
        now: Timestamp,
    ) -> Result<Response> {
        let mut job = self.entry(uid, id)?.job.clone();
        // Decide first (the state machine may refuse), rename, then commit: a failed rename
        // leaves the job as it was so the caller can fix things and call again.
        let mut trial = job.clone();
        let code = trial.complete(now)?;
        self.stop_transfers(engine, id);
        let engine_let_go = engine.sync(ENGINE_SYNC_TIMEOUT);
        job.completing = true;
        self.store.save_job_durably(&job)?;
        if let Err(error) = rename_finished(&mut job, overwrite) {
            // The files renamed so far stay renamed (as on Windows); the job waits for
            // another Complete or a Cancel.
            job.completing = false;
            self.commit(id, job, now)?;
            return Err(error);
        }
        let mut code = code;
        let renamed: Vec<&str> = self.jobs[&id]
            .job
            .files
            .iter()
            .filter(|f| f.completed)
            .filter_map(|f| f.temp_name.as_deref())
            .collect();
        if let Err(error) = self.store.forget_temp_names(&renamed) {
            eprintln!("qmgr: {error}");
        }
        let unfinished: Vec<String> = job
            .files
            .iter()
            .filter(|f| !f.completed)
            .filter_map(|f| f.temp_name.clone())
            .collect();
        if !self.discard_temp_files(unfinished.iter().map(String::as_str), engine_let_go) {
            code = hresult::BG_S_UNABLE_TO_DELETE_FILES;
        }
        self.forget(id, trial, now)?;
        Ok(Response::Done(code))
    }

    /// The job left the queue (ACKNOWLEDGED or CANCELLED).
    fn forget(&mut self, id: Guid, job: Job, now: Timestamp) -> Result<()> {
        self.store.delete_job(id)?;
        self.batcher.forget(id);
        self.timers.retain(|(_, job)| *job != id);
        let before = self.jobs.get(&id).map_or(job.state, |e| e.job.state);
        if let Some(entry) = self.jobs.get_mut(&id) {
            entry.job = job;
        }
        self.announce(id, before, now);
        if let Some(entry) = self.jobs.remove(&id)
            && let Some(count) = self.owned.get_mut(&entry.job.owner_uid)
        {
            *count = count.saturating_sub(1);
        }
        self.schedule_needed = true;
        Ok(())
    }

    fn set_job(
        &mut self,
        engine: &Engine,
        uid: u32,
        id: Guid,
        change: JobChange,
        now: Timestamp,
    ) -> Result<Response> {
        let mut job = self.entry(uid, id)?.job.clone();
        job.ensure_mutable()?;
        let mut restart = false;
        match change {
            JobChange::DisplayName(name) => job.set_display_name(&name, now)?,
            JobChange::Description(text) => job.set_description(&text, now)?,
            JobChange::Priority(priority) => {
                restart = (priority == JobPriority::Foreground)
                    != (job.priority == JobPriority::Foreground);
                job.set_priority(priority, now)?;
            }
            JobChange::MinimumRetryDelay(delay) => job.set_minimum_retry_delay(delay, now)?,
            JobChange::NoProgressTimeout(timeout) => job.set_no_progress_timeout(timeout, now)?,
            JobChange::NotifyFlags(flags) => job.set_notify_flags(flags, now)?,
            JobChange::NotifyCommand(command) => {
                if let Some(command) = &command {
                    command.validate()?;
                }
                job.settings.notify_command = command;
            }
            JobChange::Proxy(proxy) => {
                check_proxy(&proxy)?;
                job.settings.proxy = proxy;
            }
            JobChange::CustomHeaders(headers) => {
                if let Some(text) = &headers {
                    check_length(
                        text,
                        MAX_CUSTOM_HEADERS_CHARS,
                        "custom header block",
                        hresult::BG_E_STRING_TOO_LONG,
                    )?;
                    parse_headers(text)?;
                }
                job.settings.custom_headers = headers;
            }
            JobChange::SecurityFlags(flags) => job.settings.security_flags = flags,
            JobChange::MaxDownloadSize(size) => job.settings.max_download_size = size,
            JobChange::ParallelFiles(count) => {
                if !(1..=64).contains(&count) {
                    return Err(QmgrError::invalid_arg(format!(
                        "parallel files must be 1 to 64, not {count}"
                    )));
                }
                job.settings.parallel_files = count;
            }
            JobChange::BandwidthLimit(limit) => {
                if limit == Some(0) {
                    return Err(QmgrError::invalid_arg(
                        "a bandwidth limit of 0 would stop the job; suspend it instead",
                    ));
                }
                job.settings.bandwidth_limit = limit;
            }
            JobChange::ClientCertificate(certificate) => {
                match &certificate {
                    Some(setting) => check_client_certificate(&self.paths, setting)?,
                    None if job.settings.client_certificate.is_none() => {
                        return Ok(Response::Done(hresult::S_FALSE));
                    }
                    None => {}
                }
                job.settings.client_certificate = certificate;
                restart = true;
            }
            JobChange::AutoComplete(mark) => {
                job.auto_complete = mark;
                if mark.is_some() && job.state == JobState::Transferred {
                    self.auto_complete_due.push(id);
                }
            }
            JobChange::FirstRetryDelay(delay) => job.set_first_retry_delay(delay, now)?,
            JobChange::RemoteName { file, remote_name } => {
                qmgr_core::file::validate_remote_name(&remote_name)?;
                let record = job.files.get_mut(file as usize).ok_or_else(|| {
                    QmgrError::invalid_arg(format!("job {id} has no file {file}"))
                })?;
                record.remote_name = remote_name;
                restart = true;
            }
        }
        job.times.modified = now;
        if restart {
            // Throttling and sources are fixed per transfer: start again with the new ones.
            self.stop_transfers(engine, id);
            if job.state.is_active() {
                job.state = JobState::Queued;
            }
        }
        self.commit(id, job, now)?;
        self.share_job_limit(engine, id);
        self.schedule_needed = true;
        Ok(Response::Done(hresult::S_OK))
    }

    fn group_view(&self, group: &Group, context: &ViewContext) -> GroupView {
        let job = group
            .job
            .and_then(|id| self.jobs.get(&id))
            .map(|e| e.view(context));
        GroupView {
            group: group.clone(),
            job,
        }
    }

    /// Tells subscribers what changed and runs the notification command when due.
    fn announce(&mut self, id: Guid, before: JobState, _now: Timestamp) {
        let Some(entry) = self.jobs.get(&id) else {
            return;
        };
        let job = &entry.job;
        let mut kinds = vec![NotificationKind::Modification];
        if before != job.state {
            match job.state {
                JobState::Transferred => kinds.push(NotificationKind::Transferred),
                JobState::Error => kinds.push(NotificationKind::Error),
                _ => {}
            }
        }
        let owner = job.owner_uid;
        let state = job.state;
        self.subscribers.retain(|subscriber| {
            if subscriber.uid != owner && subscriber.uid != ROOT {
                return true;
            }
            kinds.iter().all(|kind| {
                subscriber.sender.push(Notification {
                    job: id,
                    kind: *kind,
                    state,
                })
            })
        });
        let flags = job.settings.notify_flags;
        let wanted = match state {
            JobState::Transferred => flags & notify::JOB_TRANSFERRED != 0,
            JobState::Error => flags & notify::JOB_ERROR != 0,
            _ => false,
        };
        if before != state
            && wanted
            && flags & notify::DISABLE == 0
            && let Some(command) = &job.settings.notify_command
        {
            // A failure to start the program is not the job's failure; it is logged. A
            // command from an older store that breaks today's rules (a relative program)
            // is not run at all.
            if let Err(error) = command.validate() {
                eprintln!(
                    "qmgr: job {id}: not running the notification command: {}",
                    error.description
                );
            } else if let Err(error) = command_line::run(command) {
                eprintln!(
                    "qmgr: job {id}: cannot run the notification command {}: {error}",
                    command.program
                );
            }
        }
    }

    fn notify_file(&mut self, id: Guid, file: usize) {
        let Some(entry) = self.jobs.get(&id) else {
            return;
        };
        let (owner, state) = (entry.job.owner_uid, entry.job.state);
        let kind = NotificationKind::FileTransferred {
            file: u32::try_from(file).unwrap_or(u32::MAX),
        };
        self.subscribers.retain(|s| {
            s.uid != owner && s.uid != ROOT
                || s.sender.push(Notification {
                    job: id,
                    kind,
                    state,
                })
        });
    }

    fn arm_timer(&mut self, job: &Job, now: Timestamp) {
        self.timers.retain(|(_, id)| *id != job.id);
        if job.state != JobState::TransientError {
            return;
        }
        let retry = job.retry_at.unwrap_or(now);
        let give_up = job
            .no_progress_since
            .map(|since| since.plus(job.settings.no_progress_timeout));
        let at = give_up.map_or(retry, |g| g.min(retry));
        self.timers.insert((at, job.id));
    }

    fn run_timers(&mut self, now: Timestamp) {
        while let Some(&(at, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let Some(entry) = self.jobs.get_mut(&id) else {
                continue;
            };
            let before = entry.job.state;
            if let Outcome::Apply { .. } = entry.job.on_timer(now) {
                let job = entry.job.clone();
                if let Err(error) = self.store.save_job(&job) {
                    eprintln!("qmgr: {error}");
                }
                self.announce(id, before, now);
                self.schedule_needed = true;
            }
            if let Some(entry) = self.jobs.get(&id) {
                let job = entry.job.clone();
                self.arm_timer(&job, now);
            }
        }
    }

    /// Completes the auto-complete jobs that reached TRANSFERRED. A job that cannot be
    /// completed (a rename failed, or `--no-clobber` met an existing file) stays
    /// TRANSFERRED and says why in its view, until a Complete or a Cancel.
    fn run_auto_completes(&mut self, engine: &Engine, now: Timestamp) {
        for id in std::mem::take(&mut self.auto_complete_due) {
            let Some(entry) = self.jobs.get(&id) else {
                continue;
            };
            let (owner, mark) = (entry.job.owner_uid, entry.job.auto_complete);
            let Some(mark) = mark.filter(|_| entry.job.state == JobState::Transferred) else {
                continue;
            };
            let overwrite = match mark {
                AutoComplete::Replace => Overwrite::Replace,
                AutoComplete::NoClobber => Overwrite::NoClobber,
            };
            if let Err(error) = self.complete(engine, owner, id, overwrite, now) {
                eprintln!("qmgr: job {id}: cannot complete it: {}", error.description);
                if let Some(entry) = self.jobs.get_mut(&id) {
                    entry.complete_error = Some(error);
                }
                let before = self
                    .jobs
                    .get(&id)
                    .map_or(JobState::Transferred, |e| e.job.state);
                self.announce(id, before, now);
            }
        }
    }

    /// Cancels jobs nobody touched for `job_inactivity_timeout` (90 days by default), as
    /// Windows does, and plans the next look for when the next job would expire.
    fn expire_inactive(&mut self, engine: &Engine, now: Timestamp) {
        if now < self.next_expiry_check {
            return;
        }
        let timeout = self.config.job_inactivity_timeout;
        let (expired, live): (Vec<&Entry>, Vec<&Entry>) = self
            .jobs
            .values()
            .partition(|e| now.since(e.job.times.modified) >= timeout);
        let next = live
            .iter()
            .map(|e| e.job.times.modified.plus(timeout))
            .min();
        let expired: Vec<(Guid, u32)> = expired
            .iter()
            .map(|e| (e.job.id, e.job.owner_uid))
            .collect();
        self.next_expiry_check = next.unwrap_or(now.plus(timeout));
        for (id, owner) in expired {
            eprintln!(
                "qmgr: job {id} was not touched for {} days: cancelling it",
                timeout.as_secs() / 86_400
            );
            if let Err(error) = self.cancel(engine, owner, id, now) {
                eprintln!("qmgr: cannot cancel the inactive job {id}: {error}");
            }
        }
    }

    /// Writes pending progress, after making the bytes durable (fdatasync of each partial
    /// file) so a recorded length never runs ahead of the data.
    fn flush_progress(&mut self, mono: Duration) {
        let updates = self.batcher.take(mono);
        let mut durable: Vec<ProgressUpdate> = Vec::with_capacity(updates.len());
        for update in updates {
            let temp = self
                .jobs
                .get(&update.job)
                .and_then(|e| e.job.files.get(update.file as usize))
                .and_then(|f| f.temp_name.clone());
            if let Some(temp) = temp
                && qmgr_transfer::sync_partial(Path::new(&temp)).is_ok()
            {
                durable.push(update);
            }
        }
        if let Err(error) = self.store.save_progress(&durable) {
            eprintln!("qmgr: {error}");
        }
    }

    fn next_wait(&self, now: Timestamp, mono: Duration) -> Duration {
        let mut wait = Duration::from_secs(3600);
        if let Some((at, _)) = self.timers.first() {
            wait = wait.min(at.since(now));
        }
        if let Some(due) = self.batcher.due_at() {
            wait = wait.min(due.saturating_sub(mono));
        }
        if let Some(at) = self.next_decision {
            wait = wait.min(at.saturating_sub(mono));
        }
        wait = wait.min(self.next_expiry_check.since(now));
        wait
    }

    /// Decides which jobs run and starts or stops transfers accordingly.
    fn schedule(&mut self, engine: &Engine, now: Timestamp, mono: Duration) {
        self.schedule_needed = false;
        let candidates: Vec<Candidate> = self
            .jobs
            .values()
            .filter(|e| {
                matches!(
                    e.job.state,
                    JobState::Queued | JobState::Connecting | JobState::Transferring
                )
            })
            .map(|e| Candidate {
                id: e.job.id,
                priority: e.job.priority,
                turn: e.turn,
                running: e.run.as_ref().map(|run| Running {
                    since: run.since,
                    can_yield: run
                        .transfers
                        .iter()
                        .all(|t| self.transfers.get(t).is_none_or(|s| s.can_yield)),
                }),
            })
            .collect();
        let limits = Limits {
            max_background: self.config.max_background_jobs as usize,
            time_slice: self.config.time_slice,
        };
        let plan = schedule::plan(&candidates, limits, mono);
        self.next_decision = plan.next_decision;
        for id in plan.stop {
            self.stop_transfers(engine, id);
            let turn = self.next_turn;
            self.next_turn += 1;
            if let Some(entry) = self.jobs.get_mut(&id) {
                entry.turn = turn;
                let before = entry.job.state;
                entry.job.apply(qmgr_core::Event::SliceEnded, now);
                let job = entry.job.clone();
                let _ = self.store.save_job(&job);
                self.announce(id, before, now);
            }
        }
        for id in plan.start {
            self.start_job(engine, id, now, mono);
        }
        self.line_stale = true;
    }

    /// Records for each waiting background job how many are ahead of it, in the order the
    /// scheduler serves them. Done when someone looks, at most once per scheduling pass, so
    /// neither a burst of calls nor a view pays for sorting the whole queue each time.
    fn number_the_line(&mut self) {
        if !self.line_stale {
            return;
        }
        self.line_stale = false;
        let mut line: Vec<(JobPriority, bool, u64, Guid)> = self
            .jobs
            .values()
            .filter(|e| e.job.priority != JobPriority::Foreground)
            .filter(|e| {
                matches!(
                    e.job.state,
                    JobState::Queued | JobState::Connecting | JobState::Transferring
                )
            })
            .map(|e| (e.job.priority, e.run.is_none(), e.turn, e.job.id))
            .collect();
        line.sort_unstable();
        for (position, (_, _, _, id)) in line.into_iter().enumerate() {
            if let Some(entry) = self.jobs.get_mut(&id) {
                entry.ahead = u32::try_from(position).unwrap_or(u32::MAX);
            }
        }
    }

    /// Gives a job its slot: CONNECTING, and transfers for its next files.
    fn start_job(&mut self, engine: &Engine, id: Guid, now: Timestamp, mono: Duration) {
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        let before = entry.job.state;
        if before == JobState::Queued {
            entry.job.start_transfer(now);
        }
        entry.run = Some(Run {
            since: mono,
            transfers: Vec::new(),
        });
        self.announce(id, before, now);
        self.fill_transfers(engine, id, now);
    }

    /// Starts transfers for the job's unfinished files, up to its `parallel_files`.
    fn fill_transfers(&mut self, engine: &Engine, id: Guid, now: Timestamp) {
        let Some(entry) = self.jobs.get(&id) else {
            return;
        };
        let Some(run) = &entry.run else { return };
        let running: Vec<usize> = run
            .transfers
            .iter()
            .filter_map(|t| self.transfers.get(t))
            .map(|s| s.file)
            .collect();
        let free = (entry.job.settings.parallel_files as usize).saturating_sub(running.len());
        let next: Vec<usize> = entry
            .job
            .files
            .iter()
            .enumerate()
            .filter(|(i, f)| !f.completed && !running.contains(i))
            .map(|(i, _)| i)
            .take(free)
            .collect();
        for index in next {
            if let Err(error) = self.name_temp_file(id, index) {
                self.fail_job(engine, id, index, error, false, None, now);
                return;
            }
            let request = transfer_request(&self.jobs[&id].job, index, &self.paths);
            match request.and_then(|r| engine.submit(r)) {
                Ok(transfer) => {
                    let file = &self.jobs[&id].job.files[index];
                    let started_at = file.bytes_transferred;
                    self.transfers.insert(
                        transfer,
                        Slot {
                            job: id,
                            file: index,
                            can_yield: started_at == 0,
                            started_at,
                            http_status: None,
                            restart: None,
                            throttled: false,
                        },
                    );
                    if let Some(run) = self.jobs.get_mut(&id).and_then(|e| e.run.as_mut()) {
                        run.transfers.push(transfer);
                    }
                }
                Err(error) => {
                    self.fail_job(engine, id, index, error, false, None, now);
                    return;
                }
            }
        }
        self.share_job_limit(engine, id);
    }

    /// Gives file `index` of job `id` its temporary file name, recorded in the store before
    /// the engine creates the file: whenever a crash comes, no temporary file exists that
    /// the store does not know of (see `sweep_temp_files`).
    fn name_temp_file(&mut self, id: Guid, index: usize) -> Result<()> {
        let Some(entry) = self.jobs.get_mut(&id) else {
            return Ok(());
        };
        let file = &mut entry.job.files[index];
        if file.temp_name.is_some() {
            return Ok(());
        }
        let temp = qmgr_transfer::new_temp_path(Path::new(&file.local_name))?;
        let temp = temp.to_string_lossy().into_owned();
        file.temp_name = Some(temp.clone());
        file.bytes_transferred = 0;
        let job = entry.job.clone();
        self.store.save_job_with_temp_name(&job, &temp)
    }

    /// Divides the job's own bandwidth cap among its running transfers.
    fn share_job_limit(&self, engine: &Engine, id: Guid) {
        let Some(entry) = self.jobs.get(&id) else {
            return;
        };
        let Some(run) = &entry.run else { return };
        let count = u64::try_from(run.transfers.len())
            .unwrap_or(u64::MAX)
            .max(1);
        let share = entry
            .job
            .settings
            .bandwidth_limit
            .map(|limit| (limit / count).max(1));
        for transfer in &run.transfers {
            let _ = engine.set_transfer_limit(*transfer, share);
        }
    }

    fn on_engine_event(
        &mut self,
        engine: &Engine,
        event: EngineEvent,
        now: Timestamp,
        mono: Duration,
    ) {
        let transfer = event.id();
        let Some(slot) = self.transfers.get_mut(&transfer) else {
            // A stopped transfer's engine made a file under a name of its own (its recorded
            // one was taken): no job holds it, so it goes.
            if let EngineEvent::Started { temp_path, .. } = &event {
                let temp = temp_path.to_string_lossy();
                let held = self
                    .jobs
                    .values()
                    .flat_map(|e| e.job.files.iter())
                    .any(|f| f.temp_name.as_deref() == Some(&*temp));
                if !held {
                    let _ = qmgr_transfer::discard(temp_path);
                }
            }
            return;
        };
        let (id, index) = (slot.job, slot.file);
        match event {
            EngineEvent::Started { temp_path, .. } => {
                let Some(entry) = self.jobs.get_mut(&id) else {
                    return;
                };
                let temp = temp_path.to_string_lossy().into_owned();
                let file = &mut entry.job.files[index];
                if file.temp_name.as_deref() == Some(temp.as_str()) {
                    return;
                }
                // The recorded name was taken by something not ours: the engine made
                // another, which is recorded now.
                let replaced = file.temp_name.replace(temp.clone());
                let job = entry.job.clone();
                let _ = self.store.save_job_with_temp_name(&job, &temp);
                if let Some(replaced) = replaced {
                    let _ = self.store.forget_temp_names(&[replaced]);
                }
            }
            EngineEvent::Responded {
                total,
                validator,
                resumed_at,
                restart,
                ..
            } => {
                // A file can stop and continue later if the server answered a range request
                // with 206, or gave what a later range request needs (size and validator).
                slot.can_yield = (resumed_at > 0 && restart.is_none())
                    || (total.is_some() && !validator.is_empty());
                if let Some(reason) = restart {
                    // The bytes held are dropped: this attempt counts from zero, and says why.
                    slot.started_at = 0;
                    slot.restart = Some(format!("restarted from zero: {reason}"));
                }
                let Some(entry) = self.jobs.get_mut(&id) else {
                    return;
                };
                if restart.is_some() {
                    entry.job.restart_file(index, validator.clone());
                }
                entry.job.record_response(index, total, validator);
                let before = entry.job.state;
                entry.job.record_progress(index, resumed_at, now);
                let job = entry.job.clone();
                // A restart from zero is committed before its first byte is written.
                let _ = self.store.save_job(&job);
                self.announce(id, before, now);
            }
            EngineEvent::Progress {
                bytes_on_disk,
                throttled,
                ..
            } => {
                slot.throttled = throttled;
                let Some(entry) = self.jobs.get_mut(&id) else {
                    return;
                };
                entry.throttled = entry.run.as_ref().is_some_and(|run| {
                    run.transfers
                        .iter()
                        .any(|t| self.transfers.get(t).is_some_and(|s| s.throttled))
                });
                let before = entry.job.state;
                entry.job.record_progress(index, bytes_on_disk, now);
                self.batcher
                    .record(id, u32::try_from(index).unwrap_or(u32::MAX), bytes_on_disk);
                if before != entry.job.state
                    || entry.job.settings.notify_flags & notify::JOB_MODIFICATION != 0
                {
                    self.announce(id, before, now);
                }
                let _ = mono;
            }
            EngineEvent::Completed {
                temp_path, bytes, ..
            } => {
                let slot = self.transfers.remove(&transfer).expect("slot present");
                self.record_attempt(id, index, &slot, bytes, None, None, now);
                let Some(entry) = self.jobs.get_mut(&id) else {
                    return;
                };
                if let Some(run) = entry.run.as_mut() {
                    run.transfers.retain(|t| *t != transfer);
                }
                entry.job.record_progress(index, bytes, now);
                if entry.job.group.is_some() {
                    // Legacy groups have no Complete: each file gets its name when it finishes.
                    let local = entry.job.files[index].local_name.clone();
                    if let Err(error) = qmgr_transfer::finalize(
                        &temp_path,
                        Path::new(&local),
                        Overwrite::Replace,
                        entry.job.umask,
                    ) {
                        self.fail_job(engine, id, index, error, false, None, now);
                        return;
                    }
                    if let Some(entry) = self.jobs.get_mut(&id) {
                        entry.job.files[index].temp_name = None;
                    }
                    let _ = self.store.forget_temp_names(&[temp_path.to_string_lossy()]);
                }
                let Some(entry) = self.jobs.get_mut(&id) else {
                    return;
                };
                let before = entry.job.state;
                entry.job.file_done(index, now);
                let job = entry.job.clone();
                let _ = self.store.save_job(&job);
                self.batcher.forget(id);
                self.notify_file(id, index);
                self.announce(id, before, now);
                if job.state == JobState::Transferred {
                    if let Some(entry) = self.jobs.get_mut(&id) {
                        entry.run = None;
                        entry.throttled = false;
                        entry.complete_error = None;
                    }
                    if job.auto_complete.is_some() {
                        self.auto_complete_due.push(id);
                    }
                    self.schedule_needed = true;
                } else {
                    self.fill_transfers(engine, id, now);
                }
            }
            EngineEvent::Failed { error, .. } => {
                let slot = self.transfers.remove(&transfer).expect("slot present");
                let bytes = self
                    .jobs
                    .get(&id)
                    .map_or(0, |e| e.job.files[index].bytes_transferred);
                self.record_attempt(
                    id,
                    index,
                    &slot,
                    bytes,
                    error.http_status,
                    Some(error.error.clone()),
                    now,
                );
                self.fail_job(
                    engine,
                    id,
                    index,
                    error.error,
                    error.transient,
                    error.retry_after,
                    now,
                );
            }
            EngineEvent::Cancelled { .. } => {
                self.transfers.remove(&transfer);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record_attempt(
        &mut self,
        id: Guid,
        file: usize,
        slot: &Slot,
        bytes: u64,
        http_status: Option<u16>,
        error: Option<QmgrError>,
        now: Timestamp,
    ) {
        if let Some(entry) = self.jobs.get_mut(&id) {
            if entry.attempts.len() == ATTEMPTS_KEPT {
                entry.attempts.pop_front();
            }
            entry.attempts.push_back(Attempt {
                at: now,
                file: u32::try_from(file).unwrap_or(u32::MAX),
                http_status: http_status.or(slot.http_status),
                bytes: bytes.saturating_sub(slot.started_at),
                error,
                restart: slot.restart.clone(),
            });
        }
    }

    /// A file failed: the job stops all its transfers and goes to TRANSIENT_ERROR (retry
    /// later) or ERROR.
    #[allow(clippy::too_many_arguments)]
    fn fail_job(
        &mut self,
        engine: &Engine,
        id: Guid,
        file: usize,
        error: QmgrError,
        transient: bool,
        retry_after: Option<Duration>,
        now: Timestamp,
    ) {
        self.stop_transfers(engine, id);
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        let protocol = entry
            .job
            .files
            .get(file)
            .and_then(|f| f.remote_name.split_once("://"))
            .map(|(s, _)| s.to_ascii_lowercase());
        let before = entry.job.state;
        let record = JobError {
            error,
            file_index: u32::try_from(file).ok(),
            protocol,
            at: now,
            retry_after: None,
        };
        entry.job.fail(record, transient, retry_after, now);
        let job = entry.job.clone();
        let _ = self.store.save_job(&job);
        self.arm_timer(&job, now);
        self.announce(id, before, now);
        self.schedule_needed = true;
    }
}

/// Builds the engine request for file `index` of `job`; its client certificate is looked up
/// in the stores of `paths`.
fn transfer_request(job: &Job, index: usize, paths: &StatePaths) -> Result<TransferRequest> {
    let file = &job.files[index];
    let mut request =
        TransferRequest::new(file.remote_name.clone(), PathBuf::from(&file.local_name));
    if let Some(temp) = &file.temp_name {
        request.partial = Some(PartialFile {
            temp_path: PathBuf::from(temp),
            bytes: file.bytes_transferred,
            validator: file.validator.clone(),
            total: (file.bytes_total != SIZE_UNKNOWN).then_some(file.bytes_total),
        });
    }
    if let Some(headers) = &job.settings.custom_headers {
        request.headers = parse_headers(headers)?;
    }
    request.max_size = job.settings.max_download_size;
    // Only TLS uses the certificate: a missing one does not hold up an http or file URL.
    let uses_tls = ["https://", "ftps://"].iter().any(|scheme| {
        file.remote_name
            .get(..scheme.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(scheme))
    });
    if let Some(setting) = job
        .settings
        .client_certificate
        .as_ref()
        .filter(|_| uses_tls)
    {
        let found =
            certificate::resolve(&paths.certs_dir(&setting.store_name)?, &setting.selector)?;
        request.security.client_certificate = Some(qmgr_transfer::ClientCertificate {
            certificate: found.certificate,
            key: found.key,
            key_password: None,
        });
    }
    let flags = job.settings.security_flags;
    // Each of Windows' "ignore" flags relaxes only the check it names.
    request.security.ignore = qmgr_transfer::IgnoredCertificateErrors {
        host_name: flags & security::IGNORE_CERT_CN_INVALID != 0,
        dates: flags & security::IGNORE_CERT_DATE_INVALID != 0,
        unknown_ca: flags & security::IGNORE_UNKNOWN_CA != 0,
        wrong_usage: flags & security::IGNORE_CERT_WRONG_USAGE != 0,
    };
    if flags & security::REDIRECT_POLICY_MASK == security::REDIRECT_DISALLOW {
        request.max_redirects = 0;
    }
    request.allow_https_to_http = flags & security::REDIRECT_ALLOW_HTTPS_TO_HTTP != 0;
    request.throttled = job.priority != JobPriority::Foreground;
    request.proxy = match job.settings.proxy.usage {
        ProxyUsage::Preconfig | ProxyUsage::Autodetect => ProxyChoice::FromEnvironment,
        ProxyUsage::NoProxy => ProxyChoice::Direct,
        ProxyUsage::Override => ProxyChoice::Explicit {
            url: job.settings.proxy.proxy_list.clone().unwrap_or_default(),
            bypass: job
                .settings
                .proxy
                .bypass_list
                .as_deref()
                .unwrap_or_default()
                .split([';', ' ', ','])
                .filter(|s| !s.is_empty())
                .map(|s| {
                    if s == "<local>" {
                        "localhost".to_owned()
                    } else {
                        s.to_owned()
                    }
                })
                .collect(),
        },
    };
    Ok(request)
}

/// What SetClientCertificateByName/ByID check before recording a certificate: a known
/// store location, a store name that stays in the certs directory, a subject that says
/// something. The store itself is read only when a transfer starts.
fn check_client_certificate(paths: &StatePaths, setting: &ClientCertificate) -> Result<()> {
    certificate::check_store_location(setting.store_location)?;
    if setting.store_name.len() > MAX_CERTIFICATE_STORE_NAME_BYTES {
        return Err(QmgrError::invalid_arg(format!(
            "the certificate store name is {} bytes long; the limit is \
             {MAX_CERTIFICATE_STORE_NAME_BYTES} (one directory name)",
            setting.store_name.len()
        )));
    }
    if let CertificateSelector::Subject(subject) = &setting.selector {
        check_length(
            subject,
            MAX_CERTIFICATE_SUBJECT_CHARS,
            "certificate subject name",
            hresult::E_INVALIDARG,
        )?;
    }
    paths.certs_dir(&setting.store_name)?;
    if let CertificateSelector::Subject(subject) = &setting.selector
        && subject.trim().is_empty()
    {
        return Err(QmgrError::invalid_arg(
            "the certificate subject name is empty",
        ));
    }
    Ok(())
}

/// Splits CRLF-separated `Name: value` lines; a line without a colon is `E_INVALIDARG`.
fn parse_headers(text: &str) -> Result<Vec<(String, String)>> {
    text.split("\r\n")
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (name, value) = line.split_once(':').ok_or_else(|| {
                QmgrError::invalid_arg(format!("the header line {line:?} has no ':'"))
            })?;
            if name.trim().is_empty() || line.contains(['\r', '\n']) {
                return Err(QmgrError::invalid_arg(format!(
                    "the header line {line:?} is malformed"
                )));
            }
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect()
}

/// SetProxySettings' rules: the lists' lengths, and lists only with the override setting.
fn check_proxy(proxy: &qmgr_core::job::ProxySettings) -> Result<()> {
    let lists = [
        (
            &proxy.proxy_list,
            "proxy list",
            hresult::BG_E_PROXY_LIST_TOO_LARGE,
        ),
        (
            &proxy.bypass_list,
            "proxy bypass list",
            hresult::BG_E_PROXY_BYPASS_LIST_TOO_LARGE,
        ),
    ];
    for (list, what, code) in lists {
        if let Some(list) = list {
            check_length(list, MAX_PROXY_LIST_CHARS, what, code)?;
        }
    }
    if proxy.usage == ProxyUsage::Override && proxy.proxy_list.as_deref().is_none_or(str::is_empty)
    {
        return Err(QmgrError::invalid_arg(
            "an override proxy setting needs a proxy list",
        ));
    }
    if proxy.usage != ProxyUsage::Override
        && (proxy.proxy_list.is_some() || proxy.bypass_list.is_some())
    {
        return Err(QmgrError::invalid_arg(
            "proxy and bypass lists are allowed only with the override setting",
        ));
    }
    Ok(())
}

/// AddFile's check of the local name's directory: it must exist and be writable.
fn check_local_directory(local_name: &str) -> Result<()> {
    let dir = Path::new(local_name).parent().unwrap_or(Path::new("/"));
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(QmgrError::new(
                hresult::HRESULT_PATH_NOT_FOUND,
                ErrorContext::LocalFile,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Err(error) => {
            return Err(QmgrError::new(
                qmgr_transfer::hresult_for_io(&error),
                ErrorContext::LocalFile,
                format!("the directory {} cannot be used: {error}", dir.display()),
            ));
        }
    }
    rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).map_err(|_| {
        QmgrError::new(
            hresult::E_ACCESSDENIED,
            ErrorContext::LocalFile,
            format!("the directory {} is not writable", dir.display()),
        )
    })
}

/// One page of a listing sorted by cursor: items while their encoded size stays within
/// [`LIST_PAGE_BYTES`] (at least one), and the cursor of the last one if more follow.
fn page<T, V>(
    sorted: Vec<(ListCursor, T)>,
    view: impl Fn(T) -> V,
    encoded_len: impl Fn(&V) -> usize,
) -> (Vec<V>, Option<ListCursor>) {
    let total = sorted.len();
    let mut views = Vec::new();
    let mut bytes = 0usize;
    let mut last = None;
    for (at, item) in sorted {
        let item = view(item);
        bytes = bytes.saturating_add(encoded_len(&item));
        if !views.is_empty() && bytes > LIST_PAGE_BYTES {
            break;
        }
        views.push(item);
        last = Some(at);
    }
    let next = if views.len() < total { last } else { None };
    (views, next)
}

/// Renames every finished file of a job to its final name.
fn rename_finished(job: &mut Job, overwrite: Overwrite) -> Result<()> {
    let umask = job.umask;
    for file in job.files.iter_mut().filter(|f| f.completed) {
        if let Some(temp) = &file.temp_name {
            qmgr_transfer::finalize(
                Path::new(temp),
                Path::new(&file.local_name),
                overwrite,
                umask,
            )?;
            // A finished file without a temporary name is in place: a later Complete skips it.
            file.temp_name = None;
        }
    }
    Ok(())
}

/// Checks the paths of a job read back from the store (see
/// `FileRecord::check_stored_paths`). A job with a path qmgr would never have written is
/// put in ERROR with the bad temporary names forgotten, so nothing of it is ever renamed,
/// opened or deleted; returns whether that happened.
fn quarantine_untrusted_paths(job: &mut Job, now: Timestamp) -> bool {
    let mut first_bad = None;
    for (index, file) in job.files.iter_mut().enumerate() {
        if let Err(error) = file.check_stored_paths() {
            eprintln!("qmgr: job {}: file {index}: {}", job.id, error.description);
            file.temp_name = None;
            file.completed = false;
            file.bytes_transferred = 0;
            first_bad.get_or_insert((index, error));
        }
    }
    let Some((index, error)) = first_bad else {
        return false;
    };
    job.completing = false;
    job.state = JobState::Error;
    let mut error = error;
    error.context = ErrorContext::LocalFile;
    job.error = Some(JobError {
        error: error.context(format_args!(
            "the store of this job holds a path qmgr would not have written; nothing was \
             renamed or deleted"
        )),
        file_index: u32::try_from(index).ok(),
        protocol: None,
        at: now,
        retry_after: None,
    });
    true
}

/// At start-up: the renames of a Complete that was interrupted. A temporary file already
/// renamed is simply gone.
fn finish_renames(job: &Job) {
    for file in job.files.iter().filter(|f| f.completed) {
        if let Some(temp) = &file.temp_name
            && is_our_file(Path::new(temp))
            && let Err(error) = qmgr_transfer::finalize(
                Path::new(temp),
                Path::new(&file.local_name),
                Overwrite::Replace,
                job.umask,
            )
        {
            eprintln!("qmgr: job {}: cannot finish Complete: {error}", job.id);
        }
    }
    for file in job.files.iter().filter(|f| !f.completed) {
        if let Some(temp) = &file.temp_name
            && is_our_file(Path::new(temp))
        {
            let _ = qmgr_transfer::discard(Path::new(temp));
        }
    }
}

/// Whether `path` is a regular file (not a link) of the user qmgr runs as: only those are
/// renamed into place or deleted when a Complete is finished at start-up.
fn is_our_file(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.is_file() && m.uid() == qmgr_core::trust::effective_uid())
}
