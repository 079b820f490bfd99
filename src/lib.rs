//! citecast: forecasts which research papers will become highly cited.
//!
//! This crate is the binary's library half: configuration, the HTTP app and the
//! server bootstrap, so integration tests can run the same `App` the binary serves.
//! The engine (store, index, ingest actors) lives in the `citecast-actors` crate.

pub mod accounts;
pub mod billing;
pub mod cli;
pub mod community;
pub mod config;
pub mod contests;
pub mod demo;
pub mod economics;
pub mod engine;
pub mod error;
pub mod forecasts;
pub mod growth;
pub mod home;
pub mod newsletter;
pub mod ops;
pub mod outbound;
pub mod papers;
pub mod pricing;
pub mod referrals;
pub mod retention;
pub mod search;
pub mod server;
pub mod support;
pub mod web;
pub mod webhooks;
