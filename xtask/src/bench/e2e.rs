//! `cargo xtask bench e2e`: what a user runs — `qmgr transfer` through a fresh qmgrd, and a
//! C program through libqmgr — beside curl and aria2c, downloading from a private nginx on
//! 127.0.0.1 with files served from and saved to tmpfs. Every tool runs the same rounds,
//! interleaved (A1 B1 C1 A2 …) so that drifts of the shared machine hit all alike, and
//! every download of every run is compared byte for byte with its source.
//!
//! `QMGR_BENCH_ROUNDS` sets the timed rounds (default 5; one untimed warm-up round comes
//! first when there are more than one), `QMGR_BENCH_SCALE=small` shrinks every case about
//! tenfold for a quick check, and `QMGR_BENCH_CASES=small,tiny` runs only the cases named
//! (large, small, tiny, medium), leaving the results file alone.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::table::megabytes;
use crate::bench::build::{build_release, compile_c_bench, release_dir};
use crate::bench::files::{Scratch, check_file, load_average, tail, write_pseudo_random};
use crate::bench::nginx::Nginx;
use crate::bench::qmgr::{QmgrInstance, peak_rss, process_cpu};
use crate::bench::run::{measure, median, range};
use crate::bench::save;
use crate::bench::table::Table;
use crate::bench::tools::{Needed, ensure_installed};

const DEFAULT_ROUNDS: usize = 5;
/// Files transferred at once by every tool in the many-files cases.
const PARALLEL: usize = 16;
/// `max_files_per_job` where a case raises it: the service's ceiling, so that the C program
/// needs as few jobs as the service allows.
const FILES_PER_JOB: usize = 1000;
/// The C program's second run splits the files into smaller jobs (about the default of
/// 200 files, with 8 jobs × 2 files at once making PARALLEL), to show what the size of a
/// job costs.
const SMALLER_JOBS: usize = 250;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// The peers every benchmark of qmgr's path runs beside.
pub(crate) const PEERS: &[Needed] = &[
    Needed {
        command: "nginx",
        packages: &["nginx-light", "nginx"],
    },
    Needed {
        command: "curl",
        packages: &["curl"],
    },
    Needed {
        command: "aria2c",
        packages: &["aria2"],
    },
];

/// How big the run is: the full benchmark or a tenth of it for a quick check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scale {
    Full,
    Small,
}

impl Scale {
    pub(crate) fn from_env() -> Result<Scale> {
        match std::env::var("QMGR_BENCH_SCALE").as_deref() {
            Err(_) | Ok("" | "full") => Ok(Scale::Full),
            Ok("small") => Ok(Scale::Small),
            Ok(other) => bail!("QMGR_BENCH_SCALE={other:?}: say `full` or `small`"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scale::Full => "full",
            Scale::Small => "small (QMGR_BENCH_SCALE=small)",
        }
    }
}

/// Timed rounds from `QMGR_BENCH_ROUNDS`, else `default`.
pub(crate) fn rounds_from_env(default: usize) -> Result<usize> {
    match std::env::var("QMGR_BENCH_ROUNDS") {
        Err(_) => Ok(default),
        Ok(text) => match text.trim().parse() {
            Ok(rounds) if rounds >= 1 => Ok(rounds),
            _ => bail!("QMGR_BENCH_ROUNDS={text:?}: give a whole number of at least 1"),
        },
    }
}

/// One scenario: `count` files of `size` bytes, all fetched by each tool in one run.
#[derive(Debug)]
struct Case {
    /// Directory under the served root, and the prefix of the case's list files.
    key: &'static str,
    title: String,
    count: usize,
    size: u64,
    /// The C program through libqmgr takes part (the 2,000-file case).
    with_c: bool,
    /// Too many URLs for a command line: `qmgr transfer` reads them with `-i FILE`.
    from_list: bool,
}

impl Case {
    fn names(&self) -> Vec<String> {
        if self.count == 1 {
            return vec![format!("{}.bin", self.key)];
        }
        (0..self.count).map(|i| format!("f{i:05}.bin")).collect()
    }
}

fn cases(scale: Scale) -> Vec<Case> {
    let divide = |n: usize| if scale == Scale::Full { n } else { n / 10 };
    let large = if scale == Scale::Full {
        1 << 30
    } else {
        64 * MIB
    };
    let case = |key, count: usize, size: u64, with_c, from_list| Case {
        key,
        title: if count == 1 {
            format!("1 file of {}", size_text(size))
        } else {
            format!("{count} files of {}, {PARALLEL} at once", size_text(size))
        },
        count,
        size,
        with_c,
        from_list,
    };
    vec![
        case("large", 1, large, false, false),
        case("small", divide(2_000), 64 * KIB, true, false),
        case("tiny", divide(20_000), 4 * KIB, false, true),
        case("medium", divide(100), 10 * MIB, false, false),
    ]
}

fn size_text(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{} KiB", bytes / KIB)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Curl,
    Aria2c,
    QmgrCli,
    /// The C program, with this many files a job.
    CLibrary(usize),
}

impl Tool {
    fn name(self) -> String {
        match self {
            Tool::Curl => "curl".to_owned(),
            Tool::Aria2c => "aria2c".to_owned(),
            Tool::QmgrCli => "qmgr transfer (CLI + qmgrd)".to_owned(),
            Tool::CLibrary(per_job) => {
                format!("C program (libqmgr + qmgrd), {per_job} files a job")
            }
        }
    }

