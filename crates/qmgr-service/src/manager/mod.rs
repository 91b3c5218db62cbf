//! The queue manager: owns the jobs, the store and the transfer engine, applies the state
//! machine to calls and engine events, schedules, retries, and notifies.
//!
//! Calls come from any thread and run under one lock; a driver thread handles engine events
//! and timers. Nothing scans all jobs periodically: timers live in an ordered set, and the
//! scheduler runs only when something changed.
//!
//! This file holds the queue (`QueueManager`, `State`, the driver thread); the rest is split
//! by what it does:
//!
//! | file | what |
//! |---|---|
//! | `requests.rs` | a client's `Request` dispatched to the operation that does it |
//! | `jobs.rs` | operations on one job (create, add files, resume …, set, cancel, complete) |
//! | `settings.rs` | one SetJob change applied to a job, with the checks that need the service |
//! | `groups.rs` | the legacy group API (a group holds one job) |
//! | `view.rs` | what clients see of a job (why it waits), listings |
//! | `schedule.rs` | who holds a transfer slot; starting a job's transfers |
//! | `engine_events.rs` | what the engine reports, applied to the job |
//! | `timers.rs` | retry timers, auto-complete, expiry, progress checkpoints |
//! | `notify.rs` | subscribers and the notification command |
//! | `recover.rs` | start-up: loading the store, interrupted Completes, leftovers |
//! | `transfer_request.rs` | the engine's request for one file |
//! | `on_demand.rs` | ON_DEMAND_MODE: ranges asked for, fetched and placed |
//!
//! A store write that fails is never dropped. A request changes the job, keeping a
//! snapshot of what it changes, and saves the change before anything else happens
//! (`jobs.rs`, `commit`): if the store refuses, the request fails with the store's error
//! and the job is put back as it was. A change an engine
//! event, a timer or the scheduler made stops the job in ERROR with the store's error
//! (`saved_or_stopped`); Resume starts it again. Two writes stay best-effort, logged:
//! progress checkpoints (a restart resumes from the file itself) and forgetting temporary
//! file names (the next start's sweep finds those files gone).
//!
//! The work per event, per request and per file does not grow with the job: writes are as
//! narrow as the change (the job's row, one file's row, the new files' rows), the job keeps
//! counts of its files (`Job::progress`, the state machine's facts), the next file to start
//! is found from a cursor, and local names are checked against an index.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, select};
use parking_lot::Mutex;
use qmgr_core::config::Config;
use qmgr_core::error::{ErrorContext, QmgrError, Result};
use qmgr_core::group::Group;
use qmgr_core::hresult;
use qmgr_core::paths::StatePaths;
use qmgr_core::service::{Attempt, Request, Response};
use qmgr_core::store::{ProgressBatcher, Store};
use qmgr_core::{Guid, Job, JobError, JobState, Timestamp};
use qmgr_transfer::{Engine, EngineConfig, EngineEvent, Overwrite, TransferId};

use crate::clock::Clock;

mod batch;
mod certificate_check;
mod completion;
mod download_time;
mod engine_events;
mod groups;
mod held_outcomes;
mod jobs;
mod notify;
mod on_demand;
mod policy;
mod recover;
mod reply;
mod requests;
mod schedule;
mod settings;
#[cfg(test)]
mod test_support;
mod timers;
mod transfer_request;
mod upload;
mod view;

use batch::Batch;
use download_time::DownloadClocks;
use held_outcomes::HeldOutcomes;
use notify::Subscriber;
use recover::boot_changed;

/// How often progress reaches the store at most.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// The most engine events applied in one store transaction (see `batch.rs`).
const EVENTS_PER_BATCH: usize = 256;
/// The shortest time between two scheduling passes asked for by calls.
const MIN_PASS_INTERVAL: Duration = Duration::from_millis(5);
/// The uid with every right.
const ROOT: u32 = 0;

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
    /// Hands auto-completes to the thread that renames their files (see `completion.rs`).
    completer: Mutex<Option<Sender<Vec<completion::PendingComplete>>>>,
}

