//! The append pipeline: writer thread -> flusher thread -> callers.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use eventlog::{
    idempotency, AppendResult, ChainHash, Error, ExpectedVersion, NewEvent, Position,
    RecordedEvent, Result, StreamId, Tail,
};
use tokio::sync::{mpsc, oneshot};

use crate::keys::ChunkBuilder;
use crate::witness::{Head, Witness};
use crate::{storage, Shared};

/// Appends waiting for the writer; callers wait (backpressure) when it is full.
const SUBMIT_QUEUE: usize = 4096;
/// Most appends the writer hands to the flusher as one unit.
const MAX_GROUP: usize = 1024;

pub(crate) struct AppendRequest {
    pub stream: StreamId,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    pub reply: oneshot::Sender<Result<AppendResult>>,
}

/// Appends applied to sled, waiting to be made durable and answered.
struct Applied {
    /// Last position applied when this group was handed over, and its chain hash.
    up_to: Position,
    hash: ChainHash,
    replies: Vec<(oneshot::Sender<Result<AppendResult>>, Result<AppendResult>)>,
}

pub(crate) fn start(
    shared: Arc<Shared>,
    sync: Syncer,
    tail: Tail,
    witness: Witness,
    checkpoints: std_mpsc::SyncSender<Position>,
) -> Result<(mpsc::Sender<AppendRequest>, Vec<JoinHandle<()>>)> {
    let (submit, requests) = mpsc::channel(SUBMIT_QUEUE);
    let (applied_tx, applied_rx) = std_mpsc::sync_channel(SUBMIT_QUEUE);
    let writer = Writer {
        shared: shared.clone(),
        tail,
        chunk: ChunkBuilder::default(),
        unwritten: Vec::new(),
    };
    let writer = std::thread::Builder::new()
        .name("eventlog-writer".into())
        .spawn(move || writer.run(requests, applied_tx))
        .map_err(storage)?;
    let (witness_tx, witness_rx) = std_mpsc::sync_channel::<Head>(1);
    let (witnessed_tx, witnessed_rx) = std_mpsc::sync_channel::<std::io::Result<()>>(1);
    let witness_thread = std::thread::Builder::new()
        .name("eventlog-witness".into())
        .spawn(move || witness_loop(witness, &witness_rx, &witnessed_tx))
        .map_err(storage)?;
    let durable = Durable {
        position: tail.position,
        hash: tail.hash,
    };
    let flusher = std::thread::Builder::new()
        .name("eventlog-flusher".into())
        .spawn(move || {
            flusher_loop(
                shared,
                sync,
                applied_rx,
                WitnessLink {
                    requests: witness_tx,
                    done: witnessed_rx,
                    durable,
                },
                &checkpoints,
            );
        })
        .map_err(storage)?;
    Ok((submit, vec![writer, flusher, witness_thread]))
}

/// A chunk is written once it holds this many bytes (appends are never split, so one
/// large append makes a larger chunk). Below sled's blob threshold (segment size / 4).
pub(crate) const CHUNK_TARGET_BYTES: usize = 96 * 1024;

struct Writer {
    shared: Arc<Shared>,
    /// The last record applied (in sled or in `chunk`).
    tail: Tail,
    /// The chunk being filled.
    chunk: ChunkBuilder,
    /// Records in `chunk`, not yet in sled (for idempotent retries within a group).
    unwritten: Vec<RecordedEvent>,
}

impl Writer {
    fn run(
        mut self,
        mut requests: mpsc::Receiver<AppendRequest>,
        applied: std_mpsc::SyncSender<Applied>,
    ) {
        while let Some(first) = requests.blocking_recv() {
            let mut replies = Vec::new();
            let mut next = Some(first);
            while let Some(request) = next.take() {
                let result = match self.shared.failure() {
                    Some(e) => Err(e),
                    None => self.apply(&request),
                };
                replies.push((request.reply, result));
                if replies.len() < MAX_GROUP {
                    next = requests.try_recv().ok();
                }
            }
            if let Err(e) = self.write_chunk() {
                for (_, result) in &mut replies {
                    if result.is_ok() {
                        *result = Err(Error::Storage(e.to_string()));
                    }
                }
            }
            let group = Applied {
                up_to: self.tail.position,
                hash: self.tail.hash,
                replies,
            };
            if applied.send(group).is_err() {
                return;
            }
        }
    }

