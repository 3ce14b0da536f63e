//! Key layout of the one sled tree that holds the log. One tree, so that one sled batch
//! (atomic across crashes) covers a record and its index entries.
//!
//! | prefix | key                                   | value                      |
//! |--------|---------------------------------------|----------------------------|
//! | `e`    | position (u64 BE)                     | the encoded record         |
//! | `s`    | stream len (u8), stream, version (BE) | position (u64 BE)          |
//! | `h`    | stream len (u8), stream               | stream version (u64 BE)    |
//! | `i`    | event id (16 bytes)                   | position (u64 BE)          |

use eventlog::{Position, StreamId, Version};
use uuid::Uuid;

pub const EVENT: u8 = b'e';
pub const STREAM: u8 = b's';

pub fn event(position: Position) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = EVENT;
    key[1..].copy_from_slice(&position.to_be_bytes());
    key
}

fn with_stream(prefix: u8, stream: &StreamId, extra: usize) -> Vec<u8> {
    let bytes = stream.as_str().as_bytes();
    let mut key = Vec::with_capacity(2 + bytes.len() + extra);
    key.push(prefix);
    // StreamId guarantees at most 200 bytes.
    key.push(bytes.len() as u8);
    key.extend_from_slice(bytes);
    key
}

pub fn stream_entry(stream: &StreamId, version: Version) -> Vec<u8> {
    let mut key = with_stream(STREAM, stream, 8);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

pub fn stream_head(stream: &StreamId) -> Vec<u8> {
    with_stream(b'h', stream, 0)
}

pub fn event_id(id: &Uuid) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[0] = b'i';
    key[1..].copy_from_slice(id.as_bytes());
    key
}

/// Reads a big-endian u64 from a key suffix or a value.
pub fn u64_at(bytes: &[u8], from: usize) -> Option<u64> {
    let slice = bytes.get(from..from + 8)?;
    Some(u64::from_be_bytes(slice.try_into().ok()?))
}
