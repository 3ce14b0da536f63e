//! The stored form of a record, shared by every backend.
//!
//! `[format: 1 byte = 1][crc32: 4 bytes LE][body: protobuf eventlog.v1.Envelope]`, where the
//! CRC-32 (IEEE) covers the format byte and the body. The envelope's `prev_hash` is the
//! BLAKE3 hash of the previous record's stored bytes ([`crate::ChainHash::of_record`]). Decoding checks the checksum, the
//! format, the fields and that the record is at the position it was read from: a record
//! that fails any check is [`Error::Corruption`] at that position, never served.
//! [`view`] reads and checks a record in place (what verification needs); [`decode`] is
//! the same reading, copied out into a [`RecordedEvent`].

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

/// A record's envelope read in place, checked exactly as [`decode`] checks it, without
/// copying a field: what verification needs of each record (its position, link and type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View<'a> {
    pub id: Uuid,
    pub stream: &'a str,
    pub version: u64,
    pub position: Position,
    pub event_type: &'a str,
    pub schema_version: u32,
    pub recorded_at: Timestamp,
    pub actor: &'a str,
    pub correlation_id: &'a str,
    pub causation_id: &'a str,
    pub payload: &'a [u8],
    pub checksum: u32,
    pub prev_hash: ChainHash,
}

/// Reads and checks the record stored at `position` in place (see [`View`]).
///
/// The envelope is read here rather than by prost's generated decoder, which copies every
/// string into a new allocation: at verification's rates that copying was half the cost
/// of checking a record (measured with the audit bench). The wire rules are prost's own
/// (its varint, key and skip functions): a later value of a field replaces an earlier one,
/// unknown fields are skipped, a wrong wire type or text that is not UTF-8 is refused.
pub fn view(position: Position, stored: &[u8]) -> Result<View<'_>> {
    use prost::encoding::{decode_key, decode_varint, skip_field, DecodeContext, WireType};

    let checksum = verify(position, stored)?;
    let corrupt = |reason: String| Error::Corruption { position, reason };
    let undecodable = |e: prost::DecodeError| corrupt(format!("undecodable envelope: {e}"));
    let mut buf = &stored[HEADER..];
    let (mut event_id, mut prev_hash, mut payload): (&[u8], &[u8], &[u8]) = (&[], &[], &[]);
    let mut texts: [&str; 5] = [""; 5];
    let (mut version, mut said_position, mut schema_version, mut recorded_at) = (0, 0, 0, 0);
    while !buf.is_empty() {
        let (tag, wire) = decode_key(&mut buf).map_err(undecodable)?;
        let expected = match tag {
            1 | 2 | 5 | 8..=12 => WireType::LengthDelimited,
            3 | 4 | 6 | 7 => WireType::Varint,
            _ => {
                skip_field(wire, tag, &mut buf, DecodeContext::default()).map_err(undecodable)?;
                continue;
            }
        };
        if wire != expected {
            return Err(corrupt(format!(
                "undecodable envelope: invalid wire type {wire:?} for field {tag}"
            )));
        }
        let value = decode_varint(&mut buf).map_err(undecodable)?;
        if expected == WireType::Varint {
            match tag {
                3 => version = value,
                4 => said_position = value,
                6 => schema_version = value as u32,
                _ => recorded_at = value as i64,
            }
            continue;
        }
        let len = usize::try_from(value)
            .ok()
            .filter(|len| *len <= buf.len())
            .ok_or_else(|| corrupt("undecodable envelope: a field runs past its end".into()))?;
        let (bytes, rest) = buf.split_at(len);
        buf = rest;
        let text = |bytes| {
            std::str::from_utf8(bytes).map_err(|_| {
                corrupt(format!(
                    "undecodable envelope: field {tag} is not valid UTF-8"
                ))
            })
        };
        match tag {
            1 => event_id = bytes,
            11 => payload = bytes,
            12 => prev_hash = bytes,
            2 => texts[0] = text(bytes)?,
            5 => texts[1] = text(bytes)?,
            8 => texts[2] = text(bytes)?,
            9 => texts[3] = text(bytes)?,
            _ => texts[4] = text(bytes)?,
        }
    }
    let [stream, event_type, actor, correlation_id, causation_id] = texts;
    if said_position != position {
        return Err(corrupt(format!(
            "record says position {said_position}, stored at {position}"
        )));
    }
    let id =
        Uuid::from_slice(event_id).map_err(|_| corrupt("event id is not 16 bytes".to_owned()))?;
    StreamId::check(stream).map_err(|e| corrupt(format!("bad stream id: {e}")))?;
    if version == 0 {
        return Err(corrupt("version 0".to_owned()));
    }
    let prev_hash = ChainHash::from_slice(prev_hash)
        .ok_or_else(|| corrupt("prev_hash is not 32 bytes".to_owned()))?;
    Ok(View {
        id,
        stream,
        version,
        position,
        event_type,
        schema_version,
        recorded_at: Timestamp::from_micros(recorded_at),
        actor,
        correlation_id,
        causation_id,
        payload,
        checksum,
        prev_hash,
    })
}

