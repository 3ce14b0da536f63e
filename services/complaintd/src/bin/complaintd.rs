//! complaintd: runs the complaint workflow server until SIGINT or SIGTERM.
//!
//! With no configuration it listens on 127.0.0.1:50051 and keeps its data in ./data.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use complaintd::config::{Config, LogFormat};

#[derive(Parser)]
#[command(version, about = "The complaint workflow server")]
struct Args {
    /// A TOML configuration file (or COMPLAINTD_CONFIG).
    #[arg(long, env = "COMPLAINTD_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config::load(args.config.as_deref(), |key| std::env::var(key).ok())?;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    let running = complaintd::server::start(&config).await?;
    shutdown_signal().await?;
    tracing::info!("shutting down");
    running.shutdown().await
}

async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("SIGINT handler"),
        _ = term.recv() => Ok(()),
    }
}
