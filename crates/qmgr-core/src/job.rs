//! A job: its files, settings and progress, and the operations that move it through the
//! state machine. The service owns the jobs and calls these methods; they decide, the
//! service acts (starts transfers, renames files, persists).

use std::time::Duration;

use crate::certificate::ClientCertificate;
use crate::config::MAX_CONCURRENT_TRANSFERS;
use crate::credentials::{AuthScheme, AuthTarget, Credential, Credentials};
use crate::error::{ErrorContext, QmgrError, Result};
use crate::file::{self, FileRecord, Validator};
use crate::guid::Guid;
use crate::hresult::{self, HResult};
use crate::ranges::{self, FileRange};
use crate::raw::raw_enum;
use crate::reply::{self, ReplyRecord};
use crate::state::{self, Event, Facts, JobState, JobType, Outcome};
use crate::time::Timestamp;

raw_enum! {
    /// `BG_JOB_PRIORITY`: lower value = higher priority.
    #[derive(
        Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
    )]
    #[serde(rename_all = "lowercase")]
    pub enum JobPriority {
        Foreground = 0,
        High = 1,
        Normal = 2,
        Low = 3,
    }
}

impl JobPriority {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Foreground => "FOREGROUND",
            Self::High => "HIGH",
            Self::Normal => "NORMAL",
            Self::Low => "LOW",
        }
    }
}

raw_enum! {
    /// `BG_JOB_PROXY_USAGE`.
    #[derive(
        Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
    )]
    #[serde(rename_all = "snake_case")]
    pub enum ProxyUsage {
        #[default]
        Preconfig = 0,
        NoProxy = 1,
        Override = 2,
        Autodetect = 3,
    }
}

/// Proxy settings of a job (SetProxySettings).
#[derive(Clone, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ProxySettings {
    pub usage: ProxyUsage,
    pub proxy_list: Option<String>,
    pub bypass_list: Option<String>,
}

impl ProxySettings {
    /// SetProxySettings' rules: the lists' lengths (`BG_E_PROXY_LIST_TOO_LARGE`,
    /// `BG_E_PROXY_BYPASS_LIST_TOO_LARGE`), and lists only with the override setting, which
    /// needs a proxy list (`E_INVALIDARG`).
    pub fn validate(&self) -> Result<()> {
        let lists = [
            (
                &self.proxy_list,
                "proxy list",
                hresult::BG_E_PROXY_LIST_TOO_LARGE,
            ),
            (
                &self.bypass_list,
                "proxy bypass list",
                hresult::BG_E_PROXY_BYPASS_LIST_TOO_LARGE,
            ),
        ];
        for (list, what, code) in lists {
            if let Some(list) = list {
                check_length(list, MAX_PROXY_LIST_CHARS, what, code)?;
            }
        }
        for (list, what) in [
            (&self.proxy_list, "proxy list"),
            (&self.bypass_list, "proxy bypass list"),
        ] {
            if let Some(bad) = list
                .as_deref()
                .and_then(|list| list.chars().find(|c| c.is_control()))
            {
                return Err(QmgrError::invalid_arg(format!(
                    "the {what} contains the control character U+{:04X}",
                    u32::from(bad)
                )));
            }
        }
        if self.usage == ProxyUsage::Override && self.first_proxy().is_none() {
            return Err(QmgrError::invalid_arg(
                "an override proxy setting needs a proxy list",
            ));
        }
        if self.usage != ProxyUsage::Override
            && (self.proxy_list.is_some() || self.bypass_list.is_some())
        {
            return Err(QmgrError::invalid_arg(
                "proxy and bypass lists are allowed only with the override setting",
            ));
        }
        Ok(())
    }
}

impl ProxySettings {
    /// The proxy transfers go through: the first entry of the list (entries are separated
    /// by spaces, as Windows writes them, or semicolons). Windows tries the list's proxies in
    /// turn; qmgr uses the first.
    pub fn first_proxy(&self) -> Option<&str> {
        self.proxy_list
            .as_deref()?
            .split([' ', ';'])
            .find(|entry| !entry.is_empty())
    }

    /// The bypass list as host names: entries separated by spaces, semicolons or commas;
    /// Windows' `<local>` (names without a dot) becomes `localhost`.
    pub fn bypass_hosts(&self) -> Vec<String> {
        self.bypass_list
            .as_deref()
            .unwrap_or_default()
            .split([';', ' ', ','])
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                if entry == "<local>" {
                    "localhost".to_owned()
                } else {
                    entry.to_owned()
                }
            })
            .collect()
    }
}

/// Splits a custom header block (SetCustomHeaders) into `(name, value)` pairs: CRLF-separated
/// `Name: value` lines, each name and value trimmed. A line without a colon or with a stray
/// CR or LF, and a header [`check_header`] refuses, is `E_INVALIDARG`. [`Job::set_custom_headers`]
/// checks a block with this when it is set; the service splits the stored block with it for
/// each transfer.
pub fn parse_custom_headers(text: &str) -> Result<Vec<(String, String)>> {
    text.split("\r\n")
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (name, value) = line.split_once(':').ok_or_else(|| {
                QmgrError::invalid_arg(format!("the header line {line:?} has no ':'"))
            })?;
            if name.trim().is_empty() || line.contains(['\r', '\n']) {
                return Err(QmgrError::invalid_arg(format!(
                    "the header line {line:?} is malformed"
                )));
            }
            let (name, value) = (name.trim(), value.trim());
            check_header(name, value)?;
            Ok((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Headers the transfer engine sets itself; a caller's copy would contradict them.
pub const ENGINE_OWNED_HEADERS: [&str; 3] = ["range", "if-range", "host"];

/// One request header a job may send: the name an HTTP token (RFC 9110 §5.6.2), the value
/// free of line breaks and NULs (which could smuggle extra headers or a second request
/// onto the connection), and not a header the transfer engine sets itself. `E_INVALIDARG`
/// otherwise. SetCustomHeaders and the engine apply the same rule, so a block the call
/// accepts is one every transfer sends.
pub fn check_header(name: &str, value: &str) -> Result<()> {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(is_token_char) {
        return Err(QmgrError::invalid_arg(format!(
            "the header name {name:?} is not a valid HTTP token"
        )));
    }
    if value.contains(['\r', '\n', '\0']) {
        return Err(QmgrError::invalid_arg(format!(
            "the value of header {name} contains a line break or NUL"
        )));
    }
    if ENGINE_OWNED_HEADERS
        .iter()
        .any(|owned| owned.eq_ignore_ascii_case(name))
    {
        return Err(QmgrError::invalid_arg(format!(
            "the header {name} is set by the transfer engine itself"
        )));
    }
    Ok(())
}

/// The program BITS runs when the job transfers or fails (SetNotifyCmdLine).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NotifyCommand {
    /// An absolute path: qmgrd never searches its `PATH` or its working directory.
    pub program: String,
    pub parameters: Option<String>,
}

impl NotifyCommand {
    /// SetNotifyCmdLine's rules, all `E_INVALIDARG`: the program is an absolute path of at
    /// most [`MAX_NOTIFY_PROGRAM_CHARS`] characters (Windows' MAX_PATH), the parameters at
    /// most [`MAX_NOTIFY_PARAMETERS_CHARS`], and neither holds a NUL. The service checks a
    /// command when it is set and again before it runs one read back from an older store.
    pub fn validate(&self) -> Result<()> {
        check_length(
            &self.program,
            MAX_NOTIFY_PROGRAM_CHARS,
            "notify program",
            hresult::E_INVALIDARG,
        )?;
        if self.program.contains('\0') {
            return Err(QmgrError::invalid_arg(
                "the notify program contains a NUL character",
            ));
        }
        if !self.program.starts_with('/') {
            return Err(QmgrError::invalid_arg(format!(
                "the notify program {:?} is not an absolute path; qmgrd never searches its \
                 PATH or its working directory",
                self.program
            )));
        }
        if let Some(parameters) = &self.parameters {
            check_length(
                parameters,
                MAX_NOTIFY_PARAMETERS_CHARS,
                "notify parameters",
                hresult::E_INVALIDARG,
            )?;
            if parameters.contains('\0') {
                return Err(QmgrError::invalid_arg(
                    "the notify parameters contain a NUL character",
                ));
            }
        }
        Ok(())
    }
}

/// `BG_NOTIFY_*` flags.
pub mod notify {
    pub const JOB_TRANSFERRED: u32 = 0x1;
    pub const JOB_ERROR: u32 = 0x2;
    pub const DISABLE: u32 = 0x4;
    pub const JOB_MODIFICATION: u32 = 0x8;
    pub const FILE_TRANSFERRED: u32 = 0x10;
    pub const FILE_RANGES_TRANSFERRED: u32 = 0x20;
    /// Every flag a caller may set.
    pub const VALID: u32 = 0x3F;
}

/// The bits of `IBackgroundCopyJobHttpOptions::SetSecurityFlags` (`BG_SSL_*`,
/// `BG_HTTP_REDIRECT_POLICY_*`).
pub mod security {
    pub const ENABLE_CRL_CHECK: u32 = 0x0001;
    pub const IGNORE_CERT_CN_INVALID: u32 = 0x0002;
    pub const IGNORE_CERT_DATE_INVALID: u32 = 0x0004;
    pub const IGNORE_UNKNOWN_CA: u32 = 0x0008;
    pub const IGNORE_CERT_WRONG_USAGE: u32 = 0x0010;
    /// Any of the flags that lower certificate checking.
    pub const IGNORE_ANY: u32 = IGNORE_CERT_CN_INVALID
        | IGNORE_CERT_DATE_INVALID
        | IGNORE_UNKNOWN_CA
        | IGNORE_CERT_WRONG_USAGE;
    pub const REDIRECT_POLICY_MASK: u32 = 0x0700;
    pub const REDIRECT_ALLOW_SILENT: u32 = 0x0000;
    pub const REDIRECT_ALLOW_REPORT: u32 = 0x0100;
    pub const REDIRECT_DISALLOW: u32 = 0x0200;
    pub const REDIRECT_ALLOW_HTTPS_TO_HTTP: u32 = 0x0800;
}

/// Settings a job's owner can change; stored together.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobSettings {
    pub minimum_retry_delay: Duration,
    pub no_progress_timeout: Duration,
    pub notify_flags: u32,
    pub notify_command: Option<Box<NotifyCommand>>,
    pub proxy: ProxySettings,
    /// Extra request headers, CRLF-separated, as IBackgroundCopyJobHttpOptions keeps them.
    pub custom_headers: Option<String>,
    pub security_flags: u32,
    pub max_download_size: Option<u64>,
    /// Files of this job transferred at once (a qmgr extension; Windows: 1).
    pub parallel_files: u32,
    /// This job's own bandwidth cap in bytes per second, shared by its files (a qmgr extension).
    #[serde(default)]
    pub bandwidth_limit: Option<u64>,
    /// The certificate offered for TLS client authentication
    /// (IBackgroundCopyJobHttpOptions::SetClientCertificateByName / ByID).
    #[serde(default)]
    pub client_certificate: Option<Box<ClientCertificate>>,
    /// Interactive retries (a qmgr extension): the first retry after a transient error
    /// comes after this delay, each later one after twice the one before, up to
    /// `minimum_retry_delay`. `None` is Windows' rule: every retry after
    /// `minimum_retry_delay`. Progress starts the sequence over.
    #[serde(default)]
    pub first_retry_delay: Option<Duration>,
    /// Job5's USE_STORED_CREDENTIALS for the server: the user's `~/.netrc` supplies user
    /// names and passwords by host (Linux has no credential manager BITS could ask).
    #[serde(default)]
    pub use_stored_credentials: bool,
    /// IBackgroundCopyJob4's MaximumDownloadTime: the longest the job may spend CONNECTING
    /// or TRANSFERRING, counted from its last Resume, before it stops in ERROR with
    /// `BG_E_MAXDOWNLOAD_TIMEOUT`. Zero means no limit.
    #[serde(default = "default_maximum_download_time")]
    pub maximum_download_time: Duration,
    /// Job5's MINIMUM_NOTIFICATION_INTERVAL_MS: a client's JobModification callbacks for this
    /// job come at most this often (the latest change waits for the interval to pass).
    #[serde(default = "default_minimum_notification_interval")]
    pub minimum_notification_interval: Duration,
    /// IBackgroundCopyJobHttpOptions2's method in place of GET (`None`: GET). Such a job
    /// runs in the foreground only, and an error it meets is not retried: a Resume
    /// downloads again from the start.
    #[serde(default)]
    pub http_method: Option<String>,
    /// Job5's DYNAMIC_CONTENT: the content may change between requests, so an interrupted
    /// file starts over instead of resuming with a range.
    #[serde(default)]
    pub dynamic_content: bool,
    /// Job5's HIGH_PERFORMANCE, kept as given: qmgr keeps its reliability for every job
    /// (progress recorded, files renamed into place when whole).
    #[serde(default)]
    pub high_performance: bool,
    /// IBackgroundCopyJobHttpOptions3::MakeCustomHeadersWriteOnly: the headers still go to
    /// the server, but no client reads them back (GetCustomHeaders gives `E_ACCESSDENIED`,
    /// views of the job carry none). Once set, never cleared.
    #[serde(default)]
    pub custom_headers_write_only: bool,
    /// Job5's ON_DEMAND_MODE: a file is downloaded only in the ranges the application asks
    /// for (IBackgroundCopyFile6::RequestFileRanges), each at its own offset in the
    /// temporary file; with nothing asked, nothing moves.
    #[serde(default)]
    pub on_demand: bool,
    /// Job5's COST_FLAGS as the program set them; `None` follows the priority (see
    /// [`crate::policy::effective_cost_flags`]).
    #[serde(default)]
    pub cost_flags: Option<u32>,
    /// Idle mode for this job (a qmgr extension): a background job uses only bandwidth
    /// nobody else uses. FOREGROUND jobs are never held back either way.
    #[serde(default = "default_idle_mode")]
    pub idle_mode: bool,
}

fn default_idle_mode() -> bool {
    true
}

/// A request method IBackgroundCopyJobHttpOptions2 accepts: an HTTP token (RFC 9110
/// §5.6.2) of at most 32 characters, and not HEAD (its answer has no body to download).
pub fn validate_http_method(method: &str) -> Result<()> {
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if method.is_empty() || method.len() > 32 || !method.chars().all(tchar) {
        return Err(QmgrError::invalid_arg(format!(
            "{method:?} is not an HTTP method (a token such as GET or POST)"
        )));
    }
    if method.eq_ignore_ascii_case("HEAD") {
        return Err(QmgrError::invalid_arg(
            "HEAD answers have no body, so there is nothing to download",
        ));
    }
    Ok(())
}

fn default_minimum_notification_interval() -> Duration {
    DEFAULT_MINIMUM_NOTIFICATION_INTERVAL
}

fn default_maximum_download_time() -> Duration {
    DEFAULT_MAXIMUM_DOWNLOAD_TIME
}

/// Windows' defaults and the floor it applies to the retry delay.
pub const DEFAULT_MINIMUM_RETRY_DELAY: Duration = Duration::from_secs(600);
pub const DEFAULT_NO_PROGRESS_TIMEOUT: Duration = Duration::from_secs(1_209_600);
/// Windows' default MINIMUM_NOTIFICATION_INTERVAL_MS: 500 ms.
pub const DEFAULT_MINIMUM_NOTIFICATION_INTERVAL: Duration = Duration::from_millis(500);
/// Windows' default MaximumDownloadTime: 90 days.
pub const DEFAULT_MAXIMUM_DOWNLOAD_TIME: Duration = Duration::from_secs(7_776_000);
pub const MINIMUM_RETRY_DELAY_FLOOR: Duration = Duration::from_secs(5);
/// The longest wait a server's `Retry-After` can impose (it is also never longer than the
/// job's NoProgressTimeout).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The umask a job's files get when its creator's is unknown (jobs from older stores or
/// clients).
pub const DEFAULT_UMASK: u32 = 0o022;
/// The shortest first delay of interactive retries.
pub const MINIMUM_FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);

