//! The public pages on a phone: `/status`, `/v1/docs`, a paper's page and the
//! newsletter's pages (with an issue built by its job), rendered by headless Chromium at
//! 390 CSS pixels wide (an iPhone 12-15 screen), through chromedriver's WebDriver
//! protocol. Nothing may stick out sideways (the page needs no horizontal scrolling and
//! no element is wider than the screen), and the text keeps a readable size.
//! Screenshots are kept as artefacts in `target/screenshots/`.
//!
//! Needs `chromium` and `chromium-driver` (Debian); `.ci/run` installs them and sets
//! `CITECAST_REQUIRE_BROWSER=1`, which turns a missing browser into a failure. Without
//! that variable a machine without them skips this test, saying so.

use std::time::{Duration, Instant};

use crate::common::browser::{Driver, MEASURE, PHONE_WIDTH};
use crate::common::*;

#[test]
fn status_docs_paper_and_newsletter_pages_fit_a_phone_screen() {
    let install = "apt-get install chromium chromium-driver";
    let Some(binary) = external_tool("chromedriver", "CITECAST_REQUIRE_BROWSER", install) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bundled = bundled_fixture(tmp.path());
    let server = start(&data, &bundled);
    // An issue of the newsletter, so its pages show picks and their track record.
    run(&["jobs", "run", "newsletter"], &data);
    let deadline = Instant::now() + Duration::from_secs(60);
    let timeout = Duration::from_secs(10);
    while citecast::outbound::admin::request(&server.info, "GET", "/newsletter/1", None, timeout)
        .unwrap()
        .status
        != 200
    {
        assert!(Instant::now() < deadline, "the newsletter job built no issue");
        std::thread::sleep(Duration::from_millis(100));
    }
    let driver = Driver::start(binary, &tmp.path().join("chromium-profile"));
    let pages = [
        ("status", "/status"),
        ("docs", "/v1/docs"),
        ("paper", "/papers/hep-th/9711200"),
        ("newsletter", "/newsletter"),
        ("newsletter-issue", "/newsletter/1"),
        ("newsletter-archive", "/newsletter/archive"),
        ("track-record", "/newsletter/track-record"),
    ];
    for (name, path) in pages {
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
