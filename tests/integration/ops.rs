//! Operations on the real binary: a store written by schema version 1 migrates on
//! start; a canary advances, rolls back and promotes under load with no failed request;
//! a guard rolls a bad candidate back on its own; kill -9 during promotions, backups and
//! ingests loses nothing committed; the backup job keeps N files and a full disk fails the
//! backup, not the server; a failing job fires an alert to the webhook, `/status` and
//! `/metrics`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use citecast::outbound::admin as admin_client;
use serde_json::Value;

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

fn new_key(data: &Path, n: usize) -> String {
    let email = format!("c{n}@example.org");
    let out = run(&["customers", "add", "--name", "C", "--email", &email, "--tier", "enterprise"], data);
    json_of(&out)["secret"].as_str().unwrap().to_string()
}

fn admin_get(info: &citecast::server::ServerInfo, path: &str) -> (u16, String) {
    let r = admin_client::request(info, "GET", path, None, Duration::from_secs(10)).unwrap();
    (r.status, r.body)
}

#[test]
fn a_store_written_by_schema_version_1_is_migrated_on_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let status = std::process::Command::new("tar")
        .arg("xzf")
        .arg(fixture("store-v1.tar.gz"))
        .arg("-C")
        .arg(&data)
        .status()
        .unwrap();
    assert!(status.success());
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("store-v1-customer.json")).unwrap()).unwrap();
    let bundled = bundled_fixture(tmp.path());
    let server = start(&data, &bundled);
    let key = written["secret"].as_str().unwrap();
    let (status, account) = get(&server.info, key, "/v1/account");
    assert_eq!(status, 200, "{account}");
    assert_eq!(account["customer"]["status"], "active", "{account}");
    assert_eq!(account["customer"]["id"], written["customer"]["id"]);
    let (status, paper) = get(&server.info, key, "/v1/papers/9711200");
    assert_eq!(status, 200, "{paper}");
    stop_gracefully(server);
    assert_eq!(stats_json(&data)["papers"], 300);
    let listed = json_of(&run(&["customers", "list"], &data));
    assert_eq!(listed["customers"][0]["updated"], written["customer"]["created"], "{listed}");
}

