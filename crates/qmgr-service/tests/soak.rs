//! The soak: many clients keep a large queue moving through one real qmgrd for minutes,
//! against the test server playing random faults (dropped connections, 5xx answers, slow
//! bodies, late answers, 404s). Each client subscribes to notifications and counts them
//! per job; qmgrd's RSS and open descriptors are sampled throughout.
//!
//! Held to:
//! - every JobTransferred, JobError and FileTransferred arrives exactly once (progress
//!   may coalesce): counted per job against the states the jobs reached;
//! - every transferred file is byte for byte the server's, and only the 404 jobs fail;
//! - RSS and descriptors do not grow after warm-up (the short and full profiles): the
//!   last third's maximum against the first third's, with the tolerance of [`bounded`];
//! - the clients' calls' latency (p50, p99, max) is measured and reported, not held.
//!
//! Profiles (`QMGR_SOAK_PROFILE`): unset, a smoke of a few seconds (part of the plain
//! test run); `short`, about a minute and a half; `full`, 10,000 queued jobs and 100
//! clients for 10 minutes (`cargo xtask reliability soak [--short]`). With
//! `QMGR_RELIABILITY_RESULTS=PATH` the figures go into PATH's `soak` section.
//! `QMGR_SOAK_SEED` repeats a run's faults.

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Instance, PATIENCE};
use qmgr_core::hresult;
use qmgr_core::service::{
    JobChange, NewFile, Notification, NotificationKind, PROTOCOL_VERSION, QueueService,
    QueueServiceExt,
};
use qmgr_core::{Guid, JobState, JobType, QmgrError, Timestamp};
use qmgr_ipc::Client;
use qmgr_ipc::frame::{MAX_FRAME_LEN, read_frame, write_frame};
use qmgr_ipc::message::{ClientMessage, Purpose, ServiceMessage};
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

struct Profile {
    name: &'static str,
    clients: usize,
    /// Jobs kept in the queue: each finished job is replaced until the time is up.
    jobs: usize,
    duration: Duration,
    sample_every: Duration,
    /// Whether RSS and descriptors are held to [`bounded`] (a smoke is too short for
    /// thirds to mean anything).
    hold_bounds: bool,
}

fn profile() -> Profile {
    match std::env::var("QMGR_SOAK_PROFILE").as_deref() {
        Ok("full") => Profile {
            name: "full",
            clients: 100,
            jobs: 10_000,
            duration: Duration::from_secs(600),
            sample_every: Duration::from_secs(5),
            hold_bounds: true,
        },
        Ok("short") => Profile {
            name: "short",
            clients: 40,
            jobs: 2_000,
            duration: Duration::from_secs(75),
            sample_every: Duration::from_secs(1),
            hold_bounds: true,
        },
        Ok(other) if !other.is_empty() && other != "smoke" => {
            panic!("QMGR_SOAK_PROFILE is full, short or smoke, not {other:?}")
        }
        _ => Profile {
            name: "smoke",
            clients: 8,
            jobs: 160,
            duration: Duration::from_secs(8),
            sample_every: Duration::from_millis(500),
            hold_bounds: false,
        },
    }
}

/// The instance's config: room for the whole queue and every client, transfers many at
/// once, retries soon (5 s, the least Windows allows), and no idle-mode back-off.
fn config(profile: &Profile) -> String {
    format!(
        "max_jobs_per_user = {}\n\
         max_connections = {}\n\
         max_background_jobs = 64\n\
         idle_mode = false\n\
         idle_exit = \"never\"\n\
         [job_defaults]\n\
         priority = \"normal\"\n\
         minimum_retry_delay = \"5s\"\n",
        // Each client also makes one marker job at the end.
        profile.jobs + profile.clients + 16,
        // A calls and a notifications connection per client, and the test's own.
        (2 * profile.clients + 16).max(256),
    )
}

/// A small xorshift generator: the faults are random but a seed repeats them.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the test server does to a job's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Fault {
    None,
    /// The connection is cut halfway through the body, once.
    Drop,
    /// The first request answers 500.
    ServerError,
    /// The body comes at 16 kB/s.
    Slow,
    /// 300 ms before the response head.
    Late,
    /// 404: the job must end in ERROR.
    NotFound,
    /// Three files, the second cut once halfway.
    ThreeFiles,
}

