//! What curl learnt about an ftp file (SIZE, MDTM) before its body arrives. The write
//! callback only sees its own handler, so it asks curl through the raw easy handle.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libc::{c_double, c_long};

/// The modification time (MDTM), if the server told it.
pub(crate) fn modification_time(easy: *mut curl_sys::CURL) -> Option<SystemTime> {
    if easy.is_null() {
        return None;
    }
    let mut seconds: c_long = -1;
    // SAFETY: `easy` is the live handle whose callback is running (the sink that holds it
    // lives inside that handle); CURLINFO_FILETIME writes one long through the pointer.
    let code =
        unsafe { curl_sys::curl_easy_getinfo(easy, curl_sys::CURLINFO_FILETIME, &raw mut seconds) };
    if code != curl_sys::CURLE_OK {
        return None;
    }
    let seconds = u64::try_from(seconds).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

/// The bytes still to come: the file's size less the resume offset.
pub(crate) fn remaining_length(easy: *mut curl_sys::CURL) -> Option<u64> {
    if easy.is_null() {
        return None;
    }
    let mut length: c_double = -1.0;
    // SAFETY: as above; CURLINFO_CONTENT_LENGTH_DOWNLOAD writes one double.
    let code = unsafe {
        curl_sys::curl_easy_getinfo(
            easy,
            curl_sys::CURLINFO_CONTENT_LENGTH_DOWNLOAD,
            &raw mut length,
        )
    };
    if code != curl_sys::CURLE_OK || length < 0.0 {
        return None;
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "curl reports a whole, non-negative (checked above) length as a double"
    )]
    Some(length as u64)
}
