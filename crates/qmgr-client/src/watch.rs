//! Following a job as it moves: an iterator of its status, woken by the service's
//! notifications.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use qmgr_core::hresult;
use qmgr_core::service::Notification;
use qmgr_core::{Guid, JobState};

use crate::error::Result;
use crate::job::{Job, Progress, Status};

/// How often the progress of a job that is moving bytes is read, unless
/// [`Watch::every`] says otherwise.
pub const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_millis(500);

/// How long a watch waits for the notification that says why a job left the queue,
/// after finding it gone.
const DEPARTURE_NEWS: Duration = Duration::from_secs(2);

/// How often a job that is not moving is looked at when notifications cannot be had
/// (the service refused the subscription): its state changes are then found this late.
const WITHOUT_NOTIFICATIONS: Duration = Duration::from_secs(1);

/// An iterator of a job's status as it changes, from [`Job::watch`].
///
/// The first item is the status when the watch starts; then one item each time the state,
/// the progress or the error changes, until the job stops where only its owner moves it
/// on or leaves the queue ([`Status::is_final`]): that status is the last item. A job
/// that is SUSPENDED, QUEUED or in TRANSIENT_ERROR is still followed (someone may resume
/// it, it waits for its turn, it retries by itself).
///
/// State changes arrive as the service's notifications, so a watch costs nothing while
/// the job waits. While bytes move, the progress is read every
/// [`DEFAULT_PROGRESS_INTERVAL`] ([`Watch::every`]), or at each progress notification for
/// a job with [`NotifyFlags::JOB_MODIFICATION`](crate::NotifyFlags::JOB_MODIFICATION), at most
/// once per interval. An item is an error when the service cannot be reached (the watch
/// then ends; with [`Manager::connect`](crate::Manager::connect), a restarted qmgrd is
/// reached again first). Each watch listens on a connection of its own to qmgrd (one of
/// its `max_connections`), closed when the watch is dropped.
///
/// ```
/// # fn demo(job: &qmgr_client::Job) -> qmgr_client::Result<()> {
/// for status in job.watch() {
///     let status = status?;
///     if let Some(fraction) = status.progress.fraction() {
///         eprint!("\r{:5.1} %", fraction * 100.0);
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Watch {
    job: Job,
    notifications: Option<Receiver<Notification>>,
    every: Duration,
    last: Option<Status>,
    /// When the job was last read.
    last_look: Option<Instant>,
    /// How the job left the queue, when a notification said so.
    departed: Option<JobState>,
    ended: bool,
}

impl Watch {
    pub(crate) fn start(job: Job) -> Watch {
        // Listening before the first look: a job that leaves the queue meanwhile is told.
        let notifications = job.manager().service().subscribe().ok();
        Watch {
            job,
            notifications,
            every: DEFAULT_PROGRESS_INTERVAL,
            last: None,
            last_look: None,
            departed: None,
            ended: false,
        }
    }

    /// Reads the progress of a moving job this often instead of every
    /// [`DEFAULT_PROGRESS_INTERVAL`].
    #[must_use]
    pub fn every(mut self, interval: Duration) -> Watch {
        self.every = interval;
        self
    }

    /// Whether the job moves bytes now, so its progress changes without notifications.
    fn moving(&self) -> bool {
        self.last
            .as_ref()
            .is_some_and(|status| status.state.is_active())
    }

    /// Waits until the job should be read again: a notification about it, or the
    /// interval since the last look while it moves (or without notifications).
    fn wait_for_news(&mut self) {
        let id = self.job.id();
        let moving = self.moving();
        loop {
            let since_look = self.last_look.map_or(Duration::MAX, |at| at.elapsed());
            let Some(notifications) = &self.notifications else {
                let interval = if moving {
                    self.every
                } else {
                    WITHOUT_NOTIFICATIONS.max(self.every)
                };
                std::thread::sleep(interval.saturating_sub(since_look));
                return;
            };
            let next = if moving {
                match notifications.recv_timeout(self.every.saturating_sub(since_look)) {
                    Err(RecvTimeoutError::Timeout) => return,
                    other => other,
                }
            } else {
                notifications
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected)
            };
            match next {
                Ok(notification) if notification.job == id => {
                    if notification.state.is_final() {
                        self.departed = Some(notification.state);
                    }
                    let changed = self
                        .last
                        .as_ref()
                        .is_none_or(|last| last.state != notification.state);
                    // Progress alone is read at most once per interval.
                    if changed || since_look >= self.every || !moving {
                        return;
                    }
                }
                // Another job's news.
                Ok(_) => {}
                Err(_) => {
                    // The service went away (a qmgrd restart): listen again if it is back,
                    // and look now either way.
                    self.notifications = self.job.manager().service().subscribe().ok();
                    return;
                }
            }
        }
    }

    /// The job's status now; for a job that left the queue, how it left (waiting briefly
    /// for the notification that says so).
    fn look(&mut self) -> Result<Status> {
        self.last_look = Some(Instant::now());
        let error = match self.job.status() {
            Ok(status) => return Ok(status),
            Err(error) => error,
        };
        if error.hresult() == hresult::QM_E_SERVICE_UNAVAILABLE {
            // A client that starts qmgrd reconnects (starting it) on the next call.
            if let Ok(status) = self.job.status() {
                self.notifications = self.job.manager().service().subscribe().ok();
                return Ok(status);
            }
        }
        if error.hresult() != hresult::BG_E_NOT_FOUND {
            return Err(error);
        }
        match self.departure() {
            Some(state) => {
                let progress = self.last.as_ref().map_or(
                    Progress {
                        bytes_transferred: 0,
                        bytes_total: None,
                        files_transferred: 0,
                        files_total: 0,
                    },
                    |last| last.progress,
                );
                Ok(Status::departed(state, progress))
            }
            None => Err(error),
        }
    }

    /// How the job left the queue, if a notification says so within [`DEPARTURE_NEWS`].
    fn departure(&mut self) -> Option<JobState> {
        let id = self.job.id();
        let deadline = Instant::now() + DEPARTURE_NEWS;
        while self.departed.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let notifications = self.notifications.as_ref()?;
            if left.is_zero() {
                break;
            }
            match notifications.recv_timeout(left) {
                Ok(notification) => self.note(id, &notification),
                Err(_) => break,
            }
        }
        self.departed
    }

    fn note(&mut self, id: Guid, notification: &Notification) {
        if notification.job == id && notification.state.is_final() {
            self.departed = Some(notification.state);
        }
    }
}

impl Iterator for Watch {
    type Item = Result<Status>;

    fn next(&mut self) -> Option<Result<Status>> {
        if self.ended {
            return None;
        }
        loop {
            if self.last.is_some() {
                self.wait_for_news();
            }
            let status = match self.look() {
                Ok(status) => status,
                Err(error) => {
                    self.ended = true;
                    return Some(Err(error));
                }
            };
            if self.last.as_ref() == Some(&status) {
                continue;
            }
            self.ended = status.is_final();
            self.last = Some(status.clone());
            return Some(Ok(status));
        }
    }
}

impl std::iter::FusedIterator for Watch {}
