//! A private qmgrd for the daemon tests: its own state, config and runtime directories, the
//! qmgrd built with these tests, and a daemon stopped when the instance is dropped.

#![allow(
    dead_code,
    reason = "each test binary uses its own part of this module"
)]

use std::ffi::OsString;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use qmgr_core::paths::StatePaths;
use qmgr_core::service::{JobView, QueueServiceExt};
use qmgr_core::{Guid, JobState, JobType};
use qmgr_ipc::{Client, Launcher};

/// A private qmgr instance, plus whatever extra environment the test gives the daemon.
pub struct Instance {
    root: tempfile::TempDir,
    extra_env: Vec<(OsString, OsString)>,
}

impl Instance {
    pub fn new() -> Self {
        Self::with_env(Vec::new())
    }

    /// An instance whose daemon also gets `extra_env`.
    pub fn with_env(extra_env: Vec<(OsString, OsString)>) -> Self {
        Self::in_dir(tempfile::tempdir().unwrap(), extra_env)
    }

    /// An instance inside `root` (a directory the test prepared).
    pub fn in_dir(root: tempfile::TempDir, extra_env: Vec<(OsString, OsString)>) -> Self {
        Self { root, extra_env }
    }

    /// An instance whose config file holds `text`.
    pub fn with_config(text: &str) -> Self {
        let instance = Self::new();
        let config = instance.dir("config/qmgr");
        std::fs::write(config.join("config.toml"), text).unwrap();
        instance
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The variables that make a process use this instance (and find the qmgrd under test).
    pub fn env(&self) -> Vec<(OsString, OsString)> {
        let mut env = env_of(self.root.path());
        env.extend(self.extra_env.iter().cloned());
        env
    }

    pub fn paths(&self) -> StatePaths {
        let env = self.env();
        StatePaths::from_env_with(|name| {
            env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
        })
        .unwrap()
    }

    /// A client of this instance's qmgrd, starting it if needed; panics with the daemon's
    /// log when it cannot be reached.
    pub fn client(&self) -> Client {
        let launcher = self
            .env()
            .into_iter()
            .fold(Launcher::from_process(), |l, (n, v)| l.env(n, v));
        Client::connect_or_spawn_with(&self.paths(), launcher).unwrap_or_else(|error| {
            panic!("cannot reach qmgrd: {error}\nqmgrd.log:\n{}", self.log())
        })
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.paths().log_file()).unwrap_or_default()
    }

    /// A directory under the instance's root (created).
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.root.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Where the tests download to (created).
    pub fn downloads(&self) -> PathBuf {
        self.dir("downloads")
    }

    /// A path in the downloads directory, as a string.
    pub fn path(&self, name: &str) -> String {
        self.downloads().join(name).to_string_lossy().into_owned()
    }

    /// Pids of the qmgrd processes serving this instance.
    pub fn daemons(&self) -> Vec<i32> {
        let mine = format!(
            "XDG_STATE_HOME={}",
            self.root.path().join("state").display()
        );
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|entry| {
                let pid = entry.file_name().to_string_lossy().parse::<i32>().ok()?;
                let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
                let environ = std::fs::read(entry.path().join("environ")).ok()?;
                let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
                let zombie = status
                    .lines()
                    .any(|l| l.starts_with("State:") && l.contains('Z'));
                let ours = environ.split(|b| *b == 0).any(|var| var == mine.as_bytes());
                (comm.trim() == "qmgrd" && ours && !zombie).then_some(pid)
            })
            .collect()
    }

    /// Sends `signal` (`-TERM`, `-KILL`) to this instance's qmgrd and waits until it is
    /// gone and nothing accepts connections on its socket any more.
    pub fn kill_daemons(&self, signal: &str) {
        for pid in self.daemons() {
            let _ = Command::new("kill")
                .args([signal, &pid.to_string()])
                .status();
        }
        // A killed process lingers until its last thread is gone, and so does its listening
        // socket.
        let socket = self.paths().socket_path();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.daemons().is_empty() || UnixStream::connect(&socket).is_ok() {
            assert!(Instant::now() < deadline, "qmgrd did not stop");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops this instance's qmgrd with SIGTERM (it writes what it has) and waits until it
    /// is gone, so its store can be opened.
    pub fn stop(&self) {
        self.kill_daemons("-TERM");
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The variables that make a process use the instance in `root`.
pub fn env_of(root: &Path) -> Vec<(OsString, OsString)> {
    vec![
        ("XDG_STATE_HOME".into(), root.join("state").into()),
        ("XDG_CONFIG_HOME".into(), root.join("config").into()),
        ("XDG_RUNTIME_DIR".into(), root.join("run").into()),
        ("QMGRD".into(), env!("CARGO_BIN_EXE_qmgrd").into()),
        // No system bus: a test never meets the machine's NetworkManager (the metered
        // tests give their own bus).
        (
            "DBUS_SYSTEM_BUS_ADDRESS".into(),
            format!("unix:path={}", root.join("no-system-bus").display()).into(),
        ),
    ]
}

/// The paths of the instance in `root`.
pub fn paths_of(root: &Path) -> StatePaths {
    let env = env_of(root);
    StatePaths::from_env_with(|name| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()))
        .unwrap()
}

/// A client of the instance in `root` (from a child process that knows only the root),
/// starting its qmgrd if needed.
pub fn client_of(root: &Path) -> Client {
    let launcher = env_of(root)
        .into_iter()
        .fold(Launcher::from_process(), |l, (n, v)| l.env(n, v));
    let paths = paths_of(root);
    Client::connect_or_spawn_with(&paths, launcher).unwrap_or_else(|error| {
        let log = std::fs::read_to_string(paths.log_file()).unwrap_or_default();
        panic!("cannot reach qmgrd: {error}\nqmgrd.log:\n{log}")
    })
}

/// How long a job may take to reach a state before a test gives up (a guard against
/// hanging, not a timing assertion).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Polls job `id` until `done` accepts it; panics naming `what` after [`PATIENCE`].
pub fn wait_until(
    client: &Client,
    id: Guid,
    what: &str,
    done: impl Fn(&JobView) -> bool,
) -> JobView {
    wait_until_within(client, id, what, PATIENCE, done)
}

/// [`wait_until`] with a patience of `limit`, for tests that move more than usual.
pub fn wait_until_within(
    client: &Client,
    id: Guid,
    what: &str,
    limit: Duration,
    done: impl Fn(&JobView) -> bool,
) -> JobView {
    let deadline = Instant::now() + limit;
    loop {
        let view = client.job(id).unwrap();
        if done(&view) {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "waiting for {what}; job is {:?} ({:?})",
            view.job.state,
            view.job.error
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until job `id` is in `state` (or in ERROR, which ends the wait for any other state).
pub fn wait_for_state(client: &Client, id: Guid, state: JobState) -> JobView {
    wait_for_state_within(client, id, state, PATIENCE)
}

/// [`wait_for_state`] with a patience of `limit`.
pub fn wait_for_state_within(
    client: &Client,
    id: Guid,
    state: JobState,
    limit: Duration,
) -> JobView {
    wait_until_within(client, id, &format!("{state:?}"), limit, |view| {
        view.job.state == state || (view.job.state == JobState::Error && state != JobState::Error)
    })
}

/// A suspended download job of one file.
pub fn one_file_job(client: &Client, remote: &str, local: &Path) -> Guid {
    let id = client.create_job("one file", JobType::Download).unwrap();
    client
        .add_file(id, remote, &local.to_string_lossy())
        .unwrap();
    id
}
