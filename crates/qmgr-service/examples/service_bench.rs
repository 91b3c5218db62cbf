//! Service figures, printed as a Markdown table (progress goes to stderr):
//!
//! - the round trip of a property get (`GetJob` of one job) over the socket to a real
//!   qmgrd, and in-process through [`LocalService`]; over the socket once more with the
//!   client and qmgrd pinned to one CPU (with `taskset`), which separates the cost of the
//!   call from the cost of waking a thread on the other CPU;
//! - creating and resuming 10,000 one-file jobs over the socket;
//! - qmgrd's resident memory with those jobs queued, and its CPU while they sit suspended.
//!
//! qmgrd runs in a private instance (its own XDG directories in a temporary directory)
//! and is stopped at the end. `QMGRD` must name the qmgrd executable to run (`cargo xtask
//! bench service` sets it to the release build).
//!
//! The jobs' files point at a local TCP listener that accepts connections and never
//! answers, so the one job the scheduler lets transfer stays connecting and the rest stay
//! queued, as they would behind a slow server.
//!
//! `service_bench files-per-job [COUNT …]` measures something else: what one file of a job
//! costs the queue manager as jobs grow (100, 1,000, 10,000 and 100,000 files unless
//! counts are given). The queue manager runs in this process; each job's files are
//! `file://` sources of a few bytes, added 1,000 per AddFiles call, transferred 16 at a
//! time and completed; before the transfer, SetJob is timed on the job with all its files. The table gives the process's CPU time (user + system, every
//! thread: the queue manager, the engine and SQLite) and the wall time of each phase,
//! divided by the number of files. Per-file CPU that stays flat as the job grows is the
//! target: work per event that grew with the job would show as a per-file cost growing
//! with it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qmgr_core::config::Config;
use qmgr_core::paths::StatePaths;
use qmgr_core::service::{NewFile, QueueService, QueueServiceExt};
use qmgr_core::{Guid, JobType};
use qmgr_ipc::{Client, Launcher};
use qmgr_service::{LocalService, QueueManager, SystemClock};

/// Timed calls per latency figure, after the warm-up calls.
const CALLS: usize = 100_000;
const WARM_UP_CALLS: usize = 10_000;
const JOBS: usize = 10_000;
/// Jobs at the start and at the end of the creation run whose rate is shown apart, to
/// show how the rate changes as the queue grows.
const SAMPLE: usize = 1_000;
const IDLE_WINDOW: Duration = Duration::from_secs(10);
/// How long qmgrd gets to settle after a burst of calls before it is measured.
const SETTLE: Duration = Duration::from_secs(1);

