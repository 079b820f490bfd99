//! Billing's sled trees: subscriptions, invoices (and their index per customer), the
//! ledger and credit balances, applied provider events, the audit of transitions and the
//! counters that number invoices. The only place that touches them.
//!
//! Every call that changes something runs as one sled transaction over all the trees, so
//! a subscription, the invoice it issues, the ledger entries, the audit record and the
//! provider event id that caused them are written together or not at all. The
//! transaction re-reads what it changes, so the daily job and a web request racing on
//! one customer cannot lose either's change (sled retries the loser). Records are JSON:
//! readable in a dump, and tolerant of fields added later.

use std::sync::Arc;

use citecast_actors::dates::{self, Day};
use citecast_actors::migrate::META_TREE;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError, TransactionalTree,
};
use sled::Transactional;

use super::error::BillingError;
use super::subscription::{transition, Event, Period, Status};
use super::{
    invoice_id, is_upgrade, next_period, number_lines, span, upgrade_lines, Applied, Change, Dunning,
    Invoice, InvoiceStatus, LedgerEntry, LedgerKind, Line, Notice, NoticeKind, PaymentEvent, Plan, Prices,
    Subscription, TransitionRecord, Upcoming, CURRENCY, DUE_DAYS, DUNNING_DAYS, MANUAL_PROVIDER, TRIAL_DAYS,
};

type Result<T, E = BillingError> = std::result::Result<T, E>;
type TxResult<T> = ConflictableTransactionResult<T, BillingError>;

/// Where billing's schema version is kept in the engine's `meta` tree.
const SCHEMA_KEY: &[u8] = b"billing_schema_version";
/// Version 1: the first. A later layout change migrates here, value by value.
const SCHEMA_VERSION: u8 = 1;

/// The actor of the daily job's changes in the audit.
pub const JOB_ACTOR: &str = "billing-job";
/// The actor of a payment provider's events.
pub const PROVIDER_ACTOR: &str = "provider";

/// Subscriptions, invoices and payments over the store's trees.
pub struct Billing {
    /// customer id → Subscription.
    subs: sled::Tree,
    /// invoice id → Invoice.
    invoices: sled::Tree,
    /// customer id · 0 · invoice number (u64 BE) → invoice id.
    customer_invoices: sled::Tree,
    /// customer id · 0 · seq (u64 BE) → LedgerEntry.
    ledger: sled::Tree,
    /// customer id → credit balance (JSON i64).
    balances: sled::Tree,
    /// provider event id → what it did (JSON), so a replay changes nothing.
    events: sled::Tree,
    /// customer id · 0 · seq (u64 BE) → TransitionRecord.
    audit: sled::Tree,
    /// name → u64 BE: `invoice`, `ledger`, `audit`.
    counters: sled::Tree,
}

