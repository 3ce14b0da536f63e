//! Every kind of event the log holds: its type name, its stream, its payload message, and
//! the payload decoded into one typed enum ([`Stored`]).
//!
//! This is the only place that spells event-type names (complaint events take theirs
//! from the domain's `Change::event_type`) and the only place that decodes payloads:
//! projections, export and the workflow all match on [`Stored`] or [`Kind`], so a new
//! kind of event fails to compile until each of them decides what it means.

use bytes::Bytes;
use complaints_domain::model::ComplaintId;
use complaints_domain::Event;
use complaints_proto::complaints::events::v1 as pb;
use complaints_sla::{RuleFile, RuleSources};
use eventlog::{RecordedEvent, StreamId};
use jiff::Timestamp;
use prost::Message;
use uuid::Uuid;

use crate::codec;
use crate::error::DecodeError;

/// Event type of an SLA clock crossing an at-risk threshold.
pub const SLA_AT_RISK: &str = "sla.clock_at_risk";
/// Event type of an SLA clock breaching.
pub const SLA_BREACHED: &str = "sla.clock_breached";
/// Event type of a queue item leased by a consumer.
pub const QUEUE_LEASED: &str = "queue.leased";
/// Event type of a queue item's lease running out (recorded with the next lease).
pub const QUEUE_LEASE_EXPIRED: &str = "queue.lease_expired";
/// Event type of a queue item acknowledged with the regulator's reference.
pub const QUEUE_ACKNOWLEDGED: &str = "queue.acknowledged";
/// Event type of the SLA rules in force, recorded in the stream [`RULES_STREAM`].
pub const RULES_LOADED: &str = "rules.loaded";
/// Event type of an erasure of personal data, in the stream [`ERASURES_STREAM`].
pub const PERSONAL_DATA_ERASED: &str = "personal_data.erased";
/// Event type of a repeated root cause (the optional rule of the reports), in the stream
/// [`ANALYSIS_STREAM`].
pub const REPEATED_CAUSE: &str = "analysis.repeated_cause";
/// Event type of a signed digest of the log (see `eventlog::audit`).
pub const DIGEST_SIGNED: &str = eventlog::audit::DIGEST_EVENT_TYPE;

/// The stream of recorded SLA rules.
pub const RULES_STREAM: &str = "rules";
/// The stream that records erasures of personal data.
pub const ERASURES_STREAM: &str = "erasures";
/// The stream of analysis findings (repeated root causes).
pub const ANALYSIS_STREAM: &str = "analysis";

/// The stream of a complaint's lifecycle events.
pub fn complaint_stream(id: ComplaintId) -> StreamId {
    checked_stream(id.stream())
}

/// The stream of a complaint's SLA transitions.
pub fn sla_stream(id: ComplaintId) -> StreamId {
    checked_stream(format!("sla-{}", id.uuid()))
}

/// The stream of a regulator-queue item.
pub fn queue_stream(item: Uuid) -> StreamId {
    checked_stream(format!("queue-{item}"))
}

/// A named stream of the service ([`RULES_STREAM`], [`ERASURES_STREAM`]).
pub fn named_stream(name: &'static str) -> StreamId {
    checked_stream(name.to_owned())
}

/// Stream names built here are a fixed prefix and a uuid, or a fixed name.
fn checked_stream(name: String) -> StreamId {
    StreamId::new(name).expect("a fixed prefix and a uuid, or a fixed name, make a valid stream id")
}

