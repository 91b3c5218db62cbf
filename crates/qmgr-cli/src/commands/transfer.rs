//! `qmgr transfer`: create the jobs, resume them, watch them with progress until the
//! service has completed them.
//!
//! The jobs carry an auto-complete mark, so the service moves the files into place when
//! they are transferred whether or not this process is still there (killed, its terminal
//! closed, its pipe broken). The watch survives a restart of qmgrd: it reconnects (starting
//! qmgrd again) and goes on following the same jobs.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use qmgr_core::credentials::{AuthScheme, AuthTarget, Credential, Secret};
use qmgr_core::file::SIZE_UNKNOWN;
use qmgr_core::hresult;
use qmgr_core::job::AutoComplete;
use qmgr_core::service::{
    JobChange, JobSummary, JobView, NewFile, Notification, NotificationKind, QueueService,
    QueueServiceExt, WaitReason,
};
use qmgr_core::{FileRecord, Guid, JobPriority, JobState, Timestamp};
use qmgr_ipc::Client;

use crate::cli::{RateArg, TransferArgs};
use crate::destinations::{self, Planned, Target};
use crate::failure::{Exit, Failure};
use crate::human;
use crate::json::{self, JobJson, JobList};
use crate::password::read_password;
use crate::progress::{FileState, Progress, Snapshot, Totals};
use crate::session::Session;

/// How often the jobs are looked at when no notification arrives sooner.
const POLL: Duration = Duration::from_millis(200);
/// The shortest time between two looks at the jobs, however many notifications arrive.
const LOOK_GAP: Duration = Duration::from_millis(100);
/// The most notifications taken at once after the gap before the next look.
const DRAIN_AT_MOST: usize = 100_000;
/// Longest default display name; the service allows 256 characters.
const DEFAULT_NAME_CHARS: usize = 120;
/// Interactive transfers: the first retry after a transient error comes this soon (each
/// later one waits twice as long, up to the job's MinimumRetryDelay).
const INTERACTIVE_FIRST_RETRY: Duration = Duration::from_secs(5);
/// Interactive transfers: the job goes to ERROR after this long without progress, unless
/// `--no-progress-timeout` says otherwise.
const INTERACTIVE_NO_PROGRESS_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a watch that finds a job gone waits for the notification that says how it went.
const DEPARTURE_NEWS: Duration = Duration::from_secs(2);
/// How long the watch keeps trying to reach qmgrd again after losing it.
const RECONNECT_FOR: Duration = Duration::from_secs(60);

pub fn run(session: &Session, args: &TransferArgs) -> Result<(), Failure> {
    let cwd = std::env::current_dir()
        .map_err(|error| Failure::usage(format!("cannot read the current directory: {error}")))?;
    let target = match (&args.output, &args.dir) {
        (Some(file), _) => Target::File(file),
        (None, Some(dir)) => Target::Directory(dir),
        (None, None) => Target::Directory(Path::new(".")),
    };
    // Each URL is checked where it is read: a list's with its line number.
    for url in &args.urls {
        destinations::check_remote(url)?;
    }
    let mut urls = args.urls.clone();
    if let Some(list) = &args.input_file {
        urls.extend(read_url_list(list)?);
    }
    if urls.is_empty() {
        return Err(Failure::usage(
            "no URLs to transfer: name them on the command line or list them with -i FILE",
        ));
    }
    let planned = if args.job_type.is_upload() {
        upload_plan(&urls, args.output.as_deref(), &cwd)?
    } else {
        destinations::plan(&urls, target, &cwd, args.no_clobber)?
    };
    let chunk_size = usize::try_from(session.config.max_files_per_job.max(1)).unwrap_or(usize::MAX);
    let planned_count = planned.len();
    let mut planned = planned.into_iter().peekable();
    let mut chunks: Vec<Vec<Planned>> = Vec::new();
    while planned.peek().is_some() {
        chunks.push(planned.by_ref().take(chunk_size).collect());
    }
    let job_quota = usize::try_from(session.config.max_jobs_per_user.max(1)).unwrap_or(usize::MAX);
    if args.background && chunks.len() > job_quota {
        return Err(Failure::usage(format!(
            "{} URLs need {} jobs, more than max_jobs_per_user ({job_quota}) allows at once; \
             --background queues only what fits (at most {} URLs), while a transfer watched \
             here (without --background) queues the rest as earlier jobs finish",
            planned_count,
            chunks.len(),
            job_quota.saturating_mul(chunk_size)
        )));
    }

    let credentials = login(args)?;
    let interrupted = watch_interrupts()?;
    let client = session.connect()?;
    if args.background {
        return run_background(&client, &chunks, args, &credentials, &interrupted);
    }
    // Listening before the jobs start: a small job may be transferred and completed by
    // the service before the first look at it, and only a notification tells that apart
    // from another command's Cancel.
    let mut news = News::default();
    news.ensure_subscribed(&client);
    let watch = Watch {
        client: &client,
        interrupted: &interrupted,
        args,
        credentials: &credentials,
    };
    watch.run(chunks, news)
}

/// `qmgr upload FILE URL`: the one file, its path made absolute (qmgrd reads it, from
/// another working directory). The service checks that it can be read.
fn upload_plan(urls: &[String], file: Option<&Path>, cwd: &Path) -> Result<Vec<Planned>, Failure> {
    let (Some(url), Some(file)) = (urls.first(), file) else {
        return Err(Failure::usage("qmgr upload takes one FILE and one URL"));
    };
    if !std::fs::metadata(file).is_ok_and(|status| status.is_file()) {
        return Err(Failure::usage(format!(
            "{}: not a file that can be uploaded",
            file.display()
        )));
    }
    Ok(vec![Planned {
        remote: url.clone(),
        local: cwd.join(file),
    }])
}

/// The URLs listed in `list` (`-`: standard input).
fn read_url_list(list: &Path) -> Result<Vec<String>, Failure> {
    let (text, source) = if list == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|error| Failure::usage(format!("cannot read standard input: {error}")))?;
        (text, "standard input".to_owned())
    } else {
        let text = std::fs::read_to_string(list)
            .map_err(|error| Failure::usage(format!("cannot read {}: {error}", list.display())))?;
        (text, list.display().to_string())
    };
    parse_url_list(&text).map_err(|failure| failure.context(source))
}

