//! The examples under examples/ run as a user would run them, against the test server
//! and a private qmgrd; the README's example is one of them, so it cannot rot.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use qmgr_tests::qmgrd::{built_qmgrd, stop_qmgrd};
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// The Rust code of README.md's "Use it from Rust" section.
fn readme_example() -> String {
    let readme = std::fs::read_to_string(Path::new(MANIFEST_DIR).join("../../README.md"))
        .expect("the workspace README");
    let section = readme
        .split_once("\n## Use it from Rust\n")
        .expect("README.md has a \"Use it from Rust\" section")
        .1;
    let section = section.split("\n## ").next().unwrap_or(section);
    let code = section
        .split_once("```rust\n")
        .expect("the section holds a ```rust block")
        .1;
    code.split_once("```\n")
        .expect("the ```rust block ends")
        .0
        .to_owned()
}

/// examples/readme.rs without its opening `//!` comment.
fn readme_example_file() -> String {
    let file = std::fs::read_to_string(Path::new(MANIFEST_DIR).join("examples/readme.rs"))
        .expect("examples/readme.rs");
    let mut code = String::new();
    for line in file
        .lines()
        .skip_while(|line| line.starts_with("//!"))
        .skip_while(|line| line.is_empty())
    {
        code.push_str(line);
        code.push('\n');
    }
    code
}

#[test]
fn the_readme_example_is_the_example_the_tests_run() {
    assert_eq!(readme_example(), readme_example_file());
}

/// Builds the examples in the profile of this test; returns their directory.
fn built_examples() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "-p", "qmgr-client", "--examples"]);
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    let status = build
        .current_dir(MANIFEST_DIR)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the examples failed");
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("tests live in <profile>/deps")
        .join("examples")
}

/// A user's environment of its own: directories under a fresh root, the qmgrd of this
/// build, and the qmgrd it starts stopped at the end.
struct User {
    root: tempfile::TempDir,
    examples: PathBuf,
    qmgrd: PathBuf,
}

impl User {
    fn new() -> User {
        let user = User {
            root: tempfile::tempdir().unwrap(),
            examples: built_examples(),
            qmgrd: built_qmgrd(Path::new(MANIFEST_DIR)),
        };
        std::fs::create_dir_all(user.cwd()).unwrap();
        user
    }

    fn cwd(&self) -> PathBuf {
        self.root.path().join("home")
    }

    fn env(&self) -> Vec<(&'static str, OsString)> {
        let root = self.root.path();
        vec![
            ("XDG_STATE_HOME", root.join("state").into()),
            ("XDG_CONFIG_HOME", root.join("config").into()),
            ("XDG_RUNTIME_DIR", root.join("run").into()),
            ("QMGRD", self.qmgrd.clone().into()),
        ]
    }

    fn run(&self, example: &str, args: &[&str]) -> Output {
        Command::new(self.examples.join(example))
            .args(args)
            .envs(self.env())
            .current_dir(self.cwd())
            .output()
            .unwrap_or_else(|error| panic!("cannot run the example {example}: {error}"))
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let lock = self.root.path().join("state/qmgr/store.lock");
        if let Some(pid) = std::fs::read_to_string(lock)
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            stop_qmgrd(pid);
        }
    }
}

#[track_caller]
fn succeeded(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "{}\nstdout:\n{}\nstderr:\n{stderr}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

#[test]
fn the_examples_run_as_written() {
    let user = User::new();

    // README's: a copy of /etc/os-release, relative to the current directory.
    let said = succeeded(&user.run("readme", &[]));
    assert!(said.contains("TRANSFERRED"), "{said}");
    assert_eq!(
        std::fs::read(user.cwd().join("os-release.txt")).unwrap(),
        std::fs::read("/etc/os-release").unwrap()
    );

    // A download with a progress line.
    let server = TestServer::start();
    let output = user.run(
        "download",
        &[&server.url("/data/300k/example"), "example.bin"],
    );
    succeeded(&output);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "example.bin: 307200 bytes\n"
    );
    assert!(
        std::fs::read(user.cwd().join("example.bin")).unwrap()
            == expected_body("/data/300k/example", INITIAL_VERSION, 300 * 1024)
    );

    // A failed one says why, with the HRESULT's name, and stays in the queue.
    let failed = user.run(
        "download",
        &[&server.url("/data/1k/gone?status=404"), "gone.bin"],
    );
    assert_eq!(failed.status.code(), Some(1));
    let said = String::from_utf8_lossy(&failed.stderr);
    assert!(said.contains("BG_E_HTTP_ERROR_404"), "{said}");

    let listed = user.run("list", &[]);
    succeeded(&listed);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("ERROR"), "{listed}");
    assert!(listed.contains("gone.bin (download example)"), "{listed}");
    assert!(listed.ends_with("1 jobs\n"), "{listed}");
}
