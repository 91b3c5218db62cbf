//! Continuing partial files: only the missing bytes are fetched, and never from another
//! version of the file.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;

use common::{Harness, assert_file_is};
use qmgr_core::hresult;
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};
use qmgr_transfer::{PartialFile, RestartReason, Validator};

const MIB: u64 = 1 << 20;

/// Downloads `path` with the connection cut after `cut` bytes; returns what a service
/// would record of the attempt.
fn interrupted(harness: &Harness, server: &TestServer, path: &str, query: &str) -> PartialFile {
    let url = server.url(&format!("{path}?{query}"));
    let first = harness.run(harness.request(&url, "file.bin"));
    let error = first.failed();
    assert!(
        error.transient,
        "a cut connection is worth retrying: {error}"
    );
    assert_eq!(
        error.error.hresult,
        hresult::HRESULT_WINHTTP_CONNECTION_ERROR
    );
    first.partial()
}

#[test]
fn drops_at_30_60_and_90_percent_resume_with_only_the_missing_bytes() {
    let server = TestServer::start();
    let harness = Harness::new();
    for percent in [30, 60, 90] {
        let path = format!("/data/1m/cut{percent}");
        let cut = MIB * percent / 100;
        let query = format!("drop_after={cut}&drop_once=1");
        let partial = interrupted(&harness, &server, &path, &query);
        assert_eq!(
            partial.bytes, cut,
            "every byte received before the cut is on disk"
        );
        assert_eq!(fs::metadata(&partial.temp_path).unwrap().len(), cut);

        let mut retry = harness.request(&server.url(&format!("{path}?{query}")), "file.bin");
        retry.partial = Some(partial.clone());
        let finished = harness.run(retry);
        let (temp, bytes, _) = finished.completed();
        assert_eq!(
            temp, partial.temp_path,
            "the same temporary file is continued"
        );
        assert_eq!(bytes, MIB);
        assert_file_is(&temp, &expected_body(&path, INITIAL_VERSION, MIB));
        assert_eq!(
            server.body_bytes_sent(&path),
            MIB,
            "{percent}%: nothing fetched twice"
        );
        let (total, _, resumed_at, restart) = finished.responded().unwrap();
        assert_eq!((total, resumed_at, restart), (Some(MIB), cut, None));

        let resumed = server
            .requests()
            .into_iter()
            .rev()
            .find(|r| r.path == path)
            .unwrap();
        assert_eq!(
            resumed.header("Range"),
            Some(format!("bytes={cut}-").as_str())
        );
        assert_eq!(
            resumed.header("If-Range"),
            partial.validator.strong_etag(),
            "the strong ETag guards the resume"
        );
    }
}

#[test]
fn a_content_change_between_attempts_restarts_instead_of_splicing() {
    let server = TestServer::start();
    let harness = Harness::new();
    let path = "/data/1m/changing";
    let partial = interrupted(&harness, &server, path, "drop_after=400000&drop_once=1");
    server.set_version(path, INITIAL_VERSION + 1);

    let mut retry = harness.request(&server.url(path), "file.bin");
    retry.partial = Some(partial);
    let finished = harness.run(retry);
    let (temp, bytes, validator) = finished.completed();
    assert_eq!(bytes, MIB);
    assert_file_is(&temp, &expected_body(path, INITIAL_VERSION + 1, MIB));
    let (_, _, resumed_at, restart) = finished.responded().unwrap();
    assert_eq!(resumed_at, 0);
    assert_eq!(restart, Some(RestartReason::ValidatorChanged));
    assert!(
        validator.strong_etag().unwrap().contains("-v1"),
        "{validator:?}"
    );
}

#[test]
fn a_server_that_ignores_ranges_still_yields_a_correct_file() {
    let server = TestServer::start();
    let harness = Harness::new();
    let path = "/data/1m/norange";
    let query = "ignore_range=1&drop_after=500000&drop_once=1";
    let partial = interrupted(&harness, &server, path, query);

    let mut retry = harness.request(&server.url(&format!("{path}?{query}")), "file.bin");
    retry.partial = Some(partial);
    let finished = harness.run(retry);
    let (temp, _, _) = finished.completed();
    assert_file_is(&temp, &expected_body(path, INITIAL_VERSION, MIB));
    let (_, _, resumed_at, restart) = finished.responded().unwrap();
    assert_eq!(
        (resumed_at, restart),
        (0, Some(RestartReason::RangeIgnored))
    );
}

