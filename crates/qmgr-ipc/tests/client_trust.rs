//! A client sends nothing to a socket it has not checked: the directory holding it, the
//! socket and the process answering must all belong to the uid it means to reach.

use std::fs;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use qmgr_core::hresult;
use qmgr_ipc::Client;
use qmgr_tests::users::OtherUser;

/// A listener playing a fake qmgrd in `dir/qmgrd.sock`, to see whether anything reaches it.
struct FakeListener {
    listener: UnixListener,
    socket: PathBuf,
}

impl FakeListener {
    fn bind(dir: &Path) -> FakeListener {
        let socket = dir.join("qmgrd.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        FakeListener { listener, socket }
    }

    /// The bytes every connection made so far sent (an empty list: nobody connected).
    fn received(&self) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    let mut bytes = Vec::new();
                    let _ = stream.read_to_end(&mut bytes);
                    all.push(bytes);
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => return all,
                Err(error) => panic!("accept failed: {error}"),
            }
        }
    }
}

fn private_dir(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn assert_refused(error: &qmgr_core::QmgrError, why: &str) {
    assert_eq!(error.hresult, hresult::QM_E_SERVICE_UNAVAILABLE, "{error}");
    assert!(error.description.contains("refusing"), "{error}");
    assert!(error.description.contains(why), "{why}: {error}");
}

#[test]
fn a_runtime_dir_others_may_write_is_refused_before_connecting() {
    let root = tempfile::tempdir().unwrap();
    let dir = private_dir(root.path(), "run");
    let fake = FakeListener::bind(&dir);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let error = Client::connect_socket(&fake.socket).unwrap_err();
    assert_refused(&error, "others may write");
    assert!(fake.received().is_empty(), "the client connected");
}

#[test]
fn a_runtime_dir_of_another_user_is_refused_before_connecting() {
    let Some(attacker) = OtherUser::create("a_runtime_dir_of_another_user_is_refused") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let dir = private_dir(root.path(), "run");
    let fake = FakeListener::bind(&dir);
    attacker.chown(&dir).unwrap();
    attacker.chown(&fake.socket).unwrap();
    let error = Client::connect_socket(&fake.socket).unwrap_err();
    assert_refused(&error, &format!("uid {}", attacker.uid()));
    assert!(fake.received().is_empty(), "the client connected");
}

#[test]
fn a_socket_of_another_user_is_refused_before_connecting() {
    let Some(attacker) = OtherUser::create("a_socket_of_another_user_is_refused") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let dir = private_dir(root.path(), "run");
    let fake = FakeListener::bind(&dir);
    attacker.chown(&fake.socket).unwrap();
    let error = Client::connect_socket(&fake.socket).unwrap_err();
    assert_refused(&error, &format!("belongs to uid {}", attacker.uid()));
    assert!(fake.received().is_empty(), "the client connected");
}

#[test]
fn a_listener_of_another_uid_gets_no_hello() {
    let Some(user) = OtherUser::create("a_listener_of_another_uid_gets_no_hello") else {
        return;
    };
    // Root means to reach the user's qmgrd; the files are the user's, but the process
    // listening (this test) runs as root.
    let root = tempfile::tempdir().unwrap();
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let dir = private_dir(root.path(), "run");
    let fake = FakeListener::bind(&dir);
    user.chown(&dir).unwrap();
    user.chown(&fake.socket).unwrap();
    let error = Client::connect_socket_of(&fake.socket, user.uid()).unwrap_err();
    assert_refused(&error, "runs as uid 0");
    let received = fake.received();
    assert_eq!(received.len(), 1, "the client did not connect at all");
    assert!(received[0].is_empty(), "the client sent {:?}", received[0]);
}

#[test]
fn no_runtime_dir_means_no_service_running() {
    let root = tempfile::tempdir().unwrap();
    let error = Client::connect_socket(&root.path().join("absent/qmgrd.sock")).unwrap_err();
    assert_eq!(error.hresult, hresult::QM_E_SERVICE_UNAVAILABLE);
    assert!(error.description.contains("not running"), "{error}");
}
