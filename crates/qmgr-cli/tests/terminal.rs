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
                "120",
                "-y",
                "30",
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
