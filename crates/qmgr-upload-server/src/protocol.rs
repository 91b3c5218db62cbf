//! The wire vocabulary of the BITS upload protocol ([MC-BUP] §2.2): packet types, the
//! headers both sides use, Content-Range, and the error codes a server answers with.

use std::fmt;

use http::StatusCode;

/// The HTTP method of every packet.
pub const METHOD: &str = "BITS_POST";
/// The one protocol there is: "BITS 1.5 Upload Protocol" ([MC-BUP] §1.7.1).
pub const PROTOCOL_GUID: &str = "{7df0354d-249b-430f-820d-3d2a9bef4931}";

pub const PACKET_TYPE: &str = "bits-packet-type";
pub const SUPPORTED_PROTOCOLS: &str = "bits-supported-protocols";
pub const PROTOCOL: &str = "bits-protocol";
pub const SESSION_ID: &str = "bits-session-id";
pub const HOST_ID: &str = "bits-host-id";
pub const HOST_ID_FALLBACK_TIMEOUT: &str = "bits-host-id-fallback-timeout";
pub const RECEIVED_CONTENT_RANGE: &str = "bits-received-content-range";
pub const REPLY_URL: &str = "bits-reply-url";
pub const ERROR_CODE: &str = "bits-error-code";
pub const ERROR_CONTEXT: &str = "bits-error-context";

/// The longest header value a server must take ([MC-BUP] §2.2.1: 4 KB on Windows).
pub const MAX_HEADER_VALUE_BYTES: usize = 4096;
/// How many protocol GUIDs a Create-Session may offer (Windows' server takes 100).
pub const MAX_OFFERED_PROTOCOLS: usize = 100;

/// The request packets ([MC-BUP] §2.2.1.2). Clients spell them in different cases
/// (`Create-Session`, `CREATE-SESSION`): they are compared without case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packet {
    Ping,
    CreateSession,
    Fragment,
    CloseSession,
    CancelSession,
}

impl Packet {
    pub fn parse(value: &str) -> Option<Packet> {
        let value = value.trim();
        [
            ("ping", Packet::Ping),
            ("create-session", Packet::CreateSession),
            ("fragment", Packet::Fragment),
            ("close-session", Packet::CloseSession),
            ("cancel-session", Packet::CancelSession),
        ]
        .into_iter()
        .find_map(|(name, packet)| value.eq_ignore_ascii_case(name).then_some(packet))
    }
}

impl fmt::Display for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Packet::Ping => "Ping",
            Packet::CreateSession => "Create-Session",
            Packet::Fragment => "Fragment",
            Packet::CloseSession => "Close-Session",
            Packet::CancelSession => "Cancel-Session",
        })
    }
}

/// Whether a Create-Session's `BITS-Supported-Protocols` (GUIDs separated by spaces or
/// commas, [MC-BUP] §2.2.2.2) offers the one protocol this server speaks. `None` when the
/// list is longer than [`MAX_OFFERED_PROTOCOLS`].
pub fn offers_protocol(supported: &str) -> Option<bool> {
    let offered: Vec<&str> = supported
        .split([' ', ',', '\t'])
        .filter(|guid| !guid.is_empty())
        .collect();
    if offered.len() > MAX_OFFERED_PROTOCOLS {
        return None;
    }
    let bare = |guid: &str| {
        guid.trim_start_matches('{')
            .trim_end_matches('}')
            .to_owned()
    };
    let ours = bare(PROTOCOL_GUID);
    Some(
        offered
            .iter()
            .any(|guid| bare(guid).eq_ignore_ascii_case(&ours)),
    )
}

/// A Fragment's `Content-Range: bytes FIRST-LAST/TOTAL` (zero-based, inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRange {
    pub first: u64,
    pub last: u64,
    pub total: u64,
}

impl ContentRange {
    /// Parses the header strictly: the unit in any case, decimal numbers, `first <= last <
    /// total`. Anything else is `None` (a 400 for the client).
    pub fn parse(value: &str) -> Option<ContentRange> {
        let value = value.trim();
        let (unit, rest) = value.split_once(char::is_whitespace)?;
        if !unit.eq_ignore_ascii_case("bytes") {
            return None;
        }
        let (span, total) = rest.trim_start().split_once('/')?;
        let (first, last) = span.split_once('-')?;
        let number = |text: &str| -> Option<u64> {
            let text = text.trim();
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            text.parse().ok()
        };
        let range = ContentRange {
            first: number(first)?,
            last: number(last)?,
            total: number(total)?,
        };
        (range.first <= range.last && range.last < range.total).then_some(range)
    }

