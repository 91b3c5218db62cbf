//! A transfer's custom headers go to the origin its URL names and to no other: a redirect
//! to another scheme, host or port drops them, while the redirect limit and the scheme
//! rules hold as before.

mod common;

use common::{Harness, assert_file_is};
use qmgr_tests::{INITIAL_VERSION, RecordedRequest, TestServer, encode_query_value, expected_body};

const SECRET: &str = "X-Api-Key";

/// The request `server` received for `path`.
fn request_for(server: &TestServer, path: &str) -> RecordedRequest {
    server
        .requests()
        .into_iter()
        .find(|request| request.path == path)
        .unwrap_or_else(|| panic!("no request for {path}"))
}

/// Downloads `start` (which redirects somewhere) with the secret headers and checks the
/// body of `final_path` arrived.
fn fetch_with_secrets(harness: &Harness, start: &str, final_path: &str, name: &str) {
    let mut request = harness.request(start, name);
    request.headers = vec![
        (SECRET.to_owned(), "s3cr3t".to_owned()),
        ("Authorization".to_owned(), "Bearer t0ken".to_owned()),
    ];
    let (temp, _, _) = harness.run(request).completed();
    assert_file_is(&temp, &expected_body(final_path, INITIAL_VERSION, 1024));
}

fn redirect_to(server: &TestServer, target: &str) -> String {
    server.url(&format!("/start?location={}", encode_query_value(target)))
}

#[test]
fn custom_headers_follow_a_redirect_within_the_origin() {
    let server = TestServer::start();
    let harness = Harness::new();
    let target = server.url("/data/1k/same");
    fetch_with_secrets(
        &harness,
        &redirect_to(&server, &target),
        "/data/1k/same",
        "same",
    );
    assert_eq!(
        request_for(&server, "/start").header(SECRET),
        Some("s3cr3t")
    );
    let followed = request_for(&server, "/data/1k/same");
    assert_eq!(followed.header(SECRET), Some("s3cr3t"));
    assert_eq!(followed.header("Authorization"), Some("Bearer t0ken"));
}

#[test]
fn custom_headers_do_not_follow_a_redirect_to_another_port() {
    let server = TestServer::start();
    let elsewhere = TestServer::start();
    let harness = Harness::new();
    let target = elsewhere.url("/data/1k/port");
    fetch_with_secrets(
        &harness,
        &redirect_to(&server, &target),
        "/data/1k/port",
        "port",
    );
    assert_eq!(
        request_for(&server, "/start").header(SECRET),
        Some("s3cr3t")
    );
    let followed = request_for(&elsewhere, "/data/1k/port");
    assert_eq!(followed.header(SECRET), None, "{followed:?}");
    assert_eq!(followed.header("Authorization"), None, "{followed:?}");
    assert!(
        followed
            .header("User-Agent")
            .is_some_and(|agent| agent.starts_with("qmgr/"))
    );
}

#[test]
fn custom_headers_do_not_follow_a_redirect_to_another_host_name() {
    let server = TestServer::start();
    let harness = Harness::new();
    // The same server under another name: for the origin rule a different host.
    let target = format!("http://localhost:{}/data/1k/host", server.port());
    fetch_with_secrets(
        &harness,
        &redirect_to(&server, &target),
        "/data/1k/host",
        "host",
    );
    let followed = request_for(&server, "/data/1k/host");
    assert_eq!(followed.header(SECRET), None, "{followed:?}");
}

#[test]
fn custom_headers_return_when_a_redirect_chain_comes_back_to_the_origin() {
    let server = TestServer::start();
    let elsewhere = TestServer::start();
    let harness = Harness::new();
    let home = server.url("/data/1k/home");
    let away = elsewhere.url(&format!("/away?location={}", encode_query_value(&home)));
    fetch_with_secrets(
        &harness,
        &redirect_to(&server, &away),
        "/data/1k/home",
        "home",
    );
    assert_eq!(request_for(&elsewhere, "/away").header(SECRET), None);
    assert_eq!(
        request_for(&server, "/data/1k/home").header(SECRET),
        Some("s3cr3t")
    );
}

#[test]
fn a_resumed_transfer_keeps_its_range_across_a_redirect() {
    let server = TestServer::start();
    let harness = Harness::new();
    let path = "/data/100k/moved";
    let cut =
        harness.run(harness.request(&server.url(&format!("{path}?drop_after=40000")), "moved"));
    let partial = cut.partial();
    let mut resumed = harness.request(&redirect_to(&server, &server.url(path)), "moved");
    resumed.partial = Some(partial.clone());
    let finished = harness.run(resumed);
    let (temp, _, _) = finished.completed();
    assert_file_is(&temp, &expected_body(path, INITIAL_VERSION, 100 << 10));
    assert_eq!(
        finished.responded().unwrap().2,
        partial.bytes,
        "only the rest was fetched"
    );
    let last = server.requests().into_iter().last().unwrap();
    assert_eq!(last.path, path);
    assert_eq!(
        last.header("Range"),
        Some(format!("bytes={}-", partial.bytes).as_str())
    );
}

#[test]
fn a_paused_transfer_stays_paused_across_a_redirect() {
    let server = TestServer::start();
    let harness = Harness::new();
    let path = "/data/1m/paused-redirect";
    // The redirect comes late, so the pause reaches the transfer during its first request.
    let start = server.url(&format!(
        "/start?delay_ms=300&location={}",
        encode_query_value(&server.url(path))
    ));
    let id = harness.submit(harness.request(&start, "paused"));
    harness.engine.pause(id).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    let while_paused = harness.drain();
    assert!(
        !while_paused.iter().any(|event| {
            matches!(event, qmgr_transfer::EngineEvent::Progress { .. }) || event.is_final()
        }),
        "{while_paused:?}"
    );
    harness.engine.resume(id).unwrap();
    let (temp, _, _) = harness.wait(id).completed();
    assert_file_is(&temp, &expected_body(path, INITIAL_VERSION, 1 << 20));
}
