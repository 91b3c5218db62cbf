//! IBackgroundCopyFile3::SetValidationState through qmgrd: a verdict outlives a SIGKILL of
//! the service, and a rejected file is downloaded again, its content whole and right.

mod common;

use common::Instance;

use qmgr_core::service::{JobChange, QueueServiceExt};
use qmgr_core::{JobState, hresult};
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

#[test]
fn verdicts_survive_a_restart_and_a_rejected_file_is_downloaded_again() {
    let instance = Instance::new();
    let server = TestServer::start();
    let client = instance.client();
    let id = client
        .create_job("validation", qmgr_core::JobType::Download)
        .unwrap();
    let paths = ["/data/20000/kept", "/data/30000/rejected"];
    let locals: Vec<_> = ["kept", "rejected"]
        .iter()
        .map(|name| instance.downloads().join(name))
        .collect();
    for (path, local) in paths.iter().zip(&locals) {
        client
            .add_file(id, &server.url(path), &local.to_string_lossy())
            .unwrap();
    }
    client.resume(id).unwrap();
    common::wait_for_state(&client, id, JobState::Transferred);
    let verdict =
        |file: u32, valid: bool| client.set_job(id, JobChange::ValidationState { file, valid });
    assert_eq!(verdict(0, true).unwrap(), hresult::S_OK);
    let rejected_temp = client.job(id).unwrap().job.files[1]
        .temp_name
        .clone()
        .expect("a transferred file has its temporary file");
    assert_eq!(verdict(1, false).unwrap(), hresult::S_OK);
    drop(client);
    instance.kill_daemons("-KILL");

    let client = instance.client();
    let view = client.job(id).unwrap();
    assert_eq!(view.job.state, JobState::Error);
    let error = view
        .job
        .error
        .as_ref()
        .expect("the rejection is the job's error");
    assert_eq!(error.error.hresult, hresult::BG_E_VALIDATION_FAILED);
    assert_eq!(error.file_index, Some(1));
    let (kept, rejected) = (&view.job.files[0], &view.job.files[1]);
    assert!(kept.validated && kept.completed);
    assert!(!rejected.validated && !rejected.completed);
    assert_eq!(rejected.bytes_transferred, 0);
    assert!(
        !std::path::Path::new(&rejected_temp).exists(),
        "the rejected bytes are still on disk at {rejected_temp}"
    );

    client.resume(id).unwrap();
    let done = common::wait_for_state(&client, id, JobState::Transferred);
    assert_eq!(
        done.job.state,
        JobState::Transferred,
        "{:?}",
        done.job.error
    );
    assert!(done.job.files[0].validated && !done.job.files[1].validated);
    client.complete(id).unwrap();
    for ((path, local), size) in paths.iter().zip(&locals).zip([20_000, 30_000]) {
        assert_eq!(
            std::fs::read(local).unwrap(),
            expected_body(path, INITIAL_VERSION, size),
            "{path}"
        );
    }
}
