//! The C side of `cargo xtask test`, and `cargo xtask c-tests`:
//!
//! 1. the committed headers match the generator;
//! 2. they agree with mingw-w64's (`cargo xtask compat`);
//! 3. every example of examples-c/ and every test of tests/c/ compiles with gcc/g++
//!    (`-Wall -Wextra -Werror -pedantic`, C11 or C++17) against include/ and libqmgr,
//!    then runs against the test server in a qmgr instance of its own, then again under
//!    valgrind (a definite leak or any memory error fails it); the Python example runs
//!    with python3 and the checkout's python/ package. What an example downloaded must be
//!    what the server serves, byte for byte, and what it uploaded what the server
//!    published. Each program counts as one test;
//! 4. every C and C++ program again, linked to the library built with feature
//!    `in-process` (the queue hosted in the program, no qmgrd), once each, counted apart.

pub(crate) mod instance;
pub(crate) mod programs;
pub(crate) mod server;

use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::tally::Tally;
use crate::{cargo, compat, headers, project_root};
use instance::Instance;
use programs::{Arguments, Library, PROGRAMS, PYTHON_EXAMPLE, Program};
use server::TestServer;

const PLAIN_TIMEOUT: Duration = Duration::from_secs(300);
const VALGRIND_TIMEOUT: Duration = Duration::from_secs(900);
pub(crate) const VALGRIND: [&str; 4] = [
    "--error-exitcode=99",
    "--leak-check=full",
    "--errors-for-leak-kinds=definite",
    "--quiet",
];

/// Every C check of `cargo xtask test`, adding one result per check (and per program) to
/// `tally` and the name of each failed one to `failures`.
pub fn run(tally: &mut Tally, failures: &mut Vec<String>) {
    println!("==> headers (include/ matches `cargo xtask headers`)");
    let verdict = match headers::stale_headers() {
        Ok(stale) if stale.is_empty() => Ok(()),
        Ok(stale) => Err(format!(
            "differ from the generator: {} (run `cargo xtask headers`)",
            stale.join(", ")
        )),
        Err(error) => Err(format!("{error:#}")),
    };
    count("headers", verdict, tally, failures);

    println!("==> compat (include/ against mingw-w64's headers)");
    let verdict = match compat::check() {
        Ok(report) => {
            print!("{}", report.text);
            if report.mismatches == 0 {
                Ok(())
            } else {
                Err(format!("{} declaration(s) differ", report.mismatches))
            }
        }
        Err(error) => Err(format!("{error:#}")),
    };
    count("compat", verdict, tally, failures);

    run_programs(&[], tally, failures);
}

/// `cargo xtask c-tests [NAME…]`: only the C and C++ programs and the Python example, or
/// only the programs named (`python` for the Python example).
pub fn run_command(args: &[String]) -> Result<()> {
    for name in args {
        if name != PYTHON_NAME && !PROGRAMS.iter().any(|program| program.name == name) {
            let known: Vec<&str> = PROGRAMS.iter().map(|program| program.name).collect();
            bail!(
                "`cargo xtask c-tests`: no program {name:?}; the programs are {} and {PYTHON_NAME}",
                known.join(", ")
            );
        }
    }
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    run_programs(args, &mut tally, &mut failures);
    println!("{} passed, {} failed", tally.passed, tally.failed);
    if failures.is_empty() {
        Ok(())
    } else {
        bail!("failed: {}", failures.join(", "))
    }
}

fn count(name: &str, verdict: Result<(), String>, tally: &mut Tally, failures: &mut Vec<String>) {
    match verdict {
        Ok(()) => tally.passed += 1,
        Err(why) => {
            println!("FAILED {name}: {why}");
            tally.failed += 1;
            failures.push(name.to_owned());
        }
    }
}

/// The test servers the programs download from: plain http, and https with the file
/// holding its CA's PEM.
struct Servers {
    plain: TestServer,
    secure: TestServer,
    ca_file: std::path::PathBuf,
}

impl Servers {
    fn start() -> Result<Servers> {
        build_prerequisites()?;
        let binary = programs::library_dir().join("qmgr-testserver");
        let plain = TestServer::start(&binary)?;
        fs::create_dir_all(programs::build_dir())?;
        let ca_file = programs::build_dir().join("test-server-ca.pem");
        let secure = TestServer::start_https(&binary, &ca_file)?;
        Ok(Servers {
            plain,
            secure,
            ca_file,
        })
    }

    fn stop(self) {
        for server in [self.plain, self.secure] {
            if let Err(error) = server.stop() {
                println!("warning: {error:#}");
            }
        }
    }
}

