//! Crossref works: JSON Lines of work objects (as in Crossref's public data file), or
//! one REST API response, `{"status":"ok","message":{"items":[...]}}`, read item by item
//! without holding the document in memory.

use std::io::Read;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{authors, check_refs, clean_opt, day_from_parts, normalise_doi, strip_tags, Mapped};
use crate::dates::Day;
use crate::records::Paper;

#[derive(Debug, Deserialize)]
struct Work {
    #[serde(rename = "DOI")]
    doi: Option<String>,
    #[serde(default)]
    title: Vec<String>,
    #[serde(default)]
    author: Vec<Author>,
    issued: Option<DateParts>,
    #[serde(rename = "published-print")]
    published_print: Option<DateParts>,
    #[serde(rename = "published-online")]
    published_online: Option<DateParts>,
    created: Option<DateParts>,
    #[serde(default)]
    reference: Vec<Reference>,
    #[serde(rename = "abstract")]
    abstract_text: Option<String>,
    #[serde(rename = "container-title", default)]
    container_title: Vec<String>,
    #[serde(default)]
    subject: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Author {
    given: Option<String>,
    family: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DateParts {
    #[serde(rename = "date-parts", default)]
    date_parts: Vec<Vec<Option<i64>>>,
}

#[derive(Debug, Deserialize)]
struct Reference {
    #[serde(rename = "DOI")]
    doi: Option<String>,
}

/// The first usable date of `issued`, `published-print`, `published-online`, `created`.
fn date_of(w: &Work) -> Result<Day, String> {
    let fields = [
        ("issued", &w.issued),
        ("published-print", &w.published_print),
        ("published-online", &w.published_online),
        ("created", &w.created),
    ];
    let mut last_error = None;
    for (name, field) in fields {
        let Some(parts) = field.as_ref().and_then(|f| f.date_parts.first()) else { continue };
        let mut it = parts.iter().copied();
        let Some(Some(year)) = it.next() else { continue };
        let (month, day) = (it.next().flatten(), it.next().flatten());
        match day_from_parts(&format!("{name}.date-parts"), year, month, month.and(day)) {
            Ok(d) => return Ok(d),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        "no usable date: issued, published-print, published-online and created have no date-parts".into()
    }))
}

/// Maps one Crossref work object.
pub fn map_value(value: serde_json::Value, max_refs: usize) -> Result<Mapped, String> {
    let w: Work = serde_json::from_value(value).map_err(|e| format!("invalid Crossref work: {e}"))?;
    map_work(w, max_refs)
}

/// Maps one line of Crossref JSON Lines.
pub fn map(line: &str, max_refs: usize) -> Result<Mapped, String> {
    let w: Work = serde_json::from_str(line).map_err(|e| format!("invalid Crossref work: {e}"))?;
    map_work(w, max_refs)
}

fn map_work(w: Work, max_refs: usize) -> Result<Mapped, String> {
    let raw_doi = w.doi.as_deref().ok_or("DOI is missing")?;
    let doi =
        normalise_doi(raw_doi).ok_or_else(|| format!("DOI '{raw_doi}' is not a DOI (10.prefix/suffix)"))?;
    check_refs(w.reference.len(), max_refs)?;
    let title = clean_opt(w.title.first().map(String::as_str)).ok_or("title[0] is missing or empty")?;
    let submitted = date_of(&w)?;
    let names: Vec<String> = w
        .author
        .iter()
        .filter_map(|a| match (&a.given, &a.family, &a.name) {
            (Some(g), Some(f), _) => Some(format!("{g} {f}")),
            (None, Some(f), _) => Some(f.clone()),
            (_, None, Some(n)) => Some(n.clone()),
            _ => None,
        })
        .collect();
    let authors = authors(names.iter().map(String::as_str));
    if authors.is_empty() {
        return Err("no usable author in author[]".into());
    }
    let mut references = Vec::with_capacity(w.reference.len());
    let mut references_skipped = 0;
    for r in &w.reference {
        match r.doi.as_deref().and_then(normalise_doi) {
            Some(d) => references.push(d),
            None => references_skipped += 1,
        }
    }
    let paper = Paper {
        id: doi,
        aliases: Vec::new(),
        title,
        authors,
        submitted,
        submitted_secs: None,
        revised: Vec::new(),
        abstract_text: w.abstract_text.as_deref().map(strip_tags).unwrap_or_default(),
        subject: clean_opt(w.subject.first().map(String::as_str)),
        journal_ref: clean_opt(w.container_title.first().map(String::as_str)),
        comments: None,
        report_no: None,
    };
    Ok(Mapped { paper, references, references_skipped })
}

/// Counts the lines of what it passes on, so an item of a pretty-printed document can be
/// reported by line. serde_json reads byte by byte, so the count is where it stands.
struct LineCounter<R> {
    inner: R,
    line: u64,
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.line += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        Ok(n)
    }
}