    /// The bytes the fragment carries (never zero: a range names at least one byte).
    pub fn length(self) -> u64 {
        self.last - self.first + 1
    }
}

/// The HRESULTs a BITS server sends in `BITS-Error-Code` ([MC-BUP] §2.2.1.2).
pub mod code {
    pub const E_INVALIDARG: u32 = 0x8007_0057;
    pub const E_ACCESSDENIED: u32 = 0x8007_0005;
    pub const E_FAIL: u32 = 0x8000_4005;
    /// HRESULT_FROM_WIN32(ERROR_FILE_EXISTS): the destination exists and may not be replaced.
    pub const FILE_EXISTS: u32 = 0x8007_0050;
    /// HRESULT_FROM_WIN32(ERROR_DISK_FULL).
    pub const DISK_FULL: u32 = 0x8007_0070;
    /// HRESULT_FROM_WIN32(ERROR_TOO_MANY_SESS): the session limits are reached.
    pub const TOO_MANY_SESSIONS: u32 = 0x8007_0045;
    pub const BG_E_SESSION_NOT_FOUND: u32 = 0x8020_001F;
    pub const BG_E_TOO_LARGE: u32 = 0x8020_0020;
    /// A gap: the fragment starts beyond what the server holds (416).
    pub const NONE: u32 = 0;
}

/// `BITS-Error-Context` values: where the error happened.
pub mod context {
    /// In the BITS server itself (= BG_ERROR_CONTEXT_REMOTE_FILE).
    pub const REMOTE_FILE: u32 = 0x5;
    /// In the server application that produces replies (= BG_ERROR_CONTEXT_REMOTE_APPLICATION).
    pub const REMOTE_APPLICATION: u32 = 0x7;
}

/// A packet the server refuses: the status and, where the status alone does not say
/// enough, the BITS error pair. `why` goes to the log, never to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: Option<u32>,
    pub context: u32,
    pub why: String,
}

impl Refusal {
    pub fn new(status: StatusCode, code: u32, why: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code: Some(code),
            context: context::REMOTE_FILE,
            why: why.into(),
        }
    }

    /// A refusal that carries no BITS error (404, 405, 413).
    pub fn status_only(status: StatusCode, why: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code: None,
            context: context::REMOTE_FILE,
            why: why.into(),
        }
    }

    pub fn bad_request(why: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, code::E_INVALIDARG, why)
    }

    pub fn session_not_found(id: &str) -> Refusal {
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::BG_E_SESSION_NOT_FOUND,
            format!("no session {id:?}"),
        )
    }

    pub fn access_denied(why: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::FORBIDDEN, code::E_ACCESSDENIED, why)
    }
}

/// `0x8020001F`: how BITS-Error-Code values are written.
pub fn hex(value: u32) -> String {
    format!("0x{value:08X}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_types_are_compared_without_case() {
        assert_eq!(Packet::parse("Create-Session"), Some(Packet::CreateSession));
        assert_eq!(Packet::parse("CREATE-SESSION"), Some(Packet::CreateSession));
        assert_eq!(Packet::parse(" fragment "), Some(Packet::Fragment));
        assert_eq!(Packet::parse("Ack"), None);
        assert_eq!(Packet::parse("Create Session"), None);
    }

    #[test]
    fn content_ranges_parse_strictly() {
        assert_eq!(
            ContentRange::parse("bytes 0-4891/4892"),
            Some(ContentRange {
                first: 0,
                last: 4891,
                total: 4892
            })
        );
        assert_eq!(
            ContentRange::parse("Bytes 128-212/1000").map(ContentRange::length),
            Some(85)
        );
        for bad in [
            "bytes 5-4/10",
            "bytes 0-10/10",
            "bytes -1-4/10",
            "bytes 0-4/",
            "bits 0-4/10",
            "bytes 0-4/*",
            "bytes 0x0-4/10",
            "bytes 0-4",
            "",
        ] {
            assert_eq!(ContentRange::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_protocol_is_found_in_any_separator_and_case() {
        assert_eq!(offers_protocol(PROTOCOL_GUID), Some(true));
        assert_eq!(
            offers_protocol(
                "{11111111-2222-3333-4444-555555555555}, {7DF0354D-249B-430F-820D-3D2A9BEF4931}"
            ),
            Some(true)
        );
        assert_eq!(
            offers_protocol("{11111111-2222-3333-4444-555555555555}"),
            Some(false)
        );
        assert_eq!(offers_protocol(""), Some(false));
        let many = vec![PROTOCOL_GUID; MAX_OFFERED_PROTOCOLS + 1].join(" ");
        assert_eq!(offers_protocol(&many), None);
    }
}
