//! Echo probes: the process's own ICMP echo requests to the peers of background
//! connections, 40 a second each while a transfer is watching that peer, on a thread of
//! their own so that a busy engine thread does not delay the replies it times.
//!
//! It uses Linux's unprivileged ICMP sockets (`SOCK_DGRAM`, `IPPROTO_ICMP`), which exist
//! for the groups in `net.ipv4.ping_group_range` (root is not in the default range
//! either). Where they are refused, [`EchoProber::start`] fails and idle mode falls back
//! to the kernel's own round-trip estimate.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::net::{AddressFamily, SocketFlags, SocketType, ipproto, socket_with};

use super::delay::DelayEstimate;

/// Time between two probes of one peer.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_millis(25);
/// A peer nobody asked about for this long is no longer probed.
const WATCH_LEASE: Duration = Duration::from_secs(1);
/// A peer's delay history is kept this long after its last probe, so the next transfer to
/// the same server starts from the base delay already learnt.
const KEEP_HISTORY: Duration = Duration::from_secs(600);
/// Replies older than this no longer describe the path's queue.
const REPLY_FRESHNESS: Duration = Duration::from_millis(500);
/// A probe unanswered for this long is lost.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// Marks our payload, so a stray reply is not mistaken for one of ours.
const MAGIC: [u8; 4] = *b"qmgr";

const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;

#[derive(Debug, Default)]
struct Peer {
    watched_until: Option<Instant>,
    last_sent: Option<Instant>,
    /// The local address last used to reach it: another one means another route.
    local: Option<IpAddr>,
    estimate: DelayEstimate,
    /// Probes in flight: sequence number and when it left.
    in_flight: Vec<(u16, Instant)>,
    last_reply: Option<Instant>,
}

#[derive(Debug, Default)]
struct Peers {
    by_address: HashMap<IpAddr, Peer>,
}

impl Peers {
    fn delays(&self, peer: IpAddr, now: Instant) -> Option<(Duration, Duration)> {
        let peer = self.by_address.get(&peer)?;
        peer.last_reply
            .filter(|at| now.saturating_duration_since(*at) < REPLY_FRESHNESS)?;
        Some((peer.estimate.queueing()?, peer.estimate.base()?))
    }

    fn watch(&mut self, peer: IpAddr, local: Option<IpAddr>, now: Instant) {
        let entry = self.by_address.entry(peer).or_default();
        if local.is_some() && entry.local.is_some() && entry.local != local {
            // Another local address: another route, whose delay we have not seen.
            entry.estimate.reset();
        }
        if local.is_some() {
            entry.local = local;
        }
        entry.watched_until = Some(now + WATCH_LEASE);
    }
}

#[derive(Debug)]
struct Shared {
    peers: Mutex<Peers>,
    stop: AtomicBool,
    /// Wakes the thread when a peer is watched again, or to stop: with nothing to probe it
    /// sleeps without waking.
    wanted: Condvar,
}

