//! The SLA board: its fold matches the full state, and it lists clocks most urgent first.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use complaints_projections::Projection;
use std::collections::BTreeSet;
use std::sync::Arc;

use common::registration;
use complaints_domain::model::*;
use complaints_domain::testing::{command, Values};
use complaints_domain::{decide, evolve, Command, Context, Rules};
use complaints_events::codec;
use complaints_projections::board::{ClockQuery, SlaBoard, StateKind};
use complaints_sla::Engine;
use complaints_workflow::{sla, CommandRequest, Principal, Workflow};
use eventlog::{ChainHash, ManualClock, RecordedEvent, StreamId, Timestamp as LogTime};
use eventlog_sled::{SledConfig, SledEventLog};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use uuid::Uuid;

fn step() -> impl Strategy<Value = Command> {
    command(Values::Plausible)
}

/// `event` of complaint `id` as the log would hand it to the board at `position`.
fn recorded(id: ComplaintId, position: u64, event: &complaints_domain::Event) -> RecordedEvent {
    let (event_type, payload) = codec::encode(event);
    RecordedEvent {
        id: Uuid::new_v4(),
        stream: StreamId::new(id.stream()).unwrap(),
        version: position,
        position,
        event_type: event_type.into(),
        schema_version: 1,
        recorded_at: LogTime::from_micros(event.at.as_microsecond()),
        actor: "user:t".into(),
        correlation_id: String::new(),
        causation_id: String::new(),
        payload,
        checksum: 0,
        prev_hash: ChainHash::GENESIS,
    }
}

proptest! {
    /// The board folds events into facts on its own (compactly); after every event they
    /// equal the facts derived from the domain's full state.
    #[test]
    fn the_boards_fold_equals_the_facts_of_the_full_state(steps in proptest::collection::vec((step(), 0i64..3 * 86_400, proptest::option::of(0i64..5 * 86_400)), 1..40)) {
        let id = ComplaintId::new(Uuid::from_u128(7));
        let mut now = Timestamp::from_second(1_770_000_000).unwrap();
        let ctx = |now| Context {
            now,
            actor: "user:t".into(),
            roles: BTreeSet::from([Role::Handler, Role::Supervisor]),
            rules: Rules::default(),
            regimes: Default::default(),
            effective: None,
            backdating: None,
        };
        // Steps outside the system may be recorded after they happened (`back` earlier).
        let ctx_back = |now: Timestamp, back: Option<i64>, command: &Command| Context {
            effective: back.filter(|_| command.happens_outside()).map(|b| complaints_domain::Effective {
                at: now.checked_sub(SignedDuration::from_secs(b)).unwrap(),
                reason: Some("recorded late".into()),
            }),
            ..ctx(now)
        };
        let register = registration(id, now);
        let first = decide(None, Command::Register(Box::new(register.clone())), &ctx(now)).unwrap();
        let mut state = evolve(None, &first[0]);
        let board = SlaBoard::with_fixed_rules(Arc::new(Engine::built_in()));
        let mut position = 0;
        let mut fold = |event: &complaints_domain::Event| {
            position += 1;
            board.apply(&recorded(id, position, event)).unwrap();
        };
        fold(&first[0]);
        for (command, advance, back) in steps {
            now = now.checked_add(SignedDuration::from_secs(advance)).unwrap();
            // Approvals need the notice time; give it when asked.
            let command = match command {
                Command::PauseClock { reason: PauseReason::ExternalAppraisal, .. } => Command::PauseClock { reason: PauseReason::ExternalAppraisal, complainant_notified_at: Some(now) },
                other => other,
            };
            let Ok(events) = decide(state.as_ref(), command.clone(), &ctx_back(now, back, &command)) else { continue };
            for event in &events {
                state = evolve(state, event);
                fold(event);
            }
            if matches!(command, Command::RequestExtension { .. }) {
                let approve = Command::ApproveExtension { complainant_notified_at: Some(now) };
                if let Ok(events) = decide(state.as_ref(), approve, &ctx(now)) {
                    for event in &events {
                        state = evolve(state, event);
                        fold(event);
                    }
                }
            }
            let full = state.as_ref().unwrap();
            let entry = board.entry(id).unwrap();
            prop_assert_eq!(&entry.facts, &complaints_projections::board::facts(full));
            prop_assert_eq!(entry.status, full.status);
        }
    }
}

