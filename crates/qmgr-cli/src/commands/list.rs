//! `qmgr list`: the queue as a table or as JSON.

use qmgr_core::service::{JobSummary, JobView, QueueServiceExt};
use qmgr_core::{Timestamp, hresult};
use qmgr_ipc::Client;

use crate::cli::ListArgs;
use crate::failure::Failure;
use crate::human;
use crate::json::{self, JobJson, JobList};

/// The table needs no file list: it reads summaries. The JSON lists every job's files,
/// so only it fetches them, a job and a page at a time.
pub fn run(client: &Client, args: &ListArgs) -> Result<(), Failure> {
    let summaries: Vec<JobSummary> = client
        .job_summaries(args.all_users)?
        .into_iter()
        .filter(|summary| {
            args.state.is_empty() || args.state.iter().any(|s| s.matches(summary.job.state))
        })
        .collect();
    if args.output.json {
        let mut jobs = Vec::new();
        for summary in summaries {
            let id = summary.job.id;
            let files = match client.job_files(id) {
                Ok(files) => files,
                // Gone since the listing (completed or cancelled meanwhile).
                Err(error) if error.hresult == hresult::BG_E_NOT_FOUND => continue,
                Err(error) => return Err(error.into()),
            };
            let mut view = JobView {
                job: summary.job,
                waiting: summary.waiting,
                attempts: summary.attempts,
            };
            view.job.files = files;
            jobs.push(JobJson::from(&view));
        }
        json::print(&JobList { jobs });
    } else if summaries.is_empty() {
        println!("No jobs.");
    } else {
        print!("{}", table(&summaries, Timestamp::now()));
    }
    Ok(())
}

fn table(summaries: &[JobSummary], now: Timestamp) -> String {
    let rows: Vec<[String; 7]> = summaries
        .iter()
        .map(|summary| {
            let job = &summary.job;
            let progress = summary.progress;
            [
                human::short_id(job.id),
                human::fit(&human::clean(&job.display_name), 32),
                job.state.name().to_owned(),
                crate::json::priority_name(job.priority).to_owned(),
                format!("{}/{}", progress.files_transferred, progress.files_total),
                human::bytes_of(progress.bytes_transferred, progress.bytes_total),
                human::waiting_short(summary.waiting.as_ref(), now),
            ]
        })
        .collect();
    let header = [
        "ID", "NAME", "STATE", "PRIORITY", "FILES", "BYTES", "WAITING",
    ]
    .map(String::from);
    let mut widths = header.clone().map(|h| human::width(&h));
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(human::width(cell));
        }
    }
    let mut text = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| human::fit_pad(cell, width))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}
