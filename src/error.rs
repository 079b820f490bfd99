//! The one trait every domain error implements: its stable code, its HTTP status and,
//! for a failure that passes, when to retry. Features say this of their own errors (in
//! their `error.rs`); `web/error.rs` turns any of them into the API's JSON error, and
//! the CLI prints its message. The status is a number so that domain code needs no HTTP
//! types.

pub trait Coded: std::fmt::Display {
    /// Stable, documented in `web/openapi.rs` (`ERRORS`).
    fn code(&self) -> &'static str;
    /// 4xx: the caller's to fix; 5xx: the server's failure (logged with its cause).
    fn status(&self) -> u16;
    /// What the caller is told; by default the error's own words.
    fn message(&self) -> String {
        self.to_string()
    }
    /// Seconds after which a retry may succeed (sent as `Retry-After`).
    fn retry_after(&self) -> Option<u32> {
        None
    }
}

/// A failure of the server's own storage (sled): 500 `internal`, details only in the log.
impl Coded for citecast_actors::store::StoreError {
    fn code(&self) -> &'static str {
        "internal"
    }
    fn status(&self) -> u16 {
        500
    }
}

/// A failure of the search index: 500 `internal`, details only in the log.
impl Coded for citecast_actors::index::IndexError {
    fn code(&self) -> &'static str {
        "internal"
    }
    fn status(&self) -> u16 {
        500
    }
}
