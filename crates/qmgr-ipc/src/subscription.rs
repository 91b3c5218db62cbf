//! A subscriber's queue of notifications inside the service: bounded by coalescing, and
//! pollable.
//!
//! The queue manager pushes into a [`Publisher`]; the connection's writer thread takes
//! from the matching [`Subscription`]. A subscriber that stops reading must not make the
//! service's memory grow with every progress report, so:
//!
//! - a `Modification` (progress or any change) replaces a `Modification` of the same job
//!   still waiting: a slow subscriber gets the latest state, and the queue holds at most
//!   one per job;
//! - `Transferred`, `Error` and `FileTransferred` are never dropped nor merged: they are
//!   state the subscriber must learn, and there is at most one per state change.
//!
//! The queue also owns an `eventfd` that is readable while notifications wait or the
//! publisher is gone, so a writer thread can block in `poll` on its socket and its queue
//! at once: a client that hangs up is noticed at once and an idle subscriber costs no
//! wake-ups.

use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use qmgr_core::Guid;
use qmgr_core::service::{Notification, NotificationKind};
use rustix::event::{EventfdFlags, eventfd};

/// Makes a connected publisher and subscription.
///
/// # Errors
/// When no `eventfd` can be made (out of descriptors).
pub fn subscription() -> std::io::Result<(Publisher, Subscription)> {
    let ready = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue::default()),
        arrived: Condvar::new(),
        ready,
    });
    Ok((
        Publisher {
            shared: Arc::clone(&shared),
        },
        Subscription { shared },
    ))
}

/// Why nothing was received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvError {
    /// Nothing arrived in time (or, for [`Subscription::try_recv`], nothing waits).
    Empty,
    /// The publisher is gone and everything it sent was received.
    Closed,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    arrived: Condvar,
    /// Readable (count > 0) while notifications wait or the publisher is gone.
    ready: OwnedFd,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn signal(&self) {
        // The counter cannot overflow: it is drained before it reaches 2^64 - 1 by far. A
        // failed write only costs a wake-up of a consumer that is not polling.
        let _ = rustix::io::write(&self.ready, &1u64.to_ne_bytes());
        self.arrived.notify_all();
    }

    /// Waits on `queue` for an arrival until `deadline`; `None` once it has passed.
    fn wait_until<'a>(
        &self,
        queue: MutexGuard<'a, Queue>,
        deadline: Instant,
    ) -> Option<MutexGuard<'a, Queue>> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let (queue, _) = self
            .arrived
            .wait_timeout(queue, left)
            .unwrap_or_else(PoisonError::into_inner);
        Some(queue)
    }

    fn unsignal(&self) {
        let mut count = [0u8; 8];
        let _ = rustix::io::read(&self.ready, &mut count);
    }
}

#[derive(Debug, Default)]
struct Queue {
    /// Waiting notifications with their sequence numbers, oldest first.
    entries: VecDeque<(u64, Notification)>,
    /// The sequence number the next pushed entry gets.
    next_seq: u64,
    /// For each job with a Modification waiting: that entry's sequence number.
    modifications: HashMap<Guid, u64>,
    /// How many of the waiting entries tell of a stopped job (see
    /// [`Subscription::wait_for_stopped`]).
    stopped: usize,
    publisher_gone: bool,
    subscriber_gone: bool,
}

impl Queue {
    /// Adds `notification`; returns whether the queue was empty before.
    fn push(&mut self, notification: Notification) -> bool {
        if notification.kind == NotificationKind::Modification
            && let Some(&seq) = self.modifications.get(&notification.job)
            && let Some(&(head, _)) = self.entries.front()
            && let Some(entry) = usize::try_from(seq - head)
                .ok()
                .and_then(|index| self.entries.get_mut(index))
        {
            // Still waiting: it becomes the latest state, in its place.
            self.stopped -= usize::from(entry.1.job_stopped());
            self.stopped += usize::from(notification.job_stopped());
            entry.1 = notification;
            return false;
        }
        self.stopped += usize::from(notification.job_stopped());
        let was_empty = self.entries.is_empty();
        let seq = self.next_seq;
        self.next_seq += 1;
        if notification.kind == NotificationKind::Modification {
            self.modifications.insert(notification.job, seq);
        }
        self.entries.push_back((seq, notification));
        was_empty
    }

