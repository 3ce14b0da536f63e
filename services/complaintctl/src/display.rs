//! How results look on the terminal: a complaint after each step, a list of complaints,
//! a failure with the gRPC code and each bad field, and the small formats the other
//! commands share (enum names, times, the next page).

use complaints_proto::complaints::v1 as api;
use tonic_types::StatusExt;

/// The name of a proto enum value as the API spells it in Rust (`PartlyUpheld`), or `-`.
pub fn enum_name<T: TryFrom<i32> + std::fmt::Debug>(value: i32) -> String {
    T::try_from(value)
        .map(|v| format!("{v:?}"))
        .unwrap_or_else(|_| "-".into())
}

/// A time in RFC 3339, if there is one and it is in range.
pub fn timestamp(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
        .map(|t| t.to_string())
}

pub fn complaint(c: &api::Complaint) {
    let time =
        |t: &Option<prost_types::Timestamp>| timestamp(t.as_ref()).unwrap_or_else(|| "-".into());
    out!(
        "{}  version {}  {}",
        c.name,
        c.version,
        enum_name::<api::Status>(c.status)
    );
    out!(
        "  regime {} ({}), channel {}, received {}",
        c.regime,
        c.region,
        enum_name::<api::Channel>(c.channel),
        time(&c.receive_time)
    );
    out!(
        "  unit {}, product {}, category {}",
        c.unit,
        c.product,
        c.category
    );
    if !c.variant.is_empty() {
        out!("  variant {}", c.variant);
    }
    if let Some(a) = &c.assignment {
        out!("  assigned to {} / {}", a.unit, a.handler);
    }
    if c.decision != 0 {
        out!(
            "  decision {} at {}",
            enum_name::<api::Decision>(c.decision),
            time(&c.answer_time)
        );
    }
    if let Some(p) = &c.pending_extension {
        out!("  extension of {} days waiting for approval", p.days);
    }
    for e in &c.extensions {
        out!(
            "  extension of {} days approved at {}",
            e.days,
            time(&e.approved_time)
        );
    }
    for r in &c.referrals {
        out!(
            "  referred to {} at {} ({})",
            r.body,
            time(&r.referral_time),
            enum_name::<api::RegulatorOutcome>(r.outcome)
        );
    }
    // The rating only: the comment is personal data, as the complainant's other fields
    // this summary leaves out.
    if let Some(s) = &c.satisfaction {
        out!("  satisfaction {} of 5 at {}", s.rating, time(&s.at));
    }
    for p in &c.pauses {
        out!(
            "  paused ({}) from {} to {}",
            enum_name::<api::PauseReason>(p.reason),
            time(&p.start_time),
            time(&p.end_time)
        );
    }
    // Steps recorded after they happened: both times.
    for s in c.steps.iter().filter(|s| s.effective_time != s.record_time) {
        out!(
            "  {} happened {}, recorded {} by {}{}",
            s.event_type.trim_start_matches("complaint."),
            time(&s.effective_time),
            time(&s.record_time),
            s.actor,
            if s.backdating_reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", s.backdating_reason)
            }
        );
    }
}

/// One line a complaint.
pub fn complaints(page: &api::ListComplaintsResponse) {
    for s in &page.complaints {
        out!(
            "{}  v{}  {:<13} {:<12} {:<10} {}",
            s.name,
            s.version,
            enum_name::<api::Status>(s.status),
            s.unit,
            s.category,
            s.regime
        );
    }
    next_page(&page.next_page_token);
}

/// How to ask for the next page, if there is one.
pub fn next_page(token: &str) {
    if !token.is_empty() {
        out!("next page: --page-token {token}");
    }
}

/// A failure on standard error: a gRPC status as its code, message and bad fields;
/// anything else with its chain of causes.
pub fn error(e: &anyhow::Error) {
    match e.downcast_ref::<tonic::Status>() {
        Some(status) => {
            eprintln!("error: {:?}: {}", status.code(), status.message());
            let details = status.get_error_details();
            if let Some(bad) = details.bad_request() {
                for v in &bad.field_violations {
                    eprintln!("  {}: {}", v.field, v.description);
                }
            }
            if let Some(failure) = details.precondition_failure() {
                for v in &failure.violations {
                    eprintln!("  {} {}: {}", v.subject, v.r#type, v.description);
                }
            }
        }
        None => eprintln!("error: {e:#}"),
    }
}
