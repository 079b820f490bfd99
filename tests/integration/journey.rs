//! A customer's whole journey in a real browser against the real binary, with mail
//! caught by a real SMTP server: sign up → confirm from the mail → first key → first API
//! call → upgrade → pause → resume → cancel, each page checked and screenshotted
//! (`target/screenshots/journey-*.png`). The API limits follow the plan at each step,
//! and the operator's command sees the subscription and its invoice.
//!
//! Needs chromium + chromium-driver and aiosmtpd (`.ci/run` installs them and makes their
//! absence a failure); elsewhere the test is skipped, saying so.

use std::time::{Duration, Instant};

use crate::common::browser::Driver;
use crate::common::smtp::{header, link_in, SmtpSink};
use crate::common::*;

/// The customer's tier as the API sees it now.
fn api_tier(server: &Server, secret: &str) -> String {
    let (status, v) = get(&server.info, secret, "/v1/account");
    assert_eq!(status, 200, "{v}");
    v["customer"]["tier"].as_str().unwrap_or_default().to_string()
}

fn metric(server: &Server, name: &str) -> Option<f64> {
    let r =
        citecast::outbound::admin::request(&server.info, "GET", "/metrics", None, Duration::from_secs(10))
            .ok()?;
    r.body.lines().find_map(|l| l.strip_prefix(&format!("{name} ")).and_then(|v| v.trim().parse().ok()))
}

