//! Layout of the sled tree that holds the log.
//!
//! Records are stored in **chunks**: one sled value holds the records of one or more whole
//! appends, keyed by `c` + the position of its first record (u64 big-endian). One sled
//! insert is atomic across crashes, and an append never spans two chunks, so an append is
//! all or nothing. Value: `[count: u32 LE]` then per record `[len: u32 LE][record]`, each
//! record in the codec's checksummed form.
//!
//! Indexes (event id -> position, stream -> positions) are kept in memory and rebuilt from
//! the records on open (see `index.rs`): sled 0.34 costs several microseconds per key on
//! small machines, and one key per event would cap durable appends far below the target.

use bytes::Bytes;
use eventlog::{codec, Error, Position, RecordedEvent, Result, StoredRecord};

pub const CHUNK: u8 = b'c';
/// Present once the log keeps a witness of its durable head (`witness.rs`): from then on
/// a missing witness file is damage, not an older layout. Value: the head when it began.
pub const WITNESSED: &[u8] = b"m:witnessed";

pub fn chunk(first: Position) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = CHUNK;
    key[1..].copy_from_slice(&first.to_be_bytes());
    key
}

/// The first position of the chunk stored under `key`.
pub fn chunk_first(key: &[u8]) -> Option<Position> {
    if key.len() != 9 || key[0] != CHUNK {
        return None;
    }
    Some(u64::from_be_bytes(key[1..].try_into().ok()?))
}

/// Builds a chunk value.
#[derive(Default)]
pub struct ChunkBuilder {
    first: Option<Position>,
    count: u32,
    bytes: Vec<u8>,
}

impl ChunkBuilder {
    pub fn push(&mut self, position: Position, record: &[u8]) {
        if self.first.is_none() {
            self.first = Some(position);
            self.bytes.extend_from_slice(&[0; 4]);
        }
        self.count += 1;
        self.bytes
            .extend_from_slice(&(record.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(record);
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The key and value of the chunk, if it holds anything; resets the builder.
    pub fn take(&mut self) -> Option<([u8; 9], Vec<u8>)> {
        let first = self.first.take()?;
        let mut bytes = std::mem::take(&mut self.bytes);
        bytes[..4].copy_from_slice(&self.count.to_le_bytes());
        self.count = 0;
        Some((chunk(first), bytes))
    }
}

/// The records of a stored chunk whose first record is at `first`, decoded and checked.
pub struct ChunkRecords {
    /// sled's value, shared (not copied); each record is copied out on its own.
    value: sled::IVec,
    next_position: Position,
    remaining: u32,
    offset: usize,
}

impl ChunkRecords {
    pub fn new(first: Position, value: sled::IVec) -> Result<Self> {
        let count = value
            .get(..4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .ok_or_else(|| Error::Corruption {
                position: first,
                reason: "chunk shorter than its header".into(),
            })?;
        Ok(Self {
            value,
            next_position: first,
            remaining: count,
            offset: 4,
        })
    }

    /// Position of the record after the last one.
    pub fn end(&self) -> Position {
        self.next_position + u64::from(self.remaining)
    }

    /// Steps over the next record without decoding it.
    pub fn skip_record(&mut self) -> Result<()> {
        self.raw().map(|_| ())
    }

    fn raw(&mut self) -> Result<(Position, Bytes)> {
        let position = self.next_position;
        let corrupt = |reason: &str| Error::Corruption {
            position,
            reason: reason.to_owned(),
        };
        let header = self
            .value
            .get(self.offset..self.offset + 4)
            .ok_or_else(|| corrupt("chunk ends before its records do"))?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let start = self.offset + 4;
        if start + len > self.value.len() {
            return Err(corrupt("record runs past the end of its chunk"));
        }
        self.offset = start + len;
        self.remaining -= 1;
        self.next_position += 1;
        Ok((
            position,
            Bytes::copy_from_slice(&self.value[start..start + len]),
        ))
    }
}

impl ChunkRecords {
    /// The next record as stored, not decoded (the trailing-bytes check still applies).
    pub fn next_stored(&mut self) -> Option<Result<StoredRecord>> {
        if self.remaining == 0 {
            if self.offset == self.value.len() {
                return None;
            }
            self.offset = self.value.len();
            return Some(Err(Error::Corruption {
                position: self.next_position.saturating_sub(1),
                reason: "bytes after the last record of a chunk".into(),
            }));
        }
        Some(
            self.raw()
                .map(|(position, bytes)| StoredRecord { position, bytes }),
        )
    }
}

impl Iterator for ChunkRecords {
    type Item = Result<RecordedEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_stored()
            .map(|stored| stored.and_then(|s| codec::decode(s.position, s.bytes)))
    }
}
