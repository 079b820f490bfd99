//! Referrals, ambassadors and partners: every customer has a referral code and a link
//! (`/r/{code}`) that sets a signed first-touch cookie for 30 days; the customer who
//! confirms an address while holding it is attributed to the code's owner. When a
//! referred customer's invoice is paid, a commission (a rate of the invoice total, in
//! integer minor units) is written to the ledger; a refund claws it back. Fraud rules
//! (self-referral, the referrer's own e-mail domain or payment fingerprint, a quick
//! refund) hold a commission for the operator's review instead of approving it.
//!
//! Ambassador tiers follow the number of *active* referrals (paying now) and raise the
//! rate and give a badge, never payment for posts: there is no paid promotion. A partner
//! is a customer an operator gave a revenue-share rate; their referred customers'
//! invoices earn that rate and a monthly statement shows them.
//!
//! Billing tells this module about payments and refunds through [`on_notices`] (called
//! with every billing change's notices); because a notice can be missed (a server
//! restarted between the payment and the hook, an operator command run without the
//! server), the pages also [`reconcile`] from the invoices themselves. Both decide from
//! the invoice's own timestamps and write each commission once.

pub mod admin;
pub mod error;
pub mod page;
pub mod routes;
pub mod store;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use citecast_actors::dates;
use serde::{Deserialize, Serialize};

pub use error::ReferralError;
pub use store::Referrals;

use crate::billing::subscription::Status;
use crate::billing::{Billing, Invoice, InvoiceStatus, Notice, NoticeKind, Subscription};

type Result<T, E = ReferralError> = std::result::Result<T, E>;

/// The first-touch cookie.
pub const COOKIE: &str = "citecast_ref";
/// How long a click on a referral link counts: 30 days.
pub const WINDOW_SECS: i64 = 30 * 86_400;
/// A refund this soon after the payment is a fraud signal: 14 days.
pub const QUICK_REFUND_SECS: i64 = 14 * 86_400;
/// Big public mail providers: sharing one of these with the referrer says nothing.
pub const PUBLIC_MAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
    "yahoo.com",
    "ymail.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.com",
    "yandex.ru",
    "yandex.com",
    "zoho.com",
    "fastmail.com",
    "qq.com",
    "163.com",
];

// ---------------------------------------------------------------- records

/// Who referred a customer, stored at address confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    pub referred_id: String,
    pub referrer_id: String,
    pub code: String,
    /// When the referral link was opened (the cookie's time).
    pub clicked_at: i64,
    /// When the address was confirmed.
    pub at: i64,
    /// Both addresses at confirmation, for the fraud rules.
    pub referred_email: String,
    pub referrer_email: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommissionStatus {
    /// A fraud rule fired: the operator approves or rejects it.
    Held,
    /// Owed; the month's payout pays it.
    Approved,
    /// The operator refused it.
    Rejected,
    /// In a payout the operator marked paid.
    Paid,
    /// The invoice was refunded.
    ClawedBack,
}

impl CommissionStatus {
    pub fn label(self) -> &'static str {
        match self {
            CommissionStatus::Held => "held for review",
            CommissionStatus::Approved => "approved",
            CommissionStatus::Rejected => "rejected",
            CommissionStatus::Paid => "paid",
            CommissionStatus::ClawedBack => "clawed back",
        }
    }
}

/// What a commission's rate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The referrer's ambassador tier.
    Referral,
    /// The partner's revenue-share rate.
    Partner,
}

/// One paid invoice's commission; its id is `com_` + the invoice id, so an invoice
/// earns at most one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commission {
    pub id: String,
    pub invoice_id: String,
    pub referrer_id: String,
    pub referred_id: String,
    pub source: Source,
    pub currency: String,
    pub invoice_total_minor: i64,
    /// Basis points of the invoice total (1000 = 10 %).
    pub rate_bp: u32,
    pub amount_minor: i64,
    /// The invoice's payment time.
    pub earned_at: i64,
    pub status: CommissionStatus,
    /// Why it is held (the fraud rules that fired), or the operator's reason.
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default)]
    pub decided_at: Option<i64>,
    #[serde(default)]
    pub decided_by: Option<String>,
    #[serde(default)]
    pub paid_out_at: Option<i64>,
    #[serde(default)]
    pub clawed_back_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A commission written (held or approved): +amount.
    Earned,
    /// A held commission approved: 0.
    Approved,
    /// A commission refused: −amount.
    Rejected,
    /// Paid out in a monthly payout: 0.
    PaidOut,
    /// The invoice was refunded: −amount.
    ClawedBack,
}

/// One line of the commission ledger (append-only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub seq: u64,
    pub at: i64,
    pub commission_id: String,
    pub referrer_id: String,
    pub kind: EntryKind,
    pub amount_minor: i64,
    pub currency: String,
    #[serde(default)]
    pub note: String,
}

impl LedgerEntry {
    fn of(c: &Commission, at: i64, kind: EntryKind, amount_minor: i64, note: &str) -> LedgerEntry {
        LedgerEntry {
            seq: 0,
            at,
            commission_id: c.id.clone(),
            referrer_id: c.referrer_id.clone(),
            kind,
            amount_minor,
            currency: c.currency.clone(),
            note: note.to_string(),
        }
    }
}

/// A customer an operator made a partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partner {
    pub customer_id: String,
    /// Revenue share in basis points (2500 = 25 %).
    pub rate_bp: u32,
    pub since: i64,
    pub by: String,
}

// ---------------------------------------------------------------- the link's cookie

fn cookie_mac(secret: &[u8], code: &str, clicked_at: i64) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(b"referral\0");
    m.update(code.as_bytes());
    m.update(&[0]);
    m.update(&clicked_at.to_be_bytes());
    m.finalize().into_bytes().to_vec()
}

