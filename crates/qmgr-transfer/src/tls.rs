//! Relaxing certificate checks one `BG_SSL_IGNORE_*` flag at a time, and naming a failed
//! check as WinHTTP does.
//!
//! curl with OpenSSL lets the handshake finish whatever the chain's verdict
//! (`SSL_VERIFY_NONE`) and then fails the transfer unless `SSL_get_verify_result` is
//! `X509_V_OK`; the host name is checked separately by curl (`CURLOPT_SSL_VERIFYHOST`).
//! For a transfer that relaxes a chain check, the engine installs an OpenSSL verify
//! callback (through `CURLOPT_SSL_CTX_FUNCTION`) that clears exactly the errors its flags
//! name, so every other error still reaches curl's verdict. The flags travel in the
//! `SSL_CTX`'s ex_data as a plain number, so nothing needs to outlive the transfer.
//!
//! Revocation is not checked (no CRL or OCSP is configured), so there is no revocation
//! failure to relax.

use std::ffi::{c_int, c_long, c_void};
use std::sync::OnceLock;

use openssl_sys as ossl;
use qmgr_core::hresult::{self, HResult};

use crate::request::IgnoredCertificateErrors;

/// The classes of certificate defects, as WinHTTP sorts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Defect {
    HostName,
    Dates,
    UnknownCa,
    WrongUsage,
    Revoked,
    RevocationUnknown,
    Other,
}

impl Defect {
    /// The class of an OpenSSL `X509_V_ERR_*` code.
    pub(crate) fn of_verify_error(code: c_long) -> Defect {
        let Ok(code) = c_int::try_from(code) else {
            return Defect::Other;
        };
        match code {
            ossl::X509_V_ERR_HOSTNAME_MISMATCH | ossl::X509_V_ERR_IP_ADDRESS_MISMATCH => {
                Defect::HostName
            }
            ossl::X509_V_ERR_CERT_NOT_YET_VALID
            | ossl::X509_V_ERR_CERT_HAS_EXPIRED
            | ossl::X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD
            | ossl::X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD => Defect::Dates,
            ossl::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
            | ossl::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
            | ossl::X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
            | ossl::X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
            | ossl::X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
            | ossl::X509_V_ERR_CERT_UNTRUSTED => Defect::UnknownCa,
            ossl::X509_V_ERR_INVALID_PURPOSE | ossl::X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE => {
                Defect::WrongUsage
            }
            ossl::X509_V_ERR_CERT_REVOKED => Defect::Revoked,
            ossl::X509_V_ERR_UNABLE_TO_GET_CRL
            | ossl::X509_V_ERR_CRL_NOT_YET_VALID
            | ossl::X509_V_ERR_CRL_HAS_EXPIRED
            | ossl::X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER => Defect::RevocationUnknown,
            _ => Defect::Other,
        }
    }

    /// The `HRESULT_FROM_WIN32(ERROR_WINHTTP_SECURE_*)` Windows reports for it.
    pub(crate) fn hresult(self) -> HResult {
        match self {
            Defect::HostName => hresult::HRESULT_WINHTTP_SECURE_CERT_CN_INVALID,
            Defect::Dates => hresult::HRESULT_WINHTTP_SECURE_CERT_DATE_INVALID,
            Defect::UnknownCa => hresult::HRESULT_WINHTTP_SECURE_INVALID_CA,
            Defect::WrongUsage => hresult::HRESULT_WINHTTP_SECURE_CERT_WRONG_USAGE,
            Defect::Revoked => hresult::HRESULT_WINHTTP_SECURE_CERT_REVOKED,
            Defect::RevocationUnknown => hresult::HRESULT_WINHTTP_SECURE_CERT_REV_FAILED,
            Defect::Other => hresult::HRESULT_WINHTTP_SECURE_FAILURE,
        }
    }

