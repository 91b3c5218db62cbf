//! The legacy group API of qmgr.h, end to end.

use std::ffi::c_void;
use std::time::{Duration, Instant};

use qmgr_core::hresult;
use qmgr_ffi::abi::bits::{IID_IBackgroundCopyJob, IID_IBackgroundCopyManager};
use qmgr_ffi::abi::qmgr::*;
use qmgr_ffi::abi::types::*;
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

use crate::common::*;
use crate::vcall;

fn qmgr() -> *mut IBackgroundCopyQMgr {
    setup();
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: valid GUIDs and out-pointer.
    let code = unsafe {
        qmgr_ffi::CoCreateInstance(
            &CLSID_BackgroundCopyQMgr,
            std::ptr::null_mut(),
            CLSCTX_ALL,
            &IID_IBackgroundCopyQMgr,
            &raw mut out,
        )
    };
    assert_eq!(code, 0);
    out.cast()
}

fn random_guid() -> GUID {
    qmgr_core::Guid::new_random().into()
}

fn bstr(text: &str) -> BSTR {
    let text = wide(text);
    // SAFETY: a NUL-terminated string.
    unsafe { qmgr_ffi::SysAllocString(text.as_ptr()) }
}

fn bstr_text(bstr: BSTR) -> String {
    // SAFETY: a live BSTR from the library.
    let len = unsafe { qmgr_ffi::SysStringLen(bstr) } as usize;
    // SAFETY: `len` units; freed once afterwards.
    let text = String::from_utf16(unsafe { std::slice::from_raw_parts(bstr, len) }).unwrap();
    // SAFETY: as above.
    unsafe { qmgr_ffi::SysFreeString(bstr) };
    text
}

fn status(group: *mut IBackgroundCopyGroup) -> DWORD {
    let (mut status, mut index) = (0, 9);
    assert_eq!(vcall!(group, GetStatus(&raw mut status, &raw mut index)), 0);
    assert_eq!(index, 0);
    status
}

