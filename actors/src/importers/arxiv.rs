//! The arXiv metadata snapshot (Kaggle's `arxiv-metadata-oai-snapshot.json`, one JSON
//! object per line). It lists no references: citations come from a separate TSV or
//! edge-list file.

use serde::Deserialize;

use super::{authors, clean_opt, normalise_doi, push_alias, Mapped};
use crate::dates::{self, Day};
use crate::ingest::{aliases_of, check_date_range, check_id, split_authors};
use crate::records::Paper;

#[derive(Debug, Deserialize)]
struct Record {
    id: Option<serde_json::Value>,
    title: Option<String>,
    authors: Option<String>,
    #[serde(default)]
    authors_parsed: Vec<Vec<String>>,
    #[serde(rename = "abstract")]
    abstract_text: Option<String>,
    categories: Option<String>,
    #[serde(default)]
    versions: Vec<Version>,
    doi: Option<String>,
    #[serde(rename = "journal-ref")]
    journal_ref: Option<String>,
    comments: Option<String>,
    #[serde(rename = "report-no")]
    report_no: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Version {
    created: Option<String>,
}

const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Parses an RFC 2822 date as arXiv writes it (`Mon, 2 Apr 2007 19:18:42 GMT`) into a
/// day and the seconds after midnight UTC.
pub fn parse_created(s: &str) -> Option<(Day, u32)> {
    let mut parts: Vec<&str> = s.split_whitespace().collect();
    if parts.first().is_some_and(|w| w.ends_with(',')) {
        parts.remove(0);
    }
    let [d, mon, y, time, zone] = parts.as_slice() else { return None };
    if !matches!(*zone, "GMT" | "UTC" | "+0000" | "Z") {
        return None;
    }
    let m = MONTHS.iter().position(|x| x == mon)? as u32 + 1;
    let text = format!("{y}-{m:02}-{:0>2}T{time}Z", d);
    Some((dates::parse(&text)?, dates::parse_time_of_day(&text)?))
}

/// Maps one arXiv metadata record.
pub fn map(line: &str) -> Result<Mapped, String> {
    let r: Record = serde_json::from_str(line).map_err(|e| format!("invalid arXiv record: {e}"))?;
    // The snapshot writes ids as strings; a number would have lost leading zeros.
    let id = match r.id {
        Some(serde_json::Value::String(s)) => s.trim().to_string(),
        Some(other) => return Err(format!("id {other} is not a string")),
        None => return Err("id is missing".into()),
    };
    check_id("id", &id)?;
    let title = clean_opt(r.title.as_deref()).ok_or("title is empty")?;
    let names: Vec<String> = if r.authors_parsed.is_empty() {
        r.authors.as_deref().map(split_authors).unwrap_or_default()
    } else {
        r.authors_parsed
            .iter()
            .map(|p| {
                let (last, first, suffix) = (
                    p.first().map(String::as_str).unwrap_or_default(),
                    p.get(1).map(String::as_str).unwrap_or_default(),
                    p.get(2).map(String::as_str).unwrap_or_default(),
                );
                [first, last, suffix]
                    .iter()
                    .filter(|s| !s.trim().is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    };
    let authors = authors(names.iter().map(String::as_str));
    if authors.is_empty() {
        return Err("no usable author in authors_parsed/authors".into());
    }
    let mut days = Vec::with_capacity(r.versions.len());
    for (i, v) in r.versions.iter().enumerate() {
        let created = v.created.as_deref().ok_or_else(|| format!("versions[{i}].created is missing"))?;
        let (day, secs) = parse_created(created).ok_or_else(|| {
            format!("versions[{i}].created '{created}' is not a date (Mon, 2 Apr 2007 19:18:42 GMT)")
        })?;
        check_date_range(&format!("versions[{i}].created"), &dates::format(day))?;
        days.push((day, secs));
    }
    let Some(&(submitted, secs)) = days.first() else {
        return Err("no usable date: versions is missing or empty".into());
    };
    let mut aliases = aliases_of(&id, &id);
    if let Some(doi) = r.doi.as_deref().and_then(|d| d.split_whitespace().next()).and_then(normalise_doi) {
        push_alias(&mut aliases, &id, &doi);
    }
    let paper = Paper {
        id,
        aliases,
        title,
        authors,
        submitted,
        submitted_secs: Some(secs),
        revised: days[1..].iter().map(|(d, _)| *d).collect(),
        abstract_text: clean_opt(r.abstract_text.as_deref()).unwrap_or_default(),
        subject: r.categories.as_deref().and_then(|c| c.split_whitespace().next()).map(str::to_string),
        journal_ref: clean_opt(r.journal_ref.as_deref()),
        comments: clean_opt(r.comments.as_deref()),
        report_no: clean_opt(r.report_no.as_deref()),
    };
    Ok(Mapped { paper, references: Vec::new(), references_skipped: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW: &str = r#"{"id":"0704.0001","submitter":"Pavel Nadolsky","authors":"C. Bal\\'azs, E. L. Berger, P. M. Nadolsky, C.-P. Yuan","title":"Calculation of prompt diphoton production cross sections at Tevatron and\n  LHC energies","comments":"37 pages, 15 figures","journal-ref":"Phys.Rev.D76:013009,2007","doi":"10.1103/PhysRevD.76.013009","report-no":"ANL-HEP-PR-07-12","categories":"hep-ph","license":null,"abstract":"  A fully differential calculation\n in perturbative QCD.\n","versions":[{"version":"v1","created":"Mon, 2 Apr 2007 19:18:42 GMT"},{"version":"v2","created":"Tue, 24 Jul 2007 20:10:27 GMT"}],"update_date":"2008-11-13","authors_parsed":[["Balázs","C.",""],["Berger","E. L.",""],["Nadolsky","P. M.",""],["Yuan","C. -P.",""]]}"#;

    #[test]
    fn maps_a_new_style_record() {
        let m = map(NEW).unwrap();
        let p = &m.paper;
        assert_eq!(p.id, "0704.0001");
        assert_eq!(p.aliases, vec!["10.1103/physrevd.76.013009"]);
        assert_eq!(
            p.title,
            "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
        );
        assert_eq!(p.authors.len(), 4);
        assert_eq!(p.authors[0].key, "balazs_c");
        assert_eq!(dates::format(p.submitted), "2007-04-02");
        assert_eq!(p.submitted_secs, Some(19 * 3600 + 18 * 60 + 42));
        assert_eq!(p.revised.iter().map(|d| dates::format(*d)).collect::<Vec<_>>(), vec!["2007-07-24"]);
        assert_eq!(p.subject.as_deref(), Some("hep-ph"));
        assert_eq!(p.abstract_text, "A fully differential calculation in perturbative QCD.");
        assert_eq!(p.journal_ref.as_deref(), Some("Phys.Rev.D76:013009,2007"));
        assert_eq!(p.report_no.as_deref(), Some("ANL-HEP-PR-07-12"));
        assert!(m.references.is_empty());
    }

    #[test]
    fn old_style_ids_get_their_number_as_aliases() {
        let line = r#"{"id":"hep-th/9901001","title":"T","authors":"E. Witten","categories":"hep-th math.AG","versions":[{"created":"Fri, 1 Jan 1999 10:00:00 GMT"}]}"#;
        let p = map(line).unwrap().paper;
        assert_eq!(p.aliases, vec!["9901001"]);
        assert_eq!(p.authors[0].key, "witten_e");
        assert_eq!(p.subject.as_deref(), Some("hep-th"));
    }

    #[test]
    fn rejects_bad_records_with_reasons() {
        let v = r#""versions":[{"created":"Mon, 2 Apr 2007 19:18:42 GMT"}]"#;
        let cases = [
            ("{\"id\":".to_string(), "invalid arXiv record"),
            (format!(r#"{{"id":704.0001,"title":"T","authors":"A. B",{v}}}"#), "not a string"),
            (format!(r#"{{"title":"T","authors":"A. B",{v}}}"#), "id is missing"),
            (format!(r#"{{"id":"1","title":"","authors":"A. B",{v}}}"#), "title is empty"),
            (format!(r#"{{"id":"1","title":"T","authors":"",{v}}}"#), "no usable author"),
            (r#"{"id":"1","title":"T","authors":"A. B"}"#.to_string(), "no usable date"),
            (
                r#"{"id":"1","title":"T","authors":"A. B","versions":[{"created":"2 April 2007"}]}"#
                    .to_string(),
                "not a date",
            ),
        ];
        for (line, want) in cases {
            let err = map(&line).unwrap_err();
            assert!(err.contains(want), "{line}: {err}");
        }
    }
}
