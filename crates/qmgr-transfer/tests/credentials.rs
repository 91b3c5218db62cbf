//! A transfer's credentials answer the server's challenge (Basic, Digest, NTLM), go to the
//! origin its URL names and to no other, and their absence or a wrong password is a 401.

mod common;

use common::{Harness, assert_file_is};
use qmgr_core::credentials::{AuthScheme, AuthTarget, Credential, Credentials, Secret};
use qmgr_core::hresult;
use qmgr_tests::auth::{DEFAULT_PASSWORD, DEFAULT_USER};
use qmgr_tests::{INITIAL_VERSION, TestServer, encode_query_value, expected_body};
use qmgr_transfer::ProxyChoice;

fn server_credentials(schemes: &[AuthScheme], password: &str) -> Credentials {
    Credentials::new(
        schemes
            .iter()
            .map(|scheme| Credential {
                target: AuthTarget::Server,
                scheme: *scheme,
                user_name: DEFAULT_USER.to_owned(),
                password: Secret::new(password),
            })
            .collect(),
    )
}

/// Downloads `path?query` with `credentials`; the outcome is the harness's.
fn fetch(
    server: &TestServer,
    path: &str,
    query: &str,
    credentials: Credentials,
) -> (Harness, common::Finished) {
    let harness = Harness::new();
    let mut request = harness.request(&server.url(&format!("{path}?{query}")), "out");
    request.credentials = credentials;
    let finished = harness.run(request);
    (harness, finished)
}

#[test]
fn basic_and_digest_challenges_are_answered() {
    for (query, schemes) in [
        ("auth=basic", vec![AuthScheme::Basic]),
        ("auth=digest", vec![AuthScheme::Digest]),
        ("auth=ntlm", vec![AuthScheme::Ntlm]),
        // The server offers both; the job has both: the stronger one is used.
        ("auth=any", vec![AuthScheme::Basic, AuthScheme::Digest]),
    ] {
        let server = TestServer::start();
        let path = "/data/4k/protected";
        let (_harness, finished) = fetch(
            &server,
            path,
            query,
            server_credentials(&schemes, DEFAULT_PASSWORD),
        );
        let (temp, _, _) = finished.completed();
        assert_file_is(&temp, &expected_body(path, INITIAL_VERSION, 4096));
        let authorization: Vec<String> = server
            .requests()
            .iter()
            .filter_map(|r| r.header("Authorization").map(str::to_owned))
            .collect();
        let wanted = if schemes.contains(&AuthScheme::Ntlm) {
            "NTLM "
        } else if schemes.contains(&AuthScheme::Digest) {
            "Digest "
        } else {
            "Basic "
        };
        assert!(
            authorization.iter().any(|a| a.starts_with(wanted)),
            "{query}: {authorization:?}"
        );
    }
}

#[test]
fn non_ascii_user_names_and_passwords_pass_ntlm_and_basic() {
    const USER: &str = "jürgen";
    const PASSWORD: &str = "pässwört ½";
    let server = TestServer::start();
    let path = "/data/2k/umlauts";
    for (auth, scheme) in [("ntlm", AuthScheme::Ntlm), ("basic", AuthScheme::Basic)] {
        let query = format!(
            "auth={auth}&user={}&password={}",
            encode_query_value(USER),
            encode_query_value(PASSWORD)
        );
        let credentials = Credentials::new(vec![Credential {
            target: AuthTarget::Server,
            scheme,
            user_name: USER.to_owned(),
            password: Secret::new(PASSWORD),
        }]);
        let (_harness, finished) = fetch(&server, path, &query, credentials);
        let (temp, _, _) = finished.completed();
        assert_file_is(&temp, &expected_body(path, INITIAL_VERSION, 2048));
    }
}

#[test]
fn no_credentials_or_a_wrong_password_is_http_401() {
    let server = TestServer::start();
    let (_harness, finished) = fetch(
        &server,
        "/data/1k/closed",
        "auth=basic",
        Credentials::default(),
    );
    assert_eq!(
        finished.failed().error.hresult,
        hresult::HResult::from_bits(0x8019_0191),
        "BG_E_HTTP_ERROR_401"
    );
    for (query, scheme) in [
        ("auth=digest", AuthScheme::Digest),
        ("auth=ntlm", AuthScheme::Ntlm),
    ] {
        let (_harness, finished) = fetch(
            &server,
            "/data/1k/closed",
            query,
            server_credentials(&[scheme], "not the password"),
        );
        assert_eq!(
            finished.failed().error.hresult,
            hresult::HResult::from_bits(0x8019_0191),
            "{query}"
        );
    }
}

