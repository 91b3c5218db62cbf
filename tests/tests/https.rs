//! The HTTPS flavour of the test server, through a rustls client that trusts only the
//! server's own CA.

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;

use qmgr_tests::{ClientIdentity, INITIAL_VERSION, TestServer, content, expected_body};
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

struct Exchange {
    head: String,
    body: Vec<u8>,
    /// How reading to the end of the connection finished.
    end: io::Result<()>,
}

fn client_config(ca_pem: &str) -> Arc<ClientConfig> {
    client_config_as(ca_pem, None)
}

/// A client trusting `ca_pem` that presents `identity`, if given, when asked.
fn client_config_as(ca_pem: &str, identity: Option<&ClientIdentity>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("a PEM certificate"))
        .expect("a usable CA certificate");
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("default TLS versions")
        .with_root_certificates(roots);
    let config = match identity {
        Some(identity) => config
            .with_client_auth_cert(
                vec![CertificateDer::from(identity.certificate_der.clone())],
                PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).expect("a PEM key"),
            )
            .expect("a usable client certificate"),
        None => config.with_no_client_auth(),
    };
    Arc::new(config)
}

/// Sends one GET with `Connection: close` to `port` as `host`, trusting `ca_pem`, and
/// reads until the connection ends.
fn fetch(port: u16, host: &str, ca_pem: &str, target: &str) -> Exchange {
    fetch_with(port, host, client_config(ca_pem), target)
}