    /// Inserts the chunk being filled into sled (not yet durable).
    fn write_chunk(&mut self) -> Result<()> {
        self.unwritten.clear();
        if let Some((key, value)) = self.chunk.take() {
            self.shared
                .tree
                .insert(key, value)
                .map_err(|e| self.shared.fail(format!("sled insert failed: {e}")))?;
        }
        Ok(())
    }

    /// Checks one append, assigns its versions and positions and adds it to the chunk.
    fn apply(&mut self, request: &AppendRequest) -> Result<AppendResult> {
        if let Some(original) = self.find_original(request)? {
            return Ok(original);
        }
        let actual = self.shared.read_index().version(&request.stream)?;
        if !request.expected.admits(actual) {
            return Err(Error::WrongExpectedVersion {
                stream: request.stream.clone(),
                expected: request.expected,
                actual,
            });
        }
        // The writer's order is the global order: each record chains to the one before.
        let sealed = self.tail.seal(
            &request.stream,
            actual,
            self.shared.clock.now(),
            &request.events,
        );
        let size: usize = sealed.records.iter().map(|(s, _)| s.bytes.len() + 4).sum();
        if self.chunk.len() > 0 && self.chunk.len() + size > CHUNK_TARGET_BYTES {
            self.write_chunk()?;
        }
        for (stored, _) in &sealed.records {
            self.chunk.push(stored.position, &stored.bytes);
        }
        {
            let mut index = self.shared.write_index();
            for (_, record) in &sealed.records {
                index.add(&request.stream, record.id, record.position, record.version);
            }
        }
        let result = sealed.result();
        self.tail = sealed.tail;
        self.unwritten
            .extend(sealed.records.into_iter().map(|(_, record)| record));
        Ok(result)
    }

    /// The record at `position`, whether still in the chunk being filled or in sled.
    fn record(&self, position: Position) -> Result<RecordedEvent> {
        match self.unwritten.first() {
            Some(first) if position >= first.position => {
                Ok(self.unwritten[(position - first.position) as usize].clone())
            }
            _ => crate::read_record(&self.shared.tree, position),
        }
    }

    /// If the append's ids were all appended before, the original result; if none were,
    /// `None`; anything in between, or other content under a known id, is a conflict.
    fn find_original(&self, request: &AppendRequest) -> Result<Option<AppendResult>> {
        let found: Vec<Option<Position>> = {
            let index = self.shared.read_index();
            request
                .events
                .iter()
                .map(|e| index.position_of(&e.id))
                .collect::<Result<_>>()?
        };
        let Some(positions) = idempotency::known_positions(&request.events, found)? else {
            return Ok(None);
        };
        let originals = positions
            .into_iter()
            .map(|position| self.record(position))
            .collect::<Result<Vec<_>>>()?;
        idempotency::original_result(&request.stream, &request.events, &originals).map(Some)
    }
}

/// Longest a commit waits for more appends to join it.
const MAX_COMMIT_DELAY: Duration = Duration::from_micros(250);

/// The last acknowledged head and its chain hash.
#[derive(Clone, Copy)]
struct Durable {
    position: Position,
    hash: ChainHash,
}

/// The flusher's side of the witness thread.
struct WitnessLink {
    requests: std_mpsc::SyncSender<Head>,
    done: std_mpsc::Receiver<std::io::Result<()>>,
    durable: Durable,
}