    fn uses_qmgrd(self) -> bool {
        matches!(self, Tool::QmgrCli | Tool::CLibrary(_))
    }
}

/// What one run of one tool cost.
#[derive(Debug, Clone, Copy)]
struct Figures {
    wall: f64,
    client_cpu: f64,
    daemon_cpu: f64,
    client_rss: f64,
    daemon_rss: f64,
}

impl Figures {
    fn cpu(&self) -> f64 {
        self.client_cpu + self.daemon_cpu
    }

    fn rss(&self) -> f64 {
        self.client_rss + self.daemon_rss
    }
}

/// The programs of qmgr's side.
#[derive(Debug)]
struct Programs {
    qmgr: PathBuf,
    qmgrd: PathBuf,
    c_download: PathBuf,
    /// `qmgr transfer` reads URLs from a file with `-i` (older CLIs take them only as
    /// arguments, too many for the 20,000-file case).
    qmgr_reads_input_file: bool,
}

pub fn run() -> Result<()> {
    println!("==> bench e2e (qmgr transfer and libqmgr through qmgrd, beside curl and aria2c)");
    let rounds = rounds_from_env(DEFAULT_ROUNDS)?;
    let scale = Scale::from_env()?;
    ensure_installed(PEERS)?;
    let programs = build()?;
    let load_at_start = load_average();
    let scratch = Scratch::create()?;
    let storage = if scratch.on_tmpfs() {
        "tmpfs".to_owned()
    } else {
        format!("{} (QMGR_BENCH_DIR)", filesystem_of(&scratch.path(".")))
    };
    let chosen = chosen_cases()?;
    let cases: Vec<Case> = cases(scale)
        .into_iter()
        .filter(|case| chosen.as_ref().is_none_or(|keys| keys.contains(&case.key)))
        .collect();
    println!("==> test files in {}", scratch.www().display());
    for (seed, case) in (1..).step_by(100_000).zip(&cases) {
        write_case_files(&scratch.www(), case, seed)?;
    }
    let nginx = Nginx::start(&scratch.www(), &scratch.path("nginx"))?;
    let warm_up = usize::from(rounds > 1);
    let bench = Bench {
        programs: &programs,
        nginx: &nginx,
        scratch: &scratch,
        warm_up,
        rounds,
    };
    let mut sections = Vec::new();
    let mut headline = Table::new(&[
        "case",
        "tool",
        "wall (median)",
        "vs curl",
        "vs aria2c",
        "CPU vs curl",
        "peak RSS",
    ]);
    for case in &cases {
        sections.push(bench.case(case, &mut headline)?);
    }
    let load_at_end = load_average();
    let scratch_on_tmpfs = scratch.on_tmpfs();
    drop(nginx);
    drop(scratch);

    let mut report = String::new();
    let _ = writeln!(report, "{}\n", machine_facts());
    let _ = writeln!(
        report,
        "Scale {}; {rounds} timed round(s) per tool{}. Load average (1, 5, 15 min) at the \
         start: {load_at_start}; at the end: {load_at_end}. The machine's 2 cores are shared \
         with other work, which shows in the spread (min–max).\n",
        scale.name(),
        if warm_up > 0 {
            ", after 1 untimed warm-up round"
        } else {
            ""
        }
    );
    report.push_str("## Headline: ratios of wall time (below 1 is faster than the peer)\n\n");
    report.push_str(&headline.render());
    report.push('\n');
    report.push_str(&method_notes(&programs, &storage));
    for section in sections {
        report.push('\n');
        report.push_str(&section);
    }
    print!("\n{report}");
    match chosen {
        // A run of some cases is a look, not the record: the results file keeps them all.
        Some(keys) => {
            println!(
                "==> only {} (QMGR_BENCH_CASES): bench/results/e2e.md is left as it was",
                keys.join(", ")
            );
            Ok(())
        }
        None if scratch_on_tmpfs => {
            save("e2e.md", "The user's path beside curl and aria2c", &report)
        }
        None => save(
            "e2e-disk.md",
            "The user's path beside curl and aria2c, files and state on disk",
            &report,
        ),
    }
}

/// The cases `QMGR_BENCH_CASES` names (comma-separated keys: large, small, tiny, medium),
/// or `None` for all of them.
fn chosen_cases() -> Result<Option<Vec<&'static str>>> {
    let Ok(text) = std::env::var("QMGR_BENCH_CASES") else {
        return Ok(None);
    };
    let known = cases(Scale::Full);
    let mut keys = Vec::new();
    for name in text
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        let Some(case) = known.iter().find(|case| case.key == name) else {
            let names: Vec<&str> = known.iter().map(|case| case.key).collect();
            bail!(
                "QMGR_BENCH_CASES names {name:?}; the cases are {}",
                names.join(", ")
            );
        };
        keys.push(case.key);
    }
    Ok(Some(keys))
}

