//! The service API: the one vocabulary in which the C ABI, the CLI and Rust programs talk to
//! the queue, whether the queue lives in `qmgrd` (reached over a socket by `qmgr-ipc`) or in
//! the calling process (`qmgr-service`). Callers cannot tell the two apart except by latency.
//!
//! Requests and answers are plain data so they cross the socket unchanged; [`QueueServiceExt`]
//! gives them typed methods. The caller's identity is not part of a request: it belongs to
//! the connection (the daemon reads it with `SO_PEERCRED`).

use std::sync::mpsc::Receiver;
use std::time::Duration;

use crate::certificate::ClientCertificate;
use crate::credentials::{AuthScheme, AuthTarget, Credential};
use crate::error::{QmgrError, Result};
use crate::file::FileRecord;
use crate::group::Group;
use crate::guid::Guid;
use crate::hresult::{self, HResult};
use crate::idle::IdleView;
use crate::job::{AutoComplete, Job, JobPriority, JobProgress, NotifyCommand, ProxySettings};
use crate::policy::{CostSource, MeteredSetting, PriorityCaps};
use crate::ranges::FileRange;
use crate::reply::ReplyData;
use crate::state::{JobState, JobType};
use crate::time::Timestamp;

/// Version of the request/answer vocabulary; the IPC handshake compares it.
/// 2: listings come in pages (`ListJobs`/`ListGroups` take a cursor, answer a page).
/// 3: job summaries without the file list (`GetJobSummary`, `ListJobSummaries`), a job's files a page at a time
/// (`GetJobFiles`), and AddFiles sent in parts (see `qmgr-ipc`).
/// 4: `GetFileResponseHeaders` answered with `Text`; job changes for MaximumDownloadTime, the
/// notification interval, the HTTP method, DYNAMIC_CONTENT and HIGH_PERFORMANCE.
/// 5: byte ranges (AddFileWithRanges): `NewFile::ranges` and `FileRecord::ranges`; the
/// `ValidationState` job change and `FileRecord::validated`;
/// write-only custom headers (`JobChange::MakeCustomHeadersWriteOnly`) and server
/// certificate checks (`SetCertificateValidator`, `GetCertificateCheck`,
/// `CertificateVerdict`, `NotificationKind::CertificateCheck`).
/// 6: on-demand files (ON_DEMAND_MODE): `JobSettings::on_demand`, `JobChange::OnDemand`,
/// `FileRecord::on_demand`, `RequestFileRanges`, `UpdateDownloadPosition` and
/// `NotificationKind::FileRangesTransferred`; upload jobs
/// (`FileRecord::upload`, the engine's upload steps).
/// 7: upload-reply jobs: `Job::reply`, `JobChange::ReplyFileName`, `GetReplyData`
/// answered with `ReplyData`.
/// 8: idle mode: `JobView::idle` and `JobSummary::idle`.
/// 9: transfer policy: `JobSettings::cost_flags` and `idle_mode` (`JobChange::CostFlags`,
/// `JobChange::IdleMode`), `WaitReason::Metered`, the effective cost flags in views,
/// `GetPolicy` answered with `Policy`.
pub const PROTOCOL_VERSION: u32 = 9;

/// The most file records a [`JobSummary`] carries in `active_files`: the files being
/// transferred (at most the job's ParallelFiles, itself at most 64), then partly
/// transferred ones while room is left. Keeps a summary small whatever the job's size.
pub const MAX_ACTIVE_FILES: usize = 64;

/// The size a page of a listing stays under, as encoded on the wire (it always holds at
/// least one item). With the limits on names, files and settings, one job fits a frame;
/// pages make any number of jobs fit.
pub const LIST_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// Where a listing continues: the position of the last item sent. Items are ordered by
/// `(key, id)`: creation order for jobs, creation time for groups. Items created or removed
/// between two pages appear or vanish as they would in a later listing; none repeats. A
/// cursor belongs to the service run that made it: job positions are numbered afresh when
/// qmgrd starts, so a listing that spans a restart of qmgrd may miss jobs.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ListCursor {
    pub key: i64,
    pub id: Guid,
}

/// A file to add: where it comes from and the absolute path it gets on Complete.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewFile {
    pub remote_name: String,
    pub local_name: String,
    /// AddFileWithRanges' byte ranges of the remote file, in the order the local file holds
    /// them (`None`: the whole file; `Some` of none is refused with `E_INVALIDARG`).
    pub ranges: Option<Vec<FileRange>>,
}

