//! The upload client against qmgr's own BITS upload server: whole uploads, fragments shrunk
//! by 413, resumption after a stop and after the server restarted (keeping its sessions or
//! losing them), Host-Id, empty files, and the server's refusals as job errors.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use qmgr_core::{ErrorContext, hresult};
use qmgr_transfer::upload::{ChannelOptions, UploadState, Uploader};
use qmgr_upload_server::{Background, Config};

struct Server {
    background: Option<Background>,
    root: tempfile::TempDir,
    extra: String,
}

impl Server {
    fn start(extra: &str) -> Server {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("uploads")).unwrap();
        let mut server = Server {
            background: None,
            root,
            extra: extra.to_owned(),
        };
        server.restart(false);
        server
    }

    /// Starts (again) on a new port; `forget` gives the server an empty state directory,
    /// so it knows no session any more.
    fn restart(&mut self, forget: bool) {
        if let Some(background) = self.background.take() {
            background.stop();
        }
        let state = self.root.path().join("state");
        if forget {
            std::fs::remove_dir_all(&state).unwrap();
        }
        let text = format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n{}\n[[location]]\nprefix = \"/up/\"\ndirectory = \"{}\"\n",
            state.display(),
            self.extra,
            self.uploads().display()
        );
        self.background = Some(Background::start(Config::parse(&text).unwrap()).unwrap());
    }

    fn url(&self, name: &str) -> String {
        let address = self.background.as_ref().unwrap().address();
        format!("http://{address}/up/{name}")
    }

    fn uploads(&self) -> PathBuf {
        self.root.path().join("uploads")
    }
}

