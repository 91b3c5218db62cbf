//! CoCreateInstance before CoInitializeEx, and the class rules, in a process of its own
//! (COM's initialisation count is per process).

#![expect(
    clippy::borrow_as_ptr,
    reason = "the tests write calls as C does: `&IID_X` for a REFIID"
)]

use std::ffi::c_void;

use qmgr_core::hresult;
use qmgr_ffi::abi::bits::*;
use qmgr_ffi::abi::qmgr::*;
use qmgr_ffi::abi::types::*;

fn create(clsid: &GUID, context: DWORD, iid: &GUID) -> (HRESULT, *mut c_void) {
    let mut out: *mut c_void = std::ptr::NonNull::dangling().as_ptr();
    // SAFETY: valid GUIDs and out-pointer.
    let code = unsafe {
        qmgr_ffi::CoCreateInstance(clsid, std::ptr::null_mut(), context, iid, &raw mut out)
    };
    (code, out)
}

/// CoInitializeSecurity as Microsoft's samples call it.
fn initialize_security() -> HRESULT {
    // SAFETY: every argument is ignored; NULLs are allowed.
    unsafe {
        qmgr_ffi::CoInitializeSecurity(
            std::ptr::null_mut(),
            -1,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
            0,
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
        )
    }
}

#[test]
fn classes_are_refused_before_coinitialize_and_checked_after() {
    let (code, out) = create(
        &CLSID_BackgroundCopyManager,
        CLSCTX_LOCAL_SERVER,
        &IID_IBackgroundCopyManager,
    );
    assert_eq!(code, hresult::CO_E_NOTINITIALIZED.0);
    assert!(out.is_null(), "*ppv is NULL on failure");

    // SAFETY: plain calls.
    unsafe {
        assert_eq!(
            qmgr_ffi::CoInitializeEx(std::ptr::null_mut(), COINIT_MULTITHREADED),
            0
        );
        assert_eq!(
            qmgr_ffi::CoInitializeEx(std::ptr::null_mut(), COINIT_MULTITHREADED),
            hresult::S_FALSE.0
        );
        // Another model on the same thread is refused, and needs no CoUninitialize.
        assert_eq!(
            qmgr_ffi::CoInitialize(std::ptr::null_mut()),
            hresult::RPC_E_CHANGED_MODE.0
        );
        qmgr_ffi::CoUninitialize();
    }
    assert_eq!(initialize_security(), 0);
    // A GUID that is no class is "not registered" — refused before any connection to the
    // queue is needed.
    let (code, out) = create(&IID_IBackgroundCopyJob, CLSCTX_LOCAL_SERVER, &IID_IUnknown);
    assert_eq!(code, hresult::REGDB_E_CLASSNOTREG.0);
    assert!(out.is_null());
    let (code, _) = create(
        &CLSID_BackgroundCopyQMgr,
        CLSCTX_REMOTE_SERVER,
        &IID_IUnknown,
    );
    assert_eq!(
        code,
        hresult::REGDB_E_CLASSNOTREG.0,
        "only local and in-process contexts"
    );
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: NULL GUID pointers are refused before any use.
    let code = unsafe {
        qmgr_ffi::CoCreateInstance(
            std::ptr::null(),
            std::ptr::null_mut(),
            CLSCTX_ALL,
            &IID_IUnknown,
            &raw mut out,
        )
    };
    assert_eq!(code, hresult::E_POINTER.0);
    // SAFETY: as above.
    let code = unsafe {
        qmgr_ffi::CoCreateInstance(
            &CLSID_BackgroundCopyManager,
            std::ptr::null_mut(),
            CLSCTX_ALL,
            &IID_IUnknown,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(code, hresult::E_POINTER.0);
}

/// The text of a BSTR, freed.
fn take_bstr(bstr: BSTR) -> String {
    assert!(!bstr.is_null());
    // SAFETY: a live BSTR of SysStringLen units, freed once.
    unsafe {
        let len = qmgr_ffi::SysStringLen(bstr) as usize;
        let text = String::from_utf16_lossy(std::slice::from_raw_parts(bstr, len));
        qmgr_ffi::SysFreeString(bstr);
        text
    }
}

/// The description GetErrorInfo gives for the thread's last call, or `None` (S_FALSE).
fn last_error_description() -> Option<String> {
    let mut info: *mut IErrorInfo = std::ptr::NonNull::dangling().as_ptr();
    // SAFETY: a writable out-pointer; the object is used through its vtable and released.
    unsafe {
        let code = qmgr_ffi::GetErrorInfo(0, &raw mut info);
        if code == hresult::S_FALSE.0 {
            assert!(info.is_null(), "no error information: *pperrinfo is NULL");
            return None;
        }
        assert_eq!(code, 0);
        let vtbl = &*(*info).lpVtbl;
        let (mut description, mut source) = (std::ptr::null_mut(), std::ptr::null_mut());
        assert_eq!((vtbl.GetDescription)(info, &raw mut description), 0);
        assert_eq!((vtbl.GetSource)(info, &raw mut source), 0);
        assert_eq!(take_bstr(source), "qmgr");
        let mut guid = GUID::new(1, 2, 3, [4; 8]);
        assert_eq!((vtbl.GetGUID)(info, &raw mut guid), 0);
        assert_eq!(guid, GUID::default());
        assert_eq!((vtbl.base.Release)(info.cast()), 0);
        Some(take_bstr(description))
    }
}

#[test]
fn a_failed_call_is_described_by_get_error_info_until_the_next_call() {
    // A thread of its own: the initialisation test above shares the process, not the
    // thread's error information.
    std::thread::spawn(|| {
        assert_eq!(last_error_description(), None);
        let (code, _) = create(&GUID::new(1, 2, 3, [4; 8]), CLSCTX_ALL, &IID_IUnknown);
        assert_ne!(code, 0);
        let described = last_error_description().expect("a description of the failure");
        assert!(
            described.contains("CoInitializeEx was not called") || described.contains("class"),
            "{described}"
        );
        assert_eq!(last_error_description(), None, "taken once");

        let (failed, _) = create(&GUID::new(1, 2, 3, [4; 8]), CLSCTX_ALL, &IID_IUnknown);
        assert_ne!(failed, 0);
        // A call that succeeds and changes nothing (it accepts any arguments).
        assert_eq!(initialize_security(), 0);
        assert_eq!(last_error_description(), None, "a later call forgets it");
    })
    .join()
    .unwrap();
}
