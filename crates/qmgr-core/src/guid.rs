//! GUIDs with Windows' layout and text form.

use std::fmt;
use std::str::FromStr;

/// A GUID laid out as Windows' `GUID` struct: `Data1` u32, `Data2` u16, `Data3` u16,
/// `Data4` [u8; 8]. The text form is `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(C)]
pub struct Guid {
    pub data1: u32,
    pub data2: u16,
    pub data3: u16,
    pub data4: [u8; 8],
}

/// Why a string is not a GUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a GUID (expected {{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}})")]
pub struct ParseGuidError {
    text: String,
}

impl Guid {
    pub const NIL: Guid = Guid {
        data1: 0,
        data2: 0,
        data3: 0,
        data4: [0; 8],
    };

    /// A random (version 4, RFC 4122 variant) GUID.
    pub fn new_random() -> Self {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the kernel's random source is unavailable");
        bytes[6] = (bytes[6] & 0x0F) | 0x40;
        bytes[8] = (bytes[8] & 0x3F) | 0x80;
        Self::from_be_bytes(bytes)
    }

    /// From the 16 bytes in text order (big-endian fields), as RFC 4122 writes them.
    pub const fn from_be_bytes(b: [u8; 16]) -> Self {
        Guid {
            data1: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            data2: u16::from_be_bytes([b[4], b[5]]),
            data3: u16::from_be_bytes([b[6], b[7]]),
            data4: [b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]],
        }
    }

    /// The 16 bytes in text order.
    pub const fn to_be_bytes(self) -> [u8; 16] {
        let a = self.data1.to_be_bytes();
        let b = self.data2.to_be_bytes();
        let c = self.data3.to_be_bytes();
        let d = self.data4;
        [
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5],
            d[6], d[7],
        ]
    }

    /// The canonical text form without braces, lower case, for file names and the CLI.
    pub fn to_plain_string(self) -> String {
        let text = self.to_string();
        text[1..text.len() - 1].to_ascii_lowercase()
    }
}

/// Where the hex digits of each byte (in text order) go in the braced text form, and where
/// its dashes are.
const DIGIT_AT: [usize; 16] = [1, 3, 5, 7, 10, 12, 15, 17, 20, 22, 25, 27, 29, 31, 33, 35];
const DASHES_AT: [usize; 4] = [9, 14, 19, 24];
/// `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`
const BRACED_LEN: usize = 38;

impl Guid {
    /// The braced upper-case text form in place, without formatting machinery: listings
    /// write and read a GUID per job.
    fn braced_bytes(self) -> [u8; BRACED_LEN] {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let mut text = [b'-'; BRACED_LEN];
        text[0] = b'{';
        text[BRACED_LEN - 1] = b'}';
        for (byte, at) in self.to_be_bytes().into_iter().zip(DIGIT_AT) {
            text[at] = HEX[usize::from(byte >> 4)];
            text[at + 1] = HEX[usize::from(byte & 0x0F)];
        }
        text
    }

    /// The bytes of the bare form (with dashes, no braces), in either case.
    fn parse_bare(bare: &[u8]) -> Option<Guid> {
        if bare.len() != BRACED_LEN - 2 || DASHES_AT.iter().any(|&at| bare[at - 1] != b'-') {
            return None;
        }
        let digit = |c: u8| {
            char::from(c)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok())
        };
        let mut bytes = [0u8; 16];
        for (byte, at) in bytes.iter_mut().zip(DIGIT_AT) {
            *byte = digit(bare[at - 1])? << 4 | digit(bare[at])?;
        }
        Some(Self::from_be_bytes(bytes))
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.braced_bytes();
        // Only ASCII digits, letters, dashes and braces were written.
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Guid {
    type Err = ParseGuidError;

    /// Accepts the braced form and the bare form, in either case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let inner = match text.strip_prefix('{') {
            Some(rest) => rest.strip_suffix('}'),
            None => Some(text),
        };
        inner
            .and_then(|bare| Guid::parse_bare(bare.as_bytes()))
            .ok_or_else(|| ParseGuidError {
                text: text.to_owned(),
            })
    }
}

