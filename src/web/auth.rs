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

/// Whether `given` is the admin token, compared in constant time so the token can't be
/// guessed byte by byte.
pub fn is_admin_token(state: &AppState, given: &str) -> bool {
    let Some(expected) = state.admin_token.as_deref() else { return false };
    given.len() == expected.len()
        && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// What an operator session holds: a digest of the token it signed in with, so a
/// restart (a new token) ends every operator session.
pub fn operator_mark(state: &AppState) -> String {
    let token = state.admin_token.as_deref().unwrap_or_default();
    crate::accounts::hash_secret(token).iter().map(|b| format!("{b:02x}")).collect()
}

fn authorise_token(req: &HttpRequest) -> Result<Admin, ApiError> {
    let state = req.app_data::<web::Data<AppState>>().ok_or_else(|| ApiError::internal("no app state"))?;
    if state.admin_token.is_none() {
        return Err(ApiError::Unauthorized);
    }
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(given) = header {
        return if is_admin_token(state, given) { Ok(Admin) } else { Err(ApiError::Unauthorized) };
    }
    // A browser signed in at /admin/login may read operator pages. Changes still need
    // the token in a header: a cookie alone never changes anything, so no other site can
    // make the operator's browser act.
    let safe = matches!(*req.method(), actix_web::http::Method::GET | actix_web::http::Method::HEAD);
    if safe {
        use actix_session::SessionExt;
        let signed = req.get_session().get::<String>(super::session::OPERATOR).ok().flatten();
        if signed.is_some_and(|m| m == operator_mark(state)) {
            return Ok(Admin);
        }
    }
    Err(ApiError::Unauthorized)
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