impl NewFile {
    /// The whole of `remote_name`, to be kept as `local_name`.
    pub fn whole(remote_name: impl Into<String>, local_name: impl Into<String>) -> Self {
        Self {
            remote_name: remote_name.into(),
            local_name: local_name.into(),
            ranges: None,
        }
    }
}

/// A change to one property of a job.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum JobChange {
    DisplayName(String),
    Description(String),
    Priority(JobPriority),
    MinimumRetryDelay(Duration),
    NoProgressTimeout(Duration),
    NotifyFlags(u32),
    NotifyCommand(Option<NotifyCommand>),
    Proxy(ProxySettings),
    /// CRLF-separated header lines; `None` removes them.
    CustomHeaders(Option<String>),
    SecurityFlags(u32),
    MaxDownloadSize(Option<u64>),
    ParallelFiles(u32),
    /// A bandwidth cap for this job alone, in bytes per second (a qmgr extension; `None`
    /// removes it). It applies at any priority, FOREGROUND included.
    BandwidthLimit(Option<u64>),
    /// The certificate for TLS client authentication; `None` removes it. The store name
    /// must name a directory under the certs directory (`E_INVALIDARG` otherwise); the
    /// certificate itself is looked up when a transfer starts.
    ClientCertificate(Option<ClientCertificate>),
    /// Whether and how the service completes the job itself when it reaches TRANSFERRED
    /// (a qmgr extension; `None` waits for Complete, as on Windows).
    AutoComplete(Option<AutoComplete>),
    /// Interactive retries (a qmgr extension): the first retry after this delay, doubling up
    /// to MinimumRetryDelay; `None` retries after MinimumRetryDelay each time, as Windows.
    FirstRetryDelay(Option<Duration>),
    /// IBackgroundCopyJob2::SetCredentials (the password goes to the service and never
    /// comes back in any answer).
    Credentials(Credential),
    /// IBackgroundCopyJob2::RemoveCredentials: `S_FALSE` when none were set.
    RemoveCredentials {
        target: AuthTarget,
        scheme: AuthScheme,
    },
    /// Job5 USE_STORED_CREDENTIALS (server): credentials from the user's `~/.netrc`.
    UseStoredCredentials(bool),
    /// IBackgroundCopyFile2::SetRemoteName.
    RemoteName {
        file: u32,
        remote_name: String,
    },
    /// IBackgroundCopyFile3::SetValidationState: `E_PENDING` until the file is transferred;
    /// `valid == false` puts the job in ERROR (BG_E_VALIDATION_FAILED) and the file back to
    /// nothing transferred.
    ValidationState {
        file: u32,
        valid: bool,
    },
    /// IBackgroundCopyJob4::SetMaximumDownloadTime (zero: no limit).
    MaximumDownloadTime(Duration),
    /// IBackgroundCopyJob2::SetReplyFileName (`None`: a name the service makes).
    ReplyFileName(Option<String>),
    /// Job5 MINIMUM_NOTIFICATION_INTERVAL_MS: JobModification callbacks at most this often.
    MinimumNotificationInterval(Duration),
    /// IBackgroundCopyJobHttpOptions2::SetHttpMethod.
    HttpMethod(String),
    /// Job5 DYNAMIC_CONTENT.
    DynamicContent(bool),
    /// Job5 HIGH_PERFORMANCE.
    HighPerformance(bool),
    /// IBackgroundCopyJobHttpOptions3::MakeCustomHeadersWriteOnly (one way).
    MakeCustomHeadersWriteOnly,
    /// Job5 ON_DEMAND_MODE.
    OnDemand(bool),
    /// Job5 COST_FLAGS (`None`: back to the priority's default).
    CostFlags(Option<u32>),
    /// Idle mode for this job (a qmgr extension).
    IdleMode(bool),
}

/// A change to one property of a legacy group.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GroupChange {
    DisplayName(String),
    Description(String),
    NotifyFlags(u32),
    NotifyClsid(Option<Guid>),
}

