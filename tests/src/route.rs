//! The route language: which file a path names and which faults its query asks for.

use crate::auth::{DEFAULT_PASSWORD, DEFAULT_USER, Demand, Expected};

/// The size of the file named by `/data/<size>[/anything]`, or `None` for any other path.
/// Sizes are bytes, optionally with a `k`/`K` (KiB) or `m`/`M` (MiB) suffix.
pub(crate) fn data_file_size(path: &str) -> Option<u64> {
    let rest = path.strip_prefix("/data/")?;
    let size_text = rest.split('/').next().unwrap_or_default();
    let (digits, unit) = match size_text.as_bytes().last()? {
        b'k' | b'K' => (&size_text[..size_text.len() - 1], 1024),
        b'm' | b'M' => (&size_text[..size_text.len() - 1], 1024 * 1024),
        _ => (size_text, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(unit)
}

/// The faults a request's query asks for. Unknown parameters are ignored, so clients may
/// add their own (cache busters, markers for telling requests apart).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Faults {
    /// `status=N`: answer N instead of the content.
    pub(crate) status: Option<u16>,
    /// `retry_after=S`: a Retry-After value for injected failures.
    pub(crate) retry_after: Option<String>,
    /// `fail_first=K`: only the first K requests to the path fail.
    pub(crate) fail_first: Option<u64>,
    /// `fail_after=K`: the first K requests to the path succeed, every later one fails
    /// (a file that vanishes while a client resumes it).
    pub(crate) fail_after: Option<u64>,
    /// `drop_after=N`: close the connection after N body bytes of this response.
    pub(crate) drop_after: Option<u64>,
    /// `drop_once=1`: only the first response on the path that gets cut is cut.
    pub(crate) drop_once: bool,
    /// `length_lie=N`: Content-Length says N bytes more (or, negative, fewer) than the
    /// body that is sent; the connection closes after it.
    pub(crate) length_lie: Option<i64>,
    /// `resize=N`: versions after the first are N bytes longer (or, negative, shorter).
    pub(crate) resize: Option<i64>,
    /// `rate=B`: pace the body at about B bytes per second.
    pub(crate) rate: Option<u64>,
    /// `ignore_range=1`: always 200 with the whole body.
    pub(crate) ignore_range: bool,
    /// `no_length=1`: no Content-Length; the end of the body is the end of the connection.
    pub(crate) no_length: bool,
    /// `chunked=1`: Transfer-Encoding: chunked.
    pub(crate) chunked: bool,
    /// `change_after=K`: the path's version goes up by one after its K-th request.
    pub(crate) change_after: Option<u64>,
    /// `redirect=N`: N hops of 302 to the same URL before the content.
    pub(crate) redirect: Option<u32>,
    /// `location=URL`: 302 to this (percent-decoded) URL.
    pub(crate) location: Option<String>,
    /// `delay_ms=N`: wait before sending the response head.
    pub(crate) delay_ms: Option<u64>,
    /// `lie206=…`: answer a Range request with 206 whatever If-Range says, lying this way.
    pub(crate) lie206: Option<Lie206>,
    /// `any_method=1`: serve the file whatever the request method (POST, PUT, …).
    pub(crate) any_method: bool,
    /// `require_header=Name:value`: 403 unless the request carries that header with that
    /// value (a client's custom headers seen from a program that cannot read the log).
    pub(crate) require_header: Option<(String, String)>,
    /// `auth=basic|digest|any` (with `user=`, `password=`): 401 without those credentials.
    pub(crate) auth: Option<Expected>,
    /// `proxy_auth=basic|digest|any`: the same credentials demanded the way a proxy does
    /// (407, `Proxy-Authenticate`, `Proxy-Authorization`), for clients that use this server
    /// as their proxy.
    pub(crate) proxy_auth: Option<Expected>,
}

/// How a `lie206` server misanswers a range request. Every lie ignores If-Range and sends
/// the requested bytes of the path's current version with status 206.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lie206 {
    /// The current version's ETag and Last-Modified, as they are (a server that simply
    /// ignores If-Range: after a change, another ETag).
    Etag,
    /// No ETag on any answer of the path (Last-Modified only), so the date is the only
    /// validator; the 206 carries the current version's date.
    Date,
    /// The Content-Range (and the body) start at half the requested offset.
    Start,
    /// The Content-Range names a total 1000 bytes larger than the file.
    Total,
    /// The 206 carries a weak ETag made of the If-Range value (`W/` + it) and no
    /// Last-Modified: a tag weakly equal to the one the client holds.
    Weak,
}

