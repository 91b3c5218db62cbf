//! `cargo xtask deb`: `target/debian/qmgr_VERSION_ARCH.deb`, built with dpkg-deb alone.
//!
//! The package holds what `cargo xtask install` writes (see [`crate::install::plan()`]), under
//! `/usr`: `qmgr` and `qmgrd` in `/usr/bin`, libqmgr in `/usr/lib/<multiarch>` with its
//! soname link, the development files (`libqmgr.so`, `libqmgr.a`, headers, pkg-config
//! files) in the same package, the manual pages (gzipped, as Debian's policy asks),
//! completions, and the systemd user unit in `/usr/lib/systemd/user`. Installing it
//! enables nothing: `postinst` says how a user starts the service.
//!
//! `Depends` is computed by dpkg-shlibdeps when it is installed (package dpkg-dev); without
//! it the package depends on [`FALLBACK_DEPENDS`], what the binaries need on Debian 12
//! (glibc's symbol versions and the unwinder).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::install::{self, Layout};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Depends when dpkg-shlibdeps is not there to compute it.
pub const FALLBACK_DEPENDS: &str = "libc6 (>= 2.34), libgcc-s1 (>= 4.2)";

const DESCRIPTION: &str = "\
Background Intelligent Transfer Service for Linux
 qmgr is a per-user queue of background transfers: programs hand it
 downloads and uploads, exit, and the transfers finish anyway, resuming
 after crashes and reboots, retrying through network trouble and
 using only idle bandwidth.
 .
 This package holds the qmgr command, the per-user service qmgrd (with a
 systemd user unit, not enabled), and libqmgr, the C library with the
 bits.h and qmgr.h interfaces of Windows' BITS, with its headers and
 pkg-config files.";

const POSTINST: &str = "#!/bin/sh
set -e
if [ \"$1\" = configure ]; then
    echo 'qmgr: qmgrd starts on demand. To run it at login (and resume jobs after a reboot),'
    echo 'qmgr: each user runs: systemctl --user enable --now qmgrd'
fi
";

/// Users who enabled the unit keep a link to it in their own systemd directory; removing
/// the package cannot reach into their homes, so it says what to do.
const PRERM: &str = "#!/bin/sh
set -e
if [ \"$1\" = remove ]; then
    echo 'qmgr: users who enabled the service should run: systemctl --user disable --now qmgrd'
fi
";

/// What lintian reports that is so on purpose.
const LINTIAN_OVERRIDES: &str = "\
# libcurl, OpenSSL and nghttp2 are built into qmgrd from source on purpose: the features
# qmgr needs (NTLM, the TLS context hook) are chosen at build time, and the package then
# needs no -dev packages or particular library versions.
qmgr: embedded-library curl [usr/bin/qmgrd]
# One package holds the commands, the library and its development files.
qmgr: package-name-doesnt-match-sonames libqmgr0
qmgr: link-to-shared-library-in-wrong-package *
";

/// libc-bin's trigger: the loader's cache learns about libqmgr.so.0.
const TRIGGERS: &str = "activate-noawait ldconfig\n";

pub fn run(args: &[String]) -> Result<()> {
    if let Some(unknown) = args.first() {
        bail!("`cargo xtask deb` takes no arguments (got {unknown:?})");
    }
    let build = install::build()?;
    let package = build_package(&build)?;
    println!("built {}", package.display());
    Ok(())
}

/// Where the packages go.
pub fn output_dir() -> PathBuf {
    crate::target_dir().join("debian")
}

/// Builds the package from `build` and returns its path.
pub fn build_package(build: &install::Build) -> Result<PathBuf> {
    let architecture = command_output("dpkg", &["--print-architecture"])?;
    let multiarch = multiarch()?;
    let layout = Layout {
        lib_dir: Path::new("lib").join(&multiarch),
        unit_dir: PathBuf::from("lib/systemd/user"),
    };
    let mut plan = install::plan(build, Path::new("/usr"), &layout)?;
    plan.bytes("share/doc/qmgr/copyright", copyright(), 0o644);
    plan.bytes("share/doc/qmgr/changelog.gz", gzip(&changelog()?)?, 0o644);
    plan.bytes("share/lintian/overrides/qmgr", LINTIAN_OVERRIDES, 0o644);
    let name = format!("qmgr_{VERSION}_{architecture}");
    let stage = output_dir().join(&name);
    let _ = fs::remove_dir_all(&stage);
    fs::create_dir_all(&stage).with_context(|| format!("cannot create {}", stage.display()))?;
    plan.write(&stage.join("usr"))?;
    compress_manual_pages(&stage.join("usr/share/man"))?;
    strip_debug_info(&stage, &plan)?;
    let elf_files: Vec<PathBuf> = plan
        .entries
        .iter()
        .filter(|entry| is_elf(entry))
        .map(|entry| stage.join("usr").join(&entry.path))
        .collect();
    let depends = depends(&stage, &elf_files)?;
    let control_dir = stage.join("DEBIAN");
    fs::create_dir_all(&control_dir)?;
    let installed_kib = directory_size(&stage.join("usr"))?.div_ceil(1024);
    write_file(
        &control_dir.join("control"),
        &control(&architecture, &depends, installed_kib),
        0o644,
    )?;
    write_file(&control_dir.join("postinst"), POSTINST, 0o755)?;
    write_file(&control_dir.join("prerm"), PRERM, 0o755)?;
    write_file(&control_dir.join("triggers"), TRIGGERS, 0o644)?;
    let major = VERSION.split('.').next().unwrap_or("0");
    write_file(
        &control_dir.join("shlibs"),
        &format!("libqmgr {major} qmgr (>= {VERSION})\n"),
        0o644,
    )?;
    let package = output_dir().join(format!("{name}.deb"));
    let status = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&stage)
        .arg(&package)
        .status()
        .context("cannot run dpkg-deb (package dpkg)")?;
    ensure!(status.success(), "dpkg-deb --build failed ({status})");
    Ok(package)
}

/// The multiarch tuple (`x86_64-linux-gnu`) of the library directory.
fn multiarch() -> Result<String> {
    command_output("dpkg-architecture", &["-qDEB_HOST_MULTIARCH"])
        .or_else(|_| command_output("gcc", &["-print-multiarch"]))
        .context("cannot tell the multiarch directory (neither dpkg-architecture nor gcc)")
}

fn control(architecture: &str, depends: &str, installed_kib: u64) -> String {
    format!(
        "Package: qmgr\n\
         Version: {VERSION}\n\
         Architecture: {architecture}\n\
         Maintainer: qmgr developers <qmgr@example.invalid>\n\
         Installed-Size: {installed_kib}\n\
         Depends: {depends}\n\
         Section: net\n\
         Priority: optional\n\
         Description: {DESCRIPTION}\n"
    )
}

fn copyright() -> String {
    format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: qmgr\n\
         \n\
         Files: *\n\
         Copyright: 2026 the qmgr developers\n\
         License: {}\n\
         \x20The MIT license or the Apache License 2.0, at your option.\n\
         \x20On Debian systems the Apache License 2.0 is in\n\
         \x20/usr/share/common-licenses/Apache-2.0.\n",
        env!("CARGO_PKG_LICENSE")
    )
}