/// Everything a client can ask of the queue.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Request {
    Ping,
    CreateJob {
        display_name: String,
        job_type: JobType,
        /// The caller's umask (see [`crate::file::process_umask`]): the job's files get
        /// mode `0666 & !umask` on Complete. `None`: 022.
        umask: Option<u32>,
    },
    GetJob {
        job: Guid,
    },
    /// The caller's jobs, or every user's (administrators only: `E_ACCESSDENIED` otherwise),
    /// one page from just after `after` (from the start when `None`); see [`LIST_PAGE_BYTES`].
    ListJobs {
        all_users: bool,
        after: Option<ListCursor>,
    },
    /// The job without its file list: what a watcher needs, the same size for a job of one
    /// file and of a million (see [`JobSummary`]).
    GetJobSummary {
        job: Guid,
    },
    /// The caller's jobs as summaries (see [`JobSummary`]), one page at a time as ListJobs:
    /// a listing whose size does not grow with the jobs' files.
    ListJobSummaries {
        all_users: bool,
        after: Option<ListCursor>,
    },
    /// The job's file records from index `start` on, as many as fit [`LIST_PAGE_BYTES`]
    /// (at least one while any are left) and at most `max` if given; see
    /// [`Response::FilePage`].
    GetJobFiles {
        job: Guid,
        start: u32,
        max: Option<u32>,
    },
    AddFiles {
        job: Guid,
        files: Vec<NewFile>,
    },
    Resume {
        job: Guid,
    },
    Suspend {
        job: Guid,
    },
    Cancel {
        job: Guid,
    },
    Complete {
        job: Guid,
    },
    /// Complete, but refuse to replace an existing destination (RENAME_NOREPLACE): the job
    /// then stays as it was, as after any failed rename.
    CompleteWithoutReplacing {
        job: Guid,
    },
    TakeOwnership {
        job: Guid,
    },
    SetJob {
        job: Guid,
        change: JobChange,
    },
    CreateGroup {
        group: Guid,
    },
    GetGroup {
        group: Guid,
    },
    /// The caller's legacy groups (every user's, for root), one page at a time as ListJobs.
    ListGroups {
        after: Option<ListCursor>,
    },
    /// IBackgroundCopyGroup::CreateJob: the group's one job, with the caller's GUID.
    CreateGroupJob {
        group: Guid,
        job: Guid,
        /// As for [`Request::CreateJob`].
        umask: Option<u32>,
    },
    SetGroup {
        group: Guid,
        change: GroupChange,
    },
    ResumeGroup {
        group: Guid,
    },
    SuspendGroup {
        group: Guid,
    },
    CancelGroup {
        group: Guid,
    },
    SwitchGroupToForeground {
        group: Guid,
    },
    /// The raw head of the last HTTP response for file `file` of the job (File5's
    /// HTTP_RESPONSE_HEADERS); [`Response::Text`] `None` before any response.
    GetFileResponseHeaders {
        job: Guid,
        file: u32,
    },
    /// IBackgroundCopyJob2::GetReplyData: an upload-reply job's reply, in TRANSFERRED
    /// (`BG_E_INVALID_STATE` before), answered with [`Response::ReplyData`]; `E_NOTIMPL`
    /// for other job types.
    GetReplyData {
        job: Guid,
    },
    /// IBackgroundCopyJobHttpOptions3::SetServerCertificateValidationInterface: the client
    /// process `client` (its pid) validates the servers' certificates of the job's https
    /// files from now on (`None`: nobody does). Kept in memory only, as Windows keeps no
    /// record of the interface: a restart of the service forgets it.
    /// `BG_E_READ_ONLY_WHEN_JOB_ACTIVE` while the job is queued or transferring.
    SetCertificateValidator {
        job: Guid,
        client: Option<u32>,
    },
    /// The certificates of a check announced with [`NotificationKind::CertificateCheck`];
    /// answered with [`Response::CertificateCheck`] while the check waits for its verdict.
    GetCertificateCheck {
        job: Guid,
        check: u64,
    },
    /// The validator's verdict on a check: success lets the transfer go on, pinned to the
    /// certificate's public key; a failure code stops the job with it.
    CertificateVerdict {
        job: Guid,
        check: u64,
        verdict: HResult,
    },
    /// IBackgroundCopyFile6::RequestFileRanges: fetch these bytes of file `file` first (for
    /// an ON_DEMAND_MODE job: only these). `BG_E_INVALID_RANGE` for a range beyond the
    /// file's size once it is known; `BG_E_RANDOM_ACCESS_NOT_SUPPORTED` for a job or file
    /// that cannot be downloaded in ranges.
    RequestFileRanges {
        job: Guid,
        file: u32,
        ranges: Vec<FileRange>,
    },
    /// IBackgroundCopyFile6::UpdateDownloadPosition: the application reads from `offset`
    /// on, so the missing bytes from there are fetched first.
    UpdateDownloadPosition {
        job: Guid,
        file: u32,
        offset: u64,
    },
    /// The transfer policy in effect: the network's cost, the schedule's caps now and
    /// next, idle mode; answered with [`Response::Policy`].
    GetPolicy,
}

