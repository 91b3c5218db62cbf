//! Starting qmgrd on demand, as gpg-agent is started.
//!
//! A client that finds no service takes an exclusive `flock` on
//! `<runtime_dir>/qmgrd.lock`, tries once more (a racing client may have started it
//! meanwhile), and otherwise runs `qmgrd --spawned` with its standard streams on
//! `/dev/null`. The contract with qmgrd: `--spawned` starts the real daemon in a new
//! session and exits 0 once the socket accepts connections, or non-zero if it cannot
//! start. The client waits for that exit, connects (retrying briefly), and only then
//! releases the lock, so racing clients start exactly one daemon.
//!
//! The lock file belongs to the clients: qmgrd must not hold it, or clients that look for
//! a daemon while it starts would wait for it to exit.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use qmgr_core::hresult;
use qmgr_core::paths::StatePaths;
use qmgr_core::{ErrorContext, QmgrError, Result};

use crate::client::ConnectError;
use qmgr_core::trust::{Access, open_private_file, prepare_private_dir};

/// The file racing clients lock while one of them starts qmgrd.
pub const SPAWN_LOCK_FILE_NAME: &str = "qmgrd.lock";

/// The executable's name, looked up next to the client and on `PATH`.
pub const QMGRD_EXECUTABLE: &str = "qmgrd";

/// The argument that tells qmgrd it was started on demand.
pub const SPAWNED_ARG: &str = "--spawned";

/// How long `qmgrd --spawned` may take to report that it listens (or failed). Longer than
/// qmgrd's own limit (15 s, which includes waiting for a qmgrd that still holds the store),
/// so its explanation, not ours, reaches the user.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long to keep trying to connect once it reported success.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The lock file of `paths`' instance.
pub fn spawn_lock_path(paths: &StatePaths) -> PathBuf {
    paths.runtime_dir().join(SPAWN_LOCK_FILE_NAME)
}

/// The search path of a launcher that ignores the process environment.
const CLEAN_PATH: &str = "/usr/bin:/bin";

/// How to find and run qmgrd.
#[derive(Clone, Debug)]
pub struct Launcher {
    /// Variables that override the process environment, both for finding qmgrd and in
    /// qmgrd's environment.
    env: Vec<(OsString, OsString)>,
    current_exe: Option<PathBuf>,
    library_dir: Option<PathBuf>,
    /// Whether the process environment plays no part (see [`Launcher::clean_environment`]).
    clean: bool,
}

impl Launcher {
    /// Finds qmgrd from this process: its environment and its executable's location.
    pub fn from_process() -> Self {
        Self {
            env: Vec::new(),
            current_exe: std::env::current_exe().ok(),
            library_dir: None,
            clean: false,
        }
    }

    /// Ignores the process environment: qmgrd is looked for with the variables set with
    /// [`Launcher::env`] only, and started with those and `PATH=/usr/bin:/bin` alone. For
    /// setuid programs, whose environment belongs to whoever started them.
    #[must_use]
    pub fn clean_environment(mut self) -> Self {
        self.clean = true;
        self
    }

