//! Several writers (as several complaintd replicas would be) on one JetStream stream, and
//! a nats-server killed and restarted under the log: order, versions and the hash chain
//! hold, nothing acknowledged is lost.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
#![forbid(unsafe_code)]

use std::sync::Arc;

use bytes::Bytes;
use complaints_nats::testing::{free_port, NatsServer};
use eventlog::audit::{Outcome, Verifier};
use eventlog::{
    Direction, Error, EventLog, ExpectedVersion, ManualClock, NewEvent, StreamId, SystemClock,
    Timestamp,
};
use eventlog_jetstream::{JetStreamConfig, JetStreamEventLog};

async fn open(url: &str, stream: &str) -> Arc<JetStreamEventLog> {
    Arc::new(
        JetStreamEventLog::open(JetStreamConfig::new(url, stream), Arc::new(SystemClock))
            .await
            .unwrap(),
    )
}

async fn verify(log: &JetStreamEventLog) -> eventlog::audit::Report {
    let mut verifier = Verifier::new();
    let mut from = 1;
    loop {
        let page = log.read_stored(from, 100).await.unwrap();
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        for record in &page {
            verifier.check(record);
        }
    }
    verifier.finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_appending_to_one_complaint_never_break_its_versions() {
    let nats = NatsServer::start();
    let (a, b) = (
        open(&nats.url(), "SHARED").await,
        open(&nats.url(), "SHARED").await,
    );
    let complaint = StreamId::new("complaint-shared").unwrap();
    let mut tasks = Vec::new();
    for (w, log) in [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
    {
        let complaint = complaint.clone();
        tasks.push(tokio::spawn(async move {
            let mut written = 0;
            while written < 15 {
                // Read, decide, append at exactly that version; a lost race is retried.
                let version = log.stream_version(&complaint).await.unwrap();
                let event = NewEvent::new(
                    "complaint.step",
                    format!("replica-{w}"),
                    Bytes::from(format!("{w}-{written}")),
                );
                match log
                    .append(&complaint, ExpectedVersion::Exact(version), vec![event])
                    .await
                {
                    Ok(_) => written += 1,
                    Err(Error::WrongExpectedVersion { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    // Other complaints at the same time, through the other replica.
    for i in 0..20 {
        let s = StreamId::new(format!("complaint-{i}")).unwrap();
        b.append(
            &s,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("complaint.registered", "x", Bytes::new())],
        )
        .await
        .unwrap();
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Both replicas see the same log: 60 steps at versions 1..60, positions gapless.
    let head = a.head().await.unwrap().max(b.head().await.unwrap());
    assert_eq!(head, 80);
    let mut views = Vec::new();
    for log in [&a, &b] {
        log.sync().await.unwrap();
        let seen = log.read_all(1, Direction::Forward, 1000).await.unwrap();
        views.push(seen);
    }
    assert_eq!(views[0], views[1]);
    let steps: Vec<u64> = views[0]
        .iter()
        .filter(|e| e.stream == complaint)
        .map(|e| e.version)
        .collect();
    assert_eq!(steps, (1..=60).collect::<Vec<_>>());
    assert_eq!(
        views[0].iter().map(|e| e.position).collect::<Vec<_>>(),
        (1..=80).collect::<Vec<_>>()
    );
    let report = verify(&a).await;
    assert_eq!(report.outcome, Outcome::Intact, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_server_keeps_every_acknowledged_event() {
    let port = free_port();
    let store = tempfile::tempdir().unwrap();
    let mut nats = NatsServer::start_on(port, store.path());
    let url = nats.url();
    let clock = Arc::new(ManualClock::new(Timestamp::from_micros(1)));
    let log = JetStreamEventLog::open(JetStreamConfig::new(&url, "DURABLE"), clock.clone())
        .await
        .unwrap();
    let s = StreamId::new("complaint-d").unwrap();
    for i in 0..30 {
        log.append(
            &s,
            ExpectedVersion::Exact(i),
            vec![NewEvent::new(
                "complaint.step",
                "x",
                Bytes::from(vec![i as u8; 100]),
            )],
        )
        .await
        .unwrap();
    }
    let before = log.read_all(1, Direction::Forward, 100).await.unwrap();
    nats.kill();
    // While it is down, appends fail (and say so) rather than pretend.
    assert!(log
        .append(
            &s,
            ExpectedVersion::Exact(30),
            vec![NewEvent::new("complaint.step", "x", Bytes::new())]
        )
        .await
        .is_err());
    let _nats = NatsServer::start_on(port, store.path());
    let reopened = JetStreamEventLog::open(JetStreamConfig::new(&url, "DURABLE"), clock)
        .await
        .unwrap();
    assert_eq!(
        reopened.read_all(1, Direction::Forward, 100).await.unwrap(),
        before
    );
    reopened
        .append(
            &s,
            ExpectedVersion::Exact(30),
            vec![NewEvent::new("complaint.step", "x", Bytes::new())],
        )
        .await
        .unwrap();
    assert_eq!(verify(&reopened).await.outcome, Outcome::Intact);
}
