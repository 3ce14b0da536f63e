//! Property: projections rebuilt from the log equal the live ones. Random lives of a few
//! complaints under several regimes, with time passing, SLA crossings recorded by the
//! watcher, rule-required referrals, a change of rules, and restarts from snapshots in
//! between; the complaint list, the SLA board and the regulator queue kept live (in
//! batches, restarted from their snapshots) must end exactly as a rebuild from position 1,
//! one event at a time, makes them.
//!
//! Also: a snapshot that is torn, altered or taken of another log is not used.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use complaints_projections::Projection;
use std::collections::BTreeSet;
use std::sync::Arc;

use complaints_domain::model::*;
use complaints_domain::{Command, Register, Rules};
use complaints_projections::board::SlaBoard;
use complaints_projections::queue::RegulatorQueue;
use complaints_projections::reports::Reports;
use complaints_projections::snapshot::SnapshotStore;
use complaints_projections::{list::ComplaintList, Projections};
use complaints_sla::{RuleFile, RuleSources};
use complaints_workflow::{rules, sla, transitions, CommandRequest, Principal, Workflow};
use eventlog::{EventLog, ManualClock, Timestamp as LogTime};
use eventlog_sled::{SledConfig, SledEventLog};
use proptest::prelude::*;
use uuid::Uuid;

const REFER: &str = include_str!("policies/refer-on-breach.toml");

const CN_TEN_DAYS: &str = include_str!("policies/cn-ten-days.toml");

#[derive(Debug, Clone)]
enum Op {
    Register { complaint: u8, regime: u8 },
    Step { complaint: u8, step: u8 },
    Advance { minutes: u32 },
    ChangeRules,
    Restart,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        2 => (0u8..4, 0u8..3).prop_map(|(complaint, regime)| Op::Register { complaint, regime }),
        5 => (0u8..4, 0u8..13).prop_map(|(complaint, step)| Op::Step { complaint, step }),
        2 => (1u32..30_000).prop_map(|minutes| Op::Advance { minutes }),
        1 => Just(Op::ChangeRules),
        1 => Just(Op::Restart),
    ];
    proptest::collection::vec(op, 1..30)
}

fn step(step: u8, now: jiff::Timestamp) -> Command {
    match step {
        0 => Command::Acknowledge,
        1 => Command::Assign {
            unit: "u".into(),
            handler: "h".into(),
        },
        2 => Command::ClassifyComplex { reason: "r".into() },
        3 => Command::SendHoldingResponse {
            reason: "r".into(),
            delivery: DeliveryMethod::Email,
        },
        4 => Command::RequestExtension {
            days: 10,
            reason: "r".into(),
        },
        5 => Command::PauseClock {
            reason: PauseReason::ExternalAppraisal,
            complainant_notified_at: Some(now),
        },
        6 => Command::ResumeClock,
        7 => Command::AddNewFacts {
            facts: "more".into(),
        },
        8 => Command::Answer {
            decision: Decision::Rejected,
            redress: vec![],
            delivery: DeliveryMethod::Letter,
            summary: "s".into(),
        },
        9 => Command::RequestReview { reason: "r".into() },
        10 => Command::ReferToRegulator {
            body: "FOS".into(),
            reason: ReferralReason::ComplainantReferred,
            reference: "ref".into(),
        },
        11 => Command::RecordSatisfaction {
            rating: 4,
            comment: "quick".into(),
        },
        _ => Command::Withdraw {
            reason: String::new(),
        },
    }
}

fn register(id: ComplaintId, regime: u8, at: jiff::Timestamp) -> Register {
    let (regime, region) = [
        ("UK-FCA-DISP", "GB-ENG"),
        ("CN-CBIRC", "CN"),
        ("TEST-REFER", "CN"),
    ][regime as usize % 3];
    common::register(id, regime, region, at)
}

async fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let start: jiff::Timestamp = "2026-03-02T02:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(LogTime::from_micros(
        start.as_microsecond(),
    )));
    let log: Arc<dyn EventLog> = Arc::new(
        SledEventLog::open_with_clock(SledConfig::new(dir.path().join("log")), clock.clone())
            .unwrap(),
    );
    let mut sources = RuleSources::built_in();
    sources.policies.push(RuleFile {
        name: "operator/refer.toml".into(),
        text: REFER.into(),
    });
    let engine = Arc::new(sources.engine().unwrap());
    rules::record_if_changed(&*log, &sources, "test")
        .await
        .unwrap();
    let workflow = Workflow::new(log.clone(), clock.clone(), Rules::default())
        .with_regimes(sla::regimes(&engine));
    // Snapshots every few events, and at every stop.
    let store = SnapshotStore::new(dir.path().join("projections"));
    let start_projections = || {
        let projections = Arc::new(Projections::new(engine.clone()));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = projections.spawn(log.clone(), Some(store.clone()), 5, stopped);
        (projections, stop, task)
    };
    let (mut projections, mut stop, mut task) = start_projections();
    let mut restored = 0;
    let principal = Principal {
        id: "user:p".into(),
        roles: BTreeSet::from([Role::Intake, Role::Handler, Role::Supervisor]),
    };
    let mut now = start;
    let mut changed = false;
    for op in ops {
        match op {
            Op::Register { complaint, regime } => {
                let id = ComplaintId::new(Uuid::from_u128(u128::from(complaint) + 1));
                let _ = workflow
                    .execute(CommandRequest {
                        effective: None,
                        complaint: id,
                        command: Command::Register(Box::new(register(id, regime, now))),
                        request_id: Uuid::new_v4(),
                        expected_version: None,
                        principal: principal.clone(),
                    })
                    .await;
            }
            Op::Step { complaint, step: s } => {
                let id = ComplaintId::new(Uuid::from_u128(u128::from(complaint) + 1));
                let _ = workflow
                    .execute(CommandRequest {
                        effective: None,
                        complaint: id,
                        command: step(s, now),
                        request_id: Uuid::new_v4(),
                        expected_version: None,
                        principal: principal.clone(),
                    })
                    .await;
            }
            Op::Advance { minutes } => {
                now = now
                    .checked_add(jiff::SignedDuration::from_mins(i64::from(minutes)))
                    .unwrap();
                clock.set(LogTime::from_micros(now.as_microsecond()));
                // The watcher's work: record the crossings due by now (board caught up).
                let board = &projections.get::<SlaBoard>().unwrap();
                board.wait_for(log.head().await.unwrap()).await;
                transitions::record_due(board, &*log, &*clock)
                    .await
                    .unwrap();
            }
            Op::ChangeRules => {
                changed = !changed;
                let mut next = sources.clone();
                if changed {
                    next.policies.push(RuleFile {
                        name: "operator/cn.toml".into(),
                        text: CN_TEN_DAYS.into(),
                    });
                }
                rules::record_if_changed(&*log, &next, "test")
                    .await
                    .unwrap();
            }
            Op::Restart => {
                // Stop (saving a snapshot where they stand), start again from it.
                stop.send(true).unwrap();
                task.await.unwrap();
                let saved = store.load(&*log).await.unwrap().map(|s| s.position);
                (projections, stop, task) = start_projections();
                projections
                    .get::<SlaBoard>()
                    .unwrap()
                    .wait_for(log.head().await.unwrap())
                    .await;
                let from = projections.started_from().unwrap();
                assert_eq!(
                    from,
                    saved.map_or(1, |p| p + 1),
                    "started from the snapshot"
                );
                restored += u32::from(from > 1);
            }
        }
    }
    let head = log.head().await.unwrap();
    projections
        .get::<ComplaintList>()
        .unwrap()
        .wait_for(head)
        .await;
    projections.get::<SlaBoard>().unwrap().wait_for(head).await;
    projections
        .get::<RegulatorQueue>()
        .unwrap()
        .wait_for(head)
        .await;
    projections.get::<Reports>().unwrap().wait_for(head).await;
    drop(stop);
    RESTORED.fetch_add(restored, std::sync::atomic::Ordering::Relaxed);

    let (list, board, queue, reports) = rebuild_one_by_one(&*log, engine).await;
    assert_eq!(
        list.state(),
        projections.get::<ComplaintList>().unwrap().state()
    );
    assert_eq!(
        board.state(),
        projections.get::<SlaBoard>().unwrap().state()
    );
    assert_eq!(
        queue.state(),
        projections.get::<RegulatorQueue>().unwrap().state()
    );
    // The reports projection, as it saves itself (its facts with both their times).
    let live = projections.get::<Reports>().unwrap();
    assert_eq!(reports.save().unwrap(), live.save().unwrap());
}

/// The projections rebuilt from position 1, one event at a time.
async fn rebuild_one_by_one(
    log: &dyn EventLog,
    engine: Arc<complaints_sla::Engine>,
) -> (ComplaintList, SlaBoard, RegulatorQueue, Reports) {
    let list = ComplaintList::default();
    let board = SlaBoard::new(engine);
    let queue = RegulatorQueue::default();
    let reports = Reports::default();
    for e in log
        .read_all(1, eventlog::Direction::Forward, 100_000)
        .await
        .unwrap()
    {
        list.apply(&e).unwrap();
        board.apply(&e).unwrap();
        queue.apply(&e).unwrap();
        reports.apply(&e).unwrap();
    }
    (list, board, queue, reports)
}

/// Restarts that found a snapshot to start from, over all cases.
static RESTORED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[test]
fn a_rebuild_gives_exactly_what_live_updating_gave() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 32,
        ..ProptestConfig::default()
    });
    runner
        .run(&ops(), |ops| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(run(ops));
            Ok(())
        })
        .unwrap();
    // Not vacuous: some restarts did start from a snapshot.
    assert!(RESTORED.load(std::sync::atomic::Ordering::Relaxed) > 0);
}
