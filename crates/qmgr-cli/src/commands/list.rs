//! `qmgr list`: the queue as a table or as JSON.

use std::io::{BufWriter, Write};

use qmgr_core::service::{JobSummary, JobView, QueueService, QueueServiceExt};
use qmgr_core::{Timestamp, hresult};
use qmgr_ipc::Client;
use qmgr_ipc::users::{self, UserQueue};

use crate::cli::ListArgs;
use crate::failure::Failure;
use crate::human;
use crate::json::{self, JobJson, JobList};

/// The table needs no file list: it reads summaries, a page at a time, keeping only the
/// text of each row. The JSON lists every job's files, so only it fetches them, a job and
/// a page at a time. With `--all-users` (root only) the jobs of every user's running
/// qmgrd follow root's own, and the table has an OWNER column.
pub fn run(client: &Client, args: &ListArgs) -> Result<(), Failure> {
    let others = if args.all_users {
        other_users()?
    } else {
        Vec::new()
    };
    let wanted = |summary: &JobSummary| {
        args.state.is_empty() || args.state.iter().any(|s| s.matches(summary.job.state))
    };
    if args.output.json {
        let mut jobs = Vec::new();
        list_json(client, args.all_users, &wanted, &mut jobs)?;
        for other in &others {
            if let Err(failure) = list_json(other, true, &wanted, &mut jobs) {
                skipped_late(other, &failure);
            }
        }
        json::print(&JobList { jobs });
        return Ok(());
    }
    let now = Timestamp::now();
    let written = if args.all_users {
        let mut table = Table::new(OWNER_HEADER);
        let mut rows = |queue: &dyn QueueService| {
            queue.job_summary_pages(true, |page| {
                for summary in page.iter().filter(|summary| wanted(summary)) {
                    table.push_row(&owner_row(summary, now));
                }
                Ok(())
            })
        };
        rows(client)?;
        for other in &others {
            if let Err(error) = rows(other) {
                skipped_late(other, &error.into());
            }
        }
        write_table(&table)
    } else {
        let mut table = Table::new(HEADER);
        client.job_summary_pages(false, |page| {
            for summary in page.iter().filter(|summary| wanted(summary)) {
                table.push_row(&row(summary, now));
            }
            Ok(())
        })?;
        write_table(&table)
    };
    match written {
        Ok(()) => Ok(()),
        // The reader went away (`qmgr list | head`): nothing more to say.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(Failure::failed(format!("cannot write the list: {error}"))),
    }
}

/// Every other user's running qmgrd (README "Other users"); only root may ask.
fn other_users() -> Result<Vec<UserQueue>, Failure> {
    if !rustix::process::geteuid().is_root() {
        return Err(Failure::failed(
            "--all-users lists every user's jobs and needs root (E_ACCESSDENIED); \
             without it, qmgr list shows your own jobs",
        ));
    }
    let root = users::user_runtime_root(std::env::var_os(users::USER_RUNTIME_ROOT_VAR));
    let scan = users::scan(&root)?;
    if logs_debug(std::env::var("QMGR_LOG").ok().as_deref()) {
        for skipped in &scan.skipped {
            eprintln!(
                "qmgr: debug: skipped {}: {}",
                skipped.path.display(),
                human::clean(&skipped.reason)
            );
        }
    }
    Ok(scan.queues)
}

/// A user's qmgrd that failed while it was listed is skipped, as one not running is.
fn skipped_late(queue: &UserQueue, failure: &Failure) {
    if logs_debug(std::env::var("QMGR_LOG").ok().as_deref()) {
        eprintln!(
            "qmgr: debug: skipped the rest of {}: {failure}",
            queue.socket_path().display()
        );
    }
}

/// Whether `QMGR_LOG` (a `tracing` filter, as qmgrd reads it) asks for debug messages.
fn logs_debug(filter: Option<&str>) -> bool {
    filter.is_some_and(|filter| {
        filter
            .split(',')
            .any(|directive| matches!(directive.rsplit('=').next(), Some("debug" | "trace")))
    })
}

/// The jobs of one queue with their files, as JSON.
fn list_json(
    queue: &dyn QueueService,
    all_users: bool,
    wanted: &impl Fn(&JobSummary) -> bool,
    jobs: &mut Vec<JobJson>,
) -> Result<(), Failure> {
    let mut summaries = Vec::new();
    queue.job_summary_pages(all_users, |page| {
        summaries.extend(page.into_iter().filter(|summary| wanted(summary)));
        Ok(())
    })?;
    for summary in summaries {
        let id = summary.job.id;
        let files = match queue.job_files(id) {
            Ok(files) => files,
            // Gone since the listing (completed or cancelled meanwhile).
            Err(error) if error.hresult == hresult::BG_E_NOT_FOUND => continue,
            Err(error) => return Err(error.into()),
        };
        let mut view = JobView {
            job: summary.job,
            waiting: summary.waiting,
            attempts: summary.attempts,
            idle: None,
        };
        view.job.files = files;
        jobs.push(JobJson::from(&view));
    }
    Ok(())
}

fn write_table<const N: usize>(table: &Table<N>) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    if table.rows() == 0 {
        writeln!(out, "No jobs.")?;
    } else {
        table.write(&mut out)?;
    }
    out.flush()
}

