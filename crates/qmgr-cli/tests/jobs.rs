//! The bitsadmin-style commands, job names, groups, the daemon commands and help.

mod common;

use common::{Instance, plain_id};
use qmgr_core::Guid;
use qmgr_core::service::{JobChange, QueueServiceExt};
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

#[test]
fn a_job_goes_from_create_to_complete_one_command_at_a_time() {
    let server = TestServer::start();
    let instance = Instance::new();
    let created = instance
        .qmgr(&["create", "nightly", "--json"])
        .expect(0)
        .json();
    let id = plain_id(&created["id"]);

    instance
        .qmgr(&["addfile", "nightly", &server.url("/data/20k/a"), "a.bin"])
        .expect(0);
    let set = instance.root().join("set.txt");
    std::fs::write(
        &set,
        format!(
            "# more files\n{} b.bin\n\n{} {}\n",
            server.url("/data/30k/b"),
            server.url("/data/1k/c"),
            instance.downloads().join("c with space.bin").display()
        ),
    )
    .unwrap();
    instance
        .qmgr(&["addfileset", &id[..8], set.to_str().unwrap()])
        .expect(0);

    instance.qmgr(&["setpriority", "nightly", "high"]).expect(0);
    instance
        .qmgr(&["setretrydelay", "nightly", "1m30s"])
        .expect(0);
    instance
        .qmgr(&["setnoprogresstimeout", "nightly", "2h"])
        .expect(0);
    instance
        .qmgr(&["setnotifycmdline", "nightly", "/bin/true", "true --done"])
        .expect(0);
    instance
        .qmgr(&["setheaders", "nightly", "X-One: 1", "X-Two: 2"])
        .expect(0);
    instance
        .qmgr(&[
            "setproxy",
            "nightly",
            "override",
            "http://127.0.0.1:9",
            "<local>",
        ])
        .expect(0);
    instance.qmgr(&["take-ownership", "nightly"]).expect(0);

    let info = instance
        .qmgr(&["info", "nightly", "--json"])
        .expect(0)
        .json();
    assert_eq!(info["state"], "SUSPENDED");
    assert_eq!(info["waiting"]["reason"], "suspended");
    assert_eq!(info["priority"], "high");
    assert_eq!(info["files"].as_array().unwrap().len(), 3);
    assert_eq!(
        info["files"][0]["local_name"],
        instance.downloads().join("a.bin").display().to_string()
    );
    assert_eq!(info["settings"]["minimum_retry_delay_secs"], 90);
    assert_eq!(info["settings"]["no_progress_timeout_secs"], 7200);
    assert_eq!(info["settings"]["notify_command"]["program"], "/bin/true");
    assert_eq!(
        info["settings"]["notify_command"]["parameters"],
        "true --done"
    );
    assert_eq!(info["settings"]["headers"][1], "X-Two: 2");
    assert_eq!(info["settings"]["proxy"]["usage"], "override");
    assert_eq!(info["settings"]["proxy"]["bypass_list"], "<local>");
    assert!(
        info["owner"]["sid"]
            .as_str()
            .unwrap()
            .starts_with("S-1-22-1-")
    );

    let text = instance.qmgr(&["info", "nightly"]).expect(0).stdout;
    for expected in [
        "SUSPENDED",
        "HIGH",
        "X-One: 1",
        "qmgr resume",
        "c with space.bin",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }

    instance
        .qmgr(&["setheaders", "nightly", "--clear"])
        .expect(0);
    instance
        .qmgr(&["setnotifycmdline", "nightly", "--clear"])
        .expect(0);
    instance
        .qmgr(&["setproxy", "nightly", "no_proxy"])
        .expect(0);
    let info = instance.qmgr(&["info", &id, "--json"]).expect(0).json();
    assert_eq!(info["settings"]["headers"].as_array().unwrap().len(), 0);
    assert!(info["settings"]["notify_command"].is_null());
    assert_eq!(info["settings"]["proxy"]["usage"], "no_proxy");

    let suspended = instance
        .qmgr(&["list", "--state", "suspended", "--json"])
        .expect(0)
        .json();
    assert_eq!(suspended["jobs"].as_array().unwrap().len(), 1);
    let transferring = instance
        .qmgr(&["list", "--state", "transferring,error", "--json"])
        .expect(0)
        .json();
    assert_eq!(transferring["jobs"].as_array().unwrap().len(), 0);
    let table = instance.qmgr(&["list"]).expect(0).stdout;
    assert!(
        table.contains("nightly") && table.contains(&id[..8]),
        "{table}"
    );

    instance.qmgr(&["resume", "nightly"]).expect(0);
    instance.wait_for(&id, "TRANSFERRED", |info| info["state"] == "TRANSFERRED");
    let info = instance.qmgr(&["info", &id, "--json"]).expect(0).json();
    assert!(
        info["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|attempt| attempt["error"].is_null() && attempt["bytes"].as_u64() > Some(0)),
        "{info:#}"
    );
    instance.qmgr(&["complete", "nightly"]).expect(0);
    for (name, path, size) in [
        ("a.bin", "/data/20k/a", 20 << 10),
        ("b.bin", "/data/30k/b", 30 << 10),
        ("c with space.bin", "/data/1k/c", 1 << 10),
    ] {
        assert_eq!(
            std::fs::read(instance.downloads().join(name)).unwrap(),
            expected_body(path, INITIAL_VERSION, size),
            "{name}"
        );
    }
    assert!(instance.jobs().is_empty());
}

#[test]
fn info_explains_why_a_file_started_over() {
    let server = TestServer::start();
    let instance = Instance::new();
    instance.qmgr(&["create", "liar"]).expect(0);
    // Cut after 50,000 bytes; the retry's range request is answered 206 with the next
    // version's bytes and ETag, ignoring If-Range.
    let url = server.url("/data/200k/liar?drop_after=50000&drop_once=1&change_after=1&lie206=etag");
    instance
        .qmgr(&["addfile", "liar", &url, "liar.bin"])
        .expect(0);
    instance.qmgr(&["resume", "liar"]).expect(0);
    instance.wait_for("liar", "TRANSIENT_ERROR", |info| {
        info["state"] == "TRANSIENT_ERROR"
    });
    instance.qmgr(&["resume", "liar"]).expect(0);
    let info = instance.wait_for("liar", "TRANSFERRED", |info| {
        info["state"] == "TRANSFERRED" || info["state"] == "ERROR"
    });
    let attempts = info["attempts"].as_array().unwrap();
    let restart = attempts.last().unwrap()["restart"]
        .as_str()
        .unwrap_or_default();
    assert!(
        restart.contains("ETag or Last-Modified differs"),
        "{info:#}"
    );
    let text = instance.qmgr(&["info", "liar"]).expect(0).stdout;
    assert!(
        text.contains("restarted from zero: the server's ETag or Last-Modified differs"),
        "{text}"
    );
    instance.qmgr(&["complete", "liar"]).expect(0);
    let body = std::fs::read(instance.downloads().join("liar.bin")).unwrap();
    assert!(body == expected_body("/data/200k/liar", INITIAL_VERSION + 1, 200 << 10));
}

#[test]
fn suspend_and_cancel_take_several_jobs() {
    let server = TestServer::start();
    let instance = Instance::new();
    let first = plain_id(
        &instance
            .qmgr(&["create", "first", "--json"])
            .expect(0)
            .json()["id"],
    );
    let second = plain_id(
        &instance
            .qmgr(&["create", "second", "--json"])
            .expect(0)
            .json()["id"],
    );
    for job in ["first", "second"] {
        instance
            .qmgr(&[
                "addfile",
                job,
                &server.url(&format!("/data/1m/{job}?rate=100000")),
                job,
            ])
            .expect(0);
    }
    instance.qmgr(&["resume", &first, &second]).expect(0);
    instance.qmgr(&["suspend", "first", "second"]).expect(0);
    for job in instance.jobs() {
        assert_eq!(job["state"], "SUSPENDED");
    }
    // --state takes the names `list` prints, and lower case with dashes or underscores.
    for spelling in ["SUSPENDED", "suspended", "QUEUED,SUSPENDED"] {
        let listed = instance
            .qmgr(&["list", "--state", spelling, "--json"])
            .expect(0)
            .json();
        assert_eq!(listed["jobs"].as_array().unwrap().len(), 2, "{spelling}");
    }
    for spelling in ["TRANSIENT_ERROR", "transient-error"] {
        let run = instance.qmgr(&["list", "--state", spelling]).expect(0);
        assert_eq!(run.stdout.trim(), "No jobs.", "{spelling}");
    }
    // One unknown name among known ones: the known ones are still cancelled, each is
    // reported, and the last line says which were not found.
    let run = instance
        .qmgr(&["cancel", "first", "nope", &second])
        .expect(4);
    assert!(run.stderr.contains("\"nope\""), "{}", run.stderr);
    assert_eq!(
        run.stdout.matches("cancelled.").count(),
        2,
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&first_guid(&first)), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("cancelled 2 of 3 jobs; not found: \"nope\""),
        "{}",
        run.stderr
    );
    assert!(instance.jobs().is_empty());
    // Resuming an empty job is refused by the service: exit 1 with its reason.
    instance.qmgr(&["create", "empty"]).expect(0);
    let run = instance.qmgr(&["resume", "empty"]).expect(1);
    assert!(run.stderr.contains("BG_E_EMPTY"), "{}", run.stderr);
}

