//! The public pages on a phone: `/status`, `/v1/docs` and a paper's page rendered by headless Chromium
//! at 390 CSS pixels wide (an iPhone 12-15 screen), through chromedriver's WebDriver
//! protocol. Nothing may stick out sideways (the page needs no horizontal scrolling and
//! no element is wider than the screen), and the text keeps a readable size.
//! Screenshots are kept as artefacts in `target/screenshots/`.
//!
//! Needs `chromium` and `chromium-driver` (Debian); `.ci/run` installs them and sets
//! `CITECAST_REQUIRE_BROWSER=1`, which turns a missing browser into a failure. Without
//! that variable a machine without them skips this test, saying so.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use base64::Engine as _;
use serde_json::{json, Value};

const PHONE_WIDTH: u64 = 390;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Driver {
    child: Child,
    host: String,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = call(&self.host, "DELETE", &format!("/session/{}", self.session), None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver call. chromedriver keeps the connection open after its reply (whatever
/// `Connection: close` says), so the reply is read by its Content-Length.
fn http(host: &str, method: &str, path: &str, body: Option<&str>) -> std::io::Result<(u16, String)> {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut buf = vec![0u8; length];
    reader.read_exact(&mut buf)?;
    Ok((status, String::from_utf8_lossy(&buf).into_owned()))
}

fn call(host: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string());
    let (status, text) = http(host, method, path, body.as_deref())
        .unwrap_or_else(|e| panic!("chromedriver {method} {path}: {e}"));
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert!(status == 200, "chromedriver {method} {path}: {status} {text}");
    v["value"].clone()
}

impl Driver {
    fn start(binary: PathBuf, profile: &std::path::Path) -> Driver {
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let host = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            if let Ok((200, _)) = http(&host, "GET", "/status", None) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "args": args,
                "mobileEmulation": { "deviceMetrics": { "width": PHONE_WIDTH, "height": 844, "pixelRatio": 3.0 } },
            },
        }}});
        let mut driver = Driver { child, host, session: String::new() };
        let v = call(&driver.host, "POST", "/session", Some(caps));
        driver.session = v["sessionId"].as_str().expect("a session").to_string();
        driver
    }

    fn go(&self, url: &str) {
        call(&self.host, "POST", &format!("/session/{}/url", self.session), Some(json!({ "url": url })));
    }

    fn script(&self, script: &str) -> Value {
        let path = format!("/session/{}/execute/sync", self.session);
        call(&self.host, "POST", &path, Some(json!({ "script": script, "args": [] })))
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let png = call(&self.host, "GET", &format!("/session/{}/screenshot", self.session), None);
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}-{PHONE_WIDTH}px.png"));
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

/// What the page looks like to the layout engine: its viewport, how wide its content is,
/// the elements sticking out past the right edge, and the smallest text size.
const MEASURE: &str = r#"
const vw = window.innerWidth;
const wide = [];
for (const el of document.body.querySelectorAll('*')) {
  const r = el.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) continue;
  // Inside a horizontally scrolling box is reachable, not cut off.
  let scroller = el.parentElement, inside = false;
  while (scroller && scroller !== document.body) {
    const o = getComputedStyle(scroller).overflowX;
    if (o === 'auto' || o === 'scroll') { inside = true; break; }
    scroller = scroller.parentElement;
  }
  if (!inside && r.right > vw + 1) wide.push(el.tagName + ' ' + (el.textContent || '').trim().slice(0, 40) + ' right=' + Math.round(r.right));
}
let smallest = 100;
for (const el of document.body.querySelectorAll('p, td, li, h1, h2, code')) {
  if (el.getBoundingClientRect().width === 0) continue;
  smallest = Math.min(smallest, parseFloat(getComputedStyle(el).fontSize));
}
return { vw, scroll: document.documentElement.scrollWidth, wide: wide.slice(0, 10), smallest };
"#;

#[test]
fn status_docs_and_paper_pages_fit_a_phone_screen() {
    let install = "apt-get install chromium chromium-driver";
    let Some(binary) = external_tool("chromedriver", "CITECAST_REQUIRE_BROWSER", install) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bundled = bundled_fixture(tmp.path());
    let server = start(&data, &bundled);
    let driver = Driver::start(binary, &tmp.path().join("chromium-profile"));
    for (name, path) in [("status", "/status"), ("docs", "/v1/docs"), ("paper", "/papers/hep-th/9711200")] {
        driver.go(&format!("http://{}{path}", server.info.addr));
        let m = driver.script(MEASURE);
        let shot = driver.screenshot(name);
        assert_eq!(m["vw"], PHONE_WIDTH, "{path}: the page must declare a device-width viewport: {m}");
        assert!(
            m["scroll"].as_u64().unwrap() <= PHONE_WIDTH,
            "{path} scrolls sideways: {m} ({})",
            shot.display()
        );
        assert!(
            m["wide"].as_array().unwrap().is_empty(),
            "{path}: cut off at the right: {m} ({})",
            shot.display()
        );
        assert!(m["smallest"].as_f64().unwrap() >= 12.0, "{path}: text too small to read: {m}");
    }
}
