//! From what the user types to what the API takes: complaint names, times, redress
//! (`refund:3000:GBP`) and the enumerations (`--decision upheld`, `--channel email`, ...),
//! each mapped to its proto enum in one place.

use anyhow::{anyhow, Context};
use clap::ValueEnum;
use complaints_proto::complaints::v1 as api;

const COMPLAINTS: &str = "complaints/";

/// The resource name `complaints/<uuid>` of `complaints/<uuid>` or a bare uuid.
pub fn complaint_name(text: &str) -> String {
    if text.starts_with(COMPLAINTS) {
        text.to_owned()
    } else {
        format!("{COMPLAINTS}{text}")
    }
}

/// The event-log stream `complaint-<uuid>` of `complaints/<uuid>` or a bare uuid.
pub fn complaint_stream(text: &str) -> String {
    format!(
        "complaint-{}",
        text.strip_prefix(COMPLAINTS).unwrap_or(text)
    )
}

/// An RFC 3339 time, e.g. 2026-03-01T12:00:00Z.
pub fn time(text: &str) -> anyhow::Result<prost_types::Timestamp> {
    let t: jiff::Timestamp = text
        .parse()
        .with_context(|| format!("{text:?} is not an RFC 3339 time like 2026-03-01T12:00:00Z"))?;
    Ok(timestamp(t))
}

pub fn now() -> prost_types::Timestamp {
    timestamp(jiff::Timestamp::now())
}

