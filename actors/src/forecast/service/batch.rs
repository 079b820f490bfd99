//! Forecasts of many papers at once: one feature matrix, one model call and one pass of
//! contributions per model for the whole batch, instead of each step once per paper
//! (issue 15: about 3k forecasts/s one by one). The answers equal the one-by-one path's.

use super::*;

impl ForecastService {
    /// Forecasts stored papers by id (canonical or alias) for a caller, as
    /// [`ForecastService::forecast_routed`] does each of them: one result per id, in order,
    /// with the same per-id errors (unknown paper, too young, no model).
    pub fn forecast_batch(
        &mut self,
        ids: &[String],
        mode: Mode,
        route: &Route,
    ) -> Vec<Result<(Forecast, ForecastRecord), ForecastError>> {
        // One paper (a single forecast's path) costs no threads or batch set-up.
        if let [id] = ids {
            return vec![self.forecast_routed(id, mode, route)];
        }
        let active = match self.active(mode) {
            Ok(m) => m,
            Err(e) => return ids.iter().map(|_| Err(e.clone())).collect(),
        };
        let located: Vec<Result<(u32, Day), ForecastError>> =
            ids.iter().map(|id| self.locate(id, mode, &active)).collect();
        let rows: Vec<(u32, Day)> = located.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
        let arms = self.arms(mode, route);
        let scored: Vec<Scores> = match &arms {
            None => self.score_many(&active, &rows, mode).into_iter().map(|s| (s, None)).collect(),
            Some(a) => {
                let control = self.score_many(&a.control, &rows, mode);
                let candidate = self.score_many(&a.candidate, &rows, mode);
                control.into_iter().zip(candidate).map(|(c, k)| (c, Some(k))).collect()
            }
        };
        let mut scored = scored.into_iter();
        let at = dates::now_secs();
        located
            .into_iter()
            .map(|l| {
                let (p, _) = l?;
                let s = scored.next().expect("one score per located paper");
                self.settle(p, mode, route, &active, arms.as_ref(), s, at)
            })
            .collect()
    }

    /// [`ForecastService::score`] of many located papers: the cohort windows they need
    /// filled first, then their features, scores and contributions in one pass each.
    fn score_many(
        &mut self,
        model: &Arc<LoadedModel>,
        rows: &[(u32, Day)],
        mode: Mode,
    ) -> Vec<(Forecast, Scored)> {
        if rows.is_empty() {
            return Vec::new();
        }
        // As one by one: filling cold windows is model-wide work, not these forecasts'.
        if let Some(c) = model.forecaster.cohort {
            for range in windows(&self.corpus.day, rows, c.window_days) {
                self.fill_cohort(model, range);
            }
        }
        let started = Instant::now();
        let ctx = self.context(model);
        let papers: Vec<u32> = rows.iter().map(|r| r.0).collect();
        let raw = features::matrix(&ctx, &papers, mode);
        let f = &model.forecaster;
        let d = f.feature_names.len();
        let mut x = raw.clone();
        f.normaliser.apply(&mut x);
        let s = f.predict_std(&x);
        let t0s: Vec<Day> = rows.iter().map(|r| r.1).collect();
        let probabilities = match f.cohort {
            Some(_) => {
                let table = cohort::Table {
                    days: &self.corpus.day,
                    scores: &self.cohort_scores[&model.meta.version],
                };
                cohort::served_probabilities(f.cohort.as_ref(), &table, &t0s, &s)
            }
            None => s,
        };
        let contributions = f.contributions_std_many(&x);
        let forecasts: Vec<Forecast> = rows
            .iter()
            .zip(raw.chunks(d))
            .zip(probabilities.iter().zip(&contributions))
            .map(|((&(p, t0), raw), (&probability, c))| {
                explain(model, self.corpus.ids[p as usize].clone(), mode, t0, raw, probability, c)
            })
            .collect();
        // The rollout's latency guard reads a forecast's share of the batch.
        let micros = (started.elapsed().as_micros() / rows.len() as u128) as u64;
        let coverage = self.coverage();
        forecasts
            .into_iter()
            .zip(rows)
            .map(|(mut fc, &(p, t0))| {
                let scored = Scored {
                    probability: fc.probability.is_finite().then_some(fc.probability),
                    high: fc.label == "high",
                    micros,
                };
                fc.outcome = self.outcome_of(model, p);
                fc.data_complete_until = coverage.complete_until(t0).map(dates::format);
                (fc, scored)
            })
            .collect()
    }
}

