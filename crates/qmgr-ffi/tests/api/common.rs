//! The fixture every test shares: one in-process queue for the whole test binary (the
//! library keeps one service per process), in a state directory of its own, and helpers
//! that call through vtables exactly as C does.

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use qmgr_core::config::Config;
use qmgr_core::paths::StatePaths;
use qmgr_ffi::abi::bits::*;
use qmgr_ffi::abi::types::*;
use qmgr_service::{LocalService, QueueManager, SystemClock};

/// The uid the in-process queue believes the caller has (not root, so that root-only
/// answers can be tested whoever runs the tests).
pub const UID: u32 = 1000;

pub struct Fixture {
    downloads: PathBuf,
}

impl Fixture {
    /// An absolute path for a downloaded file, unique to `name`.
    pub fn path(&self, name: &str) -> String {
        self.downloads.join(name).to_string_lossy().into_owned()
    }
}

/// Installs the in-process queue (once) and initialises COM.
pub fn setup() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qmgr-ffi-api");
        let _ = std::fs::remove_dir_all(&root);
        let (state, downloads) = (root.join("state"), root.join("downloads"));
        std::fs::create_dir_all(&state).unwrap();
        std::fs::create_dir_all(&downloads).unwrap();
        let config = Config {
            max_background_jobs: 16,
            max_jobs_per_user: 100_000,
            ..Config::default()
        };
        let manager = QueueManager::start(
            config,
            &StatePaths::isolated(&state),
            Arc::new(SystemClock::new()),
        )
        .unwrap();
        assert!(qmgr_ffi::install_service(Arc::new(LocalService::new(
            manager, UID
        ))));
        // SAFETY: plain call.
        let hr = unsafe { qmgr_ffi::CoInitializeEx(std::ptr::null_mut(), COINIT_MULTITHREADED) };
        assert!(hr >= 0, "CoInitializeEx: 0x{hr:08X}");
        Fixture { downloads }
    })
}

/// Calls a vtable slot: `vcall!(ptr, Method(args…))`, or `vcall!(ptr, base.base.Method(…))`
/// for an inherited method reached through a derived interface pointer.
#[macro_export]
macro_rules! vcall {
    ($ptr:expr, $($field:ident).+ ( $($arg:expr),* $(,)? )) => {{
        let p = $ptr;
        // SAFETY: test pointers are live interface pointers from the library.
        unsafe { ((*(*p).lpVtbl).$($field).+)(p $(, $arg)*) }
    }};
}

/// As IUnknown (the first three slots of every vtable are IUnknown's).
pub fn unknown<I>(p: *mut I) -> *mut IUnknown {
    p.cast()
}

pub fn query<I, J>(p: *mut I, iid: &GUID) -> Result<*mut J, HRESULT> {
    let mut out: *mut c_void = std::ptr::null_mut();
    let hr = vcall!(unknown(p), QueryInterface(iid, &raw mut out));
    if hr == 0 {
        assert!(!out.is_null());
        Ok(out.cast())
    } else {
        assert!(out.is_null(), "a failed QueryInterface leaves NULL");
        Err(hr)
    }
}

pub fn add_ref<I>(p: *mut I) -> u32 {
    vcall!(unknown(p), AddRef())
}

pub fn release<I>(p: *mut I) -> u32 {
    vcall!(unknown(p), Release())
}

pub fn wide(text: &str) -> Vec<u16> {
    qmgr_ffi::wide(text)
}

/// Takes a CoTaskMemAlloc'ed string the library returned and frees it.
pub fn take_string(p: LPWSTR) -> String {
    assert!(!p.is_null(), "expected a string");
    let mut len = 0;
    // SAFETY: the library returns NUL-terminated strings.
    while unsafe { p.add(len).read() } != 0 {
        len += 1;
    }
    // SAFETY: `len` units were just read.
    let text = String::from_utf16(unsafe { std::slice::from_raw_parts(p, len) }).unwrap();
    // SAFETY: the string came from CoTaskMemAlloc.
    unsafe { qmgr_ffi::CoTaskMemFree(p.cast()) };
    text
}

pub fn manager() -> *mut IBackgroundCopyManager {
    setup();
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: valid GUIDs and out-pointer.
    let hr = unsafe {
        qmgr_ffi::CoCreateInstance(
            &CLSID_BackgroundCopyManager,
            std::ptr::null_mut(),
            CLSCTX_LOCAL_SERVER,
            &IID_IBackgroundCopyManager,
            &raw mut out,
        )
    };
    assert_eq!(hr, 0, "CoCreateInstance");
    out.cast()
}

/// A new download job and its id.
pub fn create_job(
    manager: *mut IBackgroundCopyManager,
    name: &str,
) -> (*mut IBackgroundCopyJob, GUID) {
    let mut id = GUID::default();
    let mut job = std::ptr::null_mut();
    let name = wide(name);
    let hr = vcall!(
        manager,
        CreateJob(
            name.as_ptr(),
            BG_JOB_TYPE_DOWNLOAD,
            &raw mut id,
            &raw mut job
        )
    );
    assert_eq!(hr, 0, "CreateJob");
    (job, id)
}

pub fn state(job: *mut IBackgroundCopyJob) -> BG_JOB_STATE {
    let mut state = 99;
    assert_eq!(vcall!(job, GetState(&raw mut state)), 0);
    state
}

/// Polls GetState until `wanted` (a hang fails the test; nothing measures speed).
pub fn wait_for_state(job: *mut IBackgroundCopyJob, wanted: BG_JOB_STATE) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = state(job);
        if now == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job stuck in state {now}, waiting for {wanted}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn hr(code: qmgr_core::HResult) -> HRESULT {
    code.0
}