fn fetch_with(port: u16, host: &str, config: Arc<ClientConfig>, target: &str) -> Exchange {
    let name = ServerName::try_from(host.to_owned()).expect("a server name");
    let session = ClientConnection::new(config, name).expect("a TLS session");
    let socket = TcpStream::connect(("127.0.0.1", port)).expect("connecting");
    let mut stream = StreamOwned::new(session, socket);
    let mut raw = Vec::new();
    let end = stream
        .write_all(
            format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .and_then(|()| stream.read_to_end(&mut raw))
        .map(drop);
    let head_len = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map_or(raw.len(), |at| at + 4);
    let body = raw.split_off(head_len);
    Exchange {
        head: String::from_utf8(raw).expect("an ASCII head"),
        body,
        end,
    }
}

#[test]
fn serves_files_to_clients_that_trust_its_ca() {
    let server = TestServer::start_https();
    assert_eq!(
        server.base_url(),
        format!("https://127.0.0.1:{}", server.port())
    );
    for host in ["127.0.0.1", "localhost"] {
        let exchange = fetch(server.port(), host, &server.ca_pem(), "/data/300k");
        exchange.end.expect("a clean end of the session");
        assert!(
            exchange.head.starts_with("HTTP/1.1 200 OK\r\n"),
            "{}",
            exchange.head
        );
        assert_eq!(
            exchange.body,
            expected_body("/data/300k", INITIAL_VERSION, 300 * 1024)
        );
    }
    assert_eq!(server.body_bytes_sent("/data/300k"), 2 * 300 * 1024);
}

#[test]
fn ranges_and_faults_work_over_tls() {
    let server = TestServer::start_https();
    let name = ServerName::try_from("127.0.0.1").expect("a server name");
    let session =
        ClientConnection::new(client_config(&server.ca_pem()), name).expect("a TLS session");
    let socket = TcpStream::connect(("127.0.0.1", server.port())).expect("connecting");
    let mut stream = BufReader::new(StreamOwned::new(session, socket));
    stream
        .get_mut()
        .write_all(b"GET /data/1000 HTTP/1.1\r\nRange: bytes=10-19\r\n\r\n")
        .expect("sending");
    let mut status_line = String::new();
    stream
        .read_line(&mut status_line)
        .expect("reading the status line");
    assert_eq!(status_line, "HTTP/1.1 206 Partial Content\r\n");
    let mut line = String::new();
    while line != "\r\n" {
        line.clear();
        stream.read_line(&mut line).expect("reading the head");
    }
    let mut body = [0; 10];
    stream.read_exact(&mut body).expect("reading the body");
    assert_eq!(body[..], content("/data/1000", INITIAL_VERSION, 10, 10));

    let failing = fetch(
        server.port(),
        "127.0.0.1",
        &server.ca_pem(),
        "/data/10?status=503",
    );
    assert!(
        failing.head.starts_with("HTTP/1.1 503 "),
        "{}",
        failing.head
    );
}

#[test]
fn cut_bodies_end_without_close_notify_and_unsized_bodies_with_it() {
    let server = TestServer::start_https();
    let cut = fetch(
        server.port(),
        "127.0.0.1",
        &server.ca_pem(),
        "/data/100k?drop_after=5000",
    );
    assert_eq!(cut.body, content("/data/100k", INITIAL_VERSION, 0, 5000));
    let error = cut.end.expect_err("a truncated session");
    assert_eq!(error.kind(), ErrorKind::UnexpectedEof);

    let close_delimited = fetch(
        server.port(),
        "127.0.0.1",
        &server.ca_pem(),
        "/data/100k?no_length=1",
    );
    close_delimited
        .end
        .expect("a session closed with close_notify");
    assert_eq!(
        close_delimited.body,
        expected_body("/data/100k", INITIAL_VERSION, 100 * 1024)
    );
}

#[test]
fn every_server_has_its_own_ca() {
    let first = TestServer::start_https();
    let second = TestServer::start_https();
    assert_ne!(first.ca_pem(), second.ca_pem());
    let mistrusted = fetch(second.port(), "127.0.0.1", &first.ca_pem(), "/data/10");
    assert!(mistrusted.end.is_err());
    assert!(mistrusted.head.is_empty() && mistrusted.body.is_empty());
}

#[test]
fn client_authentication_admits_only_certificates_of_its_ca() {
    let server = TestServer::start_https_with_client_auth();
    let ca_pem = server.ca_pem();
    let port = server.port();

    let client = server.client_certificate("client");
    assert!(client.certificate_pem.contains("BEGIN CERTIFICATE"));
    let admitted = fetch_with(
        port,
        "127.0.0.1",
        client_config_as(&ca_pem, Some(&client)),
        "/data/2000",
    );
    admitted.end.expect("a clean end of the session");
    assert_eq!(
        admitted.body,
        expected_body("/data/2000", INITIAL_VERSION, 2000)
    );

    let anonymous = fetch(port, "127.0.0.1", &ca_pem, "/data/2000");
    assert!(anonymous.end.is_err());
    assert!(anonymous.head.is_empty() && anonymous.body.is_empty());

    let stranger = TestServer::start_https().client_certificate("client");
    let refused = fetch_with(
        port,
        "127.0.0.1",
        client_config_as(&ca_pem, Some(&stranger)),
        "/data/2000",
    );
    assert!(refused.end.is_err());
    assert!(refused.head.is_empty() && refused.body.is_empty());
    assert_eq!(server.request_count("/data/2000"), 1);
}

#[test]
fn servers_without_client_authentication_ignore_client_certificates() {
    let server = TestServer::start_https();
    let client = server.client_certificate("client");
    let exchange = fetch_with(
        server.port(),
        "127.0.0.1",
        client_config_as(&server.ca_pem(), Some(&client)),
        "/data/10",
    );
    exchange.end.expect("a clean end of the session");
    assert!(exchange.head.starts_with("HTTP/1.1 200 OK\r\n"));
}

#[test]
#[should_panic(expected = "start_https")]
fn plain_servers_have_no_ca() {
    let _ = TestServer::start().ca_pem();
}

#[test]
fn the_binary_serves_https_and_writes_its_ca() {
    let ca_file =
        std::env::temp_dir().join(format!("qmgr-testserver-ca-{}.pem", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_qmgr-testserver"))
        .args(["--https", "--exit-on-stdin-eof", "--ca-file"])
        .arg(&ca_file)
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
        .strip_prefix("https://127.0.0.1:")
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {url:?}"));
    let ca_pem = std::fs::read_to_string(&ca_file).expect("reading the CA file");
    std::fs::remove_file(&ca_file).expect("removing the CA file");

    let exchange = fetch(port, "localhost", &ca_pem, "/data/2000");
    exchange.end.expect("a clean end of the session");
    assert_eq!(
        exchange.body,
        expected_body("/data/2000", INITIAL_VERSION, 2000)
    );

    drop(child.stdin.take());
    let status = child.wait().expect("waiting for qmgr-testserver");
    assert!(status.success(), "{status}");
}
