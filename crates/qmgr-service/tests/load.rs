//! qmgrd under many clients: more clients than `max_connections` try to connect, half of
//! the admitted ones subscribe and never read, and a well-behaved client keeps calling.
//!
//! In CI this runs small (cap 64, 250 clients, a few seconds). `QMGR_LOAD_FULL=1` runs the
//! full scale (cap 256, 1,000 clients, a minute of calls):
//! `QMGR_LOAD_FULL=1 cargo test --release -p qmgr-service --test load -- --nocapture`.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{Instance, PATIENCE};
use qmgr_core::hresult;
use qmgr_core::service::{JobChange, PROTOCOL_VERSION, QueueServiceExt};
use qmgr_core::{Guid, JobType};
use qmgr_ipc::frame::{MAX_FRAME_LEN, read_frame, write_frame};
use qmgr_ipc::message::{ClientMessage, Purpose, ServiceMessage};

struct Scale {
    cap: usize,
    clients: usize,
    /// How long the well-behaved client keeps calling (at least `min_calls` calls).
    calling: Duration,
    min_calls: usize,
}

fn scale() -> Scale {
    if std::env::var_os("QMGR_LOAD_FULL").is_some_and(|v| v == "1") {
        Scale {
            cap: 256,
            clients: 1000,
            calling: Duration::from_secs(60),
            min_calls: 10_000,
        }
    } else {
        Scale {
            cap: 64,
            clients: 250,
            calling: Duration::from_secs(3),
            min_calls: 2_000,
        }
    }
}

/// What `/proc/<pid>/status` says about a process.
#[derive(Debug, Clone, Copy)]
struct Usage {
    rss_kib: u64,
    threads: usize,
}

fn usage(pid: i32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    };
    Usage {
        rss_kib: field("VmRSS:"),
        threads: usize::try_from(field("Threads:")).unwrap(),
    }
}

/// Connects to the socket and says Hello for `purpose`; returns the stream when welcomed,
/// or the refusal.
fn raw_client(
    socket: &std::path::Path,
    purpose: Purpose,
) -> Result<UnixStream, qmgr_core::QmgrError> {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    // A refused client may find the connection closed before its Hello is read; the
    // refusal is still there to read.
    let _ = write_frame(
        &mut stream,
        &ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            purpose,
            client_name: "load test".into(),
        },
    );
    let _ = stream.flush();
    match read_frame::<ServiceMessage>(&mut stream, MAX_FRAME_LEN).unwrap() {
        ServiceMessage::Welcome { .. } => Ok(stream),
        ServiceMessage::Refused(error) => Err(error),
        other => panic!("expected a Welcome or a refusal, got {other:?}"),
    }
}

/// The `per_mille`th per-mille of `sorted` (nearest rank).
fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    sorted[((sorted.len() - 1) * per_mille).div_ceil(1000)]
}

#[test]
fn many_clients_stalled_subscribers_and_a_well_behaved_caller() {
    let scale = scale();
    let instance = Instance::with_config(&format!("max_connections = {}\n", scale.cap));
    let good = instance.client();
    let jobs: Vec<Guid> = (0..4)
        .map(|n| {
            good.create_job(&format!("load {n}"), JobType::Download)
                .unwrap()
        })
        .collect();
    let pid = *instance.daemons().first().expect("qmgrd runs");
    let socket = instance.paths().socket_path();
    let before = usage(pid);

    let started = Instant::now();
    let mut admitted = Vec::new();
    let mut refusals = Vec::new();
    for _ in 0..scale.clients {
        // Every other admitted client subscribes and never reads; the rest hold a calls
        // connection open and say nothing.
        let purpose = if admitted.len() % 2 == 0 {
            Purpose::Notifications
        } else {
            Purpose::Calls
        };
        match raw_client(&socket, purpose) {
            Ok(stream) => admitted.push(stream),
            Err(refusal) => refusals.push(refusal),
        }
    }
    let connecting = started.elapsed();
    // The good client holds one connection; a connection that just closed may still be
    // counted for a moment.
    assert!(
        (scale.cap - 2..scale.cap).contains(&admitted.len()),
        "{} admitted under a cap of {}",
        admitted.len(),
        scale.cap
    );
    assert_eq!(admitted.len() + refusals.len(), scale.clients);
    for refusal in &refusals {
        assert_eq!(
            refusal.hresult,
            hresult::QM_E_SERVICE_UNAVAILABLE,
            "{refusal}"
        );
        assert!(refusal.description.contains("max_connections"), "{refusal}");
    }

    // The well-behaved client keeps changing the same few jobs: every change is a
    // Modification for each stalled subscriber.
    let mut latencies = Vec::new();
    let calling = Instant::now();
    while calling.elapsed() < scale.calling || latencies.len() < scale.min_calls {
        let n = latencies.len();
        let call = Instant::now();
        good.set_job(
            jobs[n % jobs.len()],
            JobChange::Description(format!("change {n}")),
        )
        .unwrap();
        latencies.push(call.elapsed());
    }
    let during = usage(pid);
    latencies.sort();
    let subscribers = admitted.len().div_ceil(2);
    println!(
        "cap {}, {} clients: {} admitted ({subscribers} stalled subscribers), {} refused, \
         in {connecting:?}",
        scale.cap,
        scale.clients,
        admitted.len(),
        refusals.len()
    );
    println!(
        "{} calls by the well-behaved client: median {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        percentile(&latencies, 500),
        percentile(&latencies, 990),
        latencies.last().unwrap()
    );
    println!(
        "qmgrd: RSS {} KiB before, {} KiB under load; threads {} before, {} under load",
        before.rss_kib, during.rss_kib, before.threads, during.threads
    );
    assert!(
        during.rss_kib <= 64 * 1024,
        "qmgrd's RSS is {} KiB under load",
        during.rss_kib
    );
    assert!(
        during.threads <= scale.cap + 16,
        "qmgrd runs {} threads under a cap of {}",
        during.threads,
        scale.cap
    );

    // Clients that leave are noticed at once, stalled subscribers too: their threads end.
    let left = Instant::now();
    drop(admitted);
    while usage(pid).threads > before.threads {
        assert!(
            left.elapsed() < PATIENCE,
            "qmgrd still runs {} threads after every client left ({} before)",
            usage(pid).threads,
            before.threads
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "every connection's thread ended {:?} after its client left",
        left.elapsed()
    );
    assert_eq!(good.jobs(false).unwrap().len(), jobs.len());
}