#[test]
fn server_credentials_do_not_follow_a_redirect_to_another_origin() {
    let server = TestServer::start();
    let elsewhere = TestServer::start();
    let target = elsewhere.url("/data/1k/moved");
    let harness = Harness::new();
    let mut request = harness.request(
        &server.url(&format!("/start?location={}", encode_query_value(&target))),
        "moved",
    );
    request.credentials = server_credentials(&[AuthScheme::Basic], DEFAULT_PASSWORD);
    let (temp, _, _) = harness.run(request).completed();
    assert_file_is(
        &temp,
        &expected_body("/data/1k/moved", INITIAL_VERSION, 1024),
    );
    let first = server.requests();
    assert!(
        first.iter().any(|r| r
            .header("Authorization")
            .is_some_and(|a| a.starts_with("Basic "))),
        "Basic goes to the job's own origin at once: {first:?}"
    );
    let followed = elsewhere.requests();
    assert!(
        followed.iter().all(|r| r.header("Authorization").is_none()),
        "{followed:?}"
    );
}

#[test]
fn proxy_credentials_answer_the_proxys_challenge() {
    // The test server serves absolute-form requests, so it can be its own proxy.
    let proxy = TestServer::start();
    for (scheme, challenge) in [(AuthScheme::Basic, "basic"), (AuthScheme::Digest, "digest")] {
        let path = format!("/data/2k/through-proxy-{challenge}");
        let harness = Harness::new();
        let url = format!("{}?proxy_auth={challenge}", proxy.url(&path));
        let mut request = harness.request(&url, "proxied");
        request.proxy = ProxyChoice::Explicit {
            url: proxy.base_url(),
            bypass: Vec::new(),
        };
        request.credentials = Credentials::new(vec![Credential {
            target: AuthTarget::Proxy,
            scheme,
            user_name: DEFAULT_USER.to_owned(),
            password: Secret::new(DEFAULT_PASSWORD),
        }]);
        let (temp, _, _) = harness.run(request).completed();
        assert_file_is(&temp, &expected_body(&path, INITIAL_VERSION, 2048));
        let sent: Vec<String> = proxy
            .requests()
            .iter()
            .filter(|r| r.path == path)
            .filter_map(|r| r.header("Proxy-Authorization").map(str::to_owned))
            .collect();
        assert!(!sent.is_empty(), "{challenge}: no Proxy-Authorization");

        // Without them, the proxy's 407 ends the transfer.
        let harness = Harness::new();
        let mut request = harness.request(&url, "refused");
        request.proxy = ProxyChoice::Explicit {
            url: proxy.base_url(),
            bypass: Vec::new(),
        };
        let error = harness.run(request).failed();
        assert_eq!(
            error.error.hresult,
            hresult::HResult::from_bits(0x8019_0197),
            "BG_E_HTTP_ERROR_407: {error:?}"
        );
    }
}

#[test]
fn a_transfer_after_one_with_credentials_and_headers_sends_neither() {
    // One engine: the second transfer runs on the easy handle the first one finished with.
    let server = TestServer::start();
    let harness = Harness::new();
    let mut first = harness.request(&server.url("/data/4k/first?auth=basic"), "first");
    first.credentials = server_credentials(&[AuthScheme::Basic], DEFAULT_PASSWORD);
    first.headers = vec![("X-Qmgr-Test".to_owned(), "first only".to_owned())];
    harness.run(first).completed();
    let before = server.requests().len();

    let second = harness.request(&server.url("/data/4k/second"), "second");
    harness.run(second).completed();
    let requests = server.requests();
    let later = &requests[before..];
    assert!(!later.is_empty(), "the second transfer asked nothing");
    for seen in later {
        assert_eq!(seen.header("Authorization"), None, "{}", seen.path);
        assert_eq!(seen.header("X-Qmgr-Test"), None, "{}", seen.path);
        assert_eq!(seen.header("Range"), None, "{}", seen.path);
    }
}
