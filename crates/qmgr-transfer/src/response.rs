//! Reading an HTTP response head and deciding what its body means for the file on disk.

use std::time::{Duration, SystemTime};

use qmgr_core::ranges::{self, FileRange, RemoteSpan};

use crate::event::RestartReason;
use crate::http_date;
use crate::request::Validator;

/// The parts of a response head the engine acts on. curl hands over every head it sees
/// (redirects, proxy CONNECT answers, the final response); a status line starts a new one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    pub status: Option<u16>,
    pub content_length: Option<u64>,
    pub content_range: Option<ContentRange>,
    pub validator: Validator,
    pub retry_after: Option<String>,
    /// Where a redirect points, as sent (possibly relative).
    pub location: Option<String>,
    /// The status line and header lines as received, CRLF-separated (bounded by
    /// [`MAX_RAW_HEAD`]).
    pub raw: String,
}

/// The most of a response head kept as received; a longer head is cut at a line.
pub(crate) const MAX_RAW_HEAD: usize = 64 * 1024;

impl ResponseHead {
    /// Takes one header line as curl delivers it (with its CRLF).
    pub fn absorb(&mut self, line: &[u8]) {
        let Ok(line) = std::str::from_utf8(line) else {
            return;
        };
        let line = line.trim_end_matches(['\r', '\n']);
        if line.starts_with("HTTP/") {
            *self = ResponseHead {
                status: parse_status_line(line),
                ..ResponseHead::default()
            };
        }
        if !line.is_empty() && self.raw.len() + line.len() + 2 <= MAX_RAW_HEAD {
            self.raw.push_str(line);
            self.raw.push_str("\r\n");
        }
        if line.starts_with("HTTP/") {
            return;
        }
        let Some((name, value)) = line.split_once(':') else {
            return;
        };
        let value = value.trim();
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") {
            self.content_length = value.parse().ok();
        } else if name.eq_ignore_ascii_case("content-range") {
            self.content_range = parse_content_range(value);
        } else if name.eq_ignore_ascii_case("etag") {
            self.validator.etag = Some(value.into());
        } else if name.eq_ignore_ascii_case("last-modified") {
            self.validator.last_modified = Some(value.into());
        } else if name.eq_ignore_ascii_case("retry-after") {
            self.retry_after = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("location") {
            self.location = Some(value.to_owned());
        }
    }

    pub fn is_success(&self) -> bool {
        self.status
            .is_some_and(|status| (200..300).contains(&status))
    }

    /// The target of a redirect this head announces.
    pub fn redirect_target(&self) -> Option<&str> {
        let redirects = self
            .status
            .is_some_and(|status| (300..400).contains(&status));
        self.location.as_deref().filter(|_| redirects)
    }

    /// `Retry-After` as a delay from `now`: delta-seconds or an HTTP date.
    pub fn retry_after(&self, now: SystemTime) -> Option<Duration> {
        let value = self.retry_after.as_deref()?;
        if let Ok(seconds) = value.parse::<u64>() {
            return Some(Duration::from_secs(seconds));
        }
        let at = http_date::parse(value)?;
        Some(at.duration_since(now).unwrap_or(Duration::ZERO))
    }
}

fn parse_status_line(line: &str) -> Option<u16> {
    let code = line.split_whitespace().nth(1)?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

/// A `Content-Range` value (RFC 9110 §14.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ContentRange {
    /// `bytes first-last/complete` (`complete` is `*` when unknown).
    Bytes {
        first: u64,
        last: u64,
        complete: Option<u64>,
    },
    /// `bytes */complete`, sent with 416.
    Unsatisfied { complete: u64 },
}

pub(crate) fn parse_content_range(value: &str) -> Option<ContentRange> {
    let spec = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, complete) = spec.split_once('/')?;
    let complete = match complete.trim() {
        "*" => None,
        number => Some(number.parse().ok()?),
    };
    if range.trim() == "*" {
        return Some(ContentRange::Unsatisfied {
            complete: complete?,
        });
    }
    let (first, last) = range.split_once('-')?;
    let (first, last): (u64, u64) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    if last < first || complete.is_some_and(|complete| last >= complete) {
        return None;
    }
    Some(ContentRange::Bytes {
        first,
        last,
        complete,
    })
}

