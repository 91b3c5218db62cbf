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
    /// Time since an arbitrary start, counting time the machine spent suspended: what the
    /// wall clock should have moved by, so that a difference is the wall clock jumping.
    fn elapsed_with_suspend(&self) -> Duration {
        self.monotonic()
    }
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
    boot_start: Duration,
}

impl SystemClock {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            boot_start: boot_time(),
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

    fn elapsed_with_suspend(&self) -> Duration {
        boot_time().saturating_sub(self.boot_start)
    }
}

/// CLOCK_BOOTTIME: monotonic, and counting suspended time (CLOCK_MONOTONIC does not).
#[allow(unsafe_code)]
fn boot_time() -> Duration {
    // SAFETY: plain data that clock_gettime fills in; all-zero is a valid value of it.
    let mut time: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is to a live local of the right type, kept by no one.
    let failed = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &raw mut time) } != 0;
    if failed {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(time.tv_sec).unwrap_or(0),
        u32::try_from(time.tv_nsec).unwrap_or(0),
    )
}

/// The real clocks, the wall clock moved by an offset read from a file: how tests make
/// a qmgrd see the wall clock jump (`QMGR_WALL_CLOCK_OFFSET_FILE`) without changing the
/// machine's clock. The file holds whole seconds, signed; it is read again at most every
/// 100 ms; a missing or unreadable file is an offset of zero.
#[derive(Debug)]
pub struct OffsetClock {
    system: SystemClock,
    file: std::path::PathBuf,
    /// When the file was last read, and the offset in microseconds it held.
    read: Mutex<(Option<Instant>, i64)>,
}

impl OffsetClock {
    pub fn new(file: std::path::PathBuf) -> Self {
        Self {
            system: SystemClock::new(),
            file,
            read: Mutex::new((None, 0)),
        }
    }

    fn offset_micros(&self) -> i64 {
        let mut read = self.read.lock();
        if read
            .0
            .is_none_or(|at| at.elapsed() >= Duration::from_millis(100))
        {
            let seconds = std::fs::read_to_string(&self.file)
                .ok()
                .and_then(|text| text.trim().parse::<i64>().ok())
                .unwrap_or(0);
            *read = (Some(Instant::now()), seconds.saturating_mul(1_000_000));
        }
        read.1
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.system.now().0.saturating_add(self.offset_micros()))
    }

    fn monotonic(&self) -> Duration {
        self.system.monotonic()
    }

    fn elapsed_with_suspend(&self) -> Duration {
        self.system.elapsed_with_suspend()
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

    /// Moves the wall clock alone by `micros` (negative: back), as when someone sets it.
    pub fn jump_wall_clock(&self, micros: i64) {
        let mut times = self.times.lock();
        times.0 = Timestamp(times.0.0.saturating_add(micros));
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
