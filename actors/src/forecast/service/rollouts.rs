//! A/B experiments and canaries between the serving model and a candidate, kept in
//! `models/rollouts.json`, and their reports.

use std::path::PathBuf;

use serde::Serialize;

use super::*;

/// How a rollout is asked for: the candidate version names the mode; the control is
/// whatever serves that mode now.
#[derive(Debug, Clone)]
pub struct RolloutSpec {
    pub candidate: String,
    pub strategy: rollout::Strategy,
    pub guards: rollout::Guards,
}

/// A rollout with the comparison read from the forecast log, AUC per arm included once
/// the papers' labels have resolved.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutReport {
    pub rollout: Rollout,
    pub share: u8,
    pub agreement: Option<f64>,
    pub mean_abs_difference: Option<f64>,
    pub drift_psi: Option<f64>,
    pub control_mean_score: Option<f64>,
    pub candidate_mean_score: Option<f64>,
    pub control_p95_ms: Option<f64>,
    pub candidate_p95_ms: Option<f64>,
    /// Forecast-log records of this rollout, distinct papers among them, and those with a label.
    pub logged_forecasts: usize,
    pub distinct_papers: usize,
    pub labelled_papers: usize,
    /// ROC-AUC of each arm on the labelled papers it served (`None` with one class only).
    pub control_served_auc: Option<f64>,
    pub candidate_served_auc: Option<f64>,
    /// ROC-AUC of both models on every labelled paper (both score every forecast).
    pub control_auc: Option<f64>,
    pub candidate_auc: Option<f64>,
    pub guard_violation: Option<String>,
}

impl ForecastService {
    /// Keeps rollouts in `file` and resumes the ones saved there; a rollout whose models
    /// are no longer loaded ends as rolled back.
    pub fn persist_rollouts_in(&mut self, file: PathBuf, now: i64) {
        if let Ok(text) = std::fs::read_to_string(&file) {
            match serde_json::from_str::<Rollouts>(&text) {
                Ok(r) => self.rollouts = r,
                Err(e) => {
                    tracing::error!(error = %e, file = %file.display(), "unreadable rollouts file ignored")
                }
            }
        }
        self.rollouts_file = Some(file);
        let loaded: Vec<String> = self.models.iter().map(|m| m.meta.version.clone()).collect();
        if !self.rollouts.forget_unloaded(&|v| loaded.iter().any(|l| l == v), now).is_empty() {
            let _ = self.save_rollouts();
        }
    }

    pub(super) fn save_rollouts(&self) -> Result<(), ForecastError> {
        let Some(file) = &self.rollouts_file else { return Ok(()) };
        crate::files::write_atomically(file, &serde_json::to_vec_pretty(&self.rollouts).unwrap_or_default())
            .map_err(|e| ForecastError::Io(format!("cannot save the rollouts: {e}")))
    }

    /// Starts an A/B experiment or a canary of `spec.candidate` against the model that
    /// serves its mode now; the candidate's features are built before it takes traffic.
    pub fn start_rollout(&mut self, spec: RolloutSpec) -> Result<Rollout, ForecastError> {
        let candidate = self
            .model(&spec.candidate)
            .cloned()
            .ok_or_else(|| ForecastError::Invalid(format!("no loaded model '{}'", spec.candidate)))?;
        let mode = candidate.meta.mode;
        let control = self.active(mode)?;
        self.context(&candidate);
        let req = StartRequest {
            mode,
            control: control.meta.version.clone(),
            candidate: spec.candidate,
            strategy: spec.strategy,
            guards: spec.guards,
        };
        let started = self.rollouts.start(req, dates::now_secs())?.clone();
        self.save_rollouts()?;
        Ok(started)
    }

    /// Advances a canary one stage (past 100 % the candidate is promoted) or promotes an
    /// experiment's candidate.
    pub fn advance_rollout(&mut self, mode: Mode) -> Result<Transition, ForecastError> {
        let t = self.rollouts.advance(mode, dates::now_secs(), "operator")?;
        self.apply(&t)?;
        self.save_rollouts()?;
        Ok(t)
    }

