//! Where downloads go: file names from URLs, absolute paths, and the checks that catch a
//! bad destination before any job exists.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use qmgr_core::file::validate_remote_name;

use crate::failure::Failure;

/// One file to transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub remote: String,
    pub local: PathBuf,
}

/// Where `qmgr transfer` puts its files.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// `-o PATH`: the single URL goes here.
    File(&'a Path),
    /// `--dir DIR`: each URL goes here under its own name.
    Directory(&'a Path),
}

/// Works out each destination of URLs that passed [`check_remote`], made absolute against
/// `cwd`. Every problem is a usage error naming the URL or path.
pub fn plan(
    urls: &[String],
    target: Target<'_>,
    cwd: &Path,
    no_clobber: bool,
) -> Result<Vec<Planned>, Failure> {
    let planned: Vec<Planned> = match target {
        Target::File(path) => {
            let [url] = urls else {
                return Err(Failure::usage(format!(
                    "-o names one file but {} URLs were given; use --dir DIR for several",
                    urls.len()
                )));
            };
            let local = absolute(path, cwd);
            if local.is_dir() {
                return Err(Failure::usage(format!(
                    "{} is a directory; use --dir {} to download into it",
                    local.display(),
                    path.display()
                )));
            }
            vec![Planned {
                remote: url.clone(),
                local,
            }]
        }
        Target::Directory(dir) => {
            let dir = absolute(dir, cwd);
            urls.iter()
                .map(|url| {
                    let name = file_name_of(url).ok_or_else(|| {
                        Failure::usage(format!(
                            "cannot name a file after {url:?} (its path has no last segment); \
                             use -o PATH for it"
                        ))
                    })?;
                    Ok(Planned {
                        remote: url.clone(),
                        local: dir.join(name),
                    })
                })
                .collect::<Result<_, Failure>>()?
        }
    };
    let mut seen = HashSet::new();
    // Thousands of files usually share one directory: each directory is checked once.
    let mut directories_checked = HashSet::new();
    for file in &planned {
        // The names as written: every destination here is made the same way (`absolute`,
        // or a file name joined to one directory), so equal paths are equal bytes, which
        // hash far faster than a path's components.
        if !seen.insert(file.local.as_os_str()) {
            return Err(Failure::usage(format!(
                "two URLs would be saved as {}; download them separately with -o",
                file.local.display()
            )));
        }
        if directories_checked.insert(file.local.parent()) {
            check_directory(&file.local)?;
        }
    }
    if no_clobber {
        refuse_existing(planned.iter().map(|file| file.local.as_path()))?;
    }
    Ok(planned)
}

/// A usage error for a remote name the service would refuse, with a hint for local paths.
pub fn check_remote(url: &str) -> Result<(), Failure> {
    validate_remote_name(url).map_err(|error| {
        let hint = if url.contains("://") || url.starts_with('/') {
            ""
        } else {
            " (a local file needs an absolute path or a file:// URL)"
        };
        Failure::usage(format!("{}{hint}", error.description))
    })
}

/// `path` made absolute against `cwd`, with `.` components dropped (`..` stays: only the
/// file system knows where it leads through symlinks).
pub fn absolute(path: &Path, cwd: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    };
    joined
        .components()
        .filter(|part| *part != Component::CurDir)
        .collect()
}

/// The file name a URL's content gets in `--dir`: the last segment of its path,
/// percent-decoded; `None` if there is none or it is not a plain name.
pub fn file_name_of(url: &str) -> Option<String> {
    let path = match url.split_once("://") {
        Some((_, rest)) => {
            let rest = rest.split(['?', '#']).next().unwrap_or_default();
            // For file URLs the path starts right after "file://"; others have a host first.
            rest.find('/').map_or("", |slash| &rest[slash..])
        }
        None => url,
    };
    let segment = path.rsplit('/').next().unwrap_or_default();
    let name = percent_decode(segment).unwrap_or_else(|| segment.to_owned());
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\0'])
        && !name.chars().any(char::is_control);
    plain.then_some(name)
}

