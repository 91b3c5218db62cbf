//! ON_DEMAND_MODE jobs through qmgrd: only the ranges asked for are fetched, each lands at
//! its own offset in the temporary file, the filled ranges outlive a restart of qmgrd, and
//! the job is TRANSFERRED (and Complete gives the whole file) once every byte is there.

mod common;

use common::Instance;

use qmgr_core::hresult;
use qmgr_core::on_demand::Span;
use qmgr_core::ranges::{FileRange, LENGTH_TO_EOF};
use qmgr_core::service::{
    JobChange, Notification, NotificationKind, QueueService, QueueServiceExt,
};
use qmgr_core::{Guid, JobState, JobType};
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

const fn range(offset: u64, length: u64) -> FileRange {
    FileRange { offset, length }
}

/// Waits for the next FileRangesTransferred of job `id` and returns its ranges.
fn ranges_transferred(
    events: &std::sync::mpsc::Receiver<Notification>,
    id: Guid,
) -> Vec<FileRange> {
    loop {
        let event = events
            .recv_timeout(common::PATIENCE)
            .expect("a FileRangesTransferred notification");
        if event.job != id {
            continue;
        }
        if let NotificationKind::FileRangesTransferred { file, ranges } = event.kind {
            assert_eq!(file, 0);
            return ranges;
        }
        assert_ne!(event.state, JobState::Error, "the job failed");
    }
}

#[test]
fn only_requested_ranges_are_fetched_at_their_offsets_and_survive_a_restart() {
    let server = TestServer::start();
    let instance = Instance::new();
    let client = instance.client();
    let size = 100_000_u64;
    let path = "/data/100000/on-demand";
    let local = instance.downloads().join("on-demand.bin");
    let id = common::one_file_job(&client, &server.url(path), &local);
    client.set_job(id, JobChange::OnDemand(true)).unwrap();
    assert!(client.job(id).unwrap().job.settings.on_demand);
    let events = client.subscribe().unwrap();

    // Nothing asked for: a Resume fetches nothing and the job stops again.
    client.resume(id).unwrap();
    let idle = common::wait_for_state(&client, id, JobState::Suspended);
    assert_eq!(idle.job.state, JobState::Suspended);
    assert_eq!(server.body_bytes_sent(path), 0, "nothing was asked for");

    client
        .request_file_ranges(id, 0, vec![range(60_000, 5_000), range(1_000, 2_000)])
        .unwrap();
    client.resume(id).unwrap();
    let mut arrived = ranges_transferred(&events, id);
    arrived.sort_by_key(|range| range.offset);
    assert_eq!(arrived, [range(1_000, 2_000), range(60_000, 5_000)]);
    let view = common::wait_for_state(&client, id, JobState::Suspended);
    assert_eq!(view.job.state, JobState::Suspended, "{:?}", view.job.error);
    let file = &view.job.files[0];
    assert_eq!(file.bytes_total, size);
    assert_eq!(file.bytes_transferred, 7_000);
    assert_eq!(
        file.on_demand.filled.spans(),
        &[
            Span {
                start: 1_000,
                end: 3_000
            },
            Span {
                start: 60_000,
                end: 65_000
            }
        ]
    );
    assert_eq!(
        server.body_bytes_sent(path),
        7_000,
        "only the ranges asked for"
    );
    let whole = expected_body(path, INITIAL_VERSION, size);
    let temp = file.temp_name.clone().expect("a temporary file");
    let temporary_files: Vec<_> = std::fs::read_dir(instance.downloads())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with(".BIT"))
        })
        .collect();
    assert_eq!(
        temporary_files,
        [std::path::PathBuf::from(&temp)],
        "the fetch's scratch file is gone once its ranges are placed"
    );
    let on_disk = std::fs::read(&temp).unwrap();
    assert_eq!(
        on_disk.len() as u64,
        size,
        "the temporary file has the file's size"
    );
    assert!(on_disk[1_000..3_000] == whole[1_000..3_000]);
    assert!(on_disk[60_000..65_000] == whole[60_000..65_000]);

    // Beyond the end, now that the size is known.
    let beyond = client
        .request_file_ranges(id, 0, vec![range(99_000, 2_000)])
        .unwrap_err();
    assert_eq!(beyond.hresult, hresult::BG_E_INVALID_RANGE);

    drop(client);
    instance.kill_daemons("-KILL");
    let client = instance.client();
    let events = client.subscribe().unwrap();
    let again = client.job(id).unwrap().job;
    assert_eq!(
        again.files[0].on_demand.filled.spans().len(),
        2,
        "the filled ranges outlive qmgrd"
    );

    // The rest, overlapping what is there: only the missing bytes are fetched.
    client
        .request_file_ranges(id, 0, vec![range(0, LENGTH_TO_EOF)])
        .unwrap();
    client.resume(id).unwrap();
    ranges_transferred(&events, id);
    let done = common::wait_for_state(&client, id, JobState::Transferred);
    assert_eq!(
        done.job.state,
        JobState::Transferred,
        "{:?}",
        done.job.error
    );
    assert_eq!(
        server.body_bytes_sent(path),
        size,
        "no byte was fetched twice"
    );
    client.complete(id).unwrap();
    assert!(
        std::fs::read(&local).unwrap() == whole,
        "the completed file is the whole file"
    );
}

