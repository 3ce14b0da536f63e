//! The witness of the durable head: a small file beside sled's own files that says how
//! far the log was acknowledged, so that sled's recovery cannot cut acknowledged records
//! off unnoticed (a damaged message in sled's log makes it drop every later one).
//!
//! Why our own file and not sled: the witness must survive exactly the damage that makes
//! sled's recovery stop early, so it cannot live in sled's log. It is 2 slots of 128 bytes;
//! each write goes to the slot the last one did not use and is synced, and each slot
//! carries a sequence number and a CRC-32. A crash in the middle of a write leaves a torn
//! slot whose CRC fails, and the other slot, the previous witness, is used: the witness is
//! always the old or the new head, never a torn one.
//!
//! A slot says `durable`: every record up to there was acknowledged (and the hash of the
//! record there), and `pending`: the group being committed when it was written may reach
//! that far. The flusher writes (last acknowledged head, new head) while it syncs the
//! group, in parallel with sled's own sync, and acknowledges after both; a settled witness
//! (head, head) is written at open and at close. At open, a log that ends before `durable`
//! or differs from it is damaged; one that ends between `durable` and `pending` lost only
//! a group that was never acknowledged (a crash's torn tail); one that goes past
//! `pending` holds appends sled wrote out before a crash that were never acknowledged.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use eventlog::{ChainHash, Position};

/// The witness file's name, in the log's directory.
pub const FILE: &str = "witness";

const MAGIC: &[u8; 8] = b"CWWITNS1";
const SLOT: usize = 128;
/// Bytes of a slot covered by its CRC: magic, sequence, two positions and two hashes.
const BODY: usize = 8 + 8 + 8 + 32 + 8 + 32;

/// What one slot of the witness says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Every record up to here was acknowledged.
    pub durable: Position,
    /// The hash of the record at `durable` (zero at 0).
    pub durable_hash: ChainHash,
    /// The group being committed when this was written reaches here (>= `durable`).
    pub pending: Position,
    /// The hash of the record at `pending`.
    pub pending_hash: ChainHash,
}

impl Head {
    /// Everything up to `position` acknowledged, nothing pending.
    pub fn settled(position: Position, hash: ChainHash) -> Self {
        Self {
            durable: position,
            durable_hash: hash,
            pending: position,
            pending_hash: hash,
        }
    }
}

/// The witness file, open for writing.
pub struct Witness {
    file: File,
    path: PathBuf,
    seq: u64,
}

/// What reading a witness found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// No witness file.
    Missing,
    /// A witness, from its newest whole slot.
    Found(Head),
    /// A file whose slots are all damaged (or not a witness).
    Damaged(String),
}

fn encode(seq: u64, head: &Head) -> [u8; SLOT] {
    let mut slot = [0u8; SLOT];
    slot[..8].copy_from_slice(MAGIC);
    slot[8..16].copy_from_slice(&seq.to_le_bytes());
    slot[16..24].copy_from_slice(&head.durable.to_le_bytes());
    slot[24..56].copy_from_slice(&head.durable_hash.0);
    slot[56..64].copy_from_slice(&head.pending.to_le_bytes());
    slot[64..96].copy_from_slice(&head.pending_hash.0);
    let crc = crc32fast::hash(&slot[..BODY]);
    slot[BODY..BODY + 4].copy_from_slice(&crc.to_le_bytes());
    slot
}

fn decode(slot: &[u8]) -> Option<(u64, Head)> {
    if slot.len() < BODY + 4 || &slot[..8] != MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes(slot[BODY..BODY + 4].try_into().ok()?);
    if crc != crc32fast::hash(&slot[..BODY]) {
        return None;
    }
    let u64_at = |at: usize| slot[at..at + 8].try_into().ok().map(u64::from_le_bytes);
    let hash_at = |at: usize| slot[at..at + 32].try_into().ok().map(ChainHash);
    let head = Head {
        durable: u64_at(16)?,
        durable_hash: hash_at(24)?,
        pending: u64_at(56)?,
        pending_hash: hash_at(64)?,
    };
    (head.pending >= head.durable).then_some((u64_at(8)?, head))
}

/// Reads the witness in `dir`.
pub fn read(dir: &Path) -> std::io::Result<Read> {
    let path = dir.join(FILE);
    let mut bytes = Vec::with_capacity(2 * SLOT);
    match File::open(&path) {
        Ok(mut file) => {
            file.read_to_end(&mut bytes)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Read::Missing),
        Err(e) => return Err(e),
    }
    let newest = bytes
        .chunks(SLOT)
        .take(2)
        .filter_map(decode)
        .max_by_key(|(seq, _)| *seq);
    Ok(match newest {
        Some((_, head)) => Read::Found(head),
        None => Read::Damaged(format!(
            "{}: no whole slot in {} bytes",
            path.display(),
            bytes.len()
        )),
    })
}

impl Witness {
    /// Opens (or creates) the witness in `dir` and writes `head` into it, durably; the
    /// directory is synced when the file is new.
    pub fn create(dir: &Path, head: &Head) -> std::io::Result<Self> {
        let path = dir.join(FILE);
        let seq = match read(dir)? {
            Read::Found(_) => newest_seq(&path)?,
            Read::Missing | Read::Damaged(_) => 0,
        };
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let mut witness = Self { file, path, seq };
        witness.write(head)?;
        if !existed {
            File::open(dir)?.sync_all()?;
        }
        Ok(witness)
    }

    /// Writes `head` into the slot the last write did not use, and syncs it.
    pub fn write(&mut self, head: &Head) -> std::io::Result<()> {
        self.seq += 1;
        let slot = encode(self.seq, head);
        self.file
            .seek(SeekFrom::Start((self.seq % 2) * SLOT as u64))?;
        self.file.write_all(&slot)?;
        self.file.sync_data()
    }

    /// The witness file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn newest_seq(path: &Path) -> std::io::Result<u64> {
    let bytes = std::fs::read(path)?;
    Ok(bytes
        .chunks(SLOT)
        .take(2)
        .filter_map(decode)
        .map(|(seq, _)| seq)
        .max()
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(d: u64, p: u64) -> Head {
        Head {
            durable: d,
            durable_hash: ChainHash([d as u8; 32]),
            pending: p,
            pending_hash: ChainHash([p as u8; 32]),
        }
    }

    #[test]
    fn the_newest_whole_slot_wins_and_a_torn_one_falls_back_to_the_other() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), Read::Missing);
        let mut w = Witness::create(dir.path(), &head(0, 0)).unwrap();
        w.write(&head(3, 5)).unwrap();
        w.write(&head(5, 9)).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Read::Found(head(5, 9)));
        // Tear the newest slot (sequence 3 is in slot 1): the previous one is used.
        let path = dir.path().join(FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[SLOT + 20] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Read::Found(head(3, 5)));
        // Both torn: damaged, never a guess.
        bytes[20] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(read(dir.path()).unwrap(), Read::Damaged(_)));
        // Reopening continues after the newest sequence, so the next write wins.
        std::fs::write(&path, &bytes[..SLOT]).unwrap();
        let mut w = Witness::create(dir.path(), &head(1, 1)).unwrap();
        w.write(&head(7, 7)).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Read::Found(head(7, 7)));
    }
}
