//! The install checks of `cargo xtask test` (alone: `cargo xtask test-install`): one release
//! build, installed into a temporary prefix by `cargo xtask install --prefix` as a user
//! would run it, then used from there; a staged (DESTDIR) install; uninstall; and the
//! Debian package. The real home is never touched: every install names its prefix.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use anyhow::{Context, Result, bail, ensure};

use crate::ctests::instance::Instance;
use crate::tally::Tally;
use crate::{cargo, deb, install_library, project_root};

/// How a check ended.
#[derive(Debug)]
enum Outcome {
    Passed,
    Failed(String),
    /// Not run here (a tool is missing, not root); counted as ignored.
    Skipped(String),
}

/// The outcomes so far, printed as they come.
#[derive(Debug, Default)]
struct Checks {
    results: Vec<(String, Outcome)>,
}

impl Checks {
    fn record(&mut self, name: &str, result: Result<Option<String>>) {
        let outcome = match result {
            Ok(None) => Outcome::Passed,
            Ok(Some(why)) => Outcome::Skipped(why),
            Err(error) => Outcome::Failed(format!("{error:#}")),
        };
        match &outcome {
            Outcome::Passed => println!("ok: {name}"),
            Outcome::Skipped(why) => println!("skipped: {name}: {why}"),
            Outcome::Failed(why) => println!("FAILED: {name}: {why}"),
        }
        self.results.push((name.to_owned(), outcome));
    }

    fn add_to(self, tally: &mut Tally, failures: &mut Vec<String>) {
        for (name, outcome) in self.results {
            match outcome {
                Outcome::Passed => tally.passed += 1,
                Outcome::Skipped(_) => tally.ignored += 1,
                Outcome::Failed(_) => {
                    tally.failed += 1;
                    failures.push(name);
                }
            }
        }
    }
}

/// Runs every check, adding one result per check to `tally`.
pub fn run(tally: &mut Tally, failures: &mut Vec<String>) {
    println!("==> install (cargo xtask install into a temporary prefix, uninstall, deb)");
    let mut checks = Checks::default();
    if let Err(error) = run_checks(&mut checks) {
        checks.record("install: the checks could run", Err(error));
    }
    checks.add_to(tally, failures);
}

/// `cargo xtask test-install`.
pub fn run_command(args: &[String]) -> Result<()> {
    if let Some(unknown) = args.first() {
        bail!("`cargo xtask test-install` takes no arguments (got {unknown:?})");
    }
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    run(&mut tally, &mut failures);
    println!(
        "{} passed, {} failed ({} skipped)",
        tally.passed, tally.failed, tally.ignored
    );
    ensure!(failures.is_empty(), "failed: {}", failures.join(", "));
    Ok(())
}

