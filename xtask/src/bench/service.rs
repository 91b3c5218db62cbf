//! `cargo xtask bench service`: call latency over qmgrd's socket and in-process, job
//! creation throughput, and qmgrd's memory and idle CPU with 10,000 queued jobs. The
//! measuring is done by qmgr-service's `service_bench` example against a private qmgrd.
//! It stays an example of qmgr-service (as `store_bench` of qmgr-core and `fetch` of
//! qmgr-transfer do) because it hosts the queue in-process: as part of xtask it would make
//! every `cargo xtask` build qmgr-service, and with it libcurl, OpenSSL and SQLite.

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::bench::build::{build_release, release_dir};
use crate::bench::save;

pub fn run() -> Result<()> {
    println!("==> bench service (qmgrd over IPC and in-process, release build)");
    build_release(&[
        "-p",
        "qmgr-service",
        "--bin",
        "qmgrd",
        "--example",
        "service_bench",
    ])?;
    let bench = release_dir().join("examples/service_bench");
    let output = Command::new(&bench)
        .env("QMGRD", release_dir().join("qmgrd"))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", bench.display()))?;
    if !output.status.success() {
        bail!("the service benchmark failed ({})", output.status);
    }
    let table = String::from_utf8(output.stdout).context("benchmark output is not UTF-8")?;
    print!("{table}");
    save(
        "service.md",
        "Service and IPC (qmgrd, LocalService)",
        &table,
    )
}
