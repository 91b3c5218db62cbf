//! Jobs that complete themselves (the auto-complete mark `qmgr transfer` sets) and
//! interactive retries, in-process against the real engine and the test server. Retry
//! times use a manual clock; nothing here measures speed.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qmgr_core::config::Config;
use qmgr_core::hresult;
use qmgr_core::job::AutoComplete;
use qmgr_core::paths::StatePaths;
use qmgr_core::service::{JobChange, JobView, QueueService, QueueServiceExt, WaitReason};
use qmgr_core::store::Store;
use qmgr_core::{Guid, JobState, JobType, Timestamp};
use qmgr_service::{Clock, LocalService, ManualClock, QueueManager, SystemClock};
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

const UID: u32 = 1000;

fn start(state: &Path, clock: Arc<dyn Clock>) -> LocalService {
    let config = Config {
        max_background_jobs: 4,
        ..Config::default()
    };
    LocalService::new(
        QueueManager::start(config, &StatePaths::isolated(state), clock).unwrap(),
        UID,
    )
}

fn job_with(service: &LocalService, remote: &str, local: &Path) -> Guid {
    let id = service.create_job("test", JobType::Download).unwrap();
    service
        .add_file(id, remote, &local.to_string_lossy())
        .unwrap();
    id
}

/// Polls `id` until `done` accepts its view (or it left the queue: `None`).
#[track_caller]
fn wait_for(
    service: &LocalService,
    id: Guid,
    what: &str,
    done: impl Fn(Option<&JobView>) -> bool,
) -> Option<JobView> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = match service.job(id) {
            Ok(view) => Some(view),
            Err(error) if error.hresult == hresult::BG_E_NOT_FOUND => None,
            Err(error) => panic!("{error}"),
        };
        if done(view.as_ref()) {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            view.map(|v| v.job.state)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_marked_job_completes_itself_and_an_unmarked_one_waits_for_complete() {
    let server = TestServer::start();
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let service = start(state.path(), Arc::new(SystemClock::new()));
    let (marked_path, plain_path) = ("/data/100k/marked", "/data/100k/plain");
    let marked_local = downloads.path().join("marked.bin");
    let plain_local = downloads.path().join("plain.bin");
    let marked = job_with(&service, &server.url(marked_path), &marked_local);
    service
        .set_job(marked, JobChange::AutoComplete(Some(AutoComplete::Replace)))
        .unwrap();
    assert_eq!(
        service.job(marked).unwrap().job.auto_complete,
        Some(AutoComplete::Replace)
    );
    let plain = job_with(&service, &server.url(plain_path), &plain_local);
    let notifications = service.subscribe().unwrap();
    service.resume(marked).unwrap();
    service.resume(plain).unwrap();

    wait_for(&service, marked, "the marked job to leave the queue", |v| {
        v.is_none()
    });
    assert_eq!(
        std::fs::read(&marked_local).unwrap(),
        expected_body(marked_path, INITIAL_VERSION, 100 << 10)
    );
    let acknowledged = notifications
        .try_iter()
        .any(|n| n.job == marked && n.state == JobState::Acknowledged);
    assert!(acknowledged, "subscribers learn that it was completed");

    let view = wait_for(&service, plain, "TRANSFERRED", |v| {
        v.is_some_and(|v| v.job.state == JobState::Transferred)
    })
    .unwrap();
    assert_eq!(view.waiting, Some(WaitReason::AwaitingComplete));
    assert!(!plain_local.exists(), "only Complete moves it into place");
    service.complete(plain).unwrap();
    assert!(plain_local.exists());
}

#[test]
fn a_no_clobber_job_that_meets_an_existing_file_stays_transferred_and_says_why() {
    let server = TestServer::start();
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let service = start(state.path(), Arc::new(SystemClock::new()));
    let local = downloads.path().join("taken.bin");
    let id = job_with(&service, &server.url("/data/10k/taken"), &local);
    service
        .set_job(id, JobChange::AutoComplete(Some(AutoComplete::NoClobber)))
        .unwrap();
    std::fs::write(&local, b"keep me").unwrap();
    service.resume(id).unwrap();
    let view = wait_for(&service, id, "a failed auto-complete", |v| {
        v.is_some_and(|v| matches!(v.waiting, Some(WaitReason::CompleteFailed { .. })))
    })
    .unwrap();
    assert_eq!(view.job.state, JobState::Transferred);
    assert_eq!(std::fs::read(&local).unwrap(), b"keep me");
    // An explicit Complete (which replaces) still finishes it.
    service.complete(id).unwrap();
    assert_eq!(
        std::fs::read(&local).unwrap(),
        expected_body("/data/10k/taken", INITIAL_VERSION, 10 << 10)
    );
}

#[test]
fn a_marked_job_found_transferred_at_start_is_completed() {
    let server = TestServer::start();
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let local = downloads.path().join("late.bin");
    let id = {
        let service = start(state.path(), Arc::new(SystemClock::new()));
        let id = job_with(&service, &server.url("/data/50k/late"), &local);
        service.resume(id).unwrap();
        wait_for(&service, id, "TRANSFERRED", |v| {
            v.is_some_and(|v| v.job.state == JobState::Transferred)
        });
        service.manager().shutdown();
        id
    };
    // As if the service had stopped between TRANSFERRED and its Complete: the stored job
    // carries the mark.
    {
        let mut store = Store::open(state.path()).unwrap();
        let mut job = store
            .load_jobs()
            .unwrap()
            .into_iter()
            .find(|job| job.id == id)
            .unwrap();
        job.auto_complete = Some(AutoComplete::Replace);
        store.save_job(&job).unwrap();
    }
    assert!(!local.exists());
    let service = start(state.path(), Arc::new(SystemClock::new()));
    wait_for(&service, id, "the job to leave the queue", |v| v.is_none());
    assert_eq!(
        std::fs::read(&local).unwrap(),
        expected_body("/data/50k/late", INITIAL_VERSION, 50 << 10)
    );
}

#[test]
fn interactive_retries_start_at_the_first_delay_and_double_up_to_the_minimum_retry_delay() {
    let server = TestServer::start();
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let service = start(state.path(), clock.clone());
    let id = job_with(
        &service,
        &server.url("/data/10?status=503"),
        &downloads.path().join("busy.bin"),
    );
    service
        .set_job(id, JobChange::MinimumRetryDelay(Duration::from_secs(30)))
        .unwrap();
    service
        .set_job(id, JobChange::NoProgressTimeout(Duration::from_secs(120)))
        .unwrap();
    service
        .set_job(id, JobChange::FirstRetryDelay(Some(Duration::from_secs(5))))
        .unwrap();
    assert_eq!(
        service.job(id).unwrap().job.settings.first_retry_delay,
        Some(Duration::from_secs(5))
    );
    service.resume(id).unwrap();
    let mut delays = Vec::new();
    for failures in 1..=4 {
        let view = wait_for(&service, id, "the next failure", |v| {
            v.is_some_and(|v| {
                v.job.state == JobState::TransientError && v.job.error_count == failures
            })
        })
        .unwrap();
        let Some(WaitReason::RetryAt { at, .. }) = view.waiting else {
            panic!("{:?}", view.waiting);
        };
        let failed_at = view.job.error.as_ref().unwrap().at;
        let delay = at.since(failed_at);
        delays.push(delay.as_secs());
        clock.advance(delay);
        service.manager().poke();
    }
    assert_eq!(delays, [5, 10, 20, 30]);
    // 5 + 10 + 20 + 30 = 65 s without progress; the 120 s timeout ends it in ERROR.
    clock.advance(Duration::from_secs(60));
    service.manager().poke();
    let view = wait_for(&service, id, "ERROR", |v| {
        v.is_some_and(|v| v.job.state == JobState::Error)
    })
    .unwrap();
    assert_eq!(
        view.job.error.unwrap().error.hresult,
        hresult::BG_E_NO_PROGRESS
    );
}
