//! Idle mode: background transfers that use only bandwidth nobody else is using.
//!
//! The bottleneck is usually not this machine's interface but a router further out (a DSL
//! line, a Wi-Fi hop) whose buffer fills when a download takes all it can. Idle mode
//! watches that buffer through the delay it adds and keeps a background connection's
//! share of it under a target (40 ms by default), so that other traffic finds the line
//! free: a receiver-side delay controller (LEDBAT++'s rules run at the receiver, as in RFC
//! 9840) per connection, acting through the window the connection may advertise
//! (`TCP_WINDOW_CLAMP`, re-asserted every tick since receive-buffer autotuning moves it).
//!
//! Delay comes, in order of preference, from the process's own ICMP echo probes to the
//! connection's peer (the proxy, when there is one), from the kernel's receive-side round
//! trip estimate (`TCP_INFO`, which reads low under load), or — with neither — the window
//! is simply held at a fixed size. Background connections live in a connection pool of
//! their own, so a clamped connection never carries a foreground transfer.

mod controller;
mod delay;
mod echo;
mod pool;
mod socket;

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, PoisonError};

use std::time::{Duration, Instant};

pub(crate) use pool::ConnectionPool;
use qmgr_core::idle::{DelaySource, IdleView};

use controller::{Observation, WindowController};
use delay::DelayEstimate;
use echo::EchoProber;

use crate::request::TransferId;

/// How often idle mode looks at its connections.
pub(crate) const TICK: Duration = Duration::from_millis(25);
/// How long a new connection waits for the first echo replies before it takes the kernel's
/// estimate instead.
const ECHO_GRACE: Duration = Duration::from_secs(1);
/// The window of a connection whose delay cannot be measured at all.
pub(crate) const FIXED_WINDOW: u32 = 64 * 1024;

/// The queueing delay idle mode aims for by default, and the range it accepts.
pub(crate) const DEFAULT_TARGET: Duration = Duration::from_millis(40);
pub(crate) const MIN_TARGET: Duration = Duration::from_millis(20);
pub(crate) const MAX_TARGET: Duration = Duration::from_millis(100);

/// Statuses of running idle transfers, shared with the engine's callers.
pub(crate) type StatusBoard = Arc<Mutex<HashMap<TransferId, IdleView>>>;

/// One background connection under control.
#[derive(Debug)]
struct Link {
    peer: IpAddr,
    controller: WindowController,
    /// `TCP_INFO`'s received-bytes counter at the last tick.
    bytes_received: u64,
    last_tick: Instant,
    /// Delays from the kernel's estimate, for when echo probes are not available.
    kernel_delays: DelayEstimate,
    created: Instant,
    seen: bool,
    /// What this tick's control did, for every transfer on the connection.
    status: Option<IdleView>,
}

#[derive(Debug)]
enum Prober {
    NotTried,
    Running(EchoProber),
    Unavailable,
}

/// Idle mode's state on the engine thread.
#[derive(Debug)]
pub(crate) struct IdleRegulator {
    target: Duration,
    prober: Prober,
    links: HashMap<RawFd, Link>,
    next_tick: Option<Instant>,
    statuses: StatusBoard,
    /// The transfers whose statuses this regulator put on the board (uploads put their own).
    published: Vec<TransferId>,
}

impl IdleRegulator {
    /// A regulator aiming at `target`, publishing what it does on `statuses`.
    pub fn new(target: Duration, statuses: StatusBoard) -> Self {
        Self {
            target: target.clamp(MIN_TARGET, MAX_TARGET),
            prober: Prober::NotTried,
            links: HashMap::new(),
            next_tick: None,
            statuses,
            published: Vec::new(),
        }
    }

    /// When the next tick is due, while there are idle transfers.
    pub fn next_tick(&self) -> Option<Instant> {
        self.next_tick
    }