impl WitnessLink {
    /// Starts writing the witness of a commit up to `pending` (while the data is synced).
    fn start(&self, pending: Durable) -> std::io::Result<()> {
        let head = Head {
            durable: self.durable.position,
            durable_hash: self.durable.hash,
            pending: pending.position,
            pending_hash: pending.hash,
        };
        self.requests
            .send(head)
            .map_err(|_| std::io::Error::other("the witness thread is gone"))
    }

    /// At close: the witness of the last acknowledged head, nothing pending.
    fn settle(&self) {
        let head = Head::settled(self.durable.position, self.durable.hash);
        if self.requests.send(head).is_ok() {
            let _ = self.finish();
        }
    }

    /// Waits for the witness write started last.
    fn finish(&self) -> std::io::Result<()> {
        self.done
            .recv()
            .map_err(|_| std::io::Error::other("the witness thread is gone"))?
    }
}

/// Writes each witness it is handed, durably, and says how it went; stops at the first
/// failure (the log is fail-stop then) or when the flusher is gone.
fn witness_loop(
    mut witness: Witness,
    requests: &std_mpsc::Receiver<Head>,
    done: &std_mpsc::SyncSender<std::io::Result<()>>,
) {
    while let Ok(head) = requests.recv() {
        let written = witness.write(&head);
        if let Err(e) = &written {
            tracing::error!(path = %witness.path().display(), error = %e, "cannot write the witness");
        }
        let failed = written.is_err();
        if done.send(written).is_err() || failed {
            return;
        }
    }
}

fn flusher_loop(
    shared: Arc<Shared>,
    mut sync: Syncer,
    applied: std_mpsc::Receiver<Applied>,
    mut witness: WitnessLink,
    checkpoints: &std_mpsc::SyncSender<Position>,
) {
    // Size of the previous commit, in appends: under steady concurrency the callers answered
    // by one commit come back for the next. If only a few have when a commit could start,
    // wait briefly for the rest rather than pay a whole sync for a few (as PostgreSQL's
    // commit_delay does). A lone writer (commits of one) never waits.
    let mut last_size = 0usize;
    while let Ok(first) = applied.recv() {
        let mut up_to = first.up_to;
        let mut hash = first.hash;
        let mut size = first.replies.len();
        let mut groups = vec![first];
        let deadline = Instant::now() + MAX_COMMIT_DELAY;
        loop {
            let next = if size * 2 < last_size {
                applied
                    .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                    .ok()
            } else {
                applied.try_recv().ok()
            };
            let Some(group) = next else { break };
            if group.up_to >= up_to {
                up_to = group.up_to;
                hash = group.hash;
            }
            size += group.replies.len();
            groups.push(group);
        }
        last_size = size;
        shared
            .stats
            .appends
            .fetch_add(size as u64, Ordering::Relaxed);
        let pending = Durable {
            position: up_to,
            hash,
        };
        // The witness of this commit is written while the data is synced: it says the
        // last acknowledged head is durable and this commit may reach `up_to`, so a
        // crash at any moment leaves a witness the log satisfies (see `witness.rs`).
        let outcome = match shared.failure() {
            Some(e) => Err(e),
            None => witness
                .start(pending)
                .and_then(|()| {
                    let synced = sync.commit(&shared.tree, &shared.stats);
                    let witnessed = witness.finish();
                    synced.and(witnessed)
                })
                .map_err(|e| shared.fail(format!("durable commit failed: {e}"))),
        };
        if outcome.is_ok() {
            witness.durable = pending;
            shared.durable.fetch_max(up_to, Ordering::AcqRel);
            eventlog::advance_head(&shared.head_tx, up_to);
            // The checkpoint thread decides whether one is due; if it is busy, a later
            // commit tells it again.
            let _ = checkpoints.try_send(up_to);
        }
        for group in groups {
            for (reply, result) in group.replies {
                let answer = match (&outcome, result) {
                    (Err(e), Ok(_)) => Err(Error::Storage(e.to_string())),
                    (_, result) => result,
                };
                // A caller that stopped waiting is no reason to stop.
                let _ = reply.send(answer);
            }
        }
    }
    // Closed: nothing is pending any more.
    witness.settle();
}

