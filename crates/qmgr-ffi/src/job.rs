//! The job object: IBackgroundCopyJob … IBackgroundCopyJob5 through one vtable (each
//! version extends the previous one), IBackgroundCopyJobHttpOptions and IBitsTokenOptions
//! through further vtable pointers in the same object.
//!
//! The object holds the job's GUID and asks the service on every call, so every object
//! for one job sees the same job. After the job left the queue (Complete, Cancel) reads
//! answer from the last view seen, in state ACKNOWLEDGED or CANCELLED, and changes are
//! `BG_E_INVALID_STATE`, as on Windows.

#![allow(
    clippy::wildcard_imports,
    reason = "the ABI modules are imported whole: their names are Windows'; clippy skips this lint when the crate is built for its unit tests, so `expect` would fail there"
)]

use std::mem::offset_of;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use qmgr_core::certificate::{self, CERTIFICATE_HASH_LEN, CertificateSelector, ClientCertificate};
use qmgr_core::credentials::{AuthScheme, AuthTarget, Credential, Secret};
use qmgr_core::hresult::{self, HResult};
use qmgr_core::job::{JobPriority, NotifyCommand, ProxySettings, ProxyUsage};
use qmgr_core::ranges::{self, FileRange};
use qmgr_core::service::{JobChange, JobSummary, NewFile, QueueServiceExt};
use qmgr_core::{FileRecord, Guid, JobState, QmgrError, Result};

use crate::abi::bits::*;
use crate::abi::types::*;
use crate::boundary::{Ptr, thunks};
use crate::cert_callback;
use crate::com::{Class, ComObject, unknown_vtbl};
use crate::enums::{EnumFilesObject, FileItem};
use crate::error::ErrorObject;
use crate::local;
use crate::memory;
use crate::notify;
use crate::runtime::Queue;
use crate::strings::{to_co_task, to_co_task_optional};

/// Files one AddFileSet call may carry (the service's per-job limit is far lower).
const MAX_FILE_SET: u32 = 65_536;
/// The security flags SetSecurityFlags accepts (`BG_SSL_*`, `BG_HTTP_REDIRECT_POLICY_*`).
const VALID_SECURITY_FLAGS: u32 = 0x001F | BG_HTTP_REDIRECT_POLICY_MASK | 0x0800;
/// `SECURITY_MANDATORY_MEDIUM_RID` and `_HIGH_RID`: what GetOwnerIntegrityLevel reports for
/// an ordinary user and for root.
const INTEGRITY_MEDIUM: u32 = 0x2000;
const INTEGRITY_HIGH: u32 = 0x3000;

/// A job, as one COM object. Its getters read the job's summary (no file list); only
/// EnumFiles, GetError and ReplaceRemotePrefix read files, a page or one file at a time.
pub(crate) struct JobObject {
    queue: Queue,
    id: Guid,
    last_seen: Mutex<Option<JobSummary>>,
}

#[repr(C)]
pub(crate) struct JobHeader {
    job: &'static IBackgroundCopyJob5Vtbl,
    /// IBackgroundCopyJobHttpOptions3's vtable, which begins with IBackgroundCopyJobHttpOptions2's
    /// (itself beginning with IBackgroundCopyJobHttpOptions').
    http_options: &'static IBackgroundCopyJobHttpOptions3Vtbl,
    token_options: &'static IBitsTokenOptionsVtbl,
}

const HTTP_OPTIONS: usize = offset_of!(JobHeader, http_options);
const TOKEN_OPTIONS: usize = offset_of!(JobHeader, token_options);

// SAFETY: JobHeader is #[repr(C)] of vtable references; offset 0 serves every job
// interface (Job5's vtable extends Job4's … Job's), HTTP_OPTIONS the HttpOptions one and
// TOKEN_OPTIONS IBitsTokenOptions.
unsafe impl Class for JobObject {
    type Header = JobHeader;
    const HEADER: JobHeader = JobHeader {
        job: &JOB_VTBL,
        http_options: &HTTP_OPTIONS_VTBL,
        token_options: &TOKEN_OPTIONS_VTBL,
    };
    const INTERFACES: &'static [(GUID, usize)] = &[
        (IID_IUnknown, 0),
        (IID_IBackgroundCopyJob, 0),
        (IID_IBackgroundCopyJob2, 0),
        (IID_IBackgroundCopyJob3, 0),
        (IID_IBackgroundCopyJob4, 0),
        (IID_IBackgroundCopyJob5, 0),
        (IID_IBackgroundCopyJobHttpOptions, HTTP_OPTIONS),
        (IID_IBackgroundCopyJobHttpOptions2, HTTP_OPTIONS),
        (IID_IBackgroundCopyJobHttpOptions3, HTTP_OPTIONS),
        (IID_IBitsTokenOptions, TOKEN_OPTIONS),
    ];
}

impl JobObject {
    /// A new object for job `id` (seen as `summary`, if known), as `IBackgroundCopyJob*`.
    pub(crate) fn create(
        queue: Queue,
        id: Guid,
        summary: Option<JobSummary>,
    ) -> *mut IBackgroundCopyJob {
        ComObject::create(JobObject {
            queue,
            id,
            last_seen: Mutex::new(summary),
        })
    }

    /// The job now, without its files; after it left the queue, the last summary seen, in
    /// its final state.
    pub(crate) fn summary(&self) -> Result<JobSummary> {
        match self.queue.job_summary(self.id) {
            Ok(summary) => {
                *self.last_seen.lock() = Some(summary.clone());
                Ok(summary)
            }
            Err(error) if error.hresult == hresult::BG_E_NOT_FOUND => {
                let mut summary = self.last_seen.lock().clone().ok_or(error)?;
                summary.job.state = local::final_state(self.id).unwrap_or(JobState::Cancelled);
                Ok(summary)
            }
            Err(error) => Err(error),
        }
    }

