//! Properties of the lifecycle over random command sequences: deciding never panics, a
//! refusal records nothing, an accepted step records exactly one event (which its command
//! is recognised in, for retries), and the state is always the fold of the recorded events.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::collections::BTreeSet;

use complaints_domain::model::*;
use complaints_domain::testing::{command, Values};
use complaints_domain::{decide, evolve, replay, Command, Context, DomainError, Register, Rules};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use uuid::Uuid;

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
        variant: None,
    }))
}

proptest! {
    #[test]
    fn random_lives_keep_the_state_the_fold_of_its_events(
        steps in proptest::collection::vec((command(Values::Edgy), 0i64..5 * 86_400, any::<bool>()), 0..60),
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
            let ctx = Context { now, actor: "user:p".into(), roles, rules: Rules::default(), regimes: Default::default(), effective: None, backdating: None };
            match decide(state.as_ref(), command.clone(), &ctx) {
                Ok(new) => {
                    prop_assert_eq!(new.len(), 1);
                    // A retry of this request is recognised as the same request.
                    prop_assert!(command.is_recorded_as(&new[0].change), "{:?}", command);
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
                if let Some(s) = &c.satisfaction {
                    prop_assert!((1..=5).contains(&s.rating), "rating {}", s.rating);
                    prop_assert!(c.answered_at.is_some(), "rated before any answer");
                }
            }
        }
    }
}
