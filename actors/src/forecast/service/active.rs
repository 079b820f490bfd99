//! Which model serves each mode, kept in `models/active.json`: promotion and rollback.

use std::collections::HashMap;

use super::*;

impl ForecastService {
    /// Keeps promotions in `file` and restores the choice saved there (versions that
    /// are no longer loaded are ignored).
    pub fn persist_active_in(&mut self, file: std::path::PathBuf) {
        if let Ok(text) = std::fs::read_to_string(&file) {
            // Earlier builds saved only the mode -> version map.
            let saved = serde_json::from_str::<SavedChoice>(&text).ok().or_else(|| {
                serde_json::from_str::<HashMap<Mode, String>>(&text)
                    .ok()
                    .map(|active| SavedChoice { active, previous: HashMap::new() })
            });
            if let Some(saved) = saved {
                let find = |mode: Mode, version: &str| {
                    self.models.iter().position(|m| m.meta.version == version && m.meta.mode == mode)
                };
                for (mode, version) in &saved.active {
                    if let Some(i) = find(*mode, version) {
                        self.active.insert(*mode, i);
                    }
                }
                for (mode, version) in &saved.previous {
                    if let Some(i) = find(*mode, version) {
                        self.previous.insert(*mode, i);
                    }
                }
            }
        }
        self.state_file = Some(file);
    }

    pub(super) fn save_active(&self) -> Result<(), ForecastError> {
        let Some(file) = &self.state_file else { return Ok(()) };
        let name = |(m, &i): (&Mode, &usize)| (*m, self.models[i].meta.version.clone());
        let saved = SavedChoice {
            active: self.active.iter().map(name).collect(),
            previous: self.previous.iter().map(name).collect(),
        };
        crate::files::write_atomically(file, &serde_json::to_vec_pretty(&saved).unwrap_or_default())
            .map_err(|e| ForecastError::Io(format!("cannot save the active models: {e}")))
    }

    /// Makes `version` serve its mode; the model it replaces stays loaded for rollback.
    /// The swap is one assignment between two requests, so none is dropped. Promoting a
    /// running rollout's candidate completes that rollout.
    pub fn promote(&mut self, version: &str) -> Result<ModelSummary, ForecastError> {
        let mode = self.model(version).map(|m| m.meta.mode);
        if let Some(r) = mode.and_then(|m| self.rollouts.get(m)) {
            if r.candidate != version {
                return Err(ForecastError::Invalid(format!(
                    "rollout {} of {} is running; stop it or promote its candidate {}",
                    r.id, r.candidate, r.candidate
                )));
            }
            let mode = r.mode;
            self.rollouts.advance_to_end(mode, dates::now_secs(), "promoted by an operator")?;
            self.save_rollouts()?;
        }
        self.swap_active(version)
    }

    pub(super) fn swap_active(&mut self, version: &str) -> Result<ModelSummary, ForecastError> {
        // The live window described the model being replaced.
        if let Some(m) = self.model(version) {
            let mode = m.meta.mode;
            self.live.remove(&mode);
        }
        let i = self
            .models
            .iter()
            .position(|m| m.meta.version == version)
            .ok_or_else(|| ForecastError::Invalid(format!("no loaded model '{version}'")))?;
        let mode = self.models[i].meta.mode;
        if let Some(old) = self.active.insert(mode, i) {
            if old != i {
                self.previous.insert(mode, old);
            }
        }
        self.save_active()?;
        Ok(self.summaries().swap_remove(i))
    }

    /// Puts back the model `mode` served before the last promotion. During a rollout it
    /// ends the rollout instead: the control, which never stopped serving, stays.
    pub fn rollback(&mut self, mode: Mode) -> Result<ModelSummary, ForecastError> {
        if self.rollouts.get(mode).is_some() {
            self.rollouts.rollback(mode, dates::now_secs(), "rolled back by an operator", false)?;
            self.save_rollouts()?;
            let i = self.active[&mode];
            return Ok(self.summaries().swap_remove(i));
        }
        self.live.remove(&mode);
        let prev = self.previous.remove(&mode).ok_or_else(|| {
            ForecastError::Invalid(format!("no earlier {} model to roll back to", mode.as_str()))
        })?;
        if let Some(cur) = self.active.insert(mode, prev) {
            self.previous.insert(mode, cur);
        }
        self.save_active()?;
        Ok(self.summaries().swap_remove(prev))
    }
}
