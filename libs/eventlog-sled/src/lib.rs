//! The embedded default backend of the event log: one directory, no server, on sled 0.34.
//!
//! **Layout** (`keys.rs`): records are stored in chunks, sled values of about 96 KiB at
//! most (unless one append alone is larger) that each hold the records of one or more
//! whole appends, keyed by their first position. One sled insert is atomic across crashes and an append never spans two
//! chunks, so an append is all or nothing. The indexes (event id -> position, stream ->
//! positions) live in memory: sorted arrays up to the last index checkpoint (about 40
//! bytes per event) and hash maps after it (see `index.rs`).
//!
//! **Appends** go through two threads that form a pipeline (`pipeline.rs`):
//! - the **writer** takes appends in arrival order (as many as are waiting, up to 1,024,
//!   form a group), checks idempotency and expected versions, seals each append's
//!   records ([`eventlog::seal`]: versions, positions, `recorded_at`, the hash chain) and
//!   adds them to the chunk being filled; it inserts the chunk into sled when the next
//!   append would take it past its target size and at the end of each group, then hands
//!   the group to the flusher;
//! - the **flusher** makes every group handed over so far durable in one go (group
//!   commit: sled's `flush`, then an fdatasync of sled's data file and of any new blob
//!   file and their directory, since sled's own flush only calls `sync_file_range`, which
//!   leaves the disk cache unflushed, and never syncs blobs), then publishes the new
//!   durable head and answers the callers. When a commit could start with far fewer
//!   appends than the last one had, it first waits up to 250 µs for more (like
//!   PostgreSQL's `commit_delay`); a lone writer never waits.
//!
//! While the flusher syncs one group the writer applies the next. Readers and subscribers
//! see nothing past the durable head, so no one ever observes an event that a crash could
//! take back. A failed write or sync stops the log from accepting writes (fail-stop):
//! reopening recovers the last durable state.
//!
//! **Open** loads the indexes from the index checkpoint (`checkpoint.rs`: written at a
//! clean close and every [`SledConfig::index_checkpoint_every`] positions, anchored on
//! the chain hash of the record it ends at) and reads and checks every record after it
//! (checksum and position, the hash chain, gapless positions and stream versions, unique
//! event ids, non-decreasing `recorded_at`); a failure is [`eventlog::Error::Corruption`]
//! with its position and the log does not open. Without a usable checkpoint (or with
//! [`OpenCheck::Full`]) every record is read and checked so. So the time to open follows
//! what was appended since the last checkpoint, not the history. The records the
//! checkpoint covers are checked again right after the open, in the background (the
//! **history check**: checksums, positions and the hash chain up to the anchor, with
//! [`eventlog::audit::Verifier`]); if that finds damage the log refuses every read and
//! append from then on with the `Corruption` it found ([`SledEventLog::history_check`]).
//! A service can defer the check until its own start-up work is done
//! ([`SledConfig::defer_history_check`], [`SledEventLog::start_history_check`]).
//! [`SledEventLog::verify`] runs the full check without
//! opening for writing; [`OfflineLog`] walks a (copied, possibly tampered) store without
//! any check, for the audit verifier and export; [`open_raw`] gives the raw sled store to
//! tools and tests.
#![forbid(unsafe_code)]

mod checkpoint;
pub mod import;
mod index;
mod keys;
mod pipeline;
pub mod witness;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{
    mpsc as std_mpsc, Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use eventlog::{
    AppendResult, Clock, Direction, Error, EventLog, ExpectedVersion, Limits, NewEvent, Position,
    RecordedEvent, Result, StoredRecord, StreamId, SystemClock, Tail, Version,
};
use tokio::sync::{mpsc, oneshot, watch};

pub use index::VerifyReport;
pub use pipeline::CommitStats;

/// How to open a sled event log.
#[derive(Debug, Clone)]
pub struct SledConfig {
    /// The directory that holds the log (created if missing).
    pub path: PathBuf,
    /// Size bounds of appends.
    pub limits: Limits,
    /// sled's page cache, in bytes.
    pub cache_capacity_bytes: u64,
    /// Open to read and verify only (see [`SledEventLog::damage`]): a damaged log opens
    /// too, serving the records before the damage; nothing is written (no witness, no
    /// appends). The log must exist.
    pub read_only: bool,
    /// An index checkpoint is written whenever this many positions were appended since
    /// the last one (and at every clean close); 0: only at a clean close. After a crash,
    /// the open reads and checks at most about this many records.
    pub index_checkpoint_every: u64,
    /// What an open reads and checks before the log is used.
    pub check_at_open: OpenCheck,
    /// The history check (see [`OpenCheck::SinceCheckpoint`]) waits for
    /// [`SledEventLog::start_history_check`] instead of starting with the open: a service
    /// whose start-up has heavy work of its own (restoring its projections) starts it
    /// after that, so that the two do not share the cores. Reads and appends are served
    /// meanwhile, as they are while the check runs.
    pub defer_history_check: bool,
}

/// What an open for writing reads and checks before the log is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpenCheck {
    /// The records after the index checkpoint, with the history before it checked in the
    /// background (see the crate's documentation): an open that does not grow with the
    /// history.
    #[default]
    SinceCheckpoint,
    /// Every record, before the open returns (as [`SledEventLog::verify`] does).
    Full,
}