fn source(dir: &Path, name: &str, length: usize) -> (PathBuf, Vec<u8>) {
    let bytes: Vec<u8> = (0..length)
        .map(|i| u8::try_from((i * 31 + i / 997) % 256).expect("below 256"))
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

fn upload(
    url: &str,
    path: &Path,
    resume: Option<UploadState>,
) -> Result<UploadState, qmgr_transfer::TransferError> {
    let mut uploader = Uploader::open(url, path, resume, ChannelOptions::default())?;
    let never = AtomicBool::new(false);
    uploader.close(&never, |_| {})?;
    Ok(uploader.state().clone())
}

#[test]
fn a_file_arrives_whole_in_fragments_the_server_can_take() {
    let server = Server::start("max_fragment_size = 100000");
    let local = tempfile::tempdir().unwrap();
    let (path, bytes) = source(local.path(), "dump.bin", 1_000_003);
    let state = upload(&server.url("dump.bin"), &path, None).unwrap();
    assert!(state.closed);
    assert!(
        state.fragment_bytes <= 100_000,
        "413 shrank the fragments: {state:?}"
    );
    assert_eq!(
        std::fs::read(server.uploads().join("dump.bin")).unwrap(),
        bytes
    );
}

#[test]
fn an_upload_resumes_where_the_server_stands_after_it_restarts() {
    let mut server = Server::start("max_fragment_size = 65536");
    let local = tempfile::tempdir().unwrap();
    let (path, bytes) = source(local.path(), "log.txt", 400_000);
    let url = server.url("log.txt");
    let stop = AtomicBool::new(false);
    let mut uploader = Uploader::open(&url, &path, None, ChannelOptions::default()).unwrap();
    let mut acknowledged = Vec::new();
    let stopped = uploader.send_all(&stop, |state| {
        acknowledged.push(state.offset);
        if state.offset >= 100_000 {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    assert_eq!(stopped.unwrap_err().error.hresult, hresult::E_ABORT);
    let recorded = uploader.state().clone();
    assert!(recorded.offset >= 100_000 && recorded.offset < 400_000);
    drop(uploader);

    // The server restarts keeping its sessions: the upload goes on from its offset.
    server.restart(false);
    let url = server.url("log.txt");
    let mut uploader = Uploader::open(
        &url,
        &path,
        Some(recorded.clone()),
        ChannelOptions::default(),
    )
    .unwrap();
    let mut first_offset = None;
    let never = AtomicBool::new(false);
    uploader
        .close(&never, |state| {
            first_offset.get_or_insert(state.offset);
        })
        .unwrap();
    assert!(
        first_offset.unwrap() > recorded.offset,
        "it resent what the server had"
    );
    assert_eq!(uploader.state().session, recorded.session);
    assert_eq!(
        std::fs::read(server.uploads().join("log.txt")).unwrap(),
        bytes
    );
}

#[test]
fn a_server_that_forgot_the_session_gets_the_upload_again_from_the_start() {
    let mut server = Server::start("max_fragment_size = 65536");
    let local = tempfile::tempdir().unwrap();
    let (path, bytes) = source(local.path(), "crash.dmp", 300_000);
    let stop = AtomicBool::new(false);
    let mut uploader = Uploader::open(
        &server.url("crash.dmp"),
        &path,
        None,
        ChannelOptions::default(),
    )
    .unwrap();
    let _ = uploader.send_all(&stop, |state| {
        if state.offset >= 65_536 {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let recorded = uploader.state().clone();
    server.restart(true);
    let state = upload(&server.url("crash.dmp"), &path, Some(recorded.clone())).unwrap();
    assert_ne!(state.session, recorded.session, "a new session");
    assert_eq!(
        std::fs::read(server.uploads().join("crash.dmp")).unwrap(),
        bytes
    );
}

#[test]
fn host_id_sends_the_rest_of_the_session_to_that_host() {
    let server = Server::start("host_id = \"localhost\"\nhost_id_fallback_timeout = 60");
    let local = tempfile::tempdir().unwrap();
    let (path, bytes) = source(local.path(), "farm.bin", 10_000);
    let state = upload(&server.url("farm.bin"), &path, None).unwrap();
    assert_eq!(state.host.as_deref(), Some("localhost"));
    assert_eq!(
        std::fs::read(server.uploads().join("farm.bin")).unwrap(),
        bytes
    );
}

#[test]
fn empty_and_one_byte_files_upload() {
    let server = Server::start("");
    let local = tempfile::tempdir().unwrap();
    // An empty file is a session with no fragment (a Content-Range cannot name zero bytes).
    let (path, _) = source(local.path(), "empty", 0);
    upload(&server.url("empty"), &path, None).unwrap();
    assert_eq!(std::fs::read(server.uploads().join("empty")).unwrap(), b"");
    let (path, bytes) = source(local.path(), "one", 1);
    let state = upload(&server.url("one"), &path, None).unwrap();
    assert!(state.closed && state.offset == 1);
    assert_eq!(std::fs::read(server.uploads().join("one")).unwrap(), bytes);
}

#[test]
fn refusals_are_the_servers_errors_and_a_changed_file_is_caught() {
    let server = Server::start("");
    let local = tempfile::tempdir().unwrap();
    std::fs::write(server.uploads().join("taken"), b"old").unwrap();
    let (path, _) = source(local.path(), "taken", 10);
    let error = upload(&server.url("taken"), &path, None).unwrap_err();
    assert_eq!(error.error.hresult.bits(), 0x8007_0050);
    assert_eq!(error.error.context, ErrorContext::RemoteFile);
    assert!(!error.transient);
    assert_eq!(
        std::fs::read(server.uploads().join("taken")).unwrap(),
        b"old"
    );

    let error = upload(&server.url("a%5cb"), &path, None).unwrap_err();
    assert_eq!(error.error.hresult, hresult::E_INVALIDARG);

    let mut recorded = UploadState::new(11);
    recorded.session = Some("{S}".into());
    let error = upload(&server.url("x"), &path, Some(recorded)).unwrap_err();
    assert_eq!(error.error.hresult, hresult::BG_E_LOCAL_FILE_CHANGED);
}

/// The adversary: the project's test server with upload faults (tests/src/upload.rs).
mod adversary {
    use super::*;
    use qmgr_tests::TestServer;

    fn upload_to(
        server: &TestServer,
        path_and_query: &str,
        length: usize,
    ) -> (Result<UploadState, qmgr_transfer::TransferError>, Vec<u8>) {
        let local = tempfile::tempdir().unwrap();
        let (path, bytes) = source(local.path(), "source.bin", length);
        let options = ChannelOptions {
            stall_timeout: std::time::Duration::from_secs(10),
            ..ChannelOptions::default()
        };
        let mut uploader = match Uploader::open(&server.url(path_and_query), &path, None, options) {
            Ok(uploader) => uploader,
            Err(error) => return (Err(error), bytes),
        };
        let never = AtomicBool::new(false);
        // A cut connection is a transient error: the caller (the service) retries.
        let mut result = Err(None);
        for _ in 0..5 {
            match uploader.close(&never, |_| {}) {
                Ok(()) => {
                    result = Ok(());
                    break;
                }
                Err(error) if error.transient => result = Err(Some(error)),
                Err(error) => {
                    result = Err(Some(error));
                    break;
                }
            }
        }
        let state = uploader.state().clone();
        (
            result
                .map(|()| state)
                .map_err(|error| error.expect("an error")),
            bytes,
        )
    }

    #[test]
    fn a_fragment_cut_mid_body_is_resent_from_where_the_server_stands() {
        let server = TestServer::start();
        for query in ["drop_fragment=2", "drop_fragment=2&drop_discard=1"] {
            let path = format!("/cut/{}", query.len());
            let (state, bytes) = upload_to(
                &server,
                &format!("{path}?max_fragment=65536&{query}"),
                300_000,
            );
            let state = state.unwrap_or_else(|error| panic!("{query}: {error:?}"));
            assert!(state.closed);
            assert_eq!(
                server.uploaded(&path).as_deref(),
                Some(bytes.as_slice()),
                "{query}"
            );
        }
    }

    #[test]
    fn a_server_that_lost_bytes_gets_them_again() {
        let server = TestServer::start();
        let (state, bytes) = upload_to(&server, "/lost?max_fragment=65536&lose_bytes=2", 200_000);
        state.unwrap();
        assert_eq!(server.uploaded("/lost").as_deref(), Some(bytes.as_slice()));
    }

    #[test]
    fn a_server_claiming_bytes_it_cannot_have_fails_the_upload() {
        let server = TestServer::start();
        let (state, _) = upload_to(&server, "/liar?max_fragment=65536&lie_received=2", 200_000);
        let error = state.unwrap_err();
        assert_eq!(error.error.hresult, hresult::BG_E_INVALID_SERVER_RESPONSE);
        assert!(!error.transient);
        assert_eq!(server.uploaded("/liar"), None, "nothing was published");
    }

    #[test]
    fn a_server_that_forgets_sessions_gets_the_whole_upload_in_a_new_one() {
        let server = TestServer::start();
        let (state, bytes) = upload_to(
            &server,
            "/amnesia?max_fragment=65536&forget_after=2",
            200_000,
        );
        state.unwrap();
        assert_eq!(
            server.uploaded("/amnesia").as_deref(),
            Some(bytes.as_slice())
        );
        let creates = server
            .requests()
            .iter()
            .filter(|r| {
                r.path == "/amnesia" && r.header("BITS-Packet-Type") == Some("Create-Session")
            })
            .count();
        assert_eq!(creates, 2);
    }

    #[test]
    fn refusals_and_overload_are_told_apart() {
        let server = TestServer::start();
        let (state, _) = upload_to(&server, "/denied?create_error=403:0x80070005:0x5", 10);
        let error = state.unwrap_err();
        assert_eq!(error.error.hresult, hresult::E_ACCESSDENIED);
        assert!(!error.transient);
        let (state, _) = upload_to(&server, "/busy?fragment_error=503", 10);
        let error = state.unwrap_err();
        assert_eq!(error.http_status, Some(503));
        assert!(error.transient, "an overloaded server is retried later");
    }

    #[test]
    fn every_packet_is_sent_as_the_protocol_wants() {
        let server = TestServer::start();
        let (state, _) = upload_to(&server, "/shape?max_fragment=65536", 100_000);
        state.unwrap();
        let packets: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r.path == "/shape")
            .collect();
        assert!(packets.iter().all(|r| r.method == "BITS_POST"));
        assert!(packets.iter().all(|r| r.header("Content-Length").is_some()));
        assert!(
            packets
                .iter()
                .all(|r| r.header("Expect").is_none() && r.header("Content-Encoding").is_none())
        );
        let session = packets
            .iter()
            .find_map(|r| r.header("BITS-Session-Id"))
            .expect("a session id")
            .to_owned();
        assert!(
            packets
                .iter()
                .skip(1)
                .all(|r| r.header("BITS-Session-Id") == Some(session.as_str())),
            "echoed verbatim"
        );
        let kinds: Vec<_> = packets
            .iter()
            .map(|r| r.header("BITS-Packet-Type").unwrap_or_default().to_owned())
            .collect();
        assert_eq!(kinds.first().map(String::as_str), Some("Create-Session"));
        assert_eq!(kinds.last().map(String::as_str), Some("Close-Session"));
    }
}
