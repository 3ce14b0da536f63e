//! Domain events <-> the stored-event schema (`complaints.events.v1`), explicitly, at the
//! boundary. Encoding is total; decoding checks every name and number and reports what
//! does not fit as [`DecodeError`] (a stored event the code cannot read is never guessed).

use bytes::Bytes;
use complaints_domain::model::*;
use complaints_domain::{Change, Event, Register, MAX_RATING, MIN_RATING};
use complaints_proto::complaints::events::v1 as pb;

use jiff::Timestamp;
use prost::Message;
use uuid::Uuid;

pub use crate::error::DecodeError;
use crate::personal::{KeyStore, KeyStoreError, PersonalState};

/// Schema version of the payloads written now (the envelope's `schema_version`).
pub const SCHEMA_VERSION: u32 = 1;

type Decoded<T> = Result<T, DecodeError>;

fn bad(what: impl Into<String>) -> DecodeError {
    DecodeError(what.into())
}

fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

fn from_micros(field: &str, m: i64) -> Decoded<Timestamp> {
    Timestamp::from_microsecond(m).map_err(|_| bad(format!("{field} out of range")))
}

fn name<T: std::str::FromStr>(field: &str, s: &str) -> Decoded<T> {
    s.parse().map_err(|_| bad(format!("unknown {field} {s:?}")))
}

fn money_to(m: &Money) -> pb::Money {
    pb::Money {
        minor_units: m.minor_units,
        currency: m.currency.code().to_owned(),
    }
}

fn redress_to(items: &[Redress]) -> Vec<pb::Redress> {
    items
        .iter()
        .map(|r| pb::Redress {
            kind: r.kind.as_str().to_owned(),
            amount: Some(money_to(&r.amount)),
        })
        .collect()
}

fn redress_from(items: Vec<pb::Redress>) -> Decoded<Vec<Redress>> {
    items
        .into_iter()
        .map(|r| {
            let amount = r.amount.ok_or_else(|| bad("redress without an amount"))?;
            let currency = iso_currency::Currency::from_code(&amount.currency)
                .ok_or_else(|| bad(format!("unknown currency {:?}", amount.currency)))?;
            Ok(Redress {
                kind: name("redress kind", &r.kind)?,
                amount: Money {
                    minor_units: amount.minor_units,
                    currency,
                },
            })
        })
        .collect()
}

fn plain(person_id: &str, fields: pb::PersonalFields) -> pb::PersonalData {
    pb::PersonalData {
        person_id: person_id.to_owned(),
        form: Some(pb::personal_data::Form::Plain(fields)),
    }
}

/// How personal fields are written: in the clear, or sealed under the person's key.
#[derive(Clone, Copy)]
pub enum Sealing<'a> {
    Plain,
    /// Sealed with `keys`; `person_id` is the complainant of the stream (for events that
    /// carry personal fields but do not name the person, like new facts).
    Sealed {
        keys: &'a dyn KeyStore,
        person_id: &'a str,
    },
}

/// Reads personal data: opened with `keys` when given; sealed data without keys comes
/// back empty and `Withheld`, under an erased key empty and `Erased`.
struct Opener<'a> {
    keys: Option<&'a dyn KeyStore>,
    state: PersonalState,
}

impl Opener<'_> {
    fn personal(
        &mut self,
        data: Option<pb::PersonalData>,
    ) -> Decoded<(String, pb::PersonalFields)> {
        let data = data.ok_or_else(|| bad("missing personal data"))?;
        let (data, state) =
            crate::personal::open(self.keys, data).map_err(|e| bad(e.to_string()))?;
        self.state = self.state.worst(state);
        match data.form {
            Some(pb::personal_data::Form::Plain(fields)) => Ok((data.person_id, fields)),
            Some(pb::personal_data::Form::Sealed(_)) => Err(bad("personal data still sealed")),
            None => Err(bad("personal data without a form")),
        }
    }
}

fn reason(reason: &str) -> pb::Reason {
    pb::Reason {
        reason: reason.to_owned(),
    }
}

/// Encodes an event as the log's payload with its personal fields in the clear (tests
/// and tools); the service seals them ([`encode_with`]).
pub fn encode(event: &Event) -> (&'static str, Bytes) {
    let Ok(encoded) = encode_wrapping::<std::convert::Infallible>(event, |person_id, fields| {
        Ok(plain(person_id, fields))
    });
    encoded
}

/// Encodes an event as the log's payload; returns the event type and bytes.
pub fn encode_with(
    event: &Event,
    sealing: Sealing<'_>,
) -> Result<(&'static str, Bytes), KeyStoreError> {
    encode_wrapping(event, |person_id, fields| match sealing {
        Sealing::Plain => Ok(plain(person_id, fields)),
        Sealing::Sealed {
            keys,
            person_id: complainant,
        } => {
            let person = if person_id.is_empty() {
                complainant
            } else {
                person_id
            };
            crate::personal::seal(keys, person, &fields)
        }
    })
}

