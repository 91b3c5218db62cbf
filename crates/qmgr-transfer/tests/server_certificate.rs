//! Reading a server's certificate ahead of a transfer, and transfers pinned to its key.

mod common;

use std::fs;
use std::time::Duration;

use common::{Harness, assert_file_is};
use qmgr_core::hresult;
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};
use qmgr_transfer::fetch_server_certificate;

const TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn the_servers_chain_is_read_and_a_transfer_pinned_to_its_key_completes() {
    let server = TestServer::start_https();
    let harness = Harness::new();
    let ca = harness.path("ca.pem");
    fs::write(&ca, server.ca_pem()).unwrap();
    let mut request = harness.request(&server.url("/data/10k"), "pinned");
    request.security.ca_bundle = Some(ca);

    let found = fetch_server_certificate(&request, TIMEOUT).unwrap();
    // DER: a SEQUENCE, and the chain begins with the leaf.
    assert_eq!(found.certificate.first(), Some(&0x30));
    assert!(found.chain.starts_with(&found.certificate));
    assert!(found.pin.starts_with("sha256//"), "{}", found.pin);
    assert_eq!(found.pin.len(), "sha256//".len() + 44, "{}", found.pin);
    assert_eq!(
        fetch_server_certificate(&request, TIMEOUT).unwrap().pin,
        found.pin,
        "the same server gives the same key"
    );

    request.security.pinned_public_key = Some(found.pin);
    let (temp, _, _) = harness.run(request).completed();
    assert_file_is(
        &temp,
        &expected_body("/data/10k", INITIAL_VERSION, 10 << 10),
    );
}

#[test]
fn a_transfer_pinned_to_another_key_fails() {
    let server = TestServer::start_https();
    let harness = Harness::new();
    let ca = harness.path("ca.pem");
    fs::write(&ca, server.ca_pem()).unwrap();
    let mut request = harness.request(&server.url("/data/10k"), "other-key");
    request.security.ca_bundle = Some(ca);
    request.security.pinned_public_key =
        Some("sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into());
    let error = harness.run(request).failed();
    assert!(error.error.hresult.is_failure(), "{error}");
    assert_eq!(
        server.request_count("/data/10k"),
        0,
        "no request reaches a server whose key is not the pinned one"
    );
}

#[test]
fn a_server_the_transfer_would_refuse_is_refused_before_anyone_is_asked() {
    let server = TestServer::start_https();
    let harness = Harness::new();
    let request = harness.request(&server.url("/data/10k"), "untrusted");
    let error = fetch_server_certificate(&request, TIMEOUT).unwrap_err();
    assert!(!error.transient, "{error}");
    assert_eq!(
        error.error.hresult,
        hresult::HRESULT_WINHTTP_SECURE_INVALID_CA
    );
}
