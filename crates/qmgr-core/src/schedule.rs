//! The scheduling policy: which jobs transfer now. A pure function of the runnable jobs,
//! the limits and the time, so the service's behaviour can be tested without a clock.
//!
//! Rules (DESIGN.md "Transfer engine rules" and "Decisions"): FOREGROUND jobs all run and
//! never wait; background jobs run HIGH > NORMAL > LOW under `max_background` slots; jobs of
//! equal priority take turns in time slices; a slice ends only where the job can resume,
//! so a job that cannot yield keeps its slot until it ends.

use std::collections::HashSet;
use std::time::Duration;

use crate::guid::Guid;
use crate::job::JobPriority;

/// A job that wants to transfer (QUEUED, CONNECTING or TRANSFERRING).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub id: Guid,
    pub priority: JobPriority,
    /// Its place in line: lower goes first. The service hands out increasing turns when a
    /// job joins the queue and again when its slice ends, which makes equal priorities rotate.
    pub turn: u64,
    /// Set while the job holds a transfer slot.
    pub running: Option<Running>,
}

/// A job holding a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Running {
    /// Monotonic time at which its current slice began.
    pub since: Duration,
    /// Whether it can stop now and later continue where it stopped (every file in progress
    /// has had a 206 answer, or has not started).
    pub can_yield: bool,
}

/// Limits from the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_background: usize,
    pub time_slice: Duration,
}

/// What the service should do now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Jobs to give a slot, in the order to start them.
    pub start: Vec<Guid>,
    /// Running jobs to take the slot from (preempted or their slice ended), back to QUEUED.
    pub stop: Vec<Guid>,
    /// The earliest monotonic time at which a running job's slice ends while others wait:
    /// the service should plan again then.
    pub next_decision: Option<Duration>,
}

