//! The newsletter at scale (issue 12's targets): building every reader's own issue for
//! 10,000 subscribers with subject sections (picking unseen papers per subject, queueing
//! each copy and recording what it shows, in sled transactions) and rendering every copy
//! (HTML and text); then delivering 2,000 copies to a real local SMTP server (aiosmtpd,
//! as the tests use) over one kept connection, each committed durably before its end.
//!
//! Run with `cargo bench --bench newsletter`; under `cargo test --benches` a tiny run.
//! The delivery part needs `python3 -c "import aiosmtpd"`; without it, it says so.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use citecast::newsletter::delivery::{self, DeliverySettings};
use citecast::newsletter::store::{IssueStore, SledIssues, Subscribers};
use citecast::newsletter::subscribers::{SubscriberState, TOPICS};
use citecast::newsletter::{Issue, Item};
use citecast::outbound::mail::Mailer;

fn items(n: usize) -> Vec<Item> {
    (0..n)
        .map(|i| Item {
            paper_id: format!("hep-th/{:07}", 9_000_000 + i),
            title: format!("On the $AdS_5 \\times S^5$ background, part {i}"),
            authors: vec!["A. Author".into(), "B. Author".into()],
            submitted: "2003-04-01".into(),
            probability: 1.0 - i as f64 / n as f64,
            label: if i < n / 10 { "high".into() } else { "low".into() },
            why: "Its authors' earlier papers were cited often.".into(),
        })
        .collect()
}

fn settings(
    db: &sled::Db,
    subs: Subscribers,
    smtp: Option<&str>,
    outbox: &std::path::Path,
) -> DeliverySettings {
    DeliverySettings {
        subscribers: subs,
        issues: Arc::new(SledIssues::open(db).unwrap()),
        mailer: Arc::new(Mailer::new(smtp, "citecast <news@example.org>", outbox).unwrap()),
        secret: b"0123456789abcdef0123456789abcdef".to_vec(),
        base_url: "https://citecast.example".into(),
        rate_per_minute: 1_000_000,
        commit_log: outbox.join("newsletter-commits.log"),
    }
}

fn main() {
    let (readers, week, sent) = if common::bench_mode() { (10_000, 400, 2_000) } else { (200, 50, 50) };
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("store")).unwrap();
    let subs = Subscribers::open(&db).unwrap();
    let issues = SledIssues::open(&db).unwrap();
    let all = items(week);
    let issue = Issue {
        number: 0,
        built_at: 0,
        week_from: "2003-03-26".into(),
        week_to: "2003-04-01".into(),
        model_version: "bench".into(),
        papers_considered: week,
        items: all[..10].to_vec(),
    };
    let (number, _) = issues.save(issue.clone()).unwrap();
    // Readers follow 0 to 3 subjects; each subject matches a third of the week's papers.
    let mut people = Vec::with_capacity(readers);
    for i in 0..readers {
        let mut s = subs.import(&format!("reader{i}@example.org"), None, true, 0).unwrap().unwrap();
        s.topics = (0..i % 4).map(|k| TOPICS[(i + k) % TOPICS.len()].0.to_string()).collect();
        s.state = SubscriberState::Confirmed;
        people.push(s);
    }
    let matches: HashMap<String, HashSet<String>> = TOPICS
        .iter()
        .enumerate()
        .map(|(t, (_, _, q))| {
            let hits =
                all.iter().enumerate().filter(|(i, _)| (i + t) % 3 == 0).map(|(_, it)| it.paper_id.clone());
            (q.to_string(), hits.collect())
        })
        .collect();

    let t = Instant::now();
    let queued =
        citecast::newsletter::job::build_personal(&subs, number, &people, &all, &matches, 0).unwrap();
    let build = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let s = settings(&db, subs.clone(), None, dir.path());
    let stored = issues.get(number).unwrap().unwrap();
    let mut bytes = 0usize;
    for (_, q) in subs.due(i64::MAX, usize::MAX).unwrap() {
        let reader = subs.get(&q.subscriber_id).unwrap().unwrap();
        let m = delivery::render(&s, "example.org", &stored, &reader, &q.sections).unwrap();
        bytes += m.text.len() + m.html.as_ref().map_or(0, String::len);
    }
    let render = t.elapsed().as_secs_f64();
    println!(
        "personal issues: {queued} readers queued in {build:.2} s, rendered in {render:.2} s \
         ({:.1} KiB per copy); together {:.2} s (target: under 10 s for 10,000)",
        bytes as f64 / queued.max(1) as f64 / 1024.0,
        build + render
    );

    // Delivery to a real SMTP server.
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("delivery: skipped (python3 cannot import aiosmtpd; pip install aiosmtpd)");
        return;
    }
    let sink_dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/integration/support/smtp_sink.py");
    let mut sink = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(sink_dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(sink.stdout.take().unwrap()).read_line(&mut line).unwrap();
    // A fresh store holding `sent` queued copies.
    let dir2 = tempfile::tempdir().unwrap();
    let db2 = sled::open(dir2.path().join("store")).unwrap();
    let subs2 = Subscribers::open(&db2).unwrap();
    let (n2, _) = SledIssues::open(&db2).unwrap().save(issue).unwrap();
    let people2: Vec<_> = (0..sent)
        .map(|i| subs2.import(&format!("r{i}@example.org"), None, true, 0).unwrap().unwrap())
        .collect();
    citecast::newsletter::job::build_personal(&subs2, n2, &people2, &all, &matches, 0).unwrap();
    let url = format!("smtp://127.0.0.1:{port}");
    let s2 = settings(&db2, subs2.clone(), Some(&url), dir2.path());
    let t = Instant::now();
    let handled = delivery::drain(&s2).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let _ = sink.kill();
    let _ = sink.wait();
    let stats = subs2.stats().unwrap()[0].1.clone();
    println!(
        "delivery: {handled} copies in {secs:.2} s = {:.0} messages/s over one connection, each committed \
         durably before its end (target: at least 100/s); sent {}, failed {}, deferred {}",
        handled as f64 / secs,
        stats.sent,
        stats.failed,
        stats.deferred
    );
}
