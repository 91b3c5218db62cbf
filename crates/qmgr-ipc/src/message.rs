//! The messages that travel in frames, and the handshake's version check.
//!
//! Compatibility rule: the handshake must stay readable across protocol versions, so
//! `ClientMessage::Hello` stays the first variant with `protocol_version` as its first
//! field, and `ServiceMessage::Welcome` (likewise) and `ServiceMessage::Refused` stay the
//! first two variants. Everything after the handshake may change with
//! [`PROTOCOL_VERSION`](qmgr_core::service::PROTOCOL_VERSION).

use qmgr_core::hresult;
use qmgr_core::service::{NewFile, Notification, Request, Response};
use qmgr_core::{Guid, QmgrError};

use crate::frame::encoded_len;

/// The most an AddFiles part holds, encoded: well under the request frame limit, so a list
/// of any length travels as parts that each fit a frame.
pub const ADD_FILES_PART_BYTES: usize = 4 * 1024 * 1024;

/// What a connection is for: calls (request, answer, request, answer …) or a stream of
/// notifications from the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Purpose {
    Calls,
    Notifications,
}

/// A frame sent by a client.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ClientMessage {
    /// The first frame of every connection.
    Hello {
        protocol_version: u32,
        purpose: Purpose,
        /// For the service's log: which program is calling.
        client_name: String,
    },
    /// A request; the answer carries the same `id`.
    Call { id: u64, request: Request },
    /// The first files of an AddFiles too long for one frame, sent before the call that
    /// carries the rest: the service holds the parts (bounded) and carries out the call
    /// once with every file, so the files go in all together or not at all. Nothing
    /// answers a part; any call but that AddFiles after parts breaks the protocol.
    AddFilesPart { job: Guid, files: Vec<NewFile> },
}

/// Splits a list of files into runs whose encoding stays within `budget` bytes (each holds
/// at least one file), in order. A list that fits is one run.
pub fn split_files(files: Vec<NewFile>, budget: usize) -> Vec<Vec<NewFile>> {
    let mut parts = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0usize;
    for file in files {
        let len = encoded_len(&file);
        if !current.is_empty() && bytes.saturating_add(len) > budget {
            parts.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes = bytes.saturating_add(len);
        current.push(file);
    }
    if !current.is_empty() || parts.is_empty() {
        parts.push(current);
    }
    parts
}

/// A frame sent by the service.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ServiceMessage {
    /// The handshake succeeded.
    Welcome {
        protocol_version: u32,
        service_version: String,
        /// The uid the service sees for this connection (from `SO_PEERCRED`).
        peer_uid: u32,
    },
    /// The handshake failed; the service closes the connection after this frame.
    Refused(QmgrError),
    /// The outcome of the call with this `id`.
    Answer {
        id: u64,
        result: Result<Response, QmgrError>,
    },
    /// An event on a notifications connection.
    Notify(Notification),
}

/// The part of a handshake message every protocol version agrees on: the variant
/// index and the version that follows it.
#[derive(serde::Deserialize)]
struct VersionPrefix {
    variant: u32,
    protocol_version: u32,
}

/// Reads the protocol version from the payload of a `Hello` or `Welcome` of any protocol
/// version, even one whose other fields this version cannot decode.
pub fn handshake_version(payload: &[u8]) -> Option<u32> {
    match postcard::take_from_bytes::<VersionPrefix>(payload) {
        Ok((
            VersionPrefix {
                variant: 0,
                protocol_version,
            },
            _,
        )) => Some(protocol_version),
        _ => None,
    }
}

/// The error both sides report when the protocol versions differ.
pub fn version_mismatch(client_version: u32, service_version: u32) -> QmgrError {
    QmgrError::new(
        hresult::QM_E_SERVICE_UNAVAILABLE,
        qmgr_core::ErrorContext::GeneralQueueManager,
        format!(
            "protocol version mismatch: this client speaks version {client_version}, the \
             running qmgrd speaks version {service_version}; restart qmgrd (or use the qmgr \
             build that matches it)"
        ),
    )
}

