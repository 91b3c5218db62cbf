//! `cargo xtask reliability users`: two real users with a qmgrd each, played against each
//! other (`crates/qmgr-service/tests/users.rs`); needs root, which adds the users (skipped otherwise). One
//! profile: it takes a second or two.

use anyhow::{Result, bail};

/// Runs the users test with its results file asked for.
pub fn run(results: &std::path::Path) -> Result<()> {
    println!("==> reliability users (writes {})", results.display());
    if !crate::reliability::is_root() {
        // The other parts still run: a newcomer's `cargo xtask reliability` is not refused.
        println!("==> reliability users: skipped, it adds two users and needs root");
        return Ok(());
    }
    let passed = super::run_test("qmgr-service", "users", Some("users"), results, &[])?;
    if !passed {
        bail!("the users test failed (its table above names the checks)");
    }
    Ok(())
}
