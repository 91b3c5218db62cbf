//! IBackgroundCopyCallback: the client's objects registered with SetNotifyInterface, and
//! the one dispatcher thread per process that decides when to call them.
//!
//! A registration belongs to the job (keyed by its GUID), not to the job object it was
//! made through: as on Windows, the client may release its job pointer and still be called.
//! The library holds one reference to the callback (QueryInterface'd for
//! IID_IBackgroundCopyCallback) until it is replaced, cleared with NULL, or the job leaves
//! the queue.
//!
//! The dispatcher decides each call (the job's notify flags, whether the job is still where
//! the notification says, JobModification pacing, retries of a refused call, the order of a
//! job's calls) and makes it in the callback's home (`apartment`): for a callback
//! registered on a single-threaded apartment's thread, queued for that thread, which makes
//! it while it pumps; for any other, at once on the dispatcher thread (such a callback
//! must accept calls from another thread, as BITS requires: it calls from its own RPC
//! threads). Either way the answer comes back to the dispatcher as a message, so a call
//! still waiting for its apartment holds up only the later calls of its own job. Calls never
//! come on a thread waiting for the service, so a callback may call back into the API
//! (Complete inside JobTransferred).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use qmgr_core::hresult;
use qmgr_core::service::{JobSummary, Notification, NotificationKind, QueueServiceExt};
use qmgr_core::{Guid, JobState, QmgrError, Result};

use crate::abi::bits::{
    IBackgroundCopyCallback, IBackgroundCopyCallback2, IBackgroundCopyCallback3,
    IID_IBackgroundCopyCallback, IID_IBackgroundCopyCallback2, IID_IBackgroundCopyCallback3,
};
use crate::abi::types::{
    BG_FILE_RANGE, BG_NOTIFY_DISABLE, BG_NOTIFY_FILE_RANGES_TRANSFERRED,
    BG_NOTIFY_FILE_TRANSFERRED, BG_NOTIFY_JOB_ERROR, BG_NOTIFY_JOB_MODIFICATION,
    BG_NOTIFY_JOB_TRANSFERRED, DWORD, HRESULT, IUnknown,
};
use crate::apartment::{ClientRef, Home};
use crate::com::foreign;
use crate::error::ErrorObject;
use crate::file::FileObject;
use crate::job::JobObject;
use crate::legacy_notify::GroupDecision;
use crate::local;
use crate::runtime::Queue;

/// A client's callback object, released (in its home) when the last call that needs it
/// is over.
struct Callback {
    primary: ClientRef,
    /// The same object as IBackgroundCopyCallback2, when it implements it.
    files: Option<ClientRef>,
    /// The same object as IBackgroundCopyCallback3, when it implements it.
    ranges: Option<ClientRef>,
}

struct Registry {
    callbacks: HashMap<Guid, Arc<Callback>>,
    dispatcher: Option<Sender<Inbox>>,
}

/// What the dispatcher thread waits for.
enum Inbox {
    Notification(Notification),
    /// A call made in its home answered (or was dropped unmade: `Outcome::Done`).
    Answer {
        job: Guid,
        call: u64,
        outcome: Outcome,
    },
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    f(REGISTRY.lock().get_or_insert_with(|| Registry {
        callbacks: HashMap::new(),
        dispatcher: None,
    }))
}

