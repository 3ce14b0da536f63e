//! The one generator of random commands for property tests (feature `testing`): the
//! domain's lifecycle properties and the SLA board's fold are driven by the same
//! commands, so a step the domain can take is a step the board is tested with.
//!
//! Every command but registration is generated ([`command`]); a new command does not
//! compile until it is added here (see [`covered`]).

use iso_currency::Currency;
use jiff::Timestamp;
use proptest::prelude::*;
use uuid::Uuid;

use crate::model::*;
use crate::Command;

/// How wild the generated values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// Plausible values, so that most steps the state allows are accepted (for
    /// projections, which only see accepted steps).
    Plausible,
    /// Edge values too: empty and oversized texts, negative and overflowing amounts,
    /// times far from now (for the domain's validation).
    Edgy,
}

/// Says, for every command, that [`command`] generates it: a new command is a compile
/// error here until the generator below makes it too.
pub fn covered(command: &Command) -> bool {
    match command {
        // Registration is made by each test itself (its regime, region and times matter).
        Command::Register(_) => false,
        Command::Acknowledge
        | Command::Decline { .. }
        | Command::Merge { .. }
        | Command::Assign { .. }
        | Command::ClassifyComplex { .. }
        | Command::RecordFindings { .. }
        | Command::ProposeRedress { .. }
        | Command::Answer { .. }
        | Command::SendHoldingResponse { .. }
        | Command::RequestExtension { .. }
        | Command::ApproveExtension { .. }
        | Command::PauseClock { .. }
        | Command::ResumeClock
        | Command::AddNewFacts { .. }
        | Command::Withdraw { .. }
        | Command::RequestReview { .. }
        | Command::AnswerReview { .. }
        | Command::ReferToRegulator { .. }
        | Command::RecordRegulatorOutcome { .. }
        | Command::RecordSatisfaction { .. }
        | Command::Close
        | Command::Reopen { .. } => true,
    }
}

fn text(values: Values) -> BoxedStrategy<String> {
    match values {
        Values::Plausible => prop_oneof![Just("r".to_string()), "[a-z ]{1,12}"].boxed(),
        Values::Edgy => prop_oneof![
            Just(String::new()),
            Just("ok".to_string()),
            Just("x".repeat(10_001)),
            "[a-z \\n]{1,12}"
        ]
        .boxed(),
    }
}

/// A time around 2026-02-02 (up to 40 days later), or none.
fn when() -> impl Strategy<Value = Option<Timestamp>> {
    prop_oneof![
        Just(None),
        (0i64..40 * 86_400).prop_map(|s| Timestamp::from_second(1_770_000_000 + s).ok()),
    ]
}

fn redress(values: Values) -> BoxedStrategy<Vec<Redress>> {
    let minor_units = match values {
        Values::Plausible => (1i64..1_000_000).boxed(),
        Values::Edgy => prop_oneof![Just(i64::MAX), Just(-1i64), 1i64..1_000_000].boxed(),
    };
    proptest::collection::vec(
        (minor_units, any::<bool>()).prop_map(|(minor_units, usd)| Redress {
            kind: RedressKind::Compensation,
            amount: Money {
                minor_units,
                currency: if usd { Currency::USD } else { Currency::GBP },
            },
        }),
        0..3,
    )
    .boxed()
}

fn body() -> impl Strategy<Value = String> {
    prop_oneof![Just("FOS".to_string()), Just("NFRA".to_string())]
}

/// Any command but registration, with `values`.
pub fn command(values: Values) -> impl Strategy<Value = Command> {
    let days = match values {
        Values::Plausible => (1u32..40).boxed(),
        Values::Edgy => (0u32..70).boxed(),
    };
    let rating = match values {
        Values::Plausible => (1u8..=5).boxed(),
        Values::Edgy => prop_oneof![Just(0u8), Just(6u8), Just(u8::MAX), 1u8..=5].boxed(),
    };
    prop_oneof![
        Just(Command::Acknowledge),
        text(values).prop_map(|reason| Command::Decline { reason }),
        text(values).prop_map(|reason| Command::Merge {
            into: ComplaintId::new(Uuid::from_u128(9)),
            reason
        }),
        (
            prop_oneof![Just("u2".to_string()), text(values)],
            prop_oneof![Just("emp-9".to_string()), Just("emp-3".to_string())]
        )
            .prop_map(|(unit, handler)| Command::Assign { unit, handler }),
        text(values).prop_map(|reason| Command::ClassifyComplex { reason }),
        (text(values), proptest::sample::select(RootCause::ALL)).prop_map(
            |(findings, root_cause)| Command::RecordFindings {
                findings,
                root_cause,
                evidence: vec![],
            }
        ),
        (redress(values), text(values))
            .prop_map(|(redress, rationale)| Command::ProposeRedress { redress, rationale }),
        (
            proptest::sample::select(Decision::ALL),
            redress(values),
            text(values)
        )
            .prop_map(|(decision, redress, summary)| Command::Answer {
                decision,
                redress,
                delivery: DeliveryMethod::Letter,
                summary
            }),
        text(values).prop_map(|reason| Command::SendHoldingResponse {
            reason,
            delivery: DeliveryMethod::Email
        }),
        (days, text(values)).prop_map(|(days, reason)| Command::RequestExtension { days, reason }),
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
        text(values).prop_map(|facts| Command::AddNewFacts { facts }),
        prop_oneof![Just(String::new()), text(values)]
            .prop_map(|reason| Command::Withdraw { reason }),
        text(values).prop_map(|reason| Command::RequestReview { reason }),
        (proptest::sample::select(ReviewOutcome::ALL), text(values))
            .prop_map(|(outcome, summary)| Command::AnswerReview { outcome, summary }),
        (body(), proptest::sample::select(ReferralReason::ALL)).prop_map(|(body, reason)| {
            Command::ReferToRegulator {
                body,
                reason,
                reference: String::new(),
            }
        }),
        (body(), proptest::sample::select(RegulatorOutcome::ALL)).prop_map(|(body, outcome)| {
            Command::RecordRegulatorOutcome {
                body,
                outcome,
                reference: String::new(),
            }
        }),
        (rating, prop_oneof![Just(String::new()), text(values)])
            .prop_map(|(rating, comment)| Command::RecordSatisfaction { rating, comment }),
        Just(Command::Close),
        text(values).prop_map(|reason| Command::Reopen { reason }),
    ]
    .prop_filter("registration is made by the test", covered)
}
