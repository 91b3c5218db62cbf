//! The libc and curl edge of idle mode: a transfer's socket, what the kernel knows of it
//! (`TCP_INFO`), and its window clamp (`TCP_WINDOW_CLAMP`, tcp(7)).
//!
//! Every descriptor here is one curl holds open for a transfer on the engine thread; these
//! calls run on that thread between two `curl_multi_perform`s, so curl cannot close it
//! meanwhile. A descriptor that is not a TCP socket (a local copy, a QUIC transfer) makes
//! the calls fail, and idle mode leaves that transfer alone.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;

/// `CURLINFO_ACTIVESOCKET` (curl 7.45), which curl-sys does not name: `CURLINFO_SOCKET + 44`.
const CURLINFO_ACTIVESOCKET: curl_sys::CURLINFO = 0x50_0000 + 44;

/// The socket of the connection `easy` is transferring on, once it has one.
pub(crate) fn active_socket(easy: *mut curl_sys::CURL) -> Option<RawFd> {
    let mut socket: curl_sys::curl_socket_t = curl_sys::CURL_SOCKET_BAD;
    // SAFETY: `easy` is a live easy handle owned by the engine thread (the sink of a
    // transfer still in the multi handle); CURLINFO_ACTIVESOCKET writes a curl_socket_t.
    let code = unsafe { curl_sys::curl_easy_getinfo(easy, CURLINFO_ACTIVESOCKET, &raw mut socket) };
    (code == curl_sys::CURLE_OK && socket != curl_sys::CURL_SOCKET_BAD).then_some(socket)
}

/// The start of the kernel's `struct tcp_info` (linux/tcp.h), up to the byte counters
/// (Linux 4.1). The kernel fills as much as it has of the length we pass.
#[repr(C)]
#[derive(Default)]
struct TcpInfoPrefix {
    state_and_flags: [u8; 8],
    rto: u32,
    ato: u32,
    snd_mss: u32,
    rcv_mss: u32,
    unacked: u32,
    sacked: u32,
    lost: u32,
    retrans: u32,
    fackets: u32,
    last_data_sent: u32,
    last_ack_sent: u32,
    last_data_recv: u32,
    last_ack_recv: u32,
    pmtu: u32,
    rcv_ssthresh: u32,
    rtt: u32,
    rttvar: u32,
    snd_ssthresh: u32,
    snd_cwnd: u32,
    advmss: u32,
    reordering: u32,
    rcv_rtt: u32,
    rcv_space: u32,
    total_retrans: u32,
    pacing_rate: u64,
    max_pacing_rate: u64,
    bytes_acked: u64,
    bytes_received: u64,
}

/// What idle mode reads of a connection each tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TcpFacts {
    /// The segment size the peer sends (or our advertised MSS before data arrived).
    pub segment: u32,
    /// The kernel's receive-side round-trip estimate in microseconds (0: none yet).
    pub receive_rtt_us: u32,
    /// Payload bytes received on the connection so far.
    pub bytes_received: u64,
    /// The sender's smoothed round trip in microseconds (from its acknowledgements).
    pub send_rtt_us: u32,
    /// Payload bytes the peer acknowledged so far.
    pub bytes_acked: u64,
}

pub(crate) fn tcp_facts(socket: RawFd) -> io::Result<TcpFacts> {
    let mut info = TcpInfoPrefix::default();
    let mut length = libc::socklen_t::try_from(size_of::<TcpInfoPrefix>()).unwrap_or(0);
    // SAFETY: `info` is a plain C struct of `length` bytes that getsockopt may fill (in
    // part); `length` tells the kernel its size and gets back how much was written.
    let done = unsafe {
        libc::getsockopt(
            socket,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &raw mut length,
        )
    };
    if done != 0 {
        return Err(io::Error::last_os_error());
    }
    let full = libc::socklen_t::try_from(size_of::<TcpInfoPrefix>()).unwrap_or(0);
    if length < full {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the kernel's TCP_INFO has no byte counters",
        ));
    }
    let segment = if info.rcv_mss > 0 {
        info.rcv_mss
    } else {
        info.advmss
    };
    Ok(TcpFacts {
        segment,
        receive_rtt_us: info.rcv_rtt,
        bytes_received: info.bytes_received,
        send_rtt_us: info.rtt,
        bytes_acked: info.bytes_acked,
    })
}

