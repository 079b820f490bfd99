//! Delivering the weekly issue: a worker thread takes copies from the send queue
//! ([`super::store::Subscribers`]) and sends them over one kept SMTP connection
//! ([`crate::outbound::mail::Session`]), at most `rate_per_minute` (a governor limiter
//! consulted at the moment of sending: a message waits, it is never skipped).
//!
//! Each copy moves `queued → committed → sent`. `committed` is one line appended to a
//! commit log (`DATA_DIR/newsletter-commits.log`), written after the server agreed to
//! take the message and just before the message leaves in one write (see
//! [`crate::outbound::mail::Session`]); at start the log is folded into the queue and
//! emptied. A written line outlives a `kill -9` (it is in the kernel's page cache), so a
//! kill at any moment, followed by a restart, sends every copy not yet committed and none
//! twice; only the microseconds between the two writes could lose one. The line is
//! `fdatasync`ed after the message has left, not between the two writes: a sync there
//! (milliseconds on a busy disk) widened that window until a kill hit it (a CI run lost
//! one copy in 2,000). Against a power failure the sync bounds the loss to the one copy
//! in flight. A transient refusal (SMTP 4xx, no connection) retries with
//! growing waits and fails after the last; a permanent one (5xx) is a hard bounce: the
//! copy and the address are marked `bounced` and the address gets nothing more.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use askama::Template;

use super::store::{IssueStore, Subscribers};
use super::subscribers::{
    token, DeliveryState, Purpose, Queued, Section, Subscriber, SubscriberState, RETRY_BACKOFF_SECS,
};
use super::Issue;
use crate::outbound::mail::{Mail, MailError, Mailer};

/// What the worker needs.
#[derive(Clone)]
pub struct DeliverySettings {
    pub subscribers: Subscribers,
    pub issues: Arc<dyn IssueStore>,
    pub mailer: Arc<Mailer>,
    /// Signs the links in each mail.
    pub secret: Vec<u8>,
    pub base_url: String,
    pub rate_per_minute: u32,
    /// The commit log (see the module's documentation).
    pub commit_log: std::path::PathBuf,
}

/// The append-only log of committed copies (queue keys, hex, one per line).
struct CommitLog {
    file: std::fs::File,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

impl CommitLog {
    /// Folds what an earlier run committed into the queue (copies it committed are never
    /// sent again), makes that durable, then starts an empty log.
    fn open(s: &DeliverySettings) -> Result<CommitLog, super::NewsletterError> {
        let io = |e: std::io::Error| super::NewsletterError::Disk(format!("{}: {e}", s.commit_log.display()));
        if let Ok(text) = std::fs::read_to_string(&s.commit_log) {
            let mut folded = 0;
            // A torn last line (a crash mid-write) was never committed: its message had
            // not been ended, so the server dropped it and it is sent again.
            for key in text.lines().filter(|l| l.len() % 2 == 0).filter_map(unhex) {
                let t = now();
                s.subscribers.set_state(&key, t, |q| {
                    if q.state == DeliveryState::Queued {
                        q.state = DeliveryState::Committed;
                    }
                })?;
                folded += 1;
            }
            s.subscribers.flush()?;
            if folded > 0 {
                tracing::info!(
                    copies = folded,
                    "newsletter copies committed before a restart are not sent again"
                );
            }
        }
        let file = std::fs::File::create(&s.commit_log).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(CommitLog { file })
    }

    /// One line, one unbuffered write: from here a process kill cannot lose it.
    fn commit(&mut self, key: &[u8]) -> Result<(), String> {
        use std::io::Write;
        self.file.write_all(format!("{}\n", hex(key)).as_bytes()).map_err(|e| e.to_string())
    }

    /// Makes the lines written so far survive a power failure too.
    fn sync(&mut self) -> Result<(), super::NewsletterError> {
        self.file.sync_data().map_err(|e| super::NewsletterError::Disk(e.to_string()))
    }
}

/// Wakes the worker when copies are queued (it also looks every few seconds, for retries).
#[derive(Clone, Default)]
pub struct Wake(Arc<(Mutex<bool>, Condvar)>);

impl Wake {
    pub fn notify(&self) {
        let (flag, cv) = &*self.0;
        if let Ok(mut f) = flag.lock() {
            *f = true;
            cv.notify_all();
        }
    }