fn timestamp(t: jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

/// Redress given as `kind:minor_units:CURRENCY`, e.g. `refund:3000:GBP`.
pub fn redress(items: &[String]) -> anyhow::Result<Vec<api::Redress>> {
    items.iter().map(|item| one_redress(item)).collect()
}

fn one_redress(item: &str) -> anyhow::Result<api::Redress> {
    let mut parts = item.split(':');
    let (Some(kind), Some(amount), Some(currency), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(anyhow!("redress {item:?} is not kind:minor_units:CURRENCY"));
    };
    let kind =
        RedressKind::from_str(kind, true).map_err(|_| anyhow!("unknown redress kind {kind:?}"))?;
    Ok(api::Redress {
        kind: kind.into(),
        amount: Some(api::Money {
            minor_units: amount
                .parse()
                .with_context(|| format!("{amount:?} is not an integer amount"))?,
            currency_code: currency.to_owned(),
        }),
    })
}

/// A command-line enumeration spelled in snake_case (`partly_upheld`), and the one mapping
/// of its values to the proto enum (and so to the `i32` the messages carry).
macro_rules! proto_enum {
    ($(#[$doc:meta])* $name:ident => $proto:ident { $($variant:ident => $wire:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
        #[value(rename_all = "snake_case")]
        pub enum $name {
            $($variant),+
        }

        impl From<$name> for api::$proto {
            fn from(value: $name) -> Self {
                match value {
                    $($name::$variant => api::$proto::$wire),+
                }
            }
        }

        impl From<$name> for i32 {
            fn from(value: $name) -> Self {
                api::$proto::from(value) as i32
            }
        }
    };
}

proto_enum! {
    /// How the complaint came in (`--channel`).
    Channel => Channel {
        Hotline => Hotline,
        Branch => Branch,
        Web => Web,
        Email => Email,
        Letter => Letter,
        App => App,
        RegulatorTransfer => RegulatorTransfer,
    }
}

proto_enum! {
    /// A complaint's status (`list --status`).
    Status => Status {
        Received => Received,
        Acknowledged => Acknowledged,
        InProgress => InProgress,
        Answered => Answered,
        UnderReview => UnderReview,
        Withdrawn => Withdrawn,
        Declined => Declined,
        Merged => Merged,
        Closed => Closed,
    }
}

proto_enum! {
    /// The final answer's decision (`answer --decision`).
    Decision => Decision {
        Upheld => Upheld,
        PartlyUpheld => PartlyUpheld,
        Rejected => Rejected,
    }
}

proto_enum! {
    /// The first part of `--redress kind:minor_units:CURRENCY`.
    RedressKind => RedressKind {
        Compensation => Compensation,
        Refund => Refund,
        Goodwill => Goodwill,
        Interest => Interest,
    }
}

proto_enum! {
    /// How an answer or holding response is sent (`--delivery`).
    Delivery => DeliveryMethod {
        Letter => DeliveryLetter,
        Email => DeliveryEmail,
        Phone => DeliveryPhone,
        InPerson => DeliveryInPerson,
        App => DeliveryApp,
    }
}

proto_enum! {
    /// What the investigation found at the root (`findings --root-cause`).
    RootCause => RootCause {
        ProductDesign => ProductDesign,
        ProcessFailure => ProcessFailure,
        StaffConduct => StaffConduct,
        SystemError => SystemError,
        Communication => Communication,
        ThirdParty => ThirdParty,
        Pricing => Pricing,
        NoFault => NoFault,
        Other => Other,
    }
}

proto_enum! {
    /// Why the clock stops (`pause --reason`).
    PauseReason => PauseReason {
        ExternalAppraisal => ExternalAppraisal,
        ExternalTesting => ExternalTesting,
        ExternalAssessment => ExternalAssessment,
        AwaitingCustomer => AwaitingCustomer,
    }
}

proto_enum! {
    /// Why a complaint goes to a regulator (`refer --reason`).
    ReferralReason => ReferralReason {
        ComplainantReferred => ComplainantReferred,
        RuleRequired => RuleRequired,
    }
}

proto_enum! {
    /// The answer to a review (`answer-review --outcome`).
    ReviewOutcome => ReviewOutcome {
        Confirmed => Confirmed,
        Changed => Changed,
    }
}

proto_enum! {
    /// What the regulator decided (`regulator-outcome --outcome`).
    RegulatorOutcome => RegulatorOutcome {
        UpheldForComplainant => UpheldForComplainant,
        UpheldForFirm => UpheldForFirm,
        Settled => Settled,
        Dismissed => Dismissed,
    }
}

proto_enum! {
    /// A clock's state (`clocks --state`).
    ClockState => ClockState {
        Running => ClockRunning,
        Paused => ClockPaused,
        AtRisk => ClockAtRisk,
        Breached => ClockBreached,
        Met => ClockMet,
        WindowOpen => ClockWindowOpen,
        WindowClosed => ClockWindowClosed,
    }
}

proto_enum! {
    /// Which way a regulator-queue item goes (`queue --direction`).
    Direction => QueueDirection {
        Outbound => Outbound,
        Inbound => Inbound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_uuid_and_a_resource_name_name_the_same_complaint() {
        let id = "3759d13f-d458-50ae-a244-88929c0aa5a6";
        let name = format!("complaints/{id}");
        assert_eq!(complaint_name(id), name);
        assert_eq!(complaint_name(&name), name);
        assert_eq!(complaint_stream(id), format!("complaint-{id}"));
        assert_eq!(complaint_stream(&name), format!("complaint-{id}"));
    }

    #[test]
    fn redress_is_kind_amount_and_currency() {
        let parsed = redress(&["refund:3000:GBP".into(), "GOODWILL:-5:EUR".into()]).unwrap();
        assert_eq!(parsed[0].kind, api::RedressKind::Refund as i32);
        assert_eq!(parsed[1].kind, api::RedressKind::Goodwill as i32);
        let amount = parsed[1].amount.as_ref().unwrap();
        assert_eq!(
            (amount.minor_units, amount.currency_code.as_str()),
            (-5, "EUR")
        );
        for bad in [
            "refund:3000",
            "refund:3000:GBP:x",
            "refund:lots:GBP",
            "bribe:1:GBP",
        ] {
            assert!(redress(&[bad.into()]).is_err(), "{bad}");
        }
    }

    /// Every value is spelled as the proto name lowercased, less its prefix (what the
    /// command line took before these enums), and every proto value but 0 has one.
    fn spelled_as_proto<E: ValueEnum + Copy + Into<i32>>(
        prefix: &str,
        proto_name: fn(i32) -> Option<&'static str>,
    ) {
        let mut names = Vec::new();
        for value in E::value_variants() {
            let spelled = value.to_possible_value().unwrap().get_name().to_uppercase();
            let wire: i32 = (*value).into();
            assert_eq!(
                proto_name(wire),
                Some(format!("{prefix}{spelled}").as_str())
            );
            names.push(wire);
        }
        let all: Vec<i32> = (1..64).filter(|&n| proto_name(n).is_some()).collect();
        assert_eq!(names, all, "every proto value but 0, in order");
    }

    #[test]
    fn values_are_spelled_as_before() {
        fn name<P: TryFrom<i32>>(n: i32, f: fn(&P) -> &'static str) -> Option<&'static str> {
            P::try_from(n).ok().as_ref().map(f)
        }
        spelled_as_proto::<Channel>("", |n| name(n, api::Channel::as_str_name));
        spelled_as_proto::<Status>("", |n| name(n, api::Status::as_str_name));
        spelled_as_proto::<Decision>("", |n| name(n, api::Decision::as_str_name));
        spelled_as_proto::<RedressKind>("", |n| name(n, api::RedressKind::as_str_name));
        spelled_as_proto::<Delivery>("DELIVERY_", |n| name(n, api::DeliveryMethod::as_str_name));
        spelled_as_proto::<RootCause>("", |n| name(n, api::RootCause::as_str_name));
        spelled_as_proto::<PauseReason>("", |n| name(n, api::PauseReason::as_str_name));
        spelled_as_proto::<ReferralReason>("", |n| name(n, api::ReferralReason::as_str_name));
        spelled_as_proto::<ReviewOutcome>("", |n| name(n, api::ReviewOutcome::as_str_name));
        spelled_as_proto::<RegulatorOutcome>("", |n| name(n, api::RegulatorOutcome::as_str_name));
        spelled_as_proto::<ClockState>("CLOCK_", |n| name(n, api::ClockState::as_str_name));
        spelled_as_proto::<Direction>("", |n| name(n, api::QueueDirection::as_str_name));
        assert_eq!(
            Decision::from_str("PARTLY_UPHELD", true),
            Ok(Decision::PartlyUpheld)
        );
    }

    #[test]
    fn times_are_rfc_3339() {
        assert_eq!(time("2026-03-02T09:00:00Z").unwrap().seconds, 1_772_442_000);
        let err = time("yesterday").unwrap_err().to_string();
        assert!(err.contains("not an RFC 3339 time"), "{err}");
    }
}
