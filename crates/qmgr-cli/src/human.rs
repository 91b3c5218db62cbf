//! Text for people: sizes, times, states, errors and why a job waits.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indicatif::{BinaryBytes, HumanDuration};
use qmgr_core::file::SIZE_UNKNOWN;
use qmgr_core::group::status;
use qmgr_core::hresult;
use qmgr_core::service::WaitReason;
use qmgr_core::{ErrorContext, Guid, JobError, QmgrError, Timestamp};

/// RFC 3339 in UTC, whole seconds: `2024-05-01T12:00:00Z`.
pub fn rfc3339(at: Timestamp) -> String {
    humantime::format_rfc3339_seconds(system_time(at)).to_string()
}

fn system_time(at: Timestamp) -> SystemTime {
    let micros = Duration::from_micros(at.0.unsigned_abs());
    if at.0 >= 0 {
        UNIX_EPOCH + micros
    } else {
        UNIX_EPOCH - micros
    }
}

/// "in 3 minutes" / "2 seconds ago", relative to `now`.
pub fn relative(at: Timestamp, now: Timestamp) -> String {
    if at >= now {
        format!("in {}", HumanDuration(at.since(now)))
    } else {
        format!("{} ago", HumanDuration(now.since(at)))
    }
}

/// Durations as the config file writes them: `90s`, `10m`, `1h30m`, `14d`.
pub fn duration(span: Duration) -> String {
    let mut seconds = span.as_secs();
    if seconds == 0 {
        return "0s".into();
    }
    let mut text = String::new();
    for (unit, length) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if seconds >= length {
            let _ = write!(text, "{}{unit}", seconds / length);
            seconds %= length;
        }
    }
    text
}

/// `1.5 MiB`.
pub fn bytes(count: u64) -> String {
    BinaryBytes(count).to_string()
}

/// `1.5 MiB / 4.0 MiB`, or `1.5 MiB / ?` while the size is unknown.
pub fn bytes_of(done: u64, total: u64) -> String {
    if total == SIZE_UNKNOWN {
        format!("{} / ?", bytes(done))
    } else {
        format!("{} / {}", bytes(done), bytes(total))
    }
}

/// Whole percent done, if the total is known.
pub fn percent(done: u64, total: u64) -> Option<u64> {
    match total {
        SIZE_UNKNOWN => None,
        0 => Some(100),
        _ => Some(u64::try_from(u128::from(done) * 100 / u128::from(total)).unwrap_or(100)),
    }
}

/// The GUID's first eight hex digits, as the job tables show it.
pub fn short_id(id: Guid) -> String {
    id.to_plain_string()[..8].to_owned()
}

/// The SID Windows programs see for a Unix user.
pub fn owner_sid(uid: u32) -> String {
    format!("S-1-22-1-{uid}")
}

/// `alice (uid 1000, S-1-22-1-1000)`; the name comes from /etc/passwd when it is there.
pub fn owner(uid: u32) -> String {
    match user_name(uid) {
        Some(name) => format!("{name} (uid {uid}, {})", owner_sid(uid)),
        None => format!("uid {uid} ({})", owner_sid(uid)),
    }
}

fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let entry_uid = fields.nth(1)?.parse::<u32>().ok()?;
        (entry_uid == uid).then(|| name.to_owned())
    })
}

/// The job's CRLF-separated header text as separate lines.
pub fn header_lines(headers: Option<&str>) -> Vec<String> {
    headers
        .unwrap_or_default()
        .split("\r\n")
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The JSON name of an error context.
pub fn context_key(context: ErrorContext) -> &'static str {
    match context {
        ErrorContext::None => "none",
        ErrorContext::Unknown => "unknown",
        ErrorContext::GeneralQueueManager => "general_queue_manager",
        ErrorContext::QueueManagerNotification => "queue_manager_notification",
        ErrorContext::LocalFile => "local_file",
        ErrorContext::RemoteFile => "remote_file",
        ErrorContext::GeneralTransport => "general_transport",
        ErrorContext::RemoteApplication => "remote_application",
        ErrorContext::ServerCertificateCallback => "server_certificate_callback",
    }
}

/// What `GetErrorContextDescription` says about a context.
pub fn context_description(context: ErrorContext) -> String {
    hresult::description_for(context.description_code()).unwrap_or_default()
}

/// `BG_E_HTTP_ERROR_404 (0x80190194)`.
pub fn hresult_label(error: &QmgrError) -> String {
    error.hresult.to_string()
}

/// Several lines describing a job's error: code, description, context, file.
pub fn error_block(error: &JobError, files: &[qmgr_core::FileRecord], indent: &str) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{indent}Code:         {}",
        hresult_label(&error.error)
    );
    let _ = writeln!(text, "{indent}Description:  {}", error.error.description);
    let _ = writeln!(
        text,
        "{indent}Context:      {} ({})",
        context_key(error.error.context).replace('_', " "),
        context_description(error.error.context)
    );
    if let Some(index) = error.file_index {
        match files.get(index as usize) {
            Some(file) => {
                let _ = writeln!(
                    text,
                    "{indent}File:         #{index} {} -> {}",
                    file.remote_name, file.local_name
                );
            }
            None => {
                let _ = writeln!(text, "{indent}File:         #{index}");
            }
        }
    }
    if let Some(protocol) = &error.protocol {
        let _ = writeln!(text, "{indent}Protocol:     {protocol}");
    }
    let _ = writeln!(text, "{indent}At:           {}", rfc3339(error.at));
    text
}

