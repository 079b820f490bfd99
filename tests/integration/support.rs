//! Customer success in-process: the knowledge base renders, searches and escapes; a
//! ticket is opened from the account, answered by the operator (token only), answered
//! back and closed, with mail to both sides; the NPS survey is mailed 30 days after
//! sign-up and answered once; bad input on every form gives a readable page and stores
//! nothing.

use actix_web::http::StatusCode;
use actix_web::test;
use citecast::support::{self, Support};

use crate::common::*;

const ORIGIN: &str = "http://localhost:8080";

/// A browser's memory for the in-process app: its cookie and the last CSRF token seen.
struct Browser {
    cookie: Option<String>,
    csrf: String,
    ip: u8,
}

struct Page {
    status: StatusCode,
    headers: actix_web::http::header::HeaderMap,
    body: String,
}

impl Browser {
    fn new(ip: u8) -> Browser {
        Browser { cookie: None, csrf: String::new(), ip }
    }

    fn remember(&mut self, headers: &actix_web::http::header::HeaderMap, body: &str) {
        if let Some(c) = headers.get("set-cookie").and_then(|v| v.to_str().ok()) {
            self.cookie = Some(c.split(';').next().unwrap().to_string());
        }
        if let Some(i) = body.find("name=\"csrf\" value=\"") {
            let rest = &body[i + 19..];
            self.csrf = rest[..rest.find('"').unwrap()].to_string();
        }
    }

    fn request(&self, req: test::TestRequest) -> test::TestRequest {
        let req = req.peer_addr(format!("10.0.7.{}:4000", self.ip).parse().unwrap());
        match &self.cookie {
            Some(c) => req.insert_header(("cookie", c.clone())),
            None => req,
        }
    }
}

macro_rules! visit {
    ($app:expr, $b:expr, $path:expr) => {{
        let res =
            test::call_service(&$app, $b.request(test::TestRequest::get().uri($path)).to_request()).await;
        let (status, headers) = (res.status(), res.headers().clone());
        let body = String::from_utf8_lossy(&test::read_body(res).await).into_owned();
        $b.remember(&headers, &body);
        Page { status, headers, body }
    }};
}

macro_rules! post {
    ($app:expr, $b:expr, $path:expr, $form:expr) => {
        post!($app, $b, $path, $form, Some(ORIGIN))
    };
    ($app:expr, $b:expr, $path:expr, $form:expr, $origin:expr) => {{
        let body = serde_urlencoded::to_string($form).unwrap();
        let mut req = test::TestRequest::post()
            .uri($path)
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .set_payload(body);
        if let Some(o) = $origin {
            req = req.insert_header(("origin", o));
        }
        let res = test::call_service(&$app, $b.request(req).to_request()).await;
        let (status, headers) = (res.status(), res.headers().clone());
        let body = String::from_utf8_lossy(&test::read_body(res).await).into_owned();
        $b.remember(&headers, &body);
        Page { status, headers, body }
    }};
}

/// An operator call with the admin token (JSON in, JSON out).
macro_rules! admin {
    ($app:expr, $method:ident, $path:expr, $body:expr) => {{
        let req = test::TestRequest::$method()
            .uri($path)
            .insert_header(("authorization", format!("Bearer {ADMIN_TOKEN}")))
            .insert_header(("content-type", "application/json"))
            .set_payload($body.to_string());
        let res = test::call_service(&$app, req.to_request()).await;
        let status = res.status();
        let body = String::from_utf8_lossy(&test::read_body(res).await).into_owned();
        (status, serde_json::from_str::<serde_json::Value>(&body).unwrap_or(serde_json::Value::Null))
    }};
}

fn outbox(h: &Harness) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(h.dir.path().join("outbox")) else { return Vec::new() };
    dir.filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok()).collect()
}

