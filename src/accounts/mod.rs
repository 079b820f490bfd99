//! Customers, their API keys, tiers and limits.

pub mod job;
pub mod routes;
pub mod tiers;
