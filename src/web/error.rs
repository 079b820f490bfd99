//! The API's errors and their one mapping to HTTP. Every error body is
//! `{"error":{"code","message"}}` with a stable `code`; internals are logged, never sent.

use crate::accounts::limits::LimitKind;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::error::Coded;

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
    #[error("{path} does not answer {method}; it answers {}", allowed.join(", "))]
    MethodNotAllowed { method: String, path: String, allowed: Vec<&'static str> },
    #[error("missing or invalid admin token")]
    Unauthorized,
    /// As [`ApiError::Unauthorized`], for a browser (it asked for HTML): a readable page.
    #[error("missing or invalid admin token")]
    UnauthorizedPage,
    #[error("{0}")]
    InvalidKey(String),
    #[error("API key {prefix}... was revoked; create a new key under /v1/account/keys")]
    RevokedKey { prefix: String },
    #[error("{message}")]
    Forbidden { message: String },
    #[error("this account is suspended; its keys are refused until an operator reactivates it")]
    Suspended,
    #[error("{message}")]
    RateLimited { message: String, limit: LimitKind, tier: String, upgrade: Option<String>, retry_after: u64 },
    #[error("the server is at capacity; retry in a second")]
    Overloaded,
    #[error("you already have {limit} requests in flight, the most one caller may; retry when one finishes")]
    TooManyInFlight { limit: usize },
    #[error("the request body did not arrive within {0} s")]
    BodyTimeout(u64),
    #[error("the request took longer than {0} s")]
    Timeout(u64),
    #[error("the server is still loading its data; retry shortly")]
    NotReady,
    #[error("the forecast models are warming up after a start; retry shortly")]
    WarmingUp,
    /// A part of the server did not answer in time (busy, e.g. warming up after a large
    /// import); the call may be retried.
    #[error(
        "the {what} did not answer within {seconds} s (busy, e.g. warming up after an import); retry shortly"
    )]
    Busy { what: &'static str, seconds: u64 },
    /// A part of the server is not running (its actor stopped).
    #[error("the {what} is unavailable; retry shortly")]
    Unavailable { what: &'static str },
    /// Details go to the log; the client sees a generic message.
    #[error("internal error")]
    Internal(String),
    /// A feature's error, with the code and status it gives itself ([`Coded`]).
    #[error("{message}")]
    Domain { code: &'static str, status: u16, message: String, retry_after: Option<u32> },
}

/// The one mapping of every feature's errors: their code and status as they say, the
/// server's failures logged with their cause, an internal one's details never sent.
impl<E: Coded> From<E> for ApiError {
    fn from(e: E) -> Self {
        let (code, status) = (e.code(), e.status());
        if status >= 500 {
            tracing::error!(code, status, cause = %e, "server failure");
        }
        let message = match code {
            "internal" => "internal error".to_string(),
            // As for a body actix rejects, the message says it is about the body.
            "invalid_body" => format!("request body is not valid: {}", e.message()),
            _ => e.message(),
        };
        ApiError::Domain { code, status, message, retry_after: e.retry_after() }
    }
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
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Unauthorized | ApiError::UnauthorizedPage => "unauthorized",
            ApiError::InvalidKey(_) => "invalid_api_key",
            ApiError::RevokedKey { .. } => "revoked_api_key",
            ApiError::Forbidden { .. } => "tier_not_allowed",
            ApiError::Suspended => "account_suspended",
            ApiError::RateLimited { limit: LimitKind::PerMinute, .. } => "rate_limited",
            ApiError::RateLimited { limit: LimitKind::Daily, .. } => "quota_exceeded",
            ApiError::Overloaded => "overloaded",
            ApiError::TooManyInFlight { .. } => "too_many_in_flight",
            ApiError::BodyTimeout(_) => "body_timeout",
            ApiError::Timeout(_) => "timeout",
            ApiError::NotReady => "not_ready",
            ApiError::WarmingUp => "warming_up",
            ApiError::Busy { .. } => "busy",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Internal(_) => "internal",
            ApiError::Domain { code, .. } => code,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidParameter { .. } | ApiError::InvalidBody(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound { .. } | ApiError::NoRoute { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthorized
            | ApiError::UnauthorizedPage
            | ApiError::InvalidKey(_)
            | ApiError::RevokedKey { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } | ApiError::Suspended => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } | ApiError::TooManyInFlight { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Overloaded | ApiError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotReady
            | ApiError::WarmingUp
            | ApiError::Busy { .. }
            | ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Domain { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(detail) = self {
            tracing::error!(%detail, "internal error");
        }
        if let ApiError::UnauthorizedPage = self {
            use askama::Template;
            let page = super::page::ErrorPage {
                title: "Operator page: sign-in needed",
                message: "This page is for the operator of this citecast server. Log in with the admin \
                          token (it is in DATA_DIR/server.json, readable by the operator only, and changes \
                          at each start).",
                back: "/admin/login",
                back_label: "Operator log-in",
            };
            let body = page.render().unwrap_or_else(|_| "missing or invalid admin token".into());
            return HttpResponse::Unauthorized()
                .content_type("text/html; charset=utf-8")
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(body);
        }
        let code = self.code();
        let mut error =
            json!({ "code": code, "message": self.to_string(), "docs": format!("/v1/docs#error-{code}") });
        let mut resp = HttpResponse::build(self.status_code());
        match self {
            ApiError::InvalidParameter { name, .. } => error["parameter"] = json!(name),
            ApiError::RateLimited { limit, tier, upgrade, retry_after, .. } => {
                error["limit"] = json!(limit);
                error["tier"] = json!(tier);
                error["upgrade_tier"] = json!(upgrade);
                error["retry_after_seconds"] = json!(retry_after);
                resp.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            ApiError::NotReady
            | ApiError::WarmingUp
            | ApiError::Busy { .. }
            | ApiError::Unavailable { .. } => {
                resp.insert_header((header::RETRY_AFTER, "5"));
            }
            ApiError::MethodNotAllowed { allowed, .. } => {
                resp.insert_header((header::ALLOW, allowed.join(", ")));
            }
            ApiError::Overloaded | ApiError::Timeout(_) | ApiError::TooManyInFlight { .. } => {
                resp.insert_header((header::RETRY_AFTER, "1"));
            }
            ApiError::Domain { retry_after: Some(secs), .. } => {
                resp.insert_header((header::RETRY_AFTER, secs.to_string()));
            }
            ApiError::InvalidKey(_) | ApiError::RevokedKey { .. } => {
                resp.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"citecast\""));
            }
            _ => {}
        }
        resp.json(json!({ "error": error }))
    }
}

/// An undelivered message is the server's failure, never the caller's: 503.
impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        match e {
            actix::MailboxError::Timeout => {
                ApiError::Busy { what: "engine", seconds: ENGINE_CALL_TIMEOUT.as_secs() }
            }
            actix::MailboxError::Closed => ApiError::Unavailable { what: "engine" },
        }
    }
}

pub use crate::engine::{ask, ask_within, ENGINE_CALL_TIMEOUT};

/// Maps actix's own extractor failures (JSON bodies) into our error shape.
pub fn json_error(err: actix_web::error::JsonPayloadError, limit: usize) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::Overflow { .. } | E::OverflowKnownLength { .. } => ApiError::PayloadTooLarge { limit }.into(),
        E::ContentType => ApiError::InvalidBody("expected Content-Type: application/json".into()).into(),
        other => ApiError::InvalidBody(other.to_string()).into(),
    }
}
