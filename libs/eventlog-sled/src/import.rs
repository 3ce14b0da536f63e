//! Writing a new log from stored records, byte for byte: for salvaging the readable prefix
//! of a damaged log, and for restoring a backup. The records keep their positions, hashes
//! and envelopes (nothing is re-sealed), so digests of the original still hold for them.

use std::path::Path;

use eventlog::{ChainHash, Error, Position, Result, StoredRecord};

use crate::keys::ChunkBuilder;
use crate::witness::{Head, Witness};
use crate::{keys, open_checked, open_tree, pipeline, storage, VerifyReport};

/// Writes `records` (positions 1, 2, ... in order, each linked to the one before) as a new
/// log in `path`, which must not hold one yet; makes it durable with its witness, then
/// checks it as an open would. A record out of place or not linked to the one before
/// stops the import with `Corruption` at its position, and nothing is left in `path`.
pub fn import(
    path: &Path,
    records: impl IntoIterator<Item = StoredRecord>,
) -> Result<VerifyReport> {
    if path.join("db").exists() {
        return Err(Error::Storage(format!(
            "{} already holds a log: import writes new logs only",
            path.display()
        )));
    }
    let written = write(path, records);
    if written.is_err() {
        let _ = std::fs::remove_dir_all(path);
    }
    written?;
    let (_, index, _) = open_checked(path, 64 << 20, false)?;
    // Every record was just checked: the first open need not do it again (without the
    // checkpoint it would, so a failure here costs time only).
    let layer = index.recent_up_to(index.tail.position);
    if let Err(e) = crate::checkpoint::write_merged(path, &index.base(), layer, &index.tail) {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the index checkpoint of the imported log");
    }
    Ok(index.report())
}

fn write(path: &Path, records: impl IntoIterator<Item = StoredRecord>) -> Result<()> {
    std::fs::create_dir_all(path).map_err(storage)?;
    let tree = open_tree(path, 64 << 20)?;
    let mut chunk = ChunkBuilder::default();
    let (mut head, mut hash): (Position, ChainHash) = (0, ChainHash::GENESIS);
    for stored in records {
        let position = stored.position;
        let record = stored.decode()?;
        if position != head + 1 || record.position != position {
            return Err(Error::Corruption {
                position: head + 1,
                reason: format!("missing: the next record given is at {position}"),
            });
        }
        if record.prev_hash != hash {
            return Err(Error::Corruption {
                position,
                reason: "not linked to the record before it (hash chain)".into(),
            });
        }
        chunk.push(position, &stored.bytes);
        head = position;
        hash = stored.hash();
        if chunk.len() >= pipeline::CHUNK_TARGET_BYTES {
            if let Some((key, value)) = chunk.take() {
                tree.insert(key, value).map_err(storage)?;
            }
        }
    }
    if let Some((key, value)) = chunk.take() {
        tree.insert(key, value).map_err(storage)?;
    }
    tree.insert(keys::WITNESSED, &head.to_be_bytes()[..])
        .map_err(storage)?;
    let mut sync = pipeline::Syncer::new(path)?;
    sync.commit(&tree, &pipeline::Stats::default())
        .map_err(storage)?;
    Witness::create(path, &Head::settled(head, hash))
        .map_err(|e| Error::Storage(format!("cannot write the witness: {e}")))?;
    drop(tree);
    Ok(())
}
