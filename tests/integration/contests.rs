//! Prediction contests end to end on the fixture, as a replay of 1998: an operator
//! creates the contest, the model enters itself, people pick in the browser forms (a bad
//! entry refused with nothing stored), the operator locks it, a late pick is refused, the
//! data scores it and the leaderboard ranks the model among the people; every change is
//! in the audit log. Also the small in-process browser the community tests share.

use actix_web::http::StatusCode;
use actix_web::test;
use citecast_actors::actors::{ForecastPapers, ReadAudit};
use citecast_actors::forecast::service::Route;
use citecast_actors::forecast::task::Mode;
use serde_json::json;

use crate::common::*;

pub const ORIGIN: &str = "http://localhost:8080";

/// A browser's memory for the in-process app: its cookie and the last CSRF token seen.
pub struct Browser {
    pub cookie: Option<String>,
    pub csrf: String,
    pub ip: u8,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: actix_web::http::header::HeaderMap,
    pub body: String,
}

impl Browser {
    pub fn new(ip: u8) -> Browser {
        Browser { cookie: None, csrf: String::new(), ip }
    }

    pub fn remember(&mut self, headers: &actix_web::http::header::HeaderMap, body: &str) {
        if let Some(c) = headers.get("set-cookie").and_then(|v| v.to_str().ok()) {
            self.cookie = Some(c.split(';').next().unwrap().to_string());
        }
        if let Some(i) = body.find("name=\"csrf\" value=\"") {
            let rest = &body[i + 19..];
            self.csrf = rest[..rest.find('"').unwrap()].to_string();
        }
    }

    pub fn request(&self, req: test::TestRequest) -> test::TestRequest {
        let req = req.peer_addr(format!("10.0.9.{}:4000", self.ip).parse().unwrap());
        match &self.cookie {
            Some(c) => req.insert_header(("cookie", c.clone())),
            None => req,
        }
    }
}

macro_rules! visit {
    ($app:expr, $b:expr, $path:expr) => {{
        let res = actix_web::test::call_service(
            &$app,
            $b.request(actix_web::test::TestRequest::get().uri($path)).to_request(),
        )
        .await;
        let (status, headers) = (res.status(), res.headers().clone());
        let body = String::from_utf8_lossy(&actix_web::test::read_body(res).await).into_owned();
        $b.remember(&headers, &body);
        $crate::contests::Page { status, headers, body }
    }};
}
pub(crate) use visit;

/// A form post from our origin; `$form` is anything `serde_urlencoded` takes.
macro_rules! post {
    ($app:expr, $b:expr, $path:expr, $form:expr) => {{
        let body = serde_urlencoded::to_string($form).unwrap();
        let req = actix_web::test::TestRequest::post()
            .uri($path)
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .insert_header(("origin", $crate::contests::ORIGIN))
            .set_payload(body);
        let res = actix_web::test::call_service(&$app, $b.request(req).to_request()).await;
        let (status, headers) = (res.status(), res.headers().clone());
        let body = String::from_utf8_lossy(&actix_web::test::read_body(res).await).into_owned();
        $b.remember(&headers, &body);
        $crate::contests::Page { status, headers, body }
    }};
}
pub(crate) use post;

/// An operator call with the admin token: status and JSON.
macro_rules! admin {
    ($app:expr, $method:expr, $path:expr, $body:expr) => {{
        let req = actix_web::test::TestRequest::default()
            .method(actix_web::http::Method::from_bytes($method.as_bytes()).unwrap())
            .uri($path)
            .insert_header(("authorization", format!("Bearer {}", $crate::common::ADMIN_TOKEN)))
            .insert_header(("content-type", "application/json"))
            .set_payload(serde_json::to_vec(&$body).unwrap());
        let res = actix_web::test::call_service(&$app, req.to_request()).await;
        let status = res.status();
        let body = actix_web::test::read_body(res).await;
        (status, serde_json::from_slice::<serde_json::Value>(&body).unwrap_or(serde_json::Value::Null))
    }};
}
pub(crate) use admin;

