//! Temporary files and their fate: created beside the destination so the final rename stays
//! on one file system, private until finished, renamed into place only when complete.
//!
//! Destination directories may be shared with other users (`/tmp`), so a name recorded
//! earlier proves nothing: between two attempts anyone who can write there may have put
//! a FIFO, a device node or a file of their own under it. Every temporary file is
//! therefore looked up relative to a descriptor of its directory, opened without following
//! symlinks and without blocking, and used only if `fstat` of the opened descriptor shows a
//! regular file with one link that belongs to this process's effective uid.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use qmgr_core::{QmgrError, hresult};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, Stat};

use crate::error::local_error;
use crate::request::directory_of;

// Temporary file names are shaped as BITS names its own (`BIT1A2B.tmp`), with a leading
// dot that keeps them out of ordinary listings; qmgr-core holds the one definition, which
// the service also checks stored names against.
use qmgr_core::file::{TEMP_NAME_PREFIX as TEMP_PREFIX, TEMP_NAME_SUFFIX as TEMP_SUFFIX};
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

/// The directory a transfer's temporary files live in, held open so that every name is
/// looked up in that one directory even if a component of its path is swapped meanwhile.
#[derive(Debug)]
pub(crate) struct TempDirectory {
    /// `O_PATH`: enough for `*at` calls, and needs no read permission on the directory.
    fd: OwnedFd,
    path: PathBuf,
}

