//! `qmgr list`: the queue as a table or as JSON.

use qmgr_core::Timestamp;
use qmgr_core::service::{JobView, QueueServiceExt};
use qmgr_ipc::Client;

use crate::cli::ListArgs;
use crate::failure::Failure;
use crate::human;
use crate::json::{self, JobJson, JobList};

pub fn run(client: &Client, args: &ListArgs) -> Result<(), Failure> {
    let views: Vec<JobView> = client
        .jobs(args.all_users)?
        .into_iter()
        .filter(|view| {
            args.state.is_empty() || args.state.iter().any(|s| s.matches(view.job.state))
        })
        .collect();
    if args.output.json {
        json::print(&JobList {
            jobs: views.iter().map(JobJson::from).collect(),
        });
    } else if views.is_empty() {
        println!("No jobs.");
    } else {
        print!("{}", table(&views, Timestamp::now()));
    }
    Ok(())
}

fn table(views: &[JobView], now: Timestamp) -> String {
    let rows: Vec<[String; 7]> = views
        .iter()
        .map(|view| {
            let job = &view.job;
            let progress = job.progress();
            [
                human::short_id(job.id),
                human::fit(&human::clean(&job.display_name), 32),
                job.state.name().to_owned(),
                crate::json::priority_name(job.priority).to_owned(),
                format!("{}/{}", progress.files_transferred, progress.files_total),
                human::bytes_of(progress.bytes_transferred, progress.bytes_total),
                human::waiting_short(view.waiting.as_ref(), now),
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
