//! Time-driven SLA transitions, under paused tokio time: the watcher's timers fire at the
//! crossing instants, each crossing is recorded once, answered clocks record nothing.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use complaints_projections::Projection;
use std::collections::BTreeSet;
use std::sync::Arc;

use complaints_domain::model::*;
use complaints_domain::{Command, Register, Rules};
use complaints_projections::board::SlaBoard;
use complaints_sla::Engine;
use complaints_workflow::{sla, transitions, CommandRequest, Principal, Workflow};
use eventlog::{Clock, EventLog, Timestamp as LogTime};
use eventlog_sled::{SledConfig, SledEventLog};
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

/// A clock that follows tokio's (paused) time from a fixed start. Paused time exists only
/// on the runtime's thread, so the last reading there is shared with other threads (the
/// event log's writer thread stamps `recorded_at` with it).
struct TokioClock {
    base: Timestamp,
    start: tokio::time::Instant,
    last: std::sync::atomic::AtomicI64,
}

impl Clock for TokioClock {
    fn now(&self) -> LogTime {
        use std::sync::atomic::Ordering;
        if tokio::runtime::Handle::try_current().is_err() {
            return LogTime::from_micros(self.last.load(Ordering::SeqCst));
        }
        let elapsed = tokio::time::Instant::now().duration_since(self.start);
        let now = self
            .base
            .checked_add(SignedDuration::try_from(elapsed).unwrap())
            .unwrap();
        self.last.fetch_max(now.as_microsecond(), Ordering::SeqCst);
        LogTime::from_micros(now.as_microsecond())
    }
}

fn hotline(id: ComplaintId, received_at: Timestamp) -> Register {
    Register {
        id,
        channel: Channel::Hotline,
        complainant: Complainant {
            person_id: "p".into(),
            name: "n".into(),
            contact: "c".into(),
            id_number: String::new(),
        },
        unit: "hotline".into(),
        employee: None,
        product: "p".into(),
        category: "service".into(),
        claim: "c".into(),
        facts: "f".into(),
        received_at,
        regime: "INTERNAL-HOTLINE".into(),
        region: "CN".into(),
        regulator: None,
        variant: None,
    }
}

#[tokio::test(start_paused = true)]
async fn crossings_are_recorded_when_they_happen_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let base: Timestamp = "2026-03-02T02:00:00Z".parse().unwrap();
    let clock = Arc::new(TokioClock {
        base,
        start: tokio::time::Instant::now(),
        last: base.as_microsecond().into(),
    });
    let log: Arc<dyn EventLog> = Arc::new(
        SledEventLog::open_with_clock(SledConfig::new(dir.path().join("log")), clock.clone())
            .unwrap(),
    );
    let engine = Arc::new(Engine::built_in());
    let workflow = Workflow::new(log.clone(), clock.clone(), Rules::default())
        .with_regimes(sla::regimes(&engine));
    let principal = Principal {
        id: "user:t".into(),
        roles: BTreeSet::from([Role::Handler, Role::Intake]),
    };
    let run = |complaint, command| CommandRequest {
        effective: None,
        complaint,
        command,
        request_id: Uuid::new_v4(),
        expected_version: None,
        principal: principal.clone(),
    };

    // Two hotline complaints (first response within 15 minutes; at risk at 50/75/90%).
    // The second is acknowledged at once: its clock stops, nothing to record.
    let (late, prompt) = (
        ComplaintId::new(Uuid::from_u128(1)),
        ComplaintId::new(Uuid::from_u128(2)),
    );
    workflow
        .execute(run(late, Command::Register(Box::new(hotline(late, base)))))
        .await
        .unwrap();
    workflow
        .execute(run(
            prompt,
            Command::Register(Box::new(hotline(prompt, base))),
        ))
        .await
        .unwrap();
    workflow
        .execute(run(prompt, Command::Acknowledge))
        .await
        .unwrap();

    // Only now start the board and the watcher: no timer existed before.
    let (board, _feed) = complaints_projections::spawn(SlaBoard::new(engine), log.clone());
    board.wait_for(log.head().await.unwrap()).await;
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(transitions::run(
        board.clone(),
        log.clone(),
        clock.clone(),
        stop,
    ));

    let mut events = log.clone().subscribe(1);
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let e = events.next().await.unwrap().unwrap();
        if e.event_type.starts_with("sla.") {
            let complaints_events::Stored::Crossing(t) =
                complaints_events::Stored::decode(&e).unwrap()
            else {
                panic!("not a crossing: {}", e.event_type)
            };
            seen.push((e.event_type.clone(), t.id, t.threshold, t.at, e.recorded_at));
        }
    }
    let minutes = |m: f64| {
        base.checked_add(SignedDuration::from_secs_f64(m * 60.0))
            .unwrap()
    };
    let expected = [
        (complaints_events::stored::SLA_AT_RISK, 50u8, minutes(7.5)),
        (complaints_events::stored::SLA_AT_RISK, 75, minutes(11.25)),
        (complaints_events::stored::SLA_AT_RISK, 90, minutes(13.5)),
        (complaints_events::stored::SLA_BREACHED, 100, minutes(15.0)),
    ];
    for ((event_type, id, threshold, at, recorded_at), (want_type, want_threshold, want_at)) in
        seen.iter().zip(expected)
    {
        assert_eq!(
            (event_type.as_str(), *id, *threshold, *at),
            (want_type, late, want_threshold, want_at)
        );
        // Recorded at the moment it happened, by the timer (not found later by a scan).
        let recorded = Timestamp::from_microsecond(recorded_at.as_micros()).unwrap();
        assert!(
            recorded >= *at && recorded.duration_since(*at) < SignedDuration::from_secs(1),
            "{recorded} vs {at}"
        );
    }

    // Recording again (a restart, a race) writes nothing.
    assert!(transitions::record_due(&board, &*log, &*clock)
        .await
        .unwrap()
        .is_empty());
    let sla_events = log
        .read_all(1, eventlog::Direction::Forward, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type.starts_with("sla."))
        .count();
    assert_eq!(
        sla_events, 4,
        "nothing for the acknowledged complaint, nothing twice"
    );
    watcher.abort();
}

