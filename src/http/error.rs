//! The API's errors and their one mapping to HTTP. Every error body is
//! `{"error":{"code","message"}}` with a stable `code`; internals are logged, never sent.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    InvalidParameter { name: String, message: String },
    #[error("request body is not valid: {0}")]
    InvalidBody(String),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{what} '{id}' not found")]
    NotFound { what: &'static str, id: String },
    #[error("no such endpoint: {method} {path}")]
    NoRoute { method: String, path: String },
    #[error("missing or invalid admin token")]
    Unauthorized,
    #[error("the server is still loading its data; retry shortly")]
    NotReady,
    /// Details go to the log; the client sees a generic message.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn param(name: &str, message: impl Into<String>) -> Self {
        ApiError::InvalidParameter { name: name.to_string(), message: message.into() }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidParameter { .. } => "invalid_parameter",
            ApiError::InvalidBody(_) => "invalid_body",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::NotFound { .. } => "not_found",
            ApiError::NoRoute { .. } => "no_route",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotReady => "not_ready",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidParameter { .. } | ApiError::InvalidBody(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound { .. } | ApiError::NoRoute { .. } => StatusCode::NOT_FOUND,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(detail) = self {
            tracing::error!(%detail, "internal error");
        }
        let mut error = json!({ "code": self.code(), "message": self.to_string() });
        if let ApiError::InvalidParameter { name, .. } = self {
            error["parameter"] = json!(name);
        }
        let mut resp = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::NotReady) {
            resp.insert_header((header::RETRY_AFTER, "5"));
        }
        resp.json(json!({ "error": error }))
    }
}

impl From<citecast_actors::store::StoreError> for ApiError {
    fn from(e: citecast_actors::store::StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl From<citecast_actors::index::IndexError> for ApiError {
    fn from(e: citecast_actors::index::IndexError) -> Self {
        ApiError::internal(e)
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        ApiError::internal(format!("engine unavailable: {e}"))
    }
}

/// Maps actix's own extractor failures (JSON bodies) into our error shape.
pub fn json_error(err: actix_web::error::JsonPayloadError, limit: usize) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::Overflow { .. } | E::OverflowKnownLength { .. } => ApiError::PayloadTooLarge { limit }.into(),
        E::ContentType => ApiError::InvalidBody("expected Content-Type: application/json".into()).into(),
        other => ApiError::InvalidBody(other.to_string()).into(),
    }
}
