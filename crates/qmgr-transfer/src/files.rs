//! Temporary files and their fate: created beside the destination so the final rename stays
//! on one file system, private until finished, renamed into place only when complete.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use qmgr_core::QmgrError;

use crate::error::local_error;
use crate::request::directory_of;

/// Prefix and suffix of temporary file names, as BITS names its own (`BIT1A2B.tmp`); the
/// leading dot keeps them out of ordinary listings.
const TEMP_PREFIX: &str = ".BIT";
const TEMP_SUFFIX: &str = ".tmp";
/// Random name attempts before giving up (a collision of 64 random bits means trouble).
const NAME_ATTEMPTS: usize = 8;

/// What [`finalize`] does when the destination already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overwrite {
    /// Replace it atomically, as BITS does on Complete.
    Replace,
    /// Leave it and fail with `HRESULT_FROM_WIN32(ERROR_FILE_EXISTS)`.
    NoClobber,
}

/// Creates a new private temporary file in the destination's directory.
pub(crate) fn create_temp(destination: &Path) -> io::Result<(File, PathBuf)> {
    let directory = directory_of(destination);
    let mut last_error = None;
    for _ in 0..NAME_ATTEMPTS {
        let path = directory.join(random_temp_name()?);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(file) => return Ok((file, path)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => last_error = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
}

fn random_temp_name() -> io::Result<String> {
    let mut random = [0_u8; 8];
    getrandom::fill(&mut random).map_err(|error| io::Error::other(error.to_string()))?;
    let hex = u64::from_be_bytes(random);
    Ok(format!("{TEMP_PREFIX}{hex:016x}{TEMP_SUFFIX}"))
}

/// Whether a file name is one of ours (for sweeping up after a crash).
pub fn is_temp_name(name: &std::ffi::OsStr) -> bool {
    let name = name.as_bytes();
    name.len() > TEMP_PREFIX.len() + TEMP_SUFFIX.len()
        && name.starts_with(TEMP_PREFIX.as_bytes())
        && name.ends_with(TEMP_SUFFIX.as_bytes())
}

/// Opens an earlier attempt's temporary file, cuts it to at most `keep` bytes and positions
/// it at its end. Returns the length kept (less than `keep` if the file is shorter).
pub(crate) fn reopen_partial(path: &Path, keep: u64) -> io::Result<(File, u64)> {
    let mut file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let kept = metadata.len().min(keep);
    file.set_len(kept)?;
    file.seek(SeekFrom::Start(kept))?;
    Ok((file, kept))
}

/// Makes the bytes written so far durable (`fdatasync`) and returns the file's length. The
/// service calls this at a checkpoint before recording the length, off the engine thread.
pub fn sync_partial(temp: &Path) -> Result<u64, QmgrError> {
    let file = open_existing(temp).map_err(|error| local_error(&error, "opening", temp))?;
    file.sync_data()
        .map_err(|error| local_error(&error, "syncing", temp))?;
    let length = file
        .metadata()
        .map_err(|error| local_error(&error, "reading the size of", temp))?
        .len();
    Ok(length)
}

/// Moves a finished temporary file onto its final name: gives it the permissions a new file
/// would get (0666 less the umask), makes its content durable, renames it, and makes the
/// rename durable.
pub fn finalize(temp: &Path, destination: &Path, overwrite: Overwrite) -> Result<(), QmgrError> {
    let file = open_existing(temp).map_err(|error| local_error(&error, "opening", temp))?;
    file.set_permissions(Permissions::from_mode(0o666 & !current_umask()))
        .map_err(|error| local_error(&error, "setting the permissions of", temp))?;
    file.sync_all()
        .map_err(|error| local_error(&error, "syncing", temp))?;
    drop(file);
    match overwrite {
        Overwrite::Replace => fs::rename(temp, destination),
        Overwrite::NoClobber => rename_no_clobber(temp, destination),
    }
    .map_err(|error| local_error(&error, "moving the finished file onto", destination))?;
    let directory = directory_of(destination);
    File::open(directory)
        .and_then(|directory| directory.sync_all())
        .map_err(|error| local_error(&error, "syncing the directory", directory))
}

/// Deletes a temporary file; one that is already gone is fine.
pub fn discard(temp: &Path) -> Result<(), QmgrError> {
    match fs::remove_file(temp) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            Err(local_error(&error, "deleting", temp))
        }
        _ => Ok(()),
    }
}