/// The transfer policy in effect (`qmgr policy`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PolicyView {
    /// `BITS_COST_STATE_UNRESTRICTED` (0x1) or `BITS_COST_STATE_USAGE_BASED` (0x40).
    pub cost_state: u32,
    /// Where the cost state came from.
    pub cost_source: CostSource,
    /// The config's `metered` setting.
    pub metered: MeteredSetting,
    /// The machine's local time the schedule was read at (`fri 12:30`).
    pub local_time: String,
    /// The schedule's caps now.
    pub caps: PriorityCaps,
    /// The window they come from (`mon,tue,wed,thu,fri 08:00-17:00, line 4`), `None`
    /// outside every window.
    pub window: Option<String>,
    /// The next change of the caps.
    pub next: Option<PolicyChange>,
    /// The global `bandwidth_limit`, which applies beside the schedule's caps.
    pub bandwidth_limit: Option<u64>,
    pub idle_mode: bool,
    pub idle_target: Duration,
}

/// A coming change of the schedule's caps.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PolicyChange {
    pub at: Timestamp,
    /// The same moment in the machine's local week (`fri 17:00`).
    pub local_time: String,
    pub caps: PriorityCaps,
    pub window: Option<String>,
}

/// A server certificate waiting for the job's validator.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CertificateCheck {
    /// The file whose transfer waits.
    pub file: u32,
    /// The server's certificate, DER.
    pub certificate: Vec<u8>,
    /// The chain the server sent, leaf first, each certificate DER, one after another.
    pub chain: Vec<u8>,
}

/// Why a job is not moving bytes right now.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WaitReason {
    /// Suspended by its owner (every new job starts here).
    Suspended,
    /// Waiting for a transfer slot behind this many jobs.
    WaitingForSlot { ahead: u32 },
    /// Retrying at `at` after a transient error; `server_asked` when the server's
    /// `Retry-After` set that time (it asked for longer than MinimumRetryDelay).
    RetryAt { at: Timestamp, server_asked: bool },
    /// Retrying when the network is back: the last attempt failed in the transport and the
    /// machine has no default route.
    NoNetwork,
    /// Moving, but held to this many bytes per second by a bandwidth cap (the job's own, or
    /// the global `bandwidth_limit` for background jobs).
    Throttled { bytes_per_second: u64 },
    /// Stopped by an error that retrying will not fix.
    Failed,
    /// Every file is transferred; waiting for Complete.
    AwaitingComplete,
    /// Waiting for the network's cost to fall: it is metered and the job's COST_FLAGS do
    /// not allow that (`cost_state` is the state now).
    Metered { cost_state: u32 },
    /// Every file is transferred, but the service could not complete the job it was to
    /// complete itself (auto-complete): renaming failed for this reason. The job waits for
    /// a Complete or a Cancel.
    CompleteFailed { error: QmgrError },
}

/// One attempt to transfer a file, for "why is it not moving?".
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attempt {
    pub at: Timestamp,
    pub file: u32,
    pub http_status: Option<u16>,
    /// Bytes moved by this attempt.
    pub bytes: u64,
    pub error: Option<QmgrError>,
    /// Why this attempt dropped the bytes held and started the file over from zero (the
    /// server's answer did not continue them), if it did.
    #[serde(default)]
    pub restart: Option<String>,
}

/// A job as clients see it: its data, plus why it is not moving and its recent attempts.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobView {
    pub job: Job,
    pub waiting: Option<WaitReason>,
    pub attempts: Vec<Attempt>,
    /// What idle mode is doing for one of its transfers, while a background job runs.
    pub idle: Option<IdleView>,
}

/// One file record with its index in the job.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IndexedFile {
    pub index: u32,
    pub file: FileRecord,
}

