//! The limits qmgrd enforces itself, whatever a client library checks, and the notify
//! program's environment: each over-limit request comes from a raw IPC client (no C layer in
//! between), is refused with its Windows code and a description naming the limit, and leaves
//! nothing in the store. Each test runs its own qmgrd in fresh XDG directories.

mod common;

use common::Instance;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qmgr_core::certificate::{CertificateSelector, ClientCertificate};
use qmgr_core::hresult::{self, HResult};
use qmgr_core::job::{NotifyCommand, ProxySettings, ProxyUsage};
use qmgr_core::paths::StatePaths;
use qmgr_core::service::{GroupChange, JobChange, NewFile, QueueService, QueueServiceExt, Request};
use qmgr_core::store::Store;
use qmgr_core::{Guid, JobState, JobType, QmgrError};
use qmgr_ipc::Client;
use qmgr_tests::users::OtherUser;

/// Asserts that `result` is refused with `code` and a description containing each of
/// `words` (the limit's value, what it applies to).
#[track_caller]
fn refused<T: std::fmt::Debug>(result: Result<T, QmgrError>, code: HResult, words: &[&str]) {
    let error = result.expect_err("the request should be refused");
    assert_eq!(error.hresult, code, "{error}");
    for word in words {
        assert!(error.description.contains(word), "{word:?} not in {error}");
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn files(count: usize, instance: &Instance, prefix: &str) -> Vec<NewFile> {
    (0..count)
        .map(|i| NewFile {
            remote_name: format!("https://example.invalid/{i}"),
            local_name: instance.path(&format!("{prefix}{i}")),
            ranges: None,
        })
        .collect()
}

#[test]
fn over_limit_requests_are_refused_with_their_code_and_nothing_is_stored() {
    let instance = Instance::new();
    let client = instance.client();
    let too_long = |chars: usize| "x".repeat(chars);

    refused(
        client.create_job(&too_long(257), JobType::Download),
        hresult::BG_E_STRING_TOO_LONG,
        &["display name", "256"],
    );
    assert!(client.jobs(false).unwrap().is_empty(), "no job was made");

    let id = client.create_job("limits", JobType::Download).unwrap();
    let set = |change: JobChange| client.set_job(id, change);
    refused(
        set(JobChange::DisplayName(too_long(257))),
        hresult::BG_E_STRING_TOO_LONG,
        &["display name", "256"],
    );
    refused(
        set(JobChange::Description(too_long(1025))),
        hresult::BG_E_STRING_TOO_LONG,
        &["description", "1024"],
    );
    refused(
        set(JobChange::NotifyCommand(Some(NotifyCommand {
            program: format!("/{}", too_long(260)),
            parameters: None,
        }))),
        hresult::E_INVALIDARG,
        &["notify program", "260"],
    );
    refused(
        set(JobChange::NotifyCommand(Some(NotifyCommand {
            program: "/bin/true".into(),
            parameters: Some(too_long(4001)),
        }))),
        hresult::E_INVALIDARG,
        &["notify parameters", "4000"],
    );
    refused(
        set(JobChange::NotifyCommand(Some(NotifyCommand {
            program: "true".into(),
            parameters: Some("true".into()),
        }))),
        hresult::E_INVALIDARG,
        &["absolute path"],
    );
    refused(
        set(JobChange::CustomHeaders(Some(format!(
            "X-Big: {}\r\n",
            too_long(16_384)
        )))),
        hresult::BG_E_STRING_TOO_LONG,
        &["custom header block", "16383"],
    );
    refused(
        set(JobChange::Proxy(ProxySettings {
            usage: ProxyUsage::Override,
            proxy_list: Some(too_long(32_001)),
            bypass_list: None,
        })),
        hresult::BG_E_PROXY_LIST_TOO_LARGE,
        &["proxy list", "32000"],
    );
    refused(
        set(JobChange::Proxy(ProxySettings {
            usage: ProxyUsage::Override,
            proxy_list: Some("http://proxy:3128".into()),
            bypass_list: Some(too_long(32_001)),
        })),
        hresult::BG_E_PROXY_BYPASS_LIST_TOO_LARGE,
        &["proxy bypass list", "32000"],
    );
    refused(
        set(JobChange::ClientCertificate(Some(ClientCertificate {
            store_location: 0,
            store_name: too_long(256),
            selector: CertificateSelector::Subject("CN=me".into()),
        }))),
        hresult::E_INVALIDARG,
        &["certificate store name", "255"],
    );
    refused(
        set(JobChange::ClientCertificate(Some(ClientCertificate {
            store_location: 0,
            store_name: "MY".into(),
            selector: CertificateSelector::Subject(too_long(1025)),
        }))),
        hresult::E_INVALIDARG,
        &["certificate subject", "1024"],
    );
    refused(
        client.add_file(
            id,
            &format!("https://example.invalid/{}", too_long(2200)),
            &instance.path("long-remote"),
        ),
        hresult::E_INVALIDARG,
        &["remote name", "2200"],
    );
    refused(
        client.add_file(
            id,
            "https://example.invalid/f",
            &format!("/{}", too_long(4095)),
        ),
        hresult::E_INVALIDARG,
        &["local name", "4095"],
    );
    refused(
        client.add_files(id, files(201, &instance, "f")),
        hresult::BG_E_TOO_MANY_FILES_IN_JOB,
        &["200"],
    );

    // The legacy group API: names and AddFiles are held to the same limits.
    let group = Guid::new_random();
    client.create_group(group).unwrap();
    let group_job = Guid::new_random();
    client
        .execute(Request::CreateGroupJob {
            group,
            job: group_job,
            umask: None,
        })
        .unwrap();
    let set_group = |change: GroupChange| client.execute(Request::SetGroup { group, change });
    refused(
        set_group(GroupChange::DisplayName(too_long(257))),
        hresult::E_INVALIDARG,
        &["group display name", "256"],
    );
    refused(
        set_group(GroupChange::Description(too_long(1025))),
        hresult::E_INVALIDARG,
        &["group description", "1024"],
    );
    refused(
        client.add_files(group_job, files(201, &instance, "g")),
        hresult::BG_E_TOO_MANY_FILES_IN_JOB,
        &["200"],
    );

    // What the daemon shows and what it stored are both untouched.
    let check = |job: &qmgr_core::Job| {
        assert_eq!(job.display_name, if job.id == id { "limits" } else { "" });
        assert_eq!(job.description, "");
        assert!(job.files.is_empty());
        assert_eq!(job.settings.notify_command, None);
        assert_eq!(job.settings.custom_headers, None);
        assert_eq!(job.settings.proxy, ProxySettings::default());
        assert_eq!(job.settings.client_certificate, None);
    };
    let shown = client.jobs(false).unwrap();
    assert_eq!(shown.len(), 2);
    for view in &shown {
        check(&view.job);
    }
    drop(client);
    instance.stop();
    let store = Store::open(instance.paths().state_dir()).unwrap();
    let stored = store.load_jobs().unwrap();
    assert_eq!(stored.len(), 2);
    for job in &stored {
        check(job);
    }
    let groups = store.load_groups().unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].display_name, "");
    assert_eq!(groups[0].description, "");
}

