//! The receive-window controller of one background connection: LEDBAT++'s rules run at
//! the receiver (as RFC 9840 runs LEDBAT there), fed with the queueing delay the process
//! measures and acting through the window the connection may advertise.
//!
//! - Slow start grows the window by `gain` × the bytes received, and ends for good once
//!   the queueing delay passes three quarters of the target.
//! - Below the target the window grows by `gain` segments per round trip. Above it the
//!   window yields: it halves once per round trip (LEDBAT++'s largest cut; LEDBAT++ cuts
//!   `window × (delay / target − 1)`, at most half), and it keeps yielding until the delay
//!   is back under three quarters of the target. A queue that stays near the target after
//!   a cut is another flow's — a foreground download's slow start builds one — and
//!   LEDBAT++ would sit beside it with a part of the window where a scavenger should go
//!   down to its floor: measured on a 20 Mbit/s line with a 40 ms target, a download
//!   joining got 67 % of its rate alone in its first second with LEDBAT++'s cut, 82 % with
//!   this one.
//! - `gain` is `1 / min(16, ceil(2 × target / base delay))`: short paths grow gently.
//! - Periodic slowdowns: two round trips after slow start, and then each time nine times
//!   as long as the previous slowdown took, the window drops to two segments for two round
//!   trips and slow-starts back to where it was. The queue it built drains meanwhile, so
//!   the probes see the path's base delay again instead of creeping up on their own queue.
//! - The window grows only while it is used (at least half of it in flight), so it cannot
//!   run far ahead of a sender that is slower for other reasons.
//!
//! Time comes in with each tick: nothing here reads a clock.

use std::time::{Duration, Instant};

pub use qmgr_core::idle::IdlePhase;

/// Slow start ends when the queueing delay passes this share of the target.
const SLOW_START_EXIT: f64 = 0.75;
/// The largest divisor of the gain (LEDBAT++'s constant).
const MAX_GAIN_DIVISOR: f64 = 16.0;
/// A slowdown holds the window at its floor for this many round trips.
const SLOWDOWN_ROUND_TRIPS: u32 = 2;
/// The time between two slowdowns, in durations of the last slowdown.
const SLOWDOWN_SPACING: u32 = 9;
/// Segments the window starts with, like a TCP sender's initial window.
const INITIAL_SEGMENTS: f64 = 10.0;
/// The floor of the window, in segments (RFC 9840: never below two).
const MIN_SEGMENTS: f64 = 2.0;
/// Growth in one tick is at most this factor, so a burst of reading after a stall does
/// not look like a round trip's worth of acknowledgements.
const MAX_GROWTH_PER_TICK: f64 = 2.0;

/// What the connection looked like over the last tick.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Observation {
    pub now: Instant,
    /// Current delay minus base delay.
    pub queueing_delay: Duration,
    /// The base delay (the path's delay without our queue).
    pub base_delay: Duration,
    /// Bytes the connection received since the last tick.
    pub received: u64,
    /// Time since the last tick.
    pub elapsed: Duration,
}

#[derive(Clone, Copy, Debug)]
enum Stage {
    SlowStart,
    Avoidance,
    /// At the floor until `until`, then slow start back to `regain`.
    Slowdown {
        started: Instant,
        until: Option<Instant>,
        regain: f64,
    },
    /// Growing back to `regain` after a slowdown that began at `started`.
    Regrowth {
        started: Instant,
        regain: f64,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct WindowController {
    target: Duration,
    segment: f64,
    window: f64,
    stage: Stage,
    last_decrease: Option<Instant>,
    next_slowdown: Option<Instant>,
    yielding: bool,
}

impl WindowController {
    /// A controller for a connection whose segments are `segment` bytes.
    pub fn new(target: Duration, segment: u32) -> Self {
        let segment = f64::from(segment.max(1));
        Self {
            target,
            segment,
            window: INITIAL_SEGMENTS * segment,
            stage: Stage::SlowStart,
            last_decrease: None,
            next_slowdown: None,
            yielding: false,
        }
    }

    /// The segment size changed (the kernel learns the peer's MSS as data flows).
    pub fn set_segment(&mut self, segment: u32) {
        self.segment = f64::from(segment.max(1));
        self.window = self.window.max(self.floor());
    }

    /// The window to advertise, in bytes.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "the window is positive and far below 2^32"
    )]
    pub fn window(&self) -> u32 {
        self.window.min(f64::from(u32::MAX)) as u32
    }

    pub fn phase(&self) -> IdlePhase {
        match self.stage {
            Stage::SlowStart | Stage::Regrowth { .. } if !self.yielding => IdlePhase::Starting,
            Stage::Slowdown { .. } => IdlePhase::Measuring,
            _ if self.yielding => IdlePhase::Yielding,
            _ => IdlePhase::Filling,
        }
    }

