//! Root and other users' daemons (README "Other users"): `qmgr list --all-users` reaches
//! every user's running qmgrd under the per-user runtime root, checking directories, socket
//! and peer; root may read and cancel there but not create or change; anyone else is
//! refused. Real users (CI runs as root), each with a qmgrd of its own under a runtime root
//! this test makes, so no real user's daemon is ever met.

mod common;

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use common::{Instance, QMGR, Run, plain_id, qmgrd};
use qmgr_core::hresult::{self, HResult};
use qmgr_core::service::{JobChange, NewFile, QueueService, QueueServiceExt, Request};
use qmgr_core::{Guid, JobType, QmgrError};
use qmgr_ipc::users::{USER_RUNTIME_ROOT_VAR, UserQueue};
use qmgr_tests::users::OtherUser;
use serde_json::Value;

/// A uid no user has, for directories planted by the test.
const PLANTED_UID: u32 = 3_999_999;

/// One user of the test with its qmgrd's runtime directory.
struct User {
    user: OtherUser,
    runtime_dir: PathBuf,
}

impl User {
    fn new(test: &str, runtime_root: &Path) -> Option<User> {
        let user = OtherUser::create(test)?;
        let runtime_dir = user.make_runtime_dir(runtime_root).unwrap();
        Some(User { user, runtime_dir })
    }

    /// `qmgr ARGS` run as the user, with its own instance (starting its qmgrd on demand).
    fn qmgr(&self, args: &[&str]) -> Run {
        let output = self
            .user
            .command(QMGR)
            .args(args)
            .envs(self.user.qmgr_env(&self.runtime_dir))
            .env("QMGRD", qmgrd())
            .current_dir(self.user.home())
            .output()
            .unwrap();
        Run::from_output(&output)
    }

    /// A job of the user's with one file (suspended: nothing is fetched), its id.
    fn job(&self, name: &str) -> Guid {
        let created = self.qmgr(&["create", name, "--json"]).expect(0).json();
        let id = plain_id(&created["id"]);
        let local = self.user.home().join(name);
        self.qmgr(&[
            "addfile",
            &id,
            "https://example.invalid/file",
            local.to_str().unwrap(),
        ])
        .expect(0);
        id.parse().unwrap()
    }
}

impl Drop for User {
    fn drop(&mut self) {
        // The daemon the user's first command started; the user's removal kills whatever
        // is left.
        let _ = self.qmgr(&["daemon", "stop"]);
    }
}

fn private_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    // The users' daemons must reach their directories inside.
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    root
}

fn refused_with<T: std::fmt::Debug>(result: Result<T, QmgrError>, code: HResult) -> QmgrError {
    let error = result.expect_err("root's request should be refused");
    assert_eq!(error.hresult, code, "{error}");
    error
}

/// Every job of a `--json` listing, by id.
fn listed(list: &Value) -> Vec<(Guid, Value)> {
    list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| (plain_id(&job["id"]).parse().unwrap(), job["owner"].clone()))
        .collect()
}

