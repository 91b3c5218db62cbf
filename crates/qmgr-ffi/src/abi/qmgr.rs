//! qmgr.h: the legacy BITS 1.0 group API (IBackgroundCopyQMgr, IBackgroundCopyGroup,
//! IBackgroundCopyJob1, the GUID enumerators and the client's IBackgroundCopyCallback1),
//! its constants, and every IID and CLSID it declares (mingw-w64 declares them without
//! defining them; the library defines them). Same format as [`super::bits`].

#![expect(
    non_snake_case,
    clippy::unreadable_literal,
    reason = "C-facing names keep Windows' spelling so the generated headers match qmgr.h"
)]
#![allow(
    clippy::wildcard_imports,
    reason = "the types module is imported whole; clippy skips this lint when the crate is built for its unit tests, so `expect` would fail there"
)]

use super::types::*;

/// The legacy queue manager class.
#[unsafe(no_mangle)]
pub static CLSID_BackgroundCopyQMgr: CLSID = GUID::new(
    0x69AD4AEE,
    0x51BE,
    0x439B,
    [0xA9, 0x2C, 0x86, 0xAE, 0x49, 0x0E, 0x8B, 0x30],
);

pub const QM_NOTIFY_FILE_DONE: DWORD = 0x0000_0001;
pub const QM_NOTIFY_JOB_DONE: DWORD = 0x0000_0002;
pub const QM_NOTIFY_GROUP_DONE: DWORD = 0x0000_0004;
pub const QM_NOTIFY_DISABLE_NOTIFY: DWORD = 0x0000_0040;
pub const QM_NOTIFY_USE_PROGRESSEX: DWORD = 0x0000_0080;

pub const QM_STATUS_FILE_COMPLETE: DWORD = 0x0000_0001;
pub const QM_STATUS_FILE_INCOMPLETE: DWORD = 0x0000_0002;
pub const QM_STATUS_JOB_COMPLETE: DWORD = 0x0000_0004;
pub const QM_STATUS_JOB_INCOMPLETE: DWORD = 0x0000_0008;
pub const QM_STATUS_JOB_ERROR: DWORD = 0x0000_0010;
pub const QM_STATUS_JOB_FOREGROUND: DWORD = 0x0000_0020;
pub const QM_STATUS_GROUP_COMPLETE: DWORD = 0x0000_0040;
pub const QM_STATUS_GROUP_INCOMPLETE: DWORD = 0x0000_0080;
pub const QM_STATUS_GROUP_SUSPENDED: DWORD = 0x0000_0100;
pub const QM_STATUS_GROUP_ERROR: DWORD = 0x0000_0200;
pub const QM_STATUS_GROUP_FOREGROUND: DWORD = 0x0000_0400;

pub const QM_PROTOCOL_HTTP: DWORD = 1;
pub const QM_PROTOCOL_FTP: DWORD = 2;
pub const QM_PROTOCOL_SMB: DWORD = 3;
pub const QM_PROTOCOL_CUSTOM: DWORD = 4;

pub const QM_PROGRESS_PERCENT_DONE: DWORD = 1;
pub const QM_PROGRESS_TIME_DONE: DWORD = 2;
pub const QM_PROGRESS_SIZE_DONE: DWORD = 3;

/// Group properties (a C enum, 4 bytes).
pub type GROUPPROP = C_ENUM;
pub const GROUPPROP_PRIORITY: GROUPPROP = 0;
pub const GROUPPROP_REMOTEUSERID: GROUPPROP = 1;
pub const GROUPPROP_REMOTEUSERPWD: GROUPPROP = 2;
pub const GROUPPROP_LOCALUSERID: GROUPPROP = 3;
pub const GROUPPROP_LOCALUSERPWD: GROUPPROP = 4;
pub const GROUPPROP_PROTOCOLFLAGS: GROUPPROP = 5;
pub const GROUPPROP_NOTIFYFLAGS: GROUPPROP = 6;
pub const GROUPPROP_NOTIFYCLSID: GROUPPROP = 7;
pub const GROUPPROP_PROGRESSSIZE: GROUPPROP = 8;
pub const GROUPPROP_PROGRESSPERCENT: GROUPPROP = 9;
pub const GROUPPROP_PROGRESSTIME: GROUPPROP = 10;
pub const GROUPPROP_DISPLAYNAME: GROUPPROP = 11;
pub const GROUPPROP_DESCRIPTION: GROUPPROP = 12;

