//! Forecasts over the API, from a model trained on the fixture with the real pipeline.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::test;
use citecast_actors::forecast::corpus::Corpus;
use citecast_actors::forecast::registry;
use citecast_actors::forecast::task::{Mode, TaskSpec};
use citecast_actors::forecast::train::{self, TrainOptions};
use serde_json::{json, Value};

use crate::common::{self, Setup};

fn fixtures() -> Vec<PathBuf> {
    common::fixture_files()
}

/// Models for both modes trained once on the fixture, in a directory kept for the run.
fn models() -> &'static (tempfile::TempDir, Vec<String>) {
    static MODELS: OnceLock<(tempfile::TempDir, Vec<String>)> = OnceLock::new();
    MODELS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let corpus = Arc::new(Corpus::from_files(&fixtures()).unwrap());
        let opts = TrainOptions::quick();
        let mut versions = Vec::new();
        for mode in Mode::ALL {
            let version = format!("{}-test", mode.as_str());
            let outcome = train::train(corpus.clone(), &TaskSpec::bundled(), mode, &version, &opts).unwrap();
            registry::save(dir.path(), &version, &outcome, &corpus, &opts, &TaskSpec::bundled(), None)
                .unwrap();
            versions.push(version);
        }
        (dir, versions)
    })
}

async fn harness(tier: &'static str) -> common::Harness {
    harness_with(tier, vec![models().0.path().to_path_buf()]).await
}

/// An engine on the fixture serving the models under `model_dirs`, and a key on `tier`.
async fn harness_with(tier: &'static str, model_dirs: Vec<PathBuf>) -> common::Harness {
    common::Harness::start(
        Setup { tier, model_dirs: Some(model_dirs), admin_token: "admin", ..Setup::default() },
        |_| {},
    )
    .await
}

macro_rules! send {
    ($app:expr, $req:expr) => {{
        let resp = test::call_service(&$app, $req.to_request()).await;
        let status = resp.status().as_u16();
        let body = test::read_body(resp).await;
        (
            status,
            serde_json::from_slice::<Value>(&body)
                .unwrap_or(Value::String(String::from_utf8_lossy(&body).into())),
        )
    }};
}

fn get(uri: &str, key: &str) -> test::TestRequest {
    test::TestRequest::get().uri(uri).insert_header(("authorization", format!("Bearer {key}")))
}

fn post(uri: &str, key: &str, body: Value) -> test::TestRequest {
    test::TestRequest::post()
        .uri(uri)
        .insert_header(("authorization", format!("Bearer {key}")))
        .set_json(body)
}

#[actix_web::test]
async fn a_stored_paper_gets_a_forecast_in_both_modes() {
    let h = harness("pro").await;
    let app = app!(h);
    for mode in ["at_publication", "early"] {
        let (status, f) = send!(app, get(&format!("/v1/papers/9711200/forecast?mode={mode}"), &h.key));
        assert_eq!(status, 200, "{f}");
        assert_eq!(f["paper_id"], "hep-th/9711200");
        assert_eq!(f["mode"], mode);
        let p = f["probability"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p));
        assert!(f["label"] == "high" || f["label"] == "low");
        assert_eq!(f["model_version"], format!("{mode}-test"));
        assert_eq!(f["top_features"].as_array().unwrap().len(), 5);
        assert_eq!(f["as_of"], if mode == "early" { "1998-05-28" } else { "1997-11-27" });
    }
    let (status, body) = send!(app, get("/v1/papers/9711200/forecast?mode=later", &h.key));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_parameter")));
    let (status, _) = send!(app, get("/v1/papers/0000000/forecast", &h.key));
    assert_eq!(status, 404);

    // The newest paper of the fixture has no six months of data after it.
    let corpus = Corpus::from_files(&fixtures()).unwrap();
    let newest = corpus.ids.last().unwrap().clone();
    let (status, body) = send!(app, get(&format!("/v1/papers/{newest}/forecast?mode=early"), &h.key));
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("too_young")), "{body}");

    // Anonymous callers may not forecast.
    let req = test::TestRequest::get().uri("/v1/papers/9711200/forecast");
    let resp = test::try_call_service(&app, req.to_request()).await;
    let status = match resp {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    assert_eq!(status, 403);
}

