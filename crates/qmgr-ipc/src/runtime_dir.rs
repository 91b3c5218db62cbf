//! The socket path, short enough for `sun_path`, and I/O errors on qmgr's own files. (Who
//! owns the runtime directory is checked by `qmgr_core::trust`.)

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use qmgr_core::hresult;
use qmgr_core::{ErrorContext, QmgrError, Result};

/// `sun_path` holds 108 bytes including the terminating NUL.
pub const MAX_SOCKET_PATH_BYTES: usize = 107;

pub use qmgr_core::trust::effective_uid;

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
}