    fn wait(&self, at_most: Duration) {
        let (flag, cv) = &*self.0;
        if let Ok(f) = flag.lock() {
            let (mut f, _) =
                cv.wait_timeout_while(f, at_most, |woken| !*woken).unwrap_or_else(|p| p.into_inner());
            *f = false;
        }
    }
}

#[derive(Template)]
#[template(path = "newsletter_mail.html")]
struct MailHtml<'a> {
    issue: u32,
    week: &'a str,
    name: Option<&'a str>,
    has_topics: bool,
    sections: &'a [Section],
    base: &'a str,
    manage: &'a str,
    unsubscribe: &'a str,
}

#[derive(Template)]
#[template(path = "newsletter_mail.txt")]
struct MailText<'a> {
    issue: u32,
    week: &'a str,
    name: Option<&'a str>,
    has_topics: bool,
    sections: &'a [Section],
    base: &'a str,
    manage: &'a str,
    unsubscribe: &'a str,
}

/// One reader's copy of an issue as a message: both parts, the RFC 8058 one-click
/// unsubscribe headers, and a Message-ID that names the issue and the reader.
pub fn render(
    s: &DeliverySettings,
    domain: &str,
    issue: &Issue,
    sub: &Subscriber,
    sections: &[Section],
) -> Result<Mail, askama::Error> {
    let base = s.base_url.as_str();
    let manage =
        format!("{base}/newsletter/preferences?token={}", token(&s.secret, Purpose::Manage, &sub.id));
    let unsub_token = token(&s.secret, Purpose::Unsubscribe, &sub.id);
    let unsubscribe = format!("{base}/newsletter/unsubscribe?token={unsub_token}");
    let week = format!("{} to {}", issue.week_from, issue.week_to);
    let has_topics = !sub.topics.is_empty() || !sub.searches.is_empty();
    let name = sub.name.as_deref();
    let html = MailHtml {
        issue: issue.number,
        week: &week,
        name,
        has_topics,
        sections,
        base,
        manage: &manage,
        unsubscribe: &unsubscribe,
    }
    .render()?;
    let text = MailText {
        issue: issue.number,
        week: &week,
        name,
        has_topics,
        sections,
        base,
        manage: &manage,
        unsubscribe: &unsubscribe,
    }
    .render()?;
    Ok(Mail {
        to: sub.email.clone(),
        subject: format!("citecast weekly #{}: the papers to watch from {}", issue.number, issue.week_to),
        text,
        html: Some(html),
        headers: vec![
            (
                "List-Unsubscribe",
                format!("<{unsubscribe}>, <mailto:unsubscribe@{domain}?subject=unsubscribe%20{unsub_token}>"),
            ),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()),
            ("Message-ID", format!("<newsletter-{}-{}@{domain}>", issue.number, sub.id)),
        ],
    })
}

/// Starts the worker thread; it runs for the life of the process.
pub fn start(settings: DeliverySettings, wake: Wake) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("newsletter-delivery".into())
        .spawn(move || run(settings, wake))
        .expect("a thread for newsletter delivery")
}

fn now() -> i64 {
    citecast_actors::dates::now_secs()
}

type Limiter = governor::DefaultDirectRateLimiter;

fn limiter(rate_per_minute: u32) -> Limiter {
    use governor::{Quota, RateLimiter};
    let rate = NonZeroU32::new(rate_per_minute.max(1)).expect("positive");
    // A burst of one second's worth, so the rate holds over any second.
    let burst = NonZeroU32::new(rate.get().div_ceil(60).max(1)).expect("positive");
    RateLimiter::direct(Quota::per_minute(rate).allow_burst(burst))
}

/// Sends everything due now; answers how many copies it handled (for the worker and the
/// bench, which times a whole delivery).
pub fn drain(s: &DeliverySettings) -> Result<usize, super::NewsletterError> {
    let limiter = limiter(s.rate_per_minute);
    let mut session = s.mailer.session();
    let mut issues = HashMap::new();
    let mut log = CommitLog::open(s)?;
    drain_with(s, &limiter, &mut session, &mut issues, &mut log)
}

