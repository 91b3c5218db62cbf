//! What qmgr trusts on disk: directories and files that belong to it, reached through
//! directories nobody else can change.
//!
//! The rules (README "Security"):
//! - every directory on the way to a state, config or runtime directory belongs to root or
//!   to the effective uid, and is not writable by group or others unless it is sticky (as
//!   `/tmp` is: there nobody can rename or replace another user's entries);
//! - a symbolic link on that way is followed only when it sits in such a directory;
//! - the state and runtime directories themselves belong to the effective uid and are
//!   made private (0700) when they are not;
//! - a file qmgr reads or writes there is opened without following a symbolic link, must
//!   be a regular file of the effective uid (root's for configuration also counts) that
//!   nobody else can write, and files that hold state are made 0600.
//!
//! Every refusal is `E_ACCESSDENIED` and names the path, its owner and the uid qmgr runs
//! as, having changed nothing.

use std::fs::File;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::error::{ErrorContext, QmgrError, Result};
use crate::hresult;

/// The mode of qmgr's private directories.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// The mode of files that hold qmgr's state (the store, its lock, the log).
pub const PRIVATE_FILE_MODE: u32 = 0o600;

const GROUP_OR_OTHER_WRITE: u32 = 0o022;
const GROUP_OR_OTHER_ANY: u32 = 0o077;
const STICKY: u32 = 0o1000;

/// The effective uid of this process: whose files qmgr may use.
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Who may own what qmgr reads: the effective uid, or also root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owners {
    Me,
    MeOrRoot,
}

impl Owners {
    fn allow(self, uid: u32) -> bool {
        uid == effective_uid() || (self == Owners::MeOrRoot && uid == 0)
    }
}

/// Checks every directory (and symbolic link) on the way to `path`, as far as it exists:
/// each belongs to root or to us and, unless sticky, is not writable by group or others.
/// The existing part of `path` itself is checked the same way. Nothing is created.
pub fn check_trusted_path(path: &Path, what: &str) -> Result<()> {
    check_trusted_path_of(path, effective_uid(), what)
}

/// [`check_trusted_path`] for a path that belongs to `owner` (root reaching a user's
/// daemon): the way may belong to root or to `owner`.
pub fn check_trusted_path_of(path: &Path, owner: u32, what: &str) -> Result<()> {
    absolute(path, what)?;
    check_prefixes(path, owner, what)?;
    // Symbolic links were followed above only from trusted directories; the directories
    // they lead to must be trusted as well.
    let existing = deepest_existing(path);
    if let Ok(real) = std::fs::canonicalize(&existing)
        && real != existing
    {
        check_prefixes(&real, owner, what)?;
    }
    Ok(())
}

fn check_prefixes(path: &Path, owner: u32, what: &str) -> Result<()> {
    let mut prefix = PathBuf::new();
    for component in path.components() {
        match component {
            Component::RootDir => prefix.push("/"),
            Component::Normal(name) => prefix.push(name),
            Component::CurDir => continue,
            Component::ParentDir | Component::Prefix(_) => {
                return Err(QmgrError::invalid_arg(format!(
                    "the {what} {} contains \"..\"; give it without",
                    path.display()
                )));
            }
        }
        let metadata = match std::fs::symlink_metadata(&prefix) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(io_failure("cannot inspect", &prefix, &error)),
        };
        if metadata.uid() != owner && metadata.uid() != 0 {
            return Err(foreign_of(&prefix, metadata.uid(), owner, what, path));
        }
        let mode = metadata.mode();
        if metadata.is_dir() && mode & GROUP_OR_OTHER_WRITE != 0 && mode & STICKY == 0 {
            if prefix == path {
                return Err(denied(format!(
                    "refusing the {what} {}: others may write to it (mode {:04o})",
                    path.display(),
                    mode & 0o7777
                )));
            }
            return Err(denied(format!(
                "refusing the {what} {}: the directory {} on its way is writable by \
                 others (mode {:04o}), so they could replace what qmgr finds there; \
                 remove the group and other write bits or choose another directory",
                path.display(),
                prefix.display(),
                mode & 0o7777
            )));
        }
    }
    Ok(())
}

