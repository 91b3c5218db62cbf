//! `cargo xtask reliability fuzz [--short]`: every fuzz target with a fixed budget, one seed
//! for the run (printed, so a finding replays), and a table of target × cases × time ×
//! findings in bench/results/reliability.md, between `<!-- fuzz -->` and `<!-- /fuzz -->`
//! (the other sections of the file are kept).
//!
//! The Rust targets are ordinary tests (see `qmgr_tests::fuzz`) run with their budget in
//! `QMGR_FUZZ_ITERATIONS_<NAME>`; each campaign appends its line to `QMGR_FUZZ_REPORT`. The
//! C driver, tests/c/fuzz_com.c, runs twice: built with AddressSanitizer and
//! UndefinedBehaviorSanitizer against the in-process libqmgr (the library in the program,
//! so ASan sees the library's allocations), and against the client libqmgr under valgrind.
//!
//! `--short` is the CI profile (about a minute on two cores, builds aside); the full
//! profile runs 10⁶ IPC frames and ten times the other budgets.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::ctests::instance::Instance;
use crate::ctests::programs::{self, Library, PROGRAMS, Program};
use crate::ctests::server::TestServer;
use crate::ctests::{self, VALGRIND, wait_with_timeout};
use crate::{cargo, project_root};

/// One fuzz campaign: its name (as `qmgr_tests::fuzz::Campaign` knows it), what it
/// exercises, and its budgets.
struct Campaign {
    name: &'static str,
    what: &'static str,
    short: u64,
    full: u64,
}

/// One `cargo test` that runs some campaigns.
struct Suite {
    package: &'static str,
    selection: &'static [&'static str],
    campaigns: &'static [Campaign],
}

const SUITES: &[Suite] = &[
    Suite {
        package: "qmgr-ipc",
        selection: &["--test", "fuzz_frames"],
        campaigns: &[Campaign {
            name: "frames",
            what: "IPC frame and message decoders, in process (no socket); bounded memory",
            short: 200_000,
            full: 1_000_000,
        }],
    },
    Suite {
        package: "qmgr-core",
        selection: &["--test", "fuzz_config"],
        campaigns: &[
            Campaign {
                name: "config",
                what: "config.toml parser: refusals name a line, accepted values in range",
                short: 50_000,
                full: 500_000,
            },
            Campaign {
                name: "durations",
                what: "duration and rate parsers",
                short: 200_000,
                full: 2_000_000,
            },
        ],
    },
    Suite {
        package: "qmgr-transfer",
        selection: &["--lib", "validation_fuzz"],
        campaigns: &[
            Campaign {
                name: "urls",
                what: "remote names: what AddFile accepts, the engine accepts; file URLs read back",
                short: 200_000,
                full: 2_000_000,
            },
            Campaign {
                name: "headers",
                what: "custom headers: what SetCustomHeaders accepts, the engine sends; blocks read back",
                short: 200_000,
                full: 2_000_000,
            },
            Campaign {
                name: "proxies",
                what: "proxy settings: what SetProxySettings accepts, the engine takes",
                short: 200_000,
                full: 2_000_000,
            },
        ],
    },
    Suite {
        package: "qmgr-ffi",
        selection: &["--lib", "strings_fuzz"],
        campaigns: &[Campaign {
            name: "utf16",
            what: "UTF-16 in-strings at the C boundary, against a guard page",
            short: 5_000,
            full: 50_000,
        }],
    },
];

/// The C driver's budgets (calls): with the sanitizers, and under valgrind.
const COM_SANITIZED: (u64, u64) = (20_000, 300_000);
const COM_VALGRIND: (u64, u64) = (2_000, 20_000);
const COM_TIMEOUT: Duration = Duration::from_secs(1800);

/// One row of the table.
struct Row {
    name: String,
    what: String,
    cases: u64,
    seconds: f64,
    findings: u64,
}

