//! What community errors mean: a bad comment or event is 4xx and says what to fix, a
//! banned or out-of-time edit 403, a store failure 503.

use crate::error::Coded;

#[derive(Debug, thiserror::Error)]
pub enum CommunityError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("the community store is unavailable; retry shortly")]
    Store(#[source] sled::Error),
    #[error("the community store is unavailable; retry shortly")]
    Unavailable,
    #[error("a community record is unreadable: {0}")]
    Corrupt(String),
}

impl From<sled::Error> for CommunityError {
    fn from(e: sled::Error) -> Self {
        CommunityError::Store(e)
    }
}

impl Coded for CommunityError {
    fn code(&self) -> &'static str {
        match self {
            CommunityError::Invalid(_) => "invalid_body",
            CommunityError::Forbidden(_) => "unauthorized",
            CommunityError::NotFound(_) => "not_found",
            CommunityError::Store(_) | CommunityError::Unavailable => "unavailable",
            CommunityError::Corrupt(_) => "internal",
        }
    }

    fn status(&self) -> u16 {
        match self {
            CommunityError::Invalid(_) => 400,
            CommunityError::Forbidden(_) => 403,
            CommunityError::NotFound(_) => 404,
            CommunityError::Store(_) | CommunityError::Unavailable => 503,
            CommunityError::Corrupt(_) => 500,
        }
    }

    fn message(&self) -> String {
        match self {
            CommunityError::Corrupt(_) => "internal error; it has been logged".into(),
            e => e.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u32> {
        matches!(self, CommunityError::Store(_) | CommunityError::Unavailable).then_some(5)
    }
}