proptest! {
    /// The board keeps ended complaints settled (compact, counted without their clocks).
    /// Whatever the steps of several complaints (ended, reopened, ended again), it
    /// answers exactly as a board that keeps every complaint whole: the entries, the
    /// figures and the charts at a moment before the steps (counted from the recomputed
    /// clocks), right after them and a year later (counted settled), and so does a board
    /// restored from its snapshot.
    #[test]
    fn a_board_settling_ended_complaints_answers_as_one_that_does_not(steps in proptest::collection::vec((0usize..4, step(), 0i64..3 * 86_400, proptest::option::of(0i64..5 * 86_400)), 1..120)) {
        let regimes = [("UK-FCA-DISP", "GB-ENG"), ("CN-CBIRC", "CN"), ("UK-FCA-DISP", "GB-SCT"), ("US-CFPB", "US")];
        let ids: Vec<ComplaintId> = (0..4).map(|i| ComplaintId::new(Uuid::from_u128(70 + i))).collect();
        let start = Timestamp::from_second(1_770_000_000).unwrap();
        let mut now = start;
        let ctx = |now, back: Option<i64>, command: &Command| Context {
            now,
            actor: "user:t".into(),
            roles: BTreeSet::from([Role::Handler, Role::Supervisor]),
            rules: Rules::default(),
            regimes: Default::default(),
            effective: back.filter(|_| command.happens_outside()).map(|b| complaints_domain::Effective {
                at: now.checked_sub(SignedDuration::from_secs(b)).unwrap(),
                reason: Some("recorded late".into()),
            }),
            backdating: None,
        };
        let engine = Arc::new(Engine::built_in());
        let settling = SlaBoard::new(engine.clone());
        let keeping = SlaBoard::new(engine.clone()).never_settling();
        let mut position = 0;
        let mut fold = |id: ComplaintId, event: &complaints_domain::Event| {
            position += 1;
            let record = recorded(id, position, event);
            settling.apply(&record).unwrap();
            keeping.apply(&record).unwrap();
        };
        let mut states = Vec::new();
        for (id, (regime, region)) in ids.iter().zip(regimes) {
            let register = common::register(*id, regime, region, now);
            let first = decide(None, Command::Register(Box::new(register)), &ctx(now, None, &Command::Close)).unwrap();
            states.push(evolve(None, &first[0]));
            fold(*id, &first[0]);
        }
        for (which, command, advance, back) in steps {
            now = now.checked_add(SignedDuration::from_secs(advance)).unwrap();
            let command = match command {
                Command::PauseClock { reason: PauseReason::ExternalAppraisal, .. } => Command::PauseClock { reason: PauseReason::ExternalAppraisal, complainant_notified_at: Some(now) },
                other => other,
            };
            let Ok(events) = decide(states[which].as_ref(), command.clone(), &ctx(now, back, &command)) else { continue };
            for event in &events {
                states[which] = evolve(states[which].take(), event);
                fold(ids[which], event);
            }
        }
        let year_later = now.checked_add(SignedDuration::from_hours(24 * 400)).unwrap();
        let utc = jiff::tz::TimeZone::UTC;
        let restored = SlaBoard::new(engine.clone());
        let (at, bytes) = settling.save().unwrap();
        restored.restore(at, &bytes).unwrap();
        for board in [&settling, &restored] {
            for at in [start, now, year_later] {
                prop_assert_eq!(board.figures_in_parts(at, &utc, 2), keeping.figures_in_parts(at, &utc, 2));
                prop_assert_eq!(board.trends(at, &utc, 70), keeping.trends(at, &utc, 70));
                let page = ClockQuery { page_size: 3, ..Default::default() };
                let first = board.clocks(at, &page);
                prop_assert_eq!(&first, &keeping.clocks(at, &page));
                let next = ClockQuery { after: first.next, ..page };
                prop_assert_eq!(board.clocks(at, &next), keeping.clocks(at, &next));
                prop_assert_eq!(board.crossings_due(at), keeping.crossings_due(at));
            }
            for id in &ids {
                prop_assert_eq!(board.entry(*id), keeping.entry(*id));
            }
            prop_assert_eq!(board.state(), keeping.state());
            let ended = states.iter().flatten().filter(|c| c.status.is_ended()).count();
            prop_assert!(board.settled() <= ended);
        }
        prop_assert_eq!(keeping.settled(), 0);
    }
}