    /// Every file of the job, a page at a time. A job that left the queue has none to
    /// read: BG_E_INVALID_STATE.
    fn files(&self) -> Result<Vec<FileRecord>> {
        self.queue.job_files(self.id).map_err(|error| {
            if error.hresult == hresult::BG_E_NOT_FOUND {
                QmgrError::from_code(hresult::BG_E_INVALID_STATE)
                    .context(format_args!("job {} has left the queue", self.id))
            } else {
                error
            }
        })
    }

    /// A request that changes the job: a job that left the queue is `BG_E_INVALID_STATE`.
    fn change(&self, request: impl FnOnce(&Queue) -> Result<HResult>) -> Result<HResult> {
        request(&self.queue).map_err(|error| {
            if error.hresult == hresult::BG_E_NOT_FOUND {
                QmgrError::from_code(hresult::BG_E_INVALID_STATE)
                    .context(format_args!("job {} has left the queue", self.id))
            } else {
                error
            }
        })
    }

    fn set(&self, change: JobChange) -> Result<HResult> {
        self.change(|queue| queue.set_job(self.id, change))
    }

    /// For settings kept in this process: refused once the job left the queue.
    fn ensure_in_queue(&self) -> Result<JobSummary> {
        let view = self.summary()?;
        view.job.ensure_mutable()?;
        Ok(view)
    }

    /// The job ended through this object: remember how, drop its callback.
    fn left_queue(&self, state: JobState) {
        if let Some(view) = self.last_seen.lock().as_mut() {
            view.job.state = state;
        }
        local::ended(self.id, state);
        notify::unregister(self.id);
    }

    /// An upload-reply job's reply as last seen; `E_NOTIMPL` for other job types.
    fn reply(&self) -> Result<qmgr_core::reply::ReplyRecord> {
        self.summary()?
            .job
            .reply
            .map(|reply| *reply)
            .ok_or_else(|| {
                QmgrError::from_code(hresult::E_NOTIMPL)
                    .context("only upload-reply jobs have a reply")
            })
    }

    /// GetReplyData: from the service while the job is queued; once this object completed
    /// it, from the reply file Complete made.
    fn reply_data(&self) -> Result<qmgr_core::reply::ReplyData> {
        let view = self.summary()?;
        let reply = view.job.reply.as_ref().ok_or_else(|| {
            QmgrError::from_code(hresult::E_NOTIMPL).context("only upload-reply jobs have a reply")
        })?;
        if view.job.state == JobState::Acknowledged {
            let file = reply.file_name.as_deref().map(std::path::Path::new);
            return qmgr_core::reply::read_reply(file);
        }
        self.queue.reply_data(self.id)
    }

    fn add_files(&self, files: Vec<NewFile>) -> Result<HResult> {
        self.change(|queue| queue.add_files(self.id, files))
    }

    fn complete(&self) -> Result<HResult> {
        self.summary()?;
        let code = self.change(|queue| queue.complete(self.id))?;
        self.left_queue(JobState::Acknowledged);
        Ok(code)
    }

    fn cancel(&self) -> Result<HResult> {
        self.summary()?;
        let code = self.change(|queue| queue.cancel(self.id))?;
        self.left_queue(JobState::Cancelled);
        Ok(code)
    }

    fn enum_files(&self) -> Result<*mut IEnumBackgroundCopyFiles> {
        // A snapshot: every page now, then no more calls while it is enumerated.
        let items = (0u32..)
            .zip(self.files()?)
            .map(|(index, record)| FileItem {
                job: self.id,
                index,
                record,
            })
            .collect();
        Ok(EnumFilesObject::create(self.queue.clone(), items))
    }

    fn error(&self) -> Result<*mut IBackgroundCopyError> {
        let summary = self.summary()?;
        let error = summary.job.current_error()?.clone();
        // The one file the error names, read alone (none once the job has left the queue).
        let file = match error.file_index {
            Some(index) => self.queue.job_file(self.id, index).ok().flatten(),
            None => None,
        };
        Ok(ErrorObject::create(
            self.queue.clone(),
            self.id,
            error,
            file,
        ))
    }

    fn replace_remote_prefix(&self, old: &str, new: &str) -> Result<HResult> {
        if old.is_empty() || new.is_empty() {
            return Err(QmgrError::invalid_arg("a prefix is empty"));
        }
        let view = self.ensure_in_queue()?;
        if view.job.job_type != qmgr_core::JobType::Download {
            return Err(QmgrError::from_code(hresult::E_NOTIMPL)
                .context("ReplaceRemotePrefix works on download jobs only"));
        }
        let files = self.files()?;
        let renames: Vec<(u32, String)> = (0u32..)
            .zip(&files)
            .filter_map(|(index, file)| {
                file.remote_name
                    .strip_prefix(old)
                    .map(|rest| (index, format!("{new}{rest}")))
            })
            .collect();
        // Check every new name before changing any, so a bad one changes nothing.
        for (_, name) in &renames {
            qmgr_core::file::validate_remote_name(name)?;
        }
        if renames.is_empty() {
            return Ok(hresult::S_FALSE);
        }
        for (file, remote_name) in renames {
            self.set(JobChange::RemoteName { file, remote_name })?;
        }
        Ok(hresult::S_OK)
    }

