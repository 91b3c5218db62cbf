//! Apartments: on which thread the library calls a client's COM objects.
//!
//! As on Windows, a thread that called `CoInitializeEx(NULL, COINIT_APARTMENTTHREADED)` (or
//! `CoInitialize`) is a single-threaded apartment (STA): the objects it hands to the library
//! (its callbacks) are called, AddRef'd and Released on that thread only, and only while the
//! thread lets the library in — while it waits in `CoWaitForMultipleHandles` or pumps with
//! `QmgrDispatchCallbacks`. Until then their calls wait in the apartment's queue, and the
//! apartment's eventfd (`QmgrGetCallbackEventFd`) is readable while one waits, so that a
//! GLib or epoll loop can watch it and pump. A waiting call that a newer one of the same
//! key replaces is dropped (a job's latest modification replaces an older one), so a thread
//! that never pumps costs a bounded queue.
//!
//! Objects handed in on any other thread (the multithreaded apartment, or a thread that
//! never called CoInitializeEx) may be called from any thread, as BITS requires of them:
//! the library calls them at once, from its own threads.
//!
//! The apartment closes with the thread's last `CoUninitialize`, or when the thread ends:
//! the calls still waiting are dropped and the library lets go of the objects at home there
//! (on that thread), as Windows disconnects an apartment's objects.
//!
//! For the rest of the library: [`ClientRef::adopt`] takes a client's object (a reference
//! from QueryInterface) at home where it was handed in; `client.home().run(key, call)` runs
//! a call there, and inside the call `client.get()` gives the pointer to call. A call whose
//! answer is needed sends it back over a channel (notify.rs: an answer sent on drop, so a
//! call dropped unrun answers too); a caller that must not wait forever waits on that
//! channel with a time-out, since an STA thread may never pump.

#![expect(
    non_snake_case,
    reason = "exported functions and their parameters keep Windows' names"
)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::{c_int, c_void};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use qmgr_core::hresult::{self, HResult};
use qmgr_core::{Guid, QmgrError, Result};
use rustix::event::{EventfdFlags, eventfd};

use crate::abi::types::{
    COWAIT_ALERTABLE, COWAIT_DISPATCH_CALLS, COWAIT_DISPATCH_WINDOW_MESSAGES,
    COWAIT_INPUTAVAILABLE, COWAIT_WAITALL, DWORD, HRESULT, INFINITE, IUnknown, LPDWORD, LPHANDLE,
    MAXIMUM_WAIT_OBJECTS, ULONG, WAIT_IO_COMPLETION,
};
use crate::boundary::{self, FromCaller};
use crate::com::foreign;

/// A thread's concurrency model, as CoInitializeEx set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Model {
    /// `COINIT_APARTMENTTHREADED`: a single-threaded apartment.
    SingleThreaded,
    /// `COINIT_MULTITHREADED`.
    MultiThreaded,
}

/// What CoInitializeEx recorded for the calling thread.
struct ThreadCom {
    model: Option<Model>,
    /// Successful CoInitializeEx calls not yet balanced by CoUninitialize.
    initializations: u32,
    apartment: Option<Arc<Apartment>>,
}

impl Drop for ThreadCom {
    fn drop(&mut self) {
        // A thread that ends without its last CoUninitialize closes its apartment.
        if let Some(apartment) = self.apartment.take() {
            apartment.close();
        }
    }
}

thread_local! {
    static THREAD: RefCell<ThreadCom> = const {
        RefCell::new(ThreadCom {
            model: None,
            initializations: 0,
            apartment: None,
        })
    };
}

/// CoInitializeEx on the calling thread: `S_OK` the first time, `S_FALSE` for the same
/// model again, `RPC_E_CHANGED_MODE` for another one (which needs no CoUninitialize).
pub(crate) fn initialize(model: Model) -> Result<HResult> {
    THREAD.with(|thread| {
        let mut thread = thread.borrow_mut();
        if thread.initializations > 0 {
            return if thread.model == Some(model) {
                thread.initializations += 1;
                Ok(hresult::S_FALSE)
            } else {
                Err(
                    QmgrError::from_code(hresult::RPC_E_CHANGED_MODE).context(format_args!(
                        "this thread is already {}",
                        match thread.model {
                            Some(Model::SingleThreaded) => "a single-threaded apartment",
                            _ => "in the multithreaded apartment",
                        }
                    )),
                )
            };
        }
        if model == Model::SingleThreaded {
            thread.apartment = Some(Apartment::open()?);
        }
        thread.model = Some(model);
        thread.initializations = 1;
        Ok(hresult::S_OK)
    })
}

