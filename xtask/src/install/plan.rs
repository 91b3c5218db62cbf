//! What an installation consists of, independent of where it goes: a list of entries
//! (a file copied or written, or a symbolic link) with paths relative to the prefix. The
//! same plan is written under a prefix by `cargo xtask install` and into the package tree
//! by `cargo xtask deb`.
//!
//! An install under a prefix also writes a manifest, `share/qmgr/install-manifest.txt`,
//! naming every file and link it wrote and every directory it had to create, so that
//! `cargo xtask uninstall` removes exactly those (a directory only once it is empty) and
//! nothing else.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Where the manifest lives, relative to the prefix.
pub const MANIFEST: &str = "share/qmgr/install-manifest.txt";

const MANIFEST_HEADER: &str = "# qmgr install manifest: what `cargo xtask install` wrote under this prefix \
     (f: file, l: symbolic link, d: directory it created).\n\
     # `cargo xtask uninstall` removes these and nothing else.\n";

/// Where an entry's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A file of the build, copied.
    Copy(PathBuf),
    /// Text made by the installer (a unit, a pkg-config file, a generated page).
    Bytes(Vec<u8>),
    /// A symbolic link with this target.
    Symlink(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the prefix, without `..`.
    pub path: PathBuf,
    pub content: Content,
    /// Permission bits of a file (ignored for links).
    pub mode: u32,
}

/// Every entry of an installation, in the order they are written.
#[derive(Debug, Default, Clone)]
pub struct Plan {
    pub entries: Vec<Entry>,
}

impl Plan {
    pub fn copy(&mut self, from: impl Into<PathBuf>, to: impl Into<PathBuf>, mode: u32) {
        self.push(to.into(), Content::Copy(from.into()), mode);
    }

    pub fn bytes(&mut self, to: impl Into<PathBuf>, content: impl Into<Vec<u8>>, mode: u32) {
        self.push(to.into(), Content::Bytes(content.into()), mode);
    }

    pub fn symlink(&mut self, to: impl Into<PathBuf>, target: impl Into<String>) {
        self.push(to.into(), Content::Symlink(target.into()), 0o777);
    }

    fn push(&mut self, path: PathBuf, content: Content, mode: u32) {
        assert!(
            is_inside(&path),
            "{} must be a relative path inside the prefix",
            path.display()
        );
        self.entries.retain(|entry| entry.path != path);
        self.entries.push(Entry {
            path,
            content,
            mode,
        });
    }

    /// The paths of the plan, for lookups.
    pub fn paths(&self) -> BTreeSet<&Path> {
        self.entries
            .iter()
            .map(|entry| entry.path.as_path())
            .collect()
    }

    /// Writes every entry under `root` (the prefix, or DESTDIR joined with it; created if
    /// missing) and returns the directories that had to be created, parents first, relative
    /// to `root` (`.` for `root` itself).
    pub fn write(&self, root: &Path) -> Result<Vec<PathBuf>> {
        let mut created = Vec::new();
        create_dirs(root, Path::new("."), &mut created)?;
        for entry in &self.entries {
            let to = root.join(&entry.path);
            if let Some(parent) = entry.path.parent() {
                create_dirs(root, parent, &mut created)?;
            }
            write_entry(entry, &to)?;
            println!("installed: {}", to.display());
        }
        Ok(created)
    }
}

/// Whether `path` is relative and stays inside the directory it is relative to.
fn is_inside(path: &Path) -> bool {
    !path.as_os_str().is_empty()
        && path
            .components()
            .all(|component| matches!(component, Component::Normal(_)))
}

/// `relative` under `root`, where `.` is `root` itself.
fn under(root: &Path, relative: &Path) -> PathBuf {
    if relative == Path::new(".") {
        root.to_path_buf()
    } else {
        root.join(relative)
    }
}

/// Creates `relative` (and its parents) under `root`, noting each directory it created.
fn create_dirs(root: &Path, relative: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    let mut missing = Vec::new();
    let mut current = Some(relative);
    while let Some(dir) = current {
        let absolute = under(root, dir);
        if absolute.is_dir() {
            break;
        }
        missing.push(dir.to_path_buf());
        if dir == Path::new(".") {
            break;
        }
        current = dir.parent().map(|parent| {
            if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            }
        });
    }
    for dir in missing.into_iter().rev() {
        let absolute = under(root, &dir);
        fs::create_dir_all(&absolute)
            .with_context(|| format!("cannot create {}", absolute.display()))?;
        created.push(dir);
    }
    Ok(())
}

