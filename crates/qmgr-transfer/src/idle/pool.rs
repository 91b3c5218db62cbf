//! The connection pool of idle transfers: a curl share object holding its own connection
//! cache. An easy handle attached to it finds and leaves connections there instead of in
//! the multi handle's cache, so a connection whose window idle mode clamped is never
//! reused by a foreground transfer, and a foreground connection never carries background
//! streams over HTTP/2.

use std::ptr::NonNull;

use curl::easy::{Easy2, Handler};

/// Owns the share object; it must outlive every easy handle attached to it (the engine
/// drops it after its transfers).
#[derive(Debug)]
pub(crate) struct ConnectionPool {
    share: NonNull<curl_sys::CURLSH>,
}

impl ConnectionPool {
    pub fn new() -> Result<Self, curl::Error> {
        // SAFETY: curl_share_init has no preconditions; it returns null when out of memory.
        let share = NonNull::new(unsafe { curl_sys::curl_share_init() })
            .ok_or_else(|| curl::Error::new(curl_sys::CURLE_OUT_OF_MEMORY))?;
        let pool = Self { share };
        // SAFETY: `share` is the live share object just made; CURLSHOPT_SHARE takes one
        // c_int naming the data to share. One thread uses it, so no lock callbacks.
        let code = unsafe {
            curl_sys::curl_share_setopt(
                pool.share.as_ptr(),
                curl_sys::CURLSHOPT_SHARE,
                curl_sys::CURL_LOCK_DATA_CONNECT,
            )
        };
        if code != curl_sys::CURLSHE_OK {
            return Err(curl::Error::new(curl_sys::CURLE_FAILED_INIT));
        }
        Ok(pool)
    }

    /// Makes `easy` take its connection from this pool.
    pub fn attach<H: Handler>(&self, easy: &Easy2<H>) -> Result<(), curl::Error> {
        // SAFETY: both handles are live; CURLOPT_SHARE takes the share object's pointer,
        // which outlives the easy handle (see the type's documentation).
        let code = unsafe {
            curl_sys::curl_easy_setopt(easy.raw(), curl_sys::CURLOPT_SHARE, self.share.as_ptr())
        };
        if code == curl_sys::CURLE_OK {
            Ok(())
        } else {
            Err(curl::Error::new(code))
        }
    }
}

impl Drop for ConnectionPool {
    fn drop(&mut self) {
        // SAFETY: the share object is live and no easy handle uses it any more (the
        // engine's transfers are gone); if one still did, curl refuses and it leaks.
        unsafe {
            curl_sys::curl_share_cleanup(self.share.as_ptr());
        }
    }
}
