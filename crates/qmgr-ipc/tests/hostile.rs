//! Bad input ends the connection it came on and nothing else.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{FAKE_VERSION, Instance};
use qmgr_core::service::{PROTOCOL_VERSION, Request};
use qmgr_ipc::Client;
use qmgr_ipc::frame::{MAX_FRAME_LEN, encode_frame, read_frame, write_frame};
use qmgr_ipc::message::{ClientMessage, Purpose, ServiceMessage};

const PATIENCE: Duration = Duration::from_secs(30);

fn hello(purpose: Purpose) -> ClientMessage {
    ClientMessage::Hello {
        protocol_version: PROTOCOL_VERSION,
        purpose,
        client_name: "hostile".into(),
    }
}

fn connect(instance: &Instance) -> UnixStream {
    let stream = UnixStream::connect(instance.socket()).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// A raw connection past the handshake.
fn handshaken(instance: &Instance, purpose: Purpose) -> UnixStream {
    let mut stream = connect(instance);
    write_frame(&mut stream, &hello(purpose)).unwrap();
    let welcome: ServiceMessage = read_frame(&mut stream, MAX_FRAME_LEN).unwrap();
    assert!(
        matches!(welcome, ServiceMessage::Welcome { .. }),
        "{welcome:?}"
    );
    stream
}

/// Sends `bytes` and expects the service to close the connection without answering.
fn expect_closed_after(mut stream: UnixStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes);
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "unexpected answer {rest:?}"),
        // A service that closes with our bytes unread resets the connection.
        Err(error) => assert_eq!(
            error.kind(),
            std::io::ErrorKind::ConnectionReset,
            "the service did not close the connection: {error}"
        ),
    }
}

/// Runs `attack` while a well-behaved client stays connected, then checks that client and a
/// new one still work and that the server logged a failure containing `logged`.
fn survives(attack: impl FnOnce(&Instance), logged: &str) {
    let instance = Instance::start();
    let bystander = Client::connect(&instance.paths).unwrap();
    bystander.ping().unwrap();
    attack(&instance);
    assert_eq!(bystander.ping().unwrap(), FAKE_VERSION);
    assert_eq!(
        Client::connect(&instance.paths).unwrap().ping().unwrap(),
        FAKE_VERSION
    );
    let failures = instance.queue.failures();
    assert!(
        failures.iter().any(|failure| failure.contains(logged)),
        "no failure mentions {logged:?}: {failures:?}"
    );
}

#[test]
fn an_oversized_length_prefix_closes_only_that_connection() {
    survives(
        |instance| {
            expect_closed_after(
                handshaken(instance, Purpose::Calls),
                &u32::MAX.to_le_bytes(),
            );
        },
        "exceeds the limit",
    );
}

#[test]
fn a_request_above_the_request_limit_closes_only_that_connection() {
    // Smaller than an answer may be, larger than any request may be.
    let declared = qmgr_ipc::frame::MAX_REQUEST_FRAME_LEN + 1;
    const { assert!(qmgr_ipc::frame::MAX_REQUEST_FRAME_LEN < MAX_FRAME_LEN) };
    survives(
        |instance| {
            expect_closed_after(
                handshaken(instance, Purpose::Calls),
                &declared.to_le_bytes(),
            );
        },
        &format!(
            "exceeds the limit of {}",
            qmgr_ipc::frame::MAX_REQUEST_FRAME_LEN
        ),
    );
}

#[test]
fn an_oversized_first_frame_is_refused_before_the_handshake() {
    survives(
        |instance| {
            let declared = 1_000_000u32.to_le_bytes();
            expect_closed_after(connect(instance), &declared);
        },
        "exceeds the limit of 65536",
    );
}

#[test]
fn a_garbage_payload_closes_only_that_connection() {
    survives(
        |instance| {
            let mut frame = 6u32.to_le_bytes().to_vec();
            frame.extend_from_slice(&[0xFF, 0xFE, 0x00, 0x80, 0x80, 0x80]);
            expect_closed_after(handshaken(instance, Purpose::Calls), &frame);
        },
        "malformed",
    );
}

