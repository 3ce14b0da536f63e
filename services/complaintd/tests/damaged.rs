//! complaintd refuses to start on a log that lost records, and says where: beside the
//! log's own witness (tested in eventlog-sled), a snapshot of the projections taken past
//! the head, or a publisher cursor past it, is evidence of loss.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::{copy_dir, register, req, TestServer};

const ROLES: &str = "intake,handler";

async fn register_some(server: &TestServer, n: usize) {
    let mut c = server.complaints();
    for _ in 0..n {
        c.register_complaint(req(register("UK-FCA-DISP", "GB-ENG", 1_772_400_000), ROLES))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_snapshot_or_a_publisher_cursor_past_the_head_refuses_the_start() {
    let server = TestServer::start(|_| {}).await;
    register_some(&server, 2).await;
    let stopped = server.shutdown().await;
    // An older copy of the log alone (with its own, consistent witness).
    let log = stopped.data_dir().join("log");
    let older = stopped.dir().join("older-log");
    copy_dir(&log, &older);
    let server = stopped.restart(|_| {}).await;
    register_some(&server, 3).await;
    let mut stopped = server.shutdown().await;

    // The log "restored" apart from the snapshot saved at the last shutdown.
    std::fs::remove_dir_all(&log).unwrap();
    copy_dir(&older, &log);
    let refused = stopped.start_refused(|_| {}).await;
    assert!(refused.contains("past the log's head"), "{refused}");
    assert!(refused.contains("refusing to start"), "{refused}");

    // Without the snapshot the log is fine again; a publisher cursor past it is not.
    std::fs::remove_dir_all(stopped.data_dir().join("projections")).unwrap();
    std::fs::write(stopped.data_dir().join("publisher.cursor"), "9999\n").unwrap();
    let refused = stopped.start_refused(|_| {}).await;
    assert!(refused.contains("position 9999 was published"), "{refused}");
    assert!(refused.contains("refusing to start"), "{refused}");

    // And without either, it starts on the older log.
    std::fs::remove_file(stopped.data_dir().join("publisher.cursor")).unwrap();
    let server = stopped.restart(|_| {}).await;
    let list = server
        .complaints()
        .list_complaints(req(Default::default(), "operations"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.complaints.len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_damaged_log_is_refused_for_writing_and_served_read_only_up_to_the_damage() {
    use complaints_proto::complaints::audit::v1 as audit;
    use futures::StreamExt;
    let server = TestServer::start(|_| {}).await;
    let mut c = server.complaints();
    let mut names = Vec::new();
    for _ in 0..400 {
        let done = c
            .register_complaint(req(register("UK-FCA-DISP", "GB-ENG", 1_772_400_000), ROLES))
            .await
            .unwrap()
            .into_inner();
        names.push(done.name);
    }
    let mut stopped = server.shutdown().await;
    let db = stopped.data_dir().join("log").join("db");
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    // Refused for writing, with the position where the damage starts.
    let refused = stopped.start_refused(|_| {}).await;
    assert!(refused.contains("missing"), "{refused}");
    assert!(refused.contains("corruption at position"), "{refused}");

    // Read-only: it starts, serves the complaints before the damage, refuses commands,
    // and verification says where the damage starts.
    let server = stopped.restart(|c| c.read_only = true).await;
    let mut c = server.complaints();
    let first = c
        .get_complaint(req(
            complaints_proto::complaints::v1::GetComplaintRequest {
                name: names[0].clone(),
            },
            "auditor",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.name, names[0]);
    let refused = c
        .register_complaint(req(register("UK-FCA-DISP", "GB-ENG", 1_772_400_000), ROLES))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(
        refused.message().contains("read-only"),
        "{}",
        refused.message()
    );
    let mut stream = server
        .audit()
        .verify(req(audit::VerifyRequest::default(), "auditor"))
        .await
        .unwrap()
        .into_inner();
    let mut report = None;
    while let Some(message) = stream.next().await {
        report = message.unwrap().report.or(report);
    }
    let report = report.unwrap();
    assert!(!report.intact, "{report:?}");
    assert_eq!(report.break_kind, "missing", "{report:?}");
    assert_eq!(report.break_position, report.position + 1, "{report:?}");
    let mut stopped = server.shutdown().await;
    // Read-only wrote nothing: still refused for writing.
    let again = stopped.start_refused(|c| c.read_only = false).await;
    assert!(again.contains("missing"), "{again}");
}
