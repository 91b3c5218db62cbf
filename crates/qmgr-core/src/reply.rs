//! The reply of an upload-reply job: after the last byte of the upload the server names a
//! reply URL; the reply is downloaded (with ranges, as a download file) into a temporary
//! file before Close-Session, and lands at the reply file name on Complete.

use std::io::Read;
use std::path::Path;

use crate::error::{ErrorContext, QmgrError, Result};
use crate::file::{SIZE_UNKNOWN, Validator};
use crate::guid::Guid;
use crate::hresult;

/// The most `GetReplyData` hands over in memory: a larger reply is `BG_E_TOO_LARGE` and
/// stays in the reply file (Microsoft's limit, 1 MB).
pub const MAX_REPLY_DATA: u64 = 1024 * 1024;

/// Where an upload-reply job's reply stands.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplyRecord {
    /// Where the reply goes on Complete: the name SetReplyFileName gave, else one made in
    /// the upload file's directory when the file is added (`None` before that).
    pub file_name: Option<String>,
    /// `file_name` came from SetReplyFileName (a generated one follows the upload file).
    pub file_name_given: bool,
    /// The reply's URL, absolute, from the Ack of the upload's last fragment; `None` before
    /// that, and when the server sent none (the reply is then empty).
    pub url: Option<String>,
    /// The partial reply, recorded before the file is made.
    pub temp_name: Option<String>,
    /// The reply's size; [`SIZE_UNKNOWN`] until its download starts.
    pub bytes_total: u64,
    pub bytes: u64,
    pub validator: Validator,
    /// The reply is whole in `temp_name` (or there is none: `url` is `None`).
    pub done: bool,
}

impl Default for ReplyRecord {
    fn default() -> Self {
        ReplyRecord {
            file_name: None,
            file_name_given: false,
            url: None,
            temp_name: None,
            bytes_total: SIZE_UNKNOWN,
            bytes: 0,
            validator: Validator::default(),
            done: false,
        }
    }
}

impl ReplyRecord {
    /// The reply's download has begun: its file name can no longer change
    /// (SetReplyFileName is then `BG_E_INVALID_STATE`).
    pub fn started(&self) -> bool {
        self.done || self.temp_name.is_some() || self.bytes_total != SIZE_UNKNOWN
    }

    /// Back to nothing downloaded (the upload starts over in a new session, whose reply
    /// will be another); the file name stays.
    pub fn reset(&mut self) -> Option<String> {
        let temp = self.temp_name.take();
        *self = ReplyRecord {
            file_name: self.file_name.take(),
            file_name_given: self.file_name_given,
            ..ReplyRecord::default()
        };
        temp
    }
}

/// The reply file name made for an upload file when the program gave none: beside the
/// upload file (Microsoft: "in the same directory"), named after it and the job so that
/// two jobs uploading one file do not share a reply.
pub fn generated_file_name(upload_local_name: &str, job: Guid) -> String {
    let job = job.to_string();
    let short = job.trim_matches(['{', '}']).get(..8).unwrap_or("reply");
    format!("{upload_local_name}.{}.reply", short.to_ascii_lowercase())
}

/// SetReplyFileName's checks on the name itself: an absolute path, no longer than
/// a local name may be, no wildcards (its directory is checked by the service, which can see it).
pub fn validate_file_name(name: &str) -> Result<()> {
    if !name.starts_with('/') {
        return Err(QmgrError::invalid_arg(format!(
            "the reply file name {name:?} is not an absolute path"
        )));
    }
    if name.contains(['*', '?', '\0']) || name.ends_with('/') {
        return Err(QmgrError::invalid_arg(format!(
            "the reply file name {name:?} is not the name of one file"
        )));
    }
    if name.len() > crate::file::MAX_LOCAL_NAME_BYTES {
        return Err(QmgrError::invalid_arg(format!(
            "the reply file name is longer than {} bytes",
            crate::file::MAX_LOCAL_NAME_BYTES
        )));
    }
    Ok(())
}

/// GetReplyData's answer: the reply's bytes when they fit in memory, and its size.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplyData {
    /// `None`: the server sent no reply (size 0), or it is larger than
    /// [`MAX_REPLY_DATA`] (`BG_E_TOO_LARGE`; it stays in the reply file).
    pub data: Option<Vec<u8>>,
    pub size: u64,
}

