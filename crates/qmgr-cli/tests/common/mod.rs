//! A private qmgr instance for driving the real `qmgr` binary: its own state, config and
//! runtime directories, the qmgrd built beside `qmgr`, and a daemon stopped at the end.

#![allow(
    dead_code,
    reason = "each test binary uses its own part of this module"
)]

use std::ffi::OsString;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use qmgr_core::paths::StatePaths;
use qmgr_ipc::Client;
use serde_json::Value;

pub const QMGR: &str = env!("CARGO_BIN_EXE_qmgr");

/// The qmgrd next to the qmgr under test; a clear failure if it was not built.
pub fn qmgrd() -> PathBuf {
    let path = Path::new(QMGR).with_file_name("qmgrd");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p qmgr-service --bin qmgrd` before these tests",
        path.display()
    );
    path
}

/// What a qmgr run returned.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(output: &Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts the exit code, showing everything qmgr said when it differs.
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("not JSON ({error}):\n{}", self.stdout))
    }
}

pub struct Instance {
    root: tempfile::TempDir,
}

impl Instance {
    pub fn new() -> Instance {
        qmgrd();
        let instance = Instance {
            root: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(instance.downloads()).unwrap();
        instance
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn env(&self) -> Vec<(OsString, OsString)> {
        let root = self.root.path();
        vec![
            ("XDG_STATE_HOME".into(), root.join("state").into()),
            ("XDG_CONFIG_HOME".into(), root.join("config").into()),
            ("XDG_RUNTIME_DIR".into(), root.join("run").into()),
            ("QMGRD".into(), qmgrd().into()),
        ]
    }

    pub fn paths(&self) -> StatePaths {
        let env = self.env();
        StatePaths::from_env_with(|name| {
            env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
        })
        .unwrap()
    }

    /// A direct client of this instance's qmgrd (for what the CLI cannot do, such as
    /// creating a legacy group).
    pub fn client(&self) -> Client {
        Client::connect(&self.paths()).expect("qmgrd runs (a qmgr command started it)")
    }

    pub fn downloads(&self) -> PathBuf {
        self.root.path().join("downloads")
    }

    pub fn write_config(&self, text: &str) {
        let dir = self.root.path().join("config/qmgr");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), text).unwrap();
    }

    /// `qmgr ARGS` with this instance's environment, run in the downloads directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(QMGR);
        command
            .args(args)
            .envs(self.env())
            .current_dir(self.downloads())
            .stdin(Stdio::null());
        command
    }

    pub fn qmgr(&self, args: &[&str]) -> Run {
        Run::from_output(&self.command(args).output().unwrap())
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Every job of the instance, as `list --json` gives them.
    pub fn jobs(&self) -> Vec<Value> {
        let list = self.qmgr(&["list", "--json"]).expect(0).json();
        list["jobs"].as_array().unwrap().clone()
    }

    /// `info --json` of `job` until `done` accepts it.
    #[track_caller]
    pub fn wait_for(&self, job: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let info = self.qmgr(&["info", job, "--json"]).expect(0).json();
            if done(&info) {
                return info;
            }
            assert!(
                Instant::now() < deadline,
                "job {job} never became {what}: {info:#}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The pid of this instance's qmgrd, if one runs.
    pub fn daemon_pid(&self) -> Option<u32> {
        let lock = self.root.path().join("state/qmgr/store.lock");
        let pid: u32 = std::fs::read_to_string(lock).ok()?.trim().parse().ok()?;
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let zombie = status
            .lines()
            .any(|line| line.starts_with("State:") && line.contains('Z'));
        (name.trim() == "qmgrd" && !zombie).then_some(pid)
    }

    /// Stops the daemon with SIGTERM and waits until its socket is gone.
    pub fn stop_daemon(&self) {
        if let Some(pid) = self.daemon_pid() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let socket = self.paths().socket_path();
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.daemon_pid().is_some() || UnixStream::connect(&socket).is_ok() {
            if Instant::now() > deadline {
                eprintln!("qmgrd of {} did not stop", self.root.path().display());
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop_daemon();
    }
}

/// The plain (lower-case, brace-less) text of a GUID as `--json` prints it (`{ABC…}`).
pub fn plain_id(id: &Value) -> String {
    id.as_str()
        .unwrap()
        .trim_matches(['{', '}'])
        .to_ascii_lowercase()
}