/// One URL a line; blank lines and lines starting with `#` are skipped. The first bad line
/// is an error naming it, so nothing is queued from a list with a mistake in it.
fn parse_url_list(text: &str) -> Result<Vec<String>, Failure> {
    text.lines()
        .zip(1usize..)
        .filter(|(line, _)| {
            let line = line.trim();
            !line.is_empty() && !line.starts_with('#')
        })
        .map(|(line, number)| {
            let url = line.trim();
            if url.contains(char::is_whitespace) {
                return Err(Failure::usage(format!(
                    "line {number}: expected one URL, found {:?}",
                    human::clean(line)
                )));
            }
            destinations::check_remote(url)
                .map_err(|failure| failure.context(format!("line {number}")))?;
            Ok(url.to_owned())
        })
        .collect()
}

/// `--background`: every job is created and started here, then left to the service.
fn run_background(
    client: &Client,
    chunks: &[Vec<Planned>],
    args: &TransferArgs,
    credentials: &[Credential],
    interrupted: &AtomicBool,
) -> Result<(), Failure> {
    let shares = parallel_shares(args.parallel, chunks.len());
    let job_limit = split_limit(args, chunks.len());
    let mut jobs: Vec<Guid> = Vec::new();
    for (part, (chunk, parallel)) in chunks.iter().zip(&shares).enumerate() {
        let name = job_name(
            args.name.as_deref(),
            chunk,
            part,
            chunks.len(),
            command_name(args),
        );
        match create_job(
            client,
            &name,
            chunk,
            *parallel,
            job_limit,
            args,
            credentials,
        ) {
            Ok(id) => jobs.push(id),
            Err(error) => {
                cancel_all(client, &jobs);
                return Err(Failure::from(error));
            }
        }
    }
    // A background job of small files may be transferred and completed by the service before
    // it could be shown: keep how it looked before it started.
    let mut before_start = Vec::new();
    if args.json {
        for id in &jobs {
            before_start.push(client.job_in_pages(*id)?);
        }
    }
    for id in &jobs {
        if let Err(error) = client.resume(*id) {
            cancel_all(client, &jobs);
            return Err(Failure::from(error).context(format!("cannot start job {id}")));
        }
    }
    if interrupted.load(Ordering::SeqCst) {
        cancel_all(client, &jobs);
        return Err(Failure::new(
            Exit::Interrupted,
            "interrupted before the jobs were queued; nothing was left behind",
        ));
    }
    report_background(
        client,
        &jobs,
        args.json.then_some(before_start.as_slice()),
        args.job_type.is_upload(),
    )
}

/// Each job's share of `--limit` when `jobs` jobs run at once.
fn split_limit(args: &TransferArgs, jobs: usize) -> Option<u64> {
    match args.limit {
        Some(RateArg(Some(rate))) => {
            Some((rate / u64::try_from(jobs.max(1)).unwrap_or(u64::MAX)).max(1))
        }
        _ => None,
    }
}

/// The priority of the jobs: `--priority`, else FOREGROUND for a transfer watched here and
/// NORMAL (a background transfer, in BITS' sense) with `--background`.
fn priority(args: &TransferArgs) -> JobPriority {
    args.priority.map_or(
        if args.background {
            JobPriority::Normal
        } else {
            JobPriority::Foreground
        },
        JobPriority::from,
    )
}

/// Ctrl-C and SIGTERM set the returned flag (the watch loop then suspends the jobs); a
/// second Ctrl-C ends qmgr at once.
fn watch_interrupts() -> Result<Arc<AtomicBool>, Failure> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(
            signal,
            i32::from(Exit::Interrupted.code()),
            Arc::clone(&flag),
        )
        .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&flag)))
        .map_err(|error| Failure::failed(format!("cannot watch for Ctrl-C: {error}")))?;
    }
    Ok(flag)
}

/// Splits the `--parallel` budget among `jobs` jobs, each getting at least one file at once.
pub fn parallel_shares(budget: u32, jobs: usize) -> Vec<u32> {
    let count = u32::try_from(jobs.max(1)).unwrap_or(u32::MAX);
    let base = budget / count;
    let extra = budget % count;
    (0..count)
        .map(|index| (base + u32::from(index < extra)).max(1))
        .take(jobs)
        .collect()
}

/// The command the jobs come from, for their default names.
fn command_name(args: &TransferArgs) -> &'static str {
    if args.job_type.is_upload() {
        "upload"
    } else {
        "transfer"
    }
}

/// The job's display name: `--name`, else what it holds, the first file's name first
/// (`a.iso (qmgr transfer)`, `a.iso +3 more (qmgr transfer)`), so `list` and `monitor` tell
/// jobs apart.
fn job_name(
    given: Option<&str>,
    files: &[Planned],
    part: usize,
    parts: usize,
    command: &str,
) -> String {
    let base = given.map_or_else(
        || {
            let first = files
                .first()
                .and_then(|file| file.local.file_name())
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            let more = match files.len() {
                0 | 1 => String::new(),
                n => format!(" +{} more", n - 1),
            };
            let tail = format!("{more} (qmgr {command})");
            let room = DEFAULT_NAME_CHARS.saturating_sub(tail.chars().count());
            format!("{}{tail}", human::fit(&first, room))
        },
        str::to_owned,
    );
    if parts > 1 {
        format!("{base} (part {} of {parts})", part + 1)
    } else {
        base
    }
}

/// `--user NAME`: the server credentials every job gets, one per scheme the server may ask
/// for, with the password read now (never from the command line); none without `--user`.
/// NTLM is among them only when the name and password are ones it can send (see
/// `Credential::validate`); the engine also leaves it out for text beyond ASCII, as one
/// user name and password then go to Basic and Digest as UTF-8.
fn login(args: &TransferArgs) -> Result<Vec<Credential>, Failure> {
    let Some(user) = &args.user else {
        return Ok(Vec::new());
    };
    let urls_on_stdin = args.input_file.as_deref() == Some(Path::new("-"));
    if urls_on_stdin && !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "--user reads the password from standard input, which -i - uses for URLs: \
             put the URLs in a file (-i FILE) or type the password at a terminal",
        ));
    }
    let shown = human::clean(user).into_owned();
    let password = read_password(&format!("Password for {shown}: "))?;
    Ok([AuthScheme::Basic, AuthScheme::Digest, AuthScheme::Ntlm]
        .into_iter()
        .map(|scheme| Credential {
            target: AuthTarget::Server,
            scheme,
            user_name: user.clone(),
            password: Secret::new(password.clone()),
        })
        .filter(|credential| credential.scheme != AuthScheme::Ntlm || credential.validate().is_ok())
        .collect())
}

