//! Two real users, each with a qmgrd of its own (under a per-user runtime root this test
//! makes, so no real user's daemon is ever met), played against each other:
//! - neither can connect to the other's socket (directly, or through the client with its
//!   checks), read the other's runtime or state directory, or see, change, cancel or
//!   complete the other's job through its own qmgrd, and neither may scan other users;
//! - root's all-users enumeration reaches both daemons and sees both jobs;
//! - the runtime directory, the socket, the state directory and every file in it are
//!   private (0700 directories, 0600 files) and the user's own;
//! - symbolic links another user plants at a job's recorded temporary name and at its
//!   final name, both pointing at a file the job's owner owns, are never followed: the
//!   owner's file is untouched and the download is whole.
//!
//! Creating users needs root (CI runs as root); elsewhere the test says it skipped. Each
//! user's side runs in this binary started as that user (`a_users_program`), one step at
//! a time, and prints one line per check. With `QMGR_RELIABILITY_RESULTS=PATH` (set by
//! `cargo xtask reliability users`) the checks go into PATH's `users` section.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qmgr_core::hresult::{self, HResult};
use qmgr_core::paths::StatePaths;
use qmgr_core::service::{JobChange, QueueService, QueueServiceExt};
use qmgr_core::{Guid, JobState, JobType, QmgrError};
use qmgr_ipc::Client;
use qmgr_ipc::users::scan;
use qmgr_tests::users::OtherUser;
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

/// Which step a user's run of this binary takes.
const STEP_VAR: &str = "QMGR_USERS_TEST_STEP";
/// For `attack`: the other user's socket, runtime directory, state directory and job.
const OTHER_SOCKET_VAR: &str = "QMGR_USERS_TEST_OTHER_SOCKET";
const OTHER_RUNTIME_VAR: &str = "QMGR_USERS_TEST_OTHER_RUNTIME";
const OTHER_STATE_VAR: &str = "QMGR_USERS_TEST_OTHER_STATE";
const OTHER_JOB_VAR: &str = "QMGR_USERS_TEST_OTHER_JOB";
/// For `attack`: the runtime root holding every user's directory.
const RUNTIME_ROOT_VAR: &str = "QMGR_USERS_TEST_RUNTIME_ROOT";
/// For `partial` and `finish`: the victim job's URL and local name, or its id.
const URL_VAR: &str = "QMGR_USERS_TEST_URL";
const LOCAL_VAR: &str = "QMGR_USERS_TEST_LOCAL";
const JOB_VAR: &str = "QMGR_USERS_TEST_JOB";

/// How long a user's step may wait for its job (a guard against hanging).
const PATIENCE: Duration = Duration::from_secs(60);

/// The size of the victim's download: cut once at a third, so a partial file is left.
const VICTIM_SIZE: u64 = 96 * 1024;

// ---- the users' side ----------------------------------------------------------------

/// One user's step, run by [`users`] as that user; does nothing in a plain test run.
#[test]
#[ignore = "run by `users` as each user"]
fn a_users_program() {
    let Ok(step) = std::env::var(STEP_VAR) else {
        return;
    };
    let paths = StatePaths::from_env().expect("the user's qmgr directories");
    let client = Client::connect_or_spawn(&paths).expect("the user's qmgrd");
    match step.as_str() {
        "start" => start(&paths, &client),
        "attack" => attack(&client),
        "partial" => partial(&client),
        "finish" => finish(&client),
        other => panic!("no step {other:?}"),
    }
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set"))
}

/// Starts the user's qmgrd with a job of one file (never resumed) and says where all is.
fn start(paths: &StatePaths, client: &Client) {
    let user = var("USER");
    let id = client
        .create_job(&format!("{user}'s job"), JobType::Download)
        .unwrap();
    let local = Path::new(&var("HOME")).join("job-file");
    client
        .add_file(id, "https://example.invalid/file", &local.to_string_lossy())
        .unwrap();
    println!("@@ job {id}");
    println!("@@ socket {}", paths.socket_path().display());
    println!("@@ state {}", paths.state_dir().display());
}

/// Reports one check as a line the test reads: `@@ ok NAME` or `@@ FAIL NAME: why` (the
/// test harness may print its own text before the first line).
fn report(check: &str, result: Result<(), String>) {
    match result {
        Ok(()) => println!("@@ ok {check}"),
        Err(why) => println!("@@ FAIL {check}: {why}"),
    }
}

