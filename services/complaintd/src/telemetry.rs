//! Logging and tracing: the log lines (text or JSON) and, when `otlp_endpoint` is set and
//! complaintd is built with the `otlp` feature, every span exported over OTLP/gRPC to a
//! collector (Jaeger, Tempo, the OpenTelemetry Collector).
//!
//! The spans: `grpc` around every call (service, method, complaint, code: see
//! [`crate::metrics::GrpcMetricsLayer`]) and `execute` around every command (complaint,
//! command, outcome), with the log's append inside it.

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{Config, LogFormat};

/// Flushes the exported spans when dropped (at the end of `main`).
pub struct Guard {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("complaintd: exporting the last spans failed: {e}");
            }
        }
    }
}

/// Installs the process's subscriber as `config` asks.
pub fn init(config: &Config) -> anyhow::Result<Guard> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let (text, json) = match config.log_format {
        LogFormat::Text => (Some(tracing_subscriber::fmt::layer()), None),
        LogFormat::Json => (None, Some(tracing_subscriber::fmt::layer().json())),
    };
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json);
    #[cfg(feature = "otlp")]
    {
        let (layer, provider) = match &config.otlp_endpoint {
            Some(endpoint) => {
                let (layer, provider) = otlp(endpoint)?;
                (Some(layer), Some(provider))
            }
            None => (None, None),
        };
        registry.with(layer).init();
        if let Some(endpoint) = &config.otlp_endpoint {
            tracing::info!(%endpoint, "exporting spans over OTLP");
        }
        Ok(Guard { provider })
    }
    #[cfg(not(feature = "otlp"))]
    {
        if let Some(endpoint) = &config.otlp_endpoint {
            anyhow::bail!(
                "otlp_endpoint = {endpoint:?}, but this complaintd was built without OTLP export (cargo build --features otlp)"
            );
        }
        registry.init();
        Ok(Guard {})
    }
}

/// The tracing layer that exports to `endpoint`, and its provider.
#[cfg(feature = "otlp")]
fn otlp<S>(
    endpoint: &str,
) -> anyhow::Result<(
    tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
    opentelemetry_sdk::trace::SdkTracerProvider,
)>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| anyhow::anyhow!("OTLP exporter for {endpoint}: {e}"))?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("complaintd")
                .build(),
        )
        .build();
    let tracer = provider.tracer("complaintd");
    Ok((tracing_opentelemetry::layer().with_tracer(tracer), provider))
}
