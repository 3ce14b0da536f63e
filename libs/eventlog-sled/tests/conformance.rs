//! The event-log conformance suite, run against the sled backend.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test
#![forbid(unsafe_code)]

use std::sync::Arc;

use eventlog::conformance::Backend;
use eventlog::Clock;
use eventlog_sled::{SledConfig, SledEventLog};

struct Sled;

#[async_trait::async_trait]
impl Backend for Sled {
    type Log = SledEventLog;
    type Storage = tempfile::TempDir;

    async fn storage(&self) -> Self::Storage {
        tempfile::tempdir().expect("temporary directory")
    }

    async fn open(&self, storage: &Self::Storage, clock: Arc<dyn Clock>) -> Arc<Self::Log> {
        let config = SledConfig::new(storage.path().join("log"));
        Arc::new(SledEventLog::open_with_clock(config, clock).expect("open sled log"))
    }
}

eventlog::conformance_tests!(Sled);
