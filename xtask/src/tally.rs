//! Counting test results across every suite a run executes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

/// Passed and failed counts, summed over suites and checks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
    }

    /// Reads a libtest summary line: `test result: ok. 19 passed; 0 failed; 1 ignored; …`.
    pub fn parse_libtest_summary(line: &str) -> Option<Tally> {
        let rest = line.trim().strip_prefix("test result: ")?;
        let (_, counts) = rest.split_once(". ")?;
        let mut tally = Tally::default();
        for part in counts.split(';') {
            let mut words = part.split_whitespace();
            let (Some(number), Some(kind)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(number) = number.parse::<u64>() else {
                continue;
            };
            match kind {
                "passed" => tally.passed = number,
                "failed" => tally.failed = number,
                "ignored" => tally.ignored = number,
                _ => {}
            }
        }
        Some(tally)
    }
}

/// Runs `command`, echoing its output, and sums the libtest summaries it prints. The
/// command's own failure (a build error, say) counts as one failure if no test failed.
pub fn run_and_count(mut command: Command) -> Result<(Tally, bool)> {
    let description = format!("{command:?}");
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {description}"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut tally = Tally::default();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading test output")?;
        println!("{line}");
        if let Some(suite) = Tally::parse_libtest_summary(&line) {
            tally.add(suite);
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for {description}"))?;
    Ok((tally, status.success()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libtest_summaries() {
        let line = "test result: ok. 19 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s";
        assert_eq!(
            Tally::parse_libtest_summary(line),
            Some(Tally {
                passed: 19,
                failed: 0,
                ignored: 1
            })
        );
        let line = "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(
            Tally::parse_libtest_summary(line),
            Some(Tally {
                passed: 3,
                failed: 2,
                ignored: 0
            })
        );
        assert_eq!(Tally::parse_libtest_summary("running 3 tests"), None);
    }

    #[test]
    fn counts_the_summaries_of_the_custom_harness() {
        // What crates/qmgr-ipc/tests/processes.rs (`harness = false`) prints, as it printed
        // it with one test made to fail.
        let line = "test result: FAILED. 4 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(
            Tally::parse_libtest_summary(line),
            Some(Tally {
                passed: 4,
                failed: 1,
                ignored: 0
            })
        );
        // Its old summary had no counts, so the suite was left out of the tally.
        assert_eq!(Tally::parse_libtest_summary("test result: ok"), None);
    }
}
