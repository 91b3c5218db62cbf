//! `cargo xtask install [--prefix DIR | --user]` and `cargo xtask uninstall [--prefix DIR |
//! --user]`: `qmgr` and `qmgrd`, the C library with its headers and pkg-config files (see
//! [`crate::install_library`]), the systemd user unit, shell completions and manual pages.
//! `DESTDIR` in the environment stages the install under it, as with make.
//!
//! The build is a release build in a target directory of its own (`target/install`), with
//! the soname in libqmgr: the build tree's `target/release` and `target/debug` are never
//! relinked, so programs linked against them keep running.

pub mod checks;
pub mod plan;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::{cargo, headers, install_library, project_root};
use plan::Plan;

/// The binaries installed into `bin`, with the packages that build them.
const BINARIES: [(&str, &str); 2] = [("qmgr", "qmgr-cli"), ("qmgrd", "qmgr-service")];

/// Where the completion scripts go, relative to the prefix: the directories bash-completion,
/// zsh and fish look in.
const COMPLETIONS: [(&str, &str); 3] = [
    ("bash", "share/bash-completion/completions/qmgr"),
    ("zsh", "share/zsh/site-functions/_qmgr"),
    ("fish", "share/fish/vendor_completions.d/qmgr.fish"),
];

/// The hand-written page of the configuration file.
const CONFIG_PAGE: &str = "contrib/man/qmgr.conf.5";

const USAGE: &str = "usage: cargo xtask install [--prefix DIR | --user]   (DESTDIR=DIR stages the install)\n       \
                     cargo xtask uninstall [--prefix DIR | --user]";

pub fn run(args: &[String]) -> Result<()> {
    let options = Options::parse(args, &environment())?;
    let build = build()?;
    let plan = plan(&build, &options.prefix, &Layout::prefix())?;
    let root = options.root();
    plan::install(&plan, &root)?;
    println!(
        "installed {} files under {} (uninstall: cargo xtask uninstall --prefix {})",
        plan.entries.len(),
        root.display(),
        options.prefix.display()
    );
    if options.destdir.is_none() {
        for hint in hints(&options.prefix, &environment()) {
            println!("{hint}");
        }
    }
    Ok(())
}

pub fn run_uninstall(args: &[String]) -> Result<()> {
    let options = Options::parse(args, &environment())?;
    plan::uninstall(&options.root())
}

/// The command line of install and uninstall, with `DESTDIR` from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Absolute: where the files will be used from.
    pub prefix: PathBuf,
    /// Where they are written instead, for a staged install.
    pub destdir: Option<PathBuf>,
}

/// The environment variables install reads, gathered so tests can give their own.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub home: Option<OsString>,
    pub destdir: Option<OsString>,
    pub path: Option<OsString>,
}

fn environment() -> Environment {
    Environment {
        home: std::env::var_os("HOME"),
        destdir: std::env::var_os("DESTDIR").filter(|value| !value.is_empty()),
        path: std::env::var_os("PATH"),
    }
}

impl Options {
    pub fn parse(args: &[String], env: &Environment) -> Result<Options> {
        let prefix = match args {
            [] => user_prefix(env)?,
            [flag] if flag == "--user" => user_prefix(env)?,
            [flag, dir] if flag == "--prefix" && !dir.is_empty() => PathBuf::from(dir),
            _ => bail!("{USAGE}"),
        };
        let prefix = std::path::absolute(&prefix)
            .with_context(|| format!("{} cannot be made absolute", prefix.display()))?;
        let destdir = env.destdir.as_ref().map(PathBuf::from);
        if let Some(destdir) = &destdir {
            ensure!(
                destdir.is_absolute(),
                "DESTDIR must be an absolute path (it is {})",
                destdir.display()
            );
        }
        Ok(Options { prefix, destdir })
    }

    /// Where the files are written: the prefix, or the prefix inside DESTDIR.
    pub fn root(&self) -> PathBuf {
        match &self.destdir {
            Some(destdir) => destdir.join(self.prefix.strip_prefix("/").unwrap_or(&self.prefix)),
            None => self.prefix.clone(),
        }
    }
}

/// `~/.local`, the default and `--user` prefix.
fn user_prefix(env: &Environment) -> Result<PathBuf> {
    let home = env
        .home
        .as_ref()
        .filter(|home| !home.is_empty())
        .context("HOME is not set; give --prefix DIR")?;
    Ok(PathBuf::from(home).join(".local"))
}

/// Where the pieces go below the prefix; the Debian package has its own library and unit
/// directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub lib_dir: PathBuf,
    pub unit_dir: PathBuf,
}

