//! The BITS job state machine as one explicit transition function.
//!
//! Every (state, event) pair has an answer: the next state with the HRESULT the call
//! returns, a refusal with the exact HRESULT Windows gives, or "stale" for an engine or
//! timer event that arrives after the job already moved on (a progress report racing a
//! Suspend, say). The rows follow `reference/state-machine.md` §2 and the cells DESIGN.md
//! "Decisions" settles.

use crate::hresult::{self, HResult};
use crate::raw::raw_enum;

raw_enum! {
    /// `BG_JOB_STATE`; discriminants are the values of bits.h.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum JobState {
        Queued = 0,
        Connecting = 1,
        Transferring = 2,
        Suspended = 3,
        Error = 4,
        TransientError = 5,
        Transferred = 6,
        Acknowledged = 7,
        Cancelled = 8,
    }
}

impl JobState {
    /// ACKNOWLEDGED and CANCELLED: the job has left the queue and nothing changes it again.
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Acknowledged | Self::Cancelled)
    }

    /// The states in which the engine is (or should be) moving the job's bytes.
    pub const fn is_active(self) -> bool {
        matches!(self, Self::Connecting | Self::Transferring)
    }

    /// QUEUED, CONNECTING and TRANSFERRING: the job runs or will as soon as it gets a
    /// transfer slot — the jobs the scheduler considers (see [`JobState::is_active`] for
    /// the ones holding a slot).
    pub const fn is_runnable(self) -> bool {
        matches!(self, Self::Queued | Self::Connecting | Self::Transferring)
    }

    /// The name bitsadmin and the CLI print (`TRANSIENT_ERROR`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Connecting => "CONNECTING",
            Self::Transferring => "TRANSFERRING",
            Self::Suspended => "SUSPENDED",
            Self::Error => "ERROR",
            Self::TransientError => "TRANSIENT_ERROR",
            Self::Transferred => "TRANSFERRED",
            Self::Acknowledged => "ACKNOWLEDGED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

raw_enum! {
    /// `BG_JOB_TYPE`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum JobType {
        Download = 0,
        Upload = 1,
        UploadReply = 2,
    }
}

impl JobType {
    pub const fn is_upload(self) -> bool {
        !matches!(self, Self::Download)
    }
}

/// What happens to a job: a call from its owner, or something the engine or a timer saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    // Calls.
    Resume,
    Suspend,
    Cancel,
    Complete,
    /// A file was added (AddFile, AddFileSet, AddFileWithRanges).
    AddFile,
    /// TakeOwnership or any other change of owner.
    ChangeOwner,
    /// IBackgroundCopyFile3::SetValidationState(FALSE) on a transferred file: the job stops in
    /// ERROR with BG_E_VALIDATION_FAILED, whatever it was doing.
    ValidationFailed,
    // Engine and scheduler.
    /// The scheduler gave the job a transfer slot.
    TransferStarted,
    /// Bytes arrived (or the server answered and the body started).
    Progress,
    /// One file finished and others remain.
    FileDone,
    /// The last file finished.
    AllDone,
    /// A recoverable failure (connection reset, 503 …).
    TransientError,
    /// A failure retrying cannot fix (404, disk full …).
    PermanentError,
    /// The job's time slice ended, or a job of higher priority took its slot.
    SliceEnded,
    // Timers.
    RetryTimerFired,
    NoProgressTimeout,
}

impl Event {
    pub const ALL: [Event; 16] = [
        Self::Resume,
        Self::Suspend,
        Self::Cancel,
        Self::Complete,
        Self::AddFile,
        Self::ChangeOwner,
        Self::ValidationFailed,
        Self::TransferStarted,
        Self::Progress,
        Self::FileDone,
        Self::AllDone,
        Self::TransientError,
        Self::PermanentError,
        Self::SliceEnded,
        Self::RetryTimerFired,
        Self::NoProgressTimeout,
    ];

    /// Calls have an HRESULT to return; engine and timer events do not.
    pub const fn is_call(self) -> bool {
        matches!(
            self,
            Self::Resume
                | Self::Suspend
                | Self::Cancel
                | Self::Complete
                | Self::AddFile
                | Self::ChangeOwner
                | Self::ValidationFailed
        )
    }
}

