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
}