fn open_existing(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// `renameat2(RENAME_NOREPLACE)`; where the file system lacks it, a hard link (which also
/// refuses an existing name) and an unlink. Never a check followed by a plain rename, which
/// could replace a file created in between.
fn rename_no_clobber(from: &Path, to: &Path) -> io::Result<()> {
    let from_c = c_path(from)?;
    let to_c = c_path(to)?;
    // SAFETY: both arguments are NUL-terminated paths that live across the call;
    // AT_FDCWD makes them relative to the working directory like rename(2).
    let result = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if result == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EINVAL | libc::ENOSYS | libc::ENOTSUP) => {
            fs::hard_link(from, to)?;
            fs::remove_file(from)
        }
        _ => Err(error),
    }
}

fn c_path(path: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// The process umask, read without changing it (umask(2) can only read by setting, which
/// would race with other threads creating files).
fn current_umask() -> u32 {
    const FALLBACK: u32 = 0o022;
    let Ok(status) = fs::read_to_string("/proc/self/status") else {
        return FALLBACK;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("Umask:"))
        .and_then(|value| u32::from_str_radix(value.trim(), 8).ok())
        .unwrap_or(FALLBACK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

    use qmgr_core::hresult;

    #[test]
    fn temp_files_are_private_hidden_and_beside_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let (_file, path) = create_temp(&dir.path().join("out.bin")).unwrap();
        assert_eq!(path.parent(), Some(dir.path()));
        let name = path.file_name().unwrap();
        assert!(is_temp_name(name), "{name:?}");
        assert_eq!(name.len(), ".BIT".len() + 16 + ".tmp".len());
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let (_second, other) = create_temp(&dir.path().join("out.bin")).unwrap();
        assert_ne!(path, other);
    }

    #[test]
    fn a_partial_file_is_cut_to_the_verified_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".BITpartial.tmp");
        fs::write(&path, b"0123456789").unwrap();
        let (mut file, kept) = reopen_partial(&path, 4).unwrap();
        assert_eq!(kept, 4);
        file.write_all(b"ab").unwrap();
        drop(file);
        assert_eq!(fs::read(&path).unwrap(), b"0123ab");
        let (_file, kept) = reopen_partial(&path, 100).unwrap();
        assert_eq!(kept, 6, "a shorter file keeps what it has");
    }

    #[test]
    fn a_partial_file_behind_a_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"keep me").unwrap();
        let link = dir.path().join(".BITlink.tmp");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(reopen_partial(&link, 0).is_err());
        assert_eq!(fs::read(&target).unwrap(), b"keep me");
    }

    #[test]
    fn finalize_replaces_and_applies_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("final.txt");
        fs::write(&destination, b"old").unwrap();
        let (mut file, temp) = create_temp(&destination).unwrap();
        file.write_all(b"new").unwrap();
        drop(file);
        finalize(&temp, &destination, Overwrite::Replace).unwrap();
        assert_eq!(fs::read(&destination).unwrap(), b"new");
        assert!(!temp.exists());
        let mode = fs::metadata(&destination).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o666 & !current_umask());
    }

    #[test]
    fn finalize_without_clobbering_leaves_an_existing_destination() {
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("final.txt");
        fs::write(&destination, b"old").unwrap();
        let (mut file, temp) = create_temp(&destination).unwrap();
        file.write_all(b"new").unwrap();
        drop(file);
        let error = finalize(&temp, &destination, Overwrite::NoClobber).unwrap_err();
        assert_eq!(error.hresult, hresult::HRESULT_FILE_EXISTS);
        assert!(error.description.contains("final.txt"));
        assert_eq!(fs::read(&destination).unwrap(), b"old");
        assert_eq!(fs::read(&temp).unwrap(), b"new");
        fs::remove_file(&destination).unwrap();
        finalize(&temp, &destination, Overwrite::NoClobber).unwrap();
        assert_eq!(fs::read(&destination).unwrap(), b"new");
    }

    #[test]
    fn discard_and_sync_report_missing_files_sensibly() {
        let dir = tempfile::tempdir().unwrap();
        let (mut file, temp) = create_temp(&dir.path().join("x")).unwrap();
        file.write_all(b"12345").unwrap();
        assert_eq!(sync_partial(&temp).unwrap(), 5);
        discard(&temp).unwrap();
        assert!(!temp.exists());
        discard(&temp).unwrap();
        let error = sync_partial(&temp).unwrap_err();
        assert_eq!(error.hresult, hresult::HRESULT_PATH_NOT_FOUND);
    }
}
