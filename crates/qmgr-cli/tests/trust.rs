//! The trust rules end to end, through the real `qmgr` and `qmgrd`: a daemon that uses no
//! directory or file another user controls, a store nobody else can read, and a recovery
//! that never touches a path the store should not hold.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Instance, QMGR, qmgrd};
use qmgr_core::file::FileRecord;
use qmgr_core::store::Store;
use qmgr_core::{Guid, Job, JobSettings, JobType};
use qmgr_tests::users::OtherUser;

/// Every path under `dir` with its mode, owner and content (files) or link target.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut seen = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let Ok(metadata) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let what = if metadata.file_type().is_symlink() {
            format!("link to {}", std::fs::read_link(&path).unwrap().display())
        } else if metadata.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap().flatten() {
                pending.push(entry.path());
            }
            "dir".to_owned()
        } else if metadata.is_file() {
            format!("{:?}", std::fs::read(&path).unwrap_or_default())
        } else {
            "special file".to_owned()
        };
        seen.insert(
            path,
            format!("{:o} {} {what}", metadata.mode(), metadata.uid()),
        );
    }
    seen
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_tree(user: &OtherUser, dir: &Path) {
    for path in snapshot(dir).keys() {
        std::os::unix::fs::lchown(path, Some(user.uid()), Some(user.gid())).unwrap();
    }
}

/// `program` with only `HOME` (and `PATH`, `QMGRD`) set: how `sudo -E` or a `sudo` that
/// keeps `HOME` runs root's command with a user's directories.
fn with_home(program: &str, home: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("HOME", home)
        .env("PATH", "/usr/bin:/bin")
        .env("QMGRD", qmgrd())
        .stdin(Stdio::null());
    command
}

/// A root qmgrd started with a user's `HOME` meets a state directory the user prepared:
/// `store.lock`, `boot_id` and the log are links to root's files, and the store holds a
/// job being completed whose local name is a root-only file. It must refuse before
/// writing anything.
#[test]
fn root_with_a_users_home_touches_nothing_of_theirs_or_its_own() {
    let Some(user) = OtherUser::create("root_with_a_users_home_touches_nothing") else {
        return;
    };
    let roots_files = tempfile::tempdir().unwrap();
    let secret = roots_files.path().join("secret");
    let target = roots_files.path().join("target");
    let truncate = roots_files.path().join("truncate-me");
    for (path, text) in [
        (&secret, "root's secret"),
        (&target, "root's file"),
        (&truncate, "keep me"),
    ] {
        std::fs::write(path, text).unwrap();
        chmod(path, 0o600);
    }

    let home = user.home();
    let state = home.join(".local/state/qmgr");
    std::fs::create_dir_all(&state).unwrap();
    // The store is made where root may open one, then put in the user's directory.
    let staging = tempfile::tempdir().unwrap();
    {
        let mut store = Store::open(staging.path()).unwrap();
        let mut job = Job::new(
            Guid::new_random(),
            "prepared",
            JobType::Download,
            user.uid(),
            JobSettings::default(),
            qmgr_core::Timestamp::now(),
        )
        .unwrap();
        let mut file = FileRecord::new("http://127.0.0.1:1/x", &target.display().to_string());
        file.temp_name = Some(home.join("attacker-content").display().to_string());
        file.completed = true;
        job.files.push(file);
        job.completing = true;
        store.insert_job(&job).unwrap();
    }
    for entry in std::fs::read_dir(staging.path()).unwrap().flatten() {
        std::fs::copy(entry.path(), state.join(entry.file_name())).unwrap();
    }
    std::fs::write(home.join("attacker-content"), "attacker's bytes").unwrap();
    symlink(&truncate, state.join("store.lock")).unwrap();
    symlink(&secret, state.join("qmgrd.log")).unwrap();
    symlink(&target, state.join("boot_id")).unwrap();
    chown_tree(&user, home);
    let theirs_before = snapshot(home);
    let roots_before = snapshot(roots_files.path());

    let home_s = home.display().to_string();
    let owner = format!("uid {} ({})", user.uid(), user.name());
    for (program, args) in [
        (qmgrd().display().to_string(), vec!["--foreground"]),
        (qmgrd().display().to_string(), vec!["--spawned"]),
        (QMGR.to_owned(), vec!["list"]),
    ] {
        let output = with_home(&program, home).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{program} {args:?} succeeded");
        assert!(stderr.contains(&home_s), "{program} {args:?}: {stderr}");
        assert!(stderr.contains(&owner), "{program} {args:?}: {stderr}");
        assert!(stderr.contains("sudo"), "{program} {args:?}: {stderr}");
    }
    assert_eq!(snapshot(home), theirs_before, "the user's files changed");
    assert_eq!(
        snapshot(roots_files.path()),
        roots_before,
        "root's files changed"
    );
}

