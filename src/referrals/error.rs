//! What referral errors mean: a bad month, rate or id is 4xx and says what to fix, a
//! decision on a commission that is not waiting for one 409, a store failure 503.

use crate::error::Coded;

#[derive(Debug, thiserror::Error)]
pub enum ReferralError {
    /// The caller's input breaks a rule; the message names it.
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The commission's status does not allow the action (approving a paid one).
    #[error("{0}")]
    Refused(String),
    #[error("the referral store is unavailable; retry shortly")]
    Store(#[source] sled::Error),
    #[error("the referral store is unavailable; retry shortly")]
    Unavailable,
    #[error("a referral record is unreadable: {0}")]
    Corrupt(String),
}

impl From<sled::Error> for ReferralError {
    fn from(e: sled::Error) -> Self {
        ReferralError::Store(e)
    }
}

impl From<crate::billing::BillingError> for ReferralError {
    fn from(e: crate::billing::BillingError) -> Self {
        tracing::warn!(error = %e, "billing store failed under referrals");
        ReferralError::Unavailable
    }
}

impl Coded for ReferralError {
    fn code(&self) -> &'static str {
        match self {
            ReferralError::Invalid(_) => "invalid_body",
            ReferralError::NotFound(_) => "not_found",
            ReferralError::Refused(_) => "transition_refused",
            ReferralError::Store(_) | ReferralError::Unavailable => "unavailable",
            ReferralError::Corrupt(_) => "internal",
        }
    }

    fn status(&self) -> u16 {
        match self {
            ReferralError::Invalid(_) => 400,
            ReferralError::NotFound(_) => 404,
            ReferralError::Refused(_) => 409,
            ReferralError::Store(_) | ReferralError::Unavailable => 503,
            ReferralError::Corrupt(_) => 500,
        }
    }

    fn message(&self) -> String {
        match self {
            ReferralError::Corrupt(_) => "internal error; it has been logged".into(),
            e => e.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u32> {
        matches!(self, ReferralError::Store(_) | ReferralError::Unavailable).then_some(5)
    }
}
