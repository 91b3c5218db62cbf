//! Client certificates (SetClientCertificateByName / ByID) through the queue manager: what
//! the setting accepts, and a download from an HTTPS server that requires a certificate.
//!
//! The engine trusts the system's certificate authorities, which a process can only point
//! at the test server's CA through `SSL_CERT_FILE` before curl starts. So the download
//! test runs this binary again as a child with the variable set; the child does the
//! downloads, the parent checks what the server saw.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qmgr_core::certificate::{CertificateSelector, ClientCertificate};
use qmgr_core::config::Config;
use qmgr_core::hresult;
use qmgr_core::paths::StatePaths;
use qmgr_core::service::{JobChange, JobView, QueueServiceExt};
use qmgr_core::{ErrorContext, Guid, JobState, JobType};
use qmgr_service::{LocalService, QueueManager, SystemClock};
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

const UID: u32 = 1000;
/// Set in the child: the instance directory prepared by the parent.
const CHILD_ROOT: &str = "QMGR_CLIENT_CERTIFICATE_TEST_ROOT";
/// Set in the child: the base URL of the server requiring a client certificate.
const CHILD_SERVER: &str = "QMGR_CLIENT_CERTIFICATE_TEST_SERVER";
const STORE: &str = "MY";
const FILE_PATH: &str = "/data/64k";

fn service_in(root: &Path) -> LocalService {
    let manager = QueueManager::start(
        Config::default(),
        &StatePaths::isolated(root),
        Arc::new(SystemClock::new()),
    )
    .unwrap();
    LocalService::new(manager, UID)
}

fn by_name(subject: &str) -> ClientCertificate {
    ClientCertificate {
        store_location: 0,
        store_name: STORE.into(),
        selector: CertificateSelector::Subject(subject.into()),
    }
}

