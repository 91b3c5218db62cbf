//! bits.h and its version headers (bits1_5.h … bits10_3.h): the interfaces qmgr implements,
//! with every method in Windows' slot order, and every IID, CLSID and LIBID the headers
//! declare.
//!
//! Format (the header generator reads it): each interface is `#[repr(C)] struct IFoo {
//! lpVtbl: *const IFooVtbl }`; each vtable starts with `base`, the parent's vtable
//! (`IUnknownVtbl` for direct children of IUnknown), followed by the interface's own methods
//! as `unsafe extern "C" fn(This: *mut IFoo, <params as mingw-w64 names them>) -> HRESULT`.
//! An enumeration is `pub type X = C_ENUM;` followed by its values as `pub const X_Y: X =
//! <literal>;` (see [`super::types::C_ENUM`]): the headers declare it `typedef enum X { … } X;`.

#![expect(
    non_snake_case,
    clippy::unreadable_literal,
    reason = "C-facing names keep Windows' spelling so the generated headers match bits.h"
)]
#![allow(
    clippy::wildcard_imports,
    reason = "the types module is imported whole; clippy skips this lint when the crate is built for its unit tests, so `expect` would fail there"
)]

use super::types::*;

/// `IID_IUnknown` (the root interface).
#[unsafe(no_mangle)]
pub static IID_IUnknown: IID = GUID::new(
    0x00000000,
    0x0000,
    0x0000,
    [0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46],
);

/// `IID_IBackgroundCopyFile4` (bits4_0.h).
#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyFile4: IID = GUID::new(
    0xEF7E0655,
    0x7888,
    0x4960,
    [0xB0, 0xE5, 0x73, 0x08, 0x46, 0xE0, 0x34, 0x92],
);

/// `IID_IBackgroundCopyFile5` (bits5_0.h).
#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyFile5: IID = GUID::new(
    0x85C1657F,
    0xDAFC,
    0x40E8,
    [0x88, 0x34, 0xDF, 0x18, 0xEA, 0x25, 0x71, 0x7E],
);

/// `IID_IBackgroundCopyFile6` (bits10_1.h).
#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyFile6: IID = GUID::new(
    0xCF6784F7,
    0xD677,
    0x49FD,
    [0x93, 0x68, 0xCB, 0x47, 0xAE, 0xE9, 0xD1, 0xAD],
);

/// `IID_IBackgroundCopyCallback3` (bits10_1.h; client-implemented).
#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyCallback3: IID = GUID::new(
    0x98C97BD2,
    0xE32B,
    0x4AD8,
    [0xA5, 0x28, 0x95, 0xFD, 0x8B, 0x16, 0xBD, 0x42],
);

/// `IID_IBackgroundCopyJobHttpOptions2` (bits10_2.h).
#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyJobHttpOptions2: IID = GUID::new(
    0xB591A192,
    0xA405,
    0x4FC3,
    [0x83, 0x23, 0x4C, 0x5C, 0x54, 0x25, 0x78, 0xFC],
);

/// `IID_IBackgroundCopyJobHttpOptions3` (bits10_3.h).
#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyJobHttpOptions3: IID = GUID::new(
    0x8A9263D3,
    0xFD4C,
    0x4EDA,
    [0x9B, 0x28, 0x30, 0x13, 0x2A, 0x4D, 0x4E, 0x3C],
);

/// `IID_IBackgroundCopyServerCertificateValidationCallback` (bits10_3.h).
#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyServerCertificateValidationCallback: IID = GUID::new(
    0x4CEC0D02,
    0xDEF7,
    0x4158,
    [0x81, 0x3A, 0xC3, 0x2A, 0x46, 0x94, 0x5F, 0xF7],
);

/// `IID_IBitsTokenOptions` (bits4_0.h).
#[unsafe(no_mangle)]
pub static IID_IBitsTokenOptions: IID = GUID::new(
    0x9A2584C3,
    0xF7D2,
    0x457A,
    [0x9A, 0x5E, 0x22, 0xB6, 0x7B, 0xFF, 0xC7, 0xD2],
);

/// `IID_IBitsPeerCacheRecord` (bits3_0.h; peer caching is retired: no record exists).
#[unsafe(no_mangle)]
pub static IID_IBitsPeerCacheRecord: IID = GUID::new(
    0x659CDEAF,
    0x489E,
    0x11D9,
    [0xA9, 0xCD, 0x00, 0x0D, 0x56, 0x96, 0x52, 0x51],
);

/// `IID_IEnumBitsPeerCacheRecords` (bits3_0.h; always empty).
#[unsafe(no_mangle)]
pub static IID_IEnumBitsPeerCacheRecords: IID = GUID::new(
    0x659CDEA4,
    0x489E,
    0x11D9,
    [0xA9, 0xCD, 0x00, 0x0D, 0x56, 0x96, 0x52, 0x51],
);

/// `IID_IBitsPeer` (bits3_0.h; peer caching is retired: no peer exists).
#[unsafe(no_mangle)]
pub static IID_IBitsPeer: IID = GUID::new(
    0x659CDEA2,
    0x489E,
    0x11D9,
    [0xA9, 0xCD, 0x00, 0x0D, 0x56, 0x96, 0x52, 0x51],
);

/// `IID_IEnumBitsPeers` (bits3_0.h; always empty).
#[unsafe(no_mangle)]
pub static IID_IEnumBitsPeers: IID = GUID::new(
    0x659CDEA5,
    0x489E,
    0x11D9,
    [0xA9, 0xCD, 0x00, 0x0D, 0x56, 0x96, 0x52, 0x51],
);

/// `IID_IBitsPeerCacheAdministration` (bits3_0.h; answered by the manager).
#[unsafe(no_mangle)]
pub static IID_IBitsPeerCacheAdministration: IID = GUID::new(
    0x659CDEAD,
    0x489E,
    0x11D9,
    [0xA9, 0xCD, 0x00, 0x0D, 0x56, 0x96, 0x52, 0x51],
);

/// The manager class (bits.h).
#[unsafe(no_mangle)]
pub static CLSID_BackgroundCopyManager: CLSID = GUID::new(
    0x4991D34B,
    0x80A1,
    0x4291,
    [0x83, 0xB6, 0x33, 0x28, 0x36, 0x6B, 0x90, 0x97],
);

