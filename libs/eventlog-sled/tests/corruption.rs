//! A tampered or damaged store is reported as corruption at the right position, on open
//! and on read, and never served.

use std::path::Path;

use bytes::Bytes;
use eventlog::{Direction, Error, EventLog, ExpectedVersion, NewEvent, StreamId};
use eventlog_sled::{SledConfig, SledEventLog};

fn event_key(position: u64) -> [u8; 9] {
    let mut key = [b'e'; 9];
    key[1..].copy_from_slice(&position.to_be_bytes());
    key
}

/// A log of 5 events on two streams, closed.
async fn make_log(path: &Path) {
    let log = SledEventLog::open(SledConfig::new(path)).unwrap();
    let (a, b) = (
        StreamId::new("complaint-a").unwrap(),
        StreamId::new("complaint-b").unwrap(),
    );
    for (i, s) in [&a, &b, &a, &a, &b].into_iter().enumerate() {
        let payload = Bytes::from(format!("event {i} {}", "x".repeat(300)));
        log.append(
            s,
            ExpectedVersion::Any,
            vec![NewEvent::new("test.happened", "user:t", payload)],
        )
        .await
        .unwrap();
    }
    log.close().await.unwrap();
}

/// Changes the raw store behind the log's back.
fn tamper(path: &Path, change: impl FnOnce(&sled::Db)) {
    let db = sled::open(path).unwrap();
    change(&db);
    db.flush().unwrap();
}

fn open_err(path: &Path) -> Error {
    match SledEventLog::open(SledConfig::new(path)) {
        Ok(_) => panic!("a tampered log opened without complaint"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_flipped_byte_is_caught_at_its_position_on_open_and_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    make_log(&path).await;
    tamper(&path, |db| {
        let mut value = db.get(event_key(3)).unwrap().unwrap().to_vec();
        let last = value.len() - 1;
        value[last] ^= 0x01;
        db.insert(event_key(3), value).unwrap();
    });
    let err = open_err(&path);
    assert!(
        matches!(err, Error::Corruption { position: 3, ref reason } if reason.contains("checksum")),
        "{err:?}"
    );
    assert!(matches!(
        SledEventLog::verify(&path),
        Err(Error::Corruption { position: 3, .. })
    ));

    // Without the check on open, reads still refuse to serve the record.
    let config = SledConfig {
        verify_on_open: false,
        ..SledConfig::new(&path)
    };
    let log = SledEventLog::open(config).unwrap();
    let page = log.read_all(1, Direction::Forward, 2).await.unwrap();
    assert_eq!(page.len(), 2, "records before the damage are served");
    let err = log.read_all(1, Direction::Forward, 10).await.unwrap_err();
    assert!(
        matches!(err, Error::Corruption { position: 3, .. }),
        "{err:?}"
    );
    let a = StreamId::new("complaint-a").unwrap();
    let err = log
        .read_stream(&a, 1, Direction::Forward, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Corruption { position: 3, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_deleted_record_is_a_gap_at_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    make_log(&path).await;
    tamper(&path, |db| {
        db.remove(event_key(2)).unwrap();
    });
    let err = open_err(&path);
    assert!(
        matches!(err, Error::Corruption { position: 2, ref reason } if reason.contains("missing")),
        "{err:?}"
    );

    let config = SledConfig {
        verify_on_open: false,
        ..SledConfig::new(&path)
    };
    let log = SledEventLog::open(config).unwrap();
    let err = log.read_all(1, Direction::Forward, 10).await.unwrap_err();
    assert!(
        matches!(err, Error::Corruption { position: 2, .. }),
        "{err:?}"
    );
    let err = log.read_all(5, Direction::Backward, 10).await.unwrap_err();
    assert!(
        matches!(err, Error::Corruption { position: 2, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn swapped_records_are_caught_at_the_first_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    make_log(&path).await;
    tamper(&path, |db| {
        let two = db.get(event_key(2)).unwrap().unwrap();
        let three = db.get(event_key(3)).unwrap().unwrap();
        db.insert(event_key(2), three).unwrap();
        db.insert(event_key(3), two).unwrap();
    });
    let err = open_err(&path);
    assert!(
        matches!(err, Error::Corruption { position: 2, ref reason } if reason.contains("position 3")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_truncated_tail_is_caught_by_the_stream_heads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    make_log(&path).await;
    tamper(&path, |db| {
        db.remove(event_key(5)).unwrap();
    });
    let err = open_err(&path);
    assert!(
        matches!(err, Error::Corruption { position: 4, ref reason } if reason.contains("complaint-b")),
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
}
