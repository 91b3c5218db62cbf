//! `qmgr monitor`: every job at a glance, refreshed. On a terminal it is a full-screen view
//! in plain ANSI (alternate screen, no mouse, so it works over SSH): moving jobs first, then
//! waiting ones, then finished ones; the arrow keys, PgUp/PgDn and Home/End scroll when they
//! do not all fit; q, Esc or Ctrl-C quit. Otherwise it prints one snapshot per interval.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::style::{Attribute, Print, SetAttribute};
use crossterm::terminal::{self, ClearType};
use crossterm::{cursor, execute, queue};
use qmgr_core::file::SIZE_UNKNOWN;
use qmgr_core::service::{JobSummary, QueueServiceExt};
use qmgr_core::{Guid, JobState, Timestamp};
use qmgr_ipc::Client;

use crate::failure::Failure;
use crate::human;
use crate::rate::RateMeter;

/// Width of the plain-text snapshot lines.
const PLAIN_WIDTH: usize = 120;
/// Cells of the progress bar column, brackets included.
const BAR_CELLS: usize = 12;

pub fn run(client: &Client, interval: Duration, count: Option<u64>) -> Result<(), Failure> {
    if std::io::stdout().is_terminal() {
        full_screen(client, interval, count)
    } else {
        plain(client, interval, count)
    }
}

/// Per-job transfer rates, from the byte counts of successive looks.
#[derive(Default)]
struct Rates {
    meters: HashMap<Guid, RateMeter>,
}

impl Rates {
    fn record(&mut self, views: &[JobSummary], at: Instant) {
        self.meters
            .retain(|id, _| views.iter().any(|view| view.job.id == *id));
        for view in views {
            self.meters
                .entry(view.job.id)
                .or_default()
                .record(at, view.progress.bytes_transferred);
        }
    }

    fn of(&self, id: Guid) -> Option<u64> {
        self.meters.get(&id).and_then(RateMeter::per_second)
    }
}

/// A snapshot of the queue, or why there is none.
fn look(client: &Client, rates: &mut Rates) -> Result<Vec<JobSummary>, String> {
    let views = client
        .job_summaries(false)
        .map_err(|error| format!("cannot list jobs: {error}"))?;
    rates.record(&views, Instant::now());
    Ok(views)
}

