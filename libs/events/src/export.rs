//! Events as JSON, for auditors: the envelope, the chain hashes and the decoded payload.
//!
//! The payload is decoded with the stored-event schema (protobuf descriptors compiled into
//! the binary) and rendered with protobuf's canonical JSON mapping; a payload of a type
//! this build does not know is given as base64 under `payload_base64`.

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
        event_json(record, *hash).to_string()
    })
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
    let opened = keys
        .filter(|_| Kind::of(&record.event_type) == Some(Kind::Complaint))
        .and_then(|keys| crate::codec::opened_payload(&record.payload, keys));
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
