//! `qmgr monitor` on a real pseudo-terminal (inside tmux) and without a terminal.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Instance, QMGR};
use qmgr_tests::TestServer;

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

    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket, "-f", "/dev/null"]);
        command
    }

    fn capture(&self) -> String {
        let output = self
            .command()
            .args(["capture-pane", "-p", "-t", "monitor"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn session_alive(&self) -> bool {
        self.command()
            .args(["has-session", "-t", "monitor"])
            .output()
            .is_ok_and(|output| output.status.success())
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

    let tmux = Tmux {
        socket: format!("qmgr-test-{}-{}", std::process::id(), line!()),
    };
    let assignments: Vec<String> = instance
        .env()
        .into_iter()
        .map(|(name, value)| format!("{}='{}'", name.to_string_lossy(), value.to_string_lossy()))
        .collect();
    let shell_command = format!(
        "env {} '{QMGR}' monitor --interval 200ms",
        assignments.join(" ")
    );
    let started = tmux
        .command()
        .args([
            "new-session",
            "-d",
            "-s",
            "monitor",
            "-x",
            "120",
            "-y",
            "30",
            &shell_command,
        ])
        .status()
        .unwrap();
    assert!(started.success(), "tmux could not start a session");

    let deadline = Instant::now() + Duration::from_secs(30);
    let screen = loop {
        let screen = tmux.capture();
        let ready = screen.contains("moving-job")
            && screen.contains("resting-job")
            && screen.contains("TRANSFERRING")
            && screen.contains("SUSPENDED")
            && screen.contains('%')
            && screen.contains('#');
        if ready {
            break screen;
        }
        assert!(
            Instant::now() < deadline,
            "the monitor never showed both jobs moving and resting:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(screen.contains("2 jobs"), "{screen}");
    assert!(screen.contains("NAME"), "{screen}");
    assert!(screen.contains("/s"), "a rate is shown:\n{screen}");

    tmux.command()
        .args(["send-keys", "-t", "monitor", "q"])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux.session_alive() {
        assert!(
            Instant::now() < deadline,
            "monitor did not quit on q:\n{}",
            tmux.capture()
        );
        std::thread::sleep(Duration::from_millis(50));
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
