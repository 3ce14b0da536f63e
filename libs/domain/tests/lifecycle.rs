//! The lifecycle, step by step, as given / when / then.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::collections::BTreeSet;

use complaints_domain::model::*;
use complaints_domain::{
    decide, evolve, replay, Change, Command, Complaint, Context, DomainError, Event, Register,
    Rules,
};
use iso_currency::Currency;
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

fn t(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

const NOW: &str = "2026-02-05T10:00:00Z";

fn ctx_as(roles: &[Role]) -> Context {
    Context {
        now: t(NOW),
        actor: "user:alice".into(),
        roles: roles.iter().copied().collect::<BTreeSet<_>>(),
        rules: Rules::default(),
        regimes: Default::default(),
        effective: None,
        backdating: None,
    }
}

fn ctx() -> Context {
    ctx_as(&[Role::Handler])
}

fn supervisor() -> Context {
    ctx_as(&[Role::Supervisor])
}

fn id() -> ComplaintId {
    ComplaintId::new(Uuid::from_u128(0x42))
}

fn registration() -> Register {
    Register {
        id: id(),
        channel: Channel::Hotline,
        complainant: Complainant {
            person_id: "person-7".into(),
            name: "Wang Fang".into(),
            contact: "+86 10 5555 0100".into(),
            id_number: "110101199003074578".into(),
        },
        unit: "cards".into(),
        employee: Some("emp-9".into()),
        product: "credit card".into(),
        category: "fees".into(),
        claim: "refund the annual fee".into(),
        facts: "charged twice in January".into(),
        received_at: t("2026-02-05T09:00:00Z"),
        regime: "CN-CBIRC".into(),
        region: "CN".into(),
        regulator: None,
        variant: None,
    }
}

fn cny(minor_units: i64) -> Money {
    Money {
        minor_units,
        currency: Currency::CNY,
    }
}

/// A complaint after `commands`, each accepted (in the default context).
struct Given {
    events: Vec<Event>,
}

fn given(commands: Vec<Command>) -> Given {
    let mut events: Vec<Event> = Vec::new();
    for command in commands {
        let state = replay(&events);
        let new = decide(state.as_ref(), command.clone(), &supervisor_handler())
            .unwrap_or_else(|e| panic!("given step {} refused: {e}", command.name()));
        events.extend(new);
    }
    Given { events }
}

fn supervisor_handler() -> Context {
    ctx_as(&[Role::Handler, Role::Supervisor])
}

fn registered() -> Vec<Command> {
    vec![Command::Register(Box::new(registration()))]
}

fn assigned() -> Vec<Command> {
    let mut c = registered();
    c.push(Command::Acknowledge);
    c.push(Command::Assign {
        unit: "cards".into(),
        handler: "emp-3".into(),
    });
    c
}

fn answered() -> Vec<Command> {
    let mut c = assigned();
    c.push(answer());
    c
}

fn answer() -> Command {
    Command::Answer {
        decision: Decision::Upheld,
        redress: vec![Redress {
            kind: RedressKind::Refund,
            amount: cny(30_000),
        }],
        delivery: DeliveryMethod::Letter,
        summary: "fee refunded".into(),
    }
}

impl Given {
    fn state(&self) -> Option<Complaint> {
        replay(&self.events)
    }

    fn when(&self, command: Command) -> Then {
        self.when_in(command, &ctx())
    }

    fn when_in(&self, command: Command, ctx: &Context) -> Then {
        let state = self.state();
        Then {
            result: decide(state.as_ref(), command, ctx),
            before: state,
        }
    }
}

struct Then {
    before: Option<Complaint>,
    result: Result<Vec<Event>, DomainError>,
}

impl Then {
    /// The command produced exactly this change; returns the state after it.
    fn then(self, expected: Change) -> Complaint {
        let events = self.result.unwrap_or_else(|e| panic!("refused: {e}"));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].change, expected);
        assert_eq!(events[0].at, t(NOW));
        assert!(!events[0].actor.is_empty());
        evolve(self.before, &events[0]).expect("a state")
    }

    fn then_status(self, expected: Change, status: Status) -> Complaint {
        let state = self.then(expected);
        assert_eq!(state.status, status);
        state
    }

    fn refused(self, needle: &str) {
        match self.result {
            Err(DomainError::WrongState(reason)) => {
                assert!(
                    reason.contains(needle),
                    "reason {reason:?} lacks {needle:?}"
                );
            }
            other => panic!("expected a refusal mentioning {needle:?}, got {other:?}"),
        }
    }

    fn not_permitted(self) {
        assert!(
            matches!(self.result, Err(DomainError::NotPermitted(_))),
            "{:?}",
            self.result
        );
    }

    fn invalid(self, fields: &[&str]) {
        match self.result {
            Err(DomainError::Invalid(violations)) => {
                let got: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
                assert_eq!(got, fields, "{violations:?}");
                assert!(violations.iter().all(|v| !v.description.is_empty()));
            }
            other => panic!("expected invalid {fields:?}, got {other:?}"),
        }
    }
}

#[test]
fn registering_records_everything_given() {
    let state = given(vec![])
        .when(Command::Register(Box::new(registration())))
        .then_status(
            Change::Registered(Box::new(registration())),
            Status::Received,
        );
    assert_eq!(state.registration, registration());
    assert_eq!(
        state.id().name(),
        "complaints/00000000-0000-0000-0000-000000000042"
    );
}

