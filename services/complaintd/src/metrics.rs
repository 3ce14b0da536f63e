//! Metrics for whoever runs the service, in the Prometheus text format (`/metrics` on the
//! HTTP port), through the `metrics` facade and its Prometheus exporter.
//!
//! - Calls: [`GrpcMetricsLayer`] counts every gRPC call by service, method and status
//!   code (`complaints_grpc_requests_total`) and times it
//!   (`complaints_grpc_request_duration_seconds`), refusals by the authorisation layer
//!   included; it also opens the call's tracing span (method, complaint, code).
//! - Writes: the log backends record append and commit latency (sled's flush and the
//!   fdatasync after it separately) and the events appended; the SLA watcher counts the
//!   crossings it records.
//! - State, read when scraped ([`Gauges`]): the log's head, each projection's position
//!   and lag (events and seconds), the publisher's lag, running clocks by regime and
//!   state, the timer backlog (crossings due but not recorded yet), the snapshot's age,
//!   and readiness.
//!
//! Label values are bounded: method names from the server's own table, status code
//! names, regimes from the loaded policies, projection names; never complaint ids.
//! The recorder is global to the process (the facade's design): servers started in one
//! process (tests) share it.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use complaints_projections::board::SlaBoard;
use complaints_projections::Projections;
use eventlog::{Clock, EventLog};
use futures::future::BoxFuture;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing::Instrument as _;

use crate::authz::{allowed_roles, Access};

/// Bucket bounds of every latency histogram, in seconds: from half a millisecond (an
/// fdatasync on a fast disk) to ten seconds (a stuck call).
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use. `None` if another recorder
/// was installed first (then `/metrics` says so).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no metrics: a recorder could not be installed");
                    None
                }
            }
        })
        .as_ref()
}

/// The help text of every metric (`# HELP` lines).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "complaints_grpc_requests_total",
        "gRPC calls finished, by service, method and status code"
    );
    describe_histogram!(
        "complaints_grpc_request_duration_seconds",
        Unit::Seconds,
        "gRPC call latency, by service and method (streams: their whole life)"
    );
    describe_histogram!(
        "complaints_log_append_seconds",
        Unit::Seconds,
        "Append latency until durable (sled) or acknowledged by the stream (JetStream)"
    );
    describe_histogram!(
        "complaints_log_commit_seconds",
        Unit::Seconds,
        "Durable commit latency: sled flush plus fdatasync, or one JetStream group publish"
    );
    describe_histogram!(
        "complaints_log_sled_flush_seconds",
        Unit::Seconds,
        "sled's flush within a commit (its write-out)"
    );
    describe_histogram!(
        "complaints_log_fdatasync_seconds",
        Unit::Seconds,
        "The fdatasync calls after sled's flush within a commit"
    );
    describe_counter!(
        "complaints_events_appended_total",
        "Events appended to the log by this process (retries that wrote nothing excluded)"
    );
    describe_counter!(
        "complaints_sla_crossings_recorded_total",
        "SLA threshold crossings recorded by the watcher, by kind and regime"
    );
    describe_gauge!("complaints_log_head_position", "The log's last position");
    describe_gauge!(
        "complaints_projection_position",
        "The last log position a projection applied"
    );
    describe_gauge!(
        "complaints_projection_lag_events",
        "Events in the log a projection has not applied yet"
    );
    describe_gauge!(
        "complaints_projection_lag_seconds",
        Unit::Seconds,
        "Age of the oldest event a projection has not applied yet (0 when caught up)"
    );
    describe_gauge!(
        "complaints_publisher_lag_events",
        "Events appended but not yet published to NATS"
    );
    describe_gauge!(
        "complaints_clocks",
        "Running SLA clocks by regime and state"
    );
    describe_gauge!(
        "complaints_sla_timer_backlog",
        "SLA crossings due but not recorded yet"
    );
    describe_gauge!(
        "complaints_snapshot_age_seconds",
        Unit::Seconds,
        "Time since the projections' snapshot was last saved (absent: none yet)"
    );
    describe_gauge!(
        "complaints_ready",
        "1 when the projections have caught up with the log (readiness)"
    );
}

/// What `/metrics` reads when scraped.
#[derive(Clone)]
pub struct Gauges {
    pub log: Arc<dyn EventLog>,
    pub clock: Arc<dyn Clock>,
    pub projections: Arc<Projections>,
    pub board: Arc<SlaBoard>,
    pub publisher: Option<tokio::sync::watch::Receiver<complaints_nats::Status>>,
    pub snapshot_file: Option<std::path::PathBuf>,
    pub ready: tokio::sync::watch::Receiver<bool>,
}