// Lengths are counted in UTF-16 code units (Windows' characters), without the NUL.
/// Display names of jobs and legacy groups (`BG_E_STRING_TOO_LONG` for jobs).
pub const MAX_DISPLAY_NAME_CHARS: usize = 256;
/// Descriptions of jobs and legacy groups (`BG_E_STRING_TOO_LONG` for jobs).
pub const MAX_DESCRIPTION_CHARS: usize = 1024;
/// SetNotifyCmdLine's program: MAX_PATH (`E_INVALIDARG`).
pub const MAX_NOTIFY_PROGRAM_CHARS: usize = 260;
/// SetNotifyCmdLine's parameters (`E_INVALIDARG`).
pub const MAX_NOTIFY_PARAMETERS_CHARS: usize = 4000;
/// SetCustomHeaders' block: 16,384 characters with the NUL (`BG_E_STRING_TOO_LONG`).
pub const MAX_CUSTOM_HEADERS_CHARS: usize = 16_383;
/// SetProxySettings' proxy list and bypass list, each (`BG_E_PROXY_LIST_TOO_LARGE`,
/// `BG_E_PROXY_BYPASS_LIST_TOO_LARGE`).
pub const MAX_PROXY_LIST_CHARS: usize = 32_000;
/// An entity tag or Last-Modified value longer than this is not kept: no real server sends
/// one, and a file's record must stay small (a longer one is treated as absent).
pub const MAX_VALIDATOR_BYTES: usize = 1024;

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            minimum_retry_delay: DEFAULT_MINIMUM_RETRY_DELAY,
            no_progress_timeout: DEFAULT_NO_PROGRESS_TIMEOUT,
            notify_flags: notify::JOB_TRANSFERRED | notify::JOB_ERROR,
            notify_command: None,
            proxy: ProxySettings::default(),
            custom_headers: None,
            security_flags: 0,
            max_download_size: None,
            parallel_files: 1,
            bandwidth_limit: None,
            client_certificate: None,
            first_retry_delay: None,
            use_stored_credentials: false,
            maximum_download_time: DEFAULT_MAXIMUM_DOWNLOAD_TIME,
            minimum_notification_interval: DEFAULT_MINIMUM_NOTIFICATION_INTERVAL,
            http_method: None,
            dynamic_content: false,
            high_performance: false,
            on_demand: false,
            custom_headers_write_only: false,
            cost_flags: None,
            idle_mode: true,
        }
    }
}

/// How the service completes a job by itself when it reaches TRANSFERRED (a qmgr
/// extension that `qmgr transfer` sets; jobs of the C API and `qmgr create` wait for an
/// explicit Complete).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoComplete {
    /// Complete: an existing destination is replaced.
    Replace,
    /// Complete without replacing an existing destination (`--no-clobber`).
    NoClobber,
}

impl AutoComplete {
    /// The value stored for it (0 is no auto-complete).
    pub const fn to_raw(mark: Option<AutoComplete>) -> u32 {
        match mark {
            None => 0,
            Some(Self::Replace) => 1,
            Some(Self::NoClobber) => 2,
        }
    }

    /// The mark a stored value stands for; `Err` for a value no qmgr writes.
    pub const fn from_raw(raw: u32) -> std::result::Result<Option<AutoComplete>, u32> {
        match raw {
            0 => Ok(None),
            1 => Ok(Some(Self::Replace)),
            2 => Ok(Some(Self::NoClobber)),
            other => Err(other),
        }
    }
}

/// The error a job in ERROR or TRANSIENT_ERROR reports (IBackgroundCopyError).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobError {
    pub error: QmgrError,
    /// Index of the file the error belongs to, if any.
    pub file_index: Option<u32>,
    /// "http", "https", "ftp", "file" …, when the error came from a protocol.
    pub protocol: Option<String>,
    pub at: Timestamp,
    /// How long the server asked to wait before the next attempt (`Retry-After`).
    #[serde(default)]
    pub retry_after: Option<Duration>,
}

/// `BG_JOB_PROGRESS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobProgress {
    pub bytes_total: u64,
    pub bytes_transferred: u64,
    pub files_total: u32,
    pub files_transferred: u32,
}

/// `BG_JOB_TIMES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct JobTimes {
    pub created: Timestamp,
    pub modified: Timestamp,
    /// Zero until the job reaches TRANSFERRED.
    pub transfer_completed: Timestamp,
}

/// A transfer job.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Job {
    pub id: Guid,
    pub job_type: JobType,
    pub display_name: String,
    pub description: String,
    pub owner_uid: u32,
    pub priority: JobPriority,
    pub state: JobState,
    pub files: Vec<FileRecord>,
    pub times: JobTimes,
    pub settings: JobSettings,
    pub error: Option<Box<JobError>>,
    /// Transient and permanent errors seen since the job was created.
    pub error_count: u32,
    /// When the current run of errors without progress began (NoProgressTimeout counts from here).
    pub no_progress_since: Option<Timestamp>,
    /// When a job in TRANSIENT_ERROR may run again (MinimumRetryDelay or the server's Retry-After).
    pub retry_at: Option<Timestamp>,
    /// The legacy group this job belongs to (qmgr.h API), if any.
    pub group: Option<Guid>,
    /// Complete was committed but the renames may not all have happened: at start-up the
    /// service finishes them.
    pub completing: bool,
    /// The service completes the job itself when it reaches TRANSFERRED.
    pub auto_complete: Option<AutoComplete>,
    /// Transient errors since the job last made progress: how far the interactive retry
    /// delay has doubled (see [`JobSettings::first_retry_delay`]).
    pub retries_without_progress: u32,
    /// Resume has succeeded at least once: the properties Microsoft allows only before the
    /// first Resume (DYNAMIC_CONTENT, MAX_DOWNLOAD_SIZE, the HTTP method) are fixed.
    #[serde(default)]
    pub resumed: bool,
    /// The umask of the process that created the job: Complete gives each file the mode
    /// `0666 & !umask`, as if that process had created it.
    #[serde(default = "default_umask")]
    pub umask: u32,
    /// An upload-reply job's reply (`None` for every other job type).
    #[serde(default)]
    pub reply: Option<Box<ReplyRecord>>,
    /// SetCredentials' user names and passwords. Never sent to clients: a job travels to
    /// them without its credentials (the store and the engine have them).
    #[serde(skip)]
    pub credentials: Credentials,
    /// Counts over `files`, kept by the methods that change them (see [`FileTally`]).
    #[serde(skip)]
    pub(crate) tally: FileTally,
    /// How far files that started over from zero had come before (see [`RefetchMarks`]).
    #[serde(skip)]
    pub(crate) refetch: RefetchMarks,
    /// Response heads not yet in the store (see [`PendingHeaders`]).
    #[serde(skip)]
    pub(crate) pending_headers: PendingHeaders,
}

/// The head of each file's last HTTP response (File5's HTTP_RESPONSE_HEADERS) from its
/// arrival until the file's row is next written, which takes it along: a small file's
/// response and completion then cost one row write, not two. Once written, a head is read
/// from the store when asked, so a job of many files does not hold them all in memory.
/// Never part of a job's equality.
pub(crate) type PendingHeaders = PerFile<String>;

/// For each file that started over from byte zero (a restart, a lost temporary file), the
/// most bytes it had held. Bytes fetched again up to that mark are not progress: a server
/// that cuts every answer at the same byte, or whose file changes at every attempt, would
/// otherwise keep its job retrying for ever, each round looking like progress, and the
/// NoProgressTimeout would never end it. Kept in memory only (after a restart of the
/// service every byte counts again), and never part of a job's equality.
pub(crate) type RefetchMarks = PerFile<u64>;

