//! The peers a benchmark compares against, installed from Debian's packages when missing.

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// A command the benchmark runs, and the packages that provide it, best first (the
/// next one is tried when the first cannot be installed).
#[derive(Debug, Clone, Copy)]
pub struct Needed {
    pub command: &'static str,
    pub packages: &'static [&'static str],
}

/// Installs with apt-get whatever of `needed` is not on PATH (`apt-get update` once,
/// and only if something is missing), printing what it installs.
pub fn ensure_installed(needed: &[Needed]) -> Result<()> {
    let missing: Vec<&Needed> = needed.iter().filter(|n| !on_path(n.command)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!(
        "missing: {}; installing from Debian's packages",
        missing
            .iter()
            .map(|n| n.command)
            .collect::<Vec<_>>()
            .join(", ")
    );
    // A failed update still leaves the last package lists, which may be enough.
    if let Err(error) = apt_get(&["update", "-qq"]) {
        println!("apt-get update: {error:#}");
    }
    for need in missing {
        let installed = need.packages.iter().find(|package| {
            println!("installing {package} (for {})", need.command);
            apt_get(&["install", "-y", "-qq", "--no-install-recommends", package]).is_ok()
        });
        if installed.is_none() || !on_path(need.command) {
            bail!(
                "cannot install {} (tried packages {}); install it and run again",
                need.command,
                need.packages.join(", ")
            );
        }
    }
    Ok(())
}

fn on_path(command: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {command}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs apt-get quietly; its output is shown only when it fails.
fn apt_get(args: &[&str]) -> Result<()> {
    let output = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()
        .context("cannot run apt-get (installing needs Debian's apt and root)")?;
    if !output.status.success() {
        bail!(
            "apt-get {} exited with {}:\n{}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