/// Requests forecasts from `keys` in a loop until `stop`; counts every non-200 answer.
fn load(
    info: &citecast::server::ServerInfo,
    keys: Vec<String>,
    ids: Vec<String>,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..3)
        .map(|t| {
            let (addr, keys, ids) = (info.addr.clone(), keys.clone(), ids.clone());
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let key = &keys[i % keys.len()];
                    let path = format!("/v1/papers/{}/forecast?mode=at_publication", ids[i % ids.len()]);
                    match admin_client::request_as(
                        &addr,
                        Some(key),
                        "GET",
                        &path,
                        None,
                        Duration::from_secs(10),
                    ) {
                        Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                        Ok(r) => {
                            eprintln!("failed request: {} {}", r.status, r.body);
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(e) => {
                            eprintln!("failed request: {e}");
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                    i += 3;
                    // Stay inside the keys' rate limits: a 429 here would be the limiter
                    // working, not a failed rollout.
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect()
}

fn fixture_ids(n: usize) -> Vec<String> {
    std::fs::read_to_string(fixture("papers.jsonl"))
        .unwrap()
        .lines()
        .take(n)
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .collect()
}

fn running(data: &Path) -> Value {
    json_of(&run(&["models", "experiment", "list"], data))["rollouts"]["running"]["at_publication"].clone()
}

#[test]
fn canary_advances_rolls_back_and_promotes_under_load_without_failed_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bundled = bundled_fixture(tmp.path());
    let models = data.join("models");
    for seed in ["18", "19"] {
        let out = bin()
            .args(["train", "--mode", "at_publication", "--seed", seed, "--bundled-data"])
            .arg(&bundled)
            .arg("--models-dir")
            .arg(&models)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let server = start(&data, &bundled);
    let versions: Vec<String> = json_of(&run(&["models", "list"], &data))["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["mode"] == "at_publication")
        .map(|m| m["version"].as_str().unwrap().to_string())
        .collect();
    let candidate = versions.iter().find(|v| v.ends_with("-s18")).unwrap().clone();
    let other = versions.iter().find(|v| v.ends_with("-s19")).unwrap().clone();
    let keys: Vec<String> = (0..12).map(|n| new_key(&data, n)).collect();
    let (stop, ok, failed) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let threads =
        load(&server.info, keys.clone(), fixture_ids(150), stop.clone(), ok.clone(), failed.clone());

    // Canary: 5 %, 50 %, rolled back by an operator; the control never stopped serving.
    let started = json_of(&run(&["models", "experiment", "canary", &candidate], &data));
    let control = started["rollout"]["control"].as_str().unwrap().to_string();
    assert_eq!(running(&data)["strategy"]["stage"], 0);
    std::thread::sleep(Duration::from_millis(800));
    run(&["models", "experiment", "advance", "at_publication"], &data);
    assert_eq!(running(&data)["strategy"]["stage"], 1);
    std::thread::sleep(Duration::from_millis(800));
    let id = running(&data)["id"].as_str().unwrap().to_string();
    let report = json_of(&run(&["models", "experiment", "report", &id], &data));
    assert!(report["report"]["rollout"]["candidate_stats"]["served"].as_u64().unwrap() > 0, "{report}");
    assert!(report["report"]["rollout"]["control_stats"]["served"].as_u64().unwrap() > 0, "{report}");
    assert!(report["report"]["distinct_papers"].as_u64().unwrap() > 0, "{report}");
    run(&["models", "rollback", "at_publication"], &data);
    assert!(running(&data).is_null());
    let active = |data: &Path| -> String {
        json_of(&run(&["models", "list"], data))["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mode"] == "at_publication" && m["active"] == true)
            .unwrap()["version"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(active(&data), control);

    // A second canary goes all the way: 5 → 50 → 100 → promoted.
    run(&["models", "experiment", "canary", &candidate], &data);
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(500));
        run(&["models", "experiment", "advance", "at_publication"], &data);
    }
    assert!(running(&data).is_null());
    assert_eq!(active(&data), candidate);
    std::thread::sleep(Duration::from_millis(500));

    // A guard trips: any drift is too much here, so the next tick rolls back on its own.
    run(
        &["models", "experiment", "canary", &other, "--max-drift-psi", "0.0000001", "--min-forecasts", "3"],
        &data,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        run(&["jobs", "run", "rollouts"], &data);
        std::thread::sleep(Duration::from_millis(300));
        if running(&data).is_null() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the guard never tripped: {}",
            json_of(&run(&["models", "experiment", "list"], &data))
        );
    }
    let finished = json_of(&run(&["models", "experiment", "list"], &data))["rollouts"]["finished"].clone();
    let last = finished.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["state"]["state"], "rolled_back", "{last}");
    assert_eq!(last["state"]["automatic"], true, "{last}");
    assert!(last["state"]["reason"].as_str().unwrap().contains("drift"), "{last}");
    assert_eq!(active(&data), candidate, "the automatic rollback keeps the serving model");

    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    assert!(ok.load(Ordering::Relaxed) > 100, "too little load: {}", ok.load(Ordering::Relaxed));
    assert_eq!(failed.load(Ordering::Relaxed), 0, "requests failed during the rollouts");

    // Every step is in the audit log, with who did it.
    let audit = json_of(&run(&["audit", "--limit", "1000"], &data));
    let actions: Vec<&str> =
        audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in ["rollout.start", "rollout.advance", "model.rollback", "job.run", "customer.add"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    assert!(audit["entries"][0]["actor"].as_str().unwrap().contains("cli:"), "{audit}");
    for k in &keys {
        assert!(!audit.to_string().contains(k.as_str()), "no secret is ever written to the audit log");
    }

    // kill -9 right after promotion requests: the choice on disk stays readable and a
    // restarted server serves forecasts.
    drop(server);
    for delay_ms in [0u64, 20, 80] {
        let server = start(&data, &bundled);
        let info = server.info.clone();
        let body = format!("{{\"op\":\"promote\",\"version\":\"{control}\"}}");
        let sender = std::thread::spawn(move || {
            let _ = admin_client::request(&info, "POST", "/admin/op", Some(&body), Duration::from_secs(5));
        });
        std::thread::sleep(Duration::from_millis(delay_ms));
        let mut server = server;
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        sender.join().unwrap();
        let server = start(&data, &bundled);
        let (status, f) = get(&server.info, &keys[0], "/v1/papers/9711200/forecast");
        assert_eq!(status, 200, "{f}");
        let v = f["model_version"].as_str().unwrap();
        assert!(v == control || v == candidate, "{v}");
        drop(server);
    }
    let saved = std::fs::read_to_string(data.join("models/active.json")).unwrap();
    serde_json::from_str::<Value>(&saved).expect("active.json is whole after kill -9");
}

/// Mounts a tiny tmpfs (root only) to stand for a full disk.
fn tiny_filesystem(dir: &Path) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(dir)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn backup_job_keeps_the_newest_files_and_a_full_disk_fails_the_backup_not_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let backups = tmp.path().join("backups");
    let bundled = bundled_fixture(tmp.path());
    let server =
        start_with(&data, &bundled, &["--backup-dir", backups.to_str().unwrap(), "--backup-keep", "2"]);
    let key = new_key(&data, 0);
    let wait_for_runs = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let jobs = json_of(&run(&["jobs", "list"], &data));
            let runs = jobs["history"].as_array().unwrap().iter().filter(|r| r["job"] == "backup").count();
            if runs >= n {
                return jobs;
            }
            assert!(Instant::now() < deadline, "backup runs did not finish: {jobs}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    for n in 1..=3 {
        run(&["jobs", "run", "backup"], &data);
        wait_for_runs(n);
    }
    // Usage history (live days; archived days are read the same way).
    for _ in 0..3 {
        assert_eq!(get(&server.info, &key, "/v1/papers/9711200").0, 200);
    }
    std::thread::sleep(Duration::from_millis(1500));
    let (status, usage) = get(&server.info, &key, "/v1/account/usage");
    assert_eq!(status, 200, "{usage}");
    assert!(usage["total_requests"].as_u64().unwrap() >= 3, "{usage}");
    let (status, bad) = get(&server.info, &key, "/v1/account/usage?from=2026-02-01&to=2026-01-01");
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("invalid_parameter")), "{bad}");
    let files: Vec<_> = std::fs::read_dir(&backups).unwrap().collect();
    assert_eq!(files.len(), 2, "retention keeps the newest two");

    // The backup directory's filesystem is full: the run fails and is retried, the
    // server keeps answering, and no partial file is left behind.
    let full = tmp.path().join("full");
    if !tiny_filesystem(&full) {
        eprintln!("cannot mount a tmpfs here (needs root): the full-disk part of this drill did not run");
        return;
    }
    drop(server);
    let server = start_with(&data, &bundled, &["--backup-dir", full.to_str().unwrap()]);
    run(&["jobs", "run", "backup"], &data);
    let jobs = wait_for_runs(4);
    let left: Vec<_> = std::fs::read_dir(&full).unwrap().map(|e| e.unwrap().file_name()).collect();
    let _ = std::process::Command::new("umount").arg(&full).status();
    assert!(left.is_empty(), "the failed backup left {left:?}");
    let last = jobs["history"].as_array().unwrap().iter().find(|r| r["job"] == "backup").unwrap().clone();
    assert_eq!(last["outcome"]["status"], "failed", "{last}");
    let error = last["outcome"]["error"].as_str().unwrap();
    assert!(error.contains("space") || error.contains("No space"), "{error}");
    let backup = jobs["jobs"].as_array().unwrap().iter().find(|j| j["name"] == "backup").unwrap().clone();
    assert_eq!(backup["next_trigger"], "retry", "a failed backup is retried: {backup}");
    let (status, _) = get(&server.info, &key, "/v1/papers/9711200");
    assert_eq!(status, 200, "the server keeps serving");

    // The same through the admin API: a full disk is the server's failure (5xx, with the
    // reason), never a 400; a path that cannot exist is the caller's.
    assert!(tiny_filesystem(&full));
    let body = serde_json::json!({ "path": full.join("by-api.bak") }).to_string();
    let r =
        admin_client::request(&server.info, "POST", "/admin/backup", Some(&body), Duration::from_secs(30))
            .unwrap();
    let _ = std::process::Command::new("umount").arg(&full).status();
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!((r.status, v["error"]["code"].as_str()), (500, Some("backup_failed")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("space"), "{v}");
    let body = serde_json::json!({ "path": "/no/such/dir/x.bak" }).to_string();
    let r =
        admin_client::request(&server.info, "POST", "/admin/backup", Some(&body), Duration::from_secs(30))
            .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
}

#[test]
fn a_failing_job_fires_an_alert_to_the_webhook_status_page_and_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bundled = bundled_fixture(tmp.path());
    // The backup directory is a file, so every backup fails.
    let not_a_dir = tmp.path().join("not-a-dir");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let hook = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", hook.local_addr().unwrap());
    let received = std::thread::spawn(move || {
        let (mut conn, _) = hook.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = vec![0u8; 16_384];
        let mut got = Vec::new();
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                    })
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= len {
                    break;
                }
            }
        }
        conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
        String::from_utf8_lossy(&got).into_owned()
    });
    let server = start_with(
        &data,
        &bundled,
        &["--backup-dir", not_a_dir.to_str().unwrap(), "--alert-webhook", &url, "--monitor-interval", "1"],
    );
    run(&["jobs", "run", "backup"], &data);
    let request = received.join().unwrap();
    let body: Value = serde_json::from_str(request.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["alert"], "job-failures", "{body}");
    assert_eq!(body["state"], "firing", "{body}");
    assert!(body["runbook"].as_str().unwrap().starts_with("docs/runbooks/"), "{body}");

    let (status, page) = admin_get(&server.info, "/status");
    assert_eq!(status, 200);
    assert!(page.contains("job-failures") && page.contains("firing"), "{page}");
    assert!(page.contains("availability"), "the SLOs are on the page");
    // Internal jobs are not on the public page; runbooks are links that open; a young
    // server's uptime names the span it covers.
    assert!(!page.contains("<h2>Jobs</h2>") && !page.contains("newsletter"), "{page}");
    assert!(page.contains("href=\"/runbooks/job-failures\""), "{page}");
    let (status, runbook) = admin_get(&server.info, "/runbooks/job-failures");
    assert_eq!(status, 200);
    assert!(runbook.starts_with("# job-failures"), "{runbook}");
    assert!(page.contains("observed so far") || page.contains("not measured yet"), "{page}");
    let (_, metrics) = admin_get(&server.info, "/metrics");
    assert!(metrics.contains("citecast_alert_state{alert=\"job-failures\"} 1"), "{metrics}");
    assert!(metrics.contains("citecast_job_failures_total{job=\"backup\"}"), "{metrics}");
    let (status, dash) = admin_get(&server.info, "/admin/dashboard");
    assert_eq!(status, 200);
    assert!(dash.contains("<svg") && dash.contains("Requests per second"), "{dash}");
    // One navigation to every operator page (the token stays out of URLs); the jobs table lives here.
    assert!(
        dash.contains("<nav") && dash.contains("href=\"/admin/audit\"") && !dash.contains("token="),
        "{dash}"
    );
    assert!(dash.contains("/admin/models/at_publication-"), "model reports are linked: {dash}");
    assert!(dash.contains("<h2>Jobs</h2>") && dash.contains("newsletter"), "{dash}");
    assert!(dash.contains("Customers and billing") && dash.contains("web sign-ups"), "{dash}");

    // Incidents and samples survive a restart: the open incident is still there and the
    // uptime over the last day is measured across both runs.
    drop(server);
    let server = start(&data, &bundled);
    let (status, body) = admin_get(&server.info, "/status?format=json");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["incidents"][0]["alert"], "job-failures", "{v}");
    let uptime = v["uptime_24h"].as_f64().expect("uptime over both runs");
    assert!(uptime > 0.0 && uptime <= 1.0, "{v}");
}

