//! A file of a job, and the rules for the names a caller may give it.

use std::path::Path;

use crate::error::{QmgrError, Result};
use crate::ranges::FileRange;

/// `BG_SIZE_UNKNOWN`: the size BITS reports until the server told it.
pub const SIZE_UNKNOWN: u64 = u64::MAX;

/// Longest remote name Windows accepts (BG_FILE_INFO), in characters.
pub const MAX_REMOTE_NAME_CHARS: usize = 2200;
/// Longest local path Linux accepts (PATH_MAX, including the terminating NUL).
pub const MAX_LOCAL_NAME_BYTES: usize = 4095;

/// What tells two versions of a remote file apart: the server's entity tag and modification
/// date as it sent them. A resumed transfer must see the same; for `file` sources the entity
/// tag is made from the inode, size and modification time, for ftp only the date is known.
/// Boxed strings: every file record holds one, and a `String`'s spare capacity field would
/// cost each of them 16 bytes for nothing (they are never appended to).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct Validator {
    pub etag: Option<Box<str>>,
    pub last_modified: Option<Box<str>>,
}

impl Validator {
    /// The entity tag if it is a strong one: only those may be used with `If-Range`.
    pub fn strong_etag(&self) -> Option<&str> {
        self.etag.as_deref().filter(|tag| !tag.starts_with("W/"))
    }

    /// The value for `If-Range`: the strong entity tag, else the modification date.
    pub fn if_range(&self) -> Option<&str> {
        self.strong_etag().or(self.last_modified.as_deref())
    }

    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }

    /// Whether `received` proves the content is not the one this validator was taken from.
    /// Validators that cannot be compared prove nothing.
    pub fn differs_from(&self, received: &Validator) -> bool {
        if let (Some(ours), Some(theirs)) = (self.etag.as_deref(), received.etag.as_deref()) {
            return ours != theirs;
        }
        match (
            self.last_modified.as_deref(),
            received.last_modified.as_deref(),
        ) {
            (Some(ours), Some(theirs)) => ours != theirs,
            _ => false,
        }
    }
}

/// The umask of the calling process, read from `/proc/self/status` (`Umask:`) rather than
/// with umask(2), which can only read it by changing it and so races with other threads of
/// the process creating files. `None` if the kernel does not say.
pub fn process_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_umask(&status)
}

/// The `Umask:` value (octal) of a `/proc/<pid>/status` text.
fn parse_status_umask(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Umask:"))
        .and_then(|value| u32::from_str_radix(value.trim(), 8).ok())
        .filter(|umask| *umask <= 0o777)
}

/// Temporary files are `.BIT<16 hex digits>.tmp`, hidden beside their local name.
pub const TEMP_NAME_PREFIX: &str = ".BIT";
/// See [`TEMP_NAME_PREFIX`].
pub const TEMP_NAME_SUFFIX: &str = ".tmp";

/// Whether a file name has the shape of qmgr's temporary files.
pub fn is_temp_file_name(name: &std::ffi::OsStr) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let name = name.as_bytes();
    name.len() > TEMP_NAME_PREFIX.len() + TEMP_NAME_SUFFIX.len()
        && name.starts_with(TEMP_NAME_PREFIX.as_bytes())
        && name.ends_with(TEMP_NAME_SUFFIX.as_bytes())
        && !name.contains(&b'/')
}

/// Where the upload of a file stands, as the server last acknowledged it: what lets an
/// upload resume after a drop or a restart without resending what the server holds, and
/// tell whether the source changed meanwhile.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UploadRecord {
    /// The server's session (`BITS-Session-Id`), echoed verbatim; `None` before
    /// Create-Session or after the server forgot it.
    pub session: Option<String>,
    /// The next byte to send: what the server said it holds.
    pub offset: u64,
    /// `BITS-Host-Id`: the host the rest of the session goes to.
    pub host: Option<String>,
    pub host_fallback_secs: Option<u64>,
    /// The fragment size the server accepted (after any 413).
    pub fragment_bytes: u64,
    /// Close-Session was acknowledged: the server has the file.
    pub closed: bool,
    /// The hash of the source's bytes `0..offset`: a resumed upload whose source hashes
    /// otherwise stops with `BG_E_LOCAL_FILE_CHANGED`.
    #[serde(default)]
    pub sent_hash: Option<u64>,
    /// The source as it was when the file was added: a source that differs later is a
    /// changed file (`BG_E_LOCAL_FILE_CHANGED`), never a spliced upload.
    pub source: SourceIdentity,
}

/// What tells one version of a local file from another without reading it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceIdentity {
    pub size: u64,
    pub modified_ns: i128,
    pub inode: u64,
    pub device: u64,
}

