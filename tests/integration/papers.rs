//! The real actix `App` over a temporary sled/tantivy directory holding the committed
//! fixture: 300 real hep-th papers (Maldacena's hep-th/9711200, its references, its
//! most-cited citers, and a random sample) and the 1,597 citations among them.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use actix_web::test;
use citecast_actors::actors::{GetStats, IngestFiles};
use citecast_actors::ingest::IngestReport;
use serde_json::Value;

use crate::common::{self, fixture_files, Setup, ADMIN_TOKEN};

const MALDACENA: &str = "hep-th/9711200";
/// In the fixture: citations of hep-th/9711200 from fixture papers, and its references.
const MALDACENA_CITED_BY: u64 = 130;
const MALDACENA_REFERENCES: u64 = 40;
const FIXTURE_PAPERS: u64 = 300;
const FIXTURE_CITATIONS: u64 = 1_597;

/// The fixture loaded (`load`) or an empty store, and an enterprise key, so these tests
/// stay far from the rate limits.
async fn harness(load: bool) -> common::Harness {
    common::Harness::start(Setup { load, ..Setup::default() }, |_| {}).await
}

/// GET `uri`, returning the status and the JSON body.
macro_rules! get {
    ($app:expr, $h:expr, $uri:expr) => {{
        let req =
            test::TestRequest::get().uri($uri).insert_header(("authorization", format!("Bearer {}", $h.key)));
        let resp = test::call_service(&$app, req.to_request()).await;
        let status = resp.status().as_u16();
        let body: Value = serde_json::from_slice(&test::read_body(resp).await).expect("JSON body");
        (status, body)
    }};
}

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

#[actix_web::test]
async fn ingest_counts_records_and_is_idempotent() {
    let h = harness(false).await;
    let first = h.ingest(fixture_files()).await;
    assert_eq!(first[0].papers_new, FIXTURE_PAPERS);
    assert_eq!(first[1].citations_new, FIXTURE_CITATIONS);
    assert_eq!(first.iter().map(|r| r.errors).sum::<u64>(), 0);
    let stats = h.state.engine.store.send(GetStats).await.unwrap().unwrap();

    let second = h.ingest(fixture_files()).await;
    assert_eq!(second.iter().map(IngestReport::new_records).sum::<u64>(), 0, "{second:?}");
    assert_eq!(second[0].papers_unchanged, FIXTURE_PAPERS);
    assert_eq!(second[1].citations_unchanged, FIXTURE_CITATIONS);
    let again = h.state.engine.store.send(GetStats).await.unwrap().unwrap();
    assert_eq!(
        (again.papers, again.citations, again.authors, again.generation),
        (stats.papers, stats.citations, stats.authors, stats.generation),
        "re-ingesting must change nothing"
    );
}

#[actix_web::test]
async fn malformed_lines_are_reported_and_damage_nothing() {
    let h = harness(true).await;
    let app = app!(h);
    let (_, before) = get!(app, h, "/v1/papers/hep-th/9711200");

    let dir = tempfile::tempdir().unwrap();
    let papers = dir.path().join("bad.jsonl");
    let good = r#"{"id":"new/0000001","title":"A new paper on black holes","authors":["A. N. Author"],"submitted_utc":"2003-05-01","abstract":"Entropy.","references":["9711200"]}"#;
    let mut bytes = Vec::new();
    for line in [
        good,
        "{not json",
        // Same id as a stored paper but invalid: must not overwrite it.
        r#"{"id":"9711200","arxiv_id":"hep-th/9711200","title":"","authors":["X"],"submitted_utc":"1997-11-27"}"#,
        r#"{"id":"x1","title":"t","authors":["A. B"],"submitted_utc":"1997-02-30"}"#,
        r#"{"id":"x2","title":"t","authors":["A. B"],"submitted_utc":"1997-02-03","references":["does-not-exist"]}"#,
    ] {
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(b"\xff\xfe not utf-8\n");
    std::fs::write(&papers, bytes).unwrap();

    let report = &h.ingest(vec![papers]).await[0];
    assert_eq!(report.papers_new, 2, "{report:?}");
    assert_eq!(report.citations_new, 1, "{report:?}");
    let lines: Vec<u64> = report.error_samples.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 3, 4, 5, 6], "{report:?}");
    let reasons: Vec<&str> = report.error_samples.iter().map(|e| e.reason.as_str()).collect();
    assert!(reasons[0].contains("invalid paper record"), "{reasons:?}");
    assert!(reasons[1].contains("title is empty"), "{reasons:?}");
    assert!(reasons[2].contains("not a date"), "{reasons:?}");
    assert!(reasons[3].contains("unknown paper id 'does-not-exist'"), "{reasons:?}");
    assert!(reasons[4].contains("UTF-8"), "{reasons:?}");

    // The stored paper kept its data; its count grew by the one new citation, which
    // the response cache must reflect at once.
    let (status, after) = get!(app, h, "/v1/papers/hep-th/9711200");
    assert_eq!(status, 200);
    assert_eq!(after["title"], before["title"]);
    assert_eq!(after["citations"]["total"], MALDACENA_CITED_BY + 1);
    let (status, fresh) = get!(app, h, "/v1/papers/new/0000001");
    assert_eq!((status, fresh["references"].as_u64()), (200, Some(1)));

    // A file in no known format is refused as a whole, before anything is written.
    let junk = dir.path().join("junk.txt");
    std::fs::write(&junk, "hello there world\n").unwrap();
    let err =
        h.state.engine.ingest.send(IngestFiles { paths: vec![junk], ..Default::default() }).await.unwrap();
    assert!(err.unwrap_err().to_string().contains("unrecognised format"));
}

