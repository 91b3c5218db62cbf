//! What `qmgr transfer` shows while it waits: indicatif bars (a bar per file and a total)
//! when stderr is a terminal, plain lines at intervals when it is not, or nothing.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::human;
use crate::rate::RateMeter;

/// More files than this and finished bars leave the screen, so the display stays short.
const BARS_KEPT_WHEN_DONE: usize = 10;
/// How often plain-line mode prints the total.
const LINE_INTERVAL: Duration = Duration::from_secs(1);

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
    pub files: Vec<FileState>,
    /// What holds the transfer up, if anything ("retrying in 8s after …").
    pub status: Option<String>,
}

impl Snapshot {
    fn done(&self) -> u64 {
        self.files.iter().map(|f| f.done).sum()
    }

    /// Bytes expected in all: known sizes, plus what arrived of files of unknown size.
    fn expected(&self) -> u64 {
        self.files.iter().map(|f| f.total.unwrap_or(f.done)).sum()
    }

    fn size_unknown(&self) -> bool {
        self.files.iter().any(|f| f.total.is_none() && !f.completed)
    }

    fn files_completed(&self) -> usize {
        self.files.iter().filter(|f| f.completed).count()
    }
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
            Progress::Bars(Box::new(Bars::new(files)))
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
    pub fn note(&self, text: &str) {
        let text = &*human::clean_lines(text);
        match self {
            Self::Bars(bars) => {
                let _ = bars.multi.println(text);
            }
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
}

pub struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    files: Vec<Option<ProgressBar>>,
    file_style: ProgressStyle,
    done_style: ProgressStyle,
}

impl Bars {
    fn new(files: usize) -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let total = multi.add(ProgressBar::new(0));
        total.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} [{elapsed}] [{wide_bar:.cyan/blue}] {binary_bytes}/{binary_total_bytes} \
                 {binary_bytes_per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        total.set_prefix(format!("total 0/{files}"));
        total.enable_steady_tick(Duration::from_millis(250));
        Bars {
            multi,
            total,
            files: vec![None; files],
            file_style: ProgressStyle::with_template(
                "{msg:24!} [{bar:30}] {binary_bytes:>10}/{binary_total_bytes:<10} \
                 {binary_bytes_per_sec:>12} {eta:>4}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
            done_style: ProgressStyle::with_template("{msg:24!}  done {binary_total_bytes}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        }
    }

    fn update(&mut self, snapshot: &Snapshot) {
        let many = snapshot.files.len() > BARS_KEPT_WHEN_DONE;
        for (slot, file) in self.files.iter_mut().zip(&snapshot.files) {
            if slot.is_none() && file.started() && !(many && file.completed) {
                let bar = self
                    .multi
                    .insert_before(&self.total, ProgressBar::new(file.total.unwrap_or(0)));
                bar.set_style(self.file_style.clone());
                bar.set_message(file.name.clone());
                *slot = Some(bar);
            }
            let Some(bar) = slot else { continue };
            if bar.is_finished() {
                continue;
            }
            bar.set_length(file.total.unwrap_or(file.done));
            bar.set_position(file.done);
            if file.completed {
                if many {
                    bar.finish_and_clear();
                    self.multi.remove(bar);
                } else {
                    bar.set_style(self.done_style.clone());
                    bar.finish();
                }
            }
        }
        self.total.set_prefix(format!(
            "total {}/{}",
            snapshot.files_completed(),
            snapshot.files.len()
        ));
        self.total.set_length(snapshot.expected());
        self.total.set_position(snapshot.done());
        let mut message = if snapshot.size_unknown() {
            "(some sizes unknown)".to_owned()
        } else {
            String::new()
        };
        if let Some(status) = &snapshot.status {
            message.push_str(status);
        }
        self.total.set_message(message);
    }

    fn finish(&mut self, snapshot: &Snapshot) {
        self.update(snapshot);
        for bar in self.files.iter().flatten() {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
        self.total.abandon();
    }
}

pub struct Lines {
    last_line: Option<Instant>,
    last_status: Option<String>,
    reported: Vec<bool>,
    rate: RateMeter,
}

impl Lines {
    fn new(files: usize) -> Lines {
        Lines {
            last_line: None,
            last_status: None,
            reported: vec![false; files],
            rate: RateMeter::new(),
        }
    }

    fn update(&mut self, snapshot: &Snapshot) {
        let now = Instant::now();
        self.rate.record(now, snapshot.done());
        for (reported, file) in self.reported.iter_mut().zip(&snapshot.files) {
            if file.completed && !*reported {
                *reported = true;
                eprintln!(
                    "qmgr: transferred {} ({})",
                    file.path,
                    human::bytes(file.done)
                );
            }
        }
        if snapshot.status != self.last_status {
            if let Some(status) = &snapshot.status {
                eprintln!("qmgr: {status}");
            }
            self.last_status.clone_from(&snapshot.status);
        }
        if self
            .last_line
            .is_none_or(|last| now.duration_since(last) >= LINE_INTERVAL)
        {
            self.last_line = Some(now);
            eprintln!("qmgr: {}", self.summary(snapshot));
        }
    }

    fn summary(&self, snapshot: &Snapshot) -> String {
        let done = snapshot.done();
        let mut line = format!(
            "{}/{} files, {}",
            snapshot.files_completed(),
            snapshot.files.len(),
            human::bytes(done)
        );
        if snapshot.size_unknown() {
            line.push_str(" of ?");
        } else {
            let expected = snapshot.expected();
            let _ = write!(
                line,
                " of {} ({}%)",
                human::bytes(expected),
                human::percent(done, expected).unwrap_or(100)
            );
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
            }
        }
        line
    }

    fn finish(&mut self, snapshot: &Snapshot) {
        self.last_line = None;
        self.update(snapshot);
    }
}
