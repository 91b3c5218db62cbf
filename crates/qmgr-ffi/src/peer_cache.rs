//! Peer caching (bits3_0.h): IBitsPeerCacheAdministration, answered by the manager's
//! QueryInterface, and its two enumerators, IEnumBitsPeerCacheRecords and IEnumBitsPeers.
//!
//! Microsoft retired peer caching in BITS 4.0 (Windows 7; BranchCache replaced it) and
//! documents for IBitsPeerCacheAdministration: "This interface is deprecated in BITS 4.0,
//! and all of the API methods will return S_FALSE" (learn.microsoft.com, bits3_0.h,
//! IBitsPeerCacheAdministration interface). qmgr has no peer cache either, so it answers
//! as current Windows does:
//!
//! - a setting read or written, a cache or peer list cleared, a record or URL deleted,
//!   peers discovered: S_FALSE ("nothing done"), with the getters' values zero: a cache of
//!   at most 0 % of the disk, records kept 0 seconds, peer caching neither served nor used
//!   (no `BG_ENABLE_PEERCACHING_*` flag);
//! - EnumRecords and EnumPeers: S_OK with an empty enumerator (the reference the caller
//!   Releases, which an S_FALSE answer would invite callers testing `hr == S_OK` to leak);
//! - GetRecord: no record exists, so `BG_E_NOT_FOUND` (bitsmsg.h: the requested item was
//!   not found) and a NULL record.
//!
//! Bad arguments still fail as everywhere else in libqmgr: a NULL out-pointer or record id
//! is E_POINTER, a NULL or malformed URL, a cache size above 100 % or an unknown
//! configuration flag E_INVALIDARG.

#![allow(
    clippy::wildcard_imports,
    reason = "the ABI modules are imported whole: their names are Windows'; clippy skips this lint when the crate is built for its unit tests, so `expect` would fail there"
)]

use qmgr_core::hresult;
use qmgr_core::{Guid, QmgrError};

use crate::abi::bits::*;
use crate::abi::types::*;
use crate::boundary::thunks;
use crate::manager::{ManagerObject, PEER_CACHE_ADMINISTRATION};

/// The configuration flags IBitsPeerCacheAdministration knows (bits3_0.h).
const KNOWN_CONFIGURATION_FLAGS: DWORD =
    BG_ENABLE_PEERCACHING_CLIENT | BG_ENABLE_PEERCACHING_SERVER | BG_DISABLE_BRANCH_CACHE;

thunks! { ManagerObject, IBitsPeerCacheAdministration, PEER_CACHE_ADMINISTRATION;
    fn GetMaximumCacheSize(_manager, pBytes: *mut DWORD) {
        pBytes.out("pBytes")?.set(0);
        Ok(hresult::S_FALSE)
    }
    fn SetMaximumCacheSize(_manager, Bytes: DWORD) {
        // A percentage of the disk (bits3_0.h).
        if Bytes > 100 {
            return Err(QmgrError::invalid_arg(format!(
                "the peer cache size is a percentage of the disk (got {Bytes})"
            )));
        }
        Ok(hresult::S_FALSE)
    }
    fn GetMaximumContentAge(_manager, pSeconds: *mut ULONG) {
        pSeconds.out("pSeconds")?.set(0);
        Ok(hresult::S_FALSE)
    }
    fn SetMaximumContentAge(_manager, Seconds: ULONG) {
        let _ = Seconds;
        Ok(hresult::S_FALSE)
    }
    fn GetConfigurationFlags(_manager, pFlags: *mut DWORD) {
        pFlags.out("pFlags")?.set(0);
        Ok(hresult::S_FALSE)
    }
    fn SetConfigurationFlags(_manager, Flags: DWORD) {
        if Flags & !KNOWN_CONFIGURATION_FLAGS != 0 {
            return Err(QmgrError::invalid_arg(format!(
                "peer caching configuration flags 0x{Flags:X}"
            )));
        }
        Ok(hresult::S_FALSE)
    }
    fn EnumRecords(_manager, ppEnum: *mut *mut IEnumBitsPeerCacheRecords) {
        let out = ppEnum.out("ppEnum")?;
        out.set(records::create());
        Ok(hresult::S_OK)
    }
    fn GetRecord(_manager, id: REFGUID, ppRecord: *mut *mut IBitsPeerCacheRecord) {
        // The answer is NULL, as COM wants an out-pointer left after a failure.
        let _ = ppRecord.out("ppRecord")?;
        let id = Guid::from(id.read("id")?);
        Err(QmgrError::from_code(hresult::BG_E_NOT_FOUND).context(format_args!(
            "no peer cache record {id}: peer caching is retired and the cache is empty"
        )))
    }
    fn ClearRecords(_manager) {
        Ok(hresult::S_FALSE)
    }
    fn DeleteRecord(_manager, id: REFGUID) {
        id.read("id")?;
        Ok(hresult::S_FALSE)
    }
    fn DeleteUrl(_manager, url: LPCWSTR) {
        url.required_string("url")?;
        Ok(hresult::S_FALSE)
    }
    fn EnumPeers(_manager, ppEnum: *mut *mut IEnumBitsPeers) {
        let out = ppEnum.out("ppEnum")?;
        out.set(peers::create());
        Ok(hresult::S_OK)
    }
    fn ClearPeers(_manager) {
        Ok(hresult::S_FALSE)
    }
    fn DiscoverPeers(_manager) {
        Ok(hresult::S_FALSE)
    }
}

