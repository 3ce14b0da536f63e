//! Views of a past moment, for auditors: what the firm knew at T, by **recorded** time.
//!
//! A complaint as of T is its stream up to the last event recorded at or before T
//! ([`crate::Workflow::get_as_of`]); the SLA board and the regulator queue as of T are
//! replayed from position 1 up to the last event recorded at or before T, with either the
//! rules recorded in the log as in force then, or today's rules applied to the past.

use std::sync::Arc;

use complaints_events::DecodeError;
use complaints_projections::board::SlaBoard;
use complaints_projections::queue::RegulatorQueue;
use complaints_projections::{Decoded, Projection};
use complaints_sla::Engine;
use eventlog::{Direction, EventLog, Position, Timestamp};

use crate::rules;

/// Records read from the log per page of a replay.
const PAGE: usize = 1024;

/// Why a view of the past could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AsOfError {
    #[error(transparent)]
    Log(#[from] eventlog::Error),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The rules recorded in the log do not load in this build.
    #[error("the rules recorded at position {position} do not load: {reason}")]
    Rules { position: Position, reason: String },
}

/// Which rules a past view computes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesChoice {
    /// The rules recorded in the log as in force at the moment (the default).
    AsRecorded,
    /// Today's rules, applied to the past.
    Current,
}

/// The rules a past view computes with.
#[derive(Clone)]
pub struct RulesAt {
    pub engine: Arc<Engine>,
    /// True when the view follows the rules recorded in the log as they come by.
    pub follow_recorded: bool,
    /// Where they came from, for the caller to show.
    pub description: String,
}

/// The rules for a view of `at`: as recorded then, or `current`.
pub async fn rules_at(
    log: &dyn EventLog,
    at: Timestamp,
    choice: RulesChoice,
    current: Arc<Engine>,
) -> Result<RulesAt, AsOfError> {
    if choice == RulesChoice::Current {
        return Ok(RulesAt {
            engine: current,
            follow_recorded: false,
            description: "current".into(),
        });
    }
    Ok(match rules::in_force_at(log, at).await? {
        Some((position, sources)) => RulesAt {
            engine: Arc::new(sources.engine().map_err(|e| AsOfError::Rules {
                position,
                reason: e.to_string(),
            })?),
            follow_recorded: true,
            description: format!("recorded at position {position}"),
        },
        None => RulesAt {
            engine: Arc::new(Engine::built_in()),
            follow_recorded: true,
            description: "built-in (no rules recorded yet at that time)".into(),
        },
    })
}

/// The first position recorded at or after `at` (head + 1 if none): `recorded_at` never
/// decreases along the log, so a binary search over positions finds it.
pub async fn first_position_at_or_after(
    log: &dyn EventLog,
    at: Timestamp,
) -> eventlog::Result<Position> {
    let (mut low, mut high) = (1, log.head().await? + 1);
    while low < high {
        let mid = low + (high - low) / 2;
        let record = log.read_all(mid, Direction::Forward, 1).await?;
        match record.first() {
            Some(r) if r.recorded_at < at => low = mid + 1,
            _ => high = mid,
        }
    }
    Ok(low)
}

/// The last position recorded at or before `at` (0 if none).
pub async fn position_at(log: &dyn EventLog, at: Timestamp) -> eventlog::Result<Position> {
    let after = Timestamp::from_micros(at.as_micros().saturating_add(1));
    Ok(first_position_at_or_after(log, after).await? - 1)
}

/// Feeds every event recorded at or before `at` to `projection`, in order, in decoded
/// batches; returns the last position fed (0 if none).
pub async fn replay_until(
    log: &dyn EventLog,
    at: Timestamp,
    projection: &dyn Projection,
) -> Result<Position, AsOfError> {
    let mut from = 1;
    let mut last = 0;
    loop {
        let mut page = log.read_all(from, Direction::Forward, PAGE).await?;
        let Some(end) = page.last().map(|r| r.position) else {
            return Ok(last);
        };
        let cut = page.iter().position(|r| r.recorded_at > at);
        if let Some(cut) = cut {
            page.truncate(cut);
        }
        let batch = page
            .into_iter()
            .map(|record| {
                let position = record.position;
                Decoded::decode(record).map_err(|e| e.at(position))
            })
            .collect::<Result<Vec<_>, _>>()?;
        projection.apply_batch(&batch)?;
        last = batch.last().map_or(last, |d| d.record.position);
        if cut.is_some() {
            return Ok(last);
        }
        from = end + 1;
    }
}

/// The SLA board as it stood at `at`, computed with `rules`: replayed from the start as
/// the projection saw it (recorded rules switch in as their events come by, when followed).
pub async fn board_as_of(
    log: &dyn EventLog,
    at: Timestamp,
    rules: &RulesAt,
) -> Result<SlaBoard, AsOfError> {
    let board = if rules.follow_recorded {
        SlaBoard::new(rules.engine.clone())
    } else {
        SlaBoard::with_fixed_rules(rules.engine.clone())
    };
    replay_until(log, at, &board).await?;
    Ok(board)
}

/// The regulator-transfer queue as it stood at `at`.
pub async fn queue_as_of(log: &dyn EventLog, at: Timestamp) -> Result<RegulatorQueue, AsOfError> {
    let queue = RegulatorQueue::default();
    replay_until(log, at, &queue).await?;
    Ok(queue)
}
