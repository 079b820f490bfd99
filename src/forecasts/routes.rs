//! Forecast endpoints: one paper, a batch, and a paper that is not stored.

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use bytes::Bytes;
use citecast_actors::actors::{ForecastPapers, ListPapers, ScoreNewPaper};
use citecast_actors::forecast::rollout::Arm;
use citecast_actors::forecast::service::{NewPaper, Route};
use citecast_actors::forecast::task::Mode;
use futures::StreamExt;
use serde::Deserialize;

use crate::web::error::ApiError;
use crate::web::guard::Principal;
use crate::web::params::Params;
use crate::web::{cache, AppState, CachedBody, Endpoint, SiteRoute};

const MAX_AGE_SECS: u32 = 300;

/// The batch and score routes (one stored paper's forecast is served under its path,
/// see [`crate::papers::routes::endpoints`]).
pub fn endpoints() -> Vec<Endpoint> {
    use crate::accounts::tiers::Group::*;
    use crate::web::openapi::{q, Accepts, Param};
    use crate::web::openapi::{schema_of, Body, Op};
    use citecast_actors::forecast::service::Forecast;
    const BULK_PARAMS: &[Param] = &[
        q("mode", "string", "at_publication (default) or early; a line's own mode wins")
            .accepting(Accepts::OneOf(&["at_publication", "early"])),
        q(
            "collection",
            "string",
            "only this collection's papers; with an empty body, all of them (default: default)",
        ),
        q("from", "string", "with an empty body: papers submitted on or after this day")
            .accepting(Accepts::Date),
        q("to", "string", "with an empty body: papers submitted on or before this day")
            .accepting(Accepts::Date),
    ];
    vec![
    Endpoint {
        path: "/forecasts",
        route: || web::post().to(batch),
        ops: &[Op {
            method: "POST",
            path: "/v1/forecasts",
            summary: "Forecasts for up to your tier's batch size of stored papers",
            group: Forecasts,
            params: &[],
            body: Some(Body {
                example: r#"{"ids": ["hep-th/9711200"], "mode": "early"}"#,
                schema: schema_of::<BatchBody>,
            }),
            success: 200,
            also: &[],
            response: Some(schema_of::<BatchResponse>),
        }],
    },
    Endpoint {
        path: "/forecasts/bulk",
        route: || web::post().to(bulk),
        ops: &[Op {
            method: "POST",
            path: "/v1/forecasts/bulk",
            summary: "Forecasts of many stored papers, streamed as JSON Lines (application/x-ndjson): \
                a body of JSON Lines {\"id\": ..., \"mode\": ...}, or an empty body and collection=, from=, to= \
                for a whole collection or submission date range; one line per paper, a forecast or an error \
                with its code and input line",
            group: Forecasts,
            params: BULK_PARAMS,
            body: Some(Body {
                example: r#"{"id": "hep-th/9711200"}"#,
                schema: schema_of::<super::bulk::BulkLine>,
            }),
            success: 200,
            also: &[],
            response: None,
        }],
    },
    Endpoint {
        path: "/forecasts/score",
        route: || web::post().to(score),
        ops: &[Op {
            method: "POST",
            path: "/v1/forecasts/score",
            summary: "Forecast a paper that is not stored, from its title, abstract, authors, date and references",
            group: Forecasts,
            params: &[],
            body: Some(Body {
                example: r#"{"title": "Entropy of extremal black holes", "abstract": "We count states.",
                    "authors": ["A. Strominger", "C. Vafa"], "date": "1996-01-09", "references": ["hep-th/9510017"]}"#,
                schema: schema_of::<ScoreBody>,
            }),
            success: 200,
            also: &[422],
            response: Some(schema_of::<Forecast>),
        }],
    },
    ]
}