    fn set_property(
        &self,
        id: BITS_JOB_PROPERTY_ID,
        value: BITS_JOB_PROPERTY_VALUE,
    ) -> Result<HResult> {
        self.ensure_in_queue()?;
        match id {
            BITS_JOB_PROPERTY_MAX_DOWNLOAD_SIZE => {
                // SAFETY: for this id the caller wrote the Uint64 member (plain data).
                let size = unsafe { value.Uint64 };
                self.set(JobChange::MaxDownloadSize((size != 0).then_some(size)))
            }
            BITS_JOB_PROPERTY_ID_COST_FLAGS => {
                // SAFETY: for this id the caller wrote the Dword member (plain data).
                let flags = unsafe { value.Dword };
                // Stored with the job: the service holds it back on a network whose cost
                // state the mask does not contain.
                self.set(JobChange::CostFlags(Some(flags)))
            }
            BITS_JOB_PROPERTY_DYNAMIC_CONTENT => {
                // SAFETY: for this id the caller wrote the Enable member (plain data).
                let enable = unsafe { value.Enable } != FALSE;
                self.set(JobChange::DynamicContent(enable))
            }
            BITS_JOB_PROPERTY_ON_DEMAND_MODE => {
                // SAFETY: for this id the caller wrote the Enable member (plain data).
                let enable = unsafe { value.Enable } != FALSE;
                self.set(JobChange::OnDemand(enable))
            }
            BITS_JOB_PROPERTY_HIGH_PERFORMANCE => {
                // SAFETY: for this id the caller wrote the Enable member (plain data).
                let enable = unsafe { value.Enable } != FALSE;
                self.set(JobChange::HighPerformance(enable))
            }
            BITS_JOB_PROPERTY_USE_STORED_CREDENTIALS => {
                // SAFETY: for this id the caller wrote the Target member (plain data).
                let target = unsafe { value.Target };
                let enable = match target {
                    0 => false,
                    _ => match AuthTarget::from_raw(target)? {
                        AuthTarget::Server => true,
                        AuthTarget::Proxy => {
                            return Err(QmgrError::from_code(
                                hresult::BG_E_USE_STORED_CREDENTIALS_NOT_SUPPORTED,
                            )
                            .context(
                                "stored credentials come from ~/.netrc, which names servers, \
                                 not proxies; give the proxy's with SetCredentials",
                            ));
                        }
                    },
                };
                self.set(JobChange::UseStoredCredentials(enable))
            }
            BITS_JOB_PROPERTY_MINIMUM_NOTIFICATION_INTERVAL_MS => {
                // SAFETY: for this id the caller wrote the Dword member (plain data).
                let milliseconds = unsafe { value.Dword };
                self.set(JobChange::MinimumNotificationInterval(
                    Duration::from_millis(milliseconds.into()),
                ))
            }
            other => Err(unsupported_property(other)),
        }
    }

    fn property(&self, id: BITS_JOB_PROPERTY_ID) -> Result<BITS_JOB_PROPERTY_VALUE> {
        Ok(match id {
            BITS_JOB_PROPERTY_MAX_DOWNLOAD_SIZE => BITS_JOB_PROPERTY_VALUE {
                Uint64: self.summary()?.job.settings.max_download_size.unwrap_or(0),
            },
            BITS_JOB_PROPERTY_MINIMUM_NOTIFICATION_INTERVAL_MS => BITS_JOB_PROPERTY_VALUE {
                Dword: u32::try_from(
                    self.summary()?
                        .job
                        .settings
                        .minimum_notification_interval
                        .as_millis(),
                )
                .unwrap_or(u32::MAX),
            },
            // The service fills in the effective mask: the job's own or its priority's.
            BITS_JOB_PROPERTY_ID_COST_FLAGS => BITS_JOB_PROPERTY_VALUE {
                Dword: self
                    .summary()?
                    .job
                    .settings
                    .cost_flags
                    .unwrap_or(qmgr_core::policy::COST_FLAGS_TRANSFER_ALWAYS),
            },
            BITS_JOB_PROPERTY_DYNAMIC_CONTENT => BITS_JOB_PROPERTY_VALUE {
                Enable: BOOL::from(self.summary()?.job.settings.dynamic_content),
            },
            BITS_JOB_PROPERTY_HIGH_PERFORMANCE => BITS_JOB_PROPERTY_VALUE {
                Enable: BOOL::from(self.summary()?.job.settings.high_performance),
            },
            BITS_JOB_PROPERTY_ON_DEMAND_MODE => BITS_JOB_PROPERTY_VALUE {
                Enable: BOOL::from(self.summary()?.job.settings.on_demand),
            },
            BITS_JOB_PROPERTY_USE_STORED_CREDENTIALS => BITS_JOB_PROPERTY_VALUE {
                Target: if self.summary()?.job.settings.use_stored_credentials {
                    AuthTarget::Server as BG_AUTH_TARGET
                } else {
                    0
                },
            },
            other => return Err(unsupported_property(other)),
        })
    }
}

fn unsupported_property(id: BITS_JOB_PROPERTY_ID) -> QmgrError {
    match id {
        BITS_JOB_PROPERTY_NOTIFICATION_CLSID => QmgrError::from_code(hresult::E_NOTIMPL)
            .context(format_args!("job property {id} is not supported")),
        _ => QmgrError::from_code(hresult::BG_E_UNKNOWN_PROPERTY_ID)
            .context(format_args!("job property {id}")),
    }
}

/// `S-1-22-1-<uid>`: the SID form Samba gives Unix users.
pub(crate) fn owner_sid(uid: u32) -> String {
    format!("S-1-22-1-{uid}")
}

fn seconds(duration: Duration) -> u32 {
    u32::try_from(duration.as_secs()).unwrap_or(u32::MAX)
}

fn proxy_usage(raw: BG_JOB_PROXY_USAGE) -> Result<ProxyUsage> {
    Ok(match raw {
        BG_JOB_PROXY_USAGE_PRECONFIG => ProxyUsage::Preconfig,
        BG_JOB_PROXY_USAGE_NO_PROXY => ProxyUsage::NoProxy,
        BG_JOB_PROXY_USAGE_OVERRIDE => ProxyUsage::Override,
        BG_JOB_PROXY_USAGE_AUTODETECT => ProxyUsage::Autodetect,
        other => return Err(QmgrError::invalid_arg(format!("proxy usage {other}"))),
    })
}

