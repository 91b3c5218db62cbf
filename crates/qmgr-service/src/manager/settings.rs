//! SetJob: one change of a job's settings applied to the job, with the checks that need
//! the service (a client certificate's store).

use qmgr_core::certificate::{self, CertificateSelector, ClientCertificate};
use qmgr_core::error::{QmgrError, Result};
use qmgr_core::hresult;
use qmgr_core::job::{JobPriority, check_length};
use qmgr_core::paths::StatePaths;
use qmgr_core::service::JobChange;
use qmgr_core::{Job, JobState, Timestamp};

/// A certificate store name is one directory name (NAME_MAX bytes).
const MAX_CERTIFICATE_STORE_NAME_BYTES: usize = 255;
/// SetClientCertificateByName's subject, in characters.
const MAX_CERTIFICATE_SUBJECT_CHARS: usize = 1024;

/// Applies a SetJob change to `job`: whether its transfers must start again and whether it
/// is now due for auto-complete, or `None` when nothing changed (removing a client
/// certificate the job does not have). A refused change leaves the job as it was.
pub(super) fn apply_change(
    job: &mut Job,
    change: JobChange,
    paths: &StatePaths,
    now: Timestamp,
) -> Result<Option<(bool, bool)>> {
    let mut restart = false;
    let mut complete_now = false;
    match change {
        JobChange::DisplayName(name) => job.set_display_name(&name, now)?,
        JobChange::Description(text) => job.set_description(&text, now)?,
        JobChange::Priority(priority) => {
            restart =
                (priority == JobPriority::Foreground) != (job.priority == JobPriority::Foreground);
            job.set_priority(priority, now)?;
        }
        JobChange::MinimumRetryDelay(delay) => job.set_minimum_retry_delay(delay, now)?,
        JobChange::NoProgressTimeout(timeout) => job.set_no_progress_timeout(timeout, now)?,
        JobChange::MaximumDownloadTime(limit) => job.set_maximum_download_time(limit, now)?,
        JobChange::HttpMethod(method) => job.set_http_method(&method, now)?,
        JobChange::DynamicContent(enable) => job.set_dynamic_content(enable, now)?,
        JobChange::HighPerformance(enable) => job.set_high_performance(enable, now)?,
        JobChange::OnDemand(enable) => job.set_on_demand(enable, now)?,
        JobChange::CostFlags(flags) => job.set_cost_flags(flags, now)?,
        JobChange::IdleMode(enable) => job.set_idle_mode(enable, now)?,
        JobChange::MinimumNotificationInterval(interval) => {
            job.set_minimum_notification_interval(interval, now)?;
        }
        JobChange::NotifyFlags(flags) => job.set_notify_flags(flags, now)?,
        JobChange::NotifyCommand(command) => job.set_notify_command(command, now)?,
        JobChange::Proxy(proxy) => job.set_proxy(proxy, now)?,
        JobChange::CustomHeaders(headers) => job.set_custom_headers(headers, now)?,
        JobChange::MakeCustomHeadersWriteOnly => job.make_custom_headers_write_only(now),
        JobChange::SecurityFlags(flags) => job.set_security_flags(flags, now)?,
        JobChange::MaxDownloadSize(size) => job.set_max_download_size(size, now)?,
        JobChange::ParallelFiles(count) => job.set_parallel_files(count, now)?,
        JobChange::BandwidthLimit(limit) => job.set_bandwidth_limit(limit, now)?,
        JobChange::ClientCertificate(certificate) => {
            if let Some(setting) = &certificate {
                check_client_certificate(paths, setting)?;
            }
            if !job.set_client_certificate(certificate, now)? {
                return Ok(None);
            }
            restart = true;
        }
        JobChange::AutoComplete(mark) => {
            job.set_auto_complete(mark, now)?;
            complete_now = mark.is_some() && job.state == JobState::Transferred;
        }
        JobChange::FirstRetryDelay(delay) => job.set_first_retry_delay(delay, now)?,
        JobChange::ReplyFileName(name) => {
            // The directory must exist and be writable now, as SetReplyFileName checks.
            if let Some(name) = name.as_deref().filter(|name| !name.is_empty()) {
                qmgr_core::reply::validate_file_name(name)?;
                super::jobs::check_local_directory(name)?;
            }
            job.set_reply_file_name(name.as_deref(), now)?;
        }
        JobChange::RemoteName { file, remote_name } => {
            job.set_remote_name(file, remote_name, now)?;
            restart = true;
        }
        // Transfers under way carry the old credentials: they start again.
        JobChange::Credentials(credential) => {
            job.set_credentials(credential, now)?;
            restart = true;
        }
        JobChange::UseStoredCredentials(enable) => {
            job.set_use_stored_credentials(enable, now)?;
            restart = true;
        }
        // A verdict on a file's content is not a setting: Queue::set_validation_state takes it.
        JobChange::ValidationState { .. } => {
            return Err(QmgrError::from_code(hresult::E_UNEXPECTED)
                .context("a validation state is not a job setting"));
        }
        JobChange::RemoveCredentials { target, scheme } => {
            if job.remove_credentials(target, scheme, now)? == hresult::S_FALSE {
                return Ok(None);
            }
            restart = true;
        }
    }
    Ok(Some((restart, complete_now)))
}

/// What SetClientCertificateByName/ByID check before recording a certificate: a known
/// store location, a store name that stays in the certs directory, a subject that says
/// something. The store itself is read only when a transfer starts.
fn check_client_certificate(paths: &StatePaths, setting: &ClientCertificate) -> Result<()> {
    certificate::check_store_location(setting.store_location)?;
    if setting.store_name.len() > MAX_CERTIFICATE_STORE_NAME_BYTES {
        return Err(QmgrError::invalid_arg(format!(
            "the certificate store name is {} bytes long; the limit is \
             {MAX_CERTIFICATE_STORE_NAME_BYTES} (one directory name)",
            setting.store_name.len()
        )));
    }
    if let CertificateSelector::Subject(subject) = &setting.selector {
        check_length(
            subject,
            MAX_CERTIFICATE_SUBJECT_CHARS,
            "certificate subject name",
            hresult::E_INVALIDARG,
        )?;
    }
    paths.certs_dir(&setting.store_name)?;
    if let CertificateSelector::Subject(subject) = &setting.selector
        && subject.trim().is_empty()
    {
        return Err(QmgrError::invalid_arg(
            "the certificate subject name is empty",
        ));
    }
    Ok(())
}
