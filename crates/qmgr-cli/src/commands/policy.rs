//! `qmgr policy`: the transfer policy in effect — the network's cost, the bandwidth
//! schedule's caps now and next, idle mode.

use std::fmt::Write as _;

use qmgr_core::Timestamp;
use qmgr_core::policy::{COST_STATE_USAGE_BASED, CostSource, MeteredSetting, PriorityCaps};
use qmgr_core::service::{PolicyView, QueueServiceExt};
use qmgr_ipc::Client;
use serde::Serialize;

use crate::failure::Failure;
use crate::human;
use crate::json;

pub fn run(client: &Client, as_json: bool) -> Result<(), Failure> {
    let view = client.policy()?;
    if as_json {
        json::print(&PolicyJson::from(&view));
    } else {
        print!("{}", describe(&view, Timestamp::now()));
    }
    Ok(())
}

fn cap_text(cap: Option<u64>) -> String {
    cap.map_or_else(
        || "unlimited".to_owned(),
        |b| format!("{}/s", human::bytes(b)),
    )
}

fn caps_text(caps: &PriorityCaps) -> String {
    format!(
        "HIGH {}, NORMAL {}, LOW {}",
        cap_text(caps.high),
        cap_text(caps.normal),
        cap_text(caps.low)
    )
}

fn source_text(view: &PolicyView) -> String {
    match view.cost_source {
        CostSource::NetworkManager { metered } => {
            format!("NetworkManager (Metered = {metered})")
        }
        CostSource::Config => format!("config (metered = \"{}\")", metered_name(view.metered)),
        CostSource::NoNetworkManager => {
            "no NetworkManager on the system bus: taken as unmetered".to_owned()
        }
    }
}

fn metered_name(setting: MeteredSetting) -> &'static str {
    match setting {
        MeteredSetting::Auto => "auto",
        MeteredSetting::Yes => "yes",
        MeteredSetting::No => "no",
    }
}

/// The text `qmgr policy` prints.
pub fn describe(view: &PolicyView, now: Timestamp) -> String {
    let mut text = String::new();
    let mut line = |label: &str, value: &str| {
        let _ = writeln!(text, "{:<18}{}", format!("{label}:"), human::clean(value));
    };
    let metered = view.cost_state & COST_STATE_USAGE_BASED != 0;
    line(
        "Network",
        &format!(
            "{} (cost state {:#x}), from {}",
            if metered { "metered" } else { "not metered" },
            view.cost_state,
            source_text(view)
        ),
    );
    if metered {
        line(
            "Effect",
            "background jobs wait unless their cost flags allow a metered network; \
             FOREGROUND jobs go on",
        );
    }
    line("Local time", &view.local_time);
    line(
        "Schedule now",
        &format!(
            "{} ({})",
            caps_text(&view.caps),
            view.window
                .as_deref()
                .unwrap_or("outside every [[schedule]] window")
        ),
    );
    match &view.next {
        Some(next) => line(
            "Next change",
            &format!(
                "{} ({}, {}): {} ({})",
                next.local_time,
                human::relative(next.at, now),
                human::rfc3339(next.at),
                caps_text(&next.caps),
                next.window
                    .as_deref()
                    .unwrap_or("outside every [[schedule]] window")
            ),
        ),
        None => line("Next change", "none (the schedule's caps never change)"),
    }
    line("Global limit", &cap_text(view.bandwidth_limit));
    line(
        "Idle mode",
        &if view.idle_mode {
            format!(
                "on, target queueing delay {} ms (HIGH, NORMAL, LOW)",
                view.idle_target.as_millis()
            )
        } else {
            "off".to_owned()
        },
    );
    text
}

#[derive(Debug, Serialize)]
struct CapsJson {
    high: Option<u64>,
    normal: Option<u64>,
    low: Option<u64>,
}

impl From<&PriorityCaps> for CapsJson {
    fn from(caps: &PriorityCaps) -> Self {
        CapsJson {
            high: caps.high,
            normal: caps.normal,
            low: caps.low,
        }
    }
}

