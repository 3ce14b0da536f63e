//! The index checkpoint: the indexes up to a durable position (event id -> position,
//! stream -> positions), in a file beside sled's own (`index-checkpoint`), so that an open
//! loads them instead of reading and checking every record of the history. The file is
//! also the **base** of the live index (`index.rs`): it is read in place, a page at a time,
//! and memory holds only a few bytes per page of it (the first key of each page and each
//! page's checksum), under half a byte per event instead of 40. Its pages are read through
//! the operating system's cache, which a busy system keeps and a short one gives back.
//!
//! The file is derived data and is never trusted over the log:
//! - every page has a CRC-32 in a table at the end, and the table and the footer are
//!   hashed (BLAKE3) into the footer: an open reads every page once and checks it, and
//!   every later read of a page checks that page again, so a page damaged after the open
//!   is refused (with the page named), never served;
//! - it is checked for consistency at the open (ids and names strictly ascending, each
//!   stream's positions ascending within the log, one id and one stream position per
//!   record): a parse never trusts a count or an offset;
//! - it is **anchored**: it names the position it covers and the chain hash of the record
//!   there, which commits to every record before it. An open uses it only if the log
//!   holds that record with that hash; otherwise (another log, history cut or changed) the
//!   open reads and checks every record as before;
//! - the records after it are read and checked at open exactly as a full open checks them;
//! - the records up to it are checked again in the background after the open (the hash
//!   chain and positions, against the anchor: `lib.rs`, the history check), and a log
//!   whose history fails that check is refused from then on, at the position found.
//!
//! Written at a clean close and every `index_checkpoint_every` durable positions, by
//! merging the old file with the events after it into a temporary file that is synced and
//! renamed over the old one: a crash leaves the old checkpoint or the new one. The live
//! index keeps reading the old file (its open handle) until it moves to the new one.
//!
//! Hand-written, since no maintained crate offers a sorted, paged, checksummed table that
//! is read in place without `unsafe` (a memory map): the layout is flat little-endian
//! pages of 4 KiB, in this order:
//! - the ids: 170 entries a page, each the id (16 bytes, big-endian, ascending) and its
//!   position (u64);
//! - the streams, ascending by name: records of the name's length (u16), the index of its
//!   first position in the positions section (u64), its count (u64) and the name; a
//!   record never spans two pages, and a length of 0 ends a page's records;
//! - the stream positions, stream after stream, 512 a page (u64 each);
//! - the CRC-32 of every page (u32 each), in page order;
//! - the footer: magic (8), the tail it covers (position u64, chain hash 32,
//!   `recorded_at` i64), the number of streams and of stream pages (u64 each), and the
//!   BLAKE3 hash of the CRC table and the footer before it (32).
//!
//! The number of ids and of stream positions is the tail's position (one of each per
//! record), so the id and position pages follow from it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use eventlog::types::MAX_STREAM_ID_BYTES;
use eventlog::{ChainHash, Error, Position, Result, Tail, Timestamp};
use uuid::Uuid;

/// The checkpoint's name, in the log's directory.
pub const FILE: &str = "index-checkpoint";
const MAGIC: &[u8; 8] = b"CWIDXCK2";
const PAGE: usize = 4096;
const ID_ENTRY: usize = 16 + 8;
const IDS_PER_PAGE: u64 = (PAGE / ID_ENTRY) as u64;
const POSITIONS_PER_PAGE: u64 = (PAGE / 8) as u64;
/// A stream record's fixed part: the name's length, the first position's index, the count.
const RECORD_HEAD: usize = 2 + 8 + 8;
const FOOTER: usize = 8 + 8 + 32 + 8 + 8 + 8 + 32;
/// Pages read at a time by a walk of a section.
const WALK_PAGES: u64 = 256;

pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Where a stream's positions are in the positions section, and how many there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extent {
    pub start: u64,
    pub count: u64,
}

/// The indexes up to a checkpoint position, read in place from the checkpoint file.
#[derive(Debug)]
pub(crate) struct Base {
    /// `None`: the empty base (no checkpoint yet).
    file: Option<File>,
    path: PathBuf,
    /// Records covered: also the number of ids and of stream positions.
    events: u64,
    streams: u64,
    stream_pages: u64,
    /// Every page's CRC-32, in page order.
    crcs: Vec<u32>,
    /// The first id of each id page.
    first_ids: Vec<u128>,
    /// The first stream name of each stream page, end to end: page `i`'s is
    /// `first_names[first_name_ends[i-1]..first_name_ends[i]]`.
    first_names: String,
    first_name_ends: Vec<u32>,
}

impl Default for Base {
    fn default() -> Self {
        Self {
            file: None,
            path: PathBuf::new(),
            events: 0,
            streams: 0,
            stream_pages: 0,
            crcs: Vec::new(),
            first_ids: Vec::new(),
            first_names: String::new(),
            first_name_ends: Vec::new(),
        }
    }
}