impl TempDirectory {
    /// Opens the directory that holds (or will hold) `destination`.
    pub(crate) fn of(destination: &Path) -> io::Result<TempDirectory> {
        let path = directory_of(destination).to_path_buf();
        let fd = rustix::fs::open(
            &path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(TempDirectory { fd, path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Creates a new private temporary file (`O_EXCL`, mode 0600) in this directory.
    pub(crate) fn create_temp(&self) -> io::Result<(File, PathBuf)> {
        let mut names = TempNames::new(NAME_ATTEMPTS);
        let mut last_error = None;
        for _ in 0..NAME_ATTEMPTS {
            let name = names.next_name()?;
            match create_new_temp(&self.fd, name.as_str()) {
                Ok(file) => return Ok((file, self.path.join(name))),
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    last_error = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
    }

    /// Creates the private temporary file `temp` (`O_EXCL`, mode 0600), a name of
    /// [`is_temp_name`]'s shape in this directory that the caller chose with
    /// [`new_temp_path`] and recorded before asking for the file.
    pub(crate) fn create_named(&self, temp: &Path) -> io::Result<File> {
        let name = checked_temp_name(temp, &self.path)?;
        create_new_temp(&self.fd, name)
    }

    /// [`TempDirectory::create_named`] for the file beside `destination`, without holding
    /// the directory open: a single `openat` resolves the path once either way, and
    /// `O_EXCL` makes a new file or fails, so nothing is gained by a descriptor of the
    /// directory when this is all the transfer does there. Saves two system calls for
    /// every file begun.
    pub(crate) fn create_named_beside(destination: &Path, temp: &Path) -> io::Result<File> {
        checked_temp_name(temp, directory_of(destination))?;
        create_new_temp(rustix::fs::CWD, temp)
    }

    /// Opens an earlier attempt's temporary file `temp` (a name in this directory), cuts it
    /// to at most `keep` bytes and positions it at its end. Returns the length kept (less
    /// than `keep` if the file is shorter). A name that no longer holds a file of ours is
    /// an error for which [`is_unusable_partial`] is true; that file is left alone.
    pub(crate) fn reopen_partial(&self, temp: &Path, keep: u64) -> io::Result<(File, u64)> {
        let name = name_in(temp, &self.path)?;
        let mut file = open_own_file(&self.fd, name, OFlags::WRONLY)?;
        let length = file.metadata()?.len();
        let kept = length.min(keep);
        file.set_len(kept)?;
        file.seek(SeekFrom::Start(kept))?;
        Ok((file, kept))
    }
}

/// Why a file found under a temporary name is not one to use.
#[derive(Debug)]
struct NotOurFile(&'static str);

impl std::fmt::Display for NotOurFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for NotOurFile {}

/// Errors of [`TempDirectory::reopen_partial`] that mean the partial file is simply not
/// there to continue — deleted, or replaced by a symlink, a FIFO, a device, a directory
/// or another user's file — as opposed to a disk or quota problem. The transfer then
/// starts over in a new temporary file.
pub(crate) fn is_unusable_partial(error: &io::Error) -> bool {
    if error
        .get_ref()
        .is_some_and(<dyn std::error::Error + Send + Sync>::is::<NotOurFile>)
    {
        return true;
    }
    matches!(
        error.raw_os_error(),
        Some(
            libc::ENOENT
                | libc::ELOOP
                | libc::ENXIO
                | libc::EACCES
                | libc::EPERM
                | libc::EISDIR
                | libc::ETXTBSY
                | libc::EAGAIN
        )
    )
}

/// Opens `name` in `directory` only if it is a file this process could have made there: a
/// regular file with a single link, owned by the effective uid. `O_NONBLOCK` keeps a FIFO
/// or device under the name from stalling the open (a FIFO without reader fails with
/// `ENXIO`, one with a reader opens and is refused by the check); it is cleared again on
/// the regular file, where it means nothing anyway.
fn open_own_file(directory: &OwnedFd, name: &OsStr, access: OFlags) -> io::Result<File> {
    let file = open_own_file_for_metadata(directory, name, access)?;
    let flags = rustix::fs::fcntl_getfl(&file)?;
    rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK)?;
    Ok(file)
}

/// [`open_own_file`] for a caller that only changes the file's mode or syncs it, never
/// reads or writes through it: `O_NONBLOCK` is left as the open set it, which saves two
/// system calls per file of a Complete.
fn open_own_file_for_metadata(
    directory: &OwnedFd,
    name: &OsStr,
    access: OFlags,
) -> io::Result<File> {
    let fd = rustix::fs::openat(
        directory,
        name,
        access | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    check_own_regular_file(&rustix::fs::fstat(&fd)?)?;
    Ok(File::from(fd))
}

fn check_own_regular_file(stat: &Stat) -> io::Result<()> {
    let problem = if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        Some("not a regular file")
    } else if stat.st_uid != rustix::process::geteuid().as_raw() {
        Some("owned by another user")
    } else if stat.st_nlink != 1 {
        Some("linked under another name too")
    } else {
        None
    };
    match problem {
        Some(why) => Err(io::Error::new(io::ErrorKind::InvalidInput, NotOurFile(why))),
        None => Ok(()),
    }
}

/// The name of `temp`, which must be of [`is_temp_name`]'s shape and lie directly in
/// `directory`.
fn checked_temp_name<'a>(temp: &'a Path, directory: &Path) -> io::Result<&'a OsStr> {
    let name = name_in(temp, directory)?;
    if !is_temp_name(name) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a temporary file name", temp.display()),
        ));
    }
    Ok(name)
}

/// Creates a new private file (`O_EXCL`, mode 0600) at `path` relative to `directory`.
fn create_new_temp<P: rustix::path::Arg>(directory: impl AsFd, path: P) -> io::Result<File> {
    let fd = rustix::fs::openat(
        directory,
        path,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    Ok(File::from(fd))
}

/// The file name of `path`, which must lie directly in `directory`.
fn name_in<'a>(path: &'a Path, directory: &Path) -> io::Result<&'a OsStr> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match path.file_name() {
        Some(name) if parent == directory => Ok(name),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is not a file directly in {}",
                path.display(),
                directory.display()
            ),
        )),
    }
}

/// A fresh temporary file name beside `destination`, for a caller that records the name
/// before the engine creates the file (pass it as a [`crate::PartialFile`] of 0 bytes):
/// then no crash can leave a temporary file nobody knows of.
pub fn new_temp_path(destination: &Path) -> Result<PathBuf, QmgrError> {
    TempNames::new(1).path_beside(destination)
}

/// [`new_temp_path`] for many files at once: the random bits of up to `count` names come
/// from one call to the kernel instead of one each.
#[derive(Debug)]
pub struct TempNames {
    count: usize,
    random: Vec<u8>,
}