#[test]
fn jobs_are_named_by_guid_prefix_or_display_name_and_ambiguity_is_exit_2() {
    let instance = Instance::new();
    let one = instance
        .qmgr(&["create", "twin"])
        .expect(0)
        .stdout
        .trim()
        .to_owned();
    let two = instance
        .qmgr(&["create", "twin"])
        .expect(0)
        .stdout
        .trim()
        .to_owned();
    let one_id: Guid = one.parse().unwrap();
    let two_id: Guid = two.parse().unwrap();

    let run = instance.qmgr(&["info", "twin"]).expect(2);
    assert!(
        run.stderr.contains(&one) && run.stderr.contains(&two),
        "{}",
        run.stderr
    );

    // The shortest prefix that tells them apart, in upper case with a brace.
    let (a, b) = (one_id.to_plain_string(), two_id.to_plain_string());
    let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let prefix = format!("{{{}", a[..=common].to_ascii_uppercase());
    let info = instance.qmgr(&["info", &prefix, "--json"]).expect(0).json();
    assert_eq!(info["id"], one);
    let info = instance.qmgr(&["info", &b, "--json"]).expect(0).json();
    assert_eq!(info["id"], two);

    instance.qmgr(&["info", "no such job"]).expect(4);
    instance
        .qmgr(&["info", "{00000000-0000-4000-8000-000000000000}"])
        .expect(4);
    instance.qmgr(&["cancel", &a, &b]).expect(0);
    instance.qmgr(&["info", &a]).expect(4);
}

