//! `qmgr upload FILE URL` through qmgrd against the test server's BITS upload side: the
//! file arrives whole, a refusal is a clear error and exit 1, bad input exit 2, and
//! `--background` leaves the job to qmgrd.

mod common;

use common::Instance;
use qmgr_tests::TestServer;

fn source(instance: &Instance, name: &str, length: usize) -> Vec<u8> {
    let bytes: Vec<u8> = (0..length)
        .map(|i| u8::try_from((i * 31 + i / 1021) % 256).expect("below 256"))
        .collect();
    std::fs::write(instance.downloads().join(name), &bytes).unwrap();
    bytes
}

#[test]
fn a_file_is_uploaded_in_one_command() {
    let instance = Instance::new();
    let server = TestServer::start();
    let bytes = source(&instance, "dump.bin", 700_000);
    let url = server.url("/incoming/dump.bin?max_fragment=100000");
    let run = instance
        .qmgr(&["upload", "dump.bin", &url, "--quiet"])
        .expect(0);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert_eq!(
        server.uploaded("/incoming/dump.bin").as_deref(),
        Some(bytes.as_slice())
    );
    assert!(instance.jobs().is_empty(), "the job completed itself");
}

#[test]
fn reply_saves_the_servers_answer() {
    let instance = Instance::new();
    let server = TestServer::start();
    let bytes = source(&instance, "question.bin", 50_000);
    let url = server.url("/incoming/question.bin?reply=777");
    let run = instance
        .qmgr(&[
            "upload",
            "question.bin",
            &url,
            "--reply",
            "answer.bin",
            "--quiet",
        ])
        .expect(0);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert_eq!(
        std::fs::read(instance.downloads().join("answer.bin")).unwrap(),
        qmgr_tests::expected_reply(&bytes, 777),
        "the reply is in the file named, relative to the working directory"
    );
    assert_eq!(
        server.uploaded("/incoming/question.bin").as_deref(),
        Some(bytes.as_slice())
    );
    assert!(instance.jobs().is_empty(), "the job completed itself");

    let nowhere = instance
        .qmgr(&[
            "upload",
            "question.bin",
            &url,
            "--reply",
            "no/such/dir/answer",
            "--quiet",
        ])
        .expect(2);
    assert!(nowhere.stderr.contains("no/such/dir"), "{}", nowhere.stderr);
    assert!(instance.jobs().is_empty(), "nothing is left queued");

    let held = server.url("/incoming/held.bin?reply=5&fragment_delay_ms=60000");
    let queued = instance
        .qmgr(&[
            "upload",
            "question.bin",
            &held,
            "--reply",
            "later.bin",
            "--background",
            "--json",
        ])
        .expect(0)
        .json();
    let reply = &queued["jobs"][0]["reply"];
    assert!(
        reply["file_name"]
            .as_str()
            .is_some_and(|name| name.ends_with("/later.bin")),
        "{queued}"
    );
    assert_eq!(queued["jobs"][0]["type"], "upload_reply");
}

#[test]
fn a_refused_upload_says_why_and_bad_input_is_a_usage_error() {
    let instance = Instance::new();
    let server = TestServer::start();
    source(&instance, "secret.txt", 10);
    let url = server.url("/incoming/secret.txt?create_error=403:0x80070005:0x5");
    let run = instance
        .qmgr(&["upload", "secret.txt", &url, "--quiet"])
        .expect(1);
    assert!(run.stderr.contains("E_ACCESSDENIED"), "{}", run.stderr);
    // The failed job stays for `qmgr info`, which shows the file going out.
    let jobs = instance.jobs();
    assert_eq!(jobs.len(), 1);
    let id = jobs[0]["id"].as_str().unwrap().to_owned();
    let info = instance.qmgr(&["info", &id]).expect(0).stdout;
    assert!(info.contains("secret.txt -> http"), "{info}");

    let missing = instance
        .qmgr(&["upload", "missing.bin", &server.url("/incoming/x")])
        .expect(2);
    assert!(missing.stderr.contains("missing.bin"), "{}", missing.stderr);
}

#[test]
fn background_uploads_are_left_to_qmgrd() {
    let instance = Instance::new();
    let server = TestServer::start();
    let bytes = source(&instance, "later.bin", 50_000);
    let url = server.url("/incoming/later.bin");
    let run = instance
        .qmgr(&["upload", "later.bin", &url, "--background", "--json"])
        .expect(0);
    let job = run.json()["jobs"][0].clone();
    assert_eq!(job["type"], "upload");
    let id = job["id"].as_str().unwrap().to_owned();
    // The job completes itself once the server has the file: it leaves the queue.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while server.uploaded("/incoming/later.bin").is_none() || !instance.jobs().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "job {id} never finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        server.uploaded("/incoming/later.bin").as_deref(),
        Some(bytes.as_slice())
    );
}
