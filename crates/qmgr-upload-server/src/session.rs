//! Upload sessions: one per Create-Session, until Close-Session, Cancel-Session or expiry.
//! Each has a record in the state directory (so sessions outlive a restart of the server)
//! and a partial file beside its destination, whose length is what the server holds.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::names::Destination;

/// What the server remembers of a session across restarts.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// As sent in `BITS-Session-Id`: a braced GUID of 122 random bits.
    pub id: String,
    /// Who opened it (user name, or address without authentication): only they may use it.
    pub client: String,
    /// The prefix of the location it uploads into.
    pub prefix: String,
    pub destination: Destination,
    /// The partial file's name in the destination directory.
    pub part: String,
    /// The file's size, from the first fragment's Content-Range.
    pub total: Option<u64>,
    /// Seconds since the epoch of the last packet the session took.
    pub last_active: u64,
    /// Upload-reply: the reply command made the reply (it is not made twice).
    #[serde(default)]
    pub reply_ready: bool,
    /// The reply's URL when the back-end named one (`BITS-Static-Response-URL`) instead of
    /// giving the reply itself.
    #[serde(default)]
    pub static_reply_url: Option<String>,
}

impl Record {
    /// The session id's hex digits: how its files are named.
    pub fn hex(&self) -> String {
        session_hex(&self.id)
    }
}