#[test]
fn bad_input_to_job_commands_gets_usage_errors() {
    let server = TestServer::start();
    let instance = Instance::new();
    instance.qmgr(&["create", "target"]).expect(0);
    let url = server.url("/data/1k");
    let missing_list = instance.root().join("missing.txt");
    let bad_list = instance.root().join("bad.txt");
    std::fs::write(&bad_list, format!("{url} ok.bin\nonly-one-field\n")).unwrap();
    for (args, message) in [
        (vec!["addfile", "target", "ftp:/x", "x"], "neither a URL"),
        (vec!["addfile", "target", &url, "/proc/1/x"], "not writable"),
        (
            vec!["addfile", "target", &url, "no/dir/x"],
            "cannot be used",
        ),
        (
            vec!["addfileset", "target", missing_list.to_str().unwrap()],
            "cannot read",
        ),
        (
            vec!["addfileset", "target", bad_list.to_str().unwrap()],
            "line 2",
        ),
        (vec!["setretrydelay", "target", "soon"], "invalid duration"),
        (vec!["setpriority", "target", "urgent"], "urgent"),
        (vec!["setproxy", "target", "override"], "proxy LIST"),
        (vec!["setheaders", "target", "X-Bad"], "Name: value"),
        (vec!["list", "--state", "sleeping"], "sleeping"),
        (vec!["monitor", "--interval", "1ms"], "100ms"),
    ] {
        let run = instance.qmgr(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    }
    let info = instance
        .qmgr(&["info", "target", "--json"])
        .expect(0)
        .json();
    assert_eq!(info["files"].as_array().unwrap().len(), 0, "all or nothing");
}

#[test]
fn groups_show_legacy_groups_and_their_status_bits() {
    let instance = Instance::new();
    let empty = instance.qmgr(&["groups", "--json"]).expect(0).json();
    assert_eq!(empty["groups"].as_array().unwrap().len(), 0);

    let client = instance.client();
    let group = Guid::new_random();
    client.create_group(group).unwrap();
    client
        .execute_group_job(group, Guid::new_random())
        .expect("the group gets its job");

    let groups = instance.qmgr(&["groups", "--json"]).expect(0).json();
    let listed = &groups["groups"][0];
    assert_eq!(listed["id"], group.to_string());
    assert_eq!(listed["job"]["state"], "SUSPENDED");
    let flags: Vec<&str> = listed["status_flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|flag| flag.as_str().unwrap())
        .collect();
    assert_eq!(flags, ["GROUP_INCOMPLETE", "GROUP_SUSPENDED"]);
    assert_eq!(listed["status"], 0x180);

    let text = instance.qmgr(&["groups"]).expect(0).stdout;
    assert!(text.contains(&group.to_string()), "{text}");
    assert!(text.contains("GROUP_SUSPENDED"), "{text}");
}

/// The legacy CreateJob of a group, which has no typed method.
trait GroupJob {
    fn execute_group_job(&self, group: Guid, job: Guid) -> qmgr_core::Result<()>;
}

impl GroupJob for qmgr_ipc::Client {
    fn execute_group_job(&self, group: Guid, job: Guid) -> qmgr_core::Result<()> {
        use qmgr_core::service::{QueueService, Request};
        self.execute(Request::CreateGroupJob {
            group,
            job,
            umask: None,
        })
        .map(drop)
    }
}

#[test]
fn daemon_status_and_stop() {
    let instance = Instance::new();
    let run = instance.qmgr(&["daemon", "status", "--json"]).expect(3);
    let status = run.json();
    assert_eq!(status["running"], false);
    assert!(status["pid"].is_null());
    assert!(status["socket"].as_str().unwrap().ends_with("qmgrd.sock"));
    instance.qmgr(&["daemon", "stop"]).expect(0);
    assert!(
        instance.daemon_pid().is_none(),
        "status and stop start no daemon"
    );

    instance.qmgr(&["create", "keeps"]).expect(0);
    let status = instance
        .qmgr(&["daemon", "status", "--json"])
        .expect(0)
        .json();
    assert_eq!(status["running"], true);
    assert_eq!(status["jobs"], 1);
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    let pid = instance.daemon_pid().expect("qmgrd runs");
    assert_eq!(status["pid"], pid);
    let text = instance.qmgr(&["daemon", "status"]).expect(0).stdout;
    assert!(text.contains(&pid.to_string()), "{text}");

    let run = instance.qmgr(&["daemon", "stop"]).expect(0);
    assert!(run.stdout.contains("stopped"), "{}", run.stdout);
    assert!(instance.daemon_pid().is_none());
    instance.qmgr(&["daemon", "status"]).expect(3);
    // The job survives the stop.
    let jobs = instance.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["name"], "keeps");
}

#[test]
fn help_completions_and_usage_errors() {
    let instance = Instance::new();
    let help = instance.qmgr(&["--help"]).expect(0).stdout;
    for expected in [
        "Exit codes:",
        "130",
        "transfer",
        "monitor",
        "setnotifycmdline",
    ] {
        assert!(help.contains(expected), "{expected}: {help}");
    }
    let transfer = instance.qmgr(&["transfer", "--help"]).expect(0).stdout;
    assert!(
        transfer.contains("--limit") && transfer.contains("Bandwidth cap"),
        "{transfer}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let script = instance.qmgr(&["completions", shell]).expect(0).stdout;
        assert!(
            script.contains("qmgr") && script.contains("transfer"),
            "{shell}"
        );
    }
    // A reader that goes away early ends qmgr quietly, as it ends other Unix tools.
    let mut child = instance.command(&["completions", "bash"]);
    let mut child = child
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Closed before qmgr, still starting, writes its first byte.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");

    instance.qmgr(&["frobnicate"]).expect(2);
    instance.qmgr(&[]).expect(2);
    assert!(instance.daemon_pid().is_none(), "help starts no daemon");
}

/// The `{GUID}` form (as `Job … cancelled.` prints it) of a plain GUID.
fn first_guid(plain: &str) -> String {
    plain.parse::<Guid>().unwrap().to_string()
}

/// Every key of a JSON value, nested ones included.
fn json_keys(value: &serde_json::Value, keys: &mut std::collections::BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                keys.insert(key.clone());
                json_keys(inner, keys);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| json_keys(item, keys)),
        _ => {}
    }
}

