//! The errors of operator actions ([`super::operator`]) and of the job scheduler, in the
//! domain's words: the CLI prints them, the admin API maps them through [`Coded`].

use citecast_actors::forecast::service::ForecastError;
use citecast_actors::store::StoreError;

use crate::accounts::AccountError;
use crate::engine::EngineError;
use crate::error::Coded;

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The request cannot be done as given; the message says what to change.
    #[error("{0}")]
    Invalid(String),
    #[error("{what} '{id}' not found")]
    NotFound { what: &'static str, id: String },
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Forecast(#[from] ForecastError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A billing refusal (an invoice not open, a refused transition), with its own code.
    #[error(transparent)]
    Billing(crate::billing::BillingError),
}

impl From<actix::MailboxError> for OpError {
    fn from(e: actix::MailboxError) -> Self {
        OpError::Engine(e.into())
    }
}

impl Coded for OpError {
    fn code(&self) -> &'static str {
        match self {
            OpError::Invalid(_) => "invalid_body",
            OpError::NotFound { .. } => "not_found",
            OpError::Account(e) => e.code(),
            OpError::Forecast(e) => e.code(),
            OpError::Store(e) => e.code(),
            OpError::Engine(e) => e.code(),
            OpError::Billing(e) => e.code(),
        }
    }

    fn status(&self) -> u16 {
        match self {
            OpError::Invalid(_) => 400,
            OpError::NotFound { .. } => 404,
            OpError::Account(e) => e.status(),
            OpError::Forecast(e) => e.status(),
            OpError::Store(e) => e.status(),
            OpError::Engine(e) => e.status(),
            OpError::Billing(e) => e.status(),
        }
    }

    fn message(&self) -> String {
        match self {
            OpError::Account(e) => e.message(),
            OpError::Forecast(e) => e.message(),
            OpError::Store(e) => e.message(),
            OpError::Engine(e) => e.message(),
            OpError::Billing(e) => e.message(),
            e => e.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u32> {
        match self {
            OpError::Forecast(e) => e.retry_after(),
            OpError::Engine(e) => e.retry_after(),
            OpError::Billing(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// Why the scheduler refused a change or a run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JobError {
    #[error("no job named '{0}'")]
    Unknown(String),
    /// Settings or an action that cannot apply (a bad schedule, a job already running).
    #[error("{0}")]
    Refused(String),
}

impl Coded for JobError {
    fn code(&self) -> &'static str {
        "invalid_body"
    }

    fn status(&self) -> u16 {
        400
    }
}

/// A backup's failure: a path that cannot be used is the caller's; a disk that fills up
/// or a store that fails is the server's.
impl Coded for citecast_actors::backup::BackupError {
    fn code(&self) -> &'static str {
        if self.is_callers() {
            "invalid_body"
        } else {
            "backup_failed"
        }
    }

    fn status(&self) -> u16 {
        if self.is_callers() {
            400
        } else {
            500
        }
    }
}

trait CallersFault {
    fn is_callers(&self) -> bool;
}

impl CallersFault for citecast_actors::backup::BackupError {
    fn is_callers(&self) -> bool {
        use citecast_actors::backup::BackupError as B;
        use std::io::ErrorKind as K;
        match self {
            B::Invalid(_) => true,
            B::Io { source, .. } => {
                matches!(
                    source.kind(),
                    K::NotFound | K::PermissionDenied | K::AlreadyExists | K::InvalidInput
                )
            }
            _ => false,
        }
    }
}
