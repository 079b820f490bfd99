//! HTTP routes. Handlers validate input, send one message to an actor and shape the
//! reply; they hold no state of their own beyond the response cache.

pub mod account;
pub mod admin;
pub mod cache;
pub mod cors;
pub mod error;
pub mod forecasts;
pub mod guard;
pub mod head_limit;
pub mod newsletter;
pub mod openapi;
pub mod paper_page;
pub mod papers;
pub mod params;
pub mod search;
pub mod status;
pub mod times;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use citecast_actors::Engine;
use serde_json::json;

use crate::config::{Config, Deprecation};
use crate::tiers::{Group, Tiers};
use error::ApiError;

/// A rendered response body with its validator and the data generation it reflects.
#[derive(Clone)]
pub struct CachedBody {
    pub generation: u64,
    pub body: Bytes,
    pub etag: String,
    /// The model version that produced it (forecasts).
    pub model: Option<String>,
}

/// Shared by every worker.
pub struct AppState {
    pub engine: Engine,
    pub ready: Arc<AtomicBool>,
    /// False while the first start warms the forecast models: forecasts then answer 503
    /// `warming_up` at once instead of waiting on the warm-up.
    pub models_warm: AtomicBool,
    /// Rendered paper responses keyed by the requested id, tagged with the store
    /// generation they were rendered at (a write invalidates them all at once).
    pub paper_cache: quick_cache::sync::Cache<String, CachedBody>,
    /// Rendered forecasts keyed by `mode:id`, invalidated like the paper cache.
    pub forecast_cache: quick_cache::sync::Cache<String, CachedBody>,
    /// Authentication results by key hash, tagged with the accounts version they were
    /// read at (a revocation or tier change invalidates them all at once).
    pub key_cache: quick_cache::sync::Cache<Vec<u8>, (u64, guard::CachedAuth)>,
    /// Token for `/admin`; `None` disables the admin endpoints.
    pub admin_token: Option<String>,
    pub max_body_bytes: usize,
    pub tiers: Tiers,
    pub in_flight: AtomicUsize,
    pub max_in_flight: usize,
    /// Requests in flight per caller (customer id or `ip:<addr>`), bounded by
    /// `max_in_flight_per_caller` so one caller cannot hold every global slot.
    pub caller_slots: guard::CallerSlots,
    pub body_read_timeout: std::time::Duration,
    pub request_timeout: std::time::Duration,
    pub deprecations: Vec<Deprecation>,
    /// Origins whose pages may call `/v1` from a browser (`*`: any; empty: none).
    pub cors_origins: Vec<String>,
    pub metrics: crate::metrics::Metrics,
    /// The job scheduler (absent in tests that build the App without one).
    pub jobs: Option<actix::Addr<crate::jobs::Scheduler>>,
    /// Unix seconds the server started, for uptime.
    pub started_at: i64,
    /// The monitor (alerts, SLOs, charts); set once the server has started it.
    pub monitor: std::sync::OnceLock<actix::Addr<crate::monitor::Monitor>>,
}

