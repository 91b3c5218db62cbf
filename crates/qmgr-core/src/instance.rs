//! One user's qmgr instance: where it lives, how it is configured, and the lock that
//! makes one queue manager its only user.
//!
//! `qmgrd`, the `qmgr` command and libqmgr (talking to qmgrd or hosting the queue in
//! process) all find their instance here, so they agree on every path, with the
//! config's `state_dir` applied, and all apply the same trust rules ([`crate::trust`])
//! before touching anything.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::{ErrorContext, QmgrError, Result};
use crate::hresult;
use crate::paths::StatePaths;
use crate::trust::{self, Access};

/// The file in the state directory that the queue manager holds locked (and in which
/// it records its pid) for as long as it serves the store.
pub const STORE_LOCK_FILE: &str = "store.lock";

/// A located instance: its paths and its configuration.
#[derive(Clone, Debug)]
pub struct Instance {
    paths: StatePaths,
    config: Config,
}

impl Instance {
    /// Finds the instance of this process's environment.
    pub fn locate() -> Result<Instance> {
        Self::at(StatePaths::from_env()?)
    }

    /// Finds the instance with `lookup` standing in for the environment (libqmgr passes
    /// `secure_getenv`).
    pub fn locate_with(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Instance> {
        Self::at(StatePaths::from_env_with(lookup)?)
    }

    /// The instance whose directories are `paths`: reads the configuration (refusing one
    /// that another user could have written) and applies its `state_dir`.
    pub fn at(paths: StatePaths) -> Result<Instance> {
        let config = Config::load(&paths.config_file())?;
        let paths = match &config.state_dir {
            Some(dir) => paths.with_state_dir(dir.clone()),
            None => paths,
        };
        Ok(Instance { paths, config })
    }

    /// The instance's directories and files.
    pub fn paths(&self) -> &StatePaths {
        &self.paths
    }

    /// The instance's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The paths and the configuration, taken apart.
    pub fn into_parts(self) -> (StatePaths, Config) {
        (self.paths, self.config)
    }

    /// The store lock's path: `<state dir>/store.lock`.
    pub fn store_lock_file(&self) -> PathBuf {
        self.paths.state_dir().join(STORE_LOCK_FILE)
    }

    /// Creates the state directory (0700) or checks the existing one: reached through
    /// directories only root and we can change, ours, not writable by others; made 0700.
    /// The first thing a queue manager does, before it writes anything there.
    pub fn prepare_state_dir(&self) -> Result<()> {
        trust::prepare_private_dir(self.paths.state_dir(), "state directory")
    }

    /// Takes the store's lock: prepares the state directory, then locks `store.lock`
    /// (never through a symbolic link) and records our pid in it. Fails with
    /// `HRESULT_ALREADY_EXISTS`, naming the holder's pid, when another queue manager
    /// (a qmgrd, or a program hosting the queue in process) serves this store.
    pub fn lock(&self) -> Result<StoreLock> {
        self.prepare_state_dir()?;
        let path = self.store_lock_file();
        let mut file = trust::open_private_file(&path, Access::ReadWriteCreate, "store lock")?;
        if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(QmgrError::new(
                hresult::HRESULT_ALREADY_EXISTS,
                ErrorContext::GeneralQueueManager,
                format!(
                    "another queue manager (qmgrd, pid {}) already serves the store in {}; \
                     stop it (`qmgr daemon stop`) or use another state directory",
                    holder.trim(),
                    self.paths.state_dir().display()
                ),
            ));
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = writeln!(file, "{}", std::process::id());
        Ok(StoreLock { _file: file, path })
    }

    /// The pid recorded in the store lock, if a process holds the lock now.
    pub fn lock_holder(&self) -> Option<u32> {
        let path = self.store_lock_file();
        let file = trust::open_private_file(&path, Access::Read, "store lock").ok()?;
        // A lock we can take is held by nobody.
        if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared).is_ok() {
            return None;
        }
        let mut text = String::new();
        (&file).read_to_string(&mut text).ok()?;
        text.trim().parse().ok()
    }
}

/// Held for as long as a queue manager serves the store.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    path: PathBuf,
}

impl StoreLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn isolated(root: &Path) -> Instance {
        Instance::at(StatePaths::isolated(root)).unwrap()
    }

    #[test]
    fn the_state_dir_key_moves_the_store() {
        let root = tempfile::tempdir().unwrap();
        let elsewhere = root.path().join("elsewhere");
        std::fs::create_dir_all(root.path().join("config")).unwrap();
        std::fs::write(
            root.path().join("config/config.toml"),
            format!("state_dir = {:?}\n", elsewhere.display().to_string()),
        )
        .unwrap();
        let instance = isolated(root.path());
        assert_eq!(instance.paths().state_dir(), elsewhere);
        assert_eq!(instance.store_lock_file(), elsewhere.join("store.lock"));
    }

    #[test]
    fn one_lock_holder_at_a_time() {
        let root = tempfile::tempdir().unwrap();
        let instance = isolated(&root.path().join("state"));
        assert_eq!(instance.lock_holder(), None);
        let lock = instance.lock().unwrap();
        assert_eq!(instance.lock_holder(), Some(std::process::id()));
        let error = instance.lock().unwrap_err();
        assert_eq!(error.hresult, hresult::HRESULT_ALREADY_EXISTS);
        assert!(
            error
                .description
                .contains(&format!("pid {}", std::process::id())),
            "{error}"
        );
        let mode = std::fs::metadata(lock.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(lock);
        assert_eq!(instance.lock_holder(), None);
        assert!(instance.lock().is_ok());
    }

    #[test]
    fn a_symlinked_store_lock_is_refused_and_its_target_untouched() {
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let victim = root.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, state.join("store.lock")).unwrap();
        let error = isolated(&state).lock().unwrap_err();
        assert_eq!(error.hresult, hresult::E_ACCESSDENIED);
        assert!(error.description.contains("symbolic link"), "{error}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }
}
