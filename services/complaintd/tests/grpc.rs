//! complaintd's gRPC API, in process on port 0, over a real sled log.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::{req_as, rid, ts, TestServer, NOW};
use complaints_proto::complaints::v1 as api;
use complaints_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use eventlog::{Direction, EventLog};
use futures::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;
use uuid::Uuid;

async fn server() -> TestServer {
    TestServer::start(|_| {}).await
}

/// A client that calls as `principal` (none if empty) with `roles`.
#[derive(Clone)]
struct Client {
    grpc: ComplaintServiceClient<Channel>,
    principal: &'static str,
    roles: &'static str,
}

fn client(server: &TestServer, principal: &'static str, roles: &'static str) -> Client {
    Client {
        grpc: server.complaints(),
        principal,
        roles,
    }
}

impl Client {
    fn req<T>(&self, message: T) -> Request<T> {
        req_as(message, self.principal, self.roles)
    }
}

fn register_request() -> api::RegisterComplaintRequest {
    api::RegisterComplaintRequest {
        employee: "emp-9".into(),
        ..common::register("UK-FCA-DISP", "GB-ENG", NOW - 3600)
    }
}

fn fields(status: &Status) -> Vec<String> {
    let details = status.get_error_details();
    let bad = details.bad_request().expect("BadRequest details");
    bad.field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect()
}

fn gbp(minor_units: i64) -> api::Redress {
    api::Redress {
        kind: api::RedressKind::Refund as i32,
        amount: Some(api::Money {
            minor_units,
            currency_code: "GBP".into(),
        }),
    }
}