/// What the engine asked for: the bytes it already holds and what it knew of the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Expectation {
    /// Bytes already in the file; the request asked for the rest.
    pub offset: u64,
    pub validator: Validator,
    /// The local file's whole length (for a ranged file, its ranges' lengths added up).
    pub total: Option<u64>,
    /// For a file of byte ranges: the part of the remote file this request asked for.
    pub ranged: Option<Ranged>,
}

/// One request of a ranged file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ranged {
    pub ranges: Vec<FileRange>,
    pub span: RemoteSpan,
    /// The remote file's size, when known before the request.
    pub remote_total: Option<u64>,
}

/// Why a ranged file cannot be downloaded from this server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RangeRefusal {
    /// A whole-file answer to a range request (BG_E_INSUFFICIENT_RANGE_SUPPORT).
    Ignored,
    /// The range runs beyond the end of the remote file (BG_E_INVALID_RANGE).
    BeyondEnd,
}

/// What to do with a response's body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BodyPlan {
    /// Write the body after the bytes already held.
    Append { total: Option<u64> },
    /// Empty the file and write the body from its start.
    Restart {
        reason: RestartReason,
        total: Option<u64>,
    },
    /// The body is not the file's content (an error page, a 416): keep it out of the file.
    NotContent,
    /// A partial answer that does not fit what was asked: ask again without a range.
    Mismatch(RestartReason),
    /// A ranged file's span: write it after the bytes held; the file then stands at
    /// `span_end` of `total`. `remote_size`: the remote file's, when known.
    AppendSpan {
        total: Option<u64>,
        span_end: u64,
        remote_size: Option<u64>,
    },
    /// The server cannot give a ranged file's bytes.
    Refused(RangeRefusal),
}

/// Decides what a final response means. Only a 206 that starts exactly at our offset, with
/// the total we recorded (when we know one) and a validator that vouches for the bytes we
/// hold, may be appended (DESIGN "Decisions, second round"): a server that ignores
/// `If-Range` must not splice two versions of a file. A 200 is the whole file, so a resumed
/// file starts over (the range was ignored or, through `If-Range`, the content changed).
pub(crate) fn plan_body(head: &ResponseHead, expected: &Expectation) -> BodyPlan {
    if !head.is_success() {
        return BodyPlan::NotContent;
    }
    if let Some(ranged) = &expected.ranged {
        return plan_span(head, expected, ranged);
    }
    if head.status == Some(206) {
        let Some(ContentRange::Bytes {
            first, complete, ..
        }) = head.content_range
        else {
            return BodyPlan::Mismatch(RestartReason::RangeMismatch);
        };
        if expected.offset == 0 || first != expected.offset {
            return BodyPlan::Mismatch(RestartReason::RangeMismatch);
        }
        let total_agrees = match (expected.total, complete) {
            (Some(recorded), Some(sent)) => recorded == sent,
            (Some(_), None) => false,
            (None, _) => true,
        };
        if !total_agrees {
            return BodyPlan::Mismatch(RestartReason::TotalMismatch);
        }
        if let Err(reason) = validates_range(&expected.validator, &head.validator) {
            return BodyPlan::Mismatch(reason);
        }
        return BodyPlan::Append { total: complete };
    }
    let total = head.content_length;
    if expected.offset == 0 {
        return BodyPlan::Append { total };
    }
    let reason = if expected.validator.differs_from(&head.validator) {
        RestartReason::ValidatorChanged
    } else {
        RestartReason::RangeIgnored
    };
    BodyPlan::Restart { reason, total }
}

