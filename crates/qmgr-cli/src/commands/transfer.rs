//! `qmgr transfer`: create the jobs, resume them, watch them with progress, complete them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use qmgr_core::file::SIZE_UNKNOWN;
use qmgr_core::hresult;
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
        report_background(&client, &jobs, args.json)?;
        return Ok(());
    }
    let watch = Watch {
        client: &client,
        interrupted: &interrupted,
        no_clobber: args.no_clobber,
        quiet: args.quiet,
    };
    watch.run(&jobs, planned.len())
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
                n => format!(" and {} more", n - 1),
            };
            human::fit(&format!("qmgr transfer {first}{more}"), DEFAULT_NAME_CHARS)
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
        client.set_job(id, JobChange::Priority(JobPriority::from(args.priority)))?;
        client.set_job(id, JobChange::ParallelFiles(parallel))?;
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
        if let Some(timeout) = args.no_progress_timeout {
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

fn report_background(client: &Client, jobs: &[Guid], as_json: bool) -> Result<(), Failure> {
    if as_json {
        let views = jobs
            .iter()
            .map(|id| client.job(*id).map(|view| JobJson::from(&view)))
            .collect::<qmgr_core::Result<Vec<_>>>()?;
        json::print(&JobList { jobs: views });
    } else {
        for id in jobs {
            println!("{id}");
        }
        let first = jobs
            .first()
            .map(|id| id.to_plain_string())
            .unwrap_or_default();
        eprintln!(
            "qmgr: queued; `qmgr info {first}` shows progress, `qmgr complete {first}` finishes \
             the job once it is TRANSFERRED"
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
    last: Option<JobView>,
    outcome: Outcome,
}

struct Watch<'a> {
    client: &'a Client,
    interrupted: &'a AtomicBool,
    no_clobber: bool,
    quiet: bool,
}

impl Watch<'_> {
    fn run(&self, ids: &[Guid], file_count: usize) -> Result<(), Failure> {
        let started = Instant::now();
        let notifications = self.client.subscribe().ok();
        let mut jobs: Vec<Watched> = ids
            .iter()
            .map(|id| Watched {
                id: *id,
                last: None,
                outcome: Outcome::Running,
            })
            .collect();
        let mut progress = Progress::choose(self.quiet, file_count);
        loop {
            if self.interrupted.load(Ordering::SeqCst) {
                progress.interrupt();
                return Err(self.suspend_all(&jobs));
            }
            for job in jobs
                .iter_mut()
                .filter(|j| matches!(j.outcome, Outcome::Running))
            {
                self.look_at(job, &mut progress);
            }
            let snapshot = snapshot(&jobs);
            progress.update(&snapshot);
            if jobs.iter().all(|j| !matches!(j.outcome, Outcome::Running)) {
                progress.finish(&snapshot);
                return self.conclude(&jobs, &snapshot, started.elapsed());
            }
            wait_for_news(notifications.as_ref());
        }
    }

    /// Fetches a running job and moves it on: completes it when transferred, records a
    /// failure when it stopped for good.
    fn look_at(&self, job: &mut Watched, progress: &mut Progress) {
        let view = match self.client.job(job.id) {
            Ok(view) => view,
            Err(error) if error.hresult == hresult::BG_E_NOT_FOUND => {
                job.outcome = Outcome::Failed(format!(
                    "job {} left the queue: another command completed or cancelled it",
                    job.id
                ));
                return;
            }
            Err(error) => {
                job.outcome = Outcome::Failed(format!("cannot follow job {}: {error}", job.id));
                return;
            }
        };
        let plain = view.job.id.to_plain_string();
        match view.job.state {
            JobState::Transferred => job.outcome = self.complete(&view),
            JobState::Error => {
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
        if let Some(previous) = &job.last
            && previous.job.state != view.job.state
            && view.job.state == JobState::TransientError
            && let Some(error) = &view.job.error
        {
            progress.note(&format!(
                "qmgr: transient error, will retry: {}",
                human::clean(&error.error.to_string())
            ));
        }
        job.last = Some(view);
    }

    fn complete(&self, view: &JobView) -> Outcome {
        let plain = view.job.id.to_plain_string();
        // --no-clobber: the service renames with RENAME_NOREPLACE, so a file that appeared
        // during the transfer is never replaced.
        let completed = if self.no_clobber {
            self.client.complete_without_replacing(view.job.id)
        } else {
            self.client.complete(view.job.id)
        };
        match completed {
            Ok(_) => Outcome::Completed,
            Err(error) if self.no_clobber => Outcome::Failed(format!(
                "job {} transferred but was not completed: {error}. Job {} is left TRANSFERRED: \
                 `qmgr complete {plain}` overwrites, `qmgr cancel {plain}` discards the download.",
                view.job.id, view.job.id
            )),
            Err(error) => Outcome::Failed(format!(
                "job {} transferred but could not be completed: {error}. `qmgr complete {plain}` \
                 tries again.",
                view.job.id
            )),
        }
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

/// Sleeps until a notification arrives or the poll interval passes.
fn wait_for_news(notifications: Option<&Receiver<Notification>>) {
    match notifications {
        Some(receiver) => {
            if receiver.recv_timeout(POLL).is_ok() {
                // Several may be queued; one look at the jobs answers them all.
                while receiver.try_recv().is_ok() {}
            }
        }
        None => std::thread::sleep(POLL),
    }
}

/// The progress of every file of every watched job.
fn snapshot(jobs: &[Watched]) -> Snapshot {
    let now = Timestamp::now();
    let mut snapshot = Snapshot::default();
    for job in jobs {
        let Some(view) = &job.last else { continue };
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
        assert_eq!(job_name(None, &files[..1], 0, 1), "qmgr transfer a.iso");
        assert_eq!(
            job_name(None, &files, 1, 3),
            "qmgr transfer a.iso and 1 more (part 2 of 3)"
        );
        assert_eq!(job_name(Some("nightly"), &files, 0, 1), "nightly");
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
