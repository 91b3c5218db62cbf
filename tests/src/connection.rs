//! One client connection: requests in a loop until either side closes.

use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use rustls::{ServerConnection, StreamOwned};

use crate::exchange::answer;
use crate::request::{ReadError, RequestBody, discard_body, read_request_head};
use crate::response::{After, send_text};
use crate::state::Shared;

/// How long a closing connection keeps draining what the client still sends.
const LINGER: Duration = Duration::from_secs(1);
/// Most bytes drained from a closing connection.
const LINGER_LIMIT: u64 = 1024 * 1024;

/// A byte stream to a client: plain TCP, or TLS over TCP.
pub(crate) trait Transport: Read + Write {
    /// The TCP socket underneath, for closing.
    fn socket(&self) -> &TcpStream;

    /// Tells the client the session ends on purpose, so that it can tell a deliberate
    /// close from a cut connection (TLS close_notify). Plain TCP has nothing to say.
    fn announce_close(&mut self) {}
}

impl Transport for TcpStream {
    fn socket(&self) -> &TcpStream {
        self
    }
}

impl Transport for StreamOwned<ServerConnection, TcpStream> {
    fn socket(&self) -> &TcpStream {
        self.get_ref()
    }

    fn announce_close(&mut self) {
        self.conn.send_close_notify();
        // If the client is gone, there is nobody left to tell.
        let _ = self.flush();
    }
}

/// Serves requests on `transport` until the client leaves, a response ends the
/// connection, or the server shuts down; then closes it.
pub(crate) fn serve_connection(shared: &Shared, transport: impl Transport) {
    let mut reader = BufReader::new(transport);
    let after = exchange_requests(shared, &mut reader);
    let transport = reader.get_mut();
    match after {
        After::KeepOpen | After::Close => {
            transport.announce_close();
            close_gracefully(transport.socket());
        }
        After::Abort => {
            // The socket may already be gone with the peer.
            let _ = transport.socket().shutdown(Shutdown::Both);
        }
    }
}

fn exchange_requests(shared: &Shared, reader: &mut BufReader<impl Transport>) -> After {
    loop {
        let head = match read_request_head(reader) {
            Ok(head) => head,
            Err(ReadError::Disconnected) => return After::Abort,
            Err(ReadError::Malformed(reason)) => {
                return send_text(reader.get_mut(), 400, &reason, &[], false, false)
                    .unwrap_or(After::Abort);
            }
        };
        let request_number = shared.record(&head.request);
        if crate::upload::is_upload(&head.request) {
            let RequestBody::Length(length) = head.body else {
                return send_text(
                    reader.get_mut(),
                    411,
                    "a length is required",
                    &[],
                    false,
                    false,
                )
                .unwrap_or(After::Abort);
            };
            match crate::upload::answer(shared, reader, &head.request, length, head.keep_alive) {
                Ok(After::KeepOpen) if !shared.is_shutting_down() => continue,
                Ok(After::KeepOpen | After::Close) => return After::Close,
                Ok(After::Abort) | Err(_) => return After::Abort,
            }
        }
        let keep_alive = match head.body {
            RequestBody::Length(0) => head.keep_alive,
            RequestBody::Length(len) => match discard_body(reader, len) {
                Ok(()) => head.keep_alive,
                Err(_) => return After::Abort,
            },
            RequestBody::Unframed => false,
        };
        match answer(
            shared,
            reader.get_mut(),
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
