//! citecast: forecasts which research papers will become highly cited.
//!
//! This crate is the binary's library half: configuration, the HTTP app and the
//! server bootstrap, so integration tests can run the same `App` the binary serves.
//! The engine (store, index, ingest actors) lives in the `citecast-actors` crate.

pub mod accounts;
pub mod cli;
pub mod config;
pub mod forecasts;
pub mod newsletter;
pub mod ops;
pub mod outbound;
pub mod papers;
pub mod search;
pub mod server;
pub mod web;

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
