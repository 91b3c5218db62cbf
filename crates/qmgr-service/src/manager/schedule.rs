//! Scheduling: which jobs hold a transfer slot, starting a job's transfers and sharing
//! its bandwidth cap among them.

use std::path::Path;
use std::time::Duration;

use qmgr_core::error::Result;
use qmgr_core::job::JobPriority;
use qmgr_core::schedule::{self, Candidate, Limits, Running};
use qmgr_core::{Guid, JobState, Timestamp};
use qmgr_transfer::Engine;

use super::transfer_request::transfer_request;
use super::{Run, Slot, State, certificate_check};

/// The most files named by one write (see `State::name_temp_file`).
const TEMP_NAMES_AHEAD: usize = 64;
/// The most files looked at for names by one write: finished files in between are skipped,
/// but not without bound.
const TEMP_NAMES_LOOKED_AT: usize = 4 * TEMP_NAMES_AHEAD;
/// Downloads a job hands the engine beyond those it runs at once: they wait in the run's
/// lane, and the engine starts the next the moment one ends (see `qmgr_transfer::Lane`).
/// Enough to keep a job of small files moving while this thread is busy elsewhere.
const LANE_AHEAD: usize = 32;

impl State {
    /// Decides which jobs run and starts or stops transfers accordingly.
    pub(super) fn schedule(&mut self, engine: &Engine, now: Timestamp, mono: Duration) {
        self.schedule_needed = false;
        // Jobs whose COST_FLAGS do not allow the network's cost state wait in QUEUED; one
        // that runs stops as a job whose slice ended does, and resumes when the state clears.
        let cost_state = self.cost_state().0;
        let mut held_by_cost = Vec::new();
        let candidates: Vec<Candidate> = self
            .jobs
            .values()
            .filter(|e| e.job.state.is_runnable())
            .filter(|e| {
                let held = self.held_by_cost(&e.job, cost_state);
                if held && e.run.is_some() {
                    held_by_cost.push(e.job.id);
                }
                !held
            })
            .map(|e| Candidate {
                id: e.job.id,
                priority: e.job.priority,
                turn: e.turn,
                running: e.run.as_ref().map(|run| Running {
                    since: run.since,
                    // A transfer still waiting in the engine's lane has nothing to lose.
                    can_yield: run.transfers.iter().all(|t| {
                        self.transfers
                            .get(t)
                            .is_none_or(|s| s.can_yield || !s.started)
                    }),
                }),
            })
            .collect();
        let limits = Limits {
            max_background: self.config.max_background_jobs as usize,
            time_slice: self.config.time_slice,
        };
        let plan = schedule::plan(&candidates, limits, mono);
        self.next_decision = plan.next_decision;
        for id in plan.stop.into_iter().chain(held_by_cost) {
            self.stop_transfers(engine, id);
            let turn = self.next_turn;
            self.next_turn += 1;
            if let Some(entry) = self.jobs.get_mut(&id) {
                entry.turn = turn;
                let before = entry.job.state;
                entry.job.apply(qmgr_core::Event::SliceEnded, now);
                let saved = self.store.save_job_row(&entry.job);
                if self.saved_or_stopped(engine, id, before, saved, now) {
                    self.announce(id, before, now);
                }
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
    pub(super) fn number_the_line(&mut self) {
        if !self.line_stale {
            return;
        }
        self.line_stale = false;
        let mut line: Vec<(JobPriority, bool, u64, Guid)> = self
            .jobs
            .values()
            .filter(|e| e.job.priority != JobPriority::Foreground)
            .filter(|e| e.job.state.is_runnable())
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
    pub(super) fn start_job(&mut self, engine: &Engine, id: Guid, now: Timestamp, mono: Duration) {
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        let before = entry.job.state;
        if before == JobState::Queued {
            entry.job.start_transfer(now);
        }
        // Finished files never become unfinished, so the bound only moves forward: over
        // the job's life this walks each file once.
        let files = &entry.job.files;
        let mut first = entry.first_unfinished.min(files.len());
        while files.get(first).is_some_and(|f| f.completed) {
            first += 1;
        }
        entry.first_unfinished = first;
        let lane = qmgr_transfer::Lane {
            key: self.next_lane,
            width: entry.job.settings.parallel_files,
        };
        self.next_lane += 1;
        entry.run = Some(Box::new(Run {
            since: mono,
            transfers: Vec::new(),
            next_file: first,
            lane,
        }));
        self.announce(id, before, now);
        self.fill_transfers(engine, id, now);
    }

    /// Starts transfers for the job's unfinished files, up to its `parallel_files`. The
    /// files are taken in order from the run's cursor, so each is looked at once per run
    /// however large the job.
    pub(super) fn fill_transfers(&mut self, engine: &Engine, id: Guid, now: Timestamp) {
        self.fill(engine, id, now, false);
    }

    /// While a batch waits for its commit: starts the job's next files whose temporary
    /// names are already in the store (named ahead by an earlier commit), so that a job of
    /// small files keeps its transfers busy meanwhile. A file without a name stops this (the
    /// fill after the commit names it); jobs whose starts write to the store (uploads,
    /// on-demand fetches, certificate checks) wait for the commit as a whole.
    pub(super) fn fill_named_transfers(&mut self, engine: &Engine, id: Guid, now: Timestamp) {
        self.fill(engine, id, now, true);
    }

    fn fill(&mut self, engine: &Engine, id: Guid, now: Timestamp, named_only: bool) {
        let validated = self.has_certificate_validator(id);
        // An on-demand job fetches only files with spans pending and none under way.
        let on_demand = self.jobs.get(&id).is_some_and(|e| e.job.settings.on_demand);
        if named_only
            && (validated
                || on_demand
                || self
                    .jobs
                    .get(&id)
                    .is_none_or(|e| e.job.job_type.is_upload()))
        {
            return;
        }
        let fetchable: Vec<bool> = if on_demand {
            (0..self.jobs[&id].job.files.len())
                .map(|index| self.wants_fetch(id, index))
                .collect()
        } else {
            Vec::new()
        };
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(run) = &mut entry.run else { return };
        let running = run
            .transfers
            .iter()
            .filter(|t| self.transfers.contains_key(t))
            .count();
        let width = entry.job.settings.parallel_files;
        // Uploads run on threads of their own, and an on-demand job's fetches depend on
        // what is asked meanwhile: only downloads of whole files are handed over ahead.
        let lane = (!on_demand && !entry.job.job_type.is_upload()).then_some(run.lane.key);
        if lane.is_some() && run.lane.width != width {
            let _ = engine.set_lane_width(run.lane.key, width);
            run.lane.width = width;
        }
        let ahead = if lane.is_some() { LANE_AHEAD } else { 0 };
        let free = (width as usize + ahead).saturating_sub(running);
        let files = &entry.job.files;
        let mut next = Vec::with_capacity(free);
        // A file whose server waits for the job's certificate validator holds the run's
        // cursor: the files after it wait too, as the order of a job's files is kept.
        let mut held_for_check = None;
        while next.len() < free && run.next_file < files.len() {
            let index = run.next_file;
            if named_only && !files[index].completed && files[index].temp_name.is_none() {
                break;
            }
            if !files[index].completed && (!on_demand || fetchable[index]) {
                if validated
                    && certificate_check::is_https(&files[index].remote_name)
                    && !entry
                        .certificate_gate
                        .as_ref()
                        .is_some_and(|gate| gate.approves(index))
                {
                    held_for_check = Some(index);
                    break;
                }
                next.push(index);
            }
            run.next_file += 1;
        }
        for index in next {
            if self.jobs[&id].job.job_type.is_upload() {
                match self.start_upload(engine, id, index) {
                    Ok(transfer) => {
                        if let Some(run) = self.jobs.get_mut(&id).and_then(|e| e.run.as_mut()) {
                            run.transfers.push(transfer);
                        }
                    }
                    Err(error) => {
                        self.fail_job(engine, id, index, error, false, None, now);
                        return;
                    }
                }
                continue;
            }
            if let Err(error) = self.name_temp_file(id, index) {
                self.fail_job(engine, id, index, error, false, None, now);
                return;
            }
            let pin = self.take_approved_pin(id, index);
            let fetch = on_demand.then(|| self.jobs[&id].job.files[index].on_demand.fetch_order());
            let scratch = match on_demand.then(|| self.name_scratch_file(id, index)) {
                Some(Ok(scratch)) => Some(scratch),
                Some(Err(error)) => {
                    self.fail_job(engine, id, index, error, false, None, now);
                    return;
                }
                None => None,
            };
            let idle_mode = self.config.idle_mode;
            let request = transfer_request(&self.jobs[&id].job, index, &self.paths).map(|mut r| {
                r.security.pinned_public_key = pin;
                // `idle_mode = false` in the config turns idle mode off for every job.
                r.idle &= idle_mode;
                r.lane = lane.map(|key| qmgr_transfer::Lane { key, width });
                if let (Some(spans), Some(scratch)) = (&fetch, scratch) {
                    // The spans go to a scratch file; the file's own temporary file is
                    // written only when they are placed.
                    r.partial = Some(qmgr_transfer::PartialFile {
                        temp_path: scratch,
                        bytes: 0,
                        validator: qmgr_core::Validator::default(),
                        total: None,
                    });
                    r.ranges = super::on_demand::fetch_ranges(spans);
                }
                r
            });
            match request.and_then(|r| engine.submit(r)) {
                Ok(transfer) => {
                    let file = &self.jobs[&id].job.files[index];
                    let started_at = file.bytes_transferred;
                    self.transfers.insert(
                        transfer,
                        Slot {
                            fetch,
                            started: lane.is_none(),
                            ..Slot::new(id, index, started_at, started_at == 0)
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
        // After the files before it started: a check that cannot start fails the job.
        if let Some(index) = held_for_check {
            self.start_certificate_check(engine, id, index, now);
        }
        if on_demand {
            self.suspend_if_idle(engine, id, now);
        }
        // A transfer starts without a cap; only a job with a cap has shares to redo as its
        // transfers come and go (SetJob lifts a removed cap from the running ones itself).
        if self
            .jobs
            .get(&id)
            .is_some_and(|e| e.job.settings.bandwidth_limit.is_some())
        {
            self.share_job_limit(engine, id);
        }
    }

    /// Gives file `index` of job `id` its temporary file name, recorded in the store before
    /// the engine creates the file: whenever a crash comes, no temporary file exists that
    /// the store does not know of (see `sweep_temp_files`).
    ///
    /// The unfinished files after it get their names in the same write, up to
    /// `TEMP_NAMES_AHEAD`: they start soon, and one commit then serves many starts. A name
    /// given ahead costs nothing else: its file is made only when its transfer starts, and
    /// a name with no file behind it is dropped at the next start-up.
    pub(super) fn name_temp_file(&mut self, id: Guid, index: usize) -> Result<()> {
        let Some(entry) = self.jobs.get_mut(&id) else {
            return Ok(());
        };
        if entry.job.files[index].temp_name.is_some() {
            return Ok(());
        }
        let last = entry
            .job
            .files
            .len()
            .min(index.saturating_add(TEMP_NAMES_LOOKED_AT));
        let mut named = Vec::new();
        let mut names = qmgr_transfer::TempNames::new(TEMP_NAMES_AHEAD);
        for ahead in index..last {
            let file = &entry.job.files[ahead];
            if file.completed || file.temp_name.is_some() {
                continue;
            }
            let temp = match names.path_beside(Path::new(&file.local_name)) {
                Ok(temp) => temp.to_string_lossy().into_owned(),
                Err(error) if ahead == index => return Err(error),
                Err(_) => break,
            };
            entry.job.give_temp_name(ahead, temp);
            // The row's bytes go with the name: progress still pending for the file is old.
            self.batcher
                .forget_file(id, u32::try_from(ahead).unwrap_or(u32::MAX));
            named.push(ahead);
            if named.len() == TEMP_NAMES_AHEAD {
                break;
            }
        }
        let saved = self.store.save_temp_names(&entry.job, &named);
        if saved.is_err() {
            // A name the store does not hold is never handed to the engine: the next run
            // names the files again.
            for ahead in named {
                entry.job.files[ahead].temp_name = None;
            }
        }
        saved
    }

    /// Names the files the job's run may start next (as many as it runs at once), from the
    /// first of them without a name; returns whether it wrote names. Uploads name nothing
    /// (their files exist).
    pub(super) fn name_next_files(&mut self, id: Guid) -> bool {
        let Some(entry) = self.jobs.get(&id) else {
            return false;
        };
        if entry.job.job_type.is_upload() {
            return false;
        }
        let Some(run) = &entry.run else { return false };
        let files = &entry.job.files;
        let last = files
            .len()
            .min(run.next_file.saturating_add(TEMP_NAMES_LOOKED_AT));
        let unnamed = (run.next_file..last)
            .filter(|&index| !files[index].completed)
            .take(entry.job.settings.parallel_files as usize)
            .find(|&index| files[index].temp_name.is_none());
        unnamed.is_some_and(|index| self.name_temp_file(id, index).is_ok())
    }

    /// Divides the job's own bandwidth cap among its running transfers: as many as run at
    /// once (those waiting in the lane get their share for when they start).
    pub(super) fn share_job_limit(&self, engine: &Engine, id: Guid) {
        let Some(entry) = self.jobs.get(&id) else {
            return;
        };
        let Some(run) = &entry.run else { return };
        let at_once = run
            .transfers
            .len()
            .min(entry.job.settings.parallel_files as usize);
        let count = u64::try_from(at_once).unwrap_or(u64::MAX).max(1);
        let share = entry
            .job
            .settings
            .bandwidth_limit
            .map(|limit| (limit / count).max(1));
        for transfer in &run.transfers {
            let _ = engine.set_transfer_limit(*transfer, share);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use qmgr_core::config::Config;
    use qmgr_core::paths::StatePaths;
    use qmgr_core::service::{JobChange, NewFile, Request, Response};
    use qmgr_core::{Guid, JobType};
    use qmgr_tests::TestServer;

    use crate::manager::test_support::UID;
    use crate::{QueueManager, SystemClock};

    /// Six files of 16 KiB, one at a time; the first answers after `first_delay_ms`.
    /// Returns once the first is asked for, with the files' paths on `server`.
    fn a_job_of_six_files_one_at_a_time(
        server: &TestServer,
        dir: &Path,
        first_delay_ms: u64,
    ) -> (QueueManager, Guid, Vec<String>) {
        let manager = QueueManager::start(
            Config::default(),
            &StatePaths::isolated(&dir.join("state")),
            Arc::new(SystemClock::new()),
        )
        .unwrap();
        let Response::JobCreated(job) = manager
            .handle(
                UID,
                Request::CreateJob {
                    display_name: "six files".into(),
                    job_type: JobType::Download,
                    umask: None,
                },
            )
            .unwrap()
        else {
            panic!("no job made");
        };
        let paths: Vec<String> = (0..6).map(|i| format!("/data/16k/lane{i}")).collect();
        let files = paths
            .iter()
            .enumerate()
            .map(|(i, path)| {
                let url = if i == 0 {
                    server.url(&format!("{path}?delay_ms={first_delay_ms}"))
                } else {
                    server.url(path)
                };
                NewFile::whole(url, dir.join(format!("f{i}")).to_string_lossy())
            })
            .collect();
        manager
            .handle(UID, Request::AddFiles { job, files })
            .unwrap();
        let change = JobChange::ParallelFiles(1);
        manager
            .handle(UID, Request::SetJob { job, change })
            .unwrap();
        manager.handle(UID, Request::Resume { job }).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.request_count(&paths[0]) == 0 {
            assert!(Instant::now() < deadline, "the job did not start");
            std::thread::sleep(Duration::from_millis(2));
        }
        (manager, job, paths)
    }

    /// Waits until `server` was asked for each of `paths` (failing with `why` after half a
    /// minute); returns how many times each was asked for.
    fn each_asked_for(server: &TestServer, paths: &[String], why: &str) -> Vec<u64> {
        let requested = || {
            paths
                .iter()
                .map(|p| server.request_count(p))
                .collect::<Vec<_>>()
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while requested().contains(&0) {
            assert!(
                Instant::now() < deadline,
                "{why}: requests per file {:?}",
                requested()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        requested()
    }

    /// A running job's next files start while this thread cannot look (its lock held, as
    /// when it commits or answers calls): they wait in the job's lane in the engine, which
    /// starts each the moment a file ends.
    #[test]
    fn a_jobs_next_files_start_while_the_queue_thread_is_busy_elsewhere() {
        let server = TestServer::start();
        let dir = tempfile::tempdir().unwrap();
        // The lock is taken while the first file is under way.
        let (manager, _, paths) = a_job_of_six_files_one_at_a_time(&server, dir.path(), 500);
        let guard = manager.shared.state.lock();
        let requested = each_asked_for(&server, &paths, "files waited for the queue's thread");
        assert_eq!(requested, [1; 6], "each file asked for once");
        drop(guard);
        manager.shutdown();
    }

    /// A running job given a larger ParallelFiles starts more files at once, not when its
    /// file under way ends.
    #[test]
    fn a_wider_running_job_starts_its_waiting_files_at_once() {
        let server = TestServer::start();
        let dir = tempfile::tempdir().unwrap();
        // The first file answers long after this test ends (Cancel ends its transfer).
        let (manager, job, paths) = a_job_of_six_files_one_at_a_time(&server, dir.path(), 60_000);
        let change = JobChange::ParallelFiles(3);
        manager
            .handle(UID, Request::SetJob { job, change })
            .unwrap();
        each_asked_for(&server, &paths, "the other files waited for the first");
        manager.handle(UID, Request::Cancel { job }).unwrap();
        manager.shutdown();
    }

    /// Files handed to the engine ahead of time are not moving: a summary's active files
    /// are the one under way.
    #[test]
    fn files_waiting_in_the_engine_are_not_shown_as_moving() {
        let server = TestServer::start();
        let dir = tempfile::tempdir().unwrap();
        let (manager, job, _) = a_job_of_six_files_one_at_a_time(&server, dir.path(), 3_000);
        let active = || {
            let Response::JobSummary(summary) =
                manager.handle(UID, Request::GetJobSummary { job }).unwrap()
            else {
                panic!("no summary");
            };
            summary
                .active_files
                .iter()
                .map(|f| f.index)
                .collect::<Vec<u32>>()
        };
        // The queue hears of the start a moment after the server does.
        let deadline = Instant::now() + Duration::from_secs(30);
        while active().is_empty() {
            assert!(
                Instant::now() < deadline,
                "the first file is not shown moving"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(active(), [0], "only the first file moves");
        manager.shutdown();
    }
}
