//! Byte ranges of a remote file (IBackgroundCopyJob3::AddFileWithRanges): the local file is
//! the ranges' bytes concatenated in the order given, not sorted.

use crate::error::{ErrorContext, QmgrError, Result};
use crate::hresult;

/// BG_LENGTH_TO_EOF: a range that runs to the end of the remote file.
pub const LENGTH_TO_EOF: u64 = u64::MAX;
/// The most ranges one file may have (Windows' MaxRangesPerFile group policy defaults to
/// 500; beyond it, `BG_E_TOO_MANY_RANGES_IN_FILE`).
pub const MAX_RANGES_PER_FILE: usize = 500;

/// One BG_FILE_RANGE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileRange {
    pub offset: u64,
    /// [`LENGTH_TO_EOF`] for the rest of the file.
    pub length: u64,
}

impl FileRange {
    pub const fn runs_to_eof(self) -> bool {
        self.length == LENGTH_TO_EOF
    }

    /// The last byte's offset, or `None` for a range to the end of the file.
    pub const fn last(self) -> Option<u64> {
        if self.runs_to_eof() {
            None
        } else {
            Some(self.offset + self.length - 1)
        }
    }
}

/// Checks ranges as AddFileWithRanges does: at least one (`E_INVALIDARG`), none starting at
/// BG_LENGTH_TO_EOF or empty or running past 2^64 (`BG_E_INVALID_RANGE`), none sharing a
/// byte with another (`BG_E_OVERLAPPING_RANGES`), at most [`MAX_RANGES_PER_FILE`].
pub fn validate(ranges: &[FileRange]) -> Result<()> {
    if ranges.is_empty() {
        return Err(QmgrError::invalid_arg(
            "AddFileWithRanges needs at least one range",
        ));
    }
    if ranges.len() > MAX_RANGES_PER_FILE {
        return Err(QmgrError::new(
            hresult::BG_E_TOO_MANY_RANGES_IN_FILE,
            ErrorContext::None,
            format!(
                "{} ranges for one file; the most is {MAX_RANGES_PER_FILE}",
                ranges.len()
            ),
        ));
    }
    for range in ranges {
        let invalid = |why: &str| {
            QmgrError::new(
                hresult::BG_E_INVALID_RANGE,
                ErrorContext::None,
                format!(
                    "the range at offset {} of length {}: {why}",
                    range.offset, range.length
                ),
            )
        };
        if range.offset == LENGTH_TO_EOF {
            return Err(invalid("BG_LENGTH_TO_EOF is a length, not an offset"));
        }
        if range.length == 0 {
            return Err(invalid("it is empty"));
        }
        if !range.runs_to_eof() && range.offset.checked_add(range.length).is_none() {
            return Err(invalid("it ends beyond the largest possible file"));
        }
    }
    let mut sorted: Vec<FileRange> = ranges.to_vec();
    sorted.sort_by_key(|range| range.offset);
    for pair in sorted.windows(2) {
        let overlaps = pair[0].last().is_none_or(|last| last >= pair[1].offset);
        if overlaps {
            return Err(QmgrError::new(
                hresult::BG_E_OVERLAPPING_RANGES,
                ErrorContext::None,
                format!(
                    "the ranges at offsets {} and {} share bytes",
                    pair[0].offset, pair[1].offset
                ),
            ));
        }
    }
    Ok(())
}

/// A part of the remote file to ask for: `first` to `last` inclusive (`None`: to the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteSpan {
    pub first: u64,
    pub last: Option<u64>,
}

/// The length of `range` once the remote file's size is known.
fn length_of(range: FileRange, remote_total: Option<u64>) -> Option<u64> {
    if range.runs_to_eof() {
        remote_total.map(|total| total.saturating_sub(range.offset))
    } else {
        Some(range.length)
    }
}

/// The local file's length: the ranges' lengths added up, once every one is known.
pub fn local_total(ranges: &[FileRange], remote_total: Option<u64>) -> Option<u64> {
    ranges.iter().try_fold(0u64, |sum, range| {
        Some(sum + length_of(*range, remote_total)?)
    })
}

/// The remote file's size, worked out from the local file's (`local_total`): known only when
/// a range runs to the end of the file (the only one that can: any range after its offset
/// would overlap it), and needed only then.
pub fn remote_total(ranges: &[FileRange], local_total: u64) -> Option<u64> {
    let to_eof = ranges.iter().find(|range| range.runs_to_eof())?;
    let fixed: u64 = ranges
        .iter()
        .filter(|range| !range.runs_to_eof())
        .map(|range| range.length)
        .sum();
    Some(local_total.checked_sub(fixed)? + to_eof.offset)
}

