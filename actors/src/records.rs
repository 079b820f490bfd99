//! The records citecast stores: papers, their authors, and dated citation edges.

use serde::{Deserialize, Serialize};

use crate::dates::Day;

/// One author of one paper: the string as written and its normalised forms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorRef {
    pub raw: String,
    pub display: String,
    /// Grouping key (first initial + surname), see [`crate::names`].
    pub key: String,
}

/// A paper as stored. `id` is the canonical id (`hep-th/9711200` for the bundled data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paper {
    pub id: String,
    /// Other ids the paper is known by (`9711200`), for lookups and citation files.
    pub aliases: Vec<String>,
    pub title: String,
    pub authors: Vec<AuthorRef>,
    /// Day of the first (v1) submission.
    pub submitted: Day,
    /// Seconds after midnight UTC of the first submission, when the source gives a time.
    pub submitted_secs: Option<u32>,
    /// Days of later revisions, if any.
    pub revised: Vec<Day>,
    pub abstract_text: String,
    pub subject: Option<String>,
    pub journal_ref: Option<String>,
    pub comments: Option<String>,
    pub report_no: Option<String>,
}

/// A citation: `citing` cites `cited`. Dates are the two papers' submission days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citation {
    pub citing: String,
    pub cited: String,
    pub citing_date: Day,
    pub cited_date: Day,
}

/// An author across papers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorRecord {
    pub key: String,
    /// Display name as first seen.
    pub name: String,
    /// Distinct raw spellings seen, capped at [`AuthorRecord::MAX_VARIANTS`].
    pub variants: Vec<String>,
}

impl AuthorRecord {
    /// Keeps a prolific author's record small; the spellings beyond this add nothing useful.
    pub const MAX_VARIANTS: usize = 16;

    /// Adds a spelling; returns whether the record changed.
    pub fn add_variant(&mut self, raw: &str) -> bool {
        if self.variants.len() >= Self::MAX_VARIANTS || self.variants.iter().any(|v| v == raw) {
            return false;
        }
        self.variants.push(raw.to_string());
        true
    }
}

/// One forecast a model computed for a caller, kept in the forecast log (and later in
/// the archive) so rollouts can be judged once labels resolve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastRecord {
    /// Unix seconds.
    pub at: i64,
    pub paper_id: String,
    /// `at_publication` or `early`.
    pub mode: String,
    pub model_version: String,
    pub probability: f64,
    /// Customer or key the forecast was routed for, when known.
    pub caller: Option<String>,
    /// Rollout the forecast belonged to, its arm, and the other arm's answer.
    pub rollout: Option<String>,
    pub arm: Option<String>,
    pub shadow_version: Option<String>,
    pub shadow_probability: Option<f64>,
}