/// A job and what the manager knows about it beyond the store.
struct Entry {
    job: Job,
    /// Creation order.
    seq: u64,
    /// Place in line among equal priorities (see `schedule::Candidate::turn`).
    turn: u64,
    run: Option<Box<Run>>,
    attempts: VecDeque<Attempt>,
    /// Background jobs ahead of it in line, as of the last scheduling pass.
    ahead: u32,
    /// A bandwidth cap held a transfer of the job back in the engine's last report: the
    /// cap, not the link, sets its pace.
    throttled: bool,
    /// Why the service could not complete this auto-complete job when it reached
    /// TRANSFERRED (it then waits for Complete or Cancel).
    complete_error: Option<Box<QmgrError>>,
    /// Every file before this index is transferred (a lower bound: it only moves forward,
    /// when a run starts), so a run need not look at them again.
    first_unfinished: usize,
    /// Hashes of the files' local names (`State::name_hasher`): AddFiles looks a name up
    /// here instead of comparing it with every file, and compares only on a hit.
    local_names: LocalNames,
    /// The file held back for the job's certificate validator, if one is (see
    /// `certificate_check.rs`).
    certificate_gate: Option<Box<certificate_check::CertificateGate>>,
    /// Complete committed its mark and the files are being renamed (see `completion.rs`).
    completing: bool,
}

impl Entry {
    /// The entry of a job just loaded or created, `seq`-th in creation order and `turn`-th
    /// in line.
    fn new(job: Job, seq: u64, turn: u64, hasher: &RandomState) -> Entry {
        let mut entry = Entry {
            job,
            seq,
            turn,
            run: None,
            attempts: VecDeque::new(),
            ahead: 0,
            throttled: false,
            complete_error: None,
            first_unfinished: 0,
            local_names: LocalNames::default(),
            certificate_gate: None,
            completing: false,
        };
        entry.index_local_names(hasher);
        entry
    }

    /// Makes `local_names` again from the files (after AddFiles was undone).
    fn index_local_names(&mut self, hasher: &RandomState) {
        let mut names = LocalNames::default();
        for file in &self.job.files {
            names.insert(hasher.hash_one(&file.local_name));
        }
        self.local_names = names;
    }
}

/// The maps keyed by the ids the service itself makes (job GUIDs, transfer numbers), which
/// every finished file looks up several times: foldhash (seeded at random per process) costs
/// a fraction of SipHash there.
type IdMap<K, V> = foldhash::HashMap<K, V>;

/// A set of local-name hashes that costs nothing on the heap for a job of one file (most
/// jobs of a large queue): one hash is kept in place, and a hash set is made only when a
/// second, different hash comes.
#[derive(Debug, Default)]
enum LocalNames {
    #[default]
    Empty,
    One(u64),
    #[expect(
        clippy::box_collection,
        reason = "boxed, the index of a one-file job takes 16 bytes instead of 40"
    )]
    Many(Box<HashSet<u64, PassThrough>>),
}

impl LocalNames {
    /// Whether a local name with this hash was inserted (a hit may still be another name
    /// with the same hash).
    #[expect(
        clippy::trivially_copy_pass_by_ref,
        reason = "called as HashSet::contains is, with a reference"
    )]
    fn contains(&self, hash: &u64) -> bool {
        match self {
            LocalNames::Empty => false,
            LocalNames::One(only) => only == hash,
            LocalNames::Many(set) => set.contains(hash),
        }
    }

    /// Adds a hash; returns whether it was new, as `HashSet::insert` does.
    fn insert(&mut self, hash: u64) -> bool {
        match self {
            LocalNames::Empty => {
                *self = LocalNames::One(hash);
                true
            }
            LocalNames::One(only) if *only == hash => false,
            LocalNames::One(only) => {
                let mut set = HashSet::with_capacity_and_hasher(2, PassThrough::default());
                set.insert(*only);
                set.insert(hash);
                *self = LocalNames::Many(Box::new(set));
                true
            }
            LocalNames::Many(set) => set.insert(hash),
        }
    }
}

/// Hashes a `u64` that is already a hash (made by `State::name_hasher`, keyed at random)
/// as itself: hashing it again would add nothing.
type PassThrough = BuildHasherDefault<PassThroughHasher>;

