//! What callers ask for, and the context a decision is made in.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use crate::event::{Change, Effective};
use crate::model::*;

/// Everything a decision needs besides the state and the command: time, the acting
/// principal and its roles, and the rules in force. Never read from the environment.
#[derive(Debug, Clone)]
pub struct Context {
    pub now: Timestamp,
    /// The authenticated principal.
    pub actor: String,
    pub roles: BTreeSet<Role>,
    pub rules: Rules,
    /// The regimes a complaint may be registered under, their regions and variants.
    pub regimes: Arc<Regimes>,
    /// When the step happened, if the caller says it happened before now (only for a
    /// step that happens outside the system: [`Command::happens_outside`]).
    pub effective: Option<Effective>,
    /// How far back an effective time may go without a reason and the supervisor role;
    /// `None`: no limit.
    pub backdating: Option<Backdating>,
}

/// The back-dating window of a complaint: an effective time before `limit` needs a
/// reason and the supervisor role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backdating {
    pub limit: Timestamp,
    /// The window as people say it, for messages, e.g. `5 business days`.
    pub window: String,
}

/// The regimes the SLA engine knows: regime id -> the regions it has calendars for
/// (`None`: any region), and the variants each defines. Empty: any regime is accepted
/// (no engine configured).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Regimes(pub BTreeMap<String, Option<BTreeSet<String>>>, pub Variants);

/// The variants each regime defines (deadlines that differ by kind of complaint, e.g.
/// AU-ASIC-RG271's `superannuation`): what a registration's `variant` may name. A
/// regime missing here defines none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variants(pub BTreeMap<String, BTreeSet<String>>);

/// Tunable business rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// How long after the answer a complainant may ask for a review (CN-CBIRC: 30 days).
    pub review_window: SignedDuration,
    /// How far in the future a caller-supplied time may be, for clock differences.
    pub clock_skew: SignedDuration,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            review_window: SignedDuration::from_hours(30 * 24),
            clock_skew: SignedDuration::from_mins(5),
        }
    }
}

/// Registering a new complaint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    pub id: ComplaintId,
    pub channel: Channel,
    pub complainant: Complainant,
    /// The firm's unit complained about.
    pub unit: String,
    /// The employee complained about, if any (may then not handle it).
    pub employee: Option<String>,
    pub product: String,
    pub category: String,
    /// What the complainant asks for.
    pub claim: String,
    pub facts: String,
    pub received_at: Timestamp,
    /// The deadline regime, e.g. `UK-FCA-DISP`, `CN-CBIRC`.
    pub regime: String,
    /// The region whose calendar applies, e.g. `GB-ENG`, `GB-NIR`, `CN`.
    pub region: String,
    /// Set exactly when the channel is `RegulatorTransfer`.
    pub regulator: Option<RegulatorTransfer>,
    /// The regime's variant whose deadlines apply, named explicitly; `None`: the category
    /// selects a variant of that name, if the regime has one.
    pub variant: Option<String>,
}

/// A step in a complaint's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Register(Box<Register>),
    Acknowledge,
    /// Not a complaint: declined with a reason.
    Decline {
        reason: String,
    },
    /// A duplicate of another complaint, which the caller reads and checks with
    /// [`check_merge_target`](crate::check_merge_target).
    Merge {
        into: ComplaintId,
        reason: String,
    },
    /// Assign (or reassign) to a unit and handler.
    Assign {
        unit: String,
        handler: String,
    },
    /// The firm classifies the complaint as complex (a longer deadline under some regimes).
    ClassifyComplex {
        reason: String,
    },
    RecordFindings {
        findings: String,
        root_cause: RootCause,
        evidence: Vec<String>,
    },
    ProposeRedress {
        redress: Vec<Redress>,
        rationale: String,
    },
    Answer {
        decision: Decision,
        redress: Vec<Redress>,
        delivery: DeliveryMethod,
        summary: String,
    },
    SendHoldingResponse {
        reason: String,
        delivery: DeliveryMethod,
    },
    RequestExtension {
        days: u32,
        reason: String,
    },
    /// Only a supervisor, and only once the complainant was told (when, is given).
    ApproveExtension {
        complainant_notified_at: Option<Timestamp>,
    },
    /// Statutory pauses need the complainant told; `AwaitingCustomer` does not.
    PauseClock {
        reason: PauseReason,
        complainant_notified_at: Option<Timestamp>,
    },
    ResumeClock,
    /// New facts: restarts the handling clock under some regimes.
    AddNewFacts {
        facts: String,
    },
    Withdraw {
        reason: String,
    },
    RequestReview {
        reason: String,
    },
    AnswerReview {
        outcome: ReviewOutcome,
        summary: String,
    },
    ReferToRegulator {
        body: String,
        reason: ReferralReason,
        reference: String,
    },
    RecordRegulatorOutcome {
        body: String,
        outcome: RegulatorOutcome,
        reference: String,
    },
    /// The complainant's satisfaction with the answer: a rating from 1 to 5 and an
    /// optional comment (personal data). Once per answer.
    RecordSatisfaction {
        rating: u8,
        comment: String,
    },
    Close,
    Reopen {
        reason: String,
    },
}

impl Command {
    /// Whether the step happens outside the system, so that it may carry an effective
    /// time (see [`Change::happens_outside`]: the same steps).
    pub fn happens_outside(&self) -> bool {
        match self {
            Command::Acknowledge
            | Command::Answer { .. }
            | Command::SendHoldingResponse { .. }
            | Command::PauseClock { .. }
            | Command::ResumeClock
            | Command::AddNewFacts { .. }
            | Command::Withdraw { .. }
            | Command::RequestReview { .. }
            | Command::AnswerReview { .. }
            | Command::ReferToRegulator { .. }
            | Command::RecordRegulatorOutcome { .. }
            | Command::RecordSatisfaction { .. } => true,
            Command::Register(_)
            | Command::Decline { .. }
            | Command::Merge { .. }
            | Command::Assign { .. }
            | Command::ClassifyComplex { .. }
            | Command::RecordFindings { .. }
            | Command::ProposeRedress { .. }
            | Command::RequestExtension { .. }
            | Command::ApproveExtension { .. }
            | Command::Close
            | Command::Reopen { .. } => false,
        }
    }

