//! IBackgroundCopyJobHttpOptions3 through a real qmgrd: write-only custom headers, and
//! server certificate validators (the check announced, its certificates, the verdict and
//! what a refusal, silence or a vanished validator do to the job). Each test runs its own
//! qmgrd in fresh XDG directories, trusting the test server's CA through `SSL_CERT_FILE`,
//! with the verdict timeout shortened through `QMGR_CERTIFICATE_CHECK_TIMEOUT_MS`.

mod common;

use common::{Instance, one_file_job, wait_for_state, wait_until};

use std::sync::mpsc::Receiver;
use std::time::Duration;

use qmgr_core::hresult::{self, HResult};
use qmgr_core::service::{
    JobChange, Notification, NotificationKind, QueueService, QueueServiceExt, Request,
};
use qmgr_core::{ErrorContext, Guid, JobState};
use qmgr_ipc::Client;
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

/// The verdict timeout of these tests' qmgrd.
const CHECK_TIMEOUT_MS: &str = "400";
/// How long a test waits for a notification that must come.
const PATIENCE: Duration = Duration::from_secs(30);

struct Secure {
    server: TestServer,
    instance: Instance,
    _scratch: tempfile::TempDir,
}

fn secure() -> Secure {
    secure_with_timeout(CHECK_TIMEOUT_MS)
}

fn secure_with_timeout(check_timeout_ms: &str) -> Secure {
    let server = TestServer::start_https();
    let scratch = tempfile::tempdir().unwrap();
    let ca = scratch.path().join("ca.pem");
    std::fs::write(&ca, server.ca_pem()).unwrap();
    let instance = Instance::with_env(vec![
        ("SSL_CERT_FILE".into(), ca.into()),
        (
            "QMGR_CERTIFICATE_CHECK_TIMEOUT_MS".into(),
            check_timeout_ms.into(),
        ),
    ]);
    Secure {
        server,
        instance,
        _scratch: scratch,
    }
}

fn set_validator(client: &Client, job: Guid, process: Option<u32>) -> Result<(), HResult> {
    client
        .execute(Request::SetCertificateValidator {
            job,
            client: process,
        })
        .map(drop)
        .map_err(|error| error.hresult)
}

/// The next certificate check announced for `job`: its id and file.
fn next_check(events: &Receiver<Notification>, job: Guid) -> (u64, u32, u32) {
    loop {
        let event = events
            .recv_timeout(PATIENCE)
            .expect("no certificate check was announced");
        if let NotificationKind::CertificateCheck {
            check,
            file,
            client,
        } = event.kind
            && event.job == job
        {
            return (check, file, client);
        }
    }
}

fn verdict(client: &Client, job: Guid, check: u64, verdict: HResult) {
    client
        .execute(Request::CertificateVerdict {
            job,
            check,
            verdict,
        })
        .unwrap();
}

#[test]
fn write_only_headers_are_sent_but_never_shown_even_after_a_restart() {
    let server = TestServer::start();
    let instance = Instance::new();
    let client = instance.client();
    let local = instance.downloads().join("write-only");
    let id = one_file_job(&client, &server.url("/data/1k/write-only"), &local);
    client
        .set_job(
            id,
            JobChange::CustomHeaders(Some("X-Api-Key: s3cr3t\r\n".into())),
        )
        .unwrap();
    assert_eq!(
        client
            .job(id)
            .unwrap()
            .job
            .settings
            .custom_headers
            .as_deref(),
        Some("X-Api-Key: s3cr3t\r\n"),
        "readable before"
    );
    client
        .set_job(id, JobChange::MakeCustomHeadersWriteOnly)
        .unwrap();
    instance.stop();
    let client = instance.client();
    for view in [client.job(id).unwrap(), client.job_in_pages(id).unwrap()] {
        assert!(view.job.settings.custom_headers_write_only);
        assert_eq!(view.job.settings.custom_headers, None);
    }
    let summary = client.job_summary(id).unwrap();
    assert_eq!(summary.job.settings.custom_headers, None);
    assert!(client.jobs(false).unwrap().iter().all(|view| {
        view.job.settings.custom_headers.is_none() && view.job.settings.custom_headers_write_only
    }));
    // Making them write-only again changes nothing and succeeds, as on Windows.
    client
        .set_job(id, JobChange::MakeCustomHeadersWriteOnly)
        .unwrap();
    client.resume(id).unwrap();
    wait_for_state(&client, id, JobState::Transferred);
    client.complete(id).unwrap();
    assert!(
        std::fs::read(&local).unwrap()
            == expected_body("/data/1k/write-only", INITIAL_VERSION, 1024)
    );
    let request = server
        .requests()
        .into_iter()
        .find(|request| request.path == "/data/1k/write-only")
        .unwrap();
    assert_eq!(request.header("X-Api-Key"), Some("s3cr3t"));
}

