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
    use qmgr_core::paths::StatePaths;
    use qmgr_ipc::{Client, Launcher};

    let paths = StatePaths::from_env()?;
    let mut launcher = Launcher::from_process();
    if let Some(dir) = library_dir() {
        launcher = launcher.library_dir(dir);
    }
    Ok(Arc::new(Client::connect_or_spawn_with(&paths, launcher)?))
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
    use std::os::unix::fs::DirBuilderExt;

    use qmgr_core::QmgrError;
    use qmgr_core::config::Config;
    use qmgr_core::paths::StatePaths;
    use qmgr_service::{LocalService, QueueManager, SystemClock};

    let paths = StatePaths::from_env()?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(paths.state_dir())
        .map_err(|error| {
            QmgrError::internal(format!(
                "cannot create the state directory {}: {error}",
                paths.state_dir().display()
            ))
        })?;
    let config = Config::load(&paths.config_file())?;
    let manager = QueueManager::start(config, &paths, Arc::new(SystemClock::new()))?;
    Ok(Arc::new(LocalService::new(manager, current_uid())))
}

/// CoInitialize(Ex): one more user of COM in this process; true for the first.
pub(crate) fn com_initialize() -> bool {
    COM_INITIALIZED.fetch_add(1, Ordering::AcqRel) == 0
}

/// CoUninitialize: one user less (never below zero).
pub(crate) fn com_uninitialize() {
    let _ = COM_INITIALIZED.fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| {
        count.checked_sub(1)
    });
}

pub(crate) fn com_is_initialized() -> bool {
    COM_INITIALIZED.load(Ordering::Acquire) > 0
}
