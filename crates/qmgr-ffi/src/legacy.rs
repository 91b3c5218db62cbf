//! The legacy group API of qmgr.h: IBackgroundCopyQMgr, IBackgroundCopyGroup and
//! IBackgroundCopyJob1. A group holds one job (an ordinary job of the queue, created with
//! the caller's GUID); each file is renamed to its final name as soon as it is transferred,
//! so a group needs no Complete. Sizes and progress are 32-bit here and clamp at
//! 0xFFFFFFFF. IBackgroundCopyCallback1 objects registered with SetNotificationPointer are
//! called (legacy_notify.rs); a GROUPPROP_NOTIFYCLSID is stored but, with no COM activation
//! on Linux, never instantiated.

#![allow(
    clippy::wildcard_imports,
    reason = "the ABI modules are imported whole: their names are Windows'; clippy skips this lint when the crate is built for its unit tests, so `expect` would fail there"
)]

use std::str::FromStr;

use qmgr_core::group;
use qmgr_core::hresult::{self, HResult};
use qmgr_core::job::JobPriority;
use qmgr_core::service::{
    GroupChange, GroupView, JobChange, JobSummary, NewFile, QueueServiceExt, Request,
};
use qmgr_core::{Guid, JobProgress, JobState, QmgrError, Result};

use crate::abi::bits::IID_IUnknown;
use crate::abi::qmgr::*;
use crate::abi::types::*;
use crate::boundary::{FromCaller, Ptr, thunks};
use crate::com::{Class, ComObject, unknown_vtbl};
use crate::enums::{EnumGroupsObject, EnumJobs1Object};
use crate::oleaut;
use crate::runtime::Queue;

/// The only group priority there is.
const GROUP_PRIORITY: i32 = 1;
const MAX_DISPLAY_NAME_CHARS: usize = 256;
const MAX_DESCRIPTION_CHARS: usize = 1024;

fn clamp32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// The legacy API knows no BG_E codes: a job or group that is gone is QM_E_ITEM_NOT_FOUND.
fn legacy_error(error: QmgrError) -> QmgrError {
    if error.hresult == hresult::BG_E_NOT_FOUND {
        QmgrError::new(
            hresult::QM_E_ITEM_NOT_FOUND,
            error.context,
            error.description,
        )
    } else {
        error
    }
}

fn run(queue: &Queue, request: Request) -> Result<HResult> {
    queue.execute(request).map_err(legacy_error)?;
    Ok(hresult::S_OK)
}

/// `QM_PROGRESS_*` of a job: percent done or bytes done.
pub(crate) fn legacy_progress(job: Option<(JobState, JobProgress)>, flags: DWORD) -> Result<u32> {
    let (done, total) = job.map_or((0, 0), |(_, progress)| {
        (progress.bytes_transferred, progress.bytes_total)
    });
    match flags {
        QM_PROGRESS_PERCENT_DONE => Ok(match total {
            qmgr_core::file::SIZE_UNKNOWN => 0,
            0 => {
                let finished = job.is_some_and(|(state, _)| {
                    matches!(state, JobState::Transferred | JobState::Acknowledged)
                });
                if finished { 100 } else { 0 }
            }
            total => clamp32(done.min(total) * 100 / total),
        }),
        QM_PROGRESS_SIZE_DONE => Ok(clamp32(done)),
        QM_PROGRESS_TIME_DONE => Err(QmgrError::from_code(hresult::E_NOTIMPL)
            .context("QM_PROGRESS_TIME_DONE is not supported")),
        other => Err(QmgrError::invalid_arg(format!("progress flags {other}"))),
    }
}

/// The Win32 result (the code of a FACILITY_WIN32 error, 0 for others) and the transport
/// result (the HTTP status) the legacy API reports for a job's error.
pub(crate) fn legacy_results(error: Option<HResult>) -> (u32, u32) {
    let win32 = error
        .filter(|code| code.facility() == 7)
        .map_or(0, |code| code.bits() & 0xFFFF);
    let transport = error.and_then(HResult::http_status).map_or(0, u32::from);
    (win32, transport)
}

/// The legacy queue manager (CLSID_BackgroundCopyQMgr).
pub(crate) struct QMgrObject {
    queue: Queue,
}

