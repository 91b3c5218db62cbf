//! The C boundary: every call from C passes through here. Panics become `E_UNEXPECTED`,
//! errors become their HRESULT (the one place a [`QmgrError`] turns into a number), and raw
//! pointer arguments are wrapped once, under the COM calling contract, into types whose
//! methods check for null before any use and write out-parameters only when asked to —
//! which the methods do last, on success.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

use qmgr_core::hresult::{self, HResult};
use qmgr_core::{QmgrError, Result};

use crate::abi::types::{BITS_FILE_PROPERTY_VALUE, BITS_JOB_PROPERTY_VALUE, GUID, HRESULT, WCHAR};
use crate::strings;

thread_local! {
    /// Why the last call of this thread failed, kept for `GetErrorInfo` until the next call
    /// through the boundary (COM's rule: error information describes the latest call only).
    static LAST_FAILURE: RefCell<Option<QmgrError>> = const { RefCell::new(None) };
}

/// Runs the Rust side of a call and turns its outcome into the HRESULT C sees. A failure's
/// description stays available to `GetErrorInfo`; any other outcome forgets the last one.
pub(crate) fn hresult(call: impl FnOnce() -> Result<HResult>) -> HRESULT {
    let (code, failure) = match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(code)) => (code, None),
        Ok(Err(error)) => (error.hresult, Some(error)),
        Err(_) => (
            hresult::E_UNEXPECTED,
            Some(
                QmgrError::from_code(hresult::E_UNEXPECTED)
                    .context("an internal error in libqmgr (a bug: please report it)"),
            ),
        ),
    };
    // A thread being torn down has no slot any more; nothing is left to describe then.
    let _ = LAST_FAILURE.try_with(|slot| *slot.borrow_mut() = failure);
    code.0
}

/// Takes the description of this thread's last failed call, if the latest call failed.
pub(crate) fn take_last_failure() -> Option<QmgrError> {
    LAST_FAILURE
        .try_with(|slot| slot.borrow_mut().take())
        .ok()
        .flatten()
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
    u64,
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

    /// An out-parameter: checked and cleared now, written with the answer by [`Out::set`].
    /// Clearing first is COM's rule: an out pointer is NULL (and an out value zero) when the
    /// call fails, so a caller that releases what it got on failure releases nothing.
    pub(crate) fn out(self, what: &str) -> Result<Out<'a, T>> {
        if self.raw.is_null() {
            return Err(null_pointer(what));
        }
        // SAFETY: non-null and writable per the wrapping contract; out-parameter types are
        // plain C data (pointers, integers, structs of those) for which all-zero bytes are
        // the NULL/empty value, and no Rust value of `T` is made from them.
        unsafe { self.raw.write_bytes(0, 1) };
        Ok(Out(self))
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
        #[expect(non_snake_case, reason = "named after the COM method it serves")]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_e_unexpected_and_errors_their_code() {
        assert_eq!(hresult(|| panic!("a bug")), hresult::E_UNEXPECTED.0);
        assert_eq!(
            hresult(|| Err(QmgrError::from_code(hresult::BG_E_NOT_FOUND))),
            hresult::BG_E_NOT_FOUND.0
        );
        assert_eq!(hresult(|| Ok(hresult::S_FALSE)), hresult::S_FALSE.0);
        assert_eq!(guarded(7, || panic!("a bug")), 7);
    }

    #[test]
    fn pointers_are_checked_before_use() {
        let mut slot = 7u32;
        // SAFETY: null, or a live local.
        let (null, live) = unsafe {
            (
                std::ptr::null_mut::<u32>().checked(),
                (&raw mut slot).checked(),
            )
        };
        assert_eq!(null.out("x").err().unwrap().hresult, hresult::E_POINTER);
        assert_eq!(null.read("x").unwrap_err().hresult, hresult::E_POINTER);
        assert!(null.slice(0, "x").unwrap().is_empty());
        let out = live.out("x").unwrap();
        assert_eq!(
            live.read("x").unwrap(),
            0,
            "an out-parameter is cleared before the call works"
        );
        out.set(5);
        assert_eq!(live.read("x").unwrap(), 5);
    }

    #[test]
    fn in_strings_are_validated() {
        let good = crate::strings::wide("chemin/é");
        let unpaired = [0x61_u16, 0xDC00, 0];
        let long: Vec<u16> = std::iter::repeat_n(0x61, crate::strings::MAX_WIDE_UNITS + 1)
            .chain([0])
            .collect();
        // SAFETY: NUL-terminated buffers that outlive the calls, or null.
        let (good, unpaired, long, null) = unsafe {
            (
                good.as_ptr().checked(),
                unpaired.as_ptr().checked(),
                long.as_ptr().checked(),
                std::ptr::null::<u16>().checked(),
            )
        };
        assert_eq!(good.required_string("s").unwrap(), "chemin/é");
        for bad in [unpaired, long] {
            assert_eq!(bad.string("s").unwrap_err().hresult, hresult::E_INVALIDARG);
        }
        assert_eq!(null.string("s").unwrap(), None);
        assert_eq!(
            null.required_string("s").unwrap_err().hresult,
            hresult::E_INVALIDARG
        );
    }
}
