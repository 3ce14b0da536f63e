//! Opens the configured storage: the event log on its backend, and the key store of
//! personal data that lives beside it. complaintd and offline tools open storage through
//! [`open`], so they agree on where everything is.
#![forbid(unsafe_code)]

pub mod keys;

use std::path::PathBuf;
use std::sync::Arc;

use complaints_events::personal::KeyStore;
use eventlog::{Clock, EventLog};
use eventlog_sled::{SledConfig, SledEventLog};

pub use keys::{KvKeyStore, SledKeyStore};

/// Where the log and its keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: the log in `<data_dir>/log`, the keys in `keys_dir`
    /// (`<data_dir>/keys` when not given).
    Sled {
        data_dir: PathBuf,
        keys_dir: Option<PathBuf>,
        /// Open the log read-only (see `eventlog_sled::SledConfig::read_only`).
        read_only: bool,
    },
    /// NATS JetStream at `url` (comma-separated servers): the log in `stream`, the keys in
    /// the key-value bucket `<stream>_KEYS` (replicas sharing a log share their keys).
    JetStream {
        url: String,
        stream: String,
        replicas: usize,
    },
}

/// The storage could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct OpenError {
    /// What was being opened, and where.
    pub what: String,
    pub reason: String,
}

/// An opened log and its key store.
pub struct Storage {
    pub log: Arc<dyn EventLog>,
    pub keys: Arc<dyn KeyStore>,
    /// A log opened read-only: the damage found at open, where it starts.
    pub damage: Option<eventlog::Error>,
}

/// Opens the log of `backend` (taking `recorded_at` from `clock`) and its key store.
pub async fn open(backend: &Backend, clock: Arc<dyn Clock>) -> Result<Storage, OpenError> {
    match backend {
        Backend::Sled {
            data_dir,
            keys_dir,
            read_only,
        } => {
            let log_path = data_dir.join("log");
            let mut config = SledConfig::new(&log_path);
            config.read_only = *read_only;
            let log = SledEventLog::open_with_clock(config, clock).map_err(|e| OpenError {
                what: format!("cannot open the event log in {}", log_path.display()),
                reason: e.to_string(),
            })?;
            let keys_dir = keys_dir.clone().unwrap_or_else(|| data_dir.join("keys"));
            let keys = SledKeyStore::open(&keys_dir).map_err(|e| OpenError {
                what: "cannot open the key store".to_owned(),
                reason: e.to_string(),
            })?;
            let damage = log.damage().cloned();
            Ok(Storage {
                log: Arc::new(log),
                keys: Arc::new(keys),
                damage,
            })
        }
        Backend::JetStream {
            url,
            stream,
            replicas,
        } => {
            let mut config = eventlog_jetstream::JetStreamConfig::new(url.clone(), stream);
            config.replicas = *replicas;
            let log = eventlog_jetstream::JetStreamEventLog::open(config, clock)
                .await
                .map_err(|e| OpenError {
                    what: format!(
                        "cannot open the event log on JetStream at {url} (stream {stream})"
                    ),
                    reason: e.to_string(),
                })?;
            let bucket = format!("{stream}_KEYS");
            let keys = KvKeyStore::open(url, &bucket, *replicas)
                .await
                .map_err(|e| OpenError {
                    what: format!(
                        "cannot open the key store on JetStream at {url} (bucket {bucket})"
                    ),
                    reason: e.to_string(),
                })?;
            tracing::info!(%url, %stream, "event log on NATS JetStream");
            Ok(Storage {
                log: Arc::new(log),
                keys: Arc::new(keys),
                damage: None,
            })
        }
    }
}
