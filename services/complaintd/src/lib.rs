//! complaintd: the complaint workflow server. Wiring only: configuration, authentication,
//! the gRPC services over [`complaints_workflow`] and [`complaints_projections`], and the
//! server's start and stop (storage opened through [`complaints_storage::open`]).
//!
//! - [`config`]: defaults, TOML file, environment; every problem reported at once.
//! - [`cli`]: the `complaintd` command itself.
//! - [`authz`]: the one place every call is authenticated and checked against its roles.
//! - [`auth`]: the pluggable authentication: development headers, or verified (JWT
//!   bearer tokens and/or mutual-TLS client certificates).
//! - [`convert`]: API messages <-> domain values, with field violations.
//! - [`errors`]: the one mapping from failures to gRPC statuses.
//! - [`service`]: the `complaints.v1.ComplaintService` implementation.
//! - [`audit`]: the `complaints.audit.v1.AuditService` implementation (auditors).
//! - [`admin`]: the `complaints.admin.v1.AdminService` implementation (operators:
//!   the key store for backups).
//! - [`transport`]: the codes of the statuses tonic produces itself (undecodable or
//!   over-size requests).
//! - [`web`]: the HTTP port: the live SLA board and complaint pages, `/metrics`,
//!   `/healthz` and `/readyz`.
//! - [`metrics`]: the Prometheus metrics, and the gRPC layer that counts, times and
//!   traces every call.
//! - [`telemetry`]: log lines, and spans exported over OTLP (feature `otlp`).
//! - [`server`]: start (log, projections, gRPC with health and reflection) and stop.
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod cli;
pub mod config;
pub mod convert;
pub mod errors;
pub mod metrics;
pub mod reports;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod transport;
pub mod web;