/// A person with a web login: a customer named `name`; answers its id and password.
pub async fn person(h: &Harness, name: &str, email: &str) -> String {
    let op = citecast::ops::operator::OpRequest::AddCustomer {
        name: name.into(),
        email: email.into(),
        tier: Some("free".into()),
    };
    let v = citecast::ops::operator::execute(&h.state.engine, &h.state.accounts, &h.state.tiers, op)
        .await
        .unwrap();
    let id = v["customer"]["id"].as_str().unwrap().to_string();
    let now = citecast_actors::dates::now_secs();
    let login = citecast::accounts::store::Login {
        customer_id: id.clone(),
        password_hash: citecast::accounts::password::hash("correct horse battery").unwrap(),
        signed_up: now,
        confirmed: now,
        password_changed: now - 1,
        first_call: None,
    };
    h.state.logins.put_login(&login).unwrap();
    id
}

/// Signs `email` in through the log-in form.
macro_rules! sign_in {
    ($app:expr, $b:expr, $email:expr) => {{
        $crate::contests::visit!($app, $b, "/login");
        let csrf = $b.csrf.clone();
        let p = $crate::contests::post!(
            $app,
            $b,
            "/login",
            &[("csrf", csrf.as_str()), ("email", $email), ("password", "correct horse battery")]
        );
        assert_eq!(p.status, actix_web::http::StatusCode::SEE_OTHER, "{}", p.body);
    }};
}
pub(crate) use sign_in;

