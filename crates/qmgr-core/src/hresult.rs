//! HRESULT values and their English descriptions.
//!
//! Every code BITS and its legacy group API can return is a named constant here, typed as
//! [`HResult`] (a 32-bit signed value, as on Windows). `description_for` is the text that
//! `IBackgroundCopyManager::GetErrorDescription` returns.

use std::fmt;

/// A COM result code: negative means failure, zero or positive means success.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct HResult(pub i32);

const FACILITY_WIN32: u32 = 7;
const FACILITY_HTTP: u32 = 0x19;

impl HResult {
    /// Builds a code from its unsigned bit pattern, the way headers spell them (`0x80200001`).
    #[expect(
        clippy::cast_possible_wrap,
        reason = "an HRESULT's bits reinterpreted as Windows' signed HRESULT"
    )]
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits as i32)
    }

    /// The unsigned bit pattern, for display as `0x8020xxxx`.
    #[expect(
        clippy::cast_sign_loss,
        reason = "an HRESULT reinterpreted as its unsigned bits"
    )]
    pub const fn bits(self) -> u32 {
        self.0 as u32
    }

    /// `SUCCEEDED(hr)`.
    pub const fn is_success(self) -> bool {
        self.0 >= 0
    }

    /// `FAILED(hr)`.
    pub const fn is_failure(self) -> bool {
        self.0 < 0
    }

    /// The facility field (bits 16..=28).
    pub const fn facility(self) -> u32 {
        (self.bits() >> 16) & 0x1FFF
    }

    /// `HRESULT_FROM_WIN32(code)`.
    pub const fn from_win32(code: u32) -> Self {
        if code == 0 {
            S_OK
        } else {
            Self::from_bits((code & 0xFFFF) | (FACILITY_WIN32 << 16) | 0x8000_0000)
        }
    }

    /// `BG_E_HTTP_ERROR_<status>`: BITS reports any HTTP status it cannot use as
    /// `0x80190000 + status`, not only the statuses that have a named constant.
    pub const fn from_http_status(status: u16) -> Self {
        Self::from_bits(0x8019_0000 | status as u32)
    }

    /// The HTTP status carried by a `BG_E_HTTP_ERROR_*` code.
    pub const fn http_status(self) -> Option<u16> {
        let code = self.bits() & 0xFFFF;
        if self.is_failure() && self.facility() == FACILITY_HTTP && code >= 100 && code < 600 {
            Some(code as u16)
        } else {
            None
        }
    }

    /// The symbolic name (`BG_E_NOT_FOUND`), for codes that have one.
    pub fn name(self) -> Option<&'static str> {
        KNOWN
            .iter()
            .find(|(hr, _, _)| *hr == self)
            .map(|(_, name, _)| *name)
    }
}

impl fmt::Debug for HResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for HResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} (0x{:08X})", self.bits()),
            None => write!(f, "0x{:08X}", self.bits()),
        }
    }
}

macro_rules! hresults {
    ($($name:ident = $bits:literal, $description:literal;)*) => {
        $(
            #[doc = concat!("`", stringify!($name), "`")]
            pub const $name: HResult = HResult::from_bits($bits);
        )*
        /// Every named code: (value, name, description; empty where it is computed).
        static KNOWN: &[(HResult, &str, &str)] = &[$(($name, stringify!($name), $description),)*];
    };
}

