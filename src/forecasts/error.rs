//! What forecast errors mean to a caller.

use citecast_actors::forecast::service::ForecastError;

use crate::error::Coded;

impl Coded for ForecastError {
    fn code(&self) -> &'static str {
        match self {
            ForecastError::UnknownPaper(_) => "not_found",
            ForecastError::UnknownCollection { .. } => "unknown_collection",
            ForecastError::TooYoung { .. } => "too_young",
            ForecastError::NoModel(_) => "no_model",
            ForecastError::Invalid(_) => "invalid_body",
            ForecastError::Unavailable(_) => "unavailable",
            ForecastError::Io(_) => "storage_failed",
        }
    }

    fn status(&self) -> u16 {
        match self {
            ForecastError::UnknownPaper(_) | ForecastError::UnknownCollection { .. } => 404,
            ForecastError::TooYoung { .. } => 422,
            ForecastError::Invalid(_) => 400,
            // The server's own failures are never the caller's.
            ForecastError::NoModel(_) | ForecastError::Unavailable(_) => 503,
            ForecastError::Io(_) => 500,
        }
    }

    fn message(&self) -> String {
        match self {
            ForecastError::NoModel(_) => format!("{self}; ask the operator to load or train one"),
            // The cause is logged; the caller learns which part is down.
            ForecastError::Unavailable(_) => "the forecast engine is unavailable; retry shortly".into(),
            e => e.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u32> {
        matches!(self, ForecastError::Unavailable(_)).then_some(5)
    }
}

/// Why training or evaluating models failed: the data, a model file or a directory.
#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0}")]
    Failed(String),
    /// The data cannot train or evaluate a model as asked (too little of it, a
    /// degenerate model, a model of another collection): the caller's to change.
    #[error("{0}")]
    Data(String),
}

impl TrainingError {
    pub fn from_display(e: impl std::fmt::Display) -> Self {
        TrainingError::Failed(e.to_string())
    }
}

impl Coded for TrainingError {
    fn code(&self) -> &'static str {
        match self {
            TrainingError::Data(_) => "cannot_train",
            TrainingError::Io { .. } => "storage_failed",
            TrainingError::Failed(_) => "internal",
        }
    }

    fn status(&self) -> u16 {
        match self {
            TrainingError::Data(_) => 422,
            TrainingError::Io { .. } | TrainingError::Failed(_) => 500,
        }
    }
}