/// A file of a legacy job: BSTR names and a size hint (24 bytes on 64-bit platforms).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FILESETINFO {
    pub bstrRemoteFile: BSTR,
    pub bstrLocalFile: BSTR,
    pub dwSizeHint: DWORD,
}

/// The legacy queue manager of groups (qmgr.h).
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyQMgr {
    pub lpVtbl: *const IBackgroundCopyQMgrVtbl,
}

/// The methods of [`IBackgroundCopyQMgr`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyQMgrVtbl {
    pub base: IUnknownVtbl,
    pub CreateGroup: unsafe extern "C" fn(
        This: *mut IBackgroundCopyQMgr,
        guidGroupID: GUID,
        ppGroup: *mut *mut IBackgroundCopyGroup,
    ) -> HRESULT,
    pub GetGroup: unsafe extern "C" fn(
        This: *mut IBackgroundCopyQMgr,
        groupID: GUID,
        ppGroup: *mut *mut IBackgroundCopyGroup,
    ) -> HRESULT,
    pub EnumGroups: unsafe extern "C" fn(
        This: *mut IBackgroundCopyQMgr,
        dwFlags: DWORD,
        ppEnumGroups: *mut *mut IEnumBackgroundCopyGroups,
    ) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyQMgr: IID = GUID::new(
    0x16F41C69,
    0x09F5,
    0x41D2,
    [0x8C, 0xD8, 0x3C, 0x08, 0xC4, 0x7B, 0xC8, 0xA8],
);

/// A legacy group: one job of files (qmgr.h). SetProp's wire name InternalSetProp is not a slot.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyGroup {
    pub lpVtbl: *const IBackgroundCopyGroupVtbl,
}

/// The methods of [`IBackgroundCopyGroup`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyGroupVtbl {
    pub base: IUnknownVtbl,
    pub GetProp: unsafe extern "C" fn(
        This: *mut IBackgroundCopyGroup,
        propID: GROUPPROP,
        pvarVal: *mut VARIANT,
    ) -> HRESULT,
    pub SetProp: unsafe extern "C" fn(
        This: *mut IBackgroundCopyGroup,
        propID: GROUPPROP,
        pvarVal: *mut VARIANT,
    ) -> HRESULT,
    pub GetProgress: unsafe extern "C" fn(
        This: *mut IBackgroundCopyGroup,
        dwFlags: DWORD,
        pdwProgress: *mut DWORD,
    ) -> HRESULT,
    pub GetStatus: unsafe extern "C" fn(
        This: *mut IBackgroundCopyGroup,
        pdwStatus: *mut DWORD,
        pdwJobIndex: *mut DWORD,
    ) -> HRESULT,
    pub GetJob: unsafe extern "C" fn(
        This: *mut IBackgroundCopyGroup,
        jobID: GUID,
        ppJob: *mut *mut IBackgroundCopyJob1,
    ) -> HRESULT,
    pub SuspendGroup: unsafe extern "C" fn(This: *mut IBackgroundCopyGroup) -> HRESULT,
    pub ResumeGroup: unsafe extern "C" fn(This: *mut IBackgroundCopyGroup) -> HRESULT,
    pub CancelGroup: unsafe extern "C" fn(This: *mut IBackgroundCopyGroup) -> HRESULT,
    pub get_Size:
        unsafe extern "C" fn(This: *mut IBackgroundCopyGroup, pdwSize: *mut DWORD) -> HRESULT,
    pub get_GroupID:
        unsafe extern "C" fn(This: *mut IBackgroundCopyGroup, pguidGroupID: *mut GUID) -> HRESULT,
    pub CreateJob: unsafe extern "C" fn(
        This: *mut IBackgroundCopyGroup,
        guidJobID: GUID,
        ppJob: *mut *mut IBackgroundCopyJob1,
    ) -> HRESULT,
    pub EnumJobs: unsafe extern "C" fn(
        This: *mut IBackgroundCopyGroup,
        dwFlags: DWORD,
        ppEnumJobs: *mut *mut IEnumBackgroundCopyJobs1,
    ) -> HRESULT,
    pub SwitchToForeground: unsafe extern "C" fn(This: *mut IBackgroundCopyGroup) -> HRESULT,
    pub QueryNewJobInterface: unsafe extern "C" fn(
        This: *mut IBackgroundCopyGroup,
        iid: REFIID,
        pUnk: *mut *mut IUnknown,
    ) -> HRESULT,
    pub SetNotificationPointer: unsafe extern "C" fn(
        This: *mut IBackgroundCopyGroup,
        iid: REFIID,
        pUnk: *mut IUnknown,
    ) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyGroup: IID = GUID::new(
    0x1DED80A7,
    0x53EA,
    0x424F,
    [0x8A, 0x04, 0x17, 0xFE, 0xA9, 0xAD, 0xC4, 0xF5],
);

