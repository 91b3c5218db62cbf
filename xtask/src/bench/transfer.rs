//! `cargo xtask bench transfer`: qmgr's transfer engine beside curl and aria2c, downloading
//! from a private nginx on 127.0.0.1, files served from and saved to tmpfs so that disks
//! play no part. Every tool runs the same number of times, interleaved (A1 B1 C1 A2 …) so
//! that drifts of the machine hit all alike; the tables give medians and ratios to curl.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use super::table::megabytes;
use crate::bench::build::{build_release, package_exists, release_dir};
use crate::bench::files::{Scratch, check_file, load_average, tail, write_pseudo_random};
use crate::bench::nginx::Nginx;
use crate::bench::qmgr::{QmgrInstance, peak_rss, process_cpu, reset_peak_rss};
use crate::bench::run::{Measured, measure, median_by, range_by};
use crate::bench::save;
use crate::bench::table::{Table, verdict};
use crate::bench::tools::{Needed, ensure_installed};

/// How many times each tool runs: untimed rounds first (binaries and files into the page
/// cache, the daemon started), then timed ones.
#[derive(Debug, Clone, Copy)]
struct Rounds {
    warm_up: usize,
    timed: usize,
}

/// The 1 GiB and many-files scenarios take seconds a run: more than five runs steady the
/// medians on a machine that may be busy with other work.
const QUICK: Rounds = Rounds {
    warm_up: 1,
    timed: 7,
};
/// The throttled runs take 10 s each and vary little. No warm-up: the first scenarios
/// warmed the way.
const THROTTLED: Rounds = Rounds {
    warm_up: 0,
    timed: 5,
};

const LARGE_NAME: &str = "large.bin";
const LARGE_SIZE: u64 = 1 << 30;
const SMALL_COUNT: usize = 2_000;
const SMALL_SIZE: u64 = 64 * 1024;
const PARALLEL: usize = 16;
const THROTTLED_NAME: &str = "throttled.bin";
const THROTTLED_SIZE: u64 = 200_000_000;
const THROTTLE_RATE: u64 = 20_000_000;

pub fn run() -> Result<()> {
    println!("==> bench transfer (qmgr-transfer engine beside curl and aria2c)");
    ensure_installed(&[
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
    ])?;
    build_release(&["-p", "qmgr-transfer", "--example", "fetch"])?;
    let fetch = release_dir().join("examples/fetch");
    let cli = qmgr_cli();

    let load_at_start = load_average();
    let scratch = Scratch::create()?;
    println!("==> test files in {}", scratch.www().display());
    let files = TestFiles::write(&scratch.www())?;
    let nginx = Nginx::start(&scratch.www(), &scratch.path("nginx"))?;
    let qmgr = if let Some((qmgr, qmgrd)) = cli {
        Some(QmgrInstance::new(qmgr, qmgrd, scratch.path("qmgr"))?)
    } else {
        println!("(no qmgr CLI in the workspace: `qmgr transfer` is not timed)");
        None
    };
    let bench = Bench {
        fetch,
        nginx: &nginx,
        scratch: &scratch,
        files: &files,
    };

    let sections = [
        bench.large_file(qmgr.as_ref())?,
        bench.many_files()?,
        bench.throttled()?,
    ];
    // Other work on the machine shows in the figures; the reader should know of it.
    let report = format!(
        "Load average when the run started (1, 5, 15 min): {load_at_start}.\n\n{}",
        sections.join("\n")
    );
    print!("\n{report}");
    // qmgrd first, then nginx, then the files (the reverse of their creation).
    drop(qmgr);
    drop(nginx);
    drop(scratch);
    save(
        "transfer.md",
        "Transfer engine beside curl and aria2c",
        &report,
    )
}

/// Builds `qmgr` and `qmgrd` when the workspace has the CLI; their paths if both exist.
fn qmgr_cli() -> Option<(PathBuf, PathBuf)> {
    if !package_exists("qmgr-cli") {
        return None;
    }
    // The CLI is young; a workspace where it does not build yet still gets the other figures.
    if let Err(error) = build_release(&["-p", "qmgr-cli", "-p", "qmgr-service", "--bins"]) {
        println!("(skipping `qmgr transfer`: {error:#})");
        return None;
    }
    let qmgr = release_dir().join("qmgr");
    let qmgrd = release_dir().join("qmgrd");
    (qmgr.is_file() && qmgrd.is_file()).then_some((qmgr, qmgrd))
}

