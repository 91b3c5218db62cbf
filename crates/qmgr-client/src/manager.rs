//! Reaching a queue: the user's qmgrd, another instance's, or one hosted in this program.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use qmgr_core::Guid;
use qmgr_core::service::{QueueService, QueueServiceExt};
use qmgr_ipc::{Client, Launcher};

use crate::error::{Error, Result};
use crate::job::{Job, JobBuilder, JobInfo};

/// One qmgr instance: the directories it keeps its store, configuration and socket in,
/// and the qmgrd to start for it.
///
/// Each directory not set here comes from the environment as qmgr's own programs take
/// it (`XDG_STATE_HOME`, `XDG_CONFIG_HOME`, `XDG_RUNTIME_DIR`, `HOME`), so
/// `Instance::default()` is the user's own queue. Setting all three gives a queue of its
/// own, separate from the user's.
///
/// ```
/// use qmgr_client::Instance;
///
/// // A private queue under one directory: the store in state/qmgr, the configuration in
/// // config/qmgr/config.toml, the socket in run/qmgr.
/// let root = std::env::temp_dir().join("my-app-queue");
/// let instance = Instance::isolated(&root).qmgrd("/opt/my-app/bin/qmgrd");
/// # let _ = instance;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Instance {
    state_home: Option<PathBuf>,
    config_home: Option<PathBuf>,
    runtime_dir: Option<PathBuf>,
    qmgrd: Option<PathBuf>,
}

impl Instance {
    /// A queue kept entirely under `root`: `XDG_STATE_HOME` is `root/state`,
    /// `XDG_CONFIG_HOME` is `root/config` and `XDG_RUNTIME_DIR` is `root/run`. The
    /// directories are made when the queue starts; `root` must belong to the user and
    /// not be writable by others (qmgr refuses directories others could change).
    pub fn isolated(root: impl AsRef<Path>) -> Self {
        let root = root.as_ref();
        Self::default()
            .state_home(root.join("state"))
            .config_home(root.join("config"))
            .runtime_dir(root.join("run"))
    }

    /// The base of the store directory (as `XDG_STATE_HOME`): the store goes in
    /// `dir/qmgr`, unless the configuration's `state_dir` moves it.
    #[must_use]
    pub fn state_home(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_home = Some(dir.into());
        self
    }

    /// The base of the configuration directory (as `XDG_CONFIG_HOME`): the configuration
    /// is `dir/qmgr/config.toml`.
    #[must_use]
    pub fn config_home(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config_home = Some(dir.into());
        self
    }

    /// The base of the runtime directory (as `XDG_RUNTIME_DIR`): qmgrd's socket is
    /// `dir/qmgr/qmgrd.sock`.
    #[must_use]
    pub fn runtime_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.runtime_dir = Some(dir.into());
        self
    }

    /// The qmgrd executable to start when none serves this instance. Without it qmgrd is
    /// looked for as the `qmgr` command looks: the `QMGRD` environment variable, the
    /// program's own directory, then `PATH`.
    #[must_use]
    pub fn qmgrd(mut self, executable: impl Into<PathBuf>) -> Self {
        self.qmgrd = Some(executable.into());
        self
    }

    /// The variables that differ from the process environment, by name.
    fn overrides(&self) -> Vec<(&'static str, OsString)> {
        [
            ("XDG_STATE_HOME", &self.state_home),
            ("XDG_CONFIG_HOME", &self.config_home),
            ("XDG_RUNTIME_DIR", &self.runtime_dir),
        ]
        .into_iter()
        .filter_map(|(name, dir)| dir.as_ref().map(|dir| (name, dir.clone().into())))
        .collect()
    }

    /// The instance as qmgr's programs find it: its paths, with the configuration read
    /// (and its `state_dir` applied).
    fn locate(&self) -> Result<qmgr_core::instance::Instance> {
        let overrides = self.overrides();
        qmgr_core::instance::Instance::locate_with(|name| {
            overrides
                .iter()
                .find(|(overridden, _)| *overridden == name)
                .map(|(_, value)| value.clone())
                .or_else(|| std::env::var_os(name))
        })
        .map_err(|error| Error::from_service(error, "cannot locate the qmgr instance"))
    }

    /// How to start this instance's qmgrd: with the directories set here in its
    /// environment, so it serves the same store.
    fn launcher(&self) -> Launcher {
        let mut launcher = Launcher::from_process();
        for (name, value) in self.overrides() {
            launcher = launcher.env(name, value);
        }
        if let Some(qmgrd) = &self.qmgrd {
            launcher = launcher.env("QMGRD", qmgrd);
        }
        launcher
    }
}

/// A connection to a transfer queue: the way in to every job.
///
/// A `Manager` is cheap to clone (clones share the connection) and may be used from any
/// thread. Jobs it creates or finds ([`Job`]) keep it alive.
#[derive(Clone)]
pub struct Manager {
    pub(crate) queue: Arc<Queue>,
}

/// The service behind a manager.
pub(crate) struct Queue {
    pub(crate) service: Box<dyn QueueService>,
    /// The queue manager this program hosts, stopped when the last handle goes.
    #[cfg(feature = "in-process")]
    hosted: Option<qmgr_service::QueueManager>,
}

impl Drop for Queue {
    fn drop(&mut self) {
        // Transfers stop and progress is written, so the next start resumes them.
        #[cfg(feature = "in-process")]
        if let Some(manager) = &self.hosted {
            manager.shutdown();
        }
    }
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("in_process", &self.is_in_process())
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// Connects to the user's qmgrd, starting it if it is not running (as the `qmgr`
    /// command does; it exits by itself once idle). Fails with `QM_E_SERVICE_UNAVAILABLE`
    /// when no qmgrd can be found or started.
    ///
    /// ```no_run
    /// let manager = qmgr_client::Manager::connect()?;
    /// for job in manager.jobs()? {
    ///     println!("{} {} {}", job.id, job.state, job.display_name);
    /// }
    /// # Ok::<(), qmgr_client::Error>(())
    /// ```
    pub fn connect() -> Result<Manager> {
        Self::connect_to(&Instance::default())
    }

