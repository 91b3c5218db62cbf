//! The server side of NTLM (MS-NLMP) for `auth=ntlm`: the challenge message, and NTLMv2
//! verification of the client's answer against the expected user name and password. The
//! server challenge is fixed, so the check needs no state between the two requests of the
//! handshake (a test server may be predictable; a real one must not be).

use crate::auth::{md_digest, md5};

/// The 8 bytes every challenge carries.
const SERVER_CHALLENGE: [u8; 8] = *b"qmgr-chl";
const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
const REQUEST_TARGET: u32 = 0x0000_0004;
const NEGOTIATE_NTLM: u32 = 0x0000_0200;
const TARGET_TYPE_DOMAIN: u32 = 0x0001_0000;
const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;
/// The domain the challenge names.
const DOMAIN: &str = "QMGR";

/// What an NTLM `Authorization` value is.
pub(crate) enum Message {
    /// The client's opening (type 1): answer with the challenge.
    Negotiate,
    /// The client's answer (type 3).
    Authenticate(Vec<u8>),
}

/// Decodes the base64 token of an `NTLM` header value.
pub(crate) fn parse(token: &[u8]) -> Option<Message> {
    if token.len() < 12 || &token[..8] != SIGNATURE {
        return None;
    }
    match u32::from_le_bytes(token[8..12].try_into().ok()?) {
        1 => Some(Message::Negotiate),
        3 => Some(Message::Authenticate(token.to_vec())),
        _ => None,
    }
}

fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// The challenge (type 2) message, with the target information that makes clients answer
/// with NTLMv2.
pub(crate) fn challenge() -> Vec<u8> {
    let target_name = utf16le(DOMAIN);
    let mut target_info = Vec::new();
    // MsvAvNbDomainName, then MsvAvEOL.
    target_info.extend_from_slice(&2u16.to_le_bytes());
    target_info.extend_from_slice(&u16::try_from(target_name.len()).unwrap_or(0).to_le_bytes());
    target_info.extend_from_slice(&target_name);
    target_info.extend_from_slice(&[0, 0, 0, 0]);
    let header_len = 48u32;
    let mut message = Vec::new();
    message.extend_from_slice(SIGNATURE);
    message.extend_from_slice(&2u32.to_le_bytes());
    push_field(&mut message, target_name.len(), header_len);
    let flags = NEGOTIATE_UNICODE
        | REQUEST_TARGET
        | NEGOTIATE_NTLM
        | TARGET_TYPE_DOMAIN
        | NEGOTIATE_EXTENDED_SESSIONSECURITY
        | NEGOTIATE_TARGET_INFO;
    message.extend_from_slice(&flags.to_le_bytes());
    message.extend_from_slice(&SERVER_CHALLENGE);
    message.extend_from_slice(&[0; 8]);
    let info_offset = header_len + u32::try_from(target_name.len()).unwrap_or(0);
    push_field(&mut message, target_info.len(), info_offset);
    message.extend_from_slice(&target_name);
    message.extend_from_slice(&target_info);
    message
}

/// A security buffer descriptor: length, maximum length, offset.
fn push_field(message: &mut Vec<u8>, len: usize, offset: u32) {
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    message.extend_from_slice(&len.to_le_bytes());
    message.extend_from_slice(&len.to_le_bytes());
    message.extend_from_slice(&offset.to_le_bytes());
}

/// The bytes a security buffer descriptor at `at` points to.
fn field(message: &[u8], at: usize) -> Option<&[u8]> {
    let len = usize::from(u16::from_le_bytes(
        message.get(at..at + 2)?.try_into().ok()?,
    ));
    let offset = usize::try_from(u32::from_le_bytes(
        message.get(at + 4..at + 8)?.try_into().ok()?,
    ))
    .ok()?;
    message.get(offset..offset.checked_add(len)?)
}

fn from_utf16le(bytes: &[u8]) -> Option<String> {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    String::from_utf16(&units).ok()
}

/// Whether an authenticate (type 3) message proves `user` and `password` with NTLMv2. The
/// expected user may carry a domain (`DOMAIN\user`), which must then match too.
pub(crate) fn verifies(message: &[u8], user: &str, password: &str) -> bool {
    let (Some(nt_response), Some(domain), Some(sent_user)) = (
        field(message, 20),
        field(message, 28).and_then(from_utf16le),
        field(message, 36).and_then(from_utf16le),
    ) else {
        return false;
    };
    let (expected_domain, expected_user) = user.split_once('\\').unwrap_or(("", user));
    // Windows compares names without regard to case, in all of Unicode.
    let same_name = |sent: &str, expected: &str| sent.to_uppercase() == expected.to_uppercase();
    if !same_name(&sent_user, expected_user) || !same_name(&domain, expected_domain) {
        return false;
    }
    // NTLMv2: a 16-byte proof, then the client's blob.
    if nt_response.len() <= 16 {
        return false;
    }
    let (proof, blob) = nt_response.split_at(16);
    let nt_hash = md4(&utf16le(password));
    let identity = utf16le(&format!("{}{domain}", sent_user.to_uppercase()));
    let key = hmac_md5(&nt_hash, &identity);
    let mut challenged = SERVER_CHALLENGE.to_vec();
    challenged.extend_from_slice(blob);
    hmac_md5(&key, &challenged) == proof
}