#[actix_rt::test]
async fn a_replayed_contest_is_entered_locked_and_scored_with_the_model_ranked_among_people() {
    let h = Harness::new().await;
    let app = app!(h);
    let now = citecast_actors::dates::now_secs();
    // Bad definitions are refused in words.
    let (status, v) = admin!(
        app,
        "POST",
        "/admin/contests",
        json!({ "title": "x", "target": "fame", "pool": {}, "pick_limit": 3, "deadline": now + 60 })
    );
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("target"), "{v}");
    let (status, v) = admin!(
        app,
        "POST",
        "/admin/contests",
        json!({
            "title": "1998 replay <script>alert(1)</script>",
            "rules": "**Pick wisely.** <script>alert(1)</script>",
            "target": "top_10_percent",
            "pool": { "from": "1998-01-01", "to": "1999-12-31" },
            "pick_limit": 5,
            "deadline": now + 3600,
            "as_of": "1998-12-31",
        })
    );
    assert_eq!(status, 201, "{v}");
    let c = &v["contest"];
    let id = c["id"].as_str().unwrap().to_string();
    let pool: Vec<String> =
        c["pool"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(pool.len(), 61, "the replay keeps only papers submitted by its day");
    assert!(c["pool"].as_array().unwrap().iter().all(|p| p["submitted"].as_str().unwrap() <= "1998-12-31"));

    // What the data says of each pool paper, for choosing a good and a bad entry.
    let msg = ForecastPapers { ids: pool.clone(), mode: Mode::AtPublication, route: Route::default() };
    let forecasts = h.state.engine.model.send(msg).await.unwrap().unwrap();
    let reached: Vec<usize> = forecasts
        .iter()
        .enumerate()
        .filter(|(_, f)| f.as_ref().unwrap().outcome.as_ref().unwrap().reached_top_10_percent)
        .map(|(i, _)| i)
        .collect();
    let missed: Vec<usize> = (0..pool.len()).filter(|i| !reached.contains(i)).collect();
    assert!(!reached.is_empty() && missed.len() >= 6, "{reached:?}");

    let page = visit!(app, Browser::new(1), &format!("/contests/{id}"));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("1 entry so far"), "the model entered itself: {}", page.body);
    assert!(!page.body.contains("<script>alert"), "titles and rules are escaped and sanitised");
    assert!(page.body.contains("<strong>Pick wisely.</strong>"));
    assert!(!page.body.contains(">picked<"), "the model's picks stay hidden until the lock");

    let ada = person(&h, "Ada Lovelace", "ada-contest@example.org").await;
    let _bob = person(&h, "Bob Babbage", "bob-contest@example.org").await;
    let mut a = Browser::new(11);
    sign_in!(app, a, "ada-contest@example.org");
    let mut b = Browser::new(12);
    sign_in!(app, b, "bob-contest@example.org");
    let form = visit!(app, a, &format!("/contests/{id}?tz=Asia/Kolkata"));
    assert!(form.body.contains("id=\"entry\"") && form.body.contains("(Asia/Kolkata)"), "{}", form.body);

    // Too many picks: refused, nothing stored.
    let csrf = a.csrf.clone();
    let mut too_many: Vec<(String, String)> = vec![("csrf".into(), csrf.clone())];
    too_many.extend((0..6).map(|i| ("pick".to_string(), i.to_string())));
    let p = post!(app, a, &format!("/contests/{id}/entry"), &too_many);
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
    assert!(p.body.contains("Pick at most 5"), "{}", p.body);
    assert!(p.body.contains("1 entry so far"));

    // Ada picks papers that reached the top 10 % and is sure; Bob picks ones that did not.
    let mut good: Vec<(String, String)> = vec![("csrf".into(), csrf)];
    for i in reached.iter().take(5) {
        good.push(("pick".into(), i.to_string()));
        good.push((format!("p{i}"), "100%".into()));
    }
    let p = post!(app, a, &format!("/contests/{id}/entry"), &good);
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("picks are saved"), "{}", p.body);
    let visit_b = visit!(app, b, &format!("/contests/{id}"));
    assert_eq!(visit_b.status, 200);
    let mut bad: Vec<(String, String)> = vec![("csrf".into(), b.csrf.clone())];
    for i in missed.iter().take(5) {
        bad.push(("pick".into(), i.to_string()));
        bad.push((format!("p{i}"), "0.9".into()));
    }
    let p = post!(app, b, &format!("/contests/{id}/entry"), &bad);
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("3 entries so far"), "one entry each, the model's included");

    // The operator locks it; a late pick is refused and changes nothing.
    let (status, v) = admin!(app, "POST", &format!("/admin/contests/{id}/lock"), json!({}));
    assert_eq!(status, 200, "{v}");
    let mut late: Vec<(String, String)> = vec![("csrf".into(), b.csrf.clone())];
    late.push(("pick".into(), reached[0].to_string()));
    let p = post!(app, b, &format!("/contests/{id}/entry"), &late);
    assert_eq!(p.status, StatusCode::CONFLICT, "{}", p.body);
    assert!(p.body.contains("locked"), "{}", p.body);

    // The data resolves the replay at once.
    let (status, v) = admin!(app, "POST", &format!("/admin/contests/{id}/score"), json!({}));
    assert_eq!(status, 200, "{v}");
    let scores = v["results"]["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 3, "{v}");
    let rank_of = |who: &str| scores.iter().find(|s| s["entrant"] == who).unwrap()["rank"].as_u64().unwrap();
    assert_eq!(rank_of(&ada), 1, "all hits with certainty: {v}");
    let model_rank = rank_of("model");
    assert_eq!(scores.last().unwrap()["precision"], 0.0, "Bob's picks all missed: {v}");
    let ada_score = scores.iter().find(|s| s["entrant"] == ada.as_str()).unwrap();
    assert_eq!(ada_score["brier"], 0.0);
    assert_eq!(ada_score["hits"].as_u64().unwrap() as usize, reached.len().min(5));

    let page = visit!(app, a, &format!("/contests/{id}"));
    assert!(page.body.contains("id=\"leaderboard\""), "{}", page.body);
    let board = &page.body[page.body.find("id=\"leaderboard\"").unwrap()..];
    let (ada_at, model_at, bob_at) = (
        board.find("Ada Lovelace").unwrap(),
        board.find("The citecast model").unwrap(),
        board.find("Bob Babbage").unwrap(),
    );
    assert!(ada_at < bob_at && ada_at < model_at, "ranked order");
    assert!(!board.contains("example.org"), "people are shown by name, never by address");
    assert!(page.body.contains(">picked<"), "the model's picks are shown after the lock");
    let history = visit!(app, a, "/contests/people/model");
    assert!(
        history.body.contains("1998 replay") && history.body.contains(&format!("{model_rank} of 3")),
        "{}",
        history.body
    );
    let mine = visit!(app, a, &format!("/contests/people/{ada}"));
    assert!(mine.body.contains("1 of 3"), "{}", mine.body);
    let list = visit!(app, a, "/contests");
    assert!(list.body.contains("scored") && list.body.contains("replay as of 1998-12-31"), "{}", list.body);

    // Every change is audited: both entries (by their people), the model's, lock, score.
    let audit = h.state.engine.store.send(ReadAudit { after: None, limit: 1000 }).await.unwrap().unwrap();
    let of = |action: &str| audit.iter().filter(|e| e.action == action && e.target == id).count();
    assert_eq!(of("contest.entry"), 3);
    assert_eq!(of("contest.lock"), 1);
    assert_eq!(of("contest.score"), 1);
    assert!(audit.iter().any(|e| e.action == "contest.entry" && e.actor == ada));
}
