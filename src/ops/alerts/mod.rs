//! Alert rules evaluated inside the server, over snapshots of its own metrics.
//!
//! citecast runs as one node with nothing beside it (no Prometheus, no Alertmanager), so
//! the server copies its cumulative counters and gauges into a [`Sample`] every ~10 s and
//! keeps the last day of them in a bounded [`History`] (8640 samples, about 1.5 MB). The
//! windowed figures the rules, the SLOs and the charts need are differences between
//! samples, computed like Prometheus' `increase()`: a counter that goes down means the
//! server restarted, and the value after the restart is the increase since it.
//!
//! An [`AlertEngine`] evaluates each [`Rule`] against the history: a condition that holds
//! makes the rule *pending*; once it has held for `for_secs` the rule is *firing*; when it
//! stops holding the alert is *resolved*. Only the two transitions that matter to a person
//! (firing, resolved) produce a [`Notification`], which is the deduplication: a condition
//! that stays true notifies once, and one that clears while pending notifies nobody.
//! Firings are kept in a bounded incident log for the status page.
//!
//! Notifications are plain values. The server writes each to the log
//! ([`Notification::log_line`]) and posts it to a webhook ([`WebhookSink`]): a blocking
//! POST through the one outbound client (`src/outbound`, HTTP or HTTPS, short timeouts,
//! two retries with backoff), to be called off the async workers.

mod engine;
mod history;
mod rules;
mod webhook;

