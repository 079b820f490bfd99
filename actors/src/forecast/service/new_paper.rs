//! Forecasting a paper that is not stored: its request checked, its features computed
//! against the current corpus.

use serde::{Deserialize, Serialize};

use super::*;

/// A paper not in the store, scored from its metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPaper {
    pub title: String,
    #[serde(default, rename = "abstract")]
    pub abstract_text: String,
    pub authors: Vec<String>,
    /// Submission date, YYYY-MM-DD (optionally with a time).
    pub date: String,
    #[serde(default)]
    pub references: Vec<String>,
    /// The collection whose corpus and model score it (default: `default`).
    #[serde(default)]
    pub collection: Option<String>,
}

impl ForecastService {
    /// Forecasts a paper that is not stored, from its metadata, with features computed
    /// now against the current corpus. Only `at_publication`: a new paper has no citations.
    pub fn score_new(&mut self, paper: &NewPaper, mode: Mode) -> Result<Forecast, ForecastError> {
        if mode != Mode::AtPublication {
            return Err(ForecastError::Invalid(
                "a paper that is not stored has no citations yet: use mode at_publication".into(),
            ));
        }
        let title = paper.title.trim();
        if title.is_empty() || title.len() > 1000 {
            return Err(ForecastError::Invalid("'title' must be 1 to 1000 characters".into()));
        }
        if paper.abstract_text.len() > 20_000 {
            return Err(ForecastError::Invalid("'abstract' is longer than 20000 characters".into()));
        }
        if paper.authors.is_empty() || paper.authors.len() > 100 {
            return Err(ForecastError::Invalid("'authors' must list 1 to 100 names".into()));
        }
        if paper.references.len() > 1000 {
            return Err(ForecastError::Invalid("'references' lists more than 1000 ids".into()));
        }
        let t0 = dates::parse(&paper.date).ok_or_else(|| {
            ForecastError::Invalid(format!("'date' must be YYYY-MM-DD, got '{}'", paper.date))
        })?;
        // Papers are dated from the first journals on to about a year ahead (a preprint
        // with a planned date); years 0 or 9999 are typing errors, not papers.
        let latest = dates::today() + 366;
        if dates::year_of(t0) < 1800 || t0 > latest {
            return Err(ForecastError::Invalid(format!(
                "'date' must be between 1800-01-01 and {}, got '{}'",
                dates::format(latest),
                paper.date
            )));
        }
        let mut authors = Vec::new();
        for a in &paper.authors {
            let n = names::normalise_author(a)
                .ok_or_else(|| ForecastError::Invalid(format!("'{a}' is not a usable author name")))?;
            authors.push(self.corpus.author_by_key.get(&n.key).copied());
        }
        let mut refs = Vec::new();
        for r in &paper.references {
            // A reference in the body is the caller's input: an unknown one is a bad
            // request naming it, not a missing resource (404 would read as a wrong URL).
            refs.push(self.corpus.find(r).ok_or_else(|| {
                ForecastError::Invalid(format!("'references' names '{r}', which is not a stored paper"))
            })?);
        }
        let model = self.active(mode)?;
        let ctx = self.context(&model);
        let subject = Subject {
            day: t0,
            secs: dates::parse_time_of_day(&paper.date),
            authors,
            refs,
            title,
            abstract_text: &paper.abstract_text,
            terms: ctx.term_ids(title, &paper.abstract_text),
            own: None,
            cited_by: &[],
        };
        let raw = ctx.features_of(&subject, mode);
        Ok(self.answer(&model, "(new paper)".into(), mode, t0, raw))
    }
}
