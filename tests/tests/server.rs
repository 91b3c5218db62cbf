//! The test server seen from the wire, through a raw TCP client.

mod raw_client;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use qmgr_tests::{INITIAL_VERSION, TestServer, content, encode_query_value, expected_body};
use raw_client::{Connection, get, request};

fn range(server: &TestServer, target: &str, range: &str) -> raw_client::Response {
    request(server, "GET", target, &[("Range", range)])
}

#[test]
fn serves_whole_files_with_validators() {
    let server = TestServer::start();
    let response = get(&server, "/data/100000");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.body,
        expected_body("/data/100000", INITIAL_VERSION, 100_000)
    );
    assert_eq!(response.header("content-length"), Some("100000"));
    assert_eq!(response.header("accept-ranges"), Some("bytes"));
    let etag = response.header("etag").expect("an ETag");
    assert!(
        etag.starts_with('"') && etag.ends_with("-100000-v0\""),
        "{etag}"
    );
    let last_modified = response.header("last-modified").expect("a Last-Modified");
    assert!(last_modified.ends_with(" GMT"), "{last_modified}");
}

#[test]
fn sizes_take_suffixes_and_extra_segments_name_other_files() {
    let server = TestServer::start();
    assert_eq!(get(&server, "/data/64k").body.len(), 65_536);
    assert_eq!(get(&server, "/data/2K").body.len(), 2048);
    let first = get(&server, "/data/1m/a");
    let second = get(&server, "/data/1m/b");
    assert_eq!(first.body.len(), 1_048_576);
    assert_eq!(
        first.body,
        expected_body("/data/1m/a", INITIAL_VERSION, 1_048_576)
    );
    assert_ne!(first.body, second.body);
    assert_ne!(first.header("etag"), second.header("etag"));
    assert!(get(&server, "/data/0").body.is_empty());
}

#[test]
fn multi_megabyte_files_match_the_expected_bytes() {
    let server = TestServer::start();
    let response = get(&server, "/data/5m/big");
    assert!(!response.ended_early);
    assert_eq!(
        response.body,
        expected_body("/data/5m/big", INITIAL_VERSION, 5 * 1_048_576)
    );
}

#[test]
fn content_slices_equal_expected_body_ranges() {
    let whole = expected_body("/data/300000", 3, 300_000);
    for (offset, len) in [
        (0_usize, 1_usize),
        (65_520, 2),
        (131_000, 100_000),
        (299_999, 1),
    ] {
        assert_eq!(
            content("/data/300000", 3, offset as u64, len),
            whole[offset..offset + len]
        );
    }
}

#[test]
fn byte_ranges_answer_206_with_content_range() {
    let server = TestServer::start();
    let whole = expected_body("/data/1000", INITIAL_VERSION, 1000);
    for (spec, first, last) in [
        ("bytes=100-199", 100, 199),
        ("bytes=900-", 900, 999),
        ("bytes=-50", 950, 999),
        ("bytes=990-5000", 990, 999),
    ] {
        let response = range(&server, "/data/1000", spec);
        assert_eq!(response.status, 206, "{spec}");
        assert_eq!(
            response.header("content-range"),
            Some(format!("bytes {first}-{last}/1000").as_str()),
            "{spec}"
        );
        assert_eq!(response.body, whole[first..=last], "{spec}");
        assert_eq!(
            response.header("content-length"),
            Some((last - first + 1).to_string().as_str())
        );
    }
}

#[test]
fn ranges_past_the_end_are_416_with_the_size() {
    let server = TestServer::start();
    let response = range(&server, "/data/1000", "bytes=1000-");
    assert_eq!(response.status, 416);
    assert_eq!(response.header("content-range"), Some("bytes */1000"));
}

#[test]
fn multiple_ranges_and_ignore_range_get_the_whole_file() {
    let server = TestServer::start();
    let whole = expected_body("/data/1000", INITIAL_VERSION, 1000);
    let multiple = range(&server, "/data/1000", "bytes=0-9,20-29");
    assert_eq!((multiple.status, &multiple.body), (200, &whole));
    let ignored = request(
        &server,
        "GET",
        "/data/1000?ignore_range=1",
        &[("Range", "bytes=10-"), ("If-Range", "\"whatever\"")],
    );
    assert_eq!((ignored.status, &ignored.body), (200, &whole));
    assert_eq!(ignored.header("content-range"), None);
}

