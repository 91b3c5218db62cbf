//! `cargo xtask reliability crashes [--short]`: the crash loops. Each is a test that
//! writes its part of the `crashes` section of bench/results/reliability.md when
//! `QMGR_RELIABILITY_RESULTS` names the file, in the profile `QMGR_RELIABILITY_PROFILE`
//! names (`qmgr_tests::results`):
//!
//! | test | short | full |
//! |---|---|---|
//! | qmgrd SIGKILLed during a 200 MiB download, steady and changing file (`qmgr-service`, `crash_loops`) | 10 kills each | 100 kills each |
//! | a client SIGKILLed mid-call, every request kind × 3 moments (`qmgr-service`, `client_kills`) | 102 kills | the same |
//! | the store's writer SIGKILLed (`qmgr-core`, `store_crash`) | 25 kills | 50 kills |
//!
//! The tests run one after another, in the order of the section.

use anyhow::{Result, bail};

use crate::project_root;

/// The crash tests, as (package, test target), in the order their parts appear.
const TESTS: &[(&str, &str)] = &[
    ("qmgr-service", "crash_loops"),
    ("qmgr-service", "client_kills"),
    ("qmgr-core", "store_crash"),
];

pub fn run(short: bool) -> Result<()> {
    let results = project_root().join("bench/results/reliability.md");
    let profile = if short { "short" } else { "full" };
    println!(
        "==> reliability crashes, {profile} profile (writes its section of {})",
        results.display()
    );
    let mut failed = Vec::new();
    for (package, test) in TESTS {
        println!("==> {package} {test}");
        let passed = super::run_test(
            package,
            test,
            None,
            &results,
            &[("QMGR_RELIABILITY_PROFILE", profile)],
        )?;
        if !passed {
            failed.push(*test);
        }
    }
    if !failed.is_empty() {
        bail!("crash tests failed: {}", failed.join(", "));
    }
    Ok(())
}
