//! Snapshots of the projections: a start uses one only when it is whole and anchored in
//! this log; otherwise it rebuilds from position 1 (and ends the same).

mod common;

use complaints_projections::Projection;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use common::registration;
use complaints_domain::model::*;
use complaints_domain::{Command, Rules};
use complaints_projections::snapshot::SnapshotStore;
use complaints_projections::Projections;
use complaints_sla::Engine;
use complaints_workflow::{sla, CommandRequest, Principal, Workflow};
use eventlog::{EventLog, ManualClock, Timestamp as LogTime};
use eventlog_sled::{SledConfig, SledEventLog};
use uuid::Uuid;

/// A log in `dir` holding `ids` registered and acknowledged.
async fn log_of(dir: &Path, ids: &[u128]) -> Arc<dyn EventLog> {
    let now: jiff::Timestamp = "2026-03-02T02:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(LogTime::from_micros(now.as_microsecond())));
    let log: Arc<dyn EventLog> =
        Arc::new(SledEventLog::open_with_clock(SledConfig::new(dir), clock.clone()).unwrap());
    let workflow = Workflow::new(log.clone(), clock, Rules::default())
        .with_regimes(sla::regimes(&Engine::built_in()));
    let principal = Principal {
        id: "user:t".into(),
        roles: BTreeSet::from([Role::Intake, Role::Handler]),
    };
    for id in ids {
        let id = ComplaintId::new(Uuid::from_u128(*id));
        for command in [
            Command::Register(Box::new(registration(id, now))),
            Command::Acknowledge,
        ] {
            workflow
                .execute(CommandRequest {
                    complaint: id,
                    command,
                    request_id: Uuid::new_v4(),
                    expected_version: None,
                    principal: principal.clone(),
                })
                .await
                .unwrap();
        }
    }
    log
}

/// Starts projections on `log` with snapshots in `store`, waits until they have read the
/// whole log, stops them (which saves a snapshot); returns them and where they started.
async fn run_once(log: &Arc<dyn EventLog>, store: &SnapshotStore) -> (Arc<Projections>, u64) {
    let projections = Arc::new(Projections::new(Arc::new(Engine::built_in())));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = projections.spawn(log.clone(), Some(store.clone()), 1_000, stopped);
    let head = log.head().await.unwrap();
    projections
        .get::<complaints_projections::list::ComplaintList>()
        .unwrap()
        .wait_for(head)
        .await;
    projections
        .get::<complaints_projections::board::SlaBoard>()
        .unwrap()
        .wait_for(head)
        .await;
    projections
        .get::<complaints_projections::queue::RegulatorQueue>()
        .unwrap()
        .wait_for(head)
        .await;
    stop.send(true).unwrap();
    task.await.unwrap();
    let from = projections.started_from().unwrap();
    (projections, from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_is_used_only_when_whole_and_taken_of_this_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::new(dir.path().join("projections"));
    let log = log_of(&dir.path().join("a"), &[1, 2, 3]).await;
    let head = log.head().await.unwrap();

    // The first start rebuilds and saves; the second starts after the snapshot.
    let (first, from) = run_once(&log, &store).await;
    assert_eq!(from, 1);
    assert_eq!(store.load(&*log).await.unwrap().unwrap().position, head);
    let (second, from) = run_once(&log, &store).await;
    assert_eq!(from, head + 1, "restored from the snapshot");
    assert_eq!(
        second
            .get::<complaints_projections::list::ComplaintList>()
            .unwrap()
            .state(),
        first
            .get::<complaints_projections::list::ComplaintList>()
            .unwrap()
            .state()
    );
    assert_eq!(
        second
            .get::<complaints_projections::board::SlaBoard>()
            .unwrap()
            .state(),
        first
            .get::<complaints_projections::board::SlaBoard>()
            .unwrap()
            .state()
    );
    assert_eq!(
        second
            .get::<complaints_projections::queue::RegulatorQueue>()
            .unwrap()
            .state(),
        first
            .get::<complaints_projections::queue::RegulatorQueue>()
            .unwrap()
            .state()
    );
    assert_eq!(
        second
            .get::<complaints_projections::list::ComplaintList>()
            .unwrap()
            .state()
            .len(),
        3
    );

    // One byte altered: refused, rebuilt, the same.
    let path = store.path();
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let refused = store.load(&*log).await.unwrap_err().to_string();
    assert!(refused.contains("checksum"), "{refused}");
    let (third, from) = run_once(&log, &store).await;
    assert_eq!(from, 1, "rebuilt from the log");
    assert_eq!(
        third
            .get::<complaints_projections::board::SlaBoard>()
            .unwrap()
            .state(),
        first
            .get::<complaints_projections::board::SlaBoard>()
            .unwrap()
            .state()
    );
    assert_eq!(
        third
            .get::<complaints_projections::list::ComplaintList>()
            .unwrap()
            .state(),
        first
            .get::<complaints_projections::list::ComplaintList>()
            .unwrap()
            .state()
    );

    // Torn: cut short.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    assert!(store.load(&*log).await.is_err());
    let (_, from) = run_once(&log, &store).await;
    assert_eq!(from, 1);

    // Another log at the same position: the snapshot (of log a) is not anchored in it.
    log.close().await.unwrap();
    let other = log_of(&dir.path().join("b"), &[7, 8, 9]).await;
    assert_eq!(other.head().await.unwrap(), head);
    let refused = store.load(&*other).await.unwrap_err().to_string();
    assert!(refused.contains("does not hold"), "{refused}");
    let (fourth, from) = run_once(&other, &store).await;
    assert_eq!(from, 1);
    let ids: Vec<u128> = fourth
        .get::<complaints_projections::list::ComplaintList>()
        .unwrap()
        .state()
        .keys()
        .map(|id| id.uuid().as_u128())
        .collect();
    assert_eq!(ids, [7, 8, 9], "only the other log's complaints");

    // A log shorter than the snapshot: not anchored either.
    other.close().await.unwrap();
    let short = log_of(&dir.path().join("c"), &[4]).await;
    assert!(store.load(&*short).await.is_err());
    let (_, from) = run_once(&short, &store).await;
    assert_eq!(from, 1);
}
