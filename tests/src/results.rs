//! Sections of a shared results file (`bench/results/reliability.md`): each test that
//! writes figures there owns the text between `<!-- NAME -->` and `<!-- /NAME -->` and
//! leaves everything else as it found it.

use std::io;
use std::path::Path;

/// Puts `body` between the markers of section `name` in the file at `path`: in place of
/// the section's old text when the markers are there, at the end otherwise (the file is
/// made when missing).
pub fn write_section(path: &Path, name: &str, body: &str) -> io::Result<()> {
    let old = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error),
    };
    std::fs::write(path, with_section(&old, name, body))
}

/// `text` with section `name` holding `body` (see [`write_section`]).
pub fn with_section(text: &str, name: &str, body: &str) -> String {
    let open = format!("<!-- {name} -->");
    let close = format!("<!-- /{name} -->");
    let section = format!("{open}\n{}\n{close}", body.trim_end());
    if let Some(start) = text.find(&open)
        && let Some(end) = text[start..]
            .find(&close)
            .map(|at| start + at + close.len())
    {
        return format!("{}{section}{}", &text[..start], &text[end..]);
    }
    let mut out = text.trim_end().to_owned();
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    out.push_str(&section);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::with_section;

    #[test]
    fn a_new_section_goes_at_the_end_and_the_rest_stays() {
        let text = "# Title\n\nthe fault matrix\n";
        let out = with_section(text, "soak", "figures");
        assert_eq!(
            out,
            "# Title\n\nthe fault matrix\n\n<!-- soak -->\nfigures\n<!-- /soak -->\n"
        );
    }

    #[test]
    fn an_existing_section_is_replaced_in_place() {
        let text = "a\n<!-- users -->\nold\n<!-- /users -->\nb\n<!-- soak -->\nx\n<!-- /soak -->\n";
        let out = with_section(text, "users", "new\nlines\n");
        assert_eq!(
            out,
            "a\n<!-- users -->\nnew\nlines\n<!-- /users -->\nb\n<!-- soak -->\nx\n<!-- /soak -->\n"
        );
        assert_eq!(
            with_section("", "users", "x"),
            "<!-- users -->\nx\n<!-- /users -->\n"
        );
    }
}