const COLUMNS: usize = 7;
const HEADER: [&str; COLUMNS] = [
    "ID", "NAME", "STATE", "PRIORITY", "FILES", "BYTES", "WAITING",
];
const OWNER_HEADER: [&str; COLUMNS + 1] = [
    "ID", "OWNER", "NAME", "STATE", "PRIORITY", "FILES", "BYTES", "WAITING",
];

/// The table's cells of one job.
fn row(summary: &JobSummary, now: Timestamp) -> [String; COLUMNS] {
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
}

/// [`row`] with the owner's user name (or uid) after the ID.
fn owner_row(summary: &JobSummary, now: Timestamp) -> [String; COLUMNS + 1] {
    let [id, rest @ ..] = row(summary, now);
    let mut cells = [const { String::new() }; COLUMNS + 1];
    cells[0] = id;
    cells[1] = human::user_label(summary.job.owner_uid);
    for (cell, text) in cells[2..].iter_mut().zip(rest) {
        *cell = text;
    }
    cells
}

/// A table of `N` columns, its cells kept end to end in one text with where each ends and
/// how wide it is: a row of a large queue costs its text and a few numbers.
struct Table<const N: usize> {
    text: String,
    /// Per cell, row after row: where it ends in `text`, and its width on a terminal.
    cells: Vec<(usize, usize)>,
    widths: [usize; N],
}

impl<const N: usize> Table<N> {
    fn new(header: [&str; N]) -> Table<N> {
        let mut table = Table {
            text: String::new(),
            cells: Vec::new(),
            widths: [0; N],
        };
        table.push_row(&header);
        table
    }

    fn push_row<S: AsRef<str>>(&mut self, cells: &[S; N]) {
        for (cell, width) in cells.iter().zip(&mut self.widths) {
            let cell = cell.as_ref();
            let cell_width = cell_width(cell);
            *width = (*width).max(cell_width);
            self.text.push_str(cell);
            self.cells.push((self.text.len(), cell_width));
        }
    }

    /// Rows below the header.
    fn rows(&self) -> usize {
        self.cells.len() / N - 1
    }

    /// Every row, each cell padded to its column's width, two spaces between columns, and
    /// no spaces at the end of a line.
    fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut line = String::new();
        let mut start = 0;
        for row in self.cells.chunks_exact(N) {
            line.clear();
            for (column, &(end, cell_width)) in row.iter().enumerate() {
                if column > 0 {
                    line.push_str("  ");
                }
                line.push_str(&self.text[start..end]);
                let pad = self.widths[column].saturating_sub(cell_width);
                line.extend(std::iter::repeat_n(' ', pad));
                start = end;
            }
            out.write_all(line.trim_end().as_bytes())?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// Columns a cell takes on a terminal: its length when it is printable ASCII (nearly
/// every cell), else as [`human::width`] counts.
fn cell_width(cell: &str) -> usize {
    if cell.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        cell.len()
    } else {
        human::width(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table as it was made before rows were kept as text: every cell fitted and padded
    /// to its column, joined by two spaces, the line trimmed at its end.
    fn padded_by_cell(rows: &[[&str; COLUMNS]]) -> String {
        let mut widths = [0; COLUMNS];
        for row in rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(human::width(cell));
            }
        }
        let mut text = String::new();
        for row in rows {
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

    #[test]
    fn the_table_pads_columns_to_their_widest_cell_and_trims_line_ends() {
        let rows = [
            [
                "1a2b3c4d",
                "nightly",
                "SUSPENDED",
                "normal",
                "0/1",
                "0 B / 0 B",
                "suspended",
            ],
            [
                "99887766",
                "日本語の名前",
                "ERROR",
                "foreground",
                "10/12",
                "1.5 MB / 2 MB",
                "",
            ],
            ["00000000", "", "QUEUED", "low", "0/0", "0 B / ?", "3 ahead"],
        ];
        let mut table = Table::new(HEADER);
        for row in &rows {
            table.push_row(row);
        }
        assert_eq!(table.rows(), rows.len());
        let mut written = Vec::new();
        table.write(&mut written).unwrap();
        let mut expected = vec![HEADER];
        expected.extend(rows);
        let written = String::from_utf8(written).unwrap();
        assert_eq!(written, padded_by_cell(&expected));
        // The wide name counts two columns a character: the next column starts after it.
        let wide_line = written.lines().nth(2).unwrap();
        assert!(
            wide_line.starts_with("99887766  日本語の名前  ERROR"),
            "{wide_line}"
        );
        assert!(!written.lines().any(|line| line.ends_with(' ')));
    }

    #[test]
    fn debug_messages_follow_qmgr_log() {
        assert!(logs_debug(Some("debug")));
        assert!(logs_debug(Some("warn,qmgr_ipc=trace")));
        assert!(!logs_debug(Some("info")));
        assert!(!logs_debug(None));
    }

    #[test]
    fn cell_widths_count_terminal_columns() {
        assert_eq!(cell_width("suspended"), 9);
        assert_eq!(cell_width("名前"), 4);
        assert_eq!(cell_width(""), 0);
        assert_eq!(cell_width("é"), 1);
    }
}
