//! The client API through a real qmgrd of the test's own, started on demand by
//! `Manager::connect_to` and stopped at the end of each test.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Sandbox;
use qmgr_client::{Manager, hresult};
use qmgr_tests::TestServer;
use qmgr_tests::qmgrd::{built_qmgrd, stop_qmgrd};

/// A sandbox whose qmgrd is stopped (SIGTERM, as `qmgr daemon stop` does) when the test
/// ends, passed or not.
struct WithDaemon {
    sandbox: Sandbox,
}

impl WithDaemon {
    fn new() -> WithDaemon {
        WithDaemon {
            sandbox: Sandbox::new(),
        }
    }

    fn connect(&self) -> Manager {
        let instance = self
            .sandbox
            .instance()
            .qmgrd(built_qmgrd(Path::new(env!("CARGO_MANIFEST_DIR"))));
        let manager = Manager::connect_to(&instance).unwrap();
        assert!(!manager.is_in_process());
        manager
    }
}

impl Drop for WithDaemon {
    fn drop(&mut self) {
        if let Some(pid) = self.sandbox.store_holder() {
            stop_qmgrd(pid);
        }
    }
}

#[test]
fn a_download_is_watched_until_transferred_then_completed() {
    let test = WithDaemon::new();
    let server = TestServer::start();
    common::a_download_is_watched_until_transferred_then_completed(
        &test.connect(),
        &server,
        &test.sandbox,
    );
}

#[test]
fn a_failed_transfer_ends_the_watch_with_the_error() {
    let test = WithDaemon::new();
    let server = TestServer::start();
    common::a_failed_transfer_ends_the_watch_with_the_error(
        &test.connect(),
        &server,
        &test.sandbox,
    );
}

#[test]
fn a_job_cancelled_elsewhere_ends_the_watch() {
    let test = WithDaemon::new();
    let server = TestServer::start();
    common::a_job_cancelled_elsewhere_ends_the_watch(&test.connect(), &server, &test.sandbox);
}

#[test]
fn settings_and_state_changes_read_back() {
    let test = WithDaemon::new();
    let server = TestServer::start();
    common::settings_and_state_changes_read_back(&test.connect(), &server, &test.sandbox);
}

#[test]
fn refusals_carry_the_hresult_and_what_was_tried() {
    let test = WithDaemon::new();
    common::refusals_carry_the_hresult_and_what_was_tried(&test.connect(), &test.sandbox);
}

#[test]
fn an_auto_completed_job_ends_the_watch_acknowledged() {
    let test = WithDaemon::new();
    let server = TestServer::start();
    common::an_auto_completed_job_ends_the_watch_acknowledged(
        &test.connect(),
        &server,
        &test.sandbox,
    );
}

#[test]
fn a_running_qmgrd_is_reached_by_its_socket_and_keeps_its_store_to_itself() {
    let test = WithDaemon::new();
    let manager = test.connect();
    let job = manager.new_job("seen twice").create().unwrap();
    let socket = test.sandbox.root.path().join("queue/run/qmgr/qmgrd.sock");
    let by_socket = Manager::connect_socket(&socket).unwrap();
    assert_eq!(
        by_socket
            .job(job.id())
            .unwrap()
            .info()
            .unwrap()
            .display_name,
        "seen twice"
    );

    // One queue manager per store: hosting the same queue here is refused, naming qmgrd.
    #[cfg(feature = "in-process")]
    {
        let refused = Manager::in_process(&test.sandbox.instance()).unwrap_err();
        assert_eq!(refused.hresult(), hresult::HRESULT_ALREADY_EXISTS);
        let pid = test.sandbox.store_holder().unwrap();
        assert!(
            refused.description().contains(&pid.to_string()),
            "{refused}"
        );
    }

    // A socket where no qmgrd listens: nothing is started.
    let nobody = test.sandbox.root.path().join("nobody/qmgrd.sock");
    let error = Manager::connect_socket(&nobody).unwrap_err();
    assert_eq!(error.hresult(), hresult::QM_E_SERVICE_UNAVAILABLE);
    assert_eq!(error.name(), Some("QM_E_SERVICE_UNAVAILABLE"));
    assert!(error.to_string().contains("nobody/qmgrd.sock"), "{error}");
    job.cancel().unwrap();
}

#[test]
fn a_watch_goes_on_across_a_qmgrd_restart() {
    let test = WithDaemon::new();
    let server = TestServer::start();
    let manager = test.connect();
    let job = manager
        .new_job("survives")
        .priority(qmgr_client::JobPriority::Foreground)
        .file(
            server.url("/data/512k/survives?rate=400000"),
            test.sandbox.downloads().join("survives.bin"),
        )
        .create()
        .unwrap();
    job.resume().unwrap();
    let mut watch = job.watch().every(Duration::from_millis(20));
    assert!(!watch.next().unwrap().unwrap().is_final());
    // qmgrd stops (its jobs are stored); the next look starts it again.
    let pid = test.sandbox.store_holder().unwrap();
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let last = watch.map(Result::unwrap).last().unwrap();
    assert_eq!(last.state, qmgr_client::JobState::Transferred);
    assert_ne!(
        test.sandbox.store_holder(),
        Some(pid.as_raw_nonzero().get().cast_unsigned())
    );
    job.complete().unwrap();
}

#[test]
fn an_upload_with_a_reply_is_sent_and_its_reply_read() {
    let test = WithDaemon::new();
    let server = TestServer::start();
    common::an_upload_with_a_reply_is_sent_and_its_reply_read(
        &test.connect(),
        &server,
        &test.sandbox,
    );
}

#[test]
fn a_job_the_service_cannot_complete_ends_the_watch_with_why() {
    let test = WithDaemon::new();
    let server = TestServer::start();
    common::a_job_the_service_cannot_complete_ends_the_watch_with_why(
        &test.connect(),
        &server,
        &test.sandbox,
    );
}