    /// Sets a variable for finding qmgrd (`QMGRD`, `PATH`) and in qmgrd's environment
    /// (the `XDG_*` variables of a non-default instance).
    #[must_use]
    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        let name = name.into();
        self.env.retain(|(existing, _)| *existing != name);
        self.env.push((name, value.into()));
        self
    }

    /// Also looks for qmgrd in `dir` and `dir/../bin` (the directory of `libqmgr.so`),
    /// after the executable's directory.
    #[must_use]
    pub fn library_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.library_dir = Some(dir.into());
        self
    }

    fn lookup(&self, name: &str) -> Option<OsString> {
        match self.env.iter().find(|(var, _)| var == name) {
            Some((_, value)) => Some(value.clone()),
            None if self.clean => (name == "PATH").then(|| CLEAN_PATH.into()),
            None => std::env::var_os(name),
        }
    }

    /// The qmgrd this launcher would run.
    pub fn locate(&self) -> Result<PathBuf> {
        locate_qmgrd(
            |name| self.lookup(name),
            self.current_exe.as_deref(),
            self.library_dir.as_deref(),
            is_executable_file,
        )
    }

    /// Runs `program --spawned` and waits for it to report.
    fn start(&self, program: &Path, paths: &StatePaths) -> Result<()> {
        let mut command = Command::new(program);
        if self.clean {
            command.env_clear().env("PATH", CLEAN_PATH);
        }
        let mut child = command
            .arg(SPAWNED_ARG)
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // What `--spawned` says when it cannot start (a refused state directory, a bad
            // config) is the reason the caller needs; the daemon it starts logs elsewhere.
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| unavailable(format!("cannot run {}: {error}", program.display())))?;
        match wait_bounded(&mut child, START_TIMEOUT) {
            Waited::Exited(status) if status.success() => Ok(()),
            Waited::Exited(status) => {
                let said = child_stderr(&mut child);
                Err(unavailable(if said.is_empty() {
                    format!(
                        "{} {SPAWNED_ARG} could not start qmgrd ({status}); see its log {}",
                        program.display(),
                        paths.log_file().display()
                    )
                } else {
                    format!(
                        "{} {SPAWNED_ARG} could not start qmgrd ({status}): {said}",
                        program.display()
                    )
                }))
            }
            // Someone else reaped it (a host program that ignores SIGCHLD): whether it
            // succeeded shows when connecting.
            Waited::Reaped => Ok(()),
            Waited::StillRunning => {
                let _ = child.kill();
                let _ = child.wait();
                Err(unavailable(format!(
                    "{} {SPAWNED_ARG} did not report within {START_TIMEOUT:?}; see its log {}",
                    program.display(),
                    paths.log_file().display()
                )))
            }
        }
    }
}

/// Where qmgrd may be, in order: `$QMGRD` alone when it is set (an explicit choice is
/// never silently replaced by another qmgrd); otherwise next to the running executable,
/// in `../bin` relative to it, next to the library and in its `../bin`, then each
/// absolute `PATH` entry.
pub fn qmgrd_candidates(
    lookup: impl Fn(&str) -> Option<OsString>,
    current_exe: Option<&Path>,
    library_dir: Option<&Path>,
) -> Vec<PathBuf> {
    if let Some(explicit) = lookup("QMGRD").filter(|value| !value.is_empty()) {
        let explicit = PathBuf::from(explicit);
        return vec![std::path::absolute(&explicit).unwrap_or(explicit)];
    }
    let mut candidates = Vec::new();
    let exe_dir = current_exe.and_then(Path::parent);
    for dir in [exe_dir, library_dir].into_iter().flatten() {
        candidates.push(dir.join(QMGRD_EXECUTABLE));
        candidates.push(dir.join("../bin").join(QMGRD_EXECUTABLE));
    }
    if let Some(path) = lookup("PATH") {
        candidates.extend(
            std::env::split_paths(&path)
                .filter(|dir| dir.is_absolute())
                .map(|dir| dir.join(QMGRD_EXECUTABLE)),
        );
    }
    let mut seen = std::collections::HashSet::new();
    candidates.retain(|candidate| seen.insert(candidate.clone()));
    candidates
}

