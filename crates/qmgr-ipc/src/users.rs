//! Root's way to every user's running qmgrd (`BG_JOB_ENUM_ALL_USERS`, GetJob of another
//! user's job, `qmgr list --all-users`).
//!
//! Each user's qmgrd listens on `<root>/<uid>/qmgr/qmgrd.sock`, `<root>` being
//! [`USER_RUNTIME_ROOT`] (`/run/user`, where logind makes each user's
//! `XDG_RUNTIME_DIR`). Root connects to one only when:
//! - `<root>/<uid>` and `<root>/<uid>/qmgr` are directories (not symbolic links) of that
//!   uid that nobody else may write, reached through directories of root;
//! - the socket is a socket of that uid;
//! - the process answering runs as that uid (`SO_PEERCRED`).
//!
//! A user whose qmgrd is not running, or who fails a check, is skipped (logged at debug
//! level and listed in [`Scan::skipped`]); no other user's qmgrd is ever started. What
//! another user's qmgrd answers is that user's word: [`UserQueue`] reports every job it
//! hands out as the user's, whatever the answer says, and waits a shorter time for it
//! ([`USER_CALL_TIMEOUT`]) so a daemon that stalls holds root's listing up only briefly.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use qmgr_core::hresult;
use qmgr_core::paths::{APP_DIR, SOCKET_FILE_NAME};
use qmgr_core::service::{JobView, Notification, QueueService, Request, Response};
use qmgr_core::trust::{check_trusted_path, describe_uid, effective_uid};
use qmgr_core::{ErrorContext, QmgrError, Result};

use crate::client::Client;

/// Where the per-user runtime directories are.
pub const USER_RUNTIME_ROOT: &str = "/run/user";

/// The variable that moves [`USER_RUNTIME_ROOT`] (tests give a directory of their own, so
/// they never meet real users' daemons). libqmgr reads it with `secure_getenv`.
pub const USER_RUNTIME_ROOT_VAR: &str = "QMGR_USER_RUNTIME_ROOT";

/// How long root waits for another user's qmgrd to answer one call.
pub const USER_CALL_TIMEOUT: Duration = Duration::from_secs(15);

const GROUP_OR_OTHER_WRITE: u32 = 0o022;

/// The root of the per-user runtime directories: `value` (from [`USER_RUNTIME_ROOT_VAR`])
/// when set and not empty, else [`USER_RUNTIME_ROOT`].
pub fn user_runtime_root(value: Option<std::ffi::OsString>) -> PathBuf {
    value
        .filter(|value| !value.is_empty())
        .map_or_else(|| PathBuf::from(USER_RUNTIME_ROOT), PathBuf::from)
}

/// Another user's qmgrd, as root reaches it: a [`Client`] whose answers are all that
/// user's.
#[derive(Debug)]
pub struct UserQueue {
    uid: u32,
    client: Client,
}

impl UserQueue {
    /// Connects to the qmgrd of `uid` under `runtime_root`, after the checks of this
    /// module. Fails with `QM_E_SERVICE_UNAVAILABLE` when it is not running, or when a
    /// check fails (the description says which).
    pub fn connect(runtime_root: &Path, uid: u32) -> Result<UserQueue> {
        let user_dir = runtime_root.join(uid.to_string());
        let runtime_dir = user_dir.join(APP_DIR);
        for dir in [&user_dir, &runtime_dir] {
            check_user_dir(dir, uid)?;
        }
        let client = Client::connect_socket_of(&runtime_dir.join(SOCKET_FILE_NAME), uid)?
            .with_call_timeout(USER_CALL_TIMEOUT);
        Ok(UserQueue { uid, client })
    }

    /// The uid whose qmgrd this is.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The socket it was reached on.
    pub fn socket_path(&self) -> PathBuf {
        self.client.socket_path()
    }
}

impl QueueService for UserQueue {
    fn execute(&self, request: Request) -> Result<Response> {
        let mut response = self.client.execute(request)?;
        owned_by(&mut response, self.uid);
        Ok(response)
    }

    fn subscribe(&self) -> Result<Receiver<Notification>> {
        self.client.subscribe()
    }

    fn caller_uid(&self) -> Option<u32> {
        self.client.caller_uid()
    }
}

/// Marks every job and group in `response` as `uid`'s: everything in a user's qmgrd runs
/// as that user, whatever its answer claims.
fn owned_by(response: &mut Response, uid: u32) {
    let view = |view: &mut JobView| view.job.owner_uid = uid;
    match response {
        Response::Job(job) => view(job),
        Response::JobPage { jobs, .. } => jobs.iter_mut().for_each(view),
        Response::JobSummary(summary) => summary.job.owner_uid = uid,
        Response::SummaryPage { jobs, .. } => {
            for summary in jobs {
                summary.job.owner_uid = uid;
            }
        }
        Response::Group(group) => {
            group.group.owner_uid = uid;
            group.job.iter_mut().for_each(view);
        }
        Response::GroupPage { groups, .. } => {
            for group in groups {
                group.group.owner_uid = uid;
                group.job.iter_mut().for_each(view);
            }
        }
        Response::Done(_)
        | Response::Pong { .. }
        | Response::JobCreated(_)
        | Response::FilePage { .. }
        | Response::CertificateCheck(_)
        | Response::ReplyData(_)
        | Response::Policy(_)
        | Response::Text(_) => {}
    }
}

