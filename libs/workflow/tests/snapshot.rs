//! Snapshots of the projections: a start uses one only when it is whole and anchored in
//! this log; otherwise it rebuilds from position 1 (and ends the same).
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use complaints_projections::board::SlaBoard;
use complaints_projections::list::ComplaintList;
use complaints_projections::queue::RegulatorQueue;
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
                    effective: None,
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
        second.get::<ComplaintList>().unwrap().state(),
        first.get::<ComplaintList>().unwrap().state()
    );
    assert_eq!(
        second.get::<SlaBoard>().unwrap().state(),
        first.get::<SlaBoard>().unwrap().state()
    );
    assert_eq!(
        second.get::<RegulatorQueue>().unwrap().state(),
        first.get::<RegulatorQueue>().unwrap().state()
    );
    assert_eq!(second.get::<ComplaintList>().unwrap().state().len(), 3);

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
        third.get::<SlaBoard>().unwrap().state(),
        first.get::<SlaBoard>().unwrap().state()
    );
    assert_eq!(
        third.get::<ComplaintList>().unwrap().state(),
        first.get::<ComplaintList>().unwrap().state()
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
        .get::<ComplaintList>()
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

/// The same snapshot file with its header's build replaced by `build`, its checksum made
/// whole again (as another build would have written it).
fn rewritten_by(bytes: &[u8], build: &str) -> Vec<u8> {
    let header_len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let header = &bytes[12..12 + header_len];
    // The header is postcard: the build string first, as a length (one byte below 128)
    // and its bytes.
    let old_len = header[0] as usize;
    assert!(old_len < 128 && build.len() < 128);
    let mut new_header = vec![build.len() as u8];
    new_header.extend_from_slice(build.as_bytes());
    new_header.extend_from_slice(&header[1 + old_len..]);
    let mut out = bytes[..8].to_vec();
    out.extend_from_slice(&(new_header.len() as u32).to_le_bytes());
    out.extend_from_slice(&new_header);
    out.extend_from_slice(&bytes[12 + header_len..bytes.len() - 32]);
    let sum = *blake3::hash(&out).as_bytes();
    out.extend_from_slice(&sum);
    out
}

#[tokio::test]
async fn a_snapshot_of_another_build_is_refused_and_the_projections_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::new(dir.path().join("projections"));
    let log = log_of(&dir.path().join("a"), &[1, 2, 3]).await;
    let (first, _) = run_once(&log, &store).await;
    let path = store.path();
    let ours = std::fs::read(&path).unwrap();
    // Rewriting the header with our own build leaves a usable snapshot (the rewrite is
    // faithful), so what refuses the others below is the build alone.
    let header_len = u32::from_le_bytes(ours[8..12].try_into().unwrap()) as usize;
    let our_build = String::from_utf8(ours[13..13 + ours[12] as usize].to_vec()).unwrap();
    assert!(header_len > our_build.len());
    assert!(
        our_build.starts_with("complaints-projections "),
        "{our_build}"
    );
    std::fs::write(&path, rewritten_by(&ours, &our_build)).unwrap();
    assert!(store.load(&*log).await.unwrap().is_some());

    // Builds before the projections had their own crate, and another build of this one.
    for other in [
        "complaints-workflow 0.1.0",
        "complaints-projections 0.1.0 code 0000",
    ] {
        std::fs::write(&path, rewritten_by(&ours, other)).unwrap();
        let refused = store.load(&*log).await.unwrap_err().to_string();
        assert!(
            refused.contains(&format!("written by {other}")),
            "{refused}"
        );
        let (rebuilt, from) = run_once(&log, &store).await;
        assert_eq!(from, 1, "rebuilt from the log, not restored");
        assert_eq!(
            rebuilt.get::<SlaBoard>().unwrap().state(),
            first.get::<SlaBoard>().unwrap().state()
        );
        assert_eq!(
            rebuilt.get::<ComplaintList>().unwrap().state(),
            first.get::<ComplaintList>().unwrap().state()
        );
    }
}
