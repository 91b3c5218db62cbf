//! The fault matrix: each way a server or network can misbehave, played by the test server
//! against a real qmgrd, with the outcome written down before the run. A case ends either
//! with the file at its final name byte for byte what the server last served, or in ERROR
//! with the HRESULT and context the table names, and nothing at the final name. Never a
//! spliced or truncated file.
//!
//! With `QMGR_RELIABILITY_RESULTS=PATH` (set by `cargo xtask reliability faults`) the
//! table of case × expected × outcome × bytes fetched again is also written to PATH.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Instance, wait_until_within};
use qmgr_core::hresult::{self, HResult};
use qmgr_core::service::{JobChange, JobView, QueueServiceExt};
use qmgr_core::{ErrorContext, Guid, JobPriority, JobState, JobType};
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

/// What a case must end in.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// TRANSFERRED, then Complete: the file holds the content of this version of the path,
    /// `size` bytes of it (`None`: the case's size).
    Completes { version: u32, size: Option<u64> },
    /// ERROR with this HRESULT and context; nothing at the final name.
    Fails(HResult, ErrorContext),
    /// AddFile refuses the file with this HRESULT: the job never starts.
    Refused(HResult),
}

/// Where a case's file is saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// The instance's download directory.
    Downloads,
    /// A file system of `SMALL_DISK` bytes (a tmpfs mounted by the test; root only).
    FullDisk,
    /// A read-only file system (a tmpfs mounted read-only; root only, as root ignores
    /// file modes).
    ReadOnly,
    /// A directory removed, with the partial file in it, once bytes have arrived.
    RemovedMidway,
}

/// Which server a case talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Http,
    /// The https server, which may send the client elsewhere.
    Https,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    name: &'static str,
    /// The size of the file, in the server's path syntax (`/data/SIZE/NAME`).
    size: u64,
    /// The faults, as the test server's query.
    query: &'static str,
    via: Via,
    place: Place,
    expect: Expect,
    /// The job's NoProgressTimeout, where a case needs its retries to end.
    no_progress_timeout: Option<Duration>,
    /// Wall-clock offsets (seconds) qmgrd is given as the job enters its 1st, 2nd, …
    /// retry wait: the clock jumps by the difference (the machine's clock is untouched).
    clock_offsets: &'static [i64],
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
/// The file of the drop cases: large enough that 0.1 % of it is a few thousand bytes.
const DROP_FILE: u64 = 4 * MIB;

const fn completes(name: &'static str, size: u64, query: &'static str) -> Case {
    Case {
        name,
        size,
        query,
        via: Via::Http,
        place: Place::Downloads,
        expect: Expect::Completes {
            version: INITIAL_VERSION,
            size: None,
        },
        no_progress_timeout: None,
        clock_offsets: &[],
    }
}

const fn fails(
    name: &'static str,
    size: u64,
    query: &'static str,
    hresult: HResult,
    context: ErrorContext,
) -> Case {
    Case {
        name,
        size,
        query,
        via: Via::Http,
        place: Place::Downloads,
        expect: Expect::Fails(hresult, context),
        no_progress_timeout: None,
        clock_offsets: &[],
    }
}

