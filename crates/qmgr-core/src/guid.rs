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

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.data4;
        write!(
            f,
            "{{{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}}}",
            self.data1, self.data2, self.data3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
        )
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
        let error = || ParseGuidError {
            text: text.to_owned(),
        };
        let inner = match text.strip_prefix('{') {
            Some(rest) => rest.strip_suffix('}').ok_or_else(error)?,
            None => text,
        };
        let groups: Vec<&str> = inner.split('-').collect();
        let lengths = [8, 4, 4, 4, 12];
        if groups.len() != lengths.len()
            || groups
                .iter()
                .zip(lengths)
                .any(|(g, n)| g.len() != n || !g.bytes().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(error());
        }
        let hex: String = groups.concat();
        let mut bytes = [0u8; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).map_err(|_| error())?;
        }
        Ok(Self::from_be_bytes(bytes))
    }
}

impl serde::Serialize for Guid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
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
        ] {
            assert!(bad.parse::<Guid>().is_err(), "{bad:?} parsed");
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
