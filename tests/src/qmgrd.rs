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
