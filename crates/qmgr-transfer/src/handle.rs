//! Turning a checked request into a configured curl easy handle.

use std::ffi::CString;
use std::time::Duration;

use curl::easy::{Auth, Easy2, HttpVersion, List, NetRc};
use qmgr_core::credentials::{AuthScheme, AuthTarget};
use qmgr_core::ranges::RemoteSpan;

use crate::credential_bytes;
use crate::request::{ProxyChoice, TransferRequest};
use crate::sink::Sink;
use crate::source::Scheme;

/// How much curl reads from the socket at once for a transfer no bandwidth cap holds back.
/// Reads this large cost the kernel far less per byte than 64 KiB ones (a fraction of the
/// system calls and of the receive-window updates they send): a 1 GiB download over
/// loopback takes about 40 % less CPU. curl's multi handle keeps one buffer of the largest
/// read size among its transfers, not one per transfer.
pub(crate) const FREE_READS: usize = 1024 * 1024;

/// How much curl reads at once for a transfer under a bandwidth cap or in idle mode. curl
/// hands each read over whole and the throttle charges it whole, so small reads keep a
/// capped transfer's flow smooth instead of a burst and a long pause.
pub(crate) const CAPPED_READS: usize = 64 * 1024;

/// `CURLOPT_PROTOCOLS_STR` and `CURLOPT_REDIR_PROTOCOLS_STR` (curl 7.85), which curl-sys
/// does not name.
const CURLOPT_PROTOCOLS_STR: curl_sys::CURLoption = curl_sys::CURLOPTTYPE_OBJECTPOINT + 318;
const CURLOPT_REDIR_PROTOCOLS_STR: curl_sys::CURLoption = curl_sys::CURLOPTTYPE_OBJECTPOINT + 319;

/// Settings shared by every handle of an engine.
#[derive(Clone, Debug)]
pub(crate) struct HandleDefaults {
    pub user_agent: String,
    pub connect_timeout: Duration,
    pub stall_timeout: Duration,
}

/// What one request of a transfer asks for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target<'a> {
    /// The URL curl fetches: the caller's, a redirect target, or the `/proc` name of a
    /// local source we opened.
    pub url: &'a str,
    /// Whether the caller's extra headers go along: only to the origin the caller named.
    pub send_headers: bool,
    /// Where the body starts in the file.
    pub offset: u64,
    /// The validator that must still hold for the server to send only the rest.
    pub if_range: Option<&'a str>,
    /// For a ranged file: the part of the remote file to ask for (instead of `offset`).
    pub span: Option<RemoteSpan>,
}

