//! What account errors mean to a caller.

use citecast_actors::codec;
use citecast_actors::store::StoreError;

use crate::error::Coded;

/// What can go wrong with customers and keys.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("customer '{0}' not found")]
    NoCustomer(String),
    #[error("API key '{0}' not found")]
    NoKey(String),
    #[error("API key '{0}' is already revoked")]
    AlreadyRevoked(String),
    #[error("{0}")]
    Invalid(String),
    #[error(
        "this customer already holds {limit} active API keys, the most its tier allows; revoke one first"
    )]
    TooManyKeys { limit: usize },
    #[error("a customer with the e-mail address '{0}' already exists")]
    EmailTaken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record does not decode: the store's fault, not the caller's.
    #[error("a stored account record is unreadable: {0}")]
    Corrupt(String),
    /// The blocking pool that runs store calls is gone (the server is stopping).
    #[error("the account store is unavailable; retry shortly")]
    Unavailable,
}

impl From<sled::Error> for AccountError {
    fn from(e: sled::Error) -> Self {
        AccountError::Store(e.into())
    }
}

impl From<codec::CodecError> for AccountError {
    fn from(e: codec::CodecError) -> Self {
        AccountError::Store(e.into())
    }
}

impl Coded for AccountError {
    fn code(&self) -> &'static str {
        match self {
            AccountError::NoCustomer(_) | AccountError::NoKey(_) => "not_found",
            AccountError::AlreadyRevoked(_) | AccountError::Invalid(_) => "invalid_body",
            AccountError::EmailTaken(_) => "email_taken",
            AccountError::TooManyKeys { .. } => "key_limit_reached",
            AccountError::Store(_) | AccountError::Corrupt(_) => "internal",
            AccountError::Unavailable => "unavailable",
        }
    }

    fn status(&self) -> u16 {
        match self {
            AccountError::NoCustomer(_) | AccountError::NoKey(_) => 404,
            AccountError::AlreadyRevoked(_) | AccountError::Invalid(_) => 400,
            AccountError::EmailTaken(_) | AccountError::TooManyKeys { .. } => 409,
            AccountError::Store(_) | AccountError::Corrupt(_) => 500,
            AccountError::Unavailable => 503,
        }
    }

    fn retry_after(&self) -> Option<u32> {
        matches!(self, AccountError::Unavailable).then_some(5)
    }
}