    fn pop(&mut self) -> Option<Notification> {
        let (seq, notification) = self.entries.pop_front()?;
        self.stopped -= usize::from(notification.job_stopped());
        if notification.kind == NotificationKind::Modification
            && self.modifications.get(&notification.job) == Some(&seq)
        {
            self.modifications.remove(&notification.job);
        }
        Some(notification)
    }
}

/// The service's end: pushes notifications, never blocks.
#[derive(Debug)]
pub struct Publisher {
    shared: Arc<Shared>,
}

impl Publisher {
    /// Queues `notification` (coalescing a Modification with a waiting one of the same
    /// job); returns `false` when the subscriber is gone, so the publisher can be dropped.
    pub fn push(&self, notification: Notification) -> bool {
        let mut queue = self.shared.lock();
        if queue.subscriber_gone {
            return false;
        }
        let stopped = notification.job_stopped();
        if queue.push(notification) {
            drop(queue);
            self.shared.signal();
        } else if stopped {
            // For a writer holding back a burst (see `Subscription::wait_for_stopped`).
            drop(queue);
            self.shared.arrived.notify_all();
        }
        true
    }

    /// Whether the subscription was dropped or closed.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().subscriber_gone
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.shared.lock().publisher_gone = true;
        self.shared.signal();
    }
}

/// The subscriber's end: takes notifications in order, and can be polled.
#[derive(Debug)]
pub struct Subscription {
    shared: Arc<Shared>,
}

impl Subscription {
    /// Takes the oldest waiting notification without blocking.
    ///
    /// # Errors
    /// [`RecvError::Empty`] when none waits, [`RecvError::Closed`] when none will come.
    pub fn try_recv(&self) -> Result<Notification, RecvError> {
        let mut queue = self.shared.lock();
        self.take(&mut queue)
    }

    /// Waits for the next notification.
    ///
    /// # Errors
    /// [`RecvError::Closed`] when the publisher is gone and the queue is empty.
    pub fn recv(&self) -> Result<Notification, RecvError> {
        let mut queue = self.shared.lock();
        loop {
            match self.take(&mut queue) {
                Err(RecvError::Empty) => {}
                other => return other,
            }
            queue = self
                .shared
                .arrived
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Waits at most `timeout` for the next notification.
    ///
    /// # Errors
    /// [`RecvError::Empty`] when none arrived in time, [`RecvError::Closed`] when none
    /// will come.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Notification, RecvError> {
        let deadline = Instant::now() + timeout;
        let mut queue = self.shared.lock();
        loop {
            match self.take(&mut queue) {
                Err(RecvError::Empty) => {}
                other => return other,
            }
            let Some(waited) = self.shared.wait_until(queue, deadline) else {
                return Err(RecvError::Empty);
            };
            queue = waited;
        }
    }

    /// Waits at most `timeout` until a notification that tells of a stopped job waits (see
    /// [`Notification::job_stopped`]) or the publisher is gone; returns whether either is
    /// so. Takes nothing: a writer that gathers a burst of progress for a while sends at
    /// once what its client acts on at once.
    pub fn wait_for_stopped(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut queue = self.shared.lock();
        loop {
            if queue.stopped > 0 || queue.publisher_gone {
                return true;
            }
            let Some(waited) = self.shared.wait_until(queue, deadline) else {
                return false;
            };
            queue = waited;
        }
    }

    /// How many notifications wait.
    pub fn len(&self) -> usize {
        self.shared.lock().entries.len()
    }

    /// Whether no notification waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The waiting notifications, oldest first, without taking them (for tests and logs).
    pub fn pending(&self) -> Vec<Notification> {
        self.shared
            .lock()
            .entries
            .iter()
            .map(|(_, notification)| notification.clone())
            .collect()
    }

    /// Ends the subscription from the subscriber's side: the publisher's next push fails,
    /// and waiting notifications are dropped.
    pub fn close(&self) {
        let mut queue = self.shared.lock();
        queue.subscriber_gone = true;
        queue.entries.clear();
        queue.modifications.clear();
        queue.stopped = 0;
    }

    /// Wakes every thread blocked in [`Subscription::recv`] or polling
    /// [`Subscription::ready_fd`] without queueing anything (they find nothing and wait
    /// again unless closed).
    pub fn wake(&self) {
        self.shared.signal();
    }

    /// A descriptor that polls readable (`POLLIN`) while a notification waits or the
    /// publisher is gone. Reading it is the subscription's business: poll it, then call
    /// [`Subscription::try_recv`] until it is empty.
    pub fn ready_fd(&self) -> BorrowedFd<'_> {
        self.shared.ready.as_fd()
    }

