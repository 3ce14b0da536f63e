//! complaintd publishes its events to NATS (a nats-server of the test's own): each event
//! arrives on its subject with its envelope; the publisher's status is served.

use std::sync::Arc;
use std::time::Duration;

use complaintd::config::Config;
use complaints_nats::testing::NatsServer;
use complaints_proto::complaints::v1 as api;
use complaints_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use eventlog::{ManualClock, Timestamp};
use futures::StreamExt;
use tonic::Request;
use uuid::Uuid;

const NOW: i64 = 1_772_452_800;

fn req<T>(message: T, roles: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-principal", "user:nats".parse().unwrap());
    request
        .metadata_mut()
        .insert("x-roles", roles.parse().unwrap());
    request
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

    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        nats_url: Some(nats.url()),
        ..Config::default()
    };
    let clock = Arc::new(ManualClock::new(Timestamp::from_micros(NOW * 1_000_000)));
    let running = complaintd::server::start_with_clock(&config, clock)
        .await
        .unwrap();
    let mut c = ComplaintServiceClient::connect(format!("http://{}", running.addr))
        .await
        .unwrap();
    let created = c
        .register_complaint(req(
            api::RegisterComplaintRequest {
                request_id: Uuid::new_v4().to_string(),
                channel: api::Channel::Email as i32,
                complainant: Some(api::Complainant {
                    person_id: "p-1".into(),
                    name: "Ada Lovelace".into(),
                    contact: "ada@example.org".into(),
                    id_number: String::new(),
                }),
                unit: "cards".into(),
                product: "card".into(),
                category: "fees".into(),
                claim: "refund".into(),
                facts: "twice".into(),
                receive_time: Some(prost_types::Timestamp {
                    seconds: NOW - 60,
                    nanos: 0,
                }),
                regime: "UK-FCA-DISP".into(),
                region: "GB-ENG".into(),
                ..Default::default()
            },
            "intake",
        ))
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
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complaintd_runs_on_the_jetstream_backend_and_two_replicas_share_it() {
    use complaintd::config::LogBackend;
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = |name: &str| Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join(name),
        log_backend: LogBackend::Jetstream,
        jetstream_url: Some(nats.url()),
        ..Config::default()
    };
    let clock = Arc::new(ManualClock::new(Timestamp::from_micros(NOW * 1_000_000)));
    let a = complaintd::server::start_with_clock(&config("a"), clock.clone())
        .await
        .unwrap();
    let b = complaintd::server::start_with_clock(&config("b"), clock.clone())
        .await
        .unwrap();
    let mut ca = ComplaintServiceClient::connect(format!("http://{}", a.addr))
        .await
        .unwrap();
    let mut cb = ComplaintServiceClient::connect(format!("http://{}", b.addr))
        .await
        .unwrap();
    let register = api::RegisterComplaintRequest {
        request_id: Uuid::new_v4().to_string(),
        channel: api::Channel::Web as i32,
        complainant: Some(api::Complainant {
            person_id: "p-js".into(),
            name: "N".into(),
            contact: "c".into(),
            id_number: String::new(),
        }),
        unit: "cards".into(),
        product: "card".into(),
        category: "fees".into(),
        claim: "c".into(),
        facts: "f".into(),
        receive_time: Some(prost_types::Timestamp {
            seconds: NOW - 60,
            nanos: 0,
        }),
        regime: "UK-FCA-DISP".into(),
        region: "GB-ENG".into(),
        ..Default::default()
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
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();

    // Restarted, it reads the same complaint back from JetStream.
    let a = complaintd::server::start_with_clock(&config("a"), clock)
        .await
        .unwrap();
    let mut ca = ComplaintServiceClient::connect(format!("http://{}", a.addr))
        .await
        .unwrap();
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
    a.shutdown().await.unwrap();
}
