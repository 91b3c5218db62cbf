//! The fault-injecting HTTP test server.
//!
//! [`TestServer::start`] serves deterministic files on 127.0.0.1 and misbehaves on
//! request, so transfer, daemon, CLI and C tests can provoke every failure a real server
//! can produce. [`TestServer::start_https`] serves the same over TLS, with a certificate
//! signed by a CA made up at start ([`TestServer::ca_pem`]);
//! [`TestServer::start_https_with_client_auth`] also requires a client certificate signed
//! by that CA ([`TestServer::client_certificate`]);
//! [`TestServer::start_https_with_defect`] serves a certificate with one
//! [`CertificateDefect`] (expired, for another host, from an unknown CA, or for client
//! authentication only). The binary `qmgr-testserver` runs the same server for C tests and
//! benchmarks.
//!
//! # URLs
//!
//! `/data/<size>[/anything]` is a file of `<size>` bytes (`k`/`K` = KiB and `m`/`M` = MiB
//! suffixes allowed). Its bytes are [`content`]`(path, version, ..)`, where `path` is the
//! URL path without the query, so extra segments (`/data/1m/a`, `/data/1m/b`) name
//! different files. Every path starts at [`INITIAL_VERSION`]. Responses carry a strong
//! `ETag` (`"<hash>-<size>-v<version>"`), `Last-Modified`, `Accept-Ranges: bytes` and
//! `Content-Length`. GET and HEAD are served, with single byte ranges (206), `If-Range`
//! by ETag or date (200 with the whole file when it names another version) and 416 for
//! ranges past the end; multiple ranges get the whole file. Other paths answer 404.
//!
//! Query parameters inject faults and combine freely (values percent-decoded; see
//! [`encode_query_value`]):
//!
//! | parameter | effect |
//! |---|---|
//! | `status=N` | answer N with a short text instead of the file (on any path) |
//! | `retry_after=S` | add `Retry-After: S` to that answer |
//! | `fail_first=K` | only the first K requests to the path fail (with `status`, default 503) |
//! | `drop_after=N` | close the connection after N body bytes of this response |
//! | `drop_once=1` | only the first response on the path that `drop_after` cuts is cut |
//! | `rate=B` | send the body at about B bytes per second |
//! | `ignore_range=1` | ignore Range and If-Range: always 200 with the whole file |
//! | `no_length=1` | no Content-Length: the body ends when the connection closes |
//! | `chunked=1` | `Transfer-Encoding: chunked` |
//! | `change_after=K` | from the path's (K+1)-th request on, its version is one higher |
//! | `resize=N` | `/data/` files of versions after the first are N bytes longer (negative: shorter) |
//! | `length_lie=N` | Content-Length says N bytes more (negative: fewer) than the body sent; the connection then closes |
//! | `redirect=N` | 302 to the same URL with `redirect=N-1`, then the file at 0 |
//! | `location=URL` | 302 to URL |
//! | `delay_ms=N` | wait N ms before the response head |
//! | `lie206=etag` | answer every Range request 206, ignoring If-Range, with the current version's bytes, ETag and Last-Modified |
//! | `lie206=date` | the same, and no ETag on any answer of the path: Last-Modified is the only validator |
//! | `lie206=start` | like `etag`, but the Content-Range and the body start at half the requested offset |
//! | `lie206=total` | like `etag`, but the Content-Range names a total 1000 bytes larger than the file |
//! | `lie206=weak` | like `etag`, but the 206 carries `ETag: W/<the If-Range value>` and no Last-Modified |
//! | `auth=basic` / `auth=digest` / `auth=any` / `auth=ntlm` | 401 with `WWW-Authenticate` (Basic, Digest MD5 qop=auth, both, or NTLM: the challenge answers a negotiate message on the same connection, and only an NTLMv2 answer passes) unless the request authenticates as `user=NAME` with `password=SECRET` (defaults [`auth::DEFAULT_USER`], [`auth::DEFAULT_PASSWORD`]) |
//! | `any_method=1` | serve the file whatever the method (otherwise only GET and HEAD; others 405) |
//! | `require_header=Name:value` | 403 unless the request carries that header with that value |
//! | `proxy_auth=basic` / `digest` / `any` | the same demanded as a proxy does: 407 with `Proxy-Authenticate` unless `Proxy-Authorization` proves the credentials (for clients using this server as their proxy; absolute-form request targets are served) |
//!
//! Unknown parameters are ignored; a malformed value of a known one answers 400 naming
//! it. Request counts (for `fail_first`, `change_after`) are per path, query ignored, and
//! include every request, HEAD too.
//!
//! `BITS_POST` to any path is a BITS upload, with faults of its own (see the `upload`
//! module). The reply of an upload-reply upload is served like a file at any path ending
//! in `/bits-replies/<session>/reply.bin`; [`expected_reply`] predicts its bytes.

pub mod auth;
mod connection;
mod content;
mod exchange;
pub mod fuzz;
mod http_date;
mod ntlm;
pub mod qmgrd;
mod range;
mod request;
mod response;
pub mod results;
mod route;
mod server;
mod state;
mod tls;
mod upload;
pub mod users;

pub use content::{INITIAL_VERSION, content, expected_body};
pub use request::RecordedRequest;
pub use route::encode_query_value;
pub use server::TestServer;
pub use tls::{CertificateDefect, ClientIdentity};
pub use upload::expected_reply;