/// A job as a watcher sees it, without its file list: its size does not grow with the
/// number of files.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobSummary {
    /// The job's data with `files` left empty: `progress` and `active_files` stand for
    /// them (so `job.progress()` says nothing here).
    pub job: Job,
    /// The totals of all the job's files, as [`Job::progress`] gives them.
    pub progress: JobProgress,
    /// The files moving now, then partly transferred ones, in index order, at most
    /// [`MAX_ACTIVE_FILES`].
    pub active_files: Vec<IndexedFile>,
    pub waiting: Option<WaitReason>,
    pub attempts: Vec<Attempt>,
    /// What idle mode is doing for one of its transfers, while a background job runs.
    pub idle: Option<IdleView>,
}

/// A legacy group and its job.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupView {
    pub group: Group,
    pub job: Option<JobView>,
}

/// The answer to a request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Response {
    /// The request was carried out; the success code to return (S_OK, BG_S_PARTIAL_COMPLETE …).
    Done(HResult),
    Pong {
        service_version: String,
    },
    JobCreated(Guid),
    Job(Box<JobView>),
    /// A page of a job listing; `next` is the cursor for the next page, `None` after the last.
    JobPage {
        jobs: Vec<JobView>,
        next: Option<ListCursor>,
    },
    Group(Box<GroupView>),
    JobSummary(Box<JobSummary>),
    /// A page of a summary listing, as [`Response::JobPage`].
    SummaryPage {
        jobs: Vec<JobSummary>,
        next: Option<ListCursor>,
    },
    /// A page of a job's files: the records from index `start` on; `total` is how many
    /// files the job has (the next page starts at `start + files.len()` while that is less).
    FilePage {
        start: u32,
        files: Vec<FileRecord>,
        total: u32,
    },
    /// A page of a group listing, as [`Response::JobPage`].
    GroupPage {
        groups: Vec<GroupView>,
        next: Option<ListCursor>,
    },
    /// A text the service keeps, or none.
    Text(Option<String>),
    ReplyData(ReplyData),
    CertificateCheck(Box<CertificateCheck>),
    Policy(Box<PolicyView>),
}

/// What a notification is about.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NotificationKind {
    /// The job reached TRANSFERRED (IBackgroundCopyCallback::JobTransferred).
    Transferred,
    /// The job reached ERROR (IBackgroundCopyCallback::JobError).
    Error,
    /// Any change of state or progress (IBackgroundCopyCallback::JobModification).
    Modification,
    /// One file finished (IBackgroundCopyCallback2::FileTransferred).
    FileTransferred { file: u32 },
    /// A server's certificate waits for the verdict of the job's validator, the client
    /// process `client` (ValidateServerCertificate); other processes pass it over.
    CertificateCheck { check: u64, file: u32, client: u32 },
    /// Requested ranges of an on-demand file arrived
    /// (IBackgroundCopyCallback3::FileRangesTransferred), ordered by offset.
    FileRangesTransferred { file: u32, ranges: Vec<FileRange> },
}

/// An event pushed to subscribers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Notification {
    pub job: Guid,
    pub kind: NotificationKind,
    pub state: JobState,
}

impl Notification {
    /// Whether it tells of a job that is not moving: TRANSFERRED, in error, suspended,
    /// completed or cancelled. A watcher acts on such news at once; news of a moving job
    /// (its progress, its files finishing) can wait to be gathered.
    pub fn job_stopped(&self) -> bool {
        !matches!(
            self.state,
            JobState::Queued | JobState::Connecting | JobState::Transferring
        )
    }
}

/// The queue, as every client layer sees it.
pub trait QueueService: Send + Sync {
    /// Carries out one request.
    fn execute(&self, request: Request) -> Result<Response>;

    /// Starts receiving notifications about the caller's jobs. Each call opens a new stream;
    /// dropping the receiver ends it.
    fn subscribe(&self) -> Result<Receiver<Notification>>;

    /// The uid the service carries out this caller's requests as, when the service knows
    /// it: root (0) may reach other users' queues as an administrator.
    fn caller_uid(&self) -> Option<u32> {
        None
    }
}

fn unexpected(request: &str, response: &Response) -> QmgrError {
    QmgrError::internal(format!("the service answered {request} with {response:?}"))
}

/// Typed methods over [`QueueService::execute`].
pub trait QueueServiceExt: QueueService {
    fn create_job(&self, display_name: &str, job_type: JobType) -> Result<Guid> {
        match self.execute(Request::CreateJob {
            display_name: display_name.to_owned(),
            job_type,
            umask: crate::file::process_umask(),
        })? {
            Response::JobCreated(id) => Ok(id),
            other => Err(unexpected("CreateJob", &other)),
        }
    }

