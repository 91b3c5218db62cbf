//! The client API with the queue hosted in the test process (`Manager::in_process`).

#![cfg(feature = "in-process")]

mod common;

use common::Sandbox;
use qmgr_client::{JobState, Manager, hresult};
use qmgr_tests::TestServer;

fn host(sandbox: &Sandbox) -> Manager {
    let manager = Manager::in_process(&sandbox.instance()).unwrap();
    assert!(manager.is_in_process());
    manager
}

#[test]
fn a_download_is_watched_until_transferred_then_completed() {
    let sandbox = Sandbox::new();
    let server = TestServer::start();
    common::a_download_is_watched_until_transferred_then_completed(
        &host(&sandbox),
        &server,
        &sandbox,
    );
}

#[test]
fn a_failed_transfer_ends_the_watch_with_the_error() {
    let sandbox = Sandbox::new();
    let server = TestServer::start();
    common::a_failed_transfer_ends_the_watch_with_the_error(&host(&sandbox), &server, &sandbox);
}

#[test]
fn a_job_cancelled_elsewhere_ends_the_watch() {
    let sandbox = Sandbox::new();
    let server = TestServer::start();
    common::a_job_cancelled_elsewhere_ends_the_watch(&host(&sandbox), &server, &sandbox);
}

#[test]
fn settings_and_state_changes_read_back() {
    let sandbox = Sandbox::new();
    let server = TestServer::start();
    common::settings_and_state_changes_read_back(&host(&sandbox), &server, &sandbox);
}

#[test]
fn refusals_carry_the_hresult_and_what_was_tried() {
    let sandbox = Sandbox::new();
    common::refusals_carry_the_hresult_and_what_was_tried(&host(&sandbox), &sandbox);
}

#[test]
fn an_auto_completed_job_ends_the_watch_acknowledged() {
    let sandbox = Sandbox::new();
    let server = TestServer::start();
    common::an_auto_completed_job_ends_the_watch_acknowledged(&host(&sandbox), &server, &sandbox);
}

#[test]
fn the_hosted_queue_holds_the_store_until_its_last_handle_goes_and_keeps_jobs() {
    let sandbox = Sandbox::new();
    let manager = host(&sandbox);
    assert_eq!(sandbox.store_holder(), Some(std::process::id()));
    let error = Manager::in_process(&sandbox.instance()).unwrap_err();
    assert_eq!(error.hresult(), hresult::HRESULT_ALREADY_EXISTS);
    let job = manager.new_job("kept").create().unwrap();
    let id = job.id();
    drop(manager);
    // The job handle keeps the queue.
    assert_eq!(job.state().unwrap(), JobState::Suspended);
    drop(job);
    // Gone: the store may be served again, and the job is still in it.
    let again = host(&sandbox);
    assert_eq!(again.job(id).unwrap().info().unwrap().display_name, "kept");
}

#[test]
fn an_upload_with_a_reply_is_sent_and_its_reply_read() {
    let sandbox = Sandbox::new();
    let server = TestServer::start();
    common::an_upload_with_a_reply_is_sent_and_its_reply_read(&host(&sandbox), &server, &sandbox);
}

#[test]
fn a_job_the_service_cannot_complete_ends_the_watch_with_why() {
    let sandbox = Sandbox::new();
    let server = TestServer::start();
    common::a_job_the_service_cannot_complete_ends_the_watch_with_why(
        &host(&sandbox),
        &server,
        &sandbox,
    );
}
