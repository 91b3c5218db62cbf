//! `cargo xtask reliability [faults] [crashes] [fuzz] [--short]`: the reliability harness.
//! Built so far: the fault matrix (`crates/qmgr-service/tests/fault_matrix.rs`), each fault
//! of the test server against a real qmgrd, the crash loops ([`crashes`]) and the fuzz
//! targets ([`fuzz`]), written to bench/results/reliability.md. The many-user checks and the
//! soak are not built yet; asked for, they say so.

mod crashes;
mod fuzz;

use anyhow::{Result, bail};

use crate::{cargo, project_root};

pub fn run(args: &[String]) -> Result<()> {
    let mut parts = Vec::new();
    let mut short = false;
    for arg in args {
        match arg.as_str() {
            // The matrix has one profile: it already runs in well under a minute.
            "--short" => short = true,
            "faults" => parts.push("faults"),
            "crashes" => parts.push("crashes"),
            "fuzz" => parts.push("fuzz"),
            "users" | "soak" => {
                bail!("`reliability {arg}` is not built yet; `faults`, `crashes` and `fuzz` are")
            }
            other => {
                bail!(
                    "usage: cargo xtask reliability [faults] [crashes] [fuzz] [--short] (not {other:?})"
                )
            }
        }
    }
    if parts.is_empty() {
        println!("==> reliability: the fault matrix, the crash loops and fuzzing are built so far");
        parts = vec!["faults", "crashes", "fuzz"];
    }
    for part in parts {
        match part {
            "faults" => faults()?,
            "fuzz" => fuzz::run(short)?,
            _ => crashes::run(short)?,
        }
    }
    Ok(())
}

/// Runs the fault matrix test with its results file asked for.
fn faults() -> Result<()> {
    let results = project_root().join("bench/results/reliability.md");
    println!("==> reliability faults (writes {})", results.display());
    let status = cargo()
        .args([
            "test",
            "--locked",
            "-p",
            "qmgr-service",
            "--test",
            "fault_matrix",
            "--",
            "--nocapture",
        ])
        .env("QMGR_RELIABILITY_RESULTS", &results)
        .status()?;
    if !status.success() {
        bail!("the fault matrix failed (its table above names the cases)");
    }
    Ok(())
}