macro_rules! step {
    ($client:expr, $method:ident, $request:expr) => {
        $client.grpc.clone().$method($client.req($request)).await
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complaint_goes_through_its_whole_life_over_grpc() {
    let server = server().await;
    let handler = client(&server, "user:hana", "handler,intake,regulator_gateway");
    let supervisor = client(&server, "user:sam", "supervisor");

    let created = step!(handler, register_complaint, register_request())
        .unwrap()
        .into_inner();
    assert_eq!(
        (created.version, created.status()),
        (1, api::Status::Received)
    );
    let name = created.name.clone();
    assert!(name.starts_with("complaints/"));
    let n = || name.clone();

    let mut v = created.version;
    macro_rules! next {
        ($client:expr, $method:ident, $request:expr, $status:expr) => {{
            let c = step!($client, $method, $request).unwrap().into_inner();
            v += 1;
            assert_eq!(c.version, v, stringify!($method));
            assert_eq!(c.status(), $status, stringify!($method));
            c
        }};
    }
    use api::Status as S;
    next!(
        handler,
        acknowledge_complaint,
        api::AcknowledgeComplaintRequest {
            name: n(),
            request_id: rid(),
            expected_version: Some(v),
            ..Default::default()
        },
        S::Acknowledged
    );
    next!(
        handler,
        assign_complaint,
        api::AssignComplaintRequest {
            name: n(),
            request_id: rid(),
            expected_version: None,
            unit: "cards".into(),
            handler: "emp-3".into()
        },
        S::InProgress
    );
    let c = next!(
        handler,
        classify_complex,
        api::ClassifyComplexRequest {
            name: n(),
            request_id: rid(),
            expected_version: None,
            reason: "several products".into()
        },
        S::InProgress
    );
    assert!(c.complex);
    next!(
        handler,
        send_holding_response,
        api::SendHoldingResponseRequest {
            name: n(),
            request_id: rid(),
            expected_version: None,
            reason: "waiting for the scheme".into(),
            delivery: api::DeliveryMethod::DeliveryEmail as i32,
            ..Default::default()
        },
        S::InProgress
    );
    next!(
        handler,
        request_extension,
        api::RequestExtensionRequest {
            name: n(),
            request_id: rid(),
            expected_version: None,
            days: 30,
            reason: "especially complex".into()
        },
        S::InProgress
    );
    let c = next!(
        supervisor,
        approve_extension,
        api::ApproveExtensionRequest {
            name: n(),
            request_id: rid(),
            expected_version: None,
            complainant_notify_time: ts(NOW)
        },
        S::InProgress
    );
    assert_eq!(c.extensions[0].days, 30);
    next!(
        handler,
        pause_clock,
        api::PauseClockRequest {
            name: n(),
            request_id: rid(),
            expected_version: None,
            reason: api::PauseReason::ExternalAppraisal as i32,
            complainant_notify_time: ts(NOW),
            ..Default::default()
        },
        S::InProgress
    );
    let c = next!(
        handler,
        resume_clock,
        api::ResumeClockRequest {
            name: n(),
            request_id: rid(),
            expected_version: None,
            ..Default::default()
        },
        S::InProgress
    );
    assert!(c.pauses[0].end_time.is_some());
    next!(
        handler,
        add_new_facts,
        api::AddNewFactsRequest {
            name: n(),
            request_id: rid(),
            expected_version: None,
            facts: "charged again".into(),
            ..Default::default()
        },
        S::InProgress
    );
    let c = next!(
        handler,
        record_findings,
        api::RecordFindingsRequest {
            name: n(),
            request_id: rid(),
            expected_version: None,
            findings: "batch job ran twice".into(),
            root_cause: api::RootCause::SystemError as i32,
            evidence: vec!["INC-1".into()]
        },
        S::InProgress
    );
    assert_eq!(c.root_cause(), api::RootCause::SystemError);
    next!(
        handler,
        propose_redress,
        api::ProposeRedressRequest {
            name: n(),
            request_id: rid(),
            expected_version: None,
            redress: vec![gbp(3_000)],
            rationale: "refund the fee".into()
        },
        S::InProgress
    );
    let c = next!(
        handler,
        answer_complaint,
        api::AnswerComplaintRequest {
            name: n(),
            request_id: rid(),
            expected_version: None,
            decision: api::Decision::Upheld as i32,
            redress: vec![gbp(3_000)],
            delivery: api::DeliveryMethod::DeliveryLetter as i32,
            summary: "refunded".into(),
            ..Default::default()
        },
        S::Answered
    );
    assert_eq!(c.redress[0].amount.as_ref().unwrap().minor_units, 3_000);
    next!(
        handler,
        request_review,
        api::RequestReviewRequest {
            name: n(),
            request_id: rid(),
            expected_version: None,
            reason: "interest too".into(),
            ..Default::default()
        },
        S::UnderReview
    );
    next!(
        supervisor,
        answer_review,
        api::AnswerReviewRequest {
            name: n(),
            request_id: rid(),
            expected_version: None,
            outcome: api::ReviewOutcome::Confirmed as i32,
            summary: "stands".into(),
            ..Default::default()
        },
        S::Answered
    );
    next!(
        handler,
        refer_to_regulator,
        api::ReferToRegulatorRequest {
            name: n(),
            request_id: rid(),
            expected_version: None,
            body: "FOS".into(),
            reason: api::ReferralReason::ComplainantReferred as i32,
            reference: String::new(),
            ..Default::default()
        },
        S::Answered
    );
    let c = next!(
        handler,
        record_regulator_outcome,
        api::RecordRegulatorOutcomeRequest {
            name: n(),
            request_id: rid(),
            expected_version: None,
            body: "FOS".into(),
            outcome: api::RegulatorOutcome::UpheldForFirm as i32,
            reference: "FOS-77".into(),
            ..Default::default()
        },
        S::Answered
    );
    assert_eq!(c.referrals[0].reference, "FOS-77");
    next!(
        handler,
        close_complaint,
        api::CloseComplaintRequest {
            name: n(),
            request_id: rid(),
            expected_version: None
        },
        S::Closed
    );
    next!(
        supervisor,
        reopen_complaint,
        api::ReopenComplaintRequest {
            name: n(),
            request_id: rid(),
            expected_version: None,
            reason: "regulator asked".into()
        },
        S::InProgress
    );
    next!(
        handler,
        withdraw_complaint,
        api::WithdrawComplaintRequest {
            name: n(),
            request_id: rid(),
            expected_version: None,
            reason: "settled".into(),
            ..Default::default()
        },
        S::Withdrawn
    );

    let got = handler
        .grpc
        .clone()
        .get_complaint(handler.req(api::GetComplaintRequest { name: n() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (got.version, got.status(), got.reopen_count),
        (v, S::Withdrawn, 1)
    );
    assert_eq!(got.complainant.unwrap().name, "Ada Lovelace");

    // The stored actor is the authenticated principal of each call.
    let stopped = server.shutdown().await;
    let log = eventlog_sled::SledEventLog::open(eventlog_sled::SledConfig::new(
        stopped.data_dir().join("log"),
    ))
    .unwrap();
    let events = log.read_all(1, Direction::Forward, 100).await.unwrap();
    // The SLA rules in force come first, recorded by the service itself.
    assert_eq!(
        (events[0].event_type.as_str(), events[0].actor.as_str()),
        ("rules.loaded", "service:complaintd")
    );
    let complaint_events = events
        .iter()
        .filter(|e| e.event_type.starts_with("complaint."))
        .count();
    assert_eq!(complaint_events as u64, v);
    let actor_of = |t: &str| {
        events
            .iter()
            .find(|e| e.event_type == t)
            .unwrap()
            .actor
            .clone()
    };
    assert_eq!(actor_of("complaint.registered"), "user:hana");
    assert_eq!(actor_of("complaint.extension_approved"), "user:sam");
    log.close().await.unwrap();
}

#[tokio::test]
async fn decline_and_merge_end_a_complaint() {
    let server = server().await;
    let c = client(&server, "user:hana", "intake");
    let first = step!(c, register_complaint, register_request())
        .unwrap()
        .into_inner();
    let second = step!(c, register_complaint, register_request())
        .unwrap()
        .into_inner();
    let third = step!(c, register_complaint, register_request())
        .unwrap()
        .into_inner();
    let merged = step!(
        c,
        merge_complaint,
        api::MergeComplaintRequest {
            name: second.name.clone(),
            request_id: rid(),
            expected_version: None,
            into: first.name.clone(),
            reason: "same facts".into()
        }
    )
    .unwrap()
    .into_inner();
    assert_eq!(
        (merged.status(), merged.merged_into),
        (api::Status::Merged, first.name)
    );
    let declined = step!(
        c,
        decline_complaint,
        api::DeclineComplaintRequest {
            name: third.name,
            request_id: rid(),
            expected_version: None,
            reason: "a product question".into()
        }
    )
    .unwrap()
    .into_inner();
    assert_eq!(declined.status(), api::Status::Declined);
    assert!(declined.end_time.is_some());
}

#[tokio::test]
async fn each_failure_has_its_code_and_names_its_fields() {
    let server = server().await;
    let c = client(&server, "user:hana", "intake,handler");

    // No credentials.
    let anonymous = client(&server, "", "");
    let e = step!(anonymous, register_complaint, register_request()).unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    let bad_role = client(&server, "user:x", "wizard");
    assert_eq!(
        step!(bad_role, register_complaint, register_request())
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );

    // Bad fields, all at once, by API name.
    let mut r = register_request();
    r.request_id = "not-a-uuid".into();
    r.channel = 0;
    r.receive_time = None;
    let e = step!(c, register_complaint, r).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(fields(&e), ["request_id", "channel", "receive_time"]);
    let mut r = register_request();
    r.complainant.as_mut().unwrap().name.clear();
    r.receive_time = ts(NOW + 86_400);
    r.regime = "fca".into();
    let e = step!(c, register_complaint, r).unwrap_err();
    assert_eq!(fields(&e), ["complainant.name", "regime", "receive_time"]);
    assert!(
        !e.message().contains("Ada"),
        "no personal data in errors: {}",
        e.message()
    );

    let created = step!(c, register_complaint, register_request())
        .unwrap()
        .into_inner();
    let name = created.name.clone();
    step!(
        c,
        assign_complaint,
        api::AssignComplaintRequest {
            name: name.clone(),
            request_id: rid(),
            expected_version: None,
            unit: "cards".into(),
            handler: "emp-3".into()
        }
    )
    .unwrap();

    // Unknown enum numbers, unknown currencies and negative money.
    let e = step!(
        c,
        answer_complaint,
        api::AnswerComplaintRequest {
            name: name.clone(),
            request_id: rid(),
            expected_version: None,
            decision: 99,
            redress: vec![api::Redress {
                kind: 1,
                amount: Some(api::Money {
                    minor_units: 5,
                    currency_code: "XXQ".into()
                })
            }],
            delivery: 0,
            summary: "s".into(),
            ..Default::default()
        }
    )
    .unwrap_err();
    assert_eq!(
        fields(&e),
        ["decision", "delivery", "redress[0].amount.currency_code"]
    );
    let e = step!(
        c,
        answer_complaint,
        api::AnswerComplaintRequest {
            name: name.clone(),
            request_id: rid(),
            expected_version: None,
            decision: 1,
            redress: vec![gbp(-1)],
            delivery: 1,
            summary: "s".into(),
            ..Default::default()
        }
    )
    .unwrap_err();
    assert_eq!(fields(&e), ["redress[0].amount.minor_units"]);

    // Registering an existing complaint again under a new request id.
    let mut again = register_request();
    again.complaint_id = name.clone();
    let e = step!(c, register_complaint, again).unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);

    // Malformed and unknown names.
    let e = step!(
        c,
        acknowledge_complaint,
        api::AcknowledgeComplaintRequest {
            name: "complaint/1".into(),
            request_id: rid(),
            expected_version: None,
            ..Default::default()
        }
    )
    .unwrap_err();
    assert_eq!(fields(&e), ["name"]);
    let unknown = format!("complaints/{}", Uuid::new_v4());
    let e = step!(
        c,
        acknowledge_complaint,
        api::AcknowledgeComplaintRequest {
            name: unknown,
            request_id: rid(),
            expected_version: None,
            ..Default::default()
        }
    )
    .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Wrong state, conflicting version, missing role.
    let e = step!(
        c,
        close_complaint,
        api::CloseComplaintRequest {
            name: name.clone(),
            request_id: rid(),
            expected_version: None
        }
    )
    .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("only an answered complaint"),
        "{}",
        e.message()
    );
    let e = step!(
        c,
        assign_complaint,
        api::AssignComplaintRequest {
            name: name.clone(),
            request_id: rid(),
            expected_version: None,
            unit: "cards".into(),
            handler: "EMP-9".into()
        }
    )
    .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let e = step!(
        c,
        add_new_facts,
        api::AddNewFactsRequest {
            name: name.clone(),
            request_id: rid(),
            expected_version: Some(1),
            facts: "f".into(),
            ..Default::default()
        }
    )
    .unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
    step!(
        c,
        request_extension,
        api::RequestExtensionRequest {
            name: name.clone(),
            request_id: rid(),
            expected_version: None,
            days: 10,
            reason: "r".into()
        }
    )
    .unwrap();
    let e = step!(
        c,
        approve_extension,
        api::ApproveExtensionRequest {
            name: name.clone(),
            request_id: rid(),
            expected_version: None,
            complainant_notify_time: ts(NOW)
        }
    )
    .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // List arguments.
    let e = c
        .grpc
        .clone()
        .list_complaints(c.req(api::ListComplaintsRequest {
            page_size: -1,
            page_token: "garbage".into(),
            status: 42,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["page_size", "status", "page_token"]);
    let e = c
        .grpc
        .clone()
        .get_complaint(c.req(api::GetComplaintRequest {
            name: "nope".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_retry_with_the_same_request_id_returns_the_first_result() {
    let server = server().await;
    let c = client(&server, "user:hana", "intake,handler");
    let mut register = register_request();
    // Finer than storage keeps: the first reply must already show what a retry will.
    register.receive_time = Some(prost_types::Timestamp {
        seconds: NOW - 60,
        nanos: 123_456_789,
    });
    let first = c
        .grpc
        .clone()
        .register_complaint(c.req(register.clone()))
        .await
        .unwrap();
    assert_eq!(first.get_ref().receive_time.unwrap().nanos, 123_456_000);
    assert!(first.metadata().get("x-replayed").is_none());
    let again = c
        .grpc
        .clone()
        .register_complaint(c.req(register))
        .await
        .unwrap();
    assert_eq!(again.metadata().get("x-replayed").unwrap(), "true");
    assert_eq!(again.get_ref(), first.get_ref());

    let ack = api::AcknowledgeComplaintRequest {
        name: first.get_ref().name.clone(),
        request_id: rid(),
        expected_version: None,
        ..Default::default()
    };
    let once = step!(c, acknowledge_complaint, ack.clone())
        .unwrap()
        .into_inner();
    step!(
        c,
        assign_complaint,
        api::AssignComplaintRequest {
            name: once.name.clone(),
            request_id: rid(),
            expected_version: None,
            unit: "u".into(),
            handler: "h".into()
        }
    )
    .unwrap();
    let twice = step!(c, acknowledge_complaint, ack).unwrap().into_inner();
    assert_eq!(
        (twice.version, twice.status()),
        (2, api::Status::Acknowledged),
        "the first result, not the current state"
    );
    let now = c
        .grpc
        .clone()
        .get_complaint(c.req(api::GetComplaintRequest { name: once.name }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.version, 3, "the retry recorded nothing");
}

#[tokio::test]
async fn the_list_filters_and_pages() {
    let server = server().await;
    let c = client(&server, "user:hana", "intake,handler");
    let mut names = Vec::new();
    for (i, unit) in ["cards", "loans", "cards", "cards", "loans"]
        .into_iter()
        .enumerate()
    {
        let mut r = register_request();
        r.unit = unit.into();
        r.receive_time = ts(NOW - 10_000 + i as i64);
        names.push(step!(c, register_complaint, r).unwrap().into_inner().name);
    }
    step!(
        c,
        assign_complaint,
        api::AssignComplaintRequest {
            name: names[0].clone(),
            request_id: rid(),
            expected_version: None,
            unit: "cards".into(),
            handler: "h".into()
        }
    )
    .unwrap();
    let list = |page_size, page_token: String, unit: &str, status: api::Status| {
        let mut grpc = c.grpc.clone();
        let request = c.req(api::ListComplaintsRequest {
            page_size,
            page_token,
            status: status as i32,
            unit: unit.into(),
            ..Default::default()
        });
        async move { grpc.list_complaints(request).await.unwrap().into_inner() }
    };
    let page = list(2, String::new(), "cards", api::Status::Unspecified).await;
    assert_eq!(
        page.complaints
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>(),
        vec![names[0].clone(), names[2].clone()]
    );
    let rest = list(
        2,
        page.next_page_token.clone(),
        "cards",
        api::Status::Unspecified,
    )
    .await;
    assert_eq!(
        rest.complaints
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>(),
        vec![names[3].clone()]
    );
    assert!(rest.next_page_token.is_empty());
    let in_progress = list(0, String::new(), "", api::Status::InProgress).await;
    assert_eq!(in_progress.complaints.len(), 1);
    assert_eq!(
        (
            in_progress.complaints[0].handler.as_str(),
            in_progress.complaints[0].version
        ),
        ("h", 2)
    );
}

#[tokio::test]
async fn health_and_reflection_answer() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let server = server().await;
    let channel = server.channel();
    let mut health = HealthClient::new(channel.clone());
    // Liveness ("") at once; the service once its projections have caught up (readiness),
    // as a watcher sees it.
    let live = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    assert_eq!(live, serving);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "complaints.v1.ComplaintService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    loop {
        let status = watch.next().await.unwrap().unwrap().status;
        if status == serving {
            break;
        }
    }
    assert!(server.running().is_ready());

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("no service list")
    };
    let services: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        services.contains(&"complaints.v1.ComplaintService".to_string()),
        "{services:?}"
    );
    assert!(
        services.contains(&"grpc.health.v1.Health".to_string()),
        "{services:?}"
    );
}

#[tokio::test]
async fn the_sla_of_a_complaint_is_explained_clock_by_clock() {
    let server = server().await;
    let c = client(&server, "user:hana", "intake,handler");
    // REGIMES.md example 1: UK-FCA-PSD, Northern Ireland, received Fri 2026-01-30.
    let mut r = register_request();
    r.regime = "UK-FCA-PSD".into();
    r.region = "GB-NIR".into();
    r.receive_time = Some(prost_types::Timestamp {
        seconds: 1_769_767_200,
        nanos: 0,
    }); // 2026-01-30T10:00:00Z
    let created = step!(c, register_complaint, r).unwrap().into_inner();
    let sla = |name: String| {
        let mut grpc = c.grpc.clone();
        let request = c.req(api::GetComplaintSlaRequest { name });
        async move { grpc.get_complaint_sla(request).await.unwrap().into_inner() }
    };
    // The server's clock says 2026-03-02: the 15-business-day response is overdue.
    let first = sla(created.name.clone()).await;
    assert_eq!(
        (
            first.policy.as_str(),
            first.policy_version,
            first.time_zone.as_str()
        ),
        ("UK-FCA-PSD", 1, "Europe/London")
    );
    let clock = &first.clocks[0];
    assert_eq!(
        (clock.clock.as_str(), clock.due_date.as_str()),
        ("final_response", "2026-02-20")
    );
    assert_eq!(clock.state(), api::ClockState::ClockBreached);
    assert!(clock.overdue_seconds > 0);
    assert_eq!(clock.calendar, "GB-NIR");
    assert!(
        clock
            .explanation
            .iter()
            .any(|l| l.contains("UK-FCA-PSD v1")),
        "{:?}",
        clock.explanation
    );

    // A holding response gives 35 business days; St Patrick's Day moves it to 23 March.
    step!(
        c,
        send_holding_response,
        api::SendHoldingResponseRequest {
            name: created.name.clone(),
            request_id: rid(),
            expected_version: None,
            reason: "waiting for the scheme".into(),
            delivery: api::DeliveryMethod::DeliveryEmail as i32,
            ..Default::default()
        }
    )
    .unwrap();
    let held = sla(created.name.clone()).await;
    let clock = &held.clocks[0];
    assert_eq!(clock.due_date, "2026-03-23");
    assert_eq!(
        (clock.state(), clock.at_risk_percent),
        (api::ClockState::ClockAtRisk, 50)
    );
    assert!(clock.remaining_business_days.unwrap() > 0);

    // Unknown regimes and regions are refused at registration, by field.
    let mut unknown = register_request();
    unknown.regime = "XX-NOWHERE".into();
    let e = step!(c, register_complaint, unknown).unwrap_err();
    assert_eq!(fields(&e), ["regime"]);
    let mut region = register_request();
    region.regime = "CN-CBIRC".into();
    region.region = "GB-ENG".into();
    let e = step!(c, register_complaint, region).unwrap_err();
    assert_eq!(fields(&e), ["region"]);
}

#[tokio::test]
async fn operations_see_clocks_most_urgent_first_and_the_board() {
    let server = server().await;
    let c = client(&server, "user:ops", "intake,handler,operations");
    // CN-CBIRC, 15 calendar days; the server's clock says 2026-03-02T12:00Z.
    let mut names = Vec::new();
    for (received, unit) in [(1_770_256_800, "cards"), (1_771_552_800, "loans")] {
        // 2026-02-05T02:00Z (due Feb 20, breached) and 2026-02-20T02:00Z (due Mar 7).
        let mut r = register_request();
        r.regime = "CN-CBIRC".into();
        r.region = "CN".into();
        r.unit = unit.into();
        r.receive_time = ts(received);
        names.push(step!(c, register_complaint, r).unwrap().into_inner().name);
    }
    let list = |states: Vec<api::ClockState>, page_token: String, page_size: i32| {
        let mut grpc = c.grpc.clone();
        let request = c.req(api::ListClocksRequest {
            states: states.into_iter().map(|s| s as i32).collect(),
            page_token,
            page_size,
            ..Default::default()
        });
        async move { grpc.list_clocks(request).await }
    };
    let all = list(vec![], String::new(), 0).await.unwrap().into_inner();
    let order: Vec<(&str, &str)> = all
        .clocks
        .iter()
        .map(|e| (e.name.as_str(), e.clock.as_ref().unwrap().due_date.as_str()))
        .collect();
    assert_eq!(
        order,
        vec![
            (names[0].as_str(), "2026-02-20"),
            (names[1].as_str(), "2026-03-07")
        ]
    );
    let breached = list(vec![api::ClockState::ClockBreached], String::new(), 0)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(breached.clocks.len(), 1);
    assert_eq!(breached.clocks[0].unit, "cards");
    let first = list(vec![], String::new(), 1).await.unwrap().into_inner();
    let second = list(vec![], first.next_page_token.clone(), 1)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.clocks[0].name, names[1]);
    let e = list(vec![api::ClockState::Unspecified], "bogus".into(), 0)
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["states[0]", "page_token"]);

    let board = c
        .grpc
        .clone()
        .get_board(c.req(api::GetBoardRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((board.complaints, board.open_complaints), (2, 2));
    assert_eq!(board.breached_by_regime.get("CN-CBIRC"), Some(&1));
    assert_eq!(board.breached_by_unit.get("cards"), Some(&1));
    assert_eq!(board.clocks_by_state.values().sum::<u64>(), 2);
    assert_eq!(board.median_seconds_to_answer, None, "nothing answered yet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sla_transitions_are_recorded_and_streamed_to_watchers() {
    let server = server().await;
    let c = client(&server, "user:ops", "intake,handler,operations");
    let mut watch = c
        .grpc
        .clone()
        .watch_sla(c.req(api::WatchSlaRequest {
            after_position: Some(0),
            regime: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    // A hotline call received 20 minutes before the server's now: 15 minutes to respond,
    // at risk at 50/75/90%: every threshold is behind it, so all four are recorded.
    let mut r = register_request();
    r.channel = api::Channel::Hotline as i32;
    r.regime = "INTERNAL-HOTLINE".into();
    r.region = "CN".into();
    r.receive_time = ts(NOW - 20 * 60);
    let created = step!(c, register_complaint, r).unwrap().into_inner();
    let mut got = Vec::new();
    while got.len() < 4 {
        let t = watch
            .next()
            .await
            .expect("stream open")
            .expect("transition");
        assert_eq!(
            (t.name.as_str(), t.regime.as_str(), t.clock.as_str()),
            (created.name.as_str(), "INTERNAL-HOTLINE", "first_response")
        );
        got.push((
            t.threshold,
            t.state(),
            t.cross_time.unwrap().seconds,
            t.position,
        ));
    }
    let base = NOW - 20 * 60;
    let expected = [(50, 450), (75, 675), (90, 810), (100, 900)];
    for ((threshold, state, at, _), (want, offset)) in got.iter().zip(expected) {
        assert_eq!((*threshold, *at), (want, base + offset));
        let want_state = if want == 100 {
            api::ClockState::ClockBreached
        } else {
            api::ClockState::ClockAtRisk
        };
        assert_eq!(*state, want_state);
    }
    // A watcher that resumes after the second sees the third and fourth.
    let mut resumed = c
        .grpc
        .clone()
        .watch_sla(c.req(api::WatchSlaRequest {
            after_position: Some(got[1].3),
            regime: "INTERNAL-HOTLINE".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let third = resumed.next().await.unwrap().unwrap();
    assert_eq!(third.threshold, 90);
    // The board shows the breach.
    let board = c
        .grpc
        .clone()
        .get_board(c.req(api::GetBoardRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(board.breached_by_regime.get("INTERNAL-HOTLINE"), Some(&1));
}

/// A complaint registered, then referred by the complainant to `body`.
async fn referred(handler: &Client, body: &str) -> api::Complaint {
    let created = step!(handler, register_complaint, register_request())
        .unwrap()
        .into_inner();
    step!(
        handler,
        refer_to_regulator,
        api::ReferToRegulatorRequest {
            name: created.name.clone(),
            request_id: rid(),
            expected_version: None,
            body: body.into(),
            reason: api::ReferralReason::ComplainantReferred as i32,
            reference: String::new(),
            ..Default::default()
        }
    )
    .unwrap();
    created
}

#[tokio::test]
async fn the_regulator_gateway_leases_and_acknowledges_queue_items() {
    let server = server().await;
    let handler = client(&server, "user:hana", "intake,handler");
    let gateway_a = client(&server, "svc:gateway-a", "regulator_gateway");
    let gateway_b = client(&server, "svc:gateway-b", "regulator_gateway");
    let created = referred(&handler, "FOS").await;

    let list = gateway_a
        .grpc
        .clone()
        .list_regulator_queue(gateway_a.req(api::ListRegulatorQueueRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.items.len(), 1);
    let item = &list.items[0];
    assert_eq!(
        (
            item.complaint.as_str(),
            item.body.as_str(),
            item.direction(),
            item.state()
        ),
        (
            created.name.as_str(),
            "FOS",
            api::QueueDirection::Outbound,
            api::QueueItemState::QueueAvailable
        )
    );

    let lease = |c: &Client, name: String| {
        let mut grpc = c.grpc.clone();
        let request = c.req(api::LeaseRegulatorQueueItemRequest {
            name,
            direction: 0,
            lease_seconds: 60,
        });
        async move { grpc.lease_regulator_queue_item(request).await }
    };
    let leased = lease(&gateway_a, String::new()).await.unwrap().into_inner();
    assert_eq!(
        (
            leased.name.as_str(),
            leased.state(),
            leased.consumer.as_str()
        ),
        (
            item.name.as_str(),
            api::QueueItemState::QueueLeased,
            "svc:gateway-a"
        )
    );
    assert_eq!(
        lease(&gateway_b, item.name.clone())
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    assert_eq!(
        lease(&gateway_b, String::new()).await.unwrap_err().code(),
        Code::NotFound,
        "nothing else is available"
    );

    let ack = |c: &Client, name: String, reference: &str| {
        let mut grpc = c.grpc.clone();
        let request = c.req(api::AcknowledgeRegulatorQueueItemRequest {
            name,
            reference: reference.into(),
        });
        async move { grpc.acknowledge_regulator_queue_item(request).await }
    };
    assert_eq!(
        ack(&gateway_b, item.name.clone(), "FOS-9")
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    let e = ack(&gateway_a, "queue/1".into(), " ").await.unwrap_err();
    assert_eq!(fields(&e), ["name", "reference"]);
    let done = ack(&gateway_a, item.name.clone(), "FOS-2026-0042")
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (done.state(), done.reference.as_str()),
        (api::QueueItemState::QueueAcknowledged, "FOS-2026-0042")
    );
    let acknowledged = gateway_b
        .grpc
        .clone()
        .list_regulator_queue(gateway_b.req(api::ListRegulatorQueueRequest {
            direction: 0,
            states: vec![api::QueueItemState::QueueAcknowledged as i32],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(acknowledged.items.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_regulator_queue_is_paged_in_queue_order() {
    let server = server().await;
    let handler = client(&server, "user:hana", "intake,handler");
    let gateway = client(&server, "svc:gateway-a", "regulator_gateway");
    for i in 0..7 {
        referred(&handler, &format!("FOS {i}")).await;
    }
    let list = |page_size: i32, page_token: String, states: Vec<i32>| {
        let mut grpc = gateway.grpc.clone();
        let request = gateway.req(api::ListRegulatorQueueRequest {
            direction: 0,
            states,
            page_size,
            page_token,
        });
        async move { grpc.list_regulator_queue(request).await }
    };
    let names = |items: &[api::QueueItem]| items.iter().map(|i| i.name.clone()).collect::<Vec<_>>();
    // Two of them leased, so that a filtered page skips items.
    for _ in 0..2 {
        gateway
            .grpc
            .clone()
            .lease_regulator_queue_item(gateway.req(api::LeaseRegulatorQueueItemRequest {
                name: String::new(),
                direction: 0,
                lease_seconds: 60,
            }))
            .await
            .unwrap();
    }

    let whole = list(0, String::new(), vec![]).await.unwrap().into_inner();
    assert_eq!(whole.items.len(), 7);
    assert!(whole.next_page_token.is_empty());
    // Pages of 3 give the same items in the same order: 3, 3, 1, the last without a token.
    let (mut paged, mut sizes, mut token) = (Vec::new(), Vec::new(), String::new());
    loop {
        let page = list(3, token, vec![]).await.unwrap().into_inner();
        sizes.push(page.items.len());
        paged.extend(names(&page.items));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!((paged, sizes), (names(&whole.items), vec![3, 3, 1]));
    // A filter applies before the paging: the two leased items, one a page.
    let leased = api::QueueItemState::QueueLeased as i32;
    let first = list(1, String::new(), vec![leased])
        .await
        .unwrap()
        .into_inner();
    assert!(!first.next_page_token.is_empty());
    let second = list(1, first.next_page_token.clone(), vec![leased])
        .await
        .unwrap()
        .into_inner();
    assert!(second.next_page_token.is_empty(), "{second:?}");
    let wanted: Vec<String> = whole
        .items
        .iter()
        .filter(|i| i.state == leased)
        .map(|i| i.name.clone())
        .collect();
    assert_eq!([names(&first.items), names(&second.items)].concat(), wanted);
    // Bad paging is refused, every field named.
    let refused = list(-1, "nope".into(), vec![]).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert_eq!(fields(&refused), ["page_size", "page_token"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_complainants_satisfaction_is_recorded_once_per_answer_and_its_comment_is_personal() {
    let server = server().await;
    let handler = client(&server, "user:hana", "handler,intake");
    let created = step!(handler, register_complaint, register_request())
        .unwrap()
        .into_inner();
    let n = || created.name.clone();
    let satisfaction = |rating: u32, comment: &str| api::RecordSatisfactionRequest {
        name: n(),
        request_id: rid(),
        rating,
        comment: comment.into(),
        ..Default::default()
    };
    // Not before the answer.
    let e = step!(handler, record_satisfaction, satisfaction(4, "")).unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    step!(
        handler,
        assign_complaint,
        api::AssignComplaintRequest {
            name: n(),
            request_id: rid(),
            unit: "cards".into(),
            handler: "emp-3".into(),
            ..Default::default()
        }
    )
    .unwrap();
    step!(
        handler,
        answer_complaint,
        api::AnswerComplaintRequest {
            name: n(),
            request_id: rid(),
            decision: api::Decision::Upheld as i32,
            redress: vec![gbp(3_000)],
            delivery: api::DeliveryMethod::DeliveryLetter as i32,
            summary: "refunded".into(),
            effective_time: ts(NOW - 1800),
            ..Default::default()
        }
    )
    .unwrap();

    // Bad fields, all at once; a rating beyond a byte too.
    let e = step!(
        handler,
        record_satisfaction,
        satisfaction(0, &"x".repeat(10_001))
    )
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(fields(&e), ["rating", "comment"]);
    let e = step!(handler, record_satisfaction, satisfaction(260, "")).unwrap_err();
    assert_eq!(fields(&e), ["rating"]);
    // Given before the answer was.
    let e = step!(
        handler,
        record_satisfaction,
        api::RecordSatisfactionRequest {
            effective_time: ts(NOW - 2400),
            ..satisfaction(4, "")
        }
    )
    .unwrap_err();
    assert_eq!(fields(&e), ["effective_time"]);

    let c = step!(
        handler,
        record_satisfaction,
        api::RecordSatisfactionRequest {
            effective_time: ts(NOW - 600),
            ..satisfaction(4, "quick refund, thank you")
        }
    )
    .unwrap()
    .into_inner();
    assert_eq!(c.status(), api::Status::Answered);
    assert_eq!(
        c.satisfaction,
        Some(api::Satisfaction {
            rating: 4,
            comment: "quick refund, thank you".into(),
            at: ts(NOW - 600),
        })
    );
    assert_eq!(
        c.steps.last().map(|s| s.event_type.as_str()),
        Some("complaint.satisfaction_recorded")
    );
    // One per answer.
    let e = step!(handler, record_satisfaction, satisfaction(5, "")).unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    // The rating for everyone who reads the complaint; the comment only with personal data.
    for (roles, sees) in [
        ("auditor", false),
        ("compliance", false),
        ("auditor,personal_data", true),
        ("compliance,personal_data", true),
        ("handler", true),
    ] {
        let reader = client(&server, "user:reader", roles);
        let c = step!(
            reader,
            get_complaint,
            api::GetComplaintRequest { name: n() }
        )
        .unwrap()
        .into_inner();
        let s = c.satisfaction.as_ref().unwrap();
        assert_eq!(s.rating, 4, "{roles}");
        assert_eq!(s.at, ts(NOW - 600), "{roles}");
        if sees {
            assert_eq!(s.comment, "quick refund, thank you", "{roles}");
            assert_eq!(
                c.personal_data(),
                api::PersonalDataState::PersonalDataPresent
            );
        } else {
            assert_eq!(s.comment, "", "{roles}");
            assert_eq!(
                c.personal_data(),
                api::PersonalDataState::PersonalDataWithheld
            );
        }
    }
    // Compliance reads, and changes nothing.
    let compliance = client(&server, "user:carol", "compliance");
    let e = step!(compliance, record_satisfaction, satisfaction(5, "")).unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // The comment is sealed in the log, not stored in the clear.
    let stopped = server.shutdown().await;
    let log = eventlog_sled::SledEventLog::open(eventlog_sled::SledConfig::new(
        stopped.data_dir().join("log"),
    ))
    .unwrap();
    let events = log.read_all(1, Direction::Forward, 100).await.unwrap();
    let rated = events
        .iter()
        .find(|e| e.event_type == "complaint.satisfaction_recorded")
        .unwrap();
    assert!(!rated.payload.windows(5).any(|w| w == b"quick"));
    log.close().await.unwrap();
}
