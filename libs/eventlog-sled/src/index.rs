//! The indexes (event id -> position, stream -> positions), in two layers:
//!
//! - the **base**: the indexes up to a checkpoint position, in sorted arrays (about 40
//!   bytes per event and 30 per stream, against about 70 per event in hash maps), loaded
//!   from the index checkpoint (`checkpoint.rs`) at open instead of being rebuilt from
//!   every record; lookups are binary searches;
//! - the **recent** layer: hash maps of the events after the base.
//!
//! A checkpoint merges the recent layer into a new base (off the writer's path: see
//! [`Index::recent_up_to`] and [`Index::trim`]). Every event that enters either layer
//! was checked first: by the walk at open (checksum and position, the hash chain, gapless
//! positions and stream versions, unique event ids, non-decreasing `recorded_at`) or by
//! the writer that sealed it.

use std::collections::HashMap;
use std::sync::Arc;

use eventlog::{
    ChainHash, Error, Position, RecordedEvent, Result, StoredRecord, StreamId, Tail, Version,
};
use uuid::Uuid;

use crate::{keys, storage};

/// The indexes up to a checkpoint position, in sorted arrays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Base {
    /// Event ids (`Uuid::as_u128`), ascending, and the position of each.
    pub ids: Vec<u128>,
    pub id_positions: Vec<Position>,
    /// Stream names, ascending, end to end: stream `i` is `names[name_ends[i-1]..name_ends[i]]`.
    pub names: String,
    pub name_ends: Vec<u64>,
    /// Stream `i`'s positions, in version order, are `positions[starts[i]..starts[i+1]]`
    /// (`starts` has one entry more than there are streams, the first 0).
    pub starts: Vec<u64>,
    pub positions: Vec<Position>,
}

impl Default for Base {
    fn default() -> Self {
        Self {
            ids: Vec::new(),
            id_positions: Vec::new(),
            names: String::new(),
            name_ends: Vec::new(),
            starts: vec![0],
            positions: Vec::new(),
        }
    }
}

impl Base {
    pub fn streams(&self) -> usize {
        self.name_ends.len()
    }

    pub fn name(&self, i: usize) -> &str {
        let start = if i == 0 {
            0
        } else {
            self.name_ends[i - 1] as usize
        };
        &self.names[start..self.name_ends[i] as usize]
    }

    /// The slot of `stream`, if the base holds it.
    pub fn find(&self, stream: &str) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.streams());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.name(mid).cmp(stream) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// The positions of the stream in `slot`, in version order.
    pub fn stream(&self, slot: usize) -> &[Position] {
        &self.positions[self.starts[slot] as usize..self.starts[slot + 1] as usize]
    }

    pub fn position_of(&self, id: &Uuid) -> Option<Position> {
        self.ids
            .binary_search(&id.as_u128())
            .ok()
            .map(|i| self.id_positions[i])
    }

    /// A new base: this one with `layer` (later events) added.
    pub fn merged(&self, mut layer: Layer) -> Base {
        let events = self.ids.len() + layer.ids.len();
        layer.ids.sort_unstable_by_key(|(id, _)| *id);
        let mut ids = Vec::with_capacity(events);
        let mut id_positions = Vec::with_capacity(events);
        let mut older = self.ids.iter().zip(&self.id_positions).peekable();
        let mut newer = layer.ids.iter().peekable();
        loop {
            let take_older = match (older.peek(), newer.peek()) {
                (Some((a, _)), Some((b, _))) => *a < b,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let (id, position) = if take_older {
                older.next().map(|(id, p)| (*id, *p))
            } else {
                newer.next().copied()
            }
            .unwrap_or_default();
            ids.push(id);
            id_positions.push(position);
        }

        // Streams: the base's, each with its later positions, and the new ones, by name.
        let mut later: Vec<Option<Vec<Position>>> = vec![None; self.streams()];
        let mut fresh = Vec::new();
        for (name, slot, positions) in layer.streams {
            match slot {
                Some(slot) if slot < later.len() => later[slot] = Some(positions),
                _ => fresh.push((name, positions)),
            }
        }
        fresh.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut out = Base {
            ids,
            id_positions,
            names: String::with_capacity(
                self.names.len() + fresh.iter().map(|f| f.0.len()).sum::<usize>(),
            ),
            name_ends: Vec::with_capacity(self.streams() + fresh.len()),
            starts: Vec::with_capacity(self.streams() + fresh.len() + 1),
            positions: Vec::with_capacity(events),
        };
        out.starts.push(0);
        let push = |out: &mut Base, name: &str, parts: [&[Position]; 2]| {
            out.names.push_str(name);
            out.name_ends.push(out.names.len() as u64);
            for part in parts {
                out.positions.extend_from_slice(part);
            }
            out.starts.push(out.positions.len() as u64);
        };
        let mut fresh = fresh.into_iter().peekable();
        for (slot, extra) in later.iter().enumerate() {
            let name = self.name(slot);
            while let Some((new, positions)) = fresh.next_if(|(new, _)| new.as_str() < name) {
                push(&mut out, &new, [&positions, &[]]);
            }
            push(
                &mut out,
                name,
                [self.stream(slot), extra.as_deref().unwrap_or_default()],
            );
        }
        for (new, positions) in fresh {
            push(&mut out, &new, [&positions, &[]]);
        }
        out
    }
}

/// Events of the recent layer up to a position, copied out to be merged into a base.
#[derive(Default)]
pub(crate) struct Layer {
    ids: Vec<(u128, Position)>,
    /// Name, slot in the base (if the base holds the stream), positions.
    streams: Vec<(String, Option<usize>, Vec<Position>)>,
}