/// Decides which candidates run at monotonic time `now`.
pub fn plan(candidates: &[Candidate], limits: Limits, now: Duration) -> Plan {
    let mut chosen: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.priority == JobPriority::Foreground)
        .collect();

    let background: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.priority != JobPriority::Foreground)
        .collect();
    // A running job that cannot yield keeps its slot whatever else waits.
    let (pinned, mut contenders): (Vec<&Candidate>, Vec<&Candidate>) = background
        .iter()
        .partition(|c| c.running.is_some_and(|r| !r.can_yield));
    let free = limits.max_background.saturating_sub(pinned.len());
    let expired = |c: &Candidate| {
        c.running
            .is_some_and(|r| now.saturating_sub(r.since) >= limits.time_slice)
    };
    // Within a priority: running jobs inside their slice first, then waiting jobs by turn,
    // then running jobs whose slice is over (they keep running only if nobody else waits).
    let key = |c: &&Candidate| {
        let class = match c.running {
            Some(_) if expired(c) => 2,
            Some(_) => 0,
            None => 1,
        };
        (c.priority, class, c.turn)
    };
    // Only the first `free` matter: select them in linear time, then order just those, so a
    // queue of thousands costs little to plan.
    if free < contenders.len() {
        contenders.select_nth_unstable_by_key(free, key);
        contenders.truncate(free);
    }
    contenders.sort_by_key(key);
    chosen.extend(pinned);
    chosen.extend(contenders);

    let chosen_ids: HashSet<Guid> = chosen.iter().map(|c| c.id).collect();
    let start = chosen
        .iter()
        .filter(|c| c.running.is_none())
        .map(|c| c.id)
        .collect();
    let stop = candidates
        .iter()
        .filter(|c| c.running.is_some() && !chosen_ids.contains(&c.id))
        .map(|c| c.id)
        .collect();
    let someone_waits = background.len()
        > chosen
            .iter()
            .filter(|c| c.priority != JobPriority::Foreground)
            .count();
    let next_decision = if someone_waits {
        chosen
            .iter()
            .filter(|c| c.priority != JobPriority::Foreground)
            .filter_map(|c| {
                c.running
                    .filter(|r| r.can_yield)
                    .map(|r| r.since + limits.time_slice)
            })
            .filter(|at| *at > now)
            .min()
    } else {
        None
    };
    Plan {
        start,
        stop,
        next_decision,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_background: 1,
        time_slice: Duration::from_secs(300),
    };

    fn job(n: u32, priority: JobPriority, turn: u64) -> Candidate {
        Candidate {
            id: id(n),
            priority,
            turn,
            running: None,
        }
    }

    fn id(n: u32) -> Guid {
        Guid {
            data1: n,
            ..Guid::NIL
        }
    }

    fn running(mut c: Candidate, since_secs: u64, can_yield: bool) -> Candidate {
        c.running = Some(Running {
            since: Duration::from_secs(since_secs),
            can_yield,
        });
        c
    }

    fn at(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn foreground_jobs_all_run_and_do_not_use_background_slots() {
        let jobs = [
            job(1, JobPriority::Foreground, 5),
            job(2, JobPriority::Foreground, 6),
            job(3, JobPriority::Foreground, 7),
            job(4, JobPriority::Low, 1),
        ];
        let plan = plan(&jobs, LIMITS, at(0));
        assert_eq!(plan.start, vec![id(1), id(2), id(3), id(4)]);
        assert!(plan.stop.is_empty());
    }

    #[test]
    fn foreground_never_waits_behind_background_that_cannot_yield() {
        let jobs = [
            running(job(1, JobPriority::High, 1), 0, false),
            job(2, JobPriority::Foreground, 2),
        ];
        let plan = plan(
            &jobs,
            Limits {
                max_background: 1,
                ..LIMITS
            },
            at(1),
        );
        assert_eq!(plan.start, vec![id(2)]);
        assert!(plan.stop.is_empty());
    }

    #[test]
    fn background_runs_by_priority_then_turn() {
        let jobs = [
            job(1, JobPriority::Low, 1),
            job(2, JobPriority::Normal, 4),
            job(3, JobPriority::High, 9),
            job(4, JobPriority::Normal, 2),
        ];
        let plan = plan(
            &jobs,
            Limits {
                max_background: 3,
                ..LIMITS
            },
            at(0),
        );
        assert_eq!(plan.start, vec![id(3), id(4), id(2)]);
    }

    #[test]
    fn higher_priority_preempts_a_job_that_can_yield() {
        let jobs = [
            running(job(1, JobPriority::Low, 1), 0, true),
            job(2, JobPriority::High, 2),
        ];
        let plan = plan(&jobs, LIMITS, at(10));
        assert_eq!(plan.start, vec![id(2)]);
        assert_eq!(plan.stop, vec![id(1)]);
    }

    #[test]
    fn a_job_that_cannot_yield_keeps_its_slot() {
        let jobs = [
            running(job(1, JobPriority::Low, 1), 0, false),
            job(2, JobPriority::High, 2),
        ];
        let plan = plan(&jobs, LIMITS, at(10_000));
        assert!(plan.start.is_empty());
        assert!(plan.stop.is_empty());
        assert_eq!(
            plan.next_decision, None,
            "nothing can change until the pinned job yields"
        );
    }

    #[test]
    fn equal_priorities_take_turns_when_the_slice_ends() {
        let jobs = [
            running(job(1, JobPriority::Normal, 1), 0, true),
            job(2, JobPriority::Normal, 2),
        ];
        let inside = plan(&jobs, LIMITS, at(299));
        assert!(inside.start.is_empty() && inside.stop.is_empty());
        assert_eq!(inside.next_decision, Some(at(300)));
        let after = plan(&jobs, LIMITS, at(300));
        assert_eq!(after.start, vec![id(2)]);
        assert_eq!(after.stop, vec![id(1)]);
    }

    #[test]
    fn an_expired_slice_continues_when_nobody_else_waits() {
        let jobs = [
            running(job(1, JobPriority::Normal, 1), 0, true),
            job(2, JobPriority::Low, 2),
        ];
        let plan = plan(&jobs, LIMITS, at(1_000));
        assert!(plan.start.is_empty() && plan.stop.is_empty());
    }

    #[test]
    fn running_jobs_inside_their_slice_are_not_displaced_by_equal_priority() {
        let jobs = [
            job(1, JobPriority::Normal, 1),
            running(job(2, JobPriority::Normal, 2), 100, true),
        ];
        let plan = plan(&jobs, LIMITS, at(150));
        assert!(plan.start.is_empty() && plan.stop.is_empty());
    }

    #[test]
    fn no_slots_means_only_foreground_runs() {
        let jobs = [
            job(1, JobPriority::High, 1),
            job(2, JobPriority::Foreground, 2),
        ];
        let plan = plan(
            &jobs,
            Limits {
                max_background: 0,
                ..LIMITS
            },
            at(0),
        );
        assert_eq!(plan.start, vec![id(2)]);
    }
}
