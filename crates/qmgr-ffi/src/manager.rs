//! The manager object (IBackgroundCopyManager): CoCreateInstance's answer for
//! `CLSID_BackgroundCopyManager` and its versioned CLSIDs. Its QueryInterface also hands
//! out IBitsPeerCacheAdministration, as Windows' does (see `peer_cache`).

#![allow(
    clippy::wildcard_imports,
    reason = "the ABI modules are imported whole: their names are Windows'; clippy skips this lint when the crate is built for its unit tests, so `expect` would fail there"
)]

use std::mem::offset_of;
use std::sync::Arc;

use qmgr_core::hresult::{self, HResult, description_for};
use qmgr_core::service::{JobSummary, QueueServiceExt};
use qmgr_core::{Guid, JobType, QmgrError};
use qmgr_ipc::users::{self, UserQueue};

use crate::abi::bits::*;
use crate::abi::types::*;
use crate::boundary::thunks;
use crate::com::{Class, ComObject, unknown_vtbl};
use crate::enums::{EnumJobsObject, JobItem};
use crate::job::JobObject;
use crate::peer_cache;
use crate::runtime::{Queue, secure_env};
use crate::strings::to_co_task;

pub(crate) struct ManagerObject {
    queue: Queue,
}

#[repr(C)]
pub(crate) struct ManagerHeader {
    manager: &'static IBackgroundCopyManagerVtbl,
    peer_cache_administration: &'static IBitsPeerCacheAdministrationVtbl,
}

/// Where the manager's IBitsPeerCacheAdministration pointer sits (see [`peer_cache`]).
pub(crate) const PEER_CACHE_ADMINISTRATION: usize =
    offset_of!(ManagerHeader, peer_cache_administration);

// SAFETY: ManagerHeader is #[repr(C)] of vtable references; offset 0 serves
// IBackgroundCopyManager, PEER_CACHE_ADMINISTRATION IBitsPeerCacheAdministration.
unsafe impl Class for ManagerObject {
    type Header = ManagerHeader;
    const HEADER: ManagerHeader = ManagerHeader {
        manager: &MANAGER_VTBL,
        peer_cache_administration: &peer_cache::ADMINISTRATION_VTBL,
    };
    const INTERFACES: &'static [(GUID, usize)] = &[
        (IID_IUnknown, 0),
        (IID_IBackgroundCopyManager, 0),
        (IID_IBitsPeerCacheAdministration, PEER_CACHE_ADMINISTRATION),
    ];
}

impl ManagerObject {
    pub(crate) fn create(queue: Queue) -> *mut IBackgroundCopyManager {
        ComObject::create(ManagerObject { queue })
    }
}

impl ManagerObject {
    /// Whether the queue serves this process as root, who also reaches every user's
    /// running qmgrd (DESIGN "Owner and other users").
    fn is_administrator(&self) -> bool {
        self.queue.caller_uid() == Some(0)
    }
}

/// Every other user's running qmgrd that passes the checks of [`qmgr_ipc::users`], under
/// `$QMGR_USER_RUNTIME_ROOT` (read with `secure_getenv`) or `/run/user`. The others are
/// skipped.
fn other_users() -> Vec<UserQueue> {
    let root = users::user_runtime_root(secure_env(users::USER_RUNTIME_ROOT_VAR));
    users::scan(&root)
        .map(|scan| scan.queues)
        .unwrap_or_default()
}

/// Job `id` in another user's running qmgrd, with that daemon's queue.
fn other_users_job(id: Guid) -> Option<(Queue, JobSummary)> {
    other_users().into_iter().find_map(|user| {
        let summary = user.job_summary(id).ok()?;
        let queue: Queue = Arc::new(user);
        Some((queue, summary))
    })
}

thunks! { ManagerObject, IBackgroundCopyManager, 0;
    fn CreateJob(manager, DisplayName: LPCWSTR, Type: BG_JOB_TYPE, pJobId: *mut GUID, ppJob: *mut *mut IBackgroundCopyJob) {
        let (id_out, job_out) = (pJobId.out("pJobId")?, ppJob.out("ppJob")?);
        let name = DisplayName.required_string("DisplayName")?;
        let job_type = JobType::from_raw(Type)
            .ok_or_else(|| QmgrError::invalid_arg(format!("job type {Type}")))?;
        let id = manager.queue.create_job(&name, job_type)?;
        id_out.set(id.into());
        job_out.set(JobObject::create(manager.queue.clone(), id, None));
        Ok(hresult::S_OK)
    }
    fn GetJob(manager, jobID: REFGUID, ppJob: *mut *mut IBackgroundCopyJob) {
        let out = ppJob.out("ppJob")?;
        let id = Guid::from(jobID.read("jobID")?);
        let (queue, summary) = match manager.queue.job_summary(id) {
            Ok(summary) => (manager.queue.clone(), summary),
            // Root's GetJob also searches every user's running qmgrd.
            Err(error) if error.hresult == hresult::BG_E_NOT_FOUND && manager.is_administrator() => {
                other_users_job(id).ok_or(error)?
            }
            Err(error) => return Err(error),
        };
        out.set(JobObject::create(queue, id, Some(summary)));
        Ok(hresult::S_OK)
    }
    fn EnumJobs(manager, dwFlags: DWORD, ppEnum: *mut *mut IEnumBackgroundCopyJobs) {
        let out = ppEnum.out("ppEnum")?;
        if dwFlags & !BG_JOB_ENUM_ALL_USERS != 0 {
            return Err(QmgrError::invalid_arg(format!("EnumJobs flags 0x{dwFlags:X}")));
        }
        let all_users = dwFlags & BG_JOB_ENUM_ALL_USERS != 0;
        // The caller's own queue decides who may list every user's jobs.
        let mut jobs: Vec<JobItem> = manager
            .queue
            .job_summaries(all_users)?
            .into_iter()
            .map(|summary| JobItem { queue: None, summary })
            .collect();
        if all_users && manager.is_administrator() {
            for user in other_users() {
                let queue: Queue = Arc::new(user);
                // A user's qmgrd that fails now is skipped, as one not running is.
                if let Ok(summaries) = queue.job_summaries(true) {
                    jobs.extend(summaries.into_iter().map(|summary| JobItem {
                        queue: Some(queue.clone()),
                        summary,
                    }));
                }
            }
        }
        out.set(EnumJobsObject::create(manager.queue.clone(), jobs));
        Ok(hresult::S_OK)
    }
    fn GetErrorDescription(manager, hResult: HRESULT, LanguageId: DWORD, pErrorDescription: *mut LPWSTR) {
        // Descriptions exist in English only; every language gets them.
        let _ = (manager, LanguageId);
        let out = pErrorDescription.out("pErrorDescription")?;
        let text = description_for(HResult(hResult)).ok_or_else(|| {
            QmgrError::from_code(hresult::HRESULT_MR_MID_NOT_FOUND)
                .context(format_args!("no description for {}", HResult(hResult)))
        })?;
        out.set(to_co_task(&text)?);
        Ok(hresult::S_OK)
    }
}

const MANAGER_VTBL: IBackgroundCopyManagerVtbl = IBackgroundCopyManagerVtbl {
    base: unknown_vtbl::<ManagerObject, 0>(),
    CreateJob,
    GetJob,
    EnumJobs,
    GetErrorDescription,
};