impl Fault {
    fn pick(rng: &mut Rng) -> Fault {
        match rng.below(100) {
            0..55 => Fault::None,
            55..65 => Fault::Drop,
            65..75 => Fault::ServerError,
            75..80 => Fault::Slow,
            80..85 => Fault::Late,
            85..90 => Fault::NotFound,
            _ => Fault::ThreeFiles,
        }
    }

    /// The query of file `index` of a job of `size`-byte files.
    fn query(self, index: u32, size: u64) -> String {
        let half = size / 2;
        match (self, index) {
            (Fault::Drop, _) | (Fault::ThreeFiles, 1) => {
                format!("?drop_after={half}&drop_once=1")
            }
            (Fault::ServerError, _) => "?fail_first=1&status=500".to_owned(),
            (Fault::Slow, _) => "?rate=16000".to_owned(),
            (Fault::Late, _) => "?delay_ms=300".to_owned(),
            (Fault::NotFound, _) => "?status=404".to_owned(),
            _ => String::new(),
        }
    }

    fn files(self) -> u32 {
        if self == Fault::ThreeFiles { 3 } else { 1 }
    }
}

/// The calls whose latency is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Call {
    CreateJob,
    AddFiles,
    Resume,
    GetJobSummary,
    SetDisplayName,
    Complete,
    Cancel,
    Suspend,
}

/// One job of a client's, and what its notifications said.
struct Tracked {
    fault: Fault,
    /// The server paths of its files, with their size.
    files: Vec<(String, PathBuf)>,
    size: u64,
    transferred: u32,
    errors: u32,
    /// FileTransferred per file index.
    file_transferred: Vec<u32>,
    /// Completed or cancelled by the client (after its notification).
    ended: bool,
}

/// A client's side of the soak.
struct Soaker {
    number: usize,
    client: Client,
    rng: Rng,
    base_url: String,
    downloads: PathBuf,
    jobs: HashMap<Guid, Tracked>,
    latencies: Vec<(Call, Duration)>,
    next_job: usize,
    /// What went wrong that the test must report (wrong files, unexpected errors).
    failures: Vec<String>,
    transferred_jobs: usize,
    failed_jobs: usize,
}

impl Soaker {
    fn timed<T>(&mut self, call: Call, run: impl FnOnce(&Client) -> T) -> T {
        let started = Instant::now();
        let result = run(&self.client);
        self.latencies.push((call, started.elapsed()));
        result
    }

    fn fail(&mut self, what: String) {
        if self.failures.len() < 20 {
            self.failures.push(what);
        }
    }

    /// Queues one new job with a random fault and resumes it.
    fn add_job(&mut self) -> Result<(), QmgrError> {
        let fault = Fault::pick(&mut self.rng);
        let size = 1024 + self.rng.below(31 * 1024);
        let job_number = self.next_job;
        self.next_job += 1;
        let name = format!("soak {}/{job_number}", self.number);
        let id = self.timed(Call::CreateJob, |c| c.create_job(&name, JobType::Download))?;
        let files: Vec<(String, PathBuf)> = (0..fault.files())
            .map(|index| {
                let path = format!("/data/{size}/soak/{}/{job_number}/{index}", self.number);
                let local = self
                    .downloads
                    .join(format!("c{}-j{job_number}-f{index}", self.number));
                (path, local)
            })
            .collect();
        let new_files = files
            .iter()
            .enumerate()
            .map(|(index, (path, local))| NewFile {
                remote_name: format!(
                    "{}{path}{}",
                    self.base_url,
                    fault.query(u32::try_from(index).unwrap(), size)
                ),
                local_name: local.to_string_lossy().into_owned(),
                ranges: None,
            })
            .collect();
        self.timed(Call::AddFiles, |c| c.add_files(id, new_files))?;
        self.jobs.insert(
            id,
            Tracked {
                fault,
                file_transferred: vec![0; files.len()],
                files,
                size,
                transferred: 0,
                errors: 0,
                ended: false,
            },
        );
        self.timed(Call::Resume, |c| c.resume(id))?;
        Ok(())
    }

