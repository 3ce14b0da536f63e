//! The append-only event log on which the whole service stands.
//!
//! Every complaint has its own stream; all streams share one global order. Each event gets
//! a stream version and a global position, both starting at 1, gapless and strictly
//! increasing. Appends are atomic, optimistic (an [`ExpectedVersion`]) and idempotent by
//! event id, forever. Readers see only durable events.
//!
//! - [`EventLog`]: the trait every backend implements (`eventlog-sled`, the embedded
//!   default, and `eventlog-jetstream`, on NATS JetStream).
//! - [`types`]: what goes in ([`NewEvent`]) and what comes out ([`RecordedEvent`]).
//! - [`seal`]: the one way an append's events become records (versions, positions,
//!   `recorded_at`, the hash chain), shared by all backends.
//! - [`audit`]: the hash chain's digests, Ed25519-signed digests, and verification.
//! - [`codec`]: the stored envelope (protobuf) and its checksum, shared by all backends.
//! - [`clock`]: the injected clock that stamps `recorded_at`.
//! - [`limits`]: size bounds and the validation of an append, shared by all backends.
//! - [`idempotency`]: when a repeated append returns its original result, shared by all
//!   backends.
//! - [`EventLog::subscribe`]: catch-up-then-follow subscriptions, built on the reads.
//! - `conformance` (feature `conformance`): the suite every backend must pass; `bench`
//!   (same feature): what the backends' benchmarks share.
#![forbid(unsafe_code)]

pub mod audit;
pub mod clock;
pub mod codec;
mod error;
pub mod idempotency;
pub mod limits;
pub mod metrics;
pub mod parallel;
pub mod seal;
mod subscribe;
pub mod types;

#[cfg(feature = "conformance")]
pub mod bench;
#[cfg(feature = "conformance")]
pub mod conformance;

use std::sync::Arc;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result};
pub use limits::Limits;
pub use seal::{Sealed, Tail};
pub use subscribe::EventStream;
pub use types::{
    AppendResult, ChainHash, Direction, ExpectedVersion, NewEvent, Position, RecordedEvent,
    StoredRecord, StreamId, Timestamp, Version,
};

/// An append-only log of events: one stream per complaint, one global order.
///
/// Every method sees only durable events: an event is readable (and delivered to
/// subscribers) only once its append has been acknowledged.
#[async_trait::async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Appends `events` to `stream` atomically (all or none) if the stream is at `expected`.
    ///
    /// Returns once the events are durable. Appending events whose ids were already
    /// appended with the same content returns the original result and writes nothing;
    /// the same id with other content is [`Error::IdempotencyConflict`].
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult>;

    /// The stream's current version: the version of its last event, 0 if it has none.
    async fn stream_version(&self, stream: &StreamId) -> Result<Version>;

    /// Reads up to `limit` events of `stream`, starting at version `from` (inclusive) and
    /// going in `direction`. `Version::MAX` with `Backward` reads from the end.
    async fn read_stream(
        &self,
        stream: &StreamId,
        from: Version,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>>;

    /// Reads up to `limit` events of the global log starting at `from` (inclusive).
    /// `Position::MAX` with `Backward` reads from the end.
    async fn read_all(
        &self,
        from: Position,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>>;

    /// Up to `limit` records of the global log from `from` (inclusive), forward, exactly as
    /// stored (for auditing: export and verification of the hash chain). Unlike the other
    /// reads, it does not decode or check the records: that is the caller's job.
    async fn read_stored(&self, from: Position, limit: usize) -> Result<Vec<StoredRecord>>;

    /// The position of the last durable event, 0 if the log is empty.
    async fn head(&self) -> Result<Position>;

    /// A receiver that sees the head position each time it moves.
    fn watch_head(&self) -> tokio::sync::watch::Receiver<Position>;

    /// Flushes and releases the backend. Further calls return [`Error::Closed`].
    async fn close(&self) -> Result<()>;

    /// Every event from global position `from` (inclusive) on: first the stored ones, then
    /// new ones as they become durable, with no gap and no duplicate. To resume after a
    /// restart, pass the last position the caller processed plus one.
    fn subscribe(self: Arc<Self>, from: Position) -> EventStream {
        subscribe::catch_up_then_follow(self, from)
    }
}

/// Moves a backend's head watch (the sender behind [`EventLog::watch_head`]) forward to
/// `head`, never back, waking the watchers only if it moved.
pub fn advance_head(watch: &tokio::sync::watch::Sender<Position>, head: Position) {
    watch.send_if_modified(|h| {
        let moved = head > *h;
        *h = (*h).max(head);
        moved
    });
}
