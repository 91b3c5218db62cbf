//! What a caller asks the engine to fetch, and the checks made before any I/O.

use std::path::{Path, PathBuf};

use qmgr_core::QmgrError;
pub use qmgr_core::Validator;
use qmgr_core::credentials::Credentials;
use qmgr_core::ranges::{self, FileRange};

use crate::lanes::Lane;
use crate::priority_limit::PriorityClass;
use crate::source::{Source, parse_source};

/// Identifies one transfer for the life of an engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransferId(pub u64);

impl std::fmt::Display for TransferId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "transfer {}", self.0)
    }
}

/// A temporary file left by an earlier attempt, to be continued rather than started over;
/// or, with `bytes` 0, the name (from [`crate::new_temp_path`]) under which to create one.
/// A name that holds nothing is created as it is; one that holds something not ours is
/// left alone and a new name is reported in `Started`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartialFile {
    pub temp_path: PathBuf,
    /// Bytes known to be good (the last checkpointed length); the file is cut to this.
    pub bytes: u64,
    /// The validator the server sent when the file was started.
    pub validator: Validator,
    /// The whole file's size as the server gave it then, if it did.
    pub total: Option<u64>,
}

/// Which proxy to use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ProxyChoice {
    /// curl's standard variables: `http_proxy`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`.
    #[default]
    FromEnvironment,
    /// Connect directly, whatever the environment says.
    Direct,
    /// This proxy, except for the hosts listed (curl's `NOPROXY` syntax, one entry each).
    Explicit { url: String, bypass: Vec<String> },
}

/// A client certificate for TLS client authentication (PEM files).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    pub certificate: PathBuf,
    /// The private key, when it is not in the certificate file.
    pub key: Option<PathBuf>,
    pub key_password: Option<String>,
}

impl std::fmt::Debug for ClientCertificate {
    // The password stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("certificate", &self.certificate)
            .field("key", &self.key)
            .field(
                "key_password",
                &self.key_password.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

/// Certificate defects a caller accepts, one per `BG_SSL_IGNORE_*` flag. Each relaxes
/// exactly the check it names; every other check of the server's certificate stays on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IgnoredCertificateErrors {
    /// `BG_SSL_IGNORE_CERT_CN_INVALID`: the certificate need not name the host.
    pub host_name: bool,
    /// `BG_SSL_IGNORE_CERT_DATE_INVALID`: it may be expired or not yet valid.
    pub dates: bool,
    /// `BG_SSL_IGNORE_UNKNOWN_CA`: its chain need not lead to a trusted root (a
    /// self-signed certificate, or one whose issuer is unknown).
    pub unknown_ca: bool,
    /// `BG_SSL_IGNORE_CERT_WRONG_USAGE`: it need not be meant for TLS servers (extended
    /// key usage or key usage).
    pub wrong_usage: bool,
}

impl IgnoredCertificateErrors {
    /// Whether any check is relaxed.
    pub fn any(self) -> bool {
        self.host_name || self.dates || self.unknown_ca || self.wrong_usage
    }
}

/// TLS settings; every check of the server's certificate is on unless relaxed explicitly.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Security {
    /// Certificate defects to accept (none by default).
    pub ignore: IgnoredCertificateErrors,
    /// Trust these CA certificates (PEM bundle) instead of the system's.
    pub ca_bundle: Option<PathBuf>,
    pub client_certificate: Option<ClientCertificate>,
    /// Accept only a server whose public key has this hash, in curl's
    /// `CURLOPT_PINNEDPUBLICKEY` form (`sha256//BASE64`): the key a client's certificate
    /// validator approved (see [`crate::fetch_server_certificate`]).
    pub pinned_public_key: Option<String>,
}

/// One download: from `url` into a temporary file beside `destination`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferRequest {
    /// http, https, ftp, ftps or file URL, or an absolute local path.
    pub url: String,
    /// The final name; the engine only writes a temporary file in its directory.
    pub destination: PathBuf,
    /// Continue this temporary file instead of starting a new one.
    pub partial: Option<PartialFile>,
    /// Extra request headers (http and https only).
    pub headers: Vec<(String, String)>,
    /// Fail with `BG_E_MAX_DOWNLOAD_SIZE_LIMIT_REACHED` beyond this many bytes.
    pub max_size: Option<u64>,
    pub proxy: ProxyChoice,
    /// Let a redirect lead from https to http.
    pub allow_https_to_http: bool,
    pub max_redirects: u32,
    /// Counts against the engine's global bandwidth cap (background work does; foreground
    /// work does not).
    pub throttled: bool,
    /// The background priority whose schedule cap this transfer counts against; `None`
    /// (FOREGROUND) counts against none.
    pub priority_class: Option<PriorityClass>,
    /// Idle mode: use only bandwidth nobody else is using (see the `idle` module). Such a
    /// transfer takes its connection from a pool of its own.
    pub idle: bool,
    pub security: Security,
    /// User names and passwords for the server (sent only to the origin of `url`, never
    /// to a host a redirect leads to) and for the proxy.
    pub credentials: Credentials,
    /// A `.netrc` file whose entries give user names and passwords by host (checked by the
    /// caller: curl reads it by name).
    pub netrc_file: Option<PathBuf>,
    /// Only these bytes of the remote file, concatenated in this order (AddFileWithRanges;
    /// http and https only). Empty: the whole file.
    pub ranges: Vec<FileRange>,
    /// The request method (IBackgroundCopyJobHttpOptions2::SetHttpMethod); `None`: GET.
    /// The answer's body is the file, whatever the method.
    pub http_method: Option<String>,
    /// Wait in this lane until it has room (see [`crate::Lane`]); `None`: start at once.
    pub lane: Option<Lane>,
}