hresults! {
    // Standard COM and Win32 codes the BITS API returns.
    S_OK = 0x0000_0000, "The operation completed successfully.";
    S_FALSE = 0x0000_0001, "The operation completed, but returned fewer items than requested or had nothing to do.";
    E_NOTIMPL = 0x8000_4001, "Not implemented.";
    E_NOINTERFACE = 0x8000_4002, "No such interface supported.";
    E_POINTER = 0x8000_4003, "Invalid pointer.";
    E_ABORT = 0x8000_4004, "Operation aborted.";
    E_FAIL = 0x8000_4005, "Unspecified error.";
    E_PENDING = 0x8000_000A, "The data necessary to complete this operation is not yet available.";
    E_UNEXPECTED = 0x8000_FFFF, "Catastrophic failure.";
    E_ACCESSDENIED = 0x8007_0005, "Access is denied.";
    E_OUTOFMEMORY = 0x8007_000E, "Not enough memory resources are available to complete this operation.";
    E_INVALIDARG = 0x8007_0057, "The parameter is incorrect.";
    REGDB_E_CLASSNOTREG = 0x8004_0154, "Class not registered.";
    CO_E_NOTINITIALIZED = 0x8004_01F0, "CoInitialize has not been called.";
    HRESULT_FILE_NOT_FOUND = 0x8007_0002, "The system cannot find the file specified.";
    HRESULT_PATH_NOT_FOUND = 0x8007_0003, "The system cannot find the path specified.";
    HRESULT_SHARING_VIOLATION = 0x8007_0020, "The process cannot access the file because it is being used by another process.";
    HRESULT_FILE_EXISTS = 0x8007_0050, "The file exists.";
    HRESULT_DISK_FULL = 0x8007_0070, "There is not enough space on the disk.";
    HRESULT_ALREADY_EXISTS = 0x8007_00B7, "Cannot create a file when that file already exists.";
    HRESULT_DIRECTORY_NOT_SUPPORTED = 0x8007_0150, "An operation is not supported on a directory.";
    HRESULT_MR_MID_NOT_FOUND = 0x8007_013D, "The system cannot find message text for the message number.";
    HRESULT_NOT_LOGGED_ON = 0x8007_04DD, "The operation being requested was not performed because the user has not logged on to the network.";
    HRESULT_RPC_X_BAD_STUB_DATA = 0x8007_06F7, "The stub received bad data.";
    CRYPT_E_NOT_FOUND = 0x8009_2004, "Cannot find object or property.";
    NTE_NO_KEY = 0x8009_000D, "Key does not exist.";
    HRESULT_WINHTTP_TIMEOUT = 0x8007_2EE2, "The operation timed out.";
    HRESULT_WINHTTP_NAME_NOT_RESOLVED = 0x8007_2EE7, "The server name or address could not be resolved.";
    HRESULT_WINHTTP_CANNOT_CONNECT = 0x8007_2EFD, "A connection with the server could not be established.";
    HRESULT_WINHTTP_CONNECTION_ERROR = 0x8007_2EFE, "The connection with the server was terminated abnormally.";
    HRESULT_WINHTTP_REDIRECT_FAILED = 0x8007_2F7C, "The redirection failed because it would change the scheme (for example from HTTPS to HTTP) or it exceeded the redirect limit.";
    HRESULT_WINHTTP_SECURE_FAILURE = 0x8007_2F8F, "A security error occurred (TLS certificate or handshake).";
    HRESULT_WINHTTP_SECURE_CERT_DATE_INVALID = 0x8007_2F05, "The server's TLS certificate has expired or is not yet valid.";
    HRESULT_WINHTTP_SECURE_CERT_CN_INVALID = 0x8007_2F06, "The server's TLS certificate does not name the host.";
    HRESULT_WINHTTP_SECURE_INVALID_CA = 0x8007_2F0D, "The certificate authority of the server's TLS certificate is not trusted.";
    HRESULT_WINHTTP_SECURE_CERT_REV_FAILED = 0x8007_2F19, "The revocation of the server's TLS certificate could not be checked.";
    HRESULT_WINHTTP_SECURE_CERT_REVOKED = 0x8007_2F8A, "The server's TLS certificate has been revoked.";
    HRESULT_WINHTTP_SECURE_CERT_WRONG_USAGE = 0x8007_2F93, "The server's TLS certificate is not meant for server authentication.";
    // COM apartments and CoWaitForMultipleHandles.
    E_HANDLE = 0x8007_0006, "The handle is invalid.";
    E_ILLEGAL_METHOD_CALL = 0x8000_000E, "A method was called at an unexpected time.";
    RPC_E_CHANGED_MODE = 0x8001_0106, "Cannot change thread mode after it is set.";
    RPC_S_CALLPENDING = 0x8001_0115, "The wait ended before the handles were signaled (time-out).";
    RPC_E_NO_SYNC = 0x8001_0120, "There are no synchronize objects to wait on.";
    // Legacy group API (qmgr.h).
    QM_E_INVALID_STATE = 0x8100_1001, "The requested action is not allowed in the current group state.";
    QM_E_SERVICE_UNAVAILABLE = 0x8100_1002, "The queue manager service is not available.";
    QM_E_DOWNLOADER_UNAVAILABLE = 0x8100_1003, "The downloader is not available.";
    QM_E_ITEM_NOT_FOUND = 0x8100_1004, "The group, job or file was not found.";
    // BG_E_* / BG_S_* (facility 32)
    BG_E_NOT_FOUND = 0x8020_0001, "The requested job was not found.";
    BG_E_INVALID_STATE = 0x8020_0002, "The requested action is not allowed in the current job state.";
    BG_E_EMPTY = 0x8020_0003, "There are no files attached to this job.";
    BG_E_FILE_NOT_AVAILABLE = 0x8020_0004, "The error is not tied to a specific file (IBackgroundCopyError::GetFile).";
    BG_E_PROTOCOL_NOT_AVAILABLE = 0x8020_0005, "No protocol is associated with this error (IBackgroundCopyError::GetProtocol).";
    BG_S_ERROR_CONTEXT_NONE = 0x0020_0006, "No error has occurred.";
    BG_E_ERROR_CONTEXT_UNKNOWN = 0x8020_0007, "The error occurred in an unknown location.";
    BG_E_ERROR_CONTEXT_GENERAL_QUEUE_MANAGER = 0x8020_0008, "The error occurred in the transfer queue manager.";
    BG_E_ERROR_CONTEXT_LOCAL_FILE = 0x8020_0009, "The error occurred while processing the local file.";
    BG_E_ERROR_CONTEXT_REMOTE_FILE = 0x8020_000A, "The error occurred while processing the remote file.";
    BG_E_ERROR_CONTEXT_GENERAL_TRANSPORT = 0x8020_000B, "The error occurred in the transport layer (network).";
    BG_E_ERROR_CONTEXT_QUEUE_MANAGER_NOTIFICATION = 0x8020_000C, "The error occurred while the queue manager was notifying the client.";
    BG_E_DESTINATION_LOCKED = 0x8020_000D, "Local destination file is locked/in use by another process.";
    BG_E_VOLUME_CHANGED = 0x8020_000E, "The destination volume changed (e.g. removable media swapped) since the job started.";
    BG_E_ERROR_INFORMATION_UNAVAILABLE = 0x8020_000F, "No error information is available: the job is not in an error state.";
    BG_E_NETWORK_DISCONNECTED = 0x8020_0010, "No network connection; job waits (transient; not retried by timer but on reconnect).";
    BG_E_MISSING_FILE_SIZE = 0x8020_0011, "Server did not return a file size (no Content-Length / HEAD failed) — BITS needs it for downloads.";
    BG_E_INSUFFICIENT_HTTP_SUPPORT = 0x8020_0012, "The server does not support the HTTP features a download needs (HTTP/1.1, or size and range requests).";
    BG_E_INSUFFICIENT_RANGE_SUPPORT = 0x8020_0013, "Server does not honour Range requests (needed for resume / ranges) — see state-machine.md §8.";
    BG_E_REMOTE_NOT_SUPPORTED = 0x8020_0014, "Remote use of BITS is not supported (called across machines).";
    BG_E_NEW_OWNER_DIFF_MAPPING = 0x8020_0015, "TakeOwnership: drive mapping of the new owner differs from the job's.";
    BG_E_NEW_OWNER_NO_FILE_ACCESS = 0x8020_0016, "TakeOwnership: new owner cannot access the job's local/remote files.";
    BG_S_PARTIAL_COMPLETE = 0x0020_0017, "Some of the job's files were not transferred; only the finished ones were kept.";
    BG_E_PROXY_LIST_TOO_LARGE = 0x8020_0018, "Proxy list exceeds the maximum length (32 KB per docs, unverified here).";
    BG_E_PROXY_BYPASS_LIST_TOO_LARGE = 0x8020_0019, "Proxy bypass list exceeds the maximum length.";
    BG_S_UNABLE_TO_DELETE_FILES = 0x0020_001A, "The job finished, but some temporary files could not be deleted.";
    BG_E_INVALID_SERVER_RESPONSE = 0x8020_001B, "Server reply was malformed / not understood.";
    BG_E_TOO_MANY_FILES = 0x8020_001C, "Upload jobs accept exactly one file; a second AddFile fails.";
    BG_E_LOCAL_FILE_CHANGED = 0x8020_001D, "Local file changed during an upload (docs text sometimes calls it BG_E_FILE_CHANGED).";
    BG_E_ERROR_CONTEXT_REMOTE_APPLICATION = 0x8020_001E, "The error was caused by the remote server application.";
    BG_E_SESSION_NOT_FOUND = 0x8020_001F, "Upload session no longer known to the BITS server.";
    BG_E_TOO_LARGE = 0x8020_0020, "Upload file too large for the server / reply larger than GetReplyData allows.";
    BG_E_STRING_TOO_LONG = 0x8020_0021, "The string is too long: display names are limited to 256 characters and descriptions to 1024.";
    BG_E_CLIENT_SERVER_PROTOCOL_MISMATCH = 0x8020_0022, "Client and BITS server upload protocol versions incompatible.";
    BG_E_SERVER_EXECUTE_ENABLE = 0x8020_0023, "Server virtual directory has scripts/execute permission enabled; uploads refused.";
    BG_E_NO_PROGRESS = 0x8020_0024, "The job made no progress within its no-progress timeout.";
    BG_E_USERNAME_TOO_LARGE = 0x8020_0025, "User name longer than 300 characters (SetCredentials).";
    BG_E_PASSWORD_TOO_LARGE = 0x8020_0026, "Password longer than 65536 characters (SetCredentials).";
    BG_E_INVALID_AUTH_TARGET = 0x8020_0027, "BG_AUTH_TARGET value not recognised.";
    BG_E_INVALID_AUTH_SCHEME = 0x8020_0028, "BG_AUTH_SCHEME value not recognised / not valid for the target.";
    BG_E_FILE_NOT_FOUND = 0x8020_0029, "Requested file not found (used for upload-reply file etc.).";
    BG_S_PROXY_CHANGED = 0x0020_002A, "Success code: proxy settings were changed (informational).";
    BG_E_INVALID_RANGE = 0x8020_002B, "A BG_FILE_RANGE is invalid (e.g. zero length, offset beyond file).";
    BG_E_OVERLAPPING_RANGES = 0x8020_002C, "Ranges passed to AddFileWithRanges overlap.";
    BG_E_CONNECT_FAILURE = 0x8020_002D, "Could not connect to the server.";
    BG_E_CONNECTION_CLOSED = 0x8020_002E, "Server closed the connection unexpectedly.";
    BG_E_KEEP_ALIVE_FAILURE = 0x8020_002F, "Keep-alive connection dropped.";
    BG_E_MESSAGE_LENGTH_LIMIT_EXCEEDED = 0x8020_0030, "Message exceeded a length limit.";
    BG_E_NAME_RESOLUTION_FAILURE = 0x8020_0031, "DNS lookup of the server failed.";
    BG_E_PENDING = 0x8020_0032, "Operation pending.";
    BG_E_PIPELINE_FAILURE = 0x8020_0033, "HTTP pipelining failed.";
    BG_E_PROTOCOL_ERROR = 0x8020_0034, "Generic protocol error.";
    BG_E_PROXY_NAME_RESOLUTION_FAILURE = 0x8020_0035, "DNS lookup of the proxy failed.";
    BG_E_RECEIVE_FAILURE = 0x8020_0036, "Receive failed.";
    BG_E_REQUEST_CANCELED = 0x8020_0037, "Request cancelled.";
    BG_E_SECURE_CHANNEL_FAILURE = 0x8020_0038, "TLS handshake/channel failure.";
    BG_E_SEND_FAILURE = 0x8020_0039, "Send failed.";
    BG_E_SERVER_PROTOCOL_VIOLATION = 0x8020_003A, "Server violated HTTP.";
    BG_E_TIMEOUT = 0x8020_003B, "Timed out.";
    BG_E_TRUST_FAILURE = 0x8020_003C, "Certificate trust failure.";
    BG_E_UNKNOWN_ERROR = 0x8020_003D, "Unknown error.";
    BG_E_BLOCKED_BY_POLICY = 0x8020_003E, "Group Policy blocks this transfer.";
    BG_E_INVALID_PROXY_INFO = 0x8020_003F, "Proxy settings invalid (syntax).";
    BG_E_INVALID_CREDENTIALS = 0x8020_0040, "Credentials structure invalid.";
    BG_E_INVALID_HASH_ALGORITHM = 0x8020_0041, "Unsupported hash algorithm (peer caching).";
    BG_E_RECORD_DELETED = 0x8020_0042, "Peer-cache record deleted.";
    BG_E_COMMIT_IN_PROGRESS = 0x8020_0043, "Peer-cache commit in progress.";
    BG_E_DISCOVERY_IN_PROGRESS = 0x8020_0044, "Peer discovery in progress.";
    BG_E_UPNP_ERROR = 0x8020_0045, "UPnP/IGD error.";
    BG_E_TEST_OPTION_BLOCKED_DOWNLOAD = 0x8020_0046, "Blocked by an internal test option.";
    BG_E_PEERCACHING_DISABLED = 0x8020_0047, "Peer caching disabled.";
    BG_E_BUSYCACHERECORD = 0x8020_0048, "Peer-cache record busy.";
    BG_E_TOO_MANY_JOBS_PER_USER = 0x8020_0049, "MaxJobsPerUser policy limit reached (CreateJob).";
    BG_E_TOO_MANY_JOBS_PER_MACHINE = 0x8020_0050, "MaxJobsPerMachine policy limit reached (CreateJob).";
    BG_E_TOO_MANY_FILES_IN_JOB = 0x8020_0051, "MaxFilesPerJob policy limit reached (default 200 for non-admin users).";
    BG_E_TOO_MANY_RANGES_IN_FILE = 0x8020_0052, "MaxRangesPerFile policy limit reached.";
    BG_E_VALIDATION_FAILED = 0x8020_0053, "App rejected the file via IBackgroundCopyFile3::SetValidationState(FALSE).";
    BG_E_MAXDOWNLOAD_TIMEOUT = 0x8020_0054, "Job exceeded SetMaximumDownloadTime.";
    BG_S_OVERRIDDEN_BY_POLICY = 0x0020_0055, "Success code: a setting was accepted but policy overrides it.";
    BG_E_TOKEN_REQUIRED = 0x8020_0056, "A helper token is required (IBitsTokenOptions).";
    BG_E_UNKNOWN_PROPERTY_ID = 0x8020_0057, "Job5/File5 Set/GetProperty: unknown ID.";
    BG_E_READ_ONLY_PROPERTY = 0x8020_0058, "Property cannot be set.";
    BG_E_BLOCKED_BY_COST_TRANSFER_POLICY = 0x8020_0059, "Network cost policy (metered/roaming) blocks the transfer.";
    BG_E_PROPERTY_SUPPORTED_FOR_DOWNLOAD_JOBS_ONLY = 0x8020_0060, "Property only valid for download jobs.";
    BG_E_READ_ONLY_PROPERTY_AFTER_ADDFILE = 0x8020_0061, "Property must be set before the first file is added.";
    BG_E_READ_ONLY_PROPERTY_AFTER_RESUME = 0x8020_0062, "Property must be set before the first Resume.";
    BG_E_MAX_DOWNLOAD_SIZE_INVALID_VALUE = 0x8020_0063, "Invalid MAX_DOWNLOAD_SIZE value.";
    BG_E_MAX_DOWNLOAD_SIZE_LIMIT_REACHED = 0x8020_0064, "File larger than MAX_DOWNLOAD_SIZE.";
    BG_E_STANDBY_MODE = 0x8020_0065, "Transfer paused because the machine is in (modern) standby.";
    BG_E_USE_STORED_CREDENTIALS_NOT_SUPPORTED = 0x8020_0066, "USE_STORED_CREDENTIALS not supported for this job/target.";
    BG_E_BLOCKED_BY_BATTERY_POLICY = 0x8020_0067, "Blocked by battery policy.";
    BG_E_BLOCKED_BY_BATTERY_SAVER = 0x8020_0068, "Blocked by battery saver.";
    BG_E_WATCHDOG_TIMEOUT = 0x8020_0069, "Internal watchdog timed out the transfer.";
    BG_E_APP_PACKAGE_NOT_FOUND = 0x8020_006A, "Owning app package no longer installed (UWP).";
    BG_E_APP_PACKAGE_SCENARIO_NOT_SUPPORTED = 0x8020_006B, "Not supported for packaged apps.";
    BG_E_DATABASE_CORRUPT = 0x8020_006C, "BITS state database is corrupt.";
    BG_E_RANDOM_ACCESS_NOT_SUPPORTED = 0x8020_006D, "Server cannot serve random access (ranges) for on-demand mode.";
    BG_E_BLOCKED_BY_BACKGROUND_ACCESS_POLICY = 0x8020_006E, "Background access policy blocks the app.";
    BG_E_BLOCKED_BY_GAME_MODE = 0x8020_006F, "Blocked while Game Mode is active.";
    BG_E_BLOCKED_BY_SYSTEM_POLICY = 0x8020_0070, "Blocked by system policy.";
    BG_E_NOT_SUPPORTED_WITH_CUSTOM_HTTP_METHOD = 0x8020_0071, "Feature unavailable when a custom HTTP verb is set (HttpOptions2).";
    BG_E_UNSUPPORTED_JOB_CONFIGURATION = 0x8020_0072, "Combination of job settings not supported.";
    BG_E_REMOTE_FILE_CHANGED = 0x8020_0073, "Remote file changed (size/date/ETag) during a transfer that cannot restart.";
    BG_E_SERVER_CERT_VALIDATION_INTERFACE_REQUIRED = 0x8020_0074, "Certificate validation callback required but none set.";
    BG_E_READ_ONLY_WHEN_JOB_ACTIVE = 0x8020_0075, "Setting cannot change while job is active.";
    BG_E_ERROR_CONTEXT_SERVER_CERTIFICATE_CALLBACK = 0x8020_0076, "The error occurred in the server certificate validation callback.";
    // BG_E_HTTP_ERROR_* (facility 25)
    BG_E_HTTP_ERROR_100 = 0x8019_0064, "";
    BG_E_HTTP_ERROR_101 = 0x8019_0065, "";
    BG_E_HTTP_ERROR_200 = 0x8019_00C8, "";
    BG_E_HTTP_ERROR_201 = 0x8019_00C9, "";
    BG_E_HTTP_ERROR_202 = 0x8019_00CA, "";
    BG_E_HTTP_ERROR_203 = 0x8019_00CB, "";
    BG_E_HTTP_ERROR_204 = 0x8019_00CC, "";
    BG_E_HTTP_ERROR_205 = 0x8019_00CD, "";
    BG_E_HTTP_ERROR_206 = 0x8019_00CE, "";
    BG_E_HTTP_ERROR_300 = 0x8019_012C, "";
    BG_E_HTTP_ERROR_301 = 0x8019_012D, "";
    BG_E_HTTP_ERROR_302 = 0x8019_012E, "";
    BG_E_HTTP_ERROR_303 = 0x8019_012F, "";
    BG_E_HTTP_ERROR_304 = 0x8019_0130, "";
    BG_E_HTTP_ERROR_305 = 0x8019_0131, "";
    BG_E_HTTP_ERROR_307 = 0x8019_0133, "";
    BG_E_HTTP_ERROR_400 = 0x8019_0190, "";
    BG_E_HTTP_ERROR_401 = 0x8019_0191, "";
    BG_E_HTTP_ERROR_402 = 0x8019_0192, "";
    BG_E_HTTP_ERROR_403 = 0x8019_0193, "";
    BG_E_HTTP_ERROR_404 = 0x8019_0194, "";
    BG_E_HTTP_ERROR_405 = 0x8019_0195, "";
    BG_E_HTTP_ERROR_406 = 0x8019_0196, "";
    BG_E_HTTP_ERROR_407 = 0x8019_0197, "";
    BG_E_HTTP_ERROR_408 = 0x8019_0198, "";
    BG_E_HTTP_ERROR_409 = 0x8019_0199, "";
    BG_E_HTTP_ERROR_410 = 0x8019_019A, "";
    BG_E_HTTP_ERROR_411 = 0x8019_019B, "";
    BG_E_HTTP_ERROR_412 = 0x8019_019C, "";
    BG_E_HTTP_ERROR_413 = 0x8019_019D, "";
    BG_E_HTTP_ERROR_414 = 0x8019_019E, "";
    BG_E_HTTP_ERROR_415 = 0x8019_019F, "";
    BG_E_HTTP_ERROR_416 = 0x8019_01A0, "";
    BG_E_HTTP_ERROR_417 = 0x8019_01A1, "";
    BG_E_HTTP_ERROR_449 = 0x8019_01C1, "";
    BG_E_HTTP_ERROR_500 = 0x8019_01F4, "";
    BG_E_HTTP_ERROR_501 = 0x8019_01F5, "";
    BG_E_HTTP_ERROR_502 = 0x8019_01F6, "";
    BG_E_HTTP_ERROR_503 = 0x8019_01F7, "";
    BG_E_HTTP_ERROR_504 = 0x8019_01F8, "";
    BG_E_HTTP_ERROR_505 = 0x8019_01F9, "";
}

