//! A qmgr instance of its own for one program run: fresh XDG state, config and runtime
//! directories (plus a work directory), and, when the run is over, the qmgrd the
//! library started in it stopped with SIGTERM.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// How long a stopped qmgrd may take to exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Instance {
    root: PathBuf,
}

impl Instance {
    /// A new instance under the system's temporary directory (short paths keep the socket
    /// path within `sun_path`).
    pub fn create(label: &str) -> Result<Instance> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "qmgr-c-{}-{}-{label}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        for dir in ["state", "config", "run", "work"] {
            let path = root.join(dir);
            fs::create_dir_all(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
        }
        let run = root.join("run");
        fs::set_permissions(&run, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private", run.display()))?;
        Ok(Instance { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn work_dir(&self) -> PathBuf {
        self.root.join("work")
    }

    /// Points `command` at this instance and at the qmgrd to start.
    pub fn configure(&self, command: &mut Command, qmgrd: &Path) {
        command
            .env("XDG_STATE_HOME", self.root.join("state"))
            .env("XDG_CONFIG_HOME", self.root.join("config"))
            .env("XDG_RUNTIME_DIR", self.root.join("run"))
            // Root's listing of every user's jobs looks here, not at real users' daemons.
            .env("QMGR_USER_RUNTIME_ROOT", self.root.join("users"))
            .env("QMGRD", qmgrd);
    }

    /// Stops the instance's qmgrd, if one runs (its pid is in the store lock).
    pub fn stop_daemon(&self) -> Result<()> {
        let lock = self.root.join("state/qmgr/store.lock");
        let Ok(text) = fs::read_to_string(&lock) else {
            return Ok(());
        };
        let Ok(pid) = text.trim().parse::<libc::pid_t>() else {
            return Ok(());
        };
        if pid <= 0 || !is_running(pid) {
            return Ok(());
        }
        // SAFETY: kill has no memory preconditions; `pid` is the qmgrd this instance's
        // program started (named by its own store lock).
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot stop qmgrd (pid {pid})"));
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while is_running(pid) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "qmgrd (pid {pid}) did not exit within {} s of SIGTERM",
                STOP_TIMEOUT.as_secs()
            );
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Stops the daemon and removes the directories.
    pub fn remove(self) -> Result<()> {
        self.stop_daemon()?;
        fs::remove_dir_all(&self.root)
            .with_context(|| format!("cannot remove {}", self.root.display()))
    }
}

/// Whether `pid` is a live process (not a zombie: a detached qmgrd's parent is init).
fn is_running(pid: libc::pid_t) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state letter follows the parenthesised command name.
    status
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
        .is_some_and(|state| state != 'Z' && state != 'X')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_has_private_runtime_and_fresh_directories() {
        let instance = Instance::create("unit").unwrap();
        let mode = fs::metadata(instance.root().join("run"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(instance.work_dir().is_dir());
        let mut command = Command::new("true");
        instance.configure(&mut command, Path::new("/opt/qmgrd"));
        let state = command
            .get_envs()
            .find(|(name, _)| *name == "XDG_STATE_HOME")
            .and_then(|(_, value)| value.map(Path::new));
        assert_eq!(state, Some(instance.root().join("state").as_path()));
        let root = instance.root().to_path_buf();
        instance.remove().unwrap();
        assert!(!root.exists());
    }

    #[test]
    fn this_process_runs_and_a_stale_lock_is_ignored() {
        assert!(is_running(
            libc::pid_t::try_from(std::process::id()).unwrap()
        ));
        let instance = Instance::create("stale").unwrap();
        fs::create_dir_all(instance.root().join("state/qmgr")).unwrap();
        fs::write(instance.root().join("state/qmgr/store.lock"), "999999999\n").unwrap();
        instance.stop_daemon().unwrap();
        instance.remove().unwrap();
    }
}
