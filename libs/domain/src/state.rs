//! A complaint's current state, folded from its events by [`evolve`].

use jiff::Timestamp;

use crate::command::Register;
use crate::event::{Change, Event};
use crate::model::*;

/// An extension that was asked for and not yet approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingExtension {
    pub days: u32,
    pub reason: String,
    pub requested_at: Timestamp,
}

/// A clock pause, open while `until` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub reason: PauseReason,
    /// When it started and ended (effective times: what the SLA counts).
    pub from: Timestamp,
    pub until: Option<Timestamp>,
    /// When its start and its end were recorded.
    pub recorded_from: Timestamp,
    pub recorded_until: Option<Timestamp>,
}

/// A step that happened outside the system, with both its times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub event_type: &'static str,
    /// When it happened.
    pub effective: Timestamp,
    /// When it was recorded.
    pub recorded: Timestamp,
    pub actor: String,
    pub backdating_reason: Option<String>,
}

/// A referral to a regulator or ombudsman.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referral {
    pub body: String,
    pub reason: ReferralReason,
    pub reference: String,
    pub referred_at: Timestamp,
    pub outcome: Option<(RegulatorOutcome, Timestamp)>,
}

/// A review (核查) asked for by the complainant after the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub reason: String,
    pub requested_at: Timestamp,
    pub answer: Option<(ReviewOutcome, Timestamp)>,
}

/// The complainant's satisfaction with an answer, as last recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Satisfaction {
    /// From 1 (very dissatisfied) to 5 (very satisfied).
    pub rating: u8,
    /// Personal data (empty when none was given, or not readable).
    pub comment: String,
    /// When it was given (effective time).
    pub at: Timestamp,
}

/// The state of one complaint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complaint {
    /// What was registered.
    pub registration: Register,
    pub status: Status,
    pub acknowledged_at: Option<Timestamp>,
    /// Current unit and handler.
    pub assignment: Option<(String, String)>,
    pub complex: bool,
    pub findings: Option<(String, RootCause)>,
    pub proposed_redress: Vec<Redress>,
    pub decision: Option<Decision>,
    pub redress: Vec<Redress>,
    pub answered_at: Option<Timestamp>,
    pub holding_responses: Vec<Timestamp>,
    pub pending_extension: Option<PendingExtension>,
    /// Approved extensions: days and when approved.
    pub extensions: Vec<(u32, Timestamp)>,
    pub pauses: Vec<Pause>,
    /// When new facts were added (each may restart the handling clock).
    pub new_facts_at: Vec<Timestamp>,
    pub reviews: Vec<Review>,
    pub referrals: Vec<Referral>,
    pub merged_into: Option<ComplaintId>,
    pub ended_at: Option<Timestamp>,
    pub reopened: u32,
    /// The latest satisfaction rating; a new answer keeps it (one rating per answer:
    /// [`Complaint::latest_answer_at`]).
    pub satisfaction: Option<Satisfaction>,
    /// When the latest event was recorded.
    pub updated_at: Timestamp,
    /// Its steps that happened outside the system, in the order recorded.
    pub steps: Vec<Step>,
}

impl Complaint {
    pub fn id(&self) -> ComplaintId {
        self.registration.id
    }

    /// The open pause, if a clock is paused.
    pub fn open_pause(&self) -> Option<&Pause> {
        self.pauses.last().filter(|p| p.until.is_none())
    }

    /// The review in progress, if any.
    pub fn open_review(&self) -> Option<&Review> {
        self.reviews.last().filter(|r| r.answer.is_none())
    }

    /// When the complainant was last given an answer: the answer, or a later review
    /// answer that changed the outcome (a confirmed review leaves the answer as it was).
    pub fn latest_answer_at(&self) -> Option<Timestamp> {
        let changed = self
            .reviews
            .iter()
            .filter_map(|r| r.answer)
            .filter(|(outcome, _)| *outcome == ReviewOutcome::Changed)
            .map(|(_, at)| at);
        self.answered_at.into_iter().chain(changed).max()
    }

    /// The open referral to `body`, if any.
    pub fn open_referral(&self, body: &str) -> Option<&Referral> {
        self.referrals
            .iter()
            .rev()
            .find(|r| r.body == body && r.outcome.is_none())
    }
}

/// The status a complaint in `current` has after `change`: the one place the lifecycle's
/// status transitions are written down (used by [`evolve`] and by projections that keep
/// only a summary).
pub fn status_after(current: Status, change: &Change) -> Status {
    match change {
        Change::Registered(_) => Status::Received,
        Change::Acknowledged if current == Status::Received => Status::Acknowledged,
        Change::Declined { .. } => Status::Declined,
        Change::Merged { .. } => Status::Merged,
        Change::Assigned { .. } | Change::Reopened { .. } => Status::InProgress,
        Change::Answered { .. } | Change::ReviewAnswered { .. } => Status::Answered,
        Change::Withdrawn { .. } => Status::Withdrawn,
        Change::ReviewRequested { .. } => Status::UnderReview,
        Change::Closed => Status::Closed,
        _ => current,
    }
}

