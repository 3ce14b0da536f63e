//! A payload's protobuf bytes written straight out as JSON, byte for byte as the reference
//! rendering prints it: prost-reflect's canonical JSON mapping (lowerCamelCase names,
//! 64-bit integers as strings, bytes in base64, fields without presence left out at their
//! default) collected into a `serde_json::Value`, whose objects print their keys sorted.
//!
//! Written here rather than taken from a library: the reference builds a `DynamicMessage`
//! and then a `Value` tree for every event, about 7 µs of CPU per event (measured with the
//! audit bench; most of an export's time), and no maintained crate writes protobuf wire
//! data to JSON without building a message first. It handles the shapes the stored events
//! use: scalars other than floats and enums, strings, bytes, nested and repeated messages,
//! oneofs and optional fields. Anything else (an unknown field, a singular field given
//! twice, a packed list, a float, an enum, a map, a group, text that is not UTF-8, a wire
//! type that does not match) gives `None`, and the caller renders the reference way: the
//! output is the same either way (the tests compare both on every payload message).

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::OnceLock;

use base64::Engine as _;
use prost_reflect::{Cardinality, DescriptorPool, Kind as ProtoKind, MessageDescriptor};

/// How deep messages may nest (prost's own decoding limit).
const MAX_DEPTH: usize = 100;

/// How a field's value is read from the wire and printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    Int32,
    Sint32,
    Sfixed32,
    Uint32,
    Fixed32,
    Int64,
    Sint64,
    Sfixed64,
    Uint64,
    Fixed64,
    Bool,
    String,
    Bytes,
    /// The index of its plan.
    Message(usize),
    /// A kind this writer leaves to the reference (floats, enums, maps, groups).
    Other,
}

#[derive(Debug)]
struct Field {
    number: u32,
    /// `"jsonName":`, escaped.
    key: Box<[u8]>,
    scalar: Scalar,
    repeated: bool,
    /// Printed when present even at its default (optional, oneof members, messages).
    presence: bool,
    /// Which oneof it belongs to, if any (an index within the message).
    oneof: Option<u32>,
    /// The top-level `effectiveAtMicros` (see [`payload`]).
    effective_at: bool,
}

#[derive(Debug, Default)]
struct Plan {
    /// In the order the reference prints them: by JSON name.
    fields: Vec<Field>,
    /// (field number, index into `fields`), by number.
    by_number: Vec<(u32, usize)>,
}

impl Plan {
    fn field(&self, number: u32) -> Option<usize> {
        self.by_number
            .binary_search_by_key(&number, |(n, _)| *n)
            .ok()
            .map(|i| self.by_number[i].1)
    }
}

struct Plans {
    plans: Vec<Plan>,
    by_name: HashMap<String, usize>,
}

impl Plans {
    fn of(pool: &DescriptorPool) -> Self {
        let mut plans = Plans {
            plans: Vec::new(),
            by_name: HashMap::new(),
        };
        for message in pool.all_messages() {
            plans.plan(&message);
        }
        plans
    }

    fn plan(&mut self, message: &MessageDescriptor) -> usize {
        if let Some(index) = self.by_name.get(message.full_name()) {
            return *index;
        }
        let index = self.plans.len();
        self.plans.push(Plan::default());
        self.by_name.insert(message.full_name().to_owned(), index);
        let oneofs: Vec<String> = message.oneofs().map(|o| o.full_name().to_owned()).collect();
        let mut fields = Vec::new();
        for field in message.fields() {
            let scalar = match field.kind() {
                _ if field.is_map() => Scalar::Other,
                ProtoKind::Int32 => Scalar::Int32,
                ProtoKind::Sint32 => Scalar::Sint32,
                ProtoKind::Sfixed32 => Scalar::Sfixed32,
                ProtoKind::Uint32 => Scalar::Uint32,
                ProtoKind::Fixed32 => Scalar::Fixed32,
                ProtoKind::Int64 => Scalar::Int64,
                ProtoKind::Sint64 => Scalar::Sint64,
                ProtoKind::Sfixed64 => Scalar::Sfixed64,
                ProtoKind::Uint64 => Scalar::Uint64,
                ProtoKind::Fixed64 => Scalar::Fixed64,
                ProtoKind::Bool => Scalar::Bool,
                ProtoKind::String => Scalar::String,
                ProtoKind::Bytes => Scalar::Bytes,
                // Well-known types print specially, and groups are another wire shape.
                ProtoKind::Message(inner)
                    if !inner.full_name().starts_with("google.protobuf.") && !field.is_group() =>
                {
                    Scalar::Message(self.plan(&inner))
                }
                ProtoKind::Message(_)
                | ProtoKind::Float
                | ProtoKind::Double
                | ProtoKind::Enum(_) => Scalar::Other,
            };
            let mut key = Vec::new();
            // Writing into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut key, field.json_name());
            key.push(b':');
            fields.push((
                field.json_name().to_owned(),
                Field {
                    number: field.number(),
                    key: key.into(),
                    scalar,
                    repeated: field.cardinality() == Cardinality::Repeated,
                    presence: field.supports_presence(),
                    oneof: field.containing_oneof().and_then(|o| {
                        oneofs
                            .iter()
                            .position(|name| name == o.full_name())
                            .map(|i| i as u32)
                    }),
                    effective_at: field.json_name() == "effectiveAtMicros",
                },
            ));
        }
        // The reference's objects are sorted maps: keys in byte order.
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        let fields: Vec<Field> = fields.into_iter().map(|(_, f)| f).collect();
        let mut by_number: Vec<(u32, usize)> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.number, i))
            .collect();
        by_number.sort_unstable();
        self.plans[index] = Plan { fields, by_number };
        index
    }
}