/// The manager class (bits1_5.h).
#[unsafe(no_mangle)]
pub static CLSID_BackgroundCopyManager1_5: CLSID = GUID::new(
    0xF087771F,
    0xD74F,
    0x4C1A,
    [0xBB, 0x8A, 0xE1, 0x6A, 0xCA, 0x91, 0x24, 0xEA],
);

/// The manager class (bits2_0.h).
#[unsafe(no_mangle)]
pub static CLSID_BackgroundCopyManager2_0: CLSID = GUID::new(
    0x6D18AD12,
    0xBDE3,
    0x4393,
    [0xB3, 0x11, 0x09, 0x9C, 0x34, 0x6E, 0x6D, 0xF9],
);

/// The manager class (bits2_5.h).
#[unsafe(no_mangle)]
pub static CLSID_BackgroundCopyManager2_5: CLSID = GUID::new(
    0x03CA98D6,
    0xFF5D,
    0x49B8,
    [0xAB, 0xC6, 0x03, 0xDD, 0x84, 0x12, 0x70, 0x20],
);

/// The manager class (bits3_0.h).
#[unsafe(no_mangle)]
pub static CLSID_BackgroundCopyManager3_0: CLSID = GUID::new(
    0x659CDEA7,
    0x489E,
    0x11D9,
    [0xA9, 0xCD, 0x00, 0x0D, 0x56, 0x96, 0x52, 0x51],
);

/// The manager class (bits4_0.h).
#[unsafe(no_mangle)]
pub static CLSID_BackgroundCopyManager4_0: CLSID = GUID::new(
    0xBB6DF56B,
    0xCACE,
    0x11DC,
    [0x99, 0x92, 0x00, 0x19, 0xB9, 0x3A, 0x3A, 0x84],
);

/// The manager class (bits5_0.h).
#[unsafe(no_mangle)]
pub static CLSID_BackgroundCopyManager5_0: CLSID = GUID::new(
    0x1ECCA34C,
    0xE88A,
    0x44E3,
    [0x8D, 0x6A, 0x89, 0x21, 0xBD, 0xE9, 0xE4, 0x52],
);

/// The manager class (bits10_1.h).
#[unsafe(no_mangle)]
pub static CLSID_BackgroundCopyManager10_1: CLSID = GUID::new(
    0x4BD3E4E1,
    0x7BD4,
    0x4A2B,
    [0x99, 0x64, 0x49, 0x64, 0x00, 0xDE, 0x51, 0x93],
);

/// The manager class (bits10_2.h).
#[unsafe(no_mangle)]
pub static CLSID_BackgroundCopyManager10_2: CLSID = GUID::new(
    0x4575438F,
    0xA6C8,
    0x4976,
    [0xB0, 0xFE, 0x2F, 0x26, 0xB8, 0x0D, 0x95, 0x9E],
);

/// The manager class (bits10_3.h).
#[unsafe(no_mangle)]
pub static CLSID_BackgroundCopyManager10_3: CLSID = GUID::new(
    0x5FD42AD5,
    0xC04E,
    0x4D36,
    [0xAD, 0xC7, 0xE0, 0x8F, 0xF1, 0x57, 0x37, 0xAD],
);

#[unsafe(no_mangle)]
pub static LIBID_BackgroundCopyManager: GUID = GUID::new(
    0x1DEEB74F,
    0x7915,
    0x4560,
    [0xB5, 0x58, 0x91, 0x8C, 0x83, 0xF1, 0x76, 0xA6],
);

#[unsafe(no_mangle)]
pub static LIBID_BackgroundCopyManager1_5: GUID = GUID::new(
    0xEA9319EA,
    0xC628,
    0x480F,
    [0x83, 0x31, 0x76, 0x8F, 0xAC, 0x39, 0x7E, 0x4E],
);

#[unsafe(no_mangle)]
pub static LIBID_BackgroundCopyManager2_0: GUID = GUID::new(
    0x2289A9AF,
    0xDC96,
    0x486E,
    [0xB2, 0x68, 0x89, 0xC9, 0xE3, 0x39, 0x7C, 0x3D],
);

#[unsafe(no_mangle)]
pub static LIBID_BackgroundCopyManager2_5: GUID = GUID::new(
    0x4974177C,
    0x3BB6,
    0x4C37,
    [0x9F, 0xF0, 0x6B, 0x74, 0x26, 0xF0, 0xAB, 0xA9],
);

#[unsafe(no_mangle)]
pub static LIBID_BackgroundCopyManager3_0: GUID = GUID::new(
    0x659CDEA6,
    0x489E,
    0x11D9,
    [0xA9, 0xCD, 0x00, 0x0D, 0x56, 0x96, 0x52, 0x51],
);

/// The queue of the caller's jobs (bits.h, BITS 1.0).
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyManager {
    pub lpVtbl: *const IBackgroundCopyManagerVtbl,
}

/// The methods of [`IBackgroundCopyManager`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyManagerVtbl {
    pub base: IUnknownVtbl,
    pub CreateJob: unsafe extern "C" fn(
        This: *mut IBackgroundCopyManager,
        DisplayName: LPCWSTR,
        Type: BG_JOB_TYPE,
        pJobId: *mut GUID,
        ppJob: *mut *mut IBackgroundCopyJob,
    ) -> HRESULT,
    pub GetJob: unsafe extern "C" fn(
        This: *mut IBackgroundCopyManager,
        jobID: REFGUID,
        ppJob: *mut *mut IBackgroundCopyJob,
    ) -> HRESULT,
    pub EnumJobs: unsafe extern "C" fn(
        This: *mut IBackgroundCopyManager,
        dwFlags: DWORD,
        ppEnum: *mut *mut IEnumBackgroundCopyJobs,
    ) -> HRESULT,
    pub GetErrorDescription: unsafe extern "C" fn(
        This: *mut IBackgroundCopyManager,
        hResult: HRESULT,
        LanguageId: DWORD,
        pErrorDescription: *mut LPWSTR,
    ) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyManager: IID = GUID::new(
    0x5CE34C0D,
    0x0DC9,
    0x4C1F,
    [0x89, 0x7C, 0xDA, 0xA1, 0xB7, 0x8C, 0xEE, 0x7C],
);

