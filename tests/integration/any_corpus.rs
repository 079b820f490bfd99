//! A second corpus, as a user from another field brings it: year-only dates, DOIs for
//! ids, its own collection beside the bundled one. It goes through ingest → train on the
//! live store → evaluate with backtests → serve, on the real binary; the bundled
//! collection's forecasts do not move, and the figures the report states are computed
//! from exactly the probabilities the API serves.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;
use citecast::outbound::admin as admin_client;
use serde_json::{json, Value};

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SURNAMES: [&str; 24] = [
    "Kim", "Lee", "Park", "Garcia", "Muller", "Rossi", "Novak", "Silva", "Tanaka", "Chen", "Wang", "Singh",
    "Haddad", "Okafor", "Larsen", "Dubois", "Kowalski", "Ivanova", "Moreau", "Sato", "Nguyen", "Costa",
    "Fischer", "Moretti",
];
const WORDS: [&str; 16] = [
    "soil",
    "carbon",
    "drought",
    "yield",
    "nitrogen",
    "root",
    "microbial",
    "crop",
    "rotation",
    "tillage",
    "irrigation",
    "wheat",
    "maize",
    "erosion",
    "biochar",
    "legume",
];

/// A year-only corpus of another field (1990–2004, DOIs as ids): authors have a hidden
/// quality; a paper's appeal is its team's, and later papers cite appealing, recent ones.
/// Written in the citecast format, papers and a citation edge list.
fn field_corpus(dir: &Path, name: &str, year_only: bool) -> (PathBuf, PathBuf, Vec<(String, i32, String)>) {
    let mut rng = Rng(2026 + year_only as u64);
    // 260 people with distinct names (double-barrelled surnames) and a skewed quality.
    let authors: Vec<(String, f64)> = (0..260)
        .map(|i| {
            let surname = format!(
                "{}-{}",
                SURNAMES[i % SURNAMES.len()],
                SURNAMES[(i / SURNAMES.len()) % SURNAMES.len()]
            );
            (format!("{}. {surname}", (b'A' + (i % 26) as u8) as char), rng.unit().powi(2))
        })
        .collect();
    let mut papers: Vec<(String, i32, f64)> = Vec::new();
    let mut dated: Vec<(String, i32, String)> = Vec::new();
    let mut lines = String::new();
    let mut edges = String::new();
    for year in 1990..=2004 {
        let n = 90 + (year - 1990) * 6;
        for k in 0..n {
            let id = format!("10.5555/{name}.{year}.{k:03}");
            let team: Vec<usize> = (0..1 + rng.below(3)).map(|_| rng.below(authors.len())).collect();
            let appeal = team.iter().map(|&a| authors[a].1).fold(0.0, f64::max) + 0.15 * rng.unit();
            let title = format!(
                "{} and {} under {} {}",
                WORDS[rng.below(16)],
                WORDS[rng.below(16)],
                WORDS[rng.below(16)],
                WORDS[rng.below(16)]
            );
            let names: Vec<&str> = team.iter().map(|&a| authors[a].0.as_str()).collect();
            // Citations to earlier papers: appealing and recent ones are cited more.
            let earlier: Vec<&(String, i32, f64)> =
                papers.iter().filter(|(_, y, _)| *y < year && year - *y <= 4).collect();
            let mut refs = Vec::new();
            for _ in 0..30 {
                if earlier.is_empty() {
                    break;
                }
                let (cited, _, a) = earlier[rng.below(earlier.len())];
                if rng.unit() < a * a && !refs.contains(cited) {
                    refs.push(cited.clone());
                }
            }
            for r in &refs {
                edges.push_str(&format!("{id}\t{r}\n"));
            }
            let submitted = if year_only {
                format!("{year}-07-01")
            } else {
                // Spread over the year (citations only go to earlier years).
                let doy = 1 + (k * 364 / n) as u32;
                let (m, d) = (1 + (doy - 1) / 31, 1 + (doy - 1) % 28);
                format!("{year}-{:02}-{d:02}", m.min(12))
            };
            dated.push((id.clone(), year, submitted.clone()));
            lines.push_str(
                &json!({
                    "id": id,
                    "title": title,
                    "authors": names,
                    "submitted_utc": submitted,
                    "abstract": format!("We study {} in {} systems.", WORDS[rng.below(16)], WORDS[rng.below(16)]),
                })
                .to_string(),
            );
            lines.push('\n');
            papers.push((id, year, appeal));
        }
    }
    let (p, c) = (dir.join(format!("{name}-papers.jsonl")), dir.join(format!("{name}-citations.tsv")));
    std::fs::write(&p, lines).unwrap();
    std::fs::write(&c, format!("citing\tcited\n{edges}")).unwrap();
    (p, c, dated)
}

