//! Notifications: subscribers' channels, and the notification command.

use qmgr_core::job::notify;
use qmgr_core::service::{Notification, NotificationKind};
use qmgr_core::{Guid, JobState, QmgrError, Result, Timestamp};
use qmgr_ipc::subscription::{Publisher, Subscription, subscription};

use crate::command_line;

use super::{QueueManager, ROOT, State};

pub(super) struct Subscriber {
    pub(super) uid: u32,
    pub(super) sender: Publisher,
}

impl QueueManager {
    /// A stream of notifications about the jobs `uid` may see, in a bounded queue (see
    /// [`qmgr_ipc::subscription`]: a subscriber that stops reading holds at most one
    /// Modification per job).
    ///
    /// # Errors
    /// When the queue's descriptor cannot be made (out of descriptors).
    pub fn subscribe(&self, uid: u32) -> Result<Subscription> {
        let (sender, receiver) = subscription().map_err(|error| {
            QmgrError::internal(format!("cannot make a notification queue: {error}"))
        })?;
        let mut state = self.shared.state.lock();
        // Subscribers who left are otherwise forgotten only at the next notification about
        // their user's jobs: on a quiet queue each would keep its queue and descriptor, and
        // clients that subscribe again and again would run qmgrd out of descriptors. Pruned
        // here, those left behind are at most the subscribers there were at once.
        state
            .subscribers
            .retain(|subscriber| !subscriber.sender.is_closed());
        state.subscribers.push(Subscriber { uid, sender });
        Ok(receiver)
    }
}

impl State {
    /// Tells subscribers what changed and runs the notification command when due.
    pub(super) fn announce(&mut self, id: Guid, before: JobState, now: Timestamp) {
        let Some(entry) = self.jobs.get(&id) else {
            return;
        };
        let job = &entry.job;
        let arrival = match job.state {
            _ if before == job.state => None,
            JobState::Transferred => Some(NotificationKind::Transferred),
            JobState::Error => Some(NotificationKind::Error),
            _ => None,
        };
        let state = job.state;
        let limit = job.settings.maximum_download_time;
        self.download_clocks.observe(id, before, state, limit, now);
        let Some(job) = self.jobs.get(&id).map(|entry| &entry.job) else {
            return;
        };
        if before != state {
            // One line per state change: a job's life as `journalctl` or qmgrd.log tells it.
            let error = job
                .error
                .as_ref()
                .filter(|_| matches!(state, JobState::Error | JobState::TransientError))
                .map(|error| error.error.to_string());
            tracing::info!(
                job = %id,
                from = before.name(),
                to = state.name(),
                error = error.as_deref(),
                "job state changed"
            );
        }
        for kind in std::iter::once(NotificationKind::Modification).chain(arrival) {
            self.publish_about(id, kind);
        }
        let Some(job) = self.jobs.get(&id).map(|entry| &entry.job) else {
            return;
        };
        let flags = job.settings.notify_flags;
        let wanted = match state {
            JobState::Transferred => flags & notify::JOB_TRANSFERRED != 0,
            JobState::Error => flags & notify::JOB_ERROR != 0,
            _ => false,
        };
        if before != state
            && wanted
            && flags & notify::DISABLE == 0
            && let Some(command) = &job.settings.notify_command
        {
            // A failure to start the program is not the job's failure; it is logged. A
            // command from an older store that breaks today's rules (a relative program)
            // is not run at all.
            if let Err(error) = command.validate() {
                tracing::warn!(
                    job = %id,
                    "not running the notification command: {}",
                    error.description
                );
            } else if let Err(error) = command_line::run(command) {
                tracing::warn!(
                    job = %id,
                    "cannot run the notification command {}: {error}",
                    command.program
                );
            }
        }
    }

    pub(super) fn notify_file(&mut self, id: Guid, file: usize) {
        let file = u32::try_from(file).unwrap_or(u32::MAX);
        self.publish_about(id, NotificationKind::FileTransferred { file });
    }

    /// Tells subscribers `kind` of job `id`, in the state it is in now.
    pub(super) fn publish_about(&mut self, id: Guid, kind: NotificationKind) {
        let Some(job) = self.jobs.get(&id).map(|entry| &entry.job) else {
            return;
        };
        let (owner, state) = (job.owner_uid, job.state);
        self.publish(
            owner,
            Notification {
                job: id,
                kind,
                state,
            },
        );
    }

    /// Queues `notification` for every subscriber who may see `owner`'s jobs, and forgets
    /// the subscribers who left.
    pub(super) fn deliver(&mut self, owner: u32, notification: &Notification) {
        self.subscribers.retain(|subscriber| {
            subscriber.uid != owner && subscriber.uid != ROOT
                || subscriber.sender.push(notification.clone())
        });
    }
}
