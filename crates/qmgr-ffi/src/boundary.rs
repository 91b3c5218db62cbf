//! The C boundary: every call from C passes through here. Panics become `E_UNEXPECTED`,
//! errors become their HRESULT (the one place a [`QmgrError`] turns into a number), and raw
//! pointer arguments are wrapped once, under the COM calling contract, into types whose
//! methods check for null before any use and write out-parameters only when asked to —
//! which the methods do last, on success.

use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

use qmgr_core::hresult::{self, HResult};
use qmgr_core::{QmgrError, Result};

use crate::abi::types::{BITS_FILE_PROPERTY_VALUE, BITS_JOB_PROPERTY_VALUE, GUID, HRESULT, WCHAR};
use crate::strings;

/// Runs the Rust side of a call and turns its outcome into the HRESULT C sees.
pub(crate) fn hresult(call: impl FnOnce() -> Result<HResult>) -> HRESULT {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(code)) => code.0,
        Ok(Err(error)) => error.hresult.0,
        Err(_) => hresult::E_UNEXPECTED.0,
    }
}

/// Runs a call whose C signature has no HRESULT; a panic yields `fallback`.
pub(crate) fn guarded<R>(fallback: R, call: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(call)).unwrap_or(fallback)
}

/// `E_POINTER`, naming the parameter.
pub(crate) fn null_pointer(what: &str) -> QmgrError {
    QmgrError::from_code(hresult::E_POINTER).context(format_args!("{what} is NULL"))
}

/// An argument as C passed it, converted to what the Rust side works with.
pub(crate) trait FromCaller {
    type Checked;
    /// # Safety
    ///
    /// For pointers: null, or valid for the use the interface documents for this argument
    /// for the duration of the call (COM's calling contract).
    unsafe fn checked(self) -> Self::Checked;
}

macro_rules! by_value {
    ($($ty:ty),*) => {$(
        impl FromCaller for $ty {
            type Checked = $ty;
            unsafe fn checked(self) -> $ty {
                self
            }
        }
    )*};
}
by_value!(
    u32,
    i32,
    GUID,
    BITS_JOB_PROPERTY_VALUE,
    BITS_FILE_PROPERTY_VALUE
);

impl<T> FromCaller for *mut T {
    type Checked = Ptr<'static, T>;
    unsafe fn checked(self) -> Ptr<'static, T> {
        Ptr {
            raw: self,
            lifetime: PhantomData,
        }
    }
}

impl<T> FromCaller for *const T {
    type Checked = Ptr<'static, T>;
    unsafe fn checked(self) -> Ptr<'static, T> {
        Ptr {
            raw: self.cast_mut(),
            lifetime: PhantomData,
        }
    }
}

/// A pointer argument, vouched for by the caller when it was wrapped: null, or valid for
/// the documented use during the call.
pub(crate) struct Ptr<'a, T> {
    raw: *mut T,
    lifetime: PhantomData<&'a ()>,
}

impl<T> Clone for Ptr<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Ptr<'_, T> {}

impl<'a, T> Ptr<'a, T> {
    pub(crate) fn is_null(self) -> bool {
        self.raw.is_null()
    }

    pub(crate) fn raw(self) -> *mut T {
        self.raw
    }

    /// An out-parameter: checked now, written (if at all) by [`Out::set`].
    pub(crate) fn out(self, what: &str) -> Result<Out<'a, T>> {
        if self.raw.is_null() {
            Err(null_pointer(what))
        } else {
            Ok(Out(self))
        }
    }

    /// An out-parameter the caller may leave NULL.
    pub(crate) fn optional_out(self) -> Option<Out<'a, T>> {
        (!self.raw.is_null()).then_some(Out(self))
    }

    /// The value an in-pointer points at.
    pub(crate) fn read(self, what: &str) -> Result<T>
    where
        T: Copy,
    {
        if self.raw.is_null() {
            return Err(null_pointer(what));
        }
        // SAFETY: non-null, and valid for reading per the wrapping contract.
        Ok(unsafe { self.raw.read_unaligned() })
    }

    /// `len` elements starting here (an in-array with its count).
    pub(crate) fn slice(self, len: usize, what: &str) -> Result<&'a [T]> {
        if len == 0 {
            return Ok(&[]);
        }
        if self.raw.is_null() {
            return Err(null_pointer(what));
        }
        // SAFETY: the caller passes an array of `len` elements (the interface's contract).
        Ok(unsafe { std::slice::from_raw_parts(self.raw, len) })
    }

    /// `len` elements starting here, to be written (an out-array the caller sized).
    pub(crate) fn slice_out(self, len: usize, what: &str) -> Result<&'a mut [T]>
    where
        T: Copy,
    {
        if len == 0 {
            return Ok(&mut []);
        }
        if self.raw.is_null() {
            return Err(null_pointer(what));
        }
        // SAFETY: the caller passes room for `len` elements (the interface's contract);
        // the elements are plain data (pointers or GUIDs), so any content is valid.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.raw, len) })
    }
}

impl Ptr<'_, WCHAR> {
    /// An optional in-string: NULL is `None`; otherwise NUL-terminated UTF-16, bounded in
    /// length and free of unpaired surrogates (`E_INVALIDARG` otherwise).
    pub(crate) fn string(self, what: &str) -> Result<Option<String>> {
        if self.raw.is_null() {
            return Ok(None);
        }
        // SAFETY: non-null, and a NUL-terminated string per the wrapping contract.
        unsafe { strings::from_wide(self.raw, what) }.map(Some)
    }

    /// A required in-string: NULL is `E_INVALIDARG`, as Windows answers.
    pub(crate) fn required_string(self, what: &str) -> Result<String> {
        self.string(what)?
            .ok_or_else(|| QmgrError::invalid_arg(format!("{what} is NULL")))
    }
}

/// A checked, non-null out-parameter.
pub(crate) struct Out<'a, T>(Ptr<'a, T>);

impl<T> Out<'_, T> {
    pub(crate) fn set(&self, value: T) {
        // SAFETY: non-null (checked when made) and writable per the wrapping contract.
        unsafe { self.0.raw.write_unaligned(value) };
    }
}

/// Defines the `unsafe extern "C"` thunks of one interface of a class: each wraps its
/// arguments ([`FromCaller`]), finds the object's state, and runs the body under
/// [`hresult`]. The body names the state as the first identifier of the list.
macro_rules! thunks {
    ($class:ty, $iface:ty, $offset:expr;
     $( fn $name:ident($this:ident $(, $arg:ident : $ty:ty)* $(,)?) $body:block )*) => {$(
        #[allow(non_snake_case, reason = "named after the COM method it serves")]
        unsafe extern "C" fn $name(This: *mut $iface $(, $arg: $ty)*) -> $crate::abi::types::HRESULT {
            // SAFETY: COM's calling contract: `This` is the interface pointer the method was
            // reached through, and every pointer argument is null or valid for what the
            // interface documents for it during the call; the wrappers check for null.
            let ($this, $($arg,)*) = unsafe {
                (
                    $crate::com::ComObject::<$class>::state(This, $offset),
                    $($crate::boundary::FromCaller::checked($arg),)*
                )
            };
            $crate::boundary::hresult(move || {
                let $this = $this?;
                $body
            })
        }
    )*};
}
pub(crate) use thunks;
