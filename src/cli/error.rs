//! The command line's errors; each prints as one readable line.

use std::fmt::Display;
use std::path::Path;

/// Errors of the command line; each prints as one readable line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0}")]
    Engine(String),
    #[error("{0}")]
    Admin(String),
}

impl CliError {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        CliError::Io { path: path.as_ref().display().to_string(), source }
    }

    pub fn engine(e: impl Display) -> Self {
        CliError::Engine(e.to_string())
    }
}

impl From<crate::outbound::admin::AdminError> for CliError {
    fn from(e: crate::outbound::admin::AdminError) -> Self {
        CliError::Admin(e.0)
    }
}

impl From<crate::forecasts::TrainingError> for CliError {
    fn from(e: crate::forecasts::TrainingError) -> Self {
        match e {
            crate::forecasts::TrainingError::Io { path, source } => CliError::Io { path, source },
            crate::forecasts::TrainingError::Data(m) => CliError::Usage(m),
            e => CliError::Engine(e.to_string()),
        }
    }
}
