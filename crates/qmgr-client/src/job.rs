//! Jobs: creating them, changing them, moving them through their states, reading them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use qmgr_core::file::SIZE_UNKNOWN;
use qmgr_core::job::{AutoComplete, JobProgress, NotifyCommand, notify};
use qmgr_core::service::{JobChange, JobSummary, NewFile, QueueServiceExt, WaitReason};
use qmgr_core::{FileRecord, Guid, HResult, JobPriority, JobState, JobType, QmgrError, Timestamp};

use crate::error::{Error, Result};
use crate::manager::Manager;
use crate::watch::Watch;

/// A job being described, created by [`JobBuilder::create`]; from [`Manager::new_job`].
///
/// ```
/// # fn demo(manager: &qmgr_client::Manager) -> qmgr_client::Result<()> {
/// use qmgr_client::JobPriority;
///
/// let job = manager
///     .new_job("nightly images")
///     .priority(JobPriority::Low)
///     .description("refreshes the mirror")
///     .file("https://example.com/a.iso", "/srv/mirror/a.iso")
///     .file("https://example.com/b.iso", "/srv/mirror/b.iso")
///     .create()?;
/// job.resume()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "nothing is created until `create` is called"]
pub struct JobBuilder {
    manager: Manager,
    display_name: String,
    job_type: JobType,
    priority: Option<JobPriority>,
    description: Option<String>,
    auto_complete: Option<AutoComplete>,
    reply_file: Option<PathBuf>,
    files: Vec<(String, PathBuf)>,
}

impl JobBuilder {
    pub(crate) fn new(manager: Manager, display_name: String) -> Self {
        Self {
            manager,
            display_name,
            job_type: JobType::Download,
            priority: None,
            description: None,
            auto_complete: None,
            reply_file: None,
            files: Vec::new(),
        }
    }

    /// Download (the default), upload, or upload-reply. An upload job takes one file:
    /// the URL of a BITS upload server and the local file to send.
    pub fn job_type(mut self, job_type: JobType) -> Self {
        self.job_type = job_type;
        self
    }

    /// The priority; without it the configuration's default (NORMAL unless
    /// `[job_defaults] priority` says otherwise). FOREGROUND jobs transfer at once and
    /// are never throttled; the others take turns and yield to other network use.
    pub fn priority(mut self, priority: JobPriority) -> Self {
        self.priority = Some(priority);
        self
    }

    /// A description (at most 1,024 characters), shown by `qmgr info`.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Lets the service complete the job itself once every file is transferred, even
    /// after this program has exited (see [`Job::set_auto_complete`]). A watch of such a
    /// job ends when it has left the queue (ACKNOWLEDGED); make the watch before
    /// [`Job::resume`] when the job may finish at once, since a job already gone when the
    /// watch first looks is `BG_E_NOT_FOUND`.
    pub fn auto_complete(mut self, how: AutoComplete) -> Self {
        self.auto_complete = Some(how);
        self
    }

    /// Where an upload-reply job's reply goes on Complete (see [`Job::set_reply_file`]).
    pub fn reply_file(mut self, path: impl AsRef<Path>) -> Self {
        self.reply_file = Some(path.as_ref().to_owned());
        self
    }

    /// A file: `remote` is its URL (http, https, ftp, ftps, file; anything that gives a
    /// `&str`, such as `url::Url`), `local` where it goes on Complete (a relative path is
    /// taken from the current directory).
    pub fn file(mut self, remote: impl AsRef<str>, local: impl AsRef<Path>) -> Self {
        self.files
            .push((remote.as_ref().to_owned(), local.as_ref().to_owned()));
        self
    }

    /// Many files, each as in [`JobBuilder::file`].
    pub fn files<R, L>(mut self, files: impl IntoIterator<Item = (R, L)>) -> Self
    where
        R: AsRef<str>,
        L: AsRef<Path>,
    {
        self.files.extend(
            files
                .into_iter()
                .map(|(remote, local)| (remote.as_ref().to_owned(), local.as_ref().to_owned())),
        );
        self
    }