#[test]
fn a_group_downloads_its_job_s_files_without_complete() {
    let fx = setup();
    let server = TestServer::start();
    let qmgr = qmgr();
    assert_eq!(
        query::<_, IUnknown>(qmgr, &IID_IBackgroundCopyManager).unwrap_err(),
        hr(hresult::E_NOINTERFACE)
    );
    let group_id = random_guid();
    let mut group = std::ptr::null_mut();
    assert_eq!(vcall!(qmgr, CreateGroup(group_id, &raw mut group)), 0);
    let mut duplicate = group;
    assert_eq!(
        vcall!(qmgr, CreateGroup(group_id, &raw mut duplicate)),
        hr(hresult::E_INVALIDARG),
        "the GUID is taken"
    );
    assert!(
        duplicate.is_null(),
        "a failed call leaves NULL in its out-parameter"
    );
    assert_eq!(
        status(group),
        QM_STATUS_GROUP_SUSPENDED | QM_STATUS_GROUP_INCOMPLETE
    );

    // Properties through VARIANTs.
    let mut name = VARIANT::EMPTY;
    name.vt = VT_BSTR;
    name.value.bstrVal = bstr("legacy group");
    assert_eq!(
        vcall!(group, SetProp(GROUPPROP_DISPLAYNAME, &raw mut name)),
        0
    );
    // SAFETY: a VARIANT owning its BSTR.
    unsafe { qmgr_ffi::VariantClear(&raw mut name) };
    let mut read = VARIANT::EMPTY;
    assert_eq!(
        vcall!(group, GetProp(GROUPPROP_DISPLAYNAME, &raw mut read)),
        0
    );
    assert_eq!(read.vt, VT_BSTR);
    // SAFETY: vt says bstrVal.
    assert_eq!(bstr_text(unsafe { read.value.bstrVal }), "legacy group");
    let mut priority = VARIANT::EMPTY;
    priority.vt = VT_UI2;
    priority.value.uiVal = 1;
    assert_eq!(
        vcall!(group, SetProp(GROUPPROP_PRIORITY, &raw mut priority)),
        0
    );
    priority.value.uiVal = 2;
    assert_eq!(
        vcall!(group, SetProp(GROUPPROP_PRIORITY, &raw mut priority)),
        hr(hresult::E_INVALIDARG)
    );
    assert_eq!(vcall!(group, GetProp(GROUPPROP_PRIORITY, &raw mut read)), 0);
    // SAFETY: vt says lVal.
    assert_eq!((read.vt, unsafe { read.value.lVal }), (VT_I4, 1));
    let mut flags = VARIANT::EMPTY;
    flags.vt = VT_BSTR;
    flags.value.bstrVal = std::ptr::null_mut();
    assert_eq!(
        vcall!(group, SetProp(GROUPPROP_NOTIFYFLAGS, &raw mut flags)),
        hr(hresult::E_INVALIDARG),
        "wrong VARIANT type"
    );
    assert_eq!(
        vcall!(group, GetProp(GROUPPROP_REMOTEUSERID, &raw mut read)),
        hr(hresult::E_NOTIMPL)
    );
    // No job yet: nothing to give through the modern interfaces.
    let mut unk = std::ptr::null_mut();
    assert_eq!(
        vcall!(
            group,
            QueryNewJobInterface(&IID_IBackgroundCopyJob, &raw mut unk)
        ),
        hr(hresult::QM_E_ITEM_NOT_FOUND)
    );

    // The group's one job and its files.
    let job_id = random_guid();
    let mut job = std::ptr::null_mut();
    assert_eq!(vcall!(group, CreateJob(job_id, &raw mut job)), 0);
    let mut second = std::ptr::null_mut();
    assert_eq!(
        vcall!(group, CreateJob(random_guid(), &raw mut second)),
        hr(hresult::E_NOTIMPL),
        "a group holds one job"
    );
    let local = fx.path("legacy.bin");
    let mut info = FILESETINFO {
        bstrRemoteFile: bstr(&server.url("/data/5000/legacy")),
        bstrLocalFile: bstr(&local),
        dwSizeHint: 5000,
    };
    let mut infos = [&raw mut info];
    assert_eq!(vcall!(job, AddFiles(1, infos.as_mut_ptr())), 0);
    let mut count = 0;
    vcall!(job, GetFileCount(&raw mut count));
    assert_eq!(count, 1);
    let mut got = FILESETINFO {
        bstrRemoteFile: std::ptr::null_mut(),
        bstrLocalFile: std::ptr::null_mut(),
        dwSizeHint: 9,
    };
    assert_eq!(vcall!(job, GetFile(0, &raw mut got)), 0);
    assert_eq!(bstr_text(got.bstrLocalFile), local);
    assert_eq!(
        bstr_text(got.bstrRemoteFile),
        server.url("/data/5000/legacy")
    );
    assert_eq!(
        vcall!(job, GetFile(1, &raw mut got)),
        hr(hresult::QM_E_ITEM_NOT_FOUND)
    );
    // SAFETY: the BSTRs this test allocated.
    unsafe {
        qmgr_ffi::SysFreeString(info.bstrRemoteFile);
        qmgr_ffi::SysFreeString(info.bstrLocalFile);
    }
    let mut id = GUID::default();
    vcall!(job, get_JobID(&raw mut id));
    assert_eq!(id, job_id);

    assert_eq!(vcall!(group, ResumeGroup()), 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while status(group) & QM_STATUS_GROUP_COMPLETE == 0 {
        assert!(
            Instant::now() < deadline,
            "the group did not finish: 0x{:X}",
            status(group)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        status(group),
        QM_STATUS_GROUP_COMPLETE | QM_STATUS_GROUP_SUSPENDED
    );
    assert_eq!(
        std::fs::read(&local).unwrap(),
        expected_body("/data/5000/legacy", INITIAL_VERSION, 5000),
        "no Complete needed"
    );
    let mut progress = 0;
    assert_eq!(
        vcall!(
            group,
            GetProgress(QM_PROGRESS_PERCENT_DONE, &raw mut progress)
        ),
        0
    );
    assert_eq!(progress, 100);
    assert_eq!(
        vcall!(job, GetProgress(QM_PROGRESS_SIZE_DONE, &raw mut progress)),
        0
    );
    assert_eq!(progress, 5000);
    assert_eq!(
        vcall!(group, GetProgress(QM_PROGRESS_TIME_DONE, &raw mut progress)),
        hr(hresult::E_NOTIMPL)
    );
    let mut size = 0;
    vcall!(group, get_Size(&raw mut size));
    assert_eq!(size, 5000);
    let (mut job_status, mut win32, mut transport, mut retries) = (0, 9, 9, 9);
    vcall!(
        job,
        GetStatus(
            &raw mut job_status,
            &raw mut win32,
            &raw mut transport,
            &raw mut retries
        )
    );
    assert_eq!(
        (job_status, win32, transport, retries),
        (QM_STATUS_JOB_COMPLETE, 0, 0, 0)
    );

    // Enumerators of GUIDs, and lookups.
    let mut groups: *mut IEnumBackgroundCopyGroups = std::ptr::null_mut();
    assert_eq!(vcall!(qmgr, EnumGroups(0, &raw mut groups)), 0);
    let mut refused = std::ptr::null_mut();
    assert_eq!(
        vcall!(qmgr, EnumGroups(1, &raw mut refused)),
        hr(hresult::E_NOTIMPL)
    );
    let mut group_ids = vec![GUID::default(); 64];
    let mut fetched = 0;
    vcall!(groups, Next(64, group_ids.as_mut_ptr(), &raw mut fetched));
    assert!(group_ids[..fetched as usize].contains(&group_id));
    let mut jobs: *mut IEnumBackgroundCopyJobs1 = std::ptr::null_mut();
    assert_eq!(vcall!(group, EnumJobs(0, &raw mut jobs)), 0);
    let mut listed = GUID::default();
    assert_eq!(
        vcall!(jobs, Next(1, &raw mut listed, std::ptr::null_mut())),
        0
    );
    assert_eq!(listed, job_id);
    let mut total = 0;
    vcall!(jobs, GetCount(&raw mut total));
    assert_eq!(total, 1);
    let mut again = std::ptr::null_mut();
    assert_eq!(vcall!(group, GetJob(job_id, &raw mut again)), 0);
    release(again);
    assert_eq!(
        vcall!(group, GetJob(random_guid(), &raw mut again)),
        hr(hresult::QM_E_ITEM_NOT_FOUND)
    );
    let mut found = std::ptr::null_mut();
    assert_eq!(vcall!(qmgr, GetGroup(group_id, &raw mut found)), 0);
    let mut found_id = GUID::default();
    vcall!(found, get_GroupID(&raw mut found_id));
    assert_eq!(found_id, group_id);
    release(found);

    assert_eq!(vcall!(group, CancelGroup()), 0);
    assert!(
        std::path::Path::new(&local).exists(),
        "finished files stay after CancelGroup"
    );
    assert_eq!(
        vcall!(qmgr, GetGroup(group_id, &raw mut found)),
        hr(hresult::QM_E_ITEM_NOT_FOUND)
    );
    for p in [
        jobs.cast::<IUnknown>(),
        groups.cast(),
        job.cast(),
        group.cast(),
        qmgr.cast(),
    ] {
        release(p);
    }
}