    fn take(&self, queue: &mut Queue) -> Result<Notification, RecvError> {
        if let Some(notification) = queue.pop() {
            if queue.entries.is_empty() && !queue.publisher_gone {
                self.shared.unsignal();
            }
            return Ok(notification);
        }
        if queue.publisher_gone {
            return Err(RecvError::Closed);
        }
        // Nothing waits: a wake-up without a notification is spent.
        self.shared.unsignal();
        Err(RecvError::Empty)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmgr_core::JobState;
    use rustix::event::{PollFd, PollFlags, poll};

    fn note(job: Guid, kind: NotificationKind, state: JobState) -> Notification {
        Notification { job, kind, state }
    }

    fn readable(subscription: &Subscription) -> bool {
        let fd = subscription.ready_fd();
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        poll(&mut fds, Some(&rustix::event::Timespec::default())).unwrap() == 1
    }

    #[test]
    fn a_subscriber_that_never_reads_holds_one_modification_per_job_and_every_event() {
        let (publisher, subscription) = subscription().unwrap();
        let jobs: Vec<Guid> = (0..4).map(|_| Guid::new_random()).collect();
        let mut kept = Vec::new();
        for round in 0..10_000u32 {
            let job = jobs[round as usize % jobs.len()];
            assert!(publisher.push(note(
                job,
                NotificationKind::Modification,
                JobState::Transferring
            )));
            if round % 1000 == 999 {
                let event = match round % 3 {
                    0 => note(job, NotificationKind::Transferred, JobState::Transferred),
                    1 => note(job, NotificationKind::Error, JobState::Error),
                    _ => note(
                        job,
                        NotificationKind::FileTransferred { file: round },
                        JobState::Transferring,
                    ),
                };
                assert!(publisher.push(event.clone()));
                kept.push(event);
            }
        }
        let last = note(jobs[0], NotificationKind::Modification, JobState::Suspended);
        assert!(publisher.push(last.clone()));
        let pending = subscription.pending();
        let modifications: Vec<_> = pending
            .iter()
            .filter(|n| n.kind == NotificationKind::Modification)
            .collect();
        assert!(modifications.len() <= jobs.len(), "{modifications:?}");
        let events: Vec<_> = pending
            .iter()
            .filter(|n| n.kind != NotificationKind::Modification)
            .cloned()
            .collect();
        assert_eq!(events, kept);
        assert_eq!(pending.len(), modifications.len() + kept.len());
        // The latest state of a job replaced the older one.
        assert!(pending.contains(&last));
    }

    #[test]
    fn a_reading_subscriber_sees_every_notification_in_order() {
        let (publisher, subscription) = subscription().unwrap();
        let job = Guid::new_random();
        let reader = std::thread::spawn(move || {
            let mut transferred = 0;
            let mut modifications = 0;
            while let Ok(notification) = subscription.recv() {
                match notification.kind {
                    NotificationKind::Transferred => transferred += 1,
                    NotificationKind::Modification => modifications += 1,
                    _ => {}
                }
            }
            (transferred, modifications)
        });
        for _ in 0..1000 {
            publisher.push(note(
                job,
                NotificationKind::Modification,
                JobState::Transferring,
            ));
            publisher.push(note(
                job,
                NotificationKind::Transferred,
                JobState::Transferred,
            ));
        }
        drop(publisher);
        let (transferred, modifications) = reader.join().unwrap();
        assert_eq!(transferred, 1000);
        assert!((1..=1000).contains(&modifications), "{modifications}");
    }

    #[test]
    fn the_descriptor_is_readable_exactly_while_something_waits_or_the_publisher_left() {
        let (publisher, subscription) = subscription().unwrap();
        assert!(!readable(&subscription));
        let job = Guid::new_random();
        publisher.push(note(job, NotificationKind::Modification, JobState::Queued));
        publisher.push(note(
            job,
            NotificationKind::Modification,
            JobState::Connecting,
        ));
        assert!(readable(&subscription));
        assert_eq!(subscription.try_recv().unwrap().state, JobState::Connecting);
        assert!(!readable(&subscription));
        assert_eq!(subscription.try_recv(), Err(RecvError::Empty));
        assert_eq!(
            subscription.recv_timeout(Duration::from_millis(10)),
            Err(RecvError::Empty)
        );
        drop(publisher);
        assert!(readable(&subscription));
        assert_eq!(subscription.recv(), Err(RecvError::Closed));
    }

    #[test]
    fn a_closed_subscription_refuses_pushes() {
        let (publisher, subscription) = subscription().unwrap();
        let job = Guid::new_random();
        assert!(publisher.push(note(job, NotificationKind::Error, JobState::Error)));
        drop(subscription);
        assert!(publisher.is_closed());
        assert!(!publisher.push(note(job, NotificationKind::Error, JobState::Error)));
    }

    #[test]
    fn news_of_a_stopped_job_ends_a_writers_wait_and_progress_does_not() {
        let (publisher, subscription) = subscription().unwrap();
        let job = Guid::new_random();
        let moving = note(job, NotificationKind::Modification, JobState::Transferring);
        publisher.push(moving.clone());
        publisher.push(note(
            job,
            NotificationKind::FileTransferred { file: 0 },
            JobState::Transferring,
        ));
        assert!(!subscription.wait_for_stopped(Duration::from_millis(20)));
        // The job's waiting Modification becomes one of a stopped job.
        publisher.push(note(
            job,
            NotificationKind::Modification,
            JobState::Transferred,
        ));
        assert!(subscription.wait_for_stopped(Duration::from_secs(60)));
        assert_eq!(subscription.len(), 2, "nothing was taken");
        while subscription.try_recv().is_ok() {}
        assert!(
            !subscription.wait_for_stopped(Duration::ZERO),
            "taken: none waits"
        );
        // A Modification of a stopped job replaced by one of a moving job no longer counts.
        publisher.push(note(
            job,
            NotificationKind::Modification,
            JobState::Suspended,
        ));
        publisher.push(moving);
        assert!(!subscription.wait_for_stopped(Duration::ZERO));
        // One arriving while the writer waits wakes it.
        let waiter =
            std::thread::spawn(move || subscription.wait_for_stopped(Duration::from_secs(60)));
        publisher.push(note(job, NotificationKind::Error, JobState::Error));
        assert!(waiter.join().unwrap());
    }

    #[test]
    fn a_writer_waiting_for_news_of_a_stopped_job_is_let_go_when_the_publisher_leaves() {
        let (publisher, subscription) = subscription().unwrap();
        let waiter =
            std::thread::spawn(move || subscription.wait_for_stopped(Duration::from_secs(60)));
        drop(publisher);
        assert!(waiter.join().unwrap());
    }
}