type Failure = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    match run() {
        Ok(table) => {
            print!("{table}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("service_bench: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<String, Failure> {
    let mut arguments = std::env::args().skip(1);
    match arguments.next().as_deref() {
        None => {}
        Some("files-per-job") => {
            let counts = arguments
                .map(|count| count.parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("a file count is not a number: {e}"))?;
            return files_per_job::run(if counts.is_empty() {
                &files_per_job::DEFAULT_COUNTS
            } else {
                &counts
            });
        }
        Some(other) => {
            return Err(format!(
                "unknown scenario {other:?}: run without arguments, or with files-per-job [COUNT …]"
            )
            .into());
        }
    }
    let Some(qmgrd) = std::env::var_os("QMGRD") else {
        return Err("set QMGRD to the qmgrd executable to measure".into());
    };
    let root = tempfile::tempdir()?;
    let instance = Instance::new(root.path(), PathBuf::from(qmgrd))?;
    let stall = StallingServer::start()?;
    let mut report = Report {
        load_at_start: load_average(),
        ..Report::default()
    };

    progress("in-process GetJob (LocalService)");
    let in_process = in_process_latency(&root.path().join("in-process"), &stall)?;
    report.row(
        "`GetJob` round trip in-process (`LocalService`), 1 job",
        &in_process.cell(),
        "median ≤ 2 µs",
        Some(in_process.median <= Duration::from_micros(2)),
    );

    progress("starting qmgrd");
    let client = instance.client()?;
    let daemon = instance.daemon()?;
    let empty_rss = daemon.rss()?;

    progress("GetJob over IPC");
    let probe = one_file_job(&client, &stall, &instance.downloads, "probe")?;
    let ipc = latency(|| client.job(probe).map(drop))?;
    report.row(
        "`GetJob` round trip over IPC (qmgrd), 1 job",
        &ipc.cell(),
        "median ≤ 30 µs",
        Some(ipc.median <= Duration::from_micros(30)),
    );

    progress("GetJob over IPC, client and qmgrd on one CPU");
    match on_one_cpu(&daemon, || latency(|| client.job(probe).map(drop)))? {
        Some(pinned) => report.row(
            "… the same with the client and qmgrd pinned to one CPU (no cross-CPU wake-ups)",
            &pinned.cell(),
            "—",
            None,
        ),
        None => progress("(taskset is missing: no pinned figure)"),
    }

    progress(&format!("creating and resuming {JOBS} jobs over IPC"));
    let created = create_jobs(&client, &stall, &instance.downloads)?;
    let jobs_per_second = created.jobs_per_second(0..JOBS);
    report.row(
        &format!("create + add one file + resume, {JOBS} jobs over IPC"),
        &format!(
            "{:.2} s ({jobs_per_second:.0} jobs/s; first {SAMPLE}: {:.0} jobs/s, last {SAMPLE}: \
             {:.0} jobs/s)",
            created.per_job.iter().sum::<Duration>().as_secs_f64(),
            created.jobs_per_second(0..SAMPLE),
            created.jobs_per_second(JOBS - SAMPLE..JOBS),
        ),
        "≥ 2,000 jobs/s",
        Some(jobs_per_second >= 2_000.0),
    );
    let mean = |total: Duration| microseconds(total / u32::try_from(JOBS).unwrap_or(u32::MAX));
    report.row(
        "… mean time per call while creating them",
        &format!(
            "CreateJob {}, AddFiles {}, Resume {}",
            mean(created.per_call[0]),
            mean(created.per_call[1]),
            mean(created.per_call[2])
        ),
        "—",
        None,
    );
    let jobs = created.ids;

    progress("GetJob over IPC with the queue full");
    let full = latency(|| client.job(probe).map(drop))?;
    report.row(
        &format!("`GetJob` round trip over IPC, {} jobs queued", JOBS + 1),
        &full.cell(),
        "—",
        None,
    );

    std::thread::sleep(SETTLE);
    let queued_rss = daemon.rss()?;
    report.row(
        &format!("qmgrd RSS with {JOBS} queued jobs"),
        &format!(
            "{:.1} MB (before the jobs: {:.1} MB)",
            megabytes(queued_rss),
            megabytes(empty_rss)
        ),
        "≤ 48 MB",
        Some(queued_rss <= 48_000_000),
    );

    progress(&format!("suspending {JOBS} jobs"));
    let started = Instant::now();
    for id in &jobs {
        client.suspend(*id)?;
    }
    client.suspend(probe)?;
    let suspending = started.elapsed();
    report.row(
        &format!("suspend {JOBS} jobs over IPC"),
        &format!("{:.2} s", suspending.as_secs_f64()),
        "—",
        None,
    );

    std::thread::sleep(SETTLE);
    progress(&format!(
        "qmgrd idle for {} s with {JOBS} suspended jobs",
        IDLE_WINDOW.as_secs()
    ));
    let (cpu_before, threads_before) = (daemon.cpu()?, daemon.threads()?);
    std::thread::sleep(IDLE_WINDOW);
    let (cpu_after, threads_after) = (daemon.cpu()?, daemon.threads()?);
    let idle_cpu = cpu_after.saturating_sub(cpu_before);
    let share = idle_cpu.as_secs_f64() / IDLE_WINDOW.as_secs_f64() * 100.0;
    let (switches, threads) = thread_activity(&threads_before, &threads_after);
    report.row(
        &format!(
            "qmgrd CPU (user+sys) over {} s idle, {JOBS} suspended jobs",
            IDLE_WINDOW.as_secs()
        ),
        &format!(
            "{} ms ({share:.2}% of a core); {switches} context switches ({threads})",
            idle_cpu.as_millis(),
        ),
        "≈ 0 (≤ 10 ms)",
        Some(idle_cpu <= Duration::from_millis(10)),
    );

    drop(client);
    drop(daemon);
    Ok(report.render())
}

fn progress(what: &str) {
    eprintln!("    {what}");
}

/// A private qmgr instance under `root`: state, config, runtime dir and downloads.
struct Instance {
    root: PathBuf,
    qmgrd: PathBuf,
    downloads: PathBuf,
}

impl Instance {
    fn new(root: &Path, qmgrd: PathBuf) -> Result<Instance, Failure> {
        let config_dir = root.join("config/qmgr");
        fs::create_dir_all(&config_dir)?;
        // Room for the jobs; one transfer at a time so that the rest stay queued; and no
        // idle exit, which would end the service between measurements.
        fs::write(
            config_dir.join("config.toml"),
            format!(
                "max_jobs_per_user = {}\nmax_files_per_job = 200\nmax_background_jobs = 1\n\
                 idle_exit = \"never\"\n",
                2 * JOBS
            ),
        )?;
        let downloads = root.join("downloads");
        fs::create_dir_all(&downloads)?;
        Ok(Instance {
            root: root.to_owned(),
            qmgrd,
            downloads,
        })
    }

    fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("XDG_STATE_HOME", self.root.join("state")),
            ("XDG_CONFIG_HOME", self.root.join("config")),
            ("XDG_RUNTIME_DIR", self.root.join("run")),
            ("QMGRD", self.qmgrd.clone()),
        ]
    }

    fn paths(&self) -> Result<StatePaths, Failure> {
        let env = self.env();
        Ok(StatePaths::from_env_with(|name| {
            env.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone().into())
        })?)
    }

    /// A client of this instance's qmgrd, started on demand as any client would.
    fn client(&self) -> Result<Client, Failure> {
        let launcher = self
            .env()
            .into_iter()
            .fold(Launcher::from_process(), |l, (n, v)| l.env(n, v));
        Ok(Client::connect_or_spawn_with(&self.paths()?, launcher)?)
    }

    /// The running qmgrd, by the pid it writes into its store lock.
    fn daemon(&self) -> Result<Daemon, Failure> {
        let lock = self.paths()?.state_dir().join("store.lock");
        let pid = fs::read_to_string(&lock)
            .map_err(|e| format!("cannot read {}: {e}", lock.display()))?
            .trim()
            .parse()
            .map_err(|e| format!("no pid in {}: {e}", lock.display()))?;
        Ok(Daemon { pid })
    }
}