/// The vtable behind the manager's IBitsPeerCacheAdministration pointer.
pub(crate) const ADMINISTRATION_VTBL: IBitsPeerCacheAdministrationVtbl =
    IBitsPeerCacheAdministrationVtbl {
        base: crate::com::unknown_vtbl::<ManagerObject, PEER_CACHE_ADMINISTRATION>(),
        GetMaximumCacheSize,
        SetMaximumCacheSize,
        GetMaximumContentAge,
        SetMaximumContentAge,
        GetConfigurationFlags,
        SetConfigurationFlags,
        EnumRecords,
        GetRecord,
        ClearRecords,
        DeleteRecord,
        DeleteUrl,
        EnumPeers,
        ClearPeers,
        DiscoverPeers,
    };

/// An enumerator with nothing to hand out, with COM's enumerator semantics: Next fetches
/// none (S_FALSE when any were asked for), Skip skips none, Clone makes another, GetCount
/// is 0. `$item` is the interface the caller's array would have held.
macro_rules! empty_enumerator {
    ($module:ident, $interface:ident, $vtbl:ident, $iid:ident, $item:ident) => {
        pub(crate) mod $module {
            use qmgr_core::hresult::{self, HResult};
            use qmgr_core::{QmgrError, Result};

            use crate::abi::bits::{$interface, $item, $iid, $vtbl, IID_IUnknown};
            use crate::abi::types::{GUID, ULONG};
            use crate::boundary::{self, thunks};
            use crate::com::{Class, ComObject, unknown_vtbl};

            pub(crate) struct Empty;

            // SAFETY: one vtable reference at offset 0 serving the interface.
            unsafe impl Class for Empty {
                type Header = &'static $vtbl;
                const HEADER: Self::Header = &$vtbl {
                    base: unknown_vtbl::<Self, 0>(),
                    Next,
                    Skip,
                    Reset,
                    Clone,
                    GetCount,
                };
                const INTERFACES: &'static [(GUID, usize)] = &[(IID_IUnknown, 0), ($iid, 0)];
            }

            pub(crate) fn create() -> *mut $interface {
                ComObject::create(Empty)
            }

            fn none_of(requested: ULONG) -> HResult {
                if requested == 0 {
                    hresult::S_OK
                } else {
                    hresult::S_FALSE
                }
            }

            fn next(
                celt: ULONG,
                rgelt: boundary::Ptr<'_, *mut $item>,
                fetched: boundary::Ptr<'_, ULONG>,
            ) -> Result<HResult> {
                if celt > 1 && fetched.is_null() {
                    return Err(QmgrError::invalid_arg(
                        "pceltFetched may be NULL only when celt is 1",
                    ));
                }
                if celt > 0 && rgelt.is_null() {
                    return Err(boundary::null_pointer("rgelt"));
                }
                if let Some(out) = fetched.optional_out() {
                    out.set(0);
                }
                Ok(none_of(celt))
            }

            thunks! { Empty, $interface, 0;
                fn Next(_enumerator, celt: ULONG, rgelt: *mut *mut $item, pceltFetched: *mut ULONG) {
                    next(celt, rgelt, pceltFetched)
                }
                fn Skip(_enumerator, celt: ULONG) {
                    Ok(none_of(celt))
                }
                fn Reset(_enumerator) {
                    Ok(hresult::S_OK)
                }
                fn Clone(_enumerator, ppenum: *mut *mut $interface) {
                    ppenum.out("ppenum")?.set(create());
                    Ok(hresult::S_OK)
                }
                fn GetCount(_enumerator, puCount: *mut ULONG) {
                    puCount.out("puCount")?.set(0);
                    Ok(hresult::S_OK)
                }
            }
        }
    };
}