#[test]
fn an_approved_server_serves_the_file_and_the_validator_saw_its_certificates() {
    let secure = secure();
    let client = secure.instance.client();
    let events = client.subscribe().unwrap();
    let local = secure.instance.downloads().join("approved");
    let path = "/data/32k/approved";
    let id = one_file_job(&client, &secure.server.url(path), &local);
    set_validator(&client, id, Some(std::process::id())).unwrap();
    client.resume(id).unwrap();
    let (check, file, process) = next_check(&events, id);
    assert_eq!((file, process), (0, std::process::id()));
    assert_eq!(
        client.job(id).unwrap().job.state,
        JobState::Connecting,
        "the file waits for the verdict"
    );
    assert_eq!(
        secure.server.request_count(path),
        0,
        "no request before the verdict"
    );
    let details = client.certificate_check(id, check).unwrap();
    assert_eq!(details.file, 0);
    assert_eq!(details.certificate.first(), Some(&0x30), "DER");
    assert!(details.chain.starts_with(&details.certificate));
    verdict(&client, id, check, hresult::S_OK);
    wait_for_state(&client, id, JobState::Transferred);
    client.complete(id).unwrap();
    assert!(std::fs::read(&local).unwrap() == expected_body(path, INITIAL_VERSION, 32 << 10));
    // A verdict given twice finds the check gone.
    let again = client.execute(Request::CertificateVerdict {
        job: id,
        check,
        verdict: hresult::S_OK,
    });
    assert!(again.is_err());
}

#[test]
fn a_refusal_puts_the_job_in_transient_error_with_the_validators_code() {
    let secure = secure();
    let client = secure.instance.client();
    let events = client.subscribe().unwrap();
    let path = "/data/8k/refused";
    let id = one_file_job(
        &client,
        &secure.server.url(path),
        &secure.instance.downloads().join("refused"),
    );
    set_validator(&client, id, Some(std::process::id())).unwrap();
    client.resume(id).unwrap();
    let (check, _, _) = next_check(&events, id);
    verdict(&client, id, check, hresult::E_ACCESSDENIED);
    let view = wait_until(&client, id, "TRANSIENT_ERROR", |view| {
        view.job.state == JobState::TransientError
    });
    let error = &view.job.error.as_ref().unwrap().error;
    assert_eq!(error.hresult, hresult::E_ACCESSDENIED, "{error}");
    assert_eq!(error.context, ErrorContext::ServerCertificateCallback);
    assert_eq!(view.job.error.as_ref().unwrap().file_index, Some(0));
    assert_eq!(secure.server.request_count(path), 0);
}

#[test]
fn no_verdict_in_time_or_a_validator_that_is_gone_stops_the_job_until_one_is_set_again() {
    let secure = secure();
    let client = secure.instance.client();
    let path = "/data/8k/silent";
    let local = secure.instance.downloads().join("silent");
    let id = one_file_job(&client, &secure.server.url(path), &local);

    // Nobody answers.
    set_validator(&client, id, Some(std::process::id())).unwrap();
    client.resume(id).unwrap();
    let view = wait_for_state(&client, id, JobState::Error);
    let error = &view.job.error.as_ref().unwrap().error;
    assert_eq!(
        error.hresult,
        hresult::BG_E_SERVER_CERT_VALIDATION_INTERFACE_REQUIRED,
        "{error}"
    );
    assert_eq!(error.context, ErrorContext::ServerCertificateCallback);

    // A validator process that ended (and was reaped) is noticed before anyone waits.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    set_validator(&client, id, Some(gone)).unwrap();
    client.resume(id).unwrap();
    let view = wait_until(&client, id, "ERROR again", |view| {
        view.job.state == JobState::Error && view.job.error_count >= 2
    });
    let error = &view.job.error.as_ref().unwrap().error;
    assert_eq!(
        error.hresult,
        hresult::BG_E_SERVER_CERT_VALIDATION_INTERFACE_REQUIRED
    );
    assert!(error.description.contains("gone"), "{error}");
    assert_eq!(secure.server.request_count(path), 0);

    // Setting a validator again and Resume start over; this time it says yes.
    let events = client.subscribe().unwrap();
    set_validator(&client, id, Some(std::process::id())).unwrap();
    client.resume(id).unwrap();
    let (check, _, _) = next_check(&events, id);
    verdict(&client, id, check, hresult::S_OK);
    wait_for_state(&client, id, JobState::Transferred);
}

