//! `POST /admin/ingest`: the operator imports files already on the server's machine.

use std::path::PathBuf;

use actix_web::{web, HttpRequest, HttpResponse};
use citecast_actors::actors::IngestFiles;
use citecast_actors::ingest::SourceFormat;
use citecast_actors::store::check_collection_name;
use serde::Deserialize;
use serde_json::json;

use crate::web::auth::{audit, Admin};
use crate::web::error::ApiError;
use crate::web::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestBody {
    /// Absolute paths on the server's machine.
    paths: Vec<PathBuf>,
    /// Cap on references per paper for this import (default: the server's setting).
    #[serde(default)]
    max_refs_per_paper: Option<usize>,
    /// How paper records are read (default `auto`).
    #[serde(default)]
    format: SourceFormat,
    /// The collection the papers go to (default: the format's own).
    #[serde(default)]
    collection: Option<String>,
}

pub async fn ingest(
    _: Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<IngestBody>,
) -> Result<HttpResponse, ApiError> {
    let IngestBody { paths, max_refs_per_paper, format, collection } = body.into_inner();
    if let Some(name) = &collection {
        check_collection_name(name).map_err(|e| ApiError::InvalidBody(format!("'collection': {e}")))?;
    }
    if max_refs_per_paper == Some(0) {
        return Err(ApiError::InvalidBody("'max_refs_per_paper' must be at least 1".into()));
    }
    if paths.is_empty() {
        return Err(ApiError::InvalidBody("'paths' must list at least one file".into()));
    }
    for p in &paths {
        if !p.is_absolute() || !p.is_file() {
            return Err(ApiError::InvalidBody(format!(
                "'{}' is not an absolute path to a file",
                p.display()
            )));
        }
    }
    let target = paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    let msg = IngestFiles { paths, progress: None, max_refs_per_paper, format, collection };
    let reports = state.engine.ingest.send(msg).await??;
    let new: u64 = reports.iter().map(|r| r.new_records()).sum();
    audit(&state, &req, "data.ingest", target, None, &json!({ "new_records": new })).await;
    if new > 0 {
        // Warm the models on the new data step by step; forecasts are served meanwhile.
        let engine = state.engine.clone();
        actix_web::rt::spawn(async move { crate::forecasts::warm_models(&engine).await });
    }
    crate::engine::release_freed_memory();
    Ok(HttpResponse::Ok().json(json!({ "reports": reports })))
}
