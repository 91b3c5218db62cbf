//! Client and server end to end: calls, concurrency, notifications, handshake refusals,
//! and what a client sees when the service stops or restarts.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{FAKE_VERSION, Instance};
use qmgr_core::hresult;
use qmgr_core::service::{
    Notification, NotificationKind, PROTOCOL_VERSION, QueueService, QueueServiceExt, Request,
    Response,
};
use qmgr_core::{Guid, JobState, JobType};
use qmgr_ipc::Client;
use qmgr_ipc::frame::{MAX_FRAME_LEN, read_frame, write_frame};
use qmgr_ipc::message::{ClientMessage, Purpose, ServiceMessage};

/// Long enough that a missing notification fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(30);

#[test]
fn calls_reach_the_handler_and_answers_come_back() {
    let instance = Instance::start();
    let client = Client::connect(&instance.paths).unwrap();
    assert_eq!(client.ping().unwrap(), FAKE_VERSION);
    assert_eq!(client.service_uid(), rustix::process::geteuid().as_raw());
    assert_eq!(client.service_version(), env!("CARGO_PKG_VERSION"));
    assert_eq!(client.socket_path(), instance.socket());

    let id = client.create_job("first", JobType::Download).unwrap();
    let view = client.job(id).unwrap();
    assert_eq!(view.job.display_name, "first");
    assert_eq!(view.job.owner_uid, client.service_uid());
    assert_eq!(view.job.state, JobState::Suspended);

    client.create_job("second", JobType::Upload).unwrap();
    let names: Vec<String> = client
        .jobs(false)
        .unwrap()
        .into_iter()
        .map(|view| view.job.display_name)
        .collect();
    assert_eq!(names, ["first", "second"]);

    assert_eq!(client.resume(id).unwrap(), hresult::S_OK);
    assert_eq!(client.job(id).unwrap().job.state, JobState::Queued);
}

#[test]
fn errors_cross_the_wire_with_code_and_description() {
    let instance = Instance::start();
    let client = Client::connect(&instance.paths).unwrap();
    let missing = Guid::new_random();
    let error = client.job(missing).unwrap_err();
    assert_eq!(error.hresult, hresult::BG_E_NOT_FOUND);
    assert!(error.description.contains(&missing.to_string()), "{error}");
    let error = client
        .execute(Request::ListGroups { after: None })
        .unwrap_err();
    assert_eq!(error.hresult, hresult::E_NOTIMPL);
    // Validation inside the handler (an over-long display name) comes back as it was made.
    let error = client
        .create_job(&"n".repeat(300), JobType::Download)
        .unwrap_err();
    assert_eq!(error.hresult, hresult::BG_E_STRING_TOO_LONG);
}

#[test]
fn a_panicking_handler_answers_with_an_error_and_the_connection_goes_on() {
    let instance = Instance::start();
    let client = Client::connect(&instance.paths).unwrap();
    let error = client
        .execute(Request::GetGroup {
            group: Guid::new_random(),
        })
        .unwrap_err();
    assert_eq!(error.hresult, hresult::E_UNEXPECTED);
    assert!(error.description.contains("GetGroup"), "{error}");
    assert_eq!(client.ping().unwrap(), FAKE_VERSION);
}

