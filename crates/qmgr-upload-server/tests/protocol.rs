//! The upload server on a real socket, spoken to in raw HTTP/1.1 as BITS clients speak:
//! the packet sequences of [MC-BUP] §4, resynchronisation, overlaps and gaps, the
//! overwrite policies, access, limits, expiry and restarts.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use qmgr_upload_server::{Background, Config, UploadServer};

const PROTOCOL: &str = "{7df0354d-249b-430f-820d-3d2a9bef4931}";

/// A server on 127.0.0.1, with its upload directory and state in a temporary directory.
struct Running {
    background: Option<Background>,
    server: Arc<UploadServer>,
    root: tempfile::TempDir,
}

impl Running {
    fn start(extra_location: &str, extra_global: &str) -> Running {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("uploads")).unwrap();
        Running::start_in(root, extra_location, extra_global)
    }

    fn start_in(root: tempfile::TempDir, extra_location: &str, extra_global: &str) -> Running {
        let text = format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \"{state}\"\n{extra_global}\n\
             [[location]]\nprefix = \"/up/\"\ndirectory = \"{uploads}\"\n{extra_location}\n",
            state = root.path().join("state").display(),
            uploads = root.path().join("uploads").display(),
        );
        let background = Background::start(Config::parse(&text).unwrap()).unwrap();
        Running {
            server: background.server().clone(),
            background: Some(background),
            root,
        }
    }

    /// Stops the server, keeping its directories for the next one.
    fn stop(mut self) -> tempfile::TempDir {
        if let Some(background) = self.background.take() {
            background.stop();
        }
        let root = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.root, root)
    }

    fn uploads(&self) -> PathBuf {
        self.root.path().join("uploads")
    }

    fn connect(&self) -> Connection {
        Connection {
            stream: TcpStream::connect(self.background.as_ref().unwrap().address()).unwrap(),
        }
    }

    /// One packet on a connection of its own.
    fn send(&self, packet: &Packet<'_>) -> Ack {
        self.connect().send(packet)
    }

    /// Create-Session for `path`: the session id.
    fn create(&self, path: &str) -> String {
        let ack = self.send(
            &Packet::new("Create-Session", path).header("BITS-Supported-Protocols", PROTOCOL),
        );
        assert_eq!(ack.status, 200, "{ack:?}");
        ack.header("bits-session-id")
            .expect("a session id")
            .to_owned()
    }

    fn fragment(&self, path: &str, session: &str, data: &[u8], first: u64, total: u64) -> Ack {
        let last = first + data.len() as u64 - 1;
        self.send(
            &Packet::new("Fragment", path)
                .header("BITS-Session-Id", session)
                .header("Content-Range", &format!("bytes {first}-{last}/{total}"))
                .body(data),
        )
    }

    fn close(&self, path: &str, session: &str) -> Ack {
        self.send(&Packet::new("Close-Session", path).header("BITS-Session-Id", session))
    }

    /// The files in the upload directory, partial ones included.
    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.uploads())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

struct Packet<'a> {
    method: &'a str,
    path: &'a str,
    headers: Vec<(String, String)>,
    body: &'a [u8],
    content_length: Option<usize>,
}

impl<'a> Packet<'a> {
    fn new(kind: &str, path: &'a str) -> Packet<'a> {
        Packet {
            method: "BITS_POST",
            path,
            headers: vec![("BITS-Packet-Type".into(), kind.into())],
            body: &[],
            content_length: None,
        }
    }

    fn header(mut self, name: &str, value: &str) -> Packet<'a> {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn body(mut self, body: &'a [u8]) -> Packet<'a> {
        self.body = body;
        self
    }

    /// Claims a Content-Length other than the body's (`usize::MAX`: none at all).
    fn claiming(mut self, length: usize) -> Packet<'a> {
        self.content_length = Some(length);
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\nHost: test\r\n", self.method, self.path);
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        match self.content_length {
            Some(usize::MAX) => {}
            Some(length) => {
                let _ = write!(head, "Content-Length: {length}\r\n");
            }
            None => {
                let _ = write!(head, "Content-Length: {}\r\n", self.body.len());
            }
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(self.body);
        bytes
    }
}

#[derive(Debug)]
struct Ack {
    status: u16,
    headers: HashMap<String, String>,
}

impl Ack {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn received(&self) -> u64 {
        self.header("bits-received-content-range")
            .expect("BITS-Received-Content-Range")
            .parse()
            .unwrap()
    }

