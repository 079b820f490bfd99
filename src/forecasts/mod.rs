//! Forecasts: serving them over the API, and training and evaluating the models.

pub mod admin;
mod error;
pub mod job;
pub mod report_page;
pub mod routes;
pub mod training;