impl Faults {
    /// Parses a raw (percent-encoded) query; the error names the offending parameter.
    pub(crate) fn parse(query: &str) -> Result<Faults, String> {
        let mut faults = Faults::default();
        let (mut demand, mut proxy_demand, mut user, mut password) = (None, None, None, None);
        for (name, raw_value) in query_pairs(query) {
            let value = percent_decode(raw_value)
                .ok_or_else(|| format!("query parameter {name}: bad percent-encoding"))?;
            match name {
                "status" => faults.status = Some(parse_status(&value)?),
                "retry_after" => faults.retry_after = Some(value),
                "fail_first" => faults.fail_first = Some(parse_number(name, &value)?),
                "fail_after" => faults.fail_after = Some(parse_number(name, &value)?),
                "drop_after" => faults.drop_after = Some(parse_number(name, &value)?),
                "drop_once" => faults.drop_once = parse_flag(name, &value)?,
                "length_lie" => faults.length_lie = Some(parse_number(name, &value)?),
                "resize" => faults.resize = Some(parse_number(name, &value)?),
                "rate" => {
                    let rate = parse_number(name, &value)?;
                    if rate == 0 {
                        return Err(
                            "query parameter rate: must be at least 1 byte per second".into()
                        );
                    }
                    faults.rate = Some(rate);
                }
                "ignore_range" => faults.ignore_range = parse_flag(name, &value)?,
                "no_length" => faults.no_length = parse_flag(name, &value)?,
                "chunked" => faults.chunked = parse_flag(name, &value)?,
                "change_after" => faults.change_after = Some(parse_number(name, &value)?),
                "redirect" => faults.redirect = Some(parse_number(name, &value)?),
                "location" => faults.location = Some(value),
                "delay_ms" => faults.delay_ms = Some(parse_number(name, &value)?),
                "lie206" => {
                    faults.lie206 = Some(match value.as_str() {
                        "etag" => Lie206::Etag,
                        "date" => Lie206::Date,
                        "start" => Lie206::Start,
                        "total" => Lie206::Total,
                        "weak" => Lie206::Weak,
                        _ => {
                            return Err(format!(
                                "query parameter lie206: {value:?} is not etag, date, start, total or weak"
                            ));
                        }
                    });
                }
                "auth" => demand = Some(parse_demand(name, &value)?),
                "proxy_auth" => proxy_demand = Some(parse_demand(name, &value)?),
                "any_method" => faults.any_method = parse_flag(name, &value)?,
                "require_header" => {
                    let (header, wanted) = value.split_once(':').ok_or_else(|| {
                        format!("query parameter {name}: {value:?} is not Name:value")
                    })?;
                    faults.require_header =
                        Some((header.trim().to_owned(), wanted.trim().to_owned()));
                }
                "user" => user = Some(value),
                "password" => password = Some(value),
                _ => {}
            }
        }
        let user = user.unwrap_or_else(|| DEFAULT_USER.to_owned());
        let password = password.unwrap_or_else(|| DEFAULT_PASSWORD.to_owned());
        let expect = |demand| Expected {
            demand,
            user: user.clone(),
            password: password.clone(),
        };
        faults.auth = demand.map(expect);
        faults.proxy_auth = proxy_demand.map(expect);
        if faults.no_length && faults.chunked {
            return Err("query parameters no_length and chunked exclude each other".into());
        }
        Ok(faults)
    }

    /// The status of an injected failure for the `request_number`-th request to the path
    /// (counting from 1), or `None` when this request should succeed.
    pub(crate) fn injected_status(&self, request_number: u64) -> Option<u16> {
        if let Some(succeeding) = self.fail_after {
            return (request_number > succeeding).then(|| self.status.unwrap_or(503));
        }
        match (self.status, self.fail_first) {
            (_, Some(failing)) if request_number > failing => None,
            (status, Some(_)) => Some(status.unwrap_or(503)),
            (status, None) => status,
        }
    }
}

fn parse_demand(name: &str, value: &str) -> Result<Demand, String> {
    match value {
        "basic" => Ok(Demand::Basic),
        "digest" => Ok(Demand::Digest),
        "any" => Ok(Demand::Any),
        "ntlm" => Ok(Demand::Ntlm),
        _ => Err(format!(
            "query parameter {name}: {value:?} is not basic, digest, any or ntlm"
        )),
    }
}

/// `query` with the `redirect` parameter replaced by `redirect=hops`; the other
/// parameters keep their order and encoding.
pub(crate) fn with_redirect_hops(query: &str, hops: u32) -> String {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            if pair.split('=').next() == Some("redirect") {
                format!("redirect={hops}")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so that any text
/// (a whole URL for `location=`, say) can be a query parameter value.
pub fn encode_query_value(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            const HEX_DIGITS: &[u8; 16] = b"0123456789ABCDEF";
            encoded.push('%');
            encoded.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
            encoded.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
        }
    }
    encoded
}

fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// Decodes `%XX` escapes (`+` stays a plus: values here are URLs and numbers, not forms).
fn percent_decode(raw: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut rest = raw.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

fn parse_number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("query parameter {name}: {value:?} is not a valid number"))
}

