//! IMF-fixdate formatting (RFC 9110 §5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
//!
//! Only formatting is needed: an If-Range date matches only when it is byte-for-byte the
//! Last-Modified the server sent, so the server never parses dates.

use std::time::{SystemTime, UNIX_EPOCH};

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `unix_secs` (seconds since 1970-01-01T00:00:00Z) as an HTTP date.
pub(crate) fn format_http_date(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let second_of_day = unix_secs % 86_400;
    // WEEKDAYS starts on Thursday because 1970-01-01 was one.
    let weekday = WEEKDAYS[usize::try_from(days % 7).expect("below 7")];
    let (year, month_index, day_of_month) = civil_date(days);
    format!(
        "{weekday}, {day_of_month:02} {} {year} {:02}:{:02}:{:02} GMT",
        MONTHS[month_index],
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// The current time as an HTTP date, for the Date header.
pub(crate) fn now_http_date() -> String {
    let unix_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since_epoch| since_epoch.as_secs());
    format_http_date(unix_secs)
}

fn is_leap_year(year: u64) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// (year, month index 0..12, day of month 1..) of the day `days` after 1970-01-01.
fn civil_date(mut days: u64) -> (u64, usize, u64) {
    let mut year = 1970;
    loop {
        let days_in_year = if is_leap_year(year) { 366 } else { 365 };
        if days < days_in_year {
            break;
        }
        days -= days_in_year;
        year += 1;
    }
    let february = if is_leap_year(year) { 29 } else { 28 };
    let month_lengths = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut month_index = 0;
    while days >= month_lengths[month_index] {
        days -= month_lengths[month_index];
        month_index += 1;
    }
    (year, month_index, days + 1)
}

#[cfg(test)]
mod tests {
    use super::format_http_date;

    #[test]
    fn formats_known_dates() {
        assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            format_http_date(784_111_777),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        // 2000 is a leap year (divisible by 400), 2100 is not.
        assert_eq!(
            format_http_date(951_782_400),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            format_http_date(4_107_542_400),
            "Mon, 01 Mar 2100 00:00:00 GMT"
        );
        assert_eq!(
            format_http_date(1_704_067_199),
            "Sun, 31 Dec 2023 23:59:59 GMT"
        );
    }
}
