//! qmgr configuration: `$XDG_CONFIG_HOME/qmgr/config.toml` (see [`crate::paths`]).
//!
//! A missing file means every default. An unknown key or a bad value is an error that
//! names the key, the file and the line — never a silent default.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `max_background_jobs` | `1` | background jobs transferring at once (FOREGROUND jobs never count); 1 to 64 |
//! | `time_slice` | `"5m"` | how long a background job runs before a job of equal priority gets a turn; at least 1 s |
//! | `bandwidth_limit` | `"unlimited"` | global cap for background jobs in bytes per second (FOREGROUND is never throttled): an integer, or a string with a unit — `"500kB/s"`, `"20MB/s"`, `"1GB/s"` (decimal), `"512KiB/s"`, `"20MiB/s"` (binary); `/s` is optional; `"unlimited"` or `0` means no cap |
//! | `max_jobs_per_user` | `60` | CreateJob (and the legacy CreateGroup) fails with `BG_E_TOO_MANY_JOBS_PER_USER` beyond this many jobs; a legacy group counts as one job, with or without its job (root is unlimited); at least 1 |
//! | `max_files_per_job` | `200` | AddFile (and the legacy AddFiles) fails with `BG_E_TOO_MANY_FILES_IN_JOB` beyond this many files; 1 to 1,000,000 (a long AddFiles travels in parts and is added all at once; watchers read job summaries and pages of files) |
//! | `job_inactivity_timeout` | `"90d"` | jobs untouched this long are cancelled; at least 1 s |
//! | `stall_timeout` | `"2m"` | a download that receives no byte for this long is cut and retried later (a transient error, as a dropped connection); at least 1 s |
//! | `idle_exit` | `"5m"` | a qmgrd started on demand exits after this long with no jobs to run and no clients; `"never"` disables; at least 1 s |
//! | `state_dir` | `$XDG_STATE_HOME/qmgr` | the store directory; an absolute path (`~` is not expanded) |
//! | `max_connections` | `256` | client connections qmgrd serves at once (each subscription is one); beyond them a client is refused with `QM_E_SERVICE_UNAVAILABLE`; 8 to 65,536 |
//! | `log_level` | `"info"` | `"error"`, `"warn"`, `"info"`, `"debug"` or `"trace"` |
//! | `[job_defaults]` `minimum_retry_delay` | `"10m"` (600 s) | MinimumRetryDelay of new jobs; values below 5 s are raised to 5 s, as Windows does |
//! | `[job_defaults]` `no_progress_timeout` | `"14d"` (1,209,600 s) | NoProgressTimeout of new jobs; `0` means an error is never retried |
//! | `[job_defaults]` `priority` | `"normal"` | priority of new jobs: `"foreground"`, `"high"`, `"normal"` or `"low"` |
//! | `[job_defaults]` `parallel_files` | `1` | files of one job transferred at once; 1 to 64 |
//! | `[job_defaults]` `cost_flags` | `0x80000021` | Job5 COST_FLAGS of HIGH, NORMAL and LOW jobs that set none (`BITS_COST_STATE_TRANSFER_UNRESTRICTED`: not on a metered network); FOREGROUND jobs default to `0x800000FF` (always) |
//! | `idle_mode` | `true` | background jobs use only bandwidth nobody else uses (a delay-based controller; per job too) |
//! | `idle_target` | `"40ms"` | the queueing delay idle mode aims at; 20 ms to 100 ms |
//! | `metered` | `"auto"` | whether the network is metered: `"auto"` asks NetworkManager (unmetered without it), `"yes"` or `"no"` overrides it |
//! | `[[schedule]]` | none | a bandwidth window (see below) |
//!
//! Each `[[schedule]]` table is one window of BITS 3.5's bandwidth schedule, in the
//! machine's local time: `days` (a list of names or ranges, `["mon-fri"]`, `["sat",
//! "sun"]`; default every day), `hours` (`"08:00-17:00"`; an end at or before the start
//! runs into the next day; default `"00:00-24:00"`), caps `high`, `normal` and `low` (as
//! `bandwidth_limit`; a priority not named is not capped) and `maintenance = true` for a
//! window that overrides the ordinary ones. Ordinary windows must not overlap (nor may
//! maintenance windows among themselves). FOREGROUND is never capped; where a window's cap
//! and `bandwidth_limit` both apply, the lower binds.
//!
//! Durations are whole seconds (`90`) or a string of numbers with units `ms` (only where
//! a key takes fractions of a second), `s`, `m`, `h`, `d`, alone or combined: `"90s"`,
//! `"5m"`, `"2h"`, `"14d"`, `"1h30m"`; at most 4,294,967,295 s, the 32-bit seconds BITS uses. Text values (units, priorities, log
//! levels, `never`, `unlimited`) are not case-sensitive, except that bandwidth units
//! must say `B` (bytes): `Mb/s` would be megabits and is refused.
//!
//! ```toml
//! max_background_jobs = 2
//! bandwidth_limit = "20MB/s"
//!
//! [job_defaults]
//! minimum_retry_delay = "30s"
//!
//! [[schedule]]
//! days = ["mon-fri"]
//! hours = "08:00-17:00"
//! normal = "1MB/s"
//! low = "200kB/s"
//! ```

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::{Spanned, Value};

use crate::job::{
    DEFAULT_MINIMUM_RETRY_DELAY, DEFAULT_NO_PROGRESS_TIMEOUT, JobPriority,
    MINIMUM_RETRY_DELAY_FLOOR,
};
use crate::policy::{
    ALL_DAYS, COST_FLAGS_TRANSFER_UNRESTRICTED, DAY_NAMES, MINUTES_PER_DAY, MeteredSetting,
    PriorityCaps, ScheduleWindow,
};
use crate::{QmgrError, Result};

/// The parsed configuration; every field holds its default unless the file set it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Background jobs transferring at once (1..=64); FOREGROUND jobs never count.
    pub max_background_jobs: u32,
    /// Turn length among background jobs of equal priority.
    pub time_slice: Duration,
    /// Global cap for background jobs in bytes per second; `None` is no cap.
    pub bandwidth_limit: Option<u64>,
    /// Jobs one user may have (root is not limited).
    pub max_jobs_per_user: u32,
    /// Client connections qmgrd serves at once.
    pub max_connections: u32,
    /// Files one job may have.
    pub max_files_per_job: u32,
    /// Jobs untouched this long are cancelled.
    pub job_inactivity_timeout: Duration,
    /// How long an on-demand daemon lingers with nothing to do; `None` is forever.
    pub idle_exit: Option<Duration>,
    /// A download that receives nothing for this long is cut (a transient error).
    pub stall_timeout: Duration,
    /// Store directory overriding `$XDG_STATE_HOME/qmgr`.
    pub state_dir: Option<PathBuf>,
    pub log_level: LogLevel,
    pub job_defaults: JobDefaults,
    /// Background jobs use only idle bandwidth (per job too; FOREGROUND never).
    pub idle_mode: bool,
    /// The queueing delay idle mode aims at (20 to 100 ms).
    pub idle_target: Duration,
    /// Whether the network is metered: NetworkManager's word, or the config's.
    pub metered: MeteredSetting,
    /// The `[[schedule]]` windows, in the file's order.
    pub schedules: Vec<ScheduleWindow>,
}