/// Release builds of qmgr, qmgrd and libqmgr, and the C program.
fn build() -> Result<Programs> {
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
    let release = release_dir();
    let qmgr = release.join("qmgr");
    let help = Command::new(&qmgr)
        .args(["transfer", "--help"])
        .output()
        .with_context(|| format!("cannot run {} transfer --help", qmgr.display()))?;
    let help = String::from_utf8_lossy(&help.stdout);
    Ok(Programs {
        qmgr_reads_input_file: help.contains("-i,") || help.contains("--input-file"),
        qmgr,
        qmgrd: release.join("qmgrd"),
        c_download: compile_c_bench("e2e_download")?,
    })
}

/// The case's files under `www/<key>/`, incompressible and different from each other.
fn write_case_files(www: &Path, case: &Case, first_seed: u64) -> Result<()> {
    let dir = www.join(case.key);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for path in [www, &dir] {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot open up {}", path.display()))?;
    }
    for (seed, name) in (first_seed..).zip(case.names()) {
        write_pseudo_random(&dir.join(name), case.size, seed)?;
    }
    Ok(())
}

/// The date, the machine and the versions of the peers, for the head of a results file.
pub(crate) fn machine_facts() -> String {
    let first_line = |program: &str, args: &[&str]| -> String {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .map(|out| {
                // nginx prints its version on stderr.
                let text = if out.stdout.is_empty() {
                    out.stderr
                } else {
                    out.stdout
                };
                String::from_utf8_lossy(&text)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            })
            .filter(|line| !line.is_empty())
            .unwrap_or_else(|| format!("{program}: unknown"))
    };
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mut facts = String::new();
    let _ = writeln!(
        facts,
        "- Date: {}",
        first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    );
    let _ = writeln!(
        facts,
        "- nproc: {cores}; kernel: {}",
        first_line("uname", &["-sr"])
    );
    let _ = writeln!(facts, "- {}", first_line("curl", &["--version"]));
    let _ = writeln!(facts, "- {}", first_line("aria2c", &["--version"]));
    let _ = write!(facts, "- {}", first_line("nginx", &["-v"]));
    facts
}