#[derive(Debug, Default)]
struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is expected; any other input is still hashed, if poorly.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// A job holding a transfer slot.
struct Run {
    since: Duration,
    transfers: Vec<TransferId>,
    /// Where the run looks for the next file to start: every file before it is finished or
    /// was started in this run (a run ends whenever one of its transfers fails).
    next_file: usize,
    /// The engine lane of the run's downloads (see `State::fill`), and the width it was
    /// last given.
    lane: qmgr_transfer::Lane,
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
    /// The engine started it: it is not waiting in its job's lane.
    started: bool,
    /// A bandwidth cap held this transfer back in the engine's last progress report.
    throttled: bool,
    /// For a file of an ON_DEMAND_MODE job: the spans this transfer fetches, in the order
    /// the engine writes them into its scratch file (see `on_demand.rs`).
    fetch: Option<Vec<qmgr_core::on_demand::Span>>,
    /// The download of an upload-reply job's reply (see `reply.rs`), not of a file.
    reply: bool,
}

impl Slot {
    /// A transfer for file `file` of job `job` that starts with `started_at` bytes held.
    fn new(job: Guid, file: usize, started_at: u64, can_yield: bool) -> Slot {
        Slot {
            job,
            file,
            can_yield,
            started_at,
            http_status: None,
            restart: None,
            started: true,
            throttled: false,
            fetch: None,
            reply: false,
        }
    }
}

struct State {
    config: Config,
    /// What idle mode is doing for the engine's background transfers.
    idle: qmgr_transfer::IdleStatuses,
    /// Where the client certificate stores are (`certs_dir`).
    paths: StatePaths,
    store: Store,
    /// Boxed: the map moves only pointers as it grows, and holds no room for absent
    /// entries the size of a job.
    jobs: IdMap<Guid, Box<Entry>>,
    groups: IdMap<Guid, Group>,
    transfers: IdMap<TransferId, Slot>,
    /// Transfers stopped before the engine reported their end, with the job and file they
    /// were for: a file such a transfer makes is kept only if that file holds its name.
    stopped: IdMap<TransferId, (Guid, usize)>,
    /// Hashes local names for `Entry::local_names`.
    name_hasher: RandomState,
    batcher: ProgressBatcher,
    /// Rows of finished files waiting to share a transaction (see `held_outcomes`).
    held: HeldOutcomes,
    next_seq: u64,
    next_turn: u64,
    /// The key of the next run's engine lane.
    next_lane: u64,
    /// When each job in TRANSIENT_ERROR must be looked at again.
    timers: BTreeSet<(Timestamp, Guid)>,
    schedule_needed: bool,
    next_decision: Option<Duration>,
    subscribers: Vec<Subscriber>,
    stopping: bool,
    /// Callers of `settle`, told once the driver's next whole pass is done.
    settling: Vec<Sender<()>>,
    /// When to look for jobs untouched for `job_inactivity_timeout`.
    next_expiry_check: Timestamp,
    /// The wall clock and the real-time clock at the last pass (see
    /// `absorb_wall_clock_jump`).
    wall_anchor: Option<(Timestamp, Duration)>,
    /// The scheduler ran since the line was last numbered (see `number_the_line`).
    line_stale: bool,
    /// Jobs per owner, for `max_jobs_per_user` without counting the whole queue.
    owned: HashMap<u32, usize>,
    /// Auto-complete jobs that reached TRANSFERRED: the driver completes them.
    auto_complete_due: Vec<Guid>,
    /// Open while the driver applies a burst of engine events in one store transaction
    /// (see `batch.rs`).
    batch: Option<Batch>,
    /// MaximumDownloadTime: each job's time running since its last Resume.
    download_clocks: DownloadClocks,
    /// The jobs in creation order, for listings (see `view.rs`).
    listing_order: RefCell<ListingOrder>,
    /// Server certificate validators and their checks (see `certificate_check.rs`).
    validators: certificate_check::Validators,
    /// The scratch files of on-demand fetches under way, by transfer (see `on_demand.rs`).
    scratch_files: IdMap<TransferId, std::path::PathBuf>,
    /// The network's cost and the schedule's caps (see `policy.rs`).
    policy: policy::PolicyState,
}