#[test]
fn registering_reports_every_bad_field_at_once() {
    let mut r = registration();
    r.complainant.name = "  ".into();
    r.employee = Some(String::new());
    r.facts = "x".repeat(10_001);
    r.regime = "uk fca".into();
    r.received_at = t("2026-02-05T10:10:00Z");
    r.product = "a\u{0}b".into();
    given(vec![])
        .when(Command::Register(Box::new(r)))
        .invalid(&[
            "complainant.name",
            "employee",
            "product",
            "facts",
            "regime",
            "received_at",
        ]);

    let mut ancient = registration();
    ancient.received_at = t("1999-12-31T00:00:00Z");
    given(vec![])
        .when(Command::Register(Box::new(ancient)))
        .invalid(&["received_at"]);
}

/// Defect 4 (timestamps out of range): a regulator deadline decades after the receipt
/// is a data-entry error, not a deadline.
#[test]
fn a_regulator_deadline_absurdly_far_after_the_receipt_is_refused() {
    let mut r = registration();
    r.channel = Channel::RegulatorTransfer;
    r.regulator = Some(RegulatorTransfer {
        regulator: "NFRA Beijing".into(),
        reference: "NFRA-2026-0001".into(),
        deadline: t("2126-02-20T00:00:00Z"),
    });
    given(vec![])
        .when(Command::Register(Box::new(r)))
        .invalid(&["regulator.deadline"]);
}

#[test]
fn a_regulator_transfer_carries_the_regulator_reference_and_deadline() {
    let mut r = registration();
    r.channel = Channel::RegulatorTransfer;
    given(vec![])
        .when(Command::Register(Box::new(r.clone())))
        .invalid(&["regulator"]);

    r.regulator = Some(RegulatorTransfer {
        regulator: "NFRA Beijing".into(),
        reference: "".into(),
        deadline: t("2026-02-01T00:00:00Z"),
    });
    given(vec![])
        .when(Command::Register(Box::new(r.clone())))
        .invalid(&["regulator.reference", "regulator.deadline"]);

    r.regulator = Some(RegulatorTransfer {
        regulator: "NFRA Beijing".into(),
        reference: "NFRA-2026-0001".into(),
        deadline: t("2026-02-20T00:00:00Z"),
    });
    let state = given(vec![])
        .when(Command::Register(Box::new(r.clone())))
        .then(Change::Registered(Box::new(r.clone())));
    assert_eq!(
        state.registration.regulator.unwrap().reference,
        "NFRA-2026-0001"
    );

    let mut not_transfer = r;
    not_transfer.channel = Channel::Web;
    given(vec![])
        .when(Command::Register(Box::new(not_transfer)))
        .invalid(&["regulator"]);
}

#[test]
fn a_complaint_is_registered_once_and_nothing_happens_to_an_unregistered_one() {
    given(registered())
        .when(Command::Register(Box::new(registration())))
        .refused("already registered");
    given(vec![])
        .when(Command::Acknowledge)
        .refused("not registered");
}

#[test]
fn a_missing_actor_is_not_permitted() {
    let mut anonymous = ctx();
    anonymous.actor = " ".into();
    given(vec![])
        .when_in(Command::Register(Box::new(registration())), &anonymous)
        .not_permitted();
}

#[test]
fn acknowledging_happens_once() {
    let state = given(registered())
        .when(Command::Acknowledge)
        .then_status(Change::Acknowledged, Status::Acknowledged);
    assert_eq!(state.acknowledged_at, Some(t(NOW)));
    let mut twice = registered();
    twice.push(Command::Acknowledge);
    given(twice)
        .when(Command::Acknowledge)
        .refused("acknowledged");
}

#[test]
fn declining_needs_a_reason_and_an_unassigned_complaint() {
    given(registered())
        .when(Command::Decline { reason: "".into() })
        .invalid(&["reason"]);
    let state = given(registered())
        .when(Command::Decline {
            reason: "not a complaint: a product question".into(),
        })
        .then_status(
            Change::Declined {
                reason: "not a complaint: a product question".into(),
            },
            Status::Declined,
        );
    assert_eq!(state.ended_at, Some(t(NOW)));
    given(assigned())
        .when(Command::Decline {
            reason: "late".into(),
        })
        .refused("not yet assigned");
}

#[test]
fn merging_into_an_open_duplicate_ends_the_complaint() {
    let other = ComplaintId::new(Uuid::from_u128(0x43));
    given(registered())
        .when(Command::Merge {
            into: id(),
            reason: "dup".into(),
        })
        .refused("into itself");
    let state = given(registered())
        .when(Command::Merge {
            into: other,
            reason: "same facts as the earlier one".into(),
        })
        .then_status(
            Change::Merged {
                into: other,
                reason: "same facts as the earlier one".into(),
            },
            Status::Merged,
        );
    assert_eq!(state.merged_into, Some(other));
    let mut merged = registered();
    merged.push(Command::Merge {
        into: other,
        reason: "dup".into(),
    });
    given(merged.clone())
        .when(Command::Acknowledge)
        .refused("merged");
    given(merged)
        .when(Command::ReferToRegulator {
            body: "FOS".into(),
            reason: ReferralReason::ComplainantReferred,
            reference: "".into(),
        })
        .refused("merged");
}

