//! A process's index of the log, kept on local disk in an embedded sled database: every
//! event id (idempotency, forever), each stream's positions in version order, the first
//! position of every message (where a record lives), and the chain's tail with the last
//! message applied. Memory is sled's page cache (bounded by
//! [`JetStreamConfig::index_cache_bytes`](crate::JetStreamConfig)), not the history; an
//! open reads only the messages after the last one the index holds.
//!
//! The index is derived data and never trusted over the stream. Each message is checked
//! (positions, chain, versions, unique ids) before it is applied, and its keys are written
//! before the "last message applied" it brings the index to (see [`Index::apply`]), so
//! after a crash the index is some earlier consistent state and the open reads on from
//! there.
//! At open the message it last applied must still be in the stream holding the record it
//! names as the tail, with that record's hash: otherwise the stream lost or changed
//! acknowledged history and the open is refused. An index of another stream, one that
//! does not open, or a file of the earlier whole-index format, is set aside (emptied, with
//! a warning) and the stream read from the start.
//!
//! Without a path (tests, tools) the database is temporary: on disk, removed when closed.
//! sled is already the embedded store of the other backend; nothing else in the
//! dependency tree keeps an ordered, crash-consistent map on disk.
//!
//! Keys, in one tree: `i` + event id -> position; `s` + stream length (u32) + stream +
//! version -> position; `m` + first position -> message sequence and record count; `t` ->
//! the stream's name, the last message applied and the tail; `u` -> while a message is
//! being applied, its sequence and the keys it writes. Numbers are big-endian, so
//! keys sort as the numbers do.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use eventlog::{
    ChainHash, Direction, Error, Position, RecordedEvent, Result, StoredRecord, StreamId, Tail,
    Timestamp, Version,
};
use uuid::Uuid;

/// Where a record lives: the message and its index in it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub(crate) sequence: u64,
    pub(crate) index: u32,
}

pub(crate) struct Index {
    /// `None` once closed (the directory's lock released: another open may take it).
    db: Option<sled::Db>,
    /// The last message applied (0: none).
    pub(crate) last_sequence: u64,
    /// The last record applied.
    pub(crate) tail: Tail,
    /// The JetStream stream it indexes.
    stream: String,
    /// Recently used streams' versions (exact: every apply updates them), so that a
    /// busy stream's version needs no range scan; emptied when it reaches
    /// [`VERSIONS_KEPT`] streams, so it stays bounded.
    versions: HashMap<StreamId, Version>,
}

/// Streams whose version [`Index`] keeps in memory at most.
const VERSIONS_KEPT: usize = 65_536;

fn failed(e: sled::Error) -> Error {
    Error::Storage(format!("the local index: {e}"))
}

const META: &[u8] = b"t";
/// The keys an apply is about to write (see [`Index::undo_interrupted_apply`]).
const UNDO: &[u8] = b"u";

fn id_key(id: &Uuid) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = b'i';
    k[1..].copy_from_slice(id.as_bytes());
    k
}

fn stream_prefix(stream: &StreamId) -> Vec<u8> {
    let name = stream.as_str().as_bytes();
    let mut k = Vec::with_capacity(5 + name.len() + 8);
    k.push(b's');
    k.extend_from_slice(&(name.len() as u32).to_be_bytes());
    k.extend_from_slice(name);
    k
}

fn stream_key(stream: &StreamId, version: Version) -> Vec<u8> {
    let mut k = stream_prefix(stream);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

fn message_key(first: Position) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'm';
    k[1..].copy_from_slice(&first.to_be_bytes());
    k
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

/// The meta value: stream name length, name, last sequence, tail position, hash, time.
fn encode_meta(stream: &str, last_sequence: u64, tail: &Tail) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + stream.len() + 56);
    v.extend_from_slice(&(stream.len() as u32).to_be_bytes());
    v.extend_from_slice(stream.as_bytes());
    v.extend_from_slice(&last_sequence.to_be_bytes());
    v.extend_from_slice(&tail.position.to_be_bytes());
    v.extend_from_slice(&tail.hash.0);
    v.extend_from_slice(&tail.recorded_at.as_micros().to_be_bytes());
    v
}

fn decode_meta(v: &[u8]) -> Option<(String, u64, Tail)> {
    let len = u32::from_be_bytes(v.get(..4)?.try_into().ok()?) as usize;
    let name = std::str::from_utf8(v.get(4..4 + len)?).ok()?.to_owned();
    let rest = v.get(4 + len..)?;
    if rest.len() != 56 {
        return None;
    }
    let hash: [u8; 32] = rest[16..48].try_into().ok()?;
    Some((
        name,
        u64_at(rest, 0),
        Tail {
            position: u64_at(rest, 8),
            hash: ChainHash(hash),
            recorded_at: Timestamp::from_micros(u64_at(rest, 48) as i64),
        },
    ))
}

