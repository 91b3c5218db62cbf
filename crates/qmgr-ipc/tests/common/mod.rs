//! A fake queue behind the real server, in an isolated temporary instance.

#![allow(
    dead_code,
    reason = "each test binary uses its own part of this module"
)]

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use qmgr_core::hresult;
use qmgr_core::job::JobSettings;
use qmgr_core::paths::StatePaths;
use qmgr_core::service::{JobView, Notification, NotificationKind, Request, Response};
use qmgr_core::{Guid, Job, JobState, QmgrError, Result, Timestamp};
use qmgr_ipc::{
    AcceptLoop, ConnectionError, ConnectionHandler, Peer, Publisher, Subscription, accept_loop,
    bind_listener,
};

/// The version the fake answers Ping with.
pub const FAKE_VERSION: &str = "fake-queue";

/// Jobs in a map; Resume notifies subscribers; `Request::GetGroup` panics (to test that a
/// panicking handler answers with an error).
#[derive(Default)]
pub struct FakeQueue {
    jobs: Mutex<HashMap<Guid, JobView>>,
    subscribers: Mutex<Vec<Publisher>>,
    failures: Mutex<Vec<String>>,
    pub calls: AtomicUsize,
}

impl FakeQueue {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Sends `notification` to every live subscriber.
    pub fn notify(&self, notification: &Notification) {
        self.subscribers
            .lock()
            .unwrap()
            .retain(|subscriber| subscriber.push(notification.clone()));
    }

    pub fn subscriber_count(&self) -> usize {
        self.subscribers.lock().unwrap().len()
    }

    /// Ends every notification stream from the service's side.
    pub fn drop_subscribers(&self) {
        self.subscribers.lock().unwrap().clear();
    }

    /// The connection failures the server reported.
    pub fn failures(&self) -> Vec<String> {
        self.failures.lock().unwrap().clone()
    }
}

fn not_found(job: Guid) -> QmgrError {
    QmgrError::from_code(hresult::BG_E_NOT_FOUND).context(format!("job {job}"))
}

impl ConnectionHandler for FakeQueue {
    fn execute(&self, peer: &Peer, request: Request) -> Result<Response> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if let Request::GetGroup { .. } = request {
            panic!("the fake queue panics on GetGroup");
        }
        let mut jobs = self.jobs.lock().unwrap();
        match request {
            Request::Ping => Ok(Response::Pong {
                service_version: FAKE_VERSION.into(),
            }),
            Request::CreateJob {
                display_name,
                job_type,
                ..
            } => {
                let id = Guid::new_random();
                let job = Job::new(
                    id,
                    &display_name,
                    job_type,
                    peer.uid,
                    JobSettings::default(),
                    Timestamp(1),
                )?;
                jobs.insert(
                    id,
                    JobView {
                        job,
                        waiting: None,
                        attempts: Vec::new(),
                        idle: None,
                    },
                );
                Ok(Response::JobCreated(id))
            }
            Request::GetJob { job } => jobs
                .get(&job)
                .map(|view| Response::Job(Box::new(view.clone())))
                .ok_or_else(|| not_found(job)),
            Request::ListJobs { all_users, .. } => {
                if all_users && peer.uid != 0 {
                    return Err(QmgrError::from_code(hresult::E_ACCESSDENIED));
                }
                let mut views: Vec<JobView> = jobs.values().cloned().collect();
                views.sort_by(|a, b| a.job.display_name.cmp(&b.job.display_name));
                Ok(Response::JobPage {
                    jobs: views,
                    next: None,
                })
            }
            Request::Resume { job } => {
                let view = jobs.get_mut(&job).ok_or_else(|| not_found(job))?;
                view.job.state = JobState::Queued;
                drop(jobs);
                self.notify(&Notification {
                    job,
                    kind: NotificationKind::Modification,
                    state: JobState::Queued,
                });
                Ok(qmgr_core::service::DONE)
            }
            _ => Err(QmgrError::from_code(hresult::E_NOTIMPL)),
        }
    }

    fn subscribe(&self, _peer: &Peer) -> Result<Subscription> {
        let (publisher, subscription) = qmgr_ipc::subscription::subscription()
            .map_err(|error| QmgrError::internal(error.to_string()))?;
        self.subscribers.lock().unwrap().push(publisher);
        Ok(subscription)
    }

    fn connection_failed(&self, error: &ConnectionError) {
        self.failures.lock().unwrap().push(error.to_string());
    }
}

/// Paths of an instance whose every directory lies in `root`.
pub fn paths_in(root: &std::path::Path) -> StatePaths {
    let vars = instance_env(root);
    StatePaths::from_env_with(|name| {
        vars.iter()
            .find(|(var, _)| var == name)
            .map(|(_, value)| value.clone())
    })
    .unwrap()
}

/// The environment of an instance whose every directory lies in `root`.
pub fn instance_env(root: &std::path::Path) -> Vec<(String, OsString)> {
    [
        ("HOME", root.to_owned()),
        ("XDG_STATE_HOME", root.join("state")),
        ("XDG_CONFIG_HOME", root.join("config")),
        ("XDG_RUNTIME_DIR", root.join("run")),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.into_os_string()))
    .collect()
}

/// A fake queue served on a socket in a temporary directory.
pub struct Instance {
    pub root: tempfile::TempDir,
    pub paths: StatePaths,
    pub queue: Arc<FakeQueue>,
    pub server: Option<AcceptLoop>,
}

impl Instance {
    pub fn start() -> Instance {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("run")).unwrap();
        let paths = paths_in(root.path());
        let queue = FakeQueue::new();
        let mut instance = Instance {
            root,
            paths,
            queue,
            server: None,
        };
        instance.restart();
        instance
    }

    /// Starts serving (again), with the same queue.
    pub fn restart(&mut self) {
        let listener = bind_listener(&self.paths).unwrap();
        let handler: Arc<dyn ConnectionHandler> = self.queue.clone();
        self.server = Some(accept_loop(listener, handler).unwrap());
    }

    pub fn stop(&mut self) {
        self.server.take().expect("the server runs").stop();
    }

    pub fn socket(&self) -> PathBuf {
        self.paths.socket_path()
    }
}
