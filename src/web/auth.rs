//! Who is calling: the operator's admin token (API keys are checked in [`super::guard`]).

use actix_web::{web, HttpRequest};

use super::error::ApiError;
use super::AppState;

/// Proof that the request carried the admin token. As an extractor listed before the
/// body it rejects unauthenticated requests before their body is read.
pub struct Admin;

impl actix_web::FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Admin, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(authorise(req))
    }
}

fn authorise(req: &HttpRequest) -> Result<Admin, ApiError> {
    authorise_token(req).map_err(|e| {
        // A person in a browser gets a page saying what to do, a program the JSON error.
        let wants_html = req
            .headers()
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        match e {
            ApiError::Unauthorized if wants_html => ApiError::UnauthorizedPage,
            other => other,
        }
    })
}

fn authorise_token(req: &HttpRequest) -> Result<Admin, ApiError> {
    // Browsers can't set headers on a link: pages also accept ?token=. Other parameters
    // (hours=, format=) are the page's to check, not a reason to ignore the token.
    let from_query = serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "token").map(|(_, v)| v));
    let state = req.app_data::<web::Data<AppState>>().ok_or_else(|| ApiError::internal("no app state"))?;
    let expected = state.admin_token.as_deref().ok_or(ApiError::Unauthorized)?;
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string)
        .or(from_query)
        .ok_or(ApiError::Unauthorized)?;
    // Compare in constant time so the token can't be guessed byte by byte.
    let same = given.len() == expected.len()
        && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if same {
        Ok(Admin)
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// The audit log's "who" for an admin request: the CLI names its user in a header.
pub fn actor_of(req: &HttpRequest) -> String {
    let named = req
        .headers()
        .get("x-citecast-actor")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 80 && v.chars().all(|c| c.is_ascii_graphic()));
    match named {
        Some(n) => format!("admin-api/{n}"),
        None => "admin-api".into(),
    }
}

/// Appends an audit entry for an action that does not go through [`crate::ops::operator`].
pub async fn audit(
    state: &AppState,
    req: &HttpRequest,
    action: &str,
    target: String,
    before: Option<&serde_json::Value>,
    after: &serde_json::Value,
) {
    let entry = citecast_actors::journal::AuditEntry {
        seq: 0,
        at: citecast_actors::dates::now_secs(),
        actor: actor_of(req),
        action: action.into(),
        target,
        before: before.map(|b| b.to_string()),
        after: Some(after.to_string()),
    };
    match state.engine.store.send(citecast_actors::actors::AppendAudit(entry)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, action, "audit entry not written"),
        Err(e) => tracing::error!(error = %e, action, "audit entry not written"),
    }
}