impl Layout {
    /// Under a prefix: `lib`, and the unit where systemd looks for a user's own units
    /// (`~/.local/share/systemd/user`).
    pub fn prefix() -> Layout {
        Layout {
            lib_dir: PathBuf::from("lib"),
            unit_dir: PathBuf::from("share/systemd/user"),
        }
    }
}

/// The release build that installs use, in `target/install`.
#[derive(Debug, Clone)]
pub struct Build {
    /// The profile directory holding the binaries and the libraries.
    pub release: PathBuf,
}

/// The install's own target directory: building there never relinks the build tree's.
pub fn target_dir() -> PathBuf {
    crate::target_dir().join("install")
}

fn install_cargo() -> Command {
    let mut command = cargo();
    command.env("CARGO_TARGET_DIR", target_dir());
    command
}

/// Builds the binaries and libqmgr (with its soname) for installing, in one cargo run so
/// that the crates they share are built once.
pub fn build() -> Result<Build> {
    println!(
        "==> release build for installing (in {})",
        target_dir().display()
    );
    let mut command = install_cargo();
    command
        .args(["build", "--release", "--locked", "-p", "libqmgr"])
        .env(install_library::SONAME_VARIABLE, install_library::soname());
    for (_, package) in BINARIES {
        command.args(["-p", package]);
    }
    if !command.status()?.success() {
        bail!("the release build failed");
    }
    Ok(Build {
        release: target_dir().join("release"),
    })
}

/// Everything an install writes below `prefix`.
pub fn plan(build: &Build, prefix: &Path, layout: &Layout) -> Result<Plan> {
    let mut plan = Plan::default();
    for (binary, _) in BINARIES {
        plan.copy(
            build.release.join(binary),
            Path::new("bin").join(binary),
            0o755,
        );
    }
    install_library::add_to_plan(
        &mut plan,
        &build.release,
        &headers::include_dir(),
        prefix,
        &layout.lib_dir,
    )?;
    let template = fs::read_to_string(project_root().join("contrib/systemd/qmgrd.service"))
        .context("cannot read contrib/systemd/qmgrd.service")?;
    plan.bytes(
        layout.unit_dir.join("qmgrd.service"),
        render_unit(&template, &prefix.join("bin")),
        0o644,
    );
    let qmgr = build.release.join("qmgr");
    for (shell, path) in COMPLETIONS {
        plan.bytes(path, output_of(&qmgr, &["completions", shell])?, 0o644);
    }
    for (name, text) in manual_pages(build)? {
        let section = name.rsplit('.').next().unwrap_or("1");
        plan.bytes(
            Path::new("share/man")
                .join(format!("man{section}"))
                .join(&name),
            text,
            0o644,
        );
    }
    Ok(plan)
}

/// The manual pages as (file name, roff): those `qmgr` and `qmgrd` make from their clap
/// definitions, and qmgr.conf(5).
pub fn manual_pages(build: &Build) -> Result<Vec<(String, Vec<u8>)>> {
    let scratch = target_dir().join("man-pages");
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
    output_of(
        &build.release.join("qmgr"),
        &["manpages".as_ref(), scratch.as_os_str()],
    )?;
    let mut pages = Vec::new();
    for entry in
        fs::read_dir(&scratch).with_context(|| format!("cannot list {}", scratch.display()))?
    {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(OsStr::to_str)
            .context("a page without a name")?
            .to_owned();
        pages.push((name, fs::read(&path)?));
    }
    pages.sort();
    ensure!(
        pages.iter().any(|(name, _)| name == "qmgr.1"),
        "`qmgr manpages` wrote no qmgr.1"
    );
    pages.push((
        "qmgrd.8".to_owned(),
        output_of(&build.release.join("qmgrd"), &["--manpage"])?,
    ));
    let config_page = project_root().join(CONFIG_PAGE);
    pages.push((
        "qmgr.conf.5".to_owned(),
        fs::read(&config_page).with_context(|| format!("cannot read {}", config_page.display()))?,
    ));
    Ok(pages)
}