/// Creates `dir` with mode 0700 (and missing parents, also 0700), or checks the existing
/// one: it must be reached through trusted directories, be a directory (not a symbolic
/// link), belong to us and not be writable by others. Group and other read and search
/// permissions are then removed.
pub fn prepare_private_dir(dir: &Path, what: &str) -> Result<()> {
    check_trusted_path(dir, what)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)
        .map_err(|error| io_failure(&format!("cannot create the {what}"), dir, &error))?;
    // Parents created just now are ours; check the whole way again before going in.
    check_trusted_path(dir, what)?;
    let directory = open_dir_nofollow(dir, what)?;
    let metadata = directory
        .metadata()
        .map_err(|error| io_failure(&format!("cannot inspect the {what}"), dir, &error))?;
    if !Owners::Me.allow(metadata.uid()) {
        return Err(foreign(dir, metadata.uid(), what, dir));
    }
    if metadata.mode() & GROUP_OR_OTHER_WRITE != 0 {
        // Others could already have put anything in it: tightening now would not undo that.
        return Err(denied(format!(
            "refusing the {what} {}: others may write to it (mode {:04o}); qmgr keeps its \
             state in a directory only its user can write (mode 0700)",
            dir.display(),
            metadata.mode() & 0o7777
        )));
    }
    if metadata.mode() & GROUP_OR_OTHER_ANY != 0 {
        directory
            .set_permissions(std::fs::Permissions::from_mode(PRIVATE_DIR_MODE))
            .map_err(|error| {
                io_failure(
                    &format!("cannot make the {what} private (mode 0700)"),
                    dir,
                    &error,
                )
            })?;
    }
    Ok(())
}

/// Checks, without changing anything, that `dir` is a directory of `owner` that nobody
/// else can write, reached through trusted directories: what a client requires of the
/// directory holding the socket it is about to use.
pub fn check_private_dir_of(dir: &Path, owner: u32, what: &str) -> Result<()> {
    check_trusted_path_of(dir, owner, what)?;
    let metadata = std::fs::symlink_metadata(dir)
        .map_err(|error| io_failure(&format!("cannot inspect the {what}"), dir, &error))?;
    if !metadata.is_dir() {
        return Err(denied(format!(
            "refusing the {what} {}: it is not a directory",
            dir.display()
        )));
    }
    if metadata.uid() != owner {
        return Err(foreign_of(dir, metadata.uid(), owner, what, dir));
    }
    if metadata.mode() & GROUP_OR_OTHER_WRITE != 0 {
        return Err(denied(format!(
            "refusing the {what} {}: others may write to it (mode {:04o})",
            dir.display(),
            metadata.mode() & 0o7777
        )));
    }
    Ok(())
}

/// How [`open_private_file`] opens a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read it; it must exist.
    Read,
    /// Read and write it, creating it (mode 0600) when missing.
    ReadWriteCreate,
    /// Append to it, creating it (mode 0600) when missing.
    AppendCreate,
}

/// Opens a file of qmgr's state in a directory already checked with
/// [`prepare_private_dir`]: never through a symbolic link, never blocking on a FIFO; it
/// must be a regular file of ours with no other link, and is made 0600 when it was not.
pub fn open_private_file(path: &Path, access: Access, what: &str) -> Result<File> {
    let flags = match access {
        Access::Read => OFlags::RDONLY,
        Access::ReadWriteCreate => OFlags::RDWR | OFlags::CREATE,
        Access::AppendCreate => OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE,
    };
    let file = open_nofollow(path, flags, what)?;
    check_opened_file(&file, path, Owners::Me, what)?;
    let metadata = file
        .metadata()
        .map_err(|error| io_failure(&format!("cannot inspect the {what}"), path, &error))?;
    if metadata.mode() & GROUP_OR_OTHER_ANY != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(PRIVATE_FILE_MODE))
            .map_err(|error| {
                io_failure(
                    &format!("cannot make the {what} private (mode 0600)"),
                    path,
                    &error,
                )
            })?;
    }
    Ok(file)
}

/// Checks a state file that another library opens by name (SQLite's database, `-wal` and
/// `-shm` files): absent, or a regular file of ours with no other link, which is then
/// made 0600. The directory must already be checked with [`prepare_private_dir`], so
/// nobody else can put anything there after this check.
pub fn check_private_file_if_present(path: &Path, what: &str) -> Result<()> {
    match open_nofollow(path, OFlags::RDONLY, what) {
        Ok(_) => open_private_file(path, Access::Read, what).map(drop),
        Err(error) if error.hresult == hresult::HRESULT_FILE_NOT_FOUND => Ok(()),
        Err(error) => Err(error),
    }
}