    fn floor(&self) -> f64 {
        MIN_SEGMENTS * self.segment
    }

    fn gain(&self, base: Duration) -> f64 {
        let base = base.as_secs_f64().max(1e-6);
        let divisor = (2.0 * self.target.as_secs_f64() / base).ceil();
        1.0 / divisor.clamp(1.0, MAX_GAIN_DIVISOR)
    }

    /// Takes one tick's observation and returns the window to advertise.
    pub fn observe(&mut self, seen: Observation) -> u32 {
        let target = self.target.as_secs_f64();
        let delay = seen.queueing_delay.as_secs_f64();
        let round_trip = (seen.base_delay + seen.queueing_delay).max(Duration::from_micros(50));
        let gain = self.gain(seen.base_delay);
        // Yielding starts above the target and lasts until the queue is back under three
        // quarters of it: a queue that stays near the target after we cut is someone else's.
        if delay > target {
            self.yielding = true;
        } else if delay <= SLOW_START_EXIT * target {
            self.yielding = false;
        }
        #[expect(
            clippy::cast_precision_loss,
            reason = "byte counts per tick are far below 2^52"
        )]
        let received = seen.received as f64;
        // The window is in use when a round trip's worth of what arrived fills half of it.
        let in_flight = received * round_trip.as_secs_f64() / seen.elapsed.as_secs_f64().max(1e-6);
        let used = in_flight >= self.window / 2.0;
        let before = self.window;
        match self.stage {
            Stage::SlowStart | Stage::Regrowth { .. } => {
                if delay > SLOW_START_EXIT * target {
                    self.leave_slow_start(seen.now, round_trip);
                    if self.yielding {
                        self.decrease(seen.now, round_trip);
                    }
                } else if used {
                    self.window += gain * received;
                }
                if let Stage::Regrowth { started, regain } = self.stage
                    && self.window >= regain
                {
                    self.window = self.window.min(regain);
                    self.stage = Stage::Avoidance;
                    self.schedule_slowdown(seen.now, seen.now.saturating_duration_since(started));
                }
            }
            Stage::Avoidance => {
                if self.yielding {
                    self.decrease(seen.now, round_trip);
                } else if used {
                    let round_trips =
                        seen.elapsed.as_secs_f64() / round_trip.as_secs_f64().max(1e-6);
                    self.window += gain * self.segment * round_trips;
                }
                if self.next_slowdown.is_some_and(|at| seen.now >= at) {
                    self.stage = Stage::Slowdown {
                        started: seen.now,
                        until: None,
                        regain: self.window,
                    };
                    self.next_slowdown = None;
                    self.window = self.floor();
                }
            }
            Stage::Slowdown {
                started,
                until,
                regain,
            } => {
                // The hold is counted from the first tick at the floor, in the round trips
                // measured then (the queue is draining, so they shrink).
                let until = until.unwrap_or(seen.now + round_trip * SLOWDOWN_ROUND_TRIPS);
                self.stage = if seen.now >= until {
                    Stage::Regrowth { started, regain }
                } else {
                    Stage::Slowdown {
                        started,
                        until: Some(until),
                        regain,
                    }
                };
                self.window = self.floor();
            }
        }
        self.window = self
            .window
            .min(before * MAX_GROWTH_PER_TICK)
            .max(self.floor());
        self.window()
    }

    fn leave_slow_start(&mut self, now: Instant, round_trip: Duration) {
        if let Stage::SlowStart = self.stage {
            self.next_slowdown = Some(now + round_trip * SLOWDOWN_ROUND_TRIPS);
        } else if let Stage::Regrowth { started, .. } = self.stage {
            self.schedule_slowdown(now, now.saturating_duration_since(started));
        }
        self.stage = Stage::Avoidance;
    }

    fn schedule_slowdown(&mut self, now: Instant, last_took: Duration) {
        self.next_slowdown = Some(now + last_took * SLOWDOWN_SPACING);
    }

    /// The decrease while yielding: half the window, once per round trip.
    fn decrease(&mut self, now: Instant, round_trip: Duration) {
        if self
            .last_decrease
            .is_some_and(|last| now.saturating_duration_since(last) < round_trip)
        {
            return;
        }
        self.last_decrease = Some(now);
        self.window = (self.window / 2.0).max(self.floor());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: Duration = Duration::from_millis(40);
    const SEGMENT: u32 = 1448;
    const TICK: Duration = Duration::from_millis(25);

    /// A bottleneck of `rate` bytes per second with a base round trip of `base`: a window
    /// of `w` bytes keeps `w - rate * base` bytes queued, which delays by that over `rate`.
    struct Path {
        rate: f64,
        base: Duration,
        now: Instant,
    }

    impl Path {
        fn new(rate: f64, base: Duration) -> Self {
            Self {
                rate,
                base,
                now: Instant::now(),
            }
        }

        fn queueing_delay(&self, window: u32, other_queue: f64) -> Duration {
            let queued = (f64::from(window) - self.rate * self.base.as_secs_f64()).max(0.0);
            Duration::from_secs_f64((queued + other_queue) / self.rate)
        }

        /// One tick with the window `window`; another flow keeps `other_queue` bytes queued
        /// and takes `other_share` of the link.
        fn tick(
            &mut self,
            controller: &mut WindowController,
            other_queue: f64,
            other_share: f64,
        ) -> u32 {
            let window = controller.window();
            let queueing = self.queueing_delay(window, other_queue);
            let round_trip = self.base + queueing;
            let rate =
                (f64::from(window) / round_trip.as_secs_f64()).min(self.rate * (1.0 - other_share));
            self.now += TICK;
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a positive byte count far below 2^52"
            )]
            let received = (rate * TICK.as_secs_f64()) as u64;
            controller.observe(Observation {
                now: self.now,
                queueing_delay: queueing,
                base_delay: self.base,
                received,
                elapsed: TICK,
            })
        }
    }

    #[test]
    fn alone_on_a_path_it_settles_near_the_target_delay() {
        let mut path = Path::new(2_500_000.0, Duration::from_millis(20));
        let mut controller = WindowController::new(TARGET, SEGMENT);
        for _ in 0..1_600 {
            path.tick(&mut controller, 0.0, 0.0);
        }
        // Forty seconds in: the queueing delay it causes stays within the target, and the
        // link is mostly in use (a full link needs the window above rate × base = 50 kB).
        let mut delays = Vec::new();
        let mut windows = Vec::new();
        for _ in 0..400 {
            let window = path.tick(&mut controller, 0.0, 0.0);
            windows.push(window);
            delays.push(path.queueing_delay(window, 0.0));
        }
        let worst = delays.iter().max().unwrap();
        assert!(*worst <= TARGET + Duration::from_millis(5), "{worst:?}");
        let full = windows
            .iter()
            .filter(|w| f64::from(**w) >= 50_000.0)
            .count();
        assert!(
            full * 10 >= windows.len() * 8,
            "{full} of {}",
            windows.len()
        );
    }

    #[test]
    fn a_queue_built_by_someone_else_shrinks_the_window_to_its_floor() {
        let mut path = Path::new(2_500_000.0, Duration::from_millis(20));
        let mut controller = WindowController::new(TARGET, SEGMENT);
        for _ in 0..200 {
            path.tick(&mut controller, 0.0, 0.0);
        }
        assert!(controller.window() > 20 * SEGMENT);
        // A foreground flow fills 200 ms of buffer.
        for _ in 0..40 {
            path.tick(&mut controller, 500_000.0, 0.9);
        }
        assert_eq!(controller.window(), 2 * SEGMENT);
        assert_eq!(controller.phase(), IdlePhase::Yielding);
    }

    #[test]
    fn a_delay_over_the_target_halves_the_window_each_round_trip_down_to_the_floor() {
        let mut controller = WindowController::new(TARGET, SEGMENT);
        let start = Instant::now();
        let mut at = start;
        let mut seen = |controller: &mut WindowController, delay_ms: u64, received: u64| {
            at += TICK;
            controller.observe(Observation {
                now: at,
                queueing_delay: Duration::from_millis(delay_ms),
                base_delay: Duration::from_millis(20),
                received,
                elapsed: TICK,
            })
        };
        // Slow start from ten segments, at a rate that uses the window.
        while controller.window() < 100 * SEGMENT {
            seen(&mut controller, 5, 1_000_000);
        }
        let full = controller.window();
        // 200 ms of someone else's queue: a round trip of 220 ms.
        let mut windows = Vec::new();
        for _ in 0..40 {
            windows.push(seen(&mut controller, 200, 0));
        }
        assert_eq!(windows[0], full / 2);
        assert!(windows[9] <= full / 4, "{windows:?}");
        assert!(windows[30] <= full / 16, "{windows:?}");
        assert_eq!(*windows.last().unwrap(), 2 * SEGMENT);
    }

    #[test]
    fn the_window_grows_back_when_the_other_flow_leaves() {
        let mut path = Path::new(2_500_000.0, Duration::from_millis(20));
        let mut controller = WindowController::new(TARGET, SEGMENT);
        for _ in 0..200 {
            path.tick(&mut controller, 0.0, 0.0);
        }
        for _ in 0..40 {
            path.tick(&mut controller, 500_000.0, 0.9);
        }
        let low = controller.window();
        for _ in 0..400 {
            path.tick(&mut controller, 0.0, 0.0);
        }
        assert!(
            controller.window() > 10 * low,
            "{} vs {low}",
            controller.window()
        );
    }

    #[test]
    fn slow_start_ends_at_three_quarters_of_the_target() {
        let mut controller = WindowController::new(TARGET, SEGMENT);
        let now = Instant::now();
        let seen = |delay_ms: u64, at: u32| Observation {
            now: now + TICK * at,
            queueing_delay: Duration::from_millis(delay_ms),
            base_delay: Duration::from_millis(10),
            received: 1_000_000,
            elapsed: TICK,
        };
        controller.observe(seen(5, 1));
        assert_eq!(controller.phase(), IdlePhase::Starting);
        controller.observe(seen(31, 2));
        assert_eq!(controller.phase(), IdlePhase::Filling);
    }

    #[test]
    fn the_decrease_is_at_most_half_and_at_most_once_a_round_trip() {
        let mut controller = WindowController::new(TARGET, SEGMENT);
        let start = Instant::now();
        let initial = controller.window();
        let over = |at: Duration| Observation {
            now: start + at,
            queueing_delay: Duration::from_millis(400),
            base_delay: Duration::from_millis(100),
            received: 0,
            elapsed: TICK,
        };
        controller.observe(over(Duration::from_millis(25)));
        assert_eq!(controller.window(), initial / 2);
        // The round trip is 500 ms: a tick 25 ms later does not cut again.
        controller.observe(over(Duration::from_millis(50)));
        assert_eq!(controller.window(), initial / 2);
        controller.observe(over(Duration::from_millis(600)));
        assert_eq!(controller.window(), initial / 4);
    }

    #[test]
    fn yielding_lasts_until_the_delay_is_under_three_quarters_of_the_target() {
        let mut controller = WindowController::new(TARGET, SEGMENT);
        let mut at = Instant::now();
        // Ticks a round trip apart (base 100 ms), so that each may cut, and before the
        // first periodic slowdown (two round trips after slow start).
        let mut seen = |controller: &mut WindowController, delay_ms: u64, after_ms: u64| {
            at += Duration::from_millis(after_ms);
            controller.observe(Observation {
                now: at,
                queueing_delay: Duration::from_millis(delay_ms),
                base_delay: Duration::from_millis(100),
                received: 10_000_000,
                elapsed: Duration::from_millis(after_ms),
            })
        };
        let initial = controller.window();
        seen(&mut controller, 50, 150);
        assert_eq!(controller.window(), initial / 2);
        assert_eq!(controller.phase(), IdlePhase::Yielding);
        // 36 ms is under the target but over three quarters of it: still someone's queue.
        seen(&mut controller, 36, 140);
        assert_eq!(controller.window(), initial / 4);
        seen(&mut controller, 29, 10);
        assert_eq!(controller.phase(), IdlePhase::Filling);
        assert!(controller.window() > initial / 4);
    }

    #[test]
    fn an_unused_window_does_not_grow() {
        let mut controller = WindowController::new(TARGET, SEGMENT);
        let start = Instant::now();
        for tick in 1..100 {
            controller.observe(Observation {
                now: start + TICK * tick,
                queueing_delay: Duration::ZERO,
                base_delay: Duration::from_millis(20),
                // A sender far slower than the window allows.
                received: 1_000,
                elapsed: TICK,
            });
        }
        assert_eq!(controller.window(), 10 * SEGMENT);
    }

    #[test]
    fn the_gain_is_gentle_on_short_paths() {
        let controller = WindowController::new(TARGET, SEGMENT);
        assert!((controller.gain(Duration::from_micros(200)) - 1.0 / 16.0).abs() < 1e-9);
        assert!((controller.gain(Duration::from_millis(40)) - 0.5).abs() < 1e-9);
        assert!((controller.gain(Duration::from_millis(100)) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn periodic_slowdowns_drop_to_the_floor_and_come_back() {
        let mut path = Path::new(2_500_000.0, Duration::from_millis(20));
        let mut controller = WindowController::new(TARGET, SEGMENT);
        let mut measured = 0;
        let mut windows_after = Vec::new();
        for tick in 0..2_000 {
            let window = path.tick(&mut controller, 0.0, 0.0);
            if controller.phase() == IdlePhase::Measuring {
                measured += 1;
                assert_eq!(window, 2 * SEGMENT);
            }
            if tick >= 1_000 {
                windows_after.push(window);
            }
        }
        assert!(measured > 0, "no slowdown in 50 s");
        // Slowdowns are spaced so that they cost little: most ticks run a full window.
        let full = windows_after
            .iter()
            .filter(|w| f64::from(**w) >= 50_000.0)
            .count();
        assert!(full * 10 >= windows_after.len() * 8, "{full}");
    }
}
