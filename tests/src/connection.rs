//! One client connection: requests in a loop until either side closes.

use std::io::{self, BufReader, Read};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use crate::exchange::answer;
use crate::request::{ReadError, RequestBody, discard_body, read_request_head};
use crate::response::{After, send_text};
use crate::state::Shared;

/// How long a closing connection keeps draining what the client still sends.
const LINGER: Duration = Duration::from_secs(1);
/// Most bytes drained from a closing connection.
const LINGER_LIMIT: u64 = 1024 * 1024;

/// Serves requests on `socket` until the client leaves, a response ends the connection,
/// or the server shuts down; then closes it.
pub(crate) fn serve_connection(shared: &Shared, socket: &TcpStream) {
    match exchange_requests(shared, socket) {
        After::KeepOpen | After::Close => close_gracefully(socket),
        After::Abort => {
            // The socket may already be gone with the peer.
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

fn exchange_requests(shared: &Shared, socket: &TcpStream) -> After {
    let mut reader = BufReader::new(socket);
    loop {
        let head = match read_request_head(&mut reader) {
            Ok(head) => head,
            Err(ReadError::Disconnected) => return After::Abort,
            Err(ReadError::Malformed(reason)) => {
                let mut writer = socket;
                return send_text(&mut writer, 400, &reason, &[], false, false)
                    .unwrap_or(After::Abort);
            }
        };
        let request_number = shared.record(&head.request);
        let keep_alive = match head.body {
            RequestBody::Length(0) => head.keep_alive,
            RequestBody::Length(len) => match discard_body(&mut reader, len) {
                Ok(()) => head.keep_alive,
                Err(_) => return After::Abort,
            },
            RequestBody::Unframed => false,
        };
        let mut writer = socket;
        match answer(
            shared,
            &mut writer,
            &head.request,
            request_number,
            keep_alive,
        ) {
            Ok(After::KeepOpen) if !shared.is_shutting_down() => {}
            Ok(After::KeepOpen | After::Close) => return After::Close,
            Ok(After::Abort) | Err(_) => return After::Abort,
        }
    }
}

/// Sends FIN, then reads what the client still sends for a moment: closing a socket with
/// unread input makes the kernel answer with RST, which can destroy the response the
/// client has not read yet.
fn close_gracefully(socket: &TcpStream) {
    if socket.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let drained: io::Result<u64> = socket
        .set_read_timeout(Some(LINGER))
        .and_then(|()| io::copy(&mut socket.take(LINGER_LIMIT), &mut io::sink()));
    // Whatever the drain ended with, the socket is closed next.
    drop(drained);
}