/// A transfer job (bits.h, BITS 1.0).
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyJob {
    pub lpVtbl: *const IBackgroundCopyJobVtbl,
}

/// The methods of [`IBackgroundCopyJob`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyJobVtbl {
    pub base: IUnknownVtbl,
    pub AddFileSet: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJob,
        cFileCount: ULONG,
        pFileSet: *mut BG_FILE_INFO,
    ) -> HRESULT,
    pub AddFile: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJob,
        RemoteUrl: LPCWSTR,
        LocalName: LPCWSTR,
    ) -> HRESULT,
    pub EnumFiles: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJob,
        pEnum: *mut *mut IEnumBackgroundCopyFiles,
    ) -> HRESULT,
    pub Suspend: unsafe extern "C" fn(This: *mut IBackgroundCopyJob) -> HRESULT,
    pub Resume: unsafe extern "C" fn(This: *mut IBackgroundCopyJob) -> HRESULT,
    pub Cancel: unsafe extern "C" fn(This: *mut IBackgroundCopyJob) -> HRESULT,
    pub Complete: unsafe extern "C" fn(This: *mut IBackgroundCopyJob) -> HRESULT,
    pub GetId: unsafe extern "C" fn(This: *mut IBackgroundCopyJob, pVal: *mut GUID) -> HRESULT,
    pub GetType:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob, pVal: *mut BG_JOB_TYPE) -> HRESULT,
    pub GetProgress:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob, pVal: *mut BG_JOB_PROGRESS) -> HRESULT,
    pub GetTimes:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob, pVal: *mut BG_JOB_TIMES) -> HRESULT,
    pub GetState:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob, pVal: *mut BG_JOB_STATE) -> HRESULT,
    pub GetError: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJob,
        ppError: *mut *mut IBackgroundCopyError,
    ) -> HRESULT,
    pub GetOwner: unsafe extern "C" fn(This: *mut IBackgroundCopyJob, pVal: *mut LPWSTR) -> HRESULT,
    pub SetDisplayName:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob, Val: LPCWSTR) -> HRESULT,
    pub GetDisplayName:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob, pVal: *mut LPWSTR) -> HRESULT,
    pub SetDescription:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob, Val: LPCWSTR) -> HRESULT,
    pub GetDescription:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob, pVal: *mut LPWSTR) -> HRESULT,
    pub SetPriority:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob, Val: BG_JOB_PRIORITY) -> HRESULT,
    pub GetPriority:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob, pVal: *mut BG_JOB_PRIORITY) -> HRESULT,
    pub SetNotifyFlags: unsafe extern "C" fn(This: *mut IBackgroundCopyJob, Val: ULONG) -> HRESULT,
    pub GetNotifyFlags:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob, pVal: *mut ULONG) -> HRESULT,
    pub SetNotifyInterface:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob, Val: *mut IUnknown) -> HRESULT,
    pub GetNotifyInterface:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob, pVal: *mut *mut IUnknown) -> HRESULT,
    pub SetMinimumRetryDelay:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob, Seconds: ULONG) -> HRESULT,
    pub GetMinimumRetryDelay:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob, Seconds: *mut ULONG) -> HRESULT,
    pub SetNoProgressTimeout:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob, Seconds: ULONG) -> HRESULT,
    pub GetNoProgressTimeout:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob, Seconds: *mut ULONG) -> HRESULT,
    pub GetErrorCount:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob, Errors: *mut ULONG) -> HRESULT,
    pub SetProxySettings: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJob,
        ProxyUsage: BG_JOB_PROXY_USAGE,
        ProxyList: *const WCHAR,
        ProxyBypassList: *const WCHAR,
    ) -> HRESULT,
    pub GetProxySettings: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJob,
        pProxyUsage: *mut BG_JOB_PROXY_USAGE,
        pProxyList: *mut LPWSTR,
        pProxyBypassList: *mut LPWSTR,
    ) -> HRESULT,
    pub TakeOwnership: unsafe extern "C" fn(This: *mut IBackgroundCopyJob) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyJob: IID = GUID::new(
    0x37668D37,
    0x507E,
    0x4160,
    [0x93, 0x16, 0x26, 0x30, 0x6D, 0x15, 0x0B, 0x12],
);

/// Job additions of BITS 1.5 (bits1_5.h).
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyJob2 {
    pub lpVtbl: *const IBackgroundCopyJob2Vtbl,
}

/// The methods of [`IBackgroundCopyJob2`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyJob2Vtbl {
    pub base: IBackgroundCopyJobVtbl,
    pub SetNotifyCmdLine: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJob2,
        prog: LPCWSTR,
        params: LPCWSTR,
    ) -> HRESULT,
    pub GetNotifyCmdLine: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJob2,
        prog: *mut LPWSTR,
        params: *mut LPWSTR,
    ) -> HRESULT,
    pub GetReplyProgress: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJob2,
        progress: *mut BG_JOB_REPLY_PROGRESS,
    ) -> HRESULT,
    pub GetReplyData: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJob2,
        pBuffer: *mut *mut byte,
        pLength: *mut UINT64,
    ) -> HRESULT,
    pub SetReplyFileName:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob2, filename: LPCWSTR) -> HRESULT,
    pub GetReplyFileName:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob2, pFilename: *mut LPWSTR) -> HRESULT,
    pub SetCredentials: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJob2,
        cred: *mut BG_AUTH_CREDENTIALS,
    ) -> HRESULT,
    pub RemoveCredentials: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJob2,
        target: BG_AUTH_TARGET,
        scheme: BG_AUTH_SCHEME,
    ) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyJob2: IID = GUID::new(
    0x54B50739,
    0x686F,
    0x45EB,
    [0x9D, 0xFF, 0xD6, 0xA9, 0xA0, 0xFA, 0xA9, 0xAF],
);

/// Job additions of BITS 2.0 (bits2_0.h).
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyJob3 {
    pub lpVtbl: *const IBackgroundCopyJob3Vtbl,
}