    pub fn stop_rollout(&mut self, mode: Mode) -> Result<Transition, ForecastError> {
        let t = self.rollouts.stop(mode, dates::now_secs())?;
        self.save_rollouts()?;
        Ok(t)
    }

    /// Guard checks and scheduled advances; also saves the rollouts' statistics.
    pub fn tick_rollouts(&mut self, now: i64) -> Vec<Transition> {
        let transitions = self.rollouts.tick(now);
        for t in &transitions {
            if let Err(e) = self.apply(t) {
                tracing::error!(error = %e, "rollout transition failed");
            }
        }
        if !self.rollouts.running.is_empty() || !transitions.is_empty() {
            if let Err(e) = self.save_rollouts() {
                tracing::error!(error = %e, "cannot save rollouts");
            }
        }
        transitions
    }

    fn apply(&mut self, t: &Transition) -> Result<(), ForecastError> {
        if let Transition::Promote { candidate, .. } = t {
            self.swap_active(candidate)?;
        }
        Ok(())
    }

    pub fn rollouts(&self) -> &Rollouts {
        &self.rollouts
    }

    /// (mode, rollout id, candidate share) of the running rollouts, for request routing.
    pub fn routes(&self) -> Vec<(Mode, String, u8)> {
        self.rollouts.running.values().map(|r| (r.mode, r.id.clone(), r.share())).collect()
    }

    /// The comparison of a rollout's arms, from its counters and its forecast-log records.
    pub fn rollout_report(&mut self, id: &str, records: &[ForecastRecord]) -> Option<RolloutReport> {
        let r = self.rollouts.find(id)?.clone();
        // Labels under the control model's task (the task both arms forecast).
        let model = self.model(&r.control).cloned().or_else(|| self.active(r.mode).ok())?;
        let ctx = self.context(&model);
        let labels = ctx.labels();
        let mut seen = std::collections::HashSet::new();
        let (mut served_c, mut served_k, mut both_c, mut both_k) = (vec![], vec![], vec![], vec![]);
        let mut labelled = 0;
        for rec in records.iter().filter(|rec| rec.rollout.as_deref() == Some(id)) {
            if !seen.insert(rec.paper_id.as_str()) {
                continue;
            }
            let Some(label) = self.corpus.find(&rec.paper_id).and_then(|p| labels.label[p as usize]) else {
                continue;
            };
            let Some(shadow) = rec.shadow_probability else { continue };
            labelled += 1;
            let candidate_served = rec.arm.as_deref() == Some(Arm::Candidate.as_str());
            let (pc, pk) =
                if candidate_served { (shadow, rec.probability) } else { (rec.probability, shadow) };
            both_c.push((pc, label));
            both_k.push((pk, label));
            if candidate_served {
                served_k.push((pk, label));
            } else {
                served_c.push((pc, label));
            }
        }
        let auc = |v: &[(f64, bool)]| {
            let pos = v.iter().filter(|x| x.1).count();
            (pos > 0 && pos < v.len()).then(|| {
                let (s, l): (Vec<f64>, Vec<bool>) = v.iter().copied().unzip();
                crate::forecast::metrics::roc_auc(&s, &l)
            })
        };
        Some(RolloutReport {
            share: r.share(),
            agreement: r.agreement(),
            mean_abs_difference: (r.paired > 0).then(|| r.abs_diff_sum / r.paired as f64),
            drift_psi: r.drift_psi(),
            control_mean_score: r.control_stats.mean_score(),
            candidate_mean_score: r.candidate_stats.mean_score(),
            control_p95_ms: r.control_stats.p95_ms(),
            candidate_p95_ms: r.candidate_stats.p95_ms(),
            logged_forecasts: records.iter().filter(|rec| rec.rollout.as_deref() == Some(id)).count(),
            distinct_papers: seen.len(),
            labelled_papers: labelled,
            control_served_auc: auc(&served_c),
            candidate_served_auc: auc(&served_k),
            control_auc: auc(&both_c),
            candidate_auc: auc(&both_k),
            guard_violation: r.guard_violation(),
            rollout: r,
        })
    }
}