    /// Creates the job with its settings and files, SUSPENDED: [`Job::resume`] starts
    /// it. If any part is refused, the job is cancelled and the refusal returned.
    pub fn create(self) -> Result<Job> {
        let files = new_files(self.files)?;
        let id = self
            .manager
            .service()
            .create_job(&self.display_name, self.job_type)
            .map_err(|error| {
                Error::from_service(error, format!("cannot create job {:?}", self.display_name))
            })?;
        let job = Job::new(self.manager, id);
        let set_up = || -> Result<()> {
            if let Some(priority) = self.priority {
                job.set_priority(priority)?;
            }
            if let Some(description) = &self.description {
                job.set_description(description)?;
            }
            if let Some(how) = self.auto_complete {
                job.set_auto_complete(Some(how))?;
            }
            if !files.is_empty() {
                job.add_new_files(files)?;
            }
            if let Some(path) = &self.reply_file {
                job.set_reply_file(Some(path))?;
            }
            Ok(())
        };
        match set_up() {
            Ok(()) => Ok(job),
            Err(error) => {
                let _ = job.cancel();
                Err(error)
            }
        }
    }
}

/// The files as the service takes them: local names absolute and UTF-8.
fn new_files(files: Vec<(String, PathBuf)>) -> Result<Vec<NewFile>> {
    files
        .into_iter()
        .map(|(remote, local)| Ok(NewFile::whole(remote, local_name(&local)?)))
        .collect()
}

/// `path` as the absolute UTF-8 name the service needs (it runs in another directory).
fn local_name(path: &Path) -> Result<String> {
    let absolute = std::path::absolute(path).map_err(|error| {
        Error::invalid_argument(format!(
            "the local name {:?} cannot be made absolute: {error}",
            path.display()
        ))
    })?;
    absolute.into_os_string().into_string().map_err(|name| {
        Error::invalid_argument(format!(
            "the local name {:?} is not UTF-8, which the job's file names must be",
            PathBuf::from(name).display()
        ))
    })
}