/// The operator's model pages and actions.
pub fn site_routes() -> Vec<SiteRoute> {
    use super::admin;
    vec![
        SiteRoute::get("/admin/models", || crate::web::get_or_head().to(admin::models)),
        SiteRoute::get("/admin/models/{version}", || crate::web::get_or_head().to(admin::model_report)),
        SiteRoute::post("/admin/models/{version}/promote", || web::post().to(admin::promote)),
        SiteRoute::post("/admin/models/rollback/{mode}", || web::post().to(admin::rollback)),
        SiteRoute::post("/admin/train", || web::post().to(admin::train)),
        SiteRoute::post("/admin/evaluate", || web::post().to(admin::evaluate)),
    ]
}

fn mode_of(value: Option<&str>, name: &str) -> Result<Mode, ApiError> {
    let v = value.unwrap_or("at_publication");
    Mode::parse(v)
        .ok_or_else(|| ApiError::param(name, format!("'{name}' must be at_publication or early, got '{v}'")))
}

/// Who the forecast is for (a customer sees one arm of a rollout across all its keys)
/// and, while a rollout of `mode` runs, the arm that caller is in.
fn route_of(req: &HttpRequest, state: &AppState, mode: Mode) -> Route {
    let caller =
        req.extensions().get::<Principal>().map(|p| p.customer_id.clone().unwrap_or_else(|| p.id.clone()));
    let arm = caller.as_deref().and_then(|c| state.engine.routes.arm(mode, c));
    Route { caller, arm, collection: None }
}

/// `GET /v1/papers/{id}/forecast?mode=`.
pub async fn paper_forecast(
    req: &HttpRequest,
    state: &AppState,
    id: String,
) -> Result<HttpResponse, ApiError> {
    state.require_warm_models()?;
    let p = Params::parse(req.query_string(), &["mode", "collection"])?;
    let mode = mode_of(p.get("mode"), "mode")?;
    let collection = p.get("collection").map(str::to_string);
    // The active model's generation is in the key: a promotion or rollback makes every
    // cached forecast of the old model unreachable at once.
    // So is the caller's rollout arm: the two arms' forecasts of one paper differ.
    let route = Route { collection: collection.clone(), ..route_of(req, state, mode) };
    let arm = match &route.arm {
        Some((_, Arm::Candidate)) => "k",
        Some((_, Arm::Control)) => "c",
        None => "-",
    };
    let key = format!(
        "{}:{}:{arm}:{}:{id}",
        mode.as_str(),
        state.engine.models_version.get(),
        collection.as_deref().unwrap_or("*")
    );
    let generation = state.engine.data_version.get();
    if let Some(hit) = state.forecast_cache.get(&key) {
        if hit.generation == generation {
            state.metrics.cache(true);
            if let Some(model) = hit.model.as_deref() {
                state.metrics.forecast_served(model);
            }
            return Ok(cache::json(req, hit.body, &hit.etag, MAX_AGE_SECS));
        }
    }
    state.metrics.cache(false);
    let mut results = state.engine.model.send(ForecastPapers { ids: vec![id], mode, route }).await??;
    let forecast = results.pop().ok_or_else(|| ApiError::internal("no forecast returned"))??;
    state.metrics.forecast_served(&forecast.model_version);
    let model = forecast.model_version.clone();
    let body = Bytes::from(serde_json::to_vec(&forecast.for_people()).map_err(ApiError::internal)?);
    let etag = cache::etag_of(&body);
    let entry = CachedBody { generation, body: body.clone(), etag: etag.clone(), model: Some(model) };
    state.forecast_cache.insert(key, entry);
    Ok(cache::json(req, body, &etag, MAX_AGE_SECS))
}

/// `POST /v1/forecasts` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// Paper ids, at most your tier's batch size.
    ids: Vec<String>,
    /// `at_publication` (default) or `early`.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^(at_publication|early)$")]
    mode: Option<String>,
    /// Only papers of this collection (`GET /v1/collections`); ids of other
    /// collections are answered `not_found`. Default: whichever collection holds each id.
    #[serde(default)]
    collection: Option<String>,
}