/// Builds the easy handle for one request. `scheme` is the scheme of the caller's URL,
/// which decides the protocols allowed for this and every later request of the transfer.
/// `spare` is a finished transfer's handle to use again: `curl_easy_reset` returns every
/// option to its default (credentials, TLS settings and headers included), so it carries
/// nothing of its last request but curl's caches, which the multi handle shares anyway.
///
/// curl does not follow redirects itself: it would send the caller's headers to any host
/// a server points at (it strips only `Authorization` and `Cookie`). The engine follows
/// them instead, one request per hop, and decides per hop which headers go.
pub(crate) fn build(
    sink: Sink,
    target: Target<'_>,
    scheme: Scheme,
    request: &TransferRequest,
    defaults: &HandleDefaults,
    spare: Option<Easy2<Sink>>,
) -> Result<Easy2<Sink>, curl::Error> {
    let mut easy = match spare {
        Some(mut easy) => {
            easy.reset();
            *easy.get_mut() = sink;
            easy
        }
        None => Easy2::new(sink),
    };
    let raw = easy.raw();
    easy.get_mut().easy = raw;
    easy.url(target.url)?;
    let protocols = scheme.allowed_protocols(request.allow_https_to_http);
    set_string_option(&easy, CURLOPT_PROTOCOLS_STR, protocols)?;
    set_string_option(&easy, CURLOPT_REDIR_PROTOCOLS_STR, protocols)?;
    easy.useragent(&defaults.user_agent)?;
    easy.connect_timeout(defaults.connect_timeout)?;
    // A transfer that receives nothing for this long has stalled; curl does not count time
    // spent paused by our throttle or by the caller.
    easy.low_speed_limit(1)?;
    easy.low_speed_time(defaults.stall_timeout)?;
    // The engine widens the reads of a transfer no cap holds back before curl first reads.
    easy.buffer_size(CAPPED_READS)?;
    easy.get_mut().read_size = CAPPED_READS;
    easy.tcp_keepalive(true)?;
    easy.follow_location(false)?;
    if scheme.is_http() {
        let mut headers = List::new();
        if target.send_headers {
            for (name, value) in &request.headers {
                headers.append(&format!("{name}: {value}"))?;
            }
        }
        if let Some(span) = target.span {
            let last = span.last.map(|last| last.to_string()).unwrap_or_default();
            easy.range(&format!("{}-{last}", span.first))?;
        } else if target.offset > 0 {
            easy.range(&format!("{}-", target.offset))?;
        }
        if target.offset > 0
            && let Some(validator) = target.if_range
        {
            headers.append(&format!("If-Range: {validator}"))?;
        }
        easy.http_headers(headers)?;
        if let Some(method) = request.http_method.as_deref().filter(|m| *m != "GET") {
            easy.custom_request(method)?;
        }
    } else if target.offset > 0 {
        easy.resume_from(target.offset)?;
    }
    if scheme.is_ftp() {
        easy.fetch_filetime(true)?;
    }
    if scheme.is_http()
        && target.send_headers
        && let Some(offer) = request.credentials.offer(AuthTarget::Server)
        && let Some(sent) = credential_bytes::for_curl(&offer)
    {
        set_bytes_option(&easy, curl_sys::CURLOPT_USERNAME, &sent.user_name)?;
        set_bytes_option(&easy, curl_sys::CURLOPT_PASSWORD, &sent.password)?;
        easy.http_auth(&auth_of(&sent.schemes))?;
    }
    if scheme.is_http()
        && let Some(netrc) = &request.netrc_file
    {
        // The job's own credentials, set above, win over the file's.
        easy.netrc(NetRc::Optional)?;
        let path = netrc
            .to_str()
            .ok_or_else(|| curl::Error::new(curl_sys::CURLE_BAD_FUNCTION_ARGUMENT))?;
        set_string_option(&easy, curl_sys::CURLOPT_NETRC_FILE, path)?;
    }
    if let Some(offer) = request.credentials.offer(AuthTarget::Proxy)
        && let Some(sent) = credential_bytes::for_curl(&offer)
    {
        set_bytes_option(&easy, curl_sys::CURLOPT_PROXYUSERNAME, &sent.user_name)?;
        set_bytes_option(&easy, curl_sys::CURLOPT_PROXYPASSWORD, &sent.password)?;
        easy.proxy_auth(&auth_of(&sent.schemes))?;
    }
    match &request.proxy {
        ProxyChoice::FromEnvironment => {}
        // An empty proxy turns proxies off, environment included.
        ProxyChoice::Direct => easy.proxy("")?,
        ProxyChoice::Explicit { url, bypass } => {
            easy.proxy(url)?;
            easy.noproxy(&bypass.join(","))?;
        }
    }
    let security = &request.security;
    let ignore = security.ignore;
    if ignore.host_name {
        easy.ssl_verify_host(false)?;
    }
    if ignore.any() {
        // The chain checks are relaxed in the SSL_CTX hook (see `tls`). A connection or
        // TLS session made that way must serve no other transfer, which curl would not
        // know to keep apart: no cached sessions, no connection reused in either
        // direction, and no HTTP/2 that would let other transfers share it meanwhile.
        easy.get_mut().ignored_certificate_errors = ignore;
        easy.ssl_sessionid_cache(false)?;
        easy.fresh_connect(true)?;
        easy.forbid_reuse(true)?;
        easy.http_version(HttpVersion::V11)?;
    }
    if let Some(bundle) = &security.ca_bundle {
        easy.cainfo(bundle)?;
    }
    if let Some(pin) = &security.pinned_public_key {
        // A connection kept from before the verdict was not checked against the pin.
        easy.fresh_connect(true)?;
        easy.pinned_public_key(pin)?;
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
    Ok(easy)
}

/// curl's CURLAUTH bits for `schemes`.
fn auth_of(schemes: &[AuthScheme]) -> Auth {
    let mut auth = Auth::new();
    for scheme in schemes {
        match scheme {
            AuthScheme::Basic => auth.basic(true),
            AuthScheme::Digest => auth.digest(true),
            AuthScheme::Ntlm => auth.ntlm(true),
            AuthScheme::Negotiate => auth.gssnegotiate(true),
        };
    }
    auth
}

/// Sets how much curl reads at once for a transfer already in the multi handle. curl limits
/// each read to this option when it makes it, and grows the shared buffer between reads
/// when a transfer asks for more than it holds, so the change applies from the next read.
pub(crate) fn set_read_size(easy: *mut curl_sys::CURL, bytes: usize) -> Result<(), curl::Error> {
    let bytes = std::ffi::c_long::try_from(bytes)
        .map_err(|_| curl::Error::new(curl_sys::CURLE_BAD_FUNCTION_ARGUMENT))?;
    // SAFETY: `easy` is a live handle owned by the engine's thread, which is the only
    // thread calling into curl, and no curl call is running for it; CURLOPT_BUFFERSIZE takes
    // a long.
    let code = unsafe { curl_sys::curl_easy_setopt(easy, curl_sys::CURLOPT_BUFFERSIZE, bytes) };
    setopt_result(code)
}

/// A `curl_easy_setopt` return code as a result.
fn setopt_result(code: curl_sys::CURLcode) -> Result<(), curl::Error> {
    if code == curl_sys::CURLE_OK {
        Ok(())
    } else {
        Err(curl::Error::new(code))
    }
}

fn set_string_option(
    easy: &Easy2<Sink>,
    option: curl_sys::CURLoption,
    value: &str,
) -> Result<(), curl::Error> {
    set_bytes_option(easy, option, value.as_bytes())
}

/// Sets a string option from bytes that need not be UTF-8 (see `credential_bytes`).
fn set_bytes_option(
    easy: &Easy2<Sink>,
    option: curl_sys::CURLoption,
    value: &[u8],
) -> Result<(), curl::Error> {
    let value =
        CString::new(value).map_err(|_| curl::Error::new(curl_sys::CURLE_BAD_FUNCTION_ARGUMENT))?;
    // SAFETY: the handle is live; curl copies string options, so `value` may be dropped
    // after the call.
    let code = unsafe { curl_sys::curl_easy_setopt(easy.raw(), option, value.as_ptr()) };
    setopt_result(code)
}
