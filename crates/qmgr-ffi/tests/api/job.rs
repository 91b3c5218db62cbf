//! IBackgroundCopyJob … Job5 and IBackgroundCopyJobHttpOptions, without transfers.

use qmgr_core::hresult;
use qmgr_ffi::abi::bits::*;
use qmgr_ffi::abi::types::*;

use crate::common::*;
use crate::vcall;

fn get_string(getter: impl FnOnce(*mut LPWSTR) -> HRESULT) -> String {
    let mut text = std::ptr::null_mut();
    assert_eq!(getter(&raw mut text), 0);
    take_string(text)
}

#[test]
fn a_new_job_reads_as_windows_describes_it() {
    let fx = setup();
    let manager = manager();
    let (job, id) = create_job(manager, "fresh");
    let mut got = GUID::default();
    assert_eq!(vcall!(job, GetId(&raw mut got)), 0);
    assert_eq!(got, id);
    let mut job_type = 9;
    vcall!(job, GetType(&raw mut job_type));
    assert_eq!(job_type, BG_JOB_TYPE_DOWNLOAD);
    assert_eq!(state(job), BG_JOB_STATE_SUSPENDED);
    let mut progress = BG_JOB_PROGRESS {
        BytesTotal: 1,
        ..Default::default()
    };
    vcall!(job, GetProgress(&raw mut progress));
    assert_eq!(progress, BG_JOB_PROGRESS::default());
    let mut times = BG_JOB_TIMES::default();
    vcall!(job, GetTimes(&raw mut times));
    assert_ne!(times.CreationTime, FILETIME::default());
    assert_eq!(times.TransferCompletionTime, FILETIME::default());
    let mut flags = 0;
    vcall!(job, GetNotifyFlags(&raw mut flags));
    assert_eq!(flags, BG_NOTIFY_JOB_TRANSFERRED | BG_NOTIFY_JOB_ERROR);
    let mut callback = std::ptr::NonNull::<IUnknown>::dangling().as_ptr();
    vcall!(job, GetNotifyInterface(&raw mut callback));
    assert!(callback.is_null());
    assert_eq!(get_string(|out| vcall!(job, GetDisplayName(out))), "fresh");
    assert_eq!(get_string(|out| vcall!(job, GetDescription(out))), "");
    assert_eq!(
        get_string(|out| vcall!(job, GetOwner(out))),
        format!("S-1-22-1-{UID}")
    );
    let mut errors = 9;
    vcall!(job, GetErrorCount(&raw mut errors));
    assert_eq!(errors, 0);
    let mut error = std::ptr::null_mut();
    assert_eq!(
        vcall!(job, GetError(&raw mut error)),
        hr(hresult::BG_E_ERROR_INFORMATION_UNAVAILABLE)
    );
    assert_eq!(vcall!(job, Resume()), hr(hresult::BG_E_EMPTY));
    assert_eq!(state(job), BG_JOB_STATE_SUSPENDED);
    assert_eq!(
        vcall!(job, GetState(std::ptr::null_mut())),
        hr(hresult::E_POINTER)
    );
    let relative = wide("relative/file");
    let url = wide("http://example.invalid/x");
    assert_eq!(
        vcall!(job, AddFile(url.as_ptr(), relative.as_ptr())),
        hr(hresult::E_INVALIDARG)
    );
    assert_eq!(
        vcall!(job, AddFile(std::ptr::null(), relative.as_ptr())),
        hr(hresult::E_INVALIDARG)
    );
    let gopher = wide("gopher://example.invalid/x");
    let local = wide(&fx.path("never"));
    assert_eq!(
        vcall!(job, AddFile(gopher.as_ptr(), local.as_ptr())),
        hr(hresult::E_INVALIDARG)
    );
    vcall!(job, Cancel());
    release(job);
    release(manager);
}

