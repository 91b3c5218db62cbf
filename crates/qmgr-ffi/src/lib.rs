//! libqmgr: the C ABI of qmgr. Programs written for Windows' Background Intelligent
//! Transfer Service drive it through the COM interfaces of `bits.h` (IBackgroundCopyManager,
//! IBackgroundCopyJob … Job5, IBackgroundCopyFile … File3, the enumerators,
//! IBackgroundCopyError, IBackgroundCopyJobHttpOptions, and their own
//! IBackgroundCopyCallback) and of the legacy `qmgr.h` (IBackgroundCopyQMgr,
//! IBackgroundCopyGroup, IBackgroundCopyJob1 and its enumerators), obtained with
//! `CoCreateInstance` as on Windows, and link `-lqmgr`.
//!
//! - [`abi`] declares what C sees: types with Windows' widths, interfaces and vtables in
//!   Windows' slot order, IIDs and CLSIDs. The generated headers come from it.
//! - Every object is a `com` object: vtable pointers in front of Rust state in an `Arc`,
//!   with one generic IUnknown. Calls enter through `boundary`, which catches panics,
//!   checks pointers and turns errors into HRESULTs.
//! - Objects talk to the queue through the service API of `qmgr-core`: by default the
//!   `qmgrd` daemon over its socket (started on demand); with the cargo feature
//!   `in-process`, a queue manager hosted in the calling process. See [`runtime`].
//!
//! Memory: strings and arrays the API returns are `CoTaskMemAlloc`ed and freed by the
//! caller with `CoTaskMemFree`; BSTRs are freed with `SysFreeString`; interface pointers
//! returned carry a reference the caller Releases. Every object may be called from any
//! thread. The client's own objects (callbacks) are called as COM's apartments say: on the
//! thread of the single-threaded apartment that handed them in, while it pumps, and from
//! the library's thread otherwise (see `apartment`).

#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi;
mod apartment;
mod boundary;
mod cert_callback;
mod com;
mod entry;
mod enums;
mod error;
mod error_info;
mod file;
mod job;
mod legacy;
mod legacy_notify;
mod local;
mod manager;
pub mod memory;
mod notify;
pub mod oleaut;
mod peer_cache;
pub mod runtime;
mod strings;
#[cfg(test)]
mod strings_fuzz;

pub use apartment::{CoWaitForMultipleHandles, QmgrDispatchCallbacks, QmgrGetCallbackEventFd};
pub use entry::{
    CoCreateInstance, CoInitialize, CoInitializeEx, CoInitializeSecurity, CoUninitialize,
};
pub use error_info::GetErrorInfo;
pub use memory::{CoTaskMemAlloc, CoTaskMemFree};
pub use oleaut::{
    SysAllocString, SysAllocStringLen, SysFreeString, SysStringLen, VariantClear, VariantInit,
};
pub use runtime::install_service;
pub use strings::wide;