// SAFETY: one vtable reference at offset 0 serving IBackgroundCopyQMgr.
unsafe impl Class for QMgrObject {
    type Header = &'static IBackgroundCopyQMgrVtbl;
    const HEADER: Self::Header = &QMGR_VTBL;
    const INTERFACES: &'static [(GUID, usize)] = &[(IID_IUnknown, 0), (IID_IBackgroundCopyQMgr, 0)];
}

impl QMgrObject {
    pub(crate) fn create(queue: Queue) -> *mut IBackgroundCopyQMgr {
        ComObject::create(QMgrObject { queue })
    }
}

thunks! { QMgrObject, IBackgroundCopyQMgr, 0;
    fn CreateGroup(qmgr, guidGroupID: GUID, ppGroup: *mut *mut IBackgroundCopyGroup) {
        let out = ppGroup.out("ppGroup")?;
        let id = Guid::from(guidGroupID);
        qmgr.queue.create_group(id)?;
        out.set(GroupObject::create(qmgr.queue.clone(), id));
        Ok(hresult::S_OK)
    }
    fn GetGroup(qmgr, groupID: GUID, ppGroup: *mut *mut IBackgroundCopyGroup) {
        let out = ppGroup.out("ppGroup")?;
        let id = Guid::from(groupID);
        qmgr.queue.group(id).map_err(legacy_error)?;
        out.set(GroupObject::create(qmgr.queue.clone(), id));
        Ok(hresult::S_OK)
    }
    fn EnumGroups(qmgr, dwFlags: DWORD, ppEnumGroups: *mut *mut IEnumBackgroundCopyGroups) {
        let out = ppEnumGroups.out("ppEnumGroups")?;
        if dwFlags != 0 {
            return Err(QmgrError::from_code(hresult::E_NOTIMPL)
                .context(format_args!("EnumGroups flags 0x{dwFlags:X}")));
        }
        let ids = qmgr.queue.groups()?.into_iter().map(|view| view.group.id).collect();
        out.set(EnumGroupsObject::create(qmgr.queue.clone(), ids));
        Ok(hresult::S_OK)
    }
}

const QMGR_VTBL: IBackgroundCopyQMgrVtbl = IBackgroundCopyQMgrVtbl {
    base: unknown_vtbl::<QMgrObject, 0>(),
    CreateGroup,
    GetGroup,
    EnumGroups,
};

/// A group (IBackgroundCopyGroup).
pub(crate) struct GroupObject {
    queue: Queue,
    id: Guid,
}

// SAFETY: one vtable reference at offset 0 serving IBackgroundCopyGroup.
unsafe impl Class for GroupObject {
    type Header = &'static IBackgroundCopyGroupVtbl;
    const HEADER: Self::Header = &GROUP_VTBL;
    const INTERFACES: &'static [(GUID, usize)] =
        &[(IID_IUnknown, 0), (IID_IBackgroundCopyGroup, 0)];
}

impl GroupObject {
    pub(crate) fn create(queue: Queue, id: Guid) -> *mut IBackgroundCopyGroup {
        ComObject::create(GroupObject { queue, id })
    }

    fn view(&self) -> Result<GroupView> {
        self.queue.group(self.id).map_err(legacy_error)
    }

    fn set(&self, change: GroupChange) -> Result<HResult> {
        run(
            &self.queue,
            Request::SetGroup {
                group: self.id,
                change,
            },
        )
    }

    fn property(&self, property: GROUPPROP) -> Result<VARIANT> {
        let group = self.view()?.group;
        let integer = |value: u32| {
            let mut variant = VARIANT::EMPTY;
            variant.vt = VT_I4;
            variant.value.lVal = value.cast_signed();
            variant
        };
        let text = |value: &str| -> Result<VARIANT> {
            let mut variant = VARIANT::EMPTY;
            variant.vt = VT_BSTR;
            variant.value.bstrVal = oleaut::bstr(value)?;
            Ok(variant)
        };
        match property {
            GROUPPROP_PRIORITY => Ok(integer(GROUP_PRIORITY.cast_unsigned())),
            GROUPPROP_PROTOCOLFLAGS => Ok(integer(QM_PROTOCOL_HTTP)),
            GROUPPROP_NOTIFYFLAGS => Ok(integer(group.notify_flags)),
            GROUPPROP_NOTIFYCLSID => match group.notify_clsid {
                Some(clsid) => text(&clsid.to_string()),
                None => Ok(VARIANT::EMPTY),
            },
            GROUPPROP_DISPLAYNAME => text(&group.display_name),
            GROUPPROP_DESCRIPTION => text(&group.description),
            other => Err(unsupported(other)),
        }
    }

