//! The support jobs: `support_escalation` (every 10 minutes) posts each ticket whose
//! first response is past the 4-hour target to the operator's alert webhook, once, and
//! records it (without a webhook the operator is mailed instead); `nps` (daily) mails
//! the survey link to customers 30 days after their sign-up, once each.

use std::sync::Arc;

use crate::accounts::{AccountStore, CustomerStatus, Logins};
use crate::ops::alerts::{Notification, Severity, Transition, WebhookSink};
use crate::ops::jobs::{fail, spec, Job, JobContext, JobResult};
use crate::outbound::mail::{Mail, Mailer};

use super::page::when;
use super::store::Support;
use super::{duration_words, Ticket, FIRST_RESPONSE_TARGET_SECS};

pub fn jobs() -> Vec<Job> {
    vec![
        Job {
            spec: spec("support_escalation", "every 10m", 300, None),
            run: |ctx| Box::pin(escalation(ctx)),
        },
        Job { spec: spec("nps", "daily 10:00", 3600, None), run: |ctx| Box::pin(nps(ctx)) },
    ]
}

/// The server's mailer and link base (from the billing settings the server hands the
/// scheduler), else the outbox and no base, as the billing job does.
fn mail_settings(ctx: &JobContext) -> Result<(Arc<Mailer>, String), (u64, String)> {
    if let Some(b) = &ctx.billing {
        return Ok((b.mailer.clone(), b.base_url.clone()));
    }
    let outbox = ctx.config.data_dir.join("outbox");
    let mailer = Mailer::new(None, "citecast <noreply@citecast.localhost>", &outbox).map_err(fail)?;
    Ok((Arc::new(mailer), String::new()))
}

async fn escalation(ctx: JobContext) -> JobResult {
    let sink = match ctx.config.alert_webhook.as_deref().filter(|u| !u.trim().is_empty()) {
        Some(url) => Some(WebhookSink::new(url).map_err(fail)?),
        None => None,
    };
    let (mailer, base_url) = mail_settings(&ctx)?;
    let db = ctx.engine.db.clone();
    let now = citecast_actors::dates::now_secs();
    actix_web::rt::task::spawn_blocking(move || escalate_overdue(&db, sink.as_ref(), &mailer, &base_url, now))
        .await
        .map_err(fail)?
}

/// The alert an overdue ticket raises: the same JSON as the monitor's alerts, so the
/// receiver that pages the operator needs nothing new.
pub fn overdue_notification(t: &Ticket, now: i64, base_url: &str) -> Notification {
    Notification {
        alert: "support-first-response-overdue".into(),
        state: Transition::Firing,
        severity: Severity::Warning,
        value: Some((now - t.opened) as f64 / 3600.0),
        threshold: FIRST_RESPONSE_TARGET_SECS as f64 / 3600.0,
        since: t.due(),
        at: now,
        runbook: format!("{base_url}/admin/support/{}", t.id),
        description: format!(
            "Ticket {} from {} has waited {} without an answer (target {}): {}",
            t.id,
            t.customer_id,
            duration_words(now - t.opened),
            duration_words(FIRST_RESPONSE_TARGET_SECS),
            t.subject
        ),
    }
}

/// Escalates every overdue ticket not escalated yet: to the webhook when one is
/// configured, else by mail to the operator; each delivered escalation is recorded on
/// the ticket, so it is sent once. A failed delivery is retried on the next run.
pub fn escalate_overdue(
    db: &sled::Db,
    sink: Option<&WebhookSink>,
    mailer: &Mailer,
    base_url: &str,
    now: i64,
) -> JobResult {
    let support = Support::open(db).map_err(fail)?;
    let due: Vec<Ticket> =
        support.tickets().map_err(fail)?.into_iter().filter(|t| t.needs_escalation(now)).collect();
    let (mut done, mut failed) = (0u64, 0u64);
    for t in &due {
        let n = overdue_notification(t, now, base_url);
        let sent = match sink {
            Some(s) => s.deliver(&n).map(|_| "webhook").map_err(|e| e.to_string()),
            None => mailer
                .send(&Mail {
                    to: super::operator_address(mailer),
                    subject: format!("[support] OVERDUE {}: {}", t.id, t.subject),
                    text: format!(
                        "{}\n\nOpened {} UTC, due {} UTC.\nSee {base_url}/admin/support/{} and reply with `citecast support reply {} --message ...`.\n",
                        n.description,
                        when(t.opened),
                        when(t.due()),
                        t.id,
                        t.id
                    ),
                    html: None,
                    headers: Vec::new(),
                })
                .map(|_| "mail")
                .map_err(|e| e.to_string()),
        };
        match sent {
            Ok(channel) => match support.record_escalation(&t.id, channel, now) {
                Ok(_) => {
                    done += 1;
                    tracing::warn!(ticket = %t.id, channel, "overdue support ticket escalated");
                }
                Err(e) => {
                    failed += 1;
                    tracing::error!(ticket = %t.id, error = %e, "escalation sent but not recorded");
                }
            },
            Err(e) => {
                failed += 1;
                tracing::error!(ticket = %t.id, error = %e, "overdue support ticket not escalated");
            }
        }
    }
    if failed > 0 {
        return Err((done, format!("{failed} overdue tickets not escalated; see the log")));
    }
    Ok(done)
}