    fn error(&self) -> (Option<&str>, Option<&str>) {
        (
            self.header("bits-error-code"),
            self.header("bits-error-context"),
        )
    }

    /// What every answer to a BITS packet is: an Ack without a body.
    fn assert_is_ack(&self) {
        assert_eq!(self.header("bits-packet-type"), Some("Ack"), "{self:?}");
        assert_eq!(self.header("content-length"), Some("0"), "{self:?}");
    }
}

struct Connection {
    stream: TcpStream,
}

impl Connection {
    fn send(&mut self, packet: &Packet<'_>) -> Ack {
        self.stream.write_all(&packet.bytes()).unwrap();
        self.read_answer()
    }

    fn read_answer(&mut self) -> Ack {
        let (status_line, headers) = read_head(&mut self.stream);
        let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        Ack { status, headers }
    }
}

/// A message head: its first line and its headers, names in lower case.
fn read_head(stream: &mut TcpStream) -> (String, HashMap<String, String>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = stream.read(&mut byte).unwrap();
        assert_eq!(
            read,
            1,
            "the peer closed the connection; got {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let text = String::from_utf8(head).unwrap();
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap().to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    (first, headers)
}

fn data(length: usize) -> Vec<u8> {
    (0..length)
        .map(|i| u8::try_from((i * 7 + i / 251) % 256).expect("below 256"))
        .collect()
}

#[test]
fn the_simple_upload_sequence_of_the_specification_publishes_the_file() {
    let server = Running::start("", "");
    let body = data(4892);
    // [MC-BUP] §4.1: Create-Session, Fragment, Ping, Close-Session on one connection.
    let mut connection = server.connect();
    let ping = connection.send(&Packet::new("Ping", "/up/report.dmp"));
    ping.assert_is_ack();
    assert_eq!(ping.status, 200);
    let created = connection.send(
        &Packet::new("Create-Session", "/up/report.dmp")
            .header("BITS-Supported-Protocols", PROTOCOL)
            .header("Content-Name", "report.dmp"),
    );
    created.assert_is_ack();
    assert_eq!(created.status, 200);
    assert_eq!(created.header("bits-protocol"), Some(PROTOCOL));
    assert_eq!(created.header("accept-encoding"), Some("identity"));
    let session = created.header("bits-session-id").unwrap().to_owned();
    let fragment = connection.send(
        &Packet::new("Fragment", "/up/report.dmp")
            .header("BITS-Session-Id", &session)
            .header("Content-Name", "report.dmp")
            .header("Content-Range", "bytes 0-4891/4892")
            .body(&body),
    );
    fragment.assert_is_ack();
    assert_eq!(fragment.status, 200);
    assert_eq!(fragment.received(), 4892);
    assert_eq!(fragment.header("bits-session-id"), Some(session.as_str()));
    assert_eq!(fragment.header("bits-reply-url"), None);
    // Not published before Close-Session.
    assert!(!server.uploads().join("report.dmp").exists());
    let ping =
        connection.send(&Packet::new("PING", "/up/report.dmp").header("BITS-Session-Id", &session));
    assert_eq!(ping.status, 200);
    let closed = connection
        .send(&Packet::new("Close-Session", "/up/report.dmp").header("BITS-Session-Id", &session));
    closed.assert_is_ack();
    assert_eq!(closed.status, 200);
    assert_eq!(
        std::fs::read(server.uploads().join("report.dmp")).unwrap(),
        body
    );
    assert_eq!(server.files(), ["report.dmp"], "no partial file is left");
    assert_eq!(server.server.session_count(), 0);
    // The session is gone.
    let again = server.close("/up/report.dmp", &session);
    assert_eq!(again.status, 500);
    assert_eq!(again.error(), (Some("0x8020001F"), Some("0x00000005")));
}

#[test]
fn fragments_resynchronise_on_overlaps_gaps_and_drops() {
    let server = Running::start("", "");
    let body = data(1000);
    let session = server.create("/up/a.bin");
    assert_eq!(
        server
            .fragment("/up/a.bin", &session, &body[..300], 0, 1000)
            .received(),
        300
    );
    // An overlap is trimmed: only the new bytes are written.
    assert_eq!(
        server
            .fragment("/up/a.bin", &session, &body[200..500], 200, 1000)
            .received(),
        500
    );
    // A gap is refused with where to go on from.
    let gap = server.fragment("/up/a.bin", &session, &body[700..800], 700, 1000);
    gap.assert_is_ack();
    assert_eq!(gap.status, 416);
    assert_eq!(gap.received(), 500);
    assert_eq!(gap.error(), (Some("0x00000000"), Some("0x00000005")));
    // A fragment cut off mid-body: what arrived is kept.
    {
        let mut connection = server.connect();
        let packet = Packet::new("Fragment", "/up/a.bin")
            .header("BITS-Session-Id", &session)
            .header("Content-Range", "bytes 500-699/1000")
            .body(&body[500..600])
            .claiming(200);
        connection.stream.write_all(&packet.bytes()).unwrap();
        connection
            .stream
            .shutdown(std::net::Shutdown::Write)
            .unwrap();
        let mut rest = Vec::new();
        let _ = connection.stream.read_to_end(&mut rest);
    }
    let resumed = server.fragment("/up/a.bin", &session, &body[500..1000], 500, 1000);
    assert_eq!(resumed.status, 200, "{resumed:?}");
    assert_eq!(resumed.received(), 1000);
    // The last fragment again, after completion: 200 with the whole size.
    assert_eq!(
        server
            .fragment("/up/a.bin", &session, &body[900..], 900, 1000)
            .received(),
        1000
    );
    // The size may not change.
    let changed = server.fragment("/up/a.bin", &session, &body[..10], 0, 2000);
    assert_eq!(changed.status, 400);
    assert_eq!(changed.error(), (Some("0x80070057"), Some("0x00000005")));
    assert_eq!(server.close("/up/a.bin", &session).status, 200);
    assert_eq!(std::fs::read(server.uploads().join("a.bin")).unwrap(), body);
}

#[test]
fn fragments_larger_than_the_write_buffers_arrive_whole() {
    let server = Running::start("", "");
    let body = data(9 * 1024 * 1024 + 123);
    let session = server.create("/up/large.bin");
    let total = body.len() as u64;
    let first = 3 * 1024 * 1024 + 7;
    assert_eq!(
        server
            .fragment("/up/large.bin", &session, &body[..first], 0, total)
            .received(),
        first as u64
    );
    // An overlap that is not a multiple of anything, then the rest in one.
    let again = 2 * 1024 * 1024 + 1;
    let last = server.fragment(
        "/up/large.bin",
        &session,
        &body[again..],
        again as u64,
        total,
    );
    assert_eq!(last.status, 200, "{last:?}");
    assert_eq!(last.received(), total);
    assert_eq!(server.close("/up/large.bin", &session).status, 200);
    assert!(std::fs::read(server.uploads().join("large.bin")).unwrap() == body);
}

#[test]
fn a_fragment_within_a_minute_of_the_last_leaves_the_record_alone() {
    let server = Running::start("", "");
    let body = data(300);
    let session = server.create("/up/quiet");
    let record = server
        .root
        .path()
        .join("state/sessions")
        .join(format!("{}.json", hex_digits(&session)));
    server.fragment("/up/quiet", &session, &body[..100], 0, 300);
    // The first fragment recorded the size; the next ones only move the idle clock,
    // which may lag a minute: the record is not made again. (A record made again is a
    // new file renamed over the old, which a second link keeps.)
    let kept = server.root.path().join("record-as-it-was");
    std::fs::hard_link(&record, &kept).unwrap();
    server.fragment("/up/quiet", &session, &body[100..200], 100, 300);
    server.fragment("/up/quiet", &session, &body[200..], 200, 300);
    let inode =
        |path: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap());
    assert_eq!(inode(&record), inode(&kept));
    assert_eq!(server.close("/up/quiet", &session).status, 200);
    assert!(!record.exists());
}

