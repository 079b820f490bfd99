//! The customer's forms in-process: CSRF tokens and the origin check, session fixation,
//! hostile input on every form (a readable page, nothing stored), the same answer for
//! an unknown address and a wrong password, limits on sign-in attempts, and the
//! security headers of every page.

use actix_web::http::StatusCode;
use actix_web::test;

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
    fn new() -> Browser {
        Browser { cookie: None, csrf: String::new(), ip: 1 }
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
        // A different client address per browser keeps the per-IP form limit out of
        // the tests that are not about it.
        let req = req.peer_addr(format!("10.0.0.{}:4000", self.ip).parse().unwrap());
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

/// Signs a person up and confirms, the way the mail link would; answers their browser.
async fn signed_up(
    h: &Harness,
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
    email: &str,
    ip: u8,
) -> Browser {
    let mut b = Browser::new();
    b.ip = ip;
    visit!(app, b, "/signup");
    let p = post!(
        app,
        b,
        "/signup",
        &[
            ("csrf", b.csrf.as_str()),
            ("name", "Ada"),
            ("email", email),
            ("password", "correct horse battery")
        ]
    );
    assert_eq!(p.status, 200, "{}", p.body);
    // The mail went to the outbox (no SMTP server configured): the page says so.
    assert!(p.body.contains("outbox"), "{}", p.body);
    let outbox = h.dir.path().join("outbox");
    let mail = std::fs::read_dir(&outbox)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .find(|m| m.contains(email) && m.contains("/confirm?token="))
        .expect("the confirmation mail");
    let link = crate::common::smtp::link_in(&mail, "/confirm?token=");
    let path = &link[link.find("/confirm").unwrap()..];
    let page = visit!(app, b, path);
    assert_eq!(page.status, 200, "{}", page.body);
    let token = path.split("token=").nth(1).unwrap().to_string();
    let p = post!(app, b, "/confirm", &[("csrf", b.csrf.as_str()), ("token", token.as_str())]);
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("cc_live_"), "the first key is shown: {}", p.body);
    b
}

#[actix_rt::test]
async fn forms_need_their_token_and_our_origin_and_sessions_are_renewed_at_sign_in() {
    let h = Harness::new().await;
    let app = app!(h);
    let mut b = signed_up(&h, &app, "ada@example.org", 2).await;
    let before = b.cookie.clone();
    // Log out, then log in: the session key changes at sign-in (no fixation).
    let csrf = b.csrf.clone();
    let out = post!(app, b, "/logout", &[("csrf", csrf.as_str())]);
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let page = visit!(app, b, "/login");
    let planted = b.cookie.clone();
    assert!(page.body.contains("Log in"));
    let csrf = b.csrf.clone();
    let ok = post!(
        app,
        b,
        "/login",
        &[("csrf", csrf.as_str()), ("email", "ada@example.org"), ("password", "correct horse battery")]
    );
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.headers.get("location").unwrap(), "/account");
    assert_ne!(b.cookie, planted, "a new session key at sign-in");
    assert_ne!(b.cookie, before);
    let set = ok.headers.get("set-cookie").unwrap().to_str().unwrap().to_lowercase();
    assert!(set.contains("httponly") && set.contains("samesite=lax"), "{set}");
    // The planted (pre-login) cookie is not signed in.
    let mut attacker = Browser { cookie: planted, csrf: String::new(), ip: 3 };
    let page = visit!(app, attacker, "/account");
    assert_eq!(page.status, StatusCode::SEE_OTHER, "the old session key is worthless");

    let account = visit!(app, b, "/account");
    assert_eq!(account.status, 200);
    let keys_before = account.body.matches("<tr>").count();
    // No token, a wrong token, another origin: refused, nothing made.
    let none = post!(app, b, "/account/keys", &[("name", "sneaky")]);
    assert_eq!(none.status, StatusCode::FORBIDDEN, "{}", none.body);
    let wrong = post!(app, b, "/account/keys", &[("csrf", "AAAA"), ("name", "sneaky")]);
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let csrf = b.csrf.clone();
    let foreign = post!(
        app,
        b,
        "/account/keys",
        &[("csrf", csrf.as_str()), ("name", "sneaky")],
        Some("https://evil.example")
    );
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert!(foreign.body.contains("another site"), "{}", foreign.body);
    let page = visit!(app, b, "/account");
    assert_eq!(page.body.matches("<tr>").count(), keys_before, "nothing stored");
    assert!(!page.body.contains("sneaky"));
    // With both, a key is made and its secret shown once.
    let csrf = b.csrf.clone();
    let made = post!(app, b, "/account/keys", &[("csrf", csrf.as_str()), ("name", "laptop")]);
    assert_eq!(made.status, 200, "{}", made.body);
    assert!(made.body.contains("id=\"new-secret\">cc_live_"), "{}", made.body);

    // Every page sends the security headers.
    for path in [
        "/",
        "/pricing",
        "/sla",
        "/signup",
        "/account",
        "/billing",
        "/password/forgot",
        "/papers/hep-th/9711200",
    ] {
        let p = visit!(app, b, path);
        for h in ["content-security-policy", "x-content-type-options", "referrer-policy", "x-frame-options"] {
            assert!(p.headers.contains_key(h), "{path} lacks {h}");
        }
        assert!(p.status.is_success(), "{path}: {}", p.status);
    }
}