#[derive(Debug, Serialize)]
struct NextJson {
    at: String,
    local_time: String,
    caps: CapsJson,
    window: Option<String>,
}

/// `qmgr policy --json`; caps in bytes per second, `null` for none.
#[derive(Debug, Serialize)]
struct PolicyJson {
    metered: bool,
    cost_state: u32,
    /// `network_manager`, `config` or `no_network_manager`.
    cost_source: &'static str,
    /// NetworkManager's `Metered` value when it is the source.
    network_manager_metered: Option<u32>,
    /// The config's `metered`: `auto`, `yes` or `no`.
    metered_setting: &'static str,
    local_time: String,
    caps: CapsJson,
    window: Option<String>,
    next: Option<NextJson>,
    bandwidth_limit: Option<u64>,
    idle_mode: bool,
    idle_target_ms: u128,
}

impl From<&PolicyView> for PolicyJson {
    fn from(view: &PolicyView) -> Self {
        let (cost_source, network_manager_metered) = match view.cost_source {
            CostSource::NetworkManager { metered } => ("network_manager", Some(metered)),
            CostSource::Config => ("config", None),
            CostSource::NoNetworkManager => ("no_network_manager", None),
        };
        PolicyJson {
            metered: view.cost_state & COST_STATE_USAGE_BASED != 0,
            cost_state: view.cost_state,
            cost_source,
            network_manager_metered,
            metered_setting: metered_name(view.metered),
            local_time: view.local_time.clone(),
            caps: CapsJson::from(&view.caps),
            window: view.window.clone(),
            next: view.next.as_ref().map(|next| NextJson {
                at: human::rfc3339(next.at),
                local_time: next.local_time.clone(),
                caps: CapsJson::from(&next.caps),
                window: next.window.clone(),
            }),
            bandwidth_limit: view.bandwidth_limit,
            idle_mode: view.idle_mode,
            idle_target_ms: view.idle_target.as_millis(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmgr_core::service::PolicyChange;
    use std::time::Duration;

    fn sample() -> PolicyView {
        PolicyView {
            cost_state: 0x40,
            cost_source: CostSource::NetworkManager { metered: 1 },
            metered: MeteredSetting::Auto,
            local_time: "mon 10:00".into(),
            caps: PriorityCaps {
                high: None,
                normal: Some(1_048_576),
                low: Some(1024),
            },
            window: Some("mon,tue,wed,thu,fri 08:00-17:00, line 4".into()),
            next: Some(PolicyChange {
                at: Timestamp(7 * 3600 * 1_000_000),
                local_time: "mon 17:00".into(),
                caps: PriorityCaps::default(),
                window: None,
            }),
            bandwidth_limit: None,
            idle_mode: true,
            idle_target: Duration::from_millis(40),
        }
    }

    #[test]
    fn the_text_says_what_applies_now_and_next() {
        let text = describe(&sample(), Timestamp(0));
        assert!(
            text.contains("metered (cost state 0x40), from NetworkManager (Metered = 1)"),
            "{text}"
        );
        assert!(
            text.contains("HIGH unlimited, NORMAL 1.00 MiB/s, LOW 1.00 KiB/s (mon,tue"),
            "{text}"
        );
        assert!(text.contains("mon 17:00 (in 7 hours"), "{text}");
        assert!(text.contains("outside every [[schedule]] window"), "{text}");
        assert!(text.contains("on, target queueing delay 40 ms"), "{text}");
    }

    #[test]
    fn the_json_names_the_source() {
        let json = json::to_text(&PolicyJson::from(&sample()));
        assert!(
            json.contains("\"cost_source\": \"network_manager\""),
            "{json}"
        );
        assert!(json.contains("\"network_manager_metered\": 1"), "{json}");
        assert!(json.contains("\"normal\": 1048576"), "{json}");
        assert!(json.contains("\"idle_target_ms\": 40"), "{json}");
    }
}
