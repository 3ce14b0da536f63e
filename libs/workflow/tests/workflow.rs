//! The workflow over a real (sled) event log.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use complaints_events::codec;
use complaints_projections::Projection;
use std::collections::BTreeSet;
use std::sync::Arc;

use complaints_domain::model::*;
use complaints_domain::{Change, Command, DomainError, Event, Register, Rules};
use complaints_projections::list::{ComplaintList, ListQuery};
use complaints_workflow::{complaint_id_for, CommandRequest, Principal, Workflow, WorkflowError};
use eventlog::{EventLog, ManualClock, Timestamp as LogTime};
use eventlog_sled::{SledConfig, SledEventLog};
use iso_currency::Currency;
use jiff::Timestamp;
use uuid::Uuid;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn registration(id: ComplaintId, unit: &str, category: &str, received: &str) -> Register {
    Register {
        id,
        channel: Channel::Web,
        complainant: Complainant {
            person_id: "person-1".into(),
            name: "Ada Lovelace".into(),
            contact: "ada@example.org".into(),
            id_number: "QQ123456C".into(),
        },
        unit: unit.into(),
        employee: None,
        product: "current account".into(),
        category: category.into(),
        claim: "refund".into(),
        facts: "charged twice".into(),
        received_at: t(received),
        regime: "UK-FCA-DISP".into(),
        region: "GB-ENG".into(),
        regulator: None,
        variant: None,
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    log: Arc<SledEventLog>,
    workflow: Workflow,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(LogTime::from_micros(
        t("2026-03-02T12:00:00Z").as_microsecond(),
    )));
    let log = Arc::new(
        SledEventLog::open_with_clock(SledConfig::new(dir.path().join("log")), clock.clone())
            .unwrap(),
    );
    let workflow = Workflow::new(log.clone(), clock, Rules::default());
    Harness {
        _dir: dir,
        log,
        workflow,
    }
}

fn principal(roles: &[Role]) -> Principal {
    Principal {
        id: "user:bob".into(),
        roles: roles.iter().copied().collect::<BTreeSet<_>>(),
    }
}

fn request(complaint: ComplaintId, command: Command) -> CommandRequest {
    CommandRequest {
        effective: None,
        complaint,
        command,
        request_id: Uuid::new_v4(),
        expected_version: None,
        principal: principal(&[Role::Handler]),
    }
}

/// A new complaint, registered (cards, fees, received 2026-03-02T09:00Z).
async fn registered(h: &Harness) -> ComplaintId {
    let id = ComplaintId::new(Uuid::new_v4());
    h.workflow
        .execute(request(
            id,
            Command::Register(Box::new(registration(
                id,
                "cards",
                "fees",
                "2026-03-02T09:00:00Z",
            ))),
        ))
        .await
        .unwrap();
    id
}

fn every_change() -> Vec<Change> {
    let gbp = |minor| Redress {
        kind: RedressKind::Goodwill,
        amount: Money {
            minor_units: minor,
            currency: Currency::GBP,
        },
    };
    let mut transfer = registration(
        ComplaintId::new(Uuid::from_u128(1)),
        "u",
        "c",
        "2026-03-01T00:00:00Z",
    );
    transfer.channel = Channel::RegulatorTransfer;
    transfer.employee = Some("emp-1".into());
    transfer.regulator = Some(RegulatorTransfer {
        regulator: "FCA".into(),
        reference: "R-1".into(),
        deadline: t("2026-04-01T00:00:00Z"),
    });
    vec![
        Change::Registered(Box::new(transfer)),
        Change::Acknowledged,
        Change::Declined {
            reason: "not a complaint".into(),
        },
        Change::Merged {
            into: ComplaintId::new(Uuid::from_u128(2)),
            reason: "dup".into(),
        },
        Change::Assigned {
            unit: "u".into(),
            handler: "h".into(),
        },
        Change::ClassifiedComplex { reason: "r".into() },
        Change::FindingsRecorded {
            findings: "f".into(),
            root_cause: RootCause::ProcessFailure,
            evidence: vec!["e1".into(), "e2".into()],
        },
        Change::RedressProposed {
            redress: vec![gbp(100), gbp(200)],
            rationale: "r".into(),
        },
        Change::Answered {
            decision: Decision::PartlyUpheld,
            redress: vec![gbp(5)],
            delivery: DeliveryMethod::InPerson,
            summary: "s".into(),
        },
        Change::HoldingResponseSent {
            reason: "r".into(),
            delivery: DeliveryMethod::App,
        },
        Change::ExtensionRequested {
            days: 30,
            reason: "r".into(),
        },
        Change::ExtensionApproved {
            days: 30,
            complainant_notified_at: t("2026-03-01T10:00:00Z"),
        },
        Change::ClockPaused {
            reason: PauseReason::ExternalTesting,
            complainant_notified_at: Some(t("2026-03-01T11:00:00Z")),
        },
        Change::ClockPaused {
            reason: PauseReason::AwaitingCustomer,
            complainant_notified_at: None,
        },
        Change::ClockResumed {
            reason: PauseReason::ExternalTesting,
        },
        Change::NewFactsAdded {
            facts: "more".into(),
        },
        Change::Withdrawn { reason: "".into() },
        Change::ReviewRequested { reason: "r".into() },
        Change::ReviewAnswered {
            outcome: ReviewOutcome::Changed,
            summary: "s".into(),
        },
        Change::ReferredToRegulator {
            body: "FOS".into(),
            reason: ReferralReason::RuleRequired,
            reference: "".into(),
        },
        Change::RegulatorOutcomeRecorded {
            body: "FOS".into(),
            outcome: RegulatorOutcome::Settled,
            reference: "F-9".into(),
        },
        Change::SatisfactionRecorded {
            rating: 5,
            comment: "thank you".into(),
        },
        Change::SatisfactionRecorded {
            rating: 1,
            comment: "".into(),
        },
        Change::Closed,
        Change::Reopened { reason: "r".into() },
    ]
}

