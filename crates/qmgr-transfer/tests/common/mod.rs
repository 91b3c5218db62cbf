//! An engine, a scratch directory and ways to wait for transfers to end.

#![allow(
    dead_code,
    reason = "each test binary uses its own part of this module"
)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::Receiver;
use qmgr_transfer::{
    Engine, EngineConfig, EngineEvent, PartialFile, ProxyChoice, RestartReason, TransferError,
    TransferId, TransferRequest, Validator,
};

/// How long a test waits for any event before declaring the engine stuck. Not a timing
/// assertion: only a guard against hanging forever.
const STUCK: Duration = Duration::from_secs(60);

pub struct Harness {
    pub engine: Engine,
    events: Receiver<EngineEvent>,
    pending: RefCell<HashMap<TransferId, Vec<EngineEvent>>>,
    pub dir: tempfile::TempDir,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(EngineConfig::default())
    }

    pub fn with_config(config: EngineConfig) -> Self {
        let (engine, events) = Engine::start(config).expect("the engine starts");
        Self {
            engine,
            events,
            pending: RefCell::new(HashMap::new()),
            dir: tempfile::tempdir().expect("a scratch directory"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A request for `url` into `name` in the scratch directory, bypassing any proxy the
    /// environment names (the test server is local).
    pub fn request(&self, url: &str, name: &str) -> TransferRequest {
        let mut request = TransferRequest::new(url, self.path(name));
        request.proxy = ProxyChoice::Direct;
        request
    }

    pub fn submit(&self, request: TransferRequest) -> TransferId {
        self.engine
            .submit(request)
            .expect("the request is accepted")
    }

    pub fn run(&self, request: TransferRequest) -> Finished {
        let id = self.submit(request);
        self.wait(id)
    }

    /// Every event of `id` up to and including its last one.
    pub fn wait(&self, id: TransferId) -> Finished {
        let mut events = self.pending.borrow_mut().remove(&id).unwrap_or_default();
        while !events.last().is_some_and(EngineEvent::is_final) {
            let event = self.next_event();
            if event.id() == id {
                events.push(event);
            } else {
                self.keep_for_later(event);
            }
        }
        Finished { id, events }
    }

    /// Waits for the next event of `id` that `wanted` accepts, keeping the others.
    pub fn wait_for(&self, id: TransferId, wanted: impl Fn(&EngineEvent) -> bool) -> EngineEvent {
        loop {
            let event = self.next_event();
            let matches = event.id() == id && wanted(&event);
            self.keep_for_later(event.clone());
            if matches {
                return event;
            }
            assert!(
                !(event.id() == id && event.is_final()),
                "{id} ended while waiting: {event:?}"
            );
        }
    }

    /// The temporary file of `id`'s `Started`, received already or waited for.
    pub fn started(&self, id: TransferId) -> PathBuf {
        let started = |event: &EngineEvent| match event {
            EngineEvent::Started { temp_path, .. } => Some(temp_path.clone()),
            _ => None,
        };
        let received = self
            .pending
            .borrow()
            .get(&id)
            .and_then(|events| events.iter().find_map(started));
        received.unwrap_or_else(|| {
            started(&self.wait_for(id, |event| started(event).is_some()))
                .expect("waited for Started")
        })
    }

    /// Every event of `ids` not yet claimed, in the order the engine sent them, until each
    /// has ended; `seen` looks at each as it arrives. Other transfers' events are kept.
    pub fn in_order_until_ended(
        &self,
        ids: &[TransferId],
        mut seen: impl FnMut(&EngineEvent),
    ) -> Vec<EngineEvent> {
        let mut events: Vec<EngineEvent> = Vec::new();
        for id in ids {
            events.extend(self.pending.borrow_mut().remove(id).unwrap_or_default());
        }
        let ended = |events: &[EngineEvent]| {
            ids.iter().all(|id| {
                events
                    .iter()
                    .any(|event| event.id() == *id && event.is_final())
            })
        };
        while !ended(&events) {
            let event = self.next_event();
            if ids.contains(&event.id()) {
                seen(&event);
                events.push(event);
            } else {
                self.keep_for_later(event);
            }
        }
        events
    }

    /// Keeps an event for whoever waits for its transfer later.
    fn keep_for_later(&self, event: EngineEvent) {
        self.pending
            .borrow_mut()
            .entry(event.id())
            .or_default()
            .push(event);
    }

    fn next_event(&self) -> EngineEvent {
        self.events
            .recv_timeout(STUCK)
            .expect("the engine sends an event within a minute")
    }

    /// Events that arrived and were not yet claimed by `wait`.
    pub fn drain(&self) -> Vec<EngineEvent> {
        let mut events: Vec<EngineEvent> = self.events.try_iter().collect();
        for pending in self.pending.borrow_mut().drain() {
            events.extend(pending.1);
        }
        events
    }
}

/// The events of one transfer.
#[derive(Debug)]
pub struct Finished {
    pub id: TransferId,
    pub events: Vec<EngineEvent>,
}

impl Finished {
    pub fn last(&self) -> &EngineEvent {
        self.events.last().expect("at least one event")
    }

    /// The temporary file and its size, asserting the transfer completed.
    pub fn completed(&self) -> (PathBuf, u64, Validator) {
        match self.last() {
            EngineEvent::Completed {
                temp_path,
                bytes,
                validator,
                ..
            } => (temp_path.clone(), *bytes, validator.clone()),
            other => panic!(
                "expected Completed, got {other:?}\nall events: {:#?}",
                self.events
            ),
        }
    }

    pub fn failed(&self) -> TransferError {
        match self.last() {
            EngineEvent::Failed { error, .. } => error.clone(),
            other => panic!(
                "expected Failed, got {other:?}\nall events: {:#?}",
                self.events
            ),
        }
    }

    pub fn temp_path(&self) -> PathBuf {
        self.events
            .iter()
            .find_map(|event| match event {
                EngineEvent::Started { temp_path, .. } => Some(temp_path.clone()),
                _ => None,
            })
            .expect("a Started event")
    }

    pub fn bytes_on_disk(&self) -> u64 {
        self.events
            .iter()
            .rev()
            .find_map(|event| match event {
                EngineEvent::Progress { bytes_on_disk, .. } => Some(*bytes_on_disk),
                _ => None,
            })
            .unwrap_or(0)
    }

    /// The last `Responded`: total, validator, resumed_at, restart.
    pub fn responded(&self) -> Option<(Option<u64>, Validator, u64, Option<RestartReason>)> {
        self.events.iter().rev().find_map(|event| match event {
            EngineEvent::Responded {
                total,
                validator,
                resumed_at,
                restart,
                ..
            } => Some((*total, validator.clone(), *resumed_at, *restart)),
            _ => None,
        })
    }

    /// What a service would record to continue this transfer later.
    pub fn partial(&self) -> PartialFile {
        let (total, validator, _, _) = self.responded().expect("a Responded event");
        PartialFile {
            temp_path: self.temp_path(),
            bytes: self.bytes_on_disk(),
            validator,
            total,
        }
    }

    pub fn progress_count(&self) -> usize {
        self.events
            .iter()
            .filter(|event| matches!(event, EngineEvent::Progress { .. }))
            .count()
    }
}

/// Asserts a file holds exactly `expected`, without printing a megabyte on failure.
pub fn assert_file_is(path: &Path, expected: &[u8]) {
    let shown = path.display();
    let actual = std::fs::read(path).unwrap_or_else(|error| panic!("reading {shown}: {error}"));
    assert_eq!(actual.len(), expected.len(), "length of {shown}");
    if let Some(at) = actual.iter().zip(expected).position(|(a, b)| a != b) {
        panic!("{shown} differs from the expected bytes at offset {at}");
    }
}