#[test]
fn kill_9_during_backups_leaves_a_clean_store_and_no_half_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bundled = bundled_fixture(tmp.path());
    let key = {
        let _server = start(&data, &bundled);
        new_key(&data, 0)
    };
    for (i, delay_ms) in [0u64, 5, 30].into_iter().enumerate() {
        let mut server = start(&data, &bundled);
        let file = tmp.path().join(format!("b{i}.ccbak"));
        let mut backup = bin().arg("backup").arg(&file).arg("--data-dir").arg(&data).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        let _ = backup.wait();
        // Whatever the timing, a file under the final name is a whole, verified backup.
        if file.exists() {
            run(&["restore", file.to_str().unwrap()], &tmp.path().join(format!("restored{i}")));
        }
        let server = start(&data, &bundled);
        let (status, paper) = get(&server.info, &key, "/v1/papers/9711200");
        assert_eq!(status, 200, "{paper}");
        drop(server);
        assert_eq!(stats_json(&data)["papers"], 300);
    }
}

#[test]
fn kill_9_during_ingest_loses_nothing_committed_and_a_rerun_completes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // No bundled data: the store starts empty and everything arrives by `ingest`.
    let nothing = tmp.path().join("no-bundled-data");
    let (papers, citations) = (fixture("papers.jsonl"), fixture("citations.tsv.gz"));
    let mut last_papers = 0;
    for delay_ms in [5u64, 40, 150] {
        let mut server = start(&data, &nothing);
        let mut ingest =
            bin().arg("ingest").arg(&papers).arg(&citations).arg("--data-dir").arg(&data).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        let _ = ingest.wait();
        // The store opens clean and keeps at least what it had.
        let stats = stats_json(&data);
        let now = stats["papers"].as_u64().unwrap();
        assert!(now >= last_papers, "papers went from {last_papers} to {now}");
        last_papers = now;
    }
    // Re-running the import completes it; the index matches the store after a restart.
    let server = start(&data, &nothing);
    run(&["ingest", papers.to_str().unwrap(), citations.to_str().unwrap()], &data);
    let key = new_key(&data, 0);
    let (status, paper) = get(&server.info, &key, "/v1/papers/hep-th/9711200");
    assert_eq!(status, 200, "{paper}");
    assert_eq!(paper["citations"]["total"], 130);
    drop(server);
    let stats = stats_json(&data);
    assert_eq!((stats["papers"].as_u64(), stats["citations"].as_u64()), (Some(300), Some(1_597)));
    let server = start(&data, &nothing);
    let (_, search) = get(&server.info, &key, "/v1/search?q=black+hole+entropy");
    assert!(search["total"].as_u64().unwrap() > 0, "{search}");
}