#[test]
fn setters_round_trip_through_their_getters() {
    let manager = manager();
    let (job, _) = create_job(manager, "setters");
    let name = wide("renamed ✓");
    assert_eq!(vcall!(job, SetDisplayName(name.as_ptr())), 0);
    assert_eq!(
        get_string(|out| vcall!(job, GetDisplayName(out))),
        "renamed ✓"
    );
    let description = wide("what it is for");
    assert_eq!(vcall!(job, SetDescription(description.as_ptr())), 0);
    assert_eq!(
        get_string(|out| vcall!(job, GetDescription(out))),
        "what it is for"
    );
    let too_long = wide(&"d".repeat(1025));
    assert_eq!(
        vcall!(job, SetDescription(too_long.as_ptr())),
        hr(hresult::BG_E_STRING_TOO_LONG)
    );

    assert_eq!(vcall!(job, SetPriority(BG_JOB_PRIORITY_HIGH)), 0);
    assert_eq!(
        vcall!(job, SetPriority(4)),
        hr(hresult::E_NOTIMPL),
        "Windows' answer to a bad priority"
    );
    let mut priority = 9;
    vcall!(job, GetPriority(&raw mut priority));
    assert_eq!(priority, BG_JOB_PRIORITY_HIGH);

    assert_eq!(vcall!(job, SetNotifyFlags(0x1F)), 0);
    assert_eq!(
        vcall!(job, SetNotifyFlags(0x100)),
        hr(hresult::E_INVALIDARG)
    );
    let mut flags = 0;
    vcall!(job, GetNotifyFlags(&raw mut flags));
    assert_eq!(flags, 0x1F);

    assert_eq!(vcall!(job, SetMinimumRetryDelay(1)), 0);
    let mut seconds = 0;
    vcall!(job, GetMinimumRetryDelay(&raw mut seconds));
    assert_eq!(seconds, 5, "raised to the 5 s floor");
    assert_eq!(vcall!(job, SetNoProgressTimeout(3600)), 0);
    vcall!(job, GetNoProgressTimeout(&raw mut seconds));
    assert_eq!(seconds, 3600);

    let proxy = wide("proxy.example:8080");
    let bypass = wide("<local>");
    assert_eq!(
        vcall!(
            job,
            SetProxySettings(BG_JOB_PROXY_USAGE_OVERRIDE, proxy.as_ptr(), bypass.as_ptr())
        ),
        0
    );
    let (mut usage, mut list, mut bypass_list) = (9, std::ptr::null_mut(), std::ptr::null_mut());
    assert_eq!(
        vcall!(
            job,
            GetProxySettings(&raw mut usage, &raw mut list, &raw mut bypass_list)
        ),
        0
    );
    assert_eq!(usage, BG_JOB_PROXY_USAGE_OVERRIDE);
    assert_eq!(take_string(list), "proxy.example:8080");
    assert_eq!(take_string(bypass_list), "<local>");
    assert_eq!(
        vcall!(job, SetProxySettings(9, std::ptr::null(), std::ptr::null())),
        hr(hresult::E_INVALIDARG)
    );
    assert_eq!(vcall!(job, TakeOwnership()), 0);

    vcall!(job, Cancel());
    release(job);
    release(manager);
}

#[test]
fn a_job_that_left_the_queue_reads_but_refuses_changes() {
    let manager = manager();
    let (job, _) = create_job(manager, "leaving");
    assert_eq!(vcall!(job, Cancel()), 0);
    assert_eq!(state(job), BG_JOB_STATE_CANCELLED);
    assert_eq!(vcall!(job, Cancel()), hr(hresult::BG_E_INVALID_STATE));
    assert_eq!(vcall!(job, Complete()), hr(hresult::BG_E_INVALID_STATE));
    assert_eq!(vcall!(job, Resume()), hr(hresult::BG_E_INVALID_STATE));
    let name = wide("too late");
    assert_eq!(
        vcall!(job, SetDisplayName(name.as_ptr())),
        hr(hresult::BG_E_INVALID_STATE)
    );
    assert_eq!(
        vcall!(job, SetNotifyInterface(std::ptr::null_mut())),
        hr(hresult::BG_E_INVALID_STATE)
    );
    let job3: *mut IBackgroundCopyJob3 = query(job, &IID_IBackgroundCopyJob3).unwrap();
    assert_eq!(
        vcall!(job3, SetFileACLFlags(BG_COPY_FILE_OWNER)),
        hr(hresult::BG_E_INVALID_STATE)
    );
    assert_eq!(
        get_string(|out| vcall!(job, GetDisplayName(out))),
        "leaving",
        "reads still work"
    );
    release(job3);
    release(job);
    release(manager);
}

