//! The SLA rules (calendars and policies) in force, recorded in the log.
//!
//! At start-up the service loads its rules from the built-in and operator files and, if
//! they differ from the last ones recorded, appends a `rules.loaded` event to the stream
//! `rules` with every file's text. Projections switch to the recorded rules when they
//! reach that event and recompute every open complaint (so no stale due date survives a
//! change, and a rebuild gives what live updating gave); views of a past moment use the
//! rules in force at that moment.

use complaints_events::stored::{
    decode_rules, encode_rules, named_stream, RULES_LOADED, RULES_STREAM,
};
use complaints_sla::RuleSources;
use eventlog::{Direction, EventLog, ExpectedVersion, NewEvent, Position, StreamId, Timestamp};

fn stream() -> StreamId {
    named_stream(RULES_STREAM)
}

/// Records `sources` as the rules in force unless they are the last ones recorded.
/// Returns the position of the new event, if one was appended.
pub async fn record_if_changed(
    log: &dyn EventLog,
    sources: &RuleSources,
    actor: &str,
) -> eventlog::Result<Option<Position>> {
    let stream = stream();
    // Another replica starting at the same time may record first: read again and see.
    let mut attempts = 0;
    loop {
        let last = log
            .read_stream(&stream, u64::MAX, Direction::Backward, 1)
            .await?;
        let version = last.first().map_or(0, |e| e.version);
        if let Some(event) = last.first() {
            if decode_rules(&event.payload).ok().as_ref() == Some(sources) {
                return Ok(None);
            }
        }
        let event = NewEvent::new(RULES_LOADED, actor, encode_rules(sources));
        let expected = if version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        };
        match log.append(&stream, expected, vec![event]).await {
            Ok(result) => return Ok(Some(result.last_position)),
            Err(eventlog::Error::WrongExpectedVersion { .. }) if attempts < 3 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

/// The rules in force at `at`: the last recorded at or before it, if any.
pub async fn in_force_at(
    log: &dyn EventLog,
    at: Timestamp,
) -> eventlog::Result<Option<(Position, RuleSources)>> {
    let events = log
        .read_stream(&stream(), 1, Direction::Forward, usize::MAX)
        .await?;
    let Some(event) = events.into_iter().rev().find(|e| e.recorded_at <= at) else {
        return Ok(None);
    };
    let sources = decode_rules(&event.payload).map_err(|e| eventlog::Error::Corruption {
        position: event.position,
        reason: e.0,
    })?;
    Ok(Some((event.position, sources)))
}