/// Folds one event into the state. Pure and total: an event that does not fit the state
/// (which `decide` never produces) leaves the state as it was.
pub fn evolve(state: Option<Complaint>, event: &Event) -> Option<Complaint> {
    // Facts take the time the step happened; `updated_at` when it was recorded.
    let at = event.effective_at();
    let recorded = event.at;
    let Some(mut c) = state else {
        return match &event.change {
            Change::Registered(registration) => Some(Complaint {
                registration: (**registration).clone(),
                status: Status::Received,
                acknowledged_at: None,
                assignment: None,
                complex: false,
                findings: None,
                proposed_redress: Vec::new(),
                decision: None,
                redress: Vec::new(),
                answered_at: None,
                holding_responses: Vec::new(),
                pending_extension: None,
                extensions: Vec::new(),
                pauses: Vec::new(),
                new_facts_at: Vec::new(),
                reviews: Vec::new(),
                referrals: Vec::new(),
                merged_into: None,
                ended_at: None,
                reopened: 0,
                satisfaction: None,
                updated_at: recorded,
                steps: Vec::new(),
            }),
            _ => None,
        };
    };
    c.updated_at = recorded;
    if event.change.happens_outside() {
        c.steps.push(Step {
            event_type: event.change.event_type(),
            effective: at,
            recorded,
            actor: event.actor.clone(),
            backdating_reason: event.effective.as_ref().and_then(|e| e.reason.clone()),
        });
    }
    c.status = status_after(c.status, &event.change);
    match (c.status.is_ended(), c.ended_at) {
        (true, None) => c.ended_at = Some(at),
        (false, Some(_)) => c.ended_at = None,
        _ => {}
    }
    match &event.change {
        Change::Registered(_) => {}
        Change::Acknowledged => c.acknowledged_at = Some(at),
        Change::Declined { .. } => {}
        Change::Merged { into, .. } => c.merged_into = Some(*into),
        Change::Assigned { unit, handler } => {
            c.assignment = Some((unit.clone(), handler.clone()));
        }
        Change::ClassifiedComplex { .. } => c.complex = true,
        Change::FindingsRecorded {
            findings,
            root_cause,
            ..
        } => {
            c.findings = Some((findings.clone(), *root_cause));
        }
        Change::RedressProposed { redress, .. } => c.proposed_redress = redress.clone(),
        Change::Answered {
            decision, redress, ..
        } => {
            c.decision = Some(*decision);
            c.redress = redress.clone();
            c.answered_at = Some(at);
            c.pending_extension = None;
            close_pause(&mut c, at, recorded);
        }
        Change::HoldingResponseSent { .. } => c.holding_responses.push(at),
        Change::ExtensionRequested { days, reason } => {
            c.pending_extension = Some(PendingExtension {
                days: *days,
                reason: reason.clone(),
                requested_at: at,
            });
        }
        Change::ExtensionApproved { days, .. } => {
            c.pending_extension = None;
            c.extensions.push((*days, at));
        }
        Change::ClockPaused { reason, .. } => c.pauses.push(Pause {
            reason: *reason,
            from: at,
            until: None,
            recorded_from: recorded,
            recorded_until: None,
        }),
        Change::ClockResumed { .. } => close_pause(&mut c, at, recorded),
        Change::NewFactsAdded { .. } => c.new_facts_at.push(at),
        Change::Withdrawn { .. } => close_pause(&mut c, at, recorded),
        Change::ReviewRequested { reason } => {
            c.reviews.push(Review {
                reason: reason.clone(),
                requested_at: at,
                answer: None,
            });
        }
        Change::ReviewAnswered { outcome, .. } => {
            if let Some(review) = c.reviews.last_mut() {
                review.answer = Some((*outcome, at));
            }
        }
        Change::ReferredToRegulator {
            body,
            reason,
            reference,
        } => c.referrals.push(Referral {
            body: body.clone(),
            reason: *reason,
            reference: reference.clone(),
            referred_at: at,
            outcome: None,
        }),
        Change::RegulatorOutcomeRecorded {
            body,
            outcome,
            reference,
        } => {
            if let Some(referral) = c
                .referrals
                .iter_mut()
                .rev()
                .find(|r| &r.body == body && r.outcome.is_none())
            {
                referral.outcome = Some((*outcome, at));
                if !reference.is_empty() {
                    referral.reference = reference.clone();
                }
            }
        }
        Change::SatisfactionRecorded { rating, comment } => {
            c.satisfaction = Some(Satisfaction {
                rating: *rating,
                comment: comment.clone(),
                at,
            });
        }
        Change::Closed => {}
        Change::Reopened { .. } => c.reopened += 1,
    }
    Some(c)
}

fn close_pause(c: &mut Complaint, at: Timestamp, recorded: Timestamp) {
    if let Some(pause) = c.pauses.last_mut() {
        if pause.until.is_none() {
            pause.until = Some(at);
            pause.recorded_until = Some(recorded);
        }
    }
}
