//! The COM object model, written once for every class.
//!
//! An object is a [`ComObject<T>`]: a `#[repr(C)]` header of vtable pointers (the primary
//! interface's first, then one per interface that is not an ancestor of the primary one)
//! followed by the class's Rust state, allocated in an [`Arc`]. An interface pointer is the
//! address of one of the header's vtable pointers; the object is found again by
//! subtracting that pointer's offset. AddRef and Release are the `Arc`'s strong count, so
//! the last Release drops the state; QueryInterface looks the IID up in the class's table.

use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::sync::Arc;

use qmgr_core::hresult;
use qmgr_core::{QmgrError, Result};

use crate::abi::types::{GUID, HRESULT, IUnknown, IUnknownVtbl, REFIID, ULONG};
use crate::boundary::guarded;

/// A class of COM objects.
///
/// # Safety
///
/// `Header` must be `#[repr(C)]` (or a single reference) made only of `&'static` vtable
/// references, and every offset in `INTERFACES` must be the offset of a vtable reference
/// in `Header` whose vtable serves that IID (an interface's vtable also serves all of its
/// ancestors).
pub(crate) unsafe trait Class: Send + Sync + Sized + 'static {
    type Header: Send + Sync + 'static;
    const HEADER: Self::Header;
    /// Each interface the object answers, with the offset of the vtable pointer serving it.
    const INTERFACES: &'static [(GUID, usize)];
}

/// The memory of one object: vtable pointers first, as C expects, then the state.
#[repr(C)]
pub(crate) struct ComObject<T: Class> {
    header: T::Header,
    state: T,
}

impl<T: Class> ComObject<T> {
    /// A new object holding one reference, returned as its primary interface pointer.
    pub(crate) fn create<I>(state: T) -> *mut I {
        Arc::into_raw(Arc::new(ComObject {
            header: T::HEADER,
            state,
        }))
        .cast_mut()
        .cast()
    }

    /// The state behind an interface pointer whose vtable pointer sits at `offset`.
    ///
    /// # Safety
    ///
    /// `this` is null or an interface pointer handed out for a `ComObject<T>` at `offset`,
    /// and the caller holds a reference for as long as it uses the returned state.
    pub(crate) unsafe fn state<'a, I>(this: *mut I, offset: usize) -> Result<&'a T> {
        if this.is_null() {
            return Err(QmgrError::from_code(hresult::E_POINTER).context("This is NULL"));
        }
        // SAFETY: per this function's contract the object starts `offset` bytes before
        // `this` and stays alive while the caller holds its reference.
        Ok(unsafe { &(*this.cast::<u8>().sub(offset).cast::<ComObject<T>>()).state })
    }
}

/// The object behind an `IUnknown`-compatible pointer whose vtable pointer is at `OFFSET`.
fn object_of<T: Class, const OFFSET: usize>(this: *mut IUnknown) -> *const ComObject<T> {
    this.cast::<u8>()
        .wrapping_sub(OFFSET)
        .cast::<ComObject<T>>()
}

unsafe extern "C" fn query_interface<T: Class, const OFFSET: usize>(
    this: *mut IUnknown,
    riid: REFIID,
    ppv_object: *mut *mut c_void,
) -> HRESULT {
    // SAFETY: the arguments are passed on unchanged under the same contract.
    guarded(hresult::E_UNEXPECTED.0, || unsafe {
        answer_query::<T, OFFSET>(this, riid, ppv_object)
    })
}

