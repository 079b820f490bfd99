//! What import errors mean to a caller.

use citecast_actors::ingest::IngestError;

use crate::error::Coded;

/// An import's failure: the file's fault (unreadable, unknown format) is the caller's;
/// the store's or the index's is the server's.
impl Coded for IngestError {
    fn code(&self) -> &'static str {
        match self {
            IngestError::Io { .. }
            | IngestError::UnknownFormat { .. }
            | IngestError::InvalidCollection(_) => "invalid_body",
            IngestError::Mailbox(_) => "unavailable",
            IngestError::Store(_) | IngestError::Index(_) => "storage_failed",
        }
    }

    fn status(&self) -> u16 {
        match self {
            IngestError::Io { .. }
            | IngestError::UnknownFormat { .. }
            | IngestError::InvalidCollection(_) => 400,
            IngestError::Mailbox(_) => 503,
            IngestError::Store(_) | IngestError::Index(_) => 500,
        }
    }

    fn message(&self) -> String {
        match self {
            IngestError::Mailbox(_) => "the ingest engine is unavailable; retry shortly".into(),
            e => e.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u32> {
        matches!(self, IngestError::Mailbox(_)).then_some(5)
    }
}
