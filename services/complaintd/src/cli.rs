//! The `complaintd` command: configuration from the command line, file and environment,
//! logging, then serve until SIGINT or SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

use crate::config::Config;

#[derive(Parser)]
#[command(name = "complaintd", version, about = "The complaint workflow server")]
struct Args {
    /// A TOML configuration file (or COMPLAINTD_CONFIG).
    #[arg(long, env = "COMPLAINTD_CONFIG")]
    config: Option<PathBuf>,
    /// Serve read-only: open the log even when damaged, serve what is readable up to the
    /// damage, refuse every command and write nothing (for auditors).
    #[arg(long)]
    read_only: bool,
}

/// Runs the server as the `complaintd` binary does.
pub async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = Config::load(args.config.as_deref(), |key| std::env::var(key).ok())?;
    config.read_only |= args.read_only;
    let _telemetry = crate::telemetry::init(&config)?;
    // Handlers first: a signal that arrives as soon as the server says it is ready must
    // still shut it down gracefully, not kill it.
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let running = crate::server::start(&config).await?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            // SIGHUP: load the calendar and policy files again.
            _ = hup.recv() => {
                if let Err(e) = running.reload_rules().await {
                    tracing::error!(error = %format!("{e:#}"), "SLA rules not reloaded; the previous ones stay");
                }
            }
        }
    }
    tracing::info!("shutting down");
    running.shutdown().await
}
