//! Transfers through the C ABI: a download, a failed download and its
//! IBackgroundCopyError, and a callback that completes the job inside JobTransferred.

use std::ffi::c_void;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use qmgr_core::hresult;
use qmgr_ffi::abi::bits::*;
use qmgr_ffi::abi::types::*;
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

use crate::common::*;
use crate::vcall;

fn add_file(job: *mut IBackgroundCopyJob, url: &str, local: &str) {
    let (url, local) = (wide(url), wide(local));
    assert_eq!(vcall!(job, AddFile(url.as_ptr(), local.as_ptr())), 0);
}

#[test]
fn a_download_completes_with_the_server_s_bytes() {
    let fx = setup();
    let server = TestServer::start();
    let manager = manager();
    let (job, _) = create_job(manager, "download");
    let local = fx.path("download-64k.bin");
    add_file(job, &server.url("/data/64k/download"), &local);
    assert_eq!(vcall!(job, Resume()), 0);
    wait_for_state(job, BG_JOB_STATE_TRANSFERRED);
    let mut progress = BG_JOB_PROGRESS::default();
    vcall!(job, GetProgress(&raw mut progress));
    assert_eq!(
        progress,
        BG_JOB_PROGRESS {
            BytesTotal: 65_536,
            BytesTransferred: 65_536,
            FilesTotal: 1,
            FilesTransferred: 1
        }
    );
    let mut times = BG_JOB_TIMES::default();
    vcall!(job, GetTimes(&raw mut times));
    assert_ne!(times.TransferCompletionTime, FILETIME::default());
    assert!(
        !std::path::Path::new(&local).exists(),
        "nothing appears before Complete"
    );
    assert_eq!(vcall!(job, Complete()), 0);
    assert_eq!(state(job), BG_JOB_STATE_ACKNOWLEDGED);
    assert_eq!(
        std::fs::read(&local).unwrap(),
        expected_body("/data/64k/download", INITIAL_VERSION, 65_536)
    );
    assert_eq!(vcall!(job, Complete()), hr(hresult::BG_E_INVALID_STATE));
    release(job);
    release(manager);
}

#[test]
fn a_failed_download_explains_itself_through_ibackgroundcopyerror() {
    let fx = setup();
    let server = TestServer::start();
    let manager = manager();
    let (job, _) = create_job(manager, "missing");
    add_file(job, &server.url("/nothing/here"), &fx.path("missing.bin"));
    vcall!(job, Resume());
    wait_for_state(job, BG_JOB_STATE_ERROR);
    let mut error: *mut IBackgroundCopyError = std::ptr::null_mut();
    assert_eq!(vcall!(job, GetError(&raw mut error)), 0);
    let (mut context, mut code) = (0, 0);
    assert_eq!(vcall!(error, GetError(&raw mut context, &raw mut code)), 0);
    assert_eq!(
        (context, code),
        (
            BG_ERROR_CONTEXT_REMOTE_FILE,
            hr(hresult::BG_E_HTTP_ERROR_404)
        )
    );
    let mut file = std::ptr::null_mut();
    assert_eq!(vcall!(error, GetFile(&raw mut file)), 0);
    let mut name = std::ptr::null_mut();
    vcall!(file, GetLocalName(&raw mut name));
    assert_eq!(take_string(name), fx.path("missing.bin"));
    release(file);
    let mut text = std::ptr::null_mut();
    assert_eq!(vcall!(error, GetErrorDescription(0x409, &raw mut text)), 0);
    assert!(take_string(text).contains("404"));
    assert_eq!(
        vcall!(error, GetErrorContextDescription(0x409, &raw mut text)),
        0
    );
    assert!(!take_string(text).is_empty());
    assert_eq!(vcall!(error, GetProtocol(&raw mut text)), 0);
    assert_eq!(take_string(text), "http");
    let mut errors = 0;
    vcall!(job, GetErrorCount(&raw mut errors));
    assert!(errors >= 1);
    assert_eq!(vcall!(job, Cancel()), 0);
    release(error);
    release(job);
    release(manager);
}

/// What the test's callback saw.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// JobTransferred ran; its Complete call answered this.
    Transferred(HRESULT),
    Error,
}

/// A client-side IBackgroundCopyCallback, laid out as C would lay it out.
#[repr(C)]
struct Callback {
    vtbl: *const IBackgroundCopyCallbackVtbl,
    references: AtomicU32,
    modifications: AtomicU32,
    seen: Mutex<Sender<Seen>>,
}

fn callback_of(this: *mut c_void) -> &'static Callback {
    // SAFETY: the library only calls these functions through pointers to a Callback.
    unsafe { &*this.cast::<Callback>() }
}

unsafe extern "C" fn query_interface(
    this: *mut IUnknown,
    riid: REFIID,
    ppv: *mut *mut c_void,
) -> HRESULT {
    // SAFETY: COM's contract: valid IID and out-pointer.
    let iid = unsafe { riid.read() };
    if iid == IID_IUnknown || iid == IID_IBackgroundCopyCallback {
        callback_of(this.cast())
            .references
            .fetch_add(1, Ordering::SeqCst);
        // SAFETY: as above.
        unsafe { ppv.write(this.cast()) };
        0
    } else {
        // SAFETY: as above.
        unsafe { ppv.write(std::ptr::null_mut()) };
        hr(hresult::E_NOINTERFACE)
    }
}

unsafe extern "C" fn add_ref_callback(this: *mut IUnknown) -> ULONG {
    callback_of(this.cast())
        .references
        .fetch_add(1, Ordering::SeqCst)
        + 1
}

