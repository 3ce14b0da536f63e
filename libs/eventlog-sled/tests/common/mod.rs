//! What the tests that tamper with a stored log share: the raw store's layout and small
//! test logs in which each append is its own commit, so record n is alone in the chunk
//! keyed n.

#![allow(dead_code)] // each test file uses some of these

use std::path::Path;

use bytes::Bytes;
use eventlog::{codec, ChainHash, EventLog, ExpectedVersion, NewEvent, RecordedEvent, StreamId};
use eventlog_sled::SledEventLog;

/// The sled key of the chunk whose first record is at `position`.
pub fn chunk_key(position: u64) -> [u8; 9] {
    let mut key = [b'c'; 9];
    key[1..].copy_from_slice(&position.to_be_bytes());
    key
}

/// Appends test event number `i` to `stream`, its payload padded with `pad` bytes.
pub async fn append_event(log: &SledEventLog, stream: &StreamId, i: usize, pad: usize) {
    let payload = Bytes::from(format!("event {i} {}", "x".repeat(pad)));
    log.append(
        stream,
        ExpectedVersion::Any,
        vec![NewEvent::new("test.happened", "user:t", payload)],
    )
    .await
    .unwrap();
}

/// Tries to append one small test event to `stream`: the result, for tests of a log
/// that must refuse it.
pub async fn try_append(
    log: &SledEventLog,
    stream: &StreamId,
) -> eventlog::Result<eventlog::AppendResult> {
    log.append(
        stream,
        ExpectedVersion::Any,
        vec![NewEvent::new("test.happened", "user:t", Bytes::from("x"))],
    )
    .await
}

/// Changes the raw store behind the log's back.
pub fn tamper(path: &Path, change: impl FnOnce(&sled::Db)) {
    let db = eventlog_sled::open_raw(path).unwrap();
    change(&db);
    db.flush().unwrap();
}

/// The stored bytes of the record in a one-record chunk value.
pub fn only_record(value: &[u8]) -> Bytes {
    let len = u32::from_le_bytes(value[4..8].try_into().unwrap()) as usize;
    Bytes::copy_from_slice(&value[8..8 + len])
}

/// A one-record chunk value holding `record` (encoded anew, so its checksum is right),
/// and the record's chain hash.
pub fn one_record_chunk(record: &RecordedEvent) -> (Vec<u8>, ChainHash) {
    let (bytes, _) = codec::encode(record);
    let mut value = 1u32.to_le_bytes().to_vec();
    value.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    value.extend_from_slice(&bytes);
    (value, ChainHash::of_record(&bytes))
}

/// Record `position` (alone in its chunk) with another payload, re-encoded so that its
/// checksum is right: only the hash chain shows the change.
pub fn alter_payload(db: &sled::Db, position: u64) {
    let value = db.get(chunk_key(position)).unwrap().unwrap();
    let mut record = codec::decode(position, only_record(&value)).unwrap();
    record.payload = Bytes::from_static(b"a different story");
    db.insert(chunk_key(position), one_record_chunk(&record).0)
        .unwrap();
}

/// Copies the directory `from` (a log's) to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
