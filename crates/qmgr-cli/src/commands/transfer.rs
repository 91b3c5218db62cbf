//! `qmgr transfer`: create the jobs, resume them, watch them with progress until the
//! service has completed them.
//!
//! The jobs carry an auto-complete mark, so the service moves the files into place when
//! they are transferred whether or not this process is still there (killed, its terminal
//! closed, its pipe broken). The watch survives a restart of qmgrd: it reconnects (starting
//! qmgrd again) and goes on following the same jobs.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use qmgr_core::file::SIZE_UNKNOWN;
use qmgr_core::hresult;
use qmgr_core::job::AutoComplete;
use qmgr_core::service::{
    JobChange, JobView, NewFile, Notification, QueueService, QueueServiceExt, WaitReason,
};
use qmgr_core::{Guid, JobPriority, JobState, JobType, Timestamp};
use qmgr_ipc::Client;

use crate::cli::{RateArg, TransferArgs};
use crate::destinations::{self, Planned, Target};
use crate::failure::{Exit, Failure};
use crate::human;
use crate::json::{self, JobJson, JobList};
use crate::progress::{FileState, Progress, Snapshot};
use crate::session::Session;

/// How often the jobs are looked at when no notification arrives sooner.
const POLL: Duration = Duration::from_millis(200);
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
    let planned = destinations::plan(&args.urls, target, &cwd, args.no_clobber)?;
    let chunk_size = usize::try_from(session.config.max_files_per_job.max(1)).unwrap_or(usize::MAX);
    let chunks: Vec<&[Planned]> = planned.chunks(chunk_size).collect();
    let shares = parallel_shares(args.parallel, chunks.len());
    let job_limit = match args.limit {
        Some(RateArg(Some(rate))) => {
            Some((rate / u64::try_from(chunks.len().max(1)).unwrap_or(u64::MAX)).max(1))
        }
        _ => None,
    };

    let interrupted = watch_interrupts()?;
    let client = session.connect()?;
    // Listening before the jobs start: a small job may be transferred and completed by
    // the service before the first look at it, and only a notification tells that apart
    // from another command's Cancel.
    let mut news = News::default();
    if !args.background {
        news.ensure_subscribed(&client);
    }
    let mut jobs: Vec<Guid> = Vec::new();
    for (part, (chunk, parallel)) in chunks.iter().zip(&shares).enumerate() {
        let name = job_name(args.name.as_deref(), chunk, part, chunks.len());
        match create_job(&client, &name, chunk, *parallel, job_limit, args) {
            Ok(id) => jobs.push(id),
            Err(failure) => {
                cancel_all(&client, &jobs);
                return Err(failure);
            }
        }
    }
    // A background job of small files may be transferred and completed by the service before
    // it could be shown: keep how it looked before it started.
    let mut before_start = Vec::new();
    if args.background && args.json {
        for id in &jobs {
            before_start.push(client.job(*id)?);
        }
    }
    for id in &jobs {
        if let Err(error) = client.resume(*id) {
            cancel_all(&client, &jobs);
            return Err(Failure::from(error).context(format!("cannot start job {id}")));
        }
    }
    if args.background {
        if interrupted.load(Ordering::SeqCst) {
            cancel_all(&client, &jobs);
            return Err(Failure::new(
                Exit::Interrupted,
                "interrupted before the jobs were queued; nothing was left behind",
            ));
        }
        report_background(&client, &jobs, args.json.then_some(before_start.as_slice()))?;
        return Ok(());
    }
    let watch = Watch {
        client: &client,
        interrupted: &interrupted,
        quiet: args.quiet,
    };
    watch.run(&jobs, &chunks, news)
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

