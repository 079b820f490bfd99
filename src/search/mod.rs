//! Full-text search over the corpus.

pub mod routes;