/// Encodes an event, turning its personal fields into stored personal data with `wrap`.
fn encode_wrapping<E>(
    event: &Event,
    wrap: impl Fn(&str, pb::PersonalFields) -> Result<pb::PersonalData, E>,
) -> Result<(&'static str, Bytes), E> {
    use pb::complaint_event::Change as C;
    let change = match &event.change {
        Change::Registered(r) => C::Registered(Box::new(pb::Registered {
            complaint_id: r.id.uuid().to_string(),
            channel: r.channel.as_str().to_owned(),
            personal: Some(wrap(
                &r.complainant.person_id,
                pb::PersonalFields {
                    name: r.complainant.name.clone(),
                    contact: r.complainant.contact.clone(),
                    id_number: r.complainant.id_number.clone(),
                    facts: r.facts.clone(),
                    claim: r.claim.clone(),
                    comment: String::new(),
                },
            )?),
            unit: r.unit.clone(),
            employee: r.employee.clone(),
            product: r.product.clone(),
            category: r.category.clone(),
            received_at_micros: micros(r.received_at),
            regime: r.regime.clone(),
            region: r.region.clone(),
            variant: r.variant.clone(),
            regulator: r.regulator.as_ref().map(|t| pb::RegulatorTransfer {
                regulator: t.regulator.clone(),
                reference: t.reference.clone(),
                deadline_micros: micros(t.deadline),
            }),
        })),
        Change::Acknowledged => C::Acknowledged(pb::Empty {}),
        Change::Declined { reason: r } => C::Declined(reason(r)),
        Change::Merged { into, reason } => C::Merged(pb::Merged {
            into_complaint_id: into.uuid().to_string(),
            reason: reason.clone(),
        }),
        Change::Assigned { unit, handler } => C::Assigned(pb::Assigned {
            unit: unit.clone(),
            handler: handler.clone(),
        }),
        Change::ClassifiedComplex { reason: r } => C::ClassifiedComplex(reason(r)),
        Change::FindingsRecorded {
            findings,
            root_cause,
            evidence,
        } => C::FindingsRecorded(pb::FindingsRecorded {
            findings: findings.clone(),
            root_cause: root_cause.as_str().to_owned(),
            evidence: evidence.clone(),
        }),
        Change::RedressProposed { redress, rationale } => C::RedressProposed(pb::RedressProposed {
            redress: redress_to(redress),
            rationale: rationale.clone(),
        }),
        Change::Answered {
            decision,
            redress,
            delivery,
            summary,
        } => C::Answered(pb::Answered {
            decision: decision.as_str().to_owned(),
            redress: redress_to(redress),
            delivery: delivery.as_str().to_owned(),
            summary: summary.clone(),
        }),
        Change::HoldingResponseSent { reason, delivery } => {
            C::HoldingResponseSent(pb::HoldingResponseSent {
                reason: reason.clone(),
                delivery: delivery.as_str().to_owned(),
            })
        }
        Change::ExtensionRequested { days, reason } => {
            C::ExtensionRequested(pb::ExtensionRequested {
                days: *days,
                reason: reason.clone(),
            })
        }
        Change::ExtensionApproved {
            days,
            complainant_notified_at,
        } => C::ExtensionApproved(pb::ExtensionApproved {
            days: *days,
            complainant_notified_at_micros: micros(*complainant_notified_at),
        }),
        Change::ClockPaused {
            reason,
            complainant_notified_at,
        } => C::ClockPaused(pb::ClockPaused {
            reason: reason.as_str().to_owned(),
            complainant_notified_at_micros: complainant_notified_at.map(micros),
        }),
        Change::ClockResumed { reason } => C::ClockResumed(pb::ClockResumed {
            reason: reason.as_str().to_owned(),
        }),
        Change::NewFactsAdded { facts } => C::NewFactsAdded(pb::NewFactsAdded {
            // The person is the stream's complainant; the key owner is resolved with it.
            personal: Some(wrap(
                "",
                pb::PersonalFields {
                    facts: facts.clone(),
                    ..Default::default()
                },
            )?),
        }),
        Change::Withdrawn { reason: r } => C::Withdrawn(reason(r)),
        Change::ReviewRequested { reason: r } => C::ReviewRequested(reason(r)),
        Change::ReviewAnswered { outcome, summary } => C::ReviewAnswered(pb::ReviewAnswered {
            outcome: outcome.as_str().to_owned(),
            summary: summary.clone(),
        }),
        Change::ReferredToRegulator {
            body,
            reason,
            reference,
        } => C::ReferredToRegulator(pb::ReferredToRegulator {
            body: body.clone(),
            reason: reason.as_str().to_owned(),
            reference: reference.clone(),
        }),
        Change::RegulatorOutcomeRecorded {
            body,
            outcome,
            reference,
        } => C::RegulatorOutcomeRecorded(pb::RegulatorOutcomeRecorded {
            body: body.clone(),
            outcome: outcome.as_str().to_owned(),
            reference: reference.clone(),
        }),
        Change::SatisfactionRecorded { rating, comment } => {
            C::SatisfactionRecorded(pb::SatisfactionRecorded {
                rating: u32::from(*rating),
                // The person is the stream's complainant, as for new facts.
                personal: Some(wrap(
                    "",
                    pb::PersonalFields {
                        comment: comment.clone(),
                        ..Default::default()
                    },
                )?),
            })
        }
        Change::Closed => C::Closed(pb::Empty {}),
        Change::Reopened { reason: r } => C::Reopened(reason(r)),
    };
    let stored = pb::ComplaintEvent {
        at_micros: micros(event.at),
        actor: event.actor.clone(),
        effective_at_micros: event.effective.as_ref().map_or(0, |e| micros(e.at)),
        backdating_reason: event
            .effective
            .as_ref()
            .and_then(|e| e.reason.clone())
            .unwrap_or_default(),
        change: Some(change),
    };
    Ok((
        event.change.event_type(),
        Bytes::from(stored.encode_to_vec()),
    ))
}

