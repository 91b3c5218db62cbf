//! Steering running transfers: cancel, pause and resume, bandwidth limits, shutdown.

mod common;

use std::time::{Duration, Instant};

use common::{Harness, assert_file_is};
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};
use qmgr_transfer::{
    Engine, EngineConfig, EngineEvent, PriorityClass, ProxyChoice, TransferId, TransferRequest,
    discard,
};

const MIB: u64 = 1 << 20;

fn is_progress(event: &EngineEvent) -> bool {
    matches!(event, EngineEvent::Progress { .. })
}

#[test]
fn cancel_stops_the_transfer_and_leaves_the_file_to_the_caller() {
    let server = TestServer::start();
    let harness = Harness::new();
    let path = "/data/1m/cancelled";
    let id = harness.submit(harness.request(&server.url(&format!("{path}?rate=100000")), "c"));
    harness.wait_for(id, is_progress);
    harness.engine.cancel(id).unwrap();
    let finished = harness.wait(id);
    assert!(
        matches!(finished.last(), EngineEvent::Cancelled { .. }),
        "{:?}",
        finished.last()
    );
    let temp = finished.temp_path();
    assert!(temp.exists(), "cancel deletes nothing");
    let kept = std::fs::metadata(&temp).unwrap().len();
    assert_eq!(
        kept,
        finished.bytes_on_disk(),
        "the last Progress tells the length"
    );
    assert!(kept < MIB);
    discard(&temp).unwrap();
    assert!(!temp.exists());
    harness.engine.cancel(id).unwrap();
}

#[test]
fn a_paused_transfer_makes_no_progress_and_resumes_on_the_same_request() {
    let server = TestServer::start();
    let harness = Harness::new();
    let path = "/data/1m/paused";
    let url = server.url(&format!("{path}?delay_ms=300"));
    let id = harness.submit(harness.request(&url, "p"));
    harness.engine.pause(id).unwrap();
    let EngineEvent::Started { temp_path, .. } =
        harness.wait_for(id, |event| matches!(event, EngineEvent::Started { .. }))
    else {
        unreachable!("waited for Started");
    };
    // Bytes are on their way (the socket buffers hold them): a transfer not held would read
    // and write them in the engine's next turn.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.body_bytes_sent(path) < 64 * 1024 {
        assert!(Instant::now() < deadline, "the server sent nothing");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Two barriers: the engine has made at least one whole turn since the bytes were sent.
    for _ in 0..2 {
        assert!(
            harness.engine.sync(Duration::from_secs(30)),
            "the engine turns"
        );
    }
    let written = std::fs::metadata(&temp_path).map_or(0, |m| m.len());
    assert_eq!(written, 0, "a paused transfer wrote bytes");
    let while_paused = harness.drain();
    assert!(
        !while_paused
            .iter()
            .any(|event| is_progress(event) || event.is_final()),
        "{while_paused:?}"
    );
    harness.engine.resume(id).unwrap();
    let (temp, bytes, _) = harness.wait(id).completed();
    assert_eq!(bytes, MIB);
    assert_file_is(&temp, &expected_body(path, INITIAL_VERSION, MIB));
    assert_eq!(server.request_count(path), 1, "the same transfer went on");
}

#[test]
fn a_closed_global_cap_holds_throttled_transfers_only() {
    let server = TestServer::start();
    let harness = Harness::with_config(EngineConfig {
        global_limit: Some(0),
        ..EngineConfig::default()
    });
    let background = harness.submit(harness.request(&server.url("/data/256k/bg"), "bg"));
    let mut request = harness.request(&server.url("/data/256k/fg"), "fg");
    request.throttled = false;
    let foreground = harness.submit(request);
    let (temp, _, _) = harness.wait(foreground).completed();
    assert_file_is(
        &temp,
        &expected_body("/data/256k/fg", INITIAL_VERSION, 256 << 10),
    );

    let held = harness.drain();
    assert!(
        !held
            .iter()
            .any(|event| event.id() == background && (is_progress(event) || event.is_final())),
        "{held:?}"
    );
    harness.engine.set_global_limit(None).unwrap();
    let (temp, _, _) = harness.wait(background).completed();
    assert_file_is(
        &temp,
        &expected_body("/data/256k/bg", INITIAL_VERSION, 256 << 10),
    );
}