fn pages_for(count: u64, per_page: u64) -> u64 {
    count.div_ceil(per_page)
}

impl Base {
    pub fn streams(&self) -> u64 {
        self.streams
    }

    fn id_pages(&self) -> u64 {
        pages_for(self.events, IDS_PER_PAGE)
    }

    /// What this base holds in memory, in bytes (its pages stay in the file).
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        self.crcs.capacity() * 4
            + self.first_ids.capacity() * 16
            + self.first_names.capacity()
            + self.first_name_ends.capacity() * 4
    }

    fn first_name(&self, page: usize) -> &str {
        let start = if page == 0 {
            0
        } else {
            self.first_name_ends[page - 1] as usize
        };
        &self.first_names[start..self.first_name_ends[page] as usize]
    }

    fn damaged(&self, page: u64, why: &str) -> Error {
        Error::Storage(format!(
            "the index checkpoint {} is damaged at page {page} ({why}): the log itself is not; \
             a restart sets the checkpoint aside and rebuilds the index from the log",
            self.path.display()
        ))
    }

    /// `count` pages from `page` (of the whole file), each checked against its CRC.
    fn pages(&self, page: u64, count: u64) -> Result<Vec<u8>> {
        let Some(file) = &self.file else {
            return Err(self.damaged(page, "the empty checkpoint has no pages"));
        };
        let end = page.saturating_add(count);
        if end > self.crcs.len() as u64 {
            return Err(self.damaged(page, "past the last page"));
        }
        let mut bytes = vec![0; count as usize * PAGE];
        file.read_exact_at(&mut bytes, page * PAGE as u64)
            .map_err(|e| self.damaged(page, &format!("cannot read it: {e}")))?;
        for (i, content) in bytes.chunks_exact(PAGE).enumerate() {
            let at = page + i as u64;
            if crc32fast::hash(content) != self.crcs[at as usize] {
                return Err(self.damaged(at, "its checksum does not match"));
            }
        }
        Ok(bytes)
    }

    /// `count` pages from `page` for a lookup of the live index: a failure is logged
    /// (the open's own reading of every page reports it as the open's).
    fn lookup(&self, page: u64, count: u64) -> Result<Vec<u8>> {
        self.pages(page, count).inspect_err(|e| {
            tracing::error!(path = %self.path.display(), page, error = %e, "the index checkpoint is damaged: restart to rebuild the index from the log");
        })
    }

    pub fn position_of(&self, id: &Uuid) -> Result<Option<Position>> {
        let id = id.as_u128();
        let page = self.first_ids.partition_point(|first| *first <= id);
        if page == 0 {
            return Ok(None);
        }
        let page = page as u64 - 1;
        let bytes = self.lookup(page, 1)?;
        let entries = (self.events - page * IDS_PER_PAGE).min(IDS_PER_PAGE) as usize;
        let entry = |i: usize| id_entry(&bytes[i * ID_ENTRY..(i + 1) * ID_ENTRY]);
        let (mut lo, mut hi) = (0, entries);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (found, position) = entry(mid);
            match found.cmp(&id) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Some(position)),
            }
        }
        Ok(None)
    }

    /// Where the positions of `stream` are, if the base holds it.
    pub fn find(&self, stream: &str) -> Result<Option<Extent>> {
        // The last page whose first name is not after `stream`.
        let (mut lo, mut hi) = (0, self.first_name_ends.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.first_name(mid) <= stream {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let page = lo;
        if page == 0 {
            return Ok(None);
        }
        let page = self.id_pages() + page as u64 - 1;
        let bytes = self.lookup(page, 1)?;
        for record in Records::new(&bytes) {
            let (name, extent) = record.map_err(|why| self.damaged(page, why))?;
            match name.cmp(stream) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return Ok(Some(extent)),
                std::cmp::Ordering::Greater => break,
            }
        }
        Ok(None)
    }

    /// The stream positions `extent.start + from .. extent.start + to`.
    pub fn positions(&self, extent: Extent, from: u64, to: u64) -> Result<Vec<Position>> {
        let (first, end) = (extent.start + from, extent.start + to.min(extent.count));
        if first >= end {
            return Ok(Vec::new());
        }
        let page = first / POSITIONS_PER_PAGE;
        let last = (end - 1) / POSITIONS_PER_PAGE;
        let section = self.id_pages() + self.stream_pages;
        let bytes = self.lookup(section + page, last - page + 1)?;
        let skip = (first - page * POSITIONS_PER_PAGE) as usize;
        Ok(bytes[skip * 8..]
            .chunks_exact(8)
            .take((end - first) as usize)
            .map(u64_at)
            .collect())
    }

    /// The ids and their positions, in order (`id_entry` reads each).
    fn ids(&self) -> Entries<'_> {
        self.entries(0, ID_ENTRY, IDS_PER_PAGE)
    }

    /// The stream positions, stream after stream.
    fn stream_positions(&self) -> Entries<'_> {
        self.entries(self.id_pages() + self.stream_pages, 8, POSITIONS_PER_PAGE)
    }

    fn entries(&self, first_page: u64, size: usize, per_page: u64) -> Entries<'_> {
        Entries {
            walk: self.walk(first_page, first_page + pages_for(self.events, per_page)),
            size,
            per_page,
            left: self.events,
            page: Vec::with_capacity(PAGE),
            at: 0,
            in_page: 0,
        }
    }

    /// Walks the pages `from..to` of the file in order, checked, `WALK_PAGES` at a time.
    fn walk(&self, from: u64, to: u64) -> Walk<'_> {
        Walk {
            base: self,
            next: from,
            end: to,
            bytes: Vec::new(),
            at: 0,
        }
    }
}