fn plain(client: &Client, interval: Duration, count: Option<u64>) -> Result<(), Failure> {
    let mut rates = Rates::default();
    let mut shown = 0u64;
    loop {
        let now = Timestamp::now();
        let mut out = std::io::stdout().lock();
        let lines = match look(client, &mut rates) {
            Ok(views) => screen(&views, &rates, PLAIN_WIDTH, usize::MAX, 0, now).lines,
            Err(error) => vec![error],
        };
        for line in lines {
            let _ = writeln!(out, "{}", line.trim_end());
        }
        let _ = writeln!(out);
        let _ = out.flush();
        drop(out);
        shown += 1;
        if count.is_some_and(|count| shown >= count) {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

/// Leaves the alternate screen and raw mode however the view ends.
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> std::io::Result<TerminalGuard> {
        terminal::enable_raw_mode()?;
        let guard = TerminalGuard;
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cursor::Hide
        )?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = execute!(
            std::io::stdout(),
            terminal::LeaveAlternateScreen,
            cursor::Show
        );
        let _ = terminal::disable_raw_mode();
    }
}

fn full_screen(client: &Client, interval: Duration, count: Option<u64>) -> Result<(), Failure> {
    let terminal_error =
        |error: std::io::Error| Failure::failed(format!("cannot drive the terminal: {error}"));
    let _guard = TerminalGuard::enter().map_err(terminal_error)?;
    let mut rates = Rates::default();
    let mut shown = 0u64;
    let mut offset = 0usize;
    let mut page = 1usize;
    let mut refresh = true;
    let mut views = Vec::new();
    let mut failure = None;
    loop {
        let (columns, rows) = terminal::size().unwrap_or((80, 24));
        let now = Timestamp::now();
        if refresh {
            match look(client, &mut rates) {
                Ok(looked) => {
                    views = looked;
                    failure = None;
                }
                Err(error) => failure = Some(error),
            }
            shown += 1;
        }
        let lines = match &failure {
            None => {
                let drawn = screen(
                    &views,
                    &rates,
                    usize::from(columns),
                    usize::from(rows),
                    offset,
                    now,
                );
                offset = drawn.offset;
                page = drawn.page.max(1);
                drawn.lines
            }
            Some(error) => vec![format!("qmgr monitor: {error}"), "q quits".to_owned()],
        };
        draw(&lines, usize::from(columns)).map_err(terminal_error)?;
        if refresh && count.is_some_and(|count| shown >= count) {
            return Ok(());
        }
        refresh = true;
        match wait_for_keys(interval).map_err(terminal_error)? {
            Key::Quit => return Ok(()),
            Key::Refresh => {}
            Key::Scroll(scroll) => {
                // Move at once, with the jobs of the last look; the next look comes on time.
                offset = scroll.apply(offset, page);
                refresh = false;
            }
        }
    }
}

fn draw(lines: &[String], columns: usize) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for (row, line) in (0u16..).zip(lines) {
        queue!(out, cursor::MoveTo(0, row))?;
        if row == 1 {
            queue!(out, SetAttribute(Attribute::Reverse))?;
        }
        queue!(
            out,
            Print(human::fit(line, columns)),
            terminal::Clear(ClearType::UntilNewLine)
        )?;
        if row == 1 {
            queue!(out, SetAttribute(Attribute::Reset))?;
        }
    }
    queue!(out, terminal::Clear(ClearType::FromCursorDown))?;
    out.flush()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scroll {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
}

impl Scroll {
    /// The first job row shown after this key, `page` rows fitting on the screen (the
    /// screen clamps it to the jobs there are).
    fn apply(self, offset: usize, page: usize) -> usize {
        match self {
            Self::Up => offset.saturating_sub(1),
            Self::Down => offset.saturating_add(1),
            Self::PageUp => offset.saturating_sub(page),
            Self::PageDown => offset.saturating_add(page),
            Self::Top => 0,
            Self::Bottom => usize::MAX,
        }
    }

    fn of(code: KeyCode) -> Option<Scroll> {
        Some(match code {
            KeyCode::Up | KeyCode::Char('k') => Self::Up,
            KeyCode::Down | KeyCode::Char('j') => Self::Down,
            KeyCode::PageUp => Self::PageUp,
            KeyCode::PageDown | KeyCode::Char(' ') => Self::PageDown,
            KeyCode::Home | KeyCode::Char('g') => Self::Top,
            KeyCode::End | KeyCode::Char('G') => Self::Bottom,
            _ => return None,
        })
    }
}

#[derive(PartialEq, Eq)]
enum Key {
    Quit,
    /// The interval passed, or the terminal changed size: draw again.
    Refresh,
    Scroll(Scroll),
}

fn wait_for_keys(interval: Duration) -> std::io::Result<Key> {
    let deadline = Instant::now() + interval;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !event::poll(left)? {
            return Ok(Key::Refresh);
        }
        match event::read()? {
            Event::Key(key) if key.kind != KeyEventKind::Release => {
                let ctrl_c =
                    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                if ctrl_c || matches!(key.code, KeyCode::Char('q' | 'Q') | KeyCode::Esc) {
                    return Ok(Key::Quit);
                }
                if let Some(scroll) = Scroll::of(key.code) {
                    return Ok(Key::Scroll(scroll));
                }
            }
            Event::Resize(..) => return Ok(Key::Refresh),
            _ => {}
        }
    }
}

/// Where a job sorts: moving first, then waiting to move, then done or stopped for good.
fn rank(state: JobState) -> u8 {
    match state {
        JobState::Connecting | JobState::Transferring => 0,
        JobState::Queued | JobState::TransientError | JobState::Suspended => 1,
        JobState::Error | JobState::Transferred | JobState::Acknowledged | JobState::Cancelled => 2,
    }
}

/// One screen: its lines, the first job row it shows (clamped) and how many job rows fit.
#[derive(Debug)]
struct Screen {
    lines: Vec<String>,
    offset: usize,
    page: usize,
}

/// A column of the job table.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Column {
    Name,
    Id,
    State,
    Bar,
    Percent,
    Bytes,
    Rate,
    Waiting,
}

/// Columns in the order they are shown, each with its fixed width (`None`: flexible).
const COLUMNS: [(Column, &str, Option<usize>); 8] = [
    (Column::Name, "NAME", None),
    (Column::Id, "ID", Some(8)),
    (Column::State, "STATE", Some(15)),
    (Column::Bar, "PROGRESS", Some(BAR_CELLS)),
    (Column::Percent, "%", Some(4)),
    (Column::Bytes, "BYTES", Some(23)),
    (Column::Rate, "RATE", Some(12)),
    (Column::Waiting, "WAITING", None),
];
/// Columns shown when there is room, most useful first (NAME, STATE and PROGRESS always are).
const OPTIONAL: [Column; 5] = [
    Column::Percent,
    Column::Waiting,
    Column::Bytes,
    Column::Rate,
    Column::Id,
];
const MIN_NAME: usize = 10;
/// Columns a name may take before the optional columns are placed.
const NAME_CLAIM: usize = 32;
const MIN_WAITING: usize = 12;
const GAP: usize = 2;