impl ForecastService {
    /// Ids of the corpus papers submitted from `from` to `to` (both included, either
    /// open), in submission order: what a bulk forecast of a date range walks.
    pub fn paper_ids(&self, from: Option<Day>, to: Option<Day>) -> Vec<String> {
        let days = &self.corpus.day;
        let lo = from.map_or(0, |f| days.partition_point(|&d| d < f));
        let hi = to.map_or(days.len(), |t| days.partition_point(|&d| d <= t));
        self.corpus.ids[lo..hi.max(lo)].to_vec()
    }
}

/// The cohort windows of `rows`' papers, overlapping ones merged: each range is filled
/// once for the batch.
fn windows(days: &[Day], rows: &[(u32, Day)], window_days: Day) -> Vec<std::ops::Range<usize>> {
    let mut all: Vec<std::ops::Range<usize>> =
        rows.iter().map(|&(_, t0)| cohort::window(days, t0, window_days)).filter(|r| !r.is_empty()).collect();
    all.sort_by_key(|r| (r.start, r.end));
    all.dedup();
    let mut merged: Vec<std::ops::Range<usize>> = Vec::new();
    for r in all {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::rollout::{Arm, Guards, Strategy};
    use crate::forecast::task::{synthetic, TaskOptions};
    use crate::forecast::train::{self, TrainOptions};

    fn model_for(root: &Path, corpus: &Arc<Corpus>, version: &str) {
        let spec = TaskSpec::derive(corpus, &TaskOptions::default()).unwrap();
        let opts = TrainOptions { bootstrap_resamples: 20, ..TrainOptions::quick() };
        let outcome = train::train(corpus.clone(), &spec, Mode::AtPublication, version, &opts).unwrap();
        registry::save(root, version, &outcome, corpus, &opts, &spec, None).unwrap();
    }

    fn same(
        a: &Result<(Forecast, ForecastRecord), ForecastError>,
        b: &Result<(Forecast, ForecastRecord), ForecastError>,
    ) {
        match (a, b) {
            (Ok((fa, ra)), Ok((fb, rb))) => {
                let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 || (x.is_nan() && y.is_nan());
                assert!(close(fa.probability, fb.probability), "{} vs {}", fa.probability, fb.probability);
                assert_eq!(fa.label, fb.label);
                assert_eq!(fa.model_version, fb.model_version);
                assert_eq!((&fa.paper_id, &fa.as_of, fa.mode), (&fb.paper_id, &fb.as_of, fb.mode));
                assert_eq!(fa.outcome, fb.outcome);
                assert_eq!(fa.data_complete_until, fb.data_complete_until);
                assert_eq!(fa.top_features.len(), fb.top_features.len());
                for (x, y) in fa.top_features.iter().zip(&fb.top_features) {
                    assert_eq!((&x.feature, x.value, &x.shown), (&y.feature, y.value, &y.shown));
                    assert!(
                        close(x.contribution, y.contribution),
                        "{} {} vs {}",
                        x.feature,
                        x.contribution,
                        y.contribution
                    );
                }
                // (Rollout ids carry their start time: the two services' may differ.)
                assert_eq!(
                    (
                        &ra.paper_id,
                        &ra.model_version,
                        &ra.caller,
                        ra.rollout.is_some(),
                        &ra.arm,
                        &ra.shadow_version
                    ),
                    (
                        &rb.paper_id,
                        &rb.model_version,
                        &rb.caller,
                        rb.rollout.is_some(),
                        &rb.arm,
                        &rb.shadow_version
                    )
                );
                assert!(close(ra.probability, rb.probability));
                match (ra.shadow_probability, rb.shadow_probability) {
                    (Some(x), Some(y)) => assert!(close(x, y), "shadow {x} vs {y}"),
                    (x, y) => assert_eq!(x, y),
                }
            }
            (Err(x), Err(y)) => assert_eq!(x.to_string(), y.to_string()),
            (a, b) => panic!("one by one {a:?}, batched {b:?}"),
        }
    }

    #[test]
    fn batched_forecasts_equal_one_by_one_with_routing_and_errors() {
        let day = |y, m, d| dates::from_ymd(y, m, d);
        let corpus = Arc::new(synthetic::day_dated(day(1990, 1, 1), day(2001, 12, 31), 70, 5));
        let root = tempfile::tempdir().unwrap();
        model_for(root.path(), &corpus, "at_publication-a1");
        model_for(root.path(), &corpus, "at_publication-a2");
        let service = || {
            let (mut s, errors) = ForecastService::load(&[root.path()]);
            assert!(errors.is_empty(), "{errors:?}");
            s.set_corpus(corpus.clone());
            s.warm();
            s
        };
        let (mut one, mut many) = (service(), service());
        // Every 7th paper, the newest, an unknown id and a repeat.
        let mut ids: Vec<String> = corpus.ids.iter().step_by(7).cloned().collect();
        ids.insert(3, "no/such-paper".into());
        ids.push(corpus.ids[corpus.len() - 1].clone());
        ids.push(ids[10].clone());
        let route = Route { caller: Some("cust-1".into()), ..Route::default() };
        let check = |one: &mut ForecastService, many: &mut ForecastService, route: &Route| {
            let a: Vec<_> =
                ids.iter().map(|id| one.forecast_routed(id, Mode::AtPublication, route)).collect();
            let b = many.forecast_batch(&ids, Mode::AtPublication, route);
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                same(x, y);
            }
            let ok = b.iter().filter(|r| r.is_ok()).count();
            assert!(ok > 10 && ok < ids.len(), "{ok} of {}", ids.len());
            assert!(matches!(b[3], Err(ForecastError::UnknownPaper(_))));
        };
        check(&mut one, &mut many, &route);
        // No model in a mode: every id says so.
        let none = many.forecast_batch(&ids[..3], Mode::Early, &route);
        assert!(none.iter().all(|r| matches!(r, Err(ForecastError::NoModel(_)))));

        // During a rollout: both arms, each caller's arm, the same records.
        let active = one.active(Mode::AtPublication).unwrap().meta.version.clone();
        let candidate = if active == "at_publication-a1" { "at_publication-a2" } else { "at_publication-a1" };
        let spec = RolloutSpec {
            candidate: candidate.into(),
            strategy: Strategy::Experiment { share: 50 },
            guards: Guards::default(),
        };
        let id_one = one.start_rollout(spec.clone()).unwrap().id;
        let id_many = many.start_rollout(spec).unwrap().id;
        for arm in [Arm::Control, Arm::Candidate] {
            let route = |id: &str| Route {
                caller: Some("cust-1".into()),
                arm: Some((id.to_string(), arm)),
                collection: None,
            };
            let a: Vec<_> =
                ids.iter().map(|id| one.forecast_routed(id, Mode::AtPublication, &route(&id_one))).collect();
            let b = many.forecast_batch(&ids, Mode::AtPublication, &route(&id_many));
            for (x, y) in a.iter().zip(&b) {
                same(x, y);
            }
            let served = b.iter().flatten().map(|(f, r)| (f.model_version.clone(), r.arm.clone())).next();
            let expected = match arm {
                Arm::Control => (active.clone(), Some("control".to_string())),
                Arm::Candidate => (candidate.to_string(), Some("candidate".to_string())),
            };
            assert_eq!(served, Some(expected));
        }
    }

    #[test]
    fn overlapping_windows_are_merged() {
        let days: Vec<Day> = (0..100).collect();
        let w = windows(&days, &[(0, 50), (1, 55), (2, 90), (3, 0)], 10);
        assert_eq!(w, vec![40..55, 80..90]);
    }
}