fn u64_at(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().unwrap_or_default())
}

fn id_entry(b: &[u8]) -> (u128, Position) {
    (
        u128::from_be_bytes(b[..16].try_into().unwrap_or_default()),
        u64_at(&b[16..24]),
    )
}

/// The pages of a part of the file, in order.
struct Walk<'a> {
    base: &'a Base,
    next: u64,
    end: u64,
    bytes: Vec<u8>,
    at: usize,
}

impl Walk<'_> {
    /// The next page, checked, and its number.
    fn page(&mut self) -> Result<Option<(u64, &[u8])>> {
        if self.at >= self.bytes.len() {
            if self.next >= self.end {
                return Ok(None);
            }
            let count = (self.end - self.next).min(WALK_PAGES);
            self.bytes = self.base.pages(self.next, count)?;
            self.next += count;
            self.at = 0;
        }
        let number = self.next - ((self.bytes.len() - self.at) / PAGE) as u64;
        let page = &self.bytes[self.at..self.at + PAGE];
        self.at += PAGE;
        Ok(Some((number, page)))
    }
}

/// The fixed-size entries of a section (the ids, or the stream positions), in order, each
/// page checked.
struct Entries<'a> {
    walk: Walk<'a>,
    size: usize,
    per_page: u64,
    /// Entries not yet read.
    left: u64,
    /// The page being read, and where in it.
    page: Vec<u8>,
    at: usize,
    in_page: u64,
}

impl Entries<'_> {
    /// The next entry, and whether it is the first of its page.
    fn next(&mut self) -> Result<Option<(bool, &[u8])>> {
        if self.left == 0 {
            return Ok(None);
        }
        let first = self.in_page == 0;
        if first {
            let Some((_, page)) = self.walk.page()? else {
                return Err(self
                    .walk
                    .base
                    .damaged(self.walk.end, "fewer pages than entries"));
            };
            self.page.clear();
            self.page.extend_from_slice(page);
            self.at = 0;
        }
        let entry = &self.page[self.at..self.at + self.size];
        self.at += self.size;
        self.left -= 1;
        self.in_page = (self.in_page + 1) % self.per_page;
        Ok(Some((first, entry)))
    }
}

/// The stream records of one page.
struct Records<'a> {
    page: &'a [u8],
    at: usize,
}

impl<'a> Records<'a> {
    fn new(page: &'a [u8]) -> Self {
        Self { page, at: 0 }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = std::result::Result<(&'a str, Extent), &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at + RECORD_HEAD > self.page.len() {
            return None;
        }
        let head = &self.page[self.at..self.at + RECORD_HEAD];
        let len = usize::from(u16::from_le_bytes([head[0], head[1]]));
        if len == 0 {
            return None;
        }
        let end = self.at + RECORD_HEAD + len;
        if len > MAX_STREAM_ID_BYTES || end > self.page.len() {
            self.at = self.page.len();
            return Some(Err("a stream record runs past its page"));
        }
        let extent = Extent {
            start: u64_at(&head[2..10]),
            count: u64_at(&head[10..18]),
        };
        let name = std::str::from_utf8(&self.page[self.at + RECORD_HEAD..end]);
        self.at = end;
        Some(
            name.map(|name| (name, extent))
                .map_err(|_| "a stream name is not UTF-8"),
        )
    }
}

/// The recent layer's events up to a position, to be merged with a base into a new one.
#[derive(Default)]
pub(crate) struct Layer {
    pub ids: Vec<(u128, Position)>,
    /// Name, whether the base holds the stream, its positions after the base.
    pub streams: Vec<(String, bool, Vec<Position>)>,
}