/// The methods of [`IBackgroundCopyJob3`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyJob3Vtbl {
    pub base: IBackgroundCopyJob2Vtbl,
    pub ReplaceRemotePrefix: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJob3,
        OldPrefix: LPCWSTR,
        NewPrefix: LPCWSTR,
    ) -> HRESULT,
    pub AddFileWithRanges: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJob3,
        RemoteUrl: LPCWSTR,
        LocalName: LPCWSTR,
        RangeCount: DWORD,
        Ranges: *mut BG_FILE_RANGE,
    ) -> HRESULT,
    pub SetFileACLFlags:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob3, Flags: DWORD) -> HRESULT,
    pub GetFileACLFlags:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob3, Flags: *mut DWORD) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyJob3: IID = GUID::new(
    0x443C8934,
    0x90FF,
    0x48ED,
    [0xBC, 0xDE, 0x26, 0xF5, 0xC7, 0x45, 0x00, 0x42],
);

/// Job additions of BITS 3.0 (bits3_0.h).
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyJob4 {
    pub lpVtbl: *const IBackgroundCopyJob4Vtbl,
}

/// The methods of [`IBackgroundCopyJob4`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyJob4Vtbl {
    pub base: IBackgroundCopyJob3Vtbl,
    pub SetPeerCachingFlags:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob4, flags: DWORD) -> HRESULT,
    pub GetPeerCachingFlags:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob4, flags: *mut DWORD) -> HRESULT,
    pub GetOwnerIntegrityLevel:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob4, level: *mut ULONG) -> HRESULT,
    pub GetOwnerElevationState:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob4, elevated: *mut WINBOOL) -> HRESULT,
    pub SetMaximumDownloadTime:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob4, timeout: ULONG) -> HRESULT,
    pub GetMaximumDownloadTime:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJob4, timeout: *mut ULONG) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyJob4: IID = GUID::new(
    0x659CDEAE,
    0x489E,
    0x11D9,
    [0xA9, 0xCD, 0x00, 0x0D, 0x56, 0x96, 0x52, 0x51],
);

/// Job additions of BITS 5.0 (bits5_0.h).
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyJob5 {
    pub lpVtbl: *const IBackgroundCopyJob5Vtbl,
}

/// The methods of [`IBackgroundCopyJob5`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyJob5Vtbl {
    pub base: IBackgroundCopyJob4Vtbl,
    pub SetProperty: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJob5,
        id: BITS_JOB_PROPERTY_ID,
        value: BITS_JOB_PROPERTY_VALUE,
    ) -> HRESULT,
    pub GetProperty: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJob5,
        id: BITS_JOB_PROPERTY_ID,
        value: *mut BITS_JOB_PROPERTY_VALUE,
    ) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyJob5: IID = GUID::new(
    0xE847030C,
    0xBBBA,
    0x4657,
    [0xAF, 0x6D, 0x48, 0x4A, 0xA4, 0x2B, 0xF1, 0xFE],
);

/// A file of a job (bits.h, BITS 1.0).
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyFile {
    pub lpVtbl: *const IBackgroundCopyFileVtbl,
}

/// The methods of [`IBackgroundCopyFile`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyFileVtbl {
    pub base: IUnknownVtbl,
    pub GetRemoteName:
        unsafe extern "C" fn(This: *mut IBackgroundCopyFile, pVal: *mut LPWSTR) -> HRESULT,
    pub GetLocalName:
        unsafe extern "C" fn(This: *mut IBackgroundCopyFile, pVal: *mut LPWSTR) -> HRESULT,
    pub GetProgress: unsafe extern "C" fn(
        This: *mut IBackgroundCopyFile,
        pVal: *mut BG_FILE_PROGRESS,
    ) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyFile: IID = GUID::new(
    0x01B7BD23,
    0xFB88,
    0x4A77,
    [0x84, 0x90, 0x58, 0x91, 0xD3, 0xE4, 0x65, 0x3A],
);

/// File additions of BITS 2.0 (bits2_0.h).
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyFile2 {
    pub lpVtbl: *const IBackgroundCopyFile2Vtbl,
}

/// The methods of [`IBackgroundCopyFile2`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyFile2Vtbl {
    pub base: IBackgroundCopyFileVtbl,
    pub GetFileRanges: unsafe extern "C" fn(
        This: *mut IBackgroundCopyFile2,
        RangeCount: *mut DWORD,
        Ranges: *mut *mut BG_FILE_RANGE,
    ) -> HRESULT,
    pub SetRemoteName:
        unsafe extern "C" fn(This: *mut IBackgroundCopyFile2, Val: LPCWSTR) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyFile2: IID = GUID::new(
    0x83E81B93,
    0x0873,
    0x474D,
    [0x8A, 0x8C, 0xF2, 0x01, 0x8B, 0x1A, 0x93, 0x9C],
);

/// File additions of BITS 3.0 (bits3_0.h; not in mingw-w64).
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyFile3 {
    pub lpVtbl: *const IBackgroundCopyFile3Vtbl,
}

/// The methods of [`IBackgroundCopyFile3`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyFile3Vtbl {
    pub base: IBackgroundCopyFile2Vtbl,
    pub GetTemporaryName:
        unsafe extern "C" fn(This: *mut IBackgroundCopyFile3, pFilename: *mut LPWSTR) -> HRESULT,
    pub SetValidationState:
        unsafe extern "C" fn(This: *mut IBackgroundCopyFile3, state: BOOL) -> HRESULT,
    pub GetValidationState:
        unsafe extern "C" fn(This: *mut IBackgroundCopyFile3, pState: *mut BOOL) -> HRESULT,
    pub IsDownloadedFromPeer:
        unsafe extern "C" fn(This: *mut IBackgroundCopyFile3, pVal: *mut BOOL) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyFile3: IID = GUID::new(
    0x659CDEAA,
    0x489E,
    0x11D9,
    [0xA9, 0xCD, 0x00, 0x0D, 0x56, 0x96, 0x52, 0x51],
);

/// An enumerator over a snapshot of jobs (bits.h).
#[repr(C)]
#[derive(Debug)]
pub struct IEnumBackgroundCopyJobs {
    pub lpVtbl: *const IEnumBackgroundCopyJobsVtbl,
}