/// Signs a person up and confirms, the way the mail link would; answers their browser
/// and customer id.
async fn signed_up(
    h: &Harness,
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
    email: &str,
    ip: u8,
) -> (Browser, String) {
    let mut b = Browser::new(ip);
    visit!(app, b, "/signup");
    let csrf = b.csrf.clone();
    let p = post!(
        app,
        b,
        "/signup",
        &[("csrf", csrf.as_str()), ("name", "Ada"), ("email", email), ("password", "correct horse battery")]
    );
    assert_eq!(p.status, 200, "{}", p.body);
    let mail = outbox(h)
        .into_iter()
        .find(|m| m.contains(email) && m.contains("/confirm?token="))
        .expect("the confirmation mail");
    let link = crate::common::smtp::link_in(&mail, "/confirm?token=");
    let path = &link[link.find("/confirm").unwrap()..];
    visit!(app, b, path);
    let token = path.split("token=").nth(1).unwrap().to_string();
    let csrf = b.csrf.clone();
    let p = post!(app, b, "/confirm", &[("csrf", csrf.as_str()), ("token", token.as_str())]);
    assert_eq!(p.status, 200, "{}", p.body);
    let id = h.state.logins.customer_id_by_email(email).unwrap().expect("the new customer");
    (b, id)
}

fn store(h: &Harness) -> Support {
    Support::open(&h.state.engine.db).unwrap()
}

#[actix_rt::test]
async fn the_knowledge_base_renders_searches_and_escapes() {
    let h = Harness::start(Setup { load: false, ..Setup::default() }, |_| {}).await;
    let app = app!(h);
    let mut b = Browser::new(1);
    let index = visit!(app, b, "/docs");
    assert_eq!(index.status, 200);
    for (slug, title) in [
        ("getting-started", "Getting started"),
        ("api-guide", "API guide"),
        ("tutorial-forecast-a-reading-list", "Tutorial: forecast a reading list"),
        ("tutorial-explore-a-topic", "Tutorial: explore a topic"),
        ("faq", "Frequently asked questions"),
    ] {
        assert!(index.body.contains(&format!("href=\"/docs/{slug}\"")), "{slug} listed");
        let page = visit!(app, b, &format!("/docs/{slug}"));
        assert_eq!(page.status, 200, "{slug}");
        assert!(page.body.contains(&format!("<h1>{title}</h1>")), "{slug}: {}", page.body);
        assert!(page.body.contains("href=\"/v1/docs\""), "the API reference is linked");
        assert!(page.headers.get("content-security-policy").is_some());
    }
    assert!(index.body.contains("href=\"/v1/docs\""));
    // Code blocks keep their text escaped.
    let guide = visit!(app, b, "/docs/api-guide");
    assert!(guide.body.contains("<code>") && guide.body.contains("Authorization: Bearer cc_live_..."));
    let missing = visit!(app, b, "/docs/no-such-article");
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("No such article"));

    // Search: ranked results, the best first.
    let found = visit!(app, b, "/docs?q=refund");
    assert_eq!(found.status, 200);
    assert!(
        found.body.contains("id=\"kb-results\"") && found.body.contains("href=\"/docs/faq\""),
        "{}",
        found.body
    );
    let ranked = visit!(app, b, "/docs?q=forecast+reading+list");
    let results = &ranked.body[ranked.body.find("id=\"kb-results\"").unwrap()..];
    let first = results.find("href=\"/docs/").map(|i| &results[i + 12..]).unwrap();
    assert!(first.starts_with("tutorial-forecast-a-reading-list"), "{results}");
    let none = visit!(app, b, "/docs?q=zzqxjv");
    assert!(none.body.contains("id=\"kb-no-results\""));
    // A hostile query is shown as text, never markup.
    let hostile = visit!(app, b, "/docs?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E");
    assert_eq!(hostile.status, 200);
    assert!(!hostile.body.contains("<script>alert(1)"), "{}", hostile.body);
    assert!(hostile.body.contains("&#60;script&#62;alert(1)"), "{}", hostile.body);
    let sql = visit!(app, b, "/docs?q=%27%3B+DROP+TABLE+articles%3B+--");
    assert_eq!(sql.status, 200);
    // Too long: a readable 400.
    let long = visit!(app, b, &format!("/docs?q={}", "a".repeat(10_000)));
    assert_eq!(long.status, 400);
    assert!(long.body.contains("class=\"error\""), "{}", long.body);
}

