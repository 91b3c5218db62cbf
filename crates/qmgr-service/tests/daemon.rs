//! qmgrd as a real process: jobs outlive the programs that made them, a job's bandwidth
//! limit slows its transfer, racing clients start one service, and garbage on the socket harms
//! nobody. Each test runs its own instance in fresh XDG directories and stops it. Transfers
//! through SIGKILLs of the service are `crash_loops.rs`'s.

mod common;

use common::Instance;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use qmgr_core::paths::StatePaths;
use qmgr_core::service::{JobChange, NewFile, QueueServiceExt};
use qmgr_core::store::Store;
use qmgr_core::{Guid, JobState, JobType};
use qmgr_ipc::frame::{MAX_FRAME_LEN, MAX_HANDSHAKE_FRAME_LEN, read_frame};
use qmgr_ipc::message::ServiceMessage;
use qmgr_ipc::{Client, Launcher};
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

const CHILD_ENV: &str = "QMGR_DAEMON_TEST_CHILD";

/// The first process of `a_job_outlives_the_process_that_created_it`: creates and resumes
/// a job, prints its id and exits without waiting.
#[test]
#[ignore = "runs only as a child process of a_job_outlives_the_process_that_created_it"]
fn creator_process() {
    let Some(spec) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let spec = spec.into_string().unwrap();
    let mut lines = spec.lines();
    let root = PathBuf::from(lines.next().unwrap());
    let env = common::env_of(&root);
    let paths = StatePaths::from_env_with(|name| {
        env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    })
    .unwrap();
    let launcher = env
        .iter()
        .cloned()
        .fold(Launcher::from_process(), |l, (n, v)| l.env(n, v));
    let client = Client::connect_or_spawn_with(&paths, launcher).unwrap();
    let id = client
        .create_job("outlives its creator", JobType::Download)
        .unwrap();
    let files = lines
        .map(|line| {
            let (remote, local) = line.split_once(' ').unwrap();
            NewFile {
                remote_name: remote.into(),
                local_name: local.into(),
                ranges: None,
            }
        })
        .collect();
    client.add_files(id, files).unwrap();
    client.resume(id).unwrap();
    println!("JOB {id}");
}

