//! Failures: refused before any I/O, or classified as transient or permanent with the
//! HRESULT BITS reports.

mod common;

use std::fs;
use std::net::TcpListener;
use std::time::Duration;

use common::Harness;
use qmgr_core::{ErrorContext, hresult};
use qmgr_tests::{TestServer, encode_query_value};

/// `HRESULT_FROM_WIN32(ERROR_WINHTTP_REDIRECT_FAILED)`.
const WINHTTP_REDIRECT_FAILED: u32 = 0x8007_2F7C;

#[test]
fn not_found_is_permanent_with_the_http_hresult_and_no_body_on_disk() {
    let server = TestServer::start();
    let harness = Harness::new();
    let url = server.url("/nothing/here");
    let finished = harness.run(harness.request(&url, "missing"));
    let error = finished.failed();
    assert!(!error.transient);
    assert_eq!(error.error.hresult.bits(), 0x8019_0194);
    assert_eq!(error.error.context, ErrorContext::RemoteFile);
    assert_eq!(error.http_status, Some(404));
    assert!(error.error.description.contains(&url), "{error}");
    let temp = finished.temp_path();
    assert_eq!(
        fs::metadata(temp).unwrap().len(),
        0,
        "the error page is not data"
    );
}

#[test]
fn unavailable_with_retry_after_is_transient_and_says_when() {
    let server = TestServer::start();
    let harness = Harness::new();
    let url = server.url("/data/1k?status=503&retry_after=7");
    let error = harness.run(harness.request(&url, "busy")).failed();
    assert!(error.transient);
    assert_eq!(error.error.hresult, hresult::BG_E_HTTP_ERROR_503);
    assert_eq!(error.retry_after, Some(Duration::from_secs(7)));

    let dated = format!(
        "/data/1k?status=429&retry_after={}",
        encode_query_value("Fri, 01 Jan 2100 00:00:00 GMT")
    );
    let error = harness
        .run(harness.request(&server.url(&dated), "later"))
        .failed();
    assert!(error.transient);
    assert!(error.retry_after.unwrap() > Duration::from_secs(86_400));
}

#[test]
fn statuses_split_into_transient_and_permanent() {
    let server = TestServer::start();
    let harness = Harness::new();
    for (status, transient) in [
        (408, true),
        (429, true),
        (500, true),
        (502, true),
        (504, true),
        (400, false),
        (401, false),
        (403, false),
        (410, false),
        (501, false),
    ] {
        let url = server.url(&format!("/data/1k?status={status}"));
        let error = harness.run(harness.request(&url, "status")).failed();
        assert_eq!(error.transient, transient, "{status}");
        assert_eq!(error.http_status, Some(status));
        assert_eq!(
            error.error.hresult,
            qmgr_core::HResult::from_http_status(status)
        );
    }
}

#[test]
fn a_refused_connection_is_transient() {
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let harness = Harness::new();
    let url = format!("http://127.0.0.1:{closed_port}/x");
    let error = harness.run(harness.request(&url, "nobody")).failed();
    assert!(error.transient);
    assert_eq!(error.error.hresult, hresult::HRESULT_WINHTTP_CANNOT_CONNECT);
    assert_eq!(error.error.context, ErrorContext::GeneralTransport);
    assert!(error.error.description.contains(&url));
}

#[test]
fn the_maximum_size_is_enforced_whether_announced_or_not() {
    let server = TestServer::start();
    let harness = Harness::new();
    for query in ["", "?no_length=1", "?chunked=1"] {
        let mut request = harness.request(&server.url(&format!("/data/1m{query}")), "big");
        request.max_size = Some(100_000);
        let finished = harness.run(request);
        let error = finished.failed();
        assert!(!error.transient, "{query}");
        assert_eq!(
            error.error.hresult,
            hresult::BG_E_MAX_DOWNLOAD_SIZE_LIMIT_REACHED
        );
        assert!(error.error.description.contains("100000"), "{error}");
        assert!(finished.bytes_on_disk() <= 100_000);
    }
    let mut fits = harness.request(&server.url("/data/100k"), "fits");
    fits.max_size = Some(100 << 10);
    harness.run(fits).completed();
}

#[test]
fn unsupported_schemes_and_header_injection_are_refused_before_any_request() {
    let server = TestServer::start();
    let harness = Harness::new();
    for url in [
        "gopher://127.0.0.1/".to_owned(),
        "scp://127.0.0.1/x".to_owned(),
        "relative/path".to_owned(),
        format!("dict://127.0.0.1:{}/", server.port()),
    ] {
        let error = harness
            .engine
            .submit(harness.request(&url, "refused"))
            .unwrap_err();
        assert_eq!(error.hresult, hresult::E_INVALIDARG, "{url}");
    }
    let mut injected = harness.request(&server.url("/data/1k"), "refused");
    injected
        .headers
        .push(("X-Note".to_owned(), "a\r\nX-Evil: yes".to_owned()));
    let error = harness.engine.submit(injected).unwrap_err();
    assert_eq!(error.hresult, hresult::E_INVALIDARG);
    assert!(server.requests().is_empty());
    assert!(harness.drain().is_empty(), "no events for refused requests");
    assert_eq!(fs::read_dir(harness.dir.path()).unwrap().count(), 0);
}

#[test]
fn a_redirect_may_not_leave_the_allowed_schemes() {
    let server = TestServer::start();
    let harness = Harness::new();
    let location = encode_query_value(&format!("ftp://127.0.0.1:{}/x", server.port()));
    let url = server.url(&format!("/data/1k?location={location}"));
    let error = harness.run(harness.request(&url, "ftp")).failed();
    assert!(!error.transient);
    assert_eq!(error.error.hresult.bits(), WINHTTP_REDIRECT_FAILED);
    assert!(error.error.description.contains("ftp://"), "{error}");
}

#[test]
fn https_may_redirect_to_http_only_when_allowed() {
    let secure = TestServer::start_https();
    let plain = TestServer::start();
    let harness = Harness::new();
    let ca = harness.path("ca.pem");
    fs::write(&ca, secure.ca_pem()).unwrap();
    let location = encode_query_value(&plain.url("/data/1k"));
    let url = secure.url(&format!("/data/1k?location={location}"));

    let mut downgrade = harness.request(&url, "downgrade");
    downgrade.security.ca_bundle = Some(ca.clone());
    let error = harness.run(downgrade.clone()).failed();
    assert!(!error.transient);
    assert_eq!(error.error.hresult.bits(), WINHTTP_REDIRECT_FAILED);
    assert!(
        error.error.description.contains(&plain.url("/data/1k")),
        "{error}"
    );
    assert_eq!(plain.request_count("/data/1k"), 0);

    downgrade.allow_https_to_http = true;
    harness.run(downgrade).completed();
    assert_eq!(plain.request_count("/data/1k"), 1);
}

#[test]
fn an_unwritable_directory_is_a_local_access_error() {
    let server = TestServer::start();
    let harness = Harness::new();
    let request = harness.request(&server.url("/data/1k"), "no/such/dir/file");
    let error = harness.run(request).failed();
    assert!(!error.transient);
    assert_eq!(error.error.context, ErrorContext::LocalFile);
    assert_eq!(error.error.hresult, hresult::HRESULT_PATH_NOT_FOUND);
    assert!(error.error.description.contains("no/such/dir"), "{error}");
}
