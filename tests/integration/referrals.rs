//! Referrals end to end against the real binary: in a real browser, a customer's
//! referral link → a new customer signs up (confirmed from the mail) → pays an invoice
//! (the operator's `billing mark-paid`) → the referrer's commission is in the ledger and
//! the month's payout → `billing refund` claws it back. And the operator's endpoints
//! refusing bad input in words, storing nothing.
//!
//! The browser test needs chromium + chromium-driver and aiosmtpd, like the journey.

use std::time::Duration;

use serde_json::Value;

use crate::common::browser::Driver;
use crate::common::smtp::{link_in, SmtpSink};
use crate::common::*;

/// Signs a person up in the browser and confirms from the mail; answers their first key.
fn sign_up(driver: &Driver, sink: &SmtpSink, base: &str, name: &str, email: &str) -> String {
    driver.go(&format!("{base}/signup"));
    driver.type_into("#name", name);
    driver.type_into("#email", email);
    driver.type_into("#password", "a long enough passphrase 42");
    driver.click_and_load("form[action='/signup'] button[type=submit]");
    assert!(driver.body_text().contains("Check your inbox"), "{}", driver.body_text());
    let link = link_in(&sink.wait_for(email, "/confirm?token="), "/confirm?token=");
    driver.go(&link);
    driver.click_and_load("#confirm");
    assert!(driver.body_text().contains(&format!("Welcome, {name}")), "{}", driver.body_text());
    driver.text("#secret")
}

fn log_out(driver: &Driver) {
    driver.click_and_load("header form[action='/logout'] button");
}

fn log_in(driver: &Driver, base: &str, email: &str) {
    driver.go(&format!("{base}/login"));
    driver.type_into("#email", email);
    driver.type_into("#password", "a long enough passphrase 42");
    driver.click_and_load("form[action='/login'] button[type=submit]");
}

fn admin(server: &Server, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let r = citecast::outbound::admin::request(&server.info, method, path, body, Duration::from_secs(10))
        .unwrap();
    (r.status, serde_json::from_str(&r.body).unwrap_or(Value::Null))
}

fn this_month() -> String {
    citecast::referrals::Month::of_secs(citecast_actors::dates::now_secs()).to_string()
}