/// The lines of one screen: a title, a header, a row per job (moving jobs first, then
/// waiting, then finished), from job `offset` on as many as fit in `rows`, and a last line
/// saying where the rows are when not all fit. Names get whatever width the other columns
/// leave.
fn screen(
    views: &[JobSummary],
    rates: &Rates,
    columns: usize,
    rows: usize,
    offset: usize,
    now: Timestamp,
) -> Screen {
    let mut order: Vec<&JobSummary> = views.iter().collect();
    order.sort_by_key(|view| rank(view.job.state));
    let cells: Vec<[String; 8]> = order
        .iter()
        .map(|view| row_cells(view, rates, now))
        .collect();

    // Names first get up to NAME_CLAIM columns, then the columns that fit are chosen,
    // then names get whatever is left, up to the longest; WAITING gets the rest.
    let fixed = |column: Column| {
        COLUMNS
            .iter()
            .find(|(c, ..)| *c == column)
            .and_then(|c| c.2)
    };
    let longest_name = cells
        .iter()
        .map(|row| human::width(&row[0]))
        .max()
        .unwrap_or(0);
    let essentials = 15 + BAR_CELLS + 2 * GAP;
    let name_claim = longest_name
        .min(NAME_CLAIM)
        .min(columns.saturating_sub(essentials))
        .max(MIN_NAME);
    let mut shown = vec![Column::Name, Column::State, Column::Bar];
    let mut used = name_claim + essentials;
    for column in OPTIONAL {
        let width = fixed(column).unwrap_or(MIN_WAITING) + GAP;
        if used + width <= columns {
            used += width;
            shown.push(column);
        }
    }
    let spare = columns.saturating_sub(used);
    let name_width = name_claim + spare.min(longest_name.saturating_sub(name_claim));
    let spare = spare - (name_width - name_claim);
    let waiting_width = if shown.contains(&Column::Waiting) {
        MIN_WAITING + spare
    } else {
        0
    };
    let render = |row: &[String; 8]| {
        let mut line = String::new();
        for (index, (column, _, width)) in COLUMNS.iter().enumerate() {
            if !shown.contains(column) {
                continue;
            }
            let width = match column {
                Column::Name => name_width,
                Column::Waiting => waiting_width,
                _ => width.unwrap_or(0),
            };
            if !line.is_empty() {
                line.push_str(&" ".repeat(GAP));
            }
            let cell = &row[index];
            if matches!(column, Column::Percent | Column::Rate) {
                let cut = human::fit(cell, width);
                line.push_str(&" ".repeat(width.saturating_sub(human::width(&cut))));
                line.push_str(&cut);
            } else {
                line.push_str(&human::fit_pad(cell, width));
            }
        }
        line.trim_end().to_owned()
    };

    let mut lines = vec![human::fit(
        &format!(
            "qmgr monitor  {}  (q quits)  {}",
            human::plural(
                u64::try_from(views.len()).unwrap_or(u64::MAX),
                "job",
                "jobs"
            ),
            human::rfc3339(now)
        ),
        columns,
    )];
    lines.push(render(&COLUMNS.map(|(_, header, _)| header.to_owned())));
    if views.is_empty() {
        lines.push("(no jobs)".to_owned());
    }
    let room = rows.saturating_sub(lines.len());
    // With more jobs than room, the last line says where the view is.
    let page = if cells.len() > room {
        room.saturating_sub(1)
    } else {
        cells.len()
    };
    let offset = offset.min(cells.len() - page);
    lines.extend(cells.iter().skip(offset).take(page).map(render));
    if page < cells.len() {
        lines.push(human::fit(
            &format!(
                "jobs {}–{} of {}: ↑↓ PgUp PgDn scroll",
                offset + 1,
                offset + page,
                cells.len()
            ),
            columns,
        ));
    }
    Screen {
        lines,
        offset,
        page,
    }
}

