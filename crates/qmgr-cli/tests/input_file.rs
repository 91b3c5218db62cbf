//! `qmgr transfer -i FILE`: URLs read from a list, more of them than the user's limits let
//! the queue hold at once, fed in as earlier jobs finish.

mod common;

use std::io::Write as _;
use std::process::Stdio;

use common::Instance;
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

fn data_paths(count: usize, prefix: &str) -> Vec<String> {
    (0..count)
        .map(|i| format!("/data/{}/{prefix}{i}", 1000 + i * 37))
        .collect()
}

fn assert_landed(instance: &Instance, dir: &str, paths: &[String]) {
    for (i, path) in paths.iter().enumerate() {
        let name = path.rsplit('/').next().unwrap();
        let local = instance.downloads().join(dir).join(name);
        assert_eq!(
            std::fs::read(&local).unwrap_or_default(),
            expected_body(path, INITIAL_VERSION, 1000 + i as u64 * 37),
            "{}",
            local.display()
        );
    }
}

#[test]
fn a_list_longer_than_the_limits_allow_at_once_is_fed_in_and_lands_whole() {
    let server = TestServer::start();
    let instance = Instance::new();
    // Two jobs of three files at once: the 20 listed URLs and one more on the command line
    // need seven jobs, so most go in only after earlier ones leave the queue.
    instance.write_config("max_jobs_per_user = 2\nmax_files_per_job = 3\n");
    let paths = data_paths(21, "listed");
    let mut list = String::from("# a list of downloads\n\n");
    for path in &paths[1..] {
        list.push_str(&server.url(path));
        list.push('\n');
    }
    std::fs::write(instance.root().join("urls.txt"), list).unwrap();
    std::fs::create_dir(instance.downloads().join("out")).unwrap();
    let list_path = instance.root().join("urls.txt");
    let first = server.url(&paths[0]);
    let run = instance
        .qmgr(&[
            "transfer",
            "--dir",
            "out",
            "-i",
            list_path.to_str().unwrap(),
            &first,
        ])
        .expect(0);
    assert!(
        run.stderr.contains("transferred 21 files"),
        "{}",
        run.stderr
    );
    assert_landed(&instance, "out", &paths);
    assert!(instance.jobs().is_empty(), "every job was completed");
}

#[test]
fn urls_are_read_from_standard_input() {
    let server = TestServer::start();
    let instance = Instance::new();
    let paths = data_paths(4, "piped");
    std::fs::create_dir(instance.downloads().join("in")).unwrap();
    let mut child = instance
        .command(&["transfer", "--dir", "in", "--input-file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for path in &paths {
            writeln!(stdin, "  {}  \n# skipped\n", server.url(path)).unwrap();
        }
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("transferred 4 files"), "{stderr}");
    assert_landed(&instance, "in", &paths);
}

#[test]
fn a_bad_line_names_itself_and_nothing_is_queued() {
    let server = TestServer::start();
    let instance = Instance::new();
    let list = format!(
        "{}\n# fine so far\n{}\nnot-a-url\n{}\n",
        server.url("/data/10/a"),
        server.url("/data/10/b"),
        server.url("/data/10/c")
    );
    let list_path = instance.root().join("bad.txt");
    std::fs::write(&list_path, list).unwrap();
    let run = instance
        .qmgr(&["transfer", "-i", list_path.to_str().unwrap()])
        .expect(2);
    assert!(run.stderr.contains("bad.txt: line 4:"), "{}", run.stderr);
    assert!(run.stderr.contains("not-a-url"), "{}", run.stderr);
    assert!(instance.jobs().is_empty(), "nothing was queued");
    for name in ["a", "b", "c"] {
        assert!(!instance.downloads().join(name).exists());
    }

    let missing = instance.root().join("missing.txt");
    let run = instance
        .qmgr(&["transfer", "-i", missing.to_str().unwrap()])
        .expect(2);
    assert!(run.stderr.contains("missing.txt"), "{}", run.stderr);
}
