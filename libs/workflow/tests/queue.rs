//! The regulator-transfer queue: leases, expiry, acknowledgement, racing consumers.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use complaints_projections::Projection;
use std::collections::BTreeSet;
use std::sync::Arc;

use complaints_domain::model::*;
use complaints_domain::{Command, Register, Rules};
use complaints_projections::queue::{Direction, ItemState, RegulatorQueue};
use complaints_workflow::queue::{self, QueueError};
use complaints_workflow::{CommandRequest, Principal, Workflow};
use eventlog::{Direction as Read, EventLog, ManualClock, Timestamp as LogTime};
use eventlog_sled::{SledConfig, SledEventLog};
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

struct Harness {
    _dir: tempfile::TempDir,
    log: Arc<dyn EventLog>,
    workflow: Workflow,
    queue: Arc<RegulatorQueue>,
}

const NOW: &str = "2026-03-02T12:00:00Z";

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(LogTime::from_micros(
        t(NOW).as_microsecond(),
    )));
    let log: Arc<dyn EventLog> = Arc::new(
        SledEventLog::open_with_clock(SledConfig::new(dir.path().join("log")), clock.clone())
            .unwrap(),
    );
    let workflow = Workflow::new(log.clone(), clock, Rules::default());
    let (queue, _task) = complaints_projections::spawn(RegulatorQueue::default(), log.clone());
    Harness {
        _dir: dir,
        log,
        workflow,
        queue,
    }
}

fn run(complaint: ComplaintId, command: Command) -> CommandRequest {
    CommandRequest {
        effective: None,
        complaint,
        command,
        request_id: Uuid::new_v4(),
        expected_version: None,
        principal: Principal {
            id: "user:h".into(),
            roles: BTreeSet::from([Role::Handler, Role::Intake]),
        },
    }
}

fn registration(id: ComplaintId, transfer: Option<RegulatorTransfer>) -> Register {
    Register {
        id,
        channel: if transfer.is_some() {
            Channel::RegulatorTransfer
        } else {
            Channel::Web
        },
        complainant: Complainant {
            person_id: "p".into(),
            name: "n".into(),
            contact: "c".into(),
            id_number: String::new(),
        },
        unit: "cards".into(),
        employee: None,
        product: "p".into(),
        category: "fees".into(),
        claim: "c".into(),
        facts: "f".into(),
        received_at: t("2026-03-01T09:00:00Z"),
        regime: "UK-FCA-DISP".into(),
        region: "GB-ENG".into(),
        regulator: transfer,
        variant: None,
    }
}

impl Harness {
    async fn referred(&self, n: u128) -> ComplaintId {
        let id = ComplaintId::new(Uuid::from_u128(n));
        self.workflow
            .execute(run(id, Command::Register(Box::new(registration(id, None)))))
            .await
            .unwrap();
        self.workflow
            .execute(run(
                id,
                Command::ReferToRegulator {
                    body: "FOS".into(),
                    reason: ReferralReason::ComplainantReferred,
                    reference: String::new(),
                },
            ))
            .await
            .unwrap();
        id
    }

    async fn caught_up(&self) {
        self.queue.wait_for(self.log.head().await.unwrap()).await;
    }
}

const FIVE_MINUTES: SignedDuration = SignedDuration::from_mins(5);

