//! complaints-publisher as a process: it publishes a JetStream log written by someone
//! else (here, the test) into the events stream, in order, and stops on SIGTERM.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
#![forbid(unsafe_code)]

use std::process::{Command, Stdio};
use std::sync::Arc;

use bytes::Bytes;
use complaints_nats::testing::{self, NatsServer};
use eventlog::{EventLog, ExpectedVersion, NewEvent, StreamId, SystemClock};
use eventlog_jetstream::{JetStreamConfig, JetStreamEventLog};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publisher_process_publishes_a_jetstream_log() {
    let nats = NatsServer::start();
    let log = JetStreamEventLog::open(
        JetStreamConfig::new(nats.url(), "EVENTLOG"),
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut seen = client.subscribe("complaints.events.>").await.unwrap();
    client.flush().await.unwrap();
    for i in 0..10 {
        let s = StreamId::new(format!("complaint-{}", i % 3)).unwrap();
        log.append(
            &s,
            ExpectedVersion::Any,
            vec![NewEvent::new("complaint.step", "x", Bytes::from(vec![i]))],
        )
        .await
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let cursor = dir.path().join("cursor");
    let mut child = Command::new(env!("CARGO_BIN_EXE_complaints-publisher"))
        .args(["--log-url", &nats.url(), "--cursor"])
        .arg(&cursor)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let positions = testing::positions(&mut seen, 10).await;
    assert_eq!(positions, (1..=10).collect::<Vec<_>>());
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(status.success(), "stopped cleanly on SIGTERM: {status:?}");
    assert_eq!(std::fs::read_to_string(&cursor).unwrap().trim(), "10");
}
