//! Use qmgr — the Background Intelligent Transfer Service for Linux — from Rust.
//!
//! qmgr is a per-user queue of background transfers: a program hands it downloads (or
//! uploads), may exit, and the transfers finish anyway, resuming after crashes and
//! reboots, retrying through network trouble and yielding bandwidth to the user. This
//! crate is its client API:
//!
//! - [`Manager`] reaches a queue: the user's `qmgrd` ([`Manager::connect`], started on
//!   demand), another instance's ([`Manager::connect_to`] with an [`Instance`],
//!   [`Manager::connect_socket`]), or one hosted inside the program
//!   ([`Manager::in_process`], crate feature `in-process`, on by default).
//! - [`Manager::new_job`] describes a job ([`JobBuilder`]: type, priority, description,
//!   files) and creates it; [`Job`] adds files, changes settings, resumes, suspends,
//!   cancels and completes it, and reads its [`Status`], [`Progress`] and [`JobInfo`].
//! - [`Job::watch`] follows a job as an iterator of its status until it is transferred,
//!   fails or leaves the queue, woken by the service's notifications; [`Job::wait`] does
//!   the same with a callback.
//! - Every failure is an [`Error`] carrying the HRESULT a C program would get (with its
//!   name, such as `BG_E_NOT_FOUND`), the service's description and what was being done.
//!
//! A download, start to finish (here with a queue hosted in the program, so the example
//! runs anywhere; a program would usually call [`Manager::connect`]):
//!
//! ```
//! use qmgr_client::{Instance, JobState, Manager};
//!
//! # let dir = tempfile::tempdir()?;
//! # let source = dir.path().join("report.csv");
//! # std::fs::write(&source, "a,b\n1,2\n")?;
//! # let instance = Instance::isolated(dir.path().join("queue"));
//! # let destination = dir.path().join("copy.csv");
//! # let url = format!("file://{}", source.display());
//! let manager = Manager::in_process(&instance)?;
//! let job = manager.new_job("report").file(&url, &destination).create()?;
//! job.resume()?;
//! let last = job.wait(|status| eprintln!("{status}"))?;
//! assert_eq!(last.state, JobState::Transferred);
//! job.complete()?; // the file appears under its name only now
//! assert_eq!(std::fs::read(&destination)?, b"a,b\n1,2\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Files are written under temporary names and renamed into place by
//! [`Job::complete`] (or by the service itself, with [`JobBuilder::auto_complete`]). A
//! job stays in the queue until it is completed or cancelled, whether or not the program
//! that made it still runs: [`Manager::jobs`] and [`Manager::job`] find it again.
//!
//! Without the `in-process` feature (`default-features = false`) the crate is a thin
//! client of qmgrd and does not build the transfer engine.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod job;
mod manager;
mod watch;

pub use error::{Error, Result};
pub use job::{FileInfo, Job, JobBuilder, JobInfo, NotifyFlags, Progress, Status};
pub use manager::{Instance, Manager};
pub use watch::{DEFAULT_PROGRESS_INTERVAL, Watch};

/// The crate's README, whose example must compile (it is not run: it talks to the user's
/// own qmgrd).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;

/// Where an error happened (`BG_ERROR_CONTEXT`).
pub use qmgr_core::ErrorContext;
/// A job's id: a GUID, shown and parsed as `{01234567-89AB-CDEF-0123-456789ABCDEF}`.
pub use qmgr_core::Guid;
/// An HRESULT, with its name ([`HResult::name`]) and number ([`HResult::bits`]).
pub use qmgr_core::HResult;
/// A job's priority (`BG_JOB_PRIORITY`).
pub use qmgr_core::JobPriority;
/// A job's state (`BG_JOB_STATE`).
pub use qmgr_core::JobState;
/// Download, upload or upload-reply (`BG_JOB_TYPE`).
pub use qmgr_core::JobType;
/// The HRESULT constants (`BG_E_NOT_FOUND`, `E_INVALIDARG` …) to compare
/// [`Error::hresult`] with.
pub use qmgr_core::hresult;
/// How the service completes a job by itself ([`JobBuilder::auto_complete`]).
pub use qmgr_core::job::AutoComplete;