struct Bench<'a> {
    programs: &'a Programs,
    nginx: &'a Nginx,
    scratch: &'a Scratch,
    warm_up: usize,
    rounds: usize,
}

impl Bench<'_> {
    /// Runs every tool of `case` through the rounds and returns the case's section; adds
    /// its qmgr rows to `headline`.
    fn case(&self, case: &Case, headline: &mut Table) -> Result<String> {
        let names = case.names();
        let urls: Vec<String> = names
            .iter()
            .map(|name| self.nginx.url(&format!("{}/{name}", case.key)))
            .collect();
        let lists = self.write_lists(case, &urls)?;
        let mut tools = vec![Tool::Curl, Tool::Aria2c];
        let qmgr_skipped = case.from_list && !self.programs.qmgr_reads_input_file;
        if !qmgr_skipped {
            tools.push(Tool::QmgrCli);
        }
        if case.with_c {
            tools.push(Tool::CLibrary(case.count.min(FILES_PER_JOB)));
            if case.count > SMALLER_JOBS {
                tools.push(Tool::CLibrary(SMALLER_JOBS));
            }
        }
        let total = self.warm_up + self.rounds;
        println!(
            "==> {}: {} tools × {} runs",
            case.title,
            tools.len(),
            self.rounds
        );
        let mut results: Vec<Vec<Figures>> = vec![Vec::new(); tools.len()];
        for round in 0..total {
            for (index, &tool) in tools.iter().enumerate() {
                let downloads = self.scratch.downloads(index)?;
                let what = format!("{} (round {})", tool.name(), round + 1);
                let run = self
                    .run_once(case, tool, &urls, &lists, &downloads, index)
                    .with_context(|| format!("{}: {what}", case.title))?;
                let source = self.scratch.www().join(case.key);
                for name in &names {
                    check_file(&source.join(name), &downloads.join(name), true)
                        .with_context(|| format!("{}: {what}: wrong download", case.title))?;
                }
                fs::remove_dir_all(&downloads)?;
                let warm = round < self.warm_up;
                println!(
                    "    {what}: {:.3} s, cpu {:.3} s, rss {:.1} MB{}",
                    run.wall,
                    run.cpu(),
                    run.rss(),
                    if warm { " (warm-up)" } else { "" }
                );
                if !warm {
                    results[index].push(run);
                }
            }
        }
        Ok(Self::section(
            case,
            &tools,
            &results,
            qmgr_skipped,
            headline,
        ))
    }

    /// The URL lists the tools read: curl's config, aria2c's (and `qmgr -i`'s) plain list.
    fn write_lists(&self, case: &Case, urls: &[String]) -> Result<Lists> {
        let curl = self.scratch.path(&format!("{}-curl.txt", case.key));
        let curl_lines = urls.iter().fold(String::new(), |mut lines, url| {
            let _ = writeln!(lines, "url = \"{url}\"");
            lines
        });
        fs::write(&curl, curl_lines)?;
        let plain = self.scratch.path(&format!("{}-urls.txt", case.key));
        fs::write(&plain, urls.join("\n") + "\n")?;
        Ok(Lists {
            curl,
            plain,
            c_program: self.scratch.path(&format!("{}-c.txt", case.key)),
        })
    }

    /// One run of `tool` into `downloads`; a qmgr tool gets a fresh instance and qmgrd.
    fn run_once(
        &self,
        case: &Case,
        tool: Tool,
        urls: &[String],
        lists: &Lists,
        downloads: &Path,
        index: usize,
    ) -> Result<Figures> {
        let log = self.scratch.path(&format!("tool-{index}.log"));
        let stderr =
            File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let result = if tool.uses_qmgrd() {
            self.run_with_daemon(case, tool, urls, lists, downloads, stderr)
        } else {
            let mut command = peer_command(case, tool, urls, lists, downloads);
            command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr);
            measure(&mut command).map(|run| Figures {
                wall: run.wall.as_secs_f64(),
                client_cpu: run.cpu.as_secs_f64(),
                daemon_cpu: 0.0,
                client_rss: megabytes(run.peak_rss),
                daemon_rss: 0.0,
            })
        };
        result.with_context(|| tail(&fs::read_to_string(&log).unwrap_or_default()))
    }

    fn run_with_daemon(
        &self,
        case: &Case,
        tool: Tool,
        urls: &[String],
        lists: &Lists,
        downloads: &Path,
        stderr: File,
    ) -> Result<Figures> {
        let root = self.scratch.path("instance");
        if root.exists() {
            fs::remove_dir_all(&root)
                .with_context(|| format!("cannot remove {}", root.display()))?;
        }
        let mut instance = QmgrInstance::new(
            self.programs.qmgr.clone(),
            self.programs.qmgrd.clone(),
            root.clone(),
        )?;
        if let Some(config) = raised_limits(case, tool) {
            instance.write_config(&config)?;
        }
        instance.start_daemon()?;
        let pid = instance
            .daemon_pid()
            .context("qmgrd runs but its store lock names no live process")?;
        let mut command = if let Tool::CLibrary(per_job) = tool {
            write_c_list(&lists.c_program, urls, downloads, &case.names())?;
            let mut command = Command::new(&self.programs.c_download);
            command.arg(&lists.c_program).arg(per_job.to_string());
            instance.configure(&mut command);
            // `cargo run` puts xtask's own target directory on LD_LIBRARY_PATH, which
            // would win over the rpath to the release libqmgr.
            command.env_remove("LD_LIBRARY_PATH");
            command
        } else {
            let mut command = instance.command();
            command.args(qmgr_args(case, urls, lists, downloads));
            command
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let cpu_before = process_cpu(pid)?;
        let run = measure(&mut command)?;
        let daemon_cpu = process_cpu(pid)?.saturating_sub(cpu_before);
        let daemon_rss = peak_rss(pid)?;
        instance.stop_daemon()?;
        drop(instance);
        fs::remove_dir_all(&root).with_context(|| format!("cannot remove {}", root.display()))?;
        Ok(Figures {
            wall: run.wall.as_secs_f64(),
            client_cpu: run.cpu.as_secs_f64(),
            daemon_cpu: daemon_cpu.as_secs_f64(),
            client_rss: megabytes(run.peak_rss),
            daemon_rss: megabytes(daemon_rss),
        })
    }

    fn section(
        case: &Case,
        tools: &[Tool],
        results: &[Vec<Figures>],
        qmgr_skipped: bool,
        headline: &mut Table,
    ) -> String {
        let column = |runs: &[Figures], key: fn(&Figures) -> f64| -> Vec<f64> {
            runs.iter().map(key).collect()
        };
        let wall_of = |index: usize| median(&column(&results[index], |f| f.wall));
        let cpu_of = |index: usize| median(&column(&results[index], Figures::cpu));
        let (curl_wall, aria2_wall, curl_cpu) = (wall_of(0), wall_of(1), cpu_of(0));
        let mut table = Table::new(&[
            "tool",
            "wall, median (min–max)",
            "vs curl",
            "vs aria2c",
            "CPU user+sys (client + qmgrd)",
            "CPU vs curl",
            "peak RSS (client + qmgrd)",
        ]);
        for (&tool, runs) in tools.iter().zip(results) {
            let walls = column(runs, |f| f.wall);
            let (low, high) = range(&walls);
            let wall = median(&walls);
            let cpu = median(&column(runs, Figures::cpu));
            let rss = median(&column(runs, Figures::rss));
            let (cpu_cell, rss_cell) = if tool.uses_qmgrd() {
                (
                    format!(
                        "{cpu:.3} s ({:.3} + {:.3})",
                        median(&column(runs, |f| f.client_cpu)),
                        median(&column(runs, |f| f.daemon_cpu))
                    ),
                    format!(
                        "{rss:.1} MB ({:.1} + {:.1})",
                        median(&column(runs, |f| f.client_rss)),
                        median(&column(runs, |f| f.daemon_rss))
                    ),
                )
            } else {
                (format!("{cpu:.3} s"), format!("{rss:.1} MB"))
            };
            let vs_curl = format!("{:.2}×", wall / curl_wall);
            let vs_aria2 = format!("{:.2}×", wall / aria2_wall);
            let cpu_vs_curl = format!("{:.2}×", cpu / curl_cpu);
            if tool.uses_qmgrd() {
                headline.row(vec![
                    case.title.clone(),
                    tool.name(),
                    format!("{wall:.3} s"),
                    vs_curl.clone(),
                    vs_aria2.clone(),
                    cpu_vs_curl.clone(),
                    format!("{rss:.1} MB"),
                ]);
            }
            table.row(vec![
                tool.name(),
                format!("{wall:.3} s ({low:.3}–{high:.3})"),
                vs_curl,
                vs_aria2,
                cpu_cell,
                cpu_vs_curl,
                rss_cell,
            ]);
        }
        if qmgr_skipped {
            headline.row(vec![
                case.title.clone(),
                Tool::QmgrCli.name(),
                "skipped".to_owned(),
                "—".to_owned(),
                "—".to_owned(),
                "—".to_owned(),
                "—".to_owned(),
            ]);
        }
        let mut section = format!("## {}\n\n{}\n", case.title, table.render());
        for &tool in tools {
            let _ = writeln!(
                section,
                "- {}: `{}`",
                tool.name(),
                shown_command(case, tool)
            );
            if let Some(config) = raised_limits(case, tool) {
                let _ = writeln!(
                    section,
                    "  - its qmgrd's config.toml: `{}`",
                    config.trim().replace('\n', "; ")
                );
            }
        }
        if tools
            .iter()
            .filter(|tool| matches!(tool, Tool::CLibrary(_)))
            .count()
            > 1
        {
            section.push_str(
                "- The C program's rows differ only in how many files each job holds (the \
                 parallelism per job is set so that 16 files move at once in both).\n",
            );
        }
        if qmgr_skipped {
            let _ = writeln!(
                section,
                "- `qmgr transfer` is not run: this `qmgr transfer --help` shows no `-i` \
                 (URLs from a file), and {} URLs as arguments are not what a user types.",
                case.count
            );
        }
        section
    }
}