/// A stream's events after the base.
struct Recent {
    /// The stream's slot in the base, if the base holds it.
    slot: Option<usize>,
    /// How many of its events the base holds.
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
        let version = self.version(&record.stream);
        if record.version != version + 1 {
            return Err(corrupt(format!(
                "stream {} jumps from version {version} to {}",
                record.stream, record.version
            )));
        }
        if let Some(earlier) = self.position_of(&record.id) {
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
            Some(recent) => recent.positions.push(position),
            None => {
                let slot = self.base.find(stream.as_str());
                let base_len = slot.map_or(0, |s| self.base.stream(s).len() as u64);
                self.streams.insert(
                    stream.clone(),
                    Recent {
                        slot,
                        base_len,
                        positions: vec![position],
                    },
                );
            }
        }
    }

    pub fn position_of(&self, id: &Uuid) -> Option<Position> {
        self.ids
            .get(id)
            .copied()
            .or_else(|| self.base.position_of(id))
    }

    /// The stream's version, counting every applied event (durable or not).
    pub fn version(&self, stream: &StreamId) -> Version {
        match self.streams.get(stream) {
            Some(recent) => recent.base_len + recent.positions.len() as Version,
            None => self
                .base
                .find(stream.as_str())
                .map_or(0, |slot| self.base.stream(slot).len() as Version),
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
    ) -> Vec<(Version, Position)> {
        let (older, newer): (&[Position], &[Position]) = match self.streams.get(stream) {
            Some(recent) => (
                recent.slot.map_or(&[][..], |slot| self.base.stream(slot)),
                &recent.positions,
            ),
            None => match self.base.find(stream.as_str()) {
                Some(slot) => (self.base.stream(slot), &[]),
                None => return Vec::new(),
            },
        };
        // Positions ascend with versions; the base holds durable positions only.
        let older = &older[..older.partition_point(|p| *p <= durable)];
        let newer = &newer[..newer.partition_point(|p| *p <= durable)];
        let visible = older.len() + newer.len();
        let at = |i: usize| {
            let position = if i < older.len() {
                older[i]
            } else {
                newer[i - older.len()]
            };
            (i as Version + 1, position)
        };
        if forward {
            let skip = from.saturating_sub(1).min(visible as u64) as usize;
            (skip..visible).take(limit).map(at).collect()
        } else {
            let keep = from.min(visible as u64) as usize;
            (0..keep).rev().take(limit).map(at).collect()
        }
    }

    pub fn report(&self) -> VerifyReport {
        let new_streams = self.streams.values().filter(|r| r.slot.is_none()).count();
        VerifyReport {
            events: self.tail.position,
            head_hash: self.tail.hash,
            streams: (self.base.streams() + new_streams) as u64,
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
                            recent.slot,
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
        self.streams.retain(|stream, recent| {
            let moved = recent.positions.partition_point(|p| *p <= upto);
            recent.positions.drain(..moved);
            recent.base_len += moved as u64;
            if recent.positions.is_empty() {
                return false;
            }
            recent.slot = base.find(stream.as_str());
            true
        });
        self.base = base;
        self.base_tail = tail;
    }

    /// The whole index up to `tail` (its own tail, or an earlier durable one) as one
    /// base: what a checkpoint stores.
    pub fn merged_up_to(&self, tail: Tail) -> Base {
        self.base.merged(self.recent_up_to(tail.position))
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
            index.add(&stream(name), id, position);
            index.tail = tail_at(position);
        }
    }

    fn everything(index: &Index, names: &[&str], ids: &[Uuid]) -> Vec<String> {
        let mut out = Vec::new();
        for name in names {
            let s = stream(name);
            out.push(format!(
                "{name} v{} fwd {:?} back {:?} from2 {:?}",
                index.version(&s),
                index.stream_positions(&s, 1, true, usize::MAX, Position::MAX),
                index.stream_positions(&s, Version::MAX, false, 2, Position::MAX),
                index.stream_positions(&s, 2, true, 2, 5),
            ));
        }
        for id in ids {
            out.push(format!("{id} {:?}", index.position_of(id)));
        }
        out.push(format!("streams {}", index.report().streams));
        out
    }

    /// Merging the recent layer into the base at any point, as checkpoints do, changes
    /// no answer: against the same events kept in the recent layer only.
    #[test]
    fn a_merged_base_answers_as_the_recent_layer_did() {
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
                let base = layered.merged_up_to(layered.tail);
                layered.trim(Arc::new(base), layered.tail);
                add_all(&mut layered, &mut ids2, &events[cut..second]);
                // A checkpoint taken below the tail, as a periodic one is.
                let upto = tail_at(cut as Position + (second - cut) as Position / 2);
                let base = layered.merged_up_to(upto);
                layered.trim(Arc::new(base), upto);
                add_all(&mut layered, &mut ids2, &events[second..]);
                // The ids differ (random): compare positions by replacing them.
                let got = everything(&layered, &names, &ids2);
                let n = names.len();
                assert_eq!(got[..n], expected[..n], "cut {cut} {second}");
                assert_eq!(got[got.len() - 1], expected[expected.len() - 1]);
                for (i, id) in ids2.iter().enumerate() {
                    assert_eq!(layered.position_of(id), Some(i as Position + 1));
                }
                assert_eq!(layered.position_of(&Uuid::new_v4()), None);
            }
        }
    }
}
