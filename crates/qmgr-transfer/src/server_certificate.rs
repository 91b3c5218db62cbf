//! The certificate a server presents, fetched ahead of a transfer whose job has a
//! certificate validator (IBackgroundCopyServerCertificateValidationCallback).
//!
//! The validator lives in a client process and may take seconds to answer, so its question
//! cannot be asked from inside the engine's handshake (that would hold up the multi loop
//! and every other transfer). Instead the service connects once on a thread of its own with
//! the transfer's TLS settings, reads the chain, and asks; an approved transfer then runs
//! with the leaf's public key pinned (`CURLOPT_PINNEDPUBLICKEY`), so the verdict covers
//! the server the transfer actually talks to.

use std::ffi::{c_int, c_long};
use std::time::Duration;

use curl::easy::Easy;
use openssl_sys as ossl;
use qmgr_core::ErrorContext;
use qmgr_core::hresult;

use crate::error::TransferError;
use crate::request::{ProxyChoice, TransferRequest};
use crate::tls;

/// What a server presented in its TLS handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerCertificate {
    /// The server's own certificate, DER.
    pub certificate: Vec<u8>,
    /// Every certificate the server sent, leaf first, each DER, one after another.
    pub chain: Vec<u8>,
    /// The leaf's public key as `CURLOPT_PINNEDPUBLICKEY` takes it: `sha256//` and the
    /// base64 of the SHA-256 of its DER SubjectPublicKeyInfo.
    pub pin: String,
}

/// Connects to `request`'s server as its transfer would (proxy, CA bundle, relaxed checks,
/// client certificate), completes the TLS handshake and returns the certificates the server
/// sent. The server's certificate goes through the same checks first: one the transfer
/// would refuse is refused here, with the transfer's error, and no validator is asked.
///
/// # Errors
/// The transfer's error for a connection or handshake that fails.
pub fn fetch_server_certificate(
    request: &TransferRequest,
    timeout: Duration,
) -> Result<ServerCertificate, TransferError> {
    let url = request.url.as_str();
    let mut easy = Easy::new();
    let setup = configure(&mut easy, request, timeout);
    if let Err(error) = setup.and_then(|()| easy.perform()) {
        let detail = tls::verify_result(easy.raw()).filter(|code| *code != 0);
        return Err(TransferError::transport(&error, url, None, None, detail));
    }
    let chain = peer_chain(&easy).ok_or_else(|| {
        TransferError::permanent(
            hresult::HRESULT_WINHTTP_SECURE_FAILURE,
            ErrorContext::GeneralTransport,
            format!("{url}: the server presented no certificate"),
        )
    })?;
    let Some(certificate) = chain.first().cloned() else {
        return Err(TransferError::permanent(
            hresult::HRESULT_WINHTTP_SECURE_FAILURE,
            ErrorContext::GeneralTransport,
            format!("{url}: the server presented no certificate"),
        ));
    };
    let pin = public_key_pin(&certificate).ok_or_else(|| {
        TransferError::permanent(
            hresult::HRESULT_WINHTTP_SECURE_FAILURE,
            ErrorContext::GeneralTransport,
            format!("{url}: the server's certificate has no readable public key"),
        )
    })?;
    Ok(ServerCertificate {
        certificate,
        chain: chain.concat(),
        pin,
    })
}

fn configure(
    easy: &mut Easy,
    request: &TransferRequest,
    timeout: Duration,
) -> Result<(), curl::Error> {
    easy.url(&request.url)?;
    // Connect and shake hands, send no request: the validator has not said yes yet.
    easy.connect_only(true)?;
    easy.certinfo(true)?;
    easy.connect_timeout(timeout)?;
    easy.timeout(timeout)?;
    match &request.proxy {
        ProxyChoice::FromEnvironment => {}
        ProxyChoice::Direct => easy.proxy("")?,
        ProxyChoice::Explicit { url, bypass } => {
            easy.proxy(url)?;
            easy.noproxy(&bypass.join(","))?;
        }
    }
    let security = &request.security;
    if security.ignore.host_name {
        easy.ssl_verify_host(false)?;
    }
    // The transfer relaxes exactly the chain checks its flags name; this connection only
    // reads the chain, so any relaxed check lets it through, and the transfer that follows
    // still applies the exact rule.
    let ignore = security.ignore;
    if ignore.dates || ignore.unknown_ca || ignore.wrong_usage {
        easy.ssl_verify_peer(false)?;
    }
    if let Some(bundle) = &security.ca_bundle {
        easy.cainfo(bundle)?;
    }
    if let Some(client) = &security.client_certificate {
        easy.ssl_cert(&client.certificate)?;
        if let Some(key) = &client.key {
            easy.ssl_key(key)?;
        }
        if let Some(password) = &client.key_password {
            easy.key_password(password)?;
        }
    }
    Ok(())
}