/// A job in the queue: a handle on it by id. Cloning gives another handle on the same
/// job; dropping one changes nothing in the queue (the job stays until it is completed
/// or cancelled, whether or not this program still runs).
#[derive(Clone)]
pub struct Job {
    manager: Manager,
    id: Guid,
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Job {
    pub(crate) fn new(manager: Manager, id: Guid) -> Self {
        Self { manager, id }
    }

    /// The job's id (`qmgr info` and the C API name the job by it).
    pub fn id(&self) -> Guid {
        self.id
    }

    /// The manager the job was reached through.
    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    fn failed(&self, doing: &str) -> impl FnOnce(QmgrError) -> Error + use<> {
        let action = format!("cannot {doing} job {}", self.id);
        move |error| Error::from_service(error, action)
    }

    fn change(&self, change: JobChange, what: &str) -> Result<()> {
        self.manager
            .service()
            .set_job(self.id, change)
            .map(drop)
            .map_err(self.failed(&format!("set the {what} of")))
    }

    /// Adds a file (see [`JobBuilder::file`]). Files can be added until the job is
    /// transferred.
    pub fn add_file(&self, remote: impl AsRef<str>, local: impl AsRef<Path>) -> Result<()> {
        self.add_files([(remote, local)])
    }

    /// Adds many files at once: all of them, or none when one is refused.
    pub fn add_files<R, L>(&self, files: impl IntoIterator<Item = (R, L)>) -> Result<()>
    where
        R: AsRef<str>,
        L: AsRef<Path>,
    {
        let files = files
            .into_iter()
            .map(|(remote, local)| (remote.as_ref().to_owned(), local.as_ref().to_owned()))
            .collect();
        self.add_new_files(new_files(files)?)
    }

    fn add_new_files(&self, files: Vec<NewFile>) -> Result<()> {
        let action = match files.as_slice() {
            [one] => format!("cannot add {} to job {}", one.remote_name, self.id),
            many => format!("cannot add {} files to job {}", many.len(), self.id),
        };
        self.manager
            .service()
            .add_files(self.id, files)
            .map(drop)
            .map_err(|error| Error::from_service(error, action))
    }

    /// Starts or continues the transfer (a new job is SUSPENDED).
    pub fn resume(&self) -> Result<()> {
        let service = self.manager.service();
        service
            .resume(self.id)
            .map(drop)
            .map_err(self.failed("resume"))
    }

    /// Stops the transfer, keeping what was transferred; [`Job::resume`] continues it.
    pub fn suspend(&self) -> Result<()> {
        let service = self.manager.service();
        service
            .suspend(self.id)
            .map(drop)
            .map_err(self.failed("suspend"))
    }

    /// Ends the job and deletes what it transferred; it leaves the queue.
    pub fn cancel(&self) -> Result<()> {
        let service = self.manager.service();
        service
            .cancel(self.id)
            .map(drop)
            .map_err(self.failed("cancel"))
    }

    /// Moves the transferred files to their local names (replacing files already there)
    /// and ends the job: it leaves the queue. Returns the success code: `S_OK`, or, as
    /// BITS does, `BG_S_PARTIAL_COMPLETE` when a download job is completed before every
    /// file is transferred (the transferred ones are kept, the rest dropped), and
    /// `BG_S_UNABLE_TO_DELETE_FILES` when a temporary file could not be removed. An
    /// upload job can be completed only once TRANSFERRED (`BG_E_INVALID_STATE`).
    pub fn complete(&self) -> Result<HResult> {
        let service = self.manager.service();
        service.complete(self.id).map_err(self.failed("complete"))
    }

    /// The job's state, progress and error now.
    pub fn status(&self) -> Result<Status> {
        self.summary().map(|summary| Status::from_summary(&summary))
    }

    pub(crate) fn summary(&self) -> Result<JobSummary> {
        self.manager
            .service()
            .job_summary(self.id)
            .map_err(self.failed("read"))
    }

    /// The job's state now.
    pub fn state(&self) -> Result<JobState> {
        self.status().map(|status| status.state)
    }

    /// The job's progress now.
    pub fn progress(&self) -> Result<Progress> {
        self.status().map(|status| status.progress)
    }

    /// Everything about the job but its files.
    pub fn info(&self) -> Result<JobInfo> {
        self.summary()
            .map(|summary| JobInfo::from_summary(&summary))
    }

    /// The job's files, in the order they were added.
    pub fn files(&self) -> Result<Vec<FileInfo>> {
        let files = self
            .manager
            .service()
            .job_files(self.id)
            .map_err(self.failed("list the files of"))?;
        Ok(files.iter().map(FileInfo::from_record).collect())
    }

    /// Follows the job until it stops where only its owner can move it on (see
    /// [`Watch`]): an iterator of its status as it changes. Failures, such as an
    /// unreachable service, come as its items.
    pub fn watch(&self) -> Watch {
        Watch::start(self.clone())
    }

    /// Waits until the job is TRANSFERRED, in ERROR, or gone (ACKNOWLEDGED, CANCELLED),
    /// calling `on_change` with each status on the way, the last one included; returns
    /// the last. [`Job::watch`] as a callback. A SUSPENDED job (a new one, say) is
    /// waited for until someone resumes or cancels it: resume it first.
    ///
    /// ```
    /// # fn demo(job: &qmgr_client::Job) -> qmgr_client::Result<()> {
    /// use qmgr_client::JobState;
    ///
    /// let last = job.wait(|status| eprintln!("{status}"))?;
    /// match last.state {
    ///     JobState::Transferred => {
    ///         job.complete()?;
    ///     }
    ///     _ => eprintln!("not transferred: {last}"),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn wait(&self, mut on_change: impl FnMut(&Status)) -> Result<Status> {
        let mut last = None;
        for status in self.watch() {
            let status = status?;
            on_change(&status);
            last = Some(status);
        }
        match last {
            Some(status) => Ok(status),
            // A watch yields at least the status it starts from, or an error.
            None => self.status(),
        }
    }

