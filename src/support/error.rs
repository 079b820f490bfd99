//! What support errors mean: what a person typed wrong is 4xx and says what to fix, a
//! ticket in the wrong state 409, a failure of the store 503 with a retry.

use crate::error::Coded;

#[derive(Debug, thiserror::Error)]
pub enum SupportError {
    /// Input to fix; the message says how, in the person's words.
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The ticket's state refuses the change (closing a closed ticket, too many open).
    #[error("{0}")]
    Conflict(String),
    #[error("the support store is unavailable; retry shortly")]
    Store(#[source] sled::Error),
    /// The blocking pool that runs store calls is gone (the server is stopping).
    #[error("the support store is unavailable; retry shortly")]
    Unavailable,
    /// A stored record cannot be read: our bug or a damaged store.
    #[error("a support record is unreadable: {0}")]
    Corrupt(String),
}

impl From<sled::Error> for SupportError {
    fn from(e: sled::Error) -> Self {
        SupportError::Store(e)
    }
}

impl Coded for SupportError {
    fn code(&self) -> &'static str {
        match self {
            SupportError::Invalid(_) => "invalid_body",
            SupportError::NotFound(_) => "not_found",
            SupportError::Conflict(_) => "transition_refused",
            SupportError::Store(_) | SupportError::Unavailable => "unavailable",
            SupportError::Corrupt(_) => "internal",
        }
    }

    fn status(&self) -> u16 {
        match self {
            SupportError::Invalid(_) => 400,
            SupportError::NotFound(_) => 404,
            SupportError::Conflict(_) => 409,
            SupportError::Store(_) | SupportError::Unavailable => 503,
            SupportError::Corrupt(_) => 500,
        }
    }

    fn message(&self) -> String {
        match self {
            SupportError::Corrupt(_) => "internal error; it has been logged".into(),
            e => e.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u32> {
        matches!(self, SupportError::Store(_) | SupportError::Unavailable).then_some(5)
    }
}