unsafe extern "C" fn release_callback(this: *mut IUnknown) -> ULONG {
    // The test keeps the last reference and frees the object itself.
    callback_of(this.cast())
        .references
        .fetch_sub(1, Ordering::SeqCst)
        - 1
}

unsafe extern "C" fn job_transferred(
    this: *mut IBackgroundCopyCallback,
    job: *mut IBackgroundCopyJob,
) -> HRESULT {
    // What Microsoft's samples do: complete the job from inside the callback.
    let code = vcall!(job, Complete());
    let _ = callback_of(this.cast())
        .seen
        .lock()
        .unwrap()
        .send(Seen::Transferred(code));
    0
}

unsafe extern "C" fn job_error(
    this: *mut IBackgroundCopyCallback,
    _: *mut IBackgroundCopyJob,
    _: *mut IBackgroundCopyError,
) -> HRESULT {
    let _ = callback_of(this.cast())
        .seen
        .lock()
        .unwrap()
        .send(Seen::Error);
    0
}

unsafe extern "C" fn job_modification(
    this: *mut IBackgroundCopyCallback,
    _: *mut IBackgroundCopyJob,
    _: DWORD,
) -> HRESULT {
    callback_of(this.cast())
        .modifications
        .fetch_add(1, Ordering::SeqCst);
    0
}

static CALLBACK_VTBL: IBackgroundCopyCallbackVtbl = IBackgroundCopyCallbackVtbl {
    base: IUnknownVtbl {
        QueryInterface: query_interface,
        AddRef: add_ref_callback,
        Release: release_callback,
    },
    JobTransferred: job_transferred,
    JobError: job_error,
    JobModification: job_modification,
};

fn new_callback() -> (Box<Callback>, Receiver<Seen>) {
    let (sender, receiver) = mpsc::channel();
    let callback = Box::new(Callback {
        vtbl: &raw const CALLBACK_VTBL,
        references: AtomicU32::new(1),
        modifications: AtomicU32::new(0),
        seen: Mutex::new(sender),
    });
    (callback, receiver)
}

/// Waits until only the test holds the callback (the dispatcher drops its reference when
/// the call it made returns).
fn wait_for_sole_reference(callback: &Callback) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while callback.references.load(Ordering::SeqCst) != 1 {
        assert!(
            Instant::now() < deadline,
            "the library still references the callback"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_callback_completes_the_job_inside_job_transferred() {
    let fx = setup();
    let server = TestServer::start();
    let manager = manager();
    let (job, _) = create_job(manager, "callback");
    let local = fx.path("callback.bin");
    add_file(job, &server.url("/data/64k/callback"), &local);

    let (callback, seen) = new_callback();
    let object: *mut IUnknown = std::ptr::from_ref(&*callback).cast_mut().cast();
    assert_eq!(
        vcall!(job, SetNotifyInterface(manager.cast())),
        hr(hresult::E_NOINTERFACE),
        "an object without IBackgroundCopyCallback is refused"
    );
    assert_eq!(vcall!(job, SetNotifyInterface(object)), 0);
    assert_eq!(
        callback.references.load(Ordering::SeqCst),
        2,
        "the library holds one reference"
    );
    let mut registered = std::ptr::null_mut();
    assert_eq!(vcall!(job, GetNotifyInterface(&raw mut registered)), 0);
    assert_eq!(registered, object);
    release(registered);

    let flags = BG_NOTIFY_JOB_TRANSFERRED | BG_NOTIFY_JOB_ERROR | BG_NOTIFY_JOB_MODIFICATION;
    assert_eq!(vcall!(job, SetNotifyFlags(flags)), 0);
    assert_eq!(vcall!(job, Resume()), 0);
    let event = seen
        .recv_timeout(Duration::from_secs(60))
        .expect("JobTransferred");
    assert!(
        callback.modifications.load(Ordering::SeqCst) > 0,
        "BG_NOTIFY_JOB_MODIFICATION brings JobModification calls"
    );
    assert_eq!(
        event,
        Seen::Transferred(0),
        "Complete inside the callback succeeds"
    );
    assert_eq!(state(job), BG_JOB_STATE_ACKNOWLEDGED);
    assert_eq!(
        std::fs::read(&local).unwrap(),
        expected_body("/data/64k/callback", INITIAL_VERSION, 65_536)
    );
    // The job left the queue: the library lets go of the callback.
    wait_for_sole_reference(&callback);
    release(job);
    release(manager);
}

#[test]
fn registering_on_a_failed_job_reports_the_error_at_once() {
    let fx = setup();
    let server = TestServer::start();
    let manager = manager();
    let (job, _) = create_job(manager, "late callback");
    add_file(job, &server.url("/gone?status=410"), &fx.path("gone.bin"));
    vcall!(job, Resume());
    wait_for_state(job, BG_JOB_STATE_ERROR);
    let (callback, seen) = new_callback();
    let object: *mut IUnknown = std::ptr::from_ref(&*callback).cast_mut().cast();
    assert_eq!(vcall!(job, SetNotifyInterface(object)), 0);
    assert_eq!(
        seen.recv_timeout(Duration::from_secs(60))
            .expect("JobError"),
        Seen::Error
    );
    assert_eq!(vcall!(job, SetNotifyInterface(std::ptr::null_mut())), 0);
    wait_for_sole_reference(&callback);
    vcall!(job, Cancel());
    release(job);
    release(manager);
}
