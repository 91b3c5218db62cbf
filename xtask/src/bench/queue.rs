//! `cargo xtask bench queue`: qmgrd with a large queue — 100,000 suspended jobs of one file
//! each, made through libqmgr by bench/c/queue_bench.c in a private instance whose
//! config.toml raises `max_jobs_per_user` — and what that queue costs: qmgrd's start-up
//! over the full store, its memory, `qmgr list`, `EnumJobs` + `GetCount` from C, and its CPU
//! while idle.
//!
//! `QMGR_BENCH_ROUNDS` sets the rounds of each timing (default 5); `QMGR_BENCH_SCALE=small`
//! makes 10,000 jobs instead.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use super::table::megabytes;
use crate::bench::build::{build_release, compile_c_bench, release_dir};
use crate::bench::e2e::{Scale, machine_facts, rounds_from_env};
use crate::bench::files::{Scratch, load_average, tail};
use crate::bench::qmgr::{QmgrInstance, peak_rss, process_cpu, resident};
use crate::bench::run::{measure, median, range};
use crate::bench::save;
use crate::bench::table::verdict;

const DEFAULT_ROUNDS: usize = 5;
const IDLE_WINDOW: Duration = Duration::from_secs(10);
/// How long qmgrd gets after a burst of work before its memory or idle CPU is read.
const SETTLE: Duration = Duration::from_secs(1);
/// The jobs' one file each: nothing listens on port 9 of 127.0.0.1, and the jobs stay
/// suspended, so nothing is ever fetched.
const NEVER_FETCHED: &str = "http://127.0.0.1:9/never.bin";

const TARGET_RSS_MB: f64 = 150.0;
const TARGET_START_S: f64 = 1.0;
const TARGET_LIST_S: f64 = 0.5;
/// One clock tick of /proc/PID/stat at the usual 100 Hz.
const IDLE_CPU_TARGET: Duration = Duration::from_millis(10);