/// CoUninitialize on the calling thread; the last one closes its apartment. False when the
/// thread had no initialization left to end.
pub(crate) fn uninitialize() -> bool {
    let ended = THREAD
        .try_with(|thread| {
            let mut thread = thread.try_borrow_mut().ok()?;
            if thread.initializations == 0 {
                return None;
            }
            thread.initializations -= 1;
            if thread.initializations > 0 {
                return Some(None);
            }
            thread.model = None;
            Some(thread.apartment.take())
        })
        .ok()
        .flatten();
    match ended {
        None => false,
        Some(apartment) => {
            // Outside the borrow: closing releases client objects, which may call us.
            if let Some(apartment) = apartment {
                apartment.close();
            }
            true
        }
    }
}

/// The calling thread's model, if it called CoInitializeEx.
pub(crate) fn current_model() -> Option<Model> {
    THREAD
        .try_with(|thread| thread.try_borrow().ok().and_then(|thread| thread.model))
        .ok()
        .flatten()
}

/// The calling thread's apartment, if it is an STA.
fn current_apartment() -> Option<Arc<Apartment>> {
    THREAD
        .try_with(|thread| {
            thread
                .try_borrow()
                .ok()
                .and_then(|thread| thread.apartment.clone())
        })
        .ok()
        .flatten()
}

/// Where a client's object is called.
#[derive(Clone)]
pub(crate) enum Home {
    /// From any thread (the object was handed in outside an STA).
    Anywhere,
    /// On the thread of this STA, while it pumps.
    Apartment(Arc<Apartment>),
}

impl Home {
    /// The home of objects the calling thread hands in.
    pub(crate) fn current() -> Home {
        current_apartment().map_or(Home::Anywhere, Home::Apartment)
    }

    pub(crate) fn is_apartment(&self) -> bool {
        matches!(self, Home::Apartment(_))
    }

    /// Runs `call` in this home: at once, on the calling thread, for objects that may be
    /// called from anywhere; else queued for the apartment's thread behind the calls
    /// already waiting, replacing a waiting call with the same `key`. A call that is
    /// replaced, or that comes after the apartment closed, is dropped without running:
    /// whatever it owns is dropped with it, so an answer it owes should be sent on drop.
    pub(crate) fn run(&self, key: Option<Guid>, call: impl FnOnce() + Send + 'static) {
        match self {
            Home::Anywhere => call(),
            Home::Apartment(apartment) => apartment.post(key, Box::new(call)),
        }
    }
}

/// A reference to a client's COM object, owned by the library, at home where it was handed
/// in: in an STA it is called and released only on the apartment's thread.
pub(crate) struct ClientRef {
    slot: Arc<Slot>,
    home: Home,
}

/// The pointer of a [`ClientRef`]; emptied when its reference is given up (so the owning
/// apartment can give it up at close).
struct Slot(Mutex<Option<Foreign>>);

/// A client's interface pointer holding one reference.
#[derive(Clone, Copy)]
struct Foreign(NonNull<IUnknown>);

// SAFETY: the pointer moves between threads only to be called or released in its home:
// `ClientRef::get` is for calls made through `Home::run`, and releases of apartment objects
// are queued for the apartment's thread (`Apartment::release`).
unsafe impl Send for Foreign {}

impl Foreign {
    fn release(self) {
        // SAFETY: the reference this value stands for, given up once (the slot was emptied).
        boundary::guarded((), || unsafe { foreign::release(self.0.as_ptr()) });
    }
}