/// The qmgrd process being measured; stopped when dropped, so that a failed run leaves
/// no service behind.
struct Daemon {
    pid: i32,
}

impl Daemon {
    fn proc_file(&self, name: &str) -> Result<String, Failure> {
        let path = format!("/proc/{}/{name}", self.pid);
        Ok(fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?)
    }

    /// Resident memory in bytes (VmRSS).
    fn rss(&self) -> Result<u64, Failure> {
        let status = self.proc_file("status")?;
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .ok_or("no VmRSS in /proc/<pid>/status")?;
        Ok(kib * 1024)
    }

    /// User plus system time of all its threads so far.
    fn cpu(&self) -> Result<Duration, Failure> {
        let (_, ticks) = parse_stat(&self.proc_file("stat")?)?;
        Ok(from_ticks(ticks))
    }

    /// Each thread's name, CPU ticks and context switches (voluntary plus involuntary:
    /// how often it ran), by thread id.
    fn threads(&self) -> Result<HashMap<String, ThreadUsage>, Failure> {
        let mut threads = HashMap::new();
        for task in fs::read_dir(format!("/proc/{}/task", self.pid))? {
            let dir = task?.path();
            // A thread that ended since the listing has nothing left to count.
            let (Ok(stat), Ok(status)) = (
                fs::read_to_string(dir.join("stat")),
                fs::read_to_string(dir.join("status")),
            ) else {
                continue;
            };
            let (name, cpu_ticks) = parse_stat(&stat)?;
            let switches = status
                .lines()
                .filter(|line| line.contains("ctxt_switches:"))
                .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
            let id = dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            threads.insert(
                id,
                ThreadUsage {
                    name,
                    cpu_ticks,
                    switches,
                },
            );
        }
        Ok(threads)
    }