/// What nginx serves: one large file, many small ones, one for the throttled run.
#[derive(Debug)]
struct TestFiles {
    www: PathBuf,
    small_names: Vec<String>,
}

impl TestFiles {
    fn write(www: &Path) -> Result<TestFiles> {
        let small_dir = www.join("small");
        fs::create_dir_all(&small_dir)
            .with_context(|| format!("cannot create {}", small_dir.display()))?;
        for dir in [www, &small_dir] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
        }
        write_pseudo_random(&www.join(LARGE_NAME), LARGE_SIZE, 1)?;
        write_pseudo_random(&www.join(THROTTLED_NAME), THROTTLED_SIZE, 2)?;
        let small_names: Vec<String> = (0..SMALL_COUNT).map(|i| format!("f{i:04}.bin")).collect();
        for (seed, name) in (3..).zip(&small_names) {
            write_pseudo_random(&small_dir.join(name), SMALL_SIZE, seed)?;
        }
        Ok(TestFiles {
            www: www.to_owned(),
            small_names,
        })
    }
}

/// A tool in a scenario: how to run it into a download directory.
struct Contender<'a> {
    name: &'static str,
    /// The command line as the results show it.
    shown: String,
    command: Box<dyn Fn(&Path) -> Command + 'a>,
    /// The qmgrd that does the work for the `qmgr` CLI, counted with it.
    daemon: Option<&'a QmgrInstance>,
}

impl Contender<'_> {
    /// One run; the qmgr CLI's figures include its qmgrd's CPU and peak memory.
    fn measure(&self, downloads: &Path, log: &Path) -> Result<Measured> {
        let stderr =
            File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let mut command = (self.command)(downloads);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let Some(daemon) = self.daemon else {
            return measure(&mut command);
        };
        let before = daemon.daemon_pid();
        let cpu_before = match before {
            Some(pid) => {
                reset_peak_rss(pid)?;
                process_cpu(pid)?
            }
            None => Duration::ZERO,
        };
        let mut run = measure(&mut command)?;
        let pid = daemon
            .daemon_pid()
            .context("qmgrd is not running after `qmgr transfer`")?;
        let cpu_before = if before == Some(pid) {
            cpu_before
        } else {
            Duration::ZERO
        };
        run.cpu += process_cpu(pid)?.saturating_sub(cpu_before);
        run.peak_rss += peak_rss(pid)?;
        Ok(run)
    }
}

struct Bench<'a> {
    fetch: PathBuf,
    nginx: &'a Nginx,
    scratch: &'a Scratch,
    files: &'a TestFiles,
}

/// How a scenario checks a run's downloads: every file's size always, the content too
/// when asked (once per tool), so that a tool that breaks cannot win.
type Verify<'v> = dyn Fn(&Path, bool) -> Result<()> + 'v;