impl ClientRef {
    /// Takes over `object`'s reference, at home in the calling thread's apartment (or
    /// anywhere when the thread is not an STA).
    ///
    /// # Safety
    ///
    /// `object` is a live COM interface pointer whose reference passes to the result.
    pub(crate) unsafe fn adopt(object: *mut c_void) -> Option<ClientRef> {
        let object = NonNull::new(object.cast::<IUnknown>())?;
        let slot = Arc::new(Slot(Mutex::new(Some(Foreign(object)))));
        let home = Home::current();
        if let Home::Apartment(apartment) = &home {
            apartment.adopt(&slot);
        }
        Some(ClientRef { slot, home })
    }

    pub(crate) fn home(&self) -> &Home {
        &self.home
    }

    /// The object, for a call made in its home (see [`Home::run`]); None once its apartment
    /// closed.
    pub(crate) fn get<I>(&self) -> Option<*mut I> {
        self.slot
            .0
            .lock()
            .map(|object| object.0.as_ptr().cast::<I>())
    }
}

impl Drop for ClientRef {
    fn drop(&mut self) {
        match &self.home {
            Home::Anywhere => {
                let object = self.slot.0.lock().take();
                if let Some(object) = object {
                    object.release();
                }
            }
            Home::Apartment(apartment) => apartment.release(&self.slot),
        }
    }
}

/// A single-threaded apartment: the thread that is one, the calls waiting for it, and the
/// eventfd that is readable while any waits.
pub(crate) struct Apartment {
    /// The apartment's thread, as pthread names it: unlike `std::thread::current`, it can
    /// be asked while the thread's locals are being destroyed (the apartment closes then).
    thread: libc::pthread_t,
    state: Mutex<Waiting>,
    pending: OwnedFd,
}

#[derive(Default)]
struct Waiting {
    queue: VecDeque<Queued>,
    closed: bool,
    /// The objects at home here, to give up when the apartment closes.
    objects: Vec<Weak<Slot>>,
}

enum Queued {
    Call {
        key: Option<Guid>,
        call: Box<dyn FnOnce() + Send>,
    },
    /// A reference given up on another thread, released here.
    Release(Foreign),
}

impl Apartment {
    fn open() -> Result<Arc<Apartment>> {
        let pending = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).map_err(|e| {
            QmgrError::from_code(hresult::E_OUTOFMEMORY)
                .context(format_args!("cannot create the apartment's eventfd: {e}"))
        })?;
        Ok(Arc::new(Apartment {
            thread: current_thread(),
            state: Mutex::new(Waiting::default()),
            pending,
        }))
    }

    fn is_current_thread(&self) -> bool {
        // SAFETY: pthread_equal only compares two thread ids.
        unsafe { libc::pthread_equal(self.thread, current_thread()) != 0 }
    }

    pub(crate) fn pending_fd(&self) -> RawFd {
        self.pending.as_raw_fd()
    }

    fn adopt(&self, slot: &Arc<Slot>) {
        let mut state = self.state.lock();
        state.objects.retain(|object| object.strong_count() > 0);
        state.objects.push(Arc::downgrade(slot));
    }

    /// Queues `entry` (see [`Home::run`]); what it replaces, or the entry itself when the
    /// apartment closed, is dropped after the lock is let go (dropping may release objects,
    /// which takes the lock again).
    fn post(&self, key: Option<Guid>, call: Box<dyn FnOnce() + Send>) {
        let dropped = {
            let mut state = self.state.lock();
            if state.closed {
                Some(Queued::Call { key, call })
            } else {
                let replaced = key.and_then(|key| {
                    let at = state.queue.iter().position(
                        |queued| matches!(queued, Queued::Call { key: Some(k), .. } if *k == key),
                    )?;
                    state.queue.remove(at)
                });
                self.push(&mut state, Queued::Call { key, call });
                replaced
            }
        };
        drop(dropped);
    }

    /// Gives up a slot's reference: now on the apartment's own thread, else queued for it.
    /// After the apartment closed the slot is already empty.
    fn release(&self, slot: &Slot) {
        if self.is_current_thread() {
            let object = slot.0.lock().take();
            if let Some(object) = object {
                object.release();
            }
            return;
        }
        let mut state = self.state.lock();
        let object = slot.0.lock().take();
        if let Some(object) = object {
            self.push(&mut state, Queued::Release(object));
        }
    }

    fn push(&self, state: &mut Waiting, queued: Queued) {
        if state.queue.is_empty() {
            // The eventfd turns readable with the first waiting call.
            let _ = rustix::io::write(&self.pending, &1u64.to_ne_bytes());
        }
        state.queue.push_back(queued);
    }

    /// Runs the waiting calls and releases, on the apartment's thread, until none waits;
    /// returns how many ran.
    fn run_pending(&self) -> usize {
        debug_assert!(self.is_current_thread());
        let mut ran = 0;
        loop {
            let next = {
                let mut state = self.state.lock();
                let next = state.queue.pop_front();
                if state.queue.is_empty() {
                    // Readable no more: nothing waits.
                    let mut count = [0u8; 8];
                    let _ = rustix::io::read(&self.pending, &mut count);
                }
                next
            };
            match next {
                None => return ran,
                Some(Queued::Call { call, .. }) => call(),
                Some(Queued::Release(object)) => object.release(),
            }
            ran += 1;
        }
    }

    /// Closes the apartment (on its thread): the waiting calls are dropped, the waiting
    /// releases done, and every object still at home here released.
    fn close(&self) {
        let (queue, objects) = {
            let mut state = self.state.lock();
            state.closed = true;
            let queue = std::mem::take(&mut state.queue);
            let objects: Vec<Foreign> = std::mem::take(&mut state.objects)
                .iter()
                .filter_map(Weak::upgrade)
                .filter_map(|slot| slot.0.lock().take())
                .collect();
            let mut count = [0u8; 8];
            let _ = rustix::io::read(&self.pending, &mut count);
            (queue, objects)
        };
        for queued in queue {
            match queued {
                Queued::Call { call, .. } => drop(call),
                Queued::Release(object) => object.release(),
            }
        }
        for object in objects {
            object.release();
        }
    }
}

