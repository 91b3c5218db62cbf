//! `qmgr transfer` against the test server and a real qmgrd: downloads, failures, bad
//! input, background jobs, splitting, Ctrl-C.

mod common;

use std::time::{Duration, Instant};

use common::{Instance, plain_id};
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

#[test]
fn several_files_arrive_byte_identical_and_leave_no_job() {
    let server = TestServer::start();
    let instance = Instance::new();
    let files = [
        ("/data/1m/one", 1 << 20),
        ("/data/1/two", 1),
        ("/data/300k/three", 300 << 10),
    ];
    let urls: Vec<String> = files.iter().map(|(path, _)| server.url(path)).collect();
    let mut args = vec!["transfer", "--dir", "out"];
    args.extend(urls.iter().map(String::as_str));
    std::fs::create_dir(instance.downloads().join("out")).unwrap();

    let run = instance.qmgr(&args).expect(0);
    assert!(run.stderr.contains("transferred 3 files"), "{}", run.stderr);
    for (path, size) in files {
        let name = path.rsplit('/').next().unwrap();
        let local = instance.downloads().join("out").join(name);
        assert_eq!(
            std::fs::read(&local).unwrap(),
            expected_body(path, INITIAL_VERSION, size),
            "{}",
            local.display()
        );
    }
    assert!(instance.jobs().is_empty(), "the job was completed");
}

#[test]
fn output_paths_are_relative_to_the_current_directory() {
    let server = TestServer::start();
    let instance = Instance::new();
    let run = instance
        .qmgr(&[
            "transfer",
            &server.url("/data/64k"),
            "-o",
            "./sub/../copy.bin",
        ])
        .expect(2);
    assert!(run.stderr.contains("sub"), "{}", run.stderr);

    instance
        .qmgr(&[
            "transfer",
            &server.url("/data/64k"),
            "-o",
            "copy.bin",
            "--quiet",
        ])
        .expect(0);
    assert_eq!(
        std::fs::read(instance.downloads().join("copy.bin")).unwrap(),
        expected_body("/data/64k", INITIAL_VERSION, 64 << 10)
    );
}

#[test]
fn a_local_file_url_is_copied() {
    let instance = Instance::new();
    let source = instance.root().join("source.txt");
    std::fs::write(&source, b"offline example\n").unwrap();
    let url = format!("file://{}", source.display());
    instance
        .qmgr(&["transfer", &url, "-o", "copy.txt"])
        .expect(0);
    assert_eq!(
        std::fs::read(instance.downloads().join("copy.txt")).unwrap(),
        b"offline example\n"
    );
}

#[test]
fn a_failed_transfer_exits_1_explains_and_keeps_the_job() {
    let server = TestServer::start();
    let instance = Instance::new();
    let run = instance
        .qmgr(&[
            "transfer",
            &server.url("/data/1k?status=404"),
            "-o",
            "missing",
        ])
        .expect(1);
    assert!(run.stderr.contains("BG_E_HTTP_ERROR_404"), "{}", run.stderr);
    assert!(run.stderr.contains("404"), "{}", run.stderr);
    assert!(run.stderr.contains("remote file"), "{}", run.stderr);
    assert!(run.stderr.contains("qmgr cancel"), "{}", run.stderr);

    let jobs = instance.jobs();
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job["state"], "ERROR");
    assert_eq!(job["error"]["hresult_name"], "BG_E_HTTP_ERROR_404");
    assert_eq!(job["error"]["context"], "remote_file");
    assert_eq!(job["waiting"]["reason"], "failed");
    assert!(!instance.downloads().join("missing").exists());

    instance.qmgr(&["cancel", &plain_id(&job["id"])]).expect(0);
    assert!(instance.jobs().is_empty());
}

