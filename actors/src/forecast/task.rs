//! The forecasting task, fixed per model so every figure is comparable: what "high
//! impact" means, the two forecast modes, the as-of dates and the time-based split.
//! [`TaskSpec::bundled`] is the task of the bundled hep-th snapshot (and of the shipped
//! models); [`TaskSpec::derive`] reads one from any corpus, day- or year-dated.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::corpus::{Corpus, PaperNo};
use crate::dates::{self, Day};

/// The bundled task's label window: citations dated at most this many days after submission.
pub const LABEL_WINDOW: Day = 730;
/// "High impact": at or above this quantile of the label count among same-year papers.
pub const LABEL_QUANTILE: f64 = 0.9;
/// Days after submission the `early` mode waits for in the bundled task.
pub const EARLY_DAYS: Day = 182;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// As of the submission day: nothing dated later is used.
    AtPublication,
    /// As of the end of the early wait (182 days in the bundled task): adds the paper's
    /// first citations.
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

    /// The date a forecast for a paper submitted on `t0` is made as of, in the bundled
    /// task ([`TaskSpec::as_of`] for any task).
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

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];

    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }
}

/// The bundled task's split: train 1992-1998, validation 1999, test
/// 2000-01-01..2001-04-30; others unlabelled. [`TaskSpec::split_of`] for any task.
pub fn split_of(day: Day) -> Option<Split> {
    TaskSpec::bundled().split_of(day)
}

/// The last submission day with a full 730-day window in the bundled data.
pub fn last_labelled_day() -> Day {
    dates::from_ymd(2001, 4, 30)
}

/// How precisely the corpus dates its papers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Papers carry their submission day.
    Day,
    /// Papers carry only their year (stored on one and the same month-day): windows
    /// count whole years, and nothing dated in a paper's own year is known at its
    /// publication (the order within a year is unknown).
    Year,
}

/// A span of time after a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Span {
    /// A fixed number of days (the bundled task's 730 and 182).
    Days(i32),
    /// Calendar months, the day clamped to the month's end (no drift with leap days).
    Months(i32),
}

impl Span {
    /// The last day of the span starting on `day`.
    pub fn after(self, day: Day) -> Day {
        match self {
            Span::Days(n) => day + n,
            Span::Months(n) => dates::add_months(day, n),
        }
    }

    /// Whole years the span covers (24 months: 2), for year-resolution windows.
    pub fn whole_years(self) -> i32 {
        match self {
            Span::Days(n) => n / 365,
            Span::Months(n) => n.div_euclid(12),
        }
    }

    fn describe(self) -> String {
        match self {
            Span::Days(n) => format!("{n}-day"),
            Span::Months(n) => format!("{n}-month"),
        }
    }
}

/// Days from `from` to `to`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub from: Day,
    pub to: Day,
}

impl Period {
    pub fn contains(&self, day: Day) -> bool {
        self.from <= day && day <= self.to
    }

    /// Calendar months from the start to the day after the end (at least 1).
    pub fn months(&self) -> i32 {
        let (y0, m0, _) = dates::to_ymd(self.from);
        let (y1, m1, _) = dates::to_ymd(self.to + 1);
        ((y1 - y0) * 12 + m1 as i32 - m0 as i32).max(1)
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}..{}", dates::format(self.from), dates::format(self.to))
    }
}

/// `day` moved by `n` months, keeping a month's last day its last day (2001-04-30 back
/// 12 months is 2000-04-30, 2000-02-29 back 12 is 1999-02-28).
fn month_end_shift(day: Day, n: i32) -> Day {
    if dates::to_ymd(day + 1).2 == 1 {
        dates::add_months(day + 1, n) - 1
    } else {
        dates::add_months(day, n)
    }
}

/// The forecasting task over one corpus: what "high impact" means, the as-of dates of
/// the two modes, the cohort served ranks are taken in, and the time-based split. Every
/// feature, label and figure is computed through one spec, so a model is judged on the
/// same task it was trained for; models saved without one use [`TaskSpec::bundled`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub resolution: Resolution,
    /// Citations counted for the label: those dated within this span after submission.
    pub label_window: Span,
    /// What the `early` mode waits for after submission.
    pub early_wait: Span,
    /// Days of papers before a paper's date its served score is ranked among.
    pub cohort_days: Day,
    /// "High impact": at or above this quantile of the label count among same-year papers.
    pub label_quantile: f64,
    pub train: Period,
    pub validation: Period,
    pub test: Period,
    /// The last submission day whose label window lies inside the data.
    pub last_labelled: Day,
}