/// SetNotifyInterface: `object` (NULL clears) becomes the job's callback, at home in the
/// calling thread's apartment. A job already TRANSFERRED or in ERROR is reported at once,
/// as Windows does.
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
    // SAFETY: as above.
    let ranges = unsafe { foreign::query(object, &IID_IBackgroundCopyCallback3) };
    // SAFETY: the references the queries just gave us pass to the ClientRefs.
    let (primary, files, ranges) = unsafe {
        (
            ClientRef::adopt(primary),
            files.and_then(|files| ClientRef::adopt(files)),
            ranges.and_then(|ranges| ClientRef::adopt(ranges)),
        )
    };
    let primary = primary.ok_or_else(|| QmgrError::internal("QueryInterface gave NULL"))?;
    let callback = Arc::new(Callback {
        primary,
        files,
        ranges,
    });
    let dispatcher = dispatcher(queue)?;
    let replaced = with(|r| r.callbacks.insert(job, callback));
    drop(replaced);
    let pending = match view.job.state {
        JobState::Transferred => Some(NotificationKind::Transferred),
        JobState::Error => Some(NotificationKind::Error),
        _ => None,
    };
    if let Some(kind) = pending {
        let _ = dispatcher.send(Inbox::Notification(Notification {
            job,
            kind,
            state: view.job.state,
        }));
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
        r.callbacks.get(&job).and_then(|callback| {
            let object = callback.primary.get::<IUnknown>()?;
            // SAFETY: a live reference the registry holds; the new one goes to the caller.
            unsafe { foreign::add_ref(object) };
            Some(object)
        })
    })
    .unwrap_or(std::ptr::null_mut())
}

/// Starts the dispatcher if it is not running yet (a legacy group's registration).
pub(crate) fn start_dispatcher(queue: &Queue) -> Result<()> {
    dispatcher(queue).map(drop)
}