    /// Counts `notification`; when `act`, finishes the job it ends (checking its files)
    /// and queues a replacement when `replace`.
    fn take(&mut self, notification: &Notification, act: bool, replace: bool) {
        let Some(job) = self.jobs.get_mut(&notification.job) else {
            return; // another client's
        };
        match notification.kind {
            NotificationKind::Transferred => job.transferred += 1,
            NotificationKind::Error => job.errors += 1,
            NotificationKind::FileTransferred { file } => {
                if let Some(count) = job.file_transferred.get_mut(file as usize) {
                    *count += 1;
                } else {
                    self.fail(format!("FileTransferred of file {file}, which no job has"));
                }
                return;
            }
            _ => return,
        }
        if !act || job.ended {
            return;
        }
        job.ended = true;
        let id = notification.job;
        let (fault, size, files) = (job.fault, job.size, job.files.clone());
        let outcome = if notification.kind == NotificationKind::Transferred {
            self.transferred_jobs += 1;
            let completed = self.timed(Call::Complete, |c| c.complete(id));
            if let Err(error) = completed {
                self.fail(format!("Complete of {id} failed: {error}"));
            }
            if fault == Fault::NotFound {
                self.fail(format!("{id} with a 404 was transferred"));
            }
            for (path, local) in &files {
                match std::fs::read(local) {
                    Ok(held) if held == expected_body(path, INITIAL_VERSION, size) => {}
                    Ok(held) => self.fail(format!(
                        "{} ({fault:?}) is not the server's file: {} of {size} bytes",
                        local.display(),
                        held.len()
                    )),
                    Err(error) => self.fail(format!("{} missing: {error}", local.display())),
                }
                let _ = std::fs::remove_file(local);
            }
            Ok(())
        } else {
            self.failed_jobs += 1;
            let why = self
                .client
                .job_summary(id)
                .map(|summary| summary.job.error.map(|error| error.error));
            let cancelled = self.timed(Call::Cancel, |c| c.cancel(id));
            match why {
                Ok(Some(error))
                    if fault == Fault::NotFound
                        && error.hresult == hresult::BG_E_HTTP_ERROR_404 =>
                {
                    Ok(())
                }
                other => Err(format!("{id} ({fault:?}) ended in ERROR: {other:?}")),
            }
            .and(
                cancelled
                    .map(drop)
                    .map_err(|e| format!("Cancel of {id}: {e}")),
            )
        };
        if let Err(what) = outcome {
            self.fail(what);
        }
        if replace && let Err(error) = self.add_job() {
            self.fail(format!("cannot queue a replacement job: {error}"));
        }
    }

    /// A reader's call on a random job of its own, sometimes a change.
    fn observe(&mut self) {
        let live: Vec<Guid> = self
            .jobs
            .iter()
            .filter(|(_, job)| !job.ended)
            .map(|(id, _)| *id)
            .collect();
        if live.is_empty() {
            return;
        }
        let id = live[usize::try_from(self.rng.below(live.len() as u64)).unwrap()];
        if self.rng.below(10) == 0 {
            let name = format!("soak {} renamed", self.number);
            let _ = self.timed(Call::SetDisplayName, |c| {
                c.set_job(id, JobChange::DisplayName(name))
            });
        } else {
            // The job may end meanwhile; only the latency counts here.
            let _ = self.timed(Call::GetJobSummary, |c| c.job_summary(id));
        }
    }