/// The name `cargo xtask c-tests` knows the Python example by.
const PYTHON_NAME: &str = "python";

/// Builds and runs the programs named in `only` (every one when it is empty).
fn run_programs(only: &[String], tally: &mut Tally, failures: &mut Vec<String>) {
    let chosen = |name: &str| only.is_empty() || only.iter().any(|wanted| wanted == name);
    println!("==> C ABI programs: building libqmgr, qmgrd and qmgr-testserver");
    let servers = match Servers::start() {
        Ok(servers) => servers,
        Err(error) => {
            count("C ABI programs", Err(format!("{error:#}")), tally, failures);
            return;
        }
    };
    for program in PROGRAMS.iter().filter(|program| chosen(program.name)) {
        println!("==> C: {} ({})", program.name, program.source);
        let verdict = programs::compile(program, Library::Client)
            .and_then(|binary| run_program(program, &binary, &servers));
        report(program.name, verdict, tally, failures);
    }
    if chosen(PYTHON_NAME) {
        println!("==> Python: {PYTHON_EXAMPLE}");
        let verdict = run_python(&servers);
        report("python download.py", verdict, tally, failures);
    }
    let in_process: Vec<&Program> = PROGRAMS
        .iter()
        .filter(|program| chosen(program.name))
        .collect();
    if !in_process.is_empty() {
        println!("==> C ABI programs against the in-process library (feature in-process)");
        match build_in_process_library() {
            Ok(()) => {
                for program in in_process {
                    println!("==> C, in-process: {} ({})", program.name, program.source);
                    let verdict = programs::compile(program, Library::InProcess)
                        .and_then(|binary| run_in_process(program, &binary, &servers));
                    report(
                        &format!("{} (in-process)", program.name),
                        verdict,
                        tally,
                        failures,
                    );
                }
            }
            Err(error) => count(
                "in-process library",
                Err(format!("{error:#}")),
                tally,
                failures,
            ),
        }
    }
    servers.stop();
}

/// Builds libqmgr with feature `in-process` and keeps a copy of it in
/// [`Library::InProcess`]'s directory, then builds the usual one again: both builds share
/// target/debug, where the last one built is the libqmgr.so programs find.
pub(crate) fn build_in_process_library() -> Result<()> {
    let build = |features: &[&str]| -> Result<()> {
        let status = cargo()
            .args(["build", "--locked", "-p", "libqmgr", "--lib"])
            .args(features)
            .status()?;
        if !status.success() {
            bail!("cargo build -p libqmgr {} failed", features.join(" "));
        }
        Ok(())
    };
    build(&["--features", "in-process"])?;
    let dir = Library::InProcess.dir();
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let built = programs::library_dir().join("libqmgr.so");
    fs::copy(&built, dir.join("libqmgr.so"))
        .with_context(|| format!("cannot copy {} to {}", built.display(), dir.display()))?;
    build(&[])
}

/// Runs `binary`, linked to the in-process library, once in a fresh instance (not under
/// valgrind: the queue's own threads run inside it and outlive the program's last call).
fn run_in_process(program: &Program, binary: &Path, servers: &Servers) -> Result<String> {
    run_once(
        program,
        "in-process",
        PLAIN_TIMEOUT,
        |instance| plain_command(program, binary, servers, instance),
        &|instance| check_transferred(program, servers, instance),
    )
}

fn report(name: &str, verdict: Result<String>, tally: &mut Tally, failures: &mut Vec<String>) {
    let verdict = verdict
        .map(|summary| println!("ok: {summary}"))
        .map_err(|error| format!("{error:#}"));
    count(name, verdict, tally, failures);
}

pub(crate) fn build_prerequisites() -> Result<()> {
    let builds: [&[&str]; 3] = [
        &["build", "--locked", "-p", "libqmgr", "--lib"],
        &["build", "--locked", "-p", "qmgr-service", "--bin", "qmgrd"],
        &[
            "build",
            "--locked",
            "-p",
            "qmgr-tests",
            "--bin",
            "qmgr-testserver",
        ],
    ];
    for args in builds {
        let status = cargo().args(args).status()?;
        if !status.success() {
            bail!("cargo {} failed", args.join(" "));
        }
    }
    Ok(())
}

/// The verdict timeout of the qmgrd of an https test (`QMGR_CERTIFICATE_CHECK_TIMEOUT_MS`):
/// long enough for a callback under valgrind, short enough for a test of silence.
const CERTIFICATE_CHECK_TIMEOUT_MS: &str = "3000";

