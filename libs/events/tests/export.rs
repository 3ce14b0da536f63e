//! The export's direct JSON writer prints exactly what the reference rendering (a
//! `serde_json::Value` from prost-reflect's canonical mapping) prints: for random payloads
//! of every payload message (every field kind, nested and repeated messages, oneofs,
//! optional fields at their default, awkward text), for damaged payloads (where it may
//! only step aside), and for a sealed event opened with the complainant's key.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use bytes::Bytes;
use complaints_domain::{Change, Event};
use complaints_events::codec::{self, Sealing};
use complaints_events::export::{direct_line, event_json_with, event_line};
use complaints_events::personal::{KeyStore, MemoryKeys};
use complaints_events::Kind;
use eventlog::{ChainHash, RecordedEvent, StreamId, Timestamp};
use prost::Message as _;
use prost_reflect::{
    Cardinality, DescriptorPool, DynamicMessage, FieldDescriptor, Kind as ProtoKind,
    MessageDescriptor, ReflectMessage as _, Value,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

const TEXTS: [&str; 9] = [
    "",
    "r",
    "complaint-1",
    "quote \" backslash \\ slash /",
    "line\nbreak\ttab\r\u{8}\u{c}",
    "\u{1}\u{1f}\u{7f}",
    "é ü 日本語 🙂",
    "\u{2028}\u{2029}",
    "</script>",
];

fn text(rng: &mut StdRng) -> String {
    if rng.random_bool(0.2) {
        (0..rng.random_range(0..20))
            .map(|_| char::from_u32(rng.random_range(0..0x3000)).unwrap_or('x'))
            .collect()
    } else {
        TEXTS[rng.random_range(0..TEXTS.len())].to_owned()
    }
}

fn int(rng: &mut StdRng) -> i64 {
    const EDGES: [i64; 8] = [
        0,
        1,
        -1,
        i64::MAX,
        i64::MIN,
        i32::MAX as i64,
        i32::MIN as i64,
        1_767_225_600_000_000,
    ];
    if rng.random_bool(0.5) {
        EDGES[rng.random_range(0..EDGES.len())]
    } else {
        rng.random()
    }
}

fn value(field: &FieldDescriptor, rng: &mut StdRng, depth: usize) -> Value {
    match field.kind() {
        ProtoKind::Int32 | ProtoKind::Sint32 | ProtoKind::Sfixed32 => Value::I32(int(rng) as i32),
        ProtoKind::Uint32 | ProtoKind::Fixed32 => Value::U32(int(rng) as u32),
        ProtoKind::Int64 | ProtoKind::Sint64 | ProtoKind::Sfixed64 => Value::I64(int(rng)),
        ProtoKind::Uint64 | ProtoKind::Fixed64 => Value::U64(int(rng) as u64),
        ProtoKind::Bool => Value::Bool(rng.random()),
        ProtoKind::String => Value::String(text(rng)),
        ProtoKind::Bytes => {
            let n = rng.random_range(0..40);
            Value::Bytes(Bytes::from((0..n).map(|_| rng.random::<u8>()).collect::<Vec<_>>()))
        }
        ProtoKind::Message(inner) => Value::Message(message(&inner, rng, depth + 1)),
        other => panic!("the stored events use no {other:?} field: the direct writer leaves them to the reference"),
    }
}

/// A random message: each field set or not, one member of each oneof at most, lists of
/// zero to three (a field's default counts too).
fn message(descriptor: &MessageDescriptor, rng: &mut StdRng, depth: usize) -> DynamicMessage {
    let mut message = DynamicMessage::new(descriptor.clone());
    if depth > 4 {
        return message;
    }
    for oneof in descriptor.oneofs() {
        let members: Vec<_> = oneof.fields().collect();
        if rng.random_bool(0.8) {
            let field = &members[rng.random_range(0..members.len())];
            message.set_field(field, value(field, rng, depth));
        }
    }
    for field in descriptor.fields() {
        if field.containing_oneof().is_some() || rng.random_bool(0.3) {
            continue;
        }
        let v = if field.cardinality() == Cardinality::Repeated {
            Value::List(
                (0..rng.random_range(0..4))
                    .map(|_| value(&field, rng, depth))
                    .collect(),
            )
        } else if rng.random_bool(0.15) {
            field.default_value()
        } else {
            value(&field, rng, depth)
        };
        message.set_field(&field, v);
    }
    message
}

/// Appends each unset field without presence at its default, as an encoder that writes
/// defaults would (prost leaves them out): the reference does not print them.
fn explicit_defaults(message: &DynamicMessage, payload: &mut Vec<u8>) {
    for field in message.descriptor().fields() {
        if field.supports_presence() || field.is_list() || message.has_field(&field) {
            continue;
        }
        let number = field.number();
        let tag = |wire: u32, payload: &mut Vec<u8>| {
            prost::encoding::encode_varint(u64::from(number << 3 | wire), payload);
        };
        match field.kind() {
            ProtoKind::Fixed32 | ProtoKind::Sfixed32 => {
                tag(5, payload);
                payload.extend_from_slice(&[0; 4]);
            }
            ProtoKind::Fixed64 | ProtoKind::Sfixed64 => {
                tag(1, payload);
                payload.extend_from_slice(&[0; 8]);
            }
            ProtoKind::String | ProtoKind::Bytes => {
                tag(2, payload);
                payload.push(0);
            }
            _ => {
                tag(0, payload);
                payload.push(0);
            }
        }
    }
}

fn record(event_type: &str, payload: Vec<u8>, rng: &mut StdRng) -> RecordedEvent {
    RecordedEvent {
        id: Uuid::from_u128(rng.random()),
        stream: StreamId::new(format!("complaint-{}", Uuid::from_u128(rng.random()))).unwrap(),
        version: rng.random_range(1..1_000_000),
        position: rng.random_range(1..u64::MAX),
        event_type: event_type.to_owned(),
        schema_version: rng.random(),
        recorded_at: Timestamp::from_micros(rng.random_range(0..4_000_000_000_000_000)),
        actor: text(rng),
        correlation_id: text(rng),
        causation_id: text(rng),
        payload: Bytes::from(payload),
        checksum: 0,
        prev_hash: ChainHash(rng.random()),
    }
}

/// An event type of each kind (a complaint step stands for all of them).
fn event_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Complaint => "complaint.answered",
        Kind::SlaAtRisk => complaints_events::stored::SLA_AT_RISK,
        Kind::SlaBreached => complaints_events::stored::SLA_BREACHED,
        Kind::QueueLeased => complaints_events::stored::QUEUE_LEASED,
        Kind::QueueLeaseExpired => complaints_events::stored::QUEUE_LEASE_EXPIRED,
        Kind::QueueAcknowledged => complaints_events::stored::QUEUE_ACKNOWLEDGED,
        Kind::RulesLoaded => complaints_events::stored::RULES_LOADED,
        Kind::PersonalDataErased => complaints_events::stored::PERSONAL_DATA_ERASED,
        Kind::DigestSigned => complaints_events::stored::DIGEST_SIGNED,
        Kind::RepeatedCause => complaints_events::stored::REPEATED_CAUSE,
    }
}

