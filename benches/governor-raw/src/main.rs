//! Times governor's keyed `check_key` as `citecast::accounts::limits::Limits` uses it: a
//! `String`-keyed limiter with `StateInformationMiddleware`, 256 rotating keys, and a
//! quota that never refuses. Prints a batched mean (no timer in the loop) and per-call
//! percentiles (each including one `Instant::now` + `elapsed`, also printed).

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter};

const KEYS: usize = 256;
const CALLS: usize = 2_000_000;
const TIMED: usize = 200_000;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn report(name: &str, mut t: Vec<Duration>) {
    t.sort_unstable();
    let ns = |d: Duration| format!("{}ns", d.as_nanos());
    println!(
        "{name} n={} p50={} p95={} p99={} p99.9={} max={}",
        t.len(),
        ns(pct(&t, 0.5)),
        ns(pct(&t, 0.95)),
        ns(pct(&t, 0.99)),
        ns(pct(&t, 0.999)),
        ns(*t.last().expect("calls"))
    );
}

fn main() {
    let n = NonZeroU32::new(4_000_000_000).expect("non-zero");
    let quota = Quota::per_minute(n).allow_burst(n);
    let limiter = RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>();
    let keys: Vec<String> = (0..KEYS).map(|i| format!("key_{i:04x}bench")).collect();
    for k in &keys {
        limiter.check_key(k).expect("allowed");
    }
    let mut refused = 0usize;
    for round in 0..3 {
        let started = Instant::now();
        for i in 0..CALLS {
            if limiter.check_key(black_box(&keys[i % KEYS])).is_err() {
                refused += 1;
            }
        }
        let took = started.elapsed();
        println!(
            "governor check_key (batched, round {round}): {CALLS} calls in {:.3} s = {:.1} ns/call",
            took.as_secs_f64(),
            took.as_nanos() as f64 / CALLS as f64
        );
    }
    // Limits::check passes `&principal.to_string()`: the same call with that allocation.
    let started = Instant::now();
    for i in 0..CALLS {
        let key: &str = black_box(&keys[i % KEYS]);
        if limiter.check_key(&key.to_string()).is_err() {
            refused += 1;
        }
    }
    let took = started.elapsed();
    println!(
        "governor check_key with key.to_string() (batched): {:.1} ns/call",
        took.as_nanos() as f64 / CALLS as f64
    );
    let mut times = Vec::with_capacity(TIMED);
    for i in 0..TIMED {
        let started = Instant::now();
        black_box(limiter.check_key(&keys[i % KEYS]).is_ok());
        times.push(started.elapsed());
    }
    report("governor check_key (one timed call each)", times);
    let mut times = Vec::with_capacity(TIMED);
    for _ in 0..TIMED {
        let started = Instant::now();
        black_box(());
        times.push(started.elapsed());
    }
    report("timer overhead", times);
    println!("refused: {refused} (must be 0)");
    assert_eq!(refused, 0);
}