/// The methods of [`IEnumBackgroundCopyJobs`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IEnumBackgroundCopyJobsVtbl {
    pub base: IUnknownVtbl,
    pub Next: unsafe extern "C" fn(
        This: *mut IEnumBackgroundCopyJobs,
        celt: ULONG,
        rgelt: *mut *mut IBackgroundCopyJob,
        pceltFetched: *mut ULONG,
    ) -> HRESULT,
    pub Skip: unsafe extern "C" fn(This: *mut IEnumBackgroundCopyJobs, celt: ULONG) -> HRESULT,
    pub Reset: unsafe extern "C" fn(This: *mut IEnumBackgroundCopyJobs) -> HRESULT,
    pub Clone: unsafe extern "C" fn(
        This: *mut IEnumBackgroundCopyJobs,
        ppenum: *mut *mut IEnumBackgroundCopyJobs,
    ) -> HRESULT,
    pub GetCount:
        unsafe extern "C" fn(This: *mut IEnumBackgroundCopyJobs, puCount: *mut ULONG) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IEnumBackgroundCopyJobs: IID = GUID::new(
    0x1AF4F612,
    0x3B71,
    0x466F,
    [0x8F, 0x58, 0x7B, 0x6F, 0x73, 0xAC, 0x57, 0xAD],
);

/// An enumerator over a snapshot of a job's files (bits.h).
#[repr(C)]
#[derive(Debug)]
pub struct IEnumBackgroundCopyFiles {
    pub lpVtbl: *const IEnumBackgroundCopyFilesVtbl,
}

/// The methods of [`IEnumBackgroundCopyFiles`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IEnumBackgroundCopyFilesVtbl {
    pub base: IUnknownVtbl,
    pub Next: unsafe extern "C" fn(
        This: *mut IEnumBackgroundCopyFiles,
        celt: ULONG,
        rgelt: *mut *mut IBackgroundCopyFile,
        pceltFetched: *mut ULONG,
    ) -> HRESULT,
    pub Skip: unsafe extern "C" fn(This: *mut IEnumBackgroundCopyFiles, celt: ULONG) -> HRESULT,
    pub Reset: unsafe extern "C" fn(This: *mut IEnumBackgroundCopyFiles) -> HRESULT,
    pub Clone: unsafe extern "C" fn(
        This: *mut IEnumBackgroundCopyFiles,
        ppenum: *mut *mut IEnumBackgroundCopyFiles,
    ) -> HRESULT,
    pub GetCount:
        unsafe extern "C" fn(This: *mut IEnumBackgroundCopyFiles, puCount: *mut ULONG) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IEnumBackgroundCopyFiles: IID = GUID::new(
    0xCA51E165,
    0xC365,
    0x424C,
    [0x8D, 0x41, 0x24, 0xAA, 0xA4, 0xFF, 0x3C, 0x40],
);

/// The error of a job in ERROR or TRANSIENT_ERROR (bits.h).
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyError {
    pub lpVtbl: *const IBackgroundCopyErrorVtbl,
}

/// The methods of [`IBackgroundCopyError`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyErrorVtbl {
    pub base: IUnknownVtbl,
    pub GetError: unsafe extern "C" fn(
        This: *mut IBackgroundCopyError,
        pContext: *mut BG_ERROR_CONTEXT,
        pCode: *mut HRESULT,
    ) -> HRESULT,
    pub GetFile: unsafe extern "C" fn(
        This: *mut IBackgroundCopyError,
        pVal: *mut *mut IBackgroundCopyFile,
    ) -> HRESULT,
    pub GetErrorDescription: unsafe extern "C" fn(
        This: *mut IBackgroundCopyError,
        LanguageId: DWORD,
        pErrorDescription: *mut LPWSTR,
    ) -> HRESULT,
    pub GetErrorContextDescription: unsafe extern "C" fn(
        This: *mut IBackgroundCopyError,
        LanguageId: DWORD,
        pContextDescription: *mut LPWSTR,
    ) -> HRESULT,
    pub GetProtocol:
        unsafe extern "C" fn(This: *mut IBackgroundCopyError, pProtocol: *mut LPWSTR) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyError: IID = GUID::new(
    0x19C613A0,
    0xFCB8,
    0x4F28,
    [0x81, 0xAE, 0x89, 0x7C, 0x3D, 0x07, 0x8F, 0x81],
);

/// Why the last call on this thread failed (oaidl.h): `GetErrorInfo` hands it out after a
/// call returned a failure HRESULT, with the description a C caller would otherwise not see
/// (for example why CoCreateInstance could not reach the queue).
#[repr(C)]
#[derive(Debug)]
pub struct IErrorInfo {
    pub lpVtbl: *const IErrorInfoVtbl,
}

/// The methods of [`IErrorInfo`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IErrorInfoVtbl {
    pub base: IUnknownVtbl,
    pub GetGUID: unsafe extern "C" fn(This: *mut IErrorInfo, pGUID: *mut GUID) -> HRESULT,
    pub GetSource: unsafe extern "C" fn(This: *mut IErrorInfo, pBstrSource: *mut BSTR) -> HRESULT,
    pub GetDescription:
        unsafe extern "C" fn(This: *mut IErrorInfo, pBstrDescription: *mut BSTR) -> HRESULT,
    pub GetHelpFile:
        unsafe extern "C" fn(This: *mut IErrorInfo, pBstrHelpFile: *mut BSTR) -> HRESULT,
    pub GetHelpContext:
        unsafe extern "C" fn(This: *mut IErrorInfo, pdwHelpContext: *mut DWORD) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IErrorInfo: IID = GUID::new(
    0x1CF2B120,
    0x547D,
    0x101B,
    [0x8E, 0x65, 0x08, 0x00, 0x2B, 0x2B, 0xA7, 0x0B],
);

/// Implemented by the client: told when a job transferred, failed or changed (bits.h).
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyCallback {
    pub lpVtbl: *const IBackgroundCopyCallbackVtbl,
}

