//! Jobs of many files through a real qmgrd: an AddFiles too long for one IPC frame travels
//! in parts and goes in all at once or not at all; summaries and pages read such a job
//! without one answer holding all of it.

mod common;

use common::Instance;

use qmgr_core::hresult;
use qmgr_core::service::{NewFile, QueueServiceExt};
use qmgr_core::{JobType, QmgrError};
use qmgr_ipc::frame::encoded_len;
use qmgr_ipc::message::ADD_FILES_PART_BYTES;

const FILES: usize = 100_000;

fn files(instance: &Instance, count: usize) -> Vec<NewFile> {
    let downloads = instance.downloads();
    (0..count)
        .map(|i| NewFile {
            remote_name: format!("http://127.0.0.1:9/data/1k/some-long-enough-name-{i}"),
            local_name: downloads
                .join(format!("file-number-{i}.bin"))
                .to_string_lossy()
                .into_owned(),
            ranges: None,
        })
        .collect()
}

fn service_error(result: qmgr_core::Result<hresult::HResult>) -> QmgrError {
    match result {
        Ok(code) => panic!("the service accepted the files ({code:?})"),
        Err(error) => error,
    }
}

#[test]
fn a_hundred_thousand_files_go_in_at_once_and_a_bad_last_one_adds_nothing() {
    let instance = Instance::with_config("max_files_per_job = 100000\n");
    let client = instance.client();
    let all = files(&instance, FILES);
    assert!(
        encoded_len(&all) > 2 * ADD_FILES_PART_BYTES,
        "the list must need several parts"
    );

    let id = client.create_job("many", JobType::Download).unwrap();
    client.add_files(id, all.clone()).unwrap();
    let summary = client.job_summary(id).unwrap();
    assert_eq!(summary.progress.files_total as usize, FILES);
    assert!(summary.job.files.is_empty());
    let stored = client.job_files(id).unwrap();
    assert_eq!(stored.len(), FILES);
    for (stored, sent) in stored.iter().zip(&all) {
        assert_eq!(stored.remote_name, sent.remote_name);
        assert_eq!(stored.local_name, sent.local_name);
    }
    let (page, total) = client.job_files_page(id, 99_990, None).unwrap();
    assert_eq!(total as usize, FILES);
    assert_eq!(page.len(), 10);
    assert_eq!(page[9].local_name, all[FILES - 1].local_name);

    // The last file, in the last part, is not an absolute path: nothing is added.
    let second = client.create_job("bad tail", JobType::Download).unwrap();
    let mut bad = all.clone();
    bad.last_mut().unwrap().local_name = "relative/path".into();
    let error = service_error(client.add_files(second, bad));
    assert_eq!(error.hresult, hresult::E_INVALIDARG, "{error}");
    assert_eq!(client.job_summary(second).unwrap().progress.files_total, 0);

    // One file more than max_files_per_job: refused while the parts arrive, nothing added.
    let mut too_many = all;
    too_many.extend(files(&instance, 1));
    let error = service_error(client.add_files(second, too_many));
    assert_eq!(
        error.hresult,
        hresult::BG_E_TOO_MANY_FILES_IN_JOB,
        "{error}"
    );
    assert_eq!(client.job_summary(second).unwrap().progress.files_total, 0);

    // The connection is still good for ordinary calls.
    client
        .add_file(second, "http://127.0.0.1:9/x", &instance.path("x"))
        .unwrap();
    assert_eq!(client.job_summary(second).unwrap().progress.files_total, 1);
    client.cancel(id).unwrap();
    client.cancel(second).unwrap();
    instance.stop();
}
