//! Helpers shared by the tests that drive the real binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use citecast::admin_client;
use citecast::server::ServerInfo;
use serde_json::Value;

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_citecast"));
    c.env("CITECAST_LOG", "warn");
    c
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A "bundled data" directory laid out like `data/`, holding the fixture. Formats are
/// detected from content, so the plain-text papers file may keep the bundled name.
pub fn bundled_fixture(dir: &Path) -> PathBuf {
    let bundled = dir.join("bundled");
    std::fs::create_dir_all(&bundled).unwrap();
    std::fs::copy(fixture("papers.jsonl"), bundled.join("papers.jsonl.gz")).unwrap();
    std::fs::copy(fixture("citations.tsv.gz"), bundled.join("citations_dated.tsv.gz")).unwrap();
    bundled
}

pub struct Server {
    pub child: Child,
    pub info: ServerInfo,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET with an API key, as a customer would.
pub fn get(info: &ServerInfo, key: &str, path: &str) -> (u16, Value) {
    let r =
        admin_client::request_as(&info.addr, Some(key), "GET", path, None, Duration::from_secs(10)).unwrap();
    (r.status, serde_json::from_str(&r.body).unwrap_or(Value::Null))
}

/// Starts `serve` on an ephemeral port and waits until `/readyz` says ready.
pub fn start(data: &Path, bundled: &Path) -> Server {
    start_with(data, bundled, &[])
}

/// As [`start`], with more `serve` arguments.
pub fn start_with(data: &Path, bundled: &Path, extra: &[&str]) -> Server {
    let _ = std::fs::remove_file(data.join("server.json"));
    let child = bin()
        .args(["serve", "--addr", "127.0.0.1:0", "--workers", "2", "--data-dir"])
        .arg(data)
        .arg("--bundled-data")
        .arg(bundled)
        .args(extra)
        .spawn()
        .unwrap();
    let mut server = Server { child, info: ServerInfo { addr: String::new(), pid: 0, token: String::new() } };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "server did not become ready");
        assert!(server.child.try_wait().unwrap().is_none(), "server exited early");
        if let Some(info) = std::fs::read_to_string(data.join("server.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<ServerInfo>(&t).ok())
        {
            server.info = info;
            if let Ok(r) = admin_client::request(&server.info, "GET", "/readyz", None, Duration::from_secs(5))
            {
                // Ready, and the forecast models warm (tests forecast right away).
                if r.status == 200 && r.body.contains("\"forecasts\":\"ready\"") {
                    return server;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn stop_gracefully(mut server: Server) {
    let status = Command::new("kill").arg("-TERM").arg(server.child.id().to_string()).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn run(args: &[&str], data: &Path) -> Output {
    let out = bin().args(args).arg("--data-dir").arg(data).output().unwrap();
    assert!(
        out.status.success(),
        "citecast {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stats_json(data: &Path) -> Value {
    serde_json::from_slice(&run(&["stats", "--json"], data).stdout).unwrap()
}

/// An external program a test drives (chromedriver, schemathesis' `st`), found on PATH.
/// Missing: the test fails when `require_env` is set (as `.ci/run` does), otherwise it
/// is skipped with a message saying how to install the program.
pub fn external_tool(program: &str, require_env: &str, install: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file()));
    if found.is_none() {
        assert!(
            std::env::var_os(require_env).is_none(),
            "{program} is not on PATH: {install} (`.ci/run` does)"
        );
        eprintln!("SKIPPED: no {program} on PATH ({install})");
    }
    found
}