/// What to ask for when `held` bytes of the local file are on disk: the rest of the range
/// they end in, and where the local file stands when that answer is complete. `None` when
/// every range is held. A range to the end of the file of still unknown length is asked
/// for whole from where it stands.
pub fn next_span(
    ranges: &[FileRange],
    remote_total: Option<u64>,
    held: u64,
) -> Option<(RemoteSpan, Option<u64>)> {
    let mut start = 0u64;
    for range in ranges {
        let length = length_of(*range, remote_total);
        let end = length.map(|length| start + length);
        if end.is_none_or(|end| held < end) {
            let within = held - start;
            let span = RemoteSpan {
                first: range.offset + within,
                last: if range.runs_to_eof() {
                    None
                } else {
                    range.last()
                },
            };
            return Some((span, end));
        }
        start = end.unwrap_or(start);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn range(offset: u64, length: u64) -> FileRange {
        FileRange { offset, length }
    }

    #[test]
    fn validation_follows_add_file_with_ranges() {
        assert_eq!(validate(&[]).unwrap_err().hresult, hresult::E_INVALIDARG);
        assert_eq!(
            validate(&[range(LENGTH_TO_EOF, 10)]).unwrap_err().hresult,
            hresult::BG_E_INVALID_RANGE
        );
        assert_eq!(
            validate(&[range(5, 0)]).unwrap_err().hresult,
            hresult::BG_E_INVALID_RANGE
        );
        assert_eq!(
            validate(&[range(100, 100), range(150, 10)])
                .unwrap_err()
                .hresult,
            hresult::BG_E_OVERLAPPING_RANGES
        );
        assert_eq!(
            validate(&[range(100, 100), range(100, 100)])
                .unwrap_err()
                .hresult,
            hresult::BG_E_OVERLAPPING_RANGES,
            "duplicates overlap"
        );
        assert_eq!(
            validate(&[range(500, LENGTH_TO_EOF), range(900, 10)])
                .unwrap_err()
                .hresult,
            hresult::BG_E_OVERLAPPING_RANGES,
            "a range to the end covers every later offset"
        );
        let many: Vec<FileRange> = (0..501).map(|i| range(i * 10, 5)).collect();
        assert_eq!(
            validate(&many).unwrap_err().hresult,
            hresult::BG_E_TOO_MANY_RANGES_IN_FILE
        );
        // Out of order, adjacent and to the end are all fine.
        validate(&[
            range(900, 100),
            range(100, 100),
            range(200, 100),
            range(1000, LENGTH_TO_EOF),
        ])
        .unwrap();
    }

    #[test]
    fn the_local_file_is_the_ranges_in_the_order_given() {
        let ranges = [range(100, 100), range(900, 100), range(400, 100)];
        assert_eq!(local_total(&ranges, None), Some(300));
        let span = |held| next_span(&ranges, None, held);
        assert_eq!(
            span(0),
            Some((
                RemoteSpan {
                    first: 100,
                    last: Some(199)
                },
                Some(100)
            ))
        );
        assert_eq!(
            span(150),
            Some((
                RemoteSpan {
                    first: 950,
                    last: Some(999)
                },
                Some(200)
            )),
            "resumed within the second range"
        );
        assert_eq!(
            span(200),
            Some((
                RemoteSpan {
                    first: 400,
                    last: Some(499)
                },
                Some(300)
            ))
        );
        assert_eq!(span(300), None);
    }

    #[test]
    fn a_range_to_the_end_is_sized_by_the_remote_file() {
        let ranges = [range(10, 5), range(1000, LENGTH_TO_EOF)];
        assert_eq!(local_total(&ranges, None), None);
        assert_eq!(
            next_span(&ranges, None, 5),
            Some((
                RemoteSpan {
                    first: 1000,
                    last: None
                },
                None
            ))
        );
        assert_eq!(local_total(&ranges, Some(1500)), Some(505));
        assert_eq!(
            next_span(&ranges, Some(1500), 105),
            Some((
                RemoteSpan {
                    first: 1100,
                    last: None
                },
                Some(505)
            ))
        );
        assert_eq!(next_span(&ranges, Some(1500), 505), None);
        assert_eq!(remote_total(&ranges, 505), Some(1500));
        assert_eq!(
            remote_total(&[range(10, 5)], 5),
            None,
            "no range to the end"
        );
    }
}
