//! Outgoing webhooks: operators register Slack-, Discord-compatible and generic JSON
//! endpoints; features [`announce`] what happened (a newsletter issue, a contest opened,
//! locked or scored, the week's top forecast) and each subscribed endpoint gets a
//! delivery, queued in sled and sent from a background thread through the one outbound
//! client, never from the caller's request.
//!
//! Every delivery is signed as the payment webhooks are checked
//! ([`crate::billing::signature`]): `Citecast-Signature: t=<unix seconds>,v1=<hex
//! HMAC-SHA256 of "<t>.<body>">` with the endpoint's secret, so a receiver verifies it
//! with the same code. A failed attempt (no answer, or any status but 2xx) is retried
//! after [`Policy::backoff`]; after the last retry the delivery is dead-lettered and shown
//! on `/admin/webhooks`, where an operator can send it again.

pub mod admin;
pub mod error;
pub mod job;
pub mod routes;
pub mod store;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub use error::WebhookError;
pub use store::{Delivery, DeliveryState, Endpoint, Webhooks};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "citecast-signature";

/// What an endpoint can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "newsletter.issue")]
    NewsletterIssue,
    #[serde(rename = "contest.opened")]
    ContestOpened,
    #[serde(rename = "contest.locked")]
    ContestLocked,
    #[serde(rename = "contest.scored")]
    ContestScored,
    #[serde(rename = "forecast.top_of_week")]
    TopForecast,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::NewsletterIssue,
        EventKind::ContestOpened,
        EventKind::ContestLocked,
        EventKind::ContestScored,
        EventKind::TopForecast,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::NewsletterIssue => "newsletter.issue",
            EventKind::ContestOpened => "contest.opened",
            EventKind::ContestLocked => "contest.locked",
            EventKind::ContestScored => "contest.scored",
            EventKind::TopForecast => "forecast.top_of_week",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Something worth telling the places people already talk. Links are site paths
/// (`/contests/c_1`); the delivery makes them absolute with the site's address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Announcement {
    /// A newsletter issue was published.
    NewsletterIssue {
        number: u64,
        /// The week of submissions it covers, `YYYY-MM-DD`.
        week_from: String,
        week_to: String,
        /// Its page, e.g. `/newsletter/12`.
        path: String,
        /// The issue's top paper, in a few words (may be empty).
        headline: String,
    },
    /// A prediction contest takes entries.
    ContestOpened { contest_id: String, title: String, path: String, deadline: i64 },
    /// A contest's picks are locked.
    ContestLocked { contest_id: String, title: String, path: String, entries: usize },
    /// A contest was scored: who leads, and where the model placed.
    ContestScored {
        contest_id: String,
        title: String,
        path: String,
        leader: String,
        model_rank: Option<usize>,
        entries: usize,
    },
    /// The week's most likely paper by the serving model.
    TopForecast { paper_id: String, title: String, probability: f64, week_to: String, path: String },
}

impl Announcement {
    pub fn kind(&self) -> EventKind {
        match self {
            Announcement::NewsletterIssue { .. } => EventKind::NewsletterIssue,
            Announcement::ContestOpened { .. } => EventKind::ContestOpened,
            Announcement::ContestLocked { .. } => EventKind::ContestLocked,
            Announcement::ContestScored { .. } => EventKind::ContestScored,
            Announcement::TopForecast { .. } => EventKind::TopForecast,
        }
    }

    fn path(&self) -> &str {
        match self {
            Announcement::NewsletterIssue { path, .. }
            | Announcement::ContestOpened { path, .. }
            | Announcement::ContestLocked { path, .. }
            | Announcement::ContestScored { path, .. }
            | Announcement::TopForecast { path, .. } => path,
        }
    }

    /// One sentence for chat tools.
    pub fn sentence(&self) -> String {
        match self {
            Announcement::NewsletterIssue { number, week_from, week_to, headline, .. } => {
                let top = if headline.is_empty() { String::new() } else { format!(" Top pick: {headline}.") };
                format!("Newsletter issue {number} is out: the papers of {week_from} to {week_to}.{top}")
            }
            Announcement::ContestOpened { title, deadline, .. } => format!(
                "Prediction contest \"{title}\" is open: picks lock at {} UTC.",
                citecast_actors::dates::rfc3339(*deadline).replace('T', " ").trim_end_matches('Z')
            ),
            Announcement::ContestLocked { title, entries, .. } => {
                format!("Picks are locked in \"{title}\" ({entries} entries, the model included).")
            }
            Announcement::ContestScored { title, leader, model_rank, entries, .. } => {
                let model = match model_rank {
                    Some(r) => format!(" The model placed {r} of {entries}."),
                    None => String::new(),
                };
                format!("\"{title}\" is scored: {leader} leads.{model}")
            }
            Announcement::TopForecast { title, probability, week_to, .. } => format!(
                "Top forecast of the week to {week_to}: \"{title}\", {:.0} % likely to reach its year's top 10 %.",
                probability * 100.0
            ),
        }
    }
}