/// HMAC (RFC 2104) over MD5.
pub(crate) fn hmac_md5(key: &[u8], data: &[u8]) -> [u8; 16] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..16].copy_from_slice(&md5(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let mut inner = pad(0x36);
    inner.extend_from_slice(data);
    let mut outer = pad(0x5c);
    outer.extend_from_slice(&md5(&inner));
    md5(&outer)
}

/// One MD4 round: its mixing function, added constant, word order and shifts.
type Md4Round = (fn(u32, u32, u32) -> u32, u32, [usize; 16], [u32; 4]);

/// MD4 (RFC 1320), which NTLM's password hash is made of.
pub(crate) fn md4(data: &[u8]) -> [u8; 16] {
    md_digest(data, |state, x| {
        let [mut a, mut b, mut c, mut d] = *state;
        let rounds: [Md4Round; 3] = [
            (
                |x, y, z| (x & y) | (!x & z),
                0,
                [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
                [3, 7, 11, 19],
            ),
            (
                |x, y, z| (x & y) | (x & z) | (y & z),
                0x5A82_7999,
                [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15],
                [3, 5, 9, 13],
            ),
            (
                |x, y, z| x ^ y ^ z,
                0x6ED9_EBA1,
                [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15],
                [3, 9, 11, 15],
            ),
        ];
        for (mix, constant, order, shifts) in rounds {
            for (step, &k) in order.iter().enumerate() {
                let value = a
                    .wrapping_add(mix(b, c, d))
                    .wrapping_add(x[k])
                    .wrapping_add(constant)
                    .rotate_left(shifts[step % 4]);
                // The registers rotate: a gets the new value, then d, c, b take their turns.
                (a, b, c, d) = (d, value, b, c);
            }
        }
        [a, b, c, d]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        use std::fmt::Write as _;
        bytes.iter().fold(String::new(), |mut text, b| {
            let _ = write!(text, "{b:02x}");
            text
        })
    }

    #[test]
    fn md4_matches_rfc_1320_test_vectors() {
        assert_eq!(hex(&md4(b"")), "31d6cfe0d16ae931b73c59d7e0c089c0");
        assert_eq!(hex(&md4(b"abc")), "a448017aaf21d8525fc10ae87aa6729d");
        assert_eq!(
            hex(&md4(b"message digest")),
            "d9130a8164549fe818874806e1c7014b"
        );
        assert_eq!(
            hex(&md4(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            )),
            "e33b4ddc9c38f2199c3e7b164fcc0536"
        );
    }

    #[test]
    fn hmac_md5_matches_rfc_2202() {
        assert_eq!(
            hex(&hmac_md5(&[0x0b; 16], b"Hi There")),
            "9294727a3638bb1c13f48ef8158bfc9d"
        );
        assert_eq!(
            hex(&hmac_md5(b"Jefe", b"what do ya want for nothing?")),
            "750c783e6ab0b503eaa86e310a5db738"
        );
    }

    /// An authenticate message as a client builds it for `user`, `domain`, `password`.
    fn answer(user: &str, domain: &str, password: &str) -> Vec<u8> {
        let blob = b"\x01\x01\0\0\0\0\0\0client-time-and-nonce".to_vec();
        let key = hmac_md5(
            &md4(&utf16le(password)),
            &utf16le(&format!("{}{domain}", user.to_uppercase())),
        );
        let mut challenged = SERVER_CHALLENGE.to_vec();
        challenged.extend_from_slice(&blob);
        let mut nt = hmac_md5(&key, &challenged).to_vec();
        nt.extend_from_slice(&blob);
        let (domain, user) = (utf16le(domain), utf16le(user));
        let mut message = SIGNATURE.to_vec();
        message.extend_from_slice(&3u32.to_le_bytes());
        let base = 64u32;
        let lens = [0, nt.len(), domain.len(), user.len(), 0, 0];
        let mut offset = base;
        for len in lens {
            push_field(&mut message, len, offset);
            offset += u32::try_from(len).unwrap();
        }
        message.extend_from_slice(&NEGOTIATE_UNICODE.to_le_bytes());
        message.extend_from_slice(&nt);
        message.extend_from_slice(&domain);
        message.extend_from_slice(&user);
        message
    }

    #[test]
    fn ntlmv2_answers_are_verified() {
        let message = answer("alice", "", "pw");
        assert!(matches!(parse(&message), Some(Message::Authenticate(_))));
        assert!(verifies(&message, "alice", "pw"));
        assert!(verifies(&message, "ALICE", "pw"), "user names ignore case");
        assert!(!verifies(&message, "alice", "other"));
        assert!(!verifies(&message, "bob", "pw"));
        let with_domain = answer("alice", "CORP", "pw");
        assert!(verifies(&with_domain, "CORP\\alice", "pw"));
        assert!(!verifies(&with_domain, "alice", "pw"));
        assert!(
            parse(&challenge()).is_none(),
            "a challenge is not a client message"
        );
    }
}
