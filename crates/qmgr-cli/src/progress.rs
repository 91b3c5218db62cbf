//! What `qmgr transfer` shows while it waits: a bar per file and a total when stderr is a
//! terminal, plain lines at intervals when it is not, or nothing. The terminal display is
//! drawn from [`render`], a pure function of the progress, the smoothed rates and the
//! terminal's size, so what it shows is tested without a terminal or a clock.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use std::io::Write;

use crossterm::style::Print;
use crossterm::terminal::{Clear, ClearType};
use crossterm::{cursor, queue};

use crate::human;
use crate::rate::RateMeter;

/// More files than this and finished files leave the display, so it stays short.
const BARS_KEPT_WHEN_DONE: usize = 10;
/// How often plain-line mode prints the total.
const LINE_INTERVAL: Duration = Duration::from_secs(1);
/// The widest a bar gets, brackets excluded.
const MAX_BAR: usize = 40;
/// Below this many cells a bar says nothing: it is left out.
const MIN_BAR: usize = 5;
/// Cells a bar keeps when long names compete for a narrow terminal.
const GOOD_BAR: usize = 10;
/// Terminal widths from which each file's line shows its rate.
const FILE_RATE_FROM: usize = 80;
const RATE_CELLS: usize = 12;
/// One file's progress as of the last look.
#[derive(Clone, Debug)]
pub struct FileState {
    /// The destination's file name.
    pub name: String,
    /// Destination path, for plain-line mode.
    pub path: String,
    pub total: Option<u64>,
    pub done: u64,
    pub completed: bool,
}

impl FileState {
    fn started(&self) -> bool {
        self.completed || self.done > 0
    }
}

/// The whole transfer as of the last look.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every file, in a fixed order (the index is the file's identity for its rate).
    pub files: Vec<FileState>,
    /// What holds the transfer up, if anything ("retrying in 8s after …").
    pub status: Option<String>,
    /// The reason behind `status`, as the service gave it. Plain lines print the status
    /// when this changes, not each time its countdown ticks.
    pub waiting: Option<qmgr_core::service::WaitReason>,
    /// The totals when the service counted them; `None`: summed from `files`.
    pub totals: Option<Totals>,
}

/// What the total line shows: files completed of all, bytes in and expected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub files_completed: usize,
    /// Bytes arrived.
    pub done: u64,
    /// Bytes expected in all: known sizes, plus what arrived of files of unknown size.
    pub expected: u64,
    /// Some file not completed has no known size yet.
    pub size_unknown: bool,
}

impl Snapshot {
    fn totals(&self) -> Totals {
        self.totals.unwrap_or_else(|| Totals {
            files_completed: self.files.iter().filter(|f| f.completed).count(),
            done: self.files.iter().map(|f| f.done).sum(),
            expected: self.files.iter().map(|f| f.total.unwrap_or(f.done)).sum(),
            size_unknown: self.files.iter().any(|f| f.total.is_none() && !f.completed),
        })
    }

    pub fn done(&self) -> u64 {
        self.totals().done
    }

    fn expected(&self) -> u64 {
        self.totals().expected
    }

    fn size_unknown(&self) -> bool {
        self.totals().size_unknown
    }

    pub fn files_completed(&self) -> usize {
        self.totals().files_completed
    }
}

/// Transfer rates as of the last look, smoothed (see [`RateMeter`]): the total's and each
/// file's, `None` until known.
#[derive(Debug, Default)]
pub struct Rates {
    total: RateMeter,
    files: Vec<RateMeter>,
}

impl Rates {
    /// Records the byte counts of `snapshot`, taken at `at`.
    pub fn record(&mut self, snapshot: &Snapshot, at: Instant) {
        self.total.record(at, snapshot.done());
        self.files
            .resize_with(snapshot.files.len().max(self.files.len()), RateMeter::new);
        for (meter, file) in self.files.iter_mut().zip(&snapshot.files) {
            if file.started() && !file.completed {
                meter.record(at, file.done);
            }
        }
    }

    fn total(&self) -> Option<u64> {
        self.total.per_second()
    }

    fn file(&self, index: usize) -> Option<u64> {
        self.files.get(index).and_then(RateMeter::per_second)
    }
}

