//! The checks of remote names, custom headers and proxy settings, fuzzed across both places
//! they are made: qmgr-core's, which AddFile, SetRemoteName, SetCustomHeaders and
//! SetProxySettings apply when a client calls, and the engine's, which every transfer
//! applies. Nothing panics; refusals are
//! `E_INVALIDARG`; whatever a call accepts, the engine accepts too (else the job would
//! fail later, in ERROR, for something the call should have refused); an accepted path
//! comes back unchanged from the `file://` URL the engine makes of it; a header block
//! written back from its parsed lines parses the same.
//!
//! `QMGR_FUZZ_ITERATIONS_URLS`, `QMGR_FUZZ_ITERATIONS_HEADERS` and
//! `QMGR_FUZZ_ITERATIONS_PROXIES` set the number of cases;
//! see `qmgr_tests::fuzz` for the seed and replays.

use qmgr_core::file::validate_remote_name;
use qmgr_core::hresult;
use qmgr_core::job::{
    MAX_CUSTOM_HEADERS_CHARS, ProxySettings, ProxyUsage, check_length, parse_custom_headers,
};
use qmgr_tests::fuzz::{Campaign, Rng, mutate};

use crate::request::{ProxyChoice, TransferRequest, check};
use crate::source::{parse_source, same_origin};

const SCHEMES: &[&str] = &[
    "http", "https", "HTTP", "hTtPs", "ftp", "ftps", "file", "FILE", "gopher", "h ttp", "",
    "1http", "http+x", "ht\ttp",
];
const AUTHORITIES: &[&str] = &[
    "example.com",
    "example.com:8080",
    "user:pass@example.com",
    "user@",
    "@",
    ":80",
    "[::1]:443",
    "[::1",
    "localhost",
    "LOCALHOST",
    "127.0.0.1:0",
    "h",
    "ex ample.com",
    "exämple.com",
    "",
    "%41",
];
const PATHS: &[&str] = &[
    "",
    "/",
    "/a",
    "/a/b.iso",
    "/a b",
    "/%20",
    "/%zz",
    "/%",
    "/%00",
    "/%2F..%2F",
    "/ü/€",
    "/a?x=1&y=%20",
    "/a#frag",
    "?q",
    "#f",
    "/a\\b",
    "//double",
    "/\u{7f}",
    "/\u{85}",
    "/\u{2028}",
];
const LOCAL_PATHS: &[&str] = &[
    "/tmp/file",
    "/",
    "/a b/c",
    "/ü/€/x",
    "/%41",
    "/a?b#c",
    "/..",
    "//net/share",
    "/\\x",
];

fn remote_name(rng: &mut Rng) -> String {
    let mut name = match rng.below(4) {
        0 => (*rng.pick(LOCAL_PATHS)).to_owned(),
        _ => format!(
            "{}://{}{}",
            rng.pick(SCHEMES),
            rng.pick(AUTHORITIES),
            rng.pick(PATHS)
        ),
    };
    if rng.one_in(3) {
        let mut bytes = name.into_bytes();
        let donor = rng.pick(PATHS).as_bytes();
        mutate(rng, &mut bytes, donor);
        name = String::from_utf8_lossy(&bytes).into_owned();
    }
    name
}

fn check_remote_name(name: &str) -> Result<(), String> {
    let api = validate_remote_name(name);
    let engine = parse_source(name);
    for error in [api.as_ref().err(), engine.as_ref().err()]
        .into_iter()
        .flatten()
    {
        if error.hresult != hresult::E_INVALIDARG {
            return Err(format!("refused with {:?}: {error}", error.hresult));
        }
    }
    // Whatever a call accepts, a transfer accepts.
    if api.is_ok() {
        let request = TransferRequest::new(name, "/tmp/destination");
        if let Err(error) = check(request) {
            return Err(format!(
                "AddFile accepts it, the engine refuses it: {error}"
            ));
        }
    }
    if let Ok(source) = &engine {
        // The URL the engine hands curl reads back as the same source.
        let again = parse_source(&source.url)
            .map_err(|error| format!("its URL {:?} is refused: {error}", source.url))?;
        if again.local_path != source.local_path || again.scheme != source.scheme {
            return Err(format!(
                "its URL {:?} reads back as {again:?}, not {source:?}",
                source.url
            ));
        }
        if name.starts_with('/') && source.local_path.as_deref() != Some(std::path::Path::new(name))
        {
            return Err(format!("the path came back as {:?}", source.local_path));
        }
        // An origin is its own.
        let _ = same_origin(&source.url, name);
    }
    Ok(())
}

