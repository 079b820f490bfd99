//! The weekly newsletter: its public archive.

pub mod job;
pub mod routes;