/// Writes one entry through a temporary name beside it, so that a running program or a
/// library in use is replaced, not rewritten in place.
fn write_entry(entry: &Entry, to: &Path) -> Result<()> {
    let mut temporary = to.as_os_str().to_owned();
    temporary.push(".qmgr-new");
    let temporary = PathBuf::from(temporary);
    let _ = fs::remove_file(&temporary);
    match &entry.content {
        Content::Copy(from) => {
            fs::copy(from, &temporary).with_context(|| {
                format!("cannot copy {} to {}", from.display(), temporary.display())
            })?;
        }
        Content::Bytes(bytes) => fs::write(&temporary, bytes)
            .with_context(|| format!("cannot write {}", temporary.display()))?,
        Content::Symlink(target) => symlink(target, &temporary)
            .with_context(|| format!("cannot create the link {}", temporary.display()))?,
    }
    if !matches!(entry.content, Content::Symlink(_)) {
        fs::set_permissions(&temporary, fs::Permissions::from_mode(entry.mode))
            .with_context(|| format!("cannot set the mode of {}", temporary.display()))?;
    }
    fs::rename(&temporary, to).with_context(|| format!("cannot install {}", to.display()))
}

/// What a manifest records.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Files and links written, relative to the prefix.
    pub files: Vec<PathBuf>,
    /// Directories the installs created, parents first, relative to the prefix.
    pub created_dirs: Vec<PathBuf>,
}

impl Manifest {
    pub fn render(&self, plan: &Plan) -> String {
        let mut text = MANIFEST_HEADER.to_owned();
        for dir in &self.created_dirs {
            let _ = writeln!(text, "d {}", dir.display());
        }
        for entry in &plan.entries {
            let kind = if matches!(entry.content, Content::Symlink(_)) {
                'l'
            } else {
                'f'
            };
            let _ = writeln!(text, "{kind} {}", entry.path.display());
        }
        text
    }

    /// Reads a manifest, refusing any path that would leave the prefix.
    pub fn parse(text: &str) -> Result<Manifest> {
        let mut manifest = Manifest::default();
        for (number, line) in text.lines().enumerate() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (kind, path) = line
                .split_once(' ')
                .with_context(|| format!("line {}: {line:?} is not `KIND PATH`", number + 1))?;
            let path = PathBuf::from(path);
            let inside = path == Path::new(".") || is_inside(&path);
            if !inside {
                bail!(
                    "line {}: {} is not a path inside the prefix",
                    number + 1,
                    path.display()
                );
            }
            match kind {
                "f" | "l" if path != Path::new(".") => manifest.files.push(path),
                "d" => manifest.created_dirs.push(path),
                _ => bail!("line {}: unknown entry {line:?}", number + 1),
            }
        }
        Ok(manifest)
    }

    pub fn read(root: &Path) -> Result<Option<Manifest>> {
        let path = root.join(MANIFEST);
        match fs::read_to_string(&path) {
            Ok(text) => Manifest::parse(&text)
                .with_context(|| format!("{} is not a qmgr install manifest", path.display()))
                .map(Some),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
        }
    }
}

/// Installs `plan` under `root` with its manifest. A previous install's manifest is
/// honoured: directories it created stay recorded, and files it wrote that this plan no
/// longer has are removed.
pub fn install(plan: &Plan, root: &Path) -> Result<()> {
    let previous = Manifest::read(root)?.unwrap_or_default();
    let mut plan = plan.clone();
    // The manifest lists itself, so that uninstall removes it like any other file; its
    // text is filled in once the directories created are known.
    plan.bytes(MANIFEST, Vec::new(), 0o644);
    let created = plan.write(root)?;
    let planned = plan.paths();
    for stale in previous
        .files
        .iter()
        .filter(|path| !planned.contains(path.as_path()))
    {
        remove_file(&root.join(stale))?;
    }
    let mut created_dirs = previous.created_dirs.clone();
    for dir in created {
        if !created_dirs.contains(&dir) {
            created_dirs.push(dir);
        }
    }
    created_dirs.retain(|dir| under(root, dir).is_dir());
    let manifest = Manifest {
        files: Vec::new(),
        created_dirs,
    };
    let path = root.join(MANIFEST);
    fs::write(&path, manifest.render(&plan))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Removes what the manifest under `root` names: its files and links, the manifest, then
/// the directories the installs created, deepest first, each only if it is empty.
pub fn uninstall(root: &Path) -> Result<()> {
    let Some(manifest) = Manifest::read(root)? else {
        bail!(
            "nothing to uninstall: {} does not exist",
            root.join(MANIFEST).display()
        );
    };
    for file in &manifest.files {
        if file != Path::new(MANIFEST) {
            remove_file(&root.join(file))?;
        }
    }
    remove_file(&root.join(MANIFEST))?;
    for dir in manifest.created_dirs.iter().rev() {
        let path = under(root, dir);
        match fs::remove_dir(&path) {
            Ok(()) => println!("removed: {}/", path.display()),
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::NotFound | ErrorKind::DirectoryNotEmpty
                ) => {}
            Err(error) => {
                return Err(error).with_context(|| format!("cannot remove {}", path.display()));
            }
        }
    }
    Ok(())
}

