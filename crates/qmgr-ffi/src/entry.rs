//! The COM runtime entry points: CoInitialize(Ex), CoUninitialize, CoInitializeSecurity and
//! CoCreateInstance for the BITS manager classes and the legacy queue manager.

#![expect(
    non_snake_case,
    reason = "exported functions and their parameters keep Windows' names"
)]
#![allow(
    clippy::wildcard_imports,
    reason = "the ABI modules are imported whole; clippy skips this lint when the crate is built for its unit tests, so `expect` would fail there"
)]

use std::ffi::c_void;

use qmgr_core::QmgrError;
use qmgr_core::hresult::{self, HResult};

use crate::abi::bits::*;
use crate::abi::qmgr::CLSID_BackgroundCopyQMgr;
use crate::abi::types::*;
use crate::apartment::{self, Model};
use crate::boundary::{self, FromCaller};
use crate::com::{Class, foreign};
use crate::enums::{EnumFilesObject, EnumJobsObject};
use crate::error::ErrorObject;
use crate::file::FileObject;
use crate::job::JobObject;
use crate::legacy::QMgrObject;
use crate::manager::ManagerObject;
use crate::runtime;

/// `CLASS_E_NOAGGREGATION`: the classes cannot be aggregated.
const CLASS_E_NOAGGREGATION: HResult = HResult::from_bits(0x8004_0110);

/// The interfaces each BITS version adds (bits-h.md §2), in version order; a versioned
/// CLSID needs those of its version and every earlier one.
const VERSIONS: &[(&GUID, &[GUID])] = &[
    (
        &CLSID_BackgroundCopyManager,
        &[
            IID_IBackgroundCopyManager,
            IID_IBackgroundCopyJob,
            IID_IBackgroundCopyFile,
            IID_IEnumBackgroundCopyJobs,
            IID_IEnumBackgroundCopyFiles,
            IID_IBackgroundCopyError,
        ],
    ),
    (&CLSID_BackgroundCopyManager1_5, &[IID_IBackgroundCopyJob2]),
    (
        &CLSID_BackgroundCopyManager2_0,
        &[IID_IBackgroundCopyJob3, IID_IBackgroundCopyFile2],
    ),
    (
        &CLSID_BackgroundCopyManager2_5,
        &[IID_IBackgroundCopyJobHttpOptions],
    ),
    (
        &CLSID_BackgroundCopyManager3_0,
        &[IID_IBackgroundCopyJob4, IID_IBackgroundCopyFile3],
    ),
    (
        &CLSID_BackgroundCopyManager4_0,
        &[IID_IBitsTokenOptions, IID_IBackgroundCopyFile4],
    ),
    (
        &CLSID_BackgroundCopyManager5_0,
        &[IID_IBackgroundCopyJob5, IID_IBackgroundCopyFile5],
    ),
    (
        &CLSID_BackgroundCopyManager10_1,
        &[IID_IBackgroundCopyFile6],
    ),
    (
        &CLSID_BackgroundCopyManager10_2,
        &[IID_IBackgroundCopyJobHttpOptions2],
    ),
    (
        &CLSID_BackgroundCopyManager10_3,
        &[IID_IBackgroundCopyJobHttpOptions3],
    ),
];

/// Whether some object of the library answers `iid`.
fn implemented(iid: &GUID) -> bool {
    [
        ManagerObject::INTERFACES,
        JobObject::INTERFACES,
        FileObject::INTERFACES,
        ErrorObject::INTERFACES,
        EnumJobsObject::INTERFACES,
        EnumFilesObject::INTERFACES,
    ]
    .iter()
    .any(|interfaces| interfaces.iter().any(|(known, _)| known == iid))
}

/// Whether `clsid` names the BITS manager at a version whose interfaces all exist here.
pub(crate) fn is_supported_manager(clsid: &GUID) -> bool {
    let Some(version) = VERSIONS.iter().position(|(id, _)| *id == clsid) else {
        return false;
    };
    VERSIONS[..=version]
        .iter()
        .flat_map(|(_, interfaces)| interfaces.iter())
        .all(implemented)
}

/// The COINIT flags CoInitializeEx knows.
const COINIT_KNOWN: DWORD =
    COINIT_APARTMENTTHREADED | COINIT_DISABLE_OLE1DDE | COINIT_SPEED_OVER_MEMORY;

