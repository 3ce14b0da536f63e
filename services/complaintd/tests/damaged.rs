//! complaintd refuses to start on a log that lost records, and says where: beside the
//! log's own witness (tested in eventlog-sled), a snapshot of the projections taken past
//! the head, or a publisher cursor past it, is evidence of loss.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::path::Path;

use common::{register, req, TestServer};

const ROLES: &str = "intake,handler";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

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
    let stopped = server.shutdown().await;

    // The log "restored" apart from the snapshot saved at the last shutdown.
    std::fs::remove_dir_all(&log).unwrap();
    copy_dir(&older, &log);
    let refused = stopped.start_refused().await;
    assert!(refused.contains("past the log's head"), "{refused}");
    assert!(refused.contains("refusing to start"), "{refused}");

    // Without the snapshot the log is fine again; a publisher cursor past it is not.
    std::fs::remove_dir_all(stopped.data_dir().join("projections")).unwrap();
    std::fs::write(stopped.data_dir().join("publisher.cursor"), "9999\n").unwrap();
    let refused = stopped.start_refused().await;
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