impl Bench<'_> {
    fn fetch(&self) -> Command {
        Command::new(&self.fetch)
    }

    /// Runs each contender the given rounds, interleaved; the timed runs of each.
    fn race(
        &self,
        title: &str,
        contenders: &[Contender<'_>],
        rounds: Rounds,
        verify: &Verify<'_>,
    ) -> Result<Vec<Vec<Measured>>> {
        let Rounds { warm_up, timed } = rounds;
        println!("==> {title}: {} tools × {timed} runs", contenders.len());
        let mut results = vec![Vec::with_capacity(timed); contenders.len()];
        for round in 0..warm_up + timed {
            for (index, contender) in contenders.iter().enumerate() {
                let downloads = self.scratch.downloads(index)?;
                let log = self.scratch.path(&format!("tool-{index}.log"));
                let what = format!("{} (round {})", contender.name, round + 1);
                let run = contender.measure(&downloads, &log).with_context(|| {
                    let stderr = fs::read_to_string(&log).unwrap_or_default();
                    format!("{what}: {}\n{}", contender.shown, tail(&stderr))
                })?;
                verify(&downloads, round == 0)
                    .with_context(|| format!("{what}: wrong download"))?;
                fs::remove_dir_all(&downloads)?;
                if round >= warm_up {
                    results[index].push(run);
                }
                println!(
                    "    {what}: {:.3} s, cpu {:.3} s, rss {:.1} MB{}",
                    run.wall.as_secs_f64(),
                    run.cpu.as_secs_f64(),
                    megabytes(run.peak_rss),
                    if round < warm_up { " (warm-up)" } else { "" }
                );
            }
        }
        Ok(results)
    }

    /// Scenario 1: one 1 GiB file over one connection.
    fn large_file(&self, qmgr: Option<&QmgrInstance>) -> Result<String> {
        let url = self.nginx.url(LARGE_NAME);
        let mut contenders = vec![
            Contender {
                name: "qmgr engine (fetch)",
                shown: "fetch URL --dir DIR".to_owned(),
                command: Box::new(|dir: &Path| {
                    let mut c = self.fetch();
                    c.arg(&url).arg("--dir").arg(dir);
                    c
                }),
                daemon: None,
            },
            Contender {
                name: "curl",
                shown: "curl -sS --fail -o DIR/large.bin URL".to_owned(),
                command: Box::new(|dir: &Path| {
                    let mut c = Command::new("curl");
                    c.args(["-sS", "--fail", "-o"])
                        .arg(dir.join(LARGE_NAME))
                        .arg(&url);
                    c
                }),
                daemon: None,
            },
            Contender {
                name: "aria2c -x1 -s1",
                shown: "aria2c -q -x1 -s1 -d DIR -o large.bin URL".to_owned(),
                command: Box::new(|dir: &Path| {
                    let mut c = Command::new("aria2c");
                    c.args(["-q", "-x1", "-s1", "-d"])
                        .arg(dir)
                        .args(["-o", LARGE_NAME])
                        .arg(&url);
                    c
                }),
                daemon: None,
            },
        ];
        if let Some(instance) = qmgr {
            contenders.push(Contender {
                name: "qmgr transfer (CLI + qmgrd)",
                shown: "qmgr transfer URL -o DIR/large.bin".to_owned(),
                command: Box::new(|dir: &Path| {
                    let mut c = instance.command();
                    c.arg("transfer")
                        .arg(&url)
                        .arg("-o")
                        .arg(dir.join(LARGE_NAME));
                    c
                }),
                daemon: Some(instance),
            });
        }
        let source = self.files.www.join(LARGE_NAME);
        let verify =
            |dir: &Path, content: bool| check_file(&source, &dir.join(LARGE_NAME), content);
        let results = self.race("1 GiB file, one connection", &contenders, QUICK, &verify)?;

        let curl = &results[1];
        let curl_wall = median_by(curl, wall);
        let curl_cpu = median_by(curl, cpu);
        let mut table = Table::new(&[
            "tool",
            "wall, median (min–max)",
            "throughput",
            "speed vs curl",
            "CPU user+sys",
            "CPU vs curl",
            "peak RSS",
            "targets",
        ]);
        for (index, (contender, runs)) in contenders.iter().zip(&results).enumerate() {
            let wall_s = median_by(runs, wall);
            let cpu_s = median_by(runs, cpu);
            let rss = median_by(runs, rss_mb);
            let speed = curl_wall / wall_s;
            let cpu_ratio = cpu_s / curl_cpu;
            let targets = if index == 0 {
                format!(
                    "speed ≥ 0.95× {} · CPU ≤ 1.1× {} · RSS ≤ 32 MB {}",
                    verdict(speed >= 0.95),
                    verdict(cpu_ratio <= 1.1),
                    verdict(rss <= 32.0)
                )
            } else {
                "—".to_owned()
            };
            table.row(vec![
                contender.name.to_owned(),
                wall_cell(runs),
                format!("{:.0} MB/s", rate_mb(LARGE_SIZE, wall_s)),
                format!("{speed:.2}×"),
                format!("{cpu_s:.3} s"),
                format!("{cpu_ratio:.2}×"),
                format!("{rss:.1} MB"),
                targets,
            ]);
        }
        let mut section = String::from("## 1 GiB file, one connection\n\n");
        section.push_str(&table.render());
        section.push('\n');
        notes(&mut section, &contenders, QUICK);
        section.push_str(
            "- aria2c's defaults are `-x1` (one connection per server) with `-s5` and \
             `--file-allocation=prealloc`; against one server `-s5` cannot open more than the \
             one connection, and `-x1 -s1` says so explicitly. Its preallocation is kept.\n",
        );
        if qmgr.is_some() {
            section.push_str(
                "- `qmgr transfer`: CPU is the CLI's plus its qmgrd's during the run; peak RSS \
                 is the CLI's peak plus qmgrd's peak (VmHWM, reset before each run).\n",
            );
        }
        Ok(section)
    }

    /// Scenario 2: 2,000 files of 64 KiB, 16 at a time.
    fn many_files(&self) -> Result<String> {
        let urls: Vec<String> = self
            .files
            .small_names
            .iter()
            .map(|name| self.nginx.url(&format!("small/{name}")))
            .collect();
        let curl_config = self.scratch.path("curl-urls.txt");
        let curl_lines = urls.iter().fold(String::new(), |mut lines, url| {
            let _ = writeln!(lines, "url = \"{url}\"");
            lines
        });
        fs::write(&curl_config, curl_lines)?;
        let aria2_list = self.scratch.path("aria2-urls.txt");
        fs::write(&aria2_list, urls.join("\n") + "\n")?;
        let parallel = PARALLEL.to_string();

        let contenders = [
            Contender {
                name: "qmgr engine (fetch)",
                shown: format!("fetch --parallel {PARALLEL} URL×{SMALL_COUNT} --dir DIR"),
                command: Box::new(|dir: &Path| {
                    let mut c = self.fetch();
                    c.args(["--parallel", &parallel])
                        .args(&urls)
                        .arg("--dir")
                        .arg(dir);
                    c
                }),
                daemon: None,
            },
            Contender {
                name: "curl",
                shown: format!(
                    "curl -sS --fail -Z --parallel-max {PARALLEL} --remote-name-all \
                     --output-dir DIR -K LIST"
                ),
                command: Box::new(|dir: &Path| {
                    let mut c = Command::new("curl");
                    c.args(["-sS", "--fail", "-Z", "--parallel-max", &parallel])
                        .args(["--remote-name-all", "--output-dir"])
                        .arg(dir)
                        .arg("-K")
                        .arg(&curl_config);
                    c
                }),
                daemon: None,
            },
            Contender {
                name: "aria2c",
                shown: format!("aria2c -q -j{PARALLEL} -d DIR -i LIST"),
                command: Box::new(|dir: &Path| {
                    let mut c = Command::new("aria2c");
                    c.args(["-q", &format!("-j{PARALLEL}"), "-d"])
                        .arg(dir)
                        .arg("-i")
                        .arg(&aria2_list);
                    c
                }),
                daemon: None,
            },
        ];
        let source = self.files.www.join("small");
        let verify = |dir: &Path, content: bool| {
            for name in &self.files.small_names {
                check_file(&source.join(name), &dir.join(name), content)?;
            }
            Ok(())
        };
        let title = format!("{SMALL_COUNT} files of 64 KiB, {PARALLEL} at a time");
        let results = self.race(&title, &contenders, QUICK, &verify)?;

        let curl_wall = median_by(&results[1], wall);
        let aria2_wall = median_by(&results[2], wall);
        let mut table = Table::new(&[
            "tool",
            "wall, median (min–max)",
            "files/s",
            "wall vs curl",
            "CPU user+sys",
            "peak RSS",
            "targets",
        ]);
        for (index, (contender, runs)) in contenders.iter().zip(&results).enumerate() {
            let wall_s = median_by(runs, wall);
            let ratio = wall_s / curl_wall;
            let targets = if index == 0 {
                format!(
                    "wall ≤ 1.2× curl {} · below aria2c {}",
                    verdict(ratio <= 1.2),
                    verdict(wall_s < aria2_wall)
                )
            } else {
                "—".to_owned()
            };
            #[expect(clippy::cast_precision_loss, reason = "a file count far below 2^52")]
            let files_per_second = SMALL_COUNT as f64 / wall_s;
            table.row(vec![
                contender.name.to_owned(),
                wall_cell(runs),
                format!("{files_per_second:.0}"),
                format!("{ratio:.2}×"),
                format!("{:.3} s", median_by(runs, cpu)),
                format!("{:.1} MB", median_by(runs, rss_mb)),
                targets,
            ]);
        }
        let mut section = format!("## {title}\n\n");
        section.push_str(&table.render());
        section.push('\n');
        notes(&mut section, &contenders, QUICK);
        section.push_str(
            "- LIST is the URLs, one `url = \"…\"` line each for curl, one per line for aria2c.\n",
        );
        Ok(section)
    }

    /// Scenario 3: 200 MB at 20 MB/s, so about 10 s.
    fn throttled(&self) -> Result<String> {
        let url = self.nginx.url(THROTTLED_NAME);
        let rate = THROTTLE_RATE.to_string();
        let contenders = [
            Contender {
                name: "qmgr engine (fetch)",
                shown: format!("fetch --limit {THROTTLE_RATE} URL --dir DIR"),
                command: Box::new(|dir: &Path| {
                    let mut c = self.fetch();
                    c.args(["--limit", &rate]).arg(&url).arg("--dir").arg(dir);
                    c
                }),
                daemon: None,
            },
            Contender {
                name: "curl",
                shown: format!(
                    "curl -sS --fail --limit-rate {THROTTLE_RATE} -o DIR/{THROTTLED_NAME} URL"
                ),
                command: Box::new(|dir: &Path| {
                    let mut c = Command::new("curl");
                    c.args(["-sS", "--fail", "--limit-rate", &rate, "-o"])
                        .arg(dir.join(THROTTLED_NAME))
                        .arg(&url);
                    c
                }),
                daemon: None,
            },
        ];
        let source = self.files.www.join(THROTTLED_NAME);
        let verify =
            |dir: &Path, content: bool| check_file(&source, &dir.join(THROTTLED_NAME), content);
        let results = self.race("throttled to 20 MB/s", &contenders, THROTTLED, &verify)?;

        #[expect(clippy::cast_precision_loss, reason = "a byte rate far below 2^52")]
        let target_mb = THROTTLE_RATE as f64 / 1e6;
        let mut table = Table::new(&[
            "tool",
            "wall, median (min–max)",
            "achieved rate",
            "deviation from 20 MB/s",
            "CPU user+sys",
            "peak RSS",
            "target",
        ]);
        for (index, (contender, runs)) in contenders.iter().zip(&results).enumerate() {
            let wall_s = median_by(runs, wall);
            let achieved = rate_mb(THROTTLED_SIZE, wall_s);
            let deviation = achieved / target_mb - 1.0;
            let target = if index == 0 {
                format!("within ±5% {}", verdict(deviation.abs() <= 0.05))
            } else {
                "—".to_owned()
            };
            table.row(vec![
                contender.name.to_owned(),
                wall_cell(runs),
                format!("{achieved:.2} MB/s"),
                format!("{:+.2}%", deviation * 100.0),
                format!("{:.3} s", median_by(runs, cpu)),
                format!("{:.1} MB", median_by(runs, rss_mb)),
                target,
            ]);
        }
        let mut section = String::from("## Throttled: 200 MB at 20 MB/s\n\n");
        section.push_str(&table.render());
        section.push('\n');
        notes(&mut section, &contenders, THROTTLED);
        section.push_str(
            "- Achieved rate = file size / wall time of the whole process (start, connect, \
             transfer, exit), median run.\n",
        );
        Ok(section)
    }
}

