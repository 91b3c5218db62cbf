//! The process's link to the queue: the [`QueueService`] every object talks to.
//!
//! By default the library is a client of `qmgrd` (started on demand, see `qmgr-ipc`). Built
//! with the cargo feature `in-process`, it hosts the queue manager and the transfer engine
//! in the calling process instead, with the same state directory; transfers then run only
//! while the process does. A Rust program may also hand in any service with
//! [`install_service`] before the first `CoCreateInstance`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::Mutex;
use qmgr_core::Result;
use qmgr_core::service::QueueService;

/// The service the objects of this process talk to.
pub(crate) type Queue = Arc<dyn QueueService>;

static SERVICE: Mutex<Option<Queue>> = Mutex::new(None);
static COM_INITIALIZED: AtomicU32 = AtomicU32::new(0);

/// Makes `service` the queue of every object created from now on. Returns false (and
/// changes nothing) when the process already uses a service.
pub fn install_service(service: Arc<dyn QueueService>) -> bool {
    let mut slot = SERVICE.lock();
    if slot.is_some() {
        return false;
    }
    *slot = Some(service);
    true
}

/// The process's service, connecting (or starting the in-process one) on first use. A
/// failure is not remembered: the next call tries again.
pub(crate) fn service() -> Result<Queue> {
    let mut slot = SERVICE.lock();
    if let Some(service) = slot.as_ref() {
        return Ok(Arc::clone(service));
    }
    let service = connect()?;
    *slot = Some(Arc::clone(&service));
    Ok(service)
}

/// The uid this process runs as.
#[cfg(feature = "in-process")]
fn current_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

#[cfg(not(feature = "in-process"))]
fn connect() -> Result<Queue> {
    use qmgr_ipc::{Client, Launcher};

    let (paths, _) = locate_instance()?.into_parts();
    let mut launcher = Launcher::from_process();
    if is_secure_execution() {
        // A setuid or setgid program: qmgrd gets only what the library resolved itself,
        // never the caller's environment.
        launcher = launcher.clean_environment();
        for name in [
            "HOME",
            "XDG_STATE_HOME",
            "XDG_CONFIG_HOME",
            "XDG_RUNTIME_DIR",
        ] {
            if let Some(value) = secure_env(name) {
                launcher = launcher.env(name, value);
            }
        }
    }
    if let Some(dir) = library_dir() {
        launcher = launcher.library_dir(dir);
    }
    Ok(Arc::new(Client::connect_or_spawn_with(&paths, launcher)?))
}

/// The user's instance, found with [`secure_env`].
pub(crate) fn locate_instance() -> Result<qmgr_core::instance::Instance> {
    qmgr_core::instance::Instance::locate_with(secure_env)
}

/// An environment variable as glibc's `secure_getenv` reads it: in a setuid or setgid
/// program (secure execution: `AT_SECURE`, which is exactly when `secure_getenv` answers
/// NULL) every variable counts as unset, so the caller's environment cannot steer which
/// directories, sockets or executables the library uses. `HOME` then comes from the
/// password database entry of the effective uid.
pub(crate) fn secure_env(name: &str) -> Option<std::ffi::OsString> {
    if !is_secure_execution() {
        return std::env::var_os(name);
    }
    if name == "HOME" {
        return home_of_effective_user();
    }
    None
}

/// Whether the process runs in secure-execution mode (setuid, setgid, capabilities).
fn is_secure_execution() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector; AT_SECURE always exists on Linux.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// The home directory the password database gives the effective uid.
fn home_of_effective_user() -> Option<std::ffi::OsString> {
    qmgr_core::passwd::account_of(rustix::process::geteuid().as_raw()).map(|account| account.home)
}

/// The directory of the file this library was loaded from (qmgrd is looked for beside it).
#[cfg(not(feature = "in-process"))]
fn library_dir() -> Option<std::path::PathBuf> {
    use std::ffi::CStr;
    use std::os::unix::ffi::OsStrExt;

    // SAFETY: dladdr only reads the address and fills the zeroed struct it is given.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let address = crate::entry::CoCreateInstance as *const libc::c_void;
    // SAFETY: `address` is a function of this library; `info` is writable.
    if unsafe { libc::dladdr(address, &raw mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr succeeded, so dli_fname is a NUL-terminated path owned by the loader.
    let file = unsafe { CStr::from_ptr(info.dli_fname) };
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(file.to_bytes()));
    path.parent().map(std::path::Path::to_path_buf)
}

#[cfg(feature = "in-process")]
fn connect() -> Result<Queue> {
    use qmgr_service::{LocalService, QueueManager, SystemClock};

    let instance = locate_instance()?;
    // One queue manager per store: a running qmgrd (or another program hosting the queue)
    // holds the lock, and this fails naming its pid.
    let lock = instance.lock()?;
    let (paths, config) = instance.into_parts();
    let manager = QueueManager::start(config, &paths, Arc::new(SystemClock::new()))?;
    Ok(Arc::new(
        LocalService::new(manager, current_uid()).holding(lock),
    ))
}

/// A successful CoInitialize(Ex) on some thread: one more user of COM in this process.
pub(crate) fn com_initialize() {
    COM_INITIALIZED.fetch_add(1, Ordering::AcqRel);
}

/// A CoUninitialize that ended one: one user less (never below zero).
pub(crate) fn com_uninitialize() {
    let _ = COM_INITIALIZED.fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| {
        count.checked_sub(1)
    });
}

pub(crate) fn com_is_initialized() -> bool {
    COM_INITIALIZED.load(Ordering::Acquire) > 0
}