/// A value for some of a job's files, by index, kept in memory beside the job. Most jobs
/// hold none, so the map is made on the first insert: an idle job pays 8 bytes for it, not
/// a map's 48 (there can be 100,000 of them). Never part of a job's equality.
#[derive(Clone, Debug)]
pub(crate) struct PerFile<V>(
    #[expect(
        clippy::box_collection,
        reason = "boxed, an absent map takes 8 bytes instead of 48"
    )]
    Option<Box<std::collections::HashMap<usize, V>>>,
);

impl<V> Default for PerFile<V> {
    fn default() -> Self {
        Self(None)
    }
}

impl<V> PartialEq for PerFile<V> {
    fn eq(&self, _: &PerFile<V>) -> bool {
        true
    }
}

impl<V> Eq for PerFile<V> {}

impl<V> PerFile<V> {
    fn get(&self, index: usize) -> Option<&V> {
        self.0.as_ref()?.get(&index)
    }

    fn entry(&mut self, index: usize) -> std::collections::hash_map::Entry<'_, usize, V> {
        self.0.get_or_insert_default().entry(index)
    }

    fn insert(&mut self, index: usize, value: V) {
        self.0.get_or_insert_default().insert(index, value);
    }

    /// Lets the map go with its last value.
    fn remove(&mut self, index: usize) {
        if let Some(map) = self.0.as_mut() {
            map.remove(&index);
            if map.is_empty() {
                self.0 = None;
            }
        }
    }
}

/// Counts over a job's files, kept up to date by the job's methods as they change files,
/// so that the state machine's facts and [`Job::progress`] cost the same for a job of ten
/// files as for one of a hundred thousand.
///
/// Derived data: it is not serialized (a job read from the wire is counted when first
/// asked) and is never part of a job's equality. Counts made for a file list of another
/// length (files pushed or removed directly) are not trusted but made again; code that
/// changes a file's sizes or completion in place calls [`Job::recount_files`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FileTally {
    /// How many files the counts are of; `None` until counted.
    counted: Option<usize>,
    completed: usize,
    /// Files whose size is [`file::SIZE_UNKNOWN`].
    unknown_sizes: usize,
    /// The known sizes summed, and the bytes transferred summed, wide enough never to
    /// overflow, so that taking a file's share out is exact; [`Job::progress`] saturates
    /// them at `u64::MAX` as a saturating sum would.
    bytes_total: u128,
    bytes_transferred: u128,
}

impl PartialEq for FileTally {
    fn eq(&self, _: &FileTally) -> bool {
        // Derived from the files, which equality compares.
        true
    }
}

impl Eq for FileTally {}

/// The most files of a job whose kept counts debug builds check against a recount on
/// every use.
const DEBUG_RECOUNT_MAX_FILES: usize = 4096;

impl FileTally {
    fn of(files: &[FileRecord]) -> FileTally {
        let mut tally = FileTally {
            counted: Some(files.len()),
            ..FileTally::default()
        };
        for file in files {
            tally.add(file);
        }
        tally
    }

    fn add(&mut self, file: &FileRecord) {
        self.completed += usize::from(file.completed);
        if file.bytes_total == file::SIZE_UNKNOWN {
            self.unknown_sizes += 1;
        } else {
            self.bytes_total += u128::from(file.bytes_total);
        }
        self.bytes_transferred += u128::from(file.bytes_transferred);
    }

    fn remove(&mut self, file: &FileRecord) {
        self.completed -= usize::from(file.completed);
        if file.bytes_total == file::SIZE_UNKNOWN {
            self.unknown_sizes -= 1;
        } else {
            self.bytes_total -= u128::from(file.bytes_total);
        }
        self.bytes_transferred -= u128::from(file.bytes_transferred);
    }

    /// Whether both hold the same counts (for the debug check that kept counts are right).
    fn same_counts(&self, other: &FileTally) -> bool {
        (
            self.counted,
            self.completed,
            self.unknown_sizes,
            self.bytes_total,
            self.bytes_transferred,
        ) == (
            other.counted,
            other.completed,
            other.unknown_sizes,
            other.bytes_total,
            other.bytes_transferred,
        )
    }
}

/// Everything of a job but its file list, with the file count and optionally one file: what
/// a request keeps to undo its change when the store refuses to record it. Taking one costs
/// the same for a job of any size.
#[derive(Clone, Debug)]
pub struct JobSnapshot {
    job: Job,
    files: usize,
    file: Option<(usize, FileRecord)>,
}

impl JobSnapshot {
    /// The job's state when the snapshot was taken.
    pub fn state(&self) -> JobState {
        self.job.state
    }
}

fn default_umask() -> u32 {
    DEFAULT_UMASK
}

impl Job {
    /// A new job: SUSPENDED, no files, Windows' defaults unless `settings` says otherwise.
    pub fn new(
        id: Guid,
        display_name: &str,
        job_type: JobType,
        owner_uid: u32,
        settings: JobSettings,
        now: Timestamp,
    ) -> Result<Job> {
        check_length(
            display_name,
            MAX_DISPLAY_NAME_CHARS,
            "display name",
            hresult::BG_E_STRING_TOO_LONG,
        )?;
        Ok(Job {
            id,
            job_type,
            display_name: display_name.to_owned(),
            description: String::new(),
            owner_uid,
            priority: JobPriority::Normal,
            state: JobState::Suspended,
            files: Vec::new(),
            times: JobTimes {
                created: now,
                modified: now,
                transfer_completed: Timestamp::ZERO,
            },
            settings,
            error: None,
            error_count: 0,
            no_progress_since: None,
            retry_at: None,
            group: None,
            completing: false,
            umask: DEFAULT_UMASK,
            auto_complete: None,
            retries_without_progress: 0,
            resumed: false,
            reply: (job_type == JobType::UploadReply).then(Box::default),
            credentials: Credentials::default(),
            tally: FileTally::of(&[]),
            refetch: RefetchMarks::default(),
            pending_headers: PendingHeaders::default(),
        })
    }

    /// The counts over the files: the kept ones, or (for a job read from the wire, or whose
    /// file list was changed directly) counted now.
    fn tally(&self) -> FileTally {
        match self.tally.counted {
            Some(counted) if counted == self.files.len() => {
                // Checked against a recount only in small jobs: in a large one the check
                // would make every call as slow as the job is long (and AddFiles of many
                // files quadratic) in debug builds.
                debug_assert!(
                    self.files.len() > DEBUG_RECOUNT_MAX_FILES
                        || self.tally.same_counts(&FileTally::of(&self.files)),
                    "the file counts of job {} went wrong: a file was changed in place \
                     without Job::recount_files",
                    self.id
                );
                self.tally
            }
            _ => FileTally::of(&self.files),
        }
    }

    /// The job with its files counted (a job just read from the store).
    pub(crate) fn counted(mut self) -> Job {
        self.recount_files();
        self
    }

    /// Counts the files again: for code that changed a file's sizes or completion in place
    /// rather than through the job's methods (start-up recovery, tests).
    pub fn recount_files(&mut self) {
        self.tally = FileTally::of(&self.files);
    }

    /// Changes file `index` through `change`, keeping the counts right; `None` if there is
    /// no such file.
    fn change_file<R>(
        &mut self,
        index: usize,
        change: impl FnOnce(&mut FileRecord) -> R,
    ) -> Option<R> {
        if self.tally.counted != Some(self.files.len()) {
            self.recount_files();
        }
        let file = self.files.get_mut(index)?;
        self.tally.remove(file);
        let result = change(file);
        self.tally.add(file);
        Some(result)
    }

    /// A copy of every field but the file records (cloning them would cost as much as the
    /// whole job): what views without files and snapshots start from.
    #[must_use]
    pub fn without_files(&self) -> Job {
        // Every field but the files, spelled out so that a new field cannot be forgotten.
        Job {
            id: self.id,
            job_type: self.job_type,
            display_name: self.display_name.clone(),
            description: self.description.clone(),
            owner_uid: self.owner_uid,
            priority: self.priority,
            state: self.state,
            files: Vec::new(),
            times: self.times,
            settings: self.settings.clone(),
            error: self.error.clone(),
            error_count: self.error_count,
            no_progress_since: self.no_progress_since,
            retry_at: self.retry_at,
            group: self.group,
            completing: self.completing,
            auto_complete: self.auto_complete,
            retries_without_progress: self.retries_without_progress,
            resumed: self.resumed,
            umask: self.umask,
            reply: self.reply.clone(),
            credentials: self.credentials.clone(),
            tally: self.tally,
            refetch: self.refetch.clone(),
            pending_headers: self.pending_headers.clone(),
        }
    }

    /// What [`Job::restore`] needs to undo a change of this job's settings, state or times,
    /// of files added after it, and of file `file` if given.
    pub fn snapshot(&self, file: Option<usize>) -> JobSnapshot {
        let job = self.without_files();
        JobSnapshot {
            job,
            files: self.files.len(),
            file: file.and_then(|index| Some((index, self.files.get(index)?.clone()))),
        }
    }

    /// Puts the job back as it was when `snapshot` was taken: its fields, its file count
    /// (files added since go) and the one file the snapshot holds. Other files must not
    /// have changed since.
    pub fn restore(&mut self, snapshot: JobSnapshot) {
        let mut files = std::mem::take(&mut self.files);
        *self = snapshot.job;
        files.truncate(snapshot.files);
        if let Some((index, file)) = snapshot.file
            && let Some(slot) = files.get_mut(index)
        {
            *slot = file;
        }
        self.files = files;
    }

    /// The facts the state machine needs, as of `now`.
    pub fn facts(&self, now: Timestamp) -> Facts {
        Facts {
            job_type: self.job_type,
            files: u32::try_from(self.files.len()).unwrap_or(u32::MAX),
            files_done: u32::try_from(self.tally().completed).unwrap_or(u32::MAX),
            retries_exhausted: self.retries_exhausted(now),
        }
    }

    /// True when a transient error must end in ERROR: NoProgressTimeout is 0 or shorter than
    /// the first retry delay (Windows does not retry then), or it has already run out.
    fn retries_exhausted(&self, now: Timestamp) -> bool {
        let timeout = self.settings.no_progress_timeout;
        let first_delay = self
            .settings
            .first_retry_delay
            .map_or(self.settings.minimum_retry_delay, |first| {
                first.min(self.settings.minimum_retry_delay)
            });
        timeout.is_zero()
            || first_delay > timeout
            || self
                .no_progress_since
                .is_some_and(|since| now.since(since) >= timeout)
    }

    /// Runs `event` through the state machine and applies the outcome to the job.
    pub fn apply(&mut self, event: Event, now: Timestamp) -> Outcome {
        let outcome = state::transition(self.state, event, &self.facts(now));
        if let Outcome::Apply { next, .. } = outcome {
            self.enter(next, now);
        }
        outcome
    }

    /// Runs a call through the state machine: its HRESULT on success, the refusal as an error.
    fn call(&mut self, event: Event, now: Timestamp) -> Result<HResult> {
        match self.apply(event, now) {
            Outcome::Apply { code, .. } => Ok(code),
            Outcome::Refuse(code) => Err(QmgrError::from_code(code)
                .context(format_args!("job {} is {}", self.id, self.state))),
            Outcome::Stale => unreachable!("calls are never stale"),
        }
    }

    /// Moves to `next`. The last error is kept in every state (the service explains a job's
    /// history with it); GetError exposes it only in the error states.
    fn enter(&mut self, next: JobState, now: Timestamp) {
        if next != self.state {
            if next == JobState::Transferred {
                self.times.transfer_completed = now;
            }
            if next != JobState::TransientError {
                self.retry_at = None;
            }
            self.state = next;
        }
        self.times.modified = now;
    }

