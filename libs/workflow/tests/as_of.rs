//! Views of the past from checkpoints: a board or queue as of any moment, started from the
//! last checkpoint the projections took before it, equals the same view replayed from
//! position 1, with the recorded rules and with today's; damaged checkpoints and those of
//! another log are passed over.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::path::Path;
use std::sync::Arc;

use complaints_domain::model::*;
use complaints_domain::{Change, Event};
use complaints_events::codec;
use complaints_projections::board::SlaBoard;
use complaints_projections::checkpoint::Checkpoints;
use complaints_projections::{Projection, Projections};
use complaints_sla::{Engine, RuleSources};
use complaints_workflow::as_of::{self, RulesAt, RulesChoice};
use complaints_workflow::{rules, transitions};
use eventlog::{Direction, EventLog, ExpectedVersion, ManualClock, NewEvent, StreamId, Timestamp};
use eventlog_sled::{SledConfig, SledEventLog};
use jiff::SignedDuration;
use uuid::Uuid;

const EVERY: u64 = 7;

fn log_time(t: jiff::Timestamp) -> Timestamp {
    Timestamp::from_micros(t.as_microsecond())
}

/// Forty days of complaints under two regimes (some answered late, some referred to a
/// regulator), with the SLA watcher recording crossings as a service does, and the
/// projections taking a checkpoint every [`EVERY`] positions in `checkpoints`.
async fn history(dir: &Path, checkpoints: &Checkpoints) -> Arc<dyn EventLog> {
    let start: jiff::Timestamp = "2026-01-05T09:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(log_time(start)));
    let log: Arc<dyn EventLog> =
        Arc::new(SledEventLog::open_with_clock(SledConfig::new(dir), clock.clone()).unwrap());
    let sources = RuleSources::built_in();
    rules::record_if_changed(&*log, &sources, "service:test")
        .await
        .unwrap();
    let projections = Arc::new(
        Projections::new(Arc::new(sources.engine().unwrap())).with_checkpoints(checkpoints.clone()),
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = projections.spawn(log.clone(), None, 0, stopped);
    let board = projections.get::<SlaBoard>().unwrap();
    let append = |n: u128, at: jiff::Timestamp, change: Change| {
        let log = log.clone();
        async move {
            let id = ComplaintId::new(Uuid::from_u128(n));
            let (event_type, payload) = codec::encode(&Event {
                effective: None,
                at,
                actor: "user:t".into(),
                change,
            });
            let stream = StreamId::new(id.stream()).unwrap();
            log.append(
                &stream,
                ExpectedVersion::Any,
                vec![NewEvent::new(event_type, "user:t", payload)],
            )
            .await
            .unwrap();
        }
    };
    for day in 0..40u128 {
        let now = start
            .checked_add(SignedDuration::from_hours(24 * day as i64))
            .unwrap();
        clock.set(log_time(now));
        let (regime, region) = [("CN-CBIRC", "CN"), ("UK-FCA-DISP", "GB-ENG")][(day % 2) as usize];
        append(
            day + 1,
            now,
            Change::Registered(Box::new(common::register(
                ComplaintId::new(Uuid::from_u128(day + 1)),
                regime,
                region,
                now,
            ))),
        )
        .await;
        append(day + 1, now, Change::Acknowledged).await;
        if day >= 3 && day % 3 != 0 {
            // Answered after 3 days; every third one is left to run late.
            let decision = Decision::Upheld;
            append(
                day - 2,
                now,
                Change::Answered {
                    decision,
                    redress: vec![],
                    delivery: DeliveryMethod::Letter,
                    summary: "s".into(),
                },
            )
            .await;
        }
        if day >= 6 && day % 5 == 0 {
            append(
                day - 5,
                now,
                Change::ReferredToRegulator {
                    body: "FOS".into(),
                    reason: ReferralReason::ComplainantReferred,
                    reference: format!("R-{day}"),
                },
            )
            .await;
        }
        if day >= 9 && day % 4 == 0 {
            append(day - 8, now, Change::Closed).await;
        }
        projections.wait_for(log.head().await.unwrap()).await;
        transitions::record_due(&board, &*log, &*clock)
            .await
            .unwrap();
        projections.wait_for(log.head().await.unwrap()).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    log
}

async fn rules_for(log: &dyn EventLog, choice: RulesChoice) -> RulesAt {
    as_of::rules_at(
        log,
        Timestamp::from_micros(0),
        choice,
        Arc::new(Engine::built_in()),
    )
    .await
    .unwrap()
}

/// When the log's last event was recorded.
async fn last_recorded(log: &dyn EventLog) -> Timestamp {
    log.read_all(log.head().await.unwrap(), Direction::Forward, 1)
        .await
        .unwrap()[0]
        .recorded_at
}

/// Every view of the past from `checkpoints` equals the replay from position 1; returns
/// how many started from a checkpoint.
async fn compare_every_moment(log: &dyn EventLog, checkpoints: &Checkpoints) -> usize {
    let records = log
        .read_all(1, Direction::Forward, usize::MAX)
        .await
        .unwrap();
    let mut moments: Vec<Timestamp> = records.iter().map(|r| r.recorded_at).collect();
    moments.dedup();
    moments.insert(0, Timestamp::from_micros(moments[0].as_micros() - 1));
    let mut used = 0;
    for choice in [RulesChoice::AsRecorded, RulesChoice::Current] {
        let rules = rules_for(log, choice).await;
        for &at in &moments {
            let whole = as_of::board_as_of(log, at, &rules, None).await.unwrap();
            let checked = as_of::board_as_of(log, at, &rules, Some(checkpoints))
                .await
                .unwrap();
            assert_eq!(whole.from_checkpoint, None);
            assert!(
                checked.view.save().unwrap() == whole.view.save().unwrap(),
                "the board as of {at:?} ({choice:?}) from checkpoint {:?}",
                checked.from_checkpoint
            );
            let whole_queue = as_of::queue_as_of(log, at, None).await.unwrap();
            let queue = as_of::queue_as_of(log, at, Some(checkpoints))
                .await
                .unwrap();
            assert!(
                queue.view.save().unwrap() == whole_queue.view.save().unwrap(),
                "the queue as of {at:?}"
            );
            assert_eq!(queue.from_checkpoint, checked.from_checkpoint);
            // The last checkpoint at or before the moment's position, when there is one.
            let cut = as_of::position_at(log, at).await.unwrap();
            let expected = checkpoints.positions().into_iter().rfind(|c| *c <= cut);
            assert_eq!(
                checked.from_checkpoint, expected,
                "as of {at:?}, at position {cut}"
            );
            used += usize::from(expected.is_some());
        }
    }
    used
}

#[tokio::test]
async fn a_view_of_the_past_from_a_checkpoint_equals_the_replay_from_position_1() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = Checkpoints::new(dir.path().join("as-of"), EVERY);
    let log = history(&dir.path().join("log"), &checkpoints).await;
    let head = log.head().await.unwrap();
    let taken = checkpoints.positions();
    // One per multiple of EVERY passed (the feeder's batches end past them).
    assert!(
        taken.len() as u64 >= head / EVERY / 2,
        "{} checkpoints for {head} events",
        taken.len()
    );
    assert!(taken.windows(2).all(|w| w[1] / EVERY > w[0] / EVERY));
    // The history holds what makes a board: crossings recorded, referrals.
    let records = log
        .read_all(1, Direction::Forward, usize::MAX)
        .await
        .unwrap();
    assert!(records.iter().any(|r| r.event_type == "sla.clock_breached"));
    assert!(records.iter().any(|r| r.event_type == "sla.clock_at_risk"));
    let used = compare_every_moment(&*log, &checkpoints).await;
    assert!(used > 50, "only {used} views started from a checkpoint");

    // A damaged checkpoint is passed over for the one before it.
    let last = *taken.last().unwrap();
    let file = dir.path().join("as-of").join(format!("{last:020}.snap"));
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&file, bytes).unwrap();
    let rules = rules_for(&*log, RulesChoice::AsRecorded).await;
    let now = records.last().unwrap().recorded_at;
    let past = as_of::board_as_of(&*log, now, &rules, Some(&checkpoints))
        .await
        .unwrap();
    assert_eq!(past.from_checkpoint, Some(taken[taken.len() - 2]));
    let whole = as_of::board_as_of(&*log, now, &rules, None).await.unwrap();
    assert!(
        past.view.save().unwrap() == whole.view.save().unwrap(),
        "the views differ"
    );

    // So are a cut one (its sections past its end) and one whose header is altered (read
    // before the rest): each time the view starts from the one before, and is the same.
    let file_at = |i: usize| {
        dir.path()
            .join("as-of")
            .join(format!("{:020}.snap", taken[taken.len() - i]))
    };
    let cut = std::fs::read(file_at(2)).unwrap();
    std::fs::write(file_at(2), &cut[..cut.len() / 2]).unwrap();
    let mut header = std::fs::read(file_at(3)).unwrap();
    header[14] ^= 0x01;
    std::fs::write(file_at(3), header).unwrap();
    let past = as_of::board_as_of(&*log, now, &rules, Some(&checkpoints))
        .await
        .unwrap();
    assert_eq!(past.from_checkpoint, Some(taken[taken.len() - 4]));
    assert!(
        past.view.save().unwrap() == whole.view.save().unwrap(),
        "the views differ"
    );
    let queue = as_of::queue_as_of(&*log, now, Some(&checkpoints))
        .await
        .unwrap();
    let whole_queue = as_of::queue_as_of(&*log, now, None).await.unwrap();
    assert_eq!(queue.from_checkpoint, Some(taken[taken.len() - 4]));
    assert!(queue.view.save().unwrap() == whole_queue.view.save().unwrap());
}

