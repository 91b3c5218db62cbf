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
            qmgr_ffi::CoInitialize(std::ptr::null_mut()),
            hresult::S_FALSE.0
        );
        qmgr_ffi::CoUninitialize();
        assert_eq!(
            qmgr_ffi::CoInitializeSecurity(
                std::ptr::null_mut(),
                -1,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
                0,
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut()
            ),
            0
        );
    }
    // Versions whose interfaces are not all implemented are "not registered" — refused
    // before any connection to the queue is needed.
    for clsid in [
        CLSID_BackgroundCopyManager10_1,
        CLSID_BackgroundCopyManager10_2,
        CLSID_BackgroundCopyManager10_3,
        IID_IBackgroundCopyJob,
    ] {
        let (code, out) = create(&clsid, CLSCTX_LOCAL_SERVER, &IID_IUnknown);
        assert_eq!(code, hresult::REGDB_E_CLASSNOTREG.0, "{clsid:?}");
        assert!(out.is_null());
    }
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
