//! Importers for open scholarly data: each maps one record of a public dump (OpenAlex
//! works, the arXiv metadata snapshot, Crossref works) to a [`Paper`] and the ids it
//! cites. They are pure functions of one record; reading files line by line, batching,
//! reporting and storing stay in [`crate::ingest`], so every format gets the same
//! streaming, memory bounds and per-line report. The mappings are documented in
//! `docs/ingest-format.md`.
//!
//! Ids: each format has one canonical id (OpenAlex: the DOI when present, else `W123`;
//! Crossref: the DOI; arXiv: the arXiv id) and aliases for the others, so the API and
//! citation files may name a paper by any of them. DOIs are stored lower-cased without
//! `https://doi.org/`.
//!
//! Dates: a year alone maps to 1 July of that year and a year and month to the 15th (the
//! middle, so the error is at most half a year or half a month either way); a record
//! with no usable date is rejected with its reason.

pub mod arxiv;
pub mod crossref;
pub mod openalex;

use crate::dates::{self, Day};
use crate::ingest::{check_date_range, check_id};
use crate::names;
use crate::records::{AuthorRef, Paper};

/// One mapped record: the paper, the ids it cites, and how many of its references had no
/// usable id (skipped, counted in the report).
#[derive(Debug, Clone)]
pub struct Mapped {
    pub paper: Paper,
    pub references: Vec<String>,
    pub references_skipped: u64,
}

/// The day a partial date maps to: year-only → YYYY-07-01, year and month → YYYY-MM-15.
pub fn day_from_parts(field: &str, year: i64, month: Option<i64>, day: Option<i64>) -> Result<Day, String> {
    let shown =
        || [Some(year), month, day].iter().flatten().map(|n| n.to_string()).collect::<Vec<_>>().join("-");
    let bad = || format!("{field} '{}' is not a date", shown());
    let y = i32::try_from(year).map_err(|_| bad())?;
    let (m, d) = match (month, day) {
        (None, _) => (7, 1),
        (Some(m), None) => (u32::try_from(m).map_err(|_| bad())?, 15),
        (Some(m), Some(d)) => (u32::try_from(m).map_err(|_| bad())?, u32::try_from(d).map_err(|_| bad())?),
    };
    let text = format!("{y:04}-{m:02}-{d:02}");
    dates::parse(&text).ok_or_else(bad)?;
    check_date_range(field, &text)
}