impl SourceIdentity {
    /// The identity of the file at `path` (followed if a symlink: the content is what
    /// counts).
    pub fn of(path: &Path) -> std::io::Result<SourceIdentity> {
        Ok(SourceIdentity::of_status(&std::fs::metadata(path)?))
    }

    /// The identity of a file already opened (its `fstat`).
    pub fn of_status(status: &std::fs::Metadata) -> SourceIdentity {
        use std::os::unix::fs::MetadataExt;
        SourceIdentity {
            size: status.len(),
            modified_ns: i128::from(status.mtime()) * 1_000_000_000
                + i128::from(status.mtime_nsec()),
            inode: status.ino(),
            device: status.dev(),
        }
    }
}

/// One file of a job.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileRecord {
    pub remote_name: String,
    /// Absolute path the file gets on Complete.
    pub local_name: String,
    /// The partial download beside `local_name`, once the transfer started.
    pub temp_name: Option<String>,
    /// `SIZE_UNKNOWN` until the server says.
    pub bytes_total: u64,
    pub bytes_transferred: u64,
    pub completed: bool,
    pub validator: Validator,
    /// IBackgroundCopyFile3::SetValidationState(TRUE): the application checked the content
    /// (Complete counts as that too).
    #[serde(default)]
    pub validated: bool,
    /// The bytes of the remote file this file is made of, in the order given
    /// (AddFileWithRanges); empty for the whole file. Fixed once the file is added.
    pub ranges: Vec<FileRange>,
    /// An upload job's file: where its upload stands (`None` for downloads).
    #[serde(default)]
    pub upload: Option<Box<UploadRecord>>,
    /// For a file of an ON_DEMAND_MODE job: which bytes are in the temporary file and which
    /// are asked for (empty otherwise).
    #[serde(default)]
    pub on_demand: crate::on_demand::OnDemandFile,
}

impl FileRecord {
    pub fn new(remote_name: &str, local_name: &str) -> Self {
        Self {
            remote_name: remote_name.to_owned(),
            local_name: local_name.to_owned(),
            temp_name: None,
            bytes_total: SIZE_UNKNOWN,
            bytes_transferred: 0,
            completed: false,
            validator: Validator::default(),
            validated: false,
            ranges: Vec::new(),
            upload: None,
            on_demand: crate::on_demand::OnDemandFile::default(),
        }
    }

    /// A file of only `ranges` of the remote file (none: the whole file). Its size is
    /// known from the start unless a range runs to the end of the remote file.
    pub fn with_ranges(remote_name: &str, local_name: &str, ranges: Vec<FileRange>) -> Self {
        let mut file = Self::new(remote_name, local_name);
        if !ranges.is_empty() {
            file.bytes_total = crate::ranges::local_total(&ranges, None).unwrap_or(SIZE_UNKNOWN);
        }
        file.ranges = ranges;
        file
    }
}

impl FileRecord {
    /// Checks the paths of a file read back from the store before anything uses them: the
    /// local name is a valid absolute path, and a temporary name has qmgr's shape and sits
    /// in the local name's directory. Whatever fails this is never renamed, opened or
    /// deleted: a store is only as trustworthy as whoever could write it.
    pub fn check_stored_paths(&self) -> Result<()> {
        validate_local_name(&self.local_name)?;
        let local = Path::new(&self.local_name);
        if local
            .components()
            .any(|part| matches!(part, std::path::Component::ParentDir))
        {
            return Err(QmgrError::invalid_arg(format!(
                "the stored local name {:?} contains \"..\"",
                self.local_name
            )));
        }
        let Some(temp) = &self.temp_name else {
            return Ok(());
        };
        let temp = Path::new(temp);
        let beside_local = temp.parent().is_some_and(|dir| Some(dir) == local.parent());
        let shaped = temp.file_name().is_some_and(is_temp_file_name);
        if temp.is_absolute() && beside_local && shaped && !temp.as_os_str().is_empty() {
            Ok(())
        } else {
            Err(QmgrError::invalid_arg(format!(
                "the stored temporary name {} is not a qmgr temporary file (.BIT*.tmp) \
                 beside the local name {:?}",
                temp.display(),
                self.local_name
            )))
        }
    }
}

/// The URL schemes qmgr transfers; anything else is `E_INVALIDARG` (DESIGN.md, Decisions).
pub const SCHEMES: [&str; 5] = ["http", "https", "ftp", "ftps", "file"];

