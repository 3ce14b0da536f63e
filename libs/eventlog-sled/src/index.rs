//! The in-memory indexes (event id -> position, stream -> positions), rebuilt on open by
//! reading and checking every record: checksum and position, the hash chain, gapless
//! positions, gapless stream versions, unique event ids, non-decreasing `recorded_at`. About 40 bytes per
//! event.

use std::collections::HashMap;

use eventlog::{
    ChainHash, Error, Position, RecordedEvent, Result, StoredRecord, StreamId, Tail, Version,
};
use uuid::Uuid;

use crate::{keys, storage};

#[derive(Default)]
pub(crate) struct Index {
    ids: HashMap<Uuid, Position>,
    /// Position of each version: version v is at `[v - 1]`.
    streams: HashMap<StreamId, Vec<Position>>,
    /// The last record.
    pub tail: Tail,
}

/// What a full check of a stored log found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked; also the last position.
    pub events: u64,
    /// The chain hash of the last record: with `events`, the log's digest.
    pub head_hash: ChainHash,
    /// Streams seen.
    pub streams: u64,
}

impl Index {
    /// Reads and checks every record of `tree`, building the indexes; tells `note` each
    /// record's position and chain hash.
    pub fn rebuild_noting(tree: &sled::Db, note: impl FnMut(Position, ChainHash)) -> Result<Self> {
        Self::rebuild_up_to(tree, Position::MAX, note)
    }

    /// [`Index::rebuild_noting`], of the records up to `last` only.
    pub fn rebuild_up_to(
        tree: &sled::Db,
        last: Position,
        mut note: impl FnMut(Position, ChainHash),
    ) -> Result<Self> {
        let mut index = Index::default();
        for entry in tree.scan_prefix([keys::CHUNK]) {
            if index.tail.position >= last {
                break;
            }
            let (key, value) = entry.map_err(storage)?;
            let expected = index.tail.position + 1;
            let first = keys::chunk_first(&key).unwrap_or(0);
            if first != expected {
                return Err(Error::Corruption {
                    position: expected,
                    reason: format!("missing record (next stored is {first})"),
                });
            }
            let mut records = keys::ChunkRecords::new(first, value)?;
            while let Some(stored) = records.next_stored() {
                if index.tail.position >= last {
                    break;
                }
                let stored = stored?;
                index.check_and_add(&stored, &stored.decode()?)?;
                note(index.tail.position, index.tail.hash);
            }
        }
        Ok(index)
    }

    fn check_and_add(&mut self, stored: &StoredRecord, record: &RecordedEvent) -> Result<()> {
        let position = record.position;
        let corrupt = |reason: String| Error::Corruption { position, reason };
        if record.prev_hash != self.tail.hash {
            // The record before was changed after this one committed to it.
            return Err(Error::Corruption {
                position: position - 1,
                reason: "altered: the next record's hash chain link does not match this record"
                    .into(),
            });
        }
        if record.recorded_at < self.tail.recorded_at {
            return Err(corrupt("recorded_at goes backwards".into()));
        }
        let version = self.version(&record.stream);
        if record.version != version + 1 {
            return Err(corrupt(format!(
                "stream {} jumps from version {version} to {}",
                record.stream, record.version
            )));
        }
        if let Some(earlier) = self.ids.get(&record.id) {
            return Err(corrupt(format!(
                "event id {} is also at position {earlier}",
                record.id
            )));
        }
        self.add(&record.stream, record.id, position);
        self.tail = Tail::after(stored, record);
        Ok(())
    }

    /// Records that `id` is version `version(stream) + 1` of `stream`, at `position`.
    pub fn add(&mut self, stream: &StreamId, id: Uuid, position: Position) {
        self.ids.insert(id, position);
        match self.streams.get_mut(stream) {
            Some(positions) => positions.push(position),
            None => {
                self.streams.insert(stream.clone(), vec![position]);
            }
        }
    }

    pub fn position_of(&self, id: &Uuid) -> Option<Position> {
        self.ids.get(id).copied()
    }

    /// The stream's version, counting every applied event (durable or not).
    pub fn version(&self, stream: &StreamId) -> Version {
        self.streams.get(stream).map_or(0, |p| p.len() as Version)
    }

    /// `(version, position)` of the stream's events with positions up to `durable`, from
    /// version `from` in `forward` or backward order, at most `limit`.
    pub fn stream_positions(
        &self,
        stream: &StreamId,
        from: Version,
        forward: bool,
        limit: usize,
        durable: Position,
    ) -> Vec<(Version, Position)> {
        let Some(positions) = self.streams.get(stream) else {
            return Vec::new();
        };
        let visible = positions.partition_point(|p| *p <= durable);
        let numbered = positions[..visible]
            .iter()
            .enumerate()
            .map(|(i, p)| (i as Version + 1, *p));
        if forward {
            let skip = from.saturating_sub(1).min(visible as u64) as usize;
            numbered.skip(skip).take(limit).collect()
        } else {
            let keep = from.min(visible as u64) as usize;
            numbered.take(keep).rev().take(limit).collect()
        }
    }

    pub fn report(&self) -> VerifyReport {
        VerifyReport {
            events: self.tail.position,
            head_hash: self.tail.hash,
            streams: self.streams.len() as u64,
        }
    }
}
