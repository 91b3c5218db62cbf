//! What every way in to the queue must do the same, whether the queue is a qmgrd or is
//! hosted in the test: each scenario takes a [`Manager`] and the fault-injecting test
//! server.

#![allow(
    dead_code,
    reason = "each test binary uses its own part of this module"
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use qmgr_client::{
    AutoComplete, Guid, Instance, JobPriority, JobState, JobType, Manager, Status, hresult,
};
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body, expected_reply};

/// A queue of the test's own under a fresh directory, and where its downloads go.
pub struct Sandbox {
    pub root: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let sandbox = Sandbox {
            root: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(sandbox.downloads()).unwrap();
        sandbox
    }

    pub fn instance(&self) -> Instance {
        Instance::isolated(self.root.path().join("queue"))
    }

    pub fn downloads(&self) -> PathBuf {
        self.root.path().join("downloads")
    }

    /// The pid the queue manager serving the store recorded in its lock.
    pub fn store_holder(&self) -> Option<u32> {
        let lock = self.root.path().join("queue/state/qmgr/store.lock");
        std::fs::read_to_string(lock).ok()?.trim().parse().ok()
    }
}

/// Asserts that the file at `local` holds the test server's bytes of `path` (`size` bytes).
#[track_caller]
fn assert_served(local: &Path, path: &str, size: u64) {
    let bytes = std::fs::read(local).unwrap_or_else(|error| panic!("{}: {error}", local.display()));
    assert!(
        bytes == expected_body(path, INITIAL_VERSION, size),
        "{} does not hold the bytes of {path}",
        local.display()
    );
}

/// Two files, watched from QUEUED to TRANSFERRED, then completed into place.
pub fn a_download_is_watched_until_transferred_then_completed(
    manager: &Manager,
    server: &TestServer,
    sandbox: &Sandbox,
) {
    let (a, b) = (
        sandbox.downloads().join("a.bin"),
        sandbox.downloads().join("b.bin"),
    );
    let job = manager
        .new_job("two files")
        .priority(JobPriority::Foreground)
        .description("watched")
        .file(server.url("/data/256k/a?rate=1000000"), &a)
        .file(server.url("/data/64k/b"), &b)
        .create()
        .unwrap();
    assert_eq!(job.state().unwrap(), JobState::Suspended);
    job.resume().unwrap();
    let statuses: Vec<Status> = job
        .watch()
        .every(Duration::from_millis(20))
        .map(Result::unwrap)
        .collect();
    let last = statuses.last().expect("a watch yields at least one status");
    assert_eq!(last.state, JobState::Transferred, "{statuses:#?}");
    assert!(last.is_final());
    assert_eq!(last.progress.bytes_total, Some(320 * 1024));
    assert_eq!(last.progress.bytes_transferred, 320 * 1024);
    assert_eq!(
        (last.progress.files_transferred, last.progress.files_total),
        (2, 2)
    );
    assert_eq!(last.error, None);
    for pair in statuses.windows(2) {
        assert_ne!(pair[0], pair[1], "a status repeated: {statuses:#?}");
        assert!(
            pair[0].progress.bytes_transferred <= pair[1].progress.bytes_transferred,
            "progress went back: {statuses:#?}"
        );
        assert!(!pair[0].is_final(), "the watch went on after {:?}", pair[0]);
    }
    // Not yet in place: Complete moves the files.
    assert!(!a.exists());
    assert_eq!(job.complete().unwrap(), hresult::S_OK);
    assert_served(&a, "/data/256k/a", 256 * 1024);
    assert_served(&b, "/data/64k/b", 64 * 1024);
    let gone = job.status().unwrap_err();
    assert_eq!(gone.hresult(), hresult::BG_E_NOT_FOUND);
    assert_eq!(gone.name(), Some("BG_E_NOT_FOUND"));
    assert_eq!(
        gone.action(),
        Some(format!("cannot read job {}", job.id()).as_str())
    );
}

/// A 404 stops the job in ERROR; the last status carries the HTTP error's HRESULT, its
/// name, and the file.
pub fn a_failed_transfer_ends_the_watch_with_the_error(
    manager: &Manager,
    server: &TestServer,
    sandbox: &Sandbox,
) {
    let job = manager
        .new_job("missing")
        .priority(JobPriority::Foreground)
        .file(
            server.url("/data/1k/missing?status=404"),
            sandbox.downloads().join("missing.bin"),
        )
        .create()
        .unwrap();
    job.resume().unwrap();
    let mut seen = Vec::new();
    let last = job.wait(|status| seen.push(status.clone())).unwrap();
    assert_eq!(seen.last(), Some(&last));
    assert_eq!(last.state, JobState::Error, "{seen:#?}");
    let error = last.error.expect("a job in ERROR says why");
    assert_eq!(error.hresult(), hresult::BG_E_HTTP_ERROR_404);
    assert_eq!(error.name(), Some("BG_E_HTTP_ERROR_404"));
    assert_eq!(error.code(), 0x8019_0194);
    assert_eq!(error.context(), qmgr_client::ErrorContext::RemoteFile);
    assert_eq!(error.action(), Some("transferring file 0"));
    assert!(error.to_string().contains("404"), "{error}");
    let info = job.info().unwrap();
    assert_eq!(info.state, JobState::Error);
    assert_eq!(
        info.error.map(|error| error.hresult()),
        Some(error.hresult())
    );
    job.cancel().unwrap();
}