/// Makes what sled has applied durable: sled's flush writes its buffers out (with
/// `sync_file_range`, which does not flush the disk cache), then fdatasync of the data file
/// and of every blob file sled wrote since the last commit (sled never syncs blobs).
pub(crate) struct Syncer {
    data_file: File,
    blobs_dir: PathBuf,
    synced_blobs: HashSet<OsString>,
}

impl Syncer {
    pub(crate) fn new(path: &Path) -> Result<Self> {
        let data_file = File::open(path.join("db")).map_err(storage)?;
        let blobs_dir = path.join("blobs");
        // Make the directory entries of a new log durable once.
        sync_dir(path).map_err(storage)?;
        sync_dir(&blobs_dir).map_err(storage)?;
        let synced_blobs = blob_names(&blobs_dir).map_err(storage)?;
        Ok(Self {
            data_file,
            blobs_dir,
            synced_blobs,
        })
    }

    pub(crate) fn commit(&mut self, tree: &sled::Db, stats: &Stats) -> std::io::Result<()> {
        let start = Instant::now();
        tree.flush().map_err(std::io::Error::other)?;
        let flushed = Instant::now();
        let names = blob_names(&self.blobs_dir)?;
        let mut new_blob = false;
        for name in names.difference(&self.synced_blobs) {
            match File::open(self.blobs_dir.join(name)) {
                Ok(file) => {
                    file.sync_data()?;
                    new_blob = true;
                }
                // Garbage-collected by sled in the meantime: nothing to keep.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if new_blob {
            sync_dir(&self.blobs_dir)?;
        }
        self.synced_blobs = names;
        self.data_file.sync_data()?;
        stats.record(flushed - start, flushed.elapsed());
        Ok(())
    }
}

fn blob_names(dir: &Path) -> std::io::Result<HashSet<OsString>> {
    std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect()
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What the commits have cost so far: counters the flusher keeps.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    commits: AtomicU64,
    appends: AtomicU64,
    sled_flush_nanos: AtomicU64,
    fdatasync_nanos: AtomicU64,
}

impl Stats {
    fn record(&self, sled_flush: Duration, fdatasync: Duration) {
        // For whoever runs the service (`/metrics`): the two halves of a durable commit.
        metrics::histogram!("complaints_log_commit_seconds", "backend" => "sled")
            .record(sled_flush + fdatasync);
        metrics::histogram!("complaints_log_sled_flush_seconds").record(sled_flush);
        metrics::histogram!("complaints_log_fdatasync_seconds").record(fdatasync);
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.sled_flush_nanos
            .fetch_add(nanos(sled_flush), Ordering::Relaxed);
        self.fdatasync_nanos
            .fetch_add(nanos(fdatasync), Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CommitStats {
        CommitStats {
            commits: self.commits.load(Ordering::Relaxed),
            appends: self.appends.load(Ordering::Relaxed),
            sled_flush: Duration::from_nanos(self.sled_flush_nanos.load(Ordering::Relaxed)),
            fdatasync: Duration::from_nanos(self.fdatasync_nanos.load(Ordering::Relaxed)),
        }
    }
}

/// Totals of the durable commits since the log was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Durable commits (each one sled flush and one fdatasync).
    pub commits: u64,
    /// Appends answered by those commits (including refused and deduplicated ones).
    pub appends: u64,
    /// Time in sled's flush (its write-out with `sync_file_range`).
    pub sled_flush: Duration,
    /// Time in the fdatasync calls that follow it (data file and new blobs).
    pub fdatasync: Duration,
}

impl CommitStats {
    /// The counts and times since `earlier`.
    pub fn since(&self, earlier: &CommitStats) -> CommitStats {
        CommitStats {
            commits: self.commits - earlier.commits,
            appends: self.appends - earlier.appends,
            sled_flush: self.sled_flush.saturating_sub(earlier.sled_flush),
            fdatasync: self.fdatasync.saturating_sub(earlier.fdatasync),
        }
    }
}
