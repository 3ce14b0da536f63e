//! Snapshots of the projections, stored beside the log, so that a restart reads only the
//! events after the snapshot instead of the whole log.
//!
//! A snapshot is derived data: the log stays the truth. It is used only when it is whole
//! (a BLAKE3 checksum over the file), written by this build (a new build may compute
//! differently), and anchored in this log: the event at the snapshot's position must
//! have the id and the chain hash of its predecessor that the snapshot recorded, which
//! commits to every event before it. Otherwise the projections are rebuilt from the log.
//! Files are written whole to a temporary name, synced, then renamed over the old one.
//!
//! Layout: `CWPSNAP1`, a little-endian u32 header length, the header (postcard), the
//! sections' bytes one after the other, then the BLAKE3 hash of everything before it.

use std::io::Write;
use std::path::{Path, PathBuf};

use eventlog::{ChainHash, EventLog, Position, RecordedEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const MAGIC: &[u8; 8] = b"CWPSNAP1";
const FILE: &str = "projections.snap";

/// Where in the log a snapshot stands: the last event applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    pub position: Position,
    pub id: Uuid,
    /// The chain hash of the event before it (commits to every event before it).
    pub prev_hash: ChainHash,
}

impl Anchor {
    /// The anchor of a snapshot taken right after applying `record`.
    pub fn of(record: &RecordedEvent) -> Self {
        Self {
            position: record.position,
            id: record.id,
            prev_hash: record.prev_hash,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    /// The build that wrote it.
    build: String,
    position: Position,
    id: [u8; 16],
    prev_hash: [u8; 32],
    /// Each section's name and length.
    sections: Vec<(String, u64)>,
}

/// A snapshot read back, checked against the log.
#[derive(Debug)]
pub struct Snapshot {
    pub position: Position,
    /// The file as read (its sections are not copied out of it).
    bytes: FileBytes,
    /// Each section's name and where it lies in `bytes`.
    sections: Vec<(String, std::ops::Range<usize>)>,
}

impl Snapshot {
    /// A section's bytes.
    pub fn section(&self, name: &str) -> Option<&[u8]> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, range)| self.bytes.get(range.clone()))
    }
}

/// A file read whole into memory of its own, outside the heap. A snapshot is hundreds of
/// MiB at ten years, read at start and dropped once the projections are restored; the
/// allocator keeps memory freed to it for a while, and the process stood 340 MiB above its
/// steady resident size when ready (docs/PERFORMANCE.md). A mapping of its own goes back
/// to the system when dropped. Anonymous memory, not a mapping of the file: reading a
/// mapped file that changes underneath is undefined behaviour. Small files stay on the
/// heap.
#[derive(Debug)]
enum FileBytes {
    Heap(Vec<u8>),
    Mapped(memmap2::MmapMut),
}

impl FileBytes {
    /// Below this, a file is read onto the heap.
    const MAPPED_FROM: u64 = 1 << 20;

    fn read(path: &Path) -> std::io::Result<FileBytes> {
        use std::io::Read;
        let mut file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        if len < Self::MAPPED_FROM {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            return Ok(FileBytes::Heap(bytes));
        }
        let len = usize::try_from(len).map_err(std::io::Error::other)?;
        let mut mapped = memmap2::MmapMut::map_anon(len)?;
        // A file grown since is cut at the length read here, and its checksum fails.
        file.read_exact(&mut mapped)?;
        Ok(FileBytes::Mapped(mapped))
    }
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Heap(bytes) => bytes,
            FileBytes::Mapped(mapped) => mapped,
        }
    }
}

/// Why a snapshot could not be written or used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Unusable(String),
    /// A whole snapshot of this build taken at a position the log does not reach: the log
    /// lost records it once held.
    #[error("the projections' snapshot {path} was taken at position {position}, past the log's head {head}: the log lost records it held")]
    PastHead {
        path: PathBuf,
        position: Position,
        head: Position,
    },
}

