//! Writing one part of a shared results file (`bench/results/reliability.md`) without
//! touching the rest: each part sits between `<!-- NAME -->` and `<!-- /NAME -->`, and a
//! part may live inside a section (`<!-- SECTION -->` … `<!-- /SECTION -->`), so that
//! several tests, each writing its own part, fill one section of a file that other
//! sections share.

use std::io;
use std::path::{Path, PathBuf};

/// The variable that names the results file a reliability test writes its figures to
/// (set by `cargo xtask reliability`); without it the test only prints them.
pub const RESULTS_VAR: &str = "QMGR_RELIABILITY_RESULTS";

/// The variable that picks the reliability profile: `full` for the long runs of
/// `cargo xtask reliability`; anything else (or nothing) is the short profile that
/// `cargo test` and `cargo xtask reliability --short` run.
pub const PROFILE_VAR: &str = "QMGR_RELIABILITY_PROFILE";

/// The results file named by [`RESULTS_VAR`], if any.
pub fn results_file() -> Option<PathBuf> {
    std::env::var_os(RESULTS_VAR).map(PathBuf::from)
}

/// Whether the full profile was asked for (see [`PROFILE_VAR`]).
pub fn full_profile() -> bool {
    std::env::var_os(PROFILE_VAR).is_some_and(|value| value == "full")
}

/// `short` in the short profile, `full` in the full one.
pub fn by_profile<T>(short: T, full: T) -> T {
    if full_profile() { full } else { short }
}

/// Replaces the text of part `part` inside section `section` of the file at `path` with
/// `body`. A missing file is created; a missing section is appended at the end; a missing
/// part is appended at the end of its section. Everything outside the part stays as it was.
pub fn write_part(path: &Path, section: &str, part: &str, body: &str) -> io::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error),
    };
    let updated = with_part(&text, section, part, body).map_err(|why| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {why}", path.display()),
        )
    })?;
    std::fs::write(path, updated)
}

/// `text` with part `part` of section `section` holding `body` (see [`write_part`]).
pub fn with_part(text: &str, section: &str, part: &str, body: &str) -> Result<String, String> {
    let (open, close) = markers(section);
    let mut text = text.to_owned();
    if !text.contains(&open) {
        if !text.is_empty() && !text.ends_with("\n\n") {
            text.push_str(if text.ends_with('\n') { "\n" } else { "\n\n" });
        }
        for line in [&open, &close] {
            text.push_str(line);
            text.push('\n');
        }
    }
    let section_start = text
        .find(&open)
        .map(|at| at + open.len())
        .unwrap_or_default();
    let Some(section_len) = text[section_start..].find(&close) else {
        return Err(format!("{open} has no {close}"));
    };
    let section_end = section_start + section_len;
    let inner = &text[section_start..section_end];
    let (part_open, part_close) = markers(part);
    let block = format!("{part_open}\n{}\n{part_close}\n", body.trim_end());
    let new_inner = match (inner.find(&part_open), inner.find(&part_close)) {
        (Some(start), Some(end)) if start < end => {
            let after = end + part_close.len();
            let after = after + usize::from(inner[after..].starts_with('\n'));
            format!("{}{block}{}", &inner[..start], &inner[after..])
        }
        (None, None) => {
            let mut inner = inner.to_owned();
            if !inner.ends_with('\n') {
                inner.push('\n');
            }
            inner.push_str(&block);
            inner
        }
        _ => return Err(format!("the markers of part {part} are out of order")),
    };
    Ok(format!(
        "{}{new_inner}{}",
        &text[..section_start],
        &text[section_end..]
    ))
}

fn markers(name: &str) -> (String, String) {
    (format!("<!-- {name} -->"), format!("<!-- /{name} -->"))
}

#[cfg(test)]
mod tests {
    use super::with_part;

    #[test]
    fn a_new_section_goes_after_the_rest() {
        let text = with_part("# Faults\n\n| a |\n", "crashes", "daemon", "rows").unwrap();
        assert_eq!(
            text,
            "# Faults\n\n| a |\n\n<!-- crashes -->\n<!-- daemon -->\nrows\n<!-- /daemon -->\n<!-- /crashes -->\n"
        );
    }

    #[test]
    fn a_part_is_replaced_in_place_and_the_others_stay() {
        let text = "head\n\n<!-- crashes -->\n<!-- daemon -->\nold\n<!-- /daemon -->\n<!-- store -->\nkept\n<!-- /store -->\n<!-- /crashes -->\ntail\n";
        let text = with_part(text, "crashes", "daemon", "new\nlines\n").unwrap();
        assert_eq!(
            text,
            "head\n\n<!-- crashes -->\n<!-- daemon -->\nnew\nlines\n<!-- /daemon -->\n<!-- store -->\nkept\n<!-- /store -->\n<!-- /crashes -->\ntail\n"
        );
    }

    #[test]
    fn a_new_part_goes_at_the_end_of_its_section() {
        let text = "<!-- crashes -->\n<!-- daemon -->\nd\n<!-- /daemon -->\n<!-- /crashes -->\n<!-- fuzz -->\nf\n<!-- /fuzz -->\n";
        let text = with_part(text, "crashes", "store", "s").unwrap();
        assert_eq!(
            text,
            "<!-- crashes -->\n<!-- daemon -->\nd\n<!-- /daemon -->\n<!-- store -->\ns\n<!-- /store -->\n<!-- /crashes -->\n<!-- fuzz -->\nf\n<!-- /fuzz -->\n"
        );
    }

    #[test]
    fn a_section_without_its_end_is_refused() {
        assert!(with_part("<!-- crashes -->\nrows\n", "crashes", "daemon", "x").is_err());
    }
}
