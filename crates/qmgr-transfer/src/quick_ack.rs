//! Acknowledging the last bytes of a response at once.
//!
//! A server often cannot send the end of a response until the client acknowledges what it
//! sent before: its send window is full (over loopback, a 64 KiB body and its head are a
//! little more than one segment and the first receive window), or it holds a short last
//! segment until the earlier ones are acknowledged. Linux delays an acknowledgement by up
//! to 40 ms when it sees one lone full segment and the reader's window did not grow much,
//! so such a response ends 40 ms late. Within a run of many files other transfers fill
//! that time, but the last ones of a run stall the whole download: `curl -Z` of 2,000 ×
//! 64 KiB files spends 40 of its 190 ms so.
//!
//! So once less than [`TAIL`] of a response is still to come, each delivery of body bytes
//! asks the kernel to acknowledge now (`TCP_QUICKACK`). Earlier in a long body the window
//! is wide open and acknowledgements flow anyway; asking there would only cost a system
//! call per delivery and double the acknowledgements on the wire.

use std::os::fd::{BorrowedFd, RawFd};

/// CURLINFO_ACTIVESOCKET (CURLINFO_SOCKET + 44), which curl-sys does not name.
const CURLINFO_ACTIVESOCKET: curl_sys::CURLINFO = 0x50_0000 + 44;

/// How near a response's end deliveries ask for prompt acknowledgements.
pub(crate) const TAIL: u64 = 1024 * 1024;

/// Whether a delivery that brought a response's file to `received` bytes, of `end` when the
/// body is complete, is near enough to the end to ask for prompt acknowledgements: some
/// bytes, but at most [`TAIL`], are still to come. An unknown end never is.
pub(crate) fn near_the_end(end: Option<u64>, received: u64) -> bool {
    end.is_some_and(|end| (1..=TAIL).contains(&end.saturating_sub(received)))
}

/// Has the kernel acknowledge what the connection of `easy` received so far, now, and the
/// next segments promptly too. Nothing happens for a handle without a socket (`file`).
pub(crate) fn acknowledge_now(easy: *mut curl_sys::CURL) {
    let Some(socket) = active_socket(easy) else {
        return;
    };
    // SAFETY: the socket is the one curl is reading this response from, inside one of its
    // callbacks for this handle: curl closes it only after the callback returns. It is
    // asked anew each time, because a redirect may have moved the transfer to another
    // connection since the last call.
    let socket = unsafe { BorrowedFd::borrow_raw(socket) };
    // A socket that is not TCP refuses it; that costs nothing but the ask.
    let _ = rustix::net::sockopt::set_tcp_quickack(socket, true);
}

/// The socket of the connection `easy` uses, if it has one.
fn active_socket(easy: *mut curl_sys::CURL) -> Option<RawFd> {
    if easy.is_null() {
        return None;
    }
    let mut socket: curl_sys::curl_socket_t = curl_sys::CURL_SOCKET_BAD;
    // SAFETY: `easy` is the live handle whose callback is running (the sink that holds it
    // lives inside that handle); CURLINFO_ACTIVESOCKET writes one curl_socket_t.
    let code = unsafe { curl_sys::curl_easy_getinfo(easy, CURLINFO_ACTIVESOCKET, &raw mut socket) };
    (code == curl_sys::CURLE_OK && socket != curl_sys::CURL_SOCKET_BAD).then_some(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_stretch_of_a_known_length_asks() {
        assert!(near_the_end(Some(65_536), 65_536 - 300));
        assert!(near_the_end(Some(65_536), 65_535));
        assert!(near_the_end(Some(10 * TAIL), 9 * TAIL));
        assert!(!near_the_end(Some(10 * TAIL), 9 * TAIL - 1));
        // Complete, overlong or of unknown length: nothing is awaited.
        assert!(!near_the_end(Some(65_536), 65_536));
        assert!(!near_the_end(Some(65_536), 70_000));
        assert!(!near_the_end(None, 1000));
    }

    #[test]
    fn a_handle_without_a_connection_is_left_alone() {
        acknowledge_now(std::ptr::null_mut());
        let easy = curl::easy::Easy::new();
        assert_eq!(active_socket(easy.raw()), None);
    }
}