/// The queue's jobs by creation order, `(seq, id)` ascending: a listing reads a page from
/// it instead of sorting the whole queue for every page. Jobs that left the queue since it
/// was made stay in it (a listing passes them over); a job created since makes it stale.
#[derive(Default)]
struct ListingOrder {
    jobs: Arc<[(u64, Guid)]>,
    /// `State::next_seq` when it was made.
    made_at: Option<u64>,
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
            idle_target: config.idle_target,
            stall_timeout: config.stall_timeout,
            ..EngineConfig::default()
        })?;
        let (wake, woken) = crossbeam_channel::unbounded();
        let mut state = State {
            idle: engine.idle_statuses(),
            batcher: ProgressBatcher::new(PROGRESS_INTERVAL),
            held: HeldOutcomes::default(),
            config,
            paths: paths.clone(),
            store,
            jobs: IdMap::default(),
            groups: IdMap::default(),
            transfers: IdMap::default(),
            stopped: IdMap::default(),
            scratch_files: IdMap::default(),
            name_hasher: RandomState::new(),
            next_seq: 0,
            next_turn: 0,
            next_lane: 0,
            timers: BTreeSet::new(),
            schedule_needed: true,
            next_decision: None,
            subscribers: Vec::new(),
            stopping: false,
            settling: Vec::new(),
            next_expiry_check: Timestamp::ZERO,
            wall_anchor: None,
            line_stale: false,
            owned: HashMap::new(),
            auto_complete_due: Vec::new(),
            batch: None,
            download_clocks: DownloadClocks::default(),
            listing_order: RefCell::new(ListingOrder::default()),
            validators: certificate_check::Validators::new(
                certificate_check::check_timeout_from_environment(),
            ),
            policy: policy::PolicyState::new(),
        };
        state.recover(clock.now(), boot_changed(state_dir)?)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            engine,
            clock,
            wake,
            driver: Mutex::new(None),
            completer: Mutex::new(None),
        });
        shared.state.lock().validators.manager = Arc::downgrade(&shared);
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
        let offset =
            matches!(request, Request::GetPolicy).then(|| self.shared.clock.utc_offset(now));
        let mut state = self.shared.state.lock();
        if let Some(offset) = offset {
            state.policy.utc_offset = offset;
        }
        let mut already_asked = state.schedule_needed;
        let response = match request {
            // The files are renamed without the lock (see `completion.rs`).
            Request::Complete { job } | Request::CompleteWithoutReplacing { job } => {
                let overwrite = if matches!(request, Request::Complete { .. }) {
                    Overwrite::Replace
                } else {
                    Overwrite::NoClobber
                };
                match state.begin_complete(&self.shared.engine, uid, job, overwrite, now) {
                    // A refusal may have given the job its slot back: the wake-up below.
                    Err(error) => Err(error),
                    Ok(mut pending) => {
                        drop(state);
                        pending.rename();
                        let now = self.shared.clock.now();
                        state = self.shared.state.lock();
                        // The driver may have passed meanwhile: what it was asked is stale.
                        already_asked = false;
                        state.finish_complete(&self.shared.engine, pending, now)
                    }
                }
            }
            request => state.handle(&self.shared.engine, uid, request, now),
        };
        // The driver needs one wake-up per pending pass, not one per call.
        if state.schedule_needed && !already_asked {
            drop(state);
            let _ = self.shared.wake.send(());
        }
        response
    }

    /// Whether nothing is running or waiting to run (jobs may still be suspended, in
    /// ERROR or TRANSFERRED): an on-demand daemon may exit.
    pub fn is_idle(&self) -> bool {
        let state = self.shared.state.lock();
        state.transfers.is_empty()
            && state.timers.is_empty()
            && state.auto_complete_due.is_empty()
            && !state.jobs.values().any(|e| e.completing)
            && !state.jobs.values().any(|e| e.job.state.is_runnable())
    }

    /// Makes the store refuse every write from now on, or accept them again: how tests
    /// show what the queue does when its store fails (see the policy at `commit` and
    /// `saved_or_stopped`).
    #[doc(hidden)]
    pub fn refuse_store_writes_for_tests(&self, refuse: bool) -> Result<()> {
        self.shared
            .state
            .lock()
            .store
            .refuse_writes_for_tests(refuse)
    }

    /// NetworkManager's `Metered` property changed (`None`: NetworkManager cannot be
    /// reached). Jobs whose COST_FLAGS do not allow the new cost state stop within the
    /// driver's next pass; those that now may, start.
    pub fn set_network_metered(&self, metered: Option<u32>) {
        let mut state = self.shared.state.lock();
        state.set_network_metered(metered);
        let asked = state.schedule_needed;
        drop(state);
        if asked {
            let _ = self.shared.wake.send(());
        }
    }

    /// Wakes the driver: tests call this after moving a manual clock.
    pub fn poke(&self) {
        let _ = self.shared.wake.send(());
    }

    /// Wakes the driver and waits (at most `timeout`) until it has made a whole pass that
    /// began after this call: timers due by the clock now have run. Tests call this after
    /// moving a manual clock, so that a check that nothing happened cannot pass only because
    /// the driver had not looked yet. Returns whether the pass came.
    pub fn settle(&self, timeout: Duration) -> bool {
        let (done, passed) = crossbeam_channel::bounded(1);
        self.shared.state.lock().settling.push(done);
        let _ = self.shared.wake.send(());
        passed.recv_timeout(timeout).is_ok()
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
            state.release_all_held(&self.shared.engine, self.shared.clock.now());
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
            // Those waiting before this pass began are told once it ends.
            let settling = std::mem::take(&mut state.settling);
            let now = shared.clock.now();
            let mono = shared.clock.monotonic();
            state.absorb_wall_clock_jump(&shared.engine, now, shared.clock.elapsed_with_suspend());
            state.run_timers(&shared.engine, now);
            let completing = state.run_auto_completes(&shared.engine, now);
            state.expire_inactive(&shared.engine, now);
            state.enforce_download_time(&shared.engine, now);
            if now >= state.policy.next_check {
                let offset = shared.clock.utc_offset(now);
                state.apply_schedule(&shared.engine, now, offset);
            }
            if state.held.is_due(mono) {
                state.release_all_held(&shared.engine, now);
            }
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
            for done in settling {
                let _ = done.send(());
            }
            let wait = if state.schedule_needed {
                wait.min(MIN_PASS_INTERVAL.saturating_sub(since_pass))
            } else {
                wait
            };
            drop(state);
            completion::finish_in_background(&Arc::downgrade(&shared), completing);
            wait
        };
        // Events that already wait are taken without the cost of a select; a burst of
        // small files keeps the thread on this path.
        let event = match events.try_recv() {
            Ok(event) => {
                while woken.try_recv().is_ok() {}
                Some(event)
            }
            Err(TryRecvError::Disconnected) => return,
            Err(TryRecvError::Empty) => select! {
                recv(events) -> event => match event {
                    Ok(event) => Some(event),
                    Err(_) => return,
                },
                recv(woken) -> message => {
                    if message.is_err() {
                        return;
                    }
                    // Many calls may have asked for a look; one pass serves them all.
                    while woken.try_recv().is_ok() {}
                    None
                }
                default(wait) => None,
            },
        };
        if let Some(event) = event {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let now = shared.clock.now();
            let mono = shared.clock.monotonic();
            let mut state = shared.state.lock();
            // Events that arrived meanwhile join this one in one store transaction.
            state.begin_batch();
            state.on_engine_event(&shared.engine, event, now, mono);
            for event in events.try_iter().take(EVENTS_PER_BATCH - 1) {
                state.on_engine_event(&shared.engine, event, now, mono);
            }
            state.end_batch(&shared.engine, now);
        }
    }
}

