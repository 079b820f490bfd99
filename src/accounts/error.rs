//! What account errors mean to a caller.

use citecast_actors::accounts::AccountError;

use crate::error::Coded;

impl Coded for AccountError {
    fn code(&self) -> &'static str {
        match self {
            AccountError::NoCustomer(_) | AccountError::NoKey(_) => "not_found",
            AccountError::AlreadyRevoked(_) | AccountError::Invalid(_) => "invalid_body",
            AccountError::EmailTaken(_) => "email_taken",
            AccountError::TooManyKeys { .. } => "key_limit_reached",
            AccountError::Store(_) => "internal",
        }
    }

    fn status(&self) -> u16 {
        match self {
            AccountError::NoCustomer(_) | AccountError::NoKey(_) => 404,
            AccountError::AlreadyRevoked(_) | AccountError::Invalid(_) => 400,
            AccountError::EmailTaken(_) | AccountError::TooManyKeys { .. } => 409,
            AccountError::Store(_) => 500,
        }
    }
}
