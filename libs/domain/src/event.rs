//! What happened: the facts recorded in a complaint's stream.

use jiff::Timestamp;

use crate::command::Register;
use crate::model::*;

/// One recorded fact about a complaint: when it was decided (recorded), by whom, what
/// changed, and, for a step that happened outside the system before it was recorded,
/// when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub at: Timestamp,
    pub actor: String,
    pub change: Change,
    /// `None`: it happened when it was recorded (`at`).
    pub effective: Option<Effective>,
}

impl Event {
    /// When it happened: the time the SLA counts from.
    pub fn effective_at(&self) -> Timestamp {
        self.effective.as_ref().map_or(self.at, |e| e.at)
    }
}

/// When a step happened outside the system (a letter posted, a call made, an appraisal
/// started), if before it was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub at: Timestamp,
    /// Why it is recorded late: required when it is back-dated beyond the window.
    pub reason: Option<String>,
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Registered(Box<Register>),
    Acknowledged,
    Declined {
        reason: String,
    },
    Merged {
        into: ComplaintId,
        reason: String,
    },
    Assigned {
        unit: String,
        handler: String,
    },
    ClassifiedComplex {
        reason: String,
    },
    FindingsRecorded {
        findings: String,
        root_cause: RootCause,
        evidence: Vec<String>,
    },
    RedressProposed {
        redress: Vec<Redress>,
        rationale: String,
    },
    Answered {
        decision: Decision,
        redress: Vec<Redress>,
        delivery: DeliveryMethod,
        summary: String,
    },
    HoldingResponseSent {
        reason: String,
        delivery: DeliveryMethod,
    },
    ExtensionRequested {
        days: u32,
        reason: String,
    },
    ExtensionApproved {
        days: u32,
        complainant_notified_at: Timestamp,
    },
    ClockPaused {
        reason: PauseReason,
        complainant_notified_at: Option<Timestamp>,
    },
    ClockResumed {
        reason: PauseReason,
    },
    NewFactsAdded {
        facts: String,
    },
    Withdrawn {
        reason: String,
    },
    ReviewRequested {
        reason: String,
    },
    ReviewAnswered {
        outcome: ReviewOutcome,
        summary: String,
    },
    ReferredToRegulator {
        body: String,
        reason: ReferralReason,
        reference: String,
    },
    RegulatorOutcomeRecorded {
        body: String,
        outcome: RegulatorOutcome,
        reference: String,
    },
    /// The complainant's rating (1 to 5) of the answer, with an optional comment
    /// (personal data, sealed with the complainant's other fields).
    SatisfactionRecorded {
        rating: u8,
        comment: String,
    },
    Closed,
    Reopened {
        reason: String,
    },
}

impl Change {
    /// Whether the step happens outside the system (so it may carry an effective time):
    /// what the firm sends or receives, and the clock's pauses.
    pub fn happens_outside(&self) -> bool {
        match self {
            Change::Acknowledged
            | Change::Answered { .. }
            | Change::HoldingResponseSent { .. }
            | Change::ClockPaused { .. }
            | Change::ClockResumed { .. }
            | Change::NewFactsAdded { .. }
            | Change::Withdrawn { .. }
            | Change::ReviewRequested { .. }
            | Change::ReviewAnswered { .. }
            | Change::ReferredToRegulator { .. }
            | Change::RegulatorOutcomeRecorded { .. }
            | Change::SatisfactionRecorded { .. } => true,
            Change::Registered(_)
            | Change::Declined { .. }
            | Change::Merged { .. }
            | Change::Assigned { .. }
            | Change::ClassifiedComplex { .. }
            | Change::FindingsRecorded { .. }
            | Change::RedressProposed { .. }
            | Change::ExtensionRequested { .. }
            | Change::ExtensionApproved { .. }
            | Change::Closed
            | Change::Reopened { .. } => false,
        }
    }

    /// The event type as stored in the log, `complaint.<name>`.
    pub fn event_type(&self) -> &'static str {
        match self {
            Change::Registered(_) => "complaint.registered",
            Change::Acknowledged => "complaint.acknowledged",
            Change::Declined { .. } => "complaint.declined",
            Change::Merged { .. } => "complaint.merged",
            Change::Assigned { .. } => "complaint.assigned",
            Change::ClassifiedComplex { .. } => "complaint.classified_complex",
            Change::FindingsRecorded { .. } => "complaint.findings_recorded",
            Change::RedressProposed { .. } => "complaint.redress_proposed",
            Change::Answered { .. } => "complaint.answered",
            Change::HoldingResponseSent { .. } => "complaint.holding_response_sent",
            Change::ExtensionRequested { .. } => "complaint.extension_requested",
            Change::ExtensionApproved { .. } => "complaint.extension_approved",
            Change::ClockPaused { .. } => "complaint.clock_paused",
            Change::ClockResumed { .. } => "complaint.clock_resumed",
            Change::NewFactsAdded { .. } => "complaint.new_facts_added",
            Change::Withdrawn { .. } => "complaint.withdrawn",
            Change::ReviewRequested { .. } => "complaint.review_requested",
            Change::ReviewAnswered { .. } => "complaint.review_answered",
            Change::ReferredToRegulator { .. } => "complaint.referred_to_regulator",
            Change::RegulatorOutcomeRecorded { .. } => "complaint.regulator_outcome_recorded",
            Change::SatisfactionRecorded { .. } => "complaint.satisfaction_recorded",
            Change::Closed => "complaint.closed",
            Change::Reopened { .. } => "complaint.reopened",
        }
    }
}
