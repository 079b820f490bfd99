//! Calls to the engine's actors with a bound on the wait, and what a failed call means:
//! an actor that does not answer in time is `busy`, one that stopped is `unavailable`;
//! both are the server's failure (503 with `Retry-After`), never the caller's.

use std::time::Duration;

use crate::error::Coded;

/// Runs blocking work (sled, password hashing, SMTP) on the blocking pool, off the async
/// workers. `gone` makes the caller's own "unavailable" error for when the pool is gone
/// (the server is stopping); every feature's store helper goes through here.
pub async fn blocking<T, E, F>(f: F, gone: impl FnOnce() -> E) -> Result<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
    F: FnOnce() -> Result<T, E> + Send + 'static,
{
    actix_web::rt::task::spawn_blocking(f).await.unwrap_or_else(|_| Err(gone()))
}

/// How long a call waits for an engine actor before answering 503 `busy`.
pub const ENGINE_CALL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A part of the server did not answer in time (busy, e.g. warming up after a large
    /// import); the call may be retried.
    #[error(
        "the {what} did not answer within {seconds} s (busy, e.g. warming up after an import); retry shortly"
    )]
    Busy { what: &'static str, seconds: u64 },
    /// A part of the server is not running (its actor stopped).
    #[error("the {what} is unavailable; retry shortly")]
    Unavailable { what: &'static str },
}

impl EngineError {
    pub fn of(e: actix::MailboxError, what: &'static str, timeout: Duration) -> EngineError {
        match e {
            actix::MailboxError::Timeout => EngineError::Busy { what, seconds: timeout.as_secs() },
            actix::MailboxError::Closed => EngineError::Unavailable { what },
        }
    }
}

/// An undelivered message (sent without [`ask`]'s bound).
impl From<actix::MailboxError> for EngineError {
    fn from(e: actix::MailboxError) -> Self {
        EngineError::of(e, "engine", ENGINE_CALL_TIMEOUT)
    }
}

impl Coded for EngineError {
    fn code(&self) -> &'static str {
        match self {
            EngineError::Busy { .. } => "busy",
            EngineError::Unavailable { .. } => "unavailable",
        }
    }
    fn status(&self) -> u16 {
        503
    }
    fn retry_after(&self) -> Option<u32> {
        Some(5)
    }
}

/// Sends `msg` to an engine actor and waits at most [`ENGINE_CALL_TIMEOUT`]: a busy
/// actor (a long warm-up, a large import) answers `busy` instead of holding the caller.
pub async fn ask<A, M>(addr: &actix::Addr<A>, msg: M, what: &'static str) -> Result<M::Result, EngineError>
where
    A: actix::Actor + actix::Handler<M>,
    A::Context: actix::dev::ToEnvelope<A, M>,
    M: actix::Message + Send + 'static,
    M::Result: Send,
{
    ask_within(addr, msg, what, ENGINE_CALL_TIMEOUT).await
}

/// [`ask`] with another bound (changes that may legitimately take longer, such as a
/// promotion that warms the new model).
pub async fn ask_within<A, M>(
    addr: &actix::Addr<A>,
    msg: M,
    what: &'static str,
    timeout: Duration,
) -> Result<M::Result, EngineError>
where
    A: actix::Actor + actix::Handler<M>,
    A::Context: actix::dev::ToEnvelope<A, M>,
    M: actix::Message + Send + 'static,
    M::Result: Send,
{
    addr.send(msg).timeout(timeout).await.map_err(|e| EngineError::of(e, what, timeout))
}

/// Hands memory freed after a bulk import back to the OS. glibc keeps freed heap in its
/// arenas, so without this a server that ran the first-start import holds about 1 GB
/// resident that it never uses again (measured in docs/benchmarks.md).
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages to the OS; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
