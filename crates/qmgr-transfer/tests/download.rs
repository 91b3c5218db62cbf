//! Plain downloads: what arrives on disk, how the temporary file looks, what the server saw.

mod common;

use std::fs;
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use common::{Harness, assert_file_is};
use qmgr_core::hresult;
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};
use qmgr_transfer::{EngineEvent, Overwrite, ProxyChoice, finalize, is_temp_name};

#[test]
fn a_file_arrives_byte_identical_in_a_private_temporary_file() {
    let server = TestServer::start();
    let harness = Harness::new();
    let finished = harness.run(harness.request(&server.url("/data/1m"), "one.bin"));
    let (temp, bytes, validator) = finished.completed();
    assert_eq!(bytes, 1 << 20);
    assert_file_is(&temp, &expected_body("/data/1m", INITIAL_VERSION, 1 << 20));
    assert_eq!(temp.parent(), Some(harness.dir.path()));
    assert!(is_temp_name(temp.file_name().unwrap()), "{temp:?}");
    assert!(
        temp.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".BIT")
    );
    assert_eq!(fs::metadata(&temp).unwrap().mode() & 0o777, 0o600);
    assert!(validator.strong_etag().is_some(), "{validator:?}");
    assert!(validator.last_modified.is_some());
    assert!(
        !harness.path("one.bin").exists(),
        "only finalize names the file"
    );

    let (total, _, resumed_at, restart) = finished.responded().unwrap();
    assert_eq!((total, resumed_at, restart), (Some(1 << 20), 0, None));
    let headers = finished
        .events
        .iter()
        .find_map(|event| match event {
            EngineEvent::Responded { headers, .. } => Some(headers.clone()),
            _ => None,
        })
        .unwrap();
    assert!(headers.starts_with("HTTP/1.1 200"), "{headers}");
    assert!(
        headers.contains(&format!("ETag: {}", validator.etag.as_deref().unwrap()))
            && headers.contains("Content-Length: 1048576\r\n"),
        "the response head as received: {headers}"
    );
    assert!(matches!(finished.events[0], EngineEvent::Started { .. }));
    assert!(
        !matches!(
            finished.events[finished.events.len() - 2],
            EngineEvent::Progress { .. }
        ),
        "a Progress repeated the length the Completed tells: {:?}",
        finished.events
    );
    assert_eq!(server.body_bytes_sent("/data/1m"), 1 << 20);
}

#[test]
fn finalize_moves_the_file_onto_its_name_and_no_clobber_refuses_to_replace() {
    let server = TestServer::start();
    let harness = Harness::new();
    let destination = harness.path("final.bin");
    let (temp, _, _) = harness
        .run(harness.request(&server.url("/data/64k"), "final.bin"))
        .completed();
    fs::write(&destination, b"precious").unwrap();
    let refused = finalize(&temp, &destination, Overwrite::NoClobber, 0o022).unwrap_err();
    assert_eq!(refused.hresult, hresult::HRESULT_FILE_EXISTS);
    assert_eq!(fs::read(&destination).unwrap(), b"precious");
    finalize(&temp, &destination, Overwrite::Replace, 0o022).unwrap();
    assert_file_is(
        &destination,
        &expected_body("/data/64k", INITIAL_VERSION, 64 << 10),
    );
    assert!(!temp.exists());
}

#[test]
fn a_body_without_length_or_in_chunks_still_arrives_whole() {
    let server = TestServer::start();
    let harness = Harness::new();
    for (query, name) in [("no_length=1", "unsized"), ("chunked=1", "chunked")] {
        let path = format!("/data/300k/{name}");
        let finished = harness.run(harness.request(&server.url(&format!("{path}?{query}")), name));
        let (temp, bytes, _) = finished.completed();
        assert_eq!(bytes, 300 << 10, "{query}");
        assert_file_is(&temp, &expected_body(&path, INITIAL_VERSION, 300 << 10));
        let (total, _, _, _) = finished.responded().unwrap();
        assert_eq!(total, None, "{query}: the size is unknown until the end");
    }
}

