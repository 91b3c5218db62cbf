//! From a request's URL path to the directory and name an upload is published under, and
//! the file operations on them. A name never leaves its location's directory: `..`,
//! empty and hidden-reserved components are refused, and every directory below the
//! location's is opened without following symlinks.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use http::StatusCode;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

use crate::protocol::{Refusal, code};

/// The longest component Linux takes (NAME_MAX).
const MAX_COMPONENT_BYTES: usize = 255;
/// Partial uploads live beside their destination under this hidden prefix; no upload may
/// be named with it.
pub const PART_PREFIX: &str = ".bits-";
/// Mode of a published file (before the server's umask).
const PUBLISHED_MODE: u32 = 0o644;
/// How many `name-N.ext` a keep-both location tries before it gives up.
const MAX_KEEP_BOTH_SUFFIX: u32 = 10_000;

/// Where an upload goes: directories under the location's directory, then the file name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Destination {
    pub dirs: Vec<String>,
    pub name: String,
}

impl Destination {
    /// The destination of `rest` (the URL path after the location's prefix, still
    /// percent-encoded), under `user`'s directory when the location has one per user.
    pub fn parse(rest: &str, user: Option<&str>) -> Result<Destination, Refusal> {
        let decoded = percent_decode(rest)
            .ok_or_else(|| Refusal::bad_request(format!("{rest:?} is not a valid URL path")))?;
        let mut parts: Vec<String> = decoded.split('/').map(str::to_owned).collect();
        let name = parts.pop().unwrap_or_default();
        if name.is_empty() {
            return Err(Refusal::bad_request(format!(
                "{rest:?} names a directory, not a file"
            )));
        }
        let mut dirs = Vec::with_capacity(parts.len() + 1);
        if let Some(user) = user {
            dirs.push(user.to_owned());
        }
        dirs.extend(parts);
        for part in dirs.iter().chain([&name]) {
            check_component(part)?;
        }
        Ok(Destination { dirs, name })
    }

    /// Opens the destination's directory below `root`, following no symlink below it.
    pub fn open_dir(&self, root: &Path) -> Result<OwnedFd, Refusal> {
        let mut dir = rustix::fs::open(
            root,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|error| {
            io_refusal(
                error,
                &format!("cannot open the location {}", root.display()),
            )
        })?;
        for part in &self.dirs {
            dir = rustix::fs::openat(
                &dir,
                part.as_str(),
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::empty(),
            )
            .map_err(|error| io_refusal(error, &format!("directory {part:?}")))?;
        }
        Ok(dir)
    }

    /// Whether the destination file exists (as anything, a dangling symlink included).
    pub fn exists_in(&self, dir: &OwnedFd) -> Result<bool, Refusal> {
        match rustix::fs::statat(dir, self.name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(status) if FileType::from_raw_mode(status.st_mode) == FileType::Directory => Err(
                Refusal::bad_request(format!("{:?} is a directory", self.name)),
            ),
            Ok(_) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(error) => Err(io_refusal(error, &format!("file {:?}", self.name))),
        }
    }
}

/// A session's partial upload in the destination directory.
pub fn part_name(session: &str) -> String {
    format!("{PART_PREFIX}{}.part", crate::session::session_hex(session))
}

/// Creates a session's partial file, new and private until it is published.
pub fn create_part(dir: &OwnedFd, part: &str) -> Result<File, Refusal> {
    let fd = rustix::fs::openat(
        dir,
        part,
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|error| io_refusal(error, &format!("cannot create {part:?}")))?;
    Ok(File::from(fd))
}

