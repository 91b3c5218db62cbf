//! The `qmgr` CLI in a private instance (its own XDG directories, its own qmgrd), and the
//! cost of its qmgrd, which does the transfer in a process the CLI does not wait for.

use std::ffi::OsString;
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::bench::run::send_signal;

#[derive(Debug)]
pub struct QmgrInstance {
    qmgr: PathBuf,
    qmgrd: PathBuf,
    root: PathBuf,
}

impl QmgrInstance {
    pub fn new(qmgr: PathBuf, qmgrd: PathBuf, root: PathBuf) -> Result<QmgrInstance> {
        fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
        Ok(QmgrInstance { qmgr, qmgrd, root })
    }

    /// `qmgr` with this instance's environment.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.qmgr);
        command.envs(self.env());
        command
    }

    fn env(&self) -> Vec<(OsString, OsString)> {
        vec![
            ("XDG_STATE_HOME".into(), self.root.join("state").into()),
            ("XDG_CONFIG_HOME".into(), self.root.join("config").into()),
            ("XDG_RUNTIME_DIR".into(), self.root.join("run").into()),
            ("QMGRD".into(), self.qmgrd.clone().into()),
        ]
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

/// A `kB` line of /proc/<pid>/status.
fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {field} in {path}"))
}
