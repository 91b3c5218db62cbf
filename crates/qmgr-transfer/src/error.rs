//! How a failed transfer is reported: the BITS HRESULT and context, a description naming
//! the URL or path, and whether trying again later can help.

use std::ffi::c_long;
use std::fmt;
use std::io;
use std::path::Path;
use std::time::Duration;

use qmgr_core::hresult::{self, HResult};
use qmgr_core::{ErrorContext, QmgrError};

use crate::tls::Defect;

/// HTTP statuses worth retrying: the server or a gateway is overloaded or briefly down.
const TRANSIENT_HTTP_STATUSES: [u16; 6] = [408, 429, 500, 502, 503, 504];

/// Why a transfer stopped.
#[derive(Clone, PartialEq, Eq)]
pub struct TransferError {
    /// Trying again later may succeed (BITS' TRANSIENT_ERROR); otherwise the job is in ERROR.
    pub transient: bool,
    pub error: QmgrError,
    /// How long the server asked us to wait (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// The final HTTP status, when the failure was the server's answer.
    pub http_status: Option<u16>,
}

impl TransferError {
    pub fn permanent(hresult: HResult, context: ErrorContext, description: String) -> Self {
        Self {
            transient: false,
            error: QmgrError::new(hresult, context, description),
            retry_after: None,
            http_status: None,
        }
    }

    pub fn transient(hresult: HResult, context: ErrorContext, description: String) -> Self {
        Self {
            transient: true,
            ..Self::permanent(hresult, context, description)
        }
    }

    /// The server answered with a status that is not the file.
    pub fn http_status(status: u16, url: &str, retry_after: Option<Duration>) -> Self {
        let hresult = HResult::from_http_status(status);
        let reason = hresult::description_for(hresult)
            .unwrap_or_else(|| format!("The server returned HTTP status {status}."));
        let mut error = Self::permanent(
            hresult,
            ErrorContext::RemoteFile,
            format!("{url}: {reason}"),
        );
        error.transient = TRANSIENT_HTTP_STATUSES.contains(&status);
        error.retry_after = retry_after;
        error.http_status = Some(status);
        error
    }

    /// A local file operation failed.
    pub fn local(error: &io::Error, action: &str, path: &Path) -> Self {
        Self::permanent(
            hresult_for_io(error),
            ErrorContext::LocalFile,
            format!("{action} {}: {error}", path.display()),
        )
    }

