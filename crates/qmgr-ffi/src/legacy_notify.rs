//! IBackgroundCopyCallback1: the legacy group API's notifications, for an object the client
//! registers with `IBackgroundCopyGroup::SetNotificationPointer`. They travel with the modern
//! ones (notify.rs: one dispatcher thread, retries of a refused OnStatus, JobModification
//! pacing, calls made in the object's apartment) and follow the group's
//! `GROUPPROP_NOTIFYFLAGS`:
//!
//! - `QM_NOTIFY_DISABLE_NOTIFY`: nothing is called;
//! - errors: `OnStatus` with `QM_STATUS_GROUP_ERROR`, the retry count and the Win32 and HTTP
//!   codes (always, as Windows does without flags);
//! - `QM_NOTIFY_GROUP_DONE`: `OnStatus` with `QM_STATUS_GROUP_COMPLETE` when the group's job
//!   has transferred every file;
//! - changes of the job: `OnProgress(QM_PROGRESS_PERCENT_DONE, …)`, or `OnProgressEx` with an
//!   empty byte array under `QM_NOTIFY_USE_PROGRESSEX`.
//!
//! `QM_NOTIFY_FILE_DONE` and `QM_NOTIFY_JOB_DONE` are accepted and, as Microsoft documents,
//! not acted on.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use qmgr_core::hresult::{self, HResult};
use qmgr_core::service::{JobSummary, Notification, NotificationKind, QueueServiceExt};
use qmgr_core::{Guid, JobState, QmgrError, Result};

use crate::abi::qmgr::{
    IBackgroundCopyCallback1, IID_IBackgroundCopyCallback1, QM_NOTIFY_DISABLE_NOTIFY,
    QM_NOTIFY_GROUP_DONE, QM_NOTIFY_USE_PROGRESSEX, QM_PROGRESS_PERCENT_DONE,
};
use crate::abi::types::{DWORD, GUID, HRESULT, IUnknown};
use crate::apartment::ClientRef;
use crate::com::foreign;
use crate::legacy::{GroupObject, Job1Object, legacy_progress, legacy_results};
use crate::notify::{Call, Outcome, Paced};
use crate::runtime::Queue;

/// The registered IBackgroundCopyCallback1 objects, by group.
static CALLBACKS: Mutex<Option<HashMap<Guid, Arc<ClientRef>>>> = Mutex::new(None);

/// SetNotificationPointer: `object` (NULL clears) receives the group's notifications.
pub(crate) fn register(
    queue: &Queue,
    group: Guid,
    iid: &GUID,
    object: *mut IUnknown,
) -> Result<()> {
    if *iid != IID_IBackgroundCopyCallback1 {
        return Err(QmgrError::from_code(hresult::E_NOINTERFACE)
            .context("groups notify through IBackgroundCopyCallback1 only"));
    }
    if object.is_null() {
        let removed = CALLBACKS.lock().as_mut().and_then(|map| map.remove(&group));
        drop(removed);
        return Ok(());
    }
    // SAFETY: a non-null IUnknown the caller passed (COM's contract).
    let callback =
        unsafe { foreign::query(object, &IID_IBackgroundCopyCallback1) }.ok_or_else(|| {
            QmgrError::from_code(hresult::E_NOINTERFACE)
                .context("the object does not implement IBackgroundCopyCallback1")
        })?;
    // SAFETY: the reference the query just gave us passes to the ClientRef, at home in the
    // calling thread's apartment.
    let callback = unsafe { ClientRef::adopt(callback) }
        .ok_or_else(|| QmgrError::internal("QueryInterface gave NULL"))?;
    crate::notify::start_dispatcher(queue)?;
    let replaced = CALLBACKS
        .lock()
        .get_or_insert_with(HashMap::new)
        .insert(group, Arc::new(callback));
    drop(replaced);
    Ok(())
}

/// Whether any group has a registered object (else a notification needs no look here).
pub(crate) fn any() -> bool {
    CALLBACKS.lock().as_ref().is_some_and(|map| !map.is_empty())
}

fn registered(group: Guid) -> Option<Arc<ClientRef>> {
    CALLBACKS
        .lock()
        .as_ref()
        .and_then(|map| map.get(&group).cloned())
}

/// What a notification asks of a legacy group's object.
pub(crate) enum GroupDecision {
    /// The job is not a group's, or its group has no object: the modern callback decides.
    NoObject,
    /// The group's object takes the notification: this call, or none.
    Decided(Option<Call>),
}