    /// Resume. A job resumed from SUSPENDED or ERROR starts its no-progress clock (and its
    /// interactive retry delays) afresh: time spent stopped is not time without progress.
    pub fn resume(&mut self, now: Timestamp) -> Result<HResult> {
        let stopped = matches!(self.state, JobState::Suspended | JobState::Error);
        let code = self.call(Event::Resume, now)?;
        self.resumed = true;
        if stopped {
            self.no_progress_since = None;
            self.retries_without_progress = 0;
        }
        Ok(code)
    }

    pub fn suspend(&mut self, now: Timestamp) -> Result<HResult> {
        self.call(Event::Suspend, now)
    }

    /// Moves the job to CANCELLED. The caller deletes the temporary files.
    pub fn cancel(&mut self, now: Timestamp) -> Result<HResult> {
        self.call(Event::Cancel, now)
    }

    /// Moves the job to ACKNOWLEDGED: `S_OK`, or `BG_S_PARTIAL_COMPLETE` when some files
    /// were not finished. The caller renames the finished files before committing this.
    pub fn complete(&mut self, now: Timestamp) -> Result<HResult> {
        let code = self.call(Event::Complete, now)?;
        // Complete validates every file it keeps (IBackgroundCopyFile3::SetValidationState).
        for file in self.files.iter_mut().filter(|file| file.completed) {
            file.validated = true;
        }
        Ok(code)
    }

    pub fn change_owner(&mut self, new_owner: u32, now: Timestamp) -> Result<HResult> {
        let code = self.call(Event::ChangeOwner, now)?;
        self.owner_uid = new_owner;
        Ok(code)
    }

    /// Adds a file after checking the names and the `max_files` limit; returns its index.
    pub fn add_file(
        &mut self,
        remote_name: &str,
        local_name: &str,
        max_files: u32,
        now: Timestamp,
    ) -> Result<u32> {
        let taken = self.files.iter().any(|f| f.local_name == local_name);
        self.add_file_known_taken(remote_name, local_name, None, max_files, taken, now)
    }

    /// [`Job::add_file`] for a caller that keeps an index of the local names and so
    /// already knows whether `local_name` is `taken` by a file of this job; `ranges` are
    /// AddFileWithRanges' (`None`: the whole file).
    pub fn add_file_known_taken(
        &mut self,
        remote_name: &str,
        local_name: &str,
        ranges: Option<&[FileRange]>,
        max_files: u32,
        taken: bool,
        now: Timestamp,
    ) -> Result<u32> {
        self.ensure_mutable()?;
        file::validate_remote_name(remote_name)?;
        file::validate_local_name(local_name)?;
        if let Some(ranges) = ranges {
            if self.job_type != JobType::Download {
                return Err(
                    QmgrError::from_code(hresult::E_NOTIMPL).context(format_args!(
                        "job {} is an upload job: only download jobs take byte ranges",
                        self.id
                    )),
                );
            }
            ranges::validate(ranges)?;
            file::check_ranged_remote_name(remote_name)?;
        }
        if self.settings.on_demand {
            // An on-demand job's files are whole http(s) files whose ranges come later.
            self.check_on_demand_file(&FileRecord::with_ranges(
                remote_name,
                local_name,
                ranges.map(<[FileRange]>::to_vec).unwrap_or_default(),
            ))?;
        }
        if self.files.len() >= max_files as usize {
            return Err(
                QmgrError::from_code(hresult::BG_E_TOO_MANY_FILES_IN_JOB).context(format_args!(
                    "job {} already has {} files",
                    self.id,
                    self.files.len()
                )),
            );
        }
        if taken {
            return Err(QmgrError::invalid_arg(format!(
                "{local_name} is already a local name in job {}",
                self.id
            )));
        }
        self.call(Event::AddFile, now)?;
        if self.tally.counted != Some(self.files.len()) {
            self.recount_files();
        }
        let file = FileRecord::with_ranges(
            remote_name,
            local_name,
            ranges.map(<[FileRange]>::to_vec).unwrap_or_default(),
        );
        self.tally.add(&file);
        self.tally.counted = Some(self.files.len() + 1);
        if let Some(reply) = self.reply.as_mut()
            && reply.file_name.is_none()
        {
            reply.file_name = Some(reply::generated_file_name(local_name, self.id));
        }
        self.files.push(file);
        Ok(u32::try_from(self.files.len() - 1).unwrap_or(u32::MAX))
    }

    /// Every temporary file the job holds: its files' and its reply's.
    pub fn temp_names(&self) -> impl Iterator<Item = &str> {
        self.files
            .iter()
            .filter_map(|file| file.temp_name.as_deref())
            .chain(
                self.reply
                    .iter()
                    .filter_map(|reply| reply.temp_name.as_deref()),
            )
    }

    /// The temporary files of the job's unfinished files (those a Complete deletes).
    pub fn unfinished_temp_names(&self) -> Vec<String> {
        self.files
            .iter()
            .filter(|file| !file.completed)
            .filter_map(|file| file.temp_name.clone())
            .collect()
    }

    /// Setters are refused once the job has left the queue (BG_E_INVALID_STATE).
    pub fn ensure_mutable(&self) -> Result<()> {
        if self.state.is_final() {
            Err(QmgrError::from_code(hresult::BG_E_INVALID_STATE)
                .context(format_args!("job {} is {}", self.id, self.state)))
        } else {
            Ok(())
        }
    }

    pub fn set_display_name(&mut self, name: &str, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        check_length(
            name,
            MAX_DISPLAY_NAME_CHARS,
            "display name",
            hresult::BG_E_STRING_TOO_LONG,
        )?;
        name.clone_into(&mut self.display_name);
        self.times.modified = now;
        Ok(())
    }

    pub fn set_description(&mut self, description: &str, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        check_length(
            description,
            MAX_DESCRIPTION_CHARS,
            "description",
            hresult::BG_E_STRING_TOO_LONG,
        )?;
        description.clone_into(&mut self.description);
        self.times.modified = now;
        Ok(())
    }

    pub fn set_priority(&mut self, priority: JobPriority, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        if priority != JobPriority::Foreground
            && let Some(method) = &self.settings.http_method
        {
            return Err(
                QmgrError::from_code(hresult::BG_E_NOT_SUPPORTED_WITH_CUSTOM_HTTP_METHOD).context(
                    format_args!(
                        "the job uses the HTTP method {method}, which runs in the foreground only"
                    ),
                ),
            );
        }
        self.priority = priority;
        self.times.modified = now;
        Ok(())
    }

    /// Values below 5 s are raised to 5 s, as Windows does.
    pub fn set_minimum_retry_delay(&mut self, delay: Duration, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        self.settings.minimum_retry_delay = delay.max(MINIMUM_RETRY_DELAY_FLOOR);
        self.times.modified = now;
        Ok(())
    }

    /// Interactive retries (see [`JobSettings::first_retry_delay`]); a first delay below
    /// [`MINIMUM_FIRST_RETRY_DELAY`] is raised to it.
    pub fn set_first_retry_delay(&mut self, delay: Option<Duration>, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        self.settings.first_retry_delay = delay.map(|d| d.max(MINIMUM_FIRST_RETRY_DELAY));
        self.times.modified = now;
        Ok(())
    }

    pub fn set_no_progress_timeout(&mut self, timeout: Duration, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        self.settings.no_progress_timeout = timeout;
        self.times.modified = now;
        Ok(())
    }

    pub fn set_maximum_download_time(&mut self, limit: Duration, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        self.settings.maximum_download_time = limit;
        self.times.modified = now;
        Ok(())
    }

    /// `what` may be set only before the first Resume
    /// (`BG_E_READ_ONLY_PROPERTY_AFTER_RESUME`).
    fn ensure_not_resumed(&self, what: &str) -> Result<()> {
        if self.resumed {
            return Err(
                QmgrError::from_code(hresult::BG_E_READ_ONLY_PROPERTY_AFTER_RESUME)
                    .context(format_args!("{what} of job {}", self.id)),
            );
        }
        Ok(())
    }

    /// `what` exists for download jobs only
    /// (`BG_E_PROPERTY_SUPPORTED_FOR_DOWNLOAD_JOBS_ONLY`).
    fn ensure_download(&self, what: &str) -> Result<()> {
        if self.job_type != JobType::Download {
            return Err(QmgrError::from_code(
                hresult::BG_E_PROPERTY_SUPPORTED_FOR_DOWNLOAD_JOBS_ONLY,
            )
            .context(format_args!("{what} of job {}", self.id)));
        }
        Ok(())
    }

    /// Job5's DYNAMIC_CONTENT: download jobs only, before the first Resume, and not with an
    /// HTTP method of the caller's.
    pub fn set_dynamic_content(&mut self, enable: bool, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        self.ensure_download("DYNAMIC_CONTENT")?;
        self.ensure_not_resumed("DYNAMIC_CONTENT")?;
        if enable && self.settings.on_demand {
            return Err(QmgrError::new(
                hresult::BG_E_RANDOM_ACCESS_NOT_SUPPORTED,
                crate::error::ErrorContext::None,
                "an ON_DEMAND_MODE job cannot have dynamic content",
            ));
        }
        if enable && let Some(method) = &self.settings.http_method {
            return Err(
                QmgrError::from_code(hresult::BG_E_NOT_SUPPORTED_WITH_CUSTOM_HTTP_METHOD).context(
                    format_args!("DYNAMIC_CONTENT with the HTTP method {method}"),
                ),
            );
        }
        self.settings.dynamic_content = enable;
        self.times.modified = now;
        Ok(())
    }

    /// Job5's ON_DEMAND_MODE: download jobs only, before the first Resume, not with
    /// DYNAMIC_CONTENT or an HTTP method of the caller's, and only while every file is a
    /// whole file (no AddFileWithRanges) over http or https.
    pub fn set_on_demand(&mut self, enable: bool, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        self.ensure_download("ON_DEMAND_MODE")?;
        self.ensure_not_resumed("ON_DEMAND_MODE")?;
        if enable {
            crate::on_demand::check_random_access(true, self.settings.dynamic_content, "http://")?;
            if let Some(method) = &self.settings.http_method {
                return Err(QmgrError::from_code(
                    hresult::BG_E_NOT_SUPPORTED_WITH_CUSTOM_HTTP_METHOD,
                )
                .context(format_args!("ON_DEMAND_MODE with the HTTP method {method}")));
            }
            for file in &self.files {
                self.check_on_demand_file(file)?;
            }
        }
        self.settings.on_demand = enable;
        self.times.modified = now;
        Ok(())
    }

    /// What a file of an on-demand job must be: a whole file (its ranges are asked for
    /// later, not fixed when it is added) over http or https.
    pub fn check_on_demand_file(&self, file: &FileRecord) -> Result<()> {
        crate::on_demand::check_random_access(
            self.job_type == JobType::Download,
            self.settings.dynamic_content,
            &file.remote_name,
        )?;
        if !file.ranges.is_empty() {
            return Err(QmgrError::new(
                hresult::BG_E_RANDOM_ACCESS_NOT_SUPPORTED,
                crate::error::ErrorContext::None,
                format!(
                    "{} was added with fixed ranges (AddFileWithRanges): an on-demand \
                     file's ranges are asked for with RequestFileRanges",
                    file.remote_name
                ),
            ));
        }
        Ok(())
    }

    /// Job5's HIGH_PERFORMANCE: download jobs only, before the first file is added.
    pub fn set_high_performance(&mut self, enable: bool, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        self.ensure_download("HIGH_PERFORMANCE")?;
        if !self.files.is_empty() {
            return Err(
                QmgrError::from_code(hresult::BG_E_READ_ONLY_PROPERTY_AFTER_ADDFILE)
                    .context(format_args!("HIGH_PERFORMANCE of job {}", self.id)),
            );
        }
        self.settings.high_performance = enable;
        self.times.modified = now;
        Ok(())
    }

