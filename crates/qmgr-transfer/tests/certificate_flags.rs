//! `BG_SSL_IGNORE_*`: each flag relaxes exactly the certificate check it names. A
//! certificate with one defect fails with WinHTTP's code for that defect, downloads with
//! the matching flag, and still fails with any other flag.

mod common;

use std::fs;

use common::{Harness, assert_file_is};
use qmgr_core::hresult::{self, HResult};
use qmgr_tests::{CertificateDefect, INITIAL_VERSION, TestServer, expected_body};
use qmgr_transfer::{IgnoredCertificateErrors, TransferRequest};

const PATH: &str = "/data/20k";

/// One flag of `IgnoredCertificateErrors` by name, for readable loops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flag {
    HostName,
    Dates,
    UnknownCa,
    WrongUsage,
}

const FLAGS: [Flag; 4] = [
    Flag::HostName,
    Flag::Dates,
    Flag::UnknownCa,
    Flag::WrongUsage,
];

impl Flag {
    fn only(self) -> IgnoredCertificateErrors {
        let mut ignored = IgnoredCertificateErrors::default();
        match self {
            Flag::HostName => ignored.host_name = true,
            Flag::Dates => ignored.dates = true,
            Flag::UnknownCa => ignored.unknown_ca = true,
            Flag::WrongUsage => ignored.wrong_usage = true,
        }
        ignored
    }
}

/// A request for the test file that trusts the server's CA (one file per server, so
/// that nothing but the flags tells two requests' TLS settings apart).
fn https_request(harness: &Harness, server: &TestServer, name: &str) -> TransferRequest {
    let ca = harness.path(&format!("ca-{}.pem", server.port()));
    if !ca.exists() {
        fs::write(&ca, server.ca_pem()).unwrap();
    }
    let mut request = harness.request(&server.url(PATH), name);
    request.security.ca_bundle = Some(ca);
    request
}

/// Checks one defect: refused without flags with `expected`, accepted with `matching`
/// alone, refused with `expected` under every other single flag.
fn only_the_matching_flag_accepts(defect: CertificateDefect, matching: Flag, expected: HResult) {
    let server = TestServer::start_https_with_defect(defect);
    let harness = Harness::new();

    let error = harness
        .run(https_request(&harness, &server, "strict"))
        .failed();
    assert!(!error.transient, "{defect:?}: {error}");
    assert_eq!(
        error.error.hresult, expected,
        "{defect:?} without flags: {error}"
    );
    assert!(
        error.error.description.contains(&server.url(PATH)),
        "{error}"
    );

    let mut relaxed = https_request(&harness, &server, "relaxed");
    relaxed.security.ignore = matching.only();
    let (temp, _, _) = harness.run(relaxed).completed();
    assert_file_is(&temp, &expected_body(PATH, INITIAL_VERSION, 20 << 10));

    for other in FLAGS.into_iter().filter(|flag| *flag != matching) {
        let mut request = https_request(&harness, &server, &format!("{other:?}"));
        request.security.ignore = other.only();
        let error = harness.run(request).failed();
        assert_eq!(
            error.error.hresult, expected,
            "{defect:?} with only {other:?} ignored: {error}"
        );
    }
    // No byte of the file left the server except for the relaxed transfer.
    assert_eq!(server.body_bytes_sent(PATH), 20 << 10);
}

#[test]
fn an_expired_certificate_needs_the_date_flag() {
    only_the_matching_flag_accepts(
        CertificateDefect::Expired,
        Flag::Dates,
        hresult::HRESULT_WINHTTP_SECURE_CERT_DATE_INVALID,
    );
}

#[test]
fn a_certificate_for_another_host_needs_the_name_flag() {
    only_the_matching_flag_accepts(
        CertificateDefect::WrongHost,
        Flag::HostName,
        hresult::HRESULT_WINHTTP_SECURE_CERT_CN_INVALID,
    );
}

#[test]
fn a_certificate_from_an_unknown_ca_needs_the_ca_flag() {
    only_the_matching_flag_accepts(
        CertificateDefect::UnknownCa,
        Flag::UnknownCa,
        hresult::HRESULT_WINHTTP_SECURE_INVALID_CA,
    );
}

#[test]
fn a_client_only_certificate_needs_the_usage_flag() {
    only_the_matching_flag_accepts(
        CertificateDefect::ClientAuthOnly,
        Flag::WrongUsage,
        hresult::HRESULT_WINHTTP_SECURE_CERT_WRONG_USAGE,
    );
}

#[test]
fn a_relaxed_connection_or_session_serves_no_strict_transfer() {
    let server = TestServer::start_https_with_defect(CertificateDefect::UnknownCa);
    let harness = Harness::new();
    // Strict first too: its refused connection must not let a relaxed one slip in either.
    let error = harness
        .run(https_request(&harness, &server, "first"))
        .failed();
    assert_eq!(
        error.error.hresult,
        hresult::HRESULT_WINHTTP_SECURE_INVALID_CA
    );
    for round in 0..2 {
        let mut relaxed = https_request(&harness, &server, &format!("relaxed-{round}"));
        relaxed.security.ignore = Flag::UnknownCa.only();
        harness.run(relaxed).completed();
        let error = harness
            .run(https_request(&harness, &server, &format!("strict-{round}")))
            .failed();
        assert_eq!(
            error.error.hresult,
            hresult::HRESULT_WINHTTP_SECURE_INVALID_CA
        );
    }
}