#[test]
fn assigning_refuses_the_employee_complained_about() {
    given(registered())
        .when(Command::Assign {
            unit: "cards".into(),
            handler: " EMP-9 ".into(),
        })
        .refused("employee complained about");
    let state = given(registered())
        .when(Command::Assign {
            unit: "cards".into(),
            handler: "emp-3".into(),
        })
        .then_status(
            Change::Assigned {
                unit: "cards".into(),
                handler: "emp-3".into(),
            },
            Status::InProgress,
        );
    assert_eq!(state.assignment, Some(("cards".into(), "emp-3".into())));
    let reassigned = given(assigned())
        .when(Command::Assign {
            unit: "cards-2".into(),
            handler: "emp-4".into(),
        })
        .then(Change::Assigned {
            unit: "cards-2".into(),
            handler: "emp-4".into(),
        });
    assert_eq!(reassigned.assignment.unwrap().1, "emp-4");
    given(registered())
        .when(Command::Assign {
            unit: "".into(),
            handler: "".into(),
        })
        .invalid(&["unit", "handler"]);
    given(answered())
        .when(Command::Assign {
            unit: "cards".into(),
            handler: "emp-4".into(),
        })
        .refused("answered");
}

#[test]
fn a_complaint_is_classified_complex_once() {
    let state = given(assigned())
        .when(Command::ClassifyComplex {
            reason: "three products involved".into(),
        })
        .then(Change::ClassifiedComplex {
            reason: "three products involved".into(),
        });
    assert!(state.complex);
    let mut complex = assigned();
    complex.push(Command::ClassifyComplex { reason: "r".into() });
    given(complex)
        .when(Command::ClassifyComplex {
            reason: "again".into(),
        })
        .refused("already");
}

#[test]
fn findings_need_an_assigned_complaint_and_carry_a_root_cause() {
    let findings = Command::RecordFindings {
        findings: "the fee was charged by a batch job twice".into(),
        root_cause: RootCause::SystemError,
        evidence: vec!["ticket-881".into()],
    };
    given(registered())
        .when(findings.clone())
        .refused("assign it first");
    let state = given(assigned())
        .when(findings)
        .then(Change::FindingsRecorded {
            findings: "the fee was charged by a batch job twice".into(),
            root_cause: RootCause::SystemError,
            evidence: vec!["ticket-881".into()],
        });
    assert_eq!(state.findings.unwrap().1, RootCause::SystemError);
    given(assigned())
        .when(Command::RecordFindings {
            findings: "f".into(),
            root_cause: RootCause::Other,
            evidence: vec!["e".into(); 51],
        })
        .invalid(&["evidence"]);
}

#[test]
fn redress_amounts_are_positive_minor_units_that_do_not_overflow() {
    let item = |minor| Redress {
        kind: RedressKind::Compensation,
        amount: cny(minor),
    };
    given(assigned())
        .when(Command::ProposeRedress {
            redress: vec![],
            rationale: "r".into(),
        })
        .invalid(&["redress"]);
    given(assigned())
        .when(Command::ProposeRedress {
            redress: vec![item(100), item(-5), item(0)],
            rationale: "r".into(),
        })
        .invalid(&["redress[1].amount", "redress[2].amount"]);
    given(assigned())
        .when(Command::ProposeRedress {
            redress: vec![item(i64::MAX), item(1)],
            rationale: "r".into(),
        })
        .invalid(&["redress[1].amount"]);
    // The same sums in two currencies do not add up.
    let usd = Redress {
        kind: RedressKind::Interest,
        amount: Money {
            minor_units: 1,
            currency: Currency::USD,
        },
    };
    let state = given(assigned())
        .when(Command::ProposeRedress {
            redress: vec![item(i64::MAX), usd],
            rationale: "r".into(),
        })
        .then(Change::RedressProposed {
            redress: vec![item(i64::MAX), usd],
            rationale: "r".into(),
        });
    assert_eq!(state.proposed_redress.len(), 2);
}

#[test]
fn answering_needs_an_assigned_complaint_and_happens_once() {
    given(registered())
        .when(answer())
        .refused("must be assigned");
    let state = given(assigned()).when(answer()).then_status(
        Change::Answered {
            decision: Decision::Upheld,
            redress: vec![Redress {
                kind: RedressKind::Refund,
                amount: cny(30_000),
            }],
            delivery: DeliveryMethod::Letter,
            summary: "fee refunded".into(),
        },
        Status::Answered,
    );
    assert_eq!(
        (state.decision, state.answered_at),
        (Some(Decision::Upheld), Some(t(NOW)))
    );
    given(answered()).when(answer()).refused("answered");
    given(assigned())
        .when(Command::Answer {
            decision: Decision::Rejected,
            redress: vec![],
            delivery: DeliveryMethod::Email,
            summary: "".into(),
        })
        .invalid(&["summary"]);
}