pub fn run() -> Result<()> {
    println!("==> bench queue (qmgrd with a large queue of suspended jobs)");
    let rounds = rounds_from_env(DEFAULT_ROUNDS)?;
    let jobs: usize = match Scale::from_env()? {
        Scale::Full => 100_000,
        Scale::Small => 10_000,
    };
    build_release(&[
        "-p",
        "qmgr-cli",
        "-p",
        "qmgr-service",
        "--bins",
        "-p",
        "libqmgr",
        "--lib",
    ])?;
    let queue_bench = compile_c_bench("queue_bench")?;
    let release = release_dir();
    let load_at_start = load_average();
    let scratch = Scratch::create()?;
    let mut instance = QmgrInstance::new(
        release.join("qmgr"),
        release.join("qmgrd"),
        scratch.path("instance"),
    )?;
    let config = format!("max_jobs_per_user = {}\n", jobs + 100);
    instance.write_config(&config)?;

    instance.start_daemon()?;
    println!("==> creating {jobs} suspended jobs through libqmgr");
    // AddFile wants the destination's directory to exist.
    let files_dir = scratch.path("files");
    fs::create_dir_all(&files_dir)
        .with_context(|| format!("cannot create {}", files_dir.display()))?;
    let fill_output = output_of(c_command(
        &queue_bench,
        &instance,
        &[
            "fill",
            &jobs.to_string(),
            NEVER_FETCHED,
            &files_dir.to_string_lossy(),
        ],
    ))?;
    let fill_seconds: f64 = value_of(&fill_output, "fill_seconds")?
        .parse()
        .context("fill_seconds is not a number")?;
    instance.stop_daemon()?;
    let store_bytes = directory_bytes(&instance.root().join("state/qmgr"))?;

    println!("==> restarting qmgrd over the full store, {rounds} times");
    let mut accepting = Vec::new();
    let mut answering = Vec::new();
    for round in 0..rounds {
        let started = Instant::now();
        let accepted = instance.start_daemon()?;
        let status = instance
            .command()
            .args(["daemon", "status"])
            .output()
            .context("cannot run qmgr daemon status")?;
        let answered = started.elapsed();
        ensure!(
            status.status.success(),
            "qmgr daemon status failed: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        println!(
            "    round {}: accepting after {:.3} s, first answer after {:.3} s",
            round + 1,
            accepted.as_secs_f64(),
            answered.as_secs_f64()
        );
        accepting.push(accepted.as_secs_f64());
        answering.push(answered.as_secs_f64());
        if round + 1 < rounds {
            instance.stop_daemon()?;
        }
    }
    let pid = instance
        .daemon_pid()
        .context("qmgrd runs but its store lock names no live process")?;
    std::thread::sleep(SETTLE);
    let rss_started = megabytes(resident(pid)?);

    println!("==> qmgr list, {rounds} times");
    let list_file = scratch.path("list.txt");
    let mut list_walls = Vec::new();
    let mut list_json_walls = Vec::new();
    for round in 0..rounds {
        for (json, walls) in [(false, &mut list_walls), (true, &mut list_json_walls)] {
            let out = File::create(&list_file)?;
            let mut command = instance.command();
            command.arg("list");
            if json {
                command.arg("--json");
            }
            command
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(Stdio::null());
            let run = measure(&mut command)?;
            walls.push(run.wall.as_secs_f64());
            if round == 0 {
                check_listing(&list_file, jobs, json)?;
            }
        }
    }

    println!("==> EnumJobs + GetCount from C, {rounds} times");
    let enum_output = output_of(c_command(
        &queue_bench,
        &instance,
        &["enum", &jobs.to_string(), &rounds.to_string()],
    ))?;
    let enum_count = numbers(&value_of(&enum_output, "enum_count_ms")?)?;
    let enum_walk = numbers(&value_of(&enum_output, "enum_walk_ms")?)?;

    std::thread::sleep(SETTLE);
    let rss_after = megabytes(resident(pid)?);
    let rss_peak = megabytes(peak_rss(pid)?);
    println!("==> qmgrd idle for {} s", IDLE_WINDOW.as_secs());
    let cpu_before = process_cpu(pid)?;
    std::thread::sleep(IDLE_WINDOW);
    let idle_cpu = process_cpu(pid)?.saturating_sub(cpu_before);
    instance.stop_daemon()?;
    let load_at_end = load_average();
    drop(instance);
    drop(scratch);

    let mut table = String::from("| measurement | value | target | result |\n|---|---|---|---|\n");
    let mut row = |what: String, value: String, target: &str, met: Option<bool>| {
        let _ = writeln!(
            table,
            "| {what} | {value} | {target} | {} |",
            met.map_or("—", verdict)
        );
    };
    #[expect(clippy::cast_precision_loss, reason = "a job count far below 2^52")]
    let rate = jobs as f64 / fill_seconds;
    row(
        format!("create {jobs} suspended one-file jobs through libqmgr (CreateJob + AddFile)"),
        format!(
            "{fill_seconds:.1} s ({rate:.0} jobs/s); store {:.1} MB",
            megabytes(store_bytes)
        ),
        "—",
        None,
    );
    let start = median(&answering);
    row(
        "qmgrd start-up over the full store, until `qmgr daemon status` answers".to_owned(),
        timing_cell(&answering, 1.0, "s"),
        "≤ 1 s",
        Some(start <= TARGET_START_S),
    );
    row(
        "… of which until its socket accepts (store loaded)".to_owned(),
        timing_cell(&accepting, 1.0, "s"),
        "—",
        None,
    );
    row(
        "qmgrd RSS: after start-up · after list and enumeration · peak (VmHWM)".to_owned(),
        format!("{rss_started:.1} MB · {rss_after:.1} MB · {rss_peak:.1} MB"),
        "≤ 150 MB",
        Some(rss_peak <= TARGET_RSS_MB),
    );
    let list = median(&list_walls);
    row(
        format!("`qmgr list` ({jobs} jobs, output to a file)"),
        timing_cell(&list_walls, 1.0, "s"),
        "≤ 0.5 s",
        Some(list <= TARGET_LIST_S),
    );
    row(
        "`qmgr list --json`".to_owned(),
        timing_cell(&list_json_walls, 1.0, "s"),
        "—",
        None,
    );
    row(
        "C `EnumJobs` + `GetCount`".to_owned(),
        timing_cell(&enum_count, 1.0, "ms"),
        "—",
        None,
    );
    row(
        "… then `Next` over every job (batches of 1,000, each released)".to_owned(),
        timing_cell(&enum_walk, 1.0, "ms"),
        "—",
        None,
    );
    row(
        format!("qmgrd CPU (user+sys) over {} s idle", IDLE_WINDOW.as_secs()),
        format!("{} ms", idle_cpu.as_millis()),
        "≈ 0 (≤ 10 ms)",
        Some(idle_cpu <= IDLE_CPU_TARGET),
    );
    let report = format!(
        "{}\n\n{table}\n\
         - One private instance on tmpfs (its own XDG directories; the user's queue is \
         untouched); qmgrd is the release build run as `qmgrd --foreground` by the current \
         user. Its config.toml raises one limit: `{}`.\n\
         - The jobs are made by bench/c/queue_bench.c through libqmgr (one CreateJob and one \
         AddFile each, left suspended); their one file points at a port nothing listens on.\n\
         - Medians of {rounds} rounds (min–max). Start-up is timed from spawning qmgrd, \
         which answers only once the store is loaded, to the exit of the first `qmgr daemon \
         status` (a whole CLI process) that gets an answer. RSS is VmRSS from \
         /proc/PID/status, 1 s after the work; MB = 10⁶ bytes.\n\
         - Load average (1, 5, 15 min) at the start: {load_at_start}; at the end: \
         {load_at_end}. The 2 cores are shared with other work.\n",
        machine_facts(),
        config.trim()
    );
    print!("\n{report}");
    save("queue.md", "qmgrd with a large queue", &report)
}