#[test]
fn ranges_need_an_on_demand_download_over_http() {
    let server = TestServer::start();
    let instance = Instance::new();
    let client = instance.client();
    let local = instance.downloads().join("plain.bin");
    let plain = common::one_file_job(&client, &server.url("/data/1000/plain"), &local);
    assert_eq!(
        client
            .request_file_ranges(plain, 0, vec![range(0, 10)])
            .unwrap_err()
            .hresult,
        hresult::E_NOTIMPL,
        "a job that downloads whole files does not take ranges"
    );
    assert_eq!(
        client.update_download_position(plain, 0, 10).unwrap(),
        hresult::S_OK
    );

    let dynamic = common::one_file_job(
        &client,
        &server.url("/data/1000/dynamic"),
        &instance.downloads().join("dynamic.bin"),
    );
    client
        .set_job(dynamic, JobChange::DynamicContent(true))
        .unwrap();
    assert_eq!(
        client
            .set_job(dynamic, JobChange::OnDemand(true))
            .unwrap_err()
            .hresult,
        hresult::BG_E_RANDOM_ACCESS_NOT_SUPPORTED
    );
    assert_eq!(
        client
            .request_file_ranges(dynamic, 0, vec![range(0, 10)])
            .unwrap_err()
            .hresult,
        hresult::BG_E_RANDOM_ACCESS_NOT_SUPPORTED
    );

    let upload = client.create_job("up", JobType::Upload);
    if let Ok(upload) = upload {
        assert_eq!(
            client
                .set_job(upload, JobChange::OnDemand(true))
                .unwrap_err()
                .hresult,
            hresult::BG_E_PROPERTY_SUPPORTED_FOR_DOWNLOAD_JOBS_ONLY
        );
    }

    // A server that ignores Range fails the job rather than filling it with the wrong bytes.
    let ignoring = common::one_file_job(
        &client,
        &server.url("/data/1000/ignoring?ignore_range=1"),
        &instance.downloads().join("ignoring.bin"),
    );
    client.set_job(ignoring, JobChange::OnDemand(true)).unwrap();
    client
        .request_file_ranges(ignoring, 0, vec![range(10, 10)])
        .unwrap();
    client.resume(ignoring).unwrap();
    let failed = common::wait_for_state(&client, ignoring, JobState::Error);
    assert_eq!(failed.job.state, JobState::Error);
    assert_eq!(
        failed.job.error.unwrap().error.hresult,
        hresult::BG_E_INSUFFICIENT_RANGE_SUPPORT
    );
    let left: Vec<_> = std::fs::read_dir(instance.downloads())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().starts_with(".BIT"))
        .collect();
    assert!(
        left.is_empty(),
        "a failed fetch leaves no scratch file: {left:?}"
    );
}

