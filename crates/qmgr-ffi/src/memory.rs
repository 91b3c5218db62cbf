//! `CoTaskMemAlloc`/`CoTaskMemFree`: the allocator of every string and array the API
//! returns. They are `malloc`/`free`, so memory from one may be given to the other from any
//! thread, as on Windows.

use std::ffi::c_void;

use qmgr_core::hresult;
use qmgr_core::{QmgrError, Result};

use crate::abi::types::LPVOID;
use crate::boundary::guarded;

/// Allocates `cb` bytes (at least one, so a zero-byte request still yields a pointer the
/// caller can free); NULL when memory is exhausted.
///
/// # Safety
///
/// None beyond C's: the result is freed with `CoTaskMemFree`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn CoTaskMemAlloc(cb: usize) -> LPVOID {
    // SAFETY: malloc has no preconditions.
    guarded(std::ptr::null_mut(), || unsafe { libc::malloc(cb.max(1)) })
}

/// Frees memory from `CoTaskMemAlloc` (or a string or array the API returned); NULL is
/// ignored.
///
/// # Safety
///
/// `pv` is NULL or came from `CoTaskMemAlloc` and was not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn CoTaskMemFree(pv: LPVOID) {
    // SAFETY: per this function's contract `pv` is a live malloc'ed block or NULL.
    guarded((), || unsafe { libc::free(pv) });
}

/// A `CoTaskMemAlloc`ed copy of `items`.
pub(crate) fn co_task_copy<T: Copy>(items: &[T]) -> Result<*mut T> {
    let bytes = std::mem::size_of_val(items);
    // SAFETY: plain allocation; the result is checked before use.
    let block: *mut c_void = unsafe { CoTaskMemAlloc(bytes) };
    if block.is_null() {
        return Err(QmgrError::from_code(hresult::E_OUTOFMEMORY)
            .context(format_args!("allocating {bytes} bytes")));
    }
    let typed = block.cast::<T>();
    // SAFETY: `block` holds `bytes` bytes, malloc aligns for every type, and the source
    // cannot overlap a fresh allocation.
    unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), typed, items.len()) };
    Ok(typed)
}
