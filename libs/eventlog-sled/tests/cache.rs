//! The log's memory is bounded by sled's cache: after a walk of a log many times the
//! cache's capacity, the heap holds about that capacity, not the log. sled 0.34 as
//! published kept every page of the log it had read (its cache counted the log's pages,
//! written as blobs, at the size of their pointers, and accounted accesses 64 at a time
//! per shard): `vendor/sled/PATCHES.md`. One test in this binary, since it counts the
//! whole process's heap.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
#![allow(unsafe_code)] // a counting wrapper around the system allocator, to measure the heap

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use bytes::Bytes;
use eventlog::{Direction, EventLog, ExpectedVersion, NewEvent, StreamId};
use eventlog_sled::{SledConfig, SledEventLog};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MIB: isize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_walk_of_the_whole_log_keeps_about_the_cache_capacity_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let config = || {
        let mut config = SledConfig::new(&path);
        config.cache_capacity_bytes = 4 << 20;
        config
    };
    // 128 MiB of records, appended as commands append them (a few at a time): 2,048
    // streams of 64 events of 1 KiB each.
    let (streams, per_stream, size) = (2048, 64, 1 << 10);
    let log = SledEventLog::open(config()).unwrap();
    for s in 0..streams {
        let events = (0..per_stream)
            .map(|i| {
                NewEvent::new(
                    "test.happened",
                    "user:t",
                    Bytes::from(vec![(s + i) as u8; size]),
                )
            })
            .collect();
        let stream = StreamId::new(format!("s-{s}")).unwrap();
        log.append(&stream, ExpectedVersion::NoStream, events)
            .await
            .unwrap();
    }
    log.close().await.unwrap();
    drop(log);

    let log = SledEventLog::open(config()).unwrap();
    let before = LIVE.load(Ordering::Relaxed);
    let (mut from, mut read, mut bytes) = (1, 0, 0);
    loop {
        let page = log.read_all(from, Direction::Forward, 512).await.unwrap();
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        read += page.len();
        bytes += page.iter().map(|r| r.payload.len()).sum::<usize>();
    }
    let grown = LIVE.load(Ordering::Relaxed) - before;
    assert_eq!(read, streams * per_stream);
    assert_eq!(bytes, streams * per_stream * size);
    // About the capacity, and at most a page (~1.6 MiB) in each of sled's 32 shards
    // besides; the log is 128 MiB.
    assert!(
        grown < 64 * MIB,
        "a walk of {} MiB of records left {} MiB more on the heap (cache capacity 4 MiB)",
        bytes as isize / MIB,
        grown / MIB
    );
    log.close().await.unwrap();
}