fn hex_digits(session: &str) -> String {
    session
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_ascii_lowercase()
}

#[test]
fn malformed_packets_get_400_and_foreign_methods_405() {
    let server = Running::start("max_upload_size = 100", "max_fragment_size = 50");
    let session = server.create("/up/x");
    for (packet, why) in [
        (Packet::new("Upload", "/up/x"), "unknown packet"),
        (
            Packet::new("Create-Session", "/up/x").header(
                "BITS-Supported-Protocols",
                "{00000000-0000-0000-0000-000000000000}",
            ),
            "no common protocol",
        ),
        (Packet::new("Create-Session", "/up/x"), "no protocols"),
        (
            Packet::new("Create-Session", "/up/dir/").header("BITS-Supported-Protocols", PROTOCOL),
            "a directory",
        ),
        (Packet::new("Ping", "/up/x").body(b"xx"), "a body on Ping"),
        (
            Packet::new("Fragment", "/up/x")
                .header("BITS-Session-Id", &session)
                .header("Content-Range", "bytes 0-9/10")
                .body(b"short"),
            "length and range disagree",
        ),
        (
            Packet::new("Fragment", "/up/x")
                .header("BITS-Session-Id", &session)
                .header("Content-Range", "bytes 5-0/10")
                .body(b"x"),
            "a backwards range",
        ),
        (
            Packet::new("Ping", "/up/x").claiming(usize::MAX),
            "no Content-Length",
        ),
    ] {
        let ack = server.send(&packet);
        ack.assert_is_ack();
        assert_eq!(ack.status, 400, "{why}: {ack:?}");
        assert_eq!(
            ack.error(),
            (Some("0x80070057"), Some("0x00000005")),
            "{why}"
        );
    }
    let large = server.fragment("/up/x", &session, &[0; 20], 0, 101);
    assert_eq!((large.status, large.error().0), (500, Some("0x80200020")));
    let too_long_fragment = server.fragment("/up/x", &session, &[0; 60], 0, 100);
    assert_eq!(too_long_fragment.status, 413);
    let mut put = server.connect();
    put.stream
        .write_all(b"PUT /up/x HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let answer = put.read_answer();
    assert_eq!(answer.status, 405);
    assert_eq!(answer.header("allow"), Some("BITS_POST, GET, HEAD"));
    // GET serves replies only.
    assert_eq!(get(&server, "/up/x", None).0, 404);
    let elsewhere = server.send(&Packet::new("Ping", "/other/x"));
    assert_eq!(elsewhere.status, 404);
}

#[test]
fn names_never_leave_the_upload_directory() {
    let server = Running::start("", "");
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), server.uploads().join("link")).unwrap();
    std::fs::create_dir(server.uploads().join("sub")).unwrap();
    let create = |path: &str| {
        server
            .send(&Packet::new("Create-Session", path).header("BITS-Supported-Protocols", PROTOCOL))
    };
    assert_eq!(create("/up/../escape").status, 400);
    assert_eq!(create("/up/%2e%2e/escape").status, 400);
    assert_eq!(create("/up/sub/..%2f..%2fescape").status, 400);
    assert_eq!(create("/up/.bits-0123.part").status, 400);
    let through_link = create("/up/link/x");
    assert_eq!(
        through_link.status, 403,
        "a symlinked directory is followed: {through_link:?}"
    );
    assert_eq!(create("/up/missing/x").status, 404);
    assert_eq!(create("/up/sub/fine").status, 200);
    assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
}

