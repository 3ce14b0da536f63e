//! Durable-append benchmark of the sled event log, with its baselines measured in the same
//! run on the same disk:
//! - raw: append a 300-byte record to a file and fdatasync, one at a time;
//! - raw group: append 1,000 records, then one fdatasync.
//!
//! Then the log, with 300-byte events: (a) one writer, one event per append; (b) 64
//! concurrent writers, one event per append; (c) one writer, 100 events per append;
//! (d) replaying the whole global log (pages, and a subscription).
//!
//! Run: `cargo bench -p eventlog-sled --bench append`. `BENCH_DIR` picks the directory
//! (default: the system temp dir), `BENCH_SCALE` (default 1.0) scales the event counts.
//! Prints the figures and ratios, then one JSON line with all of them.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
#![forbid(unsafe_code)]

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use eventlog::{bench, Direction, EventLog, ExpectedVersion, NewEvent, StreamId};
use eventlog_sled::{CommitStats, SledConfig, SledEventLog};
use futures::StreamExt;

const EVENT_BYTES: usize = 300;

fn scaled(n: usize) -> usize {
    bench::scaled(n, 10)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Prints how the commits of one scenario went, and returns it as JSON.
fn commits(label: &str, stats: CommitStats) -> serde_json::Value {
    let per = |d: Duration| micros(d) / stats.commits.max(1) as f64;
    let share = stats.fdatasync.as_secs_f64()
        / (stats.fdatasync + stats.sled_flush)
            .as_secs_f64()
            .max(1e-12);
    println!("    {label}: {} commits, {:.1} appends/commit; per commit sled flush {:.0} us, fdatasync {:.0} us ({:.0}% of the sync time)",
        stats.commits, stats.appends as f64 / stats.commits.max(1) as f64, per(stats.sled_flush), per(stats.fdatasync), share * 100.0);
    serde_json::json!({
        "commits": stats.commits,
        "appends_per_commit": stats.appends as f64 / stats.commits.max(1) as f64,
        "sled_flush_us_per_commit": per(stats.sled_flush),
        "fdatasync_us_per_commit": per(stats.fdatasync),
        "fdatasync_share": share,
    })
}

fn event() -> NewEvent {
    NewEvent::new(
        "complaint.bench",
        "user:bench",
        Bytes::from(vec![b'x'; EVENT_BYTES]),
    )
}

/// Raw file append + fdatasync per record: latencies.
fn raw_fdatasync(dir: &Path, n: usize) -> Vec<Duration> {
    let path = dir.join("raw-per-record");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let record = [b'r'; EVENT_BYTES];
    let mut latencies = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        file.write_all(&record).unwrap();
        file.sync_data().unwrap();
        latencies.push(start.elapsed());
    }
    std::fs::remove_file(path).ok();
    latencies.sort();
    latencies
}

/// Raw group commit: 1,000 records per fdatasync. Records per second.
fn raw_group_commit(dir: &Path, groups: usize) -> f64 {
    let path = dir.join("raw-group");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let group = vec![b'g'; EVENT_BYTES * 1000];
    let start = Instant::now();
    for _ in 0..groups {
        file.write_all(&group).unwrap();
        file.sync_data().unwrap();
    }
    let rate = (groups * 1000) as f64 / start.elapsed().as_secs_f64();
    std::fs::remove_file(path).ok();
    rate
}

fn main() {
    let dir = bench::data_dir("eventlog-bench");
    let results = bench::runtime().block_on(run(&dir));
    std::fs::remove_dir_all(&dir).ok();
    println!("{results}");
}

