//! The server's configuration: a TOML file. Unknown keys and bad values are errors that
//! name the key; nothing falls back to a default silently.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// IIS's default session timeout (`BITSSessionTimeout`): 14 days.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(14 * 24 * 3600);
/// IIS's default per-user session limit (`BITSNumberOfSessionsLimit`).
pub const DEFAULT_SESSIONS_PER_CLIENT: usize = 50;
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;
/// Windows clients send fragments of at most 13 MB ([MC-BUP] <10>); a little more is taken.
pub const DEFAULT_MAX_FRAGMENT: u64 = 16 * 1024 * 1024;

/// The whole configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where to listen, e.g. `127.0.0.1:8080` (TLS belongs to a reverse proxy in front).
    pub listen: SocketAddr,
    /// Where the server keeps its session records (not the uploads).
    pub state_dir: PathBuf,
    /// A session idle this long is dropped with its partial upload (e.g. `"14d"`).
    #[serde(default = "default_session_timeout", with = "duration_text")]
    pub session_timeout: Duration,
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// Open sessions per client (its user name, or its address without authentication).
    #[serde(default = "default_sessions_per_client")]
    pub max_sessions_per_client: usize,
    /// The largest fragment body taken; a larger one gets 413 and the client sends smaller.
    #[serde(default = "default_max_fragment")]
    pub max_fragment_size: u64,
    /// `BITS-Host-Id` for server farms: clients send the rest of a session to this host.
    #[serde(default)]
    pub host_id: Option<String>,
    /// `BITS-Host-Id-Fallback-Timeout`, in seconds: how long a client that cannot reach
    /// `host_id` keeps trying before it goes back to the first host.
    #[serde(default)]
    pub host_id_fallback_timeout: Option<u32>,
    /// How long a location's reply command may run (e.g. `"5m"`, the default: a BITS client
    /// waits that long for the last Ack).
    #[serde(default = "default_reply_timeout", with = "duration_text")]
    pub reply_timeout: Duration,
    /// Where uploads go, by URL prefix; the longest matching prefix wins.
    #[serde(rename = "location")]
    pub locations: Vec<Location>,
}

/// One upload area: a URL prefix mapped onto a directory.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// The URL path prefix, starting and ending with `/` (e.g. `/uploads/`).
    pub prefix: String,
    /// The directory the prefix maps to; it must exist.
    pub directory: PathBuf,
    #[serde(default)]
    pub access: AccessKind,
    /// For `access = "basic"`: an htpasswd file of bcrypt entries (`htpasswd -B`).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// For `access = "header"`: the header in which the reverse proxy names the user.
    #[serde(default)]
    pub user_header: Option<String>,
    /// Each user uploads into `directory/<user name>/` (which must exist).
    #[serde(default)]
    pub per_user_directories: bool,
    #[serde(default)]
    pub overwrite: Overwrite,
    /// The largest upload taken, in bytes (`BG_E_TOO_LARGE` beyond it).
    #[serde(default)]
    pub max_upload_size: Option<u64>,
    /// Upload-reply: a program that makes the reply. It is run with the uploaded file's
    /// path and the path to write the reply to as its last two arguments, and gets
    /// `BITS_ORIGINAL_REQUEST_URL` in its environment.
    #[serde(default)]
    pub reply_command: Option<Vec<String>>,
    /// Upload-reply through an HTTP back-end instead (IIS's notification URL, http only):
    /// it gets a POST naming the upload, and answers with the reply.
    #[serde(default)]
    pub reply_url: Option<String>,
    /// How `reply_url` hears of the upload: `"reference"` (the default: the uploaded file's
    /// path and the path to write the reply to, in `BITS-Request-DataFile-Name` and
    /// `BITS-Response-DataFile-Name`) or `"value"` (the file is the POST's body, the reply
    /// the response's body).
    #[serde(default)]
    pub reply_notification: Notification,
}

/// How an HTTP back-end is told of an upload (IIS's `BITSServerNotificationType` 1 and 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Notification {
    #[default]
    Reference,
    Value,
}

/// Where a location's replies come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyBackend<'a> {
    Command(&'a [String]),
    Url(&'a str, Notification),
}

impl Location {
    /// The back-end that makes this location's replies, if it is an upload-reply location.
    pub fn reply_backend(&self) -> Option<ReplyBackend<'_>> {
        if let Some(command) = &self.reply_command {
            Some(ReplyBackend::Command(command))
        } else {
            self.reply_url
                .as_deref()
                .map(|url| ReplyBackend::Url(url, self.reply_notification))
        }
    }
}

/// Who may upload into a location.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessKind {
    /// Anyone who reaches the server.
    #[default]
    Anonymous,
    /// HTTP Basic against `password_file`.
    Basic,
    /// The user a trusted reverse proxy names in `user_header`.
    Header,
}

/// What happens when an upload's destination already exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overwrite {
    /// The upload is refused (409, `BITS-Error-Code` ERROR_FILE_EXISTS), at Create-Session
    /// and again at publication.
    #[default]
    Refuse,
    /// The upload replaces the file atomically.
    Replace,
    /// The upload is published under a free name: `name-1.ext`, `name-2.ext`, …
    KeepBoth,
}

