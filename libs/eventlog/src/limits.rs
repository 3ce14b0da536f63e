//! Bounds on what one append may carry, and the validation every backend applies before
//! touching storage.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::types::NewEvent;

/// Longest event type, in bytes.
pub const MAX_EVENT_TYPE_BYTES: usize = 128;
/// Longest actor, in bytes.
pub const MAX_ACTOR_BYTES: usize = 256;
/// Longest correlation or causation id, in bytes.
pub const MAX_TRACE_ID_BYTES: usize = 128;
/// What the envelope adds to an event's fields, at most (tags, lengths, numbers).
const ENVELOPE_OVERHEAD: usize = 96;

/// Size bounds of appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest event, payload plus metadata, in bytes (default 1 MiB).
    pub max_event_bytes: usize,
    /// Most events in one append (default 10,000).
    pub max_events_per_append: usize,
    /// Largest append, all its events together, in bytes (default 16 MiB).
    pub max_append_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_event_bytes: 1 << 20,
            max_events_per_append: 10_000,
            max_append_bytes: 16 << 20,
        }
    }
}

/// The stored size of an event, payload plus metadata, as the limits count it.
pub fn event_size(stream_id_len: usize, event: &NewEvent) -> usize {
    ENVELOPE_OVERHEAD
        + stream_id_len
        + event.event_type.len()
        + event.actor.len()
        + event.correlation_id.len()
        + event.causation_id.len()
        + event.payload.len()
}

impl Limits {
    /// Checks an append's events against these limits and the field rules; reports the
    /// first problem with the field it concerns (`events[i].field`).
    pub fn validate(&self, stream_id_len: usize, events: &[NewEvent]) -> Result<()> {
        if events.is_empty() {
            return Err(Error::invalid(
                "events",
                "an append needs at least one event",
            ));
        }
        if events.len() > self.max_events_per_append {
            return Err(Error::invalid(
                "events",
                format!(
                    "{} events, over the limit of {} per append",
                    events.len(),
                    self.max_events_per_append
                ),
            ));
        }
        let mut ids = HashSet::with_capacity(events.len());
        let mut total = 0usize;
        for (i, event) in events.iter().enumerate() {
            let field = |name: &str| format!("events[{i}].{name}");
            if event.id.is_nil() {
                return Err(Error::invalid(field("id"), "must not be the nil uuid"));
            }
            if !ids.insert(event.id) {
                return Err(Error::invalid(field("id"), "repeats an id of this append"));
            }
            check_text(
                &field("event_type"),
                &event.event_type,
                MAX_EVENT_TYPE_BYTES,
                false,
            )?;
            check_text(&field("actor"), &event.actor, MAX_ACTOR_BYTES, false)?;
            check_text(
                &field("correlation_id"),
                &event.correlation_id,
                MAX_TRACE_ID_BYTES,
                true,
            )?;
            check_text(
                &field("causation_id"),
                &event.causation_id,
                MAX_TRACE_ID_BYTES,
                true,
            )?;
            let size = event_size(stream_id_len, event);
            if size > self.max_event_bytes {
                return Err(Error::EventTooLarge {
                    event_id: event.id,
                    size,
                    limit: self.max_event_bytes,
                });
            }
            total += size;
        }
        if total > self.max_append_bytes {
            return Err(Error::invalid(
                "events",
                format!(
                    "{total} bytes in all, over the limit of {} per append",
                    self.max_append_bytes
                ),
            ));
        }
        Ok(())
    }
}

fn check_text(field: &str, value: &str, max: usize, may_be_empty: bool) -> Result<()> {
    if value.is_empty() && !may_be_empty {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.len() > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {max} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn event(payload: usize) -> NewEvent {
        NewEvent::new("t", "a", Bytes::from(vec![0u8; payload]))
    }

    #[test]
    fn an_event_over_the_limit_is_refused_with_its_size() {
        let limits = Limits::default();
        let big = event(limits.max_event_bytes);
        match limits.validate(10, &[big]) {
            Err(Error::EventTooLarge { size, limit, .. }) => {
                assert!(size > limit);
                assert_eq!(limit, 1 << 20);
            }
            other => panic!("expected EventTooLarge, got {other:?}"),
        }
        let fits = event(limits.max_event_bytes - 200);
        assert!(limits.validate(10, &[fits]).is_ok());
    }

    #[test]
    fn empty_and_repeated_and_nil_ids_are_refused_by_field() {
        let limits = Limits::default();
        assert!(
            matches!(limits.validate(1, &[]), Err(Error::InvalidArgument { field, .. }) if field == "events")
        );
        let e = event(1);
        assert!(matches!(limits.validate(1, &[e.clone(), e.clone()]),
            Err(Error::InvalidArgument { field, .. }) if field == "events[1].id"));
        let mut nil = event(1);
        nil.id = uuid::Uuid::nil();
        assert!(matches!(limits.validate(1, &[nil]),
            Err(Error::InvalidArgument { field, .. }) if field == "events[0].id"));
        let mut no_type = event(1);
        no_type.event_type.clear();
        assert!(matches!(limits.validate(1, &[no_type]),
            Err(Error::InvalidArgument { field, .. }) if field == "events[0].event_type"));
    }
}
