//! A deliberately small HTTP/1.1 client over std's TcpStream, so the server's wire
//! behaviour (framing, early EOF, keep-alive) is observed directly.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use qmgr_tests::TestServer;

/// Long enough for any test response; short enough that a hang fails the test.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The connection ended before the framing said the body was complete.
    pub ended_early: bool,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

pub struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    pub fn open(server: &TestServer) -> Connection {
        let socket = TcpStream::connect(("127.0.0.1", server.port()))
            .expect("connecting to the test server");
        socket
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("setting a read timeout");
        Connection {
            reader: BufReader::new(socket),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.reader
            .get_mut()
            .write_all(bytes)
            .expect("sending a request");
    }

    pub fn send(&mut self, method: &str, target: &str, headers: &[(&str, &str)]) {
        let mut request = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (name, value) in headers {
            writeln!(request, "{name}: {value}\r").expect("formatting into a String");
        }
        request.push_str("\r\n");
        self.send_raw(request.as_bytes());
    }

    /// Reads one response to a request made with `method`.
    pub fn receive(&mut self, method: &str) -> Response {
        let status_line = self.line().expect("a status line");
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(
            parts.next(),
            Some("HTTP/1.1"),
            "status line {status_line:?}"
        );
        let status = parts
            .next()
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let line = self.line().expect("a header line");
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("a colon in a header line");
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
            ended_early: false,
        };
        if method == "HEAD" || status == 204 || status == 304 {
            return response;
        }
        if response
            .header("transfer-encoding")
            .is_some_and(|coding| coding.eq_ignore_ascii_case("chunked"))
        {
            response.ended_early = !self.read_chunked(&mut response.body);
        } else if let Some(length) = response.header("content-length") {
            let length: u64 = length.parse().expect("a numeric Content-Length");
            (&mut self.reader)
                .take(length)
                .read_to_end(&mut response.body)
                .expect("reading the body");
            response.ended_early = (response.body.len() as u64) < length;
        } else {
            self.reader
                .read_to_end(&mut response.body)
                .expect("reading the body");
        }
        response
    }

    /// Whether the server has closed the connection (the next read sees end of stream).
    pub fn closed_by_server(&mut self) -> bool {
        match self.reader.fill_buf() {
            Ok(buffered) => buffered.is_empty(),
            Err(error) => error.kind() == ErrorKind::ConnectionReset,
        }
    }

    /// Reads up to `len` bytes of whatever comes next (used to stop mid-body).
    pub fn read_some(&mut self, len: usize) -> Vec<u8> {
        let mut bytes = vec![0; len];
        self.reader
            .read_exact(&mut bytes)
            .expect("reading part of a body");
        bytes
    }

    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
        }
    }

    /// Decodes a chunked body into `body`; false if the stream ended first.
    fn read_chunked(&mut self, body: &mut Vec<u8>) -> bool {
        loop {
            let Some(size_line) = self.line() else {
                return false;
            };
            let size =
                u64::from_str_radix(size_line.split(';').next().unwrap_or_default().trim(), 16)
                    .unwrap_or_else(|_| panic!("bad chunk size line {size_line:?}"));
            if size == 0 {
                // Trailer fields, then the empty line.
                loop {
                    match self.line() {
                        None => return false,
                        Some(line) if line.is_empty() => return true,
                        Some(_) => {}
                    }
                }
            }
            let before = body.len();
            if (&mut self.reader).take(size).read_to_end(body).is_err()
                || ((body.len() - before) as u64) < size
            {
                return false;
            }
            if self.line().is_none_or(|line| !line.is_empty()) {
                return false;
            }
        }
    }
}

/// One request on a fresh connection.
pub fn request(
    server: &TestServer,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Response {
    let mut connection = Connection::open(server);
    connection.send(method, target, headers);
    connection.receive(method)
}

pub fn get(server: &TestServer, target: &str) -> Response {
    request(server, "GET", target, &[])
}
