//! Bulk forecasts: `POST /v1/forecasts/bulk` (JSON Lines in and out, ids or a date range,
//! bad lines answered in place, each forecast metered) and `citecast forecast --all`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use actix_web::test;
use citecast_actors::forecast::corpus::Corpus;
use citecast_actors::forecast::registry;
use citecast_actors::forecast::task::{Mode, TaskSpec};
use citecast_actors::forecast::train::{self, TrainOptions};
use serde_json::Value;

use crate::common::{self, Setup};

/// An at-publication model trained once on the fixture (no early one: early lines are
/// answered `no_model`, an error per line).
fn models() -> &'static tempfile::TempDir {
    static MODELS: OnceLock<tempfile::TempDir> = OnceLock::new();
    MODELS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let corpus = Arc::new(Corpus::from_files(&common::fixture_files()).unwrap());
        let opts = TrainOptions::quick();
        let version = "at_publication-bulk";
        let outcome =
            train::train(corpus.clone(), &TaskSpec::bundled(), Mode::AtPublication, version, &opts).unwrap();
        registry::save(dir.path(), version, &outcome, &corpus, &opts, &TaskSpec::bundled(), None).unwrap();
        dir
    })
}

async fn harness() -> common::Harness {
    let dirs: Vec<PathBuf> = vec![models().path().to_path_buf()];
    common::Harness::start(Setup { tier: "enterprise", model_dirs: Some(dirs), ..Setup::default() }, |_| {})
        .await
}

fn bulk(uri: &str, key: &str, body: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri(uri)
        .insert_header(("authorization", format!("Bearer {key}")))
        .insert_header(("content-type", "application/x-ndjson"))
        .set_payload(body.to_string())
}

/// (status, content type, body lines as JSON; the whole body as one value when it is not
/// JSON Lines).
macro_rules! call {
    ($app:expr, $req:expr) => {{
        let resp = test::call_service(&$app, $req.to_request()).await;
        let status = resp.status().as_u16();
        let kind = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let body = test::read_body(resp).await;
        let lines: Vec<Value> = String::from_utf8_lossy(&body)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or(Value::String(l.into())))
            .collect();
        (status, kind, lines)
    }};
}

/// Fixture papers submitted in `year` (their submission dates).
fn fixture_papers_in(year: &str) -> usize {
    std::fs::read_to_string(common::fixture("papers.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| {
            serde_json::from_str::<Value>(l).unwrap()["submitted_utc"].as_str().unwrap().starts_with(year)
        })
        .count()
}

