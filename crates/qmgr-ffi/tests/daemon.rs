//! The library's own link to the queue, in XDG directories of this test's own: by default
//! qmgrd, started on demand by the first CoCreateInstance (the callback then runs over the
//! daemon's notification connection; the daemon is stopped at the end); with the feature
//! `in-process`, a queue manager inside this process.

#![expect(
    clippy::borrow_as_ptr,
    reason = "the test writes calls as C does: `&IID_X` for a REFIID"
)]

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Sender};
use std::time::{Duration, Instant};

use qmgr_core::hresult;
use qmgr_ffi::abi::bits::*;
use qmgr_ffi::abi::types::*;
use qmgr_tests::qmgrd::built_qmgrd;
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

/// A client callback that completes its job inside JobTransferred.
#[repr(C)]
struct Callback {
    vtbl: *const IBackgroundCopyCallbackVtbl,
    references: AtomicU32,
    done: Mutex<Sender<HRESULT>>,
}

unsafe extern "C" fn query_interface(
    this: *mut IUnknown,
    riid: REFIID,
    ppv: *mut *mut c_void,
) -> HRESULT {
    // SAFETY: COM's contract: a valid IID, a writable out-pointer, `this` a Callback.
    unsafe {
        let iid = riid.read();
        if iid == IID_IUnknown || iid == IID_IBackgroundCopyCallback {
            (*this.cast::<Callback>())
                .references
                .fetch_add(1, Ordering::SeqCst);
            ppv.write(this.cast());
            0
        } else {
            ppv.write(std::ptr::null_mut());
            hresult::E_NOINTERFACE.0
        }
    }
}

unsafe extern "C" fn add_ref(this: *mut IUnknown) -> ULONG {
    // SAFETY: `this` is a Callback.
    unsafe {
        (*this.cast::<Callback>())
            .references
            .fetch_add(1, Ordering::SeqCst)
            + 1
    }
}

unsafe extern "C" fn release(this: *mut IUnknown) -> ULONG {
    // SAFETY: `this` is a Callback; the test owns the last reference.
    unsafe {
        (*this.cast::<Callback>())
            .references
            .fetch_sub(1, Ordering::SeqCst)
            - 1
    }
}

unsafe extern "C" fn job_transferred(
    this: *mut IBackgroundCopyCallback,
    job: *mut IBackgroundCopyJob,
) -> HRESULT {
    // SAFETY: `job` is a live job pointer for the duration of the call; `this` a Callback.
    unsafe {
        let code = ((*(*job).lpVtbl).Complete)(job);
        let _ = (*this.cast::<Callback>()).done.lock().unwrap().send(code);
    }
    0
}

unsafe extern "C" fn job_error(
    _: *mut IBackgroundCopyCallback,
    _: *mut IBackgroundCopyJob,
    _: *mut IBackgroundCopyError,
) -> HRESULT {
    0
}

unsafe extern "C" fn job_modification(
    _: *mut IBackgroundCopyCallback,
    _: *mut IBackgroundCopyJob,
    _: DWORD,
) -> HRESULT {
    0
}

static CALLBACK_VTBL: IBackgroundCopyCallbackVtbl = IBackgroundCopyCallbackVtbl {
    base: IUnknownVtbl {
        QueryInterface: query_interface,
        AddRef: add_ref,
        Release: release,
    },
    JobTransferred: job_transferred,
    JobError: job_error,
    JobModification: job_modification,
};

