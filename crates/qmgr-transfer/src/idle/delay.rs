//! Delay estimates from round-trip samples: the current delay (the least of the last few
//! samples, which filters out a probe delayed by scheduling on the way) and the base delay
//! (LEDBAT's: the least of per-minute minima over the last ten minutes, so it follows a
//! path that got slower without forgetting the best within seconds).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Samples the current delay is the least of: two at 40 probes a second filter out one
/// late reply and still see a queue building within about 50 ms.
const CURRENT_SAMPLES: usize = 2;
/// How long one base-delay bucket covers.
const BUCKET: Duration = Duration::from_secs(60);
/// Buckets the base delay remembers.
const BASE_HISTORY: usize = 10;

/// Current and base delay of one path.
#[derive(Clone, Debug, Default)]
pub(crate) struct DelayEstimate {
    recent: VecDeque<Duration>,
    /// (start of the minute, least sample in it), oldest first.
    minima: VecDeque<(Instant, Duration)>,
}

impl DelayEstimate {
    pub fn add(&mut self, now: Instant, sample: Duration) {
        if self.recent.len() == CURRENT_SAMPLES {
            self.recent.pop_front();
        }
        self.recent.push_back(sample);
        match self.minima.back_mut() {
            Some((start, least)) if now.saturating_duration_since(*start) < BUCKET => {
                *least = (*least).min(sample);
            }
            _ => {
                if self.minima.len() == BASE_HISTORY {
                    self.minima.pop_front();
                }
                self.minima.push_back((now, sample));
            }
        }
    }

    /// The least of the last few samples.
    pub fn current(&self) -> Option<Duration> {
        self.recent.iter().min().copied()
    }

    /// The least delay seen over the history.
    pub fn base(&self) -> Option<Duration> {
        self.minima.iter().map(|(_, least)| *least).min()
    }

    /// How far the current delay is above the base.
    pub fn queueing(&self) -> Option<Duration> {
        Some(self.current()?.saturating_sub(self.base()?))
    }

    /// Forgets everything: the path changed.
    pub fn reset(&mut self) {
        self.recent.clear();
        self.minima.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_current_delay_is_the_least_of_the_last_two_samples() {
        let mut estimate = DelayEstimate::default();
        let now = Instant::now();
        assert_eq!(estimate.current(), None);
        for sample in [50, 10, 60] {
            estimate.add(now, ms(sample));
        }
        assert_eq!(estimate.current(), Some(ms(10)));
        estimate.add(now, ms(90));
        assert_eq!(estimate.current(), Some(ms(60)));
        assert_eq!(estimate.base(), Some(ms(10)));
        assert_eq!(estimate.queueing(), Some(ms(50)));
    }

    #[test]
    fn the_base_forgets_a_minimum_after_ten_minutes() {
        let mut estimate = DelayEstimate::default();
        let start = Instant::now();
        estimate.add(start, ms(5));
        for minute in 1..=9 {
            estimate.add(start + BUCKET * minute, ms(30));
        }
        assert_eq!(estimate.base(), Some(ms(5)));
        estimate.add(start + BUCKET * 10, ms(30));
        assert_eq!(estimate.base(), Some(ms(30)));
    }

    #[test]
    fn a_reset_forgets_the_old_path() {
        let mut estimate = DelayEstimate::default();
        let now = Instant::now();
        estimate.add(now, ms(5));
        estimate.reset();
        assert_eq!(estimate.base(), None);
        estimate.add(now, ms(40));
        assert_eq!(estimate.base(), Some(ms(40)));
        assert_eq!(estimate.queueing(), Some(Duration::ZERO));
    }
}
