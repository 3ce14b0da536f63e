//! The index checkpoint: an open loads the indexes from it and reads and checks only the
//! records after it; the history before it is checked right after the open; a checkpoint
//! that is damaged or belongs to another log is set aside and every record is checked.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
#![forbid(unsafe_code)]

mod common;

use std::path::Path;
use std::time::Duration;

use eventlog::{Direction, Error, EventLog, ExpectedVersion, NewEvent, StoredRecord, StreamId};
use eventlog_sled::{HistoryCheck, OpenCheck, SledConfig, SledEventLog};

const CHECKPOINT: &str = "index-checkpoint";

fn stream(i: usize) -> StreamId {
    StreamId::new(format!("complaint-{}", i % 13)).unwrap()
}

async fn fill(log: &SledEventLog, from: usize, to: usize) {
    for i in from..to {
        common::append_event(log, &stream(i), i, 100).await;
    }
}

/// Everything the log answers: every stored record, every stream forward and backward,
/// and a retry of an old append (idempotency needs the id index).
async fn answers(log: &SledEventLog) -> (Vec<StoredRecord>, Vec<String>) {
    let head = log.head().await.unwrap();
    let stored = log.read_stored(1, head as usize + 1).await.unwrap();
    let mut streams = Vec::new();
    for i in 0..14 {
        let s = stream(i);
        let forward = log
            .read_stream(&s, 1, Direction::Forward, usize::MAX)
            .await
            .unwrap();
        let backward = log
            .read_stream(&s, u64::MAX, Direction::Backward, 3)
            .await
            .unwrap();
        streams.push(format!(
            "{s} v{} {:?} {:?}",
            log.stream_version(&s).await.unwrap(),
            forward.iter().map(|r| r.position).collect::<Vec<_>>(),
            backward.iter().map(|r| r.position).collect::<Vec<_>>(),
        ));
    }
    (stored, streams)
}

fn same(a: &(Vec<StoredRecord>, Vec<String>), b: &(Vec<StoredRecord>, Vec<String>)) -> bool {
    a.1 == b.1 && a.0.len() == b.0.len() && a.0.iter().zip(&b.0).all(|(x, y)| x.bytes == y.bytes)
}

async fn open_default(path: &Path) -> SledEventLog {
    SledEventLog::open(SledConfig::new(path)).unwrap()
}

/// A retry of the first append of `log` gives its original result (the id index answers
/// for events the checkpoint holds).
async fn retry_first(log: &SledEventLog) {
    let first = log
        .read_all(1, Direction::Forward, 1)
        .await
        .unwrap()
        .remove(0);
    let again = NewEvent {
        id: first.id,
        event_type: first.event_type.clone(),
        schema_version: first.schema_version,
        actor: first.actor.clone(),
        correlation_id: first.correlation_id.clone(),
        causation_id: first.causation_id.clone(),
        payload: first.payload.clone(),
    };
    let result = log
        .append(&first.stream, ExpectedVersion::Any, vec![again])
        .await
        .unwrap();
    assert_eq!(result.first_position, 1, "the retry was appended again");
}

/// A new log in `path` of 300 records, closed (which writes its checkpoint) and opened
/// again from that checkpoint.
async fn opened_from_a_checkpoint_at_300(path: &Path) -> SledEventLog {
    let log = open_default(path).await;
    fill(&log, 0, 300).await;
    log.close().await.unwrap();
    drop(log);
    let log = open_default(path).await;
    assert_eq!(*log.watch_checkpoint().borrow(), 300);
    log
}

