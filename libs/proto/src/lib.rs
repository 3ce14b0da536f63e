//! Protobuf contracts of the complaint service, generated from the workspace's `proto/`.
//!
//! - [`eventlog::v1`]: the stored record (envelope) of the event log, shared by every backend.
//! - [`complaints::events::v1`]: the stored-event schema (payloads) of complaints.
#![forbid(unsafe_code)]

/// The event log's stored formats.
pub mod eventlog {
    /// Version 1 of the stored formats.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/eventlog.v1.rs"));
    }
}

/// The complaint service's contracts.
pub mod complaints {
    /// Stored events.
    pub mod events {
        /// Version 1 of the stored-event schema.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/complaints.events.v1.rs"));
        }
    }
}