/// Decodes and checks the record stored at `position` (the checks of [`view`]).
pub fn decode(position: Position, stored: Bytes) -> Result<RecordedEvent> {
    let view = view(position, &stored)?;
    Ok(RecordedEvent {
        id: view.id,
        stream: StreamId::unchecked(view.stream.to_owned()),
        version: view.version,
        position,
        event_type: view.event_type.to_owned(),
        schema_version: view.schema_version,
        recorded_at: view.recorded_at,
        actor: view.actor.to_owned(),
        correlation_id: view.correlation_id.to_owned(),
        causation_id: view.causation_id.to_owned(),
        payload: stored.slice_ref(view.payload),
        checksum: view.checksum,
        prev_hash: view.prev_hash,
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

    /// The decode of earlier builds, with prost's generated decoder: what [`view`] must
    /// agree with on every input.
    fn prost_decode(position: Position, stored: Bytes) -> Option<RecordedEvent> {
        verify(position, &stored).ok()?;
        let e = Envelope::decode(stored.slice(HEADER..)).ok()?;
        (e.position == position && e.version != 0).then_some(())?;
        Some(RecordedEvent {
            id: Uuid::from_slice(&e.event_id).ok()?,
            stream: StreamId::new(e.stream_id).ok()?,
            version: e.version,
            position,
            event_type: e.event_type,
            schema_version: e.schema_version,
            recorded_at: Timestamp::from_micros(e.recorded_at_micros),
            actor: e.actor,
            correlation_id: e.correlation_id,
            causation_id: e.causation_id,
            payload: e.payload,
            checksum: u32::from_le_bytes([stored[1], stored[2], stored[3], stored[4]]),
            prev_hash: ChainHash::from_slice(&e.prev_hash)?,
        })
    }

    /// `body` as a stored record, with a checksum that passes (so the envelope is read).
    fn sealed(body: &[u8]) -> Bytes {
        let mut out = vec![FORMAT_V1, 0, 0, 0, 0];
        out.extend_from_slice(body);
        let sum = checksum_of(FORMAT_V1, body);
        out[1..HEADER].copy_from_slice(&sum.to_le_bytes());
        Bytes::from(out)
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), "[a-z-]{1,12}", ".{0,8}"]
    }

    proptest! {
        #[test]
        fn the_view_reads_what_prosts_decoder_reads(
            id in prop_oneof![Just(16usize), 0usize..20],
            hash in prop_oneof![Just(32usize), 0usize..34],
            stream in text(), event_type in text(), actor in text(),
            version in prop_oneof![Just(0u64), 1u64..5, any::<u64>()],
            schema_version in any::<u32>(), recorded_at in any::<i64>(),
            payload in proptest::collection::vec(any::<u8>(), 0..40),
            damage in 0usize..5, at in any::<usize>(), bit in 0u8..8,
        ) {
            let position = 7;
            let envelope = Envelope {
                event_id: vec![3; id].into(),
                stream_id: stream,
                version,
                position,
                event_type,
                schema_version,
                recorded_at_micros: recorded_at,
                actor,
                correlation_id: "c".into(),
                causation_id: String::new(),
                payload: payload.into(),
                prev_hash: vec![9; hash].into(),
            };
            let mut body = envelope.encode_to_vec();
            match damage {
                // A bit changed.
                1 if !body.is_empty() => { let i = at % body.len(); body[i] ^= 1 << bit; }
                // Cut short.
                2 => body.truncate(at % (body.len() + 1)),
                // Every field given twice: the later values win.
                3 => body.extend_from_slice(&Envelope { position, version: 1, ..Envelope::default() }.encode_to_vec()),
                // Unknown fields of each wire type, a group among them, before the rest.
                4 => body.splice(0..0, [0xa8, 0x06, 0x01, 0xb2, 0x06, 0x01, 0x00, 0xbb, 0x06, 0x08, 0x01, 0xbc, 0x06, 0xc5, 0x06, 1, 2, 3, 4]).for_each(drop),
                _ => {}
            }
            let stored = sealed(&body);
            let ours = decode(position, stored.clone()).ok();
            prop_assert_eq!(&ours, &prost_decode(position, stored.clone()));
            prop_assert_eq!(view(position, &stored).is_ok(), ours.is_some());
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
