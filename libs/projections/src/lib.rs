//! The projections: folds of the event log kept in memory for queries, fed by one reader,
//! saved in a snapshot beside the log and restored from it.
//!
//! - [`Projection`]: what a projection implements; [`Projections`]: the set a service
//!   keeps, registered in one place ([`Projections::new`]), fed together, snapshotted
//!   together.
//! - [`feed`]: the reader (pages of decoded events, [`Decoded`]) and [`Progress`].
//! - [`snapshot`]: the snapshot file, checked against the log before use; [`checkpoint`]:
//!   snapshots of the board and queue kept along the log, for views of a past moment.
//! - The projections: [`list`] (the complaint list), [`board`] (the SLA board) and
//!   [`queue`] (the regulator-transfer queue); [`compact`]: their interned names and
//!   microsecond times.
//!
//! Modules depend one way: `compact`, `snapshot` <- `checkpoint`, `feed` <- `projection` <- the
//! projections <- `set`.
#![forbid(unsafe_code)]

pub mod board;
pub mod checkpoint;
pub mod compact;
pub mod feed;
pub mod list;
pub mod projection;
pub mod queue;
pub mod reports;
mod set;
pub mod snapshot;

pub use feed::{spawn, Decoded, Progress};
pub use projection::{Fold, Folding, Kept, Projection, SaveError};
pub use set::{NotRegistered, Projections};
