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

async fn jetstream(url: String, replicas: usize) -> Arc<dyn EventLog> {
    let mut config = JetStreamConfig::new(url, "BENCH");
    config.replicas = replicas;
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

fn main() {
    let dir = bench::data_dir("js-bench");
    let results = bench::runtime().block_on(async {
        let sled: Arc<dyn EventLog> =
            Arc::new(SledEventLog::open(SledConfig::new(dir.join("sled"))).unwrap());
        let sled = measure(sled).await;
        let single = NatsServer::start_on(complaints_nats::testing::free_port(), &dir.join("nats"));
        let one = measure(jetstream(single.url(), 1).await).await;
        drop(single);
        let cluster = NatsCluster::start(3);
        let three = measure(jetstream(cluster.url(), 3).await).await;
        drop(cluster);
        [
            ("sled", sled),
            ("jetstream-1", one),
            ("jetstream-r3", three),
        ]
    });
    std::fs::remove_dir_all(&dir).ok();
    let sled_latency = results[0].1.latency.as_secs_f64();
    let sled_rate = results[0].1.events_per_s;
    println!("| backend | (a) one writer: latency per append | vs sled | (b) 64 writers: events/s | vs sled |");
    println!("|---|---|---|---|---|");
    let mut json = serde_json::Map::new();
    for (name, f) in &results {
        println!(
            "| {name} | {:.3} ms | {:.2}x | {:.0} | {:.2}x |",
            f.latency.as_secs_f64() * 1e3,
            f.latency.as_secs_f64() / sled_latency,
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
    println!("{}", serde_json::Value::Object(json));
}
