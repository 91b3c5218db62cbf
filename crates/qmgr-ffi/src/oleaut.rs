//! The OLE automation pieces the group API needs: BSTR (`SysAllocString` and friends, in
//! Windows' layout: a 4-byte length in bytes just before the characters, and a NUL after
//! them) and `VariantInit`/`VariantClear`.

#![expect(
    non_snake_case,
    reason = "exported functions and their parameters keep Windows' names"
)]

use qmgr_core::hresult::{self, HResult};
use qmgr_core::{QmgrError, Result};

use crate::abi::types::{
    BSTR, HRESULT, LPCOLESTR, OLECHAR, UINT, VARIANT, VT_ARRAY, VT_BSTR, VT_BYREF, VT_DISPATCH,
    VT_EMPTY, VT_UNKNOWN,
};
use crate::boundary::{self, guarded};
use crate::com::foreign;

/// `DISP_E_BADVARTYPE`: VariantClear met a type it cannot clear (SAFEARRAYs).
const DISP_E_BADVARTYPE: HResult = HResult::from_bits(0x8002_0008);
/// Bytes of the length prefix.
const PREFIX: usize = 4;
/// The longest BSTR, in UTF-16 units, whose byte length fits the prefix.
const MAX_BSTR_UNITS: usize = (u32::MAX as usize - PREFIX - 2) / 2;

/// A BSTR of `len` units, copied from `source` when it is non-null, zero-filled otherwise.
fn alloc_bstr(source: *const u16, len: usize) -> BSTR {
    if len > MAX_BSTR_UNITS {
        return std::ptr::null_mut();
    }
    // SAFETY: plain allocation, checked below.
    let block = unsafe { libc::calloc(1, PREFIX + len * 2 + 2) }.cast::<u8>();
    if block.is_null() {
        return std::ptr::null_mut();
    }
    #[expect(clippy::cast_possible_truncation, reason = "bounded by MAX_BSTR_UNITS")]
    let byte_len = (len * 2) as u32;
    // SAFETY: the block has room for the prefix, `len` units and the NUL (zeroed by
    // calloc); the source, when given, holds `len` units (the callers' contracts).
    unsafe {
        block.cast::<u32>().write_unaligned(byte_len);
        #[expect(
            clippy::cast_ptr_alignment,
            reason = "malloc aligns the block; PREFIX is even"
        )]
        let chars = block.add(PREFIX).cast::<u16>();
        if !source.is_null() {
            std::ptr::copy_nonoverlapping(source, chars, len);
        }
        chars
    }
}

/// A BSTR holding `text`, for values the library hands out (freed with SysFreeString).
pub(crate) fn bstr(text: &str) -> Result<BSTR> {
    let units: Vec<u16> = text.encode_utf16().collect();
    let bstr = alloc_bstr(units.as_ptr(), units.len());
    if bstr.is_null() {
        Err(QmgrError::from_code(hresult::E_OUTOFMEMORY).context("allocating a BSTR"))
    } else {
        Ok(bstr)
    }
}

/// A BSTR copy of the NUL-terminated `psz`; NULL for NULL or when memory is exhausted.
///
/// # Safety
///
/// `psz` is NULL or a NUL-terminated UTF-16 string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SysAllocString(psz: LPCOLESTR) -> BSTR {
    guarded(std::ptr::null_mut(), || {
        if psz.is_null() {
            return std::ptr::null_mut();
        }
        let mut len = 0;
        // SAFETY: the string is NUL-terminated (contract); reading stops at the NUL.
        while unsafe { psz.add(len).read_unaligned() } != 0 {
            len += 1;
        }
        alloc_bstr(psz, len)
    })
}

/// A BSTR of `ui` units copied from `strIn` (zero-filled when `strIn` is NULL).
///
/// # Safety
///
/// `strIn` is NULL or points at `ui` readable UTF-16 units.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SysAllocStringLen(strIn: *const OLECHAR, ui: UINT) -> BSTR {
    guarded(std::ptr::null_mut(), || alloc_bstr(strIn, ui as usize))
}

/// Frees a BSTR; NULL is ignored.
///
/// # Safety
///
/// `bstrString` is NULL or a BSTR from this library not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SysFreeString(bstrString: BSTR) {
    guarded((), || {
        if !bstrString.is_null() {
            // SAFETY: a BSTR's block starts PREFIX bytes before it (contract).
            unsafe { libc::free(bstrString.cast::<u8>().sub(PREFIX).cast()) };
        }
    });
}

/// The length of a BSTR in characters (0 for NULL).
///
/// # Safety
///
/// `pbstr` is NULL or a live BSTR.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SysStringLen(pbstr: BSTR) -> UINT {
    guarded(0, || {
        if pbstr.is_null() {
            return 0;
        }
        // SAFETY: a live BSTR has its length in bytes just before it (contract).
        unsafe {
            pbstr
                .cast::<u8>()
                .sub(PREFIX)
                .cast::<u32>()
                .read_unaligned()
                / 2
        }
    })
}

/// Makes a VARIANT empty (`VT_EMPTY`) without freeing anything.
///
/// # Safety
///
/// `pvarg` is NULL or points at writable VARIANT storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn VariantInit(pvarg: *mut VARIANT) {
    guarded((), || {
        if !pvarg.is_null() {
            // SAFETY: writable VARIANT storage (contract).
            unsafe { pvarg.write(VARIANT::EMPTY) };
        }
    });
}

/// Frees what a VARIANT owns (a BSTR, a reference to an interface) and makes it empty.
///
/// # Safety
///
/// `pvarg` is NULL or points at an initialised VARIANT.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn VariantClear(pvarg: *mut VARIANT) -> HRESULT {
    boundary::hresult(|| {
        if pvarg.is_null() {
            return Err(QmgrError::invalid_arg("pvarg is NULL"));
        }
        // SAFETY: an initialised VARIANT (contract).
        let variant = unsafe { &mut *pvarg };
        clear(variant)?;
        Ok(hresult::S_OK)
    })
}

fn clear(variant: &mut VARIANT) -> Result<()> {
    if variant.vt & VT_ARRAY != 0 {
        return Err(
            QmgrError::from_code(DISP_E_BADVARTYPE).context("SAFEARRAY variants are not supported")
        );
    }
    if variant.vt & VT_BYREF == 0 {
        match variant.vt {
            // SAFETY: `vt` says the union holds a BSTR the VARIANT owns.
            VT_BSTR => unsafe { SysFreeString(variant.value.bstrVal) },
            VT_UNKNOWN | VT_DISPATCH => {
                // SAFETY: `vt` says the union holds an interface reference the VARIANT owns.
                let object = unsafe { variant.value.punkVal };
                if !object.is_null() {
                    // SAFETY: a live interface pointer whose reference is given up here.
                    unsafe { foreign::release(object) };
                }
            }
            _ => {}
        }
    }
    *variant = VARIANT {
        vt: VT_EMPTY,
        ..*variant
    };
    Ok(())
}
