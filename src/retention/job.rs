//! The daily `winback` job: 30 days after a cancellation, one mail with a link back
//! (the pricing page; the account, keys and data were kept). One per cancellation,
//! recorded before sending is reported, never to a customer who already came back.

use citecast_actors::dates::now_secs;

use crate::billing::subscription::Status;
use crate::ops::jobs::{fail, spec, Job};

/// Days after a cancellation before the mail.
pub const AFTER_DAYS: i64 = 30;

pub fn jobs() -> Vec<Job> {
    vec![Job {
        spec: spec("winback", "daily 10:00", 600, None),
        run: |ctx| {
            Box::pin(async move {
                let Some(b) = ctx.billing.clone() else { return Ok(0) };
                let accounts = ctx.accounts.clone();
                let db = ctx.engine.db.clone();
                let sent = actix_web::rt::task::spawn_blocking(move || -> Result<u64, String> {
                    let wins = super::store::WinBacks::open(&db).map_err(|e| e.to_string())?;
                    let now = now_secs();
                    let mut sent = 0;
                    for s in b.billing.subscriptions().map_err(|e| e.to_string())? {
                        if s.status != Status::Canceled {
                            continue;
                        }
                        let history = b.billing.audit(&s.customer_id).map_err(|e| e.to_string())?;
                        let Some(canceled) = history.iter().rev().find(|r| r.to == Status::Canceled).map(|r| r.at) else {
                            continue;
                        };
                        if now - canceled < AFTER_DAYS * 86_400 || wins.sent(&s.customer_id, canceled).map_err(|e| e.to_string())? {
                            continue;
                        }
                        let Some(c) = accounts.customer(&s.customer_id).map_err(|e| e.to_string())? else { continue };
                        if c.email.ends_with(crate::demo::DEMO_DOMAIN) {
                            continue;
                        }
                        let mail = crate::outbound::mail::Mail {
                            to: c.email.clone(),
                            subject: "Your citecast account is still here".into(),
                            text: format!(
                                "Hello {},\n\na month ago you canceled your citecast subscription. Your account, API keys and data are still here, on the free plan.\n\nIf forecasts would help again, pick a plan here (no lock-in, cancel any time):\n\n{}/pricing\n\nThis is the only reminder we send.\n",
                                c.name, b.base_url
                            ),
                            html: None,
                            headers: Vec::new(),
                        };
                        match b.mailer.send(&mail) {
                            Ok(_) => {
                                wins.record(&s.customer_id, canceled, now).map_err(|e| e.to_string())?;
                                sent += 1;
                            }
                            // A refused address is not retried; a deferral is, tomorrow.
                            Err(e) if !e.is_transient() => {
                                wins.record(&s.customer_id, canceled, now).map_err(|e| e.to_string())?;
                                tracing::warn!(customer = %s.customer_id, error = %e, "win-back mail refused");
                            }
                            Err(e) => tracing::warn!(customer = %s.customer_id, error = %e, "win-back mail deferred"),
                        }
                    }
                    Ok(sent)
                })
                .await
                .map_err(fail)?
                .map_err(fail)?;
                Ok(sent)
            })
        },
    }]
}