/// Reads a file qmgr only reads (its configuration): `None` when it does not exist;
/// refused when it is reached through untrusted directories, is a symbolic link or not a
/// regular file, belongs to someone other than us or root, or others may write it.
pub fn read_trusted_file(path: &Path, what: &str) -> Result<Option<Vec<u8>>> {
    check_trusted_path(path, what)?;
    let mut file = match open_nofollow(path, OFlags::RDONLY, what) {
        Ok(file) => file,
        Err(error) if error.hresult == hresult::HRESULT_FILE_NOT_FOUND => return Ok(None),
        Err(error) => return Err(error),
    };
    check_opened_file(&file, path, Owners::MeOrRoot, what)?;
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut file, &mut bytes)
        .map_err(|error| io_failure(&format!("cannot read the {what}"), path, &error))?;
    Ok(Some(bytes))
}

/// Whether a file another program will read by name (curl's `.netrc`) is there and may be
/// trusted: reached through trusted directories only, a regular file and no symbolic link,
/// ours or root's, not writable by others. `Ok(false)` when it does not exist.
pub fn check_trusted_file(path: &Path, what: &str) -> Result<bool> {
    check_trusted_path(path, what)?;
    let file = match open_nofollow(path, OFlags::RDONLY, what) {
        Ok(file) => file,
        Err(error) if error.hresult == hresult::HRESULT_FILE_NOT_FOUND => return Ok(false),
        Err(error) => return Err(error),
    };
    check_opened_file(&file, path, Owners::MeOrRoot, what)?;
    Ok(true)
}

fn check_opened_file(file: &File, path: &Path, owners: Owners, what: &str) -> Result<()> {
    let metadata = file
        .metadata()
        .map_err(|error| io_failure(&format!("cannot inspect the {what}"), path, &error))?;
    if !metadata.is_file() {
        return Err(denied(format!(
            "refusing the {what} {}: it is not a regular file",
            path.display()
        )));
    }
    if !owners.allow(metadata.uid()) {
        return Err(foreign(path, metadata.uid(), what, path));
    }
    if metadata.mode() & GROUP_OR_OTHER_WRITE != 0 && owners == Owners::MeOrRoot {
        return Err(denied(format!(
            "refusing the {what} {}: others may write to it (mode {:04o})",
            path.display(),
            metadata.mode() & 0o7777
        )));
    }
    if metadata.nlink() > 1 {
        return Err(denied(format!(
            "refusing the {what} {}: it has {} hard links, so it is also another file",
            path.display(),
            metadata.nlink()
        )));
    }
    Ok(())
}

fn open_nofollow(path: &Path, flags: OFlags, what: &str) -> Result<File> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    let fd =
        rustix::fs::open(path, flags, Mode::from_raw_mode(PRIVATE_FILE_MODE)).map_err(|errno| {
            let error = io::Error::from(errno);
            if errno == rustix::io::Errno::LOOP {
                denied(format!(
                    "refusing the {what} {}: it is a symbolic link",
                    path.display()
                ))
            } else {
                io_failure(&format!("cannot open the {what}"), path, &error)
            }
        })?;
    let file = File::from(fd);
    // O_NONBLOCK only kept a FIFO from blocking the open; reads and writes of a regular
    // file never block on it, but clear it so nothing downstream is surprised.
    let _ = rustix::fs::fcntl_setfl(
        &file,
        rustix::fs::fcntl_getfl(&file)
            .map_or(OFlags::empty(), |current| current - OFlags::NONBLOCK),
    );
    Ok(file)
}

fn open_dir_nofollow(dir: &Path, what: &str) -> Result<File> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::open(dir, flags, Mode::empty())
        .map(File::from)
        .map_err(|errno| {
            if matches!(errno, rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) {
                denied(format!(
                    "refusing the {what} {}: it is not a directory (a symbolic link or a file)",
                    dir.display()
                ))
            } else {
                io_failure(
                    &format!("cannot open the {what}"),
                    dir,
                    &io::Error::from(errno),
                )
            }
        })
}