/// Writes pages, keeping their CRCs and the first key of each.
struct Pages {
    out: Hashing<BufWriter<File>>,
    crcs: Vec<u32>,
    page: Vec<u8>,
}

impl Pages {
    fn push(&mut self, bytes: &[u8]) {
        self.page.extend_from_slice(bytes);
    }

    /// Ends the page being filled (padded with zeros), if it holds anything.
    fn end_page(&mut self) -> std::io::Result<()> {
        if self.page.is_empty() {
            return Ok(());
        }
        self.page.resize(PAGE, 0);
        self.crcs.push(crc32fast::hash(&self.page));
        self.out.inner.write_all(&self.page)?;
        self.page.clear();
        Ok(())
    }
}

/// A writer that hashes what goes through it.
struct Hashing<W> {
    inner: W,
    hasher: blake3::Hasher,
    written: u64,
}

impl<W: Write> Hashing<W> {
    fn hashed(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hasher.update(bytes);
        self.inner.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }
}

/// Writes the checkpoint covering the log up to `tail` in `dir`, durably: `base` with
/// `layer` (the events after it, up to `tail`) merged in. Returns the new base, read from
/// the new file, and the file's size.
pub(crate) fn write_merged(
    dir: &Path,
    base: &Base,
    layer: Layer,
    tail: &Tail,
) -> std::result::Result<(Base, u64), String> {
    let temporary = dir.join(format!("{FILE}.tmp"));
    let written = write_new(dir, &temporary, base, layer, tail);
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

fn write_new(
    dir: &Path,
    temporary: &Path,
    base: &Base,
    mut layer: Layer,
    tail: &Tail,
) -> std::result::Result<(Base, u64), String> {
    let io = |e: std::io::Error| format!("cannot write {}: {e}", temporary.display());
    let file = File::create(temporary).map_err(io)?;
    let mut pages = Pages {
        out: Hashing {
            inner: BufWriter::with_capacity(1 << 20, file),
            hasher: blake3::Hasher::new(),
            written: 0,
        },
        crcs: Vec::new(),
        page: Vec::with_capacity(PAGE),
    };
    let events = base.events + layer.ids.len() as u64;
    if events != tail.position {
        return Err(format!(
            "the checkpoint would hold {events} events for {} records",
            tail.position
        ));
    }
    let mut first_ids = Vec::with_capacity(pages_for(events, IDS_PER_PAGE) as usize);

    // The ids: the base's and the layer's, merged in order.
    layer.ids.sort_unstable_by_key(|(id, _)| *id);
    let mut newer = layer.ids.iter().copied().peekable();
    let mut older = base.ids();
    let mut written = 0u64;
    let mut push_id = |pages: &mut Pages, (id, position): (u128, Position)| {
        if written.is_multiple_of(IDS_PER_PAGE) {
            pages.end_page()?;
            first_ids.push(id);
        }
        written += 1;
        pages.push(&id.to_be_bytes());
        pages.push(&position.to_le_bytes());
        Ok(())
    };
    while let Some((_, entry)) = older.next().map_err(|e| e.to_string())? {
        let entry = id_entry(entry);
        while let Some(new) = newer.next_if(|new| new.0 < entry.0) {
            push_id(&mut pages, new).map_err(io)?;
        }
        if newer.peek().is_some_and(|new| new.0 == entry.0) {
            return Err(format!(
                "event id {} is both new and in the base",
                Uuid::from_u128(entry.0)
            ));
        }
        push_id(&mut pages, entry).map_err(io)?;
    }
    for new in newer {
        push_id(&mut pages, new).map_err(io)?;
    }
    pages.end_page().map_err(io)?;

    // The streams, twice in the same order: their records, then their positions.
    let mut extra = std::collections::HashMap::new();
    let mut fresh = Vec::new();
    for (name, in_base, positions) in layer.streams {
        if in_base {
            extra.insert(name, positions);
        } else {
            fresh.push((name, positions));
        }
    }
    fresh.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut first_names = String::new();
    let mut first_name_ends = Vec::new();
    let mut streams = 0u64;
    let mut start = 0u64;
    let mut page_used = PAGE;
    merged_streams(base, &fresh, &extra, |name, older, newer| {
        let len = RECORD_HEAD + name.len();
        if page_used + len > PAGE {
            pages.end_page().map_err(io)?;
            first_names.push_str(name);
            first_name_ends.push(first_names.len() as u32);
            page_used = 0;
        }
        let count = older.map_or(0, |e| e.count) + newer.len() as u64;
        pages.push(&(name.len() as u16).to_le_bytes());
        pages.push(&start.to_le_bytes());
        pages.push(&count.to_le_bytes());
        pages.push(name.as_bytes());
        page_used += len;
        start += count;
        streams += 1;
        Ok(())
    })?;
    pages.end_page().map_err(io)?;
    let stream_pages = first_name_ends.len() as u64;

    let mut older = base.stream_positions();
    let mut written = 0u64;
    merged_streams(base, &fresh, &extra, |_, old, newer| {
        let mut push = |pages: &mut Pages, position: Position| {
            if written.is_multiple_of(POSITIONS_PER_PAGE) {
                pages.end_page()?;
            }
            written += 1;
            pages.push(&position.to_le_bytes());
            Ok(())
        };
        for _ in 0..old.map_or(0, |e| e.count) {
            let (_, entry) = older
                .next()
                .map_err(|e| e.to_string())?
                .ok_or("the old checkpoint has fewer stream positions than its streams count")?;
            push(&mut pages, u64_at(entry)).map_err(io)?;
        }
        for position in newer {
            push(&mut pages, *position).map_err(io)?;
        }
        Ok(())
    })?;
    pages.end_page().map_err(io)?;
    if written != events || start != events {
        return Err(format!(
            "the checkpoint would hold {written} stream positions for {events} records"
        ));
    }

    // The CRC table and the footer, hashed.
    let crcs = pages.crcs;
    let mut out = pages.out;
    let mut table = Vec::with_capacity(crcs.len() * 4);
    for crc in &crcs {
        table.extend_from_slice(&crc.to_le_bytes());
    }
    out.hashed(&table).map_err(io)?;
    out.hashed(&footer_fields(tail, streams, stream_pages))
        .map_err(io)?;
    let hash = out.hasher.finalize();
    let size = (crcs.len() * PAGE) as u64 + out.written + 32;
    let mut inner = out.inner;
    inner.write_all(hash.as_bytes()).map_err(io)?;
    let file = inner.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_data().map_err(io)?;
    drop(file);
    std::fs::rename(temporary, path(dir)).map_err(io)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    let file = File::open(path(dir)).map_err(io)?;
    Ok((
        Base {
            file: Some(file),
            path: path(dir),
            events,
            streams,
            stream_pages,
            crcs,
            first_ids,
            first_names,
            first_name_ends,
        },
        size,
    ))
}

/// Calls `each` with every stream of `base` and of `fresh` (new streams, sorted), in name
/// order: its name, where the base holds its positions, and its positions after the base
/// (from `extra` for a stream the base holds).
fn merged_streams(
    base: &Base,
    fresh: &[(String, Vec<Position>)],
    extra: &std::collections::HashMap<String, Vec<Position>>,
    mut each: impl FnMut(&str, Option<Extent>, &[Position]) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    let mut fresh = fresh.iter().peekable();
    let mut older = base.walk(base.id_pages(), base.id_pages() + base.stream_pages);
    while let Some((number, page)) = older.page().map_err(|e| e.to_string())? {
        for record in Records::new(page) {
            let (name, extent) = record.map_err(|why| base.damaged(number, why).to_string())?;
            while let Some((new, positions)) = fresh.next_if(|(new, _)| new.as_str() < name) {
                each(new, None, positions)?;
            }
            if fresh.peek().is_some_and(|(new, _)| new == name) {
                return Err(format!("stream {name} is both new and in the base"));
            }
            let later = extra.get(name).map_or(&[][..], Vec::as_slice);
            each(name, Some(extent), later)?;
        }
    }
    for (new, positions) in fresh {
        each(new, None, positions)?;
    }
    Ok(())
}

fn footer_fields(tail: &Tail, streams: u64, stream_pages: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(FOOTER - 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&tail.position.to_le_bytes());
    out.extend_from_slice(&tail.hash.0);
    out.extend_from_slice(&tail.recorded_at.as_micros().to_le_bytes());
    out.extend_from_slice(&streams.to_le_bytes());
    out.extend_from_slice(&stream_pages.to_le_bytes());
    out
}

/// What reading the checkpoint found.
pub enum Read {
    Missing,
    /// A whole checkpoint of this format: the base and the tail it covers.
    Found(Base, Tail),
    /// Not usable, and why.
    Unusable(String),
}

/// Reads the checkpoint in `dir`, checking every page of it and that it is consistent
/// (never trusting a count or an offset it holds).
pub fn read(dir: &Path) -> Read {
    let file = match File::open(path(dir)) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Read::Missing,
        Err(e) => return Read::Unusable(format!("cannot read it: {e}")),
    };
    match load(file, path(dir)) {
        Ok((base, tail)) => Read::Found(base, tail),
        Err(why) => Read::Unusable(why),
    }
}