fn file_set(entries: &[BG_FILE_INFO]) -> Result<Vec<NewFile>> {
    entries
        .iter()
        .map(|entry| {
            // SAFETY: the strings of a BG_FILE_INFO array the caller passed are null or
            // NUL-terminated UTF-16 (the interface's contract), which `string` checks.
            let (remote, local) = unsafe {
                (
                    crate::boundary::FromCaller::checked(entry.RemoteName),
                    crate::boundary::FromCaller::checked(entry.LocalName),
                )
            };
            Ok(NewFile {
                remote_name: Ptr::required_string(remote, "RemoteName")?,
                local_name: Ptr::required_string(local, "LocalName")?,
                ranges: None,
            })
        })
        .collect()
}

/// SetCredentials' argument. With NTLM or Negotiate, NULL user name and password ask for the
/// identity the user already has (a Kerberos ticket, as curl's `-u :` does); Basic and
/// Digest need both (`E_INVALIDARG`, as documented).
fn credential(cred: &BG_AUTH_CREDENTIALS) -> Result<Credential> {
    let target = AuthTarget::from_raw(cred.Target)?;
    let scheme = AuthScheme::from_raw(cred.Scheme)?;
    // SAFETY: the union has one member, which every scheme uses; its strings are null or
    // NUL-terminated UTF-16 for the duration of the call (the interface's contract), which
    // `string` checks.
    let (user, password) = unsafe {
        let basic = cred.Credentials.Basic;
        (
            crate::boundary::FromCaller::checked(basic.UserName),
            crate::boundary::FromCaller::checked(basic.Password),
        )
    };
    let (user_name, password) = (
        Ptr::string(user, "UserName")?,
        Ptr::string(password, "Password")?,
    );
    if matches!(scheme, AuthScheme::Basic | AuthScheme::Digest)
        && (user_name.is_none() || password.is_none())
    {
        return Err(QmgrError::invalid_arg(
            "UserName and Password may be NULL only with NTLM or Negotiate (the user's own \
             identity); Basic and Digest need both",
        ));
    }
    Ok(Credential {
        target,
        scheme,
        user_name: user_name.unwrap_or_default(),
        password: Secret::new(password.unwrap_or_default()),
    })
}

/// The hash and subject GetClientCertificate reports: what the caller set, completed from
/// the certificate in the store when this process can find it (the store is read at
/// transfer time, so it may not exist yet). Unknown, the subject is empty and the hash
/// all zeros.
fn certificate_identity(setting: &ClientCertificate) -> ([u8; CERTIFICATE_HASH_LEN], String) {
    let found = crate::runtime::locate_instance()
        .and_then(|instance| instance.paths().certs_dir(&setting.store_name))
        .and_then(|store| certificate::resolve(&store, &setting.selector))
        .ok();
    match &setting.selector {
        CertificateSelector::Sha1(hash) => (*hash, found.map(|f| f.subject).unwrap_or_default()),
        CertificateSelector::Subject(subject) => (
            found.map_or([0; CERTIFICATE_HASH_LEN], |f| f.sha1),
            subject.clone(),
        ),
    }
}

fn not_implemented(what: &str) -> Result<HResult> {
    Err(QmgrError::from_code(hresult::E_NOTIMPL).context(what))
}

