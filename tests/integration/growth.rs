//! Pricing experiments and upsell (issue 11), in process: a visitor keeps their variant,
//! signs up under it and is charged its price; the report's figures; an account past 80 %
//! of its quota on 3 days sees the offer with both forms, is mailed once, and its upgrade
//! is the trigger's conversion; repeated 429s are recorded by the API guard; bad input on
//! every operator form is refused in words and stores nothing.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::test;
use serde_json::{json, Value};

use crate::common::*;

const ORIGIN: &str = "http://localhost:8080";

/// A browser for the in-process app: every cookie it was given, and the last CSRF token.
struct Browser {
    cookies: BTreeMap<String, String>,
    csrf: String,
    ip: u8,
}

struct Page {
    status: StatusCode,
    body: String,
}

impl Browser {
    fn new(ip: u8) -> Browser {
        Browser { cookies: BTreeMap::new(), csrf: String::new(), ip }
    }

    fn remember(&mut self, headers: &actix_web::http::header::HeaderMap, body: &str) {
        for c in headers.get_all("set-cookie").filter_map(|v| v.to_str().ok()) {
            let pair = c.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.insert(name.to_string(), value.to_string());
        }
        if let Some(i) = body.find("name=\"csrf\" value=\"") {
            let rest = &body[i + 19..];
            self.csrf = rest[..rest.find('"').unwrap()].to_string();
        }
    }

    fn request(&self, req: test::TestRequest) -> test::TestRequest {
        let req = req.peer_addr(format!("10.0.1.{}:4000", self.ip).parse().unwrap());
        if self.cookies.is_empty() {
            return req;
        }
        let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        req.insert_header(("cookie", jar.join("; ")))
    }
}

macro_rules! visit {
    ($app:expr, $b:expr, $path:expr) => {{
        let res =
            test::call_service(&$app, $b.request(test::TestRequest::get().uri($path)).to_request()).await;
        let (status, headers) = (res.status(), res.headers().clone());
        let body = String::from_utf8_lossy(&test::read_body(res).await).into_owned();
        $b.remember(&headers, &body);
        Page { status, body }
    }};
}

macro_rules! post {
    ($app:expr, $b:expr, $path:expr, $form:expr) => {{
        let body = serde_urlencoded::to_string($form).unwrap();
        let req = test::TestRequest::post()
            .uri($path)
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .insert_header(("origin", ORIGIN))
            .set_payload(body);
        let res = test::call_service(&$app, $b.request(req).to_request()).await;
        let (status, headers) = (res.status(), res.headers().clone());
        let body = String::from_utf8_lossy(&test::read_body(res).await).into_owned();
        $b.remember(&headers, &body);
        Page { status, body }
    }};
}

/// An admin call with the token: (status, JSON).
macro_rules! admin {
    ($app:expr, $method:expr, $path:expr, $body:expr) => {{
        let req = test::TestRequest::default()
            .method(actix_web::http::Method::from_bytes($method.as_bytes()).unwrap())
            .uri($path)
            .insert_header(("authorization", format!("Bearer {ADMIN_TOKEN}")))
            .insert_header(("content-type", "application/json"))
            .set_payload($body.to_string());
        let res = test::call_service(&$app, req.to_request()).await;
        let status = res.status();
        let bytes = test::read_body(res).await;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }};
}

/// Signs up through the pages and confirms as the mail link would; answers the customer id.
macro_rules! sign_up {
    ($h:expr, $app:expr, $b:expr, $email:expr) => {{
        visit!($app, $b, "/signup");
        let csrf = $b.csrf.clone();
        let p = post!(
            $app,
            $b,
            "/signup",
            &[
                ("csrf", csrf.as_str()),
                ("name", "Ada"),
                ("email", $email),
                ("password", "correct horse battery")
            ]
        );
        assert_eq!(p.status, 200, "{}", p.body);
        let mail = std::fs::read_dir($h.dir.path().join("outbox"))
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
            .find(|m| m.contains($email) && m.contains("/confirm?token="))
            .expect("the confirmation mail");
        let link = crate::common::smtp::link_in(&mail, "/confirm?token=");
        let path = link[link.find("/confirm").unwrap()..].to_string();
        visit!($app, $b, &path);
        let token = path.split("token=").nth(1).unwrap().to_string();
        let csrf = $b.csrf.clone();
        let p = post!($app, $b, "/confirm", &[("csrf", csrf.as_str()), ("token", token.as_str())]);
        assert_eq!(p.status, 200, "{}", p.body);
        $h.state.accounts.customers(None, 1000).unwrap().into_iter().find(|c| c.email == $email).unwrap().id
    }};
}

async fn harness() -> Harness {
    Harness::start(Setup { load: false, tier: "free", ..Setup::default() }, |_| {}).await
}

