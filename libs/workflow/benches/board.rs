//! SLA projection benchmark (issue 4's targets):
//! - rebuild the SLA board from a log of ~1,000,000 events (~100,000 complaints, 10 events
//!   each): target >= 500,000 events/s;
//! - list the 100 most urgent clocks of 1,000,000 open complaints: target p99 < 5 ms;
//! - resident memory with 1,000,000 open complaints: target < 512 MiB.
//!
//! Run: `cargo bench -p complaints-workflow --bench board`. `BENCH_DIR` picks where the
//! logs go (default: the system temp dir); `BENCH_SCALE` (default 1.0) scales the counts.
//! Prints the figures, then one JSON line.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{rss_mib, scaled, write_log};
use complaints_sla::Engine;
use complaints_workflow::board::{ClockQuery, SlaBoard};
use eventlog::{Direction, EventLog};
use eventlog_sled::{SledConfig, SledEventLog};
use jiff::Timestamp;

/// Rebuilds a board from the whole log, as a restart does; returns it and the time taken.
async fn rebuild(log: &SledEventLog, engine: Arc<Engine>) -> (SlaBoard, Duration, u64) {
    let board = SlaBoard::new(engine);
    let start = Instant::now();
    let (mut from, mut count) = (1, 0u64);
    loop {
        let page = log.read_all(from, Direction::Forward, 4096).await.unwrap();
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        for record in &page {
            board.apply(record).unwrap();
        }
        count += page.len() as u64;
    }
    (board, start.elapsed(), count)
}

fn main() {
    let base_dir = std::env::var_os("BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base_dir.join(format!("board-bench-{}", std::process::id()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let json = runtime.block_on(async {
        let engine = Arc::new(Engine::built_in());
        let base: Timestamp = "2026-06-01T09:00:00Z".parse().unwrap();

        // 1. Rebuild from ~1M events (~100k complaints x 10 events).
        let complaints = scaled(100_000);
        let log = Arc::new(SledEventLog::open(SledConfig::new(dir.join("rebuild"))).unwrap());
        let t = Instant::now();
        write_log(log.clone(), complaints, 10, base).await;
        println!("wrote {} events for {complaints} complaints in {:.1} s", log.head().await.unwrap(), t.elapsed().as_secs_f64());
        let (board, took, events) = rebuild(&log, engine.clone()).await;
        let rebuild_rate = events as f64 / took.as_secs_f64();
        println!("rebuild: {events} events in {:.2} s = {rebuild_rate:.0} events/s (target >= 500,000)", took.as_secs_f64());
        drop(board);
        log.close().await.unwrap();
        drop(log);

        // 2. 1M open complaints (registered only): memory, and the 100 most urgent.
        let open = scaled(1_000_000);
        let log = Arc::new(SledEventLog::open(SledConfig::new(dir.join("open"))).unwrap());
        write_log(log.clone(), open, 1, base).await;
        let before = rss_mib();
        let (board, took, _) = rebuild(&log, engine.clone()).await;
        let after = rss_mib();
        println!("{open} open complaints: board built in {:.2} s; process RSS {after:.0} MiB (board ~{:.0} MiB; target < 512 MiB)", took.as_secs_f64(), after - before);
        let now: Timestamp = "2026-06-20T12:00:00Z".parse().unwrap();
        let mut lat = Vec::with_capacity(1000);
        for _ in 0..1000 {
            let t = Instant::now();
            let page = board.clocks(now, &ClockQuery { page_size: 100, ..Default::default() });
            assert_eq!(page.items.len(), 100.min(open));
            lat.push(t.elapsed());
        }
        lat.sort();
        let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3;
        println!("100 most urgent of {open}: p50 {:.3} ms, p99 {:.3} ms (target p99 < 5 ms)", p(0.5), p(0.99));
        drop(board);
        log.close().await.unwrap();
        serde_json::json!({
            "rebuild_events": events,
            "rebuild_events_per_s": rebuild_rate,
            "open_complaints": open,
            "rss_mib": after,
            "board_mib": after - before,
            "top100_p50_ms": p(0.5),
            "top100_p99_ms": p(0.99),
        })
    });
    std::fs::remove_dir_all(&dir).ok();
    println!("{json}");
}