#[test]
fn job2_to_job5_methods() {
    let manager = manager();
    let (job, _) = create_job(manager, "versions");
    let job2: *mut IBackgroundCopyJob2 = query(job, &IID_IBackgroundCopyJob2).unwrap();
    // Before any SetNotifyCmdLine: two empty strings (CoTaskMemAlloc'ed), not NULL.
    let (mut unset_program, mut unset_parameters) = (std::ptr::null_mut(), std::ptr::null_mut());
    assert_eq!(
        vcall!(
            job2,
            GetNotifyCmdLine(&raw mut unset_program, &raw mut unset_parameters)
        ),
        0
    );
    assert!(!unset_program.is_null() && !unset_parameters.is_null());
    assert_eq!(take_string(unset_program), "");
    assert_eq!(take_string(unset_parameters), "");
    let (program, parameters) = (wide("/usr/bin/true"), wide("true --flag"));
    assert_eq!(
        vcall!(
            job2,
            SetNotifyCmdLine(program.as_ptr(), parameters.as_ptr())
        ),
        0
    );
    let (mut got_program, mut got_parameters) = (std::ptr::null_mut(), std::ptr::null_mut());
    assert_eq!(
        vcall!(
            job2,
            GetNotifyCmdLine(&raw mut got_program, &raw mut got_parameters)
        ),
        0
    );
    assert_eq!(take_string(got_program), "/usr/bin/true");
    assert_eq!(take_string(got_parameters), "true --flag");
    let mut reply = BG_JOB_REPLY_PROGRESS::default();
    assert_eq!(
        vcall!(job2, GetReplyProgress(&raw mut reply)),
        hr(hresult::E_NOTIMPL)
    );
    assert_eq!(
        vcall!(job2, GetReplyProgress(std::ptr::null_mut())),
        hr(hresult::E_INVALIDARG)
    );
    let mut file_name = std::ptr::null_mut();
    assert_eq!(
        vcall!(job2, GetReplyFileName(&raw mut file_name)),
        hr(hresult::E_NOTIMPL)
    );
    assert_eq!(
        vcall!(
            job2,
            RemoveCredentials(BG_AUTH_TARGET_SERVER, BG_AUTH_SCHEME_BASIC)
        ),
        hr(hresult::S_FALSE),
        "no credentials to remove"
    );

    let job3: *mut IBackgroundCopyJob3 = query(job, &IID_IBackgroundCopyJob3).unwrap();
    assert_eq!(vcall!(job3, SetFileACLFlags(BG_COPY_FILE_ALL)), 0);
    assert_eq!(
        vcall!(job3, SetFileACLFlags(0x10)),
        hr(hresult::E_INVALIDARG)
    );
    let mut acl = 0;
    vcall!(job3, GetFileACLFlags(&raw mut acl));
    assert_eq!(acl, BG_COPY_FILE_ALL);
    let fx = setup();
    let (remote, local) = (
        wide("http://old.example/a/file"),
        wide(&fx.path("prefix.bin")),
    );
    assert_eq!(vcall!(job, AddFile(remote.as_ptr(), local.as_ptr())), 0);
    let (old, new) = (wide("http://old.example/"), wide("https://new.example/b/"));
    assert_eq!(
        vcall!(job3, ReplaceRemotePrefix(old.as_ptr(), new.as_ptr())),
        0
    );
    assert_eq!(
        vcall!(job3, ReplaceRemotePrefix(old.as_ptr(), new.as_ptr())),
        hr(hresult::S_FALSE),
        "nothing left to match"
    );
    let empty = wide("");
    assert_eq!(
        vcall!(job3, ReplaceRemotePrefix(empty.as_ptr(), new.as_ptr())),
        hr(hresult::E_INVALIDARG)
    );
    let mut files = std::ptr::null_mut();
    vcall!(job, EnumFiles(&raw mut files));
    let mut file: *mut IBackgroundCopyFile = std::ptr::null_mut();
    vcall!(files, Next(1, &raw mut file, std::ptr::null_mut()));
    let mut remote_name = std::ptr::null_mut();
    vcall!(file, GetRemoteName(&raw mut remote_name));
    assert_eq!(take_string(remote_name), "https://new.example/b/a/file");
    release(file);
    release(files);
    let mut ranges = [
        BG_FILE_RANGE {
            InitialOffset: 900,
            Length: 100,
        },
        BG_FILE_RANGE {
            InitialOffset: 0,
            Length: BG_LENGTH_TO_EOF,
        },
    ];
    let ranged = wide(&fx.path("ranged.bin"));
    assert_eq!(
        vcall!(
            job3,
            AddFileWithRanges(remote.as_ptr(), ranged.as_ptr(), 0, ranges.as_mut_ptr())
        ),
        hr(hresult::E_INVALIDARG),
        "no ranges"
    );
    assert_eq!(
        vcall!(
            job3,
            AddFileWithRanges(remote.as_ptr(), ranged.as_ptr(), 2, ranges.as_mut_ptr())
        ),
        hr(hresult::BG_E_OVERLAPPING_RANGES),
        "a range to the end covers every later offset"
    );
    assert_eq!(
        vcall!(
            job3,
            AddFileWithRanges(remote.as_ptr(), ranged.as_ptr(), 1, std::ptr::null_mut())
        ),
        hr(hresult::E_POINTER)
    );
    assert_eq!(
        vcall!(
            job3,
            AddFileWithRanges(remote.as_ptr(), ranged.as_ptr(), 600, ranges.as_mut_ptr())
        ),
        hr(hresult::BG_E_TOO_MANY_RANGES_IN_FILE),
        "refused before the array is read"
    );
    assert_eq!(
        vcall!(
            job3,
            AddFileWithRanges(remote.as_ptr(), ranged.as_ptr(), 1, ranges.as_mut_ptr())
        ),
        0
    );

    let job4: *mut IBackgroundCopyJob4 = query(job, &IID_IBackgroundCopyJob4).unwrap();
    assert_eq!(
        vcall!(job4, SetPeerCachingFlags(BG_JOB_ENABLE_PEERCACHING_CLIENT)),
        0
    );
    let mut peer = 0;
    vcall!(job4, GetPeerCachingFlags(&raw mut peer));
    assert_eq!(peer, BG_JOB_ENABLE_PEERCACHING_CLIENT);
    let mut timeout = 0;
    vcall!(job4, GetMaximumDownloadTime(&raw mut timeout));
    assert_eq!(timeout, 7_776_000, "90 days by default");
    assert_eq!(vcall!(job4, SetMaximumDownloadTime(60)), 0);
    vcall!(job4, GetMaximumDownloadTime(&raw mut timeout));
    assert_eq!(timeout, 60);
    let (mut level, mut elevated) = (0, 7);
    vcall!(job4, GetOwnerIntegrityLevel(&raw mut level));
    vcall!(job4, GetOwnerElevationState(&raw mut elevated));
    assert_eq!((level, elevated), (0x2000, FALSE));

    let job5: *mut IBackgroundCopyJob5 = query(job, &IID_IBackgroundCopyJob5).unwrap();
    let size = BITS_JOB_PROPERTY_VALUE { Uint64: 1 << 20 };
    assert_eq!(
        vcall!(job5, SetProperty(BITS_JOB_PROPERTY_MAX_DOWNLOAD_SIZE, size)),
        0
    );
    let mut value = BITS_JOB_PROPERTY_VALUE { Uint64: 0 };
    assert_eq!(
        vcall!(
            job5,
            GetProperty(BITS_JOB_PROPERTY_MAX_DOWNLOAD_SIZE, &raw mut value)
        ),
        0
    );
    // SAFETY: the member the property id names, written by GetProperty.
    assert_eq!(unsafe { value.Uint64 }, 1 << 20);
    // The job has files: HIGH_PERFORMANCE may be set only before the first.
    let on = BITS_JOB_PROPERTY_VALUE { Enable: TRUE };
    assert_eq!(
        vcall!(job5, SetProperty(BITS_JOB_PROPERTY_HIGH_PERFORMANCE, on)),
        hr(hresult::BG_E_READ_ONLY_PROPERTY_AFTER_ADDFILE)
    );
    assert_eq!(
        vcall!(
            job5,
            GetProperty(BITS_JOB_PROPERTY_HIGH_PERFORMANCE, &raw mut value)
        ),
        0
    );
    // SAFETY: the member the property id names, written by GetProperty.
    assert_eq!(unsafe { value.Enable }, FALSE);
    assert_eq!(
        vcall!(
            job5,
            GetProperty(BITS_JOB_PROPERTY_ID_COST_FLAGS, &raw mut value)
        ),
        0
    );
    assert_eq!(
        // SAFETY: the member the property id names, written by GetProperty.
        unsafe { value.Dword },
        BITS_JOB_TRANSFER_POLICY_UNRESTRICTED,
        "a NORMAL job that set no cost flags reads its priority's default"
    );
    let standard = BITS_JOB_PROPERTY_VALUE {
        Dword: BITS_JOB_TRANSFER_POLICY_STANDARD,
    };
    assert_eq!(
        vcall!(job5, SetProperty(BITS_JOB_PROPERTY_ID_COST_FLAGS, standard)),
        0
    );
    assert_eq!(
        vcall!(
            job5,
            GetProperty(BITS_JOB_PROPERTY_ID_COST_FLAGS, &raw mut value)
        ),
        0
    );
    // SAFETY: the member the property id names, written by GetProperty.
    assert_eq!(unsafe { value.Dword }, BITS_JOB_TRANSFER_POLICY_STANDARD);
    let nothing = BITS_JOB_PROPERTY_VALUE { Dword: 0 };
    assert_eq!(
        vcall!(job5, SetProperty(BITS_JOB_PROPERTY_ID_COST_FLAGS, nothing)),
        hr(hresult::E_INVALIDARG),
        "a mask with no cost state would never transfer"
    );
    assert_eq!(
        vcall!(job5, GetProperty(6, &raw mut value)),
        hr(hresult::BG_E_UNKNOWN_PROPERTY_ID)
    );
    assert_eq!(
        vcall!(job5, SetProperty(99, on)),
        hr(hresult::BG_E_UNKNOWN_PROPERTY_ID)
    );

    vcall!(job, Cancel());
    for p in [
        job2.cast::<IUnknown>(),
        job3.cast(),
        job4.cast(),
        job5.cast(),
        job.cast(),
    ] {
        release(p);
    }
    release(manager);
}

