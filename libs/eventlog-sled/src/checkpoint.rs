//! The index checkpoint: the indexes up to a durable position, in a file beside sled's
//! own (`index-checkpoint`), so that an open loads them instead of reading and checking
//! every record of the history (and memory holds them in sorted arrays, see `index.rs`).
//!
//! The file is derived data and is never trusted over the log:
//! - it is whole (BLAKE3 of its content at its end) and of this format, or it is set aside;
//! - it is **anchored**: it names the position it covers and the chain hash of the record
//!   there, which commits to every record before it. An open uses it only if the log
//!   holds that record with that hash; otherwise (another log, history cut or changed) the
//!   open reads and checks every record as before;
//! - the records after it are read and checked at open exactly as a full open checks them;
//! - the records up to it are checked again in the background after the open (the hash
//!   chain and positions, against the anchor: `lib.rs`, the history check), and a log
//!   whose history fails that check is refused from then on, at the position found.
//!
//! Written at a clean close and every `index_checkpoint_every` durable positions, to a
//! temporary file that is synced and renamed over the old one: a crash leaves the old
//! checkpoint or the new one. Hand-written (a flat little-endian layout): the arrays are
//! plain integers and the load must be one read and a pass, with nothing to decode.
//!
//! Layout: magic (8), the tail it covers (position u64, chain hash 32, `recorded_at` i64),
//! counts (ids, streams, name bytes, stream positions: u64 each), then the ids (16 bytes
//! each, big-endian), their positions, the names, the name ends, the stream starts and the
//! stream positions (u64 each), then the BLAKE3 hash of everything before it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use eventlog::{ChainHash, Position, Tail, Timestamp};

use crate::index::Base;

/// The checkpoint's name, in the log's directory.
pub const FILE: &str = "index-checkpoint";
const MAGIC: &[u8; 8] = b"CWIDXCK1";
const HEADER: usize = 8 + 8 + 32 + 8 + 4 * 8;

pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Writes `base`, which covers the log up to `tail`, as the checkpoint in `dir`, durably.
pub fn write(dir: &Path, base: &Base, tail: &Tail) -> std::io::Result<u64> {
    let temporary = dir.join(format!("{FILE}.tmp"));
    let file = File::create(&temporary)?;
    let mut out = Hashing {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: blake3::Hasher::new(),
        written: 0,
    };
    out.write_all(MAGIC)?;
    out.write_all(&tail.position.to_le_bytes())?;
    out.write_all(&tail.hash.0)?;
    out.write_all(&tail.recorded_at.as_micros().to_le_bytes())?;
    for count in [
        base.ids.len(),
        base.name_ends.len(),
        base.names.len(),
        base.positions.len(),
    ] {
        out.write_all(&(count as u64).to_le_bytes())?;
    }
    for id in &base.ids {
        out.write_all(&id.to_be_bytes())?;
    }
    write_u64s(&mut out, &base.id_positions)?;
    out.write_all(base.names.as_bytes())?;
    write_u64s(&mut out, &base.name_ends)?;
    write_u64s(&mut out, &base.starts)?;
    write_u64s(&mut out, &base.positions)?;
    let hash = out.hasher.finalize();
    let written = out.written + 32;
    let mut inner = out.inner;
    inner.write_all(hash.as_bytes())?;
    let file = inner
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)?;
    file.sync_data()?;
    drop(file);
    std::fs::rename(&temporary, path(dir))?;
    File::open(dir)?.sync_all()?;
    Ok(written)
}

fn write_u64s(out: &mut impl Write, values: &[u64]) -> std::io::Result<()> {
    // In blocks: one write call per value would dominate the time.
    let mut block = Vec::with_capacity(8 * 8192);
    for chunk in values.chunks(8192) {
        block.clear();
        for value in chunk {
            block.extend_from_slice(&value.to_le_bytes());
        }
        out.write_all(&block)?;
    }
    Ok(())
}

