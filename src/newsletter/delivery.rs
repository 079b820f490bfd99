//! Delivering the weekly issue: a worker thread takes copies from the send queue
//! ([`super::store::Subscribers`]) and sends them over one kept SMTP connection
//! ([`crate::outbound::mail::Session`]), at most `rate_per_minute` (a governor limiter
//! consulted at the moment of sending: a message waits, it is never skipped).
//!
//! Each copy moves `queued → committed → sent`. `committed` is written durably after
//! the whole message reached the server and before the end that makes the server accept
//! it, so a `kill -9` at any moment, followed by a restart, sends every copy not yet
//! committed and none twice. A transient refusal (SMTP 4xx, no connection) retries with
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

fn run(s: DeliverySettings, wake: Wake) {
    use governor::{Quota, RateLimiter};
    let rate = NonZeroU32::new(s.rate_per_minute.max(1)).expect("positive");
    let limiter = RateLimiter::direct(
        Quota::per_minute(rate)
            .allow_burst(NonZeroU32::new(rate.get().div_ceil(60).max(1)).expect("positive")),
    );
    let domain = s.mailer.sender_domain();
    let mut issues: HashMap<u32, Issue> = HashMap::new();
    let mut session = s.mailer.session();
    loop {
        let due = match s.subscribers.due(now(), 500) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the newsletter queue");
                wake.wait(Duration::from_secs(10));
                continue;
            }
        };
        if due.is_empty() {
            wake.wait(Duration::from_secs(5));
            continue;
        }
        for (key, q) in due {
            while let Err(not_until) = limiter.check() {
                std::thread::sleep(
                    not_until.wait_time_from(governor::clock::Clock::now(
                        &governor::clock::DefaultClock::default(),
                    )),
                );
            }
            if let Err(e) = deliver(&s, &domain, &mut issues, &mut session, &key, &q) {
                tracing::error!(error = %e, "newsletter delivery could not record a result");
                std::thread::sleep(Duration::from_secs(1));
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
    if !issues.contains_key(&q.issue) {
        match s.issues.get(q.issue)? {
            Some(i) => {
                issues.insert(q.issue, i);
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
    let commit = || -> Result<(), String> {
        subs.set_state(key, now(), |q| q.state = DeliveryState::Committed).map_err(|e| e.to_string())?;
        subs.flush().map_err(|e| e.to_string())
    };
    match session.send(&mail, commit) {
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
    Ok(())
}