    /// Connects to the qmgrd of `instance`, starting it if it is not running.
    pub fn connect_to(instance: &Instance) -> Result<Manager> {
        let (paths, _) = instance.locate()?.into_parts();
        let client = Client::connect_or_spawn_with(&paths, instance.launcher())
            .map_err(|error| Error::from_service(error, "cannot connect to qmgrd"))?;
        Ok(Self::over(Box::new(client)))
    }

    /// Connects to the qmgrd listening on `socket`, which must be running (this never
    /// starts one) and run as this user.
    pub fn connect_socket(socket: impl AsRef<Path>) -> Result<Manager> {
        let socket = socket.as_ref();
        let client = Client::connect_socket(socket).map_err(|error| {
            Error::from_service(
                error,
                format!("cannot connect to qmgrd at {}", socket.display()),
            )
        })?;
        Ok(Self::over(Box::new(client)))
    }

    /// Hosts the queue of `instance` inside this program: its queue manager and transfer
    /// engine run on threads of this process, with the same store, configuration and
    /// rules as qmgrd, so transfers go on only while the program runs (and resume when
    /// it, or qmgrd, next serves the store). One queue manager serves a store at a time:
    /// while a qmgrd (or another program) serves it, this fails with
    /// `HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS)` naming its pid.
    ///
    /// Needs the crate feature `in-process` (on by default).
    ///
    /// ```
    /// use qmgr_client::{Instance, JobState, Manager};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let source = dir.path().join("source.txt");
    /// std::fs::write(&source, "hello")?;
    ///
    /// let manager = Manager::in_process(&Instance::isolated(dir.path().join("queue")))?;
    /// let job = manager
    ///     .new_job("copy")
    ///     .file(format!("file://{}", source.display()), dir.path().join("copy.txt"))
    ///     .create()?;
    /// job.resume()?;
    /// assert_eq!(job.wait(|_| {})?.state, JobState::Transferred);
    /// job.complete()?;
    /// assert_eq!(std::fs::read_to_string(dir.path().join("copy.txt"))?, "hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "in-process")]
    pub fn in_process(instance: &Instance) -> Result<Manager> {
        use qmgr_service::{LocalService, QueueManager, SystemClock};

        let located = instance.locate()?;
        let lock = located
            .lock()
            .map_err(|error| Error::from_service(error, "cannot host the queue"))?;
        let (paths, config) = located.into_parts();
        let manager = QueueManager::start(config, &paths, Arc::new(SystemClock::new()))
            .map_err(|error| Error::from_service(error, "cannot start the queue manager"))?;
        let uid = rustix::process::getuid().as_raw();
        let service = LocalService::new(manager.clone(), uid).holding(lock);
        Ok(Manager {
            queue: Arc::new(Queue {
                service: Box::new(service),
                hosted: Some(manager),
            }),
        })
    }

    fn over(service: Box<dyn QueueService>) -> Manager {
        Manager {
            queue: Arc::new(Queue {
                service,
                #[cfg(feature = "in-process")]
                hosted: None,
            }),
        }
    }

    /// Whether the queue is hosted in this program ([`Manager::in_process`]).
    pub fn is_in_process(&self) -> bool {
        #[cfg(feature = "in-process")]
        return self.queue.hosted.is_some();
        #[cfg(not(feature = "in-process"))]
        false
    }

    pub(crate) fn service(&self) -> &dyn QueueService {
        &*self.queue.service
    }

    /// Starts describing a new job named `display_name`: a download at NORMAL priority
    /// unless the builder says otherwise. Nothing is created before
    /// [`JobBuilder::create`].
    pub fn new_job(&self, display_name: impl Into<String>) -> JobBuilder {
        JobBuilder::new(self.clone(), display_name.into())
    }

    /// The job with this id, if this user may see it (`BG_E_NOT_FOUND` otherwise).
    pub fn job(&self, id: Guid) -> Result<Job> {
        let job = Job::new(self.clone(), id);
        job.status()?;
        Ok(job)
    }

    /// Every job of this user, oldest first.
    pub fn jobs(&self) -> Result<Vec<JobInfo>> {
        let summaries = self
            .service()
            .job_summaries(false)
            .map_err(|error| Error::from_service(error, "cannot list the jobs"))?;
        Ok(summaries.iter().map(JobInfo::from_summary).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_may_move_between_threads_and_be_shared() {
        fn shared<T: Send + Sync>() {}
        fn sent<T: Send>() {}
        shared::<Manager>();
        shared::<Job>();
        shared::<crate::Error>();
        sent::<crate::Watch>();
    }

    #[test]
    fn an_isolated_instance_overrides_the_three_directories_and_finds_qmgrd_as_told() {
        let instance = Instance::isolated("/q").qmgrd("/opt/bin/qmgrd");
        let overrides = instance.overrides();
        assert_eq!(
            overrides,
            vec![
                ("XDG_STATE_HOME", OsString::from("/q/state")),
                ("XDG_CONFIG_HOME", OsString::from("/q/config")),
                ("XDG_RUNTIME_DIR", OsString::from("/q/run")),
            ]
        );
        assert_eq!(
            instance.launcher().locate().ok(),
            None,
            "/opt/bin/qmgrd does not exist, and QMGRD names only it"
        );
        assert!(Instance::default().overrides().is_empty());
    }
}