impl TempNames {
    /// Names for up to `count` files; more are drawn in further batches of that size.
    pub fn new(count: usize) -> TempNames {
        TempNames {
            count: count.max(1),
            random: Vec::new(),
        }
    }

    /// A fresh temporary file name beside `destination` (see [`new_temp_path`]).
    pub fn path_beside(&mut self, destination: &Path) -> Result<PathBuf, QmgrError> {
        let name = self
            .next_name()
            .map_err(|error| local_error(&error, "naming a temporary file for", destination))?;
        Ok(directory_of(destination).join(name))
    }

    /// A fresh name of [`is_temp_name`]'s shape.
    fn next_name(&mut self) -> io::Result<String> {
        if self.random.is_empty() {
            let mut random = vec![0_u8; self.count * 8];
            getrandom::fill(&mut random).map_err(|error| io::Error::other(error.to_string()))?;
            self.random = random;
        }
        let at = self.random.len() - 8;
        let mut bits = [0_u8; 8];
        bits.copy_from_slice(&self.random[at..]);
        self.random.truncate(at);
        let hex = u64::from_be_bytes(bits);
        Ok(format!("{TEMP_PREFIX}{hex:016x}{TEMP_SUFFIX}"))
    }
}

/// Whether a file name is one of ours (for sweeping up after a crash).
pub fn is_temp_name(name: &std::ffi::OsStr) -> bool {
    qmgr_core::file::is_temp_file_name(name)
}

/// Opens the temporary file `temp` for reading, with the same checks as a reopened partial
/// file: a FIFO, device, symlink or someone else's file under the name is refused.
fn open_temp_for_reading(temp: &Path) -> io::Result<(TempDirectory, File)> {
    let directory = TempDirectory::of(temp)?;
    let name = name_in(temp, directory.path())?;
    let file = open_own_file(&directory.fd, name, OFlags::RDONLY)?;
    Ok((directory, file))
}

/// Makes the bytes written so far durable (`fdatasync`) and returns the file's length. The
/// service calls this at a checkpoint before recording the length, off the engine thread.
pub fn sync_partial(temp: &Path) -> Result<u64, QmgrError> {
    let (_, file) =
        open_temp_for_reading(temp).map_err(|error| local_error(&error, "opening", temp))?;
    file.sync_data()
        .map_err(|error| local_error(&error, "syncing", temp))?;
    let length = file
        .metadata()
        .map_err(|error| local_error(&error, "reading the size of", temp))?
        .len();
    Ok(length)
}

/// Moves a finished temporary file onto its final name: gives it the permissions a new file
/// of the job's creator would get (`0666 & !umask`, `umask` being that process's), makes
/// its content durable, renames it within its directory, and makes the rename durable. The
/// temporary file must be beside `destination` and must still be ours (see the module
/// documentation). A destination that is a directory is
/// `HRESULT_FROM_WIN32(ERROR_DIRECTORY_NOT_SUPPORTED)`, naming it.
pub fn finalize(
    temp: &Path,
    destination: &Path,
    overwrite: Overwrite,
    umask: u32,
) -> Result<(), QmgrError> {
    let mut finalizer = Finalizer::new(overwrite, umask);
    let moved = finalizer.finalize(temp, destination);
    let synced = finalizer.finish();
    moved.and(synced)
}

/// Directories a [`Finalizer`] keeps open before it syncs and closes them, so that a job
/// spread over many directories does not hold a descriptor for each.
const FINALIZER_DIRECTORIES: usize = 64;

/// [`finalize`] for many files (a job's Complete): each file is made durable and renamed
/// into place as it comes, and each directory is opened once and synced once, by
/// [`Finalizer::finish`] (or earlier, when many directories are open), instead of once per
/// file.
#[derive(Debug)]
pub struct Finalizer {
    overwrite: Overwrite,
    umask: u32,
    directories: std::collections::HashMap<PathBuf, TempDirectory>,
}

impl Finalizer {
    pub fn new(overwrite: Overwrite, umask: u32) -> Finalizer {
        Finalizer {
            overwrite,
            umask,
            directories: std::collections::HashMap::new(),
        }
    }