#[tokio::test]
async fn checkpoints_of_another_log_are_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = Checkpoints::new(dir.path().join("as-of"), EVERY);
    let log = history(&dir.path().join("log"), &checkpoints).await;
    // Another log with the same shape (same rules, same lives, other event ids).
    let other = Checkpoints::new(dir.path().join("other-as-of"), EVERY);
    let other_log = history(&dir.path().join("other-log"), &other).await;
    drop(other_log);
    assert!(!other.positions().is_empty());
    let rules = rules_for(&*log, RulesChoice::AsRecorded).await;
    let now = last_recorded(&*log).await;
    let past = as_of::board_as_of(&*log, now, &rules, Some(&other))
        .await
        .unwrap();
    assert_eq!(
        past.from_checkpoint, None,
        "a checkpoint of another log was used"
    );
    let whole = as_of::board_as_of(&*log, now, &rules, None).await.unwrap();
    assert!(
        past.view.save().unwrap() == whole.view.save().unwrap(),
        "the views differ"
    );
}

/// The board of the whole history (in `dir`), the rules it was computed with, and when
/// the history's last event was recorded.
async fn board_at_the_end(dir: &Path) -> (Arc<SlaBoard>, RulesAt, Timestamp) {
    let checkpoints = Checkpoints::new(dir.join("as-of"), EVERY);
    let log = history(&dir.join("log"), &checkpoints).await;
    let rules = rules_for(&*log, RulesChoice::AsRecorded).await;
    let end = last_recorded(&*log).await;
    let board = as_of::board_as_of(&*log, end, &rules, None)
        .await
        .unwrap()
        .view;
    (board, rules, end)
}