    /// Stops every job still moving, then takes notifications until a marker published
    /// after all of theirs arrives: the counts are then complete.
    fn settle(&mut self, notifications: &Receiver<Notification>) {
        let live: Vec<Guid> = self
            .jobs
            .iter()
            .filter(|(_, job)| !job.ended)
            .map(|(id, _)| *id)
            .collect();
        for id in live {
            // A job that reached TRANSFERRED or ERROR refuses; it stays as it is.
            let _ = self.timed(Call::Suspend, |c| c.suspend(id));
        }
        let marker = self
            .client
            .create_job(&format!("soak {} marker", self.number), JobType::Download)
            .expect("the marker job");
        self.client
            .set_job(marker, JobChange::DisplayName("marker".into()))
            .expect("renaming the marker job");
        let deadline = Instant::now() + PATIENCE;
        loop {
            match notifications.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(notification) if notification.job == marker => break,
                Ok(notification) => self.take(&notification, false, false),
                Err(error) => panic!("client {}: no marker notification: {error}", self.number),
            }
        }
        let _ = self.client.cancel(marker);
    }

    /// Holds each job's counts to the state it reached: what was lost or duplicated.
    fn audit(&mut self) -> Audit {
        let mut audit = Audit::default();
        let ids: Vec<Guid> = self.jobs.keys().copied().collect();
        for id in ids {
            let job = &self.jobs[&id];
            let (ended, transferred, errors) = (job.ended, job.transferred, job.errors);
            let file_counts = job.file_transferred.clone();
            // What the job reached: from its notification when it ended, else from qmgrd.
            let mut state = None;
            let (want_transferred, want_errors, files_done) = if ended {
                let done = transferred > 0;
                (
                    u32::from(done),
                    u32::from(!done),
                    if done { file_counts.len() } else { 0 },
                )
            } else {
                let summary = self
                    .client
                    .job_summary(id)
                    .unwrap_or_else(|error| panic!("job {id}: {error}"));
                let job = &summary.job;
                state = Some(job.state);
                // Suspend is allowed on a TRANSFERRED or ERROR job and makes it SUSPENDED
                // (state-machine.md): then its completion time, or the 404 it keeps, tells
                // what it reached.
                let suspended = job.state == JobState::Suspended;
                let reached_transferred = job.state == JobState::Transferred
                    || suspended && job.times.transfer_completed != Timestamp::ZERO;
                let reached_error = job.state == JobState::Error
                    || suspended
                        && job.error.as_ref().is_some_and(|error| {
                            error.error.hresult == hresult::BG_E_HTTP_ERROR_404
                        });
                (
                    u32::from(reached_transferred),
                    u32::from(reached_error),
                    summary.progress.files_transferred as usize,
                )
            };
            let files_seen = file_counts.iter().filter(|count| **count > 0).count();
            let lost = (want_transferred.saturating_sub(transferred)
                + want_errors.saturating_sub(errors)) as usize
                + files_done.saturating_sub(files_seen);
            let duplicated = (transferred.saturating_sub(want_transferred)
                + errors.saturating_sub(want_errors)) as usize
                + file_counts
                    .iter()
                    .map(|count| count.saturating_sub(1) as usize)
                    .sum::<usize>()
                + files_seen.saturating_sub(files_done);
            audit.lost += lost;
            audit.duplicated += duplicated;
            audit.counted += (transferred + errors) as usize
                + file_counts
                    .iter()
                    .map(|count| *count as usize)
                    .sum::<usize>();
            if lost + duplicated > 0 && audit.examples.len() < 10 {
                audit.examples.push(format!(
                    "{id} ({:?}, ended by the client: {ended}, now {state:?}): transferred \
                     {transferred}/{want_transferred}, errors {errors}/{want_errors}, \
                     FileTransferred per file {file_counts:?}, {files_done} files done",
                    job.fault
                ));
            }
        }
        audit
    }
}

#[derive(Default, Debug)]
struct Audit {
    counted: usize,
    lost: usize,
    duplicated: usize,
    examples: Vec<String>,
}

/// One client's results.
struct ClientReport {
    latencies: Vec<(Call, Duration)>,
    audit: Audit,
    failures: Vec<String>,
    transferred_jobs: usize,
    failed_jobs: usize,
    jobs_made: usize,
}

/// One look at qmgrd.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    fds: usize,
    warm: bool,
}

fn sample(pid: i32, started: Instant, warm: bool) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some(Sample {
        at: started.elapsed(),
        rss_kib,
        fds,
        warm,
    })
}

/// The tolerance of "no growth after warm-up", comparing the maximum of the last third of
/// the warm samples with the first third's:
/// - RSS may be 10 % or 8 MiB higher, whichever is more: the queue's size is steady, but
///   the allocator keeps freed memory in its arenas (one per busy thread, and qmgrd runs
///   a thread per connection), so the peak drifts a little with how the work happened to
///   fall on threads; a leak of even a few hundred bytes per job grows by far more over
///   tens of thousands of jobs;
/// - descriptors may be 64 more, one per transfer `max_background_jobs` lets run at
///   once: each holds a connection to the server and a temporary file while it runs,
///   so whether a third's highest sample caught 30 or 64 transfers mid-flight decides
///   tens of descriptors (a full run saw 581 and 599). A leak per job would add tens of
///   thousands; and what must come back exactly is checked once the clients leave
///   ([`QUIET_ALLOWANCE`]).
const FDS_ALLOWANCE: usize = 64;

fn bounded(first_max: Sample, last_max: Sample) -> Result<(), String> {
    let rss_allowance = (first_max.rss_kib / 10).max(8 * 1024);
    let mut why = Vec::new();
    if last_max.rss_kib > first_max.rss_kib + rss_allowance {
        why.push(format!(
            "RSS grew from {} KiB to {} KiB (allowed +{rss_allowance} KiB)",
            first_max.rss_kib, last_max.rss_kib
        ));
    }
    if last_max.fds > first_max.fds + FDS_ALLOWANCE {
        why.push(format!(
            "descriptors grew from {} to {} (allowed +{FDS_ALLOWANCE})",
            first_max.fds, last_max.fds
        ));
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err(why.join("; "))
    }
}