pub fn run(short: bool) -> Result<()> {
    let profile = if short { "short" } else { "full" };
    let seed = fresh_seed();
    println!("==> reliability fuzz ({profile} profile), seed {seed:#x}");
    let report = crate::target_dir().join("fuzz-report.tsv");
    let _ = fs::remove_file(&report);
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for suite in SUITES {
        if let Err(error) = run_suite(suite, short, seed, &report, &mut rows) {
            problems.push(format!("{error:#}"));
        }
    }
    match run_com(short, seed, &mut rows) {
        Ok(()) => {}
        Err(error) => problems.push(format!("fuzz_com: {error:#}")),
    }
    let total = started.elapsed();
    let results = project_root().join("bench/results/reliability.md");
    write_section(&results, &section(profile, seed, &rows, total))?;
    println!("==> wrote the fuzz section of {}", results.display());
    let findings: u64 = rows.iter().map(|row| row.findings).sum();
    if findings > 0 {
        problems.push(format!(
            "{findings} findings (replay with QMGR_FUZZ_SEED={seed:#x}; each test printed its cases)"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("fuzzing failed:\n  {}", problems.join("\n  "))
    }
}

fn run_suite(
    suite: &Suite,
    short: bool,
    seed: u64,
    report: &Path,
    rows: &mut Vec<Row>,
) -> Result<()> {
    println!(
        "==> fuzz: cargo test -p {} {}",
        suite.package,
        suite.selection.join(" ")
    );
    let mut command = cargo();
    command
        .args(["test", "--locked", "-p", suite.package])
        .args(suite.selection)
        .args(["--", "--nocapture"])
        .env("QMGR_FUZZ_SEED", format!("{seed:#x}"))
        .env("QMGR_FUZZ_REPORT", report);
    for campaign in suite.campaigns {
        let budget = if short { campaign.short } else { campaign.full };
        command.env(
            format!(
                "QMGR_FUZZ_ITERATIONS_{}",
                campaign.name.to_ascii_uppercase()
            ),
            budget.to_string(),
        );
    }
    let status = command.status().context("cannot run cargo test")?;
    let lines = fs::read_to_string(report).unwrap_or_default();
    let first_row = rows.len();
    for campaign in suite.campaigns {
        let line = lines
            .lines()
            .filter_map(parse_report_line)
            .rfind(|line| line.name == campaign.name);
        match line {
            Some(mut row) => {
                campaign.what.clone_into(&mut row.what);
                rows.push(row);
            }
            None => bail!(
                "campaign {} of {} reported nothing (cargo test: {status})",
                campaign.name,
                suite.package
            ),
        }
    }
    if !status.success() {
        // A campaign with findings fails its test; any other failure is the suite's own.
        let found: u64 = rows[first_row..].iter().map(|row| row.findings).sum();
        if found == 0 {
            bail!("cargo test -p {} failed ({status})", suite.package);
        }
    }
    Ok(())
}

/// A line of `QMGR_FUZZ_REPORT`: name, cases, seconds, findings, seed.
fn parse_report_line(line: &str) -> Option<Row> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [name, cases, seconds, findings, _seed] = fields.as_slice() else {
        return None;
    };
    Some(Row {
        name: (*name).to_owned(),
        what: String::new(),
        cases: cases.parse().ok()?,
        seconds: seconds.parse().ok()?,
        findings: findings.parse().ok()?,
    })
}

/// The C driver: built with the sanitizers against the in-process library, then against
/// the client library under valgrind.
fn run_com(short: bool, seed: u64, rows: &mut Vec<Row>) -> Result<()> {
    let program = PROGRAMS
        .iter()
        .find(|program| program.name == "fuzz_com")
        .context("fuzz_com is not among the C programs")?;
    ctests::build_prerequisites()?;
    let server = TestServer::start(&programs::library_dir().join("qmgr-testserver"))?;
    let outcome = run_com_with(program, &server, short, seed, rows);
    let stopped = server.stop();
    outcome.and(stopped)
}

fn run_com_with(
    program: &Program,
    server: &TestServer,
    short: bool,
    seed: u64,
    rows: &mut Vec<Row>,
) -> Result<()> {
    ctests::build_in_process_library()?;
    let sanitized = compile_sanitized(program)?;
    let budget = if short {
        COM_SANITIZED.0
    } else {
        COM_SANITIZED.1
    };
    let mut command = Command::new(&sanitized);
    command
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1");
    rows.push(run_driver(
        "com (ASan+UBSan, in-process)",
        "random COM call sequences, three threads at once, in-process libqmgr built into an ASan+UBSan program",
        command,
        server,
        budget,
        seed,
    )?);

    let client = programs::compile(program, Library::Client)?;
    let budget = if short {
        COM_VALGRIND.0
    } else {
        COM_VALGRIND.1
    };
    let mut command = Command::new("valgrind");
    command.args(VALGRIND).arg(&client);
    rows.push(run_driver(
        "com (valgrind, qmgrd)",
        "the same against the client libqmgr and qmgrd, under valgrind",
        command,
        server,
        budget,
        seed,
    )?);
    Ok(())
}

fn compile_sanitized(program: &Program) -> Result<PathBuf> {
    let dir = programs::build_dir().join("bin-sanitized");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let output = dir.join(program.name);
    let mut command = programs::compile_command(program, &output, Library::InProcess);
    command.args(["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]);
    let result = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !result.status.success() {
        bail!(
            "compiling {} with the sanitizers failed:\n{}{}",
            program.source,
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        );
    }
    Ok(output)
}

/// Runs the driver (`command`, its arguments to come) in an instance of its own; a crash,
/// a sanitizer's or valgrind's report, or a failed check is a finding.
fn run_driver(
    name: &str,
    what: &str,
    mut command: Command,
    server: &TestServer,
    budget: u64,
    seed: u64,
) -> Result<Row> {
    println!("==> fuzz: {name}, {budget} calls");
    let instance = Instance::create("fuzz_com")?;
    let log = instance.root().join("fuzz_com.log");
    let log_file =
        fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    command
        .arg(server.base_url())
        .arg(instance.work_dir())
        .env("QMGR_FUZZ_SEED", format!("{seed:#x}"))
        .env("QMGR_FUZZ_ITERATIONS_COM", budget.to_string())
        .current_dir(instance.work_dir())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    instance.configure(&mut command, &programs::library_dir().join("qmgrd"));
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let status = wait_with_timeout(child, COM_TIMEOUT);
    let seconds = started.elapsed().as_secs_f64();
    let stopped = instance.stop_daemon();
    let output = fs::read_to_string(&log).unwrap_or_default();
    let (calls, reported) = parse_driver_summary(&output);
    let clean = matches!(&status, Ok(status) if status.success()) && stopped.is_ok();
    let findings = if clean { reported } else { reported.max(1) };
    if clean {
        instance.remove()?;
    } else {
        println!(
            "FINDING: {name} {}; log: {} (instance kept)\n{}",
            match &status {
                Ok(status) => format!("exited with {status}"),
                Err(error) => format!("{error:#}"),
            },
            log.display(),
            tail(&output, 40)
        );
    }
    Ok(Row {
        name: name.to_owned(),
        what: what.to_owned(),
        cases: calls,
        seconds,
        findings,
    })
}

/// The driver's last words: `fuzz com: N calls (M succeeded), K findings`.
fn parse_driver_summary(output: &str) -> (u64, u64) {
    output
        .lines()
        .rev()
        .find_map(|line| {
            let rest = line.strip_prefix("fuzz com: ")?;
            let (calls, rest) = rest.split_once(" calls")?;
            let findings = rest.rsplit_once(", ")?.1.strip_suffix(" findings")?;
            Some((calls.parse().ok()?, findings.parse().ok()?))
        })
        .unwrap_or((0, 0))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn section(profile: &str, seed: u64, rows: &[Row], total: Duration) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "## Fuzzing\n");
    let _ = writeln!(
        text,
        "`cargo xtask reliability fuzz{}` ({profile} profile), seed `{seed:#x}`, {:.0} s in all \
         (builds included). Each Rust target is a test that runs alone with \
         `QMGR_FUZZ_ITERATIONS_<NAME>=N` and replays with `QMGR_FUZZ_SEED` (and \
         `QMGR_FUZZ_CASE` for one case); the C driver is tests/c/fuzz_com.c. A finding is a \
         panic, a crash, a sanitizer's or valgrind's report, or a broken rule the target \
         checks. Times are the campaign's own (debug builds, a shared two-core machine).\n",
        if profile == "short" { " --short" } else { "" },
        total.as_secs_f64()
    );
    let _ = writeln!(text, "| target | what | cases | time | findings |");
    let _ = writeln!(text, "|---|---|---|---|---|");
    for row in rows {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {:.1} s | {} |",
            row.name,
            row.what,
            thousands(row.cases),
            row.seconds,
            row.findings
        );
    }
    text
}

fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

const START_MARKER: &str = "<!-- fuzz -->";
const END_MARKER: &str = "<!-- /fuzz -->";

/// Puts `body` between the fuzz markers of `path`, keeping everything else; the markers
/// are added at the end when the file has none.
fn write_section(path: &Path, body: &str) -> Result<()> {
    let existing = fs::read_to_string(path).unwrap_or_default();
    let updated = replace_section(&existing, body);
    fs::write(path, updated).with_context(|| format!("cannot write {}", path.display()))
}

fn replace_section(existing: &str, body: &str) -> String {
    let block = format!("{START_MARKER}\n{body}{END_MARKER}\n");
    if let (Some(start), Some(end)) = (existing.find(START_MARKER), existing.find(END_MARKER))
        && start < end
    {
        let after = &existing[end + END_MARKER.len()..];
        let after = after.strip_prefix('\n').unwrap_or(after);
        return format!("{}{block}{after}", &existing[..start]);
    }
    let mut text = existing.to_owned();
    if !text.is_empty() {
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push('\n');
    }
    text.push_str(&block);
    text
}

/// A seed for the run: the clock and the process id, mixed (splitmix64's finaliser).
fn fresh_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            since.as_secs() ^ u64::from(since.subsec_nanos()) << 32
        });
    let mut z = nanos ^ u64::from(std::process::id()).rotate_left(17);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fuzz_section_replaces_only_its_own_part() {
        let other = "# Reliability\n\n## Faults\n\n| a |\n";
        let first = replace_section(other, "one\n");
        assert_eq!(
            first,
            format!("{other}\n<!-- fuzz -->\none\n<!-- /fuzz -->\n")
        );
        let with_more = format!("{first}\n<!-- soak -->\nsoak\n<!-- /soak -->\n");
        let second = replace_section(&with_more, "two\n");
        assert!(second.starts_with(other), "{second}");
        assert!(
            second.contains("<!-- fuzz -->\ntwo\n<!-- /fuzz -->\n"),
            "{second}"
        );
        assert!(!second.contains("one"), "{second}");
        assert!(
            second.ends_with("<!-- soak -->\nsoak\n<!-- /soak -->\n"),
            "{second}"
        );
    }

    #[test]
    fn report_lines_and_the_drivers_summary_are_read() {
        let row = parse_report_line("frames\t200000\t2.25\t0\t0x1f").unwrap();
        assert_eq!(
            (row.name.as_str(), row.cases, row.findings),
            ("frames", 200_000, 0)
        );
        assert!((row.seconds - 2.25).abs() < 1e-9);
        assert!(parse_report_line("frames\tx").is_none());
        let output =
            "fuzz com: seed 0x1, 10 calls\nfuzz com: 1594 calls (651 succeeded), 2 findings\n";
        assert_eq!(parse_driver_summary(output), (1594, 2));
        assert_eq!(parse_driver_summary("crashed"), (0, 0));
    }

    #[test]
    fn every_campaign_is_named_once_and_the_full_profile_is_larger() {
        let names: Vec<&str> = SUITES
            .iter()
            .flat_map(|suite| suite.campaigns.iter().map(|campaign| campaign.name))
            .collect();
        for name in &names {
            assert_eq!(
                names.iter().filter(|other| *other == name).count(),
                1,
                "{name}"
            );
        }
        for campaign in SUITES.iter().flat_map(|suite| suite.campaigns) {
            assert!(campaign.full > campaign.short, "{}", campaign.name);
        }
        let frames = SUITES[0].campaigns[0].full;
        assert_eq!(frames, 1_000_000);
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
    }
}
