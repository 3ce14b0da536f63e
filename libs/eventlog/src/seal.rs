//! Turning an append's events into records, the same way on every backend: versions and
//! positions in order, one `recorded_at` for the append (never before the last record's),
//! each record encoded ([`crate::codec`]) and chained to the one before (its `prev_hash`
//! is the hash of the previous record's stored bytes).
//!
//! A backend keeps the [`Tail`] of its log, seals an append against it with
//! [`Tail::seal`], stores the records' bytes as they are, and moves its tail to
//! [`Sealed::tail`] once the append is applied.

use crate::codec;
use crate::types::{
    AppendResult, ChainHash, NewEvent, Position, RecordedEvent, StoredRecord, StreamId, Timestamp,
    Version,
};

/// Where a log ends: what the next record chains to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tail {
    /// The last record's position (0 for an empty log).
    pub position: Position,
    /// The last record's chain hash ([`ChainHash::GENESIS`] for an empty log).
    pub hash: ChainHash,
    /// The last record's `recorded_at`: the next one is never earlier.
    pub recorded_at: Timestamp,
}

impl Tail {
    /// The tail of an empty log.
    pub const EMPTY: Tail = Tail {
        position: 0,
        hash: ChainHash::GENESIS,
        recorded_at: Timestamp::from_micros(0),
    };

    /// The tail once `stored` (decoded as `record`) is the last record.
    pub fn after(stored: &StoredRecord, record: &RecordedEvent) -> Tail {
        Tail {
            position: record.position,
            hash: stored.hash(),
            recorded_at: record.recorded_at,
        }
    }

    /// The records of `events`, appended to `stream` after its version `version`, at the
    /// end of this log, recorded at `now` (or at the last record's time if the clock went
    /// back). `events` must not be empty (appends are validated first).
    pub fn seal(
        &self,
        stream: &StreamId,
        version: Version,
        now: Timestamp,
        events: &[NewEvent],
    ) -> Sealed {
        let recorded_at = now.max(self.recorded_at);
        let mut hash = self.hash;
        let records = events
            .iter()
            .enumerate()
            .map(|(i, event)| {
                let mut record = RecordedEvent {
                    id: event.id,
                    stream: stream.clone(),
                    version: version + 1 + i as u64,
                    position: self.position + 1 + i as u64,
                    event_type: event.event_type.clone(),
                    schema_version: event.schema_version,
                    recorded_at,
                    actor: event.actor.clone(),
                    correlation_id: event.correlation_id.clone(),
                    causation_id: event.causation_id.clone(),
                    payload: event.payload.clone(),
                    checksum: 0,
                    prev_hash: hash,
                };
                let (bytes, checksum) = codec::encode(&record);
                record.checksum = checksum;
                let stored = StoredRecord {
                    position: record.position,
                    bytes: bytes.into(),
                };
                hash = stored.hash();
                (stored, record)
            })
            .collect();
        Sealed {
            records,
            tail: Tail {
                position: self.position + events.len() as u64,
                hash,
                recorded_at,
            },
        }
    }
}

/// The records of one append, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Each record as stored (the bytes to write) and as read back, in order.
    pub records: Vec<(StoredRecord, RecordedEvent)>,
    /// The log's tail after these records.
    pub tail: Tail,
}

impl Sealed {
    /// What the append did, once stored.
    pub fn result(&self) -> AppendResult {
        let first = self.records.first().map(|(_, r)| r);
        let last = self.records.last().map(|(_, r)| r);
        AppendResult {
            first_version: first.map_or(0, |r| r.version),
            last_version: last.map_or(0, |r| r.version),
            first_position: first.map_or(self.tail.position + 1, |r| r.position),
            last_position: self.tail.position,
            deduplicated: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn events(n: usize) -> Vec<NewEvent> {
        (0..n)
            .map(|i| NewEvent::new("complaint.step", "user:a", Bytes::from(vec![i as u8; 10])))
            .collect()
    }

    #[test]
    fn each_record_chains_to_the_stored_bytes_before_it() {
        let stream = StreamId::new("complaint-1").unwrap();
        let first = Tail::EMPTY.seal(&stream, 0, Timestamp::from_micros(5), &events(2));
        let second = first
            .tail
            .seal(&stream, 2, Timestamp::from_micros(3), &events(3));
        let all: Vec<_> = first.records.iter().chain(&second.records).collect();
        let mut prev = ChainHash::GENESIS;
        for (i, (stored, record)) in all.iter().enumerate() {
            assert_eq!(record.position, i as u64 + 1);
            assert_eq!(record.version, i as u64 + 1);
            assert_eq!(record.prev_hash, prev);
            assert_eq!(&stored.decode().unwrap(), record);
            prev = stored.hash();
        }
        assert_eq!(second.tail.hash, prev);
        assert_eq!(second.tail.position, 5);
        // The clock went back: the second append keeps the first one's time.
        assert_eq!(second.tail.recorded_at, Timestamp::from_micros(5));
        let (stored, record) = second.records.last().unwrap();
        assert_eq!(Tail::after(stored, record), second.tail);
        assert_eq!(
            second.result(),
            AppendResult {
                first_version: 3,
                last_version: 5,
                first_position: 3,
                last_position: 5,
                deduplicated: false,
            }
        );
    }
}
