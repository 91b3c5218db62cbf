//! On-demand files (BITS_JOB_PROPERTY_ON_DEMAND_MODE, IBackgroundCopyFile6): which bytes of
//! the remote file are on disk (`filled`) and which the application asked for and are not
//! there yet (`requested`). Bytes sit at their own offsets in the temporary file, which has
//! the remote file's size, so the temporary file's length says nothing about what is there:
//! these sets do.
//!
//! Everything here is arithmetic on sets of byte spans; the service applies it to a file
//! and the engine fetches the spans.

use crate::error::{ErrorContext, QmgrError, Result};
use crate::hresult;
use crate::ranges::{FileRange, LENGTH_TO_EOF, MAX_RANGES_PER_FILE};

/// Bytes `start` up to, not including, `end` of the remote file; never empty.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Span {
    pub start: u64,
    pub end: u64,
}

impl Span {
    pub fn len(self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(self) -> bool {
        self.end <= self.start
    }

    /// The span as a BG_FILE_RANGE.
    pub fn to_file_range(self) -> FileRange {
        FileRange {
            offset: self.start,
            length: self.len(),
        }
    }
}

/// Disjoint, non-adjacent spans in ascending order: adding a span merges it with every span
/// it touches, so the set is always "merged as much as possible" (GetFilledFileRanges).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpanSet {
    spans: Vec<Span>,
}

impl SpanSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// The set of `spans` (in any order, overlapping or not; empty ones are ignored).
    pub fn of(spans: impl IntoIterator<Item = Span>) -> Self {
        let mut set = Self::new();
        for span in spans {
            set.insert(span);
        }
        set
    }

    pub fn spans(&self) -> &[Span] {
        &self.spans
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The number of bytes in the set.
    pub fn bytes(&self) -> u64 {
        self.spans.iter().map(|span| span.len()).sum()
    }

    /// Adds `span`, merging it with the spans it overlaps or touches.
    pub fn insert(&mut self, span: Span) {
        if span.is_empty() {
            return;
        }
        // The spans that end before `span` starts, without touching it, stay in front.
        let first = self.spans.partition_point(|held| held.end < span.start);
        // The spans that start after `span` ends, without touching it, stay behind.
        let past = self.spans.partition_point(|held| held.start <= span.end);
        let merged = self.spans[first..past]
            .iter()
            .fold(span, |merged, held| Span {
                start: merged.start.min(held.start),
                end: merged.end.max(held.end),
            });
        self.spans.splice(first..past, [merged]);
    }

    /// Adds every span of `other`.
    pub fn extend(&mut self, other: &SpanSet) {
        for span in &other.spans {
            self.insert(*span);
        }
    }

    /// The bytes of this set that are not in `other`.
    #[must_use]
    pub fn minus(&self, other: &SpanSet) -> SpanSet {
        let mut left = Vec::new();
        for span in &self.spans {
            let mut start = span.start;
            for cut in &other.spans {
                if cut.end <= start || cut.start >= span.end {
                    continue;
                }
                if cut.start > start {
                    left.push(Span {
                        start,
                        end: cut.start,
                    });
                }
                start = start.max(cut.end);
                if start >= span.end {
                    break;
                }
            }
            if start < span.end {
                left.push(Span {
                    start,
                    end: span.end,
                });
            }
        }
        SpanSet { spans: left }
    }

    /// Whether every byte of `span` is in the set.
    pub fn covers(&self, span: Span) -> bool {
        span.is_empty()
            || self
                .spans
                .iter()
                .any(|held| held.start <= span.start && span.end <= held.end)
    }

    /// The set as BG_FILE_RANGEs, ordered by offset.
    pub fn to_file_ranges(&self) -> Vec<FileRange> {
        self.spans.iter().map(|span| span.to_file_range()).collect()
    }

    /// The spans in the order to fetch them when the application reads from `position`
    /// on (IBackgroundCopyFile6::UpdateDownloadPosition): first what lies at and after
    /// `position` (a span holding it is cut there), then what lies before it.
    pub fn in_order_from(&self, position: u64) -> Vec<Span> {
        let mut after = Vec::new();
        let mut before = Vec::new();
        for span in &self.spans {
            if span.end <= position {
                before.push(*span);
            } else if span.start >= position {
                after.push(*span);
            } else {
                before.push(Span {
                    start: span.start,
                    end: position,
                });
                after.push(Span {
                    start: position,
                    end: span.end,
                });
            }
        }
        after.extend(before);
        after
    }
}