/// The three body shapes an endpoint can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Slack incoming webhooks: `{"text": ...}` in Slack's mrkdwn.
    Slack,
    /// Discord webhooks: `{"content": ...}`, no mentions.
    Discord,
    /// `{"id", "event", "created", "data"}`.
    Json,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "slack" => Some(Format::Slack),
            "discord" => Some(Format::Discord),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Slack => "slack",
            Format::Discord => "discord",
            Format::Json => "json",
        }
    }
}

/// Slack's three control characters in message text.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The body delivered for `a` in `format`; `base_url` makes its link absolute.
pub fn body(format: Format, a: &Announcement, delivery_id: &str, created: i64, base_url: &str) -> String {
    let url = format!("{}{}", base_url.trim_end_matches('/'), a.path());
    let v = match format {
        Format::Slack => json!({ "text": format!("{} <{}|Open>", slack_escape(&a.sentence()), url) }),
        // Titles come from people: no @everyone, no role or user pings.
        Format::Discord => json!({
            "content": format!("{} {url}", a.sentence()),
            "allowed_mentions": { "parse": [] },
        }),
        Format::Json => {
            let mut data = serde_json::to_value(a).unwrap_or(Value::Null);
            if let Some(o) = data.as_object_mut() {
                o.remove("event");
                o.insert("url".into(), Value::String(url));
            }
            json!({ "id": delivery_id, "event": a.kind().as_str(), "created": created, "data": data })
        }
    };
    v.to_string()
}

/// The signature header's value for `body` sent at `t`.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", crate::billing::signature::sign(secret, t, body))
}

/// When failed deliveries are tried again, and how long one attempt may take.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Seconds to wait after the first, second, ... failed attempt; a failure after the
    /// last one dead-letters the delivery.
    pub backoff: Vec<i64>,
    pub timeout: Duration,
}

impl Default for Policy {
    fn default() -> Policy {
        // Six attempts over about seven hours: a receiver down for a deploy or a night's
        // outage still gets the message.
        Policy { backoff: vec![30, 120, 600, 3600, 6 * 3600], timeout: Duration::from_secs(5) }
    }
}

impl Policy {
    pub fn max_attempts(&self) -> u32 {
        self.backoff.len() as u32 + 1
    }
}

/// Queues a delivery of `event` to every endpoint subscribed to its kind and starts
/// sending them on a background thread; answers how many were queued. Cheap enough for
/// any caller (a read of the few endpoints and a write per delivery), and never waits on
/// a receiver.
pub fn announce(db: &sled::Db, event: Announcement) -> Result<usize, WebhookError> {
    let hooks = Webhooks::open(db)?;
    let n = hooks.enqueue(&event, citecast_actors::dates::now_secs())?;
    if n > 0 {
        kick(db.clone());
    }
    Ok(n)
}

/// One delivery pass at a time in this process, so no delivery is sent twice at once.
static SENDING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Sends what is due on a thread of its own.
pub fn kick(db: sled::Db) {
    let spawned = std::thread::Builder::new().name("webhooks".into()).spawn(move || {
        if let Err(e) = deliver_due(&db, &Policy::default(), citecast_actors::dates::now_secs()) {
            tracing::warn!(error = %e, "webhook delivery pass failed");
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "webhook delivery thread not started; the job sends them");
    }
}

/// What a delivery pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct PassReport {
    pub delivered: usize,
    pub failed: usize,
    pub dead: usize,
}

