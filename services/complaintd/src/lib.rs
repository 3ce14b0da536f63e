//! complaintd: the complaint workflow server. Wiring only: configuration, authentication,
//! the gRPC service over [`complaints_workflow`], and the server's start and stop.
//!
//! - [`config`]: defaults, TOML file, environment; every problem reported at once.
//! - [`cli`]: the `complaintd` command itself.
//! - [`authz`]: the one place every call is authenticated and checked against its roles.
//! - [`auth`]: the pluggable authentication layer (development headers for now).
//! - [`convert`]: API messages <-> domain values, with field violations.
//! - [`keystore`]: the per-person keys of personal data, apart from the log.
//! - [`errors`]: the one mapping from failures to gRPC statuses.
//! - [`service`]: the `complaints.v1.ComplaintService` implementation.
//! - [`audit`]: the `complaints.audit.v1.AuditService` implementation (auditors).
//! - [`server`]: start (log, projections, gRPC with health and reflection) and stop.
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod authz;
pub mod cli;
pub mod config;
pub mod convert;
pub mod errors;
pub mod keystore;
pub mod server;
pub mod service;
