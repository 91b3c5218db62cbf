//! A second, real local user for tests of what crosses a uid boundary.
//!
//! Security tests play an attacker (or a victim) with a uid of its own: [`OtherUser::create`]
//! adds a user with a unique name through `useradd`, [`OtherUser::command`] runs a program
//! as that user through `setpriv`, and dropping the value deletes the user again (and its
//! processes with it). Creating users needs root, which CI has; elsewhere the tests that
//! need one say that they skipped and return.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Names are `qmgrt<pid>x<n>`: unique per test process, short enough for every tool.
static NEXT_USER: AtomicU32 = AtomicU32::new(0);

/// A local user that exists for as long as this value does.
#[derive(Debug)]
pub struct OtherUser {
    name: String,
    uid: u32,
    gid: u32,
    home: PathBuf,
}

impl OtherUser {
    /// Adds a new user with a unique name and a home directory of its own under `/tmp`.
    ///
    /// Returns `None`, after printing why for `test`, when this process is not root (only
    /// root can add users). Panics when root cannot add one: a test that needs a second
    /// user must not pass without it.
    pub fn create(test: &str) -> Option<OtherUser> {
        if !is_root() {
            println!("skipped {test}: adding a second user for it needs root");
            return None;
        }
        let name = format!(
            "qmgrt{}x{}",
            std::process::id(),
            NEXT_USER.fetch_add(1, Ordering::Relaxed)
        );
        let home = PathBuf::from("/tmp").join(&name);
        let status = Command::new(find_tool("useradd").expect("useradd is installed"))
            .args(["--create-home", "--home-dir"])
            .arg(&home)
            .args(["--shell", "/bin/sh", "--user-group", &name])
            .status()
            .expect("useradd runs");
        assert!(status.success(), "useradd {name} failed: {status}");
        let (uid, gid) = lookup_ids(&name).expect("the new user is in /etc/passwd");
        Some(OtherUser {
            name,
            uid,
            gid,
            home,
        })
    }

    /// The user's login name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The user's uid.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The user's primary gid.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// The user's home directory (mode 0700 or as `useradd` made it, owned by the user).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// `program` run as this user (uid, gid, no supplementary groups) with a clean
    /// environment: `HOME`, `USER`, `PATH`, and nothing of the test's own variables.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(find_tool("setpriv").expect("setpriv is installed"));
        command
            .arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--clear-groups")
            .arg("--")
            .arg(program)
            .env_clear()
            .env("HOME", &self.home)
            .env("USER", &self.name)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin");
        command
    }

    /// Gives `path` (a file or directory the test made) to this user.
    pub fn chown(&self, path: &Path) -> io::Result<()> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
    }

    /// Makes `<root>/<uid>`, this user's runtime directory as logind makes it under
    /// `/run/user` (a directory of the user's, mode 0700), and returns it. `root` must let
    /// the user in (mode 0755).
    pub fn make_runtime_dir(&self, root: &Path) -> io::Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let dir = root.join(self.uid.to_string());
        std::fs::create_dir(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        self.chown(&dir)?;
        Ok(dir)
    }

    /// The environment of a qmgr instance of this user's: state and configuration in its
    /// home, the runtime directory (where qmgrd's socket goes) `runtime_dir`.
    pub fn qmgr_env(&self, runtime_dir: &Path) -> [(&'static str, PathBuf); 3] {
        [
            ("XDG_STATE_HOME", self.home.join(".local/state")),
            ("XDG_CONFIG_HOME", self.home.join(".config")),
            ("XDG_RUNTIME_DIR", runtime_dir.to_owned()),
        ]
    }
}

impl Drop for OtherUser {
    fn drop(&mut self) {
        // The user's leftover processes (a daemon it started) go first, or userdel refuses.
        if let Some(pkill) = find_tool("pkill") {
            let _ = Command::new(pkill)
                .args(["-KILL", "-U"])
                .arg(self.uid.to_string())
                .status();
        }
        if let Some(userdel) = find_tool("userdel") {
            let _ = Command::new(userdel)
                .args(["--force", "--remove", &self.name])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // /proc/self/status lists the real, effective, saved and filesystem uids.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

fn find_tool(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.exists())
}

fn lookup_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let uid = fields.nth(1)?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}