#[test]
fn a_closed_priority_cap_holds_that_priority_only_and_can_be_lifted() {
    let server = TestServer::start();
    let harness = Harness::new();
    harness
        .engine
        .set_priority_limit(PriorityClass::Low, Some(0))
        .unwrap();
    let mut low = harness.request(&server.url("/data/256k/low"), "low");
    low.priority_class = Some(PriorityClass::Low);
    let low = harness.submit(low);
    let mut high = harness.request(&server.url("/data/256k/high"), "high");
    high.priority_class = Some(PriorityClass::High);
    let high = harness.submit(high);
    let mut foreground = harness.request(&server.url("/data/256k/fg"), "fg");
    foreground.throttled = false;
    let foreground = harness.submit(foreground);
    harness.wait(high).completed();
    harness.wait(foreground).completed();
    assert!(
        !harness
            .drain()
            .iter()
            .any(|event| event.id() == low && (is_progress(event) || event.is_final())),
        "a closed LOW cap holds the LOW transfer"
    );
    harness
        .engine
        .set_priority_limit(PriorityClass::Low, None)
        .unwrap();
    let (temp, _, _) = harness.wait(low).completed();
    assert_file_is(
        &temp,
        &expected_body("/data/256k/low", INITIAL_VERSION, 256 << 10),
    );
}

#[test]
fn a_transfer_limit_holds_one_transfer_and_can_be_lifted() {
    let server = TestServer::start();
    let harness = Harness::new();
    let mut held = harness.request(&server.url("/data/256k/held?delay_ms=300"), "held");
    held.throttled = false;
    let held = harness.submit(held);
    harness.engine.set_transfer_limit(held, Some(0)).unwrap();
    let free = harness.submit(harness.request(&server.url("/data/256k/free"), "free"));
    harness.wait(free).completed();
    assert!(
        !harness
            .drain()
            .iter()
            .any(|event| event.id() == held && (is_progress(event) || event.is_final()))
    );
    harness.engine.set_transfer_limit(held, None).unwrap();
    let (temp, _, _) = harness.wait(held).completed();
    assert_file_is(
        &temp,
        &expected_body("/data/256k/held", INITIAL_VERSION, 256 << 10),
    );
}

/// How long moving `bytes` under a cap of `bytes_per_second` must take at the least: 80%
/// of the ideal time. A cap lets through a quarter second's burst and one curl chunk of
/// debt beyond its rate, which the transfers below are long enough to absorb; a slow
/// machine only makes a transfer slower, so this bound cannot fail spuriously.
fn slowest_allowed(bytes: u64, bytes_per_second: u64) -> Duration {
    #[expect(
        clippy::cast_precision_loss,
        reason = "test sizes and rates are exact in an f64"
    )]
    Duration::from_secs_f64(bytes as f64 / bytes_per_second as f64 * 0.8)
}

/// Waits for transfer `id`, started at `started`, to complete with the server's `size`
/// bytes of `path`, and checks it took at least what a cap of `cap` B/s allows.
#[track_caller]
fn assert_held_to_cap(
    harness: &Harness,
    id: TransferId,
    started: Instant,
    path: &str,
    size: u64,
    cap: u64,
) {
    let (temp, bytes, _) = harness.wait(id).completed();
    let took = started.elapsed();
    assert_eq!(bytes, size);
    assert_file_is(&temp, &expected_body(path, INITIAL_VERSION, size));
    assert!(
        took >= slowest_allowed(size, cap),
        "{size} bytes under a cap of {cap} B/s took only {took:?}"
    );
}

#[test]
fn a_transfer_limit_slows_the_transfer_to_its_rate() {
    const SIZE: u64 = MIB;
    const CAP: u64 = 256 << 10;
    let server = TestServer::start();
    let harness = Harness::new();
    let path = "/data/1m/own-cap";
    // The server answers after a pause, so the limit is in place before the first byte.
    let mut request = harness.request(&server.url(&format!("{path}?delay_ms=300")), "own");
    request.throttled = false;
    let started = Instant::now();
    let id = harness.submit(request);
    harness.engine.set_transfer_limit(id, Some(CAP)).unwrap();
    assert_held_to_cap(&harness, id, started, path, SIZE, CAP);
}

#[test]
fn the_global_limit_slows_a_throttled_transfer_to_its_rate() {
    const SIZE: u64 = MIB;
    const CAP: u64 = 256 << 10;
    let server = TestServer::start();
    let harness = Harness::with_config(EngineConfig {
        global_limit: Some(CAP),
        ..EngineConfig::default()
    });
    let path = "/data/1m/global-cap";
    let started = Instant::now();
    let id = harness.submit(harness.request(&server.url(path), "global"));
    assert_held_to_cap(&harness, id, started, path, SIZE, CAP);
}

