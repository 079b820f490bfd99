//! Forecasting which papers become highly cited: the task definition, features as of
//! a date, models, evaluation and the versioned model registry.

pub mod authors;
pub mod backtest;
pub mod cohort;
pub mod corpus;
pub mod coverage;
pub mod features;
pub mod gbdt;
pub mod glossary;
pub mod linear;
pub mod metrics;
pub mod mlp;
pub mod registry;
pub mod report;
pub mod rollout;
pub mod service;
pub mod task;
pub mod text;
pub mod train;
