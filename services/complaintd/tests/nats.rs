//! complaintd publishes its events to NATS (a nats-server of the test's own): each event
//! arrives on its subject with its envelope; the publisher's status is served.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::time::Duration;

use common::{register, req_as, TestServer, NOW};
use complaints_nats::testing::NatsServer;
use complaints_proto::complaints::v1 as api;
use futures::StreamExt;
use tonic::Request;
use uuid::Uuid;

fn req<T>(message: T, roles: &str) -> Request<T> {
    req_as(message, "user:nats", roles)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_published_to_nats_as_they_are_recorded() {
    let nats = NatsServer::start();
    let watcher = async_nats::connect(nats.url()).await.unwrap();
    let mut complaints = watcher
        .subscribe("complaints.events.complaint.>")
        .await
        .unwrap();
    watcher.flush().await.unwrap();

    let server = TestServer::start(|config| config.nats_url = Some(nats.url())).await;
    let mut c = server.complaints();
    let created = c
        .register_complaint(req(register("UK-FCA-DISP", "GB-ENG", NOW - 60), "intake"))
        .await
        .unwrap()
        .into_inner();
    let uuid = created.name.trim_start_matches("complaints/").to_owned();
    let message = tokio::time::timeout(Duration::from_secs(30), complaints.next())
        .await
        .expect("published within 30 s")
        .unwrap();
    assert_eq!(
        message.subject.as_str(),
        format!("complaints.events.complaint.registered.complaint-{uuid}")
    );
    let headers = message.headers.unwrap();
    assert_eq!(
        headers.get("Complaints-Actor").unwrap().as_str(),
        "user:nats"
    );
    assert!(
        !String::from_utf8_lossy(&message.payload).contains("Ada Lovelace"),
        "personal data stays sealed on the wire"
    );

    let status = c
        .get_publisher_status(req(api::GetPublisherStatusRequest {}, "operations"))
        .await
        .unwrap()
        .into_inner();
    // The status trails what consumers already see by an acknowledgement (the cursor
    // moves after JetStream's ack); it is consistent at every moment.
    assert!(status.enabled);
    assert!(status.head_position >= 1, "{status:?}");
    assert!(
        status.published_position <= status.head_position,
        "{status:?}"
    );
    assert_eq!(status.lag, status.head_position - status.published_position);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complaintd_runs_on_the_jetstream_backend_and_two_replicas_share_it() {
    use complaintd::config::LogBackend;
    let nats = NatsServer::start();
    // Two replicas, each with a data directory of its own, on one JetStream log.
    let jetstream = |config: &mut complaintd::config::Config| {
        config.log_backend = LogBackend::Jetstream;
        config.jetstream_url = Some(nats.url());
    };
    let clock = common::manual_clock(NOW);
    let a = TestServer::start_with_clock(clock.clone(), jetstream).await;
    let b = TestServer::start_with_clock(clock.clone(), jetstream).await;
    let mut ca = a.complaints();
    let mut cb = b.complaints();
    let register = api::RegisterComplaintRequest {
        channel: api::Channel::Web as i32,
        complainant: Some(api::Complainant {
            person_id: "p-js".into(),
            name: "N".into(),
            contact: "c".into(),
            id_number: String::new(),
        }),
        ..register("UK-FCA-DISP", "GB-ENG", NOW - 60)
    };
    let created = ca
        .register_complaint(req(register, "intake"))
        .await
        .unwrap()
        .into_inner();
    // Replica b acknowledges it at the version a left it: one stream, one order.
    let acked = cb
        .acknowledge_complaint(req(
            api::AcknowledgeComplaintRequest {
                name: created.name.clone(),
                request_id: Uuid::new_v4().to_string(),
                expected_version: Some(1),
                ..Default::default()
            },
            "intake",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(acked.version, 2);
    // A stale expected version through a is refused, not forked.
    let stale = ca
        .acknowledge_complaint(req(
            api::AcknowledgeComplaintRequest {
                name: created.name.clone(),
                request_id: Uuid::new_v4().to_string(),
                expected_version: Some(1),
                ..Default::default()
            },
            "intake",
        ))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), tonic::Code::Aborted);
    // Either replica opens the complainant's data: the keys are shared.
    let via_b = cb
        .get_complaint(req(
            api::GetComplaintRequest {
                name: created.name.clone(),
            },
            "handler",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(via_b.complainant.unwrap().name, "N");
    assert_eq!(
        via_b.personal_data,
        api::PersonalDataState::PersonalDataPresent as i32
    );
    // Erased through one replica, erased for the other.
    let erased = cb
        .erase_personal_data(req(
            api::ErasePersonalDataRequest {
                person_id: "p-js".into(),
                request_id: Uuid::new_v4().to_string(),
                reason: "ER-9".into(),
            },
            "admin",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(erased.erased);
    let via_a = ca
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
        via_a.personal_data,
        api::PersonalDataState::PersonalDataErased as i32
    );
    let a = a.shutdown().await;
    b.shutdown().await;

    // Restarted, it reads the same complaint back from JetStream.
    let a = a.restart(|_| {}).await;
    let mut ca = a.complaints();
    let read = ca
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
        (read.version, read.status),
        (2, api::Status::Acknowledged as i32)
    );
    assert_eq!(
        read.complainant.unwrap().name,
        "",
        "still erased after a restart"
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nats_payload_json_the_bodies_are_json_and_personal_data_stays_sealed() {
    let nats = NatsServer::start();
    let watcher = async_nats::connect(nats.url()).await.unwrap();
    let mut complaints = watcher
        .subscribe("complaints.events.complaint.>")
        .await
        .unwrap();
    watcher.flush().await.unwrap();
    let server = TestServer::start(|config| {
        config.nats_url = Some(nats.url());
        config.nats_payload = complaintd::config::NatsPayload::Json;
    })
    .await;
    let mut c = server.complaints();
    let created = c
        .register_complaint(req(register("UK-FCA-DISP", "GB-ENG", NOW - 60), "intake"))
        .await
        .unwrap()
        .into_inner();
    let message = tokio::time::timeout(Duration::from_secs(30), complaints.next())
        .await
        .expect("published within 30 s")
        .unwrap();
    let headers = message.headers.unwrap();
    assert_eq!(
        headers.get("content-type").unwrap().as_str(),
        "application/json"
    );
    assert_eq!(
        headers.get("ce-dataschema").unwrap().as_str(),
        "urn:protobuf:complaints.events.v1.ComplaintEvent"
    );
    let body: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(body["actor"], "user:nats", "{body}");
    assert_eq!(
        body["registered"]["complaintId"].as_str().unwrap(),
        created.name.trim_start_matches("complaints/"),
        "{body}"
    );
    assert!(
        !String::from_utf8_lossy(&message.payload).contains("Ada Lovelace"),
        "personal data stays sealed on the wire: {body}"
    );
    server.shutdown().await;
}