/// A complaint settles when it ends (its clocks stopped: the final response answered,
/// the referral window counted by its due time alone), leaves the settled ones when
/// reopened and settles again when closed again; its entry and the figures stay those of
/// a board that keeps it whole.
#[tokio::test]
async fn an_ended_complaint_settles_and_a_reopen_brings_it_back() {
    let (_dir, log, engine, workflow) = workflow_at_noon();
    let (board, _task) = complaints_projections::spawn(SlaBoard::new(engine.clone()), log.clone());
    let (whole, _task) =
        complaints_projections::spawn(SlaBoard::new(engine).never_settling(), log.clone());
    let principal = Principal {
        id: "user:t".into(),
        roles: BTreeSet::from([Role::Handler, Role::Supervisor]),
    };
    let run = |complaint, command| CommandRequest {
        effective: None,
        complaint,
        command,
        request_id: Uuid::new_v4(),
        expected_version: None,
        principal: principal.clone(),
    };
    let id = ComplaintId::new(Uuid::from_u128(300));
    let steps = [
        Command::Register(Box::new(common::register(
            id,
            "UK-FCA-DISP",
            "GB-ENG",
            t("2026-02-02T09:00:00Z"),
        ))),
        Command::Assign {
            unit: "cards".into(),
            handler: "h".into(),
        },
        Command::Answer {
            decision: Decision::Upheld,
            redress: vec![],
            delivery: DeliveryMethod::Letter,
            summary: "s".into(),
        },
        Command::Close,
        Command::Reopen {
            reason: "new evidence".into(),
        },
    ];
    let mut settled = Vec::new();
    for command in steps {
        workflow.execute(run(id, command)).await.unwrap();
        let head = log_head(&log).await;
        board.wait_for(head).await;
        whole.wait_for(head).await;
        settled.push(board.settled());
        assert_eq!(board.entry(id), whole.entry(id));
        for at in [
            "2026-03-02T12:00:00Z",
            "2026-06-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
        ] {
            assert_eq!(board.figures(t(at)), whole.figures(t(at)), "at {at}");
        }
    }
    assert_eq!(
        settled,
        [0, 0, 0, 1, 0],
        "settled on closing, back on reopening"
    );
    let figures = board.figures(t("2026-06-01T00:00:00Z"));
    assert_eq!(figures.by_state.get("windowopen"), Some(&1), "{figures:?}");
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A workflow on a new sled log whose clock stands at 2026-03-02 12:00 UTC, with the
/// built-in rules (the directory lives as long as the first value).
fn workflow_at_noon() -> (tempfile::TempDir, Arc<SledEventLog>, Arc<Engine>, Workflow) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(LogTime::from_micros(
        t("2026-03-02T12:00:00Z").as_microsecond(),
    )));
    let log = Arc::new(
        SledEventLog::open_with_clock(SledConfig::new(dir.path().join("log")), clock.clone())
            .unwrap(),
    );
    let engine = Arc::new(Engine::built_in());
    let workflow =
        Workflow::new(log.clone(), clock, Rules::default()).with_regimes(sla::regimes(&engine));
    (dir, log, engine, workflow)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_lists_clocks_most_urgent_first_with_figures() {
    let (_dir, log, engine, workflow) = workflow_at_noon();
    let (board, _task) = complaints_projections::spawn(SlaBoard::new(engine), log.clone());
    let principal = Principal {
        id: "user:t".into(),
        roles: BTreeSet::from([Role::Handler]),
    };
    let run = |complaint, command| CommandRequest {
        effective: None,
        complaint,
        command,
        request_id: Uuid::new_v4(),
        expected_version: None,
        principal: principal.clone(),
    };

    // CN-CBIRC, 15 calendar days: received Feb 5 (due Feb 20), Feb 20 (due Mar 7),
    // Feb 25 (due Mar 12, answered), all in Shanghai time.
    let ids: Vec<ComplaintId> = (0..3)
        .map(|i| ComplaintId::new(Uuid::from_u128(100 + i)))
        .collect();
    for (id, received) in ids.iter().zip([
        "2026-02-05T02:00:00Z",
        "2026-02-20T02:00:00Z",
        "2026-02-25T02:00:00Z",
    ]) {
        workflow
            .execute(run(
                *id,
                Command::Register(Box::new(registration(*id, t(received)))),
            ))
            .await
            .unwrap();
    }
    workflow
        .execute(run(
            ids[2],
            Command::Assign {
                unit: "cards".into(),
                handler: "h".into(),
            },
        ))
        .await
        .unwrap();
    workflow
        .execute(run(
            ids[2],
            Command::Answer {
                decision: Decision::Upheld,
                redress: vec![],
                delivery: DeliveryMethod::Letter,
                summary: "s".into(),
            },
        ))
        .await
        .unwrap();
    board.wait_for(log_head(&log).await).await;

    let now = t("2026-03-02T12:00:00Z");
    let page = board.clocks(
        now,
        &ClockQuery {
            page_size: 10,
            ..Default::default()
        },
    );
    let listed: Vec<(ComplaintId, String)> = page
        .items
        .iter()
        .map(|i| (i.id, i.due.due_date.unwrap().to_string()))
        .collect();
    assert_eq!(
        listed,
        vec![
            (ids[0], "2026-02-20".to_string()),
            (ids[1], "2026-03-07".to_string())
        ],
        "answered clocks are not listed; earliest first"
    );
    assert_eq!(
        StateKind::of(&page.items[0].assessment.state),
        StateKind::Breached
    );
    assert_eq!(
        StateKind::of(&page.items[1].assessment.state),
        StateKind::AtRisk
    );

    let breached = board.clocks(
        now,
        &ClockQuery {
            states: vec![StateKind::Breached],
            page_size: 10,
            ..Default::default()
        },
    );
    assert_eq!(
        breached.items.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![ids[0]]
    );
    let first = board.clocks(
        now,
        &ClockQuery {
            page_size: 1,
            ..Default::default()
        },
    );
    assert_eq!(first.items[0].id, ids[0]);
    let second = board.clocks(
        now,
        &ClockQuery {
            page_size: 1,
            after: first.next,
            ..Default::default()
        },
    );
    assert_eq!(second.items[0].id, ids[1]);
    assert!(second.next.is_none());

    let figures = board.figures(now);
    assert_eq!((figures.complaints, figures.open_complaints), (3, 3));
    assert_eq!(figures.by_state.get("breached"), Some(&1));
    assert_eq!(figures.breached_by_regime.get("CN-CBIRC"), Some(&1));
    assert_eq!(
        figures.breach_rate, 0.0,
        "the one stopped clock was on time"
    );
    assert!(figures.median_time_to_answer.is_some());
    assert_eq!(figures.due_today, 0, "the overdue clock is not due today");
    // On 7 March the second clock falls due that day.
    assert_eq!(board.figures(t("2026-03-07T08:00:00Z")).due_today, 1);
}