/// The terminal display of a transfer: a line per file worth showing (those moving first
/// when not all fit), then the total and a line of rate, ETA and time, then what holds
/// the transfer up. Every line fits `columns`; at most `rows - 1` lines, so the display
/// never scrolls the terminal. A bar is full only for a finished file or transfer; with
/// sizes unknown the total's bar counts files, and the ETA is "unknown".
pub fn render(
    snapshot: &Snapshot,
    rates: &Rates,
    elapsed: Duration,
    columns: usize,
    rows: usize,
) -> Vec<String> {
    let columns = columns.max(1);
    let files_total = snapshot.files.len();
    let completed = snapshot.files_completed();
    let finished = files_total > 0 && completed == files_total;
    let unknown = snapshot.size_unknown();
    let done = snapshot.done();
    let expected = snapshot.expected();

    // The total's lines.
    let total_name = format!("total {completed}/{files_total}");
    let total_bytes = if unknown {
        format!("{}/?", human::bytes(done))
    } else {
        format!("{}/{}", human::bytes(done), human::bytes(expected))
    };
    let total_fraction = if unknown {
        Some((completed as u64, files_total as u64))
    } else {
        Some((done, expected))
    };
    let rate = rates.total();
    let eta = match rate {
        Some(rate) if !unknown && rate > 0 && expected > done => {
            human::duration(Duration::from_secs((expected - done).div_ceil(rate)))
        }
        _ if finished => "0s".to_owned(),
        _ => "unknown".to_owned(),
    };
    let mut summary = match rate {
        Some(rate) => format!("{}/s", human::bytes(rate)),
        None => "-- B/s".to_owned(),
    };
    let _ = write!(
        summary,
        "  ETA {eta}  {} elapsed",
        human::duration(Duration::from_secs(elapsed.as_secs()))
    );
    let mut status = Vec::new();
    if unknown {
        status.push("some sizes unknown".to_owned());
    }
    if let Some(text) = &snapshot.status {
        status.push(text.clone());
    }

    // Which files get a line: started ones, finished ones only while there are few; the
    // moving ones first when they do not all fit.
    let few = files_total <= BARS_KEPT_WHEN_DONE;
    let mut shown: Vec<usize> = (0..files_total)
        .filter(|&i| {
            let file = &snapshot.files[i];
            file.started() && (few || !file.completed)
        })
        .collect();
    let fixed_lines = 2 + usize::from(!status.is_empty());
    let room = rows.saturating_sub(1 + fixed_lines);
    let mut hidden = 0;
    if shown.len() > room {
        shown.sort_by_key(|&i| snapshot.files[i].completed);
        let keep = room.saturating_sub(1);
        hidden = shown.len() - keep;
        shown.truncate(keep);
        shown.sort_unstable();
    }

    // Column widths shared by the file lines and the total's line.
    let byte_text = |file: &FileState| match file.total {
        Some(total) => format!("{}/{}", human::bytes(file.done), human::bytes(total)),
        None => format!("{}/?", human::bytes(file.done)),
    };
    let bytes_width = shown
        .iter()
        .map(|&i| human::width(&byte_text(&snapshot.files[i])))
        .chain([human::width(&total_bytes)])
        .max()
        .unwrap_or(0);
    let rate_width = if columns >= FILE_RATE_FROM {
        RATE_CELLS
    } else {
        0
    };
    let longest_name = shown
        .iter()
        .map(|&i| human::width(&snapshot.files[i].name))
        .chain([human::width(&total_name)])
        .max()
        .unwrap_or(0);
    // Name, bar and bytes separated by a space; the bar keeps at least GOOD_BAR cells when
    // the name can give them up.
    let rate_cells = if rate_width > 0 { rate_width + 1 } else { 0 };
    let after_name = |bar: usize| 1 + bar + 2 + 1 + bytes_width + rate_cells;
    let name_width = longest_name
        .min(columns.saturating_sub(after_name(GOOD_BAR)))
        .max(human::width(&total_name).min(columns));
    let bar_width = columns
        .saturating_sub(name_width + after_name(0))
        .min(MAX_BAR);
    let line = |name: &str, bar: Option<String>, bytes: &str, rate: Option<u64>| {
        let mut text = human::fit_pad(name, name_width);
        if bar_width >= MIN_BAR {
            let _ = write!(text, " [{}]", bar.unwrap_or_else(|| " ".repeat(bar_width)));
        }
        let _ = write!(text, " {bytes:>bytes_width$}");
        if rate_width > 0 {
            let rate = rate
                .map(|r| format!("{}/s", human::bytes(r)))
                .unwrap_or_default();
            let _ = write!(text, " {rate:>rate_width$}");
        }
        human::fit(text.trim_end(), columns)
    };

    let mut lines = Vec::new();
    for &index in &shown {
        let file = &snapshot.files[index];
        let fraction = file.total.map(|total| (file.done, total));
        let bar = human::bar(bar_width, fraction, file.completed, '=');
        if file.completed {
            let size = match file.total {
                Some(_) => format!("done {}", human::bytes(file.done)),
                None => "done".to_owned(),
            };
            lines.push(line(&file.name, Some(bar), &size, None));
        } else {
            lines.push(line(
                &file.name,
                Some(bar),
                &byte_text(file),
                rates.file(index),
            ));
        }
    }
    if hidden > 0 {
        lines.push(human::fit(
            &format!(
                "… {} not shown",
                human::plural(hidden as u64, "more file", "more files")
            ),
            columns,
        ));
    }
    let total_bar = human::bar(bar_width, total_fraction, finished, '=');
    lines.push(line(&total_name, Some(total_bar), &total_bytes, None));
    lines.push(human::fit(&summary, columns));
    if !status.is_empty() {
        lines.push(human::fit(&status.join("; "), columns));
    }
    // A terminal too short for even the total: its last lines are what matter.
    let keep = rows.saturating_sub(1).max(1);
    if lines.len() > keep {
        lines.drain(..lines.len() - keep);
    }
    lines
}

