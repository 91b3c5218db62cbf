//! A library built `in-process` and a qmgrd never serve one store together: whichever
//! comes second is refused, with an HRESULT and a description that names the other.

#![cfg(feature = "in-process")]
#![expect(
    clippy::borrow_as_ptr,
    reason = "the test writes calls as C does: `&IID_X` for a REFIID"
)]

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qmgr_core::hresult;
use qmgr_ffi::abi::bits::*;
use qmgr_ffi::abi::types::*;
use qmgr_tests::qmgrd::built_qmgrd;

/// The private XDG directories of this test.
struct Dirs {
    root: PathBuf,
}

impl Dirs {
    fn apply(&self, command: &mut Command) {
        command
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &self.root)
            .env("XDG_STATE_HOME", self.root.join("state"))
            .env("XDG_CONFIG_HOME", self.root.join("config"))
            .env("XDG_RUNTIME_DIR", self.root.join("run"));
    }

    fn store_lock(&self) -> PathBuf {
        self.root.join("state/qmgr/store.lock")
    }
}

/// A foreground qmgrd, killed on drop.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn create_manager() -> (HRESULT, *mut c_void) {
    let mut manager: *mut c_void = std::ptr::NonNull::dangling().as_ptr();
    // SAFETY: valid GUIDs and out-pointer, as C passes them.
    let code = unsafe {
        qmgr_ffi::CoCreateInstance(
            &CLSID_BackgroundCopyManager,
            std::ptr::null_mut(),
            CLSCTX_LOCAL_SERVER,
            &IID_IBackgroundCopyManager,
            &raw mut manager,
        )
    };
    (code, manager)
}

/// The description GetErrorInfo gives for this thread's last failed call.
fn last_error_description() -> String {
    let mut info: *mut IErrorInfo = std::ptr::null_mut();
    // SAFETY: a writable out-pointer; the object is used through its vtable and released,
    // the BSTR freed.
    unsafe {
        assert_eq!(qmgr_ffi::GetErrorInfo(0, &raw mut info), 0);
        let mut description = std::ptr::null_mut();
        assert_eq!(
            ((*(*info).lpVtbl).GetDescription)(info, &raw mut description),
            0
        );
        ((*(*info).lpVtbl).base.Release)(info.cast());
        let len = qmgr_ffi::SysStringLen(description) as usize;
        let text = String::from_utf16_lossy(std::slice::from_raw_parts(description, len));
        qmgr_ffi::SysFreeString(description);
        text
    }
}

fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_in_process_queue_and_qmgrd_refuse_to_share_a_store() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qmgr-ffi-in-process");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let dirs = Dirs { root: root.clone() };
    let qmgrd = built_qmgrd(Path::new(env!("CARGO_MANIFEST_DIR")));

    // qmgrd first: the library is refused and says who holds the store.
    let mut command = Command::new(&qmgrd);
    dirs.apply(&mut command);
    let daemon = Daemon(
        command
            .arg("--foreground")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let daemon_pid = daemon.0.id();
    wait_for("qmgrd to take the store lock", || {
        std::fs::read_to_string(dirs.store_lock())
            .is_ok_and(|text| text.trim() == daemon_pid.to_string())
    });
    // SAFETY: this is the only test of this binary; no library thread exists yet.
    unsafe {
        std::env::set_var("HOME", &root);
        std::env::set_var("XDG_STATE_HOME", root.join("state"));
        std::env::set_var("XDG_CONFIG_HOME", root.join("config"));
        std::env::set_var("XDG_RUNTIME_DIR", root.join("run"));
        assert_eq!(
            qmgr_ffi::CoInitializeEx(std::ptr::null_mut(), COINIT_MULTITHREADED),
            0
        );
    }
    let (code, manager) = create_manager();
    assert_eq!(code, hresult::HRESULT_ALREADY_EXISTS.0);
    assert!(manager.is_null(), "*ppv is NULL on failure");
    let described = last_error_description();
    assert!(
        described.contains("another queue manager") && described.contains(&daemon_pid.to_string()),
        "the description names the holder: {described}"
    );
    drop(daemon);

    // The library second time: it hosts the queue and holds the store; qmgrd is refused.
    let (code, manager) = create_manager();
    assert_eq!(code, 0, "with qmgrd gone the library hosts the queue");
    let own_pid = std::process::id().to_string();
    assert_eq!(
        std::fs::read_to_string(dirs.store_lock()).unwrap().trim(),
        own_pid
    );
    let mut command = Command::new(&qmgrd);
    dirs.apply(&mut command);
    let refused = command.arg("--foreground").output().unwrap();
    assert!(
        !refused.status.success(),
        "a second queue manager must not start"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("another queue manager") && stderr.contains(&own_pid),
        "qmgrd names the process holding the store: {stderr}"
    );
    // SAFETY: the manager from CoCreateInstance, released once.
    unsafe {
        let manager = manager.cast::<IBackgroundCopyManager>();
        ((*(*manager).lpVtbl).base.Release)(manager.cast());
    }
}
