//! Binding the service's socket: modes, stale and live sockets, path length, ownership.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::Path;

use common::{Instance, paths_in};
use qmgr_core::hresult;
use qmgr_core::paths::StatePaths;
use qmgr_ipc::{Client, MAX_SOCKET_PATH_BYTES, bind_listener};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o777
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn the_socket_is_0600_in_a_0700_runtime_dir() {
    let instance = Instance::start();
    assert_eq!(mode(&instance.socket()), 0o600);
    assert_eq!(mode(&instance.paths.runtime_dir()), 0o700);
}

#[test]
fn without_xdg_runtime_dir_the_fallback_dir_is_created_0700() {
    let root = tempfile::tempdir().unwrap();
    let state_home = root.path().join("state");
    let paths = StatePaths::from_env_with(|name| match name {
        "XDG_STATE_HOME" => Some(state_home.clone().into_os_string()),
        "HOME" => Some(root.path().as_os_str().to_owned()),
        _ => None,
    })
    .unwrap();
    assert!(paths.runtime_dir_is_fallback());
    let _listener = bind_listener(&paths).unwrap();
    assert_eq!(mode(&paths.runtime_dir()), 0o700);
    assert_eq!(mode(paths.state_dir()), 0o700);
    assert_eq!(mode(&paths.socket_path()), 0o600);
}

#[test]
fn a_stale_socket_is_replaced() {
    let root = tempfile::tempdir().unwrap();
    let paths = paths_in(root.path());
    fs::create_dir_all(paths.runtime_dir()).unwrap();
    // A socket file left behind by a daemon that died.
    drop(UnixListener::bind(paths.socket_path()).unwrap());
    assert!(paths.socket_path().exists());
    let _listener = bind_listener(&paths).unwrap();
    std::os::unix::net::UnixStream::connect(paths.socket_path()).expect("the new socket listens");
}

#[test]
fn a_live_socket_is_not_taken_over() {
    let instance = Instance::start();
    let error = bind_listener(&instance.paths).unwrap_err();
    assert!(error.description.contains("already listening"), "{error}");
    assert!(
        error
            .description
            .contains(&instance.socket().display().to_string()),
        "{error}"
    );
    // The running service is unharmed.
    Client::connect(&instance.paths).unwrap().ping().unwrap();
}

#[test]
fn something_else_at_the_socket_path_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let paths = paths_in(root.path());
    fs::create_dir_all(paths.runtime_dir()).unwrap();
    fs::write(paths.socket_path(), b"not a socket").unwrap();
    let error = bind_listener(&paths).unwrap_err();
    assert!(error.description.contains("is not a socket"), "{error}");
    assert_eq!(fs::read(paths.socket_path()).unwrap(), b"not a socket");
}

#[test]
fn a_socket_path_too_long_for_sun_path_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let deep = root.path().join("d".repeat(MAX_SOCKET_PATH_BYTES));
    let paths = paths_in(&deep);
    let socket = paths.socket_path().display().to_string();
    for error in [
        bind_listener(&paths).unwrap_err(),
        Client::connect(&paths).unwrap_err(),
    ] {
        assert_eq!(error.hresult, hresult::E_INVALIDARG);
        assert!(error.description.contains(&socket), "{error}");
        assert!(error.description.contains("XDG_RUNTIME_DIR"), "{error}");
    }
    assert!(
        !deep.exists(),
        "nothing is created for a path that cannot work"
    );
}

/// Hands `dir` to another uid, as `sudo -E` leaves a user's directories to root.
fn give_away(dir: &Path) -> bool {
    if !is_root() {
        println!("skipped: changing a directory's owner needs root");
        return false;
    }
    std::os::unix::fs::chown(dir, Some(65534), Some(65534)).unwrap();
    true
}

#[test]
fn a_runtime_dir_of_another_uid_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let paths = paths_in(root.path());
    fs::create_dir_all(paths.runtime_dir()).unwrap();
    if !give_away(&paths.runtime_dir()) {
        return;
    }
    let error = bind_listener(&paths).unwrap_err();
    assert_eq!(error.hresult, hresult::E_ACCESSDENIED);
    assert!(error.description.contains("uid 65534"), "{error}");
    assert!(error.description.contains("sudo -E"), "{error}");
    assert!(!paths.socket_path().exists());
}

#[test]
fn a_state_dir_of_another_uid_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let paths = paths_in(root.path());
    fs::create_dir_all(paths.state_dir()).unwrap();
    if !give_away(paths.state_dir()) {
        return;
    }
    let error = bind_listener(&paths).unwrap_err();
    assert_eq!(error.hresult, hresult::E_ACCESSDENIED);
    assert!(
        error
            .description
            .contains(&paths.state_dir().display().to_string()),
        "{error}"
    );
}

#[test]
fn a_readable_runtime_dir_is_made_private() {
    let root = tempfile::tempdir().unwrap();
    let paths = paths_in(root.path());
    fs::create_dir_all(paths.runtime_dir()).unwrap();
    fs::set_permissions(paths.runtime_dir(), fs::Permissions::from_mode(0o755)).unwrap();
    let _listener = bind_listener(&paths).unwrap();
    assert_eq!(mode(&paths.runtime_dir()), 0o700);
}

#[test]
fn a_runtime_dir_others_may_write_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let paths = paths_in(root.path());
    fs::create_dir_all(paths.runtime_dir()).unwrap();
    fs::set_permissions(paths.runtime_dir(), fs::Permissions::from_mode(0o777)).unwrap();
    let error = bind_listener(&paths).unwrap_err();
    assert_eq!(error.hresult, hresult::E_ACCESSDENIED);
    assert!(error.description.contains("others may write"), "{error}");
    assert!(!paths.socket_path().exists());
}

#[test]
fn clients_beyond_the_connection_limit_are_told_why_and_the_others_are_served() {
    let root = tempfile::tempdir().unwrap();
    let paths = paths_in(root.path());
    let queue = common::FakeQueue::new();
    let handler: std::sync::Arc<dyn qmgr_ipc::ConnectionHandler> = queue.clone();
    let server = qmgr_ipc::accept_loop_capped(bind_listener(&paths).unwrap(), handler, 8).unwrap();
    let socket = paths.socket_path();
    let admitted: Vec<Client> = (0..8)
        .map(|_| Client::connect_socket(&socket).unwrap())
        .collect();
    for _ in 0..20 {
        let error = Client::connect_socket(&socket).unwrap_err();
        assert_eq!(error.hresult, hresult::QM_E_SERVICE_UNAVAILABLE, "{error}");
        assert!(
            error.description.contains("at most 8 connections"),
            "{error}"
        );
        assert!(error.description.contains("max_connections"), "{error}");
    }
    // The admitted clients are unaffected, and a place that frees up is given again.
    for client in &admitted {
        assert!(client.ping().is_ok());
    }
    drop(admitted);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let client = loop {
        match Client::connect_socket(&socket) {
            Ok(client) => break client,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(error) => panic!("no place freed up: {error}"),
        }
    };
    assert!(client.ping().is_ok());
    drop(client);
    server.stop();
}
