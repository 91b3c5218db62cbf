//! Lanes: transfers handed over ahead of time run at most the lane's width at once, start
//! in the order given as room frees, and can be paused, capped or cancelled while waiting.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use common::{Harness, assert_file_is};
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};
use qmgr_transfer::{
    Engine, EngineConfig, EngineEvent, Lane, ProxyChoice, TransferId, TransferRequest,
};

const KIB: u64 = 1024;

fn is_started(event: &EngineEvent) -> bool {
    matches!(event, EngineEvent::Started { .. })
}

/// Submits one transfer of `path` (16 KiB, each answer held back `delay_ms`) in `lane`.
fn submit_in_lane(
    harness: &Harness,
    server: &TestServer,
    path: &str,
    delay_ms: u64,
    lane: Lane,
) -> TransferId {
    let url = server.url(&format!("{path}?delay_ms={delay_ms}"));
    let mut request = harness.request(&url, path.rsplit('/').next().expect("a name"));
    request.lane = Some(lane);
    harness.submit(request)
}

#[test]
fn a_lane_of_width_one_runs_its_transfers_one_after_another_in_order() {
    let server = TestServer::start();
    let harness = Harness::new();
    let lane = Lane { key: 1, width: 1 };
    let paths = ["/data/16k/one-a", "/data/16k/one-b", "/data/16k/one-c"];
    let ids: Vec<TransferId> = paths
        .iter()
        .map(|path| submit_in_lane(&harness, &server, path, 100, lane))
        .collect();
    let mut temp_paths: HashMap<TransferId, PathBuf> = HashMap::new();
    let events = harness.in_order_until_ended(&ids, |event| {
        let EngineEvent::Started { id, temp_path } = event else {
            return;
        };
        let position = ids.iter().position(|i| i == id).expect("one of ours");
        if let Some(before) = position.checked_sub(1).map(|p| ids[p]) {
            // The one before it ended in the engine (its file closed) before this started.
            let before_path = temp_paths
                .get(&before)
                .unwrap_or_else(|| panic!("{id} started before {before}"));
            let written = std::fs::metadata(before_path).map_or(0, |m| m.len());
            assert_eq!(
                written,
                16 * KIB,
                "{id} started while {before} was under way"
            );
        }
        temp_paths.insert(*id, temp_path.clone());
    });
    for (id, path) in ids.iter().zip(paths) {
        let finished = events
            .iter()
            .find(|event| event.id() == *id && event.is_final());
        let Some(EngineEvent::Completed { temp_path, .. }) = finished else {
            panic!("{id} did not complete: {finished:?}");
        };
        assert_file_is(temp_path, &expected_body(path, INITIAL_VERSION, 16 * KIB));
    }
}

#[test]
fn a_lane_runs_as_many_at_once_as_its_width_and_a_wider_lane_starts_the_waiting_ones() {
    let server = TestServer::start();
    let harness = Harness::new();
    let lane = Lane { key: 2, width: 2 };
    let path = |n: usize| format!("/data/16k/w{n}");
    let slow: Vec<TransferId> = (0..2)
        .map(|n| submit_in_lane(&harness, &server, &path(n), 2_000, lane))
        .collect();
    let waiting: Vec<TransferId> = (2..4)
        .map(|n| submit_in_lane(&harness, &server, &path(n), 0, lane))
        .collect();
    for id in &slow {
        harness.wait_for(*id, is_started);
    }
    // Two barriers: the engine made a whole turn with both waiting transfers in its lane.
    for _ in 0..2 {
        assert!(
            harness.engine.sync(Duration::from_secs(30)),
            "the engine turns"
        );
    }
    for n in 2..4 {
        assert_eq!(
            server.request_count(&path(n)),
            0,
            "a third transfer ran in a lane of two"
        );
    }
    harness.engine.set_lane_width(lane.key, 4).unwrap();
    let mut slow_ended = false;
    harness.in_order_until_ended(&[slow.clone(), waiting.clone()].concat(), |event| {
        if !event.is_final() {
            return;
        }
        if slow.contains(&event.id()) {
            slow_ended = true;
        } else {
            assert!(
                !slow_ended,
                "{} waited for the slow ones although the lane was widened",
                event.id()
            );
            assert!(matches!(event, EngineEvent::Completed { .. }), "{event:?}");
        }
    });
}

#[test]
fn a_waiting_transfer_can_be_cancelled_or_paused_before_it_starts() {
    let server = TestServer::start();
    let harness = Harness::new();
    let lane = Lane { key: 3, width: 1 };
    let first = submit_in_lane(&harness, &server, "/data/16k/first", 300, lane);
    let cancelled = submit_in_lane(&harness, &server, "/data/16k/cancelled", 0, lane);
    let paused = submit_in_lane(&harness, &server, "/data/16k/paused", 0, lane);
    harness.engine.cancel(cancelled).unwrap();
    harness.engine.pause(paused).unwrap();
    let events = harness.in_order_until_ended(&[first, cancelled], |_| {});
    assert!(
        matches!(
            events.iter().find(|event| event.id() == cancelled).unwrap(),
            EngineEvent::Cancelled { .. }
        ),
        "a cancelled waiting transfer ends at once, without starting: {events:?}"
    );
    assert_eq!(server.request_count("/data/16k/cancelled"), 0);
    // The paused one starts once the first ended, and holds.
    let temp_path = harness.started(paused);
    for _ in 0..2 {
        assert!(
            harness.engine.sync(Duration::from_secs(30)),
            "the engine turns"
        );
    }
    let written = std::fs::metadata(&temp_path).map_or(0, |m| m.len());
    assert_eq!(written, 0, "a transfer paused while waiting wrote bytes");
    harness.engine.resume(paused).unwrap();
    let (temp, bytes, _) = harness.wait(paused).completed();
    assert_eq!(bytes, 16 * KIB);
    assert_file_is(
        &temp,
        &expected_body("/data/16k/paused", INITIAL_VERSION, 16 * KIB),
    );
}

#[test]
fn shutdown_ends_the_transfers_waiting_in_lanes_without_making_their_files() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (engine, events) = Engine::start(EngineConfig::default()).unwrap();
    let lane = Lane { key: 4, width: 1 };
    let submit = |name: &str, query: &str| {
        let mut request = TransferRequest::new(
            server.url(&format!("/data/1m/{name}?{query}")),
            dir.path().join(name),
        );
        request.proxy = ProxyChoice::Direct;
        request.lane = Some(lane);
        engine.submit(request).unwrap()
    };
    let running = submit("running", "rate=50000");
    let waiting = submit("waiting", "");
    let started = events.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(
        matches!(started, EngineEvent::Started { id, .. } if id == running),
        "{started:?}"
    );
    engine.shutdown();
    let rest: Vec<EngineEvent> = events.iter().collect();
    for id in [running, waiting] {
        assert_eq!(
            rest.iter()
                .find(|event| event.id() == id && event.is_final()),
            Some(&EngineEvent::Cancelled { id }),
            "{rest:?}"
        );
    }
    assert!(
        !rest
            .iter()
            .any(|event| event.id() == waiting && is_started(event)),
        "{rest:?}"
    );
    assert_eq!(server.request_count("/data/1m/waiting"), 0);
}