#[test]
fn an_existing_destination_is_refused_replaced_or_kept_as_configured() {
    let refuse = Running::start("", "");
    std::fs::write(refuse.uploads().join("taken"), b"old").unwrap();
    let refused = refuse.send(
        &Packet::new("Create-Session", "/up/taken").header("BITS-Supported-Protocols", PROTOCOL),
    );
    assert_eq!(refused.status, 409);
    assert_eq!(refused.error(), (Some("0x80070050"), Some("0x00000005")));
    // A file that appears during the upload is not replaced either.
    let session = refuse.create("/up/late");
    refuse.fragment("/up/late", &session, b"new", 0, 3);
    std::fs::write(refuse.uploads().join("late"), b"first").unwrap();
    let closed = refuse.close("/up/late", &session);
    assert_eq!((closed.status, closed.error().0), (409, Some("0x80070050")));
    assert_eq!(
        std::fs::read(refuse.uploads().join("late")).unwrap(),
        b"first"
    );
    assert_eq!(
        refuse.files(),
        ["late", "taken"],
        "the refused upload's part is gone"
    );

    let replace = Running::start("overwrite = \"replace\"", "");
    std::fs::write(replace.uploads().join("taken"), b"old").unwrap();
    let session = replace.create("/up/taken");
    replace.fragment("/up/taken", &session, b"new!", 0, 4);
    assert_eq!(replace.close("/up/taken", &session).status, 200);
    assert_eq!(
        std::fs::read(replace.uploads().join("taken")).unwrap(),
        b"new!"
    );

    let keep = Running::start("overwrite = \"keep-both\"", "");
    std::fs::write(keep.uploads().join("log.txt"), b"old").unwrap();
    for round in 1..=2 {
        let session = keep.create("/up/log.txt");
        keep.fragment(
            "/up/log.txt",
            &session,
            format!("new {round}").as_bytes(),
            0,
            5,
        );
        assert_eq!(keep.close("/up/log.txt", &session).status, 200);
    }
    assert_eq!(keep.files(), ["log-1.txt", "log-2.txt", "log.txt"]);
    assert_eq!(
        std::fs::read(keep.uploads().join("log.txt")).unwrap(),
        b"old"
    );
    assert_eq!(
        std::fs::read(keep.uploads().join("log-2.txt")).unwrap(),
        b"new 2"
    );
}