    fn set_property(&self, property: GROUPPROP, value: &VARIANT) -> Result<HResult> {
        match property {
            GROUPPROP_PRIORITY => {
                if integer_of(value)? != i64::from(GROUP_PRIORITY) {
                    return Err(QmgrError::invalid_arg("the only group priority is 1"));
                }
                self.view()?;
                Ok(hresult::S_OK)
            }
            GROUPPROP_PROTOCOLFLAGS => {
                if integer_of(value)? != i64::from(QM_PROTOCOL_HTTP) {
                    return Err(QmgrError::invalid_arg(
                        "the only protocol is QM_PROTOCOL_HTTP",
                    ));
                }
                self.view()?;
                Ok(hresult::S_OK)
            }
            GROUPPROP_NOTIFYFLAGS => {
                let flags = u32::try_from(integer_of(value)?)
                    .map_err(|_| QmgrError::invalid_arg("notify flags out of range"))?;
                self.set(GroupChange::NotifyFlags(flags))
            }
            GROUPPROP_NOTIFYCLSID => {
                let text = string_of(value, usize::MAX)?;
                let clsid = if text.is_empty() {
                    None
                } else {
                    Some(Guid::from_str(&text).map_err(|e| QmgrError::invalid_arg(e.to_string()))?)
                };
                self.set(GroupChange::NotifyClsid(clsid))
            }
            GROUPPROP_DISPLAYNAME => self.set(GroupChange::DisplayName(string_of(
                value,
                MAX_DISPLAY_NAME_CHARS,
            )?)),
            GROUPPROP_DESCRIPTION => self.set(GroupChange::Description(string_of(
                value,
                MAX_DESCRIPTION_CHARS,
            )?)),
            other => Err(unsupported(other)),
        }
    }

    fn job_object(&self, job: Guid) -> *mut IBackgroundCopyJob1 {
        Job1Object::create(self.queue.clone(), job)
    }
}

fn unsupported(property: GROUPPROP) -> QmgrError {
    QmgrError::from_code(hresult::E_NOTIMPL).context(format_args!("group property {property}"))
}

/// The integer in a VARIANT of one of the integer types GROUPPROP accepts.
fn integer_of(value: &VARIANT) -> Result<i64> {
    let member = &value.value;
    // SAFETY (each arm): `vt` names the member the caller wrote; all are plain integers.
    Ok(match value.vt {
        // SAFETY: see above.
        VT_I4 => i64::from(unsafe { member.lVal }),
        // SAFETY: see above.
        VT_I2 => i64::from(unsafe { member.iVal }),
        // SAFETY: see above.
        VT_UI4 => i64::from(unsafe { member.ulVal }),
        // SAFETY: see above.
        VT_UI2 => i64::from(unsafe { member.uiVal }),
        // SAFETY: see above.
        VT_INT => i64::from(unsafe { member.intVal }),
        // SAFETY: see above.
        VT_UINT => i64::from(unsafe { member.uintVal }),
        other => {
            return Err(QmgrError::invalid_arg(format!(
                "VARIANT type {other} is not an integer"
            )));
        }
    })
}

/// The text of a `VT_BSTR` VARIANT of at most `max_chars` UTF-16 units.
fn string_of(value: &VARIANT, max_chars: usize) -> Result<String> {
    if value.vt != VT_BSTR {
        return Err(QmgrError::invalid_arg(format!(
            "VARIANT type {} is not VT_BSTR",
            value.vt
        )));
    }
    // SAFETY: `vt` says the union holds a BSTR: NULL (the empty string) or NUL-terminated.
    let text = unsafe { value.value.bstrVal.cast_const().checked() }.string("the BSTR")?;
    let text = text.unwrap_or_default();
    if text.encode_utf16().count() > max_chars {
        return Err(QmgrError::invalid_arg(format!(
            "the text is longer than {max_chars} characters"
        )));
    }
    Ok(text)
}