    /// IBackgroundCopyJobHttpOptions2::SetHttpMethod: a method other than GET moves the job
    /// to the foreground for good; GET (the default) is the default again. Before the first
    /// Resume only, and not for a DYNAMIC_CONTENT job.
    pub fn set_http_method(&mut self, method: &str, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        validate_http_method(method)?;
        if self.job_type != JobType::Download {
            return Err(QmgrError::from_code(hresult::E_NOTIMPL)
                .context("HTTP methods are for download jobs"));
        }
        if method == "GET" {
            if self.settings.http_method.is_some() {
                self.ensure_not_resumed("the HTTP method")?;
            }
            self.settings.http_method = None;
            self.times.modified = now;
            return Ok(());
        }
        self.ensure_not_resumed("the HTTP method")?;
        if self.settings.dynamic_content {
            return Err(
                QmgrError::from_code(hresult::BG_E_NOT_SUPPORTED_WITH_CUSTOM_HTTP_METHOD)
                    .context("a DYNAMIC_CONTENT job keeps GET"),
            );
        }
        self.settings.http_method = Some(method.to_owned());
        self.priority = JobPriority::Foreground;
        self.times.modified = now;
        Ok(())
    }

    pub fn set_minimum_notification_interval(
        &mut self,
        interval: Duration,
        now: Timestamp,
    ) -> Result<()> {
        self.ensure_mutable()?;
        self.settings.minimum_notification_interval = interval;
        self.times.modified = now;
        Ok(())
    }

    pub fn set_notify_flags(&mut self, flags: u32, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        if flags & !notify::VALID != 0 {
            return Err(QmgrError::invalid_arg(format!(
                "notify flags 0x{flags:X} contain unknown bits"
            )));
        }
        self.settings.notify_flags = flags;
        self.times.modified = now;
        Ok(())
    }

    /// SetNotifyCmdLine: the command is checked ([`NotifyCommand::validate`]); `None`
    /// removes it.
    pub fn set_notify_command(
        &mut self,
        command: Option<NotifyCommand>,
        now: Timestamp,
    ) -> Result<()> {
        self.ensure_mutable()?;
        if let Some(command) = &command {
            command.validate()?;
        }
        self.settings.notify_command = command.map(Box::new);
        self.times.modified = now;
        Ok(())
    }

    /// SetProxySettings (see [`ProxySettings::validate`]).
    pub fn set_proxy(&mut self, proxy: ProxySettings, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        proxy.validate()?;
        self.settings.proxy = proxy;
        self.times.modified = now;
        Ok(())
    }

    /// SetCustomHeaders: at most [`MAX_CUSTOM_HEADERS_CHARS`] characters
    /// (`BG_E_STRING_TOO_LONG`) of well-formed lines (see [`parse_custom_headers`]); `None`
    /// removes them.
    pub fn set_custom_headers(&mut self, headers: Option<String>, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        if let Some(text) = &headers {
            check_length(
                text,
                MAX_CUSTOM_HEADERS_CHARS,
                "custom header block",
                hresult::BG_E_STRING_TOO_LONG,
            )?;
            parse_custom_headers(text)?;
        }
        self.settings.custom_headers = headers;
        self.times.modified = now;
        Ok(())
    }

    /// MakeCustomHeadersWriteOnly: one way; always succeeds, as Microsoft documents.
    pub fn make_custom_headers_write_only(&mut self, now: Timestamp) {
        if !self.settings.custom_headers_write_only {
            self.settings.custom_headers_write_only = true;
            self.times.modified = now;
        }
    }

    pub fn set_security_flags(&mut self, flags: u32, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        self.settings.security_flags = flags;
        self.times.modified = now;
        Ok(())
    }

    /// IBackgroundCopyJob2::SetCredentials: stores `credential`, replacing any for its
    /// target and scheme.
    pub fn set_credentials(&mut self, credential: Credential, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        credential.validate()?;
        self.credentials.set(credential);
        self.times.modified = now;
        Ok(())
    }

    /// IBackgroundCopyJob2::RemoveCredentials: `S_FALSE` when there were none to remove.
    pub fn remove_credentials(
        &mut self,
        target: AuthTarget,
        scheme: AuthScheme,
        now: Timestamp,
    ) -> Result<HResult> {
        self.ensure_mutable()?;
        if !self.credentials.remove(target, scheme) {
            return Ok(hresult::S_FALSE);
        }
        self.times.modified = now;
        Ok(hresult::S_OK)
    }

    pub fn set_use_stored_credentials(&mut self, enable: bool, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        self.settings.use_stored_credentials = enable;
        self.times.modified = now;
        Ok(())
    }

    /// Job5's MAX_DOWNLOAD_SIZE: download jobs only, before the first Resume.
    pub fn set_max_download_size(&mut self, size: Option<u64>, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        self.ensure_download("MAX_DOWNLOAD_SIZE")?;
        self.ensure_not_resumed("MAX_DOWNLOAD_SIZE")?;
        self.settings.max_download_size = size;
        self.times.modified = now;
        Ok(())
    }

    /// Files transferred at once: 1 to [`MAX_CONCURRENT_TRANSFERS`] (`E_INVALIDARG`), the
    /// range the config's `parallel_files` allows.
    pub fn set_parallel_files(&mut self, count: u32, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        if !(1..=MAX_CONCURRENT_TRANSFERS).contains(&count) {
            return Err(QmgrError::invalid_arg(format!(
                "parallel files must be 1 to {MAX_CONCURRENT_TRANSFERS}, not {count}"
            )));
        }
        self.settings.parallel_files = count;
        self.times.modified = now;
        Ok(())
    }

    /// The job's own bandwidth cap; 0 is `E_INVALIDARG` (it would stop the job: Suspend
    /// does that), `None` removes the cap.
    pub fn set_bandwidth_limit(&mut self, limit: Option<u64>, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        if limit == Some(0) {
            return Err(QmgrError::invalid_arg(
                "a bandwidth limit of 0 would stop the job; suspend it instead",
            ));
        }
        self.settings.bandwidth_limit = limit;
        self.times.modified = now;
        Ok(())
    }

    /// Job5 COST_FLAGS: the cost states the job may transfer in (`None`: its priority's
    /// default). A mask must hold at least one cost state and nothing beyond
    /// `BITS_COST_STATE_TRANSFER_ALWAYS` (`E_INVALIDARG`).
    pub fn set_cost_flags(&mut self, flags: Option<u32>, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        if let Some(flags) = flags {
            let always = crate::policy::COST_FLAGS_TRANSFER_ALWAYS;
            if flags & !always != 0 || flags.trailing_zeros() >= 8 {
                return Err(QmgrError::invalid_arg(format!(
                    "cost flags {flags:#010x} must name at least one cost state (0x1 to 0x80) \
                     and no bits beyond {always:#010x}"
                )));
            }
        }
        self.settings.cost_flags = flags;
        self.times.modified = now;
        Ok(())
    }

    /// Idle mode for this job (a qmgr extension; on by default).
    pub fn set_idle_mode(&mut self, enable: bool, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        self.settings.idle_mode = enable;
        self.times.modified = now;
        Ok(())
    }

    /// SetClientCertificateByName/ByID, after the service checked the setting against the
    /// certificate stores it knows; `None` removes it. Returns whether anything changed
    /// (removing a certificate the job does not have is `S_FALSE` on Windows).
    pub fn set_client_certificate(
        &mut self,
        certificate: Option<ClientCertificate>,
        now: Timestamp,
    ) -> Result<bool> {
        self.ensure_mutable()?;
        if certificate.is_none() && self.settings.client_certificate.is_none() {
            return Ok(false);
        }
        self.settings.client_certificate = certificate.map(Box::new);
        self.times.modified = now;
        Ok(true)
    }

    pub fn set_auto_complete(&mut self, mark: Option<AutoComplete>, now: Timestamp) -> Result<()> {
        self.ensure_mutable()?;
        self.auto_complete = mark;
        self.times.modified = now;
        Ok(())
    }

    /// SetRemoteName (IBackgroundCopyFile2) of file `index`: a URL qmgr can fetch
    /// ([`file::validate_remote_name`]) of a file the job has (`E_INVALIDARG`).
    pub fn set_remote_name(
        &mut self,
        index: u32,
        remote_name: String,
        now: Timestamp,
    ) -> Result<()> {
        self.ensure_mutable()?;
        file::validate_remote_name(&remote_name)?;
        let id = self.id;
        let record = self
            .files
            .get_mut(index as usize)
            .ok_or_else(|| QmgrError::invalid_arg(format!("job {id} has no file {index}")))?;
        if !record.ranges.is_empty() {
            file::check_ranged_remote_name(&remote_name)?;
        }
        record.remote_name = remote_name;
        self.times.modified = now;
        Ok(())
    }

    /// IBackgroundCopyFile3::SetValidationState. Only a transferred file can be judged
    /// (`E_PENDING` before). Valid marks it; invalid stops the job in ERROR with
    /// BG_E_VALIDATION_FAILED and sets the file back to nothing transferred, so that Resume
    /// downloads it again. Returns the rejected file's temporary file, which the caller
    /// deletes once this is committed (its name is forgotten here, so a crash in between
    /// leaves only a stray the start-up sweep removes, never bytes taken for a new download).
    /// IBackgroundCopyJob2::SetReplyFileName: `None` (NULL or "") lets the service name
    /// the reply beside the upload file. Upload-reply jobs only (`E_NOTIMPL` otherwise),
    /// and only until the reply's download has begun (`BG_E_INVALID_STATE`).
    pub fn set_reply_file_name(&mut self, name: Option<&str>, now: Timestamp) -> Result<()> {
        let Some(reply) = self.reply.as_ref() else {
            return Err(
                QmgrError::from_code(hresult::E_NOTIMPL).context(format_args!(
                    "job {} is not an upload-reply job: it has no reply",
                    self.id
                )),
            );
        };
        self.ensure_mutable()?;
        if reply.started() {
            return Err(
                QmgrError::from_code(hresult::BG_E_INVALID_STATE).context(format_args!(
                    "the reply of job {} is already being downloaded",
                    self.id
                )),
            );
        }
        let name = name.filter(|name| !name.is_empty());
        if let Some(name) = name {
            reply::validate_file_name(name)?;
        }
        let generated = self
            .files
            .first()
            .map(|file| reply::generated_file_name(&file.local_name, self.id));
        let reply = self.reply.as_mut().expect("checked above");
        reply.file_name_given = name.is_some();
        reply.file_name = name.map(str::to_owned).or(generated);
        self.times.modified = now;
        Ok(())
    }

    pub fn set_validation_state(
        &mut self,
        index: u32,
        valid: bool,
        now: Timestamp,
    ) -> Result<Option<String>> {
        self.ensure_mutable()?;
        let id = self.id;
        let file = self
            .files
            .get(index as usize)
            .ok_or_else(|| QmgrError::invalid_arg(format!("job {id} has no file {index}")))?;
        if !file.completed {
            return Err(QmgrError::new(
                hresult::E_PENDING,
                ErrorContext::None,
                format!(
                    "file {index} of job {id} is not transferred yet; it can be validated once \
                     it is"
                ),
            ));
        }
        if valid {
            self.change_file(index as usize, |file| file.validated = true);
            self.times.modified = now;
            return Ok(None);
        }
        self.call(Event::ValidationFailed, now)?;
        let temp_name = self
            .change_file(index as usize, |file| {
                file.validated = false;
                file.completed = false;
                file.bytes_transferred = 0;
                file.temp_name.take()
            })
            .flatten();
        self.error_count = self.error_count.saturating_add(1);
        self.error = Some(Box::new(JobError {
            error: QmgrError::new(
                hresult::BG_E_VALIDATION_FAILED,
                ErrorContext::LocalFile,
                format!(
                    "The application found file {index} of the job invalid \
                     (SetValidationState FALSE); Resume downloads it again"
                ),
            ),
            file_index: Some(index),
            protocol: None,
            at: now,
            retry_after: None,
        }));
        Ok(temp_name)
    }

