//! The newsletter in sled, opened from the engine's database; the only code touching its
//! trees: the issues (`newsletters`: number -> issue, behind [`IssueStore`]), and the
//! readers and their mail ([`Subscribers`]: `nl_subscribers`, `nl_emails`, `nl_queue`,
//! `nl_seen`, `nl_stats`).

use std::sync::Arc;

use citecast_actors::codec;

use super::error::NewsletterError;
use super::Issue;

type Result<T, E = NewsletterError> = std::result::Result<T, E>;

/// The newsletter's issues as the product reads and writes them. [`SledIssues`] keeps
/// them in sled; another backend implements the same calls. The calls block (storage
/// I/O): async code runs them on the blocking pool ([`call`]).
pub trait IssueStore: Send + Sync {
    /// Stores `issue` as the next number, unless the latest issue already covers the same
    /// week (a second run in one week replaces nothing and adds nothing). Returns the
    /// stored issue's number and whether it is new.
    fn save(&self, issue: Issue) -> Result<(u32, bool)>;
    /// Every issue, newest first.
    fn list(&self) -> Result<Vec<Issue>>;
    fn get(&self, number: u32) -> Result<Option<Issue>>;
}

/// Runs a store call on the blocking pool, off the async workers.
pub async fn call<T, F>(store: &Arc<dyn IssueStore>, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&dyn IssueStore) -> Result<T> + Send + 'static,
{
    let store = store.clone();
    crate::engine::blocking(move || f(store.as_ref()), || NewsletterError::Unavailable).await
}

/// The issues in the `newsletters` tree (number, big-endian -> issue).
pub struct SledIssues {
    tree: sled::Tree,
}

impl SledIssues {
    pub fn open(db: &sled::Db) -> Result<SledIssues> {
        Ok(SledIssues { tree: db.open_tree("newsletters")? })
    }
}

fn key(n: u32) -> [u8; 4] {
    n.to_be_bytes()
}

impl IssueStore for SledIssues {
    fn save(&self, mut issue: Issue) -> Result<(u32, bool)> {
        if let Some((_, v)) = self.tree.last()? {
            let last: Issue = codec::decode(&v)?;
            if last.week_to == issue.week_to {
                return Ok((last.number, false));
            }
            issue.number = last.number + 1;
        } else {
            issue.number = 1;
        }
        self.tree.insert(key(issue.number), codec::encode(&issue)?)?;
        self.tree.flush()?;
        Ok((issue.number, true))
    }

    fn list(&self) -> Result<Vec<Issue>> {
        let mut out = Vec::new();
        for kv in self.tree.iter().rev() {
            out.push(codec::decode(&kv?.1)?);
        }
        Ok(out)
    }

    fn get(&self, number: u32) -> Result<Option<Issue>> {
        Ok(match self.tree.get(key(number))? {
            Some(v) => Some(codec::decode(&v)?),
            None => None,
        })
    }
}

use super::subscribers::{DeliveryState, DeliveryStats, Queued, Section, Subscriber, SubscriberState};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| NewsletterError::Corrupt(e.to_string()))
}

fn unjson<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T> {
    serde_json::from_slice(b).map_err(|e| NewsletterError::Corrupt(e.to_string()))
}

fn tx_err(e: TransactionError<NewsletterError>) -> NewsletterError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => e.into(),
    }
}

fn email_key(email: &str) -> Vec<u8> {
    email.trim().to_lowercase().into_bytes()
}

/// The queue's key of one reader's copy of one issue.
pub fn queue_key(issue: u32, subscriber: &str) -> Vec<u8> {
    let mut k = issue.to_be_bytes().to_vec();
    k.extend_from_slice(subscriber.as_bytes());
    k
}

fn seen_key(subscriber: &str, paper: &str) -> Vec<u8> {
    let mut k = subscriber.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(paper.as_bytes());
    k
}

