//! End to end: complaintd as a process. A complaint is driven from receipt to close over
//! gRPC, the server is stopped with SIGTERM, started again on the same data, and the
//! complaint is found exactly as it was.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::path::Path;
use std::time::Duration;

use complaints_proto::complaints::v1 as api;
use complaints_testkit::{req_as, rid, ts, ServerProcess};
use tonic::Request;
use uuid::Uuid;

/// Starts complaintd on a free port with `data_dir`; returns once it says it is ready
/// (read from its JSON log, so no waiting on timers), with how long that took.
async fn start(data_dir: &Path) -> (ServerProcess, Duration) {
    start_logging(data_dir, "info").await
}

/// [`start`] with `RUST_LOG` set to `filter`.
async fn start_logging(data_dir: &Path, filter: &str) -> (ServerProcess, Duration) {
    ServerProcess::start(
        Path::new(env!("CARGO_BIN_EXE_complaintd-under-test")),
        data_dir,
        &[("RUST_LOG", filter)],
    )
    .await
}

fn req<T>(message: T, roles: &str) -> Request<T> {
    req_as(message, "user:e2e", roles)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complaint_survives_a_restart_exactly() {
    let dir = tempfile_dir();
    let (server, ready) = start(&dir).await;
    println!("first start ready after {ready:?}");
    let mut c = server.client().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let created = c
        .register_complaint(req(
            api::RegisterComplaintRequest {
                request_id: rid(),
                complaint_id: String::new(),
                channel: api::Channel::Letter as i32,
                complainant: Some(api::Complainant {
                    person_id: "person-e2e".into(),
                    name: "Grace Hopper".into(),
                    contact: "grace@example.org".into(),
                    id_number: String::new(),
                }),
                unit: "payments".into(),
                employee: String::new(),
                product: "transfer".into(),
                category: "delay".into(),
                claim: "interest for the delay".into(),
                facts: "a transfer took nine days".into(),
                receive_time: ts(now - 3600),
                regime: "UK-FCA-PSD".into(),
                region: "GB-ENG".into(),
                regulator: None,
                variant: String::new(),
            },
            "intake",
        ))
        .await
        .unwrap()
        .into_inner();
    let name = created.name.clone();
    c.acknowledge_complaint(req(
        api::AcknowledgeComplaintRequest {
            name: name.clone(),
            request_id: rid(),
            expected_version: Some(1),
            ..Default::default()
        },
        "intake",
    ))
    .await
    .unwrap();
    c.assign_complaint(req(
        api::AssignComplaintRequest {
            name: name.clone(),
            request_id: rid(),
            expected_version: Some(2),
            unit: "payments".into(),
            handler: "emp-5".into(),
        },
        "intake",
    ))
    .await
    .unwrap();
    c.record_findings(req(
        api::RecordFindingsRequest {
            name: name.clone(),
            request_id: rid(),
            expected_version: Some(3),
            findings: "manual review queue".into(),
            root_cause: api::RootCause::ProcessFailure as i32,
            evidence: vec![],
        },
        "handler",
    ))
    .await
    .unwrap();
    c.answer_complaint(req(
        api::AnswerComplaintRequest {
            name: name.clone(),
            request_id: rid(),
            expected_version: Some(4),
            decision: api::Decision::Upheld as i32,
            redress: vec![api::Redress {
                kind: api::RedressKind::Interest as i32,
                amount: Some(api::Money {
                    minor_units: 1_250,
                    currency_code: "GBP".into(),
                }),
            }],
            delivery: api::DeliveryMethod::DeliveryLetter as i32,
            summary: "interest paid".into(),
            ..Default::default()
        },
        "handler",
    ))
    .await
    .unwrap();
    let closed = c
        .close_complaint(req(
            api::CloseComplaintRequest {
                name: name.clone(),
                request_id: rid(),
                expected_version: Some(5),
            },
            "handler",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((closed.version, closed.status()), (6, api::Status::Closed));
    drop(c);

    let (status, log) = server.terminate().await;
    assert!(
        status.success(),
        "complaintd exits cleanly on SIGTERM: {status:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("every acknowledged event is on disk")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .chain(std::iter::once(&String::new()))
            .all(|l| !l.contains("Grace Hopper")),
        "no personal data in the log"
    );

    let (server, ready) = start(&dir).await;
    println!("restart ready after {ready:?}");
    let mut c = server.client().await;
    let again = c
        .get_complaint(req(
            api::GetComplaintRequest { name: name.clone() },
            "handler",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, closed, "the same state after a restart");
    let list = c
        .list_complaints(req(api::ListComplaintsRequest::default(), "handler"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.complaints.len(), 1);
    assert_eq!(
        (list.complaints[0].name.as_str(), list.complaints[0].version),
        (name.as_str(), 6)
    );
    drop(c);
    let (status, log) = server.terminate().await;
    assert!(
        status.success(),
        "complaintd exits cleanly on SIGTERM: {status:?}\n{}",
        log.join("\n")
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("complaintd-e2e-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Regression test: the signal handlers were installed only after the server said it was
/// ready, so a SIGTERM right then killed it without a graceful shutdown (seen as a flaky
/// exit status 15 in `a_complaint_survives_a_restart_exactly`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_right_after_ready_shuts_down_gracefully() {
    for _ in 0..5 {
        let dir = tempfile_dir();
        let (server, _) = start(&dir).await;
        let (status, log) = server.terminate().await;
        assert!(
            status.success(),
            "exit status {status:?}\n{}",
            log.join("\n")
        );
        assert!(
            log.iter()
                .any(|l| l.contains("every acknowledged event is on disk")),
            "{log:?}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}

/// The test complainant: their name and id number must never reach the logs.
const SECRET_NAME: &str = "Philippa Nightingale-Quist";
const SECRET_ID: &str = "NI-ZX-551234";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_personal_data_reaches_the_logs_of_a_full_run() {
    let dir = tempfile_dir();
    // debug: everything the service and its libraries say short of wire-level tracing.
    let (server, _) = start_logging(&dir, "debug").await;
    let mut c = server.client().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let register = |name: &str| api::RegisterComplaintRequest {
        request_id: rid(),
        channel: api::Channel::Hotline as i32,
        complainant: Some(api::Complainant {
            person_id: "p-secret".into(),
            name: name.into(),
            contact: format!("{SECRET_ID}@example.org"),
            id_number: SECRET_ID.into(),
        }),
        unit: "payments".into(),
        product: "transfer".into(),
        category: "delay".into(),
        claim: format!("{SECRET_NAME} wants the money back"),
        facts: format!("account of {SECRET_NAME}, id {SECRET_ID}"),
        receive_time: ts(now - 60),
        regime: "UK-FCA-PSD".into(),
        region: "GB-ENG".into(),
        ..Default::default()
    };
    let created = c
        .register_complaint(req(register(SECRET_NAME), "intake"))
        .await
        .unwrap()
        .into_inner();
    // Refusals that carry the personal data back in the request.
    let mut bad = register(&SECRET_NAME.repeat(40));
    bad.regime = format!("{SECRET_ID}-regime");
    let refused = c.register_complaint(req(bad, "intake")).await.unwrap_err();
    assert!(!refused.message().contains(SECRET_NAME) && !refused.message().contains(SECRET_ID));
    let denied = c
        .register_complaint(req(register(SECRET_NAME), "operations"))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    c.add_new_facts(req(
        api::AddNewFactsRequest {
            name: created.name.clone(),
            request_id: rid(),
            expected_version: None,
            facts: format!("{SECRET_NAME} called again"),
            ..Default::default()
        },
        "handler",
    ))
    .await
    .unwrap();
    let read = c
        .get_complaint(req(
            api::GetComplaintRequest {
                name: created.name.clone(),
            },
            "handler",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        read.complainant.unwrap().name,
        SECRET_NAME,
        "the data is there to read"
    );
    c.erase_personal_data(req(
        api::ErasePersonalDataRequest {
            person_id: "p-secret".into(),
            request_id: rid(),
            reason: "ER-1".into(),
        },
        "admin",
    ))
    .await
    .unwrap();
    let before = server.before.clone();
    let (status, rest) = server.terminate().await;
    assert!(status.success());

    let all: Vec<&str> = before
        .iter()
        .chain(&rest)
        .map(std::string::String::as_str)
        .collect();
    assert!(
        all.iter().any(|l| l.contains("personal data erased")),
        "the run's log was captured (and the erasure is logged by id)"
    );
    for line in all {
        for secret in [SECRET_NAME, SECRET_ID, "Nightingale"] {
            assert!(!line.contains(secret), "personal data in the log: {line}");
        }
    }
}