    fn running(&self) -> bool {
        self.proc_file("status").is_ok_and(|s| {
            !s.lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = rustix::process::Pid::from_raw(self.pid);
        let Some(pid) = pid else { return };
        if rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_err() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.running() {
            eprintln!(
                "qmgrd (pid {}) did not stop on SIGTERM; killing it",
                self.pid
            );
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

struct ThreadUsage {
    name: String,
    cpu_ticks: u64,
    switches: u64,
}

/// What each thread did between two snapshots: the total context switches, and the
/// threads that ran, busiest first (`name: switches`, and CPU time if any).
fn thread_activity(
    before: &HashMap<String, ThreadUsage>,
    after: &HashMap<String, ThreadUsage>,
) -> (u64, String) {
    let mut active: Vec<(u64, u64, &str)> = after
        .iter()
        .map(|(id, now)| {
            let (ticks, switches) = before
                .get(id)
                .map_or((0, 0), |then| (then.cpu_ticks, then.switches));
            (
                now.cpu_ticks.saturating_sub(ticks),
                now.switches.saturating_sub(switches),
                now.name.as_str(),
            )
        })
        .filter(|(ticks, switches, _)| *ticks > 0 || *switches > 0)
        .collect();
    active.sort_unstable_by(|a, b| b.cmp(a));
    let total = active.iter().map(|(_, switches, _)| switches).sum();
    let threads = active
        .iter()
        .map(|(ticks, switches, name)| match ticks {
            0 => format!("{name}: {switches}"),
            _ => format!("{name}: {switches}, {} ms", from_ticks(*ticks).as_millis()),
        })
        .collect::<Vec<_>>()
        .join("; ");
    (total, threads)
}

/// The command name (field 2, in parentheses) and utime + stime (fields 14 and 15) of a
/// /proc stat line.
fn parse_stat(stat: &str) -> Result<(String, u64), Failure> {
    let (head, after_name) = stat.rsplit_once(')').ok_or("malformed stat")?;
    let name = head.split_once('(').map_or("", |(_, name)| name).to_owned();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Field 3 (state) is the first after the name.
    let field = |number: usize| -> Result<u64, Failure> {
        Ok(fields.get(number - 3).ok_or("short stat")?.parse()?)
    };
    Ok((name, field(14)? + field(15)?))
}

fn from_ticks(ticks: u64) -> Duration {
    Duration::from_secs_f64(count(ticks) / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a system constant and touches no memory of ours.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        count(ticks.unsigned_abs())
    } else {
        100.0
    }
}

/// Runs `measure` with every thread of this process and of qmgrd confined to one CPU,
/// then gives both back the CPUs this process had. `None` if `taskset` cannot be run.
fn on_one_cpu<T>(
    daemon: &Daemon,
    measure: impl FnOnce() -> Result<T, Failure>,
) -> Result<Option<T>, Failure> {
    let me = std::process::id().to_string();
    let Ok(output) = std::process::Command::new("taskset")
        .args(["-c", "-p", &me])
        .output()
    else {
        return Ok(None);
    };
    // "pid 123's current affinity list: 0,1"
    let text = String::from_utf8_lossy(&output.stdout);
    let original = text
        .rsplit_once(": ")
        .map(|(_, list)| list.trim().to_owned())
        .ok_or_else(|| format!("unexpected taskset output: {text}"))?;
    let first = original.split([',', '-']).next().unwrap_or("0").to_owned();
    let pin = |cpus: &str| -> Result<(), Failure> {
        for pid in [me.clone(), daemon.pid.to_string()] {
            let status = std::process::Command::new("taskset")
                .args(["-a", "-c", "-p", cpus, &pid])
                .stdout(std::process::Stdio::null())
                .status()?;
            if !status.success() {
                return Err(format!("taskset -a -c -p {cpus} {pid}: {status}").into());
            }
        }
        Ok(())
    };
    pin(&first)?;
    let measured = measure();
    pin(&original)?;
    measured.map(Some)
}

/// A server that accepts connections and never answers: transfers to it stay connecting.
struct StallingServer {
    port: u16,
}

impl StallingServer {
    fn start() -> Result<StallingServer, Failure> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        std::thread::spawn(move || {
            // Held, never read: the request sits in the socket buffer unanswered.
            let mut held: Vec<TcpStream> = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
            }
        });
        Ok(StallingServer { port })
    }

    fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }
}

/// Creates a suspended job with one file named `name`.
fn one_file_job(
    service: &impl QueueService,
    stall: &StallingServer,
    downloads: &Path,
    name: &str,
) -> Result<Guid, Failure> {
    let id = service.create_job(name, JobType::Download)?;
    add_one_file(service, id, stall, downloads, name)?;
    Ok(id)
}

fn add_one_file(
    service: &impl QueueService,
    id: Guid,
    stall: &StallingServer,
    downloads: &Path,
    name: &str,
) -> Result<(), Failure> {
    service.add_files(
        id,
        vec![NewFile {
            remote_name: stall.url(name),
            local_name: downloads.join(name).to_string_lossy().into_owned(),
            ranges: None,
        }],
    )?;
    Ok(())
}

/// What creating the jobs took.
struct Created {
    ids: Vec<Guid>,
    /// CreateJob, AddFiles and Resume, each summed over all jobs.
    per_call: [Duration; 3],
    /// The three calls of each job, in creation order.
    per_job: Vec<Duration>,
}

impl Created {
    fn jobs_per_second(&self, jobs: std::ops::Range<usize>) -> f64 {
        let spent: Duration = self.per_job[jobs.clone()].iter().sum();
        count(jobs.len()) / spent.as_secs_f64()
    }
}

/// Creates `JOBS` one-file jobs and resumes each, timing every call.
fn create_jobs(
    client: &Client,
    stall: &StallingServer,
    downloads: &Path,
) -> Result<Created, Failure> {
    let mut created = Created {
        ids: Vec::with_capacity(JOBS),
        per_call: [Duration::ZERO; 3],
        per_job: Vec::with_capacity(JOBS),
    };
    for index in 0..JOBS {
        let name = format!("job-{index}");
        let mut calls = [Duration::ZERO; 3];
        let started = Instant::now();
        let id = client.create_job(&name, JobType::Download)?;
        calls[0] = started.elapsed();
        let started = Instant::now();
        add_one_file(client, id, stall, downloads, &name)?;
        calls[1] = started.elapsed();
        let started = Instant::now();
        client.resume(id)?;
        calls[2] = started.elapsed();
        for (total, call) in created.per_call.iter_mut().zip(calls) {
            *total += call;
        }
        created.per_job.push(calls.iter().sum());
        created.ids.push(id);
    }
    Ok(created)
}

/// `GetJob` through the queue manager hosted in this process.
fn in_process_latency(state_dir: &Path, stall: &StallingServer) -> Result<Latency, Failure> {
    let downloads = state_dir.join("downloads");
    fs::create_dir_all(&downloads)?;
    let manager = QueueManager::start(
        Config::default(),
        &StatePaths::isolated(state_dir),
        Arc::new(SystemClock::new()),
    )?;
    let service = LocalService::new(manager.clone(), rustix::process::getuid().as_raw());
    let id = one_file_job(&service, stall, &downloads, "probe")?;
    let measured = latency(|| service.job(id).map(drop));
    manager.shutdown();
    measured
}

/// Median and 99th percentile of one call.
struct Latency {
    median: Duration,
    p99: Duration,
}

impl Latency {
    fn cell(&self) -> String {
        format!(
            "median {}, p99 {}",
            microseconds(self.median),
            microseconds(self.p99)
        )
    }
}

/// Times `CALLS` calls one by one, after `WARM_UP_CALLS` untimed ones.
fn latency<E: Into<Failure>>(mut call: impl FnMut() -> Result<(), E>) -> Result<Latency, Failure> {
    for _ in 0..WARM_UP_CALLS {
        call().map_err(Into::into)?;
    }
    let mut times = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        call().map_err(Into::into)?;
        times.push(started.elapsed());
    }
    times.sort_unstable();
    Ok(Latency {
        median: times[times.len() / 2],
        p99: times[(times.len() * 99).div_ceil(100) - 1],
    })
}

/// The first three fields of /proc/loadavg.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

fn microseconds(duration: Duration) -> String {
    format!("{:.2} µs", duration.as_secs_f64() * 1e6)
}

fn megabytes(bytes: u64) -> f64 {
    count(bytes) / 1e6
}

/// A count as a float, for rates and shares (exact far beyond any count here).
#[expect(
    clippy::cast_precision_loss,
    reason = "counts in a benchmark table are far below 2^52"
)]
fn count(n: impl TryInto<u64>) -> f64 {
    n.try_into().map_or(f64::NAN, |n: u64| n as f64)
}

