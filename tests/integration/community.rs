//! Paper discussions and events in-process: Markdown rendered and sanitised, the link
//! limit of new accounts, edits within the window, reports into the moderator queue, a
//! ban that stops posting and editing until it expires, hiding, the posting limit, and
//! events in the reader's zone and as iCalendar. Then hostile comments and contest text
//! in headless Chromium against the real binary: nothing runs.

use std::time::Duration;

use actix_web::http::StatusCode;
use serde_json::json;

use crate::common::browser::Driver;
use crate::common::*;
use crate::contests::{admin, person, post, sign_in, visit, Browser};

const PAPER: &str = "/papers/hep-th/9711200";

#[actix_rt::test]
async fn comments_are_sanitised_edited_reported_moderated_and_banned_until_expiry() {
    let h = Harness::new().await;
    let app = app!(h);
    let ada = person(&h, "Ada Lovelace", "ada-talk@example.org").await;
    let _mal = person(&h, "Mallory", "mallory-talk@example.org").await;
    let mut a = Browser::new(21);
    sign_in!(app, a, "ada-talk@example.org");
    let mut m = Browser::new(22);
    sign_in!(app, m, "mallory-talk@example.org");

    // Anonymous readers see the discussion and a way in, no form.
    let anon = visit!(app, Browser::new(20), PAPER);
    assert!(
        anon.body.contains("id=\"discussion\"") && anon.body.contains("Log in</a> to join"),
        "{}",
        anon.body
    );
    assert!(!anon.body.contains("comment-form"));

    let page = visit!(app, a, PAPER);
    assert!(page.body.contains("id=\"comment-form\""));
    let hostile = "**Great** result. <script>alert(1)</script><img src=x onerror=alert(2)> [x](javascript:alert(3)) https://arxiv.org/abs/hep-th/9711200";
    let csrf = a.csrf.clone();
    let p = post!(
        app,
        a,
        "/community/comments",
        &[("csrf", csrf.as_str()), ("paper", "hep-th/9711200"), ("body", hostile)]
    );
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let at = p.headers.get("location").unwrap().to_str().unwrap().to_string();
    let cid = at.split('#').nth(1).unwrap().to_string();
    let page = visit!(app, a, PAPER);
    assert!(page.body.contains("<strong>Great</strong> result."), "{}", page.body);
    assert!(page.body.contains("Ada Lovelace") && !page.body.contains("ada-talk@example.org"));
    for bad in ["<script>alert", "onerror", "javascript:"] {
        assert!(!page.body.contains(bad), "{bad} survived: {}", page.body);
    }
    assert!(page.body.contains("rel=\"nofollow ugc noopener noreferrer\""));
    assert_eq!(page.headers.get("cache-control").unwrap(), "no-store", "a signed-in page is personal");

    // A new account may carry one link.
    let csrf = a.csrf.clone();
    let two = "see https://a.example and https://b.example";
    let p = post!(
        app,
        a,
        "/community/comments",
        &[("csrf", csrf.as_str()), ("paper", "hep-th/9711200"), ("body", two)]
    );
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
    assert!(
        p.body.contains("at most 1 link") && p.body.contains("b.example"),
        "shown again with the reason: {}",
        p.body
    );
    // Without the form's token: refused.
    let p = post!(
        app,
        a,
        "/community/comments",
        &[("csrf", "nope"), ("paper", "hep-th/9711200"), ("body", "hi")]
    );
    assert_eq!(p.status, StatusCode::FORBIDDEN);

    // The author edits within ten minutes; nobody else can.
    let edit = format!("/community/comments/{cid}/edit");
    let form = visit!(app, a, &edit);
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = a.csrf.clone();
    let p = post!(app, a, &edit, &[("csrf", csrf.as_str()), ("body", "**Great** result, revised.")]);
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let page = visit!(app, m, PAPER);
    assert!(page.body.contains("revised.") && page.body.contains("edited"), "{}", page.body);
    let csrf = m.csrf.clone();
    let p = post!(app, m, &edit, &[("csrf", csrf.as_str()), ("body", "hijacked")]);
    assert_eq!(p.status, StatusCode::FORBIDDEN, "{}", p.body);

    // Mallory reports it; the moderator queue shows it with the reason.
    let csrf = m.csrf.clone();
    let p = post!(
        app,
        m,
        &format!("/community/comments/{cid}/report"),
        &[("csrf", csrf.as_str()), ("reason", "off topic")]
    );
    assert_eq!(p.status, 200, "{}", p.body);
    let req = actix_web::test::TestRequest::get()
        .uri("/admin/community")
        .insert_header(("authorization", format!("Bearer {ADMIN_TOKEN}")))
        .to_request();
    let res = actix_web::test::call_service(&app, req).await;
    let queue = String::from_utf8_lossy(&actix_web::test::read_body(res).await).into_owned();
    assert!(queue.contains(&cid) && queue.contains("off topic") && queue.contains("Mallory"), "{queue}");

    // A ban stops posting and editing, with its reason; expiry lifts it.
    let (status, v) = admin!(
        app,
        "POST",
        "/admin/community/bans",
        json!({ "customer_id": ada, "reason": "cooling off", "seconds": 2 })
    );
    assert_eq!(status, 201, "{v}");
    let csrf = a.csrf.clone();
    let p = post!(
        app,
        a,
        "/community/comments",
        &[("csrf", csrf.as_str()), ("paper", "hep-th/9711200"), ("body", "again")]
    );
    assert_eq!(p.status, StatusCode::FORBIDDEN, "{}", p.body);
    assert!(p.body.contains("banned") && p.body.contains("cooling off"), "{}", p.body);
    let csrf = a.csrf.clone();
    let p = post!(app, a, &edit, &[("csrf", csrf.as_str()), ("body", "sneaky edit")]);
    assert_eq!(p.status, StatusCode::FORBIDDEN, "{}", p.body);
    let page = visit!(app, a, PAPER);
    assert!(page.body.contains("id=\"banned\"") && !page.body.contains("sneaky"), "{}", page.body);
    actix_rt::time::sleep(Duration::from_millis(2100)).await;
    let csrf = a.csrf.clone();
    let p = post!(
        app,
        a,
        "/community/comments",
        &[("csrf", csrf.as_str()), ("paper", "hep-th/9711200"), ("body", "Back, and calmer.")]
    );
    assert_eq!(p.status, StatusCode::SEE_OTHER, "the ban expired: {}", p.body);

    // The moderator hides the reported comment: gone from the page, out of the queue.
    let (status, v) = admin!(
        app,
        "POST",
        &format!("/admin/community/comments/{cid}/hide"),
        json!({ "reason": "off topic" })
    );
    assert_eq!(status, 200, "{v}");
    let page = visit!(app, m, PAPER);
    assert!(!page.body.contains("revised.") && page.body.contains("Back, and calmer."), "{}", page.body);

    // Posting is limited per person: a burst, then 429 with Retry-After.
    let mut limited = None;
    for i in 0..8 {
        let csrf = a.csrf.clone();
        let text = format!("note {i}");
        let p = post!(
            app,
            a,
            "/community/comments",
            &[("csrf", csrf.as_str()), ("paper", "hep-th/9711200"), ("body", text.as_str())]
        );
        if p.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(p);
            break;
        }
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    }
    let limited = limited.expect("the posting limit");
    assert!(limited.headers.contains_key("retry-after"));

    // Guidelines, and events in the reader's zone and as iCalendar.
    assert_eq!(visit!(app, m, "/community/guidelines").status, 200);
    let (status, v) = admin!(
        app,
        "POST",
        "/admin/events",
        json!({ "kind": "discussion", "title": "Reading group: AdS/CFT", "starts": "2001-04-01T12:00:00Z", "ends": 986_130_000, "link": PAPER })
    );
    assert_eq!(status, 201, "{v}");
    let ev = v["event"]["id"].as_str().unwrap().to_string();
    let (status, v) = admin!(
        app,
        "POST",
        &format!("/admin/events/{ev}"),
        json!({ "recording": "https://video.example/adscft" })
    );
    assert_eq!(status, 200, "{v}");
    let (status, _) =
        admin!(app, "POST", &format!("/admin/events/{ev}"), json!({ "notes": "javascript:alert(1)" }));
    assert_eq!(status, 400);
    let events = visit!(app, m, "/events?tz=Asia/Kolkata");
    assert!(events.body.contains("2001-04-01 17:30 (Asia/Kolkata)"), "{}", events.body);
    assert!(events.body.contains("https://video.example/adscft"), "{}", events.body);
    let again = visit!(app, m, "/events");
    assert!(again.body.contains("(Asia/Kolkata)"), "the zone is remembered");
    let ics = visit!(app, m, "/events.ics");
    assert!(ics.headers.get("content-type").unwrap().to_str().unwrap().starts_with("text/calendar"));
    assert!(
        ics.body.contains("DTSTART:20010401T120000Z")
            && ics.body.contains("SUMMARY:Discussion: Reading group: AdS/CFT"),
        "{}",
        ics.body
    );
}

