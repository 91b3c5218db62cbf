//! `qmgr monitor`: every job at a glance, refreshed. On a terminal it is a full-screen view
//! in plain ANSI (alternate screen, no mouse, so it works over SSH) that quits on q, Esc or
//! Ctrl-C; otherwise it prints one snapshot per interval.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::style::{Attribute, Print, SetAttribute};
use crossterm::terminal::{self, ClearType};
use crossterm::{cursor, execute, queue};
use qmgr_core::service::{JobView, QueueServiceExt};
use qmgr_core::{Guid, Timestamp};
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
    fn record(&mut self, views: &[JobView], at: Instant) {
        self.meters
            .retain(|id, _| views.iter().any(|view| view.job.id == *id));
        for view in views {
            self.meters
                .entry(view.job.id)
                .or_default()
                .record(at, view.job.progress().bytes_transferred);
        }
    }

    fn of(&self, id: Guid) -> Option<u64> {
        self.meters.get(&id).and_then(RateMeter::per_second)
    }
}

/// A snapshot of the queue, or why there is none.
fn look(client: &Client, rates: &mut Rates) -> Result<Vec<JobView>, String> {
    let views = client
        .jobs(false)
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
            Ok(views) => screen(&views, &rates, PLAIN_WIDTH, usize::MAX, now),
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
    loop {
        let (columns, rows) = terminal::size().unwrap_or((80, 24));
        let now = Timestamp::now();
        let lines = match look(client, &mut rates) {
            Ok(views) => screen(&views, &rates, usize::from(columns), usize::from(rows), now),
            Err(error) => vec![format!("qmgr monitor: {error}"), "q quits".to_owned()],
        };
        draw(&lines, usize::from(columns)).map_err(terminal_error)?;
        shown += 1;
        if count.is_some_and(|count| shown >= count) {
            return Ok(());
        }
        if wait_for_keys(interval).map_err(terminal_error)? == Key::Quit {
            return Ok(());
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

#[derive(PartialEq, Eq)]
enum Key {
    Quit,
    /// The interval passed, or the terminal changed size: draw again.
    Refresh,
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
            }
            Event::Resize(..) => return Ok(Key::Refresh),
            _ => {}
        }
    }
}

/// The lines of one screen: a title, a header, a row per job (as many as fit in `rows`).
fn screen(
    views: &[JobView],
    rates: &Rates,
    columns: usize,
    rows: usize,
    now: Timestamp,
) -> Vec<String> {
    let mut lines = vec![format!(
        "qmgr monitor  {} job{}  {}  (q quits)",
        views.len(),
        if views.len() == 1 { "" } else { "s" },
        human::rfc3339(now)
    )];
    let fixed = 8 + 15 + BAR_CELLS + 4 + 21 + 11 + 7 * 2;
    let flexible = columns.saturating_sub(fixed).max(20);
    let name_width = (flexible / 2).clamp(10, 40);
    let why_width = flexible.saturating_sub(name_width).max(10);
    let row = |cells: [&str; 8]| {
        format!(
            "{:<name_width$}  {:<8}  {:<15}  {:<BAR_CELLS$}  {:>4}  {:<21}  {:>11}  {}",
            human::fit(cells[0], name_width),
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            cells[5],
            cells[6],
            human::fit(cells[7], why_width)
        )
    };
    lines.push(row([
        "NAME", "ID", "STATE", "PROGRESS", "%", "BYTES", "RATE", "WAITING",
    ]));
    if views.is_empty() {
        lines.push("(no jobs)".to_owned());
    }
    let room = rows.saturating_sub(lines.len() + 1);
    for view in views.iter().take(if views.len() > room + 1 {
        room
    } else {
        room + 1
    }) {
        let job = &view.job;
        let progress = job.progress();
        let percent = human::percent(progress.bytes_transferred, progress.bytes_total);
        let rate = match rates.of(job.id) {
            Some(rate) if job.state.is_active() => format!("{}/s", human::bytes(rate)),
            _ => String::new(),
        };
        lines.push(row([
            &job.display_name,
            &human::short_id(job.id),
            job.state.name(),
            &bar(percent),
            &percent.map(|p| format!("{p}%")).unwrap_or_default(),
            &human::bytes_of(progress.bytes_transferred, progress.bytes_total),
            &rate,
            &human::waiting_short(view.waiting.as_ref(), now),
        ]));
    }
    let hidden = views.len().saturating_sub(lines.len() - 2);
    if hidden > 0 && rows != usize::MAX {
        lines.push(format!("… and {hidden} more (make the window taller)"));
    }
    lines
}

/// `[#####     ]`, or `[?         ]` while the size is unknown.
fn bar(percent: Option<u64>) -> String {
    let inner = BAR_CELLS - 2;
    match percent {
        Some(percent) => {
            let filled = usize::try_from(percent.min(100)).unwrap_or(100) * inner / 100;
            format!("[{}{}]", "#".repeat(filled), " ".repeat(inner - filled))
        }
        None => format!("[?{}]", " ".repeat(inner - 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmgr_core::service::WaitReason;
    use qmgr_core::{FileRecord, Job, JobSettings, JobState, JobType};

    fn view(name: &str, state: JobState, done: u64, total: u64) -> JobView {
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
        JobView {
            job,
            waiting: (state == JobState::Suspended).then_some(WaitReason::Suspended),
            attempts: Vec::new(),
        }
    }

    #[test]
    fn bars_fill_with_progress() {
        assert_eq!(bar(Some(0)), "[          ]");
        assert_eq!(bar(Some(50)), "[#####     ]");
        assert_eq!(bar(Some(100)), "[##########]");
        assert_eq!(bar(None), "[?         ]");
    }

    #[test]
    fn the_screen_shows_names_states_and_progress() {
        let views = [
            view("nightly backup", JobState::Transferring, 512, 1024),
            view("iso", JobState::Suspended, 0, 4096),
        ];
        let lines = screen(&views, &Rates::default(), 120, 30, Timestamp(0));
        assert!(lines[0].contains("2 jobs"), "{lines:?}");
        assert!(lines[1].starts_with("NAME"), "{lines:?}");
        assert!(lines[2].contains("nightly backup"), "{lines:?}");
        assert!(lines[2].contains("TRANSFERRING"), "{lines:?}");
        assert!(lines[2].contains("50%"), "{lines:?}");
        assert!(lines[3].contains("SUSPENDED"), "{lines:?}");
        assert!(lines[3].contains("suspended"), "{lines:?}");
    }

    #[test]
    fn rows_that_do_not_fit_are_counted() {
        let views: Vec<JobView> = (0..10)
            .map(|i| view(&format!("job {i}"), JobState::Queued, 0, 10))
            .collect();
        let lines = screen(&views, &Rates::default(), 100, 6, Timestamp(0));
        assert_eq!(lines.len(), 6, "{lines:?}");
        assert!(lines[5].contains("7 more"), "{lines:?}");
    }
}
