//! The complaintd server, built inside the end-to-end test crate so its tests can start it
//! as a process: exactly `complaintd::cli::run`, as the real binary runs it.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    complaintd::cli::run().await
}