#[actix_rt::test]
async fn a_ticket_is_opened_answered_answered_back_and_closed() {
    let h = Harness::start(Setup { load: false, ..Setup::default() }, |_| {}).await;
    let app = app!(h);
    let (mut b, customer) = signed_up(&h, &app, "grace@example.org", 11).await;
    let account = visit!(app, b, "/account");
    assert!(account.body.contains("href=\"/support\""), "the account links support");
    let page = visit!(app, b, "/support");
    assert_eq!(page.status, 200);
    for id in ["ticket-subject", "ticket-body", "ticket-submit"] {
        assert!(page.body.contains(&format!("id=\"{id}\"")), "#{id}");
    }
    let csrf = b.csrf.clone();
    let opened = post!(
        app,
        b,
        "/support",
        &[
            ("csrf", csrf.as_str()),
            ("subject", "Forecasts answer 503"),
            ("body", "Since noon every\r\nforecast is 503.")
        ]
    );
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.body);
    let location = opened.headers.get("location").unwrap().to_str().unwrap().to_string();
    let id = location.strip_prefix("/support/").unwrap().to_string();
    let t = store(&h).ticket(&id).unwrap().unwrap();
    assert_eq!(
        (t.customer_id.as_str(), t.messages[0].body.as_str()),
        (customer.as_str(), "Since noon every\nforecast is 503.")
    );
    let shown = visit!(app, b, &location);
    assert_eq!(shown.status, 200);
    assert!(shown.body.contains("Forecasts answer 503") && shown.body.contains("We aim to answer by"));
    assert!(shown.body.contains("id=\"reply-body\"") && shown.body.contains("id=\"reply-submit\""));
    // Both sides are told: the operator's mailbox and the customer's acknowledgement.
    let mails = outbox(&h);
    assert!(
        mails.iter().any(|m| m.contains("support@") && m.contains(&format!("New ticket {id}"))),
        "operator mail"
    );
    assert!(mails
        .iter()
        .any(|m| m.contains("grace@example.org") && m.contains(&format!("We got your ticket {id}"))));

    // Another customer sees no such ticket.
    let (mut other, _) = signed_up(&h, &app, "eve@example.org", 12).await;
    assert_eq!(visit!(app, other, &location).status, 404);
    let csrf = other.csrf.clone();
    let refused = post!(app, other, &format!("/support/{id}/close"), &[("csrf", csrf.as_str())]);
    assert_eq!(refused.status, 404);

    // The operator: the list as JSON with the token; a cookie alone changes nothing.
    let (status, list) = admin!(app, get, "/admin/support", "");
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["summary"]["open"], 1);
    assert_eq!(list["tickets"][0]["id"], id.as_str());
    let no_token = test::call_service(
        &app,
        test::TestRequest::post()
            .uri(&format!("/admin/support/{id}/reply"))
            .insert_header(("content-type", "application/json"))
            .set_payload(r#"{"message":"hi"}"#)
            .to_request(),
    )
    .await;
    assert_eq!(no_token.status(), 401);
    let html = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/admin/support")
            .insert_header(("authorization", format!("Bearer {ADMIN_TOKEN}")))
            .insert_header(("accept", "text/html"))
            .to_request(),
    )
    .await;
    let html = String::from_utf8_lossy(&test::read_body(html).await).into_owned();
    assert!(html.contains(&format!("href=\"/admin/support/{id}\"")) && html.contains("1 open"), "{html}");
    let (status, answered) = admin!(
        app,
        post,
        &format!("/admin/support/{id}/reply"),
        serde_json::json!({"message": "We restarted the model server; try again."})
    );
    assert_eq!(status, 200, "{answered}");
    assert!(answered["first_response_secs"].as_i64().unwrap() >= 0);
    assert!(outbox(&h)
        .iter()
        .any(|m| m.contains("grace@example.org") && m.contains("We restarted the model server")));
    let shown = visit!(app, b, &location);
    assert!(
        shown.body.contains("citecast support") && shown.body.contains("First answered after"),
        "{}",
        shown.body
    );

    // The customer answers back, then closes it.
    let csrf = b.csrf.clone();
    let back = post!(
        app,
        b,
        &format!("/support/{id}/reply"),
        &[("csrf", csrf.as_str()), ("body", "Works now, thanks!")]
    );
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    assert!(outbox(&h).iter().any(|m| m.contains(&format!("Reply on {id}"))));
    let csrf = b.csrf.clone();
    let closed = post!(app, b, &format!("/support/{id}/close"), &[("csrf", csrf.as_str())]);
    assert_eq!(closed.status, StatusCode::SEE_OTHER);
    let t = store(&h).ticket(&id).unwrap().unwrap();
    assert_eq!((t.status, t.messages.len()), (support::TicketStatus::Closed, 3));
    let shown = visit!(app, b, &location);
    assert!(shown.body.contains("<strong>closed</strong>") && shown.body.contains("id=\"ticket-reopen\""));
    // Closing twice is a readable conflict; the operator reopens and closes through the API.
    let csrf = b.csrf.clone();
    assert_eq!(post!(app, b, &format!("/support/{id}/close"), &[("csrf", csrf.as_str())]).status, 409);
    let (status, _) = admin!(app, post, &format!("/admin/support/{id}/reopen"), "{}");
    assert_eq!(status, 200);
    let (status, v) = admin!(app, post, &format!("/admin/support/{id}/close"), "{}");
    assert_eq!((status.as_u16(), v["status"].as_str()), (200, Some("closed")));
    let (status, _) = admin!(app, post, "/admin/support/tkt_999999999999/close", "{}");
    assert_eq!(status, 404);
    let summary = support::ticket_summary(&h.state.engine.db).unwrap();
    assert_eq!((summary.open, summary.answered, summary.overdue), (0, 1, 0));
}