#[test]
fn http_options_keep_headers_and_security_flags() {
    let manager = manager();
    let (job, _) = create_job(manager, "http options");
    let http: *mut IBackgroundCopyJobHttpOptions =
        query(job, &IID_IBackgroundCopyJobHttpOptions).unwrap();
    let mut headers = std::ptr::NonNull::<u16>::dangling().as_ptr();
    assert_eq!(
        vcall!(http, GetCustomHeaders(&raw mut headers)),
        hr(hresult::S_FALSE)
    );
    assert!(headers.is_null());
    let text = wide("X-Test: 1\r\nX-Other: two\r\n");
    assert_eq!(vcall!(http, SetCustomHeaders(text.as_ptr())), 0);
    assert_eq!(vcall!(http, GetCustomHeaders(&raw mut headers)), 0);
    assert_eq!(take_string(headers), "X-Test: 1\r\nX-Other: two\r\n");
    let huge = wide(&"h".repeat(16_384));
    assert_eq!(
        vcall!(http, SetCustomHeaders(huge.as_ptr())),
        hr(hresult::BG_E_STRING_TOO_LONG)
    );
    assert_eq!(vcall!(http, SetCustomHeaders(std::ptr::null())), 0);
    assert_eq!(
        vcall!(http, GetCustomHeaders(&raw mut headers)),
        hr(hresult::S_FALSE)
    );

    let mut flags = 9;
    vcall!(http, GetSecurityFlags(&raw mut flags));
    assert_eq!(flags, 0);
    let wanted = BG_SSL_IGNORE_UNKNOWN_CA | BG_HTTP_REDIRECT_POLICY_DISALLOW;
    assert_eq!(vcall!(http, SetSecurityFlags(wanted)), 0);
    vcall!(http, GetSecurityFlags(&raw mut flags));
    assert_eq!(flags, wanted);
    assert_eq!(
        vcall!(http, SetSecurityFlags(0x8000_0000)),
        hr(hresult::E_INVALIDARG)
    );

    vcall!(job, Cancel());
    release(http);
    release(job);
    release(manager);
}