const HEADER_NAMES: &[&str] = &[
    "X-Token",
    "Accept",
    "x",
    "Authorization",
    "X A",
    "X:A",
    "",
    " ",
    "X-Ü",
    "Range",
    "if-range",
    "Host",
    "X\tTab",
    "(comment)",
    "!#$%&'*+-.^_`|~",
];
const HEADER_VALUES: &[&str] = &[
    "",
    "abc",
    " spaced ",
    "a: b",
    "bytes=0-",
    "€uro",
    "\0",
    "a\rb",
    "a\nb",
    "tab\there",
    "Bearer abc.def.ghi",
];

fn header_block(rng: &mut Rng) -> String {
    let lines: Vec<String> = (0..rng.length(6))
        .map(|_| match rng.below(10) {
            0 => (*rng.pick(HEADER_VALUES)).to_owned(),
            _ => format!("{}:{}", rng.pick(HEADER_NAMES), rng.pick(HEADER_VALUES)),
        })
        .collect();
    let separator = *rng.pick(&["\r\n", "\r\n", "\r\n", "\n", "\r", "\r\n\r\n"]);
    let mut block = lines.join(separator);
    if rng.one_in(4) {
        let mut bytes = block.into_bytes();
        mutate(rng, &mut bytes, b"X-Header: value\r\n");
        block = String::from_utf8_lossy(&bytes).into_owned();
    }
    block
}

fn check_header_block(block: &str) -> Result<(), String> {
    // SetCustomHeaders' checks (Job::set_custom_headers).
    let accepted = check_length(
        block,
        MAX_CUSTOM_HEADERS_CHARS,
        "custom header block",
        hresult::BG_E_STRING_TOO_LONG,
    )
    .and_then(|()| parse_custom_headers(block));
    let pairs = match accepted {
        Ok(pairs) => pairs,
        Err(error) if error.hresult == hresult::E_INVALIDARG => return Ok(()),
        Err(error) => return Err(format!("refused with {:?}: {error}", error.hresult)),
    };
    // The engine sends every header the call accepted.
    let mut request = TransferRequest::new("http://example.com/a", "/tmp/a");
    request.headers.clone_from(&pairs);
    if let Err(error) = check(request) {
        return Err(format!(
            "SetCustomHeaders accepts it, the engine refuses it: {error}"
        ));
    }
    // Written back from its lines, the block parses the same.
    let written: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    let again = parse_custom_headers(&written.join("\r\n"))
        .map_err(|error| format!("written back as {written:?}, refused: {error}"))?;
    if again != pairs {
        return Err(format!("{pairs:?} written back parsed as {again:?}"));
    }
    Ok(())
}

const PROXY_ENTRIES: &[&str] = &[
    "http://proxy.example:3128",
    "proxy.example:8080",
    "https://user:pw@p:443",
    "socks5://p:1080",
    "<local>",
    "*.example.com",
    "10.0.0.0/8",
    "",
    " ",
    ";",
    ",",
    "p\tq",
    "p\u{7f}",
    "p\r\nX-Injected: 1",
    "ü.example",
];

fn proxy_list(rng: &mut Rng) -> Option<String> {
    if rng.one_in(5) {
        return None;
    }
    let entries: Vec<&str> = (0..rng.length(4))
        .map(|_| *rng.pick(PROXY_ENTRIES))
        .collect();
    let mut list = entries.join(*rng.pick(&[" ", ";", ", ", "  "]));
    if rng.one_in(4) {
        let mut bytes = list.into_bytes();
        mutate(rng, &mut bytes, b"http://proxy:3128");
        list = String::from_utf8_lossy(&bytes).into_owned();
    }
    Some(list)
}

