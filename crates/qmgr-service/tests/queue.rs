//! The queue manager in-process, against the real engine and the fault-injecting test
//! server. Retry delays use a manual clock; waiting for transfers polls with a generous
//! bound (a hang fails the test, nothing here measures speed).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qmgr_core::config::Config;
use qmgr_core::hresult;
use qmgr_core::job::{JobPriority, NotifyCommand, security};
use qmgr_core::paths::StatePaths;
use qmgr_core::service::{
    JobChange, JobView, NewFile, NotificationKind, QueueService, QueueServiceExt, Request,
    Response, WaitReason,
};
use qmgr_core::{ErrorContext, Guid, JobState, JobType, Timestamp};
use qmgr_service::{LocalService, ManualClock, QueueManager, SystemClock};
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

const UID: u32 = 1000;
/// How long a test waits for the queue manager's next pass (see `QueueManager::settle`).
const SETTLE: Duration = Duration::from_secs(10);

struct Fixture {
    _state: tempfile::TempDir,
    downloads: tempfile::TempDir,
    service: LocalService,
}

impl Fixture {
    fn new(config: Config) -> Self {
        Self::with_clock(config, Arc::new(SystemClock::new()))
    }

    fn with_clock(config: Config, clock: Arc<dyn qmgr_service::Clock>) -> Self {
        let state = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        let manager =
            QueueManager::start(config, &StatePaths::isolated(state.path()), clock).unwrap();
        Self {
            _state: state,
            downloads,
            service: LocalService::new(manager, UID),
        }
    }

    fn path(&self, name: &str) -> String {
        self.downloads
            .path()
            .join(name)
            .to_string_lossy()
            .into_owned()
    }

    fn job_with(&self, files: &[(String, String)]) -> Guid {
        let id = self.service.create_job("test", JobType::Download).unwrap();
        let files = files
            .iter()
            .map(|(r, l)| NewFile {
                remote_name: r.clone(),
                local_name: l.clone(),
                ranges: None,
            })
            .collect();
        self.service.add_files(id, files).unwrap();
        id
    }

    fn job_files(&self, id: Guid, files: &[(String, String)]) {
        let files = files
            .iter()
            .map(|(r, l)| NewFile {
                remote_name: r.clone(),
                local_name: l.clone(),
                ranges: None,
            })
            .collect();
        self.service.add_files(id, files).unwrap();
    }

