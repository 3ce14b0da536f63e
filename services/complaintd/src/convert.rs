//! API messages <-> domain values. Every problem with a field is collected as a violation
//! named by its API path, so one reply lists them all.

use complaints_domain::model::{self as m, ComplaintId};
use complaints_domain::{Command, Complaint, FieldViolation, Register};
use complaints_projections::list::Summary;
use complaints_proto::complaints::v1 as api;
use jiff::Timestamp;
use uuid::Uuid;

/// Collects field violations.
#[derive(Default)]
pub struct Violations(pub Vec<FieldViolation>);

impl Violations {
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The API path of a field the domain named (the domain's names follow its own types).
pub fn api_field(domain: &str) -> String {
    let renamed = domain
        .replace("received_at", "receive_time")
        .replace("complainant_notified_at", "complainant_notify_time");
    if renamed.ends_with(".amount") {
        format!("{renamed}.minor_units")
    } else {
        renamed
    }
}

/// The conversion's violations followed by the domain's (by API name), leaving out the
/// domain's on a field the conversion already reported, or inside one, or a time whose
/// `seconds` or `nanos` it reported: there the domain saw a stand-in (and see
/// [`DEPENDENT_FIELDS`]). A domain violation of a list as a whole (`redress`: too many
/// items) stays beside the conversion's of its items.
pub fn merge_violations(
    conversion: Violations,
    domain: Vec<FieldViolation>,
) -> Vec<FieldViolation> {
    let mut all = conversion.0;
    let reported: Vec<String> = all.iter().map(|v| v.field.clone()).collect();
    let covered = |field: &str| {
        reported.iter().any(|r| {
            field == r
                || r.strip_prefix(field)
                    .is_some_and(|rest| rest == ".seconds" || rest == ".nanos")
                || field
                    .strip_prefix(r.as_str())
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
        }) || DEPENDENT_FIELDS.iter().any(|(dependent, on)| {
            field == *dependent && reported.iter().any(|r| r.starts_with(on))
        })
    };
    for v in domain {
        let field = api_field(&v.field);
        if !covered(&field) {
            all.push(FieldViolation {
                field,
                description: v.description,
            });
        }
    }
    all
}

pub fn complaint_name(v: &mut Violations, field: &str, name: &str) -> Option<ComplaintId> {
    match name
        .strip_prefix("complaints/")
        .and_then(ComplaintId::parse_name)
    {
        Some(id) => Some(id),
        None => {
            v.add(field, "must be a complaint name: complaints/{uuid}");
            None
        }
    }
}

/// A complaint id chosen by the caller: a UUID, bare or as the name `complaints/{uuid}`.
pub fn complaint_id(v: &mut Violations, field: &str, id: &str) -> Option<ComplaintId> {
    let parsed = ComplaintId::parse_name(id);
    if parsed.is_none() {
        v.add(
            field,
            "must be a UUID (not nil), bare or as the name complaints/{uuid}",
        );
    }
    parsed
}

pub fn request_id(v: &mut Violations, id: &str) -> Option<Uuid> {
    match Uuid::parse_str(id) {
        Ok(u) if !u.is_nil() => Some(u),
        _ => {
            v.add(
                "request_id",
                "must be a UUID, unique per request and reused on retries",
            );
            None
        }
    }
}

/// The earliest second a protobuf Timestamp may hold: 0001-01-01T00:00:00Z.
pub const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
/// The latest second a protobuf Timestamp may hold: 9999-12-31T23:59:59Z.
pub const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

/// A time the caller gave, checked: `nanos` from 0 to 999,999,999 and `seconds` in the
/// protobuf range (as google/protobuf/timestamp.proto requires; jiff would otherwise
/// quietly borrow a negative `nanos` from the second before), and no time before
/// 1970-01-01 (nothing a complaint records happened then). Later business bounds (not
/// in the future, not before 2000 for a receipt...) are the domain's.
pub fn timestamp(
    v: &mut Violations,
    field: &str,
    t: Option<prost_types::Timestamp>,
) -> Option<Timestamp> {
    let t = t?;
    let mut valid = true;
    if !(0..=999_999_999).contains(&t.nanos) {
        v.add(format!("{field}.nanos"), "must be from 0 to 999999999");
        valid = false;
    }
    if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&t.seconds) {
        v.add(
            format!("{field}.seconds"),
            "must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z",
        );
        valid = false;
    } else if t.seconds < 0 {
        v.add(field, "must not be before 1970-01-01T00:00:00Z");
        valid = false;
    }
    if !valid {
        return None;
    }
    // Stored times have microsecond precision: keep no more, so that a reply and a later
    // read (or a retry's replayed reply) agree to the digit.
    match Timestamp::new(t.seconds, t.nanos)
        .and_then(|t| Timestamp::from_microsecond(t.as_microsecond()))
    {
        Ok(t) => Some(t),
        Err(_) => {
            v.add(field, "is not a valid timestamp");
            None
        }
    }
}

fn required_time(
    v: &mut Violations,
    field: &str,
    t: Option<prost_types::Timestamp>,
) -> Option<Timestamp> {
    if t.is_none() {
        v.add(field, "is required");
    }
    timestamp(v, field, t)
}

pub fn to_timestamp(t: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

fn opt_time(t: Option<Timestamp>) -> Option<prost_types::Timestamp> {
    t.map(to_timestamp)
}

/// Maps an API enum to a domain one; UNSPECIFIED and unknown numbers are violations.
macro_rules! enum_map {
    ($fn_in:ident, $fn_out:ident, $api:ty, $dom:ty, { $($a:ident <=> $d:ident),* $(,)? }) => {
        pub fn $fn_in(v: &mut Violations, field: &str, value: i32) -> Option<$dom> {
            match <$api>::try_from(value) {
                $(Ok(<$api>::$a) => Some(<$dom>::$d),)*
                _ => {
                    v.add(field, "must be one of the listed values (not unspecified)");
                    None
                }
            }
        }

        pub fn $fn_out(value: $dom) -> $api {
            match value {
                $(<$dom>::$d => <$api>::$a,)*
            }
        }
    };
}

enum_map!(channel, channel_out, api::Channel, m::Channel, {
    Hotline <=> Hotline, Branch <=> Branch, Web <=> Web, Email <=> Email, Letter <=> Letter,
    App <=> App, RegulatorTransfer <=> RegulatorTransfer,
});
enum_map!(status, status_out, api::Status, m::Status, {
    Received <=> Received, Acknowledged <=> Acknowledged, InProgress <=> InProgress,
    Answered <=> Answered, UnderReview <=> UnderReview, Withdrawn <=> Withdrawn,
    Declined <=> Declined, Merged <=> Merged, Closed <=> Closed,
});
enum_map!(decision, decision_out, api::Decision, m::Decision, {
    Upheld <=> Upheld, PartlyUpheld <=> PartlyUpheld, Rejected <=> Rejected,
});
enum_map!(redress_kind, redress_kind_out, api::RedressKind, m::RedressKind, {
    Compensation <=> Compensation, Refund <=> Refund, Goodwill <=> Goodwill, Interest <=> Interest,
});
enum_map!(delivery, delivery_out, api::DeliveryMethod, m::DeliveryMethod, {
    DeliveryLetter <=> Letter, DeliveryEmail <=> Email, DeliveryPhone <=> Phone,
    DeliveryInPerson <=> InPerson, DeliveryApp <=> App,
});
enum_map!(root_cause, root_cause_out, api::RootCause, m::RootCause, {
    ProductDesign <=> ProductDesign, ProcessFailure <=> ProcessFailure, StaffConduct <=> StaffConduct,
    SystemError <=> SystemError, Communication <=> Communication, ThirdParty <=> ThirdParty,
    Pricing <=> Pricing, NoFault <=> NoFault, Other <=> Other,
});
enum_map!(pause_reason, pause_reason_out, api::PauseReason, m::PauseReason, {
    ExternalAppraisal <=> ExternalAppraisal, ExternalTesting <=> ExternalTesting,
    ExternalAssessment <=> ExternalAssessment, AwaitingCustomer <=> AwaitingCustomer,
});
enum_map!(referral_reason, referral_reason_out, api::ReferralReason, m::ReferralReason, {
    ComplainantReferred <=> ComplainantReferred, RuleRequired <=> RuleRequired,
});
enum_map!(review_outcome, review_outcome_out, api::ReviewOutcome, m::ReviewOutcome, {
    Confirmed <=> Confirmed, Changed <=> Changed,
});
enum_map!(regulator_outcome, regulator_outcome_out, api::RegulatorOutcome, m::RegulatorOutcome, {
    UpheldForComplainant <=> UpheldForComplainant, UpheldForFirm <=> UpheldForFirm,
    Settled <=> Settled, Dismissed <=> Dismissed,
});

/// Redress items; a bad kind, amount or currency is recorded and replaced by a stand-in
/// (so the list keeps its length and the domain checks the rest).
fn redress(v: &mut Violations, field: &str, items: Vec<api::Redress>) -> Vec<m::Redress> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("{field}[{i}]");
        let kind = redress_kind(v, &format!("{path}.kind"), item.kind);
        let Some(amount) = item.amount else {
            v.add(format!("{path}.amount"), "is required");
            out.push(m::Redress {
                kind: kind.unwrap_or(m::RedressKind::Refund),
                amount: m::Money {
                    minor_units: 1,
                    currency: iso_currency::Currency::XXX,
                },
            });
            continue;
        };
        let currency = iso_currency::Currency::from_code(&amount.currency_code);
        if currency.is_none() {
            v.add(
                format!("{path}.amount.currency_code"),
                "must be an ISO 4217 currency code",
            );
        }
        out.push(m::Redress {
            kind: kind.unwrap_or(m::RedressKind::Refund),
            amount: m::Money {
                minor_units: amount.minor_units,
                currency: currency.unwrap_or(iso_currency::Currency::XXX),
            },
        });
    }
    out
}

