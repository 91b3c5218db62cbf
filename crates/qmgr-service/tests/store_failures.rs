//! What the queue does when its store refuses a write (a full disk, a file system gone
//! read-only): a request fails with the store's error and changes nothing; a change the
//! engine or a timer made stops the job in ERROR with the store's error. The store is made
//! to refuse through `QueueManager::refuse_store_writes_for_tests` (SQLite's `query_only`),
//! which works as root too, unlike a read-only file.

use std::sync::Arc;
use std::time::{Duration, Instant};

use qmgr_core::config::Config;
use qmgr_core::paths::StatePaths;
use qmgr_core::service::{JobChange, JobView, QueueServiceExt};
use qmgr_core::{ErrorContext, Guid, JobState, JobType};
use qmgr_service::{LocalService, QueueManager, SystemClock};
use qmgr_tests::TestServer;

struct Fixture {
    _state: tempfile::TempDir,
    downloads: tempfile::TempDir,
    service: LocalService,
}

impl Fixture {
    fn new() -> Self {
        let state = tempfile::tempdir().unwrap();
        let manager = QueueManager::start(
            Config::default(),
            &StatePaths::isolated(state.path()),
            Arc::new(SystemClock::new()),
        )
        .unwrap();
        Self {
            _state: state,
            downloads: tempfile::tempdir().unwrap(),
            service: LocalService::new(manager, 1000),
        }
    }

    fn path(&self, name: &str) -> String {
        self.downloads
            .path()
            .join(name)
            .to_string_lossy()
            .into_owned()
    }

    fn refuse_writes(&self, refuse: bool) {
        self.service
            .manager()
            .refuse_store_writes_for_tests(refuse)
            .unwrap();
    }

    fn wait_for(&self, id: Guid, state: JobState) -> JobView {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let view = self.service.job(id).unwrap();
            if view.job.state == state {
                return view;
            }
            assert!(
                Instant::now() < deadline,
                "waiting for {state}; job is {} ({:?})",
                view.job.state,
                view.job.error
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn assert_store_error(error: &qmgr_core::QmgrError) {
    assert!(
        error.description.contains("store"),
        "not the store's error: {}",
        error.description
    );
}

#[test]
fn a_request_the_store_refuses_fails_with_the_store_error_and_changes_nothing() {
    let server = TestServer::start();
    let fx = Fixture::new();
    let id = fx.service.create_job("before", JobType::Download).unwrap();
    fx.service
        .add_file(id, &server.url("/data/1k/a"), &fx.path("a"))
        .unwrap();

    fx.refuse_writes(true);
    let error = fx
        .service
        .set_job(id, JobChange::DisplayName("after".into()))
        .unwrap_err();
    assert_store_error(&error);
    let error = fx.service.resume(id).unwrap_err();
    assert_store_error(&error);
    let error = fx
        .service
        .add_file(id, &server.url("/data/1k/b"), &fx.path("b"))
        .unwrap_err();
    assert_store_error(&error);
    let error = fx.service.cancel(id).unwrap_err();
    assert_store_error(&error);
    assert!(fx.service.create_job("new", JobType::Download).is_err());

    let view = fx.service.job(id).unwrap();
    assert_eq!(view.job.display_name, "before");
    assert_eq!(view.job.state, JobState::Suspended);
    assert_eq!(view.job.files.len(), 1);
    assert_eq!(fx.service.jobs(false).unwrap().len(), 1);

    // Once the store takes writes again, the same calls work.
    fx.refuse_writes(false);
    fx.service.resume(id).unwrap();
    fx.wait_for(id, JobState::Transferred);
    fx.service.complete(id).unwrap();
    assert_eq!(std::fs::metadata(fx.path("a")).unwrap().len(), 1024);
}

#[test]
fn a_background_change_the_store_refuses_stops_the_job_in_error() {
    let server = TestServer::start();
    let fx = Fixture::new();
    let id = fx.service.create_job("slow", JobType::Download).unwrap();
    // About two seconds: the store refuses while it runs, so the engine's next report (the
    // file's start, its answer or its end) cannot be recorded.
    fx.service
        .add_file(id, &server.url("/data/64k?rate=32768"), &fx.path("slow"))
        .unwrap();
    fx.service.resume(id).unwrap();
    fx.refuse_writes(true);

    let view = fx.wait_for(id, JobState::Error);
    let error = view.job.error.expect("the job says why");
    assert_store_error(&error.error);
    assert_eq!(error.error.context, ErrorContext::GeneralQueueManager);
    assert!(
        !std::path::Path::new(&fx.path("slow")).exists(),
        "nothing was completed"
    );

    // Resume starts it again once the store works.
    fx.refuse_writes(false);
    fx.service.resume(id).unwrap();
    fx.wait_for(id, JobState::Transferred);
    fx.service.complete(id).unwrap();
    assert_eq!(std::fs::metadata(fx.path("slow")).unwrap().len(), 65536);
}
