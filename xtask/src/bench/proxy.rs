//! A loopback TCP proxy in front of an upload server that reads the client's requests as
//! they pass: it counts the bytes of BITS Fragment bodies it hands to the server, and can
//! cut the connection once, in the middle of a body, after a given number of them. The
//! upload resilience cases use it for their dropped connection and for their measure of
//! bytes sent again.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use anyhow::{Context, Result, bail};

/// Bytes read from a socket at a time.
const BUFFER: usize = 256 * 1024;
/// A request head longer than this is not an upload packet.
const LONGEST_HEAD: usize = 64 * 1024;

/// The proxy on a free loopback port; stopped, every connection closed, when dropped.
#[derive(Debug)]
pub struct CuttingProxy {
    port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    upstream_port: u16,
    /// Fragment body bytes passed to the server, over all connections.
    fragment_bytes: AtomicU64,
    /// The count of fragment bytes at which the connection carrying them is cut.
    cut_at: Option<u64>,
    cut_done: AtomicBool,
    /// Connections the client opened.
    connections: AtomicU64,
    stopping: AtomicBool,
    /// Both sockets of every connection, shut down when the proxy stops.
    sockets: Mutex<Vec<TcpStream>>,
}

impl CuttingProxy {
    /// Forwards to 127.0.0.1:`upstream_port`; with `cut_at`, the connection that carries
    /// fragment byte number `cut_at` is closed right after passing it on (once only).
    pub fn start(upstream_port: u16, cut_at: Option<u64>) -> Result<CuttingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind the proxy")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            upstream_port,
            fragment_bytes: AtomicU64::new(0),
            cut_at,
            cut_done: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            sockets: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("proxy-accept".to_owned())
                .spawn(move || accept_until_stopped(&listener, &shared))
                .context("cannot start the proxy's thread")?
        };
        Ok(CuttingProxy {
            port,
            shared,
            acceptor: Some(acceptor),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Fragment body bytes the server has been given so far.
    pub fn fragment_bytes(&self) -> u64 {
        self.shared.fragment_bytes.load(Ordering::SeqCst)
    }

    /// Connections the client opened so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Whether the planned cut happened.
    pub fn cut_done(&self) -> bool {
        self.shared.cut_done.load(Ordering::SeqCst)
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.shut_all();
        // accept() returns for this connection and sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

impl Shared {
    fn shut_all(&self) {
        let sockets = self.sockets.lock().unwrap_or_else(PoisonError::into_inner);
        for socket in sockets.iter() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// Counts `length` fragment bytes about to be passed on; returns how many of them go
    /// before the connection is cut, or `None` if all of them go and it stays open.
    fn count(&self, length: usize) -> Option<usize> {
        let length = length as u64;
        let before = self.fragment_bytes.load(Ordering::SeqCst);
        if let Some(cut_at) = self.cut_at
            && before < cut_at
            && cut_at <= before + length
            && !self.cut_done.swap(true, Ordering::SeqCst)
        {
            self.fragment_bytes
                .fetch_add(cut_at - before, Ordering::SeqCst);
            return Some(usize::try_from(cut_at - before).unwrap_or(usize::MAX));
        }
        self.fragment_bytes.fetch_add(length, Ordering::SeqCst);
        None
    }
}

fn accept_until_stopped(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut connections = Vec::new();
    for client in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = client else { continue };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("proxy-conn".to_owned())
            .spawn(move || {
                if let Err(error) = relay(client, &shared)
                    && !shared.stopping.load(Ordering::SeqCst)
                {
                    eprintln!("proxy: {error:#}");
                }
            });
        if let Ok(handle) = spawned {
            connections.push(handle);
        }
    }
    shared.shut_all();
    for connection in connections {
        let _ = connection.join();
    }
}

/// Passes one client connection to the server and back, reading the client's requests.
fn relay(mut client: TcpStream, shared: &Shared) -> Result<()> {
    let mut server = TcpStream::connect(("127.0.0.1", shared.upstream_port))
        .context("cannot reach the upload server")?;
    for socket in [&client, &server] {
        socket.set_nodelay(true)?;
    }
    {
        let mut sockets = shared
            .sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        sockets.push(client.try_clone()?);
        sockets.push(server.try_clone()?);
    }
    if shared.stopping.load(Ordering::SeqCst) {
        return Ok(());
    }
    let answers = {
        let mut from = server.try_clone()?;
        let mut to = client.try_clone()?;
        std::thread::Builder::new()
            .name("proxy-answers".to_owned())
            .spawn(move || {
                // Ends when either side closes; the other side then learns it.
                let _ = std::io::copy(&mut from, &mut to);
                let _ = to.shutdown(Shutdown::Write);
            })?
    };
    let result = pass_requests(&mut client, &mut server, shared);
    if result.is_err() {
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
    }
    let _ = answers.join();
    result
}

/// The client-to-server direction: forwards everything, counts fragment bodies, cuts.
fn pass_requests(client: &mut TcpStream, server: &mut TcpStream, shared: &Shared) -> Result<()> {
    let mut scanner = RequestScanner::default();
    let mut buffer = vec![0_u8; BUFFER];
    loop {
        let read = match client.read(&mut buffer) {
            Ok(0) | Err(_) => {
                // The client is done (or gone): the server sees the end of its requests.
                let _ = server.shutdown(Shutdown::Write);
                return Ok(());
            }
            Ok(read) => read,
        };
        let mut data = &buffer[..read];
        while !data.is_empty() {
            let (length, in_fragment) = scanner.next_run(data)?;
            let (run, rest) = data.split_at(length);
            data = rest;
            if in_fragment && let Some(before_cut) = shared.count(run.len()) {
                server
                    .write_all(&run[..before_cut])
                    .context("cannot write to the upload server")?;
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
                return Ok(());
            }
            if server.write_all(run).is_err() {
                // The server closed the connection; the client learns it from the answers.
                let _ = client.shutdown(Shutdown::Read);
                return Ok(());
            }
        }
    }
}

/// Where a client's stream of HTTP/1.1 requests stands: in a request's head, or in its
/// body (`Content-Length` bytes; uploads send no chunked bodies).
#[derive(Debug, Default)]
struct RequestScanner {
    head: Vec<u8>,
    body_left: u64,
    in_fragment: bool,
}

impl RequestScanner {
    /// The length of the first run of `data` that is all head or all of one body, and
    /// whether it is a Fragment's body.
    fn next_run(&mut self, data: &[u8]) -> Result<(usize, bool)> {
        if self.body_left > 0 {
            let length = usize::try_from(self.body_left)
                .unwrap_or(usize::MAX)
                .min(data.len());
            self.body_left -= length as u64;
            return Ok((length, self.in_fragment));
        }
        // The end of the head may straddle two reads: look again from just before them.
        let search_from = self.head.len().saturating_sub(3);
        let kept = self.head.len();
        self.head.extend_from_slice(data);
        let Some(end) = find(&self.head[search_from..], b"\r\n\r\n").map(|at| search_from + at + 4)
        else {
            if self.head.len() > LONGEST_HEAD {
                bail!(
                    "a request head longer than {LONGEST_HEAD} bytes: {:?}…",
                    String::from_utf8_lossy(&self.head[..200])
                );
            }
            return Ok((data.len(), false));
        };
        self.head.truncate(end);
        let (body_length, is_fragment) = parse_head(&self.head)?;
        self.head.clear();
        self.body_left = body_length;
        self.in_fragment = is_fragment;
        Ok((end - kept, false))
    }
}

/// A request head's body length and whether it is a BITS Fragment.
fn parse_head(head: &[u8]) -> Result<(u64, bool)> {
    let text = String::from_utf8_lossy(head);
    let mut body_length = 0;
    let mut is_fragment = false;
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            body_length = value
                .parse()
                .with_context(|| format!("a request with Content-Length {value:?}"))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("a request with Transfer-Encoding {value:?}: its body cannot be counted");
        } else if name.eq_ignore_ascii_case("bits-packet-type") {
            is_fragment = value.eq_ignore_ascii_case("fragment");
        }
    }
    Ok((body_length, is_fragment))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    use super::{CuttingProxy, RequestScanner};

    fn packet(kind: &str, body: &[u8]) -> Vec<u8> {
        let mut bytes = format!(
            "BITS_POST /up/f HTTP/1.1\r\nHost: x\r\nBITS-Packet-Type: {kind}\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    /// Fragment body bytes the scanner finds in `stream` read `chunk` bytes at a time.
    fn fragment_bytes(stream: &[u8], chunk: usize) -> Vec<u8> {
        let mut scanner = RequestScanner::default();
        let mut found = Vec::new();
        for mut data in stream.chunks(chunk) {
            while !data.is_empty() {
                let (length, in_fragment) = scanner.next_run(data).unwrap();
                assert!(length > 0, "every run moves on");
                if in_fragment {
                    found.extend_from_slice(&data[..length]);
                }
                data = &data[length..];
            }
        }
        found
    }

    #[test]
    fn only_fragment_bodies_count_however_the_stream_is_split() {
        let mut stream = packet("Create-Session", b"");
        stream.extend(packet("Fragment", b"first\r\n\r\nbody"));
        stream.extend(packet("ping", b""));
        stream.extend(packet("FRAGMENT", b"second"));
        stream.extend(packet("Close-Session", b""));
        for chunk in [1, 2, 3, 5, 64, stream.len()] {
            assert_eq!(
                fragment_bytes(&stream, chunk),
                b"first\r\n\r\nbodysecond",
                "read {chunk} bytes at a time"
            );
        }
    }

    #[test]
    fn chunked_bodies_are_refused() {
        let mut scanner = RequestScanner::default();
        let head = b"BITS_POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(scanner.next_run(head).is_err());
    }

    #[test]
    fn the_cut_passes_exactly_the_bytes_before_it_then_closes_both_sides() {
        let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream_port = upstream.local_addr().unwrap().port();
        let body = vec![7_u8; 100_000];
        let head_length = packet("Fragment", &body).len() - body.len();
        let proxy = CuttingProxy::start(upstream_port, Some(40_000)).unwrap();
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        let sender = std::thread::spawn(move || {
            // The proxy may close before taking it all.
            let _ = client.write_all(&packet("Fragment", &body));
            let mut rest = Vec::new();
            client.read_to_end(&mut rest).map(|_| rest.len())
        });
        let (mut server_side, _) = upstream.accept().unwrap();
        let mut received = Vec::new();
        server_side.read_to_end(&mut received).unwrap();
        assert_eq!(received.len(), head_length + 40_000);
        assert!(matches!(sender.join().unwrap(), Ok(0) | Err(_)));
        assert_eq!(proxy.fragment_bytes(), 40_000);
        assert!(proxy.cut_done());
        assert_eq!(proxy.connections(), 1);
    }
}
