//! `serve --demo`: an empty directory is seeded with a year of marked synthetic business
//! and every operator page computes from it; demo data never mixes with real customers
//! (a directory with real customers is refused, a demo directory needs `--demo`).

use std::process::Stdio;
use std::time::Duration;

use crate::common::*;

fn admin(server: &Server, path: &str) -> (u16, String) {
    let r =
        citecast::outbound::admin::request(&server.info, "GET", path, None, Duration::from_secs(30)).unwrap();
    (r.status, r.body)
}

#[test]
fn demo_mode_fills_every_business_page_and_never_mixes_with_real_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("demo");
    let bundled = bundled_fixture(tmp.path());
    let server = start_with(&data, &bundled, &["--demo"]);
    let (status, econ) = admin(&server, "/admin/economics?format=json");
    assert_eq!(status, 200, "{econ}");
    let econ: serde_json::Value = serde_json::from_str(&econ).unwrap();
    let months = econ["months"].as_array().unwrap();
    assert!(months.len() >= 12, "{econ}");
    let last_full = &months[months.len() - 2];
    assert!(
        last_full["mrr_minor"].as_i64().unwrap() > 0 && last_full["cac_minor"].as_i64().is_some(),
        "{econ}"
    );
    assert!(econ["ltv_minor"].as_i64().is_some() && econ["trial_conversion"].as_f64().is_some(), "{econ}");
    assert!(!econ["cohorts"].as_array().unwrap().is_empty());
    let (status, page) = admin(&server, "/admin/economics");
    assert!(status == 200 && page.contains("Demo data"), "{page}");
    let (status, dash) = admin(&server, "/admin/dashboard");
    assert!(status == 200 && dash.contains("Demo data") && dash.contains("NPS"), "{dash}");
    for path in ["/admin/support", "/admin/growth", "/admin/referrals", "/admin/pricing/experiments"] {
        let (status, body) = admin(&server, path);
        assert_eq!(status, 200, "{path}: {body}");
    }
    let out = run(&["economics"], &data);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("MRR"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stop_gracefully(server);

    // Without --demo, the demo directory is refused; with --demo, a real one is.
    let refused = bin()
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--bundled-data")
        .arg(&bundled)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!refused.status.success(), "a demo directory served as real");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("demo data"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let real = tmp.path().join("real");
    let out = run(&["customers", "add", "--name", "Real Lab", "--email", "lab@example.org"], &real);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let refused = bin()
        .args(["serve", "--demo", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(&real)
        .arg("--bundled-data")
        .arg(&bundled)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("real customers"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
