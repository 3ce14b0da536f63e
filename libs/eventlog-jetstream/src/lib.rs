//! The event log on NATS JetStream: the distributed backend, for firms that outgrow one
//! machine. Same contract as the sled backend (it passes the same conformance suite).
//!
//! Layout: one JetStream stream (e.g. `EVENTLOG`) with subjects `<prefix>.<stream id>`.
//! **One message per append**, holding the append's records in the shared stored form
//! (`[count: u32 LE]` then per record `[len: u32 LE][record]`, each record sealed by
//! [`eventlog::seal`]: checksummed and chained exactly as on sled), so an append is atomic
//! without batch publishing (atomic batches need nats-server 2.12 and allow no `Nats-Msg-Id`).
//!
//! Order and concurrency: appends are committed in groups. The append that takes the
//! writer decides every append waiting then, one after the other on the log as the ones
//! before leave it (a retry gets its first result, a wrong expected version its own
//! error), seals them in order, and publishes them as one message (several streams'
//! records: each record names its stream) with `Nats-Expected-Last-Sequence`, the
//! stream's last message as this process knows it. JetStream refuses it if anyone
//! appended in between; the writer then catches up and decides the group again. So
//! global positions are gapless and in stream order, the hash chain is unbroken, and
//! every version check is exact even with several writers (complaintd replicas) on one
//! JetStream stream.
//!
//! Idempotency lasts forever: every event id is in the process's index (kept on local
//! disk, see `index`, and completed from the stream at open), checked before an append
//! is decided, not limited to JetStream's duplicate window. `Nats-Msg-Id`
//! (the group's first event id) additionally drops a resent publish inside the window; a
//! duplicate acknowledgement makes the writer read the stream rather than assume.
//!
//! Durability: an append returns once JetStream acknowledged it: stored on the stream's
//! replicas (use R3 on a cluster). Only with `jetstream { sync_interval: always }` in the
//! servers' configuration (as in `deploy/` and the tests' servers) is that on disk;
//! nats-server's default syncs every 2 minutes, and a power loss of a node, or of all
//! nodes at once, can then lose acknowledged events. A server older than 2.10 (which
//! lacks the setting) is refused at open.
//!
//! Stream reads (`read_stream`, `stream_version`) first catch up with the JetStream
//! stream (one info request), so a replica decides on every append acknowledged so far,
//! whoever made it. Reads fetch messages by sequence (`STREAM.MSG.GET`), keeping the
//! records of each message fetched and of this process's own appends in a bounded cache
//! (`cache`), so a command reading its complaint's stream again costs no fetch; open reads the
//! stream (all of it the first time, then only what follows the last message the local
//! index holds, `checkpoint`) to build the indexes, checking positions, the hash chain, stream
//! versions and unique event ids (through an ordered consumer when 32 messages or more
//! are to be read, else message by message). Subscriptions are the trait's
//! catch-up-then-follow by position (resumable from any position the subscriber kept),
//! not JetStream durable consumers. Another process's appends are noticed when this one
//! next appends (its expected sequence is refused), on the stream reads above, or through
//! a core subscription on the stream's subjects, which wakes followers; `read_all`,
//! `read_stored` and `head` answer from what this process has seen.
#![forbid(unsafe_code)]

mod cache;
mod index;

use std::collections::HashMap;

use cache::RecordCache;
use index::Index;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use bytes::{BufMut, Bytes, BytesMut};
use eventlog::{
    idempotency, AppendResult, Clock, Direction, Error, EventLog, ExpectedVersion, Limits,
    NewEvent, Position, RecordedEvent, Result, Sealed, StoredRecord, StreamId, Version,
};
use futures::StreamExt;
use tokio::sync::watch;

/// How to reach the log.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    pub url: String,
    /// The JetStream stream that holds the log.
    pub stream: String,
    /// Subjects are `<subject_prefix>.<encoded stream id>`.
    pub subject_prefix: String,
    /// Replicas of the stream when it is created (3 on a cluster).
    pub replicas: usize,
    pub limits: Limits,
    /// Most appends committed together in one message (1: one append per round trip, as
    /// before group commit; the benchmark's baseline).
    pub max_group: usize,
    /// A local directory keeping this process's index of the log on disk (see `index`):
    /// opening then reads only the messages after the last one it holds. `None`: a
    /// temporary index, and every open reads the whole stream.
    pub checkpoint: Option<std::path::PathBuf>,
    /// The index's page cache in memory, in bytes: what the index costs in memory,
    /// whatever the history's length.
    pub index_cache_bytes: u64,
    /// Records kept in memory after they were appended or read (see `cache`), so that
    /// reading a stream again costs no round trips; 0: none kept.
    pub record_cache: usize,
}

