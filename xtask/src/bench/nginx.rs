//! A private nginx serving one directory on a free loopback port, with a minimal
//! configuration of its own (none of the system's sites), stopped when dropped.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::bench::run::send_signal;

const START_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Nginx {
    child: Child,
    port: u16,
    tls_port: Option<u16>,
    error_log: PathBuf,
}

/// A TLS server block passing `/up/` to an upload server on `upstream_port`.
#[derive(Debug)]
pub struct TlsProxy {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub upstream_port: u16,
}

impl TlsProxy {
    fn server(&self, port: u16) -> String {
        format!(
            "    server {{\n        listen 127.0.0.1:{port} ssl;\n        ssl_certificate {};\n        \
             ssl_certificate_key {};\n        location /up/ {{\n            proxy_pass \
             http://127.0.0.1:{};\n            proxy_http_version 1.1;\n            \
             proxy_request_buffering off;\n            client_max_body_size 0;\n        }}\n    }}\n",
            self.certificate.display(),
            self.key.display(),
            self.upstream_port
        )
    }
}

impl Nginx {
    /// Serves `root` over HTTP/1.1 on 127.0.0.1; configuration, pid file, logs and temp
    /// directories go into `work_dir`. nginx runs in the foreground (`daemon off`) as
    /// this process's child.
    pub fn start(root: &Path, work_dir: &Path) -> Result<Nginx> {
        Nginx::start_with(root, work_dir, None, None)
    }

    /// As [`Nginx::start`], and takes HTTP PUT under `/put/` into `put_dir` (the WebDAV
    /// module's PUT: the peer of an upload benchmark); with `tls`, it also listens with TLS
    /// on a port of its own and passes `/up/` to an upload server there (the README's
    /// reverse-proxy configuration).
    pub fn start_with_put(
        root: &Path,
        work_dir: &Path,
        put_dir: &Path,
        tls: Option<&TlsProxy>,
    ) -> Result<Nginx> {
        Nginx::start_with(root, work_dir, Some(put_dir), tls)
    }

    /// The URL of `path` on the TLS port (see [`Nginx::start_with_put`]).
    pub fn tls_url(&self, path: &str) -> Option<String> {
        self.tls_port
            .map(|port| format!("https://127.0.0.1:{port}/{}", path.trim_start_matches('/')))
    }

    /// The pid of nginx's master process (its one worker is a child of it).
    pub fn master_pid(&self) -> u32 {
        self.child.id()
    }

    fn start_with(
        root: &Path,
        work_dir: &Path,
        put_dir: Option<&Path>,
        tls: Option<&TlsProxy>,
    ) -> Result<Nginx> {
        fs::create_dir_all(work_dir)
            .with_context(|| format!("cannot create {}", work_dir.display()))?;
        let port = free_port()?;
        let config_path = work_dir.join("nginx.conf");
        let error_log = work_dir.join("error.log");
        let tls_port = tls.map(|_| free_port()).transpose()?;
        let proxy = tls
            .zip(tls_port)
            .map_or_else(String::new, |(tls, port)| tls.server(port));
        fs::write(&config_path, config(root, work_dir, port, put_dir, &proxy))
            .with_context(|| format!("cannot write {}", config_path.display()))?;
        let child = Command::new("nginx")
            .arg("-p")
            .arg(work_dir)
            .arg("-c")
            .arg(&config_path)
            // Errors before the configuration is read go here too, not to /var/log.
            .arg("-e")
            .arg(&error_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start nginx")?;
        let mut nginx = Nginx {
            child,
            port,
            tls_port,
            error_log,
        };
        nginx.wait_until_serving()?;
        Ok(nginx)
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    fn wait_until_serving(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait().context("waiting for nginx")? {
                bail!("nginx exited at start ({status}):\n{}", self.log());
            }
            if Instant::now() > deadline {
                bail!(
                    "nginx did not listen on port {} within {START_TIMEOUT:?}:\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.error_log).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SIGTERM is nginx's fast shutdown: the master stops its workers and exits.
        let _ = send_signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("nginx did not stop within {STOP_TIMEOUT:?}; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now (the kernel picks it; nginx binds it a moment later).
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

fn config(root: &Path, work_dir: &Path, port: u16, put_dir: Option<&Path>, proxy: &str) -> String {
    let work = work_dir.display();
    let root = root.display();
    // PUT bodies are written to client_body_temp_path and renamed into place: both on the
    // same tmpfs.
    let put = put_dir.map_or_else(String::new, |dir| {
        format!(
            "        location /put/ {{\n            alias {}/;\n            dav_methods PUT;\n            \
             create_full_put_path on;\n            client_max_body_size 0;\n            \
             client_body_buffer_size 1m;\n        }}\n",
            dir.display()
        )
    });
    // One worker: the machine's other core belongs to the client being measured.
    format!(
        "\
daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    default_type application/octet-stream;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
{put}    }}
{proxy}}}
"
    )
}
