//! The event-log conformance suite, run against the JetStream backend on a nats-server of
//! each test's own (a server per test, stopped when the test's storage is dropped, also on
//! panic: a server kept in a `static` was never dropped and outlived the test binary).
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
#![forbid(unsafe_code)]

use std::sync::Arc;

use complaints_nats::testing::NatsServer;
use eventlog::conformance::Backend;
use eventlog::Clock;
use eventlog_jetstream::{JetStreamConfig, JetStreamEventLog};

struct JetStream;

#[async_trait::async_trait]
impl Backend for JetStream {
    type Log = JetStreamEventLog;
    /// A server of its own, and the name of the stream on it.
    type Storage = (NatsServer, String);

    async fn storage(&self) -> Self::Storage {
        (
            NatsServer::start(),
            format!("T{}", uuid::Uuid::new_v4().simple()),
        )
    }

    async fn open(&self, storage: &Self::Storage, clock: Arc<dyn Clock>) -> Arc<Self::Log> {
        let (server, stream) = storage;
        let config = JetStreamConfig::new(server.url(), stream.clone());
        Arc::new(
            JetStreamEventLog::open(config, clock)
                .await
                .expect("open the JetStream log"),
        )
    }
}

eventlog::conformance_tests!(JetStream);
