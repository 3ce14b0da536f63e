//! Restarts: complaintd saves its projections at shutdown and the next start restores them
//! instead of reading the whole log; what the API shows is the same either way, and the
//! same as a start that rebuilds from the log (snapshots off).
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::{register, TestServer};
use complaints_proto::complaints::v1 as api;
use complaints_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use tonic::transport::Channel;
use tonic::Request;
use uuid::Uuid;

const ROLES: &str = "intake,handler,supervisor,operations";

fn req<T>(message: T) -> Request<T> {
    common::req(message, ROLES)
}

/// 2026-02-05T02:00:00Z.
const T0: i64 = 1_770_256_800;

/// What operations see: the list, the clocks, the board figures, the regulator queue.
async fn views(
    c: &mut ComplaintServiceClient<Channel>,
) -> (
    api::ListComplaintsResponse,
    api::ListClocksResponse,
    api::Board,
    api::ListRegulatorQueueResponse,
) {
    let list = c
        .list_complaints(req(api::ListComplaintsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let clocks = c
        .list_clocks(req(api::ListClocksRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let mut board = c
        .get_board(req(api::GetBoardRequest {}))
        .await
        .unwrap()
        .into_inner();
    board.evaluate_time = None;
    let queue = c
        .list_regulator_queue(req(api::ListRegulatorQueueRequest::default()))
        .await
        .unwrap()
        .into_inner();
    (list, clocks, board, queue)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_restores_the_projections_and_shows_the_same() {
    let clock = common::manual_clock(T0 + 86_400);
    let server = TestServer::start_with_clock(clock, |config| {
        config.projection_snapshot_every = 250_000;
    })
    .await;
    let mut c = server.complaints();
    let first = c
        .register_complaint(req(register("CN-CBIRC", "CN", T0)))
        .await
        .unwrap()
        .into_inner();
    c.register_complaint(req(register("UK-FCA-DISP", "GB-ENG", T0)))
        .await
        .unwrap();
    c.refer_to_regulator(req(api::ReferToRegulatorRequest {
        name: first.name.clone(),
        request_id: Uuid::new_v4().to_string(),
        expected_version: None,
        body: "CBIRC".into(),
        reason: api::ReferralReason::ComplainantReferred as i32,
        reference: "R-1".into(),
        ..Default::default()
    }))
    .await
    .unwrap();
    let before = views(&mut c).await;
    // Decided by the projections' task; the views waited for it to catch up.
    assert_eq!(server.running().projections_started_from(), Some(1));
    assert_eq!(before.0.complaints.len(), 2);
    assert_eq!(before.2.complaints, 2);
    assert_eq!(before.3.items.len(), 1);
    drop(c);
    let stopped = server.shutdown().await;
    let snapshot = stopped.data_dir().join("projections/projections.snap");
    assert!(snapshot.exists(), "saved at shutdown");

    // Restored from the snapshot: the same views.
    let server = stopped.restart(|_| {}).await;
    let mut c = server.complaints();
    let restored = views(&mut c).await;
    let from = server.running().projections_started_from().unwrap();
    assert!(from > 1, "started after the snapshot, at {from}");
    assert_eq!(restored, before);
    // And it goes on from there.
    c.register_complaint(req(register("US-CFPB", "US", T0)))
        .await
        .unwrap();
    let after = views(&mut c).await;
    assert_eq!(after.0.complaints.len(), 3);
    drop(c);
    let stopped = server.shutdown().await;

    // Snapshots off: rebuilt from the whole log, the same views.
    let server = stopped
        .restart(|config| config.projection_snapshot_every = 0)
        .await;
    let mut c = server.complaints();
    let rebuilt = views(&mut c).await;
    assert_eq!(server.running().projections_started_from(), Some(1));
    assert_eq!(rebuilt, after);
    drop(c);
    server.shutdown().await;
}
