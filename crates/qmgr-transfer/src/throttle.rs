//! Bandwidth limits: token buckets fed by the clock the caller passes in, and the fair split
//! of a shared bucket among the transfers drawing on it.
//!
//! curl hands the body over in chunks it will not split, so a transfer with any allowance
//! left takes a whole chunk and the bucket may go into debt; it then stays closed until the
//! clock has paid the debt back. Over time the rate holds; chunk by chunk it need not.

use std::time::{Duration, Instant};

/// The smallest burst a bucket allows, so a low limit still admits whole curl chunks
/// without a debt of many seconds.
const MINIMUM_BURST: f64 = 16.0 * 1024.0;

/// How much a bucket may hold, in seconds of its rate: enough to ride out the engine's
/// wake-up jitter, small enough that a limit is felt within a fraction of a second.
const BURST_SECONDS: f64 = 0.25;

/// A rate limit in bytes per second.
#[derive(Clone, Debug)]
pub(crate) struct TokenBucket {
    rate: u64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A bucket that starts full.
    pub fn new(rate: u64, now: Instant) -> Self {
        let mut bucket = Self {
            rate,
            tokens: 0.0,
            updated: now,
        };
        bucket.tokens = bucket.capacity();
        bucket
    }

    #[expect(
        clippy::cast_precision_loss,
        reason = "byte rates are far below 2^52; the bucket is approximate anyway"
    )]
    fn capacity(&self) -> f64 {
        (self.rate as f64 * BURST_SECONDS).max(MINIMUM_BURST.min(self.rate as f64))
    }

    /// Changes the rate; what was earned at the old rate is kept, up to the new capacity.
    pub fn set_rate(&mut self, rate: u64, now: Instant) {
        self.refill(now);
        self.rate = rate;
        self.tokens = self.tokens.min(self.capacity());
    }

    /// Adds what the time since the last refill has earned.
    #[expect(
        clippy::cast_precision_loss,
        reason = "byte rates are far below 2^52; the bucket is approximate anyway"
    )]
    pub fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated);
        self.updated = self.updated.max(now);
        let earned = elapsed.as_secs_f64() * self.rate as f64;
        self.tokens = (self.tokens + earned).min(self.capacity());
    }

    /// Whole bytes that may be taken now (none while in debt).
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "tokens are at least 1.0 here and far below 2^64"
    )]
    pub fn available(&self) -> u64 {
        if self.tokens >= 1.0 {
            self.tokens.floor() as u64
        } else {
            0
        }
    }

    /// Takes `bytes`, going into debt if there are fewer.
    #[expect(
        clippy::cast_precision_loss,
        reason = "byte counts are far below 2^52; the bucket is approximate anyway"
    )]
    pub fn charge(&mut self, bytes: u64) {
        self.tokens -= bytes as f64;
    }

    /// How long from the last refill until a byte is available: zero if one is now, `None`
    /// if never (a rate of zero holds everything).
    #[expect(
        clippy::cast_precision_loss,
        reason = "byte rates are far below 2^52; the bucket is approximate anyway"
    )]
    pub fn wait(&self) -> Option<Duration> {
        if self.tokens >= 1.0 {
            return Some(Duration::ZERO);
        }
        if self.rate == 0 {
            return None;
        }
        let missing = 1.0 - self.tokens;
        Some(Duration::from_secs_f64(missing / self.rate as f64))
    }
}

/// Each of `participants` transfers' share of `available` bytes: an equal split, but at
/// least one byte each while anything is available so that no transfer starves behind
/// rounding; the debt this may run up is paid back before the next grant.
pub(crate) fn fair_share(available: u64, participants: usize) -> u64 {
    if available == 0 || participants == 0 {
        return 0;
    }
    let participants = u64::try_from(participants).unwrap_or(u64::MAX);
    (available / participants).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u64 = 1_000_000;

    #[test]
    fn a_new_bucket_holds_a_quarter_second_burst() {
        let start = Instant::now();
        let bucket = TokenBucket::new(RATE, start);
        assert_eq!(bucket.available(), RATE / 4);
        assert_eq!(bucket.wait(), Some(Duration::ZERO));
    }

    #[test]
    fn time_refills_the_bucket_up_to_its_capacity() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(RATE, start);
        bucket.charge(RATE / 4);
        assert_eq!(bucket.available(), 0);
        bucket.refill(start + Duration::from_millis(100));
        assert_eq!(bucket.available(), RATE / 10);
        bucket.refill(start + Duration::from_secs(60));
        assert_eq!(bucket.available(), RATE / 4);
    }

    #[test]
    fn debt_closes_the_bucket_until_the_clock_pays_it_back() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(RATE, start);
        bucket.charge(RATE / 4 + RATE / 2);
        assert_eq!(bucket.available(), 0);
        let wait = bucket.wait().unwrap();
        assert!(wait > Duration::from_millis(499) && wait <= Duration::from_millis(501));
        bucket.refill(start + Duration::from_millis(400));
        assert_eq!(bucket.available(), 0);
        bucket.refill(start + Duration::from_millis(600));
        assert_eq!(bucket.available(), RATE / 10);
    }

    #[test]
    fn a_rate_change_keeps_what_was_earned_within_the_new_capacity() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(RATE, start);
        bucket.set_rate(100_000, start);
        assert_eq!(bucket.available(), 25_000);
        bucket.charge(25_000);
        bucket.set_rate(RATE, start + Duration::from_millis(10));
        assert_eq!(bucket.available(), 1_000);
    }

    #[test]
    fn a_small_rate_still_admits_one_chunk_and_zero_admits_nothing() {
        let start = Instant::now();
        let small = TokenBucket::new(1_000, start);
        assert_eq!(small.available(), 1_000);
        let mut closed = TokenBucket::new(0, start);
        assert_eq!(closed.available(), 0);
        assert_eq!(closed.wait(), None);
        closed.refill(start + Duration::from_secs(3600));
        assert_eq!(closed.available(), 0);
    }

    #[test]
    fn a_clock_that_goes_backwards_earns_nothing() {
        let earlier = Instant::now();
        let start = earlier + Duration::from_secs(5);
        let mut bucket = TokenBucket::new(RATE, start);
        bucket.charge(RATE / 4);
        bucket.refill(earlier);
        assert_eq!(bucket.available(), 0);
    }

    #[test]
    fn shares_are_equal_and_never_zero_while_bytes_remain() {
        assert_eq!(fair_share(1000, 4), 250);
        assert_eq!(fair_share(3, 4), 1);
        assert_eq!(fair_share(0, 4), 0);
        assert_eq!(fair_share(1000, 0), 0);
    }
}
