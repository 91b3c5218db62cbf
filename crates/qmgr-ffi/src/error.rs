//! The error object (IBackgroundCopyError): a copy of a job's error when it was asked for.

#![allow(
    clippy::wildcard_imports,
    reason = "the ABI modules are imported whole: their names are Windows'; clippy skips this lint when the crate is built for its unit tests, so `expect` would fail there"
)]

use qmgr_core::file::FileRecord;
use qmgr_core::hresult::{self, description_for};
use qmgr_core::{ErrorContext, Guid, JobError, QmgrError};

use crate::abi::bits::*;
use crate::abi::types::*;
use crate::boundary::thunks;
use crate::com::{Class, ComObject, unknown_vtbl};
use crate::file::FileObject;
use crate::runtime::Queue;
use crate::strings::to_co_task;

pub(crate) struct ErrorObject {
    queue: Queue,
    job: Guid,
    error: JobError,
    file: Option<FileRecord>,
}

// SAFETY: one vtable reference at offset 0 serving IBackgroundCopyError.
unsafe impl Class for ErrorObject {
    type Header = &'static IBackgroundCopyErrorVtbl;
    const HEADER: Self::Header = &ERROR_VTBL;
    const INTERFACES: &'static [(GUID, usize)] =
        &[(IID_IUnknown, 0), (IID_IBackgroundCopyError, 0)];
}

impl ErrorObject {
    /// A new error object for `job`'s `error`; `file` is the file it concerns, if any.
    pub(crate) fn create(
        queue: Queue,
        job: Guid,
        error: JobError,
        file: Option<FileRecord>,
    ) -> *mut IBackgroundCopyError {
        ComObject::create(ErrorObject {
            queue,
            job,
            error,
            file,
        })
    }
}

thunks! { ErrorObject, IBackgroundCopyError, 0;
    fn GetError(error, pContext: *mut BG_ERROR_CONTEXT, pCode: *mut HRESULT) {
        let (context, code) = (pContext.out("pContext")?, pCode.out("pCode")?);
        context.set(error.error.error.context as BG_ERROR_CONTEXT);
        code.set(error.error.error.hresult.0);
        Ok(hresult::S_OK)
    }
    fn GetFile(error, pVal: *mut *mut IBackgroundCopyFile) {
        let out = pVal.out("pVal")?;
        match (error.error.file_index, &error.file) {
            (Some(index), Some(record)) => {
                out.set(FileObject::create(error.queue.clone(), error.job, index, record.clone()));
                Ok(hresult::S_OK)
            }
            _ => Err(QmgrError::from_code(hresult::BG_E_FILE_NOT_AVAILABLE)),
        }
    }
    fn GetErrorDescription(error, LanguageId: DWORD, pErrorDescription: *mut LPWSTR) {
        // Descriptions exist in English only; every language gets them.
        let _ = LanguageId;
        let out = pErrorDescription.out("pErrorDescription")?;
        out.set(to_co_task(&error.error.error.description)?);
        Ok(hresult::S_OK)
    }
    fn GetErrorContextDescription(error, LanguageId: DWORD, pContextDescription: *mut LPWSTR) {
        let _ = LanguageId;
        let out = pContextDescription.out("pContextDescription")?;
        let code = error.error.error.context.description_code();
        let text = description_for(code).unwrap_or_default();
        out.set(to_co_task(&text)?);
        Ok(hresult::S_OK)
    }
    fn GetProtocol(error, pProtocol: *mut LPWSTR) {
        let out = pProtocol.out("pProtocol")?;
        let network = matches!(
            error.error.error.context,
            ErrorContext::RemoteFile | ErrorContext::GeneralTransport | ErrorContext::RemoteApplication
        );
        match error.error.protocol.as_deref() {
            Some(protocol) if network => {
                out.set(to_co_task(protocol)?);
                Ok(hresult::S_OK)
            }
            _ => Err(QmgrError::from_code(hresult::BG_E_PROTOCOL_NOT_AVAILABLE)),
        }
    }
}

const ERROR_VTBL: IBackgroundCopyErrorVtbl = IBackgroundCopyErrorVtbl {
    base: unknown_vtbl::<ErrorObject, 0>(),
    GetError,
    GetFile,
    GetErrorDescription,
    GetErrorContextDescription,
    GetProtocol,
};