fn default_session_timeout() -> Duration {
    DEFAULT_SESSION_TIMEOUT
}
fn default_reply_timeout() -> Duration {
    crate::reply::REPLY_TIMEOUT
}
fn default_max_sessions() -> usize {
    DEFAULT_MAX_SESSIONS
}
fn default_sessions_per_client() -> usize {
    DEFAULT_SESSIONS_PER_CLIENT
}
fn default_max_fragment() -> u64 {
    DEFAULT_MAX_FRAGMENT
}

mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text)
            .map_err(|error| serde::de::Error::custom(format!("{text:?}: {error}")))
    }
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Config::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Config> {
        let config: Config = toml::from_str(text)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<()> {
        if self.locations.is_empty() {
            bail!("no [[location]]: there is nowhere to upload to");
        }
        if self.max_fragment_size == 0 {
            bail!("max_fragment_size must be at least 1 byte");
        }
        if self.session_timeout.is_zero() {
            bail!("session_timeout must be longer than zero");
        }
        if let Some(host) = &self.host_id
            && (host.trim().is_empty() || http::HeaderValue::from_str(host).is_err())
        {
            bail!("host_id {host:?} cannot be sent as a header value");
        }
        for (index, location) in self.locations.iter().enumerate() {
            location
                .check()
                .with_context(|| format!("location {} ({:?})", index + 1, location.prefix))?;
        }
        for (index, location) in self.locations.iter().enumerate() {
            if self.locations[..index]
                .iter()
                .any(|other| other.prefix == location.prefix)
            {
                bail!("two locations have the prefix {:?}", location.prefix);
            }
        }
        Ok(())
    }

    /// The location whose prefix is the longest that `path` starts with.
    pub fn location_for(&self, path: &str) -> Option<&Location> {
        self.locations
            .iter()
            .filter(|location| path.starts_with(&location.prefix))
            .max_by_key(|location| location.prefix.len())
    }
}

impl Location {
    fn check(&self) -> Result<()> {
        if !self.prefix.starts_with('/') || !self.prefix.ends_with('/') {
            bail!("prefix must start and end with '/'");
        }
        if !self.directory.is_absolute() {
            bail!("directory must be an absolute path");
        }
        match self.access {
            AccessKind::Basic if self.password_file.is_none() => {
                bail!("access = \"basic\" needs password_file")
            }
            AccessKind::Header if self.user_header.is_none() => {
                bail!("access = \"header\" needs user_header")
            }
            AccessKind::Anonymous if self.per_user_directories => {
                bail!("per_user_directories needs access = \"basic\" or \"header\"")
            }
            _ => {}
        }
        if self.reply_command.is_some() && self.reply_url.is_some() {
            bail!("reply_command and reply_url exclude each other");
        }
        if let Some(url) = &self.reply_url
            && !url.to_ascii_lowercase().starts_with("http://")
        {
            bail!("reply_url must be an http:// URL (the back-end sits beside the server)");
        }
        if let Some(command) = &self.reply_command {
            match command.first() {
                None => bail!("reply_command is empty"),
                Some(program) if !Path::new(program).is_absolute() => {
                    bail!("reply_command's program must be an absolute path")
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        listen = "127.0.0.1:8080"
        state_dir = "/var/lib/qmgr-upload-server"
        [[location]]
        prefix = "/uploads/"
        directory = "/srv/uploads"
    "#;

    #[test]
    fn a_minimal_file_gets_the_documented_defaults() {
        let config = Config::parse(MINIMAL).unwrap();
        assert_eq!(config.session_timeout, DEFAULT_SESSION_TIMEOUT);
        assert_eq!(config.max_sessions_per_client, 50);
        let location = config.location_for("/uploads/a/b.txt").unwrap();
        assert_eq!(location.overwrite, Overwrite::Refuse);
        assert_eq!(location.access, AccessKind::Anonymous);
        assert!(config.location_for("/other/b.txt").is_none());
    }

    #[test]
    fn the_longest_prefix_wins() {
        let text = format!(
            "{MINIMAL}\n[[location]]\nprefix = \"/uploads/logs/\"\ndirectory = \"/srv/logs\"\n"
        );
        let config = Config::parse(&text).unwrap();
        let location = config.location_for("/uploads/logs/x").unwrap();
        assert_eq!(location.directory, Path::new("/srv/logs"));
    }

    #[test]
    fn mistakes_are_errors_that_name_the_key() {
        for (text, expected) in [
            (
                format!("{MINIMAL}\nsession_timout = \"1d\""),
                "session_timout",
            ),
            (
                MINIMAL.replace("/srv/uploads", "srv/uploads"),
                "absolute path",
            ),
            (
                MINIMAL.replace("prefix = \"/uploads/\"", "prefix = \"/uploads\""),
                "start and end",
            ),
            (
                format!("{MINIMAL}access = \"basic\""),
                "needs password_file",
            ),
            (format!("{MINIMAL}overwrite = \"sometimes\""), "sometimes"),
            (
                MINIMAL.replace("listen = ", "session_timeout = \"soon\"\nlisten = "),
                "soon",
            ),
            (
                MINIMAL.replace("listen = ", "host_id = \"a\\nb\"\nlisten = "),
                "host_id",
            ),
        ] {
            let error = format!("{:#}", Config::parse(&text).unwrap_err());
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
        }
    }
}
