//! Why a command failed and the exit code that says so.

use std::fmt;

use qmgr_core::hresult;
use qmgr_core::{ErrorContext, QmgrError};

/// The exit codes of `qmgr`, documented in `--help`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The command did what it was asked.
    Success = 0,
    /// A job failed, or the service refused the request (wrong state, access denied …).
    Failed = 1,
    /// Bad usage or bad input: unknown option, bad URL, path or duration, ambiguous job name.
    Usage = 2,
    /// qmgrd is not running and could not be started (or, for `daemon status`, is not running).
    ServiceUnavailable = 3,
    /// No job or group has that name.
    NotFound = 4,
    /// Ctrl-C (or SIGTERM) stopped `qmgr transfer`; its jobs are suspended, nothing is lost.
    Interrupted = 130,
}

/// The text `--help` ends with.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success
  1    a job failed, or qmgrd refused the request (wrong state, access denied)
  2    usage error or bad input (bad URL, path, duration or rate; ambiguous job name)
  3    qmgrd is not running and cannot be started (`daemon status`: not running)
  4    no such job or group (resume, suspend, cancel, complete: any JOB named; the
       others are still done)
  130  interrupted: `qmgr transfer` suspended its jobs (`qmgr resume JOB` continues)";

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// A failed command: what to tell the user and how to exit.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(Exit::Failed, message)
    }

    /// An exit code whose reason the command has already printed.
    pub fn silent(exit: Exit) -> Self {
        Self::new(exit, String::new())
    }

    /// The same failure with what was being done in front of its message.
    #[must_use]
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The exit code a service error deserves.
pub fn exit_for(error: &QmgrError) -> Exit {
    match error.hresult {
        hresult::QM_E_SERVICE_UNAVAILABLE => Exit::ServiceUnavailable,
        hresult::BG_E_NOT_FOUND | hresult::QM_E_ITEM_NOT_FOUND => Exit::NotFound,
        hresult::E_INVALIDARG
        | hresult::BG_E_STRING_TOO_LONG
        | hresult::BG_E_TOO_MANY_FILES_IN_JOB
        | hresult::HRESULT_PATH_NOT_FOUND
        | hresult::HRESULT_FILE_NOT_FOUND => Exit::Usage,
        // A local path the caller named cannot be used (unwritable directory and the like).
        _ if error.context == ErrorContext::LocalFile => Exit::Usage,
        _ => Exit::Failed,
    }
}

impl From<QmgrError> for Failure {
    fn from(error: QmgrError) -> Self {
        // The description may carry a server's words: escaped like every such text.
        Failure::new(exit_for(&error), crate::human::clean(&error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_errors_map_to_the_documented_codes() {
        let code = |hr| exit_for(&QmgrError::from_code(hr));
        assert_eq!(
            code(hresult::QM_E_SERVICE_UNAVAILABLE),
            Exit::ServiceUnavailable
        );
        assert_eq!(code(hresult::BG_E_NOT_FOUND), Exit::NotFound);
        assert_eq!(code(hresult::QM_E_ITEM_NOT_FOUND), Exit::NotFound);
        assert_eq!(code(hresult::E_INVALIDARG), Exit::Usage);
        assert_eq!(code(hresult::BG_E_INVALID_STATE), Exit::Failed);
        assert_eq!(code(hresult::E_ACCESSDENIED), Exit::Failed);
        let unwritable = QmgrError::new(
            hresult::E_ACCESSDENIED,
            ErrorContext::LocalFile,
            "the directory /x is not writable",
        );
        assert_eq!(exit_for(&unwritable), Exit::Usage);
    }

    #[test]
    fn the_help_text_lists_every_code() {
        for exit in [
            Exit::Success,
            Exit::Failed,
            Exit::Usage,
            Exit::ServiceUnavailable,
            Exit::NotFound,
            Exit::Interrupted,
        ] {
            let line = format!("\n  {:<4} ", exit.code());
            assert!(EXIT_CODES_HELP.contains(&line), "{exit:?}");
        }
    }
}
