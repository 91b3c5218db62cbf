//! IBackgroundCopyCallback: the client's objects registered with SetNotifyInterface, and
//! the one dispatcher thread per process that calls them.
//!
//! A registration belongs to the job (keyed by its GUID), not to the job object it was
//! made through: as on Windows, the client may release its job pointer and still be called.
//! The library holds one reference to the callback (QueryInterface'd for
//! IID_IBackgroundCopyCallback) until it is replaced, cleared with NULL, or the job leaves
//! the queue. Calls come on the dispatcher thread, never on a thread waiting for the
//! service, so a callback may call back into the API (Complete inside JobTransferred).
//! Callback objects must therefore accept calls from another thread, as BITS requires of
//! them (it calls from its own RPC threads).

use std::collections::{HashMap, VecDeque};
use std::ffi::c_void;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use qmgr_core::hresult;
use qmgr_core::service::{JobSummary, Notification, NotificationKind, QueueServiceExt};
use qmgr_core::{Guid, JobState, QmgrError, Result};

use crate::abi::bits::{
    IBackgroundCopyCallback, IBackgroundCopyCallback2, IID_IBackgroundCopyCallback,
    IID_IBackgroundCopyCallback2,
};
use crate::abi::types::{
    BG_NOTIFY_DISABLE, BG_NOTIFY_FILE_TRANSFERRED, BG_NOTIFY_JOB_ERROR, BG_NOTIFY_JOB_MODIFICATION,
    BG_NOTIFY_JOB_TRANSFERRED, HRESULT, IUnknown,
};
use crate::com::foreign;
use crate::error::ErrorObject;
use crate::file::FileObject;
use crate::job::JobObject;
use crate::local;
use crate::runtime::Queue;

/// A reference to a client's callback object, released when dropped.
struct Callback {
    primary: *mut IBackgroundCopyCallback,
    /// The same object as IBackgroundCopyCallback2, when it implements it.
    files: Option<*mut IBackgroundCopyCallback2>,
}

// SAFETY: callback objects are called from the dispatcher thread by contract (module docs),
// and the references held here are only AddRef'd/Released, which COM objects allow from
// any thread.
unsafe impl Send for Callback {}

impl Callback {
    /// Another reference to the same object.
    fn share(&self) -> Callback {
        // SAFETY: both pointers are live references held by `self`.
        unsafe {
            foreign::add_ref(self.primary.cast());
            if let Some(files) = self.files {
                foreign::add_ref(files.cast());
            }
        }
        Callback {
            primary: self.primary,
            files: self.files,
        }
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        // SAFETY: each pointer is a reference this value owns.
        unsafe {
            foreign::release(self.primary.cast());
            if let Some(files) = self.files {
                foreign::release(files.cast());
            }
        }
    }
}

struct Registry {
    callbacks: HashMap<Guid, Callback>,
    dispatcher: Option<Sender<Notification>>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    f(REGISTRY.lock().get_or_insert_with(|| Registry {
        callbacks: HashMap::new(),
        dispatcher: None,
    }))
}

/// SetNotifyInterface: `object` (NULL clears) becomes the job's callback. A job already
/// TRANSFERRED or in ERROR is reported at once, as Windows does.
pub(crate) fn register(queue: &Queue, view: &JobSummary, object: *mut IUnknown) -> Result<()> {
    let job = view.job.id;
    if object.is_null() {
        unregister(job);
        return Ok(());
    }
    // SAFETY: a non-null IUnknown the caller passed (COM's contract).
    let primary =
        unsafe { foreign::query(object, &IID_IBackgroundCopyCallback) }.ok_or_else(|| {
            QmgrError::from_code(hresult::E_NOINTERFACE)
                .context("the notify interface does not implement IBackgroundCopyCallback")
        })?;
    // SAFETY: as above.
    let files = unsafe { foreign::query(object, &IID_IBackgroundCopyCallback2) };
    let callback = Callback {
        primary: primary.cast(),
        files: files.map(<*mut c_void>::cast),
    };
    let dispatcher = dispatcher(queue)?;
    let replaced = with(|r| r.callbacks.insert(job, callback));
    drop(replaced);
    let pending = match view.job.state {
        JobState::Transferred => Some(NotificationKind::Transferred),
        JobState::Error => Some(NotificationKind::Error),
        _ => None,
    };
    if let Some(kind) = pending {
        let _ = dispatcher.send(Notification {
            job,
            kind,
            state: view.job.state,
        });
    }
    Ok(())
}

