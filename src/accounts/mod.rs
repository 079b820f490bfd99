//! Customers, their API keys, tiers and limits.

mod error;
pub mod job;
pub mod routes;
pub mod tiers;