#[tokio::test]
async fn the_boards_figures_are_the_same_counted_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    let (board, _, end) = board_at_the_end(dir.path()).await;
    let zone = jiff::tz::TimeZone::get("Europe/London").unwrap();
    let end = jiff::Timestamp::from_microsecond(end.as_micros()).unwrap();
    for days in [-30, -3, 0, 2, 20] {
        let now = end
            .checked_add(SignedDuration::from_hours(24 * days))
            .unwrap();
        let whole = board.figures_in_parts(now, &zone, 1);
        assert!(whole.complaints >= 40 && whole.median_time_to_answer.is_some());
        assert!(!whole.breached_by_regime.is_empty(), "{whole:?}");
        for parts in [2, 3, 7, 100] {
            assert_eq!(
                board.figures_in_parts(now, &zone, parts),
                whole,
                "in {parts} parts"
            );
        }
        assert_eq!(board.figures_in(now, &zone), whole);
    }
}

#[tokio::test]
async fn a_board_saved_in_parts_restores_to_the_same_board_whatever_the_parts() {
    let dir = tempfile::tempdir().unwrap();
    let (board, rules, _) = board_at_the_end(dir.path()).await;
    let whole = board.state();
    assert!(
        whole.entries.len() >= 40,
        "{} complaints",
        whole.entries.len()
    );
    let (position, _) = board.save().unwrap();
    for per_part in [1, 3, 7, 1_000_000] {
        let (at, bytes) = board.save_in_parts(per_part).unwrap();
        assert_eq!(at, position);
        let restored = SlaBoard::new(rules.engine.clone());
        restored.restore(at, &bytes).unwrap();
        assert!(restored.state() == whole, "saved in parts of {per_part}");
        assert_eq!(restored.position(), position);
    }
    // A part cut short is refused, not read as fewer complaints.
    let (at, mut bytes) = board.save_in_parts(3).unwrap();
    bytes.truncate(bytes.len() - 10);
    assert!(SlaBoard::new(rules.engine.clone())
        .restore(at, &bytes)
        .is_err());
}