    fn wait_for(&self, id: Guid, what: &str, done: impl Fn(&JobView) -> bool) -> JobView {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let view = self.service.job(id).unwrap();
            if done(&view) {
                return view;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; job is {:?}",
                view.job.state
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Job number `n`, whose view is about 1.4 MB (200 remote names of 6.5 kB): a listing
    /// page holds only a few of them.
    fn large_job(&self, n: usize) -> Guid {
        let long_remote = format!("https://example.invalid/{}", "€".repeat(2150));
        let id = self
            .service
            .create_job(&format!("job {n}"), JobType::Download)
            .unwrap();
        let files = (0..200)
            .map(|i| NewFile {
                remote_name: format!("{long_remote}/{i}"),
                local_name: self.path(&format!("{n}-{i}-{}", "l".repeat(200))),
                ranges: None,
            })
            .collect();
        self.service.add_files(id, files).unwrap();
        id
    }

    /// One page of the job listing from `after` on, and the cursor of the next.
    fn job_page(
        &self,
        after: Option<qmgr_core::service::ListCursor>,
    ) -> (Vec<JobView>, Option<qmgr_core::service::ListCursor>) {
        let Response::JobPage { jobs, next } = self
            .service
            .execute(Request::ListJobs {
                all_users: false,
                after,
            })
            .unwrap()
        else {
            panic!("ListJobs answers a page")
        };
        (jobs, next)
    }

    fn wait_for_state(&self, id: Guid, state: JobState) -> JobView {
        self.wait_for(id, state.name(), |v| v.job.state == state)
    }
}

fn config() -> Config {
    Config {
        max_background_jobs: 4,
        ..Config::default()
    }
}

#[test]
fn a_three_file_job_transfers_and_completes_byte_identical() {
    let server = TestServer::start();
    let fx = Fixture::new(config());
    let names = ["a.bin", "b.bin", "c.bin"];
    let sizes = [1u64 << 20, 12_345, 0];
    let files: Vec<(String, String)> = names
        .iter()
        .zip(sizes)
        .map(|(n, s)| (server.url(&format!("/data/{s}/{n}")), fx.path(n)))
        .collect();
    let id = fx.job_with(&files);
    assert_eq!(fx.service.job(id).unwrap().job.state, JobState::Suspended);
    fx.service.resume(id).unwrap();
    let view = fx.wait_for_state(id, JobState::Transferred);
    let progress = view.job.progress();
    assert_eq!(progress.files_transferred, 3);
    assert_eq!(progress.bytes_transferred, sizes.iter().sum::<u64>());
    assert_ne!(view.job.times.transfer_completed, Timestamp::ZERO);
    for name in names {
        assert!(
            !Path::new(&fx.path(name)).exists(),
            "nothing appears before Complete"
        );
    }
    assert_eq!(fx.service.complete(id).unwrap(), hresult::S_OK);
    for (name, size) in names.iter().zip(sizes) {
        let body = std::fs::read(fx.path(name)).unwrap();
        assert_eq!(
            body,
            expected_body(&format!("/data/{size}/{name}"), INITIAL_VERSION, size),
            "{name}"
        );
    }
    assert_eq!(
        fx.service.job(id).unwrap_err().hresult,
        hresult::BG_E_NOT_FOUND,
        "completed jobs leave the queue"
    );
    let leftovers: Vec<_> = std::fs::read_dir(fx.downloads.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 3, "no temporary files left: {leftovers:?}");
}

#[test]
fn resume_without_files_is_bg_e_empty() {
    let fx = Fixture::new(config());
    let id = fx.service.create_job("empty", JobType::Download).unwrap();
    assert_eq!(
        fx.service.resume(id).unwrap_err().hresult,
        hresult::BG_E_EMPTY
    );
    assert_eq!(fx.service.job(id).unwrap().job.state, JobState::Suspended);
}

#[test]
fn a_missing_file_is_a_permanent_error_with_context() {
    let server = TestServer::start();
    let fx = Fixture::new(config());
    let id = fx.job_with(&[(server.url("/nothing-here"), fx.path("x"))]);
    fx.service.resume(id).unwrap();
    let view = fx.wait_for_state(id, JobState::Error);
    let error = view.job.current_error().unwrap();
    assert_eq!(error.error.hresult, hresult::BG_E_HTTP_ERROR_404);
    assert_eq!(error.error.context, ErrorContext::RemoteFile);
    assert_eq!(error.file_index, Some(0));
    assert_eq!(view.waiting, Some(WaitReason::Failed));
    assert_eq!(view.attempts.len(), 1);
    assert_eq!(view.attempts[0].http_status, Some(404));
}

#[test]
fn a_transient_error_is_retried_after_the_retry_delay() {
    let server = TestServer::start();
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let fx = Fixture::with_clock(config(), clock.clone());
    let url = server.url("/data/4096?fail_first=1&status=503");
    let id = fx.job_with(&[(url, fx.path("retry.bin"))]);
    fx.service.resume(id).unwrap();
    let view = fx.wait_for_state(id, JobState::TransientError);
    assert_eq!(
        view.job.current_error().unwrap().error.hresult,
        hresult::BG_E_HTTP_ERROR_503
    );
    let Some(WaitReason::RetryAt { at, server_asked }) = view.waiting else {
        panic!("no retry time: {:?}", view.waiting)
    };
    assert_eq!(
        at.since(clock.now_for_test()),
        Duration::from_secs(600),
        "MinimumRetryDelay defaults to 600 s"
    );
    assert!(!server_asked, "no Retry-After came with this 503");
    // Nothing happens before the delay passes …
    clock.advance(Duration::from_secs(599));
    // The driver has looked at the clock before the check that nothing happened.
    assert!(
        fx.service.manager().settle(SETTLE),
        "the queue manager made no pass"
    );
    assert_eq!(
        fx.service.job(id).unwrap().job.state,
        JobState::TransientError
    );
    // … and the retry succeeds after it.
    clock.advance(Duration::from_secs(1));
    fx.service.manager().poke();
    fx.wait_for_state(id, JobState::Transferred);
    assert_eq!(server.request_count("/data/4096"), 2);
}

trait NowForTest {
    fn now_for_test(&self) -> Timestamp;
}

impl NowForTest for ManualClock {
    fn now_for_test(&self) -> Timestamp {
        qmgr_service::Clock::now(self)
    }
}

/// A job whose server always answers 503, with a NoProgressTimeout of 15 minutes, on a
/// manual clock, after its first failure (its retry is due in MinimumRetryDelay, 10 minutes).
fn failing_with_a_manual_clock(server: &TestServer) -> (Fixture, Arc<ManualClock>, Guid) {
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let fx = Fixture::with_clock(config(), clock.clone());
    let id = fx.job_with(&[(server.url("/data/10?status=503"), fx.path("never.bin"))]);
    fx.service
        .set_job(id, JobChange::NoProgressTimeout(Duration::from_secs(900)))
        .unwrap();
    fx.service.resume(id).unwrap();
    fx.wait_for_state(id, JobState::TransientError);
    (fx, clock, id)
}

#[test]
fn no_progress_timeout_ends_in_bg_e_no_progress_naming_the_cause() {
    let server = TestServer::start();
    let (fx, clock, id) = failing_with_a_manual_clock(&server);
    clock.advance(Duration::from_secs(600));
    fx.service.manager().poke();
    fx.wait_for(id, "the second failure", |v| {
        v.attempts.len() == 2 && v.job.state == JobState::TransientError
    });
    clock.advance(Duration::from_secs(300));
    fx.service.manager().poke();
    let view = fx.wait_for_state(id, JobState::Error);
    let error = view.job.current_error().unwrap();
    assert_eq!(error.error.hresult, hresult::BG_E_NO_PROGRESS);
    assert!(
        error.error.description.contains("503"),
        "{}",
        error.error.description
    );
}

#[test]
fn retry_waits_keep_their_length_when_the_wall_clock_jumps() {
    let day: i64 = 86_400 * 1_000_000;
    for (jump, direction) in [(-day, "back"), (day, "forward")] {
        let server = TestServer::start();
        let (fx, clock, id) = failing_with_a_manual_clock(&server);
        clock.jump_wall_clock(jump);
        fx.service.manager().settle(Duration::from_secs(10));
        // Forward, the no-progress timeout (15 minutes) has not run out: a day passed on
        // the wall clock only.
        let view = fx.service.job(id).unwrap();
        assert_eq!(
            view.job.state,
            JobState::TransientError,
            "jumped {direction}"
        );
        // The retry comes when MinimumRetryDelay (10 minutes) has really passed, not a
        // day later (back) or at once (forward).
        clock.advance(Duration::from_secs(590));
        fx.service.manager().settle(Duration::from_secs(10));
        assert_eq!(
            fx.service.job(id).unwrap().attempts.len(),
            1,
            "jumped {direction}: retried before its delay"
        );
        clock.advance(Duration::from_secs(10));
        fx.service.manager().poke();
        fx.wait_for(id, "the retry", |v| v.attempts.len() == 2);
    }
}

#[test]
fn maximum_download_time_counts_running_time_from_the_last_resume() {
    let server = TestServer::start();
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let fx = Fixture::with_clock(config(), clock.clone());
    // A file that takes far longer than the test: the job stays TRANSFERRING.
    let id = fx.job_with(&[(
        server.url("/data/4m/maxtime?rate=2000"),
        fx.path("slow.bin"),
    )]);
    let minute = Duration::from_secs(60);
    fx.service
        .set_job(id, JobChange::MaximumDownloadTime(minute))
        .unwrap();
    assert_eq!(
        fx.service
            .job(id)
            .unwrap()
            .job
            .settings
            .maximum_download_time,
        minute
    );
    let still_running = |what: &str| {
        assert!(
            fx.service.manager().settle(SETTLE),
            "the queue manager made no pass"
        );
        let state = fx.service.job(id).unwrap().job.state;
        assert!(state.is_active(), "{what}: {state:?}");
    };
    // Time QUEUED before Resume does not count.
    clock.advance(Duration::from_secs(600));
    fx.service.resume(id).unwrap();
    fx.wait_for_state(id, JobState::Transferring);
    clock.advance(Duration::from_secs(59));
    still_running("after 59 s");
    clock.advance(Duration::from_secs(1));
    fx.service.manager().poke();
    let view = fx.wait_for_state(id, JobState::Error);
    let error = view.job.current_error().unwrap();
    assert_eq!(error.error.hresult, hresult::BG_E_MAXDOWNLOAD_TIMEOUT);
    // Resume starts the count again; a limit of zero is no limit.
    fx.service.resume(id).unwrap();
    fx.wait_for_state(id, JobState::Transferring);
    clock.advance(Duration::from_secs(59));
    still_running("59 s after Resume");
    fx.service
        .set_job(id, JobChange::MaximumDownloadTime(Duration::ZERO))
        .unwrap();
    clock.advance(Duration::from_secs(3600));
    still_running("with no limit");
    // A lowered limit applies to the run under way.
    fx.service
        .set_job(id, JobChange::MaximumDownloadTime(Duration::from_secs(30)))
        .unwrap();
    fx.service.manager().poke();
    fx.wait_for_state(id, JobState::Error);
    fx.service.cancel(id).unwrap();
}

#[test]
fn cancel_deletes_partial_files_and_the_job() {
    let server = TestServer::start();
    let fx = Fixture::new(config());
    let id = fx.job_with(&[(server.url("/data/4m?rate=200000"), fx.path("slow.bin"))]);
    fx.service.resume(id).unwrap();
    let view = fx.wait_for(id, "bytes on disk", |v| {
        v.job.files[0].bytes_transferred > 0 && v.job.files[0].temp_name.is_some()
    });
    let temp = view.job.files[0].temp_name.clone().unwrap();
    assert_eq!(fx.service.cancel(id).unwrap(), hresult::S_OK);
    assert!(!Path::new(&temp).exists(), "the temporary file is deleted");
    assert_eq!(
        fx.service.job(id).unwrap_err().hresult,
        hresult::BG_E_NOT_FOUND
    );
    assert_eq!(
        fx.service.cancel(id).unwrap_err().hresult,
        hresult::BG_E_NOT_FOUND
    );
}

#[test]
fn suspend_and_resume_continue_the_same_file() {
    let server = TestServer::start();
    let fx = Fixture::new(config());
    let path = "/data/2m/suspend";
    let id = fx.job_with(&[(
        server.url(&format!("{path}?rate=1000000")),
        fx.path("s.bin"),
    )]);
    fx.service.resume(id).unwrap();
    fx.wait_for(id, "some bytes", |v| {
        v.job.files[0].bytes_transferred > 100_000
    });
    fx.service.suspend(id).unwrap();
    let paused = fx.service.job(id).unwrap();
    assert_eq!(paused.job.state, JobState::Suspended);
    assert_eq!(paused.waiting, Some(WaitReason::Suspended));
    fx.service.resume(id).unwrap();
    fx.wait_for_state(id, JobState::Transferred);
    fx.service.complete(id).unwrap();
    assert_eq!(
        std::fs::read(fx.path("s.bin")).unwrap(),
        expected_body(path, INITIAL_VERSION, 2 << 20)
    );
    let ranged = server
        .requests()
        .iter()
        .filter(|r| r.header("range").is_some())
        .count();
    assert_eq!(ranged, 1, "the second attempt asked only for the rest");
}

#[test]
fn complete_keeps_only_finished_files() {
    let server = TestServer::start();
    let fx = Fixture::new(config());
    let id = fx.job_with(&[
        (server.url("/data/1000/done"), fx.path("done.bin")),
        (
            server.url("/data/1000/missing?status=404"),
            fx.path("missing.bin"),
        ),
    ]);
    fx.service.resume(id).unwrap();
    fx.wait_for_state(id, JobState::Error);
    assert_eq!(
        fx.service.complete(id).unwrap(),
        hresult::BG_S_PARTIAL_COMPLETE
    );
    assert!(Path::new(&fx.path("done.bin")).exists());
    assert!(!Path::new(&fx.path("missing.bin")).exists());
}

#[test]
fn the_queue_survives_a_restart_and_continues_partial_files() {
    let server = TestServer::start();
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let local = downloads
        .path()
        .join("big.bin")
        .to_string_lossy()
        .into_owned();
    let path = "/data/4m/restart";
    let first = LocalService::new(
        QueueManager::start(
            config(),
            &StatePaths::isolated(state.path()),
            Arc::new(SystemClock::new()),
        )
        .unwrap(),
        UID,
    );
    let id = first.create_job("restart", JobType::Download).unwrap();
    first
        .add_file(id, &server.url(&format!("{path}?rate=2000000")), &local)
        .unwrap();
    first.resume(id).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while first.job(id).unwrap().job.files[0].bytes_transferred < 500_000 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    first.manager().shutdown();
    drop(first);
    let served_before = server.body_bytes_sent(path);

    let second = LocalService::new(
        QueueManager::start(
            config(),
            &StatePaths::isolated(state.path()),
            Arc::new(SystemClock::new()),
        )
        .unwrap(),
        UID,
    );
    let view = second.job(id).unwrap();
    assert!(view.job.state.is_runnable(), "{:?}", view.job.state);
    while second.job(id).unwrap().job.state != JobState::Transferred {
        assert!(Instant::now() < deadline + Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(10));
    }
    second.complete(id).unwrap();
    assert_eq!(
        std::fs::read(&local).unwrap(),
        expected_body(path, INITIAL_VERSION, 4 << 20)
    );
    let total_served = server.body_bytes_sent(path);
    assert!(
        total_served < (4 << 20) + served_before / 2,
        "resumed rather than restarted: {total_served} bytes served"
    );
}

#[test]
fn notifications_reach_subscribers() {
    let server = TestServer::start();
    let fx = Fixture::new(config());
    let events = fx.service.subscribe().unwrap();
    let id = fx.job_with(&[(server.url("/data/100"), fx.path("n.bin"))]);
    fx.service.resume(id).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let event = events
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("a Transferred notification");
        if event.kind == NotificationKind::Transferred {
            assert_eq!(event.job, id);
            assert_eq!(event.state, JobState::Transferred);
            break;
        }
    }
}

#[test]
fn a_stalled_subscriber_holds_one_modification_per_job_and_every_event() {
    let server = TestServer::start();
    let fx = Fixture::new(config());
    // Never read: what qmgrd holds for a client that stopped reading.
    let stalled = fx.service.manager().subscribe(UID).unwrap();
    let reading = fx.service.subscribe().unwrap();
    let jobs: Vec<Guid> = (0..3)
        .map(|n| fx.job_with(&[(server.url("/data/100"), fx.path(&format!("s{n}.bin")))]))
        .collect();
    for n in 0..10_000 {
        fx.service
            .set_job(jobs[n % jobs.len()], JobChange::Description(format!("{n}")))
            .unwrap();
    }
    for id in &jobs {
        fx.service.resume(*id).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut transferred = Vec::new();
    while transferred.len() < jobs.len() {
        let event = reading
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("every Transferred reaches a reading subscriber");
        if event.kind == NotificationKind::Transferred {
            transferred.push(event.job);
        }
    }
    transferred.sort();
    let mut expected = jobs.clone();
    expected.sort();
    assert_eq!(transferred, expected);

    let pending = stalled.pending();
    let count = |kind: fn(&NotificationKind) -> bool, job: Guid| {
        pending
            .iter()
            .filter(|n| n.job == job && kind(&n.kind))
            .count()
    };
    for id in &jobs {
        assert!(
            count(|k| *k == NotificationKind::Modification, *id) <= 1,
            "{pending:?}"
        );
        assert_eq!(count(|k| *k == NotificationKind::Transferred, *id), 1);
        assert_eq!(
            count(
                |k| matches!(k, NotificationKind::FileTransferred { file: 0 }),
                *id
            ),
            1
        );
    }
    assert!(pending.len() <= 3 * jobs.len(), "{}", pending.len());
}

#[test]
fn the_notification_command_runs_without_a_shell() {
    let server = TestServer::start();
    let fx = Fixture::new(config());
    let marker = fx.path("marker file");
    let id = fx.job_with(&[(server.url("/data/10"), fx.path("c.bin"))]);
    fx.service
        .set_job(
            id,
            JobChange::NotifyCommand(Some(NotifyCommand {
                program: "/usr/bin/touch".into(),
                parameters: Some(format!("touch \"{marker}\"")),
            })),
        )
        .unwrap();
    fx.service.resume(id).unwrap();
    fx.wait_for_state(id, JobState::Transferred);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !Path::new(&marker).exists() {
        assert!(Instant::now() < deadline, "the command did not run");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn background_jobs_wait_for_a_slot_and_foreground_never_waits() {
    let server = TestServer::start();
    let mut config = config();
    config.max_background_jobs = 1;
    let fx = Fixture::new(config);
    let slow = |name: &str| {
        (
            server.url(&format!("/data/8m/{name}?rate=500000")),
            fx.path(name),
        )
    };
    let first = fx.job_with(&[slow("first")]);
    let second = fx.job_with(&[slow("second")]);
    fx.service.resume(first).unwrap();
    fx.wait_for(first, "the first job to run", |v| v.job.state.is_active());
    fx.service.resume(second).unwrap();
    // The line is numbered by the scheduler, which runs right after the call.
    fx.wait_for(second, "the second job to wait behind the first", |v| {
        v.job.state == JobState::Queued
            && v.waiting == Some(WaitReason::WaitingForSlot { ahead: 1 })
    });
    let urgent = fx.job_with(&[slow("urgent")]);
    fx.service
        .set_job(urgent, JobChange::Priority(JobPriority::Foreground))
        .unwrap();
    fx.service.resume(urgent).unwrap();
    fx.wait_for(urgent, "the foreground job to run", |v| {
        v.job.state.is_active()
    });
    assert_eq!(fx.service.job(second).unwrap().job.state, JobState::Queued);
    for id in [first, second, urgent] {
        fx.service.cancel(id).unwrap();
    }
}

#[test]
fn legacy_groups_rename_each_file_when_it_finishes() {
    let server = TestServer::start();
    let fx = Fixture::new(config());
    let group = Guid::new_random();
    let job = Guid::new_random();
    fx.service.create_group(group).unwrap();
    fx.service
        .execute(Request::CreateGroupJob {
            group,
            job,
            umask: None,
        })
        .unwrap();
    let second = fx
        .service
        .execute(Request::CreateGroupJob {
            group,
            job: Guid::new_random(),
            umask: None,
        })
        .unwrap_err();
    assert_eq!(second.hresult, hresult::E_NOTIMPL, "a group holds one job");
    fx.service
        .add_file(
            job,
            &server.url("/data/5000/legacy"),
            &fx.path("legacy.bin"),
        )
        .unwrap();
    fx.service.execute(Request::ResumeGroup { group }).unwrap();
    fx.wait_for_state(job, JobState::Transferred);
    assert_eq!(
        std::fs::read(fx.path("legacy.bin")).unwrap(),
        expected_body("/data/5000/legacy", INITIAL_VERSION, 5000)
    );
    let view = fx.service.group(group).unwrap();
    let status = view.group.status(view.job.as_ref().map(|j| j.job.state));
    assert_eq!(
        status,
        qmgr_core::group::status::GROUP_COMPLETE | qmgr_core::group::status::GROUP_SUSPENDED
    );
    fx.service.execute(Request::CancelGroup { group }).unwrap();
    assert!(
        Path::new(&fx.path("legacy.bin")).exists(),
        "finished files stay after CancelGroup"
    );
    assert_eq!(
        fx.service.group(group).unwrap_err().hresult,
        hresult::QM_E_ITEM_NOT_FOUND
    );
}

#[test]
fn legacy_groups_count_against_max_jobs_per_user() {
    let mut config = config();
    config.max_jobs_per_user = 3;
    let fx = Fixture::new(config);
    let too_many = |error: qmgr_core::QmgrError| {
        assert_eq!(
            error.hresult,
            hresult::BG_E_TOO_MANY_JOBS_PER_USER,
            "{error}"
        );
        assert!(error.description.contains("max_jobs_per_user"), "{error}");
    };
    let (empty, full) = (Guid::new_random(), Guid::new_random());
    fx.service.create_group(empty).unwrap();
    fx.service.create_group(full).unwrap();
    // A group's job takes the place its group already has.
    fx.service
        .execute(Request::CreateGroupJob {
            group: full,
            job: Guid::new_random(),
            umask: None,
        })
        .unwrap();
    let job = fx.service.create_job("third", JobType::Download).unwrap();
    too_many(fx.service.create_group(Guid::new_random()).unwrap_err());
    too_many(
        fx.service
            .create_job("fourth", JobType::Download)
            .unwrap_err(),
    );
    assert_eq!(fx.service.groups().unwrap().len(), 2, "nothing was added");
    // Freeing a place frees it for either kind.
    fx.service.cancel(job).unwrap();
    fx.service.create_group(Guid::new_random()).unwrap();
    too_many(
        fx.service
            .create_job("fourth", JobType::Download)
            .unwrap_err(),
    );
    fx.service
        .execute(Request::CancelGroup { group: empty })
        .unwrap();
    fx.service.create_job("fourth", JobType::Download).unwrap();
    // Root is not limited.
    let root = LocalService::new(fx.service.manager().clone(), 0);
    for _ in 0..5 {
        root.create_group(Guid::new_random()).unwrap();
    }
}

#[test]
fn listings_come_in_pages_that_together_hold_every_job() {
    use qmgr_core::service::{LIST_PAGE_BYTES, ListCursor};
    let fx = Fixture::new(config());
    // Three to a page at most.
    let ids: Vec<Guid> = (0..10).map(|n| fx.large_job(n)).collect();
    let mut after: Option<ListCursor> = None;
    let mut listed = Vec::new();
    let mut pages = 0;
    loop {
        let (jobs, next) = fx.job_page(after);
        pages += 1;
        assert!(!jobs.is_empty());
        assert!(jobs.len() == 1 || qmgr_ipc::frame::encoded_len(&jobs) <= LIST_PAGE_BYTES);
        listed.extend(jobs.into_iter().map(|view| view.job.id));
        match next {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    assert!(pages >= 3, "{pages} pages");
    assert_eq!(listed, ids, "every job once, in creation order");
    let all: Vec<Guid> = fx
        .service
        .jobs(false)
        .unwrap()
        .iter()
        .map(|v| v.job.id)
        .collect();
    assert_eq!(all, ids);
}

#[test]
fn a_listing_keeps_its_order_while_jobs_come_and_go_between_pages() {
    use qmgr_core::service::ListCursor;
    let fx = Fixture::new(config());
    // A few to a page.
    let create = |n: usize| fx.large_job(n);
    let mut ids: Vec<Guid> = (0..9).map(create).collect();
    let list_page = |after: Option<ListCursor>| {
        let (jobs, next) = fx.job_page(after);
        (
            jobs.into_iter().map(|view| view.job.id).collect::<Vec<_>>(),
            next,
        )
    };
    let (mut listed, mut next) = list_page(None);
    assert!(
        next.is_some() && listed.len() < 8,
        "{} on page one",
        listed.len()
    );
    // Between pages: a job not listed yet and one already listed leave, and a job comes.
    let gone_later = *ids.last().unwrap();
    let gone_listed = listed[0];
    fx.service.cancel(gone_later).unwrap();
    fx.service.cancel(gone_listed).unwrap();
    let newcomer = create(9);
    while let Some(after) = next {
        let (page, more) = list_page(Some(after));
        assert!(!page.is_empty());
        listed.extend(page);
        next = more;
    }
    ids.retain(|id| *id != gone_later);
    ids.push(newcomer);
    assert_eq!(
        listed, ids,
        "every job once, in creation order; the one that left before its page is not listed, \
         the one created meanwhile comes last"
    );
    // A new listing shows the queue as it is now.
    ids.retain(|id| *id != gone_listed);
    let all: Vec<Guid> = fx
        .service
        .jobs(false)
        .unwrap()
        .iter()
        .map(|v| v.job.id)
        .collect();
    assert_eq!(all, ids);
}

#[test]
fn limits_and_bad_input_are_refused_with_windows_codes() {
    let mut config = config();
    config.max_jobs_per_user = 2;
    config.max_files_per_job = 1;
    let fx = Fixture::new(config);
    let id = fx.service.create_job("a", JobType::Download).unwrap();
    fx.service.create_job("b", JobType::Download).unwrap();
    assert_eq!(
        fx.service
            .create_job("c", JobType::Download)
            .unwrap_err()
            .hresult,
        hresult::BG_E_TOO_MANY_JOBS_PER_USER
    );
    assert_eq!(
        fx.service
            .add_file(id, "gopher://x/y", &fx.path("g"))
            .unwrap_err()
            .hresult,
        hresult::E_INVALIDARG
    );
    assert_eq!(
        fx.service
            .add_file(id, "http://x/y", "relative/path")
            .unwrap_err()
            .hresult,
        hresult::E_INVALIDARG
    );
    let missing_dir = fx
        .service
        .add_file(id, "http://x/y", "/nonexistent-dir/file")
        .unwrap_err();
    assert_eq!(
        missing_dir.hresult,
        hresult::HRESULT_PATH_NOT_FOUND,
        "{missing_dir}"
    );
    fx.service
        .add_file(id, "http://x/y", &fx.path("one"))
        .unwrap();
    assert_eq!(
        fx.service
            .add_file(id, "http://x/z", &fx.path("two"))
            .unwrap_err()
            .hresult,
        hresult::BG_E_TOO_MANY_FILES_IN_JOB
    );
    let headers = fx
        .service
        .set_job(id, JobChange::CustomHeaders(Some("no colon here".into())))
        .unwrap_err();
    assert_eq!(headers.hresult, hresult::E_INVALIDARG);
    assert_eq!(
        fx.service.job(Guid::new_random()).unwrap_err().hresult,
        hresult::BG_E_NOT_FOUND
    );
    assert_eq!(
        fx.service.jobs(true).unwrap_err().hresult,
        hresult::E_ACCESSDENIED,
        "only root lists every user's jobs"
    );
    let other = LocalService::new(fx.service.manager().clone(), UID + 1);
    assert_eq!(other.job(id).unwrap_err().hresult, hresult::E_ACCESSDENIED);
    assert!(matches!(
        fx.service.execute(Request::Ping).unwrap(),
        Response::Pong { .. }
    ));
}

#[test]
fn jobs_untouched_for_the_inactivity_timeout_are_cancelled() {
    let server = TestServer::start();
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let fx = Fixture::with_clock(config(), clock.clone());
    let idle = fx.job_with(&[(server.url("/data/10/idle"), fx.path("idle.bin"))]);
    clock.advance(Duration::from_secs(60 * 86_400));
    let touched = fx.job_with(&[(server.url("/data/10/touched"), fx.path("touched.bin"))]);
    clock.advance(Duration::from_secs(30 * 86_400));
    fx.service.manager().poke();
    let deadline = Instant::now() + Duration::from_secs(10);
    while fx.service.job(idle).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the idle job was not cancelled after 90 days"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        fx.service.job(touched).unwrap().job.state,
        JobState::Suspended,
        "a job touched 30 days ago stays"
    );
}

#[test]
fn complete_without_replacing_keeps_an_existing_destination_and_the_job() {
    let server = TestServer::start();
    let fx = Fixture::new(config());
    let taken = fx.path("taken.bin");
    std::fs::write(&taken, b"mine").unwrap();
    let id = fx.job_with(&[
        (server.url("/data/100/free"), fx.path("free.bin")),
        (server.url("/data/100/taken"), taken.clone()),
    ]);
    fx.service.resume(id).unwrap();
    fx.wait_for_state(id, JobState::Transferred);
    let refused = fx.service.complete_without_replacing(id).unwrap_err();
    assert_eq!(
        std::fs::read(&taken).unwrap(),
        b"mine",
        "the existing file is untouched"
    );
    assert!(refused.description.contains("taken.bin"), "{refused}");
    let view = fx.service.job(id).unwrap();
    assert_eq!(
        view.job.state,
        JobState::Transferred,
        "a failed rename leaves the job as it was"
    );
    // Complete (which replaces, as on Windows) then finishes the job; the file renamed by the
    // first attempt stays in place.
    assert_eq!(fx.service.complete(id).unwrap(), hresult::S_OK);
    assert_eq!(
        std::fs::read(&taken).unwrap(),
        expected_body("/data/100/taken", INITIAL_VERSION, 100)
    );
    assert_eq!(
        std::fs::read(fx.path("free.bin")).unwrap(),
        expected_body("/data/100/free", INITIAL_VERSION, 100)
    );
}

#[test]
fn a_job_bandwidth_limit_is_kept_and_the_transfer_still_completes() {
    let server = TestServer::start();
    let fx = Fixture::new(config());
    let id = fx.job_with(&[(server.url("/data/300000/limited"), fx.path("limited.bin"))]);
    assert_eq!(
        fx.service
            .set_job(id, JobChange::BandwidthLimit(Some(0)))
            .unwrap_err()
            .hresult,
        hresult::E_INVALIDARG,
        "0 would stop the job for good"
    );
    fx.service
        .set_job(id, JobChange::BandwidthLimit(Some(1_000_000)))
        .unwrap();
    assert_eq!(
        fx.service.job(id).unwrap().job.settings.bandwidth_limit,
        Some(1_000_000)
    );
    fx.service.resume(id).unwrap();
    fx.wait_for_state(id, JobState::Transferred);
    fx.service.complete(id).unwrap();
    assert_eq!(
        std::fs::read(fx.path("limited.bin")).unwrap(),
        expected_body("/data/300000/limited", INITIAL_VERSION, 300_000)
    );
}

#[test]
fn a_capped_job_says_what_holds_it_and_foreground_ignores_the_global_cap() {
    let server = TestServer::start();
    let fx = Fixture::new(Config {
        bandwidth_limit: Some(1_000_000),
        ..config()
    });
    // The server sends as fast as it can: the caps bind.
    let fast = (server.url("/data/64m/fast"), fx.path("fast"));
    let background = fx.job_with(&[fast]);
    let own = fx.job_with(&[(server.url("/data/64m/own"), fx.path("own"))]);
    fx.service
        .set_job(own, JobChange::BandwidthLimit(Some(200_000)))
        .unwrap();
    // Foreground, from a server slower than any cap: never throttled.
    let urgent = fx.job_with(&[(
        server.url("/data/4m/urgent?rate=1000000"),
        fx.path("urgent"),
    )]);
    fx.service
        .set_job(urgent, JobChange::Priority(JobPriority::Foreground))
        .unwrap();
    for id in [background, own, urgent] {
        fx.service.resume(id).unwrap();
    }
    fx.wait_for(background, "the global cap", |v| {
        v.job.state.is_active()
            && v.waiting
                == Some(WaitReason::Throttled {
                    bytes_per_second: 1_000_000,
                })
    });
    fx.wait_for(own, "the job's own, smaller cap", |v| {
        v.job.state.is_active()
            && v.waiting
                == Some(WaitReason::Throttled {
                    bytes_per_second: 200_000,
                })
    });
    fx.wait_for(urgent, "a foreground job moving unthrottled", |v| {
        v.job.state.is_active() && v.waiting.is_none()
    });
    for id in [background, own, urgent] {
        fx.service.cancel(id).unwrap();
    }
}

#[test]
fn a_cap_far_above_what_the_link_gives_is_not_reported_as_holding_the_job() {
    let server = TestServer::start();
    let fx = Fixture::new(Config {
        bandwidth_limit: Some(10_000_000),
        ..config()
    });
    // 200 kB/s from the server, a 10 MB/s cap: the link, not the cap, sets the pace.
    let slow = fx.job_with(&[(server.url("/data/4m/slow?rate=200000"), fx.path("slow"))]);
    fx.service
        .set_job(slow, JobChange::BandwidthLimit(Some(5_000_000)))
        .unwrap();
    fx.service.resume(slow).unwrap();
    // Several progress reports in, the job is moving and nothing holds it.
    let view = fx.wait_for(slow, "some progress", |v| {
        v.job.progress().bytes_transferred >= 600_000
    });
    assert_eq!(view.job.state, JobState::Transferring);
    assert_eq!(view.waiting, None, "no cap binds");
    fx.service.cancel(slow).unwrap();
}

#[test]
fn a_longer_retry_after_from_the_server_sets_the_retry_time_and_says_so() {
    let server = TestServer::start();
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let fx = Fixture::with_clock(config(), clock.clone());
    let url = server.url("/data/10?fail_first=1&status=503&retry_after=1800");
    let id = fx.job_with(&[(url, fx.path("later.bin"))]);
    fx.service.resume(id).unwrap();
    let view = fx.wait_for_state(id, JobState::TransientError);
    assert_eq!(
        view.waiting,
        Some(WaitReason::RetryAt {
            at: clock.now_for_test().plus(Duration::from_secs(1800)),
            server_asked: true
        })
    );
    assert_eq!(
        view.job.current_error().unwrap().retry_after,
        Some(Duration::from_secs(1800))
    );
    clock.advance(Duration::from_secs(600));
    // The driver has looked at the clock before the check that nothing happened.
    assert!(
        fx.service.manager().settle(SETTLE),
        "the queue manager made no pass"
    );
    assert_eq!(
        fx.service.job(id).unwrap().job.state,
        JobState::TransientError,
        "the server's wait is honoured"
    );
    clock.advance(Duration::from_secs(1200));
    fx.service.manager().poke();
    fx.wait_for_state(id, JobState::Transferred);
}

#[test]
fn security_flags_reach_the_transfer() {
    let https = TestServer::start_https();
    let http = TestServer::start();
    let fx = Fixture::new(config());
    // The HTTPS server's certificate comes from a CA of its own that nothing trusts.
    let checked = fx.job_with(&[(https.url("/data/1000/checked"), fx.path("checked.bin"))]);
    let trusting = fx.job_with(&[(https.url("/data/1000/trusting"), fx.path("trusting.bin"))]);
    fx.service
        .set_job(
            trusting,
            JobChange::SecurityFlags(security::IGNORE_UNKNOWN_CA),
        )
        .unwrap();
    // A redirect is followed unless the policy forbids it.
    let redirected = fx.job_with(&[(
        http.url("/data/1000/redirected?redirect=1"),
        fx.path("redirected.bin"),
    )]);
    let forbidden = fx.job_with(&[(
        http.url("/data/1000/forbidden?redirect=1"),
        fx.path("forbidden.bin"),
    )]);
    fx.service
        .set_job(
            forbidden,
            JobChange::SecurityFlags(security::REDIRECT_DISALLOW),
        )
        .unwrap();
    for id in [checked, trusting, redirected, forbidden] {
        fx.service.resume(id).unwrap();
    }
    let refused = fx.wait_for_state(checked, JobState::Error);
    assert_eq!(
        refused.job.current_error().unwrap().error.context,
        ErrorContext::GeneralTransport,
        "{:?}",
        refused.job.error
    );
    fx.wait_for_state(trusting, JobState::Transferred);
    fx.wait_for_state(redirected, JobState::Transferred);
    fx.wait_for_state(forbidden, JobState::Error);
}

#[test]
fn add_files_is_all_or_nothing_and_refuses_a_local_name_twice() {
    let fx = Fixture::new(config());
    let file = |remote: &str, local: &str| NewFile {
        remote_name: format!("http://127.0.0.1:9/{remote}"),
        local_name: fx.path(local),
        ranges: None,
    };
    let id = fx.job_with(&[("http://127.0.0.1:9/a".into(), fx.path("a"))]);
    let files_of = || fx.service.job(id).unwrap().job.files.len();
    let refused = fx
        .service
        .add_files(id, vec![file("b", "b"), file("again", "a")])
        .unwrap_err();
    assert_eq!(refused.hresult, hresult::E_INVALIDARG, "{refused}");
    assert_eq!(files_of(), 1, "the whole call was refused");
    let refused = fx
        .service
        .add_files(id, vec![file("b", "b"), file("c", "c"), file("twice", "b")])
        .unwrap_err();
    assert_eq!(refused.hresult, hresult::E_INVALIDARG, "{refused}");
    assert_eq!(files_of(), 1);
    // The names of the refused calls are free again.
    fx.service
        .add_files(id, vec![file("b", "b"), file("c", "c")])
        .unwrap();
    assert_eq!(files_of(), 3);
    let refused = fx.service.add_files(id, vec![file("d", "c")]).unwrap_err();
    assert_eq!(refused.hresult, hresult::E_INVALIDARG, "{refused}");
    assert_eq!(files_of(), 3);
}

#[test]
fn a_job_of_many_files_transfers_each_once_with_its_counts_right() {
    const FILES: u32 = 60;
    let mut config = config();
    config.max_files_per_job = 1000;
    let fx = Fixture::new(config);
    let sources = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut total = 0u64;
    for index in 0..FILES {
        let source = sources.path().join(format!("s{index}"));
        let body = "x".repeat(index as usize * 7);
        total += body.len() as u64;
        std::fs::write(&source, body).unwrap();
        files.push((
            format!("file://{}", source.display()),
            fx.path(&format!("f{index}")),
        ));
    }
    let id = fx.service.create_job("many", JobType::Download).unwrap();
    for chunk in files.chunks(25) {
        fx.job_files(id, chunk);
    }
    fx.service.set_job(id, JobChange::ParallelFiles(7)).unwrap();
    let notifications = fx.service.subscribe().unwrap();
    fx.service.resume(id).unwrap();
    let view = fx.wait_for_state(id, JobState::Transferred);
    let progress = view.job.progress();
    assert_eq!(progress.files_total, FILES);
    assert_eq!(progress.files_transferred, FILES);
    assert_eq!(progress.bytes_total, total);
    assert_eq!(progress.bytes_transferred, total);
    // Each file was finished once.
    let mut finished = Vec::new();
    while let Ok(n) = notifications.recv_timeout(Duration::from_secs(5)) {
        if let NotificationKind::FileTransferred { file } = n.kind {
            finished.push(file);
        }
        if finished.len() == FILES as usize {
            break;
        }
    }
    finished.sort_unstable();
    assert_eq!(finished, (0..FILES).collect::<Vec<_>>());
    fx.service.complete(id).unwrap();
    for (index, (_, local)) in files.iter().enumerate() {
        assert_eq!(std::fs::read(local).unwrap().len(), index * 7, "{local}");
    }
}

#[test]
fn a_summary_holds_the_totals_and_the_moving_files_and_pages_hold_every_file() {
    let server = TestServer::start();
    let fx = Fixture::new(config());
    // One slow file among quick ones: it is still moving when the others are done.
    let mut files: Vec<(String, String)> = (0..6)
        .map(|i| {
            (
                server.url(&format!("/data/{}/q{i}", 1000 + i)),
                fx.path(&format!("q{i}")),
            )
        })
        .collect();
    files.insert(2, (server.url("/data/1m/slow?rate=65536"), fx.path("slow")));
    let id = fx.job_with(&files);
    fx.service.set_job(id, JobChange::ParallelFiles(7)).unwrap();
    fx.service.resume(id).unwrap();
    let view = fx.wait_for(id, "the quick files", |v| {
        v.job.progress().files_transferred == 6 && v.job.files[2].bytes_transferred > 0
    });
    let summary = fx.service.job_summary(id).unwrap();
    assert!(
        summary.job.files.is_empty(),
        "a summary carries no file list"
    );
    assert_eq!(summary.job.id, id);
    assert_eq!(summary.job.state, JobState::Transferring);
    assert_eq!(summary.progress.files_total, 7);
    assert_eq!(summary.progress.files_transferred, 6);
    assert!(summary.progress.bytes_transferred >= view.job.progress().bytes_transferred);
    let active: Vec<u32> = summary.active_files.iter().map(|f| f.index).collect();
    assert_eq!(active, [2], "only the slow file is moving");
    assert_eq!(summary.active_files[0].file.local_name, fx.path("slow"));
    let listed = fx.service.job_summaries(false).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].job.files.is_empty());
    assert_eq!(listed[0].progress.files_total, 7);

    // Pages from the start hold every file in order; a page from the middle starts there.
    let all = fx.service.job_files(id).unwrap();
    let locals: Vec<&str> = all.iter().map(|f| f.local_name.as_str()).collect();
    let expected: Vec<&str> = files.iter().map(|(_, local)| local.as_str()).collect();
    assert_eq!(locals, expected);
    let (tail, total) = fx.service.job_files_page(id, 5, None).unwrap();
    assert_eq!(total, 7);
    assert_eq!(tail.len(), 2);
    assert_eq!(tail[0].local_name, expected[5]);
    let (past_the_end, _) = fx.service.job_files_page(id, 9, None).unwrap();
    assert!(past_the_end.is_empty());
    let one = fx.service.job_file(id, 3).unwrap().unwrap();
    assert_eq!(one.local_name, expected[3]);
    let (two, _) = fx.service.job_files_page(id, 1, Some(2)).unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(two[1].local_name, expected[2]);
    assert_eq!(fx.service.job_file(id, 7).unwrap(), None);
    let paged = fx.service.job_in_pages(id).unwrap();
    assert_eq!(paged.job.files.len(), 7);
    assert_eq!(paged.job.id, id);
    fx.service.cancel(id).unwrap();
}

#[test]
fn a_background_job_transfers_in_idle_mode_and_a_foreground_job_does_not() {
    let server = TestServer::start();
    let fx = Fixture::new(config());
    // Paced by the server, so both are still moving when looked at.
    let background = fx.job_with(&[(
        server.url("/data/64m/background?rate=4000000"),
        fx.path("background"),
    )]);
    let urgent = fx.job_with(&[(
        server.url("/data/64m/urgent?rate=4000000"),
        fx.path("urgent"),
    )]);
    fx.service
        .set_job(urgent, JobChange::Priority(JobPriority::Foreground))
        .unwrap();
    for id in [background, urgent] {
        fx.service.resume(id).unwrap();
    }
    let view = fx.wait_for(background, "idle mode controlling the connection", |v| {
        v.job.state.is_active() && v.idle.is_some()
    });
    let idle = view.idle.unwrap();
    assert_eq!(idle.target_us, 40_000);
    assert!(idle.window_bytes > 0);
    let moving = fx.wait_for(urgent, "the foreground job moving", |v| {
        v.job.state == JobState::Transferring && v.job.progress().bytes_transferred > 0
    });
    assert_eq!(moving.idle, None, "foreground work is never in idle mode");
    for id in [background, urgent] {
        fx.service.cancel(id).unwrap();
    }
}

#[test]
fn response_headers_are_told_while_a_file_moves_once_it_finished_and_after_a_restart() {
    let server = TestServer::start();
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let start = || {
        LocalService::new(
            QueueManager::start(
                config(),
                &StatePaths::isolated(state.path()),
                Arc::new(SystemClock::new()),
            )
            .unwrap(),
            UID,
        )
    };
    let local = |name: &str| downloads.path().join(name).to_string_lossy().into_owned();
    let first = start();
    let id = first.create_job("heads", JobType::Download).unwrap();
    first
        .add_file(id, &server.url("/data/2m/slow?rate=400000"), &local("slow"))
        .unwrap();
    first
        .add_file(id, &server.url("/data/16k/quick"), &local("quick"))
        .unwrap();
    assert_eq!(first.file_response_headers(id, 0).unwrap(), None);
    first.resume(id).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let wait_until = |what: &str, done: &dyn Fn(&JobView) -> bool| {
        while !done(&first.job(id).unwrap()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_until("some bytes", &|view| {
        view.job.files[0].bytes_transferred > 0
    });
    let moving = first
        .file_response_headers(id, 0)
        .unwrap()
        .unwrap_or_default();
    assert!(moving.starts_with("HTTP/1.1 200"), "{moving:?}");
    assert!(moving.contains("Content-Length: 2097152"), "{moving:?}");
    wait_until("TRANSFERRED", &|view| {
        view.job.state == JobState::Transferred
    });
    let quick = first
        .file_response_headers(id, 1)
        .unwrap()
        .unwrap_or_default();
    assert!(quick.contains("Content-Length: 16384"), "{quick:?}");
    first.manager().shutdown();
    drop(first);

    // What a finished file's row holds, read back by the next start.
    let second = start();
    for (file, length) in [(0, "2097152"), (1, "16384")] {
        let head = second
            .file_response_headers(id, file)
            .unwrap()
            .unwrap_or_default();
        assert!(
            head.contains(&format!("Content-Length: {length}")),
            "{file}: {head:?}"
        );
    }
    second.complete(id).unwrap();
    assert_eq!(
        second.file_response_headers(id, 0).unwrap_err().hresult,
        hresult::BG_E_NOT_FOUND
    );
}