/// Creates one job with its settings and files; a job that cannot be set up is cancelled.
fn create_job(
    client: &Client,
    name: &str,
    files: &[Planned],
    parallel: u32,
    limit: Option<u64>,
    args: &TransferArgs,
    credentials: &[Credential],
) -> qmgr_core::Result<Guid> {
    let id = client.create_job(name, args.job_type)?;
    let setup = || -> qmgr_core::Result<()> {
        for credential in credentials {
            client.set_job(id, JobChange::Credentials(credential.clone()))?;
        }
        if args.netrc {
            client.set_job(id, JobChange::UseStoredCredentials(true))?;
        }
        client.set_job(id, JobChange::Priority(priority(args)))?;
        client.set_job(id, JobChange::ParallelFiles(parallel))?;
        if let Some(reply) = &args.reply {
            let path = std::path::absolute(reply).map_err(|error| {
                qmgr_core::QmgrError::invalid_arg(format!("{}: {error}", reply.display()))
            })?;
            client.set_job(
                id,
                JobChange::ReplyFileName(Some(path.to_string_lossy().into_owned())),
            )?;
        }
        // --no-clobber: the service renames with RENAME_NOREPLACE, so a file that appeared
        // during the transfer is never replaced.
        let mark = if args.no_clobber {
            AutoComplete::NoClobber
        } else {
            AutoComplete::Replace
        };
        client.set_job(id, JobChange::AutoComplete(Some(mark)))?;
        if limit.is_some() {
            client.set_job(id, JobChange::BandwidthLimit(limit))?;
        }
        if args.no_idle {
            client.set_job(id, JobChange::IdleMode(false))?;
        }
        if !args.headers.is_empty() {
            client.set_job(
                id,
                JobChange::CustomHeaders(Some(args.headers.join("\r\n"))),
            )?;
        }
        if let Some(delay) = args.retry_delay {
            client.set_job(id, JobChange::MinimumRetryDelay(delay))?;
        }
        // Someone is waiting at the terminal: retry soon and give up after minutes, not
        // after BITS' 10 minutes and 14 days. The policy is stored with the job, so it holds
        // when this process is gone.
        let no_progress_timeout = args
            .no_progress_timeout
            .or((!args.background).then_some(INTERACTIVE_NO_PROGRESS_TIMEOUT));
        if !args.background {
            client.set_job(
                id,
                JobChange::FirstRetryDelay(Some(INTERACTIVE_FIRST_RETRY)),
            )?;
        }
        if let Some(timeout) = no_progress_timeout {
            client.set_job(id, JobChange::NoProgressTimeout(timeout))?;
        }
        client.add_files(
            id,
            files
                .iter()
                .map(|file| NewFile {
                    remote_name: file.remote.clone(),
                    local_name: file.local.display().to_string(),
                    ranges: None,
                })
                .collect(),
        )?;
        Ok(())
    };
    match setup() {
        Ok(()) => Ok(id),
        Err(error) => {
            let _ = client.cancel(id);
            Err(error)
        }
    }
}

fn cancel_all(client: &Client, jobs: &[Guid]) {
    for id in jobs {
        let _ = client.cancel(*id);
    }
}

/// Says which jobs were queued: their ids, or with `--json` their views (`before_start`
/// holds each job as it was before it started, for one that is already gone).
fn report_background(
    client: &Client,
    jobs: &[Guid],
    before_start: Option<&[JobView]>,
    upload: bool,
) -> Result<(), Failure> {
    if let Some(before_start) = before_start {
        let mut views = Vec::new();
        for (id, before) in jobs.iter().zip(before_start) {
            let view = match client.job_in_pages(*id) {
                Ok(view) => view,
                // Transferred and completed by the service already (these jobs complete
                // themselves): it is acknowledged.
                Err(error) if error.hresult == hresult::BG_E_NOT_FOUND => {
                    let mut view = before.clone();
                    view.job.state = JobState::Acknowledged;
                    view.waiting = None;
                    view
                }
                Err(error) => return Err(error.into()),
            };
            views.push(JobJson::from(&view));
        }
        json::print(&JobList { jobs: views });
    } else {
        for id in jobs {
            println!("{id}");
        }
        let short: Vec<String> = jobs.iter().map(|id| human::short_id(*id)).collect();
        let first = short.first().cloned().unwrap_or_default();
        let (what, has) = if short.len() == 1 {
            (format!("job {first}"), "its files")
        } else {
            (format!("jobs {}", short.join(", ")), "their files")
        };
        if upload {
            eprintln!(
                "qmgr: queued {what}; `qmgr info {first}` shows progress; the service finishes \
                 the job when the server has the file"
            );
        } else {
            eprintln!(
                "qmgr: queued {what}; `qmgr info {first}` shows progress; the service moves \
                 {has} into place when the transfer is done"
            );
        }
    }
    Ok(())
}

/// What became of a job the transfer watches.
enum Outcome {
    Running,
    Completed,
    /// Left in the queue (or gone); the message says why and what to do.
    Failed(String),
}

/// URLs not queued yet: a job's worth, and where its files are in the whole transfer.
struct Part {
    number: usize,
    /// Index of its first file among all the transfer's files.
    first: usize,
    files: Vec<Planned>,
}

struct Watched {
    id: Guid,
    /// Index of its first file among all the transfer's files.
    first: usize,
    files: Vec<Planned>,
    last: Option<JobSummary>,
    /// The files (indexes in the job) the last look saw moving.
    active: Vec<u32>,
    /// How many of its files this watch has shown as completed.
    marked: u32,
    /// The ParallelFiles and bandwidth cap the job was given.
    parallel: u32,
    limit: Option<u64>,
    outcome: Outcome,
}

impl Watched {
    fn running(&self) -> bool {
        matches!(self.outcome, Outcome::Running)
    }

