//! A process's index of the log (event ids, each stream's positions, where each record
//! lives, the chain's tail), saved in a local file so that opening a long log reads only
//! what was appended since, instead of the whole stream.
//!
//! The file is derived data and is never trusted over the stream: it is checksummed
//! (BLAKE3) and written atomically; at open the message it was taken at must still be in
//! the stream holding the record it names as the tail, with that record's hash, and every
//! message after it is checked as on a full read (positions, chain, versions, unique
//! ids). A checkpoint that does not load (torn, altered, another stream's) is set aside
//! with a warning and the stream is read from the start; a stream that no longer holds
//! the record the checkpoint was taken at, with its hash, lost or changed acknowledged
//! history, and the open is refused. Written by
//! hand (postcard and a checksum) because nothing in the dependency tree keeps an index
//! like this one.

use std::collections::HashMap;
use std::path::Path;

use eventlog::{ChainHash, StreamId, Tail, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Index, Slot};

const MAGIC: &[u8; 8] = b"JSIDX\0\0\x01";

#[derive(Serialize, Deserialize)]
struct Saved {
    /// The JetStream stream it indexes.
    stream: String,
    last_sequence: u64,
    tail_position: u64,
    tail_hash: [u8; 32],
    tail_recorded_at: i64,
    /// (event id, position), in position order.
    ids: Vec<([u8; 16], u64)>,
    /// Each stream's positions, in version order.
    streams: Vec<(String, Vec<u64>)>,
    /// (message sequence, index in it) of each position.
    slots: Vec<(u64, u32)>,
}

/// Writes `index` of the JetStream stream `stream` to `path`.
pub(crate) fn save(path: &Path, stream: &str, index: &Index) -> std::io::Result<()> {
    use std::io::Write;
    let mut ids: Vec<([u8; 16], u64)> = index
        .ids
        .iter()
        .map(|(id, p)| (*id.as_bytes(), *p))
        .collect();
    ids.sort_unstable_by_key(|(_, p)| *p);
    let saved = Saved {
        stream: stream.to_owned(),
        last_sequence: index.last_sequence,
        tail_position: index.tail.position,
        tail_hash: index.tail.hash.0,
        tail_recorded_at: index.tail.recorded_at.as_micros(),
        ids,
        streams: index
            .streams
            .iter()
            .map(|(s, p)| (s.as_str().to_owned(), p.clone()))
            .collect(),
        slots: index.slots.iter().map(|s| (s.sequence, s.index)).collect(),
    };
    let body = postcard::to_stdvec(&saved).map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = atomic_write_file::AtomicWriteFile::open(path)?;
    file.write_all(MAGIC)?;
    file.write_all(&body)?;
    file.write_all(blake3::hash(&body).as_bytes())?;
    file.commit()
}

/// The index saved in `path` for the JetStream stream `stream`: `Ok(None)` without a
/// file; an error saying why one cannot be used.
pub(crate) fn load(path: &Path, stream: &str) -> Result<Option<Index>, String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    if bytes.len() < MAGIC.len() + 32 || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not an index checkpoint of this build".into());
    }
    let (body, sum) = bytes[MAGIC.len()..].split_at(bytes.len() - MAGIC.len() - 32);
    if blake3::hash(body).as_bytes() != sum {
        return Err("checksum mismatch (torn or altered)".into());
    }
    let saved: Saved = postcard::from_bytes(body).map_err(|e| format!("undecodable: {e}"))?;
    if saved.stream != stream {
        return Err(format!(
            "it indexes the stream {}, not {stream}",
            saved.stream
        ));
    }
    if saved.ids.len() != saved.slots.len() || saved.tail_position != saved.slots.len() as u64 {
        return Err("its parts do not agree".into());
    }
    let mut ids = HashMap::with_capacity(saved.ids.len());
    for (id, position) in saved.ids {
        ids.insert(Uuid::from_bytes(id), position);
    }
    let mut streams = HashMap::with_capacity(saved.streams.len());
    for (name, positions) in saved.streams {
        let id = StreamId::new(name).map_err(|e| format!("a stream id: {e}"))?;
        streams.insert(id, positions);
    }
    Ok(Some(Index {
        ids,
        streams,
        slots: saved
            .slots
            .into_iter()
            .map(|(sequence, index)| Slot { sequence, index })
            .collect(),
        last_sequence: saved.last_sequence,
        tail: Tail {
            position: saved.tail_position,
            hash: ChainHash(saved.tail_hash),
            recorded_at: Timestamp::from_micros(saved.tail_recorded_at),
        },
    }))
}