async fn run(dir: &Path) -> serde_json::Value {
    println!(
        "event log benchmark: {EVENT_BYTES}-byte events, directory {}",
        dir.display()
    );

    let raw = raw_fdatasync(dir, scaled(2000));
    let raw_median = percentile(&raw, 0.5);
    let raw_p99 = percentile(&raw, 0.99);
    println!(
        "baseline raw append+fdatasync: median {:.0} us, p99 {:.0} us, {:.0} records/s",
        micros(raw_median),
        micros(raw_p99),
        1.0 / raw_median.as_secs_f64()
    );
    let raw_group = raw_group_commit(dir, scaled(200));
    println!("baseline raw group commit (1,000 records per fdatasync): {raw_group:.0} records/s");

    let log = Arc::new(SledEventLog::open(SledConfig::new(dir.join("log"))).unwrap());

    // (a) one writer, one event per append.
    let n = scaled(2000);
    let before = log.commit_stats();
    let stream = StreamId::new("complaint-single").unwrap();
    let mut latencies = bench::one_by_one(&*log, &stream, n, event).await;
    latencies.sort();
    let a_median = percentile(&latencies, 0.5);
    let a_p99 = percentile(&latencies, 0.99);
    let a_ratio = a_median.as_secs_f64() / raw_median.as_secs_f64();
    println!("(a) 1 writer, 1 event/append: median {:.0} us, p99 {:.0} us, {:.0} events/s; median = {a_ratio:.2}x raw (target <= 2x)",
        micros(a_median), micros(a_p99), n as f64 / latencies.iter().sum::<Duration>().as_secs_f64());
    let a_commits = commits("(a)", log.commit_stats().since(&before));

    // (b) 64 concurrent writers, one event per append, each on its own stream.
    let per_writer = scaled(4000);
    let before = log.commit_stats();
    let start = Instant::now();
    let mut b_latencies = bench::concurrent(log.clone(), 64, per_writer, event).await;
    let b_rate = b_latencies.len() as f64 / start.elapsed().as_secs_f64();
    b_latencies.sort();
    println!("(b) 64 writers, 1 event/append: {b_rate:.0} durable events/s (target >= 100,000), p50 {:.0} us, p99 {:.0} us; {:.2}x raw group commit",
        micros(percentile(&b_latencies, 0.5)), micros(percentile(&b_latencies, 0.99)), b_rate / raw_group);
    let b_commits = commits("(b)", log.commit_stats().since(&before));

    // (c) one writer, 100 events per append.
    let appends = scaled(1000);
    let before = log.commit_stats();
    let stream = StreamId::new("complaint-batch").unwrap();
    let start = Instant::now();
    for _ in 0..appends {
        log.append(
            &stream,
            ExpectedVersion::Any,
            (0..100).map(|_| event()).collect(),
        )
        .await
        .unwrap();
    }
    let c_rate = (appends * 100) as f64 / start.elapsed().as_secs_f64();
    println!(
        "(c) 1 writer, 100 events/append: {c_rate:.0} durable events/s; {:.2}x raw group commit",
        c_rate / raw_group
    );
    let c_commits = commits("(c)", log.commit_stats().since(&before));

    // (d) replay the whole global log: pages, then a subscription.
    let head = log.head().await.unwrap();
    let start = Instant::now();
    let (mut from, mut count, mut bytes) = (1, 0u64, 0usize);
    loop {
        let page = log.read_all(from, Direction::Forward, 4096).await.unwrap();
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        count += page.len() as u64;
        bytes += page.iter().map(|e| e.payload.len()).sum::<usize>();
    }
    let d_rate = count as f64 / start.elapsed().as_secs_f64();
    assert_eq!(count, head);
    assert!(bytes >= head as usize * EVENT_BYTES);
    println!("(d) replay {count} events in pages: {d_rate:.0} events/s (target >= 1,000,000)");
    let start = Instant::now();
    let mut sub = log.clone().subscribe(1);
    let mut seen = 0u64;
    while seen < head {
        sub.next().await.unwrap().unwrap();
        seen += 1;
    }
    let d_sub_rate = seen as f64 / start.elapsed().as_secs_f64();
    println!("(d) replay {seen} events by subscription: {d_sub_rate:.0} events/s");
    drop(sub);
    log.close().await.unwrap();

    serde_json::json!({
        "event_bytes": EVENT_BYTES,
        "raw_fdatasync_median_us": micros(raw_median),
        "raw_fdatasync_p99_us": micros(raw_p99),
        "raw_group_commit_records_per_s": raw_group,
        "a_single_median_us": micros(a_median),
        "a_single_p99_us": micros(a_p99),
        "a_median_over_raw": a_ratio,
        "b_64_writers_events_per_s": b_rate,
        "b_p99_us": micros(percentile(&b_latencies, 0.99)),
        "b_over_raw_group": b_rate / raw_group,
        "c_batch100_events_per_s": c_rate,
        "d_replay_events": count,
        "d_replay_pages_events_per_s": d_rate,
        "d_replay_subscription_events_per_s": d_sub_rate,
        "commits": { "a": a_commits, "b": b_commits, "c": c_commits },
    })
}