/// The methods of [`IBackgroundCopyCallback`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyCallbackVtbl {
    pub base: IUnknownVtbl,
    pub JobTransferred: unsafe extern "C" fn(
        This: *mut IBackgroundCopyCallback,
        pJob: *mut IBackgroundCopyJob,
    ) -> HRESULT,
    pub JobError: unsafe extern "C" fn(
        This: *mut IBackgroundCopyCallback,
        pJob: *mut IBackgroundCopyJob,
        pError: *mut IBackgroundCopyError,
    ) -> HRESULT,
    pub JobModification: unsafe extern "C" fn(
        This: *mut IBackgroundCopyCallback,
        pJob: *mut IBackgroundCopyJob,
        dwReserved: DWORD,
    ) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyCallback: IID = GUID::new(
    0x97EA99C7,
    0x0186,
    0x4AD4,
    [0x8D, 0xF9, 0xC5, 0xB4, 0xE0, 0xED, 0x6B, 0x22],
);

/// Implemented by the client: also told when one file transferred (bits3_0.h).
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyCallback2 {
    pub lpVtbl: *const IBackgroundCopyCallback2Vtbl,
}

/// The methods of [`IBackgroundCopyCallback2`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyCallback2Vtbl {
    pub base: IBackgroundCopyCallbackVtbl,
    pub FileTransferred: unsafe extern "C" fn(
        This: *mut IBackgroundCopyCallback2,
        job: *mut IBackgroundCopyJob,
        file: *mut IBackgroundCopyFile,
    ) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyCallback2: IID = GUID::new(
    0x659CDEAC,
    0x489E,
    0x11D9,
    [0xA9, 0xCD, 0x00, 0x0D, 0x56, 0x96, 0x52, 0x51],
);

/// HTTP options of a job, reached by QueryInterface on the job (bits2_5.h).
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyJobHttpOptions {
    pub lpVtbl: *const IBackgroundCopyJobHttpOptionsVtbl,
}

/// The methods of [`IBackgroundCopyJobHttpOptions`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyJobHttpOptionsVtbl {
    pub base: IUnknownVtbl,
    pub SetClientCertificateByID: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJobHttpOptions,
        StoreLocation: BG_CERT_STORE_LOCATION,
        StoreName: LPCWSTR,
        pCertHashBlob: *mut BYTE,
    ) -> HRESULT,
    pub SetClientCertificateByName: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJobHttpOptions,
        StoreLocation: BG_CERT_STORE_LOCATION,
        StoreName: LPCWSTR,
        SubjectName: LPCWSTR,
    ) -> HRESULT,
    pub RemoveClientCertificate:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJobHttpOptions) -> HRESULT,
    pub GetClientCertificate: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJobHttpOptions,
        pStoreLocation: *mut BG_CERT_STORE_LOCATION,
        pStoreName: *mut LPWSTR,
        ppCertHashBlob: *mut *mut BYTE,
        pSubjectName: *mut LPWSTR,
    ) -> HRESULT,
    pub SetCustomHeaders: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJobHttpOptions,
        RequestHeaders: LPCWSTR,
    ) -> HRESULT,
    pub GetCustomHeaders: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJobHttpOptions,
        pRequestHeaders: *mut LPWSTR,
    ) -> HRESULT,
    pub SetSecurityFlags:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJobHttpOptions, Flags: ULONG) -> HRESULT,
    pub GetSecurityFlags: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJobHttpOptions,
        pFlags: *mut ULONG,
    ) -> HRESULT,
}

#[unsafe(no_mangle)]
pub static IID_IBackgroundCopyJobHttpOptions: IID = GUID::new(
    0xF1BD1079,
    0x9F01,
    0x4BDC,
    [0x80, 0x36, 0xF0, 0x9B, 0x70, 0x09, 0x50, 0x66],
);

/// File additions of BITS 4.0 (bits4_0.h; not in mingw-w64).
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyFile4 {
    pub lpVtbl: *const IBackgroundCopyFile4Vtbl,
}

/// The methods of [`IBackgroundCopyFile4`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyFile4Vtbl {
    pub base: IBackgroundCopyFile3Vtbl,
    pub GetPeerDownloadStats: unsafe extern "C" fn(
        This: *mut IBackgroundCopyFile4,
        pFromOrigin: *mut UINT64,
        pFromPeers: *mut UINT64,
    ) -> HRESULT,
}

/// File additions of BITS 5.0 (bits5_0.h; not in mingw-w64).
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyFile5 {
    pub lpVtbl: *const IBackgroundCopyFile5Vtbl,
}

/// The methods of [`IBackgroundCopyFile5`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyFile5Vtbl {
    pub base: IBackgroundCopyFile4Vtbl,
    pub SetProperty: unsafe extern "C" fn(
        This: *mut IBackgroundCopyFile5,
        PropertyId: BITS_FILE_PROPERTY_ID,
        PropertyValue: BITS_FILE_PROPERTY_VALUE,
    ) -> HRESULT,
    pub GetProperty: unsafe extern "C" fn(
        This: *mut IBackgroundCopyFile5,
        PropertyId: BITS_FILE_PROPERTY_ID,
        PropertyValue: *mut BITS_FILE_PROPERTY_VALUE,
    ) -> HRESULT,
}

/// File additions of BITS 10.1: ranges of on-demand files (bits10_1.h).
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyFile6 {
    pub lpVtbl: *const IBackgroundCopyFile6Vtbl,
}

/// The methods of [`IBackgroundCopyFile6`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyFile6Vtbl {
    pub base: IBackgroundCopyFile5Vtbl,
    pub UpdateDownloadPosition:
        unsafe extern "C" fn(This: *mut IBackgroundCopyFile6, offset: UINT64) -> HRESULT,
    pub RequestFileRanges: unsafe extern "C" fn(
        This: *mut IBackgroundCopyFile6,
        rangeCount: DWORD,
        ranges: *const BG_FILE_RANGE,
    ) -> HRESULT,
    pub GetFilledFileRanges: unsafe extern "C" fn(
        This: *mut IBackgroundCopyFile6,
        rangeCount: *mut DWORD,
        ranges: *mut *mut BG_FILE_RANGE,
    ) -> HRESULT,
}

/// HTTP option additions of BITS 10.2: the request method (bits10_2.h).
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyJobHttpOptions2 {
    pub lpVtbl: *const IBackgroundCopyJobHttpOptions2Vtbl,
}

