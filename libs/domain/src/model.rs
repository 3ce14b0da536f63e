//! The values complaints are made of.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// The id of a complaint; its resource name is `complaints/{uuid}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComplaintId(Uuid);

impl ComplaintId {
    /// Wraps a UUID.
    pub const fn new(id: Uuid) -> Self {
        Self(id)
    }

    /// The UUID.
    pub const fn uuid(&self) -> Uuid {
        self.0
    }

    /// The resource name, `complaints/{uuid}`.
    pub fn name(&self) -> String {
        format!("complaints/{}", self.0)
    }

    /// The id of the event-log stream that holds this complaint's events.
    pub fn stream(&self) -> String {
        format!("complaint-{}", self.0)
    }

    /// Parses a resource name `complaints/{uuid}` (or a bare uuid).
    pub fn parse_name(name: &str) -> Option<Self> {
        let id = name.strip_prefix("complaints/").unwrap_or(name);
        Uuid::parse_str(id).ok().filter(|u| !u.is_nil()).map(Self)
    }
}

impl fmt::Display for ComplaintId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "complaints/{}", self.0)
    }
}

macro_rules! names {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant),*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The stable lowercase name, as stored and as shown.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ();

            fn from_str(s: &str) -> Result<Self, ()> {
                match s {
                    $($text => Ok($name::$variant),)*
                    _ => Err(()),
                }
            }
        }
    };
}

names! {
    /// How the complaint reached the firm.
    Channel {
        Hotline => "hotline",
        Branch => "branch",
        Web => "web",
        Email => "email",
        Letter => "letter",
        App => "app",
        RegulatorTransfer => "regulator_transfer",
    }
}

names! {
    /// Where a complaint is in its life.
    Status {
        Received => "received",
        Acknowledged => "acknowledged",
        InProgress => "in_progress",
        Answered => "answered",
        UnderReview => "under_review",
        Withdrawn => "withdrawn",
        Declined => "declined",
        Merged => "merged",
        Closed => "closed",
    }
}

impl Status {
    /// Handling has not produced a final answer yet, and the complaint is still live.
    pub fn is_before_answer(self) -> bool {
        matches!(
            self,
            Status::Received | Status::Acknowledged | Status::InProgress
        )
    }

    /// The complaint is finished: nothing happens to it unless it is reopened.
    pub fn is_ended(self) -> bool {
        matches!(
            self,
            Status::Withdrawn | Status::Declined | Status::Merged | Status::Closed
        )
    }
}

names! {
    /// The firm's decision on the complaint.
    Decision {
        Upheld => "upheld",
        PartlyUpheld => "partly_upheld",
        Rejected => "rejected",
    }
}

names! {
    /// The kind of a redress payment.
    RedressKind {
        Compensation => "compensation",
        Refund => "refund",
        Goodwill => "goodwill",
        Interest => "interest",
    }
}

names! {
    /// How an answer reached the complainant.
    DeliveryMethod {
        Letter => "letter",
        Email => "email",
        Phone => "phone",
        InPerson => "in_person",
        App => "app",
    }
}

names! {
    /// Root-cause categories, so repeated problems are fixed at the source.
    RootCause {
        ProductDesign => "product_design",
        ProcessFailure => "process_failure",
        StaffConduct => "staff_conduct",
        SystemError => "system_error",
        Communication => "communication",
        ThirdParty => "third_party",
        Pricing => "pricing",
        NoFault => "no_fault",
        Other => "other",
    }
}

names! {
    /// Why a clock may pause. Only external appraisal, testing and assessment stop a
    /// statutory clock (CN-CBIRC); the SLA engine decides per regime.
    PauseReason {
        ExternalAppraisal => "external_appraisal",
        ExternalTesting => "external_testing",
        ExternalAssessment => "external_assessment",
        AwaitingCustomer => "awaiting_customer",
    }
}

names! {
    /// Whether a regulator or ombudsman referral came from the complainant or a rule.
    ReferralReason {
        ComplainantReferred => "complainant_referred",
        RuleRequired => "rule_required",
    }
}

names! {
    /// A review's result.
    ReviewOutcome {
        Confirmed => "confirmed",
        Changed => "changed",
    }
}

names! {
    /// What the regulator or ombudsman decided.
    RegulatorOutcome {
        UpheldForComplainant => "upheld_for_complainant",
        UpheldForFirm => "upheld_for_firm",
        Settled => "settled",
        Dismissed => "dismissed",
    }
}

names! {
    /// Roles of the people and services that act on complaints. `personal_data` is a
    /// grant rather than a job: it lets a role that otherwise does not (an auditor,
    /// compliance) see complainants' personal data. `compliance` only reads: complaints,
    /// lists, SLA views, the board and the regulator queue.
    Role {
        Intake => "intake",
        Handler => "handler",
        Supervisor => "supervisor",
        RegulatorGateway => "regulator_gateway",
        Auditor => "auditor",
        Compliance => "compliance",
        Operations => "operations",
        Admin => "admin",
        PersonalData => "personal_data",
    }
}

/// The person who complains. Personal data: encrypted at rest per person (see the
/// security design); never logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complainant {
    /// Stable id of the person in the firm's systems (not personal data itself).
    pub person_id: String,
    pub name: String,
    /// E-mail, phone or postal address.
    pub contact: String,
    /// National id or customer number; may be empty.
    pub id_number: String,
}

/// A complaint received from a regulator: whose, their reference, and their deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegulatorTransfer {
    pub regulator: String,
    pub reference: String,
    pub deadline: jiff::Timestamp,
}

/// An amount of money in integer minor units (cents) of an ISO 4217 currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub minor_units: i64,
    pub currency: iso_currency::Currency,
}

/// One redress payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redress {
    pub kind: RedressKind,
    pub amount: Money,
}