    /// Looks at every idle transfer's connection and sets its window. `transfers` are the
    /// idle transfers that have a connection, with its socket.
    pub fn tick(&mut self, now: Instant, transfers: &[(TransferId, RawFd)]) {
        if transfers.is_empty() {
            self.links.clear();
            self.next_tick = None;
            self.publish(HashMap::new());
            return;
        }
        if self.next_tick.is_some_and(|due| now < due) {
            return;
        }
        self.next_tick = Some(now + TICK);
        if matches!(self.prober, Prober::NotTried) {
            // Where ICMP sockets are refused, the status's source tells (`tcp_info`).
            self.prober = EchoProber::start().map_or(Prober::Unavailable, Prober::Running);
        }
        for link in self.links.values_mut() {
            link.seen = false;
        }
        let mut statuses = HashMap::new();
        for &(id, socket) in transfers {
            if let Some(status) = self.control(now, socket) {
                statuses.insert(id, status);
            }
        }
        self.links.retain(|_, link| link.seen);
        self.publish(statuses);
    }

    /// Replaces what this regulator published with `statuses`.
    fn publish(&mut self, statuses: HashMap<TransferId, IdleView>) {
        if self.published.is_empty() && statuses.is_empty() {
            return;
        }
        let mut board = self.statuses.lock().unwrap_or_else(PoisonError::into_inner);
        for id in self.published.drain(..) {
            board.remove(&id);
        }
        self.published.extend(statuses.keys().copied());
        board.extend(statuses);
    }