impl Index {
    /// Opens the index of the JetStream stream `stream` at `path` (temporary without one),
    /// with a page cache of `cache_bytes`. One that cannot be used is set aside with a
    /// warning: the index starts empty and the stream is read whole.
    pub(crate) fn open(path: Option<&Path>, stream: &str, cache_bytes: u64) -> Result<Self> {
        let config = |p: Option<&Path>| {
            let c = sled::Config::new()
                .cache_capacity(cache_bytes)
                .flush_every_ms(Some(1000));
            match p {
                Some(p) => c.path(p),
                None => c.temporary(true),
            }
        };
        let db = match path {
            None => config(None).open().map_err(failed)?,
            Some(path) => {
                // The earlier format was one file: derived data, replaced.
                if path.is_file() {
                    tracing::warn!(path = %path.display(), "an index file of the earlier format: replaced by the new index");
                    std::fs::remove_file(path).map_err(|e| Error::Storage(e.to_string()))?;
                }
                let mut attempt = 0;
                loop {
                    match config(Some(path)).open() {
                        Ok(db) => break db,
                        // Damaged: derived data, set aside (the stream is read whole).
                        Err(e @ sled::Error::Corruption { .. }) => {
                            tracing::warn!(path = %path.display(), error = %e, "the local index is damaged: set aside, reading the whole stream");
                            let aside = path.with_extension("unusable");
                            let _ = std::fs::remove_dir_all(&aside);
                            std::fs::rename(path, &aside)
                                .map_err(|e| Error::Storage(e.to_string()))?;
                        }
                        // Held (sled lets go of its lock a moment after a close in this
                        // process), or another process's: wait a little, then refuse.
                        Err(e) if attempt < 30 => {
                            tracing::debug!(error = %e, "the local index is busy; trying again");
                            attempt += 1;
                            std::thread::sleep(std::time::Duration::from_millis(100));
                        }
                        Err(e) => {
                            return Err(Error::Storage(format!(
                                "the local index in {} cannot be opened (is another process using it?): {e}",
                                path.display()
                            )))
                        }
                    }
                }
            }
        };
        let mut index = Index {
            db: Some(db),
            last_sequence: 0,
            tail: Tail::EMPTY,
            stream: stream.to_owned(),
            versions: HashMap::new(),
        };
        match index.db()?.get(META).map_err(failed)? {
            None => {}
            Some(meta) => match decode_meta(&meta) {
                Some((name, last, tail)) if name == stream => {
                    index.last_sequence = last;
                    index.tail = tail;
                }
                found => {
                    let why = match found {
                        Some((name, ..)) => format!("it indexes the stream {name}, not {stream}"),
                        None => "its state is unreadable".to_owned(),
                    };
                    tracing::warn!(%why, "the local index is set aside; reading the whole stream");
                    index.db()?.clear().map_err(failed)?;
                }
            },
        }
        index.undo_interrupted_apply()?;
        Ok(index)
    }

    /// An apply that a crash interrupted left keys of a message the index's state does not
    /// name (listed in `u` before they were written): removed, so that they cannot be
    /// taken for another message's if the stream no longer holds the same one there.
    fn undo_interrupted_apply(&mut self) -> Result<()> {
        let db = self.db()?;
        let Some(undo) = db.get(UNDO).map_err(failed)? else {
            return Ok(());
        };
        let sequence = u64_at(&undo, 0);
        if sequence > self.last_sequence {
            let mut at = 8;
            while let Some(len) = undo
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
            {
                let Some(key) = undo.get(at + 4..at + 4 + len as usize) else {
                    break;
                };
                db.remove(key).map_err(failed)?;
                at += 4 + len as usize;
            }
            tracing::info!(
                sequence,
                "the local index: removed what an interrupted apply left"
            );
        }
        db.remove(UNDO).map_err(failed)?;
        Ok(())
    }

    fn db(&self) -> Result<&sled::Db> {
        self.db.as_ref().ok_or(Error::Closed)
    }

    /// Writes what sled holds in memory to disk (the index survives a restart).
    pub(crate) fn flush(&self) -> Result<()> {
        self.db()?.flush().map(|_| ()).map_err(failed)
    }

    /// Writes it to disk and lets go of it (and of its directory's lock).
    pub(crate) fn close(&mut self) -> Result<()> {
        let flushed = self.flush();
        self.db = None;
        flushed
    }