fn drain_with(
    s: &DeliverySettings,
    limiter: &Limiter,
    session: &mut crate::outbound::mail::Session<'_>,
    issues: &mut HashMap<u32, Issue>,
    log: &mut CommitLog,
) -> Result<usize, super::NewsletterError> {
    let domain = s.mailer.sender_domain();
    let mut handled = 0;
    loop {
        let due = s.subscribers.due(now(), 500)?;
        if due.is_empty() {
            return Ok(handled);
        }
        for (key, q) in due {
            // Throttled at the moment of sending: a message waits, it is never skipped.
            while let Err(not_until) = limiter.check() {
                let clock = governor::clock::DefaultClock::default();
                std::thread::sleep(not_until.wait_time_from(governor::clock::Clock::now(&clock)));
            }
            deliver(s, &domain, issues, session, log, &key, &q)?;
            handled += 1;
        }
    }
}

fn run(s: DeliverySettings, wake: Wake) {
    let limiter = limiter(s.rate_per_minute);
    let mut session = s.mailer.session();
    let mut issues = HashMap::new();
    let mut log = loop {
        match CommitLog::open(&s) {
            Ok(log) => break log,
            Err(e) => {
                tracing::error!(error = %e, "cannot open the newsletter commit log; delivery waits");
                std::thread::sleep(Duration::from_secs(30));
            }
        }
    };
    loop {
        match drain_with(&s, &limiter, &mut session, &mut issues, &mut log) {
            Ok(_) => wake.wait(Duration::from_secs(2)),
            Err(e) => {
                tracing::error!(error = %e, "newsletter delivery could not read or record; retrying");
                wake.wait(Duration::from_secs(10));
            }
        }
    }
}

/// Sends one copy and records what happened.
fn deliver(
    s: &DeliverySettings,
    domain: &str,
    issues: &mut HashMap<u32, Issue>,
    session: &mut crate::outbound::mail::Session<'_>,
    log: &mut CommitLog,
    key: &[u8],
    q: &Queued,
) -> Result<(), super::NewsletterError> {
    let subs = &s.subscribers;
    let sub = subs.get(&q.subscriber_id)?;
    let Some(sub) = sub.filter(|s| s.state == SubscriberState::Confirmed) else {
        subs.set_state(key, now(), |q| {
            q.state = DeliveryState::Skipped;
            q.last_error = Some("no longer subscribed".into());
        })?;
        return Ok(());
    };
    if let std::collections::hash_map::Entry::Vacant(slot) = issues.entry(q.issue) {
        match s.issues.get(q.issue)? {
            Some(i) => {
                slot.insert(i);
            }
            None => {
                subs.set_state(key, now(), |q| {
                    q.state = DeliveryState::Failed;
                    q.last_error = Some("the issue is gone".into());
                })?;
                return Ok(());
            }
        }
    }
    let issue = &issues[&q.issue];
    let mail = match render(s, domain, issue, &sub, &q.sections) {
        Ok(m) => m,
        Err(e) => {
            subs.set_state(key, now(), |q| {
                q.state = DeliveryState::Failed;
                q.last_error = Some(format!("cannot render: {e}"));
            })?;
            return Ok(());
        }
    };
    let sent = session.send(&mail, || log.commit(key));
    // After the message left, never between the commit and the message (see above).
    let synced = log.sync();
    match sent {
        Ok(_) => {
            subs.set_state(key, now(), |q| q.state = DeliveryState::Sent)?;
        }
        Err(MailError::Rejected(why)) => {
            subs.set_state(key, now(), |q| {
                q.state = DeliveryState::Bounced;
                q.last_error = Some(why.clone());
            })?;
            subs.update(&sub.id, now(), |s| s.state = SubscriberState::Bounced)?;
            tracing::warn!(subscriber = %sub.id, "hard bounce: the address gets no more mail");
        }
        Err(MailError::Invalid(why)) => {
            subs.set_state(key, now(), |q| {
                q.state = DeliveryState::Failed;
                q.last_error = Some(why.clone());
            })?;
        }
        Err(e) => {
            let why = e.to_string();
            let t = now();
            subs.set_state(key, t, |q| {
                q.attempts += 1;
                q.last_error = Some(why.clone());
                match RETRY_BACKOFF_SECS.get(q.attempts as usize - 1) {
                    Some(wait) => q.next_attempt = t + wait,
                    None => q.state = DeliveryState::Failed,
                }
            })?;
            tracing::warn!(subscriber = %sub.id, error = %why, "delivery deferred");
        }
    }
    synced
}