/// How progress is shown.
pub enum Progress {
    Bars(Box<Bars>),
    Lines(Lines),
    Quiet,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bars(_) => "Progress::Bars",
            Self::Lines(_) => "Progress::Lines",
            Self::Quiet => "Progress::Quiet",
        })
    }
}

impl Progress {
    /// Bars on a terminal, lines elsewhere, nothing when `quiet`.
    pub fn choose(quiet: bool, files: usize) -> Progress {
        if quiet {
            Progress::Quiet
        } else if std::io::stderr().is_terminal() {
            Progress::Bars(Box::new(Bars::new()))
        } else {
            Progress::Lines(Lines::new(files))
        }
    }

    pub fn update(&mut self, snapshot: &Snapshot) {
        match self {
            Self::Bars(bars) => bars.update(snapshot),
            Self::Lines(lines) => lines.update(snapshot),
            Self::Quiet => {}
        }
    }

    /// A message that must not be lost between redraws.
    pub fn note(&mut self, text: &str) {
        let text = &*human::clean_lines(text);
        match self {
            Self::Bars(bars) => bars.note(text),
            Self::Lines(_) | Self::Quiet => eprintln!("{text}"),
        }
    }

    /// Ends the display, leaving the last state on screen.
    pub fn finish(&mut self, snapshot: &Snapshot) {
        match self {
            Self::Bars(bars) => bars.finish(snapshot),
            Self::Lines(lines) => lines.finish(snapshot),
            Self::Quiet => {}
        }
    }

    /// Ends the display after Ctrl-C: the bars are erased (the terminal's `^C` with them),
    /// so what qmgr says next starts on a clean line.
    pub fn interrupt(&mut self) {
        match self {
            Self::Bars(bars) => bars.clear(),
            // Whole lines only: nothing to take back.
            Self::Lines(_) | Self::Quiet => {}
        }
    }
}

/// The terminal display: the rendered lines, redrawn in place at most 10 times a second.
///
/// Each line ends with a line break, so the cursor waits at the start of the spare line
/// below the display: what the terminal echoes there (`^C`) stays on that line, and the
/// next redraw or the final clear, which go up exactly the lines drawn, take it away too.
/// (A cursor parked at the end of the last line, as indicatif leaves it, is pushed onto a
/// new line by the echo, and the clear then misses the top line.)
pub struct Bars {
    rates: Rates,
    started: Instant,
    /// Lines on screen now, counted from the cursor's line upwards.
    drawn: usize,
    last_draw: Option<Instant>,
    lines: Vec<String>,
}