#[test]
fn if_range_resumes_only_the_same_version() {
    let server = TestServer::start();
    let first = get(&server, "/data/1000");
    let etag = first.header("etag").expect("an ETag").to_owned();
    let date = first
        .header("last-modified")
        .expect("a Last-Modified")
        .to_owned();
    for validator in [&etag, &date] {
        let resumed = request(
            &server,
            "GET",
            "/data/1000",
            &[("Range", "bytes=500-"), ("If-Range", validator)],
        );
        assert_eq!(resumed.status, 206, "If-Range {validator}");
        assert_eq!(resumed.body, first.body[500..]);
    }
    let weak = format!("W/{etag}");
    for stale in [
        "\"0000000000000000-1000-v7\"",
        "Mon, 01 Jan 1990 00:00:00 GMT",
        &weak,
    ] {
        let restarted = request(
            &server,
            "GET",
            "/data/1000",
            &[("Range", "bytes=500-"), ("If-Range", stale)],
        );
        assert_eq!(restarted.status, 200, "If-Range {stale}");
        assert_eq!(restarted.body, first.body);
    }
}

#[test]
fn head_sends_the_head_only() {
    let server = TestServer::start();
    let mut connection = Connection::open(&server);
    connection.send("HEAD", "/data/5000", &[]);
    let head = connection.receive("HEAD");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("5000"));
    assert!(head.header("etag").is_some());
    // Had the server sent a body, it would be read here in place of the next status line.
    connection.send("GET", "/data/10", &[]);
    let next = connection.receive("GET");
    assert_eq!((next.status, next.body.len()), (200, 10));
    assert_eq!(server.body_bytes_sent("/data/5000"), 0);
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let server = TestServer::start();
    let mut connection = Connection::open(&server);
    for path in ["/data/300", "/data/400", "/nothing/here"] {
        connection.send("GET", path, &[]);
        let response = connection.receive("GET");
        assert!(
            response.header("connection").is_none(),
            "{path}: {:?}",
            response.headers
        );
    }
    connection.send("GET", "/data/10", &[("Connection", "close")]);
    let last = connection.receive("GET");
    assert_eq!(last.header("connection"), Some("close"));
    assert!(connection.closed_by_server());
    assert_eq!(server.requests().len(), 4);
}

#[test]
fn drop_after_cuts_the_body_and_closes_the_connection() {
    let server = TestServer::start();
    let mut connection = Connection::open(&server);
    connection.send(
        "GET",
        "/data/100000?drop_after=1234",
        &[("Range", "bytes=1000-")],
    );
    let response = connection.receive("GET");
    assert_eq!(response.status, 206);
    assert!(response.ended_early);
    assert_eq!(
        response.body,
        content("/data/100000", INITIAL_VERSION, 1000, 1234)
    );
    assert!(connection.closed_by_server());
    assert_eq!(server.body_bytes_sent("/data/100000"), 1234);
}

#[test]
fn drop_once_cuts_only_the_first_response() {
    let server = TestServer::start();
    let target = "/data/50000?drop_after=20000&drop_once=1";
    let cut = get(&server, target);
    assert!(cut.ended_early);
    assert_eq!(cut.body.len(), 20_000);
    let resumed = range(&server, target, "bytes=20000-");
    assert!(!resumed.ended_early);
    let mut whole = cut.body;
    whole.extend(resumed.body);
    assert_eq!(whole, expected_body("/data/50000", INITIAL_VERSION, 50_000));
    let again = get(&server, target);
    assert!(!again.ended_early);
}

#[test]
fn drop_after_without_drop_once_cuts_every_response() {
    let server = TestServer::start();
    for _ in 0..2 {
        assert!(get(&server, "/data/5000?drop_after=10").ended_early);
    }
}

#[test]
fn require_header_refuses_requests_without_that_header_and_value() {
    let server = TestServer::start();
    let target = "/data/100/guarded?require_header=X-Api-Key%3As3cr3t";
    assert_eq!(get(&server, target).status, 403);
    let wrong = request(&server, "GET", target, &[("X-Api-Key", "other")]);
    assert_eq!(wrong.status, 403);
    let right = request(&server, "GET", target, &[("X-Api-Key", "s3cr3t")]);
    assert_eq!(right.status, 200);
    assert_eq!(right.body.len(), 100);
    assert_eq!(
        get(&server, "/data/100/x?require_header=no-colon").status,
        400
    );
}