#[actix_web::test]
async fn batches_respect_the_tier_and_report_each_bad_id() {
    let h = harness("free").await;
    let app = app!(h);
    let body = json!({ "ids": ["9711200", "hep-th/0000000", "hep-th/9711200"], "mode": "at_publication" });
    let (status, v) = send!(app, post("/v1/forecasts", &h.key, body));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["forecasts"].as_array().unwrap().len(), 2);
    assert_eq!(v["errors"][0]["id"], "hep-th/0000000");
    assert_eq!(v["errors"][0]["code"], "not_found");

    let ids: Vec<String> = (0..11).map(|_| "9711200".to_string()).collect();
    let (status, v) = send!(app, post("/v1/forecasts", &h.key, json!({ "ids": ids })));
    assert_eq!(status, 400);
    assert!(v["error"]["message"].as_str().unwrap().contains("allows 10"), "{v}");
    for bad in
        [json!({ "ids": [] }), json!({ "ids": ["1"], "mode": "x" }), json!({ "ids": ["1"], "extra": 1 })]
    {
        let (status, v) = send!(app, post("/v1/forecasts", &h.key, bad));
        assert_eq!(status, 400, "{v}");
    }
}

#[actix_web::test]
async fn a_new_paper_is_scored_from_its_metadata() {
    let h = harness("pro").await;
    let app = app!(h);
    let paper = json!({
        "title": "Black hole entropy from AdS/CFT",
        "abstract": "We count microstates of black holes using the large N limit of superconformal field theories.",
        "authors": ["J. Maldacena", "A. Newcomer"],
        "date": "2003-05-01",
        "references": ["hep-th/9711200"],
    });
    let (status, f) = send!(app, post("/v1/forecasts/score", &h.key, paper.clone()));
    assert_eq!(status, 200, "{f}");
    assert_eq!(f["mode"], "at_publication");
    assert!(f["probability"].as_f64().is_some());

    let mut early = paper.clone();
    early["mode"] = json!("early");
    assert_eq!(send!(app, post("/v1/forecasts/score", &h.key, early)).0, 400);
    let mut unknown_ref = paper.clone();
    unknown_ref["references"] = json!(["nope/1"]);
    // An unknown reference is a bad request naming it (not a 404: the URL is right).
    let (status, body) = send!(app, post("/v1/forecasts/score", &h.key, unknown_ref));
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("nope/1"), "{body}");
    for year in ["0000-06-01", "9999-06-01"] {
        let mut far = paper.clone();
        far["date"] = json!(year);
        let (status, body) = send!(app, post("/v1/forecasts/score", &h.key, far));
        assert_eq!(status, 400, "{year}: {body}");
    }
    let mut bad_date = paper.clone();
    bad_date["date"] = json!("May 2003");
    assert_eq!(send!(app, post("/v1/forecasts/score", &h.key, bad_date)).0, 400);
    let mut extra = paper;
    extra["citations"] = json!(5);
    assert_eq!(send!(app, post("/v1/forecasts/score", &h.key, extra)).0, 400);
}

#[actix_web::test]
async fn models_are_listed_and_their_reports_render() {
    let h = harness("pro").await;
    let app = app!(h);
    let (status, v) = send!(
        app,
        test::TestRequest::get().uri("/admin/models").insert_header(("authorization", "Bearer admin"))
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["models"].as_array().unwrap().len(), 2);
    assert!(v["models"].as_array().unwrap().iter().all(|m| m["active"] == true));
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/admin/models/early-test")
            .insert_header(("authorization", "Bearer admin"))
            .to_request(),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);
    let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert!(html.contains("<svg") && html.contains("early-test"));
    let (status, _) = send!(app, test::TestRequest::get().uri("/admin/models/early-test"));
    assert_eq!(status, 401);
    let (status, _) = send!(
        app,
        test::TestRequest::get().uri("/admin/models/none").insert_header(("authorization", "Bearer admin"))
    );
    assert_eq!(status, 404);
}

