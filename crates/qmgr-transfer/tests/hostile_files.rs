//! Names in shared directories are not trusted: what another user (or a FIFO, or a
//! device) put under a recorded temporary name or a local source name is never written
//! to, never read from, and cannot stall the engine thread.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{Harness, assert_file_is};
use qmgr_core::hresult;
use qmgr_tests::users::OtherUser;
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};
use qmgr_transfer::{PartialFile, ProxyChoice, RestartReason, TransferRequest};
use rustix::fs::{FileType, Mode};

const SIZE: u64 = 200 << 10;

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        FileType::Fifo,
        Mode::from_raw_mode(0o666),
        0,
    )
    .unwrap();
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::symlink_metadata(path).unwrap().file_type().is_fifo()
}

fn request_into(url: &str, destination: &Path) -> TransferRequest {
    let mut request = TransferRequest::new(url, destination);
    request.proxy = ProxyChoice::Direct;
    request
}

/// Downloads `path` into `destination` with the connection cut halfway; returns what a
/// service would record to continue it.
fn interrupted(
    harness: &Harness,
    server: &TestServer,
    path: &str,
    destination: &Path,
) -> PartialFile {
    let url = server.url(&format!("{path}?drop_after={}", SIZE / 2));
    let first = harness.run(request_into(&url, destination));
    assert!(first.failed().transient);
    let partial = first.partial();
    assert!(partial.bytes > 0, "some bytes arrived before the cut");
    partial
}

#[test]
fn a_fifo_at_the_recorded_temp_path_gets_a_fresh_file_and_stalls_nothing() {
    let server = TestServer::start();
    let harness = Harness::new();
    let path = "/data/200k/fifo";
    let destination = harness.path("fifo.bin");
    let partial = interrupted(&harness, &server, path, &destination);
    fs::remove_file(&partial.temp_path).unwrap();
    mkfifo(&partial.temp_path);

    let mut resumed = request_into(&server.url(path), &destination);
    resumed.partial = Some(partial.clone());
    let resumed = harness.submit(resumed);
    // Submitted after the resume: it can only finish if the engine thread is not stuck
    // opening the FIFO (the harness gives up after a minute without events).
    let bystander = harness.submit(harness.request(&server.url("/data/10k/bystander"), "other"));
    let (temp, _, _) = harness.wait(bystander).completed();
    assert_file_is(
        &temp,
        &expected_body("/data/10k/bystander", INITIAL_VERSION, 10 << 10),
    );

    let finished = harness.wait(resumed);
    let (temp, bytes, _) = finished.completed();
    assert_ne!(temp, partial.temp_path, "a new temporary file");
    assert_eq!(
        finished.temp_path(),
        temp,
        "Started names the new file to record"
    );
    assert_eq!(bytes, SIZE);
    assert_file_is(&temp, &expected_body(path, INITIAL_VERSION, SIZE));
    assert_eq!(
        finished.responded().unwrap().3,
        Some(RestartReason::PartialFileLost)
    );
    assert!(is_fifo(&partial.temp_path), "the FIFO is left where it was");
}

#[test]
fn another_users_file_at_the_recorded_temp_path_is_not_appended_to() {
    let Some(attacker) =
        OtherUser::create("another_users_file_at_the_recorded_temp_path_is_not_appended_to")
    else {
        return;
    };
    let server = TestServer::start();
    let harness = Harness::new();
    // A shared directory like /tmp: anyone may create files, only owners may remove them.
    let shared = tempfile::Builder::new()
        .prefix("qmgr-sticky")
        .tempdir_in("/tmp")
        .unwrap();
    fs::set_permissions(shared.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    let path = "/data/200k/sticky";
    let destination = shared.path().join("victim.bin");
    let partial = interrupted(&harness, &server, path, &destination);

    // The victim's temporary file vanished (say, a cleaner of /tmp); the attacker puts a
    // readable and writable file of their own under its name.
    fs::remove_file(&partial.temp_path).unwrap();
    let status = attacker
        .command("sh")
        .args(["-c", "umask 0; printf attacker > \"$1\"", "sh"])
        .arg(&partial.temp_path)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        fs::metadata(&partial.temp_path).unwrap().uid(),
        attacker.uid()
    );

    let mut resumed = request_into(&server.url(path), &destination);
    resumed.partial = Some(partial.clone());
    let finished = harness.run(resumed);
    let (temp, _, _) = finished.completed();
    assert_ne!(temp, partial.temp_path);
    assert_file_is(&temp, &expected_body(path, INITIAL_VERSION, SIZE));
    assert_eq!(
        fs::read(&partial.temp_path).unwrap(),
        b"attacker",
        "the attacker's file is untouched"
    );
    assert_eq!(
        fs::metadata(&temp).unwrap().uid(),
        rustix::process::geteuid().as_raw()
    );

    // Discarding the recorded name does not delete the attacker's file either (root could).
    qmgr_transfer::discard(&partial.temp_path).unwrap();
    assert!(partial.temp_path.exists());
    // Nor can the attacker's file be finalized onto the victim's destination.
    let error = qmgr_transfer::finalize(
        &partial.temp_path,
        &destination,
        qmgr_transfer::Overwrite::Replace,
        0o022,
    )
    .unwrap_err();
    assert_eq!(error.hresult, hresult::E_ACCESSDENIED, "{error:?}");
    assert!(!destination.exists());
}

#[test]
fn a_fifo_or_device_as_local_source_fails_clearly_without_stalling() {
    let server = TestServer::start();
    let harness = Harness::new();
    let fifo = harness.path("source.fifo");
    mkfifo(&fifo);
    for remote in [
        fifo.to_str().unwrap().to_owned(),
        format!("file://{}", fifo.display()),
        "/dev/zero".to_owned(),
    ] {
        let error = harness.run(harness.request(&remote, "copy")).failed();
        assert!(!error.transient, "{remote}: {error}");
        assert_eq!(error.error.hresult, hresult::E_INVALIDARG, "{remote}");
        assert!(
            error.error.description.contains("is not a regular file"),
            "{error}"
        );
    }
    let (temp, _, _) = harness
        .run(harness.request(&server.url("/data/1k"), "after"))
        .completed();
    assert_file_is(&temp, &expected_body("/data/1k", INITIAL_VERSION, 1024));
    assert!(is_fifo(&fifo));
}