fn current_thread() -> libc::pthread_t {
    // SAFETY: pthread_self has no preconditions and cannot fail.
    unsafe { libc::pthread_self() }
}

/// When a wait ends: never (`INFINITE`), or at an instant.
#[derive(Clone, Copy)]
struct Deadline(Option<Instant>);

impl Deadline {
    fn after(milliseconds: DWORD) -> Deadline {
        Deadline(
            (milliseconds != INFINITE)
                .then(|| Instant::now() + Duration::from_millis(u64::from(milliseconds))),
        )
    }

    /// The time left as poll(2) takes it: -1 for none, else milliseconds rounded up.
    fn poll_timeout(self) -> c_int {
        match self.0 {
            None => -1,
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                let milliseconds = left.as_micros().div_ceil(1000);
                c_int::try_from(milliseconds).unwrap_or(c_int::MAX)
            }
        }
    }
}

/// How a wait ended.
enum Woken {
    /// The handle of this index (`COWAIT_WAITALL`: all of them, index 0) is signaled.
    Handle(DWORD),
    /// A signal handler ran during an alertable wait.
    Signal,
    TimedOut,
}

/// poll(2) over `fds` for readability; `Err(EINTR)` when a signal interrupted it.
fn poll_readable(fds: &mut [libc::pollfd], timeout: c_int) -> std::io::Result<()> {
    for fd in fds.iter_mut() {
        fd.events = libc::POLLIN;
        fd.revents = 0;
    }
    let count = libc::nfds_t::try_from(fds.len()).unwrap_or(libc::nfds_t::MAX);
    // SAFETY: `fds` is a valid array of `count` pollfd structures for the whole call.
    let answer = unsafe { libc::poll(fds.as_mut_ptr(), count, timeout) };
    if answer < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Waits for `handles` (see `CoWaitForMultipleHandles`), running the calls that wait for
/// `apartment` meanwhile.
fn wait_for_handles(
    handles: &[RawFd],
    wait_all: bool,
    alertable: bool,
    deadline: Deadline,
    apartment: Option<&Apartment>,
) -> Result<Woken> {
    loop {
        if let Some(apartment) = apartment {
            apartment.run_pending();
        }
        let mut now: Vec<libc::pollfd> = handles.iter().copied().map(pollfd).collect();
        poll_readable(&mut now, 0).or_else(|error| match error.raw_os_error() {
            Some(libc::EINTR) => Ok(()),
            _ => Err(QmgrError::from_code(hresult::E_FAIL).context(format_args!("poll: {error}"))),
        })?;
        if let Some(index) = now.iter().position(|fd| fd.revents & libc::POLLNVAL != 0) {
            return Err(
                QmgrError::from_code(hresult::E_HANDLE).context(format_args!(
                    "pHandles[{index}] is not an open file descriptor"
                )),
            );
        }
        let signaled: Vec<bool> = now.iter().map(|fd| fd.revents != 0).collect();
        if wait_all {
            if signaled.iter().all(|&on| on) {
                return Ok(Woken::Handle(0));
            }
        } else if let Some(index) = signaled.iter().position(|&on| on) {
            return Ok(Woken::Handle(DWORD::try_from(index).unwrap_or(DWORD::MAX)));
        }
        let timeout = deadline.poll_timeout();
        if timeout == 0 {
            return Ok(Woken::TimedOut);
        }
        // Wait for a handle still unsignaled (under WAITALL, for the ones not signaled yet:
        // the signaled ones would wake the poll at once) or a call for the apartment.
        let mut watched: Vec<libc::pollfd> = handles
            .iter()
            .zip(&signaled)
            .filter(|(_, on)| !wait_all || !**on)
            .map(|(&fd, _)| pollfd(fd))
            .chain(apartment.map(|apartment| pollfd(apartment.pending_fd())))
            .collect();
        match poll_readable(&mut watched, timeout) {
            Ok(()) => {}
            Err(error) if error.raw_os_error() == Some(libc::EINTR) => {
                if alertable {
                    return Ok(Woken::Signal);
                }
            }
            Err(error) => {
                return Err(
                    QmgrError::from_code(hresult::E_FAIL).context(format_args!("poll: {error}"))
                );
            }
        }
    }
}

/// Every flag `CoWaitForMultipleHandles` knows.
const COWAIT_KNOWN: DWORD = COWAIT_WAITALL
    | COWAIT_ALERTABLE
    | COWAIT_INPUTAVAILABLE
    | COWAIT_DISPATCH_CALLS
    | COWAIT_DISPATCH_WINDOW_MESSAGES;

/// Waits until one of `pHandles` is signaled (all of them at once with `COWAIT_WAITALL`) or
/// `dwTimeout` milliseconds pass (`INFINITE`: never). A `HANDLE` here is a file descriptor,
/// `(HANDLE)(intptr_t)fd`, signaled while it is readable; the wait reads nothing from it.
///
/// On a single-threaded apartment's thread the calls waiting for the apartment (its
/// callbacks) run during the wait, on this thread, as COM's modal loop dispatches them; on
/// any other thread this is a plain wait. The flags on Linux:
///
/// - `COWAIT_DEFAULT` (0): as above.
/// - `COWAIT_WAITALL`: all handles readable at the same time; `*lpdwindex` is then 0.
/// - `COWAIT_ALERTABLE`: a signal handler that runs during the wait ends it: `S_OK` with
///   `*lpdwindex` = `WAIT_IO_COMPLETION` (without the flag the wait goes on).
/// - `COWAIT_DISPATCH_CALLS`: the apartment's calls always run during the wait; accepted.
/// - `COWAIT_INPUTAVAILABLE`, `COWAIT_DISPATCH_WINDOW_MESSAGES`: Linux threads have no
///   message queue; accepted, no effect.
///
/// `S_OK` with the index of the signaled handle (the lowest one) in `*lpdwindex`;
/// `RPC_S_CALLPENDING` when the time ran out; `E_INVALIDARG` for NULL `pHandles` or
/// `lpdwindex`, an unknown flag or more than `MAXIMUM_WAIT_OBJECTS` handles; `RPC_E_NO_SYNC`
/// when `cHandles` is 0; `E_HANDLE` when a handle is not an open descriptor.
///
/// # Safety
///
/// `pHandles` points at `cHandles` handles; `lpdwindex` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn CoWaitForMultipleHandles(
    dwFlags: DWORD,
    dwTimeout: DWORD,
    cHandles: ULONG,
    pHandles: LPHANDLE,
    lpdwindex: LPDWORD,
) -> HRESULT {
    // SAFETY: the pointers are null or valid as this function's contract says.
    let (handles, index) = unsafe { (pHandles.checked(), lpdwindex.checked()) };
    boundary::hresult(move || {
        let invalid = |why: &str| QmgrError::from_code(hresult::E_INVALIDARG).context(why);
        let index = index
            .out("lpdwindex")
            .map_err(|_| invalid("lpdwindex is NULL"))?;
        if dwFlags & !COWAIT_KNOWN != 0 {
            return Err(invalid("dwFlags holds a flag COWAIT_FLAGS does not define"));
        }
        if handles.is_null() {
            return Err(invalid("pHandles is NULL"));
        }
        if cHandles == 0 {
            return Err(QmgrError::from_code(hresult::RPC_E_NO_SYNC).context("cHandles is 0"));
        }
        if cHandles > MAXIMUM_WAIT_OBJECTS {
            return Err(invalid("more than MAXIMUM_WAIT_OBJECTS (64) handles"));
        }
        let handles = handles.slice(cHandles as usize, "pHandles")?;
        let fds = handles
            .iter()
            .enumerate()
            .map(|(at, &handle)| {
                RawFd::try_from(handle as isize)
                    .ok()
                    .filter(|fd| *fd >= 0)
                    .ok_or_else(|| {
                        QmgrError::from_code(hresult::E_HANDLE)
                            .context(format_args!("pHandles[{at}] is not a file descriptor"))
                    })
            })
            .collect::<Result<Vec<RawFd>>>()?;
        let apartment = current_apartment();
        let woken = wait_for_handles(
            &fds,
            dwFlags & COWAIT_WAITALL != 0,
            dwFlags & COWAIT_ALERTABLE != 0,
            Deadline::after(dwTimeout),
            apartment.as_deref(),
        )?;
        match woken {
            Woken::Handle(at) => {
                index.set(at);
                Ok(hresult::S_OK)
            }
            Woken::Signal => {
                index.set(WAIT_IO_COMPLETION);
                Ok(hresult::S_OK)
            }
            Woken::TimedOut => Err(QmgrError::from_code(hresult::RPC_S_CALLPENDING)
                .context(format_args!("no handle was signaled within {dwTimeout} ms"))),
        }
    })
}