#[::core::prelude::v1::test]
fn training_is_reproducible_and_corrupt_models_are_refused() {
    let (dir, versions) = models();
    let first = registry::load(&dir.path().join(&versions[0])).unwrap();

    // Same data, same seed: the same weights.
    let corpus = Arc::new(Corpus::from_files(&fixtures()).unwrap());
    let opts = TrainOptions::quick();
    let again =
        train::train(corpus.clone(), &TaskSpec::bundled(), Mode::AtPublication, "again", &opts).unwrap();
    let out = tempfile::tempdir().unwrap();
    registry::save(out.path(), "again", &again, &corpus, &opts, &TaskSpec::bundled(), None).unwrap();
    let second = registry::load(&out.path().join("again")).unwrap();
    // (burnpack files carry random parameter ids, so compare behaviour, not bytes.)
    assert_eq!(first.meta.threshold, second.meta.threshold);
    let d = first.forecaster.feature_names.len();
    let rows: Vec<f32> = (0..50 * d).map(|i| ((i * 7919) % 13) as f32 / 6.0 - 1.0).collect();
    assert_eq!(first.forecaster.predict_raw(&rows), second.forecaster.predict_raw(&rows));
    assert!(first.meta.cohort.is_some() && first.meta.cohort == second.meta.cohort);
    assert!(!first.forecaster.gbdt.is_empty(), "the tree models are saved and loaded");
    assert_eq!(first.forecaster.gbdt, second.forecaster.gbdt);

    // Truncated tree models are refused with a clear error.
    let trees = out.path().join("again/gbdt.bin");
    let good = std::fs::read(&trees).unwrap();
    std::fs::write(&trees, &good[..good.len() / 2]).unwrap();
    let err = registry::load(&out.path().join("again")).err().expect("refused").to_string();
    assert!(err.contains("tree models") && err.contains("checksum"), "{err}");
    std::fs::write(&trees, &good).unwrap();

    // A truncated weights file is refused with a clear error.
    std::fs::write(out.path().join("again/mlp.bpk"), b"truncated").unwrap();
    let err = registry::load(&out.path().join("again")).err().expect("refused").to_string();
    assert!(err.contains("checksum"), "{err}");
    // ... and the service keeps serving the good models beside it.
    let (service, errors) =
        citecast_actors::forecast::service::ForecastService::load(&[dir.path(), out.path()]);
    assert_eq!(errors.len(), 1);
    assert_eq!(service.summaries().len(), 2);
}

#[actix_web::test]
async fn promotion_and_rollback_swap_the_serving_model_without_a_restart() {
    // A second at_publication model (another seed) beside the shared ones.
    let extra = tempfile::tempdir().unwrap();
    let corpus = Arc::new(Corpus::from_files(&fixtures()).unwrap());
    let opts = TrainOptions { seed: 99, ..TrainOptions::quick() };
    let outcome = train::train(
        corpus.clone(),
        &TaskSpec::bundled(),
        Mode::AtPublication,
        "at_publication-z-candidate",
        &opts,
    )
    .unwrap();
    registry::save(
        extra.path(),
        "at_publication-z-candidate",
        &outcome,
        &corpus,
        &opts,
        &TaskSpec::bundled(),
        None,
    )
    .unwrap();

    let h = harness_with("pro", vec![models().0.path().to_path_buf(), extra.path().to_path_buf()]).await;
    let app = app!(h);
    let version = |v: &Value| v["model_version"].as_str().unwrap().to_string();
    let uri = "/v1/papers/9711200/forecast";

    let (_, f) = send!(app, get(uri, &h.key));
    assert_eq!(version(&f), "at_publication-z-candidate", "the last loaded model of a mode serves");

    let promote = test::TestRequest::post()
        .uri("/admin/models/at_publication-test/promote")
        .insert_header(("authorization", "Bearer admin"));
    let (status, v) = send!(app, promote);
    assert_eq!(status, 200, "{v}");
    let (_, f) = send!(app, get(uri, &h.key));
    assert_eq!(version(&f), "at_publication-test", "a cached forecast of the old model is not served");
    let saved = std::fs::read_to_string(h.dir.path().join("models/active.json")).unwrap();
    assert!(saved.contains("at_publication-test"), "{saved}");

    let rollback = test::TestRequest::post()
        .uri("/admin/models/rollback/at_publication")
        .insert_header(("authorization", "Bearer admin"));
    assert_eq!(send!(app, rollback).0, 200);
    let (_, f) = send!(app, get(uri, &h.key));
    assert_eq!(version(&f), "at_publication-z-candidate");

    let unknown = test::TestRequest::post()
        .uri("/admin/models/nope/promote")
        .insert_header(("authorization", "Bearer admin"));
    assert_eq!(send!(app, unknown).0, 400);
    let bad_mode = test::TestRequest::post()
        .uri("/admin/models/rollback/sideways")
        .insert_header(("authorization", "Bearer admin"));
    assert_eq!(send!(app, bad_mode).0, 400);
    let (_, list) = send!(
        app,
        test::TestRequest::get().uri("/admin/models").insert_header(("authorization", "Bearer admin"))
    );
    assert_eq!(list["models"].as_array().unwrap().len(), 3);
}

