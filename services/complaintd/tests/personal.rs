//! Complainants' personal data: sealed at rest per person, shown only to roles that may
//! see it, and erasable for good (crypto-shredding) while every event stays and the hash
//! chain still verifies.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::{req, Clients, TestServer, NOW};
use complaints_proto::complaints::audit::v1 as audit;
use complaints_proto::complaints::v1 as api;
use futures::StreamExt;
use tonic::Code;
use uuid::Uuid;

const NAME: &str = "Zebulon Quixote";
const ID_NUMBER: &str = "QX-998877";

fn register(person: &str, name: &str) -> api::RegisterComplaintRequest {
    api::RegisterComplaintRequest {
        request_id: Uuid::new_v4().to_string(),
        channel: api::Channel::Email as i32,
        complainant: Some(api::Complainant {
            person_id: person.into(),
            name: name.into(),
            contact: "zq@example.org".into(),
            id_number: ID_NUMBER.into(),
        }),
        unit: "cards".into(),
        product: "card".into(),
        category: "fees".into(),
        claim: "refund".into(),
        facts: format!("{name} was charged twice"),
        receive_time: Some(prost_types::Timestamp {
            seconds: NOW - 3600,
            nanos: 0,
        }),
        regime: "UK-FCA-DISP".into(),
        region: "GB-ENG".into(),
        ..Default::default()
    }
}

