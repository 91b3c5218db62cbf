//! Tests with other processes: starting qmgrd on demand (this binary plays a fake qmgrd)
//! and a client running as another uid (this binary plays the client).
//!
//! A custom main (`harness = false`) because the binary is also the fake qmgrd, which
//! must accept `--spawned` as the real one does. Arguments that do not start with `-`
//! filter the tests by name, as libtest's do.

mod common;

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{FAKE_VERSION, FakeQueue, instance_env, paths_in};
use qmgr_core::hresult;
use qmgr_core::paths::StatePaths;
use qmgr_ipc::spawn::SPAWNED_ARG;
use qmgr_ipc::{Client, ConnectionHandler, Launcher, accept_loop, bind_listener};

/// The fake qmgrd's second stage: the detached daemon.
const SERVE_ARG: &str = "--serve-fake-qmgrd";
/// Play a client: connect to the socket given next and print what happened.
const CLIENT_ARG: &str = "--connect-as-client";
/// The file the fake qmgrd appends a line to each time it is started.
const SPAWN_LOG_VAR: &str = "QMGR_IPC_TEST_SPAWN_LOG";

/// The fake daemon exits once no client has been connected for this long.
const FAKE_IDLE_EXIT: Duration = Duration::from_secs(1);
const PATIENCE: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some(SPAWNED_ARG) => fake_qmgrd_spawned(),
        Some(SERVE_ARG) => fake_qmgrd_serve(),
        Some(CLIENT_ARG) => connect_and_report(Path::new(&args[2]), args[3].parse().unwrap()),
        _ => run_tests(&args[1..]),
    }
}