/// `POST /v1/forecasts`: up to the tier's batch size of ids.
pub async fn batch(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<BatchBody>,
) -> Result<HttpResponse, ApiError> {
    state.require_warm_models()?;
    let body = body.into_inner();
    let mode = mode_of(body.mode.as_deref(), "mode").map_err(|e| ApiError::InvalidBody(e.to_string()))?;
    let tier = caller_tier(&req, &state);
    let max = tier.as_ref().map(|t| t.max_batch).unwrap_or(0);
    if body.ids.is_empty() {
        return Err(ApiError::InvalidBody("'ids' must list at least one paper id".into()));
    }
    if body.ids.len() > max {
        let customer = req.extensions().get::<Principal>().and_then(|p| p.customer_id.clone());
        crate::growth::routes::note_batch_refused(&state, customer.as_deref(), body.ids.len());
        let name = tier.map(|t| t.name).unwrap_or_default();
        return Err(ApiError::InvalidBody(format!(
            "'ids' lists {} papers; the {name} tier allows {max} per request",
            body.ids.len()
        )));
    }
    // The checks a path id gets; a bad id is named by position, never echoed back.
    let mut ids = Vec::with_capacity(body.ids.len());
    for (i, id) in body.ids.iter().enumerate() {
        ids.push(crate::papers::clean_id(id).map_err(|_| {
            ApiError::InvalidBody(format!(
                "'ids[{i}]' is not a paper id: ids are 1 to 128 characters without control characters"
            ))
        })?);
    }
    let route = Route { collection: body.collection, ..route_of(&req, &state, mode) };
    let results = state.engine.model.send(ForecastPapers { ids: ids.clone(), mode, route }).await??;
    let mut forecasts = Vec::new();
    let mut errors = Vec::new();
    for (id, r) in ids.into_iter().zip(results) {
        match r {
            Ok(f) => {
                state.metrics.forecast_served(&f.model_version);
                forecasts.push(f.for_people())
            }
            Err(e) => {
                let api = ApiError::from(e);
                errors.push(BatchError { id, code: api.code().to_string(), message: api.to_string() });
            }
        }
    }
    Ok(HttpResponse::Ok().json(BatchResponse { mode, forecasts, errors }))
}

/// The tier of the caller's key (none for an anonymous caller).
fn caller_tier(req: &HttpRequest, state: &AppState) -> Option<crate::accounts::tiers::Tier> {
    req.extensions().get::<Principal>().and_then(|p| state.tiers.get(&p.tier).cloned())
}

