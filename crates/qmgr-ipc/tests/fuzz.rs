//! 100,000 random, corrupted and truncated frames over many connections against a live
//! server: it stays up, nothing panics, and a well-behaved client works throughout.
//!
//! One test in its own binary, because it counts panics with a process-wide hook.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{FAKE_VERSION, Instance};
use qmgr_core::JobType;
use qmgr_core::service::{PROTOCOL_VERSION, QueueServiceExt, Request};
use qmgr_ipc::Client;
use qmgr_ipc::frame::encode_frame;
use qmgr_ipc::message::{ClientMessage, Purpose};

const FRAMES: usize = 100_000;
const ATTACKERS: usize = 4;
const PATIENCE: Duration = Duration::from_secs(30);

/// xorshift64*: deterministic, so a failure can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(bound).unwrap()).unwrap()
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }

    fn word(&mut self) -> u32 {
        u32::try_from(self.next() >> 32).unwrap()
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }
}

fn sample_call(rng: &mut Rng) -> Vec<u8> {
    let request = match rng.below(4) {
        0 => Request::Ping,
        // Not ListJobs: the steady client's jobs pile up and would make each answer larger.
        1 => Request::Resume {
            job: qmgr_core::Guid::from_be_bytes(rng.bytes(16).try_into().unwrap()),
        },
        2 => Request::CreateJob {
            display_name: String::from_utf8_lossy(&rng.bytes(12)).into_owned(),
            job_type: JobType::Download,
            umask: None,
        },
        _ => Request::GetJob {
            job: qmgr_core::Guid::from_be_bytes(rng.bytes(16).try_into().unwrap()),
        },
    };
    encode_frame(&ClientMessage::Call {
        id: rng.next(),
        request,
    })
    .unwrap()
}

/// One frame of a random kind; a truncated one can only come last.
fn hostile_frame(rng: &mut Rng, last: bool) -> Vec<u8> {
    match rng.below(if last { 6 } else { 5 }) {
        // A sound call: the service answers and reads on.
        0 => sample_call(rng),
        // A random payload of a plausible length.
        1 => {
            let len = rng.below(64);
            let mut frame = u32::try_from(len).unwrap().to_le_bytes().to_vec();
            frame.extend(rng.bytes(len));
            frame
        }
        // A sound call with a few bytes of its payload changed.
        2 => {
            let mut frame = sample_call(rng);
            for _ in 0..=rng.below(3) {
                let at = 4 + rng.below(frame.len() - 4);
                frame[at] ^= rng.byte() | 1;
            }
            frame
        }
        // A length beyond any limit.
        3 => {
            let mut frame = (u32::MAX - rng.word() % 1000).to_le_bytes().to_vec();
            let tail = rng.below(8);
            frame.extend(rng.bytes(tail));
            frame
        }
        // A Hello in the middle of the calls.
        4 => encode_frame(&ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            purpose: Purpose::Calls,
            client_name: String::new(),
        })
        .unwrap(),
        // A frame cut short, the connection closed inside it.
        _ => {
            let whole = sample_call(rng);
            whole[..=rng.below(whole.len() - 1)].to_vec()
        }
    }
}

/// The first frame, and whether the service answers the rest at once: a notifications
/// connection notices its client at the next liveness check instead, so its end is not
/// awaited (the open-connection count at the end covers it).
fn hello_frame(rng: &mut Rng) -> (Vec<u8>, bool) {
    let frame = match rng.below(8) {
        // No handshake at all: the first frame is random.
        0 => hostile_frame(rng, false),
        // Another protocol version.
        1 => encode_frame(&ClientMessage::Hello {
            protocol_version: rng.word(),
            purpose: Purpose::Calls,
            client_name: "other".into(),
        })
        .unwrap(),
        // A notifications connection.
        2 => {
            let hello = ClientMessage::Hello {
                protocol_version: PROTOCOL_VERSION,
                purpose: Purpose::Notifications,
                client_name: "listener".into(),
            };
            return (encode_frame(&hello).unwrap(), false);
        }
        _ => encode_frame(&ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            purpose: Purpose::Calls,
            client_name: "fuzz".into(),
        })
        .unwrap(),
    };
    (frame, true)
}