/// Opens an existing partial file to add to it; its length is what the server holds.
pub fn open_part(dir: &OwnedFd, part: &str) -> io::Result<File> {
    let fd = rustix::fs::openat(
        dir,
        part,
        OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// Deletes a partial file; one already gone is not an error.
pub fn remove_part(dir: &OwnedFd, part: &str) -> io::Result<()> {
    match rustix::fs::unlinkat(dir, part, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// What a publication did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Published {
    /// The file is in place under this name.
    As(String),
    /// The destination exists and the location refuses to replace it.
    Exists,
}

/// Moves a complete partial file onto its destination: synced first, made readable, then
/// renamed in one step (so no reader ever sees half a file) and the directory synced.
pub fn publish(
    dir: &OwnedFd,
    part: &str,
    part_file: &File,
    name: &str,
    overwrite: crate::config::Overwrite,
) -> io::Result<Published> {
    use crate::config::Overwrite;

    part_file.sync_all()?;
    rustix::fs::fchmod(part_file, Mode::from_raw_mode(PUBLISHED_MODE))?;
    let published = match overwrite {
        Overwrite::Replace => {
            rustix::fs::renameat(dir, part, dir, name)?;
            Published::As(name.to_owned())
        }
        Overwrite::Refuse => {
            if rename_new(dir, part, name)? {
                Published::As(name.to_owned())
            } else {
                Published::Exists
            }
        }
        Overwrite::KeepBoth => {
            let mut published = None;
            for candidate in std::iter::once(name.to_owned())
                .chain((1..=MAX_KEEP_BOTH_SUFFIX).map(|n| suffixed(name, n)))
            {
                if rename_new(dir, part, &candidate)? {
                    published = Some(Published::As(candidate));
                    break;
                }
            }
            published.unwrap_or(Published::Exists)
        }
    };
    rustix::fs::fsync(dir)?;
    Ok(published)
}

/// Renames without replacing: `false` when the name is taken.
fn rename_new(dir: &OwnedFd, from: &str, to: &str) -> io::Result<bool> {
    match rustix::fs::renameat_with(dir, from, dir, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(true),
        Err(Errno::EXIST) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// `report.txt` → `report-2.txt`; `archive` → `archive-2`; `.profile` → `.profile-2`.
fn suffixed(name: &str, number: u32) -> String {
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{}-{number}{}", &name[..dot], &name[dot..]),
        _ => format!("{name}-{number}"),
    }
}

fn check_component(part: &str) -> Result<(), Refusal> {
    let refuse = |why: &str| {
        Err(Refusal::bad_request(format!(
            "path component {part:?}: {why}"
        )))
    };
    if part.is_empty() {
        return refuse("empty");
    }
    if part == "." || part == ".." {
        return refuse("not a name");
    }
    if part.len() > MAX_COMPONENT_BYTES {
        return refuse("longer than 255 bytes");
    }
    if part.contains(['\0', '\\']) {
        return refuse("contains NUL or a backslash");
    }
    if part.starts_with(PART_PREFIX) {
        return refuse("names the server's partial files");
    }
    Ok(())
}

/// Decodes `%XX` escapes; `None` for a broken escape or a result that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The answer to a failed file operation: a missing directory is 404, a symlink or a
/// non-directory on the way 403, a full disk the BITS disk-full error.
pub fn io_refusal(error: Errno, what: &str) -> Refusal {
    match error {
        Errno::NOENT => Refusal::status_only(
            StatusCode::NOT_FOUND,
            format!("{what}: no such file or directory"),
        ),
        Errno::LOOP | Errno::NOTDIR | Errno::ACCESS | Errno::PERM => {
            Refusal::access_denied(format!("{what}: {error}"))
        }
        Errno::NOSPC | Errno::DQUOT => Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::DISK_FULL,
            format!("{what}: {error}"),
        ),
        _ => Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::E_FAIL,
            format!("{what}: {error}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_location() {
        let ok = Destination::parse("logs/2026/a%20b.txt", None).unwrap();
        assert_eq!(ok.dirs, ["logs", "2026"]);
        assert_eq!(ok.name, "a b.txt");
        let user = Destination::parse("x.bin", Some("alice")).unwrap();
        assert_eq!(user.dirs, ["alice"]);
        for bad in [
            "",
            "dir/",
            "../etc/passwd",
            "a/../../b",
            "a//b",
            "%2e%2e/x",
            "a%2fb/../c",
            "x%00",
            "a\\b",
            ".bits-1234.part",
            "%zz",
            "%ff%fe",
        ] {
            assert!(Destination::parse(bad, None).is_err(), "{bad:?} accepted");
        }
        assert!(Destination::parse("x", Some("..")).is_err());
    }

    #[test]
    fn keep_both_suffixes_go_before_the_extension() {
        assert_eq!(suffixed("report.txt", 2), "report-2.txt");
        assert_eq!(suffixed("archive.tar.gz", 1), "archive.tar-1.gz");
        assert_eq!(suffixed("README", 3), "README-3");
        assert_eq!(suffixed(".profile", 1), ".profile-1");
    }

    #[test]
    fn part_names_are_hidden_and_made_of_the_session_id() {
        assert_eq!(
            part_name("{C85B4E0A-9EB9-4114-BFA4-8A43B4710091}"),
            ".bits-c85b4e0a9eb94114bfa48a43b4710091.part"
        );
    }
}
