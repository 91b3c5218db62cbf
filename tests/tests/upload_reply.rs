//! Upload-reply uploads to the test server, seen from the wire: BITS_POST packets and the
//! reply's GETs through a raw TCP client, the Reply-URL in both forms, and every reply
//! fault the upload URL's query can ask for.

#[allow(
    dead_code,
    reason = "the client is shared with server.rs, which uses all of it"
)]
mod raw_client;

use std::time::{Duration, Instant};

use qmgr_tests::{TestServer, expected_reply};
use raw_client::{Connection, Response, get, request};

const UPLOAD_PATH: &str = "/up/dir/file.bin";
const PROTOCOL: &str = "{7df0354d-249b-430f-820d-3d2a9bef4931}";

/// Bytes to upload: every value, not in order, so that a misplaced byte shows.
fn upload_bytes(length: usize) -> Vec<u8> {
    (0..length)
        .map(|i| u8::try_from((i * 7 + i / 256) % 256).expect("below 256"))
        .collect()
}

/// One BITS_POST packet on a fresh connection, and its Ack.
fn packet(
    server: &TestServer,
    target: &str,
    kind: &str,
    session: Option<&str>,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let length = body.len().to_string();
    let mut headers = vec![("BITS-Packet-Type", kind), ("Content-Length", &length)];
    if let Some(session) = session {
        headers.push(("BITS-Session-Id", session));
    }
    headers.extend_from_slice(extra);
    let mut connection = Connection::open(server);
    connection.send("BITS_POST", target, &headers);
    connection.send_raw(body);
    let ack = connection.receive("BITS_POST");
    assert_eq!(
        ack.header("BITS-Packet-Type"),
        Some("Ack"),
        "{kind}: {ack:?}"
    );
    ack
}

/// Opens a session for `target`; its id.
fn create_session(server: &TestServer, target: &str) -> String {
    let ack = packet(
        server,
        target,
        "Create-Session",
        None,
        &[("BITS-Supported-Protocols", PROTOCOL)],
        &[],
    );
    assert_eq!(ack.status, 200, "{ack:?}");
    ack.header("BITS-Session-Id")
        .expect("a session id in the Create-Session Ack")
        .to_owned()
}

/// The bytes `first..first + length` of `data`, as one Fragment.
fn fragment(
    server: &TestServer,
    target: &str,
    session: &str,
    data: &[u8],
    first: usize,
    length: usize,
) -> Response {
    let content_range = format!("bytes {first}-{}/{}", first + length - 1, data.len());
    packet(
        server,
        target,
        "Fragment",
        Some(session),
        &[("Content-Range", &content_range)],
        &data[first..first + length],
    )
}

/// Uploads `data` in two Fragments; both Acks.
fn upload_in_two(server: &TestServer, target: &str, session: &str, data: &[u8]) -> [Response; 2] {
    let half = data.len() / 2;
    let first = fragment(server, target, session, data, 0, half);
    assert_eq!(first.status, 200, "{first:?}");
    let last = fragment(server, target, session, data, half, data.len() - half);
    assert_eq!(last.status, 200, "{last:?}");
    assert_eq!(
        last.header("BITS-Received-Content-Range"),
        Some(data.len().to_string().as_str())
    );
    [first, last]
}

fn session_key(session: &str) -> &str {
    session.trim_start_matches('{').trim_end_matches('}')
}

fn reply_path(session: &str) -> String {
    format!("/bits-replies/{}/reply.bin", session_key(session))
}

fn close(server: &TestServer, target: &str, session: &str, kind: &str) {
    let ack = packet(server, target, kind, Some(session), &[], &[]);
    assert_eq!(ack.status, 200, "{kind}: {ack:?}");
}

fn log(entries: &[&str]) -> Vec<String> {
    entries.iter().map(|&entry| entry.to_owned()).collect()
}