/// What a sign-up did; the page answers the same in every case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signup {
    /// Mail this subscriber a confirmation link.
    Confirm(Subscriber),
    /// Nothing to send: already confirmed, suppressed (bounced or complained), or a
    /// confirmation went out in the last 10 minutes.
    Quiet,
}

/// Readers, their preferences, what each has been shown, and the send queue.
#[derive(Clone)]
pub struct Subscribers {
    db: sled::Db,
    subscribers: sled::Tree,
    emails: sled::Tree,
    queue: sled::Tree,
    /// Keys of the queue's copies still `Queued` (small, so finding work is cheap).
    pending: sled::Tree,
    seen: sled::Tree,
    stats: sled::Tree,
}

impl Subscribers {
    pub fn open(db: &sled::Db) -> Result<Subscribers> {
        Ok(Subscribers {
            db: db.clone(),
            subscribers: db.open_tree("nl_subscribers")?,
            emails: db.open_tree("nl_emails")?,
            queue: db.open_tree("nl_queue")?,
            pending: db.open_tree("nl_pending")?,
            seen: db.open_tree("nl_seen")?,
            stats: db.open_tree("nl_stats")?,
        })
    }

    pub fn get(&self, id: &str) -> Result<Option<Subscriber>> {
        self.subscribers.get(id)?.map(|v| unjson(&v)).transpose()
    }

