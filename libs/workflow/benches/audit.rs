//! Audit benchmark: verification and export of a log of ~1,000,000 events (~100,000
//! complaints, 10 events each). Targets (issue 18): offline verification at 2,000,000
//! events/s or more, JSON export at 500,000 events/s or more; the export is also measured
//! with the reference rendering (through a `serde_json::Value`) in the same run.
//!
//! Each rate is printed with its ratio to a baseline measured in the same run on the same
//! log: walking the stored records without checking anything (the cost of reading).
//!
//! Run: `cargo bench -p complaints-workflow --bench audit`. `BENCH_DIR` picks where the
//! log goes (default: the system temp dir); `BENCH_SCALE` (default 1.0) scales the counts.
//! Prints the figures, then one JSON line.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::io::Write;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use common::{scaled, write_log};
use complaints_events::export;
use eventlog::audit::{Outcome, Verifier};
use eventlog::EventLog;
use eventlog_sled::{OfflineLog, OpenCheck, SledConfig, SledEventLog};
use jiff::Timestamp;

/// Writes a batch of events as lines of an export.
type Render = dyn Fn(
    &[(eventlog::RecordedEvent, eventlog::ChainHash)],
    &mut dyn Write,
) -> std::io::Result<()>;

fn main() {
    let base_dir = std::env::var_os("BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base_dir.join(format!("audit-bench-{}", std::process::id()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let complaints = scaled(100_000);
    let path = dir.join("log");
    let events = runtime.block_on(async {
        let log = Arc::new(SledEventLog::open(SledConfig::new(&path)).unwrap());
        let t = Instant::now();
        let base: Timestamp = "2026-06-01T09:00:00Z".parse().unwrap();
        write_log(log.clone(), complaints, 10, base).await;
        let events = log.head().await.unwrap();
        println!(
            "wrote {events} events for {complaints} complaints in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        log.close().await.unwrap();
        events
    });
    // sled lets go of its directory lock a little after the last handle (sled#1234);
    // OfflineLog::open retries for that.
    let log = OfflineLog::open(&path).unwrap();

    let rate = |n: u64, t: Instant| n as f64 / t.elapsed().as_secs_f64();

    // Baseline: walk the stored records, checking nothing. Twice: the first walk reads the
    // log into sled's cache (what the baseline measured), the second, the baseline
    // of the ratios, finds it there, as every walk after it does.
    let mut bytes = 0usize;
    let mut walked = 0u64;
    let mut rates = [0.0; 2];
    for r in &mut rates {
        (bytes, walked) = (0, 0);
        let t = Instant::now();
        log.scan(1, |r| {
            bytes += r.unwrap().bytes.len();
            walked += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
        *r = rate(walked, t);
    }
    let [first_walk_rate, walk_rate] = rates;
    assert_eq!(walked, events);
    println!(
        "baseline walk: {walked} records, {:.0} MiB, {walk_rate:.0} records/s (the first walk, into the cache: {first_walk_rate:.0})",
        bytes as f64 / (1 << 20) as f64
    );

    // Offline verification: CRC, decode, positions, hash chain.
    let t = Instant::now();
    let report = log.verify(Verifier::new(), |_| {}).unwrap();
    let verify_rate = rate(report.records, t);
    assert_eq!(report.outcome, Outcome::Intact);
    assert_eq!(report.records, events);
    println!(
        "offline verify: {verify_rate:.0} events/s ({:.2}x the baseline walk; target >= 2,000,000)",
        verify_rate / walk_rate
    );

    // Export to JSON Lines (decoded payloads), into a sink: as `complaintctl audit export
    // --data-dir` does (batches rendered on every core), then the same with the reference
    // rendering (through a `serde_json::Value`) for the ratio.
    let export = |render: &Render| {
        let t = Instant::now();
        let mut out = std::io::BufWriter::new(std::io::sink());
        let mut exported = 0u64;
        let mut batch = Vec::with_capacity(4096);
        let mut flush = |batch: &mut Vec<_>, out: &mut std::io::BufWriter<std::io::Sink>| {
            render(batch, out).unwrap();
            exported += batch.len() as u64;
            batch.clear();
        };
        log.scan(1, |r| {
            let stored = r.unwrap();
            let event = stored.decode().unwrap();
            batch.push((event, stored.hash()));
            if batch.len() == 4096 {
                flush(&mut batch, &mut out);
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        flush(&mut batch, &mut out);
        assert_eq!(exported, events);
        rate(exported, t)
    };
    let export_rate = export(&export::write_lines);
    let reference_rate = export(&|batch, out| {
        let lines = eventlog::parallel::map_in_order(batch, 256, |(record, hash)| {
            export::event_json(record, *hash).to_string()
        });
        lines.iter().try_for_each(|line| writeln!(out, "{line}"))
    });
    println!(
        "offline export (JSON): {export_rate:.0} events/s ({:.2}x the baseline walk; {:.2}x the reference rendering's {reference_rate:.0} events/s)",
        export_rate / walk_rate,
        export_rate / reference_rate,
    );
    drop(log);

    // Online: what AuditService.Verify does (pages of read_stored through the trait),
    // after the open-time check of every record (which includes the chain).
    let (open_rate, online_rate) = runtime.block_on(async {
        let t = Instant::now();
        let log = SledEventLog::open(SledConfig {
            check_at_open: OpenCheck::Full,
            ..SledConfig::new(&path)
        })
        .unwrap();
        let open_rate = rate(events, t);
        let t = Instant::now();
        let mut verifier = Verifier::new();
        let mut from = 1;
        loop {
            let page = log.read_stored(from, 1024).await.unwrap();
            let Some(last) = page.last() else { break };
            from = last.position + 1;
            verifier.check_all(&page);
        }
        let report = verifier.finish();
        assert_eq!(report.outcome, Outcome::Intact);
        let online_rate = rate(report.records, t);
        log.close().await.unwrap();
        (open_rate, online_rate)
    });
    println!(
        "open with the full check: {open_rate:.0} events/s; online verify over read_stored: {online_rate:.0} events/s ({:.2}x the baseline walk)",
        online_rate / walk_rate
    );
    std::fs::remove_dir_all(&dir).ok();
    println!(
        "{}",
        serde_json::json!({
            "events": events,
            "baseline_walk_per_s": walk_rate,
            "first_walk_per_s": first_walk_rate,
            "offline_verify_per_s": verify_rate,
            "offline_export_json_per_s": export_rate,
            "offline_export_json_reference_per_s": reference_rate,
            "open_with_check_per_s": open_rate,
            "online_verify_per_s": online_rate,
        })
    );
}