#[tokio::test]
async fn an_open_reads_only_what_came_after_the_checkpoint_and_answers_as_a_full_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let log = opened_from_a_checkpoint_at_300(&path).await;
    let old_checkpoint = std::fs::read(path.join(CHECKPOINT)).unwrap();
    fill(&log, 300, 420).await;
    log.close().await.unwrap();
    drop(log);
    // As if the log had stopped before it wrote a newer one: the checkpoint at 300.
    std::fs::write(path.join(CHECKPOINT), &old_checkpoint).unwrap();

    // Record 100, before the checkpoint, changed (its checksum recomputed): an open that
    // read it would refuse the log, so one that opens did not read it.
    let copy = dir.path().join("copy");
    common::copy_dir(&path, &copy);
    let mut full = SledConfig::new(&copy);
    full.check_at_open = OpenCheck::Full;
    common::tamper(&copy, |db| common::alter_payload(db, 100));
    assert!(matches!(
        SledEventLog::open(full.clone()).err(),
        Some(Error::Corruption { position: 100, .. })
    ));
    let tampered = open_default(&copy).await;
    assert_eq!(*tampered.watch_checkpoint().borrow(), 300);
    let found = tampered.history_checked().await.unwrap_err();
    assert!(
        matches!(found, Error::Corruption { position: 100, .. }),
        "{found}"
    );
    assert!(matches!(
        tampered.history_check(),
        HistoryCheck::Damaged(Error::Corruption { position: 100, .. })
    ));
    tampered.close().await.ok();
    drop(tampered);
    // The damaged log wrote no checkpoint over its history.
    assert_eq!(
        std::fs::read(copy.join(CHECKPOINT)).unwrap(),
        old_checkpoint
    );

    // The intact log: opened from the checkpoint at 300, records 301-420 read at open.
    let mut config = SledConfig::new(&path);
    config.check_at_open = OpenCheck::Full;
    let log = SledEventLog::open(config).unwrap();
    let expected = answers(&log).await;
    log.close().await.unwrap();
    drop(log);
    std::fs::write(path.join(CHECKPOINT), &old_checkpoint).unwrap();
    let log = open_default(&path).await;
    assert_eq!(*log.watch_checkpoint().borrow(), 300);
    log.history_checked().await.unwrap();
    assert!(same(&answers(&log).await, &expected));
    retry_first(&log).await;
    // New appends go on from there, on the right versions.
    fill(&log, 420, 440).await;
    assert_eq!(log.head().await.unwrap(), 440);
    log.close().await.unwrap();
    drop(log);
    let log = open_default(&path).await;
    assert_eq!(*log.watch_checkpoint().borrow(), 440, "the close wrote one");
    log.close().await.unwrap();
}

#[tokio::test]
async fn damage_after_the_checkpoint_is_refused_by_the_open_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let log = open_default(&path).await;
    fill(&log, 0, 50).await;
    log.close().await.unwrap();
    drop(log);
    let old_checkpoint = std::fs::read(path.join(CHECKPOINT)).unwrap();
    let log = open_default(&path).await;
    fill(&log, 50, 80).await;
    log.close().await.unwrap();
    drop(log);
    std::fs::write(path.join(CHECKPOINT), &old_checkpoint).unwrap();
    common::tamper(&path, |db| common::alter_payload(db, 60));
    match SledEventLog::open(SledConfig::new(&path)) {
        Err(Error::Corruption { position: 60, .. }) => {}
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("opened with damage after the checkpoint"),
    }
}

#[tokio::test]
async fn a_checkpoint_of_another_log_or_a_damaged_one_is_set_aside_and_every_record_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for path in [&a, &b] {
        let log = open_default(path).await;
        fill(&log, 0, 120).await;
        log.close().await.unwrap();
    }
    let log = open_default(&b).await;
    let expected = answers(&log).await;
    log.close().await.unwrap();
    drop(log);

    let mut damaged = std::fs::read(b.join(CHECKPOINT)).unwrap();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 1;
    for foreign in [std::fs::read(a.join(CHECKPOINT)).unwrap(), damaged] {
        std::fs::write(b.join(CHECKPOINT), &foreign).unwrap();
        let log = open_default(&b).await;
        assert_eq!(
            *log.watch_checkpoint().borrow(),
            0,
            "the checkpoint was used"
        );
        assert!(matches!(log.history_check(), HistoryCheck::Intact));
        assert!(same(&answers(&log).await, &expected));
        retry_first(&log).await;
        log.close().await.unwrap();
        drop(log);
        // The close replaced it with this log's own.
        let log = open_default(&b).await;
        assert_eq!(*log.watch_checkpoint().borrow(), 120);
        log.close().await.unwrap();
    }
}