/// A user's directory under the runtime root, or the `qmgr` directory in it: a directory
/// itself (a symbolic link is refused, wherever it leads), of `uid`, nobody else may write.
fn check_user_dir(dir: &Path, uid: u32) -> Result<()> {
    let refused = |why: String| {
        QmgrError::new(
            hresult::QM_E_SERVICE_UNAVAILABLE,
            ErrorContext::GeneralQueueManager,
            format!("refusing {}: {why}", dir.display()),
        )
    };
    let metadata = match std::fs::symlink_metadata(dir) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(QmgrError::new(
                hresult::QM_E_SERVICE_UNAVAILABLE,
                ErrorContext::GeneralQueueManager,
                format!("qmgrd is not running ({} does not exist)", dir.display()),
            ));
        }
        Err(error) => return Err(refused(format!("cannot inspect it: {error}"))),
    };
    if metadata.file_type().is_symlink() {
        return Err(refused("it is a symbolic link".into()));
    }
    if !metadata.is_dir() {
        return Err(refused("it is not a directory".into()));
    }
    if metadata.uid() != uid {
        return Err(refused(format!(
            "it belongs to {}, not to uid {uid}",
            describe_uid(metadata.uid())
        )));
    }
    if metadata.mode() & GROUP_OR_OTHER_WRITE != 0 {
        return Err(refused(format!(
            "others may write to it (mode {:04o})",
            metadata.mode() & 0o7777
        )));
    }
    Ok(())
}

/// A user root did not reach, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The entry of the runtime root (a user's directory, or the root itself).
    pub path: PathBuf,
    pub reason: String,
}

/// What [`scan`] found.
#[derive(Debug, Default)]
pub struct Scan {
    /// The users' queues reached, by uid.
    pub queues: Vec<UserQueue>,
    pub skipped: Vec<Skipped>,
}

/// Connects to the running qmgrd of every user under `runtime_root` except the caller's
/// own uid (its own queue is reached the usual way). Only root may look: for anyone else
/// this is `E_ACCESSDENIED`. A runtime root that does not exist holds nobody.
pub fn scan(runtime_root: &Path) -> Result<Scan> {
    let me = effective_uid();
    if me != 0 {
        return Err(QmgrError::new(
            hresult::E_ACCESSDENIED,
            ErrorContext::GeneralQueueManager,
            format!(
                "only root may reach other users' qmgrd (this process runs as {})",
                describe_uid(me)
            ),
        ));
    }
    let mut scan = Scan::default();
    let mut skip = |path: PathBuf, reason: String| {
        tracing::debug!("skipping {}: {reason}", path.display());
        scan.skipped.push(Skipped { path, reason });
    };
    if let Err(error) = check_trusted_path(runtime_root, "per-user runtime root") {
        skip(runtime_root.to_owned(), error.description);
        return Ok(scan);
    }
    let entries = match std::fs::read_dir(runtime_root) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(scan),
        Err(error) => {
            skip(runtime_root.to_owned(), format!("cannot list it: {error}"));
            return Ok(scan);
        }
    };
    let mut uids: Vec<u32> = entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            let name = name.to_str()?;
            // Only the canonical spelling of a uid: "0100" is not uid 100's directory.
            name.parse::<u32>()
                .ok()
                .filter(|uid| uid.to_string() == name)
        })
        .filter(|&uid| uid != me)
        .collect();
    uids.sort_unstable();
    let mut queues = Vec::new();
    for uid in uids {
        match UserQueue::connect(runtime_root, uid) {
            Ok(queue) => queues.push(queue),
            Err(error) => skip(runtime_root.join(uid.to_string()), error.description),
        }
    }
    scan.queues = queues;
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(path: &Path, mode: u32) {
        std::fs::create_dir_all(path).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn the_runtime_root_is_the_variable_when_set_and_not_empty() {
        assert_eq!(user_runtime_root(None), Path::new("/run/user"));
        assert_eq!(user_runtime_root(Some("".into())), Path::new("/run/user"));
        assert_eq!(
            user_runtime_root(Some("/tmp/elsewhere".into())),
            Path::new("/tmp/elsewhere")
        );
    }

    #[test]
    fn a_users_directory_must_be_a_private_directory_of_theirs() {
        let root = tempfile::tempdir().unwrap();
        let me = effective_uid();
        let private = root.path().join("private");
        dir(&private, 0o700);
        assert!(check_user_dir(&private, me).is_ok());
        let error = check_user_dir(&private, me + 1).unwrap_err();
        assert!(
            error
                .description
                .contains(&format!("not to uid {}", me + 1)),
            "{error}"
        );
        let open = root.path().join("open");
        dir(&open, 0o777);
        let error = check_user_dir(&open, me).unwrap_err();
        assert!(error.description.contains("others may write"), "{error}");
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&private, &link).unwrap();
        let error = check_user_dir(&link, me).unwrap_err();
        assert!(error.description.contains("symbolic link"), "{error}");
        let error = check_user_dir(&root.path().join("absent"), me).unwrap_err();
        assert_eq!(error.hresult, hresult::QM_E_SERVICE_UNAVAILABLE);
        assert!(error.description.contains("not running"), "{error}");
    }

    #[test]
    fn answers_of_a_users_queue_are_that_users() {
        let job = qmgr_core::Job::new(
            qmgr_core::Guid::new_random(),
            "claims root",
            qmgr_core::JobType::Download,
            0,
            qmgr_core::JobSettings::default(),
            qmgr_core::Timestamp::now(),
        )
        .unwrap();
        let mut response = Response::Job(Box::new(JobView {
            job,
            waiting: None,
            attempts: Vec::new(),
            idle: None,
        }));
        owned_by(&mut response, 1234);
        let Response::Job(view) = response else {
            unreachable!()
        };
        assert_eq!(view.job.owner_uid, 1234);
    }
}