impl AppState {
    pub fn new(engine: Engine, config: &Config, admin_token: Option<String>) -> AppState {
        AppState {
            engine,
            ready: Arc::new(AtomicBool::new(false)),
            models_warm: AtomicBool::new(true),
            paper_cache: quick_cache::sync::Cache::new(config.paper_cache_entries.max(1)),
            forecast_cache: quick_cache::sync::Cache::new(config.paper_cache_entries.max(1)),
            key_cache: quick_cache::sync::Cache::new(10_000),
            admin_token,
            max_body_bytes: config.max_body_bytes,
            tiers: config.tiers.clone(),
            in_flight: AtomicUsize::new(0),
            max_in_flight: config.max_in_flight,
            caller_slots: guard::CallerSlots::new(config.max_in_flight_per_caller),
            body_read_timeout: config.body_read_timeout,
            request_timeout: config.request_timeout,
            deprecations: config.deprecations.clone(),
            cors_origins: config.cors_origins.clone(),
            metrics: crate::metrics::Metrics::default(),
            jobs: None,
            started_at: citecast_actors::dates::now_secs(),
            monitor: std::sync::OnceLock::new(),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Fails with 503 `warming_up` while the first start warms the models.
    pub fn require_warm_models(&self) -> Result<(), ApiError> {
        if self.models_warm.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(ApiError::WarmingUp)
        }
    }

    /// Fails with 503 until the data and index are loaded.
    pub fn require_ready(&self) -> Result<(), ApiError> {
        if self.is_ready() {
            Ok(())
        } else {
            Err(ApiError::NotReady)
        }
    }
}

/// A route answering GET and HEAD alike: every GET route answers HEAD with the same
/// status and headers (actix-http sends no body for a HEAD request).
pub fn get_or_head() -> actix_web::Route {
    use actix_web::guard;
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// One registered route and the OpenAPI operations it serves.
pub struct Endpoint {
    pub path: &'static str,
    pub route: fn() -> actix_web::Route,
    pub ops: &'static [openapi::Op],
}

/// Every `/v1` route. Registration and the OpenAPI document both read this table.
pub fn v1_endpoints() -> Vec<Endpoint> {
    use citecast_actors::forecast::service::Forecast;
    use openapi::{date, path, q, Accepts, Body, Op, Param, CURSOR, LIMIT};
    use Group::*;
    const ID: Param = path("id", "hep-th/9711200, 9711200 or URL-encoded");
    const KEY_ID: Param = path("key_id", "key_...");
    const SEARCH_PARAMS: &[Param] = &[
        Param { required: true, ..q("q", "string", "words to search for").accepting(Accepts::Length(500)) },
        date("from", "submitted on or after YYYY-MM-DD"),
        date("to", "submitted on or before YYYY-MM-DD"),
        q("author", "string", "author key (witten_e) or name").accepting(Accepts::Length(200)),
        LIMIT,
        CURSOR,
    ];
    const AUTHOR_PARAMS: &[Param] = &[path("key", "e.g. witten_e")];
    const USAGE_PARAMS: &[Param] = &[
        date("from", "first day, YYYY-MM-DD (default: 30 days ago)"),
        date("to", "last day, YYYY-MM-DD (default: today); at most 400 days after from"),
    ];
    const FORECAST_PARAMS: &[Param] = &[
        ID,
        q("mode", "string", "at_publication (default) or early")
            .accepting(Accepts::OneOf(&["at_publication", "early"])),
    ];
    const CITATION_PARAMS: &[Param] = &[
        ID,
        q("direction", "string", "in (default) or out").accepting(Accepts::OneOf(&["in", "out"])),
        LIMIT,
        CURSOR,
    ];
    vec![
        Endpoint {
            path: "/search",
            route: || get_or_head().to(search::search),
            ops: &[Op {
                method: "GET",
                path: "/v1/search",
                summary: "BM25 search with snippets, year facets and cursor pagination",
                group: Search,
                params: SEARCH_PARAMS,
                body: None,
                success: 200,
                also: &[],
                response: Some(openapi::schema_of::<search::SearchResponse>),
            }],
        },
        Endpoint {
            path: "/authors/{key}",
            route: || get_or_head().to(papers::author),
            ops: &[Op {
                method: "GET",
                path: "/v1/authors/{key}",
                summary: "An author's papers, co-authors, citation total and h-index",
                group: Authors,
                params: AUTHOR_PARAMS,
                body: None,
                success: 200,
                also: &[],
                response: Some(openapi::schema_of::<papers::AuthorResponse>),
            }],
        },
        Endpoint {
            path: "/papers/{tail:.*}",
            route: || get_or_head().to(papers::paper_route),
            ops: &[
                Op {
                    method: "GET",
                    path: "/v1/papers/{id}",
                    summary: "A paper with citation counts (total, 6/12/24 months) and top citing papers",
                    group: Papers,
                    params: &[ID],
                    body: None,
                    success: 200,
                    also: &[],
                    response: Some(openapi::schema_of::<papers::PaperResponse>),
                },
                Op {
                    method: "GET",
                    path: "/v1/papers/{id}/forecast",
                    summary: "Forecast: probability the paper becomes highly cited, with its top features",
                    group: Forecasts,
                    params: FORECAST_PARAMS,
                    body: None,
                    success: 200,
                    also: &[422],
                    response: Some(openapi::schema_of::<Forecast>),
                },
                Op {
                    method: "GET",
                    path: "/v1/papers/{id}/citations",
                    summary: "Citing (in) or cited (out) papers in date order",
                    group: Papers,
                    params: CITATION_PARAMS,
                    body: None,
                    success: 200,
                    also: &[],
                    response: Some(openapi::schema_of::<papers::CitationsResponse>),
                },
            ],
        },
        Endpoint {
            path: "/forecasts",
            route: || web::post().to(forecasts::batch),
            ops: &[Op {
                method: "POST",
                path: "/v1/forecasts",
                summary: "Forecasts for up to your tier's batch size of stored papers",
                group: Forecasts,
                params: &[],
                body: Some(Body {
                    example: r#"{"ids": ["hep-th/9711200"], "mode": "early"}"#,
                    schema: openapi::schema_of::<forecasts::BatchBody>,
                }),
                success: 200,
                also: &[],
                response: Some(openapi::schema_of::<forecasts::BatchResponse>),
            }],
        },
        Endpoint {
            path: "/forecasts/score",
            route: || web::post().to(forecasts::score),
            ops: &[Op {
                method: "POST",
                path: "/v1/forecasts/score",
                summary: "Forecast a paper that is not stored, from its title, abstract, authors, date and references",
                group: Forecasts,
                params: &[],
                body: Some(Body {
                    example: r#"{"title": "Entropy of extremal black holes", "abstract": "We count states.",
                        "authors": ["A. Strominger", "C. Vafa"], "date": "1996-01-09", "references": ["hep-th/9510017"]}"#,
                    schema: openapi::schema_of::<forecasts::ScoreBody>,
                }),
                success: 200,
                also: &[422],
                response: Some(openapi::schema_of::<Forecast>),
            }],
        },
        Endpoint {
            path: "/account",
            route: || get_or_head().to(account::account),
            ops: &[Op {
                method: "GET",
                path: "/v1/account",
                summary: "Your customer record, tier and today's usage",
                group: Account,
                params: &[],
                body: None,
                success: 200,
                also: &[],
                response: Some(openapi::schema_of::<account::AccountResponse>),
            }],
        },
        Endpoint {
            path: "/account/usage",
            route: || get_or_head().to(account::usage),
            ops: &[Op {
                method: "GET",
                path: "/v1/account/usage",
                summary: "Daily request counts of your keys, archived days included",
                group: Account,
                params: USAGE_PARAMS,
                body: None,
                success: 200,
                also: &[],
                response: Some(openapi::schema_of::<account::UsageResponse>),
            }],
        },
        Endpoint {
            path: "/account/keys",
            route: || get_or_head().to(account::keys),
            ops: &[Op {
                method: "GET",
                path: "/v1/account/keys",
                summary: "Your API keys (never their secrets)",
                group: Account,
                params: &[],
                body: None,
                success: 200,
                also: &[],
                response: Some(openapi::schema_of::<account::KeysResponse>),
            }],
        },
        Endpoint {
            path: "/account/keys",
            route: || web::post().to(account::create_key),
            ops: &[Op {
                method: "POST",
                path: "/v1/account/keys",
                summary: "Create a named key; the secret is shown once",
                group: Account,
                params: &[],
                body: Some(Body { example: r#"{"name": "ci"}"#, schema: openapi::schema_of::<account::NewKeyBody> }),
                success: 201,
                also: &[409],
                response: Some(openapi::schema_of::<account::NewKeyResponse>),
            }],
        },
        Endpoint {
            path: "/account/keys/{key_id}",
            route: || web::delete().to(account::revoke_key),
            ops: &[Op {
                method: "DELETE",
                path: "/v1/account/keys/{key_id}",
                summary: "Revoke one of your keys",
                group: Account,
                params: &[KEY_ID],
                body: None,
                success: 200,
                also: &[],
                response: Some(openapi::schema_of::<account::RevokedKeyResponse>),
            }],
        },
        Endpoint {
            path: "/account/keys/{key_id}/rotate",
            route: || web::post().to(account::rotate_key),
            ops: &[Op {
                method: "POST",
                path: "/v1/account/keys/{key_id}/rotate",
                summary: "Replace a key: a new secret, the old key revoked",
                group: Account,
                params: &[KEY_ID],
                body: None,
                success: 201,
                also: &[409],
                response: Some(openapi::schema_of::<account::NewKeyResponse>),
            }],
        },
        Endpoint {
            path: "/openapi.json",
            route: || get_or_head().to(openapi::openapi_json),
            ops: &[Op {
                method: "GET",
                path: "/v1/openapi.json",
                summary: "This document",
                group: Meta,
                params: &[],
                body: None,
                success: 200,
                also: &[],
                response: None,
            }],
        },
        Endpoint {
            path: "/docs",
            route: || get_or_head().to(openapi::docs_page),
            ops: &[Op {
                method: "GET",
                path: "/v1/docs",
                summary: "The API documentation page: endpoints, tiers, versioning, error codes",
                group: Meta,
                params: &[],
                body: None,
                success: 200,
                also: &[],
                response: None,
            }],
        },
    ]
}

/// Registers every route; used by `serve` and by the tests, so both run the same app.
pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<AppState>) {
    let limit = state.max_body_bytes;
    let mut v1 = web::scope("/v1")
        .wrap(actix_web::middleware::from_fn(guard::guard))
        .wrap(actix_web::middleware::from_fn(guard::shed))
        .wrap(actix_web::middleware::from_fn(cors::cors));
    for e in v1_endpoints() {
        v1 = v1.route(e.path, (e.route)());
    }
    cfg.app_data(state)
        .app_data(
            web::JsonConfig::default().limit(limit).error_handler(move |e, _| error::json_error(e, limit)),
        )
        .app_data(web::PayloadConfig::new(limit));
    for r in site_routes() {
        cfg.route(r.path, (r.route)());
    }
    cfg.service(v1).default_service(web::to(no_route));
}

/// A route outside `/v1`: its path pattern, method and handler.
struct SiteRoute {
    path: &'static str,
    method: &'static str,
    route: fn() -> actix_web::Route,
}

/// Every route outside `/v1`. Registration and the `Allow` header of 405s read this table.
fn site_routes() -> Vec<SiteRoute> {
    macro_rules! r {
        ($path:literal, get, $h:path) => {
            SiteRoute { path: $path, method: "GET", route: || get_or_head().to($h) }
        };
        ($path:literal, post, $h:path) => {
            SiteRoute { path: $path, method: "POST", route: || web::post().to($h) }
        };
    }
    vec![
        r!("/healthz", get, healthz),
        r!("/metrics", get, metrics),
        r!("/readyz", get, readyz),
        r!("/admin/stats", get, admin::stats),
        r!("/admin/ingest", post, admin::ingest),
        r!("/admin/op", post, admin::op),
        r!("/admin/backup", post, admin::backup),
        r!("/admin/models", get, admin::models),
        r!("/admin/models/{version}", get, admin::model_report),
        r!("/admin/models/{version}/promote", post, admin::promote),
        r!("/admin/models/rollback/{mode}", post, admin::rollback),
        r!("/admin/audit", get, admin::audit_log),
        r!("/admin/jobs", get, admin::jobs),
        r!("/admin/dashboard", get, status::dashboard),
        r!("/status", get, status::status),
        r!("/runbooks/{name}", get, status::runbook),
        r!("/papers/{tail:.*}", get, paper_page::page),
        r!("/newsletter", get, newsletter::index),
        r!("/newsletter/{number}", get, newsletter::issue),
        r!("/admin/jobs/{name}", post, admin::set_job),
        r!("/admin/jobs/{name}/{action}", post, admin::control_job),
    ]
}

/// The methods some route answers at `path`, in a stable order (empty: no such path).
fn allowed_methods(path: &str) -> Vec<&'static str> {
    use actix_web::dev::ResourceDef;
    let mut methods: Vec<&'static str> = Vec::new();
    let site = site_routes().into_iter().map(|r| (r.path.to_string(), r.method));
    let api = v1_endpoints().into_iter().flat_map(|e| {
        // One registered path may serve several documented operations (papers/{tail}).
        let method = e.ops.first().map(|o| o.method).unwrap_or("GET");
        std::iter::once((format!("/v1{}", e.path), method))
    });
    for (pattern, method) in site.chain(api) {
        if ResourceDef::new(pattern.as_str()).is_match(path) {
            let also = (method == "GET").then_some("HEAD");
            for m in std::iter::once(method).chain(also) {
                if !methods.contains(&m) {
                    methods.push(m);
                }
            }
        }
    }
    methods.sort_unstable();
    methods
}
/// Prometheus scrape endpoint (unauthenticated and unlimited, like the health checks;
/// expose it only where scrapers can reach it).
async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let stats = state.engine.store.send(citecast_actors::actors::GetStats).await??;
    let docs = state.engine.index.send(citecast_actors::actors::IndexDocCount).await?;
    let body = state.metrics.render(&[
        ("citecast_store_size_bytes", "sled store size on disk.", stats.size_on_disk_bytes as f64),
        ("citecast_store_papers", "Papers stored.", stats.papers as f64),
        ("citecast_store_citations", "Citations stored.", stats.citations as f64),
        ("citecast_index_documents", "Documents in the search index.", docs as f64),
        ("citecast_ready", "1 once data and index are loaded.", state.is_ready() as u8 as f64),
        (
            "citecast_in_flight_requests",
            "Requests being handled under /v1.",
            state.in_flight.load(Ordering::Relaxed) as f64,
        ),
    ]);
    let mut body = body;
    if let Some(jobs) = &state.jobs {
        if let Ok(Ok(r)) = jobs.send(crate::jobs::GetJobs { history: 0 }).await {
            crate::metrics::render_jobs(&mut body, &r);
        }
    }
    if let Some(monitor) = state.monitor.get() {
        if let Ok(Ok(v)) = monitor.send(crate::monitor::GetView { chart_secs: 0 }).await {
            crate::metrics::render_monitor(&mut body, &v);
        }
    }
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.is_ready() {
        // Papers and search serve from here; forecasts once the models are warm.
        let forecasts = if state.models_warm.load(Ordering::Acquire) { "ready" } else { "warming_up" };
        HttpResponse::Ok().json(json!({ "status": "ready", "forecasts": forecasts }))
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(json!({ "status": "loading" }))
    }
}

/// 405 with `Allow` when the path exists under other methods, else 404.
async fn no_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let allowed = allowed_methods(req.path());
    let method = crate::metrics::method_label(req.method()).to_string();
    if allowed.is_empty() {
        Err(ApiError::NoRoute { method, path: req.path().to_string() })
    } else {
        Err(ApiError::MethodNotAllowed { method, path: req.path().to_string(), allowed })
    }
}