/// The matrix. The drop offsets are 1 %, 30 %, 60 %, 90 % and 99.9 % of `DROP_FILE`.
const CASES: &[Case] = &[
    completes(
        "dropped at 1% of the body",
        DROP_FILE,
        "drop_after=41943&drop_once=1",
    ),
    completes(
        "dropped at 30%",
        DROP_FILE,
        "drop_after=1258291&drop_once=1",
    ),
    completes(
        "dropped at 60%",
        DROP_FILE,
        "drop_after=2516582&drop_once=1",
    ),
    completes(
        "dropped at 90%",
        DROP_FILE,
        "drop_after=3774873&drop_once=1",
    ),
    completes(
        "dropped at 99.9%",
        DROP_FILE,
        "drop_after=4190109&drop_once=1",
    ),
    completes(
        "503 three times, then the file",
        64 * KIB,
        "status=503&fail_first=3",
    ),
    completes(
        "429 with Retry-After: 6 (seconds)",
        64 * KIB,
        "status=429&fail_first=1&retry_after=6",
    ),
    completes(
        "503 with Retry-After as an HTTP-date in the past",
        64 * KIB,
        "status=503&fail_first=1&retry_after=Thu%2C%2001%20Jan%201970%2000%3A00%3A00%20GMT",
    ),
    completes(
        "a stall of 2 s before the answer (below the stall limit)",
        64 * KIB,
        "delay_ms=2000",
    ),
    Case {
        // Each attempt is cut at the stall limit and retried, until NoProgressTimeout.
        no_progress_timeout: Some(Duration::from_secs(12)),
        ..fails(
            "a stall of 8 s before every answer (beyond the stall limit)",
            64 * KIB,
            "delay_ms=8000",
            hresult::BG_E_NO_PROGRESS,
            ErrorContext::GeneralTransport,
        )
    },
    completes("a slow server, 1 kB/s", 8 * KIB, "rate=1000"),
    completes(
        "ignores Range after a cut (starts over)",
        MIB,
        "drop_after=300000&drop_once=1&ignore_range=1",
    ),
    Case {
        expect: Expect::Completes {
            version: 1,
            size: None,
        },
        ..completes(
            "content changes during the resume (new ETag, same size)",
            MIB,
            "drop_after=300000&drop_once=1&change_after=1",
        )
    },
    Case {
        expect: Expect::Completes {
            version: 1,
            size: Some(MIB - 900_000),
        },
        ..completes(
            "content changes during the resume (new ETag, smaller than the bytes held)",
            MIB,
            "drop_after=300000&drop_once=1&change_after=1&resize=-900000",
        )
    },
    Case {
        expect: Expect::Completes {
            version: 1,
            size: Some(MIB + 100_000),
        },
        ..completes(
            "content changes during the resume (new ETag, larger)",
            MIB,
            "drop_after=300000&drop_once=1&change_after=1&resize=100000",
        )
    },
    Case {
        // The bytes past Content-Length are not part of the response: the file is what
        // the server declared.
        expect: Expect::Completes {
            version: INITIAL_VERSION,
            size: Some(256 * KIB - 1000),
        },
        ..completes(
            "Content-Length 1,000 bytes short of the body",
            256 * KIB,
            "length_lie=-1000",
        )
    },
    Case {
        // Every answer ends short of what it declared: the job retries until its
        // NoProgressTimeout (bytes fetched again after a start-over are not progress),
        // then stops in ERROR with nothing at the final name.
        no_progress_timeout: Some(Duration::from_secs(12)),
        ..fails(
            "Content-Length 1,000 bytes beyond the body, on every answer",
            256 * KIB,
            "length_lie=1000",
            hresult::BG_E_NO_PROGRESS,
            ErrorContext::GeneralTransport,
        )
    },
    completes(
        "no Content-Length (ends with the connection)",
        256 * KIB,
        "no_length=1",
    ),
    completes("chunked", 256 * KIB, "chunked=1"),
    completes(
        "chunked, cut mid-body",
        MIB,
        "chunked=1&drop_after=500000&drop_once=1",
    ),
    Case {
        // Unabsorbed, the jump back would hold the retry a day, and the jump forward end
        // the job at once for want of progress.
        no_progress_timeout: Some(Duration::from_secs(60)),
        clock_offsets: &[-86_400, 0],
        ..completes(
            "the wall clock jumps a day back, then a day forward, during retry waits",
            64 * KIB,
            "status=503&fail_first=2",
        )
    },
    fails(
        "a redirect loop",
        KIB,
        "redirect=50",
        hresult::HRESULT_WINHTTP_REDIRECT_FAILED,
        ErrorContext::RemoteFile,
    ),
    Case {
        via: Via::Https,
        ..fails(
            "https redirected to http",
            KIB,
            "location=DOWNGRADE",
            hresult::HRESULT_WINHTTP_REDIRECT_FAILED,
            ErrorContext::RemoteFile,
        )
    },
    fails(
        "404",
        KIB,
        "status=404",
        hresult::BG_E_HTTP_ERROR_404,
        ErrorContext::RemoteFile,
    ),
    fails(
        "404 when resuming after a cut",
        MIB,
        "drop_after=300000&drop_once=1&status=404&fail_after=1",
        hresult::BG_E_HTTP_ERROR_404,
        ErrorContext::RemoteFile,
    ),
    Case {
        place: Place::FullDisk,
        ..fails(
            "the disk fills up",
            MIB,
            "",
            hresult::HRESULT_DISK_FULL,
            ErrorContext::LocalFile,
        )
    },
    Case {
        place: Place::ReadOnly,
        expect: Expect::Refused(hresult::E_ACCESSDENIED),
        ..completes("a read-only destination", KIB, "")
    },
    Case {
        place: Place::RemovedMidway,
        ..fails(
            "the destination directory removed mid-transfer",
            MIB,
            "rate=200000",
            hresult::HRESULT_PATH_NOT_FOUND,
            ErrorContext::LocalFile,
        )
    },
];