/// Runs `binary` plainly, then under valgrind, each in a fresh instance; the summary is
/// the program's last line of output.
fn run_program(program: &Program, binary: &Path, servers: &Servers) -> Result<String> {
    let verify = |instance: &Instance| check_transferred(program, servers, instance);
    let summary = run_once(
        program,
        "plain",
        PLAIN_TIMEOUT,
        |instance| plain_command(program, binary, servers, instance),
        &verify,
    )?;
    run_once(
        program,
        "valgrind",
        VALGRIND_TIMEOUT,
        |instance| {
            let mut command = Command::new("valgrind");
            command
                .args(VALGRIND)
                .arg(binary)
                .args(arguments(program, servers.urls(), instance));
            with_https_env(program, servers, &mut command);
            command
        },
        &verify,
    )
    .map(|_| format!("{summary} (and clean under valgrind)"))
}

/// An example's exit status is not the whole story: what it downloaded must be what the
/// server serves, byte for byte, and what it uploaded what the server published.
fn check_transferred(program: &Program, servers: &Servers, instance: &Instance) -> Result<()> {
    let base_url = servers.plain.base_url();
    match program.arguments {
        Arguments::Download { url_path } => {
            let local = instance.work_dir().join(format!("{}.out", program.name));
            let path = url_path.split('?').next().unwrap_or(url_path);
            let served = server::get(base_url, path)?;
            same_bytes(&local, &fs::read(&local).unwrap_or_default(), &served, path)
        }
        Arguments::Upload { url_path } => {
            let source = instance.work_dir().join(format!("{}.src", program.name));
            let published = server::get(base_url, &format!("/published{url_path}"))?;
            let sent =
                fs::read(&source).with_context(|| format!("cannot read {}", source.display()))?;
            same_bytes(&source, &sent, &published, url_path)
        }
        Arguments::NoTransfer { .. } | Arguments::Test | Arguments::TestWithHttps => Ok(()),
    }
}

/// Fails, naming the first byte that differs, unless `held` (the file at `local`) is
/// `expected` (what the server has at `server_path`).
fn same_bytes(local: &Path, held: &[u8], expected: &[u8], server_path: &str) -> Result<()> {
    if held == expected {
        return Ok(());
    }
    let first_difference = held
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(held.len().min(expected.len()));
    bail!(
        "{} ({} bytes) is not what the server has at {server_path} ({} bytes): they differ \
         from byte {first_difference}",
        local.display(),
        held.len(),
        expected.len()
    )
}

/// `binary` run as itself, with the program's arguments.
fn plain_command(
    program: &Program,
    binary: &Path,
    servers: &Servers,
    instance: &Instance,
) -> Command {
    let mut command = Command::new(binary);
    command.args(arguments(program, servers.urls(), instance));
    with_https_env(program, servers, &mut command);
    command
}

/// An https test's qmgrd (started by the program, with its environment) trusts the https
/// server's CA and waits a short time for certificate verdicts.
fn with_https_env(program: &Program, servers: &Servers, command: &mut Command) {
    if program.arguments == Arguments::TestWithHttps {
        command.env("SSL_CERT_FILE", &servers.ca_file).env(
            "QMGR_CERTIFICATE_CHECK_TIMEOUT_MS",
            CERTIFICATE_CHECK_TIMEOUT_MS,
        );
    }
}

/// The size of the file the upload example sends.
const UPLOAD_EXAMPLE_BYTES: usize = 300_000;

/// The base URLs a program may be given: the plain server's and the https server's.
#[derive(Clone, Copy)]
struct Urls<'a> {
    plain: &'a str,
    secure: &'a str,
}

impl Servers {
    fn urls(&self) -> Urls<'_> {
        Urls {
            plain: self.plain.base_url(),
            secure: self.secure.base_url(),
        }
    }
}

fn arguments(program: &Program, urls: Urls<'_>, instance: &Instance) -> Vec<String> {
    let base_url = urls.plain;
    let work_dir = instance.work_dir().display().to_string();
    match program.arguments {
        Arguments::Download { url_path } | Arguments::NoTransfer { url_path } => vec![
            format!("{base_url}{url_path}"),
            instance
                .work_dir()
                .join(format!("{}.out", program.name))
                .display()
                .to_string(),
        ],
        Arguments::Upload { url_path } => {
            let source = instance.work_dir().join(format!("{}.src", program.name));
            let bytes: Vec<u8> = (0..=250u8).cycle().take(UPLOAD_EXAMPLE_BYTES).collect();
            if let Err(error) = std::fs::write(&source, bytes) {
                println!("warning: cannot write {}: {error}", source.display());
            }
            vec![
                source.display().to_string(),
                format!("{base_url}{url_path}"),
            ]
        }
        Arguments::Test => vec![base_url.to_owned(), work_dir],
        Arguments::TestWithHttps => vec![base_url.to_owned(), work_dir, urls.secure.to_owned()],
    }
}

