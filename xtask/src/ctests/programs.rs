//! The C and C++ programs of the C ABI checks (examples-c/ and tests/c/) and how each is
//! compiled: against include/, with every warning an error, linked to target/debug's
//! libqmgr with an rpath.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::project_root;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    C,
    Cxx,
}

/// What a program is given on its command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arguments {
    /// An example: `URL DESTINATION`, the URL being this path on the test server; the
    /// destination must end up holding what the server serves there.
    Download { url_path: &'static str },
    /// An example given `URL DESTINATION` like a download that transfers nothing (it
    /// lists, then cancels).
    NoTransfer { url_path: &'static str },
    /// An upload example: `FILE URL`, the file made by the runner, the URL this path on
    /// the test server (which takes BITS uploads).
    Upload { url_path: &'static str },
    /// A test: `BASE_URL WORK_DIR`.
    Test,
    /// A test of https: `BASE_URL WORK_DIR HTTPS_BASE_URL`, run with `SSL_CERT_FILE`
    /// naming the https server's CA and a short certificate-check timeout for its qmgrd.
    TestWithHttps,
}

#[derive(Debug, Clone, Copy)]
pub struct Program {
    pub name: &'static str,
    pub source: &'static str,
    pub language: Language,
    /// Built with -fshort-wchar (WCHAR is wchar_t and L"..." literals are UTF-16).
    pub short_wchar: bool,
    /// Warnings enabled (as errors) beyond -Wall -Wextra -pedantic.
    pub extra_warnings: &'static [&'static str],
    pub arguments: Arguments,
}

/// What Windows code built with stricter settings turns on: the headers must stay quiet.
const STRICT_WARNINGS: &[&str] = &["-Wsign-compare", "-Wconversion", "-Wswitch-enum"];

const fn example(name: &'static str, source: &'static str, url_path: &'static str) -> Program {
    Program {
        name,
        source,
        language: Language::C,
        short_wchar: false,
        extra_warnings: &[],
        arguments: Arguments::Download { url_path },
    }
}

const fn test(name: &'static str, source: &'static str) -> Program {
    Program {
        name,
        source,
        language: Language::C,
        short_wchar: false,
        extra_warnings: &[],
        arguments: Arguments::Test,
    }
}

pub const PROGRAMS: &[Program] = &[
    example("download", "examples-c/download.c", "/data/256k/download"),
    example("group", "examples-c/group.c", "/data/64k/group"),
    Program {
        arguments: Arguments::NoTransfer {
            url_path: "/data/1k/enumerate",
        },
        ..example("enumerate", "examples-c/enumerate.c", "")
    },
    example("callback", "examples-c/callback.c", "/data/128k/callback"),
    Program {
        arguments: Arguments::Upload {
            url_path: "/incoming/upload.bin",
        },
        ..example("upload", "examples-c/upload.c", "")
    },
    example("apartment", "examples-c/apartment.c", "/data/96k/apartment"),
    Program {
        language: Language::Cxx,
        short_wchar: true,
        ..example(
            "download_cpp",
            "examples-c/download.cpp",
            "/data/100k/download_cpp",
        )
    },
    test("test_headers", "tests/c/test_headers.c"),
    test("test_manager", "tests/c/test_manager.c"),
    test("test_job", "tests/c/test_job.c"),
    test("test_files_enums", "tests/c/test_files_enums.c"),
    test("test_callback", "tests/c/test_callback.c"),
    test("test_group", "tests/c/test_group.c"),
    test("test_apartment", "tests/c/test_apartment.c"),
    Program {
        language: Language::Cxx,
        ..test("test_cxx", "tests/c/test_cxx.cpp")
    },
    Program {
        short_wchar: true,
        ..test("test_short_wchar", "tests/c/test_short_wchar.c")
    },
    test("test_peer_cache", "tests/c/test_peer_cache.c"),
    test("test_ranges", "tests/c/test_ranges.c"),
    test("test_on_demand", "tests/c/test_on_demand.c"),
    Program {
        arguments: Arguments::TestWithHttps,
        ..test("test_http_options3", "tests/c/test_http_options3.c")
    },
    Program {
        extra_warnings: STRICT_WARNINGS,
        ..test("test_win32_style", "tests/c/test_win32_style.c")
    },
    Program {
        language: Language::Cxx,
        short_wchar: true,
        extra_warnings: STRICT_WARNINGS,
        ..test("test_win32_style_cpp", "tests/c/test_win32_style.cpp")
    },
    Program {
        extra_warnings: STRICT_WARNINGS,
        ..test("test_validation", "tests/c/test_validation.c")
    },
    Program {
        extra_warnings: STRICT_WARNINGS,
        ..test("test_upload", "tests/c/test_upload.c")
    },
    // Random call sequences (1,500 calls here; `cargo xtask reliability fuzz` runs more,
    // and a build with AddressSanitizer).
    test("fuzz_com", "tests/c/fuzz_com.c"),
];

/// The Python example, run with python3 (ctypes only, no build).
pub const PYTHON_EXAMPLE: &str = "examples-c/python/download.py";

/// Where the programs are built and their logs kept.
pub fn build_dir() -> PathBuf {
    crate::target_dir().join("c-abi")
}

/// The directory of the debug libqmgr.so and qmgrd.
pub fn library_dir() -> PathBuf {
    crate::target_dir().join("debug")
}

/// Which build of libqmgr a program is linked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Library {
    /// The usual one, a client of qmgrd.
    Client,
    /// The build with feature `in-process`, which hosts the queue in the program.
    InProcess,
}

