//! Safe model rollout: an A/B experiment or a staged canary (5 % → 50 % → 100 %) that
//! routes a share of one mode's forecasts to a candidate model, scores every forecast
//! with both models, and watches guard metrics on the candidate.
//!
//! Routing hashes the caller (customer id, else key id, else client address) with the
//! rollout id, so one customer sees one model for the whole rollout, and a customer in
//! the candidate arm at 5 % stays there at 50 %: the arm is `bucket < share` for a fixed
//! bucket in 0..100.
//!
//! This module is plain state and arithmetic; the model actor owns one [`Rollouts`] and
//! persists it as JSON next to `active.json` after every change.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::task::Mode;

/// Canary stages, in percent of the mode's forecasts.
pub const CANARY_STAGES: [u8; 3] = [5, 50, 100];
/// Bins of the score histograms (equal width over [0, 1]).
pub const SCORE_BINS: usize = 10;
/// Upper bounds of the latency histogram, microseconds (one more bin catches the rest).
pub const LATENCY_BOUNDS_US: [u64; 11] =
    [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000];
/// Finished rollouts kept for the record.
const KEEP_FINISHED: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    Control,
    Candidate,
}

impl Arm {
    pub fn as_str(self) -> &'static str {
        match self {
            Arm::Control => "control",
            Arm::Candidate => "candidate",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Strategy {
    /// A fixed share until stopped or promoted by hand.
    Experiment { share: u8 },
    /// Staged shares; `advance_after_secs` advances on a schedule once a stage has seen
    /// `min_forecasts` candidate forecasts without a guard tripping.
    Canary { stage: usize, advance_after_secs: Option<u64> },
}

/// Thresholds on the candidate arm that roll a rollout back automatically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Guards {
    /// Share of candidate forecasts that failed (a non-finite score), 0..1.
    pub max_error_rate: f64,
    /// 95th percentile of the candidate's compute time, milliseconds.
    pub max_p95_ms: f64,
    /// Population stability index of the candidate's scores against the control's scores
    /// on the same papers; above 0.25 is the usual "the distribution moved" line.
    pub max_drift_psi: f64,
    /// Candidate forecasts needed before a guard may judge or a stage may advance.
    pub min_forecasts: u64,
}

impl Default for Guards {
    fn default() -> Self {
        Guards { max_error_rate: 0.01, max_p95_ms: 100.0, max_drift_psi: 0.25, min_forecasts: 200 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum RolloutState {
    Running,
    /// The candidate became the active model.
    Promoted {
        at: i64,
    },
    /// Ended with the control still active; `automatic` when a guard tripped.
    RolledBack {
        at: i64,
        reason: String,
        automatic: bool,
    },
    /// Stopped by hand without a verdict.
    Stopped {
        at: i64,
    },
}

/// What one arm's model produced during the rollout (both arms score every forecast).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmStats {
    /// Forecasts this arm's model answered to callers.
    pub served: u64,
    /// Forecasts this arm's model computed (served or shadow).
    pub scored: u64,
    pub errors: u64,
    pub high: u64,
    pub score_sum: f64,
    pub score_bins: [u64; SCORE_BINS],
    pub latency_bins: [u64; LATENCY_BOUNDS_US.len() + 1],
}

impl ArmStats {
    fn record(&mut self, outcome: &Scored, served: bool) {
        self.scored += 1;
        if served {
            self.served += 1;
        }
        let bin =
            LATENCY_BOUNDS_US.iter().position(|&b| outcome.micros <= b).unwrap_or(LATENCY_BOUNDS_US.len());
        self.latency_bins[bin] += 1;
        match outcome.probability {
            Some(p) if p.is_finite() => {
                self.score_sum += p;
                self.score_bins[score_bin(p)] += 1;
                if outcome.high {
                    self.high += 1;
                }
            }
            _ => self.errors += 1,
        }
    }

    pub fn error_rate(&self) -> f64 {
        if self.scored == 0 {
            0.0
        } else {
            self.errors as f64 / self.scored as f64
        }
    }

    pub fn mean_score(&self) -> Option<f64> {
        let ok = self.scored - self.errors;
        (ok > 0).then(|| self.score_sum / ok as f64)
    }

    /// Upper bound of the latency bin holding the 95th percentile, milliseconds
    /// (`None` without data; the open last bin reports its lower bound).
    pub fn p95_ms(&self) -> Option<f64> {
        let total: u64 = self.latency_bins.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = (total as f64 * 0.95).ceil() as u64;
        let mut seen = 0;
        for (i, n) in self.latency_bins.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let bound = LATENCY_BOUNDS_US.get(i).or(LATENCY_BOUNDS_US.last()).copied().unwrap_or(0);
                return Some(bound as f64 / 1000.0);
            }
        }
        None
    }
}

pub fn score_bin(p: f64) -> usize {
    ((p.clamp(0.0, 1.0) * SCORE_BINS as f64) as usize).min(SCORE_BINS - 1)
}

/// One model's answer for one paper, as the rollout sees it.
#[derive(Debug, Clone, Copy)]
pub struct Scored {
    /// `None` when the model failed to produce a score.
    pub probability: Option<f64>,
    pub high: bool,
    pub micros: u64,
}

/// Population stability index between two histograms (a small floor keeps empty bins finite).
pub fn psi(expected: &[u64], actual: &[u64]) -> Option<f64> {
    let (te, ta) = (expected.iter().sum::<u64>() as f64, actual.iter().sum::<u64>() as f64);
    if te == 0.0 || ta == 0.0 {
        return None;
    }
    Some(
        expected
            .iter()
            .zip(actual)
            .map(|(&e, &a)| {
                let (pe, pa) = ((e as f64 / te).max(1e-4), (a as f64 / ta).max(1e-4));
                (pa - pe) * (pa / pe).ln()
            })
            .sum(),
    )
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub id: String,
    pub mode: Mode,
    pub control: String,
    pub candidate: String,
    pub strategy: Strategy,
    pub guards: Guards,
    pub state: RolloutState,
    pub started_at: i64,
    pub stage_started_at: i64,
    /// Candidate forecasts computed since the current stage began.
    pub stage_forecasts: u64,
    pub control_stats: ArmStats,
    pub candidate_stats: ArmStats,
    /// Papers where both models produced a score, and where their labels agreed.
    pub paired: u64,
    pub agreed: u64,
    pub abs_diff_sum: f64,
    /// Every stage change, guard verdict and command, oldest first.
    pub events: Vec<RolloutEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutEvent {
    pub at: i64,
    pub what: String,
}

impl Rollout {
    /// Percent of forecasts the candidate serves now.
    pub fn share(&self) -> u8 {
        match (&self.state, &self.strategy) {
            (RolloutState::Running, Strategy::Experiment { share }) => *share,
            (RolloutState::Running, Strategy::Canary { stage, .. }) => CANARY_STAGES[*stage],
            _ => 0,
        }
    }

    pub fn arm_for(&self, caller: &str) -> Arm {
        if bucket(&self.id, caller) < self.share() {
            Arm::Candidate
        } else {
            Arm::Control
        }
    }

    pub fn is_running(&self) -> bool {
        self.state == RolloutState::Running
    }

    /// Records one paper scored by both models; `served` says which answer went out.
    pub fn record(&mut self, control: Scored, candidate: Scored, served: Arm) {
        self.control_stats.record(&control, served == Arm::Control);
        self.candidate_stats.record(&candidate, served == Arm::Candidate);
        self.stage_forecasts += 1;
        if let (Some(a), Some(b)) = (control.probability, candidate.probability) {
            if a.is_finite() && b.is_finite() {
                self.paired += 1;
                self.abs_diff_sum += (a - b).abs();
                if control.high == candidate.high {
                    self.agreed += 1;
                }
            }
        }
    }

    pub fn drift_psi(&self) -> Option<f64> {
        psi(&self.control_stats.score_bins, &self.candidate_stats.score_bins)
    }

    /// The first guard the candidate crosses, as a sentence, once enough forecasts are in.
    pub fn guard_violation(&self) -> Option<String> {
        let c = &self.candidate_stats;
        if c.scored < self.guards.min_forecasts {
            return None;
        }
        let g = &self.guards;
        if c.error_rate() > g.max_error_rate {
            return Some(format!(
                "candidate error rate {:.2}% is above the {:.2}% guard",
                c.error_rate() * 100.0,
                g.max_error_rate * 100.0
            ));
        }
        if let Some(p95) = c.p95_ms().filter(|&p| p > g.max_p95_ms) {
            return Some(format!("candidate p95 latency {p95} ms is above the {} ms guard", g.max_p95_ms));
        }
        if let Some(d) = self.drift_psi().filter(|&d| d > g.max_drift_psi) {
            return Some(format!("score drift PSI {d:.3} is above the {} guard", g.max_drift_psi));
        }
        None
    }

    fn event(&mut self, at: i64, what: impl Into<String>) {
        self.events.push(RolloutEvent { at, what: what.into() });
    }

    pub fn agreement(&self) -> Option<f64> {
        (self.paired > 0).then(|| self.agreed as f64 / self.paired as f64)
    }
}

/// The stable bucket 0..100 of a caller within a rollout (FNV-1a, fixed across builds).
pub fn bucket(rollout_id: &str, caller: &str) -> u8 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in rollout_id.bytes().chain([0u8]).chain(caller.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % 100) as u8
}

/// The running rollouts' (mode, id, share), published by the model actor so the HTTP
/// layer can pick a caller's arm before it looks in its cache.
#[derive(Debug, Clone, Default)]
pub struct RouteTable(Arc<RwLock<Vec<(Mode, String, u8)>>>);

impl RouteTable {
    pub fn set(&self, routes: Vec<(Mode, String, u8)>) {
        if let Ok(mut r) = self.0.write() {
            *r = routes;
        }
    }

