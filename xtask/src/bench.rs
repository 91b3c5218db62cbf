//! `cargo xtask bench`: benchmarks whose figures go into bench/results/.

pub(crate) mod build;
pub(crate) mod e2e;
pub(crate) mod ffi;
pub(crate) mod files;
pub(crate) mod idle;
pub(crate) mod nginx;
pub(crate) mod proxy;
pub(crate) mod qmgr;
pub(crate) mod queue;
pub(crate) mod run;
pub(crate) mod service;
pub(crate) mod table;
pub(crate) mod tools;
pub(crate) mod transfer;
pub(crate) mod upload;
pub(crate) mod upload_resilience;

use std::fs;

use anyhow::{Context, Result, bail};

use crate::{cargo, project_root};

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("core") => core(),
        Some("transfer") => crate::bench::transfer::run(),
        Some("service") => crate::bench::service::run(),
        Some("ffi") => crate::bench::ffi::run(),
        Some("e2e") => crate::bench::e2e::run(),
        Some("queue") => crate::bench::queue::run(),
        Some("upload") => crate::bench::upload::run(),
        Some("idle") => crate::bench::idle::run(&args[1..]),
        None | Some("all") => {
            core()?;
            crate::bench::transfer::run()?;
            crate::bench::service::run()?;
            crate::bench::ffi::run()?;
            crate::bench::e2e::run()?;
            crate::bench::queue::run()?;
            crate::bench::upload::run()?;
            crate::bench::idle::run(&[])
        }
        Some(other) => {
            bail!(
                "unknown benchmark {other:?}; choose core, transfer, service, ffi, e2e, queue, \
                 upload, idle or all"
            )
        }
    }
}

/// The store: create+persist and load 10,000 jobs, and the memory they take.
fn core() -> Result<()> {
    println!("==> bench core (qmgr-core store, release build)");
    let output = cargo()
        .args([
            "run",
            "--release",
            "--locked",
            "--quiet",
            "-p",
            "qmgr-core",
            "--example",
            "store_bench",
            "--",
            "10000",
        ])
        .output()
        .context("cannot run the store benchmark")?;
    if !output.status.success() {
        bail!(
            "the store benchmark failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let table = String::from_utf8(output.stdout).context("benchmark output is not UTF-8")?;
    print!("{table}");
    save("core.md", "Store (qmgr-core)", &table)
}

pub(crate) fn save(file: &str, title: &str, table: &str) -> Result<()> {
    let dir = project_root().join("bench/results");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(file);
    let machine = machine_summary();
    fs::write(&path, format!("# {title}\n\nMachine: {machine}\n\n{table}"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("saved {}", path.display());
    Ok(())
}

/// CPU model and core count, so results can be compared across machines.
fn machine_summary() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    format!("{cpu}, {cores} cores")
}
