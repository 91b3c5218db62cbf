//! HTTP authentication the server can demand (`auth=basic|digest|any`): a 401 with the
//! challenges unless the request carries the right `Authorization` — or, with
//! `proxy_auth=…`, a 407 unless it carries the right `Proxy-Authorization`. The expected
//! credentials are `user=`/`password=` of the query (default [`DEFAULT_USER`] and
//! [`DEFAULT_PASSWORD`]).

/// The user name the server expects when the query names none.
pub const DEFAULT_USER: &str = "bits-user";
/// The password the server expects when the query names none.
pub const DEFAULT_PASSWORD: &str = "s3cret pass";
use crate::ntlm;

/// The protection space of every challenge.
const REALM: &str = "qmgr-test";

/// Which schemes a protected path accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Demand {
    Basic,
    Digest,
    /// Either; both challenges are sent.
    Any,
    /// NTLM (NTLMv2 answers), the connection-bound handshake of two requests.
    Ntlm,
}

/// The credentials a protected path expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expected {
    pub(crate) demand: Demand,
    pub(crate) user: String,
    pub(crate) password: String,
}

impl Expected {
    /// `Ok` when `authorization` (the request's header, if any) proves the credentials for a
    /// request of `method` to `target` (path and query as sent); else the challenges of the
    /// 401 (or 407), made with `nonce` for Digest.
    pub(crate) fn verdict(
        &self,
        authorization: Option<&str>,
        method: &str,
        target: &str,
        nonce: &str,
    ) -> Result<(), Vec<String>> {
        if self.demand == Demand::Ntlm {
            return self.ntlm_verdict(authorization);
        }
        if self.accepts(authorization, method, target) {
            Ok(())
        } else {
            Err(self.challenges(nonce))
        }
    }

    /// NTLM: no header or a negotiate message gets the challenge; an authenticate message
    /// passes if it proves the password.
    fn ntlm_verdict(&self, authorization: Option<&str>) -> Result<(), Vec<String>> {
        let token = authorization
            .and_then(|value| value.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("ntlm"))
            .and_then(|(_, token)| base64_decode(token.trim()));
        match token.as_deref().and_then(ntlm::parse) {
            Some(ntlm::Message::Authenticate(message))
                if ntlm::verifies(&message, &self.user, &self.password) =>
            {
                Ok(())
            }
            Some(ntlm::Message::Negotiate) => {
                Err(vec![format!("NTLM {}", base64_encode(&ntlm::challenge()))])
            }
            _ => Err(vec!["NTLM".to_owned()]),
        }
    }

    /// Whether `authorization` proves the credentials with Basic or Digest.
    fn accepts(&self, authorization: Option<&str>, method: &str, target: &str) -> bool {
        let Some((scheme, rest)) = authorization.and_then(|value| value.trim().split_once(' '))
        else {
            return false;
        };
        let basic = matches!(self.demand, Demand::Basic | Demand::Any);
        let digest = matches!(self.demand, Demand::Digest | Demand::Any);
        if scheme.eq_ignore_ascii_case("basic") && basic {
            return base64_decode(rest.trim())
                .is_some_and(|pair| pair == format!("{}:{}", self.user, self.password).as_bytes());
        }
        if scheme.eq_ignore_ascii_case("digest") && digest {
            return self.digest_accepts(rest, method, target);
        }
        false
    }

    /// The `WWW-Authenticate` values of the 401.
    fn challenges(&self, nonce: &str) -> Vec<String> {
        let basic = format!("Basic realm=\"{REALM}\"");
        let digest = format!(
            "Digest realm=\"{REALM}\", qop=\"auth\", algorithm=MD5, nonce=\"{nonce}\", opaque=\"qmgr\""
        );
        match self.demand {
            Demand::Basic => vec![basic],
            Demand::Digest => vec![digest],
            Demand::Any => vec![digest, basic],
            Demand::Ntlm => vec!["NTLM".to_owned()],
        }
    }

    /// RFC 7616 with MD5 and qop=auth (and the RFC 2069 form without qop).
    fn digest_accepts(&self, parameters: &str, method: &str, target: &str) -> bool {
        let fields = digest_fields(parameters);
        let field = |name: &str| {
            fields
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.as_str())
        };
        let (Some(user), Some(realm), Some(nonce), Some(uri), Some(response)) = (
            field("username"),
            field("realm"),
            field("nonce"),
            field("uri"),
            field("response"),
        ) else {
            return false;
        };
        // Through a proxy the request target (and so the digest's uri) is the whole URL.
        let same_target = uri == target || (uri.contains("://") && uri.ends_with(target));
        if user != self.user || realm != REALM || !same_target {
            return false;
        }
        let ha1 = md5_hex(format!("{user}:{realm}:{}", self.password).as_bytes());
        let ha2 = md5_hex(format!("{method}:{uri}").as_bytes());
        let expected = match (field("qop"), field("nc"), field("cnonce")) {
            (Some(qop), Some(nc), Some(cnonce)) => {
                md5_hex(format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}").as_bytes())
            }
            _ => md5_hex(format!("{ha1}:{nonce}:{ha2}").as_bytes()),
        };
        expected.eq_ignore_ascii_case(response)
    }
}

/// `name=value` and `name="value"` pairs of a Digest header, in order.
fn digest_fields(text: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut rest = text.trim();
    while let Some((name, after)) = rest.split_once('=') {
        let name = name.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (
                quoted[..end].to_owned(),
                quoted.get(end + 1..).unwrap_or_default(),
            )
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        fields.push((name, value));
        rest = remainder.trim_start().trim_start_matches(',').trim_start();
    }
    fields
}