    /// The rollout id and arm of `caller` for `mode`, when a rollout runs.
    pub fn arm(&self, mode: Mode, caller: &str) -> Option<(String, Arm)> {
        let routes = self.0.read().ok()?;
        let (_, id, share) = routes.iter().find(|(m, _, _)| *m == mode)?;
        let arm = if bucket(id, caller) < *share { Arm::Candidate } else { Arm::Control };
        Some((id.clone(), arm))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolloutError {
    #[error("a {mode} rollout ({id}) is already running; stop or finish it first")]
    AlreadyRunning { mode: String, id: String },
    #[error("no {0} rollout is running")]
    NotRunning(String),
    #[error("{0}")]
    Invalid(String),
}

/// What a tick or a command did, for the caller to act on (swap the active model, log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Nothing,
    Advanced {
        id: String,
        share: u8,
    },
    /// The candidate must become the active model.
    Promote {
        id: String,
        mode: Mode,
        candidate: String,
    },
    RolledBack {
        id: String,
        reason: String,
    },
    Stopped {
        id: String,
    },
}

/// The running rollout per mode plus the finished ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rollouts {
    pub running: BTreeMap<Mode, Rollout>,
    /// Newest last, at most [`KEEP_FINISHED`].
    pub finished: Vec<Rollout>,
    next_id: u64,
}

/// How a rollout starts.
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub mode: Mode,
    pub control: String,
    pub candidate: String,
    pub strategy: Strategy,
    pub guards: Guards,
}