fn redress_out(items: &[m::Redress]) -> Vec<api::Redress> {
    items
        .iter()
        .map(|r| api::Redress {
            kind: redress_kind_out(r.kind) as i32,
            amount: Some(api::Money {
                minor_units: r.amount.minor_units,
                currency_code: r.amount.currency.code().to_owned(),
            }),
        })
        .collect()
}

/// A stand-in for a time that was missing or bad (its violation is recorded, so the
/// command it goes into is only checked, never run).
fn placeholder_time() -> Timestamp {
    Timestamp::UNIX_EPOCH
}

/// Domain violations that only follow from a stand-in: (field, the field whose stand-in
/// it is compared with). `regulator.deadline` is judged against `receive_time`.
pub const DEPENDENT_FIELDS: &[(&str, &str)] = &[("regulator.deadline", "receive_time")];

/// The registration in a request; `id` is the complaint to create. A bad field is
/// recorded in `v` and replaced by a stand-in, so that the domain can still check every
/// other field (one reply lists them all); with violations, the command is never run.
pub fn register(v: &mut Violations, id: ComplaintId, r: api::RegisterComplaintRequest) -> Command {
    let transfer = r.regulator.is_some();
    let channel = channel(v, "channel", r.channel).unwrap_or(if transfer {
        m::Channel::RegulatorTransfer
    } else {
        m::Channel::Web
    });
    let received_at =
        required_time(v, "receive_time", r.receive_time).unwrap_or_else(placeholder_time);
    let complainant = r.complainant.unwrap_or_default();
    let regulator = r.regulator.map(|t| {
        let deadline = required_time(v, "regulator.deadline", t.deadline);
        m::RegulatorTransfer {
            regulator: t.regulator,
            reference: t.reference,
            // After any receipt time, so the stand-in adds no violation of its own.
            deadline: deadline.unwrap_or_else(|| {
                received_at
                    .checked_add(jiff::SignedDuration::from_hours(24))
                    .unwrap_or(received_at)
            }),
        }
    });
    Command::Register(Box::new(Register {
        id,
        channel,
        complainant: m::Complainant {
            person_id: complainant.person_id,
            name: complainant.name,
            contact: complainant.contact,
            id_number: complainant.id_number,
        },
        unit: r.unit,
        employee: Some(r.employee).filter(|e| !e.is_empty()),
        product: r.product,
        category: r.category,
        claim: r.claim,
        facts: r.facts,
        received_at,
        regime: r.regime,
        region: r.region,
        regulator,
        variant: Some(r.variant).filter(|v| !v.is_empty()),
    }))
}