    pub fn by_email(&self, email: &str) -> Result<Option<Subscriber>> {
        match self.emails.get(email_key(email))? {
            Some(id) => self.get(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    fn put(&self, s: &Subscriber) -> Result<()> {
        self.subscribers.insert(s.id.as_bytes(), json(s)?)?;
        Ok(())
    }

    /// Signs `email` up (or up again). One record per address: the address index is
    /// claimed atomically, so two racing sign-ups make one subscriber.
    pub fn subscribe(&self, email: &str, name: Option<&str>, topics: &[String], now: i64) -> Result<Signup> {
        let fresh = Subscriber {
            id: format!("sub_{}", crate::accounts::random_base62(16)),
            email: email.trim().to_string(),
            name: name.map(str::to_string),
            state: SubscriberState::Unconfirmed,
            topics: topics.to_vec(),
            searches: Vec::new(),
            created: now,
            confirmed: None,
            changed: now,
            confirmation_sent: Some(now),
        };
        let claimed = self.emails.compare_and_swap(
            email_key(email),
            None as Option<&[u8]>,
            Some(fresh.id.as_bytes()),
        )?;
        let mut existing = match claimed {
            Ok(()) => {
                self.put(&fresh)?;
                return Ok(Signup::Confirm(fresh));
            }
            Err(current) => {
                let id =
                    current.current.map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_default();
                match self.get(&id)? {
                    Some(s) => s,
                    None => {
                        // A crash left the index without its record: take the address over.
                        self.emails.insert(email_key(email), fresh.id.as_bytes())?;
                        self.put(&fresh)?;
                        return Ok(Signup::Confirm(fresh));
                    }
                }
            }
        };
        match existing.state {
            SubscriberState::Confirmed | SubscriberState::Bounced | SubscriberState::Complained => {
                Ok(Signup::Quiet)
            }
            SubscriberState::Unconfirmed if existing.confirmation_sent.is_some_and(|t| now - t < 600) => {
                Ok(Signup::Quiet)
            }
            SubscriberState::Unconfirmed | SubscriberState::Unsubscribed => {
                // Signing up again asks again: an unsubscribed reader confirms anew.
                existing.state = SubscriberState::Unconfirmed;
                existing.topics = topics.to_vec();
                if name.is_some() {
                    existing.name = name.map(str::to_string);
                }
                existing.confirmation_sent = Some(now);
                existing.changed = now;
                self.put(&existing)?;
                Ok(Signup::Confirm(existing))
            }
        }
    }

    /// Adds a reader an operator brings from another list. `confirmed` records that
    /// they already opted in there (the operator's word, audited); otherwise they get
    /// a confirmation like any sign-up. An address already here is left as it is
    /// (answers `None`).
    pub fn import(
        &self,
        email: &str,
        name: Option<&str>,
        confirmed: bool,
        now: i64,
    ) -> Result<Option<Subscriber>> {
        let s = Subscriber {
            id: format!("sub_{}", crate::accounts::random_base62(16)),
            email: email.trim().to_string(),
            name: name.map(str::to_string),
            state: if confirmed { SubscriberState::Confirmed } else { SubscriberState::Unconfirmed },
            topics: Vec::new(),
            searches: Vec::new(),
            created: now,
            confirmed: confirmed.then_some(now),
            changed: now,
            confirmation_sent: (!confirmed).then_some(now),
        };
        let claimed =
            self.emails.compare_and_swap(email_key(email), None as Option<&[u8]>, Some(s.id.as_bytes()))?;
        if claimed.is_err() {
            return Ok(None);
        }
        self.put(&s)?;
        Ok(Some(s))
    }

    /// Changes a subscriber with `f`; answers the record after, or `None` if unknown.
    pub fn update(&self, id: &str, now: i64, f: impl FnOnce(&mut Subscriber)) -> Result<Option<Subscriber>> {
        let Some(mut s) = self.get(id)? else { return Ok(None) };
        f(&mut s);
        s.changed = now;
        self.put(&s)?;
        self.subscribers.flush()?;
        Ok(Some(s))
    }

    /// Forgets a subscriber: the record, the address, what they were shown, and their
    /// unsent mail (skipped, so the counts stay true).
    pub fn delete(&self, id: &str, now: i64) -> Result<Option<Subscriber>> {
        let Some(s) = self.get(id)? else { return Ok(None) };
        for item in self.queue.iter() {
            let (k, v) = item?;
            if k.len() > 4 && &k[4..] == id.as_bytes() {
                let q: Queued = unjson(&v)?;
                if q.state == DeliveryState::Queued {
                    self.set_state(&k, now, |q| {
                        q.state = DeliveryState::Skipped;
                        q.last_error = Some("the subscriber deleted their data".into());
                    })?;
                }
                self.queue.remove(&k)?;
            }
        }
        let mut prefix = id.as_bytes().to_vec();
        prefix.push(0);
        for k in self.seen.scan_prefix(&prefix).keys() {
            self.seen.remove(k?)?;
        }
        self.emails.remove(email_key(&s.email))?;
        self.subscribers.remove(id)?;
        self.db.flush()?;
        Ok(Some(s))
    }

    /// Every subscriber (for the weekly issue and the operator's counts).
    pub fn all(&self) -> Result<Vec<Subscriber>> {
        self.subscribers.iter().values().map(|v| unjson(&v?)).collect()
    }

    pub fn has_seen(&self, subscriber: &str, paper: &str) -> Result<bool> {
        Ok(self.seen.contains_key(seen_key(subscriber, paper))?)
    }

    /// Papers `subscriber` was shown, for the export.
    pub fn seen_by(&self, subscriber: &str) -> Result<Vec<String>> {
        let mut prefix = subscriber.as_bytes().to_vec();
        prefix.push(0);
        self.seen
            .scan_prefix(&prefix)
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?[prefix.len()..]).into_owned()))
            .collect()
    }