/// Calls `f(line, item)` for each element of `message.items` of a Crossref API response,
/// in order, holding one item at a time. `line` is the (1-based) line on which the item
/// ends; the lines of the document are returned at the end. A document that is not JSON
/// stops the reading with `Err(line, reason)`; an error of `f` stops it with that error.
pub fn for_each_item<R: Read, E>(
    reader: R,
    mut f: impl FnMut(u64, serde_json::Value) -> Result<(), E>,
) -> Result<Result<u64, E>, (u64, String)> {
    let counter = std::cell::RefCell::new(LineCounter { inner: reader, line: 1 });
    let mut stopped: Option<E> = None;
    let outcome = {
        let reader = CellReader(&counter);
        let mut de = serde_json::Deserializer::from_reader(reader);
        let mut call = |item| {
            let line = counter.borrow().line;
            f(line, item)
        };
        let seed = Envelope { f: &mut call, stopped: &mut stopped };
        seed.deserialize(&mut de).and_then(|found| de.end().map(|_| found))
    };
    let line = counter.borrow().line;
    if let Some(e) = stopped {
        return Ok(Err(e));
    }
    match outcome {
        // The count started at line 1, so a final newline ends the last line.
        Ok(true) => Ok(Ok(line.saturating_sub(1).max(1))),
        Ok(false) => Err((line, "the document has no message.items array (a Crossref API response)".into())),
        Err(e) => Err((line, format!("invalid Crossref API response: {e}"))),
    }
}

struct CellReader<'a, R>(&'a std::cell::RefCell<LineCounter<R>>);

impl<R: Read> Read for CellReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().read(buf)
    }
}

type ItemFn<'a, E> = &'a mut dyn FnMut(serde_json::Value) -> Result<(), E>;

/// The top-level object; answers whether `message.items` was found.
struct Envelope<'a, 'b, E> {
    f: ItemFn<'a, E>,
    stopped: &'b mut Option<E>,
}

impl<'de, E> DeserializeSeed<'de> for Envelope<'_, '_, E> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_map(Level { f: self.f, stopped: self.stopped, want: "message" })
    }
}

/// An object in which `want` leads on: `message` at the top, `items` inside it.
struct Level<'a, 'b, E> {
    f: ItemFn<'a, E>,
    stopped: &'b mut Option<E>,
    want: &'static str,
}

impl<'de, E> Visitor<'de> for Level<'_, '_, E> {
    type Value = bool;
    fn expecting(&self, out: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(out, "an object with '{}'", self.want)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        let Level { f, stopped, want } = self;
        while let Some(key) = map.next_key::<String>()? {
            if key != want {
                map.next_value::<IgnoredAny>()?;
            } else if want == "message" {
                found |= map.next_value_seed(Inner { f: &mut *f, stopped: &mut *stopped, want: "items" })?;
            } else {
                map.next_value_seed(Items { f: &mut *f, stopped: &mut *stopped })?;
                found = true;
            }
        }
        Ok(found)
    }
}

struct Inner<'a, 'b, E> {
    f: ItemFn<'a, E>,
    stopped: &'b mut Option<E>,
    want: &'static str,
}

impl<'de, E> DeserializeSeed<'de> for Inner<'_, '_, E> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_map(Level { f: self.f, stopped: self.stopped, want: self.want })
    }
}

struct Items<'a, 'b, E> {
    f: ItemFn<'a, E>,
    stopped: &'b mut Option<E>,
}

