//! Readers of the newsletter and their mail, as plain data and rules: subscriber states,
//! topics, the signed tokens of their links, and the delivery queue's records. Kept by
//! [`super::store::Subscribers`]; delivered by [`super::delivery`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::Item;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriberState {
    /// Signed up, confirmation mail sent, not confirmed yet: gets nothing else.
    Unconfirmed,
    Confirmed,
    Unsubscribed,
    /// The mail server refused the address for good (SMTP 5xx or a provider's bounce).
    Bounced,
    /// The reader marked a message as spam (a provider's complaint).
    Complained,
}

impl SubscriberState {
    pub fn label(self) -> &'static str {
        match self {
            SubscriberState::Unconfirmed => "unconfirmed",
            SubscriberState::Confirmed => "confirmed",
            SubscriberState::Unsubscribed => "unsubscribed",
            SubscriberState::Bounced => "bounced",
            SubscriberState::Complained => "complained",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscriber {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub state: SubscriberState,
    /// Subject areas ([`TOPICS`] ids).
    pub topics: Vec<String>,
    /// The reader's own searches, run against the search index each week.
    pub searches: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    pub confirmed: Option<i64>,
    pub changed: i64,
    /// When the last confirmation mail went (resends are spaced).
    pub confirmation_sent: Option<i64>,
}

/// Subject areas a reader can follow: id, label, and the search it runs against the
/// index (the same query language as `/v1/search`).
pub const TOPICS: &[(&str, &str, &str)] = &[
    ("strings", "String theory", "string OR strings"),
    ("branes", "Branes", "brane OR branes OR D-brane"),
    ("holography", "AdS/CFT and holography", "AdS OR holography OR holographic"),
    ("black-holes", "Black holes", "\"black hole\" OR \"black holes\""),
    ("susy", "Supersymmetry", "supersymmetry OR supersymmetric OR supergravity"),
    ("gauge", "Gauge theories", "gauge OR Yang-Mills"),
    ("cosmology", "Cosmology", "cosmology OR cosmological OR inflation"),
    ("quantum-gravity", "Quantum gravity", "\"quantum gravity\""),
    ("integrable", "Integrable systems", "integrable OR integrability"),
    ("matrix-models", "Matrix models", "\"matrix model\" OR \"matrix models\""),
];

/// The search a topic id runs, if it is one.
pub fn topic_query(id: &str) -> Option<&'static str> {
    TOPICS.iter().find(|t| t.0 == id).map(|t| t.2)
}

pub fn topic_label(id: &str) -> Option<&'static str> {
    TOPICS.iter().find(|t| t.0 == id).map(|t| t.1)
}

/// Most saved searches a reader keeps, and their longest length.
pub const MAX_SEARCHES: usize = 5;
pub const MAX_SEARCH_CHARS: usize = 200;

/// What a link in a mail may do. Each purpose signs differently, so a confirmation link
/// cannot unsubscribe and an unsubscribe link cannot open the preferences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Confirm,
    Unsubscribe,
    /// The preferences page: topics, searches, export, deletion.
    Manage,
}

impl Purpose {
    fn tag(self) -> &'static [u8] {
        match self {
            Purpose::Confirm => b"confirm",
            Purpose::Unsubscribe => b"unsubscribe",
            Purpose::Manage => b"manage",
        }
    }
}

fn mac(secret: &[u8], purpose: Purpose, id: &str) -> [u8; 32] {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(b"newsletter\0");
    m.update(purpose.tag());
    m.update(b"\0");
    m.update(id.as_bytes());
    m.finalize().into_bytes().into()
}

/// The token of a link: `<subscriber id>.<signature>`; nothing is stored, and a
/// subscriber's links stay valid as long as the site secret does.
pub fn token(secret: &[u8], purpose: Purpose, id: &str) -> String {
    format!("{id}.{}", URL_SAFE_NO_PAD.encode(&mac(secret, purpose, id)[..18]))
}

/// The subscriber id a token was made for, when it is genuine for `purpose`.
pub fn verify(secret: &[u8], purpose: Purpose, token: &str) -> Option<String> {
    if token.len() > 200 {
        return None;
    }
    let (id, sig) = token.rsplit_once('.')?;
    let given = URL_SAFE_NO_PAD.decode(sig).ok()?;
    let want = mac(secret, purpose, id);
    (given.len() == 18 && bool::from(want[..18].ct_eq(&given))).then(|| id.to_string())
}

