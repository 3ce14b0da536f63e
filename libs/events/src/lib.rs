//! The stored events: the one boundary between the domain and the bytes in the log.
//!
//! - [`stored`]: every kind of event the log holds — its type name, stream and payload
//!   message — and [`Stored`], the payload decoded once into one typed enum that
//!   projections, export and the workflow match on exhaustively.
//! - [`codec`]: domain events <-> the stored complaint-event schema
//!   (`complaints.events.v1`), with personal fields in the clear or sealed.
//! - [`personal`]: per-person sealing of personal data (crypto-shredding) and the
//!   [`personal::KeyStore`] trait its keys live behind.
//! - [`export`]: events as JSON for auditors, written directly by `json` (the payload's
//!   wire bytes straight to text) with the reference rendering as its fallback.
//!
//! Modules depend one way: `error` <- `personal` <- `codec` <- `stored` <- `export`;
//! `json`, used by `export`, depends on none of them.
#![forbid(unsafe_code)]

pub mod codec;
pub mod error;
pub mod export;
mod json;
pub mod personal;
pub mod stored;

pub use error::DecodeError;
pub use stored::{Crossing, Erasure, Kind, QueueChange, QueueEvent, Stored};
