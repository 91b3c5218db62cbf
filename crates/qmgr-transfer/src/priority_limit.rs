//! Caps per background priority (a bandwidth schedule's HIGH, NORMAL and LOW caps): one
//! token bucket per priority, shared fairly by the transfers of that priority, applied
//! beside the global bucket and a transfer's own, so the lowest of them binds.

use std::time::{Duration, Instant};

use crate::throttle::{TokenBucket, fair_share};

/// The background priority a transfer counts against; FOREGROUND transfers have none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PriorityClass {
    High,
    Normal,
    Low,
}

impl PriorityClass {
    const ALL: [PriorityClass; 3] = [Self::High, Self::Normal, Self::Low];

    pub(crate) fn index(self) -> usize {
        match self {
            Self::High => 0,
            Self::Normal => 1,
            Self::Low => 2,
        }
    }
}

/// The three buckets and, for the current round, each one's share per transfer.
#[derive(Debug, Default)]
pub(crate) struct PriorityLimits {
    buckets: [Option<TokenBucket>; 3],
    shares: [Option<u64>; 3],
}

impl PriorityLimits {
    /// Sets or lifts (`None`) the cap of `class`; what the bucket earned is kept.
    pub fn set(&mut self, class: PriorityClass, rate: Option<u64>, now: Instant) {
        let slot = &mut self.buckets[class.index()];
        *slot = match (slot.take(), rate) {
            (_, None) => None,
            (Some(mut bucket), Some(rate)) => {
                bucket.set_rate(rate, now);
                Some(bucket)
            }
            (None, Some(rate)) => Some(TokenBucket::new(rate, now)),
        };
    }

    /// Refills the buckets and splits each among the transfers of its class that may
    /// move (`classes`: the class of every transfer not held).
    pub fn start_round(&mut self, now: Instant, classes: impl Iterator<Item = PriorityClass>) {
        let mut participants = [0_usize; 3];
        for class in classes {
            participants[class.index()] += 1;
        }
        for class in PriorityClass::ALL {
            let index = class.index();
            self.shares[index] = self.buckets[index].as_mut().map(|bucket| {
                bucket.refill(now);
                fair_share(bucket.available(), participants[index])
            });
        }
    }

    /// `allowance` narrowed to the share of `class` in this round.
    pub fn narrow(&self, class: Option<PriorityClass>, allowance: Option<u64>) -> Option<u64> {
        match (
            class.and_then(|class| self.shares[class.index()]),
            allowance,
        ) {
            (Some(share), Some(allowance)) => Some(share.min(allowance)),
            (share, allowance) => share.or(allowance),
        }
    }

    /// Counts bytes a transfer of `class` moved.
    pub fn charge(&mut self, class: Option<PriorityClass>, bytes: u64) {
        if let Some(bucket) = class.and_then(|class| self.buckets[class.index()].as_mut()) {
            bucket.charge(bytes);
        }
    }

    /// When the bucket of `class` admits bytes again: `None` when it has no cap, else as
    /// [`TokenBucket::wait`].
    #[expect(
        clippy::option_option,
        reason = "the shape of the other caps' waits it is folded with: no cap, or a bucket's wait"
    )]
    pub fn wait(&self, class: Option<PriorityClass>) -> Option<Option<Duration>> {
        class
            .and_then(|class| self.buckets[class.index()].as_ref())
            .map(TokenBucket::wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_cap_is_shared_by_its_transfers_and_leaves_others_alone() {
        let now = Instant::now();
        let mut limits = PriorityLimits::default();
        limits.set(PriorityClass::Low, Some(100_000), now);
        limits.start_round(
            now,
            [PriorityClass::Low, PriorityClass::Low, PriorityClass::High].into_iter(),
        );
        // A quarter second's burst of 100 kB/s split between the two LOW transfers.
        assert_eq!(limits.narrow(Some(PriorityClass::Low), None), Some(12_500));
        assert_eq!(limits.narrow(Some(PriorityClass::High), None), None);
        assert_eq!(limits.narrow(None, Some(7)), Some(7));
        // The lower of the class share and another cap binds.
        assert_eq!(
            limits.narrow(Some(PriorityClass::Low), Some(1000)),
            Some(1000)
        );
        assert_eq!(
            limits.narrow(Some(PriorityClass::Low), Some(1_000_000)),
            Some(12_500)
        );
    }

    #[test]
    fn charging_empties_the_bucket_and_lifting_the_cap_frees_the_class() {
        let now = Instant::now();
        let mut limits = PriorityLimits::default();
        limits.set(PriorityClass::Normal, Some(100_000), now);
        limits.charge(Some(PriorityClass::Normal), 25_000);
        limits.start_round(now, [PriorityClass::Normal].into_iter());
        assert_eq!(limits.narrow(Some(PriorityClass::Normal), None), Some(0));
        assert!(
            limits
                .wait(Some(PriorityClass::Normal))
                .flatten()
                .is_some_and(|wait| wait > Duration::ZERO)
        );
        limits.set(PriorityClass::Normal, None, now);
        limits.start_round(now, [PriorityClass::Normal].into_iter());
        assert_eq!(limits.narrow(Some(PriorityClass::Normal), None), None);
        assert_eq!(limits.wait(Some(PriorityClass::Normal)), None);
    }
}
