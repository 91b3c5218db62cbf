//! Transfer policy: bandwidth schedules (BITS 3.5's work/non-work hours and maintenance
//! window, as `[[schedule]]` tables of the config) and network cost (Job5's COST_FLAGS
//! against the network's cost state).
//!
//! Everything here is a pure function of the config and a time, so the service asks "what
//! applies now, and until when" ([`policy_at`]) and tests ask the same with fixed times.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::job::JobPriority;

/// Minutes in a day and in a week; schedules are kept to the minute.
pub const MINUTES_PER_DAY: u32 = 24 * 60;
pub const MINUTES_PER_WEEK: u32 = 7 * MINUTES_PER_DAY;

/// BITS cost states (`BITS_COST_STATE_*`): what the network costs now.
pub const COST_STATE_UNRESTRICTED: u32 = 0x1;
pub const COST_STATE_USAGE_BASED: u32 = 0x40;
/// `BITS_COST_OPTION_IGNORE_CONGESTION`: accepted in a mask and without effect.
pub const COST_OPTION_IGNORE_CONGESTION: u32 = 0x8000_0000;
/// `BITS_COST_STATE_TRANSFER_UNRESTRICTED`: the default mask of HIGH, NORMAL and LOW jobs.
pub const COST_FLAGS_TRANSFER_UNRESTRICTED: u32 = 0x8000_0021;
/// `BITS_COST_STATE_TRANSFER_ALWAYS`: the mask of FOREGROUND jobs that set none.
pub const COST_FLAGS_TRANSFER_ALWAYS: u32 = 0x8000_00FF;

/// The cost mask a job obeys: its own if it set one, else the default of its priority
/// (`background_default` for HIGH, NORMAL and LOW: `[job_defaults] cost_flags`).
pub fn effective_cost_flags(
    own: Option<u32>,
    priority: JobPriority,
    background_default: u32,
) -> u32 {
    own.unwrap_or(match priority {
        JobPriority::Foreground => COST_FLAGS_TRANSFER_ALWAYS,
        _ => background_default,
    })
}

/// Whether a job with cost mask `flags` may transfer while the network is in `state`.
pub fn cost_allows(flags: u32, state: u32) -> bool {
    flags & state & !COST_OPTION_IGNORE_CONGESTION != 0
}

/// `metered = "auto" | "yes" | "no"`: whether the network's cost comes from NetworkManager
/// or from the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MeteredSetting {
    /// NetworkManager says; without it, unmetered.
    Auto,
    /// Always metered, whatever NetworkManager says.
    Yes,
    /// Never metered, whatever NetworkManager says.
    No,
}

/// Where the cost state the service uses came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CostSource {
    /// NetworkManager's `Metered` property, with its value.
    NetworkManager { metered: u32 },
    /// The config's `metered = "yes"` or `"no"`.
    Config,
    /// `metered = "auto"` and NetworkManager could not be reached (no system bus, or no
    /// NetworkManager on it): taken as unmetered.
    NoNetworkManager,
}

/// The cost state: `metered` says what the config asks, `network_manager` what
/// NetworkManager last said (`None`: not reachable). NetworkManager's `Metered` is
/// NMMetered: 1 (yes) and 3 (guessed yes) are metered, 0, 2 and 4 are not.
pub fn cost_state(metered: MeteredSetting, network_manager: Option<u32>) -> (u32, CostSource) {
    match (metered, network_manager) {
        (MeteredSetting::Yes, _) => (COST_STATE_USAGE_BASED, CostSource::Config),
        (MeteredSetting::No, _) => (COST_STATE_UNRESTRICTED, CostSource::Config),
        (MeteredSetting::Auto, Some(value)) => {
            let state = if matches!(value, 1 | 3) {
                COST_STATE_USAGE_BASED
            } else {
                COST_STATE_UNRESTRICTED
            };
            (state, CostSource::NetworkManager { metered: value })
        }
        (MeteredSetting::Auto, None) => (COST_STATE_UNRESTRICTED, CostSource::NoNetworkManager),
    }
}

/// Bandwidth caps of the background priorities, bytes per second; `None` is no cap.
/// FOREGROUND is never capped by a schedule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityCaps {
    pub high: Option<u64>,
    pub normal: Option<u64>,
    pub low: Option<u64>,
}