/// GetClientCertificate's four answers, each freed; the hash read as its 20 bytes.
fn client_certificate(
    http: *mut IBackgroundCopyJobHttpOptions,
) -> Result<(BG_CERT_STORE_LOCATION, String, Vec<u8>, String), HRESULT> {
    let (mut location, mut store, mut hash, mut subject) = (
        9,
        std::ptr::null_mut(),
        std::ptr::null_mut::<BYTE>(),
        std::ptr::null_mut(),
    );
    let code = vcall!(
        http,
        GetClientCertificate(
            &raw mut location,
            &raw mut store,
            &raw mut hash,
            &raw mut subject
        )
    );
    if code != 0 {
        assert!(store.is_null() && hash.is_null() && subject.is_null());
        assert_eq!(location, 0, "out-parameters are cleared on failure");
        return Err(code);
    }
    // SAFETY: a successful call returns a 20-byte CoTaskMemAlloc'ed hash.
    let bytes = unsafe { std::slice::from_raw_parts(hash, 20) }.to_vec();
    // SAFETY: allocated by the library for the caller to free.
    unsafe { qmgr_ffi::CoTaskMemFree(hash.cast()) };
    Ok((location, take_string(store), bytes, take_string(subject)))
}

#[test]
fn http_options_keep_a_client_certificate_by_name_or_hash() {
    let manager = manager();
    let (job, _) = create_job(manager, "client certificate");
    let http: *mut IBackgroundCopyJobHttpOptions =
        query(job, &IID_IBackgroundCopyJobHttpOptions).unwrap();

    assert_eq!(
        client_certificate(http),
        Err(hr(hresult::HRESULT_RPC_X_BAD_STUB_DATA))
    );
    assert_eq!(
        vcall!(http, RemoveClientCertificate()),
        hr(hresult::S_FALSE)
    );

    let store = wide("MY");
    let subject = wide("CN=client");
    assert_eq!(
        vcall!(
            http,
            SetClientCertificateByName(
                BG_CERT_STORE_LOCATION_CURRENT_USER,
                store.as_ptr(),
                subject.as_ptr()
            )
        ),
        0
    );
    // The store does not exist: the subject is as set, the hash unknown (zeros).
    assert_eq!(
        client_certificate(http),
        Ok((
            BG_CERT_STORE_LOCATION_CURRENT_USER,
            "MY".to_owned(),
            vec![0; 20],
            "CN=client".to_owned()
        ))
    );

    let mut hash = [0x11_u8; 20];
    hash[19] = 0xFE;
    let other_store = wide("Trusted People");
    assert_eq!(
        vcall!(
            http,
            SetClientCertificateByID(
                BG_CERT_STORE_LOCATION_LOCAL_MACHINE,
                other_store.as_ptr(),
                hash.as_mut_ptr()
            )
        ),
        0
    );
    assert_eq!(
        client_certificate(http),
        Ok((
            BG_CERT_STORE_LOCATION_LOCAL_MACHINE,
            "Trusted People".to_owned(),
            hash.to_vec(),
            String::new()
        ))
    );

    assert_eq!(vcall!(http, RemoveClientCertificate()), 0);
    assert_eq!(
        vcall!(http, RemoveClientCertificate()),
        hr(hresult::S_FALSE)
    );
    assert_eq!(
        client_certificate(http),
        Err(hr(hresult::HRESULT_RPC_X_BAD_STUB_DATA))
    );

    vcall!(job, Cancel());
    assert_eq!(
        vcall!(
            http,
            SetClientCertificateByID(0, store.as_ptr(), hash.as_mut_ptr())
        ),
        hr(hresult::BG_E_INVALID_STATE)
    );
    release(http);
    release(job);
    release(manager);
}