fn refused_with<T: std::fmt::Debug>(
    result: Result<T, QmgrError>,
    codes: &[HResult],
) -> Result<(), String> {
    match result {
        Err(error) if codes.contains(&error.hresult) => Ok(()),
        other => Err(format!("answered {other:?}")),
    }
}

fn denied<T: std::fmt::Debug>(result: std::io::Result<T>) -> Result<(), String> {
    match result {
        Err(error) if error.kind() == ErrorKind::PermissionDenied => Ok(()),
        other => Err(format!("got {other:?}, not EACCES")),
    }
}

/// Everything a user might try against the other user's daemon and files.
fn attack(client: &Client) {
    let socket = PathBuf::from(var(OTHER_SOCKET_VAR));
    let other_job: Guid = var(OTHER_JOB_VAR).parse().unwrap();
    report(
        "connect() to the other's socket fails with EACCES",
        denied(UnixStream::connect(&socket)),
    );
    report(
        "the client library refuses the other's socket",
        refused_with(
            Client::connect_socket(&socket),
            &[hresult::QM_E_SERVICE_UNAVAILABLE],
        ),
    );
    report(
        "listing the other's runtime directory fails with EACCES",
        denied(std::fs::read_dir(var(OTHER_RUNTIME_VAR))),
    );
    let other_state = PathBuf::from(var(OTHER_STATE_VAR));
    report(
        "listing the other's state directory fails with EACCES",
        denied(std::fs::read_dir(&other_state)),
    );
    report(
        "reading the other's store fails with EACCES",
        denied(std::fs::read(other_state.join("qmgr.sqlite3"))),
    );
    // Through its own qmgrd, the other's job does not exist.
    let not_found = [hresult::BG_E_NOT_FOUND];
    report(
        "GetJob of the other's job: BG_E_NOT_FOUND",
        refused_with(client.job_summary(other_job), &not_found),
    );
    report(
        "SetDisplayName on the other's job: BG_E_NOT_FOUND",
        refused_with(
            client.set_job(other_job, JobChange::DisplayName("taken".into())),
            &not_found,
        ),
    );
    report(
        "Cancel of the other's job: BG_E_NOT_FOUND",
        refused_with(client.cancel(other_job), &not_found),
    );
    report(
        "Complete of the other's job: BG_E_NOT_FOUND",
        refused_with(client.complete(other_job), &not_found),
    );
    report(
        "TakeOwnership of the other's job is refused",
        refused_with(
            client.take_ownership(other_job),
            &[hresult::BG_E_NOT_FOUND, hresult::E_ACCESSDENIED],
        ),
    );
    let me = client.caller_uid();
    for all_users in [false, true] {
        let check = format!("EnumJobs (all users: {all_users}) lists only its own jobs");
        let result = match client.jobs(all_users) {
            Ok(jobs) if jobs.is_empty() => Err("not even its own job".to_owned()),
            Ok(jobs) => match jobs.iter().find(|j| Some(j.job.owner_uid) != me) {
                Some(view) => Err(format!(
                    "lists {} of uid {}",
                    view.job.id, view.job.owner_uid
                )),
                None => Ok(()),
            },
            Err(error) if error.hresult == hresult::E_ACCESSDENIED && all_users => Ok(()),
            Err(error) => Err(error.to_string()),
        };
        report(&check, result);
    }
    report(
        "scanning every user's qmgrd (root's ALL_USERS): E_ACCESSDENIED",
        refused_with(
            scan(Path::new(&var(RUNTIME_ROOT_VAR))),
            &[hresult::E_ACCESSDENIED],
        ),
    );
}