#[test]
fn a_truncated_frame_closes_only_that_connection() {
    survives(
        |instance| {
            let call = encode_frame(&ClientMessage::Call {
                id: 1,
                request: Request::Ping,
            })
            .unwrap();
            let stream = handshaken(instance, Purpose::Calls);
            let mut stream_for_write = stream.try_clone().unwrap();
            stream_for_write.write_all(&call[..call.len() - 1]).unwrap();
            stream_for_write.shutdown(Shutdown::Write).unwrap();
            expect_closed_after(stream, &[]);
        },
        "ended inside a frame",
    );
}

#[test]
fn a_call_before_the_hello_is_a_protocol_error() {
    survives(
        |instance| {
            let call = encode_frame(&ClientMessage::Call {
                id: 1,
                request: Request::Ping,
            })
            .unwrap();
            expect_closed_after(connect(instance), &call);
        },
        "not a Hello",
    );
}

#[test]
fn a_second_hello_is_a_protocol_error() {
    survives(
        |instance| {
            let again = encode_frame(&hello(Purpose::Calls)).unwrap();
            expect_closed_after(handshaken(instance, Purpose::Calls), &again);
        },
        "a second Hello",
    );
}

#[test]
fn talking_on_a_notifications_connection_is_a_protocol_error() {
    survives(
        |instance| {
            let call = encode_frame(&ClientMessage::Call {
                id: 1,
                request: Request::Ping,
            })
            .unwrap();
            expect_closed_after(handshaken(instance, Purpose::Notifications), &call);
        },
        "notifications connection",
    );
}

#[test]
fn a_hello_and_calls_sent_at_once_are_all_answered() {
    let instance = Instance::start();
    let mut stream = connect(&instance);
    let mut bytes = encode_frame(&hello(Purpose::Calls)).unwrap();
    for id in 1..=3 {
        bytes.extend(
            encode_frame(&ClientMessage::Call {
                id,
                request: Request::Ping,
            })
            .unwrap(),
        );
    }
    stream.write_all(&bytes).unwrap();
    let welcome: ServiceMessage = read_frame(&mut stream, MAX_FRAME_LEN).unwrap();
    assert!(matches!(welcome, ServiceMessage::Welcome { .. }));
    for expected in 1..=3 {
        match read_frame(&mut stream, MAX_FRAME_LEN).unwrap() {
            ServiceMessage::Answer { id, result } => {
                assert_eq!(id, expected);
                assert!(result.is_ok());
            }
            other => panic!("expected an answer, got {other:?}"),
        }
    }
}

#[test]
fn a_request_that_stalls_midway_ends_its_connection_but_an_idle_one_is_kept() {
    let queue = common::FakeQueue::new();
    let stall = Duration::from_millis(200);
    let serve = |queue: std::sync::Arc<common::FakeQueue>| {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || {
            qmgr_ipc::serve_connection_with(&theirs, &*queue, stall).map_err(|e| e.to_string())
        });
        let mut ours = ours;
        ours.set_read_timeout(Some(PATIENCE)).unwrap();
        write_frame(&mut ours, &hello(Purpose::Calls)).unwrap();
        let welcome: ServiceMessage = read_frame(&mut ours, MAX_FRAME_LEN).unwrap();
        assert!(matches!(welcome, ServiceMessage::Welcome { .. }));
        (ours, server)
    };

    // Idle between requests for longer than the stall timeout: still served.
    let (mut idle, server) = serve(queue.clone());
    std::thread::sleep(stall * 3);
    write_frame(
        &mut idle,
        &ClientMessage::Call {
            id: 1,
            request: Request::Ping,
        },
    )
    .unwrap();
    let answer: ServiceMessage = read_frame(&mut idle, MAX_FRAME_LEN).unwrap();
    assert!(
        matches!(
            answer,
            ServiceMessage::Answer {
                id: 1,
                result: Ok(_)
            }
        ),
        "{answer:?}"
    );
    drop(idle);
    server.join().unwrap().unwrap();

    // A request that announces 100 bytes and sends 10 is dropped once it stalls.
    let (mut stalled, server) = serve(queue);
    let started = std::time::Instant::now();
    stalled.write_all(&100u32.to_le_bytes()).unwrap();
    stalled.write_all(&[0; 10]).unwrap();
    let error = server.join().unwrap().unwrap_err();
    assert!(error.contains("stalled inside a request"), "{error}");
    assert!(started.elapsed() < PATIENCE);
    let mut rest = Vec::new();
    assert_eq!(stalled.read_to_end(&mut rest).unwrap_or(0), 0);
}