    fn is_ignored_by(self, ignored: IgnoredCertificateErrors) -> bool {
        match self {
            Defect::HostName => ignored.host_name,
            Defect::Dates => ignored.dates,
            Defect::UnknownCa => ignored.unknown_ca,
            Defect::WrongUsage => ignored.wrong_usage,
            Defect::Revoked | Defect::RevocationUnknown | Defect::Other => false,
        }
    }
}

/// Set in every encoded value so that "no data" (a null pointer) is never a valid set of
/// flags.
const PRESENT: usize = 1 << 8;

fn encode(ignored: IgnoredCertificateErrors) -> usize {
    PRESENT
        | usize::from(ignored.host_name)
        | usize::from(ignored.dates) << 1
        | usize::from(ignored.unknown_ca) << 2
        | usize::from(ignored.wrong_usage) << 3
}

fn decode(value: usize) -> Option<IgnoredCertificateErrors> {
    (value & PRESENT != 0).then_some(IgnoredCertificateErrors {
        host_name: value & 1 != 0,
        dates: value & 1 << 1 != 0,
        unknown_ca: value & 1 << 2 != 0,
        wrong_usage: value & 1 << 3 != 0,
    })
}

/// The `SSL_CTX` ex_data slot holding a transfer's flags, allocated once per process.
fn flags_index() -> Option<c_int> {
    static INDEX: OnceLock<c_int> = OnceLock::new();
    let index = *INDEX.get_or_init(|| {
        // SAFETY: asks OpenSSL for a new ex_data index without callbacks; OpenSSL is
        // initialised by curl before any SSL_CTX exists, and this runs inside curl's
        // SSL_CTX hook.
        unsafe { ossl::SSL_CTX_get_ex_new_index(0, std::ptr::null_mut(), None, None, None) }
    });
    (index >= 0).then_some(index)
}

/// Installs the verify callback relaxing `ignored` on the `SSL_CTX` curl is about to use
/// for one connection. curl calls this hook with a fresh `SSL_CTX` per connection.
pub(crate) fn relax_checks(
    ssl_ctx: *mut c_void,
    ignored: IgnoredCertificateErrors,
) -> Result<(), curl::Error> {
    let failed = || curl::Error::new(curl_sys::CURLE_SSL_CERTPROBLEM);
    let index = flags_index().ok_or_else(failed)?;
    let ctx = ssl_ctx.cast::<ossl::SSL_CTX>();
    // SAFETY: curl hands us a live SSL_CTX of its OpenSSL build (the one openssl-sys links
    // to) before the handshake; the ex_data value is a plain number, not a pointer to
    // anything, so it needs no lifetime; the mode curl chose is kept as it is.
    unsafe {
        if ossl::SSL_CTX_set_ex_data(ctx, index, encode(ignored) as *mut c_void) != 1 {
            return Err(failed());
        }
        let mode = ossl::SSL_CTX_get_verify_mode(ctx);
        ossl::SSL_CTX_set_verify(ctx, mode, Some(verify));
    }
    Ok(())
}

/// OpenSSL's verify callback: called for each check of each certificate in the chain,
/// with `preverified` 0 when that check failed. An error the transfer ignores is cleared
/// (so the final verify result stays `X509_V_OK`); any other error stands.
extern "C" fn verify(preverified: c_int, store: *mut ossl::X509_STORE_CTX) -> c_int {
    if preverified == 1 {
        return 1;
    }
    // SAFETY: OpenSSL calls this during a handshake with a live store context whose
    // ex_data holds the SSL being verified; the SSL and its SSL_CTX outlive the call. No
    // Rust panic can start here (no indexing, no allocation that panics).
    unsafe {
        let Some(index) = flags_index() else {
            return 0;
        };
        let ssl =
            ossl::X509_STORE_CTX_get_ex_data(store, ossl::SSL_get_ex_data_X509_STORE_CTX_idx())
                .cast::<ossl::SSL>();
        if ssl.is_null() {
            return 0;
        }
        let ctx = ossl::SSL_get_SSL_CTX(ssl);
        let Some(ignored) = decode(ossl::SSL_CTX_get_ex_data(ctx, index) as usize) else {
            return 0;
        };
        let error = ossl::X509_STORE_CTX_get_error(store);
        if Defect::of_verify_error(c_long::from(error)).is_ignored_by(ignored) {
            ossl::X509_STORE_CTX_set_error(store, ossl::X509_V_OK);
            1
        } else {
            0
        }
    }
}

