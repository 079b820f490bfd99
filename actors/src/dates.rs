//! Calendar arithmetic on day numbers (days since 1970-01-01, UTC).
//!
//! The corpus only needs dates, not times of day, and a plain `i32` day number
//! sorts, subtracts and encodes compactly, so we avoid a date-time dependency.

/// Days since 1970-01-01 (negative before).
pub type Day = i32;

/// Day number of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub fn from_ymd(y: i32, m: u32, d: u32) -> Day {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day number.
pub fn to_ymd(z: Day) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn year_of(day: Day) -> i32 {
    to_ymd(day).0
}

/// `YYYYMMDD-HHMMSS` (UTC) of unix seconds: sortable, safe in file names.
pub fn format_secs_compact(secs: i64) -> String {
    let (y, m, d) = to_ymd(day_of_secs(secs));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}{m:02}{d:02}-{:02}{:02}{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// RFC 3339 in UTC (`2026-12-04T00:15:55Z`) of unix seconds.
pub fn rfc3339(secs: i64) -> String {
    let (y, m, d) = to_ymd(day_of_secs(secs));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// `YYYY-MM-DD`.
pub fn format(day: Day) -> String {
    let (y, m, d) = to_ymd(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses `YYYY-MM-DD`, optionally followed by `T...` (the time part is ignored:
/// forecasts and windows work in whole days). Rejects impossible dates.
pub fn parse(s: &str) -> Option<Day> {
    let s = s.trim();
    let date = s.split(['T', ' ']).next()?;
    let mut parts = date.splitn(3, '-');
    let y: i32 = parse_digits(parts.next()?, 4)?;
    let m: u32 = parse_digits(parts.next()?, 2)?;
    let d: u32 = parse_digits(parts.next()?, 2)?;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(from_ymd(y, m, d))
}

fn parse_digits<T: std::str::FromStr>(s: &str, len: usize) -> Option<T> {
    if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `day` moved by `n` calendar months (negative: back), the day of the month clamped to
/// the target month's end: 2000-01-31 + 1 month is 2000-02-29, 2001-01-31 + 1 is
/// 2001-02-28. Windows counted this way keep their calendar meaning across leap days.
pub fn add_months(day: Day, n: i32) -> Day {
    let (y, m, d) = to_ymd(day);
    let months = y * 12 + (m as i32 - 1) + n;
    let (ty, tm) = (months.div_euclid(12), months.rem_euclid(12) as u32 + 1);
    from_ymd(ty, tm, d.min(days_in_month(ty, tm)))
}

/// The first day of `day`'s year.
pub fn year_start(day: Day) -> Day {
    from_ymd(year_of(day), 1, 1)
}

/// The last day of `day`'s year.
pub fn year_end(day: Day) -> Day {
    from_ymd(year_of(day), 12, 31)
}

/// Seconds after midnight of a `YYYY-MM-DDTHH:MM:SS[Z]` timestamp; `None` without a time.
pub fn parse_time_of_day(s: &str) -> Option<u32> {
    let (_, time) = s.trim().split_once(['T', ' '])?;
    let time = time.trim_end_matches('Z');
    let mut parts = time.splitn(3, ':');
    let h: u32 = parse_digits(parts.next()?, 2)?;
    let m: u32 = parse_digits(parts.next()?, 2)?;
    let sec: u32 = parts.next().map(|x| parse_digits(x.get(..2)?, 2)).unwrap_or(Some(0))?;
    (h < 24 && m < 60 && sec < 61).then_some(h * 3600 + m * 60 + sec.min(59))
}

/// Unix seconds from the system clock (the one place the engine reads it).
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The UTC day holding unix second `secs`.
pub fn day_of_secs(secs: i64) -> Day {
    secs.div_euclid(86_400) as Day
}

/// Today's day number from the system clock.
pub fn today() -> Day {
    day_of_secs(now_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_known_dates() {
        assert_eq!(from_ymd(1970, 1, 1), 0);
        assert_eq!(parse("1997-11-27"), Some(from_ymd(1997, 11, 27)));
        assert_eq!(format(parse("1991-12-31T23:54:17Z").unwrap()), "1991-12-31");
        for day in (-1000..30_000).step_by(7) {
            let (y, m, d) = to_ymd(day);
            assert_eq!(from_ymd(y, m, d), day);
        }
    }

    #[test]
    fn rejects_bad_dates() {
        for bad in ["", "1997", "1997-13-01", "1997-02-30", "97-01-01", "abcd-ef-gh", "1997-1-01"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert!(parse("2000-02-29").is_some());
        assert_eq!(parse_time_of_day("1991-12-31T23:54:17Z"), Some(23 * 3600 + 54 * 60 + 17));
        assert_eq!(parse_time_of_day("1991-12-31"), None);
        assert_eq!(parse_time_of_day("1991-12-31T25:00:00Z"), None);
        assert!(parse("1900-02-29").is_none());
    }

    #[test]
    fn add_months_counts_calendar_months_and_clamps_the_day() {
        let d = |y, m, dd| from_ymd(y, m, dd);
        assert_eq!(add_months(d(2000, 1, 31), 1), d(2000, 2, 29));
        assert_eq!(add_months(d(2001, 1, 31), 1), d(2001, 2, 28));
        assert_eq!(add_months(d(1999, 3, 15), 24), d(2001, 3, 15));
        assert_eq!(add_months(d(1999, 11, 30), 3), d(2000, 2, 29));
        assert_eq!(add_months(d(2000, 2, 29), 12), d(2001, 2, 28));
        assert_eq!(add_months(d(2000, 2, 29), 48), d(2004, 2, 29));
        assert_eq!(add_months(d(2000, 3, 31), -1), d(2000, 2, 29));
        assert_eq!(add_months(d(2000, 1, 15), -13), d(1998, 12, 15));
        assert_eq!(add_months(d(1969, 12, 31), 0), d(1969, 12, 31));
        // Two years from a day in a leap year is 731 days, from other days 730.
        assert_eq!(add_months(d(1999, 7, 1), 24) - d(1999, 7, 1), 731);
        assert_eq!(add_months(d(2001, 7, 1), 24) - d(2001, 7, 1), 730);
        assert_eq!(year_start(d(1996, 7, 1)), d(1996, 1, 1));
        assert_eq!(year_end(d(1996, 7, 1)), d(1996, 12, 31));
    }
}