#[test]
fn a_throttled_local_file_is_held_and_limited_not_refused() {
    // A closed global cap from the start: throttled transfers wait for it.
    let harness = Harness::with_config(EngineConfig {
        global_limit: Some(0),
        ..EngineConfig::default()
    });
    let source = harness.path("source.bin");
    let bytes: Vec<u8> = (0..2 * MIB).map(|i| (i % 253) as u8).collect();
    std::fs::write(&source, &bytes).unwrap();
    let url = format!("file://{}", source.display());
    let held = harness.submit(harness.request(&url, "held"));
    // An unthrottled local copy under a limit of its own completes meanwhile.
    let mut limited = harness.request(&url, "limited");
    limited.throttled = false;
    let limited = harness.submit(limited);
    harness
        .engine
        .set_transfer_limit(limited, Some(MIB))
        .unwrap();
    let (temp, length, _) = harness.wait(limited).completed();
    assert_eq!(length, 2 * MIB);
    assert_file_is(&temp, &bytes);
    assert!(
        !harness
            .drain()
            .iter()
            .any(|event| event.id() == held && (is_progress(event) || event.is_final())),
        "a closed cap holds a local copy"
    );
    harness.engine.set_global_limit(Some(4 * MIB)).unwrap();
    let (temp, _, _) = harness.wait(held).completed();
    assert_file_is(&temp, &bytes);
}

#[test]
fn after_cancel_and_sync_the_engine_makes_no_file_under_a_recorded_name() {
    let server = TestServer::start();
    let harness = Harness::new();
    for round in 0..20 {
        let mut request = harness.request(
            &server.url(&format!("/data/1m/named{round}?rate=100000")),
            &format!("named{round}"),
        );
        let temp = qmgr_transfer::new_temp_path(&request.destination).unwrap();
        request.partial = Some(qmgr_transfer::PartialFile {
            temp_path: temp.clone(),
            bytes: 0,
            validator: qmgr_transfer::Validator::default(),
            total: None,
        });
        let id = harness.submit(request);
        harness.engine.cancel(id).unwrap();
        assert!(harness.engine.sync(Duration::from_secs(60)));
        discard(&temp).unwrap();
        let finished = harness.wait(id);
        assert!(!temp.exists(), "round {round}: {:?}", finished.events);
        if let Some(EngineEvent::Started { temp_path, .. }) = finished.events.first() {
            assert_eq!(temp_path, &temp, "the recorded name is the one used");
        }
    }
}

#[test]
fn limited_transfers_complete_intact_while_the_limits_change() {
    let server = TestServer::start();
    let harness = Harness::with_config(EngineConfig {
        global_limit: Some(3 * MIB),
        ..EngineConfig::default()
    });
    let ids: Vec<_> = (0..3)
        .map(|index| {
            let url = server.url(&format!("/data/1m/limited{index}"));
            harness.submit(harness.request(&url, &format!("limited{index}")))
        })
        .collect();
    harness
        .engine
        .set_transfer_limit(ids[0], Some(MIB))
        .unwrap();
    harness.wait_for(ids[1], is_progress);
    harness.engine.set_global_limit(Some(6 * MIB)).unwrap();
    harness.engine.set_transfer_limit(ids[0], None).unwrap();
    for (index, id) in ids.into_iter().enumerate() {
        let (temp, _, _) = harness.wait(id).completed();
        let path = format!("/data/1m/limited{index}");
        assert_file_is(&temp, &expected_body(&path, INITIAL_VERSION, MIB));
    }
}

#[test]
fn progress_reports_are_rate_limited_and_the_end_tells_the_length() {
    let server = TestServer::start();
    let harness = Harness::with_config(EngineConfig {
        progress_interval: Duration::from_secs(3600),
        ..EngineConfig::default()
    });
    let finished = harness.run(harness.request(&server.url("/data/4m"), "quiet"));
    let (_, bytes, _) = finished.completed();
    assert_eq!(
        finished.progress_count(),
        0,
        "the end tells the length itself"
    );
    assert_eq!(bytes, 4 * MIB);
}

#[test]
fn shutdown_ends_running_transfers_and_keeps_their_files() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (engine, events) = Engine::start(EngineConfig::default()).unwrap();
    let mut request = TransferRequest::new(
        server.url("/data/1m/slow?rate=50000"),
        dir.path().join("slow"),
    );
    request.proxy = ProxyChoice::Direct;
    let id = engine.submit(request).unwrap();
    let started = events.recv_timeout(Duration::from_secs(60)).unwrap();
    let EngineEvent::Started { temp_path, .. } = started else {
        panic!("{started:?}");
    };
    engine.shutdown();
    let rest: Vec<EngineEvent> = events.iter().collect();
    assert_eq!(
        rest.last(),
        Some(&EngineEvent::Cancelled { id }),
        "{rest:?}"
    );
    assert!(temp_path.exists());
}