    /// Its size on disk, in bytes.
    pub(crate) fn size_on_disk(&self) -> u64 {
        self.db()
            .ok()
            .and_then(|db| db.size_on_disk().ok())
            .unwrap_or(0)
    }

    pub(crate) fn head(&self) -> Position {
        self.tail.position
    }

    /// The stream's version: its last indexed one.
    pub(crate) fn version(&self, stream: &StreamId) -> Result<Version> {
        if let Some(v) = self.versions.get(stream) {
            return Ok(*v);
        }
        // Entries past the head are leftovers of an apply a crash interrupted: skipped.
        let head = self.head();
        for item in self.db()?.scan_prefix(stream_prefix(stream)).rev() {
            let (key, value) = item.map_err(failed)?;
            if u64_at(&value, 0) <= head {
                return Ok(u64_at(&key, key.len() - 8));
            }
        }
        Ok(0)
    }

    /// Where event `id` was appended, if it was.
    pub(crate) fn position_of(&self, id: &Uuid) -> Result<Option<Position>> {
        let head = self.head();
        Ok(self
            .db()?
            .get(id_key(id))
            .map_err(failed)?
            .map(|v| u64_at(&v, 0))
            .filter(|p| *p <= head))
    }

    /// The positions of `stream` from version `from`, in `direction`, at most `limit`.
    pub(crate) fn stream_positions(
        &self,
        stream: &StreamId,
        from: Version,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Position>> {
        let head = self.head();
        let position = |item: sled::Result<(sled::IVec, sled::IVec)>| {
            item.map(|(_, v)| u64_at(&v, 0)).map_err(failed)
        };
        // Positions past the head are leftovers of an interrupted apply: not the stream's.
        let positions: Result<Vec<Position>> = match direction {
            Direction::Forward => self
                .db()?
                .range(stream_key(stream, from.max(1))..stream_key(stream, Version::MAX))
                .map(position)
                .take_while(|p| p.as_ref().map_or(true, |p| *p <= head))
                .take(limit)
                .collect(),
            Direction::Backward => self
                .db()?
                .range(stream_key(stream, 1)..=stream_key(stream, from.min(Version::MAX - 1)))
                .rev()
                .map(position)
                .filter(|p| p.as_ref().map_or(true, |p| *p <= head))
                .take(limit)
                .collect(),
        };
        positions
    }

    /// Where the record at `position` lives.
    pub(crate) fn slot(&self, position: Position) -> Result<Option<Slot>> {
        if position == 0 || position > self.head() {
            return Ok(None);
        }
        let found = self
            .db()?
            .range(message_key(1)..=message_key(position))
            .next_back()
            .transpose()
            .map_err(failed)?;
        Ok(found.map(|(key, value)| Slot {
            sequence: u64_at(&value, 0),
            index: (position - u64_at(&key, 1)) as u32,
        }))
    }

    /// How many records the last message applied holds (0 without one).
    pub(crate) fn records_in_last_message(&self) -> Result<u64> {
        let last = self
            .db()?
            .range(message_key(1)..=message_key(self.head().max(1)))
            .next_back()
            .transpose()
            .map_err(failed)?;
        Ok(last.map_or(0, |(_, v)| u64_at(&v, 8)))
    }

    /// Checks and adds the records of message `sequence`: a message that fails leaves the
    /// index as it was.
    ///
    /// Written key by key: first the list of keys about to be written (`u`), then the
    /// keys, then the index's state (`t`), then `u` is removed. sled recovers from a crash
    /// to a prefix of the writes made, so a recovered state names only messages whose keys
    /// are all there; keys a crash left past it are removed at the next open from the
    /// list in `u`, and meanwhile ignored by every lookup (positions past the head). (One
    /// atomic batch would cost about 2.5 times as much per message, on the append's path.)
    pub(crate) fn apply(
        &mut self,
        sequence: u64,
        records: &[(StoredRecord, RecordedEvent)],
    ) -> Result<()> {
        let mut position = self.head();
        let mut tail = self.tail;
        let mut versions: HashMap<&StreamId, Version> = HashMap::new();
        let mut ids = HashSet::new();
        for (stored, record) in records {
            position += 1;
            let corrupt = |reason: String| Error::Corruption { position, reason };
            if record.position != position {
                return Err(corrupt(format!(
                    "message {sequence} holds position {} where {position} belongs",
                    record.position
                )));
            }
            if record.prev_hash != tail.hash {
                return Err(corrupt("the hash chain breaks here".into()));
            }
            let version = match versions.get(&record.stream) {
                Some(v) => *v,
                None => self.version(&record.stream)?,
            };
            if record.version != version + 1 {
                return Err(corrupt(format!("stream {} skips a version", record.stream)));
            }
            versions.insert(&record.stream, record.version);
            if !ids.insert(record.id) || self.position_of(&record.id)?.is_some() {
                return Err(corrupt(format!("event id {} appears twice", record.id)));
            }
            tail = Tail::after(stored, record);
        }
        let Some((_, first_record)) = records.first() else {
            return Err(Error::Corruption {
                position: self.head() + 1,
                reason: format!("message {sequence} holds no records"),
            });
        };
        let db = self.db()?;
        let mut keys: Vec<Vec<u8>> = Vec::with_capacity(records.len() * 2 + 1);
        for (_, record) in records {
            keys.push(id_key(&record.id).to_vec());
            keys.push(stream_key(&record.stream, record.version));
        }
        keys.push(message_key(first_record.position).to_vec());
        // First what is about to be written, so that a crash's leftovers can be undone.
        let mut undo = Vec::with_capacity(8 + keys.iter().map(|k| k.len() + 4).sum::<usize>());
        undo.extend_from_slice(&sequence.to_be_bytes());
        for key in &keys {
            undo.extend_from_slice(&(key.len() as u32).to_be_bytes());
            undo.extend_from_slice(key);
        }
        db.insert(UNDO, undo).map_err(failed)?;
        for (_, record) in records {
            let at = record.position.to_be_bytes();
            db.insert(id_key(&record.id), &at).map_err(failed)?;
            db.insert(stream_key(&record.stream, record.version), &at)
                .map_err(failed)?;
        }
        let mut message = [0u8; 16];
        message[..8].copy_from_slice(&sequence.to_be_bytes());
        message[8..].copy_from_slice(&(records.len() as u64).to_be_bytes());
        db.insert(message_key(first_record.position), &message)
            .map_err(failed)?;
        db.insert(META, encode_meta(&self.stream, sequence, &tail))
            .map_err(failed)?;
        db.remove(UNDO).map_err(failed)?;
        if self.versions.len() + versions.len() > VERSIONS_KEPT {
            self.versions.clear();
        }
        for (stream, version) in versions {
            self.versions.insert(stream.clone(), version);
        }
        self.last_sequence = sequence;
        self.tail = tail;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(
        tail: &mut Tail,
        stream: &StreamId,
        version: Version,
    ) -> Vec<(StoredRecord, RecordedEvent)> {
        let e = eventlog::NewEvent::new("t", "a", bytes::Bytes::from_static(b"x"));
        let sealed = tail.seal(stream, version, Timestamp::from_micros(1), &[e]);
        *tail = sealed.tail;
        sealed.records
    }

    #[test]
    fn what_an_interrupted_apply_wrote_is_removed_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let stream = StreamId::new("s").unwrap();
        let mut tail = Tail::EMPTY;
        let mut index = Index::open(Some(&path), "X", 1 << 20).unwrap();
        index.apply(1, &message(&mut tail, &stream, 0)).unwrap();
        // Message 2 as far as a crash let it get: its undo list and its keys, no state.
        let second = message(&mut tail, &stream, 1);
        let record = &second[0].1;
        let keys = [
            id_key(&record.id).to_vec(),
            stream_key(&stream, 2),
            message_key(2).to_vec(),
        ];
        let mut undo = 2u64.to_be_bytes().to_vec();
        for key in &keys {
            undo.extend_from_slice(&(key.len() as u32).to_be_bytes());
            undo.extend_from_slice(key);
        }
        let db = index.db().unwrap();
        db.insert(UNDO, undo).unwrap();
        for key in &keys {
            db.insert(key.as_slice(), &2u64.to_be_bytes()).unwrap();
        }
        index.close().unwrap();
        drop(index);
        let index = Index::open(Some(&path), "X", 1 << 20).unwrap();
        assert_eq!((index.last_sequence, index.head()), (1, 1));
        let db = index.db().unwrap();
        for key in &keys {
            assert!(db.get(key).unwrap().is_none(), "a leftover key remains");
        }
        assert!(db.get(UNDO).unwrap().is_none());
        assert_eq!(index.version(&stream).unwrap(), 1);
    }

    #[test]
    fn a_message_without_records_is_refused() {
        let mut index = Index::open(None, "X", 1 << 20).unwrap();
        let refused = index.apply(1, &[]).unwrap_err();
        assert!(
            matches!(&refused, Error::Corruption { position: 1, reason } if reason.contains("no records")),
            "{refused:?}"
        );
        assert_eq!(index.last_sequence, 0);
    }
}
