//! Transfer rules a server or a timing cannot break, seen through a real qmgrd: a 206 that
//! ignores If-Range never splices two versions (also after a SIGKILL of qmgrd), a cancel
//! leaves no temporary file whenever it hits, the start-up sweep touches only names its own
//! store recorded, files get the umask of the process that created the job, a throttled
//! `file://` source works, Complete onto a directory names it, and an absurd Retry-After
//! is clamped. Each test runs its own qmgrd in fresh XDG directories and stops it.

mod common;

use common::{Instance, one_file_job, wait_for_state, wait_until};

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use qmgr_core::hresult;
use qmgr_core::job::{JobPriority, MAX_RETRY_AFTER};
use qmgr_core::service::{JobChange, QueueServiceExt};
use qmgr_core::store::Store;
use qmgr_core::{Guid, JobState};
use qmgr_tests::{INITIAL_VERSION, TestServer, encode_query_value, expected_body};

/// Tells a child run of this binary what to do (see `job_creating_child`).
const CHILD_ENV: &str = "QMGR_TRANSFER_RULES_CHILD";

/// The `.BIT*.tmp` names in `dir`.
fn temp_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|entry| qmgr_core::file::is_temp_file_name(&entry.file_name()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Each lie a server can tell in a 206 that ignores If-Range, and the words the job's
/// attempts must use to explain the restart.
const LIES: [(&str, &str); 5] = [
    ("etag", "ETag or Last-Modified differs"),
    ("date", "ETag or Last-Modified differs"),
    ("start", "does not start where"),
    ("total", "another total size"),
    ("weak", "weak ETag"),
];

#[test]
fn a_206_that_ignores_if_range_never_splices_two_versions() {
    const SIZE: u64 = 300_000;
    let server = TestServer::start();
    let instance = Instance::new();
    let client = instance.client();
    let downloads = instance.downloads();
    let jobs: Vec<(&str, &str, String, PathBuf, Guid)> = LIES
        .iter()
        .map(|&(lie, why)| {
            let path = format!("/data/{SIZE}/{lie}");
            // The first answer is cut mid-body; the path's next version is served from the
            // second request on, which the liar answers 206 as if nothing had changed.
            let url = server.url(&format!(
                "{path}?drop_after=100000&drop_once=1&change_after=1&lie206={lie}"
            ));
            let local = downloads.join(lie);
            let id = one_file_job(&client, &url, &local);
            client
                .set_job(id, JobChange::Priority(JobPriority::Foreground))
                .unwrap();
            client.resume(id).unwrap();
            (lie, why, path, local, id)
        })
        .collect();
    for (lie, why, path, local, id) in &jobs {
        let cut = wait_for_state(&client, *id, JobState::TransientError);
        assert_eq!(cut.job.files[0].bytes_transferred, 100_000, "{lie}");
        // Resume skips the retry delay; the next request asks for the rest with a range.
        client.resume(*id).unwrap();
        let done = wait_for_state(&client, *id, JobState::Transferred);
        assert_eq!(
            done.job.state,
            JobState::Transferred,
            "{lie}: {:?}",
            done.job.error
        );
        let file = &done.job.files[0];
        assert_eq!((file.bytes_transferred, file.bytes_total), (SIZE, SIZE));
        let last = done.attempts.last().expect("an attempt");
        let restart = last.restart.as_deref().unwrap_or_else(|| {
            panic!(
                "{lie}: the attempts do not explain the restart: {:?}",
                done.attempts
            )
        });
        assert!(restart.contains(why), "{lie}: {restart}");
        assert_eq!(last.bytes, SIZE, "{lie}: the restart counts from zero");
        client.complete(*id).unwrap();
        assert!(
            std::fs::read(local).unwrap() == expected_body(path, INITIAL_VERSION + 1, SIZE),
            "{lie}: the file is not the server's current version"
        );
    }
    assert!(temp_files(&downloads).is_empty());
}

#[test]
fn a_206_that_ignores_if_range_after_a_sigkill_restarts_the_file() {
    const SIZE: u64 = 256 * 1024;
    let server = TestServer::start();
    let instance = Instance::new();
    let local = instance.downloads().join("killed");
    let path = "/data/256k/killed";
    let client = instance.client();
    let url = server.url(&format!("{path}?rate=100000&change_after=1&lie206=etag"));
    let id = one_file_job(&client, &url, &local);
    client.resume(id).unwrap();
    wait_until(&client, id, "some bytes on disk", |view| {
        view.job.files[0].bytes_transferred > 0 && view.job.files[0].temp_name.is_some()
    });
    instance.kill_daemons("-KILL");
    // The next client starts qmgrd again; it resumes the partial file with a range request,
    // which the liar answers 206 with the next version's bytes.
    let client = instance.client();
    let done = wait_for_state(&client, id, JobState::Transferred);
    assert_eq!(
        done.job.state,
        JobState::Transferred,
        "{:?}",
        done.job.error
    );
    let restart = done
        .attempts
        .iter()
        .find_map(|attempt| attempt.restart.as_deref())
        .unwrap_or_else(|| panic!("no attempt explains the restart: {:?}", done.attempts));
    assert!(
        restart.contains("ETag or Last-Modified differs"),
        "{restart}"
    );
    client.complete(id).unwrap();
    assert!(
        std::fs::read(&local).unwrap() == expected_body(path, INITIAL_VERSION + 1, SIZE),
        "the file is not the server's current version"
    );
}

#[test]
fn cancel_leaves_no_temporary_file_whenever_it_hits() {
    let server = TestServer::start();
    let instance = Instance::with_config("max_jobs_per_user = 1000\nmax_background_jobs = 4\n");
    let client = instance.client();
    let downloads = instance.downloads();
    let foreign = downloads.join(".BIT0123456789abcdef.tmp");
    std::fs::write(&foreign, b"someone else's download").unwrap();
    let foreign_name = ".BIT0123456789abcdef.tmp".to_owned();

    // Jobs cancelled just as they start, again and again.
    for round in 0..15 {
        let ids: Vec<Guid> = (0..3)
            .map(|n| {
                let url = server.url(&format!("/data/1m/r{round}n{n}?rate=200000"));
                let id = one_file_job(&client, &url, &downloads.join(format!("r{round}n{n}")));
                client
                    .set_job(id, JobChange::Priority(JobPriority::Foreground))
                    .unwrap();
                client.resume(id).unwrap();
                id
            })
            .collect();
        for id in ids {
            client.cancel(id).unwrap();
        }
        assert_eq!(
            temp_files(&downloads),
            std::slice::from_ref(&foreign_name),
            "round {round}"
        );
    }

    // A large queue cancelled while the scheduler keeps starting its next jobs.
    let ids: Vec<Guid> = (0..200)
        .map(|n| {
            let url = server.url(&format!("/data/64k/q{n}?rate=100000"));
            let id = one_file_job(&client, &url, &downloads.join(format!("q{n}")));
            client.resume(id).unwrap();
            id
        })
        .collect();
    for id in ids {
        client.cancel(id).unwrap();
    }
    assert_eq!(temp_files(&downloads), [foreign_name]);
    assert_eq!(
        std::fs::read(&foreign).unwrap(),
        b"someone else's download",
        "a temporary file qmgr did not make was touched"
    );
}

#[test]
fn the_start_up_sweep_deletes_only_temporary_names_its_store_recorded() {
    let instance = Instance::new();
    drop(instance.client());
    instance.kill_daemons("-TERM");
    let downloads = instance.downloads();
    // A file this store recorded but no job holds (a crash between the record and the
    // job's end), one it recorded that was never made, and a foreign one.
    let recorded = downloads.join(".BIT00000000000000aa.tmp");
    let never_made = downloads.join(".BIT00000000000000bb.tmp");
    let foreign = downloads.join(".BIT00000000000000cc.tmp");
    std::fs::write(&recorded, b"left by a crash").unwrap();
    std::fs::set_permissions(&recorded, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&foreign, b"another store's").unwrap();
    {
        let mut store = Store::open(instance.paths().state_dir()).unwrap();
        store.record_temp_name(&recorded.to_string_lossy()).unwrap();
        store
            .record_temp_name(&never_made.to_string_lossy())
            .unwrap();
    }
    let client = instance.client();
    client.ping().unwrap();
    assert!(!recorded.exists(), "a recorded leftover survived the sweep");
    assert_eq!(
        std::fs::read(&foreign).unwrap(),
        b"another store's",
        "the sweep touched a name it never recorded"
    );
    instance.kill_daemons("-TERM");
    let store = Store::open(instance.paths().state_dir()).unwrap();
    assert!(store.temp_names().unwrap().is_empty(), "the records stay");
}

/// A child run of this binary with its own umask (set by the shell that starts it): it
/// creates and resumes a job for the URL and file named in `CHILD_ENV` and prints its id,
/// or only makes sure qmgrd runs when no URL is given.
#[test]
#[ignore = "runs only as a child process of files_get_the_umask_of_the_process_that_created_the_job"]
fn job_creating_child() {
    let Some(spec) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let spec = spec.into_string().unwrap();
    let mut lines = spec.lines();
    let root = PathBuf::from(lines.next().unwrap());
    let client = common::client_of(&root);
    let Some(url) = lines.next() else {
        client.ping().unwrap();
        return;
    };
    let local = Path::new(lines.next().unwrap());
    let id = one_file_job(&client, url, local);
    client.resume(id).unwrap();
    println!("JOB {id}");
}

/// Runs `job_creating_child` under `umask`; returns the job it printed, if any.
fn run_child_with_umask(umask: &str, spec: &str) -> Option<Guid> {
    let script = format!(
        "umask {umask} && exec \"$0\" --exact job_creating_child --ignored --nocapture --test-threads=1"
    );
    let output = Command::new("sh")
        .args(["-c", &script])
        .arg(std::env::current_exe().unwrap())
        .env(CHILD_ENV, spec)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    // libtest prints the test's name on the same line as its output.
    stdout
        .split("JOB ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(|id| id.parse().unwrap())
}

#[test]
fn files_get_the_umask_of_the_process_that_created_the_job() {
    let server = TestServer::start();
    let instance = Instance::new();
    let root = instance.root().display().to_string();
    // qmgrd starts under umask 022; the jobs come from processes with other umasks.
    assert_eq!(run_child_with_umask("022", &root), None);
    let downloads = instance.downloads();
    let cases = [("077", 0o600), ("002", 0o664)];
    let jobs: Vec<(Guid, PathBuf, u32)> = cases
        .iter()
        .map(|&(umask, mode)| {
            let local = downloads.join(format!("umask-{umask}"));
            let url = server.url(&format!("/data/10k/{umask}"));
            let spec = format!("{root}\n{url}\n{}", local.display());
            let id = run_child_with_umask(umask, &spec).expect("the child printed its job");
            (id, local, mode)
        })
        .collect();
    let client = instance.client();
    for (id, local, mode) in jobs {
        wait_for_state(&client, id, JobState::Transferred);
        let temp = client.job(id).unwrap().job.files[0]
            .temp_name
            .clone()
            .expect("a temporary file");
        let temp_mode = std::fs::metadata(&temp).unwrap().mode() & 0o777;
        assert_eq!(
            temp_mode, 0o600,
            "temporary files stay private until Complete"
        );
        // This process (umask whatever the test runner has) completes: the mode is the
        // creator's all the same.
        client.complete(id).unwrap();
        let actual = std::fs::metadata(&local).unwrap().mode() & 0o777;
        assert_eq!(
            actual,
            mode,
            "{}: {actual:o}, not {mode:o}",
            local.display()
        );
    }
}

#[test]
fn a_throttled_file_url_transfers() {
    const SIZE: usize = 2 << 20;
    let instance = Instance::new();
    let downloads = instance.downloads();
    let source = downloads.join("source.bin");
    let bytes: Vec<u8> = (0..SIZE).map(|i| u8::try_from(i % 251).unwrap()).collect();
    std::fs::write(&source, &bytes).unwrap();
    let local = downloads.join("copy.bin");
    let client = instance.client();
    let id = one_file_job(&client, &format!("file://{}", source.display()), &local);
    client
        .set_job(id, JobChange::BandwidthLimit(Some(1 << 20)))
        .unwrap();
    client.resume(id).unwrap();
    let done = wait_for_state(&client, id, JobState::Transferred);
    assert_eq!(
        done.job.state,
        JobState::Transferred,
        "{:?}",
        done.job.error
    );
    client.complete(id).unwrap();
    assert!(std::fs::read(&local).unwrap() == bytes, "the copy differs");
}

#[test]
fn complete_onto_a_directory_names_it_with_a_specific_code() {
    let server = TestServer::start();
    let instance = Instance::new();
    let local = instance.downloads().join("in-the-way");
    let client = instance.client();
    let id = one_file_job(&client, &server.url("/data/1000"), &local);
    client.resume(id).unwrap();
    wait_for_state(&client, id, JobState::Transferred);
    std::fs::create_dir(&local).unwrap();
    let error = client.complete(id).unwrap_err();
    assert_eq!(
        error.hresult,
        hresult::HRESULT_DIRECTORY_NOT_SUPPORTED,
        "{error:?}"
    );
    assert!(
        error.description.contains(&*local.to_string_lossy()),
        "{}",
        error.description
    );
    // Nothing changed: the directory can go and Complete be called again.
    assert_eq!(client.job(id).unwrap().job.state, JobState::Transferred);
    std::fs::remove_dir(&local).unwrap();
    client.complete(id).unwrap();
    assert!(std::fs::read(&local).unwrap() == expected_body("/data/1000", INITIAL_VERSION, 1000));
}

#[test]
fn an_absurd_retry_after_is_clamped_to_the_no_progress_timeout_and_a_day() {
    let server = TestServer::start();
    let instance = Instance::new();
    let client = instance.client();
    let downloads = instance.downloads();
    let hour = Duration::from_secs(3600);
    let cases = [
        // Seconds, against a NoProgressTimeout of an hour.
        ("99999999999", Some(hour), hour),
        // A date in the year 9999, against the default NoProgressTimeout of 14 days.
        ("Fri, 31 Dec 9999 23:59:59 GMT", None, MAX_RETRY_AFTER),
    ];
    for (n, (retry_after, timeout, bound)) in cases.into_iter().enumerate() {
        let url = server.url(&format!(
            "/data/10/{n}?status=503&retry_after={}",
            encode_query_value(retry_after)
        ));
        let id = one_file_job(&client, &url, &downloads.join(format!("r{n}")));
        if let Some(timeout) = timeout {
            client
                .set_job(id, JobChange::NoProgressTimeout(timeout))
                .unwrap();
        }
        client.resume(id).unwrap();
        let view = wait_for_state(&client, id, JobState::TransientError);
        let error = view.job.error.as_ref().expect("the 503");
        assert_eq!(error.error.hresult, hresult::BG_E_HTTP_ERROR_503);
        // Both times come from qmgrd's clock at the same failure: no wall clock involved.
        let retry_at = view.job.retry_at.expect("a retry time");
        let wait = retry_at.since(error.at);
        assert!(
            wait <= bound,
            "{retry_after}: the retry waits {wait:?}, longer than {bound:?}"
        );
        assert!(
            wait >= Duration::from_secs(600),
            "the minimum retry delay holds"
        );
        assert!(error.retry_after.is_some_and(|asked| asked <= bound));
        client.cancel(id).unwrap();
    }
}

#[test]
fn stored_progress_always_goes_with_the_validator_of_its_response() {
    // The second file's response comes while its job already transfers: its size and
    // validator are not written at once, but must reach the store with its bytes.
    let server = TestServer::start();
    let instance = Instance::new();
    let client = instance.client();
    let id = client
        .create_job("two files", qmgr_core::JobType::Download)
        .unwrap();
    let first = instance.downloads().join("first");
    let second = instance.downloads().join("second");
    client
        .add_file(id, &server.url("/data/1k/first"), &first.to_string_lossy())
        .unwrap();
    client
        .add_file(
            id,
            &server.url("/data/256k/second?rate=50000"),
            &second.to_string_lossy(),
        )
        .unwrap();
    client.resume(id).unwrap();
    wait_until(&client, id, "the second file moving", |view| {
        view.job.files[0].completed && view.job.files[1].bytes_transferred > 0
    });
    // A stop writes the pending progress.
    instance.kill_daemons("-TERM");
    let store = Store::open(instance.paths().state_dir()).unwrap();
    let job = store
        .load_jobs()
        .unwrap()
        .into_iter()
        .find(|job| job.id == id)
        .unwrap();
    let file = &job.files[1];
    assert!(file.bytes_transferred > 0, "no progress stored: {file:?}");
    assert!(
        !file.validator.is_empty(),
        "bytes stored without their validator: {file:?}"
    );
    assert_eq!(file.bytes_total, 256 * 1024, "{file:?}");
}

#[test]
fn a_job_whose_files_finish_in_bursts_is_stored_as_it_ended() {
    // Files finishing together are committed together, their job's row once for all of
    // them: after a SIGKILL the store still says the job is transferred.
    let server = TestServer::start();
    let instance = Instance::new();
    let client = instance.client();
    let id = client
        .create_job("many small files", qmgr_core::JobType::Download)
        .unwrap();
    let files = (0..40)
        .map(|i| qmgr_core::service::NewFile {
            remote_name: server.url(&format!("/data/1k/burst-{i}")),
            local_name: instance
                .downloads()
                .join(format!("burst-{i}"))
                .to_string_lossy()
                .into_owned(),
            ranges: None,
        })
        .collect();
    client.add_files(id, files).unwrap();
    client.resume(id).unwrap();
    let done = wait_for_state(&client, id, JobState::Transferred);
    instance.kill_daemons("-KILL");
    let store = Store::open(instance.paths().state_dir()).unwrap();
    let stored = store
        .load_jobs()
        .unwrap()
        .into_iter()
        .find(|job| job.id == id)
        .unwrap();
    assert_eq!(stored.state, JobState::Transferred);
    assert!(stored.files.iter().all(|file| file.completed));
    assert_eq!(stored.times, done.job.times);
}