/// The common head of a step request: the complaint, request id and expected version.
pub trait StepRequest {
    fn name(&self) -> &str;
    fn request_id(&self) -> &str;
    fn expected_version(&self) -> Option<u64>;
    /// When the step happened, for a step outside the system (others have no such
    /// field): `effective_time` and `backdating_reason`.
    fn effective(&self, v: &mut Violations) -> Option<complaints_domain::Effective> {
        let _ = v;
        None
    }
    /// The domain command. A bad field is recorded in `v` and replaced by a stand-in, so
    /// that the domain can still check the others; with violations it is never run.
    fn command(self, v: &mut Violations) -> Command;
}

/// `effective_time` and `backdating_reason` of a step request.
pub fn effective(
    v: &mut Violations,
    time: Option<prost_types::Timestamp>,
    reason: &str,
) -> Option<complaints_domain::Effective> {
    let reason = Some(reason.to_owned()).filter(|r| !r.trim().is_empty());
    match timestamp(v, "effective_time", time) {
        Some(at) => Some(complaints_domain::Effective { at, reason }),
        None => {
            if reason.is_some() {
                v.add(
                    "backdating_reason",
                    "is only for a step with an effective_time in the past",
                );
            }
            None
        }
    }
}

macro_rules! step {
    ($request:ty, effective, |$r:ident, $v:ident| $body:expr) => {
        step!(@impl $request, |$r, $v| $body, fn effective(&self, v: &mut Violations) -> Option<complaints_domain::Effective> {
            effective(v, self.effective_time, &self.backdating_reason)
        });
    };
    ($request:ty, |$r:ident, $v:ident| $body:expr) => {
        step!(@impl $request, |$r, $v| $body,);
    };
    (@impl $request:ty, |$r:ident, $v:ident| $body:expr, $($effective:item)?) => {
        impl StepRequest for $request {
            $($effective)?
            fn name(&self) -> &str {
                &self.name
            }
            fn request_id(&self) -> &str {
                &self.request_id
            }
            fn expected_version(&self) -> Option<u64> {
                self.expected_version
            }
            #[allow(unused_variables)]
            fn command(self, $v: &mut Violations) -> Command {
                let $r = self;
                $body
            }
        }
    };
}

