//! COM error information (IErrorInfo, `GetErrorInfo`): the description of the last failed
//! call on a thread. An HRESULT alone says what kind of failure happened; the description
//! says which path, which pid, which limit — the same text qmgr's own tools print.

#![expect(
    non_snake_case,
    reason = "the exported function and its parameters keep Windows' names"
)]
#![allow(
    clippy::wildcard_imports,
    reason = "the ABI modules are imported whole: their names are Windows'; clippy skips this lint when the crate is built for its unit tests, so `expect` would fail there"
)]

use qmgr_core::QmgrError;
use qmgr_core::hresult;

use crate::abi::bits::*;
use crate::abi::types::*;
use crate::boundary::{self, thunks};
use crate::com::{Class, ComObject, unknown_vtbl};
use crate::oleaut::bstr;

/// What `GetSource` names as the component that raised the error.
const SOURCE: &str = "qmgr";

pub(crate) struct ErrorInfoObject {
    failure: QmgrError,
}

// SAFETY: one vtable reference at offset 0 serving IErrorInfo.
unsafe impl Class for ErrorInfoObject {
    type Header = &'static IErrorInfoVtbl;
    const HEADER: Self::Header = &ERROR_INFO_VTBL;
    const INTERFACES: &'static [(GUID, usize)] = &[(IID_IUnknown, 0), (IID_IErrorInfo, 0)];
}

thunks! { ErrorInfoObject, IErrorInfo, 0;
    fn GetGUID(info, pGUID: *mut GUID) {
        // The interface that failed is not recorded; Windows answers GUID_NULL then too.
        let _ = info;
        pGUID.out("pGUID")?.set(GUID::default());
        Ok(hresult::S_OK)
    }
    fn GetSource(info, pBstrSource: *mut BSTR) {
        let _ = info;
        let out = pBstrSource.out("pBstrSource")?;
        out.set(bstr(SOURCE)?);
        Ok(hresult::S_OK)
    }
    fn GetDescription(info, pBstrDescription: *mut BSTR) {
        let out = pBstrDescription.out("pBstrDescription")?;
        out.set(bstr(&info.failure.description)?);
        Ok(hresult::S_OK)
    }
    fn GetHelpFile(info, pBstrHelpFile: *mut BSTR) {
        let _ = info;
        pBstrHelpFile.out("pBstrHelpFile")?.set(std::ptr::null_mut());
        Ok(hresult::S_OK)
    }
    fn GetHelpContext(info, pdwHelpContext: *mut DWORD) {
        let _ = info;
        pdwHelpContext.out("pdwHelpContext")?.set(0);
        Ok(hresult::S_OK)
    }
}

const ERROR_INFO_VTBL: IErrorInfoVtbl = IErrorInfoVtbl {
    base: unknown_vtbl::<ErrorInfoObject, 0>(),
    GetGUID,
    GetSource,
    GetDescription,
    GetHelpFile,
    GetHelpContext,
};

/// Hands out (and forgets) the description of the calling thread's last failed call:
/// `S_OK` with a new IErrorInfo (the caller releases it), or `S_FALSE` and NULL when the
/// thread's latest call succeeded or its error information was already taken.
///
/// # Safety
///
/// `pperrinfo` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn GetErrorInfo(
    dwReserved: ULONG,
    pperrinfo: *mut *mut IErrorInfo,
) -> HRESULT {
    let failure = boundary::take_last_failure();
    // SAFETY: the pointer is null or writable, as this function's contract says.
    let out = unsafe { boundary::FromCaller::checked(pperrinfo) };
    boundary::hresult(move || {
        let out = out.out("pperrinfo")?;
        if dwReserved != 0 {
            out.set(std::ptr::null_mut());
            return Err(QmgrError::from_code(hresult::E_INVALIDARG)
                .context("GetErrorInfo: dwReserved must be 0"));
        }
        if let Some(failure) = failure {
            out.set(ComObject::create(ErrorInfoObject { failure }));
            Ok(hresult::S_OK)
        } else {
            out.set(std::ptr::null_mut());
            Ok(hresult::S_FALSE)
        }
    })
}