type Test = (&'static str, fn());

const TESTS: &[Test] = &[
    (
        "racing_clients_start_exactly_one_daemon",
        racing_clients_start_exactly_one_daemon,
    ),
    (
        "a_daemon_that_fails_to_start_is_reported",
        a_daemon_that_fails_to_start_is_reported,
    ),
    (
        "a_missing_daemon_executable_is_reported",
        a_missing_daemon_executable_is_reported,
    ),
    (
        "a_daemon_that_vanishes_after_starting_is_started_again",
        a_daemon_that_vanishes_after_starting_is_started_again,
    ),
    (
        "a_peer_of_another_uid_is_refused",
        a_peer_of_another_uid_is_refused,
    ),
];

fn run_tests(args: &[String]) -> ExitCode {
    let filters: Vec<&String> = args.iter().filter(|arg| !arg.starts_with('-')).collect();
    if args.iter().any(|arg| arg == "--list") {
        for (name, _) in TESTS {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    let selected: Vec<&Test> = TESTS
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    let filtered_out = TESTS.len() - selected.len();
    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    for (name, test) in &selected {
        let outcome = std::panic::catch_unwind(test);
        println!(
            "test {name} ... {}",
            if outcome.is_ok() { "ok" } else { "FAILED" }
        );
        if outcome.is_err() {
            failed.push(*name);
        }
    }
    if !failed.is_empty() {
        println!("\nfailures:");
        for name in &failed {
            println!("    {name}");
        }
    }
    // libtest's summary line, counts included: `cargo xtask test` sums these lines, and
    // one without counts would leave this suite out of the tally.
    println!(
        "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; {filtered_out} filtered out",
        if failed.is_empty() { "ok" } else { "FAILED" },
        selected.len() - failed.len(),
        failed.len(),
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `qmgrd --spawned` as the contract asks: start the daemon detached, exit 0 once its
/// socket answers.
#[expect(
    clippy::zombie_processes,
    reason = "the daemon outlives this process, which exits right after starting it"
)]
fn fake_qmgrd_spawned() -> ExitCode {
    if let Some(log) = std::env::var_os(SPAWN_LOG_VAR) {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        writeln!(
            log,
            "started by pid {}",
            std::os::unix::process::parent_id()
        )
        .unwrap();
    }
    let paths = StatePaths::from_env().unwrap();
    Command::new(std::env::current_exe().unwrap())
        .arg(SERVE_ARG)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if Client::connect(&paths).is_ok() {
            return ExitCode::SUCCESS;
        }
        thread::sleep(Duration::from_millis(5));
    }
    ExitCode::FAILURE
}

/// The fake daemon: the fake queue on the instance's socket until it has been idle a while.
fn fake_qmgrd_serve() -> ExitCode {
    let paths = StatePaths::from_env().unwrap();
    let handler: Arc<dyn ConnectionHandler> = FakeQueue::new();
    let server = accept_loop(bind_listener(&paths).unwrap(), handler).unwrap();
    let control = server.control();
    let deadline = Instant::now() + PATIENCE * 4;
    while control.idle_for().is_none_or(|idle| idle < FAKE_IDLE_EXIT) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    server.stop();
    std::fs::remove_file(paths.socket_path()).unwrap();
    ExitCode::SUCCESS
}

/// Connects to the qmgrd of uid `owner` at `socket` and prints what happened.
fn connect_and_report(socket: &Path, owner: u32) -> ExitCode {
    match Client::connect_socket_of(socket, owner) {
        Ok(client) => println!("connected to uid {}", client.service_uid()),
        Err(error) => println!("{:#010x} {}", error.hresult.bits(), error.description),
    }
    ExitCode::SUCCESS
}

/// A launcher for the instance in `root` whose qmgrd is `qmgrd`.
fn launcher_for(root: &Path, qmgrd: impl Into<OsString>) -> Launcher {
    instance_env(root)
        .into_iter()
        .fold(Launcher::from_process(), |launcher, (name, value)| {
            launcher.env(name, value)
        })
        .env("QMGRD", qmgrd)
        .env(SPAWN_LOG_VAR, root.join("spawns.log"))
}

fn racing_clients_start_exactly_one_daemon() {
    const CLIENTS: usize = 8;
    let root = tempfile::tempdir().unwrap();
    let paths = paths_in(root.path());
    let launcher = launcher_for(root.path(), std::env::current_exe().unwrap());
    let start = Arc::new(Barrier::new(CLIENTS));
    let racers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (paths, launcher, start) = (paths.clone(), launcher.clone(), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                let client = Client::connect_or_spawn_with(&paths, launcher).unwrap();
                assert_eq!(client.ping().unwrap(), FAKE_VERSION);
                client
            })
        })
        .collect();
    let clients: Vec<Client> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    let spawns = std::fs::read_to_string(root.path().join("spawns.log")).unwrap();
    assert_eq!(spawns.lines().count(), 1, "{spawns}");
    // A client of an already running daemon starts nothing.
    let late = Client::connect_or_spawn_with(&paths, launcher).unwrap();
    late.ping().unwrap();
    let spawns = std::fs::read_to_string(root.path().join("spawns.log")).unwrap();
    assert_eq!(spawns.lines().count(), 1, "{spawns}");
    assert!(paths.runtime_dir().join("qmgrd.lock").exists());

    // Stop the daemon: it exits once idle, removing its socket. (Probing by connecting
    // would keep it busy.)
    drop(clients);
    drop(late);
    let deadline = Instant::now() + PATIENCE;
    while paths.socket_path().exists() {
        assert!(Instant::now() < deadline, "the fake daemon did not exit");
        thread::sleep(Duration::from_millis(50));
    }
    assert!(Client::connect(&paths).is_err());
}

fn a_daemon_that_fails_to_start_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let paths = paths_in(root.path());
    let failing = root.path().join("failing-qmgrd");
    std::fs::write(&failing, "#!/bin/sh\nexit 3\n").unwrap();
    std::fs::set_permissions(&failing, std::fs::Permissions::from_mode(0o755)).unwrap();
    let error =
        Client::connect_or_spawn_with(&paths, launcher_for(root.path(), &failing)).unwrap_err();
    assert_eq!(error.hresult, hresult::QM_E_SERVICE_UNAVAILABLE);
    for expected in [
        failing.display().to_string(),
        "exit status: 3".to_owned(),
        paths.log_file().display().to_string(),
    ] {
        assert!(error.description.contains(&expected), "{expected}: {error}");
    }
}