#[derive(Default)]
struct Report {
    rows: String,
    /// Other work on the machine shows in the latencies; the reader should know of it.
    load_at_start: String,
}

impl Report {
    fn row(&mut self, measurement: &str, value: &str, target: &str, met: Option<bool>) {
        let result = match met {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "—",
        };
        let _ = writeln!(
            self.rows,
            "| {measurement} | {value} | {target} | {result} |"
        );
    }

    fn render(&self) -> String {
        format!(
            "| measurement | value | target | result |\n|---|---|---|---|\n{}\n\
             Latencies: {CALLS} calls timed one by one after {WARM_UP_CALLS} untimed ones; \
             one client, one connection. MB = 10⁶ bytes. The jobs' files point at a local \
             listener that never answers, `max_background_jobs = 1`, so one job is \
             connecting and the rest are queued. Load average at start (1, 5, 15 min): {}.\n",
            self.rows, self.load_at_start
        )
    }
}

/// The `files-per-job` scenario: the per-file cost of AddFiles, transfer and Complete as a
/// job grows.
mod files_per_job {
    use std::fmt::Write as _;
    use std::fs;
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::mpsc::RecvTimeoutError;
    use std::time::{Duration, Instant};

    use qmgr_core::config::Config;
    use qmgr_core::paths::StatePaths;
    use qmgr_core::service::{JobChange, NewFile, NotificationKind, QueueService, QueueServiceExt};
    use qmgr_core::{Guid, JobState, JobType};
    use qmgr_service::{LocalService, QueueManager, SystemClock};