/// The calling thread's apartment, or why it has none.
fn pumped_apartment() -> Result<Arc<Apartment>> {
    match current_model() {
        None => Err(QmgrError::from_code(hresult::CO_E_NOTINITIALIZED)
            .context("this thread did not call CoInitializeEx(NULL, COINIT_APARTMENTTHREADED)")),
        Some(Model::MultiThreaded) => Err(QmgrError::from_code(hresult::E_ILLEGAL_METHOD_CALL)
            .context(
                "this thread is in the multithreaded apartment: its callbacks come on the library's thread",
            )),
        Some(Model::SingleThreaded) => current_apartment()
            .ok_or_else(|| QmgrError::from_code(hresult::E_UNEXPECTED).context("the apartment is gone")),
    }
}

/// qmgr extension: runs the callbacks waiting for the calling thread's single-threaded
/// apartment, on this thread; when none waits, waits up to `dwTimeout` milliseconds
/// (`INFINITE`: as long as it takes) for one. Call it when the descriptor of
/// `QmgrGetCallbackEventFd` is readable, or instead of a message loop.
///
/// `S_OK` when at least one callback ran, `S_FALSE` when none came in time;
/// `CO_E_NOTINITIALIZED` on a thread that did not call CoInitializeEx, and
/// `E_ILLEGAL_METHOD_CALL` on a multithreaded one (its callbacks need no pump).
///
/// # Safety
///
/// None.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn QmgrDispatchCallbacks(dwTimeout: DWORD) -> HRESULT {
    boundary::hresult(|| {
        let apartment = pumped_apartment()?;
        let deadline = Deadline::after(dwTimeout);
        loop {
            if apartment.run_pending() > 0 {
                return Ok(hresult::S_OK);
            }
            let timeout = deadline.poll_timeout();
            if timeout == 0 {
                return Ok(hresult::S_FALSE);
            }
            let mut watched = [pollfd(apartment.pending_fd())];
            if let Err(error) = poll_readable(&mut watched, timeout)
                && error.raw_os_error() != Some(libc::EINTR)
            {
                return Err(
                    QmgrError::from_code(hresult::E_FAIL).context(format_args!("poll: {error}"))
                );
            }
        }
    })
}