/// QueryInterface's work, apart so that [`query_interface`] can guard it.
///
/// # Safety
///
/// COM's contract for QueryInterface: `this` is an interface pointer of a live
/// `ComObject<T>` at `OFFSET`; `riid` and `ppv_object` are null or valid.
unsafe fn answer_query<T: Class, const OFFSET: usize>(
    this: *mut IUnknown,
    riid: REFIID,
    ppv_object: *mut *mut c_void,
) -> HRESULT {
    if ppv_object.is_null() {
        return hresult::E_POINTER.0;
    }
    if riid.is_null() || this.is_null() {
        // SAFETY: `ppv_object` is non-null and, per COM's contract, writable.
        unsafe { ppv_object.write(std::ptr::null_mut()) };
        return hresult::E_POINTER.0;
    }
    // SAFETY: `riid` is non-null and points at an IID (COM's contract).
    let iid = unsafe { riid.read() };
    let found = T::INTERFACES
        .iter()
        .find(|(known, _)| *known == iid)
        .map(|(_, offset)| *offset);
    let object = object_of::<T, OFFSET>(this);
    let answer = match found {
        Some(offset) => {
            // SAFETY: `this` was handed out for this object, which is alive while the
            // caller holds the reference it called through.
            unsafe { Arc::increment_strong_count(object) };
            object.cast::<u8>().wrapping_add(offset).cast_mut().cast()
        }
        None => std::ptr::null_mut(),
    };
    // SAFETY: `ppv_object` is non-null and writable (COM's contract).
    unsafe { ppv_object.write(answer) };
    if found.is_some() {
        hresult::S_OK.0
    } else {
        hresult::E_NOINTERFACE.0
    }
}

/// The reference count after a change, for AddRef/Release's informational answer.
fn count_of<T: Class>(object: *const ComObject<T>) -> ULONG {
    // SAFETY: the caller holds a reference, so the allocation is alive; ManuallyDrop keeps
    // this temporary Arc from releasing it.
    let arc = ManuallyDrop::new(unsafe { Arc::from_raw(object) });
    ULONG::try_from(Arc::strong_count(&arc)).unwrap_or(ULONG::MAX)
}

unsafe extern "C" fn add_ref<T: Class, const OFFSET: usize>(this: *mut IUnknown) -> ULONG {
    guarded(0, || {
        if this.is_null() {
            return 0;
        }
        let object = object_of::<T, OFFSET>(this);
        // SAFETY: the caller holds a reference to this live object.
        unsafe { Arc::increment_strong_count(object) };
        count_of(object)
    })
}

unsafe extern "C" fn release<T: Class, const OFFSET: usize>(this: *mut IUnknown) -> ULONG {
    guarded(0, || {
        if this.is_null() {
            return 0;
        }
        let object = object_of::<T, OFFSET>(this);
        let remaining = count_of(object).saturating_sub(1);
        // SAFETY: the caller gives up the reference it holds; the last one frees the object.
        unsafe { Arc::decrement_strong_count(object) };
        remaining
    })
}

/// The IUnknown part of every vtable of class `T` whose pointer sits at `OFFSET`.
pub(crate) const fn unknown_vtbl<T: Class, const OFFSET: usize>() -> IUnknownVtbl {
    IUnknownVtbl {
        QueryInterface: query_interface::<T, OFFSET>,
        AddRef: add_ref::<T, OFFSET>,
        Release: release::<T, OFFSET>,
    }
}

/// Calls a client's interface through its IUnknown slots (a callback object).
pub(crate) mod foreign {
    use super::{GUID, IUnknown};
    use std::ffi::c_void;

    /// AddRef on a client's object.
    ///
    /// # Safety
    ///
    /// `object` is a live COM interface pointer.
    pub(crate) unsafe fn add_ref(object: *mut IUnknown) {
        // SAFETY: a COM pointer starts with a pointer to a vtable beginning with IUnknown.
        unsafe { ((*(*object).lpVtbl).AddRef)(object) };
    }

    /// Release on a client's object.
    ///
    /// # Safety
    ///
    /// `object` is a live COM interface pointer whose reference the caller gives up.
    pub(crate) unsafe fn release(object: *mut IUnknown) {
        // SAFETY: as for `add_ref`.
        unsafe { ((*(*object).lpVtbl).Release)(object) };
    }

    /// QueryInterface on a client's object: the new reference, or None.
    ///
    /// # Safety
    ///
    /// `object` is a live COM interface pointer.
    pub(crate) unsafe fn query(object: *mut IUnknown, iid: &GUID) -> Option<*mut c_void> {
        let mut answer: *mut c_void = std::ptr::null_mut();
        // SAFETY: as for `add_ref`; `iid` and `answer` outlive the call.
        let hr = unsafe { ((*(*object).lpVtbl).QueryInterface)(object, iid, &raw mut answer) };
        (hr >= 0 && !answer.is_null()).then_some(answer)
    }
}