#[test]
fn the_churn_job_flags_a_customer_without_an_active_key() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bundled = bundled_fixture(tmp.path());
    let server = start(&data, &bundled);
    let active = new_key(&data, 0);
    assert_eq!(get(&server.info, &active, "/v1/papers/9711200").0, 200);
    let gone = json_of(&run(&["customers", "add", "--name", "G", "--email", "g@example.org"], &data));
    let (gone_customer, gone_key) = (
        gone["customer"]["id"].as_str().unwrap().to_string(),
        gone["key"]["id"].as_str().unwrap().to_string(),
    );
    run(&["customers", "revoke", &gone_key], &data);
    run(&["jobs", "run", "churn"], &data);
    let deadline = Instant::now() + Duration::from_secs(30);
    let flagged = loop {
        let jobs = json_of(&run(&["jobs", "list"], &data));
        if jobs["history"].as_array().unwrap().iter().any(|r| r["job"] == "churn") {
            break json_of(&run(&["customers", "churn"], &data));
        }
        assert!(Instant::now() < deadline, "the churn job did not run: {jobs}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let customers = flagged["customers"].as_array().unwrap();
    assert_eq!(customers.len(), 1, "{flagged}");
    assert_eq!(customers[0]["customer_id"], gone_customer.as_str());
    assert_eq!(customers[0]["signals"], serde_json::json!(["no_active_key"]));

    // Job settings change through the server, are validated, and are audited.
    run(&["jobs", "set", "churn", "--schedule", "every 6h", "--daily-budget", "100"], &data);
    let jobs = json_of(&run(&["jobs", "list"], &data));
    let churn = jobs["jobs"].as_array().unwrap().iter().find(|j| j["name"] == "churn").unwrap().clone();
    assert_eq!((churn["schedule"].as_str(), churn["daily_budget"].as_u64()), (Some("every 6h"), Some(100)));
    let bad = bin()
        .args(["jobs", "set", "churn", "--schedule", "every banana", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("banana"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let audit = json_of(&run(&["audit", "--limit", "1000"], &data));
    let settings =
        audit["entries"].as_array().unwrap().iter().find(|e| e["action"] == "job.settings").unwrap().clone();
    assert!(settings["before"].as_str().unwrap().contains("daily 06:00"), "{settings}");
}

#[test]
fn the_newsletter_job_builds_a_weekly_issue_into_the_public_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bundled = bundled_fixture(tmp.path());
    let server = start(&data, &bundled);
    let (status, empty) = admin_get(&server.info, "/newsletter");
    assert_eq!(status, 200);
    assert!(empty.contains("No issue has been published yet"), "{empty}");
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let jobs = json_of(&run(&["jobs", "list"], &data));
            let runs =
                jobs["history"].as_array().unwrap().iter().filter(|r| r["job"] == "newsletter").count();
            if runs >= n {
                return jobs;
            }
            assert!(Instant::now() < deadline, "the newsletter job did not run: {jobs}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    run(&["jobs", "run", "newsletter"], &data);
    let jobs = wait_for(1);
    let last = jobs["history"].as_array().unwrap().iter().find(|r| r["job"] == "newsletter").unwrap().clone();
    assert_eq!(last["outcome"]["status"], "ok", "{last}");
    assert!(last["operations"].as_u64().unwrap() >= 1, "{last}");

    let (status, index) = admin_get(&server.info, "/newsletter");
    assert_eq!(status, 200);
    assert!(index.contains("/newsletter/1"), "{index}");
    let (status, issue) = admin_get(&server.info, "/newsletter/1?format=json");
    assert_eq!(status, 200);
    let issue: Value = serde_json::from_str(&issue).unwrap();
    let items = issue["items"].as_array().unwrap();
    assert!(!items.is_empty() && items.len() <= 10, "{issue}");
    let probs: Vec<f64> = items.iter().map(|i| i["probability"].as_f64().unwrap()).collect();
    assert!(probs.windows(2).all(|w| w[0] >= w[1]), "most likely first: {probs:?}");
    let (status, page) = admin_get(&server.info, "/newsletter/1");
    assert_eq!(status, 200);
    assert!(page.contains(items[0]["paper_id"].as_str().unwrap()), "{page}");
    // Honest about what "high" means, titles without LaTeX, links to the paper and arXiv.
    assert!(
        page.contains("did reach the top 10") && page.contains("threshold. On the papers of its test years"),
        "{page}"
    );
    assert!(!page.contains("$") && page.contains("href=\"/papers/"), "{page}");
    // Each pick links to its paper's page, which tells the forecast in words.
    let first = items[0]["paper_id"].as_str().unwrap();
    let (status, paper) = admin_get(&server.info, &format!("/papers/{first}"));
    assert_eq!(status, 200, "{paper}");
    assert!(paper.contains("<h2>Forecast</h2>") && paper.contains("Why, in order of weight"), "{paper}");
    assert!(page.contains("https://arxiv.org/abs/"), "{page}");
    let why = items[0]["why"].as_str().unwrap();
    assert!(!why.contains(" = ") && !why.contains("logit"), "the reason is a sentence: {why}");

    // A second run in the same week adds no issue.
    run(&["jobs", "run", "newsletter"], &data);
    wait_for(2);
    let (_, index) = admin_get(&server.info, "/newsletter?format=json");
    assert_eq!(serde_json::from_str::<Value>(&index).unwrap()["issues"].as_array().unwrap().len(), 1);

    // Bad addresses get a readable page.
    for (path, text) in
        [("/newsletter/99", "There is no issue 99"), ("/newsletter/abc", "not an issue number")]
    {
        let (status, page) = admin_get(&server.info, path);
        assert_eq!(status, 404, "{path}");
        assert!(page.contains(text) && page.contains("<html"), "{page}");
    }
}