    use super::{Failure, count, progress};

    pub(super) const DEFAULT_COUNTS: [usize; 4] = [100, 1_000, 10_000, 100_000];
    /// Files per AddFiles call (a client adds a large job in pieces).
    const ADD_BATCH: usize = 1_000;
    /// SetJob calls timed on each job, for the cost of one request on a job of that size.
    const SET_JOB_CALLS: u32 = 20;
    /// Files of the job transferred at once, as `curl --parallel-max 16` would.
    const PARALLEL_FILES: u32 = 16;
    /// The longest a job may take to transfer before the run is called failed.
    const TRANSFER_TIMEOUT: Duration = Duration::from_secs(3600);
    /// The per-file CPU of the largest job may be at most this many times that of the
    /// smallest.
    const FLATNESS_TARGET: f64 = 1.5;

    /// CPU time of this process (every thread, user + system) and of the queue manager's
    /// own thread, and wall time, together.
    #[derive(Clone, Copy)]
    struct Moment {
        cpu: Duration,
        queue_cpu: Duration,
        wall: Instant,
    }

    impl Moment {
        fn now() -> Moment {
            Moment {
                cpu: process_cpu(),
                queue_cpu: queue_thread_cpu(),
                wall: Instant::now(),
            }
        }

        fn until(self, later: Moment) -> Spent {
            Spent {
                cpu: later.cpu.saturating_sub(self.cpu),
                queue_cpu: later.queue_cpu.saturating_sub(self.queue_cpu),
                wall: later.wall.duration_since(self.wall),
            }
        }
    }

