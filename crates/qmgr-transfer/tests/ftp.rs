//! ftp downloads against a minimal passive-mode server: whole files, resume by REST
//! validated with SIZE and MDTM, and a changed file starting over.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use common::{Harness, assert_file_is};
use qmgr_core::hresult;
use qmgr_transfer::RestartReason;

/// A file the server offers: its bytes and its MDTM answer.
#[derive(Clone)]
struct FtpFile {
    content: Vec<u8>,
    modified: String,
}

#[derive(Default)]
struct FtpState {
    files: HashMap<String, FtpFile>,
    /// Cut the next RETR's data connection after this many bytes.
    cut_next_at: Option<usize>,
    /// Every command received, in order.
    commands: Vec<String>,
    /// Data bytes sent over all RETRs.
    bytes_sent: usize,
}

/// Enough of RFC 959 (plus EPSV, SIZE, MDTM, REST) for curl to download: one thread per
/// control connection, passive data connections only.
struct FtpServer {
    port: u16,
    state: Arc<Mutex<FtpState>>,
}

impl FtpServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(FtpState::default()));
        let shared = Arc::clone(&state);
        thread::spawn(move || {
            for control in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                thread::spawn(move || serve(control, &state));
            }
        });
        Self { port, state }
    }

    fn url(&self, path: &str) -> String {
        format!("ftp://127.0.0.1:{}{path}", self.port)
    }

    fn put(&self, name: &str, content: Vec<u8>, modified: &str) {
        self.state.lock().unwrap().files.insert(
            name.to_owned(),
            FtpFile {
                content,
                modified: modified.to_owned(),
            },
        );
    }

    fn cut_next_at(&self, bytes: usize) {
        self.state.lock().unwrap().cut_next_at = Some(bytes);
    }

    fn commands(&self) -> Vec<String> {
        self.state.lock().unwrap().commands.clone()
    }

    fn bytes_sent(&self) -> usize {
        self.state.lock().unwrap().bytes_sent
    }
}

fn serve(control: TcpStream, state: &Mutex<FtpState>) {
    let mut reader = BufReader::new(control.try_clone().unwrap());
    let mut out = control;
    let reply = |out: &mut TcpStream, text: &str| out.write_all(format!("{text}\r\n").as_bytes());
    let _ = reply(&mut out, "220 test server ready");
    let mut passive: Option<TcpListener> = None;
    let mut restart_at = 0_usize;
    let mut directory = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_owned();
        state.lock().unwrap().commands.push(command.clone());
        let (verb, argument) = command.split_once(' ').unwrap_or((command.as_str(), ""));
        let file = |name: &str| {
            let path = if name.starts_with('/') {
                name.trim_start_matches('/').to_owned()
            } else {
                format!("{directory}{name}")
            };
            state.lock().unwrap().files.get(&path).cloned()
        };
        let answer = match verb.to_ascii_uppercase().as_str() {
            "USER" => "331 send a password".to_owned(),
            "PASS" => "230 logged in".to_owned(),
            "PWD" => "257 \"/\"".to_owned(),
            "CWD" => {
                directory = match argument.trim_matches('/') {
                    "" => String::new(),
                    relative => format!("{directory}{relative}/"),
                };
                "250 ok".to_owned()
            }
            "TYPE" => "200 binary it is".to_owned(),
            "EPSV" => {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let port = listener.local_addr().unwrap().port();
                passive = Some(listener);
                format!("229 Entering Extended Passive Mode (|||{port}|)")
            }
            "SIZE" => file(argument).map_or("550 no such file".to_owned(), |f| {
                format!("213 {}", f.content.len())
            }),
            "MDTM" => file(argument).map_or("550 no such file".to_owned(), |f| {
                format!("213 {}", f.modified)
            }),
            "REST" => {
                restart_at = argument.parse().unwrap_or(0);
                format!("350 restarting at {restart_at}")
            }
            "RETR" => {
                let (Some(found), Some(listener)) = (file(argument), passive.take()) else {
                    let _ = reply(&mut out, "550 no such file");
                    continue;
                };
                let (mut data, _) = listener.accept().unwrap();
                let rest = &found.content[restart_at.min(found.content.len())..];
                let _ = reply(&mut out, &format!("150 sending ({} bytes)", rest.len()));
                let cut = state.lock().unwrap().cut_next_at.take();
                let sent = cut.map_or(rest, |at| &rest[..at.min(rest.len())]);
                let _ = data.write_all(sent);
                state.lock().unwrap().bytes_sent += sent.len();
                drop(data);
                restart_at = 0;
                if cut.is_some() {
                    "426 connection closed; transfer aborted".to_owned()
                } else {
                    "226 transfer complete".to_owned()
                }
            }
            "QUIT" => {
                let _ = reply(&mut out, "221 bye");
                return;
            }
            _ => "502 not implemented".to_owned(),
        };
        if reply(&mut out, &answer).is_err() {
            return;
        }
    }
}

