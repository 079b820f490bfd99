//! The API as a product: keys, tiers, rate limits, caching headers, load shedding,
//! deprecation headers and the OpenAPI document, on the real `App`.

use actix_web::dev::ServiceResponse;
use actix_web::{test, App};
use citecast::accounts::tiers::{Group, Tier, Tiers};
use citecast::config::{Config, Deprecation};
use citecast::ops::operator::{self, OpRequest};
use citecast::web::error::ApiError;
use citecast_actors::actors::IngestFiles;
use serde_json::Value;

use crate::common::{self, Setup};

fn tier(id: &str, per_minute: u32, burst: u32, daily: u64, endpoints: &[Group]) -> Tier {
    Tier {
        id: id.into(),
        name: id[..1].to_uppercase() + &id[1..],
        per_minute,
        burst,
        daily,
        max_batch: 10,
        max_keys: 5,
        endpoints: endpoints.to_vec(),
        price_monthly_usd: Some(0),
        price_annual_usd: Some(0),
    }
}

/// Small limits so floods are quick to provoke.
fn test_tiers() -> Tiers {
    use Group::*;
    let all = [Papers, Search, Authors, Forecasts, Account, Meta];
    Tiers {
        anonymous: tier("anonymous", 60, 5, 1000, &[Papers, Search, Authors, Meta]),
        tiers: vec![
            tier("small", 60, 5, 1000, &all),
            tier("daily", 6000, 100, 3, &all),
            tier("big", 6000, 1000, 100_000, &all),
        ],
    }
}

/// The fixture loaded, the small test tiers, and whatever `adjust` changes.
async fn harness(adjust: impl FnOnce(&mut Config)) -> common::Harness {
    let setup = Setup { tier: "big", admin_token: "admin", ..Setup::default() };
    common::Harness::start(setup, |c| {
        c.tiers = test_tiers();
        adjust(c)
    })
    .await
}