thunks! { GroupObject, IBackgroundCopyGroup, 0;
    fn GetProp(group, propID: GROUPPROP, pvarVal: *mut VARIANT) {
        let out = pvarVal.out("pvarVal")?;
        out.set(group.property(propID)?);
        Ok(hresult::S_OK)
    }
    fn SetProp(group, propID: GROUPPROP, pvarVal: *mut VARIANT) {
        group.set_property(propID, &pvarVal.read("pvarVal")?)
    }
    fn GetProgress(group, dwFlags: DWORD, pdwProgress: *mut DWORD) {
        let out = pdwProgress.out("pdwProgress")?;
        let job = group.view()?.job.map(|view| (view.job.state, view.job.progress()));
        out.set(legacy_progress(job, dwFlags)?);
        Ok(hresult::S_OK)
    }
    fn GetStatus(group, pdwStatus: *mut DWORD, pdwJobIndex: *mut DWORD) {
        let out = pdwStatus.out("pdwStatus")?;
        let view = group.view()?;
        out.set(view.group.status(view.job.as_ref().map(|j| j.job.state)));
        if let Some(index) = pdwJobIndex.optional_out() {
            index.set(0);
        }
        Ok(hresult::S_OK)
    }
    fn GetJob(group, jobID: GUID, ppJob: *mut *mut IBackgroundCopyJob1) {
        let out = ppJob.out("ppJob")?;
        let id = Guid::from(jobID);
        if group.view()?.group.job != Some(id) {
            return Err(QmgrError::from_code(hresult::QM_E_ITEM_NOT_FOUND)
                .context(format_args!("job {id} in group {}", group.id)));
        }
        out.set(group.job_object(id));
        Ok(hresult::S_OK)
    }
    fn SuspendGroup(group) { run(&group.queue, Request::SuspendGroup { group: group.id }) }
    fn ResumeGroup(group) { run(&group.queue, Request::ResumeGroup { group: group.id }) }
    fn CancelGroup(group) { run(&group.queue, Request::CancelGroup { group: group.id }) }
    fn get_Size(group, pdwSize: *mut DWORD) {
        let out = pdwSize.out("pdwSize")?;
        let total = group.view()?.job.map_or(0, |view| view.job.progress().bytes_total);
        out.set(if total == qmgr_core::file::SIZE_UNKNOWN { 0 } else { clamp32(total) });
        Ok(hresult::S_OK)
    }
    fn get_GroupID(group, pguidGroupID: *mut GUID) {
        pguidGroupID.out("pguidGroupID")?.set(group.id.into());
        Ok(hresult::S_OK)
    }
    fn CreateJob(group, guidJobID: GUID, ppJob: *mut *mut IBackgroundCopyJob1) {
        let out = ppJob.out("ppJob")?;
        let job = Guid::from(guidJobID);
        run(
            &group.queue,
            Request::CreateGroupJob {
                group: group.id,
                job,
                umask: qmgr_core::file::process_umask(),
            },
        )?;
        out.set(group.job_object(job));
        Ok(hresult::S_OK)
    }
    fn EnumJobs(group, dwFlags: DWORD, ppEnumJobs: *mut *mut IEnumBackgroundCopyJobs1) {
        let out = ppEnumJobs.out("ppEnumJobs")?;
        if dwFlags != 0 {
            return Err(QmgrError::from_code(hresult::E_NOTIMPL)
                .context(format_args!("EnumJobs flags 0x{dwFlags:X}")));
        }
        let jobs = group.view()?.group.job.into_iter().collect();
        out.set(EnumJobs1Object::create(group.queue.clone(), jobs));
        Ok(hresult::S_OK)
    }
    fn SwitchToForeground(group) {
        run(&group.queue, Request::SwitchGroupToForeground { group: group.id })
    }
    fn QueryNewJobInterface(group, iid: REFIID, pUnk: *mut *mut IUnknown) {
        // The group's job through the modern interfaces (how old clients move to them).
        let out = pUnk.out("pUnk")?;
        let iid = iid.read("iid")?;
        let Some(job) = group.view()?.group.job else {
            return Err(QmgrError::from_code(hresult::QM_E_ITEM_NOT_FOUND)
                .context(format_args!("group {} has no job yet (CreateJob makes it)", group.id)));
        };
        let object = crate::job::JobObject::create(group.queue.clone(), job, None);
        // SAFETY: `object` is a live reference the library owns, released right after.
        let answer = unsafe {
            let answer = crate::com::foreign::query(object.cast(), &iid);
            crate::com::foreign::release(object.cast());
            answer
        };
        let Some(answer) = answer else {
            return Err(QmgrError::from_code(hresult::E_NOINTERFACE)
                .context("the job does not have that interface"));
        };
        out.set(answer.cast());
        Ok(hresult::S_OK)
    }
    fn SetNotificationPointer(group, iid: REFIID, pUnk: *mut IUnknown) {
        let iid = iid.read("iid")?;
        let object = pUnk.raw();
        if !object.is_null() {
            group.view()?;
        }
        crate::legacy_notify::register(&group.queue, group.id, &iid, object)?;
        Ok(hresult::S_OK)
    }
}