#[test]
fn root_lists_and_cancels_every_users_jobs_and_skips_what_fails_a_check() {
    let runtime_root = private_root();
    let elsewhere = private_root();
    let test = "root_lists_and_cancels_every_users_jobs";
    let Some(ann) = User::new(test, runtime_root.path()) else {
        return;
    };
    let bob = User::new(test, runtime_root.path()).unwrap();
    // Carol's qmgrd runs elsewhere; her directory under the runtime root is a symbolic
    // link to the real one, which root must not follow.
    let carol = User::new(test, elsewhere.path()).unwrap();
    let (ann_job, bob_job, carol_job) = (
        ann.job("ann-job"),
        bob.job("bob-job"),
        carol.job("carol-job"),
    );
    std::os::unix::fs::symlink(
        &carol.runtime_dir,
        runtime_root.path().join(carol.user.uid().to_string()),
    )
    .unwrap();
    // A socket of root's in a directory of a uid nobody has.
    let planted_dir = runtime_root.path().join(PLANTED_UID.to_string());
    let planted_qmgr = planted_dir.join("qmgr");
    std::fs::create_dir_all(&planted_qmgr).unwrap();
    for dir in [&planted_dir, &planted_qmgr] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(dir, Some(PLANTED_UID), Some(PLANTED_UID)).unwrap();
    }
    let planted = UnixListener::bind(planted_qmgr.join("qmgrd.sock")).unwrap();
    planted.set_nonblocking(true).unwrap();

    // Carol's daemon itself is fine: reached where it really is, it answers.
    let carol_queue = UserQueue::connect(elsewhere.path(), carol.user.uid()).unwrap();
    assert_eq!(
        carol_queue.job_summary(carol_job).unwrap().job.owner_uid,
        carol.user.uid()
    );
    drop(carol_queue);

    let root = Instance::new();
    let root_job = root
        .qmgr(&["create", "root-job", "--json"])
        .expect(0)
        .json();
    let root_job: Guid = plain_id(&root_job["id"]).parse().unwrap();
    let all_users = |args: &[&str]| {
        let output = root
            .command(args)
            .env(USER_RUNTIME_ROOT_VAR, runtime_root.path())
            .output()
            .unwrap();
        Run::from_output(&output)
    };

    let json = all_users(&["list", "--all-users", "--json"])
        .expect(0)
        .json();
    let jobs = listed(&json);
    let owner_of = |id: Guid| {
        jobs.iter()
            .find(|(job, _)| *job == id)
            .map(|(_, owner)| owner.clone())
    };
    for (user, job) in [(&ann, ann_job), (&bob, bob_job)] {
        let owner = owner_of(job).unwrap_or_else(|| panic!("{job} not listed: {json:#}"));
        assert_eq!(owner["uid"], user.user.uid(), "{owner}");
        assert_eq!(owner["name"], user.user.name(), "{owner}");
        assert_eq!(
            owner["sid"],
            format!("S-1-22-1-{}", user.user.uid()),
            "{owner}"
        );
    }
    assert_eq!(owner_of(root_job).unwrap()["name"], "root");
    assert!(
        owner_of(carol_job).is_none(),
        "a symbolic link was followed: {json:#}"
    );
    assert_eq!(jobs.len(), 3, "{json:#}");
    // Why each was skipped, with QMGR_LOG asking for debug messages.
    let debug = {
        let output = root
            .command(&["list", "--all-users"])
            .env(USER_RUNTIME_ROOT_VAR, runtime_root.path())
            .env("QMGR_LOG", "debug")
            .output()
            .unwrap();
        Run::from_output(&output).expect(0).stderr
    };
    let carol_dir = runtime_root.path().join(carol.user.uid().to_string());
    assert!(
        debug.contains(&format!(
            "skipped {}: refusing {}: it is a symbolic link",
            carol_dir.display(),
            carol_dir.display()
        )),
        "{debug}"
    );
    assert!(
        debug.contains(&format!("skipped {}", planted_dir.display()))
            && debug.contains(&format!(
                "belongs to uid 0 (root), not to uid {PLANTED_UID}"
            )),
        "{debug}"
    );
    match planted.accept() {
        Err(error) if error.kind() == ErrorKind::WouldBlock => {}
        other => panic!("root connected to a socket of the wrong owner: {other:?}"),
    }

    let table = all_users(&["list", "--all-users"]).expect(0).stdout;
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("OWNER"),
        "{table}"
    );
    for (user, name) in [(&ann, "ann-job"), (&bob, "bob-job")] {
        assert!(
            table
                .lines()
                .any(|line| line.contains(user.user.name()) && line.contains(name)),
            "{name} of {} missing:\n{table}",
            user.user.name()
        );
    }
    // Without --all-users only root's own.
    let own = all_users(&["list"]).expect(0).stdout;
    assert!(
        own.contains("root-job") && !own.contains("ann-job"),
        "{own}"
    );

    // Root in Ann's qmgrd: reads and Cancel, but no new or changed jobs.
    let ann_queue = UserQueue::connect(runtime_root.path(), ann.user.uid()).unwrap();
    assert_eq!(
        ann_queue.job_summary(ann_job).unwrap().job.display_name,
        "ann-job"
    );
    assert_eq!(ann_queue.job_files(ann_job).unwrap().len(), 1);
    let error = refused_with(
        ann_queue.create_job("root's", JobType::Download),
        hresult::E_ACCESSDENIED,
    );
    assert!(error.description.contains("CreateJob"), "{error}");
    refused_with(
        ann_queue.execute(Request::SetJob {
            job: ann_job,
            change: JobChange::DisplayName("renamed by root".into()),
        }),
        hresult::E_ACCESSDENIED,
    );
    refused_with(
        ann_queue.add_files(
            ann_job,
            vec![NewFile {
                remote_name: "https://example.invalid/more".into(),
                local_name: ann.user.home().join("more").to_string_lossy().into_owned(),
                ranges: None,
            }],
        ),
        hresult::E_ACCESSDENIED,
    );
    refused_with(ann_queue.take_ownership(ann_job), hresult::E_NOTIMPL);
    assert_eq!(
        ann_queue.job_summary(ann_job).unwrap().job.display_name,
        "ann-job"
    );
    let bob_queue = UserQueue::connect(runtime_root.path(), bob.user.uid()).unwrap();
    bob_queue.cancel(bob_job).unwrap();
    drop((ann_queue, bob_queue));
    let after = listed(
        &all_users(&["list", "--all-users", "--json"])
            .expect(0)
            .json(),
    );
    assert!(after.iter().all(|(job, _)| *job != bob_job), "{after:?}");
    assert!(after.iter().any(|(job, _)| *job == ann_job), "{after:?}");
    assert!(bob.qmgr(&["list"]).expect(0).stdout.contains("No jobs."));

    // Anyone else is refused, and says so.
    let refused = ann.qmgr(&["list", "--all-users"]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("needs root"), "{refused:?}");
    assert!(refused.stdout.is_empty(), "{refused:?}");
}
