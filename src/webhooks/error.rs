//! What webhook errors mean to the operator: a bad URL or event name is 400, an unknown
//! endpoint or delivery 404, a store failure 503 with a retry.

use crate::error::Coded;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the webhook store is unavailable; retry shortly")]
    Store(#[source] sled::Error),
    /// The blocking pool is gone (the server is stopping).
    #[error("the webhook store is unavailable; retry shortly")]
    Unavailable,
    #[error("a webhook record is unreadable: {0}")]
    Corrupt(String),
}

impl From<sled::Error> for WebhookError {
    fn from(e: sled::Error) -> Self {
        WebhookError::Store(e)
    }
}

impl Coded for WebhookError {
    fn code(&self) -> &'static str {
        match self {
            WebhookError::Invalid(_) => "invalid_body",
            WebhookError::NotFound(_) => "not_found",
            WebhookError::Conflict(_) => "transition_refused",
            WebhookError::Store(_) | WebhookError::Unavailable => "unavailable",
            WebhookError::Corrupt(_) => "internal",
        }
    }

    fn status(&self) -> u16 {
        match self {
            WebhookError::Invalid(_) => 400,
            WebhookError::NotFound(_) => 404,
            WebhookError::Conflict(_) => 409,
            WebhookError::Store(_) | WebhookError::Unavailable => 503,
            WebhookError::Corrupt(_) => 500,
        }
    }

    fn message(&self) -> String {
        match self {
            WebhookError::Corrupt(_) => "internal error; it has been logged".into(),
            e => e.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u32> {
        matches!(self, WebhookError::Store(_) | WebhookError::Unavailable).then_some(5)
    }
}