/// The methods of [`IBackgroundCopyJobHttpOptions2`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyJobHttpOptions2Vtbl {
    pub base: IBackgroundCopyJobHttpOptionsVtbl,
    pub SetHttpMethod:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJobHttpOptions2, method: LPCWSTR) -> HRESULT,
    pub GetHttpMethod: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJobHttpOptions2,
        method: *mut LPWSTR,
    ) -> HRESULT,
}

/// HTTP option additions of BITS 10.3 (bits10_3.h): write-only custom headers and a server certificate validator.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyJobHttpOptions3 {
    pub lpVtbl: *const IBackgroundCopyJobHttpOptions3Vtbl,
}

/// The methods of [`IBackgroundCopyJobHttpOptions3`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyJobHttpOptions3Vtbl {
    pub base: IBackgroundCopyJobHttpOptions2Vtbl,
    pub SetServerCertificateValidationInterface: unsafe extern "C" fn(
        This: *mut IBackgroundCopyJobHttpOptions3,
        certValidationCallback: *mut IUnknown,
    ) -> HRESULT,
    pub MakeCustomHeadersWriteOnly:
        unsafe extern "C" fn(This: *mut IBackgroundCopyJobHttpOptions3) -> HRESULT,
}

/// Implemented by the client: told of transferred ranges of on-demand files (bits10_1.h); called as its other callbacks are.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyCallback3 {
    pub lpVtbl: *const IBackgroundCopyCallback3Vtbl,
}

/// The methods of [`IBackgroundCopyCallback3`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyCallback3Vtbl {
    pub base: IBackgroundCopyCallback2Vtbl,
    pub FileRangesTransferred: unsafe extern "C" fn(
        This: *mut IBackgroundCopyCallback3,
        job: *mut IBackgroundCopyJob,
        file: *mut IBackgroundCopyFile,
        rangeCount: DWORD,
        ranges: *const BG_FILE_RANGE,
    ) -> HRESULT,
}

/// Implemented by the client: validates server certificates (bits10_3.h); called as its other callbacks are (in its apartment).
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyServerCertificateValidationCallback {
    pub lpVtbl: *const IBackgroundCopyServerCertificateValidationCallbackVtbl,
}

/// The methods of [`IBackgroundCopyServerCertificateValidationCallback`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBackgroundCopyServerCertificateValidationCallbackVtbl {
    pub base: IUnknownVtbl,
    pub ValidateServerCertificate: unsafe extern "C" fn(
        This: *mut IBackgroundCopyServerCertificateValidationCallback,
        job: *mut IBackgroundCopyJob,
        file: *mut IBackgroundCopyFile,
        certLength: DWORD,
        certData: *const BYTE,
        certEncodingType: DWORD,
        certStoreLength: DWORD,
        certStoreData: *const BYTE,
    ) -> HRESULT,
}

/// Helper tokens of a job, reached by QueryInterface on the job (bits4_0.h). Windows tokens have no Linux meaning: every method is E_NOTIMPL.
#[repr(C)]
#[derive(Debug)]
pub struct IBitsTokenOptions {
    pub lpVtbl: *const IBitsTokenOptionsVtbl,
}

/// The methods of [`IBitsTokenOptions`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBitsTokenOptionsVtbl {
    pub base: IUnknownVtbl,
    pub SetHelperTokenFlags:
        unsafe extern "C" fn(This: *mut IBitsTokenOptions, UsageFlags: BG_TOKEN) -> HRESULT,
    pub GetHelperTokenFlags:
        unsafe extern "C" fn(This: *mut IBitsTokenOptions, pFlags: *mut BG_TOKEN) -> HRESULT,
    pub SetHelperToken: unsafe extern "C" fn(This: *mut IBitsTokenOptions) -> HRESULT,
    pub ClearHelperToken: unsafe extern "C" fn(This: *mut IBitsTokenOptions) -> HRESULT,
    pub GetHelperTokenSid:
        unsafe extern "C" fn(This: *mut IBitsTokenOptions, pSid: *mut LPWSTR) -> HRESULT,
}

// ---------------------------------------------------------------------------------------
// bits3_0.h: peer caching. Slot order and parameter names are the Windows SDK's bits3_0.h
// (mingw-w64 10 does not declare these interfaces). Microsoft retired peer caching in
// BITS 4.0 (Windows 7): the interfaces remain and report an empty cache and no peers.

/// A peer cache record (Windows SDK bits3_0.h): none exists, the cache being empty.
/// Declared for code that names it; no object implements it.
#[repr(C)]
#[derive(Debug)]
pub struct IBitsPeerCacheRecord {
    pub lpVtbl: *const IBitsPeerCacheRecordVtbl,
}

/// The methods of [`IBitsPeerCacheRecord`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBitsPeerCacheRecordVtbl {
    pub base: IUnknownVtbl,
    pub GetId: unsafe extern "C" fn(This: *mut IBitsPeerCacheRecord, pVal: *mut GUID) -> HRESULT,
    pub GetOriginUrl:
        unsafe extern "C" fn(This: *mut IBitsPeerCacheRecord, pVal: *mut LPWSTR) -> HRESULT,
    pub GetFileSize:
        unsafe extern "C" fn(This: *mut IBitsPeerCacheRecord, pVal: *mut UINT64) -> HRESULT,
    pub GetFileModificationTime:
        unsafe extern "C" fn(This: *mut IBitsPeerCacheRecord, pVal: *mut FILETIME) -> HRESULT,
    pub GetLastAccessTime:
        unsafe extern "C" fn(This: *mut IBitsPeerCacheRecord, pVal: *mut FILETIME) -> HRESULT,
    pub IsFileValidated: unsafe extern "C" fn(This: *mut IBitsPeerCacheRecord) -> HRESULT,
    pub GetFileRanges: unsafe extern "C" fn(
        This: *mut IBitsPeerCacheRecord,
        pRangeCount: *mut DWORD,
        ppRanges: *mut *mut BG_FILE_RANGE,
    ) -> HRESULT,
}

/// The records of the peer cache (Windows SDK bits3_0.h): always empty.
#[repr(C)]
#[derive(Debug)]
pub struct IEnumBitsPeerCacheRecords {
    pub lpVtbl: *const IEnumBitsPeerCacheRecordsVtbl,
}