/// Why a job is not moving, with what to do about it; `None` when it is moving.
pub fn waiting(reason: Option<&WaitReason>, id: Guid, now: Timestamp) -> Option<String> {
    let plain = id.to_plain_string();
    Some(match reason? {
        WaitReason::Suspended => format!("suspended (`qmgr resume {plain}` lets it run)"),
        WaitReason::WaitingForSlot { ahead: 0 } => "waiting for a transfer slot".to_owned(),
        WaitReason::WaitingForSlot { ahead } => {
            format!("waiting for a transfer slot ({ahead} background jobs ahead)")
        }
        WaitReason::RetryAt { at, server_asked } => format!(
            "retrying {} ({}) after a transient error{}",
            relative(*at, now),
            rfc3339(*at),
            if *server_asked {
                "; the server asked to wait that long (Retry-After)"
            } else {
                ""
            }
        ),
        WaitReason::NoNetwork => {
            "waiting for the network (no default route); it retries when the network is back"
                .to_owned()
        }
        WaitReason::Throttled { bytes_per_second } => {
            format!("held to {}/s by a bandwidth cap", bytes(*bytes_per_second))
        }
        WaitReason::Failed => {
            format!("failed; `qmgr resume {plain}` retries, `qmgr cancel {plain}` removes it")
        }
        WaitReason::AwaitingComplete => {
            format!("all files transferred; `qmgr complete {plain}` moves them into place")
        }
        WaitReason::CompleteFailed { error } => format!(
            "all files transferred, but the service could not complete the job: {}; `qmgr \
             complete {plain}` tries again, `qmgr cancel {plain}` discards the download",
            error.description
        ),
    })
}

/// The same, short, for tables.
pub fn waiting_short(reason: Option<&WaitReason>, now: Timestamp) -> String {
    match reason {
        None => String::new(),
        Some(WaitReason::Suspended) => "suspended".into(),
        Some(WaitReason::WaitingForSlot { ahead }) => format!("{ahead} ahead"),
        Some(WaitReason::RetryAt { at, .. }) => format!("retry {}", relative(*at, now)),
        Some(WaitReason::NoNetwork) => "no network".into(),
        Some(WaitReason::Throttled { bytes_per_second }) => {
            format!("capped {}/s", bytes(*bytes_per_second))
        }
        Some(WaitReason::Failed) => "failed".into(),
        Some(WaitReason::AwaitingComplete) => "needs complete".into(),
        Some(WaitReason::CompleteFailed { .. }) => "complete failed".into(),
    }
}

/// Names of the `QM_STATUS_*` bits set in `bits`.
pub fn group_status_flags(bits: u32) -> Vec<&'static str> {
    [
        (status::FILE_COMPLETE, "FILE_COMPLETE"),
        (status::FILE_INCOMPLETE, "FILE_INCOMPLETE"),
        (status::JOB_COMPLETE, "JOB_COMPLETE"),
        (status::JOB_INCOMPLETE, "JOB_INCOMPLETE"),
        (status::JOB_ERROR, "JOB_ERROR"),
        (status::JOB_FOREGROUND, "JOB_FOREGROUND"),
        (status::GROUP_COMPLETE, "GROUP_COMPLETE"),
        (status::GROUP_INCOMPLETE, "GROUP_INCOMPLETE"),
        (status::GROUP_SUSPENDED, "GROUP_SUSPENDED"),
        (status::GROUP_ERROR, "GROUP_ERROR"),
        (status::GROUP_FOREGROUND, "GROUP_FOREGROUND"),
    ]
    .into_iter()
    .filter(|(bit, _)| bits & bit != 0)
    .map(|(_, name)| name)
    .collect()
}

/// Cuts `text` to at most `width` characters, marking the cut with `…`.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_as_utc_rfc3339() {
        assert_eq!(rfc3339(Timestamp(0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(Timestamp(1_714_564_800_000_000)),
            "2024-05-01T12:00:00Z"
        );
    }

    #[test]
    fn durations_print_like_the_config_file() {
        assert_eq!(duration(Duration::ZERO), "0s");
        assert_eq!(duration(Duration::from_secs(600)), "10m");
        assert_eq!(duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(duration(Duration::from_secs(1_209_600)), "14d");
        assert_eq!(duration(Duration::from_secs(93_784)), "1d2h3m4s");
    }

    #[test]
    fn percent_handles_unknown_and_empty_sizes() {
        assert_eq!(percent(5, SIZE_UNKNOWN), None);
        assert_eq!(percent(0, 0), Some(100));
        assert_eq!(percent(1, 3), Some(33));
        assert_eq!(percent(u64::MAX - 1, u64::MAX - 1), Some(100));
        assert_eq!(bytes_of(1024, SIZE_UNKNOWN), "1.00 KiB / ?");
    }

    #[test]
    fn group_status_bits_are_named() {
        assert_eq!(
            group_status_flags(status::GROUP_COMPLETE | status::GROUP_SUSPENDED),
            ["GROUP_COMPLETE", "GROUP_SUSPENDED"]
        );
        assert!(group_status_flags(0).is_empty());
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
    }

    #[test]
    fn waiting_reasons_say_what_to_do() {
        let id = Guid::new_random();
        let text = waiting(Some(&WaitReason::Suspended), id, Timestamp(0)).unwrap();
        assert!(text.contains(&format!("qmgr resume {}", id.to_plain_string())));
        assert_eq!(waiting(None, id, Timestamp(0)), None);
    }
}