step!(api::AcknowledgeComplaintRequest, effective, |r, v| {
    Command::Acknowledge
});
step!(api::DeclineComplaintRequest, |r, v| Command::Decline {
    reason: r.reason
});
step!(api::MergeComplaintRequest, |r, v| Command::Merge {
    into: complaint_name(v, "into", &r.into).unwrap_or(ComplaintId::new(Uuid::nil())),
    reason: r.reason,
});
step!(api::AssignComplaintRequest, |r, v| Command::Assign {
    unit: r.unit,
    handler: r.handler
});
step!(api::ClassifyComplexRequest, |r, v| {
    Command::ClassifyComplex { reason: r.reason }
});
step!(api::RecordFindingsRequest, |r, v| Command::RecordFindings {
    findings: r.findings,
    root_cause: root_cause(v, "root_cause", r.root_cause).unwrap_or(m::RootCause::Other),
    evidence: r.evidence,
});
step!(api::ProposeRedressRequest, |r, v| Command::ProposeRedress {
    redress: redress(v, "redress", r.redress),
    rationale: r.rationale,
});
step!(api::AnswerComplaintRequest, effective, |r, v| {
    Command::Answer {
        decision: decision(v, "decision", r.decision).unwrap_or(m::Decision::Rejected),
        delivery: delivery(v, "delivery", r.delivery).unwrap_or(m::DeliveryMethod::Letter),
        redress: redress(v, "redress", r.redress),
        summary: r.summary,
    }
});
step!(api::SendHoldingResponseRequest, effective, |r, v| {
    Command::SendHoldingResponse {
        reason: r.reason,
        delivery: delivery(v, "delivery", r.delivery).unwrap_or(m::DeliveryMethod::Letter),
    }
});
step!(api::RequestExtensionRequest, |r, v| {
    Command::RequestExtension {
        days: r.days,
        reason: r.reason,
    }
});
step!(api::ApproveExtensionRequest, |r, v| {
    Command::ApproveExtension {
        complainant_notified_at: timestamp(v, "complainant_notify_time", r.complainant_notify_time),
    }
});
step!(api::PauseClockRequest, effective, |r, v| {
    Command::PauseClock {
        reason: pause_reason(v, "reason", r.reason).unwrap_or(m::PauseReason::AwaitingCustomer),
        complainant_notified_at: timestamp(v, "complainant_notify_time", r.complainant_notify_time),
    }
});
step!(api::ResumeClockRequest, effective, |r, v| {
    Command::ResumeClock
});
step!(api::AddNewFactsRequest, effective, |r, v| {
    Command::AddNewFacts { facts: r.facts }
});
step!(api::WithdrawComplaintRequest, effective, |r, v| {
    Command::Withdraw { reason: r.reason }
});
step!(api::RequestReviewRequest, effective, |r, v| {
    Command::RequestReview { reason: r.reason }
});
step!(api::AnswerReviewRequest, effective, |r, v| {
    Command::AnswerReview {
        outcome: review_outcome(v, "outcome", r.outcome).unwrap_or(m::ReviewOutcome::Confirmed),
        summary: r.summary,
    }
});
step!(api::ReferToRegulatorRequest, effective, |r, v| {
    Command::ReferToRegulator {
        body: r.body,
        reason: referral_reason(v, "reason", r.reason)
            .unwrap_or(m::ReferralReason::ComplainantReferred),
        reference: r.reference,
    }
});
step!(api::RecordRegulatorOutcomeRequest, effective, |r, v| {
    Command::RecordRegulatorOutcome {
        body: r.body,
        outcome: regulator_outcome(v, "outcome", r.outcome).unwrap_or(m::RegulatorOutcome::Settled),
        reference: r.reference,
    }
});
step!(api::RecordSatisfactionRequest, effective, |r, v| {
    Command::RecordSatisfaction {
        // Beyond a byte, a stand-in the domain reports as out of range.
        rating: u8::try_from(r.rating).unwrap_or(u8::MAX),
        comment: r.comment,
    }
});
step!(api::CloseComplaintRequest, |r, v| Command::Close);
step!(api::ReopenComplaintRequest, |r, v| Command::Reopen {
    reason: r.reason
});

