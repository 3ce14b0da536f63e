//! What every backend reports of its appends, through the `metrics` facade (exported by
//! whoever runs it, e.g. complaintd's `/metrics`).

use std::time::Instant;

use crate::{AppendResult, Result};

/// Records an append of `events` on `backend` that started at `started`: its latency
/// (until durable, or acknowledged by the stream), and the events it added (none for a
/// retry that wrote nothing).
pub fn record_append(
    backend: &'static str,
    started: Instant,
    events: u64,
    result: &Result<AppendResult>,
) {
    metrics::histogram!("complaints_log_append_seconds", "backend" => backend)
        .record(started.elapsed());
    if matches!(result, Ok(r) if !r.deduplicated) {
        metrics::counter!("complaints_events_appended_total", "backend" => backend)
            .increment(events);
    }
}