/// Where the tools read their URLs from.
#[derive(Debug)]
struct Lists {
    /// `url = "…"` lines (`curl -K`).
    curl: PathBuf,
    /// One URL per line (`aria2c -i`, `qmgr transfer -i`).
    plain: PathBuf,
    /// `URL PATH` lines, written per run since the paths name that run's directory.
    c_program: PathBuf,
}

/// curl's or aria2c's command for `case`, saving into `dir`.
/// The file system `path` is on and its device, as `df` names them ("ext4 on /dev/vda").
fn filesystem_of(path: &Path) -> String {
    let output = Command::new("df")
        .args(["--output=fstype,source"])
        .arg(path)
        .output();
    match output {
        Ok(output) if output.status.success() => {
            let text = String::from_utf8_lossy(&output.stdout);
            match text.lines().nth(1).map(str::split_whitespace) {
                Some(mut fields) => match (fields.next(), fields.next()) {
                    (Some(kind), Some(source)) => format!("{kind} on {source}"),
                    _ => "disk".to_owned(),
                },
                None => "disk".to_owned(),
            }
        }
        _ => "disk".to_owned(),
    }
}

fn peer_command(case: &Case, tool: Tool, urls: &[String], lists: &Lists, dir: &Path) -> Command {
    let parallel = PARALLEL.to_string();
    match (tool, case.count) {
        (Tool::Curl, 1) => {
            let mut c = Command::new("curl");
            c.args(["-sS", "--fail", "-o"])
                .arg(dir.join(&case.names()[0]))
                .arg(&urls[0]);
            c
        }
        (Tool::Curl, _) => {
            let mut c = Command::new("curl");
            c.args(["-sS", "--fail", "-Z", "--parallel-max", &parallel])
                .args(["--remote-name-all", "--output-dir"])
                .arg(dir)
                .arg("-K")
                .arg(&lists.curl);
            c
        }
        (_, 1) => {
            let mut c = Command::new("aria2c");
            c.args(ARIA2_COMMON)
                .args(["-x1", "-s1", "-d"])
                .arg(dir)
                .arg("-o")
                .arg(&case.names()[0])
                .arg(&urls[0]);
            c
        }
        (_, _) => {
            let mut c = Command::new("aria2c");
            c.args(ARIA2_COMMON)
                .arg(format!("-j{PARALLEL}"))
                .arg("-d")
                .arg(dir)
                .arg("-i")
                .arg(&lists.plain);
            c
        }
    }
}

