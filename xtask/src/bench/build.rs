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

/// Compiles bench/c/NAME.c with `cc -std=c11 -O2 -Wall -Wextra -Werror` against include/
/// and the release libqmgr (found through an rpath, so no LD_LIBRARY_PATH is needed);
/// the program's path.
pub fn compile_c_bench(name: &str) -> Result<PathBuf> {
    let root = crate::project_root();
    let release = release_dir();
    let binary = release.join(name);
    let source = root.join(format!("bench/c/{name}.c"));
    println!("==> cc {}", source.display());
    let status = std::process::Command::new("cc")
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(root.join("include"))
        .arg(&source)
        .arg("-o")
        .arg(&binary)
        .arg("-L")
        .arg(&release)
        .arg(format!("-Wl,-rpath,{}", release.display()))
        .arg("-lqmgr")
        .status()
        .context("cannot run cc")?;
    if !status.success() {
        bail!("{} does not compile", source.display());
    }
    Ok(binary)
}
