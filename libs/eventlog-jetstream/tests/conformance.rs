//! The event-log conformance suite, run against the JetStream backend on a nats-server of
//! this test binary's own (one server; a fresh JetStream stream per test).
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
#![forbid(unsafe_code)]

use std::sync::{Arc, OnceLock};

use complaints_nats::testing::NatsServer;
use eventlog::conformance::Backend;
use eventlog::Clock;
use eventlog_jetstream::{JetStreamConfig, JetStreamEventLog};

fn server() -> &'static NatsServer {
    static SERVER: OnceLock<NatsServer> = OnceLock::new();
    SERVER.get_or_init(NatsServer::start)
}

struct JetStream;

#[async_trait::async_trait]
impl Backend for JetStream {
    type Log = JetStreamEventLog;
    /// The name of a stream of its own.
    type Storage = String;

    async fn storage(&self) -> Self::Storage {
        format!("T{}", uuid::Uuid::new_v4().simple())
    }

    async fn open(&self, storage: &Self::Storage, clock: Arc<dyn Clock>) -> Arc<Self::Log> {
        let config = JetStreamConfig::new(server().url(), storage.clone());
        Arc::new(
            JetStreamEventLog::open(config, clock)
                .await
                .expect("open the JetStream log"),
        )
    }
}

eventlog::conformance_tests!(JetStream);