/// Removes a file or a link (never what a link points to, never a directory); one that is
/// gone already is fine.
fn remove_file(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => {
            println!("kept: {} (a directory now)", path.display());
            Ok(())
        }
        Ok(_) => {
            fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
            println!("removed: {}", path.display());
            Ok(())
        }
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("cannot look at {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("qmgr-plan-{}-{label}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn sample_plan(source: &Path) -> Plan {
        fs::create_dir_all(source).unwrap();
        fs::write(source.join("program"), "#!/bin/sh\n").unwrap();
        let mut plan = Plan::default();
        plan.copy(source.join("program"), "bin/qmgr", 0o755);
        plan.bytes("share/man/man1/qmgr.1", ".TH qmgr 1\n", 0o644);
        plan.symlink("lib/libqmgr.so", "libqmgr.so.0");
        plan
    }

    /// Every path under `dir`, relative, sorted.
    fn tree(dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(current) = pending.pop() {
            for entry in fs::read_dir(&current).unwrap() {
                let path = entry.unwrap().path();
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
                if path.is_dir() && !path.is_symlink() {
                    pending.push(path);
                }
            }
        }
        found.sort();
        found
    }

    #[test]
    fn uninstall_removes_what_install_wrote_and_keeps_the_rest() {
        let base = scratch("roundtrip");
        let prefix = base.join("prefix");
        // A directory and a file that were there before stay.
        fs::create_dir_all(prefix.join("bin")).unwrap();
        fs::write(prefix.join("bin/other-tool"), "mine").unwrap();
        let plan = sample_plan(&base.join("source"));
        install(&plan, &prefix).unwrap();
        let mode = fs::metadata(prefix.join("bin/qmgr"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            fs::read_link(prefix.join("lib/libqmgr.so")).unwrap(),
            PathBuf::from("libqmgr.so.0")
        );
        let manifest = fs::read_to_string(prefix.join(MANIFEST)).unwrap();
        assert!(manifest.contains("\nf bin/qmgr\n"), "{manifest}");
        assert!(manifest.contains("\nl lib/libqmgr.so\n"), "{manifest}");
        assert!(manifest.contains("\nd share/man/man1\n"), "{manifest}");
        assert!(
            !manifest.contains("d bin\n"),
            "bin was there before: {manifest}"
        );
        // Installing again (an upgrade) keeps the record of what the first one created.
        install(&plan, &prefix).unwrap();
        // A file the user put in a directory the install created stays, and so does
        // that directory.
        fs::write(prefix.join("share/man/man1/notes.1"), "user's").unwrap();
        uninstall(&prefix).unwrap();
        assert_eq!(
            tree(&prefix),
            [
                "bin",
                "bin/other-tool",
                "share",
                "share/man",
                "share/man/man1",
                "share/man/man1/notes.1"
            ]
        );
        fs::remove_file(prefix.join("share/man/man1/notes.1")).unwrap();
        fs::remove_file(prefix.join("bin/other-tool")).unwrap();
        // Nothing is left to uninstall.
        assert!(uninstall(&prefix).is_err());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_prefix_the_install_created_goes_with_the_uninstall() {
        let base = scratch("created");
        let prefix = base.join("new/prefix");
        install(&sample_plan(&base.join("source")), &prefix).unwrap();
        uninstall(&prefix).unwrap();
        assert!(!prefix.exists());
        // Only the prefix and what is below it are the install's.
        assert!(base.join("new").is_dir());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_file_dropped_from_the_plan_is_removed_by_the_next_install() {
        let base = scratch("stale");
        let prefix = base.join("prefix");
        let mut plan = sample_plan(&base.join("source"));
        install(&plan, &prefix).unwrap();
        plan.entries
            .retain(|entry| entry.path != Path::new("share/man/man1/qmgr.1"));
        install(&plan, &prefix).unwrap();
        assert!(!prefix.join("share/man/man1/qmgr.1").exists());
        assert!(prefix.join("bin/qmgr").exists());
        uninstall(&prefix).unwrap();
        assert!(!prefix.exists());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_manifest_cannot_name_paths_outside_the_prefix() {
        for bad in [
            "f ../etc/passwd\n",
            "f /etc/passwd\n",
            "d ../..\n",
            "x bin/qmgr\n",
            "f\n",
        ] {
            assert!(Manifest::parse(bad).is_err(), "{bad:?}");
        }
        let manifest = Manifest::parse("# comment\nd .\nd bin\nf bin/qmgr\nl lib/x\n").unwrap();
        assert_eq!(
            manifest.created_dirs,
            [PathBuf::from("."), PathBuf::from("bin")]
        );
        assert_eq!(
            manifest.files,
            [PathBuf::from("bin/qmgr"), PathBuf::from("lib/x")]
        );
    }

    #[test]
    #[should_panic(expected = "inside the prefix")]
    fn a_plan_refuses_paths_outside_the_prefix() {
        Plan::default().bytes("../outside", "x", 0o644);
    }
}
