//! HTTP routes. Handlers validate input, send one message to an actor and shape the
//! reply; they hold no state of their own beyond the response cache.

pub mod admin;
pub mod error;
pub mod papers;
pub mod params;
pub mod search;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use citecast_actors::Engine;
use serde_json::json;

use crate::config::Config;
use error::ApiError;

/// Shared by every worker.
pub struct AppState {
    pub engine: Engine,
    pub ready: Arc<AtomicBool>,
    /// Rendered paper responses keyed by the requested id, tagged with the store
    /// generation they were rendered at (a write invalidates them all at once).
    pub paper_cache: quick_cache::sync::Cache<String, (u64, Bytes)>,
    /// Token for `/admin`; `None` disables the admin endpoints.
    pub admin_token: Option<String>,
    pub max_body_bytes: usize,
}

impl AppState {
    pub fn new(engine: Engine, config: &Config, admin_token: Option<String>) -> AppState {
        AppState {
            engine,
            ready: Arc::new(AtomicBool::new(false)),
            paper_cache: quick_cache::sync::Cache::new(config.paper_cache_entries.max(1)),
            admin_token,
            max_body_bytes: config.max_body_bytes,
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
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

/// Registers every route; used by `serve` and by the tests, so both run the same app.
pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<AppState>) {
    let limit = state.max_body_bytes;
    cfg.app_data(state)
        .app_data(
            web::JsonConfig::default().limit(limit).error_handler(move |e, _| error::json_error(e, limit)),
        )
        .app_data(web::PayloadConfig::new(limit))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/v1/search", web::get().to(search::search))
        .route("/v1/authors/{key}", web::get().to(papers::author))
        .route("/v1/papers/{tail:.*}", web::get().to(papers::paper_route))
        .route("/admin/stats", web::get().to(admin::stats))
        .route("/admin/ingest", web::post().to(admin::ingest))
        .default_service(web::to(no_route));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.is_ready() {
        HttpResponse::Ok().json(json!({ "status": "ready" }))
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(json!({ "status": "loading" }))
    }
}

async fn no_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NoRoute { method: req.method().to_string(), path: req.path().to_string() })
}