fn check_proxy(settings: &ProxySettings) -> Result<(), String> {
    match settings.validate() {
        Err(error) if error.hresult == hresult::E_INVALIDARG => return Ok(()),
        Err(error) => {
            // Only the lists' lengths have codes of their own.
            let lengths = [
                hresult::BG_E_PROXY_LIST_TOO_LARGE,
                hresult::BG_E_PROXY_BYPASS_LIST_TOO_LARGE,
            ];
            return if lengths.contains(&error.hresult) {
                Ok(())
            } else {
                Err(format!("refused with {:?}: {error}", error.hresult))
            };
        }
        Ok(()) => {}
    }
    if settings.usage != ProxyUsage::Override {
        return Ok(());
    }
    // What the service makes of accepted settings, the engine takes.
    let mut request = TransferRequest::new("http://example.com/a", "/tmp/a");
    request.proxy = ProxyChoice::Explicit {
        url: settings.first_proxy().unwrap_or_default().to_owned(),
        bypass: settings.bypass_hosts(),
    };
    match check(request) {
        Ok(_) => Ok(()),
        Err(error) => Err(format!(
            "SetProxySettings accepts it, the engine refuses it: {error}"
        )),
    }
}

#[test]
fn proxy_settings_a_call_accepts_are_ones_the_engine_takes() {
    Campaign::from_env("proxies", 20_000).run(|rng| {
        let usages = [
            ProxyUsage::Preconfig,
            ProxyUsage::NoProxy,
            ProxyUsage::Override,
            ProxyUsage::Override,
            ProxyUsage::Autodetect,
        ];
        let settings = ProxySettings {
            usage: *rng.pick(&usages),
            proxy_list: proxy_list(rng),
            bypass_list: proxy_list(rng),
        };
        check_proxy(&settings).map_err(|why| format!("{why}\n    settings: {settings:?}"))
    });
}

#[test]
fn remote_names_a_call_accepts_are_transferable_and_read_back_the_same() {
    Campaign::from_env("urls", 20_000).run(|rng| {
        let name = remote_name(rng);
        check_remote_name(&name).map_err(|why| format!("{why}\n    remote name: {name:?}"))
    });
}

#[test]
fn header_blocks_a_call_accepts_are_sent_and_read_back_the_same() {
    Campaign::from_env("headers", 20_000).run(|rng| {
        let block = header_block(rng);
        check_header_block(&block).map_err(|why| format!("{why}\n    block: {block:?}"))
    });
}

/// What the campaigns found, fixed: each of these was accepted by the call and refused by
/// the engine, so its job would have failed in ERROR at its first transfer.
#[test]
fn names_and_headers_the_engine_refuses_are_refused_by_the_call() {
    for name in [
        "HTTP://user@/a",
        "http://:80/a",
        "ftps://user:pw@:21/x",
        "ftp://example.com/a b",
        "file:///%zz",
        "file:///a%00b",
    ] {
        check_remote_name(name).unwrap_or_else(|why| panic!("{name:?}: {why}"));
        let error = validate_remote_name(name).unwrap_err();
        assert_eq!(error.hresult, hresult::E_INVALIDARG, "{name:?}");
    }
    for name in ["http://user@h/a", "file:///a%20b", "/a b"] {
        validate_remote_name(name).unwrap_or_else(|error| panic!("{name:?}: {error}"));
        check_remote_name(name).unwrap_or_else(|why| panic!("{name:?}: {why}"));
    }
    for block in [
        "X A: v",
        "X-Ü: v",
        "(comment):",
        "Range: bytes=0-",
        "if-range: x",
        "Host: example.com",
        "X-A: a\0b",
    ] {
        check_header_block(block).unwrap_or_else(|why| panic!("{block:?}: {why}"));
        let error = parse_custom_headers(block).unwrap_err();
        assert_eq!(error.hresult, hresult::E_INVALIDARG, "{block:?}");
    }
    // Several proxies, as Windows writes them, went to the engine as one URL; a control
    // character went through to it.
    for (list, bypass) in [
        ("http://a:1 http://b:2", None),
        ("http://a:1;http://b:2", Some("<local> *.example.com")),
        ("p\tq", None),
        ("http://a:1", Some("h\u{7f}")),
        (" ; ", None),
    ] {
        let settings = ProxySettings {
            usage: ProxyUsage::Override,
            proxy_list: Some(list.to_owned()),
            bypass_list: bypass.map(str::to_owned),
        };
        check_proxy(&settings).unwrap_or_else(|why| panic!("{settings:?}: {why}"));
    }
}
