//! The newsletter delivered to a real SMTP server (aiosmtpd): subscribe in the form →
//! confirmation mail caught → one-click confirm (a POST from the link's page) → the
//! weekly issue arrives with both parts, `Message-ID` and both unsubscribe headers →
//! one-click POST unsubscribe from the header's URL → no further mail. Hard bounces
//! stop mail to an address, soft ones wait for a retry; hostile input on the form stores
//! nothing. And a `kill -9` of the server in the middle of delivering an issue to 2,000
//! readers, then a restart: every reader gets exactly one copy.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix_web::test;
use citecast::newsletter::store::Subscribers;
use citecast::newsletter::subscribers::SubscriberState;

use crate::common::smtp::{header, link_in, SmtpSink};
use crate::common::*;

const ORIGIN: &str = "http://localhost:8080";

/// Runs the `newsletter` job in-process, as the scheduler would.
async fn run_job(h: &Harness) -> u64 {
    let config = citecast::config::Config::new(h.dir.path().to_path_buf());
    let ctx = citecast::ops::jobs::JobContext {
        engine: h.state.engine.clone(),
        accounts: h.state.accounts.clone(),
        issues: h.state.issues.clone(),
        config: config.jobs(),
        billing: None,
        budget: None,
    };
    let job = citecast::newsletter::job::jobs().into_iter().find(|j| j.spec.name == "newsletter").unwrap();
    (job.run)(ctx).await.unwrap()
}

fn messages_to(sink: &SmtpSink, to: &str) -> Vec<String> {
    sink.messages().into_iter().filter(|m| m.contains(&format!("To: {to}"))).collect()
}

/// Waits until the send queue holds nothing due now (retries wait for later).
fn settle(subs: &Subscribers) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !subs.due(citecast_actors::dates::now_secs(), 1).unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the queue did not drain");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
}

