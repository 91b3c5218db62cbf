//! Service figures, printed as a Markdown table (progress goes to stderr):
//!
//! - the round trip of a property get (`GetJob` of one job) over the socket to a real
//!   qmgrd, and in-process through [`LocalService`];
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
    let Some(qmgrd) = std::env::var_os("QMGRD") else {
        return Err("set QMGRD to the qmgrd executable to measure".into());
    };
    let root = tempfile::tempdir()?;
    let instance = Instance::new(root.path(), PathBuf::from(qmgrd))?;
    let stall = StallingServer::start()?;
    let mut report = Report::default();

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

    progress(&format!("creating and resuming {JOBS} jobs over IPC"));
    let mut jobs = Vec::with_capacity(JOBS);
    // Time spent in each of the three calls, to tell where the time goes.
    let mut spent = [Duration::ZERO; 3];
    let mut timed = |slot: usize, started: Instant| spent[slot] += started.elapsed();
    for index in 0..JOBS {
        let name = format!("job-{index}");
        let started = Instant::now();
        let id = client.create_job(&name, JobType::Download)?;
        timed(0, started);
        let started = Instant::now();
        add_one_file(&client, id, &stall, &instance.downloads, &name)?;
        timed(1, started);
        let started = Instant::now();
        client.resume(id)?;
        timed(2, started);
        jobs.push(id);
    }
    let creating: Duration = spent.iter().sum();
    let jobs_per_second = count(JOBS) / creating.as_secs_f64();
    let mean = |slot: usize| microseconds(spent[slot] / u32::try_from(JOBS).unwrap_or(u32::MAX));
    report.row(
        &format!("create + add one file + resume, {JOBS} jobs over IPC"),
        &format!(
            "{:.2} s ({jobs_per_second:.0} jobs/s; mean per call: CreateJob {}, AddFiles {}, \
             Resume {})",
            creating.as_secs_f64(),
            mean(0),
            mean(1),
            mean(2)
        ),
        "≥ 2,000 jobs/s",
        Some(jobs_per_second >= 2_000.0),
    );

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
    let (cpu_before, wakeups_before) = (daemon.cpu()?, daemon.context_switches()?);
    std::thread::sleep(IDLE_WINDOW);
    let (cpu_after, wakeups_after) = (daemon.cpu()?, daemon.context_switches()?);
    let idle_cpu = cpu_after.saturating_sub(cpu_before);
    let share = idle_cpu.as_secs_f64() / IDLE_WINDOW.as_secs_f64() * 100.0;
    report.row(
        &format!(
            "qmgrd CPU (user+sys) over {} s idle, {JOBS} suspended jobs",
            IDLE_WINDOW.as_secs()
        ),
        &format!(
            "{} ms ({share:.2}% of a core; {} context switches)",
            idle_cpu.as_millis(),
            wakeups_after.saturating_sub(wakeups_before)
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
        let stat = self.proc_file("stat")?;
        // The command name, field 2, is in parentheses; utime and stime are fields 14
        // and 15, so the 12th and 13th after the name.
        let after_name = stat.rsplit_once(')').ok_or("malformed stat")?.1;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |index: usize| -> Result<u64, Failure> {
            Ok(fields.get(index).ok_or("short stat")?.parse()?)
        };
        let total = ticks(11)? + ticks(12)?;
        Ok(Duration::from_secs_f64(
            count(total) / clock_ticks_per_second(),
        ))
    }

    /// Voluntary plus involuntary context switches of all its threads: how often it ran.
    fn context_switches(&self) -> Result<u64, Failure> {
        let mut total = 0;
        for task in fs::read_dir(format!("/proc/{}/task", self.pid))? {
            let status = fs::read_to_string(task?.path().join("status")).unwrap_or_default();
            total += status
                .lines()
                .filter(|line| line.contains("ctxt_switches:"))
                .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
        Ok(total)
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

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a system constant and touches no memory of ours.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        count(ticks.unsigned_abs())
    } else {
        100.0
    }
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
        }],
    )?;
    Ok(())
}

/// `GetJob` through the queue manager hosted in this process.
fn in_process_latency(state_dir: &Path, stall: &StallingServer) -> Result<Latency, Failure> {
    let downloads = state_dir.join("downloads");
    fs::create_dir_all(&downloads)?;
    let manager = QueueManager::start(Config::default(), state_dir, Arc::new(SystemClock::new()))?;
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

fn microseconds(duration: Duration) -> String {
    format!("{:.2} µs", duration.as_secs_f64() * 1e6)
}

fn megabytes(bytes: u64) -> f64 {
    count(bytes) / 1e6
}

/// A count as a float, for rates and shares (exact far beyond any count here).
#[allow(clippy::cast_precision_loss)]
fn count(n: impl TryInto<u64>) -> f64 {
    n.try_into().map_or(f64::NAN, |n: u64| n as f64)
}

#[derive(Default)]
struct Report {
    rows: String,
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
             connecting and the rest are queued.\n",
            self.rows
        )
    }
}