/// Checks the ranges of a RequestFileRanges call against the remote file's `size` and turns
/// them into a set: at least one (`E_INVALIDARG`), at most [`MAX_RANGES_PER_FILE`]
/// (`BG_E_TOO_MANY_RANGES_IN_FILE`), none empty and none reaching past the end of the file
/// (`BG_E_INVALID_RANGE`). A length of BG_LENGTH_TO_EOF runs to the end of the file.
/// Ranges may overlap one another: the set merges them.
pub fn requested_spans(ranges: &[FileRange], size: u64) -> Result<SpanSet> {
    if ranges.is_empty() {
        return Err(QmgrError::invalid_arg(
            "RequestFileRanges needs at least one range",
        ));
    }
    if ranges.len() > MAX_RANGES_PER_FILE {
        return Err(QmgrError::new(
            hresult::BG_E_TOO_MANY_RANGES_IN_FILE,
            ErrorContext::None,
            format!(
                "{} ranges in one request; the most is {MAX_RANGES_PER_FILE}",
                ranges.len()
            ),
        ));
    }
    let mut set = SpanSet::new();
    for range in ranges {
        let end = if range.length == LENGTH_TO_EOF {
            Some(size)
        } else {
            range.offset.checked_add(range.length)
        };
        let outside = |why: String| {
            QmgrError::new(
                hresult::BG_E_INVALID_RANGE,
                ErrorContext::None,
                format!(
                    "the range at offset {} of length {}: {why}",
                    range.offset, range.length
                ),
            )
        };
        if range.length == 0 {
            return Err(outside("it is empty".to_owned()));
        }
        match end {
            Some(end) if range.offset < size && end <= size => set.insert(Span {
                start: range.offset,
                end,
            }),
            _ => {
                return Err(outside(format!(
                    "it reaches past the end of the file ({size} bytes)"
                )));
            }
        }
    }
    Ok(set)
}

/// What BITS asks of a job before it downloads ranges on demand: a download job, content
/// that is not dynamic, an http or https URL. (The server's range support is known only
/// once it answered; a server that ignores ranges fails the job then.)
pub fn check_random_access(
    is_download: bool,
    dynamic_content: bool,
    remote_name: &str,
) -> Result<()> {
    let refuse = |why: &str| {
        Err(QmgrError::new(
            hresult::BG_E_RANDOM_ACCESS_NOT_SUPPORTED,
            ErrorContext::None,
            format!("ranges cannot be downloaded on demand: {why}"),
        ))
    };
    if !is_download {
        return refuse("the job is not a download job");
    }
    if dynamic_content {
        return refuse("the job's content is dynamic (BITS_JOB_PROPERTY_DYNAMIC_CONTENT)");
    }
    if crate::file::check_ranged_remote_name(remote_name).is_err() {
        return refuse(&format!("{remote_name} is not an http or https URL"));
    }
    Ok(())
}

/// Where an on-demand file stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OnDemandFile {
    /// The bytes in the temporary file (GetFilledFileRanges).
    pub filled: SpanSet,
    /// The bytes asked for and not there yet, to fetch before anything else.
    pub requested: SpanSet,
    /// Where the application reads (UpdateDownloadPosition): what is asked for from here
    /// on is fetched first.
    #[serde(default)]
    pub position: u64,
}

impl OnDemandFile {
    /// Adds the request `asked` (checked by [`requested_spans`]): only the bytes not yet
    /// filled are to be fetched. Returns whether anything new is to be fetched.
    pub fn request(&mut self, asked: &SpanSet) -> bool {
        let missing = asked.minus(&self.filled).minus(&self.requested);
        self.requested.extend(&missing);
        !missing.is_empty()
    }

    /// `span` is now in the temporary file.
    pub fn fill(&mut self, span: Span) {
        self.filled.insert(span);
        self.requested = self.requested.minus(&SpanSet::of([span]));
    }

    /// The spans to fetch next, in the order to fetch them.
    pub fn fetch_order(&self) -> Vec<Span> {
        self.requested.in_order_from(self.position)
    }