/// A `state_dir` key naming a directory that is not ours, or that others may write, is
/// refused with the path and the reason, and nothing is created there.
#[test]
fn a_state_dir_key_pointing_at_a_foreign_or_shared_directory_is_refused() {
    let instance = Instance::new();
    let shared = instance.root().join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o1777);
    for (state_dir, reason) in [
        (shared.clone(), "others may write".to_owned()),
        (PathBuf::from("/tmp"), "others may write".to_owned()),
    ] {
        instance.write_config(&format!(
            "state_dir = {:?}\n",
            state_dir.display().to_string()
        ));
        let before = std::fs::read_dir(&state_dir).unwrap().count();
        let run = instance.qmgr(&["list"]);
        assert_ne!(run.code, 0, "{run:?}");
        assert!(
            run.stderr.contains(&state_dir.display().to_string()),
            "{run:?}"
        );
        assert!(run.stderr.contains(&reason), "{run:?}");
        if state_dir != Path::new("/tmp") {
            let after = std::fs::read_dir(&state_dir).unwrap().count();
            assert_eq!(after, before, "something was created");
        }
    }

    let Some(user) = OtherUser::create("a_state_dir_key_pointing_at_a_foreign_directory") else {
        return;
    };
    let theirs = instance.root().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    chmod(instance.root(), 0o755);
    user.chown(&theirs).unwrap();
    instance.write_config(&format!("state_dir = {:?}\n", theirs.display().to_string()));
    let run = instance.qmgr(&["list"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("uid {} ({})", user.uid(), user.name())),
        "{run:?}"
    );
    assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 0);
}

/// The store, its WAL and shared-memory files, the lock, the boot id and the log are 0600
/// in a 0700 state directory; an existing state directory and store that were readable
/// by others are made private.
#[test]
fn the_store_and_its_directory_are_private() {
    let instance = Instance::new();
    let state = instance.root().join("state/qmgr");
    std::fs::create_dir_all(&state).unwrap();
    chmod(&state, 0o755);
    std::fs::write(state.join("qmgr.sqlite3"), "").unwrap();
    chmod(&state.join("qmgr.sqlite3"), 0o644);

    instance.qmgr(&["create", "private", "--json"]).expect(0);
    let mode = |name: &str| std::fs::metadata(state.join(name)).unwrap().mode() & 0o7777;
    assert_eq!(mode(""), 0o700);
    for name in [
        "qmgr.sqlite3",
        "qmgr.sqlite3-wal",
        "qmgr.sqlite3-shm",
        "store.lock",
        "boot_id",
        "qmgrd.log",
    ] {
        assert_eq!(mode(name), 0o600, "{name}");
    }
}

/// A store holding paths qmgr would never write (a temporary name that is not one of its
/// own, beside another directory) makes the job an ERROR at start-up: nothing is renamed
/// onto the local name and nothing is deleted.
#[test]
fn recovery_never_renames_or_deletes_a_path_that_fails_the_check() {
    let instance = Instance::new();
    let state = instance.root().join("state/qmgr");
    let outside = instance.root().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let planted = outside.join("precious");
    std::fs::write(&planted, "precious").unwrap();
    let local = instance.downloads().join("result");
    let unfinished = outside.join("also-precious");
    std::fs::write(&unfinished, "also precious").unwrap();
    let id = Guid::new_random();
    {
        let mut store = Store::open(&state).unwrap();
        let mut job = Job::new(
            id,
            "tampered",
            JobType::Download,
            rustix::process::geteuid().as_raw(),
            JobSettings::default(),
            qmgr_core::Timestamp::now(),
        )
        .unwrap();
        let mut done = FileRecord::new("http://127.0.0.1:1/a", &local.display().to_string());
        done.temp_name = Some(planted.display().to_string());
        done.completed = true;
        job.files.push(done);
        let mut partial = FileRecord::new(
            "http://127.0.0.1:1/b",
            &instance.downloads().join("b").display().to_string(),
        );
        partial.temp_name = Some(unfinished.display().to_string());
        job.files.push(partial);
        job.completing = true;
        store.insert_job(&job).unwrap();
    }

    let info = instance
        .qmgr(&["info", &id.to_string(), "--json"])
        .expect(0)
        .json();
    assert_eq!(info["state"], "ERROR", "{info:#}");
    let description = info["error"]["description"].as_str().unwrap_or_default();
    assert_eq!(info["error"]["context"], "local_file", "{info:#}");
    assert!(description.contains("would not have written"), "{info:#}");
    assert_eq!(std::fs::read_to_string(&planted).unwrap(), "precious");
    assert_eq!(
        std::fs::read_to_string(&unfinished).unwrap(),
        "also precious"
    );
    assert!(!local.exists(), "a planted file was renamed into place");
}
