//! Transfer policy in the service: the bandwidth schedule's caps handed to the engine at
//! each boundary, and the network's cost state that holds back the jobs whose COST_FLAGS
//! do not allow it (see `qmgr_core::policy`).

use std::time::Duration;

use qmgr_core::job::JobPriority;
use qmgr_core::policy::{self, CostSource, PriorityCaps, WeekTime};
use qmgr_core::service::{PolicyChange, PolicyView};
use qmgr_core::{Job, Timestamp};
use qmgr_transfer::{Engine, PriorityClass};

use super::State;

/// The longest the service goes without reading the schedule again, even with no boundary
/// ahead: a change of the local time (daylight saving, a new time zone) is seen this soon.
const POLICY_RECHECK: Duration = Duration::from_secs(15 * 60);

/// What the service knows of the network's cost and the schedule it applied.
#[derive(Debug)]
pub(super) struct PolicyState {
    /// NetworkManager's `Metered` as last read; `None` while it cannot be reached.
    pub(super) network_metered: Option<u32>,
    /// The caps handed to the engine.
    applied: Option<PriorityCaps>,
    /// When to read the schedule again.
    pub(super) next_check: Timestamp,
    /// The local time zone's offset from UTC, seconds east, as last read from the clock.
    pub(super) utc_offset: i32,
}

impl PolicyState {
    pub(super) fn new() -> PolicyState {
        PolicyState {
            network_metered: None,
            applied: None,
            next_check: Timestamp::ZERO,
            utc_offset: 0,
        }
    }
}

/// The engine's class for a job's transfers: FOREGROUND jobs count against no schedule cap.
pub(super) fn priority_class(priority: JobPriority) -> Option<PriorityClass> {
    match priority {
        JobPriority::Foreground => None,
        JobPriority::High => Some(PriorityClass::High),
        JobPriority::Normal => Some(PriorityClass::Normal),
        JobPriority::Low => Some(PriorityClass::Low),
    }
}

fn week_time(now: Timestamp, utc_offset: i32) -> WeekTime {
    WeekTime::from_unix(now.0.div_euclid(1_000_000), utc_offset)
}

impl State {
    /// The network's cost state now (`BITS_COST_STATE_*`) and where it came from.
    pub(super) fn cost_state(&self) -> (u32, CostSource) {
        policy::cost_state(self.config.metered, self.policy.network_metered)
    }

    /// The COST_FLAGS `job` obeys.
    fn effective_cost_flags(&self, job: &Job) -> u32 {
        policy::effective_cost_flags(
            job.settings.cost_flags,
            job.priority,
            self.config.job_defaults.cost_flags,
        )
    }

    /// Whether the network's cost keeps `job` from transferring now.
    pub(super) fn held_by_cost(&self, job: &Job, cost_state: u32) -> bool {
        !policy::cost_allows(self.effective_cost_flags(job), cost_state)
    }

    /// NetworkManager's `Metered` changed (`None`: it cannot be reached): the scheduler
    /// stops what may no longer run and starts what may now.
    pub(super) fn set_network_metered(&mut self, metered: Option<u32>) {
        if self.policy.network_metered != metered {
            let before = self.cost_state().0;
            self.policy.network_metered = metered;
            let after = self.cost_state().0;
            if before != after {
                tracing::info!(
                    "network cost state {before:#x} -> {after:#x} (NetworkManager Metered {metered:?})"
                );
            }
            self.schedule_needed = true;
        }
    }

    /// Hands the schedule's caps to the engine when they changed (at a boundary, or the
    /// first time), and plans the next look.
    pub(super) fn apply_schedule(&mut self, engine: &Engine, now: Timestamp, utc_offset: i32) {
        self.policy.utc_offset = utc_offset;
        if now < self.policy.next_check {
            return;
        }
        let policy = policy::policy_at(&self.config.schedules, week_time(now, utc_offset));
        if self.policy.applied != Some(policy.caps) {
            for (class, cap) in [
                (PriorityClass::High, policy.caps.high),
                (PriorityClass::Normal, policy.caps.normal),
                (PriorityClass::Low, policy.caps.low),
            ] {
                if let Err(error) = engine.set_priority_limit(class, cap) {
                    tracing::error!("cannot set the schedule's cap: {}", error.description);
                }
            }
            if self.policy.applied.is_some() || policy.window.is_some() {
                tracing::info!(
                    "bandwidth schedule: {} (HIGH {}, NORMAL {}, LOW {})",
                    self.window_text(policy.window),
                    cap_text(policy.caps.high),
                    cap_text(policy.caps.normal),
                    cap_text(policy.caps.low)
                );
            }
            self.policy.applied = Some(policy.caps);
        }
        let wait = policy
            .next
            .map_or(POLICY_RECHECK, |next| next.after.min(POLICY_RECHECK));
        // A boundary is met at its minute, never a moment before it.
        self.policy.next_check = now.plus(wait.max(Duration::from_millis(1)));
    }

    /// The caps handed to the engine (none before the first look).
    pub(super) fn schedule_caps(&self) -> PriorityCaps {
        self.policy.applied.unwrap_or_default()
    }

    fn window_text(&self, window: Option<usize>) -> String {
        window.map_or_else(
            || "outside every [[schedule]] window".to_owned(),
            |index| {
                let window = &self.config.schedules[index];
                format!("{}, line {}", window.describe(), window.line)
            },
        )
    }

    /// GetPolicy: what applies now and what changes next.
    pub(super) fn policy_view(&self, now: Timestamp) -> PolicyView {
        let offset = self.policy.utc_offset;
        let local = week_time(now, offset);
        let policy = policy::policy_at(&self.config.schedules, local);
        let (cost_state, cost_source) = self.cost_state();
        PolicyView {
            cost_state,
            cost_source,
            metered: self.config.metered,
            local_time: local.describe(),
            caps: policy.caps,
            window: policy.window.map(|index| self.window_text(Some(index))),
            next: policy.next.map(|next| PolicyChange {
                at: now.plus(next.after),
                local_time: next.at.describe(),
                caps: next.caps,
                window: next.window.map(|index| self.window_text(Some(index))),
            }),
            bandwidth_limit: self.config.bandwidth_limit,
            idle_mode: self.config.idle_mode,
            idle_target: self.config.idle_target,
        }
    }
}

fn cap_text(cap: Option<u64>) -> String {
    cap.map_or_else(|| "unlimited".to_owned(), |bytes| format!("{bytes} B/s"))
}