    /// Queues one reader's copy of `issue` with the papers it shows, and records them as
    /// shown, in one transaction. A copy already queued is left alone (answers false),
    /// so building an issue again after a crash queues only what is missing.
    pub fn enqueue(&self, issue: u32, subscriber: &str, sections: Vec<Section>, now: i64) -> Result<bool> {
        let key = queue_key(issue, subscriber);
        if self.queue.contains_key(&key)? {
            return Ok(false);
        }
        let papers: Vec<Vec<u8>> =
            sections.iter().flat_map(|s| s.items.iter().map(|i| seen_key(subscriber, &i.paper_id))).collect();
        let q = Queued {
            issue,
            subscriber_id: subscriber.to_string(),
            sections,
            state: DeliveryState::Queued,
            attempts: 0,
            next_attempt: 0,
            last_error: None,
            updated: now,
        };
        let bytes = json(&q)?;
        let stats_key = issue.to_be_bytes();
        (&self.queue, &self.pending, &self.seen, &self.stats)
            .transaction(|(queue, pending, seen, stats)| {
                if queue.get(&key)?.is_some() {
                    return Ok(false);
                }
                queue.insert(key.as_slice(), bytes.as_slice())?;
                pending.insert(key.as_slice(), &[])?;
                for p in &papers {
                    seen.insert(p.as_slice(), &[])?;
                }
                let mut st: DeliveryStats = match stats.get(stats_key)? {
                    Some(v) => unjson(&v).map_err(ConflictableTransactionError::Abort)?,
                    None => DeliveryStats::default(),
                };
                st.apply(None, (DeliveryState::Queued, false));
                stats.insert(&stats_key, json(&st).map_err(ConflictableTransactionError::Abort)?)?;
                Ok(true)
            })
            .map_err(tx_err)
    }

