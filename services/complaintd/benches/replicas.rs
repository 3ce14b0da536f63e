//! Several complaintd processes on one JetStream log: 64 clients in flight, spread over 1,
//! 2 and 3 processes (the release binary, each with a data directory of its own) on one
//! nats-server (`sync_interval: always`, the pinned 2.15 of `scripts/install-nats-server`),
//! each client taking complaints through their lives (six durable commands each). Every
//! row is measured in the same run; one process is the baseline of the ratios. After each
//! row the log is read back by a fresh open (gapless, chained, versions in order, ids
//! unique) and checked to hold every acknowledged step once. Each process's `/metrics`
//! gives the events it appended per JetStream commit (its group size).
//!
//! Run: `cargo bench -p complaintd --bench replicas` (`BENCH_SCALE` scales the work).
//! All processes and the server share this machine's cores: the figures are what one
//! machine gives, not a cluster of them.
#![allow(clippy::unwrap_used)] // a failed unwrap in a bench is a failed bench

use std::path::Path;
use std::time::{Duration, Instant};

use complaints_nats::testing::NatsServer;
use complaints_testkit::{
    bench_scaled as scaled, one_life, percentile, read_back_jetstream, start_replicas,
};

const IN_FLIGHT: usize = 64;

/// (events appended, commits) from a process's `/metrics`.
async fn appended_and_commits(http: &str) -> (f64, f64) {
    let text = reqwest::get(format!("http://{http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let mut events = 0.0;
    let mut commits = 0.0;
    for s in &scrape.samples {
        match (&*s.metric, &s.value) {
            ("complaints_events_appended_total", prometheus_parse::Value::Counter(v)) => {
                events += v;
            }
            ("complaints_log_commit_seconds", prometheus_parse::Value::Histogram(b)) => {
                commits += b.last().map_or(0.0, |b| b.count);
            }
            _ => {}
        }
    }
    (events, commits)
}

struct Row {
    processes: usize,
    commands: usize,
    rate: f64,
    p50: Duration,
    p99: Duration,
    per_commit: Vec<f64>,
}

async fn run(processes: usize, lives: usize) -> Row {
    let nats = NatsServer::start();
    let url = nats.url();
    let program = Path::new(env!("CARGO_BIN_EXE_complaintd"));
    let (servers, _dirs) = start_replicas(
        program,
        &url,
        processes,
        &[("RUST_LOG", "warn,complaintd=info")],
    )
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut clients = Vec::new();
    for w in 0..IN_FLIGHT {
        clients.push(servers[w % processes].client().await);
    }
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(w, mut client)| {
            tokio::spawn(async move {
                let mut out = Vec::new();
                for i in 0..lives {
                    out.push(one_life(&mut client, now, w * lives + i).await);
                }
                out
            })
        })
        .collect();
    let mut names = Vec::new();
    let mut latencies = Vec::new();
    for t in tasks {
        for (name, lat) in t.await.unwrap() {
            names.push(name);
            latencies.extend(lat);
        }
    }
    let elapsed = start.elapsed();
    let mut per_commit = Vec::new();
    for s in &servers {
        let (events, commits) = appended_and_commits(s.http_addr.as_deref().unwrap()).await;
        per_commit.push(events / commits.max(1.0));
    }
    for s in servers {
        let (status, _) = s.terminate().await;
        assert!(status.success());
    }
    let log = read_back_jetstream(&url, "EVENTLOG").await;
    for name in &names {
        let stream = format!("complaint-{}", name.trim_start_matches("complaints/"));
        assert_eq!(log.streams.get(&stream).map(Vec::len), Some(6), "{stream}");
    }
    latencies.sort();
    Row {
        processes,
        commands: latencies.len(),
        rate: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        per_commit,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let lives = scaled(12);
    let rows: Vec<Row> = runtime.block_on(async {
        let mut rows = Vec::new();
        for processes in [1, 2, 3] {
            rows.push(run(processes, lives).await);
        }
        rows
    });
    let base = rows[0].rate;
    println!("complaintd processes on one JetStream log, {IN_FLIGHT} clients in flight, six durable commands per complaint; every log read back and checked");
    for r in &rows {
        println!(
            "{} process(es): {:.0} commands/s ({} commands), p50 {:.2} ms, p99 {:.2} ms, {:.2}x one process; events per JetStream commit by process: {}",
            r.processes,
            r.rate,
            r.commands,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.rate / base,
            r.per_commit.iter().map(|e| format!("{e:.1}")).collect::<Vec<_>>().join(", ")
        );
    }
    let json: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "processes": r.processes,
                "commands_per_s": r.rate,
                "p99_ms": r.p99.as_secs_f64() * 1e3,
                "ratio_to_one": r.rate / base,
                "events_per_commit": r.per_commit,
            })
        })
        .collect();
    println!("{}", serde_json::Value::Array(json));
}