thunks! { JobObject, IBackgroundCopyJob, 0;
    fn AddFileSet(job, cFileCount: ULONG, pFileSet: *mut BG_FILE_INFO) {
        if cFileCount == 0 {
            return Err(QmgrError::invalid_arg("cFileCount is 0"));
        }
        if cFileCount > MAX_FILE_SET {
            return Err(QmgrError::from_code(hresult::BG_E_TOO_MANY_FILES_IN_JOB)
                .context(format_args!("{cFileCount} files in one call")));
        }
        job.add_files(file_set(pFileSet.slice(cFileCount as usize, "pFileSet")?)?)
    }
    fn AddFile(job, RemoteUrl: LPCWSTR, LocalName: LPCWSTR) {
        job.add_files(vec![NewFile {
            remote_name: RemoteUrl.required_string("RemoteUrl")?,
            local_name: LocalName.required_string("LocalName")?,
            ranges: None,
        }])
    }
    fn EnumFiles(job, pEnum: *mut *mut IEnumBackgroundCopyFiles) {
        let out = pEnum.out("pEnum")?;
        out.set(job.enum_files()?);
        Ok(hresult::S_OK)
    }
    fn Suspend(job) { job.change(|queue| queue.suspend(job.id)) }
    fn Resume(job) { job.change(|queue| queue.resume(job.id)) }
    fn Cancel(job) { job.cancel() }
    fn Complete(job) { job.complete() }
    fn GetId(job, pVal: *mut GUID) {
        pVal.out("pVal")?.set(job.id.into());
        Ok(hresult::S_OK)
    }
    fn GetType(job, pVal: *mut BG_JOB_TYPE) {
        let out = pVal.out("pVal")?;
        out.set(job.summary()?.job.job_type as BG_JOB_TYPE);
        Ok(hresult::S_OK)
    }
    fn GetProgress(job, pVal: *mut BG_JOB_PROGRESS) {
        let out = pVal.out("pVal")?;
        let progress = job.summary()?.progress;
        out.set(BG_JOB_PROGRESS {
            BytesTotal: progress.bytes_total,
            BytesTransferred: progress.bytes_transferred,
            FilesTotal: progress.files_total,
            FilesTransferred: progress.files_transferred,
        });
        Ok(hresult::S_OK)
    }
    fn GetTimes(job, pVal: *mut BG_JOB_TIMES) {
        let out = pVal.out("pVal")?;
        let times = job.summary()?.job.times;
        out.set(BG_JOB_TIMES {
            CreationTime: FILETIME::from_ticks(times.created.to_filetime()),
            ModificationTime: FILETIME::from_ticks(times.modified.to_filetime()),
            TransferCompletionTime: FILETIME::from_ticks(times.transfer_completed.to_filetime()),
        });
        Ok(hresult::S_OK)
    }
    fn GetState(job, pVal: *mut BG_JOB_STATE) {
        let out = pVal.out("pVal")?;
        out.set(job.summary()?.job.state as BG_JOB_STATE);
        Ok(hresult::S_OK)
    }
    fn GetError(job, ppError: *mut *mut IBackgroundCopyError) {
        let out = ppError.out("ppError")?;
        out.set(job.error()?);
        Ok(hresult::S_OK)
    }
    fn GetOwner(job, pVal: *mut LPWSTR) {
        let out = pVal.out("pVal")?;
        out.set(to_co_task(&owner_sid(job.summary()?.job.owner_uid))?);
        Ok(hresult::S_OK)
    }
    fn SetDisplayName(job, Val: LPCWSTR) {
        job.set(JobChange::DisplayName(Val.required_string("Val")?))
    }
    fn GetDisplayName(job, pVal: *mut LPWSTR) {
        let out = pVal.out("pVal")?;
        out.set(to_co_task(&job.summary()?.job.display_name)?);
        Ok(hresult::S_OK)
    }
    fn SetDescription(job, Val: LPCWSTR) {
        job.set(JobChange::Description(Val.required_string("Val")?))
    }
    fn GetDescription(job, pVal: *mut LPWSTR) {
        let out = pVal.out("pVal")?;
        out.set(to_co_task(&job.summary()?.job.description)?);
        Ok(hresult::S_OK)
    }
    fn SetPriority(job, Val: BG_JOB_PRIORITY) {
        // Windows answers E_NOTIMPL, not E_INVALIDARG, for a priority outside 0..=3.
        let priority = JobPriority::from_raw(Val).ok_or_else(|| {
            QmgrError::from_code(hresult::E_NOTIMPL).context(format_args!("priority {Val}"))
        })?;
        job.set(JobChange::Priority(priority))
    }
    fn GetPriority(job, pVal: *mut BG_JOB_PRIORITY) {
        let out = pVal.out("pVal")?;
        out.set(job.summary()?.job.priority as BG_JOB_PRIORITY);
        Ok(hresult::S_OK)
    }
    fn SetNotifyFlags(job, Val: ULONG) { job.set(JobChange::NotifyFlags(Val)) }
    fn GetNotifyFlags(job, pVal: *mut ULONG) {
        let out = pVal.out("pVal")?;
        out.set(job.summary()?.job.settings.notify_flags);
        Ok(hresult::S_OK)
    }
    fn SetNotifyInterface(job, Val: *mut IUnknown) {
        let view = job.ensure_in_queue()?;
        // The callbacks follow the process's own queue; another user's job, which root
        // reaches through that user's qmgrd, is watched by polling instead.
        if !Val.raw().is_null() && !Arc::ptr_eq(&job.queue, &crate::runtime::service()?) {
            return Err(QmgrError::from_code(hresult::E_NOTIMPL).context(format_args!(
                "job {} belongs to another user's qmgrd, whose notifications are not delivered \
                 to this process; poll it (GetState, GetProgress) instead",
                job.id
            )));
        }
        notify::register(&job.queue, &view, Val.raw())?;
        Ok(hresult::S_OK)
    }
    fn GetNotifyInterface(job, pVal: *mut *mut IUnknown) {
        let out = pVal.out("pVal")?;
        out.set(notify::registered(job.id));
        Ok(hresult::S_OK)
    }
    fn SetMinimumRetryDelay(job, Seconds: ULONG) {
        job.set(JobChange::MinimumRetryDelay(Duration::from_secs(Seconds.into())))
    }
    fn GetMinimumRetryDelay(job, Seconds: *mut ULONG) {
        let out = Seconds.out("Seconds")?;
        out.set(seconds(job.summary()?.job.settings.minimum_retry_delay));
        Ok(hresult::S_OK)
    }
    fn SetNoProgressTimeout(job, Seconds: ULONG) {
        job.set(JobChange::NoProgressTimeout(Duration::from_secs(Seconds.into())))
    }
    fn GetNoProgressTimeout(job, Seconds: *mut ULONG) {
        let out = Seconds.out("Seconds")?;
        out.set(seconds(job.summary()?.job.settings.no_progress_timeout));
        Ok(hresult::S_OK)
    }
    fn GetErrorCount(job, Errors: *mut ULONG) {
        let out = Errors.out("Errors")?;
        out.set(job.summary()?.job.error_count);
        Ok(hresult::S_OK)
    }
    fn SetProxySettings(job, ProxyUsage: BG_JOB_PROXY_USAGE, ProxyList: *const WCHAR, ProxyBypassList: *const WCHAR) {
        job.set(JobChange::Proxy(ProxySettings {
            usage: proxy_usage(ProxyUsage)?,
            proxy_list: ProxyList.string("ProxyList")?,
            bypass_list: ProxyBypassList.string("ProxyBypassList")?,
        }))
    }
    fn GetProxySettings(job, pProxyUsage: *mut BG_JOB_PROXY_USAGE, pProxyList: *mut LPWSTR, pProxyBypassList: *mut LPWSTR) {
        let (usage, list, bypass) = (
            pProxyUsage.out("pProxyUsage")?,
            pProxyList.out("pProxyList")?,
            pProxyBypassList.out("pProxyBypassList")?,
        );
        let proxy = job.summary()?.job.settings.proxy;
        let list_text = to_co_task_optional(proxy.proxy_list.as_deref())?;
        let bypass_text = to_co_task_optional(proxy.bypass_list.as_deref())?;
        usage.set(proxy.usage as BG_JOB_PROXY_USAGE);
        list.set(list_text);
        bypass.set(bypass_text);
        Ok(hresult::S_OK)
    }
    fn TakeOwnership(job) { job.change(|queue| queue.take_ownership(job.id)) }
}

