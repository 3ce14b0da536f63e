//! The indexes (event id -> position, stream -> positions), in two layers:
//!
//! - the **base**: the indexes up to a checkpoint position, read in place from the index
//!   checkpoint file (`checkpoint.rs`), a page at a time: memory holds a few bytes per page
//!   of it, and an open loads it instead of rebuilding it from every record;
//! - the **recent** layer: hash maps of the events after the base.
//!
//! A checkpoint merges the recent layer into a new base (off the writer's path: see
//! [`Index::recent_up_to`] and [`Index::trim`]). Every event that enters either layer
//! was checked first: by the walk at open (checksum and position, the hash chain, gapless
//! positions and stream versions, unique event ids, non-decreasing `recorded_at`) or by
//! the writer that sealed it. A lookup in the base can fail (a page of the file damaged
//! since the open): it is then refused, never answered from a guess.

use std::collections::HashMap;
use std::sync::Arc;

use eventlog::{
    ChainHash, Error, Position, RecordedEvent, Result, StoredRecord, StreamId, Tail, Version,
};
use uuid::Uuid;

use crate::checkpoint::{Base, Layer};
use crate::{keys, storage};

/// A stream's events after the base.
struct Recent {
    /// How many of its events the base holds (0: the base does not hold the stream).
    base_len: u64,
    positions: Vec<Position>,
}

pub(crate) struct Index {
    base: Arc<Base>,
    /// The last record the base covers.
    pub base_tail: Tail,
    ids: HashMap<Uuid, Position>,
    streams: HashMap<StreamId, Recent>,
    /// The last record.
    pub tail: Tail,
}

impl Default for Index {
    fn default() -> Self {
        Self::on(Arc::new(Base::default()), Tail::EMPTY)
    }
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
    /// The index of the log up to `tail`, as `base` holds it.
    pub fn on(base: Arc<Base>, tail: Tail) -> Self {
        Self {
            base,
            base_tail: tail,
            ids: HashMap::new(),
            streams: HashMap::new(),
            tail,
        }
    }

    /// Reads and checks the records of `tree` up to `last`, building the indexes; tells
    /// `note` each record's position and chain hash.
    pub fn rebuild_up_to(
        tree: &sled::Db,
        last: Position,
        note: impl FnMut(Position, ChainHash),
    ) -> Result<Self> {
        let mut index = Index::default();
        index.extend_up_to(tree, last, note)?;
        Ok(index)
    }

    /// Reads and checks the records of `tree` after this index's tail, up to `last`,
    /// adding them; tells `note` each record's position and chain hash.
    pub fn extend_up_to(
        &mut self,
        tree: &sled::Db,
        last: Position,
        mut note: impl FnMut(Position, ChainHash),
    ) -> Result<()> {
        let next = self.tail.position + 1;
        // The chunk holding the next record (an index from a checkpoint may end inside one).
        let start = tree
            .range(keys::chunk(0)..=keys::chunk(next))
            .next_back()
            .transpose()
            .map_err(storage)?
            .and_then(|(key, _)| keys::chunk_first(&key))
            .unwrap_or(next);
        let mut first_chunk = true;
        for entry in tree.range(keys::chunk(start)..) {
            if self.tail.position >= last {
                break;
            }
            let (key, value) = entry.map_err(storage)?;
            let expected = self.tail.position + 1;
            let Some(first) = keys::chunk_first(&key) else {
                break;
            };
            let mut records = keys::ChunkRecords::new(first, value)?;
            if first_chunk && first < expected {
                if records.end() <= expected {
                    first_chunk = false;
                    continue;
                }
                for _ in first..expected {
                    records.skip_record()?;
                }
            } else if first != expected {
                return Err(Error::Corruption {
                    position: expected,
                    reason: format!("missing record (next stored is {first})"),
                });
            }
            first_chunk = false;
            while let Some(stored) = records.next_stored() {
                if self.tail.position >= last {
                    break;
                }
                let stored = stored?;
                self.check_and_add(&stored, &stored.decode()?)?;
                note(self.tail.position, self.tail.hash);
            }
        }
        Ok(())
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
        let version = self.version(&record.stream)?;
        if record.version != version + 1 {
            return Err(corrupt(format!(
                "stream {} jumps from version {version} to {}",
                record.stream, record.version
            )));
        }
        if let Some(earlier) = self.position_of(&record.id)? {
            return Err(corrupt(format!(
                "event id {} is also at position {earlier}",
                record.id
            )));
        }
        self.add(&record.stream, record.id, position, record.version);
        self.tail = Tail::after(stored, record);
        Ok(())
    }