impl TransferRequest {
    /// Default number of redirects followed, as curl's command line tool allows.
    pub const DEFAULT_MAX_REDIRECTS: u32 = 10;

    /// A request with the defaults: no partial file, no extra headers, no size limit,
    /// proxy from the environment, no https→http redirects, throttled, not in idle mode, TLS
    /// verified.
    pub fn new(url: impl Into<String>, destination: impl Into<PathBuf>) -> Self {
        Self {
            url: url.into(),
            destination: destination.into(),
            partial: None,
            headers: Vec::new(),
            max_size: None,
            proxy: ProxyChoice::default(),
            allow_https_to_http: false,
            max_redirects: Self::DEFAULT_MAX_REDIRECTS,
            throttled: true,
            priority_class: None,
            idle: false,
            security: Security::default(),
            credentials: Credentials::default(),
            netrc_file: None,
            ranges: Vec::new(),
            http_method: None,
            lane: None,
        }
    }
}

/// A request that passed every check that needs no I/O.
#[derive(Debug)]
pub(crate) struct CheckedRequest {
    pub request: TransferRequest,
    pub source: Source,
}

/// Every check that can be made without touching the network or the disk.
pub(crate) fn check(request: TransferRequest) -> Result<CheckedRequest, QmgrError> {
    let source = parse_source(&request.url)?;
    check_destination(&request.destination)?;
    // The rule SetCustomHeaders applies: `token: value`, no line breaks (which could
    // smuggle headers or a second request), none of the headers the engine sets itself.
    for (name, value) in &request.headers {
        qmgr_core::job::check_header(name, value)?;
    }
    if let Some(partial) = &request.partial {
        let same_directory = partial.temp_path.parent() == Some(directory_of(&request.destination));
        if !same_directory {
            return Err(QmgrError::invalid_arg(format!(
                "the partial file {} is not in the directory of {}",
                partial.temp_path.display(),
                request.destination.display()
            )));
        }
    }
    if !request.ranges.is_empty() {
        ranges::validate(&request.ranges)?;
        if !source.scheme.is_http() {
            return Err(QmgrError::invalid_arg(format!(
                "{}: byte ranges can be downloaded over http and https only",
                request.url
            )));
        }
    }
    if let Some(method) = &request.http_method {
        qmgr_core::job::validate_http_method(method)?;
        if !source.scheme.is_http() {
            return Err(QmgrError::invalid_arg(format!(
                "{}: an HTTP method ({method}) needs an http or https URL",
                request.url
            )));
        }
    }
    if let ProxyChoice::Explicit { url, bypass } = &request.proxy {
        let bad = |text: &str| text.chars().any(|c| c.is_control() || c == ' ');
        if url.is_empty() || bad(url) || bypass.iter().any(|host| bad(host) || host.contains(',')) {
            return Err(QmgrError::invalid_arg(format!(
                "the proxy {url:?} or its bypass list {bypass:?} is malformed"
            )));
        }
    }
    Ok(CheckedRequest { request, source })
}

fn check_destination(destination: &Path) -> Result<(), QmgrError> {
    let ends_in_separator = destination.as_os_str().as_encoded_bytes().ends_with(b"/");
    let has_name = !ends_in_separator
        && destination
            .file_name()
            .is_some_and(|name| !name.is_empty() && name != "." && name != "..");
    if !has_name {
        return Err(QmgrError::invalid_arg(format!(
            "the destination {} does not name a file",
            destination.display()
        )));
    }
    Ok(())
}

/// The directory a destination lives in (`.` for a bare file name).
pub(crate) fn directory_of(destination: &Path) -> &Path {
    match destination.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmgr_core::hresult::E_INVALIDARG;

    fn with_header(name: &str, value: &str) -> TransferRequest {
        let mut request = TransferRequest::new("http://example.com/a", "/tmp/a");
        request.headers.push((name.to_owned(), value.to_owned()));
        request
    }

    #[test]
    fn ordinary_headers_pass() {
        assert!(check(with_header("X-Token", "abc; def=ghi")).is_ok());
        assert!(check(with_header("Accept", "")).is_ok());
    }

    #[test]
    fn line_breaks_and_bad_names_are_invalid_arguments() {
        for (name, value) in [
            ("X-A", "one\r\nX-Injected: two"),
            ("X-A", "one\ntwo"),
            ("X-A", "one\rtwo"),
            ("X-A\r\nX-B", "v"),
            ("X A", "v"),
            ("", "v"),
            ("X:A", "v"),
            ("Range", "bytes=0-"),
            ("if-range", "\"x\""),
        ] {
            let error = check(with_header(name, value)).unwrap_err();
            assert_eq!(error.hresult, E_INVALIDARG, "{name:?}: {value:?}");
        }
    }

    #[test]
    fn destination_must_name_a_file() {
        for destination in ["/tmp/", "/", "/tmp/..", ""] {
            let request = TransferRequest::new("http://example.com/a", destination);
            assert!(check(request).is_err(), "{destination}");
        }
    }

    #[test]
    fn a_partial_file_must_sit_beside_the_destination() {
        let mut request = TransferRequest::new("http://example.com/a", "/data/a.iso");
        request.partial = Some(PartialFile {
            temp_path: "/elsewhere/.BIT00.tmp".into(),
            bytes: 10,
            validator: Validator::default(),
            total: None,
        });
        assert!(check(request.clone()).is_err());
        request.partial.as_mut().unwrap().temp_path = "/data/.BIT00.tmp".into();
        assert!(check(request).is_ok());
    }

    #[test]
    fn a_key_password_is_not_shown() {
        let certificate = ClientCertificate {
            certificate: "/c.pem".into(),
            key: None,
            key_password: Some("hunter2".into()),
        };
        let shown = format!("{certificate:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("/c.pem"));
    }
}