#[test]
fn the_last_fragment_names_an_absolute_reply_served_like_a_file_until_close() {
    let server = TestServer::start();
    let target = format!("{UPLOAD_PATH}?reply=1000");
    let data = upload_bytes(3001);
    let session = create_session(&server, &target);
    let [first, last] = upload_in_two(&server, &target, &session, &data);
    assert_eq!(first.header("BITS-Reply-URL"), None);
    let url = server.url(&reply_path(&session));
    assert_eq!(last.header("BITS-Reply-URL"), Some(url.as_str()));
    let reply = expected_reply(&data, 1000);

    let whole = get(&server, &reply_path(&session));
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, reply);
    assert_eq!(whole.header("Content-Length"), Some("1000"));
    assert_eq!(whole.header("Accept-Ranges"), Some("bytes"));
    assert!(whole.header("Last-Modified").is_some(), "{whole:?}");
    let etag = whole.header("ETag").expect("an ETag").to_owned();

    let part = request(
        &server,
        "GET",
        &reply_path(&session),
        &[("Range", "bytes=100-199"), ("If-Range", &etag)],
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.header("Content-Range"), Some("bytes 100-199/1000"));
    assert_eq!(part.body, reply[100..200]);
    let stale = request(
        &server,
        "GET",
        &reply_path(&session),
        &[("Range", "bytes=100-199"), ("If-Range", "\"another\"")],
    );
    assert_eq!((stale.status, stale.body.len()), (200, 1000));
    let head = request(&server, "HEAD", &reply_path(&session), &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Length"), Some("1000"));
    assert_eq!(head.header("ETag"), Some(etag.as_str()));
    assert!(head.body.is_empty());
    assert_eq!(server.uploaded(UPLOAD_PATH), None, "published before Close");
    let unpublished = get(&server, &format!("/published{UPLOAD_PATH}"));
    assert_eq!(unpublished.status, 404);

    close(&server, &target, &session, "Close-Session");
    assert_eq!(server.uploaded(UPLOAD_PATH), Some(data.clone()));
    // Another process reads what was published over http.
    let published = get(&server, &format!("/published{UPLOAD_PATH}"));
    assert_eq!((published.status, published.body), (200, data));
    assert_eq!(get(&server, &reply_path(&session)).status, 404);
    assert_eq!(
        server.reply_gets(),
        [
            None,
            Some("bytes=100-199".to_owned()),
            Some("bytes=100-199".to_owned())
        ]
    );
    assert_eq!(
        server.upload_log(),
        log(&[
            "Create-Session",
            "Fragment",
            "Fragment",
            "GET reply",
            "GET reply",
            "GET reply",
            "HEAD reply",
            "Close-Session",
        ])
    );
}

#[test]
fn a_relative_reply_url_has_back_slashes_and_resolves_against_the_upload_directory() {
    let server = TestServer::start();
    let target = format!("{UPLOAD_PATH}?reply=64&reply_relative=1");
    let data = upload_bytes(100);
    let session = create_session(&server, &target);
    let [_, last] = upload_in_two(&server, &target, &session, &data);
    let relative = format!("bits-replies\\{}\\reply.bin", session_key(&session));
    assert_eq!(last.header("BITS-Reply-URL"), Some(relative.as_str()));

    let resolved = format!("/up/dir/bits-replies/{}/reply.bin", session_key(&session));
    let from_upload_directory = get(&server, &resolved);
    assert_eq!(from_upload_directory.status, 200);
    assert_eq!(from_upload_directory.body, expected_reply(&data, 64));
    let from_root = get(&server, &reply_path(&session));
    assert_eq!(from_root.body, from_upload_directory.body);
    assert_eq!(
        from_root.header("ETag"),
        from_upload_directory.header("ETag"),
        "one reply, one validator, whatever the path"
    );
    assert_eq!(
        get(&server, "/up/dir/bits-replies/NO-SUCH/reply.bin").status,
        404
    );
}

#[test]
fn an_empty_reply_is_an_empty_file() {
    let server = TestServer::start();
    let target = format!("{UPLOAD_PATH}?reply=0");
    let data = upload_bytes(10);
    let session = create_session(&server, &target);
    let [_, last] = upload_in_two(&server, &target, &session, &data);
    assert!(last.header("BITS-Reply-URL").is_some(), "{last:?}");
    let reply = get(&server, &reply_path(&session));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("Content-Length"), Some("0"));
    assert!(reply.body.is_empty());
    let ranged = request(
        &server,
        "GET",
        &reply_path(&session),
        &[("Range", "bytes=0-")],
    );
    assert_eq!(ranged.status, 416);
}

#[test]
fn a_repeated_last_fragment_gets_the_same_url_and_no_new_reply() {
    let server = TestServer::start();
    // reply_drop cuts the reply's first GET only; were the reply made again, its next
    // GET would be cut again.
    let target = format!("{UPLOAD_PATH}?reply=500&reply_drop=1");
    let data = upload_bytes(1000);
    let session = create_session(&server, &target);
    let [_, last] = upload_in_two(&server, &target, &session, &data);
    let url = last
        .header("BITS-Reply-URL")
        .expect("a Reply-URL")
        .to_owned();
    assert!(get(&server, &reply_path(&session)).ended_early);

    let again = fragment(&server, &target, &session, &data, 500, 500);
    assert_eq!(again.status, 200);
    assert_eq!(again.header("BITS-Received-Content-Range"), Some("1000"));
    assert_eq!(again.header("BITS-Reply-URL"), Some(url.as_str()));
    let whole = get(&server, &reply_path(&session));
    assert!(!whole.ended_early, "the repeated Fragment made a new reply");
    assert_eq!(whole.body, expected_reply(&data, 500));
}