#[test]
fn background_returns_at_once_and_the_service_completes_the_job() {
    let server = TestServer::start();
    let instance = Instance::new();
    let path = "/data/200k/background";
    let run = instance
        .qmgr(&[
            "transfer",
            "--background",
            "--json",
            "--priority",
            "low",
            "--parallel",
            "3",
            "--retry-delay",
            "30s",
            "--no-progress-timeout",
            "1h",
            "-H",
            "X-Qmgr-Test: yes",
            "--limit",
            "5MB/s",
            "--no-idle",
            // Slow enough that `info` finds it still queued.
            &server.url(&format!("{path}?rate=50000")),
            "-o",
            "background.bin",
        ])
        .expect(0);
    let created = run.json();
    let job = &created["jobs"][0];
    assert_eq!(created["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(job["priority"], "low");
    assert_eq!(job["settings"]["parallel_files"], 3);
    assert_eq!(job["settings"]["minimum_retry_delay_secs"], 30);
    assert_eq!(job["settings"]["no_progress_timeout_secs"], 3600);
    assert_eq!(job["settings"]["headers"][0], "X-Qmgr-Test: yes");
    assert_eq!(job["settings"]["bandwidth_limit"], 5_000_000);
    assert_eq!(job["settings"]["idle_mode"], false);
    assert_eq!(
        job["settings"]["cost_flags"], 0x8000_0021_u32,
        "a LOW job that set none follows its priority"
    );
    assert_eq!(
        job["files"][0]["local_name"],
        instance
            .downloads()
            .join("background.bin")
            .display()
            .to_string()
    );

    assert_eq!(job["settings"]["auto_complete"], "replace");
    assert_eq!(
        job["settings"]["first_retry_delay_secs"],
        serde_json::Value::Null,
        "background jobs keep BITS' retries"
    );
    let id = plain_id(&job["id"]);
    let text = instance.qmgr(&["info", &id]).expect(0).stdout;
    assert!(text.contains("Auto-complete"), "{text}");

    // Nobody runs `qmgr complete`: the service moves the file into place itself.
    let deadline = Instant::now() + Duration::from_secs(60);
    while instance.qmgr(&["info", &id]).code != 4 {
        assert!(Instant::now() < deadline, "the job never left the queue");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        std::fs::read(instance.downloads().join("background.bin")).unwrap(),
        expected_body(path, INITIAL_VERSION, 200 << 10)
    );
    let header = server
        .requests()
        .iter()
        .find(|request| request.path == path)
        .and_then(|request| request.header("X-Qmgr-Test").map(str::to_owned));
    assert_eq!(header.as_deref(), Some("yes"));
}

#[test]
fn more_urls_than_a_job_may_hold_are_split_and_share_the_parallel_budget() {
    let server = TestServer::start();
    let instance = Instance::new();
    instance.write_config("max_files_per_job = 2\n");
    let paths: Vec<String> = (0..5).map(|i| format!("/data/10k/split{i}")).collect();
    let urls: Vec<String> = paths.iter().map(|path| server.url(path)).collect();

    // Slow, so that they are still there to be cancelled.
    let slow: Vec<String> = urls.iter().map(|url| format!("{url}?rate=1000")).collect();
    let mut background = vec!["transfer", "--background", "--json", "--dir", "."];
    background.extend(slow.iter().map(String::as_str));
    let created = instance.qmgr(&background).expect(0).json();
    let shares: Vec<u64> = created["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["settings"]["parallel_files"].as_u64().unwrap())
        .collect();
    assert_eq!(shares, [6, 5, 5]);
    for job in created["jobs"].as_array().unwrap() {
        instance.qmgr(&["cancel", &plain_id(&job["id"])]).expect(0);
    }

    std::fs::create_dir(instance.downloads().join("split")).unwrap();
    let mut foreground = vec!["transfer", "--dir", "split"];
    foreground.extend(urls.iter().map(String::as_str));
    instance.qmgr(&foreground).expect(0);
    for path in &paths {
        let name = path.rsplit('/').next().unwrap();
        assert_eq!(
            std::fs::read(instance.downloads().join("split").join(name)).unwrap(),
            expected_body(path, INITIAL_VERSION, 10 << 10)
        );
    }
    assert!(instance.jobs().is_empty());
}

#[test]
fn when_a_job_leaves_the_jobs_still_running_take_its_share_of_the_parallel_budget() {
    let server = TestServer::start();
    let instance = Instance::new();
    instance.write_config("max_files_per_job = 1\n");
    let quick = server.url("/data/10k/quick");
    // Slow enough to be running long after the quick one left.
    let slow = server.url("/data/2m/slow?rate=50000");
    let mut child = instance.spawn(&["transfer", "--parallel", "4", &quick, &slow]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let remaining = loop {
        let jobs = instance.jobs();
        if let [job] = jobs.as_slice()
            && job["settings"]["parallel_files"] == 4
        {
            break plain_id(&job["id"]);
        }
        assert!(
            Instant::now() < deadline,
            "the job left running never got the whole budget of 4: {jobs:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    instance.qmgr(&["cancel", &remaining]).expect(0);
    let _ = child.wait();
    assert!(instance.downloads().join("quick").exists());
}

#[test]
fn jobs_start_as_they_are_added_and_together_never_exceed_the_parallel_budget() {
    let server = TestServer::start();
    let instance = Instance::new();
    instance.write_config("max_files_per_job = 1\n");
    // Slow enough that all five are still there while the list is looked at.
    let urls: Vec<String> = (0..5)
        .map(|i| server.url(&format!("/data/64k/budget{i}?rate=16000")))
        .collect();
    let mut args = vec!["transfer", "-q", "--parallel", "3", "--dir", "."];
    args.extend(urls.iter().map(String::as_str));
    let mut child = instance.spawn(&args);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen_all_started = false;
    while child.try_wait().unwrap().is_none() {
        let jobs = instance.jobs();
        // A TRANSFERRED job has all its files and is only waiting to be completed: it
        // takes none of the budget, and the next job may already have its share.
        let started: Vec<&serde_json::Value> = jobs
            .iter()
            .filter(|job| job["state"] != "SUSPENDED" && job["state"] != "TRANSFERRED")
            .collect();
        let budget_used: u64 = started
            .iter()
            .map(|job| job["settings"]["parallel_files"].as_u64().unwrap())
            .sum();
        assert!(
            budget_used <= 3,
            "the started jobs take {budget_used} files at once, over --parallel 3: {jobs:#?}"
        );
        seen_all_started |= started.len() == 3 && jobs.len() == 3;
        assert!(
            Instant::now() < deadline,
            "the transfer did not end in time"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.wait().unwrap().success());
    assert!(
        seen_all_started,
        "three jobs (the budget's worth) never ran at once"
    );
    for i in 0..5 {
        assert!(instance.downloads().join(format!("budget{i}")).exists());
    }
}

#[test]
fn bad_input_is_refused_with_the_documented_codes_before_any_job_exists() {
    let server = TestServer::start();
    let instance = Instance::new();
    let url = server.url("/data/1k/x");
    let unwritable = {
        let dir = instance.root().join("read-only");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o555))
            .unwrap();
        // root may write anywhere; /proc/1 refuses even root.
        if std::fs::write(dir.join("probe"), b"").is_ok() {
            "/proc/1".to_owned()
        } else {
            dir.display().to_string()
        }
    };
    std::fs::write(instance.downloads().join("exists"), b"keep me").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["transfer", "gopher://host/x", "-o", "x"],
            "unsupported scheme",
        ),
        (
            vec!["transfer", "relative/file", "-o", "x"],
            "absolute path",
        ),
        (vec!["transfer", "http://", "-o", "x"], "no host"),
        (vec!["transfer", &url, "--dir", &unwritable], "not writable"),
        (
            vec!["transfer", &url, "--dir", "no/such/dir"],
            "cannot be used",
        ),
        (vec!["transfer", &url, &url, "-o", "x"], "--dir"),
        (
            vec!["transfer", &url, "--retry-delay", "5x"],
            "invalid duration",
        ),
        (vec!["transfer", &url, "--limit", "fast"], "fast"),
        (
            vec!["transfer", &url, "-o", "exists", "--no-clobber"],
            "already exist",
        ),
        (vec!["transfer", &url, "-H", "no colon"], "Name: value"),
        (vec!["transfer", &url, "--parallel", "0"], "parallel"),
        (vec!["transfer", "--json", &url], "--background"),
    ];
    for (args, message) in cases {
        let run = instance.qmgr(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
    }
    assert_eq!(
        std::fs::read(instance.downloads().join("exists")).unwrap(),
        b"keep me"
    );
    // None of these reached the service far enough to leave a job.
    assert!(instance.jobs().is_empty());
}

#[test]
fn no_service_means_exit_3_with_the_paths_tried() {
    let instance = Instance::new();
    let output = instance
        .command(&["list"])
        .env("QMGRD", "/nonexistent/qmgrd")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("/nonexistent/qmgrd"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn ctrl_c_suspends_the_job_and_resume_finishes_it() {
    let server = TestServer::start();
    let instance = Instance::new();
    let path = "/data/2m/slow";
    let child = instance.spawn(&[
        "transfer",
        &server.url(&format!("{path}?rate=400000")),
        "-o",
        "slow.bin",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let moving = instance
            .jobs()
            .first()
            .is_some_and(|job| job["progress"]["bytes_transferred"].as_u64().unwrap_or(0) > 0);
        if moving {
            break;
        }
        assert!(Instant::now() < deadline, "the transfer never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("qmgr resume"), "{stderr}");

    let job = instance.jobs().remove(0);
    assert_eq!(job["state"], "SUSPENDED");
    let kept = job["progress"]["bytes_transferred"].as_u64().unwrap();
    assert!(kept > 0 && kept < 2 << 20, "{kept} bytes kept");

    let id = plain_id(&job["id"]);
    instance.qmgr(&["resume", &id]).expect(0);
    // The job `qmgr transfer` made completes itself once resumed.
    let deadline = Instant::now() + Duration::from_secs(60);
    while instance.qmgr(&["info", &id]).code != 4 {
        assert!(Instant::now() < deadline, "the job never left the queue");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        std::fs::read(instance.downloads().join("slow.bin")).unwrap(),
        expected_body(path, INITIAL_VERSION, 2 << 20)
    );
}

/// `qmgr transfer ARGS` with `home` as HOME (the qmgrd it starts inherits it), the
/// password, if any, written to its standard input.
fn transfer_with(
    instance: &Instance,
    home: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> std::process::Output {
    use std::io::Write as _;
    use std::process::Stdio;

    let mut command = instance.command(args);
    command
        .env("HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        writeln!(input, "{text}").unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

#[test]
fn transfer_logs_in_with_user_or_netrc_and_never_takes_a_password_from_argv() {
    use std::os::unix::fs::PermissionsExt;

    let server = TestServer::start();
    let instance = Instance::new();
    let home = instance.root().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    let netrc = home.join(".netrc");
    std::fs::write(
        &netrc,
        "machine 127.0.0.1 login netrc-user password netrc-pass\n",
    )
    .unwrap();
    std::fs::set_permissions(&netrc, std::fs::Permissions::from_mode(0o600)).unwrap();

    // ~/.netrc names the server's user: one command, no prompt.
    let behind_netrc = "/data/5k/netrc?auth=basic&user=netrc-user&password=netrc-pass";
    let output = transfer_with(
        &instance,
        &home,
        &[
            "transfer",
            "-q",
            "--netrc",
            &server.url(behind_netrc),
            "-o",
            "netrc.bin",
        ],
        None,
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        std::fs::read(instance.downloads().join("netrc.bin")).unwrap(),
        expected_body("/data/5k/netrc", INITIAL_VERSION, 5 * 1024)
    );

    // --user: the password comes from standard input, whatever scheme the server asks for.
    let password = qmgr_tests::auth::DEFAULT_PASSWORD;
    for (scheme, name) in [("basic", "basic.bin"), ("digest", "digest.bin")] {
        let url = server.url(&format!("/data/6k/{scheme}?auth={scheme}"));
        let output = transfer_with(
            &instance,
            &home,
            &[
                "transfer",
                "-q",
                "--user",
                qmgr_tests::auth::DEFAULT_USER,
                &url,
                "-o",
                name,
            ],
            Some(password),
        );
        assert!(output.status.success(), "{scheme}: {output:?}");
        assert_eq!(
            std::fs::read(instance.downloads().join(name)).unwrap(),
            expected_body(&format!("/data/6k/{scheme}"), INITIAL_VERSION, 6 * 1024)
        );
    }

    // A user name and password beyond Latin-1 (which NTLM cannot carry) still log in to
    // a Basic server.
    let url = server.url(&format!(
        "/data/2k/cyrillic?auth=basic&user={}&password={}",
        qmgr_tests::encode_query_value("иван"),
        qmgr_tests::encode_query_value("пароль")
    ));
    let output = transfer_with(
        &instance,
        &home,
        &[
            "transfer",
            "-q",
            "--user",
            "иван",
            &url,
            "-o",
            "cyrillic.bin",
        ],
        Some("пароль"),
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        std::fs::read(instance.downloads().join("cyrillic.bin")).unwrap(),
        expected_body("/data/2k/cyrillic", INITIAL_VERSION, 2 * 1024)
    );

    // A wrong password is the server's 401, explained; the password is never echoed.
    let output = transfer_with(
        &instance,
        &home,
        &[
            "transfer",
            "-q",
            "--no-progress-timeout",
            "0",
            "--user",
            qmgr_tests::auth::DEFAULT_USER,
            &server.url("/data/1k/refused?auth=basic"),
            "-o",
            "refused.bin",
        ],
        Some("not the password"),
    );
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("401"), "{said}");
    assert!(!said.contains("not the password"), "{said}");

    // No password on standard input, and URLs on standard input too: clear refusals.
    let output = transfer_with(
        &instance,
        &home,
        &[
            "transfer",
            "--user",
            "someone",
            &server.url("/data/1k/x"),
            "-o",
            "x.bin",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("no password"));
    let output = transfer_with(
        &instance,
        &home,
        &["transfer", "--user", "someone", "-i", "-"],
        Some(&server.url("/data/1k/y")),
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("-i -"));
}
