//! Drives the real `citecast` binary: first start on an empty directory loads the
//! bundled data, operator commands go through the running server, a kill -9 and a
//! restart lose nothing, and the commands work on the directory once it stops.

use std::time::Duration;

use crate::common::*;
use citecast::outbound::admin as admin_client;
use serde_json::Value;

#[test]
fn serve_loads_bundled_data_and_survives_kill_and_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bundled = bundled_fixture(tmp.path());

    let mut server = start(&data, &bundled);
    // A new customer gets a key with one command, through the running server.
    let out =
        run(&["customers", "add", "--name", "Lab", "--email", "lab@example.org", "--tier", "pro"], &data);
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = added["secret"].as_str().unwrap().to_string();
    assert!(key.starts_with("cc_live_"));
    let r = admin_client::request_as(
        &server.info.addr,
        Some(&key),
        "GET",
        "/v1/papers/9711200",
        None,
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("ratelimit-limit"), Some("600"));
    assert!(r.header("ratelimit-remaining").is_some() && r.header("etag").is_some());
    let (status, paper) = get(&server.info, &key, "/v1/papers/hep-th/9711200");
    assert_eq!(status, 200);
    assert_eq!(paper["citations"]["total"], 130);
    let (status, search) = get(&server.info, &key, "/v1/search?q=black+hole+entropy");
    assert_eq!(status, 200);
    assert!(search["total"].as_u64().unwrap() > 0);

    // Operator commands reach the running server instead of fighting over the sled lock.
    let stats = stats_json(&data);
    assert_eq!((stats["papers"].as_u64(), stats["citations"].as_u64()), (Some(300), Some(1_597)));
    let out = bin()
        .arg("ingest")
        .arg(fixture("papers.jsonl"))
        .arg(fixture("citations.tsv.gz"))
        .args(["--json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("through it"));
    let reports: Value = serde_json::from_slice(&out.stdout).unwrap();
    let new: u64 = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["papers_new"].as_u64().unwrap() + r["citations_new"].as_u64().unwrap())
        .sum();
    assert_eq!(new, 0);

    // kill -9, then restart on the same directory: everything is still there.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let server = start(&data, &bundled);
    let (status, again) = get(&server.info, &key, "/v1/papers/9711200");
    assert_eq!(status, 200);
    assert_eq!(again["citations"], paper["citations"]);
    let (_, search_again) = get(&server.info, &key, "/v1/search?q=black+hole+entropy");
    assert_eq!(search_again["total"], search["total"]);
    let (_, account) = get(&server.info, &key, "/v1/account");
    assert_eq!(account["tier"]["id"], "pro");
    let used = account["usage_today"]["requests"].as_u64().unwrap();

    // A job run waited for: its record, exit 0.
    let out = run(&["jobs", "run", "churn", "--wait"], &data);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"job\": \"churn\"") && text.contains("\"status\": \"ok\""), "{text}");

    // A graceful stop (SIGTERM) and restart keeps today's usage: quotas don't reset.
    stop_gracefully(server);
    let server = start(&data, &bundled);
    let (_, account) = get(&server.info, &key, "/v1/account");
    assert_eq!(account["usage_today"]["requests"].as_u64().unwrap(), used + 1, "{account}");
    stop_gracefully(server);

    // Offline, the same command works on the directory directly.
    let customer = added["customer"]["id"].as_str().unwrap();
    let out = run(&["customers", "keys", customer], &data);
    let keys: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&key), "secrets are never listed");

    // With the server gone, the same commands open the store directly.
    let stats = stats_json(&data);
    assert_eq!((stats["papers"].as_u64(), stats["citations"].as_u64()), (Some(300), Some(1_597)));
}

#[test]
fn ingest_without_a_server_reports_bad_lines_and_help_is_useful() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"id\":\"a\"}\nnot json at all\n").unwrap();
    let out = run(&["ingest", fixture("papers.jsonl").to_str().unwrap(), bad.to_str().unwrap()], &data);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("300 new"), "{text}");
    assert!(text.contains("line 1:") && text.contains("line 2:"), "{text}");

    let missing = bin().args(["ingest", "/no/such/file.jsonl", "--data-dir"]).arg(&data).output().unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such/file.jsonl"));

    let empty = tmp.path().join("empty");
    let out = bin().args(["stats", "--data-dir"]).arg(&empty).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no citecast data"));

    for sub in ["serve", "ingest", "stats"] {
        let out = bin().args([sub, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && help.contains("--data-dir"), "{sub}: {help}");
    }
}