fn wait_for(client: &Client, id: Guid, done: impl Fn(JobState) -> bool) -> JobState {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let state = client.job_summary(id).unwrap().job.state;
        if done(state) {
            return state;
        }
        assert!(Instant::now() < deadline, "job {id} is still {state:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts the victim's download, which the server cuts once, and suspends it with its
/// partial file kept; says the recorded temporary name.
fn partial(client: &Client) {
    let id = client.create_job("victim", JobType::Download).unwrap();
    client.add_file(id, &var(URL_VAR), &var(LOCAL_VAR)).unwrap();
    client
        .set_job(id, JobChange::MinimumRetryDelay(Duration::from_secs(600)))
        .unwrap();
    client.resume(id).unwrap();
    // The cut leaves it waiting to retry, its partial file recorded.
    wait_for(client, id, |state| {
        matches!(state, JobState::TransientError | JobState::Error)
    });
    client.suspend(id).unwrap();
    let file = client.job_files(id).unwrap().remove(0);
    println!("@@ job {id}");
    println!("@@ partial {}", file.bytes_transferred);
    println!(
        "@@ temp {}",
        file.temp_name.expect("a partial file has a temporary name")
    );
}

/// Resumes the victim's job and completes it; says how it ended.
fn finish(client: &Client) {
    let id: Guid = var(JOB_VAR).parse().unwrap();
    client.resume(id).unwrap();
    let state = wait_for(client, id, |state| {
        matches!(state, JobState::Transferred | JobState::Error)
    });
    if state == JobState::Transferred {
        client.complete(id).unwrap();
        println!("@@ ended completed");
    } else {
        let error = client.job_summary(id).unwrap().job.error;
        println!("@@ ended {state:?} {error:?}");
    }
}

// ---- root's side --------------------------------------------------------------------

/// A user of the test with its runtime directory and what its `start` step said.
struct User {
    account: OtherUser,
    runtime_dir: PathBuf,
    job: Guid,
    socket: PathBuf,
    state_dir: PathBuf,
}

/// The environment of a user's step, beyond what [`OtherUser::command`] sets.
fn user_env(account: &OtherUser, runtime_dir: &Path) -> Vec<(String, PathBuf)> {
    let mut env: Vec<(String, PathBuf)> = account
        .qmgr_env(runtime_dir)
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    env.push(("QMGRD".into(), env!("CARGO_BIN_EXE_qmgrd").into()));
    // No system bus: the daemons never meet the machine's NetworkManager.
    env.push((
        "DBUS_SYSTEM_BUS_ADDRESS".into(),
        format!("unix:path={}", runtime_dir.join("no-system-bus").display()).into(),
    ));
    env
}

/// Runs `step` as `account`; returns its output's `key value` lines.
fn run_step(
    account: &OtherUser,
    runtime_dir: &Path,
    step: &str,
    vars: &[(&str, String)],
) -> Vec<(String, String)> {
    let output = account
        .command(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_users_program",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(user_env(account, runtime_dir))
        .env(STEP_VAR, step)
        .envs(vars.iter().map(|(name, value)| (*name, value)))
        .current_dir(account.home())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "step {step} of {} failed:\n{stdout}\n{}",
        account.name(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter_map(|line| {
            line.split_once("@@ ")
                .and_then(|(_, said)| said.split_once(' '))
        })
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

fn said(lines: &[(String, String)], key: &str) -> String {
    lines
        .iter()
        .find(|(k, _)| k == key)
        .map_or_else(|| panic!("no {key} in {lines:?}"), |(_, v)| v.clone())
}

impl User {
    fn start(test: &str, runtime_root: &Path) -> Option<User> {
        let account = OtherUser::create(test)?;
        let runtime_dir = account.make_runtime_dir(runtime_root).unwrap();
        let lines = run_step(&account, &runtime_dir, "start", &[]);
        Some(User {
            job: said(&lines, "job").parse().unwrap(),
            socket: said(&lines, "socket").into(),
            state_dir: said(&lines, "state").into(),
            account,
            runtime_dir,
        })
    }

    fn step(&self, step: &str, vars: &[(&str, String)]) -> Vec<(String, String)> {
        run_step(&self.account, &self.runtime_dir, step, vars)
    }

    fn uid(&self) -> u32 {
        self.account.uid()
    }
}

/// The checks of the run, in order, with their outcome.
#[derive(Default)]
struct Checks {
    rows: Vec<(String, Result<(), String>)>,
}

impl Checks {
    fn add(&mut self, check: impl Into<String>, result: Result<(), String>) {
        self.rows.push((check.into(), result));
    }

    fn failures(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter_map(|(check, result)| {
                result.as_ref().err().map(|why| format!("{check}: {why}"))
            })
            .collect()
    }
}

/// Whether `path` (not followed) is of `kind`, mode `mode` and uid `uid`.
fn private(path: &Path, directory: bool, mode: u32, uid: u32) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let kind_ok = if directory {
        meta.is_dir()
    } else {
        meta.is_file() || meta.file_type().is_socket()
    };
    let found = meta.mode() & 0o7777;
    if kind_ok && found == mode && meta.uid() == uid {
        Ok(())
    } else {
        Err(format!(
            "{}: {:?}, mode {found:o}, uid {} (wanted mode {mode:o}, uid {uid})",
            path.display(),
            meta.file_type(),
            meta.uid()
        ))
    }
}

/// A directory root made for the test that the users may enter.
fn open_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn users() {
    let runtime_root = open_dir();
    let Some(ann) = User::start("users", runtime_root.path()) else {
        return;
    };
    let bob = User::start("users", runtime_root.path()).expect("root made the first user");
    let mut checks = Checks::default();

    // Permissions of what each daemon made.
    for user in [&ann, &bob] {
        let name = user.account.name();
        let uid = user.uid();
        let qmgr_dir = user.socket.parent().unwrap();
        checks.add(
            format!("{name}'s socket directory ROOT/<uid>/qmgr is 0700 and theirs"),
            private(qmgr_dir, true, 0o700, uid),
        );
        checks.add(
            format!("{name}'s socket is 0600 and theirs"),
            private(&user.socket, false, 0o600, uid),
        );
        checks.add(
            format!("{name}'s state directory is 0700 and theirs"),
            private(&user.state_dir, true, 0o700, uid),
        );
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(&user.state_dir).unwrap().flatten() {
            let path = entry.path();
            let is_dir = entry.file_type().unwrap().is_dir();
            let result = private(&path, is_dir, if is_dir { 0o700 } else { 0o600 }, uid);
            files.insert(entry.file_name().to_string_lossy().into_owned(), result);
        }
        let names: Vec<&String> = files.keys().collect();
        let store_there = files.contains_key("qmgr.sqlite3");
        checks.add(
            format!("{name}'s state files ({names:?}) are 0600 and theirs"),
            files
                .values()
                .find(|result| result.is_err())
                .cloned()
                .unwrap_or(Ok(()))
                .and(if store_there {
                    Ok(())
                } else {
                    Err("no qmgr.sqlite3".to_owned())
                }),
        );
    }

    // Each user against the other.
    for (me, other) in [(&ann, &bob), (&bob, &ann)] {
        let lines = me.step(
            "attack",
            &[
                (OTHER_SOCKET_VAR, other.socket.display().to_string()),
                (OTHER_RUNTIME_VAR, other.runtime_dir.display().to_string()),
                (OTHER_STATE_VAR, other.state_dir.display().to_string()),
                (OTHER_JOB_VAR, other.job.to_string()),
                (RUNTIME_ROOT_VAR, runtime_root.path().display().to_string()),
            ],
        );
        let (a, b) = (me.account.name(), other.account.name());
        for (verdict, rest) in lines {
            match verdict.as_str() {
                "ok" => checks.add(format!("{a} against {b}: {rest}"), Ok(())),
                "FAIL" => {
                    let (check, why) = rest.split_once(": ").unwrap_or((&rest, ""));
                    checks.add(format!("{a} against {b}: {check}"), Err(why.to_owned()));
                }
                _ => {}
            }
        }
    }

    // Root's ALL_USERS reaches both daemons, and finds each job unchanged.
    let scanned = scan(runtime_root.path()).expect("root scans the runtime root");
    checks.add(
        "root's all-users scan skips nobody",
        if scanned.skipped.is_empty() {
            Ok(())
        } else {
            Err(format!("{:?}", scanned.skipped))
        },
    );
    for user in [&ann, &bob] {
        let name = user.account.name();
        let result = match scanned.queues.iter().find(|q| q.uid() == user.uid()) {
            None => Err("no queue reached".to_owned()),
            Some(queue) => match queue.jobs(true) {
                Ok(jobs) => match jobs.iter().find(|view| view.job.id == user.job) {
                    Some(view)
                        if view.job.owner_uid == user.uid()
                            && view.job.display_name == format!("{name}'s job")
                            && view.job.state == JobState::Suspended =>
                    {
                        Ok(())
                    }
                    Some(view) => Err(format!(
                        "changed: {:?} of uid {} in {:?}",
                        view.job.display_name, view.job.owner_uid, view.job.state
                    )),
                    None => Err(format!("{} not listed", user.job)),
                },
                Err(error) => Err(error.to_string()),
            },
        };
        checks.add(
            format!("root's ALL_USERS sees {name}'s job, unchanged by the other"),
            result,
        );
    }
    drop(scanned);

    // Bob plants links at Ann's recorded temporary name and final name, both to a file
    // of Ann's.
    let server = TestServer::start();
    let shared = open_dir();
    let drop_dir = shared.path().join("drop");
    std::fs::create_dir(&drop_dir).unwrap();
    // Both may write there (no sticky bit: Bob can replace Ann's names).
    std::fs::set_permissions(&drop_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let precious = ann.account.home().join("precious");
    std::fs::write(&precious, b"Ann's own file\n").unwrap();
    std::fs::set_permissions(&precious, std::fs::Permissions::from_mode(0o600)).unwrap();
    ann.account.chown(&precious).unwrap();
    let path = "/data/96k/users/victim";
    let url = server.url(&format!(
        "{path}?drop_after={}&drop_once=1",
        VICTIM_SIZE / 3
    ));
    let local = drop_dir.join("download");
    let lines = ann.step(
        "partial",
        &[(URL_VAR, url), (LOCAL_VAR, local.display().to_string())],
    );
    let victim_job = said(&lines, "job");
    let temp = PathBuf::from(said(&lines, "temp"));
    let kept: u64 = said(&lines, "partial").parse().unwrap();
    let plant = |at: &Path| {
        let _ = std::fs::remove_file(at);
        std::os::unix::fs::symlink(&precious, at).unwrap();
        std::os::unix::fs::lchown(at, Some(bob.uid()), Some(bob.account.gid())).unwrap();
    };
    checks.add(
        format!("Ann's cut download left a partial file ({kept} bytes recorded)"),
        if temp.exists() && temp.parent() == Some(drop_dir.as_path()) {
            Ok(())
        } else {
            Err(format!("no partial file at {}", temp.display()))
        },
    );
    plant(&temp);
    plant(&local);
    let lines = ann.step("finish", &[(JOB_VAR, victim_job)]);
    let ended = said(&lines, "ended");
    let precious_now = std::fs::read(&precious).unwrap();
    checks.add(
        "links Bob planted at the temporary and final names are not followed: Ann's file \
         is untouched",
        if precious_now == b"Ann's own file\n" {
            Ok(())
        } else {
            Err(format!("it now holds {} bytes", precious_now.len()))
        },
    );
    let download = std::fs::symlink_metadata(&local);
    checks.add(
        "Ann's job completes whole at the final name: a regular file of hers",
        match (ended.as_str(), download) {
            ("completed", Ok(meta)) if meta.is_file() && meta.uid() == ann.uid() => {
                let held = std::fs::read(&local).unwrap();
                if held == expected_body(path, INITIAL_VERSION, VICTIM_SIZE) {
                    Ok(())
                } else {
                    Err(format!("{} bytes, not the server's file", held.len()))
                }
            }
            (ended, meta) => Err(format!("ended {ended}, final name {meta:?}")),
        },
    );

    let mut table = String::new();
    let _ = writeln!(
        table,
        "## Many users\n\n\
         Two real users, each with its own qmgrd under a per-user runtime root the test \
         makes (`crates/qmgr-service/tests/users.rs`, run as root); each user's side is the \
         test binary run as that user. `ROOT` is that runtime root.\n\n\
         | check | outcome |\n|---|---|"
    );
    for (check, result) in &checks.rows {
        let check = check
            .replace(ann.account.name(), "Ann")
            .replace(bob.account.name(), "Bob");
        let outcome = match result {
            Ok(()) => "holds".to_owned(),
            Err(why) => format!("**fails: {}**", why.replace('|', "\\|")),
        };
        let _ = writeln!(table, "| {check} | {outcome} |");
    }
    println!("{table}");
    if let Some(results) = std::env::var_os("QMGR_RELIABILITY_RESULTS") {
        qmgr_tests::results::write_part(Path::new(&results), "users", "users-table", &table)
            .expect("writing the results");
    }
    let failures = checks.failures();
    assert!(
        failures.is_empty(),
        "checks that failed:\n{}",
        failures.join("\n")
    );
}