#[test]
fn a_referral_link_earns_a_commission_that_a_refund_claws_back_in_a_browser() {
    let install = "apt-get install chromium chromium-driver";
    let Some(chromedriver) = external_tool("chromedriver", "CITECAST_REQUIRE_BROWSER", install) else {
        return;
    };
    let Some(sink) = SmtpSink::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bundled = bundled_fixture(tmp.path());
    let server = start_with(&data, &bundled, &["--smtp-url", &sink.url()]);
    let base = format!("http://{}", server.info.addr);
    let driver = Driver::start(chromedriver, &tmp.path().join("chromium-profile"));
    let shot = |name: &str| driver.screenshot(&format!("referrals-{name}"));

    // The referrer's link, tier and empty ledger.
    sign_up(&driver, &sink, &base, "Ada Lovelace", "ada@example.org");
    driver.go(&format!("{base}/referrals"));
    shot("referrer-empty");
    let link = driver.text("#referral-link");
    assert!(link.starts_with(&format!("{base}/r/")), "{link}");
    let tier = driver.text("#tier");
    assert!(tier.contains("Member") && tier.contains("10 %"), "{tier}");
    assert!(driver.body_text().contains("never pay for posts"), "no paid promotion is said");
    log_out(&driver);

    // A visitor opens the link and lands on sign-up; an unknown code is a page in words.
    driver.go(&format!("{base}/r/nosuchcode1"));
    assert!(driver.body_text().contains("not valid"), "{}", driver.body_text());
    driver.go(&link);
    assert!(driver.url().ends_with("/signup"), "{}", driver.url());
    let secret = sign_up(&driver, &sink, &base, "Bob Babbage", "bob@example.net");
    let (status, account) = get(&server.info, &secret, "/v1/account");
    assert_eq!(status, 200, "{account}");
    let bob = account["customer"]["id"].as_str().unwrap().to_string();

    // Bob upgrades (an invoice) and the operator marks it paid.
    driver.go(&format!("{base}/billing"));
    driver.click("input[value='pro:monthly']");
    driver.click_and_load("#change-plan");
    let flash = driver.text("#flash");
    let invoice =
        flash.split_whitespace().find(|w| w.starts_with("inv_")).unwrap().trim_end_matches('.').to_string();
    run(&["billing", "mark-paid", &invoice], &data);
    let shown: Value = serde_json::from_slice(&run(&["billing", "show", &bob], &data).stdout).unwrap();
    let total = shown["invoices"]
        .as_array()
        .and_then(|l| l.iter().find(|i| i["id"] == invoice.as_str()))
        .and_then(|i| i["total_minor"].as_i64())
        .unwrap_or_else(|| panic!("invoice {invoice} in {shown}"));
    let commission = total * 1000 / 10_000;
    let money = citecast::billing::format_money(commission, "usd");
    log_out(&driver);

    // The commission is in Ada's ledger, approved, and in the month's payout.
    log_in(&driver, &base, "ada@example.org");
    driver.go(&format!("{base}/referrals"));
    shot("referrer-earned");
    assert_eq!(driver.text("#approved"), money);
    assert!(driver.text("#referred").contains("Bob Babbage"));
    assert!(!driver.body_text().contains("bob@example.net"), "referred customers are shown by name only");
    let payout: Value =
        serde_json::from_slice(&run(&["referrals", "payouts", "--month", &this_month()], &data).stdout)
            .unwrap();
    assert_eq!(payout["referrers"][0]["amount_minor"], commission, "{payout}");
    assert_eq!(payout["referrers"][0]["name"], "Ada Lovelace", "{payout}");

    // The refund claws it back (once, however often the pages reconcile).
    run(&["billing", "refund", &invoice], &data);
    driver.go(&format!("{base}/referrals"));
    driver.go(&format!("{base}/referrals"));
    shot("referrer-clawed-back");
    assert_eq!(driver.text("#clawed-back"), money);
    assert_eq!(driver.text("#approved"), "$0.00");
    assert!(driver.text("#commissions").contains("clawed back"));
    let payout: Value =
        serde_json::from_slice(&run(&["referrals", "payouts", "--month", &this_month()], &data).stdout)
            .unwrap();
    assert_eq!(payout["referrers"], serde_json::json!([]), "{payout}");

    // Statements are a partner's; a bad month is a page in words.
    driver.go(&format!("{base}/referrals/statement?month=2027-13"));
    assert!(driver.body_text().contains("YYYY-MM"), "{}", driver.body_text());
    driver.go(&format!("{base}/referrals/statement"));
    assert!(driver.body_text().contains("Statements are for partners"), "{}", driver.body_text());
    let (status, v) = admin(
        &server,
        "POST",
        "/admin/referrals/partners",
        Some(&format!(r#"{{"customer_id":"{}","rate_percent":25}}"#, referrer_id(&data))),
    );
    assert_eq!(status, 200, "{v}");
    driver.go(&format!("{base}/referrals/statement?month={}", this_month()));
    shot("statement");
    assert!(driver.body_text().contains("25 %"), "{}", driver.body_text());
    stop_gracefully(server);
}

/// Ada's customer id, from the operator's customer list.
fn referrer_id(data: &std::path::Path) -> String {
    let list: Value = serde_json::from_slice(&run(&["customers", "list"], data).stdout).unwrap();
    let all = list["customers"].as_array().or(list.as_array()).cloned().unwrap_or_default();
    all.iter()
        .find(|c| c["email"] == "ada@example.org")
        .and_then(|c| c["id"].as_str())
        .unwrap_or_else(|| panic!("ada in {list}"))
        .to_string()
}

#[test]
fn operator_referral_endpoints_refuse_bad_input_and_store_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bundled = bundled_fixture(tmp.path());
    let server = start(&data, &bundled);

    let (status, v) = admin(&server, "GET", "/admin/referrals/payouts?month=2027-13", None);
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_body")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("YYYY-MM"), "{v}");
    let (status, v) = admin(&server, "GET", "/admin/referrals/payouts?month=2027-03", None);
    assert_eq!((status, &v["referrers"]), (200, &serde_json::json!([])), "{v}");

    // Partners: an unknown customer, a rate out of range, an unknown field.
    let (status, v) = admin(
        &server,
        "POST",
        "/admin/referrals/partners",
        Some(r#"{"customer_id":"cus_nobody","rate_percent":20}"#),
    );
    assert_eq!(status, 404, "{v}");
    let out = run(&["customers", "add", "--name", "Pat Partner", "--email", "pat@example.org"], &data);
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pat = added["customer"]["id"].as_str().or(added["id"].as_str()).unwrap().to_string();
    for body in [
        format!(r#"{{"customer_id":"{pat}","rate_percent":80}}"#),
        format!(r#"{{"customer_id":"{pat}","rate_percent":"lots"}}"#),
        format!(r#"{{"customer_id":"{pat}","rate_percent":20,"bonus":1}}"#),
        "not json".to_string(),
    ] {
        let (status, v) = admin(&server, "POST", "/admin/referrals/partners", Some(&body));
        assert_eq!(status, 400, "{body}: {v}");
    }
    let (status, v) = admin(
        &server,
        "POST",
        "/admin/referrals/partners",
        Some(&format!(r#"{{"customer_id":"{pat}","rate_percent":"12.5"}}"#)),
    );
    assert_eq!((status, &v["partner"]["rate_bp"]), (200, &serde_json::json!(1250)), "{v}");

    // Deciding: an unknown commission, an unknown action; without the token, refused.
    let (status, _) = admin(&server, "POST", "/admin/referrals/com_inv_999999/approve", None);
    assert_eq!(status, 404);
    let (status, _) = admin(&server, "POST", "/admin/referrals/com_inv_999999/pay", None);
    assert_eq!(status, 404);
    let r = citecast::outbound::admin::request_as(
        &server.info.addr,
        None,
        "POST",
        "/admin/referrals/com_inv_1/approve",
        None,
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(r.status, 401);
    let (status, v) = admin(&server, "POST", "/admin/referrals/payouts/2027-3/paid", None);
    assert_eq!(status, 400, "{v}");

    // The operator's page lists the partner (and no held commissions).
    let r = citecast::outbound::admin::request(
        &server.info,
        "GET",
        "/admin/referrals",
        None,
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(r.status == 200 && r.body.contains("Pat Partner") && r.body.contains("12.5 %"), "{}", r.body);

    // The CLI names a bad month in words.
    let out = bin()
        .args(["referrals", "payouts", "--month", "March"])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("YYYY-MM"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Only the good partner call was audited.
    let audit: Value = serde_json::from_slice(&run(&["audit"], &data).stdout).unwrap();
    let partner_entries = audit.to_string().matches("referral.partner").count();
    assert_eq!(partner_entries, 1, "{audit}");
    stop_gracefully(server);
}