thunks! { JobObject, IBackgroundCopyJob2, 0;
    fn SetNotifyCmdLine(job, prog: LPCWSTR, params: LPCWSTR) {
        let command = match prog.string("prog")? {
            Some(program) => Some(NotifyCommand { program, parameters: params.string("params")? }),
            None => None,
        };
        job.set(JobChange::NotifyCommand(command))
    }
    fn GetNotifyCmdLine(job, prog: *mut LPWSTR, params: *mut LPWSTR) {
        let (program_out, parameters_out) = (prog.out("prog")?, params.out("params")?);
        // Microsoft documents empty strings, never NULL, when no command line is set.
        let command = job.summary()?.job.settings.notify_command;
        let program = to_co_task(command.as_ref().map_or("", |c| c.program.as_str()))?;
        let parameters = to_co_task(command.as_ref().and_then(|c| c.parameters.as_deref()).unwrap_or(""))?;
        program_out.set(program);
        parameters_out.set(parameters);
        Ok(hresult::S_OK)
    }
    fn GetReplyProgress(job, progress: *mut BG_JOB_REPLY_PROGRESS) {
        if progress.is_null() {
            return Err(QmgrError::invalid_arg("progress is NULL"));
        }
        let out = progress.out("progress")?;
        let reply = job.reply()?;
        out.set(BG_JOB_REPLY_PROGRESS {
            BytesTotal: reply.bytes_total,
            BytesTransferred: reply.bytes,
        });
        Ok(hresult::S_OK)
    }
    fn GetReplyData(job, pBuffer: *mut *mut byte, pLength: *mut UINT64) {
        let (buffer, length) = (pBuffer.out("pBuffer")?, pLength.out("pLength")?);
        let data = job.reply_data()?;
        length.set(data.size);
        if data.too_large() {
            return Err(QmgrError::from_code(hresult::BG_E_TOO_LARGE).context(format_args!(
                "the reply is {} bytes, more than GetReplyData hands over ({} bytes): read the \
                 reply file after Complete",
                data.size,
                qmgr_core::reply::MAX_REPLY_DATA
            )));
        }
        // No reply, or an empty one: a NULL buffer, as Microsoft documents.
        if let Some(bytes) = data.data.filter(|bytes| !bytes.is_empty()) {
            buffer.set(memory::co_task_copy(&bytes)?);
        }
        Ok(hresult::S_OK)
    }
    fn SetReplyFileName(job, filename: LPCWSTR) {
        let name = filename.string("filename")?;
        job.reply()?;
        job.set(JobChange::ReplyFileName(name))
    }
    fn GetReplyFileName(job, pFilename: *mut LPWSTR) {
        let out = pFilename.out("pFilename")?;
        let reply = job.reply()?;
        out.set(to_co_task_optional(reply.file_name.as_deref())?);
        Ok(hresult::S_OK)
    }
    fn SetCredentials(job, cred: *mut BG_AUTH_CREDENTIALS) {
        job.set(JobChange::Credentials(credential(&cred.read("cred")?)?))
    }
    fn RemoveCredentials(job, target: BG_AUTH_TARGET, scheme: BG_AUTH_SCHEME) {
        let (target, scheme) = (AuthTarget::from_raw(target)?, AuthScheme::from_raw(scheme)?);
        job.set(JobChange::RemoveCredentials { target, scheme })
    }
}

thunks! { JobObject, IBackgroundCopyJob3, 0;
    fn ReplaceRemotePrefix(job, OldPrefix: LPCWSTR, NewPrefix: LPCWSTR) {
        job.replace_remote_prefix(
            &OldPrefix.required_string("OldPrefix")?,
            &NewPrefix.required_string("NewPrefix")?,
        )
    }
    fn AddFileWithRanges(job, RemoteUrl: LPCWSTR, LocalName: LPCWSTR, RangeCount: DWORD, Ranges: *mut BG_FILE_RANGE) {
        // The ranges are checked by the service (a count of 0 included); a count beyond
        // the limit is refused before the caller's array is read.
        let count = RangeCount as usize;
        if count > ranges::MAX_RANGES_PER_FILE {
            return Err(QmgrError::from_code(hresult::BG_E_TOO_MANY_RANGES_IN_FILE).context(
                format_args!("{count} ranges for one file; the most is {}", ranges::MAX_RANGES_PER_FILE),
            ));
        }
        let ranges = Ranges
            .slice(count, "Ranges")?
            .iter()
            .map(|range| FileRange { offset: range.InitialOffset, length: range.Length })
            .collect();
        job.add_files(vec![NewFile {
            remote_name: RemoteUrl.required_string("RemoteUrl")?,
            local_name: LocalName.required_string("LocalName")?,
            ranges: Some(ranges),
        }])
    }
    fn SetFileACLFlags(job, Flags: DWORD) {
        if Flags & !BG_COPY_FILE_ALL != 0 {
            return Err(QmgrError::invalid_arg(format!("file ACL flags 0x{Flags:X}")));
        }
        job.ensure_in_queue()?;
        local::update_settings(job.id, |s| s.file_acl_flags = Flags);
        Ok(hresult::S_OK)
    }
    fn GetFileACLFlags(job, Flags: *mut DWORD) {
        Flags.out("Flags")?.set(local::settings(job.id).file_acl_flags);
        Ok(hresult::S_OK)
    }
}