impl Rollouts {
    pub fn start(&mut self, req: StartRequest, now: i64) -> Result<&Rollout, RolloutError> {
        if let Some(r) = self.running.get(&req.mode) {
            return Err(RolloutError::AlreadyRunning { mode: req.mode.as_str().into(), id: r.id.clone() });
        }
        if req.control == req.candidate {
            return Err(RolloutError::Invalid(format!(
                "'{}' already serves {}; choose another candidate",
                req.candidate,
                req.mode.as_str()
            )));
        }
        if let Strategy::Experiment { share } = req.strategy {
            if !(1..=99).contains(&share) {
                return Err(RolloutError::Invalid(format!(
                    "an experiment share must be 1 to 99 %, got {share}"
                )));
            }
        }
        let g = &req.guards;
        if !(g.max_error_rate >= 0.0 && g.max_p95_ms > 0.0 && g.max_drift_psi > 0.0) {
            return Err(RolloutError::Invalid("guard thresholds must be positive".into()));
        }
        self.next_id += 1;
        let id = format!("{}-{}-{}", req.mode.as_str(), now, self.next_id);
        let mut r = Rollout {
            id,
            mode: req.mode,
            control: req.control,
            candidate: req.candidate,
            strategy: req.strategy,
            guards: req.guards,
            state: RolloutState::Running,
            started_at: now,
            stage_started_at: now,
            stage_forecasts: 0,
            control_stats: ArmStats::default(),
            candidate_stats: ArmStats::default(),
            paired: 0,
            agreed: 0,
            abs_diff_sum: 0.0,
            events: Vec::new(),
        };
        let share = r.share();
        r.event(now, format!("started: {} serves {share}% of {} forecasts", r.candidate, r.mode.as_str()));
        Ok(self.running.entry(r.mode).or_insert(r))
    }

