//! The one error type of qmgr: an HRESULT, where the error happened, and a human description.

use std::fmt;

use crate::hresult::{self, HResult};
use crate::raw::raw_enum;

raw_enum! {
    /// Where an error happened (`BG_ERROR_CONTEXT`; values as in bits.h).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    pub enum ErrorContext {
        None = 0,
        Unknown = 1,
        GeneralQueueManager = 2,
        QueueManagerNotification = 3,
        LocalFile = 4,
        RemoteFile = 5,
        GeneralTransport = 6,
        RemoteApplication = 7,
        ServerCertificateCallback = 8,
    }
}

impl ErrorContext {
    /// The code whose description `GetErrorContextDescription` returns for this context.
    pub const fn description_code(self) -> HResult {
        match self {
            Self::None => hresult::BG_S_ERROR_CONTEXT_NONE,
            Self::Unknown => hresult::BG_E_ERROR_CONTEXT_UNKNOWN,
            Self::GeneralQueueManager => hresult::BG_E_ERROR_CONTEXT_GENERAL_QUEUE_MANAGER,
            Self::QueueManagerNotification => {
                hresult::BG_E_ERROR_CONTEXT_QUEUE_MANAGER_NOTIFICATION
            }
            Self::LocalFile => hresult::BG_E_ERROR_CONTEXT_LOCAL_FILE,
            Self::RemoteFile => hresult::BG_E_ERROR_CONTEXT_REMOTE_FILE,
            Self::GeneralTransport => hresult::BG_E_ERROR_CONTEXT_GENERAL_TRANSPORT,
            Self::RemoteApplication => hresult::BG_E_ERROR_CONTEXT_REMOTE_APPLICATION,
            Self::ServerCertificateCallback => {
                hresult::BG_E_ERROR_CONTEXT_SERVER_CERTIFICATE_CALLBACK
            }
        }
    }
}

/// An error as every qmgr layer reports it: the HRESULT a C caller would get, where it
/// happened, and a description with the specifics (URL, path, server answer …).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QmgrError {
    pub hresult: HResult,
    pub context: ErrorContext,
    pub description: String,
}

impl QmgrError {
    pub fn new(hresult: HResult, context: ErrorContext, description: impl Into<String>) -> Self {
        Self {
            hresult,
            context,
            description: description.into(),
        }
    }

    /// An error whose description is the standard text of its code.
    pub fn from_code(hresult: HResult) -> Self {
        let description = hresult::description_for(hresult).unwrap_or_else(|| hresult.to_string());
        Self::new(hresult, ErrorContext::None, description)
    }

    /// `E_INVALIDARG` with a description of what was wrong.
    pub fn invalid_arg(description: impl Into<String>) -> Self {
        Self::new(hresult::E_INVALIDARG, ErrorContext::None, description)
    }

    /// A failure inside qmgr's own machinery (store, I/O of its state files).
    pub fn internal(description: impl Into<String>) -> Self {
        Self::new(
            hresult::E_FAIL,
            ErrorContext::GeneralQueueManager,
            description,
        )
    }

    /// The same error with more context in front of its description.
    #[must_use]
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.description = format!("{what}: {}", self.description);
        self
    }
}

impl fmt::Display for QmgrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.description, self.hresult)
    }
}

impl fmt::Debug for QmgrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "QmgrError({}, {:?}, {:?})",
            self.hresult, self.context, self.description
        )
    }
}

impl std::error::Error for QmgrError {}

impl From<HResult> for QmgrError {
    fn from(hresult: HResult) -> Self {
        Self::from_code(hresult)
    }
}

/// Shorthand used across qmgr.
pub type Result<T, E = QmgrError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_round_trip_through_their_raw_values() {
        for context in ErrorContext::ALL {
            assert_eq!(ErrorContext::from_raw(context as u32), Some(context));
            assert!(hresult::description_for(context.description_code()).is_some());
        }
        assert_eq!(ErrorContext::from_raw(9), None);
    }

    #[test]
    fn errors_keep_their_code_and_gain_context() {
        let error = QmgrError::from_code(hresult::BG_E_NOT_FOUND).context("job {1234}");
        assert_eq!(error.hresult, hresult::BG_E_NOT_FOUND);
        assert_eq!(
            error.description,
            "job {1234}: The requested job was not found."
        );
        assert!(error.to_string().contains("BG_E_NOT_FOUND"));
    }
}