/// One section of a reader's issue: a topic (or search) and its papers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    pub title: String,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its turn (or, with `attempts > 0`, for its retry time).
    Queued,
    /// The whole message reached the mail server and was recorded just before the end
    /// that makes the server accept it: never sent again.
    Committed,
    Sent,
    /// The server refused the address for good: a hard bounce.
    Bounced,
    /// Refused for now on every retry, or the address could not make a message.
    Failed,
    /// The reader unsubscribed (or was deleted) after the issue was queued.
    Skipped,
}

/// One reader's copy of one issue in the send queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    pub issue: u32,
    pub subscriber_id: String,
    pub sections: Vec<Section>,
    pub state: DeliveryState,
    pub attempts: u32,
    /// Unix seconds before which it is not tried again.
    pub next_attempt: i64,
    pub last_error: Option<String>,
    pub updated: i64,
}

/// Seconds to wait after the n-th transient refusal (1-based); after the last, it fails.
pub const RETRY_BACKOFF_SECS: &[i64] = &[60, 300, 1800, 7200, 43_200];

/// Counts of one issue's deliveries by state, for the dashboard and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryStats {
    pub queued: u64,
    /// Queued messages waiting for a retry after a transient refusal.
    pub deferred: u64,
    pub sent: u64,
    pub bounced: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl DeliveryStats {
    fn slot(&mut self, (state, deferred): (DeliveryState, bool)) -> &mut u64 {
        match state {
            DeliveryState::Queued if deferred => &mut self.deferred,
            DeliveryState::Queued => &mut self.queued,
            DeliveryState::Committed | DeliveryState::Sent => &mut self.sent,
            DeliveryState::Bounced => &mut self.bounced,
            DeliveryState::Failed => &mut self.failed,
            DeliveryState::Skipped => &mut self.skipped,
        }
    }

    /// Moves one message from `from` (None: newly queued) to `to`; a state is paired
    /// with whether a queued message waits for a retry.
    pub fn apply(&mut self, from: Option<(DeliveryState, bool)>, to: (DeliveryState, bool)) {
        if let Some(f) = from {
            let p = self.slot(f);
            *p = p.saturating_sub(1);
        }
        *self.slot(to) += 1;
    }

    pub fn add(&mut self, o: &DeliveryStats) {
        self.queued += o.queued;
        self.deferred += o.deferred;
        self.sent += o.sent;
        self.bounced += o.bounced;
        self.failed += o.failed;
        self.skipped += o.skipped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_tokens_are_bound_to_their_purpose_and_subscriber() {
        let k = b"0123456789abcdef0123456789abcdef";
        let t = token(k, Purpose::Unsubscribe, "sub_abc");
        assert_eq!(verify(k, Purpose::Unsubscribe, &t).as_deref(), Some("sub_abc"));
        assert_eq!(verify(k, Purpose::Confirm, &t), None, "another purpose");
        assert_eq!(verify(b"another secret", Purpose::Unsubscribe, &t), None);
        let forged = t.replace("sub_abc", "sub_abd");
        assert_eq!(verify(k, Purpose::Unsubscribe, &forged), None);
        for bad in ["", ".", "sub_abc.", "sub_abc.!!!", &"a".repeat(500)] {
            assert_eq!(verify(k, Purpose::Unsubscribe, bad), None, "{bad}");
        }
    }

    #[test]
    fn stats_move_messages_between_states() {
        let mut s = DeliveryStats::default();
        s.apply(None, (DeliveryState::Queued, false));
        s.apply(None, (DeliveryState::Queued, false));
        s.apply(Some((DeliveryState::Queued, false)), (DeliveryState::Queued, true));
        s.apply(Some((DeliveryState::Queued, true)), (DeliveryState::Committed, false));
        s.apply(Some((DeliveryState::Committed, false)), (DeliveryState::Sent, false));
        s.apply(Some((DeliveryState::Queued, false)), (DeliveryState::Bounced, false));
        assert_eq!(s, DeliveryStats { sent: 1, bounced: 1, ..Default::default() });
    }
}