#[test]
fn a_holding_response_goes_out_before_the_answer_only() {
    let hold = Command::SendHoldingResponse {
        reason: "waiting for the card scheme".into(),
        delivery: DeliveryMethod::Email,
    };
    let state = given(assigned())
        .when(hold.clone())
        .then(Change::HoldingResponseSent {
            reason: "waiting for the card scheme".into(),
            delivery: DeliveryMethod::Email,
        });
    assert_eq!(state.holding_responses, vec![t(NOW)]);
    given(answered()).when(hold).refused("answered");
}

fn extension_requested() -> Vec<Command> {
    let mut c = assigned();
    c.push(Command::RequestExtension {
        days: 30,
        reason: "especially complex".into(),
    });
    c
}

#[test]
fn an_extension_is_requested_once_at_a_time_within_bounds() {
    let state = given(assigned())
        .when(Command::RequestExtension {
            days: 30,
            reason: "especially complex".into(),
        })
        .then(Change::ExtensionRequested {
            days: 30,
            reason: "especially complex".into(),
        });
    assert_eq!(state.pending_extension.unwrap().days, 30);
    given(extension_requested())
        .when(Command::RequestExtension {
            days: 10,
            reason: "r".into(),
        })
        .refused("already waiting");
    given(assigned())
        .when(Command::RequestExtension {
            days: 0,
            reason: "r".into(),
        })
        .invalid(&["days"]);
    given(assigned())
        .when(Command::RequestExtension {
            days: 61,
            reason: "".into(),
        })
        .invalid(&["days", "reason"]);
}

#[test]
fn an_extension_needs_a_supervisor_and_the_complainant_told() {
    let notified = Some(t("2026-02-05T09:30:00Z"));
    let approve = Command::ApproveExtension {
        complainant_notified_at: notified,
    };
    given(assigned())
        .when_in(approve.clone(), &supervisor())
        .refused("no extension request");
    given(extension_requested())
        .when_in(approve.clone(), &ctx())
        .not_permitted();
    given(extension_requested())
        .when_in(
            Command::ApproveExtension {
                complainant_notified_at: None,
            },
            &supervisor(),
        )
        .refused("must be told");
    given(extension_requested())
        .when_in(
            Command::ApproveExtension {
                complainant_notified_at: Some(t("2026-02-06T00:00:00Z")),
            },
            &supervisor(),
        )
        .invalid(&["complainant_notified_at"]);
    // The given steps ran at NOW too: a notice before the request is out of order.
    given(extension_requested())
        .when_in(
            Command::ApproveExtension {
                complainant_notified_at: Some(t("2026-02-05T09:59:00Z")),
            },
            &supervisor(),
        )
        .invalid(&["complainant_notified_at"]);
    let state = given(extension_requested())
        .when_in(
            Command::ApproveExtension {
                complainant_notified_at: Some(t(NOW)),
            },
            &supervisor(),
        )
        .then(Change::ExtensionApproved {
            days: 30,
            complainant_notified_at: t(NOW),
        });
    assert_eq!(state.extensions, vec![(30, t(NOW))]);
    assert!(state.pending_extension.is_none());
}

#[test]
fn a_clock_pauses_for_a_permitted_reason_and_resumes() {
    let appraisal = |notified| Command::PauseClock {
        reason: PauseReason::ExternalAppraisal,
        complainant_notified_at: notified,
    };
    given(assigned())
        .when(appraisal(None))
        .refused("must be told");
    let state = given(assigned())
        .when(appraisal(Some(t(NOW))))
        .then(Change::ClockPaused {
            reason: PauseReason::ExternalAppraisal,
            complainant_notified_at: Some(t(NOW)),
        });
    assert!(state.open_pause().is_some());
    let mut paused = assigned();
    paused.push(appraisal(Some(t(NOW))));
    given(paused.clone())
        .when(appraisal(Some(t(NOW))))
        .refused("already paused");
    let resumed = given(paused)
        .when(Command::ResumeClock)
        .then(Change::ClockResumed {
            reason: PauseReason::ExternalAppraisal,
        });
    assert!(resumed.open_pause().is_none());
    assert_eq!(resumed.pauses[0].until, Some(t(NOW)));
    given(assigned())
        .when(Command::ResumeClock)
        .refused("not paused");
    given(assigned())
        .when(Command::PauseClock {
            reason: PauseReason::AwaitingCustomer,
            complainant_notified_at: None,
        })
        .then(Change::ClockPaused {
            reason: PauseReason::AwaitingCustomer,
            complainant_notified_at: None,
        });
}

#[test]
fn new_facts_are_recorded_before_the_answer() {
    let facts = Command::AddNewFacts {
        facts: "a second charge in February".into(),
    };
    let state = given(assigned())
        .when(facts.clone())
        .then(Change::NewFactsAdded {
            facts: "a second charge in February".into(),
        });
    assert_eq!(state.new_facts_at, vec![t(NOW)]);
    given(answered()).when(facts).refused("answered");
    given(assigned())
        .when(Command::AddNewFacts { facts: "".into() })
        .invalid(&["facts"]);
}

