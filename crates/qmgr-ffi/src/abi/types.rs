//! The Windows types the interfaces are written in, with Windows' widths on every platform
//! (`HRESULT` and `LONG` 32-bit signed, `ULONG`/`DWORD` 32-bit unsigned, `WCHAR` a UTF-16
//! code unit), the structs of bits.h with their Windows layout, the enumerations of bits.h
//! as `pub const` values of a 4-byte type, and the OLE automation pieces the group API needs
//! (`BSTR`, `VARIANT`).

#![expect(
    non_snake_case,
    non_camel_case_types,
    reason = "C-facing names keep Windows' spelling so the generated headers match bits.h"
)]

use std::ffi::c_void;
use std::fmt;

use qmgr_core::Guid;

pub type HRESULT = i32;
pub type LONG = i32;
pub type ULONG = u32;
pub type DWORD = u32;
pub type WORD = u16;
pub type USHORT = u16;
pub type SHORT = i16;
pub type UINT = u32;
pub type INT = i32;
pub type BOOL = i32;
/// mingw-w64's spelling of `BOOL`.
pub type WINBOOL = BOOL;
pub type BYTE = u8;
/// The lowercase spelling rpcndr.h gives `unsigned char` (used by `GetReplyData`).
pub type byte = u8;
pub type UINT64 = u64;
pub type LONGLONG = i64;
pub type ULONGLONG = u64;
/// A UTF-16 code unit.
pub type WCHAR = u16;
pub type OLECHAR = WCHAR;
pub type LPWSTR = *mut WCHAR;
pub type LPCWSTR = *const WCHAR;
pub type LPOLESTR = *mut OLECHAR;
pub type LPCOLESTR = *const OLECHAR;
pub type LPVOID = *mut c_void;
/// A length-prefixed string: the 4 bytes before the pointer hold the length in bytes.
pub type BSTR = *mut OLECHAR;
pub type VARTYPE = u16;
pub type VARIANT_BOOL = i16;
pub type SCODE = LONG;

pub const TRUE: BOOL = 1;
pub const FALSE: BOOL = 0;

/// Windows' `GUID`: 16 bytes, 4-byte aligned.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct GUID {
    pub Data1: u32,
    pub Data2: u16,
    pub Data3: u16,
    pub Data4: [u8; 8],
}

impl GUID {
    pub const fn new(data1: u32, data2: u16, data3: u16, data4: [u8; 8]) -> Self {
        Self {
            Data1: data1,
            Data2: data2,
            Data3: data3,
            Data4: data4,
        }
    }
}

impl From<Guid> for GUID {
    fn from(guid: Guid) -> Self {
        Self::new(guid.data1, guid.data2, guid.data3, guid.data4)
    }
}

impl From<GUID> for Guid {
    fn from(guid: GUID) -> Self {
        Guid {
            data1: guid.Data1,
            data2: guid.Data2,
            data3: guid.Data3,
            data4: guid.Data4,
        }
    }
}

impl fmt::Debug for GUID {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Guid::from(*self), f)
    }
}

pub type IID = GUID;
pub type CLSID = GUID;
/// `const IID *` in C (`const IID &` in C++).
pub type REFIID = *const IID;
pub type REFGUID = *const GUID;
pub type REFCLSID = *const CLSID;

/// 100-ns ticks since 1601-01-01 UTC, in two halves.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FILETIME {
    pub dwLowDateTime: DWORD,
    pub dwHighDateTime: DWORD,
}

impl FILETIME {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "splitting a 64-bit value into its halves"
    )]
    pub const fn from_ticks(ticks: u64) -> Self {
        Self {
            dwLowDateTime: ticks as u32,
            dwHighDateTime: (ticks >> 32) as u32,
        }
    }
}

/// The root interface: every interface pointer points at a struct whose first member is
/// a pointer to a vtable that starts with these three methods.
#[repr(C)]
#[derive(Debug)]
pub struct IUnknown {
    pub lpVtbl: *const IUnknownVtbl,
}