/// Byte ranges come over http and https only: any other remote name of a ranged file is
/// `E_INVALIDARG`.
pub fn check_ranged_remote_name(name: &str) -> Result<()> {
    let http = ["http://", "https://"].iter().any(|scheme| {
        name.get(..scheme.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(scheme))
    });
    if http {
        Ok(())
    } else {
        Err(QmgrError::invalid_arg(format!(
            "{name}: byte ranges can be downloaded over http and https only"
        )))
    }
}

/// Checks a remote name: an http, https, ftp, ftps or file URL, or an absolute local path
/// (a local or mounted file, as Windows takes `C:\dir\file`).
pub fn validate_remote_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(QmgrError::invalid_arg("the remote name is empty"));
    }
    // Windows counts UTF-16 code units; so a name is at most 3 bytes a character here.
    // (An ASCII name, the usual one, has as many as it has bytes.)
    let chars = if name.is_ascii() {
        name.len()
    } else {
        name.encode_utf16().count()
    };
    if chars > MAX_REMOTE_NAME_CHARS {
        return Err(QmgrError::invalid_arg(format!(
            "the remote name is {chars} characters long; the limit is {MAX_REMOTE_NAME_CHARS}"
        )));
    }
    if let Some(bad) = name.chars().find(|c| c.is_control()) {
        return Err(QmgrError::invalid_arg(format!(
            "the remote name {name:?} contains the control character U+{:04X}",
            u32::from(bad)
        )));
    }
    if name.starts_with('/') {
        return Ok(());
    }
    let Some((scheme, rest)) = name.split_once("://") else {
        return Err(QmgrError::invalid_arg(format!(
            "the remote name {name:?} is neither a URL (http, https, ftp, ftps, file) nor an absolute path"
        )));
    };
    let scheme = scheme.to_ascii_lowercase();
    if !SCHEMES.contains(&scheme.as_str()) {
        return Err(QmgrError::invalid_arg(format!(
            "the remote name {name:?} uses the unsupported scheme {scheme:?}; qmgr transfers http, https, ftp, ftps and file"
        )));
    }
    // The transfer engine hands URLs to curl as written, so what it would refuse is
    // refused here, at the call, rather than by a job in ERROR later.
    if name.contains(' ') {
        return Err(QmgrError::invalid_arg(format!(
            "the URL {name:?} contains a space, which a URL may not hold unencoded (write %20)"
        )));
    }
    if scheme == "file" {
        if !rest.starts_with('/') {
            return Err(QmgrError::invalid_arg(format!(
                "the file URL {name:?} must name an absolute path"
            )));
        }
        let path = rest.split(['?', '#']).next().unwrap_or_default();
        check_percent_escapes(path).map_err(|why| {
            QmgrError::invalid_arg(format!("the file URL {name:?} is not usable: {why}"))
        })?;
    } else {
        // The host follows any `user:password@`; a port alone is no host.
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority.rsplit('@').next().unwrap_or_default();
        if host.is_empty() || host.starts_with(':') {
            return Err(QmgrError::invalid_arg(format!(
                "the URL {name:?} has no host"
            )));
        }
    }
    Ok(())
}