fn absolute(path: &Path, what: &str) -> Result<()> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(QmgrError::invalid_arg(format!(
            "the {what} {} is not an absolute path",
            path.display()
        )))
    }
}

fn deepest_existing(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|ancestor| std::fs::symlink_metadata(ancestor).is_ok())
        .unwrap_or_else(|| Path::new("/"))
        .to_path_buf()
}

fn denied(description: String) -> QmgrError {
    QmgrError::new(
        hresult::E_ACCESSDENIED,
        ErrorContext::GeneralQueueManager,
        description,
    )
}

fn foreign(found: &Path, owner: u32, what: &str, path: &Path) -> QmgrError {
    foreign_of(found, owner, effective_uid(), what, path)
}

fn foreign_of(found: &Path, owner: u32, expected: u32, what: &str, path: &Path) -> QmgrError {
    let whose = if found == path {
        String::new()
    } else {
        format!(" because {} on its way", found.display())
    };
    denied(format!(
        "refusing the {what} {}{whose}: it belongs to {}, but qmgr expects uid {expected}; \
         qmgr never uses another user's files (did `sudo -E` or `sudo` keep the caller's \
         HOME or XDG_* variables? then give root its own, e.g. `sudo -H`)",
        path.display(),
        describe_uid(owner),
    ))
}

/// `uid 1000 (ann)`, or `uid 1000` when the name is unknown.
pub fn describe_uid(uid: u32) -> String {
    match user_name(uid) {
        Some(name) => format!("uid {uid} ({name})"),
        None => format!("uid {uid}"),
    }
}

fn user_name(uid: u32) -> Option<String> {
    crate::passwd::account_of(uid).map(|account| account.name)
}

