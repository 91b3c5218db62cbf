//! IBackgroundCopyCallback1: the legacy group API's notifications, for an object the client
//! registers with `IBackgroundCopyGroup::SetNotificationPointer`. They travel with the modern
//! ones (notify.rs: one dispatcher thread, retries of a refused OnStatus, JobModification
//! pacing) and follow the group's `GROUPPROP_NOTIFYFLAGS`:
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

use parking_lot::Mutex;
use qmgr_core::hresult::{self, HResult};
use qmgr_core::service::{JobSummary, Notification, NotificationKind, QueueServiceExt};
use qmgr_core::{Guid, JobState, QmgrError, Result};

use crate::abi::qmgr::{
    IBackgroundCopyCallback1, IID_IBackgroundCopyCallback1, QM_NOTIFY_DISABLE_NOTIFY,
    QM_NOTIFY_GROUP_DONE, QM_NOTIFY_USE_PROGRESSEX, QM_PROGRESS_PERCENT_DONE,
};
use crate::abi::types::{GUID, HRESULT, IUnknown};
use crate::com::foreign;
use crate::legacy::{GroupObject, Job1Object, legacy_progress, legacy_results};
use crate::notify::{Outcome, Paced};
use crate::runtime::Queue;

/// A reference to a client's IBackgroundCopyCallback1, released when dropped.
struct Callback1(*mut IBackgroundCopyCallback1);

// SAFETY: the object is called on the dispatcher thread only, as BITS calls its callbacks
// from threads of its own, and AddRef/Release may come from any thread.
unsafe impl Send for Callback1 {}

impl Callback1 {
    fn share(&self) -> Callback1 {
        // SAFETY: a live reference this value holds.
        unsafe { foreign::add_ref(self.0.cast()) };
        Callback1(self.0)
    }
}

impl Drop for Callback1 {
    fn drop(&mut self) {
        // SAFETY: the reference this value owns.
        unsafe { foreign::release(self.0.cast()) };
    }
}

/// The registered objects, by group.
static CALLBACKS: Mutex<Option<HashMap<Guid, Callback1>>> = Mutex::new(None);

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
    crate::notify::start_dispatcher(queue)?;
    let replaced = CALLBACKS
        .lock()
        .get_or_insert_with(HashMap::new)
        .insert(group, Callback1(callback.cast()));
    drop(replaced);
    Ok(())
}

/// Whether any group has a registered object (else a notification needs no look here).
pub(crate) fn any() -> bool {
    CALLBACKS.lock().as_ref().is_some_and(|map| !map.is_empty())
}

fn registered(group: Guid) -> Option<Callback1> {
    CALLBACKS
        .lock()
        .as_ref()
        .and_then(|map| map.get(&group).map(Callback1::share))
}

/// Delivers `event` of the group's job (seen as `view`) to the group's object, if it has
/// one; `None` when it has none.
pub(crate) fn dispatch(
    queue: &Queue,
    event: &Notification,
    view: &JobSummary,
    paced: &mut Paced,
) -> Option<Outcome> {
    let group = view.job.group?;
    let callback = registered(group)?;
    let Ok(group_view) = queue.group(group) else {
        return Some(Outcome::Done);
    };
    let flags = group_view.group.notify_flags;
    if flags & QM_NOTIFY_DISABLE_NOTIFY != 0 {
        return Some(Outcome::Done);
    }
    let state = view.job.state;
    let status = group_view.group.status(Some(state));
    let wanted = match event.kind {
        NotificationKind::Error => state == JobState::Error,
        NotificationKind::Transferred => {
            flags & QM_NOTIFY_GROUP_DONE != 0
                && matches!(state, JobState::Transferred | JobState::Acknowledged)
        }
        NotificationKind::Modification => {
            paced.admit(event, view.job.settings.minimum_notification_interval)
        }
        NotificationKind::FileTransferred { .. } => false,
    };
    if !wanted {
        return Some(Outcome::Done);
    }
    let group_object = GroupObject::create(queue.clone(), group);
    let job = Job1Object::create(queue.clone(), view.job.id);
    let object = callback.0;
    // In the calls below `object` is a live reference `callback` holds, and `group_object`
    // and `job` are references the library owns and releases afterwards.
    let answer: HRESULT = match event.kind {
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
    Some(if HResult(answer).is_failure() {
        Outcome::Refused
    } else {
        Outcome::Done
    })
}
