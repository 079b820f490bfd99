//! `citecast ingest --format openalex|arxiv|crossref` on the committed open-data fixtures
//! (`tests/fixtures/openalex-works.jsonl`, `arxiv-metadata.jsonl` with
//! `arxiv-citations.tsv`, `crossref-works.jsonl`, `crossref-message.json`): the per-line
//! reports, idempotent re-imports, and the API answering to every alias, keeping the
//! collections' authors apart, searching one collection and listing them.

use std::path::Path;
use std::sync::atomic::Ordering;

use citecast_actors::actors::Reconcile;
use serde_json::Value;

use crate::common::{self, fixture, Setup};

/// GET `uri` with the harness' key: the status and the JSON body.
macro_rules! get {
    ($app:expr, $h:expr, $uri:expr) => {{
        let req = actix_web::test::TestRequest::get()
            .uri($uri)
            .insert_header(("authorization", format!("Bearer {}", $h.key)));
        let resp = actix_web::test::call_service(&$app, req.to_request()).await;
        let status = resp.status().as_u16();
        let body: Value = serde_json::from_slice(&actix_web::test::read_body(resp).await).expect("JSON body");
        (status, body)
    }};
}

/// Runs `citecast ingest --json ARGS` on `data`: the per-file reports.
fn ingest(data: &Path, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["ingest", "--json"];
    all.extend_from_slice(args);
    let out = common::run(&all, data);
    serde_json::from_slice(&out.stdout).expect("ingest --json prints the reports")
}

/// Lines rejected and the reasons, in line order.
fn rejected(report: &Value) -> Vec<(u64, String)> {
    report["error_samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["reason"].as_str().unwrap().to_string()))
        .collect()
}

fn n(report: &Value, field: &str) -> u64 {
    report[field].as_u64().unwrap_or_else(|| panic!("{field} in {report}"))
}

/// All three formats through the CLI; returns each command's reports.
fn ingest_all(data: &Path) -> [Vec<Value>; 3] {
    let path = |name: &str| fixture(name).display().to_string();
    let openalex = ingest(data, &["--format", "openalex", &path("openalex-works.jsonl")]);
    let arxiv =
        ingest(data, &["--format", "arxiv", &path("arxiv-metadata.jsonl"), &path("arxiv-citations.tsv")]);
    // `auto` recognises both Crossref shapes.
    let crossref = ingest(data, &[&path("crossref-works.jsonl"), &path("crossref-message.json")]);
    [openalex, arxiv, crossref]
}

#[test]
fn each_format_is_reported_line_by_line_and_reimporting_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let [openalex, arxiv, crossref] = ingest_all(data);

    let r = &openalex[0];
    assert_eq!((r["format"].as_str(), r["collection"].as_str()), (Some("openalex"), Some("openalex")));
    assert_eq!(
        (n(r, "lines"), n(r, "papers_new"), n(r, "citations_new"), n(r, "errors")),
        (8, 6, 9, 3),
        "{r}"
    );
    let lines = rejected(r);
    assert_eq!(lines.iter().map(|l| l.0).collect::<Vec<_>>(), vec![4, 5, 6], "{r}");
    assert!(lines[0].1.contains("unknown paper id 'W9999999'"), "{lines:?}");
    assert!(lines[1].1.contains("invalid OpenAlex work"), "{lines:?}");
    assert!(lines[2].1.contains("no usable date"), "{lines:?}");

    let (meta, cites) = (&arxiv[0], &arxiv[1]);
    assert_eq!((meta["format"].as_str(), meta["collection"].as_str()), (Some("arxiv"), Some("arxiv")));
    assert_eq!((n(meta, "papers_new"), n(meta, "errors")), (5, 1), "{meta}");
    assert_eq!(rejected(meta)[0].0, 4);
    assert!(rejected(meta)[0].1.contains("invalid arXiv record"), "{meta}");
    // The citations file is recognised whatever the format; bare old-style numbers resolve.
    assert_eq!(cites["format"], "citations_tsv");
    assert_eq!((n(cites, "citations_new"), n(cites, "errors")), (5, 1), "{cites}");
    assert_eq!(
        rejected(cites),
        vec![(7, "unknown paper id '2401.99999': ingest its paper record first".into())]
    );

    let (works, message) = (&crossref[0], &crossref[1]);
    assert_eq!(
        (works["format"].as_str(), works["collection"].as_str()),
        (Some("crossref"), Some("crossref"))
    );
    assert_eq!((n(works, "papers_new"), n(works, "citations_new"), n(works, "errors")), (4, 4, 1), "{works}");
    assert_eq!(n(works, "references_skipped"), 2, "references without DOI are counted");
    assert_eq!(rejected(works)[0].0, 3);
    assert_eq!(message["format"], "crossref_response");
    assert_eq!((n(message, "papers_new"), n(message, "citations_new"), n(message, "errors")), (2, 3, 1));
    let (line, reason) = &rejected(message)[0];
    assert_eq!(*line, 219, "the line where the bad item ends");
    assert!(reason.contains("item 3: DOI is missing"), "{reason}");

    // The same files again: nothing new, nothing updated, the same lines rejected.
    let again = ingest_all(data);
    for (first, second) in [openalex, arxiv, crossref].iter().flatten().zip(again.iter().flatten()) {
        for field in ["papers_new", "papers_updated", "citations_new"] {
            assert_eq!(n(second, field), 0, "{field} on re-import: {second}");
        }
        assert_eq!(n(second, "papers_unchanged"), n(first, "papers_new"), "{second}");
        assert_eq!(n(second, "citations_unchanged"), n(first, "citations_new"), "{second}");
        assert_eq!(rejected(second), rejected(first));
    }

    // A collection name outside [a-z0-9-]{1,40} is refused before anything is read.
    let out = common::bin()
        .args(["ingest", "--collection", "Physics X"])
        .arg(fixture("openalex-works.jsonl"))
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("may only hold a-z, 0-9 and '-'"));
}