/// The dispatcher's inbox, starting the dispatcher on first use: one thread forwards the
/// service's notifications, one decides and makes the calls.
fn dispatcher(queue: &Queue) -> Result<Sender<Inbox>> {
    let mut slot = REGISTRY.lock();
    let registry = slot.get_or_insert_with(|| Registry {
        callbacks: HashMap::new(),
        dispatcher: None,
    });
    if let Some(sender) = &registry.dispatcher {
        return Ok(sender.clone());
    }
    let events = queue.subscribe()?;
    let (sender, inbox) = mpsc::channel::<Inbox>();
    let forward = sender.clone();
    std::thread::Builder::new()
        .name("qmgr-notify-in".into())
        .spawn(move || {
            for event in events {
                if forward.send(Inbox::Notification(event)).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| QmgrError::internal(format!("cannot start the notification thread: {e}")))?;
    let mut held = Held::new(queue.clone(), sender.clone());
    std::thread::Builder::new()
        .name("qmgr-callbacks".into())
        .spawn(move || {
            loop {
                let next = match held.next_due() {
                    Some(due) => inbox.recv_timeout(due.saturating_duration_since(Instant::now())),
                    None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
                };
                match next {
                    Ok(Inbox::Notification(event)) => held.deliver(event),
                    Ok(Inbox::Answer { job, call, outcome }) => held.answered(job, call, outcome),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                // Due even while notifications keep coming.
                if held.next_due().is_some_and(|due| due <= Instant::now()) {
                    held.retry_due();
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

/// A call decided on the dispatcher thread, to be made in the home of the object it calls.
pub(crate) struct Call {
    pub(crate) home: Home,
    pub(crate) invoke: Box<dyn FnOnce() -> Outcome + Send>,
}

/// The answer a call owes the dispatcher, sent when the call is over or dropped unmade (a
/// closed apartment): then as `Outcome::Done`, which lets the job's next calls go.
struct Reply {
    answers: Sender<Inbox>,
    job: Guid,
    call: u64,
    outcome: Outcome,
}

impl Drop for Reply {
    fn drop(&mut self) {
        let _ = self.answers.send(Inbox::Answer {
            job: self.job,
            call: self.call,
            outcome: self.outcome,
        });
    }
}

/// The dispatcher's state. Per job, the notifications whose call is made and not answered
/// yet, or refused and due again, with what came after them: a job's FileTransferred
/// calls are serialized and come before its JobTransferred and JobError (Microsoft's
/// order), so while one is out or refused the later ones wait behind it; Modifications
/// are hints and pass.
struct Held {
    queue: Queue,
    answers: Sender<Inbox>,
    jobs: HashMap<Guid, HeldJob>,
    paced: Paced,
    /// The number of the last call that owes an answer.
    calls: u64,
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
    /// When each file's FileRangesTransferred was last called, by job and file.
    ranges_last: HashMap<(Guid, u32), Instant>,
    /// The ranges of a file that arrived within the interval, merged into one
    /// FileRangesTransferred that waits for the interval to pass.
    ranges_waiting: HashMap<(Guid, u32), (Instant, Notification)>,
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

    /// Whether a file's FileRangesTransferred may be called now; if not, its ranges join
    /// those waiting for the interval to pass (MINIMUM_NOTIFICATION_INTERVAL_MS paces it
    /// as it paces JobModification, but no range is dropped).
    pub(crate) fn admit_ranges(&mut self, event: &Notification, interval: Duration) -> bool {
        let NotificationKind::FileRangesTransferred { file, ranges } = &event.kind else {
            return true;
        };
        let key = (event.job, *file);
        let now = Instant::now();
        if let Some(&at) = self.ranges_last.get(&key)
            && now < at + interval
        {
            let waiting = self
                .ranges_waiting
                .entry(key)
                .or_insert_with(|| (at + interval, event.clone()));
            if let NotificationKind::FileRangesTransferred { ranges: held, .. } =
                &mut waiting.1.kind
            {
                *held = merged(held, ranges);
            }
            waiting.1.state = event.state;
            return false;
        }
        self.ranges_last.insert(key, now);
        true
    }

    fn next_due(&self) -> Option<Instant> {
        self.waiting
            .values()
            .chain(self.ranges_waiting.values())
            .map(|(at, _)| *at)
            .min()
    }

    fn take_due(&mut self) -> Vec<Notification> {
        let now = Instant::now();
        let due: Vec<Guid> = self
            .waiting
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(job, _)| *job)
            .collect();
        let due_ranges: Vec<(Guid, u32)> = self
            .ranges_waiting
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(key, _)| *key)
            .collect();
        due.into_iter()
            .filter_map(|job| self.waiting.remove(&job).map(|(_, event)| event))
            .chain(
                due_ranges
                    .into_iter()
                    .filter_map(|key| self.ranges_waiting.remove(&key).map(|(_, event)| event)),
            )
            .collect()
    }

    fn forget(&mut self, job: Guid) {
        self.last.remove(&job);
        self.waiting.remove(&job);
        self.ranges_last.retain(|(of, _), _| *of != job);
        self.ranges_waiting.retain(|(of, _), _| *of != job);
    }
}

struct HeldJob {
    /// The first is the one whose call is out or refused.
    waiting: VecDeque<Notification>,
    /// The wait after the next refusal.
    delay: Duration,
    blocked: Blocked,
}

enum Blocked {
    /// The call of this number is out, its answer not back yet.
    Answer(u64),
    /// Refused; called again at this instant.
    RetryAt(Instant),
}

impl Held {
    fn new(queue: Queue, answers: Sender<Inbox>) -> Held {
        Held {
            queue,
            answers,
            jobs: HashMap::new(),
            paced: Paced::default(),
            calls: 0,
        }
    }

    fn next_due(&self) -> Option<Instant> {
        let retries = self.jobs.values().filter_map(|held| match held.blocked {
            Blocked::RetryAt(due) => Some(due),
            Blocked::Answer(_) => None,
        });
        retries.chain(self.paced.next_due()).min()
    }

    /// Takes a notification from the service: calls the job's callback, or queues the
    /// notification behind one whose call is out or refused.
    fn deliver(&mut self, event: Notification) {
        // A certificate check waits for nothing else the job's callbacks do.
        if let NotificationKind::CertificateCheck {
            check,
            file,
            client,
        } = event.kind
        {
            let queue = &self.queue;
            crate::boundary::guarded((), || {
                crate::cert_callback::validate(queue, event.job, check, file, client);
            });
            return;
        }
        let job = event.job;
        if event.state.is_final() {
            self.jobs.remove(&job);
            self.paced.forget(job);
        } else if event.kind != NotificationKind::Modification {
            if matches!(event.kind, NotificationKind::FileRangesTransferred { .. }) {
                let interval = self
                    .queue
                    .job_summary(job)
                    .map(|view| view.job.settings.minimum_notification_interval)
                    .unwrap_or_default();
                if !self.paced.admit_ranges(&event, interval) {
                    return;
                }
            }
            if let Some(held) = self.jobs.get_mut(&job) {
                held.waiting.push_back(event);
            } else {
                self.jobs.insert(
                    job,
                    HeldJob {
                        waiting: VecDeque::from([event]),
                        delay: FIRST_RETRY,
                        blocked: Blocked::Answer(0),
                    },
                );
                self.advance(job);
            }
            return;
        }
        // A final notification or a Modification: nothing waits for its answer. A job's
        // Modification still waiting in an apartment is replaced by the newer one.
        let paced = &mut self.paced;
        let call = crate::boundary::guarded(None, || decide(&self.queue, &event, paced));
        if let Some(call) = call {
            make(call, Some(job), None);
        }
    }

    /// Calls for the job's first waiting notification; the ones with nothing to call are
    /// passed over. Without waiting notifications the job is no longer held.
    fn advance(&mut self, job: Guid) {
        loop {
            let Some(front) = self
                .jobs
                .get(&job)
                .and_then(|held| held.waiting.front().cloned())
            else {
                self.jobs.remove(&job);
                return;
            };
            let paced = &mut self.paced;
            let call = crate::boundary::guarded(None, || decide(&self.queue, &front, paced));
            let Some(held) = self.jobs.get_mut(&job) else {
                return;
            };
            let Some(call) = call else {
                held.waiting.pop_front();
                continue;
            };
            self.calls += 1;
            held.blocked = Blocked::Answer(self.calls);
            let reply = Reply {
                answers: self.answers.clone(),
                job,
                call: self.calls,
                outcome: Outcome::Done,
            };
            make(call, None, Some(reply));
            return;
        }
    }

    /// The answer of a job's call: the next notification goes, or the refused one is
    /// called again later, each refusal doubling the wait up to `LONGEST_RETRY`.
    fn answered(&mut self, job: Guid, call: u64, outcome: Outcome) {
        let Some(held) = self.jobs.get_mut(&job) else {
            return;
        };
        if !matches!(held.blocked, Blocked::Answer(out) if out == call) {
            return;
        }
        match outcome {
            Outcome::Done => {
                held.waiting.pop_front();
                self.advance(job);
            }
            Outcome::Refused => {
                held.blocked = Blocked::RetryAt(Instant::now() + held.delay);
                held.delay = (held.delay * 2).min(LONGEST_RETRY);
            }
        }
    }

    /// Calls again the callbacks whose wait is over, and the modifications whose interval
    /// has passed.
    fn retry_due(&mut self) {
        for event in self.paced.take_due() {
            self.deliver(event);
        }
        let now = Instant::now();
        let due: Vec<Guid> = self
            .jobs
            .iter()
            .filter(|(_, held)| matches!(held.blocked, Blocked::RetryAt(at) if at <= now))
            .map(|(job, _)| *job)
            .collect();
        for job in due {
            self.advance(job);
        }
    }
}

/// The union of two lists of ranges, merged and ordered by offset.
fn merged(
    first: &[qmgr_core::ranges::FileRange],
    second: &[qmgr_core::ranges::FileRange],
) -> Vec<qmgr_core::ranges::FileRange> {
    use qmgr_core::on_demand::{Span, SpanSet};
    SpanSet::of(first.iter().chain(second).map(|range| Span {
        start: range.offset,
        end: range.offset.saturating_add(range.length),
    }))
    .to_file_ranges()
}

/// Makes `call` in its home; `key` lets a newer call replace it while it waits there.
fn make(call: Call, key: Option<Guid>, reply: Option<Reply>) {
    let Call { home, invoke } = call;
    home.run(key, move || {
        let outcome = crate::boundary::guarded(Outcome::Done, invoke);
        if let Some(mut reply) = reply {
            reply.outcome = outcome;
        }
    });
}

/// Whether the job is still where a notification of `kind` says (a JobTransferred called
/// again finds the job still TRANSFERRED).
fn still_there(kind: &NotificationKind, view: &JobSummary) -> bool {
    match kind {
        NotificationKind::Transferred => view.job.state == JobState::Transferred,
        NotificationKind::Error => view.job.state == JobState::Error,
        NotificationKind::Modification
        | NotificationKind::FileTransferred { .. }
        | NotificationKind::FileRangesTransferred { .. } => true,
        NotificationKind::CertificateCheck { .. } => false,
    }
}

/// Decides the call a notification asks for: the job's callback (or its legacy group's),
/// as its notify flags allow, if the job is still where the notification says. A final
/// notification lets go of the job's registration instead.
fn decide(queue: &Queue, event: &Notification, paced: &mut Paced) -> Option<Call> {
    if event.state.is_final() {
        local::ended(event.job, event.state);
        unregister(event.job);
        crate::cert_callback::forget(event.job);
        return None;
    }
    let callback = with(|r| r.callbacks.get(&event.job).cloned());
    if callback.is_none() && !crate::legacy_notify::any() {
        return None;
    }
    // The summary: a notification never costs the job's whole file list.
    let view = queue.job_summary(event.job).ok()?;
    // A legacy group's job notifies the group's IBackgroundCopyCallback1, if it has one.
    if let GroupDecision::Decided(call) = crate::legacy_notify::decide(queue, event, &view, paced) {
        return call;
    }
    let callback = callback?;
    let flags = view.job.settings.notify_flags;
    if flags & BG_NOTIFY_DISABLE != 0 {
        return None;
    }
    let wanted = match &event.kind {
        NotificationKind::Transferred => flags & BG_NOTIFY_JOB_TRANSFERRED,
        NotificationKind::FileRangesTransferred { .. } => flags & BG_NOTIFY_FILE_RANGES_TRANSFERRED,
        NotificationKind::Error => flags & BG_NOTIFY_JOB_ERROR,
        NotificationKind::Modification => flags & BG_NOTIFY_JOB_MODIFICATION,
        NotificationKind::FileTransferred { .. } => flags & BG_NOTIFY_FILE_TRANSFERRED,
        // Answered in `Held::deliver`, never here.
        NotificationKind::CertificateCheck { .. } => 0,
    };
    if wanted == 0 || !still_there(&event.kind, &view) {
        return None;
    }
    if event.kind == NotificationKind::Modification
        && !paced.admit(event, view.job.settings.minimum_notification_interval)
    {
        return None;
    }
    let home = callback.primary.home().clone();
    // A call that waited for its apartment looks at the job again when it is made.
    let refresh = home.is_apartment();
    let queue = queue.clone();
    let event = event.clone();
    Some(Call {
        home,
        invoke: Box::new(move || invoke(&queue, &event, &callback, view, refresh)),
    })
}

/// Makes the call `decide` chose, in the callback's home.
fn invoke(
    queue: &Queue,
    event: &Notification,
    callback: &Callback,
    view: JobSummary,
    refresh: bool,
) -> Outcome {
    let view = if refresh {
        match queue.job_summary(event.job) {
            Ok(view) if still_there(&event.kind, &view) => view,
            _ => return Outcome::Done,
        }
    } else {
        view
    };
    let Some(primary) = callback.primary.get::<IBackgroundCopyCallback>() else {
        return Outcome::Done;
    };
    let files = callback
        .files
        .as_ref()
        .and_then(ClientRef::get::<IBackgroundCopyCallback2>);
    let job = JobObject::create(queue.clone(), event.job, Some(view.clone()));
    // In the calls below, `primary` and `files` are live references `callback` holds for
    // the whole call, made in their home, and `job` and the objects made for the call are
    // references the library owns and releases afterwards.
    let ranges = callback
        .ranges
        .as_ref()
        .and_then(ClientRef::get::<IBackgroundCopyCallback3>);
    let answer: HRESULT = match &event.kind {
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
        NotificationKind::FileTransferred { file } => match files {
            Some(files) => match queue.job_file(event.job, *file) {
                Ok(Some(record)) => {
                    let file = FileObject::create(queue.clone(), event.job, *file, record);
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
        NotificationKind::FileRangesTransferred {
            file,
            ranges: transferred,
        } => match (ranges, queue.job_file(event.job, *file)) {
            (Some(ranges), Ok(Some(record))) => {
                let file = FileObject::create(queue.clone(), event.job, *file, record);
                let list: Vec<BG_FILE_RANGE> = transferred
                    .iter()
                    .map(|range| BG_FILE_RANGE {
                        InitialOffset: range.offset,
                        Length: range.length,
                    })
                    .collect();
                let count = DWORD::try_from(list.len()).unwrap_or(DWORD::MAX);
                // SAFETY: see above; `list` outlives the call, which only reads it.
                unsafe {
                    let answer = ((*(*ranges).lpVtbl).FileRangesTransferred)(
                        ranges,
                        job,
                        file,
                        count,
                        list.as_ptr(),
                    );
                    foreign::release(file.cast());
                    answer
                }
            }
            _ => hresult::S_OK.0,
        },
        NotificationKind::CertificateCheck { .. } => hresult::S_OK.0,
    };
    // SAFETY: the reference `create` gave the library.
    unsafe { foreign::release(job.cast()) };
    if qmgr_core::hresult::HResult(answer).is_failure() {
        Outcome::Refused
    } else {
        Outcome::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmgr_core::ranges::FileRange;

    fn ranges_of(job: Guid, file: u32, ranges: &[(u64, u64)]) -> Notification {
        Notification {
            job,
            kind: NotificationKind::FileRangesTransferred {
                file,
                ranges: ranges
                    .iter()
                    .map(|&(offset, length)| FileRange { offset, length })
                    .collect(),
            },
            state: JobState::Transferring,
        }
    }

    #[test]
    fn ranges_within_the_interval_wait_merged_and_none_is_dropped() {
        let mut paced = Paced::default();
        let job = Guid::new_random();
        let hour = Duration::from_secs(3600);
        assert!(paced.admit_ranges(&ranges_of(job, 0, &[(100, 10)]), hour));
        assert!(!paced.admit_ranges(&ranges_of(job, 0, &[(0, 10)]), hour));
        assert!(!paced.admit_ranges(&ranges_of(job, 0, &[(10, 5), (200, 1)]), hour));
        assert!(
            paced.admit_ranges(&ranges_of(job, 1, &[(0, 1)]), hour),
            "each file has its own pace"
        );
        assert!(paced.next_due().is_some());
        assert!(
            paced.take_due().is_empty(),
            "nothing is due before the interval"
        );
        let (_, waiting) = &paced.ranges_waiting[&(job, 0)];
        assert_eq!(
            waiting.kind,
            NotificationKind::FileRangesTransferred {
                file: 0,
                ranges: vec![
                    FileRange {
                        offset: 0,
                        length: 15
                    },
                    FileRange {
                        offset: 200,
                        length: 1
                    }
                ],
            }
        );
        paced.forget(job);
        assert!(
            paced.next_due().is_none(),
            "a job that ended waits for nothing"
        );
        assert!(
            paced.admit_ranges(&ranges_of(job, 0, &[(0, 1)]), Duration::ZERO),
            "without an interval every call goes at once"
        );
        assert!(paced.admit_ranges(&ranges_of(job, 0, &[(1, 1)]), Duration::ZERO));
    }
}
