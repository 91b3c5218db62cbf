//! `qmgr info`: everything about one job.

use std::fmt::Write as _;

use qmgr_core::Timestamp;
use qmgr_core::job::AutoComplete;
use qmgr_core::service::{JobView, QueueServiceExt};
use qmgr_ipc::Client;

use crate::failure::Failure;
use crate::human;
use crate::json::{self, JobJson};
use crate::resolve::resolve_job;

pub fn run(client: &Client, name: &str, as_json: bool) -> Result<(), Failure> {
    let id = resolve_job(client, name)?;
    // Page by page: a job of many files does not have to fit one answer.
    let view = client.job_in_pages(id)?;
    if as_json {
        json::print(&JobJson::from(&view));
    } else {
        print!("{}", describe(&view, Timestamp::now()));
    }
    Ok(())
}

/// The text `qmgr info` prints.
pub fn describe(view: &JobView, now: Timestamp) -> String {
    let job = &view.job;
    let settings = &job.settings;
    let progress = job.progress();
    let mut text = String::new();
    // Every value is one line; names, URLs, headers and commands come from users or
    // servers, so each is escaped.
    let mut line = |label: &str, value: &str| {
        let _ = writeln!(text, "{:<22}{}", format!("{label}:"), human::clean(value));
    };
    line("Job", &job.id.to_string());
    line("Name", &job.display_name);
    if !job.description.is_empty() {
        line("Description", &job.description);
    }
    line("State", job.state.name());
    if let Some(why) = human::waiting(view.waiting.as_ref(), job.id, now) {
        line("Waiting", &why);
    }
    if let Some(idle) = &view.idle {
        line("Idle mode", &idle.to_string());
    }
    line("Type", json::job_type_name(job.job_type));
    line("Priority", job.priority.name());
    line("Owner", &human::owner(job.owner_uid));
    let percent = human::percent(progress.bytes_transferred, progress.bytes_total)
        .map(|p| format!(" ({p}%)"))
        .unwrap_or_default();
    line(
        "Progress",
        &format!(
            "{}/{}, {}{percent}",
            progress.files_transferred,
            human::plural(progress.files_total, "file", "files"),
            human::bytes_of(progress.bytes_transferred, progress.bytes_total)
        ),
    );
    if let Some(reply) = &job.reply {
        let state = if reply.done && reply.url.is_none() {
            "none (the server named no reply)".to_owned()
        } else if reply.url.is_none() {
            "after the upload".to_owned()
        } else {
            human::bytes_of(reply.bytes, reply.bytes_total)
        };
        line("Reply", &state);
        if let Some(name) = &reply.file_name {
            line("Reply file", name);
        }
    }
    line("Created", &human::rfc3339(job.times.created));
    line("Modified", &human::rfc3339(job.times.modified));
    if job.times.transfer_completed != Timestamp::ZERO {
        line("Transferred", &human::rfc3339(job.times.transfer_completed));
    }
    line(
        "Retry delay",
        &match settings.first_retry_delay {
            Some(first) => format!(
                "{} doubling up to {} (interactive)",
                human::duration(first),
                human::duration(settings.minimum_retry_delay)
            ),
            None => human::duration(settings.minimum_retry_delay),
        },
    );
    line(
        "No-progress timeout",
        &human::duration(settings.no_progress_timeout),
    );
    line("Parallel files", &settings.parallel_files.to_string());
    if let Some(flags) = settings.cost_flags {
        line("Cost flags", &human::cost_flags(flags));
    }
    line(
        "Idle mode",
        match (settings.idle_mode, job.priority) {
            (_, qmgr_core::JobPriority::Foreground) => "not used (FOREGROUND is never held back)",
            (true, _) => "on",
            (false, _) => "off",
        },
    );
    line(
        "Auto-complete",
        match job.auto_complete {
            None => "no (`qmgr complete` moves the files into place)",
            Some(AutoComplete::Replace) => "yes (the service completes it when transferred)",
            Some(AutoComplete::NoClobber) => {
                "yes, without replacing existing files (the service completes it when transferred)"
            }
        },
    );
    for header in human::header_lines(settings.custom_headers.as_deref()) {
        line("Header", &header);
    }
    if settings.custom_headers_write_only {
        line("Header", "(write-only: sent, never shown)");
    }
    let mut proxy = json::proxy_usage_name(settings.proxy.usage).to_owned();
    if let Some(list) = &settings.proxy.proxy_list {
        let _ = write!(proxy, " {list}");
    }
    if let Some(bypass) = &settings.proxy.bypass_list {
        let _ = write!(proxy, " (bypass {bypass})");
    }
    line("Proxy", &proxy);
    if let Some(command) = &settings.notify_command {
        line(
            "Notify command",
            &format!(
                "{} {}",
                command.program,
                command.parameters.as_deref().unwrap_or_default()
            ),
        );
    }
    if let Some(limit) = settings.max_download_size {
        line("Max download size", &human::bytes(limit));
    }
    if let Some(group) = job.group {
        line("Legacy group", &group.to_string());
    }
    line("Errors so far", &job.error_count.to_string());
    if let Some(error) = &job.error {
        let current = matches!(
            job.state,
            qmgr_core::JobState::Error | qmgr_core::JobState::TransientError
        );
        let _ = writeln!(
            text,
            "\n{}",
            if current {
                "Error:"
            } else {
                "Last error (since retried):"
            }
        );
        text.push_str(&human::error_block(error, &job.files, "  "));
    }
    let _ = writeln!(text, "\nFiles:");
    for (index, file) in job.files.iter().enumerate() {
        let status = if file.completed {
            "done".to_owned()
        } else {
            human::percent(file.bytes_transferred, file.bytes_total)
                .map_or_else(|| "?".to_owned(), |p| format!("{p}%"))
        };
        let _ = writeln!(
            text,
            "  #{index:<3} {status:>5}  {:<24} {}",
            human::bytes_of(file.bytes_transferred, file.bytes_total),
            human::route(file)
        );
        if !file.ranges.is_empty() {
            let _ = writeln!(text, "        ranges: {}", human::ranges(&file.ranges));
        }
    }
    if !view.attempts.is_empty() {
        let _ = writeln!(text, "\nRecent attempts:");
        for attempt in &view.attempts {
            let status = attempt
                .http_status
                .map_or_else(|| "-".to_owned(), |code| format!("HTTP {code}"));
            let mut outcome = attempt
                .error
                .as_ref()
                .map_or_else(|| "ok".to_owned(), ToString::to_string);
            if let Some(restart) = &attempt.restart {
                outcome = format!("{outcome} ({restart})");
            }
            let outcome = human::clean(&outcome);
            let _ = writeln!(
                text,
                "  {}  file #{}  {status}  {}  {outcome}",
                human::rfc3339(attempt.at),
                attempt.file,
                human::bytes(attempt.bytes),
            );
        }
    }
    text
}
