//! UTF-16 strings across the boundary: validated on the way in, `CoTaskMemAlloc`ed and
//! NUL-terminated on the way out (the caller frees them with `CoTaskMemFree`).

use qmgr_core::{QmgrError, Result};

use crate::abi::types::{LPWSTR, WCHAR};
use crate::memory;

/// The longest string accepted from a caller, in UTF-16 code units without the NUL; longer
/// strings (or ones without a terminator within reach) are `E_INVALIDARG`. Every
/// string of the API has a smaller limit of its own.
pub(crate) const MAX_WIDE_UNITS: usize = 32 * 1024;

/// Reads a NUL-terminated UTF-16 string.
///
/// # Safety
///
/// `wide` is non-null and points at UTF-16 code units readable up to a NUL or
/// `MAX_WIDE_UNITS + 1` units, whichever comes first.
pub(crate) unsafe fn from_wide(wide: *const WCHAR, what: &str) -> Result<String> {
    let mut len = 0;
    // SAFETY: reading stops at the first NUL and never goes past MAX_WIDE_UNITS (contract).
    while len <= MAX_WIDE_UNITS && unsafe { wide.add(len).read_unaligned() } != 0 {
        len += 1;
    }
    if len > MAX_WIDE_UNITS {
        return Err(QmgrError::invalid_arg(format!(
            "{what} is longer than {MAX_WIDE_UNITS} UTF-16 units"
        )));
    }
    let units: Vec<u16> = (0..len)
        // SAFETY: the `len` units before the NUL were just read.
        .map(|i| unsafe { wide.add(i).read_unaligned() })
        .collect();
    String::from_utf16(&units).map_err(|_| {
        QmgrError::invalid_arg(format!(
            "{what} is not valid UTF-16 (an unpaired surrogate)"
        ))
    })
}

/// A `CoTaskMemAlloc`ed, NUL-terminated UTF-16 copy of `text`.
pub(crate) fn to_co_task(text: &str) -> Result<LPWSTR> {
    let mut units: Vec<u16> = text.encode_utf16().collect();
    units.push(0);
    memory::co_task_copy(&units)
}

/// Like [`to_co_task`], with `None` as NULL.
pub(crate) fn to_co_task_optional(text: Option<&str>) -> Result<LPWSTR> {
    text.map_or(Ok(std::ptr::null_mut()), to_co_task)
}

/// UTF-16 with a terminating NUL, for tests and callers building arguments.
pub fn wide(text: &str) -> Vec<u16> {
    text.encode_utf16().chain(std::iter::once(0)).collect()
}
