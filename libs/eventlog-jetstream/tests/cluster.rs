//! A three-node JetStream cluster (R3 stream, every node syncing before it acknowledges)
//! under load loses a node, or all three at once (SIGKILL, the nearest thing to a power
//! cut here): no acknowledged event is lost, positions stay gapless, the chain verifies,
//! and a second replica's view converges to the same log.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use complaints_nats::testing::NatsCluster;
use eventlog::audit::{Outcome, Verifier};
use eventlog::{
    AppendResult, Direction, EventLog, ExpectedVersion, NewEvent, StreamId, SystemClock,
};
use eventlog_jetstream::{JetStreamConfig, JetStreamEventLog};
use futures::StreamExt;

async fn open(url: &str) -> Arc<JetStreamEventLog> {
    let mut config = JetStreamConfig::new(url, "CLUSTERED");
    config.replicas = 3;
    // Right after the election the cluster may still place the stream: try for 30 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match JetStreamEventLog::open(config.clone(), Arc::new(SystemClock)).await {
            Ok(log) => return Arc::new(log),
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("cluster not ready yet: {e}");
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Appends one event, retrying (same event id: idempotent) while the cluster fails over.
async fn append_retrying(
    log: &JetStreamEventLog,
    stream: &StreamId,
    event: NewEvent,
) -> AppendResult {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match log
            .append(stream, ExpectedVersion::Any, vec![event.clone()])
            .await
        {
            Ok(result) => return result,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("append retried: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("append kept failing: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_a_node_loses_no_acknowledged_event() {
    let mut cluster = NatsCluster::start(3);
    let log = open(&cluster.url()).await;
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let log = log.clone();
            let acknowledged = acknowledged.clone();
            tokio::spawn(async move {
                for i in 0..60 {
                    let stream = StreamId::new(format!("complaint-{}", (w * 7 + i) % 10)).unwrap();
                    let event = NewEvent::new(
                        "complaint.step",
                        format!("writer-{w}"),
                        Bytes::from(format!("{w}/{i}")),
                    );
                    let id = event.id;
                    let result = append_retrying(&log, &stream, event).await;
                    acknowledged.lock().unwrap().push((
                        id,
                        result.first_position,
                        stream,
                        result.first_version,
                    ));
                }
            })
        })
        .collect();
    // Under load, the node leading the stream dies: the others elect a new leader.
    let mut heads = log.watch_head();
    heads.wait_for(|h| *h >= 60).await.unwrap();
    let client = async_nats::connect(
        cluster
            .url()
            .split(',')
            .map(str::to_owned)
            .collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    let mut stream = async_nats::jetstream::new(client)
        .get_stream("CLUSTERED")
        .await
        .unwrap();
    let info = stream.info().await.unwrap();
    let leader = info
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .expect("the stream has a leader");
    assert_eq!(info.config.num_replicas, 3);
    let index: usize = leader.trim_start_matches('n').parse().unwrap();
    eprintln!("killing the stream leader {leader}");
    cluster.kill(index);
    for w in writers {
        w.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert_eq!(acknowledged.len(), 240);

    // A fresh replica on the surviving nodes sees every acknowledged event where it was
    // acknowledged, and nothing else.
    let other = open(&cluster.live_url()).await;
    let all = other.read_all(1, Direction::Forward, 1000).await.unwrap();
    assert_eq!(all.len(), 240, "gapless, no extra event");
    for (id, position, stream, version) in &acknowledged {
        let e = &all[(*position - 1) as usize];
        assert_eq!((&e.id, &e.stream, e.version), (id, stream, *version));
    }
    log.sync().await.unwrap();
    assert_eq!(
        log.read_all(1, Direction::Forward, 1000).await.unwrap(),
        all,
        "the first replica converges to the same log"
    );
    // Projections fed by each replica's subscription converge too: here, every stream's
    // version and last event, folded from position 1.
    let mut views = Vec::new();
    for replica in [log.clone(), other.clone()] {
        let mut events = replica.clone().subscribe(1);
        let mut projection = std::collections::BTreeMap::new();
        while projection.values().map(|(v, _)| *v).sum::<u64>() < 240 {
            let e = tokio::time::timeout(Duration::from_secs(30), events.next())
                .await
                .expect("the subscription delivers")
                .unwrap()
                .unwrap();
            projection.insert(e.stream.clone(), (e.version, e.id));
        }
        views.push(projection);
    }
    assert_eq!(views[0], views[1]);
    let mut verifier = Verifier::new();
    for record in other.read_stored(1, 1000).await.unwrap() {
        verifier.check(&record);
    }
    let report = verifier.finish();
    assert_eq!(report.outcome, Outcome::Intact, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_every_node_under_load_loses_no_acknowledged_event() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut cluster = NatsCluster::start(3);
    let log = open(&cluster.url()).await;
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let killed = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (log, acknowledged, killed) = (log.clone(), acknowledged.clone(), killed.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let stream = StreamId::new(format!("complaint-{}", (w * 7 + i) % 10)).unwrap();
                    let event = NewEvent::new(
                        "complaint.step",
                        format!("writer-{w}"),
                        Bytes::from(format!("{w}/{i}")),
                    );
                    let id = event.id;
                    match log.append(&stream, ExpectedVersion::Any, vec![event]).await {
                        Ok(r) => acknowledged.lock().unwrap().push((
                            id,
                            r.first_position,
                            stream,
                            r.first_version,
                        )),
                        // Once the cluster is down, an append in flight may fail: it was
                        // not acknowledged, so it may or may not be there afterwards.
                        Err(_) if killed.load(Ordering::SeqCst) => return,
                        // A lost race with another writer of this process: try again.
                        Err(_) => {}
                    }
                }
            })
        })
        .collect();
    let mut heads = log.watch_head();
    heads.wait_for(|h| *h >= 150).await.unwrap();
    // Every node at once, mid-write.
    killed.store(true, Ordering::SeqCst);
    for i in 0..3 {
        cluster.kill(i);
    }
    for w in writers {
        w.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 150, "{}", acknowledged.len());
    drop(log);

    for i in 0..3 {
        cluster.restart(i);
    }
    let after = open(&cluster.url()).await;
    let all = after
        .read_all(1, Direction::Forward, 100_000)
        .await
        .unwrap();
    eprintln!(
        "{} acknowledged before the cut; {} in the log after the restart",
        acknowledged.len(),
        all.len()
    );
    for (id, position, stream, version) in &acknowledged {
        let e = all.get((*position - 1) as usize).unwrap_or_else(|| {
            panic!(
                "acknowledged position {position} is gone ({} left)",
                all.len()
            )
        });
        assert_eq!((&e.id, &e.stream, e.version), (id, stream, *version));
    }
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.position, i as u64 + 1, "gapless");
    }
    let mut verifier = Verifier::new();
    for record in after.read_stored(1, 100_000).await.unwrap() {
        verifier.check(&record);
    }
    let report = verifier.finish();
    assert_eq!(report.outcome, Outcome::Intact, "{report}");
    // And it goes on.
    append_retrying(
        &after,
        &StreamId::new("complaint-after").unwrap(),
        NewEvent::new("complaint.step", "after", Bytes::from_static(b"after")),
    )
    .await;
}