/// The cookie's value for a click on `code` at `clicked_at`: `code.time.mac`, signed with
/// the site secret so nobody can plant another code or an earlier time.
pub fn sign_cookie(secret: &[u8], code: &str, clicked_at: i64) -> String {
    use base64::Engine as _;
    let mac = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(cookie_mac(secret, code, clicked_at));
    format!("{code}.{clicked_at}.{mac}")
}

/// The code and click time of a cookie this server signed; `None` for anything else.
pub fn read_cookie(secret: &[u8], value: &str) -> Option<(String, i64)> {
    use base64::Engine as _;
    use subtle::ConstantTimeEq;
    if value.len() > 200 {
        return None;
    }
    let mut parts = value.splitn(3, '.');
    let (code, at, mac) = (parts.next()?, parts.next()?, parts.next()?);
    if !valid_code(code) {
        return None;
    }
    let at: i64 = at.parse().ok()?;
    let given = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(mac).ok()?;
    let ok: bool = cookie_mac(secret, code, at).ct_eq(&given).into();
    ok.then(|| (code.to_string(), at))
}

/// Whether `code` looks like one of ours (so a path segment is not used unchecked).
pub fn valid_code(code: &str) -> bool {
    (4..=32).contains(&code.len()) && code.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Whether a click at `clicked_at` still counts at `now`: inside the 30-day window (and
/// not in the future beyond a minute of clock skew).
pub fn within_window(clicked_at: i64, now: i64) -> bool {
    clicked_at <= now + 60 && now - clicked_at < WINDOW_SECS
}

/// First touch: a link opened while an earlier click still counts keeps the earlier one.
/// Answers whether a new cookie should be set.
pub fn should_set_cookie(existing: Option<&(String, i64)>, now: i64) -> bool {
    !existing.is_some_and(|(_, at)| within_window(*at, now))
}

// ---------------------------------------------------------------- ambassador tiers

/// Ambassador tiers by active referrals. A tier raises the commission rate and shows a
/// badge; it never pays for posts or promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// 0–2 active referrals: 10 %.
    Member,
    /// 3–9: 15 %.
    Ambassador,
    /// 10 or more: 20 %.
    Champion,
}

impl Tier {
    pub fn label(self) -> &'static str {
        match self {
            Tier::Member => "Member",
            Tier::Ambassador => "Ambassador",
            Tier::Champion => "Champion",
        }
    }

    /// The commission rate in basis points.
    pub fn rate_bp(self) -> u32 {
        match self {
            Tier::Member => 1000,
            Tier::Ambassador => 1500,
            Tier::Champion => 2000,
        }
    }

    /// Active referrals the next tier needs, if there is one.
    pub fn next(self) -> Option<(Tier, usize)> {
        match self {
            Tier::Member => Some((Tier::Ambassador, 3)),
            Tier::Ambassador => Some((Tier::Champion, 10)),
            Tier::Champion => None,
        }
    }
}

pub fn tier_for(active_referrals: usize) -> Tier {
    match active_referrals {
        0..=2 => Tier::Member,
        3..=9 => Tier::Ambassador,
        _ => Tier::Champion,
    }
}

/// A referral is active while its customer pays: a subscription active or past due
/// (dunning), and at least one invoice paid and not refunded.
pub fn is_active(sub: Option<&Subscription>, invoices: &[Invoice]) -> bool {
    sub.is_some_and(|s| matches!(s.status, Status::Active | Status::PastDue))
        && invoices.iter().any(|i| i.status == InvoiceStatus::Paid && i.total_minor > 0)
}

/// `rate_bp` of `total_minor`, rounded down (never more than the rate promises).
pub fn commission_amount(total_minor: i64, rate_bp: u32) -> i64 {
    if total_minor <= 0 {
        return 0;
    }
    ((total_minor as i128 * rate_bp as i128) / 10_000) as i64
}

/// A rate given in percent ("25", "12.5") as basis points: above 0, at most 50 %, and
/// no finer than a hundredth of a percent.
pub fn parse_rate_percent(s: &str) -> Result<u32> {
    let bad = || {
        ReferralError::Invalid("the rate must be a percentage above 0 and at most 50, like 20 or 12.5".into())
    };
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty()
        || whole.len() > 2
        || frac.len() > 2
        || !(whole.chars().chain(frac.chars())).all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let bp = whole.parse::<u32>().map_err(|_| bad())? * 100
        + format!("{frac:0<2}").parse::<u32>().map_err(|_| bad())?;
    if bp == 0 || bp > 5000 {
        return Err(bad());
    }
    Ok(bp)
}

// ---------------------------------------------------------------- fraud rules

/// The domain of an address, lower-cased.
pub fn email_domain(email: &str) -> Option<String> {
    let (_, domain) = email.trim().rsplit_once('@')?;
    (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
}

/// The mailbox an address delivers to: lower-cased, without a `+tag`, and for Gmail
/// without dots (which Gmail ignores), so `a.da+ref@gmail.com` is `ada@gmail.com`.
pub fn mailbox(email: &str) -> String {
    let email = email.trim().to_ascii_lowercase();
    let Some((local, domain)) = email.rsplit_once('@') else { return email };
    let local = local.split('+').next().unwrap_or(local);
    let local = if domain == "gmail.com" || domain == "googlemail.com" {
        local.replace('.', "")
    } else {
        local.to_string()
    };
    let domain = if domain == "googlemail.com" { "gmail.com" } else { domain };
    format!("{local}@{domain}")
}

/// What the fraud rules look at for one paid invoice.
pub struct FraudFacts<'a> {
    pub attribution: &'a Attribution,
    /// The paid invoice.
    pub invoice: &'a Invoice,
    /// The referrer's own invoices (their payment fingerprints).
    pub referrer_invoices: &'a [Invoice],
    /// The referred customer's invoices (earlier quick refunds).
    pub referred_invoices: &'a [Invoice],
}

