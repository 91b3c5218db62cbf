//! The server handle, the accept loop and connection threads.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::connection::serve_connection;
use crate::request::RecordedRequest;
use crate::state::Shared;
use crate::tls::{CertificateDefect, CertificateIssuer, ClientIdentity, TlsIdentity};

/// A fault-injecting HTTP/1.1 server on 127.0.0.1 (plain or over TLS), serving until
/// dropped.
///
/// See the crate documentation for the URLs it answers.
pub struct TestServer {
    shared: Arc<Shared>,
    port: u16,
    acceptor: Option<JoinHandle<()>>,
    /// The PEM of the CA that signed the server certificate, for HTTPS servers.
    ca_pem: Option<String>,
    /// The CA that signed the server certificate, for HTTPS servers.
    issuer: Option<CertificateIssuer>,
}

impl fmt::Debug for TestServer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TestServer")
            .field("base_url", &self.shared.base_url())
            .finish_non_exhaustive()
    }
}

/// 127.0.0.1 with a port the system picks.
fn any_local_port() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

impl TestServer {
    /// Starts a server on a free port of 127.0.0.1.
    ///
    /// # Panics
    /// If no port can be bound (tests cannot run without one).
    pub fn start() -> TestServer {
        TestServer::start_on_port(0)
            .unwrap_or_else(|error| panic!("cannot start the test server on 127.0.0.1: {error}"))
    }