pub use engine::*;
pub use history::*;
pub use rules::*;
pub use webhook::*;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::thread;
    use std::time::Duration;

    const STEP: i64 = 10;

    /// Adds `n` requests that each took `seconds`, `errors` of them 5xx.
    fn traffic(s: &mut Sample, n: u64, errors: u64, seconds: f64) {
        s.requests += n;
        s.errors += errors;
        s.latency_count += n;
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if seconds <= *b {
                s.latency_le[i] += n;
            }
        }
    }

    fn healthy(s: &mut Sample) {
        traffic(s, 10, 0, 0.02);
        s.job_runs += 1;
        s.disk_used_ratio = 0.5;
        s.model_drift = 0.05;
        s.forecasts += 5;
    }

    /// A server sampled every 10 s with one rule.
    struct Sim {
        history: History,
        engine: AlertEngine,
        cur: Sample,
        log: Vec<Notification>,
    }

    impl Sim {
        fn new(rule: Rule) -> Sim {
            let mut sim = Sim {
                history: History::new(8640),
                engine: AlertEngine::new(vec![rule]),
                cur: Sample::default(),
                log: vec![],
            };
            sim.cur.at = 1_700_000_000;
            sim
        }

        fn default_rule(name: &str) -> Sim {
            Sim::new(default_rules().into_iter().find(|r| r.name == name).expect("rule"))
        }

        fn now(&self) -> i64 {
            self.cur.at
        }

        fn state(&self) -> AlertState {
            self.engine.statuses()[0].state
        }

        /// One sample; returns this step's notifications.
        fn step(&mut self, f: fn(&mut Sample)) -> Vec<Notification> {
            self.cur.at += STEP;
            f(&mut self.cur);
            self.history.push(self.cur.clone());
            let n = self.engine.evaluate(&self.history, self.cur.at);
            self.log.extend(n.iter().cloned());
            n
        }

        /// Steps until `until` says stop (true) or `secs` pass; the stopping step's notes.
        fn run_until(
            &mut self,
            secs: i64,
            f: fn(&mut Sample),
            until: impl Fn(&Sim, &[Notification]) -> bool,
        ) -> Option<Vec<Notification>> {
            for _ in 0..secs / STEP {
                let n = self.step(f);
                if until(self, &n) {
                    return Some(n);
                }
            }
            None
        }

        fn run_quiet(&mut self, secs: i64, f: fn(&mut Sample)) {
            let noisy = self.run_until(secs, f, |_, n| !n.is_empty());
            assert_eq!(noisy, None, "no notification expected");
        }
    }

    /// Inactive → pending (no notification) → firing (one) → still firing (none) →
    /// resolved (one) → quiet, and one closed incident.
    fn lifecycle(name: &str, bad: fn(&mut Sample)) {
        let mut sim = Sim::default_rule(name);
        let rule = sim.engine.rules()[0].clone();
        sim.run_quiet(900, healthy);
        assert_eq!(sim.state(), AlertState::Inactive);

        let first =
            sim.run_until(3600, bad, |s, _| s.state() != AlertState::Inactive).expect("condition holds");
        let pending_since = sim.now();
        if rule.for_secs > 0 {
            assert!(first.is_empty(), "{name}: pending must not notify");
            assert_eq!(sim.state(), AlertState::Pending { since: pending_since });
            assert!(!sim.engine.active().is_empty());
            let fired = sim.run_until(7200, bad, |_, n| !n.is_empty()).expect("fires");
            assert_eq!(fired.len(), 1);
            assert_eq!(fired[0].state, Transition::Firing);
            assert_eq!(sim.now() - pending_since, rule.for_secs as i64, "{name}: fires after for_secs");
        } else {
            assert_eq!(first.len(), 1, "{name}: for_secs 0 fires at once");
            assert_eq!(first[0].state, Transition::Firing);
        }
        let fired = sim.log[0].clone();
        assert_eq!(fired.alert, name);
        assert_eq!(fired.since, pending_since);
        assert_eq!(fired.runbook, format!("docs/runbooks/{name}.md"));
        assert!(fired.value.expect("value") >= fired.threshold);
        assert!(matches!(sim.state(), AlertState::Firing { since } if since == pending_since));
        assert_eq!(sim.engine.incidents()[0].resolved_at, None);

        sim.run_quiet(3600, bad);
        assert!(matches!(sim.state(), AlertState::Firing { .. }), "{name}: stays firing");

        let resolved = sim.run_until(7200, healthy, |_, n| !n.is_empty()).expect("resolves");
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].state, Transition::Resolved);
        assert_eq!(resolved[0].since, pending_since);
        assert_eq!(sim.state(), AlertState::Inactive);
        sim.run_quiet(3600, healthy);
        assert_eq!(sim.log.len(), 2, "{name}: exactly one firing and one resolved");

        let incidents = sim.engine.incidents();
        assert_eq!(incidents.len(), 1);
        assert_eq!(incidents[0].alert, name);
        assert_eq!(incidents[0].fired_at, fired.at);
        assert_eq!(incidents[0].resolved_at, Some(resolved[0].at));
        assert!(incidents[0].peak_value >= fired.value.unwrap_or(0.0));
    }

    #[test]
    fn high_error_rate_fires_and_resolves() {
        lifecycle("high-error-rate", |s| {
            healthy(s);
            traffic(s, 10, 1, 0.02);
        });
    }

    #[test]
    fn high_p95_latency_fires_and_resolves() {
        lifecycle("high-p95-latency", |s| {
            healthy(s);
            traffic(s, 10, 0, 0.8);
        });
    }

    #[test]
    fn job_failures_fire_and_resolve() {
        lifecycle("job-failures", |s| {
            healthy(s);
            s.job_failures += 1;
        });
    }

    #[test]
    fn disk_almost_full_fires_and_resolves() {
        lifecycle("disk-almost-full", |s| {
            healthy(s);
            s.disk_used_ratio = 0.95;
        });
    }

    #[test]
    fn model_drift_fires_and_resolves() {
        lifecycle("model-drift", |s| {
            healthy(s);
            s.model_drift = 0.4;
        });
    }

    #[test]
    fn job_failures_with_a_delay_go_through_pending() {
        let mut rule = default_rules().into_iter().find(|r| r.name == "job-failures").unwrap();
        rule.for_secs = 60;
        let mut sim = Sim::new(rule);
        sim.run_quiet(600, healthy);
        assert!(sim
            .step(|s| {
                healthy(s);
                s.job_failures += 1
            })
            .is_empty());
        assert!(matches!(sim.state(), AlertState::Pending { .. }));
        let fired = sim.run_until(600, healthy, |_, n| !n.is_empty()).unwrap();
        assert_eq!(fired[0].state, Transition::Firing);
    }

    #[test]
    fn dead_letters_keep_the_job_alert_firing_until_cleared() {
        let mut sim = Sim::default_rule("job-failures");
        sim.run_quiet(600, healthy);
        let fired = sim.step(|s| {
            healthy(s);
            s.job_failures += 1;
            s.dead_letters = 1;
        });
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].value, Some(2.0));
        sim.run_quiet(3600, healthy); // failure long out of the window, dead letter still there
        assert!(matches!(sim.state(), AlertState::Firing { .. }));
        let resolved = sim.step(|s| {
            healthy(s);
            s.dead_letters = 0;
        });
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].state, Transition::Resolved);
    }

    #[test]
    fn pending_that_clears_notifies_nobody() {
        let mut sim = Sim::default_rule("disk-almost-full");
        sim.run_quiet(300, healthy);
        sim.step(|s| {
            healthy(s);
            s.disk_used_ratio = 0.95;
        });
        assert!(matches!(sim.state(), AlertState::Pending { .. }));
        sim.run_quiet(600, healthy);
        assert_eq!(sim.state(), AlertState::Inactive);
        assert!(sim.log.is_empty() && sim.engine.incidents().is_empty());
    }

    #[test]
    fn few_requests_do_not_judge_the_error_rate() {
        let mut sim = Sim::default_rule("high-error-rate");
        // One failing request per minute: a 100% error rate, but under 20 requests per 5 minutes.
        sim.run_quiet(3600, |s| {
            if s.at % 60 == 0 {
                traffic(s, 1, 1, 0.01);
            }
        });
        let status = &sim.engine.statuses()[0];
        assert_eq!(status.state, AlertState::Inactive);
        assert_eq!(status.value, Some(1.0));
    }

    #[test]
    fn stale_or_missing_data_keeps_the_state() {
        let mut sim = Sim::default_rule("disk-almost-full");
        sim.run_until(600, |s| s.disk_used_ratio = 0.95, |_, n| !n.is_empty()).expect("fires");
        // The sampler stops: evaluations long after the last sample change nothing.
        let later = sim.now() + 3600;
        assert!(sim.engine.evaluate(&sim.history, later).is_empty());
        assert!(matches!(sim.state(), AlertState::Firing { .. }));
        // An empty history (after a restart) cannot resolve it either.
        assert!(sim.engine.evaluate(&History::new(10), later).is_empty());
        assert!(matches!(sim.state(), AlertState::Firing { .. }));
    }

    #[test]
    fn restored_open_incident_resolves_without_firing_again() {
        let mut sim = Sim::default_rule("disk-almost-full");
        sim.run_until(600, |s| s.disk_used_ratio = 0.95, |_, n| !n.is_empty()).expect("fires");
        let saved = serde_json::to_string(&sim.engine.incidents()).unwrap();
        let stale = Incident {
            alert: "retired-rule".into(),
            severity: Severity::Warning,
            fired_at: 5,
            resolved_at: None,
            peak_value: 1.0,
        };
        let mut restored: Vec<Incident> = serde_json::from_str(&saved).unwrap();
        restored.push(stale);

        let mut restarted = Sim::default_rule("disk-almost-full");
        restarted.cur.at = sim.now();
        restarted.engine.restore_incidents(restored, sim.now());
        assert!(matches!(restarted.state(), AlertState::Firing { .. }));
        assert_eq!(restarted.engine.incidents()[1].resolved_at, Some(sim.now()));
        restarted.run_quiet(300, |s| s.disk_used_ratio = 0.95);
        let resolved = restarted.step(|s| s.disk_used_ratio = 0.5);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].state, Transition::Resolved);
        assert!(restarted.engine.incidents()[0].resolved_at.is_some());
    }

    #[test]
    fn incident_log_is_bounded_newest_first() {
        let mut rule = default_rules().into_iter().find(|r| r.name == "disk-almost-full").unwrap();
        rule.for_secs = 0;
        let mut sim = Sim::new(rule);
        for _ in 0..INCIDENT_LOG_CAPACITY + 10 {
            sim.step(|s| s.disk_used_ratio = 0.95);
            sim.step(|s| s.disk_used_ratio = 0.1);
        }
        let incidents = sim.engine.incidents();
        assert_eq!(incidents.len(), INCIDENT_LOG_CAPACITY);
        assert!(incidents.windows(2).all(|w| w[0].fired_at > w[1].fired_at));
        assert_eq!(sim.log.len(), 2 * (INCIDENT_LOG_CAPACITY + 10));
    }

    #[test]
    fn counter_reset_counts_the_value_after_the_restart() {
        let mut h = History::new(100);
        let mut at = 0;
        for (requests, errors) in [(100, 0), (200, 1), (50, 5), (150, 5)] {
            at += 10;
            h.push(Sample { at, requests, errors, ..Sample::default() });
        }
        let inc = h.increase(3600).unwrap();
        assert_eq!((inc.requests, inc.errors, inc.secs), (250, 6, 30));
        assert_eq!(h.error_rate(3600), Some(6.0 / 250.0));

        // Only errors went down, yet the whole step is a restart: requests count from 0 too.
        let mut h = History::new(100);
        h.push(Sample { at: 0, requests: 200, errors: 10, ..Sample::default() });
        h.push(Sample { at: 10, requests: 210, errors: 2, ..Sample::default() });
        let inc = h.increase(60).unwrap();
        assert_eq!((inc.requests, inc.errors), (210, 2));
    }

    #[test]
    fn windows_end_at_the_newest_sample() {
        let mut h = History::new(100);
        for i in 0..=60 {
            h.push(Sample {
                at: i * 10,
                requests: (i * 10) as u64,
                job_failures: u64::from(i > 40),
                ..Default::default()
            });
        }
        let (first, last) = h.window(300).unwrap();
        assert_eq!((first.at, last.at), (300, 600));
        assert_eq!(h.requests_rate(300), Some(1.0));
        assert_eq!(h.job_failures(300), 1);
        assert_eq!(h.job_failures(30), 0);
        assert_eq!(h.error_rate(300), Some(0.0));
        assert_eq!(History::new(10).error_rate(300), None);
    }

    #[test]
    fn history_is_bounded_and_restarts_when_the_clock_steps_back() {
        let mut h = History::new(3);
        for at in [10, 20, 30, 40] {
            h.push(Sample { at, ..Default::default() });
        }
        assert_eq!(h.samples().map(|s| s.at).collect::<Vec<_>>(), [20, 30, 40]);
        h.push(Sample { at: 40, requests: 7, ..Default::default() });
        assert_eq!((h.len(), h.latest().unwrap().requests), (3, 7));
        h.push(Sample { at: 5, ..Default::default() });
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn p95_interpolates_within_the_bucket() {
        let le_with = |pairs: &[(usize, u64)]| {
            let mut le = [0u64; 12];
            for &(i, n) in pairs {
                for c in le.iter_mut().skip(i) {
                    *c += n;
                }
            }
            le
        };
        // 90 requests within 100 ms, 10 more within 250 ms: the 95th is halfway through 100..250.
        let le = le_with(&[(7, 90), (8, 10)]);
        assert!((latency_quantile(0.95, &le, 100).unwrap() - 0.175).abs() < 1e-12);
        // All within 0.5 ms.
        let le = le_with(&[(0, 100)]);
        assert!((latency_quantile(0.95, &le, 100).unwrap() - 0.000475).abs() < 1e-12);
        // Exactly on a bound: 95 within 10 ms, the rest slower.
        let le = le_with(&[(4, 95), (9, 5)]);
        assert!((latency_quantile(0.95, &le, 100).unwrap() - 0.01).abs() < 1e-12);
        // Most requests slower than the last bucket: the last bound is all it can say.
        let le = le_with(&[(11, 10)]);
        assert_eq!(latency_quantile(0.95, &le, 100), Some(5.0));
        assert_eq!(latency_quantile(0.95, &[0; 12], 0), None);

        let mut h = History::new(10);
        h.push(Sample::default());
        let mut s = Sample { at: 10, ..Default::default() };
        traffic(&mut s, 90, 0, 0.08);
        traffic(&mut s, 10, 0, 0.2);
        h.push(s);
        assert!((h.p95_latency(60).unwrap() - 0.175).abs() < 1e-12);
    }

    #[test]
    fn series_are_downsampled_per_interval() {
        let mut h = History::new(8640);
        let mut s = Sample::default();
        for i in 0..=360 {
            s.at = i * 10;
            if i > 0 {
                traffic(&mut s, 10, if i > 180 { 1 } else { 0 }, 0.02);
            }
            s.disk_used_ratio = i as f64 / 360.0;
            h.push(s.clone());
        }
        let rate = h.series(SeriesMetric::RequestRate, 3600, 12);
        assert_eq!(rate.len(), 12);
        assert!(rate.iter().all(|&(_, v)| (v - 1.0).abs() < 1e-9));
        assert_eq!(rate.last().unwrap().0, 3600);
        let errors = h.series(SeriesMetric::ErrorRate, 3600, 12);
        assert!(errors[..6].iter().all(|&(_, v)| v == 0.0));
        assert!(errors[6..].iter().all(|&(_, v)| (v - 0.1).abs() < 1e-9));
        let disk = h.series(SeriesMetric::DiskUsedRatio, 3600, 12);
        assert_eq!(disk.len(), 13);
        assert_eq!(disk.last().unwrap().1, 1.0);
        let p95 = h.series(SeriesMetric::P95Latency, 600, 100);
        assert_eq!(p95.len(), 60, "fewer samples than points: one point per interval");
        assert!(h.series(SeriesMetric::RequestRate, 3600, 0).len() == 1);
        assert!(History::new(5).series(SeriesMetric::ModelDrift, 60, 10).is_empty());

        let mut quiet = History::new(10);
        quiet.push(Sample { at: 0, ..Default::default() });
        quiet.push(Sample { at: 10, ..Default::default() });
        assert!(quiet.series(SeriesMetric::ErrorRate, 60, 10).is_empty(), "no traffic, no point");
    }

    fn notification() -> Notification {
        Notification {
            alert: "high-error-rate".into(),
            state: Transition::Firing,
            severity: Severity::Critical,
            value: Some(0.034),
            threshold: 0.01,
            since: 1_700_000_000,
            at: 1_700_000_120,
            runbook: "docs/runbooks/high-error-rate.md".into(),
            description: "More than 1% \"failed\".".into(),
        }
    }

    #[test]
    fn log_line_is_one_logfmt_line() {
        let line = notification().log_line();
        assert_eq!(
            line,
            "alert=high-error-rate state=firing severity=critical value=0.034 threshold=0.01 \
             since=1700000000 at=1700000120 runbook=docs/runbooks/high-error-rate.md \
             description=\"More than 1% \\\"failed\\\".\""
        );
        assert!(!line.contains('\n'));
    }

    /// A one-shot HTTP receiver answering `status`; returns the raw request.
    fn receiver(status: &'static str) -> (String, thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut raw = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                let n = conn.read(&mut buf).unwrap();
                raw.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&raw).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if body.len() >= len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            conn.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok").as_bytes()).unwrap();
            String::from_utf8(raw).unwrap()
        });
        (format!("http://{addr}/hooks/alerts?team=ops"), handle)
    }

    #[test]
    fn webhook_posts_the_notification_as_json() {
        let (url, server) = receiver("200 OK");
        WebhookSink::new(&url).unwrap().deliver(&notification()).unwrap();
        let request = server.join().unwrap();
        let (head, body) = request.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /hooks/alerts?team=ops HTTP/1.1\r\n"), "{head}");
        // (header names are case-insensitive; the client sends them in lower case)
        let head_lc = head.to_ascii_lowercase();
        assert!(head_lc.contains("content-type: application/json"), "{head}");
        assert!(head_lc.contains(&format!("host: {}", url.split('/').nth(2).unwrap())), "{head}");
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "alert": "high-error-rate",
                "state": "firing",
                "severity": "critical",
                "value": 0.034,
                "threshold": 0.01,
                "since": 1_700_000_000,
                "at": 1_700_000_120,
                "runbook": "docs/runbooks/high-error-rate.md",
                "description": "More than 1% \"failed\"."
            })
        );
    }

    #[test]
    fn webhook_reports_a_non_2xx_answer() {
        let (url, server) = receiver("500 Internal Server Error");
        let err = WebhookSink::new(&url).unwrap().with_retries(0).deliver(&notification()).unwrap_err();
        server.join().unwrap();
        assert!(matches!(err, AlertError::Status { status: 500, .. }), "{err}");
        assert!(err.to_string().contains("answered 500"));
    }

    #[test]
    fn webhook_reports_a_refused_connection() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let err = WebhookSink::new(&format!("http://127.0.0.1:{port}/"))
            .unwrap()
            .deliver(&notification())
            .unwrap_err();
        assert!(matches!(err, AlertError::Io { .. }), "{err}");
    }

    #[test]
    fn webhook_times_out_on_a_silent_receiver() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let started = std::time::Instant::now();
        let err = WebhookSink::new(&url)
            .unwrap()
            .with_timeout(Duration::from_millis(200))
            .with_retries(0)
            .deliver(&notification())
            .unwrap_err();
        assert!(matches!(err, AlertError::Io { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
        drop(listener);
    }

    #[test]
    fn parses_http_urls_and_refuses_others() {
        let u = parse_http_url("http://alerts.example:9000/hook?x=1#frag").unwrap();
        assert_eq!(
            u,
            HttpUrl { tls: false, host: "alerts.example".into(), port: 9000, path: "/hook?x=1".into() }
        );
        assert_eq!(u.to_string(), "http://alerts.example:9000/hook?x=1");
        let u = parse_http_url("HTTP://localhost").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        assert_eq!(parse_http_url("http://h?a=b").unwrap().path, "/?a=b");
        let u = parse_http_url("http://[::1]:8081/x").unwrap();
        assert_eq!((u.host.as_str(), u.authority()), ("::1", "[::1]:8081".to_string()));

        // HTTPS receivers (chat tools, paging services) are reached directly.
        let u = parse_http_url("https://hooks.example/x").unwrap();
        assert_eq!((u.tls, u.port, u.to_string().as_str()), (true, 443, "https://hooks.example:443/x"));
        for bad in [
            "localhost:8080/x",
            "http://",
            "http:///path",
            "http://host:0/",
            "http://host:99999/",
            "http://host:port/",
            "http://user:pw@host/",
            "http://host/a b",
            "http://host/\r\nX-Injected: 1",
            "http://[::1/",
        ] {
            assert!(matches!(parse_http_url(bad), Err(AlertError::BadUrl { .. })), "{bad}");
        }
        assert!(matches!(parse_http_url("ftp://host/"), Err(AlertError::UnsupportedScheme { .. })));
        assert!(WebhookSink::new("https://x/").is_ok());
        assert!(WebhookSink::new("gopher://x/").is_err());
    }

    #[test]
    fn every_default_rule_has_a_runbook_listed_in_the_index() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let index = std::fs::read_to_string(root.join("docs/runbooks/README.md")).unwrap();
        for rule in default_rules() {
            let page = std::fs::read_to_string(root.join(&rule.runbook)).expect(&rule.runbook);
            assert!(page.starts_with(&format!("# {}\n", rule.name)), "{}", rule.runbook);
            for section in ["## What it means", "## How to check", "## How to fix", "## How to roll back"] {
                assert!(page.contains(section), "{} lacks {section}", rule.runbook);
            }
            assert!(index.contains(&format!("({}.md)", rule.name)), "README.md lacks {}", rule.name);
            assert!(crate::ops::has_runbook(&rule.name), "{} is not built in for /runbooks", rule.name);
        }
    }

    #[test]
    fn status_and_incidents_serialise_for_the_status_page() {
        let status = AlertStatus {
            rule: "model-drift".into(),
            description: "d".into(),
            severity: Severity::Warning,
            state: AlertState::Pending { since: 7 },
            value: Some(0.3),
            threshold: 0.25,
            runbook: "docs/runbooks/model-drift.md".into(),
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!((json["state"].as_str(), json["since"].as_i64()), (Some("pending"), Some(7)));
        assert_eq!(serde_json::from_value::<AlertStatus>(json).unwrap(), status);
        let rules = serde_json::to_value(default_rules()).unwrap();
        assert_eq!(rules[0]["condition"]["kind"], "error_rate_above");
    }

    #[test]
    fn uptime_counts_long_gaps_between_samples_as_downtime() {
        let mut h = History::new(100);
        for at in [0, 10, 20, 1000, 1010] {
            h.push(Sample { at, ..Sample::default() });
        }
        // Up: 10 + 10 + 30 (the 980 s gap counts as 30) + 10 = 60 s of 1010.
        let r = h.uptime_ratio(2000, 30, 1010).unwrap();
        assert!((r - 60.0 / 1010.0).abs() < 1e-9, "{r}");
        // Only the last two samples fall in the last 15 s: fully up.
        assert_eq!(h.uptime_ratio(15, 30, 1010), Some(1.0));
        assert_eq!(History::new(10).uptime_ratio(100, 30, 5), None);
    }
}