    #[derive(Clone, Copy)]
    struct Spent {
        cpu: Duration,
        queue_cpu: Duration,
        wall: Duration,
    }

    /// CPU time of the queue manager's driver thread (`qmgr-queue`: engine events, timers,
    /// scheduling, their store writes), from its schedstat in nanoseconds; requests run on
    /// the calling thread and are not in it.
    fn queue_thread_cpu() -> Duration {
        let Ok(tasks) = fs::read_dir("/proc/self/task") else {
            return Duration::ZERO;
        };
        tasks
            .flatten()
            .filter(|task| {
                fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == "qmgr-queue")
            })
            .filter_map(|task| {
                let stat = fs::read_to_string(task.path().join("schedstat")).ok()?;
                stat.split_whitespace().next()?.parse::<u64>().ok()
            })
            .map(Duration::from_nanos)
            .sum()
    }

    /// The three phases of one job, and one request on it once its files are in.
    struct Measured {
        files: usize,
        add: Spent,
        transfer: Spent,
        complete: Spent,
        /// One SetJob (a new description) on the job with all its files, averaged.
        set_job: Spent,
    }

    impl Measured {
        fn cpu_per_file(&self) -> Duration {
            per_file(
                self.add.cpu + self.transfer.cpu + self.complete.cpu,
                self.files,
            )
        }

        fn queue_cpu_per_file(&self) -> Duration {
            per_file(
                self.add.queue_cpu + self.transfer.queue_cpu + self.complete.queue_cpu,
                self.files,
            )
        }
    }

    fn per_file(total: Duration, files: usize) -> Duration {
        total.div_f64(count(files.max(1)))
    }

    fn process_cpu() -> Duration {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage writes one rusage into the buffer it is given, which is ours,
        // sized and aligned for it.
        let result = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
        if result != 0 {
            return Duration::ZERO;
        }
        // SAFETY: getrusage succeeded, so it filled the structure (and it was zeroed).
        let usage = unsafe { usage.assume_init() };
        let time = |t: libc::timeval| {
            Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
                + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
        };
        time(usage.ru_utime) + time(usage.ru_stime)
    }

    pub(super) fn run(counts: &[usize]) -> Result<String, Failure> {
        let root = tempfile::tempdir()?;
        let mut measured = Vec::new();
        for (round, &files) in counts.iter().enumerate() {
            progress(&format!("one job of {files} files"));
            let dir = root.path().join(format!("round-{round}"));
            measured.push(one_job(&dir, files)?);
            // The next round starts on a clean disk.
            fs::remove_dir_all(&dir)?;
        }
        Ok(render(&measured))
    }

    /// Creates, transfers and completes one job of `files` local files under `dir`.
    fn one_job(dir: &Path, files: usize) -> Result<Measured, Failure> {
        let sources = dir.join("sources");
        let downloads = dir.join("downloads");
        fs::create_dir_all(&sources)?;
        fs::create_dir_all(&downloads)?;
        let mut new_files = Vec::with_capacity(files);
        for index in 0..files {
            let name = format!("f{index:06}");
            let source = sources.join(&name);
            fs::write(&source, format!("file {index}\n"))?;
            new_files.push(NewFile {
                remote_name: format!("file://{}", source.display()),
                local_name: downloads.join(&name).to_string_lossy().into_owned(),
                ranges: None,
            });
        }
        let config = Config {
            max_files_per_job: u32::try_from(files).unwrap_or(u32::MAX).max(1),
            idle_exit: None,
            ..Config::default()
        };
        let manager = QueueManager::start(
            config,
            &StatePaths::isolated(&dir.join("state")),
            Arc::new(SystemClock::new()),
        )?;
        let service = LocalService::new(manager.clone(), rustix::process::getuid().as_raw());
        let outcome = transfer_one_job(&service, new_files);
        manager.shutdown();
        let (add, transfer, complete, set_job) = outcome?;
        let landed = fs::read_dir(&downloads)?.count();
        if landed != files {
            return Err(format!("{landed} of {files} files are in place after Complete").into());
        }
        Ok(Measured {
            files,
            add,
            transfer,
            complete,
            set_job,
        })
    }

    fn transfer_one_job(
        service: &LocalService,
        files: Vec<NewFile>,
    ) -> Result<(Spent, Spent, Spent, Spent), Failure> {
        let total = files.len();
        let notifications = service.subscribe()?;
        let id: Guid = service.create_job("files-per-job", JobType::Download)?;
        service.set_job(id, JobChange::ParallelFiles(PARALLEL_FILES))?;

        let start = Moment::now();
        let mut files = files.into_iter().peekable();
        while files.peek().is_some() {
            service.add_files(id, files.by_ref().take(ADD_BATCH).collect())?;
        }
        let added = Moment::now();

        for call in 0..SET_JOB_CALLS {
            service.set_job(id, JobChange::Description(format!("call {call}")))?;
        }
        let set = Moment::now();
        let set_job = added.until(set);
        let set_job = Spent {
            cpu: set_job.cpu / SET_JOB_CALLS,
            queue_cpu: set_job.queue_cpu / SET_JOB_CALLS,
            wall: set_job.wall / SET_JOB_CALLS,
        };

        service.resume(id)?;
        let deadline = Instant::now() + TRANSFER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match notifications.recv_timeout(left) {
                Ok(n) if n.job == id && n.kind == NotificationKind::Transferred => break,
                Ok(n) if n.job == id && n.state == JobState::Error => {
                    let view = service.job(id)?;
                    return Err(format!("the job failed: {:?}", view.job.error).into());
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "{total} files did not transfer within {TRANSFER_TIMEOUT:?}"
                    )
                    .into());
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err("the notification stream ended".into());
                }
            }
        }
        let transferred = Moment::now();

        service.complete(id)?;
        let completed = Moment::now();
        Ok((
            start.until(added),
            set.until(transferred),
            transferred.until(completed),
            set_job,
        ))
    }

    fn render(measured: &[Measured]) -> String {
        let mut table = String::from(
            "| files in the job | AddFiles CPU / wall per file | transfer to TRANSFERRED CPU / wall per file | Complete CPU / wall per file | CPU per file, all phases | of which the queue thread | one SetJob on the job, CPU / wall |\n|---|---|---|---|---|---|---|\n",
        );
        let micros = |d: Duration| format!("{:.1} µs", d.as_secs_f64() * 1e6);
        for m in measured {
            let cell = |spent: Spent| {
                format!(
                    "{} / {}",
                    micros(per_file(spent.cpu, m.files)),
                    micros(per_file(spent.wall, m.files))
                )
            };
            let _ = writeln!(
                table,
                "| {} | {} | {} | {} | {} | {} | {} / {} |",
                m.files,
                cell(m.add),
                cell(m.transfer),
                cell(m.complete),
                micros(m.cpu_per_file()),
                micros(m.queue_cpu_per_file()),
                micros(m.set_job.cpu),
                micros(m.set_job.wall),
            );
        }
        if let (Some(smallest), Some(largest)) = (
            measured.iter().min_by_key(|m| m.files),
            measured.iter().max_by_key(|m| m.files),
        ) && largest.files > smallest.files
        {
            let ratio = largest.cpu_per_file().as_secs_f64()
                / smallest.cpu_per_file().as_secs_f64().max(f64::MIN_POSITIVE);
            let verdict = if ratio <= FLATNESS_TARGET {
                "PASS"
            } else {
                "MISS"
            };
            let _ = writeln!(
                table,
                "\nCPU per file at {} files is {ratio:.2}× that at {} files (target ≤ \
                 {FLATNESS_TARGET}×): {verdict}.",
                largest.files, smallest.files
            );
        }
        let _ = writeln!(
            table,
            "\nOne job per row, in process (`LocalService`); `file://` sources of a few bytes; \
             AddFiles {ADD_BATCH} files per call; {PARALLEL_FILES} files at once; CPU is the \
             whole process's (user + system, all threads: queue manager, engine, SQLite); the \
             queue thread's share is the driver thread alone (engine events, scheduling and \
             their store writes; not the engine's thread nor the calls). \
             Load average at start: {}.",
            super::load_average()
        );
        table
    }
}