#[repr(C)]
#[derive(Debug)]
pub struct IUnknownVtbl {
    pub QueryInterface: unsafe extern "C" fn(
        This: *mut IUnknown,
        riid: REFIID,
        ppvObject: *mut *mut c_void,
    ) -> HRESULT,
    pub AddRef: unsafe extern "C" fn(This: *mut IUnknown) -> ULONG,
    pub Release: unsafe extern "C" fn(This: *mut IUnknown) -> ULONG,
}

// ---------------------------------------------------------------------------------------
// COM runtime constants.

pub const CLSCTX_INPROC_SERVER: DWORD = 0x1;
pub const CLSCTX_INPROC_HANDLER: DWORD = 0x2;
pub const CLSCTX_LOCAL_SERVER: DWORD = 0x4;
pub const CLSCTX_REMOTE_SERVER: DWORD = 0x10;
pub const CLSCTX_INPROC: DWORD = CLSCTX_INPROC_SERVER | CLSCTX_INPROC_HANDLER;
pub const CLSCTX_SERVER: DWORD = CLSCTX_INPROC_SERVER | CLSCTX_LOCAL_SERVER | CLSCTX_REMOTE_SERVER;
pub const CLSCTX_ALL: DWORD =
    CLSCTX_INPROC_SERVER | CLSCTX_INPROC_HANDLER | CLSCTX_LOCAL_SERVER | CLSCTX_REMOTE_SERVER;

pub const COINIT_MULTITHREADED: DWORD = 0x0;
pub const COINIT_APARTMENTTHREADED: DWORD = 0x2;
pub const COINIT_DISABLE_OLE1DDE: DWORD = 0x4;
pub const COINIT_SPEED_OVER_MEMORY: DWORD = 0x8;

/// Something a thread waits for in `CoWaitForMultipleHandles`. On Linux it is a file
/// descriptor carried in the pointer, `(HANDLE)(intptr_t)fd`, and it counts as signaled
/// while the descriptor is readable (an eventfd with a non-zero count, a pipe with data, a
/// hung-up socket). Waiting reads nothing: an eventfd stays signaled until its owner reads
/// it, like a manual-reset event.
pub type HANDLE = *mut c_void;
pub type LPHANDLE = *mut HANDLE;
pub type LPDWORD = *mut DWORD;

/// A time-out that never ends.
pub const INFINITE: DWORD = 0xFFFF_FFFF;
/// The index `CoWaitForMultipleHandles` reports, with `COWAIT_ALERTABLE`, when a signal
/// handler ran during the wait (Linux's counterpart of a queued APC).
pub const WAIT_IO_COMPLETION: DWORD = 0xC0;
/// The most handles one `CoWaitForMultipleHandles` waits for.
pub const MAXIMUM_WAIT_OBJECTS: DWORD = 64;

/// How `CoWaitForMultipleHandles` waits. On Linux there are no window messages and no
/// APCs; see the function for what each flag does here.
pub type COWAIT_FLAGS = C_ENUM;
pub const COWAIT_DEFAULT: COWAIT_FLAGS = 0x0;
pub const COWAIT_WAITALL: COWAIT_FLAGS = 0x1;
pub const COWAIT_ALERTABLE: COWAIT_FLAGS = 0x2;
pub const COWAIT_INPUTAVAILABLE: COWAIT_FLAGS = 0x4;
pub const COWAIT_DISPATCH_CALLS: COWAIT_FLAGS = 0x8;
pub const COWAIT_DISPATCH_WINDOW_MESSAGES: COWAIT_FLAGS = 0x10;

// The arguments Microsoft's samples pass to CoInitializeSecurity (which accepts any).
pub const RPC_C_AUTHN_LEVEL_DEFAULT: DWORD = 0;
pub const RPC_C_AUTHN_LEVEL_NONE: DWORD = 1;
pub const RPC_C_AUTHN_LEVEL_CONNECT: DWORD = 2;
pub const RPC_C_AUTHN_LEVEL_CALL: DWORD = 3;
pub const RPC_C_AUTHN_LEVEL_PKT: DWORD = 4;
pub const RPC_C_AUTHN_LEVEL_PKT_INTEGRITY: DWORD = 5;
pub const RPC_C_AUTHN_LEVEL_PKT_PRIVACY: DWORD = 6;
pub const RPC_C_IMP_LEVEL_DEFAULT: DWORD = 0;
pub const RPC_C_IMP_LEVEL_ANONYMOUS: DWORD = 1;
pub const RPC_C_IMP_LEVEL_IDENTIFY: DWORD = 2;
pub const RPC_C_IMP_LEVEL_IMPERSONATE: DWORD = 3;
pub const RPC_C_IMP_LEVEL_DELEGATE: DWORD = 4;
pub const EOAC_NONE: DWORD = 0;