    /// curl failed to fetch `url`. `detail` is curl's error buffer, `redirect_target` the
    /// Location being followed when it failed, `verify_result` OpenSSL's verdict on the
    /// server's certificate chain (`CURLINFO_SSL_VERIFYRESULT`).
    pub fn transport(
        error: &curl::Error,
        url: &str,
        detail: Option<&str>,
        redirect_target: Option<&str>,
        verify_result: Option<c_long>,
    ) -> Self {
        let what = detail
            .filter(|text| !text.is_empty())
            .unwrap_or_else(|| error.description());
        let describe = |summary: &str| format!("{url}: {summary} ({what})");
        let transport = ErrorContext::GeneralTransport;
        let remote = ErrorContext::RemoteFile;
        if error.is_couldnt_resolve_host() || error.is_couldnt_resolve_proxy() {
            Self::transient(
                hresult::HRESULT_WINHTTP_NAME_NOT_RESOLVED,
                transport,
                describe("the host name could not be resolved"),
            )
        } else if error.is_couldnt_connect() {
            Self::transient(
                hresult::HRESULT_WINHTTP_CANNOT_CONNECT,
                transport,
                describe("could not connect to the server"),
            )
        } else if error.is_operation_timedout() {
            Self::transient(
                hresult::HRESULT_WINHTTP_TIMEOUT,
                transport,
                describe("the server stopped answering"),
            )
        } else if error.is_partial_file()
            || error.is_recv_error()
            || error.is_send_error()
            || error.is_got_nothing()
            || error.is_http2_error()
            || error.is_http2_stream_error()
            || error.is_again()
        {
            Self::transient(
                hresult::HRESULT_WINHTTP_CONNECTION_ERROR,
                transport,
                describe("the connection ended before the transfer was complete"),
            )
        } else if error.is_peer_failed_verification()
            || error.is_ssl_cacert()
            || error.is_ssl_issuer_error()
        {
            // curl checks the host name itself, before it records the chain's verdict: a
            // failed check leaves the verdict at X509_V_OK (0) or at the "not verified
            // yet" mark (1, X509_V_ERR_UNSPECIFIED) it starts each connection with.
            let defect = match verify_result {
                Some(code) if code > 1 => Defect::of_verify_error(code),
                _ if error.is_peer_failed_verification() => Defect::HostName,
                _ => Defect::Other,
            };
            let summary = match defect {
                Defect::HostName => "the server's TLS certificate does not name this host",
                Defect::Dates => "the server's TLS certificate has expired or is not yet valid",
                Defect::UnknownCa => {
                    "the server's TLS certificate is not issued by a trusted certificate authority"
                }
                Defect::WrongUsage => {
                    "the server's TLS certificate is not meant for server authentication"
                }
                Defect::Revoked => "the server's TLS certificate has been revoked",
                Defect::RevocationUnknown | Defect::Other => {
                    "the server's TLS certificate could not be verified"
                }
            };
            Self::permanent(defect.hresult(), transport, describe(summary))
        } else if error.is_ssl_connect_error() {
            Self::transient(
                hresult::HRESULT_WINHTTP_SECURE_FAILURE,
                transport,
                describe("the TLS handshake failed"),
            )
        } else if error.is_ssl_certproblem()
            || error.is_ssl_cacert_badfile()
            || error.is_ssl_crl_badfile()
            || error.is_ssl_cipher()
        {
            Self::permanent(
                hresult::HRESULT_WINHTTP_SECURE_FAILURE,
                transport,
                describe("the TLS settings or certificate files are unusable"),
            )
        } else if error.is_too_many_redirects() {
            Self::permanent(
                hresult::HRESULT_WINHTTP_REDIRECT_FAILED,
                remote,
                describe("too many redirects"),
            )
        } else if error.is_unsupported_protocol() && redirect_target.is_some() {
            let target = redirect_target.unwrap_or_default();
            Self::permanent(
                hresult::HRESULT_WINHTTP_REDIRECT_FAILED,
                remote,
                describe(&format!(
                    "the redirect to {target} was refused: its scheme is not allowed for this transfer"
                )),
            )
        } else if error.is_url_malformed() || error.is_unsupported_protocol() {
            Self::permanent(
                hresult::E_INVALIDARG,
                remote,
                describe("the URL is not usable"),
            )
        } else if error.is_file_couldnt_read_file()
            || error.code() == curl_sys::CURLE_REMOTE_FILE_NOT_FOUND
        {
            Self::permanent(
                hresult::HRESULT_FILE_NOT_FOUND,
                remote,
                describe("the remote file does not exist or cannot be read"),
            )
        } else if error.is_login_denied() || error.is_remote_access_denied() {
            Self::permanent(
                hresult::E_ACCESSDENIED,
                remote,
                describe("the server refused access"),
            )
        } else if error.is_filesize_exceeded() {
            Self::permanent(
                hresult::BG_E_MAX_DOWNLOAD_SIZE_LIMIT_REACHED,
                remote,
                describe("the file is larger than the allowed maximum"),
            )
        } else if error.code() == curl_sys::CURLE_FTP_WEIRD_SERVER_REPLY {
            Self::transient(
                hresult::BG_E_INVALID_SERVER_RESPONSE,
                remote,
                describe("the server's answer could not be understood"),
            )
        } else {
            Self::permanent(hresult::E_FAIL, transport, describe("the transfer failed"))
        }
    }
}

impl fmt::Debug for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransferError")
            .field("transient", &self.transient)
            .field("error", &self.error)
            .field("retry_after", &self.retry_after)
            .field("http_status", &self.http_status)
            .finish()
    }
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.transient {
            "transient"
        } else {
            "permanent"
        };
        write!(f, "{kind} error: {}", self.error)
    }
}

impl std::error::Error for TransferError {}

/// The `HRESULT_FROM_WIN32` code Windows would give for a failed local file operation.
pub fn hresult_for_io(error: &io::Error) -> HResult {
    match error.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG) => hresult::HRESULT_DISK_FULL,
        Some(libc::EACCES | libc::EPERM | libc::EROFS | libc::ELOOP) => hresult::E_ACCESSDENIED,
        Some(libc::ENOENT | libc::ENOTDIR) => hresult::HRESULT_PATH_NOT_FOUND,
        Some(libc::EISDIR) => hresult::HRESULT_DIRECTORY_NOT_SUPPORTED,
        Some(libc::EEXIST) => hresult::HRESULT_FILE_EXISTS,
        Some(libc::EBUSY | libc::ETXTBSY) => hresult::HRESULT_SHARING_VIOLATION,
        Some(libc::ENOMEM) => hresult::E_OUTOFMEMORY,
        _ => match error.kind() {
            io::ErrorKind::NotFound => hresult::HRESULT_PATH_NOT_FOUND,
            io::ErrorKind::PermissionDenied => hresult::E_ACCESSDENIED,
            io::ErrorKind::AlreadyExists => hresult::HRESULT_FILE_EXISTS,
            io::ErrorKind::OutOfMemory => hresult::E_OUTOFMEMORY,
            _ => hresult::E_FAIL,
        },
    }
}

