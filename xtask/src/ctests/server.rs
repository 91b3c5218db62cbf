//! The test server the C programs download from: `target/debug/qmgr-testserver`, which
//! prints its base URL first and stops when its stdin closes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{Context, Result, ensure};

#[derive(Debug)]
pub struct TestServer {
    child: Child,
    /// Held open: closing it tells the server to exit.
    stdin: Option<ChildStdin>,
    base_url: String,
}

impl TestServer {
    pub fn start(binary: &Path) -> Result<TestServer> {
        Self::start_with(binary, &[])
    }

    /// The server in https mode; the PEM of its CA is written to `ca_file`.
    pub fn start_https(binary: &Path, ca_file: &Path) -> Result<TestServer> {
        Self::start_with(
            binary,
            &[
                "--https".as_ref(),
                "--ca-file".as_ref(),
                ca_file.as_os_str(),
            ],
        )
    }

    fn start_with(binary: &Path, args: &[&std::ffi::OsStr]) -> Result<TestServer> {
        let mut child = Command::new(binary)
            .arg("--exit-on-stdin-eof")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .context("the test server has no stdout")?;
        let mut first_line = String::new();
        let read = BufReader::new(stdout).read_line(&mut first_line);
        let base_url = first_line.trim().to_owned();
        if read.is_err() || !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!(
                "{} printed {base_url:?} instead of its URL",
                binary.display()
            );
        }
        Ok(TestServer {
            child,
            stdin,
            base_url,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Closes the server's stdin and waits for it to exit.
    pub fn stop(mut self) -> Result<()> {
        drop(self.stdin.take());
        let status = self.child.wait().context("waiting for the test server")?;
        ensure!(status.success(), "the test server exited with {status}");
        Ok(())
    }
}

/// The body of `GET path` from the plain test server at `base_url` (`http://HOST:PORT`):
/// one request on a connection of its own, which the server closes after the answer. Only
/// a 200 with a `Content-Length` body is accepted, which is how the server sends files.
pub fn get(base_url: &str, path: &str) -> Result<Vec<u8>> {
    use std::io::{Read, Write};

    let authority = base_url
        .strip_prefix("http://")
        .with_context(|| format!("{base_url} is not a plain http URL"))?;
    let mut stream = std::net::TcpStream::connect(authority)
        .with_context(|| format!("cannot connect to {authority}"))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .with_context(|| format!("reading the answer to GET {path}"))?;
    let head_end = answer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .with_context(|| format!("the answer to GET {path} has no end of head"))?;
    let head = String::from_utf8_lossy(&answer[..head_end]).into_owned();
    let body = answer.split_off(head_end + 4);
    ensure!(
        head.starts_with("HTTP/1.1 200"),
        "GET {path}: {}",
        head.lines().next().unwrap_or("")
    );
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .with_context(|| format!("the answer to GET {path} has no Content-Length"))?;
    ensure!(
        body.len() == length,
        "GET {path}: {} bytes of a body of {length}",
        body.len()
    );
    Ok(body)
}