/// The API view of a complaint whose personal fields `personal` says could be read, for a
/// caller who `sees_personal_data` or not: the personal fields are blanked and the state
/// says why when they are not shown.
pub fn complaint_for(
    c: &Complaint,
    version: u64,
    personal: complaints_events::personal::PersonalState,
    sees_personal_data: bool,
) -> api::Complaint {
    use complaints_events::personal::PersonalState;
    let mut out = complaint_out(c, version);
    let state = match (personal, sees_personal_data) {
        (PersonalState::Erased, _) => api::PersonalDataState::PersonalDataErased,
        (_, false) | (PersonalState::Withheld, _) => api::PersonalDataState::PersonalDataWithheld,
        (PersonalState::Present, true) => api::PersonalDataState::PersonalDataPresent,
    };
    if state != api::PersonalDataState::PersonalDataPresent {
        if let Some(complainant) = out.complainant.as_mut() {
            complainant.name.clear();
            complainant.contact.clear();
            complainant.id_number.clear();
        }
        out.claim.clear();
        out.facts.clear();
        if let Some(satisfaction) = out.satisfaction.as_mut() {
            satisfaction.comment.clear();
        }
    }
    out.personal_data = state as i32;
    out
}

/// The API view of a complaint, personal fields as they are.
pub fn complaint_out(c: &Complaint, version: u64) -> api::Complaint {
    let r = &c.registration;
    api::Complaint {
        name: c.id().name(),
        version,
        status: status_out(c.status) as i32,
        channel: channel_out(r.channel) as i32,
        complainant: Some(api::Complainant {
            person_id: r.complainant.person_id.clone(),
            name: r.complainant.name.clone(),
            contact: r.complainant.contact.clone(),
            id_number: r.complainant.id_number.clone(),
        }),
        unit: r.unit.clone(),
        employee: r.employee.clone().unwrap_or_default(),
        product: r.product.clone(),
        category: r.category.clone(),
        claim: r.claim.clone(),
        facts: r.facts.clone(),
        receive_time: Some(to_timestamp(r.received_at)),
        regime: r.regime.clone(),
        region: r.region.clone(),
        regulator: r.regulator.as_ref().map(|t| api::RegulatorTransfer {
            regulator: t.regulator.clone(),
            reference: t.reference.clone(),
            deadline: Some(to_timestamp(t.deadline)),
        }),
        acknowledge_time: opt_time(c.acknowledged_at),
        assignment: c
            .assignment
            .as_ref()
            .map(|(unit, handler)| api::Assignment {
                unit: unit.clone(),
                handler: handler.clone(),
            }),
        complex: c.complex,
        findings: c.findings.as_ref().map(|f| f.0.clone()).unwrap_or_default(),
        root_cause: c
            .findings
            .as_ref()
            .map_or(0, |f| root_cause_out(f.1) as i32),
        proposed_redress: redress_out(&c.proposed_redress),
        decision: c.decision.map_or(0, |d| decision_out(d) as i32),
        redress: redress_out(&c.redress),
        answer_time: opt_time(c.answered_at),
        holding_response_times: c
            .holding_responses
            .iter()
            .copied()
            .map(to_timestamp)
            .collect(),
        pending_extension: c.pending_extension.as_ref().map(|p| api::Extension {
            days: p.days,
            reason: p.reason.clone(),
            requested_time: Some(to_timestamp(p.requested_at)),
            approved_time: None,
        }),
        extensions: c
            .extensions
            .iter()
            .map(|(days, at)| api::Extension {
                days: *days,
                reason: String::new(),
                requested_time: None,
                approved_time: Some(to_timestamp(*at)),
            })
            .collect(),
        steps: c
            .steps
            .iter()
            .map(|s| api::RecordedStep {
                event_type: s.event_type.to_owned(),
                effective_time: Some(to_timestamp(s.effective)),
                record_time: Some(to_timestamp(s.recorded)),
                actor: s.actor.clone(),
                backdating_reason: s.backdating_reason.clone().unwrap_or_default(),
            })
            .collect(),
        pauses: c
            .pauses
            .iter()
            .map(|p| api::Pause {
                reason: pause_reason_out(p.reason) as i32,
                start_time: Some(to_timestamp(p.from)),
                end_time: opt_time(p.until),
            })
            .collect(),
        new_facts_times: c.new_facts_at.iter().copied().map(to_timestamp).collect(),
        reviews: c
            .reviews
            .iter()
            .map(|r| api::Review {
                reason: r.reason.clone(),
                request_time: Some(to_timestamp(r.requested_at)),
                outcome: r.answer.map_or(0, |(o, _)| review_outcome_out(o) as i32),
                answer_time: r.answer.map(|(_, at)| to_timestamp(at)),
            })
            .collect(),
        referrals: c
            .referrals
            .iter()
            .map(|r| api::Referral {
                body: r.body.clone(),
                reason: referral_reason_out(r.reason) as i32,
                reference: r.reference.clone(),
                referral_time: Some(to_timestamp(r.referred_at)),
                outcome: r
                    .outcome
                    .map_or(0, |(o, _)| regulator_outcome_out(o) as i32),
                outcome_time: r.outcome.map(|(_, at)| to_timestamp(at)),
            })
            .collect(),
        merged_into: c.merged_into.map(|id| id.name()).unwrap_or_default(),
        end_time: opt_time(c.ended_at),
        reopen_count: c.reopened,
        update_time: Some(to_timestamp(c.updated_at)),
        personal_data: api::PersonalDataState::PersonalDataPresent as i32,
        variant: r.variant.clone().unwrap_or_default(),
        satisfaction: c.satisfaction.as_ref().map(|s| api::Satisfaction {
            rating: u32::from(s.rating),
            comment: s.comment.clone(),
            at: Some(to_timestamp(s.at)),
        }),
    }
}