/// The bounds and default of `idle_target`.
pub const IDLE_TARGET_MIN: Duration = Duration::from_millis(20);
pub const IDLE_TARGET_MAX: Duration = Duration::from_millis(100);
pub const DEFAULT_IDLE_TARGET: Duration = Duration::from_millis(40);

/// Settings new jobs start with (`[job_defaults]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobDefaults {
    /// MinimumRetryDelay; never below [`MINIMUM_RETRY_DELAY_FLOOR`].
    pub minimum_retry_delay: Duration,
    /// NoProgressTimeout; zero means errors are never retried.
    pub no_progress_timeout: Duration,
    pub priority: JobPriority,
    /// Files of one job transferred at once (1..=64).
    pub parallel_files: u32,
    /// Job5 COST_FLAGS of background jobs that set none.
    pub cost_flags: u32,
}

/// How much the daemon logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The name used in the config file and by `tracing` filters.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}

/// The most of anything that runs at once: background jobs (`max_background_jobs`) and the
/// files of one job (`parallel_files`, in the config and on each job).
pub const MAX_CONCURRENT_TRANSFERS: u32 = 64;
/// The default of `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 256;
/// The most `max_files_per_job` may be. A job's files need not fit one IPC frame: AddFiles
/// travels in parts, and clients read a job as a summary plus pages of files.
pub const MAX_FILES_PER_JOB_CEILING: u32 = 1_000_000;

impl Default for Config {
    fn default() -> Self {
        Self {
            max_background_jobs: 1,
            time_slice: Duration::from_secs(5 * 60),
            bandwidth_limit: None,
            max_jobs_per_user: 60,
            max_files_per_job: 200,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            job_inactivity_timeout: Duration::from_secs(90 * 24 * 3600),
            idle_exit: Some(Duration::from_secs(5 * 60)),
            stall_timeout: Duration::from_secs(120),
            state_dir: None,
            log_level: LogLevel::Info,
            job_defaults: JobDefaults::default(),
            idle_mode: true,
            idle_target: DEFAULT_IDLE_TARGET,
            metered: MeteredSetting::Auto,
            schedules: Vec::new(),
        }
    }
}

impl Default for JobDefaults {
    fn default() -> Self {
        Self {
            minimum_retry_delay: DEFAULT_MINIMUM_RETRY_DELAY,
            no_progress_timeout: DEFAULT_NO_PROGRESS_TIMEOUT,
            priority: JobPriority::Normal,
            parallel_files: 1,
            cost_flags: COST_FLAGS_TRANSFER_UNRESTRICTED,
        }
    }
}

impl Config {
    /// Reads the config file at `path`. A file that does not exist gives the defaults; one
    /// that cannot be read, or that another user could have written (a symbolic link, an
    /// untrusted directory on its way, another owner, writable by others: `E_ACCESSDENIED`),
    /// is an error, and so is one with an unknown key or a bad value (`E_INVALIDARG`,
    /// naming the key, the file and the line).
    pub fn load(path: &Path) -> Result<Config> {
        // Whoever could write the file could point `state_dir` anywhere: only a file that
        // this user (or root) controls is read (see `trust`).
        let Some(bytes) = crate::trust::read_trusted_file(path, "config file")? else {
            return Ok(Config::default());
        };
        let text = String::from_utf8(bytes).map_err(|error| {
            QmgrError::invalid_arg(format!(
                "config file {} is not valid UTF-8 (at byte {})",
                path.display(),
                error.utf8_error().valid_up_to()
            ))
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses config text; `origin` (normally the file's path) starts every error message.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config> {
        let source = Source { text, origin };
        let raw: RawConfig = toml::from_str(text).map_err(|error| source.toml_error(&error))?;
        raw.validate(&source)
    }
}

/// Parses a duration: whole seconds (`"90"`) or numbers with units `ms`, `s`, `m`, `h`,
/// `d`, alone or combined (`"90s"`, `"5m"`, `"1h30m"`, `"14d"`, `"40ms"`); units are not
/// case-sensitive and spaces between parts are allowed. At most `u32::MAX` seconds, the
/// range of the 32-bit seconds BITS uses. Errors are `E_INVALIDARG`.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let invalid = |why: &str| {
        QmgrError::invalid_arg(format!(
            "invalid duration {text:?}: {why} (write whole seconds or a number with a unit \
             ms, s, m, h or d, such as \"90s\", \"5m\", \"1h30m\")"
        ))
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid("it is empty"));
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return seconds_from_u64(trimmed.parse().map_err(|_| invalid("number too large"))?)
            .map_err(|why| invalid(&why));
    }

    let mut total_ms: u64 = 0;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return Err(invalid("expected a number"));
        }
        let number: u64 = rest[..digits_end]
            .parse()
            .map_err(|_| invalid("number too large"))?;
        let after_number = rest[digits_end..].trim_start();
        let unit_end = after_number
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after_number.len());
        let unit = &after_number[..unit_end];
        let ms_per_unit = match unit.to_ascii_lowercase().as_str() {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(invalid("a number without a unit")),
            _ => return Err(invalid(&format!("unknown unit {unit:?}"))),
        };
        total_ms = number
            .checked_mul(ms_per_unit)
            .and_then(|part| total_ms.checked_add(part))
            .ok_or_else(|| invalid("number too large"))?;
        rest = after_number[unit_end..].trim_start();
    }
    if total_ms / 1000 > u64::from(u32::MAX) {
        return Err(invalid(&format!("more than {} seconds", u32::MAX)));
    }
    Ok(Duration::from_millis(total_ms))
}

fn seconds_from_u64(seconds: u64) -> std::result::Result<Duration, String> {
    if seconds > u64::from(u32::MAX) {
        Err(format!("more than {} seconds", u32::MAX))
    } else {
        Ok(Duration::from_secs(seconds))
    }
}

