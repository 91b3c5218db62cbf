//! Time as the queue manager sees it: wall-clock timestamps for what users read and
//! retry times that survive restarts, a monotonic clock for time slices and batching.
//! Tests use [`ManualClock`] so retry delays of minutes take no time.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use qmgr_core::Timestamp;

pub trait Clock: Send + Sync + 'static {
    /// The wall-clock time.
    fn now(&self) -> Timestamp;
    /// Time since an arbitrary start; never goes back.
    fn monotonic(&self) -> Duration;
    /// How far east of UTC the machine's local time is at `at`, in seconds (bandwidth
    /// schedules are in local time).
    fn utc_offset(&self, at: Timestamp) -> i32 {
        local_utc_offset(at)
    }
}

/// The local time zone's offset at `at` (from `TZ` or `/etc/localtime`, as the C library
/// reads them); 0 when the C library cannot say.
#[allow(unsafe_code)]
pub fn local_utc_offset(at: Timestamp) -> i32 {
    let seconds: libc::time_t = at.0.div_euclid(1_000_000);
    // SAFETY: `tm` is plain data that localtime_r fills in; all-zero is a valid value of it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals of the right types; localtime_r is the
    // re-entrant variant and keeps no pointer to either.
    let filled = unsafe { libc::localtime_r(&raw const seconds, &raw mut tm) };
    if filled.is_null() {
        0
    } else {
        i32::try_from(tm.tm_gmtoff).unwrap_or(0)
    }
}

/// The real clocks.
#[derive(Debug)]
pub struct SystemClock {
    start: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn monotonic(&self) -> Duration {
        self.start.elapsed()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    times: Mutex<(Timestamp, Duration)>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self {
            times: Mutex::new((start, Duration::ZERO)),
        }
    }

    /// Moves both clocks forward.
    pub fn advance(&self, by: Duration) {
        let mut times = self.times.lock();
        times.0 = times.0.plus(by);
        times.1 += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.times.lock().0
    }

    fn monotonic(&self) -> Duration {
        self.times.lock().1
    }

    /// A manual clock keeps UTC as its local time, so tests of schedules need no time zone.
    fn utc_offset(&self, _at: Timestamp) -> i32 {
        0
    }
}
