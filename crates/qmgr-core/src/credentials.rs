//! A job's credentials (IBackgroundCopyJob2::SetCredentials): a user name and password per
//! target (the server or the proxy) and scheme (Basic, Digest, NTLM, Negotiate).
//!
//! A password travels from the client to the service once and never back: it is kept in
//! the store (mode 0600 in a 0700 directory) and handed to the transfer engine. Nothing
//! that prints or serialises a job for clients carries it — [`Secret`]'s `Debug` hides it,
//! it has no `Display`, and jobs skip their credentials when sent to clients.

use crate::error::{ErrorContext, QmgrError, Result};
use crate::hresult;
use crate::job::check_length;

/// The longest user name (UTF-16 units) SetCredentials takes.
pub const MAX_USER_NAME_CHARS: usize = 300;
/// The longest password (UTF-16 units) SetCredentials takes.
pub const MAX_PASSWORD_CHARS: usize = 65_536;

/// BG_AUTH_TARGET: whom the credentials are for.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum AuthTarget {
    Server = 1,
    Proxy = 2,
}

impl AuthTarget {
    /// The target of a BG_AUTH_TARGET value; `BG_E_INVALID_AUTH_TARGET` otherwise.
    pub fn from_raw(raw: u32) -> Result<Self> {
        match raw {
            1 => Ok(Self::Server),
            2 => Ok(Self::Proxy),
            _ => Err(QmgrError::new(
                hresult::BG_E_INVALID_AUTH_TARGET,
                ErrorContext::None,
                format!("{raw} is not a BG_AUTH_TARGET (1 server, 2 proxy)"),
            )),
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Proxy => "proxy",
        }
    }
}

/// BG_AUTH_SCHEME: how the credentials are presented. Passport (5) is not supported:
/// Microsoft retired it, and no Linux HTTP stack speaks it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum AuthScheme {
    Basic = 1,
    Digest = 2,
    Ntlm = 3,
    Negotiate = 4,
}

impl AuthScheme {
    /// The scheme of a BG_AUTH_SCHEME value; `BG_E_INVALID_AUTH_SCHEME` otherwise (Passport
    /// included).
    pub fn from_raw(raw: u32) -> Result<Self> {
        match raw {
            1 => Ok(Self::Basic),
            2 => Ok(Self::Digest),
            3 => Ok(Self::Ntlm),
            4 => Ok(Self::Negotiate),
            5 => Err(QmgrError::new(
                hresult::BG_E_INVALID_AUTH_SCHEME,
                ErrorContext::None,
                "BG_AUTH_SCHEME_PASSPORT is not supported: Passport authentication was retired \
                 and has no Linux implementation; use BASIC, DIGEST, NTLM or NEGOTIATE",
            )),
            _ => Err(QmgrError::new(
                hresult::BG_E_INVALID_AUTH_SCHEME,
                ErrorContext::None,
                format!("{raw} is not a BG_AUTH_SCHEME (1 basic, 2 digest, 3 NTLM, 4 negotiate)"),
            )),
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Digest => "digest",
            Self::Ntlm => "NTLM",
            Self::Negotiate => "negotiate",
        }
    }

    /// How much the scheme protects the password: the engine prefers the strongest scheme
    /// the job has credentials for.
    pub const fn strength(self) -> u8 {
        match self {
            Self::Basic => 0,
            Self::Digest => 1,
            Self::Ntlm => 2,
            Self::Negotiate => 3,
        }
    }
}

/// A password (or any secret): never shown by `Debug`, never displayed.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The secret itself, for the one place that must send it (the transfer engine).
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// One SetCredentials call's worth: credentials for a target and scheme.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Credential {
    pub target: AuthTarget,
    pub scheme: AuthScheme,
    pub user_name: String,
    pub password: Secret,
}

impl Credential {
    /// Checks SetCredentials' length limits, and that NTLM credentials are ones the HTTP
    /// stack can prove (see [`ntlm_user_name_bytes`]).
    pub fn validate(&self) -> Result<()> {
        check_length(
            &self.user_name,
            MAX_USER_NAME_CHARS,
            "user name",
            hresult::BG_E_USERNAME_TOO_LARGE,
        )?;
        check_length(
            self.password.reveal(),
            MAX_PASSWORD_CHARS,
            "password",
            hresult::BG_E_PASSWORD_TOO_LARGE,
        )?;
        if self.scheme == AuthScheme::Ntlm
            && (ntlm_user_name_bytes(&self.user_name).is_none()
                || latin1(self.password.reveal()).is_none())
        {
            return Err(QmgrError::invalid_arg(
                "NTLM credentials can hold only characters up to U+00FF (and a user name only \
                 letters whose capital is one of those too): the HTTP stack, libcurl, sends \
                 each character of them as one byte",
            ));
        }
        Ok(())
    }
}

