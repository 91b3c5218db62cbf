//! `qmgrd`: the per-user qmgr service.
//!
//! ```text
//! qmgrd --foreground   serve in the foreground (systemd); logs go to stderr
//! qmgrd --spawned      start a detached qmgrd and exit once it accepts connections
//!                      (what clients run when they find no service)
//! qmgrd --version
//! qmgrd --manpage      print the qmgrd(8) manual page (hidden; for installers)
//! ```

use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qmgr_core::config::LogLevel;
use qmgr_core::instance::Instance;
use qmgr_core::service::{Request, Response};
use qmgr_core::trust::{self, Access};
use qmgr_core::{QmgrError, Result};
use qmgr_ipc::{ConnectionError, ConnectionHandler, Peer, Subscription};
use qmgr_service::{OffsetClock, QueueManager, SystemClock};
use tracing_subscriber::EnvFilter;

use cli::Invocation;

/// qmgrd's threads hand memory to each other on every file: the engine allocates what the
/// queue frees and the reverse. glibc's malloc takes an arena lock for each such free;
/// jemalloc returns it through its thread caches.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

// Beside this file in qmgrd/, where cargo does not look for binaries.
#[path = "qmgrd/cli.rs"]
mod cli;

/// How long `--spawned` waits for the detached service to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How often an on-demand service looks whether it may exit.
const IDLE_CHECK: Duration = Duration::from_secs(2);
/// The exit status of a qmgrd that found the store or the socket taken by another qmgrd
/// (EX_TEMPFAIL): `--spawned` then waits for that one instead of failing.
const EXIT_ANOTHER_SERVES: u8 = 75;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Under systemd or a terminal: stays until stopped.
    Foreground,
    /// Started on demand: in its own session, exits when idle.
    Detached,
}