#[test]
fn cancel_and_early_close_leave_nothing_behind() {
    let server = Running::start("", "");
    let cancelled = server.create("/up/c");
    server.fragment("/up/c", &cancelled, b"abc", 0, 10);
    let ack =
        server.send(&Packet::new("Cancel-Session", "/up/c").header("BITS-Session-Id", &cancelled));
    ack.assert_is_ack();
    assert_eq!(ack.status, 200);
    let closed_early = server.create("/up/d");
    server.fragment("/up/d", &closed_early, b"abc", 0, 10);
    assert_eq!(server.close("/up/d", &closed_early).status, 200);
    assert!(server.files().is_empty(), "{:?}", server.files());
    let gone = server.fragment("/up/c", &cancelled, b"d", 3, 10);
    assert_eq!((gone.status, gone.error().0), (500, Some("0x8020001F")));
}

#[test]
fn sessions_outlive_a_restart_and_idle_ones_expire() {
    let server = Running::start("", "session_timeout = \"1h\"");
    let body = data(600);
    let session = server.create("/up/kept");
    server.fragment("/up/kept", &session, &body[..250], 0, 600);
    let idle = server.create("/up/idle");
    let root = server.stop();

    let server = Running::start_in(root, "", "session_timeout = \"1h\"");
    assert_eq!(server.server.session_count(), 2);
    // The client resends from its own offset; the server says where it stands.
    let resumed = server.fragment("/up/kept", &session, &body[200..], 200, 600);
    assert_eq!(resumed.received(), 600);
    assert_eq!(server.close("/up/kept", &session).status, 200);
    assert_eq!(std::fs::read(server.uploads().join("kept")).unwrap(), body);

    let later = qmgr_upload_server::session::now_seconds() + 3601;
    assert_eq!(server.server.expire_idle_sessions(later), 1);
    assert_eq!(
        server.files(),
        ["kept"],
        "the idle session's part is deleted"
    );
    let expired = server.close("/up/idle", &idle);
    assert_eq!(
        (expired.status, expired.error().0),
        (500, Some("0x8020001F"))
    );
}

#[test]
fn basic_users_upload_into_their_own_directories() {
    let root = tempfile::tempdir().unwrap();
    let uploads = root.path().join("uploads");
    for user in ["alice", "bob"] {
        std::fs::create_dir_all(uploads.join(user)).unwrap();
    }
    let passwords = root.path().join("htpasswd");
    let hash = |password: &str| bcrypt::hash(password, 4).unwrap();
    std::fs::write(
        &passwords,
        format!("alice:{}\nbob:{}\n", hash("a-secret"), hash("b-secret")),
    )
    .unwrap();
    let server = Running::start_in(
        root,
        &format!(
            "access = \"basic\"\npassword_file = \"{}\"\nper_user_directories = true",
            passwords.display()
        ),
        "",
    );
    let authorization = |user: &str, password: &str| {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    };
    let anonymous = server.send(&Packet::new("Ping", "/up/x"));
    assert_eq!(anonymous.status, 401);
    assert!(
        anonymous
            .header("www-authenticate")
            .is_some_and(|value| value.starts_with("Basic"))
    );
    let wrong = server.send(
        &Packet::new("Ping", "/up/x").header("Authorization", &authorization("alice", "nope")),
    );
    assert_eq!(wrong.status, 401);

    let alice = authorization("alice", "a-secret");
    let created = server.send(
        &Packet::new("Create-Session", "/up/notes.txt")
            .header("Authorization", &alice)
            .header("BITS-Supported-Protocols", PROTOCOL),
    );
    assert_eq!(created.status, 200);
    let session = created.header("bits-session-id").unwrap().to_owned();
    // Bob cannot use Alice's session, even knowing its id.
    let bob = authorization("bob", "b-secret");
    let stolen = server.send(
        &Packet::new("Fragment", "/up/notes.txt")
            .header("Authorization", &bob)
            .header("BITS-Session-Id", &session)
            .header("Content-Range", "bytes 0-3/4")
            .body(b"evil"),
    );
    assert_eq!((stolen.status, stolen.error().0), (500, Some("0x8020001F")));
    let fragment = server.send(
        &Packet::new("Fragment", "/up/notes.txt")
            .header("Authorization", &alice)
            .header("BITS-Session-Id", &session)
            .header("Content-Range", "bytes 0-3/4")
            .body(b"mine"),
    );
    assert_eq!(fragment.status, 200);
    let closed = server.send(
        &Packet::new("Close-Session", "/up/notes.txt")
            .header("Authorization", &alice)
            .header("BITS-Session-Id", &session),
    );
    assert_eq!(closed.status, 200);
    assert_eq!(
        std::fs::read(server.uploads().join("alice/notes.txt")).unwrap(),
        b"mine"
    );
    assert!(!server.uploads().join("bob/notes.txt").exists());
}

