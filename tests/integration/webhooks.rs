//! Outgoing webhooks against local receivers: a contest's and a newsletter's
//! announcements arrive signed (checked with the payment webhooks' verifier); a receiver
//! that keeps failing gets every retry with backoff, then the delivery is a dead letter
//! on `/admin/webhooks`, and an operator can send it again.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use citecast::webhooks::{self, Announcement, Policy};
use serde_json::{json, Value};

use crate::common::*;
use crate::contests::admin;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    signature: Option<String>,
    event: Option<String>,
    body: String,
}

/// A receiver answering every request with `status`; what it saw is kept.
fn receiver(status: &'static str) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let (mut length, mut signature, mut event) = (0usize, None, None);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
                    match name.as_str() {
                        "content-length" => length = value.parse().unwrap_or(0),
                        "citecast-signature" => signature = Some(value),
                        "citecast-event" => event = Some(value),
                        _ => {}
                    }
                }
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            log.lock().unwrap().push(Seen {
                signature,
                event,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            let mut conn = conn;
            let _ = write!(conn, "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (url, seen)
}

fn wait_for(seen: &Arc<Mutex<Vec<Seen>>>, n: usize) -> Vec<Seen> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = seen.lock().unwrap().clone();
        if got.len() >= n {
            return got;
        }
        assert!(Instant::now() < deadline, "the receiver got {} of {n} requests", got.len());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[actix_rt::test]
async fn announcements_arrive_signed_and_a_failing_receiver_ends_in_the_dead_letters() {
    let h = Harness::new().await;
    let app = app!(h);
    let (good_url, good) = receiver("200 OK");
    let (bad_url, bad) = receiver("500 Internal Server Error");

    let (status, v) = admin!(app, "POST", "/admin/webhooks", json!({ "url": "ftp://x", "format": "json" }));
    assert_eq!(status, 400, "{v}");
    let (status, v) = admin!(app, "POST", "/admin/webhooks", json!({ "url": good_url, "format": "json" }));
    assert_eq!(status, 201, "{v}");
    let secret = v["secret"].as_str().unwrap().to_string();
    assert!(v["endpoint"].get("secret").is_none(), "the secret is shown once, beside the endpoint");
    let (status, v) = admin!(
        app,
        "POST",
        "/admin/webhooks",
        json!({ "url": bad_url, "format": "discord", "events": ["contest.opened"] })
    );
    assert_eq!(status, 201, "{v}");
    let bad_endpoint = v["endpoint"]["id"].as_str().unwrap().to_string();

    // A contest opens: both receivers are told, the request is not held up by them.
    let now = citecast_actors::dates::now_secs();
    let (status, v) = admin!(
        app,
        "POST",
        "/admin/contests",
        json!({ "title": "Signed", "target": "top_10_percent", "pool": { "from": "1998-06-01", "to": "1998-06-30" }, "pick_limit": 2, "deadline": now + 600, "as_of": "1998-06-30" })
    );
    assert_eq!(status, 201, "{v}");
    // The newsletter's announcement, as its job makes it.
    let issue = Announcement::NewsletterIssue {
        number: 7,
        week_from: "2003-04-24".into(),
        week_to: "2003-04-30".into(),
        path: "/newsletter/7".into(),
        headline: "A paper".into(),
    };
    assert_eq!(
        webhooks::announce(&h.state.engine.db, issue).unwrap(),
        1,
        "only the endpoint subscribed to it"
    );

    let got = wait_for(&good, 2);
    let now = citecast_actors::dates::now_secs();
    let mut events = Vec::new();
    for s in &got {
        let t = citecast::billing::signature::verify(
            s.signature.as_deref(),
            s.body.as_bytes(),
            &[secret.as_bytes()],
            now,
            300,
        );
        assert!(t.is_ok(), "{t:?} {s:?}");
        assert!(citecast::billing::signature::verify(
            s.signature.as_deref(),
            s.body.as_bytes(),
            &[b"wrong"],
            now,
            300
        )
        .is_err());
        let body: Value = serde_json::from_str(&s.body).unwrap();
        assert_eq!(s.event.as_deref(), body["event"].as_str());
        assert!(body["data"]["url"].as_str().unwrap().starts_with("http"), "{body}");
        events.push(body["event"].as_str().unwrap().to_string());
    }
    events.sort();
    assert_eq!(events, ["contest.opened", "newsletter.issue"]);

    // The failing receiver had its first attempt; each later pass retries after the backoff.
    wait_for(&bad, 1);
    let db = h.state.engine.db.clone();
    let policy = Policy { backoff: vec![30, 120, 600, 3600, 6 * 3600], timeout: Duration::from_secs(5) };
    let mut at = now;
    for attempt in 2..=6u32 {
        // Not due yet just before its time.
        let (d, p) = (db.clone(), policy.clone());
        let early = actix_web::rt::task::spawn_blocking(move || webhooks::deliver_due(&d, &p, at + 1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(early.failed + early.dead, 0, "attempt {attempt} came before its backoff");
        at += 7 * 3600;
        let (d, p) = (db.clone(), policy.clone());
        let pass = actix_web::rt::task::spawn_blocking(move || webhooks::deliver_due(&d, &p, at))
            .await
            .unwrap()
            .unwrap();
        if attempt < 6 {
            assert_eq!((pass.failed, pass.dead), (1, 0), "attempt {attempt}");
        } else {
            assert_eq!((pass.failed, pass.dead), (0, 1), "the last attempt dead-letters it");
        }
    }
    assert_eq!(bad.lock().unwrap().len(), 6);
    let discord: Value = serde_json::from_str(&bad.lock().unwrap()[0].body).unwrap();
    assert!(
        discord["content"].as_str().unwrap().contains("Signed")
            && discord["allowed_mentions"]["parse"] == json!([])
    );

    let req = actix_web::test::TestRequest::get()
        .uri("/admin/webhooks")
        .insert_header(("authorization", format!("Bearer {ADMIN_TOKEN}")))
        .to_request();
    let res = actix_web::test::call_service(&app, req).await;
    let page = String::from_utf8_lossy(&actix_web::test::read_body(res).await).into_owned();
    assert!(
        page.contains("class=\"dead\"") && page.contains(&bad_endpoint) && page.contains("answered 500"),
        "{page}"
    );
    let (status, v) = admin!(app, "GET", "/admin/webhooks/deliveries", json!(null));
    assert_eq!(status, 200);
    let dead = v["deliveries"].as_array().unwrap().iter().find(|d| d["state"] == "dead").unwrap().clone();
    assert_eq!(dead["attempts"], 6);

    // An operator sends the dead letter again: it is attempted at once.
    let (status, v) = admin!(
        app,
        "POST",
        &format!("/admin/webhooks/deliveries/{}/retry", dead["id"].as_str().unwrap()),
        json!({})
    );
    assert_eq!(status, 200, "{v}");
    wait_for(&bad, 7);
}