const GROUP_VTBL: IBackgroundCopyGroupVtbl = IBackgroundCopyGroupVtbl {
    base: unknown_vtbl::<GroupObject, 0>(),
    GetProp,
    SetProp,
    GetProgress,
    GetStatus,
    GetJob,
    SuspendGroup,
    ResumeGroup,
    CancelGroup,
    get_Size,
    get_GroupID,
    CreateJob,
    EnumJobs,
    SwitchToForeground,
    QueryNewJobInterface,
    SetNotificationPointer,
};

/// The job of a group (IBackgroundCopyJob1).
pub(crate) struct Job1Object {
    queue: Queue,
    id: Guid,
}

// SAFETY: one vtable reference at offset 0 serving IBackgroundCopyJob1.
unsafe impl Class for Job1Object {
    type Header = &'static IBackgroundCopyJob1Vtbl;
    const HEADER: Self::Header = &job1::JOB1_VTBL;
    const INTERFACES: &'static [(GUID, usize)] = &[(IID_IUnknown, 0), (IID_IBackgroundCopyJob1, 0)];
}

impl Job1Object {
    pub(crate) fn create(queue: Queue, id: Guid) -> *mut IBackgroundCopyJob1 {
        ComObject::create(Job1Object { queue, id })
    }

    /// The job without its files (a file is read alone when asked for).
    fn summary(&self) -> Result<JobSummary> {
        self.queue.job_summary(self.id).map_err(legacy_error)
    }