/// Parses `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (a time after `T` is ignored) with the
/// partial-date rule of [`day_from_parts`].
pub fn loose_date(field: &str, s: &str) -> Result<Day, String> {
    let s = s.trim();
    let date = s.split(['T', ' ']).next().unwrap_or_default();
    let parts: Vec<&str> = date.split('-').collect();
    let bad = || format!("{field} '{s}' is not a date (YYYY, YYYY-MM or YYYY-MM-DD)");
    let num = |p: &str, len: usize| -> Result<i64, String> {
        if p.len() == len && p.bytes().all(|b| b.is_ascii_digit()) {
            p.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    match parts.as_slice() {
        [y] => day_from_parts(field, num(y, 4)?, None, None),
        [y, m] => day_from_parts(field, num(y, 4)?, Some(num(m, 2)?), None),
        [y, m, d] => day_from_parts(field, num(y, 4)?, Some(num(m, 2)?), Some(num(d, 2)?)),
        _ => Err(bad()),
    }
}

/// A DOI as stored: without a resolver prefix (`https://doi.org/`, `doi:`), lower-cased
/// (DOIs are case-insensitive). `None` unless it starts with `10.` and has a suffix.
pub fn normalise_doi(s: &str) -> Option<String> {
    let s = s.trim();
    let lower = s.to_lowercase();
    let mut rest = lower.as_str();
    for prefix in ["https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/", "doi:"]
    {
        if let Some(r) = rest.strip_prefix(prefix) {
            rest = r.trim_start();
            break;
        }
    }
    let (prefix, suffix) = rest.split_once('/')?;
    if !prefix.starts_with("10.") || suffix.is_empty() || check_id("doi", rest).is_err() {
        return None;
    }
    Some(rest.to_string())
}

/// Whether `id` is an old-style arXiv id, `archive[.SUBJ]/YYMMNNN` (`hep-th/9901001`,
/// `math.AG/0101001`): only those get the bare number as an alias.
pub fn is_old_arxiv_id(id: &str) -> bool {
    let Some((archive, number)) = id.split_once('/') else { return false };
    let (name, subject) = archive.split_once('.').unwrap_or((archive, ""));
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
        && subject.bytes().all(|b| b.is_ascii_uppercase())
        && number.len() == 7
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// Normalised authors of a record; names with nothing usable are dropped.
pub fn authors<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<AuthorRef> {
    names
        .into_iter()
        .filter_map(names::normalise_author)
        .map(|n| AuthorRef { raw: n.raw, display: n.display, key: n.key })
        .collect()
}

/// Text of a JATS (XML) abstract: tags dropped, the five XML entities decoded,
/// whitespace collapsed. A leading "Abstract" heading (`<jats:title>`) is dropped too.
pub fn strip_tags(s: &str) -> String {
    let mut s = s.to_string();
    // The heading is markup, not the abstract's words.
    if let Some(start) = s.find("<jats:title>") {
        if let Some(end) = s[start..].find("</jats:title>") {
            s.replace_range(start..start + end + "</jats:title>".len(), " ");
        }
    }
    let mut out = String::with_capacity(s.len());
    let mut tag: Option<String> = None;
    for c in s.chars() {
        match (&mut tag, c) {
            (None, '<') => tag = Some(String::new()),
            (Some(name), '>') => {
                // Block elements separate words; inline ones (<italic>) do not.
                let name = name.trim_start_matches('/').trim_start_matches("jats:");
                let name = name.split([' ', '/']).next().unwrap_or_default();
                if matches!(name, "p" | "title" | "sec" | "list-item" | "break" | "br") {
                    out.push(' ');
                }
                tag = None;
            }
            (Some(name), c) => name.push(c),
            (None, c) => out.push(c),
        }
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    collapse(&out)
}

/// Whitespace collapsed to single spaces, trimmed.
pub fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A non-empty collapsed string, or `None`.
pub fn clean_opt(s: Option<&str>) -> Option<String> {
    s.map(collapse).filter(|s| !s.is_empty())
}

/// Adds `alias` unless empty, the canonical id, or already listed.
pub fn push_alias(aliases: &mut Vec<String>, canonical: &str, alias: &str) {
    if !alias.is_empty() && alias != canonical && !aliases.iter().any(|a| a == alias) {
        aliases.push(alias.to_string());
    }
}

/// Checks the references count against the cap, as the citecast format does.
pub fn check_refs(n: usize, max_refs: usize) -> Result<(), String> {
    if n > max_refs {
        return Err(format!(
            "{n} references, more than the {max_refs} one paper may list (--max-refs-per-paper)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_dates_map_to_fixed_days() {
        assert_eq!(dates::format(loose_date("d", "2019").unwrap()), "2019-07-01");
        assert_eq!(dates::format(loose_date("d", "2019-03").unwrap()), "2019-03-15");
        assert_eq!(dates::format(loose_date("d", "2019-03-04").unwrap()), "2019-03-04");
        assert_eq!(dates::format(day_from_parts("d", 2001, Some(2), None).unwrap()), "2001-02-15");
        assert!(loose_date("d", "2019-02-30").unwrap_err().contains("not a date"));
        assert!(loose_date("d", "19").is_err());
        assert!(loose_date("d", "1850").unwrap_err().contains("outside 1900-2100"));
    }

    #[test]
    fn dois_are_normalised() {
        assert_eq!(normalise_doi("https://doi.org/10.1000/ABC").as_deref(), Some("10.1000/abc"));
        assert_eq!(normalise_doi("doi:10.1/x").as_deref(), Some("10.1/x"));
        assert_eq!(normalise_doi("10.1000/x y"), None);
        assert_eq!(normalise_doi("11.1000/x"), None);
        assert_eq!(normalise_doi("10.1000/"), None);
    }

    #[test]
    fn old_arxiv_ids_are_recognised() {
        assert!(is_old_arxiv_id("hep-th/9901001"));
        assert!(is_old_arxiv_id("math.AG/0101001"));
        assert!(!is_old_arxiv_id("0704.0001"));
        assert!(!is_old_arxiv_id("10.1000/0123"));
        assert!(!is_old_arxiv_id("10.2000/1234567"));
    }

    #[test]
    fn jats_tags_are_stripped() {
        let s = "<jats:title>Abstract</jats:title><jats:p>We show that <jats:italic>x</jats:italic> &amp; y.</jats:p>";
        assert_eq!(strip_tags(s), "We show that x & y.");
    }
}