#[actix_web::test]
async fn paper_lookup_accepts_every_id_form() {
    let h = harness(true).await;
    let app = app!(h);
    for uri in [
        "/v1/papers/hep-th/9711200",
        "/v1/papers/9711200",
        "/v1/papers/hep-th%2F9711200",
        "/v1/papers/arXiv:hep-th/9711200",
        "/v1/papers/hep-th/9711200/",
    ] {
        let (status, body) = get!(app, h, uri);
        assert_eq!(status, 200, "{uri}: {body}");
        assert_eq!(body["id"], MALDACENA, "{uri}");
    }
    let (_, p) = get!(app, h, "/v1/papers/9711200");
    assert_eq!(p["title"], "The Large N Limit of Superconformal Field Theories and Supergravity");
    assert_eq!(p["submitted"], "1997-11-27");
    assert_eq!(p["authors"][0]["key"], "maldacena_j");
    assert!(p["journal_ref"].as_str().unwrap().starts_with("Adv.Theor.Math.Phys."));
    let c = &p["citations"];
    assert_eq!(c["total"], MALDACENA_CITED_BY);
    let (w6, w12, w24) =
        (c["within_6_months"].as_u64(), c["within_12_months"].as_u64(), c["within_24_months"].as_u64());
    assert!(w6 <= w12 && w12 <= w24 && w24.unwrap() <= MALDACENA_CITED_BY, "{c}");
    assert!(w6.unwrap() > 0, "{c}");
    assert_eq!(p["references"], MALDACENA_REFERENCES);
    let top: Vec<u64> =
        p["top_citing"].as_array().unwrap().iter().map(|t| t["citations"].as_u64().unwrap()).collect();
    assert_eq!(top.len(), 10);
    assert!(top.windows(2).all(|w| w[0] >= w[1]), "top citing papers ordered by citations: {top:?}");

    // SNAP ids drop leading zeros: 1001 is hep-th/0001001's alias if it is in the fixture.
    let (status, body) = get!(app, h, "/v1/papers/hep-th/0000000");
    assert_error(status, &body, 404, "not_found");
    let (status, body) = get!(app, h, "/v1/papers/%00bad");
    assert_error(status, &body, 400, "invalid_parameter");
    let (status, body) = get!(app, h, "/v1/papers/%FF%FE");
    assert_error(status, &body, 400, "invalid_parameter");
}