#[test]
fn the_session_limits_answer_503() {
    let server = Running::start(
        "",
        "max_sessions_per_client = 2\nhost_id = \"node7.example\"\nhost_id_fallback_timeout = 600",
    );
    let first = server
        .send(&Packet::new("Create-Session", "/up/1").header("BITS-Supported-Protocols", PROTOCOL));
    assert_eq!(first.header("bits-host-id"), Some("node7.example"));
    assert_eq!(first.header("bits-host-id-fallback-timeout"), Some("600"));
    server.create("/up/2");
    let third = server
        .send(&Packet::new("Create-Session", "/up/3").header("BITS-Supported-Protocols", PROTOCOL));
    assert_eq!(third.status, 503);
    assert_eq!(third.error(), (Some("0x80070045"), Some("0x00000005")));
}

/// The partial files stay inside the location and are never published half.
#[test]
fn nothing_is_visible_under_the_final_name_before_close() {
    let server = Running::start("", "");
    let session = server.create("/up/big");
    server.fragment("/up/big", &session, &data(100), 0, 200);
    let names = server.files();
    assert_eq!(names.len(), 1);
    assert!(
        names[0].starts_with(".bits-")
            && Path::new(&names[0])
                .extension()
                .is_some_and(|e| e == "part"),
        "{names:?}"
    );
    assert!(!Path::new(&server.uploads().join("big")).exists());
}

/// A GET on the server, answered with its status, headers and body.
fn get(
    server: &Running,
    path: &str,
    range: Option<&str>,
) -> (u16, HashMap<String, String>, Vec<u8>) {
    let mut connection = server.connect();
    let range = range.map(|r| format!("Range: {r}\r\n")).unwrap_or_default();
    connection
        .stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: test\r\n{range}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    let ack = connection.read_answer();
    let mut body = Vec::new();
    connection.stream.read_to_end(&mut body).unwrap();
    (ack.status, ack.headers, body)
}

#[test]
fn upload_reply_runs_the_reply_command_once_and_serves_the_reply_with_ranges() {
    let runs = tempfile::tempdir().unwrap();
    let counter = runs.path().join("runs");
    let script = format!(
        "echo run >> {}; [ \"$(wc -l < {})\" -ge 2 ] || exit 3; \
         [ \"$BITS_REQUEST_DATAFILE_NAME\" = \"$1\" ] || exit 4; tr a-z A-Z < \"$1\" > \"$2\"",
        counter.display(),
        counter.display()
    );
    let server = Running::start(
        &format!("reply_command = [\"/bin/sh\", \"-c\", {script:?}, \"reply-maker\"]"),
        "",
    );
    let session = server.create("/up/question.txt");
    let first = server.fragment("/up/question.txt", &session, b"hello ", 0, 11);
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("bits-reply-url"),
        None,
        "no reply before the last byte"
    );
    // The command fails the first time: the server application's error, context 7.
    let failed = server.fragment("/up/question.txt", &session, b"world", 6, 11);
    assert_eq!(failed.status, 500);
    assert_eq!(failed.error().1, Some("0x00000007"));
    // The client sends the last fragment again; now the reply is made.
    let last = server.fragment("/up/question.txt", &session, b"world", 6, 11);
    assert_eq!(last.status, 200, "{last:?}");
    let url = last
        .header("bits-reply-url")
        .expect("a reply URL")
        .to_owned();
    assert!(url.starts_with("/up/.bits-reply/"), "{url}");
    let again = server.fragment("/up/question.txt", &session, b"world", 6, 11);
    assert_eq!(again.header("bits-reply-url"), Some(url.as_str()));
    assert_eq!(
        std::fs::read_to_string(&counter).unwrap().lines().count(),
        2,
        "made once"
    );

    let (status, headers, body) = get(&server, &url, None);
    assert_eq!((status, body.as_slice()), (200, b"HELLO WORLD".as_slice()));
    assert!(headers.contains_key("etag"));
    let (status, headers, body) = get(&server, &url, Some("bytes=6-"));
    assert_eq!((status, body.as_slice()), (206, b"WORLD".as_slice()));
    assert_eq!(
        headers.get("content-range").map(String::as_str),
        Some("bytes 6-10/11")
    );
    assert_eq!(get(&server, &url, Some("bytes=11-")).0, 416);
    assert_eq!(get(&server, "/up/.bits-reply/00ff", None).0, 404);

    assert_eq!(server.close("/up/question.txt", &session).status, 200);
    assert_eq!(
        std::fs::read(server.uploads().join("question.txt")).unwrap(),
        b"hello world"
    );
    assert_eq!(
        get(&server, &url, None).0,
        404,
        "the reply goes with its session"
    );
}