/// Every kind of event this build knows, by type name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A step of a complaint's life (`complaint.*`).
    Complaint,
    SlaAtRisk,
    SlaBreached,
    QueueLeased,
    QueueLeaseExpired,
    QueueAcknowledged,
    RulesLoaded,
    PersonalDataErased,
    DigestSigned,
    RepeatedCause,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 10] = [
        Kind::Complaint,
        Kind::SlaAtRisk,
        Kind::SlaBreached,
        Kind::QueueLeased,
        Kind::QueueLeaseExpired,
        Kind::QueueAcknowledged,
        Kind::RulesLoaded,
        Kind::PersonalDataErased,
        Kind::DigestSigned,
        Kind::RepeatedCause,
    ];

    /// The kind of an event type; `None` for a type this build does not know.
    pub fn of(event_type: &str) -> Option<Self> {
        Some(match event_type {
            t if t.starts_with("complaint.") => Kind::Complaint,
            SLA_AT_RISK => Kind::SlaAtRisk,
            SLA_BREACHED => Kind::SlaBreached,
            QUEUE_LEASED => Kind::QueueLeased,
            QUEUE_LEASE_EXPIRED => Kind::QueueLeaseExpired,
            QUEUE_ACKNOWLEDGED => Kind::QueueAcknowledged,
            RULES_LOADED => Kind::RulesLoaded,
            PERSONAL_DATA_ERASED => Kind::PersonalDataErased,
            DIGEST_SIGNED => Kind::DigestSigned,
            REPEATED_CAUSE => Kind::RepeatedCause,
            _ => return None,
        })
    }

    /// The protobuf message of its payload (full name, as in the descriptor set).
    pub fn payload_message(self) -> &'static str {
        match self {
            Kind::Complaint => "complaints.events.v1.ComplaintEvent",
            Kind::SlaAtRisk | Kind::SlaBreached => "complaints.events.v1.SlaTransition",
            Kind::QueueLeased => "complaints.events.v1.QueueLeased",
            Kind::QueueLeaseExpired => "complaints.events.v1.QueueLeaseExpired",
            Kind::QueueAcknowledged => "complaints.events.v1.QueueAcknowledged",
            Kind::RulesLoaded => "complaints.events.v1.RulesLoaded",
            Kind::PersonalDataErased => "complaints.events.v1.PersonalDataErased",
            Kind::DigestSigned => "eventlog.v1.SignedDigest",
            Kind::RepeatedCause => "complaints.events.v1.RepeatedCause",
        }
    }
}

/// A clock reaching one of its thresholds: an at-risk percentage, or 100 for the breach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    pub id: ComplaintId,
    pub policy: String,
    pub policy_version: u32,
    pub clock: String,
    pub threshold: u8,
    pub at: Timestamp,
    pub due_at: Timestamp,
    /// For a breach: where the policy says the complaint must go now, if anywhere.
    pub refer_to: Option<String>,
}

impl Crossing {
    /// Its event type: a breach at 100 %, an at-risk crossing below.
    pub fn event_type(&self) -> &'static str {
        if self.threshold >= 100 {
            SLA_BREACHED
        } else {
            SLA_AT_RISK
        }
    }

    /// Its payload (`complaints.events.v1.SlaTransition`).
    pub fn encode(&self) -> Bytes {
        let payload = pb::SlaTransition {
            complaint_id: self.id.uuid().to_string(),
            policy: self.policy.clone(),
            policy_version: self.policy_version,
            clock: self.clock.clone(),
            threshold: u32::from(self.threshold),
            crossed_at_micros: self.at.as_microsecond(),
            due_at_micros: self.due_at.as_microsecond(),
            refer_to: self.refer_to.clone().unwrap_or_default(),
        };
        Bytes::from(payload.encode_to_vec())
    }

    fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let t = pb::SlaTransition::decode(payload).map_err(undecodable)?;
        Ok(Crossing {
            id: complaint_id(&t.complaint_id)?,
            policy: t.policy,
            policy_version: t.policy_version,
            clock: t.clock,
            threshold: u8::try_from(t.threshold)
                .map_err(|_| DecodeError("threshold over 255".into()))?,
            at: time(t.crossed_at_micros)?,
            due_at: time(t.due_at_micros)?,
            refer_to: Some(t.refer_to).filter(|r| !r.is_empty()),
        })
    }
}

/// The same root cause on the same product and unit, `count` times within `window_days`:
/// the complaints that made the repeated-cause rule fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatedCause {
    pub product: String,
    pub unit: String,
    pub cause: complaints_domain::model::RootCause,
    pub count: u32,
    pub window_days: u32,
    pub first: Timestamp,
    pub last: Timestamp,
    pub complaints: Vec<ComplaintId>,
}

impl RepeatedCause {
    /// Its payload (`complaints.events.v1.RepeatedCause`).
    pub fn encode(&self) -> Bytes {
        let payload = pb::RepeatedCause {
            product: self.product.clone(),
            unit: self.unit.clone(),
            root_cause: self.cause.as_str().to_owned(),
            count: self.count,
            window_days: self.window_days,
            first_found_micros: self.first.as_microsecond(),
            last_found_micros: self.last.as_microsecond(),
            complaint_ids: self
                .complaints
                .iter()
                .map(|c| c.uuid().to_string())
                .collect(),
        };
        Bytes::from(payload.encode_to_vec())
    }

    fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let e = pb::RepeatedCause::decode(payload).map_err(undecodable)?;
        Ok(Self {
            product: e.product,
            unit: e.unit,
            cause: e
                .root_cause
                .parse()
                .map_err(|()| DecodeError(format!("unknown root cause {:?}", e.root_cause)))?,
            count: e.count,
            window_days: e.window_days,
            first: time(e.first_found_micros)?,
            last: time(e.last_found_micros)?,
            complaints: e
                .complaint_ids
                .iter()
                .map(|c| complaint_id(c))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// What a queue event does to its item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueChange {
    Leased {
        consumer: String,
        until: Timestamp,
    },
    /// The last lease (of `consumer`, until `until`) ran out; recorded with the next one.
    LeaseExpired {
        consumer: String,
        until: Timestamp,
    },
    Acknowledged {
        consumer: String,
        reference: String,
    },
}

/// An event of a regulator-queue item's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEvent {
    pub item: Uuid,
    pub complaint: ComplaintId,
    pub change: QueueChange,
}

impl QueueEvent {
    /// Its event type.
    pub fn event_type(&self) -> &'static str {
        match self.change {
            QueueChange::Leased { .. } => QUEUE_LEASED,
            QueueChange::LeaseExpired { .. } => QUEUE_LEASE_EXPIRED,
            QueueChange::Acknowledged { .. } => QUEUE_ACKNOWLEDGED,
        }
    }

    /// Its payload.
    pub fn encode(&self) -> Bytes {
        let (item_id, complaint_id) = (self.item.to_string(), self.complaint.uuid().to_string());
        let bytes = match &self.change {
            QueueChange::Leased { consumer, until } => pb::QueueLeased {
                item_id,
                complaint_id,
                consumer: consumer.clone(),
                lease_until_micros: until.as_microsecond(),
            }
            .encode_to_vec(),
            QueueChange::LeaseExpired { consumer, until } => pb::QueueLeaseExpired {
                item_id,
                complaint_id,
                consumer: consumer.clone(),
                lease_until_micros: until.as_microsecond(),
            }
            .encode_to_vec(),
            QueueChange::Acknowledged {
                consumer,
                reference,
            } => pb::QueueAcknowledged {
                item_id,
                complaint_id,
                consumer: consumer.clone(),
                reference: reference.clone(),
            }
            .encode_to_vec(),
        };
        Bytes::from(bytes)
    }

    fn decode(kind: Kind, payload: &[u8]) -> Result<Self, DecodeError> {
        let item =
            |s: &str| Uuid::parse_str(s).map_err(|_| DecodeError("item id is not a uuid".into()));
        let (item, complaint, change) = match kind {
            Kind::QueueLeased => {
                let e = pb::QueueLeased::decode(payload).map_err(undecodable)?;
                let change = QueueChange::Leased {
                    consumer: e.consumer,
                    until: time(e.lease_until_micros)?,
                };
                (item(&e.item_id)?, e.complaint_id, change)
            }
            Kind::QueueLeaseExpired => {
                let e = pb::QueueLeaseExpired::decode(payload).map_err(undecodable)?;
                let change = QueueChange::LeaseExpired {
                    consumer: e.consumer,
                    until: time(e.lease_until_micros)?,
                };
                (item(&e.item_id)?, e.complaint_id, change)
            }
            Kind::QueueAcknowledged => {
                let e = pb::QueueAcknowledged::decode(payload).map_err(undecodable)?;
                let change = QueueChange::Acknowledged {
                    consumer: e.consumer,
                    reference: e.reference,
                };
                (item(&e.item_id)?, e.complaint_id, change)
            }
            other => return Err(DecodeError(format!("{other:?} is not a queue event"))),
        };
        Ok(Self {
            item,
            complaint: complaint_id(&complaint)?,
            change,
        })
    }
}

/// An erasure of a person's personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    pub person_id: String,
    pub reason: String,
    /// Whether a key was destroyed (false: the person had none, or it was gone already).
    pub key_destroyed: bool,
}

impl Erasure {
    /// Its payload (`complaints.events.v1.PersonalDataErased`).
    pub fn encode(&self) -> Bytes {
        let payload = pb::PersonalDataErased {
            person_id: self.person_id.clone(),
            reason: self.reason.clone(),
            key_destroyed: self.key_destroyed,
        };
        Bytes::from(payload.encode_to_vec())
    }
}

