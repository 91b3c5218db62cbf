//! Upload-reply jobs through qmgrd against the test server: the reply is downloaded before
//! Close-Session, handed over by GetReplyData up to a megabyte, and put at the reply file
//! name by Complete; a missing, failing, relative or cut reply URL each does what the
//! reference sheet says.

mod common;

use common::Instance;

use qmgr_core::service::{JobChange, QueueServiceExt};
use qmgr_core::{Guid, JobState, JobType, hresult};
use qmgr_tests::{TestServer, expected_reply};

/// One byte more than GetReplyData hands over.
const LARGE_REPLY: usize = 1024 * 1024 + 1;
/// A reply long enough to be cut halfway.
const CUT_REPLY: usize = 400_000;

fn source(instance: &Instance, name: &str, length: usize) -> (String, Vec<u8>) {
    let bytes: Vec<u8> = (0..length)
        .map(|i| u8::try_from((i * 7 + i / 251) % 256).expect("below 256"))
        .collect();
    let path = instance.downloads().join(name);
    std::fs::write(&path, &bytes).unwrap();
    (path.to_string_lossy().into_owned(), bytes)
}

/// An upload-reply job of `local` to `url`, resumed.
fn reply_job(client: &qmgr_ipc::Client, url: &str, local: &str) -> Guid {
    let id = client
        .create_job("with reply", JobType::UploadReply)
        .unwrap();
    client.add_file(id, url, local).unwrap();
    client.resume(id).unwrap();
    id
}

/// Waits for TRANSFERRED, resuming at once after each transient error (a cut connection).
fn wait_transferred(client: &qmgr_ipc::Client, id: Guid) -> qmgr_core::service::JobView {
    common::wait_until(client, id, "TRANSFERRED", |view| {
        if view.job.state == JobState::TransientError {
            let _ = client.resume(id);
        }
        assert_ne!(view.job.state, JobState::Error, "{:?}", view.job.error);
        view.job.state == JobState::Transferred
    })
}

fn reply_file_name(client: &qmgr_ipc::Client, id: Guid) -> String {
    let view = client.job(id).unwrap();
    view.job
        .reply
        .unwrap()
        .file_name
        .expect("a reply file name")
}