#[actix_web::test]
async fn citations_page_through_in_date_order() {
    let h = harness(true).await;
    let app = app!(h);
    let mut uri = "/v1/papers/9711200/citations?direction=in&limit=25".to_string();
    let mut seen = Vec::new();
    let mut dates = Vec::new();
    loop {
        let (status, body) = get!(app, h, &uri);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["paper_id"], MALDACENA);
        assert_eq!(body["total"], MALDACENA_CITED_BY);
        for item in body["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_string());
            dates.push(item["date"].as_str().unwrap().to_string());
        }
        match body["next_cursor"].as_str() {
            Some(c) => uri = format!("/v1/papers/9711200/citations?direction=in&limit=25&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len() as u64, MALDACENA_CITED_BY);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len(), "no duplicates across pages");
    assert!(dates.windows(2).all(|w| w[0] <= w[1]), "date order");

    let (status, body) = get!(app, h, "/v1/papers/hep-th%2F9711200/citations?direction=out&limit=100");
    assert_eq!(status, 200);
    assert_eq!(body["total"], MALDACENA_REFERENCES);
    assert_eq!(body["items"].as_array().unwrap().len() as u64, MALDACENA_REFERENCES);
    assert!(body["next_cursor"].is_null());

    for (uri, code, param) in [
        ("/v1/papers/9711200/citations?direction=sideways", 400, "direction"),
        ("/v1/papers/9711200/citations?limit=0", 400, "limit"),
        ("/v1/papers/9711200/citations?limit=101", 400, "limit"),
        ("/v1/papers/9711200/citations?limit=ten", 400, "limit"),
        ("/v1/papers/9711200/citations?cursor=***", 400, "cursor"),
        ("/v1/papers/9711200/citations?foo=1", 400, "foo"),
        ("/v1/papers/9711200/citations?limit=1&limit=2", 400, "limit"),
    ] {
        let (status, body) = get!(app, h, uri);
        assert_error(status, &body, code, "invalid_parameter");
        assert_eq!(body["error"]["parameter"], param, "{uri}");
    }
    let (status, body) = get!(app, h, "/v1/papers/0000000/citations");
    assert_error(status, &body, 404, "not_found");
}

#[actix_web::test]
async fn search_ranks_filters_facets_and_pages() {
    let h = harness(true).await;
    let app = app!(h);
    let (status, body) = get!(app, h, "/v1/search?q=black+hole+entropy&limit=5");
    assert_eq!(status, 200, "{body}");
    let total = body["total"].as_u64().unwrap();
    assert!(total > 0);
    let hits = body["hits"].as_array().unwrap();
    assert!(!hits.is_empty() && hits.len() <= 5);
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(hits.iter().any(|h| h["snippet"].as_str().unwrap().contains("<b>")), "{hits:?}");
    let facet_sum: u64 =
        body["facets"]["years"].as_array().unwrap().iter().map(|y| y["count"].as_u64().unwrap()).sum();
    assert_eq!(facet_sum, total, "year facets cover every hit");
    assert_eq!(body["total_is_lower_bound"], false, "{body}");

    // Without facets: the same hits, no years, the same total (below the bound).
    let (status, lean) = get!(app, h, "/v1/search?q=black+hole+entropy&limit=5&facets=none");
    assert_eq!(status, 200, "{lean}");
    assert_eq!(lean["hits"], body["hits"]);
    assert_eq!(lean["total"], total);
    assert_eq!(lean["total_is_lower_bound"], false);
    assert_eq!(lean["facets"]["years"].as_array().unwrap().len(), 0);
    // (The bound itself, 10,000 matches, is past this corpus: `index::tests` checks it.)

    // Paging with cursors returns every hit exactly once.
    let mut ids = Vec::new();
    let mut uri = "/v1/search?q=black+hole+entropy&limit=7".to_string();
    loop {
        let (status, body) = get!(app, h, &uri);
        assert_eq!(status, 200);
        ids.extend(body["hits"].as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap().to_string()));
        match body["next_cursor"].as_str() {
            Some(c) => uri = format!("/v1/search?q=black+hole+entropy&limit=7&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(ids.len() as u64, total);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());

    // Date range filter.
    let (_, body) = get!(app, h, "/v1/search?q=string&from=1998-01-01&to=1998-12-31&limit=100");
    let hits = body["hits"].as_array().unwrap();
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|h| h["submitted"].as_str().unwrap().starts_with("1998")), "{hits:?}");
    assert!(body["facets"]["years"].as_array().unwrap().iter().all(|y| y["year"] == 1998));

    // Author filter, by key or by name.
    let (_, by_key) = get!(app, h, "/v1/search?q=theory&author=witten_e&limit=100");
    let (_, by_name) = get!(app, h, "/v1/search?q=theory&author=Edward+Witten&limit=100");
    assert!(by_key["total"].as_u64().unwrap() > 0, "{by_key}");
    assert_eq!(by_key["total"], by_name["total"]);
    assert!(by_key["hits"].as_array().unwrap().iter().all(|h| {
        h["authors"].as_array().unwrap().iter().any(|a| a.as_str().unwrap().contains("Witten"))
    }));

    // Query syntax characters never produce a server error.
    let (status, _) = get!(app, h, "/v1/search?q=%22unbalanced+AND+(+OR+title:");
    assert_eq!(status, 200);

    for (uri, param) in [
        ("/v1/search", "q"),
        ("/v1/search?q=", "q"),
        ("/v1/search?q=x&from=1998-13-01", "from"),
        ("/v1/search?q=x&to=yesterday", "to"),
        ("/v1/search?q=x&from=1999-01-01&to=1998-01-01", "from"),
        ("/v1/search?q=x&limit=1000", "limit"),
        ("/v1/search?q=x&cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("/v1/search?q=x&sort=date", "sort"),
        ("/v1/search?q=x&facets=authors", "facets"),
    ] {
        let (status, body) = get!(app, h, uri);
        assert_error(status, &body, 400, "invalid_parameter");
        assert_eq!(body["error"]["parameter"], param, "{uri}");
    }
}

#[actix_web::test]
async fn authors_show_papers_and_coauthors() {
    let h = harness(true).await;
    let app = app!(h);
    let (status, body) = get!(app, h, "/v1/authors/maldacena_j");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["key"], "maldacena_j");
    let papers = body["papers"].as_array().unwrap();
    assert!(papers.iter().any(|p| p["id"] == MALDACENA));
    let sum: u64 = papers.iter().map(|p| p["citations"].as_u64().unwrap()).sum();
    assert_eq!(body["citations_total"], sum);
    assert!(body["h_index"].as_u64().unwrap() >= 1);

    let (status, body) = get!(app, h, "/v1/authors/witten_e");
    assert_eq!(status, 200);
    assert!(!body["coauthors"].as_array().unwrap().is_empty(), "{body}");

    let (status, body) = get!(app, h, "/v1/authors/nobody_x");
    assert_error(status, &body, 404, "not_found");
}

#[actix_web::test]
async fn health_readiness_and_unknown_routes() {
    let h = harness(false).await;
    let app = app!(h);
    let (status, _) = get!(app, h, "/healthz");
    assert_eq!(status, 200);
    let resp = test::call_service(&app, test::TestRequest::get().uri("/readyz").to_request()).await;
    assert_eq!(resp.status().as_u16(), 503);
    let resp =
        test::call_service(&app, test::TestRequest::get().uri("/v1/papers/9711200").to_request()).await;
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(resp.headers().get("retry-after").unwrap(), "5");
    let body: Value = serde_json::from_slice(&test::read_body(resp).await).unwrap();
    assert_eq!(body["error"]["code"], "not_ready");

    h.state.ready.store(true, Ordering::Release);
    let (status, _) = get!(app, h, "/readyz");
    assert_eq!(status, 200);
    let (status, body) = get!(app, h, "/v2/papers/1");
    assert_error(status, &body, 404, "no_route");
}

#[actix_web::test]
async fn admin_endpoints_need_the_token_and_check_bodies() {
    let h = harness(true).await;
    let app = app!(h);
    let post = |body: Vec<u8>, token: Option<&str>| {
        let mut req = test::TestRequest::post()
            .uri("/admin/ingest")
            .insert_header(("content-type", "application/json"));
        if let Some(t) = token {
            req = req.insert_header(("authorization", format!("Bearer {t}")));
        }
        req.set_payload(body).to_request()
    };
    let read = |resp: actix_web::dev::ServiceResponse| async move {
        let status = resp.status().as_u16();
        let body: Value = serde_json::from_slice(&test::read_body(resp).await).unwrap();
        (status, body)
    };

    let (status, body) = read(test::call_service(&app, post(b"{}".to_vec(), None)).await).await;
    assert_error(status, &body, 401, "unauthorized");
    let (status, body) = read(test::call_service(&app, post(b"{}".to_vec(), Some("wrong"))).await).await;
    assert_error(status, &body, 401, "unauthorized");

    let huge = format!(r#"{{"paths":["{}"]}}"#, "a".repeat(100 * 1024)).into_bytes();
    let (status, body) = read(test::call_service(&app, post(huge, Some(ADMIN_TOKEN))).await).await;
    assert_error(status, &body, 413, "payload_too_large");

    let (status, body) =
        read(test::call_service(&app, post(b"{\"paths\":".to_vec(), Some(ADMIN_TOKEN))).await).await;
    assert_error(status, &body, 400, "invalid_body");
    let (status, body) =
        read(test::call_service(&app, post(br#"{"paths":[],"x":1}"#.to_vec(), Some(ADMIN_TOKEN))).await)
            .await;
    assert_error(status, &body, 400, "invalid_body");
    let (status, body) = read(
        test::call_service(&app, post(br#"{"paths":["relative.jsonl"]}"#.to_vec(), Some(ADMIN_TOKEN))).await,
    )
    .await;
    assert_error(status, &body, 400, "invalid_body");
    let zero_cap = serde_json::json!({ "paths": fixture_files(), "max_refs_per_paper": 0 }).to_string();
    let (status, body) =
        read(test::call_service(&app, post(zero_cap.into_bytes(), Some(ADMIN_TOKEN))).await).await;
    assert_error(status, &body, 400, "invalid_body");

    let paths = serde_json::json!({ "paths": fixture_files() }).to_string().into_bytes();
    let (status, body) = read(test::call_service(&app, post(paths, Some(ADMIN_TOKEN))).await).await;
    assert_eq!(status, 200, "{body}");
    let new: u64 =
        body["reports"].as_array().unwrap().iter().map(|r| r["papers_new"].as_u64().unwrap()).sum();
    assert_eq!(new, 0, "re-ingest through the admin endpoint adds nothing");
}

/// Status, `Retry-After` and JSON body as the server sends them, errors raised by the
/// middleware (key checks read the store too) included.
async fn answer<S, B>(app: &S, req: test::TestRequest) -> (u16, Option<String>, Value)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody + 'static,
{
    let resp = match test::try_call_service(app, req.to_request()).await {
        Ok(resp) => resp.into_parts().1.map_into_boxed_body(),
        Err(e) => e.error_response(),
    };
    let status = resp.status().as_u16();
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    let body = actix_web::body::to_bytes(resp.into_body()).await.unwrap_or_default();
    (status, retry, serde_json::from_slice(&body).expect("a JSON error"))
}

#[actix_web::test]
async fn a_dead_store_is_the_servers_failure_503_never_the_callers_400() {
    let mut h = harness(true).await;
    // The engine as it is, but with a store actor that is gone: its mailbox is closed.
    let (tx, rx) = actix::dev::channel::channel::<citecast_actors::StoreActor>(16);
    drop(rx);
    let mut engine = h.state.engine.clone();
    engine.store = actix::Addr::new(tx);
    let config = citecast::config::Config::new(h.dir.path().to_path_buf());
    let state =
        citecast::web::AppState::new(engine, h.state.accounts.clone(), &config, Some(ADMIN_TOKEN.into()));
    state.ready.store(true, Ordering::Release);
    h.state = actix_web::web::Data::new(state);
    let app = app!(h);
    for uri in ["/v1/papers/hep-th/9711200", "/v1/papers/hep-th/9711200/citations", "/v1/authors/witten_e"] {
        let req =
            test::TestRequest::get().uri(uri).insert_header(("authorization", format!("Bearer {}", h.key)));
        let (status, retry, body) = answer(&app, req).await;
        assert_eq!(status, 503, "{uri}: {body}");
        assert_eq!(body["error"]["code"], "unavailable", "{uri}: {body}");
        assert_eq!(retry.as_deref(), Some("5"), "{uri}");
    }
    // An operator action needing the store: the server's failure too.
    let add = serde_json::json!({ "op": "add_customer", "name": "X", "email": "x@example.org" });
    let req = test::TestRequest::post()
        .uri("/admin/op")
        .insert_header(("authorization", format!("Bearer {ADMIN_TOKEN}")))
        .set_json(add);
    let (status, _, body) = answer(&app, req).await;
    assert!(status >= 500, "{status} {body}");
    assert!(["unavailable", "busy"].contains(&body["error"]["code"].as_str().unwrap()), "{body}");
}

#[actix_web::test]
async fn a_papers_page_escapes_what_its_authors_wrote() {
    let h = harness(true).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.jsonl");
    let line = r#"{"id":"x/0000001","title":"<script>alert(1)</script> & \"quotes\"","authors":["<b>Evil</b> Author"],"submitted_utc":"2003-05-01","abstract":"<img src=x onerror=alert(2)>","references":[]}"#;
    std::fs::write(&file, format!("{line}\n")).unwrap();
    let reports = h.ingest(vec![file]).await;
    assert_eq!(reports[0].papers_new, 1, "{reports:?}");
    let app = app!(h);
    let resp = test::call_service(&app, test::TestRequest::get().uri("/papers/x/0000001").to_request()).await;
    assert_eq!(resp.status().as_u16(), 200);
    let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert!(
        !html.contains("<script>alert") && !html.contains("<img src=x") && !html.contains("<b>Evil"),
        "{html}"
    );
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{html}");
}