impl ReplyData {
    pub fn too_large(&self) -> bool {
        self.data.is_none() && self.size > MAX_REPLY_DATA
    }
}

/// Reads the reply at `path` (`None`: there is none) as GetReplyData answers it.
pub fn read_reply(path: Option<&Path>) -> Result<ReplyData> {
    let Some(path) = path else {
        return Ok(ReplyData {
            data: None,
            size: 0,
        });
    };
    let unreadable = |error: std::io::Error| {
        let code = match error.kind() {
            std::io::ErrorKind::NotFound => hresult::HRESULT_PATH_NOT_FOUND,
            std::io::ErrorKind::PermissionDenied => hresult::E_ACCESSDENIED,
            _ => hresult::E_FAIL,
        };
        QmgrError::new(
            code,
            ErrorContext::LocalFile,
            format!("the reply {} cannot be read: {error}", path.display()),
        )
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let size = file.metadata().map_err(unreadable)?.len();
    if size > MAX_REPLY_DATA {
        return Ok(ReplyData { data: None, size });
    }
    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // Read one byte past the limit: a file that grew meanwhile is still refused.
    file.take(MAX_REPLY_DATA + 1)
        .read_to_end(&mut data)
        .map_err(unreadable)?;
    let size = data.len() as u64;
    if size > MAX_REPLY_DATA {
        return Ok(ReplyData { data: None, size });
    }
    Ok(ReplyData {
        data: Some(data),
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_name_sits_beside_the_upload_and_names_the_job() {
        let job: Guid = "{0A1B2C3D-0000-0000-0000-000000000000}".parse().unwrap();
        assert_eq!(
            generated_file_name("/home/u/dump.bin", job),
            "/home/u/dump.bin.0a1b2c3d.reply"
        );
    }

    #[test]
    fn reply_file_names_must_be_absolute_single_files() {
        assert!(validate_file_name("/tmp/reply").is_ok());
        for bad in ["reply", "/tmp/*.bin", "/tmp/dir/", "/tmp/a?b"] {
            let error = validate_file_name(bad).unwrap_err();
            assert_eq!(error.hresult, hresult::E_INVALIDARG, "{bad}");
        }
        let long = format!("/{}", "a".repeat(5000));
        assert!(validate_file_name(&long).is_err());
    }

    #[test]
    fn reply_data_is_handed_over_up_to_a_megabyte() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, b"answer").unwrap();
        let read = read_reply(Some(&small)).unwrap();
        assert_eq!(read.data.as_deref(), Some(&b"answer"[..]));
        assert_eq!(read.size, 6);

        let exact = dir.path().join("exact");
        std::fs::write(&exact, vec![7u8; usize::try_from(MAX_REPLY_DATA).unwrap()]).unwrap();
        let read = read_reply(Some(&exact)).unwrap();
        assert_eq!(read.data.map(|d| d.len() as u64), Some(MAX_REPLY_DATA));

        let large = dir.path().join("large");
        std::fs::write(
            &large,
            vec![7u8; usize::try_from(MAX_REPLY_DATA).unwrap() + 1],
        )
        .unwrap();
        let read = read_reply(Some(&large)).unwrap();
        assert!(read.too_large());
        assert_eq!(read.size, MAX_REPLY_DATA + 1);

        let none = read_reply(None).unwrap();
        assert_eq!((none.data, none.size), (None, 0));
        assert!(read_reply(Some(&dir.path().join("missing"))).is_err());
    }

    #[test]
    fn a_started_reply_keeps_its_name_through_a_reset() {
        let mut reply = ReplyRecord {
            file_name: Some("/tmp/r".into()),
            file_name_given: true,
            ..ReplyRecord::default()
        };
        assert!(!reply.started());
        reply.temp_name = Some("/tmp/.BITx.tmp".into());
        reply.bytes = 10;
        assert!(reply.started());
        assert_eq!(reply.reset().as_deref(), Some("/tmp/.BITx.tmp"));
        assert!(!reply.started());
        assert_eq!(reply.file_name.as_deref(), Some("/tmp/r"));
        assert!(reply.file_name_given);
    }
}