#[test]
fn a_withdrawal_ends_handling_that_day_and_closes_an_open_pause() {
    let mut paused = assigned();
    paused.push(Command::PauseClock {
        reason: PauseReason::AwaitingCustomer,
        complainant_notified_at: None,
    });
    let state = given(paused)
        .when(Command::Withdraw { reason: "".into() })
        .then_status(Change::Withdrawn { reason: "".into() }, Status::Withdrawn);
    assert_eq!(state.ended_at, Some(t(NOW)));
    assert!(state.open_pause().is_none());
    let mut withdrawn = assigned();
    withdrawn.push(Command::Withdraw {
        reason: "settled".into(),
    });
    given(withdrawn)
        .when(Command::Withdraw { reason: "".into() })
        .refused("withdrawn");
}

#[test]
fn a_review_is_asked_for_within_the_window_and_answered() {
    given(assigned())
        .when(Command::RequestReview {
            reason: "disagree".into(),
        })
        .refused("only an answered complaint");
    let state = given(answered())
        .when(Command::RequestReview {
            reason: "disagree with the amount".into(),
        })
        .then_status(
            Change::ReviewRequested {
                reason: "disagree with the amount".into(),
            },
            Status::UnderReview,
        );
    assert!(state.open_review().is_some());

    let mut late = ctx();
    late.now = t(NOW)
        .checked_add(SignedDuration::from_hours(30 * 24 + 1))
        .unwrap();
    given(answered())
        .when_in(
            Command::RequestReview {
                reason: "late".into(),
            },
            &late,
        )
        .refused("review window closed");
    let mut last_minute = ctx();
    last_minute.now = t(NOW)
        .checked_add(SignedDuration::from_hours(30 * 24))
        .unwrap();
    assert!(given(answered())
        .when_in(
            Command::RequestReview {
                reason: "just in time".into()
            },
            &last_minute
        )
        .result
        .is_ok());

    let mut under_review = answered();
    under_review.push(Command::RequestReview {
        reason: "disagree".into(),
    });
    let reviewed = given(under_review.clone())
        .when(Command::AnswerReview {
            outcome: ReviewOutcome::Confirmed,
            summary: "decision stands".into(),
        })
        .then_status(
            Change::ReviewAnswered {
                outcome: ReviewOutcome::Confirmed,
                summary: "decision stands".into(),
            },
            Status::Answered,
        );
    assert!(reviewed.open_review().is_none());
    given(answered())
        .when(Command::AnswerReview {
            outcome: ReviewOutcome::Changed,
            summary: "s".into(),
        })
        .refused("no review");
    given(under_review)
        .when(Command::Close)
        .refused("under_review");
}

#[test]
fn a_referral_to_a_regulator_is_open_until_its_outcome() {
    let refer = Command::ReferToRegulator {
        body: "FOS".into(),
        reason: ReferralReason::ComplainantReferred,
        reference: "".into(),
    };
    let state = given(answered())
        .when(refer.clone())
        .then(Change::ReferredToRegulator {
            body: "FOS".into(),
            reason: ReferralReason::ComplainantReferred,
            reference: "".into(),
        });
    assert!(state.open_referral("FOS").is_some());
    let mut referred = answered();
    referred.push(refer.clone());
    given(referred.clone())
        .when(refer)
        .refused("already referred");
    let outcome = Command::RecordRegulatorOutcome {
        body: "FOS".into(),
        outcome: RegulatorOutcome::UpheldForFirm,
        reference: "FOS-123".into(),
    };
    given(answered())
        .when(outcome.clone())
        .refused("no open referral");
    let done = given(referred)
        .when(outcome)
        .then(Change::RegulatorOutcomeRecorded {
            body: "FOS".into(),
            outcome: RegulatorOutcome::UpheldForFirm,
            reference: "FOS-123".into(),
        });
    assert_eq!(done.referrals[0].reference, "FOS-123");
    assert!(done.open_referral("FOS").is_none());
    given(answered())
        .when(Command::ReferToRegulator {
            body: "".into(),
            reason: ReferralReason::RuleRequired,
            reference: "".into(),
        })
        .invalid(&["body"]);
}

#[test]
fn only_an_answered_complaint_is_closed_and_only_a_supervisor_reopens() {
    given(assigned())
        .when(Command::Close)
        .refused("only an answered complaint");
    let closed_state = given(answered())
        .when(Command::Close)
        .then_status(Change::Closed, Status::Closed);
    assert_eq!(closed_state.ended_at, Some(t(NOW)));
    let mut closed = answered();
    closed.push(Command::Close);
    given(closed.clone())
        .when(Command::Reopen {
            reason: "review upheld".into(),
        })
        .not_permitted();
    let reopened = given(closed)
        .when_in(
            Command::Reopen {
                reason: "review upheld".into(),
            },
            &supervisor(),
        )
        .then_status(
            Change::Reopened {
                reason: "review upheld".into(),
            },
            Status::InProgress,
        );
    assert_eq!((reopened.reopened, reopened.ended_at), (1, None));
    given(assigned())
        .when_in(Command::Reopen { reason: "r".into() }, &supervisor())
        .refused("in_progress");
}

#[test]
fn a_whole_life_replays_to_the_same_state_at_every_step() {
    let mut commands = answered();
    commands.extend([
        Command::RequestReview {
            reason: "disagree".into(),
        },
        Command::AnswerReview {
            outcome: ReviewOutcome::Changed,
            summary: "more refunded".into(),
        },
        Command::Close,
        Command::Reopen {
            reason: "regulator asked".into(),
        },
        answer(),
        Command::Close,
    ]);
    let history = given(commands).events;
    let mut state = None;
    for (i, event) in history.iter().enumerate() {
        state = evolve(state, event);
        assert_eq!(state, replay(&history[..=i]));
    }
    let end = state.unwrap();
    assert_eq!(
        (end.status, end.reopened, end.reviews.len()),
        (Status::Closed, 1, 1)
    );
}