#[actix_rt::test]
async fn a_reader_subscribes_confirms_receives_the_issue_and_unsubscribes_in_one_click() {
    let Some(sink) = SmtpSink::start() else { return };
    let url = sink.url();
    let h = Harness::start(Setup::default(), |c| c.smtp_url = Some(url.clone())).await;
    let app = app!(h);
    let subs = Subscribers::open(&h.state.engine.db).unwrap();
    let settings = citecast::newsletter::delivery::DeliverySettings {
        subscribers: subs.clone(),
        issues: h.state.issues.clone(),
        mailer: h.state.mailer.clone(),
        secret: h.state.site.secret.clone(),
        base_url: h.state.site.base_url.clone(),
        rate_per_minute: 60_000,
        commit_log: h.dir.path().join("newsletter-commits.log"),
    };
    citecast::newsletter::delivery::start(settings, Default::default());

    // The page gives a session and the form's token.
    let res = test::call_service(&app, test::TestRequest::get().uri("/newsletter").to_request()).await;
    let cookie =
        res.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_string();
    let page = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let post = |path: &str, form: &[(&str, &str)], ip: u8| {
        test::TestRequest::post()
            .uri(path)
            .peer_addr(format!("10.1.0.{ip}:5000").parse().unwrap())
            .insert_header(("cookie", cookie.clone()))
            .insert_header(("origin", ORIGIN))
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .set_payload(serde_urlencoded::to_string(form).unwrap())
            .to_request()
    };

    // Hostile input: a readable page, nothing stored, no header injected.
    let long = "x".repeat(10_000);
    for (i, (email, name)) in [
        ("eve@example.org\r\nBcc: all@example.org", "Eve"),
        ("eve@example.org", "Eve\r\nBcc: all@example.org"),
        ("<script>alert(1)</script>@example.org", "x"),
        (long.as_str(), "x"),
        ("eve@example.org", long.as_str()),
        ("", ""),
    ]
    .into_iter()
    .enumerate()
    {
        let res = test::call_service(
            &app,
            post("/newsletter/subscribe", &[("csrf", &csrf), ("email", email), ("name", name)], i as u8 + 1),
        )
        .await;
        assert_eq!(res.status().as_u16(), 422, "{email:.30} / {name:.30}");
        let body = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
        assert!(body.contains("<h1>") && !body.contains("<script>alert"), "{body}");
    }
    assert!(subs.all().unwrap().is_empty(), "nothing stored");
    assert!(sink.messages().is_empty(), "nothing sent");

    // Subscribe to one subject; the answer is the same for a known address.
    let reader = "reader@example.org";
    let form = [
        ("csrf", csrf.as_str()),
        ("email", reader),
        ("name", "Rita"),
        ("topic", "strings"),
        ("topic", "nonsense"),
    ];
    let res = test::call_service(&app, post("/newsletter/subscribe", &form, 20)).await;
    assert_eq!(res.status().as_u16(), 200);
    let first = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    let res = test::call_service(&app, post("/newsletter/subscribe", &form, 21)).await;
    let again = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    let said = |b: &str| b.split("<h1>").nth(1).unwrap().split("</main>").next().unwrap().to_string();
    assert_eq!(said(&first), said(&again), "the same answer either way");
    let json = test::TestRequest::post()
        .uri("/newsletter/subscribe")
        .peer_addr("10.1.0.22:5000".parse().unwrap())
        .set_json(serde_json::json!({ "email": reader }))
        .to_request();
    assert_eq!(test::call_service(&app, json).await.status().as_u16(), 202);
    let stored = subs.by_email(reader).unwrap().unwrap();
    assert_eq!(
        (stored.state, stored.topics.clone()),
        (SubscriberState::Unconfirmed, vec!["strings".to_string()])
    );

    // The confirmation link's page confirms nothing by being opened; its button does.
    let mail = sink.wait_for(reader, "/newsletter/confirm?token=");
    assert_eq!(messages_to(&sink, reader).len(), 1, "one confirmation, not one per sign-up");
    let link = link_in(&mail, "/newsletter/confirm?token=");
    let path = &link[link.find("/newsletter").unwrap()..];
    let res = test::call_service(
        &app,
        test::TestRequest::get().uri(path).insert_header(("cookie", cookie.clone())).to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(subs.by_email(reader).unwrap().unwrap().state, SubscriberState::Unconfirmed);
    let token = path.split("token=").nth(1).unwrap();
    let res =
        test::call_service(&app, post("/newsletter/confirm", &[("csrf", &csrf), ("token", token)], 23)).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(subs.by_email(reader).unwrap().unwrap().state, SubscriberState::Confirmed);

    // Readers whose addresses the server refuses: for good (550) and for now (451).
    let import = citecast::newsletter::admin::ImportBody {
        subscribers: vec![
            citecast::newsletter::admin::Imported { email: "bounce@example.org".into(), name: None },
            citecast::newsletter::admin::Imported { email: "later@example.org".into(), name: None },
        ],
        confirmed: true,
    };
    let report = citecast::newsletter::admin::import(&subs, &import, 0).unwrap();
    assert_eq!(report.imported, 2);

    // The weekly issue: built, queued per reader, delivered.
    assert!(run_job(&h).await >= 1);
    settle(&subs);
    let issue_mail = sink.wait_for(reader, "citecast weekly #1");
    assert!(issue_mail.contains("text/plain") && issue_mail.contains("text/html"), "{issue_mail}");
    let unsubscribe = header(&issue_mail, "List-Unsubscribe").expect("List-Unsubscribe");
    assert!(
        unsubscribe.contains("/newsletter/unsubscribe?token=") && unsubscribe.contains("<mailto:"),
        "{unsubscribe}"
    );
    assert_eq!(header(&issue_mail, "List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    assert!(
        header(&issue_mail, "Message-ID").is_some_and(|m| m.starts_with("<newsletter-1-")),
        "{issue_mail}"
    );
    assert!(header(&issue_mail, "Date").is_some());
    assert!(
        issue_mail.contains("String theory") || issue_mail.contains("No new papers matched"),
        "{issue_mail}"
    );
    assert!(issue_mail.contains("/newsletter/preferences?token="), "a preferences link in every mail");
    assert_eq!(subs.by_email("bounce@example.org").unwrap().unwrap().state, SubscriberState::Bounced);
    let stats = subs.stats().unwrap()[0].1.clone();
    assert_eq!((stats.sent, stats.bounced, stats.deferred), (1, 1, 1), "{stats:?}");

    // One click from the mail client: a POST to the header's URL.
    let unsub_url = unsubscribe.split('<').nth(1).unwrap().split('>').next().unwrap();
    let unsub_path = &unsub_url[unsub_url.find("/newsletter").unwrap()..];
    let res = test::call_service(
        &app,
        test::TestRequest::post()
            .uri(unsub_path)
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .set_payload("List-Unsubscribe=One-Click")
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(subs.by_email(reader).unwrap().unwrap().state, SubscriberState::Unsubscribed);

    // The next issue reaches nobody who left.
    let mut next = h.state.issues.list().unwrap()[0].clone();
    next.week_to = "2099-01-07".into();
    h.state.issues.save(next).unwrap();
    run_job(&h).await;
    settle(&subs);
    assert_eq!(messages_to(&sink, reader).len(), 2, "the confirmation and one issue, nothing more");
    assert!(messages_to(&sink, "bounce@example.org").is_empty(), "a bounced address gets nothing");
}

#[::core::prelude::v1::test]
fn a_kill_during_delivery_to_2000_readers_loses_and_repeats_nothing() {
    let Some(sink) = SmtpSink::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let bundled = bundled_fixture(tmp.path());
    let list = tmp.path().join("readers.txt");
    let readers: Vec<String> = (0..2000).map(|i| format!("reader{i}@example.org")).collect();
    std::fs::write(&list, readers.join("\n")).unwrap();
    let out = run(&["newsletter", "import", "--confirmed", list.to_str().unwrap()], &data);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // 100 messages a second: the kill lands well inside the delivery even on a busy machine.
    let args = ["--smtp-url", &sink.url(), "--newsletter-rate", "6000"];
    let mut server = start_with(&data, &bundled, &args);
    let out = run(&["jobs", "run", "newsletter", "--wait"], &data);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(60);
    while sink.count() < 300 {
        assert!(Instant::now() < deadline, "delivery did not start: {}", sink.count());
        std::thread::sleep(Duration::from_millis(10));
    }
    server.child.kill().unwrap(); // SIGKILL, mid-delivery
    server.child.wait().unwrap();
    let at_kill = sink.count();
    assert!(at_kill < 2000, "the kill came too late to test anything ({at_kill} already sent)");

    let server = start_with(&data, &bundled, &args);
    let deadline = Instant::now() + Duration::from_secs(120);
    while sink.count() < 2000 {
        assert!(Instant::now() < deadline, "only {} of 2000 delivered after the restart", sink.count());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let mut per_reader: BTreeMap<String, usize> = BTreeMap::new();
    for m in sink.messages() {
        let to = header(&m, "To").unwrap_or_default();
        *per_reader.entry(to).or_default() += 1;
    }
    let twice: Vec<_> = per_reader.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "readers without exactly one copy: {twice:?}");
    assert_eq!(per_reader.len(), 2000, "every reader got the issue");
    let status = run(&["newsletter", "status"], &data);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["issues"][0]["delivery"]["sent"], 2000, "{status}");
    stop_gracefully(server);
}

#[actix_rt::test]
async fn signed_bounce_and_complaint_notices_stop_mail_and_forged_ones_are_refused() {
    let h = Harness::start(Setup { load: false, ..Setup::default() }, |c| {
        c.mail_webhook_secrets = vec!["whsec_mail".into()]
    })
    .await;
    let app = app!(h);
    let subs = Subscribers::open(&h.state.engine.db).unwrap();
    let body = citecast::newsletter::admin::ImportBody {
        subscribers: ["a@example.org", "b@example.org"]
            .iter()
            .map(|e| citecast::newsletter::admin::Imported { email: e.to_string(), name: None })
            .collect(),
        confirmed: true,
    };
    citecast::newsletter::admin::import(&subs, &body, 0).unwrap();
    let send = |event: serde_json::Value, secret: &str| {
        let body = event.to_string();
        let t = citecast_actors::dates::now_secs();
        let sig = citecast::billing::signature::sign(secret.as_bytes(), t, body.as_bytes());
        test::TestRequest::post()
            .uri("/webhooks/mail")
            .insert_header(("stripe-signature", format!("t={t},v1={sig}")))
            .insert_header(("content-type", "application/json"))
            .set_payload(body)
            .to_request()
    };
    let forged = send(serde_json::json!({"id": "e0", "type": "bounce", "email": "a@example.org"}), "guess");
    assert_eq!(test::call_service(&app, forged).await.status().as_u16(), 400);
    assert_eq!(subs.by_email("a@example.org").unwrap().unwrap().state, SubscriberState::Confirmed);
    for (id, kind, email, state) in [
        ("e1", "bounce", "a@example.org", SubscriberState::Bounced),
        ("e2", "complaint", "b@example.org", SubscriberState::Complained),
    ] {
        let res = test::call_service(
            &app,
            send(serde_json::json!({"id": id, "type": kind, "email": email}), "whsec_mail"),
        )
        .await;
        assert_eq!(res.status().as_u16(), 200);
        assert_eq!(subs.by_email(email).unwrap().unwrap().state, state);
    }
    // A suppressed address signing up again gets the same answer and no mail.
    assert_eq!(
        subs.subscribe("a@example.org", None, &[], 10_000).unwrap(),
        citecast::newsletter::store::Signup::Quiet
    );
}
