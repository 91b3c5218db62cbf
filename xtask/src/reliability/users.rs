//! `cargo xtask reliability users`: two real users with a qmgrd each, played against each
//! other (`crates/qmgr-service/tests/users.rs`); needs root, which adds the users. One
//! profile: it takes a second or two.

use anyhow::{Result, bail};

use crate::cargo;

/// Runs the users test with its results file asked for.
pub fn run(results: &std::path::Path) -> Result<()> {
    println!("==> reliability users (writes {})", results.display());
    if !crate::reliability::is_root() {
        bail!("`reliability users` adds two users and needs root");
    }
    let status = cargo()
        .args([
            "test",
            "--locked",
            "-p",
            "qmgr-service",
            "--test",
            "users",
            "--",
            "--exact",
            "users",
            "--nocapture",
        ])
        .env("QMGR_RELIABILITY_RESULTS", results)
        .status()?;
    if !status.success() {
        bail!("the users test failed (its table above names the checks)");
    }
    Ok(())
}
