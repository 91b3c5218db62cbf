//! Upload jobs through qmgrd against the test server playing the adversary: the upload
//! survives a SIGKILL of qmgrd without resending what the server holds, a source changed
//! meanwhile stops the job, and the job rules of uploads hold.

mod common;

use common::Instance;

use qmgr_core::service::{NewFile, QueueServiceExt};
use qmgr_core::{JobState, JobType, hresult};
use qmgr_tests::TestServer;

fn source(instance: &Instance, name: &str, length: usize) -> (String, Vec<u8>) {
    let bytes: Vec<u8> = (0..length)
        .map(|i| u8::try_from((i * 13 + i / 4099) % 256).expect("below 256"))
        .collect();
    let path = instance.downloads().join(name);
    std::fs::write(&path, &bytes).unwrap();
    (path.to_string_lossy().into_owned(), bytes)
}

/// Bytes the server took in Fragments to `path` (sent again ones included; fragments
/// longer than `max_fragment`, refused with 413 unread, left out).
fn fragment_bytes(server: &TestServer, path: &str, max_fragment: u64) -> u64 {
    server
        .requests()
        .iter()
        .filter(|r| r.path == path && r.header("BITS-Packet-Type") == Some("Fragment"))
        .filter_map(|r| r.header("Content-Length")?.parse::<u64>().ok())
        .filter(|length| *length <= max_fragment)
        .sum()
}

#[test]
fn an_upload_survives_a_sigkill_of_qmgrd_without_resending_what_the_server_holds() {
    let instance = Instance::new();
    let server = TestServer::start();
    let client = instance.client();
    let (local, bytes) = source(&instance, "report.bin", 4 * 1024 * 1024);
    let id = client.create_job("upload", JobType::Upload).unwrap();
    let url = server.url("/up/report.bin?max_fragment=65536&fragment_delay_ms=10");
    client.add_file(id, &url, &local).unwrap();
    assert_eq!(
        client.job(id).unwrap().job.files[0].bytes_total,
        bytes.len() as u64,
        "an upload's size is its source's"
    );
    client.resume(id).unwrap();
    common::wait_until(&client, id, "a quarter MiB acknowledged", |view| {
        view.job.files[0]
            .upload
            .as_ref()
            .is_some_and(|upload| upload.offset >= 4 * 65536)
    });
    drop(client);
    instance.kill_daemons("-KILL");

    let client = instance.client();
    // The session survives; the offset may lag (the first fragment's Ack tells the rest).
    let resumed = client.job(id).unwrap();
    assert!(
        resumed.job.files[0]
            .upload
            .as_ref()
            .is_some_and(|upload| upload.session.is_some()),
        "the session was committed: {:?}",
        resumed.job.files[0].upload
    );
    client.resume(id).unwrap();
    let done = common::wait_for_state(&client, id, JobState::Transferred);
    assert_eq!(
        done.job.state,
        JobState::Transferred,
        "{:?}",
        done.job.error
    );
    client.complete(id).unwrap();
    assert_eq!(
        server.uploaded("/up/report.bin").as_deref(),
        Some(bytes.as_slice()),
        "the server's file is the source, byte for byte"
    );
    let sent = fragment_bytes(&server, "/up/report.bin", 65536);
    let resent = sent - bytes.len() as u64;
    assert!(
        resent * 20 < bytes.len() as u64,
        "{resent} bytes were sent twice (more than 5%)"
    );
}

#[test]
fn a_source_that_changed_is_never_uploaded_half_old_half_new() {
    let instance = Instance::new();
    let server = TestServer::start();
    let client = instance.client();
    let (local, _) = source(&instance, "log.txt", 100_000);
    let id = client.create_job("changed", JobType::Upload).unwrap();
    client
        .add_file(id, &server.url("/up/log.txt"), &local)
        .unwrap();
    std::fs::write(&local, b"something else entirely").unwrap();
    client.resume(id).unwrap();
    let failed = common::wait_for_state(&client, id, JobState::Error);
    let error = failed.job.error.expect("an error");
    assert_eq!(error.error.hresult, hresult::BG_E_LOCAL_FILE_CHANGED);
    assert_eq!(server.uploaded("/up/log.txt"), None);
}

