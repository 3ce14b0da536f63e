//! The optional repeated-cause rule (the source policy's 溯源整改): when the same root
//! cause is found on the same product and unit `count` times within `days` days, record
//! `analysis.repeated_cause` in the stream `analysis`, naming the complaints that made it
//! fire, so it is published and audited like every other event.
//!
//! A run of repeats is raised once: the event names the first `count` complaints of the
//! whole run (over all history) and its id is derived from them, so a restart, a second
//! look or a run that keeps growing writes nothing. The rule looks for new runs among the
//! findings of the last `2 × days` and, only when it sees one not raised yet, finds the
//! whole run it belongs to. The watcher starts once the reports projection has applied
//! the log as it stood at the start, then looks after it applies new events, at most once
//! per [`MIN_INTERVAL`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use complaints_domain::model::{ComplaintId, RootCause};
use complaints_events::stored::{named_stream, RepeatedCause, ANALYSIS_STREAM, REPEATED_CAUSE};
use complaints_events::Stored;
use complaints_projections::reports::Reports;
use complaints_projections::{Decoded, Projection};
use eventlog::{Clock, Direction, EventLog, ExpectedVersion, NewEvent};
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

use crate::reports::{repeats_of, RepeatRule};

/// The actor recorded on the rule's events.
pub const ACTOR: &str = "system:analysis";

/// The watcher looks at most this often.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);

const NAMESPACE: Uuid = Uuid::from_u128(0x7c41_0e52_9a3b_4d6f_b1c8_2e9d_5f4a_6b30);

/// The event raising `r`: its id is derived from (product, unit, cause, complaints).
pub fn event(r: &RepeatedCause) -> NewEvent {
    let mut name = Vec::with_capacity(128);
    for part in [r.product.as_str(), r.unit.as_str(), r.cause.as_str()] {
        name.extend_from_slice(part.as_bytes());
        name.push(0);
    }
    for c in &r.complaints {
        name.extend_from_slice(c.uuid().as_bytes());
    }
    NewEvent {
        id: Uuid::new_v5(&NAMESPACE, &name),
        event_type: REPEATED_CAUSE.to_owned(),
        schema_version: 1,
        actor: ACTOR.to_owned(),
        correlation_id: String::new(),
        causation_id: String::new(),
        payload: r.encode(),
    }
}

type Key = (String, String, RootCause);

/// The complaints already named by a recorded repeat, by (product, unit, cause).
async fn raised(
    log: &dyn EventLog,
) -> Result<BTreeMap<Key, BTreeSet<ComplaintId>>, eventlog::Error> {
    let mut out: BTreeMap<Key, BTreeSet<ComplaintId>> = BTreeMap::new();
    let events = log
        .read_stream(
            &named_stream(ANALYSIS_STREAM),
            1,
            Direction::Forward,
            usize::MAX,
        )
        .await?;
    for record in events {
        let position = record.position;
        let decoded = Decoded::decode(record).map_err(|e| eventlog::Error::Corruption {
            position,
            reason: e.0,
        })?;
        if let Stored::RepeatedCause(r) = decoded.stored {
            out.entry((r.product, r.unit, r.cause))
                .or_default()
                .extend(r.complaints);
        }
    }
    Ok(out)
}