async fn parts(resp: ServiceResponse) -> (u16, actix_web::http::header::HeaderMap, Value) {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = test::read_body(resp).await;
    (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn req(method: &str, uri: &str, key: Option<&str>) -> test::TestRequest {
    let r = match method {
        "POST" => test::TestRequest::post(),
        "DELETE" => test::TestRequest::delete(),
        _ => test::TestRequest::get(),
    }
    .uri(uri);
    match key {
        Some(k) => r.insert_header(("authorization", format!("Bearer {k}"))),
        None => r,
    }
}

/// Calls the app; errors raised by middleware become their rendered responses, as the
/// real server sends them.
macro_rules! call {
    ($app:expr, $req:expr) => {{
        match test::try_call_service(&$app, $req.to_request()).await {
            Ok(resp) => parts(resp.map_into_boxed_body()).await,
            Err(e) => {
                let resp = e.error_response();
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                let body = actix_web::body::to_bytes(resp.into_body()).await.unwrap_or_default();
                (status, headers, serde_json::from_slice(&body).unwrap_or(Value::Null))
            }
        }
    }};
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[actix_web::test]
async fn keys_are_checked_and_every_bad_key_gets_a_clear_401() {
    let h = harness(|_| {}).await;
    let app = app!(h);
    let (_, key_id, secret) = h.customer("big").await;

    let (status, headers, _) = call!(app, req("GET", "/v1/papers/9711200", Some(&secret)));
    assert_eq!(status, 200);
    assert_eq!(headers.get("ratelimit-limit").unwrap(), "6000");

    // No key: anonymous, with its own (smaller) limits in the headers.
    let (status, headers, _) = call!(app, req("GET", "/v1/papers/9711200", None));
    assert_eq!(status, 200);
    assert_eq!(headers.get("ratelimit-limit").unwrap(), "60");
    // Anonymous callers may not use account endpoints.
    let (status, _, body) = call!(app, req("GET", "/v1/account", None));
    assert_eq!((status, code(&body)), (403, "tier_not_allowed"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("API key"));

    for bad in ["", "nonsense", "cc_live_", "cc_live_doesnotexist000000000000000000"] {
        let (status, headers, body) = call!(app, req("GET", "/v1/papers/9711200", Some(bad)));
        assert_eq!((status, code(&body)), (401, "invalid_api_key"), "{bad:?}: {body}");
        assert!(headers.contains_key("www-authenticate"));
        assert!(body["error"]["docs"].as_str().unwrap().contains("#error-invalid_api_key"));
    }
    let r = test::TestRequest::get().uri("/v1/papers/9711200").insert_header(("authorization", "Basic abc"));
    let (status, _, body) = call!(app, r);
    assert_eq!((status, code(&body)), (401, "invalid_api_key"));
    let r = test::TestRequest::get().uri("/v1/papers/9711200").insert_header(("x-api-key", secret.as_str()));
    let (status, _, _) = call!(app, r);
    assert_eq!(status, 200, "X-API-Key works too");

    // Revoke through the account API: the key stops working at once.
    let (status, _, body) = call!(app, req("DELETE", &format!("/v1/account/keys/{key_id}"), Some(&secret)));
    assert_eq!(status, 200, "{body}");
    assert!(body["key"]["revoked"].is_i64());
    let (status, _, body) = call!(app, req("GET", "/v1/papers/9711200", Some(&secret)));
    assert_eq!((status, code(&body)), (401, "revoked_api_key"), "{body}");
}

#[actix_web::test]
async fn account_shows_usage_and_manages_keys() {
    let h = harness(|_| {}).await;
    let app = app!(h);
    let (customer, key_id, secret) = h.customer("big").await;
    let (_, other_key, _) = h.customer("big").await;

    call!(app, req("GET", "/v1/papers/9711200", Some(&secret)));
    let (status, headers, body) = call!(app, req("GET", "/v1/account", Some(&secret)));
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers.get("cache-control").unwrap(), "no-store");
    assert_eq!(body["customer"]["id"], customer);
    assert_eq!(body["tier"]["id"], "big");
    assert_eq!(body["usage_today"]["requests"], 2);

    let (status, _, body) = call!(
        app,
        req("POST", "/v1/account/keys", Some(&secret)).set_json(serde_json::json!({"name": "ci"}))
    );
    assert_eq!(status, 201, "{body}");
    let second = body["secret"].as_str().unwrap().to_string();
    let (_, _, body) = call!(app, req("GET", "/v1/account/keys", Some(&second)));
    let keys = body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(!body.to_string().contains(&secret[12..]), "listings never show secrets");

    // Rotation: a new secret; the old one is refused.
    let (status, _, body) =
        call!(app, req("POST", &format!("/v1/account/keys/{key_id}/rotate"), Some(&second)));
    assert_eq!(status, 201, "{body}");
    let rotated = body["secret"].as_str().unwrap().to_string();
    assert_eq!(call!(app, req("GET", "/v1/account", Some(&rotated))).0, 200);
    assert_eq!(call!(app, req("GET", "/v1/account", Some(&secret))).0, 401);

    // Another customer's key is not yours to revoke.
    let (status, _, body) =
        call!(app, req("DELETE", &format!("/v1/account/keys/{other_key}"), Some(&rotated)));
    assert_eq!((status, code(&body)), (404, "not_found"));

    // Bodies: oversized, malformed, unknown fields, wrong content.
    let big = serde_json::json!({ "name": "x".repeat(100 * 1024) });
    let (status, _, body) = call!(app, req("POST", "/v1/account/keys", Some(&rotated)).set_json(big));
    assert_eq!((status, code(&body)), (413, "payload_too_large"), "{body}");
    let r = req("POST", "/v1/account/keys", Some(&rotated))
        .insert_header(("content-type", "application/json"))
        .set_payload("{\"name\":");
    let (status, _, body) = call!(app, r);
    assert_eq!((status, code(&body)), (400, "invalid_body"));
    let r = req("POST", "/v1/account/keys", Some(&rotated))
        .set_json(serde_json::json!({"name": "a", "admin": true}));
    let (status, _, body) = call!(app, r);
    assert_eq!((status, code(&body)), (400, "invalid_body"));
    assert!(body["error"]["message"].as_str().unwrap().contains("unknown field"), "{body}");
    let r = req("POST", "/v1/account/keys", Some(&rotated)).set_json(serde_json::json!({"name": "  "}));
    assert_eq!(call!(app, r).0, 400);
}

#[actix_web::test]
async fn a_flooding_key_gets_429s_while_another_keeps_full_service() {
    let h = harness(|_| {}).await;
    let app = app!(h);
    let (_, _, noisy) = h.customer("small").await;
    let (_, _, quiet) = h.customer("small").await;

    let mut limited = None;
    for _ in 0..20 {
        let r = call!(app, req("GET", "/v1/papers/9711200", Some(&noisy)));
        if r.0 == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.0, 200);
    }
    let (_, headers, body) = limited.expect("the burst of 5 runs out within 20 requests");
    assert_eq!(code(&body), "rate_limited");
    assert_eq!(body["error"]["limit"], "per_minute");
    assert_eq!(body["error"]["tier"], "small");
    assert_eq!(body["error"]["upgrade_tier"], "big");
    let retry: u64 = headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(headers.get("ratelimit-remaining").unwrap(), "0");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("60 requests per minute") && message.contains("Big"), "{message}");

    // The other key of the same tier is unaffected.
    for _ in 0..5 {
        assert_eq!(call!(app, req("GET", "/v1/papers/9711200", Some(&quiet))).0, 200);
    }
}

#[actix_web::test]
async fn the_daily_quota_is_enforced_until_midnight() {
    let h = harness(|_| {}).await;
    let app = app!(h);
    let (_, _, secret) = h.customer("daily").await;
    for _ in 0..3 {
        assert_eq!(call!(app, req("GET", "/v1/papers/9711200", Some(&secret))).0, 200);
    }
    let (status, headers, body) = call!(app, req("GET", "/v1/papers/9711200", Some(&secret)));
    assert_eq!((status, code(&body)), (429, "quota_exceeded"), "{body}");
    assert_eq!(body["error"]["limit"], "daily");
    let retry: u64 = headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry));
    assert_eq!(headers.get("x-daily-quota-remaining").unwrap(), "0");
}

