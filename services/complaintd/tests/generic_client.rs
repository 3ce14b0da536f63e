//! Regression tests for what a generic client (descriptors by reflection only, no compiled
//! protos: Python's grpcio, Postman, grpcurl) found wrong: each test names its defect.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::collections::BTreeMap;

use common::{req_as, rid, ts, TestServer, NOW};
use complaints_proto::complaints::v1 as api;
use complaints_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use futures::StreamExt;
use prost_reflect::prost::Message;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

async fn server() -> TestServer {
    TestServer::start(|_| {}).await
}

fn register_request() -> api::RegisterComplaintRequest {
    common::register("UK-FCA-DISP", "GB-ENG", NOW - 3600)
}

/// The fields of the BadRequest of `status`, in order.
fn fields(status: &Status) -> Vec<String> {
    let details = status.get_error_details();
    let bad = details.bad_request().expect("BadRequest details");
    bad.field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect()
}

fn intake(c: &ComplaintServiceClient<Channel>) -> ComplaintServiceClient<Channel> {
    c.clone()
}

fn as_intake<T>(message: T) -> tonic::Request<T> {
    req_as(message, "user:hana", "intake,handler,supervisor")
}

/// Every file a generic client needs for `symbol`, fetched over `grpc.reflection.v1alpha`
/// as grpcio-reflection does: the file holding it, then its imports by name.
async fn files_by_v1alpha(channel: Channel, symbol: &str) -> BTreeMap<String, Vec<u8>> {
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;

    let mut client = ServerReflectionClient::new(channel);
    let mut files = BTreeMap::new();
    let mut wanted = vec![MessageRequest::FileContainingSymbol(symbol.to_owned())];
    while let Some(request) = wanted.pop() {
        let mut responses = client
            .server_reflection_info(tokio_stream::iter(vec![ServerReflectionRequest {
                host: String::new(),
                message_request: Some(request.clone()),
            }]))
            .await
            .unwrap()
            .into_inner();
        let response = responses.next().await.unwrap().unwrap();
        let Some(MessageResponse::FileDescriptorResponse(found)) = response.message_response else {
            panic!("{request:?} not answered: {:?}", response.message_response)
        };
        for bytes in found.file_descriptor_proto {
            let file = prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap();
            for dependency in &file.dependency {
                if !files.contains_key(dependency) {
                    wanted.push(MessageRequest::FileByFilename(dependency.clone()));
                }
            }
            files.insert(file.name().to_owned(), bytes);
        }
    }
    files
}

/// Defect 1: only grpc.reflection.v1 was served (v1alpha answered UNIMPLEMENTED), and
/// google.rpc.Status / BadRequest were not reachable, so a generic client could not decode
/// the details of an error.
#[tokio::test]
async fn reflection_v1alpha_is_served_and_reaches_the_error_details() {
    let server = server().await;
    let mut pool = prost_reflect::DescriptorPool::new();
    for symbol in [
        "complaints.v1.ComplaintService",
        "google.rpc.Status",
        "google.rpc.BadRequest",
    ] {
        let files = files_by_v1alpha(server.channel(), symbol).await;
        let set = prost_types::FileDescriptorSet {
            file: files
                .values()
                .map(|b| prost_types::FileDescriptorProto::decode(b.as_slice()).unwrap())
                .collect(),
        };
        pool.add_file_descriptor_set(set).unwrap();
    }
    let bad_request = pool.get_message_by_name("google.rpc.BadRequest").unwrap();
    assert!(bad_request.get_field_by_name("field_violations").is_some());
    assert!(pool.get_message_by_name("google.rpc.Status").is_some());

    // With those descriptors alone, the details of a real error decode.
    let mut r = register_request();
    r.request_id = "not-a-uuid".into();
    let e = intake(&server.complaints())
        .register_complaint(as_intake(r))
        .await
        .unwrap_err();
    let status = prost_reflect::DynamicMessage::decode(
        pool.get_message_by_name("google.rpc.Status").unwrap(),
        e.details(),
    )
    .unwrap();
    let details = status.get_field_by_name("details").unwrap();
    let any = details.as_list().unwrap()[0].as_message().unwrap().clone();
    let type_url = any.get_field_by_name("type_url").unwrap();
    assert_eq!(
        type_url.as_str().unwrap(),
        "type.googleapis.com/google.rpc.BadRequest"
    );
    let value = any.get_field_by_name("value").unwrap();
    let decoded =
        prost_reflect::DynamicMessage::decode(bad_request, value.as_bytes().unwrap().clone())
            .unwrap();
    let violations = decoded.get_field_by_name("field_violations").unwrap();
    assert_eq!(violations.as_list().unwrap().len(), 1);
}