fn complaint_id(field: &str, s: &str) -> Decoded<ComplaintId> {
    Uuid::parse_str(s)
        .map(ComplaintId::new)
        .map_err(|_| bad(format!("{field} is not a uuid")))
}

/// Decodes a stored payload of type `event_type`; sealed personal fields come back empty
/// (projections never need them).
pub fn decode(event_type: &str, payload: &[u8]) -> Decoded<Event> {
    decode_with(event_type, payload, None).map(|(event, _)| event)
}

/// Decodes a stored payload, opening sealed personal fields with `keys`; says whether
/// they could be read.
pub fn decode_with(
    event_type: &str,
    payload: &[u8],
    keys: Option<&dyn KeyStore>,
) -> Decoded<(Event, PersonalState)> {
    let mut opener = Opener {
        keys,
        state: PersonalState::Present,
    };
    let event = decode_opening(event_type, payload, &mut opener)?;
    Ok((event, opener.state))
}

fn decode_opening(event_type: &str, payload: &[u8], opener: &mut Opener<'_>) -> Decoded<Event> {
    use pb::complaint_event::Change as C;
    let stored = pb::ComplaintEvent::decode(payload).map_err(|e| bad(e.to_string()))?;
    let change = stored.change.ok_or_else(|| bad("no change"))?;
    let change = match change {
        C::Registered(r) => {
            let r = *r;
            let (person_id, fields) = opener.personal(r.personal)?;
            Change::Registered(Box::new(Register {
                id: complaint_id("complaint_id", &r.complaint_id)?,
                channel: name("channel", &r.channel)?,
                complainant: Complainant {
                    person_id,
                    name: fields.name,
                    contact: fields.contact,
                    id_number: fields.id_number,
                },
                unit: r.unit,
                employee: r.employee,
                product: r.product,
                category: r.category,
                claim: fields.claim,
                facts: fields.facts,
                received_at: from_micros("received_at", r.received_at_micros)?,
                regime: r.regime,
                region: r.region,
                variant: r.variant.filter(|v| !v.is_empty()),
                regulator: r
                    .regulator
                    .map(|t| {
                        Ok::<_, DecodeError>(RegulatorTransfer {
                            regulator: t.regulator,
                            reference: t.reference,
                            deadline: from_micros("regulator.deadline", t.deadline_micros)?,
                        })
                    })
                    .transpose()?,
            }))
        }
        C::Acknowledged(_) => Change::Acknowledged,
        C::Declined(r) => Change::Declined { reason: r.reason },
        C::Merged(m) => Change::Merged {
            into: complaint_id("into_complaint_id", &m.into_complaint_id)?,
            reason: m.reason,
        },
        C::Assigned(a) => Change::Assigned {
            unit: a.unit,
            handler: a.handler,
        },
        C::ClassifiedComplex(r) => Change::ClassifiedComplex { reason: r.reason },
        C::FindingsRecorded(f) => Change::FindingsRecorded {
            findings: f.findings,
            root_cause: name("root cause", &f.root_cause)?,
            evidence: f.evidence,
        },
        C::RedressProposed(r) => Change::RedressProposed {
            redress: redress_from(r.redress)?,
            rationale: r.rationale,
        },
        C::Answered(a) => Change::Answered {
            decision: name("decision", &a.decision)?,
            redress: redress_from(a.redress)?,
            delivery: name("delivery", &a.delivery)?,
            summary: a.summary,
        },
        C::HoldingResponseSent(h) => Change::HoldingResponseSent {
            reason: h.reason,
            delivery: name("delivery", &h.delivery)?,
        },
        C::ExtensionRequested(e) => Change::ExtensionRequested {
            days: e.days,
            reason: e.reason,
        },
        C::ExtensionApproved(e) => Change::ExtensionApproved {
            days: e.days,
            complainant_notified_at: from_micros(
                "complainant_notified_at",
                e.complainant_notified_at_micros,
            )?,
        },
        C::ClockPaused(p) => Change::ClockPaused {
            reason: name("pause reason", &p.reason)?,
            complainant_notified_at: p
                .complainant_notified_at_micros
                .map(|m| from_micros("complainant_notified_at", m))
                .transpose()?,
        },
        C::ClockResumed(r) => Change::ClockResumed {
            reason: name("pause reason", &r.reason)?,
        },
        C::NewFactsAdded(n) => Change::NewFactsAdded {
            facts: opener.personal(n.personal)?.1.facts,
        },
        C::Withdrawn(r) => Change::Withdrawn { reason: r.reason },
        C::ReviewRequested(r) => Change::ReviewRequested { reason: r.reason },
        C::ReviewAnswered(r) => Change::ReviewAnswered {
            outcome: name("review outcome", &r.outcome)?,
            summary: r.summary,
        },
        C::ReferredToRegulator(r) => Change::ReferredToRegulator {
            body: r.body,
            reason: name("referral reason", &r.reason)?,
            reference: r.reference,
        },
        C::RegulatorOutcomeRecorded(r) => Change::RegulatorOutcomeRecorded {
            body: r.body,
            outcome: name("regulator outcome", &r.outcome)?,
            reference: r.reference,
        },
        C::SatisfactionRecorded(s) => Change::SatisfactionRecorded {
            rating: u8::try_from(s.rating)
                .ok()
                .filter(|r| (MIN_RATING..=MAX_RATING).contains(r))
                .ok_or_else(|| {
                    bad(format!(
                        "satisfaction rating {} is not from {MIN_RATING} to {MAX_RATING}",
                        s.rating
                    ))
                })?,
            comment: opener.personal(s.personal)?.1.comment,
        },
        C::Closed(_) => Change::Closed,
        C::Reopened(r) => Change::Reopened { reason: r.reason },
    };
    if change.event_type() != event_type {
        return Err(bad(format!(
            "envelope says {event_type}, payload is {}",
            change.event_type()
        )));
    }
    let effective = match stored.effective_at_micros {
        0 => None,
        m => Some(complaints_domain::Effective {
            at: from_micros("effective_at", m)?,
            reason: Some(stored.backdating_reason).filter(|r| !r.is_empty()),
        }),
    };
    Ok(Event {
        at: from_micros("at", stored.at_micros)?,
        actor: stored.actor,
        change,
        effective,
    })
}