/// Parses a transfer rate into bytes per second; `None` means no cap.
///
/// Accepts a whole number of bytes per second (`"250000"`), or a number with a unit:
/// decimal `B`, `kB`, `MB`, `GB`, `TB` (powers of 1000) or binary `KiB`, `MiB`, `GiB`,
/// `TiB` (powers of 1024), optionally followed by `/s` (`"20MB/s"`, `"512KiB"`).
/// `"unlimited"` and zero mean no cap. Prefixes are not case-sensitive, but the `B` must
/// be upper-case: a lower-case `b` means bits and is refused rather than guessed.
/// Errors are `E_INVALIDARG`.
pub fn parse_rate(text: &str) -> Result<Option<u64>> {
    let invalid = |why: &str| {
        QmgrError::invalid_arg(format!(
            "invalid rate {text:?}: {why} (write bytes per second with an optional unit, \
             such as \"500kB/s\", \"20MB/s\", \"512KiB/s\", or \"unlimited\")"
        ))
    };
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    if digits_end == 0 {
        return Err(invalid(if trimmed.is_empty() {
            "it is empty"
        } else {
            "expected a whole number"
        }));
    }
    let number: u64 = trimmed[..digits_end]
        .parse()
        .map_err(|_| invalid("number too large"))?;
    let unit = trimmed[digits_end..].trim_start();
    let unit = unit.strip_suffix("/s").unwrap_or(unit).trim_end();
    let multiplier = rate_unit_multiplier(unit).map_err(|why| invalid(&why))?;
    let bytes_per_second = number
        .checked_mul(multiplier)
        .ok_or_else(|| invalid("number too large"))?;
    Ok((bytes_per_second != 0).then_some(bytes_per_second))
}

fn rate_unit_multiplier(unit: &str) -> std::result::Result<u64, String> {
    if unit.is_empty() {
        return Ok(1);
    }
    let Some(prefix) = unit.strip_suffix('B') else {
        return Err(if unit.ends_with('b') {
            format!("{unit:?} would be bits; limits are in bytes, write B")
        } else {
            format!("unknown unit {unit:?}")
        });
    };
    let (prefix, base) = match prefix.strip_suffix(['i', 'I']) {
        Some(binary) if !binary.is_empty() => (binary, 1024_u64),
        _ => (prefix, 1000_u64),
    };
    let exponent = match prefix.to_ascii_lowercase().as_str() {
        "" if base == 1000 => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        _ => return Err(format!("unknown unit {unit:?}")),
    };
    Ok(base.pow(exponent))
}

/// The text being parsed and what to call it in messages.
struct Source<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Source<'_> {
    fn error_at(&self, span: Option<Range<usize>>, message: &str) -> QmgrError {
        let location = match span {
            Some(span) => {
                let (line, column) = self.line_and_column(span.start);
                format!("{}:{line}:{column}", self.origin)
            }
            None => self.origin.to_owned(),
        };
        QmgrError::invalid_arg(format!("{location}: {message}"))
    }

    /// A syntax or structure error from the TOML parser, in qmgr's words where they differ:
    /// "key" rather than serde's "field", and the duplicated key's name.
    fn toml_error(&self, error: &toml::de::Error) -> QmgrError {
        let message = error.message().trim_end();
        let message = match (message, error.span()) {
            ("duplicate key", Some(span)) => {
                format!(
                    "duplicate key `{}`",
                    self.text.get(span).unwrap_or("?").trim()
                )
            }
            _ => match message.strip_prefix("unknown field ") {
                Some(rest) => format!("unknown key {rest}"),
                None => message.to_owned(),
            },
        };
        self.error_at(error.span(), &message)
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn line_and_column(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let line = before.matches('\n').count() + 1;
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }
}

/// The file as written: every value kept with its position so that a validation error can
/// point at it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    max_background_jobs: Option<Spanned<Value>>,
    time_slice: Option<Spanned<Value>>,
    bandwidth_limit: Option<Spanned<Value>>,
    max_jobs_per_user: Option<Spanned<Value>>,
    max_files_per_job: Option<Spanned<Value>>,
    max_connections: Option<Spanned<Value>>,
    job_inactivity_timeout: Option<Spanned<Value>>,
    idle_exit: Option<Spanned<Value>>,
    stall_timeout: Option<Spanned<Value>>,
    state_dir: Option<Spanned<Value>>,
    log_level: Option<Spanned<Value>>,
    job_defaults: Option<RawJobDefaults>,
    idle_mode: Option<Spanned<Value>>,
    idle_target: Option<Spanned<Value>>,
    metered: Option<Spanned<Value>>,
    schedule: Option<Vec<Spanned<RawSchedule>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[schedule]] table")]