    /// An upload-reply job's reply, once the job is TRANSFERRED (`BG_E_INVALID_STATE`
    /// before): empty when the server sent none, `BG_E_TOO_LARGE` beyond 1 MiB (the reply
    /// file has it all after [`Job::complete`]). Other job types answer `E_NOTIMPL`.
    pub fn reply_data(&self) -> Result<Vec<u8>> {
        let reply = self
            .manager
            .service()
            .reply_data(self.id)
            .map_err(self.failed("read the reply of"))?;
        match reply.data {
            Some(data) => Ok(data),
            None if reply.too_large() => Err(Error::from_service(
                QmgrError::new(
                    qmgr_core::hresult::BG_E_TOO_LARGE,
                    qmgr_core::ErrorContext::RemoteApplication,
                    format!(
                        "the reply is {} bytes, more than a reply handed over in memory \
                         may be; Complete puts it in the reply file",
                        reply.size
                    ),
                ),
                format!("cannot read the reply of job {}", self.id),
            )),
            None => Ok(Vec::new()),
        }
    }

    /// Where an upload-reply job puts the server's reply on Complete: an absolute path in
    /// an existing directory (a relative one is taken from the current directory), or
    /// `None` for the name qmgr makes beside the uploaded file. It can change until the
    /// reply's download starts.
    pub fn set_reply_file(&self, path: Option<&Path>) -> Result<()> {
        let name = path.map(local_name).transpose()?;
        self.change(JobChange::ReplyFileName(name), "reply file name")
    }

    /// Renames the job.
    pub fn set_display_name(&self, name: &str) -> Result<()> {
        self.change(JobChange::DisplayName(name.to_owned()), "display name")
    }

    /// Sets the job's description.
    pub fn set_description(&self, description: &str) -> Result<()> {
        self.change(
            JobChange::Description(description.to_owned()),
            "description",
        )
    }

    /// Sets the job's priority (see [`JobBuilder::priority`]).
    pub fn set_priority(&self, priority: JobPriority) -> Result<()> {
        self.change(JobChange::Priority(priority), "priority")
    }

    /// How long to wait after a transient error before trying again (at least 5 s; the
    /// default is the configuration's, 10 minutes).
    pub fn set_minimum_retry_delay(&self, delay: Duration) -> Result<()> {
        self.change(JobChange::MinimumRetryDelay(delay), "minimum retry delay")
    }

    /// How long the job may go without progress through transient errors before it
    /// stops in ERROR (zero: at the first error; the default is 14 days).
    pub fn set_no_progress_timeout(&self, timeout: Duration) -> Result<()> {
        self.change(JobChange::NoProgressTimeout(timeout), "no-progress timeout")
    }

    /// Caps the job's transfer rate, in bytes per second (`None` removes the cap).
    pub fn set_bandwidth_limit(&self, bytes_per_second: Option<u64>) -> Result<()> {
        self.change(
            JobChange::BandwidthLimit(bytes_per_second),
            "bandwidth limit",
        )
    }

    /// Headers sent with every request of the job (`"Name: value"` each; none removes
    /// them). They go only to the job's own servers' origins, never after a redirect to
    /// another.
    pub fn set_custom_headers<H: AsRef<str>>(
        &self,
        headers: impl IntoIterator<Item = H>,
    ) -> Result<()> {
        let lines: Vec<String> = headers
            .into_iter()
            .map(|header| header.as_ref().to_owned())
            .collect();
        let headers = (!lines.is_empty()).then(|| lines.join("\r\n"));
        self.change(JobChange::CustomHeaders(headers), "custom headers")
    }

    /// Which events run the notification command (and reach C callbacks):
    /// BITS' `SetNotifyFlags`.
    pub fn set_notify_flags(&self, flags: NotifyFlags) -> Result<()> {
        self.change(JobChange::NotifyFlags(flags.bits()), "notify flags")
    }

    /// A program qmgrd runs when the job is transferred or fails (as the notify flags
    /// allow): `program` an absolute path, `parameters` its whole command line (the
    /// program's name first, as BITS' `SetNotifyCmdLine` takes it), or `None` for the
    /// program alone.
    pub fn set_notify_command(
        &self,
        program: impl AsRef<Path>,
        parameters: Option<&str>,
    ) -> Result<()> {
        let program = program.as_ref();
        let program = program.to_str().ok_or_else(|| {
            Error::invalid_argument(format!(
                "the notify program {:?} is not UTF-8",
                program.display()
            ))
        })?;
        let command = NotifyCommand {
            program: program.to_owned(),
            parameters: parameters.map(str::to_owned),
        };
        self.change(
            JobChange::NotifyCommand(Some(command)),
            "notification command",
        )
    }