empty_enumerator!(
    records,
    IEnumBitsPeerCacheRecords,
    IEnumBitsPeerCacheRecordsVtbl,
    IID_IEnumBitsPeerCacheRecords,
    IBitsPeerCacheRecord
);
empty_enumerator!(
    peers,
    IEnumBitsPeers,
    IEnumBitsPeersVtbl,
    IID_IEnumBitsPeers,
    IBitsPeer
);

#[cfg(test)]
mod tests {
    use std::ptr;

    use super::*;

    #[test]
    fn the_record_enumerator_is_empty_with_com_semantics() {
        let enumerator = records::create();
        // SAFETY: `enumerator` is a live object made above; every pointer passed is a local
        // that outlives the call, and the last Release gives up the one reference.
        unsafe {
            let vtbl = &*(*enumerator).lpVtbl;
            let mut batch: [*mut IBitsPeerCacheRecord; 2] = [ptr::null_mut(); 2];
            let mut fetched: ULONG = 9;
            let hr = (vtbl.Next)(enumerator, 2, batch.as_mut_ptr(), &raw mut fetched);
            assert_eq!((hr, fetched), (hresult::S_FALSE.0, 0));
            assert!(batch.iter().all(|slot| slot.is_null()));
            let hr = (vtbl.Next)(enumerator, 2, batch.as_mut_ptr(), ptr::null_mut());
            assert_eq!(hr, hresult::E_INVALIDARG.0);
            assert_eq!((vtbl.Skip)(enumerator, 0), hresult::S_OK.0);
            assert_eq!((vtbl.Skip)(enumerator, 1), hresult::S_FALSE.0);
            let mut count: ULONG = 9;
            assert_eq!((vtbl.GetCount)(enumerator, &raw mut count), hresult::S_OK.0);
            assert_eq!(count, 0);
            let mut copy: *mut IEnumBitsPeerCacheRecords = ptr::null_mut();
            assert_eq!((vtbl.Clone)(enumerator, &raw mut copy), hresult::S_OK.0);
            assert!(!copy.is_null() && copy != enumerator);
            let unknown = &(*(*copy).lpVtbl).base;
            assert_eq!((unknown.Release)(copy.cast()), 0);
            assert_eq!((vtbl.base.Release)(enumerator.cast()), 0);
        }
    }

    #[test]
    fn the_peer_enumerator_answers_its_own_iid_only() {
        let enumerator = peers::create();
        // SAFETY: as above.
        unsafe {
            let unknown = &(*(*enumerator).lpVtbl).base;
            let mut answer: *mut std::ffi::c_void = ptr::null_mut();
            let hr = (unknown.QueryInterface)(
                enumerator.cast(),
                &raw const IID_IEnumBitsPeers,
                &raw mut answer,
            );
            assert_eq!(hr, hresult::S_OK.0);
            assert_eq!(answer, enumerator.cast());
            let hr = (unknown.QueryInterface)(
                enumerator.cast(),
                &raw const IID_IEnumBitsPeerCacheRecords,
                &raw mut answer,
            );
            assert_eq!((hr, answer), (hresult::E_NOINTERFACE.0, ptr::null_mut()));
            assert_eq!((unknown.Release)(enumerator.cast()), 1);
            assert_eq!((unknown.Release)(enumerator.cast()), 0);
        }
    }
}