struct RawSchedule {
    days: Option<Spanned<Value>>,
    hours: Option<Spanned<Value>>,
    high: Option<Spanned<Value>>,
    normal: Option<Spanned<Value>>,
    low: Option<Spanned<Value>>,
    maintenance: Option<Spanned<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [job_defaults] table")]
struct RawJobDefaults {
    minimum_retry_delay: Option<Spanned<Value>>,
    no_progress_timeout: Option<Spanned<Value>>,
    priority: Option<Spanned<Value>>,
    parallel_files: Option<Spanned<Value>>,
    cost_flags: Option<Spanned<Value>>,
}

impl RawConfig {
    fn validate(self, source: &Source<'_>) -> Result<Config> {
        let defaults = Config::default();
        let check = Validator { source };
        Ok(Config {
            max_background_jobs: read_key(
                "max_background_jobs",
                self.max_background_jobs,
                defaults.max_background_jobs,
                |key, value| check.integer_in(key, value, 1, MAX_CONCURRENT_TRANSFERS),
            )?,
            time_slice: read_key(
                "time_slice",
                self.time_slice,
                defaults.time_slice,
                |key, value| check.positive_duration(key, value),
            )?,
            bandwidth_limit: read_key(
                "bandwidth_limit",
                self.bandwidth_limit,
                defaults.bandwidth_limit,
                |key, value| check.rate(key, value),
            )?,
            max_jobs_per_user: read_key(
                "max_jobs_per_user",
                self.max_jobs_per_user,
                defaults.max_jobs_per_user,
                |key, value| check.integer_in(key, value, 1, u32::MAX),
            )?,
            max_files_per_job: read_key(
                "max_files_per_job",
                self.max_files_per_job,
                defaults.max_files_per_job,
                |key, value| check.integer_in(key, value, 1, MAX_FILES_PER_JOB_CEILING),
            )?,
            max_connections: read_key(
                "max_connections",
                self.max_connections,
                defaults.max_connections,
                |key, value| check.integer_in(key, value, 8, 65_536),
            )?,
            job_inactivity_timeout: read_key(
                "job_inactivity_timeout",
                self.job_inactivity_timeout,
                defaults.job_inactivity_timeout,
                |key, value| check.positive_duration(key, value),
            )?,
            stall_timeout: read_key(
                "stall_timeout",
                self.stall_timeout,
                defaults.stall_timeout,
                |key, value| check.positive_duration(key, value),
            )?,
            idle_exit: read_key(
                "idle_exit",
                self.idle_exit,
                defaults.idle_exit,
                |key, value| {
                    if value
                        .get_ref()
                        .as_str()
                        .is_some_and(|s| s.trim().eq_ignore_ascii_case("never"))
                    {
                        Ok(None)
                    } else {
                        check.positive_duration(key, value).map(Some)
                    }
                },
            )?,
            state_dir: read_key(
                "state_dir",
                self.state_dir,
                defaults.state_dir,
                |key, value| check.absolute_path(key, value).map(Some),
            )?,
            log_level: read_key(
                "log_level",
                self.log_level,
                defaults.log_level,
                |key, value| {
                    check.choice(
                        key,
                        value,
                        &[
                            ("error", LogLevel::Error),
                            ("warn", LogLevel::Warn),
                            ("info", LogLevel::Info),
                            ("debug", LogLevel::Debug),
                            ("trace", LogLevel::Trace),
                        ],
                    )
                },
            )?,
            job_defaults: match self.job_defaults {
                Some(raw) => raw.validate(&check)?,
                None => defaults.job_defaults,
            },
            idle_mode: read_key(
                "idle_mode",
                self.idle_mode,
                defaults.idle_mode,
                |key, value| check.boolean(key, value),
            )?,
            idle_target: read_key(
                "idle_target",
                self.idle_target,
                defaults.idle_target,
                |key, value| check.idle_target(key, value),
            )?,
            metered: read_key("metered", self.metered, defaults.metered, |key, value| {
                check.choice(
                    key,
                    value,
                    &[
                        ("auto", MeteredSetting::Auto),
                        ("yes", MeteredSetting::Yes),
                        ("no", MeteredSetting::No),
                    ],
                )
            })?,
            schedules: check.schedules(self.schedule.unwrap_or_default())?,
        })
    }
}

impl RawJobDefaults {
    fn validate(self, check: &Validator<'_>) -> Result<JobDefaults> {
        let defaults = JobDefaults::default();
        Ok(JobDefaults {
            minimum_retry_delay: read_key(
                "job_defaults.minimum_retry_delay",
                self.minimum_retry_delay,
                defaults.minimum_retry_delay,
                |key, value| check.duration(key, value),
            )?
            .max(MINIMUM_RETRY_DELAY_FLOOR),
            no_progress_timeout: read_key(
                "job_defaults.no_progress_timeout",
                self.no_progress_timeout,
                defaults.no_progress_timeout,
                |key, value| check.duration(key, value),
            )?,
            priority: read_key(
                "job_defaults.priority",
                self.priority,
                defaults.priority,
                |key, value| {
                    check.choice(
                        key,
                        value,
                        &[
                            ("foreground", JobPriority::Foreground),
                            ("high", JobPriority::High),
                            ("normal", JobPriority::Normal),
                            ("low", JobPriority::Low),
                        ],
                    )
                },
            )?,
            parallel_files: read_key(
                "job_defaults.parallel_files",
                self.parallel_files,
                defaults.parallel_files,
                |key, value| check.integer_in(key, value, 1, MAX_CONCURRENT_TRANSFERS),
            )?,
            cost_flags: read_key(
                "job_defaults.cost_flags",
                self.cost_flags,
                defaults.cost_flags,
                |key, value| check.integer_in(key, value, 1, u32::MAX),
            )?,
        })
    }
}

/// The value of `key` converted by `convert`, or `default` when the file does not set it.
fn read_key<T>(
    key: &str,
    value: Option<Spanned<Value>>,
    default: T,
    convert: impl FnOnce(&str, &Spanned<Value>) -> Result<T>,
) -> Result<T> {
    value.map_or(Ok(default), |value| convert(key, &value))
}

/// Turns raw values into typed ones, with errors that name the key and point at the value.
struct Validator<'a> {
    source: &'a Source<'a>,
}

