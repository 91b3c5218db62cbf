//! The password database, read from `/etc/passwd`: a uid's login name and home directory.
//! qmgr needs both only to explain (an owner's name in an error) and to find a setuid
//! host's home without its environment; neither warrants NSS.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

/// The fields qmgr reads of one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub home: OsString,
}

/// The account of `uid` in `/etc/passwd`, if it has one.
pub fn account_of(uid: u32) -> Option<Account> {
    find_in(&std::fs::read("/etc/passwd").ok()?, uid)
}

/// The first entry of `uid` in the text of a passwd file (`name:x:uid:gid:gecos:home:shell`).
fn find_in(passwd: &[u8], uid: u32) -> Option<Account> {
    passwd.split(|byte| *byte == b'\n').find_map(|line| {
        let fields: Vec<&[u8]> = line.split(|byte| *byte == b':').collect();
        let entry_uid = std::str::from_utf8(fields.get(2)?)
            .ok()?
            .parse::<u32>()
            .ok()?;
        if entry_uid != uid {
            return None;
        }
        Some(Account {
            name: String::from_utf8_lossy(fields[0]).into_owned(),
            home: std::ffi::OsStr::from_bytes(fields.get(5)?).to_owned(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_found_by_uid_and_malformed_lines_skipped() {
        let passwd = b"root:x:0:0:root:/root:/bin/bash\n\
                       broken line\n\
                       odd:x:notanumber:1::/nowhere:/bin/sh\n\
                       alice:x:1000:1000:Alice:/home/alice:/bin/sh\n\
                       short:x:1001\n";
        assert_eq!(
            find_in(passwd, 1000),
            Some(Account {
                name: "alice".into(),
                home: "/home/alice".into()
            })
        );
        assert_eq!(find_in(passwd, 0).unwrap().home, OsString::from("/root"));
        assert_eq!(find_in(passwd, 1001), None, "an entry without a home field");
        assert_eq!(find_in(passwd, 4242), None);
    }

    #[test]
    fn the_running_users_account_is_found() {
        let uid = rustix::process::getuid().as_raw();
        // Containers may run as a uid without an entry; when it has one, it is found.
        if let Ok(text) = std::fs::read_to_string("/etc/passwd")
            && text
                .lines()
                .any(|l| l.split(':').nth(2) == Some(&uid.to_string()))
        {
            assert!(account_of(uid).is_some());
        }
    }
}