/// The facts about a job, besides its state, that decide a transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    pub job_type: JobType,
    /// Files in the job (before the event: AddFile counts the file being added as not yet there).
    pub files: u32,
    /// Files whose transfer finished.
    pub files_done: u32,
    /// No retry is left: NoProgressTimeout is 0, shorter than MinimumRetryDelay, or already
    /// exceeded. A transient error then ends in ERROR at once.
    pub retries_exhausted: bool,
}

impl Facts {
    pub const fn all_done(&self) -> bool {
        self.files > 0 && self.files_done >= self.files
    }
}

/// The answer of the state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The event applies: the job is now in `next` (possibly unchanged); a call returns `code`.
    Apply { next: JobState, code: HResult },
    /// A call refused with this HRESULT; nothing changes.
    Refuse(HResult),
    /// An engine or timer event that no longer applies; drop it.
    Stale,
}

const fn to(next: JobState) -> Outcome {
    Outcome::Apply {
        next,
        code: hresult::S_OK,
    }
}

/// The transition function. Pure: the caller applies the outcome.
pub fn transition(state: JobState, event: Event, facts: &Facts) -> Outcome {
    use JobState as S;

    if state.is_final() {
        return if event.is_call() {
            Outcome::Refuse(hresult::BG_E_INVALID_STATE)
        } else {
            Outcome::Stale
        };
    }
    match event {
        Event::Resume => {
            if facts.files == 0 {
                Outcome::Refuse(hresult::BG_E_EMPTY)
            } else if facts.all_done() {
                // Decisions: Resume when every file is transferred answers S_OK and the job is
                // (or stays) TRANSFERRED, so TRANSFERRED always means every file is done.
                to(S::Transferred)
            } else if state.is_active() || state == S::Queued {
                // Resume on an active job leaves it as it is (MS Learn "Life cycle of a BITS job").
                to(state)
            } else {
                // SUSPENDED, ERROR and TRANSIENT_ERROR (the latter skipping the rest of its delay).
                to(S::Queued)
            }
        }
        // Suspend is allowed in every non-final state, TRANSFERRED included (Decisions).
        Event::Suspend => to(S::Suspended),
        Event::Cancel => to(S::Cancelled),
        Event::Complete => {
            if facts.job_type.is_upload() {
                // Upload files are committed on the server; Complete only acknowledges that.
                if state == S::Transferred {
                    to(S::Acknowledged)
                } else {
                    Outcome::Refuse(hresult::BG_E_INVALID_STATE)
                }
            } else if facts.files_done < facts.files {
                // Finished files are kept, the rest discarded (IBackgroundCopyJob::Complete).
                Outcome::Apply {
                    next: S::Acknowledged,
                    code: hresult::BG_S_PARTIAL_COMPLETE,
                }
            } else {
                to(S::Acknowledged)
            }
        }
        Event::AddFile => {
            if facts.job_type.is_upload() && facts.files >= 1 {
                Outcome::Refuse(hresult::BG_E_TOO_MANY_FILES)
            } else if state == S::Transferred {
                // Decisions: the new file waits for Resume; TRANSFERRED would be a lie.
                to(S::Suspended)
            } else {
                to(state)
            }
        }
        Event::ChangeOwner => to(state),
        Event::ValidationFailed => to(S::Error),
        Event::TransferStarted => match state {
            S::Queued => to(S::Connecting),
            _ => Outcome::Stale,
        },
        Event::Progress | Event::FileDone => match state {
            S::Connecting | S::Transferring => to(S::Transferring),
            _ => Outcome::Stale,
        },
        Event::AllDone => match state {
            S::Connecting | S::Transferring => to(S::Transferred),
            _ => Outcome::Stale,
        },
        Event::TransientError => match state {
            S::Connecting | S::Transferring if facts.retries_exhausted => to(S::Error),
            S::Connecting | S::Transferring => to(S::TransientError),
            _ => Outcome::Stale,
        },
        Event::PermanentError => match state {
            S::Connecting | S::Transferring => to(S::Error),
            _ => Outcome::Stale,
        },
        Event::SliceEnded => match state {
            S::Connecting | S::Transferring => to(S::Queued),
            _ => Outcome::Stale,
        },
        Event::RetryTimerFired => match state {
            S::TransientError => to(S::Queued),
            _ => Outcome::Stale,
        },
        Event::NoProgressTimeout => match state {
            S::TransientError => to(S::Error),
            _ => Outcome::Stale,
        },
    }
}