#[test]
fn a_validator_is_set_only_while_the_job_is_still_and_clearing_it_lets_files_go_unasked() {
    let secure = secure();
    let client = secure.instance.client();
    let path = "/data/64k/cleared";
    let slow = format!("{path}?rate=16000");
    let local = secure.instance.downloads().join("cleared");
    let id = one_file_job(&client, &secure.server.url(&slow), &local);
    client.resume(id).unwrap();
    wait_until(&client, id, "moving", |view| {
        matches!(
            view.job.state,
            JobState::Connecting | JobState::Transferring
        )
    });
    assert_eq!(
        set_validator(&client, id, Some(std::process::id())),
        Err(hresult::BG_E_READ_ONLY_WHEN_JOB_ACTIVE)
    );
    client.suspend(id).unwrap();
    set_validator(&client, id, Some(std::process::id())).unwrap();
    set_validator(&client, id, None).unwrap();
    client.resume(id).unwrap();
    wait_for_state(&client, id, JobState::Transferred);
    client.complete(id).unwrap();

    // A validator is not kept across a restart of the service (Windows keeps no record of
    // it either): the job downloads unasked afterwards.
    let second = secure.instance.downloads().join("after-restart");
    let other = one_file_job(&client, &secure.server.url("/data/1k/restart"), &second);
    set_validator(&client, other, Some(std::process::id())).unwrap();
    secure.instance.stop();
    let client = secure.instance.client();
    client.resume(other).unwrap();
    wait_for_state(&client, other, JobState::Transferred);
}

#[test]
fn a_validator_that_ends_while_its_check_waits_stops_the_job_before_the_timeout() {
    // A timeout far longer than the test's patience: only noticing that the process ended
    // can stop the job in time.
    let secure = secure_with_timeout("600000");
    let client = secure.instance.client();
    let events = client.subscribe().unwrap();
    let path = "/data/4k/ended";
    let id = one_file_job(
        &client,
        &secure.server.url(path),
        &secure.instance.downloads().join("ended"),
    );
    let mut validator = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    set_validator(&client, id, Some(validator.id())).unwrap();
    client.resume(id).unwrap();
    let (_, _, process) = next_check(&events, id);
    assert_eq!(process, validator.id());
    validator.kill().unwrap();
    validator.wait().unwrap();
    let view = wait_for_state(&client, id, JobState::Error);
    let error = &view.job.error.as_ref().unwrap().error;
    assert_eq!(
        error.hresult,
        hresult::BG_E_SERVER_CERT_VALIDATION_INTERFACE_REQUIRED
    );
    assert!(
        error.description.contains("ended without answering"),
        "{error}"
    );
    assert_eq!(secure.server.request_count(path), 0);
}

#[test]
fn each_https_file_of_a_job_is_checked_in_turn_and_plain_http_files_are_not() {
    let secure = secure();
    let plain = TestServer::start();
    let client = secure.instance.client();
    let events = client.subscribe().unwrap();
    let downloads = secure.instance.downloads();
    let id = client
        .create_job("several", qmgr_core::JobType::Download)
        .unwrap();
    let files = [
        (secure.server.url("/data/2k/first"), "first"),
        (plain.url("/data/2k/plain"), "plain"),
        (secure.server.url("/data/2k/second"), "second"),
    ];
    for (url, name) in &files {
        client
            .add_file(id, url, &downloads.join(name).to_string_lossy())
            .unwrap();
    }
    client.set_job(id, JobChange::ParallelFiles(3)).unwrap();
    set_validator(&client, id, Some(std::process::id())).unwrap();
    client.resume(id).unwrap();
    let mut checked = Vec::new();
    while checked.len() < 2 {
        let (check, file, _) = next_check(&events, id);
        checked.push(file);
        verdict(&client, id, check, hresult::S_OK);
    }
    assert_eq!(checked, [0, 2], "the https files, in order");
    wait_for_state(&client, id, JobState::Transferred);
    client.complete(id).unwrap();
    for (_, name) in &files {
        assert_eq!(
            std::fs::metadata(downloads.join(name)).unwrap().len(),
            2048,
            "{name}"
        );
    }
}
