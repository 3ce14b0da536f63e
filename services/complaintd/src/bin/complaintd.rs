//! complaintd: runs the complaint workflow server until SIGINT or SIGTERM.
//!
//! With no configuration it listens on 127.0.0.1:50051 and keeps its data in ./data.

/// mimalloc rather than glibc's malloc: the projections' reader allocates the events that
/// their applier frees on another thread, which costs glibc a contended arena lock per
/// free (rebuild 408k events/s with glibc, 644k with mimalloc; docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    complaintd::cli::run().await
}