#[actix_rt::test]
async fn hostile_input_on_every_form_gets_a_readable_page_and_stores_nothing() {
    let h = Harness::new().await;
    let app = app!(h);
    let mut b = signed_up(&h, &app, "grace@example.org", 4).await;
    let customers_before = h.state.accounts.customers(None, 1000).unwrap().len();
    let long = "x".repeat(10_000);
    let hostile = [
        "",
        long.as_str(),
        "<script>alert(1)</script>",
        "'; DROP TABLE customers; --",
        "ada@example.org\r\nBcc: everyone@example.org",
        "名前 🚀 \u{202e}",
    ];
    let mut ip = 10u8;
    for value in hostile {
        for (path, fields) in [
            ("/signup", vec!["name", "email", "password"]),
            ("/login", vec!["email", "password"]),
            ("/password/forgot", vec!["email"]),
            ("/password/reset", vec!["token", "password"]),
            ("/account/keys", vec!["name"]),
            ("/billing/plan", vec!["plan"]),
            ("/billing/cancel", vec!["when"]),
        ] {
            ip += 1;
            b.ip = ip;
            let csrf = b.csrf.clone();
            let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
            form.extend(fields.iter().map(|f| (*f, value)));
            let p = post!(app, b, path, &form);
            assert!(
                p.status.is_client_error() || p.status == StatusCode::OK,
                "{path} {value:.20}: {}",
                p.status
            );
            assert!(
                p.headers.get("content-type").unwrap().to_str().unwrap().starts_with("text/html"),
                "{path}"
            );
            assert!(!p.body.contains("<script>alert"), "{path}: user input must be escaped");
            assert!(p.body.contains("<h1>"), "{path}: a readable page");
            if path == "/signup"
                || path == "/login"
                || path == "/password/forgot"
                || path == "/password/reset"
            {
                assert!(
                    p.status.is_client_error() || p.body.contains("Check your inbox"),
                    "{path} {value:.20}: {}",
                    p.body
                );
            }
        }
        // Wrong types: a JSON body where a form is expected.
        let res = test::call_service(
            &app,
            b.request(test::TestRequest::post().uri("/signup"))
                .insert_header(("origin", ORIGIN))
                .set_json(serde_json::json!({"name": 5, "email": ["x"]}))
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "no token in a JSON body");
    }
    assert_eq!(h.state.accounts.customers(None, 1000).unwrap().len(), customers_before, "nothing stored");
    let page = visit!(app, b, "/account");
    assert!(
        !page.body.contains("DROP TABLE") && !page.body.contains("<script>alert"),
        "no key made from hostile input"
    );
    let billing = visit!(app, b, "/billing");
    assert!(billing.body.contains("No invoices yet"), "{}", billing.body);
}

#[actix_rt::test]
async fn sign_in_answers_alike_for_unknown_addresses_and_wrong_passwords_and_is_limited() {
    let h = Harness::new().await;
    let app = app!(h);
    signed_up(&h, &app, "lin@example.org", 30).await;
    let mut b = Browser::new();
    b.ip = 31;
    visit!(app, b, "/login");
    let csrf = b.csrf.clone();
    let wrong = post!(
        app,
        b,
        "/login",
        &[("csrf", csrf.as_str()), ("email", "lin@example.org"), ("password", "not the password")]
    );
    let unknown = post!(
        app,
        b,
        "/login",
        &[("csrf", csrf.as_str()), ("email", "nobody@example.org"), ("password", "not the password")]
    );
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, wrong.status);
    let said =
        |p: &Page| p.body.split("role=\"alert\">").nth(1).unwrap().split('<').next().unwrap().to_string();
    assert_eq!(said(&wrong), said(&unknown));
    // A forgotten-password request answers the same for unknown addresses.
    b.ip = 60;
    let known = post!(app, b, "/password/forgot", &[("csrf", csrf.as_str()), ("email", "lin@example.org")]);
    b.ip = 61;
    let unknown =
        post!(app, b, "/password/forgot", &[("csrf", csrf.as_str()), ("email", "nobody@example.org")]);
    assert_eq!(known.status, unknown.status);
    assert!(known.body.contains("If an account uses") && unknown.body.contains("If an account uses"));
    // Guessing one account's password from many addresses is stopped too.
    let mut limited = false;
    for i in 0..8u8 {
        b.ip = 40 + i;
        let p = post!(
            app,
            b,
            "/login",
            &[("csrf", csrf.as_str()), ("email", "lin@example.org"), ("password", "guess guess guess")]
        );
        if p.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(p.headers.contains_key("retry-after"));
            limited = true;
            break;
        }
    }
    assert!(limited, "repeated wrong passwords on one account are limited");
}

#[actix_rt::test]
async fn the_operator_logs_in_with_the_token_and_a_cookie_alone_changes_nothing() {
    let h = Harness::new().await;
    let app = app!(h);
    let mut b = Browser::new();
    b.ip = 70;
    let page = visit!(app, b, "/admin/dashboard");
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    let page = visit!(app, b, &format!("/admin/dashboard?token={ADMIN_TOKEN}"));
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "a token in the URL opens nothing");
    visit!(app, b, "/admin/login");
    let csrf = b.csrf.clone();
    let wrong = post!(app, b, "/admin/login", &[("csrf", csrf.as_str()), ("token", "guess")]);
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let before = b.cookie.clone();
    let ok = post!(app, b, "/admin/login", &[("csrf", csrf.as_str()), ("token", ADMIN_TOKEN)]);
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_ne!(b.cookie, before, "a new session key at log-in");
    let models = visit!(app, b, "/admin/models");
    assert_eq!(models.status, 200, "{}", models.body);
    // Reading is allowed; changing needs the token in a header.
    let res = test::call_service(
        &app,
        b.request(test::TestRequest::post().uri("/admin/op"))
            .insert_header(("origin", ORIGIN))
            .set_json(serde_json::json!({"op": "list_customers"}))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let csrf = b.csrf.clone();
    let out = post!(app, b, "/admin/logout", &[("csrf", csrf.as_str())]);
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(visit!(app, b, "/admin/models").status, StatusCode::UNAUTHORIZED);
}