fn pattern(length: usize, seed: u8) -> Vec<u8> {
    (0..length)
        .map(|index| u8::try_from(index % 251).unwrap() ^ seed)
        .collect()
}

#[test]
fn an_ftp_file_downloads_whole_with_its_modification_time() {
    let server = FtpServer::start();
    let content = pattern(500_000, 1);
    server.put("pub/whole.bin", content.clone(), "20240102030405");
    let harness = Harness::new();
    let finished = harness.run(harness.request(&server.url("/pub/whole.bin"), "whole"));
    let (temp, bytes, validator) = finished.completed();
    assert_eq!(bytes, 500_000);
    assert_file_is(&temp, &content);
    assert_eq!(
        validator.last_modified.as_deref(),
        Some("Tue, 02 Jan 2024 03:04:05 GMT")
    );
    assert_eq!(finished.responded().unwrap().0, Some(500_000));
}

#[test]
fn a_throttled_ftp_download_is_paused_and_resumed_not_refused() {
    let server = FtpServer::start();
    let content = pattern(1 << 20, 4);
    server.put("limited.bin", content.clone(), "20240102030405");
    let harness = Harness::with_config(qmgr_transfer::EngineConfig {
        global_limit: Some(2 << 20),
        ..qmgr_transfer::EngineConfig::default()
    });
    let id = harness.submit(harness.request(&server.url("/limited.bin"), "limited"));
    harness
        .engine
        .set_transfer_limit(id, Some(1 << 19))
        .unwrap();
    let (temp, bytes, _) = harness.wait(id).completed();
    assert_eq!(bytes, 1 << 20);
    assert_file_is(&temp, &content);
}

#[test]
fn an_interrupted_ftp_download_resumes_with_rest_and_only_the_rest() {
    let server = FtpServer::start();
    let content = pattern(800_000, 2);
    server.put("resume.bin", content.clone(), "20240102030405");
    server.cut_next_at(300_000);
    let harness = Harness::new();
    let first = harness.run(harness.request(&server.url("/resume.bin"), "resume"));
    let error = first.failed();
    assert!(error.transient, "{error}");
    let partial = first.partial();
    assert_eq!(partial.bytes, 300_000);

    let mut retry = harness.request(&server.url("/resume.bin"), "resume");
    retry.partial = Some(partial);
    let finished = harness.run(retry);
    let (temp, _, _) = finished.completed();
    assert_file_is(&temp, &content);
    assert_eq!(finished.responded().unwrap().2, 300_000);
    assert!(server.commands().contains(&"REST 300000".to_owned()));
    assert_eq!(server.bytes_sent(), 800_000, "nothing fetched twice");
}

#[test]
fn a_changed_ftp_file_starts_over() {
    let server = FtpServer::start();
    server.put("change.bin", pattern(400_000, 3), "20240102030405");
    server.cut_next_at(100_000);
    let harness = Harness::new();
    let first = harness.run(harness.request(&server.url("/change.bin"), "change"));
    let partial = first.partial();
    let newer = pattern(400_000, 4);
    server.put("change.bin", newer.clone(), "20250101000000");

    let mut retry = harness.request(&server.url("/change.bin"), "change");
    retry.partial = Some(partial);
    let finished = harness.run(retry);
    assert_file_is(&finished.completed().0, &newer);
    let (_, _, resumed_at, restart) = finished.responded().unwrap();
    assert_eq!(
        (resumed_at, restart),
        (0, Some(RestartReason::ValidatorChanged))
    );
}

#[test]
fn a_missing_ftp_file_is_a_permanent_error() {
    let server = FtpServer::start();
    let harness = Harness::new();
    let error = harness
        .run(harness.request(&server.url("/absent.bin"), "absent"))
        .failed();
    assert!(!error.transient, "{error}");
    assert_eq!(error.error.hresult, hresult::HRESULT_FILE_NOT_FOUND);
}