#[test]
fn bounded_accepts_noise_and_refuses_growth() {
    let at = |rss_kib, fds| Sample {
        at: Duration::ZERO,
        rss_kib,
        fds,
        warm: true,
    };
    assert!(bounded(at(100_000, 300), at(108_000, 310)).is_ok());
    assert!(bounded(at(20_000, 300), at(28_000, 364)).is_ok());
    assert!(bounded(at(100_000, 300), at(111_000, 300)).is_err());
    assert!(bounded(at(100_000, 300), at(100_000, 365)).is_err());
}

/// The maxima of the first and last thirds of the warm samples.
fn thirds(samples: &[Sample]) -> Option<(Sample, Sample)> {
    let warm: Vec<Sample> = samples.iter().copied().filter(|s| s.warm).collect();
    let third = warm.len() / 3;
    if third == 0 {
        return None;
    }
    let max = |part: &[Sample]| Sample {
        at: part[0].at,
        rss_kib: part.iter().map(|s| s.rss_kib).max().unwrap(),
        fds: part.iter().map(|s| s.fds).max().unwrap(),
        warm: true,
    };
    Some((max(&warm[..third]), max(&warm[warm.len() - third..])))
}

/// User and system CPU time `pid` used so far, in seconds.
fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command's closing parenthesis; utime and stime are the 14th and
    // 15th of the whole line.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let per_second = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<u32>()
                .ok()
        })
        .unwrap_or(100);
    #[allow(clippy::cast_precision_loss)] // CPU ticks far below 2^52
    let seconds = ticks as f64 / f64::from(per_second);
    seconds
}

/// How many descriptors besides its TCP connections qmgrd may hold once every client is
/// gone and nothing moves, beyond what it held with one client before the run: what the
/// subscription that looks costs, its socket (held twice, by its reader and its writer)
/// and its queue's eventfd. None of the run's
/// connections, subscriptions or files may stay open. TCP connections are left out:
/// they are libcurl's cache of idle connections to the server, bounded by libcurl (four
/// per transfer at most, none older than 118 s).
const QUIET_ALLOWANCE: usize = 3;

/// qmgrd's descriptors once the clients are gone and nothing moves, each look made while
/// a new subscriber is there (qmgrd forgets the subscribers who left when one comes):
/// polled until those besides TCP are back to `baseline` plus [`QUIET_ALLOWANCE`], or for
/// at most [`PATIENCE`]; the last look.
fn quiet_descriptors(pid: i32, baseline: usize, socket: &Path) -> Descriptors {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let probe = raw_subscriber(socket);
        let now = descriptors(pid);
        drop(probe);
        if now.other <= baseline + QUIET_ALLOWANCE || Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A subscriber that says Hello on its own socket, so that dropping it hangs up (a
/// dropped `Receiver` of the client library is noticed only at the next notification).
fn raw_subscriber(socket: &Path) -> std::os::unix::net::UnixStream {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    write_frame(
        &mut stream,
        &ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            purpose: Purpose::Notifications,
            client_name: "soak probe".into(),
        },
    )
    .unwrap();
    match read_frame::<ServiceMessage>(&mut stream, MAX_FRAME_LEN).unwrap() {
        ServiceMessage::Welcome { .. } => stream,
        other => panic!("expected a Welcome, got {other:?}"),
    }
}

/// What a process's descriptors are.
#[derive(Debug)]
struct Descriptors {
    /// Counted by kind: sockets by family, `anon_inode:[eventfd]` and the like, files by
    /// name.
    kinds: Vec<(String, usize)>,
    /// TCP sockets: qmgrd's connections to servers.
    tcp: usize,
    /// Everything else.
    other: usize,
}

fn descriptors(pid: i32) -> Descriptors {
    // Socket inodes by family, from the tables of qmgrd's network namespace.
    let inodes = |table: &str, column: usize| -> Vec<String> {
        std::fs::read_to_string(format!("/proc/{pid}/net/{table}"))
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|line| line.split_whitespace().nth(column).map(str::to_owned))
            .collect()
    };
    let unix = inodes("unix", 6);
    let tcp: Vec<String> = [inodes("tcp", 9), inodes("tcp6", 9)].concat();
    let mut kinds: HashMap<String, usize> = HashMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let target = std::fs::read_link(entry.path())
            .map(|target| target.to_string_lossy().into_owned())
            .unwrap_or_default();
        let kind = match target.split_once(":[") {
            Some(("socket", inode)) => {
                let inode = inode.trim_end_matches(']');
                if unix.iter().any(|i| i == inode) {
                    "unix socket".to_owned()
                } else if tcp.iter().any(|i| i == inode) {
                    "tcp socket".to_owned()
                } else {
                    "other socket".to_owned()
                }
            }
            _ => target,
        };
        *kinds.entry(kind).or_default() += 1;
    }
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort();
    let tcp = kinds
        .iter()
        .find(|(kind, _)| kind == "tcp socket")
        .map_or(0, |(_, n)| *n);
    let other = kinds.iter().map(|(_, n)| n).sum::<usize>() - tcp;
    Descriptors { kinds, tcp, other }
}

