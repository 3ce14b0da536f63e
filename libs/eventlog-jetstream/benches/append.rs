//! The append benchmark on three backends side by side, in one run: sled (the embedded
//! default), JetStream on one nats-server, and JetStream on a three-node cluster with R3
//! streams (all nodes on this machine). Each figure is also given as a ratio to sled's.
//!
//! (a) one writer, appends one after the other: latency per durable append;
//! (b) 64 concurrent writers on 64 streams: durable events per second.
//!
//! Run: `cargo bench -p eventlog-jetstream --bench append` (needs `nats-server`;
//! `BENCH_DIR` picks where data goes; `BENCH_SCALE` scales the counts). Prints a table,
//! then one JSON line.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use complaints_nats::testing::{NatsCluster, NatsServer};
use eventlog::{bench, EventLog, NewEvent, StreamId, SystemClock};
use eventlog_jetstream::{JetStreamConfig, JetStreamEventLog};
use eventlog_sled::{SledConfig, SledEventLog};

fn scaled(n: usize) -> usize {
    bench::scaled(n, 1)
}

fn event() -> NewEvent {
    NewEvent::new("complaint.step", "user:bench", Bytes::from(vec![b'x'; 300]))
}

struct Figures {
    latency: Duration,
    events_per_s: f64,
}

async fn measure(log: Arc<dyn EventLog>) -> Figures {
    // (a) one writer.
    let n = scaled(500);
    let stream = StreamId::new("complaint-single").unwrap();
    let t = Instant::now();
    bench::one_by_one(&*log, &stream, n, event).await;
    let latency = t.elapsed() / n as u32;
    // (b) 64 writers.
    let per = scaled(100);
    let t = Instant::now();
    bench::concurrent(log.clone(), 64, per, event).await;
    let events_per_s = (64 * per) as f64 / t.elapsed().as_secs_f64();
    log.close().await.unwrap();
    Figures {
        latency,
        events_per_s,
    }
}

async fn jetstream(url: String, replicas: usize, max_group: usize) -> Arc<dyn EventLog> {
    open_js(url, replicas, max_group).await
}