thunks! { JobObject, IBackgroundCopyJob4, 0;
    fn SetPeerCachingFlags(job, flags: DWORD) {
        let valid = BG_JOB_ENABLE_PEERCACHING_CLIENT | BG_JOB_ENABLE_PEERCACHING_SERVER | BG_JOB_DISABLE_BRANCH_CACHE;
        if flags & !valid != 0 {
            return Err(QmgrError::invalid_arg(format!("peer caching flags 0x{flags:X}")));
        }
        job.ensure_in_queue()?;
        local::update_settings(job.id, |s| s.peer_caching_flags = flags);
        Ok(hresult::S_OK)
    }
    fn GetPeerCachingFlags(job, flags: *mut DWORD) {
        flags.out("flags")?.set(local::settings(job.id).peer_caching_flags);
        Ok(hresult::S_OK)
    }
    fn GetOwnerIntegrityLevel(job, level: *mut ULONG) {
        let out = level.out("level")?;
        let root = job.summary()?.job.owner_uid == 0;
        out.set(if root { INTEGRITY_HIGH } else { INTEGRITY_MEDIUM });
        Ok(hresult::S_OK)
    }
    fn GetOwnerElevationState(job, elevated: *mut WINBOOL) {
        let out = elevated.out("elevated")?;
        out.set(BOOL::from(job.summary()?.job.owner_uid == 0));
        Ok(hresult::S_OK)
    }
    fn SetMaximumDownloadTime(job, timeout: ULONG) {
        job.set(JobChange::MaximumDownloadTime(Duration::from_secs(timeout.into())))
    }
    fn GetMaximumDownloadTime(job, timeout: *mut ULONG) {
        let out = timeout.out("timeout")?;
        out.set(seconds(job.summary()?.job.settings.maximum_download_time));
        Ok(hresult::S_OK)
    }
}

thunks! { JobObject, IBackgroundCopyJob5, 0;
    fn SetProperty(job, id: BITS_JOB_PROPERTY_ID, value: BITS_JOB_PROPERTY_VALUE) {
        job.set_property(id, value)
    }
    fn GetProperty(job, id: BITS_JOB_PROPERTY_ID, value: *mut BITS_JOB_PROPERTY_VALUE) {
        let out = value.out("value")?;
        out.set(job.property(id)?);
        Ok(hresult::S_OK)
    }
}

thunks! { JobObject, IBackgroundCopyJobHttpOptions, HTTP_OPTIONS;
    fn SetClientCertificateByID(job, StoreLocation: BG_CERT_STORE_LOCATION, StoreName: LPCWSTR, pCertHashBlob: *mut BYTE) {
        let store_name = StoreName.required_string("StoreName")?;
        let hash = pCertHashBlob.slice(CERTIFICATE_HASH_LEN, "pCertHashBlob")?;
        let hash = <[u8; CERTIFICATE_HASH_LEN]>::try_from(hash)
            .map_err(|_| QmgrError::internal("a certificate hash of the wrong length"))?;
        job.set(JobChange::ClientCertificate(Some(ClientCertificate {
            store_location: StoreLocation,
            store_name,
            selector: CertificateSelector::Sha1(hash),
        })))
    }
    fn SetClientCertificateByName(job, StoreLocation: BG_CERT_STORE_LOCATION, StoreName: LPCWSTR, SubjectName: LPCWSTR) {
        let store_name = StoreName.required_string("StoreName")?;
        let subject = SubjectName.required_string("SubjectName")?;
        job.set(JobChange::ClientCertificate(Some(ClientCertificate {
            store_location: StoreLocation,
            store_name,
            selector: CertificateSelector::Subject(subject),
        })))
    }
    fn RemoveClientCertificate(job) {
        job.set(JobChange::ClientCertificate(None))
    }
    fn GetClientCertificate(job, pStoreLocation: *mut BG_CERT_STORE_LOCATION, pStoreName: *mut LPWSTR, ppCertHashBlob: *mut *mut BYTE, pSubjectName: *mut LPWSTR) {
        let outs = (
            pStoreLocation.out("pStoreLocation")?,
            pStoreName.out("pStoreName")?,
            ppCertHashBlob.out("ppCertHashBlob")?,
            pSubjectName.out("pSubjectName")?,
        );
        let Some(setting) = job.summary()?.job.settings.client_certificate else {
            // What Windows answers for a job without a certificate.
            return Err(QmgrError::from_code(hresult::HRESULT_RPC_X_BAD_STUB_DATA)
                .context("the job has no client certificate"));
        };
        let (hash, subject) = certificate_identity(&setting);
        let store_name = to_co_task(&setting.store_name)?;
        let hash = memory::co_task_copy(&hash)?;
        let subject = to_co_task(&subject)?;
        outs.0.set(setting.store_location);
        outs.1.set(store_name);
        outs.2.set(hash);
        outs.3.set(subject);
        Ok(hresult::S_OK)
    }
    fn SetCustomHeaders(job, RequestHeaders: LPCWSTR) {
        // The service checks the block's length (BG_E_STRING_TOO_LONG) and its lines.
        job.set(JobChange::CustomHeaders(RequestHeaders.string("RequestHeaders")?))
    }
    fn GetCustomHeaders(job, pRequestHeaders: *mut LPWSTR) {
        let out = pRequestHeaders.out("pRequestHeaders")?;
        let settings = job.summary()?.job.settings;
        if settings.custom_headers_write_only {
            out.set(std::ptr::null_mut());
            return Err(QmgrError::from_code(hresult::E_ACCESSDENIED)
                .context("the job's custom headers are write-only (MakeCustomHeadersWriteOnly)"));
        }
        if let Some(text) = settings.custom_headers {
            out.set(to_co_task(&text)?);
            Ok(hresult::S_OK)
        } else {
            out.set(std::ptr::null_mut());
            Ok(hresult::S_FALSE)
        }
    }
    fn SetSecurityFlags(job, Flags: ULONG) {
        if Flags & !VALID_SECURITY_FLAGS != 0 {
            return Err(QmgrError::invalid_arg(format!("security flags 0x{Flags:X}")));
        }
        job.set(JobChange::SecurityFlags(Flags))
    }
    fn GetSecurityFlags(job, pFlags: *mut ULONG) {
        let out = pFlags.out("pFlags")?;
        out.set(job.summary()?.job.settings.security_flags);
        Ok(hresult::S_OK)
    }
}

