//! The JSON that `--json` prints: structs of this crate, filled from the service's types, so
//! the schema stays put when internal types change. The schema (version 1) is documented
//! in the crate docs (`main.rs`) and the README; a change that removes or renames a field
//! needs a new version.

use std::fmt::Write as _;

use qmgr_core::file::SIZE_UNKNOWN;
use qmgr_core::group::Group;
use qmgr_core::idle::IdleView;
use qmgr_core::job::{AutoComplete, ProxyUsage};
use qmgr_core::ranges::FileRange;
use qmgr_core::service::{Attempt, GroupView, JobView, WaitReason};
use qmgr_core::{JobError, JobPriority, JobType, QmgrError, Timestamp};
use serde::Serialize;

use crate::human;

/// `qmgr list --json` and `qmgr transfer --background --json`.
#[derive(Debug, Serialize)]
pub struct JobList {
    pub jobs: Vec<JobJson>,
}

#[derive(Debug, Serialize)]
pub struct JobJson {
    pub id: String,
    pub name: String,
    pub description: String,
    /// `download`, `upload` or `upload_reply`.
    #[serde(rename = "type")]
    pub job_type: &'static str,
    /// bitsadmin's names: `QUEUED`, `CONNECTING`, `TRANSFERRING`, `SUSPENDED`, `ERROR`,
    /// `TRANSIENT_ERROR`, `TRANSFERRED`, `ACKNOWLEDGED`, `CANCELLED`.
    pub state: &'static str,
    /// `foreground`, `high`, `normal` or `low`.
    pub priority: &'static str,
    pub owner: OwnerJson,
    pub group: Option<String>,
    pub progress: ProgressJson,
    pub times: TimesJson,
    pub settings: SettingsJson,
    pub waiting: Option<WaitingJson>,
    /// What idle mode is doing while a background job transfers (`null` otherwise).
    pub idle: Option<IdleJson>,
    /// The last error the job met; current while `state` is ERROR or TRANSIENT_ERROR.
    pub error: Option<JobErrorJson>,
    pub error_count: u32,
    pub files: Vec<FileJson>,
    pub attempts: Vec<AttemptJson>,
    /// Upload-reply jobs only: where their reply stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<ReplyJson>,
}

/// Idle mode's state for one of the job's connections.
#[derive(Debug, Serialize)]
pub struct IdleJson {
    /// `starting`, `filling` (using idle bandwidth), `yielding` (giving way to other
    /// traffic) or `measuring` (a periodic slowdown to see the path's own delay).
    pub phase: &'static str,
    /// Where the delay comes from: `icmp` (echo probes), `tcp_info` (the kernel's estimate,
    /// where ICMP sockets are not allowed) or `fixed` (no measurement: a fixed window).
    pub delay_source: &'static str,
    /// Queueing delay (current minus base), once measured.
    pub queueing_delay_ms: Option<f64>,
    pub base_delay_ms: Option<f64>,
    pub target_ms: f64,
    /// The receive window the connection may advertise.
    pub window_bytes: u32,
}

impl From<&IdleView> for IdleJson {
    #[expect(
        clippy::cast_precision_loss,
        reason = "delays in microseconds are far below 2^52"
    )]
    fn from(view: &IdleView) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        IdleJson {
            phase: view.phase.as_str(),
            delay_source: view.source.as_str(),
            queueing_delay_ms: view.queueing_delay_us.map(ms),
            base_delay_ms: view.base_delay_us.map(ms),
            target_ms: ms(view.target_us),
            window_bytes: view.window_bytes,
        }
    }
}

/// An upload-reply job's reply.
#[derive(Debug, Serialize)]
pub struct ReplyJson {
    /// Where Complete puts the reply; `null` before the job has its file.
    pub file_name: Option<String>,
    /// `null` until the reply's download starts (0 when the server named no reply).
    pub bytes_total: Option<u64>,
    pub bytes_transferred: u64,
}