/// The `per_mille`th per-mille of `sorted` (nearest rank).
fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    sorted[((sorted.len() - 1) * per_mille).div_ceil(1000)]
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

fn seed() -> u64 {
    std::env::var("QMGR_SOAK_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            u64::from(now.subsec_nanos()) ^ now.as_secs() | 1
        })
}

/// What every client of a run shares.
struct Run<'a> {
    /// Each client's share of the queue.
    jobs: usize,
    paths: &'a qmgr_core::paths::StatePaths,
    base_url: String,
    downloads: PathBuf,
    seed: u64,
    until: Instant,
    /// How many clients have queued their share.
    warmed: &'a AtomicUsize,
}

/// One client's whole run: its share of the queue, kept full until the run's end.
fn run_client(number: usize, run: &Run<'_>) -> ClientReport {
    let Run {
        jobs,
        paths,
        seed,
        until,
        warmed,
        ..
    } = *run;
    let client = Client::connect(paths).expect("a soak client connects");
    let notifications = client.subscribe().expect("a soak client subscribes");
    let mut soaker = Soaker {
        number,
        client,
        rng: Rng(seed.wrapping_add(0x9E37_79B9_7F4A_7C15_u64.wrapping_mul(number as u64 + 1)) | 1),
        base_url: run.base_url.clone(),
        downloads: run.downloads.clone(),
        jobs: HashMap::new(),
        latencies: Vec::new(),
        next_job: 0,
        failures: Vec::new(),
        transferred_jobs: 0,
        failed_jobs: 0,
    };
    for _ in 0..jobs {
        // Notifications wait in their bounded queue meanwhile; Transferred and Error are
        // never dropped there.
        soaker.add_job().expect("queueing the first jobs");
    }
    warmed.fetch_add(1, Ordering::SeqCst);
    let mut next_look = Instant::now();
    while Instant::now() < until {
        match notifications.recv_timeout(Duration::from_millis(20)) {
            Ok(notification) => soaker.take(&notification, true, true),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                panic!("client {number}: the notification stream ended")
            }
        }
        if Instant::now() >= next_look {
            soaker.observe();
            next_look = Instant::now() + Duration::from_millis(250);
        }
    }
    soaker.settle(&notifications);
    let audit = soaker.audit();
    ClientReport {
        latencies: std::mem::take(&mut soaker.latencies),
        audit,
        failures: std::mem::take(&mut soaker.failures),
        transferred_jobs: soaker.transferred_jobs,
        failed_jobs: soaker.failed_jobs,
        jobs_made: soaker.next_job,
    }
}