fn reference(record: &RecordedEvent, keys: Option<&dyn KeyStore>) -> String {
    event_json_with(record, ChainHash([7; 32]), keys).to_string()
}

#[test]
fn the_direct_writer_prints_what_the_reference_prints_for_every_payload_message() {
    let pool = DescriptorPool::decode(complaints_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut rng = StdRng::seed_from_u64(18);
    let mut with_effective = 0;
    for kind in Kind::ALL {
        let descriptor = pool.get_message_by_name(kind.payload_message()).unwrap();
        for _ in 0..400 {
            let generated = message(&descriptor, &mut rng, 0);
            let mut payload = generated.encode_to_vec();
            if rng.random_bool(0.5) {
                explicit_defaults(&generated, &mut payload);
            }
            let record = record(event_type(kind), payload, &mut rng);
            let expected = reference(&record, None);
            assert!(
                !expected.contains("payload_base64"),
                "{kind:?}: a valid payload decodes"
            );
            let direct = direct_line(&record, ChainHash([7; 32]), None);
            assert_eq!(direct.as_deref(), Some(expected.as_str()), "{kind:?}");
            with_effective += usize::from(expected.contains("\"effective_at\""));
        }
    }
    assert!(
        with_effective > 50,
        "effective times were exercised: {with_effective}"
    );
}

#[test]
fn damaged_or_unknown_payloads_print_as_the_reference_prints_them() {
    let pool = DescriptorPool::decode(complaints_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut rng = StdRng::seed_from_u64(12);
    let mut stepped_aside = 0;
    let mut base64 = 0;
    for kind in Kind::ALL {
        let descriptor = pool.get_message_by_name(kind.payload_message()).unwrap();
        for _ in 0..300 {
            let mut payload = message(&descriptor, &mut rng, 0).encode_to_vec();
            match rng.random_range(0..4) {
                // A byte changed.
                0 if !payload.is_empty() => {
                    let at = rng.random_range(0..payload.len());
                    payload[at] ^= 1 << rng.random_range(0..8);
                }
                // Cut short.
                1 if !payload.is_empty() => payload.truncate(rng.random_range(0..payload.len())),
                // A field given twice, or an unknown one.
                2 => payload.extend_from_slice(&payload.clone()),
                _ => payload.extend_from_slice(&[0xf8, 0x3f, 0x01]),
            }
            let record = record(event_type(kind), payload, &mut rng);
            let expected = reference(&record, None);
            base64 += usize::from(expected.contains("payload_base64"));
            match direct_line(&record, ChainHash([7; 32]), None) {
                Some(direct) => assert_eq!(direct, expected, "{kind:?}"),
                None => stepped_aside += 1,
            }
            assert_eq!(event_line(&record, ChainHash([7; 32]), None), expected);
        }
    }
    assert!(
        stepped_aside > 100 && base64 > 100,
        "{stepped_aside} {base64}"
    );
    // A type this build does not know: base64, written directly.
    let record = record("vendor.custom", vec![0, 159, 146, 150], &mut rng);
    let direct = direct_line(&record, ChainHash([7; 32]), None).unwrap();
    assert_eq!(direct, reference(&record, None));
    assert!(
        direct.contains("\"payload_base64\":\"AJ+Slg==\""),
        "{direct}"
    );
}

#[test]
fn a_sealed_comment_is_printed_opened_for_a_caller_with_the_keys() {
    let keys = MemoryKeys::default();
    let event = Event {
        at: "2026-03-02T12:00:00.123456Z".parse().unwrap(),
        actor: "user:x".into(),
        change: Change::SatisfactionRecorded {
            rating: 2,
            comment: "slow and \"unhelpful\"".into(),
        },
        effective: Some(complaints_domain::Effective {
            at: "2026-03-01T09:00:00Z".parse().unwrap(),
            reason: None,
        }),
    };
    let (event_type, bytes) = codec::encode_with(
        &event,
        Sealing::Sealed {
            keys: &keys,
            person_id: "person-7",
        },
    )
    .unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let record = record(event_type, bytes.to_vec(), &mut rng);
    let opened = direct_line(&record, ChainHash([7; 32]), Some(&keys)).unwrap();
    assert_eq!(opened, reference(&record, Some(&keys)));
    assert!(opened.contains(r#"slow and \"unhelpful\""#), "{opened}");
    assert!(
        opened.contains(r#""effective_at":"2026-03-01T09:00:00Z""#),
        "{opened}"
    );
    let sealed = direct_line(&record, ChainHash([7; 32]), None).unwrap();
    assert_eq!(sealed, reference(&record, None));
    assert!(!sealed.contains("unhelpful"), "{sealed}");
}
