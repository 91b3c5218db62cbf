//! The manual pages of `qmgr`, made from the same clap definition that parses the command
//! line (`qmgr manpages DIR`, hidden; `cargo xtask install` and `cargo xtask deb` run it):
//! `qmgr.1` for the command as a whole and `qmgr-SUB.1` for each subcommand (with
//! `qmgr-daemon-status.1` and `qmgr-daemon-stop.1` below `qmgr-daemon.1`).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

use crate::cli::Cli;

/// The manual the pages belong to (the centre of their footer).
const MANUAL: &str = "qmgr manual";

/// Writes every page into `dir` (which must exist) and returns their paths, `qmgr.1` first.
pub fn write_pages(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (name, text) in pages()? {
        let path = dir.join(name);
        fs::write(&path, text).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot write {}: {error}", path.display()),
            )
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Every page as (file name, roff text), `qmgr.1` first.
pub fn pages() -> io::Result<Vec<(String, Vec<u8>)>> {
    // Building the command names each subcommand `qmgr-SUB` (its display name), which
    // is what the pages are called; the `help` pseudo-command gets no page.
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let mut pages = Vec::new();
    collect(&command, true, &mut pages)?;
    Ok(pages)
}

fn collect(
    command: &clap::Command,
    top: bool,
    pages: &mut Vec<(String, Vec<u8>)>,
) -> io::Result<()> {
    let man = Man::new(command.clone())
        .section("1")
        .manual(MANUAL)
        .source(format!("qmgr {}", env!("CARGO_PKG_VERSION")));
    let mut text = Vec::new();
    render(&man, command, top, &mut text)?;
    pages.push((man.get_filename(), text));
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        collect(sub, false, pages)?;
    }
    Ok(())
}

/// clap_mangen's sections, with the text after `--help` (clap's "after help") under a
/// heading that says what it is, and the sections a man page of a command is expected to
/// have that clap does not know.
fn render(man: &Man, command: &clap::Command, top: bool, out: &mut dyn Write) -> io::Result<()> {
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    let mut description = Roff::new();
    if let Some(about) = command.get_long_about().or_else(|| command.get_about()) {
        description.control("SH", ["DESCRIPTION"]);
        for (index, paragraph) in about.to_string().split("\n\n").enumerate() {
            if index > 0 {
                description.control("PP", []);
            }
            // Lines aligned in columns (the overview of the top page) keep their lines.
            if paragraph.contains("   ") {
                preformatted(&mut description, paragraph);
            } else {
                description.text([roman(joined(paragraph))]);
            }
        }
    }
    description.to_writer(out)?;
    let has_arguments = command
        .get_arguments()
        .any(|arg| !arg.is_hide_set() && arg.get_id() != "version");
    if has_arguments {
        man.render_options_section(out)?;
    }
    if command.get_subcommands().any(|sub| !sub.is_hide_set()) {
        man.render_subcommands_section(out)?;
    }
    let mut roff = Roff::new();
    if let Some(after) = command.get_after_help() {
        let after = after.to_string();
        if let Some(exit_codes) = after.strip_prefix("Exit codes:\n") {
            roff.control("SH", ["EXIT STATUS"]);
            preformatted(&mut roff, exit_codes);
        } else if let Some(examples) = after.strip_prefix("Examples:\n") {
            let (examples, notes) = examples.split_once("\n\n").unwrap_or((examples, ""));
            roff.control("SH", ["EXAMPLES"]);
            preformatted(&mut roff, examples);
            if !notes.is_empty() {
                roff.control("SH", ["NOTES"]);
                paragraphs(&mut roff, notes);
            }
        } else {
            roff.control("SH", ["NOTES"]);
            paragraphs(&mut roff, &after);
        }
    }
    if top {
        roff.control("SH", ["ENVIRONMENT"]);
        for (name, meaning) in ENVIRONMENT {
            roff.control("TP", []);
            roff.text([bold(name)]);
            roff.text([roman(meaning)]);
        }
        roff.control("SH", ["FILES"]);
        for (name, meaning) in FILES {
            roff.control("TP", []);
            roff.text([bold(name)]);
            roff.text([roman(meaning)]);
        }
    }
    roff.control("SH", ["SEE ALSO"]);
    let see_also = if top {
        "qmgrd(8), qmgr.conf(5)"
    } else {
        "qmgr(1), qmgrd(8), qmgr.conf(5)"
    };
    roff.text([roman(see_also)]);
    roff.to_writer(out)?;
    man.render_version_section(out)
}

