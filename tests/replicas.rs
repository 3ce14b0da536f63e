//! End to end: two complaintd processes on one JetStream log under concurrent load. Each
//! takes complaints through their lives (six durable commands each, every one at the
//! version the previous left), from clients of its own; then the log, read back by a
//! fresh open, is gapless, chained, every stream's versions in order, every event id
//! unique, and holds exactly the steps that were acknowledged, once each, in order.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::path::Path;

use complaints_nats::testing::NatsServer;
use complaints_testkit::{one_life, read_back_jetstream, start_replicas};

const CLIENTS_PER_PROCESS: usize = 16;
const LIVES_PER_CLIENT: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_jetstream_log_never_reorder_or_duplicate() {
    let nats = NatsServer::start();
    let url = nats.url();
    let program = Path::new(env!("CARGO_BIN_EXE_complaintd-under-test"));
    let (servers, _dirs) = start_replicas(program, &url, 2, &[]).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut tasks = Vec::new();
    for (s, server) in servers.iter().enumerate() {
        for c in 0..CLIENTS_PER_PROCESS {
            let mut client = server.client().await;
            tasks.push(tokio::spawn(async move {
                let mut names = Vec::new();
                for i in 0..LIVES_PER_CLIENT {
                    let n = (s * CLIENTS_PER_PROCESS + c) * LIVES_PER_CLIENT + i;
                    names.push(one_life(&mut client, now, n).await.0);
                }
                names
            }));
        }
    }
    let mut acknowledged = Vec::new();
    for t in tasks {
        acknowledged.extend(t.await.unwrap());
    }
    for server in servers {
        let (status, _) = server.terminate().await;
        assert!(status.success(), "{status}");
    }

    let log = read_back_jetstream(&url, "EVENTLOG").await;
    let lives = 2 * CLIENTS_PER_PROCESS * LIVES_PER_CLIENT;
    assert_eq!(acknowledged.len(), lives);
    let life = [
        "complaint.registered",
        "complaint.acknowledged",
        "complaint.assigned",
        "complaint.findings_recorded",
        "complaint.answered",
        "complaint.closed",
    ];
    for name in &acknowledged {
        let stream = format!("complaint-{}", name.trim_start_matches("complaints/"));
        let types = log
            .streams
            .get(&stream)
            .unwrap_or_else(|| panic!("{stream} missing"));
        assert_eq!(types, &life, "{stream}: each step once, in order");
    }
    let complaint_events: usize = log
        .streams
        .iter()
        .filter(|(s, _)| s.starts_with("complaint-"))
        .map(|(_, t)| t.len())
        .sum();
    assert_eq!(
        complaint_events,
        lives * life.len(),
        "nothing more, nothing twice"
    );
    println!("{} positions; {lives} lives by two processes", log.head);
}