#[test]
fn upload_jobs_take_one_readable_file_to_an_http_server() {
    let instance = Instance::new();
    let client = instance.client();
    let (local, _) = source(&instance, "one.bin", 10);
    let id = client.create_job("rules", JobType::Upload).unwrap();
    let refused = |remote: &str, local: &str| {
        client
            .add_files(
                id,
                vec![NewFile {
                    remote_name: remote.into(),
                    local_name: local.into(),
                    ranges: None,
                }],
            )
            .unwrap_err()
            .hresult
    };
    assert_eq!(refused("ftp://127.0.0.1/x", &local), hresult::E_INVALIDARG);
    let missing = instance
        .downloads()
        .join("missing")
        .to_string_lossy()
        .into_owned();
    assert_eq!(
        refused("http://127.0.0.1:9/x", &missing),
        hresult::HRESULT_PATH_NOT_FOUND
    );
    // A FIFO is refused without waiting for a writer that never comes.
    let fifo = instance.downloads().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(
        refused("http://127.0.0.1:9/x", &fifo.to_string_lossy()),
        hresult::E_INVALIDARG
    );
    let directory = instance.downloads().to_string_lossy().into_owned();
    assert_eq!(
        refused("http://127.0.0.1:9/x", &directory),
        hresult::E_INVALIDARG
    );
    client.add_file(id, "http://127.0.0.1:9/x", &local).unwrap();
    let (second, _) = source(&instance, "two.bin", 10);
    assert_eq!(
        refused("http://127.0.0.1:9/y", &second),
        hresult::BG_E_TOO_MANY_FILES
    );
}