#[actix_web::test]
async fn the_api_answers_to_every_alias_and_keeps_collections_apart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    ingest_all(&data);
    // An index from before collections is discarded (schema change) and rebuilt from the
    // store: the rebuild files each paper under its collection, as the imports did.
    std::fs::remove_dir_all(data.join("index")).unwrap();
    let h = common::Harness::start(Setup { load: false, ..Setup::default() }, |c| c.data_dir = data.clone())
        .await;
    let rebuilt = h.state.engine.ingest.send(Reconcile { progress: None }).await.unwrap().unwrap();
    assert!(rebuilt, "the index was rebuilt from the store");
    h.state.ready.store(true, Ordering::Release);
    let app = app!(h);

    for (alias, canonical) in [
        ("10.5555/oa.1", "10.5555/oa.1"),
        ("W1001", "10.5555/oa.1"),
        ("https%3A%2F%2Fopenalex.org%2FW1001", "10.5555/oa.1"),
        ("https://doi.org/10.5555/OA.1", "10.5555/oa.1"),
        ("W1002", "W1002"),
        ("10.5555/OA.4", "10.5555/oa.4"),
        ("0704.0001", "0704.0001"),
        ("arXiv:0704.0001", "0704.0001"),
        ("10.1103/PhysRevD.76.013009", "0704.0001"),
        ("hep-th/9901001", "hep-th/9901001"),
        ("9901001", "hep-th/9901001"),
        ("101001", "math.AG/0101001"),
        ("10.5555/cr.5", "10.5555/cr.5"),
    ] {
        let (status, body) = get!(app, h, &format!("/v1/papers/{alias}"));
        assert_eq!(status, 200, "{alias}: {body}");
        assert_eq!(body["id"], canonical, "{alias}");
    }
    let (status, body) = get!(app, h, "/v1/papers/W1006");
    assert_eq!(status, 404, "the work without a date was rejected: {body}");
    let (_, body) = get!(app, h, "/v1/papers/W1001");
    assert_eq!(body["url"], "https://doi.org/10.5555/oa.1");
    assert_eq!(body["citations"]["total"], 3, "{body}");

    // Jin Kim of each collection is a different person.
    for (key, papers) in [("kim_j@openalex", 3), ("kim_j@crossref", 3), ("kim_j@arxiv", 2)] {
        let (status, body) = get!(app, h, &format!("/v1/authors/{key}"));
        assert_eq!(status, 200, "{key}: {body}");
        assert_eq!(body["paper_count"], papers, "{key}: {body}");
    }
    let (status, _) = get!(app, h, "/v1/authors/kim_j");
    assert_eq!(status, 404, "no default-collection Kim");

    let ids = |body: &Value| -> Vec<String> {
        body["hits"].as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap().to_string()).collect()
    };
    let (status, all) = get!(app, h, "/v1/search?q=entropy&limit=100");
    assert_eq!(status, 200, "{all}");
    let (_, crossref) = get!(app, h, "/v1/search?q=entropy&collection=crossref&limit=100");
    assert_eq!(crossref["filters"]["collection"], "crossref");
    let found = ids(&crossref);
    assert_eq!(found.len(), 5, "{crossref}");
    assert!(found.iter().all(|id| id.starts_with("10.5555/cr.")), "{found:?}");
    assert!(all["total"].as_u64().unwrap() > crossref["total"].as_u64().unwrap());
    let (_, arxiv) = get!(app, h, "/v1/search?q=entropy&collection=arxiv&limit=100");
    let mut found = ids(&arxiv);
    found.sort();
    assert_eq!(found, vec!["1501.00001", "hep-th/9901001", "math.AG/0101001"]);
    let (_, by_author) = get!(app, h, "/v1/search?q=entropy&author=kim_j@openalex&limit=100");
    assert!(ids(&by_author)
        .iter()
        .all(|id| ["10.5555/oa.1", "W1002", "10.5555/oa.3"].contains(&id.as_str())));
    assert_eq!(by_author["total"], 3, "{by_author}");
    // A name searched within a collection means that collection's author.
    let (_, named) = get!(app, h, "/v1/search?q=entropy&author=Jin+Kim&collection=crossref&limit=100");
    assert_eq!(named["filters"]["author"], "kim_j@crossref", "{named}");
    assert_eq!(named["total"], 3, "{named}");
    let (status, body) = get!(app, h, "/v1/search?q=entropy&collection=nope");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_parameter");
    assert!(body["error"]["message"].as_str().unwrap().contains("unknown collection 'nope'"), "{body}");

    let (status, body) = get!(app, h, "/v1/collections");
    assert_eq!(status, 200, "{body}");
    let listed: Vec<(String, u64, String, String)> = body["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |f: &str| c[f].as_str().unwrap().to_string();
            (s("name"), c["papers"].as_u64().unwrap(), s("first_submitted"), s("last_submitted"))
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("arxiv".into(), 5, "1999-01-01".into(), "2014-12-31".into()),
            ("crossref".into(), 6, "2018-05-20".into(), "2021-08-15".into()),
            ("openalex".into(), 6, "2019-03-04".into(), "2021-06-30".into()),
        ]
    );
    let (_, doc) = get!(app, h, "/v1/openapi.json");
    assert!(doc["paths"]["/v1/collections"]["get"].is_object(), "the endpoint is documented");
}
