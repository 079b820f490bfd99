//! The model actor: owns the forecast service (loaded models, rollouts, drift) and
//! answers forecasts.

use actix::prelude::*;

use super::store::{AppendForecasts, BuildCorpora, ReadForecasts, StoreActor};

use futures::executor::block_on as block;

use crate::forecast::rollout::{Rollouts, RouteTable, Transition};
use crate::forecast::service::{
    Collections, Forecast, ForecastError, ModelSummary, NewPaper, RolloutReport, RolloutSpec, Route,
};
use crate::forecast::task::Mode;
use crate::Version;

/// Owns the loaded forecast models and the corpus snapshots their features read, one
/// per collection; the snapshots are rebuilt when the store's data generation moves.
pub struct ModelActor {
    services: Collections,
    store: Addr<StoreActor>,
    data_version: Version,
    /// Bumped when the active model of a mode changes; forecast caches compare it.
    models_version: Version,
    corpus_generation: Option<u64>,
    /// The running rollouts' shares, published for the HTTP layer's routing and caching.
    routes: RouteTable,
}

impl ModelActor {
    pub fn new(
        services: Collections,
        store: Addr<StoreActor>,
        data_version: Version,
        models_version: Version,
        routes: RouteTable,
    ) -> Self {
        routes.set(services.routes());
        ModelActor { services, store, data_version, models_version, corpus_generation: None, routes }
    }

    /// After any change to which model answers whom: new cache generation, new routes.
    fn routing_changed(&mut self) {
        self.routes.set(self.services.routes());
        self.models_version.bump();
    }

    fn refresh(&mut self) -> Result<(), ForecastError> {
        let generation = self.data_version.get();
        if self.corpus_generation == Some(generation) {
            return Ok(());
        }
        let corpora = block(self.store.send(BuildCorpora))
            .map_err(|e| ForecastError::Unavailable(format!("store unavailable: {e}")))?
            .map_err(|e| ForecastError::Unavailable(format!("cannot read the corpus: {e}")))?;
        for (name, corpus) in &corpora {
            tracing::info!(collection = %name, papers = corpus.len(), generation, "forecast corpus refreshed");
        }
        self.services.set_corpora(corpora.into_iter().map(|(n, c)| (n, std::sync::Arc::new(c))).collect());
        self.corpus_generation = Some(generation);
        Ok(())
    }
}

impl Actor for ModelActor {
    type Context = SyncContext<Self>;
}

/// Forecasts for stored papers; one result per id, in order. Each computed forecast is
/// appended to the forecast log.
pub struct ForecastPapers {
    pub ids: Vec<String>,
    pub mode: Mode,
    pub route: Route,
}

impl Message for ForecastPapers {
    type Result = Result<Vec<Result<Forecast, ForecastError>>, ForecastError>;
}

impl Handler<ForecastPapers> for ModelActor {
    type Result = Result<Vec<Result<Forecast, ForecastError>>, ForecastError>;
    fn handle(&mut self, m: ForecastPapers, _: &mut Self::Context) -> Self::Result {
        self.refresh()?;
        let only = m.route.collection.as_deref();
        // A mode no collection (of the request) serves is refused as a whole.
        match only {
            Some(c) => {
                self.services.service(c)?.active(m.mode)?;
            }
            None => {
                if !self.services.names().iter().any(|n| {
                    self.services.get(n).is_some_and(|s| s.active(m.mode).is_ok() && !s.corpus().is_empty())
                }) {
                    self.services.service(crate::store::DEFAULT_COLLECTION)?.active(m.mode)?;
                }
            }
        }
        // Ids grouped by collection, each group scored in one batch (one feature matrix,
        // one model call), the answers put back in request order.
        let mut out: Vec<Option<Result<Forecast, ForecastError>>> = m.ids.iter().map(|_| None).collect();
        let mut groups: std::collections::BTreeMap<String, (Vec<usize>, Vec<String>)> = Default::default();
        for (i, id) in m.ids.iter().enumerate() {
            match self.services.collection_of_paper(id, only) {
                Ok(c) => {
                    let g = groups.entry(c).or_default();
                    g.0.push(i);
                    g.1.push(id.clone());
                }
                Err(e) => out[i] = Some(Err(e)),
            }
        }
        let mut log = Vec::new();
        for (collection, (slots, ids)) in groups {
            let answers = match self.services.service(&collection) {
                Ok(s) => s.forecast_batch(&ids, m.mode, &m.route),
                Err(e) => ids.iter().map(|_| Err(e.clone())).collect(),
            };
            for (i, a) in slots.into_iter().zip(answers) {
                out[i] = Some(a.map(|(f, record)| {
                    log.push(record);
                    f
                }));
            }
        }
        let out = out.into_iter().map(|a| a.expect("every id answered")).collect();
        if !log.is_empty() {
            // Fire and forget: the log must never slow or fail a forecast.
            self.store.do_send(AppendForecasts(log));
        }
        Ok(out)
    }
}

