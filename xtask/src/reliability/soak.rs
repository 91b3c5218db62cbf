//! `cargo xtask reliability soak [--short]`: many clients keep a big queue moving through
//! one qmgrd against the test server's faults (`crates/qmgr-service/tests/soak.rs`). The
//! full profile is 10,000 queued jobs and 100 clients for 10 minutes; `--short`, 2,000 jobs
//! and 40 clients for 75 s.

use anyhow::{Result, bail};

/// Runs the soak test in its full or short profile with its results file asked for.
pub fn run(results: &std::path::Path, short: bool) -> Result<()> {
    let profile = if short { "short" } else { "full" };
    println!(
        "==> reliability soak, {profile} profile (writes {})",
        results.display()
    );
    let passed = super::run_test(
        "qmgr-service",
        "soak",
        Some("soak_many_clients_keep_a_big_queue_moving_through_faults"),
        results,
        &[("QMGR_SOAK_PROFILE", profile)],
    )?;
    if !passed {
        bail!("the soak failed (its figures and failures are above)");
    }
    Ok(())
}
