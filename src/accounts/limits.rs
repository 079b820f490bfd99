//! Per-key rate limits: a governor GCRA bucket per key for requests per minute (with
//! burst), and a daily quota counted per key per UTC day and persisted in sled so a
//! restart does not hand out a fresh day.
//!
//! [`Limits`] is plain logic. The API guard checks it inline through a shared
//! [`SharedLimits`] (a check is a short in-memory operation: a message to an actor per
//! request cost more than the check); [`LimiterActor`] writes changed daily counts to sled
//! every second, and sweeps idle keys so memory stays bounded under many distinct keys.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix::prelude::*;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use serde::{Deserialize, Serialize};

use citecast_actors::dates::{self, Day};

type Keyed = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// The limits of one tier, as the limiter needs them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierLimits {
    pub tier: String,
    pub per_minute: u32,
    pub burst: u32,
    pub daily: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    PerMinute,
    Daily,
}

/// Figures for the `RateLimit-*` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the window is fully replenished.
    pub reset_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed { minute: Window, day: Window },
    Limited { kind: LimitKind, retry_after_secs: u64, minute: Window, day: Window },
}

struct DayCount {
    count: u64,
    last_seen: Instant,
}

/// Seconds from now to the next UTC midnight.
fn secs_to_midnight() -> u64 {
    (86_400 - dates::now_secs().rem_euclid(86_400)) as u64
}

fn usage_key(principal: &str, day: Day) -> Vec<u8> {
    let mut k = principal.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&day.to_be_bytes());
    k
}

pub struct Limits {
    buckets: HashMap<String, (TierLimits, Keyed)>,
    days: HashMap<String, DayCount>,
    /// Principals whose count changed since the last write to sled.
    dirty: HashSet<String>,
    today: Day,
    usage: sled::Tree,
    clock: DefaultClock,
}

impl Limits {
    pub fn new(tiers: &[TierLimits], usage: sled::Tree) -> Limits {
        let buckets = tiers
            .iter()
            .map(|t| {
                let per_minute = NonZeroU32::new(t.per_minute.max(1)).expect("max(1)");
                let burst = NonZeroU32::new(t.burst.max(1)).expect("max(1)");
                let quota = Quota::per_minute(per_minute).allow_burst(burst);
                let limiter = RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>();
                (t.tier.clone(), (t.clone(), limiter))
            })
            .collect();
        Limits {
            buckets,
            days: HashMap::new(),
            dirty: HashSet::new(),
            today: dates::today(),
            usage,
            clock: DefaultClock::default(),
        }
    }

    fn roll_day(&mut self) -> Result<(), sled::Error> {
        let today = dates::today();
        if today != self.today {
            self.flush()?;
            self.days.clear();
            self.today = today;
        }
        Ok(())
    }

    fn day_count(&mut self, principal: &str) -> Result<&mut DayCount, sled::Error> {
        if !self.days.contains_key(principal) {
            let stored = self
                .usage
                .get(usage_key(principal, self.today))?
                .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
                .unwrap_or(0);
            self.days.insert(principal.to_string(), DayCount { count: stored, last_seen: Instant::now() });
        }
        Ok(self.days.get_mut(principal).expect("inserted above"))
    }