const JOB_VTBL: IBackgroundCopyJob5Vtbl = IBackgroundCopyJob5Vtbl {
    base: IBackgroundCopyJob4Vtbl {
        base: IBackgroundCopyJob3Vtbl {
            base: IBackgroundCopyJob2Vtbl {
                base: IBackgroundCopyJobVtbl {
                    base: unknown_vtbl::<JobObject, 0>(),
                    AddFileSet,
                    AddFile,
                    EnumFiles,
                    Suspend,
                    Resume,
                    Cancel,
                    Complete,
                    GetId,
                    GetType,
                    GetProgress,
                    GetTimes,
                    GetState,
                    GetError,
                    GetOwner,
                    SetDisplayName,
                    GetDisplayName,
                    SetDescription,
                    GetDescription,
                    SetPriority,
                    GetPriority,
                    SetNotifyFlags,
                    GetNotifyFlags,
                    SetNotifyInterface,
                    GetNotifyInterface,
                    SetMinimumRetryDelay,
                    GetMinimumRetryDelay,
                    SetNoProgressTimeout,
                    GetNoProgressTimeout,
                    GetErrorCount,
                    SetProxySettings,
                    GetProxySettings,
                    TakeOwnership,
                },
                SetNotifyCmdLine,
                GetNotifyCmdLine,
                GetReplyProgress,
                GetReplyData,
                SetReplyFileName,
                GetReplyFileName,
                SetCredentials,
                RemoveCredentials,
            },
            ReplaceRemotePrefix,
            AddFileWithRanges,
            SetFileACLFlags,
            GetFileACLFlags,
        },
        SetPeerCachingFlags,
        GetPeerCachingFlags,
        GetOwnerIntegrityLevel,
        GetOwnerElevationState,
        SetMaximumDownloadTime,
        GetMaximumDownloadTime,
    },
    SetProperty,
    GetProperty,
};

thunks! { JobObject, IBackgroundCopyJobHttpOptions2, HTTP_OPTIONS;
    fn SetHttpMethod(job, method: LPCWSTR) {
        // The service checks the token, moves the job to the foreground, and refuses what
        // it cannot change.
        job.set(JobChange::HttpMethod(method.required_string("method")?))
    }
    fn GetHttpMethod(job, method: *mut LPWSTR) {
        let out = method.out("method")?;
        let name = job.summary()?.job.settings.http_method;
        out.set(to_co_task(name.as_deref().unwrap_or("GET"))?);
        Ok(hresult::S_OK)
    }
}

thunks! { JobObject, IBackgroundCopyJobHttpOptions3, HTTP_OPTIONS;
    fn SetServerCertificateValidationInterface(job, certValidationCallback: *mut IUnknown) {
        job.ensure_in_queue()?;
        job.change(|queue| {
            cert_callback::register(queue, job.id, certValidationCallback.raw())
                .map(|()| hresult::S_OK)
        })
    }
    fn MakeCustomHeadersWriteOnly(job) {
        job.set(JobChange::MakeCustomHeadersWriteOnly)
    }
}

const HTTP_OPTIONS_VTBL: IBackgroundCopyJobHttpOptions3Vtbl = IBackgroundCopyJobHttpOptions3Vtbl {
    base: IBackgroundCopyJobHttpOptions2Vtbl {
        base: IBackgroundCopyJobHttpOptionsVtbl {
            base: unknown_vtbl::<JobObject, HTTP_OPTIONS>(),
            SetClientCertificateByID,
            SetClientCertificateByName,
            RemoveClientCertificate,
            GetClientCertificate,
            SetCustomHeaders,
            GetCustomHeaders,
            SetSecurityFlags,
            GetSecurityFlags,
        },
        SetHttpMethod,
        GetHttpMethod,
    },
    SetServerCertificateValidationInterface,
    MakeCustomHeadersWriteOnly,
};

/// Windows helper tokens have no meaning on Linux: the transfers run as the job's owner.
fn no_helper_tokens() -> Result<HResult> {
    not_implemented("helper tokens do not exist on Linux")
}

thunks! { JobObject, IBitsTokenOptions, TOKEN_OPTIONS;
    fn SetHelperTokenFlags(job, UsageFlags: BG_TOKEN) {
        let _ = (job, UsageFlags);
        no_helper_tokens()
    }
    fn GetHelperTokenFlags(job, pFlags: *mut BG_TOKEN) {
        let _ = (job, pFlags);
        no_helper_tokens()
    }
    fn SetHelperToken(job) {
        let _ = job;
        no_helper_tokens()
    }
    fn ClearHelperToken(job) {
        let _ = job;
        no_helper_tokens()
    }
    fn GetHelperTokenSid(job, pSid: *mut LPWSTR) {
        let _ = (job, pSid);
        no_helper_tokens()
    }
}

const TOKEN_OPTIONS_VTBL: IBitsTokenOptionsVtbl = IBitsTokenOptionsVtbl {
    base: unknown_vtbl::<JobObject, TOKEN_OPTIONS>(),
    SetHelperTokenFlags,
    GetHelperTokenFlags,
    SetHelperToken,
    ClearHelperToken,
    GetHelperTokenSid,
};
