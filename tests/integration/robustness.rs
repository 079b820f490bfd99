//! Nothing lost, nobody locked out, on the real binary: a first start killed at several
//! points completes its import on the next start; one customer's slow request bodies do
//! not lock another customer out; the data directory, its files and backups are private;
//! operator pages keep their token when given other parameters.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use citecast::outbound::admin as admin_client;
use citecast::server::ServerInfo;
use serde_json::Value;

/// The bundled hep-th data of this checkout and its counts (data/README.md).
const BUNDLED_PAPERS: u64 = 29_555;
const BUNDLED_CITATIONS: u64 = 352_807;

fn bundled_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

fn spawn_serve(data: &Path, bundled: &Path) -> Child {
    let _ = std::fs::remove_file(data.join("server.json"));
    bin()
        .args(["serve", "--addr", "127.0.0.1:0", "--workers", "2", "--data-dir"])
        .arg(data)
        .arg("--bundled-data")
        .arg(bundled)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn server_info(data: &Path) -> Option<ServerInfo> {
    serde_json::from_str(&std::fs::read_to_string(data.join("server.json")).ok()?).ok()
}

/// `/admin/stats` of a running server, once it answers.
fn admin_stats(info: &ServerInfo) -> Option<Value> {
    let r = admin_client::request(info, "GET", "/admin/stats", None, Duration::from_secs(5)).ok()?;
    (r.status == 200).then(|| serde_json::from_str(&r.body).ok()).flatten()
}

/// Polls the starting server until `stop(stats)` holds, then kills it with SIGKILL.
fn kill_when(child: &mut Child, data: &Path, what: &str, stop: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        assert!(Instant::now() < deadline, "never reached: {what}");
        assert!(child.try_wait().unwrap().is_none(), "server exited before: {what}");
        if let Some(stats) = server_info(data).and_then(|i| admin_stats(&i)) {
            if stop(&stats) {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

fn count(stats: &Value, what: &str) -> u64 {
    stats["store"][what].as_u64().unwrap_or(0)
}

#[test]
fn a_first_start_killed_at_any_point_completes_its_import_on_the_next_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bundled = bundled_data();

    // 1. Killed mid-papers.
    let mut child = spawn_serve(&data, &bundled);
    kill_when(&mut child, &data, "papers stored", |s| count(s, "papers") > 0);
    let offline = stats_json(&data);
    let papers = offline["papers"].as_u64().unwrap();
    assert!(papers < BUNDLED_PAPERS && offline["citations"] == 0, "not mid-papers: {offline}");
    assert_eq!(offline["imports_incomplete"].as_array().unwrap().len(), 1, "{offline}");
    assert_eq!(offline["imports_incomplete"][0]["status"], "interrupted", "{offline}");

    // 2. Killed mid-citations: the restart redoes the import, keeping what it had.
    let mut child = spawn_serve(&data, &bundled);
    kill_when(&mut child, &data, "citations stored", |s| count(s, "citations") > 0);
    let offline = stats_json(&data);
    let citations = offline["citations"].as_u64().unwrap();
    assert!(citations > 0 && citations < BUNDLED_CITATIONS, "not mid-citations: {offline}");
    assert!(!offline["imports_incomplete"].as_array().unwrap().is_empty(), "{offline}");

    // 3. Killed early in a start, before or as its import begins.
    let mut child = spawn_serve(&data, &bundled);
    kill_when(&mut child, &data, "the server answering", |_| true);

    // 4. The next start is ready only once every paper and citation is stored.
    let mut child = spawn_serve(&data, &bundled);
    let deadline = Instant::now() + Duration::from_secs(900);
    let info = loop {
        assert!(Instant::now() < deadline, "never became ready");
        assert!(child.try_wait().unwrap().is_none(), "server exited");
        if let Some(info) = server_info(&data) {
            if let Some(stats) = admin_stats(&info) {
                if stats["ready"] == true {
                    assert_eq!(count(&stats, "papers"), BUNDLED_PAPERS, "ready before the import ended");
                    assert_eq!(
                        count(&stats, "citations"),
                        BUNDLED_CITATIONS,
                        "ready before the import ended"
                    );
                    assert_eq!(stats["index_docs"], BUNDLED_PAPERS, "{stats}");
                    assert_eq!(stats["imports_incomplete"], serde_json::json!([]), "{stats}");
                    break info;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // A known paper has all its citations (counted in data/citations_dated.tsv.gz).
    let key = {
        let out =
            run(&["customers", "add", "--name", "T", "--email", "t@example.org", "--tier", "pro"], &data);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["secret"].as_str().unwrap().to_string()
    };
    let (status, paper) = get(&info, &key, "/v1/papers/hep-th/9711200");
    assert_eq!(status, 200, "{paper}");
    assert_eq!(paper["citations"]["total"], 2414, "{paper}");
    let (status, found) = get(&info, &key, "/v1/search?q=anti-de+sitter&limit=1");
    assert_eq!(status, 200, "{found}");
    assert!(found["total"].as_u64().unwrap() > 100, "the index holds the re-imported papers: {found}");
    // The README's example cursor is the real second page on the bundled data.
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let first = "/v1/papers/hep-th/9711200/citations?direction=in&limit=20";
    let (_, page) = get(&info, &key, first);
    let next = page["next_cursor"].as_str().unwrap();
    assert!(readme.contains(&format!("{first}&cursor={next}'")), "README cursor is not {next}");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Sends a request head announcing a body of `len` bytes, then only the first bytes.
fn slow_body(addr: &str, key: &str, len: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /v1/forecasts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n{{\"ids\": ["
    );
    s.write_all(head.as_bytes()).unwrap();
    s
}

#[test]
fn slow_request_bodies_of_one_customer_do_not_lock_another_out() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bundled = bundled_fixture(tmp.path());
    let server = start(&data, &bundled);
    let add = |email: &str| {
        let out = run(&["customers", "add", "--name", "C", "--email", email, "--tier", "enterprise"], &data);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["secret"].as_str().unwrap().to_string()
    };
    let (slow, other) = (add("slow@example.org"), add("other@example.org"));
    // More trickling bodies than the server's 256 global slots.
    let mut held: Vec<TcpStream> = (0..300).map(|_| slow_body(&server.info.addr, &slow, 60_000)).collect();
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..20 {
        let (status, body) = get(&server.info, &other, "/v1/papers/9711200");
        assert_eq!(status, 200, "another customer is locked out: {body}");
    }
    // The slow bodies are cut off by the body deadline with a 408, not held for good.
    let mut first = held.remove(0);
    first.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut reply = String::new();
    let _ = first.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply:?}");
    assert!(reply.contains("body_timeout"), "{reply:?}");
}

#[cfg(unix)]
fn assert_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{} is readable by others: {:o}", path.display(), mode & 0o777);
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            assert_private(&entry.unwrap().path());
        }
    }
}

#[cfg(unix)]
#[test]
fn the_data_directory_and_backups_are_private_and_the_admin_token_stays_out_of_urls() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // A directory made open to everyone beforehand, as an older version or a user might.
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bundled = bundled_fixture(tmp.path());
    let server = start(&data, &bundled);
    assert_private(&data);

    let file = tmp.path().join("b.ccbak");
    let out = bin().arg("backup").arg(&file).arg("--data-dir").arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_private(&file);
    assert_private(&data);

    // The token in the URL opens nothing (it would end up in histories and logs); in the
    // header it does, with the page's own parameters.
    let token = &server.info.token;
    let page = format!("/admin/dashboard?token={token}&hours=6");
    let r = admin_client::request_as(&server.info.addr, None, "GET", &page, None, Duration::from_secs(10))
        .unwrap();
    assert_eq!(r.status, 401, "{}", r.body);
    let r = admin_client::request_as(
        &server.info.addr,
        Some(token),
        "GET",
        "/admin/dashboard?hours=6",
        None,
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    // A request line too long for the HTTP parser gets the JSON error, not a bare 400.
    let mut s = TcpStream::connect(&server.info.addr).unwrap();
    let uri = format!("/v1/search?q={}", "a".repeat(100 * 1024));
    s.write_all(format!("GET {uri} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 414"), "{reply:?}");
    let body: Value = serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "uri_too_long", "{reply}");

    // A keep-alive connection carrying a 60 KB body and then another request still works:
    // the guard skips bodies instead of mistaking them for heads.
    let mut s = TcpStream::connect(&server.info.addr).unwrap();
    let body = format!("{{\"ids\": [\"{}\"]}}", "9".repeat(60_000));
    let two = format!(
        "POST /v1/forecasts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(two.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    assert_eq!(reply.matches("HTTP/1.1 ").count(), 2, "{reply}");
    assert!(reply.contains("\"status\":\"ok\""), "{reply}");
    drop(server);
}