/// The certificates the server sent on `easy`'s connection, leaf first, DER: curl's
/// `CURLINFO_CERTINFO` record (made during the handshake) holds each as PEM.
fn peer_chain(easy: &Easy) -> Option<Vec<Vec<u8>>> {
    let mut info: *const curl_sys::curl_certinfo = std::ptr::null();
    // SAFETY: `easy` is a live handle; CURLINFO_CERTINFO writes one pointer to the handle's
    // own record through the pointer given, which lives across the call.
    let code = unsafe {
        curl_sys::curl_easy_getinfo(easy.raw(), curl_sys::CURLINFO_CERTINFO, &raw mut info)
    };
    if code != curl_sys::CURLE_OK || info.is_null() {
        return None;
    }
    let mut chain = Vec::new();
    // SAFETY: the record and its lists belong to the handle, which is borrowed for this
    // whole function and not changed meanwhile; curl keeps `num_of_certs` lists, each a
    // NUL-terminated string list.
    unsafe {
        let count = usize::try_from((*info).num_of_certs).ok()?;
        for index in 0..count {
            let mut item = *(*info).certinfo.add(index);
            let mut der = None;
            while !item.is_null() {
                let text = std::ffi::CStr::from_ptr((*item).data).to_bytes();
                if let Some(pem) = text.strip_prefix(b"Cert:") {
                    der = pem_to_der(pem);
                }
                item = (*item).next;
            }
            chain.push(der?);
        }
    }
    Some(chain)
}

/// The DER of one PEM certificate.
fn pem_to_der(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let body: String = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("-----"))
        .collect();
    let padding = body.bytes().rev().take_while(|b| *b == b'=').count();
    let length = c_int::try_from(body.len()).ok()?;
    let mut der = vec![0_u8; body.len() / 4 * 3 + 3];
    // SAFETY: EVP_DecodeBlock reads `length` bytes of `body` and writes at most
    // 3/4 of that into `der`, which has room for it.
    let written = unsafe { ossl::EVP_DecodeBlock(der.as_mut_ptr(), body.as_ptr(), length) };
    // It counts the padding's bytes as data.
    let written = usize::try_from(written).ok()?.checked_sub(padding)?;
    der.truncate(written);
    (!der.is_empty()).then_some(der)
}

/// Runs an OpenSSL `i2d_*` encoder twice, for the length and then into a buffer.
fn der_of(encode: impl Fn(*mut *mut u8) -> c_int) -> Option<Vec<u8>> {
    let length = usize::try_from(encode(std::ptr::null_mut())).ok()?;
    let mut bytes = vec![0_u8; length];
    let mut cursor = bytes.as_mut_ptr();
    let written = usize::try_from(encode(&raw mut cursor)).ok()?;
    (written == length).then_some(bytes)
}

/// The `sha256//BASE64` pin of a DER certificate's public key.
fn public_key_pin(certificate: &[u8]) -> Option<String> {
    let length = c_long::try_from(certificate.len()).ok()?;
    let mut input = certificate.as_ptr();
    // SAFETY: d2i_X509 reads at most `length` bytes from `input`, which points into the
    // borrowed slice; the X509 and EVP_PKEY it returns are owned here and freed below.
    unsafe {
        let x509 = ossl::d2i_X509(std::ptr::null_mut(), &raw mut input, length);
        if x509.is_null() {
            return None;
        }
        let key = ossl::X509_get_pubkey(x509);
        let spki = if key.is_null() {
            None
        } else {
            let spki = der_of(|out| ossl::i2d_PUBKEY(key, out));
            ossl::EVP_PKEY_free(key);
            spki
        };
        ossl::X509_free(x509);
        let spki = spki?;
        let mut digest = [0_u8; 32];
        ossl::SHA256(spki.as_ptr(), spki.len(), digest.as_mut_ptr());
        // Base64 of 32 bytes: 44 characters and the NUL EVP_EncodeBlock writes.
        let mut text = [0_u8; 45];
        let written = ossl::EVP_EncodeBlock(text.as_mut_ptr(), digest.as_ptr(), 32);
        let written = usize::try_from(written).ok()?;
        let encoded = std::str::from_utf8(text.get(..written)?).ok()?;
        Some(format!("sha256//{encoded}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bodies_decode_without_their_padding() {
        let pem = b"-----BEGIN CERTIFICATE-----\nMAEC\nAw==\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_to_der(pem), Some(vec![0x30, 0x01, 0x02, 0x03]));
        assert_eq!(
            pem_to_der(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----"),
            None
        );
    }

    #[test]
    fn bytes_that_are_no_certificate_have_no_pin() {
        assert_eq!(public_key_pin(b"not a certificate"), None);
        assert_eq!(public_key_pin(&[]), None);
    }
}