/// A job cancelled through another handle ends a watch with CANCELLED, told by the
/// service's notification.
pub fn a_job_cancelled_elsewhere_ends_the_watch(
    manager: &Manager,
    server: &TestServer,
    sandbox: &Sandbox,
) {
    let job = manager
        .new_job("slow")
        .priority(JobPriority::Foreground)
        .file(
            server.url("/data/10m/slow?rate=20000"),
            sandbox.downloads().join("slow.bin"),
        )
        .create()
        .unwrap();
    job.resume().unwrap();
    let mut watch = job.watch();
    let first = watch.next().unwrap().unwrap();
    assert!(!first.is_final(), "{first:?}");
    manager.job(job.id()).unwrap().cancel().unwrap();
    let rest: Vec<Status> = watch.map(Result::unwrap).collect();
    let last = rest.last().expect("the watch tells the end");
    assert_eq!(last.state, JobState::Cancelled, "{rest:#?}");
    assert!(!sandbox.downloads().join("slow.bin").exists());
}

/// Settings and state changes read back; listings find the job; suspend keeps it.
pub fn settings_and_state_changes_read_back(
    manager: &Manager,
    server: &TestServer,
    sandbox: &Sandbox,
) {
    let job = manager
        .new_job("first name")
        .priority(JobPriority::Low)
        .create()
        .unwrap();
    job.set_display_name("second name").unwrap();
    job.set_description("what it is for").unwrap();
    job.set_priority(JobPriority::High).unwrap();
    job.set_minimum_retry_delay(Duration::from_secs(30))
        .unwrap();
    job.set_no_progress_timeout(Duration::from_secs(600))
        .unwrap();
    job.set_bandwidth_limit(Some(1_000_000)).unwrap();
    job.set_custom_headers(["X-Token: 1"]).unwrap();
    job.set_notify_flags(qmgr_client::NotifyFlags::JOB_TRANSFERRED)
        .unwrap();
    job.set_notify_command("/bin/true", Some("true done"))
        .unwrap();
    job.remove_notify_command().unwrap();
    let info = job.info().unwrap();
    assert_eq!(info.display_name, "second name");
    assert_eq!(info.description, "what it is for");
    assert_eq!(info.priority, JobPriority::High);
    assert_eq!(info.job_type, qmgr_client::JobType::Download);
    assert_eq!(info.state, JobState::Suspended);
    assert!(info.created <= info.modified);
    assert_eq!(info.transferred_at, None);

    let many: Vec<(String, PathBuf)> = (0..40)
        .map(|n| {
            (
                server.url(&format!("/data/1k/{n}")),
                sandbox.downloads().join(format!("{n}.bin")),
            )
        })
        .collect();
    job.add_files(many.iter().map(|(url, path)| (url, path)))
        .unwrap();
    job.add_file(
        server.url("/data/1k/last"),
        sandbox.downloads().join("last.bin"),
    )
    .unwrap();
    let files = job.files().unwrap();
    assert_eq!(files.len(), 41);
    assert_eq!(files[7].remote_name, many[7].0);
    assert_eq!(files[7].local_name, many[7].1);
    assert!(!files[7].completed);
    assert_eq!(job.progress().unwrap().files_total, 41);

    let listed = manager.jobs().unwrap();
    assert!(
        listed
            .iter()
            .any(|listed| listed.id == job.id() && listed.display_name == "second name"),
        "{listed:#?}"
    );
    job.resume().unwrap();
    job.suspend().unwrap();
    assert_eq!(job.state().unwrap(), JobState::Suspended);
    job.cancel().unwrap();
    assert!(
        !manager
            .jobs()
            .unwrap()
            .iter()
            .any(|listed| listed.id == job.id())
    );
}