/// The methods of [`IEnumBitsPeerCacheRecords`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IEnumBitsPeerCacheRecordsVtbl {
    pub base: IUnknownVtbl,
    pub Next: unsafe extern "C" fn(
        This: *mut IEnumBitsPeerCacheRecords,
        celt: ULONG,
        rgelt: *mut *mut IBitsPeerCacheRecord,
        pceltFetched: *mut ULONG,
    ) -> HRESULT,
    pub Skip: unsafe extern "C" fn(This: *mut IEnumBitsPeerCacheRecords, celt: ULONG) -> HRESULT,
    pub Reset: unsafe extern "C" fn(This: *mut IEnumBitsPeerCacheRecords) -> HRESULT,
    pub Clone: unsafe extern "C" fn(
        This: *mut IEnumBitsPeerCacheRecords,
        ppenum: *mut *mut IEnumBitsPeerCacheRecords,
    ) -> HRESULT,
    pub GetCount:
        unsafe extern "C" fn(This: *mut IEnumBitsPeerCacheRecords, puCount: *mut ULONG) -> HRESULT,
}

/// A peer (Windows SDK bits3_0.h): none exists, no peer being ever discovered.
/// Declared for code that names it; no object implements it.
#[repr(C)]
#[derive(Debug)]
pub struct IBitsPeer {
    pub lpVtbl: *const IBitsPeerVtbl,
}

/// The methods of [`IBitsPeer`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBitsPeerVtbl {
    pub base: IUnknownVtbl,
    pub GetPeerName: unsafe extern "C" fn(This: *mut IBitsPeer, pName: *mut LPWSTR) -> HRESULT,
    pub IsAuthenticated: unsafe extern "C" fn(This: *mut IBitsPeer, pAuth: *mut BOOL) -> HRESULT,
    pub IsAvailable: unsafe extern "C" fn(This: *mut IBitsPeer, pOnline: *mut BOOL) -> HRESULT,
}

/// The known peers (Windows SDK bits3_0.h): always empty.
#[repr(C)]
#[derive(Debug)]
pub struct IEnumBitsPeers {
    pub lpVtbl: *const IEnumBitsPeersVtbl,
}

/// The methods of [`IEnumBitsPeers`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IEnumBitsPeersVtbl {
    pub base: IUnknownVtbl,
    pub Next: unsafe extern "C" fn(
        This: *mut IEnumBitsPeers,
        celt: ULONG,
        rgelt: *mut *mut IBitsPeer,
        pceltFetched: *mut ULONG,
    ) -> HRESULT,
    pub Skip: unsafe extern "C" fn(This: *mut IEnumBitsPeers, celt: ULONG) -> HRESULT,
    pub Reset: unsafe extern "C" fn(This: *mut IEnumBitsPeers) -> HRESULT,
    pub Clone: unsafe extern "C" fn(
        This: *mut IEnumBitsPeers,
        ppenum: *mut *mut IEnumBitsPeers,
    ) -> HRESULT,
    pub GetCount: unsafe extern "C" fn(This: *mut IEnumBitsPeers, puCount: *mut ULONG) -> HRESULT,
}

/// Peer cache administration (Windows SDK bits3_0.h), from the manager's QueryInterface.
/// Peer caching was retired in BITS 4.0; as there, the cache is empty, no peer is known,
/// and changes are accepted and have no effect (S_FALSE).
#[repr(C)]
#[derive(Debug)]
pub struct IBitsPeerCacheAdministration {
    pub lpVtbl: *const IBitsPeerCacheAdministrationVtbl,
}

/// The methods of [`IBitsPeerCacheAdministration`], after those of its parent.
#[repr(C)]
#[derive(Debug)]
pub struct IBitsPeerCacheAdministrationVtbl {
    pub base: IUnknownVtbl,
    pub GetMaximumCacheSize: unsafe extern "C" fn(
        This: *mut IBitsPeerCacheAdministration,
        pBytes: *mut DWORD,
    ) -> HRESULT,
    pub SetMaximumCacheSize:
        unsafe extern "C" fn(This: *mut IBitsPeerCacheAdministration, Bytes: DWORD) -> HRESULT,
    pub GetMaximumContentAge: unsafe extern "C" fn(
        This: *mut IBitsPeerCacheAdministration,
        pSeconds: *mut ULONG,
    ) -> HRESULT,
    pub SetMaximumContentAge:
        unsafe extern "C" fn(This: *mut IBitsPeerCacheAdministration, Seconds: ULONG) -> HRESULT,
    pub GetConfigurationFlags: unsafe extern "C" fn(
        This: *mut IBitsPeerCacheAdministration,
        pFlags: *mut DWORD,
    ) -> HRESULT,
    pub SetConfigurationFlags:
        unsafe extern "C" fn(This: *mut IBitsPeerCacheAdministration, Flags: DWORD) -> HRESULT,
    pub EnumRecords: unsafe extern "C" fn(
        This: *mut IBitsPeerCacheAdministration,
        ppEnum: *mut *mut IEnumBitsPeerCacheRecords,
    ) -> HRESULT,
    pub GetRecord: unsafe extern "C" fn(
        This: *mut IBitsPeerCacheAdministration,
        id: REFGUID,
        ppRecord: *mut *mut IBitsPeerCacheRecord,
    ) -> HRESULT,
    pub ClearRecords: unsafe extern "C" fn(This: *mut IBitsPeerCacheAdministration) -> HRESULT,
    pub DeleteRecord:
        unsafe extern "C" fn(This: *mut IBitsPeerCacheAdministration, id: REFGUID) -> HRESULT,
    pub DeleteUrl:
        unsafe extern "C" fn(This: *mut IBitsPeerCacheAdministration, url: LPCWSTR) -> HRESULT,
    pub EnumPeers: unsafe extern "C" fn(
        This: *mut IBitsPeerCacheAdministration,
        ppEnum: *mut *mut IEnumBitsPeers,
    ) -> HRESULT,
    pub ClearPeers: unsafe extern "C" fn(This: *mut IBitsPeerCacheAdministration) -> HRESULT,
    pub DiscoverPeers: unsafe extern "C" fn(This: *mut IBitsPeerCacheAdministration) -> HRESULT,
}