/// The package's changelog (a native package has one), dated by the last commit.
fn changelog() -> Result<String> {
    let date = command_output("git", &["log", "-1", "--format=%aD"])
        .ok()
        .filter(|date| !date.is_empty())
        .map_or_else(|| command_output("date", &["-R"]), Ok)?;
    Ok(format!(
        "qmgr ({VERSION}) unstable; urgency=medium\n\
         \n\
         \x20 * Built from the qmgr source tree by `cargo xtask deb`; the project's\n\
         \x20   changes are in its CHANGELOG.md.\n\
         \n\
         \x20-- qmgr developers <qmgr@example.invalid>  {date}\n"
    ))
}

/// `gzip -9n` of `text`.
fn gzip(text: &str) -> Result<Vec<u8>> {
    use std::io::Write as _;
    let mut child = Command::new("gzip")
        .arg("-9n")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("cannot run gzip")?;
    child
        .stdin
        .take()
        .context("gzip has no stdin")?
        .write_all(text.as_bytes())?;
    let output = child.wait_with_output()?;
    ensure!(output.status.success(), "gzip failed ({})", output.status);
    Ok(output.stdout)
}

/// Depends from dpkg-shlibdeps, or [`FALLBACK_DEPENDS`] without it.
fn depends(stage: &Path, elf_files: &[PathBuf]) -> Result<String> {
    if Command::new("dpkg-shlibdeps")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("dpkg-shlibdeps is not installed: Depends: {FALLBACK_DEPENDS}");
        return Ok(FALLBACK_DEPENDS.to_owned());
    }
    // dpkg-shlibdeps works in a source tree: it wants debian/control.
    let source = stage.with_extension("shlibdeps");
    let _ = fs::remove_dir_all(&source);
    fs::create_dir_all(source.join("debian"))?;
    fs::write(
        source.join("debian/control"),
        "Source: qmgr\n\nPackage: qmgr\nArchitecture: any\n",
    )?;
    let output = Command::new("dpkg-shlibdeps")
        .arg("-O")
        .args(elf_files)
        .current_dir(&source)
        .output()
        .context("cannot run dpkg-shlibdeps")?;
    let _ = fs::remove_dir_all(&source);
    ensure!(
        output.status.success(),
        "dpkg-shlibdeps failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let depends = text
        .lines()
        .find_map(|line| line.strip_prefix("shlibs:Depends="))
        .context("dpkg-shlibdeps printed no shlibs:Depends")?;
    Ok(depends.trim().to_owned())
}