/// The size of the file system of `Place::FullDisk`, smaller than its case's file.
const SMALL_DISK: &str = "256k";

/// qmgrd's `stall_timeout` in this test (the default is 2 minutes).
const STALL_LIMIT: Duration = Duration::from_secs(4);

/// Each job's MinimumRetryDelay.
const RETRY_DELAY: Duration = Duration::from_secs(5);

/// How long the whole matrix may take before a case counts as stuck.
const PATIENCE: Duration = Duration::from_secs(240);

#[test]
fn every_fault_ends_in_the_right_file_or_the_named_error() {
    let server = TestServer::start();
    let secure = TestServer::start_https();
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), secure.ca_pem()).unwrap();
    let clock_offset = tempfile::NamedTempFile::new().unwrap();
    let instance = Instance::with_env(vec![
        ("SSL_CERT_FILE".into(), ca.path().into()),
        (
            "QMGR_WALL_CLOCK_OFFSET_FILE".into(),
            clock_offset.path().into(),
        ),
    ]);
    // A stall limit the stall cases can straddle within the test's patience.
    std::fs::write(
        instance.dir("config/qmgr").join("config.toml"),
        format!("stall_timeout = {}\n", STALL_LIMIT.as_secs()),
    )
    .unwrap();
    let client = instance.client();
    let downloads = instance.downloads();

    let started = Instant::now();
    let mut mounts = Vec::new();
    let mut jobs = Vec::new();
    for (number, case) in CASES.iter().enumerate() {
        let path = format!("/data/{}/case{number}", case.size);
        let url = match case.via {
            Via::Http => server.url(&format!("{path}?{}", case.query)),
            Via::Https => {
                let downgrade = percent_encoded(&server.url(&path));
                secure.url(&format!(
                    "{path}?{}",
                    case.query.replace("DOWNGRADE", &downgrade)
                ))
            }
        };
        let dir = match case.place {
            Place::Downloads => downloads.clone(),
            place => {
                let dir = instance.dir(&format!("case{number}"));
                match place {
                    Place::FullDisk | Place::ReadOnly if !is_root() => {
                        jobs.push((case, path, dir, Started::Skipped("needs root, to mount")));
                        continue;
                    }
                    Place::FullDisk => {
                        mounts.push(Mount::tmpfs(&dir, &format!("size={SMALL_DISK}")));
                    }
                    Place::ReadOnly => mounts.push(Mount::tmpfs(&dir, "ro")),
                    _ => {}
                }
                dir
            }
        };
        let local = dir.join(format!("case{number}"));
        let id = client.create_job(case.name, JobType::Download).unwrap();
        if let Err(error) = client.add_file(id, &url, &local.to_string_lossy()) {
            client.cancel(id).unwrap();
            jobs.push((case, path, local, Started::Refused(error.hresult)));
            continue;
        }
        client
            .set_job(id, JobChange::Priority(JobPriority::Foreground))
            .unwrap();
        // The least Windows allows, so that a retry comes within the test's patience.
        client
            .set_job(id, JobChange::MinimumRetryDelay(RETRY_DELAY))
            .unwrap();
        if let Some(timeout) = case.no_progress_timeout {
            client
                .set_job(id, JobChange::NoProgressTimeout(timeout))
                .unwrap();
        }
        client.resume(id).unwrap();
        jobs.push((case, path, local, Started::Job(id)));
    }
    for (case, _, local, started) in &jobs {
        if let (Place::RemovedMidway, Started::Job(id)) = (case.place, started) {
            wait_until_within(&client, *id, "the first bytes", PATIENCE, |view| {
                view.job.files[0].bytes_transferred > 0
            });
            std::fs::remove_dir_all(local.parent().unwrap()).unwrap();
        }
    }

    for (case, _, _, started) in &jobs {
        let Started::Job(id) = started else { continue };
        for (wait, offset) in case.clock_offsets.iter().enumerate() {
            let errors = u32::try_from(wait + 1).unwrap();
            wait_until_within(&client, *id, "a retry wait", PATIENCE, |view| {
                view.job.state == JobState::TransientError && view.job.error_count >= errors
            });
            std::fs::write(clock_offset.path(), offset.to_string()).unwrap();
        }
    }

    let mut table =
        String::from("| case | expected | outcome | bytes fetched again |\n|---|---|---|---|\n");
    let mut wrong = Vec::new();
    for (case, path, local, started_as) in &jobs {
        let (outcome, verdict) = match started_as {
            Started::Skipped(why) => (format!("skipped: {why}"), Ok(())),
            Started::Refused(code) => (
                format!("AddFile refused: {}", hresult_text(*code)),
                match case.expect {
                    Expect::Refused(wanted) if wanted == *code => Ok(()),
                    _ => Err("AddFile was refused".to_owned()),
                },
            ),
            Started::Job(id) => {
                let left = PATIENCE.saturating_sub(started.elapsed());
                let end = wait_until_within(&client, *id, case.name, left, |view| {
                    matches!(view.job.state, JobState::Transferred | JobState::Error)
                });
                let completed = if end.job.state == JobState::Transferred {
                    client.complete(*id).map(|_| ())
                } else {
                    Ok(())
                };
                let verdict = match completed {
                    Ok(()) => judge(case, &end, local, path),
                    Err(error) => Err(format!("Complete failed: {}", error.description)),
                };
                (outcome_of(&end), verdict)
            }
        };
        let served = if case.via == Via::Https {
            secure.body_bytes_sent(path)
        } else {
            server.body_bytes_sent(path)
        };
        let final_size = match case.expect {
            Expect::Completes {
                size: Some(size), ..
            } => size,
            _ => case.size,
        };
        let again = served.saturating_sub(final_size);
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} |",
            case.name,
            expected_text(case.expect),
            match &verdict {
                Ok(()) => outcome.clone(),
                Err(why) => format!("**{outcome}: {why}**"),
            },
            if matches!(case.expect, Expect::Completes { .. }) {
                format!("{again} ({:.2} % of the file)", percent(again, final_size))
            } else {
                "—".to_owned()
            }
        );
        if let Err(why) = verdict {
            wrong.push(format!("{}: {why}", case.name));
        }
    }
    drop(mounts);
    println!("{table}");
    if let Some(results) = std::env::var_os("QMGR_RELIABILITY_RESULTS") {
        write_results(Path::new(&results), &table, started.elapsed());
    }
    assert!(
        wrong.is_empty(),
        "cases that ended wrong:\n{}",
        wrong.join("\n")
    );
}