impl Library {
    /// Where this build's libqmgr.so is.
    pub fn dir(self) -> PathBuf {
        match self {
            Library::Client => library_dir(),
            Library::InProcess => build_dir().join("in-process"),
        }
    }

    /// Where programs linked to it are put.
    fn bin_dir(self) -> PathBuf {
        match self {
            Library::Client => build_dir().join("bin"),
            Library::InProcess => build_dir().join("bin-in-process"),
        }
    }
}

/// The compiler command for `program` (without running it), linked to `library`.
pub fn compile_command(program: &Program, output: &Path, library: Library) -> Command {
    let root = project_root();
    let (compiler, standard) = match program.language {
        Language::C => ("gcc", "-std=c11"),
        Language::Cxx => ("g++", "-std=c++17"),
    };
    let mut command = Command::new(compiler);
    command.current_dir(&root).args([
        standard,
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        "-g",
        // POSIX (nanosleep, stat) under a strict ISO standard.
        "-D_POSIX_C_SOURCE=200809L",
        "-Iinclude",
        "-Iexamples-c",
    ]);
    if program.short_wchar {
        command.arg("-fshort-wchar");
    }
    command.args(program.extra_warnings);
    command.arg(program.source).arg("-o").arg(output);
    let library_dir = library.dir();
    command
        .arg(format!("-L{}", library_dir.display()))
        .arg("-lqmgr")
        .arg(format!("-Wl,-rpath,{}", library_dir.display()));
    command
}

/// Compiles `program`; on failure the error holds the compiler's messages.
pub fn compile(program: &Program, library: Library) -> Result<PathBuf> {
    let dir = library.bin_dir();
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let output = dir.join(program.name);
    let mut command = compile_command(program, &output, library);
    let result = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !result.status.success() {
        anyhow::bail!(
            "compiling {} failed:\n{}{}",
            program.source,
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        );
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_exists_and_names_are_unique() {
        let root = project_root();
        for program in PROGRAMS {
            assert!(root.join(program.source).is_file(), "{}", program.source);
            assert_eq!(
                PROGRAMS.iter().filter(|p| p.name == program.name).count(),
                1,
                "{}",
                program.name
            );
        }
        assert!(root.join(PYTHON_EXAMPLE).is_file());
    }

    #[test]
    fn every_c_source_in_tests_and_examples_is_built() {
        let root = project_root();
        for dir in ["tests/c", "examples-c"] {
            for entry in fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let is_source = path
                    .extension()
                    .is_some_and(|extension| extension == "c" || extension == "cpp");
                if is_source {
                    let relative = path
                        .strip_prefix(&root)
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .to_owned();
                    assert!(
                        PROGRAMS.iter().any(|p| p.source == relative),
                        "{relative} is not in PROGRAMS"
                    );
                }
            }
        }
    }

    #[test]
    fn strict_programs_get_their_extra_warnings() {
        let program = PROGRAMS
            .iter()
            .find(|p| p.name == "test_win32_style")
            .unwrap();
        let command = compile_command(program, Path::new("/tmp/out"), Library::Client);
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        for expected in STRICT_WARNINGS {
            assert!(args.iter().any(|a| a == expected), "{expected} in {args:?}");
        }
        let plain = PROGRAMS.iter().find(|p| p.name == "test_job").unwrap();
        let plain_args: Vec<String> =
            compile_command(plain, Path::new("/tmp/out"), Library::Client)
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
        assert!(
            !plain_args.iter().any(|a| a == "-Wconversion"),
            "{plain_args:?}"
        );
    }

    #[test]
    fn the_command_makes_warnings_errors_and_links_the_debug_library() {
        let program = PROGRAMS.iter().find(|p| p.name == "download_cpp").unwrap();
        let command = compile_command(program, Path::new("/tmp/out"), Library::Client);
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(command.get_program(), "g++");
        for expected in [
            "-std=c++17",
            "-Werror",
            "-Wall",
            "-Wextra",
            "-fshort-wchar",
            "-lqmgr",
        ] {
            assert!(args.iter().any(|a| a == expected), "{expected} in {args:?}");
        }
        assert!(args.iter().any(|a| a.starts_with("-Wl,-rpath,")));
    }
}