#[test]
fn soak_many_clients_keep_a_big_queue_moving_through_faults() {
    let profile = profile();
    let seed = seed();
    println!(
        "soak profile {}: {} clients, {} jobs, {:?}, seed {seed}",
        profile.name, profile.clients, profile.jobs, profile.duration
    );
    let server = TestServer::start();
    let instance = Instance::with_config(&config(&profile));
    let first = instance.client();
    first.ping().expect("qmgrd answers");
    let pid = *instance.daemons().first().expect("qmgrd runs");
    let paths = instance.paths();
    let downloads = instance.downloads();
    let calm = descriptors(pid);
    println!("qmgrd's descriptors before the run: {:?}", calm.kinds);
    let cpu_before = cpu_seconds(pid);

    let started = Instant::now();
    let warmed = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = std::thread::spawn({
        let (warmed, stop, samples) = (warmed.clone(), stop.clone(), samples.clone());
        let (every, clients) = (profile.sample_every, profile.clients);
        move || {
            while !stop.load(Ordering::SeqCst) {
                let warm = warmed.load(Ordering::SeqCst) == clients;
                if let Some(sample) = sample(pid, started, warm) {
                    samples.lock().unwrap().push(sample);
                }
                std::thread::sleep(every);
            }
        }
    });
    let until = started + profile.duration;
    let run = Run {
        jobs: profile.jobs / profile.clients,
        paths: &paths,
        base_url: server.base_url(),
        downloads: downloads.clone(),
        seed,
        until,
        warmed: &warmed,
    };
    let reports: Vec<ClientReport> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..profile.clients)
            .map(|number| {
                let run = &run;
                std::thread::Builder::new()
                    .name(format!("soak-client-{number}"))
                    .spawn_scoped(scope, move || run_client(number, run))
                    .unwrap()
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    let samples = samples.lock().unwrap().clone();
    let cpu = cpu_seconds(pid) - cpu_before;
    // The clients dropped their receivers: the client library notices that only when a
    // notification comes (README, Reliability), so what they left is counted, then a
    // change to a job of the user's lets them go.
    let lingering = {
        let _probe = raw_subscriber(&paths.socket_path());
        descriptors(pid)
    };
    let nudge = first
        .create_job("after the soak", JobType::Download)
        .expect("a job after the soak");
    first
        .set_job(
            nudge,
            JobChange::DisplayName("after the soak, renamed".into()),
        )
        .expect("renaming it");
    first.cancel(nudge).expect("cancelling it");
    let quiet = quiet_descriptors(pid, calm.other, &paths.socket_path());
    println!(
        "qmgrd's descriptors once the clients left: {:?}",
        quiet.kinds
    );
    let quiet_ok = quiet.other <= calm.other + QUIET_ALLOWANCE;
    assert!(
        instance.daemons().contains(&pid),
        "qmgrd died during the soak:\n{}",
        instance.log()
    );

    let mut latencies: Vec<(Call, Duration)> = Vec::new();
    let mut audit = Audit::default();
    let mut failures = Vec::new();
    let (mut transferred, mut failed, mut made) = (0, 0, 0);
    for report in reports {
        latencies.extend(report.latencies);
        audit.counted += report.audit.counted;
        audit.lost += report.audit.lost;
        audit.duplicated += report.audit.duplicated;
        audit.examples.extend(report.audit.examples);
        failures.extend(report.failures);
        transferred += report.transferred_jobs;
        failed += report.failed_jobs;
        made += report.jobs_made;
    }
    let warm_at = samples.iter().find(|s| s.warm).map(|s| s.at);
    let bounds = thirds(&samples);
    let verdict = bounds.map(|(first, last)| bounded(first, last));

    let mut text = String::new();
    let _ = writeln!(
        text,
        "## Soak ({} profile)\n\n\
         {} clients kept {} jobs queued for {:.0} s (the run took {:.0} s with the final \
         audit) through one qmgrd (debug build) against the test server: 55 % of jobs \
         clean, 10 % cut once halfway, 10 % a 500 first, 5 % slow (16 kB/s), 5 % 300 ms \
         late, 5 % 404, 10 % three files with one cut; files of 1–32 KiB, \
         `max_background_jobs = 64`, MinimumRetryDelay 5 s. Seed {seed} \
         (`crates/qmgr-service/tests/soak.rs`, `QMGR_SOAK_SEED` repeats it).\n",
        profile.name,
        profile.clients,
        profile.jobs,
        profile.duration.as_secs_f64(),
        took.as_secs_f64(),
    );
    let _ = writeln!(
        text,
        "- jobs: {made} queued, {transferred} transferred and completed (every file compared \
         byte for byte), {failed} ended in ERROR (the 404s), the rest still queued at the end"
    );
    let _ = writeln!(
        text,
        "- notifications: {} JobTransferred/JobError/FileTransferred counted, **{} lost, {} \
         duplicated**; other failures: {}",
        audit.counted,
        audit.lost,
        audit.duplicated,
        failures.len()
    );
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        let peak_rss = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
        let peak_fds = samples.iter().map(|s| s.fds).max().unwrap_or(0);
        let _ = writeln!(
            text,
            "- qmgrd, sampled every {:?} ({} samples; warm, all jobs queued, from {:.0} s): \
             RSS {} → {} KiB (peak {peak_rss} KiB), open descriptors {} → {} (peak {peak_fds})",
            profile.sample_every,
            samples.len(),
            warm_at.unwrap_or_default().as_secs_f64(),
            first.rss_kib,
            last.rss_kib,
            first.fds,
            last.fds,
        );
    }
    let _ = writeln!(
        text,
        "- qmgrd's descriptors besides TCP with one client before the run: {}; once the \
         clients left, nothing moving, with a new subscriber looking: {} (subscriptions whose \
         receiver was dropped stay until a notification comes), then after one: {}{} (and {} \
         idle TCP connections libcurl keeps); CPU time over the run: {cpu:.0} s ({:.0} % of \
         one core)",
        calm.other,
        lingering.other,
        quiet.other,
        if quiet_ok {
            String::new()
        } else {
            format!(" (**more than {QUIET_ALLOWANCE} over**)")
        },
        quiet.tcp,
        cpu / took.as_secs_f64() * 100.0
    );
    if let Some((first, last)) = bounds {
        let _ = writeln!(
            text,
            "- after warm-up, maximum of the first third → the last third: RSS {} → {} KiB, \
             descriptors {} → {}: {}",
            first.rss_kib,
            last.rss_kib,
            first.fds,
            last.fds,
            match &verdict {
                Some(Ok(())) => "bounded (within +10 % or 8 MiB RSS, +64 descriptors)".to_owned(),
                Some(Err(why)) => format!("**{why}**"),
                None => String::new(),
            }
        );
    }
    let mut by_call: HashMap<Call, Vec<Duration>> = HashMap::new();
    for (call, took) in &latencies {
        by_call.entry(*call).or_default().push(*took);
    }
    let mut all: Vec<Duration> = latencies.iter().map(|(_, d)| *d).collect();
    all.sort();
    let _ = writeln!(
        text,
        "\nIPC latency of the clients' calls (from call to answer, measured in the clients):\n\n\
         | call | calls | p50 | p99 | max |\n|---|---|---|---|---|"
    );
    let mut calls: Vec<_> = by_call.into_iter().collect();
    calls.sort_by_key(|(call, _)| *call);
    for (call, mut durations) in calls
        .into_iter()
        .chain(std::iter::once((Call::CreateJob, Vec::new())))
    {
        let label = if durations.is_empty() {
            durations = all.clone();
            "all".to_owned()
        } else {
            format!("{call:?}")
        };
        durations.sort();
        if durations.is_empty() {
            continue;
        }
        let _ = writeln!(
            text,
            "| {label} | {} | {} | {} | {} |",
            durations.len(),
            ms(percentile(&durations, 500)),
            ms(percentile(&durations, 990)),
            ms(*durations.last().unwrap())
        );
    }
    println!("{text}");
    for failure in &failures {
        println!("failure: {failure}");
    }
    for example in &audit.examples {
        println!("miscounted: {example}");
    }
    if let Some(results) = std::env::var_os("QMGR_RELIABILITY_RESULTS") {
        qmgr_tests::results::write_part(Path::new(&results), "soak", "soak-figures", &text)
            .expect("writing the results");
    }

    assert!(
        failures.is_empty(),
        "the soak went wrong:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        (audit.lost, audit.duplicated),
        (0, 0),
        "notifications lost or duplicated: {:#?}",
        audit.examples
    );
    assert!(transferred > 0, "no job was transferred");
    assert!(
        quiet_ok,
        "qmgrd holds {} descriptors besides TCP once the clients left, {} before they came: \
         {:?}",
        quiet.other, calm.other, quiet.kinds
    );
    if profile.hold_bounds {
        match verdict {
            Some(result) => result.expect("qmgrd's RSS and descriptors stay bounded"),
            None => panic!("too few samples after warm-up: {samples:?}"),
        }
    }
}

/// Subscribers that hang up while no job changes leave nothing behind in qmgrd: each
/// kept its queue and eventfd until the next notification about the user's jobs, so a
/// client subscribing again and again on a quiet queue could run qmgrd out of
/// descriptors.
#[test]
fn subscribers_that_leave_a_quiet_queue_leave_no_descriptor_behind() {
    let instance = Instance::new();
    let client = instance.client();
    client.ping().unwrap();
    let pid = *instance.daemons().first().expect("qmgrd runs");
    let calm = descriptors(pid);
    let socket = instance.paths().socket_path();
    for _ in 0..40 {
        // Hangs up at once.
        drop(raw_subscriber(&socket));
    }
    let quiet = quiet_descriptors(pid, calm.other, &socket);
    assert!(
        quiet.other <= calm.other + QUIET_ALLOWANCE,
        "after 40 subscribers left qmgrd holds {:?}, before {:?}",
        quiet.kinds,
        calm.kinds
    );
}
