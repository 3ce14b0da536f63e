//! Hostile input, property-tested: arbitrary requests through the real server (request
//! validation, the domain's checks) and arbitrary bytes through every decoder. Nothing
//! panics; every refusal is a clear code (with field violations for bad fields); an
//! oversized message is refused and the server goes on.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::sync::OnceLock;

use common::{req_as, TestServer, NOW};
use complaints_proto::complaints::v1 as api;
use complaints_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use proptest::prelude::*;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_types::StatusExt;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    client: ComplaintServiceClient<Channel>,
    /// A complaint to aim steps at.
    complaint: String,
    _server: TestServer,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (server, client, complaint) = runtime.block_on(async {
            let server = TestServer::start(|_| {}).await;
            let mut client = server.complaints();
            let created = client
                .register_complaint(req(valid_register()))
                .await
                .unwrap()
                .into_inner();
            (server, client, created.name)
        });
        Fixture {
            runtime,
            client,
            complaint,
            _server: server,
        }
    })
}

fn req<T>(message: T) -> Request<T> {
    req_as(
        message,
        "user:fuzz",
        "intake,handler,supervisor,regulator_gateway",
    )
}

fn valid_register() -> api::RegisterComplaintRequest {
    common::register("UK-FCA-DISP", "GB-ENG", NOW - 60)
}

/// Text as hostile clients send it: empty, huge, control characters, any Unicode.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z]{1,12}",
        ".{0,40}",
        "[\\x00-\\x1f\\u{202e}\\u{feff}]{1,8}",
        (1usize..3).prop_map(|k| "x".repeat(k * 6000)),
    ]
}

fn time() -> impl Strategy<Value = Option<prost_types::Timestamp>> {
    prop_oneof![
        Just(None),
        (any::<i64>(), any::<i32>())
            .prop_map(|(seconds, nanos)| Some(prost_types::Timestamp { seconds, nanos })),
        (-1_000_000i64..1_000_000).prop_map(|d| Some(prost_types::Timestamp {
            seconds: NOW + d,
            nanos: 0
        })),
    ]
}

fn register_request() -> impl Strategy<Value = api::RegisterComplaintRequest> {
    (
        prop_oneof![Just(uuid::Uuid::new_v4().to_string()), text()],
        prop_oneof![Just(String::new()), text()],
        any::<i32>(),
        (text(), text(), text(), text()),
        (text(), text(), text(), text(), text(), text()),
        time(),
        prop_oneof![
            Just("UK-FCA-DISP".to_owned()),
            Just("CN-CBIRC".to_owned()),
            text()
        ],
        prop_oneof![Just("GB-ENG".to_owned()), Just("CN".to_owned()), text()],
        proptest::option::of((text(), text(), time())),
    )
        .prop_map(
            |(
                request_id,
                complaint_id,
                channel,
                (person, name, contact, idn),
                (unit, employee, product, category, claim, facts),
                receive_time,
                regime,
                region,
                regulator,
            )| {
                api::RegisterComplaintRequest {
                    request_id,
                    complaint_id,
                    channel,
                    complainant: Some(api::Complainant {
                        person_id: person,
                        name,
                        contact,
                        id_number: idn,
                    }),
                    unit,
                    employee,
                    product,
                    category,
                    claim,
                    facts,
                    receive_time,
                    regime,
                    region,
                    regulator: regulator.map(|(regulator, reference, deadline)| {
                        api::RegulatorTransfer {
                            regulator,
                            reference,
                            deadline,
                        }
                    }),
                    variant: String::new(),
                }
            },
        )
}

