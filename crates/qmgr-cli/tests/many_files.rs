//! `qmgr list` and `qmgr info` of a job with more files than one page of them holds: the
//! table reads summaries, the JSON and `info` fetch every file page by page.

mod common;

use common::Instance;
use qmgr_core::JobType;
use qmgr_core::service::{NewFile, QueueServiceExt};

const FILES: usize = 60_000;

#[test]
fn a_job_of_many_files_is_listed_and_described_whole() {
    let instance = Instance::new();
    instance.write_config(&format!("max_files_per_job = {FILES}\n"));
    instance.qmgr(&["list"]).expect(0);
    let client = instance.client();
    let id = client.create_job("many", JobType::Download).unwrap();
    let downloads = instance.downloads();
    let files: Vec<NewFile> = (0..FILES)
        .map(|i| NewFile {
            remote_name: format!("http://127.0.0.1:9/data/1k/a-reasonably-long-file-name-{i}"),
            local_name: downloads
                .join(format!("a-reasonably-long-local-name-{i}.bin"))
                .to_string_lossy()
                .into_owned(),
            ranges: None,
        })
        .collect();
    client.add_files(id, files).unwrap();
    let (first_page, total) = client.job_files_page(id, 0, None).unwrap();
    assert_eq!(total as usize, FILES);
    assert!(
        first_page.len() < FILES,
        "the files need more than one page"
    );

    let plain = id.to_plain_string();
    let table = instance.qmgr(&["list"]).expect(0);
    assert!(
        table.stdout.contains(&format!("0/{FILES}")),
        "{}",
        table.stdout
    );

    let jobs = instance.jobs();
    assert_eq!(jobs.len(), 1);
    let listed = jobs[0]["files"].as_array().unwrap();
    assert_eq!(listed.len(), FILES);

    let info = instance.qmgr(&["info", "--json", &plain]).expect(0).json();
    let described = info["files"].as_array().unwrap();
    assert_eq!(described.len(), FILES);
    assert_eq!(described[FILES - 1], listed[FILES - 1]);
    let text = instance.qmgr(&["info", &plain]).expect(0);
    assert!(
        text.stdout
            .contains(&format!("a-reasonably-long-local-name-{}.bin", FILES - 1)),
        "info names the last file"
    );
    instance.qmgr(&["cancel", &plain]).expect(0);
}