#[derive(Debug, Serialize)]
pub struct OwnerJson {
    pub uid: u32,
    /// The SID Windows programs see: `S-1-22-1-<uid>`.
    pub sid: String,
    /// The user's name in /etc/passwd; `null` when the uid has none.
    pub name: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ProgressJson {
    /// `null` while any file's size is unknown.
    pub bytes_total: Option<u64>,
    pub bytes_transferred: u64,
    pub files_total: u32,
    pub files_transferred: u32,
}

#[derive(Debug, Serialize)]
pub struct TimesJson {
    /// RFC 3339, UTC, whole seconds.
    pub created: String,
    pub modified: String,
    /// `null` until the job reached TRANSFERRED.
    pub transfer_completed: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SettingsJson {
    pub minimum_retry_delay_secs: u64,
    pub no_progress_timeout_secs: u64,
    pub parallel_files: u32,
    /// `Name: value` lines (none once they are write-only: the service sends them but
    /// shows them to nobody).
    pub headers: Vec<String>,
    pub proxy: ProxyJson,
    pub notify_command: Option<NotifyCommandJson>,
    /// `BG_NOTIFY_*` bits.
    pub notify_flags: u32,
    pub max_download_size: Option<u64>,
    /// The job's own bandwidth cap in bytes per second, if it has one.
    pub bandwidth_limit: Option<u64>,
    /// Interactive retries: the first retry's delay, doubling up to
    /// `minimum_retry_delay_secs`; `null` retries after `minimum_retry_delay_secs` each time.
    pub first_retry_delay_secs: Option<u64>,
    /// Whether the service completes the job itself once it is TRANSFERRED (a qmgr
    /// extension that `qmgr transfer` sets): `replace`, `no_clobber` (existing files are not
    /// replaced) or `null` (it waits for `qmgr complete`).
    pub auto_complete: Option<&'static str>,
    /// Job5 COST_FLAGS in effect (the job's own, or its priority's default).
    pub cost_flags: Option<u32>,
    /// Idle mode for this job (background priorities only).
    pub idle_mode: bool,
}

#[derive(Debug, Serialize)]
pub struct ProxyJson {
    /// `preconfig`, `no_proxy`, `override` or `autodetect`.
    pub usage: &'static str,
    pub proxy_list: Option<String>,
    pub bypass_list: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct NotifyCommandJson {
    pub program: String,
    pub parameters: Option<String>,
}

/// Why the job is not moving bytes.
#[derive(Debug, Serialize)]
pub struct WaitingJson {
    /// `suspended`, `waiting_for_slot`, `retry_at`, `no_network`, `throttled`, `failed`,
    /// `awaiting_complete` or `complete_failed` (a throttled job is moving, only held to a
    /// rate by a cap that binds).
    pub reason: &'static str,
    /// With `waiting_for_slot`: background jobs ahead in line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs_ahead: Option<u32>,
    /// With `retry_at`: when the next attempt starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<String>,
    /// With `retry_at`: whether the server's `Retry-After` set that time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_asked: Option<bool>,
    /// With `throttled`: the cap in bytes per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_second: Option<u64>,
    /// With `complete_failed`: why the service could not complete the job itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorJson>,
}

#[derive(Debug, Serialize)]
pub struct ErrorJson {
    /// `0x` and eight upper-case hex digits.
    pub hresult: String,
    /// `BG_E_HTTP_ERROR_404` and the like, when the code has a name.
    pub hresult_name: Option<&'static str>,
    pub description: String,
    /// `none`, `unknown`, `general_queue_manager`, `queue_manager_notification`,
    /// `local_file`, `remote_file`, `general_transport`, `remote_application`,
    /// `server_certificate_callback`.
    pub context: &'static str,
    pub context_description: String,
}

#[derive(Debug, Serialize)]
pub struct JobErrorJson {
    #[serde(flatten)]
    pub error: ErrorJson,
    pub file_index: Option<u32>,
    pub protocol: Option<String>,
    pub at: String,
}

#[derive(Debug, Serialize)]
pub struct FileJson {
    pub index: u32,
    pub remote_name: String,
    pub local_name: String,
    /// `null` until the server told the size.
    pub bytes_total: Option<u64>,
    pub bytes_transferred: u64,
    pub completed: bool,
    /// The byte ranges of the remote file the local file is made of, in its order; absent
    /// for the whole file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Vec<RangeJson>>,
}

/// One byte range of a file (AddFileWithRanges).
#[derive(Debug, Serialize)]
pub struct RangeJson {
    pub offset: u64,
    /// `null`: to the end of the remote file (BG_LENGTH_TO_EOF).
    pub length: Option<u64>,
}

impl From<&FileRange> for RangeJson {
    fn from(range: &FileRange) -> Self {
        Self {
            offset: range.offset,
            length: (!range.runs_to_eof()).then_some(range.length),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AttemptJson {
    pub at: String,
    pub file: u32,
    pub http_status: Option<u16>,
    pub bytes: u64,
    pub error: Option<ErrorJson>,
    /// Why the attempt started its file over from zero, if it did.
    pub restart: Option<String>,
}

/// `qmgr groups --json`.
#[derive(Debug, Serialize)]
pub struct GroupList {
    pub groups: Vec<GroupJson>,
}

#[derive(Debug, Serialize)]
pub struct GroupJson {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created: String,
    /// `QM_STATUS_*` bits as `IBackgroundCopyGroup::GetStatus` returns them.
    pub status: u32,
    /// The names of the set bits: `GROUP_COMPLETE`, `GROUP_SUSPENDED` …
    pub status_flags: Vec<&'static str>,
    pub foreground: bool,
    pub job: Option<JobJson>,
}

/// `qmgr daemon status --json`.
#[derive(Debug, Serialize)]
pub struct DaemonStatusJson {
    pub running: bool,
    pub version: Option<String>,
    pub socket: String,
    pub state_dir: String,
    pub pid: Option<u32>,
    pub jobs: Option<usize>,
}

/// `qmgr create --json`.
#[derive(Debug, Serialize)]
pub struct CreatedJson {
    pub id: String,
}

fn size(bytes: u64) -> Option<u64> {
    (bytes != SIZE_UNKNOWN).then_some(bytes)
}

fn time_or_null(at: Timestamp) -> Option<String> {
    (at != Timestamp::ZERO).then(|| human::rfc3339(at))
}

pub fn job_type_name(job_type: JobType) -> &'static str {
    match job_type {
        JobType::Download => "download",
        JobType::Upload => "upload",
        JobType::UploadReply => "upload_reply",
    }
}

pub fn priority_name(priority: JobPriority) -> &'static str {
    match priority {
        JobPriority::Foreground => "foreground",
        JobPriority::High => "high",
        JobPriority::Normal => "normal",
        JobPriority::Low => "low",
    }
}

pub fn proxy_usage_name(usage: ProxyUsage) -> &'static str {
    match usage {
        ProxyUsage::Preconfig => "preconfig",
        ProxyUsage::NoProxy => "no_proxy",
        ProxyUsage::Override => "override",
        ProxyUsage::Autodetect => "autodetect",
    }
}

impl From<&JobView> for JobJson {
    fn from(view: &JobView) -> Self {
        let job = &view.job;
        let progress = job.progress();
        let settings = &job.settings;
        JobJson {
            id: job.id.to_string(),
            name: job.display_name.clone(),
            description: job.description.clone(),
            job_type: job_type_name(job.job_type),
            state: job.state.name(),
            priority: priority_name(job.priority),
            owner: OwnerJson {
                uid: job.owner_uid,
                sid: human::owner_sid(job.owner_uid),
                name: human::user_name(job.owner_uid),
            },
            group: job.group.map(|group| group.to_string()),
            progress: ProgressJson {
                bytes_total: size(progress.bytes_total),
                bytes_transferred: progress.bytes_transferred,
                files_total: progress.files_total,
                files_transferred: progress.files_transferred,
            },
            times: TimesJson {
                created: human::rfc3339(job.times.created),
                modified: human::rfc3339(job.times.modified),
                transfer_completed: time_or_null(job.times.transfer_completed),
            },
            settings: SettingsJson {
                minimum_retry_delay_secs: settings.minimum_retry_delay.as_secs(),
                no_progress_timeout_secs: settings.no_progress_timeout.as_secs(),
                parallel_files: settings.parallel_files,
                headers: human::header_lines(settings.custom_headers.as_deref()),
                proxy: ProxyJson {
                    usage: proxy_usage_name(settings.proxy.usage),
                    proxy_list: settings.proxy.proxy_list.clone(),
                    bypass_list: settings.proxy.bypass_list.clone(),
                },
                notify_command: settings
                    .notify_command
                    .as_ref()
                    .map(|command| NotifyCommandJson {
                        program: command.program.clone(),
                        parameters: command.parameters.clone(),
                    }),
                notify_flags: settings.notify_flags,
                max_download_size: settings.max_download_size,
                bandwidth_limit: settings.bandwidth_limit,
                first_retry_delay_secs: settings.first_retry_delay.map(|d| d.as_secs()),
                auto_complete: job.auto_complete.map(|mark| match mark {
                    AutoComplete::Replace => "replace",
                    AutoComplete::NoClobber => "no_clobber",
                }),
                cost_flags: settings.cost_flags,
                idle_mode: settings.idle_mode,
            },
            waiting: view.waiting.as_ref().map(WaitingJson::from),
            idle: view.idle.as_ref().map(IdleJson::from),
            error: job.error.as_deref().map(JobErrorJson::from),
            error_count: job.error_count,
            files: job
                .files
                .iter()
                .zip(0u32..)
                .map(|(file, index)| FileJson {
                    index,
                    remote_name: file.remote_name.clone(),
                    local_name: file.local_name.clone(),
                    bytes_total: size(file.bytes_total),
                    bytes_transferred: file.bytes_transferred,
                    completed: file.completed,
                    ranges: (!file.ranges.is_empty())
                        .then(|| file.ranges.iter().map(RangeJson::from).collect()),
                })
                .collect(),
            attempts: view.attempts.iter().map(AttemptJson::from).collect(),
            reply: job.reply.as_ref().map(|reply| ReplyJson {
                file_name: reply.file_name.clone(),
                bytes_total: size(reply.bytes_total),
                bytes_transferred: reply.bytes,
            }),
        }
    }
}

impl From<&WaitReason> for WaitingJson {
    fn from(reason: &WaitReason) -> Self {
        let plain = |reason| WaitingJson {
            reason,
            jobs_ahead: None,
            retry_at: None,
            server_asked: None,
            bytes_per_second: None,
            error: None,
        };
        match reason {
            WaitReason::Suspended => plain("suspended"),
            WaitReason::WaitingForSlot { ahead } => WaitingJson {
                jobs_ahead: Some(*ahead),
                ..plain("waiting_for_slot")
            },
            WaitReason::RetryAt { at, server_asked } => WaitingJson {
                retry_at: Some(human::rfc3339(*at)),
                server_asked: Some(*server_asked),
                ..plain("retry_at")
            },
            WaitReason::NoNetwork => plain("no_network"),
            WaitReason::Throttled { bytes_per_second } => WaitingJson {
                bytes_per_second: Some(*bytes_per_second),
                ..plain("throttled")
            },
            WaitReason::Failed => plain("failed"),
            WaitReason::Metered { .. } => plain("metered"),
            WaitReason::AwaitingComplete => plain("awaiting_complete"),
            WaitReason::CompleteFailed { error } => WaitingJson {
                error: Some(ErrorJson::from(error)),
                ..plain("complete_failed")
            },
        }
    }
}

impl From<&QmgrError> for ErrorJson {
    fn from(error: &QmgrError) -> Self {
        ErrorJson {
            hresult: format!("0x{:08X}", error.hresult.bits()),
            hresult_name: error.hresult.name(),
            description: error.description.clone(),
            context: human::context_key(error.context),
            context_description: human::context_description(error.context),
        }
    }
}

impl From<&JobError> for JobErrorJson {
    fn from(error: &JobError) -> Self {
        JobErrorJson {
            error: ErrorJson::from(&error.error),
            file_index: error.file_index,
            protocol: error.protocol.clone(),
            at: human::rfc3339(error.at),
        }
    }
}

impl From<&Attempt> for AttemptJson {
    fn from(attempt: &Attempt) -> Self {
        AttemptJson {
            at: human::rfc3339(attempt.at),
            file: attempt.file,
            http_status: attempt.http_status,
            bytes: attempt.bytes,
            error: attempt.error.as_ref().map(ErrorJson::from),
            restart: attempt.restart.clone(),
        }
    }
}

impl From<&GroupView> for GroupJson {
    fn from(view: &GroupView) -> Self {
        let group: &Group = &view.group;
        let status = group.status(view.job.as_ref().map(|job| job.job.state));
        GroupJson {
            id: group.id.to_string(),
            name: group.display_name.clone(),
            description: group.description.clone(),
            created: human::rfc3339(group.created),
            status,
            status_flags: human::group_status_flags(status),
            foreground: group.foreground,
            job: view.job.as_ref().map(JobJson::from),
        }
    }
}

/// Serializes `value` as pretty JSON followed by a newline.
pub fn print<T: Serialize>(value: &T) {
    println!("{}", to_text(value));
}

/// The JSON text of `value`, safe on a terminal: serde_json escapes C0 control characters
/// (`\u001b`), and this escapes the ones it leaves raw (DEL, C1 such as the 8-bit CSI, the
/// bidirectional controls, line separators). JSON allows `\uXXXX` for any character inside
/// a string, and these characters can only occur inside strings, so the text means the
/// same to every parser.
pub(crate) fn to_text<T: Serialize>(value: &T) -> String {
    // Serializing these plain structs cannot fail.
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    let mut safe = String::with_capacity(text.len());
    for c in text.chars() {
        // Pretty printing's own line breaks are the only control characters left raw
        // outside strings; those inside strings are already `\n`.
        if c != '\n' && human::needs_escape(c) {
            // Every such character is in the Basic Multilingual Plane: one `\uXXXX`.
            let _ = write!(safe, "\\u{:04x}", u32::from(c));
        } else {
            safe.push(c);
        }
    }
    safe
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmgr_core::{Guid, Job, JobSettings};

    #[test]
    fn json_output_escapes_every_control_character() {
        let name = "evil\u{1b}]0;title\u{7}\nname\u{9b}2J\u{7f}\u{202e}";
        let mut job = Job::new(
            Guid::new_random(),
            name,
            JobType::Download,
            1000,
            JobSettings::default(),
            Timestamp(0),
        )
        .unwrap();
        job.description = "line\r\nbreak".into();
        let view = JobView {
            job,
            waiting: None,
            attempts: Vec::new(),
            idle: None,
        };
        let text = to_text(&JobJson::from(&view));
        assert!(
            !text.chars().any(|c| c != '\n' && human::needs_escape(c)),
            "{text}"
        );
        assert!(
            text.contains(r"\u001b]0;title\u0007\nname\u009b2J\u007f\u202e"),
            "{text}"
        );
        // It still means the same.
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["name"], name);
        assert_eq!(parsed["description"], "line\r\nbreak");
    }
}