    /// Moves the finished temporary file `temp` onto `destination` (in the same
    /// directory), readable as the umask allows. The rename is durable once
    /// [`Finalizer::finish`] returned.
    pub fn finalize(&mut self, temp: &Path, destination: &Path) -> Result<(), QmgrError> {
        let (overwrite, umask) = (self.overwrite, self.umask);
        let directory = self.directory(temp)?;
        let temp_name = name_in(temp, directory.path())
            .map_err(|error| local_error(&error, "finding", temp))?;
        let destination_name = name_in(destination, directory.path())
            .map_err(|error| local_error(&error, "moving the finished file onto", destination))?;
        let file = open_own_file_for_metadata(&directory.fd, temp_name, OFlags::RDONLY).map_err(
            |error| {
                let mut failure = local_error(&error, "opening", temp);
                if is_unusable_partial(&error) && error.kind() == io::ErrorKind::InvalidInput {
                    failure.hresult = hresult::E_ACCESSDENIED;
                }
                failure
            },
        )?;
        rustix::fs::fchmod(&file, Mode::from_raw_mode(0o666 & !umask))
            .map_err(|error| local_error(&error.into(), "setting the permissions of", temp))?;
        // The bytes are on disk before the name says the file is finished. The engine
        // synced them when the download ended, so this normally finds nothing to write;
        // `fdatasync` leaves the new mode to the directory's sync in `finish` instead of a
        // journal commit per file (a crash in between leaves the file readable only by
        // its owner, never short).
        file.sync_data()
            .map_err(|error| local_error(&error, "syncing", temp))?;
        drop(file);
        match overwrite {
            Overwrite::Replace => {
                rustix::fs::renameat(&directory.fd, temp_name, &directory.fd, destination_name)
                    .map_err(io::Error::from)
            }
            Overwrite::NoClobber => rename_no_clobber(&directory.fd, temp_name, destination_name),
        }
        .map_err(|error| local_error(&error, "moving the finished file onto", destination))
    }

    /// Syncs every directory a file was moved in, making the renames durable.
    pub fn finish(mut self) -> Result<(), QmgrError> {
        self.sync_directories()
    }

    fn directory(&mut self, temp: &Path) -> Result<&TempDirectory, QmgrError> {
        let path = directory_of(temp);
        if !self.directories.contains_key(path) {
            if self.directories.len() >= FINALIZER_DIRECTORIES {
                self.sync_directories()?;
            }
            let directory =
                TempDirectory::of(temp).map_err(|error| local_error(&error, "opening", temp))?;
            self.directories.insert(path.to_path_buf(), directory);
        }
        Ok(&self.directories[path])
    }