fn admin(info: &citecast::server::ServerInfo, method: &str, path: &str, body: Option<&str>) -> Value {
    let r = admin_client::request(info, method, path, body, Duration::from_secs(600)).unwrap();
    assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.body);
    serde_json::from_str(&r.body).unwrap()
}

fn forecasts(info: &citecast::server::ServerInfo, key: &str, ids: &[String], mode: &str) -> Vec<Value> {
    ids.chunks(500)
        .flat_map(|chunk| {
            let body = json!({ "ids": chunk, "mode": mode }).to_string();
            let r = admin_client::request_as(
                &info.addr,
                Some(key),
                "POST",
                "/v1/forecasts",
                Some(&body),
                Duration::from_secs(120),
            )
            .unwrap();
            assert_eq!(r.status, 200, "{}", r.body);
            let v: Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(v["errors"], json!([]), "{}", r.body);
            v["forecasts"].as_array().unwrap().clone()
        })
        .collect()
}

/// The figures the report of `version` states for its test period are those of the
/// probabilities the API serves for the same papers, read exactly from the forecast log.
fn served_equals_reported(
    info: &citecast::server::ServerInfo,
    key: &str,
    version: &str,
    test_ids: &[String],
    mode: &str,
) {
    let from = citecast_actors::dates::now_secs() - 1;
    let served = forecasts(info, key, test_ids, mode);
    let mut distinct = BTreeMap::new();
    let mut labels = BTreeMap::new();
    for f in &served {
        assert_eq!(f["model_version"], version, "{f}");
        *distinct.entry(f["probability"].to_string()).or_insert(0) += 1;
        labels.insert(
            f["paper_id"].as_str().unwrap().to_string(),
            f["outcome"]["reached_top_10_percent"].as_bool().unwrap(),
        );
    }
    assert!(distinct.len() > 30, "{mode}: near-constant served probabilities: {} values", distinct.len());
    // The forecast log keeps each served probability unrounded (written just after).
    let mut exact: BTreeMap<String, f64> = BTreeMap::new();
    for _ in 0..50 {
        let body =
            json!({ "op": "forecast_log", "from": from, "to": from + 3600, "limit": 100000 }).to_string();
        let log = admin(info, "POST", "/admin/op", Some(&body));
        exact = log["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["model_version"] == version && r["mode"] == mode)
            .map(|r| (r["paper_id"].as_str().unwrap().to_string(), r["probability"].as_f64().unwrap()))
            .collect();
        if labels.keys().all(|id| exact.contains_key(id)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(labels.keys().all(|id| exact.contains_key(id)), "{mode}: every served forecast is in the log");
    let scored: Vec<(f64, bool)> = labels.iter().map(|(id, y)| (exact[id], *y)).collect();
    let report = admin(info, "GET", &format!("/admin/models/{version}?format=json"), None);
    let reported = report["served_test"]["roc_auc"].as_f64().unwrap();
    let recomputed = roc_auc(&scored);
    assert!(
        (reported - recomputed).abs() < 1e-9,
        "{mode}: the report says ROC-AUC {reported}, the served probabilities give {recomputed}"
    );
    assert_eq!(
        report["counts"]["test"]["n"],
        json!(scored.len()),
        "{mode}: the report's test papers are these"
    );
    assert!(reported > 0.7, "{mode}: ROC-AUC {reported} on a corpus built to be learnable");
}

/// ROC-AUC with ties counted half (as the report computes it).
fn roc_auc(scored: &[(f64, bool)]) -> f64 {
    let pos: Vec<f64> = scored.iter().filter(|s| s.1).map(|s| s.0).collect();
    let neg: Vec<f64> = scored.iter().filter(|s| !s.1).map(|s| s.0).collect();
    let mut wins = 0.0;
    for p in &pos {
        for n in &neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (pos.len() * neg.len()) as f64
}

#[test]
fn a_year_only_corpus_with_dois_is_ingested_trained_evaluated_and_served_beside_the_bundled_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bundled = bundled_fixture(tmp.path());
    let (papers_file, citations_file, papers) = field_corpus(tmp.path(), "agro", true);
    let server = start(&data, &bundled);
    let key = json_of(&run(
        &["customers", "add", "--name", "Agro lab", "--email", "agro@example.org", "--tier", "enterprise"],
        &data,
    ))["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let hep: Vec<String> = std::fs::read_to_string(fixture("papers.jsonl"))
        .unwrap()
        .lines()
        .take(40)
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["arxiv_id"].as_str().unwrap().to_string())
        .collect();
    let before = forecasts(&server.info, &key, &hep, "at_publication");

    // Ingest into its own collection, through the running server.
    let p = papers_file.to_str().unwrap();
    let c = citations_file.to_str().unwrap();
    run(&["ingest", "--collection", "agro", p, c], &data);
    let after = forecasts(&server.info, &key, &hep, "at_publication");
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b["probability"], a["probability"], "a bundled forecast moved: {b} / {a}");
    }
    let (status, collections) = get(&server.info, &key, "/v1/collections");
    assert_eq!(status, 200, "{collections}");
    assert!(collections.to_string().contains("\"agro\""), "{collections}");

    // Train on the live store: splits from the data, year resolution.
    let trained = json_of(&run(&["train", "--collection", "agro", "--quick", "--seed", "5"], &data));
    let models = trained["models"].as_array().unwrap();
    assert_eq!(models.len(), 2, "{trained}");
    // Each new model comes with a backtest over two earlier cutoffs (the default).
    for m in models {
        assert_eq!(m["backtest"]["periods"].as_array().map(Vec::len), Some(2), "{m}");
    }
    let task = &models[0]["task"];
    assert_eq!(task["resolution"], "year", "{task}");
    // 1990–2004 with a two-year window: 2002 is the last labelled year (test), 2001 validates.
    assert_eq!(task["test"][0], "2002-01-01", "{task}");
    assert_eq!(task["validation"][0], "2001-01-01", "{task}");
    let version = |mode: &str| -> String {
        models.iter().find(|m| m["mode"] == mode).unwrap()["version"].as_str().unwrap().to_string()
    };
    let listed = admin(&server.info, "GET", "/admin/models", None);
    let agro_models: Vec<&Value> =
        listed["models"].as_array().unwrap().iter().filter(|m| m["collection"] == "agro").collect();
    assert_eq!(agro_models.len(), 2, "{listed}");
    // A model of one collection is refused for another's papers: the bundled ones answer
    // with the bundled model still.
    let again = forecasts(&server.info, &key, &hep[..5], "at_publication");
    assert_eq!(again[0]["model_version"], before[0]["model_version"]);

    // Served equals reported, on the test year, in both modes.
    for mode in ["at_publication", "early"] {
        let v = version(mode);
        run(&["models", "promote", &v], &data);
        let test_ids: Vec<String> =
            papers.iter().filter(|(_, y, _)| *y == 2002).map(|(id, _, _)| id.clone()).collect();
        served_equals_reported(&server.info, &key, &v, &test_ids, mode);
    }

    // A second corpus, dated to the day, in a third collection: its own task and model.
    let (p2, c2, soil) = field_corpus(tmp.path(), "soil", false);
    run(&["ingest", "--collection", "soil", p2.to_str().unwrap(), c2.to_str().unwrap()], &data);
    let trained = json_of(&run(
        &["train", "--collection", "soil", "--mode", "at_publication", "--quick", "--seed", "5"],
        &data,
    ));
    let soil_model = &trained["models"][0];
    assert_eq!(soil_model["task"]["resolution"], "day", "{soil_model}");
    let (from, to) = (
        soil_model["task"]["test"][0].as_str().unwrap().to_string(),
        soil_model["task"]["test"][1].as_str().unwrap().to_string(),
    );
    let v = soil_model["version"].as_str().unwrap().to_string();
    let body = json!({ "ids": [soil[0].0], "mode": "at_publication" }).to_string();
    let r = admin_client::request_as(
        &server.info.addr,
        Some(&key),
        "POST",
        "/v1/forecasts",
        Some(&body),
        Duration::from_secs(60),
    )
    .unwrap();
    let first: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        first["forecasts"][0]["model_version"],
        v.as_str(),
        "the soil model serves soil papers: {first}"
    );
    let test_ids: Vec<String> = soil
        .iter()
        .filter(|(_, _, d)| d.as_str() >= from.as_str() && d.as_str() <= to.as_str())
        .map(|(id, _, _)| id.clone())
        .collect();
    served_equals_reported(&server.info, &key, &v, &test_ids, "at_publication");

    // The monthly retraining, run now: a candidate per serving model trained with its
    // recipe and a new seed, compared on its validation period, canaried only when
    // significantly better; the bundled fixture is too thin for a derived task: skipped.
    run(&["jobs", "run", "retrain", "--wait"], &data);
    let audit = json_of(&run(&["audit", "--limit", "1000"], &data));
    let entries = audit["entries"].as_array().unwrap();
    let actions =
        |action: &str| -> Vec<&Value> { entries.iter().filter(|e| e["action"] == action).collect() };
    assert_eq!(actions("model.retrain.compare").len(), 3, "agro's two modes and soil's one: {audit}");
    assert!(!actions("model.retrain.skipped").is_empty(), "{audit}");
    let rollouts = json_of(&run(&["models", "experiment", "list"], &data));
    for e in actions("model.retrain.compare") {
        let candidate = e["target"].as_str().unwrap();
        let report = admin(&server.info, "GET", &format!("/admin/models/{candidate}?format=json"), None);
        let c = &report["comparison"];
        assert_eq!(c["candidate"], candidate, "{report}");
        assert!(c["papers"].as_u64().unwrap() > 50, "{c}");
        let canaried = rollouts.to_string().contains(candidate);
        assert_eq!(
            c["significant"].as_bool().unwrap(),
            canaried,
            "a canary exactly when significantly better: {c}"
        );
    }

    // Backtests over two earlier cutoffs, on the same live store.
    let evaluated = json_of(&run(
        &["evaluate", "--collection", "agro", "--backtest", "2", &version("at_publication")],
        &data,
    ));
    let periods = evaluated["models"][0]["backtest"]["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 2, "{evaluated}");
    for p in periods {
        let auc = p["roc_auc"]["value"].as_f64().unwrap();
        assert!(auc > 0.5, "{p}");
        assert!(
            p["roc_auc"]["lo"].as_f64().unwrap() <= auc && auc <= p["roc_auc"]["hi"].as_f64().unwrap(),
            "{p}"
        );
        assert!(p["brier"]["value"].as_f64().unwrap() < 0.25, "{p}");
    }
    // The report page shows them, with the reliability diagram and its error.
    let page = admin_client::request(
        &server.info,
        "GET",
        &format!("/admin/models/{}", version("at_publication")),
        None,
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(page.status, 200);
    for part in ["id=\"backtest\"", "Expected calibration error", "Task: Year resolution"] {
        assert!(page.body.contains(part), "the report page lacks {part}");
    }

    // Coverage, not the newest date: one unrelated paper dated 2026 does not make the
    // 23 years before it "observed, nobody cited".
    let early = |id: &str| get(&server.info, &key, &format!("/v1/papers/{id}/forecast?mode=early"));
    let (status, before) = early("hep-th/0302071");
    assert_eq!(status, 422, "{before}");
    let stray = tmp.path().join("stray.jsonl");
    let line = json!({"id": "10.9999/stray", "title": "An unrelated paper", "authors": ["Z. Stray"], "submitted_utc": "2026-11-20"});
    std::fs::write(&stray, format!("{line}\n")).unwrap();
    run(&["ingest", stray.to_str().unwrap()], &data);
    let (status, after) = early("hep-th/0302071");
    assert_eq!(status, 422, "the years without data are not read as no citations: {after}");
    assert!(after["error"]["message"].as_str().unwrap().contains("2003-02-11"), "{after}");
    let (status, stray_forecast) = get(&server.info, &key, "/v1/papers/10.9999%2Fstray/forecast");
    assert_eq!(status, 200, "{stray_forecast}");
    assert_eq!(stray_forecast["data_complete_until"], "2026-11-20", "{stray_forecast}");
    let (status, agro) = get(&server.info, &key, "/v1/papers/10.5555%2Fagro.2002.001/forecast");
    assert_eq!(status, 200, "{agro}");
    assert_eq!(agro["data_complete_until"], "2004-12-31", "{agro}");
    stop_gracefully(server);
}