/// The standard output of `program args`, which must succeed.
fn output_of<S: AsRef<OsStr>>(program: &Path, args: &[S]) -> Result<Vec<u8>> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {}", program.display()))?;
    ensure!(
        output.status.success(),
        "{} {} failed ({}): {}",
        program.display(),
        args.iter()
            .map(|arg| arg.as_ref().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(output.stdout)
}

fn render_unit(template: &str, bin_dir: &Path) -> String {
    template.replace("@BINDIR@", &bin_dir.display().to_string())
}

/// What to tell the user after an install into `prefix`: how to start the service at
/// login, and how to reach the commands and pages when `bin` is not on PATH.
pub fn hints(prefix: &Path, env: &Environment) -> Vec<String> {
    let bin = prefix.join("bin");
    let on_path = env
        .path
        .as_ref()
        .is_some_and(|path| std::env::split_paths(path).any(|dir| same_dir(&dir, &bin)));
    let mut hints = vec![format!(
        "start qmgrd at login: systemctl --user daemon-reload && systemctl --user enable --now qmgrd"
    )];
    if !on_path {
        hints.push(format!(
            "note: {} is not on PATH; add it, e.g. in ~/.profile: export PATH=\"{}:$PATH\"",
            bin.display(),
            bin.display()
        ));
        // man-db finds DIR/share/man by itself for each DIR/bin on PATH.
        hints.push(format!(
            "note: until then `man qmgr` needs MANPATH=\"{}:\" (the trailing colon keeps the \
             system's pages), or `man -l {}`",
            prefix.join("share/man").display(),
            prefix.join("share/man/man1/qmgr.1").display()
        ));
    }
    hints
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b || matches!((fs::canonicalize(a), fs::canonicalize(b)), (Ok(a), Ok(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(home: &str, destdir: Option<&str>) -> Environment {
        Environment {
            home: Some(home.into()),
            destdir: destdir.map(Into::into),
            path: Some("/usr/bin:/bin".into()),
        }
    }

    fn parse(args: &[&str], env: &Environment) -> Result<Options> {
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        Options::parse(&args, env)
    }

    #[test]
    fn the_default_and_user_prefix_is_dot_local() {
        let env = env("/home/ann", None);
        for args in [&[][..], &["--user"]] {
            let options = parse(args, &env).unwrap();
            assert_eq!(options.prefix, PathBuf::from("/home/ann/.local"));
            assert_eq!(options.root(), PathBuf::from("/home/ann/.local"));
        }
        let no_home = Environment::default();
        assert!(parse(&["--user"], &no_home).is_err());
        assert_eq!(
            parse(&["--prefix", "/opt/q"], &no_home).unwrap().prefix,
            PathBuf::from("/opt/q")
        );
    }

    #[test]
    fn destdir_stages_the_prefix_inside_it() {
        let options = parse(&["--prefix", "/usr/local"], &env("/h", Some("/tmp/stage"))).unwrap();
        assert_eq!(options.prefix, PathBuf::from("/usr/local"));
        assert_eq!(options.root(), PathBuf::from("/tmp/stage/usr/local"));
        assert!(parse(&["--prefix", "/usr"], &env("/h", Some("stage"))).is_err());
    }

    #[test]
    fn a_relative_prefix_is_made_absolute_and_bad_arguments_are_refused() {
        let options = parse(&["--prefix", "here"], &env("/h", None)).unwrap();
        assert!(options.prefix.is_absolute());
        assert!(options.prefix.ends_with("here"));
        for bad in [
            &["--prefix"][..],
            &["--prefix", ""],
            &["--user", "x"],
            &["--root", "/x"],
        ] {
            assert!(parse(bad, &env("/h", None)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hints_say_when_bin_is_not_on_path() {
        let mut env = env("/h", None);
        let hints = hints(Path::new("/opt/q"), &env).join("\n");
        assert!(
            hints.contains("systemctl --user enable --now qmgrd"),
            "{hints}"
        );
        assert!(hints.contains("/opt/q/bin is not on PATH"), "{hints}");
        assert!(hints.contains("MANPATH=\"/opt/q/share/man:\""), "{hints}");
        env.path = Some("/usr/bin:/opt/q/bin".into());
        let hints = hints_for(&env);
        assert!(!hints.contains("PATH"), "{hints}");
    }

    fn hints_for(env: &Environment) -> String {
        hints(Path::new("/opt/q"), env).join("\n")
    }

    #[test]
    fn the_unit_points_at_the_installed_daemon_and_its_page() {
        let template =
            fs::read_to_string(project_root().join("contrib/systemd/qmgrd.service")).unwrap();
        let unit = render_unit(&template, Path::new("/opt/q/bin"));
        assert!(
            unit.contains("ExecStart=/opt/q/bin/qmgrd --foreground"),
            "{unit}"
        );
        assert!(unit.contains("Restart=on-failure"));
        assert!(unit.contains("Documentation=man:qmgrd(8)"));
        assert!(!unit.contains('@'), "every placeholder is filled: {unit}");
    }
}