/// The API view of a list entry.
pub fn summary_out(s: &Summary) -> api::ComplaintSummary {
    api::ComplaintSummary {
        name: s.id.name(),
        version: s.version,
        status: status_out(s.status) as i32,
        unit: s.unit.clone(),
        handler: s.handler.clone().unwrap_or_default(),
        category: s.category.clone(),
        regime: s.regime.clone(),
        region: s.region.clone(),
        receive_time: Some(to_timestamp(s.received_at)),
        update_time: Some(to_timestamp(s.updated_at)),
    }
}

/// Page tokens: `v1.<receive time in microseconds>.<uuid>`, opaque to clients.
pub fn page_token_out(after: (Timestamp, ComplaintId)) -> String {
    format!("v1.{}.{}", after.0.as_microsecond(), after.1.uuid())
}

pub fn page_token(v: &mut Violations, token: &str) -> Option<(Timestamp, ComplaintId)> {
    if token.is_empty() {
        return None;
    }
    let parsed = token.strip_prefix("v1.").and_then(|rest| {
        let (micros, id) = rest.split_once('.')?;
        let at = Timestamp::from_microsecond(micros.parse().ok()?).ok()?;
        Some((at, ComplaintId::parse_name(id)?))
    });
    if parsed.is_none() {
        v.add("page_token", "is not a token this service returned");
    }
    parsed
}