/// `gzip -9n` on every page (Debian's policy), keeping file names otherwise.
fn compress_manual_pages(man_dir: &Path) -> Result<()> {
    for section in
        fs::read_dir(man_dir).with_context(|| format!("cannot list {}", man_dir.display()))?
    {
        for page in fs::read_dir(section?.path())? {
            let page = page?.path();
            let status = Command::new("gzip")
                .args(["-9n", "--force"])
                .arg(&page)
                .status()
                .context("cannot run gzip")?;
            ensure!(status.success(), "gzip {} failed", page.display());
        }
    }
    Ok(())
}

/// Strips the line tables of the release profile and the symbols not needed for linking
/// from the packaged binaries and library (Debian ships them without; `strip` comes with
/// binutils, which building needs anyway).
fn strip_debug_info(stage: &Path, plan: &install::plan::Plan) -> Result<()> {
    for entry in plan.entries.iter().filter(|entry| is_elf(entry)) {
        let path = stage.join("usr").join(&entry.path);
        let status = Command::new("strip")
            // What dh_strip does: symbols not needed for linking go too.
            .args([
                "--strip-unneeded",
                "--remove-section=.comment",
                "--remove-section=.note",
            ])
            .arg(&path)
            .status()
            .context("cannot run strip (package binutils)")?;
        ensure!(status.success(), "strip {} failed", path.display());
    }
    Ok(())
}

/// The programs and the shared library (not its links, not the static library).
fn is_elf(entry: &install::plan::Entry) -> bool {
    let copied = matches!(entry.content, install::plan::Content::Copy(_));
    copied && (entry.path.starts_with("bin") || entry.path.to_string_lossy().contains(".so."))
}

fn directory_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        let metadata = fs::symlink_metadata(entry.path())?;
        total += if metadata.is_dir() {
            directory_size(&entry.path())?
        } else {
            metadata.len()
        };
    }
    Ok(total)
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<()> {
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))
}

/// The first line of `program args`' output, which must succeed.
fn command_output(program: &str, args: &[&str]) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    ensure!(
        output.status.success(),
        "{program} {} failed",
        args.join(" ")
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_file_has_the_fields_dpkg_needs() {
        let control = control("amd64", FALLBACK_DEPENDS, 12345);
        for field in [
            "Package: qmgr\n",
            &format!("Version: {VERSION}\n"),
            "Architecture: amd64\n",
            "Maintainer: ",
            "Installed-Size: 12345\n",
            "Depends: libc6 (>= 2.34), libgcc-s1 (>= 4.2)\n",
            "Description: Background Intelligent Transfer Service for Linux\n ",
        ] {
            assert!(control.contains(field), "{field:?} missing:\n{control}");
        }
        // A continuation line of the description starts with a space; an empty one is ` .`.
        let description = control.split_once("Description: ").unwrap().1;
        for line in description.lines().skip(1) {
            assert!(line.starts_with(' ') && line.len() > 1, "{line:?}");
        }
        assert!(control.ends_with('\n') && !control.ends_with("\n\n"));
    }

    #[test]
    fn the_changelog_has_debian_s_shape() {
        let changelog = changelog().unwrap();
        assert!(
            changelog.starts_with(&format!(
                "qmgr ({VERSION}) unstable; urgency=medium\n\n  * "
            )),
            "{changelog}"
        );
        let last = changelog.lines().last().unwrap();
        assert!(last.starts_with(" -- qmgr developers <"), "{last}");
        assert!(last.contains(">  "), "two spaces before the date: {last}");
        assert!(
            changelog.lines().all(|line| line.len() <= 80),
            "{changelog}"
        );
    }

    #[test]
    fn the_maintainer_scripts_enable_nothing() {
        for script in [POSTINST, PRERM] {
            assert!(script.starts_with("#!/bin/sh\nset -e\n"), "{script}");
            assert!(
                !script.contains("systemctl --user enable --now qmgrd\n"),
                "{script}"
            );
            // Every command is an echo: nothing is started, enabled or removed.
            for line in script.lines().filter(|line| line.starts_with("    ")) {
                assert!(line.trim_start().starts_with("echo "), "{line}");
            }
        }
        assert!(POSTINST.contains("systemctl --user enable --now qmgrd"));
    }
}
