//! A BITS upload server for Linux: the server side of the BITS upload protocol
//! ([MC-BUP]), which Windows' BITS, PowerShell's `Start-BitsTransfer -TransferType
//! Upload`, `bitsadmin /upload` and qmgr speak.
//!
//! Uploads go into configured locations (a URL prefix mapped onto a directory), into a
//! hidden partial file beside their destination, and are published atomically (synced,
//! then renamed) on Close-Session. Sessions outlive a restart of the server. See the
//! README's "Upload server" section for the configuration.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let config = qmgr_upload_server::Config::load("/etc/qmgr-upload-server.toml".as_ref())?;
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! let server = qmgr_upload_server::UploadServer::new(config)?;
//! qmgr_upload_server::serve(server, listener, std::future::pending()).await
//! # }
//! ```

pub mod access;
pub mod background;
pub mod config;
pub mod names;
pub mod protocol;
pub mod reply;
pub mod server;
pub mod session;
pub mod writer;

pub use background::Background;
pub use config::{Config, Location, Overwrite};
pub use server::{UploadServer, serve};