#[test]
fn the_reply_is_fetched_before_close_session_and_lands_at_its_name_on_complete() {
    let instance = Instance::new();
    let server = TestServer::start();
    let client = instance.client();
    let (local, bytes) = source(&instance, "dump.bin", 300_000);
    let url = server.url("/up/dump.bin?reply=5000&max_fragment=65536");
    let id = reply_job(&client, &url, &local);
    let reply_name = reply_file_name(&client, id);
    assert!(
        reply_name.starts_with(&format!("{local}.")),
        "a reply named beside the upload: {reply_name}"
    );
    let done = wait_transferred(&client, id);
    let reply = done.job.reply.expect("a reply record");
    assert_eq!((reply.bytes_total, reply.bytes), (5000, 5000));
    assert_eq!(
        done.job.files[0].bytes_transferred,
        bytes.len() as u64,
        "the job's progress is the upload's"
    );

    let log = server.upload_log();
    let got = log.iter().position(|entry| entry == "GET reply");
    let closed = log.iter().position(|entry| entry == "Close-Session");
    assert!(
        got.is_some() && closed.is_some() && got < closed,
        "the reply is fetched before the session is closed: {log:?}"
    );

    let data = client.reply_data(id).unwrap();
    let expected = expected_reply(&bytes, 5000);
    assert_eq!(data.data.as_deref(), Some(expected.as_slice()));
    assert!(
        !std::path::Path::new(&reply_name).exists(),
        "the reply file exists only after Complete"
    );
    client.complete(id).unwrap();
    assert_eq!(std::fs::read(&reply_name).unwrap(), expected);
    assert_eq!(server.uploaded("/up/dump.bin").as_deref(), Some(&bytes[..]));
    let leftovers: Vec<_> = std::fs::read_dir(instance.downloads())
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(".BIT"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn a_reply_over_a_megabyte_stays_in_its_file_and_a_chosen_name_is_used() {
    let instance = Instance::new();
    let server = TestServer::start();
    let client = instance.client();
    let (local, bytes) = source(&instance, "big.bin", 10_000);
    let url = server.url(&format!("/up/big.bin?reply={LARGE_REPLY}"));
    let id = client
        .create_job("large reply", JobType::UploadReply)
        .unwrap();
    client.add_file(id, &url, &local).unwrap();
    let chosen = instance.path("answers/reply.bin");
    std::fs::create_dir_all(std::path::Path::new(&chosen).parent().unwrap()).unwrap();
    client
        .set_job(id, JobChange::ReplyFileName(Some(chosen.clone())))
        .unwrap();
    assert_eq!(reply_file_name(&client, id), chosen);
    client.resume(id).unwrap();
    wait_transferred(&client, id);
    let data = client.reply_data(id).unwrap();
    assert!(data.too_large(), "{} bytes handed over", data.size);
    assert_eq!(data.size, LARGE_REPLY as u64);
    // Too late to move the reply now.
    let late = client
        .set_job(id, JobChange::ReplyFileName(None))
        .unwrap_err();
    assert_eq!(late.hresult, hresult::BG_E_INVALID_STATE);
    client.complete(id).unwrap();
    assert_eq!(
        std::fs::read(&chosen).unwrap(),
        expected_reply(&bytes, LARGE_REPLY)
    );
}

#[test]
fn a_server_that_names_no_reply_gives_an_empty_one() {
    let instance = Instance::new();
    let server = TestServer::start();
    let client = instance.client();
    let (local, _) = source(&instance, "quiet.bin", 1000);
    let id = reply_job(
        &client,
        &server.url("/up/quiet.bin?reply=10&reply_missing=1"),
        &local,
    );
    let done = wait_transferred(&client, id);
    assert_eq!(done.job.reply.as_ref().map(|r| r.bytes_total), Some(0));
    let data = client.reply_data(id).unwrap();
    assert_eq!((data.data, data.size), (None, 0));
    let reply_name = reply_file_name(&client, id);
    client.complete(id).unwrap();
    assert_eq!(std::fs::read(&reply_name).unwrap(), b"");
}

#[test]
fn a_relative_reply_url_resolves_and_a_cut_reply_resumes_with_a_range() {
    let instance = Instance::new();
    let server = TestServer::start();
    let client = instance.client();
    let (local, bytes) = source(&instance, "cut.bin", 50_000);
    let url = server.url(&format!(
        "/vdir/up/cut.bin?reply={CUT_REPLY}&reply_relative=1&reply_drop=1"
    ));
    let id = reply_job(&client, &url, &local);
    wait_transferred(&client, id);
    let gets = server.reply_gets();
    assert!(gets.len() >= 2, "the cut reply was fetched again: {gets:?}");
    assert_eq!(gets[0], None, "the first request is for the whole reply");
    let resumed_at = gets[1]
        .as_deref()
        .and_then(|range| range.strip_prefix("bytes="))
        .and_then(|range| range.trim_end_matches('-').parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        resumed_at > 0,
        "the second request continues where the first was cut: {gets:?}"
    );
    let reply_name = reply_file_name(&client, id);
    client.complete(id).unwrap();
    assert_eq!(
        std::fs::read(&reply_name).unwrap(),
        expected_reply(&bytes, CUT_REPLY)
    );
}

#[test]
fn a_reply_the_server_refuses_is_the_jobs_error_and_the_session_stays_open() {
    let instance = Instance::new();
    let server = TestServer::start();
    let client = instance.client();
    let (local, _) = source(&instance, "refused.bin", 2000);
    let id = reply_job(
        &client,
        &server.url("/up/refused.bin?reply=100&reply_status=404"),
        &local,
    );
    let failed = common::wait_for_state(&client, id, JobState::Error);
    let error = failed.job.error.expect("an error");
    assert_eq!(error.error.hresult, hresult::BG_E_HTTP_ERROR_404);
    assert!(
        !server
            .upload_log()
            .iter()
            .any(|entry| entry == "Close-Session"),
        "no Close-Session before the reply: {:?}",
        server.upload_log()
    );
    assert_eq!(
        client.reply_data(id).unwrap_err().hresult,
        hresult::BG_E_INVALID_STATE,
        "no reply data outside TRANSFERRED"
    );
}

#[test]
fn reply_methods_follow_microsofts_rules() {
    let instance = Instance::new();
    let client = instance.client();
    let (local, _) = source(&instance, "rules.bin", 10);

    let download = client.create_job("download", JobType::Download).unwrap();
    let not_reply = client
        .set_job(download, JobChange::ReplyFileName(Some("/tmp/x".into())))
        .unwrap_err();
    assert_eq!(not_reply.hresult, hresult::E_NOTIMPL);
    assert_eq!(
        client.reply_data(download).unwrap_err().hresult,
        hresult::E_NOTIMPL
    );

    let id = client.create_job("rules", JobType::UploadReply).unwrap();
    assert_eq!(
        client.job(id).unwrap().job.reply.unwrap().file_name,
        None,
        "no name before a file is added"
    );
    let refused = |name: &str| {
        client
            .set_job(id, JobChange::ReplyFileName(Some(name.into())))
            .unwrap_err()
            .hresult
    };
    assert_eq!(refused("relative/reply"), hresult::E_INVALIDARG);
    assert_eq!(
        refused(&instance.path("no-such-dir/reply")),
        hresult::HRESULT_PATH_NOT_FOUND
    );
    client
        .add_file(id, "http://127.0.0.1:9/up/rules.bin", &local)
        .unwrap();
    let generated = reply_file_name(&client, id);
    let chosen = instance.path("my-reply");
    client
        .set_job(id, JobChange::ReplyFileName(Some(chosen.clone())))
        .unwrap();
    assert_eq!(reply_file_name(&client, id), chosen);
    client.set_job(id, JobChange::ReplyFileName(None)).unwrap();
    assert_eq!(
        reply_file_name(&client, id),
        generated,
        "NULL goes back to a generated name"
    );
    let (other, _) = source(&instance, "other.bin", 10);
    let second = client
        .add_file(id, "http://127.0.0.1:9/up/two", &other)
        .unwrap_err();
    assert_eq!(second.hresult, hresult::BG_E_TOO_MANY_FILES);
}

#[test]
fn a_sigkill_while_the_server_prepares_the_reply_loses_neither_bytes_nor_reply() {
    let instance = Instance::new();
    let server = TestServer::start();
    let mut client = instance.client();
    let (local, bytes) = source(&instance, "slow.bin", 20_000);
    // One fragment; the server holds every byte, then takes its time to answer.
    let url = server.url("/up/slow.bin?reply=3000&reply_delay_ms=3000");
    let id = reply_job(&client, &url, &local);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !server.upload_log().iter().any(|entry| entry == "Fragment") {
        assert!(std::time::Instant::now() < deadline, "no fragment came");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    drop(client);
    instance.kill_daemons("-KILL");

    client = instance.client();
    client.resume(id).unwrap();
    wait_transferred(&client, id);
    let expected = expected_reply(&bytes, 3000);
    assert_eq!(
        client.reply_data(id).unwrap().data.as_deref(),
        Some(expected.as_slice()),
        "the reply was asked for again after the restart"
    );
    client.complete(id).unwrap();
    assert_eq!(server.uploaded("/up/slow.bin").as_deref(), Some(&bytes[..]));
    let fragments = server
        .upload_log()
        .iter()
        .filter(|entry| *entry == "Fragment")
        .count();
    assert!(
        fragments <= 3,
        "the restart asked with small probes, not the whole file again: {:?}",
        server.upload_log()
    );
}

#[test]
fn qmgr_upload_server_answers_through_its_reply_command() {
    let instance = Instance::new();
    let root = tempfile::tempdir().unwrap();
    let uploads = root.path().join("uploads");
    std::fs::create_dir(&uploads).unwrap();
    // The reply command gets the uploaded file and the reply's path as its last arguments.
    let config = format!(
        "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n[[location]]\nprefix = \"/up/\"\n\
         directory = \"{}\"\nreply_command = [\"/bin/sh\", \"-c\", \"tr a-z A-Z < \\\"$0\\\" > \\\"$1\\\"\"]\n",
        root.path().join("state").display(),
        uploads.display()
    );
    let server =
        qmgr_upload_server::Background::start(qmgr_upload_server::Config::parse(&config).unwrap())
            .unwrap();
    let local = instance.downloads().join("shout.txt");
    std::fs::write(&local, b"speak up, please").unwrap();
    let client = instance.client();
    let url = format!("http://{}/up/shout.txt", server.address());
    let id = reply_job(&client, &url, &local.to_string_lossy());
    wait_transferred(&client, id);
    assert_eq!(
        client.reply_data(id).unwrap().data.as_deref(),
        Some(&b"SPEAK UP, PLEASE"[..])
    );
    client.complete(id).unwrap();
    server.stop();
}