/// A ranged file's answer: only a 206 with exactly the span asked for (ending earlier only
/// where the remote file ends: then the range is beyond it) and, when bytes are held, the
/// validator and size they came with. There is no whole-file fallback: a 200 means the
/// server ignores ranges.
fn plan_span(head: &ResponseHead, expected: &Expectation, ranged: &Ranged) -> BodyPlan {
    if head.status != Some(206)
        && expected.offset > 0
        && expected.validator.differs_from(&head.validator)
    {
        // If-Range named a version the server no longer has: the ranges start over.
        return BodyPlan::Mismatch(RestartReason::ValidatorChanged);
    }
    if head.status != Some(206) {
        return BodyPlan::Refused(RangeRefusal::Ignored);
    }
    let Some(ContentRange::Bytes {
        first,
        last,
        complete,
    }) = head.content_range
    else {
        return BodyPlan::Mismatch(RestartReason::RangeMismatch);
    };
    if first != ranged.span.first {
        return BodyPlan::Mismatch(RestartReason::RangeMismatch);
    }
    if let (Some(recorded), Some(sent)) = (ranged.remote_total, complete)
        && recorded != sent
    {
        return BodyPlan::Mismatch(RestartReason::TotalMismatch);
    }
    if expected.offset > 0
        && let Err(reason) = validates_range(&expected.validator, &head.validator)
    {
        return BodyPlan::Mismatch(reason);
    }
    let ends_at_the_end = complete == Some(last + 1);
    match ranged.span.last {
        Some(wanted) if last == wanted => {}
        Some(wanted) if last < wanted && ends_at_the_end => {
            return BodyPlan::Refused(RangeRefusal::BeyondEnd);
        }
        None if ends_at_the_end => {}
        _ => return BodyPlan::Mismatch(RestartReason::RangeMismatch),
    }
    BodyPlan::AppendSpan {
        total: ranges::local_total(&ranged.ranges, complete.or(ranged.remote_total)),
        span_end: expected.offset + (last - first + 1),
        remote_size: complete.or(ranged.remote_total),
    }
}

/// Whether a partial answer's validator proves it continues the bytes we hold: its strong
/// entity tag, or its Last-Modified, equals the recorded one, and nothing it carries
/// contradicts the record. A weak entity tag never vouches for a range (RFC 9110 §8.8.1:
/// weakly equal representations may differ byte for byte).
fn validates_range(recorded: &Validator, received: &Validator) -> Result<(), RestartReason> {
    let opaque = |tag: &str| tag.strip_prefix("W/").unwrap_or(tag).to_owned();
    let etag_changed = match (recorded.etag.as_deref(), received.etag.as_deref()) {
        (Some(ours), Some(theirs)) => opaque(ours) != opaque(theirs),
        _ => false,
    };
    let date_changed = match (
        recorded.last_modified.as_deref(),
        received.last_modified.as_deref(),
    ) {
        (Some(ours), Some(theirs)) => ours != theirs,
        _ => false,
    };
    if etag_changed || date_changed {
        return Err(RestartReason::ValidatorChanged);
    }
    let strong_match = recorded
        .strong_etag()
        .is_some_and(|ours| received.strong_etag() == Some(ours));
    let date_match = recorded
        .last_modified
        .as_deref()
        .is_some_and(|ours| received.last_modified.as_deref() == Some(ours));
    if strong_match || date_match {
        Ok(())
    } else if received
        .etag
        .as_deref()
        .is_some_and(|tag| tag.starts_with("W/"))
    {
        Err(RestartReason::WeakValidator)
    } else {
        Err(RestartReason::NoValidator)
    }
}

