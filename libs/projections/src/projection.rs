//! What every projection implements.

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

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

/// The state of a projection that applies the log one event at a time, and is saved as a
/// whole: the shape of most projections. A type holding it in a [`Kept`] and saying so
/// with [`Folding`] is a [`Projection`], with nothing more to write.
pub trait Fold: Default + Send + Sync + 'static {
    /// The projection's [`Projection::name`].
    const NAME: &'static str;

    /// Applies one event (`d.stored` says what it is: match on it).
    fn apply(&mut self, d: &Decoded);

    /// The state as bytes, for a snapshot.
    fn encode(&self) -> Result<Vec<u8>, SaveError>;

    /// A state from [`Fold::encode`]'s bytes.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError>;
}

/// A projection whose state is a [`Fold`] in a [`Kept`].
pub trait Folding: Send + Sync + 'static {
    type State: Fold;

    /// Its state and progress.
    fn kept(&self) -> &Kept<Self::State>;
}

impl<T: Folding> Projection for T {
    fn name(&self) -> &'static str {
        T::State::NAME
    }

    fn progress(&self) -> &Progress {
        self.kept().progress()
    }

    fn apply_batch(&self, batch: &[Decoded]) -> Result<(), DecodeError> {
        self.kept().apply_each(batch, T::State::apply);
        Ok(())
    }

    fn save(&self) -> Result<(Position, Vec<u8>), SaveError> {
        self.kept().save(T::State::encode)
    }

    fn restore(&self, position: Position, bytes: &[u8]) -> Result<(), DecodeError> {
        self.kept().replace(position, T::State::decode(bytes)?);
        Ok(())
    }

    fn reset(&self) {
        self.kept().reset();
    }
}

/// A projection's state behind a lock, with its progress: what every projection keeps.
/// A panic while holding the lock does not make the state unreadable (it is a fold of the
/// log, replaced whole on restore or reset).
pub struct Kept<S> {
    state: RwLock<S>,
    progress: Progress,
}

impl<S: Default> Default for Kept<S> {
    fn default() -> Self {
        Self {
            state: RwLock::default(),
            progress: Progress::default(),
        }
    }
}

impl<S> Kept<S> {
    /// How far the state has applied the log.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// The state, to read.
    pub fn read(&self) -> RwLockReadGuard<'_, S> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state, to change.
    pub fn write(&self) -> RwLockWriteGuard<'_, S> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies each event of `batch` with `apply`, then advances to the last.
    pub fn apply_each(&self, batch: &[Decoded], mut apply: impl FnMut(&mut S, &Decoded)) {
        let Some(last) = batch.last() else {
            return;
        };
        let mut state = self.write();
        for d in batch {
            apply(&mut state, d);
        }
        drop(state);
        self.progress.advance(last.record.position);
    }

    /// Replaces the state with `state`, standing at `position`.
    pub fn replace(&self, position: Position, state: S) {
        *self.write() = state;
        self.progress.advance(position);
    }

    /// The state encoded with `encode`, with the position it stands at (taken together).
    pub fn save(
        &self,
        encode: impl FnOnce(&S) -> Result<Vec<u8>, SaveError>,
    ) -> Result<(Position, Vec<u8>), SaveError> {
        let state = self.read();
        Ok((self.progress.position(), encode(&state)?))
    }
}

impl<S: Default> Kept<S> {
    /// Empties the state (back to position 0).
    pub fn reset(&self) {
        self.replace(0, S::default());
    }
}