// ---------------------------------------------------------------------------------------
// OLE automation: VARIANT.

pub const VT_EMPTY: VARTYPE = 0;
pub const VT_NULL: VARTYPE = 1;
pub const VT_I2: VARTYPE = 2;
pub const VT_I4: VARTYPE = 3;
pub const VT_R4: VARTYPE = 4;
pub const VT_R8: VARTYPE = 5;
pub const VT_CY: VARTYPE = 6;
pub const VT_DATE: VARTYPE = 7;
pub const VT_BSTR: VARTYPE = 8;
pub const VT_DISPATCH: VARTYPE = 9;
pub const VT_ERROR: VARTYPE = 10;
pub const VT_BOOL: VARTYPE = 11;
pub const VT_VARIANT: VARTYPE = 12;
pub const VT_UNKNOWN: VARTYPE = 13;
pub const VT_DECIMAL: VARTYPE = 14;
pub const VT_I1: VARTYPE = 16;
pub const VT_UI1: VARTYPE = 17;
pub const VT_UI2: VARTYPE = 18;
pub const VT_UI4: VARTYPE = 19;
pub const VT_I8: VARTYPE = 20;
pub const VT_UI8: VARTYPE = 21;
pub const VT_INT: VARTYPE = 22;
pub const VT_UINT: VARTYPE = 23;
pub const VT_ARRAY: VARTYPE = 0x2000;
pub const VT_BYREF: VARTYPE = 0x4000;

/// The record member of the VARIANT union (the largest: two pointers).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct VARIANT_RECORD {
    pub pvRecord: *mut c_void,
    pub pRecInfo: *mut c_void,
}

/// The value part of a VARIANT; `vt` says which member is live.
#[repr(C)]
#[derive(Clone, Copy)]
pub union VARIANT_VALUE {
    pub llVal: LONGLONG,
    pub lVal: LONG,
    pub bVal: BYTE,
    pub iVal: SHORT,
    pub fltVal: f32,
    pub dblVal: f64,
    pub boolVal: VARIANT_BOOL,
    pub scode: SCODE,
    pub bstrVal: BSTR,
    pub punkVal: *mut IUnknown,
    pub byref: *mut c_void,
    pub cVal: i8,
    pub uiVal: USHORT,
    pub ulVal: ULONG,
    pub ullVal: ULONGLONG,
    pub intVal: INT,
    pub uintVal: UINT,
    pub record: VARIANT_RECORD,
}

impl fmt::Debug for VARIANT_VALUE {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: every member is plain data or a pointer, and the union is 16 bytes of
        // initialised memory whatever member was written last, so reading it as u64 is defined.
        let raw = unsafe { self.ullVal };
        write!(f, "VARIANT_VALUE(0x{raw:016X}…)")
    }
}

/// Windows' VARIANT: `vt`, three reserved words, then a 16-byte union — 24 bytes on 64-bit
/// platforms (as in mingw-w64's oaidl.h), 16 on 32-bit ones.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct VARIANT {
    pub vt: VARTYPE,
    pub wReserved1: WORD,
    pub wReserved2: WORD,
    pub wReserved3: WORD,
    pub value: VARIANT_VALUE,
}

impl VARIANT {
    /// `VT_EMPTY` with a zeroed value (what VariantInit leaves).
    pub const EMPTY: VARIANT = VARIANT {
        vt: VT_EMPTY,
        wReserved1: 0,
        wReserved2: 0,
        wReserved3: 0,
        value: VARIANT_VALUE { ullVal: 0 },
    };
}

// ---------------------------------------------------------------------------------------
// bits.h: constants.

pub const BG_SIZE_UNKNOWN: UINT64 = u64::MAX;
pub const BG_LENGTH_TO_EOF: UINT64 = u64::MAX;