pub(super) fn not_found(what: &str, id: Guid) -> QmgrError {
    QmgrError::from_code(hresult::BG_E_NOT_FOUND).context(format_args!("{what} {id}"))
}

impl State {
    /// What a background change (an engine event, a timer, the scheduler) does when the
    /// store refused to record it: the job, already changed in memory, stops in ERROR with
    /// the store's error (its transfers stopped, subscribers told), and one more write tries
    /// to record that. Returns whether `saved` succeeded. A refused request, by contrast,
    /// fails with the store's error and leaves the job as it was (see `commit`).
    fn saved_or_stopped(
        &mut self,
        engine: &Engine,
        id: Guid,
        before: JobState,
        saved: Result<()>,
        now: Timestamp,
    ) -> bool {
        if let Some(batch) = &mut self.batch {
            batch.touched(id);
        }
        let Err(mut error) = saved else {
            return true;
        };
        tracing::error!(job = %id, "{}; the job stops in ERROR", error.description);
        self.stop_transfers(engine, id);
        self.timers.retain(|(_, job)| *job != id);
        self.batcher.forget(id);
        let Some(entry) = self.jobs.get_mut(&id) else {
            return false;
        };
        error.context = ErrorContext::GeneralQueueManager;
        entry.job.stop_with_error(JobError {
            error,
            file_index: None,
            protocol: None,
            at: now,
            retry_after: None,
        });
        // The change that was refused is in memory too: the whole job is written, once.
        if let Err(again) = self.store.save_job(&entry.job) {
            tracing::error!(job = %id, "{}", again.description);
        }
        self.announce(id, before, now);
        self.schedule_needed = true;
        false
    }

