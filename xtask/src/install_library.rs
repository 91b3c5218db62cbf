//! The C library part of an installation: libqmgr with its soname, the static library,
//! the headers and the pkg-config files.
//!
//! Layout under the prefix (`LIB` is `lib`, or `lib/<multiarch>` in the Debian package):
//! - `LIB/libqmgr.so.X.Y.Z`, with `LIB/libqmgr.so.X` (the soname, which the library
//!   carries) and `LIB/libqmgr.so` (for `-lqmgr`) as symlinks; `LIB/libqmgr.a`;
//! - `include/qmgr/*.h`: the headers in a directory of their own, so that `bits.h` cannot
//!   clash with another package's; `qmgr.pc` adds `-I${includedir}/qmgr`, so programs
//!   keep Windows' `#include <bits.h>`;
//! - `LIB/pkgconfig/qmgr.pc` and `LIB/pkgconfig/qmgr-win32.pc`.
//!
//! Build with `cc prog.c $(pkg-config --cflags --libs qmgr)`: WCHAR strings are written
//! `u"…"` (char16_t). Code ported from Windows that keeps its `L"…"` literals builds with
//! `qmgr-win32` instead, which adds `-fshort-wchar -DUNICODE -D_UNICODE`: wchar_t is then
//! 16 bits wide, like WCHAR, so glibc's wide-character functions (wprintf, wcslen, …),
//! built for a 32-bit wchar_t, must not be given such strings.
//!
//! The library carries its soname only in the build made for installing (libqmgr's build
//! script reads [`SONAME_VARIABLE`]), which has a target directory of its own (see
//! [`crate::install`]): programs linked against the build tree (`-L target/debug -lqmgr`)
//! keep finding `libqmgr.so` there.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::install::plan::Plan;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `libqmgr.so.<major>`: what programs linked with `-lqmgr` ask the loader for.
pub fn soname() -> String {
    let major = VERSION.split('.').next().unwrap_or("0");
    format!("libqmgr.so.{major}")
}

/// The variable that makes libqmgr's build script give the library its soname.
pub const SONAME_VARIABLE: &str = "QMGR_SONAME";

/// The compiler flags of `qmgr-win32.pc`, beyond the include directory: wchar_t as
/// Windows has it (so `L"…"` literals are UTF-16 WCHAR strings) and the UNICODE macros
/// Windows code tests to pick its wide-character API.
pub const WIN32_CFLAGS: &str = "-fshort-wchar -DUNICODE -D_UNICODE";

/// The pkg-config files for an installation under `prefix` with its libraries in
/// `prefix/lib_dir`, as (file name, text): `qmgr.pc`, and `qmgr-win32.pc` for code ported
/// from Windows.
pub fn pkg_config_files(prefix: &Path, lib_dir: &Path) -> [(&'static str, String); 2] {
    [
        (
            "qmgr.pc",
            pkg_config(
                prefix,
                lib_dir,
                "qmgr",
                "Background Intelligent Transfer Service for Linux: the bits.h and qmgr.h COM interfaces",
                "",
            ),
        ),
        (
            "qmgr-win32.pc",
            pkg_config(
                prefix,
                lib_dir,
                "qmgr-win32",
                "qmgr for code ported from Windows: L\"...\" literals as WCHAR strings (-fshort-wchar)",
                WIN32_CFLAGS,
            ),
        ),
    ]
}

fn pkg_config(
    prefix: &Path,
    lib_dir: &Path,
    name: &str,
    description: &str,
    extra_cflags: &str,
) -> String {
    let cflags = format!("{extra_cflags} -I${{includedir}}/qmgr");
    format!(
        "prefix={}\n\
         libdir=${{prefix}}/{}\n\
         includedir=${{prefix}}/include\n\
         \n\
         Name: {name}\n\
         Description: {description}\n\
         Version: {VERSION}\n\
         Libs: -L${{libdir}} -lqmgr\n\
         Cflags: {}\n",
        prefix.display(),
        lib_dir.display(),
        cflags.trim_start()
    )
}

/// Adds the library built in `release`, the headers of `include` and the pkg-config files
/// to `plan`, with the libraries in `lib_dir` (relative to the prefix).
pub fn add_to_plan(
    plan: &mut Plan,
    release: &Path,
    include: &Path,
    prefix: &Path,
    lib_dir: &Path,
) -> Result<()> {
    let real_name = format!("libqmgr.so.{VERSION}");
    // Shared libraries are not executables: 0644, as Debian's policy has it.
    plan.copy(release.join("libqmgr.so"), lib_dir.join(&real_name), 0o644);
    plan.symlink(lib_dir.join(soname()), real_name);
    plan.symlink(lib_dir.join("libqmgr.so"), soname());
    plan.copy(release.join("libqmgr.a"), lib_dir.join("libqmgr.a"), 0o644);
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
        plan.copy(header, Path::new("include/qmgr").join(name), 0o644);
    }
    for (name, text) in pkg_config_files(prefix, lib_dir) {
        plan.bytes(lib_dir.join("pkgconfig").join(name), text, 0o644);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pkg_config_files_point_at_the_prefix_and_the_header_directory() {
        let [(plain_name, plain), (win32_name, win32)] =
            pkg_config_files(Path::new("/opt/qmgr"), Path::new("lib"));
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
        for (name, text) in pkg_config_files(Path::new("/opt/qmgr"), Path::new("lib")) {
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
    fn the_multiarch_directory_is_the_libdir() {
        let [(_, plain), _] =
            pkg_config_files(Path::new("/usr"), Path::new("lib/x86_64-linux-gnu"));
        assert!(
            plain.contains("\nlibdir=${prefix}/lib/x86_64-linux-gnu\n"),
            "{plain}"
        );
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

        let mut plan = Plan::default();
        add_to_plan(&mut plan, &release, &include, &prefix, Path::new("lib")).unwrap();
        plan.write(&prefix).unwrap();
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
        let pc = fs::read_to_string(lib.join("pkgconfig/qmgr.pc")).unwrap();
        assert!(
            pc.starts_with(&format!("prefix={}\n", prefix.display())),
            "{pc}"
        );
        assert!(lib.join("pkgconfig/qmgr-win32.pc").is_file());
        // Writing again replaces everything in place.
        plan.write(&prefix).unwrap();
        fs::remove_dir_all(&scratch).unwrap();
    }
}
