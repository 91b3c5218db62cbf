//! The runtime directory and the socket path: private to the user, owned by the user, and
//! short enough for `sun_path`.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use qmgr_core::hresult;
use qmgr_core::{ErrorContext, QmgrError, Result};

/// `sun_path` holds 108 bytes including the terminating NUL.
pub const MAX_SOCKET_PATH_BYTES: usize = 107;

const PRIVATE_DIR_MODE: u32 = 0o700;

/// The effective uid of this process.
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Fails with a clear error when `socket` does not fit in `sun_path`.
pub fn check_socket_path_len(socket: &Path) -> Result<()> {
    let len = socket.as_os_str().as_bytes().len();
    if len <= MAX_SOCKET_PATH_BYTES {
        return Ok(());
    }
    Err(QmgrError::invalid_arg(format!(
        "the socket path {} is {len} bytes long, but a Unix socket path may have at most \
         {MAX_SOCKET_PATH_BYTES}; set XDG_RUNTIME_DIR to a shorter directory (the socket is \
         $XDG_RUNTIME_DIR/qmgr/qmgrd.sock)",
        socket.display()
    )))
}

/// Creates `dir` (and missing parents) with mode 0700, or checks the existing one: it
/// must be a directory owned by our effective uid; group and other permissions are
/// removed.
pub fn prepare_private_dir(dir: &Path, what: &str) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)
        .map_err(|error| {
            io_error(
                &format!("cannot create the {what} {}", dir.display()),
                &error,
            )
        })?;
    let metadata = check_owned(dir, what)?;
    if metadata.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR_MODE)).map_err(
            |error| {
                io_error(
                    &format!(
                        "cannot make the {what} {} private (mode 0700)",
                        dir.display()
                    ),
                    &error,
                )
            },
        )?;
    }
    Ok(())
}

/// Checks that `dir`, if it exists, is a directory owned by our effective uid.
pub fn check_owned_if_present(dir: &Path, what: &str) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        _ => check_owned(dir, what).map(drop),
    }
}

fn check_owned(dir: &Path, what: &str) -> Result<fs::Metadata> {
    let metadata = fs::symlink_metadata(dir).map_err(|error| {
        io_error(
            &format!("cannot inspect the {what} {}", dir.display()),
            &error,
        )
    })?;
    if !metadata.is_dir() {
        return Err(QmgrError::internal(format!(
            "the {what} {} is not a directory",
            dir.display()
        )));
    }
    let euid = effective_uid();
    if metadata.uid() != euid {
        return Err(QmgrError::new(
            hresult::E_ACCESSDENIED,
            ErrorContext::GeneralQueueManager,
            format!(
                "the {what} {} belongs to uid {}, but qmgr runs as uid {euid}; refusing to use \
                 another user's directory (did `sudo -E` keep the caller's XDG_* variables?)",
                dir.display(),
                metadata.uid()
            ),
        ));
    }
    Ok(metadata)
}

/// An I/O failure on qmgr's own files, with what was being done.
pub fn io_error(doing: &str, error: &io::Error) -> QmgrError {
    let code = if error.kind() == io::ErrorKind::PermissionDenied {
        hresult::E_ACCESSDENIED
    } else {
        hresult::E_FAIL
    };
    QmgrError::new(
        code,
        ErrorContext::GeneralQueueManager,
        format!("{doing}: {error}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_paths_up_to_107_bytes_fit() {
        let fits = format!("/{}", "a".repeat(106));
        assert!(check_socket_path_len(Path::new(&fits)).is_ok());
        let too_long = format!("/{}", "a".repeat(107));
        let error = check_socket_path_len(Path::new(&too_long)).unwrap_err();
        assert_eq!(error.hresult, hresult::E_INVALIDARG);
        assert!(error.description.contains(&too_long), "{error}");
        assert!(error.description.contains("XDG_RUNTIME_DIR"), "{error}");
        assert!(error.description.contains("at most 107"), "{error}");
    }

    #[test]
    fn private_dirs_are_created_0700_with_their_parents() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("state/qmgr/run");
        prepare_private_dir(&dir, "runtime directory").unwrap();
        for created in [temp.path().join("state"), dir.clone()] {
            let mode = fs::metadata(&created).unwrap().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", created.display());
        }
    }

    #[test]
    fn an_existing_open_dir_is_made_private() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("run");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        prepare_private_dir(&dir, "runtime directory").unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn a_file_in_place_of_the_dir_is_refused() {
        let temp = tempfile::tempdir().unwrap();
        let file = temp.path().join("run");
        fs::write(&file, b"").unwrap();
        let error = prepare_private_dir(&file, "runtime directory").unwrap_err();
        assert!(error.description.contains("runtime directory"), "{error}");
        let error = check_owned_if_present(&file, "state directory").unwrap_err();
        assert!(error.description.contains("not a directory"), "{error}");
    }

    #[test]
    fn a_missing_dir_passes_the_ownership_check() {
        let temp = tempfile::tempdir().unwrap();
        assert!(check_owned_if_present(&temp.path().join("absent"), "state directory").is_ok());
        assert!(check_owned_if_present(temp.path(), "state directory").is_ok());
    }
}
