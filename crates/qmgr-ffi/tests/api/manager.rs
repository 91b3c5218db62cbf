//! IBackgroundCopyManager and the job enumerator.

use qmgr_core::hresult;
use qmgr_ffi::abi::bits::*;
use qmgr_ffi::abi::types::*;

use crate::common::*;
use crate::vcall;

#[test]
fn create_job_checks_its_arguments() {
    let manager = manager();
    let name = wide("args");
    let (mut id, mut job) = (GUID::default(), std::ptr::null_mut());
    let cases = [
        (
            std::ptr::null(),
            BG_JOB_TYPE_DOWNLOAD,
            hresult::E_INVALIDARG,
        ),
        (name.as_ptr(), 7, hresult::E_INVALIDARG),
    ];
    for (display_name, job_type, expected) in cases {
        let code = vcall!(
            manager,
            CreateJob(display_name, job_type, &raw mut id, &raw mut job)
        );
        assert_eq!(code, hr(expected));
        assert!(job.is_null(), "nothing is written on failure");
    }
    let null_out = vcall!(
        manager,
        CreateJob(
            name.as_ptr(),
            BG_JOB_TYPE_DOWNLOAD,
            &raw mut id,
            std::ptr::null_mut()
        )
    );
    assert_eq!(null_out, hr(hresult::E_POINTER));
    let bad_utf16 = [0x0061, 0xD800, 0x0062, 0];
    let code = vcall!(
        manager,
        CreateJob(
            bad_utf16.as_ptr(),
            BG_JOB_TYPE_DOWNLOAD,
            &raw mut id,
            &raw mut job
        )
    );
    assert_eq!(code, hr(hresult::E_INVALIDARG), "an unpaired surrogate");
    let too_long = wide(&"n".repeat(257));
    let code = vcall!(
        manager,
        CreateJob(
            too_long.as_ptr(),
            BG_JOB_TYPE_DOWNLOAD,
            &raw mut id,
            &raw mut job
        )
    );
    assert_eq!(code, hr(hresult::BG_E_STRING_TOO_LONG));
    release(manager);
}

#[test]
fn get_job_finds_jobs_and_reports_missing_ones() {
    let manager = manager();
    let (job, id) = create_job(manager, "find me");
    let mut found = std::ptr::null_mut();
    assert_eq!(vcall!(manager, GetJob(&id, &raw mut found)), 0);
    let mut found_id = GUID::default();
    assert_eq!(vcall!(found, GetId(&raw mut found_id)), 0);
    assert_eq!(found_id, id);
    release(found);
    let missing = GUID::new(1, 2, 3, [4; 8]);
    // A stale pointer in the out-parameter must come back NULL on failure (COM's rule), so a
    // caller that releases what it got does no harm.
    let mut nothing = found;
    assert_eq!(
        vcall!(manager, GetJob(&missing, &raw mut nothing)),
        hr(hresult::BG_E_NOT_FOUND)
    );
    assert!(nothing.is_null());
    assert_eq!(
        vcall!(manager, GetJob(std::ptr::null(), &raw mut nothing)),
        hr(hresult::E_POINTER)
    );
    assert_eq!(vcall!(job, Cancel()), 0);
    assert_eq!(
        vcall!(manager, GetJob(&id, &raw mut nothing)),
        hr(hresult::BG_E_NOT_FOUND),
        "cancelled jobs leave the queue"
    );
    release(job);
    release(manager);
}

#[test]
fn enum_jobs_is_a_snapshot_with_cursor_semantics() {
    let manager = manager();
    let (first, first_id) = create_job(manager, "enum 1");
    let mut jobs: *mut IEnumBackgroundCopyJobs = std::ptr::null_mut();
    assert_eq!(vcall!(manager, EnumJobs(0, &raw mut jobs)), 0);
    let mut count = 0;
    assert_eq!(vcall!(jobs, GetCount(&raw mut count)), 0);
    assert!(count >= 1);
    let (second, second_id) = create_job(manager, "enum 2");
    let mut later: *mut IEnumBackgroundCopyJobs = std::ptr::null_mut();
    assert_eq!(vcall!(manager, EnumJobs(0, &raw mut later)), 0);
    let (mut old_count, mut new_count) = (0, 0);
    vcall!(jobs, GetCount(&raw mut old_count));
    vcall!(later, GetCount(&raw mut new_count));
    assert_eq!(old_count, count, "a snapshot does not see later jobs");
    // Other tests of this process add and cancel jobs meanwhile: the later snapshot is
    // known to hold the second job, not to be larger.
    let mut later_ids = Vec::new();
    for _ in 0..new_count {
        let mut job = std::ptr::null_mut();
        assert_eq!(
            vcall!(later, Next(1, &raw mut job, std::ptr::null_mut())),
            0
        );
        let mut id = GUID::default();
        vcall!(job, GetId(&raw mut id));
        later_ids.push(id);
        release(job);
    }
    assert!(
        later_ids.contains(&second_id),
        "a new snapshot sees the new job"
    );

    // The first job is in the snapshot; Next hands out job objects.
    let mut seen = false;
    for _ in 0..count {
        let mut job = std::ptr::null_mut();
        assert_eq!(vcall!(jobs, Next(1, &raw mut job, std::ptr::null_mut())), 0);
        let mut id = GUID::default();
        vcall!(job, GetId(&raw mut id));
        seen |= id == first_id;
        release(job);
    }
    assert!(seen);
    let mut past_end = [std::ptr::null_mut(); 2];
    let mut fetched = 9;
    assert_eq!(
        vcall!(jobs, Next(2, past_end.as_mut_ptr(), &raw mut fetched)),
        hr(hresult::S_FALSE)
    );
    assert_eq!(fetched, 0);
    assert_eq!(vcall!(jobs, Skip(1)), hr(hresult::S_FALSE));
    assert_eq!(vcall!(jobs, Reset()), 0);
    assert_eq!(
        vcall!(jobs, Next(2, past_end.as_mut_ptr(), std::ptr::null_mut())),
        hr(hresult::E_INVALIDARG)
    );

    let mut refused = later;
    assert_eq!(
        vcall!(manager, EnumJobs(0x10, &raw mut refused)),
        hr(hresult::E_INVALIDARG)
    );
    assert!(
        refused.is_null(),
        "a failed call leaves NULL in its out-parameter"
    );
    let mut all = std::ptr::null_mut();
    assert_eq!(
        vcall!(manager, EnumJobs(BG_JOB_ENUM_ALL_USERS, &raw mut all)),
        hr(hresult::E_ACCESSDENIED),
        "only root lists every user's jobs"
    );
    for job in [first, second] {
        vcall!(job, Cancel());
        release(job);
    }
    release(jobs);
    release(later);
    release(manager);
}

#[test]
fn get_error_description_knows_bits_codes() {
    let manager = manager();
    let mut text = std::ptr::null_mut();
    assert_eq!(
        vcall!(
            manager,
            GetErrorDescription(hr(hresult::BG_E_NOT_FOUND), 0x409, &raw mut text)
        ),
        0
    );
    assert!(take_string(text).contains("not found"));
    let unknown_code = 0x8765_4321_u32.cast_signed();
    assert_eq!(
        vcall!(
            manager,
            GetErrorDescription(unknown_code, 0x409, &raw mut text)
        ),
        hr(hresult::HRESULT_MR_MID_NOT_FOUND)
    );
    release(manager);
}
