//! Drift: the scores served lately against the serving model's validation scores.

use std::sync::Arc;

use super::*;

impl ForecastService {
    /// The model's score histogram over (a sample of) the validation papers.
    pub(super) fn reference_of(&mut self, model: &Arc<LoadedModel>) -> Option<[u64; rollout::SCORE_BINS]> {
        if let Some(r) = self.reference.get(&model.meta.version) {
            return Some(*r);
        }
        if self.corpus.is_empty() {
            return None;
        }
        // The labels and validation period of the model's own task.
        let ctx = self.context(model);
        let papers =
            ctx.labels().papers_in(&self.corpus, ctx.spec(), crate::forecast::task::Split::Validation);
        if papers.is_empty() {
            return None;
        }
        let step = papers.len().div_ceil(REFERENCE_PAPERS).max(1);
        // The validation papers' raw scores are in the cohort table (one batched fill).
        let (first, last) = (papers[0] as usize, papers[papers.len() - 1] as usize);
        self.fill_cohort(model, first..last + 1);
        let mut bins = [0u64; rollout::SCORE_BINS];
        for &p in papers.iter().step_by(step) {
            let raw = self.cohort_scores[&model.meta.version][p as usize] as f64;
            let prob = self.served_probability(model, self.corpus.day[p as usize], raw);
            if prob.is_finite() {
                bins[rollout::score_bin(prob)] += 1;
            }
        }
        self.reference.insert(model.meta.version.clone(), bins);
        Some(bins)
    }

    pub(super) fn record_live(&mut self, mode: Mode, probability: f64) {
        let window = self.live.entry(mode).or_default();
        window.push_back(rollout::score_bin(probability) as u8);
        if window.len() > DRIFT_WINDOW {
            window.pop_front();
        }
    }

    /// Per mode, the PSI of the scores served lately against the serving model's scores on
    /// its validation papers (`None` until enough forecasts were served).
    pub fn drift(&mut self) -> Vec<(Mode, Option<f64>)> {
        let modes: Vec<Mode> = self.active.keys().copied().collect();
        modes
            .into_iter()
            .map(|mode| {
                let live = self.live.get(&mode).filter(|w| w.len() >= DRIFT_MIN).map(|w| {
                    let mut bins = [0u64; rollout::SCORE_BINS];
                    for &b in w {
                        bins[b as usize] += 1;
                    }
                    bins
                });
                let psi = match (live, self.active(mode).ok()) {
                    (Some(live), Some(model)) => {
                        self.reference_of(&model).and_then(|reference| rollout::psi(&reference, &live))
                    }
                    _ => None,
                };
                (mode, psi)
            })
            .collect()
    }
}
