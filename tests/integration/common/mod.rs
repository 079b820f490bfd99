//! The harness every integration test uses: the in-process `App` on a fresh engine
//! ([`Harness`], [`app!`]) and the real binary started as a server ([`start`], [`run`]).
#![allow(dead_code)]

pub mod browser;
pub mod smtp;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use std::sync::atomic::Ordering;

use actix_web::web;
use citecast::config::Config;
use citecast::ops::operator::{self, OpRequest};
use citecast::outbound::admin as admin_client;
use citecast::server::ServerInfo;
use citecast::web::AppState;
use citecast_actors::actors::IngestFiles;
use citecast_actors::ingest::IngestReport;
use citecast_actors::Engine;
use serde_json::Value;

/// The admin token of the in-process harness, unless its [`Setup`] names another.
pub const ADMIN_TOKEN: &str = "test-token";

/// The committed fixture's two files: 300 real hep-th papers and their citations.
pub fn fixture_files() -> Vec<PathBuf> {
    vec![fixture("papers.jsonl"), fixture("citations.tsv.gz")]
}

/// A started engine and the app state over a temporary data directory, with a customer
/// whose key is `key`.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub state: web::Data<AppState>,
    pub key: String,
}

/// How a [`Harness`] starts.
pub struct Setup {
    /// Ingest the fixture and mark the server ready.
    pub load: bool,
    /// The tier of the first customer's key.
    pub tier: &'static str,
    /// Model directories to serve instead of the configured ones.
    pub model_dirs: Option<Vec<PathBuf>>,
    pub admin_token: &'static str,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup { load: true, tier: "enterprise", model_dirs: None, admin_token: ADMIN_TOKEN }
    }
}

impl Harness {
    /// The fixture loaded, the default configuration, an enterprise key.
    pub async fn new() -> Harness {
        Harness::start(Setup::default(), |_| {}).await
    }

    pub async fn start(setup: Setup, adjust: impl FnOnce(&mut Config)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path().to_path_buf());
        adjust(&mut config);
        let mut engine_config = config.engine();
        if let Some(dirs) = setup.model_dirs {
            engine_config.model_dirs = dirs;
        }
        let engine = Engine::start(&engine_config).unwrap();
        let accounts = std::sync::Arc::new(citecast::accounts::Accounts::open(&engine.db).unwrap());
        let state = web::Data::new(AppState::new(engine, accounts, &config, Some(setup.admin_token.into())));
        let mut h = Harness { dir, state, key: String::new() };
        h.key = h.customer(setup.tier).await.2;
        if setup.load {
            let reports = h.ingest(fixture_files()).await;
            assert_eq!(reports.iter().map(|r| r.errors).sum::<u64>(), 0, "{reports:?}");
            h.state.ready.store(true, Ordering::Release);
        }
        h
    }

    pub async fn ingest(&self, paths: Vec<PathBuf>) -> Vec<IngestReport> {
        self.state.engine.ingest.send(IngestFiles { paths, ..Default::default() }).await.unwrap().unwrap()
    }

    /// A new customer on `tier`; returns (customer id, key id, secret).
    pub async fn customer(&self, tier: &str) -> (String, String, String) {
        // One customer per address: each gets its own.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let op = OpRequest::AddCustomer {
            name: "C".into(),
            email: format!("c{n}@example.org"),
            tier: Some(tier.into()),
        };
        let v =
            operator::execute(&self.state.engine, &self.state.accounts, &self.state.tiers, op).await.unwrap();
        (
            v["customer"]["id"].as_str().unwrap().into(),
            v["key"]["id"].as_str().unwrap().into(),
            v["secret"].as_str().unwrap().into(),
        )
    }
}

/// The real actix `App` over a [`Harness`]'s state, as `serve` builds it.
macro_rules! app {
    ($h:expr) => {
        actix_web::test::init_service(
            actix_web::App::new().configure(|c| citecast::web::configure(c, $h.state.clone())),
        )
        .await
    };
}

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
