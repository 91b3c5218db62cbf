//! Wall-clock timestamps as the store and the API carry them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch (UTC). Plain data so that tests can make any time they
/// need; code that needs "now" takes it as a parameter, which keeps clocks injectable.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

/// 100-ns intervals between 1601-01-01 (FILETIME's epoch) and 1970-01-01.
const FILETIME_UNIX_EPOCH: i64 = 116_444_736_000_000_000;

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);

    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    pub fn from_system_time(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Self(i64::try_from(after.as_micros()).unwrap_or(i64::MAX)),
            Err(before) => Self(-i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX)),
        }
    }

    /// The same moment as a [`SystemTime`] (before the epoch too).
    pub fn to_system_time(self) -> SystemTime {
        let micros = Duration::from_micros(self.0.unsigned_abs());
        if self.0 >= 0 {
            UNIX_EPOCH + micros
        } else {
            UNIX_EPOCH - micros
        }
    }

    /// Windows' FILETIME value (100-ns ticks since 1601); zero stays zero, as BITS reports
    /// "not yet" (e.g. TransferCompletionTime before TRANSFERRED).
    #[expect(
        clippy::cast_sign_loss,
        reason = "clamped to zero or more just before the cast"
    )]
    pub fn to_filetime(self) -> u64 {
        if self == Self::ZERO {
            0
        } else {
            (self.0.saturating_mul(10) + FILETIME_UNIX_EPOCH).max(0) as u64
        }
    }

    /// Time elapsed from `earlier` to `self`; zero if `earlier` is later.
    #[expect(
        clippy::cast_sign_loss,
        reason = "clamped to zero or more just before the cast"
    )]
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    #[must_use]
    pub fn plus(self, duration: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filetime_of_the_unix_epoch_and_of_zero() {
        assert_eq!(Timestamp::ZERO.to_filetime(), 0);
        assert_eq!(Timestamp(1).to_filetime(), 116_444_736_000_000_010);
    }

    #[test]
    fn a_system_time_round_trips_on_both_sides_of_the_epoch() {
        for micros in [1_500_000, -1_000_000, 0] {
            let at = Timestamp(micros);
            assert_eq!(Timestamp::from_system_time(at.to_system_time()), at);
        }
        assert_eq!(
            Timestamp(-1_000_000).to_system_time(),
            UNIX_EPOCH - Duration::from_secs(1)
        );
    }

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let t = Timestamp(1_000_000);
        assert_eq!(
            t.plus(Duration::from_secs(2)).since(t),
            Duration::from_secs(2)
        );
        assert_eq!(t.since(t.plus(Duration::from_secs(1))), Duration::ZERO);
        assert_eq!(
            Timestamp(i64::MAX).plus(Duration::from_secs(1)),
            Timestamp(i64::MAX)
        );
    }
}