fn run_python(servers: &Servers) -> Result<String> {
    let program = Program {
        name: "download_py",
        source: PYTHON_EXAMPLE,
        language: programs::Language::C,
        short_wchar: false,
        extra_warnings: &[],
        arguments: Arguments::Download {
            url_path: "/data/200k/download_py",
        },
    };
    let script = project_root().join(PYTHON_EXAMPLE);
    let library = programs::library_dir().join("libqmgr.so");
    // The example imports the package of python/ from the checkout, not an installed one.
    let package = project_root().join("python/src");
    run_once(
        &program,
        "python3",
        PLAIN_TIMEOUT,
        |instance| {
            let mut command = Command::new("python3");
            command
                .arg(&script)
                .args(arguments(&program, servers.urls(), instance))
                .env("QMGR_LIB", &library)
                .env("PYTHONPATH", &package);
            command
        },
        &|instance| check_transferred(&program, servers, instance),
    )
}

/// One run in a new instance, its output in target/c-abi/logs/. The instance is removed
/// after a success and kept (for a look) after a failure.
fn run_once(
    program: &Program,
    mode: &str,
    timeout: Duration,
    command_for: impl FnOnce(&Instance) -> Command,
    verify: &dyn Fn(&Instance) -> Result<()>,
) -> Result<String> {
    let instance = Instance::create(&format!("{}-{mode}", program.name))?;
    let log_dir = programs::build_dir().join("logs");
    fs::create_dir_all(&log_dir).with_context(|| format!("cannot create {}", log_dir.display()))?;
    let log = log_dir.join(format!("{}-{mode}.log", program.name));
    let log_file =
        File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    let mut command = command_for(&instance);
    instance.configure(&mut command, &programs::library_dir().join("qmgrd"));
    command
        .current_dir(instance.work_dir())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let outcome = wait_with_timeout(child, timeout);
    let stopped = instance.stop_daemon();
    let output = fs::read_to_string(&log).unwrap_or_default();
    let outcome = outcome.and_then(|status| {
        if status.success() {
            verify(&instance).map(|()| status)
        } else {
            Ok(status)
        }
    });
    match (outcome, stopped) {
        (Ok(status), Ok(())) if status.success() => {
            instance.remove()?;
            Ok(output.lines().last().unwrap_or("").to_owned())
        }
        (outcome, stopped) => {
            let what = match outcome {
                Ok(status) => format!("exited with {status}"),
                Err(error) => format!("{error:#}"),
            };
            let daemon = stopped
                .err()
                .map(|e| format!("; {e:#}"))
                .unwrap_or_default();
            bail!(
                "the {mode} run {what}{daemon}\n  log: {}\n  instance kept: {}\n{}",
                log.display(),
                instance.root().display(),
                tail(&output, 40)
            )
        }
    }
}

pub(crate) fn wait_with_timeout(mut child: Child, timeout: Duration) -> Result<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().context("waiting for the program")? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "did not finish within {} s and was killed",
                timeout.as_secs()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for line in &all[all.len().saturating_sub(lines)..] {
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_get_a_url_and_a_destination_tests_the_base_and_a_directory() {
        let instance = Instance::create("arguments").unwrap();
        let download = PROGRAMS.iter().find(|p| p.name == "download").unwrap();
        let urls = Urls {
            plain: "http://127.0.0.1:9",
            secure: "https://127.0.0.1:10",
        };
        let args = arguments(download, urls, &instance);
        assert_eq!(args[0], "http://127.0.0.1:9/data/256k/download");
        assert!(args[1].ends_with("/work/download.out"), "{args:?}");
        let test = PROGRAMS.iter().find(|p| p.name == "test_job").unwrap();
        let args = arguments(test, urls, &instance);
        let work_dir = instance.work_dir().display().to_string();
        assert_eq!(args, ["http://127.0.0.1:9", &work_dir]);
        let https = PROGRAMS
            .iter()
            .find(|p| p.name == "test_http_options3")
            .unwrap();
        let args = arguments(https, urls, &instance);
        assert_eq!(
            args,
            ["http://127.0.0.1:9", &work_dir, "https://127.0.0.1:10"]
        );
        instance.remove().unwrap();
    }

    #[test]
    fn a_program_that_overruns_is_killed() {
        let child = Command::new("sleep").arg("30").spawn().unwrap();
        let error = wait_with_timeout(child, Duration::from_millis(50)).unwrap_err();
        assert!(format!("{error}").contains("killed"), "{error}");
    }

    #[test]
    fn the_tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "    b\n    c\n");
    }
}
