//! What contest errors mean: a bad pick or contest definition is 4xx and says what to fix;
//! picks after the lock are 409; a store failure is 503, never the caller's fault.

use crate::error::Coded;

#[derive(Debug, thiserror::Error)]
pub enum ContestError {
    #[error("{0}")]
    Invalid(String),
    #[error("contest '{0}' not found")]
    NotFound(String),
    /// Picks after the deadline, or a lock or score out of turn.
    #[error("{0}")]
    Refused(String),
    #[error("too many changes; wait {0} seconds")]
    TooMany(u64),
    #[error("the contest store is unavailable; retry shortly")]
    Store(#[source] sled::Error),
    #[error("the contest store is unavailable; retry shortly")]
    Unavailable,
    /// The engine (store or model actor) did not answer.
    #[error("{0}")]
    Engine(String),
    #[error("a contest record is unreadable: {0}")]
    Corrupt(String),
}

impl From<sled::Error> for ContestError {
    fn from(e: sled::Error) -> Self {
        ContestError::Store(e)
    }
}

impl Coded for ContestError {
    fn code(&self) -> &'static str {
        match self {
            ContestError::Invalid(_) => "invalid_body",
            ContestError::NotFound(_) => "not_found",
            ContestError::Refused(_) => "transition_refused",
            ContestError::TooMany(_) => "rate_limited",
            ContestError::Store(_) | ContestError::Unavailable | ContestError::Engine(_) => "unavailable",
            ContestError::Corrupt(_) => "internal",
        }
    }

    fn status(&self) -> u16 {
        match self {
            ContestError::Invalid(_) => 400,
            ContestError::NotFound(_) => 404,
            ContestError::Refused(_) => 409,
            ContestError::TooMany(_) => 429,
            ContestError::Store(_) | ContestError::Unavailable | ContestError::Engine(_) => 503,
            ContestError::Corrupt(_) => 500,
        }
    }

    fn message(&self) -> String {
        match self {
            ContestError::Corrupt(_) => "internal error; it has been logged".into(),
            e => e.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u32> {
        match self {
            ContestError::TooMany(s) => Some(*s as u32),
            ContestError::Store(_) | ContestError::Unavailable | ContestError::Engine(_) => Some(5),
            _ => None,
        }
    }
}
