//! Reading a password: typed at the terminal without echo, or the first line of standard
//! input when that is not a terminal (`echo "$PW" | qmgr setcredentials …`). Never from the
//! command line, where every user of the machine can read it in `ps`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, IsTerminal, Read, Write};

use rustix::termios::{self, LocalModes, OptionalActions, SpecialCodeIndex, Termios};

use crate::failure::{Exit, Failure};

/// The password, without its line end.
pub fn read_password(prompt: &str) -> Result<String, Failure> {
    if io::stdin().is_terminal() {
        from_terminal(prompt)
    } else {
        first_line_of_stdin()
    }
}

fn first_line_of_stdin() -> Result<String, Failure> {
    let mut line = String::new();
    let read = io::stdin().lock().read_line(&mut line).map_err(|error| {
        Failure::usage(format!(
            "cannot read the password from standard input: {error}"
        ))
    })?;
    if read == 0 {
        return Err(Failure::usage(
            "no password: standard input is empty (type it at a terminal, or pipe it in)",
        ));
    }
    Ok(without_line_end(line))
}

fn without_line_end(mut line: String) -> String {
    if line.ends_with('\n') {
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
    }
    line
}

/// Puts the terminal back as it was, however the prompt ends.
struct Restore<'a> {
    tty: &'a File,
    original: Termios,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.tty, OptionalActions::Flush, &self.original);
    }
}

/// Reads keys one at a time with echo, line editing and signals off, so that Ctrl-C can
/// end the prompt with the terminal restored (a signal would leave echo off).
fn from_terminal(prompt: &str) -> Result<String, Failure> {
    let trouble = |error: io::Error| {
        Failure::usage(format!("cannot read a password at the terminal: {error}"))
    };
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(trouble)?;
    let original = termios::tcgetattr(&tty).map_err(|e| trouble(e.into()))?;
    let mut quiet = original.clone();
    quiet
        .local_modes
        .remove(LocalModes::ECHO | LocalModes::ICANON | LocalModes::ISIG);
    quiet.special_codes[SpecialCodeIndex::VMIN] = 1;
    quiet.special_codes[SpecialCodeIndex::VTIME] = 0;
    let restore = Restore {
        tty: &tty,
        original,
    };
    termios::tcsetattr(&tty, OptionalActions::Flush, &quiet).map_err(|e| trouble(e.into()))?;
    (&tty).write_all(prompt.as_bytes()).map_err(trouble)?;
    // Each read returns as soon as a key arrives (VMIN 1, VTIME 0), so buffering delays
    // nothing.
    let keys = io::BufReader::new(&tty).bytes();
    let typed = edit_line(&mut keys.map(|byte| byte.map_err(trouble)));
    drop(restore);
    let _ = (&tty).write_all(b"\n");
    typed
}

/// The line typed as the keys come: Enter ends it, Backspace and Ctrl-U edit it, Ctrl-C
/// (and Ctrl-D on an empty line) give up.
fn edit_line(keys: &mut impl Iterator<Item = Result<u8, Failure>>) -> Result<String, Failure> {
    let mut line: Vec<u8> = Vec::new();
    for key in keys {
        match key? {
            b'\r' | b'\n' => {
                return String::from_utf8(line)
                    .map_err(|_| Failure::usage("the password is not valid UTF-8"));
            }
            0x03 => {
                return Err(Failure::new(
                    Exit::Interrupted,
                    "interrupted; nothing was changed",
                ));
            }
            0x04 if line.is_empty() => {
                return Err(Failure::usage("no password given; nothing was changed"));
            }
            0x7f | 0x08 => {
                // One character back: its UTF-8 continuation bytes go with it.
                while line.pop().is_some_and(|byte| byte & 0xC0 == 0x80) {}
            }
            0x15 => line.clear(),
            byte => line.push(byte),
        }
    }
    Err(Failure::usage(
        "the terminal closed before the password was complete",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(keys: &[u8]) -> Result<String, Failure> {
        edit_line(&mut keys.iter().map(|byte| Ok(*byte)))
    }

    #[test]
    fn keys_edit_the_line_as_a_terminal_would() {
        assert_eq!(typed(b"secret\r").unwrap(), "secret");
        assert_eq!(typed(b"secrex\x7ft\n").unwrap(), "secret");
        assert_eq!(
            typed("pä\x7fa\r".as_bytes()).unwrap(),
            "pa",
            "backspace takes a whole character"
        );
        assert_eq!(typed(b"wrong\x15right\r").unwrap(), "right");
        assert_eq!(typed(b"abc\x03").unwrap_err().exit, Exit::Interrupted);
        assert!(typed(b"\x04").is_err());
        assert!(typed(b"no end").is_err());
    }

    #[test]
    fn piped_passwords_lose_only_their_line_end() {
        assert_eq!(without_line_end("p w\r\n".into()), "p w");
        assert_eq!(without_line_end("p w \n".into()), "p w ");
        assert_eq!(without_line_end("last".into()), "last");
    }
}