/// A job's cells, in the order of [`COLUMNS`].
fn row_cells(view: &JobSummary, rates: &Rates, now: Timestamp) -> [String; 8] {
    let job = &view.job;
    let progress = view.progress;
    let finished = progress.files_total > 0 && progress.files_transferred == progress.files_total;
    let fraction = (progress.bytes_total != SIZE_UNKNOWN)
        .then_some((progress.bytes_transferred, progress.bytes_total));
    let rate = match rates.of(job.id) {
        Some(rate) if job.state.is_active() => format!("{}/s", human::bytes(rate)),
        _ => String::new(),
    };
    let bytes = if progress.files_total == 0 {
        "no files".to_owned()
    } else {
        human::bytes_of(progress.bytes_transferred, progress.bytes_total)
    };
    [
        human::clean(&job.display_name).into_owned(),
        human::short_id(job.id),
        job.state.name().to_owned(),
        format!("[{}]", human::bar(BAR_CELLS - 2, fraction, finished, '#')),
        human::percent_left(progress.bytes_transferred, progress.bytes_total, finished)
            .map(|p| format!("{p}%"))
            .unwrap_or_default(),
        bytes,
        rate,
        human::waiting_short(view.waiting.as_ref(), now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmgr_core::service::WaitReason;
    use qmgr_core::{FileRecord, Job, JobSettings, JobState, JobType};

    fn view(name: &str, state: JobState, done: u64, total: u64) -> JobSummary {
        let mut job = Job::new(
            Guid::new_random(),
            name,
            JobType::Download,
            1000,
            JobSettings::default(),
            Timestamp(0),
        )
        .unwrap();
        job.state = state;
        let mut file = FileRecord::new("http://h/f", "/tmp/f");
        file.bytes_total = total;
        file.bytes_transferred = done;
        job.files.push(file);
        summary_of(job, state)
    }

    /// What the service sends of `job`: its totals, no file list.
    fn summary_of(mut job: Job, state: JobState) -> JobSummary {
        let progress = job.progress();
        job.files.clear();
        JobSummary {
            job,
            progress,
            active_files: Vec::new(),
            waiting: (state == JobState::Suspended).then_some(WaitReason::Suspended),
            attempts: Vec::new(),
            idle: None,
        }
    }

    fn empty(name: &str) -> JobSummary {
        let mut empty = view(name, JobState::Suspended, 0, 0);
        empty.progress = Job::new(
            Guid::new_random(),
            name,
            JobType::Download,
            1000,
            JobSettings::default(),
            Timestamp(0),
        )
        .unwrap()
        .progress();
        empty
    }

    /// Every line fits `columns` terminal columns.
    #[track_caller]
    fn fits(lines: &[String], columns: usize) {
        for line in lines {
            assert!(
                human::width(line) <= columns,
                "{line:?} is wider than {columns}"
            );
        }
    }

    #[test]
    fn the_screen_shows_names_states_and_progress() {
        let views = [
            view("nightly backup", JobState::Transferring, 512, 1024),
            view("iso", JobState::Suspended, 0, 4096),
        ];
        let lines = screen(&views, &Rates::default(), 120, 30, 0, Timestamp(0)).lines;
        assert!(lines[0].contains("2 jobs"), "{lines:?}");
        assert!(lines[1].starts_with("NAME"), "{lines:?}");
        assert!(lines[2].contains("nightly backup"), "{lines:?}");
        assert!(lines[2].contains("TRANSFERRING"), "{lines:?}");
        assert!(lines[2].contains("50%"), "{lines:?}");
        assert!(lines[2].contains("[#####     ]"), "{lines:?}");
        assert!(lines[3].contains("SUSPENDED"), "{lines:?}");
        assert!(lines[3].contains("suspended"), "{lines:?}");
        fits(&lines, 120);
        let one = screen(&views[..1], &Rates::default(), 120, 30, 0, Timestamp(0)).lines;
        assert!(one[0].contains("1 job "), "{one:?}");
    }

    #[test]
    fn active_jobs_come_first_then_waiting_then_finished() {
        let views = [
            view("done-job", JobState::Transferred, 10, 10),
            view("failed-job", JobState::Error, 1, 10),
            view("resting-job", JobState::Suspended, 0, 10),
            view("moving-job", JobState::Transferring, 5, 10),
            view("queued-job", JobState::Queued, 0, 10),
            view("connecting-job", JobState::Connecting, 0, 10),
        ];
        let lines = screen(&views, &Rates::default(), 100, 30, 0, Timestamp(0)).lines;
        let names: Vec<&str> = lines[2..]
            .iter()
            .map(|line| line.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "moving-job",
                "connecting-job",
                "resting-job",
                "queued-job",
                "done-job",
                "failed-job"
            ]
        );
    }

    #[test]
    fn rows_that_do_not_fit_scroll() {
        let views: Vec<JobSummary> = (0..10)
            .map(|i| view(&format!("job {i}"), JobState::Queued, 0, 10))
            .collect();
        let drawn = screen(&views, &Rates::default(), 100, 6, 0, Timestamp(0));
        assert_eq!(drawn.lines.len(), 6, "{:?}", drawn.lines);
        assert_eq!(drawn.page, 3);
        assert!(drawn.lines[2].starts_with("job 0"), "{:?}", drawn.lines);
        assert!(
            drawn.lines[5].contains("jobs 1–3 of 10"),
            "{:?}",
            drawn.lines
        );
        assert!(drawn.lines[5].contains("PgDn"), "{:?}", drawn.lines);
        assert!(!drawn.lines.concat().contains("taller"));

        // A page down shows the next rows; scrolling past the end stops at the last page.
        let offset = Scroll::PageDown.apply(drawn.offset, drawn.page);
        let drawn = screen(&views, &Rates::default(), 100, 6, offset, Timestamp(0));
        assert!(drawn.lines[2].starts_with("job 3"), "{:?}", drawn.lines);
        assert!(
            drawn.lines[5].contains("jobs 4–6 of 10"),
            "{:?}",
            drawn.lines
        );
        let offset = Scroll::Bottom.apply(drawn.offset, drawn.page);
        let drawn = screen(&views, &Rates::default(), 100, 6, offset, Timestamp(0));
        assert_eq!(drawn.offset, 7);
        assert!(drawn.lines[4].starts_with("job 9"), "{:?}", drawn.lines);
        let offset = Scroll::Up.apply(drawn.offset, drawn.page);
        let drawn = screen(&views, &Rates::default(), 100, 6, offset, Timestamp(0));
        assert!(drawn.lines[2].starts_with("job 6"), "{:?}", drawn.lines);
        let offset = Scroll::PageUp.apply(Scroll::PageUp.apply(offset, 3), 3);
        assert_eq!(offset, 0);
        assert_eq!(Scroll::of(KeyCode::PageDown), Some(Scroll::PageDown));
        assert_eq!(Scroll::of(KeyCode::Up), Some(Scroll::Up));
    }

    #[test]
    fn names_get_the_width_the_window_allows() {
        let long = "a rather long display name that tells what the job downloads";
        let views = [view(long, JobState::Transferring, 5, 10)];
        let wide = screen(&views, &Rates::default(), 200, 10, 0, Timestamp(0)).lines;
        assert!(wide[2].starts_with(long), "{wide:?}");
        fits(&wide, 200);
        let narrow = screen(&views, &Rates::default(), 50, 10, 0, Timestamp(0)).lines;
        fits(&narrow, 50);
        assert!(narrow[2].starts_with("a rather"), "{narrow:?}");
        assert!(narrow[2].contains("TRANSFERRING"), "{narrow:?}");
        assert!(narrow[2].contains("[####"), "{narrow:?}");
    }

    #[test]
    fn empty_jobs_and_unknown_sizes_are_not_full_bars() {
        let views = [
            empty("empty-job"),
            view("unknown-size", JobState::Transferring, 500, SIZE_UNKNOWN),
            view("all-bytes-file-open", JobState::Transferring, 10, 10),
        ];
        let lines = screen(&views, &Rates::default(), 120, 10, 0, Timestamp(0)).lines;
        let line = |name: &str| lines.iter().find(|l| l.starts_with(name)).unwrap().clone();
        assert!(line("empty-job").contains("[          ]"), "{lines:?}");
        assert!(line("empty-job").contains("no files"), "{lines:?}");
        assert!(!line("empty-job").contains("100%"), "{lines:?}");
        assert!(line("unknown-size").contains("[?         ]"), "{lines:?}");
        assert!(
            line("all-bytes-file-open").contains("[######### ]"),
            "{lines:?}"
        );
        assert!(line("all-bytes-file-open").contains("99%"), "{lines:?}");
        for line in &lines {
            assert!(!line.contains("##########"), "{line}");
        }
    }

    #[test]
    fn names_are_escaped() {
        let views = [view("evil\u{1b}]0;x\u{7}\nname", JobState::Queued, 0, 1)];
        let lines = screen(&views, &Rates::default(), 120, 10, 0, Timestamp(0)).lines;
        assert!(
            lines[2].starts_with(r"evil\u{1b}]0;x\u{7}\nname"),
            "{lines:?}"
        );
        assert!(!lines.concat().contains('\u{1b}'));
    }
}