#[test]
fn a_job_outlives_the_process_that_created_it() {
    let server = TestServer::start();
    let instance = Instance::new();
    let downloads = instance.downloads();
    let files: Vec<(String, PathBuf, String, u64)> =
        [("one", 300_000u64), ("two", 1), ("three", 2_000_000)]
            .iter()
            .map(|(name, size)| {
                let path = format!("/data/{size}/{name}");
                (
                    server.url(&format!("{path}?rate=4000000")),
                    downloads.join(name),
                    path,
                    *size,
                )
            })
            .collect();
    let spec = std::iter::once(instance.root().display().to_string())
        .chain(
            files
                .iter()
                .map(|(url, local, _, _)| format!("{url} {}", local.display())),
        )
        .collect::<Vec<_>>()
        .join("\n");
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "creator_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, spec)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    // libtest prints the test's name on the same line as its output.
    let Some(id) = stdout
        .split("JOB ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
    else {
        panic!(
            "the creator printed no job:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    };
    let id: Guid = id.parse().unwrap();

    // A second process (this one), on a new connection, sees the job through to the end.
    let client = instance.client();
    let state = client.job(id).unwrap().job.state;
    assert!(
        state != JobState::Suspended,
        "the job was resumed, not left suspended"
    );
    assert_eq!(
        common::wait_for_state_within(&client, id, JobState::Transferred, Duration::from_secs(60))
            .job
            .state,
        JobState::Transferred
    );
    client.complete(id).unwrap();
    for (_, local, path, size) in &files {
        assert_eq!(
            std::fs::read(local).unwrap(),
            expected_body(path, INITIAL_VERSION, *size),
            "{}",
            local.display()
        );
    }
    assert_eq!(instance.daemons().len(), 1);
}

#[test]
fn a_job_bandwidth_limit_slows_its_transfer_to_the_rate() {
    const SIZE: u64 = 1_000_000;
    const CAP: u64 = 250_000;
    let server = TestServer::start();
    let instance = Instance::new();
    let local = instance.downloads().join("capped.bin");
    let path = "/data/1000000/capped";
    let client = instance.client();
    // The server answers after a pause: whatever the order in which the service hands the
    // transfer and its limit to the engine, no byte moves before the limit is in place.
    let id = common::one_file_job(
        &client,
        &server.url(&format!("{path}?delay_ms=300")),
        &local,
    );
    client
        .set_job(id, JobChange::BandwidthLimit(Some(CAP)))
        .unwrap();
    let started = Instant::now();
    client.resume(id).unwrap();
    let view =
        common::wait_for_state_within(&client, id, JobState::Transferred, Duration::from_secs(60));
    let took = started.elapsed();
    assert_eq!(
        view.job.state,
        JobState::Transferred,
        "{:?}",
        view.job.error
    );
    client.complete(id).unwrap();
    assert!(
        std::fs::read(&local).unwrap() == expected_body(path, INITIAL_VERSION, SIZE),
        "the file differs from the server's"
    );
    // 80% of the ideal time: the cap's burst (a quarter second of its rate) and one chunk
    // of debt fit in the rest, and a slow machine can only take longer.
    let slowest_allowed = Duration::from_millis(SIZE * 1000 / CAP * 8 / 10);
    assert!(
        took >= slowest_allowed,
        "{SIZE} bytes under a job limit of {CAP} B/s took only {took:?}"
    );
}

#[test]
fn racing_clients_start_exactly_one_service() {
    let instance = Instance::new();
    let paths = instance.paths();
    let env = instance.env();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let paths = paths.clone();
            let env = env.clone();
            std::thread::spawn(move || {
                let launcher = env
                    .into_iter()
                    .fold(Launcher::from_process(), |l, (n, v)| l.env(n, v));
                let client = Client::connect_or_spawn_with(&paths, launcher).unwrap();
                client.ping().unwrap()
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(instance.daemons().len(), 1, "one qmgrd for one instance");
}

/// How one garbage connection ended.
#[derive(Default, Debug)]
struct Closes {
    /// The service closed after a whole first frame that is not a Hello (or a length
    /// prefix beyond the handshake limit), without being asked to.
    on_a_bad_frame: usize,
    /// The payload happened to read as a Hello of another protocol version: the service
    /// said why it refused and closed.
    refused: usize,
    /// The frame was cut short and the client ended its side: the service closed too.
    inside_a_frame: usize,
}

/// Reads from `stream` until the service closes it; anything but a close (an answer other
/// than a refusal, or silence until the read timeout) fails the test.
fn expect_closed_by_service(mut stream: UnixStream, connection: usize) -> bool {
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        // A service that closes with bytes of ours unread resets the connection.
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => false,
        Err(error) => panic!("connection {connection} was not closed by the service: {error}"),
        Ok(_) if answer.is_empty() => false,
        Ok(_) => {
            let message: ServiceMessage = read_frame(&mut answer.as_slice(), MAX_FRAME_LEN)
                .unwrap_or_else(|error| panic!("connection {connection}: {error}"));
            assert!(
                matches!(message, ServiceMessage::Refused(_)),
                "connection {connection} was answered: {message:?}"
            );
            true
        }
    }
}

#[test]
fn garbage_frames_close_only_their_connection() {
    const CONNECTIONS: usize = 6_000;
    let instance = Instance::new();
    let client = instance.client();
    let id = client.create_job("bystander", JobType::Download).unwrap();
    let socket = instance.paths().socket_path();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut closes = Closes::default();
    let started = Instant::now();
    for connection in 0..CONNECTIONS {
        let Ok(mut stream) = UnixStream::connect(&socket) else {
            panic!("qmgrd stopped accepting after {connection} connections")
        };
        stream
            .set_write_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        // Longer than the service's handshake timeout: a connection it forgot fails here.
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        // The service reads only the first frame of a connection that has not said Hello:
        // a random length (mostly beyond the handshake limit), a whole random payload, or
        // (one time in four) a frame cut short; after a whole one, more garbage it must never
        // read.
        let body_len = usize::try_from(next() % 64).unwrap();
        let declared = match next() % 4 {
            0 => u32::try_from(next() % u64::from(u32::MAX)).unwrap(),
            1 => u32::try_from(body_len + 10).unwrap(),
            _ => u32::try_from(body_len).unwrap(),
        };
        let mut bytes = declared.to_le_bytes().to_vec();
        bytes.extend((0..body_len).map(|_| u8::try_from(next() % 256).unwrap()));
        let cut = if next() % 4 == 0 {
            1 + usize::try_from(next()).unwrap() % bytes.len()
        } else {
            bytes.len()
        };
        bytes.truncate(cut);
        let whole = cut >= 4
            && (declared > MAX_HANDSHAKE_FRAME_LEN
                || usize::try_from(declared).unwrap() <= cut - 4);
        if whole {
            let tail = usize::try_from(next() % 64).unwrap();
            bytes.extend((0..tail).map(|_| u8::try_from(next() % 256).unwrap()));
        }
        // The service may close before it has read everything; what counts is the close.
        let _ = stream.write_all(&bytes);
        if !whole {
            stream.shutdown(Shutdown::Write).unwrap();
        }
        let refused = expect_closed_by_service(stream, connection);
        match (whole, refused) {
            (_, true) => closes.refused += 1,
            (true, false) => closes.on_a_bad_frame += 1,
            (false, false) => closes.inside_a_frame += 1,
        }
        if connection % 1000 == 0 {
            // A well-behaved client keeps working throughout.
            assert_eq!(client.job(id).unwrap().job.id, id);
        }
    }
    assert_eq!(client.job(id).unwrap().job.display_name, "bystander");
    println!(
        "{CONNECTIONS} garbage connections in {:?}, each closed by the service: {closes:?}; its other client is unaffected",
        started.elapsed()
    );
    assert!(
        closes.on_a_bad_frame > 0 && closes.inside_a_frame > 0,
        "the garbage misses a kind of connection: {closes:?}"
    );
    drop(client);
    instance.kill_daemons("-TERM");
    let store = Store::open(&instance.root().join("state/qmgr")).unwrap();
    store.check_integrity().unwrap();
    let ids: HashSet<Guid> = store.load_jobs().unwrap().iter().map(|j| j.id).collect();
    assert_eq!(ids, HashSet::from([id]));
}

#[test]
fn sigterm_stops_the_service_cleanly_and_it_comes_back_on_demand() {
    let instance = Instance::new();
    let client = instance.client();
    let id = client.create_job("kept", JobType::Download).unwrap();
    drop(client);
    instance.kill_daemons("-TERM");
    assert!(
        !instance.paths().socket_path().exists(),
        "the socket is removed on exit"
    );
    let log = std::fs::read_to_string(instance.paths().log_file()).unwrap();
    assert!(log.contains("stopped"), "{log}");
    let client = instance.client();
    assert_eq!(client.job(id).unwrap().job.display_name, "kept");
}

#[test]
fn a_second_service_for_the_same_store_refuses_to_start() {
    let instance = Instance::new();
    let _client = instance.client();
    let output = Command::new(env!("CARGO_BIN_EXE_qmgrd"))
        .arg("--foreground")
        .envs(instance.env())
        .env("XDG_RUNTIME_DIR", instance.root().join("other-run"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("already serves the store"), "{stderr}");
}

#[test]
fn an_on_demand_service_exits_when_idle_and_keeps_its_jobs() {
    let instance = Instance::new();
    let config_dir = instance.root().join("config/qmgr");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(config_dir.join("config.toml"), "idle_exit = \"1s\"\n").unwrap();
    let client = instance.client();
    let id = client
        .create_job("waits suspended", JobType::Download)
        .unwrap();
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !instance.daemons().is_empty() {
        assert!(Instant::now() < deadline, "qmgrd did not exit when idle");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(instance.paths().log_file()).unwrap();
    assert!(log.contains("idle"), "{log}");
    assert_eq!(
        instance.client().job(id).unwrap().job.state,
        JobState::Suspended
    );
}

#[test]
fn a_spawned_service_waits_for_one_that_still_holds_the_store() {
    let instance = Instance::new();
    let env = instance.env();
    let located = qmgr_core::instance::Instance::locate_with(|name| {
        env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    })
    .unwrap();
    // As a qmgrd that is stopping (or starting for another client) holds it.
    let lock = located.lock().unwrap();
    let mut spawned = Command::new(env!("CARGO_BIN_EXE_qmgrd"))
        .arg("--spawned")
        .envs(instance.env())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It neither fails nor starts a second queue manager while the store is held.
    for _ in 0..20 {
        if let Some(status) = spawned.try_wait().unwrap() {
            let mut said = String::new();
            let _ = std::io::Read::read_to_string(&mut spawned.stderr.take().unwrap(), &mut said);
            panic!("qmgrd --spawned gave up while the store was held ({status}): {said}");
        }
        let launcher = i32::try_from(spawned.id()).unwrap();
        assert!(
            instance.daemons().iter().all(|pid| *pid == launcher),
            "a second qmgrd runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The holder goes away: the waiting one starts its qmgrd, which serves.
    drop(lock);
    let status = spawned.wait().unwrap();
    assert!(status.success(), "{status}");
    Client::connect(&instance.paths()).unwrap().ping().unwrap();
    assert_eq!(instance.daemons().len(), 1);
}

#[test]
fn the_log_follows_log_level_and_qmgr_log_overrides_it() {
    let started_and_stopped = |instance: &Instance| {
        drop(instance.client());
        instance.stop();
        instance.log()
    };
    let log = started_and_stopped(&Instance::new());
    assert!(log.contains("INFO") && log.contains("serving"), "{log}");

    let quiet = Instance::with_config("log_level = \"warn\"\n");
    let log = started_and_stopped(&quiet);
    assert!(!log.contains("serving"), "{log}");

    let overridden = Instance::with_env(vec![("QMGR_LOG".into(), "info".into())]);
    std::fs::write(
        overridden.dir("config/qmgr").join("config.toml"),
        "log_level = \"warn\"\n",
    )
    .unwrap();
    let log = started_and_stopped(&overridden);
    assert!(log.contains("serving"), "{log}");
}

#[test]
fn every_state_change_of_a_job_is_a_log_line_with_its_id() {
    let instance = Instance::new();
    let server = TestServer::start();
    let client = instance.client();
    let local = instance.downloads().join("logged.bin");
    let failing = common::one_file_job(
        &client,
        &server.url("/nothing-here"),
        &instance.downloads().join("never.bin"),
    );
    let id = common::one_file_job(&client, &server.url("/data/4k/logged"), &local);
    client.resume(failing).unwrap();
    client.resume(id).unwrap();
    common::wait_for_state(&client, id, JobState::Transferred);
    common::wait_for_state(&client, failing, JobState::Error);
    client.complete(id).unwrap();
    drop(client);
    instance.stop();
    let log = instance.log();
    let lines_of = |job: Guid| -> Vec<&str> {
        log.lines()
            .filter(|line| {
                line.contains(&format!("job={job}")) && line.contains("job state changed")
            })
            .collect()
    };
    let done = lines_of(id);
    for state in ["to=\"QUEUED\"", "to=\"TRANSFERRED\"", "to=\"ACKNOWLEDGED\""] {
        assert!(
            done.iter().any(|line| line.contains(state)),
            "no line for {state} of {id} in:\n{log}"
        );
    }
    let failed = lines_of(failing);
    assert!(
        failed
            .iter()
            .any(|line| line.contains("to=\"ERROR\"") && line.contains("404")),
        "the ERROR line names the error:\n{log}"
    );
}