/// Drops the job's callback, if any.
pub(crate) fn unregister(job: Guid) {
    let removed = with(|r| r.callbacks.remove(&job));
    drop(removed);
}

/// GetNotifyInterface: a new reference to the job's callback, or NULL.
pub(crate) fn registered(job: Guid) -> *mut IUnknown {
    with(|r| {
        r.callbacks.get(&job).map(|callback| {
            let object: *mut IUnknown = callback.primary.cast();
            // SAFETY: a live reference the registry holds; the new one goes to the caller.
            unsafe { foreign::add_ref(object) };
            object
        })
    })
    .unwrap_or(std::ptr::null_mut())
}

/// Starts the dispatcher if it is not running yet (a legacy group's registration).
pub(crate) fn start_dispatcher(queue: &Queue) -> Result<()> {
    dispatcher(queue).map(drop)
}

/// The dispatcher's queue of notifications, starting the dispatcher on first use: one
/// thread forwards the service's notifications, one calls the callbacks.
fn dispatcher(queue: &Queue) -> Result<Sender<Notification>> {
    let mut slot = REGISTRY.lock();
    let registry = slot.get_or_insert_with(|| Registry {
        callbacks: HashMap::new(),
        dispatcher: None,
    });
    if let Some(sender) = &registry.dispatcher {
        return Ok(sender.clone());
    }
    let events = queue.subscribe()?;
    let (sender, inbox) = mpsc::channel::<Notification>();
    let forward = sender.clone();
    std::thread::Builder::new()
        .name("qmgr-notify-in".into())
        .spawn(move || {
            for event in events {
                if forward.send(event).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| QmgrError::internal(format!("cannot start the notification thread: {e}")))?;
    let dispatch_queue = queue.clone();
    std::thread::Builder::new()
        .name("qmgr-callbacks".into())
        .spawn(move || {
            let mut held = Held::default();
            loop {
                let next = match held.next_due() {
                    Some(due) => inbox.recv_timeout(due.saturating_duration_since(Instant::now())),
                    None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
                };
                match next {
                    Ok(event) => held.deliver(&dispatch_queue, event),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                // Due even while notifications keep coming.
                if held.next_due().is_some_and(|due| due <= Instant::now()) {
                    held.retry_due(&dispatch_queue);
                }
            }
        })
        .map_err(|e| QmgrError::internal(format!("cannot start the callback thread: {e}")))?;
    registry.dispatcher = Some(sender.clone());
    Ok(sender)
}

/// The first wait before a callback that refused a notification is called again; each
/// further refusal doubles it, up to `LONGEST_RETRY`. Microsoft leaves the interval open.
const FIRST_RETRY: Duration = Duration::from_millis(500);
const LONGEST_RETRY: Duration = Duration::from_secs(60);

/// What became of a notification handed to a job's callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Called and accepted, or nothing to call (no callback, not wanted, job moved on).
    Done,
    /// The callback returned a failure from JobTransferred, JobError or FileTransferred:
    /// as on Windows, it is called again later until it returns success or the job leaves
    /// that state.
    Refused,
}

/// Notifications waiting for a callback that refused one: per job, the refused one first,
/// then what came after it. A job's FileTransferred calls are serialized and come before
/// its JobTransferred and JobError (Microsoft's order), so while one is refused the later
/// ones wait behind it; Modifications are hints and pass.
#[derive(Default)]
struct Held {
    jobs: HashMap<Guid, HeldJob>,
    paced: Paced,
}

/// JobModification callbacks at most once per the job's MINIMUM_NOTIFICATION_INTERVAL_MS:
/// a change that comes sooner waits, and only the latest is called, when the interval has
/// passed.
#[derive(Default)]
pub(crate) struct Paced {
    /// When each job's JobModification was last called.
    last: HashMap<Guid, Instant>,
    /// The modification waiting for its interval to pass, by job.
    waiting: HashMap<Guid, (Instant, Notification)>,
}

impl Paced {
    /// Whether the job's JobModification may be called now; if not, `event` waits.
    pub(crate) fn admit(&mut self, event: &Notification, interval: Duration) -> bool {
        let now = Instant::now();
        if let Some(&at) = self.last.get(&event.job)
            && now < at + interval
        {
            self.waiting
                .insert(event.job, (at + interval, event.clone()));
            return false;
        }
        self.last.insert(event.job, now);
        self.waiting.remove(&event.job);
        true
    }

    fn next_due(&self) -> Option<Instant> {
        self.waiting.values().map(|(at, _)| *at).min()
    }

    fn take_due(&mut self) -> Vec<Notification> {
        let now = Instant::now();
        let due: Vec<Guid> = self
            .waiting
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(job, _)| *job)
            .collect();
        due.into_iter()
            .filter_map(|job| self.waiting.remove(&job).map(|(_, event)| event))
            .collect()
    }

    fn forget(&mut self, job: Guid) {
        self.last.remove(&job);
        self.waiting.remove(&job);
    }
}

struct HeldJob {
    due: Instant,
    delay: Duration,
    waiting: VecDeque<Notification>,
}

impl Held {
    fn next_due(&self) -> Option<Instant> {
        let retries = self.jobs.values().map(|held| held.due);
        retries.chain(self.paced.next_due()).min()
    }

    /// Hands a notification from the service to the job's callback, or queues it behind a
    /// refused one.
    fn deliver(&mut self, queue: &Queue, event: Notification) {
        if event.state.is_final() {
            self.jobs.remove(&event.job);
            self.paced.forget(event.job);
        } else if event.kind != NotificationKind::Modification
            && let Some(held) = self.jobs.get_mut(&event.job)
        {
            held.waiting.push_back(event);
            return;
        }
        let job = event.job;
        let paced = &mut self.paced;
        let outcome = crate::boundary::guarded(Outcome::Done, || dispatch(queue, &event, paced));
        if outcome == Outcome::Refused {
            self.jobs.insert(
                job,
                HeldJob {
                    due: Instant::now() + FIRST_RETRY,
                    delay: FIRST_RETRY,
                    waiting: VecDeque::from([event]),
                },
            );
        }
    }

    /// Calls again the callbacks whose wait is over: each job's waiting notifications in
    /// order until one is refused again; and the modifications whose interval has passed.
    fn retry_due(&mut self, queue: &Queue) {
        for event in self.paced.take_due() {
            self.deliver(queue, event);
        }
        let now = Instant::now();
        let due: Vec<Guid> = self
            .jobs
            .iter()
            .filter(|(_, held)| held.due <= now)
            .map(|(job, _)| *job)
            .collect();
        for job in due {
            let Some(held) = self.jobs.get_mut(&job) else {
                continue;
            };
            while let Some(event) = held.waiting.front() {
                let paced = &mut self.paced;
                let outcome =
                    crate::boundary::guarded(Outcome::Done, || dispatch(queue, event, paced));
                if outcome == Outcome::Refused {
                    held.delay = (held.delay * 2).min(LONGEST_RETRY);
                    held.due = Instant::now() + held.delay;
                    break;
                }
                held.waiting.pop_front();
            }
            if held.waiting.is_empty() {
                self.jobs.remove(&job);
            }
        }
    }
}

/// Delivers one notification to the job's callback, as its notify flags allow, if the job
/// is still where the notification says (a JobTransferred called again finds the job still
/// TRANSFERRED).
fn dispatch(queue: &Queue, event: &Notification, paced: &mut Paced) -> Outcome {
    if event.state.is_final() {
        local::ended(event.job, event.state);
        unregister(event.job);
        return Outcome::Done;
    }
    let callback = with(|r| r.callbacks.get(&event.job).map(Callback::share));
    if callback.is_none() && !crate::legacy_notify::any() {
        return Outcome::Done;
    }
    // The summary: a notification never costs the job's whole file list.
    let Ok(view) = queue.job_summary(event.job) else {
        return Outcome::Done;
    };
    // A legacy group's job notifies the group's IBackgroundCopyCallback1, if it has one.
    if let Some(outcome) = crate::legacy_notify::dispatch(queue, event, &view, paced) {
        return outcome;
    }
    let Some(callback) = callback else {
        return Outcome::Done;
    };
    let flags = view.job.settings.notify_flags;
    if flags & BG_NOTIFY_DISABLE != 0 {
        return Outcome::Done;
    }
    let (wanted, still_there) = match event.kind {
        NotificationKind::Transferred => (
            flags & BG_NOTIFY_JOB_TRANSFERRED,
            view.job.state == JobState::Transferred,
        ),
        NotificationKind::Error => (
            flags & BG_NOTIFY_JOB_ERROR,
            view.job.state == JobState::Error,
        ),
        NotificationKind::Modification => (flags & BG_NOTIFY_JOB_MODIFICATION, true),
        NotificationKind::FileTransferred { .. } => (flags & BG_NOTIFY_FILE_TRANSFERRED, true),
    };
    if wanted == 0 || !still_there {
        return Outcome::Done;
    }
    if event.kind == NotificationKind::Modification
        && !paced.admit(event, view.job.settings.minimum_notification_interval)
    {
        return Outcome::Done;
    }
    let job = JobObject::create(queue.clone(), event.job, Some(view.clone()));
    let primary = callback.primary;
    // In the calls below, `primary` and `files` are live references `callback` holds for
    // the whole call, and `job` and the objects made for the call are references the
    // library owns and releases afterwards.
    let answer: HRESULT = match event.kind {
        NotificationKind::Transferred => {
            // SAFETY: see above.
            unsafe { ((*(*primary).lpVtbl).JobTransferred)(primary, job) }
        }
        NotificationKind::Modification => {
            // SAFETY: see above. What JobModification returns asks for nothing.
            unsafe { ((*(*primary).lpVtbl).JobModification)(primary, job, 0) };
            hresult::S_OK.0
        }
        NotificationKind::Error => match view.job.current_error() {
            Ok(error) => {
                let file = error
                    .file_index
                    .and_then(|index| queue.job_file(event.job, index).ok().flatten());
                let error = ErrorObject::create(queue.clone(), event.job, error.clone(), file);
                // SAFETY: see above.
                unsafe {
                    let answer = ((*(*primary).lpVtbl).JobError)(primary, job, error);
                    foreign::release(error.cast());
                    answer
                }
            }
            Err(_) => hresult::S_OK.0,
        },
        NotificationKind::FileTransferred { file } => match callback.files {
            Some(files) => match queue.job_file(event.job, file) {
                Ok(Some(record)) => {
                    let file = FileObject::create(queue.clone(), event.job, file, record);
                    // SAFETY: see above.
                    unsafe {
                        let answer = ((*(*files).lpVtbl).FileTransferred)(files, job, file);
                        foreign::release(file.cast());
                        answer
                    }
                }
                _ => hresult::S_OK.0,
            },
            None => hresult::S_OK.0,
        },
    };
    // SAFETY: the reference `create` gave the library.
    unsafe { foreign::release(job.cast()) };
    if qmgr_core::hresult::HResult(answer).is_failure() {
        Outcome::Refused
    } else {
        Outcome::Done
    }
}