/// Stops the qmgrd serving `state_dir` (its pid is in the store lock) when dropped.
struct Daemon {
    state_dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let lock = self.state_dir.join("qmgr").join("store.lock");
        let Ok(pid) = std::fs::read_to_string(&lock)
            .unwrap_or_default()
            .trim()
            .parse::<i32>()
        else {
            return;
        };
        // In-process, this test's own process holds the store.
        if u32::try_from(pid).ok() == Some(std::process::id()) {
            return;
        }
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn the_library_reaches_its_queue_without_help() {
    let in_process = cfg!(feature = "in-process");
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qmgr-ffi-daemon");
    let _ = std::fs::remove_dir_all(&root);
    let downloads = root.join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    // SAFETY: the only test of this binary sets the environment before any thread of the
    // library exists or reads it.
    unsafe {
        std::env::set_var("XDG_STATE_HOME", root.join("state"));
        std::env::set_var("XDG_CONFIG_HOME", root.join("config"));
        std::env::set_var("XDG_RUNTIME_DIR", root.join("run"));
        // Root's GetJob of a job it lacks looks here, not at real users' daemons.
        std::env::set_var("QMGR_USER_RUNTIME_ROOT", root.join("users"));
        if !in_process {
            std::env::set_var("QMGRD", built_qmgrd(Path::new(env!("CARGO_MANIFEST_DIR"))));
        }
    }
    let _stop = Daemon {
        state_dir: root.join("state"),
    };
    let server = TestServer::start();

    // SAFETY: plain calls with valid pointers, as C makes them.
    unsafe {
        assert_eq!(
            qmgr_ffi::CoInitializeEx(std::ptr::null_mut(), COINIT_MULTITHREADED),
            0
        );
        let mut manager: *mut c_void = std::ptr::null_mut();
        let code = qmgr_ffi::CoCreateInstance(
            &CLSID_BackgroundCopyManager,
            std::ptr::null_mut(),
            CLSCTX_LOCAL_SERVER,
            &IID_IBackgroundCopyManager,
            &raw mut manager,
        );
        let log = std::fs::read_to_string(root.join("state/qmgr/qmgrd.log")).unwrap_or_default();
        assert_eq!(
            code, 0,
            "CoCreateInstance started no qmgrd; its log:\n{log}"
        );
        let manager = manager.cast::<IBackgroundCopyManager>();
        let name = qmgr_ffi::wide("over the socket");
        let (mut id, mut job) = (GUID::default(), std::ptr::null_mut());
        assert_eq!(
            ((*(*manager).lpVtbl).CreateJob)(
                manager,
                name.as_ptr(),
                BG_JOB_TYPE_DOWNLOAD,
                &raw mut id,
                &raw mut job
            ),
            0
        );
        let local = downloads.join("daemon.bin");
        let (url, local_name) = (
            qmgr_ffi::wide(&server.url("/data/64k/daemon")),
            qmgr_ffi::wide(&local.to_string_lossy()),
        );
        assert_eq!(
            ((*(*job).lpVtbl).AddFile)(job, url.as_ptr(), local_name.as_ptr()),
            0
        );

        let (sender, done) = mpsc::channel();
        let callback = Box::new(Callback {
            vtbl: &raw const CALLBACK_VTBL,
            references: AtomicU32::new(1),
            done: Mutex::new(sender),
        });
        let object: *mut IUnknown = std::ptr::from_ref(&*callback).cast_mut().cast();
        assert_eq!(((*(*job).lpVtbl).SetNotifyInterface)(job, object), 0);
        assert_eq!(((*(*job).lpVtbl).Resume)(job), 0);
        let completed = done
            .recv_timeout(Duration::from_secs(60))
            .expect("JobTransferred over the socket");
        assert_eq!(completed, 0, "Complete inside JobTransferred");
        assert_eq!(
            std::fs::read(&local).unwrap(),
            expected_body("/data/64k/daemon", INITIAL_VERSION, 65_536)
        );
        let mut state = 99;
        ((*(*job).lpVtbl).GetState)(job, &raw mut state);
        assert_eq!(state, BG_JOB_STATE_ACKNOWLEDGED);
        let mut again = std::ptr::null_mut();
        assert_eq!(
            ((*(*manager).lpVtbl).GetJob)(manager, &id, &raw mut again),
            hresult::BG_E_NOT_FOUND.0
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while callback.references.load(Ordering::SeqCst) != 1 {
            assert!(
                Instant::now() < deadline,
                "the library still references the callback"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let holder = std::fs::read_to_string(root.join("state/qmgr/store.lock")).unwrap();
        assert_eq!(
            holder.trim() == std::process::id().to_string(),
            in_process,
            "qmgrd holds the store unless the queue is in-process (holder {holder:?})"
        );
        ((*(*job).lpVtbl).base.Release)(job.cast());
        ((*(*manager).lpVtbl).base.Release)(manager.cast());
    }
}