#[actix_rt::test]
async fn bad_input_on_every_form_is_readable_and_stores_nothing() {
    let h = Harness::start(Setup { load: false, ..Setup::default() }, |_| {}).await;
    let app = app!(h);
    let (mut b, customer) = signed_up(&h, &app, "mallory@example.org", 21).await;
    visit!(app, b, "/support");
    let long = "x".repeat(10_240);
    let csrf = b.csrf.clone();
    for (subject, body) in [
        ("", "a body"),
        ("   ", "a body"),
        (long.as_str(), "a body"),
        ("<script>alert(1)</script>", "a body"),
        ("Help\r\nBcc: victim@example.org", "a body"),
        ("A subject", ""),
        ("A subject", long.as_str()),
        ("A subject", "null\u{0}byte"),
    ] {
        let p = post!(app, b, "/support", &[("csrf", csrf.as_str()), ("subject", subject), ("body", body)]);
        assert_eq!(p.status, 422, "{subject:?}: {}", p.body);
        assert!(p.body.contains("class=\"error\""), "a sentence on the page");
        assert!(!p.body.contains("<script>alert"), "escaped");
    }
    // Without the token, or from another site: refused before the fields are read.
    let p = post!(app, b, "/support", &[("subject", "s"), ("body", "b")]);
    assert_eq!(p.status, 403);
    let csrf = b.csrf.clone();
    let p = post!(
        app,
        b,
        "/support",
        &[("csrf", csrf.as_str()), ("subject", "s"), ("body", "b")],
        Some("https://evil.example")
    );
    assert_eq!(p.status, 403);
    assert!(store(&h).tickets().unwrap().is_empty(), "nothing stored");

    // SQL-looking text and markup in the message are only text: stored as typed, shown
    // escaped (sled has no query language; refusing apostrophes would refuse questions).
    let csrf = b.csrf.clone();
    let p = post!(
        app,
        b,
        "/support",
        &[
            ("csrf", csrf.as_str()),
            ("subject", "Robert'); DROP TABLE tickets;--"),
            ("body", "<script>alert(1)</script> ' OR 1=1 --")
        ]
    );
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let location = p.headers.get("location").unwrap().to_str().unwrap().to_string();
    let shown = visit!(app, b, &location);
    assert!(!shown.body.contains("<script>alert"), "{}", shown.body);
    assert!(shown.body.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    let id = location.strip_prefix("/support/").unwrap().to_string();

    // The reply form.
    let csrf = b.csrf.clone();
    for body in ["", "  ", long.as_str(), "bell\u{7}"] {
        let p = post!(app, b, &format!("/support/{id}/reply"), &[("csrf", csrf.as_str()), ("body", body)]);
        assert_eq!(p.status, 422, "{body:?}");
        assert!(p.body.contains("class=\"error\""));
    }
    let p = post!(app, b, &format!("/support/{id}/reply"), &[("body", "no token")]);
    assert_eq!(p.status, 403);
    assert_eq!(store(&h).ticket(&id).unwrap().unwrap().messages.len(), 1, "no reply stored");
    // Close and reopen need the token too.
    let p = post!(app, b, &format!("/support/{id}/close"), &[("csrf", "forged")]);
    assert_eq!(p.status, 403);
    assert_eq!(store(&h).ticket(&id).unwrap().unwrap().status, support::TicketStatus::Open);
    // Unknown and malformed ticket ids: a readable 404.
    for path in ["/support/tkt_000000000999", "/support/..%2F..%2Fetc", "/support/%3Cscript%3E"] {
        let p = visit!(app, b, path);
        assert_eq!(p.status, 404, "{path}");
        assert!(p.body.contains("No such ticket"));
    }

    // The operator's reply: JSON errors in words, nothing stored.
    for body in [
        serde_json::json!({"message": ""}).to_string(),
        serde_json::json!({"message": long}).to_string(),
        "not json".to_string(),
        serde_json::json!({"message": "x", "extra": 1}).to_string(),
    ] {
        let (status, v) = admin!(app, post, &format!("/admin/support/{id}/reply"), body);
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["error"]["code"], "invalid_body");
    }
    assert_eq!(store(&h).ticket(&id).unwrap().unwrap().messages.len(), 1);

    // The survey form.
    let token = support::survey_token(&h.state.site.secret, &customer);
    let mut s = Browser::new(22);
    let form = visit!(app, s, &format!("/nps?token={token}"));
    assert_eq!(form.status, 200);
    let csrf = s.csrf.clone();
    for (score, comment) in [
        ("", "fine"),
        ("11", ""),
        ("-1", ""),
        ("1 OR 1=1", ""),
        ("<script>", ""),
        ("\r\n", ""),
        ("7", "line\u{0}break"),
        ("9", long.as_str()),
    ] {
        let p = post!(
            app,
            s,
            "/nps",
            &[("csrf", csrf.as_str()), ("token", token.as_str()), ("score", score), ("comment", comment)]
        );
        assert_eq!(p.status, 422, "{score:?}: {}", p.body);
        assert!(p.body.contains("class=\"error\""));
        assert!(!p.body.contains("<script>"), "escaped");
    }
    let forged = format!("{customer}.AAAAAAAAAAAAAAAAAAAAAAAA");
    let p = post!(app, s, "/nps", &[("csrf", csrf.as_str()), ("token", forged.as_str()), ("score", "9")]);
    assert_eq!(p.status, 404);
    assert_eq!(visit!(app, s, "/nps?token=cus_x.bad").status, 404);
    let p = post!(app, s, "/nps", &[("token", token.as_str()), ("score", "9")]);
    assert_eq!(p.status, 403);
    assert_eq!(support::nps_summary(&h.state.engine.db).unwrap().responses, 0, "nothing stored");
}