#[test]
fn client_certificate_arguments_are_checked() {
    let manager = manager();
    let (job, _) = create_job(manager, "client certificate arguments");
    let http: *mut IBackgroundCopyJobHttpOptions =
        query(job, &IID_IBackgroundCopyJobHttpOptions).unwrap();
    let store = wide("MY");
    let subject = wide("client");
    let mut hash = [0x22_u8; 20];
    let invalid = hr(hresult::E_INVALIDARG);

    assert_eq!(
        vcall!(
            http,
            SetClientCertificateByName(8, store.as_ptr(), subject.as_ptr())
        ),
        invalid
    );
    assert_eq!(
        vcall!(
            http,
            SetClientCertificateByID(
                BG_CERT_STORE_LOCATION_LOCAL_MACHINE_ENTERPRISE + 1,
                store.as_ptr(),
                hash.as_mut_ptr()
            )
        ),
        invalid
    );
    for bad_store in [wide(""), wide("../MY"), wide("a/b"), vec![0xD800, 0]] {
        assert_eq!(
            vcall!(
                http,
                SetClientCertificateByName(0, bad_store.as_ptr(), subject.as_ptr())
            ),
            invalid
        );
    }
    assert_eq!(
        vcall!(
            http,
            SetClientCertificateByName(0, std::ptr::null(), subject.as_ptr())
        ),
        invalid
    );
    assert_eq!(
        vcall!(
            http,
            SetClientCertificateByName(0, store.as_ptr(), std::ptr::null())
        ),
        invalid
    );
    let empty = wide("");
    assert_eq!(
        vcall!(
            http,
            SetClientCertificateByName(0, store.as_ptr(), empty.as_ptr())
        ),
        invalid
    );
    assert_eq!(
        vcall!(
            http,
            SetClientCertificateByID(0, std::ptr::null(), hash.as_mut_ptr())
        ),
        invalid
    );
    assert_eq!(
        vcall!(
            http,
            SetClientCertificateByID(0, store.as_ptr(), std::ptr::null_mut())
        ),
        hr(hresult::E_POINTER)
    );
    assert_eq!(
        client_certificate(http),
        Err(hr(hresult::HRESULT_RPC_X_BAD_STUB_DATA)),
        "nothing refused was recorded"
    );

    assert_eq!(
        vcall!(
            http,
            SetClientCertificateByID(0, store.as_ptr(), hash.as_mut_ptr())
        ),
        0
    );
    let (mut location, mut store_name, mut subject_name) =
        (0, std::ptr::null_mut(), std::ptr::null_mut());
    assert_eq!(
        vcall!(
            http,
            GetClientCertificate(
                &raw mut location,
                &raw mut store_name,
                std::ptr::null_mut(),
                &raw mut subject_name
            )
        ),
        hr(hresult::E_POINTER)
    );
    assert!(store_name.is_null() && subject_name.is_null());

    vcall!(job, Cancel());
    release(http);
    release(job);
    release(manager);
}
