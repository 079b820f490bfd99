//! What growth errors mean: only the server's own failures (the store, the blocking
//! pool); nothing a customer sends can fail here.

use crate::error::Coded;

#[derive(Debug, thiserror::Error)]
pub enum GrowthError {
    #[error("the growth store is unavailable; retry shortly")]
    Store(#[source] sled::Error),
    /// The blocking pool is gone (the server is stopping).
    #[error("the growth store is unavailable; retry shortly")]
    Unavailable,
    #[error("a growth record is unreadable: {0}")]
    Corrupt(String),
}

impl From<sled::Error> for GrowthError {
    fn from(e: sled::Error) -> Self {
        GrowthError::Store(e)
    }
}

impl Coded for GrowthError {
    fn code(&self) -> &'static str {
        match self {
            GrowthError::Store(_) | GrowthError::Unavailable => "unavailable",
            GrowthError::Corrupt(_) => "internal",
        }
    }

    fn status(&self) -> u16 {
        match self {
            GrowthError::Store(_) | GrowthError::Unavailable => 503,
            GrowthError::Corrupt(_) => 500,
        }
    }

    fn message(&self) -> String {
        match self {
            GrowthError::Corrupt(_) => "internal error; it has been logged".into(),
            e => e.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u32> {
        matches!(self, GrowthError::Store(_) | GrowthError::Unavailable).then_some(5)
    }
}