    /// Running and not yet TRANSFERRED: a job whose files are all here is only being
    /// completed (its files renamed into place), which takes none of `--parallel`, so the
    /// next job starts at once rather than when the service has finished completing it.
    fn transferring(&self) -> bool {
        self.running()
            && self
                .last
                .as_ref()
                .is_none_or(|summary| summary.job.state != JobState::Transferred)
    }

    /// Shows one of its files as completed (once).
    fn mark_completed(&mut self, file: &mut FileState) {
        if !file.completed {
            file.completed = true;
            if let Some(total) = file.total {
                file.done = total;
            }
            self.marked += 1;
        }
    }
}

struct Watch<'a> {
    client: &'a Client,
    interrupted: &'a AtomicBool,
    args: &'a TransferArgs,
    /// `--user`'s, given to every job.
    credentials: &'a [Credential],
}

/// What the notifications said since the last look.
#[derive(Default)]
struct News {
    receiver: Option<Receiver<Notification>>,
    /// ACKNOWLEDGED or CANCELLED, for jobs that left the queue.
    departed: HashMap<Guid, JobState>,
    /// Files the service reported transferred, not yet shown.
    transferred: Vec<(Guid, u32)>,
}

impl News {
    /// Subscribes again when the stream is gone (qmgrd restarted); without a stream the
    /// watch polls.
    fn ensure_subscribed(&mut self, client: &Client) {
        if self.receiver.is_none() {
            self.receiver = client.subscribe().ok();
        }
    }

    /// How `job` left the queue, as the notifications tell. The answer that it is gone
    /// may overtake the notification that says why, so this waits a moment for it.
    fn departure(&mut self, job: Guid) -> Option<JobState> {
        let deadline = Instant::now() + DEPARTURE_NEWS;
        while !self.departed.contains_key(&job) && self.receiver.is_some() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.take(self.receiver.as_ref().map(|r| r.recv_timeout(left)));
        }
        self.departed.get(&job).copied()
    }

    /// Records one notification (or the end of the stream). Returns whether it tells of
    /// a job that stopped moving (finished, failed, waiting to retry, gone): the display
    /// looks at once rather than gather more.
    fn take(&mut self, next: Option<Result<Notification, RecvTimeoutError>>) -> bool {
        match next {
            Some(Ok(notification)) => {
                let stopped = notification.job_stopped();
                if let NotificationKind::FileTransferred { file } = notification.kind {
                    self.transferred.push((notification.job, file));
                }
                if matches!(
                    notification.state,
                    JobState::Acknowledged | JobState::Cancelled
                ) {
                    self.departed.insert(notification.job, notification.state);
                }
                stopped
            }
            Some(Err(RecvTimeoutError::Disconnected)) => {
                self.receiver = None;
                true
            }
            Some(Err(RecvTimeoutError::Timeout)) | None => false,
        }
    }

    /// Sleeps until a notification arrives or the poll interval since `last_look` passes.
    /// A burst of notifications gets one look: after the first, the rest are gathered
    /// until [`LOOK_GAP`] has passed since the last look.
    fn wait(&mut self, last_look: Instant) {
        let Some(receiver) = &self.receiver else {
            std::thread::sleep(POLL.saturating_sub(last_look.elapsed()));
            return;
        };
        let first = receiver.recv_timeout(POLL.saturating_sub(last_look.elapsed()));
        let more = first.is_ok();
        let mut look_now = self.take(Some(first));
        if more {
            // Until the gap has passed, more may join this look; one that tells of a
            // stopped job ends the wait at once. The service tells of finished files in
            // bursts (once their rows are written), so waiting on the stream wakes once
            // per burst, not once per file.
            let gather_until = last_look + LOOK_GAP;
            while !look_now && let Some(receiver) = &self.receiver {
                let left = gather_until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match receiver.recv_timeout(left) {
                    Err(RecvTimeoutError::Timeout) => break,
                    next => look_now = self.take(Some(next)),
                }
            }
            self.drain();
        }
        if self.receiver.is_none() {
            // qmgrd went away: the next look reconnects, then subscribes again.
            std::thread::sleep(POLL);
        }
    }

    /// Takes what already waits, without waiting (a bounded number, so a flood never
    /// keeps the look from happening). Returns whether any of it tells of a stopped job.
    fn drain(&mut self) -> bool {
        let mut stopped = false;
        for _ in 0..DRAIN_AT_MOST {
            let Some(receiver) = &self.receiver else {
                break;
            };
            let next = match receiver.try_recv() {
                Ok(notification) => Ok(notification),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
            };
            stopped |= self.take(Some(next));
        }
        stopped
    }
}