    /// The stream's version, counting every applied event (durable or not).
    pub fn version(&self, stream: &StreamId) -> Result<Version> {
        match self.streams.get(stream) {
            Some(recent) => Ok(recent.base_len + recent.positions.len() as Version),
            None => Ok(self
                .base
                .find(stream.as_str())?
                .map_or(0, |extent| extent.count)),
        }
    }

    /// Records that `id` is version `version` of `stream`, at `position`: the next
    /// version after [`Index::version`] (so a stream not yet in the recent layer has
    /// `version - 1` events in the base, and nothing needs looking up there).
    pub fn add(&mut self, stream: &StreamId, id: Uuid, position: Position, version: Version) {
        self.ids.insert(id, position);
        let recent = self
            .streams
            .entry(stream.clone())
            .or_insert_with(|| Recent {
                base_len: version.saturating_sub(1),
                positions: Vec::new(),
            });
        debug_assert_eq!(
            recent.base_len + recent.positions.len() as Version + 1,
            version,
            "stream {stream}: version {version} added out of order"
        );
        recent.positions.push(position);
    }

    pub fn position_of(&self, id: &Uuid) -> Result<Option<Position>> {
        match self.ids.get(id) {
            Some(position) => Ok(Some(*position)),
            None => self.base.position_of(id),
        }
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
    ) -> Result<Vec<(Version, Position)>> {
        let (in_base, newer): (bool, &[Position]) = match self.streams.get(stream) {
            Some(recent) => (recent.base_len > 0, &recent.positions),
            None => (true, &[]),
        };
        let extent = if in_base {
            self.base.find(stream.as_str())?
        } else {
            None
        };
        if extent.is_none() && newer.is_empty() {
            return Ok(Vec::new());
        }
        // Positions ascend with versions. The base holds durable positions only (it is
        // written up to a durable position), unless asked about an earlier one.
        let older = match extent {
            None => 0,
            Some(e) if durable >= self.base_tail.position => e.count,
            Some(e) => {
                let all = self.base.positions(e, 0, e.count)?;
                all.partition_point(|p| *p <= durable) as u64
            }
        };
        let newer = &newer[..newer.partition_point(|p| *p <= durable)];
        let visible = older + newer.len() as u64;
        let (lo, hi) = if forward {
            let skip = from.saturating_sub(1).min(visible);
            (skip, skip.saturating_add(limit as u64).min(visible))
        } else {
            let keep = from.min(visible);
            (keep.saturating_sub(limit as u64), keep)
        };
        let mut out = Vec::with_capacity((hi - lo) as usize);
        if let Some(extent) = extent {
            for (i, position) in self
                .base
                .positions(extent, lo, hi.min(older))?
                .into_iter()
                .enumerate()
            {
                out.push((lo + i as u64 + 1, position));
            }
        }
        for i in lo.max(older)..hi {
            out.push((i + 1, newer[(i - older) as usize]));
        }
        if !forward {
            out.reverse();
        }
        Ok(out)
    }

    pub fn report(&self) -> VerifyReport {
        let new_streams = self.streams.values().filter(|r| r.base_len == 0).count();
        VerifyReport {
            events: self.tail.position,
            head_hash: self.tail.hash,
            streams: self.base.streams() + new_streams as u64,
        }
    }

    /// The base, shared.
    pub fn base(&self) -> Arc<Base> {
        self.base.clone()
    }

    /// A copy of the recent layer's events up to `upto` (which the caller merges into
    /// [`Index::base`] off the writer's path).
    pub fn recent_up_to(&self, upto: Position) -> Layer {
        Layer {
            ids: self
                .ids
                .iter()
                .filter(|(_, p)| **p <= upto)
                .map(|(id, p)| (id.as_u128(), *p))
                .collect(),
            streams: self
                .streams
                .iter()
                .filter_map(|(stream, recent)| {
                    let end = recent.positions.partition_point(|p| *p <= upto);
                    (end > 0).then(|| {
                        (
                            stream.as_str().to_owned(),
                            recent.base_len > 0,
                            recent.positions[..end].to_vec(),
                        )
                    })
                })
                .collect(),
        }
    }

