//! `cargo xtask test`: everything CI checks, in the order that fails fastest.

use std::process::Command;

use anyhow::{Result, bail};

use crate::tally::{Tally, run_and_count};
use crate::{cargo, ctests};

/// `cargo xtask bench idle --short`: each comparison of idle mode with the same run
/// without it counts as a test; skipped (and counted as ignored) where namespaces cannot
/// be made.
fn idle_profile(tally: &mut Tally, failures: &mut Vec<String>) {
    println!("==> idle mode on a shared bottleneck (bench idle --short)");
    match crate::bench::idle::short_profile() {
        Ok(verdicts) => {
            if let Some(why) = verdicts.skipped {
                println!("skipped: {why}");
                tally.ignored += 1;
            }
            for (name, ok) in verdicts.checks {
                println!("{} {name}", if ok { "ok:" } else { "FAILED:" });
                if ok {
                    tally.passed += 1;
                } else {
                    tally.failed += 1;
                    failures.push(format!("idle mode: {name}"));
                }
            }
        }
        Err(error) => {
            println!("FAILED: {error:#}");
            tally.failed += 1;
            failures.push("idle mode bench".to_owned());
        }
    }
}

/// `cargo doc --no-deps --workspace` with rustdoc's warnings as errors (broken links,
/// malformed HTML in doc comments): counts as one check.
fn documentation(tally: &mut Tally, failures: &mut Vec<String>) -> Result<()> {
    let name = "documentation (cargo doc --no-deps --workspace, RUSTDOCFLAGS=-D warnings)";
    println!("==> {name}");
    let ok = cargo()
        .args(["doc", "--no-deps", "--workspace", "--locked"])
        .env("RUSTDOCFLAGS", "-D warnings")
        .status()?
        .success();
    if ok {
        tally.passed += 1;
    } else {
        tally.failed += 1;
        failures.push(name.to_owned());
    }
    Ok(())
}

pub fn run(args: &[String]) -> Result<()> {
    if let Some(unknown) = args.first() {
        bail!("`cargo xtask test` takes no arguments (got {unknown:?})");
    }
    let mut tally = Tally::default();
    let mut failures = Vec::new();

    let checks: [(&str, Command); 3] = [
        ("formatting (cargo fmt --check)", {
            let mut c = cargo();
            c.args(["fmt", "--all", "--", "--check"]);
            c
        }),
        ("lints (cargo clippy -D warnings)", {
            let mut c = cargo();
            c.args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ]);
            c
        }),
        (
            "lints of the in-process library (clippy --features in-process)",
            {
                let mut c = cargo();
                c.args([
                    "clippy",
                    "-p",
                    "qmgr-ffi",
                    "--features",
                    "in-process",
                    "--all-targets",
                    "--locked",
                    "--",
                    "-D",
                    "warnings",
                ]);
                c
            },
        ),
    ];
    for (name, mut command) in checks {
        println!("==> {name}");
        if command.status()?.success() {
            tally.passed += 1;
        } else {
            tally.failed += 1;
            failures.push(name.to_owned());
        }
    }

    documentation(&mut tally, &mut failures)?;

    // The end-to-end tests run the real binaries (qmgr, qmgrd), found beside each other.
    println!("==> binaries (cargo build --workspace --bins)");
    if !cargo()
        .args(["build", "--workspace", "--bins", "--locked"])
        .status()?
        .success()
    {
        bail!("the workspace's binaries do not build");
    }

    println!("==> tests (cargo test --workspace --no-fail-fast)");
    let mut command = cargo();
    // Every suite runs even when one fails, so the tally counts them all.
    command.args(["test", "--workspace", "--locked", "--no-fail-fast"]);
    let (tests, ok) = run_and_count(command)?;
    tally.add(tests);
    if !ok {
        failures.push("cargo test".to_owned());
        if tests.failed == 0 {
            tally.failed += 1;
        }
    }

    // The library built to host the queue itself (feature `in-process`): its own code paths
    // (taking the store lock, refusing to share a store with qmgrd) and the same API tests.
    println!("==> in-process library (cargo test -p qmgr-ffi --features in-process)");
    let mut command = cargo();
    command.args([
        "test",
        "-p",
        "qmgr-ffi",
        "--features",
        "in-process",
        "--locked",
        "--no-fail-fast",
    ]);
    let (tests, ok) = run_and_count(command)?;
    tally.add(tests);
    if !ok {
        failures.push("cargo test -p qmgr-ffi --features in-process".to_owned());
        if tests.failed == 0 {
            tally.failed += 1;
        }
    }

    ctests::run(&mut tally, &mut failures);
    crate::python::run(&mut tally, &mut failures);
    crate::install::checks::run(&mut tally, &mut failures);
    idle_profile(&mut tally, &mut failures);

    println!();
    if !failures.is_empty() {
        println!("failed: {}", failures.join(", "));
    }
    println!("checks and tests: {} ignored", tally.ignored);
    println!("{} passed, {} failed", tally.passed, tally.failed);
    if failures.is_empty() {
        Ok(())
    } else {
        bail!("{} step(s) failed", failures.len())
    }
}