fn load(file: File, path: PathBuf) -> std::result::Result<(Base, Tail), String> {
    let len = file
        .metadata()
        .map_err(|e| format!("cannot read it: {e}"))?
        .len();
    if len < FOOTER as u64 {
        return Err("not an index checkpoint of this format".into());
    }
    let mut footer = [0; FOOTER];
    file.read_exact_at(&mut footer, len - FOOTER as u64)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if &footer[..8] != MAGIC {
        return Err("not an index checkpoint of this format".into());
    }
    let tail = Tail {
        position: u64_at(&footer[8..16]),
        hash: ChainHash(footer[16..48].try_into().map_err(|_| "short footer")?),
        recorded_at: Timestamp::from_micros(u64_at(&footer[48..56]) as i64),
    };
    let (streams, stream_pages) = (u64_at(&footer[56..64]), u64_at(&footer[64..72]));
    let events = tail.position;
    let pages = [
        pages_for(events, IDS_PER_PAGE),
        stream_pages,
        pages_for(events, POSITIONS_PER_PAGE),
    ]
    .iter()
    .try_fold(0u64, |sum, n| sum.checked_add(*n))
    .ok_or("its counts are too large")?;
    let expected = pages
        .checked_mul(PAGE as u64 + 4)
        .and_then(|n| n.checked_add(FOOTER as u64))
        .ok_or("its counts are too large")?;
    if expected != len {
        return Err(format!("its counts need {expected} bytes, it holds {len}"));
    }
    let mut table = vec![0; pages as usize * 4];
    file.read_exact_at(&mut table, pages * PAGE as u64)
        .map_err(|e| format!("cannot read it: {e}"))?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(&table);
    hasher.update(&footer[..FOOTER - 32]);
    if hasher.finalize().as_bytes() != &footer[FOOTER - 32..] {
        return Err("its table or footer does not match its hash (damaged or cut short)".into());
    }
    let mut base = Base {
        file: Some(file),
        path,
        events,
        streams,
        stream_pages,
        crcs: table
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()))
            .collect(),
        first_ids: Vec::new(),
        first_names: String::new(),
        first_name_ends: Vec::new(),
    };
    check_and_index(&mut base)?;
    Ok((base, tail))
}