/// A short name of a request, for error messages and logs.
pub fn request_name(request: &Request) -> &'static str {
    match request {
        Request::Ping => "Ping",
        Request::CreateJob { .. } => "CreateJob",
        Request::GetJob { .. } => "GetJob",
        Request::ListJobs { .. } => "ListJobs",
        Request::GetJobSummary { .. } => "GetJobSummary",
        Request::GetJobFiles { .. } => "GetJobFiles",
        Request::ListJobSummaries { .. } => "ListJobSummaries",
        Request::AddFiles { .. } => "AddFiles",
        Request::Resume { .. } => "Resume",
        Request::Suspend { .. } => "Suspend",
        Request::Cancel { .. } => "Cancel",
        Request::Complete { .. } => "Complete",
        Request::CompleteWithoutReplacing { .. } => "CompleteWithoutReplacing",
        Request::TakeOwnership { .. } => "TakeOwnership",
        Request::SetJob { .. } => "SetJob",
        Request::CreateGroup { .. } => "CreateGroup",
        Request::GetGroup { .. } => "GetGroup",
        Request::ListGroups { .. } => "ListGroups",
        Request::CreateGroupJob { .. } => "CreateGroupJob",
        Request::SetGroup { .. } => "SetGroup",
        Request::ResumeGroup { .. } => "ResumeGroup",
        Request::SuspendGroup { .. } => "SuspendGroup",
        Request::CancelGroup { .. } => "CancelGroup",
        Request::SwitchGroupToForeground { .. } => "SwitchGroupToForeground",
        Request::GetFileResponseHeaders { .. } => "GetFileResponseHeaders",
        Request::GetReplyData { .. } => "GetReplyData",
        Request::SetCertificateValidator { .. } => "SetCertificateValidator",
        Request::GetCertificateCheck { .. } => "GetCertificateCheck",
        Request::CertificateVerdict { .. } => "CertificateVerdict",
        Request::RequestFileRanges { .. } => "RequestFileRanges",
        Request::UpdateDownloadPosition { .. } => "UpdateDownloadPosition",
        Request::GetPolicy => "GetPolicy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{decode, encode_frame};

    /// A later protocol's Hello: same first two fields, an extra purpose and more fields.
    #[derive(serde::Serialize)]
    enum FutureClientMessage {
        Hello {
            protocol_version: u32,
            purpose: u32,
            client_name: String,
            features: Vec<String>,
        },
    }

    #[test]
    fn the_version_of_a_future_hello_is_readable() {
        let future = FutureClientMessage::Hello {
            protocol_version: 9,
            purpose: 7,
            client_name: "next".into(),
            features: vec!["x".into()],
        };
        let payload = &encode_frame(&future).unwrap()[4..];
        assert!(decode::<ClientMessage>(payload).is_err());
        assert_eq!(handshake_version(payload), Some(9));
    }

    #[test]
    fn the_version_of_this_hello_and_welcome_is_readable() {
        let hello = ClientMessage::Hello {
            protocol_version: 300,
            purpose: Purpose::Notifications,
            client_name: "t".into(),
        };
        assert_eq!(
            handshake_version(&encode_frame(&hello).unwrap()[4..]),
            Some(300)
        );
        let welcome = ServiceMessage::Welcome {
            protocol_version: 5,
            service_version: "0.1.0".into(),
            peer_uid: 1000,
        };
        assert_eq!(
            handshake_version(&encode_frame(&welcome).unwrap()[4..]),
            Some(5)
        );
    }

    #[test]
    fn other_messages_have_no_handshake_version() {
        let call = ClientMessage::Call {
            id: 1,
            request: Request::Ping,
        };
        assert_eq!(handshake_version(&encode_frame(&call).unwrap()[4..]), None);
        let refused = ServiceMessage::Refused(QmgrError::from_code(hresult::E_ACCESSDENIED));
        assert_eq!(
            handshake_version(&encode_frame(&refused).unwrap()[4..]),
            None
        );
        assert_eq!(handshake_version(&[]), None);
    }

    #[test]
    fn long_file_lists_split_in_order_within_the_budget() {
        let files: Vec<NewFile> = (0..100)
            .map(|i| NewFile {
                remote_name: format!("https://h/{i}"),
                local_name: format!("/d/{i}"),
                ranges: None,
            })
            .collect();
        let one = encoded_len(&files[0]);
        let parts = split_files(files.clone(), one * 10);
        assert!(parts.len() >= 10, "{}", parts.len());
        for part in &parts {
            assert!(!part.is_empty());
            assert!(encoded_len(part) <= one * 10 + 8, "{}", encoded_len(part));
        }
        assert_eq!(parts.concat(), files);
        assert_eq!(split_files(files.clone(), usize::MAX), vec![files]);
        // A file larger than the budget still travels, alone.
        assert_eq!(
            split_files(
                vec![NewFile {
                    remote_name: "https://h/x".into(),
                    local_name: "/x".into(),
                    ranges: None,
                }],
                1
            )
            .len(),
            1
        );
        assert_eq!(split_files(Vec::new(), 10), vec![Vec::<NewFile>::new()]);
    }

    #[test]
    fn the_mismatch_error_names_both_versions() {
        let error = version_mismatch(1, 2);
        assert_eq!(error.hresult, hresult::QM_E_SERVICE_UNAVAILABLE);
        assert!(error.description.contains("version 1"), "{error}");
        assert!(error.description.contains("version 2"), "{error}");
    }
}