/// Decodes `%XX` escapes; `None` if an escape is malformed or the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// The directory a file goes into must exist and be writable (the service checks again).
pub fn check_directory(local: &Path) -> Result<(), Failure> {
    let dir = local.parent().unwrap_or(Path::new("/"));
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Failure::usage(format!(
                "cannot save {}: {} is not a directory",
                local.display(),
                dir.display()
            )));
        }
        Err(error) => {
            return Err(Failure::usage(format!(
                "cannot save {}: the directory {} cannot be used: {error}",
                local.display(),
                dir.display()
            )));
        }
    }
    rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).map_err(|error| {
        Failure::usage(format!(
            "cannot save {}: the directory {} is not writable ({error})",
            local.display(),
            dir.display()
        ))
    })
}

/// `--no-clobber`: a usage error naming every destination that already exists.
pub fn refuse_existing<'a>(locals: impl Iterator<Item = &'a Path>) -> Result<(), Failure> {
    let existing: Vec<String> = locals
        .filter(|local| local.symlink_metadata().is_ok())
        .map(|local| local.display().to_string())
        .collect();
    if existing.is_empty() {
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "--no-clobber: {} already exist{}: {}",
            if existing.len() == 1 {
                "this file"
            } else {
                "these files"
            },
            if existing.len() == 1 { "s" } else { "" },
            existing.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_come_from_the_last_path_segment() {
        for (url, name) in [
            ("http://host/dir/file.iso", Some("file.iso")),
            ("https://host/a/b.tar.gz?token=1#frag", Some("b.tar.gz")),
            ("http://host/my%20file.txt", Some("my file.txt")),
            ("file:///etc/hostname", Some("hostname")),
            ("/srv/mirror/pkg.deb", Some("pkg.deb")),
            ("ftp://host/pub/readme", Some("readme")),
            ("http://host/", None),
            ("http://host", None),
            ("http://host/dir/", None),
            ("http://host/..", None),
            ("http://host/a%2Fb", None),
            ("http://host/bad%zz", Some("bad%zz")),
        ] {
            assert_eq!(file_name_of(url).as_deref(), name, "{url}");
        }
    }

    #[test]
    fn relative_paths_are_taken_from_the_current_directory() {
        let cwd = Path::new("/home/ann");
        assert_eq!(
            absolute(Path::new("x.bin"), cwd),
            Path::new("/home/ann/x.bin")
        );
        assert_eq!(
            absolute(Path::new("./d/./x"), cwd),
            Path::new("/home/ann/d/x")
        );
        assert_eq!(absolute(Path::new("/tmp/x"), cwd), Path::new("/tmp/x"));
        assert_eq!(
            absolute(Path::new("../x"), cwd),
            Path::new("/home/ann/../x")
        );
    }

    #[test]
    fn plans_name_files_and_refuse_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let urls = vec!["http://h/a".to_owned(), "http://h/b".to_owned()];
        let planned = plan(&urls, Target::Directory(Path::new(".")), dir.path(), false).unwrap();
        assert_eq!(planned[1].local, dir.path().join("b"));

        let one = vec!["http://h/a".to_owned()];
        let error = plan(&urls, Target::File(Path::new("out")), dir.path(), false).unwrap_err();
        assert!(error.message.contains("--dir"), "{error}");
        let error = plan(&one, Target::File(Path::new(".")), dir.path(), false).unwrap_err();
        assert!(error.message.contains("is a directory"), "{error}");

        let twice = vec!["http://h/x/a".to_owned(), "http://h/y/a".to_owned()];
        let error = plan(&twice, Target::Directory(dir.path()), dir.path(), false).unwrap_err();
        assert!(error.message.contains("two URLs"), "{error}");

        let error = check_remote("relative/file").unwrap_err();
        assert!(error.message.contains("absolute path"), "{error}");

        let missing = dir.path().join("missing");
        let error = plan(&one, Target::Directory(&missing), dir.path(), false).unwrap_err();
        assert!(error.message.contains("cannot be used"), "{error}");
    }

    #[test]
    fn no_clobber_names_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"old").unwrap();
        let urls = vec!["http://h/a".to_owned(), "http://h/b".to_owned()];
        let error = plan(&urls, Target::Directory(dir.path()), dir.path(), true).unwrap_err();
        assert!(
            error
                .message
                .contains(&dir.path().join("a").display().to_string()),
            "{error}"
        );
        assert!(!error.message.contains("/b"), "{error}");
        plan(&urls, Target::Directory(dir.path()), dir.path(), false).unwrap();
    }
}
