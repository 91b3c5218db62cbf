//! BSTR and VARIANT helpers.

use qmgr_ffi::abi::types::*;

use crate::common::wide;

#[test]
fn bstrs_have_windows_layout() {
    let text = wide("héllo");
    // SAFETY: a NUL-terminated string.
    let bstr = unsafe { qmgr_ffi::SysAllocString(text.as_ptr()) };
    assert!(!bstr.is_null());
    // SAFETY: a live BSTR; its length prefix sits 4 bytes before it.
    let (len, prefix, terminator) = unsafe {
        (
            qmgr_ffi::SysStringLen(bstr),
            bstr.cast::<u8>().sub(4).cast::<u32>().read_unaligned(),
            bstr.add(5).read(),
        )
    };
    assert_eq!((len, prefix, terminator), (5, 10, 0));
    // SAFETY: a BSTR from SysAllocString, freed once; NULL is ignored.
    unsafe {
        qmgr_ffi::SysFreeString(bstr);
        qmgr_ffi::SysFreeString(std::ptr::null_mut());
    }
    // SAFETY: reads 2 of the given units; NULL source gives zeros.
    let (part, zeros) = unsafe {
        (
            qmgr_ffi::SysAllocStringLen(text.as_ptr(), 2),
            qmgr_ffi::SysAllocStringLen(std::ptr::null(), 3),
        )
    };
    // SAFETY: live BSTRs of 2 and 3 units.
    unsafe {
        assert_eq!(
            std::slice::from_raw_parts(part, 3),
            &[u16::from(b'h'), 0xE9, 0]
        );
        assert_eq!(std::slice::from_raw_parts(zeros, 4), &[0, 0, 0, 0]);
        assert_eq!(qmgr_ffi::SysStringLen(zeros), 3);
        assert_eq!(qmgr_ffi::SysStringLen(std::ptr::null_mut()), 0);
        assert!(qmgr_ffi::SysAllocString(std::ptr::null()).is_null());
        qmgr_ffi::SysFreeString(part);
        qmgr_ffi::SysFreeString(zeros);
    }
}

#[test]
fn variant_clear_frees_a_bstr_and_empties_the_variant() {
    let mut variant = VARIANT::EMPTY;
    variant.vt = VT_I4;
    // SAFETY: a writable VARIANT.
    unsafe { qmgr_ffi::VariantInit(&raw mut variant) };
    assert_eq!(variant.vt, VT_EMPTY);
    let text = wide("owned");
    variant.vt = VT_BSTR;
    // SAFETY: a NUL-terminated string.
    variant.value.bstrVal = unsafe { qmgr_ffi::SysAllocString(text.as_ptr()) };
    // SAFETY: an initialised VARIANT owning its BSTR.
    assert_eq!(unsafe { qmgr_ffi::VariantClear(&raw mut variant) }, 0);
    assert_eq!(variant.vt, VT_EMPTY);
    // SAFETY: NULL is refused, not dereferenced.
    let refused = unsafe { qmgr_ffi::VariantClear(std::ptr::null_mut()) };
    assert_eq!(refused, qmgr_core::hresult::E_INVALIDARG.0);
    variant.vt = VT_ARRAY | VT_I4;
    // SAFETY: an initialised VARIANT (SAFEARRAYs are refused before any access).
    assert_ne!(unsafe { qmgr_ffi::VariantClear(&raw mut variant) }, 0);
}

#[test]
fn co_task_memory_round_trips() {
    // SAFETY: allocate, write inside the block, free once.
    unsafe {
        let block = qmgr_ffi::CoTaskMemAlloc(16).cast::<u8>();
        assert!(!block.is_null());
        block.write_bytes(0xAB, 16);
        qmgr_ffi::CoTaskMemFree(block.cast());
        qmgr_ffi::CoTaskMemFree(std::ptr::null_mut());
        let empty = qmgr_ffi::CoTaskMemAlloc(0);
        assert!(!empty.is_null());
        qmgr_ffi::CoTaskMemFree(empty);
    }
}
