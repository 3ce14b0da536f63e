//! Checking a stored log: every record's checksum and position, gapless positions, gapless
//! stream versions, non-decreasing `recorded_at`, and stream heads that match the records.

use std::collections::HashMap;

use bytes::Bytes;
use eventlog::{codec, Error, Position, Result, StreamId, Timestamp, Version};

use crate::{keys, storage};

/// The last record of a log (position 0 when it is empty).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tail {
    pub position: Position,
    pub recorded_at: Timestamp,
}

/// What a full check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked; also the last position.
    pub events: u64,
    /// Streams seen.
    pub streams: u64,
    pub(crate) tail_recorded_at: Timestamp,
}

impl VerifyReport {
    pub(crate) fn tail(&self) -> Tail {
        Tail {
            position: self.events,
            recorded_at: self.tail_recorded_at,
        }
    }
}

pub(crate) fn verify_tree(tree: &sled::Db) -> Result<VerifyReport> {
    let mut expected: Position = 1;
    let mut versions: HashMap<StreamId, Version> = HashMap::new();
    let mut last_at = Timestamp::from_micros(i64::MIN);
    for entry in tree.scan_prefix([keys::EVENT]) {
        let (key, value) = entry.map_err(storage)?;
        let position = keys::u64_at(&key, 1).unwrap_or(0);
        if position != expected {
            return Err(Error::Corruption {
                position: expected,
                reason: format!("missing record (next stored is {position})"),
            });
        }
        let record = codec::decode(position, Bytes::copy_from_slice(&value))?;
        let version = versions.entry(record.stream.clone()).or_insert(0);
        if record.version != *version + 1 {
            return Err(Error::Corruption {
                position,
                reason: format!(
                    "stream {} jumps from version {} to {}",
                    record.stream, version, record.version
                ),
            });
        }
        *version = record.version;
        if record.recorded_at < last_at {
            return Err(Error::Corruption {
                position,
                reason: "recorded_at goes backwards".into(),
            });
        }
        last_at = record.recorded_at;
        expected += 1;
    }
    let mut heads = 0usize;
    for entry in tree.scan_prefix([b'h']) {
        let (key, value) = entry.map_err(storage)?;
        heads += 1;
        let name = key
            .get(2..)
            .and_then(|n| std::str::from_utf8(n).ok())
            .unwrap_or("");
        let head = keys::u64_at(&value, 0);
        let stored = StreamId::new(name)
            .ok()
            .and_then(|s| versions.get(&s).copied());
        if head.is_none() || head != stored {
            return Err(Error::Corruption {
                position: expected - 1,
                reason: format!("head of stream {name} is {head:?}, its records end at {stored:?}"),
            });
        }
    }
    if heads != versions.len() {
        return Err(Error::Corruption {
            position: expected - 1,
            reason: format!(
                "{} streams have records but {heads} have heads",
                versions.len()
            ),
        });
    }
    Ok(VerifyReport {
        events: expected - 1,
        streams: versions.len() as u64,
        tail_recorded_at: if expected == 1 {
            Timestamp::default()
        } else {
            last_at
        },
    })
}

/// Reads and checks only the last record.
pub(crate) fn read_tail(tree: &sled::Db) -> Result<Tail> {
    match tree.scan_prefix([keys::EVENT]).next_back() {
        None => Ok(Tail::default()),
        Some(entry) => {
            let (key, value) = entry.map_err(storage)?;
            let position = keys::u64_at(&key, 1).unwrap_or(0);
            let record = codec::decode(position, Bytes::copy_from_slice(&value))?;
            Ok(Tail {
                position,
                recorded_at: record.recorded_at,
            })
        }
    }
}
