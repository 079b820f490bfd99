//! The forecasting task, fixed so every figure is comparable: what "high impact"
//! means, the two forecast modes, and the time-based split.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::corpus::{Corpus, PaperNo};
use crate::dates::{self, Day};

/// Citations counted for the label: those dated at most this many days after submission.
pub const LABEL_WINDOW: Day = 730;
/// "High impact": at or above this quantile of the label count among same-year papers.
pub const LABEL_QUANTILE: f64 = 0.9;
/// Days after submission the `early` mode waits for.
pub const EARLY_DAYS: Day = 182;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// As of the submission day: nothing dated later is used.
    AtPublication,
    /// As of 182 days after submission: adds the paper's first six months of citations.
    Early,
}

impl Mode {
    pub const ALL: [Mode; 2] = [Mode::AtPublication, Mode::Early];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::AtPublication => "at_publication",
            Mode::Early => "early",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "at_publication" => Some(Mode::AtPublication),
            "early" => Some(Mode::Early),
            _ => None,
        }
    }

    /// The date a forecast for a paper submitted on `t0` is made as of.
    pub fn as_of(self, t0: Day) -> Day {
        match self {
            Mode::AtPublication => t0,
            Mode::Early => t0 + EARLY_DAYS,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Train,
    Validation,
    Test,
}

/// Train 1992-1998, validation 1999, test 2000-01-01..2001-04-30; others unlabelled.
pub fn split_of(day: Day) -> Option<Split> {
    let year = dates::year_of(day);
    match year {
        1992..=1998 => Some(Split::Train),
        1999 => Some(Split::Validation),
        _ if day >= dates::from_ymd(2000, 1, 1) && day <= last_labelled_day() => Some(Split::Test),
        _ => None,
    }
}

/// The last submission day with a full 730-day window in the bundled data.
pub fn last_labelled_day() -> Day {
    dates::from_ymd(2001, 4, 30)
}

/// Labels of every paper submitted by [`last_labelled_day`], with the per-year thresholds.
#[derive(Debug, Clone)]
pub struct Labels {
    /// `None` for papers without a full window.
    pub label: Vec<Option<bool>>,
    pub count: Vec<u32>,
    pub thresholds: BTreeMap<i32, f64>,
}

/// numpy's default ("linear") quantile of sorted values.
pub fn quantile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] as f64 + (sorted[hi] as f64 - sorted[lo] as f64) * (pos - lo as f64)
}

impl Labels {
    pub fn compute(corpus: &Corpus) -> Labels {
        let n = corpus.len();
        let last = last_labelled_day();
        // Every citation dated at most 730 days after t0 counts, including the few dated
        // before t0 (they come from later revisions of the citing paper).
        let count: Vec<u32> = (0..n)
            .map(|p| {
                let t0 = corpus.day[p];
                corpus.cited_by[p].partition_point(|(d, _)| *d <= t0 + LABEL_WINDOW) as u32
            })
            .collect();
        let mut by_year: BTreeMap<i32, Vec<u32>> = BTreeMap::new();
        for (&day, &c) in corpus.day.iter().zip(&count) {
            if day <= last {
                by_year.entry(dates::year_of(day)).or_default().push(c);
            }
        }
        let thresholds: BTreeMap<i32, f64> = by_year
            .into_iter()
            .map(|(y, mut c)| {
                c.sort_unstable();
                (y, quantile(&c, LABEL_QUANTILE))
            })
            .collect();
        let label = (0..n)
            .map(|p| {
                let day = corpus.day[p];
                (day <= last).then(|| count[p] as f64 >= thresholds[&dates::year_of(day)])
            })
            .collect();
        Labels { label, count, thresholds }
    }

    /// Labelled papers of one split, in date order.
    pub fn papers_in(&self, corpus: &Corpus, split: Split) -> Vec<PaperNo> {
        (0..corpus.len())
            .filter(|&p| self.label[p].is_some() && split_of(corpus.day[p]) == Some(split))
            .map(|p| p as PaperNo)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_matches_numpy_linear() {
        // np.quantile([0,1,2,3,10], 0.9) == 7.2
        assert!((quantile(&[0, 1, 2, 3, 10], 0.9) - 7.2).abs() < 1e-12);
        assert_eq!(quantile(&[5], 0.9), 5.0);
    }

    #[test]
    fn splits_follow_the_task() {
        assert_eq!(split_of(dates::from_ymd(1992, 1, 1)), Some(Split::Train));
        assert_eq!(split_of(dates::from_ymd(1999, 12, 31)), Some(Split::Validation));
        assert_eq!(split_of(dates::from_ymd(2001, 4, 30)), Some(Split::Test));
        assert_eq!(split_of(dates::from_ymd(2001, 5, 1)), None);
        assert_eq!(split_of(dates::from_ymd(1991, 12, 31)), None);
    }
}
