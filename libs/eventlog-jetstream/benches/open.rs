//! Opening a JetStream log of 100,000 and 1,000,000 events (group-committed by 64
//! writers, on one nats-server with `sync_interval: always`), side by side in one run:
//! a full read of the stream into a new local index against an open from the local index
//! kept by the last process (then only what came after it read). Also how much each open
//! grew the process's resident memory, and the index's size on disk.
//!
//! Run: `cargo bench -p eventlog-jetstream --bench open` (`BENCH_SCALE` scales the counts).
#![allow(clippy::unwrap_used)] // a failed unwrap in a bench is a failed bench
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use complaints_nats::testing::NatsServer;
use eventlog::{bench, EventLog, NewEvent, SystemClock};
use eventlog_jetstream::{JetStreamConfig, JetStreamEventLog};

fn event() -> NewEvent {
    NewEvent::new("complaint.step", "user:bench", Bytes::from(vec![b'x'; 300]))
}

/// The process's resident set, in MiB (Linux).
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

async fn open(config: &JetStreamConfig) -> (Arc<JetStreamEventLog>, Duration) {
    let t = Instant::now();
    let log = Arc::new(
        JetStreamEventLog::open(config.clone(), Arc::new(SystemClock))
            .await
            .unwrap(),
    );
    (log, t.elapsed())
}

fn main() {
    let dir = bench::data_dir("js-open");
    let nats = NatsServer::start_on(complaints_nats::testing::free_port(), &dir.join("nats"));
    let rows = bench::runtime().block_on(async {
        let mut rows = Vec::new();
        let mut config = JetStreamConfig::new(nats.url(), "OPEN");
        config.checkpoint = Some(dir.join("index"));
        let mut total = 0;
        for target in [bench::scaled(100_000, 1000), bench::scaled(1_000_000, 1000)] {
            // Grow the log to `target` events, then close (saving the checkpoint).
            let (log, _) = open(&config).await;
            let per = (target - total) / 64;
            bench::concurrent(log.clone() as Arc<dyn EventLog>, 64, per, event).await;
            total += per * 64;
            log.close().await.unwrap();
            drop(log);
            // A full read into a new (temporary) local index.
            let before = rss_mib();
            let full_config = JetStreamConfig {
                checkpoint: None,
                ..config.clone()
            };
            let (full, full_time) = open(&full_config).await;
            let full_rss = rss_mib() - before;
            assert_eq!(full.head().await.unwrap(), total as u64);
            full.close().await.unwrap();
            drop(full);
            let before = rss_mib();
            let (fast, fast_time) = open(&config).await;
            let fast_rss = rss_mib() - before;
            assert_eq!(fast.opened_from_checkpoint(), Some(total as u64));
            let size = fast.index_size_on_disk();
            fast.close().await.unwrap();
            rows.push((total, full_time, fast_time, full_rss, fast_rss, size));
        }
        rows
    });
    drop(nats);
    std::fs::remove_dir_all(&dir).ok();
    println!("| events | open, full read | open, from the local index | ratio | memory grown, full read | memory grown, from the index | index on disk |");
    println!("|---|---|---|---|---|---|---|");
    let mut json = Vec::new();
    for (events, full, fast, full_rss, fast_rss, size) in &rows {
        println!(
            "| {events} | {:.3} s | {:.3} s | {:.2}x | {:.0} MiB | {:.0} MiB | {:.1} MiB |",
            full.as_secs_f64(),
            fast.as_secs_f64(),
            fast.as_secs_f64() / full.as_secs_f64(),
            full_rss,
            fast_rss,
            *size as f64 / (1024.0 * 1024.0)
        );
        json.push(serde_json::json!({
            "events": events, "full_read_s": full.as_secs_f64(),
            "index_open_s": fast.as_secs_f64(), "full_read_rss_mib": full_rss,
            "index_open_rss_mib": fast_rss, "index_bytes": size,
        }));
    }
    println!("{}", serde_json::Value::Array(json));
}