fn io_failure(doing: &str, path: &Path, error: &io::Error) -> QmgrError {
    let code = match error.kind() {
        io::ErrorKind::PermissionDenied => hresult::E_ACCESSDENIED,
        io::ErrorKind::NotFound => hresult::HRESULT_FILE_NOT_FOUND,
        _ => hresult::E_FAIL,
    };
    QmgrError::new(
        code,
        ErrorContext::GeneralQueueManager,
        format!("{doing} {}: {error}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmgr_tests::users::OtherUser;
    use std::os::unix::fs::symlink;

    fn mode_of(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn private_dirs_are_created_0700_with_their_parents() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("state/qmgr");
        prepare_private_dir(&dir, "state directory").unwrap();
        assert_eq!(mode_of(&root.path().join("state")), 0o700);
        assert_eq!(mode_of(&dir), 0o700);
    }

    #[test]
    fn a_readable_dir_of_ours_is_made_private_but_a_writable_one_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o755);
        prepare_private_dir(&dir, "state directory").unwrap();
        assert_eq!(mode_of(&dir), 0o700);

        chmod(&dir, 0o777);
        let error = prepare_private_dir(&dir, "state directory").unwrap_err();
        assert_eq!(error.hresult, hresult::E_ACCESSDENIED);
        assert!(error.description.contains("others may write"), "{error}");
        assert_eq!(
            mode_of(&dir),
            0o777,
            "a refused directory is left as it was"
        );
    }

    #[test]
    fn a_writable_directory_on_the_way_is_refused_unless_sticky() {
        let root = tempfile::tempdir().unwrap();
        let shared = root.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        chmod(&shared, 0o777);
        let dir = shared.join("state");
        let error = prepare_private_dir(&dir, "state directory").unwrap_err();
        assert_eq!(error.hresult, hresult::E_ACCESSDENIED);
        assert!(
            error.description.contains(&shared.display().to_string()),
            "{error}"
        );
        assert!(
            !dir.exists(),
            "nothing is created under a refused directory"
        );

        chmod(&shared, 0o1777);
        prepare_private_dir(&dir, "state directory").unwrap();
    }

    #[test]
    fn symbolic_links_count_only_from_and_into_trusted_directories() {
        let root = tempfile::tempdir().unwrap();
        let real = root.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = root.path().join("link");
        symlink(&real, &link).unwrap();
        prepare_private_dir(&link.join("state"), "state directory").unwrap();
        assert!(real.join("state").is_dir());

        // The link leads into a directory others may write.
        chmod(&real, 0o777);
        let error = check_trusted_path(&link.join("state"), "state directory").unwrap_err();
        assert!(
            error.description.contains(&real.display().to_string()),
            "{error}"
        );

        // The state directory itself may not be a link.
        chmod(&real, 0o700);
        let state_link = root.path().join("state-link");
        symlink(real.join("state"), &state_link).unwrap();
        let error = prepare_private_dir(&state_link, "state directory").unwrap_err();
        assert!(error.description.contains("not a directory"), "{error}");
    }

    #[test]
    fn state_files_are_never_reached_through_links_and_are_made_0600() {
        let root = tempfile::tempdir().unwrap();
        let victim = root.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = root.path().join("store.lock");
        symlink(&victim, &link).unwrap();
        for access in [Access::Read, Access::ReadWriteCreate, Access::AppendCreate] {
            let error = open_private_file(&link, access, "store lock").unwrap_err();
            assert_eq!(error.hresult, hresult::E_ACCESSDENIED);
            assert!(error.description.contains("symbolic link"), "{error}");
        }
        assert!(check_private_file_if_present(&link, "store file").is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

        let hard = root.path().join("hard");
        std::fs::hard_link(&victim, &hard).unwrap();
        let error = open_private_file(&hard, Access::Read, "store").unwrap_err();
        assert!(error.description.contains("hard links"), "{error}");

        let open = root.path().join("open");
        std::fs::write(&open, "").unwrap();
        chmod(&open, 0o644);
        check_private_file_if_present(&open, "store file").unwrap();
        assert_eq!(mode_of(&open), 0o600);
        check_private_file_if_present(&root.path().join("absent"), "store file").unwrap();
    }

    #[test]
    fn a_fifo_does_not_block_opening() {
        let root = tempfile::tempdir().unwrap();
        let fifo = root.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let error = open_private_file(&fifo, Access::Read, "store lock").unwrap_err();
        assert!(error.description.contains("not a regular file"), "{error}");
        let error = read_trusted_file(&fifo, "config file").unwrap_err();
        assert!(error.description.contains("not a regular file"), "{error}");
    }

    #[test]
    fn another_users_directory_and_files_are_refused_untouched() {
        let Some(user) = OtherUser::create("another_users_directory_and_files_are_refused") else {
            return;
        };
        let root = tempfile::tempdir().unwrap();
        chmod(root.path(), 0o755);
        let theirs = root.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        chmod(&theirs, 0o755);
        user.chown(&theirs).unwrap();

        let error = prepare_private_dir(&theirs, "state directory").unwrap_err();
        assert_eq!(error.hresult, hresult::E_ACCESSDENIED);
        assert!(
            error.description.contains(&format!("uid {}", user.uid())),
            "{error}"
        );
        assert!(error.description.contains(user.name()), "{error}");
        assert_eq!(mode_of(&theirs), 0o755, "their directory is not changed");
        // Under their directory nothing is created either.
        let below = theirs.join("qmgr");
        assert!(prepare_private_dir(&below, "state directory").is_err());
        assert!(!below.exists());

        // Their config file is not read, and neither is one in a directory of theirs.
        let config = root.path().join("config.toml");
        std::fs::write(&config, "max_background_jobs = 3\n").unwrap();
        user.chown(&config).unwrap();
        let error = read_trusted_file(&config, "config file").unwrap_err();
        assert!(error.description.contains(user.name()), "{error}");
        let error = read_trusted_file(&theirs.join("config.toml"), "config file").unwrap_err();
        assert!(error.description.contains("on its way"), "{error}");
        // A file of ours that others may write is not read either.
        let writable = root.path().join("writable.toml");
        std::fs::write(&writable, "").unwrap();
        chmod(&writable, 0o666);
        assert!(read_trusted_file(&writable, "config file").is_err());

        // A state file of theirs in our directory is refused, not made ours.
        let mine = root.path().join("mine");
        prepare_private_dir(&mine, "state directory").unwrap();
        let wal = mine.join("qmgr.sqlite3-wal");
        std::fs::write(&wal, "").unwrap();
        user.chown(&wal).unwrap();
        let error = check_private_file_if_present(&wal, "store file").unwrap_err();
        assert!(error.description.contains(user.name()), "{error}");
    }
}
