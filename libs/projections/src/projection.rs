//! What every projection implements.

use complaints_events::DecodeError;
use eventlog::{Position, RecordedEvent};

use crate::feed::{Decoded, Progress};

/// Why a projection could not be encoded for a snapshot.
pub type SaveError = Box<dyn std::error::Error + Send + Sync>;

/// A fold of the log kept in memory, fed in batches of decoded events, saved into and
/// restored from the projections' snapshot. Implement it in a file of its own and register
/// the projection in [`crate::Projections::new`]; the feeder, snapshots, restore and
/// rebuild then come with it.
pub trait Projection: Send + Sync + 'static {
    /// Its name: in logs, and the section of the snapshot it is saved in. Renaming it
    /// makes older snapshots unusable (they are then rebuilt from the log).
    fn name(&self) -> &'static str;

    /// How far it has applied the log.
    fn progress(&self) -> &Progress;

    /// Applies a batch of consecutive events, then advances [`Projection::progress`] to
    /// the last one applied. On an event it cannot read, it applies those before it and
    /// says so.
    fn apply_batch(&self, batch: &[Decoded]) -> Result<(), DecodeError>;

    /// Its state as bytes, with the position it stands at (taken together).
    fn save(&self) -> Result<(Position, Vec<u8>), SaveError>;

    /// Replaces its state with one saved at `position`.
    fn restore(&self, position: Position, bytes: &[u8]) -> Result<(), DecodeError>;

    /// Empties it (back to position 0).
    fn reset(&self);

    /// Applies one event of the log.
    fn apply(&self, record: &RecordedEvent) -> Result<(), DecodeError> {
        self.apply_batch(&[Decoded::decode(record.clone())?])
    }

    /// The last log position applied.
    fn position(&self) -> Position {
        self.progress().position()
    }

    /// Waits until it has applied `position`.
    fn wait_for(&self, position: Position) -> impl std::future::Future<Output = ()> + Send
    where
        Self: Sized,
    {
        self.progress().wait_for(position)
    }
}
