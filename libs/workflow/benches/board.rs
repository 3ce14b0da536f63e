//! Projection benchmark (issue 4's targets):
//! - rebuild all projections (complaint list, SLA board, regulator queue) from a log of
//!   ~1,000,000 events (~100,000 complaints, 10 events each): target >= 500,000 events/s;
//! - list the 100 most urgent clocks of 1,000,000 open complaints: target p99 < 5 ms;
//! - resident memory with 1,000,000 open complaints: target < 512 MiB.
//!
//! Run: `cargo bench -p complaints-workflow --bench board`. `BENCH_DIR` picks where the
//! logs go (default: the system temp dir); `BENCH_SCALE` (default 1.0) scales the counts.
//! Prints the figures, then one JSON line. `BENCH_LOG=<a sled log's directory>` measures
//! instead the heap each projection of that log holds (see `heap_by_projection`).
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
#![allow(unsafe_code)] // a counting wrapper around mimalloc, to measure the projections' heap

mod common;

use complaints_projections::board::SlaBoard;
use complaints_projections::list::ComplaintList;
use complaints_projections::queue::RegulatorQueue;
use complaints_projections::Projection;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{rss_mib, scaled, write_log};
use complaints_projections::board::ClockQuery;
use complaints_projections::snapshot::SnapshotStore;
use complaints_projections::Projections;
use complaints_sla::Engine;
use eventlog::EventLog;
use eventlog_sled::{SledConfig, SledEventLog};
use jiff::Timestamp;

/// Counts the bytes allocated and not yet freed, so the projections' own memory can be
/// told apart from the log's and from what the allocator keeps.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_mib() -> f64 {
    LIVE.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
}

/// Rebuilds all projections (complaint list, SLA board, regulator queue) from the whole
/// log, as a start without a snapshot does (the service's own feeder: one reader decoding
/// pages while the previous page is applied); returns them and the time taken.
async fn rebuild(
    log: &Arc<SledEventLog>,
    engine: Arc<Engine>,
) -> (Arc<Projections>, Duration, u64) {
    let projections = Arc::new(Projections::new(engine));
    let head = log.head().await.unwrap();
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let start = Instant::now();
    let task = projections.spawn(log.clone(), None, 0, stop);
    projections.wait_for(head).await;
    let took = start.elapsed();
    task.abort();
    (projections, took, head)
}

/// Reads the whole log page by page, handing each page to `f`; returns the events read.
async fn each_page(
    log: &Arc<SledEventLog>,
    mut f: impl FnMut(Vec<eventlog::RecordedEvent>),
) -> u64 {
    let (mut from, mut count) = (1, 0u64);
    loop {
        let page = log
            .read_all(from, eventlog::Direction::Forward, 4096)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        count += page.len() as u64;
        f(page);
    }
    count
}

/// Applying alone (the log read and decoded beforehand), per projection.
async fn breakdown(log: &Arc<SledEventLog>, engine: Arc<Engine>) {
    use complaints_projections::Decoded;
    let mut pages = Vec::new();
    let events = each_page(log, |page| {
        pages.push(
            page.into_iter()
                .map(|r| Decoded::decode(r).unwrap())
                .collect::<Vec<_>>(),
        );
    })
    .await;
    let p = Projections::new(engine);
    let rate = |t: Instant| events as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    pages
        .iter()
        .for_each(|b| p.get::<ComplaintList>().unwrap().apply_batch(b).unwrap());
    println!("apply only: list {:.0} events/s", rate(t));
    let t = Instant::now();
    pages
        .iter()
        .for_each(|b| p.get::<SlaBoard>().unwrap().apply_batch(b).unwrap());
    println!("apply only: board {:.0} events/s", rate(t));
    let t = Instant::now();
    pages
        .iter()
        .for_each(|b| p.get::<RegulatorQueue>().unwrap().apply_batch(b).unwrap());
    println!("apply only: queue {:.0} events/s", rate(t));
}

/// Events per second of reading the whole log page by page (and decoding each event).
async fn read_only(log: &Arc<SledEventLog>, decode: bool) -> f64 {
    let start = Instant::now();
    let count = each_page(log, |page| {
        if decode {
            for record in page {
                std::hint::black_box(complaints_projections::Decoded::decode(record).unwrap());
            }
        }
    })
    .await;
    count as f64 / start.elapsed().as_secs_f64()
}

