//! `qmgr transfer` against the test server and a real qmgrd, when things happen to the
//! client or to qmgrd: the jobs complete themselves (a killed client, a closed terminal, a
//! broken pipe, a restarted qmgrd), the watch follows its jobs across a qmgrd restart,
//! interactive retries, background priority and names, and a cap reported only while it
//! binds.

mod common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{Instance, plain_id};
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};
use serde_json::Value;

/// 2 MiB at 400 kB/s: about five seconds, long enough to do something to it meanwhile.
const SLOW: &str = "/data/2m/slow";

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

/// Waits until the instance's only job has moved some bytes; returns it.
#[track_caller]
fn wait_until_moving(instance: &Instance) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(job) = instance.jobs().into_iter().next()
            && job["progress"]["bytes_transferred"].as_u64().unwrap_or(0) > 0
        {
            return job;
        }
        assert!(Instant::now() < deadline, "the transfer never started");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `name` in the downloads holds the whole body of `path` and no job is left.
#[track_caller]
fn wait_until_landed(instance: &Instance, name: &str, path: &str, size: u64) {
    let local = instance.downloads().join(name);
    let expected = expected_body(path, INITIAL_VERSION, size);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Asking (which starts qmgrd if none runs) before looking at the file.
        let jobs = instance.jobs();
        if jobs.is_empty() && std::fs::read(&local).is_ok_and(|body| body == expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} never landed; jobs: {jobs:#?}",
            local.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_slow_transfer(instance: &Instance, server: &TestServer, name: &str) -> Child {
    instance.spawn(&[
        "transfer",
        &server.url(&format!("{SLOW}?rate=400000")),
        "-o",
        name,
    ])
}

#[test]
fn a_killed_client_still_lands_the_file() {
    let server = TestServer::start();
    let instance = Instance::new();
    let mut child = start_slow_transfer(&instance, &server, "killed.bin");
    let job = wait_until_moving(&instance);
    assert_eq!(job["settings"]["auto_complete"], "replace");
    signal(child.id(), "KILL");
    child.wait().unwrap();
    wait_until_landed(&instance, "killed.bin", SLOW, 2 << 20);
}

#[test]
fn a_closed_terminal_sighup_still_lands_the_file() {
    let server = TestServer::start();
    let instance = Instance::new();
    let mut child = start_slow_transfer(&instance, &server, "hangup.bin");
    wait_until_moving(&instance);
    signal(child.id(), "HUP");
    child.wait().unwrap();
    wait_until_landed(&instance, "hangup.bin", SLOW, 2 << 20);
}

#[test]
fn a_broken_pipe_still_lands_the_file() {
    let server = TestServer::start();
    let instance = Instance::new();
    let mut child = start_slow_transfer(&instance, &server, "pipe.bin");
    drop(child.stderr.take());
    drop(child.stdout.take());
    wait_until_moving(&instance);
    child.wait().unwrap();
    wait_until_landed(&instance, "pipe.bin", SLOW, 2 << 20);
}

/// A foreground transfer while qmgrd is stopped with `signal`: the client reconnects,
/// follows the same job in the qmgrd started again, and ends well.
fn survives_a_qmgrd_restart(signal_name: &str) {
    let server = TestServer::start();
    let instance = Instance::new();
    let name = format!("restart-{signal_name}.bin");
    let child = start_slow_transfer(&instance, &server, &name);
    let job = wait_until_moving(&instance);
    let daemon = instance.daemon_pid().expect("qmgrd runs");
    signal(daemon, signal_name);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("transferred 1 file"), "{stderr}");
    assert_eq!(
        std::fs::read(instance.downloads().join(&name)).unwrap(),
        expected_body(SLOW, INITIAL_VERSION, 2 << 20)
    );
    let again = instance.daemon_pid().expect("a new qmgrd serves");
    assert_ne!(again, daemon);
    assert!(
        instance.jobs().is_empty(),
        "job {} was completed",
        job["id"]
    );
}

#[test]
fn a_foreground_transfer_survives_qmgrd_killed() {
    survives_a_qmgrd_restart("KILL");
}

#[test]
fn a_foreground_transfer_survives_qmgrd_stopped() {
    survives_a_qmgrd_restart("TERM");
}

#[test]
fn a_background_transfer_lands_after_qmgrd_is_killed_and_started_again() {
    let server = TestServer::start();
    let instance = Instance::new();
    instance
        .qmgr(&[
            "transfer",
            "--background",
            &server.url(&format!("{SLOW}?rate=400000")),
            "-o",
            "background.bin",
        ])
        .expect(0);
    wait_until_moving(&instance);
    let daemon = instance.daemon_pid().expect("qmgrd runs");
    signal(daemon, "KILL");
    // No client is left; the next command starts qmgrd, which finishes and completes it.
    wait_until_landed(&instance, "background.bin", SLOW, 2 << 20);
}

#[test]
fn create_addfile_resume_still_waits_for_complete() {
    let server = TestServer::start();
    let instance = Instance::new();
    let id = instance.qmgr(&["create", "by hand"]).expect(0).stdout;
    let id = id.trim().trim_matches(['{', '}']).to_ascii_lowercase();
    instance
        .qmgr(&[
            "addfile",
            &id,
            &server.url("/data/20k/manual"),
            "manual.bin",
        ])
        .expect(0);
    instance.qmgr(&["resume", &id]).expect(0);
    let info = instance.wait_for(&id, "TRANSFERRED", |info| info["state"] == "TRANSFERRED");
    assert_eq!(info["settings"]["auto_complete"], Value::Null);
    assert_eq!(info["waiting"]["reason"], "awaiting_complete");
    let text = instance.qmgr(&["info", &id]).expect(0).stdout;
    assert!(text.contains("qmgr complete"), "{text}");
    assert!(!instance.downloads().join("manual.bin").exists());
    assert_eq!(instance.jobs().len(), 1, "the job waits for Complete");
    instance.qmgr(&["complete", &id]).expect(0);
    assert_eq!(
        std::fs::read(instance.downloads().join("manual.bin")).unwrap(),
        expected_body("/data/20k/manual", INITIAL_VERSION, 20 << 10)
    );
}

/// The delay between a job's last error and its retry time, from `info --json`.
fn retry_delay_secs(info: &Value) -> i64 {
    let at = |field: &Value| {
        let text = field.as_str().unwrap();
        let output = Command::new("date")
            .args(["-u", "-d", text, "+%s"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse::<i64>()
            .unwrap()
    };
    at(&info["waiting"]["retry_at"]) - at(&info["error"]["at"])
}

#[test]
fn a_foreground_transfer_retries_soon_and_stores_its_policy_background_keeps_bits_defaults() {
    let server = TestServer::start();
    let instance = Instance::new();
    let url = server.url("/data/10?status=503");
    let mut child = instance.spawn(&["transfer", &url, "-o", "busy.bin"]);
    let info = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(job) = instance.jobs().into_iter().next()
                && job["state"] == "TRANSIENT_ERROR"
            {
                break job;
            }
            assert!(Instant::now() < deadline, "no transient error");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert_eq!(info["settings"]["first_retry_delay_secs"], 5);
    assert_eq!(info["settings"]["no_progress_timeout_secs"], 120);
    assert_eq!(info["waiting"]["reason"], "retry_at");
    assert_eq!(retry_delay_secs(&info), 5, "{info:#}");
    // The terminal closes: the policy is the job's, not the client's.
    signal(child.id(), "HUP");
    child.wait().unwrap();
    let id = plain_id(&info["id"]);
    let stored = instance.qmgr(&["info", &id, "--json"]).expect(0).json();
    assert_eq!(stored["settings"]["first_retry_delay_secs"], 5);
    assert_eq!(stored["settings"]["no_progress_timeout_secs"], 120);
    instance.qmgr(&["cancel", &id]).expect(0);

    let created = instance
        .qmgr(&[
            "transfer",
            "--background",
            "--json",
            &url,
            "-o",
            "later.bin",
        ])
        .expect(0)
        .json();
    let id = plain_id(&created["jobs"][0]["id"]);
    let info = instance.wait_for(&id, "TRANSIENT_ERROR", |info| {
        info["state"] == "TRANSIENT_ERROR"
    });
    assert_eq!(info["settings"]["first_retry_delay_secs"], Value::Null);
    assert_eq!(info["settings"]["no_progress_timeout_secs"], 1_209_600);
    assert_eq!(retry_delay_secs(&info), 600, "{info:#}");
    instance.qmgr(&["cancel", &id]).expect(0);
}

#[test]
fn a_foreground_transfer_without_progress_ends_in_error_and_points_to_info() {
    let server = TestServer::start();
    let instance = Instance::new();
    let run = instance
        .qmgr(&[
            "transfer",
            &server.url("/data/10?status=503"),
            "-o",
            "never.bin",
            "--no-progress-timeout",
            "8s",
        ])
        .expect(1);
    assert!(run.stderr.contains("transient error"), "{}", run.stderr);
    assert!(run.stderr.contains("BG_E_NO_PROGRESS"), "{}", run.stderr);
    assert!(run.stderr.contains("503"), "{}", run.stderr);
    assert!(run.stderr.contains("qmgr info"), "{}", run.stderr);
    let job = instance.jobs().remove(0);
    assert_eq!(job["state"], "ERROR");
    assert!(
        job["error_count"].as_u64().unwrap() >= 2,
        "it retried first: {job:#}"
    );
}

#[test]
fn background_transfers_queue_at_normal_priority_under_names_of_their_files() {
    let server = TestServer::start();
    let instance = Instance::new();
    let mut ids = Vec::new();
    for n in 0..5 {
        let run = instance
            .qmgr(&[
                "transfer",
                "--background",
                &server.url(&format!("/data/1m/file{n}.iso?rate=100000")),
                "-o",
                &format!("file{n}.iso"),
            ])
            .expect(0);
        let id = run.stdout.trim().to_owned();
        let short = &plain_id(&Value::String(id.clone()))[..8];
        assert!(
            run.stderr.contains(&format!("job {short}")),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("qmgr complete"), "{}", run.stderr);
        ids.push(id);
    }
    let jobs = instance.jobs();
    assert_eq!(jobs.len(), 5);
    for (n, job) in jobs.iter().enumerate() {
        assert_eq!(job["priority"], "normal", "{job:#}");
        assert_eq!(job["name"], format!("file{n}.iso (qmgr transfer)"));
    }
    // One background job at a time (max_background_jobs = 1), not five at once.
    let running = jobs
        .iter()
        .filter(|job| job["state"] == "TRANSFERRING" || job["state"] == "CONNECTING")
        .count();
    assert!(running <= 1, "{jobs:#?}");
    let list = instance.qmgr(&["list"]).expect(0).stdout;
    assert!(list.contains("file3.iso"), "{list}");

    let explicit = instance
        .qmgr(&[
            "transfer",
            "--background",
            "--json",
            "--priority",
            "high",
            &server.url("/data/1k/a"),
            &server.url("/data/1k/b"),
            &server.url("/data/1k/c"),
            "--dir",
            ".",
        ])
        .expect(0)
        .json();
    assert_eq!(explicit["jobs"][0]["priority"], "high");
    assert_eq!(explicit["jobs"][0]["name"], "a +2 more (qmgr transfer)");
    for id in instance.jobs().iter().map(|job| plain_id(&job["id"])) {
        let _ = instance.qmgr(&["cancel", &id]);
    }
}

#[test]
fn a_cap_is_reported_only_while_it_holds_the_transfer_back() {
    let server = TestServer::start();
    let instance = Instance::new();
    instance.write_config("bandwidth_limit = \"10MB/s\"\n");
    // 200 kB/s from the server, far below the 10 MB/s cap.
    let slow = instance
        .qmgr(&[
            "transfer",
            "--background",
            "--json",
            &server.url("/data/4m/slow?rate=200000"),
            "-o",
            "slow.bin",
        ])
        .expect(0)
        .json();
    let slow = plain_id(&slow["jobs"][0]["id"]);
    let info = instance.wait_for(&slow, "a few progress reports", |info| {
        info["progress"]["bytes_transferred"].as_u64().unwrap_or(0) >= 600_000
    });
    assert_eq!(info["state"], "TRANSFERRING");
    assert_eq!(info["waiting"], Value::Null, "{info:#}");
    instance.qmgr(&["cancel", &slow]).expect(0);

    // A cap below what the server gives holds it back, and says so.
    let fast = instance
        .qmgr(&[
            "transfer",
            "--background",
            "--json",
            &server.url("/data/4m/fast"),
            "-o",
            "fast.bin",
            "--limit",
            "100kB/s",
        ])
        .expect(0)
        .json();
    let fast = plain_id(&fast["jobs"][0]["id"]);
    let info = instance.wait_for(&fast, "the cap to bind", |info| {
        info["waiting"]["reason"] == "throttled"
    });
    assert_eq!(info["waiting"]["bytes_per_second"], 100_000);
    instance.qmgr(&["cancel", &fast]).expect(0);
}

/// Background jobs of small local files are transferred and completed by the service at
/// once, often before `--json` can show them (here the first of thirty one-file jobs has all
/// the others' Resume calls to finish in): they are shown as ACKNOWLEDGED, not an error.
#[test]
fn background_json_shows_jobs_the_service_completed_at_once() {
    let instance = Instance::new();
    instance.write_config("max_files_per_job = 1\n");
    let sources = instance.root().join("sources");
    std::fs::create_dir_all(&sources).unwrap();
    let names: Vec<String> = (0..30).map(|n| format!("copy{n}.bin")).collect();
    let urls: Vec<String> = names
        .iter()
        .map(|name| {
            std::fs::write(sources.join(name), vec![7u8; 4096]).unwrap();
            format!("file://{}", sources.join(name).display())
        })
        .collect();
    let mut args = vec![
        "transfer",
        "--background",
        "--json",
        "--priority",
        "foreground",
    ];
    args.extend(urls.iter().map(String::as_str));
    args.extend(["--dir", "."]);
    let shown = instance.qmgr(&args).expect(0).json();
    let jobs = shown["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 30, "{shown:#}");
    for job in jobs {
        let state = job["state"].as_str().unwrap_or_default();
        assert!(
            [
                "QUEUED",
                "CONNECTING",
                "TRANSFERRING",
                "TRANSFERRED",
                "ACKNOWLEDGED"
            ]
            .contains(&state),
            "{job:#}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for name in &names {
        let local = instance.downloads().join(name);
        while !std::fs::read(&local).is_ok_and(|body| body == vec![7u8; 4096]) {
            assert!(
                Instant::now() < deadline,
                "{} never landed",
                local.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