pub const BG_NOTIFY_JOB_TRANSFERRED: ULONG = 0x0001;
pub const BG_NOTIFY_JOB_ERROR: ULONG = 0x0002;
pub const BG_NOTIFY_DISABLE: ULONG = 0x0004;
pub const BG_NOTIFY_JOB_MODIFICATION: ULONG = 0x0008;
pub const BG_NOTIFY_FILE_TRANSFERRED: ULONG = 0x0010;
pub const BG_NOTIFY_FILE_RANGES_TRANSFERRED: ULONG = 0x0020;

pub const BG_JOB_ENUM_ALL_USERS: DWORD = 0x0001;

pub const BG_COPY_FILE_OWNER: DWORD = 1;
pub const BG_COPY_FILE_GROUP: DWORD = 2;
pub const BG_COPY_FILE_DACL: DWORD = 4;
pub const BG_COPY_FILE_SACL: DWORD = 8;
pub const BG_COPY_FILE_ALL: DWORD = 15;

pub const BG_SSL_ENABLE_CRL_CHECK: ULONG = 0x0001;
pub const BG_SSL_IGNORE_CERT_CN_INVALID: ULONG = 0x0002;
pub const BG_SSL_IGNORE_CERT_DATE_INVALID: ULONG = 0x0004;
pub const BG_SSL_IGNORE_UNKNOWN_CA: ULONG = 0x0008;
pub const BG_SSL_IGNORE_CERT_WRONG_USAGE: ULONG = 0x0010;
pub const BG_HTTP_REDIRECT_POLICY_MASK: ULONG = 0x0700;
pub const BG_HTTP_REDIRECT_POLICY_ALLOW_SILENT: ULONG = 0x0000;
pub const BG_HTTP_REDIRECT_POLICY_ALLOW_REPORT: ULONG = 0x0100;
pub const BG_HTTP_REDIRECT_POLICY_DISALLOW: ULONG = 0x0200;
pub const BG_HTTP_REDIRECT_POLICY_ALLOW_HTTPS_TO_HTTP: ULONG = 0x0800;

pub const BG_ENABLE_PEERCACHING_CLIENT: DWORD = 0x1;
pub const BG_ENABLE_PEERCACHING_SERVER: DWORD = 0x2;
pub const BG_DISABLE_BRANCH_CACHE: DWORD = 0x4;
pub const BG_JOB_ENABLE_PEERCACHING_CLIENT: DWORD = 0x0001;
pub const BG_JOB_ENABLE_PEERCACHING_SERVER: DWORD = 0x0002;
pub const BG_JOB_DISABLE_BRANCH_CACHE: DWORD = 0x0004;

pub type BG_TOKEN = DWORD;
pub const BG_TOKEN_LOCAL_FILE: BG_TOKEN = 0x1;
pub const BG_TOKEN_NETWORK: BG_TOKEN = 0x2;

pub const BITS_COST_STATE_UNRESTRICTED: DWORD = 0x1;
pub const BITS_COST_STATE_CAPPED_USAGE_UNKNOWN: DWORD = 0x2;
pub const BITS_COST_STATE_BELOW_CAP: DWORD = 0x4;
pub const BITS_COST_STATE_NEAR_CAP: DWORD = 0x8;
pub const BITS_COST_STATE_OVERCAP_CHARGED: DWORD = 0x10;
pub const BITS_COST_STATE_OVERCAP_THROTTLED: DWORD = 0x20;
pub const BITS_COST_STATE_USAGE_BASED: DWORD = 0x40;
pub const BITS_COST_STATE_ROAMING: DWORD = 0x80;
pub const BITS_COST_STATE_RESERVED: DWORD = 0x4000_0000;
pub const BITS_COST_OPTION_IGNORE_CONGESTION: DWORD = 0x8000_0000;
pub const BITS_COST_STATE_TRANSFER_ALWAYS: DWORD = 0x8000_00FF;

// bits.h: enumerations. Each `pub type X = C_ENUM` becomes `typedef enum X { … } X;` in
// the headers, its enumerators the constants of type X that follow it.

