//! Protobuf contracts of the complaint service, generated from the workspace's `proto/`.
//!
//! - [`eventlog::v1`]: the stored record (envelope) of the event log, shared by every backend.
//! - [`complaints::events::v1`]: the stored-event schema (payloads) of complaints.
//! - [`complaints::v1`]: the gRPC API's messages, and with the feature `grpc` its
//!   `ComplaintService` server and client.
//! - [`complaints::audit::v1`]: the auditors' gRPC API (`AuditService`): the same.
//! - [`complaints::admin::v1`]: the operators' gRPC API (`AdminService`: the key store's
//!   entries, for backups): the same.
//! - [`FILE_DESCRIPTOR_SET`]: every file, for gRPC server reflection and JSON export
//!   (with or without `grpc`).
//!
//! Feature `grpc` (off by default): the tonic servers and clients. Without it the crate
//! depends on prost alone, so the event log and its backends never pull in tonic.
#![forbid(unsafe_code)]

/// The event log's stored formats.
pub mod eventlog {
    /// Version 1 of the stored formats.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/eventlog.v1.rs"));
    }
}

/// The encoded descriptors of every proto file, for server reflection and JSON export.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

/// The complaint service's contracts.
pub mod complaints {
    /// Version 1 of the API.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/complaints.v1.rs"));
    }

    /// The auditors' API.
    pub mod audit {
        /// Version 1.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/complaints.audit.v1.rs"));
        }
    }

    /// Regulatory returns and complaint analysis.
    pub mod reports {
        /// Version 1.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/complaints.reports.v1.rs"));
        }
    }

    /// The operators' API.
    pub mod admin {
        /// Version 1.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/complaints.admin.v1.rs"));
        }
    }

    /// Stored events.
    pub mod events {
        /// Version 1 of the stored-event schema.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/complaints.events.v1.rs"));
        }
    }
}