fn experiment() -> Value {
    json!({
        "name": "Pro at $39",
        "hypothesis": "A lower Pro price brings more sign-ups",
        "variants": [
            {"id": "control"},
            {"id": "lower", "headline": "Forecasts for less", "prices": {"pro": {"monthly_usd": 39}}}
        ],
        "stopping_rule": {"min_exposures_per_variant": 1, "horizon_days": 7}
    })
}

#[actix_rt::test]
async fn a_visitor_keeps_their_variant_signs_up_under_it_and_pays_its_price() {
    let h = harness().await;
    let app = app!(h);
    let (status, created) = admin!(app, "POST", "/admin/pricing/experiments", experiment());
    assert_eq!(status, 200, "{created}");
    let id = created["experiment"]["id"].as_str().unwrap().to_string();
    assert_eq!(created["experiment"]["variants"][1]["prices"]["pro"]["monthly_minor"], 3_900);

    // Visitors until one sees the lower price; each keeps what they saw.
    let mut seen = BTreeMap::new();
    let mut lucky = None;
    for ip in 1..40u8 {
        let mut b = Browser::new(ip);
        let first = visit!(app, b, "/pricing");
        assert_eq!(first.status, 200);
        let cookie = b.cookies.get("citecast_pv").cloned().expect("the visitor cookie");
        let lower = first.body.contains("$39");
        for _ in 0..2 {
            let again = visit!(app, b, "/pricing");
            assert_eq!(again.body.contains("$39"), lower, "the same variant on every visit");
            assert_eq!(b.cookies["citecast_pv"], cookie);
        }
        *seen.entry(lower).or_insert(0) += 1;
        if lower {
            assert!(first.body.contains("Forecasts for less"), "the variant's headline");
            if lucky.is_none() {
                lucky = Some(b);
            }
        } else {
            assert!(first.body.contains("$49"));
        }
        if lucky.is_some() && seen.len() == 2 {
            break;
        }
    }
    let mut b = lucky.expect("a visitor in the lower variant");
    let exposures_before: u64 = seen.values().sum();

    // The sign-up page names the price the visitor saw.
    let form = visit!(app, b, "/signup?plan=pro&interval=monthly");
    assert!(form.body.contains("Pro (monthly, $39.00)") && !form.body.contains("$49"), "{}", form.body);

    // Sign-up records the variant's prices for the customer.
    let customer = sign_up!(h, app, b, "lower@example.org");
    let billing = visit!(app, b, "/billing");
    assert!(billing.body.contains("Pro: $39.00 a month"), "{}", billing.body);
    assert!(!billing.body.contains("$49.00"), "{}", billing.body);
    let mine = visit!(app, b, "/pricing");
    assert!(mine.body.contains("id=\"own-prices\"") && mine.body.contains("$39"), "{}", mine.body);

    // The upgrade is charged at the variant's price.
    let csrf = b.csrf.clone();
    let up = post!(app, b, "/billing/plan", &[("csrf", csrf.as_str()), ("plan", "pro:monthly")]);
    assert_eq!(up.status, StatusCode::SEE_OTHER, "{}", up.body);
    let invoices = h.state.billing.invoices(&customer).unwrap();
    assert_eq!(invoices.len(), 1);
    assert_eq!(invoices[0].total_minor, 3_900, "{:?}", invoices[0]);
    let upcoming = h
        .state
        .billing
        .upcoming(
            &customer,
            &citecast::billing::Prices::for_customer(&h.state.engine.db, &h.state.tiers, &customer).unwrap(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(upcoming.total_minor, 3_900, "the renewal too");

    // The report: exposures per variant, the sign-up and (once paid) the first payment.
    h.state.billing.mark_paid(&invoices[0].id, Some("transfer"), 0, "test").unwrap();
    let (status, report) = admin!(app, "GET", &format!("/admin/pricing/experiments/{id}"), "");
    assert_eq!(status, 200, "{report}");
    let variants = report["variants"].as_array().unwrap();
    let total: u64 = variants.iter().map(|v| v["counts"]["exposures"].as_u64().unwrap()).sum();
    assert_eq!(total, exposures_before, "one exposure per visitor, however often they came back");
    let lower = variants.iter().find(|v| v["id"] == "lower").unwrap();
    assert_eq!(lower["counts"]["signups"], 1);
    assert_eq!(lower["counts"]["first_payments"], 1);
    assert_eq!(lower["counts"]["exposures"].as_u64(), seen.get(&true).copied());
    let n = lower["counts"]["exposures"].as_f64().unwrap();
    assert!((lower["signup"]["rate"].as_f64().unwrap() - 1.0 / n).abs() < 1e-9);
    assert!(lower["signup"]["low"].as_f64().unwrap() < lower["signup"]["high"].as_f64().unwrap());
    assert_eq!(variants[0]["counts"]["signups"], 0);
    assert!(lower["vs_control"]["p_value"].is_number());
    assert_eq!(report["decision"]["allowed"], false, "7 days have not passed");
    assert!(report["decision"]["reason"].as_str().unwrap().contains("not yet"));
    assert!(report["outcome"].is_null());
    // The page for a browser says the same in words.
    let req = test::TestRequest::get()
        .uri(&format!("/admin/pricing/experiments/{id}"))
        .insert_header(("authorization", format!("Bearer {ADMIN_TOKEN}")))
        .insert_header(("accept", "text/html"));
    let page = test::call_and_read_body(&app, req.to_request()).await;
    let page = String::from_utf8_lossy(&page);
    assert!(page.contains("Decision not allowed yet") && page.contains("95 % CI"), "{page}");

    // Stopped: /pricing shows the table again to new visitors.
    let (status, _) = admin!(app, "POST", &format!("/admin/pricing/experiments/{id}/stop"), "{}");
    assert_eq!(status, 200);
    let mut later = Browser::new(200);
    let p = visit!(app, later, "/pricing");
    assert!(p.body.contains("$49") && !p.body.contains("$39") && !later.cookies.contains_key("citecast_pv"));
}

#[actix_rt::test]
async fn bad_experiment_definitions_are_refused_in_words_and_nothing_is_stored() {
    let h = harness().await;
    let app = app!(h);
    let mut bad = vec![
        (json!("not an object"), "not an experiment definition"),
        (json!({"name": "x"}), "not an experiment definition"),
    ];
    let mut e = experiment();
    e["surprise"] = json!(1);
    bad.push((e, "unknown field"));
    let mut e = experiment();
    e["variants"].as_array_mut().unwrap().truncate(1);
    bad.push((e, "'variants'"));
    let mut e = experiment();
    e["variants"][1]["prices"] = json!({"enterprise": {"monthly_usd": 10}});
    bad.push((e, "not a self-serve paid tier"));
    let mut e = experiment();
    e["variants"][1]["prices"]["pro"]["monthly_usd"] = json!(0);
    bad.push((e, "monthly_usd"));
    let mut e = experiment();
    e["stopping_rule"]["horizon_days"] = json!(0);
    bad.push((e, "horizon_days"));
    let mut e = experiment();
    e["variants"][1]["id"] = json!("control");
    bad.push((e, "repeats"));
    let mut e = experiment();
    e["name"] = json!("");
    bad.push((e, "'name'"));
    for (body, needle) in bad {
        let (status, err) = admin!(app, "POST", "/admin/pricing/experiments", body);
        assert_eq!(status, 400, "{err}");
        let msg = err["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{needle}: {msg}");
    }
    // Without the token: refused before the body is read.
    let req =
        test::TestRequest::post().uri("/admin/pricing/experiments").set_payload(experiment().to_string());
    assert_eq!(test::call_service(&app, req.to_request()).await.status(), 401);
    let (_, list) = admin!(app, "GET", "/admin/pricing/experiments", "");
    assert_eq!(list["experiments"].as_array().unwrap().len(), 0, "nothing stored: {list}");

    // One at a time; unknown ids; stopping twice.
    let (status, _) = admin!(app, "POST", "/admin/pricing/experiments", experiment());
    assert_eq!(status, 200);
    let (status, err) = admin!(app, "POST", "/admin/pricing/experiments", experiment());
    assert_eq!(status, 409, "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("is running"));
    let (status, _) = admin!(app, "GET", "/admin/pricing/experiments/exp_999999", "");
    assert_eq!(status, 404);
    let (status, _) = admin!(app, "POST", "/admin/pricing/experiments/exp_999999/stop", "{}");
    assert_eq!(status, 404);
    let (status, _) = admin!(app, "POST", "/admin/pricing/experiments/exp_000001/stop", "{}");
    assert_eq!(status, 200);
    let (status, err) = admin!(app, "POST", "/admin/pricing/experiments/exp_000001/stop", "{}");
    assert_eq!(status, 409, "{err}");
    let (_, list) = admin!(app, "GET", "/admin/pricing/experiments", "");
    assert_eq!(list["experiments"].as_array().unwrap().len(), 1);
}

/// Writes `n` requests on `day` for `key` into the usage journal, as the limiter does.
fn usage(h: &Harness, key: &str, day: citecast_actors::dates::Day, n: u64) {
    let tree = h.state.engine.db.open_tree("usage").unwrap();
    let mut k = key.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&day.to_be_bytes());
    tree.insert(k, &n.to_be_bytes()).unwrap();
}

fn growth_mails(h: &Harness, to: &str) -> usize {
    std::fs::read_dir(h.dir.path().join("outbox"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .filter(|m| m.contains(to) && m.contains("A limit you ran into"))
        .count()
}

#[actix_rt::test]
async fn past_eighty_percent_on_three_days_offers_the_upgrade_beside_a_downgrade_and_counts_the_conversion() {
    let h = harness().await;
    let app = app!(h);
    let mut b = Browser::new(7);
    let customer = sign_up!(h, app, b, "busy@example.org");
    let key = h.state.accounts.keys_of(&customer).unwrap()[0].id.clone();
    let today = citecast_actors::dates::today();
    // Two days past 80 % of the free plan's 2,000: no offer yet.
    usage(&h, &key, today - 1, 1_900);
    usage(&h, &key, today - 3, 1_700);
    let page = visit!(app, b, "/account");
    assert!(!page.body.contains("offer-quota_80"), "{}", page.body);
    // A third: the offer, with its price, the upgrade and the downgrade forms.
    usage(&h, &key, today - 5, 1_601);
    let page = visit!(app, b, "/account");
    assert!(page.body.contains("id=\"offer-quota_80\""), "{}", page.body);
    assert!(page.body.contains("on 3 of the last 7 days"), "{}", page.body);
    assert!(page.body.contains("Pro allows 100,000 requests a day for $49.00 a month."), "{}", page.body);
    assert!(page.body.contains("value=\"pro:monthly\""), "{}", page.body);
    assert!(
        page.body.contains("value=\"free:monthly\"") && page.body.contains("Downgrade to Free"),
        "{}",
        page.body
    );
    assert_eq!(page.body.matches("action=\"/billing/plan\"").count(), 2);

    // The daily job mails it once; the next run (same month) does not mail again.
    let mailer = h.state.mailer.clone();
    let run = || {
        citecast::growth::job::daily(
            &h.state.engine,
            &h.state.accounts,
            &h.state.tiers,
            mailer.clone(),
            "http://localhost:8080",
            today,
            citecast_actors::dates::now_secs(),
        )
    };
    run().await.unwrap();
    run().await.unwrap();
    assert_eq!(growth_mails(&h, "busy@example.org"), 1);

    // The upgrade from the notice's form; the report counts it as the trigger's conversion.
    let csrf = b.csrf.clone();
    let up = post!(app, b, "/billing/plan", &[("csrf", csrf.as_str()), ("plan", "pro:monthly")]);
    assert_eq!(up.status, StatusCode::SEE_OTHER, "{}", up.body);
    let (status, report) = admin!(app, "GET", "/admin/growth", "");
    assert_eq!(status, 200, "{report}");
    let quota = report["triggers"].as_array().unwrap().iter().find(|t| t["trigger"] == "quota_80").unwrap();
    assert_eq!(
        (quota["triggered"].as_u64(), quota["converted"].as_u64(), quota["mailed"].as_u64()),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(report["total"]["converted"], 1);
    // The same through the function the economics page calls.
    let r = citecast::growth::conversion_report(
        &h.state.engine.db,
        h.state.accounts.as_ref(),
        &h.state.tiers,
        citecast_actors::dates::now_secs(),
    )
    .unwrap();
    assert_eq!((r.total.triggered, r.total.converted), (1, 1));
    // On Pro, 1,900 a day is far from its quota: no offer any more.
    let page = visit!(app, b, "/account");
    assert!(!page.body.contains("offer-quota_80"));
}

#[actix_rt::test]
async fn repeated_429s_are_recorded_by_the_guard_and_offer_the_higher_limit() {
    let h = harness().await;
    h.state.ready.store(true, std::sync::atomic::Ordering::Release);
    let app = app!(h);
    let mut b = Browser::new(9);
    let customer = sign_up!(h, app, b, "hasty@example.org");
    let secret = {
        // A key we know the secret of.
        let k = h.state.accounts.issue_key(&customer, "load", None).unwrap();
        k.secret
    };
    let mut limited = 0;
    for _ in 0..45 {
        let req = test::TestRequest::get()
            .uri("/v1/papers/hep-th%2F9711200")
            .insert_header(("authorization", format!("Bearer {secret}")));
        let status = match test::try_call_service(&app, req.to_request()).await {
            Ok(res) => res.status(),
            Err(e) => e.as_response_error().status_code(),
        };
        if status == 429 {
            limited += 1;
        }
    }
    assert!(limited >= 10, "{limited} refusals");
    let page = visit!(app, b, "/account");
    assert!(page.body.contains("id=\"offer-rate_limited\""), "{}", page.body);
    assert!(page.body.contains(&format!("{limited} of your calls")), "{}", page.body);
    assert!(page.body.contains("value=\"free:monthly\""));
}
