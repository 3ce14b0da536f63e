//! Events as JSON, for auditors: the envelope, the chain hashes and the decoded payload.
//!
//! The payload is decoded with the stored-event schema (protobuf descriptors compiled into
//! the binary) and rendered with protobuf's canonical JSON mapping; a payload of a type
//! this build does not know is given as base64 under `payload_base64`.
//!
//! [`event_json_with`] is the reference rendering (a `serde_json::Value`, whose objects
//! print their keys sorted); [`event_line`] writes the same text directly (the crate's
//! `json` module), several times faster, and falls back to the reference for anything it
//! does not handle.

use std::io::Write as _;

use base64::Engine as _;
use eventlog::{ChainHash, RecordedEvent};
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{json, Value};

use crate::personal::KeyStore;
use crate::stored::Kind;

/// The protobuf message of an event type's payload, if known.
pub fn payload_message(event_type: &str) -> Option<&'static str> {
    Kind::of(event_type).map(Kind::payload_message)
}

thread_local! {
    /// This thread's copy of the descriptors. prost-reflect's descriptors share one
    /// reference count per pool, bumped at every field: threads rendering with one pool
    /// contend on it (measured: two threads rendered no faster than one).
    static LOCAL_POOL: DescriptorPool =
        DescriptorPool::decode(complaints_proto::FILE_DESCRIPTOR_SET)
            .expect("the compiled-in descriptors are valid");
}

/// The payload as JSON, if its type is known and it decodes.
pub fn payload_json(event_type: &str, payload: &[u8]) -> Option<Value> {
    let name = payload_message(event_type)?;
    LOCAL_POOL.with(|pool| {
        let descriptor = pool.get_message_by_name(name)?;
        let message = DynamicMessage::decode(descriptor, payload).ok()?;
        serde_json::to_value(&message).ok()
    })
}

fn rfc3339(t: eventlog::Timestamp) -> String {
    jiff::Timestamp::from_microsecond(t.as_micros())
        .map(|t| t.to_string())
        .unwrap_or_else(|_| t.as_micros().to_string())
}

/// Events as lines of an export (JSON objects, without the newline), rendered on every
/// core, in order: rendering is most of an export's time.
pub fn lines(events: &[(RecordedEvent, ChainHash)]) -> Vec<String> {
    eventlog::parallel::map_in_order(events, 256, |(record, hash)| {
        event_line(record, *hash, None)
    })
}