/// The runs the rule sees at `now` that no recorded repeat names yet, each as the first
/// `rule.count` complaints of the whole run (over all history, so a long run is named by
/// the same complaints whenever it is seen).
pub async fn detect(
    reports: &Reports,
    log: &dyn EventLog,
    now: Timestamp,
    rule: RepeatRule,
) -> Result<Vec<RepeatedCause>, eventlog::Error> {
    // New findings can only make runs among the findings of the last two windows.
    let lookback = SignedDuration::from_hours(i64::from(rule.days) * 24 * 2);
    let from = now.checked_sub(lookback).unwrap_or(Timestamp::MIN);
    let until = now
        .checked_add(SignedDuration::from_micros(1))
        .unwrap_or(Timestamp::MAX);
    let recent = repeats_of(reports.findings(from, until), rule);
    if recent.is_empty() {
        return Ok(Vec::new());
    }
    let raised = raised(log).await?;
    let named = |key: &Key, complaints: &[ComplaintId]| {
        raised
            .get(key)
            .is_some_and(|seen| complaints.iter().any(|c| seen.contains(c)))
    };
    let key_of =
        |run: &crate::reports::Repeat| (run.product.to_string(), run.unit.to_string(), run.cause);
    let candidates: Vec<_> = recent
        .into_iter()
        .filter(|run| !named(&key_of(run), &run.complaints))
        .collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    // The whole runs these belong to: their start may lie before the lookback.
    let whole = repeats_of(reports.findings(Timestamp::MIN, until), rule);
    let need = rule.count.max(1) as usize;
    let mut out: Vec<RepeatedCause> = Vec::new();
    for candidate in candidates {
        let key = key_of(&candidate);
        let Some(run) = whole
            .iter()
            .find(|run| key_of(run) == key && run.complaints.contains(&candidate.complaints[0]))
        else {
            continue;
        };
        if named(&key, &run.complaints) || out.iter().any(|r| r.complaints[0] == run.complaints[0])
        {
            continue;
        }
        let complaints: Vec<ComplaintId> = run.complaints.iter().take(need).copied().collect();
        let last = run.found_at.get(need - 1).copied().unwrap_or(run.last);
        out.push(RepeatedCause {
            product: key.0,
            unit: key.1,
            cause: run.cause,
            count: rule.count,
            window_days: rule.days,
            first: run.first,
            last,
            complaints,
        });
    }
    Ok(out)
}

/// Records the repeats [`detect`] finds; returns those newly recorded.
pub async fn record(
    reports: &Reports,
    log: &dyn EventLog,
    now: Timestamp,
    rule: RepeatRule,
) -> Result<Vec<RepeatedCause>, eventlog::Error> {
    let mut recorded = Vec::new();
    for r in detect(reports, log, now, rule).await? {
        let result = match log
            .append(
                &named_stream(ANALYSIS_STREAM),
                ExpectedVersion::Any,
                vec![event(&r)],
            )
            .await
        {
            Ok(result) => result,
            // The same complaints raised before with other content (another window
            // setting): raised already.
            Err(eventlog::Error::IdempotencyConflict { .. }) => continue,
            Err(e) => return Err(e),
        };
        if !result.deduplicated {
            tracing::info!(product = %r.product, unit = %r.unit, cause = %r.cause, complaints = r.complaints.len(), "repeated root cause");
            metrics::counter!("complaints_repeated_causes_recorded_total").increment(1);
            recorded.push(r);
        }
    }
    Ok(recorded)
}

fn now(clock: &dyn Clock) -> Timestamp {
    Timestamp::from_microsecond(clock.now().as_micros()).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Runs the rule until `stop` fires or the log closes: once the reports projection has
/// applied the log as it stood at the start (stale findings must not be raised), then
/// after it applies new events, at most once per [`MIN_INTERVAL`]; after a failure, again
/// after [`MIN_INTERVAL`].
pub async fn run(
    reports: Arc<Reports>,
    log: Arc<dyn EventLog>,
    clock: Arc<dyn Clock>,
    rule: RepeatRule,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let start = match log.head().await {
        Ok(head) => head,
        Err(e) => {
            tracing::error!(error = %e, "the repeated-cause rule cannot read the log's head: not running");
            return;
        }
    };
    tokio::select! {
        () = reports.wait_for(start) => {}
        _ = stop.changed() => return,
    }
    let mut changes = reports.progress().changes();
    loop {
        // Changes from here on wake the next look.
        changes.borrow_and_update();
        let failed = match record(&reports, &*log, now(&*clock), rule).await {
            Ok(_) => false,
            Err(eventlog::Error::Closed) => return,
            Err(e) => {
                tracing::error!(error = %e, "the repeated-cause rule failed; retrying");
                true
            }
        };
        tokio::select! {
            () = tokio::time::sleep(MIN_INTERVAL) => {}
            _ = stop.changed() => return,
        }
        if failed {
            continue;
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}
