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
use complaints_projections::snapshot::SnapshotStore;
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

/// The events recorded at or before `at` in the page of the log from position `from`,
/// decoded; and the position the next page starts at, `None` when `at` or the head is
/// reached.
async fn read_page(
    log: &dyn EventLog,
    from: Position,
    at: Timestamp,
) -> Result<(Vec<Decoded>, Option<Position>), AsOfError> {
    let mut page = log.read_all(from, Direction::Forward, PAGE).await?;
    let Some(end) = page.last().map(|r| r.position) else {
        return Ok((Vec::new(), None));
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
    Ok((batch, cut.is_none().then_some(end + 1)))
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
        let (batch, next) = read_page(log, from, at).await?;
        if !batch.is_empty() {
            projection.apply_batch(&batch)?;
            last = batch.last().map_or(last, |d| d.record.position);
        }
        match next {
            Some(next) => from = next,
            None => return Ok(last),
        }
    }
}

/// A view of a past moment, and the checkpoint it started from (`None`: position 1).
pub struct Past<T> {
    pub view: Arc<T>,
    pub from_checkpoint: Option<Position>,
}

/// Pages of decoded events a replay from a checkpoint holds ahead of the projection at
/// the most (while the checkpoint is read and restored, then while pages are applied).
const AHEAD: usize = 64;

/// Why a replay from a checkpoint on a blocking thread stopped.
enum Stopped {
    /// The checkpoint could not be used: the view starts from an earlier one.
    Unusable(String),
    /// An event could not be applied: the view fails, as from position 1.
    Apply(DecodeError),
}

/// Restores `projection` from the checkpoint at `position` (`store`) and replays the events
/// after it up to `at`, on two cores: a blocking thread reads the file and restores it
/// while another checks the file's hash, then applies pages as they come; this task reads
/// and decodes the pages meanwhile. `Ok(false)`: the checkpoint is unusable (warned
/// about), and the projection must be reset.
async fn replay_from_checkpoint<P: Projection>(
    log: &dyn EventLog,
    at: Timestamp,
    position: Position,
    store: SnapshotStore,
    projection: Arc<P>,
) -> Result<bool, AsOfError> {
    let (pages, mut received) = tokio::sync::mpsc::channel::<Vec<Decoded>>(AHEAD);
    let file = store.path();
    let worker = tokio::task::spawn_blocking(move || {
        store
            .read_beside(position, |snapshot| {
                snapshot
                    .section(projection.name())
                    .ok_or_else(|| format!("the checkpoint has no {}", projection.name()))
                    .and_then(|bytes| {
                        projection
                            .restore(position, bytes)
                            .map_err(|e| e.to_string())
                    })
            })
            .map_err(|e| e.to_string())
            .and_then(|restored| restored)
            .map_err(Stopped::Unusable)?;
        while let Some(page) = received.blocking_recv() {
            projection.apply_batch(&page).map_err(Stopped::Apply)?;
        }
        Ok(())
    });
    let mut from = position + 1;
    loop {
        let (page, next) = read_page(log, from, at).await?;
        // A send fails when the worker stopped: its result says why.
        if !page.is_empty() && pages.send(page).await.is_err() {
            break;
        }
        match next {
            Some(next) => from = next,
            None => break,
        }
    }
    drop(pages);
    let why = match worker.await {
        Ok(Ok(())) => return Ok(true),
        Ok(Err(Stopped::Apply(e))) => return Err(e.into()),
        Ok(Err(Stopped::Unusable(why))) => why,
        Err(e) => format!("its restore failed: {e}"),
    };
    tracing::warn!(file = %file.display(), position, error = %why, "a checkpoint cannot be restored; passed over");
    Ok(false)
}

/// Replays `projection` up to `at`: from the last usable checkpoint at or before the last
/// position recorded at or before `at` when there is one (returned), else from the start.
/// Only logs that begin with their rules use checkpoints: the projections that took them
/// started with the service's rules, a view of the past with the rules in force at the
/// moment, and the two agree on every event once rules are recorded.
async fn replay_past<P: Projection>(
    log: &dyn EventLog,
    at: Timestamp,
    checkpoints: Option<&Checkpoints>,
    projection: Arc<P>,
) -> Result<Option<Position>, AsOfError> {
    let first = log.read_all(1, Direction::Forward, 1).await?;
    let Some(checkpoints) =
        checkpoints.filter(|_| first.first().is_some_and(|r| r.event_type == RULES_LOADED))
    else {
        replay_between(log, 1, at, &*projection).await?;
        return Ok(None);
    };
    let cut = position_at(log, at).await?;
    let mut before = cut;
    while let Some((position, store)) = checkpoints.peek_at_or_before(log, before).await {
        if replay_from_checkpoint(log, at, position, store, projection.clone()).await? {
            return Ok(Some(position));
        }
        projection.reset();
        before = position - 1;
    }
    replay_between(log, 1, at, &*projection).await?;
    Ok(None)
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
    let board = Arc::new(if rules.follow_recorded {
        SlaBoard::new(rules.engine.clone())
    } else {
        SlaBoard::with_fixed_rules(rules.engine.clone())
    });
    let from_checkpoint = replay_past(log, at, checkpoints, board.clone()).await?;
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
    let queue = Arc::new(RegulatorQueue::default());
    let from_checkpoint = replay_past(log, at, checkpoints, queue.clone()).await?;
    Ok(Past {
        view: queue,
        from_checkpoint,
    })
}
