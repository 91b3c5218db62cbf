//! The notification command line (SetNotifyCmdLine): its parameters are split as Windows'
//! `CommandLineToArgvW` splits them, and the program runs without a shell and with a minimal
//! environment.

use std::process::{Command, Stdio};

use qmgr_core::job::NotifyCommand;

/// Splits a Windows-style parameter string into arguments:
/// whitespace separates arguments outside quotes; `"` toggles quoting; `2n` backslashes
/// before a quote give `n` backslashes and the quote acts, `2n+1` give `n` backslashes and
/// a literal quote; backslashes not before a quote are literal; `""` inside quotes is a
/// literal quote (the rule of Windows since 2008).
pub fn split_parameters(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_argument = false;
    let mut quoted = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let start = i;
                while i < chars.len() && chars[i] == '\\' {
                    i += 1;
                }
                let count = i - start;
                in_argument = true;
                if i < chars.len() && chars[i] == '"' {
                    current.extend(std::iter::repeat_n('\\', count / 2));
                    if count % 2 == 1 {
                        current.push('"');
                        i += 1;
                    }
                } else {
                    current.extend(std::iter::repeat_n('\\', count));
                }
                continue;
            }
            '"' => {
                in_argument = true;
                if quoted && chars.get(i + 1) == Some(&'"') {
                    current.push('"');
                    i += 1;
                } else {
                    quoted = !quoted;
                }
            }
            ' ' | '\t' if !quoted => {
                if in_argument {
                    args.push(std::mem::take(&mut current));
                    in_argument = false;
                }
            }
            _ => {
                in_argument = true;
                current.push(c);
            }
        }
        i += 1;
    }
    if in_argument {
        args.push(current);
    }
    args
}

/// The `PATH` a notification program gets.
pub const NOTIFY_PATH: &str = "/usr/bin:/bin";

/// Variables a notification program gets from qmgrd's own environment, when set there.
/// Nothing else of it passes: qmgrd's environment is that of whichever client started it.
pub const NOTIFY_INHERITED: [&str; 4] = ["HOME", "USER", "LOGNAME", "LANG"];

/// Starts the program of a notification command, detached, with no shell, the standard
/// streams on /dev/null and a minimal environment (`PATH` = [`NOTIFY_PATH`] and the
/// [`NOTIFY_INHERITED`] variables). Windows passes the whole parameter string, whose first
/// word is conventionally the program name again; qmgr follows that: the first parsed
/// parameter is argv[0] when the string is given. The program must be an absolute path
/// (the service checks; this refuses anything else too, so no `PATH` search ever happens).
pub fn run(command: &NotifyCommand) -> std::io::Result<()> {
    if !command.program.starts_with('/') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the program is not an absolute path",
        ));
    }
    let mut process = Command::new(&command.program);
    process.env_clear().env("PATH", NOTIFY_PATH);
    for name in NOTIFY_INHERITED {
        if let Some(value) = std::env::var_os(name) {
            process.env(name, value);
        }
    }
    if let Some(parameters) = &command.parameters {
        let mut words = split_parameters(parameters).into_iter();
        if let Some(first) = words.next() {
            std::os::unix::process::CommandExt::arg0(&mut process, first);
        }
        process.args(words);
    }
    let mut child = process
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // Reap it in the background so it never lingers as a zombie.
    std::thread::spawn(move || child.wait());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_parameters;

    fn split(text: &str) -> Vec<String> {
        split_parameters(text)
    }

    #[test]
    fn splits_like_command_line_to_argv() {
        // The examples of Microsoft's "Parsing C++ command-line arguments" table.
        assert_eq!(split(r#""abc" d e"#), ["abc", "d", "e"]);
        assert_eq!(split(r#"a\\\b d"e f"g h"#), [r"a\\\b", "de fg", "h"]);
        assert_eq!(split(r#"a\\\"b c d"#), [r#"a\"b"#, "c", "d"]);
        assert_eq!(split(r#"a\\\\"b c" d e"#), [r"a\\b c", "d", "e"]);
        assert_eq!(split(r#"a"b"" c d"#), [r#"ab" c d"#]);
    }

    #[test]
    fn whitespace_and_empty_arguments() {
        assert!(split("").is_empty());
        assert!(split("   \t ").is_empty());
        assert_eq!(split(r#"prog "" x"#), ["prog", "", "x"]);
        assert_eq!(split("  a   b  "), ["a", "b"]);
    }
}