    /// Counts one request by `principal` (a customer id, or `ip:<addr>`) under `tier`.
    /// The per-minute bucket and the daily quota are `principal`'s; `key`, when given,
    /// gets its own daily count too (usage per key), which limits nothing.
    pub fn check(&mut self, principal: &str, key: Option<&str>, tier: &str) -> Result<Decision, sled::Error> {
        self.roll_day()?;
        let Some((limits, _)) = self.buckets.get(tier) else {
            // Unknown tier: configuration error upstream; refuse rather than allow unlimited.
            let w = Window { limit: 0, remaining: 0, reset_secs: 60 };
            return Ok(Decision::Limited {
                kind: LimitKind::PerMinute,
                retry_after_secs: 60,
                minute: w.clone(),
                day: w,
            });
        };
        let limits = limits.clone();
        let to_midnight = secs_to_midnight();
        let used = {
            let d = self.day_count(principal)?;
            d.last_seen = Instant::now();
            d.count
        };
        let day_window = |used: u64| Window {
            limit: limits.daily,
            remaining: limits.daily.saturating_sub(used),
            reset_secs: to_midnight,
        };
        let interval_secs = 60.0 / limits.per_minute.max(1) as f64;
        let minute_full =
            Window { limit: limits.per_minute as u64, remaining: limits.burst as u64, reset_secs: 0 };
        if used >= limits.daily {
            return Ok(Decision::Limited {
                kind: LimitKind::Daily,
                retry_after_secs: to_midnight,
                minute: minute_full,
                day: day_window(used),
            });
        }
        let (_, bucket) = self.buckets.get(tier).expect("checked above");
        match bucket.check_key(&principal.to_string()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity() as u64;
                let missing = (limits.burst as u64).saturating_sub(remaining);
                let minute = Window {
                    limit: limits.per_minute as u64,
                    remaining,
                    reset_secs: (missing as f64 * interval_secs).ceil() as u64,
                };
                let d = self.days.get_mut(principal).expect("loaded above");
                d.count += 1;
                let used = d.count;
                // Written to sled by the next [`Limits::persist`] (every second): a sled
                // write per request would cost more than the check itself.
                if !self.dirty.contains(principal) {
                    self.dirty.insert(principal.to_string());
                }
                if let Some(key) = key {
                    let k = self.day_count(key)?;
                    k.count += 1;
                    k.last_seen = Instant::now();
                    if !self.dirty.contains(key) {
                        self.dirty.insert(key.to_string());
                    }
                }
                Ok(Decision::Allowed { minute, day: day_window(used) })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let retry = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let minute = Window {
                    limit: limits.per_minute as u64,
                    remaining: 0,
                    reset_secs: (limits.burst as f64 * interval_secs).ceil() as u64,
                };
                Ok(Decision::Limited {
                    kind: LimitKind::PerMinute,
                    retry_after_secs: retry.max(1),
                    minute,
                    day: day_window(used),
                })
            }
        }
    }

    /// Gives back the daily count of a request that was refused after it was counted
    /// (the handler answered 4xx): a caller's mistakes do not spend its quota. The
    /// per-minute bucket keeps the request, so errors still pace a client.
    pub fn refund(&mut self, principal: &str, key: Option<&str>) -> Result<(), sled::Error> {
        self.roll_day()?;
        for who in std::iter::once(principal).chain(key) {
            let d = self.day_count(who)?;
            if d.count > 0 {
                d.count -= 1;
                if !self.dirty.contains(who) {
                    self.dirty.insert(who.to_string());
                }
            }
        }
        Ok(())
    }

    /// Today's count for `principal`.
    pub fn used_today(&mut self, principal: &str) -> Result<u64, sled::Error> {
        self.roll_day()?;
        Ok(self.day_count(principal)?.count)
    }

    /// Writes changed daily counts to sled (which syncs its log to disk within half a
    /// second), so a killed process loses about a second of counting at most.
    pub fn persist(&mut self) -> Result<(), sled::Error> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for p in self.dirty.drain() {
            if let Some(d) = self.days.get(&p) {
                batch.insert(usage_key(&p, self.today), &d.count.to_be_bytes());
            }
        }
        self.usage.apply_batch(batch)
    }

    /// Writes changed counts and syncs them to disk (shutdown, day change).
    pub fn flush(&mut self) -> Result<(), sled::Error> {
        self.persist()?;
        self.usage.flush()?;
        Ok(())
    }

    /// Drops idle state: governor buckets that are full again, and daily counts (already
    /// flushed) of keys unseen for `idle`. They reload from sled when the key returns.
    pub fn sweep(&mut self, idle: Duration) -> Result<(), sled::Error> {
        self.flush()?;
        for (_, bucket) in self.buckets.values() {
            bucket.retain_recent();
            bucket.shrink_to_fit();
        }
        self.days.retain(|_, d| d.last_seen.elapsed() < idle);
        self.days.shrink_to_fit();
        Ok(())
    }

    /// Keys currently held in memory (buckets, daily counts).
    pub fn tracked(&self) -> (usize, usize) {
        (self.buckets.values().map(|(_, b)| b.len()).sum(), self.days.len())
    }
}