#[actix_web::test]
async fn ids_in_forecasts_out_with_bad_lines_answered_in_place_and_each_forecast_metered() {
    let h = harness().await;
    let app = app!(h);
    let before = h.state.metrics.totals().forecasts;
    let mut body = String::from(
        "{\"id\": \"hep-th/9711200\"}\n\
         \n\
         not json\n\
         {\"id\": \"no/such-paper\"}\n\
         {\"id\": \"hep-th/9711200\", \"mode\": \"early\"}\n\
         {\"id\": \"hep-th/9711200\", \"extra\": 1}\n",
    );
    // Past one chunk of 1,000: the stream goes on in order across chunks.
    for _ in 0..1_000 {
        body.push_str("{\"id\": \"9711200\"}\n");
    }
    let (status, kind, lines) = call!(app, bulk("/v1/forecasts/bulk", &h.key, &body));
    assert_eq!(status, 200, "{lines:?}");
    assert_eq!(kind, "application/x-ndjson");
    assert_eq!(lines.len(), 1_005);
    assert_eq!(lines[0]["line"], 1);
    assert_eq!(lines[0]["paper_id"], "hep-th/9711200");
    assert!(lines[0]["probability"].as_f64().is_some());
    assert_eq!(
        (lines[1]["line"].as_u64(), lines[1]["error"]["code"].as_str()),
        (Some(3), Some("invalid_body"))
    );
    assert_eq!((lines[2]["line"].as_u64(), lines[2]["error"]["code"].as_str()), (Some(4), Some("not_found")));
    assert_eq!(lines[2]["id"], "no/such-paper");
    assert_eq!((lines[3]["line"].as_u64(), lines[3]["error"]["code"].as_str()), (Some(5), Some("no_model")));
    assert_eq!(
        (lines[4]["line"].as_u64(), lines[4]["error"]["code"].as_str()),
        (Some(6), Some("invalid_body"))
    );
    assert_eq!(lines[1_004]["line"], 1_006);
    assert_eq!(lines[1_004]["probability"], lines[0]["probability"]);
    // Metered as POST /v1/forecasts meters: every forecast served counts.
    assert_eq!(h.state.metrics.totals().forecasts - before, 1_001);

    // The request's own mistakes are the usual JSON errors, before any line.
    let (status, _, e) = call!(app, bulk("/v1/forecasts/bulk?mode=late", &h.key, &body));
    assert_eq!((status, e[0]["error"]["code"].as_str()), (400, Some("invalid_parameter")));
    let (status, _, e) = call!(app, bulk("/v1/forecasts/bulk?from=1996-01-01", &h.key, &body));
    assert_eq!((status, e[0]["error"]["code"].as_str()), (400, Some("invalid_parameter")));
    let (status, _, e) = call!(app, bulk("/v1/forecasts/bulk", &h.key, ""));
    assert_eq!((status, e[0]["error"]["code"].as_str()), (400, Some("invalid_body")));
    // The body is bounded like every other (64 KiB by default).
    let huge = "{\"id\": \"9711200\"}\n".repeat(5_000);
    let refused = test::try_call_service(&app, bulk("/v1/forecasts/bulk", &h.key, &huge).to_request()).await;
    let status = match refused {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    assert_eq!(status, 413);
}

#[actix_web::test]
async fn an_empty_body_walks_a_date_range_or_a_whole_collection() {
    let h = harness().await;
    let app = app!(h);
    let (status, kind, lines) =
        call!(app, bulk("/v1/forecasts/bulk?from=1996-01-01&to=1996-12-31", &h.key, ""));
    assert_eq!((status, kind.as_str()), (200, "application/x-ndjson"));
    assert_eq!(lines.len(), fixture_papers_in("1996"));
    assert!(lines.iter().all(|l| l.get("line").is_none()));
    assert!(
        lines.iter().all(|l| l["probability"].is_number() || l["error"]["code"].is_string()),
        "{lines:?}"
    );
    let (status, _, all) = call!(app, bulk("/v1/forecasts/bulk?collection=default", &h.key, ""));
    assert_eq!((status, all.len()), (200, 300));

    let (status, _, e) = call!(app, bulk("/v1/forecasts/bulk?collection=nope", &h.key, ""));
    assert_eq!((status, e[0]["error"]["code"].as_str()), (404, Some("unknown_collection")));
    let (status, _, e) = call!(app, bulk("/v1/forecasts/bulk?from=1996-13-01", &h.key, ""));
    assert_eq!((status, e[0]["error"]["code"].as_str()), (400, Some("invalid_parameter")));
    let (status, _, e) = call!(app, bulk("/v1/forecasts/bulk?from=1997-01-01&to=1996-01-01", &h.key, ""));
    assert_eq!((status, e[0]["error"]["code"].as_str()), (400, Some("invalid_parameter")));
}

#[std::prelude::v1::test]
fn the_cli_writes_every_papers_line_from_the_store() {
    let data = tempfile::tempdir().unwrap();
    let fixture = common::fixture_files();
    let paths: Vec<&str> = fixture.iter().map(|p| p.to_str().unwrap()).collect();
    common::run(&[&["ingest"], paths.as_slice()].concat(), data.path());
    // The model the server would serve, where the server keeps trained ones.
    let src = models().path().join("at_publication-bulk");
    let dst = data.path().join("models").join("at_publication-bulk");
    std::fs::create_dir_all(&dst).unwrap();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dst.join(f.file_name())).unwrap();
    }
    let out = data.path().join("all.jsonl");
    let o = common::run(&["forecast", "--all", "--out", out.to_str().unwrap()], data.path());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("wrote 300 lines"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<Value> =
        std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 300);
    assert!(lines.iter().any(|l| l["probability"].is_number()));
    assert!(lines.iter().all(|l| l["paper_id"].is_string() || l["error"]["code"].is_string()));

    let year = data.path().join("1996.jsonl");
    let args =
        ["forecast", "--all", "--out", year.to_str().unwrap(), "--from", "1996-01-01", "--to", "1996-12-31"];
    common::run(&args, data.path());
    assert_eq!(std::fs::read_to_string(&year).unwrap().lines().count(), fixture_papers_in("1996"));
    let bad = common::bin()
        .args(["forecast", "--all", "--out", "/dev/null", "--collection", "nope", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no collection 'nope'"));
}