async fn log_head(log: &Arc<SledEventLog>) -> u64 {
    use eventlog::EventLog;
    log.head().await.unwrap()
}

/// CN-CBIRC version 2 with a 10-day decision clock (an operator's change of rules).
const CN_TEN_DAYS: &str = include_str!("policies/cn-ten-days.toml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_rules_change_recomputes_open_complaints_and_a_rebuild_agrees() {
    use complaints_sla::{RuleFile, RuleSources};
    use complaints_workflow::rules;
    use eventlog::EventLog;

    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(LogTime::from_micros(
        t("2026-02-06T12:00:00Z").as_microsecond(),
    )));
    let log = Arc::new(
        SledEventLog::open_with_clock(SledConfig::new(dir.path().join("log")), clock.clone())
            .unwrap(),
    );
    let built_in = RuleSources::built_in();
    assert!(rules::record_if_changed(&*log, &built_in, "service:test")
        .await
        .unwrap()
        .is_some());
    assert!(
        rules::record_if_changed(&*log, &built_in, "service:test")
            .await
            .unwrap()
            .is_none(),
        "unchanged rules are not recorded again"
    );
    let engine = Arc::new(Engine::built_in());
    let workflow = Workflow::new(log.clone(), clock.clone(), Rules::default())
        .with_regimes(sla::regimes(&engine));
    let (board, _task) = complaints_projections::spawn(SlaBoard::new(engine.clone()), log.clone());
    let id = ComplaintId::new(Uuid::from_u128(7));
    workflow
        .execute(CommandRequest {
            effective: None,
            complaint: id,
            command: Command::Register(Box::new(registration(id, t("2026-02-05T02:00:00Z")))),
            request_id: Uuid::new_v4(),
            expected_version: None,
            principal: Principal {
                id: "user:t".into(),
                roles: BTreeSet::from([Role::Intake]),
            },
        })
        .await
        .unwrap();
    board.wait_for(log.head().await.unwrap()).await;
    let due = |b: &SlaBoard| b.entry(id).unwrap().dues[0].due_date.unwrap().to_string();
    assert_eq!(due(&board), "2026-02-20");

    let mut changed = built_in.clone();
    changed.policies.push(RuleFile {
        name: "operator/cn.toml".into(),
        text: CN_TEN_DAYS.into(),
    });
    clock.set(LogTime::from_micros(
        t("2026-02-07T00:00:00Z").as_microsecond(),
    ));
    rules::record_if_changed(&*log, &changed, "service:test")
        .await
        .unwrap()
        .expect("recorded");
    board.wait_for(log.head().await.unwrap()).await;
    assert_eq!(due(&board), "2026-02-15", "recomputed with the new rules");
    assert_eq!(board.entry(id).unwrap().dues[0].policy_version, 2);

    // A board rebuilt from the log agrees; one with fixed (built-in) rules does not move.
    let rebuilt = SlaBoard::new(engine.clone());
    let fixed = SlaBoard::with_fixed_rules(engine.clone());
    for e in log
        .read_all(1, eventlog::Direction::Forward, 1000)
        .await
        .unwrap()
    {
        rebuilt.apply(&e).unwrap();
        fixed.apply(&e).unwrap();
    }
    assert_eq!(rebuilt.entry(id), board.entry(id));
    assert_eq!(due(&fixed), "2026-02-20");

    // The rules in force at a moment.
    let before = rules::in_force_at(
        &*log,
        LogTime::from_micros(t("2026-02-06T13:00:00Z").as_microsecond()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(before.1, built_in);
    let after = rules::in_force_at(
        &*log,
        LogTime::from_micros(t("2026-02-08T00:00:00Z").as_microsecond()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(after.1, changed);
    assert!(rules::in_force_at(&*log, LogTime::from_micros(0))
        .await
        .unwrap()
        .is_none());
}
