//! Text for people: sizes, times, states, errors and why a job waits.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::Duration;

use indicatif::{BinaryBytes, HumanDuration};
use qmgr_core::file::SIZE_UNKNOWN;
use qmgr_core::group::status;
use qmgr_core::hresult;
use qmgr_core::ranges::FileRange;
use qmgr_core::service::WaitReason;
use qmgr_core::{ErrorContext, Guid, JobError, QmgrError, Timestamp};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Where a file goes: `remote -> local` for a download, `local -> remote` for an upload.
pub fn route(file: &qmgr_core::FileRecord) -> String {
    if file.upload.is_some() {
        format!(
            "{} -> {}",
            clean(&file.local_name),
            clean(&file.remote_name)
        )
    } else {
        format!(
            "{} -> {}",
            clean(&file.remote_name),
            clean(&file.local_name)
        )
    }
}

/// Whether a character may not reach a terminal as it is: control characters (C0, DEL,
/// C1: escape sequences, line breaks, tabs), the invisible bidirectional controls that
/// reorder what follows them, and the Unicode line and paragraph separators.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

fn push_escaped(text: &mut String, c: char) {
    match c {
        '\n' => text.push_str("\\n"),
        '\r' => text.push_str("\\r"),
        '\t' => text.push_str("\\t"),
        _ => {
            let _ = write!(text, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

/// Text that came from a user or a server (a display name, description, URL, file name,
/// header, command line, error text) made safe to print: every control character is
/// written as an escape (`\n`, `\t`, `\u{1b}` …), so the text stays on its line and
/// cannot move the cursor, retitle the window or break a table. Every human-readable
/// output goes through this (or [`clean_lines`]); `--json` escapes the same characters
/// (see `json::print`).
pub fn clean(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            push_escaped(&mut escaped, c);
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

/// [`clean`] for a message of several lines that qmgr wrote itself: its line breaks stay,
/// every other control character is escaped.
pub fn clean_lines(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && needs_escape(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.split('\n').map(clean).collect::<Vec<_>>().join("\n"))
}

/// "1 job", "2 jobs": a count with its noun in the right number.
pub fn plural(count: impl Into<u64>, one: &str, many: &str) -> String {
    let count = count.into();
    format!("{count} {}", if count == 1 { one } else { many })
}

/// Columns `text` takes on a terminal (wide characters count two).
pub fn width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// RFC 3339 in UTC, whole seconds: `2024-05-01T12:00:00Z`.
pub fn rfc3339(at: Timestamp) -> String {
    humantime::format_rfc3339_seconds(at.to_system_time()).to_string()
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

/// The inside of a progress bar, `inner` cells: `fraction` (done, total) filled with
/// `fill`, or `?` while the total is unknown. A bar is full only when `finished`: bytes
/// may all be there while a file is still open, and an empty job (0 of 0) is no progress.
pub fn bar(inner: usize, fraction: Option<(u64, u64)>, finished: bool, fill: char) -> String {
    if inner == 0 {
        return String::new();
    }
    let Some((done, total)) = fraction.filter(|_| !finished) else {
        return if finished {
            fill.to_string().repeat(inner)
        } else {
            format!("?{}", " ".repeat(inner - 1))
        };
    };
    let cells = if total == 0 {
        0
    } else {
        let cells = u128::from(done.min(total)) * inner as u128 / u128::from(total);
        usize::try_from(cells).unwrap_or(inner).min(inner - 1)
    };
    format!(
        "{}{}",
        fill.to_string().repeat(cells),
        " ".repeat(inner - cells)
    )
}

/// Whole percent of a job or transfer with files left: at most 99 until it is finished,
/// `None` while the total is unknown or there is nothing to transfer.
pub fn percent_left(done: u64, total: u64, finished: bool) -> Option<u64> {
    if finished {
        return Some(100);
    }
    match total {
        SIZE_UNKNOWN | 0 => None,
        _ => percent(done, total).map(|p| p.min(99)),
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
/// A file's byte ranges as `first-last` of the remote file (`first-` to its end), in the
/// local file's order: `100-199, 900-999, 400-`.
pub fn ranges(ranges: &[FileRange]) -> String {
    ranges
        .iter()
        .map(|range| match range.last() {
            Some(last) => format!("{}-{last}", range.offset),
            None => format!("{}-", range.offset),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

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

/// The user's name from /etc/passwd, or `uid N` when it has none.
pub fn user_label(uid: u32) -> String {
    user_name(uid).unwrap_or_else(|| format!("uid {uid}"))
}

pub fn user_name(uid: u32) -> Option<String> {
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
    let _ = writeln!(
        text,
        "{indent}Description:  {}",
        clean(&error.error.description)
    );
    let _ = writeln!(
        text,
        "{indent}Context:      {} ({})",
        context_key(error.error.context).replace('_', " "),
        context_description(error.error.context)
    );
    if let Some(index) = error.file_index {
        match files.get(index as usize) {
            Some(file) => {
                let _ = writeln!(text, "{indent}File:         #{index} {}", route(file));
            }
            None => {
                let _ = writeln!(text, "{indent}File:         #{index}");
            }
        }
    }
    if let Some(protocol) = &error.protocol {
        let _ = writeln!(text, "{indent}Protocol:     {}", clean(protocol));
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
        WaitReason::WaitingForSlot { ahead } => format!(
            "waiting for a transfer slot ({} ahead)",
            plural(*ahead, "background job", "background jobs")
        ),
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
        WaitReason::Metered { .. } => format!(
            "network is metered; it resumes by itself when the network is not \
             (`qmgr setcostflags {plain} always` lets it run now)"
        ),
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

/// A COST_FLAGS mask with its BITS name where it has one.
pub fn cost_flags(flags: u32) -> String {
    let name = match flags {
        qmgr_core::policy::COST_FLAGS_TRANSFER_UNRESTRICTED => {
            " (TRANSFER_UNRESTRICTED: not on a metered network)"
        }
        0x8000_0067 => " (TRANSFER_STANDARD)",
        0x8000_006F => " (TRANSFER_NO_SURCHARGE)",
        0x8000_007F => " (TRANSFER_NOT_ROAMING)",
        qmgr_core::policy::COST_FLAGS_TRANSFER_ALWAYS => " (TRANSFER_ALWAYS: on any network)",
        _ => "",
    };
    format!("{flags:#010x}{name}")
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
        Some(WaitReason::Metered { .. }) => "metered".into(),
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

/// Cuts `text` to at most `columns` terminal columns, marking the cut with `…`.
pub fn fit(text: &str, columns: usize) -> String {
    if width(text) <= columns {
        return text.to_owned();
    }
    if columns == 0 {
        return String::new();
    }
    let mut cut = String::new();
    let mut used = 0;
    for c in text.chars() {
        let cells = c.width().unwrap_or(0);
        if used + cells > columns - 1 {
            break;
        }
        used += cells;
        cut.push(c);
    }
    cut.push('…');
    cut
}

/// `text` cut to `columns` and padded with spaces to exactly that width.
pub fn fit_pad(text: &str, columns: usize) -> String {
    let mut fitted = fit(text, columns);
    let used = width(&fitted);
    fitted.extend(std::iter::repeat_n(' ', columns.saturating_sub(used)));
    fitted
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
    fn bars_are_full_only_when_finished() {
        assert_eq!(bar(4, Some((0, 10)), false, '#'), "    ");
        assert_eq!(bar(4, Some((5, 10)), false, '#'), "##  ");
        // All bytes there, a file still open: not full.
        assert_eq!(bar(4, Some((10, 10)), false, '#'), "### ");
        assert_eq!(bar(4, Some((10, 10)), true, '#'), "####");
        // An empty job, an unknown size.
        assert_eq!(bar(4, Some((0, 0)), false, '#'), "    ");
        assert_eq!(bar(4, None, false, '#'), "?   ");
        assert_eq!(bar(4, None, true, '='), "====");
        assert_eq!(percent_left(10, 10, false), Some(99));
        assert_eq!(percent_left(0, 0, false), None);
        assert_eq!(percent_left(0, SIZE_UNKNOWN, false), None);
        assert_eq!(percent_left(0, 0, true), Some(100));
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
        assert_eq!(fit("abc", 0), "");
        // Wide characters take two columns each.
        assert_eq!(fit("日本語のファイル", 7), "日本語…");
        assert_eq!(width(&fit("日本語のファイル", 8)), 7);
        assert_eq!(fit_pad("ab", 4), "ab  ");
        assert_eq!(fit_pad("日本語", 4), "日… ");
    }

    #[test]
    fn control_characters_from_users_and_servers_are_escaped() {
        assert_eq!(clean("plain name"), "plain name");
        assert!(matches!(clean("plain"), Cow::Borrowed(_)));
        assert_eq!(clean("\u{1b}]0;owned\u{7}"), "\\u{1b}]0;owned\\u{7}");
        assert_eq!(clean("two\nlines\r\tx"), "two\\nlines\\r\\tx");
        // DEL, C1 (CSI), a right-to-left override and a line separator.
        assert_eq!(
            clean("a\u{7f}b\u{9b}c\u{202e}d\u{2028}"),
            "a\\u{7f}b\\u{9b}c\\u{202e}d\\u{2028}"
        );
        // Non-ASCII text that is not a control character is left alone.
        assert_eq!(clean("naïve 日本"), "naïve 日本");
        // qmgr's own line breaks survive clean_lines; everything else is escaped.
        assert_eq!(
            clean_lines("job \u{1b}[2J failed:\n  Code: x\r"),
            "job \\u{1b}[2J failed:\n  Code: x\\r"
        );
    }

    #[test]
    fn ranges_show_first_and_last_byte_in_the_local_files_order() {
        let range = |offset, length| FileRange { offset, length };
        assert_eq!(
            ranges(&[
                range(100, 100),
                range(900, 1),
                range(400, qmgr_core::ranges::LENGTH_TO_EOF)
            ]),
            "100-199, 900-900, 400-"
        );
    }

    #[test]
    fn counts_take_the_right_number() {
        assert_eq!(plural(1u32, "job", "jobs"), "1 job");
        assert_eq!(plural(0u32, "job", "jobs"), "0 jobs");
        assert_eq!(plural(2u64, "file", "files"), "2 files");
        let one = waiting(
            Some(&WaitReason::WaitingForSlot { ahead: 1 }),
            Guid::new_random(),
            Timestamp(0),
        )
        .unwrap();
        assert!(one.contains("(1 background job ahead)"), "{one}");
    }

    #[test]
    fn waiting_reasons_say_what_to_do() {
        let id = Guid::new_random();
        let text = waiting(Some(&WaitReason::Suspended), id, Timestamp(0)).unwrap();
        assert!(text.contains(&format!("qmgr resume {}", id.to_plain_string())));
        assert_eq!(waiting(None, id, Timestamp(0)), None);
        let metered = WaitReason::Metered { cost_state: 0x40 };
        let text = waiting(Some(&metered), id, Timestamp(0)).unwrap();
        assert!(text.starts_with("network is metered;"), "{text}");
        assert!(
            text.contains(&format!(
                "qmgr setcostflags {} always",
                id.to_plain_string()
            )),
            "{text}"
        );
        assert_eq!(waiting_short(Some(&metered), Timestamp(0)), "metered");
    }
}
