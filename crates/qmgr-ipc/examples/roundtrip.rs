//! Round-trip micro-benchmark: a server with a trivial handler in this process, on a
//! socket in a temporary directory, and a client making N `Ping` calls (default 100,000)
//! through `QueueService::execute`. Prints a Markdown table with the median and p99.
//!
//! `cargo run --release -p qmgr-ipc --example roundtrip [-- N]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use qmgr_core::paths::StatePaths;
use qmgr_core::service::{QueueService, Request, Response};
use qmgr_core::{QmgrError, Result, hresult};
use qmgr_ipc::{Client, ConnectionHandler, Peer, Subscription, accept_loop, bind_listener};

const WARM_UP_CALLS: usize = 1_000;

/// Answers Ping and nothing else.
struct PingOnly;

impl ConnectionHandler for PingOnly {
    fn execute(&self, _peer: &Peer, request: Request) -> Result<Response> {
        match request {
            Request::Ping => Ok(Response::Pong {
                service_version: String::new(),
            }),
            _ => Err(QmgrError::from_code(hresult::E_NOTIMPL)),
        }
    }

    fn subscribe(&self, _peer: &Peer) -> Result<Subscription> {
        Err(QmgrError::from_code(hresult::E_NOTIMPL))
    }
}

fn main() {
    let calls: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |n| n.parse().expect("call count"));
    let dir = tempfile::tempdir().expect("temporary directory");
    let paths = StatePaths::from_env_with(|name| match name {
        "XDG_STATE_HOME" | "XDG_CONFIG_HOME" | "XDG_RUNTIME_DIR" | "HOME" => {
            Some(dir.path().join(name.to_lowercase()).into_os_string())
        }
        _ => None,
    })
    .expect("paths");
    let server = accept_loop(bind_listener(&paths).expect("listen"), Arc::new(PingOnly))
        .expect("accept loop");
    let client = Client::connect(&paths).expect("connect");

    for _ in 0..WARM_UP_CALLS {
        client.execute(Request::Ping).expect("ping");
    }
    let mut times: Vec<Duration> = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        client.execute(Request::Ping).expect("ping");
        times.push(started.elapsed());
    }
    drop(client);
    server.stop();

    times.sort_unstable();
    let percentile = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    println!("| measurement | value | target |");
    println!("|---|---|---|");
    println!(
        "| IPC round trip, {calls} Ping calls over the Unix socket | median {:.1} µs, p99 {:.1} µs | median ≤ 30 µs |",
        micros(percentile(50)),
        micros(percentile(99)),
    );
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
