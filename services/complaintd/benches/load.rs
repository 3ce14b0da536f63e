//! Load test of complaintd: 64 clients in flight, each registering complaints and taking
//! each through acknowledge, assign, findings, answer and close (6 durable commands per
//! complaint). In the same run, the same 64 clients call a no-op unary RPC (the gRPC
//! health `Check`) on the same server: the transport's ceiling on this machine.
//!
//! Run: `cargo bench -p complaintd --bench load`. `BENCH_DIR` picks where the data goes
//! (default: the system temp dir), `BENCH_SCALE` (default 1.0) scales the work.
//! Prints the figures and the ratio, then one JSON line.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::sync::Arc;
use std::time::{Duration, Instant};

use complaints_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use complaints_testkit::{bench_scaled as scaled, one_life, percentile, TestServer};
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// The allocator the complaintd binary ships with (`src/bin/complaintd.rs`): the server
/// measured here is the one that runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const IN_FLIGHT: usize = 64;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let base = std::env::var_os("BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("complaintd-load-")
        .tempdir_in(&base)
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let json = runtime.block_on(async {
        // The system clock: the server's, as in production.
        let server = TestServer::start_in(dir, Arc::new(eventlog::SystemClock), |_| {}).await;
        println!("complaintd load: {IN_FLIGHT} clients in flight, server and clients in one process on this machine, data in {}", server.config().data_dir.display());

        // The transport's ceiling: a no-op unary call (connected before the clock starts).
        let channel = Channel::from_shared(server.url()).unwrap().connect().await.unwrap();
        let calls = scaled(1_500);
        let start = Instant::now();
        let tasks: Vec<_> = (0..IN_FLIGHT)
            .map(|_| {
                let mut health = HealthClient::new(channel.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(calls);
                    for _ in 0..calls {
                        let t = Instant::now();
                        health.check(HealthCheckRequest { service: String::new() }).await.unwrap();
                        lat.push(t.elapsed());
                    }
                    lat
                })
            })
            .collect();
        let mut noop = Vec::new();
        for t in tasks {
            noop.extend(t.await.unwrap());
        }
        let noop_rate = noop.len() as f64 / start.elapsed().as_secs_f64();
        noop.sort();
        println!("no-op unary call: {noop_rate:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms", ms(percentile(&noop, 0.5)), ms(percentile(&noop, 0.99)));

        // Durable commands.
        let lives = scaled(40);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let start = Instant::now();
        let tasks: Vec<_> = (0..IN_FLIGHT)
            .map(|w| {
                let mut client = ComplaintServiceClient::new(channel.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(lives * 6);
                    for i in 0..lives {
                        lat.extend(one_life(&mut client, now, w * lives + i).await.1);
                    }
                    lat
                })
            })
            .collect();
        let mut commands = Vec::new();
        for t in tasks {
            commands.extend(t.await.unwrap());
        }
        let rate = commands.len() as f64 / start.elapsed().as_secs_f64();
        commands.sort();
        let (p50, p99) = (percentile(&commands, 0.5), percentile(&commands, 0.99));
        println!(
            "durable commands: {rate:.0} commands/s ({} commands), p50 {:.2} ms, p99 {:.2} ms; {:.0}% of the no-op rate (target >= 70%, p99 <= 10 ms)",
            commands.len(), ms(p50), ms(p99), rate / noop_rate * 100.0
        );
        // The data goes with the server's temporary directory.
        server.shutdown().await;
        serde_json::json!({
            "in_flight": IN_FLIGHT,
            "noop_calls_per_s": noop_rate,
            "noop_p99_ms": ms(percentile(&noop, 0.99)),
            "commands": commands.len(),
            "commands_per_s": rate,
            "command_p50_ms": ms(p50),
            "command_p99_ms": ms(p99),
            "ratio_to_noop": rate / noop_rate,
        })
    });
    println!("{json}");
}
