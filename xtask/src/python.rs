//! The Python package's part of `cargo xtask test`, and `cargo xtask python-tests`: the
//! pytest suite of python/tests, run from a venv of its own under target/python/ against
//! the debug libqmgr, qmgrd and qmgr-testserver (the suite starts the server and a private
//! qmgrd itself). Each pytest test counts as one test.
//!
//! The venv is made once with `python3 -m venv` and `pip install ./python pytest` (which
//! is what a user does, so a package that does not install fails here) plus the pinned
//! linters; later runs only reinstall the package from the current sources. After pytest,
//! `ruff check`, `ruff format --check` and `mypy` (strict, as python/pyproject.toml says)
//! look at the package and its tests; each counts as one test.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::tally::Tally;
use crate::{ctests, project_root, target_dir};

/// Where the venv and the suite's report live.
fn work_dir() -> PathBuf {
    target_dir().join("python")
}

/// Runs the suite, adding its tests to `tally` and, if any failed (or the suite could not
/// run), "python tests" to `failures`.
pub fn run(tally: &mut Tally, failures: &mut Vec<String>) {
    println!("==> Python package (pytest python/tests in target/python/venv)");
    match run_suite() {
        Ok((tests, ok)) => {
            println!(
                "python: {} passed, {} failed, {} skipped",
                tests.passed, tests.failed, tests.ignored
            );
            tally.add(tests);
            if !ok {
                if tests.failed == 0 {
                    tally.failed += 1;
                }
                failures.push("python tests".to_owned());
            }
        }
        Err(error) => {
            println!("FAILED python tests: {error:#}");
            tally.failed += 1;
            failures.push("python tests".to_owned());
        }
    }
}

/// `cargo xtask python-tests`.
pub fn run_command(args: &[String]) -> Result<()> {
    if let Some(unknown) = args.first() {
        bail!("`cargo xtask python-tests` takes no arguments (got {unknown:?})");
    }
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    run(&mut tally, &mut failures);
    println!("{} passed, {} failed", tally.passed, tally.failed);
    if failures.is_empty() {
        Ok(())
    } else {
        bail!("the Python tests failed")
    }
}

/// Builds what the suite needs, prepares the venv, runs pytest; the counts and whether
/// pytest succeeded.
fn run_suite() -> Result<(Tally, bool)> {
    ctests::build_prerequisites()?;
    let venv = work_dir().join("venv");
    let python = prepare_venv(&venv)?;
    let report = work_dir().join("pytest.xml");
    let _ = fs::remove_file(&report);
    let binaries = crate::target_dir().join("debug");
    let status = Command::new(&python)
        .current_dir(project_root())
        .args([
            "-m",
            "pytest",
            "python/tests",
            "-p",
            "no:cacheprovider",
            "-ra",
        ])
        .arg(format!("--junitxml={}", report.display()))
        .env("QMGR_LIB", binaries.join("libqmgr.so"))
        .env("QMGRD", binaries.join("qmgrd"))
        .env("QMGR_TESTSERVER", binaries.join("qmgr-testserver"))
        .status()
        .with_context(|| format!("cannot run {}", python.display()))?;
    let xml = fs::read_to_string(&report)
        .with_context(|| format!("pytest ({status}) wrote no report {}", report.display()))?;
    let mut tests = parse_junit(&xml)
        .with_context(|| format!("{} has no <testsuite> counts", report.display()))?;
    let mut ok = status.success();
    for (what, args) in LINTS {
        println!("python: {what}");
        let passed = Command::new(&python)
            .current_dir(project_root().join("python"))
            .env("RUFF_CACHE_DIR", work_dir().join("ruff-cache"))
            .env("MYPY_CACHE_DIR", work_dir().join("mypy-cache"))
            .args(["-m"])
            .args(*args)
            .status()
            .with_context(|| format!("cannot run {what}"))?
            .success();
        if passed {
            tests.passed += 1;
        } else {
            println!("FAILED python: {what}");
            tests.failed += 1;
            ok = false;
        }
    }
    Ok((tests, ok))
}

/// The linters the package is held to, each run from python/ on the package and its tests.
const LINTS: &[(&str, &[&str])] = &[
    ("ruff check", &["ruff", "check", "src", "tests"]),
    (
        "ruff format --check",
        &["ruff", "format", "--check", "src", "tests"],
    ),
    ("mypy --strict", &["mypy", "src", "tests"]),
];

/// The linters' versions: pinned, so a new release's rules cannot fail a fresh machine.
const LINTERS: [&str; 2] = ["ruff==0.17.6", "mypy==2.4.1"];

/// Marks a venv that is complete; what its content is (a change remakes the venv).
const VENV_STAMP: (&str, &str) = (
    ".qmgr-venv",
    "pytest, ruff 0.17.6, mypy 2.4.1, setuptools and wheel\n",
);

/// The venv's python, with pytest and the current python/ installed in it.
fn prepare_venv(venv: &Path) -> Result<PathBuf> {
    let python = venv.join("bin/python");
    let stamp = venv.join(VENV_STAMP.0);
    let ready =
        python.is_file() && fs::read_to_string(&stamp).is_ok_and(|content| content == VENV_STAMP.1);
    let package = project_root().join("python");
    if ready {
        // The package as the sources are now, built with the venv's own setuptools.
        return run_checked(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--no-deps",
                    "--no-build-isolation",
                    "--force-reinstall",
                ])
                .arg(&package),
        )
        .map(|()| python);
    }
    println!(
        "making {} (python3 -m venv; pip install ./python pytest, and the linters)",
        venv.display()
    );
    run_checked(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(venv),
    )?;
    run_checked(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet"])
            .arg(&package)
            .arg("pytest")
            .args(LINTERS),
    )?;
    // What later runs need to build the package offline.
    run_checked(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--upgrade",
        "setuptools>=61",
        "wheel",
    ]))?;
    fs::write(&stamp, VENV_STAMP.1).with_context(|| format!("cannot write {}", stamp.display()))?;
    Ok(python)
}

fn run_checked(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !status.success() {
        bail!("{command:?} exited with {status}");
    }
    Ok(())
}

/// The counts of a pytest JUnit report: its `<testsuite>`'s `tests`, `failures`, `errors`
/// and `skipped` attributes (errors count as failures, skipped tests as ignored).
fn parse_junit(xml: &str) -> Option<Tally> {
    let start = xml.find("<testsuite ")?;
    let element = &xml[start..start + xml[start..].find('>')?];
    let attribute = |name: &str| -> Option<u64> {
        let key = format!(" {name}=\"");
        let from = element.find(&key)? + key.len();
        let value = &element[from..from + element[from..].find('"')?];
        value.parse().ok()
    };
    let tests = attribute("tests")?;
    let failed = attribute("failures")? + attribute("errors")?;
    let skipped = attribute("skipped")?;
    Some(Tally {
        passed: tests.checked_sub(failed + skipped)?,
        failed,
        ignored: skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_counts_of_a_pytest_report() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="2" skipped="3" tests="46" time="1.6" timestamp="2026-12-04T15:00:00" hostname="h"><testcase classname="tests.test_jobs" name="x" time="0.1" /></testsuite></testsuites>"#;
        assert_eq!(
            parse_junit(xml),
            Some(Tally {
                passed: 40,
                failed: 3,
                ignored: 3
            })
        );
        assert_eq!(parse_junit("<testsuites></testsuites>"), None);
        assert_eq!(
            parse_junit(r#"<testsuite errors="0" failures="0" skipped="0">"#),
            None,
            "no test count"
        );
    }
}