impl Watch<'_> {
    fn run(&self, chunks: Vec<Vec<Planned>>, mut news: News) -> Result<(), Failure> {
        let started = Instant::now();
        let parts = chunks.len();
        let mut snapshot = Snapshot::default();
        let mut pending = VecDeque::new();
        for (number, files) in chunks.into_iter().enumerate() {
            let first = snapshot.files.len();
            snapshot.files.extend(files.iter().map(not_started));
            pending.push_back(Part {
                number,
                first,
                files,
            });
        }
        let mut jobs: Vec<Watched> = Vec::new();
        if let Err(error) = self.feed(&mut jobs, &mut pending, parts) {
            cancel_all(
                self.client,
                &jobs.iter().map(|job| job.id).collect::<Vec<_>>(),
            );
            return Err(error);
        }
        let mut progress = Progress::choose(self.args.quiet, snapshot.files.len());
        // How many running jobs share `--parallel` and `--limit` now: when one leaves, the
        // others take its share, so the last jobs do not finish at a fraction of the budget.
        let mut shared_by = jobs.iter().filter(|job| job.transferring()).count();
        let mut lost_since: Option<Instant> = None;
        // Why URLs were left unqueued, and how many.
        let mut not_queued: Option<(String, usize)> = None;
        loop {
            if self.interrupted.load(Ordering::SeqCst) {
                progress.interrupt();
                let left = pending.iter().map(|part| part.files.len()).sum();
                return Err(self.suspend_all(&jobs, left));
            }
            let last_look = Instant::now();
            for (id, file) in std::mem::take(&mut news.transferred) {
                if let Some(job) = jobs.iter_mut().find(|job| job.id == id)
                    && let Some(slot) = job
                        .files
                        .get(file as usize)
                        .and(snapshot.files.get_mut(job.first + file as usize))
                {
                    job.mark_completed(slot);
                }
            }
            let mut lost = None;
            for job in jobs.iter_mut().filter(|job| job.running()) {
                if let Err(error) = self.look_at(job, &mut news, &mut progress, &mut snapshot) {
                    lost = Some(error);
                    break;
                }
            }
            // qmgrd is gone (killed, stopped, upgraded): the next look reconnects,
            // starting it again; its jobs go on where they were.
            if let Some(error) = lost {
                let since = *lost_since.get_or_insert_with(|| {
                    progress.note("qmgr: lost qmgrd; reconnecting (the jobs go on)");
                    Instant::now()
                });
                if since.elapsed() >= RECONNECT_FOR {
                    refresh(&mut snapshot, &jobs, &pending);
                    progress.finish(&snapshot);
                    return Err(Failure::from(error).context(format!(
                        "qmgrd could not be reached again within {} s; the jobs are stored \
                         and go on when it runs (`qmgr list` shows them)",
                        RECONNECT_FOR.as_secs()
                    )));
                }
            } else {
                if lost_since.take().is_some() {
                    progress.note("qmgr: reconnected to qmgrd");
                }
                news.ensure_subscribed(self.client);
                if !pending.is_empty()
                    && let Err(error) = self.feed(&mut jobs, &mut pending, parts)
                {
                    let left = pending.iter().map(|part| part.files.len()).sum();
                    pending.clear();
                    not_queued = Some((error.message, left));
                }
                let running = jobs.iter().filter(|job| job.transferring()).count();
                if running > 0 && running != shared_by {
                    self.spread_budget(&mut jobs);
                    shared_by = running;
                }
            }
            refresh(&mut snapshot, &jobs, &pending);
            progress.update(&snapshot);
            if pending.is_empty() && jobs.iter().all(|job| !job.running()) {
                progress.finish(&snapshot);
                return self.conclude(&jobs, not_queued, &snapshot, started.elapsed());
            }
            news.wait(last_look);
        }
    }

    /// Queues more of the transfer while jobs may be added: at most `--parallel` jobs run
    /// at once (each transfers at least one file, so more would exceed the budget), and
    /// the service's max_jobs_per_user decides the rest. Each new job starts as soon as it
    /// exists, with the share of the budget it will have once the others are added, so
    /// the first files move while the later jobs are still being filled; the budget is
    /// spread again when the number running came out otherwise.
    fn feed(
        &self,
        jobs: &mut Vec<Watched>,
        pending: &mut VecDeque<Part>,
        parts: usize,
    ) -> Result<(), Failure> {
        let at_once = usize::try_from(self.args.parallel.max(1)).unwrap_or(usize::MAX);
        let running = jobs.iter().filter(|job| job.transferring()).count();
        if running >= at_once || pending.is_empty() {
            return Ok(());
        }
        let expected = at_once.min(running + pending.len());
        // The running jobs give up their part first, so the total never exceeds the budget.
        self.spread_budget_over(jobs, expected);
        let shares = parallel_shares(self.args.parallel, expected);
        let mut created = 0;
        while jobs.iter().filter(|job| job.transferring()).count() < at_once
            && let Some(part) = pending.front()
        {
            let share = shares.get(running + created).copied().unwrap_or(1);
            let name = job_name(
                self.args.name.as_deref(),
                &part.files,
                part.number,
                parts,
                command_name(self.args),
            );
            let limit = split_limit(self.args, expected);
            match create_job(
                self.client,
                &name,
                &part.files,
                share,
                limit,
                self.args,
                self.credentials,
            ) {
                Ok(id) => {
                    let Some(part) = pending.pop_front() else {
                        break;
                    };
                    created += 1;
                    jobs.push(Watched {
                        id,
                        first: part.first,
                        files: part.files,
                        last: None,
                        active: Vec::new(),
                        marked: 0,
                        parallel: share,
                        limit,
                        outcome: Outcome::Running,
                    });
                    if let Err(error) = self.client.resume(id) {
                        return Err(Failure::from(error).context(format!("cannot start job {id}")));
                    }
                }
                Err(error) if error.hresult == hresult::BG_E_TOO_MANY_JOBS_PER_USER => {
                    if jobs.iter().any(Watched::running) {
                        // The next job goes in when one of these leaves the queue.
                        break;
                    }
                    return Err(Failure::from(error).context(
                        "the queue holds as many of your jobs as max_jobs_per_user allows \
                         (`qmgr list` shows them)",
                    ));
                }
                Err(error) => return Err(error.into()),
            }
        }
        if running + created != expected {
            self.spread_budget(jobs);
        }
        Ok(())
    }

    /// Gives the running jobs their shares of `--parallel` and `--limit` (best effort: a
    /// job that just left needs none, and a share not set now is set at the next change).
    fn spread_budget(&self, jobs: &mut [Watched]) {
        let running = jobs.iter().filter(|job| job.transferring()).count();
        self.spread_budget_over(jobs, running);
    }

    /// [`Watch::spread_budget`] as if `count` jobs ran: the running ones take the first
    /// shares.
    fn spread_budget_over(&self, jobs: &mut [Watched], count: usize) {
        let shares = parallel_shares(self.args.parallel, count);
        let limit = split_limit(self.args, count);
        for (job, share) in jobs.iter_mut().filter(|job| job.transferring()).zip(shares) {
            if job.parallel != share
                && self
                    .client
                    .set_job(job.id, JobChange::ParallelFiles(share))
                    .is_ok()
            {
                job.parallel = share;
            }
            if limit.is_some()
                && job.limit != limit
                && self
                    .client
                    .set_job(job.id, JobChange::BandwidthLimit(limit))
                    .is_ok()
            {
                job.limit = limit;
            }
        }
    }

    /// Fetches a running job's summary and records what became of it: completed by the
    /// service, stopped for good, or still going; its files' progress goes into `snapshot`.
    /// `Err` when qmgrd cannot be reached.
    fn look_at(
        &self,
        job: &mut Watched,
        news: &mut News,
        progress: &mut Progress,
        snapshot: &mut Snapshot,
    ) -> qmgr_core::Result<()> {
        let summary = match self.client.job_summary(job.id) {
            Ok(summary) => summary,
            Err(error) if error.hresult == hresult::BG_E_NOT_FOUND => {
                job.outcome = departed(job, news.departure(job.id));
                if matches!(job.outcome, Outcome::Completed) {
                    show_in_place(job, &mut snapshot.files, !self.args.quiet);
                }
                return Ok(());
            }
            Err(error) if error.hresult == hresult::QM_E_SERVICE_UNAVAILABLE => {
                return Err(error);
            }
            Err(error) => {
                job.outcome = Outcome::Failed(format!("cannot follow job {}: {error}", job.id));
                return Ok(());
            }
        };
        let plain = summary.job.id.to_plain_string();
        match (&summary.job.state, &summary.waiting) {
            (JobState::Transferred, Some(WaitReason::CompleteFailed { error })) => {
                job.outcome = Outcome::Failed(format!(
                    "job {} transferred but was not completed: {}. Job {} is left \
                     TRANSFERRED: `qmgr complete {plain}` moves the files into place \
                     (replacing existing ones), `qmgr cancel {plain}` discards the download.",
                    summary.job.id, error.description, summary.job.id
                ));
            }
            // With no auto-complete mark (a job from an older qmgr), nobody would finish it.
            (JobState::Transferred, _) if summary.job.auto_complete.is_none() => {
                job.outcome = complete_here(self.client, summary.job.id);
                if matches!(job.outcome, Outcome::Completed) {
                    show_in_place(job, &mut snapshot.files, !self.args.quiet);
                }
            }
            (JobState::Error, _) => {
                let records: Vec<FileRecord> = job
                    .files
                    .iter()
                    .map(|file| FileRecord::new(&file.remote, &file.local.display().to_string()))
                    .collect();
                let error = summary.job.error.as_ref().map_or_else(
                    || "  (the service recorded no error)\n".to_owned(),
                    |error| human::error_block(error, &records, "  "),
                );
                job.outcome = Outcome::Failed(format!(
                    "job {} ({}) failed:\n{error}The job stays in the queue: `qmgr info {plain}` \
                     shows it, `qmgr resume {plain}` retries it, `qmgr cancel {plain}` removes it.",
                    summary.job.id,
                    human::clean(&summary.job.display_name)
                ));
            }
            _ => {}
        }
        let failed_again = job
            .last
            .as_ref()
            .is_none_or(|previous| previous.job.error_count != summary.job.error_count);
        if failed_again
            && summary.job.state == JobState::TransientError
            && let Some(error) = &summary.job.error
        {
            let when = match &summary.waiting {
                Some(WaitReason::RetryAt { at, .. }) => {
                    format!("retrying {}", human::relative(*at, Timestamp::now()))
                }
                Some(WaitReason::NoNetwork) => "retrying when the network is back".to_owned(),
                _ => "will retry".to_owned(),
            };
            progress.note(&format!(
                "qmgr: transient error, {when}: {}",
                human::clean(&error.error.to_string())
            ));
        }
        if job.running() {
            follow_files(job, &summary, &mut snapshot.files);
        }
        job.last = Some(summary);
        Ok(())
    }

    /// Ctrl-C: suspends every job still running, and says how to go on.
    fn suspend_all(&self, jobs: &[Watched], not_queued: usize) -> Failure {
        let mut message = String::from("interrupted.");
        for job in jobs.iter().filter(|job| job.running()) {
            let plain = job.id.to_plain_string();
            let kept = job
                .last
                .as_ref()
                .map_or(0, |summary| summary.progress.bytes_transferred);
            match self.client.suspend(job.id) {
                Ok(_) => {
                    let _ = write!(
                        message,
                        "\nJob {} is suspended with {} kept: `qmgr resume {plain}` continues it \
                         in the background, `qmgr cancel {plain}` drops it.",
                        job.id,
                        human::bytes(kept)
                    );
                }
                Err(error) => {
                    let _ = write!(
                        message,
                        "\nJob {} could not be suspended ({error}); it goes on in the \
                         background: `qmgr suspend {plain}` or `qmgr cancel {plain}`.",
                        job.id
                    );
                }
            }
        }
        if not_queued > 0 {
            let _ = write!(
                message,
                "\n{} not queued yet: they were dropped.",
                human::plural(not_queued as u64, "URL was", "URLs were")
            );
        }
        Failure::new(Exit::Interrupted, message)
    }

    fn conclude(
        &self,
        jobs: &[Watched],
        not_queued: Option<(String, usize)>,
        snapshot: &Snapshot,
        elapsed: Duration,
    ) -> Result<(), Failure> {
        let mut failures: Vec<String> = jobs
            .iter()
            .filter_map(|job| match &job.outcome {
                Outcome::Failed(message) => Some(message.clone()),
                _ => None,
            })
            .collect();
        if let Some((why, count)) = not_queued {
            failures.push(format!(
                "{} not queued: {why}",
                human::plural(count as u64, "URL was", "URLs were")
            ));
        }
        if !failures.is_empty() {
            return Err(Failure::failed(failures.join("\n")));
        }
        if !self.args.quiet {
            let bytes = snapshot.done();
            let count = snapshot.files.len();
            let rate = crate::rate::per_second(bytes, elapsed);
            eprintln!(
                "qmgr: transferred {count} file{}, {} in {:.1}s ({}/s)",
                if count == 1 { "" } else { "s" },
                human::bytes(bytes),
                elapsed.as_secs_f64(),
                human::bytes(rate)
            );
        }
        Ok(())
    }
}