    /// Syncs and closes the open directories; the first failure is returned after all
    /// were tried.
    fn sync_directories(&mut self) -> Result<(), QmgrError> {
        let mut result = Ok(());
        for (_, directory) in self.directories.drain() {
            let synced = rustix::fs::openat(
                &directory.fd,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .and_then(rustix::fs::fsync)
            .map_err(|error| local_error(&error.into(), "syncing the directory", directory.path()));
            result = result.and(synced);
        }
        result
    }
}

/// Bytes copied at a time by [`place_spans`].
const PLACE_BUFFER: usize = 256 * 1024;

/// Puts the bytes of a ranged download at their own offsets in an on-demand file's
/// temporary file (IBackgroundCopyFile6): `fetched` holds `spans` of the remote file
/// concatenated in the order given (a finished ranged transfer's temporary file); each is
/// written at its offset in `target`, which is created if missing and made `size` bytes
/// long (sparse: what was never fetched takes no disk), then made durable. `fetched` is
/// left for the caller to discard. Both must be temporary files of this process beside
/// one another, as the engine makes them; a `fetched` of another length than the spans
/// add up to is refused before anything is written.
pub fn place_spans(
    fetched: &Path,
    spans: &[qmgr_core::on_demand::Span],
    target: &Path,
    size: u64,
) -> Result<(), QmgrError> {
    use std::os::unix::fs::FileExt;

    let directory =
        TempDirectory::of(target).map_err(|error| local_error(&error, "opening", target))?;
    let source_name = name_in(fetched, directory.path())
        .map_err(|error| local_error(&error, "reading", fetched))?;
    let source = open_own_file(&directory.fd, source_name, OFlags::RDONLY)
        .map_err(|error| local_error(&error, "reading", fetched))?;
    let expected: u64 = spans.iter().map(|span| span.len()).sum();
    let held = source
        .metadata()
        .map_err(|error| local_error(&error, "reading the size of", fetched))?
        .len();
    if held != expected {
        return Err(QmgrError::internal(format!(
            "{} holds {held} bytes, not the {expected} of the ranges fetched into it",
            fetched.display()
        )));
    }
    if let Some(beyond) = spans.iter().find(|span| span.end > size) {
        return Err(QmgrError::new(
            hresult::BG_E_INVALID_RANGE,
            qmgr_core::ErrorContext::None,
            format!(
                "bytes {} to {} lie beyond the end of the file ({size} bytes)",
                beyond.start, beyond.end
            ),
        ));
    }
    let name = name_in(target, directory.path())
        .map_err(|error| local_error(&error, "writing", target))?;
    let destination = match open_own_file(&directory.fd, name, OFlags::WRONLY) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => directory
            .create_named(target)
            .map_err(|error| local_error(&error, "creating", target))?,
        Err(error) => return Err(local_error(&error, "writing", target)),
    };
    let length = destination
        .metadata()
        .map_err(|error| local_error(&error, "reading the size of", target))?
        .len();
    if length != size {
        destination
            .set_len(size)
            .map_err(|error| local_error(&error, "sizing", target))?;
    }
    let mut buffer = vec![0_u8; PLACE_BUFFER];
    let mut read_at = 0_u64;
    for span in spans {
        let mut written = span.start;
        while written < span.end {
            let chunk = usize::try_from(span.end - written)
                .unwrap_or(usize::MAX)
                .min(buffer.len());
            source
                .read_exact_at(&mut buffer[..chunk], read_at)
                .map_err(|error| local_error(&error, "reading", fetched))?;
            destination
                .write_all_at(&buffer[..chunk], written)
                .map_err(|error| local_error(&error, "writing", target))?;
            read_at += chunk as u64;
            written += chunk as u64;
        }
    }
    destination
        .sync_data()
        .map_err(|error| local_error(&error, "syncing", target))
}

/// Deletes a temporary file; one that is already gone is fine. Whatever sits under the
/// name and does not belong to this process's effective uid is left where it is (in a
/// shared directory another user may have put it there after our file vanished).
pub fn discard(temp: &Path) -> Result<(), QmgrError> {
    let gone = |error: &io::Error| error.kind() == io::ErrorKind::NotFound;
    let directory = match TempDirectory::of(temp) {
        Ok(directory) => directory,
        Err(error) if gone(&error) => return Ok(()),
        Err(error) => return Err(local_error(&error, "deleting", temp)),
    };
    let name =
        name_in(temp, directory.path()).map_err(|error| local_error(&error, "deleting", temp))?;
    let stat = match rustix::fs::statat(&directory.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(error) if gone(&error.into()) => return Ok(()),
        Err(error) => return Err(local_error(&error.into(), "deleting", temp)),
    };
    if stat.st_uid != rustix::process::geteuid().as_raw() {
        return Ok(());
    }
    match rustix::fs::unlinkat(&directory.fd, name, AtFlags::empty()) {
        Err(error) if !gone(&error.into()) => Err(local_error(&error.into(), "deleting", temp)),
        _ => Ok(()),
    }
}