/// The first candidate `is_executable` accepts, or an error naming every path tried.
pub fn locate_qmgrd(
    lookup: impl Fn(&str) -> Option<OsString>,
    current_exe: Option<&Path>,
    library_dir: Option<&Path>,
    is_executable: impl Fn(&Path) -> bool,
) -> Result<PathBuf> {
    let candidates = qmgrd_candidates(lookup, current_exe, library_dir);
    if let Some(found) = candidates.iter().find(|candidate| is_executable(candidate)) {
        return Ok(found.clone());
    }
    let tried = candidates
        .iter()
        .map(|candidate| candidate.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(unavailable(format!(
        "qmgrd is not running and no qmgrd executable was found (tried: {tried}); install \
         qmgrd next to this program or on PATH, or set QMGRD to its path"
    )))
}

fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

fn unavailable(description: String) -> QmgrError {
    QmgrError::new(
        hresult::QM_E_SERVICE_UNAVAILABLE,
        ErrorContext::GeneralQueueManager,
        description,
    )
}

/// Connects with `connect`; if no service runs, starts one under the spawn lock and
/// connects to it.
pub(crate) fn spawn_and_connect<T>(
    paths: &StatePaths,
    launcher: &Launcher,
    connect: impl Fn() -> Result<T, ConnectError>,
) -> Result<T> {
    match connect() {
        Err(ConnectError::NotRunning(_)) => {}
        done => return done.map_err(ConnectError::into_error),
    }
    let runtime_dir = paths.runtime_dir();
    prepare_private_dir(&runtime_dir, "runtime directory")?;
    let _lock = take_spawn_lock(&spawn_lock_path(paths))?;
    match connect() {
        Err(ConnectError::NotRunning(_)) => {}
        done => return done.map_err(ConnectError::into_error),
    }
    let program = launcher.locate()?;
    launcher.start(&program, paths)?;
    let mut starts = 1;
    let mut deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut pause = Duration::from_millis(2);
    loop {
        match connect() {
            Err(ConnectError::NotRunning(error)) if Instant::now() >= deadline => {
                return Err(error.context(format!(
                    "{} {SPAWNED_ARG} reported success, but no service answered within \
                     {CONNECT_TIMEOUT:?}",
                    program.display()
                )));
            }
            Err(ConnectError::NotRunning(_)) => {
                // The service that started may have died since (killed at once): when
                // nobody holds the store any more, another is started rather than waited
                // for.
                if pause >= Duration::from_millis(100)
                    && starts < MAX_STARTS
                    && store_is_free(paths)
                {
                    launcher.start(&program, paths)?;
                    starts += 1;
                    deadline = Instant::now() + CONNECT_TIMEOUT;
                    pause = Duration::from_millis(2);
                    continue;
                }
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            done => return done.map_err(ConnectError::into_error),
        }
    }
}

/// How many times one connection starts a service that then vanishes before answering.
const MAX_STARTS: u32 = 3;

/// Whether no process holds the store of `paths`' instance (none serves it).
fn store_is_free(paths: &StatePaths) -> bool {
    qmgr_core::instance::Instance::at(paths.clone())
        .is_ok_and(|instance| instance.lock_holder().is_none())
}

/// Opens and exclusively locks the spawn lock file; the lock lasts as long as the file.
fn take_spawn_lock(path: &Path) -> Result<File> {
    let file = open_private_file(path, Access::ReadWriteCreate, "spawn lock")?;
    file.lock()
        .map_err(|error| QmgrError::internal(format!("cannot lock {}: {error}", path.display())))?;
    Ok(file)
}

/// What an exited child wrote on its standard error (at most 4 KiB, trimmed).
fn child_stderr(child: &mut Child) -> String {
    use std::io::Read;
    let mut said = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        let _ = stderr.take(4096).read_to_end(&mut said);
    }
    String::from_utf8_lossy(&said).trim().to_owned()
}

/// How waiting for `qmgrd --spawned` ended.
enum Waited {
    Exited(ExitStatus),
    /// Its status is gone: the host program reaps children itself or ignores `SIGCHLD`.
    Reaped,
    StillRunning,
}

/// Waits for `child` to exit, at most `timeout`.
fn wait_bounded(child: &mut Child, timeout: Duration) -> Waited {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Waited::Exited(status),
            Ok(None) if Instant::now() < deadline => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Ok(None) => return Waited::StillRunning,
            Err(_) => return Waited::Reaped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(var, _)| *var == name)
                .map(|(_, value)| OsString::from(value))
        }
    }

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn candidates_come_in_the_documented_order() {
        let candidates = qmgrd_candidates(
            env(&[("PATH", "/usr/local/bin:relative/bin::/usr/bin")]),
            Some(Path::new("/opt/qmgr/bin/qmgr")),
            Some(Path::new("/opt/qmgr/lib")),
        );
        assert_eq!(
            candidates,
            paths(&[
                "/opt/qmgr/bin/qmgrd",
                "/opt/qmgr/bin/../bin/qmgrd",
                "/opt/qmgr/lib/qmgrd",
                "/opt/qmgr/lib/../bin/qmgrd",
                "/usr/local/bin/qmgrd",
                "/usr/bin/qmgrd",
            ])
        );
    }

    #[test]
    fn an_explicit_qmgrd_is_the_only_candidate() {
        let candidates = qmgrd_candidates(
            env(&[("QMGRD", "/build/qmgrd"), ("PATH", "/usr/bin")]),
            Some(Path::new("/opt/qmgr/bin/qmgr")),
            None,
        );
        assert_eq!(candidates, paths(&["/build/qmgrd"]));
        let empty_is_unset =
            qmgrd_candidates(env(&[("QMGRD", ""), ("PATH", "/usr/bin")]), None, None);
        assert_eq!(empty_is_unset, paths(&["/usr/bin/qmgrd"]));
    }

    #[test]
    fn duplicates_are_tried_once() {
        let candidates = qmgrd_candidates(
            env(&[("PATH", "/usr/bin:/usr/bin:/opt/qmgr/bin")]),
            Some(Path::new("/opt/qmgr/bin/qmgr")),
            None,
        );
        assert_eq!(
            candidates,
            paths(&[
                "/opt/qmgr/bin/qmgrd",
                "/opt/qmgr/bin/../bin/qmgrd",
                "/usr/bin/qmgrd",
            ])
        );
    }

    #[test]
    fn the_first_executable_candidate_wins() {
        let found = locate_qmgrd(env(&[("PATH", "/a:/b:/c")]), None, None, |path| {
            path.starts_with("/b") || path.starts_with("/c")
        })
        .unwrap();
        assert_eq!(found, PathBuf::from("/b/qmgrd"));
    }

    #[test]
    fn not_finding_qmgrd_names_every_path_tried() {
        let error = locate_qmgrd(
            env(&[("PATH", "/a:/b")]),
            Some(Path::new("/opt/x/qmgr")),
            None,
            |_| false,
        )
        .unwrap_err();
        assert_eq!(error.hresult, hresult::QM_E_SERVICE_UNAVAILABLE);
        for tried in [
            "/opt/x/qmgrd",
            "/opt/x/../bin/qmgrd",
            "/a/qmgrd",
            "/b/qmgrd",
            "QMGRD",
        ] {
            assert!(error.description.contains(tried), "{tried}: {error}");
        }
    }

    #[test]
    fn only_executable_files_count() {
        let temp = tempfile::tempdir().unwrap();
        let plain = temp.path().join("plain");
        std::fs::write(&plain, b"").unwrap();
        let runnable = temp.path().join("runnable");
        std::fs::write(&runnable, b"").unwrap();
        std::fs::set_permissions(&runnable, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(!is_executable_file(&plain));
        assert!(is_executable_file(&runnable));
        assert!(!is_executable_file(temp.path()));
        assert!(!is_executable_file(&temp.path().join("absent")));
    }

    #[test]
    fn waiting_reports_the_exit_status_or_a_child_still_running() {
        let mut quick = Command::new("/bin/sh")
            .args(["-c", "exit 4"])
            .spawn()
            .unwrap();
        match wait_bounded(&mut quick, Duration::from_secs(30)) {
            Waited::Exited(status) => assert_eq!(status.code(), Some(4)),
            _ => panic!("the child exited"),
        }
        let mut slow = Command::new("/bin/sh")
            .args(["-c", "sleep 30"])
            .spawn()
            .unwrap();
        let waited = wait_bounded(&mut slow, Duration::from_millis(20));
        slow.kill().unwrap();
        slow.wait().unwrap();
        assert!(matches!(waited, Waited::StillRunning));
    }

    #[test]
    fn launcher_overrides_win_over_the_process_environment() {
        let launcher = Launcher::from_process()
            .env("QMGRD", "/first")
            .env("QMGRD", "/second");
        assert_eq!(launcher.lookup("QMGRD"), Some(OsString::from("/second")));
        let error = launcher.locate().unwrap_err();
        assert!(error.description.contains("/second"), "{error}");
    }
}