/// How a file shows before anything is known of it; its names escaped for the terminal.
fn not_started(file: &Planned) -> FileState {
    let name = file
        .local
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    FileState {
        name: human::clean(&name).into_owned(),
        path: human::clean(&file.local.display().to_string()).into_owned(),
        total: None,
        done: 0,
        completed: false,
    }
}

/// Takes in what a summary says of a job's files: the moving ones as reported; one seen
/// moving before and no longer is completed when the job's count of transferred files
/// moved (a file that failed and waits to be retried stays as it was).
fn follow_files(job: &mut Watched, summary: &JobSummary, files: &mut [FileState]) {
    let first = job.first;
    let now_active: Vec<u32> = summary.active_files.iter().map(|f| f.index).collect();
    for active in &summary.active_files {
        let Some(slot) = (active.index as usize)
            .lt(&job.files.len())
            .then(|| files.get_mut(first + active.index as usize))
            .flatten()
        else {
            continue;
        };
        if slot.completed {
            continue;
        }
        slot.total = (active.file.bytes_total != SIZE_UNKNOWN).then_some(active.file.bytes_total);
        slot.done = active.file.bytes_transferred;
        if active.file.completed {
            job.mark_completed(slot);
        }
    }
    let mut newly_done = summary
        .progress
        .files_transferred
        .saturating_sub(job.marked);
    for index in std::mem::take(&mut job.active) {
        if newly_done == 0 {
            break;
        }
        if now_active.contains(&index) || index as usize >= job.files.len() {
            continue;
        }
        if let Some(slot) = files.get_mut(first + index as usize)
            && !slot.completed
        {
            job.mark_completed(slot);
            newly_done -= 1;
        }
    }
    job.active = now_active;
}