#[test]
fn an_online_backup_restores_into_a_new_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, restored) = (tmp.path().join("data"), tmp.path().join("restored"));
    let bundled = bundled_fixture(tmp.path());
    let server = start(&data, &bundled);
    let out = run(&["customers", "add", "--name", "B", "--email", "b@example.org"], &data);
    let key = serde_json::from_slice::<Value>(&out.stdout).unwrap()["secret"].as_str().unwrap().to_string();
    let (_, paper) = get(&server.info, &key, "/v1/papers/9711200");
    let (_, search) = get(&server.info, &key, "/v1/search?q=string+theory");

    // While the server runs, the backup goes through it.
    let file = tmp.path().join("citecast.backup");
    let out = run(&["backup", file.to_str().unwrap()], &data);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary["entries"].as_u64().unwrap() > 1_597, "{summary}");
    assert!(summary["index_files"].as_u64().unwrap() > 1, "the index's files are in the backup: {summary}");
    stop_gracefully(server);

    run(&["restore", file.to_str().unwrap()], &restored);
    let server = start(&restored, &bundled);
    let (status, again) = get(&server.info, &key, "/v1/papers/9711200");
    assert_eq!(status, 200, "keys come back with the restore");
    assert_eq!(again, paper);
    let (_, search_again) = get(&server.info, &key, "/v1/search?q=string+theory");
    assert_eq!(search_again["total"], search["total"], "the restored index answers as before");
    assert!(restored.join("index/meta.json").exists(), "the index came back with the backup");
    stop_gracefully(server);

    // A damaged backup is refused and writes nothing.
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 40]).unwrap();
    let damaged = tmp.path().join("damaged");
    let out = bin().args(["restore"]).arg(&file).arg("--data-dir").arg(&damaged).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("corrupt"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!damaged.join("store").exists());
}

#[test]
fn models_rescan_fails_when_a_model_is_refused_and_seal_vouches_for_a_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let src = std::fs::read_dir(&shipped)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("model.json").is_file())
        .expect("a shipped model");
    // A copy under another version name in the data directory's models, unsealed.
    let copy = data.join("models").join("early-copied-by-hand");
    std::fs::create_dir_all(&copy).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "SHA256SUMS" {
            std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
        }
    }
    let meta_path = copy.join("model.json");
    let mut meta: Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta["version"] = "early-copied-by-hand".into();
    std::fs::write(&meta_path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();

    let out = bin().args(["models", "rescan", "--data-dir"]).arg(&data).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "rescan succeeded: {err}");
    assert!(err.contains("refused") && err.contains("SHA256SUMS") && err.contains("models seal"), "{err}");

    let out = bin().args(["models", "seal"]).arg(&copy).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = bin().args(["models", "rescan", "--data-dir"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A byte changed after sealing: refused again, naming the file.
    let mut bytes = std::fs::read(copy.join("text.bin")).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 1;
    std::fs::write(copy.join("text.bin"), bytes).unwrap();
    let out = bin().args(["models", "rescan", "--data-dir"]).arg(&data).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("text.bin") && err.contains("checksum mismatch"), "{err}");
}

#[test]
fn the_cli_refuses_to_guess_names_every_job_and_logs_plain_text() {
    let tmp = tempfile::tempdir().unwrap();
    // No --data-dir and no data in the default place: refused, nothing created.
    let out = bin()
        .args(["customers", "list"])
        .env_remove("CITECAST_DATA_DIR")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("./citecast-data") && err.contains("--data-dir"), "{err}");
    assert!(!tmp.path().join("citecast-data").exists(), "no empty store was created");

    // An unknown job names the real ones; `jobs --help` lists every job.
    let names: Vec<String> = citecast::ops::jobs::default_specs().into_iter().map(|s| s.name).collect();
    let out = bin().args(["jobs", "run", "nightly"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for name in &names {
        assert!(err.contains(name.as_str()), "{name} missing from: {err}");
    }
    let out = bin().args(["jobs", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for name in &names {
        assert!(help.contains(name.as_str()), "{name} missing from jobs --help: {help}");
    }

    // Logs on a pipe carry no colour codes.
    let data = tmp.path().join("data");
    let out = bin()
        .env("CITECAST_LOG", "info")
        .args(["ingest", fixture("papers.jsonl").to_str().unwrap(), "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ingested"), "{err}");
    assert!(!err.contains('\u{1b}'), "ANSI escapes in piped logs: {err}");
}