#[test]
fn json_help_points_to_a_readme_section_that_documents_every_field() {
    let instance = Instance::new();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    for command in [
        &["list", "--help"][..],
        &["info", "--help"],
        &["groups", "--help"],
    ] {
        let help = instance.qmgr(command).expect(0).stdout;
        assert!(
            help.contains("README under \"JSON output\""),
            "{command:?}: {help}"
        );
    }
    let section = readme
        .split("\n## JSON output\n")
        .nth(1)
        .expect("the README has a section \"JSON output\"");
    let section = section.split("\n## ").next().unwrap();
    assert!(
        readme.contains("Exit codes: 0 ok"),
        "the README lists the exit codes"
    );
    assert!(section.contains("exit codes"), "{section}");

    // Every field `info --json` prints is described there.
    let id = instance.qmgr(&["create", "documented"]).expect(0).stdout;
    instance
        .qmgr(&["addfile", "documented", "file:///etc/hostname", "h"])
        .expect(0);
    instance
        .qmgr(&["setnotifycmdline", "documented", "/bin/true", "true x"])
        .expect(0);
    let info = instance
        .qmgr(&["info", id.trim(), "--json"])
        .expect(0)
        .json();
    let mut keys = std::collections::BTreeSet::new();
    json_keys(&info, &mut keys);
    for key in keys {
        assert!(
            section.contains(&format!("\"{key}\"")) || section.contains(&format!("`{key}`")),
            "README \"JSON output\" does not describe {key:?}"
        );
    }
}