/// Updates the totals and the status line of `snapshot` from the jobs' last summaries:
/// the service counts files and bytes; files not queued yet count with unknown sizes.
fn refresh(snapshot: &mut Snapshot, jobs: &[Watched], pending: &VecDeque<Part>) {
    let mut totals = Totals {
        size_unknown: !pending.is_empty(),
        ..Totals::default()
    };
    for job in jobs {
        let own = snapshot
            .files
            .get(job.first..job.first + job.files.len())
            .unwrap_or_default();
        match (&job.outcome, &job.last) {
            (Outcome::Completed, _) => {
                totals.files_completed += own.len();
                let bytes: u64 = own.iter().map(|file| file.done).sum();
                totals.done += bytes;
                totals.expected += bytes;
            }
            (_, Some(summary)) => {
                let progress = &summary.progress;
                totals.files_completed += progress.files_transferred as usize;
                totals.done += progress.bytes_transferred;
                if progress.bytes_total == SIZE_UNKNOWN {
                    totals.expected += progress.bytes_transferred;
                    totals.size_unknown |= progress.files_transferred < progress.files_total;
                } else {
                    totals.expected += progress.bytes_total;
                }
            }
            (_, None) => totals.size_unknown = true,
        }
    }
    snapshot.totals = Some(totals);
    (snapshot.waiting, snapshot.status) = status(jobs, Timestamp::now()).unzip();
}

/// What holds the transfer up: the first running job's reason to wait, if any.
fn status(jobs: &[Watched], now: Timestamp) -> Option<(WaitReason, String)> {
    jobs.iter()
        .filter(|job| job.running())
        .filter_map(|job| job.last.as_ref())
        .find_map(|summary| {
            let reason = summary.waiting.as_ref()?;
            // A FOREGROUND job never waits for a slot: QUEUED only means it is starting.
            let hidden = matches!(reason, WaitReason::AwaitingComplete)
                || (summary.job.priority == JobPriority::Foreground
                    && matches!(reason, WaitReason::WaitingForSlot { .. }));
            if hidden {
                None
            } else {
                let text = human::waiting(Some(reason), summary.job.id, now)?;
                Some((reason.clone(), text))
            }
        })
}

/// A watched job is no longer in the queue: the service completed it (its auto-complete
/// mark), or another command completed or cancelled it. The notifications say which; if
/// they were missed (qmgrd restarted meanwhile), the files do: every destination in place
/// and no temporary file of the files last seen moving left is a completed job.
fn departed(job: &Watched, how: Option<JobState>) -> Outcome {
    match how {
        Some(JobState::Acknowledged) => Outcome::Completed,
        Some(_) => Outcome::Failed(format!(
            "job {} left the queue: another command cancelled it",
            job.id
        )),
        None => {
            let temps_gone = job.last.as_ref().is_none_or(|summary| {
                summary.active_files.iter().all(|active| {
                    active
                        .file
                        .temp_name
                        .as_deref()
                        .is_none_or(|temp| !Path::new(temp).exists())
                })
            });
            let landed = temps_gone && job.files.iter().all(|file| file.local.exists());
            if landed {
                Outcome::Completed
            } else {
                Outcome::Failed(format!(
                    "job {} left the queue: another command completed or cancelled it",
                    job.id
                ))
            }
        }
    }
}

/// A job the service completed shows every file done, at the size it has in place (the
/// last summary may be a progress report behind). With nothing shown (`--quiet`) the
/// sizes are not looked up: a stat per file of a big transfer, for no one.
fn show_in_place(job: &mut Watched, files: &mut [FileState], sizes: bool) {
    for (planned, slot) in job.files.iter().zip(files.iter_mut().skip(job.first)) {
        if sizes && let Ok(metadata) = std::fs::metadata(&planned.local) {
            slot.total = Some(metadata.len());
            slot.done = metadata.len();
        }
        slot.completed = true;
    }
    job.marked = u32::try_from(job.files.len()).unwrap_or(u32::MAX);
}