/// How [`TaskSpec::derive`] reads a corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskOptions {
    /// Calendar months of citations the label counts.
    pub label_months: i32,
    /// Calendar months the `early` mode waits.
    pub early_months: i32,
    /// Length of the test period (the last fully labelled months), and of validation
    /// (the months before it); with year-resolution data whole years of them.
    pub test_months: i32,
    pub validation_months: i32,
    /// Training starts here (default: the first paper).
    pub train_from: Option<Day>,
    /// Training needs at least this many months of papers.
    pub min_train_months: i32,
    /// Each split needs at least this many high-impact papers.
    pub min_positives: usize,
    pub label_quantile: f64,
}

impl Default for TaskOptions {
    fn default() -> Self {
        TaskOptions {
            label_months: 24,
            early_months: 6,
            test_months: 12,
            validation_months: 12,
            train_from: None,
            min_train_months: 12,
            min_positives: 5,
            label_quantile: LABEL_QUANTILE,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskError {
    #[error("the corpus is empty: there is nothing to train on")]
    Empty,
    /// The data is shorter than the label window and the three periods need (the
    /// message names the span found and each part needed).
    #[error("{0}")]
    TooLittleData(String),
    #[error(
        "the {split} period {period} has {positives} high-impact papers out of {papers}; at least \
         {needed} are needed to fit and judge a model"
    )]
    TooFewPositives { split: &'static str, period: String, papers: usize, positives: usize, needed: usize },
    #[error("invalid task options: {0}")]
    Invalid(String),
}

impl TaskSpec {
    /// The task the bundled hep-th snapshot and the shipped models were made for: 730-day
    /// label window, 182-day early wait and cohort, train 1992-1998, validation 1999, test
    /// 2000-01-01..2001-04-30.
    pub fn bundled() -> TaskSpec {
        TaskSpec {
            resolution: Resolution::Day,
            label_window: Span::Days(LABEL_WINDOW),
            early_wait: Span::Days(EARLY_DAYS),
            cohort_days: super::cohort::WINDOW_DAYS,
            label_quantile: LABEL_QUANTILE,
            train: Period { from: dates::from_ymd(1992, 1, 1), to: dates::from_ymd(1998, 12, 31) },
            validation: Period { from: dates::from_ymd(1999, 1, 1), to: dates::from_ymd(1999, 12, 31) },
            test: Period { from: dates::from_ymd(2000, 1, 1), to: last_labelled_day() },
            last_labelled: last_labelled_day(),
        }
    }

    /// The date resolution of a corpus: [`Resolution::Year`] when every paper falls on
    /// one and the same month-day and the papers span at least two years.
    pub fn resolution_of(corpus: &Corpus) -> Resolution {
        let (Some(&first), Some(&last)) = (corpus.day.first(), corpus.day.last()) else {
            return Resolution::Day;
        };
        let (_, m, d) = dates::to_ymd(first);
        let same = corpus.day.iter().all(|&x| {
            let (_, m2, d2) = dates::to_ymd(x);
            (m2, d2) == (m, d)
        });
        if same && dates::year_of(last) > dates::year_of(first) {
            Resolution::Year
        } else {
            Resolution::Day
        }
    }

    /// The task a corpus supports: its date resolution, label window and early wait from
    /// `opts`, the test period the last fully labelled months, validation the months
    /// before, training everything earlier. Refuses data too short for the three periods
    /// and splits with too few high-impact papers.
    pub fn derive(corpus: &Corpus, opts: &TaskOptions) -> Result<TaskSpec, TaskError> {
        if opts.label_months < 1
            || opts.early_months < 1
            || opts.early_months > opts.label_months
            || opts.test_months < 1
            || opts.validation_months < 1
            || !(0.0..1.0).contains(&opts.label_quantile)
        {
            return Err(TaskError::Invalid(format!(
                "label_months {}, early_months {} (1..=label_months), test_months {}, validation_months {} \
                 must be positive and label_quantile {} in [0, 1)",
                opts.label_months,
                opts.early_months,
                opts.test_months,
                opts.validation_months,
                opts.label_quantile
            )));
        }
        let (Some(&first), Some(&last)) = (corpus.day.first(), corpus.day.last()) else {
            return Err(TaskError::Empty);
        };
        let resolution = Self::resolution_of(corpus);
        let year = resolution == Resolution::Year;
        let mut spec = TaskSpec {
            resolution,
            label_window: Span::Months(opts.label_months),
            early_wait: Span::Months(opts.early_months),
            cohort_days: if year { 366 } else { super::cohort::WINDOW_DAYS },
            label_quantile: opts.label_quantile,
            train: Period { from: first, to: first },
            validation: Period { from: first, to: first },
            test: Period { from: first, to: first },
            last_labelled: first,
        };
        // What the data covers: a stray paper far after the rest adds a period of its own,
        // never years of "nobody cited anything". The task lives in the latest covered
        // period long enough to hold it.
        let coverage = super::coverage::Coverage::of(&corpus.day, year);
        let covers = if year && coverage.periods.len() <= 1 {
            format!("{}–{}", dates::year_of(first), dates::year_of(last))
        } else if coverage.periods.len() <= 1 {
            format!("{} to {}", dates::format(first), dates::format(last))
        } else {
            format!("the periods {}", coverage.describe())
        };
        // With year-resolution data every period is whole years.
        let (test_m, val_m, train_m) = if year {
            let whole = |m: i32| m.div_euclid(12).max(1) * 12;
            (whole(opts.test_months), whole(opts.validation_months), whole(opts.min_train_months))
        } else {
            (opts.test_months, opts.validation_months, opts.min_train_months.max(1))
        };
        let too_little = || {
            let (unit, k) = if year { ("years", 12) } else { ("months", 1) };
            let label = if year { spec.label_window.whole_years() * 12 } else { opts.label_months };
            TaskError::TooLittleData(format!(
                "the data covers {covers}; a {} label window needs data spanning at least {} {unit}: \
                 {} {unit} of training, {} {unit} of validation and {} {unit} of test papers, and \
                 the window after the last of them",
                spec.label_window.describe(),
                (train_m + val_m + test_m + label) / k,
                train_m / k,
                val_m / k,
                test_m / k,
            ))
        };
        let mut found = None;
        for &(start, end) in coverage.periods.iter().rev() {
            let data_end = if year { dates::year_end(end) } else { end };
            // The latest paper day of the period whose whole label window is in it.
            let Some(last_labelled) = corpus
                .day
                .iter()
                .rev()
                .copied()
                .filter(|&d| d >= start && d <= end)
                .find(|&d| spec.label_end(d) <= data_end)
            else {
                continue;
            };
            let last_labelled = if year { dates::year_end(last_labelled) } else { last_labelled };
            let test = Period { from: dates::add_months(last_labelled + 1, -test_m), to: last_labelled };
            let validation = Period { from: dates::add_months(test.from, -val_m), to: test.from - 1 };
            let train_from = opts.train_from.unwrap_or(start).max(start);
            let train = Period {
                from: if year { dates::year_start(train_from) } else { train_from },
                to: validation.from - 1,
            };
            if dates::add_months(train.from, train_m) <= train.to + 1 {
                found = Some((train, validation, test, last_labelled));
                break;
            }
        }
        let (train, validation, test, last_labelled) = found.ok_or_else(too_little)?;
        spec.train = train;
        spec.validation = validation;
        spec.test = test;
        spec.last_labelled = last_labelled;
        spec.check_positives(corpus, opts.min_positives)?;
        Ok(spec)
    }

    /// Refuses a spec with a split holding fewer than `needed` labelled papers or
    /// high-impact papers.
    pub fn check_positives(&self, corpus: &Corpus, needed: usize) -> Result<(), TaskError> {
        let labels = Labels::compute(corpus, self);
        for split in Split::ALL {
            let papers = labels.papers_in(corpus, self, split);
            let positives = papers.iter().filter(|&&p| labels.label[p as usize] == Some(true)).count();
            if positives < needed {
                return Err(TaskError::TooFewPositives {
                    split: split.as_str(),
                    period: self.period(split).to_string(),
                    papers: papers.len(),
                    positives,
                    needed,
                });
            }
        }
        Ok(())
    }

    pub fn period(&self, split: Split) -> Period {
        match split {
            Split::Train => self.train,
            Split::Validation => self.validation,
            Split::Test => self.test,
        }
    }

    /// The split a paper submitted on `day` belongs to (`None`: unlabelled or outside).
    pub fn split_of(&self, day: Day) -> Option<Split> {
        if day > self.last_labelled {
            return None;
        }
        Split::ALL.into_iter().find(|&s| self.period(s).contains(day))
    }

    /// The last day the corpus holds data for: its latest paper's day, or with year
    /// resolution the end of that paper's year.
    pub fn data_end(&self, corpus: &Corpus) -> Option<Day> {
        corpus.last_day().map(|d| match self.resolution {
            Resolution::Day => d,
            Resolution::Year => dates::year_end(d),
        })
    }

    /// The last citing day the label of a paper submitted on `t0` counts.
    pub fn label_end(&self, t0: Day) -> Day {
        match self.resolution {
            Resolution::Day => self.label_window.after(t0),
            Resolution::Year => year_end_of(dates::year_of(t0) + self.label_window.whole_years()),
        }
    }

    /// The end of the early wait of a paper submitted on `t0` (with year resolution,
    /// the end of its first year).
    pub fn early_end(&self, t0: Day) -> Day {
        match self.resolution {
            Resolution::Day => self.early_wait.after(t0),
            Resolution::Year => year_end_of(dates::year_of(t0) + self.early_wait.whole_years()),
        }
    }

    /// The last day whose data a forecast for a paper submitted on `t0` may read: the day
    /// before for `at_publication` (with year resolution, the end of the year before),
    /// the end of the early wait for `early`.
    pub fn cutoff(&self, mode: Mode, t0: Day) -> Day {
        match (mode, self.resolution) {
            (Mode::AtPublication, Resolution::Day) => t0 - 1,
            (Mode::AtPublication, Resolution::Year) => dates::year_start(t0) - 1,
            (Mode::Early, _) => self.early_end(t0),
        }
    }

    /// The date a forecast is made as of, as shown to people.
    pub fn as_of(&self, mode: Mode, t0: Day) -> Day {
        match mode {
            Mode::AtPublication => t0,
            Mode::Early => self.early_end(t0),
        }
    }

    /// The day from which a paper's label is public: the label windows of every paper of
    /// its year have closed (thresholds are per year).
    pub fn label_known(&self, day: Day) -> Day {
        self.label_end(dates::year_end(day)) + 1
    }

    /// Days a "year before" look-back spans: 365, or 366 with year resolution so the
    /// previous year is always inside whatever the leap days.
    pub fn year_days(&self) -> Day {
        match self.resolution {
            Resolution::Day => 365,
            Resolution::Year => 366,
        }
    }

    /// Years from `from` to `to`: days / 365, or whole calendar years with year resolution.
    pub fn years_between(&self, from: Day, to: Day) -> f64 {
        match self.resolution {
            Resolution::Day => (to - from) as f64 / 365.0,
            Resolution::Year => (dates::year_of(to) - dates::year_of(from)) as f64,
        }
    }

    /// The length of the test period in calendar months (rounded to whole months).
    pub fn test_months(&self) -> i32 {
        self.test.months()
    }

    /// The task as it stood `months` earlier: the last labelled day moved back (a month's
    /// last day stays its last day), test and validation as long as before and right
    /// before it, training ending where validation starts (its start kept). The periods
    /// stay contiguous whatever the leap days.
    pub fn shifted_back(&self, months: i32) -> TaskSpec {
        let last_labelled = month_end_shift(self.last_labelled, -months);
        let test =
            Period { from: dates::add_months(last_labelled + 1, -self.test.months()), to: last_labelled };
        let validation =
            Period { from: dates::add_months(test.from, -self.validation.months()), to: test.from - 1 };
        TaskSpec {
            train: Period { from: self.train.from, to: validation.from - 1 },
            validation,
            test,
            last_labelled,
            ..self.clone()
        }
    }

    /// A short text of the periods, for model cards.
    pub fn describe(&self) -> String {
        format!(
            "{:?} resolution, {} label window, {} early wait; train {}, validation {}, test {}",
            self.resolution,
            self.label_window.describe(),
            self.early_wait.describe(),
            self.train,
            self.validation,
            self.test
        )
    }
}

fn year_end_of(year: i32) -> Day {
    dates::from_ymd(year, 12, 31)
}

/// Labels of every paper submitted by the task's last labelled day, with the per-year
/// thresholds.
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
    pub fn compute(corpus: &Corpus, spec: &TaskSpec) -> Labels {
        let n = corpus.len();
        let last = spec.last_labelled;
        // Every citation dated by the end of the label window counts, including the few
        // dated before t0 (they come from later revisions of the citing paper).
        let count: Vec<u32> = (0..n)
            .map(|p| {
                let end = spec.label_end(corpus.day[p]);
                corpus.cited_by[p].partition_point(|(d, _)| *d <= end) as u32
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
                (y, quantile(&c, spec.label_quantile))
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
    pub fn papers_in(&self, corpus: &Corpus, spec: &TaskSpec, split: Split) -> Vec<PaperNo> {
        (0..corpus.len())
            .filter(|&p| self.label[p].is_some() && spec.split_of(corpus.day[p]) == Some(split))
            .map(|p| p as PaperNo)
            .collect()
    }
}

/// Small synthetic corpora for tests (here, in `train`, `backtest` and
/// `tests/leakage.rs`): non-arXiv ids (`10.1234/abc-17`), authors of whom some are
/// "stars" whose papers draw most citations (so authors' records predict the label),
/// references to recent papers, titles from a small vocabulary. Deterministic.
#[doc(hidden)]
pub mod synthetic {
    use super::super::corpus::Corpus;
    use super::super::metrics::SplitMix;
    use crate::dates::{self, Day};
    use crate::records::{AuthorRef, Citation, Paper};

    /// Papers dated `days` (one paper per entry, any order).
    pub fn corpus_on(days: &[Day], seed: u64) -> Corpus {
        let mut days = days.to_vec();
        days.sort_unstable();
        let mut rng = SplitMix(seed);
        let words = [
            "gauge", "string", "brane", "lattice", "flow", "duality", "entropy", "vacuum", "soliton",
            "anomaly",
        ];
        let n = days.len();
        let mut papers = Vec::with_capacity(n);
        let mut star = Vec::with_capacity(n);
        for (i, &day) in days.iter().enumerate() {
            let k = 1 + rng.below(3);
            let mut authors = Vec::new();
            let mut is_star = false;
            for _ in 0..k {
                let a = rng.below(60);
                is_star |= a < 6;
                let key = format!("author{a}");
                if !authors.iter().any(|x: &AuthorRef| x.key == key) {
                    authors.push(AuthorRef { raw: key.clone(), display: key.clone(), key });
                }
            }
            star.push(is_star);
            let (w1, w2) = (words[rng.below(words.len())], words[rng.below(words.len())]);
            papers.push(Paper {
                id: format!("10.1234/abc-{i}"),
                aliases: vec![],
                title: format!("{w1} {w2} and the {} problem", words[i % words.len()]),
                authors,
                submitted: day,
                submitted_secs: None,
                revised: vec![],
                abstract_text: format!(
                    "we study {w1} with {w2} in a {} setting",
                    words[(i / 3) % words.len()]
                ),
                subject: None,
                journal_ref: None,
                comments: None,
                report_no: None,
            });
        }
        // Each paper cites up to 6 papers of the three years up to its day, a star's
        // paper ten times as likely as another.
        let mut citations = Vec::new();
        for i in 0..n {
            let lo = days.partition_point(|&d| d < days[i] - 3 * 366);
            let pool: Vec<usize> = (lo..i).collect();
            if pool.is_empty() {
                continue;
            }
            let weight = |q: usize| if star[q] { 10.0 } else { 1.0 };
            let total: f64 = pool.iter().map(|&q| weight(q)).sum();
            for _ in 0..6 {
                let mut x = rng.unit() * total;
                let mut pick = pool[pool.len() - 1];
                for &q in &pool {
                    x -= weight(q);
                    if x <= 0.0 {
                        pick = q;
                        break;
                    }
                }
                citations.push(Citation {
                    citing: papers[i].id.clone(),
                    cited: papers[pick].id.clone(),
                    citing_date: 0,
                    cited_date: 0,
                });
            }
        }
        citations.sort_by(|a, b| (&a.citing, &a.cited).cmp(&(&b.citing, &b.cited)));
        citations.dedup_by(|a, b| a.citing == b.citing && a.cited == b.cited);
        Corpus::build(papers, citations)
    }

    /// `per_year` papers a year over `years`, all dated YYYY-07-01 (year-only dates).
    pub fn year_only(years: std::ops::RangeInclusive<i32>, per_year: usize, seed: u64) -> Corpus {
        let days: Vec<Day> =
            years.flat_map(|y| std::iter::repeat_n(dates::from_ymd(y, 7, 1), per_year)).collect();
        corpus_on(&days, seed)
    }

    /// `per_year` papers a year spread over the days of each year from `from` to `to`.
    pub fn day_dated(from: Day, to: Day, per_year: usize, seed: u64) -> Corpus {
        let span = (to - from + 1) as usize;
        let n = (span * per_year).div_ceil(365).max(1);
        let days: Vec<Day> = (0..n).map(|i| from + ((i * span) / n) as Day).collect();
        corpus_on(&days, seed)
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

    fn d(y: i32, m: u32, dd: u32) -> Day {
        dates::from_ymd(y, m, dd)
    }

    /// One paper a day from `from` to `to`, no citations.
    fn daily(from: Day, to: Day) -> Corpus {
        synthetic::corpus_on(&(from..=to).collect::<Vec<_>>(), 1)
    }

    fn no_positive_check() -> TaskOptions {
        TaskOptions { min_positives: 0, ..TaskOptions::default() }
    }

    #[test]
    fn the_bundled_spec_is_todays_task() {
        let b = TaskSpec::bundled();
        for day in [d(1991, 12, 31), d(1992, 1, 1), d(1998, 12, 31), d(1999, 1, 1), d(1999, 12, 31)] {
            assert_eq!(b.split_of(day), split_of(day));
        }
        assert_eq!(b.split_of(d(2000, 1, 1)), Some(Split::Test));
        assert_eq!(b.split_of(d(2001, 4, 30)), Some(Split::Test));
        assert_eq!(b.split_of(d(2001, 5, 1)), None);
        let t0 = d(1997, 11, 27);
        assert_eq!(b.label_end(t0), t0 + 730);
        assert_eq!(b.cutoff(Mode::AtPublication, t0), t0 - 1);
        assert_eq!(b.cutoff(Mode::Early, t0), t0 + 182);
        assert_eq!(b.as_of(Mode::Early, t0), Mode::Early.as_of(t0));
        assert_eq!(b.label_known(t0), d(1997, 12, 31) + 731);
        assert_eq!(b.cohort_days, 182);
        // A card without a task reads as the bundled one; a card with one round-trips.
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<TaskSpec>(&json).unwrap(), b);
    }

    /// The labels as computed before tasks were derived (730-day window, fixed last day).
    fn labels_by_the_old_constants(corpus: &Corpus) -> (Vec<Option<bool>>, Vec<u32>, BTreeMap<i32, f64>) {
        let last = last_labelled_day();
        let count: Vec<u32> = (0..corpus.len())
            .map(|p| corpus.cited_by[p].partition_point(|(d, _)| *d <= corpus.day[p] + 730) as u32)
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
                (y, quantile(&c, 0.9))
            })
            .collect();
        let label = (0..corpus.len())
            .map(|p| {
                let day = corpus.day[p];
                (day <= last).then(|| count[p] as f64 >= thresholds[&dates::year_of(day)])
            })
            .collect();
        (label, count, thresholds)
    }

    #[test]
    fn bundled_labels_equal_the_old_constants_on_the_fixture() {
        let f = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let corpus = Corpus::from_files(&[f.join("papers.jsonl"), f.join("citations.tsv.gz")]).unwrap();
        let labels = Labels::compute(&corpus, &TaskSpec::bundled());
        let (label, count, thresholds) = labels_by_the_old_constants(&corpus);
        assert_eq!(labels.label, label);
        assert_eq!(labels.count, count);
        assert_eq!(labels.thresholds, thresholds);
        assert!(label.iter().filter(|l| **l == Some(true)).count() >= 20);
    }

    #[test]
    fn a_stray_paper_years_later_does_not_label_the_years_before_it() {
        // The same daily data, plus one paper 20 years after it: the gap is not read as
        // years of "no citations", so the splits are those of the data without it.
        let mut days: Vec<Day> = (d(1995, 1, 1)..=d(2002, 2, 28)).collect();
        days.push(d(2022, 11, 20));
        let corpus = synthetic::corpus_on(&days, 3);
        let spec = TaskSpec::derive(&corpus, &no_positive_check()).unwrap();
        assert_eq!(spec.last_labelled, d(2000, 2, 29));
        assert_eq!(spec.test, Period { from: d(1999, 3, 1), to: d(2000, 2, 29) });
    }

    #[test]
    fn day_resolution_splits_count_calendar_months_across_a_leap_day() {
        // Papers every day from 1995-01-01 to 2002-02-28: the last day whose 24-month
        // window fits is 2000-02-29 (2002-02-28 is its window's end, the month clamped).
        let corpus = daily(d(1995, 1, 1), d(2002, 2, 28));
        let spec = TaskSpec::derive(&corpus, &no_positive_check()).unwrap();
        assert_eq!(spec.resolution, Resolution::Day);
        assert_eq!(spec.label_window, Span::Months(24));
        assert_eq!(spec.last_labelled, d(2000, 2, 29));
        assert_eq!(spec.test, Period { from: d(1999, 3, 1), to: d(2000, 2, 29) });
        assert_eq!(spec.validation, Period { from: d(1998, 3, 1), to: d(1999, 2, 28) });
        assert_eq!(spec.train, Period { from: d(1995, 1, 1), to: d(1998, 2, 28) });
        assert_eq!(spec.cohort_days, 182);
        assert_eq!(spec.test_months(), 12);
        // Windows in calendar months: no drift with the leap day.
        assert_eq!(spec.label_end(d(1999, 7, 1)), d(2001, 7, 1));
        assert_eq!(spec.label_end(d(2000, 2, 29)), d(2002, 2, 28));
        assert_eq!(spec.early_end(d(1999, 8, 31)), d(2000, 2, 29));
        assert_eq!(spec.cutoff(Mode::AtPublication, d(1999, 7, 1)), d(1999, 6, 30));
        assert_eq!(spec.label_known(d(1998, 3, 5)), d(2000, 12, 31) + 1);
        // One day later in the data moves nothing; the first of March moves the end.
        let later = daily(d(1995, 1, 1), d(2002, 3, 1));
        assert_eq!(TaskSpec::derive(&later, &no_positive_check()).unwrap().last_labelled, d(2000, 3, 1));
        // Shifted back a period: a month's end stays its end.
        let back = spec.shifted_back(12);
        assert_eq!(back.test, Period { from: d(1998, 3, 1), to: d(1999, 2, 28) });
        assert_eq!(back.validation, Period { from: d(1997, 3, 1), to: d(1998, 2, 28) });
        assert_eq!(back.train, Period { from: d(1995, 1, 1), to: d(1997, 2, 28) });
        assert_eq!(back.last_labelled, d(1999, 2, 28));
        // The bundled task a test period (16 months) back: contiguous, same lengths.
        let b = TaskSpec::bundled().shifted_back(16);
        assert_eq!(b.test, Period { from: d(1998, 9, 1), to: d(1999, 12, 31) });
        assert_eq!(b.validation, Period { from: d(1997, 9, 1), to: d(1998, 8, 31) });
        assert_eq!((b.train.from, b.train.to), (d(1992, 1, 1), d(1997, 8, 31)));
        // A test period starting on a leap day shifts without overlap.
        let leap = TaskSpec {
            test: Period { from: d(2000, 2, 29), to: d(2001, 2, 27) },
            validation: Period { from: d(1999, 2, 28), to: d(2000, 2, 28) },
            last_labelled: d(2001, 2, 27),
            ..spec.clone()
        };
        let back = leap.shifted_back(12);
        assert_eq!(back.test.to, d(2000, 2, 27));
        assert_eq!(back.validation.to + 1, back.test.from);
        assert_eq!(back.train.to + 1, back.validation.from);
        // A later training start.
        let opts = TaskOptions { train_from: Some(d(1996, 1, 1)), ..no_positive_check() };
        assert_eq!(TaskSpec::derive(&corpus, &opts).unwrap().train.from, d(1996, 1, 1));
    }

    #[test]
    fn year_resolution_counts_whole_years() {
        let corpus = synthetic::year_only(1990..=2000, 60, 3);
        assert_eq!(TaskSpec::resolution_of(&corpus), Resolution::Year);
        let spec = TaskSpec::derive(&corpus, &TaskOptions::default()).unwrap();
        assert_eq!(spec.resolution, Resolution::Year);
        // Data through 2000; a 24-month window on a 1998 paper counts citing years 1998..2000.
        assert_eq!(spec.last_labelled, d(1998, 12, 31));
        assert_eq!(spec.test, Period { from: d(1998, 1, 1), to: d(1998, 12, 31) });
        assert_eq!(spec.validation, Period { from: d(1997, 1, 1), to: d(1997, 12, 31) });
        assert_eq!(spec.train, Period { from: d(1990, 1, 1), to: d(1996, 12, 31) });
        assert_eq!(spec.cohort_days, 366);
        let t0 = d(1996, 7, 1);
        assert_eq!(spec.label_end(t0), d(1998, 12, 31));
        assert_eq!(spec.early_end(t0), d(1996, 12, 31));
        // Nothing of its own year is known at publication.
        assert_eq!(spec.cutoff(Mode::AtPublication, t0), d(1995, 12, 31));
        assert_eq!(spec.cutoff(Mode::Early, t0), d(1996, 12, 31));
        assert_eq!(spec.label_known(t0), d(1999, 1, 1));
        assert_eq!(spec.data_end(&corpus), Some(d(2000, 12, 31)));
        // The label counts exactly the citations of years 1996..=1998.
        let labels = Labels::compute(&corpus, &spec);
        for p in (0..corpus.len()).filter(|&p| corpus.day[p] == t0) {
            let want = corpus.cited_by[p].iter().filter(|(d, _)| dates::year_of(*d) <= 1998).count();
            assert_eq!(labels.count[p] as usize, want);
        }
        assert!(labels.label.iter().any(|l| l.is_none()));
        assert_eq!(labels.papers_in(&corpus, &spec, Split::Test).len(), 60);
        // Leap years change nothing: the cohort of a 2000 paper holds 1999, not 1998.
        let c = super::super::cohort::window(&corpus.day, d(2000, 7, 1), spec.cohort_days);
        assert!(c.clone().all(|p| dates::year_of(corpus.day[p]) == 1999) && c.len() == 60);
        // A day-dated corpus in one year is not year-only.
        assert_eq!(TaskSpec::resolution_of(&synthetic::year_only(1990..=1990, 5, 1)), Resolution::Day);
    }

    #[test]
    fn too_little_data_is_refused_naming_what_is_missing() {
        let corpus = synthetic::year_only(1995..=1997, 40, 3);
        let err = TaskSpec::derive(&corpus, &TaskOptions::default()).unwrap_err();
        assert!(matches!(err, TaskError::TooLittleData(_)), "{err}");
        let text = err.to_string();
        for part in ["1995–1997", "24-month", "5 years", "1 years of training", "1 years of validation"] {
            assert!(text.contains(part), "{part}: {text}");
        }
        // Four years: the label window fits but training has nothing left.
        let corpus = synthetic::year_only(1995..=1998, 40, 3);
        assert!(matches!(
            TaskSpec::derive(&corpus, &TaskOptions::default()),
            Err(TaskError::TooLittleData(_))
        ));
        assert_eq!(TaskSpec::derive(&Corpus::default(), &TaskOptions::default()), Err(TaskError::Empty));
        let short = daily(d(2000, 1, 1), d(2002, 6, 30));
        let err = TaskSpec::derive(&short, &no_positive_check()).unwrap_err();
        assert!(err.to_string().contains("60 months"), "{err}");
        // Enough years but too few high-impact papers in a split.
        let corpus = synthetic::year_only(1990..=2000, 60, 3);
        let opts = TaskOptions { min_positives: 30, ..TaskOptions::default() };
        let err = TaskSpec::derive(&corpus, &opts).unwrap_err();
        assert!(matches!(err, TaskError::TooFewPositives { needed: 30, .. }), "{err}");
        assert!(err.to_string().contains("high-impact papers"), "{err}");
        assert!(matches!(
            TaskSpec::derive(&corpus, &TaskOptions { early_months: 0, ..TaskOptions::default() }),
            Err(TaskError::Invalid(_))
        ));
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
