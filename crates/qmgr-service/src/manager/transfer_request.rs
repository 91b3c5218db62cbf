//! Building the engine's [`TransferRequest`] for one file of a job.

use std::path::PathBuf;

use qmgr_core::certificate::{self};
use qmgr_core::error::Result;
use qmgr_core::file::SIZE_UNKNOWN;
use qmgr_core::job::{JobPriority, ProxyUsage, parse_custom_headers, security};
use qmgr_core::paths::StatePaths;
use qmgr_core::trust;
use qmgr_core::{FileRecord, Job};
use qmgr_transfer::{PartialFile, ProxyChoice, TransferRequest};

/// Builds the engine request for file `index` of `job`; its client certificate is looked up
/// in the stores of `paths`.
pub(super) fn transfer_request(
    job: &Job,
    index: usize,
    paths: &StatePaths,
) -> Result<TransferRequest> {
    file_request(job, &job.files[index], paths)
}

/// Builds the engine request for `file` with the settings of `job` (a file of the job, or
/// the download of an upload-reply job's reply).
pub(super) fn file_request(
    job: &Job,
    file: &FileRecord,
    paths: &StatePaths,
) -> Result<TransferRequest> {
    let mut request =
        TransferRequest::new(file.remote_name.clone(), PathBuf::from(&file.local_name));
    // A request of the job's own method, or of content that may change, is not resumed
    // with a range: the file starts over.
    let starts_over = job.settings.http_method.is_some() || job.settings.dynamic_content;
    if let Some(temp) = &file.temp_name {
        request.partial = Some(PartialFile {
            temp_path: PathBuf::from(temp),
            bytes: if starts_over {
                0
            } else {
                file.bytes_transferred
            },
            validator: file.validator.clone(),
            total: (file.bytes_total != SIZE_UNKNOWN).then_some(file.bytes_total),
        });
    }
    if let Some(headers) = &job.settings.custom_headers {
        request.headers = parse_custom_headers(headers)?;
    }
    request.ranges.clone_from(&file.ranges);
    request.max_size = job.settings.max_download_size;
    request.http_method.clone_from(&job.settings.http_method);
    request.credentials = job.credentials.clone();
    if job.settings.use_stored_credentials {
        request.netrc_file = netrc_file()?;
    }
    // Only TLS uses the certificate: a missing one does not hold up an http or file URL.
    let uses_tls = ["https://", "ftps://"].iter().any(|scheme| {
        file.remote_name
            .get(..scheme.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(scheme))
    });
    if let Some(setting) = job
        .settings
        .client_certificate
        .as_ref()
        .filter(|_| uses_tls)
    {
        let found =
            certificate::resolve(&paths.certs_dir(&setting.store_name)?, &setting.selector)?;
        request.security.client_certificate = Some(qmgr_transfer::ClientCertificate {
            certificate: found.certificate,
            key: found.key,
            key_password: None,
        });
    }
    let flags = job.settings.security_flags;
    // Each of Windows' "ignore" flags relaxes only the check it names.
    request.security.ignore = qmgr_transfer::IgnoredCertificateErrors {
        host_name: flags & security::IGNORE_CERT_CN_INVALID != 0,
        dates: flags & security::IGNORE_CERT_DATE_INVALID != 0,
        unknown_ca: flags & security::IGNORE_UNKNOWN_CA != 0,
        wrong_usage: flags & security::IGNORE_CERT_WRONG_USAGE != 0,
    };
    if flags & security::REDIRECT_POLICY_MASK == security::REDIRECT_DISALLOW {
        request.max_redirects = 0;
    }
    request.allow_https_to_http = flags & security::REDIRECT_ALLOW_HTTPS_TO_HTTP != 0;
    request.throttled = job.priority != JobPriority::Foreground;
    request.priority_class = super::policy::priority_class(job.priority);
    // Idle mode for background work, unless the job turned it off.
    request.idle = request.throttled && job.settings.idle_mode;
    request.proxy = match job.settings.proxy.usage {
        ProxyUsage::Preconfig | ProxyUsage::Autodetect => ProxyChoice::FromEnvironment,
        ProxyUsage::NoProxy => ProxyChoice::Direct,
        ProxyUsage::Override => ProxyChoice::Explicit {
            url: job
                .settings
                .proxy
                .first_proxy()
                .unwrap_or_default()
                .to_owned(),
            bypass: job.settings.proxy.bypass_hosts(),
        },
    };
    Ok(request)
}

/// The user's `~/.netrc`, when it exists and may be trusted (a netrc others could write
/// would let them choose where a password goes). No home, or no file: none.
fn netrc_file() -> Result<Option<PathBuf>> {
    let Some(home) = std::env::var_os("HOME").filter(|home| !home.is_empty()) else {
        return Ok(None);
    };
    let path = PathBuf::from(home).join(".netrc");
    Ok(trust::check_trusted_file(&path, "netrc file (stored credentials)")?.then_some(path))
}