/// With `BENCH_LOG` set to a sled log's directory (the scale bench keeps its ten-year log
/// with `BENCH_KEEP=1`): the heap each projection holds, built from that whole log and
/// then saved and restored as a restart does (its tables without the slack of growth),
/// one projection at a time; instead of the figures of `main`.
async fn heap_by_projection(path: std::path::PathBuf) -> serde_json::Value {
    let log = Arc::new(SledEventLog::open(SledConfig::new(path)).unwrap());
    // The log's own heap: after its open, and after one walk of its whole history (what
    // a rebuild, the history check or an export does), against sled's cache capacity.
    let opened = live_mib();
    let walk = read_only(&log, false).await;
    let walked = live_mib();
    println!(
        "the log: {opened:.0} MiB of heap once open, {walked:.0} MiB after a walk of it ({walk:.0} records/s); sled's cache capacity {:.0} MiB",
        SledConfig::new(".").cache_capacity_bytes as f64 / (1024.0 * 1024.0)
    );
    let (projections, took, events) = rebuild(&log, Arc::new(Engine::built_in())).await;
    println!(
        "rebuilt all projections from {events} events in {:.1} s ({:.0} events/s)",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64()
    );
    let complaints = projections
        .get::<SlaBoard>()
        .unwrap()
        .figures(Timestamp::now())
        .complaints;
    let mib = |bytes: f64| bytes / (1024.0 * 1024.0);
    let per = |bytes: f64| bytes / complaints.max(1) as f64;
    let mut rows = Vec::new();
    let (mut built_all, mut restored_all) = (0.0, 0.0);
    let each: [Arc<dyn Projection>; 4] = [
        projections.get::<ComplaintList>().unwrap(),
        projections.get::<SlaBoard>().unwrap(),
        projections.get::<RegulatorQueue>().unwrap(),
        projections
            .get::<complaints_projections::reports::Reports>()
            .unwrap(),
    ];
    for p in &each {
        let t = Instant::now();
        let (position, bytes) = p.save().unwrap();
        let save_ms = t.elapsed().as_secs_f64() * 1e3;
        let with = live_mib();
        p.reset();
        let built = with - live_mib();
        let before = live_mib();
        let t = Instant::now();
        p.restore(position, &bytes).unwrap();
        let restore_ms = t.elapsed().as_secs_f64() * 1e3;
        let restored = live_mib() - before;
        built_all += built;
        restored_all += restored;
        println!(
            "  {:<8} built {built:7.1} MiB ({:5.0} bytes a complaint), restored {restored:7.1} MiB ({:5.0} bytes a complaint), snapshot section {:7.1} MiB, saved in {save_ms:.0} ms, restored in {restore_ms:.0} ms",
            p.name(),
            per(built * 1048576.0),
            per(restored * 1048576.0),
            mib(bytes.len() as f64),
        );
        rows.push(serde_json::json!({"projection": p.name(), "built_mib": built, "restored_mib": restored, "section_mib": mib(bytes.len() as f64), "save_ms": save_ms, "restore_ms": restore_ms}));
    }
    println!(
        "all: built {built_all:.1} MiB, restored {restored_all:.1} MiB, for {complaints} complaints ({:.0} and {:.0} bytes a complaint); process RSS {:.0} MiB",
        per(built_all * 1048576.0),
        per(restored_all * 1048576.0),
        rss_mib()
    );
    drop(each);
    drop(projections);
    log.close().await.unwrap();
    serde_json::json!({"events": events, "complaints": complaints, "log_open_heap_mib": opened, "log_walked_heap_mib": walked, "rebuild_s": took.as_secs_f64(), "built_mib": built_all, "restored_mib": restored_all, "projections": rows})
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
    if let Some(path) = std::env::var_os("BENCH_LOG") {
        let json = runtime.block_on(heap_by_projection(path.into()));
        println!("{json}");
        return;
    }
    let json = runtime.block_on(async {
        let engine = Arc::new(Engine::built_in());
        let base: Timestamp = "2026-06-01T09:00:00Z".parse().unwrap();

        // 1. Rebuild from ~1M events (~100k complaints x 10 events).
        let complaints = scaled(100_000);
        let log = Arc::new(SledEventLog::open(SledConfig::new(dir.join("rebuild"))).unwrap());
        let t = Instant::now();
        // As complaintd does at its first start: the rules in force, recorded first.
        let rules = complaints_sla::RuleSources::built_in();
        complaints_workflow::rules::record_if_changed(&*log, &rules, "bench").await.unwrap();
        write_log(log.clone(), complaints, 10, base).await;
        println!("wrote {} events for {complaints} complaints in {:.1} s", log.head().await.unwrap(), t.elapsed().as_secs_f64());
        // Where the time goes: reading the log alone, and reading and decoding it.
        let (read, decode) = (read_only(&log, false).await, read_only(&log, true).await);
        println!("of which: reading the log alone {read:.0} events/s; reading and decoding {decode:.0} events/s");
        if std::env::var_os("BENCH_BREAKDOWN").is_some() {
            breakdown(&log, engine.clone()).await;
        }
        let (projections, took, events) = rebuild(&log, engine.clone()).await;
        let rebuild_rate = events as f64 / took.as_secs_f64();
        println!("rebuild of all projections: {events} events in {:.2} s = {rebuild_rate:.0} events/s (target >= 500,000)", took.as_secs_f64());
        drop(projections);
        log.close().await.unwrap();
        drop(log);

        // 2. 1M open complaints (registered only): memory, and the 100 most urgent.
        let open = scaled(1_000_000);
        let log = Arc::new(SledEventLog::open(SledConfig::new(dir.join("open"))).unwrap());
        complaints_workflow::rules::record_if_changed(&*log, &rules, "bench").await.unwrap();
        write_log(log.clone(), open, 1, base).await;
        // Read the log once first, so that the log's own cache is full before measuring.
        read_only(&log, false).await;
        let before = rss_mib();
        let (projections, took, _) = rebuild(&log, engine.clone()).await;
        // Resident memory in steady state: what the allocator keeps of the transient
        // (pages in flight, the old halves of grown tables) goes back first. A running
        // service gets there by itself as mimalloc purges free pages.
        // SAFETY: a plain call into the allocator in use.
        unsafe { libmimalloc_sys::mi_collect(true) };
        let after = rss_mib();
        let board = &projections.get::<SlaBoard>().unwrap();
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
        // The board's figures (GetBoard, and every view of the past): every clock
        // assessed, on one thread (the baseline) and split over the cores, best of five.
        let zone = jiff::tz::TimeZone::UTC;
        let best = |f: &dyn Fn() -> complaints_projections::board::Figures| {
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    let figures = f();
                    assert_eq!(figures.complaints as usize, open);
                    t.elapsed().as_secs_f64()
                })
                .fold(f64::MAX, f64::min)
        };
        let figures_one_s = best(&|| board.figures_in_parts(now, &zone, 1));
        let figures_s = best(&|| board.figures_in(now, &zone));
        println!(
            "figures of {open} complaints: {:.1} ms on one thread, {:.1} ms split over the cores ({:.2}x)",
            figures_one_s * 1e3,
            figures_s * 1e3,
            figures_one_s / figures_s
        );
        // What the projections hold: the heap they give back when dropped (the log's
        // cache, which reading it filled, stays).
        let with = live_mib();
        drop(projections);
        let heap = with - live_mib();
        println!("{open} open complaints: projections built in {:.2} s; they hold {heap:.0} MiB of heap (target < 512 MiB); process RSS {after:.0} MiB, {:.0} MiB more than before building them", took.as_secs_f64(), after - before);

        // 3. A restart with a snapshot: saved at the stop, restored at the start.
        let store = SnapshotStore::new(dir.join("snapshot"));
        let head = log.head().await.unwrap();
        let projections = Arc::new(Projections::new(engine.clone()));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = projections.spawn(log.clone() as Arc<dyn EventLog>, Some(store.clone()), 0, stopped);
        projections.get::<SlaBoard>().unwrap().wait_for(head).await;
        let t = Instant::now();
        stop.send(true).unwrap();
        task.await.unwrap();
        let save_s = t.elapsed().as_secs_f64();
        let snapshot_mib = std::fs::metadata(store.path()).unwrap().len() as f64 / (1024.0 * 1024.0);
        drop(projections);
        let projections = Arc::new(Projections::new(engine.clone()));
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let t = Instant::now();
        let task = projections.spawn(log.clone() as Arc<dyn EventLog>, Some(store), 0, stopped);
        projections.get::<SlaBoard>().unwrap().wait_for(head).await;
        let restore_s = t.elapsed().as_secs_f64();
        assert_eq!(projections.started_from(), Some(head + 1), "restored, not rebuilt");
        task.abort();
        println!("snapshot of {open} open complaints: {snapshot_mib:.0} MiB, saved (with fsync) in {save_s:.2} s, restored in {restore_s:.2} s (rebuilding took {:.2} s)", took.as_secs_f64());
        drop(projections);
        log.close().await.unwrap();
        serde_json::json!({
            "rebuild_events": events,
            "rebuild_events_per_s": rebuild_rate,
            "read_events_per_s": read,
            "read_and_decode_events_per_s": decode,
            "open_complaints": open,
            "rss_mib": after,
            "projections_heap_mib": heap,
            "rss_growth_mib": after - before,
            "top100_p50_ms": p(0.5),
            "top100_p99_ms": p(0.99),
            "figures_one_thread_ms": figures_one_s * 1e3,
            "figures_ms": figures_s * 1e3,
            "snapshot_mib": snapshot_mib,
            "snapshot_save_s": save_s,
            "snapshot_restore_s": restore_s,
            "open_rebuild_s": took.as_secs_f64(),
        })
    });
    std::fs::remove_dir_all(&dir).ok();
    println!("{json}");
}
