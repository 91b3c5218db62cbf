//! The C library part of `cargo xtask install`: libqmgr with its soname, the static
//! library, the headers and a pkg-config file.
//!
//! Layout under the prefix:
//! - `lib/libqmgr.so.X.Y.Z`, with `lib/libqmgr.so.X` (the soname, which the library
//!   carries) and `lib/libqmgr.so` (for `-lqmgr`) as symlinks; `lib/libqmgr.a`;
//! - `include/qmgr/*.h`: the headers in a directory of their own, so that `bits.h` cannot
//!   clash with another package's; `qmgr.pc` adds `-I${includedir}/qmgr`, so programs
//!   keep Windows' `#include <bits.h>`;
//! - `lib/pkgconfig/qmgr.pc` (also written to `target/release/qmgr.pc`).
//!
//! Build with `cc prog.c $(pkg-config --cflags --libs qmgr)`.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::{cargo, headers};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `libqmgr.so.<major>`: what programs linked with `-lqmgr` ask the loader for.
fn soname() -> String {
    let major = VERSION.split('.').next().unwrap_or("0");
    format!("libqmgr.so.{major}")
}

/// Builds the release library with its soname and installs it under `prefix`.
pub fn install(prefix: &Path) -> Result<()> {
    // The soname is a link argument of the cdylib alone, so it is given to this one
    // rustc invocation rather than to every crate through RUSTFLAGS.
    let status = cargo()
        .args([
            "rustc",
            "--release",
            "--locked",
            "-p",
            "libqmgr",
            "--lib",
            "--",
        ])
        .arg(format!("-Clink-arg=-Wl,-soname,{}", soname()))
        .status()?;
    if !status.success() {
        bail!("the release build of libqmgr failed");
    }
    let release = crate::target_dir().join("release");
    let pc = pkg_config(prefix);
    let pc_in_target = release.join("qmgr.pc");
    fs::write(&pc_in_target, &pc)
        .with_context(|| format!("cannot write {}", pc_in_target.display()))?;
    install_files(&release, &headers::include_dir(), prefix, &pc)
}

/// The text of `qmgr.pc` for an installation under `prefix`.
pub fn pkg_config(prefix: &Path) -> String {
    format!(
        "prefix={}\n\
         libdir=${{prefix}}/lib\n\
         includedir=${{prefix}}/include\n\
         \n\
         Name: qmgr\n\
         Description: Background Intelligent Transfer Service for Linux: the bits.h and qmgr.h COM interfaces\n\
         Version: {VERSION}\n\
         Libs: -L${{libdir}} -lqmgr\n\
         Cflags: -I${{includedir}}/qmgr\n",
        prefix.display()
    )
}

/// Copies the built library from `release`, the headers from `include` and the
/// pkg-config text into `prefix`.
fn install_files(release: &Path, include: &Path, prefix: &Path, pc: &str) -> Result<()> {
    let lib_dir = prefix.join("lib");
    let header_dir = prefix.join("include/qmgr");
    let pc_dir = lib_dir.join("pkgconfig");
    for dir in [&lib_dir, &header_dir, &pc_dir] {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let real_name = format!("libqmgr.so.{VERSION}");
    replace_file(&release.join("libqmgr.so"), &lib_dir.join(&real_name))?;
    replace_symlink(&real_name, &lib_dir.join(soname()))?;
    replace_symlink(&soname(), &lib_dir.join("libqmgr.so"))?;
    replace_file(&release.join("libqmgr.a"), &lib_dir.join("libqmgr.a"))?;
    let mut headers: Vec<PathBuf> = fs::read_dir(include)
        .with_context(|| format!("cannot list {}", include.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    headers.sort();
    for header in headers
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "h"))
    {
        let name = header.file_name().context("a header without a name")?;
        replace_file(header, &header_dir.join(name))?;
    }
    let pc_file = pc_dir.join("qmgr.pc");
    fs::write(&pc_file, pc).with_context(|| format!("cannot write {}", pc_file.display()))?;
    println!("installed: {}", pc_file.display());
    Ok(())
}

/// Copies through a temporary name, so a library in use is replaced, not rewritten.
fn replace_file(from: &Path, to: &Path) -> Result<()> {
    let temporary = to.with_extension("new");
    fs::copy(from, &temporary)
        .with_context(|| format!("cannot copy {} to {}", from.display(), temporary.display()))?;
    fs::rename(&temporary, to).with_context(|| format!("cannot install {}", to.display()))?;
    println!("installed: {}", to.display());
    Ok(())
}

fn replace_symlink(target: &str, link: &Path) -> Result<()> {
    let temporary = link.with_extension("new");
    let _ = fs::remove_file(&temporary);
    symlink(target, &temporary)
        .with_context(|| format!("cannot create the symlink {}", temporary.display()))?;
    fs::rename(&temporary, link).with_context(|| format!("cannot install {}", link.display()))?;
    println!("installed: {} -> {target}", link.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkg_config_file_points_at_the_prefix_and_the_header_directory() {
        let text = pkg_config(Path::new("/opt/qmgr"));
        assert!(text.starts_with("prefix=/opt/qmgr\n"), "{text}");
        assert!(text.contains("\nLibs: -L${libdir} -lqmgr\n"));
        assert!(text.contains("\nCflags: -I${includedir}/qmgr\n"));
        assert!(text.contains(&format!("\nVersion: {VERSION}\n")));
    }

    #[test]
    fn files_land_with_the_soname_chain_and_headers_apart() {
        let scratch = std::env::temp_dir().join(format!("qmgr-install-{}", std::process::id()));
        let _ = fs::remove_dir_all(&scratch);
        let (release, include, prefix) = (
            scratch.join("release"),
            scratch.join("include"),
            scratch.join("prefix"),
        );
        fs::create_dir_all(&release).unwrap();
        fs::create_dir_all(&include).unwrap();
        fs::write(release.join("libqmgr.so"), "shared").unwrap();
        fs::write(release.join("libqmgr.a"), "static").unwrap();
        fs::write(include.join("bits.h"), "/* bits */").unwrap();
        fs::write(include.join("notes.txt"), "not a header").unwrap();

        install_files(&release, &include, &prefix, "pc").unwrap();
        let lib = prefix.join("lib");
        assert_eq!(
            fs::read_link(lib.join("libqmgr.so")).unwrap(),
            PathBuf::from(soname())
        );
        assert_eq!(
            fs::read_link(lib.join(soname())).unwrap(),
            PathBuf::from(format!("libqmgr.so.{VERSION}"))
        );
        assert_eq!(
            fs::read_to_string(lib.join("libqmgr.so")).unwrap(),
            "shared"
        );
        assert_eq!(fs::read_to_string(lib.join("libqmgr.a")).unwrap(), "static");
        assert!(prefix.join("include/qmgr/bits.h").is_file());
        assert!(!prefix.join("include/qmgr/notes.txt").exists());
        assert_eq!(
            fs::read_to_string(lib.join("pkgconfig/qmgr.pc")).unwrap(),
            "pc"
        );
        // Installing again replaces everything in place.
        install_files(&release, &include, &prefix, "pc").unwrap();
        fs::remove_dir_all(&scratch).unwrap();
    }
}