#[test]
fn reply_missing_leaves_the_reply_url_out_of_the_last_ack() {
    let server = TestServer::start();
    let target = format!("{UPLOAD_PATH}?reply=10&reply_missing=1");
    let data = upload_bytes(20);
    let session = create_session(&server, &target);
    let [_, last] = upload_in_two(&server, &target, &session, &data);
    assert_eq!(last.header("BITS-Reply-URL"), None, "{last:?}");
    close(&server, &target, &session, "Close-Session");
    assert_eq!(server.uploaded(UPLOAD_PATH), Some(data));
}

#[test]
fn reply_status_answers_every_reply_request_with_that_status_and_no_body() {
    for status in [404, 503] {
        let server = TestServer::start();
        let target = format!("{UPLOAD_PATH}?reply=100&reply_status={status}");
        let data = upload_bytes(50);
        let session = create_session(&server, &target);
        let [_, last] = upload_in_two(&server, &target, &session, &data);
        assert!(last.header("BITS-Reply-URL").is_some(), "{last:?}");
        for range in [None, Some("bytes=10-")] {
            let headers: Vec<(&str, &str)> =
                range.map(|range| ("Range", range)).into_iter().collect();
            let answer = request(&server, "GET", &reply_path(&session), &headers);
            assert_eq!(answer.status, status);
            assert_eq!(answer.header("Content-Length"), Some("0"));
            assert!(answer.body.is_empty());
        }
        assert_eq!(
            server.reply_gets(),
            [None, Some("bytes=10-".to_owned())],
            "status {status}"
        );
    }
}

#[test]
fn reply_drop_cuts_the_first_get_after_half_and_serves_the_resumption() {
    let server = TestServer::start();
    let target = format!("{UPLOAD_PATH}?reply=1001&reply_drop=1");
    let data = upload_bytes(300);
    let session = create_session(&server, &target);
    upload_in_two(&server, &target, &session, &data);
    let reply = expected_reply(&data, 1001);

    let mut connection = Connection::open(&server);
    connection.send("GET", &reply_path(&session), &[]);
    let cut = connection.receive("GET");
    assert_eq!(cut.status, 200);
    assert_eq!(cut.header("Content-Length"), Some("1001"));
    assert!(cut.ended_early);
    assert_eq!(cut.body, reply[..500]);
    assert!(connection.closed_by_server());

    let etag = cut.header("ETag").expect("an ETag");
    let rest = request(
        &server,
        "GET",
        &reply_path(&session),
        &[("Range", "bytes=500-"), ("If-Range", etag)],
    );
    assert_eq!(rest.status, 206);
    assert_eq!(rest.header("Content-Range"), Some("bytes 500-1000/1001"));
    assert_eq!([cut.body, rest.body].concat(), reply);
    assert_eq!(server.reply_gets(), [None, Some("bytes=500-".to_owned())]);
}

#[test]
fn reply_delay_holds_back_the_ack_that_completes_the_upload() {
    const DELAY: Duration = Duration::from_millis(400);
    let server = TestServer::start();
    let target = format!("{UPLOAD_PATH}?reply=8&reply_delay_ms={}", DELAY.as_millis());
    let data = upload_bytes(40);
    let session = create_session(&server, &target);
    let first = fragment(&server, &target, &session, &data, 0, 20);
    assert_eq!(first.status, 200);
    let started = Instant::now();
    let last = fragment(&server, &target, &session, &data, 20, 20);
    let waited = started.elapsed();
    assert_eq!(last.status, 200);
    assert!(waited >= DELAY, "the Ack came after {waited:?}");
    assert!(last.header("BITS-Reply-URL").is_some(), "{last:?}");
}

#[test]
fn cancel_session_drops_upload_and_reply() {
    let server = TestServer::start();
    let target = format!("{UPLOAD_PATH}?reply=10");
    let data = upload_bytes(20);
    let session = create_session(&server, &target);
    upload_in_two(&server, &target, &session, &data);
    assert_eq!(get(&server, &reply_path(&session)).status, 200);
    close(&server, &target, &session, "Cancel-Session");
    assert_eq!(get(&server, &reply_path(&session)).status, 404);
    assert_eq!(server.uploaded(UPLOAD_PATH), None);
    assert_eq!(
        server.upload_log(),
        log(&[
            "Create-Session",
            "Fragment",
            "Fragment",
            "GET reply",
            "Cancel-Session",
        ])
    );
}

#[test]
fn uploads_without_reply_have_no_reply_url_and_no_reply() {
    let server = TestServer::start();
    let data = upload_bytes(30);
    let session = create_session(&server, UPLOAD_PATH);
    let [_, last] = upload_in_two(&server, UPLOAD_PATH, &session, &data);
    assert_eq!(last.header("BITS-Reply-URL"), None);
    assert_eq!(get(&server, &reply_path(&session)).status, 404);
    assert!(server.reply_gets().is_empty());
    let refused = request(&server, "PUT", &reply_path(&session), &[]);
    assert_eq!(refused.status, 405);
}