#[test]
fn a_person_signs_up_pays_pauses_resumes_and_cancels_in_a_browser() {
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
    let shot = |name: &str| driver.screenshot(&format!("journey-{name}"));

    // The home page tells what citecast is, with a live forecast and the way in.
    driver.go(&format!("{base}/"));
    let home = driver.body_text();
    shot("home");
    assert!(home.contains("Know early which papers will matter"), "{home}");
    assert!(driver.text("#example").contains("chance"), "a live forecast: {home}");
    driver.go(&format!("{base}/pricing"));
    let pricing = driver.body_text();
    shot("pricing");
    assert!(
        pricing.contains("$49") && pricing.contains("$490") && pricing.contains("Contact us"),
        "{pricing}"
    );

    // Sign up; the confirmation arrives by mail.
    let email = "ada@example.org";
    driver.click_and_load("a.button[href='/signup']");
    driver.type_into("#name", "Ada Lovelace");
    driver.type_into("#email", email);
    driver.type_into("#password", "analytical engine 1843");
    shot("signup");
    driver.click_and_load("form[action='/signup'] button[type=submit]");
    let sent = driver.body_text();
    shot("check-inbox");
    assert!(sent.contains("Check your inbox") && sent.contains(email), "{sent}");
    let mail = sink.wait_for(email, "/confirm?token=");
    let link = link_in(&mail, "/confirm?token=");
    assert!(link.starts_with(&base), "{link}");

    // Opening the link confirms nothing by itself; the button does.
    driver.go(&link);
    shot("confirm");
    assert!(driver.body_text().contains("Confirm your address"));
    driver.click_and_load("#confirm");
    let welcome = driver.body_text();
    shot("welcome");
    assert!(welcome.contains("Welcome, Ada Lovelace"), "{welcome}");
    let secret = driver.text("#secret");
    assert!(secret.starts_with("cc_live_"), "{secret}");
    let curl = driver.text("#curl");
    assert!(curl.contains(&secret) && curl.contains(&format!("{base}/v1/papers/")), "{curl}");

    // The first API call, as the page says to make it.
    let (status, forecast) = get(&server.info, &secret, "/v1/papers/hep-th/9711200/forecast");
    assert_eq!(status, 200, "{forecast}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&server, "citecast_signups_with_first_call") != Some(1.0) {
        assert!(Instant::now() < deadline, "the first call was not recorded");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(metric(&server, "citecast_signup_to_first_call_seconds").is_some_and(|s| s >= 0.0));
    assert_eq!(api_tier(&server, &secret), "free");

    driver.go(&format!("{base}/account"));
    let account = driver.body_text();
    shot("account");
    driver.assert_fits("/account");
    assert!(account.contains("Ada Lovelace") && account.contains("Free"), "{account}");
    assert!(driver.text("#usage").starts_with('2') || driver.text("#usage").starts_with('1'), "{account}");

    // A support ticket, opened from the account page and answered by the operator.
    driver.click_and_load("#support-link a[href='/support']");
    driver.type_into("#ticket-subject", "Batch limit question");
    driver.type_into("#ticket-body", "How many ids fit in one batch call?");
    driver.click_and_load("#ticket-submit");
    let ticket_url = driver.url();
    let ticket_id = ticket_url.rsplit('/').next().unwrap().to_string();
    assert!(ticket_id.starts_with("tkt_"), "{ticket_url}");
    let out = run(&["support", "reply", &ticket_id, "--message", "Up to 10 on Free, 100 on Pro."], &data);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    driver.go(&ticket_url);
    shot("ticket");
    assert!(driver.body_text().contains("Up to 10 on Free, 100 on Pro."), "{}", driver.body_text());
    sink.wait_for(email, "Up to 10 on Free");

    // Upgrade: at once, with an invoice, and the API limits follow.
    driver.go(&format!("{base}/billing"));
    shot("billing-free");
    driver.click("input[value='pro:monthly']");
    driver.click_and_load("#change-plan");
    let upgraded = driver.text("#flash");
    shot("billing-pro");
    assert!(upgraded.contains("Pro, monthly") && upgraded.contains("inv_"), "{upgraded}");
    assert_eq!(api_tier(&server, &secret), "pro");
    let invoice_id = upgraded.split_whitespace().find(|w| w.starts_with("inv_")).unwrap().to_string();
    driver.click_and_load(&format!("a[href='/billing/invoices/{invoice_id}']"));
    let invoice = driver.body_text();
    shot("invoice");
    assert!(invoice.contains(&format!("Invoice {invoice_id}")) && invoice.contains("$"), "{invoice}");

    // Pause: the API serves the free plan; resume: Pro again.
    driver.go(&format!("{base}/billing"));
    driver.click_and_load("#pause");
    let paused = driver.text("#status");
    shot("paused");
    assert!(paused.starts_with("paused"), "{paused}");
    assert_eq!(api_tier(&server, &secret), "free");
    driver.click_and_load("#resume");
    shot("resumed");
    assert_eq!(driver.text("#status"), "active");
    assert_eq!(api_tier(&server, &secret), "pro");

    // The bank transfer arrives: the operator marks the invoice paid.
    let out = run(&["billing", "mark-paid", &invoice_id, "--reference", "transfer 1"], &data);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Cancel now: one click, no retention wall; the account stays, on the free plan.
    driver.click_and_load("#cancel-now");
    let canceled = driver.text("#flash");
    shot("canceled");
    assert!(canceled.contains("canceled"), "{canceled}");
    assert_eq!(api_tier(&server, &secret), "free");

    // The operator sees the subscription and its invoice.
    let customer =
        get(&server.info, &secret, "/v1/account").1["customer"]["id"].as_str().unwrap().to_string();
    let out = run(&["billing", "show", &customer], &data);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["subscription"]["status"], "canceled", "{shown}");
    assert!(shown.to_string().contains(&invoice_id), "{shown}");

    // The economics this journey implies: one customer paid 49.00 for a month starting
    // today and canceled, so this month's MRR is the part of it that falls in this month,
    // nobody pays now, and one customer paid for the first time this month.
    let econ: serde_json::Value =
        serde_json::from_slice(&run(&["economics", "--json"], &data).stdout).unwrap();
    let today = citecast_actors::dates::today();
    let (y, m, d) = citecast_actors::dates::to_ymd(today);
    let next_month = if m == 12 {
        citecast_actors::dates::from_ymd(y + 1, 1, 1)
    } else {
        citecast_actors::dates::from_ymd(y, m + 1, 1)
    };
    let period_end = citecast::billing::subscription::add_months(today, 1);
    let in_month = (next_month.min(period_end) - today) as i64;
    let expected = 4_900 * in_month / (period_end - today) as i64;
    let this = econ["months"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(this["mrr_minor"], expected, "{econ} (day {d})");
    assert_eq!((this["new_paying"].as_u64(), econ["paying_now"].as_u64()), (Some(1), Some(0)), "{econ}");
    driver.go(&format!("{base}/admin/login"));
    driver.type_into("#token", &server.info.token);
    driver.click_and_load("form[action='/admin/login'] button");
    driver.go(&format!("{base}/admin/economics"));
    shot("economics");
    assert_eq!(driver.text("#mrr"), citecast::billing::format_money(expected, "usd"));
    assert_eq!(driver.text("#paying"), "0");
    driver.go(&format!("{base}/admin/growth"));
    shot("growth");
    assert!(driver.body_text().contains("Upsell"), "{}", driver.body_text());
    driver.assert_fits("/admin/growth");

    // The newsletter: subscribe in the browser, confirm from the mail, receive the issue,
    // read it in the archive and the feed, and leave in one click from the mail's header.
    let reader = "reader@example.org";
    driver.go(&format!("{base}/newsletter"));
    shot("newsletter");
    driver.type_into("form[action='/newsletter/subscribe'] #email", reader);
    driver.click("#topic-strings");
    driver.click_and_load("form[action='/newsletter/subscribe'] button[type=submit]");
    assert!(driver.body_text().contains("Check your inbox"), "{}", driver.body_text());
    let link = link_in(&sink.wait_for(reader, "/newsletter/confirm?token="), "/newsletter/confirm?token=");
    driver.go(&link);
    driver.click_and_load("#confirm");
    shot("newsletter-confirmed");
    assert!(driver.body_text().contains("You are subscribed"), "{}", driver.body_text());
    let out = run(&["jobs", "run", "newsletter", "--wait"], &data);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let issue = sink.wait_for(reader, "citecast weekly #1");
    assert!(issue.contains("text/html") && issue.contains("text/plain"), "{issue}");
    driver.go(&format!("{base}/newsletter/1"));
    shot("newsletter-issue");
    assert!(driver.body_text().contains("2003"), "{}", driver.body_text());
    let feed = citecast::outbound::admin::request_as(
        &server.info.addr,
        None,
        "GET",
        "/newsletter/feed.atom",
        None,
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(feed.status == 200 && feed.body.contains("/newsletter/1"), "{}", feed.body);
    let unsubscribe = header(&issue, "List-Unsubscribe").unwrap();
    assert_eq!(header(&issue, "List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    let url = unsubscribe.split('<').nth(1).unwrap().split('>').next().unwrap().to_string();
    let path = &url[url.find("/newsletter").unwrap()..];
    let r = citecast::outbound::admin::request_as(
        &server.info.addr,
        None,
        "POST",
        path,
        Some("List-Unsubscribe=One-Click"),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let status: serde_json::Value =
        serde_json::from_slice(&run(&["newsletter", "status"], &data).stdout).unwrap();
    assert_eq!(status["subscribers"]["unsubscribed"], 1, "{status}");

    // Log out: the account page asks to log in again.
    driver.click_and_load("header form[action='/logout'] button");
    driver.go(&format!("{base}/account"));
    assert!(driver.url().ends_with("/login"), "{}", driver.url());
    stop_gracefully(server);
}