#[test]
fn fail_first_fails_only_the_first_requests() {
    let server = TestServer::start();
    let target = "/data/100?fail_first=2&status=500&retry_after=3";
    for _ in 0..2 {
        let failed = get(&server, target);
        assert_eq!(failed.status, 500);
        assert_eq!(failed.header("retry-after"), Some("3"));
    }
    let succeeded = get(&server, target);
    assert_eq!(succeeded.status, 200);
    assert_eq!(
        succeeded.body,
        expected_body("/data/100", INITIAL_VERSION, 100)
    );

    assert_eq!(get(&server, "/data/100/other?fail_first=1").status, 503);
    assert_eq!(get(&server, "/data/100/other?fail_first=1").status, 200);
}

#[test]
fn status_answers_on_every_request_and_any_path() {
    let server = TestServer::start();
    for _ in 0..3 {
        let response = get(&server, "/data/100?status=404");
        assert_eq!(response.status, 404);
        assert!(!response.body.is_empty());
    }
    assert_eq!(get(&server, "/anything?status=429").status, 429);
    assert_eq!(server.body_bytes_sent("/data/100"), 0);
}

#[test]
fn chunked_bodies_decode_to_the_file() {
    let server = TestServer::start();
    let mut connection = Connection::open(&server);
    connection.send("GET", "/data/200000?chunked=1", &[]);
    let response = connection.receive("GET");
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert_eq!(response.header("content-length"), None);
    assert!(!response.ended_early);
    assert_eq!(
        response.body,
        expected_body("/data/200000", INITIAL_VERSION, 200_000)
    );
    // Chunked framing keeps the connection usable.
    connection.send("GET", "/data/10", &[]);
    assert_eq!(connection.receive("GET").status, 200);
}

#[test]
fn no_length_bodies_end_with_the_connection() {
    let server = TestServer::start();
    let mut connection = Connection::open(&server);
    connection.send("GET", "/data/70000?no_length=1", &[("Range", "bytes=100-")]);
    let response = connection.receive("GET");
    assert_eq!(response.header("content-length"), None);
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(
        response.body,
        content("/data/70000", INITIAL_VERSION, 100, 69_900)
    );
}

#[test]
fn redirect_hops_count_down_to_the_file() {
    let server = TestServer::start();
    let mut target = "/data/100?a=1&redirect=2&b=2".to_owned();
    for expected_hops in [1, 0] {
        let response = get(&server, &target);
        assert_eq!(response.status, 302);
        let location = response.header("location").expect("a Location");
        assert_eq!(
            location,
            server.url(&format!("/data/100?a=1&redirect={expected_hops}&b=2"))
        );
        target = location
            .strip_prefix(&server.base_url())
            .expect("a URL of this server")
            .to_owned();
    }
    assert_eq!(get(&server, &target).status, 200);
    assert_eq!(server.request_count("/data/100"), 3);
}

#[test]
fn location_redirects_anywhere() {
    let server = TestServer::start();
    let elsewhere = "https://127.0.0.1:1/x?y=1&z=2";
    let response = get(
        &server,
        &format!("/data/10?location={}", encode_query_value(elsewhere)),
    );
    assert_eq!(response.status, 302);
    assert_eq!(response.header("location"), Some(elsewhere));
}

#[test]
fn set_version_changes_bytes_and_validators() {
    let server = TestServer::start();
    let before = get(&server, "/data/4000");
    server.set_version("/data/4000", 5);
    let after = get(&server, "/data/4000");
    assert_ne!(before.body, after.body);
    assert_eq!(after.body, expected_body("/data/4000", 5, 4000));
    assert_ne!(before.header("etag"), after.header("etag"));
    assert!(after.header("etag").expect("an ETag").ends_with("-v5\""));
    assert_ne!(
        before.header("last-modified"),
        after.header("last-modified")
    );
    // A resume that names the old version gets the new file whole.
    let stale = before.header("etag").expect("an ETag");
    let restarted = request(
        &server,
        "GET",
        "/data/4000",
        &[("Range", "bytes=10-"), ("If-Range", stale)],
    );
    assert_eq!((restarted.status, &restarted.body), (200, &after.body));
    assert_eq!(server.version("/data/4000"), 5);
    assert_eq!(server.version("/data/4000/other"), INITIAL_VERSION);
}