#[actix_web::test]
async fn without_models_forecasts_say_so_clearly() {
    let h = harness_with("pro", vec![]).await;
    let app = app!(h);
    let (status, body) = send!(app, get("/v1/papers/9711200/forecast", &h.key));
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("no_model")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("at_publication"));
}

#[actix_web::test]
async fn drift_is_measured_once_enough_forecasts_are_served() {
    let h = harness("enterprise").await;
    let app = app!(h);
    let ids: Vec<String> = std::fs::read_to_string(fixtures()[0].clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .collect();
    let drift =
        |d: Vec<(Mode, Option<f64>)>| d.into_iter().find(|(m, _)| *m == Mode::AtPublication).unwrap().1;
    h.state.engine.model.send(citecast_actors::actors::WarmModels).await.unwrap().unwrap();
    for chunk in ids.chunks(100).take(1) {
        let (status, v) =
            send!(app, post("/v1/forecasts", &h.key, json!({ "ids": chunk, "mode": "at_publication" })));
        assert_eq!(status, 200, "{v}");
    }
    let d = h.state.engine.model.send(citecast_actors::actors::GetDrift).await.unwrap().unwrap();
    assert_eq!(drift(d), None, "100 forecasts are too few to judge");
    for chunk in ids.chunks(100).skip(1) {
        let (status, v) =
            send!(app, post("/v1/forecasts", &h.key, json!({ "ids": chunk, "mode": "at_publication" })));
        assert_eq!(status, 200, "{v}");
    }
    let d = h.state.engine.model.send(citecast_actors::actors::GetDrift).await.unwrap().unwrap();
    let psi = drift(d).expect("drift after 200+ served forecasts");
    assert!(psi.is_finite() && psi >= 0.0, "{psi}");
}

#[::core::prelude::v1::test]
fn the_served_probability_is_the_calibrated_rank_among_the_half_year_before() {
    use citecast_actors::forecast::cohort::{self, mid_rank};
    use citecast_actors::forecast::features::FeatureContext;
    use citecast_actors::forecast::service::ForecastService;

    let (dir, versions) = models();
    let corpus = Arc::new(Corpus::from_files(&fixtures()).unwrap());
    let model = registry::load(&dir.path().join(&versions[0])).unwrap();
    assert_eq!(model.meta.mode, Mode::AtPublication);
    let c = model.forecaster.cohort.expect("trained with a cohort rank");
    let (mut service, errors) = ForecastService::load(&[dir.path()]);
    assert!(errors.is_empty(), "{errors:?}");
    service.set_corpus(corpus.clone());

    // Recomputed here from scratch: every paper's raw score at its own as-of date.
    let ctx = FeatureContext::new(corpus.clone(), model.forecaster.text.clone(), &TaskSpec::bundled());
    let raw_of = |p: usize| {
        let mut x = ctx.features(p as u32, Mode::AtPublication);
        model.forecaster.normaliser.apply(&mut x);
        model.forecaster.predict_std(&x)[0]
    };
    let raw: Vec<f64> = (0..corpus.len()).map(raw_of).collect();
    let mut checked = 0;
    for p in (0..corpus.len()).step_by(7) {
        let t0 = corpus.day[p];
        let window: Vec<f32> = (0..corpus.len())
            .filter(|&q| corpus.day[q] < t0 && corpus.day[q] >= t0 - cohort::WINDOW_DAYS)
            .map(|q| raw[q] as f32)
            .collect();
        let expected = c.probability(mid_rank(&window, raw[p]));
        let served = service.forecast(&corpus.ids[p], Mode::AtPublication).unwrap();
        assert!(
            (served.probability - expected).abs() < 1e-6,
            "{}: {} vs {expected}",
            corpus.ids[p],
            served.probability
        );
        assert_eq!(served.label == "high", served.probability >= model.forecaster.threshold);
        checked += usize::from(window.len() >= 5);
    }
    assert!(checked >= 10, "too few papers with a real cohort: {checked}");
}

#[actix_web::test]
async fn warm_up_goes_in_steps_and_a_busy_model_engine_answers_503_in_bounded_time() {
    let h = harness("pro").await;
    let app = app!(h);
    // Stepped warm-up: each message does a bounded piece; a forecast is answered between two.
    let mut steps = 0;
    loop {
        let warm = h.state.engine.model.send(citecast_actors::actors::WarmStep { papers: 40 }).await;
        if warm.unwrap().unwrap() {
            break;
        }
        steps += 1;
        if steps == 3 {
            let first = std::fs::read_to_string(&fixtures()[0]).unwrap();
            let id = serde_json::from_str::<Value>(first.lines().next().unwrap()).unwrap()["id"].clone();
            let (status, v) = send!(app, post("/v1/forecasts", &h.key, json!({ "ids": [id] })));
            assert_eq!(status, 200, "{v}");
        }
        assert!(steps < 1_000, "the warm-up ends");
    }
    // Context per model, then the 300 papers in steps of 40, then the reference histogram.
    assert!(steps >= 2 * 9, "warmed in {steps} steps");

    // The model actor held (as by a warm-up that takes minutes): /admin/models answers
    // 503 with Retry-After once its bound passes, instead of hanging.
    h.state.engine.model.do_send(citecast_actors::actors::HoldModelActor(Duration::from_secs(8)));
    let started = std::time::Instant::now();
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/admin/models")
            .insert_header(("authorization", "Bearer admin"))
            .to_request(),
    )
    .await;
    let waited = started.elapsed();
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(resp.headers().get("retry-after").unwrap(), "5");
    let body: Value = serde_json::from_slice(&test::read_body(resp).await).unwrap();
    assert_eq!(body["error"]["code"], "busy", "{body}");
    assert!(waited < Duration::from_secs(7), "answered after {waited:?}");
}