    /// Copies waiting to be sent whose time has come, oldest issue first, at most `limit`.
    pub fn due(&self, now: i64, limit: usize) -> Result<Vec<(Vec<u8>, Queued)>> {
        let mut out = Vec::new();
        for k in self.pending.iter().keys() {
            let k = k?;
            let Some(v) = self.queue.get(&k)? else { continue };
            let q: Queued = unjson(&v)?;
            if q.state == DeliveryState::Queued && q.next_attempt <= now {
                out.push((k.to_vec(), q));
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Changes one queued copy with `f`, keeping its issue's counts in step, in one
    /// transaction. Not durable by itself: [`Subscribers::flush`] makes it so.
    pub fn set_state(&self, key: &[u8], now: i64, f: impl Fn(&mut Queued)) -> Result<Option<Queued>> {
        let done = (&self.queue, &self.pending, &self.stats)
            .transaction(|(queue, pending, stats)| {
                let Some(v) = queue.get(key)? else { return Ok(None) };
                let mut q: Queued = unjson(&v).map_err(ConflictableTransactionError::Abort)?;
                let before = (q.state, q.attempts > 0);
                f(&mut q);
                q.updated = now;
                let after = (q.state, q.attempts > 0);
                queue.insert(key, json(&q).map_err(ConflictableTransactionError::Abort)?)?;
                if q.state == DeliveryState::Queued {
                    pending.insert(key, &[])?;
                } else {
                    pending.remove(key)?;
                }
                let skey = q.issue.to_be_bytes();
                let mut st: DeliveryStats = match stats.get(skey)? {
                    Some(v) => unjson(&v).map_err(ConflictableTransactionError::Abort)?,
                    None => DeliveryStats::default(),
                };
                st.apply(Some(before), after);
                stats.insert(&skey, json(&st).map_err(ConflictableTransactionError::Abort)?)?;
                Ok(Some(q))
            })
            .map_err(tx_err)?;
        Ok(done)
    }

    /// Makes everything written so far durable.
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Delivery counts per issue, newest first.
    pub fn stats(&self) -> Result<Vec<(u32, DeliveryStats)>> {
        let mut out = Vec::new();
        for item in self.stats.iter().rev() {
            let (k, v) = item?;
            let n = u32::from_be_bytes(k.as_ref().try_into().unwrap_or([0; 4]));
            out.push((n, unjson(&v)?));
        }
        Ok(out)
    }

    /// Counts of subscribers by state.
    pub fn counts(&self) -> Result<std::collections::BTreeMap<&'static str, u64>> {
        let mut out = std::collections::BTreeMap::new();
        for s in self.all()? {
            *out.entry(s.state.label()).or_default() += 1;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(week_to: &str) -> Issue {
        Issue {
            number: 0,
            built_at: 1,
            week_from: "2003-01-01".into(),
            week_to: week_to.into(),
            model_version: "m".into(),
            papers_considered: 3,
            items: vec![],
        }
    }

    #[test]
    fn issues_are_numbered_and_a_week_is_built_once() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let t = SledIssues::open(&db).unwrap();
        assert_eq!(t.save(issue("2003-01-07")).unwrap(), (1, true));
        assert_eq!(t.save(issue("2003-01-07")).unwrap(), (1, false));
        assert_eq!(t.save(issue("2003-01-14")).unwrap(), (2, true));
        let all = t.list().unwrap();
        assert_eq!(all.iter().map(|i| i.number).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(t.get(1).unwrap().unwrap().week_to, "2003-01-07");
        assert!(t.get(9).unwrap().is_none());
    }

    fn item(id: &str) -> crate::newsletter::Item {
        crate::newsletter::Item {
            paper_id: id.into(),
            title: "t".into(),
            authors: vec![],
            submitted: "2003-01-01".into(),
            probability: 0.5,
            label: "high".into(),
            why: String::new(),
        }
    }

    #[test]
    fn readers_sign_up_once_and_their_queue_counts_and_shown_papers_stay_in_step() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let subs = Subscribers::open(&db).unwrap();
        let Signup::Confirm(a) = subs.subscribe("Ada@Example.org", None, &[], 0).unwrap() else { panic!() };
        // Again within ten minutes: no second mail; after: a fresh confirmation.
        assert_eq!(subs.subscribe("ada@example.org", None, &[], 60).unwrap(), Signup::Quiet);
        assert!(matches!(subs.subscribe("ada@example.org", None, &[], 700).unwrap(), Signup::Confirm(_)));
        subs.update(&a.id, 800, |s| s.state = SubscriberState::Confirmed).unwrap();
        assert_eq!(
            subs.subscribe("ADA@example.org", None, &[], 900).unwrap(),
            Signup::Quiet,
            "confirmed stays"
        );
        assert_eq!(subs.all().unwrap().len(), 1, "one record per address");
        assert!(
            subs.import("ada@example.org", None, true, 0).unwrap().is_none(),
            "imports skip known addresses"
        );

        let sections = vec![Section { title: "s".into(), items: vec![item("p1"), item("p2")] }];
        assert!(subs.enqueue(1, &a.id, sections.clone(), 0).unwrap());
        assert!(!subs.enqueue(1, &a.id, sections, 0).unwrap(), "a copy is queued once");
        assert!(subs.has_seen(&a.id, "p1").unwrap() && !subs.has_seen(&a.id, "p3").unwrap());
        assert_eq!(subs.seen_by(&a.id).unwrap(), ["p1", "p2"]);
        let (key, _) = subs.due(0, 10).unwrap().remove(0);
        subs.set_state(&key, 1, |q| {
            q.attempts = 1;
            q.next_attempt = 100;
        })
        .unwrap();
        assert!(subs.due(50, 10).unwrap().is_empty(), "a deferred copy waits for its time");
        assert_eq!(subs.stats().unwrap()[0].1, DeliveryStats { deferred: 1, ..Default::default() });
        subs.set_state(&key, 2, |q| q.state = DeliveryState::Sent).unwrap();
        assert_eq!(subs.stats().unwrap()[0].1, DeliveryStats { sent: 1, ..Default::default() });
        assert!(subs.due(i64::MAX, 10).unwrap().is_empty());

        // Deleting forgets the address and what was shown.
        subs.delete(&a.id, 3).unwrap();
        assert!(subs.by_email("ada@example.org").unwrap().is_none() && !subs.has_seen(&a.id, "p1").unwrap());
        assert!(matches!(subs.subscribe("ada@example.org", None, &[], 4).unwrap(), Signup::Confirm(_)));
    }
}
