//! Transfer rate over the last few seconds, from byte counts sampled at any moments. The
//! caller passes the time of each sample, so tests drive the clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back the rate looks: long enough to smooth bursts, short enough to follow changes.
const WINDOW: Duration = Duration::from_secs(5);
/// No rate until the samples span this long: the first fraction of a second after a
/// start (or a restart) is all burst (buffers filling, a small file arriving whole), and a
/// rate over it would claim tens of MiB/s that the transfer never keeps up.
const MIN_SPAN: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct RateMeter {
    samples: VecDeque<(Instant, u64)>,
}

impl RateMeter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `bytes` had arrived in all by `at`. A count that went down (a file
    /// restarted from zero) starts the measurement afresh.
    pub fn record(&mut self, at: Instant, bytes: u64) {
        if self.samples.back().is_some_and(|(_, last)| bytes < *last) {
            self.samples.clear();
        }
        self.samples.push_back((at, bytes));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|(second, _)| at.duration_since(*second) >= WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// Bytes per second over the window; `None` until the samples span a second.
    pub fn per_second(&self) -> Option<u64> {
        let (first_at, first) = self.samples.front()?;
        let (last_at, last) = self.samples.back()?;
        let span = last_at.duration_since(*first_at);
        if span < MIN_SPAN {
            return None;
        }
        Some(per_second(last - first, span))
    }
}

/// `bytes` moved in `span`, per second (0 for an empty span).
pub fn per_second(bytes: u64, span: Duration) -> u64 {
    let micros = span.as_micros();
    if micros == 0 {
        return 0;
    }
    u64::try_from(u128::from(bytes) * 1_000_000 / micros).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_bytes_over_time_in_the_window() {
        let start = Instant::now();
        let mut meter = RateMeter::new();
        assert_eq!(meter.per_second(), None);
        meter.record(start, 0);
        assert_eq!(meter.per_second(), None);
        meter.record(start + Duration::from_secs(2), 2_000);
        assert_eq!(meter.per_second(), Some(1_000));
        // Old samples fall out of the window: only the last 5 s count.
        meter.record(start + Duration::from_secs(8), 2_000);
        meter.record(start + Duration::from_secs(9), 2_000);
        assert_eq!(meter.per_second(), Some(0));
    }

    #[test]
    fn a_count_that_goes_down_restarts_the_measurement() {
        let start = Instant::now();
        let mut meter = RateMeter::new();
        meter.record(start, 5_000);
        meter.record(start + Duration::from_secs(1), 10);
        assert_eq!(meter.per_second(), None);
        meter.record(start + Duration::from_secs(2), 510);
        assert_eq!(meter.per_second(), Some(500));
    }

    #[test]
    fn bursts_do_not_spike_the_rate() {
        const MIB: u64 = 1 << 20;
        let start = Instant::now();
        let at = |millis: u64| start + Duration::from_millis(millis);
        let mut meter = RateMeter::new();
        // A first file arrives whole in 200 ms: no rate yet rather than 72 MiB/s.
        meter.record(at(0), 0);
        meter.record(at(200), 14 * MIB + MIB / 2);
        assert_eq!(meter.per_second(), None);
        // Then 1 MiB/s for a while.
        let mut bytes = 14 * MIB + MIB / 2;
        for second in 1..=10 {
            bytes += MIB;
            meter.record(at(200 + second * 1000), bytes);
        }
        assert_eq!(meter.per_second(), Some(MIB));
        // A new file's first 10 MiB land between two looks 200 ms apart: the rate moves
        // (the window holds the burst) but stays far from 50 MiB/s.
        bytes += 10 * MIB;
        meter.record(at(10_400), bytes);
        let rate = meter.per_second().unwrap();
        assert!(rate < 4 * MIB, "{rate}");
    }
}