#[test]
fn control_characters_in_names_urls_and_settings_are_printed_escaped() {
    let server = TestServer::start();
    let instance = Instance::new();
    let name = "evil\u{1b}]0;pwned\u{7}\nsecond row\u{9b}2J";
    let id = instance.qmgr(&["create", name]).expect(0).stdout;
    let id: Guid = id.trim().parse().unwrap();
    instance
        .client()
        .set_job(id, JobChange::Description("clear\u{1b}[2J\r".into()))
        .unwrap();
    let plain = id.to_plain_string();
    instance
        .qmgr(&[
            "addfile",
            &plain,
            &server.url("/data/1k/f?x=%1b"),
            "local\u{1b}[31mname",
        ])
        .expect(0);
    instance
        .qmgr(&["setnotifycmdline", &plain, "/bin/true", "true \u{1b}[5m"])
        .expect(0);
    instance
        .qmgr(&["setheaders", &plain, "X-Evil: \u{1b}]2;x\u{7}"])
        .expect(0);

    let clean = |text: &str, what: &str| {
        assert!(
            !text.contains(['\u{1b}', '\u{7}', '\u{9b}', '\r']),
            "{what} printed a raw control character:\n{text:?}"
        );
    };
    let list = instance.qmgr(&["list"]).expect(0).stdout;
    clean(&list, "list");
    assert_eq!(list.lines().count(), 2, "one header, one row:\n{list}");
    assert!(list.contains(r"evil\u{1b}]0;pwned\u{7}\nse"), "{list}");

    let info = instance.qmgr(&["info", &plain]).expect(0).stdout;
    clean(&info, "info");
    for shown in [
        r"evil\u{1b}]0;pwned\u{7}\nsecond row\u{9b}2J",
        r"clear\u{1b}[2J\r",
        r"local\u{1b}[31mname",
        r"true \u{1b}[5m",
        r"X-Evil: \u{1b}]2;x\u{7}",
    ] {
        assert!(info.contains(shown), "{shown}:\n{info}");
    }

    let monitor = instance.qmgr(&["monitor", "--count", "1"]).expect(0).stdout;
    clean(&monitor, "monitor");
    assert!(monitor.contains(r"evil\u{1b}]0;pwned"), "{monitor}");

    // JSON keeps the text, escaped the JSON way.
    let json = instance.qmgr(&["info", &plain, "--json"]).expect(0);
    clean(&json.stdout, "info --json");
    assert_eq!(json.json()["name"], name);

    // Ambiguous and unknown names in error messages.
    instance.qmgr(&["create", name]).expect(0);
    let run = instance.qmgr(&["info", name]).expect(2);
    clean(&run.stderr, "the ambiguity message");
}