/// A payment fingerprint worth comparing: not empty and not the credit balance (which
/// says nothing about who paid).
fn fingerprint(r: Option<&str>) -> Option<&str> {
    r.map(str::trim).filter(|r| !r.is_empty() && *r != "credit")
}

/// Why this commission must wait for the operator; empty when none of the rules fires.
pub fn fraud_reasons(f: &FraudFacts) -> Vec<String> {
    let a = f.attribution;
    let mut reasons = Vec::new();
    if a.referrer_id == a.referred_id || mailbox(&a.referrer_email) == mailbox(&a.referred_email) {
        reasons.push("self-referral: the referrer and the referred customer are the same".to_string());
    } else if let (Some(d1), Some(d2)) = (email_domain(&a.referrer_email), email_domain(&a.referred_email)) {
        if d1 == d2 && !PUBLIC_MAIL_DOMAINS.contains(&d1.as_str()) {
            reasons.push(format!("same e-mail domain as the referrer ({d1})"));
        }
    }
    if let Some(fp) = fingerprint(f.invoice.payment_ref.as_deref()) {
        if f.referrer_invoices.iter().any(|i| fingerprint(i.payment_ref.as_deref()) == Some(fp)) {
            reasons.push("same payment fingerprint as one of the referrer's own payments".to_string());
        }
    }
    let paid_at = f.invoice.paid_at.unwrap_or(i64::MAX);
    let quick = f.referred_invoices.iter().find(|i| {
        i.id != f.invoice.id
            && match (i.paid_at, i.refunded_at) {
                (Some(p), Some(r)) => r - p < QUICK_REFUND_SECS && r <= paid_at,
                _ => false,
            }
    });
    if let Some(i) = quick {
        reasons.push(format!(
            "an earlier invoice of this customer ({}) was refunded within 14 days of payment",
            i.id
        ));
    }
    reasons
}

/// Whether `invoice` was refunded within 14 days of its payment.
pub fn quick_refund(invoice: &Invoice) -> bool {
    matches!((invoice.paid_at, invoice.refunded_at), (Some(p), Some(r)) if r - p < QUICK_REFUND_SECS)
}

// ---------------------------------------------------------------- months and reports

/// A calendar month (UTC), `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    pub fn parse(s: &str) -> Result<Month> {
        let bad = || {
            ReferralError::Invalid(format!(
                "'{}' is not a month; write it as YYYY-MM, like 2027-03",
                s.chars().take(20).collect::<String>()
            ))
        };
        let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 || !y.chars().chain(m.chars()).all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let (year, month) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if !(1..=12).contains(&month) || year < 1970 {
            return Err(bad());
        }
        Ok(Month { year, month })
    }

    pub fn of_secs(secs: i64) -> Month {
        let (year, month, _) = dates::to_ymd(dates::day_of_secs(secs));
        Month { year, month }
    }

    /// Unix seconds of its first instant and of the next month's.
    pub fn range(self) -> (i64, i64) {
        let start = dates::from_ymd(self.year, self.month, 1);
        let (ny, nm) = if self.month == 12 { (self.year + 1, 1) } else { (self.year, self.month + 1) };
        let end = dates::from_ymd(ny, nm, 1);
        (start as i64 * 86_400, end as i64 * 86_400)
    }

    pub fn contains(self, secs: i64) -> bool {
        let (a, b) = self.range();
        (a..b).contains(&secs)
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// One referrer's payout for a month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayoutLine {
    pub referrer_id: String,
    pub currency: String,
    pub commissions: usize,
    pub amount_minor: i64,
    /// Of those, already marked paid.
    pub paid_minor: i64,
}

/// The month's payout: commissions earned in `month` and approved (or already paid), per
/// referrer and currency. Held, rejected and clawed-back ones are not owed.
pub fn payouts(commissions: &[Commission], month: Month) -> Vec<PayoutLine> {
    let mut by: BTreeMap<(String, String), PayoutLine> = BTreeMap::new();
    for c in commissions {
        if !month.contains(c.earned_at)
            || !matches!(c.status, CommissionStatus::Approved | CommissionStatus::Paid)
        {
            continue;
        }
        let line = by.entry((c.referrer_id.clone(), c.currency.clone())).or_insert_with(|| PayoutLine {
            referrer_id: c.referrer_id.clone(),
            currency: c.currency.clone(),
            commissions: 0,
            amount_minor: 0,
            paid_minor: 0,
        });
        line.commissions += 1;
        line.amount_minor += c.amount_minor;
        if c.status == CommissionStatus::Paid {
            line.paid_minor += c.amount_minor;
        }
    }
    by.into_values().collect()
}

/// Commission money paid out in one month (for unit economics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthTotal {
    /// `YYYY-MM`.
    pub month: String,
    pub currency: String,
    /// Paid out that month, less clawbacks that month of commissions already paid.
    pub amount_minor: i64,
    /// Commissions paid out that month.
    pub commissions: usize,
}

/// Commissions paid per month, from the records: a commission counts in the month an
/// operator marked its payout paid; a refund after that subtracts it in the refund's
/// month (the money is recovered then). Oldest month first.
pub fn paid_totals(commissions: &[Commission]) -> Vec<MonthTotal> {
    let mut by: BTreeMap<(Month, String), MonthTotal> = BTreeMap::new();
    let mut add = |at: i64, currency: &str, amount: i64, count: usize| {
        let m = Month::of_secs(at);
        let t = by.entry((m, currency.to_string())).or_insert_with(|| MonthTotal {
            month: m.to_string(),
            currency: currency.to_string(),
            amount_minor: 0,
            commissions: 0,
        });
        t.amount_minor += amount;
        t.commissions += count;
    };
    for c in commissions {
        if let Some(paid) = c.paid_out_at {
            add(paid, &c.currency, c.amount_minor, 1);
            if let (CommissionStatus::ClawedBack, Some(back)) = (c.status, c.clawed_back_at) {
                add(back, &c.currency, -c.amount_minor, 0);
            }
        }
    }
    by.into_values().collect()
}