/// A local file operation's failure as a [`QmgrError`] with context LocalFile.
pub(crate) fn local_error(error: &io::Error, action: &str, path: &Path) -> QmgrError {
    TransferError::local(error, action, path).error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curl_error(code: curl_sys::CURLcode) -> curl::Error {
        curl::Error::new(code)
    }

    #[test]
    fn http_statuses_follow_the_bits_formula_and_split_transient_from_permanent() {
        let not_found = TransferError::http_status(404, "http://h/x", None);
        assert_eq!(not_found.error.hresult.bits(), 0x8019_0194);
        assert_eq!(not_found.error.context, ErrorContext::RemoteFile);
        assert!(!not_found.transient);
        assert!(not_found.error.description.contains("http://h/x"));
        assert!(not_found.error.description.contains("404"));
        for status in TRANSIENT_HTTP_STATUSES {
            assert!(
                TransferError::http_status(status, "u", None).transient,
                "{status}"
            );
        }
        for status in [400, 401, 403, 410, 416, 501, 505] {
            assert!(
                !TransferError::http_status(status, "u", None).transient,
                "{status}"
            );
        }
        let busy = TransferError::http_status(503, "u", Some(Duration::from_secs(7)));
        assert_eq!(busy.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(busy.http_status, Some(503));
    }

    #[test]
    fn network_trouble_is_transient_and_named_like_winhttp() {
        for (code, hresult) in [
            (
                curl_sys::CURLE_COULDNT_CONNECT,
                hresult::HRESULT_WINHTTP_CANNOT_CONNECT,
            ),
            (
                curl_sys::CURLE_COULDNT_RESOLVE_HOST,
                hresult::HRESULT_WINHTTP_NAME_NOT_RESOLVED,
            ),
            (
                curl_sys::CURLE_OPERATION_TIMEDOUT,
                hresult::HRESULT_WINHTTP_TIMEOUT,
            ),
            (
                curl_sys::CURLE_PARTIAL_FILE,
                hresult::HRESULT_WINHTTP_CONNECTION_ERROR,
            ),
            (
                curl_sys::CURLE_RECV_ERROR,
                hresult::HRESULT_WINHTTP_CONNECTION_ERROR,
            ),
        ] {
            let error = TransferError::transport(&curl_error(code), "http://h/", None, None, None);
            assert!(error.transient, "{code}");
            assert_eq!(error.error.hresult, hresult, "{code}");
            assert_eq!(error.error.context, ErrorContext::GeneralTransport);
        }
    }

    #[test]
    fn verification_and_redirect_failures_are_permanent() {
        let tls = TransferError::transport(
            &curl_error(curl_sys::CURLE_PEER_FAILED_VERIFICATION),
            "https://h/",
            Some("self-signed certificate"),
            None,
            Some(18),
        );
        assert!(!tls.transient);
        assert_eq!(
            tls.error.hresult,
            hresult::HRESULT_WINHTTP_SECURE_INVALID_CA
        );
        assert!(tls.error.description.contains("self-signed certificate"));
        let wrong_host = TransferError::transport(
            &curl_error(curl_sys::CURLE_PEER_FAILED_VERIFICATION),
            "https://h/",
            Some("no alternative certificate subject name matches"),
            None,
            Some(0),
        );
        assert_eq!(
            wrong_host.error.hresult,
            hresult::HRESULT_WINHTTP_SECURE_CERT_CN_INVALID
        );
        let downgrade = TransferError::transport(
            &curl_error(curl_sys::CURLE_UNSUPPORTED_PROTOCOL),
            "https://h/",
            None,
            Some("http://h/"),
            None,
        );
        assert!(!downgrade.transient);
        assert_eq!(downgrade.error.hresult.bits(), 0x8007_2F7C);
        assert!(downgrade.error.description.contains("http://h/"));
        let loop_ = TransferError::transport(
            &curl_error(curl_sys::CURLE_TOO_MANY_REDIRECTS),
            "http://h/",
            None,
            None,
            None,
        );
        assert!(!loop_.transient);
    }

    #[test]
    fn local_errors_map_errno_to_win32_codes() {
        for (errno, hresult) in [
            (libc::ENOSPC, hresult::HRESULT_DISK_FULL),
            (libc::EACCES, hresult::E_ACCESSDENIED),
            (libc::ENOENT, hresult::HRESULT_PATH_NOT_FOUND),
            (libc::EEXIST, hresult::HRESULT_FILE_EXISTS),
        ] {
            let error = TransferError::local(
                &io::Error::from_raw_os_error(errno),
                "writing",
                Path::new("/d/f"),
            );
            assert_eq!(error.error.hresult, hresult, "errno {errno}");
            assert_eq!(error.error.context, ErrorContext::LocalFile);
            assert!(!error.transient);
            assert!(error.error.description.contains("/d/f"));
        }
    }
}