/// The job's display name: `--name`, else what it holds, the first file's name first
/// (`a.iso (qmgr transfer)`, `a.iso +3 more (qmgr transfer)`), so `list` and `monitor` tell
/// jobs apart.
fn job_name(given: Option<&str>, files: &[Planned], part: usize, parts: usize) -> String {
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
            let tail = format!("{more} (qmgr transfer)");
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

/// Creates one job with its settings and files; a job that cannot be set up is cancelled.
fn create_job(
    client: &Client,
    name: &str,
    files: &[Planned],
    parallel: u32,
    limit: Option<u64>,
    args: &TransferArgs,
) -> Result<Guid, Failure> {
    let id = client.create_job(name, JobType::Download)?;
    let setup = || -> qmgr_core::Result<()> {
        client.set_job(id, JobChange::Priority(priority(args)))?;
        client.set_job(id, JobChange::ParallelFiles(parallel))?;
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
                })
                .collect(),
        )?;
        Ok(())
    };
    match setup() {
        Ok(()) => Ok(id),
        Err(error) => {
            let _ = client.cancel(id);
            Err(Failure::from(error))
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
) -> Result<(), Failure> {
    if let Some(before_start) = before_start {
        let mut views = Vec::new();
        for (id, before) in jobs.iter().zip(before_start) {
            let view = match client.job(*id) {
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
        eprintln!(
            "qmgr: queued {what}; `qmgr info {first}` shows progress; the service moves {has} \
             into place when the transfer is done"
        );
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

struct Watched {
    id: Guid,
    /// Where its files go.
    locals: Vec<PathBuf>,
    last: Option<JobView>,
    outcome: Outcome,
}

struct Watch<'a> {
    client: &'a Client,
    interrupted: &'a AtomicBool,
    quiet: bool,
}

/// What the notifications said: how the watched jobs that left the queue left it.
#[derive(Default)]
struct News {
    receiver: Option<Receiver<Notification>>,
    /// ACKNOWLEDGED or CANCELLED, for jobs that left the queue.
    departed: HashMap<Guid, JobState>,
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

    /// Records one notification (or the end of the stream).
    fn take(&mut self, next: Option<Result<Notification, RecvTimeoutError>>) {
        match next {
            Some(Ok(notification)) => {
                if matches!(
                    notification.state,
                    JobState::Acknowledged | JobState::Cancelled
                ) {
                    self.departed.insert(notification.job, notification.state);
                }
            }
            Some(Err(RecvTimeoutError::Disconnected)) => self.receiver = None,
            Some(Err(RecvTimeoutError::Timeout)) | None => {}
        }
    }

    /// Sleeps until a notification arrives or the poll interval passes, and remembers how
    /// jobs left the queue.
    fn wait(&mut self) {
        let Some(receiver) = &self.receiver else {
            std::thread::sleep(POLL);
            return;
        };
        let first = receiver.recv_timeout(POLL);
        let mut more = first.is_ok();
        self.take(Some(first));
        // Several may be queued; one look at the jobs answers them all.
        while more && let Some(receiver) = &self.receiver {
            let next = receiver.try_recv().map_err(|error| match error {
                TryRecvError::Empty => RecvTimeoutError::Timeout,
                TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            });
            more = next.is_ok();
            self.take(Some(next));
        }
        if self.receiver.is_none() {
            // qmgrd went away: the next look reconnects, then subscribes again.
            std::thread::sleep(POLL);
        }
    }
}

impl Watch<'_> {
    fn run(&self, ids: &[Guid], chunks: &[&[Planned]], mut news: News) -> Result<(), Failure> {
        let started = Instant::now();
        let mut jobs: Vec<Watched> = ids
            .iter()
            .zip(chunks)
            .map(|(id, files)| Watched {
                id: *id,
                locals: files.iter().map(|file| file.local.clone()).collect(),
                last: None,
                outcome: Outcome::Running,
            })
            .collect();
        let file_count = jobs.iter().map(|job| job.locals.len()).sum();
        let mut progress = Progress::choose(self.quiet, file_count);
        let mut lost_since: Option<Instant> = None;
        loop {
            if self.interrupted.load(Ordering::SeqCst) {
                progress.interrupt();
                return Err(self.suspend_all(&jobs));
            }
            let mut lost = None;
            for job in jobs
                .iter_mut()
                .filter(|j| matches!(j.outcome, Outcome::Running))
            {
                if let Err(error) = self.look_at(job, &mut news, &mut progress) {
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
                    progress.finish(&snapshot(&jobs));
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
            }
            let snapshot = snapshot(&jobs);
            progress.update(&snapshot);
            if jobs.iter().all(|j| !matches!(j.outcome, Outcome::Running)) {
                progress.finish(&snapshot);
                return self.conclude(&jobs, &snapshot, started.elapsed());
            }
            news.wait();
        }
    }

    /// Fetches a running job and records what became of it: completed by the service,
    /// stopped for good, or still going. `Err` when qmgrd cannot be reached.
    fn look_at(
        &self,
        job: &mut Watched,
        news: &mut News,
        progress: &mut Progress,
    ) -> qmgr_core::Result<()> {
        let view = match self.client.job(job.id) {
            Ok(view) => view,
            Err(error) if error.hresult == hresult::BG_E_NOT_FOUND => {
                job.outcome = departed(job, news.departure(job.id));
                if matches!(job.outcome, Outcome::Completed) {
                    show_in_place(job);
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
        let plain = view.job.id.to_plain_string();
        match (&view.job.state, &view.waiting) {
            (JobState::Transferred, Some(WaitReason::CompleteFailed { error })) => {
                job.outcome = Outcome::Failed(format!(
                    "job {} transferred but was not completed: {}. Job {} is left \
                     TRANSFERRED: `qmgr complete {plain}` moves the files into place \
                     (replacing existing ones), `qmgr cancel {plain}` discards the download.",
                    view.job.id, error.description, view.job.id
                ));
            }
            // With no auto-complete mark (a job from an older qmgr), nobody would finish it.
            (JobState::Transferred, _) if view.job.auto_complete.is_none() => {
                job.outcome = complete_here(self.client, &view);
            }
            (JobState::Error, _) => {
                let error = view.job.error.as_ref().map_or_else(
                    || "  (the service recorded no error)\n".to_owned(),
                    |error| human::error_block(error, &view.job.files, "  "),
                );
                job.outcome = Outcome::Failed(format!(
                    "job {} ({}) failed:\n{error}The job stays in the queue: `qmgr info {plain}` \
                     shows it, `qmgr resume {plain}` retries it, `qmgr cancel {plain}` removes it.",
                    view.job.id,
                    human::clean(&view.job.display_name)
                ));
            }
            _ => {}
        }
        let failed_again = job
            .last
            .as_ref()
            .is_none_or(|previous| previous.job.error_count != view.job.error_count);
        if failed_again
            && view.job.state == JobState::TransientError
            && let Some(error) = &view.job.error
        {
            let when = match &view.waiting {
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
        job.last = Some(view);
        Ok(())
    }

    /// Ctrl-C: suspends every job still running, and says how to go on.
    fn suspend_all(&self, jobs: &[Watched]) -> Failure {
        let mut message = String::from("interrupted.");
        for job in jobs
            .iter()
            .filter(|j| matches!(j.outcome, Outcome::Running))
        {
            let plain = job.id.to_plain_string();
            let kept = job
                .last
                .as_ref()
                .map_or(0, |view| view.job.progress().bytes_transferred);
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
        Failure::new(Exit::Interrupted, message)
    }

    fn conclude(
        &self,
        jobs: &[Watched],
        snapshot: &Snapshot,
        elapsed: Duration,
    ) -> Result<(), Failure> {
        let failures: Vec<&str> = jobs
            .iter()
            .filter_map(|job| match &job.outcome {
                Outcome::Failed(message) => Some(message.as_str()),
                _ => None,
            })
            .collect();
        if !failures.is_empty() {
            return Err(Failure::failed(failures.join("\n")));
        }
        if !self.quiet {
            let bytes: u64 = snapshot.files.iter().map(|file| file.done).sum();
            let rate = crate::rate::per_second(bytes, elapsed);
            eprintln!(
                "qmgr: transferred {} file{}, {} in {:.1}s ({}/s)",
                snapshot.files.len(),
                if snapshot.files.len() == 1 { "" } else { "s" },
                human::bytes(bytes),
                elapsed.as_secs_f64(),
                human::bytes(rate)
            );
        }
        Ok(())
    }
}

/// A watched job is no longer in the queue: the service completed it (its auto-complete
/// mark), or another command completed or cancelled it. The notifications say which; if
/// they were missed (qmgrd restarted meanwhile), the files do: every destination in place
/// and no temporary file left is a completed job.
fn departed(job: &Watched, how: Option<JobState>) -> Outcome {
    match how {
        Some(JobState::Acknowledged) => Outcome::Completed,
        Some(_) => Outcome::Failed(format!(
            "job {} left the queue: another command cancelled it",
            job.id
        )),
        None => {
            let temps_gone = job.last.as_ref().is_none_or(|view| {
                view.job.files.iter().all(|file| {
                    file.temp_name
                        .as_deref()
                        .is_none_or(|temp| !Path::new(temp).exists())
                })
            });
            let landed = temps_gone && job.locals.iter().all(|local| local.exists());
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

/// The last view of a job the service completed shows every file done, at the size it
/// has in place (the view before the completion may be a progress report behind).
fn show_in_place(job: &mut Watched) {
    let Some(view) = job.last.as_mut() else {
        // Completed before the first look: nothing to show but what is in place.
        return;
    };
    for file in &mut view.job.files {
        if let Ok(metadata) = std::fs::metadata(&file.local_name) {
            file.bytes_total = metadata.len();
            file.bytes_transferred = metadata.len();
        }
        file.completed = true;
    }
}

/// Completes a transferred job that has no auto-complete mark.
fn complete_here(client: &Client, view: &JobView) -> Outcome {
    let plain = view.job.id.to_plain_string();
    match client.complete(view.job.id) {
        Ok(_) => Outcome::Completed,
        Err(error) => Outcome::Failed(format!(
            "job {} transferred but could not be completed: {error}. `qmgr complete {plain}` \
             tries again.",
            view.job.id
        )),
    }
}

/// The progress of every file of every watched job.
fn snapshot(jobs: &[Watched]) -> Snapshot {
    let now = Timestamp::now();
    let mut snapshot = Snapshot::default();
    for job in jobs {
        let Some(view) = &job.last else {
            if matches!(job.outcome, Outcome::Completed) {
                // Completed before the first look: what is in place is what came.
                for local in &job.locals {
                    let size = std::fs::metadata(local).map_or(0, |m| m.len());
                    snapshot.files.push(FileState {
                        name: local
                            .file_name()
                            .map(|name| name.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        path: local.display().to_string(),
                        total: Some(size),
                        done: size,
                        completed: true,
                    });
                }
            }
            continue;
        };
        for file in &view.job.files {
            let local = PathBuf::from(&file.local_name);
            snapshot.files.push(FileState {
                name: human::clean(
                    &local
                        .file_name()
                        .map(|name| name.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                )
                .into_owned(),
                path: human::clean(&file.local_name).into_owned(),
                total: (file.bytes_total != SIZE_UNKNOWN).then_some(file.bytes_total),
                done: file.bytes_transferred,
                completed: file.completed,
            });
        }
        // A FOREGROUND job never waits for a slot: QUEUED only means it is starting.
        if matches!(job.outcome, Outcome::Running)
            && snapshot.status.is_none()
            && let Some(reason) = &view.waiting
            && !matches!(reason, WaitReason::AwaitingComplete)
            && !(view.job.priority == JobPriority::Foreground
                && matches!(reason, WaitReason::WaitingForSlot { .. }))
        {
            snapshot.status = human::waiting(Some(reason), view.job.id, now);
        }
    }
    snapshot
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(job_name(None, &files[..1], 0, 1), "a.iso (qmgr transfer)");
        assert_eq!(
            job_name(None, &files, 1, 3),
            "a.iso +1 more (qmgr transfer) (part 2 of 3)"
        );
        assert_eq!(job_name(Some("nightly"), &files, 0, 1), "nightly");
        // A long file name is cut; what says how many more and where from stays.
        let long = [Planned {
            remote: "http://h/x".into(),
            local: format!("/d/{}", "x".repeat(300)).into(),
        }];
        let name = job_name(None, &[long[0].clone(), files[0].clone()], 0, 1);
        assert_eq!(name.chars().count(), DEFAULT_NAME_CHARS);
        assert!(
            name.starts_with("xxx") && name.ends_with("… +1 more (qmgr transfer)"),
            "{name}"
        );
    }

    fn queued(priority: JobPriority, local_name: &str) -> Watched {
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
        job.files
            .push(qmgr_core::FileRecord::new("http://h/f", local_name));
        Watched {
            id: job.id,
            locals: vec![local_name.into()],
            last: Some(JobView {
                job,
                waiting: Some(WaitReason::WaitingForSlot { ahead: 1 }),
                attempts: Vec::new(),
            }),
            outcome: Outcome::Running,
        }
    }

    #[test]
    fn a_foreground_transfer_never_waits_for_a_slot() {
        let shown = snapshot(&[queued(JobPriority::Foreground, "/d/f")]);
        assert_eq!(shown.status, None);
        let shown = snapshot(&[queued(JobPriority::Low, "/d/f")]);
        assert_eq!(
            shown.status.as_deref(),
            Some("waiting for a transfer slot (1 background job ahead)")
        );
    }

    #[test]
    fn file_names_in_the_progress_are_escaped() {
        let shown = snapshot(&[queued(JobPriority::Foreground, "/d/a\u{1b}]0;x\u{7}b")]);
        assert_eq!(shown.files[0].name, r"a\u{1b}]0;x\u{7}b");
        assert_eq!(shown.files[0].path, r"/d/a\u{1b}]0;x\u{7}b");
    }
}