/// Ids of one collection's papers submitted in a date range (both ends included, either
/// open), in submission order: the papers a bulk forecast walks.
pub struct ListPapers {
    pub collection: String,
    pub from: Option<crate::dates::Day>,
    pub to: Option<crate::dates::Day>,
}

impl Message for ListPapers {
    type Result = Result<Vec<String>, ForecastError>;
}

impl Handler<ListPapers> for ModelActor {
    type Result = Result<Vec<String>, ForecastError>;
    fn handle(&mut self, m: ListPapers, _: &mut Self::Context) -> Self::Result {
        self.refresh()?;
        Ok(self.services.service(&m.collection)?.paper_ids(m.from, m.to))
    }
}

pub struct ScoreNewPaper {
    pub paper: NewPaper,
    pub mode: Mode,
}

impl Message for ScoreNewPaper {
    type Result = Result<Forecast, ForecastError>;
}

impl Handler<ScoreNewPaper> for ModelActor {
    type Result = Result<Forecast, ForecastError>;
    fn handle(&mut self, m: ScoreNewPaper, _: &mut Self::Context) -> Self::Result {
        self.refresh()?;
        let collection =
            m.paper.collection.clone().unwrap_or_else(|| crate::store::DEFAULT_COLLECTION.into());
        self.services.service(&collection)?.score_new(&m.paper, m.mode)
    }
}

/// Refreshes the corpus snapshot and builds the active models' feature contexts.
pub struct WarmModels;

impl Message for WarmModels {
    type Result = Result<(), ForecastError>;
}

impl Handler<WarmModels> for ModelActor {
    type Result = Result<(), ForecastError>;
    fn handle(&mut self, _: WarmModels, _: &mut Self::Context) -> Self::Result {
        self.refresh()?;
        self.services.warm();
        Ok(())
    }
}

/// One bounded step of the warm-up (see [`ForecastService::warm_step`]): refreshes the
/// corpus snapshot if the data changed, then builds a context or scores `papers` papers.
/// Answers whether the models are warm; the caller sends the next step, so forecasts
/// queued meanwhile are served between steps.
pub struct WarmStep {
    pub papers: usize,
}

impl Message for WarmStep {
    type Result = Result<bool, ForecastError>;
}

impl Handler<WarmStep> for ModelActor {
    type Result = Result<bool, ForecastError>;
    fn handle(&mut self, m: WarmStep, _: &mut Self::Context) -> Self::Result {
        self.refresh()?;
        Ok(self.services.warm_step(m.papers))
    }
}

/// Keeps the model actor busy for the given time, as a long warm-up or a slow model
/// would: for drills and tests of the callers' timeouts. Nothing in the server sends it.
pub struct HoldModelActor(pub std::time::Duration);

impl Message for HoldModelActor {
    type Result = ();
}

impl Handler<HoldModelActor> for ModelActor {
    type Result = ();
    fn handle(&mut self, m: HoldModelActor, _: &mut Self::Context) {
        std::thread::sleep(m.0);
    }
}

/// Makes a loaded model version serve its mode (hot swap, no restart).
pub struct PromoteModel(pub String);