/// qmgr extension: an eventfd that is readable while callbacks wait for the calling
/// thread's single-threaded apartment, for a poll, epoll or GLib loop to watch (then call
/// `QmgrDispatchCallbacks(0)`). The library owns it: do not read or close it; it stays
/// valid until the thread's last CoUninitialize.
///
/// `S_OK` and the descriptor in `*pFd`; `E_POINTER` for NULL; `CO_E_NOTINITIALIZED` and
/// `E_ILLEGAL_METHOD_CALL` as for `QmgrDispatchCallbacks`.
///
/// # Safety
///
/// `pFd` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn QmgrGetCallbackEventFd(pFd: *mut c_int) -> HRESULT {
    // SAFETY: null or writable, as this function's contract says.
    let out = unsafe { pFd.checked() };
    boundary::hresult(move || {
        let out = out.out("pFd")?;
        out.set(-1);
        let apartment = pumped_apartment()?;
        out.set(apartment.pending.as_fd().as_raw_fd());
        Ok(hresult::S_OK)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn same_model_again_is_s_false_and_another_is_changed_mode() {
        std::thread::spawn(|| {
            assert_eq!(initialize(Model::SingleThreaded).unwrap(), hresult::S_OK);
            assert_eq!(initialize(Model::SingleThreaded).unwrap(), hresult::S_FALSE);
            let refused = initialize(Model::MultiThreaded).unwrap_err();
            assert_eq!(refused.hresult, hresult::RPC_E_CHANGED_MODE);
            assert!(uninitialize());
            assert_eq!(current_model(), Some(Model::SingleThreaded));
            assert!(uninitialize());
            assert_eq!(current_model(), None);
            assert!(!uninitialize());
            assert_eq!(initialize(Model::MultiThreaded).unwrap(), hresult::S_OK);
            assert!(uninitialize());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn calls_wait_for_the_pump_and_a_key_keeps_only_the_latest() {
        let ran = Arc::new(Mutex::new(Vec::new()));
        std::thread::spawn(move || {
            initialize(Model::SingleThreaded).unwrap();
            let home = Home::current();
            let apartment = current_apartment().unwrap();
            let key = Guid::new_random();
            let other = std::thread::spawn({
                let home = home.clone();
                let ran = Arc::clone(&ran);
                move || {
                    for step in 0..3 {
                        let ran = Arc::clone(&ran);
                        home.run(Some(key), move || ran.lock().push(step));
                    }
                    let ran = Arc::clone(&ran);
                    home.run(None, move || ran.lock().push(10));
                }
            });
            other.join().unwrap();
            assert!(ran.lock().is_empty(), "nothing runs before the pump");
            let mut readable = [pollfd(apartment.pending_fd())];
            poll_readable(&mut readable, 0).unwrap();
            assert_ne!(readable[0].revents & libc::POLLIN, 0);
            assert_eq!(apartment.run_pending(), 2);
            assert_eq!(*ran.lock(), vec![2, 10]);
            poll_readable(&mut readable, 0).unwrap();
            assert_eq!(readable[0].revents & libc::POLLIN, 0);
            assert!(uninitialize());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_closed_apartment_drops_its_calls() {
        struct Counted(Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicUsize::new(0));
        let home = {
            let dropped = Arc::clone(&dropped);
            std::thread::spawn(move || {
                initialize(Model::SingleThreaded).unwrap();
                let home = Home::current();
                let counted = Counted(Arc::clone(&dropped));
                home.run(None, move || drop(counted));
                home
                // The thread ends without CoUninitialize: its apartment closes.
            })
            .join()
            .unwrap()
        };
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        let counted = Counted(Arc::clone(&dropped));
        home.run(None, move || drop(counted));
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            2,
            "dropped at once after the close"
        );
    }
}
