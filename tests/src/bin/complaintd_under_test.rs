//! The complaintd server, built inside the end-to-end test crate so its tests can start it
//! as a process: exactly `complaintd::cli::run`, as the real binary runs it.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    complaintd::cli::run().await
}