#[test]
fn every_event_kind_round_trips_through_the_stored_schema() {
    for change in every_change() {
        let event = Event {
            effective: None,
            at: t("2026-03-02T12:00:00.123456Z"),
            actor: "user:x".into(),
            change,
        };
        let (event_type, bytes) = codec::encode(&event);
        assert_eq!(
            codec::decode(event_type, &bytes).unwrap(),
            event,
            "{event_type}"
        );
    }
}

#[test]
fn a_stored_event_that_does_not_fit_is_an_error_not_a_guess() {
    let event = Event {
        effective: None,
        at: t("2026-03-02T12:00:00Z"),
        actor: "a".into(),
        change: Change::Closed,
    };
    let (_, bytes) = codec::encode(&event);
    assert!(
        codec::decode("complaint.reopened", &bytes).is_err(),
        "type mismatch"
    );
    assert!(
        codec::decode("complaint.closed", b"\xff\xff\xff").is_err(),
        "garbage"
    );
    let answered = Event {
        effective: None,
        at: t("2026-03-02T12:00:00Z"),
        actor: "a".into(),
        change: Change::Answered {
            decision: Decision::Upheld,
            redress: vec![],
            delivery: DeliveryMethod::Letter,
            summary: "s".into(),
        },
    };
    let (ty, bytes) = codec::encode(&answered);
    let at = bytes
        .windows(6)
        .position(|w| w == b"upheld")
        .expect("the decision name is stored");
    let mut tampered = bytes.to_vec();
    tampered[at + 5] = b'x';
    let err = codec::decode(ty, &tampered).unwrap_err();
    assert!(err.to_string().contains("unknown decision"), "{err}");
}

#[tokio::test]
async fn a_registered_complaint_is_read_back_with_its_version() {
    let h = harness();
    let id = ComplaintId::new(Uuid::new_v4());
    let outcome = h
        .workflow
        .execute(request(
            id,
            Command::Register(Box::new(registration(
                id,
                "cards",
                "fees",
                "2026-03-02T09:00:00Z",
            ))),
        ))
        .await
        .unwrap();
    assert_eq!(
        (outcome.version, outcome.replayed, outcome.complaint.status),
        (1, false, Status::Received)
    );
    let (state, version) = h.workflow.get(id).await.unwrap();
    assert_eq!((version, state), (1, outcome.complaint));
    let stored = h
        .log
        .read_all(1, eventlog::Direction::Forward, 10)
        .await
        .unwrap();
    assert_eq!(stored[0].event_type, "complaint.registered");
    assert_eq!(stored[0].actor, "user:bob");
    assert_eq!(
        stored[0].stream.as_str(),
        format!("complaint-{}", id.uuid())
    );
}

