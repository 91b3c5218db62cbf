//! What the server threads share: the request log, per-path statistics and versions,
//! open connections, and the shutdown flag.

use std::collections::HashMap;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::content::INITIAL_VERSION;
use crate::request::RecordedRequest;

/// Longest single sleep, so that a sleeping connection notices shutdown promptly.
const PAUSE_SLICE: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
struct PathStats {
    requests: u64,
    body_bytes: u64,
    /// Whether a response on this path has been cut by `drop_after` (for `drop_once`).
    cut_once: bool,
}

#[derive(Debug, Default)]
struct Log {
    requests: Vec<RecordedRequest>,
    stats: HashMap<String, PathStats>,
    /// Content versions; not statistics, so `reset_stats` keeps them.
    versions: HashMap<String, u32>,
}

impl Log {
    fn stats_mut(&mut self, path: &str) -> &mut PathStats {
        self.stats.entry(path.to_owned()).or_default()
    }
}

/// State shared by the accept loop, the connection threads and the `TestServer` handle.
#[derive(Debug)]
pub(crate) struct Shared {
    base_url: String,
    shutting_down: AtomicBool,
    log: Mutex<Log>,
    /// A handle on every open connection's socket, so shutdown can wake blocked threads.
    connections: Mutex<HashMap<u64, TcpStream>>,
    next_connection_id: AtomicU64,
    /// BITS upload sessions and published uploads.
    uploads: Mutex<crate::upload::Uploads>,
}

/// Locks `mutex`, carrying on after a panic elsewhere: the data stays consistent because
/// every critical section here is a few infallible updates.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(base_url: String) -> Shared {
        Shared {
            base_url,
            shutting_down: AtomicBool::new(false),
            log: Mutex::new(Log::default()),
            connections: Mutex::new(HashMap::new()),
            next_connection_id: AtomicU64::new(0),
            uploads: Mutex::new(crate::upload::Uploads::default()),
        }
    }

    /// Runs `work` on the upload sessions and published uploads.
    pub(crate) fn with_uploads<R>(&self, work: impl FnOnce(&mut crate::upload::Uploads) -> R) -> R {
        work(&mut lock(&self.uploads))
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Logs a request; returns its number among the requests to its path (from 1).
    pub(crate) fn record(&self, request: &RecordedRequest) -> u64 {
        let mut log = lock(&self.log);
        log.requests.push(request.clone());
        let stats = log.stats_mut(&request.path);
        stats.requests += 1;
        stats.requests
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.log).requests.clone()
    }

    pub(crate) fn request_count(&self, path: &str) -> u64 {
        lock(&self.log)
            .stats
            .get(path)
            .map_or(0, |stats| stats.requests)
    }

    pub(crate) fn body_bytes_sent(&self, path: &str) -> u64 {
        lock(&self.log)
            .stats
            .get(path)
            .map_or(0, |stats| stats.body_bytes)
    }

    pub(crate) fn add_body_bytes(&self, path: &str, count: u64) {
        lock(&self.log).stats_mut(path).body_bytes += count;
    }

    /// Takes back counted bytes that could not be written after all.
    pub(crate) fn remove_body_bytes(&self, path: &str, count: u64) {
        let mut log = lock(&self.log);
        let body_bytes = &mut log.stats_mut(path).body_bytes;
        *body_bytes = body_bytes.saturating_sub(count);
    }

    pub(crate) fn was_cut_before(&self, path: &str) -> bool {
        lock(&self.log)
            .stats
            .get(path)
            .is_some_and(|stats| stats.cut_once)
    }

    pub(crate) fn mark_cut(&self, path: &str) {
        lock(&self.log).stats_mut(path).cut_once = true;
    }

    pub(crate) fn reset_stats(&self) {
        let mut log = lock(&self.log);
        log.requests.clear();
        log.stats.clear();
    }

    pub(crate) fn version(&self, path: &str) -> u32 {
        lock(&self.log)
            .versions
            .get(path)
            .copied()
            .unwrap_or(INITIAL_VERSION)
    }

    pub(crate) fn set_version(&self, path: &str, version: u32) {
        lock(&self.log).versions.insert(path.to_owned(), version);
    }

    pub(crate) fn bump_version(&self, path: &str) {
        let mut log = lock(&self.log);
        let version = log
            .versions
            .entry(path.to_owned())
            .or_insert(INITIAL_VERSION);
        *version = version.wrapping_add(1);
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Sleeps for `duration` unless the server shuts down first; returns whether the
    /// whole pause elapsed.
    pub(crate) fn pause(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        loop {
            if self.is_shutting_down() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            thread::sleep((deadline - now).min(PAUSE_SLICE));
        }
    }

    /// Remembers an open connection's socket; the id unregisters it.
    pub(crate) fn register_connection(&self, socket: TcpStream) -> u64 {
        let id = self.next_connection_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.connections).insert(id, socket);
        id
    }

    pub(crate) fn unregister_connection(&self, id: u64) {
        lock(&self.connections).remove(&id);
    }

    /// Shuts down every open connection, waking threads blocked reading or writing.
    pub(crate) fn shut_down_connections(&self) {
        for socket in lock(&self.connections).values() {
            // A socket the peer already closed may refuse; it needs no waking then.
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}