/// A session id's hex digits, lower case.
pub fn session_hex(id: &str) -> String {
    id.chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// A session in memory. Its lock is held for a whole packet: one request at a time.
#[derive(Debug)]
pub struct Session {
    pub record: Record,
    /// Bytes held: the partial file's length.
    pub received: u64,
    pub file: Option<Arc<File>>,
    /// Closed, cancelled or expired while a request waited for it: it takes no more.
    pub ended: bool,
    /// The idle clock (`record.last_active`) as the record on disk has it.
    pub recorded_active: u64,
}

impl Session {
    pub fn complete(&self) -> bool {
        self.record.total == Some(self.received)
    }
}

pub type SharedSession = Arc<tokio::sync::Mutex<Session>>;

/// Every open session, and their records on disk.
#[derive(Debug)]
pub struct Sessions {
    dir: PathBuf,
    table: Mutex<HashMap<String, Entry>>,
}

/// A session and, outside its lock, who owns it (counted for the per-client limit).
#[derive(Debug, Clone)]
struct Entry {
    client: String,
    session: SharedSession,
}

impl Sessions {
    /// Opens (or makes) `state_dir/sessions`, checking that the state directory belongs to
    /// this user and only this user may write it. Returns the records found there.
    pub fn open(state_dir: &Path) -> Result<(Sessions, Vec<Record>)> {
        let dir = state_dir.join("sessions");
        for path in [
            state_dir,
            dir.as_path(),
            state_dir.join("replies").as_path(),
        ] {
            make_private_dir(path)?;
        }
        let mut records = Vec::new();
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            let path = entry?.path();
            if path.extension().is_none_or(|extension| extension != "json") {
                continue;
            }
            let record = std::fs::read(&path)
                .map_err(anyhow::Error::from)
                .and_then(|bytes| Ok(serde_json::from_slice::<Record>(&bytes)?));
            match record {
                Ok(record) => records.push(record),
                Err(error) => {
                    tracing::warn!(
                        "dropping unreadable session record {}: {error:#}",
                        path.display()
                    );
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        Ok((
            Sessions {
                dir,
                table: Mutex::new(HashMap::new()),
            },
            records,
        ))
    }

    /// Adds a session; its record is written first, so a session the client heard of
    /// survives a restart.
    pub fn insert(&self, session: Session) -> io::Result<SharedSession> {
        self.save(&session.record, true)?;
        Ok(self.restore(session))
    }

    /// Takes back a session found at start-up, without writing its record again.
    pub fn restore(&self, session: Session) -> SharedSession {
        let id = session.record.id.clone();
        let client = session.record.client.clone();
        let shared = Arc::new(tokio::sync::Mutex::new(session));
        self.lock().insert(
            id,
            Entry {
                client,
                session: shared.clone(),
            },
        );
        shared
    }

    /// The session `id` if `client` owns it: another client's session is not found, so
    /// that an id says nothing to whoever merely learned it.
    pub fn get(&self, id: &str, client: &str) -> Option<SharedSession> {
        self.lock()
            .get(id)
            .filter(|entry| entry.client == client)
            .map(|entry| entry.session.clone())
    }

    /// The session whose id has these hex digits, if `client` owns it.
    pub fn find_by_hex(&self, hex: &str, client: &str) -> Option<SharedSession> {
        self.lock()
            .iter()
            .find(|(id, entry)| entry.client == client && session_hex(id) == hex)
            .map(|(_, entry)| entry.session.clone())
    }

    /// How many sessions `client` has open.
    pub fn count_for(&self, client: &str) -> usize {
        self.lock()
            .values()
            .filter(|entry| entry.client == client)
            .count()
    }

    /// Forgets a session and deletes its record.
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
        let _ = std::fs::remove_file(self.record_path(id));
    }

    /// Rewrites a session's record (through a new file renamed over the old one); synced
    /// when `durable` (a new session, its size), not for the idle clock alone.
    pub fn save(&self, record: &Record, durable: bool) -> io::Result<()> {
        let path = self.record_path(&record.id);
        let temporary = path.with_extension("json.new");
        let mut file = File::create(&temporary)?;
        file.write_all(&serde_json::to_vec(record).map_err(io::Error::other)?)?;
        if durable {
            file.sync_data()?;
        }
        std::fs::rename(&temporary, &path)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Every session, for expiry.
    pub fn all(&self) -> Vec<SharedSession> {
        self.lock()
            .values()
            .map(|entry| entry.session.clone())
            .collect()
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{}.json", session_hex(id)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A new session id: a version-4 GUID in braces, upper case, as IIS writes them.
pub fn new_session_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|error| anyhow::anyhow!("no random bytes: {error}"))?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes
        .iter()
        .fold(String::with_capacity(32), |mut hex, byte| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{byte:02X}");
            hex
        });
    Ok(format!(
        "{{{}-{}-{}-{}-{}}}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

pub fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// Makes `path` a directory of this user's that no one else may write; an existing one
/// must already be so (another user's directory, or a symlink, is refused).
fn make_private_dir(path: &Path) -> Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => {
            return Err(error).with_context(|| format!("cannot create {}", path.display()));
        }
    }
    let status = std::fs::symlink_metadata(path)
        .with_context(|| format!("cannot inspect {}", path.display()))?;
    if !status.is_dir() {
        bail!(
            "{} is not a directory (a symlink is not taken)",
            path.display()
        );
    }
    let euid = rustix::process::geteuid().as_raw();
    if status.uid() != euid {
        bail!(
            "{} belongs to uid {}, not to this server's uid {euid}",
            path.display(),
            status.uid()
        );
    }
    if status.permissions().mode() & 0o022 != 0 {
        bail!("{} may be written by other users", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_random_version_4_guids() {
        let first = new_session_id().unwrap();
        let second = new_session_id().unwrap();
        assert_ne!(first, second);
        assert_eq!(first.len(), 38);
        assert!(first.starts_with('{') && first.ends_with('}'));
        assert_eq!(&first[15..16], "4");
        assert!(matches!(&first[20..21], "8" | "9" | "A" | "B"));
    }

    #[test]
    fn records_survive_a_reopen_and_the_state_dir_must_be_private() {
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("state");
        let (sessions, found) = Sessions::open(&state).unwrap();
        assert!(found.is_empty());
        let record = Record {
            id: new_session_id().unwrap(),
            client: "alice".into(),
            prefix: "/up/".into(),
            destination: Destination {
                dirs: vec![],
                name: "x".into(),
            },
            part: ".bits-1.part".into(),
            total: Some(10),
            last_active: 5,
            reply_ready: false,
            static_reply_url: None,
        };
        sessions
            .insert(Session {
                record: record.clone(),
                received: 0,
                file: None,
                ended: false,
                recorded_active: record.last_active,
            })
            .unwrap();
        drop(sessions);
        let (_, found) = Sessions::open(&state).unwrap();
        assert_eq!(found, [record]);

        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = Sessions::open(&state).unwrap_err();
        assert!(format!("{error:#}").contains("other users"), "{error:#}");
    }
}