fn plans() -> &'static Plans {
    static PLANS: OnceLock<Plans> = OnceLock::new();
    PLANS.get_or_init(|| {
        // The descriptors compiled into the binary; without them, no plans and every
        // payload takes the reference path.
        DescriptorPool::decode(complaints_proto::FILE_DESCRIPTOR_SET)
            .map(|pool| Plans::of(&pool))
            .unwrap_or_else(|_| Plans {
                plans: Vec::new(),
                by_name: HashMap::new(),
            })
    })
}

/// A value as it came off the wire.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed32(u32),
    Fixed64(u64),
    Bytes(&'a [u8]),
}

/// A field read from the message: the index of its [`Field`] and its value.
#[derive(Debug, Clone, Copy)]
struct Read<'a> {
    field: usize,
    value: Wire<'a>,
}

fn varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let byte = *buf.get(*at)?;
        *at += 1;
        // The tenth byte may only hold the top bit (prost refuses more).
        if i == 9 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

fn take<'a>(buf: &'a [u8], at: &mut usize, n: usize) -> Option<&'a [u8]> {
    let end = at.checked_add(n)?;
    let bytes = buf.get(*at..end)?;
    *at = end;
    Some(bytes)
}

/// The fields of one message, in printing order.
fn read<'a>(plan: &Plan, buf: &'a [u8]) -> Option<Vec<Read<'a>>> {
    let mut fields = Vec::with_capacity(16);
    let mut at = 0;
    while at < buf.len() {
        let tag = varint(buf, &mut at)?;
        let number = u32::try_from(tag >> 3).ok().filter(|n| *n > 0)?;
        let field = plan.field(number)?;
        let scalar = plan.fields[field].scalar;
        let value = match (tag & 7, scalar) {
            (
                0,
                Scalar::Int32
                | Scalar::Sint32
                | Scalar::Uint32
                | Scalar::Int64
                | Scalar::Sint64
                | Scalar::Uint64
                | Scalar::Bool,
            ) => Wire::Varint(varint(buf, &mut at)?),
            (5, Scalar::Fixed32 | Scalar::Sfixed32) => {
                let b: [u8; 4] = take(buf, &mut at, 4)?.try_into().ok()?;
                Wire::Fixed32(u32::from_le_bytes(b))
            }
            (1, Scalar::Fixed64 | Scalar::Sfixed64) => {
                let b: [u8; 8] = take(buf, &mut at, 8)?.try_into().ok()?;
                Wire::Fixed64(u64::from_le_bytes(b))
            }
            (2, Scalar::String | Scalar::Bytes | Scalar::Message(_)) => {
                let len = usize::try_from(varint(buf, &mut at)?).ok()?;
                Wire::Bytes(take(buf, &mut at, len)?)
            }
            // Packed lists, other kinds, mismatched wire types: the reference decides.
            _ => return None,
        };
        fields.push(Read { field, value });
    }
    // Stable: a repeated field's values stay in wire order.
    fields.sort_by_key(|r| r.field);
    Some(fields)
}

/// A 64-bit integer as the reference prints it: a string.
fn quoted(out: &mut Vec<u8>, n: impl std::fmt::Display) {
    let _ = write!(out, "\"{n}\"");
}