/// A qmgrd that reports success and is gone before the client connects (killed at once):
/// the client sees nobody holds the store and starts another, rather than waiting for a
/// service that will never answer.
fn a_daemon_that_vanishes_after_starting_is_started_again() {
    let root = tempfile::tempdir().unwrap();
    let paths = paths_in(root.path());
    let marker = root.path().join("vanished-once");
    let vanishing = root.path().join("vanishing-qmgrd");
    std::fs::write(
        &vanishing,
        format!(
            "#!/bin/sh\nif [ ! -e '{}' ]; then : > '{}'; exit 0; fi\nexec '{}' \"$@\"\n",
            marker.display(),
            marker.display(),
            std::env::current_exe().unwrap().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&vanishing, std::fs::Permissions::from_mode(0o755)).unwrap();
    let client = Client::connect_or_spawn_with(&paths, launcher_for(root.path(), &vanishing))
        .expect("a second start after the first vanished");
    assert_eq!(client.ping().unwrap(), FAKE_VERSION);
    assert!(
        marker.exists(),
        "the first start reported success and served nothing"
    );
    let spawns = std::fs::read_to_string(root.path().join("spawns.log")).unwrap();
    assert_eq!(
        spawns.lines().count(),
        1,
        "one real start after the vanished one: {spawns}"
    );
}

fn a_missing_daemon_executable_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let paths = paths_in(root.path());
    let missing = root.path().join("no-such-qmgrd");
    let error =
        Client::connect_or_spawn_with(&paths, launcher_for(root.path(), &missing)).unwrap_err();
    assert_eq!(error.hresult, hresult::QM_E_SERVICE_UNAVAILABLE);
    assert!(
        error.description.contains(&missing.display().to_string()),
        "{error}"
    );
    assert!(error.description.contains("QMGRD"), "{error}");
}

/// A way to run a program as uid/gid 65534: setpriv or runuser.
fn as_nobody(program: &Path) -> Option<Command> {
    let find = |name: &str| {
        ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
            .iter()
            .map(|dir| Path::new(dir).join(name))
            .find(|path| path.exists())
    };
    if let Some(setpriv) = find("setpriv") {
        let mut command = Command::new(setpriv);
        command
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(program);
        return Some(command);
    }
    let runuser = find("runuser")?;
    let mut command = Command::new(runuser);
    command.args(["-u", "nobody", "--"]).arg(program);
    Some(command)
}

fn a_peer_of_another_uid_is_refused() {
    if !rustix::process::geteuid().is_root() {
        println!(
            "skipped a_peer_of_another_uid_is_refused: needs root to run a client as another uid"
        );
        return;
    }
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // A copy of this binary that the other uid can run wherever the build directory is.
    let client_program: PathBuf = root.path().join("client");
    std::fs::copy(std::env::current_exe().unwrap(), &client_program).unwrap();
    std::fs::set_permissions(&client_program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let Some(mut command) = as_nobody(&client_program) else {
        println!("skipped a_peer_of_another_uid_is_refused: neither setpriv nor runuser exists");
        return;
    };
    // A socket the other uid can reach, so that the uid check is what stops it.
    let socket = root.path().join("qmgrd.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let queue = FakeQueue::new();
    let handler: Arc<dyn ConnectionHandler> = queue.clone();
    let server = accept_loop(listener, handler).unwrap();

    // The client means to reach root's service, so its own checks pass and the
    // service's uid check is what refuses it.
    let output = command
        .arg(CLIENT_ARG)
        .arg(&socket)
        .arg("0")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        report.starts_with(&format!("{:#010x}", hresult::E_ACCESSDENIED.bits())),
        "{report}"
    );
    assert!(report.contains("uid 65534 may not use it"), "{report}");
    // The service logs the refusal after writing it: the client may read it first.
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let failures = queue.failures();
        if failures
            .iter()
            .any(|f| f.starts_with("refused") && f.contains("uid 65534"))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{failures:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(queue.calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Our own uid is still served.
    assert_eq!(
        Client::connect_socket(&socket).unwrap().ping().unwrap(),
        FAKE_VERSION
    );
    server.stop();
}