/// Runs a billing call on the blocking pool, off the async workers.
pub async fn call<T, F>(billing: &Arc<Billing>, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Billing) -> Result<T> + Send + 'static,
{
    let billing = billing.clone();
    crate::engine::blocking(move || f(billing.as_ref()), || BillingError::Unavailable).await
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| BillingError::Corrupt(format!("{what}: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("billing records serialize")
}

fn owner_key(owner: &str, seq: u64) -> Vec<u8> {
    let mut k = owner.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn prefix(owner: &str) -> Vec<u8> {
    let mut k = owner.as_bytes().to_vec();
    k.push(0);
    k
}

fn abort<T>(e: BillingError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

fn check_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 200 || id.contains('\0') {
        return Err(BillingError::Invalid(format!("{what} must be 1 to 200 characters")));
    }
    Ok(())
}

/// The trees inside one transaction, and who acts when.
struct Tx<'a> {
    subs: &'a TransactionalTree,
    invoices: &'a TransactionalTree,
    customer_invoices: &'a TransactionalTree,
    ledger: &'a TransactionalTree,
    balances: &'a TransactionalTree,
    events: &'a TransactionalTree,
    audit: &'a TransactionalTree,
    counters: &'a TransactionalTree,
    now: i64,
    actor: &'a str,
}

impl Tx<'_> {
    fn sub(&self, customer_id: &str) -> TxResult<Option<Subscription>> {
        match self.subs.get(customer_id.as_bytes())? {
            Some(v) => Ok(Some(decode(&v, "subscription").map_err(ConflictableTransactionError::Abort)?)),
            None => Ok(None),
        }
    }

    /// The customer's subscription unless there is none or it is canceled.
    fn live_sub(&self, customer_id: &str) -> TxResult<Subscription> {
        match self.sub(customer_id)? {
            Some(s) if s.status != Status::Canceled => Ok(s),
            _ => abort(BillingError::NoSubscription(customer_id.to_string())),
        }
    }

    fn put_sub(&self, sub: &mut Subscription) -> TxResult<()> {
        sub.updated = self.now;
        self.subs.insert(sub.customer_id.as_bytes(), encode(sub))?;
        Ok(())
    }

    fn invoice(&self, id: &str) -> TxResult<Invoice> {
        match self.invoices.get(id.as_bytes())? {
            Some(v) => decode(&v, "invoice").map_err(ConflictableTransactionError::Abort),
            None => abort(BillingError::UnknownInvoice(id.to_string())),
        }
    }

    fn put_invoice(&self, inv: &Invoice) -> TxResult<()> {
        self.invoices.insert(inv.id.as_bytes(), encode(inv))?;
        Ok(())
    }

    fn next(&self, counter: &str) -> TxResult<u64> {
        let current = match self.counters.get(counter.as_bytes())? {
            Some(v) if v.len() == 8 => u64::from_be_bytes(v.as_ref().try_into().expect("8 bytes")),
            Some(_) => return abort(BillingError::Corrupt(format!("counter {counter}"))),
            None => 0,
        };
        let next = current + 1;
        self.counters.insert(counter.as_bytes(), &next.to_be_bytes())?;
        Ok(next)
    }

    fn balance(&self, customer_id: &str) -> TxResult<i64> {
        match self.balances.get(customer_id.as_bytes())? {
            Some(v) => decode(&v, "balance").map_err(ConflictableTransactionError::Abort),
            None => Ok(0),
        }
    }

    fn entry(
        &self,
        customer_id: &str,
        kind: LedgerKind,
        amount_minor: i64,
        invoice_id: Option<&str>,
        balance_minor: i64,
    ) -> TxResult<()> {
        let seq = self.next("ledger")?;
        let e = LedgerEntry {
            seq,
            at: self.now,
            customer_id: customer_id.to_string(),
            kind,
            amount_minor,
            currency: CURRENCY.to_string(),
            invoice_id: invoice_id.map(str::to_string),
            balance_minor,
        };
        self.ledger.insert(owner_key(customer_id, seq), encode(&e))?;
        Ok(())
    }

    fn record(&self, customer_id: &str, from: Option<Status>, to: Status, event: &str) -> TxResult<()> {
        let seq = self.next("audit")?;
        let r = TransitionRecord {
            at: self.now,
            from,
            to,
            event: event.to_string(),
            actor: self.actor.to_string(),
        };
        self.audit.insert(owner_key(customer_id, seq), encode(&r))?;
        Ok(())
    }

    /// Sets the status directly (a change the event table does not name), audited.
    fn set_status(&self, sub: &mut Subscription, to: Status, event: &str) -> TxResult<()> {
        if sub.status != to {
            self.record(&sub.customer_id, Some(sub.status), to, event)?;
            sub.status = to;
        }
        Ok(())
    }

    /// Applies a lifecycle event, refused as `transition_refused` when not allowed.
    fn apply(&self, sub: &mut Subscription, event: Event, label: &str) -> TxResult<()> {
        let to = transition(sub.status, event).map_err(|e| ConflictableTransactionError::Abort(e.into()))?;
        self.set_status(sub, to, label)
    }

    /// Issues an invoice for `lines`, spending the customer's credit balance on it first;
    /// a total at or below zero is settled by credit at once (below zero, the rest
    /// becomes credit for the next invoice).
    fn issue(
        &self,
        sub: &Subscription,
        period: Period,
        today: Day,
        mut lines: Vec<(String, i64)>,
    ) -> TxResult<Invoice> {
        let customer = &sub.customer_id;
        let subtotal: i64 = lines.iter().map(|l| l.1).sum();
        let before = self.balance(customer)?;
        let applied = if subtotal > 0 && before > 0 { before.min(subtotal) } else { 0 };
        if applied > 0 {
            lines.push(("Credit balance applied".to_string(), -applied));
        }
        let total = subtotal - applied;
        let number = self.next("invoice")?;
        let mut inv = Invoice {
            id: invoice_id(number),
            number,
            customer_id: customer.clone(),
            issued: today,
            due: today + DUE_DAYS,
            period,
            currency: sub.currency.clone(),
            lines: number_lines(lines),
            total_minor: total,
            status: InvoiceStatus::Open,
            paid_at: None,
            refunded_at: None,
            payment_ref: None,
        };
        let mut balance = before;
        self.entry(customer, LedgerKind::Invoiced, total, Some(&inv.id), balance)?;
        if applied > 0 {
            balance -= applied;
            self.entry(customer, LedgerKind::CreditApplied, -applied, Some(&inv.id), balance)?;
        }
        if total <= 0 {
            inv.status = InvoiceStatus::Paid;
            inv.paid_at = Some(self.now);
            inv.payment_ref = Some("credit".into());
            if total < 0 {
                balance -= total;
                self.entry(customer, LedgerKind::Credit, -total, Some(&inv.id), balance)?;
            }
        }
        if balance != before {
            self.balances.insert(customer.as_bytes(), encode(&balance))?;
        }
        self.put_invoice(&inv)?;
        self.customer_invoices.insert(owner_key(customer, number), inv.id.as_bytes())?;
        Ok(inv)
    }

    /// Marks an open invoice paid and returns its subscription to active when the
    /// payment was what held it back (first invoice, dunning).
    fn settle(&self, id: &str, reference: Option<&str>) -> TxResult<Change> {
        let mut inv = self.invoice(id)?;
        if inv.status != InvoiceStatus::Open {
            return abort(BillingError::InvoiceNotOpen { id: id.to_string(), status: inv.status.label() });
        }
        inv.status = InvoiceStatus::Paid;
        inv.paid_at = Some(self.now);
        inv.payment_ref = reference.map(str::to_string);
        self.put_invoice(&inv)?;
        let balance = self.balance(&inv.customer_id)?;
        self.entry(&inv.customer_id, LedgerKind::Paid, inv.total_minor, Some(id), balance)?;
        let mut sub = match self.sub(&inv.customer_id)? {
            Some(s) => s,
            None => return abort(BillingError::NoSubscription(inv.customer_id.clone())),
        };
        let dunned = sub.dunning.as_ref().is_some_and(|d| d.invoice_id == id);
        let reactivate = match sub.status {
            Status::Trialing => true,
            Status::PastDue => dunned || sub.dunning.is_none(),
            // A customer's own pause stays until they resume; a pause for non-payment ends.
            Status::Paused => dunned,
            Status::Active | Status::Canceled => false,
        };
        if reactivate {
            self.apply(&mut sub, Event::PaymentSucceeded, "payment_succeeded")?;
        }
        if dunned {
            sub.dunning = None;
        }
        self.put_sub(&mut sub)?;
        let notice = notice(&sub, NoticeKind::Receipt, Some(id));
        Ok(Change::new(sub, Some(inv), vec![notice]))
    }

    /// A failed payment of an open invoice: past due, and dunning starts.
    fn fail(&self, id: &str, today: Day) -> TxResult<Change> {
        let inv = self.invoice(id)?;
        let mut sub = match self.sub(&inv.customer_id)? {
            Some(s) => s,
            None => return abort(BillingError::NoSubscription(inv.customer_id.clone())),
        };
        let failing = matches!(sub.status, Status::Trialing | Status::Active | Status::PastDue);
        if inv.status != InvoiceStatus::Open || !failing {
            return Ok(Change::new(sub, Some(inv), Vec::new()));
        }
        self.apply(&mut sub, Event::PaymentFailed, "payment_failed")?;
        if sub.dunning.is_none() {
            sub.dunning = Some(Dunning::start(id, today));
        }
        self.put_sub(&mut sub)?;
        let notice = notice(&sub, NoticeKind::PaymentFailed, Some(id));
        Ok(Change::new(sub, Some(inv), vec![notice]))
    }
}

fn notice(sub: &Subscription, kind: NoticeKind, invoice_id: Option<&str>) -> Notice {
    Notice { kind, customer_id: sub.customer_id.clone(), invoice_id: invoice_id.map(str::to_string) }
}

fn renewal_line(prices: &Prices, plan: &Plan, period: Period, price: i64) -> Vec<(String, i64)> {
    vec![(format!("{}, {}", prices.describe(plan), span(period)), price)]
}

impl Billing {
    /// Opens the trees in `db` and records their schema version.
    pub fn open(db: &sled::Db) -> Result<Billing> {
        let meta = db.open_tree(META_TREE)?;
        match meta.get(SCHEMA_KEY)?.and_then(|v| v.first().copied()) {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(BillingError::Corrupt(format!(
                    "billing schema version {v} was written by a newer citecast"
                )))
            }
            Some(_) => {}
            None => {
                meta.insert(SCHEMA_KEY, &[SCHEMA_VERSION])?;
            }
        }
        Ok(Billing {
            subs: db.open_tree("billing_subscriptions")?,
            invoices: db.open_tree("billing_invoices")?,
            customer_invoices: db.open_tree("billing_customer_invoices")?,
            ledger: db.open_tree("billing_ledger")?,
            balances: db.open_tree("billing_balances")?,
            events: db.open_tree("billing_events")?,
            audit: db.open_tree("billing_audit")?,
            counters: db.open_tree("billing_counters")?,
        })
    }

    /// Runs `f` as one transaction over every billing tree.
    fn transact<T>(&self, now: i64, actor: &str, f: impl Fn(&Tx) -> TxResult<T>) -> Result<T> {
        let trees = (
            &self.subs,
            &self.invoices,
            &self.customer_invoices,
            &self.ledger,
            &self.balances,
            &self.events,
            &self.audit,
            &self.counters,
        );
        let result = trees.transaction(
            |(subs, invoices, customer_invoices, ledger, balances, events, audit, counters)| {
                let tx = Tx {
                    subs,
                    invoices,
                    customer_invoices,
                    ledger,
                    balances,
                    events,
                    audit,
                    counters,
                    now,
                    actor,
                };
                f(&tx)
            },
        );
        match result {
            Ok(v) => Ok(v),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// The customer's subscription (a canceled one too: the last one they had).
    pub fn subscription(&self, customer_id: &str) -> Result<Option<Subscription>> {
        match self.subs.get(customer_id.as_bytes())? {
            Some(v) => Ok(Some(decode(&v, "subscription")?)),
            None => Ok(None),
        }
    }

    /// Every subscription, by customer id.
    pub fn subscriptions(&self) -> Result<Vec<Subscription>> {
        self.subs.iter().map(|kv| decode(&kv?.1, "subscription")).collect()
    }

    /// The customer's invoices, newest first.
    pub fn invoices(&self, customer_id: &str) -> Result<Vec<Invoice>> {
        let mut out = Vec::new();
        for kv in self.customer_invoices.scan_prefix(prefix(customer_id)).rev() {
            let (_, id) = kv?;
            if let Some(v) = self.invoices.get(&id)? {
                out.push(decode(&v, "invoice")?);
            }
        }
        Ok(out)
    }

    pub fn invoice(&self, id: &str) -> Result<Option<Invoice>> {
        match self.invoices.get(id.as_bytes())? {
            Some(v) => Ok(Some(decode(&v, "invoice")?)),
            None => Ok(None),
        }
    }

    /// The customer's credit balance (minor units), spent on the next invoices.
    pub fn balance(&self, customer_id: &str) -> Result<i64> {
        match self.balances.get(customer_id.as_bytes())? {
            Some(v) => decode(&v, "balance"),
            None => Ok(0),
        }
    }

    /// The customer's ledger, oldest first.
    pub fn ledger(&self, customer_id: &str) -> Result<Vec<LedgerEntry>> {
        self.ledger.scan_prefix(prefix(customer_id)).map(|kv| decode(&kv?.1, "ledger entry")).collect()
    }

    /// Every status change of the customer's subscriptions, oldest first.
    pub fn audit(&self, customer_id: &str) -> Result<Vec<TransitionRecord>> {
        self.audit.scan_prefix(prefix(customer_id)).map(|kv| decode(&kv?.1, "transition")).collect()
    }

    /// What the next renewal will charge, with a scheduled change and the credit balance
    /// applied; `None` when nothing will be charged (free plan, paused, ending).
    pub fn upcoming(&self, customer_id: &str, prices: &Prices) -> Result<Option<Upcoming>> {
        let Some(sub) = self.subscription(customer_id)? else { return Ok(None) };
        let renews = matches!(sub.status, Status::Trialing | Status::Active | Status::PastDue);
        if !renews || sub.cancel_at_period_end {
            return Ok(None);
        }
        let plan = sub.scheduled.clone().unwrap_or_else(|| sub.plan.clone());
        let Some(price) = prices.price(&plan.tier, plan.interval).filter(|p| *p > 0) else { return Ok(None) };
        let (period, _, _) = next_period(&sub, &plan);
        let mut lines = renewal_line(prices, &plan, period, price);
        let credit = self.balance(customer_id)?.min(price);
        if credit > 0 {
            lines.push(("Credit balance applied".into(), -credit));
        }
        let lines: Vec<Line> = number_lines(lines);
        let total_minor = lines.iter().map(|l| l.amount_minor).sum();
        Ok(Some(Upcoming { date: sub.period.end, lines, total_minor, currency: sub.currency }))
    }

    /// Starts the customer's subscription: a free plan active at once, a paid one with a
    /// [`TRIAL_DAYS`] trial and no invoice until the trial ends. One per customer.
    pub fn start(
        &self,
        customer_id: &str,
        plan: &Plan,
        prices: &Prices,
        today: Day,
        now: i64,
        actor: &str,
    ) -> Result<Change> {
        check_id("customer id", customer_id)?;
        let price = prices.lookup(plan)?;
        self.transact(now, actor, |tx| {
            if tx.sub(customer_id)?.is_some_and(|s| s.status != Status::Canceled) {
                return abort(BillingError::SubscriptionExists(customer_id.to_string()));
            }
            let (status, period, trial_end) = if price == 0 {
                (Status::Active, Period::starting(today, plan.interval.months()), None)
            } else {
                let end = today + TRIAL_DAYS;
                (Status::Trialing, Period { start: today, end }, Some(end))
            };
            let mut sub = Subscription {
                customer_id: customer_id.to_string(),
                plan: plan.clone(),
                status,
                currency: CURRENCY.to_string(),
                anchor: today,
                period,
                period_index: 0,
                trial_end,
                scheduled: None,
                cancel_at_period_end: false,
                dunning: None,
                provider: MANUAL_PROVIDER.to_string(),
                fallback_tier: prices.free_tier().to_string(),
                created: now,
                updated: now,
            };
            tx.record(customer_id, None, status, "start")?;
            tx.put_sub(&mut sub)?;
            Ok(Change::new(sub, None, Vec::new()))
        })
    }

    /// Changes the plan: an upgrade at once with a prorated invoice, a downgrade (or
    /// annual→monthly) scheduled for the period end; during the trial, at once and free.
    /// Choosing the current plan again cancels a scheduled change.
    pub fn change_plan(
        &self,
        customer_id: &str,
        plan: &Plan,
        prices: &Prices,
        today: Day,
        now: i64,
        actor: &str,
    ) -> Result<Change> {
        let new_price = prices.lookup(plan)?;
        self.transact(now, actor, |tx| {
            let mut sub = tx.live_sub(customer_id)?;
            if sub.status == Status::Paused {
                return abort(BillingError::TransitionRefused {
                    from: sub.status,
                    event: None,
                    message: "a paused subscription keeps its plan; resume it first".into(),
                });
            }
            sub.fallback_tier = prices.free_tier().to_string();
            let changed = vec![notice(&sub, NoticeKind::PlanChanged, None)];
            if *plan == sub.plan {
                if sub.scheduled.take().is_none() {
                    return abort(BillingError::PlanUnchanged(prices.describe(plan)));
                }
                tx.put_sub(&mut sub)?;
                return Ok(Change::new(sub, None, changed));
            }
            if sub.scheduled.as_ref() == Some(plan) {
                return abort(BillingError::PlanUnchanged(prices.describe(plan)));
            }
            // Choosing a plan means staying: a scheduled cancellation is dropped.
            sub.cancel_at_period_end = false;
            if sub.in_trial() && sub.status == Status::Trialing {
                sub.plan = plan.clone();
                sub.scheduled = None;
                if new_price == 0 {
                    // Nothing left to try: a free plan runs from today.
                    tx.set_status(&mut sub, Status::Active, "trial_ended_free")?;
                    sub.trial_end = None;
                    sub.anchor = today;
                    sub.period = Period::starting(today, plan.interval.months());
                    sub.period_index = 0;
                }
                tx.put_sub(&mut sub)?;
                return Ok(Change::new(sub, None, changed));
            }
            let old_price = prices.price(&sub.plan.tier, sub.plan.interval).unwrap_or(0);
            if !is_upgrade(&sub.plan, old_price, plan, new_price) {
                sub.scheduled = Some(plan.clone());
                tx.put_sub(&mut sub)?;
                return Ok(Change::new(sub, None, changed));
            }
            let (lines, new_period) =
                upgrade_lines(prices, (&sub.plan, old_price), (plan, new_price), sub.period, today);
            if let Some(p) = new_period {
                sub.period = p;
                sub.anchor = today;
                sub.period_index = 0;
            }
            sub.plan = plan.clone();
            sub.scheduled = None;
            let lines = lines.into_iter().map(|l| (l.description, l.amount_minor)).collect();
            let invoice = tx.issue(&sub, sub.period, today, lines)?;
            tx.put_sub(&mut sub)?;
            let n = notice(&sub, NoticeKind::PlanChanged, Some(&invoice.id));
            Ok(Change::new(sub, Some(invoice), vec![n]))
        })
    }

    /// Pauses the subscription: the free tier is served and nothing renews until resumed.
    pub fn pause(&self, customer_id: &str, now: i64, actor: &str) -> Result<Change> {
        self.transact(now, actor, |tx| {
            let mut sub = tx.live_sub(customer_id)?;
            tx.apply(&mut sub, Event::Pause, "pause")?;
            tx.put_sub(&mut sub)?;
            let n = notice(&sub, NoticeKind::Paused, None);
            Ok(Change::new(sub, None, vec![n]))
        })
    }

    /// Resumes a paused subscription. One paused for non-payment resumes by paying its
    /// invoice instead. When the period ran out meanwhile, a new one starts today (and a
    /// paid plan's invoice is issued).
    pub fn resume(
        &self,
        customer_id: &str,
        prices: &Prices,
        today: Day,
        now: i64,
        actor: &str,
    ) -> Result<Change> {
        self.transact(now, actor, |tx| {
            let mut sub = tx.live_sub(customer_id)?;
            if let (Status::Paused, Some(d)) = (sub.status, &sub.dunning) {
                return abort(BillingError::TransitionRefused {
                    from: sub.status,
                    event: Some(Event::Resume),
                    message: format!(
                        "this subscription was paused for an unpaid invoice: pay {} to resume",
                        d.invoice_id
                    ),
                });
            }
            tx.apply(&mut sub, Event::Resume, "resume")?;
            let mut invoice = None;
            if today >= sub.period.end {
                sub.trial_end = None;
                sub.anchor = today;
                sub.period = Period::starting(today, sub.plan.interval.months());
                sub.period_index = 0;
                let price = prices.price(&sub.plan.tier, sub.plan.interval).unwrap_or(0);
                if price > 0 {
                    invoice = Some(tx.issue(
                        &sub,
                        sub.period,
                        today,
                        renewal_line(prices, &sub.plan, sub.period, price),
                    )?);
                }
            }
            tx.put_sub(&mut sub)?;
            let notices =
                invoice.iter().map(|i| notice(&sub, NoticeKind::InvoiceIssued, Some(&i.id))).collect();
            Ok(Change::new(sub, invoice, notices))
        })
    }

    /// Cancels now (`at_period_end` false: the free tier at once, open invoices voided)
    /// or at the period end (served until then; [`Billing::undo_cancel`] takes it back).
    /// A paused subscription has no running period, so it is canceled now either way.
    pub fn cancel(&self, customer_id: &str, at_period_end: bool, now: i64, actor: &str) -> Result<Change> {
        let open = self.open_invoice_ids(customer_id)?;
        self.transact(now, actor, |tx| {
            let mut sub = tx.live_sub(customer_id)?;
            transition(sub.status, Event::Cancel)
                .map_err(|e| ConflictableTransactionError::Abort(e.into()))?;
            let n = notice(&sub, NoticeKind::Canceled, None);
            if at_period_end && sub.status != Status::Paused {
                if sub.cancel_at_period_end {
                    return abort(BillingError::TransitionRefused {
                        from: sub.status,
                        event: Some(Event::Cancel),
                        message: "this subscription already ends at the end of its period".into(),
                    });
                }
                sub.cancel_at_period_end = true;
                sub.scheduled = None;
                tx.put_sub(&mut sub)?;
                return Ok(Change::new(sub, None, vec![n]));
            }
            tx.apply(&mut sub, Event::Cancel, "cancel")?;
            sub.cancel_at_period_end = false;
            sub.scheduled = None;
            sub.dunning = None;
            for id in &open {
                let mut inv = tx.invoice(id)?;
                if inv.status == InvoiceStatus::Open {
                    inv.status = InvoiceStatus::Void;
                    tx.put_invoice(&inv)?;
                }
            }
            tx.put_sub(&mut sub)?;
            Ok(Change::new(sub, None, vec![n]))
        })
    }

    /// Takes back a cancellation scheduled for the period end.
    pub fn undo_cancel(&self, customer_id: &str, now: i64, actor: &str) -> Result<Change> {
        self.transact(now, actor, |tx| {
            let mut sub = tx.live_sub(customer_id)?;
            if !sub.cancel_at_period_end {
                return abort(BillingError::TransitionRefused {
                    from: sub.status,
                    event: None,
                    message: "this subscription is not set to end".into(),
                });
            }
            sub.cancel_at_period_end = false;
            tx.put_sub(&mut sub)?;
            Ok(Change::new(sub, None, Vec::new()))
        })
    }

    /// Marks an open invoice paid (the manual provider: an operator saw the transfer).
    pub fn mark_paid(
        &self,
        invoice_id: &str,
        reference: Option<&str>,
        now: i64,
        actor: &str,
    ) -> Result<Change> {
        self.transact(now, actor, |tx| tx.settle(invoice_id, reference))
    }

    /// Refunds a paid invoice; the subscription goes on (cancel it separately).
    pub fn refund(&self, invoice_id: &str, now: i64, actor: &str) -> Result<Change> {
        self.transact(now, actor, |tx| {
            let mut inv = tx.invoice(invoice_id)?;
            if inv.status != InvoiceStatus::Paid {
                return abort(BillingError::InvoiceNotPaid {
                    id: invoice_id.to_string(),
                    status: inv.status.label(),
                });
            }
            inv.status = InvoiceStatus::Refunded;
            inv.refunded_at = Some(now);
            tx.put_invoice(&inv)?;
            let balance = tx.balance(&inv.customer_id)?;
            tx.entry(&inv.customer_id, LedgerKind::Refunded, inv.total_minor, Some(invoice_id), balance)?;
            let Some(sub) = tx.sub(&inv.customer_id)? else {
                return abort(BillingError::NoSubscription(inv.customer_id.clone()));
            };
            let n = notice(&sub, NoticeKind::Refunded, Some(invoice_id));
            Ok(Change::new(sub, Some(inv), vec![n]))
        })
    }

    /// Applies a payment provider's event once: an id seen before is [`Applied::Replayed`]
    /// and changes nothing (the id is stored in the same transaction as the change).
    /// An event about an invoice that is no longer open is recorded and changes nothing.
    pub fn apply_event(
        &self,
        event_id: &str,
        kind: PaymentEvent,
        invoice_id: &str,
        now: i64,
    ) -> Result<Applied> {
        check_id("event id", event_id)?;
        check_id("invoice id", invoice_id)?;
        self.transact(now, PROVIDER_ACTOR, |tx| {
            if tx.events.get(event_id.as_bytes())?.is_some() {
                return Ok(Applied::Replayed);
            }
            let record = serde_json::json!({ "kind": kind, "invoice_id": invoice_id, "at": now });
            tx.events.insert(event_id.as_bytes(), encode(&record))?;
            let inv = tx.invoice(invoice_id)?;
            let change = match kind {
                PaymentEvent::Succeeded if inv.status == InvoiceStatus::Open => {
                    tx.settle(invoice_id, Some(event_id))?
                }
                PaymentEvent::Failed => tx.fail(invoice_id, dates::day_of_secs(now))?,
                PaymentEvent::Succeeded => match tx.sub(&inv.customer_id)? {
                    Some(sub) => Change::new(sub, Some(inv), Vec::new()),
                    None => return abort(BillingError::NoSubscription(inv.customer_id.clone())),
                },
            };
            Ok(Applied::Done(change))
        })
    }

    /// The customer's open invoices' ids (read outside a transaction, which cannot scan;
    /// each is read again inside it).
    fn open_invoice_ids(&self, customer_id: &str) -> Result<Vec<String>> {
        Ok(self
            .invoices(customer_id)?
            .into_iter()
            .filter(|i| i.status == InvoiceStatus::Open)
            .map(|i| i.id)
            .collect())
    }

    /// The day's work: ends trials (issuing the first invoice), renews periods (issuing
    /// their invoices, applying scheduled changes and cancellations), starts dunning for
    /// invoices unpaid past their due date, and runs dunning's reminders and its final
    /// pause. Running it again on the same day changes nothing.
    pub fn run_daily(&self, today: Day, now: i64, prices: &Prices) -> Result<Vec<Change>> {
        self.run_daily_with(today, now, &|_| prices.clone())
    }

    /// [`Billing::run_daily`] with each customer's own prices (`prices_of(customer)`,
    /// see [`Prices::for_customer`]): renewals charge what the customer signed up at.
    pub fn run_daily_with(
        &self,
        today: Day,
        now: i64,
        prices_of: &dyn Fn(&str) -> Prices,
    ) -> Result<Vec<Change>> {
        let mut out = Vec::new();
        let customers: Vec<String> = self
            .subs
            .iter()
            .keys()
            .map(|k| k.map(|k| String::from_utf8_lossy(&k).into_owned()))
            .collect::<std::result::Result<_, _>>()?;
        for customer in customers {
            let open = self.open_invoice_ids(&customer)?;
            let prices = &prices_of(&customer);
            match self.transact(now, JOB_ACTOR, |tx| daily(tx, &customer, &open, today, prices)) {
                Ok(Some(change)) => out.push(change),
                Ok(None) => {}
                Err(e @ (BillingError::Store(_) | BillingError::Unavailable)) => return Err(e),
                Err(e) => {
                    tracing::warn!(customer = %customer, error = %e, "billing run skipped a subscription")
                }
            }
        }
        Ok(out)
    }
}

/// The day's work on one subscription; `None` when there was none.
fn daily(
    tx: &Tx,
    customer_id: &str,
    open: &[String],
    today: Day,
    prices: &Prices,
) -> TxResult<Option<Change>> {
    let Some(mut sub) = tx.sub(customer_id)? else { return Ok(None) };
    if sub.status == Status::Canceled {
        return Ok(None);
    }
    let before = sub.clone();
    let mut notices = Vec::new();
    let mut invoice = None;

    // An invoice unpaid past its due date is a failed payment.
    if sub.dunning.is_none() && matches!(sub.status, Status::Trialing | Status::Active) {
        for id in open {
            let inv = tx.invoice(id)?;
            if inv.status == InvoiceStatus::Open && today > inv.due {
                tx.apply(&mut sub, Event::PaymentFailed, "invoice_overdue")?;
                sub.dunning = Some(Dunning::start(id, today));
                notices.push(notice(&sub, NoticeKind::PaymentFailed, Some(id)));
                break;
            }
        }
    }

    // Dunning: a reminder per attempt; the last one pauses.
    if let (Status::PastDue, Some(mut d)) = (sub.status, sub.dunning.clone()) {
        let inv = tx.invoice(&d.invoice_id)?;
        if inv.status != InvoiceStatus::Open {
            // Settled (or voided) some other way: dunning is over.
            sub.dunning = None;
            if inv.status == InvoiceStatus::Paid {
                tx.apply(&mut sub, Event::PaymentSucceeded, "payment_succeeded")?;
            }
        } else if d.next_attempt <= today {
            d.attempts += 1;
            if d.attempts as usize >= DUNNING_DAYS.len() {
                tx.apply(&mut sub, Event::DunningExhausted, "dunning_exhausted")?;
                notices.push(notice(&sub, NoticeKind::Paused, Some(&d.invoice_id)));
            } else {
                d.next_attempt = d.started + DUNNING_DAYS[d.attempts as usize];
                notices.push(notice(&sub, NoticeKind::DunningReminder, Some(&d.invoice_id)));
            }
            sub.dunning = Some(d);
        }
    }

    // Period ends: the trial's, then renewals (several if the job missed days).
    for _ in 0..60 {
        let renews = matches!(sub.status, Status::Trialing | Status::Active | Status::PastDue);
        if !renews || today < sub.period.end {
            break;
        }
        if sub.cancel_at_period_end {
            tx.apply(&mut sub, Event::Cancel, "canceled_at_period_end")?;
            sub.cancel_at_period_end = false;
            sub.scheduled = None;
            sub.dunning = None;
            notices.push(notice(&sub, NoticeKind::Canceled, None));
            break;
        }
        let plan = sub.scheduled.take().unwrap_or_else(|| sub.plan.clone());
        let (period, anchor, index) = next_period(&sub, &plan);
        if plan != sub.plan {
            notices.push(notice(&sub, NoticeKind::PlanChanged, None));
        }
        sub.plan = plan;
        sub.fallback_tier = prices.free_tier().to_string();
        sub.period = period;
        sub.anchor = anchor;
        sub.period_index = index;
        let Some(price) = prices.price(&sub.plan.tier, sub.plan.interval) else {
            return abort(BillingError::PlanNotSelfServe(sub.plan.tier.clone()));
        };
        if price > 0 {
            let lines = renewal_line(prices, &sub.plan, period, price);
            let inv = tx.issue(&sub, period, today, lines)?;
            notices.push(notice(&sub, NoticeKind::InvoiceIssued, Some(&inv.id)));
            invoice = Some(inv);
        }
    }

    if sub == before {
        return Ok(None);
    }
    tx.put_sub(&mut sub)?;
    Ok(Some(Change::new(sub, invoice, notices)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::tiers::Tiers;
    use crate::billing::Interval;
    use crate::error::Coded;

    const NOW: i64 = 1_800_000_000;
    const WHO: &str = "test";

    fn d(y: i32, m: u32, day: u32) -> Day {
        dates::from_ymd(y, m, day)
    }

    /// The built-in tiers plus `max` at $199 a month, $1990 a year.
    fn prices() -> Prices {
        let mut tiers = Tiers::builtin();
        let mut max = tiers.get("pro").unwrap().clone();
        max.id = "max".into();
        max.name = "Max".into();
        max.price_monthly_usd = Some(199);
        max.price_annual_usd = Some(1990);
        tiers.tiers.push(max);
        Prices::from_tiers(&tiers)
    }

    fn open() -> Billing {
        let db = sled::Config::new().temporary(true).open().unwrap();
        Billing::open(&db).unwrap()
    }

    fn pm() -> Plan {
        Plan::new("pro", Interval::Monthly)
    }

    fn kinds(c: &Change) -> Vec<NoticeKind> {
        c.notices.iter().map(|n| n.kind).collect()
    }

    fn amounts(inv: &Invoice) -> Vec<i64> {
        inv.lines.iter().map(|l| l.amount_minor).collect()
    }

    /// A paid pro monthly subscription whose first paid period starts on `first`.
    fn paid_pro(b: &Billing, p: &Prices, customer: &str, first: Day) -> Invoice {
        b.start(customer, &pm(), p, first - TRIAL_DAYS, NOW, WHO).unwrap();
        let changes = b.run_daily(first, NOW, p).unwrap();
        let inv = changes.into_iter().find_map(|c| c.invoice.filter(|i| i.customer_id == customer)).unwrap();
        b.mark_paid(&inv.id, Some("transfer"), NOW, WHO).unwrap();
        assert_eq!(b.subscription(customer).unwrap().unwrap().status, Status::Active);
        inv
    }

    #[test]
    fn one_subscription_per_customer() {
        let (b, p) = (open(), prices());
        let c = b.start("cus_a", &pm(), &p, d(2027, 1, 10), NOW, WHO).unwrap();
        assert_eq!(c.subscription.status, Status::Trialing);
        assert_eq!(c.subscription.trial_end, Some(d(2027, 1, 24)));
        assert!(c.invoice.is_none());
        assert_eq!(c.effective_tier, "pro");
        let e = b
            .start("cus_a", &Plan::new("free", Interval::Monthly), &p, d(2027, 1, 11), NOW, WHO)
            .unwrap_err();
        assert_eq!((e.code(), e.status()), ("subscription_exists", 409));
        // Not self-serve, unknown.
        let e = b
            .start("cus_b", &Plan::new("enterprise", Interval::Monthly), &p, d(2027, 1, 11), NOW, WHO)
            .unwrap_err();
        assert_eq!((e.code(), e.status()), ("plan_not_self_serve", 422));
        let e = b
            .start("cus_b", &Plan::new("gold", Interval::Monthly), &p, d(2027, 1, 11), NOW, WHO)
            .unwrap_err();
        assert_eq!((e.code(), e.status()), ("unknown_plan", 422));
        // A free plan is active at once; after a cancellation a new one may start.
        let free =
            b.start("cus_b", &Plan::new("free", Interval::Monthly), &p, d(2027, 1, 11), NOW, WHO).unwrap();
        assert_eq!((free.subscription.status, free.effective_tier.as_str()), (Status::Active, "free"));
        let canceled = b.cancel("cus_a", false, NOW, WHO).unwrap();
        assert_eq!(
            (canceled.subscription.status, canceled.effective_tier.as_str()),
            (Status::Canceled, "free")
        );
        b.start("cus_a", &pm(), &p, d(2027, 2, 1), NOW, WHO).unwrap();
        let audit: Vec<_> = b.audit("cus_a").unwrap().into_iter().map(|r| (r.from, r.to)).collect();
        assert_eq!(
            audit,
            vec![
                (None, Status::Trialing),
                (Some(Status::Trialing), Status::Canceled),
                (None, Status::Trialing)
            ]
        );
        assert!(b.run_daily(d(2027, 1, 12), NOW, &p).unwrap().is_empty(), "nothing due yet");
    }

    #[test]
    fn the_trial_end_issues_the_first_invoice_and_payment_activates() {
        let (b, p) = (open(), prices());
        b.start("cus_a", &pm(), &p, d(2027, 1, 10), NOW, WHO).unwrap();
        assert!(b.run_daily(d(2027, 1, 23), NOW, &p).unwrap().is_empty());
        let up = b.upcoming("cus_a", &p).unwrap().unwrap();
        assert_eq!((up.date, up.total_minor), (d(2027, 1, 24), 4_900));
        let changes = b.run_daily(d(2027, 1, 24), NOW, &p).unwrap();
        assert_eq!(changes.len(), 1);
        let c = &changes[0];
        let inv = c.invoice.clone().unwrap();
        assert_eq!(
            (inv.id.as_str(), inv.total_minor, inv.status),
            ("inv_000001", 4_900, InvoiceStatus::Open)
        );
        assert_eq!(inv.period, Period { start: d(2027, 1, 24), end: d(2027, 2, 24) });
        assert_eq!(inv.due, d(2027, 1, 31));
        assert_eq!(c.subscription.status, Status::Trialing, "trialing until paid");
        assert_eq!(kinds(c), vec![NoticeKind::InvoiceIssued]);
        // Idempotent: the same day again changes nothing.
        assert!(b.run_daily(d(2027, 1, 24), NOW, &p).unwrap().is_empty());
        assert_eq!(b.invoices("cus_a").unwrap().len(), 1);
        let paid = b.mark_paid(&inv.id, Some("SEPA 123"), NOW + 5, WHO).unwrap();
        assert_eq!(paid.subscription.status, Status::Active);
        assert_eq!(kinds(&paid), vec![NoticeKind::Receipt]);
        let stored = b.invoice(&inv.id).unwrap().unwrap();
        assert_eq!(
            (stored.status, stored.paid_at, stored.payment_ref.as_deref()),
            (InvoiceStatus::Paid, Some(NOW + 5), Some("SEPA 123"))
        );
        assert_eq!(stored.lines, inv.lines, "lines never change");
        let e = b.mark_paid(&inv.id, None, NOW, WHO).unwrap_err();
        assert_eq!((e.code(), e.status()), ("invoice_not_open", 409));
        // The next renewal, a month on.
        let c = b.run_daily(d(2027, 2, 24), NOW, &p).unwrap();
        assert_eq!(c[0].invoice.as_ref().unwrap().id, "inv_000002");
        assert_eq!(c[0].subscription.period, Period { start: d(2027, 2, 24), end: d(2027, 3, 24) });
        assert!(b.run_daily(d(2027, 2, 24), NOW, &p).unwrap().is_empty());
    }

    #[test]
    fn an_upgrade_mid_month_charges_and_credits_exactly() {
        let (b, p) = (open(), prices());
        let max = Plan::new("max", Interval::Monthly);
        // February 2027: 28 days, 14 left on the 15th.
        paid_pro(&b, &p, "cus_a", d(2027, 2, 1));
        let c = b.change_plan("cus_a", &max, &p, d(2027, 2, 15), NOW, WHO).unwrap();
        let inv = c.invoice.clone().unwrap();
        assert_eq!(amounts(&inv), vec![9_950, -2_450]);
        assert_eq!(inv.lines.iter().map(|l| l.number).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(inv.total_minor, 7_500);
        assert_eq!(
            c.subscription.period,
            Period { start: d(2027, 2, 1), end: d(2027, 3, 1) },
            "the period stays"
        );
        assert_eq!((c.effective_tier.as_str(), kinds(&c)), ("max", vec![NoticeKind::PlanChanged]));
        // Leap February 2028: 29 days, 14 left on the 16th.
        paid_pro(&b, &p, "cus_b", d(2028, 2, 1));
        let c = b.change_plan("cus_b", &max, &p, d(2028, 2, 16), NOW, WHO).unwrap();
        let inv = c.invoice.unwrap();
        // 19900 × 14 / 29 = 9606.9 and 4900 × 14 / 29 = 2365.5, rounded half away from zero.
        assert_eq!(amounts(&inv), vec![9_607, -2_366]);
        assert_eq!(inv.total_minor, 7_241);
        // On the last day of a 31-day month: 1 day of 31 left.
        paid_pro(&b, &p, "cus_c", d(2027, 1, 1));
        let inv = b.change_plan("cus_c", &max, &p, d(2027, 1, 31), NOW, WHO).unwrap().invoice.unwrap();
        assert_eq!(amounts(&inv), vec![642, -158]); // 19900 / 31 = 641.9, 4900 / 31 = 158.1
        let e = b.change_plan("cus_c", &max, &p, d(2027, 1, 31), NOW, WHO).unwrap_err();
        assert_eq!((e.code(), e.status()), ("plan_unchanged", 409));
    }

    #[test]
    fn a_downgrade_waits_for_the_period_end() {
        let (b, p) = (open(), prices());
        let max = Plan::new("max", Interval::Monthly);
        paid_pro(&b, &p, "cus_a", d(2027, 2, 1));
        let upgrade = b.change_plan("cus_a", &max, &p, d(2027, 2, 1), NOW, WHO).unwrap().invoice.unwrap();
        assert_eq!(amounts(&upgrade), vec![19_900, -4_900], "on the first day: the whole month");
        b.mark_paid(&upgrade.id, None, NOW, WHO).unwrap();
        let c = b.change_plan("cus_a", &pm(), &p, d(2027, 2, 10), NOW, WHO).unwrap();
        assert!(c.invoice.is_none());
        assert_eq!(
            (c.subscription.plan.clone(), c.subscription.scheduled.clone()),
            (max.clone(), Some(pm()))
        );
        assert_eq!(c.effective_tier, "max", "served until the period ends");
        let e = b.change_plan("cus_a", &pm(), &p, d(2027, 2, 10), NOW, WHO).unwrap_err();
        assert_eq!(e.code(), "plan_unchanged");
        // Choosing the current plan again takes the downgrade back; then schedule it again.
        assert_eq!(
            b.change_plan("cus_a", &max, &p, d(2027, 2, 11), NOW, WHO).unwrap().subscription.scheduled,
            None
        );
        b.change_plan("cus_a", &pm(), &p, d(2027, 2, 12), NOW, WHO).unwrap();
        let up = b.upcoming("cus_a", &p).unwrap().unwrap();
        assert_eq!((up.date, up.total_minor), (d(2027, 3, 1), 4_900));
        assert!(b.run_daily(d(2027, 2, 28), NOW, &p).unwrap().is_empty());
        let c = b.run_daily(d(2027, 3, 1), NOW, &p).unwrap().remove(0);
        assert_eq!((c.subscription.plan.clone(), c.subscription.scheduled.clone()), (pm(), None));
        assert_eq!(c.effective_tier, "pro");
        assert_eq!(c.invoice.as_ref().unwrap().total_minor, 4_900);
        assert_eq!(kinds(&c), vec![NoticeKind::PlanChanged, NoticeKind::InvoiceIssued]);
    }

    #[test]
    fn monthly_to_annual_starts_a_year_and_annual_to_monthly_waits() {
        let (b, p) = (open(), prices());
        let pa = Plan::new("pro", Interval::Annual);
        paid_pro(&b, &p, "cus_a", d(2027, 2, 1));
        let c = b.change_plan("cus_a", &pa, &p, d(2027, 2, 15), NOW, WHO).unwrap();
        let inv = c.invoice.unwrap();
        assert_eq!(amounts(&inv), vec![49_000, -2_450]);
        assert_eq!(inv.total_minor, 46_550);
        let s = c.subscription;
        assert_eq!(
            (s.anchor, s.period),
            (d(2027, 2, 15), Period { start: d(2027, 2, 15), end: d(2028, 2, 15) })
        );
        // Back to monthly: at the end of the year.
        let c = b.change_plan("cus_a", &pm(), &p, d(2027, 6, 1), NOW, WHO).unwrap();
        assert!(c.invoice.is_none());
        assert_eq!(c.subscription.scheduled, Some(pm()));
        let c = b.run_daily(d(2028, 2, 15), NOW, &p).unwrap().remove(0);
        assert_eq!(c.subscription.plan, pm());
        assert_eq!(c.subscription.period, Period { start: d(2028, 2, 15), end: d(2028, 3, 15) });
        assert_eq!(c.invoice.unwrap().total_minor, 4_900);
    }

    #[test]
    fn a_negative_total_becomes_credit_for_the_next_invoice() {
        let (b, p) = (open(), prices());
        // Pro annual from 2027-03-01, then Max monthly on the first day: the whole year
        // is unused, more than a month of Max.
        b.start("cus_a", &Plan::new("pro", Interval::Annual), &p, d(2027, 2, 15), NOW, WHO).unwrap();
        let first = b.run_daily(d(2027, 3, 1), NOW, &p).unwrap().remove(0).invoice.unwrap();
        assert_eq!(first.total_minor, 49_000);
        b.mark_paid(&first.id, None, NOW, WHO).unwrap();
        let c = b
            .change_plan("cus_a", &Plan::new("max", Interval::Monthly), &p, d(2027, 3, 1), NOW, WHO)
            .unwrap();
        let inv = c.invoice.unwrap();
        assert_eq!(amounts(&inv), vec![19_900, -49_000]);
        assert_eq!(
            (inv.total_minor, inv.status, inv.payment_ref.as_deref()),
            (-29_100, InvoiceStatus::Paid, Some("credit"))
        );
        assert_eq!(b.balance("cus_a").unwrap(), 29_100);
        let up = b.upcoming("cus_a", &p).unwrap().unwrap();
        assert_eq!((up.date, up.total_minor), (d(2027, 4, 1), 0));
        // The renewal spends the credit: 19 900 of it.
        let renewal = b.run_daily(d(2027, 4, 1), NOW, &p).unwrap().remove(0).invoice.unwrap();
        assert_eq!(amounts(&renewal), vec![19_900, -19_900]);
        assert_eq!((renewal.total_minor, renewal.status), (0, InvoiceStatus::Paid));
        assert_eq!(b.balance("cus_a").unwrap(), 9_200);
        let next = b.run_daily(d(2027, 5, 1), NOW, &p).unwrap().remove(0).invoice.unwrap();
        assert_eq!(
            (amounts(&next), next.total_minor, next.status),
            (vec![19_900, -9_200], 10_700, InvoiceStatus::Open)
        );
        assert_eq!(b.balance("cus_a").unwrap(), 0);
        let ledger: Vec<_> = b
            .ledger("cus_a")
            .unwrap()
            .into_iter()
            .map(|e| (e.kind, e.amount_minor, e.balance_minor))
            .collect();
        assert_eq!(
            ledger,
            vec![
                (LedgerKind::Invoiced, 49_000, 0),
                (LedgerKind::Paid, 49_000, 0),
                (LedgerKind::Invoiced, -29_100, 0),
                (LedgerKind::Credit, 29_100, 29_100),
                (LedgerKind::Invoiced, 0, 29_100),
                (LedgerKind::CreditApplied, -19_900, 9_200),
                (LedgerKind::Invoiced, 10_700, 9_200),
                (LedgerKind::CreditApplied, -9_200, 0),
            ]
        );
        let ids: Vec<_> = b.invoices("cus_a").unwrap().into_iter().map(|i| i.number).collect();
        assert_eq!(ids, vec![4, 3, 2, 1], "newest first, numbered without gaps");
    }

    #[test]
    fn dunning_reminds_then_pauses_and_a_payment_reactivates() {
        let (b, p) = (open(), prices());
        b.start("cus_a", &pm(), &p, d(2027, 1, 1), NOW, WHO).unwrap();
        let inv = b.run_daily(d(2027, 1, 15), NOW, &p).unwrap().remove(0).invoice.unwrap();
        assert_eq!(inv.due, d(2027, 1, 22));
        assert!(b.run_daily(d(2027, 1, 22), NOW, &p).unwrap().is_empty(), "due today is not late");
        let c = b.run_daily(d(2027, 1, 23), NOW, &p).unwrap().remove(0);
        assert_eq!(c.subscription.status, Status::PastDue);
        assert_eq!(c.effective_tier, "pro", "served while dunning runs");
        assert_eq!(kinds(&c), vec![NoticeKind::PaymentFailed]);
        assert_eq!(c.subscription.dunning.clone().unwrap().next_attempt, d(2027, 1, 26));
        assert!(b.run_daily(d(2027, 1, 23), NOW, &p).unwrap().is_empty());
        assert!(b.run_daily(d(2027, 1, 25), NOW, &p).unwrap().is_empty());
        let c = b.run_daily(d(2027, 1, 26), NOW, &p).unwrap().remove(0);
        assert_eq!(kinds(&c), vec![NoticeKind::DunningReminder]);
        assert!(b.run_daily(d(2027, 1, 26), NOW, &p).unwrap().is_empty());
        let c = b.run_daily(d(2027, 1, 30), NOW, &p).unwrap().remove(0);
        assert_eq!(
            (kinds(&c), c.subscription.dunning.clone().unwrap().attempts),
            (vec![NoticeKind::DunningReminder], 2)
        );
        let c = b.run_daily(d(2027, 2, 6), NOW, &p).unwrap().remove(0);
        assert_eq!(c.subscription.status, Status::Paused);
        assert_eq!((c.effective_tier.as_str(), kinds(&c)), ("free", vec![NoticeKind::Paused]));
        assert!(
            b.run_daily(d(2027, 2, 20), NOW, &p).unwrap().is_empty(),
            "a paused subscription does not renew"
        );
        let e = b.resume("cus_a", &p, d(2027, 2, 20), NOW, WHO).unwrap_err();
        assert_eq!((e.code(), e.status()), ("transition_refused", 409));
        assert!(e.to_string().contains(&inv.id));
        let c = b.mark_paid(&inv.id, None, NOW, WHO).unwrap();
        assert_eq!((c.subscription.status, c.effective_tier.as_str()), (Status::Active, "pro"));
        assert_eq!(c.subscription.dunning, None);
        let audit: Vec<_> = b.audit("cus_a").unwrap().into_iter().map(|r| (r.to, r.event, r.actor)).collect();
        assert_eq!(
            audit,
            vec![
                (Status::Trialing, "start".into(), WHO.into()),
                (Status::PastDue, "invoice_overdue".into(), JOB_ACTOR.into()),
                (Status::Paused, "dunning_exhausted".into(), JOB_ACTOR.into()),
                (Status::Active, "payment_succeeded".into(), WHO.into()),
            ]
        );
    }

    #[test]
    fn provider_events_apply_once() {
        let (b, p) = (open(), prices());
        b.start("cus_a", &pm(), &p, d(2027, 1, 1), NOW, WHO).unwrap();
        let inv = b.run_daily(d(2027, 1, 15), NOW, &p).unwrap().remove(0).invoice.unwrap();
        let Applied::Done(c) = b.apply_event("evt_1", PaymentEvent::Failed, &inv.id, NOW).unwrap() else {
            panic!("applied")
        };
        assert_eq!((c.subscription.status, kinds(&c)), (Status::PastDue, vec![NoticeKind::PaymentFailed]));
        let before = b.subscription("cus_a").unwrap();
        assert!(matches!(
            b.apply_event("evt_1", PaymentEvent::Failed, &inv.id, NOW + 60).unwrap(),
            Applied::Replayed
        ));
        assert_eq!(b.subscription("cus_a").unwrap(), before, "a replay changes nothing");
        // An unknown invoice is refused and its event id not recorded.
        let e = b.apply_event("evt_2", PaymentEvent::Succeeded, "inv_999999", NOW).unwrap_err();
        assert_eq!((e.code(), e.status()), ("not_found", 404));
        let Applied::Done(c) = b.apply_event("evt_2", PaymentEvent::Succeeded, &inv.id, NOW).unwrap() else {
            panic!("applied")
        };
        assert_eq!((c.subscription.status, kinds(&c)), (Status::Active, vec![NoticeKind::Receipt]));
        assert_eq!(b.invoice(&inv.id).unwrap().unwrap().payment_ref.as_deref(), Some("evt_2"));
        assert!(matches!(
            b.apply_event("evt_2", PaymentEvent::Succeeded, &inv.id, NOW).unwrap(),
            Applied::Replayed
        ));
        assert_eq!(b.ledger("cus_a").unwrap().iter().filter(|e| e.kind == LedgerKind::Paid).count(), 1);
        // A late failure of a paid invoice changes nothing.
        let Applied::Done(c) = b.apply_event("evt_3", PaymentEvent::Failed, &inv.id, NOW).unwrap() else {
            panic!("applied")
        };
        assert_eq!((c.subscription.status, c.notices.len()), (Status::Active, 0));
    }

    #[test]
    fn refunds_and_consecutive_numbers() {
        let (b, p) = (open(), prices());
        let a = paid_pro(&b, &p, "cus_a", d(2027, 2, 1));
        let bb = paid_pro(&b, &p, "cus_b", d(2027, 2, 2));
        assert_eq!((a.number, bb.number), (1, 2));
        assert_eq!(bb.id, "inv_000002");
        let c = b.refund(&a.id, NOW + 9, WHO).unwrap();
        let inv = c.invoice.clone().unwrap();
        assert_eq!((inv.status, inv.refunded_at), (InvoiceStatus::Refunded, Some(NOW + 9)));
        assert_eq!(inv.lines, a.lines);
        assert_eq!((c.subscription.status, kinds(&c)), (Status::Active, vec![NoticeKind::Refunded]));
        let e = b.refund(&a.id, NOW, WHO).unwrap_err();
        assert_eq!((e.code(), e.status()), ("invoice_not_paid", 409));
        assert_eq!(b.ledger("cus_a").unwrap().last().unwrap().kind, LedgerKind::Refunded);
        let e = b.refund("inv_000077", NOW, WHO).unwrap_err();
        assert_eq!(e.status(), 404);
    }

    #[test]
    fn pause_resume_and_cancel_at_period_end() {
        let (b, p) = (open(), prices());
        paid_pro(&b, &p, "cus_a", d(2027, 2, 1));
        let c = b.pause("cus_a", NOW, WHO).unwrap();
        assert_eq!((c.subscription.status, c.effective_tier.as_str()), (Status::Paused, "free"));
        let e = b.pause("cus_a", NOW, WHO).unwrap_err();
        assert_eq!((e.code(), e.status()), ("transition_refused", 409));
        // Resumed within the period: it goes on, no invoice.
        let c = b.resume("cus_a", &p, d(2027, 2, 10), NOW, WHO).unwrap();
        assert_eq!((c.subscription.status, c.invoice.is_none()), (Status::Active, true));
        // Resumed after the period ran out: a new period from today, invoiced.
        b.pause("cus_a", NOW, WHO).unwrap();
        let c = b.resume("cus_a", &p, d(2027, 3, 20), NOW, WHO).unwrap();
        assert_eq!(c.subscription.period, Period { start: d(2027, 3, 20), end: d(2027, 4, 20) });
        assert_eq!(c.invoice.unwrap().total_minor, 4_900);
        // Cancel at the period end: still served, then canceled by the job.
        let c = b.cancel("cus_a", true, NOW, WHO).unwrap();
        assert!(c.subscription.cancel_at_period_end);
        assert_eq!((c.subscription.status, kinds(&c)), (Status::Active, vec![NoticeKind::Canceled]));
        assert!(b.upcoming("cus_a", &p).unwrap().is_none());
        assert_eq!(b.cancel("cus_a", true, NOW, WHO).unwrap_err().code(), "transition_refused");
        b.undo_cancel("cus_a", NOW, WHO).unwrap();
        assert_eq!(b.undo_cancel("cus_a", NOW, WHO).unwrap_err().code(), "transition_refused");
        b.cancel("cus_a", true, NOW, WHO).unwrap();
        let c = b.run_daily(d(2027, 4, 20), NOW, &p).unwrap().remove(0);
        assert_eq!((c.subscription.status, c.effective_tier.as_str()), (Status::Canceled, "free"));
        assert!(c.invoice.is_none());
        assert!(b.run_daily(d(2027, 5, 20), NOW, &p).unwrap().is_empty());
        assert_eq!(b.pause("cus_a", NOW, WHO).unwrap_err().code(), "not_found");
    }

    #[test]
    fn the_trial_switches_plans_for_free() {
        let (b, p) = (open(), prices());
        b.start("cus_a", &pm(), &p, d(2027, 1, 1), NOW, WHO).unwrap();
        let c =
            b.change_plan("cus_a", &Plan::new("max", Interval::Annual), &p, d(2027, 1, 5), NOW, WHO).unwrap();
        assert_eq!((c.invoice.is_none(), c.subscription.status), (true, Status::Trialing));
        let inv = b.run_daily(d(2027, 1, 15), NOW, &p).unwrap().remove(0).invoice.unwrap();
        assert_eq!((inv.total_minor, inv.period.end), (199_000, d(2028, 1, 15)));
        // A trial switched to the free plan just runs free.
        b.start("cus_b", &pm(), &p, d(2027, 1, 1), NOW, WHO).unwrap();
        let c = b
            .change_plan("cus_b", &Plan::new("free", Interval::Monthly), &p, d(2027, 1, 5), NOW, WHO)
            .unwrap();
        assert_eq!((c.subscription.status, c.subscription.trial_end), (Status::Active, None));
        assert!(b.run_daily(d(2027, 2, 5), NOW, &p).unwrap().iter().all(|c| c.invoice.is_none()));
    }
}