/// Lines kept as written (a table of exit codes, example commands).
fn preformatted(roff: &mut Roff, text: &str) {
    roff.control("nf", []);
    for line in text.lines() {
        roff.text([roman(line.strip_prefix("  ").unwrap_or(line))]);
    }
    roff.control("fi", []);
}

/// Blank-line separated paragraphs, filled by the formatter.
fn paragraphs(roff: &mut Roff, text: &str) {
    for (index, paragraph) in text.split("\n\n").enumerate() {
        if index > 0 {
            roff.control("PP", []);
        }
        roff.text([roman(joined(paragraph))]);
    }
}

/// The words of `text` on one line: the formatter fills it.
fn joined(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The variables `qmgr` reads, for ENVIRONMENT.
const ENVIRONMENT: [(&str, &str); 4] = [
    (
        "XDG_CONFIG_HOME",
        "Where the configuration is read: $XDG_CONFIG_HOME/qmgr/config.toml (default \
         ~/.config/qmgr/config.toml; see qmgr.conf(5)).",
    ),
    (
        "XDG_STATE_HOME",
        "Where qmgrd keeps its job store and log: $XDG_STATE_HOME/qmgr (default \
         ~/.local/state/qmgr).",
    ),
    (
        "XDG_RUNTIME_DIR",
        "Where qmgrd's socket is: $XDG_RUNTIME_DIR/qmgr/qmgrd.sock.",
    ),
    (
        "QMGRD",
        "The qmgrd program to start when none runs; by default the one beside qmgr, then \
         one on PATH.",
    ),
];

/// The files `qmgr` and its daemon use, for FILES.
const FILES: [(&str, &str); 3] = [
    (
        "~/.config/qmgr/config.toml",
        "The configuration of the user's qmgrd (qmgr.conf(5)).",
    ),
    (
        "~/.local/state/qmgr/",
        "The job store (qmgr.sqlite3) and the log of a qmgrd started on demand (qmgrd.log).",
    ),
    (
        "$XDG_RUNTIME_DIR/qmgr/qmgrd.sock",
        "The socket qmgr talks to qmgrd through.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_for_the_command_and_each_visible_subcommand() {
        let pages = pages().unwrap();
        let names: Vec<&str> = pages.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names[0], "qmgr.1");
        for expected in [
            "qmgr-transfer.1",
            "qmgr-list.1",
            "qmgr-daemon.1",
            "qmgr-daemon-status.1",
            "qmgr-completions.1",
        ] {
            assert!(names.contains(&expected), "{expected} in {names:?}");
        }
        for absent in ["qmgr-manpages.1", "qmgr-help.1"] {
            assert!(!names.contains(&absent), "{absent} in {names:?}");
        }
        let visible = Cli::command()
            .get_subcommands()
            .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
            .count();
        // The daemon's two subcommands have pages of their own.
        assert_eq!(names.len(), 1 + visible + 2, "{names:?}");
    }

    #[test]
    fn the_main_page_has_the_sections_of_a_command_page() {
        let pages = pages().unwrap();
        let text = String::from_utf8(pages[0].1.clone()).unwrap();
        assert!(text.contains("\n.TH qmgr 1 "), "{text}");
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH DESCRIPTION",
            ".SH SUBCOMMANDS",
            ".SH \"EXIT STATUS\"",
            ".SH ENVIRONMENT",
            ".SH FILES",
            ".SH \"SEE ALSO\"",
        ] {
            assert!(text.contains(section), "{section} missing:\n{text}");
        }
        assert!(text.contains("qmgr\\-transfer(1)"), "{text}");
        assert!(!text.contains(".SH EXTRA"), "{text}");
        let transfer = pages
            .iter()
            .find(|(name, _)| name == "qmgr-transfer.1")
            .map(|(_, text)| String::from_utf8(text.clone()).unwrap())
            .unwrap();
        assert!(transfer.contains(".SH EXAMPLES"), "{transfer}");
        assert!(transfer.contains("\\-\\-background"), "{transfer}");
    }

    #[test]
    fn pages_are_written_to_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_pages(dir.path()).unwrap();
        assert_eq!(written[0], dir.path().join("qmgr.1"));
        for path in &written {
            assert!(fs::metadata(path).unwrap().len() > 0, "{}", path.display());
        }
    }
}