#[test]
fn an_event_before_registration_leaves_no_state() {
    let stray = Event {
        effective: None,
        at: t(NOW),
        actor: "user:a".into(),
        change: Change::Closed,
    };
    assert_eq!(evolve(None, &stray), None);
}

#[test]
fn registration_is_refused_under_an_unknown_regime_or_region() {
    let regimes = complaints_domain::Regimes(
        [
            (
                "CN-CBIRC".to_string(),
                Some(["CN".to_string()].into_iter().collect()),
            ),
            ("US-CFPB".to_string(), None),
        ]
        .into_iter()
        .collect(),
        complaints_domain::Variants::default(),
    );
    let mut with_regimes = ctx();
    with_regimes.regimes = std::sync::Arc::new(regimes);
    let mut r = registration();
    r.regime = "XX-NOWHERE".into();
    given(vec![])
        .when_in(Command::Register(Box::new(r.clone())), &with_regimes)
        .invalid(&["regime"]);
    r.regime = "CN-CBIRC".into();
    r.region = "GB-ENG".into();
    given(vec![])
        .when_in(Command::Register(Box::new(r.clone())), &with_regimes)
        .invalid(&["region"]);
    r.regime = "US-CFPB".into();
    assert!(
        given(vec![])
            .when_in(Command::Register(Box::new(r)), &with_regimes)
            .result
            .is_ok(),
        "any region"
    );
}

// --- Effective times: steps that happened outside the system, recorded later ---

/// Deciding at `now` a step that happened at `effective` (with `reason`), as `roles`,
/// with a back-dating window ending at `limit`.
fn at_effective(
    now: &str,
    effective: &str,
    reason: Option<&str>,
    roles: &[Role],
    limit: Option<&str>,
) -> Context {
    Context {
        now: t(now),
        effective: Some(complaints_domain::Effective {
            at: t(effective),
            reason: reason.map(str::to_owned),
        }),
        backdating: limit.map(|l| complaints_domain::Backdating {
            limit: t(l),
            window: "5 business days".into(),
        }),
        ..ctx_as(roles)
    }
}

const LATER: &str = "2026-02-19T10:00:00Z";

fn pause() -> Command {
    Command::PauseClock {
        reason: PauseReason::ExternalAppraisal,
        complainant_notified_at: Some(t(NOW)),
    }
}

#[test]
fn a_past_pause_and_answer_count_from_when_they_happened_and_keep_both_times() {
    let g = given(assigned());
    let ctx = at_effective(LATER, "2026-02-08T02:00:00Z", None, &[Role::Handler], None);
    let paused = g.when_in(pause(), &ctx).result.unwrap();
    assert_eq!(paused[0].at, t(LATER), "recorded now");
    assert_eq!(paused[0].effective_at(), t("2026-02-08T02:00:00Z"));
    let mut events = g.events.clone();
    events.extend(paused);
    let resume = at_effective(LATER, "2026-02-18T02:00:00Z", None, &[Role::Handler], None);
    events.extend(decide(replay(&events).as_ref(), Command::ResumeClock, &resume).unwrap());
    let state = replay(&events).unwrap();
    let pause = &state.pauses[0];
    assert_eq!(
        (pause.from, pause.until),
        (t("2026-02-08T02:00:00Z"), Some(t("2026-02-18T02:00:00Z")))
    );
    assert_eq!(
        (pause.recorded_from, pause.recorded_until),
        (t(LATER), Some(t(LATER)))
    );
    assert_eq!(
        state.updated_at,
        t(LATER),
        "updated_at is when it was recorded"
    );
    let steps: Vec<(&str, Timestamp, Timestamp)> = state
        .steps
        .iter()
        .map(|s| (s.event_type, s.effective, s.recorded))
        .collect();
    assert_eq!(
        steps,
        [
            ("complaint.acknowledged", t(NOW), t(NOW)),
            (
                "complaint.clock_paused",
                t("2026-02-08T02:00:00Z"),
                t(LATER)
            ),
            (
                "complaint.clock_resumed",
                t("2026-02-18T02:00:00Z"),
                t(LATER)
            ),
        ]
    );
    // An answer posted the day before it is entered.
    let answered = at_effective(LATER, "2026-02-18T09:00:00Z", None, &[Role::Handler], None);
    events.extend(decide(replay(&events).as_ref(), answer(), &answered).unwrap());
    let state = replay(&events).unwrap();
    assert_eq!(state.answered_at, Some(t("2026-02-18T09:00:00Z")));
}

