//! What can go wrong with the newsletter's issues.

use citecast_actors::store::StoreError;

use crate::error::Coded;

#[derive(Debug, thiserror::Error)]
pub enum NewsletterError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record does not decode: the store's fault.
    #[error("a stored newsletter record is unreadable: {0}")]
    Corrupt(String),
    /// The delivery's commit log cannot be read or written: the disk's fault.
    #[error("the newsletter commit log failed: {0}")]
    Disk(String),
    /// The blocking pool that runs store calls is gone (the server is stopping).
    #[error("the newsletter store is unavailable; retry shortly")]
    Unavailable,
}

impl From<sled::Error> for NewsletterError {
    fn from(e: sled::Error) -> Self {
        NewsletterError::Store(e.into())
    }
}

impl From<citecast_actors::codec::CodecError> for NewsletterError {
    fn from(e: citecast_actors::codec::CodecError) -> Self {
        NewsletterError::Store(e.into())
    }
}

impl Coded for NewsletterError {
    fn code(&self) -> &'static str {
        match self {
            NewsletterError::Store(_) | NewsletterError::Corrupt(_) | NewsletterError::Disk(_) => "internal",
            NewsletterError::Unavailable => "unavailable",
        }
    }

    fn status(&self) -> u16 {
        match self {
            NewsletterError::Store(_) | NewsletterError::Corrupt(_) | NewsletterError::Disk(_) => 500,
            NewsletterError::Unavailable => 503,
        }
    }

    fn retry_after(&self) -> Option<u32> {
        matches!(self, NewsletterError::Unavailable).then_some(5)
    }
}