#[test]
fn cancel_tells_the_server_to_drop_the_partial_upload() {
    let instance = Instance::new();
    let server = TestServer::start();
    let client = instance.client();
    let (local, _) = source(&instance, "partial.bin", 2 * 1024 * 1024);
    let id = client.create_job("cancelled", JobType::Upload).unwrap();
    let url = server.url("/up/partial.bin?max_fragment=65536&fragment_delay_ms=20");
    client.add_file(id, &url, &local).unwrap();
    client.resume(id).unwrap();
    let view = common::wait_until(&client, id, "a session", |view| {
        view.job.files[0]
            .upload
            .as_ref()
            .is_some_and(|upload| upload.offset > 0)
    });
    let session = view.job.files[0]
        .upload
        .as_ref()
        .and_then(|upload| upload.session.clone())
        .expect("a session");
    client.cancel(id).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let cancelled = server.requests().iter().any(|r| {
            r.path == "/up/partial.bin"
                && r.header("BITS-Packet-Type") == Some("Cancel-Session")
                && r.header("BITS-Session-Id") == Some(session.as_str())
        });
        if cancelled {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no Cancel-Session reached the server"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(server.uploaded("/up/partial.bin"), None);
}

/// The resilience case at CI size: 1 MiB cut at 30, 60 and 90% and qmgrd killed
/// ten times along the way; the server's file is the source and under 5% went twice.
#[test]
fn an_upload_survives_drops_and_ten_sigkills_byte_identical() {
    const SIZE: usize = 1024 * 1024;
    const FRAGMENT: u64 = 8192;
    let instance = Instance::new();
    let server = TestServer::start();
    let (local, bytes) = source(&instance, "resilient.bin", SIZE);
    let fragments = SIZE as u64 / FRAGMENT;
    let drops: Vec<String> = [30, 60, 90]
        .iter()
        .map(|percent| (fragments * percent / 100).to_string())
        .collect();
    let url = server.url(&format!(
        "/up/resilient.bin?max_fragment={FRAGMENT}&fragment_delay_ms=2&drop_fragment={}",
        drops.join(",")
    ));
    let mut client = instance.client();
    let id = client.create_job("resilient", JobType::Upload).unwrap();
    client.add_file(id, &url, &local).unwrap();
    client.resume(id).unwrap();
    let mut kills = 0;
    loop {
        let view = client.job(id).unwrap();
        match view.job.state {
            JobState::Transferred => break,
            // A cut fragment is a transient error: Resume skips the retry delay.
            JobState::TransientError => {
                client.resume(id).unwrap();
            }
            JobState::Error => panic!("the upload failed: {:?}", view.job.error),
            _ => {}
        }
        let acknowledged = view.job.files[0]
            .upload
            .as_ref()
            .map_or(0, |upload| upload.offset);
        // Ten kills spread over the upload, each after more bytes went through.
        if kills < 10 && acknowledged > (kills + 1) * SIZE as u64 / 12 {
            drop(client);
            instance.kill_daemons("-KILL");
            kills += 1;
            client = instance.client();
            client.resume(id).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(kills, 10, "the upload ended before ten kills");
    client.complete(id).unwrap();
    assert_eq!(
        server.uploaded("/up/resilient.bin").as_deref(),
        Some(bytes.as_slice())
    );
    let resent = fragment_bytes(&server, "/up/resilient.bin", FRAGMENT) - SIZE as u64;
    assert!(
        resent * 20 < SIZE as u64,
        "{resent} bytes were sent twice (more than 5%)"
    );
}

#[test]
fn empty_and_one_byte_uploads_complete_and_run_the_notify_command() {
    let instance = Instance::new();
    let server = TestServer::start();
    let client = instance.client();
    for length in [0, 1] {
        let name = format!("tiny-{length}.bin");
        let (local, bytes) = source(&instance, &name, length);
        let marker = instance.path(&format!("transferred-{length}"));
        let id = client.create_job("tiny", JobType::Upload).unwrap();
        client
            .add_file(id, &server.url(&format!("/up/{name}")), &local)
            .unwrap();
        client
            .set_job(
                id,
                qmgr_core::service::JobChange::NotifyCommand(Some(qmgr_core::job::NotifyCommand {
                    program: "/usr/bin/touch".into(),
                    parameters: Some(format!("touch \"{marker}\"")),
                })),
            )
            .unwrap();
        client.resume(id).unwrap();
        common::wait_for_state(&client, id, JobState::Transferred);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !std::path::Path::new(&marker).exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the notify command did not run for the {length}-byte upload"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        client.complete(id).unwrap();
        assert_eq!(
            server.uploaded(&format!("/up/{name}")).as_deref(),
            Some(bytes.as_slice())
        );
    }
}

#[test]
fn progress_counts_a_fragment_while_it_is_sent_not_only_when_acknowledged() {
    let instance = Instance::new();
    let server = TestServer::start();
    let client = instance.client();
    let (local, bytes) = source(&instance, "progress.bin", 1024 * 1024);
    // One fragment, acknowledged only after a long while.
    let url = server.url("/up/progress.bin?fragment_delay_ms=4000");
    let id = client.create_job("progress", JobType::Upload).unwrap();
    client.add_file(id, &url, &local).unwrap();
    client.resume(id).unwrap();
    let seen = common::wait_until(&client, id, "the fragment counted as sent", |view| {
        view.job.files[0].bytes_transferred == bytes.len() as u64
    });
    assert_eq!(
        seen.job.files[0]
            .upload
            .as_ref()
            .map(|upload| upload.offset),
        Some(0),
        "sent, and not acknowledged yet: the record keeps what the server said"
    );
    common::wait_for_state(&client, id, JobState::Transferred);
    client.complete(id).unwrap();
    assert_eq!(
        server.uploaded("/up/progress.bin").as_deref(),
        Some(&bytes[..])
    );
}

#[test]
fn a_source_changed_in_place_with_its_time_put_back_is_caught_by_the_hash_of_what_was_sent() {
    let instance = Instance::new();
    let server = TestServer::start();
    let client = instance.client();
    let (local, _) = source(&instance, "sly.bin", 1024 * 1024);
    let url = server.url("/up/sly.bin?max_fragment=65536&fragment_delay_ms=20");
    let id = client.create_job("sly", JobType::Upload).unwrap();
    client.add_file(id, &url, &local).unwrap();
    client.resume(id).unwrap();
    common::wait_until(&client, id, "four fragments acknowledged", |view| {
        view.job.files[0]
            .upload
            .as_ref()
            .is_some_and(|upload| upload.offset >= 4 * 65536)
    });
    client.suspend(id).unwrap();
    common::wait_for_state(&client, id, JobState::Suspended);
    // One byte the server already has changes; size, inode and modification time do not.
    let modified = std::fs::metadata(&local).unwrap().modified().unwrap();
    {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&local)
            .unwrap();
        file.write_all_at(b"\xff", 1000).unwrap();
        file.set_modified(modified).unwrap();
    }
    client.resume(id).unwrap();
    let failed = common::wait_for_state(&client, id, JobState::Error);
    let error = failed.job.error.expect("an error");
    assert_eq!(
        error.error.hresult,
        hresult::BG_E_LOCAL_FILE_CHANGED,
        "{error:?}"
    );
    assert_eq!(server.uploaded("/up/sly.bin"), None);
}
