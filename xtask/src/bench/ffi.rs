//! `cargo xtask bench ffi`: what the C ABI costs through a real qmgrd — the round trip of
//! `IBackgroundCopyJob_GetState` and enumerating 10,000 jobs — measured by
//! bench/c/ffi_bench.c against the release libqmgr in a qmgr instance of its own.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::ctests::instance::Instance;
use crate::{cargo, project_root};

const JOBS: &str = "10000";
const CALLS: &str = "100000";

pub fn run() -> Result<()> {
    println!("==> bench ffi (C ABI through qmgrd, release build)");
    for package in [["-p", "libqmgr", "--lib"], ["-p", "qmgr-service", "--bins"]] {
        if !cargo()
            .args(["build", "--release", "--locked"])
            .args(package)
            .status()?
            .success()
        {
            bail!("the release build of {} failed", package[1]);
        }
    }
    let root = project_root();
    let release = crate::bench::build::release_dir();
    let binary = release.join("ffi_bench");
    let compiled = Command::new("gcc")
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join("bench/c/ffi_bench.c"))
        .arg("-o")
        .arg(&binary)
        .arg("-L")
        .arg(&release)
        .arg(format!("-Wl,-rpath,{}", release.display()))
        .arg("-lqmgr")
        .status()
        .context("cannot run gcc")?;
    if !compiled.success() {
        bail!("bench/c/ffi_bench.c does not compile");
    }

    let mut rows = measure(&binary, &release, &[JOBS, CALLS], None)?;
    // This VM's cross-CPU wake-ups dominate a round trip; with client and qmgrd on one CPU
    // (qmgrd inherits the affinity of the client that starts it) what remains is qmgr's cost.
    if Command::new("taskset")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        rows.push_str(&measure(
            &binary,
            &release,
            &[
                "1",
                CALLS,
                "with the client and qmgrd pinned to one CPU (no cross-CPU wake-ups)",
            ],
            Some("0"),
        )?);
    }
    let table = format!(
        "| measurement | value | target | result |\n|---|---|---|---|\n{rows}\n\
         One C client, one qmgrd, both release builds; the jobs are created suspended. Load \
         average at the end (1, 5, 15 min): {}.\n",
        fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    print!("{table}");
    crate::bench::save("ffi.md", "C ABI through qmgrd", &table)
}

/// Runs the benchmark program once in a fresh instance (on `cpu` alone, if given) and
/// returns the rows it printed.
fn measure(binary: &Path, release: &Path, args: &[&str], cpu: Option<&str>) -> Result<String> {
    let instance = Instance::create("ffi-bench")?;
    let config = instance.root().join("config/qmgr");
    fs::create_dir_all(&config).with_context(|| format!("cannot create {}", config.display()))?;
    fs::write(
        config.join("config.toml"),
        "max_jobs_per_user = 20000\nidle_exit = \"never\"\n",
    )
    .context("cannot write the instance's config.toml")?;
    let mut command = match cpu {
        Some(cpu) => {
            let mut taskset = Command::new("taskset");
            taskset.args(["-c", cpu]).arg(binary);
            taskset
        }
        None => Command::new(binary),
    };
    // `cargo run` puts the xtask's own (debug) target directory on LD_LIBRARY_PATH, which
    // would win over the rpath and load the debug libqmgr.
    command.args(args).env_remove("LD_LIBRARY_PATH");
    instance.configure(&mut command, &release.join("qmgrd"));
    let output = command.output().context("cannot run ffi_bench");
    let stopped = instance.stop_daemon();
    let output = output?;
    stopped?;
    let _ = fs::remove_dir_all(instance.root());
    if !output.status.success() {
        bail!(
            "ffi_bench failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout).context("ffi_bench printed something that is not UTF-8")
}
