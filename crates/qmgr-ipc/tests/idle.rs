//! What a quiet notification stream costs the service: its thread sleeps until a
//! notification or the client's hang-up, with no periodic wake-up. A test binary of its
//! own, so that no other test's connection threads are counted.

mod common;

use std::os::unix::net::UnixStream;
use std::thread;
use std::time::Duration;

use common::Instance;
use qmgr_core::service::{Notification, NotificationKind, PROTOCOL_VERSION};
use qmgr_core::{Guid, JobState};
use qmgr_ipc::frame::{MAX_FRAME_LEN, read_frame, write_frame};
use qmgr_ipc::message::{ClientMessage, Purpose, ServiceMessage};

const PATIENCE: Duration = Duration::from_secs(30);

fn wait_until(condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "condition not reached"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// Voluntary context switches of this process's threads named `name`, summed.
fn wake_ups_of_threads_named(name: &str) -> (usize, u64) {
    let mut threads = 0;
    let mut switches = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        if let Some(count) = status
            .lines()
            .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
        {
            threads += 1;
            switches += count.trim().parse::<u64>().unwrap();
        }
    }
    (threads, switches)
}

#[test]
fn an_idle_subscriber_costs_no_wake_ups_and_a_hang_up_is_noticed_without_a_notification() {
    let instance = Instance::start();
    let control = instance.server.as_ref().unwrap().control();
    let mut subscriber = UnixStream::connect(instance.socket()).unwrap();
    write_frame(
        &mut subscriber,
        &ClientMessage::Hello {
            protocol_version: PROTOCOL_VERSION,
            purpose: Purpose::Notifications,
            client_name: "idle".into(),
        },
    )
    .unwrap();
    let _: ServiceMessage = read_frame(&mut subscriber, MAX_FRAME_LEN).unwrap();
    wait_until(|| instance.queue.subscriber_count() == 1);
    // Let the connection's thread settle into its wait.
    thread::sleep(Duration::from_millis(100));
    let (threads, before) = wake_ups_of_threads_named("qmgr-connection");
    assert_eq!(threads, 1);
    // A window of real time is the point here: a periodic wake-up (a poll timeout, a
    // keep-alive tick) shorter than it shows up as a context switch, however slow the
    // machine; no event could stand in for the absence of one.
    thread::sleep(Duration::from_millis(800));
    let (_, after) = wake_ups_of_threads_named("qmgr-connection");
    assert_eq!(after, before, "an idle subscriber's thread woke up");

    let left = std::time::Instant::now();
    drop(subscriber);
    wait_until(|| control.open_connections() == 0);
    println!("the hang-up was noticed after {:?}", left.elapsed());
    // The publisher learns at its next push that nobody listens.
    instance.queue.notify(&Notification {
        job: Guid::new_random(),
        kind: NotificationKind::Modification,
        state: JobState::Queued,
    });
    assert_eq!(instance.queue.subscriber_count(), 0);
}