#[actix_web::test]
async fn forecasts_speak_plain_words_round_probabilities_and_say_what_happened() {
    let h = harness("pro").await;
    let app = app!(h);
    let (status, f) = send!(app, get("/v1/papers/9711200/forecast?mode=at_publication", &h.key));
    assert_eq!(status, 200, "{f}");
    // Three significant digits.
    let p = f["probability"].as_f64().unwrap();
    let text = format!("{p}");
    let digits = text.trim_start_matches("0.").trim_start_matches('0').len();
    assert!(digits <= 3, "probability {p} has more than 3 significant digits");
    for c in f["top_features"].as_array().unwrap() {
        let name = c["feature"].as_str().unwrap();
        let entry = citecast_actors::forecast::glossary::entry(name)
            .expect("every served feature is in the glossary");
        assert_eq!(c["label"], entry.label, "{c}");
        let sentence = c["sentence"].as_str().unwrap();
        assert!(!sentence.contains(name) && sentence.contains(c["shown"].as_str().unwrap()), "{c}");
    }
    // hep-th/9711200 (1997) has its two-year window in the fixture: the forecast says how it went.
    let corpus = Corpus::from_files(&fixtures()).unwrap();
    let labels = citecast_actors::forecast::task::Labels::compute(&corpus, &TaskSpec::bundled());
    let no = corpus.by_id["hep-th/9711200"] as usize;
    let outcome = &f["outcome"];
    assert_eq!(outcome["citations_in_window"], labels.count[no], "{f}");
    assert_eq!(outcome["reached_top_10_percent"], labels.label[no].unwrap(), "{f}");
    assert_eq!(outcome["window_ends"], "1999-11-27");
    // The newest paper's window is not over: no outcome is claimed.
    let newest = corpus.ids.last().unwrap().clone();
    let (status, f) = send!(app, get(&format!("/v1/papers/{newest}/forecast?mode=at_publication"), &h.key));
    assert_eq!(status, 200, "{f}");
    assert!(f.get("outcome").is_none(), "{f}");
}