#[test]
fn lie206_answers_206_to_a_stale_if_range_and_lies_as_asked() {
    let server = TestServer::start();
    let path = "/data/1000/lie";
    let old = get(&server, path);
    let stale = old.header("etag").expect("an ETag").to_owned();
    server.set_version(path, 1);
    let new = expected_body(path, 1, 1000);
    let lying = |lie: &str| {
        request(
            &server,
            "GET",
            &format!("{path}?lie206={lie}"),
            &[("Range", "bytes=600-"), ("If-Range", &stale)],
        )
    };

    let etag = lying("etag");
    assert_eq!(etag.status, 206);
    assert_eq!(etag.header("content-range"), Some("bytes 600-999/1000"));
    assert_eq!(etag.body, new[600..]);
    assert!(etag.header("etag").expect("an ETag").ends_with("-v1\""));

    let date = lying("date");
    assert_eq!((date.status, &date.body[..]), (206, &new[600..]));
    assert_eq!(date.header("etag"), None);
    assert_ne!(date.header("last-modified"), old.header("last-modified"));
    let whole = get(&server, &format!("{path}?lie206=date"));
    assert_eq!((whole.status, whole.header("etag")), (200, None));

    let start = lying("start");
    assert_eq!(start.header("content-range"), Some("bytes 300-999/1000"));
    assert_eq!(start.body, new[300..]);

    let total = lying("total");
    assert_eq!(total.header("content-range"), Some("bytes 600-999/2000"));
    assert_eq!(total.body, new[600..]);

    let weak = lying("weak");
    assert_eq!((weak.status, &weak.body[..]), (206, &new[600..]));
    assert_eq!(weak.header("etag"), Some(format!("W/{stale}").as_str()));
    assert_eq!(weak.header("last-modified"), None);
    // Without a Range every liar sends the whole file with its real validators.
    let whole = get(&server, &format!("{path}?lie206=weak"));
    assert_eq!(whole.status, 200);
    assert!(whole.header("etag").expect("an ETag").ends_with("-v1\""));
}

#[test]
fn change_after_bumps_the_version_once() {
    let server = TestServer::start();
    let target = "/data/3000?change_after=2";
    let etags: Vec<String> = (0..4)
        .map(|_| {
            get(&server, target)
                .header("etag")
                .expect("an ETag")
                .to_owned()
        })
        .collect();
    assert_eq!(etags[0], etags[1]);
    assert_ne!(etags[1], etags[2]);
    assert_eq!(etags[2], etags[3]);
    assert!(etags[2].ends_with("-v1\""), "{}", etags[2]);
    assert_eq!(
        get(&server, target).body,
        expected_body("/data/3000", 1, 3000)
    );
}

#[test]
fn resize_changes_the_size_of_later_versions_only() {
    let server = TestServer::start();
    let target = "/data/3000?change_after=1&resize=-1000";
    let first = get(&server, target);
    assert_eq!(
        first.body,
        expected_body("/data/3000", INITIAL_VERSION, 3000)
    );
    let later = get(&server, target);
    assert_eq!(later.header("content-length"), Some("2000"));
    assert!(later.header("etag").expect("an ETag").contains("-2000-v1"));
    assert_eq!(later.body, expected_body("/data/3000", 1, 2000));
}

#[test]
fn length_lie_declares_another_length_and_sends_the_real_body() {
    let server = TestServer::start();
    let long = get(&server, "/data/3000?length_lie=500");
    assert_eq!(long.header("content-length"), Some("3500"));
    assert!(
        long.ended_early,
        "the body stops 500 bytes short of what was declared"
    );
    assert_eq!(
        long.body,
        expected_body("/data/3000", INITIAL_VERSION, 3000)
    );
    let short = get(&server, "/data/3000?length_lie=-1000");
    assert_eq!(short.header("content-length"), Some("2000"));
    assert_eq!(short.header("connection"), Some("close"));
    assert_eq!(
        short.body,
        expected_body("/data/3000", INITIAL_VERSION, 2000)
    );
    assert_eq!(server.body_bytes_sent("/data/3000"), 6000);
}

#[test]
fn stats_count_requests_and_body_bytes_per_path() {
    let server = TestServer::start();
    get(&server, "/data/1000");
    get(&server, "/data/1000?rate=1000000");
    range(&server, "/data/1000?x=1", "bytes=0-99");
    request(&server, "HEAD", "/data/1000", &[]);
    get(&server, "/data/500");
    assert_eq!(server.request_count("/data/1000"), 4);
    assert_eq!(server.body_bytes_sent("/data/1000"), 2100);
    assert_eq!(server.body_bytes_sent("/data/500"), 500);
    assert_eq!(server.request_count("/data/999"), 0);

    server.reset_stats();
    assert_eq!(server.request_count("/data/1000"), 0);
    assert_eq!(server.body_bytes_sent("/data/1000"), 0);
    assert!(server.requests().is_empty());
}

