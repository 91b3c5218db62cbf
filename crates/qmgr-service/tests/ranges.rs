//! Files of byte ranges (AddFileWithRanges) through qmgrd: the ranges are checked by the
//! service, outlive a SIGKILL of it, and a transfer cut in the middle of a range resumes
//! within that range, so the local file is the ranges in the order given and no byte is
//! fetched twice.

mod common;

use common::Instance;

use qmgr_core::file::SIZE_UNKNOWN;
use qmgr_core::hresult;
use qmgr_core::ranges::{FileRange, LENGTH_TO_EOF};
use qmgr_core::service::{NewFile, QueueServiceExt};
use qmgr_core::{JobState, JobType};
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

const fn range(offset: u64, length: u64) -> FileRange {
    FileRange { offset, length }
}

/// The bytes of `ranges` of `whole`, concatenated in order.
fn ranges_of(whole: &[u8], ranges: &[FileRange]) -> Vec<u8> {
    ranges
        .iter()
        .flat_map(|range| {
            let start = usize::try_from(range.offset).unwrap();
            let end = if range.length == LENGTH_TO_EOF {
                whole.len()
            } else {
                start + usize::try_from(range.length).unwrap()
            };
            whole[start..end].iter().copied()
        })
        .collect()
}

#[test]
fn ranges_survive_a_restart_and_a_cut_transfer_resumes_within_them() {
    let server = TestServer::start();
    let instance = Instance::new();
    let client = instance.client();
    let path = "/data/100000/ranged-restart";
    let local = instance.downloads().join("ranged.bin");
    let ranges = [range(50_000, 20_000), range(0, 10_000)];
    let id = client.create_job("ranged", JobType::Download).unwrap();
    client
        .add_files(
            id,
            vec![NewFile {
                remote_name: server.url(&format!("{path}?drop_after=5000&drop_once=1")),
                local_name: local.to_string_lossy().into_owned(),
                ranges: Some(ranges.to_vec()),
            }],
        )
        .unwrap();
    let file = &client.job(id).unwrap().job.files[0];
    assert_eq!(file.ranges, ranges);
    assert_eq!(
        file.bytes_total, 30_000,
        "sized by its ranges before any answer"
    );
    drop(client);
    instance.kill_daemons("-KILL");

    let client = instance.client();
    assert_eq!(client.job(id).unwrap().job.files[0].ranges, ranges);
    client.resume(id).unwrap();
    let cut = common::wait_for_state(&client, id, JobState::TransientError);
    assert_eq!(
        cut.job.state,
        JobState::TransientError,
        "{:?}",
        cut.job.error
    );
    drop(client);
    instance.kill_daemons("-KILL");

    let client = instance.client();
    let again = client.job(id).unwrap().job;
    assert_eq!(
        again.files[0].ranges, ranges,
        "the ranges outlive a second kill"
    );
    client.resume(id).unwrap();
    let done = common::wait_for_state(&client, id, JobState::Transferred);
    assert_eq!(
        done.job.state,
        JobState::Transferred,
        "{:?}",
        done.job.error
    );
    assert_eq!(done.job.files[0].bytes_total, 30_000);
    assert_eq!(done.job.files[0].bytes_transferred, 30_000);
    client.complete(id).unwrap();
    let whole = expected_body(path, INITIAL_VERSION, 100_000);
    assert!(
        std::fs::read(&local).unwrap() == ranges_of(&whole, &ranges),
        "the local file is not the ranges in the order given"
    );
    assert_eq!(
        server.body_bytes_sent(path),
        30_000,
        "the cut range was resumed where it stopped, not fetched again"
    );
}

#[test]
fn the_service_checks_ranges_and_sizes_a_range_to_the_end_once_it_knows() {
    let server = TestServer::start();
    let instance = Instance::new();
    let client = instance.client();
    let id = client.create_job("ranged", JobType::Download).unwrap();
    let add = |name: &str, remote: &str, ranges: Option<Vec<FileRange>>| {
        client
            .add_files(
                id,
                vec![NewFile {
                    remote_name: remote.to_owned(),
                    local_name: instance
                        .downloads()
                        .join(name)
                        .to_string_lossy()
                        .into_owned(),
                    ranges,
                }],
            )
            .map_err(|error| error.hresult)
    };
    let url = server.url("/data/3000/ranged-tail");
    for (ranges, code) in [
        (vec![], hresult::E_INVALIDARG),
        (vec![range(LENGTH_TO_EOF, 1)], hresult::BG_E_INVALID_RANGE),
        (
            vec![range(10, 10), range(19, 5)],
            hresult::BG_E_OVERLAPPING_RANGES,
        ),
    ] {
        assert_eq!(
            add("refused.bin", &url, Some(ranges.clone())),
            Err(code),
            "{ranges:?}"
        );
    }
    assert_eq!(
        client.job(id).unwrap().job.files.len(),
        0,
        "nothing was added"
    );
    let tail = [range(100, 50), range(2000, LENGTH_TO_EOF)];
    assert_eq!(
        add("tail.bin", &url, Some(tail.to_vec())),
        Ok(hresult::S_OK)
    );
    assert_eq!(
        client.job(id).unwrap().job.files[0].bytes_total,
        SIZE_UNKNOWN,
        "unknown until the server tells the file's size"
    );
    client.resume(id).unwrap();
    let done = common::wait_for_state(&client, id, JobState::Transferred);
    assert_eq!(
        done.job.state,
        JobState::Transferred,
        "{:?}",
        done.job.error
    );
    assert_eq!(done.job.files[0].bytes_total, 1050);
    client.complete(id).unwrap();
    let whole = expected_body("/data/3000/ranged-tail", INITIAL_VERSION, 3000);
    assert!(
        std::fs::read(instance.downloads().join("tail.bin")).unwrap() == ranges_of(&whole, &tail)
    );
}
