//! Which remote names the engine accepts and how they become curl URLs.
//!
//! The scheme is checked here, before any I/O, rather than left to curl: curl knows many
//! more protocols than BITS allows, and a clear `E_INVALIDARG` naming the URL is better than
//! a transport error later.

use std::ffi::OsStr;
use std::fmt::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use qmgr_core::QmgrError;

/// The protocols a transfer may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
    Ftp,
    Ftps,
    File,
}

impl Scheme {
    const ALL: [Scheme; 5] = [
        Scheme::Http,
        Scheme::Https,
        Scheme::Ftp,
        Scheme::Ftps,
        Scheme::File,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Ftp => "ftp",
            Scheme::Ftps => "ftps",
            Scheme::File => "file",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|scheme| scheme.as_str().eq_ignore_ascii_case(name))
    }

    /// The port a URL of this scheme means when it names none; `None` for `file`.
    fn default_port(self) -> Option<u16> {
        match self {
            Scheme::Http => Some(80),
            Scheme::Https => Some(443),
            Scheme::Ftp => Some(21),
            Scheme::Ftps => Some(990),
            Scheme::File => None,
        }
    }

    pub(crate) fn is_http(self) -> bool {
        matches!(self, Scheme::Http | Scheme::Https)
    }

    pub(crate) fn is_ftp(self) -> bool {
        matches!(self, Scheme::Ftp | Scheme::Ftps)
    }

    /// The protocols curl may use for this transfer, redirects included, in the syntax of
    /// `CURLOPT_PROTOCOLS_STR`. Redirects stay within the family of the original scheme: an
    /// http URL may move to https, an https URL only to https unless a downgrade is allowed.
    pub(crate) fn allowed_protocols(self, allow_https_to_http: bool) -> &'static str {
        match self {
            Scheme::Http => "http,https",
            Scheme::Https if allow_https_to_http => "http,https",
            Scheme::Https => "https",
            Scheme::Ftp => "ftp",
            Scheme::Ftps => "ftps",
            Scheme::File => "file",
        }
    }
}

/// A remote name checked and turned into the URL handed to curl.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Source {
    pub url: String,
    pub scheme: Scheme,
    /// For `file` sources: the local path, percent-decoded.
    pub local_path: Option<PathBuf>,
}

/// Checks a remote name and builds its curl URL. An absolute local path is accepted as a
/// `file` source, as BITS accepts `C:\dir\file`.
pub(crate) fn parse_source(remote: &str) -> Result<Source, QmgrError> {
    if remote.is_empty() {
        return Err(QmgrError::invalid_arg("the remote name is empty"));
    }
    if remote.starts_with('/') {
        if remote.contains('\0') {
            return Err(QmgrError::invalid_arg(format!(
                "the path {remote:?} contains a NUL character"
            )));
        }
        let path = PathBuf::from(remote);
        return Ok(Source {
            url: format!("file://{}", percent_encode_path(remote.as_bytes())),
            scheme: Scheme::File,
            local_path: Some(path),
        });
    }
    if let Some(bad) = remote.chars().find(|c| c.is_control() || *c == ' ') {
        return Err(QmgrError::invalid_arg(format!(
            "the URL {remote:?} contains the character {bad:?}, which a URL may not hold unencoded"
        )));
    }
    let Some((scheme_name, rest)) = remote.split_once("://") else {
        return Err(QmgrError::invalid_arg(format!(
            "{remote:?} is not a URL (scheme://…) nor an absolute path"
        )));
    };
    if !is_scheme_syntax(scheme_name) {
        return Err(QmgrError::invalid_arg(format!(
            "{remote:?} does not start with a valid URL scheme"
        )));
    }
    let Some(scheme) = Scheme::from_name(scheme_name) else {
        return Err(QmgrError::invalid_arg(format!(
            "the scheme {scheme_name:?} of {remote:?} is not supported; use http, https, ftp, ftps or file"
        )));
    };
    let url = format!("{}://{rest}", scheme.as_str());
    if scheme == Scheme::File {
        let local_path = file_url_path(rest).map_err(|why| {
            QmgrError::invalid_arg(format!("{remote:?} is not a usable file URL: {why}"))
        })?;
        return Ok(Source {
            url,
            scheme,
            local_path: Some(local_path),
        });
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(QmgrError::invalid_arg(format!("{remote:?} names no host")));
    }
    Ok(Source {
        url,
        scheme,
        local_path: None,
    })
}

/// The origin of a URL — scheme, host and port — as curl compares them before sending
/// credentials to a redirect target. `None` when the URL cannot be read with certainty
/// (no scheme, an unknown one, a bad port, an encoded host): callers treat that as a
/// different origin.
fn origin(url: &str) -> Option<(Scheme, String, u16)> {
    let (scheme_name, rest) = url.split_once("://")?;
    let scheme = Scheme::from_name(scheme_name)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_and_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (host, port) = if let Some(bracketed) = host_and_port.strip_prefix('[') {
        let (address, after) = bracketed.split_once(']')?;
        (address, after.strip_prefix(':'))
    } else {
        match host_and_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_and_port, None),
        }
    };
    if host.is_empty() || host.contains('%') {
        return None;
    }
    let port = match port {
        None | Some("") => scheme.default_port()?,
        Some(digits) => digits.parse().ok()?,
    };
    Some((scheme, host.to_ascii_lowercase(), port))
}