impl Gauges {
    /// Sets the gauges to what they are now, then renders every metric.
    pub async fn render(&self) -> String {
        let Some(handle) = handle() else {
            return "# no metrics: another metrics recorder is installed in this process\n"
                .to_owned();
        };
        let now = self.clock.now();
        if let Ok(head) = self.log.head().await {
            metrics::gauge!("complaints_log_head_position").set(head as f64);
            for (name, position) in self.projections.positions() {
                let behind = head.saturating_sub(position);
                metrics::gauge!("complaints_projection_position", "projection" => name)
                    .set(position as f64);
                metrics::gauge!("complaints_projection_lag_events", "projection" => name)
                    .set(behind as f64);
                let seconds = if behind == 0 {
                    0.0
                } else {
                    match self
                        .log
                        .read_all(position + 1, eventlog::Direction::Forward, 1)
                        .await
                    {
                        Ok(events) => events.first().map_or(0.0, |e| {
                            (now.as_micros() - e.recorded_at.as_micros()).max(0) as f64 / 1e6
                        }),
                        Err(_) => 0.0,
                    }
                };
                metrics::gauge!("complaints_projection_lag_seconds", "projection" => name)
                    .set(seconds);
            }
        }
        if let Some(status) = &self.publisher {
            metrics::gauge!("complaints_publisher_lag_events").set(status.borrow().lag() as f64);
        }
        let at = jiff::Timestamp::from_microsecond(now.as_micros())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let figures = self.board.figures(at);
        // Every regime loaded and every state, 0 where none: a count that falls to 0 must
        // show 0, not its last value.
        let mut regimes: std::collections::BTreeSet<String> = self
            .board
            .engine()
            .policies
            .ids()
            .into_iter()
            .map(str::to_owned)
            .collect();
        regimes.extend(figures.by_regime_and_state.keys().map(|(r, _)| r.clone()));
        for regime in regimes {
            for state in complaints_projections::board::StateKind::ALL {
                let n = figures
                    .by_regime_and_state
                    .get(&(regime.clone(), state.name().to_owned()))
                    .copied()
                    .unwrap_or(0);
                metrics::gauge!("complaints_clocks", "regime" => regime.clone(), "state" => state.name())
                    .set(n as f64);
            }
        }
        metrics::gauge!("complaints_sla_timer_backlog")
            .set(self.board.crossings_due(at).len() as f64);
        if let Some(age) = self
            .snapshot_file
            .as_ref()
            .and_then(|f| std::fs::metadata(f).ok())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
        {
            metrics::gauge!("complaints_snapshot_age_seconds").set(age.as_secs_f64());
        }
        metrics::gauge!("complaints_ready").set(if *self.ready.borrow() { 1.0 } else { 0.0 });
        handle.render()
    }
}

/// The tower layer in front of the gRPC server: counts and times every call, and runs it
/// in its tracing span.
#[derive(Clone, Default)]
pub struct GrpcMetricsLayer;

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

#[derive(Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
}

/// A call's service and method as labels: only methods this server has (anything else is
/// "unknown", so that a scanner's paths cannot grow the label set).
fn labels(path: &str) -> (&'static str, String) {
    const UNKNOWN: (&str, &str) = ("unknown", "unknown");
    let Some((service, method)) = path.trim_start_matches('/').split_once('/') else {
        return (UNKNOWN.0, UNKNOWN.1.to_owned());
    };
    // A method is one name: `/Service/a/GetBoard` is not GetBoard.
    let known_name = !method.is_empty() && method.chars().all(|c| c.is_ascii_alphanumeric());
    let service: &'static str = match service {
        "complaints.v1.ComplaintService" => "ComplaintService",
        "complaints.audit.v1.AuditService" => "AuditService",
        "complaints.admin.v1.AdminService" => "AdminService",
        "grpc.health.v1.Health" if matches!(method, "Check" | "Watch") => {
            return ("Health", method.to_owned());
        }
        s if s.starts_with("grpc.reflection.") => return ("Reflection", "any".to_owned()),
        _ => return (UNKNOWN.0, UNKNOWN.1.to_owned()),
    };
    match allowed_roles(path) {
        Access::Roles(_) if known_name => (service, method.to_owned()),
        _ => (service, UNKNOWN.1.to_owned()),
    }
}