impl PriorityCaps {
    /// The cap of `priority` (always `None` for FOREGROUND).
    pub fn of(&self, priority: JobPriority) -> Option<u64> {
        match priority {
            JobPriority::Foreground => None,
            JobPriority::High => self.high,
            JobPriority::Normal => self.normal,
            JobPriority::Low => self.low,
        }
    }
}

/// One `[[schedule]]` table: on `days` (bit 0 Monday … bit 6 Sunday), from `start` to
/// `end` (minutes of the day, local time; an `end` at or before `start` ends on the next
/// day), these caps apply. A maintenance window overrides the ordinary ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleWindow {
    pub days: u8,
    pub start: u32,
    pub end: u32,
    pub caps: PriorityCaps,
    pub maintenance: bool,
    /// The config line of the table, for messages (`qmgr policy` says which window).
    pub line: usize,
}

impl ScheduleWindow {
    /// The spans of the week the window covers, as half-open minute ranges within
    /// `0..MINUTES_PER_WEEK` (a window that runs past Sunday midnight is split in two).
    pub fn spans(&self) -> Vec<(u32, u32)> {
        let length = if self.end > self.start {
            self.end - self.start
        } else {
            MINUTES_PER_DAY - self.start + self.end
        };
        let mut spans = Vec::new();
        for day in 0..7 {
            if self.days & (1 << day) == 0 {
                continue;
            }
            let from = day * MINUTES_PER_DAY + self.start;
            let to = from + length;
            if to <= MINUTES_PER_WEEK {
                spans.push((from, to));
            } else {
                spans.push((from, MINUTES_PER_WEEK));
                spans.push((0, to - MINUTES_PER_WEEK));
            }
        }
        spans
    }

    fn covers(&self, minute_of_week: u32) -> bool {
        self.spans()
            .iter()
            .any(|&(from, to)| (from..to).contains(&minute_of_week))
    }

    /// How the window reads in the config: `mon,tue 08:00-17:00`.
    pub fn describe(&self) -> String {
        let days: Vec<&str> = DAY_NAMES
            .iter()
            .enumerate()
            .filter(|(day, _)| self.days & (1 << day) != 0)
            .map(|(_, name)| *name)
            .collect();
        let days = if self.days == ALL_DAYS {
            "every day".to_owned()
        } else {
            days.join(",")
        };
        format!(
            "{}{days} {}-{}",
            if self.maintenance { "maintenance " } else { "" },
            clock_text(self.start),
            clock_text(if self.end == 0 && self.start == 0 {
                MINUTES_PER_DAY
            } else {
                self.end
            })
        )
    }
}

/// The day names the config accepts, Monday first (as bits 0 to 6).
pub const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// Every day of the week.
pub const ALL_DAYS: u8 = 0x7F;

/// `HH:MM` of a minute of the day (24:00 for the end of the day).
pub fn clock_text(minute_of_day: u32) -> String {
    format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60)
}

/// A moment in the machine's local week: minutes since Monday 00:00 and the seconds into
/// that minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeekTime {
    pub minute: u32,
    pub second: u32,
}

impl WeekTime {
    /// The local week time of `unix_seconds` for a zone `utc_offset` seconds east of UTC.
    pub fn from_unix(unix_seconds: i64, utc_offset: i32) -> WeekTime {
        let local = unix_seconds + i64::from(utc_offset);
        // 1970-01-01 was a Thursday: day 3 counting from Monday.
        let days = local.div_euclid(86_400);
        let weekday = (days + 3).rem_euclid(7);
        let second_of_day = local.rem_euclid(86_400);
        let minute = weekday * i64::from(MINUTES_PER_DAY) + second_of_day / 60;
        WeekTime {
            minute: u32::try_from(minute).unwrap_or(0),
            second: u32::try_from(second_of_day % 60).unwrap_or(0),
        }
    }

    /// As `Mon 08:00`.
    pub fn describe(self) -> String {
        let day = DAY_NAMES[(self.minute / MINUTES_PER_DAY) as usize % 7];
        format!("{day} {}", clock_text(self.minute % MINUTES_PER_DAY))
    }
}