/// What a C `enum` is on the platforms libqmgr supports (x86_64 and aarch64 Linux): a
/// 4-byte integer passed like `unsigned int` when no enumerator is negative.
pub type C_ENUM = u32;

pub type BG_JOB_STATE = C_ENUM;
pub const BG_JOB_STATE_QUEUED: BG_JOB_STATE = 0;
pub const BG_JOB_STATE_CONNECTING: BG_JOB_STATE = 1;
pub const BG_JOB_STATE_TRANSFERRING: BG_JOB_STATE = 2;
pub const BG_JOB_STATE_SUSPENDED: BG_JOB_STATE = 3;
pub const BG_JOB_STATE_ERROR: BG_JOB_STATE = 4;
pub const BG_JOB_STATE_TRANSIENT_ERROR: BG_JOB_STATE = 5;
pub const BG_JOB_STATE_TRANSFERRED: BG_JOB_STATE = 6;
pub const BG_JOB_STATE_ACKNOWLEDGED: BG_JOB_STATE = 7;
pub const BG_JOB_STATE_CANCELLED: BG_JOB_STATE = 8;

pub type BG_JOB_TYPE = C_ENUM;
pub const BG_JOB_TYPE_DOWNLOAD: BG_JOB_TYPE = 0;
pub const BG_JOB_TYPE_UPLOAD: BG_JOB_TYPE = 1;
pub const BG_JOB_TYPE_UPLOAD_REPLY: BG_JOB_TYPE = 2;

pub type BG_JOB_PRIORITY = C_ENUM;
pub const BG_JOB_PRIORITY_FOREGROUND: BG_JOB_PRIORITY = 0;
pub const BG_JOB_PRIORITY_HIGH: BG_JOB_PRIORITY = 1;
pub const BG_JOB_PRIORITY_NORMAL: BG_JOB_PRIORITY = 2;
pub const BG_JOB_PRIORITY_LOW: BG_JOB_PRIORITY = 3;

pub type BG_JOB_PROXY_USAGE = C_ENUM;
pub const BG_JOB_PROXY_USAGE_PRECONFIG: BG_JOB_PROXY_USAGE = 0;
pub const BG_JOB_PROXY_USAGE_NO_PROXY: BG_JOB_PROXY_USAGE = 1;
pub const BG_JOB_PROXY_USAGE_OVERRIDE: BG_JOB_PROXY_USAGE = 2;
pub const BG_JOB_PROXY_USAGE_AUTODETECT: BG_JOB_PROXY_USAGE = 3;

pub type BG_ERROR_CONTEXT = C_ENUM;
pub const BG_ERROR_CONTEXT_NONE: BG_ERROR_CONTEXT = 0;
pub const BG_ERROR_CONTEXT_UNKNOWN: BG_ERROR_CONTEXT = 1;
pub const BG_ERROR_CONTEXT_GENERAL_QUEUE_MANAGER: BG_ERROR_CONTEXT = 2;
pub const BG_ERROR_CONTEXT_QUEUE_MANAGER_NOTIFICATION: BG_ERROR_CONTEXT = 3;
pub const BG_ERROR_CONTEXT_LOCAL_FILE: BG_ERROR_CONTEXT = 4;
pub const BG_ERROR_CONTEXT_REMOTE_FILE: BG_ERROR_CONTEXT = 5;
pub const BG_ERROR_CONTEXT_GENERAL_TRANSPORT: BG_ERROR_CONTEXT = 6;
pub const BG_ERROR_CONTEXT_REMOTE_APPLICATION: BG_ERROR_CONTEXT = 7;
pub const BG_ERROR_CONTEXT_SERVER_CERTIFICATE_CALLBACK: BG_ERROR_CONTEXT = 8;

pub type BG_AUTH_TARGET = C_ENUM;
pub const BG_AUTH_TARGET_SERVER: BG_AUTH_TARGET = 1;
pub const BG_AUTH_TARGET_PROXY: BG_AUTH_TARGET = 2;