    pub fn get(&self, mode: Mode) -> Option<&Rollout> {
        self.running.get(&mode)
    }

    pub fn get_mut(&mut self, mode: Mode) -> Option<&mut Rollout> {
        self.running.get_mut(&mode)
    }

    /// Looks a rollout up by id among running and finished ones.
    pub fn find(&self, id: &str) -> Option<&Rollout> {
        self.running.values().chain(self.finished.iter().rev()).find(|r| r.id == id)
    }

    fn finish(&mut self, mode: Mode, state: RolloutState, what: String, at: i64) -> Option<Rollout> {
        let mut r = self.running.remove(&mode)?;
        r.event(at, what);
        r.state = state;
        self.finished.push(r.clone());
        if self.finished.len() > KEEP_FINISHED {
            self.finished.remove(0);
        }
        Some(r)
    }

    /// Moves a canary to its next stage; past 100 % the candidate is promoted. An
    /// experiment is promoted directly.
    pub fn advance(&mut self, mode: Mode, now: i64, why: &str) -> Result<Transition, RolloutError> {
        let r = self.running.get_mut(&mode).ok_or_else(|| RolloutError::NotRunning(mode.as_str().into()))?;
        if let Strategy::Canary { stage, .. } = &mut r.strategy {
            if *stage + 1 < CANARY_STAGES.len() {
                *stage += 1;
                let share = CANARY_STAGES[*stage];
                r.stage_started_at = now;
                r.stage_forecasts = 0;
                let id = r.id.clone();
                r.event(now, format!("advanced to {share}% ({why})"));
                return Ok(Transition::Advanced { id, share });
            }
        }
        let (id, candidate) = (r.id.clone(), r.candidate.clone());
        self.finish(mode, RolloutState::Promoted { at: now }, format!("promoted {candidate} ({why})"), now);
        Ok(Transition::Promote { id, mode, candidate })
    }

    /// Ends a rollout as promoted whatever its stage (an operator's explicit promotion).
    pub fn advance_to_end(&mut self, mode: Mode, now: i64, why: &str) -> Result<Transition, RolloutError> {
        let r = self.running.get(&mode).ok_or_else(|| RolloutError::NotRunning(mode.as_str().into()))?;
        let (id, candidate) = (r.id.clone(), r.candidate.clone());
        self.finish(mode, RolloutState::Promoted { at: now }, format!("promoted {candidate} ({why})"), now);
        Ok(Transition::Promote { id, mode, candidate })
    }

    pub fn rollback(
        &mut self,
        mode: Mode,
        now: i64,
        reason: &str,
        automatic: bool,
    ) -> Result<Transition, RolloutError> {
        let id = self.running.get(&mode).map(|r| r.id.clone());
        let id = id.ok_or_else(|| RolloutError::NotRunning(mode.as_str().into()))?;
        let state = RolloutState::RolledBack { at: now, reason: reason.into(), automatic };
        let what = if automatic {
            format!("rolled back automatically: {reason}")
        } else {
            format!("rolled back: {reason}")
        };
        self.finish(mode, state, what, now);
        Ok(Transition::RolledBack { id, reason: reason.into() })
    }

