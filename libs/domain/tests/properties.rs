//! Properties of the lifecycle over random command sequences: deciding never panics, a
//! refusal records nothing, an accepted step records exactly one event, and the state is
//! always the fold of the recorded events.

use std::collections::BTreeSet;

use complaints_domain::model::*;
use complaints_domain::{decide, evolve, replay, Command, Context, DomainError, Register, Rules};
use iso_currency::Currency;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use uuid::Uuid;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("ok".to_string()),
        Just("x".repeat(10_001)),
        "[a-z \\n]{1,12}"
    ]
}

fn when() -> impl Strategy<Value = Option<Timestamp>> {
    prop_oneof![
        Just(None),
        (0i64..40 * 86_400).prop_map(|s| Some(Timestamp::from_second(1_770_000_000 + s).unwrap())),
    ]
}

fn redress() -> impl Strategy<Value = Vec<Redress>> {
    proptest::collection::vec(
        (
            prop_oneof![Just(i64::MAX), Just(-1i64), 1i64..1_000_000],
            any::<bool>(),
        )
            .prop_map(|(minor_units, usd)| Redress {
                kind: RedressKind::Compensation,
                amount: Money {
                    minor_units,
                    currency: if usd { Currency::USD } else { Currency::GBP },
                },
            }),
        0..3,
    )
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Acknowledge),
        text().prop_map(|reason| Command::Decline { reason }),
        text().prop_map(|reason| Command::Merge {
            into: ComplaintId::new(Uuid::from_u128(9)),
            reason
        }),
        (
            text(),
            prop_oneof![Just("emp-9".to_string()), Just("emp-3".to_string())]
        )
            .prop_map(|(unit, handler)| Command::Assign { unit, handler }),
        text().prop_map(|reason| Command::ClassifyComplex { reason }),
        (text(), proptest::sample::select(RootCause::ALL)).prop_map(|(findings, root_cause)| {
            Command::RecordFindings {
                findings,
                root_cause,
                evidence: vec![],
            }
        }),
        (redress(), text())
            .prop_map(|(redress, rationale)| Command::ProposeRedress { redress, rationale }),
        (proptest::sample::select(Decision::ALL), redress(), text()).prop_map(
            |(decision, redress, summary)| Command::Answer {
                decision,
                redress,
                delivery: DeliveryMethod::Letter,
                summary
            }
        ),
        text().prop_map(|reason| Command::SendHoldingResponse {
            reason,
            delivery: DeliveryMethod::Email
        }),
        (0u32..70, text()).prop_map(|(days, reason)| Command::RequestExtension { days, reason }),
        when().prop_map(|complainant_notified_at| Command::ApproveExtension {
            complainant_notified_at
        }),
        (proptest::sample::select(PauseReason::ALL), when()).prop_map(
            |(reason, complainant_notified_at)| Command::PauseClock {
                reason,
                complainant_notified_at
            }
        ),
        Just(Command::ResumeClock),
        text().prop_map(|facts| Command::AddNewFacts { facts }),
        text().prop_map(|reason| Command::Withdraw { reason }),
        text().prop_map(|reason| Command::RequestReview { reason }),
        (proptest::sample::select(ReviewOutcome::ALL), text())
            .prop_map(|(outcome, summary)| Command::AnswerReview { outcome, summary }),
        (
            prop_oneof![Just("FOS".to_string()), Just("NFRA".to_string())],
            proptest::sample::select(ReferralReason::ALL)
        )
            .prop_map(|(body, reason)| Command::ReferToRegulator {
                body,
                reason,
                reference: String::new()
            }),
        (
            prop_oneof![Just("FOS".to_string()), Just("NFRA".to_string())],
            proptest::sample::select(RegulatorOutcome::ALL)
        )
            .prop_map(|(body, outcome)| Command::RecordRegulatorOutcome {
                body,
                outcome,
                reference: String::new()
            }),
        Just(Command::Close),
        text().prop_map(|reason| Command::Reopen { reason }),
    ]
}

fn registration() -> Command {
    Command::Register(Box::new(Register {
        id: ComplaintId::new(Uuid::from_u128(1)),
        channel: Channel::Web,
        complainant: Complainant {
            person_id: "p".into(),
            name: "n".into(),
            contact: "c".into(),
            id_number: String::new(),
        },
        unit: "u".into(),
        employee: Some("emp-9".into()),
        product: "p".into(),
        category: "c".into(),
        claim: "c".into(),
        facts: "f".into(),
        received_at: Timestamp::from_second(1_770_000_000).unwrap(),
        regime: "UK-FCA-DISP".into(),
        region: "GB-ENG".into(),
        regulator: None,
    }))
}

proptest! {
    #[test]
    fn random_lives_keep_the_state_the_fold_of_its_events(
        steps in proptest::collection::vec((command(), 0i64..5 * 86_400, any::<bool>()), 0..60),
        register_first in any::<bool>(),
    ) {
        let mut now = Timestamp::from_second(1_770_000_100).unwrap();
        let mut events = Vec::new();
        let mut state = None;
        let mut commands: Vec<(Command, i64, bool)> = Vec::new();
        if register_first {
            commands.push((registration(), 0, false));
        }
        commands.extend(steps);
        for (command, advance, supervisor) in commands {
            now = now.checked_add(SignedDuration::from_secs(advance)).unwrap();
            let mut roles = BTreeSet::from([Role::Handler]);
            if supervisor {
                roles.insert(Role::Supervisor);
            }
            let ctx = Context { now, actor: "user:p".into(), roles, rules: Rules::default(), regimes: Default::default() };
            match decide(state.as_ref(), command, &ctx) {
                Ok(new) => {
                    prop_assert_eq!(new.len(), 1);
                    let before = state.clone();
                    state = evolve(state, &new[0]);
                    prop_assert!(state.is_some());
                    prop_assert_ne!(&before, &state, "an accepted step changes the state");
                    events.extend(new);
                }
                Err(DomainError::Invalid(v)) => prop_assert!(!v.is_empty()),
                Err(DomainError::WrongState(r) | DomainError::NotPermitted(r)) => prop_assert!(!r.is_empty()),
            }
            prop_assert_eq!(&state, &replay(&events));
            if let Some(c) = &state {
                prop_assert_eq!(c.decision.is_some(), c.answered_at.is_some());
                prop_assert!(c.pauses.iter().filter(|p| p.until.is_none()).count() <= 1);
                prop_assert_eq!(c.status.is_ended(), c.ended_at.is_some(), "status {}", c.status);
            }
        }
    }
}
