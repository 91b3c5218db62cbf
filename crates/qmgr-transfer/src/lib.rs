//! qmgr's transfer engine: one thread driving libcurl's multi interface.
//!
//! Callers submit [`TransferRequest`]s to an [`Engine`] and receive [`EngineEvent`]s. The
//! engine downloads over http, https, ftp, ftps and file into a private temporary file
//! beside the destination, continues partial files with validated range requests, sorts
//! failures into transient and permanent ones with their BITS HRESULTs, and shares a
//! bandwidth cap among throttled transfers. It knows nothing of jobs, COM or the store:
//! the service decides what to retry and calls [`finalize`] or [`discard`] on the files.

mod attempt;
mod buffered_file;
mod credential_bytes;
mod durable;
mod engine;
mod error;
mod event;
mod files;
mod ftp_info;
mod handle;
mod http_date;
mod idle;
mod lanes;
mod outbox;
mod priority_limit;
mod quick_ack;
mod request;
mod response;
mod server_certificate;
mod sink;
mod source;
mod throttle;
mod tls;
pub mod upload;
#[cfg(test)]
mod validation_fuzz;
mod worker;

pub use engine::{Engine, EngineConfig, IdleStatuses, UploadPhase, UploadRequest};
pub use error::{TransferError, hresult_for_io};
pub use event::{EngineEvent, RestartReason};
pub use files::{
    Finalizer, Overwrite, TempNames, discard, finalize, is_temp_name, new_temp_path, place_spans,
    sync_partial,
};
pub use lanes::Lane;
pub use priority_limit::PriorityClass;
pub use request::{
    ClientCertificate, IgnoredCertificateErrors, PartialFile, ProxyChoice, Security, TransferId,
    TransferRequest, Validator,
};
pub use server_certificate::{ServerCertificate, fetch_server_certificate};
pub use source::{Scheme, same_origin};