/// Where the check of the history behind the index checkpoint stands.
#[derive(Debug, Clone)]
pub enum HistoryCheck {
    /// Still walking the records up to the checkpoint.
    Running,
    /// Every record was checked: at open (no checkpoint was used), or in the background.
    Intact,
    /// The history is damaged at this position: the log refuses reads and appends.
    Damaged(Error),
    /// The log was closed before the check finished.
    Stopped,
}

impl SledConfig {
    /// Defaults for a log in `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            limits: Limits::default(),
            cache_capacity_bytes: 256 << 20,
            read_only: false,
            index_checkpoint_every: 500_000,
            check_at_open: OpenCheck::default(),
            defer_history_check: false,
        }
    }
}

/// The sled event log. Cheap to clone; all clones share one log.
#[derive(Clone)]
pub struct SledEventLog {
    inner: Arc<Inner>,
}

/// State shared by the handle, the writer and the flusher.
pub(crate) struct Shared {
    pub(crate) tree: sled::Db,
    pub(crate) path: PathBuf,
    pub(crate) clock: Arc<dyn Clock>,
    /// Last durable position: readers never go past it.
    pub(crate) durable: AtomicU64,
    /// Event id and stream indexes, covering every applied event (durable or not).
    pub(crate) index: RwLock<index::Index>,
    pub(crate) head_tx: watch::Sender<Position>,
    pub(crate) stats: pipeline::Stats,
    /// Set when a write or sync failed; the log then refuses writes.
    pub(crate) failure: Mutex<Option<String>>,
    pub(crate) closed: AtomicBool,
    /// Damage the history check found: every read and append is refused with it.
    pub(crate) damage: OnceLock<Error>,
    pub(crate) history: watch::Sender<HistoryCheck>,
    /// The position the last index checkpoint covers (0: none yet).
    pub(crate) checkpointed: watch::Sender<Position>,
    /// Whether the history check may start (see [`SledConfig::defer_history_check`]);
    /// the close wakes it too.
    pub(crate) history_go: (Mutex<bool>, std::sync::Condvar),
}

impl Shared {
    /// The state of a log opened at `head` with `index`; the history check stands at
    /// `history`, the index checkpoint at `checkpointed`, and the check may start at once
    /// when `history_may_start`.
    fn new(
        tree: sled::Db,
        path: PathBuf,
        clock: Arc<dyn Clock>,
        index: index::Index,
        history: HistoryCheck,
        checkpointed: Position,
        history_may_start: bool,
    ) -> Self {
        let head = index.tail.position;
        Self {
            tree,
            path,
            clock,
            durable: AtomicU64::new(head),
            index: RwLock::new(index),
            head_tx: watch::channel(head).0,
            stats: pipeline::Stats::default(),
            failure: Mutex::new(None),
            closed: AtomicBool::new(false),
            damage: OnceLock::new(),
            history: watch::channel(history).0,
            checkpointed: watch::channel(checkpointed).0,
            history_go: (Mutex::new(history_may_start), std::sync::Condvar::new()),
        }
    }

    pub(crate) fn fail(&self, reason: String) -> Error {
        tracing::error!(%reason, "event log storage failure: refusing further writes");
        let mut failure = self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failure.get_or_insert(reason.clone());
        Error::Storage(reason)
    }

    pub(crate) fn read_index(&self) -> RwLockReadGuard<'_, index::Index> {
        self.index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn write_index(&self) -> RwLockWriteGuard<'_, index::Index> {
        self.index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn failure(&self) -> Option<Error> {
        let failure = self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failure.clone().map(Error::Storage)
    }
}

struct Inner {
    shared: Arc<Shared>,
    limits: Limits,
    /// Opened read-only: the damage found at open, if any (see [`SledEventLog::damage`]).
    read_only: Option<Option<Error>>,
    submit: Mutex<Option<mpsc::Sender<pipeline::AppendRequest>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Let the pipeline finish what it was given, so the directory lock is released
        // when the last handle goes.
        self.shutdown();
    }
}

impl Inner {
    fn shutdown(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        {
            // Under the lock: a history check about to wait sees `closed` or is woken.
            let (go, wake) = &self.shared.history_go;
            let _go = go.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            wake.notify_all();
        }
        drop(
            self.submit
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
        );
        let threads = std::mem::take(
            &mut *self
                .threads
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let had_threads = !threads.is_empty();
        for thread in threads {
            let _ = thread.join();
        }
        if had_threads && self.read_only.is_none() {
            // Everything applied is durable or was refused now: keep the indexes for the
            // next open (not when a write failed: see `write_checkpoint`).
            let durable = self.shared.durable.load(Ordering::Acquire);
            if durable > *self.shared.checkpointed.borrow() {
                if let Err(e) = write_checkpoint(&self.shared, durable) {
                    tracing::warn!(path = %self.shared.path.display(), error = %e, "cannot write the index checkpoint at close: the next open reads and checks more records");
                }
            }
        }
        // Wake subscribers so they see the log is closed.
        self.shared.head_tx.send_modify(|_| {});
    }
}

pub(crate) fn storage(e: impl std::fmt::Display) -> Error {
    Error::Storage(e.to_string())
}

impl SledEventLog {
    /// Opens (or creates) the log in `config.path`, checking it, with the system clock.
    pub fn open(config: SledConfig) -> Result<Self> {
        Self::open_with_clock(config, Arc::new(SystemClock))
    }