/// The job of a legacy group (qmgr.h).
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyJob1 {
    pub lpVtbl: *const IBackgroundCopyJob1Vtbl,
}

/// The methods of [`IBackgroundCopyJob1`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyJob1Vtbl {
    pub base: IUnknownVtbl,
    pub CancelJob: unsafe extern "C" fn(This: *mut IBackgroundCopyJob1) -> HRESULT,
    pub GetProgress: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJob1,
        dwFlags: DWORD,
        pdwProgress: *mut DWORD,
    ) -> HRESULT,
    pub GetStatus: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJob1,
        pdwStatus: *mut DWORD,
        pdwWin32Result: *mut DWORD,
        pdwTransportResult: *mut DWORD,
        pdwNumOfRetries: *mut DWORD,
    ) -> HRESULT,
    pub AddFiles: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJob1,
        cFileCount: ULONG,
        ppFileSet: *mut *mut FILESETINFO,
    ) -> HRESULT,
    pub GetFile: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJob1,
        cFileIndex: ULONG,
        pFileInfo: *mut FILESETINFO,
    ) -> HRESULT,
    pub GetFileCount:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob1, pdwFileCount: *mut DWORD) -> HRESULT,
    pub SwitchToForeground: unsafe extern "C" fn(This: *mut IBackgroundCopyJob1) -> HRESULT,
    pub get_JobID:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob1, pguidJobID: *mut GUID) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyJob1: IID = GUID::new(
    0x59F5553C,
    0x2031,
    0x4629,
    [0xBB, 0x18, 0x26, 0x45, 0xA6, 0x97, 0x09, 0x47],
);

/// An enumerator over a snapshot of group GUIDs (qmgr.h).
#[repr(C)]
#[derive(Debug)]
pub struct IEnumBackgroundCopyGroups {
    pub lpVtbl: *const IEnumBackgroundCopyGroupsVtbl,
}

/// The methods of [`IEnumBackgroundCopyGroups`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IEnumBackgroundCopyGroupsVtbl {
    pub base: IUnknownVtbl,
    pub Next: unsafe extern "C" fn(
        This: *mut IEnumBackgroundCopyGroups,
        celt: ULONG,
        rgelt: *mut GUID,
        pceltFetched: *mut ULONG,
    ) -> HRESULT,
    pub Skip: unsafe extern "C" fn(This: *mut IEnumBackgroundCopyGroups, celt: ULONG) -> HRESULT,
    pub Reset: unsafe extern "C" fn(This: *mut IEnumBackgroundCopyGroups) -> HRESULT,
    pub Clone: unsafe extern "C" fn(
        This: *mut IEnumBackgroundCopyGroups,
        ppenum: *mut *mut IEnumBackgroundCopyGroups,
    ) -> HRESULT,
    pub GetCount:
        unsafe extern "C" fn(This: *mut IEnumBackgroundCopyGroups, puCount: *mut ULONG) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IEnumBackgroundCopyGroups: IID = GUID::new(
    0xD993E603,
    0x4AA4,
    0x47C5,
    [0x86, 0x65, 0xC2, 0x0D, 0x39, 0xC2, 0xBA, 0x4F],
);