impl JetStreamConfig {
    pub fn new(url: impl Into<String>, stream: impl Into<String>) -> Self {
        let stream = stream.into();
        Self {
            url: url.into(),
            subject_prefix: format!("eventlog.{}", stream.to_lowercase()),
            stream,
            replicas: 1,
            limits: Limits::default(),
            max_group: 1024,
            checkpoint: None,
            index_cache_bytes: 32 << 20,
            record_cache: 16_384,
        }
    }
}

fn storage(e: impl std::fmt::Display) -> Error {
    Error::Storage(e.to_string())
}

/// The subject token of a message holding the appends of several streams (labels only:
/// readers go by the records).
const GROUP_SUBJECT: &str = "$group";

/// A subject token for a stream id: `.`, `*`, `>` and `%` escaped.
fn subject_token(stream: &StreamId) -> String {
    let mut out = String::with_capacity(stream.as_str().len());
    for c in stream.as_str().chars() {
        match c {
            '.' => out.push_str("%2E"),
            '*' => out.push_str("%2A"),
            '>' => out.push_str("%3E"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
    out
}

/// An append waiting for its group commit.
struct Pending {
    stream: StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
    reply: tokio::sync::oneshot::Sender<Result<AppendResult>>,
}

/// The records of one message.
fn unframe(sequence: u64, first: Position, payload: &Bytes) -> Result<Vec<StoredRecord>> {
    let corrupt = |reason: &str| Error::Corruption {
        position: first,
        reason: format!("message {sequence}: {reason}"),
    };
    let count = payload
        .get(..4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .ok_or_else(|| corrupt("shorter than its header"))?;
    let mut offset = 4;
    let mut out = Vec::with_capacity(count.min(1024) as usize);
    for i in 0..count as u64 {
        let header = payload
            .get(offset..offset + 4)
            .ok_or_else(|| corrupt("ends before its records do"))?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let start = offset + 4;
        if start + len > payload.len() {
            return Err(corrupt("a record runs past its end"));
        }
        out.push(StoredRecord {
            position: first + i,
            bytes: payload.slice(start..start + len),
        });
        offset = start + len;
    }
    if offset != payload.len() {
        return Err(corrupt("bytes after the last record"));
    }
    Ok(out)
}

/// One message holding `records`' stored bytes.
fn frame(records: &[(StoredRecord, RecordedEvent)]) -> Bytes {
    let size = 4 + records
        .iter()
        .map(|(r, _)| r.bytes.len() + 4)
        .sum::<usize>();
    let mut out = BytesMut::with_capacity(size);
    out.put_u32_le(records.len() as u32);
    for (r, _) in records {
        out.put_u32_le(r.bytes.len() as u32);
        out.put_slice(&r.bytes);
    }
    out.freeze()
}

struct Inner {
    js: jetstream::Context,
    stream: stream::Stream,
    config: JetStreamConfig,
    clock: Arc<dyn Clock>,
    index: Mutex<Index>,
    /// Recent records, by position.
    cache: Mutex<RecordCache>,
    /// Appends waiting for the next group commit.
    queue: Mutex<Vec<Pending>>,
    /// Held by the append committing a group (others are serialised by JetStream).
    writer: Arc<tokio::sync::Mutex<()>>,
    /// The server's largest message: a group stays below it.
    max_payload: usize,
    /// The position the index checkpoint brought this open to (0: none used).
    from_checkpoint: std::sync::atomic::AtomicU64,
    head_tx: watch::Sender<Position>,
    closed: std::sync::atomic::AtomicBool,
    follower: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The JetStream event log. Cheap to clone.
#[derive(Clone)]
pub struct JetStreamEventLog {
    inner: Arc<Inner>,
}

/// The oldest nats-server this backend runs on: 2.10 brought `sync_interval: always`,
/// without which an acknowledged append is not on disk.
pub const MIN_SERVER_VERSION: (u32, u32) = (2, 10);

/// Refuses a server older than [`MIN_SERVER_VERSION`] (its `INFO` version, e.g. `2.15.1`).
fn check_server_version(version: &str) -> Result<()> {
    let mut parts = version.trim_start_matches('v').split('.');
    let found = (|| Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?)))();
    match found {
        Some(v) if v >= MIN_SERVER_VERSION => Ok(()),
        _ => Err(storage(format!(
            "nats-server {version} is older than {}.{}: it cannot sync before acknowledging (sync_interval: always), so acknowledged events could be lost; upgrade it (scripts/install-nats-server has the version the tests use)",
            MIN_SERVER_VERSION.0, MIN_SERVER_VERSION.1
        ))),
    }
}

impl JetStreamEventLog {
    /// Connects, creates the stream if missing, and reads it whole to rebuild the indexes.
    pub async fn open(config: JetStreamConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let client = async_nats::ConnectOptions::new()
            .name("complaints-eventlog")
            .connection_timeout(Duration::from_secs(5))
            .connect(config.url.split(',').map(str::trim).collect::<Vec<_>>())
            .await
            .map_err(|e| storage(format!("cannot connect to {}: {e}", config.url)))?;
        let info = client.server_info();
        check_server_version(&info.version)?;
        let max_payload = info.max_payload;
        let js = jetstream::new(client.clone());
        let stream = js
            .get_or_create_stream(stream::Config {
                name: config.stream.clone(),
                subjects: vec![format!("{}.>", config.subject_prefix)],
                storage: stream::StorageType::File,
                num_replicas: config.replicas,
                duplicate_window: Duration::from_secs(120),
                allow_direct: true,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                storage(format!(
                    "cannot create or find stream {}: {e}",
                    config.stream
                ))
            })?;
        let index = Index::open(
            config.checkpoint.as_deref(),
            &config.stream,
            config.index_cache_bytes,
        )?;
        let cache = RecordCache::new(config.record_cache);
        let (head_tx, _) = watch::channel(0);
        let log = Self {
            inner: Arc::new(Inner {
                js,
                stream,
                config,
                clock,
                cache: Mutex::new(cache),
                index: Mutex::new(index),
                queue: Mutex::new(Vec::new()),
                writer: Arc::new(tokio::sync::Mutex::new(())),
                max_payload,
                from_checkpoint: 0.into(),
                head_tx,
                closed: false.into(),
                follower: Mutex::new(None),
            }),
        };
        log.check_index_against_the_stream().await?;
        log.catch_up().await?;
        log.save_checkpoint();
        // Wake on other processes' appends: the core subscription sees every publish.
        let mut notices = client
            .subscribe(format!("{}.>", log.inner.config.subject_prefix))
            .await
            .map_err(storage)?;
        let weak = Arc::downgrade(&log.inner);
        let follower = tokio::spawn(async move {
            while notices.next().await.is_some() {
                let Some(inner) = weak.upgrade() else { return };
                let log = JetStreamEventLog { inner };
                if let Err(e) = log.catch_up().await {
                    tracing::warn!(error = %e, "event log: catching up failed");
                }
            }
        });
        *log.inner
            .follower
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(follower);
        Ok(log)
    }

    /// Checks the index kept from an earlier open against the stream: the message it last
    /// applied must still be there, holding the record it names as the tail, with that
    /// record's hash. Otherwise the stream lost or changed acknowledged history: refused.
    async fn check_index_against_the_stream(&self) -> Result<()> {
        let name = self.inner.config.stream.clone();
        let (last_sequence, tail, in_message) = {
            let index = self.index();
            (
                index.last_sequence,
                index.tail,
                index.records_in_last_message()?,
            )
        };
        if last_sequence == 0 {
            return Ok(());
        }
        let mut info = self.inner.stream.clone();
        let last = info.info().await.map_err(storage)?.state.last_sequence;
        if last < last_sequence {
            return Err(Error::Corruption {
                position: tail.position,
                reason: format!(
                    "missing: the stream {name} ends at message {last}, but this log's index reached message {last_sequence} (position {}): acknowledged records were lost",
                    tail.position
                ),
            });
        }
        let payload = self.message(last_sequence).await?;
        let first = tail.position + 1 - in_message.max(1);
        let matches = unframe(last_sequence, first, &payload)
            .ok()
            .and_then(|records| records.last().cloned())
            .and_then(|last| Some((last.hash(), last.decode().ok()?.position)))
            .is_some_and(|(hash, position)| hash == tail.hash && position == tail.position);
        if !matches {
            return Err(Error::Corruption {
                position: tail.position,
                reason: format!(
                    "altered: message {last_sequence} of the stream {name} does not hold the record this log's index reached (position {}, its hash): the history changed",
                    tail.position
                ),
            });
        }
        let head = tail.position;
        self.inner
            .from_checkpoint
            .store(head, std::sync::atomic::Ordering::SeqCst);
        eventlog::advance_head(&self.inner.head_tx, head);
        tracing::info!(position = head, "event log index loaded from local disk");
        Ok(())
    }

    /// The position the index checkpoint brought this open to, if one was used (the rest
    /// was read from the stream).
    pub fn opened_from_checkpoint(&self) -> Option<Position> {
        Some(
            self.inner
                .from_checkpoint
                .load(std::sync::atomic::Ordering::SeqCst),
        )
        .filter(|p| *p > 0)
    }

    /// Writes the index to disk (a failure is a warning: the next open reads more of the
    /// stream, nothing else).
    fn save_checkpoint(&self) {
        if self.inner.config.checkpoint.is_none() {
            return;
        }
        if let Err(e) = self.index().flush() {
            tracing::warn!(error = %e, "cannot write the local index to disk");
        }
    }

    /// The local index's size on disk, in bytes.
    pub fn index_size_on_disk(&self) -> u64 {
        self.index().size_on_disk()
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.inner
            .index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn message(&self, sequence: u64) -> Result<Bytes> {
        let message = self
            .inner
            .stream
            .get_raw_message(sequence)
            .await
            .map_err(|e| storage(format!("cannot read message {sequence}: {e}")))?;
        Ok(message.payload)
    }

    /// Reads what other processes appended since this one last looked. (Appends and a
    /// core subscription do this on their own; call it to be sure before a read.)
    pub async fn sync(&self) -> Result<()> {
        self.catch_up().await
    }

    /// Reads every message past the last one applied and applies it: a long way behind
    /// (opening a log) through an ordered consumer that streams the messages in batches,
    /// a few messages by fetching each.
    async fn catch_up(&self) -> Result<()> {
        let mut info = self.inner.stream.clone();
        let last = info.info().await.map_err(storage)?.state.last_sequence;
        let next = self.index().last_sequence + 1;
        if last >= next + 32 {
            self.stream_from(next, last).await?;
        }
        loop {
            let next = self.index().last_sequence + 1;
            if next > last {
                return Ok(());
            }
            let payload = self.message(next).await?;
            self.apply_message(next, &payload)?;
        }
    }

    /// Applies messages `from..=to` read through an ordered consumer.
    async fn stream_from(&self, from: u64, to: u64) -> Result<()> {
        use jetstream::consumer::{pull, DeliverPolicy};
        let consumer = self
            .inner
            .stream
            .create_consumer(pull::OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: from,
                },
                ..Default::default()
            })
            .await
            .map_err(storage)?;
        let mut messages = consumer.messages().await.map_err(storage)?;
        while let Some(message) = messages.next().await {
            let message = message.map_err(storage)?;
            let sequence = message.info().map_err(storage)?.stream_sequence;
            self.apply_message(sequence, &message.payload)?;
            if sequence >= to {
                break;
            }
        }
        Ok(())
    }

    /// Checks and applies message `sequence` unless it was applied already.
    fn apply_message(&self, sequence: u64, payload: &Bytes) -> Result<()> {
        let (applied, first) = {
            let index = self.index();
            (index.last_sequence, index.head() + 1)
        };
        if sequence <= applied {
            return Ok(()); // applied meanwhile (an append of ours)
        }
        if sequence != applied + 1 {
            return Err(Error::Corruption {
                position: first,
                reason: format!("message {} is missing", applied + 1),
            });
        }
        let records = unframe(sequence, first, payload)?
            .into_iter()
            .map(|stored| {
                let record = stored.decode()?;
                Ok((stored, record))
            })
            .collect::<Result<Vec<_>>>()?;
        let head = {
            let mut index = self.index();
            if index.last_sequence >= sequence {
                return Ok(());
            }
            index.apply(sequence, &records)?;
            index.head()
        };
        eventlog::advance_head(&self.inner.head_tx, head);
        Ok(())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, RecordCache> {
        self.inner
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The record at `position`: kept in memory, or fetched with the rest of its message
    /// (all of which are kept: a stream's events often share messages).
    async fn record(&self, position: Position) -> Result<(StoredRecord, RecordedEvent)> {
        if let Some(found) = self.cache().get(position) {
            return Ok(found);
        }
        let slot = self.index().slot(position)?.ok_or(Error::Corruption {
            position,
            reason: "missing record".into(),
        })?;
        let payload = self.message(slot.sequence).await?;
        let first = position - u64::from(slot.index);
        let records = unframe(slot.sequence, first, &payload)?
            .into_iter()
            .map(|stored| {
                let record = stored.decode()?;
                Ok((stored, record))
            })
            .collect::<Result<Vec<_>>>()?;
        let found = records
            .get(slot.index as usize)
            .cloned()
            .ok_or(Error::Corruption {
                position,
                reason: "missing record".into(),
            })?;
        self.cache().keep(&records);
        Ok(found)
    }

    /// The records at `positions`, in that order.
    async fn events(&self, positions: Vec<Position>) -> Result<Vec<RecordedEvent>> {
        let mut out = Vec::with_capacity(positions.len());
        for position in positions {
            out.push(self.record(position).await?.1);
        }
        Ok(out)
    }

    /// The original result if every id was appended before (idempotent retry), `None` if
    /// none was; a partial or different repeat is a conflict.
    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Pending>> {
        self.inner
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Commits `group` (appends in arrival order) and answers each. Each is decided on
    /// the log as the ones before it in the group leave it: a retry (known event ids) gets
    /// its first result, a wrong expected version its own error, and neither touches the
    /// others; the rest are sealed one after the other (positions, versions and the chain
    /// run on through the group) and published as one message that expects the stream's
    /// last sequence as this process knows it. If another process appended meanwhile,
    /// JetStream refuses it: catch up and decide the group again. So global order stays
    /// gapless and every version check exact, across processes.
    async fn commit_group(&self, mut group: Vec<Pending>) {
        // Rounds refused by JetStream (another writer first, or a duplicate to read back)
        // before giving up on the group.
        let mut refusals = 0;
        while !group.is_empty() {
            // Answered now: retries and wrong versions; kept: the ones to publish; the
            // rest (a repeat of an event id in this group, or past the message size)
            // wait for the next round.
            let mut kept: Vec<(Pending, Sealed)> = Vec::new();
            let mut later = Vec::new();
            let mut ids = std::collections::HashSet::new();
            let (mut tail, last_sequence) = {
                let index = self.index();
                (index.tail, index.last_sequence)
            };
            let mut versions: HashMap<StreamId, Version> = HashMap::new();
            let mut size = 4;
            for p in group {
                let repeated = p.events.iter().any(|e| ids.contains(&e.id));
                let bytes: usize = p.events.iter().map(|e| e.payload.len() + 512).sum();
                let full = kept.len() >= self.inner.config.max_group.max(1)
                    || size + bytes > self.inner.max_payload / 2;
                if repeated || (!kept.is_empty() && full) {
                    later.push(p);
                    continue;
                }
                match self.find_original(&p.stream, &p.events).await {
                    Ok(Some(original)) => {
                        let _ = p.reply.send(Ok(original));
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = p.reply.send(Err(e));
                        continue;
                    }
                }
                let actual = match versions.get(&p.stream) {
                    Some(v) => *v,
                    None => match self.index().version(&p.stream) {
                        Ok(v) => v,
                        Err(e) => {
                            let _ = p.reply.send(Err(e));
                            continue;
                        }
                    },
                };
                if !p.expected.admits(actual) {
                    let _ = p.reply.send(Err(Error::WrongExpectedVersion {
                        stream: p.stream.clone(),
                        expected: p.expected,
                        actual,
                    }));
                    continue;
                }
                let sealed = tail.seal(&p.stream, actual, self.inner.clock.now(), &p.events);
                let own: usize = sealed.records.iter().map(|(r, _)| r.bytes.len() + 4).sum();
                if own + 4096 > self.inner.max_payload {
                    // Never fits in a message of this server: refused on its own.
                    let _ = p.reply.send(Err(Error::EventTooLarge {
                        event_id: p.events[0].id,
                        size: own,
                        limit: self.inner.max_payload.saturating_sub(4096),
                    }));
                    continue;
                }
                tail = sealed.tail;
                versions.insert(p.stream.clone(), actual + p.events.len() as Version);
                ids.extend(p.events.iter().map(|e| e.id));
                size += sealed
                    .records
                    .iter()
                    .map(|(r, _)| r.bytes.len() + 4)
                    .sum::<usize>();
                kept.push((p, sealed));
            }
            if !kept.is_empty() {
                let committing = std::time::Instant::now();
                let retry = self.publish_group(&kept, last_sequence).await;
                metrics::histogram!("complaints_log_commit_seconds", "backend" => "jetstream")
                    .record(committing.elapsed());
                match retry {
                    Ok(true) => {}
                    // Someone else appended: decide these again, first.
                    Ok(false) if refusals >= 1000 => {
                        let e = storage("the stream kept refusing this group's expected sequence");
                        for (p, _) in kept {
                            let _ = p.reply.send(Err(e.clone()));
                        }
                        group = later;
                        continue;
                    }
                    Ok(false) => {
                        refusals += 1;
                        let mut again: Vec<Pending> = kept.into_iter().map(|(p, _)| p).collect();
                        again.append(&mut later);
                        group = again;
                        if let Err(e) = self.catch_up().await {
                            for p in group {
                                let _ = p.reply.send(Err(e.clone()));
                            }
                            return;
                        }
                        continue;
                    }
                    // This message failed: its appends fail (their outcome unknown to
                    // the caller: a retry with the same ids is safe); the rest go on.
                    Err(e) => {
                        for (p, _) in kept {
                            let _ = p.reply.send(Err(e.clone()));
                        }
                        group = later;
                        continue;
                    }
                }
                for (p, sealed) in kept {
                    let _ = p.reply.send(Ok(sealed.result()));
                }
            }
            group = later;
        }
    }

    /// Publishes the sealed appends of `kept` as one message, expecting the stream's
    /// last sequence to be `last_sequence`. `Ok(false)`: another process appended first.
    async fn publish_group(&self, kept: &[(Pending, Sealed)], last_sequence: u64) -> Result<bool> {
        let records: Vec<(StoredRecord, RecordedEvent)> = kept
            .iter()
            .flat_map(|(_, s)| s.records.iter().cloned())
            .collect();
        let mut headers = HeaderMap::new();
        // A resend of this very message within the duplicate window is dropped.
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            kept[0].0.events[0].id.to_string().as_str(),
        );
        headers.insert(
            async_nats::header::NATS_EXPECTED_LAST_SEQUENCE,
            last_sequence.to_string().as_str(),
        );
        // One append: on its stream's subject; several: on the group subject (subjects
        // only label messages: readers go by the records, which name their streams).
        let subject = match kept {
            [(p, _)] => format!(
                "{}.{}",
                self.inner.config.subject_prefix,
                subject_token(&p.stream)
            ),
            _ => format!("{}.{GROUP_SUBJECT}", self.inner.config.subject_prefix),
        };
        let published = self
            .inner
            .js
            .publish_with_headers(subject, headers, frame(&records))
            .await
            .map_err(|e| storage(format!("publish failed: {e}")))?
            .await;
        match published {
            // A message with this id was stored before (an earlier attempt whose
            // acknowledgement was lost): what it holds is read, not assumed.
            Ok(ack) if ack.duplicate => Ok(false),
            Ok(ack) => {
                let head = {
                    let mut index = self.index();
                    if index.last_sequence < ack.sequence {
                        index.apply(ack.sequence, &records)?;
                    }
                    index.head()
                };
                self.cache().keep(&records);
                eventlog::advance_head(&self.inner.head_tx, head);
                Ok(true)
            }
            Err(e) if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence => {
                Ok(false)
            }
            Err(e) => Err(storage(format!("append not acknowledged: {e}"))),
        }
    }

    async fn find_original(
        &self,
        stream: &StreamId,
        events: &[NewEvent],
    ) -> Result<Option<AppendResult>> {
        let found: Vec<Option<Position>> = {
            let index = self.index();
            events
                .iter()
                .map(|e| index.position_of(&e.id))
                .collect::<Result<_>>()?
        };
        let Some(positions) = idempotency::known_positions(events, found)? else {
            return Ok(None);
        };
        let originals = self.events(positions).await?;
        idempotency::original_result(stream, events, &originals).map(Some)
    }
}

#[async_trait::async_trait]
impl EventLog for JetStreamEventLog {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        self.check_open()?;
        self.inner
            .config
            .limits
            .validate(stream.as_str().len(), &events)?;
        // Group commit: the append that gets the writer commits every append waiting
        // then, in one message (one round trip, one sync on every replica); one whose
        // turn comes finds it done.
        let (started, count) = (std::time::Instant::now(), events.len() as u64);
        let (reply, mut done) = tokio::sync::oneshot::channel();
        self.queue().push(Pending {
            stream: stream.clone(),
            expected,
            events,
            reply,
        });
        let writer = self.inner.writer.clone().lock_owned().await;
        if let Ok(result) = done.try_recv() {
            eventlog::metrics::record_append("jetstream", started, count, &result);
            return result;
        }
        let group = std::mem::take(&mut *self.queue());
        // In a task of its own, holding the writer: if this caller goes away (a timeout,
        // a client gone), the group still commits and every member gets its answer.
        let log = self.clone();
        tokio::spawn(async move {
            let _writer = writer;
            log.commit_group(group).await;
        });
        let result = done.await.unwrap_or_else(|_| {
            Err(storage(
                "the append's outcome is unknown: its group commit did not finish (retry with the same event ids)",
            ))
        });
        eventlog::metrics::record_append("jetstream", started, count, &result);
        result
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Version> {
        self.check_open()?;
        // Another replica may have appended: decide on the stream as JetStream has it.
        self.catch_up().await?;
        self.index().version(stream)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: Version,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        self.check_open()?;
        // A command reads its complaint's stream before deciding: see every append
        // acknowledged so far, including other replicas'.
        self.catch_up().await?;
        let positions = self
            .index()
            .stream_positions(stream, from, direction, limit)?;
        self.events(positions).await
    }

    async fn read_all(
        &self,
        from: Position,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        self.check_open()?;
        let head = self.index().head();
        let positions: Vec<Position> = match direction {
            Direction::Forward => (from.max(1)..=head).take(limit).collect(),
            Direction::Backward => (1..=from.min(head)).rev().take(limit).collect(),
        };
        self.events(positions).await
    }

    async fn read_stored(&self, from: Position, limit: usize) -> Result<Vec<StoredRecord>> {
        self.check_open()?;
        let head = self.index().head();
        let mut out = Vec::new();
        for position in (from.max(1)..=head).take(limit) {
            out.push(self.record(position).await?.0);
        }
        Ok(out)
    }

    async fn head(&self) -> Result<Position> {
        self.check_open()?;
        Ok(self.index().head())
    }

    fn watch_head(&self) -> watch::Receiver<Position> {
        self.inner.head_tx.subscribe()
    }

    async fn close(&self) -> Result<()> {
        let was_closed = self
            .inner
            .closed
            .swap(true, std::sync::atomic::Ordering::SeqCst);
        if !was_closed {
            // Appends in flight have finished once the writer is free.
            let _writer = self.inner.writer.lock().await;
            // Written to disk (with a path) and let go of.
            if let Err(e) = self.index().close() {
                tracing::warn!(error = %e, "cannot write the local index to disk");
            }
            self.cache().clear();
        }
        if let Some(follower) = self
            .inner
            .follower
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            follower.abort();
        }
        self.inner.head_tx.send_modify(|_| {});
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::check_server_version;

    #[test]
    fn a_server_without_sync_interval_always_is_refused() {
        assert!(check_server_version("2.15.1").is_ok());
        assert!(check_server_version("2.10.0").is_ok());
        assert!(check_server_version("3.0.0").is_ok());
        let refused = check_server_version("2.9.10").unwrap_err().to_string();
        assert!(
            refused.contains("nats-server 2.9.10 is older than 2.10"),
            "{refused}"
        );
        assert!(check_server_version("garbage").is_err());
    }
}