#[test]
fn threads_share_one_client() {
    const THREADS: usize = 8;
    const JOBS_PER_THREAD: usize = 100;
    let instance = Instance::start();
    let client = Arc::new(Client::connect(&instance.paths).unwrap());
    let workers: Vec<_> = (0..THREADS)
        .map(|thread_index| {
            let client = Arc::clone(&client);
            thread::spawn(move || {
                for job_index in 0..JOBS_PER_THREAD {
                    let name = format!("t{thread_index}-j{job_index}");
                    let id = client.create_job(&name, JobType::Download).unwrap();
                    assert_eq!(client.job(id).unwrap().job.display_name, name);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(client.jobs(false).unwrap().len(), THREADS * JOBS_PER_THREAD);
}

#[test]
fn notifications_arrive_in_order() {
    const COUNT: usize = 2000;
    let instance = Instance::start();
    let client = Client::connect(&instance.paths).unwrap();
    let notifications = client.subscribe().unwrap();
    assert_eq!(instance.queue.subscriber_count(), 1);
    let job = Guid::new_random();
    for index in 0..COUNT {
        instance.queue.notify(&Notification {
            job,
            kind: NotificationKind::FileTransferred {
                file: u32::try_from(index).unwrap(),
            },
            state: JobState::Transferring,
        });
    }
    for index in 0..COUNT {
        let notification = notifications.recv_timeout(PATIENCE).unwrap();
        assert_eq!(
            notification.kind,
            NotificationKind::FileTransferred {
                file: u32::try_from(index).unwrap()
            }
        );
    }
    // The service ending the stream ends the client's.
    instance.queue.drop_subscribers();
    assert!(notifications.recv_timeout(PATIENCE).is_err());
}

#[test]
fn a_notification_callback_may_call_back_into_the_service() {
    let instance = Instance::start();
    let client = Arc::new(Client::connect(&instance.paths).unwrap());
    let id = client.create_job("callback", JobType::Download).unwrap();
    let notifications = client.subscribe().unwrap();
    let listener = {
        let client = Arc::clone(&client);
        thread::spawn(move || {
            let notification = notifications.recv_timeout(PATIENCE).unwrap();
            // As Microsoft's samples call Complete() inside JobTransferred.
            client.job(notification.job).unwrap().job.state
        })
    };
    client.resume(id).unwrap();
    assert_eq!(listener.join().unwrap(), JobState::Queued);
}

#[test]
fn a_dropped_subscription_closes_its_connection() {
    let instance = Instance::start();
    let client = Client::connect(&instance.paths).unwrap();
    drop(client.subscribe().unwrap());
    let control = instance.server.as_ref().unwrap().control();
    assert_eq!(control.open_connections(), 2);
    // The reader thread notices the dropped receiver at the next notification.
    instance.queue.notify(&Notification {
        job: Guid::new_random(),
        kind: NotificationKind::Modification,
        state: JobState::Queued,
    });
    wait_until(|| control.open_connections() == 1);
}

#[test]
fn a_hello_of_another_protocol_version_is_refused_naming_both() {
    let instance = Instance::start();
    let mut stream = UnixStream::connect(instance.socket()).unwrap();
    let other_version = PROTOCOL_VERSION + 41;
    write_frame(
        &mut stream,
        &ClientMessage::Hello {
            protocol_version: other_version,
            purpose: Purpose::Calls,
            client_name: "old client".into(),
        },
    )
    .unwrap();
    let ServiceMessage::Refused(error) = read_frame(&mut stream, MAX_FRAME_LEN).unwrap() else {
        panic!("expected a refusal");
    };
    assert_eq!(error.hresult, hresult::QM_E_SERVICE_UNAVAILABLE);
    assert!(
        error
            .description
            .contains(&format!("version {other_version}")),
        "{error}"
    );
    assert!(
        error
            .description
            .contains(&format!("version {PROTOCOL_VERSION}")),
        "{error}"
    );
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "the service closes after refusing");
}

/// A stand-in service that answers the first Hello with `answer`.
fn serve_one_handshake(root: &std::path::Path, answer: Vec<u8>) -> std::path::PathBuf {
    let socket = root.join("other.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _: ClientMessage = read_frame(&mut stream, MAX_FRAME_LEN).unwrap();
        stream.write_all(&answer).unwrap();
    });
    socket
}

#[test]
fn a_welcome_of_another_protocol_version_is_an_error_naming_both() {
    let root = tempfile::tempdir().unwrap();
    let newer = PROTOCOL_VERSION + 1;
    // A newer service's Welcome, with fields this version does not know after the version.
    let mut payload = postcard::to_stdvec(&(0u32, newer)).unwrap();
    payload.extend_from_slice(&[0xFF; 9]);
    let mut frame = u32::try_from(payload.len()).unwrap().to_le_bytes().to_vec();
    frame.extend_from_slice(&payload);
    let socket = serve_one_handshake(root.path(), frame);
    let error = Client::connect_socket(&socket).unwrap_err();
    assert!(
        error.description.contains(&format!("version {newer}")),
        "{error}"
    );
    assert!(
        error
            .description
            .contains(&format!("version {PROTOCOL_VERSION}")),
        "{error}"
    );
}

#[test]
fn a_refusal_reaches_the_caller_unchanged() {
    let root = tempfile::tempdir().unwrap();
    let refusal = qmgr_core::QmgrError::from_code(hresult::E_ACCESSDENIED).context("not you");
    let frame = qmgr_ipc::frame::encode_frame(&ServiceMessage::Refused(refusal.clone())).unwrap();
    let socket = serve_one_handshake(root.path(), frame);
    assert_eq!(Client::connect_socket(&socket).unwrap_err(), refusal);
}

#[test]
fn something_else_on_the_socket_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let socket = serve_one_handshake(root.path(), b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec());
    let error = Client::connect_socket(&socket).unwrap_err();
    assert_eq!(error.hresult, hresult::QM_E_SERVICE_UNAVAILABLE);
    assert!(
        error.description.contains(&socket.display().to_string()),
        "{error}"
    );
}

#[test]
fn no_service_is_an_unavailable_error_naming_the_socket() {
    let root = tempfile::tempdir().unwrap();
    let paths = common::paths_in(root.path());
    let error = Client::connect(&paths).unwrap_err();
    assert_eq!(error.hresult, hresult::QM_E_SERVICE_UNAVAILABLE);
    assert!(
        error
            .description
            .contains(&paths.socket_path().display().to_string()),
        "{error}"
    );
    assert!(error.description.contains("not running"), "{error}");
}

#[test]
fn a_stopped_service_fails_calls_and_ends_notifications() {
    let mut instance = Instance::start();
    let client = Client::connect(&instance.paths).unwrap();
    let notifications = client.subscribe().unwrap();
    instance.stop();
    let error = client.ping().unwrap_err();
    assert_eq!(error.hresult, hresult::QM_E_SERVICE_UNAVAILABLE);
    assert!(error.description.contains("Ping"), "{error}");
    assert!(
        error
            .description
            .contains(&instance.socket().display().to_string()),
        "{error}"
    );
    assert!(notifications.recv_timeout(PATIENCE).is_err());
}

#[test]
fn a_client_reconnects_after_the_service_restarts() {
    let mut instance = Instance::start();
    let client = Client::connect(&instance.paths).unwrap();
    let id = client.create_job("kept", JobType::Download).unwrap();
    instance.stop();
    instance.restart();
    // The call that finds the old connection dead fails; the next one reconnects.
    assert!(client.ping().is_err());
    assert_eq!(client.job(id).unwrap().job.display_name, "kept");
}

#[test]
fn stopping_ends_connections_and_counts_idleness() {
    let instance = Instance::start();
    let control = instance.server.as_ref().unwrap().control();
    assert!(control.idle_for().is_some());
    let client = Client::connect(&instance.paths).unwrap();
    client.ping().unwrap();
    assert_eq!(control.open_connections(), 1);
    assert_eq!(control.idle_for(), None);
    drop(client);
    wait_until(|| control.open_connections() == 0);
    assert!(control.idle_for().is_some());
    assert!(!control.is_stopping());
    control.stop();
    assert!(control.is_stopping());
}

#[test]
fn typed_answers_match_the_request() {
    let instance = Instance::start();
    let client = Client::connect(&instance.paths).unwrap();
    assert!(matches!(
        client.execute(Request::ListJobs {
            all_users: false,
            after: None
        }),
        Ok(Response::JobPage { .. })
    ));
    let all_users = client.execute(Request::ListJobs {
        all_users: true,
        after: None,
    });
    if client.service_uid() == 0 {
        assert!(all_users.is_ok());
    } else {
        assert_eq!(all_users.unwrap_err().hresult, hresult::E_ACCESSDENIED);
    }
}

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

/// A stand-in service that completes every handshake, never answers a call on its first
/// connection (it keeps it open, reading), and answers Ping on later ones.
fn serve_wedged_first(root: &std::path::Path) -> std::path::PathBuf {
    let socket = root.join("wedged.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let mut stream = stream.unwrap();
            thread::spawn(move || {
                let _: ClientMessage = read_frame(&mut stream, MAX_FRAME_LEN).unwrap();
                let welcome = ServiceMessage::Welcome {
                    protocol_version: PROTOCOL_VERSION,
                    service_version: "wedged".into(),
                    peer_uid: rustix::process::geteuid().as_raw(),
                };
                write_frame(&mut stream, &welcome).unwrap();
                while let Ok(message) = read_frame::<ClientMessage>(&mut stream, MAX_FRAME_LEN) {
                    if let (ClientMessage::Call { id, .. }, true) = (message, n > 0) {
                        let answer = ServiceMessage::Answer {
                            id,
                            result: Ok(Response::Pong {
                                service_version: "recovered".into(),
                            }),
                        };
                        write_frame(&mut stream, &answer).unwrap();
                    }
                }
            });
        }
    });
    socket
}

#[test]
fn a_call_without_an_answer_times_out_naming_the_request_and_the_socket_then_reconnects() {
    let root = tempfile::tempdir().unwrap();
    let socket = serve_wedged_first(root.path());
    let timeout = Duration::from_millis(300);
    let client = Client::connect_socket(&socket)
        .unwrap()
        .with_call_timeout(timeout);
    let started = std::time::Instant::now();
    let error = client.ping().unwrap_err();
    let waited = started.elapsed();
    assert!(waited >= timeout && waited < PATIENCE, "{waited:?}");
    assert_eq!(error.hresult, hresult::QM_E_SERVICE_UNAVAILABLE);
    assert!(error.description.contains("Ping"), "{error}");
    assert!(error.description.contains("did not answer"), "{error}");
    assert!(
        error.description.contains(&socket.display().to_string()),
        "{error}"
    );
    // The wedged connection was dropped: the next call makes a new one.
    assert_eq!(client.ping().unwrap(), "recovered");
}

#[test]
fn every_call_waits_at_most_two_minutes_by_default() {
    assert_eq!(qmgr_ipc::client::CALL_TIMEOUT, Duration::from_secs(120));
}