/// The personal data a stored complaint change carries, if it carries any: the one place
/// that knows which changes hold personal fields (sealing and export both go by it).
fn personal_of(change: &mut pb::complaint_event::Change) -> Option<&mut Option<pb::PersonalData>> {
    use pb::complaint_event::Change as C;
    match change {
        C::Registered(r) => Some(&mut r.personal),
        C::NewFactsAdded(n) => Some(&mut n.personal),
        C::SatisfactionRecorded(s) => Some(&mut s.personal),
        C::Acknowledged(_)
        | C::Declined(_)
        | C::Merged(_)
        | C::Assigned(_)
        | C::ClassifiedComplex(_)
        | C::FindingsRecorded(_)
        | C::RedressProposed(_)
        | C::Answered(_)
        | C::HoldingResponseSent(_)
        | C::ExtensionRequested(_)
        | C::ExtensionApproved(_)
        | C::ClockPaused(_)
        | C::ClockResumed(_)
        | C::Withdrawn(_)
        | C::ReviewRequested(_)
        | C::ReviewAnswered(_)
        | C::ReferredToRegulator(_)
        | C::RegulatorOutcomeRecorded(_)
        | C::Closed(_)
        | C::Reopened(_) => None,
    }
}

/// A stored complaint payload with its sealed personal fields opened with `keys` (an
/// erased person's come back empty), re-encoded; `None` when it holds none or does not
/// decode.
pub fn opened_payload(payload: &[u8], keys: &dyn KeyStore) -> Option<Vec<u8>> {
    let mut event = pb::ComplaintEvent::decode(payload).ok()?;
    let personal = personal_of(event.change.as_mut()?)?;
    let sealed = personal.take()?;
    *personal = Some(crate::personal::open(Some(keys), sealed).ok()?.0);
    Some(event.encode_to_vec())
}