    /// Replaces the base by `base`, which holds everything up to `tail` (built from
    /// [`Index::base`] and [`Index::recent_up_to`] of `tail.position`), dropping those
    /// events from the recent layer.
    pub fn trim(&mut self, base: Arc<Base>, tail: Tail) {
        let upto = tail.position;
        self.ids.retain(|_, p| *p > upto);
        self.streams.retain(|_, recent| {
            let moved = recent.positions.partition_point(|p| *p <= upto);
            recent.positions.drain(..moved);
            recent.base_len += moved as u64;
            !recent.positions.is_empty()
        });
        // A first checkpoint after a rebuild moves millions of entries out: give their
        // room back.
        if self.ids.capacity() > 4 * self.ids.len().max(1024) {
            self.ids.shrink_to_fit();
        }
        if self.streams.capacity() > 4 * self.streams.len().max(1024) {
            self.streams.shrink_to_fit();
        }
        self.base = base;
        self.base_tail = tail;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(name: &str) -> StreamId {
        StreamId::new(name).unwrap_or_else(|e| panic!("{e}"))
    }

    fn tail_at(position: Position) -> Tail {
        Tail {
            position,
            ..Tail::EMPTY
        }
    }

    /// Adds `events` (stream name per event) at the next positions.
    fn add_all(index: &mut Index, ids: &mut Vec<Uuid>, events: &[&str]) {
        for name in events {
            let position = index.tail.position + 1;
            let id = Uuid::new_v4();
            ids.push(id);
            let version = index
                .version(&stream(name))
                .unwrap_or_else(|e| panic!("{e}"));
            index.add(&stream(name), id, position, version + 1);
            index.tail = tail_at(position);
        }
    }

    fn everything(index: &Index, names: &[&str], ids: &[Uuid]) -> Vec<String> {
        let mut out = Vec::new();
        for name in names {
            let s = stream(name);
            let positions = |from, forward, limit, durable| {
                index
                    .stream_positions(&s, from, forward, limit, durable)
                    .unwrap_or_else(|e| panic!("{e}"))
            };
            out.push(format!(
                "{name} fwd {:?} back {:?} from2 {:?} back from 3 {:?} past {:?}",
                positions(1, true, usize::MAX, Position::MAX),
                positions(Version::MAX, false, 2, Position::MAX),
                positions(2, true, 2, 5),
                positions(3, false, 5, Position::MAX),
                positions(40, true, 5, Position::MAX),
            ));
        }
        for id in ids {
            out.push(format!("{id} {:?}", index.position_of(id).ok()));
        }
        out.push(format!("streams {}", index.report().streams));
        out
    }

    /// Merges the recent layer up to `upto` into a new base, as a checkpoint does.
    fn checkpoint(index: &mut Index, dir: &std::path::Path, upto: Tail) {
        let (base, _) = crate::checkpoint::write_merged(
            dir,
            &index.base(),
            index.recent_up_to(upto.position),
            &upto,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        index.trim(Arc::new(base), upto);
    }

    /// Merging the recent layer into the base at any point, as checkpoints do, changes
    /// no answer: against the same events kept in the recent layer only.
    #[test]
    fn a_merged_base_answers_as_the_recent_layer_did() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let events = [
            "b", "a", "b", "c", "a", "z", "b", "m", "a", "a", "c", "q", "b",
        ];
        let names = ["a", "b", "c", "m", "q", "z", "missing"];
        let mut ids = Vec::new();
        let mut plain = Index::default();
        add_all(&mut plain, &mut ids, &events);
        let expected = everything(&plain, &names, &ids);
        for cut in 0..=events.len() {
            for second in cut..=events.len() {
                let mut ids2 = Vec::new();
                let mut layered = Index::default();
                add_all(&mut layered, &mut ids2, &events[..cut]);
                let tail = layered.tail;
                checkpoint(&mut layered, dir.path(), tail);
                add_all(&mut layered, &mut ids2, &events[cut..second]);
                // A checkpoint taken below the tail, as a periodic one is.
                let upto = tail_at(cut as Position + (second - cut) as Position / 2);
                checkpoint(&mut layered, dir.path(), upto);
                add_all(&mut layered, &mut ids2, &events[second..]);
                // The ids differ (random): compare positions by replacing them.
                let got = everything(&layered, &names, &ids2);
                let n = names.len();
                assert_eq!(got[..n], expected[..n], "cut {cut} {second}");
                assert_eq!(got[got.len() - 1], expected[expected.len() - 1]);
                for (i, id) in ids2.iter().enumerate() {
                    assert_eq!(layered.position_of(id).ok(), Some(Some(i as Position + 1)));
                }
                assert_eq!(layered.position_of(&Uuid::new_v4()).ok(), Some(None));
            }
        }
    }
}