    /// Controls one connection (once per tick, however many transfers share it).
    fn control(&mut self, now: Instant, socket: RawFd) -> Option<IdleView> {
        let facts = socket::tcp_facts(socket).ok()?;
        let peer = socket::peer_address(socket)?;
        let target = self.target;
        // A descriptor number comes back for a new connection once the old one closed.
        let stale = self
            .links
            .get(&socket)
            .is_some_and(|link| link.peer != peer || facts.bytes_received < link.bytes_received);
        if stale {
            self.links.remove(&socket);
        }
        let link = self.links.entry(socket).or_insert_with(|| Link {
            peer,
            controller: WindowController::new(target, facts.segment),
            bytes_received: facts.bytes_received,
            last_tick: now,
            kernel_delays: DelayEstimate::default(),
            created: now,
            seen: false,
            status: None,
        });
        if link.seen {
            // Another transfer on the same (HTTP/2) connection: controlled already.
            return link.status;
        }
        link.seen = true;
        link.controller.set_segment(facts.segment);
        let received = facts.bytes_received.saturating_sub(link.bytes_received);
        link.bytes_received = facts.bytes_received;
        let elapsed = now.saturating_duration_since(link.last_tick);
        link.last_tick = now;
        if facts.receive_rtt_us > 0 {
            link.kernel_delays
                .add(now, Duration::from_micros(u64::from(facts.receive_rtt_us)));
        }
        let echo = match &self.prober {
            Prober::Running(prober) => {
                prober.watch(peer, socket::local_address(socket), now);
                prober.delays(peer, now)
            }
            _ => None,
        };
        let awaiting_echo = matches!(self.prober, Prober::Running(_))
            && now.saturating_duration_since(link.created) < ECHO_GRACE;
        let (source, delays) = match echo {
            Some(delays) => (DelaySource::Echo, Some(delays)),
            // Probes are starting: hold the window where it is until the first replies.
            None if awaiting_echo => (DelaySource::Echo, None),
            // No probes, or a peer that does not answer them: the kernel's estimate.
            None => match (link.kernel_delays.queueing(), link.kernel_delays.base()) {
                (Some(queueing), Some(base)) => (DelaySource::TcpInfo, Some((queueing, base))),
                _ => (DelaySource::Fixed, None),
            },
        };
        let window = match (source, delays) {
            (_, Some((queueing_delay, base_delay))) if elapsed > Duration::ZERO => {
                link.controller.observe(Observation {
                    now,
                    queueing_delay,
                    base_delay,
                    received,
                    elapsed,
                })
            }
            (DelaySource::Fixed, _) => FIXED_WINDOW,
            _ => link.controller.window(),
        };
        // Autotuning may have raised the clamp since the last tick: set it every time.
        let _ = socket::set_window_clamp(socket, window);
        let held = socket::window_clamp(socket).unwrap_or(window);
        Some(IdleView {
            source,
            phase: link.controller.phase(),
            queueing_delay_us: delays.map(|(queueing, _)| micros(queueing)),
            base_delay_us: delays.map(|(_, base)| micros(base)),
            target_us: micros(target),
            window_bytes: held,
        })
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// The socket of an idle transfer's connection, if it has one yet.
pub(crate) fn transfer_socket(easy: *mut curl_sys::CURL) -> Option<RawFd> {
    socket::active_socket(easy)
}

/// Idle mode for an upload, on its own thread: where the kernel has `tcp_lp` (a sender-side
/// scavenger congestion control) the connection uses it; elsewhere the same delay
/// controller runs on the sending side, with the sender's own round-trip estimate as its
/// delay and the socket's send buffer as its window.
#[derive(Debug)]
pub(crate) struct SendRegulator {
    target: Duration,
    /// The connection this state belongs to.
    socket: Option<RawFd>,
    controller: WindowController,
    delays: DelayEstimate,
    bytes_acked: u64,
    last_tick: Option<Instant>,
    /// The connection uses `tcp_lp`: the kernel yields, nothing to control.
    low_priority: bool,
    statuses: StatusBoard,
    id: TransferId,
}

/// The congestion control that makes a sender use only idle capacity (Linux's `tcp_lp`).
const LOW_PRIORITY_CONGESTION: &str = "lp";

impl SendRegulator {
    pub fn new(target: Duration, statuses: StatusBoard, id: TransferId) -> Self {
        let target = target.clamp(MIN_TARGET, MAX_TARGET);
        Self {
            target,
            socket: None,
            controller: WindowController::new(target, 1448),
            delays: DelayEstimate::default(),
            bytes_acked: 0,
            last_tick: None,
            low_priority: false,
            statuses,
            id,
        }
    }

    /// A new connection's socket: asks for `tcp_lp` (allowed for root, or where
    /// `net.ipv4.tcp_allowed_congestion_control` lists it).
    pub fn on_new_socket(&mut self, socket: std::os::fd::BorrowedFd<'_>) {
        self.low_priority =
            rustix::net::sockopt::set_tcp_congestion(socket, LOW_PRIORITY_CONGESTION).is_ok();
    }

    /// Looks at the connection (at most every tick) and sets its send buffer.
    pub fn tick(&mut self, now: Instant, socket: RawFd) {
        if self.low_priority || self.last_tick.is_some_and(|last| now < last + TICK) {
            return;
        }
        let Ok(facts) = socket::tcp_facts(socket) else {
            return;
        };
        if self.socket != Some(socket) || facts.bytes_acked < self.bytes_acked {
            // Another connection: its own window, from the start.
            self.socket = Some(socket);
            self.controller = WindowController::new(self.target, facts.segment);
            self.bytes_acked = facts.bytes_acked;
            self.last_tick = Some(now);
            return;
        }
        let elapsed = self
            .last_tick
            .map_or(TICK, |last| now.saturating_duration_since(last));
        self.last_tick = Some(now);
        let acked = facts.bytes_acked - self.bytes_acked;
        self.bytes_acked = facts.bytes_acked;
        if facts.send_rtt_us > 0 {
            self.delays
                .add(now, Duration::from_micros(u64::from(facts.send_rtt_us)));
        }
        let (Some(queueing_delay), Some(base_delay)) = (self.delays.queueing(), self.delays.base())
        else {
            return;
        };
        self.controller.set_segment(facts.segment);
        let window = self.controller.observe(Observation {
            now,
            queueing_delay,
            base_delay,
            received: acked,
            elapsed,
        });
        let _ = socket::set_send_buffer(socket, window);
        self.statuses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                self.id,
                IdleView {
                    source: DelaySource::TcpInfo,
                    phase: self.controller.phase(),
                    queueing_delay_us: Some(micros(queueing_delay)),
                    base_delay_us: Some(micros(base_delay)),
                    target_us: micros(self.target),
                    window_bytes: window,
                },
            );
    }
}

impl Drop for SendRegulator {
    fn drop(&mut self) {
        self.statuses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}
