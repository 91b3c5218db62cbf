//! qmgrd's command line as clap sees it: what parses `qmgrd --foreground` is also what
//! `qmgrd --manpage` turns into the qmgrd(8) page (`cargo xtask install` installs it).

use std::io::{self, Write};

use clap::{Arg, ArgAction, ArgGroup};
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

/// How qmgrd was asked to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Serve until stopped; logs on stderr.
    Foreground,
    /// Start a detached qmgrd and return once it accepts connections.
    Spawned,
    /// The detached qmgrd that `--spawned` starts (not for people).
    Detached,
    /// Print the qmgrd(8) page (for installers).
    Manpage,
}

pub fn command() -> clap::Command {
    clap::Command::new("qmgrd")
        .version(env!("CARGO_PKG_VERSION"))
        .about("The per-user qmgr service: the queue of background transfers")
        .long_about(
            "qmgrd owns one user's queue of background transfers (Windows' Background \
             Intelligent Transfer Service for Linux): the job store, the transfer engine and \
             the socket that qmgr(1), libqmgr and the other clients talk to. It runs as that \
             user and serves only that user and root.\n\n\
             Nobody needs to start it by hand: the first client that needs it runs \
             `qmgrd --spawned`, and a qmgrd started that way exits after idle_exit (see \
             qmgr.conf(5)) with nothing to do. To keep it running, and have jobs continue at \
             login after a reboot, enable the systemd user unit, which runs \
             `qmgrd --foreground`: systemctl --user enable --now qmgrd. For jobs that should \
             run without a login session, also: loginctl enable-linger \"$USER\".\n\n\
             SIGTERM or SIGINT stops transfers, writes their progress and exits 0; the next \
             start continues partial files where they stopped, also after a crash. A second \
             qmgrd for the same store exits with a message naming the first one's pid.",
        )
        .arg(
            Arg::new("foreground")
                .long("foreground")
                .action(ArgAction::SetTrue)
                .help(
                    "Serve in the foreground until SIGTERM or SIGINT, logging to stderr (the \
                     journal under systemd); what the systemd user unit runs",
                ),
        )
        .arg(
            Arg::new("spawned")
                .long("spawned")
                .action(ArgAction::SetTrue)
                .help(
                    "Start a detached qmgrd, logging to $XDG_STATE_HOME/qmgr/qmgrd.log, and \
                     exit once it accepts connections (or at once if one already serves); \
                     what clients run when they find no service",
                ),
        )
        .arg(
            Arg::new("detached")
                .long("detached")
                .action(ArgAction::SetTrue)
                .hide(true),
        )
        .arg(
            Arg::new("manpage")
                .long("manpage")
                .action(ArgAction::SetTrue)
                .hide(true)
                .help("Print the qmgrd(8) manual page"),
        )
        // Not `required`: clap would name the hidden modes in its message and synopsis.
        .group(
            ArgGroup::new("mode")
                .args(["foreground", "spawned", "detached", "manpage"])
                .multiple(false),
        )
        // Later lines are indented under clap's "Usage: "; the manual page trims them.
        .override_usage(
            "qmgrd --foreground\n       qmgrd --spawned\n       qmgrd --help | --version",
        )
}

/// Parses the command line `args` (with the program name first): a usage error, `--help`
/// and `--version` are clap's errors, which print themselves and exit.
pub fn parse<I, T>(args: I) -> Result<Invocation, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    let flag = |name: &str| matches.get_flag(name);
    // The group lets at most one of them be set.
    Ok(if flag("foreground") {
        Invocation::Foreground
    } else if flag("spawned") {
        Invocation::Spawned
    } else if flag("detached") {
        Invocation::Detached
    } else if flag("manpage") {
        Invocation::Manpage
    } else {
        return Err(command().error(
            clap::error::ErrorKind::MissingRequiredArgument,
            "say how to run: --foreground or --spawned",
        ));
    })
}

