//! Opens the configured storage: the event log on its backend, and the key store of
//! personal data that lives beside it. complaintd and offline tools open storage through
//! [`open`], so they agree on where everything is.
#![forbid(unsafe_code)]

pub mod keys;

use std::path::{Path, PathBuf};
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
        /// Write the log's index checkpoint every this many positions
        /// (`eventlog_sled::SledConfig::index_checkpoint_every`).
        index_checkpoint_every: u64,
        /// Read and check every record at open, not only those after the index
        /// checkpoint (`eventlog_sled::OpenCheck::Full`).
        full_check_at_open: bool,
        /// The check of the history behind the index checkpoint waits for
        /// [`HistoryCheck::start`] (`eventlog_sled::SledConfig::defer_history_check`).
        defer_history_check: bool,
        /// The capacity of sled's cache of the log's pages, in bytes
        /// (`eventlog_sled::SledConfig::cache_capacity_bytes`).
        cache_bytes: u64,
    },
    /// NATS JetStream at `url` (comma-separated servers): the log in `stream`, the keys in
    /// the key-value bucket `<stream>_KEYS` (replicas sharing a log share their keys).
    JetStream {
        url: String,
        stream: String,
        replicas: usize,
        /// A local file keeping this process's index of the log, so that an open reads
        /// only what was appended since (`eventlog_jetstream::JetStreamConfig::checkpoint`).
        checkpoint: Option<PathBuf>,
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

enum CrossCheck {
    /// The key store saw the log reach further than it does now.
    LostRecords(eventlog::Error),
    Other(OpenError),
}

/// The file in the log's data directory naming the key store it was written with.
pub const KEY_STORE_IDENTITY_FILE: &str = "keys.id";

/// The log and its key store vouch for each other: the key store must be the one this
/// log was written with (else every complainant would silently read as erased: a deleted
/// key-store directory, or `keys_dir` pointing elsewhere), and the log must reach the
/// head the key store last saw it at (else the log lost records, with its witness).
async fn cross_check(
    data_dir: &Path,
    keys_dir: &Path,
    log: &SledEventLog,
    keys: &SledKeyStore,
    read_only: bool,
) -> Result<(), CrossCheck> {
    let other = |what: String, reason: String| CrossCheck::Other(OpenError { what, reason });
    let identity = keys
        .identity()
        .map_err(|e| other("cannot read the key store's identity".into(), e.to_string()))?;
    let file = data_dir.join(KEY_STORE_IDENTITY_FILE);
    match std::fs::read_to_string(&file) {
        Ok(expected) if expected.trim() == identity => {}
        Ok(expected) => {
            return Err(other(
                format!("the key store in {} is not the one the log in {} was written with", keys_dir.display(), data_dir.display()),
                format!("it is {identity}, and {} names {}: with it every complainant's personal data would read as erased; refusing to open (configure keys_dir to the right store, or restore the keys from a backup)", file.display(), expected.trim()),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // No record of the log's key store: a new data directory, or one from before
            // the record was kept. A key store made just now beside a log that holds
            // records is not the log's own (its keys were deleted with their record).
            let head = log
                .head()
                .await
                .map_err(|e| other("cannot read the log's head".into(), e.to_string()))?;
            if keys.is_fresh() && head > 0 && !read_only {
                return Err(other(
                    format!("the key store in {} is new, but the log in {} holds {head} records", keys_dir.display(), data_dir.display()),
                    format!("with it every complainant's personal data would read as erased; refusing to open (restore the keys from a backup; if this log never held personal data, write {identity} into {})", file.display()),
                ));
            }
            if !read_only {
                bind_key_store(data_dir, keys).map_err(|e| {
                    other(format!("cannot write {}", file.display()), e.to_string())
                })?;
            }
        }
        Err(e) => return Err(other(format!("cannot read {}", file.display()), e.to_string())),
    }
    let seen = keys
        .log_head_seen()
        .map_err(|e| other("cannot read the key store".into(), e.to_string()))?;
    let head = log
        .head()
        .await
        .map_err(|e| other("cannot read the log's head".into(), e.to_string()))?;
    if seen > head {
        return Err(CrossCheck::LostRecords(eventlog::Error::Corruption {
            position: head + 1,
            reason: format!("missing: the key store in {} saw the log reach position {seen}, past its head {head}, so the log lost records it held", keys_dir.display()),
        }));
    }
    Ok(())
}

/// Records in `data_dir` that `keys` is the key store of the log there (`keys.id`), as
/// [`open`] does on a log's first start; for tools that make a data directory (restore).
pub fn bind_key_store(data_dir: &Path, keys: &SledKeyStore) -> std::io::Result<()> {
    let identity = keys.identity().map_err(std::io::Error::other)?;
    write_durably(&data_dir.join(KEY_STORE_IDENTITY_FILE), &identity)
}

/// `text` into `path`: beside it, synced, renamed over it, the directory synced.
fn write_durably(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = atomic_write_file::AtomicWriteFile::open(path)?;
    writeln!(file, "{text}")?;
    file.commit()
}

/// An opened log and its key store.
pub struct Storage {
    pub log: Arc<dyn EventLog>,
    pub keys: Arc<dyn KeyStore>,
    /// A log opened read-only: the damage found at open, where it starts.
    pub damage: Option<eventlog::Error>,
    /// The sled log's check of the history its index checkpoint covers, run in the
    /// background after the open (or once started, if deferred).
    pub history_check: Option<HistoryCheck>,
}

/// A check of the log's history running in the background.
pub struct HistoryCheck {
    /// Lets a deferred check start; no effect on one that started with the open.
    pub start: Box<dyn Fn() + Send + Sync>,
    /// Its outcome: the `Corruption` it found (the log then refuses every read and
    /// append), `Ok` when intact, `Closed` if the log closed first.
    pub outcome: std::pin::Pin<Box<dyn std::future::Future<Output = eventlog::Result<()>> + Send>>,
}

/// Opens the log of `backend` (taking `recorded_at` from `clock`) and its key store.
pub async fn open(backend: &Backend, clock: Arc<dyn Clock>) -> Result<Storage, OpenError> {
    match backend {
        Backend::Sled {
            data_dir,
            keys_dir,
            read_only,
            index_checkpoint_every,
            full_check_at_open,
            defer_history_check,
            cache_bytes,
        } => {
            let log_path = data_dir.join("log");
            let mut config = SledConfig::new(&log_path);
            config.cache_capacity_bytes = *cache_bytes;
            config.read_only = *read_only;
            config.index_checkpoint_every = *index_checkpoint_every;
            config.defer_history_check = *defer_history_check;
            if *full_check_at_open {
                config.check_at_open = eventlog_sled::OpenCheck::Full;
            }
            let log = SledEventLog::open_with_clock(config, clock).map_err(|e| OpenError {
                what: format!("cannot open the event log in {}", log_path.display()),
                reason: e.to_string(),
            })?;
            let keys_dir = keys_dir.clone().unwrap_or_else(|| data_dir.join("keys"));
            let keys = SledKeyStore::open(&keys_dir).map_err(|e| OpenError {
                what: "cannot open the key store".to_owned(),
                reason: e.to_string(),
            })?;
            let mut damage = log.damage().cloned();
            match cross_check(data_dir, &keys_dir, &log, &keys, *read_only).await {
                Ok(()) => {}
                // Read-only serves what is readable and says where the damage starts.
                Err(CrossCheck::LostRecords(e)) if *read_only => {
                    tracing::error!(error = %e, "serving read-only all the same");
                    damage.get_or_insert(e);
                }
                Err(CrossCheck::LostRecords(e)) => {
                    return Err(OpenError {
                        what: format!("the event log in {} is damaged", log_path.display()),
                        reason: format!("{e}; refusing to open it (restore the log from a backup, or run `complaintctl admin salvage` to see what is left)"),
                    })
                }
                Err(CrossCheck::Other(e)) => return Err(e),
            }
            keys.observe_log(log.watch_head());
            let (checked, started) = (log.clone(), log.clone());
            Ok(Storage {
                log: Arc::new(log),
                keys: Arc::new(keys),
                damage,
                history_check: Some(HistoryCheck {
                    start: Box::new(move || started.start_history_check()),
                    outcome: Box::pin(async move { checked.history_checked().await }),
                }),
            })
        }
        Backend::JetStream {
            url,
            stream,
            replicas,
            checkpoint,
        } => {
            let mut config = eventlog_jetstream::JetStreamConfig::new(url.clone(), stream);
            config.replicas = *replicas;
            config.checkpoint = checkpoint.clone();
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
                history_check: None,
            })
        }
    }
}