/// The API view of one clock.
pub fn clock_out(due: &complaints_sla::Due, a: &complaints_sla::Assessment) -> api::Clock {
    use complaints_sla::ClockState as S;
    let (state, at_risk_percent, overdue_seconds, breach_tier) = match &a.state {
        S::Running => (api::ClockState::ClockRunning, 0, 0, String::new()),
        S::Paused => (api::ClockState::ClockPaused, 0, 0, String::new()),
        S::AtRisk(p) => (
            api::ClockState::ClockAtRisk,
            u32::from(*p),
            0,
            String::new(),
        ),
        S::Breached { over, tier } => (
            api::ClockState::ClockBreached,
            0,
            over.as_secs(),
            tier.clone().unwrap_or_default(),
        ),
        S::Met => (api::ClockState::ClockMet, 0, 0, String::new()),
        S::WindowOpen => (api::ClockState::ClockWindowOpen, 0, 0, String::new()),
        S::WindowClosed => (api::ClockState::ClockWindowClosed, 0, 0, String::new()),
    };
    api::Clock {
        clock: due.clock.clone(),
        title: due.title.clone(),
        state: state as i32,
        at_risk_percent,
        overdue_seconds,
        breach_tier,
        start_time: Some(to_timestamp(due.started_at)),
        due_time: Some(to_timestamp(due.due_at)),
        due_date: due.due_date.map(|d| d.to_string()).unwrap_or_default(),
        stop_time: opt_time(due.stopped_at),
        percent_used: a.percent_used,
        remaining_seconds: a.remaining.as_secs(),
        remaining_business_days: a.remaining_business_days,
        calendar: due.calendar.clone().unwrap_or_default(),
        explanation: due.explanation.clone(),
    }
}

/// Clock page tokens: `v1.<due time in microseconds>.<uuid>.<clock index>`.
pub fn clock_token_out(after: (Timestamp, ComplaintId, usize)) -> String {
    format!(
        "v1.{}.{}.{}",
        after.0.as_microsecond(),
        after.1.uuid(),
        after.2
    )
}

pub fn clock_token(v: &mut Violations, token: &str) -> Option<(Timestamp, ComplaintId, usize)> {
    if token.is_empty() {
        return None;
    }
    let parsed = token.strip_prefix("v1.").and_then(|rest| {
        let mut parts = rest.split('.');
        let at = Timestamp::from_microsecond(parts.next()?.parse().ok()?).ok()?;
        let id = ComplaintId::parse_name(parts.next()?)?;
        let index = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some((at, id, index))
    });
    if parsed.is_none() {
        v.add("page_token", "is not a token this service returned");
    }
    parsed
}

/// The API name of a queue item's state.
pub fn queue_state(state: &complaints_projections::queue::ItemState) -> api::QueueItemState {
    use complaints_projections::queue::ItemState;
    match state {
        ItemState::Waiting => api::QueueItemState::QueueWaiting,
        ItemState::Available => api::QueueItemState::QueueAvailable,
        ItemState::Leased { .. } => api::QueueItemState::QueueLeased,
        ItemState::Acknowledged { .. } => api::QueueItemState::QueueAcknowledged,
    }
}

/// Regulator-queue page tokens: `v1.<queue key time in microseconds>.<item uuid>`.
pub fn queue_token_out(after: (Timestamp, uuid::Uuid)) -> String {
    format!("v1.{}.{}", after.0.as_microsecond(), after.1)
}

