use uuid::Uuid;

use crate::types::{ExpectedVersion, Position, StreamId, Version};

/// What can go wrong with the event log.
///
/// Callers' mistakes (`WrongExpectedVersion`, `IdempotencyConflict`, `InvalidArgument`,
/// `EventTooLarge`) are kept apart from the log's own failures (`Corruption`, `Storage`,
/// `Closed`), which callers cannot fix by changing the request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The stream was not at the version the caller expected.
    #[error("stream {stream} is at version {actual}, expected {expected}")]
    WrongExpectedVersion {
        stream: StreamId,
        expected: ExpectedVersion,
        actual: Version,
    },
    /// An event id was appended before with different content, or only part of an append
    /// repeats earlier ids.
    #[error("event {event_id} conflicts with an earlier append: {reason}")]
    IdempotencyConflict { event_id: Uuid, reason: String },
    /// One event (payload plus metadata) is over the configured size.
    #[error("event {event_id} is {size} bytes, over the limit of {limit} bytes")]
    EventTooLarge {
        event_id: Uuid,
        size: usize,
        limit: usize,
    },
    /// A field of the request is not acceptable.
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    /// A stored record failed its checks: it is never served.
    #[error("corruption at position {position}: {reason}")]
    Corruption { position: Position, reason: String },
    /// The storage failed; the log refuses writes until it is reopened.
    #[error("storage failure: {0}")]
    Storage(String),
    /// The log was closed.
    #[error("the event log is closed")]
    Closed,
    /// The log is open read-only (to read and verify a damaged one): nothing is written.
    #[error("the event log is open read-only: {0}")]
    ReadOnly(String),
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// The event log's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
