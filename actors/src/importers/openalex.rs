//! OpenAlex works, one JSON object per line as in the OpenAlex snapshot
//! (`works/updated_date=*/part_*.gz`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{authors, check_refs, clean_opt, collapse, loose_date, normalise_doi, push_alias, Mapped};
use crate::ingest::check_id;
use crate::records::Paper;

const OPENALEX_PREFIX: &str = "https://openalex.org/";

#[derive(Debug, Deserialize)]
struct Work {
    id: Option<String>,
    doi: Option<String>,
    display_name: Option<String>,
    title: Option<String>,
    publication_date: Option<String>,
    publication_year: Option<i64>,
    #[serde(default)]
    authorships: Vec<Authorship>,
    #[serde(default)]
    referenced_works: Vec<String>,
    abstract_inverted_index: Option<BTreeMap<String, Vec<usize>>>,
    primary_topic: Option<Named>,
    primary_location: Option<Location>,
    ids: Option<Ids>,
}

#[derive(Debug, Deserialize)]
struct Authorship {
    author: Option<Named>,
    raw_author_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Named {
    display_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Location {
    source: Option<Named>,
}

#[derive(Debug, Deserialize)]
struct Ids {
    openalex: Option<String>,
    doi: Option<String>,
    pmid: Option<String>,
    pmcid: Option<String>,
}

/// `W123` from `https://openalex.org/W123` (or `W123` itself).
pub fn short_id(s: &str) -> Option<&str> {
    let id = s.trim().strip_prefix(OPENALEX_PREFIX).unwrap_or(s.trim());
    let valid = id.len() > 1
        && matches!(id.as_bytes()[0], b'W' | b'w')
        && id[1..].bytes().all(|b| b.is_ascii_digit());
    valid.then_some(id)
}

/// Rebuilds an abstract from OpenAlex's inverted index (word → positions).
pub fn abstract_from_index(index: &BTreeMap<String, Vec<usize>>) -> String {
    // Positions come from the data: refuse absurd ones rather than allocate for them.
    const MAX_WORDS: usize = 20_000;
    let mut slots: Vec<(usize, &str)> = index
        .iter()
        .flat_map(|(word, positions)| positions.iter().map(move |p| (*p, word.as_str())))
        .filter(|(p, _)| *p < MAX_WORDS)
        .collect();
    slots.sort_unstable();
    collapse(&slots.iter().map(|(_, w)| *w).collect::<Vec<_>>().join(" "))
}

/// Maps one OpenAlex work.
pub fn map(line: &str, max_refs: usize) -> Result<Mapped, String> {
    let w: Work = serde_json::from_str(line).map_err(|e| format!("invalid OpenAlex work: {e}"))?;
    let raw_id =
        w.id.as_deref().or(w.ids.as_ref().and_then(|i| i.openalex.as_deref())).ok_or("id is missing")?;
    let work_id = short_id(raw_id)
        .ok_or_else(|| format!("id '{raw_id}' is not an OpenAlex work id (https://openalex.org/W…)"))?
        .to_uppercase();
    check_refs(w.referenced_works.len(), max_refs)?;
    let doi = w.doi.as_deref().or(w.ids.as_ref().and_then(|i| i.doi.as_deref())).and_then(normalise_doi);
    let canonical = doi.clone().unwrap_or_else(|| work_id.clone());
    check_id("id", &canonical)?;
    let title =
        clean_opt(w.display_name.as_deref().or(w.title.as_deref())).ok_or("display_name/title is empty")?;
    let submitted = match (&w.publication_date, w.publication_year) {
        (Some(d), _) => loose_date("publication_date", d)?,
        (None, Some(y)) => super::day_from_parts("publication_year", y, None, None)?,
        (None, None) => {
            return Err("no usable date: publication_date and publication_year are missing".into())
        }
    };
    let names: Vec<&str> = w
        .authorships
        .iter()
        .filter_map(|a| {
            a.author.as_ref().and_then(|n| n.display_name.as_deref()).or(a.raw_author_name.as_deref())
        })
        .collect();
    let authors = authors(names);
    if authors.is_empty() {
        return Err("no usable author in authorships".into());
    }
    let mut aliases = Vec::new();
    push_alias(&mut aliases, &canonical, &work_id);
    push_alias(&mut aliases, &canonical, &format!("{OPENALEX_PREFIX}{work_id}"));
    if let Some(doi) = &doi {
        push_alias(&mut aliases, &canonical, doi);
    }
    if let Some(ids) = &w.ids {
        if let Some(pmid) = ids.pmid.as_deref().and_then(|p| p.trim_end_matches('/').rsplit('/').next()) {
            if !pmid.is_empty() && pmid.bytes().all(|b| b.is_ascii_digit()) {
                push_alias(&mut aliases, &canonical, &format!("pmid:{pmid}"));
            }
        }
        if let Some(pmc) = ids.pmcid.as_deref().and_then(|p| p.trim_end_matches('/').rsplit('/').next()) {
            if pmc.starts_with("PMC") && check_id("pmcid", pmc).is_ok() {
                push_alias(&mut aliases, &canonical, pmc);
            }
        }
    }
    let mut references = Vec::with_capacity(w.referenced_works.len());
    let mut references_skipped = 0;
    for r in &w.referenced_works {
        match short_id(r) {
            Some(id) => references.push(id.to_uppercase()),
            None => references_skipped += 1,
        }
    }
    let paper = Paper {
        id: canonical,
        aliases,
        title,
        authors,
        submitted,
        submitted_secs: None,
        revised: Vec::new(),
        abstract_text: w.abstract_inverted_index.as_ref().map(abstract_from_index).unwrap_or_default(),
        subject: clean_opt(w.primary_topic.as_ref().and_then(|t| t.display_name.as_deref())),
        journal_ref: clean_opt(
            w.primary_location
                .as_ref()
                .and_then(|l| l.source.as_ref())
                .and_then(|s| s.display_name.as_deref()),
        ),
        comments: None,
        report_no: None,
    };
    Ok(Mapped { paper, references, references_skipped })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dates;

    const WORK: &str = r#"{"id":"https://openalex.org/W2741809807","doi":"https://doi.org/10.7717/PEERJ.4375","display_name":"The state of OA","publication_date":"2018-02-13","publication_year":2018,"ids":{"openalex":"https://openalex.org/W2741809807","doi":"https://doi.org/10.7717/peerj.4375","pmid":"https://pubmed.ncbi.nlm.nih.gov/29456894"},"authorships":[{"author":{"id":"https://openalex.org/A1","display_name":"Heather Piwowar"},"raw_author_name":"Heather Piwowar"},{"author":{"display_name":null},"raw_author_name":"J. Priem"}],"primary_topic":{"display_name":"Open Access Publishing"},"primary_location":{"source":{"display_name":"PeerJ"}},"referenced_works":["https://openalex.org/W1","https://openalex.org/W2","not-a-work"],"abstract_inverted_index":{"Despite":[0],"growing":[1],"interest":[2],"in":[3,5],"OA":[4],"2018.":[6]}}"#;

    #[test]
    fn maps_a_work() {
        let m = map(WORK, 100).unwrap();
        let p = &m.paper;
        assert_eq!(p.id, "10.7717/peerj.4375");
        assert_eq!(p.aliases, vec!["W2741809807", "https://openalex.org/W2741809807", "pmid:29456894"]);
        assert_eq!(p.title, "The state of OA");
        assert_eq!(dates::format(p.submitted), "2018-02-13");
        assert_eq!(p.authors.len(), 2);
        assert_eq!(p.authors[0].key, "piwowar_h");
        assert_eq!(p.authors[1].key, "priem_j");
        assert_eq!(p.abstract_text, "Despite growing interest in OA in 2018.");
        assert_eq!(p.subject.as_deref(), Some("Open Access Publishing"));
        assert_eq!(p.journal_ref.as_deref(), Some("PeerJ"));
        assert_eq!(m.references, vec!["W1", "W2"]);
        assert_eq!(m.references_skipped, 1);
    }

    #[test]
    fn without_a_doi_the_work_id_is_canonical_and_a_year_is_mid_year() {
        let line = r#"{"id":"https://openalex.org/W9","display_name":"T","publication_year":1999,"authorships":[{"author":{"display_name":"A. B"}}]}"#;
        let p = map(line, 100).unwrap().paper;
        assert_eq!(p.id, "W9");
        assert_eq!(p.aliases, vec!["https://openalex.org/W9"]);
        assert_eq!(dates::format(p.submitted), "1999-07-01");
    }

    #[test]
    fn rejects_bad_works_with_reasons() {
        let a = r#""authorships":[{"author":{"display_name":"A. B"}}]"#;
        let cases = [
            ("{".to_string(), "invalid OpenAlex work"),
            (format!(r#"{{"display_name":"T","publication_year":1999,{a}}}"#), "id is missing"),
            (
                format!(
                    r#"{{"id":"https://example.org/X1","display_name":"T","publication_year":1999,{a}}}"#
                ),
                "not an OpenAlex work id",
            ),
            (format!(r#"{{"id":"W1","display_name":" ","publication_year":1999,{a}}}"#), "title is empty"),
            (format!(r#"{{"id":"W1","display_name":"T",{a}}}"#), "no usable date"),
            (
                format!(r#"{{"id":"W1","display_name":"T","publication_date":"1999-13-01",{a}}}"#),
                "not a date",
            ),
            (
                r#"{"id":"W1","display_name":"T","publication_year":1999,"authorships":[]}"#.to_string(),
                "no usable author",
            ),
        ];
        for (line, want) in cases {
            let err = map(&line, 100).unwrap_err();
            assert!(err.contains(want), "{line}: {err}");
        }
        let many = format!(
            r#"{{"id":"W1","display_name":"T","publication_year":1999,{a},"referenced_works":["W2","W3"]}}"#
        );
        assert!(map(&many, 1).unwrap_err().contains("2 references, more than the 1"));
    }
}