#[tokio::test]
async fn a_lease_holds_an_item_until_acknowledged_or_expired() {
    let h = harness();
    let complaint = h.referred(1).await;
    h.caught_up().await;
    let items = h.queue.items(t(NOW), Some(Direction::Outbound));
    assert_eq!(items.len(), 1);
    let (item, state) = &items[0];
    assert_eq!(
        (item.complaint, item.body.as_str(), state),
        (complaint, "FOS", &ItemState::Available)
    );

    let leased = queue::lease(
        &*h.log,
        &h.queue,
        None,
        None,
        "gateway-a",
        FIVE_MINUTES,
        t(NOW),
    )
    .await
    .unwrap();
    assert_eq!(leased.id, item.id);
    // Another consumer gets nothing while the lease runs, by id or as the next item.
    let refused = queue::lease(
        &*h.log,
        &h.queue,
        Some(item.id),
        None,
        "gateway-b",
        FIVE_MINUTES,
        t(NOW),
    )
    .await;
    assert!(
        matches!(refused, Err(QueueError::Refused(ref m)) if m.contains("gateway-a")),
        "{refused:?}"
    );
    h.caught_up().await;
    assert!(matches!(
        queue::lease(
            &*h.log,
            &h.queue,
            None,
            None,
            "gateway-b",
            FIVE_MINUTES,
            t(NOW)
        )
        .await,
        Err(QueueError::Empty)
    ));

    // The lease runs out: the item comes back, and the expiry is recorded with the next lease.
    let later = t("2026-03-02T12:06:00Z");
    let again = queue::lease(
        &*h.log,
        &h.queue,
        None,
        None,
        "gateway-b",
        FIVE_MINUTES,
        later,
    )
    .await
    .unwrap();
    assert_eq!(again.id, item.id);
    let stream = h
        .log
        .read_stream(
            &complaints_events::stored::queue_stream(item.id),
            1,
            Read::Forward,
            10,
        )
        .await
        .unwrap();
    let types: Vec<&str> = stream.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["queue.leased", "queue.lease_expired", "queue.leased"]
    );

    // Only the current holder, within its lease, acknowledges.
    let late = queue::acknowledge(&*h.log, &h.queue, item.id, "gateway-a", "FOS-1", later).await;
    assert!(
        matches!(late, Err(QueueError::Refused(ref m)) if m.contains("another consumer")),
        "{late:?}"
    );
    let done = queue::acknowledge(
        &*h.log,
        &h.queue,
        item.id,
        "gateway-b",
        "FOS-2024-001",
        later,
    )
    .await
    .unwrap();
    assert_eq!(
        done.state,
        ItemState::Acknowledged {
            consumer: "gateway-b".into(),
            reference: "FOS-2024-001".into()
        }
    );
    h.caught_up().await;
    assert_eq!(
        h.queue.items(t("2026-03-09T00:00:00Z"), None)[0].1,
        done.state,
        "acknowledged for good"
    );
    assert!(matches!(
        queue::lease(
            &*h.log,
            &h.queue,
            Some(item.id),
            None,
            "gateway-a",
            FIVE_MINUTES,
            later
        )
        .await,
        Err(QueueError::Refused(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_consumers_never_share_an_item() {
    let h = harness();
    for n in 0..3 {
        h.referred(10 + n).await;
    }
    h.caught_up().await;
    let log = h.log.clone();
    let q = h.queue.clone();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (log, q) = (log.clone(), q.clone());
            tokio::spawn(async move {
                queue::lease(
                    &*log,
                    &q,
                    None,
                    None,
                    &format!("gateway-{i}"),
                    FIVE_MINUTES,
                    t(NOW),
                )
                .await
            })
        })
        .collect();
    let mut won = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(item) => won.push(item.id),
            Err(QueueError::Empty) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    let distinct: BTreeSet<_> = won.iter().collect();
    assert_eq!(
        (won.len(), distinct.len()),
        (3, 3),
        "each item leased exactly once"
    );
    for id in won {
        let leases = h
            .log
            .read_stream(
                &complaints_events::stored::queue_stream(id),
                1,
                Read::Forward,
                10,
            )
            .await
            .unwrap();
        assert_eq!(leases.len(), 1);
    }
}

#[tokio::test]
async fn a_transfer_from_a_regulator_is_reported_back_once_answered() {
    let h = harness();
    let id = ComplaintId::new(Uuid::from_u128(42));
    let transfer = RegulatorTransfer {
        regulator: "FCA".into(),
        reference: "FCA-77".into(),
        deadline: t("2026-03-20T00:00:00Z"),
    };
    h.workflow
        .execute(run(
            id,
            Command::Register(Box::new(registration(id, Some(transfer)))),
        ))
        .await
        .unwrap();
    h.caught_up().await;
    let items = h.queue.items(t(NOW), Some(Direction::Inbound));
    let (item, state) = &items[0];
    assert_eq!(
        (state, item.deadline, item.detail.as_str()),
        (
            &ItemState::Waiting,
            Some(t("2026-03-20T00:00:00Z")),
            "FCA-77"
        )
    );
    let early = queue::lease(
        &*h.log,
        &h.queue,
        Some(item.id),
        None,
        "gateway",
        FIVE_MINUTES,
        t(NOW),
    )
    .await;
    assert!(
        matches!(early, Err(QueueError::Refused(ref m)) if m.contains("not answered")),
        "{early:?}"
    );

    h.workflow
        .execute(run(
            id,
            Command::Assign {
                unit: "u".into(),
                handler: "h".into(),
            },
        ))
        .await
        .unwrap();
    h.workflow
        .execute(run(
            id,
            Command::Answer {
                decision: Decision::Rejected,
                redress: vec![],
                delivery: DeliveryMethod::Letter,
                summary: "s".into(),
            },
        ))
        .await
        .unwrap();
    // An outbound referral, first in queue order (no deadline, created now): a lease of
    // the inbound direction passes over it, one of the outbound takes it.
    let referred = h.referred(7).await;
    h.caught_up().await;
    let order = h.queue.items(t(NOW), None);
    assert_eq!(order[0].0.complaint, referred, "the referral comes first");
    let lease_of = |direction| {
        queue::lease(
            &*h.log,
            &h.queue,
            None,
            Some(direction),
            "gateway",
            FIVE_MINUTES,
            t(NOW),
        )
    };
    let leased = lease_of(Direction::Inbound).await.unwrap();
    assert_eq!(leased.id, item.id);
    let leased = lease_of(Direction::Outbound).await.unwrap();
    assert_eq!(leased.complaint, referred);
}

/// A policy whose rule sends a complaint to the ombudsman once its clock breaches.
const REFER_ON_BREACH: &str = include_str!("policies/refer-on-breach.toml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_puts_a_breached_complaint_in_the_regulator_queue_once() {
    use complaints_projections::board::SlaBoard;
    use complaints_projections::queue::{Direction as QueueDirection, RegulatorQueue};
    use complaints_sla::{RuleFile, RuleSources};
    use complaints_workflow::{sla, transitions};
    use eventlog::{EventLog, ManualClock, Timestamp as LogTime};

    let dir = tempfile::tempdir().unwrap();
    let start: jiff::Timestamp = "2026-03-02T02:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(LogTime::from_micros(
        start.as_microsecond(),
    )));
    let log: Arc<dyn EventLog> = Arc::new(
        eventlog_sled::SledEventLog::open_with_clock(
            eventlog_sled::SledConfig::new(dir.path().join("log")),
            clock.clone(),
        )
        .unwrap(),
    );
    let mut sources = RuleSources::built_in();
    sources.policies.push(RuleFile {
        name: "operator/refer.toml".into(),
        text: REFER_ON_BREACH.into(),
    });
    let engine = Arc::new(sources.engine().unwrap());
    let workflow = Workflow::new(log.clone(), clock.clone(), Rules::default())
        .with_regimes(sla::regimes(&engine));
    let (board, _b) = complaints_projections::spawn(SlaBoard::new(engine.clone()), log.clone());
    let (queue, _q) = complaints_projections::spawn(RegulatorQueue::default(), log.clone());
    let id = ComplaintId::new(Uuid::from_u128(42));
    let mut register = registration(id, None);
    register.regime = "TEST-REFER".into();
    register.region = "CN".into();
    register.received_at = start;
    workflow
        .execute(run(id, Command::Register(Box::new(register))))
        .await
        .unwrap();
    board.wait_for(log.head().await.unwrap()).await;

    // 20 minutes on, unanswered: the breach is recorded, and with it the referral.
    clock.set(LogTime::from_micros(
        start.as_microsecond() + 20 * 60 * 1_000_000,
    ));
    let recorded = transitions::record_due(&board, &*log, &*clock)
        .await
        .unwrap();
    let breach = recorded
        .iter()
        .find(|c| c.threshold == 100)
        .expect("a breach");
    assert_eq!(breach.refer_to.as_deref(), Some("FOS"));
    queue.wait_for(log.head().await.unwrap()).await;
    let now: jiff::Timestamp = "2026-03-02T02:20:00Z".parse().unwrap();
    let items = queue.items(now, Some(QueueDirection::Outbound));
    assert_eq!(items.len(), 1, "{items:?}");
    let (item, _) = &items[0];
    assert_eq!((item.complaint, item.body.as_str()), (id, "FOS"));
    assert!(item.detail.contains("first_response"), "{}", item.detail);

    // Recorded again (a restart, a race): still one item.
    board.wait_for(log.head().await.unwrap()).await;
    assert!(transitions::record_due(&board, &*log, &*clock)
        .await
        .unwrap()
        .is_empty());
    let rebuilt = RegulatorQueue::default();
    for e in log
        .read_all(1, eventlog::Direction::Forward, 1000)
        .await
        .unwrap()
    {
        rebuilt.apply(&e).unwrap();
    }
    assert_eq!(rebuilt.items(now, Some(QueueDirection::Outbound)).len(), 1);
}