/// Decides the call `event` of the group's job (seen as `view`) asks of the group's object.
pub(crate) fn decide(
    queue: &Queue,
    event: &Notification,
    view: &JobSummary,
    paced: &mut Paced,
) -> GroupDecision {
    let Some(callback) = view
        .job
        .group
        .and_then(|group| Some((group, registered(group)?)))
    else {
        return GroupDecision::NoObject;
    };
    GroupDecision::Decided(decide_for(queue, event, view, paced, callback))
}

fn decide_for(
    queue: &Queue,
    event: &Notification,
    view: &JobSummary,
    paced: &mut Paced,
    (group, callback): (Guid, Arc<ClientRef>),
) -> Option<Call> {
    let group_view = queue.group(group).ok()?;
    let flags = group_view.group.notify_flags;
    if flags & QM_NOTIFY_DISABLE_NOTIFY != 0 {
        return None;
    }
    let state = view.job.state;
    let status = group_view.group.status(Some(state));
    let wanted = match &event.kind {
        NotificationKind::Error => state == JobState::Error,
        NotificationKind::Transferred => {
            flags & QM_NOTIFY_GROUP_DONE != 0
                && matches!(state, JobState::Transferred | JobState::Acknowledged)
        }
        NotificationKind::Modification => {
            paced.admit(event, view.job.settings.minimum_notification_interval)
        }
        NotificationKind::FileTransferred { .. }
        | NotificationKind::CertificateCheck { .. }
        | NotificationKind::FileRangesTransferred { .. } => false,
    };
    if !wanted {
        return None;
    }
    let home = callback.home().clone();
    let queue = queue.clone();
    let kind = event.kind.clone();
    let view = view.clone();
    Some(Call {
        home,
        invoke: Box::new(move || {
            let Some(object) = callback.get::<IBackgroundCopyCallback1>() else {
                return Outcome::Done;
            };
            invoke(&queue, object, group, &kind, &view, status, flags)
        }),
    })
}

/// Calls the group's object, in its home, for a notification of `kind`.
fn invoke(
    queue: &Queue,
    object: *mut IBackgroundCopyCallback1,
    group: Guid,
    kind: &NotificationKind,
    view: &JobSummary,
    status: DWORD,
    flags: DWORD,
) -> Outcome {
    let state = view.job.state;
    let group_object = GroupObject::create(queue.clone(), group);
    let job = Job1Object::create(queue.clone(), view.job.id);
    // In the calls below `object` is a live reference the caller's ClientRef holds, and
    // `group_object` and `job` are references the library owns and releases afterwards.
    let answer: HRESULT = match kind {
        NotificationKind::Error => {
            let error = view.job.current_error().ok();
            let file = error.and_then(|error| error.file_index).unwrap_or(u32::MAX);
            let (win32, transport) = legacy_results(error.map(|error| error.error.hresult));
            // SAFETY: see above.
            unsafe {
                ((*(*object).lpVtbl).OnStatus)(
                    object,
                    group_object,
                    job,
                    file,
                    status,
                    view.job.error_count,
                    win32,
                    transport,
                )
            }
        }
        NotificationKind::Transferred => {
            // SAFETY: see above.
            unsafe {
                ((*(*object).lpVtbl).OnStatus)(
                    object,
                    group_object,
                    std::ptr::null_mut(),
                    u32::MAX,
                    status,
                    0,
                    0,
                    0,
                )
            }
        }
        _ => {
            let percent = legacy_progress(Some((state, view.progress)), QM_PROGRESS_PERCENT_DONE)
                .unwrap_or(0);
            // What OnProgress returns asks for nothing.
            if flags & QM_NOTIFY_USE_PROGRESSEX != 0 {
                // SAFETY: see above; an empty byte array.
                unsafe {
                    ((*(*object).lpVtbl).OnProgressEx)(
                        object,
                        QM_PROGRESS_PERCENT_DONE,
                        group_object,
                        job,
                        u32::MAX,
                        percent,
                        0,
                        std::ptr::null_mut(),
                    );
                }
            } else {
                // SAFETY: see above.
                unsafe {
                    ((*(*object).lpVtbl).OnProgress)(
                        object,
                        QM_PROGRESS_PERCENT_DONE,
                        group_object,
                        job,
                        u32::MAX,
                        percent,
                    );
                }
            }
            hresult::S_OK.0
        }
    };
    // SAFETY: the references `create` gave the library.
    unsafe {
        foreign::release(group_object.cast());
        foreign::release(job.cast());
    }
    if HResult(answer).is_failure() {
        Outcome::Refused
    } else {
        Outcome::Done
    }
}