pub fn queue_token(v: &mut Violations, token: &str) -> Option<(Timestamp, uuid::Uuid)> {
    // The same shape as the complaint list's tokens, with an item's uuid.
    page_token(v, token).map(|(at, id)| (at, id.uuid()))
}

/// The API view of a queue item as it stands at `now`.
pub fn queue_item_out(
    item: &complaints_projections::queue::Item,
    now: Timestamp,
) -> api::QueueItem {
    queue_item_in_state(item, item.state_at(now))
}

/// The API view of a queue item in `state` (its state at some moment).
pub fn queue_item_in_state(
    item: &complaints_projections::queue::Item,
    state: complaints_projections::queue::ItemState,
) -> api::QueueItem {
    use complaints_projections::queue::{Direction, ItemState};
    let (state, consumer, lease_expire_time, reference) = match state {
        ItemState::Waiting => (
            api::QueueItemState::QueueWaiting,
            String::new(),
            None,
            String::new(),
        ),
        ItemState::Available => (
            api::QueueItemState::QueueAvailable,
            String::new(),
            None,
            String::new(),
        ),
        ItemState::Leased { consumer, until } => (
            api::QueueItemState::QueueLeased,
            consumer,
            Some(to_timestamp(until)),
            String::new(),
        ),
        ItemState::Acknowledged {
            consumer,
            reference,
        } => (
            api::QueueItemState::QueueAcknowledged,
            consumer,
            None,
            reference,
        ),
    };
    api::QueueItem {
        name: format!("regulatorQueue/{}", item.id),
        complaint: item.complaint.name(),
        direction: match item.direction {
            Direction::Outbound => api::QueueDirection::Outbound,
            Direction::Inbound => api::QueueDirection::Inbound,
        } as i32,
        body: item.body.clone(),
        detail: item.detail.clone(),
        create_time: Some(to_timestamp(item.created_at)),
        deadline: opt_time(item.deadline),
        state: state as i32,
        consumer,
        lease_expire_time,
        reference,
    }
}

/// A queue direction filter; UNSPECIFIED means both.
pub fn queue_direction(
    v: &mut Violations,
    field: &str,
    value: i32,
) -> Option<complaints_projections::queue::Direction> {
    use complaints_projections::queue::Direction;
    match api::QueueDirection::try_from(value) {
        Ok(api::QueueDirection::Unspecified) => None,
        Ok(api::QueueDirection::Outbound) => Some(Direction::Outbound),
        Ok(api::QueueDirection::Inbound) => Some(Direction::Inbound),
        Err(_) => {
            v.add(field, "must be one of the listed values");
            None
        }
    }
}

/// A queue item name: regulatorQueue/{uuid}.
pub fn queue_item_name(v: &mut Violations, name: &str) -> Option<uuid::Uuid> {
    match name
        .strip_prefix("regulatorQueue/")
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
    {
        Some(id) => Some(id),
        None => {
            v.add("name", "must be a queue item name: regulatorQueue/{uuid}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violation(field: &str) -> FieldViolation {
        FieldViolation {
            field: field.into(),
            description: "bad".into(),
        }
    }

    fn merged(conversion: &[&str], domain: &[&str]) -> Vec<String> {
        let mut v = Violations::default();
        for f in conversion {
            v.add(*f, "bad");
        }
        merge_violations(v, domain.iter().map(|f| violation(f)).collect())
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn the_domain_adds_what_the_conversion_did_not_see() {
        // A stand-in time: the domain's word on it is dropped, and on what depends on it.
        assert_eq!(
            merged(
                &["receive_time.nanos"],
                &["received_at", "regulator.deadline", "unit"]
            ),
            ["receive_time.nanos", "unit"]
        );
        // A list as a whole stays beside its items; a stand-in item's own does not.
        assert_eq!(
            merged(
                &["redress[3].amount"],
                &["redress", "redress[3].amount", "regulator"]
            ),
            ["redress[3].amount", "redress", "regulator"]
        );
        assert_eq!(
            merged(&["regulator.deadline"], &["regulator"]),
            ["regulator.deadline", "regulator"]
        );
    }
}