    /// Whether `change` is what this command records: a retry of the request that
    /// recorded it, rather than another request sent under the same request id. Compares
    /// what the caller sent; what the decision added (its time, the days of the approved
    /// extension, the reason of the pause a resume ends) is not the caller's.
    pub fn is_recorded_as(&self, change: &Change) -> bool {
        match self {
            Command::Register(a) => matches!(change, Change::Registered(b) if a == b),
            Command::Acknowledge => matches!(change, Change::Acknowledged),
            Command::Decline { reason } => {
                matches!(change, Change::Declined { reason: b } if reason == b)
            }
            Command::Merge { into, reason } => matches!(
                change,
                Change::Merged { into: i, reason: r } if into == i && reason == r
            ),
            Command::Assign { unit, handler } => matches!(
                change,
                Change::Assigned { unit: u, handler: h } if unit == u && handler == h
            ),
            Command::ClassifyComplex { reason } => {
                matches!(change, Change::ClassifiedComplex { reason: b } if reason == b)
            }
            Command::RecordFindings {
                findings,
                root_cause,
                evidence,
            } => matches!(
                change,
                Change::FindingsRecorded { findings: f, root_cause: c, evidence: e }
                    if findings == f && root_cause == c && evidence == e
            ),
            Command::ProposeRedress { redress, rationale } => matches!(
                change,
                Change::RedressProposed { redress: d, rationale: r } if redress == d && rationale == r
            ),
            Command::Answer {
                decision,
                redress,
                delivery,
                summary,
            } => matches!(
                change,
                Change::Answered { decision: d, redress: r, delivery: m, summary: s }
                    if decision == d && redress == r && delivery == m && summary == s
            ),
            Command::SendHoldingResponse { reason, delivery } => matches!(
                change,
                Change::HoldingResponseSent { reason: r, delivery: d } if reason == r && delivery == d
            ),
            Command::RequestExtension { days, reason } => matches!(
                change,
                Change::ExtensionRequested { days: d, reason: r } if days == d && reason == r
            ),
            Command::ApproveExtension {
                complainant_notified_at,
            } => matches!(
                change,
                Change::ExtensionApproved { complainant_notified_at: at, .. }
                    if *complainant_notified_at == Some(*at)
            ),
            Command::PauseClock {
                reason,
                complainant_notified_at,
            } => matches!(
                change,
                Change::ClockPaused { reason: r, complainant_notified_at: at }
                    if reason == r && complainant_notified_at == at
            ),
            Command::ResumeClock => matches!(change, Change::ClockResumed { .. }),
            Command::AddNewFacts { facts } => {
                matches!(change, Change::NewFactsAdded { facts: f } if facts == f)
            }
            Command::Withdraw { reason } => {
                matches!(change, Change::Withdrawn { reason: r } if reason == r)
            }
            Command::RequestReview { reason } => {
                matches!(change, Change::ReviewRequested { reason: r } if reason == r)
            }
            Command::AnswerReview { outcome, summary } => matches!(
                change,
                Change::ReviewAnswered { outcome: o, summary: s } if outcome == o && summary == s
            ),
            Command::ReferToRegulator {
                body,
                reason,
                reference,
            } => matches!(
                change,
                Change::ReferredToRegulator { body: b, reason: r, reference: f }
                    if body == b && reason == r && reference == f
            ),
            Command::RecordRegulatorOutcome {
                body,
                outcome,
                reference,
            } => matches!(
                change,
                Change::RegulatorOutcomeRecorded { body: b, outcome: o, reference: f }
                    if body == b && outcome == o && reference == f
            ),
            Command::RecordSatisfaction { rating, comment } => matches!(
                change,
                Change::SatisfactionRecorded { rating: r, comment: c } if rating == r && comment == c
            ),
            Command::Close => matches!(change, Change::Closed),
            Command::Reopen { reason } => {
                matches!(change, Change::Reopened { reason: r } if reason == r)
            }
        }
    }

    /// A stable name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Register(_) => "register",
            Command::Acknowledge => "acknowledge",
            Command::Decline { .. } => "decline",
            Command::Merge { .. } => "merge",
            Command::Assign { .. } => "assign",
            Command::ClassifyComplex { .. } => "classify_complex",
            Command::RecordFindings { .. } => "record_findings",
            Command::ProposeRedress { .. } => "propose_redress",
            Command::Answer { .. } => "answer",
            Command::SendHoldingResponse { .. } => "send_holding_response",
            Command::RequestExtension { .. } => "request_extension",
            Command::ApproveExtension { .. } => "approve_extension",
            Command::PauseClock { .. } => "pause_clock",
            Command::ResumeClock => "resume_clock",
            Command::AddNewFacts { .. } => "add_new_facts",
            Command::Withdraw { .. } => "withdraw",
            Command::RequestReview { .. } => "request_review",
            Command::AnswerReview { .. } => "answer_review",
            Command::ReferToRegulator { .. } => "refer_to_regulator",
            Command::RecordRegulatorOutcome { .. } => "record_regulator_outcome",
            Command::RecordSatisfaction { .. } => "record_satisfaction",
            Command::Close => "close",
            Command::Reopen { .. } => "reopen",
        }
    }
}