/// Writes an executable shell script.
fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A suspended job that copies a local file, with a notify command.
fn local_job(client: &Client, instance: &Instance, command: NotifyCommand) -> Guid {
    let source = instance.path("source");
    std::fs::write(&source, b"notify me").unwrap();
    let id = client.create_job("notify", JobType::Download).unwrap();
    client
        .add_file(id, &source, &instance.path("copy"))
        .unwrap();
    client
        .set_job(id, JobChange::NotifyCommand(Some(command)))
        .unwrap();
    id
}

#[test]
fn the_notify_program_gets_only_a_minimal_environment() {
    let instance = Instance::with_env(vec![
        ("QMGR_TEST_SECRET_TOKEN".into(), "hunter2".into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("HOME".into(), "/home/notify-test".into()),
        ("USER".into(), "notify-test".into()),
        ("LOGNAME".into(), "notify-test".into()),
        ("PATH".into(), "/opt/evil/bin:/usr/bin:/bin".into()),
    ]);
    let client = instance.client();
    // The shell's own environment as qmgrd gave it (not what the shell adds).
    let dump = instance.dir("bin").join("dump-env");
    script(
        &dump,
        "tr '\\0' '\\n' < /proc/$$/environ > \"$1.part\" && mv \"$1.part\" \"$1\"",
    );
    let out = instance.path("environment");
    let id = local_job(
        &client,
        &instance,
        NotifyCommand {
            program: dump.to_string_lossy().into_owned(),
            parameters: Some(format!("dump-env \"{out}\"")),
        },
    );
    client.resume(id).unwrap();
    assert_eq!(
        common::wait_for_state(&client, id, JobState::Transferred)
            .job
            .state,
        JobState::Transferred
    );
    wait_for("the notify program", || Path::new(&out).exists());
    let text = std::fs::read_to_string(&out).unwrap();
    let mut got: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "HOME=/home/notify-test",
            "LANG=C.UTF-8",
            "LOGNAME=notify-test",
            "PATH=/usr/bin:/bin",
            "USER=notify-test",
        ],
        "the notify program's whole environment"
    );
}