pub type BG_AUTH_SCHEME = C_ENUM;
pub const BG_AUTH_SCHEME_BASIC: BG_AUTH_SCHEME = 1;
pub const BG_AUTH_SCHEME_DIGEST: BG_AUTH_SCHEME = 2;
pub const BG_AUTH_SCHEME_NTLM: BG_AUTH_SCHEME = 3;
pub const BG_AUTH_SCHEME_NEGOTIATE: BG_AUTH_SCHEME = 4;
pub const BG_AUTH_SCHEME_PASSPORT: BG_AUTH_SCHEME = 5;

pub type BG_CERT_STORE_LOCATION = C_ENUM;
pub const BG_CERT_STORE_LOCATION_CURRENT_USER: BG_CERT_STORE_LOCATION = 0;
pub const BG_CERT_STORE_LOCATION_LOCAL_MACHINE: BG_CERT_STORE_LOCATION = 1;
pub const BG_CERT_STORE_LOCATION_CURRENT_SERVICE: BG_CERT_STORE_LOCATION = 2;
pub const BG_CERT_STORE_LOCATION_SERVICES: BG_CERT_STORE_LOCATION = 3;
pub const BG_CERT_STORE_LOCATION_USERS: BG_CERT_STORE_LOCATION = 4;
pub const BG_CERT_STORE_LOCATION_CURRENT_USER_GROUP_POLICY: BG_CERT_STORE_LOCATION = 5;
pub const BG_CERT_STORE_LOCATION_LOCAL_MACHINE_GROUP_POLICY: BG_CERT_STORE_LOCATION = 6;
pub const BG_CERT_STORE_LOCATION_LOCAL_MACHINE_ENTERPRISE: BG_CERT_STORE_LOCATION = 7;

/// An enum in the SDK too, but its values exceed `INT_MAX`, which ISO C (before C23) does
/// not allow an enumerator: it stays a 4-byte unsigned typedef with `#define`s.
pub type BITS_JOB_TRANSFER_POLICY = u32;
pub const BITS_JOB_TRANSFER_POLICY_ALWAYS: BITS_JOB_TRANSFER_POLICY = 0x8000_00FF;
pub const BITS_JOB_TRANSFER_POLICY_NOT_ROAMING: BITS_JOB_TRANSFER_POLICY = 0x8000_007F;
pub const BITS_JOB_TRANSFER_POLICY_NO_SURCHARGE: BITS_JOB_TRANSFER_POLICY = 0x8000_006F;
pub const BITS_JOB_TRANSFER_POLICY_STANDARD: BITS_JOB_TRANSFER_POLICY = 0x8000_0067;
pub const BITS_JOB_TRANSFER_POLICY_UNRESTRICTED: BITS_JOB_TRANSFER_POLICY = 0x8000_0021;

pub type BITS_JOB_PROPERTY_ID = C_ENUM;
pub const BITS_JOB_PROPERTY_ID_COST_FLAGS: BITS_JOB_PROPERTY_ID = 1;
pub const BITS_JOB_PROPERTY_NOTIFICATION_CLSID: BITS_JOB_PROPERTY_ID = 2;
pub const BITS_JOB_PROPERTY_DYNAMIC_CONTENT: BITS_JOB_PROPERTY_ID = 3;
pub const BITS_JOB_PROPERTY_HIGH_PERFORMANCE: BITS_JOB_PROPERTY_ID = 4;
pub const BITS_JOB_PROPERTY_MAX_DOWNLOAD_SIZE: BITS_JOB_PROPERTY_ID = 5;
pub const BITS_JOB_PROPERTY_USE_STORED_CREDENTIALS: BITS_JOB_PROPERTY_ID = 7;
pub const BITS_JOB_PROPERTY_MINIMUM_NOTIFICATION_INTERVAL_MS: BITS_JOB_PROPERTY_ID = 9;
pub const BITS_JOB_PROPERTY_ON_DEMAND_MODE: BITS_JOB_PROPERTY_ID = 10;

pub type BITS_FILE_PROPERTY_ID = C_ENUM;
pub const BITS_FILE_PROPERTY_ID_HTTP_RESPONSE_HEADERS: BITS_FILE_PROPERTY_ID = 1;