    /// Opens (or creates) the log with an injected clock for `recorded_at`.
    pub fn open_with_clock(config: SledConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        if config.read_only {
            return Self::open_read_only(&config, clock);
        }
        let (tree, index, found) = open_checked(
            &config.path,
            config.cache_capacity_bytes,
            config.check_at_open == OpenCheck::SinceCheckpoint,
        )?;
        let tail = index.tail;
        let unchecked = index.base_tail;
        let sync = pipeline::Syncer::new(&config.path)?;
        let marked = tree.get(keys::WITNESSED).map_err(storage)?.is_some();
        if !marked {
            // From now on a missing witness is damage, not an older layout.
            tree.insert(keys::WITNESSED, &tail.position.to_be_bytes()[..])
                .map_err(storage)?;
            if found == witness::Read::Missing && tail.position > 0 {
                tracing::warn!(head = tail.position, "this log had no witness of its durable head yet (written by an older build); from now on one is kept");
            }
        }
        let witness = witness::Witness::create(
            &config.path,
            &witness::Head::settled(tail.position, tail.hash),
        )
        .map_err(|e| Error::Storage(format!("cannot write the witness: {e}")))?;
        let history = if unchecked.position > 0 {
            HistoryCheck::Running
        } else {
            HistoryCheck::Intact
        };
        let shared = Arc::new(Shared::new(
            tree,
            config.path.clone(),
            clock,
            index,
            history,
            unchecked.position,
            !config.defer_history_check,
        ));
        let (checkpoint_tx, checkpoint_rx) = std_mpsc::sync_channel(1);
        let (submit, mut threads) =
            pipeline::start(shared.clone(), sync, tail, witness, checkpoint_tx)?;
        let every = config.index_checkpoint_every;
        let keeper = shared.clone();
        threads.push(
            std::thread::Builder::new()
                .name("eventlog-checkpoint".into())
                .spawn(move || checkpoint_loop(&keeper, every, &checkpoint_rx))
                .map_err(storage)?,
        );
        if unchecked.position > 0 {
            let checker = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("eventlog-history-check".into())
                    .spawn(move || check_history(&checker, unchecked))
                    .map_err(storage)?,
            );
        }
        tracing::info!(
            path = %config.path.display(),
            head = tail.position,
            from_checkpoint = unchecked.position,
            "opened sled event log: records after position {} read and checked",
            unchecked.position
        );
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                limits: config.limits,
                read_only: None,
                submit: Mutex::new(Some(submit)),
                threads: Mutex::new(threads),
            }),
        })
    }

    /// Opens the log read-only: every record before the first damage is served, the
    /// damage is kept for [`SledEventLog::damage`], and nothing is written by this log.
    /// (sled itself may rewrite a torn tail of its own files while opening them: open a
    /// copy when the directory must stay exactly as it is.)
    fn open_read_only(config: &SledConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let path = &config.path;
        if !path.join("db").is_file() {
            return Err(Error::Storage(format!(
                "{} holds no sled event log to open read-only",
                path.display()
            )));
        }
        let (tree, index, damage) = match open_checked(path, config.cache_capacity_bytes, false) {
            Ok((tree, index, _)) => (tree, index, None),
            Err(Error::Corruption { position, reason }) => {
                // The records before the damage, checked as an open checks them.
                let tree = unpanicked(path, || open_tree(path, config.cache_capacity_bytes))?;
                let readable = position.saturating_sub(1);
                let index = unpanicked(path, || {
                    index::Index::rebuild_up_to(&tree, readable, |_, _| {})
                })
                // A record before the reported one may be the damaged one (an altered
                // record is found by the next one's link): stop there instead.
                .or_else(|e| match e {
                    Error::Corruption { position: at, .. } => unpanicked(path, || {
                        index::Index::rebuild_up_to(&tree, at.saturating_sub(1), |_, _| {})
                    }),
                    other => Err(other),
                })?;
                (tree, index, Some(Error::Corruption { position, reason }))
            }
            Err(other) => return Err(other),
        };
        let head = index.tail.position;
        match &damage {
            Some(e) => {
                tracing::error!(path = %path.display(), head, damage = %e, "opened a damaged event log read-only: serving positions 1 to {head}");
            }
            None => tracing::info!(path = %path.display(), head, "opened the event log read-only"),
        }
        // Read-only opens check everything at open: no history check.
        let shared = Arc::new(Shared::new(
            tree,
            path.clone(),
            clock,
            index,
            HistoryCheck::Intact,
            0,
            true,
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                limits: config.limits,
                read_only: Some(damage),
                submit: Mutex::new(None),
                threads: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Opened read-only: the damage found at open (`Corruption` with the position where it
    /// starts), or `None` when the log is whole. `None` too for a log open for writing
    /// (which never opens damaged).
    pub fn damage(&self) -> Option<&Error> {
        self.inner.read_only.as_ref().and_then(Option::as_ref)
    }

    /// Checks every record of the log in `path` without opening it for writing.
    pub fn verify(path: &Path) -> Result<VerifyReport> {
        let (_, index, _) = open_checked(path, 64 << 20, false)?;
        Ok(index.report())
    }

    /// What the durable commits have cost since the log was opened: how many, how many
    /// appends they answered, and the time spent in sled's flush and in fdatasync.
    pub fn commit_stats(&self) -> CommitStats {
        self.inner.shared.stats.snapshot()
    }

    /// The directory that holds the log.
    pub fn path(&self) -> &Path {
        &self.inner.shared.path
    }

    /// Where the check of the history behind the index checkpoint stands (see the
    /// crate's documentation).
    pub fn history_check(&self) -> HistoryCheck {
        self.inner.shared.history.borrow().clone()
    }

    /// Waits for the history check to finish: `Ok` when the whole history is intact,
    /// the `Corruption` it found, or `Closed` if the log closed first.
    pub async fn history_checked(&self) -> Result<()> {
        let mut state = self.inner.shared.history.subscribe();
        let done = state
            .wait_for(|s| !matches!(s, HistoryCheck::Running))
            .await
            .map_err(|_| Error::Closed)?
            .clone();
        match done {
            HistoryCheck::Intact => Ok(()),
            HistoryCheck::Damaged(e) => Err(e),
            HistoryCheck::Running | HistoryCheck::Stopped => Err(Error::Closed),
        }
    }

    /// Lets a deferred history check start (see [`SledConfig::defer_history_check`]); no
    /// effect on one that started already.
    pub fn start_history_check(&self) {
        let (go, wake) = &self.inner.shared.history_go;
        *go.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        wake.notify_all();
    }

    /// The position the last index checkpoint covers (0: none yet), as it moves.
    pub fn watch_checkpoint(&self) -> watch::Receiver<Position> {
        self.inner.shared.checkpointed.subscribe()
    }

    fn check_open(&self) -> Result<()> {
        if let Some(damage) = self.inner.shared.damage.get() {
            return Err(damage.clone());
        }
        if self.inner.shared.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn durable(&self) -> Position {
        self.inner.shared.durable.load(Ordering::Acquire)
    }

    fn tree(&self) -> &sled::Db {
        &self.inner.shared.tree
    }

    /// Durable `(version, position)` pairs of `stream`, in the order asked.
    fn stream_positions(
        &self,
        stream: &StreamId,
        from: Version,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<(Version, Position)>> {
        let forward = direction == Direction::Forward;
        self.inner.shared.read_index().stream_positions(
            stream,
            from,
            forward,
            limit,
            self.durable(),
        )
    }
}

#[async_trait::async_trait]
impl EventLog for SledEventLog {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        self.check_open()?;
        if let Some(damage) = &self.inner.read_only {
            return Err(Error::ReadOnly(match damage {
                Some(e) => format!("the log is damaged ({e}); nothing can be appended"),
                None => "nothing can be appended".into(),
            }));
        }
        self.inner.limits.validate(stream.as_str().len(), &events)?;
        let submit = self
            .inner
            .submit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or(Error::Closed)?;
        let (reply, answer) = oneshot::channel();
        let count = events.len() as u64;
        let request = pipeline::AppendRequest {
            stream: stream.clone(),
            expected,
            events,
            reply,
        };
        let started = std::time::Instant::now();
        submit.send(request).await.map_err(|_| Error::Closed)?;
        let result = answer
            .await
            .map_err(|_| Error::Storage("the writer stopped before answering".into()))?;
        eventlog::metrics::record_append("sled", started, count, &result);
        result
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Version> {
        self.check_open()?;
        let last = self.stream_positions(stream, Version::MAX, Direction::Backward, 1)?;
        Ok(last.first().map_or(0, |(version, _)| *version))
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: Version,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        self.check_open()?;
        let positions = self.stream_positions(stream, from, direction, limit)?;
        let mut out = Vec::with_capacity(positions.len());
        for (version, position) in positions {
            let record = read_record(self.tree(), position)?;
            if &record.stream != stream || record.version != version {
                return Err(Error::Corruption {
                    position,
                    reason: format!(
                        "index says {stream} version {version}, record is {} version {}",
                        record.stream, record.version
                    ),
                });
            }
            out.push(record);
        }
        Ok(out)
    }

    async fn read_all(
        &self,
        from: Position,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        self.check_open()?;
        let durable = self.durable();
        match direction {
            Direction::Forward => read_forward(self.tree(), from.max(1), durable, limit),
            Direction::Backward => read_backward(self.tree(), from.min(durable), limit),
        }
    }

    async fn read_stored(&self, from: Position, limit: usize) -> Result<Vec<StoredRecord>> {
        self.check_open()?;
        scan_forward(self.tree(), from.max(1), self.durable(), limit, Ok)
    }

    async fn head(&self) -> Result<Position> {
        self.check_open()?;
        Ok(self.durable())
    }

    fn watch_head(&self) -> watch::Receiver<Position> {
        self.inner.shared.head_tx.subscribe()
    }

    async fn close(&self) -> Result<()> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.shutdown())
            .await
            .map_err(|e| Error::Storage(format!("shutdown failed: {e}")))?;
        match self.inner.shared.failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A stored log opened for auditing only (offline, typically on a copy of a data
/// directory): its records exactly as stored, whatever state they are in, with the
/// positions the storage holds them at. Nothing is checked or rebuilt on open, so a
/// tampered log can be walked to find where it breaks ([`eventlog::audit::Verifier`]).
pub struct OfflineLog {
    tree: sled::Db,
    path: PathBuf,
}

impl OfflineLog {
    /// Opens the log in `path`, which must already hold one (it is never created).
    pub fn open(path: &Path) -> Result<Self> {
        if !path.join("db").is_file() {
            return Err(storage(format!(
                "{} does not hold a sled event log (no 'db' file)",
                path.display()
            )));
        }
        Ok(Self {
            tree: unpanicked(path, || open_tree(path, 64 << 20))?,
            path: path.to_owned(),
        })
    }

    /// The witness of the durable head the copy holds, if it holds one: how far the log
    /// it was copied from had acknowledged (see [`witness`]).
    pub fn witness(&self) -> Result<witness::Read> {
        witness::read(&self.path).map_err(storage)
    }

    /// The last position the storage holds (0 if none), from its last chunk: what a walk
    /// will reach if nothing is missing.
    pub fn last_position(&self) -> Result<Position> {
        let Some(entry) = self.tree.scan_prefix([keys::CHUNK]).next_back() else {
            return Ok(0);
        };
        let (key, value) = entry.map_err(storage)?;
        let first = keys::chunk_first(&key).unwrap_or(0);
        Ok(keys::ChunkRecords::new(first, value).map_or(first, |r| r.end() - 1))
    }

    /// Walks the whole log through `verifier` (see [`eventlog::audit`]); `progress` is
    /// called now and then with the last position walked.
    pub fn verify(
        &self,
        mut verifier: eventlog::audit::Verifier,
        mut progress: impl FnMut(Position),
    ) -> Result<eventlog::audit::Report> {
        // In batches: the verifier does each record's own work (checksum, decode, hash) on
        // every core, then checks them in order. (Measured: a pipeline reading one batch
        // while another thread prepared the previous was slower, 1.40M against 1.91M
        // events/s: one thread preparing is the bottleneck.)
        const BATCH: usize = 4096;
        let mut walked = 0u64;
        let mut batch = Vec::with_capacity(BATCH);
        self.scan(verifier.first_position(), |record| {
            match record {
                Ok(record) => {
                    walked = record.position;
                    batch.push(record);
                    if batch.len() == BATCH {
                        verifier.check_all(&batch);
                        batch.clear();
                        progress(walked);
                    }
                }
                Err(e) => {
                    verifier.check_all(&batch);
                    batch.clear();
                    verifier.storage_error(&e);
                }
            }
            std::ops::ControlFlow::Continue(())
        })?;
        verifier.check_all(&batch);
        progress(walked);
        Ok(verifier.finish())
    }

    /// Calls `each` with every stored record from position `from` on, in storage order;
    /// a chunk whose framing is damaged gives one error (at the first position it cannot
    /// frame) and the walk goes on with the next chunk. Stops early when `each` says so.
    pub fn scan(
        &self,
        from: Position,
        each: impl FnMut(Result<StoredRecord>) -> std::ops::ControlFlow<()>,
    ) -> Result<()> {
        scan_tree(&self.tree, from, each)
    }
}

/// [`OfflineLog::scan`] of `tree`.
fn scan_tree(
    tree: &sled::Db,
    from: Position,
    mut each: impl FnMut(Result<StoredRecord>) -> std::ops::ControlFlow<()>,
) -> Result<()> {
    use std::ops::ControlFlow;
    let start = tree
        .range(keys::chunk(0)..=keys::chunk(from.max(1)))
        .next_back()
        .transpose()
        .map_err(storage)?
        .and_then(|(key, _)| keys::chunk_first(&key))
        .unwrap_or(1);
    for entry in tree.range(keys::chunk(start)..) {
        let (key, value) = entry.map_err(storage)?;
        let Some(first) = keys::chunk_first(&key) else {
            break;
        };
        let mut records = match keys::ChunkRecords::new(first, value) {
            Ok(records) => records,
            Err(e) => {
                if each(Err(e)).is_break() {
                    return Ok(());
                }
                continue;
            }
        };
        while let Some(record) = records.next_stored() {
            let failed = record.is_err();
            let flow = match record {
                Ok(r) if r.position < from => ControlFlow::Continue(()),
                other => each(other),
            };
            if flow.is_break() {
                return Ok(());
            }
            if failed {
                break;
            }
        }
    }
    Ok(())
}

/// Opens the sled store in `path`, builds the indexes (from the index checkpoint if
/// `use_checkpoint` and it is usable, then with the full check of every record after
/// it), and checks the log against its witness (see [`witness`]): a log that ends
/// before the acknowledged head, or differs from it, is damaged and does not open. Nothing
/// is written here. The index's `base_tail` is the last record not checked here.
fn open_checked(
    path: &Path,
    cache_capacity_bytes: u64,
    use_checkpoint: bool,
) -> Result<(sled::Db, index::Index, witness::Read)> {
    let found = witness::read(path).map_err(|e| {
        Error::Storage(format!(
            "cannot read the witness in {}: {e}",
            path.display()
        ))
    })?;
    let vouched = match &found {
        witness::Read::Found(head) => head.durable,
        _ => 0,
    };
    let tree = unpanicked(path, || open_tree(path, cache_capacity_bytes)).map_err(|e| match e {
        Error::Corruption { position, reason } => Error::Corruption {
            position,
            reason: format!("{reason}; the witness vouches for positions 1 to {vouched}"),
        },
        other => other,
    })?;
    let (mut durable_hash, mut pending_hash) = (None, None);
    let (durable, pending) = match &found {
        witness::Read::Found(head) => (head.durable, head.pending),
        _ => (0, 0),
    };
    let mut index = if use_checkpoint {
        from_checkpoint(path, &tree)
    } else {
        None
    }
    .unwrap_or_default();
    unpanicked(path, || {
        index.extend_up_to(&tree, Position::MAX, |position, hash| {
            if position == durable {
                durable_hash = Some(hash);
            }
            if position == pending {
                pending_hash = Some(hash);
            }
        })
    })?;
    // Witnessed positions the checkpoint covers: their hashes as stored.
    let covered = index.base_tail.position;
    for (position, hash) in [(durable, &mut durable_hash), (pending, &mut pending_hash)] {
        if position > 0 && position <= covered {
            *hash = Some(unpanicked(path, || stored_at(&tree, position))?.hash());
        }
    }
    let head = index.tail.position;
    let marked = tree.get(keys::WITNESSED).map_err(storage)?.is_some();
    match &found {
        witness::Read::Missing if marked => {
            return Err(Error::Corruption {
                position: head + 1,
                reason: format!(
                    "missing: the witness of the durable head ({}) is gone, so records after \
                     position {head} cannot be ruled out as cut off",
                    witness::FILE
                ),
            });
        }
        witness::Read::Missing => {}
        witness::Read::Damaged(why) => {
            return Err(Error::Corruption {
                position: head + 1,
                reason: format!(
                    "the witness of the durable head is damaged ({why}): records after \
                     position {head} cannot be ruled out as cut off"
                ),
            });
        }
        witness::Read::Found(w) => check_witness(w, head, durable_hash, pending_hash)?,
    }
    Ok((tree, index, found))
}

/// The index from the checkpoint in `path`, if it is whole and anchored in `tree` (the
/// record it ends at is there, with the chain hash and time it names); `None`, with a
/// warning saying why, otherwise: the open then checks every record.
fn from_checkpoint(path: &Path, tree: &sled::Db) -> Option<index::Index> {
    let (base, tail) = match checkpoint::read(path) {
        checkpoint::Read::Missing => return None,
        checkpoint::Read::Unusable(why) => {
            tracing::warn!(path = %path.display(), "the index checkpoint is not usable ({why}): reading and checking every record");
            return None;
        }
        checkpoint::Read::Found(base, tail) => (base, tail),
    };
    if tail.position == 0 {
        return None;
    }
    let anchored = unpanicked(path, || {
        let stored = stored_at(tree, tail.position)?;
        let record = stored.decode()?;
        Ok(stored.hash() == tail.hash && record.recorded_at == tail.recorded_at)
    });
    match anchored {
        Ok(true) => Some(index::Index::on(Arc::new(base), tail)),
        Ok(false) => {
            tracing::warn!(path = %path.display(), position = tail.position, "the index checkpoint does not match the log's record at the position it covers: reading and checking every record");
            None
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), position = tail.position, error = %e, "the log's record at the position the index checkpoint covers cannot be read: reading and checking every record");
            None
        }
    }
}

/// The stored record at `position`.
fn stored_at(tree: &sled::Db, position: Position) -> Result<StoredRecord> {
    let (_, mut records) = chunk_holding(tree, position)?;
    records.next_stored().unwrap_or_else(|| {
        Err(Error::Corruption {
            position,
            reason: "missing record".into(),
        })
    })
}

/// Writes the index checkpoint up to the durable position `upto` and moves those events
/// of the index into its base. Never for a log that failed a write or a check: a
/// checkpoint vouches for what it covers.
pub(crate) fn write_checkpoint(shared: &Shared, upto: Position) -> std::result::Result<(), String> {
    if shared.damage.get().is_some() || shared.failure().is_some() {
        return Ok(());
    }
    let started = Instant::now();
    let stored = stored_at(&shared.tree, upto).map_err(|e| e.to_string())?;
    let record = stored.decode().map_err(|e| e.to_string())?;
    let tail = Tail::after(&stored, &record);
    // Copied under the lock, merged outside it: the writer waits only for the copy.
    let (base, layer) = {
        let index = shared.read_index();
        if index.base_tail.position >= upto {
            return Ok(());
        }
        (index.base(), index.recent_up_to(upto))
    };
    let (merged, bytes) = checkpoint::write_merged(&shared.path, &base, layer, &tail)?;
    shared.write_index().trim(Arc::new(merged), tail);
    shared.checkpointed.send_replace(upto);
    tracing::info!(
        path = %shared.path.display(),
        position = upto,
        bytes,
        seconds = started.elapsed().as_secs_f64(),
        "wrote the index checkpoint"
    );
    Ok(())
}

/// Writes an index checkpoint whenever the durable head (sent by the flusher after each
/// commit) is `every` positions past the last one; ends when the flusher does.
fn checkpoint_loop(shared: &Shared, every: u64, durable: &std_mpsc::Receiver<Position>) {
    let due = |position: Position| every > 0 && position >= *shared.checkpointed.borrow() + every;
    // An open that read many records (or all of them) keeps them at once.
    let mut next = Some(shared.durable.load(Ordering::Acquire));
    while let Some(position) = next {
        if due(position) {
            if let Err(e) = write_checkpoint(shared, position) {
                tracing::warn!(path = %shared.path.display(), error = %e, "cannot write the index checkpoint; trying again later");
            }
        }
        next = durable.recv().ok();
    }
}

/// The history check: walks the records up to `anchor` (those the open took from the
/// index checkpoint) with the audit verifier, which must find the chain intact and
/// ending at the anchor's hash. Damage refuses the log from then on.
fn check_history(shared: &Shared, anchor: Tail) {
    use eventlog::audit::{Digest, HeldDigest, Outcome, Verifier};
    use std::ops::ControlFlow;
    {
        let (go, wake) = &shared.history_go;
        let mut go = go.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while !*go && !shared.closed.load(Ordering::SeqCst) {
            go = wake
                .wait(go)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
    if shared.closed.load(Ordering::SeqCst) {
        shared.history.send_replace(HistoryCheck::Stopped);
        return;
    }
    let started = Instant::now();
    let mut verifier = Verifier::new().holding(HeldDigest::Plain(Digest {
        position: anchor.position,
        head: anchor.hash,
    }));
    let mut stopped = false;
    let walked = unpanicked(&shared.path, || {
        scan_tree(&shared.tree, 1, |record| {
            match record {
                Ok(record) => {
                    let position = record.position;
                    if position > anchor.position {
                        return ControlFlow::Break(());
                    }
                    // One record at a time on this thread: the service keeps the other cores.
                    verifier.check(&record);
                    if position == anchor.position || verifier.is_broken() {
                        return ControlFlow::Break(());
                    }
                    if position % 4096 == 0 && shared.closed.load(Ordering::Acquire) {
                        stopped = true;
                        return ControlFlow::Break(());
                    }
                }
                Err(e) => verifier.storage_error(&e),
            }
            ControlFlow::Continue(())
        })
    });
    if stopped {
        shared.history.send_replace(HistoryCheck::Stopped);
        return;
    }
    let report = verifier.finish();
    let found = match (walked, report.outcome) {
        (Err(e), _) => Some(e),
        (Ok(()), Outcome::Broken(b)) => Some(Error::Corruption {
            position: b.position,
            reason: format!(
                "{b} (found by the check of the history the index checkpoint covers, positions 1 to {})",
                anchor.position
            ),
        }),
        (Ok(()), Outcome::Intact) => None,
    };
    match found {
        None => {
            tracing::info!(
                path = %shared.path.display(),
                records = report.records,
                seconds = started.elapsed().as_secs_f64(),
                "the history behind the index checkpoint is intact"
            );
            shared.history.send_replace(HistoryCheck::Intact);
        }
        Some(damage) => {
            tracing::error!(path = %shared.path.display(), %damage, "the log's history is damaged: refusing every read and append from now on");
            let _ = shared.damage.set(damage.clone());
            shared.fail(damage.to_string());
            // Wake subscribers: their next read meets the damage.
            shared.head_tx.send_modify(|_| {});
            shared.history.send_replace(HistoryCheck::Damaged(damage));
        }
    }
}

/// Runs `f`, turning a panic into `Corruption`: sled 0.34 panics on some damaged stores
/// while recovering or reading them (e.g. "tried to serialize Uninitialized"), and damaged
/// input must be refused, never crash the process.
fn unpanicked<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Error::Corruption {
            position: 1,
            reason: format!(
                "unreadable at or after position 1: sled failed reading the store in {} ({what})",
                path.display()
            ),
        })
    })
}

/// The log, ending at `head`, against its witness `w` (with the hashes the log holds at
/// the witnessed positions).
fn check_witness(
    w: &witness::Head,
    head: Position,
    durable_hash: Option<eventlog::ChainHash>,
    pending_hash: Option<eventlog::ChainHash>,
) -> Result<()> {
    if head < w.durable {
        return Err(Error::Corruption {
            position: head + 1,
            reason: format!(
                "missing: the log ends at position {head} but positions up to {} were \
                 acknowledged (witness); the first missing is {}",
                w.durable,
                head + 1
            ),
        });
    }
    let durable_ok = w.durable == 0 || durable_hash == Some(w.durable_hash);
    if !durable_ok {
        return Err(Error::Corruption {
            position: w.durable,
            reason: "altered: the record differs from the one the witness recorded as \
                     acknowledged"
                .into(),
        });
    }
    if head > w.pending {
        // sled writes its buffers out when they fill, so appends applied but not yet
        // committed can outlive a crash. They were never acknowledged; they are whole and
        // chained (checked above), so they stay, like any append whose answer was lost.
        tracing::warn!(
            witnessed = w.pending,
            head,
            "the log holds {} records past its witness, applied before a crash and never acknowledged",
            head - w.pending
        );
    }
    if head == w.pending && w.pending > w.durable && pending_hash != Some(w.pending_hash) {
        return Err(Error::Corruption {
            position: w.pending,
            reason: "altered: the record differs from the one the witness recorded".into(),
        });
    }
    if head < w.pending {
        tracing::warn!(
            lost = w.pending - head,
            from = head + 1,
            "a crash cut off appends that were never acknowledged (the torn tail); nothing acknowledged is missing"
        );
    }
    Ok(())
}

/// Opens sled in `path`. sled 0.34 releases its directory lock only some time after the
/// last handle is dropped (its internal threads let go later: spacejam/sled#1234), so a
/// reopen in the same process can briefly find it taken. Lock conflicts are retried with
/// backoff for about two seconds; after that, another owner really holds the log.
fn open_tree(path: &Path, cache_capacity_bytes: u64) -> Result<sled::Db> {
    retrying_lock_conflicts(path, || {
        sled::Config::new()
            .path(path)
            .cache_capacity(cache_capacity_bytes)
            .mode(sled::Mode::HighThroughput)
            // Every commit flushes; sled's periodic flusher would only add I/O.
            .flush_every_ms(None)
            .open()
    })
}

/// The raw sled store in `path`, with sled's default settings, for tools and tests that
/// work below the event log (never while a log has it open). Like opening the log, it
/// waits out the lock a just-closed log may still hold for a moment.
pub fn open_raw(path: &Path) -> Result<sled::Db> {
    retrying_lock_conflicts(path, || sled::open(path))
}

fn retrying_lock_conflicts(
    path: &Path,
    mut open: impl FnMut() -> sled::Result<sled::Db>,
) -> Result<sled::Db> {
    let mut wait = Duration::from_millis(2);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match open() {
            Ok(tree) => return Ok(tree),
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_millis(100));
            }
            Err(e) if e.to_string().contains("could not acquire lock") => {
                return Err(storage(format!(
                    "{} is in use by another process (or another open log in this one)",
                    path.display()
                )))
            }
            // sled could not recover its store: nothing of it can be read.
            Err(
                e @ (sled::Error::Corruption { .. }
                | sled::Error::Unsupported(_)
                | sled::Error::ReportableBug(_)),
            ) => {
                return Err(Error::Corruption {
                    position: 1,
                    reason: format!(
                    "unreadable at or after position 1: sled cannot recover the store in {} ({e})",
                    path.display()
                ),
                })
            }
            Err(e) => return Err(storage(format!("cannot open {}: {e}", path.display()))),
        }
    }
}

