//! Files of byte ranges (AddFileWithRanges): the local file is the ranges in the order
//! given; a server that ignores Range, or a range past the end, is an error, never a
//! wrong file; a ranged file resumes within its ranges.

mod common;

use common::{Harness, assert_file_is};
use qmgr_core::hresult;
use qmgr_core::ranges::{FileRange, LENGTH_TO_EOF};
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

const fn range(offset: u64, length: u64) -> FileRange {
    FileRange { offset, length }
}

/// The bytes of `ranges` of the test server's file at `path` (of `size` bytes), in order.
fn expected(path: &str, size: u64, ranges: &[FileRange]) -> Vec<u8> {
    let body = expected_body(path, INITIAL_VERSION, size);
    let mut out = Vec::new();
    for range in ranges {
        let start = usize::try_from(range.offset).unwrap();
        let end = if range.length == LENGTH_TO_EOF {
            body.len()
        } else {
            start + usize::try_from(range.length).unwrap()
        };
        out.extend_from_slice(&body[start..end]);
    }
    out
}

#[test]
fn ranges_are_concatenated_in_the_order_given() {
    let server = TestServer::start();
    let harness = Harness::new();
    let path = "/data/1000/ordered";
    let ranges = [range(100, 100), range(900, 100), range(400, 100)];
    let mut request = harness.request(&server.url(path), "ordered");
    request.ranges = ranges.to_vec();
    let finished = harness.run(request);
    let (temp, bytes, _) = finished.completed();
    assert_eq!(bytes, 300);
    assert_file_is(&temp, &expected(path, 1000, &ranges));
    let (total, _, _, _) = finished.responded().unwrap();
    assert_eq!(
        total,
        Some(300),
        "the local file's length is the ranges' sum"
    );
    let asked: Vec<String> = server
        .requests()
        .iter()
        .filter_map(|r| r.header("Range").map(str::to_owned))
        .collect();
    assert_eq!(asked, ["bytes=100-199", "bytes=900-999", "bytes=400-499"]);
}

#[test]
fn a_range_to_the_end_takes_the_rest_of_the_file() {
    let server = TestServer::start();
    let harness = Harness::new();
    let path = "/data/1000/to-eof";
    let ranges = [range(950, LENGTH_TO_EOF), range(10, 5)];
    let mut request = harness.request(&server.url(path), "to-eof");
    request.ranges = ranges.to_vec();
    let (temp, bytes, _) = harness.run(request).completed();
    assert_eq!(bytes, 55);
    assert_file_is(&temp, &expected(path, 1000, &ranges));
}

#[test]
fn a_server_that_ignores_range_or_a_range_past_the_end_is_an_error() {
    let server = TestServer::start();
    let harness = Harness::new();
    let cases = [
        (
            "/data/1000/ignored?ignore_range=1",
            vec![range(0, 10)],
            hresult::BG_E_INSUFFICIENT_RANGE_SUPPORT,
        ),
        (
            "/data/1000/partly-beyond",
            vec![range(10, 5), range(900, 200)],
            hresult::BG_E_INVALID_RANGE,
        ),
        (
            "/data/1000/wholly-beyond",
            vec![range(2000, 10)],
            hresult::BG_E_INVALID_RANGE,
        ),
    ];
    for (url, ranges, code) in cases {
        let mut request = harness.request(&server.url(url), "refused");
        request.ranges = ranges;
        let error = harness.run(request).failed();
        assert_eq!(error.error.hresult, code, "{url}: {error:?}");
        assert!(!error.transient, "{url}: retrying asks the same again");
    }
}