    /// Forgets temporary file names whose files are gone. A failure is logged and is
    /// harmless: a name remembered too long is only looked at by the sweep of the next
    /// start, which finds its file gone.
    fn forget_temp_names<S: AsRef<str>>(&mut self, names: &[S]) {
        if let Err(error) = self.store.forget_temp_names(names) {
            tracing::error!("{}", error.description);
        }
    }

    pub(super) fn add_entry(&mut self, job: Job) {
        *self.owned.entry(job.owner_uid).or_default() += 1;
        let id = job.id;
        let entry = Entry::new(job, self.next_seq, self.next_turn, &self.name_hasher);
        self.next_seq += 1;
        self.next_turn += 1;
        self.jobs.insert(id, Box::new(entry));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_name_index_answers_as_a_hash_set_does() {
        let hasher = RandomState::new();
        let mut index = LocalNames::default();
        let mut set = HashSet::new();
        // Repeats among new names, so that both a first, a second and a later insert of a
        // hash already held are seen.
        let names = ["/a", "/a", "/b", "/a", "/c", "/b", "/d", "/e", "/e"];
        for (n, name) in names.iter().enumerate() {
            let hash = hasher.hash_one(name);
            assert_eq!(index.contains(&hash), set.contains(&hash), "before {name}");
            assert_eq!(index.insert(hash), set.insert(hash), "insert {n}: {name}");
            for probe in ["/a", "/b", "/c", "/d", "/e", "/f"] {
                let probe = hasher.hash_one(probe);
                assert_eq!(index.contains(&probe), set.contains(&probe));
            }
        }
        assert!(matches!(index, LocalNames::Many(_)));
    }

    #[test]
    fn a_one_file_job_keeps_its_local_name_in_place() {
        let hasher = RandomState::new();
        let now = Timestamp(1);
        let mut job = Job::new(
            Guid::new_random(),
            "one",
            qmgr_core::JobType::Download,
            1000,
            qmgr_core::job::JobSettings::default(),
            now,
        )
        .unwrap();
        let entry = Entry::new(job.clone(), 0, 0, &hasher);
        assert!(matches!(entry.local_names, LocalNames::Empty));
        job.add_file("http://example.invalid/a", "/srv/a", 10, now)
            .unwrap();
        let entry = Entry::new(job.clone(), 0, 0, &hasher);
        assert!(matches!(entry.local_names, LocalNames::One(_)));
        assert!(entry.local_names.contains(&hasher.hash_one("/srv/a")));
        job.add_file("http://example.invalid/b", "/srv/b", 10, now)
            .unwrap();
        let entry = Entry::new(job, 0, 0, &hasher);
        assert!(entry.local_names.contains(&hasher.hash_one("/srv/a")));
        assert!(entry.local_names.contains(&hasher.hash_one("/srv/b")));
        assert!(!entry.local_names.contains(&hasher.hash_one("/srv/c")));
    }

    /// A queue of 100,000 one-file jobs must fit in 150 MB (bench/results/queue.md): each
    /// costs its entry and its file record, plus their strings. What only some jobs or
    /// files have (an upload's record, a reply, an error, a client certificate, a notify
    /// command, a run, a certificate check) is boxed, so the others do not carry its room;
    /// a job's per-file side tables are made on first use, and validators are boxed strings.
    /// Inline, those parts had grown an idle job by 600 bytes and the queue to 196 MB. The
    /// bounds are allocator size classes (jemalloc's 768 and 224): a byte over one costs
    /// the next class's whole step.
    #[test]
    fn an_idle_one_file_job_stays_small_in_memory() {
        let entry = std::mem::size_of::<Entry>();
        let file = std::mem::size_of::<qmgr_core::FileRecord>();
        assert!(entry <= 768, "an entry takes {entry} bytes");
        assert!(file <= 224, "a file record takes {file} bytes");
    }
}
