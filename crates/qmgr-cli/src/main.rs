//! `qmgr`: the command line of qmgr, the Background Intelligent Transfer Service for Linux.
//!
//! `qmgr transfer URL -o FILE` downloads with progress bars like curl; the bitsadmin-style
//! commands (`create`, `addfile`, `resume`, `info`, `setpriority` …) manage jobs one call
//! at a time; `qmgr monitor` watches the whole queue. Every command talks to the user's
//! `qmgrd` through `qmgr-ipc`, starting it when needed (never for `daemon status|stop`).
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | a job failed, or qmgrd refused the request (wrong state, access denied) |
//! | 2 | usage error or bad input: bad option, URL, path, duration or rate; ambiguous job name |
//! | 3 | qmgrd is not running and cannot be started; for `daemon status`: not running |
//! | 4 | no such job or group; for `resume`, `suspend`, `cancel` and `complete`: any of the JOBs named (the others are still done) |
//! | 130 | `qmgr transfer` was interrupted (Ctrl-C, SIGTERM); its jobs are suspended |
//!
//! # Naming jobs
//!
//! A JOB argument is tried as a GUID (`{…}` or bare, any case), then as a unique prefix of
//! a GUID, then as a unique display name. A prefix or name that fits several jobs exits 2
//! listing them; one that fits none exits 4.
//!
//! # JSON output (schema version 1)
//!
//! The README's section "JSON output" describes the same schema for users; keep the two
//! in step (a test checks that the README names every field `info --json` prints).
//!
//! `--json` is accepted by `list`, `info`, `groups`, `create`, `daemon status` and
//! `transfer --background`. Fields are only ever added; removing or renaming one would be
//! a new schema version. Times are RFC 3339 strings in UTC; sizes are bytes; a size not
//! yet known is `null`.
//!
//! - `list`, `transfer --background`: `{"jobs": [JOB, …]}`
//! - `info`: `JOB`
//! - `groups`: `{"groups": [{"id", "name", "description", "created", "status" (QM_STATUS_*
//!   bits), "status_flags" (their names), "foreground", "job": JOB | null}, …]}`
//! - `create`: `{"id": GUID}`
//! - `daemon status`: `{"running", "version", "socket", "state_dir", "pid", "jobs"}`
//!   (`version`, `pid` and `jobs` `null` when it is not running)
//!
//! `JOB` is:
//!
//! ```text
//! {
//!   "id": "{GUID}", "name": str, "description": str,
//!   "type": "download" | "upload" | "upload_reply",
//!   "state": "QUEUED" | "CONNECTING" | "TRANSFERRING" | "SUSPENDED" | "ERROR"
//!          | "TRANSIENT_ERROR" | "TRANSFERRED" | "ACKNOWLEDGED" | "CANCELLED",
//!   "priority": "foreground" | "high" | "normal" | "low",
//!   "owner": {"uid": int, "sid": "S-1-22-1-<uid>", "name": str | null},
//!   "group": "{GUID}" | null,
//!   "progress": {"bytes_total": int | null, "bytes_transferred": int,
//!                "files_total": int, "files_transferred": int},
//!   "times": {"created": time, "modified": time, "transfer_completed": time | null},
//!   "settings": {"minimum_retry_delay_secs": int, "no_progress_timeout_secs": int,
//!                "parallel_files": int, "headers": [str],
//!                "proxy": {"usage": "preconfig" | "no_proxy" | "override" | "autodetect",
//!                          "proxy_list": str | null, "bypass_list": str | null},
//!                "notify_command": {"program": str, "parameters": str | null} | null,
//!                "notify_flags": int, "max_download_size": int | null,
//!                "bandwidth_limit": int | null},
//!   "waiting": null | {"reason": "suspended" | "waiting_for_slot" | "retry_at" | "no_network"
//!                                | "throttled" | "failed" | "awaiting_complete",
//!                      "jobs_ahead": int (waiting_for_slot only),
//!                      "retry_at": time (retry_at only),
//!                      "server_asked": bool (retry_at only: Retry-After set the time),
//!                      "bytes_per_second": int (throttled only: the cap)},
//!   "error": null | ERROR + {"file_index": int | null, "protocol": str | null, "at": time},
//!   "error_count": int,
//!   "files": [{"index": int, "remote_name": str, "local_name": str,
//!              "bytes_total": int | null, "bytes_transferred": int, "completed": bool}],
//!   "attempts": [{"at": time, "file": int, "http_status": int | null, "bytes": int,
//!                 "error": ERROR | null, "restart": str | null}]
//! }
//! ERROR = {"hresult": "0x80190194", "hresult_name": "BG_E_HTTP_ERROR_404" | null,
//!          "description": str, "context": "remote_file" | "local_file" | …,
//!          "context_description": str}
//! ```
//!
//! `error` is the last error the job met; it is current while `state` is `ERROR` or
//! `TRANSIENT_ERROR`.

#![forbid(unsafe_code)]

mod cli;
mod commands;
mod destinations;
mod failure;
mod human;
mod json;
mod manual;
mod password;
mod progress;
mod rate;
mod resolve;
mod session;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so `qmgr list | head` would fail writing; like other Unix
    // tools, qmgr ends quietly when its reader goes away.
    let _ = signal_hook::flag::register_conditional_default(
        signal_hook::consts::SIGPIPE,
        Arc::new(AtomicBool::new(true)),
    );
    let cli = cli::Cli::parse();
    match commands::run(cli.command) {
        Ok(()) => ExitCode::from(failure::Exit::Success.code()),
        Err(failure) => {
            if !failure.message.is_empty() {
                // Names and server text in messages are escaped where they are put in;
                // this catches any control character that slipped through.
                eprintln!("qmgr: {}", human::clean_lines(&failure.message));
            }
            ExitCode::from(failure.exit.code())
        }
    }
}
