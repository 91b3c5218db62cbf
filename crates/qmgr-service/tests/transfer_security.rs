//! The transfer engine's defences seen through a real qmgrd: a FIFO put where a suspended
//! job's temporary file was, custom headers and redirects to other origins, and the
//! `BG_SSL_IGNORE_*` flags set through the service API. Each test runs its own qmgrd in
//! fresh XDG directories and stops it.

mod common;

use common::{Instance, one_file_job, wait_for_state, wait_until};

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use qmgr_core::JobState;
use qmgr_core::hresult::{self, HResult};
use qmgr_core::job::security;
use qmgr_core::service::{JobChange, JobView, QueueServiceExt};
use qmgr_tests::{
    CertificateDefect, INITIAL_VERSION, TestServer, encode_query_value, expected_body,
};

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o666),
        0,
    )
    .unwrap();
}

#[test]
fn a_fifo_at_a_suspended_jobs_temp_path_neither_stalls_nor_corrupts_the_download() {
    const SIZE: u64 = 400 << 10;
    let server = TestServer::start();
    let instance = Instance::new();
    let client = instance.client();
    let path = "/data/400k/fifo";
    let local = instance.downloads().join("fifo.bin");
    let id = one_file_job(&client, &server.url(&format!("{path}?rate=100000")), &local);
    client.resume(id).unwrap();
    let running = wait_until(&client, id, "the first bytes", |view| {
        view.job.files[0].bytes_transferred > 0 && view.job.files[0].temp_name.is_some()
    });
    client.suspend(id).unwrap();
    wait_for_state(&client, id, JobState::Suspended);
    let recorded = PathBuf::from(running.job.files[0].temp_name.clone().unwrap());
    let suspended = client.job(id).unwrap();
    assert_eq!(
        suspended.job.files[0].temp_name.as_deref().map(Path::new),
        Some(recorded.as_path())
    );

    std::fs::remove_file(&recorded).unwrap();
    mkfifo(&recorded);
    client.resume(id).unwrap();
    // Another job on the same daemon finishes too: the engine thread is not stuck on
    // the FIFO.
    let bystander_local = instance.downloads().join("bystander.bin");
    let bystander = one_file_job(
        &client,
        &server.url("/data/10k/bystander"),
        &bystander_local,
    );
    client.resume(bystander).unwrap();
    wait_for_state(&client, bystander, JobState::Transferred);

    let done = wait_for_state(&client, id, JobState::Transferred);
    let new_temp = done.job.files[0].temp_name.clone().expect("a temp name");
    assert_ne!(
        Path::new(&new_temp),
        recorded,
        "the job recorded its new temporary file"
    );
    client.complete(id).unwrap();
    client.complete(bystander).unwrap();
    assert!(
        std::fs::read(&local).unwrap() == expected_body(path, INITIAL_VERSION, SIZE),
        "the file is the server's, whole"
    );
    assert!(
        std::fs::symlink_metadata(&recorded)
            .unwrap()
            .file_type()
            .is_fifo(),
        "the FIFO is left alone"
    );
}

#[test]
fn custom_headers_reach_only_the_origin_the_job_names() {
    let server = TestServer::start();
    let elsewhere = TestServer::start();
    let instance = Instance::new();
    let client = instance.client();
    let redirect = |from: &TestServer, to: String, name: &str| {
        from.url(&format!("/{name}?location={}", encode_query_value(&to)))
    };
    let cases = [
        (
            redirect(&server, server.url("/data/1k/same"), "same"),
            "/data/1k/same",
            true,
        ),
        (
            redirect(&server, elsewhere.url("/data/1k/port"), "port"),
            "/data/1k/port",
            false,
        ),
        (
            redirect(
                &server,
                format!("http://localhost:{}/data/1k/host", server.port()),
                "host",
            ),
            "/data/1k/host",
            false,
        ),
    ];
    for (index, (url, path, _)) in cases.iter().enumerate() {
        let local = instance.downloads().join(format!("headers-{index}"));
        let id = one_file_job(&client, url, &local);
        client
            .set_job(
                id,
                JobChange::CustomHeaders(Some("X-Api-Key: s3cr3t\r\nX-Other: 1\r\n".into())),
            )
            .unwrap();
        client.resume(id).unwrap();
        wait_for_state(&client, id, JobState::Transferred);
        client.complete(id).unwrap();
        assert!(std::fs::read(&local).unwrap() == expected_body(path, INITIAL_VERSION, 1024));
    }
    let requests: Vec<_> = server
        .requests()
        .into_iter()
        .chain(elsewhere.requests())
        .collect();
    for (_, path, same_origin) in &cases {
        let seen = requests
            .iter()
            .find(|request| request.path == *path)
            .unwrap_or_else(|| panic!("no request for {path}"));
        let expected = same_origin.then_some("s3cr3t");
        assert_eq!(seen.header("X-Api-Key"), expected, "{path}: {seen:?}");
    }
    for name in ["/same", "/port", "/host"] {
        let first = requests.iter().find(|r| r.path == name).unwrap();
        assert_eq!(first.header("X-Api-Key"), Some("s3cr3t"), "{name}");
    }
}

#[test]
fn each_ssl_ignore_flag_set_through_the_service_relaxes_only_its_check() {
    let server = TestServer::start_https_with_defect(CertificateDefect::Expired);
    let scratch = tempfile::tempdir().unwrap();
    let ca = scratch.path().join("ca.pem");
    std::fs::write(&ca, server.ca_pem()).unwrap();
    // curl reads the trusted CAs from SSL_CERT_FILE when qmgrd starts.
    let instance = Instance::with_env(vec![("SSL_CERT_FILE".into(), ca.into())]);
    let client = instance.client();
    let path = "/data/16k/expired";
    let run = |flags: u32, name: &str| -> JobView {
        let local = instance.downloads().join(name);
        let id = one_file_job(&client, &server.url(path), &local);
        client.set_job(id, JobChange::SecurityFlags(flags)).unwrap();
        client.resume(id).unwrap();
        wait_until(&client, id, "the end", |view| {
            matches!(view.job.state, JobState::Transferred | JobState::Error)
        })
    };
    let expect_error = |view: &JobView, expected: HResult, what: &str| {
        assert_eq!(view.job.state, JobState::Error, "{what}");
        let error = &view.job.error.as_ref().unwrap().error;
        assert_eq!(error.hresult, expected, "{what}: {error}");
    };
    expect_error(
        &run(0, "strict"),
        hresult::HRESULT_WINHTTP_SECURE_CERT_DATE_INVALID,
        "no flags",
    );
    for flag in [
        security::IGNORE_CERT_CN_INVALID,
        security::IGNORE_UNKNOWN_CA,
        security::IGNORE_CERT_WRONG_USAGE,
    ] {
        expect_error(
            &run(flag, &format!("other-{flag:x}")),
            hresult::HRESULT_WINHTTP_SECURE_CERT_DATE_INVALID,
            &format!("flags {flag:#x}"),
        );
    }
    let relaxed = run(security::IGNORE_CERT_DATE_INVALID, "relaxed");
    assert_eq!(
        relaxed.job.state,
        JobState::Transferred,
        "{:?}",
        relaxed.job.error
    );
    client.complete(relaxed.job.id).unwrap();
    let local = instance.downloads().join("relaxed");
    assert!(std::fs::read(local).unwrap() == expected_body(path, INITIAL_VERSION, 16 << 10));
}