/// The list under a table: how each tool was run and how the figures were taken.
fn notes(section: &mut String, contenders: &[Contender<'_>], rounds: Rounds) {
    let Rounds { warm_up, timed } = rounds;
    let warm = if warm_up > 0 {
        format!(" after {warm_up} untimed warm-up round")
    } else {
        String::new()
    };
    let _ = writeln!(
        section,
        "- Medians of {timed} runs per tool, interleaved{warm}; MB = 10⁶ bytes. Wall time \
         from start to exit; CPU and peak RSS from the kernel's accounting of the exited \
         process (wait4). Every download's size is checked, and its content on each tool's \
         first run."
    );
    for contender in contenders {
        let _ = writeln!(section, "- {}: `{}`", contender.name, contender.shown);
    }
}

fn wall(run: &Measured) -> f64 {
    run.wall.as_secs_f64()
}

fn cpu(run: &Measured) -> f64 {
    run.cpu.as_secs_f64()
}

#[expect(
    clippy::cast_precision_loss,
    reason = "byte counts in a benchmark are far below 2^52"
)]
fn rss_mb(run: &Measured) -> f64 {
    run.peak_rss as f64 / 1e6
}

#[expect(
    clippy::cast_precision_loss,
    reason = "byte counts in a benchmark are far below 2^52"
)]
fn rate_mb(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / seconds / 1e6
}

fn wall_cell(runs: &[Measured]) -> String {
    let (low, high) = range_by(runs, wall);
    format!("{:.3} s ({low:.3}–{high:.3})", median_by(runs, wall))
}
