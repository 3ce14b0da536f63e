//! The stored form of a record, shared by every backend.
//!
//! `[format: 1 byte = 1][crc32: 4 bytes LE][body: protobuf eventlog.v1.Envelope]`, where the
//! CRC-32 (IEEE) covers the format byte and the body. The envelope's `prev_hash` is the
//! BLAKE3 hash of the previous record's stored bytes ([`crate::ChainHash::of_record`]). Decoding checks the checksum, the
//! format, the fields and that the record is at the position it was read from: a record
//! that fails any check is [`Error::Corruption`] at that position, never served.

use bytes::Bytes;
use complaints_proto::eventlog::v1::Envelope;
use prost::Message;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::types::{ChainHash, Position, RecordedEvent, StreamId, Timestamp};

/// The only format written so far.
pub const FORMAT_V1: u8 = 1;
const HEADER: usize = 5;

/// Encodes a record; `record.checksum` is ignored and the stored one computed. Returns
/// the bytes and the checksum.
pub fn encode(record: &RecordedEvent) -> (Vec<u8>, u32) {
    let envelope = Envelope {
        event_id: Bytes::copy_from_slice(record.id.as_bytes()),
        stream_id: record.stream.as_str().to_owned(),
        version: record.version,
        position: record.position,
        event_type: record.event_type.clone(),
        schema_version: record.schema_version,
        recorded_at_micros: record.recorded_at.as_micros(),
        actor: record.actor.clone(),
        correlation_id: record.correlation_id.clone(),
        causation_id: record.causation_id.clone(),
        payload: record.payload.clone(),
        prev_hash: Bytes::copy_from_slice(&record.prev_hash.0),
    };
    let mut out = Vec::with_capacity(HEADER + envelope.encoded_len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&[0; 4]);
    envelope
        .encode(&mut out)
        .expect("a Vec grows to fit any message");
    let checksum = checksum_of(FORMAT_V1, &out[HEADER..]);
    out[1..HEADER].copy_from_slice(&checksum.to_le_bytes());
    (out, checksum)
}

fn checksum_of(format: u8, body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[format]);
    hasher.update(body);
    hasher.finalize()
}

/// Checks the stored bytes' header and checksum without decoding the body.
pub fn verify(position: Position, stored: &[u8]) -> Result<u32> {
    let corrupt = |reason: &str| Error::Corruption {
        position,
        reason: reason.to_owned(),
    };
    if stored.len() < HEADER {
        return Err(corrupt("record shorter than its header"));
    }
    if stored[0] != FORMAT_V1 {
        return Err(corrupt(&format!("unknown record format {}", stored[0])));
    }
    let stored_sum = u32::from_le_bytes([stored[1], stored[2], stored[3], stored[4]]);
    if checksum_of(stored[0], &stored[HEADER..]) != stored_sum {
        return Err(corrupt("checksum mismatch"));
    }
    Ok(stored_sum)
}

/// Decodes and checks the record stored at `position`.
pub fn decode(position: Position, stored: Bytes) -> Result<RecordedEvent> {
    let checksum = verify(position, &stored)?;
    let corrupt = |reason: String| Error::Corruption { position, reason };
    let envelope = Envelope::decode(stored.slice(HEADER..))
        .map_err(|e| corrupt(format!("undecodable envelope: {e}")))?;
    if envelope.position != position {
        return Err(corrupt(format!(
            "record says position {}, stored at {position}",
            envelope.position
        )));
    }
    let id = Uuid::from_slice(&envelope.event_id)
        .map_err(|_| corrupt("event id is not 16 bytes".to_owned()))?;
    let stream =
        StreamId::new(envelope.stream_id).map_err(|e| corrupt(format!("bad stream id: {e}")))?;
    if envelope.version == 0 {
        return Err(corrupt("version 0".to_owned()));
    }
    let prev_hash = ChainHash::from_slice(&envelope.prev_hash)
        .ok_or_else(|| corrupt("prev_hash is not 32 bytes".to_owned()))?;
    Ok(RecordedEvent {
        id,
        stream,
        version: envelope.version,
        position,
        event_type: envelope.event_type,
        schema_version: envelope.schema_version,
        recorded_at: Timestamp::from_micros(envelope.recorded_at_micros),
        actor: envelope.actor,
        correlation_id: envelope.correlation_id,
        causation_id: envelope.causation_id,
        payload: envelope.payload,
        checksum,
        prev_hash,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn record(payload: Vec<u8>, position: Position) -> RecordedEvent {
        RecordedEvent {
            id: Uuid::from_u128(0x1234),
            stream: StreamId::new("complaint-1").unwrap(),
            version: 3,
            position,
            event_type: "complaint.registered".into(),
            schema_version: 2,
            recorded_at: Timestamp::from_micros(1_767_225_600_000_000),
            actor: "user:alice".into(),
            correlation_id: "req-1".into(),
            causation_id: "cmd-1".into(),
            payload: Bytes::from(payload),
            checksum: 0,
            prev_hash: ChainHash([9; 32]),
        }
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(payload in proptest::collection::vec(any::<u8>(), 0..512), position in 1u64..u64::MAX) {
            let original = record(payload, position);
            let (bytes, checksum) = encode(&original);
            let decoded = decode(position, Bytes::from(bytes)).unwrap();
            prop_assert_eq!(decoded, RecordedEvent { checksum, ..original });
        }

        #[test]
        fn any_flipped_bit_is_corruption(index in 0usize..400, bit in 0u8..8) {
            let (mut bytes, _) = encode(&record(vec![7; 300], 9));
            let index = index % bytes.len();
            bytes[index] ^= 1 << bit;
            let err = decode(9, Bytes::from(bytes)).unwrap_err();
            prop_assert!(matches!(err, Error::Corruption { position: 9, .. }), "{err:?}");
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(1, Bytes::from(bytes));
        }
    }

    #[test]
    fn a_record_read_from_another_position_is_corruption() {
        let (bytes, _) = encode(&record(vec![1, 2, 3], 5));
        let err = decode(6, Bytes::from(bytes)).unwrap_err();
        assert!(
            matches!(err, Error::Corruption { position: 6, ref reason } if reason.contains("position 5")),
            "{err:?}"
        );
    }
}