/// The name of a gRPC status code, as the label shows it.
fn code_name(code: &str) -> &'static str {
    match code.trim().parse::<i32>().map(tonic::Code::from) {
        Ok(tonic::Code::Ok) => "OK",
        Ok(tonic::Code::Cancelled) => "Cancelled",
        Ok(tonic::Code::Unknown) => "Unknown",
        Ok(tonic::Code::InvalidArgument) => "InvalidArgument",
        Ok(tonic::Code::DeadlineExceeded) => "DeadlineExceeded",
        Ok(tonic::Code::NotFound) => "NotFound",
        Ok(tonic::Code::AlreadyExists) => "AlreadyExists",
        Ok(tonic::Code::PermissionDenied) => "PermissionDenied",
        Ok(tonic::Code::ResourceExhausted) => "ResourceExhausted",
        Ok(tonic::Code::FailedPrecondition) => "FailedPrecondition",
        Ok(tonic::Code::Aborted) => "Aborted",
        Ok(tonic::Code::OutOfRange) => "OutOfRange",
        Ok(tonic::Code::Unimplemented) => "Unimplemented",
        Ok(tonic::Code::Internal) => "Internal",
        Ok(tonic::Code::Unavailable) => "Unavailable",
        Ok(tonic::Code::DataLoss) => "DataLoss",
        Ok(tonic::Code::Unauthenticated) => "Unauthenticated",
        Err(_) => "Unknown",
    }
}

/// One call being measured: recorded once, when its status is known (in the response's
/// headers or trailers), or as Cancelled if the response is dropped before.
struct Call {
    service: &'static str,
    method: String,
    started: Instant,
    span: tracing::Span,
    done: bool,
}

impl Call {
    fn finish(&mut self, code: &'static str) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.span.record("code", code);
        let (service, method) = (self.service, self.method.clone());
        metrics::counter!("complaints_grpc_requests_total", "service" => service, "method" => method.clone(), "code" => code)
            .increment(1);
        metrics::histogram!("complaints_grpc_request_duration_seconds", "service" => service, "method" => method)
            .record(self.started.elapsed());
        if code == "OK" {
            tracing::debug!(parent: &self.span, "call done");
        } else {
            tracing::info!(parent: &self.span, code, "call refused or failed");
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.finish("Cancelled");
    }
}

/// A response body that records its call (count, latency, span) when the trailers carrying
/// the status pass, or as cancelled if dropped before.
pub struct MeteredBody<B> {
    inner: B,
    call: Option<Call>,
}

impl<B> http_body::Body for MeteredBody<B>
where
    B: http_body::Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let code = trailers
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .map_or("Unknown", code_name);
                    if let Some(mut call) = this.call.take() {
                        call.finish(code);
                    }
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(mut call) = this.call.take() {
                    call.finish("Unknown");
                }
            }
            Poll::Ready(None) => {
                // Ended without trailers: tonic always sends them; count it as unknown.
                if let Some(mut call) = this.call.take() {
                    call.finish("Unknown");
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: http_body::Body + Unpin + Send + 'static,
{
    type Response = http::Response<MeteredBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let (service, method) = labels(request.uri().path());
        let span = tracing::info_span!(
            "grpc",
            service,
            method = %method,
            complaint = tracing::field::Empty,
            code = tracing::field::Empty,
        );
        let mut call = Call {
            service,
            method,
            started: Instant::now(),
            span: span.clone(),
            done: false,
        };
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(
            async move {
                let response = inner.call(request).await?;
                // A refusal or error without a body puts its status in the headers.
                if let Some(code) = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                {
                    call.finish(code_name(code));
                }
                let call = (!call.done).then_some(call);
                Ok(response.map(|inner| MeteredBody { inner, call }))
            }
            .instrument(span),
        )
    }
}

/// Records `name` as the complaint of the call being served (its tracing span).
pub fn record_complaint(name: &str) {
    tracing::Span::current().record("complaint", name);
}

#[cfg(test)]
mod tests {
    use super::labels;

    #[test]
    fn only_this_servers_methods_become_labels() {
        let l = |p: &str| labels(p);
        assert_eq!(
            l("/complaints.v1.ComplaintService/GetBoard"),
            ("ComplaintService", "GetBoard".to_owned())
        );
        assert_eq!(
            l("/grpc.health.v1.Health/Check"),
            ("Health", "Check".to_owned())
        );
        for scanner in [
            "/grpc.health.v1.Health/x1",
            "/complaints.v1.ComplaintService/a/GetBoard",
            "/complaints.v1.ComplaintService/NoSuchMethod",
            "/complaints.v1.ComplaintService/",
            "/elsewhere/Method",
            "/",
        ] {
            assert_eq!(l(scanner).1, "unknown", "{scanner}");
        }
    }
}
