//! Project automation. `cargo xtask --help` lists the commands.

mod bench;
mod compat;
mod ctests;
mod deb;
mod headers;
mod install;
mod install_library;
mod python;
mod reliability;
mod tally;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

const HELP: &str = "\
cargo xtask <command>

Commands:
  test           formatting check, clippy (-D warnings) and every test of the workspace;
                 ends with a line `N passed, M failed`
  bench [WHAT]   benchmarks; WHAT is `core` (store: create, load, memory), `transfer`
                 (engine beside curl and aria2c; installs nginx, curl, aria2 if missing),
                 `service` (IPC and in-process latency, qmgrd with 10,000 jobs), `ffi`
                 (C GetState round trip, enumerating 10,000 jobs), `e2e` (`qmgr transfer`
                 and a C program through libqmgr, each with a fresh qmgrd, beside curl and
                 aria2c: 1 GiB, 2,000 × 64 KiB, 20,000 × 4 KiB, 100 × 10 MiB), `queue`
                 (qmgrd with 100,000 jobs: start-up, RSS, `qmgr list`, EnumJobs, idle
                 CPU), `upload` (`qmgr upload` of 1 GiB to qmgr-upload-server beside
                 `curl -T` to nginx, also through nginx's TLS proxy), `idle [--short]` (a
                 background job on a 20 Mbit/s bottleneck in network namespaces, with and
                 without idle mode, and a foreground download joining it; root only) or
                 `all` (default); results are printed and saved under
                 bench/results/. e2e and queue read QMGR_BENCH_ROUNDS (timed rounds,
                 default 5) and QMGR_BENCH_SCALE=small (a tenth of the sizes, for a
                 quick check)
  headers [--check]
                 regenerate include/*.h from qmgr-ffi's abi modules (--check: fail if
                 the committed headers differ)
  compat         check include/ against mingw-w64's bits*.h and qmgr.h (installs
                 mingw-w64-common with apt-get if missing): every interface, slot, GUID,
                 constant and struct both declare must match
  c-tests [NAME…]
                 build examples-c/ and tests/c/ against include/ and the debug libqmgr,
                 run each against the test server in an instance of its own, then under
                 valgrind; run the Python example (only the programs NAMEd, if any;
                 `python` is the Python example)
  python-tests   the Python package's pytest suite (python/tests), in a venv made under
                 target/python/ (python3 -m venv, pip install ./python pytest)
  install [--prefix DIR | --user]
                 release build (in target/install) of qmgr and qmgrd into DIR/bin
                 (default and --user: ~/.local), libqmgr with its soname links and
                 libqmgr.a into DIR/lib, the headers into DIR/include/qmgr, qmgr.pc and
                 qmgr-win32.pc into DIR/lib/pkgconfig, the systemd user unit into
                 DIR/share/systemd/user, bash, zsh and fish completions, and the manual
                 pages qmgr(1), qmgr-SUB(1), qmgrd(8) and qmgr.conf(5) into DIR/share/man;
                 DESTDIR in the environment stages it under DESTDIR; the files written
                 are listed in DIR/share/qmgr/install-manifest.txt
  uninstall [--prefix DIR | --user]
                 remove what install wrote there (the manifest's files, then the
                 directories it created once they are empty), nothing else
  deb            target/debian/qmgr_VERSION_ARCH.deb with dpkg-deb: everything install
                 writes, under /usr
  test-install   the install checks of `test` alone: install into a temporary prefix and
                 use it from there (qmgr transfer, man -l, bash completion, C programs),
                 DESTDIR, uninstall, and the .deb (a real dpkg -i/--purge only as root)
  reliability [faults] [crashes] [fuzz] [users] [soak] [--short]
                 the fault matrix: each fault of the test server (drops, 5xx and 429
                 with Retry-After, stalls, slow, ignored Range, changed content and
                 size, lying Content-Length, no Content-Length, chunked, redirect loops,
                 https to http, 404, full and read-only disks, clock jumps) through a
                 real qmgrd, every outcome held to the one written in its row; crashes:
                 qmgrd SIGKILLed during a 200 MiB download (100 times, 10 with
                 --short), a client killed mid-call for every request kind, the store's
                 writer killed (50 times, 25 with --short); fuzz: every fuzz target
                 with a fixed budget and one seed (IPC frames, config, URLs, headers and
                 proxies, UTF-16 at the C boundary, random COM calls under ASan+UBSan and
                 valgrind); users: two real users with a qmgrd each try each other's
                 socket, files and jobs, planted links, permissions (root only); soak:
                 many clients keep a big queue moving through faults for 10 minutes
                 (--short: 75 s), counting every notification and sampling qmgrd's RSS
                 and descriptors; with no part named, all; each writes its section of
                 bench/results/reliability.md
  help           this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("headers") => headers::run(&args[1..]),
        Some("compat") => compat::run(&args[1..]),
        Some("c-tests") => ctests::run_command(&args[1..]),
        Some("python-tests") => python::run_command(&args[1..]),
        Some("install") => install::run(&args[1..]),
        Some("uninstall") => install::run_uninstall(&args[1..]),
        Some("deb") => deb::run(&args[1..]),
        Some("reliability") => reliability::run(&args[1..]),
        Some("test-install") => install::checks::run_command(&args[1..]),
        // Parts of `bench idle` that run inside its network namespaces.
        Some("idle-echo") => bench::idle::echo(&args[1..]),
        Some("idle-probe") => bench::idle::probe(&args[1..]),
        None | Some("help" | "--help" | "-h") => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown command {other:?}\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` if set (relative to the workspace), else
/// the workspace's `target/`.
fn target_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| project_root().join("target"), PathBuf::from);
    if target.is_absolute() {
        target
    } else {
        project_root().join(target)
    }
}

/// `cargo`, as the environment names it.
fn cargo() -> std::process::Command {
    let mut command =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(project_root());
    command
}