/// aria2c without console output or progress, overwriting rather than renaming.
const ARIA2_COMMON: &[&str] = &[
    "-q",
    "--allow-overwrite=true",
    "--auto-file-renaming=false",
    "--summary-interval=0",
];

/// `qmgr transfer`'s arguments for `case`, saving into `dir`.
fn qmgr_args(case: &Case, urls: &[String], lists: &Lists, dir: &Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec!["transfer".into(), "-q".into()];
    if case.count == 1 {
        args.extend(["-o".into(), dir.join(&case.names()[0]).into()]);
        args.push(urls[0].clone().into());
        return args;
    }
    args.extend([
        "--parallel".into(),
        PARALLEL.to_string().into(),
        "--dir".into(),
        dir.into(),
    ]);
    if case.from_list {
        args.extend(["-i".into(), lists.plain.clone().into()]);
    } else {
        args.extend(urls.iter().map(Into::into));
    }
    args
}

/// The command lines as the results show them.
fn shown_command(case: &Case, tool: Tool) -> String {
    let single = case.count == 1;
    let aria2 = ARIA2_COMMON.join(" ");
    match (tool, single) {
        (Tool::Curl, true) => "curl -sS --fail -o DIR/FILE URL".to_owned(),
        (Tool::Curl, false) => format!(
            "curl -sS --fail -Z --parallel-max {PARALLEL} --remote-name-all --output-dir DIR \
             -K LIST (url = \"…\" lines)"
        ),
        (Tool::Aria2c, true) => format!("aria2c {aria2} -x1 -s1 -d DIR -o FILE URL"),
        (Tool::Aria2c, false) => format!("aria2c {aria2} -j{PARALLEL} -d DIR -i LIST"),
        (Tool::QmgrCli, true) => "qmgr transfer -q -o DIR/FILE URL".to_owned(),
        (Tool::QmgrCli, false) if case.from_list => {
            format!("qmgr transfer -q --parallel {PARALLEL} --dir DIR -i LIST")
        }
        (Tool::QmgrCli, false) => {
            format!("qmgr transfer -q --parallel {PARALLEL} --dir DIR URL…")
        }
        (Tool::CLibrary(per_job), _) => format!(
            "e2e_download LIST {per_job} (bench/c/e2e_download.c: {} job(s), FOREGROUND, one \
             AddFileSet each, Resume, GetState every 10 ms, Complete)",
            case.count.div_ceil(per_job)
        ),
    }
}