/// The payload of a `rules.loaded` event.
pub fn encode_rules(sources: &RuleSources) -> Bytes {
    let files = |files: &[RuleFile]| {
        files
            .iter()
            .map(|f| pb::RuleFile {
                name: f.name.clone(),
                text: f.text.clone(),
            })
            .collect()
    };
    Bytes::from(
        pb::RulesLoaded {
            calendars: files(&sources.calendars),
            policies: files(&sources.policies),
        }
        .encode_to_vec(),
    )
}

/// Reads the payload of a `rules.loaded` event.
pub fn decode_rules(payload: &[u8]) -> Result<RuleSources, DecodeError> {
    let loaded = pb::RulesLoaded::decode(payload)
        .map_err(|e| DecodeError(format!("undecodable rules.loaded: {e}")))?;
    let files = |files: Vec<pb::RuleFile>| {
        files
            .into_iter()
            .map(|f| RuleFile {
                name: f.name,
                text: f.text,
            })
            .collect()
    };
    Ok(RuleSources {
        calendars: files(loaded.calendars),
        policies: files(loaded.policies),
    })
}

/// A stored event's payload, decoded by its kind.
#[derive(Debug, Clone)]
pub enum Stored {
    /// A complaint event, with the complaint it belongs to. Sealed personal fields come
    /// back empty: readers that may see them decode with keys ([`codec::decode_with`]).
    Complaint {
        complaint: ComplaintId,
        event: Event,
    },
    /// An SLA clock crossed a threshold (at risk, or breached at 100).
    Crossing(Crossing),
    Queue(QueueEvent),
    /// The SLA rules in force from here on (their payload is kept by whoever needs it).
    RulesLoaded(RuleSources),
    Erasure(Erasure),
    /// A signed digest of the log: checked by `eventlog::audit`, nothing to project.
    DigestSigned,
    /// A repeated root cause the rule raised (for managers and auditors).
    RepeatedCause(RepeatedCause),
    /// A type this build does not know (written by a newer one): nothing to project.
    Unknown,
}

impl Stored {
    /// Decodes `record`'s payload by its type.
    pub fn decode(record: &RecordedEvent) -> Result<Self, DecodeError> {
        let Some(kind) = Kind::of(&record.event_type) else {
            return Ok(Stored::Unknown);
        };
        let payload = record.payload.as_ref();
        Ok(match kind {
            Kind::Complaint => {
                let event = codec::decode(&record.event_type, payload)?;
                let complaint = match &event.change {
                    complaints_domain::Change::Registered(r) => r.id,
                    _ => record
                        .stream
                        .as_str()
                        .strip_prefix("complaint-")
                        .and_then(ComplaintId::parse_name)
                        .ok_or_else(|| {
                            DecodeError(format!(
                                "a complaint event in the stream {}",
                                record.stream.as_str()
                            ))
                        })?,
                };
                Stored::Complaint { complaint, event }
            }
            Kind::SlaAtRisk | Kind::SlaBreached => Stored::Crossing(Crossing::decode(payload)?),
            Kind::QueueLeased | Kind::QueueLeaseExpired | Kind::QueueAcknowledged => {
                Stored::Queue(QueueEvent::decode(kind, payload)?)
            }
            Kind::RulesLoaded => Stored::RulesLoaded(decode_rules(payload)?),
            Kind::PersonalDataErased => {
                let e = pb::PersonalDataErased::decode(payload).map_err(undecodable)?;
                Stored::Erasure(Erasure {
                    person_id: e.person_id,
                    reason: e.reason,
                    key_destroyed: e.key_destroyed,
                })
            }
            Kind::DigestSigned => Stored::DigestSigned,
            Kind::RepeatedCause => Stored::RepeatedCause(RepeatedCause::decode(payload)?),
        })
    }
}

fn undecodable(e: prost::DecodeError) -> DecodeError {
    DecodeError(e.to_string())
}

fn time(m: i64) -> Result<Timestamp, DecodeError> {
    Timestamp::from_microsecond(m).map_err(|_| DecodeError("time out of range".into()))
}

fn complaint_id(s: &str) -> Result<ComplaintId, DecodeError> {
    Uuid::parse_str(s)
        .map(ComplaintId::new)
        .map_err(|_| DecodeError("complaint id is not a uuid".into()))
}