#[actix_web::test]
async fn etags_answer_304_and_change_with_the_data() {
    let h = harness(|_| {}).await;
    let app = app!(h);
    let (_, _, secret) = h.customer("big").await;
    for uri in [
        "/v1/papers/9711200",
        "/v1/search?q=black+hole",
        "/v1/authors/maldacena_j",
        "/v1/papers/9711200/citations",
    ] {
        let (status, headers, _) = call!(app, req("GET", uri, Some(&secret)));
        assert_eq!(status, 200);
        let etag = headers.get("etag").unwrap().to_str().unwrap().to_string();
        assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");
        assert!(headers.get("cache-control").unwrap().to_str().unwrap().starts_with("public, max-age="));
        let r = req("GET", uri, Some(&secret)).insert_header(("if-none-match", etag.as_str()));
        let resp = test::call_service(&app, r.to_request()).await;
        assert_eq!(resp.status().as_u16(), 304, "{uri}");
        assert_eq!(resp.headers().get("etag").unwrap().to_str().unwrap(), etag);
        let r = req("GET", uri, Some(&secret)).insert_header(("if-none-match", "\"other\""));
        assert_eq!(call!(app, r).0, 200);
    }

    // New data: the cached paper is re-rendered and its ETag changes.
    let (_, headers, before) = call!(app, req("GET", "/v1/papers/9711200", Some(&secret)));
    let old = headers.get("etag").unwrap().clone();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.jsonl");
    std::fs::write(&file, r#"{"id":"z/1","title":"t","authors":["A. B"],"submitted_utc":"2003-05-02","references":["9711200"]}"#).unwrap();
    h.state
        .engine
        .ingest
        .send(IngestFiles { paths: vec![file], ..Default::default() })
        .await
        .unwrap()
        .unwrap();
    let (_, headers, after) = call!(app, req("GET", "/v1/papers/9711200", Some(&secret)));
    assert_ne!(headers.get("etag").unwrap(), &old);
    assert_eq!(
        after["citations"]["total"].as_u64().unwrap(),
        before["citations"]["total"].as_u64().unwrap() + 1
    );
}

#[actix_web::test]
async fn saturation_sheds_load_with_503_but_health_stays_up() {
    let h = harness(|c| c.max_in_flight = 0).await;
    let app = app!(h);
    let (status, headers, body) = call!(app, req("GET", "/v1/papers/9711200", None));
    assert_eq!((status, code(&body)), (503, "overloaded"), "{body}");
    assert_eq!(headers.get("retry-after").unwrap(), "1");
    assert_eq!(call!(app, req("GET", "/healthz", None)).0, 200);
    assert_eq!(call!(app, req("GET", "/readyz", None)).0, 200);
}

#[actix_web::test]
async fn deprecated_routes_say_so_in_headers() {
    let h = harness(|c| {
        c.deprecations = vec![Deprecation {
            path_prefix: "/v1/authors".into(),
            deprecated_at: 1_790_000_000,
            sunset_at: 1_810_000_000,
            link: "https://example.org/migrate".into(),
        }]
    })
    .await;
    let app = app!(h);
    let (_, headers, _) = call!(app, req("GET", "/v1/authors/maldacena_j", None));
    assert_eq!(headers.get("deprecation").unwrap(), "@1790000000");
    assert!(headers.get("sunset").unwrap().to_str().unwrap().ends_with("GMT"));
    assert!(headers.get("link").unwrap().to_str().unwrap().contains("rel=\"deprecation\""));
    let (_, headers, _) = call!(app, req("GET", "/v1/papers/9711200", None));
    assert!(headers.get("deprecation").is_none());
}

#[actix_web::test]
async fn every_route_is_in_the_openapi_document() {
    let h = harness(|_| {}).await;
    let app = app!(h);
    let (_, key_id, secret) = h.customer("big").await;
    let (status, _, doc) = call!(app, req("GET", "/v1/openapi.json", None));
    assert_eq!(status, 200);
    // 3.1: the response schemas derived from the Rust types use its JSON Schema.
    assert_eq!(doc["openapi"], "3.1.0");
    let forecast = &doc["components"]["schemas"]["Forecast"];
    assert!(
        forecast["properties"]["top_features"].is_object() && forecast["required"].is_array(),
        "{forecast}"
    );
    assert!(doc["components"]["schemas"]["Contribution"]["properties"]["sentence"].is_object());
    assert_eq!(
        doc["paths"]["/v1/papers/{id}/forecast"]["get"]["responses"]["200"]["content"]["application/json"]
            ["schema"]["$ref"],
        "#/components/schemas/Forecast"
    );
    let paths = doc["paths"].as_object().unwrap();

    let endpoints = citecast::web::v1_endpoints();
    let mut documented = 0;
    for e in &endpoints {
        assert!(!e.ops.is_empty(), "{} has no documentation", e.path);
        for op in e.ops {
            documented += 1;
            let entry = &paths[op.path][op.method.to_lowercase()];
            assert!(entry["summary"].as_str().is_some_and(|s| !s.is_empty()), "{} {}", op.method, op.path);
            // Every {param} in the template is declared as a path parameter.
            for name in op.path.split('{').skip(1).filter_map(|s| s.split('}').next()) {
                assert!(
                    op.params.iter().any(|p| p.name == name && p.location == "path"),
                    "{}: {name}",
                    op.path
                );
            }
            // And the documented route answers (anything but "no such endpoint").
            let uri = op
                .path
                .replace("{id}", "hep-th/9711200")
                .replace("{key}", "maldacena_j")
                .replace("{key_id}", &key_id);
            let uri = if uri == "/v1/search" { "/v1/search?q=string".to_string() } else { uri };
            let (status, _, body) = call!(app, req(op.method, &uri, Some(&secret)));
            assert_ne!(code(&body), "no_route", "{} {uri} -> {status}", op.method);
        }
    }
    let in_doc: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(in_doc, documented);

    let resp = test::call_service(&app, test::TestRequest::get().uri("/v1/docs").to_request()).await;
    assert_eq!(resp.status().as_u16(), 200);
    let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    for (code, _, _) in citecast::web::openapi::ERRORS {
        assert!(html.contains(&format!("id=\"error-{code}\"")), "{code}");
    }
    assert!(html.contains("/v1/papers/{id}/citations") && html.contains("Deprecation"));
}

#[actix_web::test]
async fn metrics_count_requests_rejections_and_cache_hits() {
    let h = harness(|_| {}).await;
    let app = test::init_service(
        App::new()
            .wrap(actix_web::middleware::from_fn(citecast::web::timing::record))
            .configure(|c| citecast::web::configure(c, h.state.clone())),
    )
    .await;
    let (_, _, secret) = h.customer("small").await;
    for _ in 0..8 {
        call!(app, req("GET", "/v1/papers/9711200", Some(&secret)));
    }
    let resp = test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(resp.status().as_u16(), 200);
    let text = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no line starting {prefix} in\n{text}"))
    };
    // A burst of 5: five served, three refused.
    assert_eq!(
        value(r#"citecast_http_requests_total{route="/v1/papers/{tail:.*}",method="GET",status="200"}"#),
        5.0
    );
    assert_eq!(
        value(r#"citecast_http_requests_total{route="/v1/papers/{tail:.*}",method="GET",status="429"}"#),
        3.0
    );
    assert_eq!(value(r#"citecast_rate_limited_total{tier="small",limit="per_minute"}"#), 3.0);
    assert_eq!(value(r#"citecast_cache_requests_total{outcome="hit"}"#), 4.0);
    assert_eq!(value(r#"citecast_http_request_duration_seconds_count{route="/v1/papers/{tail:.*}"}"#), 8.0);
    assert_eq!(value("citecast_store_papers"), 300.0);
    assert_eq!(value("citecast_index_documents"), 300.0);
}

#[actix_web::test]
async fn every_key_of_a_customer_draws_on_one_allowance_and_keys_are_capped() {
    let h = harness(|_| {}).await;
    let app = app!(h);
    // "daily" allows 3 requests a day; the customer holds five keys (the tier's cap).
    let (customer, _, first) = h.customer("daily").await;
    let mut secrets = vec![first];
    for i in 0..4 {
        let op = OpRequest::AddKey { customer_id: customer.clone(), name: format!("k{i}") };
        let v = operator::execute(&h.state.engine, &h.state.accounts, &h.state.tiers, op).await.unwrap();
        secrets.push(v["secret"].as_str().unwrap().to_string());
    }
    let sixth = OpRequest::AddKey { customer_id: customer.clone(), name: "k6".into() };
    let refused =
        operator::execute(&h.state.engine, &h.state.accounts, &h.state.tiers, sixth).await.unwrap_err();
    assert!(refused.to_string().contains("5 active API keys"), "{refused}");

    let mut statuses = Vec::new();
    for s in &secrets {
        statuses.push(call!(app, req("GET", "/v1/papers/9711200", Some(s))).0);
    }
    assert_eq!(statuses, vec![200, 200, 200, 429, 429], "five keys share the customer's daily 3");

    // Through the API: a customer on "small" (burst 5) may add keys up to the cap, then 409.
    let (_, _, secret) = h.customer("small").await;
    for i in 0..4 {
        let r = test::TestRequest::post()
            .uri("/v1/account/keys")
            .insert_header(("authorization", format!("Bearer {secret}")))
            .set_json(serde_json::json!({ "name": format!("ci{i}") }));
        assert_eq!(call!(app, r).0, 201);
    }
    let r = test::TestRequest::post()
        .uri("/v1/account/keys")
        .insert_header(("authorization", format!("Bearer {secret}")))
        .set_json(serde_json::json!({ "name": "one too many" }));
    let (status, _, body) = call!(app, r);
    assert_eq!((status, code(&body)), (409, "key_limit_reached"), "{body}");
}

#[actix_web::test]
async fn unknown_methods_fold_into_one_metrics_series() {
    let h = harness(|_| {}).await;
    let app = test::init_service(
        App::new()
            .wrap(actix_web::middleware::from_fn(citecast::web::timing::record))
            .configure(|c| citecast::web::configure(c, h.state.clone())),
    )
    .await;
    let scrape = || async {
        let resp = test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
        String::from_utf8(test::read_body(resp).await.to_vec()).unwrap()
    };
    let send = |i: usize| {
        let method = actix_web::http::Method::from_bytes(format!("X{i}Y").as_bytes()).unwrap();
        test::TestRequest::default().method(method).uri("/healthz")
    };
    call!(app, send(0));
    let before = scrape().await;
    for i in 1..500 {
        call!(app, send(i));
    }
    let after = scrape().await;
    assert!(!after.contains("X17Y"), "a client-chosen method became a label");
    assert!(after.contains(r#"method="other""#), "{after}");
    let series = |t: &str| t.lines().filter(|l| l.starts_with("citecast_http_requests_total{")).count();
    assert_eq!(series(&after), series(&before) + 1, "only the /metrics scrape itself adds a series");
}

#[actix_web::test]
async fn a_path_that_exists_answers_other_methods_with_405_and_allow() {
    let h = harness(|_| {}).await;
    let app = app!(h);
    let (_, headers, body) = call!(app, req("DELETE", "/admin/stats", None));
    assert_eq!(code(&body), "method_not_allowed", "{body}");
    // (every GET route answers HEAD too, issue 16)
    assert_eq!(headers.get("allow").unwrap(), "GET, HEAD");
    let (_, _, secret) = h.customer("big").await;
    let (status, headers, body) = call!(app, req("GET", "/v1/forecasts", Some(&secret)));
    assert_eq!((status, code(&body)), (405, "method_not_allowed"), "{body}");
    assert_eq!(headers.get("allow").unwrap(), "POST");
    let (status, headers, _) = call!(app, req("POST", "/v1/account/keys/key_x", Some(&secret)));
    assert_eq!(status, 405);
    assert_eq!(headers.get("allow").unwrap(), "DELETE");
    assert_eq!(call!(app, req("GET", "/nowhere", None)).0, 404);
    assert_eq!(call!(app, req("DELETE", "/v1/nowhere", Some(&secret))).0, 404);
}

#[actix_web::test]
async fn batch_ids_and_cursors_get_the_checks_path_ids_get() {
    let h = harness(|_| {}).await;
    let app = app!(h);
    let (_, _, secret) = h.customer("big").await;
    let long = "9".repeat(60_000);
    for bad in [serde_json::json!(["9711200", "97\u{0}11200"]), serde_json::json!([long])] {
        let r = test::TestRequest::post()
            .uri("/v1/forecasts")
            .insert_header(("authorization", format!("Bearer {secret}")))
            .set_json(serde_json::json!({ "ids": bad }));
        let (status, _, body) = call!(app, r);
        assert_eq!((status, code(&body)), (400, "invalid_body"), "{body}");
        let text = body.to_string();
        assert!(text.len() < 500 && !text.contains("\\u0000"), "the bad id is not echoed: {text}");
    }
    // A real cursor pages on; a forged one is refused.
    let (status, _, page) = call!(app, req("GET", "/v1/papers/9711200/citations?limit=5", Some(&secret)));
    assert_eq!(status, 200);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let next = format!("/v1/papers/9711200/citations?limit=5&cursor={cursor}");
    assert_eq!(call!(app, req("GET", &next, Some(&secret))).0, 200);
    for forged in ["eHk", "AAAAAAAA", "AAAAAB8"] {
        let uri = format!("/v1/papers/9711200/citations?cursor={forged}");
        let (status, _, body) = call!(app, req("GET", &uri, Some(&secret)));
        assert_eq!((status, body["error"]["parameter"].as_str()), (400, Some("cursor")), "{forged}: {body}");
    }
}

#[actix_web::test]
async fn customers_keep_their_word_audit_unique_addresses_suspension_and_deletion() {
    let h = harness(|_| {}).await;
    let app = app!(h);
    let (customer, key_id, secret) = h.customer("big").await;
    let admin = |action: &str| {
        let op = OpRequest::Audit { after: None, limit: Some(1000) };
        let state = h.state.clone();
        let action = action.to_string();
        async move {
            let v = operator::execute(&state.engine, &state.accounts, &state.tiers, op).await.unwrap();
            v["entries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["action"] == action.as_str())
                .cloned()
                .collect::<Vec<_>>()
        }
    };

    // Key actions through the API are audited as the customer's own.
    let (status, _, created) = call!(
        app,
        req("POST", "/v1/account/keys", Some(&secret)).set_json(serde_json::json!({"name": "ci"}))
    );
    assert_eq!(status, 201, "{created}");
    let new_id = created["key"]["id"].as_str().unwrap().to_string();
    let (status, _, _) = call!(app, req("POST", &format!("/v1/account/keys/{new_id}/rotate"), Some(&secret)));
    assert_eq!(status, 201);
    let (status, _, _) = call!(app, req("DELETE", &format!("/v1/account/keys/{key_id}"), Some(&secret)));
    assert_eq!(status, 200, "a customer revokes its own key");
    for action in ["key.add", "key.rotate", "key.revoke"] {
        let entries = admin(action).await;
        let mine: Vec<_> = entries
            .iter()
            .filter(|e| e["actor"].as_str().unwrap_or("").starts_with(&format!("customer:{customer}")))
            .collect();
        assert_eq!(mine.len(), 1, "{action}: {entries:?}");
        assert!(!mine[0]["after"].as_str().unwrap().contains("\"secret\""), "no secret in the audit log");
    }

    // Timestamps in RFC 3339 beside the seconds.
    let op = OpRequest::AddCustomer {
        name: "R".into(),
        email: "rfc@example.org".into(),
        tier: Some("big".into()),
    };
    let added = operator::execute(&h.state.engine, &h.state.accounts, &h.state.tiers, op).await.unwrap();
    let rfc_secret = added["secret"].as_str().unwrap().to_string();
    let (status, _, account) = call!(app, req("GET", "/v1/account", Some(&rfc_secret)));
    assert_eq!(status, 200, "{account}");
    let at = account["customer"]["created_at"].as_str().unwrap();
    assert!(at.len() == 20 && at.ends_with('Z') && &at[10..11] == "T", "{at}");
    let (_, _, keys) = call!(app, req("GET", "/v1/account/keys", Some(&rfc_secret)));
    assert!(keys["keys"][0]["created_at"].as_str().is_some(), "{keys}");

    // One customer per address, whatever its case.
    let dup = OpRequest::AddCustomer { name: "D".into(), email: "RFC@example.org".into(), tier: None };
    // As the admin API answers it.
    let err = ApiError::from(
        operator::execute(&h.state.engine, &h.state.accounts, &h.state.tiers, dup).await.unwrap_err(),
    );
    assert_eq!(actix_web::ResponseError::status_code(&err).as_u16(), 409);
    assert_eq!(err.code(), "email_taken");

    // Suspension refuses the keys at once; reactivation lets them in again.
    let rfc_id = added["customer"]["id"].as_str().unwrap().to_string();
    let as_cli =
        |op| operator::execute_as(&h.state.engine, &h.state.accounts, &h.state.tiers, op, "cli:test");
    let v = as_cli(OpRequest::SuspendCustomer { customer_id: rfc_id.clone() }).await.unwrap();
    assert_eq!(v["customer"]["status"], "suspended");
    assert!(v["customer"]["updated"].as_i64() >= added["customer"]["updated"].as_i64());
    let (status, _, body) = call!(app, req("GET", "/v1/papers/9711200", Some(&rfc_secret)));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("account_suspended")), "{body}");
    as_cli(OpRequest::ReactivateCustomer { customer_id: rfc_id.clone() }).await.unwrap();
    let (status, _, _) = call!(app, req("GET", "/v1/account", Some(&rfc_secret)));
    assert_eq!(status, 200);

    // Edit, then delete: the keys stop working and the audit log keeps the record.
    let v = as_cli(OpRequest::EditCustomer {
        customer_id: rfc_id.clone(),
        name: Some("Renamed".into()),
        email: None,
    })
    .await
    .unwrap();
    assert_eq!(v["customer"]["name"], "Renamed");
    as_cli(OpRequest::DeleteCustomer { customer_id: rfc_id.clone() }).await.unwrap();
    let (status, _, body) = call!(app, req("GET", "/v1/account", Some(&rfc_secret)));
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("invalid_api_key")), "{body}");
    let deleted = admin("customer.delete").await;
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0]["before"].as_str().unwrap().contains("Renamed"), "{deleted:?}");
    let missing =
        ApiError::from(as_cli(OpRequest::SuspendCustomer { customer_id: rfc_id }).await.unwrap_err());
    assert_eq!(missing.code(), "not_found");
}

#[actix_web::test]
async fn refused_requests_spend_no_quota_head_answers_every_get_and_cors_preflights_are_free() {
    let h = harness(|c| c.cors_origins = vec!["https://app.example.org".into()]).await;
    let app = app!(h);
    let (_, _, secret) = h.customer("daily").await;
    // Ten mistakes (unknown paper, bad parameter) on a daily quota of 3 spend nothing...
    for _ in 0..5 {
        let (status, headers, _) = call!(app, req("GET", "/v1/papers/hep-th%2F0000000", Some(&secret)));
        assert_eq!(status, 404);
        assert_eq!(headers.get("x-daily-quota-remaining").unwrap(), "3");
        let (status, _, _) = call!(app, req("GET", "/v1/search?q=x&limit=0", Some(&secret)));
        assert_eq!(status, 400);
    }
    // (the refunds are messages to the limiter: let them land)
    actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    // ... so the three real requests still fit.
    for _ in 0..3 {
        assert_eq!(call!(app, req("GET", "/v1/papers/9711200", Some(&secret))).0, 200);
    }
    assert_eq!(call!(app, req("GET", "/v1/papers/9711200", Some(&secret))).0, 429);

    // HEAD answers wherever GET does, with the same status and headers.
    let (_, _, big) = h.customer("big").await;
    let head = |uri: &str| test::TestRequest::default().method(actix_web::http::Method::HEAD).uri(uri);
    for uri in ["/v1/papers/9711200", "/v1/search?q=duality", "/v1/docs", "/healthz", "/readyz"] {
        let (status, headers, _) =
            call!(app, head(uri).insert_header(("authorization", format!("Bearer {big}"))));
        assert_eq!(status, 200, "HEAD {uri}");
        assert!(headers.get("content-type").is_some(), "HEAD {uri}");
    }
    let (status, headers, _) = call!(app, req("POST", "/healthz", None));
    assert_eq!(status, 405);
    assert!(headers.get("allow").unwrap().to_str().unwrap().contains("HEAD"));

    // CORS: a preflight from an allowed origin is answered without a key and without
    // spending quota; a disallowed origin gets no grant.
    let preflight = |origin: &str| {
        test::TestRequest::default()
            .method(actix_web::http::Method::OPTIONS)
            .uri("/v1/forecasts")
            .insert_header(("origin", origin.to_string()))
            .insert_header(("access-control-request-method", "POST"))
            .insert_header(("access-control-request-headers", "authorization, content-type"))
    };
    let (status, headers, _) = call!(app, preflight("https://app.example.org"));
    assert_eq!(status, 204);
    assert_eq!(headers.get("access-control-allow-origin").unwrap(), "https://app.example.org");
    assert!(headers.get("access-control-allow-headers").unwrap().to_str().unwrap().contains("authorization"));
    assert!(headers.get("ratelimit-remaining").is_none(), "a preflight is not rate limited");
    let (status, headers, _) = call!(app, preflight("https://evil.example.org"));
    assert_eq!(status, 204);
    assert!(headers.get("access-control-allow-origin").is_none());
    // Real responses, refusals included, carry the grant so the page can read them.
    let (status, headers, _) = call!(
        app,
        req("GET", "/v1/papers/9711200", Some(&secret)).insert_header(("origin", "https://app.example.org"))
    );
    assert_eq!(status, 429);
    assert_eq!(headers.get("access-control-allow-origin").unwrap(), "https://app.example.org");
    assert!(headers.get("access-control-expose-headers").unwrap().to_str().unwrap().contains("retry-after"));
}

#[actix_web::test]
async fn a_browser_without_the_admin_token_gets_a_page_and_runbooks_are_served() {
    let h = harness(|_| {}).await;
    let app = app!(h);
    let browser = test::TestRequest::get()
        .uri("/admin/dashboard")
        .insert_header(("accept", "text/html,application/xhtml+xml,*/*;q=0.8"));
    let resp = test::call_service(&app, browser.to_request()).await;
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers().get("content-type").unwrap().to_str().unwrap().starts_with("text/html"));
    let page = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert!(page.contains("<h1>") && page.contains("/admin/login"), "{page}");
    // A program still gets the JSON error.
    let (status, _, body) = call!(app, req("GET", "/admin/stats", None));
    assert_eq!((status, code(&body)), (401, "unauthorized"));

    let (status, _, _) = call!(app, req("GET", "/runbooks/nope", None));
    assert_eq!(status, 404);
    let resp =
        test::call_service(&app, test::TestRequest::get().uri("/runbooks/high-error-rate").to_request())
            .await;
    assert_eq!(resp.status().as_u16(), 200);
    let text = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert!(text.contains("## How to fix"), "{text}");
}