#[test]
fn setcredentials_reads_the_password_from_standard_input_and_never_shows_it() {
    use std::io::Write as _;
    use std::process::Stdio;

    let server = TestServer::start();
    let instance = Instance::new();
    instance.qmgr(&["create", "behind-auth"]).expect(0);
    instance
        .qmgr(&[
            "addfile",
            "behind-auth",
            &server.url("/data/6k/protected?auth=basic"),
            "protected.bin",
        ])
        .expect(0);
    let password = qmgr_tests::auth::DEFAULT_PASSWORD;
    let mut child = instance
        .command(&[
            "setcredentials",
            "behind-auth",
            "--user",
            qmgr_tests::auth::DEFAULT_USER,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("basic credentials for server") && !said.contains(password));

    // Empty standard input is a clear refusal.
    let refused = instance.qmgr(&["setcredentials", "behind-auth", "--user", "x"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("no password"), "{}", refused.stderr);

    instance.qmgr(&["resume", "behind-auth"]).expect(0);
    let done = instance.wait_for("behind-auth", "TRANSFERRED", |job| {
        job["state"] == "TRANSFERRED" || job["state"] == "ERROR"
    });
    assert_eq!(done["state"], "TRANSFERRED", "{done}");
    let info = instance.qmgr(&["info", "behind-auth", "--json"]).expect(0);
    assert!(!info.stdout.contains(password), "{}", info.stdout);
    instance.qmgr(&["complete", "behind-auth"]).expect(0);
    assert_eq!(
        std::fs::read(instance.downloads().join("protected.bin")).unwrap(),
        expected_body("/data/6k/protected", INITIAL_VERSION, 6 * 1024)
    );
    let removed = instance
        .qmgr(&["removecredentials", "nightly-missing"])
        .expect(4);
    assert!(
        removed.stderr.contains("nightly-missing"),
        "{}",
        removed.stderr
    );
}

#[test]
fn info_shows_a_files_byte_ranges() {
    use qmgr_core::ranges::{FileRange, LENGTH_TO_EOF};
    use qmgr_core::service::{NewFile, QueueServiceExt};

    let instance = Instance::new();
    // A qmgr command starts qmgrd; the client then finds it.
    instance.qmgr(&["list"]).expect(0);
    let client = instance.client();
    let id = client
        .create_job("ranged", qmgr_core::JobType::Download)
        .unwrap();
    let local = |name: &str| {
        instance
            .downloads()
            .join(name)
            .to_string_lossy()
            .into_owned()
    };
    client
        .add_files(
            id,
            vec![
                NewFile {
                    remote_name: "http://127.0.0.1:9/data/1k/whole".into(),
                    local_name: local("whole.bin"),
                    ranges: None,
                },
                NewFile {
                    remote_name: "http://127.0.0.1:9/data/1k/ranged".into(),
                    local_name: local("ranged.bin"),
                    ranges: Some(vec![
                        FileRange {
                            offset: 900,
                            length: 100,
                        },
                        FileRange {
                            offset: 1000,
                            length: LENGTH_TO_EOF,
                        },
                    ]),
                },
            ],
        )
        .unwrap();
    let plain = id.to_plain_string();
    let info = instance.qmgr(&["info", "--json", &plain]).expect(0).json();
    assert!(
        info["files"][0].get("ranges").is_none(),
        "a whole file has no ranges: {}",
        info["files"][0]
    );
    assert_eq!(
        info["files"][1]["ranges"],
        serde_json::json!([{"offset": 900, "length": 100}, {"offset": 1000, "length": null}])
    );
    let text = instance.qmgr(&["info", &plain]).expect(0);
    assert!(
        text.stdout.contains("ranges: 900-999, 1000-"),
        "{}",
        text.stdout
    );
    assert_eq!(
        text.stdout.matches("ranges:").count(),
        1,
        "the whole file has none"
    );
    instance.qmgr(&["cancel", &plain]).expect(0);
}

#[test]
fn write_only_headers_never_appear_in_info_or_json() {
    let instance = Instance::new();
    let created = instance
        .qmgr(&["create", "secret-headers", "--json"])
        .expect(0)
        .json();
    let id = plain_id(&created["id"]);
    instance
        .qmgr(&["setheaders", "secret-headers", "X-Api-Key: s3cr3t"])
        .expect(0);
    let shown = instance.qmgr(&["info", "secret-headers"]).expect(0).stdout;
    assert!(shown.contains("s3cr3t"), "readable before: {shown}");
    // IBackgroundCopyJobHttpOptions3::MakeCustomHeadersWriteOnly, as a C program calls it.
    instance
        .client()
        .set_job(id.parse().unwrap(), JobChange::MakeCustomHeadersWriteOnly)
        .unwrap();
    let text = instance.qmgr(&["info", "secret-headers"]).expect(0).stdout;
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(text.contains("write-only"), "{text}");
    for command in [
        &["info", "secret-headers", "--json"][..],
        &["list", "--json"],
    ] {
        let output = instance.qmgr(command).expect(0).stdout;
        assert!(!output.contains("s3cr3t"), "{command:?}: {output}");
    }
    let info = instance
        .qmgr(&["info", "secret-headers", "--json"])
        .expect(0)
        .json();
    assert_eq!(info["settings"]["headers"].as_array().unwrap().len(), 0);
}