// bits.h: structs.

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BG_FILE_INFO {
    pub RemoteName: LPWSTR,
    pub LocalName: LPWSTR,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BG_FILE_PROGRESS {
    pub BytesTotal: UINT64,
    pub BytesTransferred: UINT64,
    pub Completed: BOOL,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BG_JOB_PROGRESS {
    pub BytesTotal: UINT64,
    pub BytesTransferred: UINT64,
    pub FilesTotal: ULONG,
    pub FilesTransferred: ULONG,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BG_JOB_TIMES {
    pub CreationTime: FILETIME,
    pub ModificationTime: FILETIME,
    pub TransferCompletionTime: FILETIME,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BG_JOB_REPLY_PROGRESS {
    pub BytesTotal: UINT64,
    pub BytesTransferred: UINT64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BG_BASIC_CREDENTIALS {
    pub UserName: LPWSTR,
    pub Password: LPWSTR,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union BG_AUTH_CREDENTIALS_UNION {
    pub Basic: BG_BASIC_CREDENTIALS,
}

impl fmt::Debug for BG_AUTH_CREDENTIALS_UNION {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BG_AUTH_CREDENTIALS_UNION { .. }")
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BG_AUTH_CREDENTIALS {
    pub Target: BG_AUTH_TARGET,
    pub Scheme: BG_AUTH_SCHEME,
    pub Credentials: BG_AUTH_CREDENTIALS_UNION,
}

pub type PBG_BASIC_CREDENTIALS = *mut BG_BASIC_CREDENTIALS;
pub type PBG_AUTH_CREDENTIALS = *mut BG_AUTH_CREDENTIALS;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BG_FILE_RANGE {
    pub InitialOffset: UINT64,
    pub Length: UINT64,
}

/// Job5 property values; the property id says which member is meant.
#[repr(C)]
#[derive(Clone, Copy)]
pub union BITS_JOB_PROPERTY_VALUE {
    pub Dword: DWORD,
    pub ClsID: GUID,
    pub Enable: BOOL,
    pub Uint64: UINT64,
    pub Target: BG_AUTH_TARGET,
}

impl fmt::Debug for BITS_JOB_PROPERTY_VALUE {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: the union is 16 bytes of plain data; any bit pattern is a valid GUID.
        let raw = unsafe { self.ClsID };
        write!(f, "BITS_JOB_PROPERTY_VALUE({raw:?})")
    }
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union BITS_FILE_PROPERTY_VALUE {
    pub String: LPWSTR,
}

impl fmt::Debug for BITS_FILE_PROPERTY_VALUE {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BITS_FILE_PROPERTY_VALUE { .. }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    // Sizes from mingw-w64's headers on a 64-bit target (bits-h.md §4, oaidl.h).
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn layouts_match_windows_64_bit() {
        assert_eq!((size_of::<GUID>(), align_of::<GUID>()), (16, 4));
        assert_eq!((size_of::<FILETIME>(), align_of::<FILETIME>()), (8, 4));
        assert_eq!(size_of::<BG_FILE_INFO>(), 16);
        assert_eq!(size_of::<BG_FILE_PROGRESS>(), 24);
        assert_eq!(size_of::<BG_JOB_PROGRESS>(), 24);
        assert_eq!(
            (size_of::<BG_JOB_TIMES>(), align_of::<BG_JOB_TIMES>()),
            (24, 4)
        );
        assert_eq!(size_of::<BG_JOB_REPLY_PROGRESS>(), 16);
        assert_eq!(size_of::<BG_AUTH_CREDENTIALS>(), 24);
        assert_eq!(offset_of!(BG_AUTH_CREDENTIALS, Credentials), 8);
        assert_eq!(size_of::<BG_FILE_RANGE>(), 16);
        assert_eq!(
            (
                size_of::<BITS_JOB_PROPERTY_VALUE>(),
                align_of::<BITS_JOB_PROPERTY_VALUE>()
            ),
            (16, 8)
        );
        assert_eq!((size_of::<VARIANT>(), align_of::<VARIANT>()), (24, 8));
        assert_eq!(offset_of!(VARIANT, value), 8);
        assert_eq!(size_of::<IUnknownVtbl>(), 3 * size_of::<usize>());
    }

    #[test]
    fn guids_convert_both_ways() {
        let guid = Guid::new_random();
        assert_eq!(Guid::from(GUID::from(guid)), guid);
    }
}
