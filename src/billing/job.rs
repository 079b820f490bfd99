//! The `billing` job: daily, ends trials (first invoices), renews periods (applying
//! scheduled changes and cancellations), starts dunning for overdue invoices and sends its
//! reminders, pausing when they run out ([`Billing::run_daily`]). Then the API tier of
//! each changed customer follows its plan ([`super::sync_tier`]) and each notice becomes
//! a plain-text mail. Running it twice the same day does nothing the second time.

use std::sync::Arc;

use citecast_actors::dates;

use super::{format_money, Billing, Invoice, Notice, NoticeKind, Prices, Subscription};
use crate::accounts::tiers::Tiers;
use crate::accounts::AccountStore;
use crate::ops::jobs::{fail, spec, Job, JobContext, JobResult};
use crate::outbound::mail::{Mail, Mailer};

pub fn jobs() -> Vec<Job> {
    vec![Job { spec: spec("billing", "daily 00:30", 600, None), run: |ctx| Box::pin(run(ctx)) }]
}

/// What the billing job needs beyond the engine: the server hands its own
/// ([`crate::ops::jobs::Scheduler::with_billing`]).
#[derive(Clone)]
pub struct BillingJobSettings {
    pub billing: Arc<Billing>,
    /// The tier table prices are read from.
    pub tiers: Tiers,
    pub mailer: Arc<Mailer>,
    /// Where links in mail point, without a trailing slash.
    pub base_url: String,
}

async fn run(ctx: JobContext) -> JobResult {
    let settings = match ctx.billing.clone() {
        Some(s) => s,
        None => {
            // A scheduler built without the server's settings (tools, tests): the store
            // is the same; mail goes to the outbox.
            let billing = Arc::new(Billing::open(&ctx.engine.db).map_err(fail)?);
            let outbox = ctx.config.data_dir.join("outbox");
            let mailer = Mailer::new(None, "citecast <noreply@citecast.localhost>", &outbox).map_err(fail)?;
            BillingJobSettings {
                billing,
                tiers: Tiers::builtin(),
                mailer: Arc::new(mailer),
                base_url: String::new(),
            }
        }
    };
    let (accounts, db) = (ctx.accounts.clone(), ctx.engine.db.clone());
    actix_web::rt::task::spawn_blocking(move || daily(&settings, accounts.as_ref(), &db))
        .await
        .map_err(fail)?
}

/// Runs the day's billing and passes its changes on; the number of changes is the job's
/// operations. Tier and mail failures are logged and fail the run after all changes are
/// handled (the changes themselves are stored and not redone by a retry).
pub fn daily(settings: &BillingJobSettings, accounts: &dyn AccountStore, db: &sled::Db) -> JobResult {
    let prices = Prices::from_tiers(&settings.tiers);
    // Each customer renews at the prices recorded for them at sign-up, if any.
    let recorded = crate::pricing::all_customer_prices(db).map_err(fail)?;
    let prices_of = |c: &str| prices.clone().with_recorded(recorded.get(c));
    let changes =
        settings.billing.run_daily_with(dates::today(), dates::now_secs(), &prices_of).map_err(fail)?;
    let mut failures = 0u64;
    for change in &changes {
        if let Err(e) = super::sync_tier(accounts, change) {
            failures += 1;
            tracing::error!(customer = %change.subscription.customer_id, error = %e, "tier not synced after billing");
        }
        failures +=
            send_notices(&settings.mailer, accounts, &settings.billing, &settings.base_url, &change.notices);
    }
    let n = changes.len() as u64;
    if failures > 0 {
        return Err((n, format!("{failures} tier updates or mails failed; see the log")));
    }
    Ok(n)
}

/// Sends the mails of `notices` (on the blocking pool: SMTP blocks). Failures are
/// logged, never returned: the change they report is stored whatever the mail does.
pub async fn mail_notices(
    mailer: Arc<Mailer>,
    accounts: Arc<dyn AccountStore>,
    billing: Arc<Billing>,
    base_url: &str,
    notices: &[Notice],
) {
    if notices.is_empty() {
        return;
    }
    let (base_url, notices) = (base_url.to_string(), notices.to_vec());
    let sent = actix_web::rt::task::spawn_blocking(move || {
        send_notices(&mailer, accounts.as_ref(), &billing, &base_url, &notices)
    })
    .await;
    if sent.is_err() {
        tracing::error!("billing mail not sent: the blocking pool is gone");
    }
}

/// Sends each notice's mail; answers how many failed (each is logged).
pub fn send_notices(
    mailer: &Mailer,
    accounts: &dyn AccountStore,
    billing: &Billing,
    base_url: &str,
    notices: &[Notice],
) -> u64 {
    crate::referrals::on_notices(billing, notices);
    let mut failures = 0;
    for n in notices {
        if let Err(e) = send_notice(mailer, accounts, billing, base_url, n) {
            failures += 1;
            tracing::error!(customer = %n.customer_id, kind = ?n.kind, error = %e, "billing mail not sent");
        }
    }
    failures
}