impl Validator<'_> {
    fn fail(&self, key: &str, value: &Spanned<Value>, why: &str) -> QmgrError {
        self.source
            .error_at(Some(value.span()), &format!("bad value for `{key}`: {why}"))
    }

    fn integer_in(&self, key: &str, value: &Spanned<Value>, min: u32, max: u32) -> Result<u32> {
        let range = if max == u32::MAX {
            format!("a whole number of at least {min}")
        } else {
            format!("a whole number from {min} to {max}")
        };
        match value.get_ref() {
            Value::Integer(number) => u32::try_from(*number)
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| self.fail(key, value, &format!("expected {range}, found {number}"))),
            other => Err(self.fail(
                key,
                value,
                &format!("expected {range}, found {}", describe(other)),
            )),
        }
    }

    fn duration(&self, key: &str, value: &Spanned<Value>) -> Result<Duration> {
        match value.get_ref() {
            Value::Integer(seconds) => u64::try_from(*seconds)
                .map_err(|_| format!("a duration cannot be negative, found {seconds}"))
                .and_then(seconds_from_u64)
                .map_err(|why| self.fail(key, value, &why)),
            Value::String(text) => match parse_duration(text) {
                Ok(duration) if duration.subsec_nanos() != 0 => Err(self.fail(
                    key,
                    value,
                    &format!("{text:?} is not a whole number of seconds"),
                )),
                Ok(duration) => Ok(duration),
                Err(error) => Err(self.fail(key, value, &error.description)),
            },
            other => Err(self.fail(
                key,
                value,
                &format!(
                    "expected a duration such as \"90s\" or whole seconds, found {}",
                    describe(other)
                ),
            )),
        }
    }

    fn idle_target(&self, key: &str, value: &Spanned<Value>) -> Result<Duration> {
        let Value::String(text) = value.get_ref() else {
            return Err(self.fail(
                key,
                value,
                &format!(
                    "expected a duration such as \"40ms\", found {}",
                    describe(value.get_ref())
                ),
            ));
        };
        let duration =
            parse_duration(text).map_err(|error| self.fail(key, value, &error.description))?;
        if (IDLE_TARGET_MIN..=IDLE_TARGET_MAX).contains(&duration) {
            Ok(duration)
        } else {
            Err(self.fail(
                key,
                value,
                &format!("expected 20ms to 100ms, found {text:?}"),
            ))
        }
    }

    fn boolean(&self, key: &str, value: &Spanned<Value>) -> Result<bool> {
        match value.get_ref() {
            Value::Boolean(flag) => Ok(*flag),
            other => Err(self.fail(
                key,
                value,
                &format!("expected true or false, found {}", describe(other)),
            )),
        }
    }

    /// The `[[schedule]]` tables as windows; overlapping ordinary windows (or maintenance
    /// windows) are an error naming both.
    fn schedules(&self, raw: Vec<Spanned<RawSchedule>>) -> Result<Vec<ScheduleWindow>> {
        let mut windows = Vec::with_capacity(raw.len());
        let mut spans = Vec::with_capacity(raw.len());
        for table in raw {
            let span = table.span();
            let line = self.source.line_and_column(span.start).0;
            let table = table.into_inner();
            let (start, end) = match &table.hours {
                Some(hours) => self.hours("schedule.hours", hours)?,
                None => (0, 0),
            };
            let caps = PriorityCaps {
                high: read_key("schedule.high", table.high, None, |key, value| {
                    self.rate(key, value)
                })?,
                normal: read_key("schedule.normal", table.normal, None, |key, value| {
                    self.rate(key, value)
                })?,
                low: read_key("schedule.low", table.low, None, |key, value| {
                    self.rate(key, value)
                })?,
            };
            windows.push(ScheduleWindow {
                days: read_key("schedule.days", table.days, ALL_DAYS, |key, value| {
                    self.days(key, value)
                })?,
                start,
                end,
                caps,
                maintenance: read_key(
                    "schedule.maintenance",
                    table.maintenance,
                    false,
                    |key, value| self.boolean(key, value),
                )?,
                line,
            });
            spans.push(span);
        }
        if let Some((first, second)) = crate::policy::first_overlap(&windows) {
            let kind = if windows[first].maintenance {
                "maintenance windows"
            } else {
                "schedule windows"
            };
            return Err(self.source.error_at(
                Some(spans[second].clone()),
                &format!(
                    "[[schedule]] ({}) overlaps the one at line {} ({}); {kind} must not overlap",
                    windows[second].describe(),
                    windows[first].line,
                    windows[first].describe(),
                ),
            ));
        }
        Ok(windows)
    }

    /// `"08:00-17:00"` as minutes of the day; `"00:00-24:00"` (the whole day) is (0, 0).
    fn hours(&self, key: &str, value: &Spanned<Value>) -> Result<(u32, u32)> {
        let bad = |why: &str| {
            self.fail(
                key,
                value,
                &format!("{why} (write \"HH:MM-HH:MM\" in local time, such as \"08:00-17:00\")"),
            )
        };
        let Value::String(text) = value.get_ref() else {
            return Err(bad(&format!("found {}", describe(value.get_ref()))));
        };
        let clock = |part: &str| -> Option<u32> {
            let (hours, minutes) = part.trim().split_once(':')?;
            let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
            (minutes < 60 && (hours < 24 || (hours == 24 && minutes == 0)))
                .then_some(hours * 60 + minutes)
        };
        let Some((from, to)) = text.split_once('-') else {
            return Err(bad(&format!("{text:?} is not a range of hours")));
        };
        let (Some(start), Some(end)) = (clock(from), clock(to)) else {
            return Err(bad(&format!(
                "{text:?} has a time that is not HH:MM of a day"
            )));
        };
        if start == MINUTES_PER_DAY {
            return Err(bad(&format!("{text:?} starts at 24:00")));
        }
        if start == end % MINUTES_PER_DAY && !(start == 0 && end == MINUTES_PER_DAY) {
            return Err(bad(&format!("{text:?} is empty")));
        }
        Ok((start, end % MINUTES_PER_DAY))
    }

    /// A list of day names and ranges (`["mon-fri", "sun"]`), or one such string, as bits.
    fn days(&self, key: &str, value: &Spanned<Value>) -> Result<u8> {
        let bad = |why: String| {
            self.fail(
                key,
                value,
                &format!("{why} (write a list of mon, tue, wed, thu, fri, sat, sun or ranges such as \"mon-fri\")"),
            )
        };
        let items: Vec<&Value> = match value.get_ref() {
            Value::Array(items) => items.iter().collect(),
            single @ Value::String(_) => vec![single],
            other => return Err(bad(format!("found {}", describe(other)))),
        };
        if items.is_empty() {
            return Err(bad("the list is empty".to_owned()));
        }
        let day = |name: &str| -> Option<u32> {
            let name = name.trim().to_ascii_lowercase();
            let position = DAY_NAMES.iter().position(|day| {
                name.len() >= 3 && (name == *day || full_day_name(day).starts_with(&name))
            })?;
            u32::try_from(position).ok()
        };
        let mut mask = 0_u8;
        for item in items {
            let Value::String(text) = item else {
                return Err(bad(format!("found {}", describe(item))));
            };
            if text.trim().eq_ignore_ascii_case("all") {
                mask = ALL_DAYS;
                continue;
            }
            let (first, last) = match text.split_once('-') {
                Some((first, last)) => (day(first), day(last)),
                None => (day(text), day(text)),
            };
            let (Some(first), Some(last)) = (first, last) else {
                return Err(bad(format!("{text:?} is not a day or a range of days")));
            };
            // A range may wrap round the week ("fri-mon").
            let mut current = first;
            loop {
                mask |= 1 << current;
                if current == last {
                    break;
                }
                current = (current + 1) % 7;
            }
        }
        Ok(mask)
    }

    fn positive_duration(&self, key: &str, value: &Spanned<Value>) -> Result<Duration> {
        let duration = self.duration(key, value)?;
        if duration.is_zero() {
            Err(self.fail(key, value, "must be at least 1 second"))
        } else {
            Ok(duration)
        }
    }

    fn rate(&self, key: &str, value: &Spanned<Value>) -> Result<Option<u64>> {
        match value.get_ref() {
            Value::Integer(bytes) => u64::try_from(*bytes)
                .map(|bytes| (bytes != 0).then_some(bytes))
                .map_err(|_| {
                    self.fail(
                        key,
                        value,
                        &format!("a rate cannot be negative, found {bytes}"),
                    )
                }),
            Value::String(text) => {
                parse_rate(text).map_err(|error| self.fail(key, value, &error.description))
            }
            other => Err(self.fail(
                key,
                value,
                &format!(
                    "expected bytes per second or a string such as \"20MB/s\", found {}",
                    describe(other)
                ),
            )),
        }
    }

    fn absolute_path(&self, key: &str, value: &Spanned<Value>) -> Result<PathBuf> {
        let Value::String(text) = value.get_ref() else {
            return Err(self.fail(
                key,
                value,
                &format!(
                    "expected a path string, found {}",
                    describe(value.get_ref())
                ),
            ));
        };
        let path = PathBuf::from(text);
        if path.is_absolute() {
            Ok(path)
        } else {
            Err(self.fail(
                key,
                value,
                &format!("{text:?} is not an absolute path (~ and variables are not expanded)"),
            ))
        }
    }

    fn choice<T: Copy>(
        &self,
        key: &str,
        value: &Spanned<Value>,
        choices: &[(&str, T)],
    ) -> Result<T> {
        let names: Vec<String> = choices
            .iter()
            .map(|(name, _)| format!("{name:?}"))
            .collect();
        let expected = format!("expected one of {}", names.join(", "));
        let Value::String(text) = value.get_ref() else {
            return Err(self.fail(
                key,
                value,
                &format!("{expected}, found {}", describe(value.get_ref())),
            ));
        };
        choices
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text.trim()))
            .map(|(_, choice)| *choice)
            .ok_or_else(|| self.fail(key, value, &format!("{expected}, found {text:?}")))
    }
}