    /// Removes the notification command.
    pub fn remove_notify_command(&self) -> Result<()> {
        self.change(JobChange::NotifyCommand(None), "notification command")
    }

    /// Whether the service completes the job itself when every file is transferred (a
    /// qmgr extension; `qmgr transfer` uses it): `Some(AutoComplete::Replace)` moves the
    /// files into place replacing existing ones, `Some(AutoComplete::NoClobber)` never
    /// replaces one (the job then waits in TRANSFERRED), `None` waits for
    /// [`Job::complete`] as BITS does.
    pub fn set_auto_complete(&self, how: Option<AutoComplete>) -> Result<()> {
        self.change(JobChange::AutoComplete(how), "auto-complete mark")
    }
}

/// BITS' notification flags (`BG_NOTIFY_*`), combined with `|`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NotifyFlags(u32);

impl NotifyFlags {
    /// When the job is transferred (`BG_NOTIFY_JOB_TRANSFERRED`).
    pub const JOB_TRANSFERRED: NotifyFlags = NotifyFlags(notify::JOB_TRANSFERRED);
    /// When the job stops in ERROR (`BG_NOTIFY_JOB_ERROR`).
    pub const JOB_ERROR: NotifyFlags = NotifyFlags(notify::JOB_ERROR);
    /// No notifications at all (`BG_NOTIFY_DISABLE`).
    pub const DISABLE: NotifyFlags = NotifyFlags(notify::DISABLE);
    /// On every change, progress included (`BG_NOTIFY_JOB_MODIFICATION`).
    pub const JOB_MODIFICATION: NotifyFlags = NotifyFlags(notify::JOB_MODIFICATION);
    /// When each file is transferred (`BG_NOTIFY_FILE_TRANSFERRED`).
    pub const FILE_TRANSFERRED: NotifyFlags = NotifyFlags(notify::FILE_TRANSFERRED);

    /// The flags as BITS numbers them.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every flag of `other` is set here.
    pub const fn contains(self, other: NotifyFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for NotifyFlags {
    type Output = NotifyFlags;

    fn bitor(self, other: NotifyFlags) -> NotifyFlags {
        NotifyFlags(self.0 | other.0)
    }
}

/// How far a job has come. Sizes are bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Bytes transferred so far, all files together.
    pub bytes_transferred: u64,
    /// The size of all files together; `None` while any file's size is unknown (not yet
    /// asked, or a server that does not say).
    pub bytes_total: Option<u64>,
    /// Files transferred so far.
    pub files_transferred: u32,
    /// Files in the job.
    pub files_total: u32,
}

impl Progress {
    /// The part transferred, from 0.0 to 1.0, when the total size is known.
    #[expect(
        clippy::cast_precision_loss,
        reason = "a fraction for display; exact to 2^53 bytes"
    )]
    pub fn fraction(&self) -> Option<f64> {
        match self.bytes_total? {
            0 => Some(1.0),
            total => Some(self.bytes_transferred as f64 / total as f64),
        }
    }

    fn from_job(progress: JobProgress) -> Self {
        Self {
            bytes_transferred: progress.bytes_transferred,
            bytes_total: (progress.bytes_total != SIZE_UNKNOWN).then_some(progress.bytes_total),
            files_transferred: progress.files_transferred,
            files_total: progress.files_total,
        }
    }
}

/// `12.3 kB of 1.0 MB, 0 of 2 files` (decimal units).
impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of ", Bytes(self.bytes_transferred))?;
        match self.bytes_total {
            Some(total) => write!(f, "{}", Bytes(total))?,
            None => f.write_str("an unknown size")?,
        }
        write!(
            f,
            ", {} of {} files",
            self.files_transferred, self.files_total
        )
    }
}

/// A byte count in decimal units, for people.
struct Bytes(u64);

impl fmt::Display for Bytes {
    #[expect(clippy::cast_precision_loss, reason = "one decimal of a size is shown")]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
        if self.0 < 1000 {
            return write!(f, "{} B", self.0);
        }
        let mut value = self.0 as f64 / 1000.0;
        let mut unit = 0;
        while value >= 999.95 && unit + 1 < UNITS.len() {
            value /= 1000.0;
            unit += 1;
        }
        write!(f, "{value:.1} {}", UNITS[unit])
    }
}