/// The build a snapshot must have been written by: this crate's name and version and a
/// hash of the code the projections' state is computed with (see `build.rs`). Snapshots
/// of builds before the projections had a crate of their own say `complaints-workflow`.
fn build() -> String {
    concat!(
        env!("CARGO_PKG_NAME"),
        " ",
        env!("CARGO_PKG_VERSION"),
        " code ",
        env!("PROJECTIONS_CODE_HASH")
    )
    .to_owned()
}

/// A snapshot read and checked on its own, not yet against a log
/// ([`SnapshotStore::anchor`]).
#[derive(Debug)]
pub struct Unanchored {
    header: Header,
    bytes: FileBytes,
    sections: Vec<(String, std::ops::Range<usize>)>,
}

/// The directory holding the projections' snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    dir: PathBuf,
    /// The file's name in `dir`.
    file: String,
    /// A snapshot [`SnapshotStore::load`]ed already (checked at start), handed to the next
    /// load instead of reading and checking the file a second time.
    loaded: std::sync::Arc<std::sync::Mutex<Option<Snapshot>>>,
}

impl SnapshotStore {
    /// Snapshots in `dir` (created on first save).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::named(dir, FILE)
    }

    /// A snapshot in `dir` under another file name (the checkpoints of as-of views).
    pub(crate) fn named(dir: impl Into<PathBuf>, file: impl Into<String>) -> Self {
        Self {
            dir: dir.into(),
            file: file.into(),
            loaded: std::sync::Arc::default(),
        }
    }

    /// This store, with `snapshot` (from [`SnapshotStore::load`] on this log, which only
    /// grows) as what its next load returns.
    pub fn with_loaded(self, snapshot: Option<Snapshot>) -> Self {
        *self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = snapshot;
        self
    }

    /// The snapshot file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.file)
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
        move |source| SnapshotError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// Writes a snapshot of `sections` standing at `anchor`, durably, replacing the last.
    pub fn save(
        &self,
        anchor: &Anchor,
        sections: Vec<(String, Vec<u8>)>,
    ) -> Result<(), SnapshotError> {
        std::fs::create_dir_all(&self.dir).map_err(Self::io(&self.dir))?;
        let header = Header {
            build: build(),
            position: anchor.position,
            id: *anchor.id.as_bytes(),
            prev_hash: anchor.prev_hash.0,
            sections: sections
                .iter()
                .map(|(n, b)| (n.clone(), b.len() as u64))
                .collect(),
        };
        let header = postcard::to_stdvec(&header)
            .map_err(|e| SnapshotError::Unusable(format!("cannot encode the header: {e}")))?;
        // Written beside the snapshot and renamed over it once synced (then the directory
        // synced): a crash leaves the old snapshot or the new one, never a torn one.
        let path = self.path();
        let mut file = std::io::BufWriter::with_capacity(
            1 << 20,
            atomic_write_file::AtomicWriteFile::open(&path).map_err(Self::io(&path))?,
        );
        let mut hasher = blake3::Hasher::new();
        let mut put = |bytes: &[u8]| -> Result<(), SnapshotError> {
            hasher.update(bytes);
            file.write_all(bytes).map_err(Self::io(&path))
        };
        put(MAGIC)?;
        put(&(header.len() as u32).to_le_bytes())?;
        put(&header)?;
        for (_, bytes) in &sections {
            put(bytes)?;
        }
        let sum = *hasher.finalize().as_bytes();
        file.write_all(&sum).map_err(Self::io(&path))?;
        file.into_inner()
            .map_err(|e| Self::io(&path)(e.into_error()))?
            .commit()
            .map_err(Self::io(&path))?;
        Ok(())
    }

    /// The last snapshot, if there is one that is whole, of this build, and anchored in
    /// `log`; `Ok(None)` if there is none; an error saying why one cannot be used.
    pub async fn load(&self, log: &dyn EventLog) -> Result<Option<Snapshot>, SnapshotError> {
        let loaded = self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(snapshot) = loaded {
            return Ok(Some(snapshot));
        }
        let read = self.read()?;
        self.anchor(read, log).await
    }

    /// The first half of [`SnapshotStore::load`]: reads the last snapshot and checks it on
    /// its own (whole, of this build); `Ok(None)` if there is none. It blocks (the file's
    /// read and hash) and needs no log: a start runs it beside the log's open.
    pub fn read(&self) -> Result<Option<Unanchored>, SnapshotError> {
        let path = self.path();
        let bytes = match FileBytes::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Self::io(&path)(e)),
        };
        self.whole(&bytes)?;
        self.parse(bytes).map(Some)
    }

    fn unusable(&self, why: impl std::fmt::Display) -> SnapshotError {
        SnapshotError::Unusable(format!("{}: {why}", self.path().display()))
    }

    /// Checks the file's checksum (its last 32 bytes, over everything before them).
    fn whole(&self, bytes: &[u8]) -> Result<(), SnapshotError> {
        if bytes.len() < MAGIC.len() + 4 + 32 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(self.unusable("not a snapshot file"));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if blake3::hash(body).as_bytes() != sum {
            return Err(self.unusable("checksum mismatch (torn or altered)"));
        }
        Ok(())
    }

    /// The header of a file starting with `start` (at least the magic and the header's
    /// length; `Ok(None)` when more is needed: the header's end), checked to be of this
    /// build; and where it ends.
    fn header(&self, start: &[u8]) -> Result<Option<(Header, usize)>, SnapshotError> {
        if start.len() < MAGIC.len() + 4 || &start[..MAGIC.len()] != MAGIC {
            return Err(self.unusable("not a snapshot file"));
        }
        let mut len = [0u8; 4];
        len.copy_from_slice(&start[8..12]);
        let header_end = 12usize.saturating_add(u32::from_le_bytes(len) as usize);
        let Some(bytes) = start.get(12..header_end) else {
            return Ok(None);
        };
        let header: Header =
            postcard::from_bytes(bytes).map_err(|e| self.unusable(format!("header: {e}")))?;
        if header.build != build() {
            return Err(self.unusable(format!("written by {}, this is {}", header.build, build())));
        }
        Ok(Some((header, header_end)))
    }

    /// The snapshot in `bytes` (its checksum not checked here): its header, of this build,
    /// and its sections, inside the file.
    fn parse(&self, bytes: FileBytes) -> Result<Unanchored, SnapshotError> {
        let body_len = bytes.len().saturating_sub(32);
        let (header, header_end) = self
            .header(&bytes[..body_len])?
            .ok_or_else(|| self.unusable("header past the end"))?;
        let mut sections = Vec::with_capacity(header.sections.len());
        let mut at = header_end;
        for (name, len) in &header.sections {
            let end = at.saturating_add(*len as usize);
            if end > body_len {
                return Err(self.unusable(format!("section {name} past the end")));
            }
            sections.push((name.clone(), at..end));
            at = end;
        }
        Ok(Unanchored {
            header,
            bytes,
            sections,
        })
    }

    /// The second half of [`SnapshotStore::load`]: a snapshot [`SnapshotStore::read`]
    /// gave, checked against `log` (not past its head, taken at an event it holds).
    pub async fn anchor(
        &self,
        read: Option<Unanchored>,
        log: &dyn EventLog,
    ) -> Result<Option<Snapshot>, SnapshotError> {
        let Some(Unanchored {
            header,
            bytes,
            sections,
        }) = read
        else {
            return Ok(None);
        };
        self.anchored(&header, log).await?;
        Ok(Some(Snapshot {
            position: header.position,
            bytes,
            sections,
        }))
    }

    /// Checks that the snapshot of `header` stands in `log`: not past its head, taken at an
    /// event it holds.
    async fn anchored(&self, header: &Header, log: &dyn EventLog) -> Result<(), SnapshotError> {
        let head = log
            .head()
            .await
            .map_err(|e| self.unusable(format!("cannot read the log's head: {e}")))?;
        if header.position > head {
            return Err(SnapshotError::PastHead {
                path: self.path(),
                position: header.position,
                head,
            });
        }
        let record = log
            .read_all(header.position, eventlog::Direction::Forward, 1)
            .await
            .map_err(|e| {
                self.unusable(format!("cannot read the log at {}: {e}", header.position))
            })?;
        let anchored = record.first().is_some_and(|r| {
            r.position == header.position
                && r.id.as_bytes() == &header.id
                && r.prev_hash.0 == header.prev_hash
        });
        if !anchored {
            return Err(self.unusable(format!(
                "the log does not hold the event the snapshot was taken at (position {})",
                header.position
            )));
        }
        Ok(())
    }

    /// From the file's header alone (its first bytes, not the whole file), the position of
    /// the snapshot when it is of this build and anchored in `log`; `Ok(None)` if there is
    /// none. Its checksum is not checked: [`SnapshotStore::read_beside`] does that.
    pub async fn peek(&self, log: &dyn EventLog) -> Result<Option<Position>, SnapshotError> {
        use std::io::Read;
        let path = self.path();
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Self::io(&path)(e)),
        };
        // Headers are small (a name, a position, two hashes, a few section names).
        let mut start = Vec::with_capacity(4096);
        file.take(64 << 10)
            .read_to_end(&mut start)
            .map_err(Self::io(&path))?;
        let (header, _) = self
            .header(&start)?
            .ok_or_else(|| self.unusable("header past the end"))?;
        self.anchored(&header, log).await?;
        Ok(Some(header.position))
    }

    /// Reads the snapshot [`SnapshotStore::peek`] found at `position` and gives it to `use_it`
    /// while another thread checks its checksum; `use_it`'s result only when the file is
    /// whole and still the one taken at `position` (else the caller undoes what `use_it`
    /// did). It blocks: the read, and `use_it` beside the hash.
    pub fn read_beside<R>(
        &self,
        position: Position,
        use_it: impl FnOnce(&Snapshot) -> R,
    ) -> Result<R, SnapshotError> {
        let path = self.path();
        let bytes = FileBytes::read(&path).map_err(Self::io(&path))?;
        let Unanchored {
            header,
            bytes,
            sections,
        } = self.parse(bytes)?;
        if header.position != position {
            return Err(self.unusable(format!(
                "now taken at position {}, not {position}",
                header.position
            )));
        }
        let snapshot = Snapshot {
            position,
            bytes,
            sections,
        };
        std::thread::scope(|scope| {
            let whole = scope.spawn(|| self.whole(&snapshot.bytes));
            let used = use_it(&snapshot);
            match whole.join() {
                Ok(whole) => whole.map(|()| used),
                Err(_) => Err(self.unusable("the checksum's check failed")),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot past [`FileBytes::MAPPED_FROM`] reads back through its own mapping, and
    /// one altered on disk is still refused.
    #[test]
    fn a_large_snapshot_reads_back_outside_the_heap_and_its_checksum_still_holds() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(dir.path());
        let big: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
        let anchor = Anchor {
            position: 7,
            id: Uuid::from_u128(7),
            prev_hash: ChainHash([3; 32]),
        };
        store
            .save(
                &anchor,
                vec![("small".into(), vec![1, 2, 3]), ("big".into(), big.clone())],
            )
            .unwrap();
        let read = store.read().unwrap().unwrap();
        assert!(matches!(read.bytes, FileBytes::Mapped(_)));
        let snapshot = Snapshot {
            position: read.header.position,
            bytes: read.bytes,
            sections: read.sections,
        };
        assert_eq!(snapshot.section("big"), Some(&big[..]));
        assert_eq!(snapshot.section("small"), Some(&[1, 2, 3][..]));

        let mut on_disk = std::fs::read(store.path()).unwrap();
        let middle = on_disk.len() / 2;
        on_disk[middle] ^= 1;
        std::fs::write(store.path(), &on_disk).unwrap();
        let refused = store.read().unwrap_err().to_string();
        assert!(refused.contains("checksum mismatch"), "{refused}");
    }
}