impl Message for PromoteModel {
    type Result = Result<ModelSummary, ForecastError>;
}

impl Handler<PromoteModel> for ModelActor {
    type Result = Result<ModelSummary, ForecastError>;
    fn handle(&mut self, m: PromoteModel, _: &mut Self::Context) -> Self::Result {
        let service = self.services.service_of_version(&m.0)?;
        let summary = service.promote(&m.0)?;
        service.warm();
        self.routing_changed();
        tracing::info!(version = %summary.version, "model promoted");
        Ok(summary)
    }
}

/// Puts back the model a mode served before its last promotion, in a collection (the
/// default one when `None`).
pub struct RollbackModel(pub Mode, pub Option<String>);

impl Message for RollbackModel {
    type Result = Result<ModelSummary, ForecastError>;
}

impl Handler<RollbackModel> for ModelActor {
    type Result = Result<ModelSummary, ForecastError>;
    fn handle(&mut self, m: RollbackModel, _: &mut Self::Context) -> Self::Result {
        let collection = m.1.as_deref().unwrap_or(crate::store::DEFAULT_COLLECTION);
        let summary = self.services.service(collection)?.rollback(m.0)?;
        self.routing_changed();
        tracing::warn!(version = %summary.version, "model rolled back");
        Ok(summary)
    }
}

pub struct ListModels;

impl Message for ListModels {
    type Result = Vec<ModelSummary>;
}

impl Handler<ListModels> for ModelActor {
    type Result = Vec<ModelSummary>;
    fn handle(&mut self, _: ListModels, _: &mut Self::Context) -> Self::Result {
        self.services.summaries()
    }
}

/// (version, directory) of every loaded model.
pub struct ListModelDirs;

impl Message for ListModelDirs {
    type Result = Vec<(String, std::path::PathBuf)>;
}

impl Handler<ListModelDirs> for ModelActor {
    type Result = Vec<(String, std::path::PathBuf)>;
    fn handle(&mut self, _: ListModelDirs, _: &mut Self::Context) -> Self::Result {
        self.services.model_dirs()
    }
}

/// A model's stored performance report.
pub struct GetModelReport(pub String);

impl Message for GetModelReport {
    type Result = Option<Result<crate::forecast::report::Report, String>>;
}

impl Handler<GetModelReport> for ModelActor {
    type Result = Option<Result<crate::forecast::report::Report, String>>;
    fn handle(&mut self, m: GetModelReport, _: &mut Self::Context) -> Self::Result {
        let model = self.services.model(&m.0)?;
        Some(crate::forecast::registry::load_report(&model.dir).map_err(|e| e.to_string()))
    }
}

// ---------------------------------------------------------------- rollouts

/// Starts an A/B experiment or a canary.
pub struct StartRollout(pub RolloutSpec);

impl Message for StartRollout {
    type Result = Result<crate::forecast::rollout::Rollout, ForecastError>;
}

impl Handler<StartRollout> for ModelActor {
    type Result = Result<crate::forecast::rollout::Rollout, ForecastError>;
    fn handle(&mut self, m: StartRollout, _: &mut Self::Context) -> Self::Result {
        self.refresh()?;
        let r = self.services.start_rollout(m.0)?;
        self.routing_changed();
        tracing::info!(id = %r.id, candidate = %r.candidate, share = r.share(), "rollout started");
        Ok(r)
    }
}

/// Advances (or promotes) the running rollout of a mode.
pub struct AdvanceRollout(pub Mode);
/// Ends the running rollout of a mode without a verdict.
pub struct StopRollout(pub Mode);

impl Message for AdvanceRollout {
    type Result = Result<Transition, ForecastError>;
}
impl Message for StopRollout {
    type Result = Result<Transition, ForecastError>;
}

impl Handler<AdvanceRollout> for ModelActor {
    type Result = Result<Transition, ForecastError>;
    fn handle(&mut self, m: AdvanceRollout, _: &mut Self::Context) -> Self::Result {
        let t = self.services.service_with_rollout(m.0).advance_rollout(m.0)?;
        self.routing_changed();
        tracing::info!(transition = ?t, "rollout advanced");
        Ok(t)
    }
}