/// Sends one connection's worth of frames; returns how many frames it sent, or an error
/// if the service did not close the connection in time.
fn attack_once(socket: &std::path::Path, rng: &mut Rng) -> Result<usize, String> {
    let mut stream = UnixStream::connect(socket).map_err(|error| format!("connect: {error}"))?;
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let frames = 1 + rng.below(8);
    let (mut bytes, answered_at_once) = hello_frame(rng);
    for index in 1..frames {
        bytes.extend(hostile_frame(rng, index + 1 == frames));
    }
    // The service may close early; what it did not read is simply lost.
    let _ = stream.write_all(&bytes);
    let _ = stream.shutdown(Shutdown::Write);
    if !answered_at_once {
        return Ok(frames);
    }
    let mut answers = Vec::new();
    match stream.read_to_end(&mut answers) {
        Ok(_) => Ok(frames),
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => Ok(frames),
        Err(error) => Err(format!(
            "the service kept a hostile connection open: {error}"
        )),
    }
}

#[test]
fn a_hundred_thousand_hostile_frames_leave_the_service_working() {
    let panics = Arc::new(AtomicUsize::new(0));
    let default_hook = std::panic::take_hook();
    {
        let panics = Arc::clone(&panics);
        std::panic::set_hook(Box::new(move |info| {
            panics.fetch_add(1, Ordering::SeqCst);
            default_hook(info);
        }));
    }

    let instance = Instance::start();
    let socket = instance.socket();
    let done = Arc::new(AtomicBool::new(false));
    let bystander = {
        let paths = instance.paths.clone();
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let client = Client::connect(&paths).unwrap();
            let mut rounds = 0usize;
            while !done.load(Ordering::SeqCst) {
                let id = client.create_job("steady", JobType::Download).unwrap();
                assert_eq!(client.job(id).unwrap().job.display_name, "steady");
                assert_eq!(client.ping().unwrap(), FAKE_VERSION);
                rounds += 1;
            }
            rounds
        })
    };

    let sent = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|index| {
            let socket = socket.clone();
            let sent = Arc::clone(&sent);
            thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1));
                let mut connections = 0usize;
                while sent.load(Ordering::SeqCst) < FRAMES {
                    let frames = attack_once(&socket, &mut rng)
                        .unwrap_or_else(|error| panic!("attacker {index}: {error}"));
                    sent.fetch_add(frames, Ordering::SeqCst);
                    connections += 1;
                }
                connections
            })
        })
        .collect();
    let connections: usize = attackers.into_iter().map(|a| a.join().unwrap()).sum();
    done.store(true, Ordering::SeqCst);
    let rounds = bystander.join().unwrap();
    println!(
        "{} frames over {connections} connections in {:?}; the steady client made {rounds} rounds",
        sent.load(Ordering::SeqCst),
        started.elapsed()
    );

    assert!(sent.load(Ordering::SeqCst) >= FRAMES);
    assert!(rounds > 0);
    assert_eq!(
        panics.load(Ordering::SeqCst),
        0,
        "a connection thread panicked"
    );
    assert_eq!(
        Client::connect(&instance.paths).unwrap().ping().unwrap(),
        FAKE_VERSION
    );
    let failures = instance.queue.failures().len();
    assert!(
        failures > connections / 2,
        "only {failures} of {connections} hostile connections were rejected"
    );
    // Every hostile connection's thread is gone.
    let control = instance.server.as_ref().unwrap().control();
    let deadline = Instant::now() + PATIENCE;
    while control.open_connections() > 0 {
        assert!(Instant::now() < deadline, "connections linger");
        thread::sleep(Duration::from_millis(10));
    }
}