fn run_checks(checks: &mut Checks) -> Result<()> {
    // The build tree's debug library and daemon, which the C program linked against the
    // build tree uses (built before the snapshot: only the install must leave them be).
    let status = cargo()
        .args([
            "build",
            "--locked",
            "-p",
            "libqmgr",
            "-p",
            "qmgr-service",
            "--bins",
            "--lib",
        ])
        .status()?;
    ensure!(
        status.success(),
        "the debug build of libqmgr and qmgrd failed"
    );
    let build = super::build()?;
    let scratch = Scratch::new()?;
    let prefix = scratch.path.join("prefix");
    fs::create_dir_all(&prefix)?;
    let source = scratch.path.join("source.txt");
    fs::write(&source, "qmgr install check\n".repeat(1000))?;

    let build_tree = build_tree_libraries();
    let installed = xtask(&["install", "--prefix"], &prefix, &[]);
    let installed_ok = installed.is_ok();
    checks.record(
        "install: cargo xtask install --prefix writes every piece",
        installed
            .and_then(|()| check_layout(&prefix))
            .map(|()| None),
    );
    if !installed_ok {
        return Ok(());
    }
    checks.record(
        "install: qmgr transfer runs from the prefix (qmgrd found beside it)",
        check_transfer(&prefix, &source, &scratch.path).map(|()| None),
    );
    checks.record(
        "install: man -l renders every installed page",
        check_manual_pages(&prefix),
    );
    checks.record(
        "install: bash completion completes subcommands and options",
        check_bash_completion(&prefix).map(|()| None),
    );
    checks.record(
        "install: zsh and fish completions parse",
        check_other_completions(&prefix),
    );
    checks.record(
        "install: a C program linked against the build tree still runs",
        check_build_tree_program(&build_tree, &source, &scratch.path).map(|()| None),
    );
    checks.record(
        "install: a C program built with pkg-config against the prefix runs",
        check_installed_program(&prefix, &source, &scratch.path).map(|()| None),
    );
    checks.record(
        "install: DESTDIR stages the install, uninstall with DESTDIR empties it",
        check_destdir(&scratch.path).map(|()| None),
    );
    checks.record(
        "uninstall: the prefix is empty afterwards",
        xtask(&["uninstall", "--prefix"], &prefix, &[])
            .and_then(|()| ensure_empty(&prefix))
            .map(|()| None),
    );

    let package = deb::build_package(&build);
    let package_ok = package.is_ok();
    let package = package.unwrap_or_default();
    checks.record(
        "deb: the package holds every piece (dpkg-deb -c)",
        if package_ok {
            check_deb_contents(&package).map(|()| None)
        } else {
            Err(anyhow::anyhow!("cargo xtask deb failed"))
        },
    );
    if package_ok {
        checks.record(
            "deb: the package's metadata (dpkg-deb -I, -f)",
            check_deb_metadata(&package).map(|()| None),
        );
        checks.record("deb: lintian", check_lintian(&package));
        checks.record(
            "deb: dpkg -i, qmgr --version, man -l, dpkg --purge",
            check_dpkg_install(&package),
        );
    }
    Ok(())
}

