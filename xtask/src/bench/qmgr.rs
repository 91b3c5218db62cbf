//! The `qmgr` CLI in a private instance (its own XDG directories, its own qmgrd), and the
//! cost of its qmgrd, which does the transfer in a process the CLI does not wait for.

use std::ffi::OsString;
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::bench::run::send_signal;

/// How long a qmgrd may take to accept connections, or to exit after SIGTERM.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct QmgrInstance {
    qmgr: PathBuf,
    qmgrd: PathBuf,
    root: PathBuf,
    /// The qmgrd [`QmgrInstance::start_daemon`] started, if it runs.
    daemon: Option<Child>,
    /// More environment for qmgr and qmgrd (e.g. the CA a benchmark's https server uses).
    extra_env: Vec<(OsString, OsString)>,
}

impl QmgrInstance {
    pub fn new(qmgr: PathBuf, qmgrd: PathBuf, root: PathBuf) -> Result<QmgrInstance> {
        fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
        // The runtime directory holds the socket: qmgr insists that only its user can enter.
        let run = root.join("run");
        fs::create_dir_all(&run).with_context(|| format!("cannot create {}", run.display()))?;
        fs::set_permissions(&run, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private", run.display()))?;
        Ok(QmgrInstance {
            qmgr,
            qmgrd,
            root,
            daemon: None,
            extra_env: Vec::new(),
        })
    }

    /// Sets `name` in the environment of this instance's qmgr and qmgrd.
    pub fn set_env(&mut self, name: &str, value: impl Into<OsString>) {
        self.extra_env.push((name.into(), value.into()));
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `qmgr` with this instance's environment.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.qmgr);
        command.envs(self.env());
        command
    }

    /// Points any program that uses qmgr (a C program through libqmgr) at this instance.
    pub fn configure(&self, command: &mut Command) {
        command.envs(self.env());
    }

    /// Writes the instance's config.toml (read by the next qmgrd to start).
    pub fn write_config(&self, text: &str) -> Result<()> {
        let dir = self.root.join("config/qmgr");
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join("config.toml");
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// The socket qmgrd serves.
    pub fn socket_path(&self) -> PathBuf {
        self.root.join("run/qmgr/qmgrd.sock")
    }

    /// Starts `qmgrd --foreground` (logging into the instance's directory) and waits until
    /// it accepts connections, which it does only once it has loaded the whole store; the
    /// time that took.
    pub fn start_daemon(&mut self) -> Result<Duration> {
        if self.daemon.is_some() || self.daemon_pid().is_some() {
            bail!("qmgrd already runs in {}", self.root.display());
        }
        let log_path = self.root.join("qmgrd.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let socket = self.socket_path();
        let started = Instant::now();
        let mut child = Command::new(&self.qmgrd)
            .arg("--foreground")
            .envs(self.env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", self.qmgrd.display()))?;
        loop {
            if UnixStream::connect(&socket).is_ok() {
                let took = started.elapsed();
                self.daemon = Some(child);
                return Ok(took);
            }
            if let Some(status) = child.try_wait().context("waiting for qmgrd")? {
                bail!(
                    "qmgrd exited at start ({status}):\n{}",
                    fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            if started.elapsed() > DAEMON_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                bail!("qmgrd did not open {} in time", socket.display());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Stops the qmgrd of [`QmgrInstance::start_daemon`] with SIGTERM and reaps it.
    pub fn stop_daemon(&mut self) -> Result<()> {
        let Some(mut child) = self.daemon.take() else {
            return Ok(());
        };
        send_signal(child.id(), libc::SIGTERM)?;
        let deadline = Instant::now() + DAEMON_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().context("waiting for qmgrd")? {
                if !status.success() {
                    bail!("qmgrd exited with {status} after SIGTERM");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("qmgrd did not stop within {DAEMON_TIMEOUT:?} of SIGTERM; killed it");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn env(&self) -> Vec<(OsString, OsString)> {
        vec![
            ("XDG_STATE_HOME".into(), self.root.join("state").into()),
            ("XDG_CONFIG_HOME".into(), self.root.join("config").into()),
            ("XDG_RUNTIME_DIR".into(), self.root.join("run").into()),
            ("QMGRD".into(), self.qmgrd.clone().into()),
        ]
        .into_iter()
        .chain(self.extra_env.iter().cloned())
        .collect()
    }

    /// The pid of the running qmgrd, which it writes into its store lock.
    pub fn daemon_pid(&self) -> Option<u32> {
        let lock = self.root.join("state/qmgr/store.lock");
        let pid: u32 = fs::read_to_string(lock).ok()?.trim().parse().ok()?;
        let alive = fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|status| {
            !status
                .lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
        });
        alive.then_some(pid)
    }
}

impl Drop for QmgrInstance {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            if let Err(error) = self.stop_daemon() {
                eprintln!("{error:#}");
            }
            return;
        }
        let Some(pid) = self.daemon_pid() else {
            return;
        };
        if send_signal(pid, libc::SIGTERM).is_err() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.daemon_pid() == Some(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.daemon_pid() == Some(pid) {
            eprintln!("qmgrd (pid {pid}) did not stop on SIGTERM; killing it");
            let _ = send_signal(pid, libc::SIGKILL);
        }
    }
}

/// User plus system time a process has used so far (all its threads).
#[expect(
    clippy::cast_precision_loss,
    reason = "clock ticks of a benchmark run are far below 2^52"
)]
pub fn process_cpu(pid: u32) -> Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // Fields after the command name, which is in parentheses and may contain spaces:
    // state is field 3, utime 14 and stime 15.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("unexpected {path}: {stat}"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| -> Result<u64> {
        fields
            .get(index - 3)
            .and_then(|field| field.parse().ok())
            .with_context(|| format!("no field {index} in {path}: {stat}"))
    };
    let total = ticks(14)? + ticks(15)?;
    Ok(Duration::from_secs_f64(
        total as f64 / clock_ticks_per_second(),
    ))
}

#[expect(
    clippy::cast_precision_loss,
    reason = "the clock tick rate is a small constant"
)]
fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// Starts a new peak-memory measurement for `pid` (writing 5 to clear_refs resets VmHWM).
pub fn reset_peak_rss(pid: u32) -> Result<()> {
    let path = format!("/proc/{pid}/clear_refs");
    fs::write(&path, "5").with_context(|| format!("cannot write {path}"))
}

/// The peak resident set (VmHWM) of `pid` since it started or since [`reset_peak_rss`].
pub fn peak_rss(pid: u32) -> Result<u64> {
    status_kib(pid, "VmHWM:").map(|kib| kib * 1024)
}

/// The resident set (VmRSS) of `pid` now.
pub fn resident(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS:").map(|kib| kib * 1024)
}

/// A `kB` line of `/proc/<pid>/status`.
fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field} in {path}"))
}
