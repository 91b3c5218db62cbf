//! Where qmgr keeps its state, its configuration and its runtime socket.
//!
//! | what | where | without the variable |
//! |---|---|---|
//! | store, daemon log | `$XDG_STATE_HOME/qmgr/` | `$HOME/.local/state/qmgr/` |
//! | configuration | `$XDG_CONFIG_HOME/qmgr/config.toml` | `$HOME/.config/qmgr/config.toml` |
//! | client certificate stores | `$XDG_CONFIG_HOME/qmgr/certs/<StoreName>/` | `$HOME/.config/qmgr/certs/<StoreName>/` |
//! | socket and lock | `$XDG_RUNTIME_DIR/qmgr/` | `<state dir>/run/` |
//!
//! As the XDG Base Directory specification asks, a variable that is empty or holds a
//! relative path counts as unset. Pointing the variables at a fresh directory gives a
//! fully isolated instance. Nothing here creates directories: the daemon does that, with
//! the modes it needs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::{QmgrError, Result};

/// qmgr's directory under each XDG base directory.
pub const APP_DIR: &str = "qmgr";
const CONFIG_FILE_NAME: &str = "config.toml";
const CERTS_DIR_NAME: &str = "certs";
const RUNTIME_FALLBACK_DIR_NAME: &str = "run";
/// The daemon's socket in its runtime directory.
pub const SOCKET_FILE_NAME: &str = "qmgrd.sock";
const LOG_FILE_NAME: &str = "qmgrd.log";

/// The directories and files of one qmgr instance, resolved from the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatePaths {
    state_dir: PathBuf,
    config_dir: PathBuf,
    runtime: RuntimeDir,
}

/// The runtime directory, remembering whether it came from `XDG_RUNTIME_DIR` or is the
/// fallback inside the state directory (which moves when the state directory does).
#[derive(Clone, Debug, PartialEq, Eq)]
enum RuntimeDir {
    FromEnvironment(PathBuf),
    InsideStateDir,
}