/// Completes a transferred job that has no auto-complete mark.
fn complete_here(client: &Client, id: Guid) -> Outcome {
    let plain = id.to_plain_string();
    match client.complete(id) {
        Ok(_) => Outcome::Completed,
        Err(error) => Outcome::Failed(format!(
            "job {id} transferred but could not be completed: {error}. `qmgr complete {plain}` \
             tries again."
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmgr_core::JobType;

    #[test]
    fn the_parallel_budget_is_shared_among_jobs() {
        assert_eq!(parallel_shares(16, 1), [16]);
        assert_eq!(parallel_shares(16, 3), [6, 5, 5]);
        assert_eq!(parallel_shares(2, 5), [1, 1, 1, 1, 1]);
        assert_eq!(parallel_shares(16, 0), Vec::<u32>::new());
    }

    #[test]
    fn default_job_names_say_what_is_transferred() {
        let files = [
            Planned {
                remote: "http://h/a.iso".into(),
                local: "/d/a.iso".into(),
            },
            Planned {
                remote: "http://h/b.iso".into(),
                local: "/d/b.iso".into(),
            },
        ];
        assert_eq!(
            job_name(None, &files[..1], 0, 1, "transfer"),
            "a.iso (qmgr transfer)"
        );
        assert_eq!(
            job_name(None, &files, 1, 3, "transfer"),
            "a.iso +1 more (qmgr transfer) (part 2 of 3)"
        );
        assert_eq!(
            job_name(Some("nightly"), &files, 0, 1, "transfer"),
            "nightly"
        );
        // A long file name is cut; what says how many more and where from stays.
        let long = [Planned {
            remote: "http://h/x".into(),
            local: format!("/d/{}", "x".repeat(300)).into(),
        }];
        let name = job_name(None, &[long[0].clone(), files[0].clone()], 0, 1, "transfer");
        assert_eq!(name.chars().count(), DEFAULT_NAME_CHARS);
        assert!(
            name.starts_with("xxx") && name.ends_with("… +1 more (qmgr transfer)"),
            "{name}"
        );
    }

    fn summary(priority: JobPriority, files: u32) -> JobSummary {
        let mut job = qmgr_core::Job::new(
            Guid::new_random(),
            "job",
            JobType::Download,
            1000,
            qmgr_core::JobSettings::default(),
            Timestamp(0),
        )
        .unwrap();
        job.priority = priority;
        job.state = JobState::Queued;
        JobSummary {
            job,
            progress: qmgr_core::JobProgress {
                bytes_total: SIZE_UNKNOWN,
                bytes_transferred: 0,
                files_total: files,
                files_transferred: 0,
            },
            active_files: Vec::new(),
            waiting: Some(WaitReason::WaitingForSlot { ahead: 1 }),
            attempts: Vec::new(),
            idle: None,
        }
    }

    fn watched(summary: JobSummary, locals: &[&str]) -> Watched {
        Watched {
            id: summary.job.id,
            first: 0,
            files: locals
                .iter()
                .map(|local| Planned {
                    remote: "http://h/f".into(),
                    local: (*local).into(),
                })
                .collect(),
            last: Some(summary),
            active: Vec::new(),
            marked: 0,
            parallel: 1,
            limit: None,
            outcome: Outcome::Running,
        }
    }

    #[test]
    fn a_foreground_transfer_never_waits_for_a_slot() {
        let now = Timestamp::now();
        let shown = status(
            &[watched(summary(JobPriority::Foreground, 1), &["/d/f"])],
            now,
        );
        assert_eq!(shown, None);
        let shown = status(&[watched(summary(JobPriority::Low, 1), &["/d/f"])], now);
        assert_eq!(
            shown.as_ref().map(|(_, text)| text.as_str()),
            Some("waiting for a transfer slot (1 background job ahead)")
        );
    }

    fn blank(count: usize) -> Vec<FileState> {
        (0..count)
            .map(|i| FileState {
                name: format!("f{i}"),
                path: format!("/d/f{i}"),
                total: None,
                done: 0,
                completed: false,
            })
            .collect()
    }

    fn moving(index: u32, total: u64, done: u64) -> qmgr_core::service::IndexedFile {
        let mut file = FileRecord::new("http://h/f", "/d/f");
        file.bytes_total = total;
        file.bytes_transferred = done;
        qmgr_core::service::IndexedFile { index, file }
    }

    #[test]
    fn a_file_seen_moving_that_stops_is_done_only_when_the_count_moved() {
        let locals = ["/d/f0", "/d/f1", "/d/f2"];
        let mut files = blank(3);
        let mut job = watched(summary(JobPriority::Foreground, 3), &locals);
        let mut look = summary(JobPriority::Foreground, 3);
        look.active_files = vec![moving(0, 100, 40), moving(1, 200, 10)];
        follow_files(&mut job, &look, &mut files);
        assert_eq!((files[0].total, files[0].done), (Some(100), 40));
        assert!(!files[0].completed && !files[1].completed);

        // File 1 stopped without the count moving (it failed and waits): not done.
        look.active_files = vec![moving(0, 100, 90)];
        follow_files(&mut job, &look, &mut files);
        assert!(!files[1].completed);
        assert_eq!(files[1].done, 10);

        // File 0 stopped and one more file counts as transferred: it is the one done.
        look.active_files = vec![moving(2, 50, 5)];
        look.progress.files_transferred = 1;
        follow_files(&mut job, &look, &mut files);
        assert!(files[0].completed);
        assert_eq!(files[0].done, 100, "a completed file shows its whole size");
        assert!(!files[1].completed && !files[2].completed);
        assert_eq!(job.marked, 1);
    }

    #[test]
    fn totals_count_every_file_including_those_not_queued_yet() {
        let mut snapshot = Snapshot {
            files: blank(5),
            ..Snapshot::default()
        };
        let mut look = summary(JobPriority::Foreground, 3);
        look.progress = qmgr_core::JobProgress {
            bytes_total: 300,
            bytes_transferred: 120,
            files_total: 3,
            files_transferred: 1,
        };
        let jobs = [watched(look, &["/d/f0", "/d/f1", "/d/f2"])];
        let mut pending = VecDeque::new();
        refresh(&mut snapshot, &jobs, &pending);
        let totals = snapshot.totals.unwrap();
        assert_eq!(
            (totals.files_completed, totals.done, totals.expected),
            (1, 120, 300)
        );
        assert!(!totals.size_unknown);
        pending.push_back(Part {
            number: 1,
            first: 3,
            files: Vec::new(),
        });
        refresh(&mut snapshot, &jobs, &pending);
        assert!(snapshot.totals.unwrap().size_unknown);
    }

    #[test]
    fn file_names_in_the_progress_are_escaped() {
        let shown = not_started(&Planned {
            remote: "http://h/f".into(),
            local: "/d/a\u{1b}]0;x\u{7}b".into(),
        });
        assert_eq!(shown.name, r"a\u{1b}]0;x\u{7}b");
        assert_eq!(shown.path, r"/d/a\u{1b}]0;x\u{7}b");
    }

    #[test]
    fn url_lists_skip_blanks_and_comments_and_name_a_bad_line() {
        let urls = parse_url_list("# mirrors\n\nhttp://h/a\n  https://h/b  \n#x\n").unwrap();
        assert_eq!(urls, ["http://h/a", "https://h/b"]);
        let error = parse_url_list("http://h/a\n\nnot a url\n").unwrap_err();
        assert_eq!(error.exit, Exit::Usage);
        assert!(error.message.starts_with("line 3:"), "{}", error.message);
        let error = parse_url_list("http://h/a\nrelative/path\n").unwrap_err();
        assert!(error.message.starts_with("line 2:"), "{}", error.message);
    }
}