/// Whether two URLs share scheme, host and port. Hosts are compared as written:
/// `127.0.0.1` and `localhost` are different hosts, as they are to curl.
pub fn same_origin(first: &str, second: &str) -> bool {
    origin(first).is_some_and(|first| origin(second) == Some(first))
}

fn is_scheme_syntax(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The local path of a `file://` URL (the part after `file://`): an empty host or
/// `localhost`, then an absolute path.
fn file_url_path(after_scheme: &str) -> Result<PathBuf, String> {
    let path_start = after_scheme
        .find('/')
        .ok_or_else(|| "it has no path".to_owned())?;
    let host = &after_scheme[..path_start];
    if !host.is_empty() && !host.eq_ignore_ascii_case("localhost") {
        return Err(format!(
            "the host {host:?} is not this machine; mount the share and use file:///path"
        ));
    }
    let encoded = after_scheme[path_start..]
        .split(['?', '#'])
        .next()
        .unwrap_or_default();
    let bytes = percent_decode(encoded)?;
    if bytes.contains(&0) {
        return Err("the path contains a NUL byte".to_owned());
    }
    Ok(Path::new(OsStr::from_bytes(&bytes)).to_path_buf())
}

/// Encodes every byte of a path except the unreserved characters and `/`.
fn percent_encode_path(path: &[u8]) -> String {
    let mut encoded = String::with_capacity(path.len());
    for &byte in path {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

fn percent_decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes
                .get(index + 1..index + 3)
                .and_then(|pair| std::str::from_utf8(pair).ok())
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("bad percent escape at byte {index}"))?;
            decoded.push(hex);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmgr_core::hresult::E_INVALIDARG;

    fn refused(remote: &str) -> QmgrError {
        parse_source(remote).expect_err(remote)
    }

    #[test]
    fn the_five_schemes_are_accepted_in_any_case() {
        for (remote, scheme) in [
            ("http://example.com/a", Scheme::Http),
            ("HTTPS://example.com/a", Scheme::Https),
            ("ftp://user@example.com/pub/a", Scheme::Ftp),
            ("ftps://example.com:990/a", Scheme::Ftps),
            ("File:///tmp/a", Scheme::File),
        ] {
            let source = parse_source(remote).unwrap();
            assert_eq!(source.scheme, scheme, "{remote}");
            assert!(source.url.starts_with(scheme.as_str()), "{}", source.url);
        }
    }

    #[test]
    fn other_schemes_and_malformed_names_are_invalid_arguments() {
        for remote in [
            "gopher://example.com/",
            "scp://host/file",
            "dict://x/",
            "example.com/file",
            "relative/path",
            "",
            "http://",
            "http:///path",
            "http://:80/path",
            "http://exa mple.com/",
            "http://example.com/a\r\nX-Evil: 1",
            "1http://example.com/",
            "file://otherhost/etc/passwd",
            "file://",
            "file:///bad%zzescape",
        ] {
            let error = refused(remote);
            assert_eq!(error.hresult, E_INVALIDARG, "{remote}");
            assert!(!error.description.is_empty());
        }
        assert!(refused("gopher://x/").description.contains("gopher"));
    }

    #[test]
    fn an_absolute_path_becomes_an_encoded_file_url() {
        let source = parse_source("/data/my ré#1.bin").unwrap();
        assert_eq!(source.scheme, Scheme::File);
        assert_eq!(source.url, "file:///data/my%20r%C3%A9%231.bin");
        assert_eq!(source.local_path.unwrap(), Path::new("/data/my ré#1.bin"));
        assert_eq!(refused("/data/a\0b").hresult, E_INVALIDARG);
    }

    #[test]
    fn file_urls_decode_to_local_paths() {
        let source = parse_source("file://localhost/tmp/a%20b").unwrap();
        assert_eq!(source.local_path.unwrap(), Path::new("/tmp/a b"));
        let source = parse_source("file:///tmp/x?query").unwrap();
        assert_eq!(source.local_path.unwrap(), Path::new("/tmp/x"));
    }

    #[test]
    fn origins_differ_by_scheme_host_or_port() {
        for (first, second) in [
            ("http://h/a", "http://h:80/b?x"),
            ("https://H.example/a", "https://h.example:443/"),
            ("http://user:pw@h:8080/a", "http://h:8080"),
            ("http://[::1]:81/a", "http://[::1]:81/b"),
        ] {
            assert!(same_origin(first, second), "{first} vs {second}");
        }
        for (first, second) in [
            ("http://h/a", "https://h/a"),
            ("http://h/a", "http://h:81/a"),
            ("http://127.0.0.1:80/", "http://localhost:80/"),
            ("http://h/a", "http://h.evil/a"),
            ("http://h:80@evil/a", "http://h/a"),
            ("http://[::1]/", "http://[::2]/"),
            ("http://h/", "not a url"),
            ("http://h:99999/", "http://h:99999/"),
            ("http://h%2e/", "http://h%2e/"),
        ] {
            assert!(!same_origin(first, second), "{first} vs {second}");
        }
    }

    #[test]
    fn redirects_never_downgrade_https_unless_allowed() {
        assert_eq!(Scheme::Https.allowed_protocols(false), "https");
        assert_eq!(Scheme::Https.allowed_protocols(true), "http,https");
        assert_eq!(Scheme::Http.allowed_protocols(false), "http,https");
        assert_eq!(Scheme::File.allowed_protocols(true), "file");
    }
}
