//! OTLP export (feature `otlp`): spans of a gRPC call and of its command reach a collector
//! (a fake one here, speaking the OTLP/gRPC trace service), with the method, the complaint
//! and the outcome. One test in this file: the tracing subscriber is global to the process.
//!
//! `cargo test -p complaintd --features otlp --test otlp` (`.ci/run` runs it).
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::{register, req, TestServer, NOW};
use complaintd::config::Config;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tokio::sync::mpsc;

/// A collector that hands every exported span on: (name, attributes as text).
struct Collector(mpsc::UnboundedSender<(String, Vec<(String, String)>)>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                for span in scope.spans {
                    let attributes = span
                        .attributes
                        .iter()
                        .map(|kv| {
                            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                                Some(Value::StringValue(s)) => s.clone(),
                                Some(other) => format!("{other:?}"),
                                None => String::new(),
                            };
                            (kv.key.clone(), value)
                        })
                        .collect();
                    let _ = self.0.send((span.name, attributes));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_of_calls_and_commands_are_exported() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (tx, mut spans) = mpsc::unbounded_channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let collector = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(tx)))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    let config = Config {
        otlp_endpoint: Some(endpoint),
        ..Config::default()
    };
    let guard = complaintd::telemetry::init(&config).unwrap();
    let server = TestServer::start(|_| {}).await;
    let created = server
        .complaints()
        .register_complaint(req(register("UK-FCA-DISP", "GB-ENG", NOW - 60), "intake"))
        .await
        .unwrap()
        .into_inner();
    server.shutdown().await;
    // Flushes what the batch exporter holds.
    drop(guard);

    let mut grpc = None;
    let mut execute = None;
    while grpc.is_none() || execute.is_none() {
        // A bound on failure only: nothing exported would otherwise wait forever.
        let (name, attributes) =
            tokio::time::timeout(std::time::Duration::from_secs(60), spans.recv())
                .await
                .expect("spans exported within a minute")
                .expect("the collector is up");
        let get = |key: &str| {
            attributes
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        if name == "grpc" && get("method").as_deref() == Some("RegisterComplaint") {
            grpc = Some((get("service"), get("code"), get("complaint")));
        }
        if name == "execute" {
            execute = Some((get("complaint_id"), get("command"), get("outcome")));
        }
    }
    let id = created.name.trim_start_matches("complaints/").to_owned();
    let (service, code, complaint) = grpc.unwrap();
    assert_eq!(
        (service.as_deref(), code.as_deref()),
        (Some("ComplaintService"), Some("OK"))
    );
    assert!(
        complaint.unwrap_or_default().contains(&id),
        "the call's span names the complaint"
    );
    let (complaint, command, outcome) = execute.unwrap();
    assert!(complaint.unwrap().contains(&id));
    assert_eq!(command.as_deref(), Some("register"));
    assert_eq!(outcome.as_deref(), Some("recorded"));
    let _ = stop.send(());
    collector.await.unwrap().unwrap();
}
