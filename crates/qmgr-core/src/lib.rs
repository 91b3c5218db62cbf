//! qmgr's domain: jobs, files and legacy groups, the BITS job state machine, the scheduling
//! policy, the crash-safe SQLite store, configuration, and the HRESULT-bearing error type.
//!
//! Nothing here does I/O on the network or knows about COM; the transfer engine, the
//! service and the C ABI build on these types.

#![forbid(unsafe_code)]

pub mod certificate;
pub mod config;
pub mod credentials;
pub mod error;
pub mod file;
pub mod group;
pub mod guid;
pub mod hresult;
pub mod idle;
pub mod instance;
pub mod job;
pub mod on_demand;
pub mod passwd;
pub mod paths;
pub mod policy;
pub mod ranges;
mod raw;
pub mod reply;
pub mod schedule;
pub mod service;
pub mod state;
pub mod store;
pub mod time;
pub mod trust;

pub use error::{ErrorContext, QmgrError, Result};
pub use file::{FileRecord, Validator};
pub use group::Group;
pub use guid::Guid;
pub use hresult::HResult;
pub use job::{Job, JobError, JobPriority, JobProgress, JobSettings};
pub use state::{Event, Facts, JobState, JobType, Outcome};
pub use time::Timestamp;