/// The shortest time between two redraws.
const REDRAW: Duration = Duration::from_millis(100);

impl Bars {
    fn new() -> Bars {
        Bars {
            rates: Rates::default(),
            started: Instant::now(),
            drawn: 0,
            last_draw: None,
            lines: Vec::new(),
        }
    }

    fn update(&mut self, snapshot: &Snapshot) {
        let now = Instant::now();
        self.rates.record(snapshot, now);
        // The terminal's size now: it may have changed since the last look. The last column
        // stays free, as some terminals wrap as soon as it is written.
        let (columns, rows) = crossterm::terminal::size().unwrap_or((80, 24));
        self.lines = render(
            snapshot,
            &self.rates,
            now.duration_since(self.started),
            usize::from(columns).saturating_sub(1),
            usize::from(rows),
        );
        if self
            .last_draw
            .is_none_or(|last| now.duration_since(last) >= REDRAW)
        {
            self.last_draw = Some(now);
            self.draw(None);
        }
    }

    /// Redraws the display, with `note` printed above it for good.
    fn draw(&mut self, note: Option<&str>) {
        let mut out = std::io::stderr().lock();
        let _ = self.paint(&mut out, note);
    }

    fn paint(&mut self, out: &mut impl Write, note: Option<&str>) -> std::io::Result<()> {
        self.rewind(out)?;
        if let Some(note) = note {
            for line in note.lines() {
                queue!(
                    out,
                    Print(line),
                    Clear(ClearType::UntilNewLine),
                    Print("\r\n")
                )?;
            }
        }
        for line in &self.lines {
            queue!(
                out,
                Print(line),
                Clear(ClearType::UntilNewLine),
                Print("\r\n")
            )?;
        }
        queue!(out, Clear(ClearType::FromCursorDown))?;
        self.drawn = self.lines.len();
        out.flush()
    }

    /// Moves the cursor to the start of the display's first line.
    fn rewind(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        if let Ok(up) = u16::try_from(self.drawn)
            && up > 0
        {
            queue!(out, cursor::MoveUp(up))?;
        }
        queue!(out, Print("\r"))?;
        self.drawn = 0;
        Ok(())
    }

    fn note(&mut self, text: &str) {
        self.draw(Some(text));
    }

    fn finish(&mut self, snapshot: &Snapshot) {
        self.last_draw = None;
        self.update(snapshot);
    }

    /// Erases the display, leaving the cursor where its first line was.
    fn clear(&mut self) {
        let mut out = std::io::stderr().lock();
        let _ = self
            .rewind(&mut out)
            .and_then(|()| queue!(out, Clear(ClearType::FromCursorDown)))
            .and_then(|()| out.flush());
    }
}

/// Plain lines for a log: each file as it finishes, the status when it changes, and the
/// total at most every [`LINE_INTERVAL`] when it changed. A transfer that waits an hour for
/// its retry writes a line when it starts waiting, not one a second.
pub struct Lines {
    last_line: Option<Instant>,
    last_summary: Option<String>,
    last_waiting: Option<qmgr_core::service::WaitReason>,
    reported: Vec<bool>,
    rate: RateMeter,
}

impl Lines {
    fn new(files: usize) -> Lines {
        Lines {
            last_line: None,
            last_summary: None,
            last_waiting: None,
            reported: vec![false; files],
            rate: RateMeter::new(),
        }
    }

    fn update(&mut self, snapshot: &Snapshot) {
        for line in self.lines(snapshot, Instant::now()) {
            eprintln!("qmgr: {line}");
        }
    }

    /// What to print for `snapshot`, seen at `now`.
    fn lines(&mut self, snapshot: &Snapshot, now: Instant) -> Vec<String> {
        let mut lines = Vec::new();
        self.rate.record(now, snapshot.done());
        for (reported, file) in self.reported.iter_mut().zip(&snapshot.files) {
            if file.completed && !*reported {
                *reported = true;
                // A file that finished between two looks has no size known here yet.
                lines.push(match file.total {
                    Some(_) => format!("transferred {} ({})", file.path, human::bytes(file.done)),
                    None => format!("transferred {}", file.path),
                });
            }
        }
        if snapshot.waiting != self.last_waiting {
            if let Some(status) = &snapshot.status {
                lines.push(status.clone());
            }
            self.last_waiting.clone_from(&snapshot.waiting);
        }
        if self
            .last_line
            .is_none_or(|last| now.duration_since(last) >= LINE_INTERVAL)
        {
            let summary = self.summary(snapshot);
            if self.last_summary.as_ref() != Some(&summary) {
                self.last_line = Some(now);
                lines.push(summary.clone());
                self.last_summary = Some(summary);
            }
        }
        lines
    }