#[actix_rt::test]
async fn the_survey_is_mailed_after_30_days_and_answered_once() {
    let h = Harness::start(Setup { load: false, ..Setup::default() }, |_| {}).await;
    let app = app!(h);
    let (_b, customer) = signed_up(&h, &app, "nina@example.org", 31).await;
    let db = h.state.engine.db.clone();
    let now = citecast_actors::dates::now_secs();
    let mailer = citecast::outbound::mail::Mailer::new(
        None,
        "citecast <noreply@example.org>",
        &h.dir.path().join("outbox"),
    )
    .unwrap();
    let send = |at: i64| {
        support::job::send_surveys(
            &db,
            h.state.accounts.as_ref(),
            &mailer,
            ORIGIN,
            &h.state.site.secret,
            at,
            None,
        )
    };
    // A new customer is not asked yet; 31 days on they are, once.
    assert_eq!(send(now), Ok(0));
    assert_eq!(send(now + 31 * 86_400), Ok(1));
    assert_eq!(send(now + 32 * 86_400), Ok(0));
    let mail = outbox(&h)
        .into_iter()
        .find(|m| m.contains("One question about citecast"))
        .unwrap_or_else(|| panic!("the survey mail in {:?}", outbox(&h)));
    let link = crate::common::smtp::link_in(&mail, "/nps?token=");
    let path = &link[link.find("/nps").unwrap()..];
    let token = path.split("token=").nth(1).unwrap().to_string();
    assert_eq!(
        support::verify_survey_token(&h.state.site.secret, &token).as_deref(),
        Some(customer.as_str())
    );

    let mut s = Browser::new(32);
    let form = visit!(app, s, path);
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("id=\"nps-submit\""));
    let csrf = s.csrf.clone();
    let p = post!(
        app,
        s,
        "/nps",
        &[
            ("csrf", csrf.as_str()),
            ("token", token.as_str()),
            ("score", "9"),
            ("comment", "Fast <b>answers</b>")
        ]
    );
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("Thank you"));
    let csrf = s.csrf.clone();
    let again = post!(app, s, "/nps", &[("csrf", csrf.as_str()), ("token", token.as_str()), ("score", "0")]);
    assert_eq!(again.status, 409);
    assert!(visit!(app, s, path).body.contains("already answered"));
    let summary = support::nps_summary(&h.state.engine.db).unwrap();
    assert_eq!(
        (summary.responses, summary.promoters, summary.score, summary.surveys_sent),
        (1, 1, Some(100.0), 1)
    );
    assert_eq!(summary.latest_comments[0].comment, "Fast <b>answers</b>");
    // The operator's page shows it, escaped.
    let html = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/admin/support")
            .insert_header(("authorization", format!("Bearer {ADMIN_TOKEN}")))
            .insert_header(("accept", "text/html"))
            .to_request(),
    )
    .await;
    let html = String::from_utf8_lossy(&test::read_body(html).await).into_owned();
    assert!(
        html.contains("NPS 100 from 1 answers") && html.contains("Fast &#60;b&#62;answers&#60;/b&#62;"),
        "{html}"
    );
}