/// The English text for a code, as `GetErrorDescription` returns it; `None` when there is
/// no message for the code (the caller then answers `HRESULT_FROM_WIN32(ERROR_MR_MID_NOT_FOUND)`).
pub fn description_for(hr: HResult) -> Option<String> {
    if let Some(status) = hr.http_status() {
        return Some(match http_reason(status) {
            Some(reason) => format!("The server returned HTTP status {status} ({reason})."),
            None => format!("The server returned HTTP status {status}."),
        });
    }
    KNOWN
        .iter()
        .find(|(code, _, text)| *code == hr && !text.is_empty())
        .map(|(_, _, text)| (*text).to_owned())
}

fn http_reason(status: u16) -> Option<&'static str> {
    Some(match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        449 => "Retry With",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_codes_are_negative_and_success_codes_are_not() {
        assert!(BG_E_NOT_FOUND.is_failure());
        assert_eq!(BG_E_NOT_FOUND.0, -2_145_386_495);
        assert!(BG_S_PARTIAL_COMPLETE.is_success());
        assert!(S_FALSE.is_success());
        assert!(QM_E_ITEM_NOT_FOUND.is_failure());
    }

    #[test]
    fn http_codes_follow_the_formula_for_any_status() {
        assert_eq!(HResult::from_http_status(404), BG_E_HTTP_ERROR_404);
        assert_eq!(HResult::from_http_status(416).bits(), 0x8019_01A0);
        assert_eq!(HResult::from_http_status(429).bits(), 0x8019_01AD);
        assert_eq!(BG_E_HTTP_ERROR_503.http_status(), Some(503));
        assert_eq!(BG_E_NOT_FOUND.http_status(), None);
        assert_eq!(
            description_for(HResult::from_http_status(404)).unwrap(),
            "The server returned HTTP status 404 (Not Found)."
        );
        assert_eq!(
            description_for(HResult::from_http_status(599)).unwrap(),
            "The server returned HTTP status 599."
        );
    }

    #[test]
    fn win32_codes_map_like_hresult_from_win32() {
        assert_eq!(HResult::from_win32(5), E_ACCESSDENIED);
        assert_eq!(HResult::from_win32(87), E_INVALIDARG);
        assert_eq!(HResult::from_win32(112), HRESULT_DISK_FULL);
        assert_eq!(HResult::from_win32(0), S_OK);
    }

    #[test]
    fn every_named_code_has_a_unique_value_and_name() {
        let mut values: Vec<_> = KNOWN.iter().map(|(hr, _, _)| *hr).collect();
        values.sort();
        values.dedup();
        assert_eq!(values.len(), KNOWN.len(), "two names share a value");
        for (hr, name, text) in KNOWN {
            assert_eq!(hr.name(), Some(*name));
            if hr.http_status().is_none() {
                assert!(!text.is_empty(), "{name} has no description");
                assert_eq!(description_for(*hr).as_deref(), Some(*text));
            }
        }
    }

    #[test]
    fn unknown_codes_have_no_description_and_display_as_hex() {
        let unknown = HResult::from_bits(0x8765_4321);
        assert_eq!(description_for(unknown), None);
        assert_eq!(unknown.to_string(), "0x87654321");
        assert_eq!(BG_E_EMPTY.to_string(), "BG_E_EMPTY (0x80200003)");
    }

    #[test]
    fn values_match_the_reference_sheet() {
        assert_eq!(BG_E_NO_PROGRESS.bits(), 0x8020_0024);
        assert_eq!(BG_E_TOO_MANY_JOBS_PER_MACHINE.bits(), 0x8020_0050);
        assert_eq!(
            BG_E_PROPERTY_SUPPORTED_FOR_DOWNLOAD_JOBS_ONLY.bits(),
            0x8020_0060
        );
        assert_eq!(
            BG_E_ERROR_CONTEXT_SERVER_CERTIFICATE_CALLBACK.bits(),
            0x8020_0076
        );
        assert_eq!(BG_S_ERROR_CONTEXT_NONE.bits(), 0x0020_0006);
        assert_eq!(QM_E_INVALID_STATE.bits(), 0x8100_1001);
    }
}