#[test]
fn an_empty_file_completes_with_zero_bytes() {
    let server = TestServer::start();
    let harness = Harness::new();
    let (temp, bytes, _) = harness
        .run(harness.request(&server.url("/data/0"), "empty"))
        .completed();
    assert_eq!(bytes, 0);
    assert_eq!(fs::metadata(temp).unwrap().len(), 0);
}

#[test]
fn custom_headers_reach_the_server() {
    let server = TestServer::start();
    let harness = Harness::new();
    let mut request = harness.request(&server.url("/data/1k"), "headers");
    request.headers = vec![
        ("X-Qmgr-Test".to_owned(), "forty two".to_owned()),
        ("Authorization".to_owned(), "Bearer abc".to_owned()),
    ];
    harness.run(request).completed();
    let requests = server.requests();
    let seen = requests.last().unwrap();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.header("x-qmgr-test"), Some("forty two"));
    assert_eq!(seen.header("Authorization"), Some("Bearer abc"));
    assert!(seen.header("User-Agent").unwrap().starts_with("qmgr/"));
    assert_eq!(
        seen.header("Range"),
        None,
        "a fresh download asks for everything"
    );
}

#[test]
fn redirects_are_followed_within_the_limit() {
    let server = TestServer::start();
    let harness = Harness::new();
    let finished = harness.run(harness.request(&server.url("/data/10k?redirect=3"), "moved"));
    let (temp, _, _) = finished.completed();
    assert_file_is(
        &temp,
        &expected_body("/data/10k", INITIAL_VERSION, 10 << 10),
    );
    assert_eq!(server.request_count("/data/10k"), 4);

    let mut limited = harness.request(&server.url("/data/10k/b?redirect=3"), "limited");
    limited.max_redirects = 2;
    let error = harness.run(limited).failed();
    assert!(!error.transient);
    assert_eq!(
        error.error.hresult.bits(),
        0x8007_2F7C,
        "WinHTTP's redirect failure"
    );
    assert!(error.error.description.contains("redirect"), "{error}");
}

#[test]
fn many_small_files_at_once_all_arrive_intact() {
    let server = TestServer::start();
    let harness = Harness::new();
    let ids: Vec<_> = (0..200)
        .map(|index| {
            let url = server.url(&format!("/data/16k/{index}"));
            harness.submit(harness.request(&url, &format!("small-{index}")))
        })
        .collect();
    for (index, id) in ids.into_iter().enumerate() {
        let (temp, bytes, _) = harness.wait(id).completed();
        assert_eq!(bytes, 16 << 10);
        let path = format!("/data/16k/{index}");
        assert_file_is(&temp, &expected_body(&path, INITIAL_VERSION, 16 << 10));
    }
}

#[test]
fn a_local_file_is_copied_through_a_file_url_or_a_plain_path() {
    let harness = Harness::new();
    let source = harness.path("source data.bin");
    let content: Vec<u8> = (0..200_000_u32).map(|n| (n * 7 % 251) as u8).collect();
    fs::write(&source, &content).unwrap();
    let by_path = harness.run(harness.request(source.to_str().unwrap(), "copy1"));
    let (temp, bytes, validator) = by_path.completed();
    assert_eq!(bytes, content.len() as u64);
    assert_file_is(&temp, &content);
    assert!(validator.etag.is_some() && validator.last_modified.is_some());

    let url = format!("file://{}", source.to_str().unwrap().replace(' ', "%20"));
    let (temp, _, again) = harness.run(harness.request(&url, "copy2")).completed();
    assert_file_is(&temp, &content);
    assert_eq!(again, validator, "the same file gives the same validator");
}

#[test]
fn a_missing_local_source_is_a_permanent_remote_error() {
    let harness = Harness::new();
    let missing = harness.path("nothing-here");
    let error = harness
        .run(harness.request(missing.to_str().unwrap(), "copy"))
        .failed();
    assert!(!error.transient);
    assert_eq!(error.error.hresult, hresult::HRESULT_FILE_NOT_FOUND);
    assert_eq!(error.error.context, qmgr_core::ErrorContext::RemoteFile);
    assert_eq!(
        fs::read_dir(harness.dir.path()).unwrap().count(),
        0,
        "no temporary file is made for a source that is not there"
    );
}