/// The C program with `args`, pointed at `instance`.
fn c_command(program: &Path, instance: &QmgrInstance, args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command.args(args);
    instance.configure(&mut command);
    // `cargo run` puts xtask's own target directory on LD_LIBRARY_PATH, which would win
    // over the rpath to the release libqmgr.
    command.env_remove("LD_LIBRARY_PATH");
    command
}

/// Runs `command` to its end; its standard output, or an error with its standard error.
fn output_of(mut command: Command) -> Result<String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}",
            output.status,
            tail(&String::from_utf8_lossy(&output.stderr))
        );
    }
    String::from_utf8(output.stdout).context("the program printed something that is not UTF-8")
}

/// The value of a `key=value` line.
fn value_of(output: &str, key: &str) -> Result<String> {
    output
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_owned)
        .with_context(|| format!("no {key}= in the output:\n{output}"))
}

fn numbers(list: &str) -> Result<Vec<f64>> {
    list.split(',')
        .map(|n| n.parse().with_context(|| format!("{n:?} is not a number")))
        .collect()
}

/// `qmgr list` named every job: one line per job (each names the jobs' display name), or
/// in JSON one `"queue_bench"` string per job.
fn check_listing(path: &Path, jobs: usize, json: bool) -> Result<()> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let listed = if json {
        text.matches("\"queue_bench\"").count()
    } else {
        text.lines()
            .filter(|line| line.contains("queue_bench"))
            .count()
    };
    ensure!(
        listed == jobs,
        "`qmgr list{}` showed {listed} jobs, not {jobs}",
        if json { " --json" } else { "" }
    );
    Ok(())
}

/// The bytes of the files directly in `dir`.
fn directory_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let metadata = entry?.metadata()?;
        if metadata.is_file() {
            total += metadata.len();
        }
    }
    Ok(total)
}

/// `median unit (min–max)`.
fn timing_cell(values: &[f64], scale: f64, unit: &str) -> String {
    let (low, high) = range(values);
    format!(
        "{:.3} {unit} ({:.3}–{:.3})",
        median(values) * scale,
        low * scale,
        high * scale
    )
}

#[cfg(test)]
mod tests {
    use super::{numbers, value_of};

    #[test]
    fn value_of_finds_the_line_of_its_key_only() {
        let output = "enum_count_ms_extra=9\nenum_count_ms=1.5,2.5\n";
        assert_eq!(value_of(output, "enum_count_ms").unwrap(), "1.5,2.5");
        assert!(value_of(output, "fill_seconds").is_err());
    }

    #[test]
    fn numbers_reads_a_comma_separated_list_and_refuses_anything_else() {
        assert_eq!(numbers("1.5,2").unwrap(), vec![1.5, 2.0]);
        assert!(numbers("1.5,x").is_err());
    }
}
