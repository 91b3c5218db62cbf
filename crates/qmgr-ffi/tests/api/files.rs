//! IBackgroundCopyFile … File3 and IEnumBackgroundCopyFiles.

use qmgr_core::hresult;
use qmgr_ffi::abi::bits::*;
use qmgr_ffi::abi::types::*;

use crate::common::*;
use crate::vcall;

fn file_set(fx: &Fixture, names: &[&str]) -> (Vec<Vec<u16>>, Vec<BG_FILE_INFO>) {
    let mut strings = Vec::new();
    for name in names {
        strings.push(wide(&format!("http://files.example/{name}")));
        strings.push(wide(&fx.path(name)));
    }
    let infos = strings
        .chunks(2)
        .map(|pair| BG_FILE_INFO {
            RemoteName: pair[0].as_ptr().cast_mut(),
            LocalName: pair[1].as_ptr().cast_mut(),
        })
        .collect();
    (strings, infos)
}

fn local_name(file: *mut IBackgroundCopyFile) -> String {
    let mut name = std::ptr::null_mut();
    assert_eq!(vcall!(file, GetLocalName(&raw mut name)), 0);
    take_string(name)
}

#[test]
fn add_file_set_and_the_file_enumerator() {
    let fx = setup();
    let manager = manager();
    let (job, _) = create_job(manager, "files");
    let names = ["set-a", "set-b", "set-c"];
    let (_strings, mut infos) = file_set(fx, &names);
    assert_eq!(vcall!(job, AddFileSet(3, infos.as_mut_ptr())), 0);
    assert_eq!(
        vcall!(job, AddFileSet(0, infos.as_mut_ptr())),
        hr(hresult::E_INVALIDARG)
    );
    assert_eq!(
        vcall!(job, AddFileSet(1, std::ptr::null_mut())),
        hr(hresult::E_POINTER)
    );

    let mut files: *mut IEnumBackgroundCopyFiles = std::ptr::null_mut();
    assert_eq!(vcall!(job, EnumFiles(&raw mut files)), 0);
    let mut count = 0;
    vcall!(files, GetCount(&raw mut count));
    assert_eq!(count, 3);
    let mut batch = [std::ptr::null_mut(); 2];
    assert_eq!(
        vcall!(files, Next(2, batch.as_mut_ptr(), std::ptr::null_mut())),
        hr(hresult::E_INVALIDARG)
    );
    let mut fetched = 0;
    assert_eq!(
        vcall!(files, Next(2, batch.as_mut_ptr(), &raw mut fetched)),
        0
    );
    assert_eq!(fetched, 2);
    assert_eq!(local_name(batch[0]), fx.path("set-a"));
    assert_eq!(local_name(batch[1]), fx.path("set-b"));
    for file in batch {
        release(file);
    }
    // A clone starts where its original stands and moves on its own.
    let mut clone: *mut IEnumBackgroundCopyFiles = std::ptr::null_mut();
    assert_eq!(vcall!(files, Clone(&raw mut clone)), 0);
    let mut one = std::ptr::null_mut();
    assert_eq!(
        vcall!(clone, Next(1, &raw mut one, std::ptr::null_mut())),
        0
    );
    assert_eq!(local_name(one), fx.path("set-c"));
    release(one);
    assert_eq!(
        vcall!(clone, Next(1, &raw mut one, std::ptr::null_mut())),
        hr(hresult::S_FALSE)
    );
    assert_eq!(vcall!(files, Skip(1)), 0);
    assert_eq!(vcall!(files, Skip(1)), hr(hresult::S_FALSE));
    assert_eq!(vcall!(files, Reset()), 0);
    assert_eq!(vcall!(files, Next(1, &raw mut one, &raw mut fetched)), 0);
    assert_eq!((fetched, local_name(one)), (1, fx.path("set-a")));

    // The file's own interfaces.
    let mut progress = BG_FILE_PROGRESS {
        Completed: TRUE,
        ..Default::default()
    };
    vcall!(one, GetProgress(&raw mut progress));
    assert_eq!(
        progress,
        BG_FILE_PROGRESS {
            BytesTotal: BG_SIZE_UNKNOWN,
            BytesTransferred: 0,
            Completed: FALSE
        }
    );
    let mut remote = std::ptr::null_mut();
    vcall!(one, GetRemoteName(&raw mut remote));
    assert_eq!(take_string(remote), "http://files.example/set-a");
    let file2: *mut IBackgroundCopyFile2 = query(one, &IID_IBackgroundCopyFile2).unwrap();
    let (mut range_count, mut ranges) =
        (7, std::ptr::NonNull::<BG_FILE_RANGE>::dangling().as_ptr());
    assert_eq!(
        vcall!(file2, GetFileRanges(&raw mut range_count, &raw mut ranges)),
        hr(hresult::S_FALSE),
        "a whole file has no ranges"
    );
    assert_eq!((range_count, ranges), (0, std::ptr::null_mut()));
    let moved = wide("https://mirror.example/set-a");
    assert_eq!(vcall!(file2, SetRemoteName(moved.as_ptr())), 0);
    vcall!(one, GetRemoteName(&raw mut remote));
    assert_eq!(
        take_string(remote),
        "https://mirror.example/set-a",
        "the file reads the job live"
    );
    let bad = wide("gopher://mirror.example/set-a");
    assert_eq!(
        vcall!(file2, SetRemoteName(bad.as_ptr())),
        hr(hresult::E_INVALIDARG)
    );
    assert_eq!(
        vcall!(file2, SetRemoteName(std::ptr::null())),
        hr(hresult::E_INVALIDARG)
    );
    let file3: *mut IBackgroundCopyFile3 = query(one, &IID_IBackgroundCopyFile3).unwrap();
    let mut flag = 7;
    vcall!(file3, IsDownloadedFromPeer(&raw mut flag));
    assert_eq!(flag, FALSE);
    vcall!(file3, GetValidationState(&raw mut flag));
    assert_eq!(flag, FALSE);
    // Nothing to judge before the file is transferred (tests/c/test_validation.c has the rest).
    assert_eq!(
        vcall!(file3, SetValidationState(TRUE)),
        hr(hresult::E_PENDING)
    );
    vcall!(file3, GetValidationState(&raw mut flag));
    assert_eq!(flag, FALSE);
    let file5: *mut IBackgroundCopyFile5 = query(one, &IID_IBackgroundCopyFile5).unwrap();
    let (mut origin, mut peers) = (9, 9);
    let file4: *mut IBackgroundCopyFile4 = query(one, &IID_IBackgroundCopyFile4).unwrap();
    assert_eq!(
        vcall!(file4, GetPeerDownloadStats(&raw mut origin, &raw mut peers)),
        0
    );
    assert_eq!((origin, peers), (0, 0));
    release(file4);
    let mut value = BITS_FILE_PROPERTY_VALUE {
        String: std::ptr::null_mut(),
    };
    let headers = BITS_FILE_PROPERTY_ID_HTTP_RESPONSE_HEADERS;
    assert_eq!(
        vcall!(file5, SetProperty(headers, value)),
        hr(hresult::BG_E_READ_ONLY_PROPERTY)
    );
    // Before any response: empty.
    assert_eq!(vcall!(file5, GetProperty(headers, &raw mut value)), 0);
    // SAFETY: the member the property id names, written by GetProperty.
    assert_eq!(take_string(unsafe { value.String }), "");
    assert_eq!(
        vcall!(file5, GetProperty(2, &raw mut value)),
        hr(hresult::BG_E_UNKNOWN_PROPERTY_ID)
    );
    release(file5);
    let mut temp = std::ptr::null_mut();
    assert_eq!(vcall!(file3, GetTemporaryName(&raw mut temp)), 0);
    assert_eq!(
        take_string(temp),
        "",
        "no temporary file before the transfer starts"
    );

    vcall!(job, Cancel());
    for p in [
        file2.cast::<IUnknown>(),
        file3.cast(),
        one.cast(),
        clone.cast(),
        files.cast(),
        job.cast(),
        manager.cast(),
    ] {
        release(p);
    }
}