#[test]
fn hostile_comments_and_contest_text_never_run_in_chromium() {
    let install = "apt-get install chromium chromium-driver";
    let Some(chromedriver) = external_tool("chromedriver", "CITECAST_REQUIRE_BROWSER", install) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bundled = bundled_fixture(tmp.path());
    let server = start(&data, &bundled);
    let base = format!("http://{}", server.info.addr);
    let driver = Driver::start(chromedriver, &tmp.path().join("chromium-profile"));
    let xss = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\"><svg onload=\"window.__xss=3\"></svg>";

    // An operator's contest with hostile text.
    let now = citecast_actors::dates::now_secs();
    let body = json!({
        "title": format!("Replay {xss}"),
        "rules": format!("Rules **here** {xss} [click](javascript:window.__xss=4)"),
        "target": "most_citations_6m",
        "pool": { "from": "1998-01-01", "to": "1998-12-31" },
        "pick_limit": 3,
        "deadline": now + 3600,
        "as_of": "1998-12-31",
    })
    .to_string();
    let r = citecast::outbound::admin::request(
        &server.info,
        "POST",
        "/admin/contests",
        Some(&body),
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let id = serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["contest"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Sign up in the browser; the confirmation goes to the outbox.
    driver.go(&format!("{base}/signup"));
    driver.type_into("#name", "Eve Hacker");
    driver.type_into("#email", "eve@example.org");
    driver.type_into("#password", "analytical engine 1843");
    driver.click_and_load("form[action='/signup'] button[type=submit]");
    let outbox = data.join("outbox");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mail = loop {
        let found = std::fs::read_dir(&outbox).ok().and_then(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .find(|m| m.contains("/confirm?token="))
        });
        if let Some(m) = found {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "no confirmation mail");
        std::thread::sleep(Duration::from_millis(100));
    };
    let link = crate::common::smtp::link_in(&mail, "/confirm?token=");
    driver.go(&link);
    driver.click_and_load("#confirm");

    // A hostile comment on a paper page.
    driver.go(&format!("{base}{PAPER}"));
    driver.type_into("#comment-body", &format!("Look: {xss} **bold** [x](javascript:window.__xss=5)"));
    driver.click_and_load("#post-comment");
    let shot = driver.screenshot("community-xss-comment");
    assert!(shot.exists());
    let check = "return [typeof window.__xss, document.querySelectorAll('.comment-body script, .comment-body [onerror], .comment-body [onload], .comment-body svg, a[href^=\"javascript\"]').length, document.querySelectorAll('.comment-body strong').length]";
    let v = driver.script(check);
    assert_eq!(v, json!(["undefined", 0, 1]), "{}", driver.body_text());
    assert!(driver.body_text().contains("Eve Hacker"), "{}", driver.body_text());
    driver.assert_fits("a paper page with a hostile comment");

    // The edit form holds the hostile text as text, carries a CSRF token, fits a phone.
    let edit = driver.script("return document.querySelector('a[href$=\"/edit\"]').getAttribute('href')");
    driver.go(&format!("{base}{}", edit.as_str().unwrap()));
    let v = driver.script("return [typeof window.__xss, document.querySelector('textarea#body').value, document.querySelector('form input[name=csrf]').value.length]");
    assert_eq!(v[0], "undefined", "{v}");
    assert!(v[1].as_str().unwrap().contains("<script>window.__xss=1</script>"), "{v}");
    assert!(v[2].as_u64().unwrap() > 10, "{v}");
    driver.assert_fits("the comment edit form");
    // Bad input: a blank comment gets the form back with a readable error, the text kept.
    driver.script("document.querySelector('textarea#body').value = '   '; return 0");
    driver.click_and_load("form[action$='/edit'] button[type=submit]");
    assert!(!driver.text("#error").is_empty(), "{}", driver.body_text());
    assert_eq!(driver.script("return typeof window.__xss"), "undefined");
    driver.assert_fits("the comment form with an error");
    driver.screenshot("community-comment-error");

    // The guidelines page.
    driver.go(&format!("{base}/community/guidelines"));
    assert!(driver.body_text().contains("moderation"), "{}", driver.body_text());
    driver.assert_fits("/community/guidelines");

    // The contest page: the title is text, the rules are sanitised Markdown.
    driver.go(&format!("{base}/contests/{id}"));
    let v = driver.script("return [typeof window.__xss, document.querySelectorAll('#rules script, #rules [onerror], #rules svg, #rules a[href^=\"javascript\"]').length, document.querySelectorAll('#rules strong').length, document.getElementById('contest-title').textContent]");
    assert_eq!(v[0], "undefined");
    assert_eq!(v[1], 0);
    assert_eq!(v[2], 1);
    assert!(v[3].as_str().unwrap().contains("<script>window.__xss=1</script>"), "{v}");
    driver.screenshot("community-xss-contest");
    driver.assert_fits("the contest page");

    // The moderation page, as the operator sees it in a browser (logged in at
    // /admin/login): nothing runs and it fits a phone. The queue's content (a reported
    // comment and its report) is checked in-process above.
    driver.go(&format!("{base}/admin/login"));
    driver.type_into("#token", &server.info.token);
    driver.click_and_load("form[action='/admin/login'] button");
    driver.go(&format!("{base}/admin/community"));
    let v = driver.script("return [typeof window.__xss, document.querySelectorAll('main script, main [onerror], main [onload], main svg, main a[href^=\"javascript\"]').length, document.querySelector('h1').textContent]");
    assert_eq!(v, json!(["undefined", 0, "Moderation queue"]), "{}", driver.body_text());
    driver.assert_fits("/admin/community");
    driver.screenshot("community-moderation");
}
