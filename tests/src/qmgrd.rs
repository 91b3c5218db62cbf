//! The `qmgrd` binary for tests of packages other than qmgr-service, whose `cargo test`
//! does not build it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds qmgrd in the profile of the running test and returns its path beside the test's
/// profile directory. `package_dir` is the calling test's `CARGO_MANIFEST_DIR`.
pub fn built_qmgrd(package_dir: &Path) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "-p", "qmgr-service", "--bin", "qmgrd"]);
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    let status = build.current_dir(package_dir).status().expect("cargo runs");
    assert!(status.success(), "building qmgrd failed");
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests live in <profile>/deps");
    profile_dir.join("qmgrd")
}

/// Stops the qmgrd whose pid `pid` is (SIGTERM), waiting up to 10 s for it to exit: a test
/// leaves no daemon behind.
pub fn stop_qmgrd(pid: u32) {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while Path::new(&format!("/proc/{}", pid.as_raw_nonzero())).exists()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