fn main() -> ExitCode {
    // A usage error exits 2 with clap's message; --help and --version exit 0.
    let invocation = cli::parse(std::env::args_os()).unwrap_or_else(|error| error.exit());
    let result = match invocation {
        Invocation::Foreground => serve(Mode::Foreground),
        Invocation::Detached => {
            close_inherited_descriptors();
            // A new session: no controlling terminal, no signals from the caller's shell.
            let _ = rustix::process::setsid();
            serve(Mode::Detached)
        }
        Invocation::Spawned => launch(),
        Invocation::Manpage => cli::write_manual_page(&mut std::io::stdout().lock())
            .map_err(|e| QmgrError::internal(format!("cannot write the manual page: {e}"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("qmgrd: {}", error.description);
            if error.hresult == qmgr_core::hresult::HRESULT_ALREADY_EXISTS {
                ExitCode::from(EXIT_ANOTHER_SERVES)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Where state, configuration and the socket live, with the `state_dir` key applied; a
/// config file another user could have written is refused before anything is touched.
fn locate() -> Result<Instance> {
    Instance::locate()
}

/// `--spawned`: starts the service detached (stdio on /dev/null, log file as stderr) and
/// waits until it accepts connections, so the client that ran us can connect at once.
///
/// A qmgrd that still holds the store (one that is stopping, or starting for another
/// client) is waited for rather than raced: either it opens the socket, and we are done, or
/// it exits and frees the store, and we start ours.
fn launch() -> Result<()> {
    let instance = locate()?;
    instance.prepare_state_dir()?;
    let socket = instance.paths().socket_path();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if qmgr_ipc::Client::connect_socket(&socket).is_ok() {
            return Ok(());
        }
        let holder = instance.lock_holder();
        if holder.is_none() {
            match start_detached(&instance, deadline)? {
                Started::Serving => return Ok(()),
                // Another qmgrd took the store between our look and its start.
                Started::AnotherServes => {}
            }
        }
        if Instant::now() > deadline {
            return Err(QmgrError::internal(format!(
                "another qmgrd{} holds the store in {} but did not open {} within {} s",
                holder
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default(),
                instance.paths().state_dir().display(),
                socket.display(),
                START_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How starting a detached qmgrd ended.
enum Started {
    /// It accepts connections.
    Serving,
    /// It exited because another qmgrd serves the store or the socket.
    AnotherServes,
}

/// Starts `qmgrd --detached` and waits until it accepts connections or exits.
fn start_detached(instance: &Instance, deadline: Instant) -> Result<Started> {
    let paths = instance.paths();
    let log = trust::open_private_file(&paths.log_file(), Access::AppendCreate, "log")?;
    let exe = std::env::current_exe()
        .map_err(|e| QmgrError::internal(format!("cannot find my own executable: {e}")))?;
    let mut child = Command::new(exe)
        .arg("--detached")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| QmgrError::internal(format!("cannot start the service: {e}")))?;
    let socket = paths.socket_path();
    loop {
        if qmgr_ipc::Client::connect_socket(&socket).is_ok() {
            return Ok(Started::Serving);
        }
        if let Ok(Some(status)) = child.try_wait() {
            if status.code() == Some(i32::from(EXIT_ANOTHER_SERVES)) {
                return Ok(Started::AnotherServes);
            }
            return Err(QmgrError::internal(format!(
                "the service exited at start ({status}); see {}",
                paths.log_file().display()
            )));
        }
        if Instant::now() > deadline {
            return Err(QmgrError::internal(format!(
                "the service did not open {} within {} s; see {}",
                socket.display(),
                START_TIMEOUT.as_secs(),
                paths.log_file().display()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn serve(mode: Mode) -> Result<()> {
    let instance = locate()?;
    // Taking the lock checks the state directory and every file of it before anything
    // there is written (see qmgr_core::trust).
    let _lock = instance.lock()?;
    let (paths, config) = instance.into_parts();
    init_logging(config.log_level, mode);
    let max_connections = usize::try_from(config.max_connections).unwrap_or(usize::MAX);
    let idle_exit = config.idle_exit.filter(|_| mode == Mode::Detached);
    let max_files_per_job = config.max_files_per_job;
    keep_heap_thresholds_fixed();
    let follow_network_manager = config.metered == qmgr_core::policy::MeteredSetting::Auto;
    // Tests make the wall clock jump through an offset file; the machine's clock is untouched.
    let clock: Arc<dyn qmgr_service::Clock> = match std::env::var_os("QMGR_WALL_CLOCK_OFFSET_FILE")
    {
        Some(file) => Arc::new(OffsetClock::new(file.into())),
        None => Arc::new(SystemClock::new()),
    };
    let manager = QueueManager::start(config, &paths, clock)?;
    // `metered = "yes"` or `"no"` decides alone; "auto" follows NetworkManager.
    if follow_network_manager {
        // Connecting to the bus happens off the start-up path: a slow bus delays only the
        // first reading. The watch runs for the daemon's life; its threads end with it.
        let watching = manager.clone();
        let _ = std::thread::Builder::new()
            .name("qmgr-nm-connect".into())
            .spawn(move || drop(qmgr_service::watch_network_manager(&watching)));
    }
    // Loading a large queue leaves freed memory behind in glibc's heap (SQLite's pages);
    // give those pages back rather than keep the peak resident for the daemon's whole life.
    // SAFETY: malloc_trim only returns free heap memory to the kernel; it touches no object.
    unsafe {
        libc::malloc_trim(0);
    }
    let listener = qmgr_ipc::bind_listener(&paths)?;
    let server = qmgr_ipc::accept_loop_capped(
        listener,
        Arc::new(Handler {
            manager: manager.clone(),
            max_files_per_job,
        }),
        max_connections,
    )?;
    tracing::info!(
        "qmgrd {}: serving {} (pid {})",
        env!("CARGO_PKG_VERSION"),
        paths.socket_path().display(),
        std::process::id()
    );

    let control = server.control();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .map_err(|e| QmgrError::internal(format!("cannot watch signals: {e}")))?;
    let signal_control = control.clone();
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            tracing::info!("signal {signal}: stopping");
            signal_control.stop();
        }
    });
    if let Some(idle) = idle_exit {
        let idle_manager = manager.clone();
        let idle_control = control.clone();
        std::thread::spawn(move || {
            while !idle_control.is_stopping() {
                std::thread::sleep(IDLE_CHECK);
                if idle_control.idle_for().is_some_and(|quiet| quiet >= idle)
                    && idle_manager.is_idle()
                {
                    tracing::info!("idle for {} s: exiting", idle.as_secs());
                    idle_control.stop();
                }
            }
        });
    }
    server.wait();
    manager.shutdown();
    let _ = std::fs::remove_file(paths.socket_path());
    tracing::info!("qmgrd stopped");
    Ok(())
}

/// Fixes the heap's thresholds at glibc's defaults (128 KiB). Left to adjust themselves,
/// they rise after the first large block is freed (a listing page of a large queue), after
/// which the memory of every later listing stays resident for good. glibc's heap is the
/// C libraries' (SQLite, libcurl) even when qmgrd's own allocations go to jemalloc.
fn keep_heap_thresholds_fixed() {
    const THRESHOLD: libc::c_int = 128 * 1024;
    for option in [libc::M_MMAP_THRESHOLD, libc::M_TRIM_THRESHOLD] {
        // SAFETY: mallopt only changes the allocator's tuning; no allocation is touched. It
        // runs before the service's threads start.
        if unsafe { libc::mallopt(option, THRESHOLD) } == 0 {
            tracing::warn!("cannot fix the heap's threshold {option}; memory may stay resident");
        }
    }
}

/// Sends the service's log to stderr — the journal under systemd (which adds its own
/// times), the log file when detached — at the config's `log_level`, or as `QMGR_LOG` (a
/// `tracing` filter such as `debug` or `qmgr_service=trace`) says when it is set.
fn init_logging(level: LogLevel, mode: Mode) {
    let filter = std::env::var("QMGR_LOG")
        .ok()
        .and_then(|text| EnvFilter::try_new(text).ok())
        .unwrap_or_else(|| EnvFilter::new(level.name()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    let _ = match mode {
        Mode::Foreground => builder.without_time().try_init(),
        Mode::Detached => builder.try_init(),
    };
}

/// The queue manager behind the socket: requests run as the peer's uid.
struct Handler {
    manager: QueueManager,
    /// Bounds what a connection may hold of an AddFiles sent in parts.
    max_files_per_job: u32,
}

impl ConnectionHandler for Handler {
    fn execute(&self, peer: &Peer, request: Request) -> Result<Response> {
        self.manager.handle(peer.uid, request)
    }

    fn subscribe(&self, peer: &Peer) -> Result<Subscription> {
        self.manager.subscribe(peer.uid)
    }

    fn connection_failed(&self, error: &ConnectionError) {
        tracing::warn!("{error}");
    }

    fn max_files_per_job(&self) -> u32 {
        self.max_files_per_job
    }
}

/// Closes every descriptor above stderr that the process that started us left open
/// without close-on-exec, so the service never holds a caller's pipe or file.
fn close_inherited_descriptors() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let descriptors: Vec<i32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in descriptors {
        // SAFETY: this runs first thing in main after the command line is parsed (which
        // opens nothing), before the program opens any file or starts a thread, so no Rust object owns these descriptors; they were inherited.
        // The descriptor of the /proc/self/fd listing is closed already (read_dir dropped)
        // and closing it again would only fail with EBADF.
        unsafe {
            libc::close(fd);
        }
    }
}