/// Bytes in, bytes out: a client that sends whatever it is given.
#[derive(Clone, Copy)]
struct Raw;

impl tonic::codec::Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl tonic::codec::Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        use bytes::Buf;
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// Calls `path` with `body` as its request message, from `principal` with `roles`.
async fn call_raw(
    channel: &Channel,
    path: &str,
    body: Vec<u8>,
    principal: &str,
    roles: &str,
) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    grpc.unary(req_as(body, principal, roles), path.parse().unwrap(), Raw)
        .await
        .map(tonic::Response::into_inner)
}

/// Defect 7: an undecodable body was INTERNAL, an over-size message OUT_OF_RANGE, an
/// unknown method PERMISSION_DENIED "not available to any role", and an over-long
/// x-principal "missing".
#[tokio::test]
async fn misleading_status_codes_are_the_ones_grpc_specifies() {
    let server = TestServer::start(|config| config.max_message_bytes = 4096).await;
    let channel = server.channel();
    let register = "/complaints.v1.ComplaintService/RegisterComplaint";

    // Field 1 (request_id, a string) with a length running past the end.
    let e = call_raw(
        &channel,
        register,
        vec![0x0a, 0x7f, b'x'],
        "user:hana",
        "intake",
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    let mut huge = register_request();
    huge.facts = "x".repeat(8192);
    let e = call_raw(
        &channel,
        register,
        huge.encode_to_vec(),
        "user:hana",
        "intake",
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");

    for path in [
        "/complaints.v1.ComplaintService/NoSuchMethod",
        "/complaints.audit.v1.AuditService/NoSuchMethod",
        "/no.such.Service/Method",
    ] {
        for (principal, roles) in [("user:hana", "intake,auditor"), ("", "")] {
            let e = call_raw(&channel, path, Vec::new(), principal, roles)
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::Unimplemented, "{path} as {roles:?}: {e:?}");
            assert!(!e.message().contains("role"), "{}", e.message());
        }
    }

    let long = "p".repeat(300);
    let e = call_raw(&channel, register, Vec::new(), &long, "intake")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(e.message().contains("too long"), "{}", e.message());

    // The server goes on.
    intake(&server.complaints())
        .register_complaint(as_intake(register_request()))
        .await
        .unwrap();
}

/// Defect 6: Verify with 20,000 bad held digests answered one violation per item (1.75 MB
/// of trailers; clients refuse trailers over 16 KiB).
#[tokio::test]
async fn field_violations_are_capped() {
    use complaints_proto::complaints::audit::v1 as audit;
    let server = server().await;
    let e = server
        .audit()
        .verify(req_as(
            audit::VerifyRequest {
                held_digests: vec!["not a digest".into(); 20_000],
                ..Default::default()
            },
            "user:audra",
            "auditor",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let details = e.get_error_details();
    let violations = &details.bad_request().unwrap().field_violations;
    assert_eq!(
        violations.len(),
        21,
        "the first 20 and one saying how many more"
    );
    assert_eq!(violations[0].field, "held_digests[0]");
    assert_eq!(violations[19].field, "held_digests[19]");
    assert!(
        violations[20].description.contains("19980 more"),
        "{}",
        violations[20].description
    );
    assert!(e.details().len() < 4096, "{} bytes", e.details().len());
    assert!(e.message().len() < 1024, "{} bytes", e.message().len());
}

/// Defect 4: `nanos = -1` on `receive_time` was stored as the second before plus
/// 999999000 ns; times outside the protobuf range or before 1970 were accepted.
#[tokio::test]
async fn timestamps_out_of_range_are_field_violations() {
    let server = server().await;
    let c = server.complaints();
    let time = |seconds, nanos| Some(prost_types::Timestamp { seconds, nanos });
    for (receive_time, field) in [
        (time(NOW - 60, -1), "receive_time.nanos"),
        (time(NOW - 60, 1_000_000_000), "receive_time.nanos"),
        (time(-62_135_596_801, 0), "receive_time.seconds"),
        (time(253_402_300_800, 0), "receive_time.seconds"),
        (time(i64::MIN, 0), "receive_time.seconds"),
        (time(-86_400, 0), "receive_time"),
    ] {
        let mut r = register_request();
        r.receive_time = receive_time;
        let e = intake(&c)
            .register_complaint(as_intake(r))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{receive_time:?}");
        assert_eq!(fields(&e), [field], "{receive_time:?}");
    }

    // The other timestamps of the API: a regulator's deadline, a notification time.
    let mut r = register_request();
    r.channel = api::Channel::RegulatorTransfer as i32;
    r.regulator = Some(api::RegulatorTransfer {
        regulator: "FOS".into(),
        reference: "FOS-1".into(),
        deadline: time(NOW + 86_400, -5),
    });
    let e = intake(&c)
        .register_complaint(as_intake(r.clone()))
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["regulator.deadline.nanos"]);
    r.regulator.as_mut().unwrap().deadline = ts(NOW + 200 * 365 * 86_400);
    let e = intake(&c)
        .register_complaint(as_intake(r))
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["regulator.deadline"], "absurdly far: {e:?}");

    let created = intake(&c)
        .register_complaint(as_intake(register_request()))
        .await
        .unwrap()
        .into_inner();
    let e = intake(&c)
        .pause_clock(as_intake(api::PauseClockRequest {
            name: created.name,
            request_id: rid(),
            expected_version: None,
            reason: api::PauseReason::ExternalAppraisal as i32,
            complainant_notify_time: time(NOW, 2_000_000_000),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["complainant_notify_time.nanos"]);
}

/// Defect 5: a bad request_id (or name) or a missing receive_time hid the command's other
/// bad fields until fixed; every bad field is now reported at once.
#[tokio::test]
async fn every_bad_field_is_reported_in_one_reply() {
    let server = server().await;
    let c = server.complaints();
    let mut r = register_request();
    r.request_id = "not-a-uuid".into();
    r.receive_time = None;
    r.complainant.as_mut().unwrap().name.clear();
    r.regime = "fca".into();
    let e = intake(&c)
        .register_complaint(as_intake(r))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        fields(&e),
        ["request_id", "receive_time", "complainant.name", "regime"]
    );

    // A regulator transfer with a bad receipt time: no violation made up from the gap.
    let mut r = register_request();
    r.channel = api::Channel::RegulatorTransfer as i32;
    r.receive_time = None;
    r.regulator = Some(api::RegulatorTransfer {
        regulator: "FOS".into(),
        reference: String::new(),
        deadline: ts(NOW + 86_400),
    });
    let e = intake(&c)
        .register_complaint(as_intake(r))
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["receive_time", "regulator.reference"]);

    // A step: bad name and request id, a bad enum, and bad text of the domain's.
    let e = intake(&c)
        .answer_complaint(as_intake(api::AnswerComplaintRequest {
            name: "nope".into(),
            request_id: String::new(),
            expected_version: None,
            decision: 99,
            redress: vec![api::Redress {
                kind: api::RedressKind::Refund as i32,
                amount: Some(api::Money {
                    minor_units: -5,
                    currency_code: "XXQ".into(),
                }),
            }],
            delivery: api::DeliveryMethod::DeliveryEmail as i32,
            summary: "x".repeat(20_000),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(
        fields(&e),
        [
            "name",
            "request_id",
            "decision",
            "redress[0].amount.currency_code",
            "redress[0].amount.minor_units",
            "summary"
        ]
    );
}

async fn new_complaint(c: &ComplaintServiceClient<Channel>) -> String {
    intake(c)
        .register_complaint(as_intake(register_request()))
        .await
        .unwrap()
        .into_inner()
        .name
}

async fn merge(
    c: &ComplaintServiceClient<Channel>,
    name: &str,
    into: &str,
) -> Result<api::Complaint, Status> {
    intake(c)
        .merge_complaint(as_intake(api::MergeComplaintRequest {
            name: name.into(),
            request_id: rid(),
            expected_version: None,
            into: into.into(),
            reason: "same facts".into(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

/// Defect 2: merging into a complaint that does not exist was accepted (the complaint
/// became MERGED into an id that answers NOT_FOUND). A merge now needs a live target: not
/// missing, not itself merged, withdrawn, declined or closed, and not the complaint itself.
#[tokio::test]
async fn a_complaint_is_merged_only_into_a_live_one() {
    let server = server().await;
    let c = server.complaints();
    let source = new_complaint(&c).await;

    let missing = format!("complaints/{}", uuid::Uuid::new_v4());
    let e = merge(&c, &source, &missing).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains(&missing), "{}", e.message());
    assert_eq!(
        e.get_error_details().resource_info().unwrap().resource_name,
        missing
    );
    let e = merge(&c, &source, &source).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("itself"), "{}", e.message());

    // Merged: the duplicate goes to the complaint it was merged into.
    let (merged, survivor) = (new_complaint(&c).await, new_complaint(&c).await);
    merge(&c, &merged, &survivor).await.unwrap();
    let e = merge(&c, &source, &merged).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message()
            .contains(&format!("itself merged into {survivor}")),
        "{}",
        e.message()
    );
    // No loop back either: the survivor cannot go into what was merged into it.
    let e = merge(&c, &survivor, &merged).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);

    // Withdrawn, declined, closed.
    let withdrawn = new_complaint(&c).await;
    intake(&c)
        .withdraw_complaint(as_intake(api::WithdrawComplaintRequest {
            name: withdrawn.clone(),
            request_id: rid(),
            expected_version: None,
            reason: "resolved".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    let declined = new_complaint(&c).await;
    intake(&c)
        .decline_complaint(as_intake(api::DeclineComplaintRequest {
            name: declined.clone(),
            request_id: rid(),
            expected_version: None,
            reason: "a question".into(),
        }))
        .await
        .unwrap();
    let closed = new_complaint(&c).await;
    intake(&c)
        .assign_complaint(as_intake(api::AssignComplaintRequest {
            name: closed.clone(),
            request_id: rid(),
            expected_version: None,
            unit: "cards".into(),
            handler: "emp-3".into(),
        }))
        .await
        .unwrap();
    intake(&c)
        .answer_complaint(as_intake(api::AnswerComplaintRequest {
            name: closed.clone(),
            request_id: rid(),
            expected_version: None,
            decision: api::Decision::Rejected as i32,
            redress: vec![],
            delivery: api::DeliveryMethod::DeliveryEmail as i32,
            summary: "no fault found".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    let answered = closed.clone();
    intake(&c)
        .close_complaint(as_intake(api::CloseComplaintRequest {
            name: closed.clone(),
            request_id: rid(),
            expected_version: None,
        }))
        .await
        .unwrap();
    for (target, state) in [
        (&withdrawn, "withdrawn"),
        (&declined, "declined"),
        (&answered, "closed"),
    ] {
        let e = merge(&c, &source, target).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{state}");
        assert!(
            e.message().contains(target) && e.message().contains(state),
            "{}",
            e.message()
        );
    }

    // Nothing of that was recorded; a live target takes the duplicate.
    let now = intake(&c)
        .get_complaint(as_intake(api::GetComplaintRequest {
            name: source.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((now.status(), now.version), (api::Status::Received, 1));
    let done = merge(&c, &source, &survivor).await.unwrap();
    assert_eq!(
        (done.status(), done.merged_into),
        (api::Status::Merged, survivor)
    );
}

/// Defect 3: a reused request_id with a different request body silently returned the
/// first result. A retry must be the same request; another one under the same id is
/// INVALID_ARGUMENT on `request_id` (a payment API's reused idempotency key).
#[tokio::test]
async fn a_request_id_reused_for_a_different_request_is_refused() {
    let server = server().await;
    let c = server.complaints();
    let register = register_request();
    let first = intake(&c)
        .register_complaint(as_intake(register.clone()))
        .await
        .unwrap()
        .into_inner();
    let mut other = register.clone();
    other.facts = "charged three times".into();
    let e = intake(&c)
        .register_complaint(as_intake(other))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_eq!(fields(&e), ["request_id"]);
    assert!(
        e.message().contains("used for a different request"),
        "{}",
        e.message()
    );
    // The same request is still a retry.
    let again = intake(&c)
        .register_complaint(as_intake(register))
        .await
        .unwrap();
    assert_eq!(again.metadata().get("x-replayed").unwrap(), "true");
    assert_eq!(again.into_inner(), first);

    // A step: the same id for another command, or the same command with other fields.
    let request_id = rid();
    let assign = |handler: &str| api::AssignComplaintRequest {
        name: first.name.clone(),
        request_id: request_id.clone(),
        expected_version: None,
        unit: "cards".into(),
        handler: handler.into(),
    };
    intake(&c)
        .assign_complaint(as_intake(assign("emp-3")))
        .await
        .unwrap();
    let e = intake(&c)
        .assign_complaint(as_intake(assign("emp-4")))
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["request_id"]);
    let e = intake(&c)
        .add_new_facts(as_intake(api::AddNewFactsRequest {
            name: first.name.clone(),
            request_id: request_id.clone(),
            expected_version: None,
            facts: "more".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["request_id"]);
    let retried = intake(&c)
        .assign_complaint(as_intake(assign("emp-3")))
        .await
        .unwrap();
    assert_eq!(retried.metadata().get("x-replayed").unwrap(), "true");
    let now = intake(&c)
        .get_complaint(as_intake(api::GetComplaintRequest { name: first.name }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.version, 2, "nothing recorded by the refused requests");
}

/// Defect 8: `complaint_id` is documented as an optional UUID, but only
/// `complaints/{uuid}` was accepted. Both are.
#[tokio::test]
async fn a_chosen_complaint_id_may_be_a_bare_uuid_or_a_name() {
    let server = server().await;
    let c = server.complaints();
    let bare = uuid::Uuid::new_v4();
    let named = uuid::Uuid::new_v4();
    for (given, id) in [
        (bare.to_string(), bare),
        (format!("complaints/{named}"), named),
    ] {
        let mut r = register_request();
        r.complaint_id = given;
        let created = intake(&c)
            .register_complaint(as_intake(r))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(created.name, format!("complaints/{id}"));
    }
    for bad in ["complaints/nope", "00000000-0000-0000-0000-000000000000"] {
        let mut r = register_request();
        r.complaint_id = bad.into();
        let e = intake(&c)
            .register_complaint(as_intake(r))
            .await
            .unwrap_err();
        assert_eq!(fields(&e), ["complaint_id"], "{bad}");
    }
}

/// Defect 8: the board's `due_today` counted "today" in UTC; it is the day in the
/// configured business time zone.
#[tokio::test]
async fn due_today_is_today_in_the_business_time_zone() {
    use jiff::tz::TimeZone;
    let clock = common::manual_clock(NOW);
    let server = TestServer::start_with_clock(clock.clone(), |config| {
        config.business_time_zone = "Asia/Shanghai".into();
    })
    .await;
    let c = server.complaints();
    let created = intake(&c)
        .register_complaint(as_intake(register_request()))
        .await
        .unwrap()
        .into_inner();
    let sla = |c: &ComplaintServiceClient<Channel>| {
        let name = created.name.clone();
        let mut c = c.clone();
        async move {
            c.get_complaint_sla(as_intake(api::GetComplaintSlaRequest { name }))
                .await
                .unwrap()
                .into_inner()
        }
    };
    // Nine hours before an end-of-day deadline (a midnight in London, 23:00 or 00:00 UTC):
    // the deadline's day in UTC, but in Shanghai (UTC+8) already the evening of a day
    // that ends before the deadline.
    let view = sla(&c).await;
    let day_based = view
        .clocks
        .iter()
        .find(|k| {
            k.explanation
                .iter()
                .any(|l| l.starts_with("due by the end of"))
        })
        .expect("a clock due at the end of a day");
    // The explanation says what due_time is for an end-of-day deadline.
    assert!(
        day_based
            .explanation
            .iter()
            .any(|line| line.contains("due_time is the midnight that ends it")),
        "{:?}",
        day_based.explanation
    );
    let due = day_based.due_time.unwrap();
    // And it is the next local midnight after due_date, in the policy's zone.
    let date: jiff::civil::Date = day_based.due_date.parse().unwrap();
    let midnight = date
        .tomorrow()
        .unwrap()
        .to_zoned(TimeZone::get(&view.time_zone).unwrap())
        .unwrap();
    assert_eq!(due.seconds, midnight.timestamp().as_second());
    let now = due.seconds - 9 * 3600;
    clock.set(eventlog::Timestamp::from_micros(now * 1_000_000));

    let at = jiff::Timestamp::from_second(now).unwrap();
    let count_in = |zone: TimeZone, clocks: &[api::Clock]| {
        let today = at.to_zoned(zone.clone()).date();
        let start = today
            .to_zoned(zone.clone())
            .unwrap()
            .timestamp()
            .as_second();
        let end = today
            .tomorrow()
            .unwrap()
            .to_zoned(zone)
            .unwrap()
            .timestamp()
            .as_second();
        clocks
            .iter()
            .filter(|k| {
                k.stop_time.is_none()
                    && !matches!(
                        k.state(),
                        api::ClockState::ClockWindowOpen | api::ClockState::ClockWindowClosed
                    )
                    && k.due_time
                        .is_some_and(|t| t.seconds > start && t.seconds <= end)
            })
            .count() as u64
    };
    let clocks = sla(&c).await.clocks;
    let in_shanghai = count_in(TimeZone::get("Asia/Shanghai").unwrap(), &clocks);
    let in_utc = count_in(TimeZone::UTC, &clocks);
    assert_ne!(in_shanghai, in_utc, "the moment tells the zones apart");
    let board = intake(&c)
        .get_board(as_intake(api::GetBoardRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(board.due_today, in_shanghai);

    // A zone that does not exist stops the start.
    let mut config = server.config().clone();
    config.business_time_zone = "Mars/Olympus_Mons".into();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let e = complaintd::server::start(&config).await.err().unwrap();
    assert!(format!("{e:#}").contains("business_time_zone"), "{e:#}");
}

/// The AU-ASIC variant: deadlines that differ by kind of complaint were chosen only by
/// the free-text category; `variant` names one explicitly (validated against the
/// regime), and an empty one keeps the category's choice.
#[tokio::test]
async fn a_named_variant_chooses_the_deadline_and_is_validated() {
    let server = server().await;
    let c = server.complaints();
    let au = |category: &str, variant: &str| api::RegisterComplaintRequest {
        category: category.into(),
        variant: variant.into(),
        ..common::register("AU-ASIC-RG271", "AU", NOW - 3600)
    };
    let final_response = |c: &ComplaintServiceClient<Channel>, name: String| {
        let mut c = c.clone();
        async move {
            c.get_complaint_sla(as_intake(api::GetComplaintSlaRequest { name }))
                .await
                .unwrap()
                .into_inner()
                .clocks
                .into_iter()
                .find(|k| k.clock == "final_response")
                .unwrap()
        }
    };
    let received: jiff::civil::Date = jiff::Timestamp::from_second(NOW - 3600)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::get("Australia/Sydney").unwrap())
        .date();
    let due_after = |days: i64| {
        received
            .checked_add(jiff::Span::new().days(days))
            .unwrap()
            .to_string()
    };
    for (category, variant, days, why) in [
        ("cards", "superannuation", 45, "variant superannuation"),
        ("hardship", "", 21, "category hardship"),
        ("hardship", "superannuation", 45, "variant superannuation"),
        ("cards", "", 30, ""),
    ] {
        let created = intake(&c)
            .register_complaint(as_intake(au(category, variant)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(created.variant, variant);
        let read = intake(&c)
            .get_complaint(as_intake(api::GetComplaintRequest {
                name: created.name.clone(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(read.variant, variant, "stored and read back");
        let clock = final_response(&c, created.name).await;
        assert_eq!(clock.due_date, due_after(days), "{category}/{variant}");
        assert!(
            why.is_empty() || clock.explanation.iter().any(|l| l.starts_with(why)),
            "{:?}",
            clock.explanation
        );
    }

    let e = intake(&c)
        .register_complaint(as_intake(au("cards", "platinum")))
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["variant"]);
    assert!(
        e.get_error_details()
            .bad_request()
            .unwrap()
            .field_violations[0]
            .description
            .contains("superannuation"),
        "names the variants"
    );
    let mut uk = register_request();
    uk.variant = "superannuation".into();
    let e = intake(&c)
        .register_complaint(as_intake(uk))
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["variant"]);
    let e = intake(&c)
        .register_complaint(as_intake(au("cards", "two words")))
        .await
        .unwrap_err();
    assert_eq!(fields(&e), ["variant"]);
}