/// The stored chunk holding `position`: its first position, and its records from
/// `position` on.
fn chunk_holding(tree: &sled::Db, position: Position) -> Result<(Position, keys::ChunkRecords)> {
    let missing = || Error::Corruption {
        position,
        reason: "missing record".into(),
    };
    let (key, value) = tree
        .range(keys::chunk(0)..=keys::chunk(position))
        .next_back()
        .ok_or_else(missing)?
        .map_err(storage)?;
    let first = keys::chunk_first(&key).ok_or_else(missing)?;
    let mut records = keys::ChunkRecords::new(first, value)?;
    if records.end() <= position {
        return Err(Error::Corruption {
            position,
            reason: format!(
                "missing record (chunk at {first} ends at {})",
                records.end() - 1
            ),
        });
    }
    for _ in first..position {
        records.skip_record()?;
    }
    Ok((first, records))
}

/// The record at `position`, checked.
pub(crate) fn read_record(tree: &sled::Db, position: Position) -> Result<RecordedEvent> {
    let (_, mut records) = chunk_holding(tree, position)?;
    records.next().unwrap_or_else(|| {
        Err(Error::Corruption {
            position,
            reason: "missing record".into(),
        })
    })
}

/// Up to `limit` records from `from` to `durable`, checking that positions are gapless.
fn read_forward(
    tree: &sled::Db,
    from: Position,
    durable: Position,
    limit: usize,
) -> Result<Vec<RecordedEvent>> {
    scan_forward(tree, from, durable, limit, |stored| stored.decode())
}