#[test]
fn a_reply_command_that_hangs_is_stopped_and_answered_408() {
    let server = Running::start(
        "reply_command = [\"/bin/sh\", \"-c\", \"sleep 60\", \"slow\"]",
        "reply_timeout = \"200ms\"",
    );
    let session = server.create("/up/slow");
    let ack = server.fragment("/up/slow", &session, b"x", 0, 1);
    assert_eq!(ack.status, 408);
    assert_eq!(ack.error(), (Some("0x800705B4"), Some("0x00000007")));
}

#[test]
fn a_session_closed_without_fragments_publishes_an_empty_file() {
    let server = Running::start("", "");
    let session = server.create("/up/empty");
    assert_eq!(server.close("/up/empty", &session).status, 200);
    assert_eq!(std::fs::read(server.uploads().join("empty")).unwrap(), b"");
    assert_eq!(server.files(), ["empty"]);
}

/// A one-request-at-a-time HTTP back-end on its own thread: it records each request's
/// headers and body and answers as `answer` says.
struct Backend {
    address: std::net::SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
}

/// A request the back-end got: its headers (names in lower case) and body.
type Seen = (HashMap<String, String>, Vec<u8>);

impl Backend {
    fn start(answer: fn(&HashMap<String, String>, &[u8]) -> String) -> Backend {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (_, headers) = read_head(&mut stream);
                let length: usize = headers
                    .get("content-length")
                    .and_then(|value| value.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; length];
                stream.read_exact(&mut body).unwrap();
                let reply = answer(&headers, &body);
                record.lock().unwrap().push((headers, body));
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        Backend { address, seen }
    }

    fn url(&self) -> String {
        format!("http://{}/notify", self.address)
    }
}

#[test]
fn an_http_back_end_gets_the_upload_by_reference_or_by_value_and_makes_the_reply() {
    // By reference: the back-end reads the named file and writes the reply file.
    let backend = Backend::start(|headers, _| {
        let request = std::fs::read(&headers["bits-request-datafile-name"]).unwrap();
        let reply: Vec<u8> = request.iter().rev().copied().collect();
        std::fs::write(&headers["bits-response-datafile-name"], reply).unwrap();
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_owned()
    });
    let server = Running::start(&format!("reply_url = \"{}\"", backend.url()), "");
    let session = server.create("/up/by-reference");
    let last = server.fragment("/up/by-reference", &session, b"abc", 0, 3);
    assert_eq!(last.status, 200, "{last:?}");
    let url = last.header("bits-reply-url").unwrap().to_owned();
    assert_eq!(get(&server, &url, None).2, b"cba");
    let seen = backend.seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0]
            .0
            .get("bits-original-request-url")
            .map(String::as_str),
        Some("/up/by-reference")
    );
    drop(seen);

    // By value: the file is the body, the reply the response's body.
    let backend = Backend::start(|_, body| {
        let reply = format!("got {} bytes", body.len());
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{reply}",
            reply.len()
        )
    });
    let server = Running::start(
        &format!(
            "reply_url = \"{}\"\nreply_notification = \"value\"",
            backend.url()
        ),
        "",
    );
    let session = server.create("/up/by-value");
    let last = server.fragment("/up/by-value", &session, &data(5000), 0, 5000);
    let url = last.header("bits-reply-url").unwrap().to_owned();
    assert_eq!(get(&server, &url, None).2, b"got 5000 bytes");
    assert_eq!(backend.seen.lock().unwrap()[0].1, data(5000));

    // A static reply URL is handed to the client as it is.
    let backend = Backend::start(|_, _| {
        "HTTP/1.1 200 OK\r\nBITS-Static-Response-URL: http://elsewhere.example/r\r\nContent-Length: 0\r\n\r\n"
            .to_owned()
    });
    let server = Running::start(&format!("reply_url = \"{}\"", backend.url()), "");
    let session = server.create("/up/static");
    let last = server.fragment("/up/static", &session, b"x", 0, 1);
    assert_eq!(
        last.header("bits-reply-url"),
        Some("http://elsewhere.example/r")
    );

    // A back-end that refuses is the server application's error.
    let backend =
        Backend::start(|_, _| "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n".to_owned());
    let server = Running::start(&format!("reply_url = \"{}\"", backend.url()), "");
    let session = server.create("/up/refused");
    let last = server.fragment("/up/refused", &session, b"x", 0, 1);
    assert_eq!(last.status, 503);
    assert_eq!(last.error().1, Some("0x00000007"));
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    /// `None` (after saying why) where mounting is not allowed: only root may mount.
    fn mount(path: &Path, size: &str) -> Option<SmallDisk> {
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .is_ok_and(|status| status.success());
        if !mounted {
            println!("skipped: mounting a small tmpfs needs root");
            return None;
        }
        Some(SmallDisk {
            path: path.to_owned(),
        })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.path)
            .status();
    }
}

