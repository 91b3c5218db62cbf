//! The hand-written qmgr.conf(5) page (contrib/man/qmgr.conf.5) describes every key the
//! configuration parser accepts, and its example is a valid configuration.
//!
//! The keys are asked of the parser itself: an unknown key is refused with the list of the
//! keys that table takes, so a key added to the parser fails this test until the page
//! names it.

use std::path::PathBuf;

use qmgr_core::config::Config;

fn manual_page() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contrib/man/qmgr.conf.5");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The keys the parser lists when `text` (with one unknown key) is refused.
fn accepted_keys(text: &str) -> Vec<String> {
    let error = Config::from_toml_str(text, "config.toml").unwrap_err();
    let message = error.to_string();
    let (_, list) = message
        .split_once("expected one of ")
        .unwrap_or_else(|| panic!("no list of keys in {message:?}"));
    let keys: Vec<String> = list
        .split(", ")
        .filter_map(|key| key.trim().split('`').nth(1).map(str::to_owned))
        .collect();
    assert!(keys.len() > 2, "{message}");
    keys
}

/// The bold key names the page describes in roff (`.BR key " (default …"`, `.TP` items).
fn described(page: &str, key: &str) -> bool {
    page.lines()
        .filter(|line| {
            line.starts_with(".BR ") || line.starts_with(".B ") || line.starts_with(".SS ")
        })
        .any(|line| {
            line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .any(|word| word == key)
        })
}

#[test]
fn every_key_the_parser_accepts_is_in_the_page() {
    let page = manual_page();
    let tables = [
        ("top level", "no_such_key = 1\n"),
        ("[job_defaults]", "[job_defaults]\nno_such_key = 1\n"),
        ("[[schedule]]", "[[schedule]]\nno_such_key = 1\n"),
    ];
    let mut missing = Vec::new();
    for (table, text) in tables {
        for key in accepted_keys(text) {
            if !described(&page, &key) {
                missing.push(format!("{key} ({table})"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "qmgr.conf.5 does not describe: {}",
        missing.join(", ")
    );
    // The test can fail: a key the page does not have is found missing.
    assert!(!described(&page, "no_such_key"));
    assert!(described(&page, "schedule") && described(&page, "job_defaults"));
}

#[test]
fn the_example_of_the_page_is_a_valid_configuration() {
    let page = manual_page();
    let (_, after) = page
        .split_once(".SH EXAMPLE\n.nf\n")
        .expect("an EXAMPLE section");
    let (example, _) = after.split_once(".fi\n").expect("the example ends");
    // The only roff escape in it is `\-` for a hyphen.
    let example = example.replace("\\-", "-");
    let config =
        Config::from_toml_str(&example, "qmgr.conf.5").unwrap_or_else(|e| panic!("{e}\n{example}"));
    assert_eq!(config.max_background_jobs, 2);
    assert_eq!(config.schedules.len(), 2);
}