/// Writes `events` as lines of an export, each followed by a newline ([`lines`]).
pub fn write_lines(
    events: &[(RecordedEvent, ChainHash)],
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    for line in lines(events) {
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// One event as a line of an export: the text of [`event_json_with`]`(record, hash,
/// keys)`, written directly.
pub fn event_line(record: &RecordedEvent, hash: ChainHash, keys: Option<&dyn KeyStore>) -> String {
    direct_line(record, hash, keys)
        .unwrap_or_else(|| event_json_with(record, hash, keys).to_string())
}

/// [`event_line`] without the fallback: `None` where the reference must decide (public for
/// the tests that hold it to the reference).
pub fn direct_line(
    record: &RecordedEvent,
    hash: ChainHash,
    keys: Option<&dyn KeyStore>,
) -> Option<String> {
    let opened = opened(record, keys);
    let payload = opened.as_deref().unwrap_or(&record.payload);
    let mut body = Vec::with_capacity(payload.len() * 2 + 64);
    let effective = match payload_message(&record.event_type) {
        Some(name) => Some(crate::json::payload(name, payload, &mut body)?),
        None => None,
    };
    let mut out = Vec::with_capacity(body.len() + 640);
    // Writing into a Vec cannot fail: the results of the writes are ignored.
    fn string(out: &mut Vec<u8>, key: &str, value: &str) {
        out.extend_from_slice(key.as_bytes());
        let _ = serde_json::to_writer(&mut *out, value);
        out.push(b',');
    }
    // The keys in the order the reference prints them (sorted).
    out.push(b'{');
    string(&mut out, "\"actor\":", &record.actor);
    string(&mut out, "\"causation_id\":", &record.causation_id);
    string(&mut out, "\"correlation_id\":", &record.correlation_id);
    if let Some(m) = effective.flatten() {
        string(
            &mut out,
            "\"effective_at\":",
            &rfc3339(eventlog::Timestamp::from_micros(m)),
        );
    }
    let mut id = uuid::Uuid::encode_buffer();
    string(
        &mut out,
        "\"event_id\":",
        record.id.hyphenated().encode_lower(&mut id),
    );
    string(&mut out, "\"event_type\":", &record.event_type);
    out.extend_from_slice(b"\"hash\":");
    hex(&mut out, &hash);
    if effective.is_some() {
        out.extend_from_slice(b",\"payload\":");
        out.extend_from_slice(&body);
    } else {
        let mut encoded = String::new();
        base64::engine::general_purpose::STANDARD.encode_string(payload, &mut encoded);
        out.extend_from_slice(b",\"payload_base64\":\"");
        out.extend_from_slice(encoded.as_bytes());
        out.push(b'"');
    }
    let _ = write!(out, ",\"position\":{},\"prev_hash\":", record.position);
    hex(&mut out, &record.prev_hash);
    out.push(b',');
    string(&mut out, "\"recorded_at\":", &rfc3339(record.recorded_at));
    let _ = write!(out, "\"schema_version\":{},", record.schema_version);
    string(&mut out, "\"stream_id\":", record.stream.as_str());
    let _ = write!(out, "\"version\":{}}}", record.version);
    String::from_utf8(out).ok()
}

/// A chain hash as a JSON string of lowercase hex.
fn hex(out: &mut Vec<u8>, hash: &ChainHash) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for b in hash.0 {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
    out.push(b'"');
}

/// The payload with its personal fields opened, when `keys` are given and it has any.
fn opened(record: &RecordedEvent, keys: Option<&dyn KeyStore>) -> Option<Vec<u8>> {
    keys.filter(|_| Kind::of(&record.event_type) == Some(Kind::Complaint))
        .and_then(|keys| crate::codec::opened_payload(&record.payload, keys))
}

/// One event as a JSON object (one line of an export).
pub fn event_json(record: &RecordedEvent, hash: ChainHash) -> Value {
    event_json_with(record, hash, None)
}

/// [`event_json`], with personal fields opened with `keys` when given (for callers
/// allowed to see personal data); without, they stay sealed (ciphertext).
pub fn event_json_with(
    record: &RecordedEvent,
    hash: ChainHash,
    keys: Option<&dyn KeyStore>,
) -> Value {
    let mut out = json!({
        "position": record.position,
        "stream_id": record.stream.as_str(),
        "version": record.version,
        "event_id": record.id.to_string(),
        "event_type": record.event_type,
        "schema_version": record.schema_version,
        "recorded_at": rfc3339(record.recorded_at),
        "actor": record.actor,
        "correlation_id": record.correlation_id,
        "causation_id": record.causation_id,
        "hash": hash.to_hex(),
        "prev_hash": record.prev_hash.to_hex(),
    });
    let opened = opened(record, keys);
    let payload = opened.as_deref().unwrap_or(&record.payload);
    match payload_json(&record.event_type, payload) {
        Some(payload) => {
            // A step that happened before it was recorded: when, beside `recorded_at`.
            let effective = payload["effectiveAtMicros"]
                .as_str()
                .and_then(|m| m.parse::<i64>().ok());
            if let Some(m) = effective {
                out["effective_at"] = Value::String(rfc3339(eventlog::Timestamp::from_micros(m)));
            }
            out["payload"] = payload;
        }
        None => {
            out["payload_base64"] =
                Value::String(base64::engine::general_purpose::STANDARD.encode(&record.payload));
        }
    }
    out
}