#[test]
fn a_416_for_exactly_the_bytes_held_means_the_file_is_complete() {
    let server = TestServer::start();
    let harness = Harness::new();
    let path = "/data/200k/done";
    let first = harness.run(harness.request(&server.url(path), "file.bin"));
    let (temp, bytes, validator) = first.completed();
    let sent_before = server.body_bytes_sent(path);

    let mut again = harness.request(&server.url(path), "file.bin");
    again.partial = Some(PartialFile {
        temp_path: temp.clone(),
        bytes,
        validator,
        total: Some(bytes),
    });
    let (same, total, _) = harness.run(again).completed();
    assert_eq!((same, total), (temp.clone(), bytes));
    assert_eq!(
        server.body_bytes_sent(path),
        sent_before,
        "nothing sent again"
    );
    assert_file_is(&temp, &expected_body(path, INITIAL_VERSION, 200 << 10));
}

#[test]
fn bytes_beyond_the_checkpoint_are_cut_before_resuming() {
    let server = TestServer::start();
    let harness = Harness::new();
    let path = "/data/1m/overhang";
    let mut partial = interrupted(&harness, &server, path, "drop_after=300000&drop_once=1");
    // Bytes written after the last checkpoint are not trusted (after a reboot they may be
    // garbage): the file is cut back to the recorded length.
    let mut file = OpenOptions::new()
        .append(true)
        .open(&partial.temp_path)
        .unwrap();
    file.write_all(&[0xEE; 5000]).unwrap();
    partial.bytes = 250_000;

    let mut retry = harness.request(&server.url(path), "file.bin");
    retry.partial = Some(partial);
    let finished = harness.run(retry);
    let (temp, _, _) = finished.completed();
    assert_file_is(&temp, &expected_body(path, INITIAL_VERSION, MIB));
    assert_eq!(finished.responded().unwrap().2, 250_000);
}

#[test]
fn a_lost_partial_file_or_one_without_validator_starts_over() {
    let server = TestServer::start();
    let harness = Harness::new();
    let path = "/data/100k/lost";

    let mut lost = harness.request(&server.url(path), "lost.bin");
    lost.partial = Some(PartialFile {
        temp_path: harness.path(".BITdeadbeef00000000.tmp"),
        bytes: 5000,
        validator: Validator::default(),
        total: None,
    });
    let finished = harness.run(lost);
    let (temp, _, _) = finished.completed();
    // The file is made again under the name the caller recorded.
    assert_eq!(temp, harness.path(".BITdeadbeef00000000.tmp"));
    assert_eq!(finished.temp_path(), temp, "Started names the file");
    assert_file_is(&temp, &expected_body(path, INITIAL_VERSION, 100 << 10));
    assert_eq!(
        finished.responded().unwrap().3,
        Some(RestartReason::PartialFileLost)
    );

    let unvalidated = harness.path(".BITunvalidated.tmp");
    fs::write(&unvalidated, vec![1_u8; 3000]).unwrap();
    let mut blind = harness.request(&server.url(path), "blind.bin");
    blind.partial = Some(PartialFile {
        temp_path: unvalidated.clone(),
        bytes: 3000,
        validator: Validator::default(),
        total: None,
    });
    let finished = harness.run(blind);
    let (temp, _, _) = finished.completed();
    assert_eq!(temp, unvalidated);
    assert_file_is(&temp, &expected_body(path, INITIAL_VERSION, 100 << 10));
    assert_eq!(
        finished.responded().unwrap().3,
        Some(RestartReason::NoValidator)
    );
    let last = server.requests().into_iter().last().unwrap();
    assert_eq!(
        last.header("Range"),
        None,
        "unvalidated bytes are not continued"
    );
}

#[test]
fn a_local_copy_resumes_by_offset_and_restarts_when_the_source_changed() {
    let harness = Harness::new();
    let source = harness.path("source.bin");
    let content: Vec<u8> = (0..300_000_u32).map(|n| (n % 253) as u8).collect();
    fs::write(&source, &content).unwrap();
    let url = source.to_str().unwrap().to_owned();
    let (_, _, validator) = harness.run(harness.request(&url, "first")).completed();

    let partial_path = harness.path(".BITlocal.tmp");
    fs::write(&partial_path, &content[..120_000]).unwrap();
    let partial = PartialFile {
        temp_path: partial_path.clone(),
        bytes: 120_000,
        validator: validator.clone(),
        total: Some(content.len() as u64),
    };
    let mut resumed = harness.request(&url, "second");
    resumed.partial = Some(partial.clone());
    let finished = harness.run(resumed);
    assert_file_is(&finished.completed().0, &content);
    assert_eq!(finished.responded().unwrap().2, 120_000);
    assert_eq!(finished.responded().unwrap().3, None);

    let changed: Vec<u8> = content.iter().map(|byte| byte ^ 0x55).collect();
    fs::write(&source, &changed).unwrap();
    fs::write(&partial_path, &content[..120_000]).unwrap();
    let mut stale = harness.request(&url, "third");
    stale.partial = Some(partial);
    let finished = harness.run(stale);
    assert_file_is(&finished.completed().0, &changed);
    assert_eq!(
        finished.responded().unwrap().3,
        Some(RestartReason::ValidatorChanged)
    );
}
