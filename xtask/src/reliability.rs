//! `cargo xtask reliability [faults] [crashes] [fuzz] [users] [soak] [--short]`: the
//! reliability harness, each part writing its section of bench/results/reliability.md: the
//! fault matrix (`crates/qmgr-service/tests/fault_matrix.rs`), each fault of the test server
//! against a real qmgrd; the crash loops ([`crashes`]); the fuzz targets ([`fuzz`]); the
//! many-user checks ([`users`]); the soak ([`soak`]). With no part named, all run.
//! `--short` is the profile `cargo xtask test` runs the same tests in (the soak's is longer
//! than its smoke there).

mod crashes;
mod fuzz;
mod soak;
mod users;

use anyhow::{Result, bail};

use crate::{cargo, project_root};

pub fn run(args: &[String]) -> Result<()> {
    let mut parts = Vec::new();
    let mut short = false;
    for arg in args {
        match arg.as_str() {
            // The matrix and the users test have one profile: each runs in well under a
            // minute.
            "--short" => short = true,
            "faults" | "crashes" | "fuzz" | "users" | "soak" => parts.push(arg.as_str()),
            other => bail!(
                "usage: cargo xtask reliability [faults] [crashes] [fuzz] [users] [soak] [--short] (not {other:?})"
            ),
        }
    }
    if parts.is_empty() {
        parts = vec!["faults", "crashes", "fuzz", "users", "soak"];
    }
    let results = project_root().join("bench/results/reliability.md");
    for part in parts {
        match part {
            "faults" => faults()?,
            "crashes" => crashes::run(short)?,
            "fuzz" => fuzz::run(short)?,
            "users" => users::run(&results)?,
            _ => soak::run(&results, short)?,
        }
    }
    Ok(())
}

/// Whether this process runs as root (the users test adds users).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Runs the fault matrix test with its results file asked for.
fn faults() -> Result<()> {
    let results = project_root().join("bench/results/reliability.md");
    println!("==> reliability faults (writes {})", results.display());
    if !run_test("qmgr-service", "fault_matrix", None, &results, &[])? {
        bail!("the fault matrix failed (its table above names the cases)");
    }
    Ok(())
}

/// Runs one test binary of `package` (only the test `exact`, if given) with its output
/// shown, the results file named and `env` set; whether it passed.
fn run_test(
    package: &str,
    test: &str,
    exact: Option<&str>,
    results: &std::path::Path,
    env: &[(&str, &str)],
) -> Result<bool> {
    let mut command = cargo();
    command.args(["test", "--locked", "-p", package, "--test", test, "--"]);
    if let Some(name) = exact {
        command.args(["--exact", name]);
    }
    command
        .arg("--nocapture")
        .env("QMGR_RELIABILITY_RESULTS", results)
        .envs(env.iter().copied());
    Ok(command.status()?.success())
}