/// The config a case's qmgrd needs beyond the defaults, if any.
fn raised_limits(case: &Case, tool: Tool) -> Option<String> {
    match tool {
        // At the default 200 files a job, 20,000 files would need 100 jobs: more than the
        // default 60 a user may have.
        Tool::QmgrCli if case.count > 60 * 200 => {
            Some(format!("max_files_per_job = {FILES_PER_JOB}\n"))
        }
        // The C API has no per-job parallelism: new jobs take [job_defaults] parallel_files,
        // set so that the jobs together move PARALLEL files at once.
        Tool::CLibrary(per_job) => {
            let jobs = case.count.div_ceil(per_job);
            Some(format!(
                "max_files_per_job = {}\n[job_defaults]\nparallel_files = {}\n",
                per_job.max(200),
                (PARALLEL / jobs).max(1)
            ))
        }
        _ => None,
    }
}

/// The C program's list: `URL PATH` lines into `dir`.
fn write_c_list(list: &Path, urls: &[String], dir: &Path, names: &[String]) -> Result<()> {
    let mut text = String::new();
    for (url, name) in urls.iter().zip(names) {
        let _ = writeln!(text, "{url} {}", dir.join(name).display());
    }
    fs::write(list, text).with_context(|| format!("cannot write {}", list.display()))
}