/// The variables qmgrd reads, for ENVIRONMENT.
const ENVIRONMENT: [(&str, &str); 4] = [
    (
        "XDG_CONFIG_HOME",
        "The configuration is $XDG_CONFIG_HOME/qmgr/config.toml (default \
         ~/.config/qmgr/config.toml), described in qmgr.conf(5).",
    ),
    (
        "XDG_STATE_HOME",
        "The job store and the log are in $XDG_STATE_HOME/qmgr (default ~/.local/state/qmgr), \
         unless the configuration's state_dir says otherwise.",
    ),
    (
        "XDG_RUNTIME_DIR",
        "The socket is $XDG_RUNTIME_DIR/qmgr/qmgrd.sock (without the variable: \
         $XDG_STATE_HOME/qmgr/run/qmgrd.sock).",
    ),
    (
        "QMGR_LOG",
        "A tracing filter (such as debug or qmgr_service=trace) that overrides the \
         configuration's log_level.",
    ),
];

const FILES: [(&str, &str); 4] = [
    (
        "~/.config/qmgr/config.toml",
        "The configuration (qmgr.conf(5)); a missing file means every default.",
    ),
    (
        "~/.local/state/qmgr/qmgr.sqlite3",
        "The job store (SQLite in WAL mode).",
    ),
    (
        "~/.local/state/qmgr/qmgrd.log",
        "The log of a qmgrd started on demand.",
    ),
    (
        "~/.local/state/qmgr/store.lock",
        "Holds the pid of the qmgrd that owns the store.",
    ),
];

/// Writes the qmgrd(8) page: clap's sections, then those a daemon's page is expected to
/// have.
pub fn write_manual_page(out: &mut dyn Write) -> io::Result<()> {
    let man = Man::new(command())
        .section("8")
        .manual("qmgr manual")
        .source(format!("qmgr {}", env!("CARGO_PKG_VERSION")));
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    let mut roff = Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    roff.text([roman(
        "0 when stopped by a signal or after idle_exit; 2 for a usage error; 75 when another \
         qmgrd serves the store or the socket; 1 for any other failure (the message says \
         why).",
    )]);
    for (heading, entries) in [("ENVIRONMENT", &ENVIRONMENT), ("FILES", &FILES)] {
        roff.control("SH", [heading]);
        for (name, meaning) in entries {
            roff.control("TP", []);
            roff.text([bold(*name)]);
            roff.text([roman(*meaning)]);
        }
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman("qmgr(1), qmgr.conf(5), systemctl(1), loginctl(1)")]);
    roff.to_writer(out)?;
    man.render_version_section(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Invocation, clap::Error> {
        super::parse(std::iter::once("qmgrd").chain(args.iter().copied()))
    }

    #[test]
    fn exactly_one_mode() {
        assert_eq!(parse(&["--foreground"]).unwrap(), Invocation::Foreground);
        assert_eq!(parse(&["--spawned"]).unwrap(), Invocation::Spawned);
        assert_eq!(parse(&["--detached"]).unwrap(), Invocation::Detached);
        assert_eq!(parse(&["--manpage"]).unwrap(), Invocation::Manpage);
        for wrong in [&[][..], &["--foreground", "--spawned"], &["serve"]] {
            let error = parse(wrong).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{wrong:?}: {error}");
            let message = error.to_string();
            assert!(!message.contains("--detached"), "{message}");
        }
        let version = parse(&["--version"]).unwrap_err();
        assert_eq!(version.kind(), clap::error::ErrorKind::DisplayVersion);
        assert_eq!(
            version.to_string(),
            format!("qmgrd {}\n", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn the_page_is_section_8_and_hides_the_internal_modes() {
        command().debug_assert();
        let mut page = Vec::new();
        write_manual_page(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.contains("\n.TH qmgrd 8 "), "{page}");
        for expected in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH OPTIONS",
            "\\-\\-foreground",
            "\\-\\-spawned",
            ".SH \"EXIT STATUS\"",
            ".SH ENVIRONMENT",
            "QMGR_LOG",
            ".SH FILES",
            ".SH \"SEE ALSO\"",
        ] {
            assert!(page.contains(expected), "{expected} missing:\n{page}");
        }
        for hidden in ["\\-\\-detached", "\\-\\-manpage"] {
            assert!(!page.contains(hidden), "{hidden} shown:\n{page}");
        }
    }
}
