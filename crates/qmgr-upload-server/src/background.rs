//! The server on a thread of its own, for programs that are not async themselves (and for
//! tests): [`Background::start`] binds the configured address and serves until
//! [`Background::stop`] or drop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};

use crate::{Config, UploadServer, serve};

/// A server running on its own thread and runtime.
#[derive(Debug)]
pub struct Background {
    address: SocketAddr,
    server: Arc<UploadServer>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Starts serving `config` (its `listen` port may be 0: [`Background::address`] says
    /// which one was taken).
    pub fn start(config: Config) -> Result<Background> {
        // As in the server's own binary: the network on the one thread.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the runtime")?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(config.listen))
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let address = listener.local_addr()?;
        let server = UploadServer::new(config)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = server.clone();
        let thread = std::thread::Builder::new()
            .name("qmgr-upload-server".into())
            .spawn(move || {
                let served = runtime.block_on(serve(serving, listener, async {
                    let _ = stopped.await;
                }));
                if let Err(error) = served {
                    tracing::error!("the upload server stopped: {error:#}");
                }
            })
            .context("cannot start the server thread")?;
        Ok(Background {
            address,
            server,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn server(&self) -> &Arc<UploadServer> {
        &self.server
    }

    /// Stops accepting and waits for the server's thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.shutdown();
    }
}
