//! A tampered or damaged store is reported as corruption at the right position when it is
//! opened with the full check (every record is checked then), and never served. Opened
//! the default way (from the index checkpoint the close wrote), the same damage is
//! reported at the same position, by the open or by the history check right after it,
//! and from then on every read and append is refused with it.
//!
//! A tail cut off cleanly (whole trailing chunks removed) looks like a shorter log: only a
//! digest held outside the store can prove it (the audit hash chain's job).
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
#![forbid(unsafe_code)]

use std::path::Path;

use bytes::Bytes;
use eventlog::{codec, Error, EventLog, RecordedEvent, StreamId};
use eventlog_sled::{OpenCheck, SledConfig, SledEventLog};

mod common;
use common::{append_event, chunk_key, one_record_chunk, only_record, tamper};

/// A log of 5 events on two streams, closed.
async fn make_log(path: &Path) {
    let log = SledEventLog::open(SledConfig::new(path)).unwrap();
    let (a, b) = (
        StreamId::new("complaint-a").unwrap(),
        StreamId::new("complaint-b").unwrap(),
    );
    for (i, s) in [&a, &b, &a, &a, &b].into_iter().enumerate() {
        append_event(&log, s, i, 300).await;
    }
    log.close().await.unwrap();
}

fn open_err(path: &Path) -> Error {
    let mut config = SledConfig::new(path);
    config.check_at_open = OpenCheck::Full;
    match SledEventLog::open(config) {
        Ok(_) => panic!("a tampered log opened without complaint"),
        Err(e) => e,
    }
}

/// Opens `path` the default way (from its index checkpoint): the damage found at open or
/// by the history check, which must then refuse reads and appends with it.
async fn checkpoint_err(path: &Path) -> Error {
    assert!(
        path.join("index-checkpoint").is_file(),
        "the close wrote no index checkpoint"
    );
    let log = match SledEventLog::open(SledConfig::new(path)) {
        Err(e) => return e,
        Ok(log) => log,
    };
    let Err(found) = log.history_checked().await else {
        panic!("a tampered log passed its history check");
    };
    let read = log
        .read_all(1, eventlog::Direction::Forward, 10)
        .await
        .unwrap_err();
    assert_eq!(read.to_string(), found.to_string(), "reads are refused");
    let stream = StreamId::new("complaint-a").unwrap();
    let appended = common::try_append(&log, &stream).await.unwrap_err();
    assert_eq!(
        appended.to_string(),
        found.to_string(),
        "appends are refused"
    );
    log.close().await.ok();
    found
}

fn position(e: &Error) -> u64 {
    match e {
        Error::Corruption { position, .. } => *position,
        other => panic!("not corruption: {other}"),
    }
}

/// Makes the test log, applies `change` to its raw store, and returns the error of opening
/// it (and of verifying it offline, which must agree).
async fn open_after(change: impl FnOnce(&sled::Db)) -> Error {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    make_log(&path).await;
    tamper(&path, change);
    let err = open_err(&path);
    let offline = SledEventLog::verify(&path).unwrap_err();
    assert_eq!(
        offline.to_string(),
        err.to_string(),
        "offline verification agrees"
    );
    let from_checkpoint = checkpoint_err(&path).await;
    assert_eq!(
        position(&from_checkpoint),
        position(&err),
        "{from_checkpoint} against {err}"
    );
    err
}

/// The record of a one-record chunk value.
fn record_in(value: &[u8]) -> RecordedEvent {
    let bytes = only_record(value);
    // The position is inside the record; try the ones the test log has.
    (1..=5)
        .find_map(|p| codec::decode(p, bytes.clone()).ok())
        .expect("a record")
}

