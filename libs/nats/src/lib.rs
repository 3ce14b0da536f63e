//! Publishing the event log to NATS, outbox style, so other services receive every event.
//!
//! The [`publisher`] reads the global log from a persisted cursor and publishes each event
//! in order, with the event id as `Nats-Msg-Id` and the envelope (and the record's chain
//! hash) as headers, either to a JetStream stream (a batch at a time, the cursor moving
//! past what was acknowledged, in order; duplicates within the stream's duplicate window
//! are dropped by the server) or on core NATS (fire and forget, flushed per batch). The
//! cursor file is written atomically after each batch. When NATS is down, appends go on;
//! the publisher retries with backoff and resumes where it stopped, and its lag (head
//! minus cursor) is observable ([`Status`]).
//!
//! Subjects: `<prefix>.<event type>.<stream id>`, e.g.
//! `complaints.events.complaint.answered.complaint-0192f2f0-...`; event types are two
//! tokens (`complaint.answered`, `sla.clock_breached`, `queue.leased`, ...). Consumers
//! filter by type (`complaints.events.complaint.answered.>`), by kind
//! (`complaints.events.complaint.>`), or by complaint (`complaints.events.*.*.complaint-<uuid>`).
//!
//! Feature `testing`: `testing::NatsServer` and `testing::NatsCluster`, nats-server
//! processes of a test's own.
#![forbid(unsafe_code)]

pub mod publisher;
#[cfg(feature = "testing")]
pub mod testing;

pub use publisher::{
    check_published, read_cursor, Mode, Payload, Published, Publisher, PublisherConfig, Status,
    CE_SOURCE,
};