#[actix_web::test]
async fn a_paper_has_a_public_page_telling_its_forecast_in_plain_words() {
    let h = harness("pro").await;
    let app = app!(h);
    let page = |uri: &str| test::TestRequest::get().uri(uri).insert_header(("accept", "text/html"));
    let (status, body) = send!(app, page("/papers/hep-th/9711200"));
    assert_eq!(status, 200, "{body}");
    let html = body.as_str().unwrap();
    assert!(
        html.contains("<h1>The Large N Limit of Superconformal Field Theories and Supergravity</h1>"),
        "{html}"
    );
    assert!(
        html.contains("https://arxiv.org/abs/hep-th/9711200") && html.contains("/v1/papers/hep-th/9711200")
    );
    // Both forecasts, each with the probability, the model's precision and the reasons in
    // the glossary's words (as the API gives them), and what really happened.
    let (_, f) = send!(app, get("/v1/papers/9711200/forecast", &h.key));
    assert!(html.contains("At publication") && html.contains("After its first six months"), "{html}");
    let first = f["top_features"][0]["sentence"].as_str().unwrap();
    let first = first.replace('\'', "&#39;");
    assert!(html.contains(&first), "the API's sentence '{first}' is on the page");
    assert!(html.contains("did reach their year&#39;s top 10 %"), "{html}");
    let happened = format!("What happened: {} citations", f["outcome"]["citations_in_window"]);
    assert!(html.contains(&happened), "{html}");
    assert!(!html.contains("logit") && !html.contains("a_max_h"), "no model internals: {html}");
    // Citations per year as a chart, citing papers linked to their own pages.
    assert!(html.contains("<svg") && html.contains("citations per year"), "{html}");
    assert!(html.contains("href=\"/papers/hep-th/98"), "{html}");
    // Unknown and malformed ids get a readable page, not JSON.
    let (status, body) = send!(app, page("/papers/hep-th/0000000"));
    assert_eq!(status, 404);
    assert!(body.as_str().unwrap().contains("No paper &#39;hep-th/0000000&#39;"), "{body}");
    let (status, body) = send!(app, page("/papers/%FF"));
    assert_eq!(status, 400);
    assert!(body.as_str().unwrap().contains("<html"), "{body}");
    // While the models warm up the page still shows the paper, and says so.
    h.state.models_warm.store(false, Ordering::Release);
    let (status, body) = send!(app, page("/papers/hep-th/9711200"));
    assert_eq!(status, 200);
    assert!(body.as_str().unwrap().contains("warming up"), "{body}");
    h.state.models_warm.store(true, Ordering::Release);
}

#[actix_web::test]
async fn forecasts_asked_while_the_models_warm_up_get_503_at_once() {
    let h = harness("pro").await;
    let app = app!(h);
    h.state.models_warm.store(false, Ordering::Release);
    let started = std::time::Instant::now();
    let resp = test::call_service(&app, get("/v1/papers/9711200/forecast", &h.key).to_request()).await;
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(resp.headers().get("retry-after").unwrap(), "5");
    let body: Value = serde_json::from_slice(&test::read_body(resp).await).unwrap();
    assert_eq!(body["error"]["code"], "warming_up", "{body}");
    assert!(started.elapsed() < Duration::from_secs(2), "answered at once");
    let (status, _) = send!(app, post("/v1/forecasts", &h.key, json!({ "ids": ["9711200"] })));
    assert_eq!(status, 503);
    // Readiness tells a load balancer that papers serve and forecasts do not yet.
    let (status, ready) = send!(app, test::TestRequest::get().uri("/readyz"));
    assert_eq!((status, ready["forecasts"].as_str()), (200, Some("warming_up")), "{ready}");
    h.state.models_warm.store(true, Ordering::Release);
    let (status, f) = send!(app, get("/v1/papers/9711200/forecast", &h.key));
    assert_eq!(status, 200, "{f}");
    let (_, ready) = send!(app, test::TestRequest::get().uri("/readyz"));
    assert_eq!(ready["forecasts"], "ready");
}
