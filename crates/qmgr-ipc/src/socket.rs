//! Small socket operations std does not offer: writes that never raise `SIGPIPE`, the
//! peer's credentials, and a check whether the peer has gone.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rustix::net::{RecvFlags, SendFlags};

/// Writes to a stream with `MSG_NOSIGNAL`: a peer that went away is an `EPIPE` error,
/// never a `SIGPIPE` that would kill a C program that has not ignored it.
#[derive(Debug)]
pub struct NoSignalWriter<'a>(pub &'a UnixStream);

impl Write for NoSignalWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(rustix::net::send(self.0, buf, SendFlags::NOSIGNAL)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Who is at the other end of a Unix stream, as the kernel recorded it at `connect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCredentials {
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
}

pub fn peer_credentials(stream: &UnixStream) -> io::Result<PeerCredentials> {
    let credentials = rustix::net::sockopt::socket_peercred(stream)?;
    Ok(PeerCredentials {
        uid: credentials.uid.as_raw(),
        gid: credentials.gid.as_raw(),
        pid: credentials.pid.as_raw_pid(),
    })
}

/// How long a side that expects a message soon polls for it before it sleeps.
pub const EAGER_WAIT: Duration = Duration::from_micros(75);

/// Polls `stream` without blocking, for up to [`EAGER_WAIT`], until something can be read
/// (or the peer closed). A call's answer, and the next call of a busy client, usually arrive
/// within microseconds; waking a thread that went to sleep costs tens of microseconds on a
/// virtual machine, more than the call itself. The blocking read that follows sees whatever
/// this found. Returns whether something can be read now (or the peer closed).
pub fn wait_eagerly(stream: &UnixStream) -> bool {
    let start = Instant::now();
    let mut byte = [0u8; 1];
    while start.elapsed() < EAGER_WAIT {
        match rustix::net::recv(stream, &mut byte, RecvFlags::PEEK | RecvFlags::DONTWAIT) {
            // Yielding, not spinning: on a single CPU the peer must get to run.
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => std::thread::yield_now(),
            _ => return true,
        }
    }
    false
}

/// Blocks, without a time limit, until something can be read from `stream` or the peer
/// closed it (a read timeout set on the socket then bounds only what follows).
pub fn wait_readable(stream: &UnixStream) {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut fds = [PollFd::new(stream, PollFlags::IN | PollFlags::RDHUP)];
    while let Err(rustix::io::Errno::INTR) = poll(&mut fds, None) {}
}

/// What a look at a stream that should be silent found.
#[derive(Debug, PartialEq, Eq)]
pub enum Silence {
    /// Nothing to read: the peer is still there.
    Kept,
    /// The peer closed its end (or the connection failed).
    PeerLeft,
    /// The peer sent data where it should send none.
    Broken,
}

/// Checks without blocking whether the peer of a one-way stream has closed it.
pub fn check_silence(stream: &UnixStream) -> Silence {
    let mut byte = [0u8; 1];
    match rustix::net::recv(stream, &mut byte, RecvFlags::PEEK | RecvFlags::DONTWAIT) {
        Ok((_, 0)) => Silence::PeerLeft,
        Ok(_) => Silence::Broken,
        Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => Silence::Kept,
        Err(_) => Silence::PeerLeft,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::Shutdown;

    #[test]
    fn writes_to_a_closed_peer_are_errors() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        drop(theirs);
        let error = NoSignalWriter(&ours).write_all(b"hello").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn written_bytes_arrive() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        NoSignalWriter(&ours).write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        theirs.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
    }

    #[test]
    fn credentials_of_a_pair_are_our_own() {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let credentials = peer_credentials(&ours).unwrap();
        assert_eq!(credentials.uid, rustix::process::geteuid().as_raw());
        assert_eq!(credentials.pid, i32::try_from(std::process::id()).unwrap());
    }

    #[test]
    fn silence_tells_kept_left_and_broken_apart() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        assert_eq!(check_silence(&ours), Silence::Kept);
        theirs.write_all(b"x").unwrap();
        assert_eq!(check_silence(&ours), Silence::Broken);
        let (ours, theirs) = UnixStream::pair().unwrap();
        theirs.shutdown(Shutdown::Write).unwrap();
        assert_eq!(check_silence(&ours), Silence::PeerLeft);
        let mut buf = [0u8; 1];
        assert_eq!((&ours).read(&mut buf).unwrap(), 0);
    }
}
