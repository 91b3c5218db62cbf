//! The user name and password as curl must be given them.
//!
//! Basic and Digest send the text's UTF-8. curl's NTLM instead takes each byte for one
//! UTF-16 code unit and upper-cases the user name for the NTLMv2 hash in ASCII only, while
//! Windows and the servers that check the hash use the password's UTF-16 and the user name
//! upper-cased in full. UTF-8 bytes of a non-ASCII password would make a wrong hash: a 401,
//! and a failed logon that counts towards locking the account. So an offer curl answers
//! only with NTLM (or Negotiate) gets the bytes `qmgr_core::credentials` makes for NTLM,
//! and an offer that mixes NTLM with Basic or Digest keeps UTF-8 for those and leaves NTLM
//! out when its text is not ASCII.

use qmgr_core::credentials::{AuthScheme, Offer, latin1, ntlm_user_name_bytes};

/// What curl is given for one target.
#[derive(PartialEq, Eq)]
pub(crate) struct CurlCredentials {
    pub user_name: Vec<u8>,
    pub password: Vec<u8>,
    /// The schemes curl may answer a challenge with.
    pub schemes: Vec<AuthScheme>,
}

impl std::fmt::Debug for CurlCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Like `Secret`'s: the password never shows.
        f.debug_struct("CurlCredentials")
            .field("user_name", &String::from_utf8_lossy(&self.user_name))
            .field("password", &"<hidden>")
            .field("schemes", &self.schemes)
            .finish()
    }
}

impl Drop for CurlCredentials {
    fn drop(&mut self) {
        // curl keeps its own copy; this one does not linger in freed memory.
        self.password.fill(0);
    }
}

/// The bytes and schemes for `offer`; `None` when no scheme is left to answer with.
pub(crate) fn for_curl(offer: &Offer<'_>) -> Option<CurlCredentials> {
    let utf8 = |schemes: Vec<AuthScheme>| {
        (!schemes.is_empty()).then(|| CurlCredentials {
            user_name: offer.user_name.as_bytes().to_vec(),
            password: offer.password.as_bytes().to_vec(),
            schemes,
        })
    };
    let plain_text = offer.user_name.is_ascii() && offer.password.is_ascii();
    if plain_text || !offer.schemes.contains(&AuthScheme::Ntlm) {
        return utf8(offer.schemes.clone());
    }
    let windows_schemes_only = offer
        .schemes
        .iter()
        .all(|scheme| matches!(scheme, AuthScheme::Ntlm | AuthScheme::Negotiate));
    if windows_schemes_only
        && let (Some(user_name), Some(password)) = (
            ntlm_user_name_bytes(offer.user_name),
            latin1(offer.password),
        )
    {
        return Some(CurlCredentials {
            user_name,
            password,
            schemes: offer.schemes.clone(),
        });
    }
    utf8(
        offer
            .schemes
            .iter()
            .copied()
            .filter(|scheme| *scheme != AuthScheme::Ntlm)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer<'a>(user_name: &'a str, password: &'a str, schemes: &[AuthScheme]) -> Offer<'a> {
        Offer {
            user_name,
            password,
            schemes: schemes.to_vec(),
        }
    }

    #[test]
    fn ascii_and_non_ntlm_credentials_go_as_utf8() {
        let sent = for_curl(&offer("alice", "s3cret", &[AuthScheme::Ntlm])).unwrap();
        assert_eq!(
            (sent.user_name.as_slice(), sent.password.as_slice()),
            (&b"alice"[..], &b"s3cret"[..]),
            "ASCII user names keep their case: curl capitalises them itself"
        );
        let sent = for_curl(&offer("jürgen", "пароль", &[AuthScheme::Basic])).unwrap();
        assert_eq!(sent.user_name, "jürgen".as_bytes());
        assert_eq!(sent.password, "пароль".as_bytes());
        assert_eq!(sent.schemes, [AuthScheme::Basic]);
    }

    #[test]
    fn non_ascii_ntlm_credentials_go_as_latin1_with_the_user_in_capitals() {
        let sent = for_curl(&offer(
            "corp\\jürgen",
            "pässwört",
            &[AuthScheme::Ntlm, AuthScheme::Negotiate],
        ))
        .unwrap();
        assert_eq!(sent.user_name, b"corp\\J\xdcRGEN");
        assert_eq!(sent.password, b"p\xe4ssw\xf6rt");
        assert_eq!(sent.schemes, [AuthScheme::Ntlm, AuthScheme::Negotiate]);
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let sent = for_curl(&offer("jürgen", "hünter2", &[AuthScheme::Ntlm])).unwrap();
        let shown = format!("{sent:?}");
        assert!(!shown.contains("nter2"), "{shown}");
        assert!(shown.contains("RGEN"), "{shown}");
    }

    #[test]
    fn ntlm_beside_basic_is_left_out_rather_than_sent_a_wrong_hash() {
        let sent = for_curl(&offer(
            "jürgen",
            "pässwört",
            &[AuthScheme::Basic, AuthScheme::Ntlm],
        ))
        .unwrap();
        assert_eq!(sent.password, "pässwört".as_bytes());
        assert_eq!(sent.schemes, [AuthScheme::Basic]);
        // NTLM credentials curl cannot send (refused when set, but never sent either).
        assert_eq!(
            for_curl(&offer("jürgen", "€uro", &[AuthScheme::Ntlm])),
            None
        );
    }
}