/// How a case's job began.
enum Started {
    Job(Guid),
    /// AddFile refused the file, with this HRESULT.
    Refused(HResult),
    /// The case cannot run here, for this reason.
    Skipped(&'static str),
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A file system mounted for one case, unmounted when dropped.
struct Mount {
    dir: std::path::PathBuf,
}

impl Mount {
    fn tmpfs(dir: &Path, options: &str) -> Mount {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "qmgr-fault-matrix"])
            .arg(dir)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "cannot mount a tmpfs on {}",
            dir.display()
        );
        Mount {
            dir: dir.to_owned(),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

/// What the job ended in, for the table.
fn outcome_of(view: &JobView) -> String {
    match (&view.job.state, &view.job.error) {
        (JobState::Error, Some(error)) => format!(
            "ERROR {} ({:?})",
            hresult_text(error.error.hresult),
            error.error.context
        ),
        (state, _) => format!("{state:?}"),
    }
}

/// Whether the case ended as its row says; the reason when not.
fn judge(case: &Case, end: &JobView, local: &Path, path: &str) -> Result<(), String> {
    match case.expect {
        Expect::Completes { version, size } => {
            if end.job.state != JobState::Transferred {
                return Err(format!("not transferred: {:?}", end.job.error));
            }
            let held = std::fs::read(local).map_err(|e| format!("no file: {e}"))?;
            let wanted = expected_body(path, version, size.unwrap_or(case.size));
            if held == wanted {
                Ok(())
            } else {
                let at = held
                    .iter()
                    .zip(&wanted)
                    .position(|(a, b)| a != b)
                    .unwrap_or(held.len().min(wanted.len()));
                Err(format!(
                    "the file ({} bytes) differs from version {version} ({} bytes) at byte {at}",
                    held.len(),
                    wanted.len()
                ))
            }
        }
        Expect::Refused(_) => Err("AddFile took the file".to_owned()),
        Expect::Fails(hresult, context) => {
            let Some(error) = end
                .job
                .error
                .as_ref()
                .filter(|_| end.job.state == JobState::Error)
            else {
                return Err(format!("ended {:?} instead of ERROR", end.job.state));
            };
            if local.exists() {
                return Err("a file is at the final name".to_owned());
            }
            if (error.error.hresult, error.error.context) == (hresult, context) {
                Ok(())
            } else {
                Err(format!("the error is {}", error.error.description))
            }
        }
    }
}

fn expected_text(expect: Expect) -> String {
    match expect {
        Expect::Completes {
            version,
            size: None,
        } if version == INITIAL_VERSION => "completes, byte for byte".to_owned(),
        Expect::Completes {
            version,
            size: None,
        } => format!("completes with version {version}"),
        Expect::Completes {
            version,
            size: Some(size),
        } => format!("completes with version {version}, {size} bytes"),
        Expect::Fails(hresult, context) => {
            format!("ERROR {} ({context:?})", hresult_text(hresult))
        }
        Expect::Refused(hresult) => format!("AddFile refused: {}", hresult_text(hresult)),
    }
}

fn hresult_text(hresult: HResult) -> String {
    match hresult.name() {
        Some(name) => name.to_owned(),
        None => format!("{hresult}"),
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)] // file sizes far below 2^52
    let ratio = part as f64 / whole.max(1) as f64;
    ratio * 100.0
}

fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

fn write_results(path: &Path, table: &str, took: Duration) {
    let text = format!(
        "## The fault matrix\n\n\
         Each case is one download job through a real qmgrd (FOREGROUND, MinimumRetryDelay 5 s, the least Windows \
         allows) from the project's test server playing the fault; every case's expected \
         outcome is in the test's table before it runs \
         (`crates/qmgr-service/tests/fault_matrix.rs`). \"Bytes fetched again\" is what the \
         server sent beyond the file's size. The cases ran at once; the matrix took {:.1} s.\n\n\
         {table}",
        took.as_secs_f64()
    );
    // The file's other sections (crash loops, fuzzing, ...) are written by other tests.
    if let Err(error) = qmgr_tests::results::write_part(path, "faults", "faults-matrix", &text) {
        panic!("cannot write {}: {error}", path.display());
    }
}