    /// Whether every byte of a file of `size` bytes is there.
    pub fn is_whole(&self, size: u64) -> bool {
        self.filled.covers(Span {
            start: 0,
            end: size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn span(start: u64, end: u64) -> Span {
        Span { start, end }
    }

    const fn range(offset: u64, length: u64) -> FileRange {
        FileRange { offset, length }
    }

    #[test]
    fn inserted_spans_merge_when_they_overlap_or_touch() {
        let set = SpanSet::of([span(50, 60), span(10, 20), span(20, 30), span(55, 70)]);
        assert_eq!(set.spans(), &[span(10, 30), span(50, 70)]);
        let mut bridged = set.clone();
        bridged.insert(span(25, 52));
        assert_eq!(bridged.spans(), &[span(10, 70)]);
        let mut apart = set;
        apart.insert(span(40, 45));
        assert_eq!(apart.spans(), &[span(10, 30), span(40, 45), span(50, 70)]);
        assert_eq!(apart.bytes(), 20 + 5 + 20);
        apart.insert(span(5, 5));
        assert_eq!(apart.spans().len(), 3, "an empty span adds nothing");
    }

    #[test]
    fn minus_leaves_the_bytes_not_in_the_other_set() {
        let set = SpanSet::of([span(0, 100), span(200, 300)]);
        let cut = SpanSet::of([span(10, 20), span(90, 210), span(250, 260)]);
        assert_eq!(
            set.minus(&cut).spans(),
            &[span(0, 10), span(20, 90), span(210, 250), span(260, 300)]
        );
        assert!(set.minus(&set).is_empty());
        assert_eq!(set.minus(&SpanSet::new()), set);
        assert!(SpanSet::new().minus(&set).is_empty());
    }

    #[test]
    fn requested_ranges_are_checked_against_the_file_size() {
        let size = 1000;
        assert_eq!(
            requested_spans(&[], size).unwrap_err().hresult,
            hresult::E_INVALIDARG
        );
        assert_eq!(
            requested_spans(&[range(990, 11)], size)
                .unwrap_err()
                .hresult,
            hresult::BG_E_INVALID_RANGE,
            "one byte past the end"
        );
        assert_eq!(
            requested_spans(&[range(1000, LENGTH_TO_EOF)], size)
                .unwrap_err()
                .hresult,
            hresult::BG_E_INVALID_RANGE,
            "starts at the end"
        );
        assert_eq!(
            requested_spans(&[range(10, 0)], size).unwrap_err().hresult,
            hresult::BG_E_INVALID_RANGE
        );
        assert_eq!(
            requested_spans(&[range(u64::MAX - 1, 10)], size)
                .unwrap_err()
                .hresult,
            hresult::BG_E_INVALID_RANGE,
            "past 2^64"
        );
        let set = requested_spans(
            &[range(900, LENGTH_TO_EOF), range(100, 50), range(120, 50)],
            size,
        )
        .unwrap();
        assert_eq!(set.spans(), &[span(100, 170), span(900, 1000)]);
        assert_eq!(
            requested_spans(&[range(990, 10)], size).unwrap().spans(),
            &[span(990, 1000)],
            "up to the last byte"
        );
    }

    #[test]
    fn a_request_fetches_only_what_is_missing_and_the_file_is_whole_when_all_is_filled() {
        let mut file = OnDemandFile::default();
        assert!(file.request(&SpanSet::of([span(0, 10), span(50, 60)])));
        file.fill(span(0, 10));
        assert_eq!(file.requested.spans(), &[span(50, 60)]);
        assert!(
            !file.request(&SpanSet::of([span(2, 8), span(52, 58)])),
            "filled and pending bytes are not asked for again"
        );
        assert!(file.request(&SpanSet::of([span(5, 100)])));
        assert_eq!(file.requested.spans(), &[span(10, 100)]);
        file.fill(span(10, 100));
        assert!(file.requested.is_empty());
        assert!(!file.is_whole(120));
        assert!(file.is_whole(100));
        assert_eq!(file.filled.to_file_ranges(), vec![range(0, 100)]);
    }

    #[test]
    fn fetching_from_a_position_takes_what_follows_it_first() {
        let pending = SpanSet::of([span(0, 10), span(20, 40), span(60, 70)]);
        assert_eq!(
            pending.in_order_from(30),
            vec![span(30, 40), span(60, 70), span(0, 10), span(20, 30)]
        );
        assert_eq!(pending.in_order_from(0), pending.spans());
        assert_eq!(pending.in_order_from(100), pending.spans());
    }

    #[test]
    fn random_access_needs_a_download_of_fixed_content_over_http() {
        let code = |result: Result<()>| result.unwrap_err().hresult;
        check_random_access(true, false, "https://example.com/f").unwrap();
        check_random_access(true, false, "HTTP://example.com/f").unwrap();
        assert_eq!(
            code(check_random_access(false, false, "https://example.com/f")),
            hresult::BG_E_RANDOM_ACCESS_NOT_SUPPORTED
        );
        assert_eq!(
            code(check_random_access(true, true, "https://example.com/f")),
            hresult::BG_E_RANDOM_ACCESS_NOT_SUPPORTED
        );
        assert_eq!(
            code(check_random_access(true, false, "ftp://example.com/f")),
            hresult::BG_E_RANDOM_ACCESS_NOT_SUPPORTED
        );
    }
}