#[test]
fn https_works_with_the_servers_ca_and_fails_permanently_without_it() {
    let server = TestServer::start_https();
    let harness = Harness::new();
    let ca = harness.path("ca.pem");
    fs::write(&ca, server.ca_pem()).unwrap();

    let mut trusted = harness.request(&server.url("/data/100k"), "secure");
    trusted.security.ca_bundle = Some(ca);
    let (temp, _, _) = harness.run(trusted).completed();
    assert_file_is(
        &temp,
        &expected_body("/data/100k", INITIAL_VERSION, 100 << 10),
    );

    let untrusted = harness.request(&server.url("/data/100k"), "insecure");
    let error = harness.run(untrusted).failed();
    assert!(!error.transient, "{error}");
    assert_eq!(
        error.error.hresult,
        hresult::HRESULT_WINHTTP_SECURE_INVALID_CA
    );
}

/// Relays connections on a port of its own to `target`, counting them.
fn counting_relay(target: u16) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            let server = TcpStream::connect(("127.0.0.1", target)).unwrap();
            let pipe = |mut from: TcpStream, mut to: TcpStream| {
                thread::spawn(move || {
                    let _ = io::copy(&mut from, &mut to);
                    let _ = to.shutdown(Shutdown::Write);
                })
            };
            pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
            pipe(server, client);
        }
    });
    (port, accepted)
}

#[test]
fn transfers_to_one_host_reuse_the_connection() {
    let server = TestServer::start();
    let (port, connections) = counting_relay(server.port());
    let harness = Harness::new();
    for index in 0..10 {
        let url = format!("http://127.0.0.1:{port}/data/16k/reuse{index}");
        let (temp, _, _) = harness
            .run(harness.request(&url, &format!("reuse{index}")))
            .completed();
        let path = format!("/data/16k/reuse{index}");
        assert_file_is(&temp, &expected_body(&path, INITIAL_VERSION, 16 << 10));
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "one connection for all"
    );
}

#[test]
fn an_explicit_proxy_carries_the_request_unless_the_host_is_bypassed() {
    let server = TestServer::start();
    let harness = Harness::new();
    let mut proxied = harness.request("http://files.example.invalid/data/4k/proxied", "proxied");
    proxied.proxy = ProxyChoice::Explicit {
        url: server.base_url(),
        bypass: Vec::new(),
    };
    let (temp, _, _) = harness.run(proxied).completed();
    assert_file_is(
        &temp,
        &expected_body("/data/4k/proxied", INITIAL_VERSION, 4 << 10),
    );

    let closed_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut bypassed = harness.request(&server.url("/data/4k/direct"), "direct");
    bypassed.proxy = ProxyChoice::Explicit {
        url: format!("http://127.0.0.1:{closed_port}"),
        bypass: vec!["127.0.0.1".to_owned()],
    };
    harness.run(bypassed).completed();
}

#[test]
fn a_job_may_choose_its_http_method() {
    let server = TestServer::start();
    let harness = Harness::new();
    let mut request = harness.request(&server.url("/data/2k/posted?any_method=1"), "posted");
    request.http_method = Some("POST".into());
    let (temp, bytes, _) = harness.run(request).completed();
    assert_eq!(bytes, 2048);
    assert_file_is(
        &temp,
        &expected_body("/data/2k/posted", INITIAL_VERSION, 2048),
    );
    assert_eq!(server.requests()[0].method, "POST");

    for bad in ["GE T", "", "HEAD", "X\r\nInjected: 1"] {
        let mut request = harness.request(&server.url("/data/2k/bad"), "bad");
        request.http_method = Some(bad.into());
        assert_eq!(
            harness.engine.submit(request).unwrap_err().hresult,
            qmgr_core::hresult::E_INVALIDARG,
            "{bad:?}"
        );
    }
}