    pub fn stop(&mut self, mode: Mode, now: i64) -> Result<Transition, RolloutError> {
        let id = self.running.get(&mode).map(|r| r.id.clone());
        let id = id.ok_or_else(|| RolloutError::NotRunning(mode.as_str().into()))?;
        self.finish(mode, RolloutState::Stopped { at: now }, "stopped by an operator".into(), now);
        Ok(Transition::Stopped { id })
    }

    /// Checks the guards of every running rollout (a tripped guard rolls back at once)
    /// and advances canaries whose stage has lasted long enough.
    pub fn tick(&mut self, now: i64) -> Vec<Transition> {
        let modes: Vec<Mode> = self.running.keys().copied().collect();
        let mut out = Vec::new();
        for mode in modes {
            let Some(r) = self.running.get(&mode) else { continue };
            if let Some(reason) = r.guard_violation() {
                out.extend(self.rollback(mode, now, &reason, true).ok());
                continue;
            }
            if let Strategy::Canary { advance_after_secs: Some(after), .. } = r.strategy {
                let lasted = now.saturating_sub(r.stage_started_at) >= after as i64;
                if lasted && r.stage_forecasts >= r.guards.min_forecasts {
                    out.extend(self.advance(mode, now, "schedule").ok());
                }
            }
        }
        out
    }