    /// The scheduler gave the job a slot.
    pub fn start_transfer(&mut self, now: Timestamp) -> Outcome {
        self.apply(Event::TransferStarted, now)
    }

    /// Bytes of file `index` now on disk. Progress clears the no-progress clock. Bytes never
    /// go down here; a restart from zero goes through [`Job::restart_file`].
    pub fn record_progress(&mut self, index: usize, bytes: u64, now: Timestamp) -> Outcome {
        let outcome = self.apply(Event::Progress, now);
        if matches!(outcome, Outcome::Apply { .. }) {
            let refetched_until = self.refetch.get(index).copied().unwrap_or(0);
            let advanced = self.change_file(index, |file| {
                let advanced = bytes > file.bytes_transferred.max(refetched_until);
                file.bytes_transferred = file.bytes_transferred.max(bytes);
                advanced
            });
            if advanced == Some(true) && refetched_until > 0 {
                self.refetch.remove(index);
            }
            if advanced == Some(true) {
                self.no_progress_since = None;
                self.retries_without_progress = 0;
            }
        }
        outcome
    }

    /// The server told us the size and validators of file `index`. A validator longer
    /// than [`MAX_VALIDATOR_BYTES`] is dropped.
    pub fn record_response(&mut self, index: usize, total: Option<u64>, validator: Validator) {
        self.change_file(index, |file| {
            file.bytes_total = total.unwrap_or(file::SIZE_UNKNOWN);
            file.validator = bounded(validator);
        });
    }

    /// File `index` starts over from byte zero (the server content changed or ignored the range).
    pub fn restart_file(&mut self, index: usize, validator: Validator) {
        self.mark_refetch(index);
        self.change_file(index, |file| {
            file.bytes_transferred = 0;
            file.validator = bounded(validator);
        });
    }

    /// File `index` gets the temporary file `temp_name`, new and empty: its bytes start
    /// from zero.
    pub fn give_temp_name(&mut self, index: usize, temp_name: String) {
        self.mark_refetch(index);
        self.change_file(index, |file| {
            file.temp_name = Some(temp_name);
            file.bytes_transferred = 0;
        });
    }

    /// Keeps `headers`, the head of file `index`'s last response, until its row is next
    /// written, which takes it along (then [`Job::response_headers_written`] lets it go).
    pub fn keep_response_headers(&mut self, index: usize, headers: String) {
        if index < self.files.len() {
            self.pending_headers.insert(index, headers);
        }
    }

    /// The head of file `index`'s last response if its row has not been written since.
    pub fn pending_response_headers(&self, index: usize) -> Option<&str> {
        self.pending_headers.get(index).map(String::as_str)
    }

    /// File `index`'s row was written with its pending response head: memory lets it go.
    pub fn response_headers_written(&mut self, index: usize) {
        self.pending_headers.remove(index);
    }

    /// File `index` is about to start over from zero: the bytes it held will be fetched
    /// again before anything new arrives.
    fn mark_refetch(&mut self, index: usize) {
        if let Some(held) = self.files.get(index).map(|file| file.bytes_transferred)
            && held > 0
        {
            let mark = self.refetch.entry(index).or_default();
            *mark = (*mark).max(held);
        }
    }

    /// File `index` is completely on disk.
    pub fn file_done(&mut self, index: usize, now: Timestamp) -> Outcome {
        if self.state.is_final() || !self.state.is_active() {
            return Outcome::Stale;
        }
        self.refetch.remove(index);
        self.change_file(index, |file| {
            file.completed = true;
            if file.bytes_total == file::SIZE_UNKNOWN {
                file.bytes_total = file.bytes_transferred;
            }
        });
        self.no_progress_since = None;
        self.retries_without_progress = 0;
        let event = if self.tally().completed == self.files.len() {
            Event::AllDone
        } else {
            Event::FileDone
        };
        self.apply(event, now)
    }

    /// A transfer failed. A transient error schedules a retry after MinimumRetryDelay (or the
    /// server's Retry-After, if longer, clamped to NoProgressTimeout and [`MAX_RETRY_AFTER`]); when retries are exhausted the job goes to ERROR and,
    /// if it was NoProgressTimeout that ran out, reports BG_E_NO_PROGRESS naming the last cause.
    pub fn fail(
        &mut self,
        error: JobError,
        transient: bool,
        retry_after: Option<Duration>,
        now: Timestamp,
    ) -> Outcome {
        // A job with its own HTTP method is not retried (Microsoft's rule: its requests may
        // not be repeatable); a Resume starts it again.
        let transient = transient && self.settings.http_method.is_none();
        // A server cannot hold a job back longer than the job itself would wait for progress,
        // nor longer than a day (DESIGN "Decisions, second round").
        let retry_after = retry_after.map(|asked| {
            asked
                .min(self.settings.no_progress_timeout)
                .min(MAX_RETRY_AFTER)
        });
        let first_failure = self.no_progress_since.is_none();
        if transient && first_failure {
            self.no_progress_since = Some(now);
        }
        let timed_out = transient && !first_failure && self.retries_exhausted(now);
        let outcome = self.apply(
            if transient {
                Event::TransientError
            } else {
                Event::PermanentError
            },
            now,
        );
        if let Outcome::Apply { next, .. } = outcome {
            self.error_count = self.error_count.saturating_add(1);
            let error = JobError {
                retry_after,
                ..error
            };
            self.error = Some(Box::new(if timed_out {
                no_progress_error(error)
            } else {
                error
            }));
            if next == JobState::TransientError {
                let own = self.retry_delay();
                self.retries_without_progress = self.retries_without_progress.saturating_add(1);
                let delay = retry_after.map_or(own, |server| server.max(own));
                self.retry_at = Some(now.plus(delay));
            }
        }
        outcome
    }

    /// The service could not keep this job's record (the store refused a write of a change
    /// an engine event or a timer made): the job stops in ERROR with that error, whatever
    /// it was doing, so that what clients see never runs ahead of what a restart would
    /// find. Resume starts it again. Not an event of the transfer state machine: nothing
    /// about the transfer failed. A job that left the queue is not touched.
    pub fn stop_with_error(&mut self, error: JobError) {
        if self.state.is_final() {
            return;
        }
        self.state = JobState::Error;
        self.error_count = self.error_count.saturating_add(1);
        self.retry_at = None;
        self.error = Some(Box::new(error));
    }

    /// How long to wait before the next retry: MinimumRetryDelay, or with interactive
    /// retries the first delay doubled once per retry already made without progress, up to
    /// MinimumRetryDelay.
    pub fn retry_delay(&self) -> Duration {
        let most = self.settings.minimum_retry_delay;
        match self.settings.first_retry_delay {
            None => most,
            Some(first) => {
                let doublings = self.retries_without_progress.min(31);
                first
                    .checked_mul(1u32 << doublings)
                    .map_or(most, |delay| delay.min(most))
            }
        }
    }

    /// Timer check for a job in TRANSIENT_ERROR: back to QUEUED when the retry time came, to
    /// ERROR (BG_E_NO_PROGRESS) when NoProgressTimeout ran out first.
    pub fn on_timer(&mut self, now: Timestamp) -> Outcome {
        if self.state != JobState::TransientError {
            return Outcome::Stale;
        }
        if self.retries_exhausted(now) {
            let outcome = self.apply(Event::NoProgressTimeout, now);
            if let Some(last) = self.error.take() {
                self.error = Some(Box::new(no_progress_error(*last)));
            }
            return outcome;
        }
        match self.retry_at {
            Some(at) if now >= at => self.apply(Event::RetryTimerFired, now),
            _ => Outcome::Stale,
        }
    }

    /// `BG_JOB_PROGRESS`: BytesTotal is BG_SIZE_UNKNOWN while any file's size is unknown.
    /// Sums saturate at `u64::MAX`. Costs the same for any number of files: it reads
    /// counts the job keeps as its files change.
    pub fn progress(&self) -> JobProgress {
        let tally = self.tally();
        let saturated = |sum: u128| u64::try_from(sum).unwrap_or(u64::MAX);
        JobProgress {
            bytes_total: if tally.unknown_sizes > 0 {
                file::SIZE_UNKNOWN
            } else {
                saturated(tally.bytes_total)
            },
            bytes_transferred: saturated(tally.bytes_transferred),
            files_total: u32::try_from(self.files.len()).unwrap_or(u32::MAX),
            files_transferred: u32::try_from(tally.completed).unwrap_or(u32::MAX),
        }
    }

    /// GetError: only in ERROR and TRANSIENT_ERROR.
    pub fn current_error(&self) -> Result<&JobError> {
        match (&self.error, self.state) {
            (Some(error), JobState::Error | JobState::TransientError) => Ok(error),
            _ => Err(QmgrError::from_code(
                hresult::BG_E_ERROR_INFORMATION_UNAVAILABLE,
            )),
        }
    }
}

/// BG_E_NO_PROGRESS in the context of the last transient error, naming that cause.
fn no_progress_error(last: JobError) -> JobError {
    let description = format!(
        "The job made no progress within its no-progress timeout; the last error was: {}",
        last.error.description
    );
    JobError {
        error: QmgrError::new(hresult::BG_E_NO_PROGRESS, last.error.context, description),
        ..last
    }
}

/// A validator without the values longer than [`MAX_VALIDATOR_BYTES`].
fn bounded(validator: Validator) -> Validator {
    let keep = |value: Option<Box<str>>| value.filter(|v| v.len() <= MAX_VALIDATOR_BYTES);
    Validator {
        etag: keep(validator.etag),
        last_modified: keep(validator.last_modified),
    }
}