/// Where a job stands: what [`Job::status`] answers and [`Watch`] yields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// The job's state.
    pub state: JobState,
    /// How far it has come.
    pub progress: Progress,
    /// What stopped it, while it is in ERROR or TRANSIENT_ERROR (retrying later); for a
    /// job the service was to complete itself, why it could not (it then waits in
    /// TRANSFERRED).
    pub error: Option<Error>,
    /// TRANSFERRED, and the service completes the job itself ([`AutoComplete`]).
    completes_itself: bool,
}

impl Status {
    /// Whether the job stopped where only its owner moves it on, or left the queue:
    /// TRANSFERRED (waiting for [`Job::complete`]; a job the service completes itself
    /// goes on to ACKNOWLEDGED, unless completing it failed), ERROR (waiting for
    /// [`Job::resume`] or [`Job::cancel`]), ACKNOWLEDGED or CANCELLED. A watch ends
    /// with such a status.
    pub fn is_final(&self) -> bool {
        match self.state {
            JobState::Transferred => !self.completes_itself,
            JobState::Error | JobState::Acknowledged | JobState::Cancelled => true,
            _ => false,
        }
    }

    pub(crate) fn from_summary(summary: &JobSummary) -> Self {
        let complete_failed = matches!(summary.waiting, Some(WaitReason::CompleteFailed { .. }));
        Self {
            state: summary.job.state,
            progress: Progress::from_job(summary.progress),
            error: current_error(summary),
            completes_itself: summary.job.state == JobState::Transferred
                && summary.job.auto_complete.is_some()
                && !complete_failed,
        }
    }

    /// The status of a job that left the queue in `state`, with the progress last seen.
    pub(crate) fn departed(state: JobState, progress: Progress) -> Self {
        Self {
            state,
            progress,
            error: None,
            completes_itself: false,
        }
    }
}

/// `TRANSFERRING, 12.3 kB of 1.0 MB, 0 of 2 files`, and the error if there is one.
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {}", self.state, self.progress)?;
        if let Some(error) = &self.error {
            write!(f, ": {error}")?;
        }
        Ok(())
    }
}

/// The job's error while it is current (in ERROR or TRANSIENT_ERROR), naming the file.
fn current_error(summary: &JobSummary) -> Option<Error> {
    if let Some(WaitReason::CompleteFailed { error }) = &summary.waiting {
        return Some(Error::from_service(
            error.clone(),
            "completing the transferred job",
        ));
    }
    if !matches!(
        summary.job.state,
        JobState::Error | JobState::TransientError
    ) {
        return None;
    }
    let error = summary.job.error.as_ref()?;
    Some(match error.file_index {
        Some(index) => {
            Error::from_service(error.error.clone(), format!("transferring file {index}"))
        }
        None => Error::bare(error.error.clone()),
    })
}

/// A job as [`Manager::jobs`] and [`Job::info`] describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobInfo {
    /// The job's id.
    pub id: Guid,
    /// Its display name.
    pub display_name: String,
    /// Its description.
    pub description: String,
    /// Download, upload or upload-reply.
    pub job_type: JobType,
    /// Its priority.
    pub priority: JobPriority,
    /// Its state.
    pub state: JobState,
    /// How far it has come.
    pub progress: Progress,
    /// What stopped it, while it is in ERROR or TRANSIENT_ERROR.
    pub error: Option<Error>,
    /// When it was created.
    pub created: SystemTime,
    /// When it last changed.
    pub modified: SystemTime,
    /// When it reached TRANSFERRED, if it did.
    pub transferred_at: Option<SystemTime>,
}

impl JobInfo {
    pub(crate) fn from_summary(summary: &JobSummary) -> Self {
        let job = &summary.job;
        let transferred = job.times.transfer_completed;
        Self {
            id: job.id,
            display_name: job.display_name.clone(),
            description: job.description.clone(),
            job_type: job.job_type,
            priority: job.priority,
            state: job.state,
            progress: Progress::from_job(summary.progress),
            error: current_error(summary),
            created: job.times.created.to_system_time(),
            modified: job.times.modified.to_system_time(),
            transferred_at: (transferred != Timestamp::ZERO).then(|| transferred.to_system_time()),
        }
    }
}

