//! Customers, their API keys, tiers and limits.

pub mod routes;
pub mod tiers;