impl<'de, E> DeserializeSeed<'de> for Items<'_, '_, E> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, E> Visitor<'de> for Items<'_, '_, E> {
    type Value = ();
    fn expecting(&self, out: &mut std::fmt::Formatter) -> std::fmt::Result {
        out.write_str("an array of works")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<serde_json::Value>()? {
            if let Err(e) = (self.f)(item) {
                *self.stopped = Some(e);
                return Err(serde::de::Error::custom("stopped by the caller"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dates;

    const WORK: &str = r#"{"DOI":"10.1103/PhysRevD.76.013009","title":["Calculation of  prompt diphoton production"],"author":[{"given":"C.","family":"Balázs","sequence":"first"},{"name":"CMS Collaboration"}],"issued":{"date-parts":[[2007,7]]},"created":{"date-parts":[[2007,7,24]]},"container-title":["Physical Review D"],"subject":["Physics"],"abstract":"<jats:p>A fully <jats:italic>differential</jats:italic> calculation.</jats:p>","reference":[{"key":"1","DOI":"10.1000/ABC"},{"key":"2","unstructured":"A. Author, Some Journal 1 (1999)"}]}"#;

    #[test]
    fn maps_a_work() {
        let m = map(WORK, 100).unwrap();
        let p = &m.paper;
        assert_eq!(p.id, "10.1103/physrevd.76.013009");
        assert!(p.aliases.is_empty());
        assert_eq!(p.title, "Calculation of prompt diphoton production");
        assert_eq!(p.authors.len(), 2);
        assert_eq!(p.authors[0].key, "balazs_c");
        assert_eq!(dates::format(p.submitted), "2007-07-15", "year and month map to the 15th");
        assert_eq!(p.abstract_text, "A fully differential calculation.");
        assert_eq!(p.journal_ref.as_deref(), Some("Physical Review D"));
        assert_eq!(p.subject.as_deref(), Some("Physics"));
        assert_eq!(m.references, vec!["10.1000/abc"]);
        assert_eq!(m.references_skipped, 1);
    }

    #[test]
    fn later_date_fields_stand_in_for_issued() {
        let line = r#"{"DOI":"10.1/x","title":["T"],"author":[{"family":"Kim","given":"J."}],"issued":{"date-parts":[[null]]},"published-online":{"date-parts":[[2001]]}}"#;
        assert_eq!(dates::format(map(line, 10).unwrap().paper.submitted), "2001-07-01");
    }

    #[test]
    fn rejects_bad_works_with_reasons() {
        let a = r#""author":[{"given":"A.","family":"B"}]"#;
        let d = r#""issued":{"date-parts":[[2001,1,2]]}"#;
        let cases = [
            ("[1]".to_string(), "invalid Crossref work"),
            (format!(r#"{{"title":["T"],{a},{d}}}"#), "DOI is missing"),
            (format!(r#"{{"DOI":"nope","title":["T"],{a},{d}}}"#), "is not a DOI"),
            (format!(r#"{{"DOI":"10.1/x","title":[],{a},{d}}}"#), "title[0]"),
            (format!(r#"{{"DOI":"10.1/x","title":["T"],{a}}}"#), "no usable date"),
            (
                format!(r#"{{"DOI":"10.1/x","title":["T"],{a},"issued":{{"date-parts":[[2001,13]]}}}}"#),
                "not a date",
            ),
            (format!(r#"{{"DOI":"10.1/x","title":["T"],"author":[],{d}}}"#), "no usable author"),
        ];
        for (line, want) in cases {
            let err = map(&line, 100).unwrap_err();
            assert!(err.contains(want), "{line}: {err}");
        }
    }

    #[test]
    fn reads_an_api_response_item_by_item() {
        let doc = format!(
            "{{\"status\":\"ok\",\"message-type\":\"work-list\",\"message\":{{\"total-results\":2,\n\"items\":[\n{WORK},\n{{\"title\":[\"no doi\"]}}\n],\"items-per-page\":20}}}}\n"
        );
        let mut seen = Vec::new();
        for_each_item(doc.as_bytes(), |line, item| {
            seen.push((line, map_value(item, 100).map(|m| m.paper.id)));
            Ok::<_, ()>(())
        })
        .unwrap()
        .unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0], (3, Ok("10.1103/physrevd.76.013009".to_string())));
        assert_eq!(seen[1].0, 4);
        assert!(seen[1].1.as_ref().unwrap_err().contains("DOI is missing"));

        let broken = for_each_item("{\"message\":{\"items\":[{\"DOI\":".as_bytes(), |_, _| Ok::<_, ()>(()));
        assert!(broken.unwrap_err().1.contains("invalid Crossref API response"));
        let none = for_each_item("{\"message\":{}}".as_bytes(), |_, _| Ok::<_, ()>(()));
        assert!(none.unwrap_err().1.contains("no message.items"));
        let stopped = for_each_item(doc.as_bytes(), |_, _| Err("full"));
        assert_eq!(stopped.unwrap(), Err("full"));
        let lines = for_each_item(doc.as_bytes(), |_, _| Ok::<_, ()>(())).unwrap().unwrap();
        assert_eq!(lines, 5);
    }
}
