//! Headless Chromium through chromedriver's WebDriver protocol, for the page tests: a
//! phone-sized window (390 CSS pixels, an iPhone 12-15 screen), navigation, clicks,
//! typing, scripts and screenshots (kept as artefacts in `target/screenshots/`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

pub const PHONE_WIDTH: u64 = 390;

/// The W3C key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Driver {
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
    pub fn start(binary: PathBuf, profile: &std::path::Path) -> Driver {
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

    pub fn go(&self, url: &str) {
        call(&self.host, "POST", &format!("/session/{}/url", self.session), Some(json!({ "url": url })));
    }

    pub fn script(&self, script: &str) -> Value {
        let path = format!("/session/{}/execute/sync", self.session);
        call(&self.host, "POST", &path, Some(json!({ "script": script, "args": [] })))
    }

    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = call(&self.host, "GET", &format!("/session/{}/screenshot", self.session), None);
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}-{PHONE_WIDTH}px.png"));
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Driver {
    fn element(&self, css: &str) -> String {
        let path = format!("/session/{}/element", self.session);
        let v = call(&self.host, "POST", &path, Some(json!({ "using": "css selector", "value": css })));
        v[ELEMENT].as_str().unwrap_or_else(|| panic!("no element '{css}' on the page")).to_string()
    }

    /// Clicks the element `css` names, as a person would.
    pub fn click(&self, css: &str) {
        let id = self.element(css);
        call(&self.host, "POST", &format!("/session/{}/element/{id}/click", self.session), Some(json!({})));
    }

    /// Clicks a link or button that loads another page, and waits (up to 10 s) until the
    /// new page has replaced the old one and finished loading.
    pub fn click_and_load(&self, css: &str) {
        self.script("window.__citecastOldPage = true; return null;");
        self.click(css);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let done = http(
                &self.host,
                "POST",
                &format!("/session/{}/execute/sync", self.session),
                Some(
                    &json!({ "script": "return window.__citecastOldPage === undefined && document.readyState === 'complete';", "args": [] })
                        .to_string(),
                ),
            );
            if let Ok((200, body)) = done {
                if serde_json::from_str::<Value>(&body).is_ok_and(|v| v["value"] == true) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "clicking '{css}' loaded no new page");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `text` into the field `css` names (after clearing it).
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        call(&self.host, "POST", &format!("/session/{}/element/{id}/clear", self.session), Some(json!({})));
        call(
            &self.host,
            "POST",
            &format!("/session/{}/element/{id}/value", self.session),
            Some(json!({ "text": text })),
        );
    }

    /// The visible text of the element `css` names. A click that navigates returns
    /// before the new page replaces the old one, so a stale or missing element is looked
    /// for again for up to 10 s.
    pub fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let find = json!({ "using": "css selector", "value": css }).to_string();
            let found = http(&self.host, "POST", &format!("/session/{}/element", self.session), Some(&find));
            if let Ok((200, body)) = found {
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                if let Some(id) = v["value"][ELEMENT].as_str() {
                    let path = format!("/session/{}/element/{id}/text", self.session);
                    if let Ok((200, body)) = http(&self.host, "GET", &path, None) {
                        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                        return v["value"].as_str().unwrap_or_default().to_string();
                    }
                }
            }
            assert!(Instant::now() < deadline, "no element '{css}' on {}", self.url());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The page's visible text.
    pub fn body_text(&self) -> String {
        self.text("body")
    }

    pub fn url(&self) -> String {
        call(&self.host, "GET", &format!("/session/{}/url", self.session), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// What the page looks like to the layout engine: its viewport, how wide its content is,
/// the elements sticking out past the right edge, and the smallest text size.
pub const MEASURE: &str = r#"
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

impl Driver {
    /// Asserts the open page fits the phone screen: no sideways scrolling, nothing cut
    /// off at the right, text of a readable size.
    pub fn assert_fits(&self, what: &str) {
        let m = self.script(MEASURE);
        assert!(m["scroll"].as_u64().unwrap_or(u64::MAX) <= PHONE_WIDTH, "{what} scrolls sideways: {m}");
        assert!(m["wide"].as_array().is_some_and(|w| w.is_empty()), "{what}: cut off at the right: {m}");
        assert!(m["smallest"].as_f64().unwrap_or(0.0) >= 12.0, "{what}: text too small: {m}");
    }
}