#[test]
fn a_ranged_file_resumes_within_its_ranges_after_a_drop() {
    let server = TestServer::start();
    let harness = Harness::new();
    let path = "/data/100000/resumed";
    let ranges = [range(0, 10_000), range(50_000, 20_000)];
    let url = server.url(&format!("{path}?drop_after=5000&drop_once=1"));
    let mut first = harness.request(&url, "resumed");
    first.ranges = ranges.to_vec();
    let cut = harness.run(first);
    assert!(cut.failed().transient);
    let partial = cut.partial();
    assert_eq!(partial.bytes, 5000);

    let mut again = harness.request(&url, "resumed");
    again.ranges = ranges.to_vec();
    again.partial = Some(partial);
    let (temp, bytes, _) = harness.run(again).completed();
    assert_eq!(bytes, 30_000);
    assert_file_is(&temp, &expected(path, 100_000, &ranges));
    assert_eq!(
        server.body_bytes_sent(path),
        30_000,
        "no byte of the ranges was fetched twice"
    );
}

#[test]
fn ranges_are_checked_before_anything_is_fetched() {
    let server = TestServer::start();
    let harness = Harness::new();
    for (ranges, code) in [
        (
            vec![range(0, 10), range(5, 10)],
            hresult::BG_E_OVERLAPPING_RANGES,
        ),
        (vec![range(LENGTH_TO_EOF, 1)], hresult::BG_E_INVALID_RANGE),
    ] {
        let mut request = harness.request(&server.url("/data/100/checked"), "checked");
        request.ranges = ranges;
        assert_eq!(harness.engine.submit(request).unwrap_err().hresult, code);
    }
    let source = harness.path("local-source");
    std::fs::write(&source, b"0123456789").unwrap();
    let mut request = harness.request(&format!("file://{}", source.display()), "local");
    request.ranges = vec![range(0, 2)];
    assert_eq!(
        harness.engine.submit(request).unwrap_err().hresult,
        hresult::E_INVALIDARG,
        "ranges are for http and https"
    );
    assert!(server.requests().is_empty());
}

#[test]
fn ranges_fetched_on_demand_land_at_their_offsets_and_the_remote_size_is_reported() {
    use qmgr_core::on_demand::Span;
    use qmgr_transfer::EngineEvent;

    let server = TestServer::start();
    let harness = Harness::new();
    let path = "/data/5000/on-demand";
    let ranges = [range(3000, 500), range(100, 50)];
    let mut request = harness.request(&server.url(path), "on-demand");
    request.ranges = ranges.to_vec();
    let finished = harness.run(request);
    let (fetched, bytes, _) = finished.completed();
    assert_eq!(bytes, 550);
    let remote_size = finished.events.iter().find_map(|event| match event {
        EngineEvent::Responded { remote_size, .. } => Some(*remote_size),
        _ => None,
    });
    assert_eq!(
        remote_size,
        Some(Some(5000)),
        "the complete length of the Content-Range"
    );

    let target = qmgr_transfer::new_temp_path(&harness.path("on-demand")).unwrap();
    let spans = [
        Span {
            start: 3000,
            end: 3500,
        },
        Span {
            start: 100,
            end: 150,
        },
    ];
    qmgr_transfer::place_spans(&fetched, &spans, &target, 5000).unwrap();
    let placed = std::fs::read(&target).unwrap();
    let whole = expected_body(path, INITIAL_VERSION, 5000);
    assert_eq!(placed.len(), 5000);
    assert_eq!(placed[3000..3500], whole[3000..3500]);
    assert_eq!(placed[100..150], whole[100..150]);
    assert!(
        placed[150..3000].iter().all(|byte| *byte == 0),
        "nothing else is written"
    );
}

#[test]
fn a_whole_file_reports_its_size_as_the_remote_size() {
    use qmgr_transfer::EngineEvent;

    let server = TestServer::start();
    let harness = Harness::new();
    let finished = harness.run(harness.request(&server.url("/data/777/whole"), "whole"));
    finished.completed();
    let remote_size = finished.events.iter().find_map(|event| match event {
        EngineEvent::Responded { remote_size, .. } => Some(*remote_size),
        _ => None,
    });
    assert_eq!(remote_size, Some(Some(777)));
}