/// Reads every page of `base` (each checked against its CRC), checks what the index code
/// relies on (one id and one stream position per record, ids and names strictly
/// ascending, each stream's positions strictly ascending within the log, records in
/// bounds), and keeps the first key of each page.
fn check_and_index(base: &mut Base) -> std::result::Result<(), String> {
    let last = base.events;
    let text = |e: Error| e.to_string();
    // The ids.
    let mut first_ids = Vec::with_capacity(base.id_pages() as usize);
    let mut previous: Option<u128> = None;
    let mut ids = base.ids();
    while let Some((first, entry)) = ids.next().map_err(text)? {
        let (id, position) = id_entry(entry);
        if first {
            first_ids.push(id);
        }
        if previous.is_some_and(|p| p >= id) {
            return Err("its event ids are not strictly ascending".into());
        }
        if position == 0 || position > last {
            return Err("an event id's position is outside the records it covers".into());
        }
        previous = Some(id);
    }

    // The streams.
    let (mut first_names, mut first_name_ends) = (String::new(), Vec::new());
    let mut counts = Vec::with_capacity(base.streams as usize);
    let mut previous = String::new();
    let mut start = 0u64;
    let section = base.id_pages();
    let mut pages = base.walk(section, section + base.stream_pages);
    while let Some((number, page)) = pages.page().map_err(text)? {
        let mut records = 0;
        for record in Records::new(page) {
            let (name, extent) = record.map_err(|why| format!("page {number}: {why}"))?;
            if records == 0 {
                first_names.push_str(name);
                first_name_ends.push(first_names.len() as u32);
            }
            records += 1;
            if !previous.is_empty() && previous.as_str() >= name {
                return Err("its stream names are not strictly ascending".into());
            }
            if extent.start != start || extent.count == 0 || extent.count > last - start {
                return Err("a stream's bounds are wrong".into());
            }
            previous.clear();
            previous.push_str(name);
            start += extent.count;
            counts.push(extent.count);
        }
        if records == 0 {
            return Err(format!("page {number} holds no stream"));
        }
    }
    if counts.len() as u64 != base.streams || start != last {
        return Err(format!(
            "it names {} streams of {start} positions, and holds {} streams for {last} records",
            base.streams,
            counts.len()
        ));
    }

    // The stream positions.
    // (Their counts add up to `last`, the number of stream positions: checked above.)
    let mut positions = base.stream_positions();
    for count in counts {
        let mut previous = 0;
        for _ in 0..count {
            let (_, entry) = positions
                .next()
                .map_err(text)?
                .ok_or("fewer stream positions than its streams hold")?;
            let position = u64_at(entry);
            if position <= previous || position > last {
                return Err("a stream's positions are not ascending within the log".into());
            }
            previous = position;
        }
    }
    base.first_ids = first_ids;
    base.first_names = first_names;
    base.first_name_ends = first_name_ends;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Index;
    use eventlog::StreamId;

    fn stream(i: u64) -> StreamId {
        StreamId::new(format!("s-{}", i % 7)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn tail_at(position: Position) -> Tail {
        Tail {
            position,
            hash: ChainHash([7; 32]),
            recorded_at: Timestamp::from_micros(1_700_000_000_000_000),
        }
    }

    /// A checkpoint of `events` events over 7 streams, and the ids.
    fn sample(dir: &Path, events: u64) -> (Base, Tail, Vec<Uuid>) {
        let mut index = Index::default();
        let mut ids = Vec::new();
        for i in 0..events {
            let id = Uuid::new_v4();
            ids.push(id);
            let version = index.version(&stream(i)).unwrap_or_else(|e| panic!("{e}"));
            index.add(&stream(i), id, i + 1, version + 1);
        }
        let tail = tail_at(events);
        let (base, _) = write_merged(dir, &Base::default(), index.recent_up_to(events), &tail)
            .unwrap_or_else(|e| panic!("{e}"));
        (base, tail, ids)
    }

    fn answers(base: &Base, ids: &[Uuid]) -> Vec<String> {
        let mut out: Vec<String> = ids
            .iter()
            .map(|id| format!("{:?}", base.position_of(id).map_err(|e| e.to_string())))
            .collect();
        for i in 0..8 {
            let name = format!("s-{i}");
            let found = base.find(&name).unwrap_or_else(|e| panic!("{e}"));
            let positions = found.map(|e| base.positions(e, 0, e.count));
            out.push(format!("{name} {found:?} {positions:?}"));
        }
        out
    }

    #[test]
    fn a_written_checkpoint_reads_back_and_any_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // Over a page of ids (170) and of positions (512).
        let (written, tail, ids) = sample(dir.path(), 1_300);
        let (read_base, read_tail) = match read(dir.path()) {
            Read::Found(base, tail) => (base, tail),
            Read::Unusable(why) => panic!("not read back: {why}"),
            Read::Missing => panic!("not read back: missing"),
        };
        assert_eq!(read_tail, tail);
        assert_eq!(answers(&read_base, &ids), answers(&written, &ids));
        assert_eq!(read_base.position_of(&ids[1_000]).ok(), Some(Some(1_001)));
        assert_eq!(read_base.position_of(&Uuid::new_v4()).ok(), Some(None));
        let s3 = read_base
            .find("s-3")
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("s-3"));
        let expected: Vec<Position> = (1..=1_300).filter(|p| (p - 1) % 7 == 3).collect();
        assert_eq!(
            read_base.positions(s3, 0, s3.count).ok(),
            Some(expected.clone())
        );
        assert_eq!(
            read_base.positions(s3, 5, 8).ok(),
            Some(expected[5..8].to_vec())
        );
        let bytes = std::fs::read(path(dir.path())).unwrap_or_else(|e| panic!("{e}"));
        // Every byte flipped, and every cut, is refused (never a panic, never accepted).
        let damaged = dir.path().join("damaged");
        std::fs::create_dir(&damaged).unwrap_or_else(|e| panic!("{e}"));
        for i in (0..bytes.len()).step_by(61) {
            let mut copy = bytes.clone();
            copy[i] ^= 0x10;
            std::fs::write(path(&damaged), &copy).unwrap_or_else(|e| panic!("{e}"));
            assert!(matches!(read(&damaged), Read::Unusable(_)), "flip at {i}");
        }
        for len in (0..bytes.len()).step_by(397) {
            std::fs::write(path(&damaged), &bytes[..len]).unwrap_or_else(|e| panic!("{e}"));
            assert!(matches!(read(&damaged), Read::Unusable(_)), "cut at {len}");
        }
    }

    /// The base keeps its pages in the file: memory holds under half a byte per
    /// event (the first key and the checksum of each page), where the arrays took 40.
    #[test]
    fn a_base_holds_a_few_bytes_a_page_in_memory() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let events = 100_000u64;
        let layer = Layer {
            ids: (1..=events)
                .map(|p| (Uuid::new_v4().as_u128(), p))
                .collect(),
            streams: (0..events / 10)
                .map(|s| {
                    let positions = (0..10).map(|i| s + 1 + i * (events / 10)).collect();
                    (format!("complaint-{}", Uuid::new_v4()), false, positions)
                })
                .collect(),
        };
        let tail = tail_at(events);
        let (written, size) = write_merged(dir.path(), &Base::default(), layer, &tail)
            .unwrap_or_else(|e| panic!("{e}"));
        let Read::Found(read_base, _) = read(dir.path()) else {
            panic!("not read back");
        };
        for base in [&written, &read_base] {
            assert!(
                base.heap_bytes() < events as usize / 2,
                "{} bytes in memory for {events} events ({size} bytes in the file)",
                base.heap_bytes()
            );
        }
        assert!(
            size > 30 * events,
            "the file holds the indexes: {size} bytes"
        );
    }

    /// A page damaged after the open is refused when it is read, with the page named;
    /// the pages around it still answer.
    #[test]
    fn a_page_damaged_after_the_open_is_refused_when_read() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (base, _, ids) = sample(dir.path(), 1_300);
        let Read::Found(opened, _) = read(dir.path()) else {
            panic!("not read back");
        };
        // Flip a byte of the second id page, in place (the open file sees it).
        let file = std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .open(path(dir.path()))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut byte = [0u8; 1];
        let at = PAGE as u64 + 100;
        file.read_exact_at(&mut byte, at)
            .unwrap_or_else(|e| panic!("{e}"));
        file.write_all_at(&[byte[0] ^ 1], at)
            .unwrap_or_else(|e| panic!("{e}"));
        let on_page_1 = ids
            .iter()
            .find(|id| {
                let id = id.as_u128();
                id >= base.first_ids[1] && base.first_ids.get(2).is_none_or(|next| id < *next)
            })
            .unwrap_or_else(|| panic!("no id on page 1"));
        let on_page_0 = ids
            .iter()
            .find(|id| id.as_u128() < base.first_ids[1])
            .unwrap_or_else(|| panic!("no id on page 0"));
        let refused = opened.position_of(on_page_1).map_err(|e| e.to_string());
        assert!(
            matches!(&refused, Err(e) if e.contains("damaged at page 1")),
            "{refused:?}"
        );
        assert!(matches!(opened.position_of(on_page_0), Ok(Some(_))));
        // And a merge over it refuses to write a checkpoint from it.
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap_or_else(|e| panic!("{e}"));
        let merged = write_merged(&other, &opened, Layer::default(), &tail_at(1_300));
        assert!(merged.is_err());
    }

    /// A file whose hashes match but whose content is wrong (written by a bug, or made to
    /// fit) is refused by the consistency checks, not trusted.
    #[test]
    fn a_whole_but_inconsistent_checkpoint_is_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (_, tail, _) = sample(dir.path(), 300);
        let bytes = std::fs::read(path(dir.path())).unwrap_or_else(|e| panic!("{e}"));
        let pages = (bytes.len() - FOOTER) / (PAGE + 4);
        // Rewrites page `page` with `edit`, then its CRC, the table's hash.
        let fix = |edit: &dyn Fn(&mut [u8])| {
            let mut b = bytes.clone();
            edit(&mut b);
            for p in 0..pages {
                let crc = crc32fast::hash(&b[p * PAGE..(p + 1) * PAGE]);
                let at = pages * PAGE + p * 4;
                b[at..at + 4].copy_from_slice(&crc.to_le_bytes());
            }
            let len = b.len();
            let mut hasher = blake3::Hasher::new();
            hasher.update(&b[pages * PAGE..len - 32]);
            let hash = hasher.finalize();
            b[len - 32..].copy_from_slice(hash.as_bytes());
            b
        };
        let id_pages = pages_for(300, IDS_PER_PAGE) as usize;
        let streams_at = id_pages * PAGE;
        let positions_at = (id_pages + 1) * PAGE;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "ids out of order",
                fix(&|b| {
                    let (first, second) = b.split_at_mut(ID_ENTRY);
                    first[..16].swap_with_slice(&mut second[..16]);
                }),
            ),
            (
                "an id's position past the end",
                fix(&|b| b[16..24].copy_from_slice(&999u64.to_le_bytes())),
            ),
            (
                "positions out of order",
                fix(&|b| {
                    let (first, second) = b[positions_at..].split_at_mut(8);
                    first.swap_with_slice(&mut second[..8]);
                }),
            ),
            (
                "a stream's count changed",
                fix(&|b| {
                    let at = streams_at + 2 + 8;
                    let count = u64_at(&b[at..at + 8]);
                    b[at..at + 8].copy_from_slice(&(count + 1).to_le_bytes());
                }),
            ),
            (
                "a name's length past its page",
                fix(&|b| {
                    b[streams_at..streams_at + 2].copy_from_slice(&4000u16.to_le_bytes());
                }),
            ),
        ];
        // The unchanged bytes, re-hashed the same way, are accepted: the cases test the
        // consistency checks, not the hashes.
        let damaged = dir.path().join("case");
        std::fs::create_dir(&damaged).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(path(&damaged), fix(&|_| {})).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(read(&damaged), Read::Found(_, t) if t == tail));
        for (what, b) in cases {
            std::fs::write(path(&damaged), &b).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                matches!(read(&damaged), Read::Unusable(_)),
                "{what} was accepted"
            );
        }
    }
}
