//! The command line's helpers.

pub mod progress;