#[test]
fn a_full_disk_answers_disk_full_and_publishes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let uploads = root.path().join("uploads");
    std::fs::create_dir(&uploads).unwrap();
    let Some(disk) = SmallDisk::mount(&uploads, "256k") else {
        return;
    };
    let server = Running::start_in(root, "", "");
    let body = data(1024 * 1024);
    let session = server.create("/up/big.bin");
    let mut offset = 0;
    let full = loop {
        let chunk = &body[offset..offset + 128 * 1024];
        let ack = server.fragment(
            "/up/big.bin",
            &session,
            chunk,
            offset as u64,
            body.len() as u64,
        );
        if ack.status != 200 {
            break ack;
        }
        offset = usize::try_from(ack.received()).unwrap();
        assert!(offset < body.len(), "1 MiB fitted on a 256 KiB disk");
    };
    assert_eq!(full.status, 500, "{full:?}");
    assert_eq!(full.error(), (Some("0x80070070"), Some("0x00000005")));
    // What the server holds is whole up to where it says, and nothing is published.
    assert_eq!(server.close("/up/big.bin", &session).status, 200);
    assert!(!server.uploads().join("big.bin").exists());
    assert!(server.files().is_empty(), "{:?}", server.files());
    // Unmounted before the temporary directory goes, so all of it can.
    let root = server.stop();
    drop(disk);
    drop(root);
}

#[test]
fn a_disk_filling_up_mid_fragment_keeps_the_writes_before_it() {
    let root = tempfile::tempdir().unwrap();
    let uploads = root.path().join("uploads");
    std::fs::create_dir(&uploads).unwrap();
    let Some(disk) = SmallDisk::mount(&uploads, "1536k") else {
        return;
    };
    let server = Running::start_in(root, "", "");
    let body = data(4 * 1024 * 1024);
    let session = server.create("/up/big.bin");
    let total = body.len() as u64;
    let full = server.fragment("/up/big.bin", &session, &body, 0, total);
    assert_eq!(full.status, 500, "{full:?}");
    assert_eq!(full.error(), (Some("0x80070070"), Some("0x00000005")));
    // A gap tells where the server stands: at the end of its last whole write, which the
    // partial file holds and nothing more (not the part of the write that failed).
    let gap = server.fragment(
        "/up/big.bin",
        &session,
        &body[3_000_000..],
        3_000_000,
        total,
    );
    assert_eq!(gap.status, 416, "{gap:?}");
    let held = usize::try_from(gap.received()).unwrap();
    assert!(held > 0 && held < 1536 * 1024, "{held}");
    let parts = server.files();
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert!(std::fs::read(server.uploads().join(&parts[0])).unwrap() == body[..held]);
    assert_eq!(server.close("/up/big.bin", &session).status, 200);
    assert!(server.files().is_empty(), "{:?}", server.files());
    let root = server.stop();
    drop(disk);
    drop(root);
}