fn wait_for(service: &LocalService, id: Guid, done: impl Fn(&JobView) -> bool) -> JobView {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = service.job(id).unwrap();
        if done(&view) {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "timed out; job is {:?} ({:?})",
            view.job.state,
            view.job.error
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_setting_is_recorded_checked_and_removed() {
    let root = tempfile::tempdir().unwrap();
    let service = service_in(root.path());
    let id = service
        .create_job("certificate", JobType::Download)
        .unwrap();

    assert_eq!(
        service
            .set_job(id, JobChange::ClientCertificate(None))
            .unwrap(),
        hresult::S_FALSE
    );
    let by_hash = ClientCertificate {
        store_location: 7,
        store_name: "Trusted People".into(),
        selector: CertificateSelector::Sha1([0x42; 20]),
    };
    assert_eq!(
        service
            .set_job(id, JobChange::ClientCertificate(Some(by_hash.clone())))
            .unwrap(),
        hresult::S_OK
    );
    assert_eq!(
        service.job(id).unwrap().job.settings.client_certificate,
        Some(Box::new(by_hash))
    );

    let refused = [
        ClientCertificate {
            store_location: 8,
            ..by_name("client")
        },
        ClientCertificate {
            store_name: "../MY".into(),
            ..by_name("client")
        },
        ClientCertificate {
            store_name: String::new(),
            ..by_name("client")
        },
        by_name("  "),
    ];
    for setting in refused {
        let error = service
            .set_job(id, JobChange::ClientCertificate(Some(setting.clone())))
            .unwrap_err();
        assert_eq!(error.hresult, hresult::E_INVALIDARG, "{setting:?}");
    }

    assert_eq!(
        service
            .set_job(id, JobChange::ClientCertificate(None))
            .unwrap(),
        hresult::S_OK
    );
    assert_eq!(
        service.job(id).unwrap().job.settings.client_certificate,
        None
    );
}

#[test]
fn a_certificate_missing_from_its_store_is_a_permanent_local_error() {
    let root = tempfile::tempdir().unwrap();
    let service = service_in(root.path());
    let id = service
        .create_job("certificate", JobType::Download)
        .unwrap();
    let local = root.path().join("never.bin");
    service
        .add_file(id, "https://127.0.0.1:9/data/10", local.to_str().unwrap())
        .unwrap();
    service
        .set_job(id, JobChange::ClientCertificate(Some(by_name("client"))))
        .unwrap();
    service.resume(id).unwrap();
    let view = wait_for(&service, id, |v| v.job.state == JobState::Error);
    let error = view.job.error.unwrap().error;
    assert_eq!(error.hresult, hresult::CRYPT_E_NOT_FOUND);
    assert_eq!(error.context, ErrorContext::LocalFile);
    assert!(error.description.contains(STORE), "{error}");
}

#[test]
fn only_tls_transfers_look_for_the_certificate() {
    let root = tempfile::tempdir().unwrap();
    let service = service_in(root.path());
    let source = root.path().join("source.bin");
    std::fs::write(&source, b"local bytes").unwrap();
    let local = root.path().join("copy.bin");
    let id = service
        .create_job("certificate", JobType::Download)
        .unwrap();
    service
        .add_file(
            id,
            &format!("file://{}", source.display()),
            local.to_str().unwrap(),
        )
        .unwrap();
    service
        .set_job(id, JobChange::ClientCertificate(Some(by_name("client"))))
        .unwrap();
    service.resume(id).unwrap();
    wait_for(&service, id, |v| v.job.state == JobState::Transferred);
    service.complete(id).unwrap();
    assert_eq!(std::fs::read(&local).unwrap(), b"local bytes");
}

#[test]
fn a_server_requiring_a_client_certificate_accepts_the_one_from_the_store() {
    if let (Some(root), Some(server)) =
        (std::env::var_os(CHILD_ROOT), std::env::var_os(CHILD_SERVER))
    {
        download_in_child(&PathBuf::from(root), server.to_str().expect("a UTF-8 URL"));
        return;
    }

    let server = TestServer::start_https_with_client_auth();
    let root = tempfile::tempdir().unwrap();
    let ca = root.path().join("ca.pem");
    std::fs::write(&ca, server.ca_pem()).unwrap();
    let store = StatePaths::isolated(root.path()).certs_dir(STORE).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    let client = server.client_certificate("client");
    std::fs::write(store.join("client.crt"), &client.certificate_pem).unwrap();
    std::fs::write(store.join("client.key"), &client.key_pem).unwrap();

    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_server_requiring_a_client_certificate_accepts_the_one_from_the_store",
            "--nocapture",
        ])
        .env("SSL_CERT_FILE", &ca)
        .env(CHILD_ROOT, root.path())
        .env(CHILD_SERVER, server.base_url())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the child failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Only the job with the certificate got as far as a request.
    assert_eq!(server.request_count(FILE_PATH), 1);
}

/// The child's half: one job with the certificate succeeds, one without fails.
fn download_in_child(root: &Path, server: &str) {
    let service = service_in(root);
    let url = format!("{server}{FILE_PATH}");

    let with = service.create_job("with", JobType::Download).unwrap();
    let local = root.join("with.bin");
    service
        .add_file(with, &url, local.to_str().unwrap())
        .unwrap();
    service
        .set_job(
            with,
            JobChange::ClientCertificate(Some(by_name("CN=client"))),
        )
        .unwrap();
    service.resume(with).unwrap();
    wait_for(&service, with, |v| v.job.state == JobState::Transferred);
    service.complete(with).unwrap();
    assert_eq!(
        std::fs::read(&local).unwrap(),
        expected_body(FILE_PATH, INITIAL_VERSION, 64 * 1024)
    );

    let without = service.create_job("without", JobType::Download).unwrap();
    service
        .add_file(without, &url, root.join("without.bin").to_str().unwrap())
        .unwrap();
    // No retries: the first failure is final.
    service
        .set_job(without, JobChange::NoProgressTimeout(Duration::ZERO))
        .unwrap();
    service.resume(without).unwrap();
    let view = wait_for(&service, without, |v| v.job.state == JobState::Error);
    assert_eq!(view.job.files[0].bytes_transferred, 0);
    let error = view.job.error.unwrap().error;
    assert_ne!(error.context, ErrorContext::LocalFile, "{error}");
}
