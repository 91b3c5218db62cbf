//! What idle mode is doing for a background transfer, as the engine reports it and clients
//! show it (`qmgr info`, `--json`). Idle mode itself lives in the transfer engine.

use std::fmt;

/// Where a connection's queueing delay is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DelaySource {
    /// The process's own ICMP echo probes to the connection's peer.
    Echo,
    /// The kernel's receive-side round-trip estimate (`TCP_INFO`); used where unprivileged
    /// ICMP sockets are not allowed (`net.ipv4.ping_group_range`).
    TcpInfo,
    /// No measurement at all: the window is held at a fixed size.
    Fixed,
}

impl DelaySource {
    /// The name `--json` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            DelaySource::Echo => "icmp",
            DelaySource::TcpInfo => "tcp_info",
            DelaySource::Fixed => "fixed",
        }
    }
}

/// Where the controller of a connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum IdlePhase {
    /// Growing quickly from the start.
    Starting,
    /// Queueing delay under the target: using idle capacity.
    Filling,
    /// Queueing delay over the target: giving way to other traffic.
    Yielding,
    /// A periodic slowdown, to see the path's delay without its own queue.
    Measuring,
}

impl IdlePhase {
    /// The name `--json` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            IdlePhase::Starting => "starting",
            IdlePhase::Filling => "filling",
            IdlePhase::Yielding => "yielding",
            IdlePhase::Measuring => "measuring",
        }
    }
}

/// One idle transfer's state at the engine's last tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdleView {
    pub source: DelaySource,
    pub phase: IdlePhase,
    /// Current delay minus the path's base delay, once measured.
    pub queueing_delay_us: Option<u64>,
    pub base_delay_us: Option<u64>,
    pub target_us: u64,
    /// The receive window the connection may advertise, as the kernel holds it.
    pub window_bytes: u32,
}

impl fmt::Display for IdleView {
    /// "yielding, queueing delay 48 ms > target 40 ms, window 12 kB (delay from ICMP echo)"
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |us: u64| us.div_ceil(1000);
        write!(f, "{}", self.phase.as_str())?;
        match self.queueing_delay_us {
            Some(delay) => {
                let relation = if delay > self.target_us { ">" } else { "≤" };
                write!(
                    f,
                    ", queueing delay {} ms {relation} target {} ms",
                    ms(delay),
                    ms(self.target_us)
                )?;
            }
            None => write!(f, ", target {} ms", ms(self.target_us))?,
        }
        let source = match self.source {
            DelaySource::Echo => "delay from ICMP echo",
            DelaySource::TcpInfo => "delay from the kernel's TCP estimate",
            DelaySource::Fixed => "no delay measurement: fixed window",
        };
        write!(
            f,
            ", window {} kB ({source})",
            self.window_bytes.div_ceil(1000)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_reads_what_idle_mode_does() {
        let view = IdleView {
            source: DelaySource::Echo,
            phase: IdlePhase::Yielding,
            queueing_delay_us: Some(48_000),
            base_delay_us: Some(2_000),
            target_us: 40_000,
            window_bytes: 12_000,
        };
        assert_eq!(
            view.to_string(),
            "yielding, queueing delay 48 ms > target 40 ms, window 12 kB (delay from ICMP echo)"
        );
        let starting = IdleView {
            source: DelaySource::TcpInfo,
            phase: IdlePhase::Starting,
            queueing_delay_us: None,
            base_delay_us: None,
            ..view
        };
        assert_eq!(
            starting.to_string(),
            "starting, target 40 ms, window 12 kB (delay from the kernel's TCP estimate)"
        );
    }
}
