//! The home page, `/`: what citecast does, a live forecast from the data, and the way to
//! pricing, the docs, the newsletter, the status page, sign-up and log-in.

pub mod routes;
