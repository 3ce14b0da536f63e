//! Checkpoints of the projections taken along the log, for views of a past moment: an
//! as-of board or queue starts from the last checkpoint at or before the moment and
//! replays only the events after it, instead of the whole log from position 1.
//!
//! The feeder writes one each time the projections pass a multiple of `every` positions
//! (the first batch that ends at or past it), holding the sections views of the past
//! need (the board and the queue), in the snapshot format and with its checks: a
//! checkpoint is used only when whole, written by this build and anchored in this log;
//! one that is not is passed over for the one before it (and the view replays more).
//! They are never rewritten: a rebuild from position 1 (a new build refuses the old
//! snapshot) writes them all again, a start from a snapshot adds those after it. Files:
//! `<dir>/<position, 20 digits>.snap`; each costs about the size of the board's and
//! queue's sections of the snapshot at its position.

use std::path::PathBuf;

use eventlog::{EventLog, Position};

use crate::snapshot::SnapshotStore;

/// The sections a checkpoint holds: what views of the past are computed from.
pub const SECTIONS: [&str; 2] = ["board", "queue"];

/// The checkpoints in a directory.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: PathBuf,
    every: u64,
}

impl Checkpoints {
    /// Checkpoints in `dir`, one every `every` positions (at least 1).
    pub fn new(dir: impl Into<PathBuf>, every: u64) -> Self {
        Self {
            dir: dir.into(),
            every: every.max(1),
        }
    }

    /// How many positions apart they are taken.
    pub fn every(&self) -> u64 {
        self.every
    }

    /// Whether applying up to `to`, having stood at `from`, passes a multiple of `every`.
    pub(crate) fn due(&self, from: Position, to: Position) -> bool {
        to / self.every > from / self.every
    }

    /// The file of the checkpoint at `position`.
    pub(crate) fn store(&self, position: Position) -> SnapshotStore {
        SnapshotStore::named(&self.dir, format!("{position:020}.snap"))
    }

    /// The positions of the checkpoint files, in order.
    pub fn positions(&self) -> Vec<Position> {
        let mut positions: Vec<Position> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let digits = name.strip_suffix(".snap")?;
                (digits.len() == 20).then(|| digits.parse().ok())?
            })
            .collect();
        positions.sort_unstable();
        positions
    }

    /// The last checkpoint at or before `position` whose header is of this build and
    /// anchored in `log`, with its file, if any: for a reader that checks the rest of it
    /// as it restores ([`SnapshotStore::read_beside`], which finds a torn one). Those whose
    /// header cannot be used (another build, not anchored in `log`) are passed over, with a
    /// warning naming the file.
    pub async fn peek_at_or_before(
        &self,
        log: &dyn EventLog,
        position: Position,
    ) -> Option<(Position, SnapshotStore)> {
        for p in self
            .positions()
            .into_iter()
            .rev()
            .filter(|p| *p <= position)
        {
            let store = self.store(p);
            match store.peek(log).await {
                Ok(Some(at)) if at == p => return Some((p, store)),
                Ok(Some(at)) => tracing::warn!(
                    file = %store.path().display(),
                    position = at,
                    "a checkpoint says another position than its name; passed over"
                ),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "a checkpoint cannot be used; passed over"),
            }
        }
        None
    }
}
