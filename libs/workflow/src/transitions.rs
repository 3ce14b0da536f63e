//! Time-driven SLA transitions: when a clock crosses an at-risk threshold or breaches, the
//! watcher records it as an event in the complaint's `sla-{uuid}` stream, at that moment.
//!
//! The watcher sleeps until the board's earliest unrecorded crossing (a timer, not a scan
//! over every complaint) and wakes early whenever the board changes. Each transition's
//! event id is derived from (complaint, clock, threshold, due time), and its payload holds
//! the computed crossing time rather than the time it was noticed, so recording it again
//! (after a restart, or a race with the board catching up) writes nothing.
//!
//! A crossing is only as true as the board it is read from: a board still applying the log
//! (a start, a rebuild, a burst of appends) has not seen the answer that stopped a clock,
//! and would report the clock's later crossings as due. So the watcher first waits until
//! the board has applied the log's head as it stands after "now": every event recorded
//! before the crossings it then records is in the board.

use std::sync::Arc;
use std::time::Duration;

use complaints_events::stored::sla_stream;
use complaints_events::Crossing;
use complaints_projections::board::SlaBoard;
use complaints_projections::Projection;
use eventlog::{Clock, EventLog, ExpectedVersion, NewEvent};
use jiff::Timestamp;
use uuid::Uuid;

/// The actor recorded on transitions.
pub const ACTOR: &str = "system:sla-watcher";

const NAMESPACE: Uuid = Uuid::from_u128(0x2f1e_8d3c_4b5a_4968_8776_a5b4_c3d2_e1f0);

/// The event recording a crossing: its id is derived from (complaint, clock, threshold,
/// due time), so a restart or a race records it once.
pub fn event(c: &Crossing) -> NewEvent {
    let mut name = Vec::with_capacity(64);
    name.extend_from_slice(c.id.uuid().as_bytes());
    name.extend_from_slice(c.clock.as_bytes());
    name.push(c.threshold);
    name.extend_from_slice(&c.due_at.as_microsecond().to_be_bytes());
    NewEvent {
        id: Uuid::new_v5(&NAMESPACE, &name),
        event_type: c.event_type().to_owned(),
        schema_version: 1,
        actor: ACTOR.to_owned(),
        correlation_id: String::new(),
        causation_id: String::new(),
        payload: c.encode(),
    }
}

fn now(clock: &dyn Clock) -> Timestamp {
    Timestamp::from_microsecond(clock.now().as_micros()).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Records every crossing due by the clock's now, once the board has applied the log as it
/// stands after that now; returns those newly recorded.
pub async fn record_due(
    board: &SlaBoard,
    log: &dyn EventLog,
    clock: &dyn Clock,
) -> Result<Vec<Crossing>, eventlog::Error> {
    let now = now(clock);
    board.wait_for(log.head().await?).await;
    let mut recorded = Vec::new();
    for crossing in board.crossings_due(now) {
        let result = log
            .append(
                &sla_stream(crossing.id),
                ExpectedVersion::Any,
                vec![event(&crossing)],
            )
            .await?;
        if !result.deduplicated {
            tracing::info!(complaint_id = %crossing.id, clock = %crossing.clock, threshold = crossing.threshold, "SLA transition");
            let kind = if crossing.threshold >= 100 {
                "breached"
            } else {
                "at_risk"
            };
            metrics::counter!("complaints_sla_crossings_recorded_total", "kind" => kind, "regime" => crossing.policy.clone()).increment(1);
            recorded.push(crossing);
        }
    }
    Ok(recorded)
}

/// Runs the watcher until `stop` fires or the log closes.
pub async fn run(
    board: Arc<SlaBoard>,
    log: Arc<dyn EventLog>,
    clock: Arc<dyn Clock>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut changes = board.changes();
    loop {
        // Waiting for the board to catch up gives way to a stop (the board's feeder
        // stops too, and would never get there).
        let recorded = tokio::select! {
            recorded = record_due(&board, &*log, &*clock) => recorded,
            _ = stop.changed() => return,
        };
        match recorded {
            Ok(_) => {}
            Err(eventlog::Error::Closed) => return,
            Err(e) => {
                tracing::error!(error = %e, "recording SLA transitions failed; retrying at the next change");
            }
        }
        changes.borrow_and_update();
        // Sleep until the next crossing; with none scheduled, until the board changes.
        let wait = board
            .next_crossing()
            // A crossing already past (its append failed): try again at once.
            .map(|next| {
                Duration::try_from(next.duration_since(now(&*clock))).unwrap_or(Duration::ZERO)
            });
        let timer = async {
            match wait {
                Some(wait) => tokio::time::sleep(wait).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = timer => {}
            changed = changes.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}