/// `renameat2(RENAME_NOREPLACE)`; where the file system lacks it, a hard link (which also
/// refuses an existing name) and an unlink. Never a check followed by a plain rename, which
/// could replace a file created in between.
fn rename_no_clobber(directory: &OwnedFd, from: &OsStr, to: &OsStr) -> io::Result<()> {
    let directory = directory.as_fd();
    match rustix::fs::renameat_with(directory, from, directory, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS | rustix::io::Errno::NOTSUP) => {
            rustix::fs::linkat(directory, from, directory, to, AtFlags::empty())?;
            rustix::fs::unlinkat(directory, from, AtFlags::empty())?;
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use qmgr_core::hresult;

    fn create_temp(destination: &Path) -> io::Result<(File, PathBuf)> {
        TempDirectory::of(destination)?.create_temp()
    }

    fn reopen_partial(temp: &Path, keep: u64) -> io::Result<(File, u64)> {
        TempDirectory::of(temp)?.reopen_partial(temp, keep)
    }

    fn mkfifo(path: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            FileType::Fifo,
            Mode::from_raw_mode(0o666),
            0,
        )
        .unwrap();
    }

    /// A temporary file beside `destination` holding `content`.
    fn temp_with(destination: &Path, content: &[u8]) -> PathBuf {
        let (mut file, path) = create_temp(destination).unwrap();
        file.write_all(content).unwrap();
        path
    }

    #[test]
    fn fetched_spans_land_at_their_offsets_in_a_file_of_the_remote_size() {
        use qmgr_core::on_demand::Span;
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("out.bin");
        let target = new_temp_path(&destination).unwrap();
        // Fetched in the order asked: bytes 60..70 first, then 10..14.
        let fetched = temp_with(&destination, b"ABCDEFGHIJwxyz");
        let spans = [Span { start: 60, end: 70 }, Span { start: 10, end: 14 }];
        place_spans(&fetched, &spans, &target, 100).unwrap();
        let content = fs::read(&target).unwrap();
        assert_eq!(content.len(), 100, "the file has the remote file's size");
        assert_eq!(&content[60..70], b"ABCDEFGHIJ");
        assert_eq!(&content[10..14], b"wxyz");
        assert!(content[..10].iter().all(|byte| *byte == 0));
        assert_eq!(
            fs::metadata(&target).unwrap().mode() & 0o777,
            0o600,
            "private until Complete"
        );

        // A later fetch adds to the file without touching what is there.
        let more = temp_with(&destination, b"!!");
        place_spans(&more, &[Span { start: 0, end: 2 }], &target, 100).unwrap();
        let content = fs::read(&target).unwrap();
        assert_eq!(&content[..2], b"!!");
        assert_eq!(&content[10..14], b"wxyz");
        assert_eq!(&content[60..70], b"ABCDEFGHIJ");
    }

    #[test]
    fn placing_refuses_a_fetch_that_does_not_match_its_spans() {
        use qmgr_core::on_demand::Span;
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("out.bin");
        let target = new_temp_path(&destination).unwrap();
        let fetched = temp_with(&destination, b"short");
        let error = place_spans(&fetched, &[Span { start: 0, end: 10 }], &target, 100).unwrap_err();
        assert!(
            error.description.contains("not the 10"),
            "{}",
            error.description
        );
        assert!(!target.exists(), "nothing is written for a wrong fetch");
        let fetched = temp_with(&destination, b"0123456789");
        let error = place_spans(
            &fetched,
            &[Span {
                start: 95,
                end: 105,
            }],
            &target,
            100,
        )
        .unwrap_err();
        assert_eq!(error.hresult, hresult::BG_E_INVALID_RANGE);
        assert!(!target.exists());
    }

    #[test]
    fn placing_into_something_not_ours_is_refused() {
        use qmgr_core::on_demand::Span;
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("out.bin");
        let target = new_temp_path(&destination).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, b"keep me").unwrap();
        std::os::unix::fs::symlink(&elsewhere, &target).unwrap();
        let fetched = temp_with(&destination, b"xx");
        assert!(place_spans(&fetched, &[Span { start: 0, end: 2 }], &target, 10).is_err());
        assert_eq!(fs::read(&elsewhere).unwrap(), b"keep me");
    }

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
    fn a_recorded_temp_name_is_created_as_it_is_and_never_over_something() {
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("out.bin");
        let temp = new_temp_path(&destination).unwrap();
        assert_eq!(temp.parent(), Some(dir.path()));
        assert!(is_temp_name(temp.file_name().unwrap()));
        let directory = TempDirectory::of(&destination).unwrap();
        drop(directory.create_named(&temp).unwrap());
        assert_eq!(fs::metadata(&temp).unwrap().mode() & 0o777, 0o600);
        let again = directory.create_named(&temp).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
        let not_temp = directory
            .create_named(&dir.path().join("precious"))
            .unwrap_err();
        assert_eq!(not_temp.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn names_drawn_together_are_all_different_and_of_the_temporary_shape() {
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("out.bin");
        let mut names = TempNames::new(3);
        let drawn: Vec<PathBuf> = (0..7)
            .map(|_| names.path_beside(&destination).unwrap())
            .collect();
        for name in &drawn {
            assert_eq!(name.parent(), Some(dir.path()));
            assert!(
                is_temp_name(name.file_name().unwrap()),
                "{}",
                name.display()
            );
        }
        let distinct: std::collections::HashSet<&PathBuf> = drawn.iter().collect();
        assert_eq!(distinct.len(), drawn.len());
    }

    #[test]
    fn a_temp_file_made_beside_its_destination_keeps_the_same_rules() {
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("out.bin");
        let temp = new_temp_path(&destination).unwrap();
        drop(TempDirectory::create_named_beside(&destination, &temp).unwrap());
        assert_eq!(fs::metadata(&temp).unwrap().mode() & 0o777, 0o600);
        let again = TempDirectory::create_named_beside(&destination, &temp).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
        // A symlink under the name is not followed.
        let link = new_temp_path(&destination).unwrap();
        std::os::unix::fs::symlink(dir.path().join("target"), &link).unwrap();
        let through = TempDirectory::create_named_beside(&destination, &link).unwrap_err();
        assert_eq!(through.kind(), io::ErrorKind::AlreadyExists);
        assert!(!dir.path().join("target").exists());
        let not_temp =
            TempDirectory::create_named_beside(&destination, &dir.path().join("x")).unwrap_err();
        assert_eq!(not_temp.kind(), io::ErrorKind::InvalidInput);
        let elsewhere = tempfile::tempdir().unwrap();
        let other = new_temp_path(&elsewhere.path().join("y")).unwrap();
        let wrong_place = TempDirectory::create_named_beside(&destination, &other).unwrap_err();
        assert_eq!(wrong_place.kind(), io::ErrorKind::InvalidInput);
        assert!(!other.exists());
    }

    #[test]
    fn temp_files_can_be_made_in_a_directory_we_may_write_but_not_list() {
        let dir = tempfile::tempdir().unwrap();
        let drop_box = dir.path().join("box");
        fs::create_dir(&drop_box).unwrap();
        fs::set_permissions(&drop_box, fs::Permissions::from_mode(0o300)).unwrap();
        let made = create_temp(&drop_box.join("out.bin"));
        fs::set_permissions(&drop_box, fs::Permissions::from_mode(0o700)).unwrap();
        made.unwrap();
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
        let error = reopen_partial(&link, 0).unwrap_err();
        assert!(is_unusable_partial(&error), "{error}");
        assert_eq!(fs::read(&target).unwrap(), b"keep me");
    }

    #[test]
    fn a_fifo_under_the_partial_name_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join(".BITfifo.tmp");
        mkfifo(&fifo);
        // Without a reader the open itself fails (ENXIO); with one, the check refuses it.
        let error = reopen_partial(&fifo, 10).unwrap_err();
        assert!(is_unusable_partial(&error), "{error}");
        let _reader = rustix::fs::open(
            &fifo,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let error = reopen_partial(&fifo, 10).unwrap_err();
        assert!(is_unusable_partial(&error), "{error}");
        assert!(error.to_string().contains("not a regular file"), "{error}");
        let error = sync_partial(&fifo).unwrap_err();
        assert!(
            error.description.contains("not a regular file"),
            "{error:?}"
        );
    }

    #[test]
    fn a_partial_file_with_a_second_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".BITlinked.tmp");
        fs::write(&path, b"0123").unwrap();
        fs::hard_link(&path, dir.path().join("elsewhere")).unwrap();
        let error = reopen_partial(&path, 4).unwrap_err();
        assert!(is_unusable_partial(&error), "{error}");
        assert_eq!(fs::read(&path).unwrap(), b"0123");
    }

    #[test]
    fn finalize_replaces_and_applies_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("final.txt");
        fs::write(&destination, b"old").unwrap();
        let (mut file, temp) = create_temp(&destination).unwrap();
        file.write_all(b"new").unwrap();
        drop(file);
        finalize(&temp, &destination, Overwrite::Replace, 0o027).unwrap();
        assert_eq!(fs::read(&destination).unwrap(), b"new");
        assert!(!temp.exists());
        let mode = fs::metadata(&destination).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn a_finalizer_moves_files_of_several_directories_and_stops_at_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other");
        fs::create_dir(&other).unwrap();
        let destinations = [
            dir.path().join("one"),
            other.join("two"),
            dir.path().join("three"),
        ];
        let temps: Vec<PathBuf> = destinations
            .iter()
            .map(|destination| {
                let (mut file, temp) = create_temp(destination).unwrap();
                file.write_all(destination.to_string_lossy().as_bytes())
                    .unwrap();
                temp
            })
            .collect();
        let mut finalizer = Finalizer::new(Overwrite::Replace, 0o022);
        for (temp, destination) in temps.iter().zip(&destinations).take(2) {
            finalizer.finalize(temp, destination).unwrap();
        }
        // The third temporary file was swapped for a FIFO: refused, the others stay moved.
        fs::remove_file(&temps[2]).unwrap();
        mkfifo(&temps[2]);
        let error = finalizer.finalize(&temps[2], &destinations[2]).unwrap_err();
        assert_eq!(error.hresult, hresult::E_ACCESSDENIED, "{error:?}");
        finalizer.finish().unwrap();
        for destination in &destinations[..2] {
            assert_eq!(
                fs::read(destination).unwrap(),
                destination.to_string_lossy().as_bytes()
            );
            assert_eq!(fs::metadata(destination).unwrap().mode() & 0o777, 0o644);
        }
        assert!(!destinations[2].exists());
        assert!(!temps[0].exists() && !temps[1].exists());
    }

    #[test]
    fn finalize_onto_a_directory_says_so_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("a-directory");
        fs::create_dir(&destination).unwrap();
        let (_file, temp) = create_temp(&destination).unwrap();
        let error = finalize(&temp, &destination, Overwrite::Replace, 0o022).unwrap_err();
        assert_eq!(
            error.hresult,
            hresult::HRESULT_DIRECTORY_NOT_SUPPORTED,
            "{error:?}"
        );
        assert!(error.description.contains("a-directory"), "{error:?}");
        assert!(destination.is_dir() && temp.exists());
    }

    #[test]
    fn finalize_without_clobbering_leaves_an_existing_destination() {
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("final.txt");
        fs::write(&destination, b"old").unwrap();
        let (mut file, temp) = create_temp(&destination).unwrap();
        file.write_all(b"new").unwrap();
        drop(file);
        let error = finalize(&temp, &destination, Overwrite::NoClobber, 0o022).unwrap_err();
        assert_eq!(error.hresult, hresult::HRESULT_FILE_EXISTS);
        assert!(error.description.contains("final.txt"));
        assert_eq!(fs::read(&destination).unwrap(), b"old");
        assert_eq!(fs::read(&temp).unwrap(), b"new");
        fs::remove_file(&destination).unwrap();
        finalize(&temp, &destination, Overwrite::NoClobber, 0o022).unwrap();
        assert_eq!(fs::read(&destination).unwrap(), b"new");
    }

    #[test]
    fn finalize_refuses_what_is_not_our_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("final.txt");
        let fifo = dir.path().join(".BITfifo.tmp");
        mkfifo(&fifo);
        let error = finalize(&fifo, &destination, Overwrite::Replace, 0o022).unwrap_err();
        assert_eq!(error.hresult, hresult::E_ACCESSDENIED, "{error:?}");
        assert!(!destination.exists());
        let (_file, elsewhere) = create_temp(&dir.path().join("sub-less")).unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let error = finalize(
            &elsewhere,
            &other_dir.path().join("x"),
            Overwrite::Replace,
            0o022,
        )
        .unwrap_err();
        assert!(
            error.description.contains("is not a file directly in"),
            "{error:?}"
        );
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
        discard(&dir.path().join("no-such-dir/.BITx.tmp")).unwrap();
    }
}
