//! complaints-publisher: the outbox publisher as a process of its own, for a log on NATS
//! JetStream (which many processes can read, unlike sled). Run exactly one per log: it
//! keeps its cursor in a local file.
//!
//! ```sh
//! complaints-publisher --log-url nats://n1:4222,nats://n2:4222 --log-stream EVENTLOG \
//!     --publish-url nats://n1:4222 --cursor /var/lib/complaints/publisher.cursor
//! ```
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use complaints_nats::{Mode, Payload, Publisher, PublisherConfig};
use eventlog::SystemClock;
use eventlog_jetstream::{JetStreamConfig, JetStreamEventLog};

#[derive(Parser)]
#[command(version, about = "Publish the complaint event log to NATS")]
struct Args {
    /// The NATS servers holding the JetStream log.
    #[arg(long, env = "COMPLAINTD_JETSTREAM_URL")]
    log_url: String,
    /// The JetStream stream of the log.
    #[arg(long, env = "COMPLAINTD_JETSTREAM_STREAM", default_value = "EVENTLOG")]
    log_stream: String,
    /// Where to publish (by default the log's servers).
    #[arg(long, env = "COMPLAINTD_NATS_URL")]
    publish_url: Option<String>,
    /// jetstream (acknowledged, deduplicated by event id) or core.
    #[arg(long, default_value = "jetstream")]
    mode: String,
    /// The JetStream stream events are published into.
    #[arg(long, default_value = "COMPLAINTS_EVENTS")]
    stream: String,
    #[arg(long, default_value = "complaints.events")]
    subject_prefix: String,
    /// The file keeping the last position published.
    #[arg(long, default_value = "publisher.cursor")]
    cursor: PathBuf,
    /// The messages' bodies: protobuf (the stored event) or json (its JSON mapping,
    /// personal fields still sealed).
    #[arg(long, env = "COMPLAINTD_NATS_PAYLOAD", default_value = "protobuf")]
    payload: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let log = JetStreamEventLog::open(
        JetStreamConfig::new(args.log_url.clone(), &args.log_stream),
        Arc::new(SystemClock),
    )
    .await
    .with_context(|| {
        format!(
            "cannot open the log {} at {}",
            args.log_stream, args.log_url
        )
    })?;
    let mut config = PublisherConfig::new(args.publish_url.unwrap_or(args.log_url), args.cursor);
    config.subject_prefix = args.subject_prefix;
    config.mode = match args.mode.as_str() {
        "jetstream" => Mode::JetStream {
            stream: args.stream,
            duplicate_window: std::time::Duration::from_secs(120),
        },
        "core" => Mode::Core,
        other => anyhow::bail!("--mode {other:?} is not jetstream or core"),
    };
    config.payload = match args.payload.as_str() {
        "protobuf" => Payload::Protobuf,
        "json" => Payload::Json,
        other => anyhow::bail!("--payload {other:?} is not protobuf or json"),
    };
    let publisher = Publisher::spawn(Arc::new(log), config).context("starting the publisher")?;
    let mut status = publisher.status();
    tracing::info!("publishing");
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            changed = status.changed() => {
                if changed.is_err() { break; }
                let s = status.borrow().clone();
                tracing::debug!(published = s.published, head = s.head, lag = s.lag(), error = ?s.last_error, "status");
            }
        }
    }
    publisher.stop().await;
    tracing::info!("stopped");
    Ok(())
}