struct Hashing<W> {
    inner: W,
    hasher: blake3::Hasher,
    written: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What reading the checkpoint found.
pub enum Read {
    Missing,
    /// A whole checkpoint of this format: the base and the tail it covers.
    Found(Base, Tail),
    /// Not usable, and why.
    Unusable(String),
}

/// Reads the checkpoint in `dir`, checking that it is whole and consistent (never
/// trusting a count or an offset it holds).
pub fn read(dir: &Path) -> Read {
    let bytes = match std::fs::read(path(dir)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Read::Missing,
        Err(e) => return Read::Unusable(format!("cannot read it: {e}")),
    };
    match parse(&bytes) {
        Ok((base, tail)) => Read::Found(base, tail),
        Err(why) => Read::Unusable(why),
    }
}

fn parse(bytes: &[u8]) -> Result<(Base, Tail), String> {
    if bytes.len() < HEADER + 32 || &bytes[..8] != MAGIC {
        return Err("not an index checkpoint of this format".into());
    }
    let (content, hash) = bytes.split_at(bytes.len() - 32);
    if blake3::hash(content).as_bytes() != hash {
        return Err("its content does not match its hash (damaged or cut short)".into());
    }
    let mut at = Cursor {
        bytes: content,
        at: 8,
    };
    let position = at.u64()?;
    let chain = ChainHash(at.take(32)?.try_into().map_err(|_| "short header")?);
    let recorded_at = Timestamp::from_micros(at.u64()? as i64);
    let tail = Tail {
        position,
        hash: chain,
        recorded_at,
    };
    let [ids, streams, name_bytes, positions] = [at.u64()?, at.u64()?, at.u64()?, at.u64()?];
    let size = |count: u64, each: u64| {
        count
            .checked_mul(each)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or("a count is too large")
    };
    let expected = [
        size(ids, 16)?,
        size(ids, 8)?,
        size(name_bytes, 1)?,
        size(streams, 8)?,
        size(streams + 1, 8)?,
        size(positions, 8)?,
    ]
    .iter()
    .try_fold(HEADER, |sum, n| sum.checked_add(*n))
    .ok_or("the counts are too large")?;
    if expected != content.len() {
        return Err(format!(
            "its counts need {expected} bytes, it holds {}",
            content.len()
        ));
    }
    let base = Base {
        ids: at
            .take(size(ids, 16)?)?
            .chunks_exact(16)
            .map(|b| u128::from_be_bytes(b.try_into().unwrap_or_default()))
            .collect(),
        id_positions: at.u64s(ids)?,
        names: String::from_utf8(at.take(size(name_bytes, 1)?)?.to_vec())
            .map_err(|_| "a stream name is not UTF-8")?,
        name_ends: at.u64s(streams)?,
        starts: at.u64s(streams + 1)?,
        positions: at.u64s(positions)?,
    };
    consistent(&base, position)?;
    Ok((base, tail))
}

/// Checks what the index code relies on: one id and one stream position per record up to
/// `last`, ids and names strictly ascending, offsets in bounds, each stream's positions
/// strictly ascending within `1..=last`.
fn consistent(base: &Base, last: Position) -> Result<(), String> {
    let records = usize::try_from(last).map_err(|_| "too many records")?;
    if base.ids.len() != records || base.positions.len() != records {
        return Err(format!(
            "it covers {last} records but holds {} ids and {} stream positions",
            base.ids.len(),
            base.positions.len()
        ));
    }
    if base.ids.windows(2).any(|w| w[0] >= w[1]) {
        return Err("its event ids are not strictly ascending".into());
    }
    if base.id_positions.iter().any(|p| *p == 0 || *p > last) {
        return Err("an event id's position is outside the records it covers".into());
    }
    let mut start = 0u64;
    let mut previous: Option<&str> = None;
    for end in &base.name_ends {
        if *end <= start
            || *end > base.names.len() as u64
            || !base.names.is_char_boundary(*end as usize)
        {
            return Err("a stream name's bounds are wrong".into());
        }
        let name = &base.names[start as usize..*end as usize];
        if previous.is_some_and(|p| p >= name) {
            return Err("its stream names are not strictly ascending".into());
        }
        previous = Some(name);
        start = *end;
    }
    if start != base.names.len() as u64 {
        return Err("bytes after the last stream name".into());
    }
    if base.starts.first() != Some(&0)
        || base.starts.last() != Some(&(base.positions.len() as u64))
        || base.starts.windows(2).any(|w| w[0] >= w[1])
    {
        return Err("a stream's bounds are wrong".into());
    }
    for w in base.starts.windows(2) {
        let positions = &base.positions[w[0] as usize..w[1] as usize];
        if positions[0] == 0
            || positions[positions.len() - 1] > last
            || positions.windows(2).any(|p| p[0] >= p[1])
        {
            return Err("a stream's positions are not ascending within the log".into());
        }
    }
    Ok(())
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).ok_or("cut short")?;
        let out = self.bytes.get(self.at..end).ok_or("cut short")?;
        self.at = end;
        Ok(out)
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| "cut short")?))
    }

    fn u64s(&mut self, count: u64) -> Result<Vec<u64>, String> {
        let n = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(8))
            .ok_or("a count is too large")?;
        Ok(self
            .take(n)?
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Index;
    use eventlog::StreamId;
    use uuid::Uuid;

    fn sample() -> (Base, Tail) {
        let mut index = Index::default();
        for i in 0..50u64 {
            let stream = StreamId::new(format!("s-{}", i % 7)).unwrap_or_else(|e| panic!("{e}"));
            index.add(&stream, Uuid::new_v4(), i + 1);
        }
        let tail = Tail {
            position: 50,
            hash: ChainHash([7; 32]),
            recorded_at: Timestamp::from_micros(1_700_000_000_000_000),
        };
        (index.merged_up_to(tail), tail)
    }

    #[test]
    fn a_written_checkpoint_reads_back_and_any_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (base, tail) = sample();
        write(dir.path(), &base, &tail).unwrap_or_else(|e| panic!("{e}"));
        let Read::Found(read_base, read_tail) = read(dir.path()) else {
            panic!("not read back");
        };
        assert!(read_base == base);
        assert_eq!(read_tail, tail);
        let bytes = std::fs::read(path(dir.path())).unwrap_or_else(|e| panic!("{e}"));
        // Every byte flipped, and every cut, is refused (never a panic, never accepted).
        for i in (0..bytes.len()).step_by(7) {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x10;
            assert!(parse(&damaged).is_err(), "flip at {i}");
        }
        for len in (0..bytes.len()).step_by(13) {
            assert!(parse(&bytes[..len]).is_err(), "cut at {len}");
        }
    }

    /// A file whose hash matches but whose content is wrong (written by a bug, or made to
    /// fit) is refused by the consistency checks, not trusted.
    #[test]
    fn a_whole_but_inconsistent_checkpoint_is_refused() {
        let (base, tail) = sample();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut cases = Vec::new();
        let mut b = base.clone();
        b.ids.swap(0, 1);
        cases.push(("ids out of order", b, tail));
        let mut b = base.clone();
        b.positions.swap(0, 1);
        cases.push(("positions out of order", b, tail));
        let mut b = base.clone();
        b.name_ends[0] = 0;
        cases.push(("empty name", b, tail));
        let mut b = base.clone();
        b.id_positions[3] = 99;
        cases.push(("position past the end", b, tail));
        cases.push((
            "fewer records than covered",
            base.clone(),
            Tail {
                position: 51,
                ..tail
            },
        ));
        for (what, b, t) in cases {
            write(dir.path(), &b, &t).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                matches!(read(dir.path()), Read::Unusable(_)),
                "{what} was accepted"
            );
        }
    }
}