    fn summary(&self, snapshot: &Snapshot) -> String {
        let done = snapshot.done();
        let mut line = format!(
            "{}/{}, {}",
            snapshot.files_completed(),
            human::plural(snapshot.files.len() as u64, "file", "files"),
            human::bytes(done)
        );
        if snapshot.size_unknown() {
            line.push_str(" of ?");
        } else {
            let expected = snapshot.expected();
            let finished = snapshot.files_completed() == snapshot.files.len();
            let _ = write!(line, " of {}", human::bytes(expected));
            if let Some(percent) = human::percent_left(done, expected, finished) {
                let _ = write!(line, " ({percent}%)");
            }
        }
        if let Some(rate) = self.rate.per_second() {
            let _ = write!(line, ", {}/s", human::bytes(rate));
            if !snapshot.size_unknown()
                && rate > 0
                && let Some(left) = snapshot.expected().checked_sub(done)
                && left > 0
            {
                let _ = write!(
                    line,
                    ", ETA {}",
                    human::duration(Duration::from_secs(left.div_ceil(rate)))
                );
            } else if snapshot.files_completed() < snapshot.files.len() {
                line.push_str(", ETA unknown");
            }
        }
        line
    }

    fn finish(&mut self, snapshot: &Snapshot) {
        self.last_line = None;
        self.last_summary = None;
        self.update(snapshot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;

    fn file(name: &str, total: Option<u64>, done: u64, completed: bool) -> FileState {
        FileState {
            name: name.to_owned(),
            path: format!("/d/{name}"),
            total,
            done,
            completed,
        }
    }

    fn snapshot(files: Vec<FileState>) -> Snapshot {
        Snapshot {
            files,
            status: None,
            waiting: None,
            totals: None,
        }
    }

    #[test]
    fn plain_lines_say_a_wait_once_and_a_total_only_when_it_moved() {
        use qmgr_core::service::WaitReason;
        let mut lines = Lines::new(1);
        let start = Instant::now();
        let mut state = snapshot(vec![file("a", Some(MIB), 0, false)]);
        state.waiting = Some(WaitReason::RetryAt {
            at: qmgr_core::Timestamp(1_000),
            server_asked: false,
        });
        let mut printed = Vec::new();
        // A minute of looks, a second apart, while the countdown ticks.
        for second in 0..60 {
            state.status = Some(format!("retrying in {} seconds", 60 - second));
            printed.extend(lines.lines(&state, start + Duration::from_secs(second)));
        }
        assert_eq!(
            printed
                .iter()
                .filter(|line| line.starts_with("retrying"))
                .count(),
            1,
            "{printed:#?}"
        );
        // The total: once, and once more when its rate became known; never the same again.
        let totals: Vec<&String> = printed
            .iter()
            .filter(|line| line.starts_with("0/1"))
            .collect();
        assert_eq!(totals.len(), 2, "{printed:#?}");
        assert_ne!(totals[0], totals[1]);
        // The next retry is news; so are bytes that arrive, at most once a second.
        state.waiting = Some(WaitReason::RetryAt {
            at: qmgr_core::Timestamp(2_000),
            server_asked: false,
        });
        state.files[0].done = KIB;
        let next = lines.lines(&state, start + Duration::from_secs(61));
        assert_eq!(next.len(), 2, "{next:#?}");
        state.files[0].done = 2 * KIB;
        assert!(
            lines
                .lines(&state, start + Duration::from_millis(61_500))
                .is_empty()
        );
        assert_eq!(
            lines.lines(&state, start + Duration::from_secs(62)).len(),
            1
        );
        // A finished file is said at once.
        state.files[0].done = MIB;
        state.files[0].completed = true;
        let done = lines.lines(&state, start + Duration::from_millis(62_100));
        assert_eq!(
            done,
            vec![format!("transferred /d/a ({})", human::bytes(MIB))]
        );
    }

    /// Every line fits; no line has a full bar unless `full_allowed` says so.
    #[track_caller]
    fn check(lines: &[String], columns: usize, rows: usize) {
        assert!(
            lines.len() < rows,
            "{} lines for {rows} rows: {lines:#?}",
            lines.len()
        );
        for line in lines {
            assert!(
                human::width(line) <= columns,
                "{line:?} is wider than {columns} columns"
            );
        }
    }

    fn total_line(lines: &[String]) -> &str {
        lines
            .iter()
            .find(|line| line.starts_with("total"))
            .expect("a total line")
    }

    /// The inside of the first bar on `line`.
    fn bar_of(line: &str) -> &str {
        let start = line.find('[').expect("a bar") + 1;
        let end = start + line[start..].find(']').unwrap();
        &line[start..end]
    }

    fn full(bar: &str) -> bool {
        !bar.is_empty() && bar.chars().all(|c| c == '=')
    }

    #[test]
    fn a_file_of_unknown_size_never_makes_the_total_full() {
        // One file done, one of unknown size still arriving: the bytes so far are all the
        // bytes known, which used to draw a full total bar.
        let state = snapshot(vec![
            file("known.iso", Some(4 * MIB), 4 * MIB, true),
            file("stream.bin", None, 3 * MIB, false),
            file("later.bin", None, 0, false),
        ]);
        let lines = render(&state, &Rates::default(), Duration::from_secs(3), 50, 20);
        check(&lines, 50, 20);
        let total = total_line(&lines);
        assert!(!full(bar_of(total)), "{lines:#?}");
        assert!(total.contains("total 1/3"), "{total}");
        assert!(total.contains("7.00 MiB/?"), "{total}");
        assert!(
            lines.iter().any(|l| l.contains("ETA unknown")),
            "{lines:#?}"
        );
        assert!(!lines.iter().any(|l| l.contains("ETA 0s")), "{lines:#?}");
        assert!(
            lines.iter().any(|l| l.contains("some sizes unknown")),
            "{lines:#?}"
        );
        // The file of unknown size has a `?` bar, not a full one.
        let stream = lines.iter().find(|l| l.starts_with("stream.bin")).unwrap();
        assert!(bar_of(stream).starts_with('?'), "{stream}");
    }

    #[test]
    fn all_bytes_in_but_files_open_is_not_full() {
        let state = snapshot(vec![
            file("a", Some(MIB), MIB, true),
            file("b", Some(MIB), MIB, false),
            file("empty", Some(0), 0, false),
        ]);
        let lines = render(&state, &Rates::default(), Duration::ZERO, 50, 20);
        check(&lines, 50, 20);
        assert!(!full(bar_of(total_line(&lines))), "{lines:#?}");
        assert!(
            lines.iter().any(|l| l.contains("ETA unknown")),
            "{lines:#?}"
        );

        // Once every file is done the bars are full.
        let state = snapshot(vec![
            file("a", Some(MIB), MIB, true),
            file("b", None, 5, true),
        ]);
        let lines = render(&state, &Rates::default(), Duration::ZERO, 50, 20);
        assert!(full(bar_of(total_line(&lines))), "{lines:#?}");
    }

    #[test]
    fn lines_fit_a_narrow_terminal() {
        let long = "a-very-long-file-name-that-would-never-fit-in-fifty-columns.tar.gz";
        let mut state = snapshot(vec![
            file(long, Some(1023 * MIB), 512 * MIB, false),
            file("日本語のファイル名です.bin", Some(10 * KIB), 5 * KIB, false),
            file("small", None, 100, false),
        ]);
        state.status = Some(
            "retrying in 8 minutes (2026-12-03T12:00:00Z) after a transient error; the server \
             asked to wait that long (Retry-After)"
                .into(),
        );
        for (columns, rows) in [(50, 20), (80, 24), (200, 50), (30, 10), (20, 5)] {
            let lines = render(
                &state,
                &Rates::default(),
                Duration::from_secs(75),
                columns,
                rows,
            );
            check(&lines, columns, rows);
            assert!(
                lines.iter().any(|l| l.starts_with("total")) || rows < 5,
                "{lines:#?}"
            );
        }
        let lines = render(&state, &Rates::default(), Duration::from_secs(75), 50, 20);
        assert!(lines[0].starts_with("a-very-long"), "{lines:#?}");
        assert!(lines[0].contains('…'), "{lines:#?}");
        assert!(lines[0].contains("512.00 MiB/1023.00 MiB"), "{lines:#?}");
        assert!(
            lines.iter().any(|l| l.contains("1m15s elapsed")),
            "{lines:#?}"
        );
    }

    #[test]
    fn many_files_never_scroll_the_terminal() {
        let files = (0..100)
            .map(|i| {
                file(
                    &format!("part-{i:03}"),
                    Some(MIB),
                    if i < 50 { MIB } else { KIB },
                    i < 50,
                )
            })
            .collect();
        let state = snapshot(files);
        let lines = render(&state, &Rates::default(), Duration::ZERO, 50, 20);
        check(&lines, 50, 20);
        // Finished files of a large transfer leave; the moving ones are shown.
        assert!(!lines.iter().any(|l| l.contains("done")), "{lines:#?}");
        assert!(lines[0].starts_with("part-050"), "{lines:#?}");
        assert!(
            lines.iter().any(|l| l.contains("more files not shown")),
            "{lines:#?}"
        );
        assert!(total_line(&lines).contains("total 50/100"), "{lines:#?}");
    }

    #[test]
    fn the_eta_comes_from_the_smoothed_rate() {
        let start = Instant::now();
        let mut rates = Rates::default();
        let mut state = snapshot(vec![file("a", Some(10 * MIB), 0, false)]);
        rates.record(&state, start);
        // 200 ms in: too early for a rate, so the ETA is unknown.
        state.files[0].done = MIB;
        rates.record(&state, start + Duration::from_millis(200));
        let lines = render(&state, &rates, Duration::from_millis(200), 50, 20);
        assert!(
            lines.iter().any(|l| l.contains("ETA unknown")),
            "{lines:#?}"
        );
        assert!(lines.iter().any(|l| l.contains("-- B/s")), "{lines:#?}");
        // 2 s in, at 1 MiB/s: 8 MiB left is 8 s.
        state.files[0].done = 2 * MIB;
        rates.record(&state, start + Duration::from_secs(2));
        let lines = render(&state, &rates, Duration::from_secs(2), 50, 20);
        assert!(lines.iter().any(|l| l.contains("1.00 MiB/s")), "{lines:#?}");
        assert!(lines.iter().any(|l| l.contains("ETA 8s")), "{lines:#?}");
    }

    #[test]
    fn a_new_file_does_not_spike_its_rate() {
        let start = Instant::now();
        let at = |millis: u64| start + Duration::from_millis(millis);
        let mut rates = Rates::default();
        let mut state = snapshot(vec![
            file("first", Some(100 * MIB), 0, false),
            file("second", Some(100 * MIB), 0, false),
        ]);
        for second in 0..=5 {
            state.files[0].done = second * MIB;
            rates.record(&state, at(second * 1000));
        }
        // The second file shows up with 14 MiB already there (it started between looks).
        state.files[1].done = 14 * MIB;
        state.files[0].done = 5 * MIB + MIB / 5;
        rates.record(&state, at(5200));
        assert_eq!(rates.file(1), None, "no rate from one look");
        state.files[1].done = 14 * MIB + MIB / 5;
        rates.record(&state, at(5400));
        assert_eq!(rates.file(1), None, "no rate from 200 ms");
        let lines = render(&state, &rates, Duration::from_millis(5400), 100, 20);
        check(&lines, 100, 20);
        assert!(
            !lines.iter().any(|l| l.contains("70.00 MiB/s")),
            "{lines:#?}"
        );
    }

    #[test]
    fn no_files_started_yet() {
        let state = snapshot(vec![
            file("a", None, 0, false),
            file("b", Some(5), 0, false),
        ]);
        let lines = render(&state, &Rates::default(), Duration::ZERO, 50, 20);
        check(&lines, 50, 20);
        assert!(lines[0].starts_with("total 0/2"), "{lines:#?}");
        assert!(!full(bar_of(&lines[0])), "{lines:#?}");
    }
}