#[test]
fn a_relative_program_from_an_older_store_is_not_run() {
    // qmgrd's PATH holds a program of the relative name, as a PATH search would find it.
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let marker = root.path().join("ran");
    script(
        &bin.join("notify-marker"),
        &format!("touch \"{}\"", marker.display()),
    );
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let instance = Instance::in_dir(root, vec![("PATH".into(), path.into())]);
    let client = instance.client();
    let id = local_job(
        &client,
        &instance,
        NotifyCommand {
            program: "/bin/true".into(),
            parameters: None,
        },
    );
    drop(client);
    instance.stop();
    // A store written before programs had to be absolute.
    {
        let mut store = Store::open(instance.paths().state_dir()).unwrap();
        let mut job = store
            .load_jobs()
            .unwrap()
            .into_iter()
            .find(|job| job.id == id)
            .unwrap();
        job.settings.notify_command = Some(Box::new(NotifyCommand {
            program: "notify-marker".into(),
            parameters: Some("notify-marker".into()),
        }));
        store.save_job(&job).unwrap();
    }
    let client = instance.client();
    client.resume(id).unwrap();
    assert_eq!(
        common::wait_for_state(&client, id, JobState::Transferred)
            .job
            .state,
        JobState::Transferred
    );
    // The refusal is logged where the program would have started.
    wait_for("the log line", || {
        instance.log().lines().any(|line| {
            line.contains("not running the notification command")
                && line.contains(&format!("job={id}"))
        })
    });
    assert!(
        instance.log().contains("not an absolute path"),
        "{}",
        instance.log()
    );
    assert!(!marker.exists(), "the relative program ran");
}

const QUOTA_CHILD_ENV: &str = "QMGR_LIMITS_QUOTA_CHILD";
const QUOTA: u32 = 3;

/// The other user's side of `legacy_groups_count_against_max_jobs_per_user`: with
/// `max_jobs_per_user` = [`QUOTA`], its own qmgrd takes three groups and then refuses both a
/// fourth group and a job.
#[test]
#[ignore = "runs only as another user, started by legacy_groups_count_against_max_jobs_per_user"]
fn quota_child() {
    let Some(root) = std::env::var_os(QUOTA_CHILD_ENV).map(PathBuf::from) else {
        return;
    };
    let config = root.join("config/qmgr");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        format!("max_jobs_per_user = {QUOTA}\n"),
    )
    .unwrap();
    let client = Client::connect_or_spawn(&StatePaths::from_env().unwrap()).unwrap();
    assert_ne!(client.service_uid(), 0, "the child runs as another user");
    for _ in 0..QUOTA {
        client.create_group(Guid::new_random()).unwrap();
    }
    refused(
        client.create_group(Guid::new_random()),
        hresult::BG_E_TOO_MANY_JOBS_PER_USER,
        &["max_jobs_per_user", "3"],
    );
    refused(
        client.create_job("one too many", JobType::Download),
        hresult::BG_E_TOO_MANY_JOBS_PER_USER,
        &["legacy groups"],
    );
    assert_eq!(client.groups().unwrap().len(), QUOTA as usize);
    println!("quota held");
}

#[test]
fn legacy_groups_count_against_max_jobs_per_user() {
    let Some(user) = OtherUser::create("legacy_groups_count_against_max_jobs_per_user") else {
        return;
    };
    let root = user.home().join("qmgr-test");
    let output = user
        .command(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "quota_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(QUOTA_CHILD_ENV, &root)
        .env("XDG_STATE_HOME", root.join("state"))
        .env("XDG_CONFIG_HOME", root.join("config"))
        .env("XDG_RUNTIME_DIR", root.join("run"))
        .env("QMGRD", env!("CARGO_BIN_EXE_qmgrd"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("quota held"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