/// Up to `limit` records from `from` to `durable`, each passed through `each`, checking
/// that positions are gapless.
fn scan_forward<T>(
    tree: &sled::Db,
    from: Position,
    durable: Position,
    limit: usize,
    mut each: impl FnMut(StoredRecord) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(limit.min((durable + 1).saturating_sub(from) as usize));
    if from > durable || limit == 0 {
        return Ok(out);
    }
    let (_, mut records) = chunk_holding(tree, from)?;
    let mut later = tree.range(keys::chunk(records.end())..);
    let mut expected = from;
    loop {
        while let Some(record) = records.next_stored() {
            if out.len() >= limit || expected > durable {
                return Ok(out);
            }
            out.push(each(record?)?);
            expected += 1;
        }
        if out.len() >= limit || expected > durable {
            return Ok(out);
        }
        let missing = || Error::Corruption {
            position: expected,
            reason: "missing record".into(),
        };
        let (key, value) = later.next().ok_or_else(missing)?.map_err(storage)?;
        if keys::chunk_first(&key) != Some(expected) {
            return Err(missing());
        }
        records = keys::ChunkRecords::new(expected, value)?;
    }
}

/// Up to `limit` records from `start` down to 1.
fn read_backward(tree: &sled::Db, start: Position, limit: usize) -> Result<Vec<RecordedEvent>> {
    let mut out = Vec::with_capacity(limit.min(start as usize));
    let mut end = start;
    while end >= 1 && out.len() < limit {
        let first = chunk_holding(tree, end)?.0;
        let wanted = (limit - out.len()) as u64;
        let from = first.max(end.saturating_sub(wanted - 1));
        let records = read_forward(tree, from, end, usize::MAX)?;
        out.extend(records.into_iter().rev());
        end = from - 1;
    }
    Ok(out)
}