/// Attempts every pending delivery whose time has come (`now`), once each. Blocks on
/// the receivers: call it from a thread of its own or the blocking pool.
pub fn deliver_due(db: &sled::Db, policy: &Policy, now: i64) -> Result<PassReport, WebhookError> {
    let _one = SENDING.lock().unwrap_or_else(|p| p.into_inner());
    let hooks = Webhooks::open(db)?;
    let client = crate::outbound::Client::new(policy.timeout);
    let base_url = hooks.base_url()?;
    let mut report = PassReport::default();
    for mut d in hooks.due(now)? {
        let outcome = match hooks.endpoint(&d.endpoint_id)? {
            None => Err((None, "the endpoint was removed".to_string())),
            Some(ep) => attempt(&client, &ep, &mut d, &base_url),
        };
        d.attempts += 1;
        d.last_attempt = Some(now);
        match outcome {
            Ok(status) => {
                d.state = DeliveryState::Delivered;
                d.last_status = Some(status);
                d.last_error = None;
                report.delivered += 1;
            }
            Err((status, why)) => {
                d.last_status = status;
                d.last_error = Some(why);
                match policy.backoff.get(d.attempts as usize - 1) {
                    Some(wait) => {
                        d.next_at = now + wait;
                        report.failed += 1;
                    }
                    None => {
                        d.state = DeliveryState::Dead;
                        report.dead += 1;
                        tracing::warn!(delivery = %d.id, endpoint = %d.endpoint_id, attempts = d.attempts, "webhook dead-lettered");
                    }
                }
            }
        }
        hooks.put_delivery(&d)?;
    }
    Ok(report)
}

/// One signed POST; the status on success, else the status (if any) and why.
fn attempt(
    client: &crate::outbound::Client,
    ep: &Endpoint,
    d: &mut Delivery,
    base_url: &str,
) -> Result<u16, (Option<u16>, String)> {
    let t = citecast_actors::dates::now_secs();
    let body = body(ep.format, &d.announcement, &d.id, d.created, base_url);
    let sig = signature(ep.secret.as_bytes(), t, body.as_bytes());
    let headers = [
        ("content-type", "application/json"),
        (SIGNATURE_HEADER, sig.as_str()),
        ("citecast-event", d.announcement.kind().as_str()),
        ("citecast-delivery", d.id.as_str()),
    ];
    match client.send("POST", &ep.url, &headers, Some(body.as_bytes())) {
        Ok(r) if (200..300).contains(&r.status) => Ok(r.status),
        Ok(r) => Err((Some(r.status), format!("answered {}", r.status))),
        Err(e) => Err((None, e.to_string())),
    }
}

/// Checks an endpoint URL: `http(s)://host[:port]/path`, nothing a header could be
/// smuggled through.
pub fn check_url(url: &str) -> Result<(), WebhookError> {
    crate::ops::alerts::parse_http_url(url).map(|_| ()).map_err(|e| WebhookError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored() -> Announcement {
        Announcement::ContestScored {
            contest_id: "c_1".into(),
            title: "<b>June</b> & @everyone".into(),
            path: "/contests/c_1".into(),
            leader: "Ada".into(),
            model_rank: Some(2),
            entries: 3,
        }
    }

    #[test]
    fn bodies_in_each_format() {
        let a = scored();
        let slack: Value = serde_json::from_str(&body(Format::Slack, &a, "d1", 5, "http://h/")).unwrap();
        let text = slack["text"].as_str().unwrap();
        assert!(
            text.contains("&lt;b&gt;June&lt;/b&gt; &amp;") && text.ends_with("<http://h/contests/c_1|Open>"),
            "{text}"
        );
        let discord: Value = serde_json::from_str(&body(Format::Discord, &a, "d1", 5, "http://h")).unwrap();
        assert_eq!(discord["allowed_mentions"]["parse"], json!([]));
        assert!(discord["content"].as_str().unwrap().contains("The model placed 2 of 3"));
        let generic: Value = serde_json::from_str(&body(Format::Json, &a, "d1", 5, "http://h")).unwrap();
        assert_eq!(generic["event"], "contest.scored");
        assert_eq!(generic["data"]["url"], "http://h/contests/c_1");
        assert_eq!(generic["data"]["model_rank"], 2);
        assert!(generic["data"].get("event").is_none());
    }

    #[test]
    fn signatures_verify_with_the_payment_checker() {
        let sig = signature(b"whsec_x", 100, b"{}");
        assert_eq!(crate::billing::signature::verify(Some(&sig), b"{}", &[b"whsec_x"], 100, 300), Ok(100));
        assert!(crate::billing::signature::verify(Some(&sig), b"{ }", &[b"whsec_x"], 100, 300).is_err());
    }

    #[test]
    fn kinds_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), json!(k.as_str()));
        }
    }
}
