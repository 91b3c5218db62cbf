//! Store micro-benchmark, run by `cargo xtask bench core`: creates and persists N one-file
//! jobs (one transaction each, as the service does), then loads them all in a fresh process
//! state and reports the resident memory. Prints a Markdown table.

use std::time::Instant;

use qmgr_core::store::Store;
use qmgr_core::{Guid, Job, JobSettings, JobType, Timestamp};

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .map_or(10_000, |n| n.parse().expect("job count"));
    let dir = tempfile::tempdir().expect("temporary directory");

    let rss_start = rss_kib();
    let mut store = Store::open(dir.path()).expect("open store");
    let now = Timestamp::now();
    let started = Instant::now();
    for i in 0..count {
        let mut job = Job::new(
            Guid::new_random(),
            &format!("job {i}"),
            JobType::Download,
            1000,
            JobSettings::default(),
            now,
        )
        .expect("job");
        job.add_file(
            &format!("http://127.0.0.1/data/{i}"),
            &format!("/tmp/qmgr-bench/{i}.bin"),
            200,
            now,
        )
        .expect("file");
        store.insert_job(&job).expect("insert");
    }
    let create = started.elapsed();
    drop(store);

    let started = Instant::now();
    let store = Store::open(dir.path()).expect("reopen store");
    let jobs = store.load_jobs().expect("load");
    let load = started.elapsed();
    assert_eq!(jobs.len(), count);
    let rss_loaded = rss_kib();

    println!("| measurement | value | target |");
    println!("|---|---|---|");
    #[expect(
        clippy::cast_precision_loss,
        reason = "job counts in a benchmark are far below 2^52"
    )]
    let rate = count as f64 / create.as_secs_f64();
    println!(
        "| create+persist {count} one-file jobs | {:.0} ms ({rate:.0} jobs/s) | ≥ 5,000 jobs/s |",
        create.as_secs_f64() * 1e3
    );
    println!(
        "| load {count} jobs at start-up | {:.1} ms | < 200 ms |",
        load.as_secs_f64() * 1e3
    );
    println!(
        "| process RSS with {count} jobs loaded | {:.1} MB (before the store: {:.1} MB) | < 40 MB |",
        kib_to_mb(rss_loaded),
        kib_to_mb(rss_start)
    );
}

fn kib_to_mb(kib: u64) -> f64 {
    #[expect(
        clippy::cast_precision_loss,
        reason = "a KiB count from /proc is far below 2^52"
    )]
    let kib = kib as f64;
    kib * 1024.0 / 1e6
}

/// Resident set size from /proc/self/status, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}