    /// The transfer policy in effect.
    fn policy(&self) -> Result<PolicyView> {
        match self.execute(Request::GetPolicy)? {
            Response::Policy(view) => Ok(*view),
            other => Err(unexpected("GetPolicy", &other)),
        }
    }

    fn job(&self, job: Guid) -> Result<JobView> {
        match self.execute(Request::GetJob { job })? {
            Response::Job(view) => Ok(*view),
            other => Err(unexpected("GetJob", &other)),
        }
    }

    /// Every page of the job listing, concatenated.
    fn jobs(&self, all_users: bool) -> Result<Vec<JobView>> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            match self.execute(Request::ListJobs { all_users, after })? {
                Response::JobPage { jobs, next } => {
                    all.extend(jobs);
                    match advance(after, next, "ListJobs")? {
                        Some(cursor) => after = Some(cursor),
                        None => return Ok(all),
                    }
                }
                other => return Err(unexpected("ListJobs", &other)),
            }
        }
    }

    /// The job without its file list (see [`JobSummary`]).
    fn job_summary(&self, job: Guid) -> Result<JobSummary> {
        match self.execute(Request::GetJobSummary { job })? {
            Response::JobSummary(summary) => Ok(*summary),
            other => Err(unexpected("GetJobSummary", &other)),
        }
    }

    /// Every page of the summary listing, concatenated.
    fn job_summaries(&self, all_users: bool) -> Result<Vec<JobSummary>> {
        let mut all = Vec::new();
        self.job_summary_pages(all_users, |page| {
            all.extend(page);
            Ok(())
        })?;
        Ok(all)
    }

    /// The summaries of [`QueueServiceExt::job_summaries`] handed to `each` a page at a
    /// time, so a caller that keeps less than the summaries (a count, table rows) never
    /// holds them all. An error from `each` stops the listing and is returned.
    fn job_summary_pages(
        &self,
        all_users: bool,
        mut each: impl FnMut(Vec<JobSummary>) -> Result<()>,
    ) -> Result<()> {
        let mut after = None;
        loop {
            match self.execute(Request::ListJobSummaries { all_users, after })? {
                Response::SummaryPage { jobs, next } => {
                    each(jobs)?;
                    match advance(after, next, "ListJobSummaries")? {
                        Some(cursor) => after = Some(cursor),
                        None => return Ok(()),
                    }
                }
                other => return Err(unexpected("ListJobSummaries", &other)),
            }
        }
    }

    /// One page of the job's files from index `start` (at most `max` of them): the records
    /// and how many files the job has in all.
    fn job_files_page(
        &self,
        job: Guid,
        start: u32,
        max: Option<u32>,
    ) -> Result<(Vec<FileRecord>, u32)> {
        match self.execute(Request::GetJobFiles { job, start, max })? {
            Response::FilePage {
                start: answered,
                files,
                total,
            } if answered == start => Ok((files, total)),
            other => Err(unexpected("GetJobFiles", &other)),
        }
    }

    /// Every file of the job, a page at a time. A job whose files change between two pages
    /// (files added) gives the files it had at the first page plus what followed.
    fn job_files(&self, job: Guid) -> Result<Vec<FileRecord>> {
        let mut all = Vec::new();
        loop {
            let start = u32::try_from(all.len()).unwrap_or(u32::MAX);
            let (files, total) = self.job_files_page(job, start, None)?;
            if files.is_empty() {
                if start < total {
                    return Err(QmgrError::internal(
                        "the service answered GetJobFiles with an empty page before the end",
                    ));
                }
                return Ok(all);
            }
            all.extend(files);
            if all.len() >= usize::try_from(total).unwrap_or(usize::MAX) {
                return Ok(all);
            }
        }
    }

    /// The raw head of the last HTTP response for file `file` of the job, if it had one.
    fn file_response_headers(&self, job: Guid, file: u32) -> Result<Option<String>> {
        match self.execute(Request::GetFileResponseHeaders { job, file })? {
            Response::Text(text) => Ok(text),
            other => Err(unexpected("GetFileResponseHeaders", &other)),
        }
    }

    /// An upload-reply job's reply (IBackgroundCopyJob2::GetReplyData).
    fn reply_data(&self, job: Guid) -> Result<ReplyData> {
        match self.execute(Request::GetReplyData { job })? {
            Response::ReplyData(data) => Ok(data),
            other => Err(unexpected("GetReplyData", &other)),
        }
    }

    fn certificate_check(&self, job: Guid, check: u64) -> Result<CertificateCheck> {
        match self.execute(Request::GetCertificateCheck { job, check })? {
            Response::CertificateCheck(found) => Ok(*found),
            other => Err(unexpected("GetCertificateCheck", &other)),
        }
    }

    fn job_file(&self, job: Guid, index: u32) -> Result<Option<FileRecord>> {
        let (files, _) = self.job_files_page(job, index, Some(1))?;
        Ok(files.into_iter().next())
    }

    /// The job with every file, without fetching it whole in one answer: a summary, then
    /// the files page by page.
    fn job_in_pages(&self, job: Guid) -> Result<JobView> {
        let summary = self.job_summary(job)?;
        let files = self.job_files(job)?;
        let mut view = JobView {
            job: summary.job,
            waiting: summary.waiting,
            attempts: summary.attempts,
            idle: summary.idle,
        };
        view.job.files = files;
        Ok(view)
    }

    fn add_files(&self, job: Guid, files: Vec<NewFile>) -> Result<HResult> {
        done(self.execute(Request::AddFiles { job, files })?, "AddFiles")
    }

    fn add_file(&self, job: Guid, remote_name: &str, local_name: &str) -> Result<HResult> {
        self.add_files(
            job,
            vec![NewFile {
                remote_name: remote_name.to_owned(),
                local_name: local_name.to_owned(),
                ranges: None,
            }],
        )
    }

    fn request_file_ranges(&self, job: Guid, file: u32, ranges: Vec<FileRange>) -> Result<HResult> {
        done(
            self.execute(Request::RequestFileRanges { job, file, ranges })?,
            "RequestFileRanges",
        )
    }

    fn update_download_position(&self, job: Guid, file: u32, offset: u64) -> Result<HResult> {
        done(
            self.execute(Request::UpdateDownloadPosition { job, file, offset })?,
            "UpdateDownloadPosition",
        )
    }

    fn resume(&self, job: Guid) -> Result<HResult> {
        done(self.execute(Request::Resume { job })?, "Resume")
    }

    fn suspend(&self, job: Guid) -> Result<HResult> {
        done(self.execute(Request::Suspend { job })?, "Suspend")
    }

    fn cancel(&self, job: Guid) -> Result<HResult> {
        done(self.execute(Request::Cancel { job })?, "Cancel")
    }

    fn complete(&self, job: Guid) -> Result<HResult> {
        done(self.execute(Request::Complete { job })?, "Complete")
    }

    fn complete_without_replacing(&self, job: Guid) -> Result<HResult> {
        done(
            self.execute(Request::CompleteWithoutReplacing { job })?,
            "CompleteWithoutReplacing",
        )
    }

    fn take_ownership(&self, job: Guid) -> Result<HResult> {
        done(
            self.execute(Request::TakeOwnership { job })?,
            "TakeOwnership",
        )
    }

    fn set_job(&self, job: Guid, change: JobChange) -> Result<HResult> {
        done(self.execute(Request::SetJob { job, change })?, "SetJob")
    }

    fn create_group(&self, group: Guid) -> Result<HResult> {
        done(self.execute(Request::CreateGroup { group })?, "CreateGroup")
    }

    fn group(&self, group: Guid) -> Result<GroupView> {
        match self.execute(Request::GetGroup { group })? {
            Response::Group(view) => Ok(*view),
            other => Err(unexpected("GetGroup", &other)),
        }
    }

    /// Every page of the group listing, concatenated.
    fn groups(&self) -> Result<Vec<GroupView>> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            match self.execute(Request::ListGroups { after })? {
                Response::GroupPage { groups, next } => {
                    all.extend(groups);
                    match advance(after, next, "ListGroups")? {
                        Some(cursor) => after = Some(cursor),
                        None => return Ok(all),
                    }
                }
                other => return Err(unexpected("ListGroups", &other)),
            }
        }
    }
}