/// Refusals carry the HRESULT a C program would get, its name, and what was tried.
pub fn refusals_carry_the_hresult_and_what_was_tried(manager: &Manager, sandbox: &Sandbox) {
    let missing = Guid::new_random();
    let error = manager.job(missing).unwrap_err();
    assert_eq!(error.hresult(), hresult::BG_E_NOT_FOUND);
    assert!(error.to_string().contains(&missing.to_string()), "{error}");

    // An upload is complete only when the server has it.
    let upload = manager
        .new_job("refusals")
        .job_type(JobType::Upload)
        .create()
        .unwrap();
    let error = upload.complete().unwrap_err();
    assert_eq!(error.name(), Some("BG_E_INVALID_STATE"));
    assert_eq!(error.context(), qmgr_client::ErrorContext::None);
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot complete job {}: ", upload.id())),
        "{error}"
    );

    let job = manager.new_job("refusals").create().unwrap();
    // Refused here, before the service is asked.
    let error = job.add_file("https://example.com/x", "").unwrap_err();
    assert_eq!(error.hresult(), hresult::E_INVALIDARG);

    // Refused by the service: the file is named in what was tried.
    let error = job
        .add_file("gopher://example.com/x", sandbox.downloads().join("x"))
        .unwrap_err();
    assert!(error.hresult().is_failure());
    assert!(error.name().is_some(), "{error:?}");
    assert!(
        error
            .action()
            .is_some_and(|action| action.contains("gopher://example.com/x")),
        "{error:?}"
    );

    // A builder whose file is refused leaves no job behind.
    let before = manager.jobs().unwrap().len();
    let error = manager
        .new_job("never")
        .file("gopher://example.com/y", sandbox.downloads().join("y"))
        .create()
        .unwrap_err();
    assert!(error.hresult().is_failure());
    assert_eq!(manager.jobs().unwrap().len(), before);
    job.cancel().unwrap();
    upload.cancel().unwrap();

    // A download completed early keeps what it has, as BITS does: a success, but partial.
    let early = manager
        .new_job("early")
        .file("https://example.invalid/z", sandbox.downloads().join("z"))
        .create()
        .unwrap();
    assert_eq!(early.complete().unwrap(), hresult::BG_S_PARTIAL_COMPLETE);
}

/// A job the service completes itself leaves the queue; the watch ends ACKNOWLEDGED and
/// the file is in place.
pub fn an_auto_completed_job_ends_the_watch_acknowledged(
    manager: &Manager,
    server: &TestServer,
    sandbox: &Sandbox,
) {
    let local = sandbox.downloads().join("auto.bin");
    let job = manager
        .new_job("auto")
        .priority(JobPriority::Foreground)
        .auto_complete(AutoComplete::Replace)
        .file(server.url("/data/32k/auto?rate=100000"), &local)
        .create()
        .unwrap();
    // Listening before it starts: a small job may be done before the first look.
    let watch = job.watch();
    job.resume().unwrap();
    let statuses: Vec<Status> = watch.map(Result::unwrap).collect();
    let last = statuses.last().unwrap();
    // TRANSFERRED does not end the watch of a job the service completes itself.
    assert_eq!(last.state, JobState::Acknowledged, "{statuses:#?}");
    assert!(
        statuses[..statuses.len() - 1]
            .iter()
            .all(|status| !status.is_final()),
        "{statuses:#?}"
    );
    // The rename happens before the job leaves the queue.
    assert_served(&local, "/data/32k/auto", 32 * 1024);
}

/// An upload-reply job sends the file, fetches the server's reply, hands it over in
/// memory, and puts it at its file name on Complete.
pub fn an_upload_with_a_reply_is_sent_and_its_reply_read(
    manager: &Manager,
    server: &TestServer,
    sandbox: &Sandbox,
) {
    let source = sandbox.downloads().join("report.bin");
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&source, &bytes).unwrap();
    let reply_file = sandbox.downloads().join("answer.bin");
    let job = manager
        .new_job("report")
        .job_type(JobType::UploadReply)
        .priority(JobPriority::Foreground)
        .reply_file(&reply_file)
        .file(server.url("/up/report.bin?reply=5000"), &source)
        .create()
        .unwrap();
    let early = job.reply_data().unwrap_err();
    assert_eq!(early.hresult(), hresult::BG_E_INVALID_STATE);
    job.resume().unwrap();
    let last = job.wait(|_| {}).unwrap();
    assert_eq!(last.state, JobState::Transferred, "{last:?}");
    assert_eq!(last.progress.bytes_transferred, 100_000);
    assert!(
        server
            .uploaded("/up/report.bin")
            .is_some_and(|got| got == bytes)
    );
    let reply = job.reply_data().unwrap();
    assert!(reply == expected_reply(&bytes, 5000));
    job.complete().unwrap();
    assert!(std::fs::read(&reply_file).unwrap() == reply);
}

/// A job the service was to complete but could not (no clobbering a file that is there)
/// ends the watch in TRANSFERRED, saying why; the owner completes it.
pub fn a_job_the_service_cannot_complete_ends_the_watch_with_why(
    manager: &Manager,
    server: &TestServer,
    sandbox: &Sandbox,
) {
    let local = sandbox.downloads().join("taken.bin");
    std::fs::write(&local, "already here").unwrap();
    let job = manager
        .new_job("no clobber")
        .priority(JobPriority::Foreground)
        .auto_complete(AutoComplete::NoClobber)
        .file(server.url("/data/16k/taken"), &local)
        .create()
        .unwrap();
    let watch = job.watch();
    job.resume().unwrap();
    let last = watch.map(Result::unwrap).last().unwrap();
    assert_eq!(last.state, JobState::Transferred, "{last:?}");
    let why = last
        .error
        .expect("the watch says why the job was not completed");
    assert!(why.hresult().is_failure(), "{why:?}");
    assert_eq!(why.action(), Some("completing the transferred job"));
    assert_eq!(std::fs::read(&local).unwrap(), b"already here");
    assert_eq!(job.complete().unwrap(), hresult::S_OK);
    assert_served(&local, "/data/16k/taken", 16 * 1024);
}