/// Found by the scale benchmark: at a start, the watcher read a board still rebuilding, saw
/// clocks whose answers it had not applied yet as running, and recorded crossings that
/// never happened. It now waits until the board has applied the log.
#[tokio::test]
async fn a_board_still_catching_up_records_no_crossing_of_a_clock_it_has_not_seen_stop() {
    use complaints_domain::{Change, Event};
    use complaints_projections::Decoded;
    use eventlog::{Direction, ExpectedVersion, ManualClock, NewEvent, StreamId};
    let dir = tempfile::tempdir().unwrap();
    let received: Timestamp = "2026-03-02T02:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(LogTime::from_micros(
        received.as_microsecond(),
    )));
    let log: Arc<dyn EventLog> = Arc::new(
        SledEventLog::open_with_clock(SledConfig::new(dir.path().join("log")), clock.clone())
            .unwrap(),
    );
    // Registered under CN-CBIRC (15 days) and answered an hour later.
    let id = ComplaintId::new(Uuid::from_u128(7));
    let mut register = hotline(id, received);
    (register.regime, register.region) = ("CN-CBIRC".into(), "CN".into());
    let answered = received.checked_add(SignedDuration::from_hours(1)).unwrap();
    for (at, change) in [
        (received, Change::Registered(Box::new(register))),
        (
            answered,
            Change::Answered {
                decision: Decision::Upheld,
                redress: vec![],
                delivery: DeliveryMethod::Letter,
                summary: "s".into(),
            },
        ),
    ] {
        clock.set(LogTime::from_micros(at.as_microsecond()));
        let (event_type, payload) = complaints_events::codec::encode(&Event {
            effective: None,
            at,
            actor: "user:t".into(),
            change,
        });
        log.append(
            &StreamId::new(id.stream()).unwrap(),
            ExpectedVersion::Any,
            vec![NewEvent::new(event_type, "user:t", payload)],
        )
        .await
        .unwrap();
    }
    // A month later the watcher starts while the board has applied the registration only.
    let month = received
        .checked_add(SignedDuration::from_hours(24 * 30))
        .unwrap();
    clock.set(LogTime::from_micros(month.as_microsecond()));
    let board = SlaBoard::new(Arc::new(Engine::built_in()));
    let records = log.read_all(1, Direction::Forward, 10).await.unwrap();
    let decoded: Vec<_> = records
        .into_iter()
        .map(|r| Decoded::decode(r).unwrap())
        .collect();
    board.apply_batch(&decoded[..1]).unwrap();
    let (recorded, ()) = tokio::join!(transitions::record_due(&board, &*log, &*clock), async {
        tokio::task::yield_now().await;
        board.apply_batch(&decoded[1..]).unwrap();
    });
    assert_eq!(
        recorded.unwrap(),
        vec![],
        "crossings of a clock answered in time"
    );
    assert_eq!(log.head().await.unwrap(), 2, "nothing was appended");
}
