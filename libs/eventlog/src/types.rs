//! What goes into the log and what comes out.

use std::fmt;

use bytes::Bytes;
use uuid::Uuid;

use crate::error::{Error, Result};

/// A stream's version: the number of events in it, and the version of its last event.
/// The first event of a stream has version 1; 0 means "no events yet".
pub type Version = u64;

/// A position in the global log. The first event has position 1; 0 means "before the start".
pub type Position = u64;

/// Longest stream id, in bytes.
pub const MAX_STREAM_ID_BYTES: usize = 200;

/// The id of a stream: 1 to 200 bytes of printable UTF-8 with no whitespace,
/// e.g. `complaint-0192f2f0-...`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(String);

impl StreamId {
    /// Validates and wraps a stream id.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        Self::check(&id)?;
        Ok(Self(id))
    }

    /// Whether `id` is a valid stream id (what [`StreamId::new`] checks).
    pub fn check(id: &str) -> Result<()> {
        if id.is_empty() {
            return Err(Error::invalid("stream_id", "must not be empty"));
        }
        if id.len() > MAX_STREAM_ID_BYTES {
            return Err(Error::invalid(
                "stream_id",
                format!("must be at most {MAX_STREAM_ID_BYTES} bytes"),
            ));
        }
        if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Error::invalid(
                "stream_id",
                "must not contain whitespace or control characters",
            ));
        }
        Ok(())
    }

    /// A stream id [`StreamId::check`] has accepted.
    pub(crate) fn unchecked(id: String) -> Self {
        Self(id)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Maps keyed by stream can be looked up by the id's text (the derived `Hash` and `Eq`
/// are the text's own).
impl std::borrow::Borrow<str> for StreamId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The version a stream must be at for an append to go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version.
    Any,
    /// The stream must have no events.
    NoStream,
    /// The stream's last event must have exactly this version.
    Exact(Version),
}

impl ExpectedVersion {
    /// Whether a stream at `actual` satisfies this expectation.
    pub fn admits(self, actual: Version) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(v) => actual == v,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(v) => write!(f, "{v}"),
        }
    }
}

/// Which way to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// A point in time: microseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From microseconds since the Unix epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }
}

/// An event to append. The log adds the stream, version, position and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Unique id; appending the same id again is idempotent.
    pub id: Uuid,
    /// Event type, e.g. `complaint.registered`.
    pub event_type: String,
    /// Version of the payload schema for this type.
    pub schema_version: u32,
    /// Who caused the event.
    pub actor: String,
    /// Groups the events of one business operation (may be empty).
    pub correlation_id: String,
    /// The event or command that caused this one (may be empty).
    pub causation_id: String,
    /// The payload, opaque to the log.
    pub payload: Bytes,
}

impl NewEvent {
    /// An event with a fresh id, schema version 1 and no correlation or causation.
    pub fn new(event_type: impl Into<String>, actor: impl Into<String>, payload: Bytes) -> Self {
        Self {
            id: Uuid::new_v4(),
            event_type: event_type.into(),
            schema_version: 1,
            actor: actor.into(),
            correlation_id: String::new(),
            causation_id: String::new(),
            payload,
        }
    }
}

/// An event as stored in the log: the envelope and the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    pub id: Uuid,
    pub stream: StreamId,
    pub version: Version,
    pub position: Position,
    pub event_type: String,
    pub schema_version: u32,
    /// When the log recorded it (from the log's injected clock); non-decreasing in
    /// global order.
    pub recorded_at: Timestamp,
    pub actor: String,
    pub correlation_id: String,
    pub causation_id: String,
    pub payload: Bytes,
    /// CRC-32 of the stored envelope bytes, checked on every read.
    pub checksum: u32,
    /// The hash of the record before this one ([`ChainHash::GENESIS`] at position 1).
    pub prev_hash: ChainHash,
}

impl RecordedEvent {
    /// Whether this stored event carries the same content as `new` in `stream`: what an
    /// idempotent retry must match.
    pub fn same_content(&self, stream: &StreamId, new: &NewEvent) -> bool {
        self.id == new.id
            && &self.stream == stream
            && self.event_type == new.event_type
            && self.schema_version == new.schema_version
            && self.actor == new.actor
            && self.correlation_id == new.correlation_id
            && self.causation_id == new.causation_id
            && self.payload == new.payload
    }
}

/// A link of the log's hash chain: the BLAKE3 hash of one record's stored bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// What the first record commits to: 32 zero bytes.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    /// The hash of a record's stored bytes.
    pub fn of_record(stored: &[u8]) -> Self {
        Self(*blake3::hash(stored).as_bytes())
    }

    /// Lower-case hexadecimal, 64 characters.
    pub fn to_hex(&self) -> String {
        use std::fmt::Write;
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// Parses 64 hexadecimal characters.
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(out))
    }

    /// From exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        Some(Self(bytes.try_into().ok()?))
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", self.to_hex())
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A record exactly as stored, for auditing: its bytes are what the hash chain covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Where the backend found it (checked against the record's own position on decode).
    pub position: Position,
    /// The stored bytes (see [`crate::codec`]).
    pub bytes: Bytes,
}

impl StoredRecord {
    /// The chain hash of this record: what the next record's `prev_hash` must be.
    pub fn hash(&self) -> ChainHash {
        ChainHash::of_record(&self.bytes)
    }

    /// Decodes and checks the record (checksum, format, position).
    pub fn decode(&self) -> Result<RecordedEvent> {
        crate::codec::decode(self.position, self.bytes.clone())
    }
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendResult {
    /// Version of the first appended event.
    pub first_version: Version,
    /// Version of the last appended event: the stream's version after the append.
    pub last_version: Version,
    /// Global position of the first appended event.
    pub first_position: Position,
    /// Global position of the last appended event.
    pub last_position: Position,
    /// True when every event had been appended before: nothing was written.
    pub deduplicated: bool,
}