/// A temporary directory removed at the end, whatever happens.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new() -> Result<Scratch> {
        // Short: the instances' sockets live below it.
        let path = std::env::temp_dir().join(format!("qmgr-inst-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Scratch { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Runs this xtask (through /proc/self/exe: the file may be rebuilt meanwhile) with `args`
/// and then `dir`, and `env`.
fn xtask(args: &[&str], dir: &Path, env: &[(&str, &Path)]) -> Result<()> {
    let mut command = Command::new("/proc/self/exe");
    command.args(args).arg(dir).current_dir(project_root());
    command.env_remove("DESTDIR");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().context("cannot run xtask")?;
    ensure!(
        output.status.success(),
        "cargo xtask {} {} failed ({}):\n{}{}",
        args.join(" "),
        dir.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// The paths (relative to the prefix) an install must have written.
fn expected_paths() -> Vec<String> {
    let version = env!("CARGO_PKG_VERSION");
    let mut paths: Vec<String> = [
        "bin/qmgr",
        "bin/qmgrd",
        "lib/libqmgr.a",
        "lib/libqmgr.so",
        "lib/pkgconfig/qmgr.pc",
        "lib/pkgconfig/qmgr-win32.pc",
        "include/qmgr/bits.h",
        "include/qmgr/qmgr.h",
        "share/systemd/user/qmgrd.service",
        "share/bash-completion/completions/qmgr",
        "share/zsh/site-functions/_qmgr",
        "share/fish/vendor_completions.d/qmgr.fish",
        "share/man/man1/qmgr.1",
        "share/man/man1/qmgr-transfer.1",
        "share/man/man1/qmgr-daemon-status.1",
        "share/man/man8/qmgrd.8",
        "share/man/man5/qmgr.conf.5",
        super::plan::MANIFEST,
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    paths.push(format!("lib/libqmgr.so.{version}"));
    paths.push(format!("lib/{}", install_library::soname()));
    paths
}

fn check_layout(prefix: &Path) -> Result<()> {
    let missing: Vec<String> = expected_paths()
        .into_iter()
        .filter(|path| fs::symlink_metadata(prefix.join(path)).is_err())
        .collect();
    ensure!(
        missing.is_empty(),
        "missing under {}: {}",
        prefix.display(),
        missing.join(", ")
    );
    let unit = fs::read_to_string(prefix.join("share/systemd/user/qmgrd.service"))?;
    let exec = format!("ExecStart={}/bin/qmgrd --foreground", prefix.display());
    ensure!(
        unit.contains(&exec),
        "the unit does not say {exec}:\n{unit}"
    );
    let pc = fs::read_to_string(prefix.join("lib/pkgconfig/qmgr.pc"))?;
    ensure!(
        pc.starts_with(&format!("prefix={}\n", prefix.display())),
        "qmgr.pc names another prefix:\n{pc}"
    );
    let library = prefix.join(format!("lib/libqmgr.so.{}", env!("CARGO_PKG_VERSION")));
    let dynamic = run_ok(Command::new("readelf").arg("-d").arg(&library))?;
    let dynamic = String::from_utf8_lossy(&dynamic.stdout);
    let soname = format!("Library soname: [{}]", install_library::soname());
    ensure!(
        dynamic.contains(&soname),
        "{} has no {soname}:\n{dynamic}",
        library.display()
    );
    let version = run_ok(Command::new(prefix.join("bin/qmgr")).arg("--version"))?;
    ensure!(
        String::from_utf8_lossy(&version.stdout).trim()
            == format!("qmgr {}", env!("CARGO_PKG_VERSION")),
        "qmgr --version: {:?}",
        String::from_utf8_lossy(&version.stdout)
    );
    Ok(())
}

/// Points `command` at `instance` with nothing but the prefix to find qmgrd in.
/// `qmgrd: None` leaves the client to find qmgrd by itself (beside its executable).
fn isolate(command: &mut Command, instance: &Instance, qmgrd: Option<&Path>) {
    instance.configure(command, qmgrd.unwrap_or(Path::new("")));
    command.env("PATH", "/usr/bin:/bin");
    if qmgrd.is_none() {
        command.env_remove("QMGRD");
    }
}

fn check_transfer(prefix: &Path, source: &Path, scratch: &Path) -> Result<()> {
    let instance = Instance::create("inst")?;
    let result = (|| {
        let destination = instance.work_dir().join("copy.txt");
        let mut command = Command::new(prefix.join("bin/qmgr"));
        command
            .arg("transfer")
            .arg("--quiet")
            .arg(format!("file://{}", source.display()))
            .arg("-o")
            .arg(&destination)
            .current_dir(scratch);
        // qmgr must find the qmgrd installed beside it.
        isolate(&mut command, &instance, None);
        run_ok(&mut command)?;
        ensure!(
            fs::read(&destination)? == fs::read(source)?,
            "the copy differs from its source"
        );
        let log = instance.root().join("state/qmgr/qmgrd.log");
        ensure!(log.exists(), "no qmgrd was started (no {})", log.display());
        Ok(())
    })();
    let stopped = instance.remove();
    result.and(stopped)
}

/// Renders every page; `Some(why)` when `man` is not installed.
fn check_manual_pages(prefix: &Path) -> Result<Option<String>> {
    if Command::new("man").arg("--version").output().is_err() {
        bail!("man is not installed (.ci/run installs man-db)");
    }
    let mut pages = Vec::new();
    for section in fs::read_dir(prefix.join("share/man"))? {
        for page in fs::read_dir(section?.path())? {
            pages.push(page?.path());
        }
    }
    pages.sort();
    ensure!(pages.len() > 3, "only {} pages", pages.len());
    for page in &pages {
        let output = run_ok(
            Command::new("man")
                .arg("-l")
                .arg(page)
                .env("MANPAGER", "cat")
                .env("PAGER", "cat")
                .env("MANWIDTH", "80")
                .env_remove("MANOPT"),
        )?;
        let text = String::from_utf8_lossy(&output.stdout);
        let errors = String::from_utf8_lossy(&output.stderr);
        ensure!(
            text.contains("NAME") && text.contains("SEE ALSO"),
            "{}: no NAME or SEE ALSO section:\n{text}",
            page.display()
        );
        ensure!(errors.trim().is_empty(), "{}: {errors}", page.display());
    }
    println!("man -l: {} pages", pages.len());
    Ok(None)
}

/// bash loads the script, registers a completion function for qmgr, and that function
/// completes a subcommand and an option of it.
fn check_bash_completion(prefix: &Path) -> Result<()> {
    let script = prefix.join("share/bash-completion/completions/qmgr");
    let complete = |words: &str| -> Result<String> {
        let program = format!(
            "source \"$1\" || exit 1\n\
             spec=$(complete -p qmgr) || exit 2\n\
             function=$(printf '%s\\n' \"$spec\" | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p')\n\
             [ -n \"$function\" ] || exit 3\n\
             COMP_WORDS=({words})\n\
             COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n\
             COMP_LINE=\"${{COMP_WORDS[*]}}\"\n\
             COMP_POINT=${{#COMP_LINE}}\n\
             \"$function\" qmgr \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"\n"
        );
        let output = run_ok(
            Command::new("bash")
                .arg("-c")
                .arg(program)
                .arg("bash")
                .arg(&script),
        )?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let subcommands = complete("qmgr tra")?;
    ensure!(
        subcommands.lines().any(|line| line.trim() == "transfer"),
        "`qmgr tra<TAB>` offers {subcommands:?}"
    );
    let options = complete("qmgr transfer --no-c")?;
    ensure!(
        options.lines().any(|line| line.trim() == "--no-clobber"),
        "`qmgr transfer --no-c<TAB>` offers {options:?}"
    );
    Ok(())
}

/// `zsh -n` and `fish --no-execute` where those shells are installed.
fn check_other_completions(prefix: &Path) -> Result<Option<String>> {
    let mut missing = Vec::new();
    for (shell, flag, path) in [
        ("zsh", "-n", "share/zsh/site-functions/_qmgr"),
        (
            "fish",
            "--no-execute",
            "share/fish/vendor_completions.d/qmgr.fish",
        ),
    ] {
        let Ok(output) = Command::new(shell)
            .arg(flag)
            .arg(prefix.join(path))
            .output()
        else {
            println!("{shell} is not installed: {path} not checked");
            missing.push(shell);
            continue;
        };
        ensure!(
            output.status.success(),
            "{shell} {flag} {path}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok((missing.len() == 2).then(|| "neither zsh nor fish is installed".to_owned()))
}

/// Size and modification time of the build tree's shared libraries, to see that install
/// did not relink them.
fn build_tree_libraries() -> Vec<(PathBuf, Stamp)> {
    ["debug", "release"]
        .into_iter()
        .map(|profile| {
            let path = crate::target_dir().join(profile).join("libqmgr.so");
            let stamp = fs::metadata(&path)
                .ok()
                .and_then(|metadata| Some((metadata.len(), metadata.modified().ok()?)));
            (path, stamp)
        })
        .collect()
}

/// A library's size and modification time, `None` where there is none.
type Stamp = Option<(u64, SystemTime)>;

/// The libraries whose stamp differs between `before` and `after` (one that appeared,
/// went, or was rewritten), described.
fn changed_libraries(before: &[(PathBuf, Stamp)], after: &[(PathBuf, Stamp)]) -> Vec<String> {
    after
        .iter()
        .filter_map(|(path, stamp)| {
            let earlier = before.iter().find(|(p, _)| p == path).and_then(|(_, s)| *s);
            (earlier != *stamp).then(|| format!("{} ({earlier:?} -> {stamp:?})", path.display()))
        })
        .collect()
}

/// Compiles examples-c/download.c with `flags` and downloads `source` with it (the
/// library starting `qmgrd`).
fn download_with_c_program(
    flags: &[String],
    output: &Path,
    qmgrd: &Path,
    source: &Path,
) -> Result<()> {
    let root = project_root();
    run_ok(
        Command::new("gcc")
            .current_dir(&root)
            .args(["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-Iexamples-c"])
            .arg("examples-c/download.c")
            .arg("-o")
            .arg(output)
            .args(flags),
    )?;
    let needed = run_ok(Command::new("readelf").arg("-d").arg(output))?;
    let needed = String::from_utf8_lossy(&needed.stdout).into_owned();
    let instance = Instance::create("c")?;
    let result = (|| {
        let destination = instance.work_dir().join("copy.txt");
        let mut command = Command::new(output);
        command
            .arg(format!("file://{}", source.display()))
            .arg(&destination);
        isolate(&mut command, &instance, Some(qmgrd));
        run_ok(&mut command).with_context(|| format!("its dynamic section:\n{needed}"))?;
        ensure!(
            fs::read(&destination)? == fs::read(source)?,
            "the copy differs"
        );
        Ok(())
    })();
    let stopped = instance.remove();
    result.and(stopped)
}

fn check_build_tree_program(
    before: &[(PathBuf, Stamp)],
    source: &Path,
    scratch: &Path,
) -> Result<()> {
    let changed = changed_libraries(before, &build_tree_libraries());
    ensure!(
        changed.is_empty(),
        "cargo xtask install changed the build tree's {}",
        changed.join(", ")
    );
    let debug = crate::target_dir().join("debug");
    download_with_c_program(
        &[
            "-Iinclude".to_owned(),
            format!("-L{}", debug.display()),
            "-lqmgr".to_owned(),
            format!("-Wl,-rpath,{}", debug.display()),
        ],
        &scratch.join("download-build-tree"),
        &debug.join("qmgrd"),
        source,
    )
}

fn check_installed_program(prefix: &Path, source: &Path, scratch: &Path) -> Result<()> {
    let flags = run_ok(
        Command::new("pkg-config")
            .args(["--cflags", "--libs", "qmgr"])
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")),
    )
    .context("pkg-config (package pkgconf) finds qmgr.pc")?;
    let mut flags: Vec<String> = String::from_utf8_lossy(&flags.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    flags.push(format!("-Wl,-rpath,{}", prefix.join("lib").display()));
    let program = scratch.join("download-installed");
    download_with_c_program(&flags, &program, &prefix.join("bin/qmgrd"), source)?;
    let dynamic = run_ok(Command::new("readelf").arg("-d").arg(&program))?;
    let dynamic = String::from_utf8_lossy(&dynamic.stdout);
    let soname = install_library::soname();
    ensure!(
        dynamic.contains(&format!("[{soname}]")),
        "the program does not ask for {soname}:\n{dynamic}"
    );
    Ok(())
}

fn check_destdir(scratch: &Path) -> Result<()> {
    let stage = scratch.join("stage");
    let prefix = Path::new("/opt/qmgr-staged-check");
    ensure!(!prefix.exists(), "{} exists already", prefix.display());
    xtask(&["install", "--prefix"], prefix, &[("DESTDIR", &stage)])?;
    let root = stage.join(prefix.strip_prefix("/")?);
    ensure!(
        root.join("bin/qmgr").is_file(),
        "nothing under {}",
        root.display()
    );
    ensure!(
        !prefix.exists(),
        "DESTDIR was ignored: {} exists",
        prefix.display()
    );
    let pc = fs::read_to_string(root.join("lib/pkgconfig/qmgr.pc"))?;
    ensure!(pc.starts_with("prefix=/opt/qmgr-staged-check\n"), "{pc}");
    let unit = fs::read_to_string(root.join("share/systemd/user/qmgrd.service"))?;
    ensure!(
        unit.contains("ExecStart=/opt/qmgr-staged-check/bin/qmgrd "),
        "{unit}"
    );
    xtask(&["uninstall", "--prefix"], prefix, &[("DESTDIR", &stage)])?;
    ensure!(!root.exists(), "{} is left after uninstall", root.display());
    Ok(())
}

fn ensure_empty(dir: &Path) -> Result<()> {
    let left: Vec<String> = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()?;
    ensure!(
        left.is_empty(),
        "left in {}: {}",
        dir.display(),
        left.join(", ")
    );
    Ok(())
}

fn check_deb_contents(package: &Path) -> Result<()> {
    let listing = run_ok(Command::new("dpkg-deb").arg("-c").arg(package))?;
    let listing = String::from_utf8_lossy(&listing.stdout);
    let version = env!("CARGO_PKG_VERSION");
    let mut expected = vec![
        "./usr/bin/qmgr".to_owned(),
        "./usr/bin/qmgrd".to_owned(),
        "./usr/include/qmgr/bits.h".to_owned(),
        "./usr/lib/systemd/user/qmgrd.service".to_owned(),
        "./usr/share/man/man1/qmgr.1.gz".to_owned(),
        "./usr/share/man/man8/qmgrd.8.gz".to_owned(),
        "./usr/share/man/man5/qmgr.conf.5.gz".to_owned(),
        "./usr/share/bash-completion/completions/qmgr".to_owned(),
        "./usr/share/zsh/site-functions/_qmgr".to_owned(),
        "./usr/share/fish/vendor_completions.d/qmgr.fish".to_owned(),
        "./usr/share/doc/qmgr/copyright".to_owned(),
    ];
    let lib = format!("./usr/lib/{}", multiarch_of(&listing)?);
    expected.push(format!("{lib}/libqmgr.so.{version}"));
    expected.push(format!(
        "{lib}/{} -> libqmgr.so.{version}",
        install_library::soname()
    ));
    expected.push(format!("{lib}/libqmgr.so -> {}", install_library::soname()));
    expected.push(format!("{lib}/pkgconfig/qmgr.pc"));
    let missing: Vec<&String> = expected
        .iter()
        .filter(|path| !listing.contains(path.as_str()))
        .collect();
    ensure!(
        missing.is_empty(),
        "missing from the package: {missing:?}\n{listing}"
    );
    for line in listing.lines() {
        ensure!(line.contains(" root/root "), "not owned by root: {line}");
        ensure!(
            !line.contains("/share/qmgr/install-manifest"),
            "the package has an install manifest: {line}"
        );
    }
    Ok(())
}

/// The multiarch directory the listing puts libqmgr in.
fn multiarch_of(listing: &str) -> Result<String> {
    listing
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find_map(|path| {
            let rest = path.strip_prefix("./usr/lib/")?;
            let (dir, file) = rest.split_once('/')?;
            file.starts_with("libqmgr.so.").then(|| dir.to_owned())
        })
        .context("no libqmgr.so.* in /usr/lib/<multiarch>")
}

fn check_deb_metadata(package: &Path) -> Result<()> {
    let info = run_ok(Command::new("dpkg-deb").arg("-I").arg(package))?;
    let info = String::from_utf8_lossy(&info.stdout);
    for part in ["postinst", "prerm", "triggers", "shlibs", "Package: qmgr"] {
        ensure!(info.contains(part), "dpkg-deb -I shows no {part}:\n{info}");
    }
    let field = |name: &str| -> Result<String> {
        let output = run_ok(Command::new("dpkg-deb").arg("-f").arg(package).arg(name))?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    ensure!(field("Package")? == "qmgr");
    ensure!(field("Version")? == env!("CARGO_PKG_VERSION"));
    let architecture = run_ok(Command::new("dpkg").arg("--print-architecture"))?;
    ensure!(field("Architecture")? == String::from_utf8_lossy(&architecture.stdout).trim());
    let depends = field("Depends")?;
    ensure!(depends.contains("libc6"), "Depends: {depends}");
    ensure!(!field("Description")?.is_empty());
    let size: u64 = field("Installed-Size")?.parse().context("Installed-Size")?;
    ensure!(size > 1024, "Installed-Size: {size} KiB");
    let postinst = run_ok(Command::new("dpkg-deb").arg("--ctrl-tarfile").arg(package))?;
    ensure!(!postinst.stdout.is_empty());
    Ok(())
}

fn check_lintian(package: &Path) -> Result<Option<String>> {
    if Command::new("lintian").arg("--version").output().is_err() {
        return Ok(Some("lintian is not installed".to_owned()));
    }
    let output = Command::new("lintian")
        .arg("--fail-on")
        .arg("error")
        .arg(package)
        .output()
        .context("cannot run lintian")?;
    println!("{}", String::from_utf8_lossy(&output.stdout));
    ensure!(output.status.success(), "lintian found errors");
    Ok(None)
}

/// Purges the package when dropped, so a failed check never leaves it installed.
struct InstalledPackage;

impl Drop for InstalledPackage {
    fn drop(&mut self) {
        let status = Command::new("dpkg").args(["--purge", "qmgr"]).status();
        if !matches!(status, Ok(status) if status.success()) {
            println!("warning: dpkg --purge qmgr failed: {status:?}");
        }
    }
}

/// A real `dpkg -i` (root only, and only where no package qmgr is installed already).
fn check_dpkg_install(package: &Path) -> Result<Option<String>> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(Some("not root".to_owned()));
    }
    let present = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "qmgr"])
        .output()
        .context("cannot run dpkg-query")?;
    if String::from_utf8_lossy(&present.stdout).contains("installed") {
        return Ok(Some(
            "a package qmgr is installed already; left alone".to_owned(),
        ));
    }
    let guard = InstalledPackage;
    let installed = run_ok(Command::new("dpkg").arg("-i").arg(package))?;
    let said = String::from_utf8_lossy(&installed.stdout);
    ensure!(
        said.contains("systemctl --user enable --now qmgrd"),
        "postinst did not say how to enable the unit:\n{said}"
    );
    let version = run_ok(Command::new("/usr/bin/qmgr").arg("--version"))?;
    ensure!(
        String::from_utf8_lossy(&version.stdout).trim()
            == format!("qmgr {}", env!("CARGO_PKG_VERSION"))
    );
    run_ok(Command::new("/usr/bin/qmgrd").arg("--version"))?;
    let mut page = PathBuf::from("/usr/share/man/man8/qmgrd.8.gz");
    let extracted = std::env::temp_dir().join(format!("qmgr-deb-{}", std::process::id()));
    if !page.exists() {
        // A minimal image's dpkg may be told to leave out /usr/share/man (path-exclude);
        // the page is read from the package then.
        println!(
            "{} was not installed (dpkg path-exclude?): reading the package's",
            page.display()
        );
        run_ok(
            Command::new("dpkg-deb")
                .arg("-x")
                .arg(package)
                .arg(&extracted),
        )?;
        page = extracted.join("usr/share/man/man8/qmgrd.8.gz");
    }
    let rendered = run_ok(
        Command::new("man")
            .arg("-l")
            .arg(&page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80"),
    );
    let _ = fs::remove_dir_all(&extracted);
    ensure!(String::from_utf8_lossy(&rendered?.stdout).contains("qmgrd"));
    drop(guard);
    ensure!(
        !Path::new("/usr/bin/qmgr").exists(),
        "dpkg --purge left /usr/bin/qmgr"
    );
    Ok(None)
}

/// Runs `command`, which must succeed; the error carries its output.
fn run_ok(command: &mut Command) -> Result<Output> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    ensure!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_multiarch_directory_is_read_from_the_listing() {
        let listing = "\
drwxr-xr-x root/root         0 2026-12-04 15:00 ./usr/lib/x86_64-linux-gnu/\n\
-rw-r--r-- root/root   1000000 2026-12-04 15:00 ./usr/lib/x86_64-linux-gnu/libqmgr.so.0.1.0\n";
        assert_eq!(multiarch_of(listing).unwrap(), "x86_64-linux-gnu");
        assert!(multiarch_of("nothing\n").is_err());
    }

    /// What install did before it had a target directory of its own: relinking
    /// target/release/libqmgr.so (or creating it) is caught.
    #[test]
    fn a_relinked_or_new_build_tree_library_is_caught() {
        let at = |seconds| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
        let debug = PathBuf::from("target/debug/libqmgr.so");
        let release = PathBuf::from("target/release/libqmgr.so");
        let before = vec![(debug.clone(), Some((10, at(1)))), (release.clone(), None)];
        assert!(changed_libraries(&before, &before).is_empty());
        let created = vec![
            (debug.clone(), Some((10, at(1)))),
            (release.clone(), Some((9, at(2)))),
        ];
        let changed = changed_libraries(&before, &created);
        assert_eq!(changed.len(), 1);
        assert!(
            changed[0].starts_with("target/release/libqmgr.so"),
            "{changed:?}"
        );
        let relinked = vec![(debug, Some((10, at(3)))), (release, None)];
        assert_eq!(changed_libraries(&before, &relinked).len(), 1);
    }

    #[test]
    fn skipped_checks_count_as_ignored_and_failures_are_named() {
        let mut checks = Checks::default();
        checks.record("a", Ok(None));
        checks.record("b", Ok(Some("no tool".to_owned())));
        checks.record("c", Err(anyhow::anyhow!("broken")));
        let mut tally = Tally::default();
        let mut failures = Vec::new();
        checks.add_to(&mut tally, &mut failures);
        assert_eq!((tally.passed, tally.ignored, tally.failed), (1, 1, 1));
        assert_eq!(failures, ["c"]);
    }
}