async fn nps(ctx: JobContext) -> JobResult {
    let (mailer, base_url) = mail_settings(&ctx)?;
    let (db, accounts, budget) = (ctx.engine.db.clone(), ctx.accounts.clone(), ctx.budget);
    let now = citecast_actors::dates::now_secs();
    actix_web::rt::task::spawn_blocking(move || {
        // The links are signed with the site secret the server keeps in the store; a store
        // no server has opened yet has none, and no customers either.
        let meta = db.open_tree(citecast_actors::migrate::META_TREE).map_err(fail)?;
        let Some(secret) = meta.get("site_secret").map_err(fail)?.filter(|s| s.len() >= 32) else {
            tracing::info!("no site secret yet; NPS surveys wait for the server's first start");
            return Ok(0);
        };
        send_surveys(&db, accounts.as_ref(), &mailer, &base_url, &secret, now, budget)
    })
    .await
    .map_err(fail)?
}

/// Mails the survey to every active customer whose sign-up is 30 days old (see
/// [`super::survey_due`]) and who has neither been sent it nor answered; at most
/// `budget` mails. Each mail sent is recorded, so a retry sends only the rest.
pub fn send_surveys(
    db: &sled::Db,
    accounts: &dyn AccountStore,
    mailer: &Mailer,
    base_url: &str,
    secret: &[u8],
    now: i64,
    budget: Option<u64>,
) -> JobResult {
    let support = Support::open(db).map_err(fail)?;
    let logins = Logins::open(db).map_err(fail)?;
    let (mut sent, mut failed) = (0u64, 0u64);
    let mut after: Option<String> = None;
    loop {
        let page = accounts.customers(after.as_deref(), 500).map_err(|e| (sent, e.to_string()))?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for c in &page {
            if budget.is_some_and(|b| sent >= b) {
                return Ok(sent);
            }
            if c.status != CustomerStatus::Active {
                continue;
            }
            let Some(login) = logins.login(&c.id).map_err(|e| (sent, e.to_string()))? else { continue };
            if !super::survey_due(login.signed_up, now)
                || support.survey_sent(&c.id).map_err(|e| (sent, e.to_string()))?.is_some()
                || support.survey_answer(&c.id).map_err(|e| (sent, e.to_string()))?.is_some()
            {
                continue;
            }
            let token = super::survey_token(secret, &c.id);
            let mail = Mail {
                to: c.email.clone(),
                subject: "One question about citecast".into(),
                text: format!(
                    "Hello {},\n\nyou have used citecast for a month now. How likely are you to recommend it to a colleague, from 0 to 10?\n\nAnswer here (one click, and a comment if you like): {base_url}/nps?token={token}\n\nIt is one question, asked once. Thank you!\n",
                    c.name
                ),
                html: None,
                headers: Vec::new(),
            };
            match mailer.send(&mail) {
                Ok(_) => {
                    support.mark_survey_sent(&c.id, now).map_err(|e| (sent, e.to_string()))?;
                    sent += 1;
                }
                Err(e) => {
                    failed += 1;
                    tracing::warn!(customer = %c.id, error = %e, "NPS survey not sent");
                }
            }
        }
    }
    if failed > 0 {
        return Err((sent, format!("{failed} survey mails failed; see the log")));
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A webhook receiver answering 200 to each connection; returns the bodies it got.
    fn receiver(n: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut bodies = Vec::new();
            for _ in 0..n {
                let (mut s, _) = listener.accept().unwrap();
                s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let k = s.read(&mut chunk).unwrap_or(0);
                    buf.extend_from_slice(&chunk[..k]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(i) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if buf.len() >= i + 4 + len {
                            bodies.push(text[i + 4..].to_string());
                            break;
                        }
                    }
                    if k == 0 {
                        break;
                    }
                }
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").unwrap();
            }
            bodies
        });
        (url, handle)
    }

    #[test]
    fn an_overdue_ticket_is_escalated_to_the_webhook_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("db")).unwrap();
        let s = Support::open(&db).unwrap();
        let h = 3600;
        let now = 100 * h;
        let late = s.open_ticket("cus_a", "Forecasts down", "503 everywhere", now - 5 * h).unwrap();
        let recent = s.open_ticket("cus_b", "Question", "How?", now - h).unwrap();
        let answered = s.open_ticket("cus_c", "Old", "x", now - 9 * h).unwrap();
        s.reply(&answered.id, None, super::super::Author::Operator, "Done", now - 8 * h).unwrap();
        let mailer = Mailer::new(None, "citecast <noreply@example.org>", &dir.path().join("outbox")).unwrap();
        let (url, handle) = receiver(1);
        let sink = WebhookSink::new(&url).unwrap();
        assert_eq!(escalate_overdue(&db, Some(&sink), &mailer, "https://c.example", now), Ok(1));
        let bodies = handle.join().unwrap();
        let v: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
        assert_eq!(v["alert"], "support-first-response-overdue");
        assert_eq!(v["value"], 5.0);
        assert!(v["description"].as_str().unwrap().contains(&late.id));
        // Recorded: a second run sends nothing (no receiver is listening any more).
        assert_eq!(escalate_overdue(&db, Some(&sink), &mailer, "https://c.example", now + h), Ok(0));
        assert_eq!(s.escalations().unwrap().len(), 1);
        assert!(s.ticket(&recent.id).unwrap().unwrap().escalated.is_none());
        // Without a webhook the operator is mailed instead (here: the outbox).
        let later = s.open_ticket("cus_d", "Again", "y", now).unwrap();
        assert_eq!(escalate_overdue(&db, None, &mailer, "", now + 5 * h), Ok(2));
        assert_eq!(
            s.escalations().unwrap().iter().find(|e| e.ticket_id == later.id).unwrap().channel,
            "mail"
        );
        assert_eq!(std::fs::read_dir(dir.path().join("outbox")).unwrap().count(), 2);
    }
}