/// A file URL's path is read with its `%XX` escapes decoded: each must be two hex digits,
/// and none may be a NUL (no path holds one).
fn check_percent_escapes(path: &str) -> std::result::Result<(), String> {
    let bytes = path.as_bytes();
    for (at, _) in path.match_indices('%') {
        let escape = bytes
            .get(at + 1..at + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match escape {
            None => return Err(format!("bad percent escape at byte {at} of its path")),
            Some(0) => return Err("its path holds an encoded NUL (%00)".to_owned()),
            Some(_) => {}
        }
    }
    Ok(())
}

/// Checks a local name: an absolute path, no NUL, not longer than PATH_MAX, naming a file
/// (not ending in `/`).
pub fn validate_local_name(name: &str) -> Result<()> {
    if !Path::new(name).is_absolute() {
        return Err(QmgrError::invalid_arg(format!(
            "the local name {name:?} is not an absolute path"
        )));
    }
    if name.contains('\0') {
        return Err(QmgrError::invalid_arg(format!(
            "the local name {name:?} contains a NUL character"
        )));
    }
    if name.len() > MAX_LOCAL_NAME_BYTES {
        return Err(QmgrError::invalid_arg(format!(
            "the local name is {} bytes long; the limit is {MAX_LOCAL_NAME_BYTES}",
            name.len()
        )));
    }
    if name.ends_with('/') {
        return Err(QmgrError::invalid_arg(format!(
            "the local name {name:?} names a directory, not a file"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hresult;

    #[test]
    fn the_umask_is_read_from_the_status_text() {
        let status = "Name:\tqmgr\nUmask:\t0027\nState:\tR (running)\n";
        assert_eq!(parse_status_umask(status), Some(0o027));
        assert_eq!(parse_status_umask("Name:\tx\n"), None);
        assert_eq!(parse_status_umask("Umask:\tzz\n"), None);
        assert!(
            process_umask().is_some(),
            "Linux reports Umask in /proc/self/status"
        );
    }

    #[test]
    fn stored_paths_must_be_a_local_name_and_a_temp_file_beside_it() {
        let mut file = FileRecord::new("http://h/f", "/home/ann/f.iso");
        assert!(file.check_stored_paths().is_ok());
        file.temp_name = Some("/home/ann/.BIT0123456789abcdef.tmp".into());
        assert!(file.check_stored_paths().is_ok());
        for bad_temp in [
            "/etc/shadow",
            "/home/ann/../ann/.BIT0123456789abcdef.tmp",
            "/tmp/.BIT0123456789abcdef.tmp",
            "home/ann/.BIT0123456789abcdef.tmp",
            "/home/ann/.BIT.tmp",
            "/home/ann/sub/.BIT0123456789abcdef.tmp",
        ] {
            file.temp_name = Some(bad_temp.into());
            let error = file.check_stored_paths().unwrap_err();
            assert_eq!(error.hresult, hresult::E_INVALIDARG, "{bad_temp}");
        }
        for bad_local in ["relative/f", "/home/ann/../../etc/passwd", "/home/ann/"] {
            let file = FileRecord::new("http://h/f", bad_local);
            assert!(file.check_stored_paths().is_err(), "{bad_local}");
        }
    }

    #[test]
    fn if_range_prefers_a_strong_etag() {
        let both = Validator {
            etag: Some("\"v1\"".into()),
            last_modified: Some("Sun, 06 Nov 1994 08:49:37 GMT".into()),
        };
        assert_eq!(both.if_range(), Some("\"v1\""));
        let weak = Validator {
            etag: Some("W/\"v1\"".into()),
            ..both.clone()
        };
        assert_eq!(weak.if_range(), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
        assert_eq!(Validator::default().if_range(), None);
    }

    #[test]
    fn validators_differ_only_when_they_prove_it() {
        let v1 = Validator {
            etag: Some("\"v1\"".into()),
            last_modified: None,
        };
        let v2 = Validator {
            etag: Some("\"v2\"".into()),
            last_modified: None,
        };
        assert!(v1.differs_from(&v2));
        assert!(!v1.differs_from(&v1.clone()));
        let dated = Validator {
            etag: None,
            last_modified: Some("a".into()),
        };
        assert!(!dated.differs_from(&Validator::default()));
        assert!(dated.differs_from(&Validator {
            etag: None,
            last_modified: Some("b".into())
        }));
    }

    #[test]
    fn supported_remote_names_are_accepted() {
        for name in [
            "http://example.com/a",
            "HTTPS://example.com:8443/a?b=c",
            "ftp://host/file",
            "ftps://host/file",
            "file:///tmp/x",
            "file:///tmp/a%20b",
            "http://user:pw@example.com/a",
            "/srv/mirror/file.iso",
            "/srv/mirror/a b.iso",
        ] {
            validate_remote_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn unsupported_or_malformed_remote_names_are_invalid_args() {
        for name in [
            "",
            "gopher://host/x",
            "example.com/file",
            "relative/path",
            "http://",
            "http:///path",
            "file://relative",
            "http://host/a\r\nInjected: 1",
            // What the transfer engine refuses is refused at the call (found by fuzzing:
            // these were accepted, and their jobs failed at the first transfer).
            "http://user@/a",
            "http://:80/a",
            "http://host/a b",
            "file:///%zz",
            "file:///a%00b",
        ] {
            let error = validate_remote_name(name).unwrap_err();
            assert_eq!(error.hresult, hresult::E_INVALIDARG, "{name:?}");
        }
        let long = format!("http://host/{}", "a".repeat(MAX_REMOTE_NAME_CHARS));
        assert!(validate_remote_name(&long).is_err());
    }

    #[test]
    fn local_names_must_be_absolute_file_paths() {
        validate_local_name("/home/u/file.bin").unwrap();
        for name in ["file.bin", "./file", "", "/tmp/dir/", "/tmp/a\0b"] {
            assert_eq!(
                validate_local_name(name).unwrap_err().hresult,
                hresult::E_INVALIDARG,
                "{name:?}"
            );
        }
        assert!(validate_local_name(&format!("/{}", "a".repeat(MAX_LOCAL_NAME_BYTES))).is_err());
    }
}