#[test]
fn a_file_that_changes_between_fetches_fails_the_job_and_files_must_fit() {
    let server = TestServer::start();
    let instance = Instance::new();
    let client = instance.client();
    let events = client.subscribe().unwrap();
    let local = instance.downloads().join("changing.bin");
    let id = common::one_file_job(
        &client,
        &server.url("/data/10000/changing?change_after=1"),
        &local,
    );
    client.set_job(id, JobChange::OnDemand(true)).unwrap();
    client
        .request_file_ranges(id, 0, vec![range(0, 100)])
        .unwrap();
    client.resume(id).unwrap();
    ranges_transferred(&events, id);
    common::wait_for_state(&client, id, JobState::Suspended);
    client
        .request_file_ranges(id, 0, vec![range(5_000, 100)])
        .unwrap();
    client.resume(id).unwrap();
    let failed = common::wait_for_state(&client, id, JobState::Error);
    assert_eq!(failed.job.state, JobState::Error);
    assert_eq!(
        failed.job.error.unwrap().error.hresult,
        hresult::BG_E_REMOTE_FILE_CHANGED
    );
    assert_eq!(
        failed.job.files[0].on_demand.filled.bytes(),
        100,
        "no byte of the new version was placed"
    );

    // Files of an on-demand job are whole http(s) files.
    let refused = client
        .add_files(
            id,
            vec![qmgr_core::service::NewFile {
                remote_name: server.url("/data/1000/ranged"),
                local_name: instance
                    .downloads()
                    .join("ranged.bin")
                    .to_string_lossy()
                    .into_owned(),
                ranges: Some(vec![range(0, 10)]),
            }],
        )
        .unwrap_err();
    assert_eq!(refused.hresult, hresult::BG_E_RANDOM_ACCESS_NOT_SUPPORTED);
}

#[test]
fn ranges_asked_for_before_the_size_is_known_are_checked_when_it_arrives() {
    let server = TestServer::start();
    let instance = Instance::new();
    let client = instance.client();
    let local = instance.downloads().join("unsized.bin");
    let id = common::one_file_job(&client, &server.url("/data/1000/unsized"), &local);
    client.set_job(id, JobChange::OnDemand(true)).unwrap();
    assert_eq!(
        client
            .request_file_ranges(id, 0, vec![range(10, LENGTH_TO_EOF)])
            .unwrap_err()
            .hresult,
        hresult::BG_E_INVALID_RANGE,
        "a range to the end needs the size"
    );
    client
        .request_file_ranges(id, 0, vec![range(10, 10), range(5_000, 100)])
        .unwrap();
    client.resume(id).unwrap();
    for _ in 0..100 {
        if client.job(id).unwrap().job.state == JobState::Error {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let failed = client.job(id).unwrap();
    assert_eq!(failed.job.state, JobState::Error, "{}", instance.log());
    assert_eq!(
        failed.job.error.unwrap().error.hresult,
        hresult::BG_E_INVALID_RANGE
    );
    assert_eq!(failed.job.files[0].bytes_total, 1000);
    assert_eq!(
        failed.job.files[0].on_demand.requested.spans(),
        &[Span { start: 10, end: 20 }],
        "the ranges beyond the end are dropped"
    );

    let events = client.subscribe().unwrap();
    client.resume(id).unwrap();
    assert_eq!(ranges_transferred(&events, id), [range(10, 10)]);
    let view = common::wait_for_state(&client, id, JobState::Suspended);
    assert_eq!(view.job.state, JobState::Suspended, "{:?}", view.job.error);
}