/// Commissions paid per month in the data directory's store (see [`paid_totals`]).
pub fn paid_by_month(db: &sled::Db) -> Result<Vec<MonthTotal>> {
    Ok(paid_totals(&Referrals::open(db)?.commissions()?))
}

// ---------------------------------------------------------------- recording

/// Writes the commission of paid invoice `invoice` if its customer was referred (once;
/// a second call changes nothing). Answers the commission when one exists.
pub fn record_payment(refs: &Referrals, billing: &Billing, invoice: &Invoice) -> Result<Option<Commission>> {
    let id = format!("com_{}", invoice.id);
    if let Some(c) = refs.commission(&id)? {
        return Ok(Some(c));
    }
    let Some(paid_at) = invoice.paid_at else { return Ok(None) };
    if invoice.total_minor <= 0 {
        return Ok(None);
    }
    let Some(a) = refs.attribution(&invoice.customer_id)? else { return Ok(None) };
    let (source, rate_bp) = match refs.partner(&a.referrer_id)? {
        Some(p) => (Source::Partner, p.rate_bp),
        None => (Source::Referral, tier_for(active_referrals(refs, billing, &a.referrer_id)?).rate_bp()),
    };
    let referrer_invoices = billing.invoices(&a.referrer_id)?;
    let referred_invoices = billing.invoices(&a.referred_id)?;
    let reasons = fraud_reasons(&FraudFacts {
        attribution: &a,
        invoice,
        referrer_invoices: &referrer_invoices,
        referred_invoices: &referred_invoices,
    });
    let c = Commission {
        id,
        invoice_id: invoice.id.clone(),
        referrer_id: a.referrer_id.clone(),
        referred_id: a.referred_id.clone(),
        source,
        currency: invoice.currency.clone(),
        invoice_total_minor: invoice.total_minor,
        rate_bp,
        amount_minor: commission_amount(invoice.total_minor, rate_bp),
        earned_at: paid_at,
        status: if reasons.is_empty() { CommissionStatus::Approved } else { CommissionStatus::Held },
        reasons,
        decided_at: None,
        decided_by: None,
        paid_out_at: None,
        clawed_back_at: None,
    };
    let note = if c.reasons.is_empty() { String::new() } else { c.reasons.join("; ") };
    let entry = LedgerEntry::of(&c, paid_at, EntryKind::Earned, c.amount_minor, &note);
    let (stored, _) = refs.insert_commission(&c, entry)?;
    Ok(Some(stored))
}

/// Claws back the commission of refunded invoice `invoice` (writing it first if the
/// payment was never recorded); once. Rejected commissions were never owed and stay so.
pub fn record_refund(refs: &Referrals, billing: &Billing, invoice: &Invoice) -> Result<Option<Commission>> {
    let Some(refunded_at) = invoice.refunded_at else { return Ok(None) };
    let Some(c) = record_payment(refs, billing, invoice)? else { return Ok(None) };
    let note = if quick_refund(invoice) {
        "refunded within 14 days of payment".to_string()
    } else {
        "refunded".to_string()
    };
    let (after, _) = refs.update_commission(&c.id, |c| {
        if matches!(c.status, CommissionStatus::ClawedBack | CommissionStatus::Rejected) {
            return Ok(None);
        }
        c.status = CommissionStatus::ClawedBack;
        c.clawed_back_at = Some(refunded_at);
        Ok(Some(LedgerEntry::of(c, refunded_at, EntryKind::ClawedBack, -c.amount_minor, &note)))
    })?;
    Ok(Some(after))
}

/// Active referrals of `referrer_id` now (see [`is_active`]).
pub fn active_referrals(refs: &Referrals, billing: &Billing, referrer_id: &str) -> Result<usize> {
    let mut n = 0;
    for a in refs.referred_by(referrer_id)? {
        let sub = billing.subscription(&a.referred_id)?;
        if is_active(sub.as_ref(), &billing.invoices(&a.referred_id)?) {
            n += 1;
        }
    }
    Ok(n)
}

/// Brings the ledger up to date with the invoices of `referred` customers (all
/// attributed customers when `None`): what a missed notice would have written.
pub fn reconcile(refs: &Referrals, billing: &Billing, referred: Option<&[String]>) -> Result<usize> {
    let ids: Vec<String> = match referred {
        Some(ids) => ids.to_vec(),
        None => refs.attributions()?.into_iter().map(|a| a.referred_id).collect(),
    };
    let mut n = 0;
    for id in ids {
        for inv in billing.invoices(&id)? {
            let done = match inv.status {
                InvoiceStatus::Paid => record_payment(refs, billing, &inv)?,
                InvoiceStatus::Refunded => record_refund(refs, billing, &inv)?,
                _ => None,
            };
            n += usize::from(done.is_some());
        }
    }
    Ok(n)
}

/// Applies billing notices: a receipt writes the invoice's commission, a refund claws
/// it back. Failures are logged, never returned: the billing change stands, and the
/// pages' [`reconcile`] writes what was missed.
pub fn apply_notices(refs: &Referrals, billing: &Billing, notices: &[Notice]) {
    for n in notices {
        let Some(invoice_id) = n.invoice_id.as_deref() else { continue };
        if !matches!(n.kind, NoticeKind::Receipt | NoticeKind::Refunded) {
            continue;
        }
        let done = billing.invoice(invoice_id).map_err(ReferralError::from).and_then(|inv| match inv {
            Some(inv) if n.kind == NoticeKind::Receipt => record_payment(refs, billing, &inv),
            Some(inv) => record_refund(refs, billing, &inv),
            None => Ok(None),
        });
        if let Err(e) = done {
            tracing::error!(invoice = invoice_id, error = %e, "referral commission not recorded");
        }
    }
}