#[tokio::test]
async fn commands_on_an_unknown_complaint_are_not_found() {
    let h = harness();
    let id = ComplaintId::new(Uuid::new_v4());
    assert!(
        matches!(h.workflow.execute(request(id, Command::Acknowledge)).await, Err(WorkflowError::NotFound(x)) if x == id)
    );
    assert!(matches!(
        h.workflow.get(id).await,
        Err(WorkflowError::NotFound(_))
    ));
    assert_eq!(h.log.head().await.unwrap(), 0);
}

#[tokio::test]
async fn a_retried_request_returns_the_first_result_and_records_nothing() {
    let h = harness();
    let id = registered(&h).await;
    let ack = request(id, Command::Acknowledge);
    let first = h.workflow.execute(ack.clone()).await.unwrap();
    h.workflow
        .execute(request(
            id,
            Command::Assign {
                unit: "cards".into(),
                handler: "h1".into(),
            },
        ))
        .await
        .unwrap();
    let head = h.log.head().await.unwrap();
    // Acknowledging again would be refused; the retry gets the first answer instead.
    let retry = h.workflow.execute(ack).await.unwrap();
    assert_eq!(
        (retry.version, retry.replayed, &retry.complaint),
        (first.version, true, &first.complaint)
    );
    assert_eq!(retry.complaint.status, Status::Acknowledged);
    assert_eq!(h.log.head().await.unwrap(), head);
    // A genuinely new acknowledge is refused.
    let refused = h.workflow.execute(request(id, Command::Acknowledge)).await;
    assert!(
        matches!(
            refused,
            Err(WorkflowError::Domain(DomainError::WrongState(_)))
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_retried_registration_without_an_id_finds_the_same_complaint() {
    let h = harness();
    let request_id = Uuid::new_v4();
    let id = complaint_id_for(request_id);
    assert_eq!(id, complaint_id_for(request_id));
    let mut register = request(
        id,
        Command::Register(Box::new(registration(
            id,
            "cards",
            "fees",
            "2026-03-02T09:00:00Z",
        ))),
    );
    register.request_id = request_id;
    let first = h.workflow.execute(register.clone()).await.unwrap();
    let again = h.workflow.execute(register).await.unwrap();
    assert_eq!((again.version, again.replayed), (first.version, true));
    assert_eq!(h.log.head().await.unwrap(), 1);
}

#[tokio::test]
async fn an_expected_version_gives_optimistic_concurrency() {
    let h = harness();
    let id = registered(&h).await;
    let mut stale = request(id, Command::Acknowledge);
    stale.expected_version = Some(0);
    match h.workflow.execute(stale).await {
        Err(WorkflowError::Conflict {
            expected: 0,
            actual: 1,
            ..
        }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    let mut current = request(id, Command::Acknowledge);
    current.expected_version = Some(1);
    assert_eq!(h.workflow.execute(current).await.unwrap().version, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_without_expected_versions_all_land() {
    let h = harness();
    let id = registered(&h).await;
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let workflow = h.workflow.clone();
            tokio::spawn(async move {
                workflow
                    .execute(request(
                        id,
                        Command::AddNewFacts {
                            facts: format!("fact {i}"),
                        },
                    ))
                    .await
            })
        })
        .collect();
    let mut versions = BTreeSet::new();
    for task in tasks {
        versions.insert(task.await.unwrap().unwrap().version);
    }
    assert_eq!(versions, (2..=7).collect());
    assert_eq!(h.workflow.get(id).await.unwrap().0.new_facts_at.len(), 6);
}

#[tokio::test]
async fn a_refused_command_records_nothing() {
    let h = harness();
    let id = ComplaintId::new(Uuid::new_v4());
    let mut bad = registration(id, "cards", "fees", "2026-03-02T09:00:00Z");
    bad.complainant.name.clear();
    match h
        .workflow
        .execute(request(id, Command::Register(Box::new(bad))))
        .await
    {
        Err(WorkflowError::Domain(DomainError::Invalid(v))) => {
            assert_eq!(v[0].field, "complainant.name");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.log.head().await.unwrap(), 0);
}

#[tokio::test]
async fn the_list_follows_the_log_with_filters_and_pages() {
    let h = harness();
    let (list, _task) = complaints_projections::spawn(ComplaintList::default(), h.log.clone());
    let mut ids = Vec::new();
    for (i, (unit, category)) in [
        ("cards", "fees"),
        ("loans", "fees"),
        ("cards", "service"),
        ("cards", "fees"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = ComplaintId::new(Uuid::from_u128(100 + i as u128));
        let received = format!("2026-02-0{}T09:00:00Z", i + 1);
        h.workflow
            .execute(request(
                id,
                Command::Register(Box::new(registration(id, unit, category, &received))),
            ))
            .await
            .unwrap();
        ids.push(id);
    }
    h.workflow
        .execute(request(
            ids[3],
            Command::Assign {
                unit: "escalations".into(),
                handler: "h9".into(),
            },
        ))
        .await
        .unwrap();
    list.wait_for(h.log.head().await.unwrap()).await;

    let all = list.query(&ListQuery {
        page_size: 10,
        ..Default::default()
    });
    assert_eq!(
        all.items.iter().map(|s| s.id).collect::<Vec<_>>(),
        ids,
        "ordered by receipt"
    );
    assert!(all.next.is_none());
    let cards = list.query(&ListQuery {
        unit: Some("cards".into()),
        page_size: 10,
        ..Default::default()
    });
    assert_eq!(
        cards.items.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![ids[0], ids[2]]
    );
    let in_progress = list.query(&ListQuery {
        status: Some(Status::InProgress),
        page_size: 10,
        ..Default::default()
    });
    assert_eq!(in_progress.items.len(), 1);
    assert_eq!(
        (
            in_progress.items[0].unit.as_str(),
            in_progress.items[0].version
        ),
        ("escalations", 2)
    );
    let fees = list.query(&ListQuery {
        category: Some("fees".into()),
        regime: Some("UK-FCA-DISP".into()),
        page_size: 2,
        ..Default::default()
    });
    assert_eq!(
        fees.items.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![ids[0], ids[1]]
    );
    let rest = list.query(&ListQuery {
        category: Some("fees".into()),
        page_size: 2,
        after: fees.next,
        ..Default::default()
    });
    assert_eq!(
        rest.items.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![ids[3]]
    );
    assert!(rest.next.is_none());
}

#[tokio::test]
async fn a_retry_must_repeat_the_effective_time_too() {
    let h = harness();
    let id = registered(&h).await;
    let effective = |at: &str| {
        Some(complaints_domain::Effective {
            at: t(at),
            reason: None,
        })
    };
    let ack = CommandRequest {
        effective: effective("2026-03-02T10:00:00Z"),
        ..request(id, Command::Acknowledge)
    };
    let first = h.workflow.execute(ack.clone()).await.unwrap();
    assert_eq!(
        first.complaint.acknowledged_at,
        Some(t("2026-03-02T10:00:00Z"))
    );
    // The same request again: replayed.
    assert!(h.workflow.execute(ack.clone()).await.unwrap().replayed);
    // Under the same request id with another effective time, or none: another request.
    for other in [effective("2026-03-02T11:00:00Z"), None] {
        let changed = CommandRequest {
            effective: other,
            ..ack.clone()
        };
        let refused = h.workflow.execute(changed).await;
        assert!(
            matches!(refused, Err(WorkflowError::RequestIdReused { .. })),
            "{refused:?}"
        );
    }
}

/// Two workflows over one log, as two processes on one JetStream stream would be: each
/// keeps its own complaint states, and both seal under one key store.
fn two_writers() -> (
    Harness,
    Workflow,
    Arc<complaints_events::personal::MemoryKeys>,
) {
    let keys = Arc::new(complaints_events::personal::MemoryKeys::default());
    let mut h = harness();
    h.workflow = h.workflow.with_keys(keys.clone());
    let other = Workflow::new(h.log.clone(), h.workflow.clock().clone(), Rules::default())
        .with_keys(keys.clone());
    (h, other, keys)
}

fn answer() -> Command {
    Command::Answer {
        decision: Decision::Upheld,
        redress: vec![],
        delivery: DeliveryMethod::Letter,
        summary: "s".into(),
    }
}

#[tokio::test]
async fn a_kept_state_behind_the_log_is_read_again_before_it_refuses_or_appends() {
    let (h, other, _) = two_writers();
    // Kept by `h.workflow` at version 1.
    let id = registered(&h).await;
    other
        .execute(request(id, Command::Acknowledge))
        .await
        .unwrap();

    // The caller knows the log's version (2): not a conflict with the kept version 1.
    let mut current = request(
        id,
        Command::AddNewFacts {
            facts: "more".into(),
        },
    );
    current.expected_version = Some(2);
    let out = h.workflow.execute(current).await.unwrap();
    assert_eq!(out.version, 3);
    assert!(out.complaint.acknowledged_at.is_some(), "{out:?}");

    // A version the caller did not expect is checked against the log, not the kept state.
    // Without an expected version: appended at the kept version 3, refused by the log,
    // decided again on the stream as it is (with the other writer's facts).
    other
        .execute(request(id, Command::AddNewFacts { facts: "b".into() }))
        .await
        .unwrap();
    let out = h
        .workflow
        .execute(request(id, Command::AddNewFacts { facts: "c".into() }))
        .await
        .unwrap();
    assert_eq!(out.version, 5);
    assert_eq!(out.complaint.new_facts_at.len(), 3);
    for command in [
        Command::Assign {
            unit: "u".into(),
            handler: "h".into(),
        },
        answer(),
    ] {
        other.execute(request(id, command)).await.unwrap();
    }
    let mut stale = request(id, Command::Acknowledge);
    stale.expected_version = Some(5);
    match h.workflow.execute(stale).await {
        Err(WorkflowError::Conflict {
            expected: 5,
            actual: 7,
            ..
        }) => {}
        other => panic!("expected a conflict with the log's version, got {other:?}"),
    }
    // Allowed only after the answer the other writer recorded: the kept state (version 5,
    // not answered) would refuse it.
    let closed = h
        .workflow
        .execute(request(id, Command::Close))
        .await
        .unwrap();
    assert_eq!(closed.version, 8);
    assert_eq!(closed.complaint.status, Status::Closed);
    assert_eq!(h.log.head().await.unwrap(), 8);
}

#[tokio::test]
async fn a_retry_recorded_by_another_writer_is_answered_as_a_retry() {
    let (h, other, _) = two_writers();
    let id = registered(&h).await;
    let ack = request(id, Command::Acknowledge);
    other.execute(ack.clone()).await.unwrap();
    let head = h.log.head().await.unwrap();
    let again = h.workflow.execute(ack).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.version, 2);
    assert_eq!(h.log.head().await.unwrap(), head);
    // The same request id in the kept state of the writer that recorded it.
    let ack = request(id, Command::AddNewFacts { facts: "f".into() });
    let first = h.workflow.execute(ack.clone()).await.unwrap();
    let again = h.workflow.execute(ack).await.unwrap();
    assert!(!first.replayed);
    assert!(again.replayed);
    assert_eq!(again.version, first.version);
}

#[tokio::test]
async fn a_kept_state_does_not_outlive_an_erasure_made_elsewhere() {
    let (h, other, _) = two_writers();
    let id = registered(&h).await;
    let kept = h
        .workflow
        .execute(request(id, Command::Acknowledge))
        .await
        .unwrap();
    assert_eq!(kept.complaint.registration.complainant.name, "Ada Lovelace");
    assert!(other
        .erase_personal_data(
            "person-1",
            "asked",
            Uuid::new_v4(),
            &principal(&[Role::Supervisor])
        )
        .await
        .unwrap());
    let out = h
        .workflow
        .execute(request(
            id,
            Command::Assign {
                unit: "u".into(),
                handler: "h".into(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(out.version, 3);
    assert_eq!(
        out.personal,
        complaints_events::personal::PersonalState::Erased
    );
    assert_ne!(out.complaint.registration.complainant.name, "Ada Lovelace");
}

#[tokio::test]
async fn kept_states_give_the_answers_a_read_of_the_stream_gives() {
    // The same commands, refusals among them, through a workflow that keeps states and
    // one that reads every stream.
    let (kept, _, _) = two_writers();
    let (read, _, _) = two_writers();
    let read = Harness {
        workflow: read.workflow.with_state_cache(0),
        ..read
    };
    let id = ComplaintId::new(Uuid::new_v4());
    let steps = [
        Command::Register(Box::new(registration(
            id,
            "cards",
            "fees",
            "2026-03-02T09:00:00Z",
        ))),
        Command::Close,
        Command::Acknowledge,
        Command::Register(Box::new(registration(
            id,
            "cards",
            "fees",
            "2026-03-02T09:00:00Z",
        ))),
        Command::Assign {
            unit: "u".into(),
            handler: "h".into(),
        },
        answer(),
        answer(),
        Command::Close,
        Command::Acknowledge,
    ];
    for (i, command) in steps.into_iter().enumerate() {
        let mut r = request(id, command);
        r.request_id = Uuid::from_u128(i as u128 + 1);
        let a = kept.workflow.execute(r.clone()).await;
        let b = read.workflow.execute(r).await;
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "step {i}");
    }
}