/// `POST /v1/forecasts/bulk`: JSON Lines of ids in (or an empty body and a collection or
/// date range), JSON Lines out, scored in chunks of [`bulk::CHUNK`] through the batch path
/// and streamed as each chunk is done. A bad line gets an error line; nothing aborts the
/// stream once it started. The body is bounded by the server's body limit.
pub async fn bulk(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    use super::bulk;
    state.require_warm_models()?;
    let p = Params::parse(req.query_string(), &["mode", "collection", "from", "to"])?;
    let mode = mode_of(p.get("mode"), "mode")?;
    let collection = p.get("collection").map(str::to_string);
    let (from, to) = (p.date("from")?, p.date("to")?);
    if let (Some(f), Some(t)) = (from, to) {
        if t < f {
            return Err(ApiError::param("to", "'to' must not be before 'from'"));
        }
    }
    let tier = caller_tier(&req, &state);
    if tier.as_ref().map(|t| t.max_batch).unwrap_or(0) == 0 {
        let name = tier.map(|t| t.name).unwrap_or_default();
        return Err(ApiError::InvalidBody(format!("the {name} tier allows no batch forecasts")));
    }
    let items: Vec<bulk::Item> = if bulk::is_blank(&body) {
        if collection.is_none() && from.is_none() && to.is_none() {
            return Err(ApiError::InvalidBody(
                "send JSON Lines of {\"id\": ...}, or an empty body with collection=, from= or to=".into(),
            ));
        }
        let which = collection.clone().unwrap_or_else(|| citecast_actors::store::DEFAULT_COLLECTION.into());
        let ids = state.engine.model.send(ListPapers { collection: which, from, to }).await??;
        ids.into_iter().map(|id| bulk::Item { line: None, id: Ok(id), mode: None }).collect()
    } else {
        if let Some(name) = [("from", from), ("to", to)].iter().find(|(_, d)| d.is_some()).map(|(n, _)| *n) {
            return Err(ApiError::param(
                name,
                format!("'{name}' selects papers for an empty body; with JSON Lines, list the ids"),
            ));
        }
        bulk::parse_lines(&body)
    };
    let route = Route { collection, ..route_of(&req, &state, mode) };
    let chunks: Vec<Vec<bulk::Item>> = items.chunks(bulk::CHUNK).map(<[bulk::Item]>::to_vec).collect();
    let stream = futures::stream::iter(chunks).then(move |chunk| {
        let (state, route) = (state.clone(), route.clone());
        async move {
            let groups = bulk::groups(&chunk, mode);
            let mut answers = Vec::with_capacity(groups.len());
            for g in &groups {
                let ask = ForecastPapers { ids: g.ids.clone(), mode: g.mode, route: route.clone() };
                answers.push(match state.engine.model.send(ask).await {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::error!(error = %e, "model actor unavailable during a bulk forecast");
                        Err(citecast_actors::forecast::service::ForecastError::Unavailable(e.to_string()))
                    }
                });
            }
            let lines = bulk::render(&chunk, groups, answers, &mut |f| {
                state.metrics.forecast_served(&f.model_version)
            });
            Ok::<_, actix_web::Error>(Bytes::from(lines))
        }
    });
    Ok(HttpResponse::Ok().content_type("application/x-ndjson").streaming(stream))
}

/// `POST /v1/forecasts` (its OpenAPI schema is derived from this type).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct BatchResponse {
    pub mode: Mode,
    /// In the order asked, without the ids that failed.
    pub forecasts: Vec<citecast_actors::forecast::service::Forecast>,
    pub errors: Vec<BatchError>,
}

/// An id of a batch that got no forecast, and why.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct BatchError {
    pub id: String,
    pub code: String,
    pub message: String,
}

/// `POST /v1/forecasts/score` body: a paper that is not stored.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreBody {
    #[schema(min_length = 1, max_length = 1000)]
    title: String,
    #[serde(default, rename = "abstract")]
    #[schema(max_length = 20000)]
    abstract_text: String,
    /// Author names as printed, e.g. `E. Witten`.
    #[schema(min_items = 1, max_items = 100)]
    authors: Vec<String>,
    /// Submission date, `YYYY-MM-DD` (a time after it is accepted and ignored), from
    /// 1800 to a year ahead.
    #[schema(format = Date)]
    date: String,
    /// Ids of cited papers, each one stored in the corpus.
    #[serde(default)]
    #[schema(max_items = 1000)]
    references: Vec<String>,
    /// Only `at_publication` (the default): a paper that is not stored has no citations.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^at_publication$")]
    mode: Option<String>,
    /// The collection whose papers and model score it (default: `default`); see
    /// `GET /v1/collections`.
    #[serde(default)]
    collection: Option<String>,
}

/// `POST /v1/forecasts/score`: a paper that is not stored.
pub async fn score(state: web::Data<AppState>, body: web::Json<ScoreBody>) -> Result<HttpResponse, ApiError> {
    state.require_warm_models()?;
    let b = body.into_inner();
    let mode = mode_of(b.mode.as_deref(), "mode").map_err(|e| ApiError::InvalidBody(e.to_string()))?;
    let paper = NewPaper {
        title: b.title,
        abstract_text: b.abstract_text,
        authors: b.authors,
        date: b.date,
        references: b.references,
        collection: b.collection,
    };
    let forecast = state.engine.model.send(ScoreNewPaper { paper, mode }).await??;
    state.metrics.forecast_served(&forecast.model_version);
    Ok(HttpResponse::Ok().json(forecast.for_people()))
}
