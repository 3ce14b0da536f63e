//! Group commit: concurrent appends of one process share messages (one round trip and one
//! sync for many), and each is still decided on its own: a wrong expected version or a
//! retry in the same group does not touch the others.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
#![forbid(unsafe_code)]

use std::sync::Arc;

use bytes::Bytes;
use complaints_nats::testing::NatsServer;
use eventlog::{Direction, Error, EventLog, ExpectedVersion, NewEvent, StreamId, SystemClock};
use eventlog_jetstream::{JetStreamConfig, JetStreamEventLog};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_messages_and_a_conflict_fails_only_itself() {
    let nats = NatsServer::start();
    let log = Arc::new(
        JetStreamEventLog::open(
            JetStreamConfig::new(nats.url(), "GROUPED"),
            Arc::new(SystemClock),
        )
        .await
        .unwrap(),
    );
    // 200 appends at once: every tenth expects a version its stream is not at.
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move {
                let stream = StreamId::new(format!("complaint-{}", i % 20)).unwrap();
                let expected = if i % 10 == 3 {
                    ExpectedVersion::Exact(1000)
                } else {
                    ExpectedVersion::Any
                };
                let event = NewEvent::new("complaint.step", "user:t", Bytes::from(format!("{i}")));
                (i, log.append(&stream, expected, vec![event]).await)
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        let (i, result) = task.await.unwrap();
        if i % 10 == 3 {
            assert!(
                matches!(result, Err(Error::WrongExpectedVersion { .. })),
                "{i}: {result:?}"
            );
        } else {
            result.unwrap_or_else(|e| panic!("{i}: {e}"));
            ok += 1;
        }
    }
    assert_eq!(ok, 180);
    let all = log.read_all(1, Direction::Forward, 1000).await.unwrap();
    assert_eq!(all.len(), 180);
    // Fewer messages than appends: they were grouped.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut stream = async_nats::jetstream::new(client)
        .get_stream("GROUPED")
        .await
        .unwrap();
    let messages = stream.info().await.unwrap().state.messages;
    eprintln!("180 appends in {messages} messages");
    assert!(messages < 180, "{messages} messages for 180 appends");
    // A fresh process reads the same log: the group messages hold the right streams.
    let other = JetStreamEventLog::open(
        JetStreamConfig::new(nats.url(), "GROUPED"),
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    assert_eq!(
        other.read_all(1, Direction::Forward, 1000).await.unwrap(),
        all
    );
    for s in 0..20 {
        let stream = StreamId::new(format!("complaint-{s}")).unwrap();
        // Streams 3 and 13 got only the appends that expected the wrong version.
        let expected = if s % 10 == 3 { 0 } else { 10 };
        assert_eq!(
            other.stream_version(&stream).await.unwrap(),
            expected,
            "{stream}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_append_twice_at_once_is_stored_once() {
    let nats = NatsServer::start();
    let log = Arc::new(
        JetStreamEventLog::open(
            JetStreamConfig::new(nats.url(), "TWICE"),
            Arc::new(SystemClock),
        )
        .await
        .unwrap(),
    );
    let stream = StreamId::new("complaint-1").unwrap();
    let events: Vec<Vec<NewEvent>> = (0..20)
        .map(|i| {
            vec![NewEvent::new(
                "complaint.step",
                "user:t",
                Bytes::from(format!("{i}")),
            )]
        })
        .collect();
    // Each append sent twice, all at once (a retry racing its first attempt).
    let tasks: Vec<_> = events
        .iter()
        .chain(events.iter())
        .map(|e| {
            let (log, stream, e) = (log.clone(), stream.clone(), e.clone());
            tokio::spawn(async move { log.append(&stream, ExpectedVersion::Any, e).await })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap().unwrap());
    }
    for i in 0..20 {
        assert_eq!(
            results[i].first_position,
            results[i + 20].first_position,
            "a retry gets its first result"
        );
    }
    assert_eq!(
        log.read_all(1, Direction::Forward, 100)
            .await
            .unwrap()
            .len(),
        20
    );
}
