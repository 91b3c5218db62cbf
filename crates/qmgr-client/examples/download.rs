//! Downloads one URL through the user's qmgrd with a progress line, then moves the file
//! into place.
//!
//! ```sh
//! cargo run -p qmgr-client --example download -- https://www.example.com/ example.html
//! ```
//!
//! Ctrl-C leaves the job in the queue, where `qmgr list` shows it.

use std::io::Write;
use std::process::ExitCode;

use qmgr_client::{JobPriority, JobState, Manager, Status};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(output), None) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: download URL OUTPUT");
        return ExitCode::from(2);
    };
    match download(&url, &output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("download: {error}");
            ExitCode::FAILURE
        }
    }
}

fn download(url: &str, output: &str) -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::connect()?;
    let job = manager
        .new_job(format!("{output} (download example)"))
        .priority(JobPriority::Foreground)
        .file(url, output)
        .create()?;
    job.resume()?;
    let last = job.wait(show)?;
    eprintln!();
    if last.state == JobState::Transferred {
        job.complete()?;
        println!("{output}: {} bytes", last.progress.bytes_transferred);
        return Ok(());
    }
    // In ERROR the job stays in the queue (`qmgr info` shows it, `qmgr resume` retries);
    // otherwise someone else completed or cancelled it.
    Err(match last.error {
        Some(error) => error.into(),
        None => format!("the job ended {}", last.state).into(),
    })
}

/// One line, rewritten in place: `  42.0 %  TRANSFERRING, 420.0 kB of 1.0 MB, 0 of 1 files`.
fn show(status: &Status) {
    let percent = status.progress.fraction().map_or_else(
        || "    ?".to_owned(),
        |part| format!("{:5.1}", part * 100.0),
    );
    eprint!("\r\x1b[2K{percent} %  {status}");
    let _ = std::io::stderr().flush();
}