/// Bounds the window the socket advertises to `bytes` (the kernel keeps at least about 1 kB).
pub(crate) fn set_window_clamp(socket: RawFd, bytes: u32) -> io::Result<()> {
    set_int_option(socket, libc::IPPROTO_TCP, libc::TCP_WINDOW_CLAMP, bytes)
}

/// Bounds what the socket holds unacknowledged (and unsent) to about `bytes`: the sender's
/// side of a window. The kernel doubles the value it is given, so half is asked for.
pub(crate) fn set_send_buffer(socket: RawFd, bytes: u32) -> io::Result<()> {
    set_int_option(socket, libc::SOL_SOCKET, libc::SO_SNDBUF, bytes / 2)
}

fn set_int_option(
    socket: RawFd,
    level: libc::c_int,
    option: libc::c_int,
    value: u32,
) -> io::Result<()> {
    let value = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt reads one c_int from `value`, whose size is passed.
    let done = unsafe {
        libc::setsockopt(
            socket,
            level,
            option,
            (&raw const value).cast(),
            libc::socklen_t::try_from(size_of::<libc::c_int>()).unwrap_or(0),
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The window clamp in force now (receive-buffer autotuning may have moved it).
pub(crate) fn window_clamp(socket: RawFd) -> io::Result<u32> {
    let mut value: libc::c_int = 0;
    let mut length = libc::socklen_t::try_from(size_of::<libc::c_int>()).unwrap_or(0);
    // SAFETY: getsockopt writes at most `length` bytes (one c_int) into `value`.
    let done = unsafe {
        libc::getsockopt(
            socket,
            libc::IPPROTO_TCP,
            libc::TCP_WINDOW_CLAMP,
            (&raw mut value).cast(),
            &raw mut length,
        )
    };
    if done != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u32::try_from(value).unwrap_or(0))
}

/// The address the socket is connected to: the server, or the proxy in between.
pub(crate) fn peer_address(socket: RawFd) -> Option<IpAddr> {
    address_of(socket, libc::getpeername)
}

/// The local address the socket's connection leaves from: another one for the same peer
/// means another route.
pub(crate) fn local_address(socket: RawFd) -> Option<IpAddr> {
    address_of(socket, libc::getsockname)
}

type AddressCall =
    unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;

fn address_of(socket: RawFd, call: AddressCall) -> Option<IpAddr> {
    // SAFETY: sockaddr_storage is plain data that may be all zeroes.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut length = libc::socklen_t::try_from(size_of::<libc::sockaddr_storage>()).ok()?;
    // SAFETY: getpeername and getsockname write at most `length` bytes of an address into
    // `storage`, which is large enough for any address family.
    let done = unsafe { call(socket, (&raw mut storage).cast(), &raw mut length) };
    if done != 0 {
        return None;
    }
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it can contain.
            let v4 = unsafe { &*(&raw const storage).cast::<libc::sockaddr_in>() };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6, which it can contain.
            let v6 = unsafe { &*(&raw const storage).cast::<libc::sockaddr_in6>() };
            let address = Ipv6Addr::from(v6.sin6_addr.s6_addr);
            // A v4 address reached through a dual-stack socket is probed over v4.
            Some(
                address
                    .to_ipv4_mapped()
                    .map_or(IpAddr::V6(address), IpAddr::V4),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn the_clamp_set_is_the_clamp_read_and_tcp_info_counts_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let socket = client.as_raw_fd();
        set_window_clamp(socket, 40_000).unwrap();
        assert_eq!(window_clamp(socket).unwrap(), 40_000);
        server.write_all(&[7; 5000]).unwrap();
        let mut buffer = [0; 5000];
        client.read_exact(&mut buffer).unwrap();
        let facts = tcp_facts(socket).unwrap();
        assert_eq!(facts.bytes_received, 5000);
        assert!(facts.segment > 0);
        assert_eq!(peer_address(socket), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }

    #[test]
    fn the_send_buffer_bounds_what_a_socket_holds_unacknowledged() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        set_send_buffer(client.as_raw_fd(), 64_000).unwrap();
        let buffer = rustix::net::sockopt::socket_send_buffer_size(&client).unwrap();
        // The kernel doubles what it is given (half was asked for).
        assert_eq!(buffer, 64_000);
    }

    #[test]
    fn a_descriptor_that_is_not_a_socket_is_refused() {
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        assert!(tcp_facts(file.as_raw_fd()).is_err());
        assert!(set_window_clamp(file.as_raw_fd(), 10_000).is_err());
        assert_eq!(peer_address(file.as_raw_fd()), None);
    }
}