/// The probing thread and what it has measured.
#[derive(Debug)]
pub(crate) struct EchoProber {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl EchoProber {
    /// Opens the ICMP sockets and starts probing; fails where unprivileged ICMP sockets are
    /// not allowed for this process's groups.
    pub fn start() -> io::Result<Self> {
        let v4 = open_socket(AddressFamily::INET);
        let v6 = open_socket(AddressFamily::INET6);
        if let (Err(error), Err(_)) = (&v4, &v6) {
            return Err(io::Error::new(
                error.kind(),
                format!(
                    "unprivileged ICMP echo is not allowed here ({error}); see net.ipv4.ping_group_range"
                ),
            ));
        }
        let shared = Arc::new(Shared {
            peers: Mutex::new(Peers::default()),
            stop: AtomicBool::new(false),
            wanted: Condvar::new(),
        });
        let sockets = Sockets {
            v4: v4.ok(),
            v6: v6.ok(),
        };
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("qmgr-idle-probe".to_owned())
            .spawn(move || probe_loop(&thread_shared, &sockets))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Asks for `peer` to be probed for the next second, reached from `local`.
    pub fn watch(&self, peer: IpAddr, local: Option<IpAddr>, now: Instant) {
        self.lock().watch(peer, local, now);
        self.shared.wanted.notify_one();
    }

    /// The queueing delay and base delay of `peer`, once replies have come back.
    /// `None` also when the peer stopped answering: many servers drop echo requests, or
    /// limit the rate of their replies, and an old sample says nothing about the queue now.
    pub fn delays(&self, peer: IpAddr, now: Instant) -> Option<(Duration, Duration)> {
        self.lock().delays(peer, now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Peers> {
        self.shared
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for EchoProber {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wanted.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Sockets {
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
}

fn open_socket(family: AddressFamily) -> io::Result<UdpSocket> {
    let protocol = if family == AddressFamily::INET {
        ipproto::ICMP
    } else {
        ipproto::ICMPV6
    };
    let fd = socket_with(
        family,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        Some(protocol),
    )?;
    // An ICMP datagram socket takes sendto/recvfrom like a UDP one; the port is unused.
    Ok(UdpSocket::from(fd))
}

fn probe_loop(shared: &Shared, sockets: &Sockets) {
    let mut sequence: u16 = 0;
    let mut buffer = [0_u8; 256];
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let Some(next_send) = send_due_probes(shared, sockets, &mut sequence, now) else {
            // Nothing to probe: sleep until a transfer watches a peer (the timeout only
            // lets old histories expire).
            let peers = shared.peers.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let watched = peers
                .by_address
                .values()
                .any(|peer| peer.watched_until.is_some_and(|until| until > now));
            if !watched && !shared.stop.load(Ordering::Relaxed) {
                let _ = shared.wanted.wait_timeout(peers, KEEP_HISTORY);
            }
            continue;
        };
        let wait = next_send
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        wait_for_replies(shared, sockets, wait, &mut buffer);
    }
}

/// Sends the probes that are due; returns when the next one is.
fn send_due_probes(
    shared: &Shared,
    sockets: &Sockets,
    sequence: &mut u16,
    now: Instant,
) -> Option<Instant> {
    let mut peers = shared.peers.lock().unwrap_or_else(PoisonError::into_inner);
    peers.by_address.retain(|_, peer| {
        peer.last_sent
            .or(peer.watched_until)
            .is_some_and(|last| now.saturating_duration_since(last) < KEEP_HISTORY)
    });
    let mut next: Option<Instant> = None;
    for (address, peer) in &mut peers.by_address {
        if peer.watched_until.is_none_or(|until| now >= until) {
            continue;
        }
        peer.in_flight
            .retain(|(_, sent)| now.saturating_duration_since(*sent) < REPLY_TIMEOUT);
        let due = peer
            .last_sent
            .is_none_or(|last| now >= last + PROBE_INTERVAL);
        if due {
            *sequence = sequence.wrapping_add(1);
            if send_probe(sockets, *address, *sequence).is_ok() {
                peer.in_flight.push((*sequence, now));
            }
            peer.last_sent = Some(now);
        }
        let at = peer.last_sent.unwrap_or(now) + PROBE_INTERVAL;
        next = Some(next.map_or(at, |n| n.min(at)));
    }
    next
}

fn send_probe(sockets: &Sockets, peer: IpAddr, sequence: u16) -> io::Result<()> {
    let (socket, kind) = match peer {
        IpAddr::V4(_) => (sockets.v4.as_ref(), ICMP_ECHO_REQUEST),
        IpAddr::V6(_) => (sockets.v6.as_ref(), ICMPV6_ECHO_REQUEST),
    };
    let socket = socket.ok_or_else(|| io::Error::from(io::ErrorKind::Unsupported))?;
    // Type, code, checksum and identifier are filled in by the kernel where it must be.
    let mut packet = [0_u8; 12];
    packet[0] = kind;
    packet[6..8].copy_from_slice(&sequence.to_be_bytes());
    packet[8..12].copy_from_slice(&MAGIC);
    socket.send_to(&packet, SocketAddr::new(peer, 0))?;
    Ok(())
}

fn wait_for_replies(shared: &Shared, sockets: &Sockets, wait: Duration, buffer: &mut [u8]) {
    let open: Vec<&UdpSocket> = [sockets.v4.as_ref(), sockets.v6.as_ref()]
        .into_iter()
        .flatten()
        .collect();
    let mut fds: Vec<PollFd<'_>> = open
        .iter()
        .map(|socket| PollFd::new(*socket, PollFlags::IN))
        .collect();
    let timeout = Timespec {
        tv_sec: i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(wait.subsec_nanos()),
    };
    if poll(&mut fds, Some(&timeout)).unwrap_or(0) == 0 {
        return;
    }
    let arrived = Instant::now();
    for socket in open {
        while let Ok((length, from)) = socket.recv_from(buffer) {
            if let Some(sequence) = echo_reply_sequence(&buffer[..length]) {
                record_reply(shared, from.ip(), sequence, arrived);
            }
        }
    }
}

/// The sequence number of one of our echo replies.
fn echo_reply_sequence(packet: &[u8]) -> Option<u16> {
    if packet.len() < 12 || packet[8..12] != MAGIC {
        return None;
    }
    if packet[0] != ICMP_ECHO_REPLY && packet[0] != ICMPV6_ECHO_REPLY {
        return None;
    }
    Some(u16::from_be_bytes([packet[6], packet[7]]))
}

fn record_reply(shared: &Shared, from: IpAddr, sequence: u16, arrived: Instant) {
    let from = match from {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    };
    let mut peers = shared.peers.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(peer) = peers.by_address.get_mut(&from) else {
        return;
    };
    if let Some(index) = peer.in_flight.iter().position(|(s, _)| *s == sequence) {
        let (_, sent) = peer.in_flight.swap_remove(index);
        peer.last_reply = Some(arrived);
        peer.estimate
            .add(arrived, arrived.saturating_duration_since(sent));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn only_our_echo_replies_are_read() {
        let mut reply = [0_u8; 12];
        reply[0] = ICMP_ECHO_REPLY;
        reply[6..8].copy_from_slice(&513_u16.to_be_bytes());
        reply[8..12].copy_from_slice(&MAGIC);
        assert_eq!(echo_reply_sequence(&reply), Some(513));
        let mut request = reply;
        request[0] = ICMP_ECHO_REQUEST;
        assert_eq!(echo_reply_sequence(&request), None);
        let mut foreign = reply;
        foreign[8] = b'x';
        assert_eq!(echo_reply_sequence(&foreign), None);
        assert_eq!(echo_reply_sequence(&reply[..10]), None);
    }

    #[test]
    fn another_local_address_is_another_route_whose_delay_is_learnt_afresh() {
        let mut peers = Peers::default();
        let server = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let wired = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        let wireless = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 1, 2)));
        let now = Instant::now();
        peers.watch(server, wired, now);
        let estimate = &mut peers.by_address.get_mut(&server).unwrap().estimate;
        estimate.add(now, Duration::from_millis(5));
        peers.watch(server, wired, now);
        assert_eq!(
            peers.by_address[&server].estimate.base(),
            Some(Duration::from_millis(5))
        );
        peers.watch(server, wireless, now);
        assert_eq!(peers.by_address[&server].estimate.base(), None);
    }

    #[test]
    fn a_peer_that_stopped_answering_has_no_delay() {
        let mut peers = Peers::default();
        let server = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let now = Instant::now();
        peers.watch(server, None, now);
        assert_eq!(peers.delays(server, now), None, "no reply yet");
        let peer = peers.by_address.get_mut(&server).unwrap();
        peer.estimate.add(now, Duration::from_millis(5));
        peer.last_reply = Some(now);
        assert_eq!(
            peers.delays(server, now + Duration::from_millis(100)),
            Some((Duration::ZERO, Duration::from_millis(5)))
        );
        assert_eq!(peers.delays(server, now + REPLY_FRESHNESS), None);
    }

    /// Where this machine lets the process open an ICMP socket, loopback answers and a
    /// delay is measured; elsewhere starting fails with a reason instead.
    #[test]
    fn loopback_answers_or_the_start_says_why_not() {
        match EchoProber::start() {
            Ok(prober) => {
                let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
                let deadline = Instant::now() + Duration::from_secs(5);
                let mut delays = None;
                while delays.is_none() && Instant::now() < deadline {
                    prober.watch(loopback, None, Instant::now());
                    std::thread::sleep(PROBE_INTERVAL);
                    delays = prober.delays(loopback, Instant::now());
                }
                let (queueing, base) = delays.expect("no reply from 127.0.0.1");
                assert!(base < Duration::from_secs(1));
                assert!(queueing < Duration::from_secs(1));
            }
            Err(error) => assert!(error.to_string().contains("ping_group_range"), "{error}"),
        }
    }
}