/// Standard base64 (with or without padding); `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value_of = |byte: u8| -> Option<u32> {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        Some(u32::from(value))
    };
    let digits = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for group in digits.chunks(4) {
        if group.len() == 1 {
            return None;
        }
        let mut bits = 0u32;
        for (position, byte) in group.iter().enumerate() {
            bits |= value_of(*byte)? << (18 - 6 * position);
        }
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..group.len()]);
    }
    Some(out)
}

/// Standard base64 with padding.
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let bits = group.iter().enumerate().fold(0u32, |bits, (i, byte)| {
            bits | u32::from(*byte) << (16 - 8 * i)
        });
        for position in 0..4 {
            if position <= group.len() {
                text.push(char::from(
                    ALPHABET[((bits >> (18 - 6 * position)) & 63) as usize],
                ));
            } else {
                text.push('=');
            }
        }
    }
    text
}

/// The MD5 digest of `data` in lower-case hex (RFC 1321; Digest authentication needs it).
pub(crate) fn md5_hex(data: &[u8]) -> String {
    use std::fmt::Write as _;

    md5(data).iter().fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "RFC 1321's constants are floor(|sin(i + 1)| * 2^32), which fit in 32 bits"
)]
pub(crate) fn md5(data: &[u8]) -> [u8; 16] {
    const SHIFTS: [u32; 16] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
    let constants: Vec<u32> = (0..64)
        .map(|i| (f64::from(i + 1).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    md_digest(data, |state, words| {
        let [mut a, mut b, mut c, mut d] = *state;
        for i in 0..64 {
            let (mixed, word) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let sum = mixed
                .wrapping_add(a)
                .wrapping_add(constants[i])
                .wrapping_add(words[word]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(sum.rotate_left(SHIFTS[(i / 16) * 4 + i % 4]));
        }
        [a, b, c, d]
    })
}

/// What MD4 and MD5 share (RFC 1320, RFC 1321): the padding to 64-byte blocks with the bit
/// length, the starting state, little-endian words, and adding each block's result to the
/// state. `compress` is the algorithm's own rounds over one block.
pub(crate) fn md_digest(
    data: &[u8],
    mut compress: impl FnMut(&[u32; 4], &[u32]) -> [u32; 4],
) -> [u8; 16] {
    let mut message = data.to_vec();
    let bit_length = (data.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_length.to_le_bytes());
    let mut state: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    for block in message.chunks(64) {
        let words: Vec<u32> = block
            .chunks(4)
            .map(|word| u32::from_le_bytes([word[0], word[1], word[2], word[3]]))
            .collect();
        let rounds = compress(&state, &words);
        for (held, new) in state.iter_mut().zip(rounds) {
            *held = held.wrapping_add(new);
        }
    }
    let mut digest = [0u8; 16];
    for (chunk, word) in digest.chunks_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    digest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_rfc_1321_test_vectors() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            md5_hex(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            ),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(base64_decode("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(base64_decode("Zm9vYg==").unwrap(), b"foob");
        assert_eq!(base64_decode("Zm9vYg").unwrap(), b"foob");
        assert_eq!(base64_decode("Zm9v!"), None);
        for text in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
            assert_eq!(base64_decode(&base64_encode(text)).unwrap(), text);
        }
        assert_eq!(base64_encode(b"foob"), "Zm9vYg==");
    }

    fn expected(demand: Demand) -> Expected {
        Expected {
            demand,
            user: "Mufasa".into(),
            password: "Circle Of Life".into(),
        }
    }

    #[test]
    fn basic_credentials_are_checked() {
        // "Mufasa:Circle Of Life"
        let good = "Basic TXVmYXNhOkNpcmNsZSBPZiBMaWZl";
        assert!(expected(Demand::Basic).accepts(Some(good), "GET", "/"));
        assert!(!expected(Demand::Digest).accepts(Some(good), "GET", "/"));
        assert!(!expected(Demand::Basic).accepts(Some("Basic TXVmYXNhOndyb25n"), "GET", "/"));
        assert!(!expected(Demand::Basic).accepts(None, "GET", "/"));
    }

    #[test]
    fn digest_answers_are_checked_as_rfc_2617_computes_them() {
        // The worked example of RFC 2617 section 3.5, with this server's realm.
        let nonce = "dcd98b7102dd2f0e8b11d0f600bfb0c093";
        let target = "/dir/index.html";
        let ha1 = md5_hex(format!("Mufasa:{REALM}:Circle Of Life").as_bytes());
        let ha2 = md5_hex(format!("GET:{target}").as_bytes());
        let response = md5_hex(format!("{ha1}:{nonce}:00000001:0a4f113b:auth:{ha2}").as_bytes());
        let header = format!(
            "Digest username=\"Mufasa\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{target}\", \
             qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"{response}\", opaque=\"qmgr\""
        );
        assert!(expected(Demand::Digest).accepts(Some(&header), "GET", target));
        assert!(expected(Demand::Any).accepts(Some(&header), "GET", target));
        assert!(!expected(Demand::Basic).accepts(Some(&header), "GET", target));
        assert!(!expected(Demand::Digest).accepts(Some(&header), "HEAD", target));
        let mut wrong = expected(Demand::Digest);
        wrong.password = "other".into();
        assert!(!wrong.accepts(Some(&header), "GET", target));
    }
}
