//! complaintd refuses to start on a log that lost records, and says where: beside the
//! log's own witness (tested in eventlog-sled), the key store having seen the log reach
//! further, a snapshot of the projections taken past the head, a publisher cursor past
//! it, or a JetStream stream holding later events, is evidence of loss. A key store that
//! is not the log's own is refused too.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::{copy_dir, register, req, TestServer};

const ROLES: &str = "intake,handler";

/// Registers `n` complaints, each of another person (so each makes a key).
async fn register_some(server: &TestServer, n: usize) {
    let mut c = server.complaints();
    for _ in 0..n {
        let mut r = register("UK-FCA-DISP", "GB-ENG", 1_772_400_000);
        if let Some(p) = r.complainant.as_mut() {
            p.person_id = format!("person-{}", uuid::Uuid::new_v4());
        }
        c.register_complaint(req(r, ROLES)).await.unwrap();
    }
}

/// Registers `n` complaints and waits until the last is published (seen on `published`).
async fn register_published(server: &TestServer, n: usize, published: &mut async_nats::Subscriber) {
    use futures::StreamExt;
    let mut c = server.complaints();
    let mut last = String::new();
    for _ in 0..n {
        last = c
            .register_complaint(req(register("UK-FCA-DISP", "GB-ENG", 1_772_400_000), ROLES))
            .await
            .unwrap()
            .into_inner()
            .name;
    }
    let stream = format!("complaint-{}", last.trim_start_matches("complaints/"));
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(m) = published.next().await {
            let headers = m.headers.unwrap();
            if headers.get("Complaints-Stream").unwrap().as_str() == stream {
                return;
            }
        }
    })
    .await
    .expect("published within 30 s");
}