    fn add_files(&self, entries: &[*mut FILESETINFO]) -> Result<HResult> {
        let files = entries
            .iter()
            .map(|entry| {
                // SAFETY: each element of the caller's array points at a FILESETINFO
                // (qmgr-h.md §4.3: an array of pointers), which `read` checks for NULL.
                let info = unsafe { entry.checked() }.read("ppFileSet[i]")?;
                // SAFETY: a FILESETINFO holds BSTRs: NULL or NUL-terminated.
                let (remote, local) = unsafe {
                    (
                        info.bstrRemoteFile.cast_const().checked(),
                        info.bstrLocalFile.cast_const().checked(),
                    )
                };
                Ok(NewFile {
                    remote_name: Ptr::required_string(remote, "bstrRemoteFile")?,
                    local_name: Ptr::required_string(local, "bstrLocalFile")?,
                    ranges: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.queue.add_files(self.id, files).map_err(legacy_error)
    }

    fn file(&self, index: ULONG) -> Result<FILESETINFO> {
        let record = self
            .queue
            .job_file(self.id, index)
            .map_err(legacy_error)?
            .ok_or_else(|| {
                QmgrError::from_code(hresult::QM_E_ITEM_NOT_FOUND)
                    .context(format_args!("file {index} of job {}", self.id))
            })?;
        let remote = oleaut::bstr(&record.remote_name)?;
        let local = oleaut::bstr(&record.local_name).inspect_err(|_| {
            // SAFETY: `remote` was just allocated and is not handed out.
            unsafe { oleaut::SysFreeString(remote) };
        })?;
        Ok(FILESETINFO {
            bstrRemoteFile: remote,
            bstrLocalFile: local,
            dwSizeHint: if record.bytes_total == qmgr_core::file::SIZE_UNKNOWN {
                0
            } else {
                clamp32(record.bytes_total)
            },
        })
    }
}

/// The thunks of IBackgroundCopyJob1, apart: their names repeat the group's.
mod job1 {
    use super::*;

    thunks! { Job1Object, IBackgroundCopyJob1, 0;
        fn CancelJob(job) { job.queue.cancel(job.id).map_err(legacy_error) }
        fn GetProgress(job, dwFlags: DWORD, pdwProgress: *mut DWORD) {
            let out = pdwProgress.out("pdwProgress")?;
            let summary = job.summary()?;
            out.set(legacy_progress(Some((summary.job.state, summary.progress)), dwFlags)?);
            Ok(hresult::S_OK)
        }
        fn GetStatus(job, pdwStatus: *mut DWORD, pdwWin32Result: *mut DWORD, pdwTransportResult: *mut DWORD, pdwNumOfRetries: *mut DWORD) {
            let out = pdwStatus.out("pdwStatus")?;
            let view = job.summary()?;
            let error = view.job.current_error().ok().map(|e| e.error.hresult);
            let (win32_result, transport_result) = legacy_results(error);
            out.set(group::job_status(view.job.state));
            if let Some(win32) = pdwWin32Result.optional_out() {
                win32.set(win32_result);
            }
            if let Some(transport) = pdwTransportResult.optional_out() {
                transport.set(transport_result);
            }
            if let Some(retries) = pdwNumOfRetries.optional_out() {
                retries.set(view.job.error_count);
            }
            Ok(hresult::S_OK)
        }
        fn AddFiles(job, cFileCount: ULONG, ppFileSet: *mut *mut FILESETINFO) {
            if cFileCount == 0 {
                return Err(QmgrError::invalid_arg("cFileCount is 0"));
            }
            job.add_files(ppFileSet.slice(cFileCount as usize, "ppFileSet")?)
        }
        fn GetFile(job, cFileIndex: ULONG, pFileInfo: *mut FILESETINFO) {
            let out = pFileInfo.out("pFileInfo")?;
            out.set(job.file(cFileIndex)?);
            Ok(hresult::S_OK)
        }
        fn GetFileCount(job, pdwFileCount: *mut DWORD) {
            let out = pdwFileCount.out("pdwFileCount")?;
            out.set(job.summary()?.progress.files_total);
            Ok(hresult::S_OK)
        }
        fn SwitchToForeground(job) {
            job.queue
                .set_job(job.id, JobChange::Priority(JobPriority::Foreground))
                .map_err(legacy_error)
        }
        fn get_JobID(job, pguidJobID: *mut GUID) {
            pguidJobID.out("pguidJobID")?.set(job.id.into());
            Ok(hresult::S_OK)
        }
    }

    pub(super) const JOB1_VTBL: IBackgroundCopyJob1Vtbl = IBackgroundCopyJob1Vtbl {
        base: unknown_vtbl::<Job1Object, 0>(),
        CancelJob,
        GetProgress,
        GetStatus,
        AddFiles,
        GetFile,
        GetFileCount,
        SwitchToForeground,
        get_JobID,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmgr_core::group::Group;

    #[test]
    fn group_status_bits_come_from_the_core_mapping() {
        let group = Group::new(Guid::new_random(), 1000, qmgr_core::Timestamp(1));
        assert_eq!(
            group.status(Some(JobState::Error)),
            QM_STATUS_GROUP_ERROR | QM_STATUS_GROUP_SUSPENDED
        );
    }

    #[test]
    fn percent_progress_without_a_job_is_zero_and_time_is_not_implemented() {
        assert_eq!(legacy_progress(None, QM_PROGRESS_PERCENT_DONE).unwrap(), 0);
        assert_eq!(
            legacy_progress(None, QM_PROGRESS_TIME_DONE)
                .unwrap_err()
                .hresult,
            hresult::E_NOTIMPL
        );
        assert_eq!(
            legacy_progress(None, 77).unwrap_err().hresult,
            hresult::E_INVALIDARG
        );
        assert_eq!(clamp32(u64::MAX - 1), u32::MAX);
    }
}
