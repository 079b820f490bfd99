//! `POST /webhooks/payments`: signed provider events applied once, the tier following the plan.

use actix_web::test;
use citecast::billing::signature::sign;
use citecast::billing::{Interval, Plan, Prices};
use citecast_actors::dates;
use serde_json::{json, Value};

use crate::common::{Harness, Setup};

const SECRET: &str = "whsec_test";

fn signed(body: &str, secret: &str) -> test::TestRequest {
    let t = dates::now_secs();
    test::TestRequest::post()
        .uri("/webhooks/payments")
        .insert_header((
            "Stripe-Signature",
            format!("t={t},v1={}", sign(secret.as_bytes(), t, body.as_bytes())),
        ))
        .insert_header(("Content-Type", "application/json"))
        .set_payload(body.to_string())
}

#[actix_web::test]
async fn payment_webhooks_apply_once_and_the_tier_follows() {
    let setup = Setup { load: false, tier: "free", ..Setup::default() };
    let h = Harness::start(setup, |c| c.payment_webhook_secrets = vec![SECRET.into()]).await;
    let (customer, _, _) = h.customer("free").await;
    let prices = Prices::from_tiers(&h.state.tiers);
    let today = dates::today();
    let b = &h.state.billing;
    b.start(&customer, &Plan::new("pro", Interval::Monthly), &prices, today - 14, 0, "test").unwrap();
    let invoice = b.run_daily(today, 0, &prices).unwrap().remove(0).invoice.unwrap();
    let app = app!(h);

    let event = |id: &str, kind: &str, inv: &str| {
        json!({"id": id, "type": kind, "data": {"object": {"id": "in_x", "metadata": {"invoice_id": inv}}}})
            .to_string()
    };
    let paid = event("evt_1", "invoice.payment_succeeded", &invoice.id);
    let resp = test::call_service(&app, signed(&paid, SECRET).to_request()).await;
    assert_eq!(resp.status(), 200);
    let v: Value = test::read_body_json(resp).await;
    assert_eq!((v["received"].as_bool(), v["replayed"].as_bool()), (Some(true), Some(false)));
    assert_eq!(h.state.accounts.customer(&customer).unwrap().unwrap().tier, "pro");
    assert_eq!(b.invoice(&invoice.id).unwrap().unwrap().payment_ref.as_deref(), Some("evt_1"));

    // The provider's retry is a replay: answered, nothing changes.
    let resp = test::call_service(&app, signed(&paid, SECRET).to_request()).await;
    let v: Value = test::read_body_json(resp).await;
    assert_eq!(v["replayed"], true);

    // Wrong secret, unknown invoice, a type we do not act on.
    let other = event("evt_2", "invoice.payment_failed", &invoice.id);
    let resp = test::call_service(&app, signed(&other, "whsec_other").to_request()).await;
    assert_eq!(resp.status(), 400);
    let v: Value = test::read_body_json(resp).await;
    assert_eq!(v["error"]["code"], "invalid_signature");
    let missing = event("evt_3", "invoice.payment_failed", "inv_999999");
    let resp = test::call_service(&app, signed(&missing, SECRET).to_request()).await;
    assert_eq!(resp.status(), 404);
    let ignored = json!({"id": "evt_4", "type": "customer.created", "data": {"object": {}}}).to_string();
    let resp = test::call_service(&app, signed(&ignored, SECRET).to_request()).await;
    let v: Value = test::read_body_json(resp).await;
    assert_eq!(v["ignored"], true);
}

#[actix_web::test]
async fn without_a_secret_webhooks_are_disabled() {
    let h = Harness::start(Setup { load: false, ..Setup::default() }, |_| {}).await;
    let app = app!(h);
    let resp = test::call_service(&app, signed("{}", SECRET).to_request()).await;
    assert_eq!(resp.status(), 503);
    let v: Value = test::read_body_json(resp).await;
    assert_eq!(v["error"]["code"], "webhooks_disabled");
}