fn parse_status(value: &str) -> Result<u16, String> {
    let status = parse_number("status", value)?;
    if (200..=599).contains(&status) {
        Ok(status)
    } else {
        Err(format!(
            "query parameter status: {status} is not a final status (200-599)"
        ))
    }
}

fn parse_flag(name: &str, value: &str) -> Result<bool, String> {
    match value {
        "1" | "true" | "" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(format!("query parameter {name}: {value:?} is not 0/1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_sizes_accept_suffixes_and_extra_segments() {
        assert_eq!(data_file_size("/data/0"), Some(0));
        assert_eq!(data_file_size("/data/123"), Some(123));
        assert_eq!(data_file_size("/data/64k"), Some(65_536));
        assert_eq!(data_file_size("/data/2K/x"), Some(2048));
        assert_eq!(data_file_size("/data/200m"), Some(200 * 1_048_576));
        assert_eq!(data_file_size("/data/1M/a/b"), Some(1_048_576));
    }

    #[test]
    fn other_paths_are_not_data_files() {
        for path in [
            "/",
            "/data",
            "/data/",
            "/data/k",
            "/data/12kb",
            "/data/-1",
            "/data/1.5m",
            "/other/10",
            "/data/99999999999999999999m",
        ] {
            assert_eq!(data_file_size(path), None, "{path}");
        }
    }

    #[test]
    fn parses_combined_faults() {
        let faults = Faults::parse(
            "status=500&retry_after=7&fail_first=2&drop_after=10&drop_once=1&rate=100&ignore_range=1\
             &no_length=1&change_after=3&redirect=2&location=http%3A%2F%2Fx%2Fy%3Fa%3D1&delay_ms=5&cachebuster=9\
             &length_lie=-1000&resize=250",
        )
        .expect("valid query");
        assert_eq!(
            faults,
            Faults {
                status: Some(500),
                retry_after: Some("7".into()),
                fail_first: Some(2),
                fail_after: None,
                drop_after: Some(10),
                drop_once: true,
                length_lie: Some(-1000),
                resize: Some(250),
                rate: Some(100),
                ignore_range: true,
                no_length: true,
                chunked: false,
                change_after: Some(3),
                redirect: Some(2),
                location: Some("http://x/y?a=1".into()),
                delay_ms: Some(5),
                lie206: None,
                auth: None,
                proxy_auth: None,
                any_method: false,
                require_header: None,
            }
        );
        let protected = Faults::parse("auth=digest&user=u%3Ax&password=p").unwrap();
        assert_eq!(
            protected.auth,
            Some(Expected {
                demand: Demand::Digest,
                user: "u:x".into(),
                password: "p".into()
            })
        );
        assert_eq!(
            Faults::parse("auth=any").unwrap().auth.map(|a| a.user),
            Some(DEFAULT_USER.to_owned())
        );
        assert!(Faults::parse("auth=kerberos").unwrap_err().contains("auth"));
    }

    #[test]
    fn rejects_bad_values_naming_the_parameter() {
        for (query, name) in [
            ("rate=fast", "rate"),
            ("rate=0", "rate"),
            ("status=99", "status"),
            ("chunked=maybe", "chunked"),
            ("location=%zz", "location"),
            ("drop_after=-1", "drop_after"),
            ("lie206=maybe", "lie206"),
        ] {
            let error = Faults::parse(query).expect_err(query);
            assert!(error.contains(name), "{query}: {error}");
        }
        assert!(Faults::parse("chunked=1&no_length=1").is_err());
    }

    #[test]
    fn fail_after_lets_the_first_requests_through() {
        let later = Faults::parse("status=404&fail_after=1").expect("valid");
        assert_eq!(later.injected_status(1), None);
        assert_eq!(later.injected_status(2), Some(404));
        assert_eq!(later.injected_status(3), Some(404));
    }

    #[test]
    fn fail_first_limits_injected_failures() {
        let always = Faults::parse("status=404").expect("valid");
        assert_eq!(always.injected_status(100), Some(404));
        let first_two = Faults::parse("fail_first=2").expect("valid");
        assert_eq!(
            (1..=3)
                .map(|n| first_two.injected_status(n))
                .collect::<Vec<_>>(),
            [Some(503), Some(503), None]
        );
        assert_eq!(Faults::parse("").expect("valid").injected_status(1), None);
    }

    #[test]
    fn redirect_hops_are_rewritten_in_place() {
        assert_eq!(
            with_redirect_hops("a=1&redirect=3&b=%20", 2),
            "a=1&redirect=2&b=%20"
        );
    }

    #[test]
    fn encoded_values_decode_back() {
        let url = "https://host:8/p?x=1&y=a b+c";
        let encoded = encode_query_value(url);
        assert!(!encoded.contains(['&', '?', '=', ' ']), "{encoded}");
        assert_eq!(percent_decode(&encoded).as_deref(), Some(url));
    }
}
