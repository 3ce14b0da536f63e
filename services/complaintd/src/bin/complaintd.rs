//! complaintd: runs the complaint workflow server until SIGINT or SIGTERM.
//!
//! With no configuration it listens on 127.0.0.1:50051 and keeps its data in ./data.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    complaintd::cli::run().await
}
