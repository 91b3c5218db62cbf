//! The wire between clients and qmgrd: length-prefixed postcard frames over a Unix
//! socket in the user's runtime directory.
//!
//! - [`client::Client`] implements [`qmgr_core::service::QueueService`] over the socket,
//!   starting qmgrd on demand ([`spawn`]) when asked to.
//! - [`server`] is what qmgrd runs: [`server::bind_listener`], [`server::accept_loop`],
//!   and [`server::ConnectionHandler`], which qmgrd implements.
//! - [`frame`] and [`message`] are the format both sides share.
//!
//! A connection starts with a handshake: the client's `Hello` names the protocol version
//! and whether the connection carries calls or notifications; the service checks the
//! peer's uid (`SO_PEERCRED`: the service's own uid or root) and the version, and answers
//! `Welcome` or `Refused`. Root in another user's qmgrd has the rights of
//! [`administrator`]; [`users`] is root's way to every user's running qmgrd.

#![forbid(unsafe_code)]

pub mod administrator;
pub mod client;
pub mod frame;
pub mod message;
mod runtime_dir;
pub mod server;
mod socket;
pub mod spawn;
pub mod subscription;
pub mod users;

pub use client::Client;
pub use runtime_dir::MAX_SOCKET_PATH_BYTES;
pub use server::{
    AcceptLoop, ConnectionError, ConnectionHandler, DEFAULT_MAX_CONNECTIONS, Peer, ServerControl,
    accept_loop, accept_loop_capped, bind_listener, serve_connection, serve_connection_with,
};
pub use spawn::Launcher;
pub use subscription::{Publisher, Subscription};