fn method_notes(programs: &Programs, storage: &str) -> String {
    let mut notes = format!(
        "How the figures are taken:\n\n\
         - Wall time from the client's start to its exit; CPU (user+sys) and peak RSS of the \
         client from the kernel's accounting of the exited process (wait4). MB = 10⁶ bytes.\n\
         - qmgr's rows: every run gets a fresh instance (private XDG directories, so the \
         user's queue is untouched) and a fresh `qmgrd --foreground`, started before the \
         clock starts and waited for until it accepts connections, as a qmgrd that already \
         runs would. qmgrd's CPU is read from /proc/PID/stat before and after the client's \
         run; its peak RSS is its VmHWM after the run. Both are added to the client's.\n\
         - Every file of every run, warm-up included, is checked for size and compared byte \
         for byte with its source; one difference fails the benchmark.\n\
         - Files are served by one nginx worker on 127.0.0.1 from {storage} and saved to \
         {storage}; qmgr's state (its SQLite store) is there too.\n",
    );
    if !programs.qmgr_reads_input_file {
        notes.push_str(
            "- This `qmgr` has no `transfer -i FILE`: the case of many 4 KiB files runs without it.\n",
        );
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::{Scale, Tool, cases, raised_limits, size_text};

    #[test]
    fn sizes_read_in_the_largest_whole_unit() {
        assert_eq!(size_text(1 << 30), "1 GiB");
        assert_eq!(size_text(10 << 20), "10 MiB");
        assert_eq!(size_text(64 << 10), "64 KiB");
    }

    #[test]
    fn the_small_scale_is_a_tenth_of_the_file_counts() {
        let full: Vec<usize> = cases(Scale::Full).iter().map(|c| c.count).collect();
        let small: Vec<usize> = cases(Scale::Small).iter().map(|c| c.count).collect();
        assert_eq!(full, vec![1, 2_000, 20_000, 100]);
        assert_eq!(small, vec![1, 200, 2_000, 10]);
    }

    #[test]
    fn c_jobs_share_the_parallelism_and_their_limits_are_stated() {
        let many = &cases(Scale::Full)[1];
        assert_eq!(
            raised_limits(many, Tool::CLibrary(1000)).unwrap(),
            "max_files_per_job = 1000\n[job_defaults]\nparallel_files = 8\n"
        );
        assert_eq!(
            raised_limits(many, Tool::CLibrary(250)).unwrap(),
            "max_files_per_job = 250\n[job_defaults]\nparallel_files = 2\n"
        );
    }

    #[test]
    fn only_the_cases_beyond_the_default_limits_raise_them_for_the_cli() {
        let all = cases(Scale::Full);
        let raised: Vec<bool> = all
            .iter()
            .map(|case| raised_limits(case, Tool::QmgrCli).is_some())
            .collect();
        assert_eq!(raised, vec![false, false, true, false]);
        assert!(raised_limits(&all[2], Tool::Curl).is_none());
    }
}
