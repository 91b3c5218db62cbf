//! What qmgr draws on a real pseudo-terminal (inside tmux): the monitor and the transfer
//! progress bars; and the plain output of the monitor without a terminal.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Instance, QMGR};
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

/// A tmux server of its own (`-L`), so tests never touch the user's sessions.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn available() -> bool {
        Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|output| output.status.success())
    }

    fn new(test: u32) -> Tmux {
        Tmux {
            socket: format!("qmgr-test-{}-{test}", std::process::id()),
        }
    }

    /// Runs `qmgr ARGS` (with the instance's environment) in a 120x30 terminal.
    fn start(&self, instance: &Instance, args: &str) {
        self.start_sized(instance, args, 120, 30);
    }

    /// Runs `qmgr ARGS` in a terminal of `columns` x `rows`.
    fn start_sized(&self, instance: &Instance, args: &str, columns: u16, rows: u16) {
        let assignments: Vec<String> = instance
            .env()
            .into_iter()
            .map(|(name, value)| {
                format!("{}='{}'", name.to_string_lossy(), value.to_string_lossy())
            })
            .collect();
        let shell_command = format!(
            "cd '{}' && env {} '{QMGR}' {args}; sleep 60",
            instance.downloads().display(),
            assignments.join(" ")
        );
        let started = self
            .command()
            .args([
                "new-session",
                "-d",
                "-s",
                "qmgr",
                "-x",
                &columns.to_string(),
                "-y",
                &rows.to_string(),
                &shell_command,
            ])
            .status()
            .unwrap();
        assert!(started.success(), "tmux could not start a session");
    }

    /// Captures the screen until `ready` accepts it.
    #[track_caller]
    fn wait_for_screen(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.capture();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {what}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn send_keys(&self, keys: &str) {
        let sent = self
            .command()
            .args(["send-keys", "-t", "qmgr", keys])
            .status()
            .unwrap();
        assert!(sent.success(), "tmux send-keys {keys}");
    }

    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket, "-f", "/dev/null"]);
        command
    }

    fn capture(&self) -> String {
        let output = self
            .command()
            .args(["capture-pane", "-p", "-t", "qmgr"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").output();
    }
}

/// Two jobs: one moving slowly, one suspended.
fn queue_two_jobs(instance: &Instance, server: &TestServer) {
    let moving = instance
        .qmgr(&[
            "transfer",
            "--background",
            "--name",
            "moving-job",
            &server.url("/data/4m/moving?rate=300000"),
            "-o",
            "moving.bin",
        ])
        .expect(0);
    assert!(!moving.stdout.is_empty());
    instance.qmgr(&["create", "resting-job"]).expect(0);
    instance
        .qmgr(&["addfile", "resting-job", &server.url("/data/1k/r"), "r.bin"])
        .expect(0);
}

#[test]
fn monitor_draws_jobs_on_a_terminal_and_quits_on_q() {
    if !Tmux::available() {
        eprintln!("SKIPPED: tmux is not installed, so monitor cannot be tested on a terminal");
        return;
    }
    let server = TestServer::start();
    let instance = Instance::new();
    queue_two_jobs(&instance, &server);

    let tmux = Tmux::new(line!());
    // The shell goes on sleeping after qmgr, so the session's end cannot be mistaken
    // for qmgr's: quitting is seen on the screen instead.
    tmux.start(&instance, "monitor --interval 200ms; echo MONITOR-ENDED");
    let screen = tmux.wait_for_screen("both jobs, moving and resting", |screen| {
        screen.contains("moving-job")
            && screen.contains("resting-job")
            && screen.contains("TRANSFERRING")
            && screen.contains("SUSPENDED")
            && screen.contains('%')
            && screen.contains('#')
    });
    assert!(screen.contains("2 jobs"), "{screen}");
    assert!(screen.contains("NAME"), "{screen}");
    assert!(screen.contains("/s"), "a rate is shown:\n{screen}");

    tmux.command()
        .args(["send-keys", "-t", "qmgr", "q"])
        .status()
        .unwrap();
    let screen = tmux.wait_for_screen("the shell after monitor quit", |screen| {
        screen.contains("MONITOR-ENDED")
    });
    assert!(
        !screen.contains("resting-job"),
        "the monitor's screen is gone:\n{screen}"
    );
}

#[test]
fn transfer_draws_a_bar_per_file_and_a_total_on_a_terminal() {
    if !Tmux::available() {
        eprintln!("SKIPPED: tmux is not installed, so progress bars cannot be tested");
        return;
    }
    let server = TestServer::start();
    let instance = Instance::new();
    let slow = "/data/1m/slow-file";
    let quick = "/data/2k/quick-file";
    let tmux = Tmux::new(line!());
    tmux.start(
        &instance,
        &format!(
            "transfer --dir . '{}' '{}'",
            server.url(&format!("{slow}?rate=200000")),
            server.url(quick)
        ),
    );
    let screen = tmux.wait_for_screen("bars while the transfer runs", |screen| {
        screen.contains("slow-file") && screen.contains("total") && screen.contains("ETA")
    });
    assert!(screen.contains("1.00 MiB"), "{screen}");
    let screen = tmux.wait_for_screen("the end of the transfer", |screen| {
        screen.contains("transferred 2 files")
    });
    assert!(screen.contains("total 2/2"), "{screen}");
    assert!(screen.contains("done"), "{screen}");
    for (path, size) in [(slow, 1 << 20), (quick, 2 << 10)] {
        let name = path.rsplit('/').next().unwrap();
        assert_eq!(
            std::fs::read(instance.downloads().join(name)).unwrap(),
            expected_body(path, INITIAL_VERSION, size)
        );
    }
}

#[test]
fn monitor_prints_snapshots_when_stdout_is_not_a_terminal() {
    let server = TestServer::start();
    let instance = Instance::new();
    queue_two_jobs(&instance, &server);
    let run = instance
        .qmgr(&["monitor", "--interval", "100ms", "--count", "3"])
        .expect(0);
    assert_eq!(
        run.stdout.matches("qmgr monitor").count(),
        3,
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("moving-job"), "{}", run.stdout);
    assert!(run.stdout.contains("resting-job"), "{}", run.stdout);
    assert!(run.stdout.contains("SUSPENDED"), "{}", run.stdout);
    assert!(
        !run.stdout.contains('\u{1b}'),
        "no escape sequences:\n{}",
        run.stdout
    );
}

#[test]
fn transfer_fits_a_narrow_terminal_and_ctrl_c_leaves_no_stale_line() {
    if !Tmux::available() {
        eprintln!("SKIPPED: tmux is not installed, so progress bars cannot be tested");
        return;
    }
    let server = TestServer::start();
    let instance = Instance::new();
    let tmux = Tmux::new(line!());
    // A file of unknown size and one of known size, both slow; names wider than the
    // terminal allows.
    tmux.start_sized(
        &instance,
        &format!(
            "transfer --dir . '{}' '{}'; echo TRANSFER-ENDED",
            server.url(
                "/data/4m/a-stream-of-unknown-length-with-a-long-name.bin?no_length=1&rate=100000"
            ),
            server.url("/data/4m/a-file-of-known-length-with-a-long-name.bin?rate=100000"),
        ),
        50,
        20,
    );
    let screen = tmux.wait_for_screen("both bars, the total and a rate", |screen| {
        screen.contains("a-stream")
            && screen.contains("a-file-of")
            && screen.contains("total 0/2")
            && screen.contains("KiB/s")
    });
    assert!(screen.contains("ETA unknown"), "{screen}");
    assert!(screen.contains("some sizes unknown"), "{screen}");
    assert!(
        !screen.contains("waiting for a transfer slot"),
        "a foreground transfer never waits for a slot:\n{screen}"
    );
    // Nothing wrapped: every line of the display starts where a line of it starts.
    for line in screen.lines().filter(|line| !line.trim().is_empty()) {
        assert!(
            ["a-stream", "a-file-of", "total 0/2", "some sizes unknown"]
                .iter()
                .any(|start| line.starts_with(start))
                || line.contains("B/s  ETA")
                || line.contains("/qmgr"),
            "a wrapped or stray line {line:?}:\n{screen}"
        );
    }
    let total = screen
        .lines()
        .find(|line| line.starts_with("total 0/2"))
        .unwrap();
    assert!(!total.contains("[=========="), "{screen}");

    tmux.send_keys("C-c");
    let screen = tmux.wait_for_screen("the interruption message", |screen| {
        screen.contains("TRANSFER-ENDED")
    });
    assert!(screen.contains("interrupted."), "{screen}");
    // The message wraps at 50 columns.
    assert!(
        screen.replace('\n', "").contains("is suspended with"),
        "{screen}"
    );
    for stale in ["total 0/2", "ETA", "a-stream", "some sizes"] {
        assert!(
            !screen.contains(stale),
            "{stale:?} stayed on screen:\n{screen}"
        );
    }
    for job in instance.jobs() {
        assert_eq!(job["state"], "SUSPENDED", "{job:#}");
    }
}

#[test]
fn monitor_scrolls_a_long_queue_in_a_small_terminal() {
    if !Tmux::available() {
        eprintln!("SKIPPED: tmux is not installed, so monitor cannot be tested on a terminal");
        return;
    }
    let server = TestServer::start();
    let instance = Instance::new();
    for index in 0..24 {
        instance
            .qmgr(&["create", &format!("resting-job-{index:02}")])
            .expect(0);
    }
    // Created last, moving: shown first all the same.
    instance
        .qmgr(&[
            "transfer",
            "--background",
            "--name",
            "the-moving-job-with-a-long-name",
            &server.url("/data/4m/moving?rate=100000"),
            "-o",
            "moving.bin",
        ])
        .expect(0);

    let tmux = Tmux::new(line!());
    tmux.start_sized(&instance, "monitor --interval 300ms", 50, 20);
    let screen = tmux.wait_for_screen("the moving job and the first rows", |screen| {
        screen.contains("TRANSFERRING") && screen.contains("jobs 1–")
    });
    let lines: Vec<&str> = screen.lines().collect();
    assert!(lines[0].contains("25 jobs"), "{screen}");
    assert!(lines[1].starts_with("NAME"), "{screen}");
    assert!(
        lines[2].starts_with("the-moving-job-"),
        "active jobs come first:\n{screen}"
    );
    assert!(lines[3].starts_with("resting-job-00"), "{screen}");
    assert!(screen.contains("jobs 1–17 of 25"), "{screen}");
    assert!(!screen.contains("taller"), "{screen}");

    // A page down, which stops at the last page.
    tmux.send_keys("PageDown");
    let screen = tmux.wait_for_screen("the last page", |screen| screen.contains("jobs 9–25 of 25"));
    assert!(screen.contains("resting-job-23"), "{screen}");
    assert!(!screen.contains("the-moving-job"), "{screen}");
    tmux.send_keys("Up");
    tmux.wait_for_screen("one row up", |screen| screen.contains("jobs 8–24 of 25"));
    tmux.send_keys("Home");
    tmux.wait_for_screen("the top", |screen| screen.contains("jobs 1–17 of 25"));
    tmux.send_keys("q");
}