    /// Starts a server on 127.0.0.1:`port` (0 picks a free port).
    pub fn start_on_port(port: u16) -> io::Result<TestServer> {
        TestServer::launch(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), None)
    }

    /// Starts a plain HTTP server on `address`: another interface than loopback, for
    /// benchmarks across network namespaces.
    pub fn start_on(address: SocketAddr) -> io::Result<TestServer> {
        TestServer::launch(address, None)
    }

    /// Starts a plain HTTP server on a listener the caller made (and set options on, such
    /// as a congestion control its accepted connections inherit).
    pub fn start_on_listener(listener: TcpListener) -> io::Result<TestServer> {
        TestServer::serve(listener, None)
    }

    /// Starts an HTTPS server on a free port of 127.0.0.1, with a certificate for
    /// 127.0.0.1 and localhost signed by a CA made up for this server alone
    /// ([`TestServer::ca_pem`]).
    ///
    /// # Panics
    /// If no port can be bound or no certificate made.
    pub fn start_https() -> TestServer {
        TestServer::start_https_on_port(0).unwrap_or_else(|error| {
            panic!("cannot start the HTTPS test server on 127.0.0.1: {error}")
        })
    }

    /// Starts an HTTPS server on 127.0.0.1:`port` (0 picks a free port).
    pub fn start_https_on_port(port: u16) -> io::Result<TestServer> {
        TestServer::launch(
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            Some(TlsIdentity::generate(false)?),
        )
    }

    /// Starts an HTTPS server, as [`TestServer::start_https`], whose certificate has
    /// `defect` (and nothing else wrong with it); [`TestServer::ca_pem`] is still the CA a
    /// client would trust.
    ///
    /// # Panics
    /// If no port can be bound or no certificate made.
    pub fn start_https_with_defect(defect: CertificateDefect) -> TestServer {
        TlsIdentity::generate_with(false, Some(defect))
            .and_then(|identity| TestServer::launch(any_local_port(), Some(identity)))
            .unwrap_or_else(|error| {
                panic!("cannot start the HTTPS test server on 127.0.0.1: {error}")
            })
    }

    /// Starts an HTTPS server, as [`TestServer::start_https`], that completes a handshake
    /// only with clients presenting a certificate signed by its CA
    /// ([`TestServer::client_certificate`] makes one).
    ///
    /// # Panics
    /// If no port can be bound or no certificate made.
    pub fn start_https_with_client_auth() -> TestServer {
        TlsIdentity::generate(true)
            .and_then(|identity| TestServer::launch(any_local_port(), Some(identity)))
            .unwrap_or_else(|error| {
                panic!("cannot start the HTTPS test server on 127.0.0.1: {error}")
            })
    }

    /// A new client certificate with the subject `CN=<common_name>`, signed by this HTTPS
    /// server's CA.
    ///
    /// # Panics
    /// If the server speaks plain HTTP or no certificate can be made.
    pub fn client_certificate(&self, common_name: &str) -> ClientIdentity {
        self.issuer
            .as_ref()
            .expect("client_certificate() is only for HTTPS servers")
            .client_certificate(common_name)
            .unwrap_or_else(|error| panic!("cannot make a client certificate: {error}"))
    }

    fn launch(address: SocketAddr, tls: Option<TlsIdentity>) -> io::Result<TestServer> {
        TestServer::serve(TcpListener::bind(address)?, tls)
    }

    fn serve(listener: TcpListener, tls: Option<TlsIdentity>) -> io::Result<TestServer> {
        let bound = listener.local_addr()?;
        let port = bound.port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared::new(format!("{scheme}://{bound}")));
        let (tls_config, ca_pem, issuer) = match tls {
            Some(identity) => (
                Some(identity.config),
                Some(identity.ca_pem),
                Some(identity.issuer),
            ),
            None => (None, None, None),
        };
        let acceptor = thread::Builder::new()
            .name(format!("testserver-{port}"))
            .spawn({
                let shared = Arc::clone(&shared);
                move || accept_connections(&listener, &shared, tls_config.as_ref())
            })?;
        Ok(TestServer {
            shared,
            port,
            acceptor: Some(acceptor),
            ca_pem,
            issuer,
        })
    }

    /// The PEM certificate of the CA clients must trust to accept this HTTPS server.
    ///
    /// # Panics
    /// If the server speaks plain HTTP.
    pub fn ca_pem(&self) -> String {
        self.ca_pem
            .clone()
            .expect("ca_pem() is only for servers started with start_https()")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` (`https://` for HTTPS servers), without a trailing slash.
    pub fn base_url(&self) -> String {
        self.shared.base_url().to_owned()
    }

    /// The base URL followed by `path_and_query`, which must start with `/`.
    pub fn url(&self, path_and_query: &str) -> String {
        assert!(
            path_and_query.starts_with('/'),
            "a path must start with '/': {path_and_query:?}"
        );
        format!("{}{path_and_query}", self.shared.base_url())
    }

    /// Every request received since the start (or the last `reset_stats`), in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// File body bytes written for `path` (without query) over all its responses; error
    /// and redirect texts do not count.
    pub fn body_bytes_sent(&self, path: &str) -> u64 {
        self.shared.body_bytes_sent(path)
    }

    /// What a BITS upload to `path` published (its Close-Session after every byte).
    pub fn uploaded(&self, path: &str) -> Option<Vec<u8>> {
        self.shared.with_uploads(|uploads| uploads.published(path))
    }

    /// The BITS upload packets and the requests for upload replies, in arrival order:
    /// "Ping", "Create-Session", "Fragment", "Close-Session", "Cancel-Session" (another
    /// packet type as sent), and "GET reply" or "HEAD reply" for each request a reply
    /// answered. Requests for a reply whose session is gone are not in it (they get 404).
    pub fn upload_log(&self) -> Vec<String> {
        self.shared.with_uploads(|uploads| uploads.log())
    }

    /// The `Range` field (`None` without one) of every GET a reply answered, in arrival
    /// order.
    pub fn reply_gets(&self) -> Vec<Option<String>> {
        self.shared.with_uploads(|uploads| uploads.reply_gets())
    }

    /// Requests received for `path` (without query), whatever they were answered with.
    pub fn request_count(&self, path: &str) -> u64 {
        self.shared.request_count(path)
    }

    /// Forgets the recorded requests and the per-path counters, including those that
    /// `fail_first`, `change_after` and `drop_once` count by, and the upload log and reply
    /// GETs. Content versions, upload sessions and published uploads stay.
    pub fn reset_stats(&self) {
        self.shared.reset_stats();
        self.shared.with_uploads(crate::upload::Uploads::forget_log);
    }

    /// Serves `version` of `path` from now on: other bytes, ETag and Last-Modified.
    pub fn set_version(&self, path: &str, version: u32) {
        self.shared.set_version(path, version);
    }

    /// The version of `path` being served now.
    pub fn version(&self, path: &str) -> u32 {
        self.shared.version(path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.begin_shutdown();
        // The acceptor is blocked in accept(); a connection of our own wakes it up to see
        // the flag. If even that fails the thread is left behind rather than waited for.
        let woken = TcpStream::connect_timeout(
            &(Ipv4Addr::LOCALHOST, self.port).into(),
            Duration::from_secs(5),
        )
        .is_ok();
        if let Some(acceptor) = self.acceptor.take().filter(|_| woken) {
            // A panic in the acceptor has already been reported; dropping must not panic.
            let _ = acceptor.join();
        }
    }
}

fn accept_connections(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    tls_config: Option<&Arc<ServerConfig>>,
) {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    for incoming in listener.incoming() {
        if shared.is_shutting_down() {
            break;
        }
        workers.retain(|worker| !worker.is_finished());
        let Ok(socket) = incoming else {
            // Usually out of file descriptors: give connections time to finish.
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        if let Some(worker) = start_worker(socket, shared, tls_config) {
            workers.push(worker);
        }
    }
    shared.shut_down_connections();
    for worker in workers {
        // Workers do not panic on client behaviour; if one did, it was reported already.
        let _ = worker.join();
    }
}

/// Starts the thread serving `socket`; `None` if the connection had to be dropped.
fn start_worker(
    socket: TcpStream,
    shared: &Arc<Shared>,
    tls_config: Option<&Arc<ServerConfig>>,
) -> Option<JoinHandle<()>> {
    // Responses are written whole; waiting to coalesce small writes only adds latency.
    socket.set_nodelay(true).ok()?;
    let id = shared.register_connection(socket.try_clone().ok()?);
    let worker_shared = Arc::clone(shared);
    let tls_config = tls_config.map(Arc::clone);
    let spawned = thread::Builder::new()
        .name(format!("testserver-conn-{id}"))
        .spawn(move || {
            match tls_config {
                None => serve_connection(&worker_shared, socket),
                // The TLS handshake itself happens on the first read.
                Some(config) => match ServerConnection::new(config) {
                    Ok(session) => {
                        serve_connection(&worker_shared, StreamOwned::new(session, socket));
                    }
                    Err(_) => drop(socket),
                },
            }
            worker_shared.unregister_connection(id);
        });
    if spawned.is_err() {
        shared.unregister_connection(id);
    }
    spawned.ok()
}
