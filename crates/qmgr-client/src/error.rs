//! The one error type of the crate.

use std::fmt;

use qmgr_core::{ErrorContext, HResult, QmgrError, hresult};

/// What went wrong: the HRESULT a C program would get for the same failure (with its
/// symbolic name, such as `BG_E_NOT_FOUND`), where the failure happened, the service's
/// description with the specifics (URL, path, server answer), and what this program was
/// doing when it failed.
///
/// ```
/// use qmgr_client::{Error, hresult};
///
/// fn explain(error: &Error) {
///     if error.hresult() == hresult::BG_E_NOT_FOUND {
///         eprintln!("the job is gone");
///     }
///     // e.g. "cannot resume job {…}: The requested job was not found. [BG_E_NOT_FOUND (0x80200001)]"
///     eprintln!("{error}");
/// }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    hresult: HResult,
    context: ErrorContext,
    description: String,
    action: Option<String>,
}

impl Error {
    /// The HRESULT: `BG_E_*`, `QM_E_*`, `E_INVALIDARG`, `BG_E_HTTP_ERROR_404` … Compare it
    /// with the constants of [`crate::hresult`].
    pub fn hresult(&self) -> HResult {
        self.hresult
    }

    /// The HRESULT as the unsigned number headers spell (`0x80200001`).
    pub fn code(&self) -> u32 {
        self.hresult.bits()
    }

    /// The HRESULT's symbolic name (`BG_E_NOT_FOUND`), for codes that have one.
    pub fn name(&self) -> Option<&'static str> {
        self.hresult.name()
    }

    /// The description: the service's account of this failure, naming the file, path,
    /// server answer or limit involved.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Where the failure happened (`BG_ERROR_CONTEXT`): the local file, the remote file,
    /// the transport, the queue manager …
    pub fn context(&self) -> ErrorContext {
        self.context
    }

    /// What this program was doing when it failed (`cannot add https://… to job {…}`),
    /// when the crate knows.
    pub fn action(&self) -> Option<&str> {
        self.action.as_deref()
    }

    /// An error of the service or the connection to it, with what was being done.
    pub(crate) fn from_service(error: QmgrError, action: impl Into<String>) -> Self {
        Self {
            action: Some(action.into()),
            ..Self::bare(error)
        }
    }

    /// The error exactly as the service reported it (a job's own error).
    pub(crate) fn bare(error: QmgrError) -> Self {
        Self {
            hresult: error.hresult,
            context: error.context,
            description: error.description,
            action: None,
        }
    }

    /// `E_INVALIDARG` for an argument this crate refuses before asking the service.
    pub(crate) fn invalid_argument(description: impl Into<String>) -> Self {
        Self::bare(QmgrError::new(
            hresult::E_INVALIDARG,
            ErrorContext::None,
            description,
        ))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(action) = &self.action {
            write!(f, "{action}: ")?;
        }
        write!(f, "{} [{}]", self.description, self.hresult)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("hresult", &self.hresult)
            .field("context", &self.context)
            .field("description", &self.description)
            .field("action", &self.action)
            .finish()
    }
}

impl std::error::Error for Error {}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_shows_what_was_done_the_description_and_the_named_code() {
        let error = Error::from_service(
            QmgrError::from_code(hresult::BG_E_NOT_FOUND),
            "cannot resume job {1}",
        );
        assert_eq!(error.code(), 0x8020_0001);
        assert_eq!(error.name(), Some("BG_E_NOT_FOUND"));
        assert_eq!(error.action(), Some("cannot resume job {1}"));
        assert_eq!(
            error.to_string(),
            "cannot resume job {1}: The requested job was not found. \
             [BG_E_NOT_FOUND (0x80200001)]"
        );
    }

    #[test]
    fn a_code_without_a_name_shows_its_number() {
        let error = Error::bare(QmgrError::new(
            HResult::from_bits(0x8123_4567),
            ErrorContext::RemoteFile,
            "odd",
        ));
        assert_eq!(error.name(), None);
        assert_eq!(error.context(), ErrorContext::RemoteFile);
        assert_eq!(error.to_string(), "odd [0x81234567]");
    }
}