/// One file of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileInfo {
    /// Its URL.
    pub remote_name: String,
    /// Where it goes on Complete (for an upload: the file sent).
    pub local_name: PathBuf,
    /// Its size, once known.
    pub bytes_total: Option<u64>,
    /// Bytes transferred so far.
    pub bytes_transferred: u64,
    /// Whether it is transferred.
    pub completed: bool,
}

impl FileInfo {
    fn from_record(record: &FileRecord) -> Self {
        Self {
            remote_name: record.remote_name.clone(),
            local_name: PathBuf::from(&record.local_name),
            bytes_total: (record.bytes_total != SIZE_UNKNOWN).then_some(record.bytes_total),
            bytes_transferred: record.bytes_transferred,
            completed: record.completed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_as_people_count_bytes() {
        let mut progress = Progress {
            bytes_transferred: 12_345,
            bytes_total: Some(1_000_000),
            files_transferred: 0,
            files_total: 2,
        };
        assert_eq!(progress.to_string(), "12.3 kB of 1.0 MB, 0 of 2 files");
        assert_eq!(progress.fraction(), Some(0.012_345));
        progress.bytes_total = None;
        progress.bytes_transferred = 999;
        assert_eq!(
            progress.to_string(),
            "999 B of an unknown size, 0 of 2 files"
        );
        assert_eq!(progress.fraction(), None);
        assert_eq!(Bytes(999_960).to_string(), "1.0 MB");
    }

    #[test]
    fn an_unknown_size_is_none_not_a_huge_number() {
        let progress = Progress::from_job(JobProgress {
            bytes_total: SIZE_UNKNOWN,
            bytes_transferred: 5,
            files_total: 1,
            files_transferred: 0,
        });
        assert_eq!(progress.bytes_total, None);
    }

    #[test]
    fn relative_local_names_become_absolute_before_they_leave() {
        let name = local_name(Path::new("a/b.bin")).unwrap();
        assert!(name.starts_with('/'), "{name}");
        assert!(name.ends_with("/a/b.bin"), "{name}");
        let error = local_name(Path::new("")).unwrap_err();
        assert_eq!(error.hresult(), qmgr_core::hresult::E_INVALIDARG);
    }

    fn transferred(auto_complete: Option<AutoComplete>, waiting: Option<WaitReason>) -> Status {
        let mut job = qmgr_core::Job::new(
            Guid::new_random(),
            "t",
            JobType::Download,
            1000,
            qmgr_core::JobSettings::default(),
            Timestamp::ZERO,
        )
        .unwrap();
        job.state = JobState::Transferred;
        job.auto_complete = auto_complete;
        Status::from_summary(&JobSummary {
            progress: job.progress(),
            job,
            active_files: Vec::new(),
            waiting,
            attempts: Vec::new(),
            idle: None,
        })
    }

    #[test]
    fn transferred_is_final_unless_the_service_is_about_to_complete_the_job() {
        assert!(transferred(None, Some(WaitReason::AwaitingComplete)).is_final());
        let completing = transferred(Some(AutoComplete::Replace), None);
        assert!(!completing.is_final());
        assert_eq!(completing.error, None);
        let refused = transferred(
            Some(AutoComplete::NoClobber),
            Some(WaitReason::CompleteFailed {
                error: QmgrError::from_code(qmgr_core::hresult::HRESULT_ALREADY_EXISTS),
            }),
        );
        assert!(refused.is_final());
        let why = refused.error.unwrap();
        assert_eq!(why.name(), Some("HRESULT_ALREADY_EXISTS"));
        assert_eq!(why.action(), Some("completing the transferred job"));
    }

    #[test]
    fn notify_flags_combine() {
        let flags = NotifyFlags::JOB_TRANSFERRED | NotifyFlags::JOB_ERROR;
        assert_eq!(flags.bits(), 0x3);
        assert!(flags.contains(NotifyFlags::JOB_ERROR));
        assert!(!flags.contains(NotifyFlags::JOB_MODIFICATION));
    }
}