#[tokio::test]
async fn a_flipped_byte_is_caught_at_its_position() {
    let err = open_after(|db| {
        let mut value = db.get(chunk_key(3)).unwrap().unwrap().to_vec();
        let last = value.len() - 1;
        value[last] ^= 0x01;
        db.insert(chunk_key(3), value).unwrap();
    })
    .await;
    assert!(
        matches!(err, Error::Corruption { position: 3, ref reason } if reason.contains("checksum")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_deleted_record_is_a_gap_at_its_position() {
    let err = open_after(|db| {
        db.remove(chunk_key(2)).unwrap();
    })
    .await;
    assert!(
        matches!(err, Error::Corruption { position: 2, ref reason } if reason.contains("missing")),
        "{err:?}"
    );
}

#[tokio::test]
async fn swapped_records_are_caught_at_the_first_of_them() {
    let err = open_after(|db| {
        let two = db.get(chunk_key(2)).unwrap().unwrap();
        let three = db.get(chunk_key(3)).unwrap().unwrap();
        db.insert(chunk_key(2), three).unwrap();
        db.insert(chunk_key(3), two).unwrap();
    })
    .await;
    assert!(
        matches!(err, Error::Corruption { position: 2, ref reason } if reason.contains("position 3")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_record_cut_short_is_caught_at_its_position() {
    let err = open_after(|db| {
        let value = db.get(chunk_key(4)).unwrap().unwrap();
        db.insert(chunk_key(4), &value[..value.len() - 10]).unwrap();
    })
    .await;
    assert!(
        matches!(err, Error::Corruption { position: 4, ref reason } if reason.contains("past the end")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_forged_record_with_a_valid_checksum_is_caught_by_the_sequence_checks() {
    let err = open_after(|db| {
        // Position 5 (complaint-b version 2) replaced by a copy of position 1's event,
        // re-encoded so that its checksum is right: the repeated event id gives it away.
        let replaced = record_in(&db.get(chunk_key(5)).unwrap().unwrap());
        let mut record = record_in(&db.get(chunk_key(1)).unwrap().unwrap());
        record.recorded_at = replaced.recorded_at;
        record.prev_hash = replaced.prev_hash;
        record.position = 5;
        record.stream = StreamId::new("complaint-b").unwrap();
        record.version = 2;
        db.insert(chunk_key(5), one_record_chunk(&record).0)
            .unwrap();
    })
    .await;
    assert!(
        matches!(err, Error::Corruption { position: 5, ref reason } if reason.contains("also at position 1")),
        "{err:?}"
    );

    let err = open_after(|db| {
        // Position 4 claims complaint-a version 5, skipping version 4.
        let mut record = record_in(&db.get(chunk_key(4)).unwrap().unwrap());
        record.version = 5;
        db.insert(chunk_key(4), one_record_chunk(&record).0)
            .unwrap();
    })
    .await;
    assert!(
        matches!(err, Error::Corruption { position: 4, ref reason } if reason.contains("jumps")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_changed_record_with_a_valid_checksum_is_caught_by_the_hash_chain() {
    let err = open_after(|db| {
        let mut record = record_in(&db.get(chunk_key(3)).unwrap().unwrap());
        record.payload = Bytes::from_static(b"a different story");
        db.insert(chunk_key(3), one_record_chunk(&record).0)
            .unwrap();
    })
    .await;
    assert!(
        matches!(err, Error::Corruption { position: 3, ref reason } if reason.contains("altered")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_intact_log_verifies_with_its_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    make_log(&path).await;
    let report = SledEventLog::verify(&path).unwrap();
    assert_eq!((report.events, report.streams), (5, 2));
    let log = SledEventLog::open(SledConfig::new(&path)).unwrap();
    let last = log.read_stored(5, 1).await.unwrap().pop().unwrap();
    assert_eq!(report.head_hash, last.hash());
}

/// Damage in the middle of a large chunk (3,000 records of one append) is reported at its
/// own position, and the intact log opens to the same head as it was written.
#[tokio::test]
async fn damage_deep_in_a_large_log_is_reported_at_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let log = SledEventLog::open(SledConfig::new(&path)).unwrap();
    let stream = StreamId::new("complaint-a").unwrap();
    // One append of 3,000 events: one chunk.
    let events = (0..3000)
        .map(|i| {
            eventlog::NewEvent::new("test.happened", "user:t", Bytes::from(format!("event {i}")))
        })
        .collect();
    log.append(&stream, eventlog::ExpectedVersion::Any, events)
        .await
        .unwrap();
    let head = eventlog::audit::Digest::of_log(&log).await.unwrap();
    log.close().await.unwrap();
    drop(log);
    let reopened = SledEventLog::open(SledConfig::new(&path)).unwrap();
    assert_eq!(
        eventlog::audit::Digest::of_log(&reopened).await.unwrap(),
        head
    );
    reopened.close().await.unwrap();
    drop(reopened);

    // Flip a byte of record 2,500 (in the second half of the batch).
    tamper(&path, |db| {
        let mut value = db.get(chunk_key(1)).unwrap().unwrap().to_vec();
        let mut offset = 4;
        for _ in 1..2500 {
            let len = u32::from_le_bytes(value[offset..offset + 4].try_into().unwrap()) as usize;
            offset += 4 + len;
        }
        let len = u32::from_le_bytes(value[offset..offset + 4].try_into().unwrap()) as usize;
        value[offset + 4 + len - 2] ^= 0x20;
        db.insert(chunk_key(1), value).unwrap();
    });
    assert_eq!(position(&open_err(&path)), 2500);
    assert_eq!(position(&checkpoint_err(&path).await), 2500);
}
