//! Views of a past moment, for auditors: what the firm knew at T, by **recorded** time.
//!
//! A complaint as of T is its stream up to the last event recorded at or before T
//! ([`crate::Workflow::get_as_of`]); the SLA board and the regulator queue as of T are
//! replayed from position 1 up to the last event recorded at or before T, with either the
//! rules recorded in the log as in force then, or today's rules applied to the past.
//!
//! With [`Checkpoints`] (taken by the service's projections along the log), the board and
//! queue start from the last usable checkpoint at or before the moment instead of
//! position 1 and replay only what follows it: the same view (a restored board recomputes
//! as its snapshot restore does), at a cost bounded by the checkpoints' spacing rather
//! than the log's length.

use std::sync::Arc;

use complaints_events::stored::RULES_LOADED;
use complaints_events::DecodeError;
use complaints_projections::board::SlaBoard;
use complaints_projections::checkpoint::Checkpoints;
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
    replay_between(log, 1, at, projection).await
}

/// [`replay_until`] from position `from` on (the projection stands at `from - 1`).
async fn replay_between(
    log: &dyn EventLog,
    mut from: Position,
    at: Timestamp,
    projection: &dyn Projection,
) -> Result<Position, AsOfError> {
    let mut last = from - 1;
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

/// A view of a past moment, and the checkpoint it started from (`None`: position 1).
pub struct Past<T> {
    pub view: T,
    pub from_checkpoint: Option<Position>,
}

/// Replays `projection` up to `at`: from the last usable checkpoint at or before the last
/// position recorded at or before `at` when there is one (returned), else from the start.
/// Only logs that begin with their rules use checkpoints: the projections that took them
/// started with the service's rules, a view of the past with the rules in force at the
/// moment, and the two agree on every event once rules are recorded.
async fn replay_past(
    log: &dyn EventLog,
    at: Timestamp,
    checkpoints: Option<&Checkpoints>,
    projection: &dyn Projection,
) -> Result<Option<Position>, AsOfError> {
    let mut from_checkpoint = None;
    let first = log.read_all(1, Direction::Forward, 1).await?;
    if let (Some(checkpoints), true) = (
        checkpoints,
        first.first().is_some_and(|r| r.event_type == RULES_LOADED),
    ) {
        let cut = position_at(log, at).await?;
        if let Some(snapshot) = checkpoints.at_or_before(log, cut).await {
            let restored = snapshot
                .section(projection.name())
                .ok_or_else(|| DecodeError(format!("the checkpoint has no {}", projection.name())))
                .and_then(|bytes| projection.restore(snapshot.position, bytes));
            match restored {
                Ok(()) => from_checkpoint = Some(snapshot.position),
                Err(e) => {
                    tracing::warn!(error = %e, position = snapshot.position, "a checkpoint cannot be restored; replaying from position 1");
                    projection.reset();
                }
            }
        }
    }
    replay_between(log, from_checkpoint.unwrap_or(0) + 1, at, projection).await?;
    Ok(from_checkpoint)
}

/// The SLA board as it stood at `at`, computed with `rules`, as the projection saw it
/// (recorded rules switch in as their events come by, when followed): replayed from the
/// last checkpoint before it, or from the start.
pub async fn board_as_of(
    log: &dyn EventLog,
    at: Timestamp,
    rules: &RulesAt,
    checkpoints: Option<&Checkpoints>,
) -> Result<Past<SlaBoard>, AsOfError> {
    let board = if rules.follow_recorded {
        SlaBoard::new(rules.engine.clone())
    } else {
        SlaBoard::with_fixed_rules(rules.engine.clone())
    };
    let from_checkpoint = replay_past(log, at, checkpoints, &board).await?;
    Ok(Past {
        view: board,
        from_checkpoint,
    })
}

/// The regulator-transfer queue as it stood at `at`: replayed from the last checkpoint
/// before it, or from the start.
pub async fn queue_as_of(
    log: &dyn EventLog,
    at: Timestamp,
    checkpoints: Option<&Checkpoints>,
) -> Result<Past<RegulatorQueue>, AsOfError> {
    let queue = RegulatorQueue::default();
    let from_checkpoint = replay_past(log, at, checkpoints, &queue).await?;
    Ok(Past {
        view: queue,
        from_checkpoint,
    })
}
