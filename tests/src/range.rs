//! Choosing what part of a file a GET answers with: Range and If-Range (RFC 9110 §14).

/// What a request's Range and If-Range select from a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selection {
    /// 200 with the whole file.
    Whole,
    /// 206 with bytes `first..=last`.
    Partial { first: u64, last: u64 },
    /// 416: the range starts at or past the end of the file.
    Unsatisfiable,
}

/// The validators of the file being served, which an If-Range value must equal.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Validators<'a> {
    pub(crate) etag: &'a str,
    pub(crate) last_modified: &'a str,
}

/// Applies `range` (the Range field) under `if_range` (the If-Range field) to a file of
/// `size` bytes. A Range that is not a single well-formed byte range is ignored, which
/// RFC 9110 allows; so is one whose If-Range names another version.
pub(crate) fn select(
    range: Option<&str>,
    if_range: Option<&str>,
    size: u64,
    validators: Validators<'_>,
) -> Selection {
    let Some(range) = range else {
        return Selection::Whole;
    };
    if if_range.is_some_and(|condition| !if_range_matches(condition, validators)) {
        return Selection::Whole;
    }
    parse_single_range(range).map_or(Selection::Whole, |spec| spec.resolve(size))
}

/// If-Range needs a strong match: the exact ETag (never a weak one), or exactly the
/// Last-Modified date that was sent.
fn if_range_matches(condition: &str, validators: Validators<'_>) -> bool {
    let condition = condition.trim();
    if condition.starts_with('"') || condition.starts_with("W/") {
        condition == validators.etag
    } else {
        condition == validators.last_modified
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeSpec {
    /// `a-` or `a-b`.
    FromOffset { first: u64, last: Option<u64> },
    /// `-n`: the last n bytes.
    Suffix(u64),
}

impl RangeSpec {
    fn resolve(self, size: u64) -> Selection {
        match self {
            RangeSpec::FromOffset { first, last } if first < size => Selection::Partial {
                first,
                last: last.map_or(size - 1, |last| last.min(size - 1)),
            },
            RangeSpec::Suffix(len) if len > 0 && size > 0 => Selection::Partial {
                first: size.saturating_sub(len),
                last: size - 1,
            },
            _ => Selection::Unsatisfiable,
        }
    }
}

fn parse_single_range(field: &str) -> Option<RangeSpec> {
    let (unit, set) = field.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return None;
    }
    let (first, last) = set.trim().split_once('-')?;
    let number = |text: &str| {
        (!text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()))
            .then(|| text.parse::<u64>().ok())
            .flatten()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => number(suffix).map(RangeSpec::Suffix),
        (first, "") => number(first).map(|first| RangeSpec::FromOffset { first, last: None }),
        (first, last) => {
            let (first, last) = (number(first)?, number(last)?);
            (first <= last).then_some(RangeSpec::FromOffset {
                first,
                last: Some(last),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALIDATORS: Validators<'static> = Validators {
        etag: "\"abc-100-v0\"",
        last_modified: "Mon, 01 Jan 1990 00:00:00 GMT",
    };

    fn select_plain(range: &str, size: u64) -> Selection {
        select(Some(range), None, size, VALIDATORS)
    }

    #[test]
    fn single_ranges_resolve_within_the_file() {
        assert_eq!(
            select_plain("bytes=0-9", 100),
            Selection::Partial { first: 0, last: 9 }
        );
        assert_eq!(
            select_plain("bytes=90-", 100),
            Selection::Partial {
                first: 90,
                last: 99
            }
        );
        assert_eq!(
            select_plain("bytes=90-1000", 100),
            Selection::Partial {
                first: 90,
                last: 99
            }
        );
        assert_eq!(
            select_plain("bytes=-10", 100),
            Selection::Partial {
                first: 90,
                last: 99
            }
        );
        assert_eq!(
            select_plain("bytes=-1000", 100),
            Selection::Partial { first: 0, last: 99 }
        );
        assert_eq!(
            select_plain("Bytes = 5-5", 100),
            Selection::Partial { first: 5, last: 5 }
        );
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable() {
        assert_eq!(select_plain("bytes=100-", 100), Selection::Unsatisfiable);
        assert_eq!(select_plain("bytes=200-300", 100), Selection::Unsatisfiable);
        assert_eq!(select_plain("bytes=-0", 100), Selection::Unsatisfiable);
        assert_eq!(select_plain("bytes=0-", 0), Selection::Unsatisfiable);
        assert_eq!(select_plain("bytes=-5", 0), Selection::Unsatisfiable);
    }

    #[test]
    fn invalid_or_multiple_ranges_are_ignored() {
        for range in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=5-2",
            "bytes=a-",
            "bytes=-",
            "bytes=1",
            "bytes=+1-2",
        ] {
            assert_eq!(select_plain(range, 100), Selection::Whole, "{range}");
        }
        assert_eq!(
            select(None, Some(VALIDATORS.etag), 100, VALIDATORS),
            Selection::Whole
        );
    }

    #[test]
    fn if_range_needs_an_exact_strong_validator() {
        let partial = Selection::Partial {
            first: 10,
            last: 99,
        };
        let with_condition =
            |condition| select(Some("bytes=10-"), Some(condition), 100, VALIDATORS);
        assert_eq!(with_condition(VALIDATORS.etag), partial);
        assert_eq!(with_condition(VALIDATORS.last_modified), partial);
        assert_eq!(with_condition("\"abc-100-v1\""), Selection::Whole);
        assert_eq!(with_condition("W/\"abc-100-v0\""), Selection::Whole);
        assert_eq!(
            with_condition("Tue, 02 Jan 1990 00:00:00 GMT"),
            Selection::Whole
        );
    }
}