#[test]
fn requests_are_recorded_in_order_with_their_headers() {
    let server = TestServer::start();
    request(
        &server,
        "GET",
        "/data/10?status=500&k=v",
        &[("X-Test", "one")],
    );
    request(&server, "HEAD", "/nowhere", &[("x-test", "two")]);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        (
            requests[0].method.as_str(),
            requests[0].path.as_str(),
            requests[0].query.as_str()
        ),
        ("GET", "/data/10", "status=500&k=v")
    );
    assert_eq!(requests[0].header("x-TEST"), Some("one"));
    assert_eq!(requests[1].method, "HEAD");
    assert_eq!(requests[1].header("X-Test"), Some("two"));
    assert_eq!(requests[1].header("Range"), None);
}

#[test]
fn unknown_paths_and_methods_are_refused() {
    let server = TestServer::start();
    assert_eq!(get(&server, "/").status, 404);
    assert_eq!(get(&server, "/data/12kb").status, 404);
    assert_eq!(request(&server, "DELETE", "/data/10", &[]).status, 405);
    assert_eq!(get(&server, "/data/10?rate=fast").status, 400);
}

#[test]
fn request_bodies_are_skipped_on_kept_connections() {
    let server = TestServer::start();
    let mut connection = Connection::open(&server);
    connection.send_raw(b"POST /data/10 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(connection.receive("POST").status, 405);
    connection.send("GET", "/data/10", &[]);
    assert_eq!(connection.receive("GET").status, 200);
}

#[test]
fn malformed_requests_get_400_and_a_closed_connection() {
    let server = TestServer::start();
    let mut connection = Connection::open(&server);
    connection.send_raw(b"this is not http\r\n\r\n");
    let response = connection.receive("GET");
    assert_eq!(response.status, 400);
    assert!(connection.closed_by_server());
    assert_eq!(get(&server, "/data/10").status, 200);
}

#[test]
fn clients_leaving_mid_body_do_not_hurt_the_server() {
    let server = TestServer::start();
    for _ in 0..3 {
        let mut connection = Connection::open(&server);
        connection.send("GET", "/data/64m", &[]);
        connection.read_some(100_000);
    }
    let response = get(&server, "/data/64k");
    assert_eq!(
        response.body,
        expected_body("/data/64k", INITIAL_VERSION, 65_536)
    );
    assert!(server.body_bytes_sent("/data/64m") < 64 * 1_048_576 * 3);
}

#[test]
fn paced_and_delayed_responses_carry_the_same_bytes() {
    let server = TestServer::start();
    let paced = get(&server, "/data/3000?rate=20000");
    assert_eq!(
        paced.body,
        expected_body("/data/3000", INITIAL_VERSION, 3000)
    );
    let delayed = get(&server, "/data/3000?delay_ms=20&chunked=1");
    assert_eq!(delayed.body, paced.body);
}

#[test]
fn dropping_the_server_closes_its_connections() {
    let server = TestServer::start();
    let mut idle = Connection::open(&server);
    idle.send("GET", "/data/10", &[]);
    idle.receive("GET");
    let mut slow = Connection::open(&server);
    slow.send("GET", "/data/1m?rate=10", &[]);
    let slow_head_line = slow.read_some(8);
    assert_eq!(slow_head_line, b"HTTP/1.1");
    drop(server);
    assert!(idle.closed_by_server());
}

#[test]
fn the_binary_prints_its_url_and_stops_when_stdin_closes() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_qmgr-testserver"))
        .arg("--exit-on-stdin-eof")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting qmgr-testserver");
    let mut url = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut url)
        .expect("reading the URL");
    let port: u16 = url
        .trim_end()
        .strip_prefix("http://127.0.0.1:")
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {url:?}"));

    let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connecting");
    socket
        .write_all(b"GET /data/10 HTTP/1.1\r\nConnection: close\r\n\r\n")
        .expect("sending");
    let mut reply = Vec::new();
    std::io::Read::read_to_end(&mut socket, &mut reply).expect("reading");
    assert!(reply.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(reply.ends_with(&expected_body("/data/10", INITIAL_VERSION, 10)));

    drop(child.stdin.take());
    let status = child.wait().expect("waiting for qmgr-testserver");
    assert!(status.success(), "{status}");
}

#[test]
fn the_binary_rejects_unknown_arguments() {
    let output = Command::new(env!("CARGO_BIN_EXE_qmgr-testserver"))
        .arg("--bogus")
        .output()
        .expect("running qmgr-testserver");
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
}