impl<T: QueueService + ?Sized> QueueServiceExt for T {}

/// The cursor of the next page, refusing one that does not move forward (a listing that
/// would never end).
fn advance(
    after: Option<ListCursor>,
    next: Option<ListCursor>,
    request: &str,
) -> Result<Option<ListCursor>> {
    match (after, next) {
        (Some(before), Some(next)) if next <= before => Err(QmgrError::internal(format!(
            "the service answered {request} with a page that does not move forward"
        ))),
        (_, next) => Ok(next),
    }
}

fn done(response: Response, request: &str) -> Result<HResult> {
    match response {
        Response::Done(code) if code.is_success() => Ok(code),
        other => Err(unexpected(request, &other)),
    }
}

/// The success code a plain `Done` carries.
pub const DONE: Response = Response::Done(hresult::S_OK);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Answers every request with the next canned response and remembers the requests.
    struct Scripted {
        answers: Mutex<Vec<Result<Response>>>,
        seen: Mutex<Vec<Request>>,
    }

    impl QueueService for Scripted {
        fn execute(&self, request: Request) -> Result<Response> {
            self.seen.lock().unwrap().push(request);
            self.answers.lock().unwrap().remove(0)
        }

        fn subscribe(&self) -> Result<Receiver<Notification>> {
            Err(QmgrError::from_code(hresult::E_NOTIMPL))
        }
    }

    fn scripted(answers: Vec<Result<Response>>) -> Scripted {
        Scripted {
            answers: Mutex::new(answers),
            seen: Mutex::new(Vec::new()),
        }
    }

    #[test]
    fn typed_methods_send_the_right_request_and_unwrap_the_answer() {
        let id = Guid::new_random();
        let service = scripted(vec![
            Ok(Response::JobCreated(id)),
            Ok(Response::Done(hresult::BG_S_PARTIAL_COMPLETE)),
        ]);
        assert_eq!(service.create_job("n", JobType::Download).unwrap(), id);
        assert_eq!(
            service.complete(id).unwrap(),
            hresult::BG_S_PARTIAL_COMPLETE
        );
        assert_eq!(
            *service.seen.lock().unwrap(),
            vec![
                Request::CreateJob {
                    display_name: "n".into(),
                    job_type: JobType::Download,
                    umask: crate::file::process_umask(),
                },
                Request::Complete { job: id }
            ]
        );
    }

    fn view(name: &str) -> JobView {
        let job = Job::new(
            Guid::new_random(),
            name,
            JobType::Download,
            1000,
            crate::job::JobSettings::default(),
            Timestamp::ZERO,
        )
        .unwrap();
        JobView {
            job,
            waiting: None,
            attempts: Vec::new(),
            idle: None,
        }
    }

    fn cursor(key: i64) -> ListCursor {
        ListCursor {
            key,
            id: Guid::default(),
        }
    }

    #[test]
    fn listings_fetch_every_page_in_order() {
        let (a, b, c) = (view("a"), view("b"), view("c"));
        let service = scripted(vec![
            Ok(Response::JobPage {
                jobs: vec![a.clone(), b.clone()],
                next: Some(cursor(2)),
            }),
            Ok(Response::JobPage {
                jobs: vec![c.clone()],
                next: None,
            }),
        ]);
        assert_eq!(service.jobs(false).unwrap(), vec![a, b, c]);
        assert_eq!(
            *service.seen.lock().unwrap(),
            vec![
                Request::ListJobs {
                    all_users: false,
                    after: None
                },
                Request::ListJobs {
                    all_users: false,
                    after: Some(cursor(2))
                }
            ]
        );
    }

    #[test]
    fn a_listing_whose_cursor_does_not_move_forward_is_an_error() {
        let page = |key| {
            Ok(Response::GroupPage {
                groups: Vec::new(),
                next: Some(cursor(key)),
            })
        };
        let service = scripted(vec![page(5), page(5)]);
        let error = service.groups().unwrap_err();
        assert!(
            error.description.contains("does not move forward"),
            "{error}"
        );
    }

    #[test]
    fn errors_pass_through_and_mismatched_answers_are_errors() {
        let id = Guid::new_random();
        let service = scripted(vec![
            Err(QmgrError::from_code(hresult::BG_E_NOT_FOUND)),
            Ok(Response::JobPage {
                jobs: Vec::new(),
                next: None,
            }),
        ]);
        assert_eq!(
            service.resume(id).unwrap_err().hresult,
            hresult::BG_E_NOT_FOUND
        );
        let error = service.job(id).unwrap_err();
        assert_eq!(error.hresult, hresult::E_FAIL);
        assert!(error.description.contains("GetJob"), "{error}");
    }
}
