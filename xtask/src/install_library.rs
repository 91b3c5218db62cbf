//! The C library part of `cargo xtask install`: libqmgr with its soname, the static
//! library, the headers and a pkg-config file.
//!
//! Layout under the prefix:
//! - `lib/libqmgr.so.X.Y.Z`, with `lib/libqmgr.so.X` (the soname, which the library
//!   carries) and `lib/libqmgr.so` (for `-lqmgr`) as symlinks; `lib/libqmgr.a`;
//! - `include/qmgr/*.h`: the headers in a directory of their own, so that `bits.h` cannot
//!   clash with another package's; `qmgr.pc` adds `-I${includedir}/qmgr`, so programs
//!   keep Windows' `#include <bits.h>`;
//! - `lib/pkgconfig/qmgr.pc` and `lib/pkgconfig/qmgr-win32.pc` (also written to
//!   `target/release/`).
//!
//! Build with `cc prog.c $(pkg-config --cflags --libs qmgr)`: WCHAR strings are written
//! `u"…"` (char16_t). Code ported from Windows that keeps its `L"…"` literals builds with
//! `qmgr-win32` instead, which adds `-fshort-wchar -DUNICODE -D_UNICODE`: wchar_t is then
//! 16 bits wide, like WCHAR, so glibc's wide-character functions (wprintf, wcslen, …),
//! built for a 32-bit wchar_t, must not be given such strings.

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
    let pc_files = pkg_config_files(prefix);
    for (name, text) in &pc_files {
        let in_target = release.join(name);
        fs::write(&in_target, text)
            .with_context(|| format!("cannot write {}", in_target.display()))?;
    }
    install_files(&release, &headers::include_dir(), prefix, &pc_files)
}

/// The compiler flags of `qmgr-win32.pc`, beyond the include directory: wchar_t as
/// Windows has it (so `L"…"` literals are UTF-16 WCHAR strings) and the UNICODE macros
/// Windows code tests to pick its wide-character API.
pub const WIN32_CFLAGS: &str = "-fshort-wchar -DUNICODE -D_UNICODE";

/// The pkg-config files for an installation under `prefix`, as (file name, text):
/// `qmgr.pc`, and `qmgr-win32.pc` for code ported from Windows.
pub fn pkg_config_files(prefix: &Path) -> [(&'static str, String); 2] {
    [
        (
            "qmgr.pc",
            pkg_config(
                prefix,
                "qmgr",
                "Background Intelligent Transfer Service for Linux: the bits.h and qmgr.h COM interfaces",
                "",
            ),
        ),
        (
            "qmgr-win32.pc",
            pkg_config(
                prefix,
                "qmgr-win32",
                "qmgr for code ported from Windows: L\"...\" literals as WCHAR strings (-fshort-wchar)",
                WIN32_CFLAGS,
            ),
        ),
    ]
}

fn pkg_config(prefix: &Path, name: &str, description: &str, extra_cflags: &str) -> String {
    let cflags = format!("{extra_cflags} -I${{includedir}}/qmgr");
    format!(
        "prefix={}\n\
         libdir=${{prefix}}/lib\n\
         includedir=${{prefix}}/include\n\
         \n\
         Name: {name}\n\
         Description: {description}\n\
         Version: {VERSION}\n\
         Libs: -L${{libdir}} -lqmgr\n\
         Cflags: {}\n",
        prefix.display(),
        cflags.trim_start()
    )
}

/// Copies the built library from `release`, the headers from `include` and the
/// pkg-config files (name, text) into `prefix`.
fn install_files(
    release: &Path,
    include: &Path,
    prefix: &Path,
    pc_files: &[(&str, String)],
) -> Result<()> {
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
    for (name, text) in pc_files {
        let pc_file = pc_dir.join(name);
        fs::write(&pc_file, text).with_context(|| format!("cannot write {}", pc_file.display()))?;
        println!("installed: {}", pc_file.display());
    }
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
    fn the_pkg_config_files_point_at_the_prefix_and_the_header_directory() {
        let [(plain_name, plain), (win32_name, win32)] = pkg_config_files(Path::new("/opt/qmgr"));
        assert_eq!((plain_name, win32_name), ("qmgr.pc", "qmgr-win32.pc"));
        for text in [&plain, &win32] {
            assert!(text.starts_with("prefix=/opt/qmgr\n"), "{text}");
            assert!(text.contains("\nLibs: -L${libdir} -lqmgr\n"), "{text}");
            assert!(text.contains(&format!("\nVersion: {VERSION}\n")), "{text}");
        }
        assert!(plain.contains("\nName: qmgr\n"), "{plain}");
        assert!(
            plain.contains("\nCflags: -I${includedir}/qmgr\n"),
            "{plain}"
        );
        assert!(win32.contains("\nName: qmgr-win32\n"), "{win32}");
        assert!(
            win32.contains("\nCflags: -fshort-wchar -DUNICODE -D_UNICODE -I${includedir}/qmgr\n"),
            "{win32}"
        );
    }

    /// pkg-config itself reads both files and gives the flags a build uses (skipped where
    /// pkg-config is not installed).
    #[test]
    fn pkg_config_reads_both_files() {
        let probe = std::process::Command::new("pkg-config")
            .arg("--version")
            .output();
        if probe.is_err() {
            eprintln!("pkg-config is not installed: skipped");
            return;
        }
        let scratch = std::env::temp_dir().join(format!("qmgr-pc-{}", std::process::id()));
        let _ = fs::remove_dir_all(&scratch);
        fs::create_dir_all(&scratch).unwrap();
        for (name, text) in pkg_config_files(Path::new("/opt/qmgr")) {
            fs::write(scratch.join(name), text).unwrap();
        }
        let flags = |package: &str| {
            let output = std::process::Command::new("pkg-config")
                .args(["--cflags", "--libs", package])
                .env("PKG_CONFIG_PATH", &scratch)
                .env("PKG_CONFIG_LIBDIR", &scratch)
                .output()
                .unwrap();
            assert!(output.status.success(), "{output:?}");
            String::from_utf8(output.stdout).unwrap().trim().to_owned()
        };
        assert_eq!(
            flags("qmgr"),
            "-I/opt/qmgr/include/qmgr -L/opt/qmgr/lib -lqmgr"
        );
        assert_eq!(
            flags("qmgr-win32"),
            "-fshort-wchar -DUNICODE -D_UNICODE -I/opt/qmgr/include/qmgr -L/opt/qmgr/lib -lqmgr"
        );
        fs::remove_dir_all(&scratch).unwrap();
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

        let pc_files = [
            ("qmgr.pc", "pc".to_owned()),
            ("qmgr-win32.pc", "win32".to_owned()),
        ];
        install_files(&release, &include, &prefix, &pc_files).unwrap();
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
        assert_eq!(
            fs::read_to_string(lib.join("pkgconfig/qmgr-win32.pc")).unwrap(),
            "win32"
        );
        // Installing again replaces everything in place.
        install_files(&release, &include, &prefix, &pc_files).unwrap();
        fs::remove_dir_all(&scratch).unwrap();
    }
}