/// The referral store of each billing store the server runs, so [`on_notices`] (called
/// where only the billing store is at hand) writes to the same database.
static ATTACHED: Mutex<Vec<(Weak<Billing>, Referrals)>> = Mutex::new(Vec::new());

/// Tells [`on_notices`] which referral trees belong with `billing` (the server's pages
/// and the sign-up hook call it; a second call changes nothing).
pub fn attach(db: &sled::Db, billing: &Arc<Billing>) {
    let mut list = ATTACHED.lock().unwrap_or_else(|p| p.into_inner());
    list.retain(|(b, _)| b.strong_count() > 0);
    if list.iter().any(|(b, _)| std::ptr::eq(b.as_ptr(), Arc::as_ptr(billing))) {
        return;
    }
    match Referrals::open(db) {
        Ok(refs) => list.push((Arc::downgrade(billing), refs)),
        Err(e) => tracing::error!(error = %e, "referral trees do not open"),
    }
}

/// The hook billing calls with every change's notices (`billing::job::send_notices`):
/// commissions for receipts, clawbacks for refunds, in the referral trees attached to
/// this billing store. A store not attached yet is caught up by [`reconcile`] later.
pub fn on_notices(billing: &Billing, notices: &[Notice]) {
    if !notices.iter().any(|n| matches!(n.kind, NoticeKind::Receipt | NoticeKind::Refunded)) {
        return;
    }
    let refs = {
        let list = ATTACHED.lock().unwrap_or_else(|p| p.into_inner());
        list.iter().find(|(b, _)| std::ptr::eq(b.as_ptr(), billing)).map(|(_, r)| r.clone())
    };
    match refs {
        Some(refs) => apply_notices(&refs, billing, notices),
        None => tracing::debug!("referral trees not attached yet; the pages reconcile later"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::tiers::Tiers;
    use crate::billing::{Interval, Plan, Prices};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const DAY: i64 = 86_400;
    /// 2027-01-15 00:00 UTC.
    const T0: i64 = 1_800_000_000 - 1_800_000_000 % DAY;

    fn db() -> sled::Db {
        sled::Config::new().temporary(true).open().unwrap()
    }

    fn invoice(
        id: &str,
        customer: &str,
        total: i64,
        paid: Option<i64>,
        refunded: Option<i64>,
        r: Option<&str>,
    ) -> Invoice {
        let day = dates::day_of_secs(T0);
        Invoice {
            id: id.into(),
            number: 1,
            customer_id: customer.into(),
            issued: day,
            due: day + 7,
            period: crate::billing::subscription::Period { start: day, end: day + 31 },
            currency: "usd".into(),
            lines: Vec::new(),
            total_minor: total,
            status: if refunded.is_some() { InvoiceStatus::Refunded } else { InvoiceStatus::Paid },
            paid_at: paid,
            refunded_at: refunded,
            payment_ref: r.map(str::to_string),
        }
    }

    fn attribution(referrer: (&str, &str), referred: (&str, &str)) -> Attribution {
        Attribution {
            referred_id: referred.0.into(),
            referrer_id: referrer.0.into(),
            code: "abcdefghij".into(),
            clicked_at: T0,
            at: T0,
            referred_email: referred.1.into(),
            referrer_email: referrer.1.into(),
        }
    }

    #[test]
    fn the_cookie_is_signed_and_cannot_be_forged() {
        let v = sign_cookie(SECRET, "abcdefghij", T0);
        assert_eq!(read_cookie(SECRET, &v), Some(("abcdefghij".to_string(), T0)));
        // Another code, an earlier time or another server's secret: refused.
        let mac = v.rsplit('.').next().unwrap();
        assert_eq!(read_cookie(SECRET, &format!("zzzzzzzzzz.{T0}.{mac}")), None);
        assert_eq!(read_cookie(SECRET, &format!("abcdefghij.{}.{mac}", T0 - DAY)), None);
        assert_eq!(read_cookie(b"another secret", &v), None);
        assert_eq!(read_cookie(SECRET, "abcdefghij"), None);
        assert_eq!(read_cookie(SECRET, &format!("ab/../x.{T0}.{mac}")), None);
    }

    #[test]
    fn a_click_counts_for_thirty_days() {
        assert!(within_window(T0, T0));
        assert!(within_window(T0, T0 + 30 * DAY - 1));
        assert!(!within_window(T0, T0 + 30 * DAY));
        // A cookie dated in the future (a clock far off) does not count.
        assert!(within_window(T0 + 30, T0));
        assert!(!within_window(T0 + 3600, T0));
    }

    #[test]
    fn the_first_link_wins_inside_the_window() {
        assert!(should_set_cookie(None, T0));
        // Opened 10 days ago: a second link keeps the first.
        let earlier = ("first00000".to_string(), T0 - 10 * DAY);
        assert!(!should_set_cookie(Some(&earlier), T0));
        // Opened 31 days ago: expired, the new link counts.
        let stale = ("first00000".to_string(), T0 - 31 * DAY);
        assert!(should_set_cookie(Some(&stale), T0));
    }

    #[test]
    fn tiers_follow_active_referrals() {
        assert_eq!(
            [0, 2, 3, 9, 10, 50].map(tier_for),
            [Tier::Member, Tier::Member, Tier::Ambassador, Tier::Ambassador, Tier::Champion, Tier::Champion]
        );
        assert_eq!([Tier::Member, Tier::Ambassador, Tier::Champion].map(Tier::rate_bp), [1000, 1500, 2000]);
        assert_eq!(Tier::Member.next(), Some((Tier::Ambassador, 3)));
    }

    #[test]
    fn commissions_are_a_rate_of_the_total_rounded_down() {
        // $49.00 at 10 %: $4.90. $49.99 at 15 %: 749.85 cents, so 749.
        assert_eq!(commission_amount(4900, 1000), 490);
        assert_eq!(commission_amount(4999, 1500), 749);
        assert_eq!(commission_amount(0, 1000), 0);
        assert_eq!(commission_amount(-4900, 1000), 0);
        assert_eq!(parse_rate_percent("20").unwrap(), 2000);
        assert_eq!(parse_rate_percent("12.5").unwrap(), 1250);
        assert_eq!(parse_rate_percent("0.25").unwrap(), 25);
        for bad in ["0", "50.01", "51", "abc", "12.345", "", "-5", "1e3"] {
            assert!(parse_rate_percent(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn months_parse_and_bound() {
        let m = Month::parse("2027-03").unwrap();
        let (a, b) = m.range();
        assert_eq!(a, dates::from_ymd(2027, 3, 1) as i64 * DAY);
        assert_eq!(b - a, 31 * DAY);
        assert!(m.contains(a) && m.contains(b - 1) && !m.contains(b) && !m.contains(a - 1));
        assert_eq!(Month::parse("2027-12").unwrap().range().1, dates::from_ymd(2028, 1, 1) as i64 * DAY);
        assert_eq!(m.to_string(), "2027-03");
        assert_eq!(Month::of_secs(a + 5 * DAY), m);
        for bad in ["2027-13", "2027-00", "27-03", "2027/03", "2027-3", "march", ""] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
    }

    fn reasons(a: &Attribution, inv: &Invoice, referrer: &[Invoice], referred: &[Invoice]) -> Vec<String> {
        fraud_reasons(&FraudFacts {
            attribution: a,
            invoice: inv,
            referrer_invoices: referrer,
            referred_invoices: referred,
        })
    }

    #[test]
    fn a_clean_referral_fires_no_rule() {
        let a = attribution(("cus_a", "ada@example.org"), ("cus_b", "bob@example.net"));
        let inv = invoice("inv_2", "cus_b", 4900, Some(T0), None, Some("TX-B"));
        let own = [invoice("inv_1", "cus_a", 4900, Some(T0), None, Some("TX-A"))];
        assert!(reasons(&a, &inv, &own, std::slice::from_ref(&inv)).is_empty());
    }

    #[test]
    fn self_referral_is_held() {
        let same = attribution(("cus_a", "ada@example.org"), ("cus_a", "ada@example.org"));
        let inv = invoice("inv_2", "cus_a", 4900, Some(T0), None, None);
        assert!(reasons(&same, &inv, &[], &[])[0].starts_with("self-referral"));
        // Another account on the same mailbox: a +tag and Gmail's dots change nothing.
        let alias = attribution(("cus_a", "ada@gmail.com"), ("cus_b", "A.da+ref@googlemail.com"));
        let r = reasons(&alias, &inv, &[], &[]);
        assert_eq!(r.len(), 1);
        assert!(r[0].starts_with("self-referral"), "{r:?}");
    }

    #[test]
    fn the_referrers_own_domain_is_held_but_public_providers_are_not() {
        let inv = invoice("inv_2", "cus_b", 4900, Some(T0), None, None);
        let colleague = attribution(("cus_a", "ada@lab.example.org"), ("cus_b", "bob@LAB.example.org"));
        assert_eq!(
            reasons(&colleague, &inv, &[], &[]),
            vec!["same e-mail domain as the referrer (lab.example.org)"]
        );
        let friends = attribution(("cus_a", "ada@gmail.com"), ("cus_b", "bob@gmail.com"));
        assert!(reasons(&friends, &inv, &[], &[]).is_empty());
    }

    #[test]
    fn the_referrers_payment_fingerprint_is_held() {
        let a = attribution(("cus_a", "ada@example.org"), ("cus_b", "bob@example.net"));
        let own = [invoice("inv_1", "cus_a", 4900, Some(T0), None, Some("IBAN-DE89-0001"))];
        let inv = invoice("inv_2", "cus_b", 4900, Some(T0), None, Some("IBAN-DE89-0001"));
        assert_eq!(
            reasons(&a, &inv, &own, &[]),
            vec!["same payment fingerprint as one of the referrer's own payments"]
        );
        // Credit balance and missing references say nothing about the payer.
        let own = [invoice("inv_1", "cus_a", 4900, Some(T0), None, Some("credit"))];
        let inv = invoice("inv_2", "cus_b", 4900, Some(T0), None, Some("credit"));
        assert!(reasons(&a, &inv, &own, &[]).is_empty());
    }

    #[test]
    fn a_refund_within_fourteen_days_holds_the_customers_later_commissions() {
        let a = attribution(("cus_a", "ada@example.org"), ("cus_b", "bob@example.net"));
        // inv_1 paid on day 0 and refunded on day 5 (quick); inv_2 paid on day 31.
        let quick = invoice("inv_1", "cus_b", 4900, Some(T0), Some(T0 + 5 * DAY), None);
        let later = invoice("inv_2", "cus_b", 4900, Some(T0 + 31 * DAY), None, None);
        let r = reasons(&a, &later, &[], &[quick.clone(), later.clone()]);
        assert_eq!(
            r,
            vec!["an earlier invoice of this customer (inv_1) was refunded within 14 days of payment"]
        );
        assert!(quick_refund(&quick));
        // Refunded on day 14 exactly: not quick.
        let slow = invoice("inv_1", "cus_b", 4900, Some(T0), Some(T0 + 14 * DAY), None);
        assert!(!quick_refund(&slow));
        assert!(reasons(&a, &later, &[], &[slow, later.clone()]).is_empty());
        // A quick refund after this payment did not exist when it was paid.
        let after = invoice("inv_3", "cus_b", 4900, Some(T0 + 40 * DAY), Some(T0 + 41 * DAY), None);
        assert!(reasons(&a, &later, &[], &[after, later.clone()]).is_empty());
    }

    /// A billing store where `cus_b` pays (and maybe refunds) a $49 Pro invoice.
    fn paid_invoice(
        b: &Billing,
        customer: &str,
        paid_at: i64,
        reference: Option<&str>,
    ) -> (Invoice, Vec<Notice>) {
        let p = Prices::from_tiers(&Tiers::builtin());
        let day = dates::day_of_secs(paid_at) - 14;
        b.start(customer, &Plan::new("pro", Interval::Monthly), &p, day, paid_at, "t").unwrap();
        let issued = b.run_daily(day + 14, paid_at, &p).unwrap().remove(0);
        let inv = issued.invoice.unwrap();
        let paid = b.mark_paid(&inv.id, reference, paid_at, "t").unwrap();
        (paid.invoice.unwrap(), paid.notices)
    }

    #[test]
    fn a_paid_invoice_earns_once_and_a_refund_claws_back_once() {
        let db = db();
        let billing = Billing::open(&db).unwrap();
        let refs = Referrals::open(&db).unwrap();
        refs.attribute(&attribution(("cus_a", "ada@example.org"), ("cus_b", "bob@example.net"))).unwrap();
        let (inv, notices) = paid_invoice(&billing, "cus_b", T0, Some("TX-1"));
        assert_eq!(inv.total_minor, 4900);
        assert!(notices.iter().any(|n| n.kind == NoticeKind::Receipt));
        apply_notices(&refs, &billing, &notices);
        apply_notices(&refs, &billing, &notices);
        let c = refs.commission(&format!("com_{}", inv.id)).unwrap().unwrap();
        assert_eq!(
            (c.status, c.amount_minor, c.rate_bp, c.earned_at),
            (CommissionStatus::Approved, 490, 1000, T0)
        );
        assert_eq!(refs.ledger().unwrap().len(), 1, "a notice seen twice writes once");
        // Reconciling from the invoices finds nothing new.
        reconcile(&refs, &billing, None).unwrap();
        assert_eq!(refs.ledger().unwrap().len(), 1);

        // Refunded 3 days later: clawed back, once, noted as a quick refund.
        let refund = billing.refund(&inv.id, T0 + 3 * DAY, "t").unwrap();
        apply_notices(&refs, &billing, &refund.notices);
        apply_notices(&refs, &billing, &refund.notices);
        reconcile(&refs, &billing, None).unwrap();
        let c = refs.commission(&c.id).unwrap().unwrap();
        assert_eq!((c.status, c.clawed_back_at), (CommissionStatus::ClawedBack, Some(T0 + 3 * DAY)));
        let ledger = refs.ledger().unwrap();
        assert_eq!(
            ledger.iter().map(|e| (e.kind, e.amount_minor)).collect::<Vec<_>>(),
            vec![(EntryKind::Earned, 490), (EntryKind::ClawedBack, -490)]
        );
        assert_eq!(ledger[1].note, "refunded within 14 days of payment");
        assert_eq!(ledger.iter().map(|e| e.amount_minor).sum::<i64>(), 0);
    }

    #[test]
    fn a_missed_notice_is_written_by_reconciling() {
        let db = db();
        let billing = Billing::open(&db).unwrap();
        let refs = Referrals::open(&db).unwrap();
        refs.attribute(&attribution(("cus_a", "ada@example.org"), ("cus_b", "bob@example.net"))).unwrap();
        let (inv, _) = paid_invoice(&billing, "cus_b", T0, None);
        billing.refund(&inv.id, T0 + 20 * DAY, "t").unwrap();
        // Neither notice was seen: the refund writes the commission and its clawback.
        assert_eq!(reconcile(&refs, &billing, None).unwrap(), 1);
        let kinds: Vec<_> = refs.ledger().unwrap().iter().map(|e| (e.kind, e.note.clone())).collect();
        assert_eq!(
            kinds,
            vec![(EntryKind::Earned, String::new()), (EntryKind::ClawedBack, "refunded".into())]
        );
    }

    #[test]
    fn unreferred_customers_earn_nothing_and_fraud_holds() {
        let db = db();
        let billing = Billing::open(&db).unwrap();
        let refs = Referrals::open(&db).unwrap();
        let (_, notices) = paid_invoice(&billing, "cus_x", T0, None);
        apply_notices(&refs, &billing, &notices);
        assert!(refs.commissions().unwrap().is_empty());
        // The referrer paid with the same reference: held.
        refs.attribute(&attribution(("cus_a", "ada@example.org"), ("cus_b", "bob@example.net"))).unwrap();
        paid_invoice(&billing, "cus_a", T0, Some("CARD-4242"));
        let (inv, notices) = paid_invoice(&billing, "cus_b", T0 + DAY, Some("CARD-4242"));
        apply_notices(&refs, &billing, &notices);
        let c = refs.commission(&format!("com_{}", inv.id)).unwrap().unwrap();
        assert_eq!(c.status, CommissionStatus::Held);
        assert_eq!(refs.held().unwrap().len(), 1);
    }

    #[test]
    fn the_billing_hook_writes_to_the_attached_store() {
        let db = db();
        let billing = Arc::new(Billing::open(&db).unwrap());
        let refs = Referrals::open(&db).unwrap();
        refs.attribute(&attribution(("cus_a", "ada@example.org"), ("cus_b", "bob@example.net"))).unwrap();
        let (inv, notices) = paid_invoice(&billing, "cus_b", T0, None);
        // Not attached: nothing (the pages reconcile later).
        on_notices(&billing, &notices);
        assert!(refs.commissions().unwrap().is_empty());
        attach(&db, &billing);
        attach(&db, &billing);
        on_notices(&billing, &notices);
        assert_eq!(refs.commission(&format!("com_{}", inv.id)).unwrap().unwrap().amount_minor, 490);
    }

    #[test]
    fn partners_earn_their_rate() {
        let db = db();
        let billing = Billing::open(&db).unwrap();
        let refs = Referrals::open(&db).unwrap();
        refs.put_partner(&Partner { customer_id: "cus_a".into(), rate_bp: 2500, since: T0, by: "op".into() })
            .unwrap();
        refs.attribute(&attribution(("cus_a", "ada@example.org"), ("cus_b", "bob@example.net"))).unwrap();
        let (_, notices) = paid_invoice(&billing, "cus_b", T0, None);
        apply_notices(&refs, &billing, &notices);
        let c = &refs.commissions().unwrap()[0];
        assert_eq!((c.source, c.rate_bp, c.amount_minor), (Source::Partner, 2500, 1225));
    }

    fn commission(
        id: &str,
        referrer: &str,
        amount: i64,
        earned_at: i64,
        status: CommissionStatus,
    ) -> Commission {
        Commission {
            id: id.into(),
            invoice_id: id.trim_start_matches("com_").into(),
            referrer_id: referrer.into(),
            referred_id: "cus_z".into(),
            source: Source::Referral,
            currency: "usd".into(),
            invoice_total_minor: amount * 10,
            rate_bp: 1000,
            amount_minor: amount,
            earned_at,
            status,
            reasons: Vec::new(),
            decided_at: None,
            decided_by: None,
            paid_out_at: None,
            clawed_back_at: None,
        }
    }

    #[test]
    fn the_payout_counts_approved_and_paid_commissions_of_the_month() {
        let march = Month::parse("2027-03").unwrap();
        let (start, end) = march.range();
        let list = [
            commission("com_1", "cus_a", 490, start, CommissionStatus::Approved),
            commission("com_2", "cus_a", 735, end - 1, CommissionStatus::Paid),
            commission("com_3", "cus_a", 100, start + DAY, CommissionStatus::Held),
            commission("com_4", "cus_a", 200, start + DAY, CommissionStatus::ClawedBack),
            commission("com_5", "cus_a", 300, start + DAY, CommissionStatus::Rejected),
            commission("com_6", "cus_a", 400, end, CommissionStatus::Approved),
            commission("com_7", "cus_b", 980, start + 2 * DAY, CommissionStatus::Approved),
        ];
        let lines = payouts(&list, march);
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (lines[0].referrer_id.as_str(), lines[0].commissions, lines[0].amount_minor, lines[0].paid_minor),
            ("cus_a", 2, 1225, 735)
        );
        assert_eq!((lines[1].referrer_id.as_str(), lines[1].amount_minor), ("cus_b", 980));
    }

    #[test]
    fn paid_totals_count_the_payout_month_and_subtract_later_clawbacks() {
        let (march, _) = Month::parse("2027-03").unwrap().range();
        let (april, _) = Month::parse("2027-04").unwrap().range();
        let mut paid = commission("com_1", "cus_a", 490, march, CommissionStatus::Paid);
        paid.paid_out_at = Some(march + 10 * DAY);
        let mut back = commission("com_2", "cus_a", 735, march, CommissionStatus::ClawedBack);
        back.paid_out_at = Some(march + 10 * DAY);
        back.clawed_back_at = Some(april + 2 * DAY);
        let unpaid = commission("com_3", "cus_a", 999, march, CommissionStatus::Approved);
        let totals = paid_totals(&[paid, back, unpaid]);
        assert_eq!(
            totals,
            vec![
                MonthTotal {
                    month: "2027-03".into(),
                    currency: "usd".into(),
                    amount_minor: 1225,
                    commissions: 2
                },
                MonthTotal {
                    month: "2027-04".into(),
                    currency: "usd".into(),
                    amount_minor: -735,
                    commissions: 0
                },
            ]
        );
    }

    #[test]
    fn only_held_commissions_are_decided() {
        let mut c = commission("com_1", "cus_a", 490, T0, CommissionStatus::Held);
        let e = admin::decide_one(&mut c, false, "a colleague", "op", T0).unwrap();
        assert_eq!(
            (c.status, e.kind, e.amount_minor),
            (CommissionStatus::Rejected, EntryKind::Rejected, -490)
        );
        assert!(admin::decide_one(&mut c, true, "", "op", T0).is_err());
        let mut c = commission("com_2", "cus_a", 490, T0, CommissionStatus::Held);
        let e = admin::decide_one(&mut c, true, "", "op", T0).unwrap();
        assert_eq!(
            (c.status, e.amount_minor, c.decided_by.as_deref()),
            (CommissionStatus::Approved, 0, Some("op"))
        );
    }

    #[test]
    fn attribution_is_first_touch_per_customer() {
        let db = db();
        let refs = Referrals::open(&db).unwrap();
        let code = refs.code_for("cus_a").unwrap();
        assert_eq!(refs.code_for("cus_a").unwrap(), code);
        assert_eq!(refs.owner_of(&code).unwrap().as_deref(), Some("cus_a"));
        assert!(valid_code(&code));
        assert!(refs.attribute(&attribution(("cus_a", "a@x.org"), ("cus_b", "b@y.org"))).unwrap());
        assert!(!refs.attribute(&attribution(("cus_c", "c@x.org"), ("cus_b", "b@y.org"))).unwrap());
        assert_eq!(refs.attribution("cus_b").unwrap().unwrap().referrer_id, "cus_a");
        assert_eq!(refs.referred_by("cus_a").unwrap().len(), 1);
        assert!(refs.referred_by("cus_c").unwrap().is_empty());
    }
}
