//! The largest queue the default limits allow still works from the command line: listings
//! come in pages, so no answer outgrows one IPC frame.

mod common;

use std::path::PathBuf;

use common::Instance;
use qmgr_core::config::Config;
use qmgr_core::file::{MAX_LOCAL_NAME_BYTES, MAX_REMOTE_NAME_CHARS};
use qmgr_core::job::MAX_DISPLAY_NAME_CHARS;
use qmgr_core::service::{NewFile, QueueServiceExt};
use qmgr_core::{Guid, JobType};
use qmgr_ipc::frame::{MAX_FRAME_LEN, encoded_len};

/// A directory under `base` deep enough that a file name of at most 255 bytes in it makes a
/// path of exactly [`MAX_LOCAL_NAME_BYTES`]; returns it and that name's length.
fn deepest_directory(base: PathBuf) -> (PathBuf, usize) {
    let mut dir = base;
    while dir.as_os_str().len() + 1 + 255 < MAX_LOCAL_NAME_BYTES {
        dir.push("d".repeat(250));
    }
    std::fs::create_dir_all(&dir).unwrap();
    let name_len = MAX_LOCAL_NAME_BYTES - dir.as_os_str().len() - 1;
    assert!((5..=255).contains(&name_len));
    (dir, name_len)
}

/// A display name of the longest length, unique by `n`.
fn display_name(n: usize) -> String {
    let name = format!("job {n:02} ");
    let pad = MAX_DISPLAY_NAME_CHARS - name.len();
    format!("{name}{}", "n".repeat(pad))
}

#[test]
fn the_largest_queue_the_limits_allow_lists_infos_and_cancels() {
    let defaults = Config::default();
    let (jobs, files) = (
        defaults.max_jobs_per_user as usize,
        defaults.max_files_per_job as usize,
    );
    let instance = Instance::new();
    instance.qmgr(&["list"]).expect(0);
    let client = instance.client();
    let (dir, name_len) = deepest_directory(instance.downloads());
    // Every remote name at the longest, in characters of three UTF-8 bytes.
    let prefix = "https://example.invalid/";
    let remote = format!(
        "{prefix}{}",
        "€".repeat(MAX_REMOTE_NAME_CHARS - prefix.len())
    );
    let mut ids: Vec<Guid> = Vec::new();
    for n in 0..jobs {
        let id = client
            .create_job(&display_name(n), JobType::Download)
            .unwrap();
        let new_files = (0..files)
            .map(|i| {
                let unique = format!("{n:02}{i:03}");
                let name = format!("{unique}{}", "f".repeat(name_len - unique.len()));
                NewFile {
                    remote_name: remote.clone(),
                    local_name: dir.join(name).to_string_lossy().into_owned(),
                    ranges: None,
                }
            })
            .collect();
        client.add_files(id, new_files).unwrap();
        ids.push(id);
    }
    let views = client.jobs(false).unwrap();
    assert_eq!(views.len(), jobs);
    let whole = encoded_len(&views);
    assert!(
        whole > MAX_FRAME_LEN as usize,
        "the queue ({whole} bytes) should not fit one frame, or this test proves nothing"
    );

    let list = instance.qmgr(&["list"]).expect(0);
    let rows = list
        .stdout
        .lines()
        .filter(|line| line.contains("job "))
        .count();
    assert_eq!(rows, jobs, "{}", list.stdout);

    let info = instance
        .qmgr(&["info", &display_name(17), "--json"])
        .expect(0)
        .json();
    assert_eq!(info["files"].as_array().unwrap().len(), files);
    assert_eq!(info["name"], display_name(17).as_str());

    instance.qmgr(&["cancel", &display_name(42)]).expect(0);
    let left: Vec<Guid> = client
        .jobs(false)
        .unwrap()
        .iter()
        .map(|view| view.job.id)
        .collect();
    let mut expected = ids;
    expected.remove(42);
    assert_eq!(left, expected);
}

#[test]
fn setnotifycmdline_wants_an_absolute_program() {
    let instance = Instance::new();
    let help = instance
        .qmgr(&["setnotifycmdline", "--help"])
        .expect(0)
        .stdout;
    assert!(help.contains("absolute path"), "{help}");
    instance.qmgr(&["create", "notify"]).expect(0);
    let refused = instance.qmgr(&["setnotifycmdline", "notify", "true", "true"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("not an absolute path"),
        "{}",
        refused.stderr
    );
    instance
        .qmgr(&["setnotifycmdline", "notify", "/bin/true", "true"])
        .expect(0);
}
