//! What pricing-experiment errors mean to the operator: a bad definition is 400 naming
//! the field, an unknown experiment 404, a second running experiment 409, a store
//! failure 503 with a retry.

use crate::error::Coded;

#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    #[error("{0}")]
    Invalid(String),
    #[error("experiment '{0}' not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the pricing store is unavailable; retry shortly")]
    Store(#[source] sled::Error),
    /// The blocking pool is gone (the server is stopping).
    #[error("the pricing store is unavailable; retry shortly")]
    Unavailable,
    #[error("a pricing record is unreadable: {0}")]
    Corrupt(String),
}

impl From<sled::Error> for PricingError {
    fn from(e: sled::Error) -> Self {
        PricingError::Store(e)
    }
}

impl Coded for PricingError {
    fn code(&self) -> &'static str {
        match self {
            PricingError::Invalid(_) => "invalid_body",
            PricingError::NotFound(_) => "not_found",
            PricingError::Conflict(_) => "transition_refused",
            PricingError::Store(_) | PricingError::Unavailable => "unavailable",
            PricingError::Corrupt(_) => "internal",
        }
    }

    fn status(&self) -> u16 {
        match self {
            PricingError::Invalid(_) => 400,
            PricingError::NotFound(_) => 404,
            PricingError::Conflict(_) => 409,
            PricingError::Store(_) | PricingError::Unavailable => 503,
            PricingError::Corrupt(_) => 500,
        }
    }

    fn message(&self) -> String {
        match self {
            PricingError::Corrupt(_) => "internal error; it has been logged".into(),
            e => e.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u32> {
        matches!(self, PricingError::Store(_) | PricingError::Unavailable).then_some(5)
    }
}
