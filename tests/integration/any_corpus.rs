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
        panic!("not JSON ({e}): {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
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
    "soil", "carbon", "drought", "yield", "nitrogen", "root", "microbial", "crop", "rotation", "tillage",
    "irrigation", "wheat", "maize", "erosion", "biochar", "legume",
];

/// A year-only corpus of another field (1990–2004, DOIs as ids): authors have a hidden
/// quality; a paper's appeal is its team's, and later papers cite appealing, recent ones.
/// Written in the citecast format, papers and a citation edge list.
fn field_corpus(dir: &Path) -> (PathBuf, PathBuf, Vec<(String, i32)>) {
    let mut rng = Rng(2026);
    let authors: Vec<(String, f64)> = (0..260)
        .map(|i| {
            let name = format!("{}. {}", (b'A' + (i % 26) as u8) as char, SURNAMES[i % SURNAMES.len()]);
            // Distinct people may share a key (`kim_a`) only within this field.
            (format!("{name}{}", if i >= 26 * 2 { format!(" {}", i / 26) } else { String::new() }), rng.unit())
        })
        .collect();
    let mut papers: Vec<(String, i32, f64)> = Vec::new();
    let mut lines = String::new();
    let mut edges = String::new();
    for year in 1990..=2004 {
        let n = 90 + (year - 1990) * 6;
        for k in 0..n {
            let id = format!("10.5555/agro.{year}.{k:03}");
            let team: Vec<usize> = (0..1 + rng.below(3)).map(|_| rng.below(authors.len())).collect();
            let appeal = team.iter().map(|&a| authors[a].1).fold(0.0, f64::max) + 0.35 * rng.unit();
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
                papers.iter().filter(|(_, y, _)| *y < year && year - *y <= 5).collect();
            let mut refs = Vec::new();
            for _ in 0..8 {
                if earlier.is_empty() {
                    break;
                }
                let (cited, _, a) = earlier[rng.below(earlier.len())];
                if rng.unit() < a.powi(3) && !refs.contains(cited) {
                    refs.push(cited.clone());
                }
            }
            for r in &refs {
                edges.push_str(&format!("{id}\t{r}\n"));
            }
            lines.push_str(
                &json!({
                    "id": id,
                    "title": title,
                    "authors": names,
                    "submitted_utc": format!("{year}-07-01"),
                    "abstract": format!("We study {} in {} systems.", WORDS[rng.below(16)], WORDS[rng.below(16)]),
                })
                .to_string(),
            );
            lines.push('\n');
            papers.push((id, year, appeal));
        }
    }
    let (p, c) = (dir.join("agro-papers.jsonl"), dir.join("agro-citations.tsv"));
    std::fs::write(&p, lines).unwrap();
    std::fs::write(&c, format!("citing\tcited\n{edges}")).unwrap();
    (p, c, papers.into_iter().map(|(id, y, _)| (id, y)).collect())
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
    let (papers_file, citations_file, papers) = field_corpus(tmp.path());
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
    let collections = admin(&server.info, "GET", "/v1/collections", None);
    assert!(collections.to_string().contains("\"agro\""), "{collections}");

    // Train on the live store: splits from the data, year resolution.
    let trained = json_of(&run(&["train", "--collection", "agro", "--quick", "--seed", "5"], &data));
    let models = trained["models"].as_array().unwrap();
    assert_eq!(models.len(), 2, "{trained}");
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

    // Served equals reported, on the test year.
    for mode in ["at_publication", "early"] {
        let v = version(mode);
        run(&["models", "promote", &v], &data);
        let report = admin(&server.info, "GET", &format!("/admin/models/{v}?format=json"), None);
        let test_ids: Vec<String> = papers.iter().filter(|(_, y)| *y == 2002).map(|(id, _)| id.clone()).collect();
        let served = forecasts(&server.info, &key, &test_ids, mode);
        let mut distinct = BTreeMap::new();
        let scored: Vec<(f64, bool)> = served
            .iter()
            .map(|f| {
                assert!(f.get("error").is_none(), "{f}");
                assert_eq!(f["model_version"], v.as_str());
                let p = f["probability"].as_f64().unwrap();
                *distinct.entry(format!("{p:.6}")).or_insert(0) += 1;
                (p, f["outcome"]["reached_top_10_percent"].as_bool().unwrap())
            })
            .collect();
        assert!(distinct.len() > 50, "{mode}: near-constant served probabilities: {} values", distinct.len());
        let reported = report["served_test"]["roc_auc"].as_f64().unwrap();
        let recomputed = roc_auc(&scored);
        assert!(
            (reported - recomputed).abs() < 2e-3,
            "{mode}: the report says ROC-AUC {reported}, the served probabilities give {recomputed}"
        );
        assert!(reported > 0.7, "{mode}: ROC-AUC {reported} on a corpus built to be learnable");
    }

    // Backtests over two earlier cutoffs, on the same live store.
    let evaluated = json_of(&run(
        &["evaluate", "--collection", "agro", "--backtest", "2", &version("at_publication")],
        &data,
    ));
    let periods = evaluated["models"][0]["backtest"]["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 2, "{evaluated}");
    for p in periods {
        assert!(p["roc_auc"].as_f64().unwrap() > 0.5, "{p}");
        assert!(p["roc_auc_ci"][0].as_f64().unwrap() <= p["roc_auc"].as_f64().unwrap(), "{p}");
    }
    stop_gracefully(server);
}