/// Checkpoints are written as the log grows, so an open after a crash reads at most
/// about `index_checkpoint_every` records: a copy taken while the log runs (as a crash
/// leaves it) opens from the last one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_follow_the_log_so_an_open_after_a_crash_reads_little() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let mut config = SledConfig::new(&path);
    config.index_checkpoint_every = 100;
    let log = SledEventLog::open(config).unwrap();
    let mut checkpoints = log.watch_checkpoint();
    fill(&log, 0, 350).await;
    // A bound for a failing run, not a synchronisation: the wait ends when it is written.
    tokio::time::timeout(
        Duration::from_secs(120),
        checkpoints.wait_for(|p| *p >= 300),
    )
    .await
    .expect("no checkpoint at 300 within two minutes")
    .unwrap();
    let at = *checkpoints.borrow();
    let expected = answers(&log).await;
    let copy = dir.path().join("copy");
    common::copy_dir(&path, &copy);
    // The running log keeps going; the copy is what a crash now would leave.
    fill(&log, 350, 360).await;
    log.close().await.unwrap();

    let crashed = open_default(&copy).await;
    assert_eq!(*crashed.watch_checkpoint().borrow(), at);
    crashed.history_checked().await.unwrap();
    assert!(same(&answers(&crashed).await, &expected));
    crashed.close().await.unwrap();
}

#[tokio::test]
async fn a_deferred_history_check_waits_to_be_started_and_a_close_ends_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let log = open_default(&path).await;
    fill(&log, 0, 200).await;
    log.close().await.unwrap();
    drop(log);
    common::tamper(&path, |db| common::alter_payload(db, 50));
    let deferred = SledConfig {
        defer_history_check: true,
        ..SledConfig::new(&path)
    };

    // Not started: the damage behind the checkpoint is not found yet, and the log serves.
    let log = SledEventLog::open(deferred.clone()).unwrap();
    assert!(matches!(log.history_check(), HistoryCheck::Running));
    assert_eq!(log.read_stored(1, 300).await.unwrap().len(), 200);
    log.start_history_check();
    let found = log.history_checked().await.unwrap_err();
    assert!(
        matches!(found, Error::Corruption { position: 50, .. }),
        "{found}"
    );
    assert!(matches!(
        log.read_stored(1, 1).await,
        Err(Error::Corruption { position: 50, .. })
    ));
    log.close().await.ok();
    drop(log);

    // Closed before it was started: the close does not wait for it, and it says so.
    let log = SledEventLog::open(deferred).unwrap();
    let waiting = log.clone();
    let outcome = tokio::spawn(async move { waiting.history_checked().await });
    log.close().await.unwrap();
    assert!(matches!(outcome.await.unwrap(), Err(Error::Closed)));
    assert!(matches!(log.history_check(), HistoryCheck::Stopped));
}

/// The checkpoint is read in place while the log runs: a page of it damaged then is
/// refused, with the page named, by every read and append that needs it (nothing is
/// answered or appended from it); the next open sets the file aside, checks every record
/// and answers as before.
#[tokio::test]
async fn a_checkpoint_page_damaged_while_the_log_runs_is_refused_then_set_aside() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let log = opened_from_a_checkpoint_at_300(&path).await;
    let expected = answers(&log).await;

    // One byte flipped in each of its four pages (two of ids, one of streams, one of
    // stream positions), in place: the running log reads this very file.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path.join(CHECKPOINT))
        .unwrap();
    for page in 0..4u64 {
        let at = page * 4096 + 100;
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, at).unwrap();
        file.write_all_at(&[byte[0] ^ 0x20], at).unwrap();
    }
    drop(file);
    let damaged = |e: Error| matches!(&e, Error::Storage(m) if m.contains("damaged at page"));
    let s = stream(1);
    let read = log.read_stream(&s, 1, Direction::Forward, usize::MAX).await;
    assert!(read.is_err_and(damaged));
    assert!(log.stream_version(&s).await.is_err_and(damaged));
    let appended = common::try_append(&log, &s).await;
    assert!(appended.is_err_and(damaged));
    assert_eq!(log.head().await.unwrap(), 300, "nothing was appended");
    // A close does not write a checkpoint from a damaged one.
    log.close().await.unwrap();
    drop(log);

    let log = open_default(&path).await;
    assert_eq!(
        *log.watch_checkpoint().borrow(),
        0,
        "the damaged file was used"
    );
    assert!(same(&answers(&log).await, &expected));
    log.close().await.unwrap();
}