impl Handler<StopRollout> for ModelActor {
    type Result = Result<Transition, ForecastError>;
    fn handle(&mut self, m: StopRollout, _: &mut Self::Context) -> Self::Result {
        let t = self.services.service_with_rollout(m.0).stop_rollout(m.0)?;
        self.routing_changed();
        Ok(t)
    }
}

/// Guard checks and scheduled stage advances (sent by the scheduler).
pub struct TickRollouts;

impl Message for TickRollouts {
    type Result = Vec<Transition>;
}

impl Handler<TickRollouts> for ModelActor {
    type Result = Vec<Transition>;
    fn handle(&mut self, _: TickRollouts, _: &mut Self::Context) -> Self::Result {
        let t = self.services.tick_rollouts(crate::dates::now_secs());
        if !t.is_empty() {
            for x in &t {
                tracing::warn!(transition = ?x, "rollout changed on its own");
            }
            self.routing_changed();
        }
        t
    }
}

pub struct ListRollouts;

impl Message for ListRollouts {
    type Result = Result<Rollouts, ForecastError>;
}

impl Handler<ListRollouts> for ModelActor {
    type Result = Result<Rollouts, ForecastError>;
    fn handle(&mut self, _: ListRollouts, _: &mut Self::Context) -> Self::Result {
        Ok(self.services.rollouts())
    }
}

/// A rollout's comparison, reading its records from the forecast log.
pub struct GetRolloutReport(pub String);

impl Message for GetRolloutReport {
    type Result = Result<Option<RolloutReport>, ForecastError>;
}

impl Handler<GetRolloutReport> for ModelActor {
    type Result = Result<Option<RolloutReport>, ForecastError>;
    fn handle(&mut self, m: GetRolloutReport, _: &mut Self::Context) -> Self::Result {
        self.refresh()?;
        let Some(r) = self.services.rollouts().find(&m.0).cloned() else { return Ok(None) };
        let end = match r.state {
            crate::forecast::rollout::RolloutState::Running => i64::MAX,
            crate::forecast::rollout::RolloutState::Promoted { at }
            | crate::forecast::rollout::RolloutState::RolledBack { at, .. }
            | crate::forecast::rollout::RolloutState::Stopped { at } => at + 1,
        };
        let read = ReadForecasts { from: r.started_at, to: end, limit: 1_000_000 };
        let records = block(self.store.send(read))
            .map_err(|e| ForecastError::Unavailable(format!("store unavailable: {e}")))?
            .map_err(|e| ForecastError::Unavailable(format!("cannot read the corpus: {e}")))?;
        Ok(self.services.service_of_rollout(&m.0).and_then(|s| s.rollout_report(&m.0, &records)))
    }
}

/// Per mode, the drift (PSI) of served scores against the serving model's validation scores.
pub struct GetDrift;

impl Message for GetDrift {
    type Result = Result<Vec<(Mode, Option<f64>)>, ForecastError>;
}

impl Handler<GetDrift> for ModelActor {
    type Result = Result<Vec<(Mode, Option<f64>)>, ForecastError>;
    fn handle(&mut self, _: GetDrift, _: &mut Self::Context) -> Self::Result {
        Ok(self.services.drift())
    }
}

/// Loads model directories that appeared since the start; (loaded versions, refusals).
pub struct RescanModels;

impl Message for RescanModels {
    type Result = Result<(Vec<String>, Vec<String>), ForecastError>;
}

impl Handler<RescanModels> for ModelActor {
    type Result = Result<(Vec<String>, Vec<String>), ForecastError>;
    fn handle(&mut self, _: RescanModels, _: &mut Self::Context) -> Self::Result {
        let (loaded, errors) = self.services.rescan();
        for e in &errors {
            tracing::error!(error = %e, "model refused; the serving ones are untouched");
        }
        if !loaded.is_empty() {
            self.routing_changed();
        }
        Ok((loaded, errors))
    }
}