/// Refuses `text` longer than `max_chars` characters with `code`, naming what it is and the
/// limit. Windows counts UTF-16 code units, and so does this.
pub fn check_length(text: &str, max_chars: usize, what: &str, code: HResult) -> Result<()> {
    let units = text.encode_utf16().count();
    if units > max_chars {
        Err(QmgrError::new(
            code,
            ErrorContext::None,
            format!("the {what} is {units} characters long; the limit is {max_chars}"),
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorContext;

    fn running_job(settings: JobSettings, now: Timestamp) -> Job {
        let mut job =
            Job::new(Guid::new_random(), "j", JobType::Download, 1, settings, now).unwrap();
        job.add_file("http://h/a", "/d/a", 200, now).unwrap();
        job.resume(now).unwrap();
        job.start_transfer(now);
        job
    }

    #[test]
    fn transfers_use_the_first_proxy_and_the_bypass_list_as_hosts() {
        // Found by fuzzing: a Windows list of several proxies went to the engine as one URL,
        // which it refused, so every transfer of the job failed.
        let settings = ProxySettings {
            usage: ProxyUsage::Override,
            proxy_list: Some(" http://a:1 http://b:2;http://c:3".into()),
            bypass_list: Some("<local>; *.example.com,10.0.0.1".into()),
        };
        settings.validate().unwrap();
        assert_eq!(settings.first_proxy(), Some("http://a:1"));
        assert_eq!(
            settings.bypass_hosts(),
            ["localhost", "*.example.com", "10.0.0.1"]
        );
        assert_eq!(ProxySettings::default().first_proxy(), None);
        assert!(ProxySettings::default().bypass_hosts().is_empty());
    }

    #[test]
    fn cost_flags_must_name_a_cost_state_and_nothing_more() {
        let now = Timestamp(1_000_000);
        let mut job = running_job(JobSettings::default(), now);
        assert_eq!(job.settings.cost_flags, None, "unset follows the priority");
        for good in [0x1, 0x40, 0x8000_0021, 0x8000_00FF] {
            job.set_cost_flags(Some(good), now).unwrap();
            assert_eq!(job.settings.cost_flags, Some(good));
        }
        for bad in [0, 0x8000_0000, 0x100, 0x4000_0001] {
            let error = job.set_cost_flags(Some(bad), now).unwrap_err();
            assert_eq!(error.hresult, hresult::E_INVALIDARG, "{bad:#x}");
        }
        assert_eq!(
            job.settings.cost_flags,
            Some(0x8000_00FF),
            "a refusal changes nothing"
        );
        job.set_cost_flags(None, now).unwrap();
        assert_eq!(job.settings.cost_flags, None);
        assert!(job.settings.idle_mode, "idle mode is on by default");
        job.set_idle_mode(false, now).unwrap();
        assert!(!job.settings.idle_mode);
    }

    #[test]
    fn on_demand_mode_needs_a_download_job_of_whole_http_files_before_its_first_resume() {
        let now = Timestamp(1_000_000);
        let new = |job_type| {
            Job::new(
                Guid::new_random(),
                "j",
                job_type,
                1,
                JobSettings::default(),
                now,
            )
            .unwrap()
        };
        let code = |result: Result<()>| result.unwrap_err().hresult;

        let mut job = new(JobType::Download);
        job.add_file("https://h/a", "/d/a", 10, now).unwrap();
        job.set_on_demand(true, now).unwrap();
        assert!(job.settings.on_demand);
        assert_eq!(
            code(job.set_dynamic_content(true, now)),
            hresult::BG_E_RANDOM_ACCESS_NOT_SUPPORTED
        );
        let ftp = job.add_file("ftp://h/b", "/d/b", 10, now).unwrap_err();
        assert_eq!(ftp.hresult, hresult::BG_E_RANDOM_ACCESS_NOT_SUPPORTED);
        let ranged = job
            .add_file_known_taken(
                "http://h/c",
                "/d/c",
                Some(&[FileRange {
                    offset: 0,
                    length: 5,
                }]),
                10,
                false,
                now,
            )
            .unwrap_err();
        assert_eq!(ranged.hresult, hresult::BG_E_RANDOM_ACCESS_NOT_SUPPORTED);
        assert_eq!(job.files.len(), 1, "refused files are not added");
        job.set_on_demand(false, now).unwrap();
        job.add_file("ftp://h/b", "/d/b", 10, now).unwrap();
        assert_eq!(
            code(job.set_on_demand(true, now)),
            hresult::BG_E_RANDOM_ACCESS_NOT_SUPPORTED,
            "an ftp file is already in the job"
        );

        let mut resumed = new(JobType::Download);
        resumed.add_file("http://h/a", "/d/a", 10, now).unwrap();
        resumed.resume(now).unwrap();
        assert!(
            resumed.set_on_demand(true, now).is_err(),
            "not after Resume"
        );

        let mut dynamic = new(JobType::Download);
        dynamic.set_dynamic_content(true, now).unwrap();
        assert_eq!(
            code(dynamic.set_on_demand(true, now)),
            hresult::BG_E_RANDOM_ACCESS_NOT_SUPPORTED
        );

        let mut method = new(JobType::Download);
        method.set_http_method("POST", now).unwrap();
        assert_eq!(
            code(method.set_on_demand(true, now)),
            hresult::BG_E_NOT_SUPPORTED_WITH_CUSTOM_HTTP_METHOD
        );

        let mut upload = new(JobType::Upload);
        assert_eq!(
            code(upload.set_on_demand(true, now)),
            hresult::BG_E_PROPERTY_SUPPORTED_FOR_DOWNLOAD_JOBS_ONLY
        );
    }

    #[test]
    fn a_rejected_file_stops_the_job_and_loses_its_bytes_a_valid_one_is_marked() {
        let now = Timestamp(1_000_000);
        let mut job = running_job(JobSettings::default(), now);
        job.add_file("http://h/b", "/d/b", 200, now).unwrap();
        let pending = job.set_validation_state(0, true, now).unwrap_err();
        assert_eq!(pending.hresult, hresult::E_PENDING);
        for index in 0..2 {
            job.give_temp_name(index, format!("/d/.BIT{index}.tmp"));
            job.record_progress(index, 10, now);
            job.file_done(index, now);
        }
        assert_eq!(job.state, JobState::Transferred);

        assert_eq!(job.set_validation_state(0, true, now).unwrap(), None);
        assert!(job.files[0].validated);
        assert_eq!(job.state, JobState::Transferred);

        let temp = job.set_validation_state(1, false, now).unwrap();
        assert_eq!(temp.as_deref(), Some("/d/.BIT1.tmp"));
        assert_eq!(job.state, JobState::Error);
        let error = job.error.as_ref().expect("an error");
        assert_eq!(error.error.hresult, hresult::BG_E_VALIDATION_FAILED);
        assert_eq!(error.file_index, Some(1));
        let file = &job.files[1];
        assert!(!file.completed && !file.validated && file.temp_name.is_none());
        assert_eq!(file.bytes_transferred, 0);
        assert_eq!(job.progress().files_transferred, 1);
        assert!(job.files[0].validated && job.files[0].completed);
        // Rejected, it has nothing left to judge.
        let again = job.set_validation_state(1, true, now).unwrap_err();
        assert_eq!(again.hresult, hresult::E_PENDING);
        let missing = job.set_validation_state(2, true, now).unwrap_err();
        assert_eq!(missing.hresult, hresult::E_INVALIDARG);
    }

    #[test]
    fn complete_validates_the_files_it_keeps() {
        let now = Timestamp(1_000_000);
        let mut job = running_job(JobSettings::default(), now);
        job.add_file("http://h/b", "/d/b", 200, now).unwrap();
        job.give_temp_name(0, "/d/.BIT0.tmp".into());
        job.file_done(0, now);
        job.complete(now).unwrap();
        assert!(job.files[0].validated);
        assert!(!job.files[1].validated);
    }

    #[test]
    fn a_ranged_file_is_checked_and_sized_by_its_ranges() {
        let now = Timestamp(1);
        let mut job = Job::new(
            Guid::new_random(),
            "j",
            JobType::Download,
            1,
            JobSettings::default(),
            now,
        )
        .unwrap();
        let range = |offset, length| FileRange { offset, length };
        let mut add = |remote: &str, local: &str, ranges: &[FileRange]| {
            job.add_file_known_taken(remote, local, Some(ranges), 10, false, now)
                .map_err(|error| error.hresult)
        };
        assert_eq!(add("http://h/a", "/d/a", &[]), Err(hresult::E_INVALIDARG));
        assert_eq!(
            add("http://h/a", "/d/a", &[range(ranges::LENGTH_TO_EOF, 5)]),
            Err(hresult::BG_E_INVALID_RANGE)
        );
        assert_eq!(
            add("http://h/a", "/d/a", &[range(0, 10), range(5, 1)]),
            Err(hresult::BG_E_OVERLAPPING_RANGES)
        );
        assert_eq!(
            add("ftp://h/a", "/d/a", &[range(0, 10)]),
            Err(hresult::E_INVALIDARG),
            "ranges need http"
        );
        assert_eq!(
            add("HTTPS://h/a", "/d/a", &[range(100, 100), range(0, 50)]),
            Ok(0)
        );
        assert_eq!(
            add("http://h/b", "/d/b", &[range(7, ranges::LENGTH_TO_EOF)]),
            Ok(1)
        );
        assert_eq!(
            job.files[0].bytes_total, 150,
            "the ranges' lengths added up"
        );
        assert_eq!(job.files[0].ranges, [range(100, 100), range(0, 50)]);
        assert_eq!(job.files[1].bytes_total, file::SIZE_UNKNOWN);
        assert_eq!(job.files.len(), 2, "refused files were not added");
        assert_eq!(
            job.set_remote_name(0, "ftp://h/a".into(), now)
                .unwrap_err()
                .hresult,
            hresult::E_INVALIDARG,
            "a ranged file stays on http"
        );
        job.set_remote_name(0, "http://mirror/a".into(), now)
            .unwrap();

        let mut upload = Job::new(
            Guid::new_random(),
            "u",
            JobType::Upload,
            1,
            JobSettings::default(),
            now,
        )
        .unwrap();
        let refused = upload
            .add_file_known_taken("http://h/u", "/d/u", Some(&[range(0, 1)]), 10, false, now)
            .unwrap_err();
        assert_eq!(refused.hresult, hresult::E_NOTIMPL);
    }

    fn transient(now: Timestamp) -> JobError {
        JobError {
            error: QmgrError::new(
                hresult::BG_E_HTTP_ERROR_503,
                ErrorContext::RemoteFile,
                "busy",
            ),
            file_index: Some(0),
            protocol: Some("http".into()),
            at: now,
            retry_after: None,
        }
    }

    fn failing_job(no_progress_timeout: Duration) -> Job {
        let settings = JobSettings {
            minimum_retry_delay: Duration::from_secs(60),
            no_progress_timeout,
            ..JobSettings::default()
        };
        running_job(settings, Timestamp(1_000_000))
    }

    fn fail_with_retry_after(job: &mut Job, asked: Duration) -> Duration {
        let now = Timestamp(2_000_000);
        job.fail(transient(now), true, Some(asked), now);
        assert_eq!(job.state, JobState::TransientError);
        job.retry_at.expect("a retry time").since(now)
    }

    #[test]
    fn retry_after_is_clamped_to_the_no_progress_timeout_and_a_day() {
        let hour = Duration::from_secs(3600);
        let absurd = Duration::from_secs(100_000_000_000);
        let mut job = failing_job(hour);
        assert_eq!(fail_with_retry_after(&mut job, absurd), hour);
        assert_eq!(job.error.as_ref().unwrap().retry_after, Some(hour));
        let mut job = failing_job(DEFAULT_NO_PROGRESS_TIMEOUT);
        assert_eq!(fail_with_retry_after(&mut job, absurd), MAX_RETRY_AFTER);
        let mut job = failing_job(DEFAULT_NO_PROGRESS_TIMEOUT);
        assert_eq!(
            fail_with_retry_after(&mut job, Duration::from_secs(120)),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn bytes_fetched_again_after_a_restart_are_not_progress() {
        let start = Timestamp(1_000_000);
        let mut job = failing_job(Duration::from_secs(3600));
        job.record_progress(0, 1000, start);
        let first_failure = Timestamp(2_000_000);
        fail_and_retry(&mut job, first_failure);
        assert_eq!(job.no_progress_since, Some(first_failure));
        // The server starts the file over: the first 1,000 bytes again are not progress.
        job.restart_file(0, Validator::default());
        job.record_progress(0, 1000, Timestamp(3_000_000));
        assert_eq!(job.files[0].bytes_transferred, 1000);
        assert_eq!(job.no_progress_since, Some(first_failure));
        assert_eq!(job.retries_without_progress, 1);
        // A byte beyond what the file had held is.
        job.record_progress(0, 1001, Timestamp(4_000_000));
        assert_eq!(job.no_progress_since, None);
        assert_eq!(job.retries_without_progress, 0);
        // The mark is gone: after another failure, bytes count from where the file is.
        fail_and_retry(&mut job, Timestamp(5_000_000));
        job.record_progress(0, 1002, Timestamp(6_000_000));
        assert_eq!(job.no_progress_since, None);
    }

    /// Fails the job at `now`, returns the delay it was given, and lets it run again.
    fn fail_and_retry(job: &mut Job, now: Timestamp) -> Duration {
        job.fail(transient(now), true, None, now);
        assert_eq!(job.state, JobState::TransientError);
        let at = job.retry_at.unwrap();
        assert!(matches!(job.on_timer(at), Outcome::Apply { .. }));
        job.start_transfer(at);
        at.since(now)
    }

    #[test]
    fn interactive_retries_start_short_and_double_up_to_the_minimum_retry_delay() {
        let settings = JobSettings {
            minimum_retry_delay: Duration::from_secs(60),
            no_progress_timeout: Duration::from_secs(3600),
            first_retry_delay: Some(Duration::from_secs(5)),
            ..JobSettings::default()
        };
        let mut now = Timestamp(1_000_000);
        let mut job = running_job(settings, now);
        let mut delays = Vec::new();
        for _ in 0..6 {
            let delay = fail_and_retry(&mut job, now);
            delays.push(delay.as_secs());
            now = now.plus(delay);
        }
        assert_eq!(delays, [5, 10, 20, 40, 60, 60]);

        // Progress starts the sequence over.
        job.record_progress(0, 10, now);
        assert_eq!(fail_and_retry(&mut job, now), Duration::from_secs(5));
    }

    #[test]
    fn windows_retries_wait_the_minimum_retry_delay_every_time() {
        let mut now = Timestamp(1_000_000);
        let mut job = running_job(JobSettings::default(), now);
        for _ in 0..3 {
            let delay = fail_and_retry(&mut job, now);
            assert_eq!(delay, DEFAULT_MINIMUM_RETRY_DELAY);
            now = now.plus(delay);
        }
    }

    #[test]
    fn interactive_retries_retry_when_only_the_first_delay_fits_the_timeout() {
        // MinimumRetryDelay 600 s is longer than the 120 s timeout: Windows would not retry,
        // but the first interactive retry comes after 5 s; the timeout still ends it.
        let settings = JobSettings {
            no_progress_timeout: Duration::from_secs(120),
            first_retry_delay: Some(Duration::from_secs(5)),
            ..JobSettings::default()
        };
        let start = Timestamp(1_000_000);
        let mut job = running_job(settings, start);
        job.fail(transient(start), true, None, start);
        assert_eq!(job.state, JobState::TransientError, "the first retry fits");
        assert_eq!(job.retry_at, Some(start.plus(Duration::from_secs(5))));
        job.on_timer(start.plus(Duration::from_secs(120)));
        assert_eq!(job.state, JobState::Error);
        assert_eq!(
            job.error.as_ref().unwrap().error.hresult,
            hresult::BG_E_NO_PROGRESS
        );

        let windows = JobSettings {
            no_progress_timeout: Duration::from_secs(120),
            ..JobSettings::default()
        };
        let mut job = running_job(windows, start);
        job.fail(transient(start), true, None, start);
        assert_eq!(job.state, JobState::Error, "Windows does not retry then");
    }

    #[test]
    fn resuming_a_job_that_ran_out_of_time_gives_it_the_whole_timeout_again() {
        let settings = JobSettings {
            no_progress_timeout: Duration::from_secs(120),
            first_retry_delay: Some(Duration::from_secs(5)),
            ..JobSettings::default()
        };
        let start = Timestamp(1_000_000);
        let mut job = running_job(settings, start);
        job.fail(transient(start), true, None, start);
        let late = start.plus(Duration::from_secs(200));
        job.on_timer(late);
        assert_eq!(job.state, JobState::Error);
        job.resume(late).unwrap();
        job.start_transfer(late);
        assert_eq!(fail_and_retry(&mut job, late), Duration::from_secs(5));
        assert_eq!(job.state, JobState::Connecting);
    }

    /// `BG_JOB_PROGRESS` summed over the files one by one, as it was before the job kept
    /// counts: the reference the kept counts must always agree with.
    fn progress_by_summing(job: &Job) -> JobProgress {
        let unknown = job
            .files
            .iter()
            .any(|f| f.bytes_total == file::SIZE_UNKNOWN);
        JobProgress {
            bytes_total: if unknown {
                file::SIZE_UNKNOWN
            } else {
                job.files
                    .iter()
                    .map(|f| f.bytes_total)
                    .fold(0, u64::saturating_add)
            },
            bytes_transferred: job
                .files
                .iter()
                .map(|f| f.bytes_transferred)
                .fold(0, u64::saturating_add),
            files_total: u32::try_from(job.files.len()).unwrap(),
            files_transferred: u32::try_from(job.files.iter().filter(|f| f.completed).count())
                .unwrap(),
        }
    }

    #[test]
    fn kept_counts_give_the_progress_a_sum_over_the_files_gives() {
        let now = Timestamp(1_000_000);
        let mut job = Job::new(
            Guid::new_random(),
            "j",
            JobType::Download,
            1,
            JobSettings::default(),
            now,
        )
        .unwrap();
        let mut seen = Vec::new();
        let mut check = |job: &Job| {
            assert_eq!(job.progress(), progress_by_summing(job));
            seen.push(job.progress());
        };
        check(&job);
        for index in 0..4 {
            job.add_file(
                &format!("http://h/{index}"),
                &format!("/d/{index}"),
                10,
                now,
            )
            .unwrap();
            check(&job);
        }
        job.resume(now).unwrap();
        job.start_transfer(now);
        // Sizes become known one by one; while one is unknown the total is.
        job.record_response(0, Some(100), Validator::default());
        check(&job);
        job.record_response(1, Some(u64::MAX - 10), Validator::default());
        job.record_response(2, Some(50), Validator::default());
        check(&job);
        job.record_response(3, Some(60), Validator::default());
        check(&job);
        assert_eq!(job.progress().bytes_total, u64::MAX, "the sum saturates");
        job.record_progress(0, 100, now);
        job.record_progress(1, u64::MAX - 20, now);
        job.record_progress(2, 30, now);
        check(&job);
        assert_eq!(job.progress().bytes_transferred, u64::MAX);
        // The huge file starts over, and the sums come back below the saturation.
        job.restart_file(1, Validator::default());
        check(&job);
        job.record_response(1, None, Validator::default());
        check(&job);
        job.file_done(0, now);
        // A file finished with its size unknown takes the bytes it got as its size.
        job.file_done(1, now);
        check(&job);
        job.give_temp_name(2, "/d/.BIT0000000000000002.tmp".into());
        check(&job);
        job.file_done(2, now);
        job.file_done(2, now);
        check(&job);
        assert_eq!(job.state, JobState::Transferring);
        job.record_progress(3, 60, now);
        job.file_done(3, now);
        assert_eq!(job.state, JobState::Transferred, "all done from the counts");
        check(&job);
        // Files changed in place are counted again once told.
        job.files[3].bytes_transferred = 7;
        job.recount_files();
        check(&job);
        // Files pushed directly (a view built by hand) are counted, not trusted.
        job.files.push(FileRecord::new("http://h/x", "/d/x"));
        assert_eq!(job.progress(), progress_by_summing(&job));
        // A job read from the wire has no counts and is counted.
        let copy: Job = serde_json::from_str(&serde_json::to_string(&job).unwrap()).unwrap();
        assert_eq!(copy, job);
        assert_eq!(copy.progress(), progress_by_summing(&job));
        assert!(seen.len() > 10);
    }

    #[test]
    fn a_snapshot_puts_back_the_fields_the_added_files_and_its_file() {
        let now = Timestamp(1_000_000);
        let mut job = running_job(JobSettings::default(), now);
        job.add_file("http://h/b", "/d/b", 10, now).unwrap();
        job.record_progress(1, 5, now);
        let before = job.clone();
        let snapshot = job.snapshot(Some(1));
        assert_eq!(snapshot.state(), JobState::Transferring);
        let later = Timestamp(2_000_000);
        job.set_description("changed", later).unwrap();
        job.suspend(later).unwrap();
        job.set_remote_name(1, "http://h/c".into(), later).unwrap();
        job.add_file("http://h/d", "/d/d", 10, later).unwrap();
        job.restore(snapshot);
        assert_eq!(job, before);
        assert_eq!(job.progress(), progress_by_summing(&before));
        assert_eq!(job.progress().files_total, 2);
    }

    #[test]
    fn setters_refuse_what_the_service_used_to_check() {
        let now = Timestamp(1_000_000);
        let mut job = running_job(JobSettings::default(), now);
        assert!(job.set_parallel_files(0, now).is_err());
        assert!(
            job.set_parallel_files(MAX_CONCURRENT_TRANSFERS + 1, now)
                .is_err()
        );
        job.set_parallel_files(MAX_CONCURRENT_TRANSFERS, now)
            .unwrap();
        assert_eq!(job.settings.parallel_files, MAX_CONCURRENT_TRANSFERS);

        assert!(job.set_bandwidth_limit(Some(0), now).is_err());
        job.set_bandwidth_limit(Some(1), now).unwrap();
        job.set_bandwidth_limit(None, now).unwrap();

        let lists_without_override = ProxySettings {
            usage: ProxyUsage::NoProxy,
            proxy_list: Some("http://p:3128".into()),
            bypass_list: None,
        };
        assert!(job.set_proxy(lists_without_override, now).is_err());
        let override_without_list = ProxySettings {
            usage: ProxyUsage::Override,
            ..ProxySettings::default()
        };
        assert!(job.set_proxy(override_without_list, now).is_err());
        let too_long = ProxySettings {
            usage: ProxyUsage::Override,
            proxy_list: Some("p".repeat(MAX_PROXY_LIST_CHARS + 1)),
            bypass_list: None,
        };
        assert_eq!(
            job.set_proxy(too_long, now).unwrap_err().hresult,
            hresult::BG_E_PROXY_LIST_TOO_LARGE
        );
        assert_eq!(
            job.settings.proxy,
            ProxySettings::default(),
            "refused: unchanged"
        );
        // Found by fuzzing: a control character reached the engine, which refused the job's
        // every transfer; and a list of only separators counted as a list.
        for (list, bypass) in [
            ("p\tq", None),
            ("http://p:1", Some("h\u{7f}")),
            (" ; ", None),
        ] {
            let settings = ProxySettings {
                usage: ProxyUsage::Override,
                proxy_list: Some(list.into()),
                bypass_list: bypass.map(str::to_owned),
            };
            assert_eq!(
                job.set_proxy(settings, now).unwrap_err().hresult,
                hresult::E_INVALIDARG,
                "{list:?} {bypass:?}"
            );
        }

        assert!(
            job.set_custom_headers(Some("no colon".into()), now)
                .is_err()
        );
        assert_eq!(
            job.set_custom_headers(
                Some(format!("A: {}", "x".repeat(MAX_CUSTOM_HEADERS_CHARS))),
                now
            )
            .unwrap_err()
            .hresult,
            hresult::BG_E_STRING_TOO_LONG
        );
        // What the transfer engine would refuse to send is refused at the call (found by
        // fuzzing: these were accepted, and their jobs failed at the first transfer).
        for block in [
            "X A: v",
            "X-Ü: v",
            "Range: bytes=0-",
            "if-range: x",
            "Host: example.com",
            "X-A: a\0b",
        ] {
            assert_eq!(
                job.set_custom_headers(Some(block.into()), now)
                    .unwrap_err()
                    .hresult,
                hresult::E_INVALIDARG,
                "{block:?}"
            );
        }
        job.set_custom_headers(Some("A: 1\r\nB:2\r\n".into()), now)
            .unwrap();
        assert_eq!(
            parse_custom_headers(job.settings.custom_headers.as_deref().unwrap()).unwrap(),
            [
                ("A".to_owned(), "1".to_owned()),
                ("B".to_owned(), "2".to_owned())
            ]
        );

        assert!(job.set_remote_name(7, "http://h/b".into(), now).is_err());
        assert!(job.set_remote_name(0, "gopher://h/b".into(), now).is_err());
        job.set_remote_name(0, "http://h/b".into(), now).unwrap();

        assert!(
            !job.set_client_certificate(None, now).unwrap(),
            "nothing to remove"
        );
    }
}