/// [`Limits`] shared by the API guard (which checks and refunds inline) and the
/// [`LimiterActor`] (which persists and sweeps). Hold the lock only for one call, never
/// across an `.await`.
#[derive(Clone)]
pub struct SharedLimits(Arc<Mutex<Limits>>);

impl SharedLimits {
    pub fn new(limits: Limits) -> SharedLimits {
        SharedLimits(Arc::new(Mutex::new(limits)))
    }

    /// The limits, locked. A panic in an earlier call does not disable limiting: its
    /// state is still counts and buckets, usable as they are.
    pub fn lock(&self) -> MutexGuard<'_, Limits> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Writes the shared [`Limits`]' changed daily counts to sled every second, sweeps idle
/// keys every minute, and flushes at shutdown. Runs on the system arbiter.
pub struct LimiterActor {
    limits: SharedLimits,
}

const PERSIST_EVERY: Duration = Duration::from_secs(1);
const SWEEP_EVERY: Duration = Duration::from_secs(60);
const IDLE_AFTER: Duration = Duration::from_secs(600);

impl LimiterActor {
    pub fn new(limits: SharedLimits) -> Self {
        LimiterActor { limits }
    }
}

impl Actor for LimiterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(PERSIST_EVERY, |a, _| {
            if let Err(e) = a.limits.lock().persist() {
                tracing::error!(error = %e, "cannot persist daily usage");
            }
        });
        ctx.run_interval(SWEEP_EVERY, |a, _| {
            if let Err(e) = a.limits.lock().sweep(IDLE_AFTER) {
                tracing::error!(error = %e, "limiter sweep failed");
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Err(e) = self.limits.lock().flush() {
            tracing::error!(error = %e, "cannot persist daily usage at shutdown");
        }
    }
}

pub struct UsedToday(pub String);

impl Message for UsedToday {
    type Result = Result<u64, sled::Error>;
}

impl Handler<UsedToday> for LimiterActor {
    type Result = Result<u64, sled::Error>;
    fn handle(&mut self, m: UsedToday, _: &mut Context<Self>) -> Self::Result {
        self.limits.lock().used_today(&m.0)
    }
}

pub struct FlushUsage;

impl Message for FlushUsage {
    type Result = Result<(), sled::Error>;
}

impl Handler<FlushUsage> for LimiterActor {
    type Result = Result<(), sled::Error>;
    fn handle(&mut self, _: FlushUsage, _: &mut Context<Self>) -> Self::Result {
        self.limits.lock().flush()
    }
}

/// Limits on the sign-up, sign-in and password-reset forms: per client IP and per
/// address tried, so neither one machine nor a botnet aimed at one account can guess
/// passwords or flood someone's inbox. Governor buckets; [`FormLimits::sweep`] drops
/// idle ones.
pub struct FormLimits {
    per_ip: RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>,
    per_account: RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>,
}

impl Default for FormLimits {
    fn default() -> Self {
        let n = |v| NonZeroU32::new(v).expect("positive");
        FormLimits {
            // 10 a minute from one address, in bursts of 10.
            per_ip: RateLimiter::keyed(Quota::per_minute(n(10)).allow_burst(n(10))),
            // 5 tries on one account, then one every 2 minutes.
            per_account: RateLimiter::keyed(
                Quota::with_period(Duration::from_secs(120)).expect("positive").allow_burst(n(5)),
            ),
        }
    }
}

impl FormLimits {
    /// Counts one form sent from `ip` about `account` (a lower-cased address, if the
    /// form names one); `Err(seconds)` says how long to wait.
    pub fn check(&self, ip: &str, account: Option<&str>) -> Result<(), u64> {
        let clock = DefaultClock::default();
        if let Err(not_until) = self.per_ip.check_key(&ip.to_string()) {
            return Err(not_until.wait_time_from(clock.now()).as_secs().max(1));
        }
        if let Some(a) = account {
            if let Err(not_until) = self.per_account.check_key(&a.trim().to_lowercase()) {
                return Err(not_until.wait_time_from(clock.now()).as_secs().max(1));
            }
        }
        Ok(())
    }

    pub fn sweep(&self) {
        self.per_ip.retain_recent();
        self.per_account.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers() -> Vec<TierLimits> {
        vec![TierLimits { tier: "t".into(), per_minute: 60, burst: 3, daily: 5 }]
    }

    #[test]
    fn bursts_then_limits_then_quota_persists() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let mut limits = Limits::new(&tiers(), db.open_tree("usage").unwrap());
        for i in 0..3 {
            match limits.check("k1", None, "t").unwrap() {
                Decision::Allowed { minute, day } => {
                    assert_eq!(minute.remaining, 2 - i);
                    assert_eq!(day.remaining, 4 - i);
                }
                other => panic!("{other:?}"),
            }
        }
        match limits.check("k1", None, "t").unwrap() {
            Decision::Limited { kind: LimitKind::PerMinute, retry_after_secs, .. } => {
                assert!((1..=2).contains(&retry_after_secs))
            }
            other => panic!("{other:?}"),
        }
        // Another key keeps its own bucket.
        assert!(matches!(limits.check("k2", None, "t").unwrap(), Decision::Allowed { .. }));
        limits.flush().unwrap();

        // A restart keeps today's count: two more requests fit the daily 5, then no more.
        let mut limits = Limits::new(&tiers(), db.open_tree("usage").unwrap());
        assert_eq!(limits.used_today("k1").unwrap(), 3);
        assert!(matches!(limits.check("k1", None, "t").unwrap(), Decision::Allowed { .. }));
        assert!(matches!(limits.check("k1", None, "t").unwrap(), Decision::Allowed { .. }));
        match limits.check("k1", None, "t").unwrap() {
            Decision::Limited { kind, .. } => assert_eq!(kind, LimitKind::Daily),
            other => panic!("{other:?}"),
        }
        assert!(matches!(limits.check("k1", None, "nope").unwrap(), Decision::Limited { .. }));
    }

    #[test]
    fn keys_of_one_customer_share_its_allowance_and_keep_their_own_counts() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let tiers = vec![TierLimits { tier: "t".into(), per_minute: 600, burst: 100, daily: 5 }];
        let mut limits = Limits::new(&tiers, db.open_tree("usage").unwrap());
        let keys = ["key_a", "key_b", "key_c", "key_d", "key_e"];
        for k in keys {
            assert!(matches!(limits.check("cus_1", Some(k), "t").unwrap(), Decision::Allowed { .. }));
        }
        // Five keys, five requests: the customer's daily 5 is spent, whichever key asks.
        for k in keys {
            match limits.check("cus_1", Some(k), "t").unwrap() {
                Decision::Limited { kind, .. } => assert_eq!(kind, LimitKind::Daily),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(limits.used_today("cus_1").unwrap(), 5);
        for k in keys {
            assert_eq!(limits.used_today(k).unwrap(), 1, "refused requests are not counted to {k}");
        }
        // Another customer is untouched.
        assert!(matches!(limits.check("cus_2", Some("key_z"), "t").unwrap(), Decision::Allowed { .. }));
    }

    #[test]
    fn sweep_forgets_idle_keys() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let mut limits = Limits::new(&tiers(), db.open_tree("usage").unwrap());
        for i in 0..1000 {
            limits.check(&format!("ip:{i}"), None, "t").unwrap();
        }
        assert_eq!(limits.tracked().1, 1000);
        limits.sweep(Duration::ZERO).unwrap();
        assert_eq!(limits.tracked().1, 0);
        assert_eq!(limits.used_today("ip:7").unwrap(), 1, "counts survive eviction via sled");
    }

    #[test]
    fn shared_limits_count_across_threads_and_survive_a_poisoned_lock() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let tiers = vec![TierLimits { tier: "t".into(), per_minute: 6000, burst: 1000, daily: 1000 }];
        let shared = SharedLimits::new(Limits::new(&tiers, db.open_tree("usage").unwrap()));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let shared = shared.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let d = shared.lock().check("cus_1", None, "t").unwrap();
                        assert!(matches!(d, Decision::Allowed { .. }), "{d:?}");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(shared.lock().used_today("cus_1").unwrap(), 200);
        let poisoner = shared.clone();
        let _ = std::thread::spawn(move || {
            let _held = poisoner.lock();
            panic!("a panic while holding the limits");
        })
        .join();
        assert!(matches!(shared.lock().check("cus_1", None, "t").unwrap(), Decision::Allowed { .. }));
        assert_eq!(shared.lock().used_today("cus_1").unwrap(), 201);
    }
}