fn send_notice(
    mailer: &Mailer,
    accounts: &dyn AccountStore,
    billing: &Billing,
    base_url: &str,
    notice: &Notice,
) -> Result<(), String> {
    let customer = accounts
        .customer(&notice.customer_id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("customer {} not found", notice.customer_id))?;
    let sub = billing
        .subscription(&notice.customer_id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("customer {} has no subscription", notice.customer_id))?;
    let invoice = match &notice.invoice_id {
        Some(id) => billing.invoice(id).map_err(|e| e.to_string())?,
        None => None,
    };
    let mail = mail_for(notice, &sub, invoice.as_ref(), &customer.email, base_url);
    mailer.send(&mail).map(|_| ()).map_err(|e| e.to_string())
}

/// The plain-text mail for `notice`.
pub fn mail_for(
    notice: &Notice,
    sub: &Subscription,
    invoice: Option<&Invoice>,
    to: &str,
    base_url: &str,
) -> Mail {
    let link = format!("{base_url}/billing");
    let inv = |i: &Invoice| {
        format!(
            "Invoice {} ({} to {}): {}, due {}.",
            i.id,
            dates::format(i.period.start),
            dates::format(i.period.end),
            format_money(i.total_minor, &i.currency),
            dates::format(i.due)
        )
    };
    let about = invoice.map(inv).unwrap_or_default();
    let id = invoice.map(|i| i.id.as_str()).unwrap_or("");
    let (subject, text) = match notice.kind {
        NoticeKind::Receipt => (
            format!("Receipt for invoice {id}"),
            format!("Thank you: we received your payment.\n\n{about}\nPaid."),
        ),
        NoticeKind::InvoiceIssued => (
            format!("Your citecast invoice {id}"),
            format!("A new invoice for your subscription is ready.\n\n{about}"),
        ),
        NoticeKind::PaymentFailed => (
            format!("Payment of invoice {id} failed"),
            format!(
                "We could not collect the payment of your invoice, so your subscription is past due.\n\n{about}\n\n\
                 Your plan keeps working while we remind you; please pay it soon."
            ),
        ),
        NoticeKind::DunningReminder => (
            format!("Reminder: invoice {id} is unpaid"),
            format!("Your invoice is still unpaid.\n\n{about}\n\nWithout payment your subscription will be paused."),
        ),
        NoticeKind::Paused => (
            "Your citecast subscription is paused".to_string(),
            if about.is_empty() {
                "Your subscription is paused; your API keys work at the free tier's limits until you resume it."
                    .to_string()
            } else {
                format!(
                    "Your subscription is paused because an invoice is unpaid; your API keys work at the free \
                     tier's limits until it is paid.\n\n{about}"
                )
            },
        ),
        NoticeKind::Canceled if sub.cancel_at_period_end => (
            "Your citecast subscription will end".to_string(),
            format!(
                "Your subscription ends on {}; until then nothing changes. You can undo this until that day.",
                dates::format(sub.period.end)
            ),
        ),
        NoticeKind::Canceled => (
            "Your citecast subscription is canceled".to_string(),
            "Your subscription is canceled; your API keys work at the free tier's limits.".to_string(),
        ),
        NoticeKind::Refunded => (format!("Refund of invoice {id}"), format!("We refunded your invoice.\n\n{about}")),
        NoticeKind::PlanChanged => match &sub.scheduled {
            Some(next) => (
                "Your citecast plan will change".to_string(),
                format!(
                    "Your plan changes to {} ({}) on {}.",
                    next.tier,
                    next.interval.label(),
                    dates::format(sub.period.end)
                ),
            ),
            None => (
                "Your citecast plan changed".to_string(),
                format!("Your plan is now {} ({}).\n\n{about}", sub.plan.tier, sub.plan.interval.label()),
            ),
        },
    };
    let text = format!("{}\n\nYour plan, invoices and receipts: {link}\n", text.trim_end());
    Mail { to: to.to_string(), subject, text, html: None, headers: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::{Interval, Plan};

    #[test]
    fn mails_name_the_invoice_amount_and_link() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let b = Billing::open(&db).unwrap();
        let p = Prices::from_tiers(&Tiers::builtin());
        let day = dates::from_ymd(2027, 1, 1);
        b.start("cus_a", &Plan::new("pro", Interval::Monthly), &p, day, 0, "t").unwrap();
        let change = b.run_daily(day + 14, 0, &p).unwrap().remove(0);
        let inv = change.invoice.clone().unwrap();
        let mail = mail_for(
            &change.notices[0],
            &change.subscription,
            Some(&inv),
            "a@example.org",
            "https://c.example",
        );
        assert_eq!(mail.subject, "Your citecast invoice inv_000001");
        assert!(mail.text.contains("$49.00"), "{}", mail.text);
        assert!(mail.text.contains("https://c.example/billing"));
    }
}
