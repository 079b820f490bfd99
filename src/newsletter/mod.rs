//! The weekly newsletter: its public archive.

pub mod routes;