/// The Latin-1 bytes of `text`, one per character; `None` when a character is beyond
/// U+00FF.
///
/// curl's NTLM takes each byte of a user name and password for one UTF-16 code unit, so
/// these bytes (not UTF-8) make the hashes Windows and the servers make from the text.
pub fn latin1(text: &str) -> Option<Vec<u8>> {
    text.chars()
        .map(|character| u8::try_from(u32::from(character)).ok())
        .collect()
}

/// The bytes curl's NTLM must be given for `user_name` (`DOMAIN\user`, `DOMAIN/user` or
/// `user`) to prove it as Windows does: the user part upper-cased in full, then
/// [`latin1`]. NTLMv2 hashes the upper-cased user name; curl upper-cases only ASCII
/// letters, so the others are upper-cased here (those without a one-letter capital, such
/// as ß, stay as they are, as Windows leaves them). `None` when a character, or the capital
/// of one, is beyond U+00FF.
pub fn ntlm_user_name_bytes(user_name: &str) -> Option<Vec<u8>> {
    // Where curl splits the domain off: at the first back-slash or slash.
    let user_start = user_name.find(['\\', '/']).map_or(0, |split| split + 1);
    let (domain, user) = user_name.split_at(user_start);
    let capitals: String = user
        .chars()
        .map(|character| {
            let mut capital = character.to_uppercase();
            match (capital.next(), capital.next()) {
                (Some(one), None) => one,
                _ => character,
            }
        })
        .collect();
    latin1(&format!("{domain}{capitals}"))
}

/// A job's credentials: at most one per (target, scheme).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials(Vec<Credential>);

impl Credentials {
    pub fn new(list: Vec<Credential>) -> Self {
        let mut credentials = Self::default();
        for credential in list {
            credentials.set(credential);
        }
        credentials
    }

    /// Stores `credential`, replacing any for the same target and scheme.
    pub fn set(&mut self, credential: Credential) {
        self.remove(credential.target, credential.scheme);
        self.0.push(credential);
        self.0.sort_by_key(|c| (c.target, c.scheme));
    }

    /// Removes the credentials for `target` and `scheme`; false when there were none.
    pub fn remove(&mut self, target: AuthTarget, scheme: AuthScheme) -> bool {
        let before = self.0.len();
        self.0.retain(|c| (c.target, c.scheme) != (target, scheme));
        self.0.len() != before
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Credential> {
        self.0.iter()
    }

    /// What to offer `target`: the user name and password of the strongest scheme with
    /// credentials, and every scheme whose credentials are the same (curl answers a
    /// challenge with one user name and password, in whichever of those schemes the
    /// server asks for).
    pub fn offer(&self, target: AuthTarget) -> Option<Offer<'_>> {
        let strongest = self
            .0
            .iter()
            .filter(|c| c.target == target)
            .max_by_key(|c| c.scheme.strength())?;
        let schemes = self
            .0
            .iter()
            .filter(|c| {
                c.target == target
                    && c.user_name == strongest.user_name
                    && c.password == strongest.password
            })
            .map(|c| c.scheme)
            .collect();
        Some(Offer {
            user_name: &strongest.user_name,
            password: strongest.password.reveal(),
            schemes,
        })
    }
}