/// curl's record of the chain's verdict for the last connection of `easy`
/// (`CURLINFO_SSL_VERIFYRESULT`, an `X509_V_ERR_*` code), if curl has one.
pub(crate) fn verify_result(easy: *mut curl_sys::CURL) -> Option<c_long> {
    let mut result: c_long = 0;
    // SAFETY: `easy` is a live handle owned by the caller; CURLINFO_SSL_VERIFYRESULT writes
    // one long through the pointer, which lives across the call.
    let code = unsafe {
        curl_sys::curl_easy_getinfo(easy, curl_sys::CURLINFO_SSL_VERIFYRESULT, &raw mut result)
    };
    (code == curl_sys::CURLE_OK).then_some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_survive_the_trip_through_ex_data() {
        for bits in 0..16_u8 {
            let ignored = IgnoredCertificateErrors {
                host_name: bits & 1 != 0,
                dates: bits & 2 != 0,
                unknown_ca: bits & 4 != 0,
                wrong_usage: bits & 8 != 0,
            };
            assert_eq!(decode(encode(ignored)), Some(ignored));
        }
        assert_eq!(decode(0), None, "a missing value relaxes nothing");
    }

    #[test]
    fn each_flag_relaxes_only_its_own_class() {
        let only_dates = IgnoredCertificateErrors {
            dates: true,
            ..IgnoredCertificateErrors::default()
        };
        let expired = Defect::of_verify_error(ossl::X509_V_ERR_CERT_HAS_EXPIRED.into());
        assert_eq!(expired, Defect::Dates);
        assert!(expired.is_ignored_by(only_dates));
        for code in [
            ossl::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
            ossl::X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
            ossl::X509_V_ERR_INVALID_PURPOSE,
            ossl::X509_V_ERR_CERT_REVOKED,
            ossl::X509_V_ERR_CERT_SIGNATURE_FAILURE,
            ossl::X509_V_ERR_UNABLE_TO_GET_CRL,
        ] {
            let defect = Defect::of_verify_error(code.into());
            assert!(!defect.is_ignored_by(only_dates), "{code}: {defect:?}");
        }
        let everything = IgnoredCertificateErrors {
            host_name: true,
            dates: true,
            unknown_ca: true,
            wrong_usage: true,
        };
        for code in [
            ossl::X509_V_ERR_CERT_REVOKED,
            ossl::X509_V_ERR_CERT_SIGNATURE_FAILURE,
            ossl::X509_V_ERR_UNABLE_TO_GET_CRL,
        ] {
            assert!(
                !Defect::of_verify_error(code.into()).is_ignored_by(everything),
                "{code} is never relaxed"
            );
        }
    }

    #[test]
    fn defects_carry_winhttps_codes() {
        assert_eq!(Defect::HostName.hresult().bits(), 0x8007_2F06);
        assert_eq!(Defect::Dates.hresult().bits(), 0x8007_2F05);
        assert_eq!(Defect::UnknownCa.hresult().bits(), 0x8007_2F0D);
        assert_eq!(Defect::WrongUsage.hresult().bits(), 0x8007_2F93);
        assert_eq!(Defect::Revoked.hresult().bits(), 0x8007_2F8A);
        assert_eq!(Defect::RevocationUnknown.hresult().bits(), 0x8007_2F19);
        assert_eq!(Defect::Other.hresult().bits(), 0x8007_2F8F);
    }
}
