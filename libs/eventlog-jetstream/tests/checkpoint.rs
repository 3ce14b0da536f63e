//! The local index: a reopen reads only what came after it, gives the same log as a full
//! read, and never trusts the index over the stream.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use complaints_nats::testing::NatsServer;
use eventlog::{Direction, Error, EventLog, ExpectedVersion, NewEvent, StreamId, SystemClock};
use eventlog_jetstream::{JetStreamConfig, JetStreamEventLog};

fn config(url: &str, checkpoint: Option<&Path>) -> JetStreamConfig {
    let mut c = JetStreamConfig::new(url, "CHECKED");
    c.checkpoint = checkpoint.map(Path::to_owned);
    c
}

async fn open(url: &str, checkpoint: Option<&Path>) -> Arc<JetStreamEventLog> {
    Arc::new(
        JetStreamEventLog::open(config(url, checkpoint), Arc::new(SystemClock))
            .await
            .unwrap(),
    )
}

async fn append(log: &JetStreamEventLog, n: usize, label: &str) {
    for i in 0..n {
        let stream = StreamId::new(format!("complaint-{}", i % 7)).unwrap();
        let event = NewEvent::new(
            "complaint.step",
            "user:t",
            Bytes::from(format!("{label}{i}")),
        );
        log.append(&stream, ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopen_reads_only_what_came_after_the_checkpoint() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("index");
    let log = open(&nats.url(), Some(&file)).await;
    assert_eq!(log.opened_from_checkpoint(), None, "a new log has none");
    append(&log, 120, "a").await;
    log.close().await.unwrap();
    assert!(file.exists());

    // Another process (no checkpoint) appends meanwhile.
    let other = open(&nats.url(), None).await;
    append(&other, 30, "b").await;
    let full = other.read_all(1, Direction::Forward, 1000).await.unwrap();
    assert_eq!(full.len(), 150);

    let reopened = open(&nats.url(), Some(&file)).await;
    assert_eq!(reopened.opened_from_checkpoint(), Some(120));
    assert_eq!(
        reopened
            .read_all(1, Direction::Forward, 1000)
            .await
            .unwrap(),
        full
    );
    for s in 0..7 {
        let stream = StreamId::new(format!("complaint-{s}")).unwrap();
        assert_eq!(
            reopened.stream_version(&stream).await.unwrap(),
            other.stream_version(&stream).await.unwrap()
        );
    }
    // Idempotency survives: a retry of an event from before the checkpoint.
    let first = &full[0];
    let retried = reopened
        .append(
            &first.stream,
            ExpectedVersion::Any,
            vec![NewEvent {
                id: first.id,
                ..NewEvent::new(
                    first.event_type.clone(),
                    first.actor.clone(),
                    first.payload.clone(),
                )
            }],
        )
        .await
        .unwrap();
    assert!(
        retried.deduplicated && retried.first_position == 1,
        "{retried:?}"
    );
    append(&reopened, 5, "c").await;
    assert_eq!(reopened.head().await.unwrap(), 155);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_or_old_index_is_set_aside_and_a_shorter_stream_is_refused() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    let log = open(&nats.url(), Some(&index)).await;
    append(&log, 40, "a").await;
    log.close().await.unwrap();
    drop(log);
    // A second index of the same stream, for the cases below (`index` is kept as it is).
    let second = dir.path().join("second");
    open(&nats.url(), Some(&second))
        .await
        .close()
        .await
        .unwrap();

    // Another stream's log on that directory: the index is not its own, set aside.
    let mut other = config(&nats.url(), Some(&second));
    other.stream = "OTHER".into();
    other.subject_prefix = "eventlog.other".into();
    let foreign = JetStreamEventLog::open(other, Arc::new(SystemClock))
        .await
        .unwrap();
    assert_eq!(foreign.opened_from_checkpoint(), None);
    assert_eq!(foreign.head().await.unwrap(), 0);
    foreign.close().await.unwrap();
    drop(foreign);
    // ... and back: OTHER's index is not CHECKED's either; the whole stream is read.
    let reopened = open(&nats.url(), Some(&second)).await;
    assert_eq!(reopened.opened_from_checkpoint(), None);
    assert_eq!(reopened.head().await.unwrap(), 40);
    reopened.close().await.unwrap();
    drop(reopened);

    // A file of the earlier format where the index goes: replaced, the stream read.
    let old = dir.path().join("old-format");
    std::fs::write(&old, b"JSIDX\0\0\x01 an index of the earlier format").unwrap();
    let replaced = open(&nats.url(), Some(&old)).await;
    assert_eq!(replaced.opened_from_checkpoint(), None);
    assert_eq!(replaced.head().await.unwrap(), 40);
    assert!(old.is_dir());
    replaced.close().await.unwrap();
    drop(replaced);

    // The stream recreated shorter (its history lost): the index proves the loss.
    let client = async_nats::connect(nats.url()).await.unwrap();
    async_nats::jetstream::new(client)
        .delete_stream("CHECKED")
        .await
        .unwrap();
    let fresh = open(&nats.url(), None).await;
    append(&fresh, 10, "z").await;
    fresh.close().await.unwrap();
    let refused = JetStreamEventLog::open(config(&nats.url(), Some(&index)), Arc::new(SystemClock))
        .await
        .err()
        .expect("refused");
    match refused {
        Error::Corruption { position, reason } => {
            assert_eq!(position, 40);
            assert!(
                reason.contains("acknowledged records were lost"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}
