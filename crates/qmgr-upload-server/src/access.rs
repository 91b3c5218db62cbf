//! Who may upload into a location: anyone, HTTP Basic users of an htpasswd file (bcrypt
//! entries), or the user a trusted reverse proxy names in a header.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use http::HeaderMap;

use crate::config::{AccessKind, Location};

/// How long a checked Authorization header is trusted without checking its password
/// again: bcrypt is slow on purpose, and a 1 GiB upload sends a thousand packets.
const VERIFIED_FOR: Duration = Duration::from_secs(300);
/// The most remembered Authorization headers; past it the memory is cleared.
const MAX_REMEMBERED: usize = 4096;
/// The longest user name taken (it becomes a directory name with per-user directories).
const MAX_USER_BYTES: usize = 255;

/// The check of one location.
#[derive(Debug)]
pub enum Access {
    Anonymous,
    Basic {
        users: HashMap<String, String>,
        verified: Mutex<HashMap<String, (String, Instant)>>,
    },
    Header {
        name: http::HeaderName,
    },
}

/// The outcome of a failed check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// No or wrong credentials: 401 with a Basic challenge.
    Unauthenticated,
    /// The proxy named no usable user: 403.
    NoUser,
}

impl Access {
    pub fn for_location(location: &Location) -> Result<Access> {
        Ok(match location.access {
            AccessKind::Anonymous => Access::Anonymous,
            AccessKind::Basic => {
                let path = location
                    .password_file
                    .as_deref()
                    .context("no password_file")?;
                Access::Basic {
                    users: read_password_file(path)?,
                    verified: Mutex::new(HashMap::new()),
                }
            }
            AccessKind::Header => {
                let header = location.user_header.as_deref().context("no user_header")?;
                Access::Header {
                    name: http::HeaderName::from_bytes(header.as_bytes())
                        .with_context(|| format!("user_header {header:?} is not a header name"))?,
                }
            }
        })
    }

    /// The user a request comes from (`None` for anonymous access). Blocks while a
    /// password is checked: call it off the async threads.
    pub fn check(&self, headers: &HeaderMap) -> Result<Option<String>, Denied> {
        match self {
            Access::Anonymous => Ok(None),
            Access::Header { name } => {
                let user = headers
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .map(str::trim)
                    .filter(|user| usable_user(user))
                    .ok_or(Denied::NoUser)?;
                Ok(Some(user.to_owned()))
            }
            Access::Basic { users, verified } => {
                let header = headers
                    .get(http::header::AUTHORIZATION)
                    .and_then(|value| value.to_str().ok())
                    .ok_or(Denied::Unauthenticated)?;
                {
                    let remembered = verified
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if let Some((user, at)) = remembered.get(header)
                        && at.elapsed() < VERIFIED_FOR
                    {
                        return Ok(Some(user.clone()));
                    }
                }
                let (user, password) = basic_credentials(header).ok_or(Denied::Unauthenticated)?;
                let hash = users.get(&user).ok_or(Denied::Unauthenticated)?;
                if !bcrypt::verify(&password, hash).unwrap_or(false) {
                    return Err(Denied::Unauthenticated);
                }
                let mut remembered = verified
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if remembered.len() >= MAX_REMEMBERED {
                    remembered.clear();
                }
                remembered.insert(header.to_owned(), (user.clone(), Instant::now()));
                Ok(Some(user))
            }
        }
    }

    pub fn is_anonymous(&self) -> bool {
        matches!(self, Access::Anonymous)
    }
}

/// A user name that can name a directory.
fn usable_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= MAX_USER_BYTES
        && user != "."
        && user != ".."
        && !user.starts_with(crate::names::PART_PREFIX)
        && !user.contains(['/', '\\', '\0'])
}

/// `Basic base64(user:password)`.
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    usable_user(user).then(|| (user.to_owned(), password.to_owned()))
}

/// An htpasswd file: `user:$2y$…` lines (bcrypt, as `htpasswd -B` writes them); blank
/// lines and `#` comments are skipped; any other hash is refused, naming the line.
fn read_password_file(path: &Path) -> Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the password file {}", path.display()))?;
    let mut users = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            bail!("{} line {}: not user:hash", path.display(), number + 1);
        };
        if !["$2a$", "$2b$", "$2y$"]
            .iter()
            .any(|prefix| hash.starts_with(prefix))
        {
            bail!(
                "{} line {}: only bcrypt hashes are taken (htpasswd -B)",
                path.display(),
                number + 1
            );
        }
        if !usable_user(user) {
            bail!(
                "{} line {}: user name {user:?} cannot be used",
                path.display(),
                number + 1
            );
        }
        users.insert(user.to_owned(), hash.to_owned());
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Basic {token}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn basic_users_need_the_right_password() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("htpasswd");
        let hash = bcrypt::hash("secret", 4).unwrap();
        std::fs::write(&file, format!("# users\nalice:{hash}\n")).unwrap();
        let access = Access::Basic {
            users: read_password_file(&file).unwrap(),
            verified: Mutex::new(HashMap::new()),
        };
        assert_eq!(
            access.check(&basic("alice", "secret")),
            Ok(Some("alice".into()))
        );
        assert_eq!(
            access.check(&basic("alice", "secret")),
            Ok(Some("alice".into()))
        );
        assert_eq!(
            access.check(&basic("alice", "wrong")),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(
            access.check(&basic("bob", "secret")),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(
            access.check(&HeaderMap::new()),
            Err(Denied::Unauthenticated)
        );

        std::fs::write(&file, "alice:{SHA}abc\n").unwrap();
        let error = read_password_file(&file).unwrap_err();
        assert!(format!("{error:#}").contains("bcrypt"), "{error:#}");
    }

    #[test]
    fn a_proxy_header_must_name_a_usable_user() {
        let access = Access::Header {
            name: http::HeaderName::from_static("x-remote-user"),
        };
        let mut headers = HeaderMap::new();
        assert_eq!(access.check(&headers), Err(Denied::NoUser));
        headers.insert("x-remote-user", "../root".parse().unwrap());
        assert_eq!(access.check(&headers), Err(Denied::NoUser));
        headers.insert("x-remote-user", "carol".parse().unwrap());
        assert_eq!(access.check(&headers), Ok(Some("carol".into())));
    }
}
