//! IUnknown: QueryInterface, AddRef and Release on every kind of object.

use qmgr_core::hresult;
use qmgr_ffi::abi::bits::*;
use qmgr_ffi::abi::types::*;

use crate::common::*;
use crate::vcall;

#[test]
fn query_interface_answers_the_object_s_interfaces_and_nothing_else() {
    let manager = manager();
    let same: *mut IBackgroundCopyManager = query(manager, &IID_IBackgroundCopyManager).unwrap();
    assert_eq!(same, manager);
    let unknown_ptr: *mut IUnknown = query(manager, &IID_IUnknown).unwrap();
    assert_eq!(unknown_ptr.cast(), manager);
    assert_eq!(
        query::<_, IBackgroundCopyJob>(manager, &IID_IBackgroundCopyJob).unwrap_err(),
        hr(hresult::E_NOINTERFACE)
    );
    let null_out = vcall!(
        unknown(manager),
        QueryInterface(&IID_IUnknown, std::ptr::null_mut())
    );
    assert_eq!(null_out, hr(hresult::E_POINTER));
    let mut out = std::ptr::NonNull::<std::ffi::c_void>::dangling().as_ptr();
    let null_iid = vcall!(
        unknown(manager),
        QueryInterface(std::ptr::null(), &raw mut out)
    );
    assert_eq!(null_iid, hr(hresult::E_POINTER));
    assert!(out.is_null());
    release(same);
    release(unknown_ptr);
    assert_eq!(release(manager), 0, "the last Release frees the manager");
}

#[test]
fn add_ref_and_release_count_references() {
    let manager = manager();
    assert_eq!(add_ref(manager), 2);
    assert_eq!(add_ref(manager), 3);
    assert_eq!(release(manager), 2);
    assert_eq!(release(manager), 1);
    assert_eq!(release(manager), 0);
}

#[test]
fn a_job_answers_every_job_version_and_http_options_as_one_object() {
    let manager = manager();
    let (job, _) = create_job(manager, "qi");
    let identity: *mut IUnknown = query(job, &IID_IUnknown).unwrap();
    for iid in [
        IID_IBackgroundCopyJob,
        IID_IBackgroundCopyJob2,
        IID_IBackgroundCopyJob3,
        IID_IBackgroundCopyJob4,
        IID_IBackgroundCopyJob5,
    ] {
        let versioned: *mut IBackgroundCopyJob = query(job, &iid).unwrap();
        assert_eq!(versioned, job, "the versions share the primary vtable");
        release(versioned);
    }
    let tokens: *mut IBitsTokenOptions = query(job, &IID_IBitsTokenOptions).unwrap();
    let mut flags = 0;
    assert_eq!(
        vcall!(tokens, GetHelperTokenFlags(&raw mut flags)),
        hr(hresult::E_NOTIMPL)
    );
    let tokens_job: *mut IBackgroundCopyJob = query(tokens, &IID_IBackgroundCopyJob).unwrap();
    assert_eq!(
        tokens_job, job,
        "the third vtable pointer leads back to the job"
    );
    release(tokens_job);
    release(tokens);
    let http: *mut IBackgroundCopyJobHttpOptions =
        query(job, &IID_IBackgroundCopyJobHttpOptions).unwrap();
    assert_ne!(http.cast(), job, "HttpOptions is a second vtable pointer");
    // Back from the second pointer: the same object, the same identity.
    let back: *mut IBackgroundCopyJob = query(http, &IID_IBackgroundCopyJob).unwrap();
    assert_eq!(back, job);
    let identity_again: *mut IUnknown = query(http, &IID_IUnknown).unwrap();
    assert_eq!(identity_again, identity);
    assert_eq!(
        query::<_, IBackgroundCopyFile>(http, &IID_IBackgroundCopyFile).unwrap_err(),
        hr(hresult::E_NOINTERFACE)
    );
    // References taken through either pointer count on the one object.
    for p in [back.cast::<IUnknown>(), identity, identity_again] {
        release(p);
    }
    release(http);
    assert_eq!(vcall!(job, Cancel()), 0);
    assert_eq!(release(job), 0);
    release(manager);
}

#[test]
fn versioned_clsids_up_to_5_0_create_the_manager() {
    setup();
    for clsid in [
        CLSID_BackgroundCopyManager1_5,
        CLSID_BackgroundCopyManager2_0,
        CLSID_BackgroundCopyManager2_5,
        CLSID_BackgroundCopyManager3_0,
        CLSID_BackgroundCopyManager4_0,
        CLSID_BackgroundCopyManager5_0,
    ] {
        let mut out: *mut std::ffi::c_void = std::ptr::null_mut();
        // SAFETY: valid GUIDs and out-pointer.
        let code = unsafe {
            qmgr_ffi::CoCreateInstance(
                &clsid,
                std::ptr::null_mut(),
                CLSCTX_ALL,
                &IID_IBackgroundCopyManager,
                &raw mut out,
            )
        };
        assert_eq!(code, 0, "{clsid:?}");
        release(out.cast::<IBackgroundCopyManager>());
    }
    let mut out: *mut std::ffi::c_void = std::ptr::null_mut();
    // SAFETY: valid GUIDs and out-pointer.
    let code = unsafe {
        qmgr_ffi::CoCreateInstance(
            &CLSID_BackgroundCopyManager,
            std::ptr::null_mut(),
            CLSCTX_ALL,
            &IID_IBackgroundCopyJob,
            &raw mut out,
        )
    };
    assert_eq!(
        (code, out),
        (hr(hresult::E_NOINTERFACE), std::ptr::null_mut())
    );
}
