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
    error_log: PathBuf,
}

impl Nginx {
    /// Serves `root` over HTTP/1.1 on 127.0.0.1; configuration, pid file, logs and temp
    /// directories go into `work_dir`. nginx runs in the foreground (`daemon off`) as
    /// this process's child.
    pub fn start(root: &Path, work_dir: &Path) -> Result<Nginx> {
        fs::create_dir_all(work_dir)
            .with_context(|| format!("cannot create {}", work_dir.display()))?;
        let port = free_port()?;
        let config_path = work_dir.join("nginx.conf");
        let error_log = work_dir.join("error.log");
        fs::write(&config_path, config(root, work_dir, port))
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

fn config(root: &Path, work_dir: &Path, port: u16) -> String {
    let work = work_dir.display();
    let root = root.display();
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
    }}
}}
"
    )
}