/// Starts COM use on the calling thread, in the concurrency model `dwCoInit` names:
/// `COINIT_APARTMENTTHREADED` makes the thread a single-threaded apartment, whose
/// callbacks run on it while it waits in `CoWaitForMultipleHandles` or
/// `QmgrDispatchCallbacks`; `COINIT_MULTITHREADED` (0) leaves callbacks to the library's
/// thread. The library's own objects may be called from any thread either way.
///
/// `S_OK` the first time on a thread, `S_FALSE` for the same model again (each needs its
/// CoUninitialize), `RPC_E_CHANGED_MODE` for another model (needs none); `E_INVALIDARG`
/// for an unknown flag. `COINIT_DISABLE_OLE1DDE` and `COINIT_SPEED_OVER_MEMORY` are
/// accepted and change nothing.
///
/// # Safety
///
/// None: `pvReserved` is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn CoInitializeEx(pvReserved: LPVOID, dwCoInit: DWORD) -> HRESULT {
    let _ = pvReserved;
    boundary::hresult(|| {
        if dwCoInit & !COINIT_KNOWN != 0 {
            return Err(
                QmgrError::from_code(hresult::E_INVALIDARG).context(format_args!(
                    "dwCoInit 0x{dwCoInit:X} holds an unknown flag"
                )),
            );
        }
        let model = if dwCoInit & COINIT_APARTMENTTHREADED != 0 {
            Model::SingleThreaded
        } else {
            Model::MultiThreaded
        };
        let answer = apartment::initialize(model)?;
        runtime::com_initialize();
        Ok(answer)
    })
}

/// `CoInitializeEx(pvReserved, COINIT_APARTMENTTHREADED)`.
///
/// # Safety
///
/// None: `pvReserved` is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn CoInitialize(pvReserved: LPVOID) -> HRESULT {
    // SAFETY: no preconditions.
    unsafe { CoInitializeEx(pvReserved, COINIT_APARTMENTTHREADED) }
}

/// Ends one CoInitialize(Ex) of the calling thread; a thread without one left is not
/// affected. The last one of a single-threaded apartment closes it: its waiting callbacks
/// are dropped and the library releases the objects it holds from it, on this thread.
/// Objects already made keep working.
///
/// # Safety
///
/// None.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn CoUninitialize() {
    boundary::guarded((), || {
        if apartment::uninitialize() {
            runtime::com_uninitialize();
        }
    });
}

/// Accepted and ignored (`S_OK`): access to the queue is checked by the service with the
/// caller's uid.
///
/// # Safety
///
/// None: every argument is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn CoInitializeSecurity(
    pSecDesc: *mut c_void,
    cAuthSvc: LONG,
    asAuthSvc: *mut c_void,
    pReserved1: *mut c_void,
    dwAuthnLevel: DWORD,
    dwImpLevel: DWORD,
    pAuthList: *mut c_void,
    dwCapabilities: DWORD,
    pReserved3: *mut c_void,
) -> HRESULT {
    let _ = (
        pSecDesc,
        cAuthSvc,
        asAuthSvc,
        pReserved1,
        dwAuthnLevel,
        dwImpLevel,
        pAuthList,
        dwCapabilities,
        pReserved3,
    );
    boundary::hresult(|| Ok(hresult::S_OK))
}

/// Creates the BITS manager (`CLSID_BackgroundCopyManager` or a versioned CLSID whose
/// interfaces all exist, else `REGDB_E_CLASSNOTREG`) or the legacy queue manager
/// (`CLSID_BackgroundCopyQMgr`) and returns its `riid` interface in `*ppv`. The first
/// call connects to qmgrd (starting it if needed). `CO_E_NOTINITIALIZED` before
/// CoInitialize(Ex).
///
/// # Safety
///
/// `rclsid` and `riid` point at GUIDs; `ppv` is writable; `pUnkOuter` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn CoCreateInstance(
    rclsid: REFCLSID,
    pUnkOuter: *mut IUnknown,
    dwClsContext: DWORD,
    riid: REFIID,
    ppv: *mut LPVOID,
) -> HRESULT {
    // SAFETY: the pointers are null or valid as this function's contract says.
    let (clsid, iid, out) = unsafe { (rclsid.checked(), riid.checked(), ppv.checked()) };
    boundary::hresult(move || {
        let out = out.out("ppv")?;
        out.set(std::ptr::null_mut());
        let (clsid, iid) = (clsid.read("rclsid")?, iid.read("riid")?);
        if !runtime::com_is_initialized() {
            return Err(QmgrError::from_code(hresult::CO_E_NOTINITIALIZED)
                .context("CoInitializeEx was not called"));
        }
        if !pUnkOuter.is_null() {
            return Err(QmgrError::from_code(CLASS_E_NOAGGREGATION));
        }
        if dwClsContext & (CLSCTX_LOCAL_SERVER | CLSCTX_INPROC_SERVER) == 0 {
            return Err(QmgrError::from_code(hresult::REGDB_E_CLASSNOTREG)
                .context(format_args!("class context 0x{dwClsContext:X}")));
        }
        let object: *mut IUnknown = if is_supported_manager(&clsid) {
            ManagerObject::create(runtime::service()?).cast()
        } else if clsid == CLSID_BackgroundCopyQMgr {
            QMgrObject::create(runtime::service()?).cast()
        } else {
            return Err(QmgrError::from_code(hresult::REGDB_E_CLASSNOTREG)
                .context(format_args!("class {clsid:?}")));
        };
        // SAFETY: `object` is the reference `create` just made; the answer of the query
        // is the caller's reference, and ours is given up.
        let answer = unsafe {
            let answer = foreign::query(object, &iid);
            foreign::release(object);
            answer
        };
        let interface = answer.ok_or_else(|| QmgrError::from_code(hresult::E_NOINTERFACE))?;
        out.set(interface);
        Ok(hresult::S_OK)
    })
}
