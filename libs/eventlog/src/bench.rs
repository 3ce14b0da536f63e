//! What the backends' append benchmarks share (feature `conformance`, like the suite):
//! their scale and data directory from the environment, the runtime, and the two ways of
//! appending they measure.
#![allow(clippy::unwrap_used)] // test support (feature `conformance`): a failed unwrap is a failed test

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{EventLog, ExpectedVersion, NewEvent, StreamId};

/// `n` scaled by `BENCH_SCALE` (default 1.0), and at least `at_least`.
pub fn scaled(n: usize, at_least: usize) -> usize {
    let scale: f64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * scale) as usize).max(at_least)
}

/// A new directory `<name>-<process id>` for a benchmark's data, in `BENCH_DIR` (default:
/// the system temp dir).
pub fn data_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the benchmark directory");
    dir
}

/// The runtime benchmarks run on: two worker threads (the target machine's cores).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// `n` appends of one event each to `stream`, one after the other: each one's latency.
pub async fn one_by_one(
    log: &dyn EventLog,
    stream: &StreamId,
    n: usize,
    event: fn() -> NewEvent,
) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        log.append(stream, ExpectedVersion::Any, vec![event()])
            .await
            .expect("append");
        latencies.push(start.elapsed());
    }
    latencies
}

/// `writers` concurrent writers, each making `per_writer` appends of one event to its own
/// stream `complaint-w<i>`: every append's latency.
pub async fn concurrent(
    log: Arc<dyn EventLog>,
    writers: usize,
    per_writer: usize,
    event: fn() -> NewEvent,
) -> Vec<Duration> {
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                let stream = StreamId::new(format!("complaint-w{w}")).expect("a stream id");
                one_by_one(&*log, &stream, per_writer, event).await
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(writers * per_writer);
    for task in tasks {
        latencies.extend(task.await.expect("a writer"));
    }
    latencies
}