#[tokio::test]
async fn the_key_store_a_snapshot_or_a_publisher_cursor_past_the_head_refuses_the_start() {
    let server = TestServer::start(|_| {}).await;
    register_some(&server, 2).await;
    let stopped = server.shutdown().await;
    // An older copy of the log and the keys (each with its own, consistent witness).
    let (log, keys) = (
        stopped.data_dir().join("log"),
        stopped.data_dir().join("keys"),
    );
    let (older_log, older_keys) = (
        stopped.dir().join("older-log"),
        stopped.dir().join("older-keys"),
    );
    copy_dir(&log, &older_log);
    copy_dir(&keys, &older_keys);
    let server = stopped.restart(|_| {}).await;
    register_some(&server, 3).await;
    let mut stopped = server.shutdown().await;

    // The log "restored" alone: the key store saw it reach further.
    std::fs::remove_dir_all(&log).unwrap();
    copy_dir(&older_log, &log);
    let refused = stopped.start_refused(|_| {}).await;
    assert!(refused.contains("the key store in"), "{refused}");
    assert!(refused.contains("past its head"), "{refused}");
    assert!(refused.contains("corruption at position"), "{refused}");

    // With the keys of the same time: the snapshot saved at the last shutdown.
    std::fs::remove_dir_all(&keys).unwrap();
    copy_dir(&older_keys, &keys);
    let refused = stopped.start_refused(|_| {}).await;
    assert!(refused.contains("past the log's head"), "{refused}");
    assert!(refused.contains("refusing to start"), "{refused}");

    // Without the snapshot the log is fine again; a publisher cursor past it is not.
    std::fs::remove_dir_all(stopped.data_dir().join("projections")).unwrap();
    std::fs::write(stopped.data_dir().join("publisher.cursor"), "9999\n").unwrap();
    let refused = stopped.start_refused(|_| {}).await;
    assert!(refused.contains("position 9999 was published"), "{refused}");
    assert!(refused.contains("refusing to start"), "{refused}");

    // And without any, it starts on the older log.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jetstream_stream_holding_what_the_log_lost_refuses_the_start() {
    let nats = complaints_nats::testing::NatsServer::start();
    let watcher = async_nats::connect(nats.url()).await.unwrap();
    let mut published = watcher.subscribe("complaints.events.>").await.unwrap();
    watcher.flush().await.unwrap();
    let url = nats.url();
    let server = TestServer::start(|c| c.nats_url = Some(url.clone())).await;
    register_published(&server, 2, &mut published).await;
    let stopped = server.shutdown().await;
    let data = stopped.data_dir();
    let older = stopped.dir().join("older");
    copy_dir(&data, &older);
    let server = stopped.restart(|c| c.nats_url = Some(url.clone())).await;
    register_published(&server, 3, &mut published).await;
    let mut stopped = server.shutdown().await;

    // Everything on disk rolled back together (log, keys, snapshot, cursor): only the
    // stream remembers the three later complaints.
    std::fs::remove_dir_all(&data).unwrap();
    copy_dir(&older, &data);
    let refused = stopped
        .start_refused(|c| c.nats_url = Some(url.clone()))
        .await;
    assert!(
        refused.contains("the stream COMPLAINTS_EVENTS holds position"),
        "{refused}"
    );
    assert!(
        refused.contains("the first missing position is"),
        "{refused}"
    );
    assert!(refused.contains("refusing to start"), "{refused}");

    // Not publishing, nothing else says so: it starts, on the two.
    let server = stopped.restart(|c| c.nats_url = None).await;
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
async fn a_key_store_that_is_not_the_logs_own_refuses_the_start() {
    let server = TestServer::start(|_| {}).await;
    register_some(&server, 2).await;
    let mut stopped = server.shutdown().await;
    let keys = stopped.data_dir().join("keys");
    let moved = stopped.dir().join("moved-keys");
    copy_dir(&keys, &moved);

    // Deleted as a whole (store and witness): a new, empty store would read every
    // complainant as erased.
    std::fs::remove_dir_all(&keys).unwrap();
    let refused = stopped.start_refused(|_| {}).await;
    assert!(refused.contains("is not the one the log"), "{refused}");
    assert!(refused.contains("read as erased"), "{refused}");
    // And with the log's record of its key store gone too: a new store beside a log
    // that holds records is still refused.
    let record = stopped.data_dir().join("keys.id");
    let kept = std::fs::read(&record).unwrap();
    std::fs::remove_file(&record).unwrap();
    let refused = stopped.start_refused(|_| {}).await;
    assert!(refused.contains("is new, but the log in"), "{refused}");
    std::fs::write(&record, kept).unwrap();
    // keys_dir pointing at another store: the same.
    let elsewhere = stopped.dir().join("elsewhere");
    let refused = stopped
        .start_refused(|c| c.keys_dir = Some(elsewhere.clone()))
        .await;
    assert!(refused.contains("is not the one the log"), "{refused}");
    // Pointing at the right one, wherever it is: it starts, with the personal data.
    let server = stopped.restart(|c| c.keys_dir = Some(moved.clone())).await;
    let list = server
        .complaints()
        .list_complaints(req(Default::default(), "operations"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.complaints.len(), 2);
    let one = server
        .complaints()
        .get_complaint(req(
            complaints_proto::complaints::v1::GetComplaintRequest {
                name: list.complaints[0].name.clone(),
            },
            "handler",
        ))
        .await
        .unwrap()
        .into_inner();
    let complainant = one.complainant.unwrap();
    assert!(!complainant.name.is_empty(), "{complainant:?}");
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

/// Changes the payload of the record at `position` in a stopped log's raw store, encoding
/// it anew (its checksum right): only the hash chain shows it.
fn alter_record(log_dir: &std::path::Path, position: u64) {
    let db = eventlog_sled::open_raw(log_dir).unwrap();
    let (key, value) = db
        .range(&[b'c'][..]..=&[&[b'c'][..], &position.to_be_bytes()[..]].concat()[..])
        .next_back()
        .unwrap()
        .unwrap();
    let first = u64::from_be_bytes(key[1..9].try_into().unwrap());
    let count = u32::from_le_bytes(value[..4].try_into().unwrap());
    let mut out = count.to_le_bytes().to_vec();
    let mut at = 4;
    for p in first..first + u64::from(count) {
        let len = u32::from_le_bytes(value[at..at + 4].try_into().unwrap()) as usize;
        let mut bytes = bytes::Bytes::copy_from_slice(&value[at + 4..at + 4 + len]);
        at += 4 + len;
        if p == position {
            let mut record = eventlog::codec::decode(p, bytes).unwrap();
            record.actor = "user:mallory".into();
            bytes = eventlog::codec::encode(&record).0.into();
        }
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    db.insert(key, out).unwrap();
    db.flush().unwrap();
}

/// A start loads the log's indexes from its checkpoint and checks the history behind it
/// in the background: a record changed there is found at its position. If the check ends
/// before the start does, the start is refused; if after, from then on the server is not
/// ready and every call that reads the log is refused (DATA_LOSS). Either way the
/// position is named.
#[tokio::test]
async fn history_changed_behind_the_index_checkpoint_is_found_after_the_start_and_refused() {
    let server = TestServer::start(|_| {}).await;
    register_some(&server, 20).await;
    assert!(server.running().history_checked().await.is_none());
    let stopped = server.shutdown().await;
    let log_dir = stopped.data_dir().join("log");
    assert!(log_dir.join("index-checkpoint").is_file());
    alter_record(&log_dir, 5);

    let mut stopped = match stopped.try_restart(|_| {}).await {
        Err((refused, stopped)) => {
            assert!(refused.contains("corruption at position 5"), "{refused}");
            assert!(
                refused.contains("history the index checkpoint covers"),
                "{refused}"
            );
            stopped
        }
        Ok(server) => {
            let found = server.running().history_checked().await;
            assert!(
                matches!(found, Some(eventlog::Error::Corruption { position: 5, .. })),
                "{found:?}"
            );
            assert!(!server.running().is_ready());
            let refused = server
                .complaints()
                .register_complaint(req(register("UK-FCA-DISP", "GB-ENG", 1_772_400_000), ROLES))
                .await
                .unwrap_err();
            assert_eq!(refused.code(), tonic::Code::DataLoss, "{refused:?}");
            // The log refuses everything, its close included: the stop says so.
            let (stop, stopped) = server.stop().await;
            let stop = stop.unwrap_err();
            assert!(stop.contains("position 5"), "{stop}");
            stopped
        }
    };

    // The full check at open refuses the start itself, naming the position.
    let refused = stopped
        .start_refused(|c| c.log_full_check_at_open = true)
        .await;
    assert!(refused.contains("corruption at position 5"), "{refused}");
}