/// An enumerator over the GUID of a group's job (qmgr.h).
#[repr(C)]
#[derive(Debug)]
pub struct IEnumBackgroundCopyJobs1 {
    pub lpVtbl: *const IEnumBackgroundCopyJobs1Vtbl,
}

/// The methods of [`IEnumBackgroundCopyJobs1`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IEnumBackgroundCopyJobs1Vtbl {
    pub base: IUnknownVtbl,
    pub Next: unsafe extern "C" fn(
        This: *mut IEnumBackgroundCopyJobs1,
        celt: ULONG,
        rgelt: *mut GUID,
        pceltFetched: *mut ULONG,
    ) -> HRESULT,
    pub Skip: unsafe extern "C" fn(This: *mut IEnumBackgroundCopyJobs1, celt: ULONG) -> HRESULT,
    pub Reset: unsafe extern "C" fn(This: *mut IEnumBackgroundCopyJobs1) -> HRESULT,
    pub Clone: unsafe extern "C" fn(
        This: *mut IEnumBackgroundCopyJobs1,
        ppenum: *mut *mut IEnumBackgroundCopyJobs1,
    ) -> HRESULT,
    pub GetCount:
        unsafe extern "C" fn(This: *mut IEnumBackgroundCopyJobs1, puCount: *mut ULONG) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IEnumBackgroundCopyJobs1: IID = GUID::new(
    0x8BAEBA9D,
    0x8F1C,
    0x42C4,
    [0xB8, 0x2C, 0x09, 0xAE, 0x79, 0x98, 0x0D, 0x25],
);

/// Implemented by the client of the group API (qmgr.h); qmgr does not call it.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyCallback1 {
    pub lpVtbl: *const IBackgroundCopyCallback1Vtbl,
}

/// The methods of [`IBackgroundCopyCallback1`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyCallback1Vtbl {
    pub base: IUnknownVtbl,
    pub OnStatus: unsafe extern "C" fn(
        This: *mut IBackgroundCopyCallback1,
        pGroup: *mut IBackgroundCopyGroup,
        pJob: *mut IBackgroundCopyJob1,
        dwFileIndex: DWORD,
        dwStatus: DWORD,
        dwNumOfRetries: DWORD,
        dwWin32Result: DWORD,
        dwTransportResult: DWORD,
    ) -> HRESULT,
    pub OnProgress: unsafe extern "C" fn(
        This: *mut IBackgroundCopyCallback1,
        ProgressType: DWORD,
        pGroup: *mut IBackgroundCopyGroup,
        pJob: *mut IBackgroundCopyJob1,
        dwFileIndex: DWORD,
        dwProgressValue: DWORD,
    ) -> HRESULT,
    pub OnProgressEx: unsafe extern "C" fn(
        This: *mut IBackgroundCopyCallback1,
        ProgressType: DWORD,
        pGroup: *mut IBackgroundCopyGroup,
        pJob: *mut IBackgroundCopyJob1,
        dwFileIndex: DWORD,
        dwProgressValue: DWORD,
        dwByteArraySize: DWORD,
        pByte: *mut BYTE,
    ) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyCallback1: IID = GUID::new(
    0x084F6593,
    0x3800,
    0x4E08,
    [0x9B, 0x59, 0x99, 0xFA, 0x59, 0xAD, 0xDF, 0x82],
);