/// The credentials one target is offered.
#[derive(Debug, PartialEq, Eq)]
pub struct Offer<'a> {
    pub user_name: &'a str,
    pub password: &'a str,
    pub schemes: Vec<AuthScheme>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(
        target: AuthTarget,
        scheme: AuthScheme,
        user: &str,
        password: &str,
    ) -> Credential {
        Credential {
            target,
            scheme,
            user_name: user.into(),
            password: Secret::new(password),
        }
    }

    #[test]
    fn raw_values_follow_bits_h_and_passport_is_refused_with_a_reason() {
        assert_eq!(AuthTarget::from_raw(2).unwrap(), AuthTarget::Proxy);
        assert_eq!(
            AuthTarget::from_raw(3).unwrap_err().hresult,
            hresult::BG_E_INVALID_AUTH_TARGET
        );
        assert_eq!(AuthScheme::from_raw(3).unwrap(), AuthScheme::Ntlm);
        let passport = AuthScheme::from_raw(5).unwrap_err();
        assert_eq!(passport.hresult, hresult::BG_E_INVALID_AUTH_SCHEME);
        assert!(passport.description.contains("PASSPORT"));
        assert_eq!(
            AuthScheme::from_raw(0).unwrap_err().hresult,
            hresult::BG_E_INVALID_AUTH_SCHEME
        );
    }

    #[test]
    fn lengths_are_limited_as_set_credentials_documents() {
        let long_name = credential(AuthTarget::Server, AuthScheme::Basic, &"u".repeat(301), "p");
        assert_eq!(
            long_name.validate().unwrap_err().hresult,
            hresult::BG_E_USERNAME_TOO_LARGE
        );
        let long_password = credential(
            AuthTarget::Server,
            AuthScheme::Basic,
            "u",
            &"p".repeat(65_537),
        );
        assert_eq!(
            long_password.validate().unwrap_err().hresult,
            hresult::BG_E_PASSWORD_TOO_LARGE
        );
        assert!(
            credential(AuthTarget::Server, AuthScheme::Basic, &"u".repeat(300), "p")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn ntlm_credentials_are_limited_to_what_curl_can_send() {
        let ok = credential(
            AuthTarget::Server,
            AuthScheme::Ntlm,
            "CORP\\jürgen",
            "pässwört",
        );
        assert!(ok.validate().is_ok());
        for (user, password) in [("jürgen", "пароль"), ("ŁUKASZ", "p"), ("µ-user", "p")] {
            let refused = credential(AuthTarget::Proxy, AuthScheme::Ntlm, user, password);
            let error = refused.validate().unwrap_err();
            assert_eq!(error.hresult, hresult::E_INVALIDARG, "{user}");
            assert!(
                error.description.contains("U+00FF"),
                "{}",
                error.description
            );
        }
        // Basic and Digest send UTF-8: anything goes.
        assert!(
            credential(AuthTarget::Server, AuthScheme::Basic, "ŁUKASZ", "пароль")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn ntlm_bytes_are_latin1_with_the_user_part_in_capitals() {
        assert_eq!(latin1("pässwört"), Some(b"p\xe4ssw\xf6rt".to_vec()));
        assert_eq!(latin1("€"), None);
        assert_eq!(
            ntlm_user_name_bytes("corp\\jürgen"),
            Some(b"corp\\J\xdcRGEN".to_vec())
        );
        assert_eq!(ntlm_user_name_bytes("straße"), Some(b"STRA\xdfE".to_vec()));
        assert_eq!(ntlm_user_name_bytes("ÿ"), None, "its capital is U+0178");
        assert_eq!(ntlm_user_name_bytes("alice"), Some(b"ALICE".to_vec()));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let c = credential(AuthTarget::Server, AuthScheme::Digest, "alice", "hunter2");
        let shown = format!("{c:?} {:?}", Credentials::new(vec![c.clone()]));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("alice"));
    }

    #[test]
    fn one_credential_per_target_and_scheme_and_the_strongest_is_offered() {
        let mut all = Credentials::default();
        all.set(credential(AuthTarget::Server, AuthScheme::Basic, "a", "1"));
        all.set(credential(AuthTarget::Server, AuthScheme::Basic, "b", "2"));
        all.set(credential(AuthTarget::Server, AuthScheme::Digest, "b", "2"));
        all.set(credential(AuthTarget::Proxy, AuthScheme::Ntlm, "p", "3"));
        assert_eq!(all.iter().count(), 3, "Basic for the server was replaced");
        let server = all.offer(AuthTarget::Server).unwrap();
        assert_eq!(
            (server.user_name, server.password, server.schemes.clone()),
            ("b", "2", vec![AuthScheme::Basic, AuthScheme::Digest])
        );
        all.set(credential(AuthTarget::Server, AuthScheme::Ntlm, "c", "3"));
        let server = all.offer(AuthTarget::Server).unwrap();
        assert_eq!(
            (server.user_name, server.schemes),
            ("c", vec![AuthScheme::Ntlm]),
            "different credentials: only the strongest scheme's are offered"
        );
        assert!(all.remove(AuthTarget::Proxy, AuthScheme::Ntlm));
        assert!(!all.remove(AuthTarget::Proxy, AuthScheme::Ntlm));
        assert_eq!(all.offer(AuthTarget::Proxy), None);
    }
}
