//! Release builds of the programs a benchmark runs, and where they land.

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context, Result, bail};

use crate::cargo;

/// `cargo build --release --locked ARGS`, echoing cargo's progress.
pub fn build_release(args: &[&str]) -> Result<()> {
    println!("==> cargo build --release {}", args.join(" "));
    let status = cargo()
        .args(["build", "--release", "--locked"])
        .args(args)
        .status()
        .context("cannot run cargo build")?;
    if !status.success() {
        bail!("cargo build --release {} failed", args.join(" "));
    }
    Ok(())
}

/// Whether the workspace has a package of this name.
pub fn package_exists(name: &str) -> bool {
    cargo()
        .args(["pkgid", "--offline", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `target/release`, or its place under `CARGO_TARGET_DIR`.
pub fn release_dir() -> PathBuf {
    crate::target_dir().join("release")
}
