//! The operator's economics endpoints and the win-back job in-process: spend and costs are
//! recorded only when valid (bad input answered in words, nothing stored) and show in the
//! figures; a customer canceled 31 days ago gets one win-back mail, never a second, and
//! the dashboard's rate counts it.

use actix_web::test;
use citecast::billing::{Interval, Plan, Prices};
use citecast_actors::dates;

use crate::common::*;

fn post(path: &str, body: serde_json::Value, token: Option<&str>) -> actix_http::Request {
    let mut r = test::TestRequest::post().uri(path).set_json(body);
    if let Some(t) = token {
        r = r.insert_header(("authorization", format!("Bearer {t}")));
    }
    r.to_request()
}

#[actix_rt::test]
async fn spend_and_costs_are_checked_and_a_cancellation_gets_one_win_back_mail() {
    let h = Harness::start(Setup { load: false, ..Setup::default() }, |_| {}).await;
    let app = app!(h);
    let good = serde_json::json!({"month": "2026-11", "amount": "1200.50", "label": "ads"});
    assert_eq!(
        test::call_service(&app, post("/admin/economics/spend", good.clone(), None)).await.status().as_u16(),
        401
    );
    for bad in [
        serde_json::json!({"month": "2026-13", "amount": "10", "label": "ads"}),
        serde_json::json!({"month": "2026-11", "amount": "ten", "label": "ads"}),
        serde_json::json!({"month": "2026-11", "amount": "10", "label": "<script>alert(1)</script>"}),
        serde_json::json!({"month": "2026-11", "amount": "10", "label": "x".repeat(10_000)}),
        serde_json::json!({"month": "2026-11", "label": "ads"}),
        serde_json::json!({"month": 5, "amount": "10", "label": "ads"}),
    ] {
        let res =
            test::call_service(&app, post("/admin/economics/spend", bad.clone(), Some(ADMIN_TOKEN))).await;
        assert_eq!(res.status().as_u16(), 400, "{bad}");
        let body: serde_json::Value = serde_json::from_slice(&test::read_body(res).await).unwrap();
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
    let res =
        test::call_service(&app, post("/admin/economics/nonsense", good.clone(), Some(ADMIN_TOKEN))).await;
    assert_eq!(res.status().as_u16(), 404);
    let ledgers = citecast::economics::store::Ledgers::open(&h.state.engine.db).unwrap();
    assert!(ledgers.all(citecast::economics::store::Table::Spend).unwrap().is_empty(), "nothing stored");
    let res = test::call_service(&app, post("/admin/economics/spend", good, Some(ADMIN_TOKEN))).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(ledgers.all(citecast::economics::store::Table::Spend).unwrap()[0].amount_minor, 120_050);

    // A customer who paid, then canceled 31 days ago.
    let (customer, _, _) = h.customer("free").await;
    let prices = Prices::from_tiers(&h.state.tiers);
    let now = dates::now_secs();
    let (then, then_day) = (now - 40 * 86_400, dates::today() - 40);
    let b = &h.state.billing;
    b.start(&customer, &Plan::new("free", Interval::Monthly), &prices, then_day, then, "t").unwrap();
    b.cancel(&customer, false, now - 31 * 86_400, "t").unwrap();
    let config = citecast::config::Config::new(h.dir.path().to_path_buf());
    let ctx = || citecast::ops::jobs::JobContext {
        engine: h.state.engine.clone(),
        accounts: h.state.accounts.clone(),
        issues: h.state.issues.clone(),
        config: config.jobs(),
        billing: Some(citecast::billing::job::BillingJobSettings {
            billing: h.state.billing.clone(),
            tiers: h.state.tiers.clone(),
            mailer: h.state.mailer.clone(),
            base_url: h.state.site.base_url.clone(),
        }),
        budget: None,
    };
    let job = citecast::retention::job::jobs().into_iter().find(|j| j.spec.name == "winback").unwrap();
    assert_eq!((job.run)(ctx()).await.unwrap(), 1);
    assert_eq!((job.run)(ctx()).await.unwrap(), 0, "one mail per cancellation");
    let outbox: Vec<String> = std::fs::read_dir(h.dir.path().join("outbox"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .filter(|m| m.contains("still here"))
        .collect();
    assert_eq!(outbox.len(), 1);
    assert!(outbox[0].contains("/pricing"), "{}", outbox[0]);
    let o = citecast::retention::overview(&h.state.engine.db, b, &[]).unwrap();
    assert_eq!((o.winbacks_sent, o.winbacks_won), (1, 0));
}