/// `citecast support` and the escalation job through the real server: an overdue ticket
/// is listed loudly, escalated once (to the operator's mailbox: no webhook here),
/// answered and closed from the command line.
// `test` here is actix-web's module; this is the plain test attribute.
#[std::prelude::v1::test]
fn the_operator_answers_and_closes_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let bundled = bundled_fixture(tmp.path());
    let data = tmp.path().join("data");
    // A first start makes the store; a ticket waiting 5 hours goes in while it is down.
    stop_gracefully(start(&data, &bundled));
    let id = {
        let db = sled::open(data.join("store")).unwrap();
        let now = citecast_actors::dates::now_secs();
        let t = Support::open(&db)
            .unwrap()
            .open_ticket("cus_cli", "Batch refused", "413 on 50 ids", now - 5 * 3600)
            .unwrap();
        db.flush().unwrap();
        t.id
    };
    let _server = start(&data, &bundled);
    let list = String::from_utf8_lossy(&run(&["support", "list"], &data).stdout).into_owned();
    assert!(list.contains("1 overdue") && list.contains(&id) && list.contains("OVERDUE"), "{list}");

    run(&["jobs", "run", "support_escalation", "--wait"], &data);
    let escalated = std::fs::read_dir(data.join("outbox"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .filter(|m| m.contains("OVERDUE") && m.contains(&id))
        .count();
    assert_eq!(escalated, 1);
    run(&["jobs", "run", "support_escalation", "--wait"], &data);
    let json: serde_json::Value =
        serde_json::from_slice(&run(&["support", "list", "--json"], &data).stdout).unwrap();
    assert_eq!(json["summary"]["escalated"], 1, "escalated once: {json}");

    let out = run(&["support", "reply", &id, "--message", "Pro allows batches of 100."], &data);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["first_response_secs"].as_i64().unwrap() >= 5 * 3600);
    run(&["support", "close", &id], &data);
    let shown: serde_json::Value =
        serde_json::from_slice(&run(&["support", "show", &id], &data).stdout).unwrap();
    assert_eq!(shown["status"], "closed");
    assert_eq!(shown["conversation"][1]["body"], "Pro allows batches of 100.");

    // Mistakes are one readable line and a failure status.
    for (args, says) in [
        (vec!["support", "close", &id], "already closed"),
        (vec!["support", "reply", "tkt_000000000999", "--message", "x"], "not found"),
        (vec!["support", "reply", &id, "--message", ""], "Write the message"),
        (vec!["support", "close", "../x"], "not a ticket id"),
    ] {
        let out = bin().args(&args).arg("--data-dir").arg(&data).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{args:?}: {err}");
    }
}
