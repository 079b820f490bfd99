//! The newsletter's public track record: what became of each pick of a past issue, and
//! how often the picks marked high did reach their year's top 10 %. Plain logic over the
//! forecasts' outcomes; the pages (`routes`) look the outcomes up.
//!
//! An outcome is known once the paper's two-year window is in the data. Until then the
//! pick is waiting, said in words with the day it will be known, and it is never counted
//! as a miss: a hit rate is hits among the high picks whose outcome is known.

use citecast_actors::dates;
use citecast_actors::forecast::service::Outcome;
use citecast_actors::forecast::task::LABEL_WINDOW;

/// What became of one pick, as far as the data tells.
#[derive(Debug, Clone, PartialEq)]
pub enum Fate {
    /// Its two-year window is in the data: it did or did not reach the top 10 %.
    Known(Outcome),
    /// Not yet known: its window ends on `until` (`None` when its submission day is
    /// unreadable).
    Pending { until: Option<String> },
    /// Could not be looked up just now (the models are warming up, the engine did not
    /// answer, the paper is no longer in the data). Neither a hit nor a miss.
    Unchecked,
}

impl Fate {
    /// The fate told by a forecast's `outcome` (`None`: not in the data yet) for a paper
    /// submitted on `submitted` (`YYYY-MM-DD`).
    pub fn from_outcome(outcome: Option<Outcome>, submitted: &str) -> Fate {
        match outcome {
            Some(o) => Fate::Known(o),
            None => Fate::Pending { until: window_end(submitted) },
        }
    }

    /// Whether it reached its year's top 10 %, once known.
    pub fn reached(&self) -> Option<bool> {
        match self {
            Fate::Known(o) => Some(o.reached_top_10_percent),
            _ => None,
        }
    }

    /// The fate in words, for the pages: "reached its year's top 10 %: 47 citations in
    /// its two years to 2003-05-01 (it needed 30)", "not known until 2005-04-30".
    pub fn in_words(&self) -> String {
        match self {
            Fate::Known(o) => {
                let reached = if o.reached_top_10_percent { "reached" } else { "did not reach" };
                let needed =
                    o.top_10_percent_needed.map(|n| format!(" (it needed {n:.0})")).unwrap_or_default();
                let n = o.citations_in_window;
                let citations = if n == 1 { "citation" } else { "citations" };
                format!(
                    "{reached} its year's top 10 %: {n} {citations} in its two years to {}{needed}",
                    o.window_ends
                )
            }
            Fate::Pending { until: Some(day) } => format!("not known until {day}"),
            Fate::Pending { until: None } => "not known yet".to_string(),
            Fate::Unchecked => "cannot be checked just now; reload in a minute".to_string(),
        }
    }

    /// A short class for styling: `hit`, `miss` or `open`.
    pub fn class(&self) -> &'static str {
        match self.reached() {
            Some(true) => "hit",
            Some(false) => "miss",
            None => "open",
        }
    }
}

/// The last day of the two-year window of a paper submitted on `submitted`: the day its
/// outcome becomes known.
pub fn window_end(submitted: &str) -> Option<String> {
    dates::parse(submitted).map(|day| dates::format(day + LABEL_WINDOW))
}

/// How the picks marked high fared: of those whose outcome is known, how many reached the
/// top 10 %; and how many are still waiting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// High picks whose outcome is known.
    pub known: u32,
    /// Of those, the ones that reached their year's top 10 %.
    pub hits: u32,
    /// High picks whose outcome is not in the data yet.
    pub pending: u32,
    /// High picks whose outcome could not be looked up just now.
    pub unchecked: u32,
}