/// A 416 whose `Content-Range: bytes */N` says the file has exactly the bytes we hold:
/// the earlier attempt had already received everything.
pub(crate) fn already_complete(head: &ResponseHead, expected: &Expectation) -> bool {
    head.status == Some(416)
        && expected.offset > 0
        && head.content_range
            == Some(ContentRange::Unsatisfied {
                complete: expected.offset,
            })
        && expected.total.is_none_or(|total| total == expected.offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn head(lines: &[&str]) -> ResponseHead {
        let mut head = ResponseHead::default();
        for line in lines {
            head.absorb(format!("{line}\r\n").as_bytes());
        }
        head
    }

    #[test]
    fn the_raw_head_is_the_final_responses_own() {
        let final_head = head(&[
            "HTTP/1.1 302 Found",
            "Location: /elsewhere",
            "",
            "HTTP/1.1 200 OK",
            "ETag: \"v1\"",
            "Content-Length: 10",
            "",
        ]);
        assert_eq!(
            final_head.raw,
            "HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: 10\r\n"
        );
        let mut huge = ResponseHead::default();
        huge.absorb(b"HTTP/1.1 200 OK\r\n");
        for _ in 0..10_000 {
            huge.absorb(b"X-Padding: 0123456789\r\n");
        }
        assert!(huge.raw.len() <= MAX_RAW_HEAD && huge.raw.ends_with("\r\n"));
    }

    fn ranged_expectation(offset: u64, first: u64, last: Option<u64>) -> Expectation {
        let mut expectation = resuming(offset, None);
        expectation.ranged = Some(Ranged {
            ranges: vec![
                FileRange {
                    offset: 0,
                    length: 10,
                },
                FileRange {
                    offset: 500,
                    length: if last.is_some() {
                        100
                    } else {
                        ranges::LENGTH_TO_EOF
                    },
                },
            ],
            span: RemoteSpan { first, last },
            remote_total: None,
        });
        expectation
    }

    #[test]
    fn a_ranged_answer_must_be_the_span_asked_for() {
        let answer =
            |lines: &[&str]| plan_body(&head(lines), &ranged_expectation(10, 500, Some(599)));
        assert_eq!(
            answer(&[
                "HTTP/1.1 206 Partial",
                "Content-Range: bytes 500-599/1000",
                "ETag: \"v0\""
            ]),
            BodyPlan::AppendSpan {
                total: Some(110),
                span_end: 110,
                remote_size: Some(1000),
            },
            "the remote file's size comes from the Content-Range"
        );
        assert_eq!(
            answer(&[
                "HTTP/1.1 206 Partial",
                "Content-Range: bytes 500-549/550",
                "ETag: \"v0\""
            ]),
            BodyPlan::Refused(RangeRefusal::BeyondEnd)
        );
        assert_eq!(
            answer(&[
                "HTTP/1.1 206 Partial",
                "Content-Range: bytes 501-599/1000",
                "ETag: \"v0\""
            ]),
            BodyPlan::Mismatch(RestartReason::RangeMismatch)
        );
        assert_eq!(
            answer(&[
                "HTTP/1.1 206 Partial",
                "Content-Range: bytes 500-599/1000",
                "ETag: \"v1\""
            ]),
            BodyPlan::Mismatch(RestartReason::ValidatorChanged),
            "held bytes of another version"
        );
        assert_eq!(
            answer(&["HTTP/1.1 200 OK", "Content-Length: 1000", "ETag: \"v0\""]),
            BodyPlan::Refused(RangeRefusal::Ignored)
        );
        assert_eq!(
            answer(&["HTTP/1.1 200 OK", "Content-Length: 1000", "ETag: \"v1\""]),
            BodyPlan::Mismatch(RestartReason::ValidatorChanged),
            "If-Range gave the new version whole: the ranges start over"
        );
        let to_end = plan_body(
            &head(&[
                "HTTP/1.1 206 Partial",
                "Content-Range: bytes 500-999/1000",
                "ETag: \"v0\"",
            ]),
            &ranged_expectation(10, 500, None),
        );
        assert_eq!(
            to_end,
            BodyPlan::AppendSpan {
                total: Some(510),
                span_end: 510,
                remote_size: Some(1000),
            }
        );
    }

    fn resuming(offset: u64, total: Option<u64>) -> Expectation {
        Expectation {
            offset,
            validator: Validator {
                etag: Some("\"v0\"".into()),
                last_modified: None,
            },
            total,
            ranged: None,
        }
    }

    #[test]
    fn the_last_head_wins_over_redirects() {
        let parsed = head(&[
            "HTTP/1.1 302 Found",
            "Location: /elsewhere",
            "ETag: \"redirect\"",
            "",
            "HTTP/2 200",
            "content-length: 42",
            "ETag: \"v1\"",
            "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT",
            "",
        ]);
        assert_eq!(parsed.status, Some(200));
        assert_eq!(parsed.content_length, Some(42));
        assert_eq!(parsed.validator.etag.as_deref(), Some("\"v1\""));
        assert!(parsed.is_success());
        assert_eq!(parsed.redirect_target(), None);
        let moved = head(&["HTTP/1.1 301 Moved", "Location: http://x/"]);
        assert_eq!(moved.redirect_target(), Some("http://x/"));
    }

    #[test]
    fn content_ranges_parse_strictly() {
        assert_eq!(
            parse_content_range("bytes 100-199/1000"),
            Some(ContentRange::Bytes {
                first: 100,
                last: 199,
                complete: Some(1000)
            })
        );
        assert_eq!(
            parse_content_range("bytes 0-9/*"),
            Some(ContentRange::Bytes {
                first: 0,
                last: 9,
                complete: None
            })
        );
        assert_eq!(
            parse_content_range("bytes */1000"),
            Some(ContentRange::Unsatisfied { complete: 1000 })
        );
        for bad in [
            "items 0-9/10",
            "bytes 9-0/10",
            "bytes 0-10/10",
            "bytes */*",
            "bytes x-9/10",
            "",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_700);
        assert_eq!(
            head(&["HTTP/1.1 503 x", "Retry-After: 120"]).retry_after(now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            head(&[
                "HTTP/1.1 503 x",
                "Retry-After: Sun, 06 Nov 1994 08:49:37 GMT"
            ])
            .retry_after(now),
            Some(Duration::from_secs(77))
        );
        assert_eq!(
            head(&["HTTP/1.1 503 x", "Retry-After: soon"]).retry_after(now),
            None
        );
        assert_eq!(head(&["HTTP/1.1 503 x"]).retry_after(now), None);
    }

    #[test]
    fn a_fresh_download_appends_any_success() {
        let fresh = Expectation::default();
        let ok = head(&["HTTP/1.1 200 OK", "Content-Length: 5"]);
        assert_eq!(plan_body(&ok, &fresh), BodyPlan::Append { total: Some(5) });
        let unknown = head(&["HTTP/1.1 200 OK"]);
        assert_eq!(
            plan_body(&unknown, &fresh),
            BodyPlan::Append { total: None }
        );
        let missing = head(&["HTTP/1.1 404 Not Found", "Content-Length: 5"]);
        assert_eq!(plan_body(&missing, &fresh), BodyPlan::NotContent);
    }

    #[test]
    fn a_matching_partial_answer_is_appended() {
        let partial = head(&[
            "HTTP/1.1 206 Partial Content",
            "Content-Range: bytes 300-999/1000",
            "ETag: \"v0\"",
        ]);
        assert_eq!(
            plan_body(&partial, &resuming(300, Some(1000))),
            BodyPlan::Append { total: Some(1000) }
        );
        assert_eq!(
            plan_body(&partial, &resuming(300, None)),
            BodyPlan::Append { total: Some(1000) }
        );
    }

    #[test]
    fn a_partial_answer_at_another_offset_or_size_is_a_mismatch() {
        let partial = head(&[
            "HTTP/1.1 206 Partial Content",
            "Content-Range: bytes 300-999/1000",
            "ETag: \"v0\"",
        ]);
        assert_eq!(
            plan_body(&partial, &resuming(200, Some(1000))),
            BodyPlan::Mismatch(RestartReason::RangeMismatch)
        );
        assert_eq!(
            plan_body(&partial, &resuming(300, Some(2000))),
            BodyPlan::Mismatch(RestartReason::TotalMismatch)
        );
        assert_eq!(
            plan_body(&partial, &Expectation::default()),
            BodyPlan::Mismatch(RestartReason::RangeMismatch)
        );
        let no_range = head(&["HTTP/1.1 206 Partial Content"]);
        assert_eq!(
            plan_body(&no_range, &resuming(300, Some(1000))),
            BodyPlan::Mismatch(RestartReason::RangeMismatch)
        );
    }

    #[test]
    fn a_partial_answer_needs_a_strong_etag_or_date_equal_to_the_recorded_one() {
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        let recorded = |etag: Option<&str>, last_modified: Option<&str>| Expectation {
            offset: 300,
            validator: Validator {
                etag: etag.map(Box::from),
                last_modified: last_modified.map(Box::from),
            },
            total: Some(1000),
            ranged: None,
        };
        let answer = |extra: &[&str]| {
            let mut lines = vec![
                "HTTP/1.1 206 Partial Content",
                "Content-Range: bytes 300-999/1000",
            ];
            lines.extend_from_slice(extra);
            head(&lines)
        };
        let append = BodyPlan::Append { total: Some(1000) };
        let mismatch = BodyPlan::Mismatch;
        let both = recorded(Some("\"v0\""), Some(date));
        // The same strong tag, or the same date, vouches for the range.
        assert_eq!(plan_body(&answer(&["ETag: \"v0\""]), &both), append);
        let same_date = format!("Last-Modified: {date}");
        assert_eq!(plan_body(&answer(&[&same_date]), &both), append);
        // Another tag or another date is another version, whatever else matches.
        let cases = [
            (answer(&["ETag: \"v1\""]), RestartReason::ValidatorChanged),
            (
                answer(&[
                    "ETag: \"v0\"",
                    "Last-Modified: Mon, 07 Nov 1994 08:49:37 GMT",
                ]),
                RestartReason::ValidatorChanged,
            ),
            (answer(&["ETag: W/\"v1\""]), RestartReason::ValidatorChanged),
            // A weak tag, even one naming our version, vouches for nothing.
            (answer(&["ETag: W/\"v0\""]), RestartReason::WeakValidator),
            // Nothing to compare: the range cannot be trusted.
            (answer(&[]), RestartReason::NoValidator),
        ];
        for (response, reason) in cases {
            assert_eq!(
                plan_body(&response, &both),
                mismatch(reason),
                "{response:?}"
            );
        }
        // Only a date recorded: a new date is a change, an ETag alone proves nothing.
        let dated = recorded(None, Some(date));
        assert_eq!(plan_body(&answer(&[&same_date]), &dated), append);
        assert_eq!(
            plan_body(
                &answer(&["Last-Modified: Mon, 07 Nov 1994 08:49:37 GMT"]),
                &dated
            ),
            mismatch(RestartReason::ValidatorChanged)
        );
        assert_eq!(
            plan_body(&answer(&["ETag: \"v0\""]), &dated),
            mismatch(RestartReason::NoValidator)
        );
    }

    #[test]
    fn a_whole_file_answer_to_a_range_request_restarts_and_says_why() {
        let same = head(&["HTTP/1.1 200 OK", "ETag: \"v0\"", "Content-Length: 1000"]);
        assert_eq!(
            plan_body(&same, &resuming(300, Some(1000))),
            BodyPlan::Restart {
                reason: RestartReason::RangeIgnored,
                total: Some(1000)
            }
        );
        let changed = head(&["HTTP/1.1 200 OK", "ETag: \"v1\"", "Content-Length: 900"]);
        assert_eq!(
            plan_body(&changed, &resuming(300, Some(1000))),
            BodyPlan::Restart {
                reason: RestartReason::ValidatorChanged,
                total: Some(900)
            }
        );
    }

    #[test]
    fn a_416_naming_our_length_means_the_file_is_complete() {
        let done = head(&[
            "HTTP/1.1 416 Range Not Satisfiable",
            "Content-Range: bytes */1000",
        ]);
        assert!(already_complete(&done, &resuming(1000, Some(1000))));
        assert!(already_complete(&done, &resuming(1000, None)));
        assert!(!already_complete(&done, &resuming(999, Some(1000))));
        assert!(!already_complete(&done, &Expectation::default()));
        let other = head(&[
            "HTTP/1.1 416 Range Not Satisfiable",
            "Content-Range: bytes */5",
        ]);
        assert!(!already_complete(&other, &resuming(1000, Some(1000))));
        assert_eq!(
            plan_body(&done, &resuming(1000, Some(1000))),
            BodyPlan::NotContent
        );
    }
}