/// What the schedules say at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyNow {
    /// The caps in effect.
    pub caps: PriorityCaps,
    /// The window they come from (an index into the schedules), `None` outside every window.
    pub window: Option<usize>,
    /// The next moment the caps change, if they ever do.
    pub next: Option<Boundary>,
}

/// A coming change of the caps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Boundary {
    /// How long from the moment asked about.
    pub after: Duration,
    /// When, in the local week.
    pub at: WeekTime,
    /// The caps from then on, and the window they come from.
    pub caps: PriorityCaps,
    pub window: Option<usize>,
}

/// The caps at minute `minute` of the week and the window they come from: a maintenance
/// window's if one covers it, else an ordinary window's, else none.
fn caps_at_minute(schedules: &[ScheduleWindow], minute: u32) -> (PriorityCaps, Option<usize>) {
    let covering = |maintenance: bool| {
        schedules
            .iter()
            .position(|w| w.maintenance == maintenance && w.covers(minute))
    };
    match covering(true).or_else(|| covering(false)) {
        Some(index) => (schedules[index].caps, Some(index)),
        None => (PriorityCaps::default(), None),
    }
}

/// The caps that apply at `now` (local week time) and the next time they change.
pub fn policy_at(schedules: &[ScheduleWindow], now: WeekTime) -> PolicyNow {
    let minute = now.minute % MINUTES_PER_WEEK;
    let (caps, window) = caps_at_minute(schedules, minute);
    let mut edges: Vec<u32> = schedules
        .iter()
        .flat_map(ScheduleWindow::spans)
        .flat_map(|(from, to)| [from, to % MINUTES_PER_WEEK])
        .collect();
    // In the order they come after now, going round the week once.
    let ahead = |edge: u32| (edge + MINUTES_PER_WEEK - minute - 1) % MINUTES_PER_WEEK + 1;
    edges.sort_unstable_by_key(|&edge| ahead(edge));
    edges.dedup();
    let next = edges.into_iter().find_map(|edge| {
        let (then, then_window) = caps_at_minute(schedules, edge);
        (then != caps).then(|| Boundary {
            after: Duration::from_secs(u64::from(ahead(edge)) * 60 - u64::from(now.second)),
            at: WeekTime {
                minute: edge,
                second: 0,
            },
            caps: then,
            window: then_window,
        })
    });
    PolicyNow { caps, window, next }
}