/// `"monday"` for `"mon"`: a day's full name, which the config accepts too.
fn full_day_name(short: &str) -> &'static str {
    match short {
        "mon" => "monday",
        "tue" => "tuesday",
        "wed" => "wednesday",
        "thu" => "thursday",
        "fri" => "friday",
        "sat" => "saturday",
        _ => "sunday",
    }
}

/// A value as an error message shows it: its TOML type, and the value itself when short.
fn describe(value: &Value) -> String {
    match value {
        Value::String(text) => format!("the string {text:?}"),
        Value::Integer(number) => format!("the integer {number}"),
        Value::Float(number) => format!("the float {number}"),
        Value::Boolean(flag) => format!("the boolean {flag}"),
        other => format!("a {}", other.type_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hresult;

    fn parse(text: &str) -> Result<Config> {
        Config::from_toml_str(text, "/etc/test/config.toml")
    }

    fn parse_err(text: &str) -> String {
        let error = parse(text).expect_err("config should be rejected");
        assert_eq!(error.hresult, hresult::E_INVALIDARG, "{error}");
        error.description
    }

    const fn secs(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    #[test]
    fn defaults_are_windows_values() {
        let config = Config::default();
        assert_eq!(config.max_background_jobs, 1);
        assert_eq!(config.time_slice, secs(300));
        assert_eq!(config.bandwidth_limit, None);
        assert_eq!(config.max_jobs_per_user, 60);
        assert_eq!(config.max_files_per_job, 200);
        assert_eq!(config.job_inactivity_timeout, secs(7_776_000));
        assert_eq!(config.idle_exit, Some(secs(300)));
        assert_eq!(config.stall_timeout, secs(120));
        assert_eq!(config.state_dir, None);
        assert_eq!(config.log_level, LogLevel::Info);
        assert_eq!(config.job_defaults.minimum_retry_delay, secs(600));
        assert_eq!(config.job_defaults.no_progress_timeout, secs(1_209_600));
        assert_eq!(config.job_defaults.priority, JobPriority::Normal);
        assert_eq!(config.job_defaults.parallel_files, 1);
    }

    #[test]
    fn empty_text_and_comments_give_the_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
        assert_eq!(parse("# nothing here\n\n").unwrap(), Config::default());
        assert_eq!(parse("[job_defaults]\n").unwrap(), Config::default());
    }

    #[test]
    fn every_key_is_read() {
        let config = parse(
            r#"
            max_background_jobs = 4
            time_slice = "90s"
            bandwidth_limit = "20MB/s"
            max_jobs_per_user = 10000
            max_files_per_job = 1000
            max_connections = 1024
            job_inactivity_timeout = "30d"
            idle_exit = "never"
            stall_timeout = "30s"
            state_dir = "/srv/qmgr"
            log_level = "debug"

            [job_defaults]
            minimum_retry_delay = "30s"
            no_progress_timeout = 3600
            priority = "high"
            parallel_files = 16
            cost_flags = 0x800000FF
            "#,
        )
        .unwrap();
        assert_eq!(
            config,
            Config {
                max_background_jobs: 4,
                time_slice: secs(90),
                bandwidth_limit: Some(20_000_000),
                max_jobs_per_user: 10_000,
                max_files_per_job: 1000,
                max_connections: 1024,
                job_inactivity_timeout: secs(30 * 86_400),
                idle_exit: None,
                stall_timeout: secs(30),
                state_dir: Some(PathBuf::from("/srv/qmgr")),
                log_level: LogLevel::Debug,
                job_defaults: JobDefaults {
                    minimum_retry_delay: secs(30),
                    no_progress_timeout: secs(3600),
                    priority: JobPriority::High,
                    parallel_files: 16,
                    cost_flags: 0x8000_00FF,
                },
                ..Config::default()
            }
        );
    }

    #[test]
    fn idle_and_metered_keys_are_read() {
        let config =
            parse("idle_mode = false\nidle_target = \"25ms\"\nmetered = \"yes\"\n").unwrap();
        assert!(!config.idle_mode);
        assert_eq!(config.idle_target, Duration::from_millis(25));
        assert_eq!(config.metered, MeteredSetting::Yes);
        let defaults = Config::default();
        assert!(defaults.idle_mode);
        assert_eq!(defaults.idle_target, Duration::from_millis(40));
        assert_eq!(defaults.metered, MeteredSetting::Auto);
        assert_eq!(defaults.job_defaults.cost_flags, 0x8000_0021);
        assert!(defaults.schedules.is_empty());
    }

    #[test]
    fn schedules_are_read_as_windows() {
        let config = parse(
            r#"
            bandwidth_limit = "10MB/s"

            [[schedule]]
            days = ["mon-fri"]
            hours = "08:00-17:00"
            normal = "1MB/s"
            low = 1000

            [[schedule]]
            days = ["Saturday", "sun"]
            high = "unlimited"
            normal = "2MB/s"

            [[schedule]]
            days = "fri-mon"
            hours = "22:00-06:00"
            low = "5kB"
            maintenance = true
            "#,
        )
        .unwrap();
        assert_eq!(
            config.schedules,
            vec![
                ScheduleWindow {
                    days: 0x1F,
                    start: 8 * 60,
                    end: 17 * 60,
                    caps: PriorityCaps {
                        high: None,
                        normal: Some(1_000_000),
                        low: Some(1000),
                    },
                    maintenance: false,
                    line: 4,
                },
                ScheduleWindow {
                    days: 0x60,
                    start: 0,
                    end: 0,
                    caps: PriorityCaps {
                        high: None,
                        normal: Some(2_000_000),
                        low: None,
                    },
                    maintenance: false,
                    line: 10,
                },
                ScheduleWindow {
                    days: 0x71,
                    start: 22 * 60,
                    end: 6 * 60,
                    caps: PriorityCaps {
                        high: None,
                        normal: None,
                        low: Some(5000),
                    },
                    maintenance: true,
                    line: 15,
                },
            ]
        );
    }

    #[test]
    fn bad_schedules_are_errors_naming_key_file_and_line() {
        let cases = [
            ("[[schedule]]\ndays = [\"mon-fry\"]", "schedule.days", 3),
            ("[[schedule]]\ndays = []", "schedule.days", 3),
            ("[[schedule]]\ndays = [1]", "schedule.days", 3),
            ("[[schedule]]\nhours = \"8-17\"", "schedule.hours", 3),
            ("[[schedule]]\nhours = \"08:00-25:00\"", "schedule.hours", 3),
            (
                "[[schedule]]\nhours = \"08:00 to 17:00\"",
                "schedule.hours",
                3,
            ),
            ("[[schedule]]\nhours = \"08:00-08:00\"", "schedule.hours", 3),
            ("[[schedule]]\nnormal = \"1Mb/s\"", "schedule.normal", 3),
            (
                "[[schedule]]\nmaintenance = \"yes\"",
                "schedule.maintenance",
                3,
            ),
            ("idle_target = \"10ms\"", "idle_target", 2),
            ("idle_target = \"1s\"", "idle_target", 2),
            ("idle_target = 40", "idle_target", 2),
            ("idle_mode = \"no\"", "idle_mode", 2),
            ("metered = \"maybe\"", "metered", 2),
            (
                "[job_defaults]\ncost_flags = 0",
                "job_defaults.cost_flags",
                3,
            ),
            ("time_slice = \"1500ms\"", "time_slice", 2),
        ];
        for (text, key, line) in cases {
            let message = parse_err(&format!("# comment\n{text}\n"));
            assert!(message.contains(&format!("`{key}`")), "{text}: {message}");
            assert!(
                message.starts_with(&format!("/etc/test/config.toml:{line}:")),
                "{text}: {message}"
            );
        }
        let message = parse_err("[[schedule]]\nbandwidth = 3\n");
        assert!(message.contains("unknown key `bandwidth`"), "{message}");
    }

    #[test]
    fn overlapping_windows_are_errors_naming_both_lines() {
        let message = parse_err(
            "[[schedule]]\ndays = [\"mon-fri\"]\nhours = \"08:00-17:00\"\nnormal = 1\n\n\
             [[schedule]]\ndays = [\"fri\"]\nhours = \"16:00-18:00\"\nnormal = 2\n",
        );
        assert!(message.starts_with("/etc/test/config.toml:6:"), "{message}");
        assert!(message.contains("line 1"), "{message}");
        assert!(message.contains("fri 16:00-18:00"), "{message}");
        // A maintenance window may overlap an ordinary one: it overrides it.
        parse(
            "[[schedule]]\nhours = \"08:00-17:00\"\nnormal = 1\n\
             [[schedule]]\nhours = \"12:00-13:00\"\nmaintenance = true\n",
        )
        .unwrap();
        // Sunday night into Monday overlaps Monday morning.
        let message = parse_err(
            "[[schedule]]\ndays = \"sun\"\nhours = \"23:00-02:00\"\n\
             [[schedule]]\ndays = \"mon\"\nhours = \"01:00-03:00\"\n",
        );
        assert!(message.contains("overlaps"), "{message}");
    }

    #[test]
    fn keys_given_as_integers_or_strings() {
        let config = parse(
            "time_slice = 120\nbandwidth_limit = 65536\nidle_exit = 30\n\
             job_inactivity_timeout = \"1h30m\"",
        )
        .unwrap();
        assert_eq!(config.time_slice, secs(120));
        assert_eq!(config.bandwidth_limit, Some(65_536));
        assert_eq!(config.idle_exit, Some(secs(30)));
        assert_eq!(config.job_inactivity_timeout, secs(5400));
    }

    #[test]
    fn zero_or_unlimited_bandwidth_means_no_cap() {
        assert_eq!(parse("bandwidth_limit = 0").unwrap().bandwidth_limit, None);
        assert_eq!(
            parse("bandwidth_limit = \"unlimited\"")
                .unwrap()
                .bandwidth_limit,
            None
        );
        assert_eq!(
            parse("bandwidth_limit = \"0MB/s\"")
                .unwrap()
                .bandwidth_limit,
            None
        );
    }

    #[test]
    fn every_log_level_and_priority_is_accepted() {
        for (name, level) in [
            ("error", LogLevel::Error),
            ("warn", LogLevel::Warn),
            ("info", LogLevel::Info),
            ("debug", LogLevel::Debug),
            ("TRACE", LogLevel::Trace),
        ] {
            let config = parse(&format!("log_level = {name:?}")).unwrap();
            assert_eq!(config.log_level, level);
            assert!(level.name().eq_ignore_ascii_case(name));
        }
        for (name, priority) in [
            ("foreground", JobPriority::Foreground),
            ("High", JobPriority::High),
            ("normal", JobPriority::Normal),
            ("low", JobPriority::Low),
        ] {
            let config = parse(&format!("[job_defaults]\npriority = {name:?}")).unwrap();
            assert_eq!(config.job_defaults.priority, priority);
        }
    }

    #[test]
    fn small_retry_delays_are_raised_to_five_seconds() {
        for (written, expected) in [("0", 5), ("1", 5), ("\"4s\"", 5), ("5", 5), ("6", 6)] {
            let config =
                parse(&format!("[job_defaults]\nminimum_retry_delay = {written}")).unwrap();
            assert_eq!(
                config.job_defaults.minimum_retry_delay,
                secs(expected),
                "{written}"
            );
        }
    }

    #[test]
    fn zero_no_progress_timeout_is_allowed() {
        let config = parse("[job_defaults]\nno_progress_timeout = 0").unwrap();
        assert_eq!(config.job_defaults.no_progress_timeout, Duration::ZERO);
    }

    #[test]
    fn unknown_keys_are_errors_naming_key_file_and_line() {
        let message = parse_err("max_background_jobs = 2\nmax_bakground_jobs = 3\n");
        assert!(
            message.contains("unknown key `max_bakground_jobs`"),
            "{message}"
        );
        assert!(message.starts_with("/etc/test/config.toml:2:"), "{message}");

        let message = parse_err("[job_defaults]\npriority = \"low\"\nretries = 3\n");
        assert!(message.contains("retries"), "{message}");
        assert!(message.starts_with("/etc/test/config.toml:3:"), "{message}");

        let message = parse_err("[jobdefaults]\npriority = \"low\"\n");
        assert!(message.contains("jobdefaults"), "{message}");
    }

    #[test]
    fn bad_values_are_errors_naming_key_file_and_line() {
        let cases = [
            ("max_background_jobs = \"two\"", "max_background_jobs"),
            ("time_slice = \"5 minutes\"", "time_slice"),
            ("time_slice = true", "time_slice"),
            ("bandwidth_limit = \"20Mb/s\"", "bandwidth_limit"),
            ("bandwidth_limit = 1.5", "bandwidth_limit"),
            ("bandwidth_limit = -1", "bandwidth_limit"),
            ("max_jobs_per_user = 0", "max_jobs_per_user"),
            ("max_files_per_job = -3", "max_files_per_job"),
            ("max_files_per_job = 1000001", "max_files_per_job"),
            ("job_inactivity_timeout = -1", "job_inactivity_timeout"),
            ("idle_exit = \"sometimes\"", "idle_exit"),
            ("state_dir = \"~/qmgr\"", "state_dir"),
            ("state_dir = 3", "state_dir"),
            ("log_level = \"verbose\"", "log_level"),
            (
                "[job_defaults]\nminimum_retry_delay = \"10x\"",
                "job_defaults.minimum_retry_delay",
            ),
            (
                "[job_defaults]\nno_progress_timeout = [1]",
                "job_defaults.no_progress_timeout",
            ),
            ("[job_defaults]\npriority = 2", "job_defaults.priority"),
            (
                "[job_defaults]\npriority = \"urgent\"",
                "job_defaults.priority",
            ),
        ];
        for (text, key) in cases {
            let message = parse_err(&format!("# comment\n{text}\n"));
            assert!(message.contains(&format!("`{key}`")), "{text}: {message}");
            assert!(
                message.starts_with("/etc/test/config.toml:"),
                "{text}: {message}"
            );
            let line = text.lines().count() + 1;
            assert!(
                message.contains(&format!("config.toml:{line}:")),
                "{text}: {message}"
            );
        }
    }

    #[test]
    fn error_points_at_the_column_of_the_value() {
        let message = parse_err("log_level = \"loud\"");
        assert!(
            message.starts_with("/etc/test/config.toml:1:13: "),
            "{message}"
        );
        assert!(message.contains("\"loud\""), "{message}");
        assert!(message.contains("\"trace\""), "{message}");
    }

    #[test]
    fn ranges_are_checked() {
        for (key, low, high) in [
            ("max_background_jobs", 1, 64),
            ("[job_defaults]\nparallel_files", 1, 64),
        ] {
            assert!(parse(&format!("{key} = {low}")).is_ok());
            assert!(parse(&format!("{key} = {high}")).is_ok());
            let below = parse_err(&format!("{key} = {}", low - 1));
            assert!(below.contains("from 1 to 64"), "{below}");
            parse_err(&format!("{key} = {}", high + 1));
        }
        assert_eq!(parse("max_jobs_per_user = 1").unwrap().max_jobs_per_user, 1);
        parse_err("max_jobs_per_user = 4294967296");
        for key in ["time_slice", "job_inactivity_timeout", "idle_exit"] {
            let message = parse_err(&format!("{key} = \"0s\""));
            assert!(message.contains("at least 1 second"), "{message}");
            parse_err(&format!("{key} = 4294967296"));
        }
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        let message = parse_err("max_background_jobs = 1\ntime_slice = \n");
        assert!(message.starts_with("/etc/test/config.toml:2:"), "{message}");
        let message = parse_err("log_level = \"info\"\nlog_level = \"debug\"\n");
        assert!(message.starts_with("/etc/test/config.toml:2:"), "{message}");
        assert!(message.contains("duplicate key `log_level`"), "{message}");
        let message = parse_err("job_defaults = 3");
        assert!(message.contains("[job_defaults] table"), "{message}");
    }

    #[test]
    fn missing_file_gives_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(&dir.path().join("config.toml")).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn file_is_read_and_errors_name_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "max_background_jobs = 3\n").unwrap();
        assert_eq!(Config::load(&path).unwrap().max_background_jobs, 3);

        std::fs::write(&path, "max_background_jobs = 300\n").unwrap();
        let error = Config::load(&path).unwrap_err();
        assert_eq!(error.hresult, hresult::E_INVALIDARG);
        assert!(
            error
                .description
                .starts_with(&format!("{}:1:23: ", path.display())),
            "{error}"
        );
    }

    #[test]
    fn unreadable_file_is_an_error_not_defaults() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be cannot be read, whoever runs the test.
        let error = Config::load(dir.path()).unwrap_err();
        assert_ne!(error.hresult, hresult::E_INVALIDARG, "{error}");
        assert!(error.hresult.is_failure());
        assert!(
            error.description.starts_with(&format!(
                "refusing the config file {}: it is not a regular file",
                dir.path().display()
            )),
            "{error}"
        );

        let path = dir.path().join("config.toml");
        std::fs::write(&path, b"log_level = \"\xff\"\n").unwrap();
        let error = Config::load(&path).unwrap_err();
        assert_eq!(error.hresult, hresult::E_INVALIDARG);
        assert!(error.description.contains("UTF-8"), "{error}");
        assert!(error.description.contains(&path.display().to_string()));
    }

    #[test]
    fn durations_parse_with_units() {
        for (text, seconds) in [
            ("0", 0),
            ("90", 90),
            ("90s", 90),
            ("5m", 300),
            ("2h", 7200),
            ("14d", 1_209_600),
            ("1h30m", 5400),
            ("1d 2h 3m 4s", 93_784),
            (" 10 m ", 600),
            ("5M", 300),
            ("4294967295", 4_294_967_295),
            ("4294967295s", 4_294_967_295),
        ] {
            assert_eq!(parse_duration(text).unwrap(), secs(seconds), "{text:?}");
        }
        assert_eq!(parse_duration("40ms").unwrap(), Duration::from_millis(40));
        assert_eq!(
            parse_duration("1s 500MS").unwrap(),
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn bad_durations_are_rejected() {
        for text in [
            "",
            " ",
            "s",
            "5x",
            "5 minutes",
            "-5s",
            "1.5h",
            "h5",
            "5m30",
            "4294967296",
            "4294967296s",
            "49711d",
            "99999999999999999999d",
            "1e3",
        ] {
            let error = parse_duration(text).expect_err(text);
            assert_eq!(error.hresult, hresult::E_INVALIDARG);
            assert!(error.description.contains(&format!("{text:?}")), "{error}");
        }
    }

    #[test]
    fn rates_parse_with_decimal_and_binary_units() {
        for (text, bytes) in [
            ("1", Some(1)),
            ("500B/s", Some(500)),
            ("500/s", Some(500)),
            ("500kB/s", Some(500_000)),
            ("500KB/s", Some(500_000)),
            ("20MB/s", Some(20_000_000)),
            ("20MB", Some(20_000_000)),
            ("20 MB/s", Some(20_000_000)),
            ("1GB/s", Some(1_000_000_000)),
            ("2TB/s", Some(2_000_000_000_000)),
            ("512KiB/s", Some(524_288)),
            ("512kiB", Some(524_288)),
            ("20MiB/s", Some(20_971_520)),
            ("1GiB/s", Some(1_073_741_824)),
            ("1TiB", Some(1_099_511_627_776)),
            ("0", None),
            ("0kB/s", None),
            ("unlimited", None),
            ("Unlimited", None),
        ] {
            assert_eq!(parse_rate(text).unwrap(), bytes, "{text:?}");
        }
    }

    #[test]
    fn bad_rates_are_rejected() {
        for text in [
            "",
            "fast",
            "20Mb/s",
            "20mb",
            "20MB/h",
            "20XB/s",
            "20iB",
            "1.5MB/s",
            "-1",
            "99999999999TiB",
            "MB/s",
        ] {
            let error = parse_rate(text).expect_err(text);
            assert_eq!(error.hresult, hresult::E_INVALIDARG);
            assert!(error.description.contains(&format!("{text:?}")), "{error}");
        }
        let bits = parse_rate("20Mb/s").unwrap_err();
        assert!(bits.description.contains("bits"), "{bits}");
    }
}
