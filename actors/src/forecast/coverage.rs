//! What a collection's data covers: the periods in which papers (and so the citations
//! they make) were collected. A forecast or a label needs its whole window inside one
//! covered period; time the data does not cover is unknown, never "nobody cited it".
//!
//! Periods come from the papers' dates: a run of dates without a gap longer than
//! [`Coverage::max_gap`] is one period. The bundled hep-th data is one period from 1992 to
//! 2003-04-30; one unrelated paper dated 2026 adds a second, one-day period and leaves the
//! 23 years between them uncovered.

use serde::{Deserialize, Serialize};

use crate::dates::{self, Day};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// Inclusive day ranges, oldest first, not overlapping.
    pub periods: Vec<(Day, Day)>,
    /// The longest gap between consecutive paper dates still read as one period.
    pub max_gap: Day,
}

/// Shortest gap that ever splits a period: a quarter without papers in a daily source.
const MIN_GAP: Day = 92;
/// A gap this many times the typical (median) gap between dates splits a period.
const GAP_FACTOR: Day = 20;

impl Coverage {
    /// The coverage of papers dated `days` (sorted ascending). With year-only dates
    /// (`year_only`), consecutive years are one period and a missing year splits.
    pub fn of(days: &[Day], year_only: bool) -> Coverage {
        let mut distinct: Vec<Day> = days.to_vec();
        distinct.dedup();
        let max_gap = if year_only {
            366
        } else {
            let mut gaps: Vec<Day> = distinct.windows(2).map(|w| w[1] - w[0]).collect();
            gaps.sort_unstable();
            let median = gaps.get(gaps.len() / 2).copied().unwrap_or(1);
            MIN_GAP.max(median.saturating_mul(GAP_FACTOR))
        };
        let mut periods: Vec<(Day, Day)> = Vec::new();
        for &d in &distinct {
            match periods.last_mut() {
                Some((_, end)) if d - *end <= max_gap => *end = d,
                _ => periods.push((d, d)),
            }
        }
        if year_only {
            // A year-only date stands for its whole year.
            for (start, end) in &mut periods {
                *start = dates::from_ymd(dates::year_of(*start), 1, 1);
                *end = dates::from_ymd(dates::year_of(*end), 12, 31);
            }
        }
        Coverage { periods, max_gap }
    }

    /// The period holding `day`.
    pub fn period_of(&self, day: Day) -> Option<(Day, Day)> {
        self.periods.iter().copied().find(|(s, e)| *s <= day && day <= *e)
    }

    /// Whether every day of `[from, to]` is covered by one period.
    pub fn observed(&self, from: Day, to: Day) -> bool {
        self.period_of(from).is_some_and(|(_, end)| to <= end)
    }

    /// The last day of the data about `day`: the end of the period holding it (`None`
    /// when the data says nothing about that time).
    pub fn complete_until(&self, day: Day) -> Option<Day> {
        self.period_of(day).map(|(_, end)| end)
    }

    /// The periods as text: "1992-01-01..2003-04-30, 2026-11-20..2026-11-20".
    pub fn describe(&self) -> String {
        if self.periods.is_empty() {
            return "no data".into();
        }
        self.periods
            .iter()
            .map(|(s, e)| format!("{}..{}", dates::format(*s), dates::format(*e)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymd(y: i32, m: u32, d: u32) -> Day {
        dates::from_ymd(y, m, d)
    }

    #[test]
    fn a_stray_late_paper_does_not_cover_the_years_before_it() {
        // Daily papers through 2003-04-30, then one in 2026.
        let mut days: Vec<Day> = (ymd(1992, 1, 1)..=ymd(2003, 4, 30)).step_by(2).collect();
        days.push(ymd(2003, 4, 30));
        days.push(ymd(2026, 11, 20));
        let c = Coverage::of(&days, false);
        assert_eq!(c.periods.len(), 2, "{}", c.describe());
        assert_eq!(c.periods[0], (ymd(1992, 1, 1), ymd(2003, 4, 30)));
        // An early forecast of a paper of 2003-04-25 needs data to 2003-10-22: not covered.
        assert!(!c.observed(ymd(2003, 4, 25), ymd(2003, 10, 22)));
        assert!(c.observed(ymd(2000, 1, 1), ymd(2002, 1, 1)));
        assert_eq!(c.complete_until(ymd(2003, 4, 25)), Some(ymd(2003, 4, 30)));
        assert_eq!(c.complete_until(ymd(2010, 1, 1)), None);
    }

    #[test]
    fn year_only_dates_cover_whole_years_and_a_missing_year_splits() {
        let days: Vec<Day> =
            [1995, 1996, 1997, 1999].iter().flat_map(|&y| [ymd(y, 7, 1), ymd(y, 7, 1)]).collect();
        let c = Coverage::of(&days, true);
        assert_eq!(
            c.periods,
            vec![(ymd(1995, 1, 1), ymd(1997, 12, 31)), (ymd(1999, 1, 1), ymd(1999, 12, 31))]
        );
        assert!(c.observed(ymd(1995, 7, 1), ymd(1997, 7, 1)));
        assert!(!c.observed(ymd(1997, 7, 1), ymd(1999, 7, 1)));
    }

    #[test]
    fn a_sparse_source_is_not_split_by_its_usual_gaps() {
        // One paper a month for ten years: gaps of ~30 days are the norm.
        let days: Vec<Day> = (0..120).map(|i| ymd(2000 + i / 12, (i % 12) as u32 + 1, 15)).collect();
        assert_eq!(Coverage::of(&days, false).periods.len(), 1);
        assert!(Coverage::of(&[], false).periods.is_empty());
    }
}
