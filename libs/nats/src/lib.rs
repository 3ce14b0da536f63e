//! Publishing the event log to NATS, outbox style, so other services receive every event.
//!
//! The [`publisher`] reads the global log from a persisted cursor and publishes each event
//! in order, with the event id as `Nats-Msg-Id` and the envelope as headers, either to a
//! JetStream stream (waiting for each acknowledgement; duplicates within the stream's
//! duplicate window are dropped by the server) or on core NATS (fire and forget, flushed
//! per batch). When NATS is down, appends go on; the publisher retries and resumes where
//! it stopped, and its lag (head minus cursor) is observable.
//!
//! Subjects: `<prefix>.<event type>.<stream id>`, e.g.
//! `complaints.events.complaint.answered.complaint-0192f2f0-...`; event types are two
//! tokens (`complaint.answered`, `sla.clock_breached`, `queue.leased`, ...). Consumers
//! filter by type (`complaints.events.complaint.answered.>`), by kind
//! (`complaints.events.complaint.>`), or by complaint (`complaints.events.*.*.complaint-<uuid>`).
#![forbid(unsafe_code)]

pub mod publisher;
#[cfg(feature = "testing")]
pub mod testing;

pub use publisher::{Mode, Publisher, PublisherConfig, Status};