/// The first two ordinary windows (or two maintenance windows) that overlap, as indexes.
pub fn first_overlap(schedules: &[ScheduleWindow]) -> Option<(usize, usize)> {
    for (a, first) in schedules.iter().enumerate() {
        for (b, second) in schedules.iter().enumerate().skip(a + 1) {
            if first.maintenance != second.maintenance {
                continue;
            }
            let overlaps = first.spans().iter().any(|&(from_a, to_a)| {
                second
                    .spans()
                    .iter()
                    .any(|&(from_b, to_b)| from_a < to_b && from_b < to_a)
            });
            if overlaps {
                return Some((a, b));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MON: u8 = 1;
    const FRI: u8 = 1 << 4;
    const SUN: u8 = 1 << 6;
    const WEEKDAYS: u8 = 0x1F;

    fn at(day: u32, hour: u32, minute: u32) -> WeekTime {
        WeekTime {
            minute: day * MINUTES_PER_DAY + hour * 60 + minute,
            second: 0,
        }
    }

    fn window(days: u8, start: u32, end: u32, normal: Option<u64>) -> ScheduleWindow {
        ScheduleWindow {
            days,
            start,
            end,
            caps: PriorityCaps {
                high: None,
                normal,
                low: normal.map(|n| n / 2),
            },
            maintenance: false,
            line: 1,
        }
    }

    #[test]
    fn no_schedule_means_no_caps_and_no_boundary() {
        let policy = policy_at(&[], at(2, 10, 0));
        assert_eq!(policy.caps, PriorityCaps::default());
        assert_eq!(policy.window, None);
        assert_eq!(policy.next, None);
    }

    #[test]
    fn work_hours_cap_inside_and_the_next_boundary_is_their_end() {
        let schedules = [window(WEEKDAYS, 8 * 60, 17 * 60, Some(1000))];
        let policy = policy_at(&schedules, at(2, 10, 30));
        assert_eq!(policy.caps.normal, Some(1000));
        assert_eq!(policy.caps.low, Some(500));
        assert_eq!(policy.caps.high, None);
        assert_eq!(policy.window, Some(0));
        let next = policy.next.unwrap();
        assert_eq!(next.after, Duration::from_secs(6 * 3600 + 30 * 60));
        assert_eq!(next.at, at(2, 17, 0));
        assert_eq!(next.caps, PriorityCaps::default());
        assert_eq!(next.window, None);
    }

    #[test]
    fn the_boundary_counts_the_seconds_already_gone() {
        let schedules = [window(WEEKDAYS, 8 * 60, 17 * 60, Some(1000))];
        let mut now = at(2, 16, 59);
        now.second = 45;
        assert_eq!(
            policy_at(&schedules, now).next.unwrap().after,
            Duration::from_secs(15)
        );
        // At the boundary itself the new caps apply.
        let policy = policy_at(&schedules, at(2, 17, 0));
        assert_eq!(policy.caps, PriorityCaps::default());
        assert_eq!(policy.next.unwrap().at, at(3, 8, 0));
    }

    #[test]
    fn friday_evening_waits_for_monday_morning() {
        let schedules = [window(WEEKDAYS, 8 * 60, 17 * 60, Some(1000))];
        let policy = policy_at(&schedules, at(4, 18, 0));
        assert_eq!(policy.caps, PriorityCaps::default());
        let next = policy.next.unwrap();
        assert_eq!(next.at, at(0, 8, 0));
        assert_eq!(next.after, Duration::from_secs((2 * 24 + 14) * 3600));
    }

    #[test]
    fn a_window_across_midnight_covers_the_next_morning() {
        let schedules = [window(FRI, 22 * 60, 6 * 60, Some(10))];
        assert_eq!(policy_at(&schedules, at(4, 23, 0)).caps.normal, Some(10));
        assert_eq!(policy_at(&schedules, at(5, 5, 59)).caps.normal, Some(10));
        assert_eq!(policy_at(&schedules, at(5, 6, 0)).caps.normal, None);
        assert_eq!(policy_at(&schedules, at(4, 21, 59)).caps.normal, None);
        assert_eq!(
            policy_at(&schedules, at(4, 23, 0)).next.unwrap().at,
            at(5, 6, 0)
        );
    }

    #[test]
    fn a_sunday_night_window_runs_into_monday_across_the_week_boundary() {
        let schedules = [window(SUN, 23 * 60, 2 * 60, Some(10))];
        assert_eq!(policy_at(&schedules, at(6, 23, 30)).caps.normal, Some(10));
        assert_eq!(policy_at(&schedules, at(0, 1, 0)).caps.normal, Some(10));
        assert_eq!(policy_at(&schedules, at(0, 2, 0)).caps.normal, None);
        let next = policy_at(&schedules, at(6, 23, 30)).next.unwrap();
        assert_eq!(next.at, at(0, 2, 0));
        assert_eq!(next.after, Duration::from_secs(150 * 60));
        // From Monday afternoon, the next change is six days on.
        let next = policy_at(&schedules, at(0, 12, 0)).next.unwrap();
        assert_eq!(next.at, at(6, 23, 0));
    }

    #[test]
    fn maintenance_overrides_the_ordinary_window() {
        let mut maintenance = window(MON, 12 * 60, 13 * 60, Some(5));
        maintenance.maintenance = true;
        let schedules = [window(WEEKDAYS, 8 * 60, 17 * 60, Some(1000)), maintenance];
        assert_eq!(policy_at(&schedules, at(0, 11, 0)).caps.normal, Some(1000));
        let policy = policy_at(&schedules, at(0, 12, 30));
        assert_eq!(policy.caps.normal, Some(5));
        assert_eq!(policy.window, Some(1));
        let next = policy.next.unwrap();
        assert_eq!(next.at, at(0, 13, 0));
        assert_eq!(next.caps.normal, Some(1000));
        assert_eq!(next.window, Some(0));
        // Tuesday has no maintenance window.
        assert_eq!(policy_at(&schedules, at(1, 12, 30)).caps.normal, Some(1000));
    }

    #[test]
    fn boundaries_that_change_nothing_are_passed_over() {
        // Two adjacent windows with the same caps: one change, at the end of the second.
        let schedules = [
            window(MON, 8 * 60, 12 * 60, Some(7)),
            window(MON, 12 * 60, 17 * 60, Some(7)),
        ];
        assert_eq!(
            policy_at(&schedules, at(0, 9, 0)).next.unwrap().at,
            at(0, 17, 0)
        );
    }

    #[test]
    fn a_whole_day_window_and_foreground_is_never_capped() {
        let schedules = [window(ALL_DAYS, 0, 0, Some(3))];
        let policy = policy_at(&schedules, at(3, 3, 3));
        assert_eq!(policy.caps.normal, Some(3));
        assert_eq!(policy.caps.of(JobPriority::Foreground), None);
        assert_eq!(policy.next, None);
        assert_eq!(schedules[0].describe(), "every day 00:00-24:00");
    }

    #[test]
    fn overlaps_among_ordinary_windows_are_found() {
        let schedules = [
            window(WEEKDAYS, 8 * 60, 17 * 60, Some(1)),
            window(FRI, 16 * 60, 18 * 60, Some(2)),
        ];
        assert_eq!(first_overlap(&schedules), Some((0, 1)));
        let touching = [
            window(WEEKDAYS, 8 * 60, 17 * 60, Some(1)),
            window(FRI, 17 * 60, 18 * 60, Some(2)),
        ];
        assert_eq!(first_overlap(&touching), None);
        let across_the_week = [
            window(SUN, 23 * 60, 2 * 60, Some(1)),
            window(MON, 60, 3 * 60, Some(2)),
        ];
        assert_eq!(first_overlap(&across_the_week), Some((0, 1)));
    }

    #[test]
    fn week_time_from_unix_seconds_and_offsets() {
        // 2026-12-04 12:30:15 UTC was a Friday.
        let friday = 1_796_387_415;
        assert_eq!(
            WeekTime::from_unix(friday, 0),
            WeekTime {
                minute: 4 * MINUTES_PER_DAY + 12 * 60 + 30,
                second: 15
            }
        );
        // Twelve hours east it is already Saturday 00:30.
        assert_eq!(
            WeekTime::from_unix(friday, 12 * 3600).minute,
            5 * MINUTES_PER_DAY + 30
        );
        assert_eq!(WeekTime::from_unix(friday, 0).describe(), "fri 12:30");
    }

    #[test]
    fn cost_masks_against_states() {
        let background =
            effective_cost_flags(None, JobPriority::Normal, COST_FLAGS_TRANSFER_UNRESTRICTED);
        assert_eq!(background, 0x8000_0021);
        assert!(cost_allows(background, COST_STATE_UNRESTRICTED));
        assert!(!cost_allows(background, COST_STATE_USAGE_BASED));
        let foreground = effective_cost_flags(None, JobPriority::Foreground, 0x21);
        assert!(cost_allows(foreground, COST_STATE_USAGE_BASED));
        assert_eq!(
            effective_cost_flags(Some(0x40), JobPriority::Foreground, 0),
            0x40
        );
        // IGNORE_CONGESTION alone allows nothing.
        assert!(!cost_allows(
            COST_OPTION_IGNORE_CONGESTION,
            COST_STATE_USAGE_BASED
        ));
    }

    #[test]
    fn cost_state_from_config_and_network_manager() {
        use MeteredSetting::{Auto, No, Yes};
        assert_eq!(cost_state(Auto, None), (0x1, CostSource::NoNetworkManager));
        for (value, state) in [(0, 0x1), (1, 0x40), (2, 0x1), (3, 0x40), (4, 0x1)] {
            assert_eq!(
                cost_state(Auto, Some(value)),
                (state, CostSource::NetworkManager { metered: value })
            );
        }
        assert_eq!(cost_state(Yes, None), (0x40, CostSource::Config));
        assert_eq!(cost_state(Yes, Some(2)), (0x40, CostSource::Config));
        assert_eq!(cost_state(No, Some(1)), (0x1, CostSource::Config));
    }
}