async fn get(c: &mut Clients, name: &str, roles: &str) -> api::Complaint {
    c.api
        .get_complaint(req(api::GetComplaintRequest { name: name.into() }, roles))
        .await
        .unwrap()
        .into_inner()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_is_sealed_shown_by_role_and_erased_for_good() {
    let server = TestServer::start(|_| {}).await;
    let mut c = server.clients();
    let zeb = c
        .api
        .register_complaint(req(register("p-zeb", NAME), "intake"))
        .await
        .unwrap()
        .into_inner();
    let other = c
        .api
        .register_complaint(req(register("p-other", "Olive Other"), "intake"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(zeb.complainant.as_ref().unwrap().name, NAME);

    // Shown to those who handle complaints; withheld from an auditor without the grant.
    let handler = get(&mut c, &zeb.name, "handler").await;
    assert_eq!(handler.complainant.unwrap().id_number, ID_NUMBER);
    assert_eq!(
        handler.personal_data,
        api::PersonalDataState::PersonalDataPresent as i32
    );
    let auditor = get(&mut c, &zeb.name, "auditor").await;
    assert_eq!(
        auditor.personal_data,
        api::PersonalDataState::PersonalDataWithheld as i32
    );
    assert_eq!(auditor.complainant.as_ref().unwrap().name, "");
    assert_eq!(auditor.facts, "");
    let granted = get(&mut c, &zeb.name, "auditor,personal_data").await;
    assert_eq!(granted.complainant.unwrap().name, NAME);

    // At rest, sealed: no stored record holds the name or the id number.
    let stored = |c: &mut Clients| {
        let mut audit = c.audit.clone();
        async move {
            let mut stream = audit
                .stream_events(req(audit::StreamEventsRequest::default(), "auditor"))
                .await
                .unwrap()
                .into_inner();
            let mut all = Vec::new();
            while let Some(e) = stream.next().await {
                if let Some(audit::audit_event::Body::Stored(bytes)) = e.unwrap().body {
                    all.push(bytes.to_vec());
                }
            }
            all
        }
    };
    let records = stored(&mut c).await;
    assert!(records.len() >= 3);
    for record in &records {
        assert!(!contains(record, NAME) && !contains(record, ID_NUMBER));
    }

    // Exports as JSON: sealed for an auditor, in the clear with the personal_data grant.
    let json_of = |c: &mut Clients, roles: &'static str| {
        let mut audit = c.audit.clone();
        let name = zeb.name.clone();
        async move {
            let mut stream = audit
                .stream_events(req(
                    audit::StreamEventsRequest {
                        complaint: name,
                        format: audit::EventFormat::Json as i32,
                        ..Default::default()
                    },
                    roles,
                ))
                .await
                .unwrap()
                .into_inner();
            let Some(audit::audit_event::Body::Json(json)) =
                stream.next().await.unwrap().unwrap().body
            else {
                panic!("json expected")
            };
            json
        }
    };
    let sealed = json_of(&mut c, "auditor").await;
    assert!(
        !sealed.contains(NAME) && sealed.contains("ciphertext"),
        "{sealed}"
    );
    let opened = json_of(&mut c, "auditor,personal_data").await;
    assert!(opened.contains(NAME), "{opened}");

    // Erase: only an admin; a retry answers the same.
    let erase = |request_id: &str| api::ErasePersonalDataRequest {
        person_id: "p-zeb".into(),
        request_id: request_id.into(),
        reason: "erasure request ER-17".into(),
    };
    let denied = c
        .api
        .erase_personal_data(req(erase(&Uuid::new_v4().to_string()), "supervisor"))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let request_id = Uuid::new_v4().to_string();
    let erased = c
        .api
        .erase_personal_data(req(erase(&request_id), "admin"))
        .await
        .unwrap()
        .into_inner();
    assert!(erased.erased);
    let again = c
        .api
        .erase_personal_data(req(erase(&request_id), "admin"))
        .await
        .unwrap()
        .into_inner();
    assert!(again.erased, "a retry answers as the first call did");

    // Reads show the fields as erased, to everyone; the other person is untouched.
    for roles in ["handler", "auditor,personal_data"] {
        let read = get(&mut c, &zeb.name, roles).await;
        assert_eq!(
            read.personal_data,
            api::PersonalDataState::PersonalDataErased as i32
        );
        let complainant = read.complainant.unwrap();
        assert_eq!(
            (complainant.name.as_str(), complainant.id_number.as_str()),
            ("", "")
        );
        assert_eq!(
            complainant.person_id, "p-zeb",
            "the person id is not personal data"
        );
        assert_eq!(read.facts, "");
        assert_eq!(
            read.status,
            api::Status::Received as i32,
            "the events remain"
        );
    }
    assert_eq!(
        get(&mut c, &other.name, "handler")
            .await
            .complainant
            .unwrap()
            .name,
        "Olive Other"
    );
    // Nothing new is kept about an erased person.
    let refused = c
        .api
        .add_new_facts(req(
            api::AddNewFactsRequest {
                name: zeb.name.clone(),
                request_id: Uuid::new_v4().to_string(),
                expected_version: None,
                facts: "more about Zebulon".into(),
                ..Default::default()
            },
            "handler",
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    // Steps without personal data go on.
    c.api
        .acknowledge_complaint(req(
            api::AcknowledgeComplaintRequest {
                name: zeb.name.clone(),
                request_id: Uuid::new_v4().to_string(),
                expected_version: None,
                ..Default::default()
            },
            "intake",
        ))
        .await
        .unwrap();

    // Every event is still there and the chain verifies; the erasure is on record.
    let after = stored(&mut c).await;
    assert_eq!(
        &after[..records.len()],
        &records[..],
        "no stored byte changed"
    );
    let mut verify = c
        .audit
        .verify(req(audit::VerifyRequest::default(), "auditor"))
        .await
        .unwrap()
        .into_inner();
    let mut report = None;
    while let Some(m) = verify.next().await {
        report = m.unwrap().report;
    }
    let report = report.unwrap();
    assert!(report.intact, "{}", report.summary);
    let mut erasures = c
        .audit
        .stream_events(req(
            audit::StreamEventsRequest {
                event_types: vec!["personal_data.erased".into()],
                format: audit::EventFormat::Json as i32,
                ..Default::default()
            },
            "auditor",
        ))
        .await
        .unwrap()
        .into_inner();
    let recorded = erasures.next().await.unwrap().unwrap();
    let Some(audit::audit_event::Body::Json(json)) = recorded.body else {
        panic!("json expected")
    };
    assert!(json.contains("p-zeb") && json.contains("ER-17"), "{json}");
    assert!(erasures.next().await.is_none(), "recorded once");

    // After a restart: still erased, the other still readable.
    let server = server.shutdown().await.restart(|_| {}).await;
    let mut c = server.clients();
    assert_eq!(
        get(&mut c, &zeb.name, "handler").await.personal_data,
        api::PersonalDataState::PersonalDataErased as i32
    );
    assert_eq!(
        get(&mut c, &other.name, "handler")
            .await
            .complainant
            .unwrap()
            .name,
        "Olive Other"
    );
    server.shutdown().await;
}