impl StatePaths {
    /// Resolves the paths from the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_env_with(|name| std::env::var_os(name))
    }

    /// Resolves the paths with `lookup` standing in for the environment: it receives a
    /// variable name (`XDG_STATE_HOME`, `XDG_CONFIG_HOME`, `XDG_RUNTIME_DIR`, `HOME`) and
    /// returns its value, if set.
    ///
    /// Fails when a directory has to be derived from `HOME` and `HOME` is unset, empty or
    /// relative.
    pub fn from_env_with(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Self> {
        let absolute = |name: &str| lookup(name).map(PathBuf::from).filter(|p| p.is_absolute());
        let under_home = |xdg_name: &str, default_below_home: &str| {
            absolute(xdg_name)
                .or_else(|| absolute("HOME").map(|home| home.join(default_below_home)))
                .map(|base| base.join(APP_DIR))
                .ok_or_else(|| {
                    QmgrError::internal(format!(
                        "cannot locate qmgr's directories: {xdg_name} is not set to an absolute \
                         path and neither is HOME (its default is $HOME/{default_below_home})"
                    ))
                })
        };

        let state_dir = under_home("XDG_STATE_HOME", ".local/state")?;
        let config_dir = under_home("XDG_CONFIG_HOME", ".config")?;
        let runtime = match absolute("XDG_RUNTIME_DIR") {
            Some(base) => RuntimeDir::FromEnvironment(base.join(APP_DIR)),
            None => RuntimeDir::InsideStateDir,
        };
        Ok(Self {
            state_dir,
            config_dir,
            runtime,
        })
    }

    /// An instance kept entirely inside `root`, for tests and benchmarks: the store in
    /// `root` itself, the configuration (and certificate stores) in `root/config`, the
    /// runtime directory in `root/run`. The environment plays no part.
    pub fn isolated(root: &Path) -> Self {
        Self {
            state_dir: root.to_owned(),
            config_dir: root.join("config"),
            runtime: RuntimeDir::InsideStateDir,
        }
    }

    /// The same paths with the store in `state_dir` instead (the `state_dir` config key).
    /// A runtime directory that was the fallback inside the old state directory moves
    /// along; one from `XDG_RUNTIME_DIR` stays.
    #[must_use]
    pub fn with_state_dir(self, state_dir: PathBuf) -> Self {
        Self { state_dir, ..self }
    }

    /// The store directory: `$XDG_STATE_HOME/qmgr/`.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// qmgr's configuration directory: `$XDG_CONFIG_HOME/qmgr/`.
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// The configuration file: `$XDG_CONFIG_HOME/qmgr/config.toml`.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join(CONFIG_FILE_NAME)
    }

    /// The directory of the socket and lock: `$XDG_RUNTIME_DIR/qmgr/`, or `<state_dir>/run/`
    /// when `XDG_RUNTIME_DIR` is unset.
    pub fn runtime_dir(&self) -> PathBuf {
        match &self.runtime {
            RuntimeDir::FromEnvironment(dir) => dir.clone(),
            RuntimeDir::InsideStateDir => self.state_dir.join(RUNTIME_FALLBACK_DIR_NAME),
        }
    }

    /// Whether [`runtime_dir`](Self::runtime_dir) is the fallback inside the state
    /// directory (so the daemon must create it with mode 0700 itself).
    pub fn runtime_dir_is_fallback(&self) -> bool {
        self.runtime == RuntimeDir::InsideStateDir
    }

    /// The daemon's socket: `<runtime_dir>/qmgrd.sock`.
    pub fn socket_path(&self) -> PathBuf {
        self.runtime_dir().join(SOCKET_FILE_NAME)
    }

    /// The log of a daemon started on demand: `<state_dir>/qmgrd.log`.
    pub fn log_file(&self) -> PathBuf {
        self.state_dir.join(LOG_FILE_NAME)
    }

    /// The directory of PEM files that make up the client-certificate store `store_name`
    /// (`SetClientCertificateByName`/`ByID`): `$XDG_CONFIG_HOME/qmgr/certs/<store_name>/`.
    ///
    /// A name that is empty, `.`, contains `/` or `..`, or contains a NUL character fails
    /// with `E_INVALIDARG`: a store name never leaves the certs directory.
    pub fn certs_dir(&self, store_name: &str) -> Result<PathBuf> {
        let problem = if store_name.is_empty() {
            Some("is empty")
        } else if store_name == "." {
            Some("is \".\"")
        } else if store_name.contains('/') {
            Some("contains '/'")
        } else if store_name.contains("..") {
            Some("contains \"..\"")
        } else if store_name.contains('\0') {
            Some("contains a NUL character")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(QmgrError::invalid_arg(format!(
                "certificate store name {store_name:?} {problem}; a store name is one \
                 directory name under {}",
                self.config_dir.join(CERTS_DIR_NAME).display()
            ))),
            None => Ok(self.config_dir.join(CERTS_DIR_NAME).join(store_name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hresult;

    fn resolve(vars: &[(&str, &str)]) -> Result<StatePaths> {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(name, value)| ((*name).to_owned(), OsString::from(value)))
            .collect();
        StatePaths::from_env_with(|name| {
            vars.iter()
                .find(|(var, _)| var == name)
                .map(|(_, value)| value.clone())
        })
    }

    #[test]
    fn xdg_variables_decide_every_location() {
        let paths = resolve(&[
            ("HOME", "/home/ann"),
            ("XDG_STATE_HOME", "/s"),
            ("XDG_CONFIG_HOME", "/c"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
        ])
        .unwrap();
        assert_eq!(paths.state_dir(), Path::new("/s/qmgr"));
        assert_eq!(paths.config_dir(), Path::new("/c/qmgr"));
        assert_eq!(paths.config_file(), Path::new("/c/qmgr/config.toml"));
        assert_eq!(paths.runtime_dir(), Path::new("/run/user/1000/qmgr"));
        assert!(!paths.runtime_dir_is_fallback());
        assert_eq!(
            paths.socket_path(),
            Path::new("/run/user/1000/qmgr/qmgrd.sock")
        );
        assert_eq!(paths.log_file(), Path::new("/s/qmgr/qmgrd.log"));
    }

    #[test]
    fn home_gives_the_defaults_and_the_runtime_fallback() {
        let paths = resolve(&[("HOME", "/home/ann")]).unwrap();
        assert_eq!(paths.state_dir(), Path::new("/home/ann/.local/state/qmgr"));
        assert_eq!(
            paths.config_file(),
            Path::new("/home/ann/.config/qmgr/config.toml")
        );
        assert_eq!(
            paths.runtime_dir(),
            Path::new("/home/ann/.local/state/qmgr/run")
        );
        assert!(paths.runtime_dir_is_fallback());
    }

    #[test]
    fn relative_and_empty_variables_count_as_unset() {
        let paths = resolve(&[
            ("HOME", "/home/ann"),
            ("XDG_STATE_HOME", "state"),
            ("XDG_CONFIG_HOME", ""),
            ("XDG_RUNTIME_DIR", "./run"),
        ])
        .unwrap();
        assert_eq!(paths.state_dir(), Path::new("/home/ann/.local/state/qmgr"));
        assert_eq!(paths.config_dir(), Path::new("/home/ann/.config/qmgr"));
        assert!(paths.runtime_dir_is_fallback());
    }

    #[test]
    fn home_is_not_needed_when_the_xdg_variables_are_set() {
        let paths = resolve(&[("XDG_STATE_HOME", "/s"), ("XDG_CONFIG_HOME", "/c")]).unwrap();
        assert_eq!(paths.runtime_dir(), Path::new("/s/qmgr/run"));
    }

    #[test]
    fn missing_home_is_an_error_naming_the_variables() {
        for vars in [
            &[][..],
            &[("HOME", "")][..],
            &[("HOME", "relative/home")][..],
            &[("XDG_STATE_HOME", "/s")][..],
        ] {
            let error = resolve(vars).unwrap_err();
            assert!(error.description.contains("HOME"), "{error}");
            assert!(error.description.contains("XDG_"), "{error}");
        }
        let error = resolve(&[("XDG_CONFIG_HOME", "/c")]).unwrap_err();
        assert!(error.description.contains("XDG_STATE_HOME"), "{error}");
    }

    #[test]
    fn overriding_the_state_dir_moves_the_fallback_runtime_dir() {
        let paths = resolve(&[("HOME", "/home/ann")])
            .unwrap()
            .with_state_dir(PathBuf::from("/srv/qmgr"));
        assert_eq!(paths.state_dir(), Path::new("/srv/qmgr"));
        assert_eq!(paths.runtime_dir(), Path::new("/srv/qmgr/run"));
        assert_eq!(paths.config_dir(), Path::new("/home/ann/.config/qmgr"));
    }

    #[test]
    fn overriding_the_state_dir_keeps_an_xdg_runtime_dir() {
        let paths = resolve(&[("HOME", "/home/ann"), ("XDG_RUNTIME_DIR", "/run/user/7")])
            .unwrap()
            .with_state_dir(PathBuf::from("/srv/qmgr"));
        assert_eq!(paths.runtime_dir(), Path::new("/run/user/7/qmgr"));
    }

    #[test]
    fn an_isolated_instance_stays_inside_its_root() {
        let paths = StatePaths::isolated(Path::new("/t"));
        assert_eq!(paths.state_dir(), Path::new("/t"));
        assert_eq!(paths.config_file(), Path::new("/t/config/config.toml"));
        assert_eq!(paths.runtime_dir(), Path::new("/t/run"));
        assert_eq!(
            paths.certs_dir("MY").unwrap(),
            Path::new("/t/config/certs/MY")
        );
    }

    #[test]
    fn certificate_stores_live_under_the_config_dir() {
        let paths = resolve(&[("XDG_CONFIG_HOME", "/c"), ("HOME", "/h")]).unwrap();
        assert_eq!(
            paths.certs_dir("MY").unwrap(),
            Path::new("/c/qmgr/certs/MY")
        );
        assert_eq!(
            paths.certs_dir("Trusted People").unwrap(),
            Path::new("/c/qmgr/certs/Trusted People")
        );
        assert_eq!(
            paths.certs_dir("a.b").unwrap(),
            Path::new("/c/qmgr/certs/a.b")
        );
    }

    #[test]
    fn certificate_store_names_cannot_leave_the_certs_dir() {
        let paths = resolve(&[("HOME", "/h")]).unwrap();
        for name in [
            "", ".", "..", "../MY", "MY/..", "a/b", "/etc", "x..y", "MY\0",
        ] {
            let error = paths.certs_dir(name).unwrap_err();
            assert_eq!(error.hresult, hresult::E_INVALIDARG, "{name:?}");
            assert!(error.description.contains("certs"), "{error}");
        }
    }
}