impl serde::Serialize for Guid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.braced_bytes();
        let text = std::str::from_utf8(&text).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(text)
    }
}

impl<'de> serde::Deserialize<'de> for Guid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_matches_windows_layout() {
        // IID_IBackgroundCopyManager from bits.h.
        let text = "{5CE34C0D-0DC9-4C1F-897C-DAA1B78CEE7C}";
        let guid: Guid = text.parse().unwrap();
        assert_eq!(guid.data1, 0x5CE3_4C0D);
        assert_eq!(guid.data2, 0x0DC9);
        assert_eq!(guid.data3, 0x4C1F);
        assert_eq!(guid.data4, [0x89, 0x7C, 0xDA, 0xA1, 0xB7, 0x8C, 0xEE, 0x7C]);
        assert_eq!(guid.to_string(), text);
        assert_eq!(
            "5ce34c0d-0dc9-4c1f-897c-daa1b78cee7c"
                .parse::<Guid>()
                .unwrap(),
            guid
        );
        assert_eq!(
            guid.to_plain_string(),
            "5ce34c0d-0dc9-4c1f-897c-daa1b78cee7c"
        );
        assert_eq!(std::mem::size_of::<Guid>(), 16);
    }

    #[test]
    fn malformed_text_is_rejected() {
        for bad in [
            "",
            "{}",
            "{5CE34C0D-0DC9-4C1F-897C-DAA1B78CEE7C",
            "5CE34C0D0DC94C1F897CDAA1B78CEE7C",
            "{5CE34C0D-0DC9-4C1F-897C-DAA1B78CEE7G}",
            "{5CE34C0D-0DC9-4C1F-897C-DAA1B78CEE7C0}",
            "{+CE34C0D-0DC9-4C1F-897C-DAA1B78CEE7C}",
            "{5CE34C0D-0DC94-C1F-897C-DAA1B78CEE7C}",
            "5CE34C0D-0DC9-4C1F-897C-DAA1B78CEE7C}",
            "{5CE34C0D-0DC9-4C1F-897C-DAA1B78CEé}",
        ] {
            assert!(bad.parse::<Guid>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn every_byte_value_round_trips_through_both_text_forms() {
        for value in 0..=255u8 {
            let mut bytes = [0u8; 16];
            for (at, byte) in bytes.iter_mut().enumerate() {
                *byte = value.wrapping_add(u8::try_from(at).unwrap().wrapping_mul(17));
            }
            let guid = Guid::from_be_bytes(bytes);
            let text = guid.to_string();
            let d = guid.data4;
            let expected = format!(
                "{{{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}}}",
                guid.data1, guid.data2, guid.data3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
            );
            assert_eq!(text, expected);
            assert_eq!(text.parse::<Guid>().unwrap(), guid);
            assert_eq!(text.to_ascii_lowercase().parse::<Guid>().unwrap(), guid);
            assert_eq!(guid.to_plain_string().parse::<Guid>().unwrap(), guid);
        }
    }

    #[test]
    fn random_guids_are_version_4_and_distinct() {
        let a = Guid::new_random();
        let b = Guid::new_random();
        assert_ne!(a, b);
        assert_eq!(a.data3 >> 12, 4);
        assert_eq!(a.data4[0] >> 6, 0b10);
        assert_eq!(a.to_string().parse::<Guid>().unwrap(), a);
    }

    #[test]
    fn serde_uses_the_text_form() {
        let guid = Guid::new_random();
        let json = serde_json::to_string(&guid).unwrap();
        assert_eq!(json, format!("\"{guid}\""));
        assert_eq!(serde_json::from_str::<Guid>(&json).unwrap(), guid);
    }
}