/// Writes one value; `None` if the reference must decide.
fn value(
    plans: &Plans,
    scalar: Scalar,
    wire: Wire<'_>,
    depth: usize,
    out: &mut Vec<u8>,
) -> Option<()> {
    // Writing into a Vec cannot fail: the results of `write!` are ignored.
    match (scalar, wire) {
        (Scalar::Int32, Wire::Varint(v)) => {
            let _ = write!(out, "{}", v as i32);
        }
        (Scalar::Sint32, Wire::Varint(v)) => {
            let n = v as u32;
            let _ = write!(out, "{}", ((n >> 1) as i32) ^ -((n & 1) as i32));
        }
        (Scalar::Uint32, Wire::Varint(v)) => {
            let _ = write!(out, "{}", v as u32);
        }
        (Scalar::Fixed32, Wire::Fixed32(v)) => {
            let _ = write!(out, "{v}");
        }
        (Scalar::Sfixed32, Wire::Fixed32(v)) => {
            let _ = write!(out, "{}", v as i32);
        }
        (Scalar::Int64, Wire::Varint(v)) => quoted(out, v as i64),
        (Scalar::Sint64, Wire::Varint(v)) => quoted(out, ((v >> 1) as i64) ^ -((v & 1) as i64)),
        (Scalar::Uint64, Wire::Varint(v)) | (Scalar::Fixed64, Wire::Fixed64(v)) => quoted(out, v),
        (Scalar::Sfixed64, Wire::Fixed64(v)) => quoted(out, v as i64),
        (Scalar::Bool, Wire::Varint(v)) => {
            out.extend_from_slice(if v != 0 { b"true" } else { b"false" });
        }
        (Scalar::String, Wire::Bytes(b)) => {
            let _ = serde_json::to_writer(&mut *out, std::str::from_utf8(b).ok()?);
        }
        (Scalar::Bytes, Wire::Bytes(b)) => {
            out.push(b'"');
            let mut encoded = String::new();
            base64::engine::general_purpose::STANDARD.encode_string(b, &mut encoded);
            out.extend_from_slice(encoded.as_bytes());
            out.push(b'"');
        }
        (Scalar::Message(plan), Wire::Bytes(b)) => {
            message(plans, plan, b, depth + 1, out, &mut None)?;
        }
        _ => return None,
    }
    Some(())
}

/// Whether a field without presence is at its default (and so left out).
fn is_default(scalar: Scalar, wire: Wire<'_>) -> bool {
    match (scalar, wire) {
        (Scalar::Int32 | Scalar::Sint32 | Scalar::Uint32, Wire::Varint(v)) => v as u32 == 0,
        (_, Wire::Varint(v)) | (_, Wire::Fixed64(v)) => v == 0,
        (_, Wire::Fixed32(v)) => v == 0,
        (Scalar::Message(_), Wire::Bytes(_)) => false,
        (_, Wire::Bytes(b)) => b.is_empty(),
    }
}

/// Writes one message as an object. At the top level, `effective` gets the value of an
/// `effectiveAtMicros` field printed.
fn message(
    plans: &Plans,
    plan: usize,
    buf: &[u8],
    depth: usize,
    out: &mut Vec<u8>,
    effective: &mut Option<i64>,
) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    let plan = plans.plans.get(plan)?;
    let fields = read(plan, buf)?;
    // A oneof with two members set: the reference keeps the last; left to it.
    let mut oneofs: Vec<(u32, usize)> = Vec::new();
    for r in &fields {
        if let Some(oneof) = plan.fields[r.field].oneof {
            match oneofs.iter().find(|(o, _)| *o == oneof) {
                Some((_, field)) if *field != r.field => return None,
                Some(_) => {}
                None => oneofs.push((oneof, r.field)),
            }
        }
    }
    out.push(b'{');
    let mut first = true;
    let mut rest = fields.as_slice();
    while let Some(head) = rest.first() {
        let same = rest.iter().take_while(|r| r.field == head.field).count();
        let (group, after) = rest.split_at(same);
        rest = after;
        let field = &plan.fields[head.field];
        if !field.repeated {
            if group.len() > 1 {
                return None;
            }
            if !field.presence && is_default(field.scalar, head.value) {
                continue;
            }
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(&field.key);
        if field.repeated {
            out.push(b'[');
            for (i, r) in group.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                value(plans, field.scalar, r.value, depth, out)?;
            }
            out.push(b']');
        } else {
            let start = out.len();
            value(plans, field.scalar, head.value, depth, out)?;
            if depth == 0 && field.effective_at {
                // As the reference reads it: the printed string, parsed.
                *effective = std::str::from_utf8(&out[start..])
                    .ok()
                    .and_then(|s| s.strip_prefix('"')?.strip_suffix('"')?.parse().ok());
            }
        }
    }
    out.push(b'}');
    Some(())
}

/// Writes the payload of protobuf message `name` as a JSON object; returns its top-level
/// `effectiveAtMicros`, if printed. `None` (with `out` in an unspecified state) when the
/// reference rendering must decide.
pub(crate) fn payload(name: &str, bytes: &[u8], out: &mut Vec<u8>) -> Option<Option<i64>> {
    let plans = plans();
    let plan = *plans.by_name.get(name)?;
    let mut effective = None;
    message(plans, plan, bytes, 0, out, &mut effective)?;
    Some(effective)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_as_prost_reads_them() {
        let mut at = 0;
        assert_eq!(varint(&[0x96, 0x01], &mut at), Some(150));
        assert_eq!(at, 2);
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(varint(&max, &mut 0), Some(u64::MAX));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(varint(&over, &mut 0), None);
        assert_eq!(varint(&[0x80], &mut 0), None);
    }

    #[test]
    fn every_payload_message_has_a_plan() {
        for kind in crate::Kind::ALL {
            assert!(
                plans().by_name.contains_key(kind.payload_message()),
                "{kind:?}"
            );
        }
    }
}