/// The log on the stream of this configuration (one per configuration, so each starts
/// empty), opened as soon as a fresh cluster has placed it.
async fn open_js(url: String, replicas: usize, max_group: usize) -> Arc<JetStreamEventLog> {
    let mut config = JetStreamConfig::new(url, format!("BENCH_{replicas}_{max_group}"));
    config.replicas = replicas;
    config.max_group = max_group;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match JetStreamEventLog::open(config.clone(), Arc::new(SystemClock)).await {
            Ok(log) => return Arc::new(log),
            // A fresh cluster may still be placing streams.
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Raw acknowledged publishes of 300-byte messages to a stream of `replicas` replicas,
/// with `in_flight` outstanding: (a) the latency of one at a time, (b) messages per second
/// at `in_flight`. What JetStream itself gives, for the appends' ratios.
async fn raw(url: &str, replicas: usize, in_flight: usize) -> Figures {
    let client = async_nats::connect(url.split(',').collect::<Vec<_>>())
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    let name = format!("RAW_{replicas}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let made = js
            .get_or_create_stream(async_nats::jetstream::stream::Config {
                name: name.clone(),
                subjects: vec![format!("raw{replicas}.>")],
                num_replicas: replicas,
                storage: async_nats::jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await;
        match made {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let subject = format!("raw{replicas}.x");
    let payload = Bytes::from(vec![b'x'; 300]);
    let n = scaled(500);
    let t = Instant::now();
    for _ in 0..n {
        js.publish(subject.clone(), payload.clone())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let latency = t.elapsed() / n as u32;
    let total = scaled(6400);
    let t = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    for _ in 0..total {
        if pending.len() >= in_flight {
            let ack: async_nats::jetstream::context::PublishAckFuture =
                pending.pop_front().unwrap();
            ack.await.unwrap();
        }
        pending.push_back(js.publish(subject.clone(), payload.clone()).await.unwrap());
    }
    for ack in pending {
        ack.await.unwrap();
    }
    Figures {
        latency,
        events_per_s: total as f64 / t.elapsed().as_secs_f64(),
    }
}

/// Two log instances on one stream (as two complaintd replicas: each its own connection,
/// index and group commit), 32 writers each: combined durable events per second; then
/// the log is checked: gapless, every acknowledged event once, where it was acknowledged.
async fn two_replicas(url: String, replicas: usize) -> Figures {
    // A stream of its own, both instances on it.
    let (a, b) = (
        open_js(url.clone(), replicas, 1000).await,
        open_js(url, replicas, 1000).await,
    );
    let per = scaled(100);
    let t = Instant::now();
    let writers: Vec<_> = (0..64)
        .map(|w| {
            let log = if w % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let stream = StreamId::new(format!("complaint-r{w}")).unwrap();
                let mut acked = Vec::new();
                for _ in 0..per {
                    let e = event();
                    let id = e.id;
                    let r = log
                        .append(&stream, eventlog::ExpectedVersion::Any, vec![e])
                        .await
                        .unwrap();
                    acked.push((id, r.first_position));
                }
                acked
            })
        })
        .collect();
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    let events_per_s = acked.len() as f64 / t.elapsed().as_secs_f64();
    // Either replica, caught up, holds every acknowledged event once, where it was
    // acknowledged, and nothing else.
    for log in [&a, &b] {
        log.sync().await.unwrap();
        let all = log
            .read_all(1, eventlog::Direction::Forward, 1_000_000)
            .await
            .unwrap();
        assert_eq!(
            all.len(),
            acked.len(),
            "every acknowledged event once, nothing else"
        );
        for (id, position) in &acked {
            assert_eq!(all[(*position - 1) as usize].id, *id);
        }
    }
    a.close().await.unwrap();
    b.close().await.unwrap();
    Figures {
        latency: Duration::ZERO,
        events_per_s,
    }
}

fn main() {
    let dir = bench::data_dir("js-bench");
    let results = bench::runtime().block_on(async {
        let sled: Arc<dyn EventLog> =
            Arc::new(SledEventLog::open(SledConfig::new(dir.join("sled"))).unwrap());
        let sled = measure(sled).await;
        // Every nats-server syncs before it acknowledges (sync_interval: always).
        let single = NatsServer::start_on(complaints_nats::testing::free_port(), &dir.join("nats"));
        let raw_one = raw(&single.url(), 1, 64).await;
        let one_by_one = measure(jetstream(single.url(), 1, 1).await).await;
        let one = measure(jetstream(single.url(), 1, 1024).await).await;
        let two_one = two_replicas(single.url(), 1).await;
        drop(single);
        let cluster = NatsCluster::start(3);
        let raw_three = raw(&cluster.url(), 3, 64).await;
        let three_by_one = measure(jetstream(cluster.url(), 3, 1).await).await;
        let three = measure(jetstream(cluster.url(), 3, 1024).await).await;
        let two_three = two_replicas(cluster.url(), 3).await;
        drop(cluster);
        [
            ("sled", sled),
            ("raw JetStream publish, 1 node (b: 64 in flight)", raw_one),
            ("jetstream-1, one append per message", one_by_one),
            ("jetstream-1, group commit", one),
            ("raw JetStream publish, R3 (b: 64 in flight)", raw_three),
            ("jetstream-r3, one append per message", three_by_one),
            ("jetstream-r3, group commit", three),
            (
                "jetstream-1, two replicas writing (b: 32 writers each)",
                two_one,
            ),
            (
                "jetstream-r3, two replicas writing (b: 32 writers each)",
                two_three,
            ),
        ]
    });
    std::fs::remove_dir_all(&dir).ok();
    let sled_latency = results[0].1.latency.as_secs_f64();
    let sled_rate = results[0].1.events_per_s;
    println!("| backend | (a) one writer: latency per append | vs sled | (b) 64 writers: events/s | vs sled |");
    println!("|---|---|---|---|---|");
    let mut json = serde_json::Map::new();
    for (name, f) in &results {
        let (latency, vs) = if f.latency.is_zero() {
            ("-".to_owned(), "-".to_owned())
        } else {
            (
                format!("{:.3} ms", f.latency.as_secs_f64() * 1e3),
                format!("{:.2}x", f.latency.as_secs_f64() / sled_latency),
            )
        };
        println!(
            "| {name} | {latency} | {vs} | {:.0} | {:.2}x |",
            f.events_per_s,
            f.events_per_s / sled_rate
        );
        json.insert(
            name.to_string(),
            serde_json::json!({
                "latency_ms": f.latency.as_secs_f64() * 1e3,
                "events_per_s": f.events_per_s,
            }),
        );
    }
    let ratio = |a: usize, b: usize| results[a].1.events_per_s / results[b].1.events_per_s;
    let latency = |a: usize, b: usize| {
        results[a].1.latency.as_secs_f64() / results[b].1.latency.as_secs_f64()
    };
    println!(
        "group commit, 64 writers: {:.2}x one append per message on one node, {:.2}x the raw publishes at 64 in flight; R3: {:.2}x and {:.2}x",
        ratio(3, 2),
        ratio(3, 1),
        ratio(6, 5),
        ratio(6, 4)
    );
    println!(
        "one writer: {:.2}x the raw acknowledged publish latency on one node, {:.2}x on R3",
        latency(3, 1),
        latency(6, 4)
    );
    println!("{}", serde_json::Value::Object(json));
}