impl Tally {
    /// The tally of one issue's picks: each pick's label when the issue was built
    /// (`high` or `low`) and its fate. Only picks marked high count.
    pub fn of<'a>(picks: impl IntoIterator<Item = (&'a str, &'a Fate)>) -> Tally {
        let mut t = Tally::default();
        for (label, fate) in picks {
            if label != "high" {
                continue;
            }
            match fate {
                Fate::Known(o) => {
                    t.known += 1;
                    t.hits += u32::from(o.reached_top_10_percent);
                }
                Fate::Pending { .. } => t.pending += 1,
                Fate::Unchecked => t.unchecked += 1,
            }
        }
        t
    }

    /// Both tallies together.
    pub fn plus(self, other: Tally) -> Tally {
        Tally {
            known: self.known + other.known,
            hits: self.hits + other.hits,
            pending: self.pending + other.pending,
            unchecked: self.unchecked + other.unchecked,
        }
    }

    /// Hits among the known high picks, when any is known.
    pub fn rate(&self) -> Option<f64> {
        (self.known > 0).then(|| f64::from(self.hits) / f64::from(self.known))
    }

    /// In words: "3 of 4 known (75 %), 2 not known yet", "none of 2 known yet".
    pub fn in_words(&self) -> String {
        let mut words = match self.rate() {
            Some(rate) => format!("{} of {} known ({:.0} %)", self.hits, self.known, rate * 100.0),
            None if self.pending + self.unchecked == 0 => return "no pick marked high".to_string(),
            None => return format!("none of {} known yet", self.pending + self.unchecked),
        };
        if self.pending > 0 {
            words.push_str(&format!(", {} not known yet", self.pending));
        }
        if self.unchecked > 0 {
            words.push_str(&format!(", {} not checked just now", self.unchecked));
        }
        words
    }
}

/// The running tally after each issue: `per_issue` oldest first, each answer the sum of
/// that issue's tally and every earlier one's.
pub fn running(per_issue: &[Tally]) -> Vec<Tally> {
    per_issue
        .iter()
        .scan(Tally::default(), |sum, t| {
            *sum = sum.plus(*t);
            Some(*sum)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(reached: bool) -> Fate {
        Fate::Known(Outcome {
            citations_in_window: if reached { 47 } else { 3 },
            window_ends: "2003-05-01".into(),
            top_10_percent_needed: Some(30.0),
            reached_top_10_percent: reached,
        })
    }

    #[test]
    fn fates_are_told_in_words_and_waiting_ones_say_when_they_will_be_known() {
        assert_eq!(
            known(true).in_words(),
            "reached its year's top 10 %: 47 citations in its two years to 2003-05-01 (it needed 30)"
        );
        assert!(known(false).in_words().starts_with("did not reach"));
        let waiting = Fate::from_outcome(None, "2003-04-30");
        assert_eq!(waiting, Fate::Pending { until: Some("2005-04-29".into()) });
        assert_eq!(waiting.in_words(), "not known until 2005-04-29");
        assert_eq!(waiting.reached(), None);
        assert_eq!(Fate::from_outcome(None, "soon").in_words(), "not known yet");
        assert_eq!((known(true).class(), known(false).class(), waiting.class()), ("hit", "miss", "open"));
    }

    #[test]
    fn only_high_picks_with_known_outcomes_count_and_waiting_ones_are_no_misses() {
        let picks = [
            ("high", known(true)),
            ("high", known(true)),
            ("high", known(false)),
            ("high", known(true)),
            ("high", Fate::Pending { until: Some("2005-04-30".into()) }),
            ("high", Fate::Pending { until: None }),
            ("high", Fate::Unchecked),
            // Low picks do not count either way.
            ("low", known(true)),
            ("low", known(false)),
        ];
        let t = Tally::of(picks.iter().map(|(l, f)| (*l, f)));
        assert_eq!(t, Tally { known: 4, hits: 3, pending: 2, unchecked: 1 });
        assert_eq!(t.rate(), Some(0.75));
        assert_eq!(t.in_words(), "3 of 4 known (75 %), 2 not known yet, 1 not checked just now");

        let waiting = Tally::of([("high", &Fate::Pending { until: None })]);
        assert_eq!(waiting.rate(), None);
        assert_eq!(waiting.in_words(), "none of 1 known yet");
        assert_eq!(Tally::of([("low", &known(true))]).in_words(), "no pick marked high");
    }

    #[test]
    fn the_running_tally_adds_each_issue_to_the_earlier_ones() {
        let a = Tally { known: 2, hits: 1, pending: 0, unchecked: 0 };
        let b = Tally { known: 0, hits: 0, pending: 3, unchecked: 0 };
        let c = Tally { known: 2, hits: 2, pending: 1, unchecked: 1 };
        let run = running(&[a, b, c]);
        assert_eq!(run[0], a);
        assert_eq!(run[1], Tally { known: 2, hits: 1, pending: 3, unchecked: 0 });
        assert_eq!(run[2], Tally { known: 4, hits: 3, pending: 4, unchecked: 1 });
        assert_eq!(run[2].in_words(), "3 of 4 known (75 %), 4 not known yet, 1 not checked just now");
        assert!(running(&[]).is_empty());
    }
}