/// A refusal must be one of the codes the API documents, and bad fields must be named.
fn check(result: Result<(), tonic::Status>) -> Result<(), TestCaseError> {
    let Err(status) = result else { return Ok(()) };
    let allowed = [
        Code::InvalidArgument,
        Code::FailedPrecondition,
        Code::NotFound,
        Code::AlreadyExists,
        Code::Aborted,
        Code::PermissionDenied,
    ];
    prop_assert!(
        allowed.contains(&status.code()),
        "unexpected {:?}: {}",
        status.code(),
        status.message()
    );
    if status.code() == Code::InvalidArgument {
        let details = status.get_error_details();
        let violations = details
            .bad_request()
            .map_or(0, |b| b.field_violations.len());
        prop_assert!(violations > 0, "no field named: {}", status.message());
    }
    prop_assert!(
        status.message().len() < 4096,
        "message too long to be clear"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_registrations_are_accepted_or_refused_clearly(r in register_request()) {
        let f = fixture();
        let mut client = f.client.clone();
        let result = f.runtime.block_on(client.register_complaint(req(r))).map(|_| ());
        check(result)?;
    }

    #[test]
    fn arbitrary_steps_are_accepted_or_refused_clearly(
        days in any::<u32>(),
        reason in text(),
        decision in any::<i32>(),
        minor_units in any::<i64>(),
        currency in prop_oneof![Just("GBP".to_owned()), text()],
        kind in any::<i32>(),
        pause_reason in any::<i32>(),
        notified in time(),
        name in prop_oneof![Just(String::new()), text(), Just("complaints/not-a-uuid".to_owned())],
        expected_version in proptest::option::of(any::<u64>()),
    ) {
        let f = fixture();
        let mut c = f.client.clone();
        let target = if name.is_empty() { f.complaint.clone() } else { name };
        let rid = || uuid::Uuid::new_v4().to_string();
        let results = f.runtime.block_on(async {
            vec![
                c.request_extension(req(api::RequestExtensionRequest {
                    name: target.clone(), request_id: rid(), expected_version, days, reason: reason.clone(),
                })).await.map(|_| ()),
                c.answer_complaint(req(api::AnswerComplaintRequest {
                    name: target.clone(), request_id: rid(), expected_version, decision,
                    redress: vec![api::Redress { kind, amount: Some(api::Money { minor_units, currency_code: currency.clone() }) }],
                    delivery: decision, summary: reason.clone(),
..Default::default()
})).await.map(|_| ()),
                c.pause_clock(req(api::PauseClockRequest {
                    name: target.clone(), request_id: rid(), expected_version, reason: pause_reason,
                    complainant_notify_time: notified,
..Default::default()
})).await.map(|_| ()),
                c.add_new_facts(req(api::AddNewFactsRequest {
                    name: target.clone(), request_id: rid(), expected_version, facts: reason.clone(),
..Default::default()
})).await.map(|_| ()),
            ]
        });
        for result in results {
            check(result)?;
        }
    }

    #[test]
    fn arbitrary_stored_payloads_never_panic_a_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        use complaints_events::codec;
        let _ = codec::decode("complaint.registered", &bytes);
        let _ = codec::decode("complaint.new_facts_added", &bytes);
        let keys = complaints_events::personal::MemoryKeys::default();
        let _ = codec::decode_with("complaint.registered", &bytes, Some(&keys));
        // Every kind of stored event, and one this build does not know.
        for event_type in [
            "complaint.registered", "sla.clock_at_risk", "sla.clock_breached", "queue.leased",
            "queue.lease_expired", "queue.acknowledged", "rules.loaded", "personal_data.erased",
            "log.digest_signed", "something.else",
        ] {
            let record = eventlog::RecordedEvent {
                id: uuid::Uuid::nil(),
                stream: eventlog::StreamId::new("complaint-x").unwrap(),
                version: 1,
                position: 1,
                event_type: event_type.into(),
                schema_version: 1,
                recorded_at: eventlog::Timestamp::from_micros(0),
                actor: String::new(),
                correlation_id: String::new(),
                causation_id: String::new(),
                payload: bytes.clone().into(),
                checksum: 0,
                prev_hash: eventlog::ChainHash::GENESIS,
            };
            let _ = complaints_events::Stored::decode(&record);
        }
        let _ = complaints_events::stored::decode_rules(&bytes);
        let _ = complaints_events::export::payload_json("complaint.registered", &bytes);
        let stored = eventlog::StoredRecord { position: 1, bytes: bytes.clone().into() };
        let _ = stored.decode();
        let mut verifier = eventlog::audit::Verifier::new();
        verifier.check(&stored);
        let _ = verifier.finish();
        let _ = eventlog::audit::HeldDigest::from_json(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn corrupted_real_payloads_never_panic_and_never_open_wrongly(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        use complaints_events::{codec, personal::MemoryKeys};
        let keys = MemoryKeys::default();
        let event = complaints_domain::Event {
            effective: None,
            at: jiff::Timestamp::from_second(NOW).unwrap(),
            actor: "user:x".into(),
            change: complaints_domain::Change::NewFactsAdded { facts: "secret facts".into() },
        };
        let (event_type, payload) = codec::encode_with(
            &event,
            codec::Sealing::Sealed { keys: &keys, person_id: "p-1" },
        ).unwrap();
        let mut bytes = payload.to_vec();
        for (index, flip) in flips {
            let i = index.index(bytes.len());
            bytes[i] ^= flip;
        }
        // A changed byte either fails to decode or to open (the AEAD's tag), or it fell
        // outside the sealed data; it never yields other facts than were sealed.
        if let Ok((decoded, _)) = codec::decode_with(event_type, &bytes, Some(&keys)) {
            if let complaints_domain::Change::NewFactsAdded { facts } = decoded.change {
                prop_assert!(facts == "secret facts" || facts.is_empty(), "{facts:?}");
            }
        }
    }
}

#[test]
fn an_oversized_message_is_refused_and_the_server_goes_on() {
    let f = fixture();
    let mut c = f.client.clone();
    let mut huge = valid_register();
    huge.facts = "x".repeat(3 << 20);
    let status = f
        .runtime
        .block_on(c.register_complaint(req(huge)))
        .unwrap_err();
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
    let ok = f
        .runtime
        .block_on(c.register_complaint(req(valid_register())));
    assert!(ok.is_ok(), "{ok:?}");
}