#[test]
fn an_effective_time_in_the_future_before_receipt_or_before_the_step_it_follows_is_invalid() {
    let g = given(assigned());
    // The future (beyond the clock skew).
    g.when_in(
        pause(),
        &at_effective(NOW, "2026-02-05T11:00:00Z", None, &[Role::Handler], None),
    )
    .invalid(&["effective_time"]);
    // Before the complaint was received (09:00).
    g.when_in(
        pause(),
        &at_effective(NOW, "2026-02-05T08:00:00Z", None, &[Role::Handler], None),
    )
    .invalid(&["effective_time"]);
    // A pause cannot end before it started.
    let mut events = g.events.clone();
    events.extend(
        decide(
            replay(&events).as_ref(),
            pause(),
            &at_effective(LATER, "2026-02-10T00:00:00Z", None, &[Role::Handler], None),
        )
        .unwrap(),
    );
    let resume_early = at_effective(LATER, "2026-02-09T00:00:00Z", None, &[Role::Handler], None);
    match decide(
        replay(&events).as_ref(),
        Command::ResumeClock,
        &resume_early,
    ) {
        Err(DomainError::Invalid(v)) => {
            assert_eq!(v[0].field, "effective_time");
            assert!(
                v[0].description
                    .contains("before the pause it ends started"),
                "{v:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Nor an answer before the pause ended.
    events.extend(
        decide(
            replay(&events).as_ref(),
            Command::ResumeClock,
            &at_effective(LATER, "2026-02-12T00:00:00Z", None, &[Role::Handler], None),
        )
        .unwrap(),
    );
    let answer_early = at_effective(LATER, "2026-02-11T00:00:00Z", None, &[Role::Handler], None);
    match decide(replay(&events).as_ref(), answer(), &answer_early) {
        Err(DomainError::Invalid(v)) => {
            assert!(v[0].description.contains("the last pause ended"), "{v:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_step_inside_the_system_takes_no_effective_time() {
    given(registered())
        .when_in(
            Command::Assign {
                unit: "cards".into(),
                handler: "emp-3".into(),
            },
            &at_effective(NOW, "2026-02-05T09:30:00Z", None, &[Role::Handler], None),
        )
        .invalid(&["effective_time"]);
}

#[test]
fn back_dating_beyond_the_window_needs_a_reason_and_the_supervisor_role() {
    let g = given(assigned());
    let limit = Some("2026-02-12T00:00:00Z");
    let old = "2026-02-08T02:00:00Z";
    // Within the window: nothing more needed.
    assert!(g
        .when_in(
            pause(),
            &at_effective(LATER, "2026-02-13T00:00:00Z", None, &[Role::Handler], limit)
        )
        .result
        .is_ok());
    g.when_in(
        pause(),
        &at_effective(LATER, old, None, &[Role::Handler], limit),
    )
    .invalid(&["backdating_reason"]);
    g.when_in(
        pause(),
        &at_effective(
            LATER,
            old,
            Some("lab letter arrived today"),
            &[Role::Handler],
            limit,
        ),
    )
    .not_permitted();
    let events = g
        .when_in(
            pause(),
            &at_effective(
                LATER,
                old,
                Some("lab letter arrived today"),
                &[Role::Handler, Role::Supervisor],
                limit,
            ),
        )
        .result
        .unwrap();
    assert_eq!(
        events[0].effective.as_ref().unwrap().reason.as_deref(),
        Some("lab letter arrived today")
    );
}

// --- The complainant's satisfaction: once answered, once per answer ---

fn satisfaction(rating: u8, comment: &str) -> Command {
    Command::RecordSatisfaction {
        rating,
        comment: comment.into(),
    }
}

impl Given {
    /// The complaint after one more step, accepted, decided at `now`.
    fn and_at(mut self, now: &str, command: Command) -> Given {
        let ctx = Context {
            now: t(now),
            ..supervisor_handler()
        };
        let new = decide(self.state().as_ref(), command.clone(), &ctx)
            .unwrap_or_else(|e| panic!("given step {} refused: {e}", command.name()));
        self.events.extend(new);
        self
    }
}

#[test]
fn the_complainants_satisfaction_is_recorded_once_the_complaint_is_answered() {
    let state = given(answered())
        .when(satisfaction(4, "quick refund"))
        .then_status(
            Change::SatisfactionRecorded {
                rating: 4,
                comment: "quick refund".into(),
            },
            Status::Answered,
        );
    assert_eq!(
        state.satisfaction,
        Some(complaints_domain::Satisfaction {
            rating: 4,
            comment: "quick refund".into(),
            at: t(NOW),
        })
    );
    assert_eq!(
        state.steps.last().map(|s| s.event_type),
        Some("complaint.satisfaction_recorded"),
        "it happens outside the system"
    );
    // The comment is optional; under review and closed are answered too.
    let mut under_review = answered();
    under_review.push(Command::RequestReview {
        reason: "disagree".into(),
    });
    given(under_review).when(satisfaction(2, "")).then_status(
        Change::SatisfactionRecorded {
            rating: 2,
            comment: "".into(),
        },
        Status::UnderReview,
    );
    let mut closed = answered();
    closed.push(Command::Close);
    given(closed).when(satisfaction(5, "")).then_status(
        Change::SatisfactionRecorded {
            rating: 5,
            comment: "".into(),
        },
        Status::Closed,
    );
    // A retry is the same rating and comment.
    let recorded = Change::SatisfactionRecorded {
        rating: 4,
        comment: "quick refund".into(),
    };
    assert!(satisfaction(4, "quick refund").is_recorded_as(&recorded));
    assert!(!satisfaction(3, "quick refund").is_recorded_as(&recorded));
    assert!(!satisfaction(4, "slow").is_recorded_as(&recorded));
}

#[test]
fn satisfaction_is_refused_before_the_answer() {
    given(registered())
        .when(satisfaction(3, ""))
        .refused("not been answered");
    given(assigned())
        .when(satisfaction(3, "too slow"))
        .refused("not been answered");
}

#[test]
fn a_rating_outside_1_to_5_and_an_over_long_comment_are_all_reported_at_once() {
    let too_long = "x".repeat(complaints_domain::MAX_LONG + 1);
    given(answered())
        .when(satisfaction(0, &too_long))
        .invalid(&["rating", "comment"]);
    given(answered())
        .when(satisfaction(6, "fine"))
        .invalid(&["rating"]);
    // Before the answer too: fields are checked first.
    given(assigned())
        .when(satisfaction(6, &too_long))
        .invalid(&["rating", "comment"]);
    for rating in [1, 5] {
        assert!(given(answered())
            .when(satisfaction(rating, ""))
            .result
            .is_ok());
    }
}

#[test]
fn one_rating_per_answer_and_a_new_answer_may_be_rated_again() {
    let mut rated = answered();
    rated.push(satisfaction(2, "slow"));
    given(rated.clone())
        .when(satisfaction(4, "on reflection, fine"))
        .refused("already recorded");
    // A review that is asked for and confirmed leaves the same answer: still rated.
    let confirmed = given(rated.clone())
        .and_at(
            LATER,
            Command::RequestReview {
                reason: "disagree".into(),
            },
        )
        .and_at(
            LATER,
            Command::AnswerReview {
                outcome: ReviewOutcome::Confirmed,
                summary: "decision stands".into(),
            },
        );
    confirmed
        .when_in(satisfaction(1, ""), &ctx_as_at(LATER))
        .refused("already recorded");
    // A review that changed the outcome is a new answer.
    let changed = given(rated.clone())
        .and_at(
            LATER,
            Command::RequestReview {
                reason: "disagree".into(),
            },
        )
        .and_at(
            LATER,
            Command::AnswerReview {
                outcome: ReviewOutcome::Changed,
                summary: "more refunded".into(),
            },
        );
    assert!(changed
        .when_in(satisfaction(5, "thanks"), &ctx_as_at(LATER))
        .result
        .is_ok());
    // So is an answer after reopening; the earlier rating is kept until then.
    let mut closed = rated;
    closed.push(Command::Close);
    let reanswered = given(closed)
        .and_at(
            LATER,
            Command::Reopen {
                reason: "new evidence".into(),
            },
        )
        .and_at(LATER, answer());
    let before = reanswered.state().unwrap();
    assert_eq!(
        before.satisfaction.as_ref().map(|s| (s.rating, s.at)),
        Some((2, t(NOW))),
        "a new answer does not clear the rating"
    );
    let events = reanswered
        .when_in(satisfaction(5, "thanks"), &ctx_as_at(LATER))
        .result
        .unwrap();
    let after = evolve(Some(before), &events[0]).unwrap();
    assert_eq!(
        after.satisfaction.map(|s| (s.rating, s.comment, s.at)),
        Some((5, "thanks".to_string(), t(LATER)))
    );
}

/// The default context, deciding at `now`.
fn ctx_as_at(now: &str) -> Context {
    Context {
        now: t(now),
        ..ctx()
    }
}

#[test]
fn a_satisfaction_effective_time_may_not_precede_the_answer() {
    // Answered at NOW (10:00), received at 09:00.
    let g = given(answered());
    let early = at_effective(LATER, "2026-02-05T09:30:00Z", None, &[Role::Handler], None);
    match g.when_in(satisfaction(4, ""), &early).result {
        Err(DomainError::Invalid(v)) => {
            assert_eq!(v.len(), 1, "{v:?}");
            assert_eq!(v[0].field, "effective_time");
            assert!(
                v[0].description.contains("the complaint was answered"),
                "{v:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Given after the answer, recorded later: counted from when it was given.
    let given_at = at_effective(LATER, "2026-02-06T08:00:00Z", None, &[Role::Handler], None);
    let events = g.when_in(satisfaction(4, ""), &given_at).result.unwrap();
    assert_eq!(events[0].at, t(LATER));
    let state = evolve(g.state(), &events[0]).unwrap();
    assert_eq!(
        state.satisfaction.map(|s| s.at),
        Some(t("2026-02-06T08:00:00Z"))
    );
}

#[test]
fn a_merged_withdrawn_or_reopened_complaint_takes_no_rating() {
    let mut merged = registered();
    merged.push(Command::Merge {
        into: ComplaintId::new(Uuid::from_u128(0x43)),
        reason: "dup".into(),
    });
    given(merged).when(satisfaction(3, "")).refused("merged");
    let mut withdrawn = answered();
    withdrawn.push(Command::Withdraw {
        reason: "gone to the ombudsman".into(),
    });
    given(withdrawn)
        .when(satisfaction(3, ""))
        .refused("withdrawn");
    let mut reopened = answered();
    reopened.push(Command::Close);
    reopened.push(Command::Reopen {
        reason: "new evidence".into(),
    });
    given(reopened)
        .when(satisfaction(3, ""))
        .refused("in_progress");
}