    /// Drops a rollout whose models are no longer loaded (after a restart without them).
    pub fn forget_unloaded(&mut self, loaded: &dyn Fn(&str) -> bool, now: i64) -> Vec<Transition> {
        let stale: Vec<Mode> = self
            .running
            .iter()
            .filter(|(_, r)| !loaded(&r.control) || !loaded(&r.candidate))
            .map(|(m, _)| *m)
            .collect();
        stale
            .into_iter()
            .filter_map(|m| self.rollback(m, now, "a model of the rollout is no longer loaded", true).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canary(advance_after: Option<u64>) -> StartRequest {
        StartRequest {
            mode: Mode::AtPublication,
            control: "a".into(),
            candidate: "b".into(),
            strategy: Strategy::Canary { stage: 0, advance_after_secs: advance_after },
            guards: Guards { min_forecasts: 10, ..Guards::default() },
        }
    }

    fn ok(p: f64, micros: u64) -> Scored {
        Scored { probability: Some(p), high: p >= 0.5, micros }
    }

    #[test]
    fn buckets_are_stable_and_spread() {
        assert_eq!(bucket("r1", "cus_1"), bucket("r1", "cus_1"));
        let mut counts = [0u32; 100];
        for i in 0..10_000 {
            counts[bucket("r1", &format!("cus_{i}")) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 50 && c < 160), "{counts:?}");
    }

    #[test]
    fn a_caller_in_the_candidate_arm_stays_there_as_the_share_grows() {
        let mut rs = Rollouts::default();
        rs.start(canary(None), 0).unwrap();
        let callers: Vec<String> = (0..2000).map(|i| format!("key_{i}")).collect();
        let at5: Vec<&String> = callers
            .iter()
            .filter(|c| rs.get(Mode::AtPublication).unwrap().arm_for(c) == Arm::Candidate)
            .collect();
        assert!((40..=160).contains(&at5.len()), "{}", at5.len());
        rs.advance(Mode::AtPublication, 10, "test").unwrap();
        let r = rs.get(Mode::AtPublication).unwrap();
        assert_eq!(r.share(), 50);
        assert!(at5.iter().all(|c| r.arm_for(c) == Arm::Candidate));
    }

    #[test]
    fn canary_advances_on_schedule_then_promotes() {
        let mut rs = Rollouts::default();
        rs.start(canary(Some(60)), 0).unwrap();
        assert_eq!(rs.tick(100), vec![], "no stage advances before min_forecasts");
        for _ in 0..10 {
            rs.get_mut(Mode::AtPublication).unwrap().record(ok(0.2, 300), ok(0.21, 300), Arm::Candidate);
        }
        assert_eq!(rs.tick(30), vec![], "the stage has not lasted long enough");
        let t = rs.tick(61);
        assert!(matches!(&t[..], [Transition::Advanced { share: 50, .. }]), "{t:?}");
        for _ in 0..10 {
            rs.get_mut(Mode::AtPublication).unwrap().record(ok(0.2, 300), ok(0.21, 300), Arm::Candidate);
        }
        assert!(matches!(&rs.tick(122)[..], [Transition::Advanced { share: 100, .. }]));
        for _ in 0..10 {
            rs.get_mut(Mode::AtPublication).unwrap().record(ok(0.2, 300), ok(0.21, 300), Arm::Candidate);
        }
        let t = rs.tick(183);
        assert!(matches!(&t[..], [Transition::Promote { candidate, .. }] if candidate == "b"), "{t:?}");
        assert!(rs.get(Mode::AtPublication).is_none());
        assert!(matches!(rs.finished[0].state, RolloutState::Promoted { at: 183 }));
    }

    #[test]
    fn each_guard_rolls_back_automatically() {
        type Feed = fn(&mut Rollout);
        let cases: [(Feed, &str); 3] = [
            (
                |r| {
                    r.record(
                        ok(0.2, 300),
                        Scored { probability: None, high: false, micros: 300 },
                        Arm::Candidate,
                    )
                },
                "error rate",
            ),
            (|r| r.record(ok(0.2, 300), ok(0.2, 400_000), Arm::Candidate), "latency"),
            (|r| r.record(ok(0.05, 300), ok(0.95, 300), Arm::Candidate), "drift"),
        ];
        for (feed, expect) in cases {
            let mut rs = Rollouts::default();
            rs.start(canary(None), 0).unwrap();
            for _ in 0..9 {
                feed(rs.get_mut(Mode::AtPublication).unwrap());
            }
            assert_eq!(rs.tick(1), vec![], "{expect}: judged before min_forecasts");
            feed(rs.get_mut(Mode::AtPublication).unwrap());
            let t = rs.tick(2);
            assert!(
                matches!(&t[..], [Transition::RolledBack { reason, .. }] if reason.contains(expect)),
                "{t:?}"
            );
            assert!(matches!(rs.finished[0].state, RolloutState::RolledBack { automatic: true, .. }));
        }
    }

    #[test]
    fn healthy_candidate_is_not_rolled_back_and_stats_add_up() {
        let mut rs = Rollouts::default();
        rs.start(canary(None), 0).unwrap();
        let r = rs.get_mut(Mode::AtPublication).unwrap();
        for i in 0..100 {
            let p = i as f64 / 100.0;
            r.record(
                ok(p, 200),
                ok((p + 0.01).min(1.0), 300),
                if i % 10 == 0 { Arm::Candidate } else { Arm::Control },
            );
        }
        assert_eq!(r.candidate_stats.served, 10);
        assert_eq!(r.control_stats.served, 90);
        assert_eq!(r.paired, 100);
        assert!(r.agreement().unwrap() > 0.97);
        assert!(r.drift_psi().unwrap() < 0.05);
        assert_eq!(r.candidate_stats.p95_ms(), Some(0.5));
        assert_eq!(rs.tick(5), vec![]);
    }

    #[test]
    fn bad_starts_are_refused() {
        let mut rs = Rollouts::default();
        rs.start(canary(None), 0).unwrap();
        assert!(matches!(rs.start(canary(None), 1), Err(RolloutError::AlreadyRunning { .. })));
        let mut same = canary(None);
        same.mode = Mode::Early;
        same.candidate = "a".into();
        assert!(matches!(rs.start(same, 1), Err(RolloutError::Invalid(_))));
        let mut share = canary(None);
        share.mode = Mode::Early;
        share.strategy = Strategy::Experiment { share: 0 };
        assert!(rs.start(share, 1).is_err());
        assert!(matches!(rs.stop(Mode::Early, 2), Err(RolloutError::NotRunning(_))));
        assert!(matches!(rs.stop(Mode::AtPublication, 2), Ok(Transition::Stopped { .. })));
    }
}
