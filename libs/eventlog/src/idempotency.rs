//! The idempotency rules every backend applies the same way: an append whose event ids
//! were all appended before (together, in order, with the same content) returns the
//! original result; any other repeat of a known id is a conflict.

use crate::error::{Error, Result};
use crate::types::{AppendResult, NewEvent, Position, RecordedEvent, StreamId};

/// Given where each event id of an append is already stored (`None`: new), the positions
/// of the originals if every id is known, `None` if none is; a partial repeat is a
/// conflict.
pub fn known_positions(
    events: &[NewEvent],
    found: Vec<Option<Position>>,
) -> Result<Option<Vec<Position>>> {
    let known = found.iter().filter(|p| p.is_some()).count();
    if known == 0 {
        return Ok(None);
    }
    if known < found.len() {
        let new = found.iter().position(Option::is_none).unwrap_or(0);
        return Err(Error::IdempotencyConflict {
            event_id: events[new].id,
            reason: "only part of this append repeats an earlier one".into(),
        });
    }
    Ok(Some(found.into_iter().flatten().collect()))
}

/// The original result of a repeated append, from the stored originals of its events (in
/// the append's order); a conflict if any differs in content or they were not appended
/// together in this order.
pub fn original_result(
    stream: &StreamId,
    events: &[NewEvent],
    originals: &[RecordedEvent],
) -> Result<AppendResult> {
    for (event, original) in events.iter().zip(originals) {
        if !original.same_content(stream, event) {
            return Err(Error::IdempotencyConflict {
                event_id: event.id,
                reason: "the same id was appended with different content".into(),
            });
        }
    }
    let consecutive = originals
        .windows(2)
        .all(|w| w[1].position == w[0].position + 1 && w[1].version == w[0].version + 1);
    let (Some(first), Some(last), true) = (originals.first(), originals.last(), consecutive) else {
        return Err(Error::IdempotencyConflict {
            event_id: events[0].id,
            reason: "the ids were appended before, but not together in this order".into(),
        });
    };
    Ok(AppendResult {
        first_version: first.version,
        last_version: last.version,
        first_position: first.position,
        last_position: last.position,
        deduplicated: true,
    })
}
