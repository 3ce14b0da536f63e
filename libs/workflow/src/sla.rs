//! What the SLA engine needs to know about a complaint, from its state.

use complaints_domain::Complaint;
use complaints_sla::{Facts, PauseFact};
use jiff::Timestamp;

/// The SLA facts of a complaint (no personal data).
pub fn facts(c: &Complaint) -> Facts {
    let r = &c.registration;
    Facts {
        received_at: r.received_at,
        region: r.region.clone(),
        category: r.category.clone(),
        complex: c.complex,
        holding_response_at: c.holding_responses.first().copied(),
        extensions: c.extensions.clone(),
        pauses: c
            .pauses
            .iter()
            .map(|p| PauseFact {
                reason: p.reason.as_str().to_owned(),
                from: p.from,
                until: p.until,
            })
            .collect(),
        new_facts_at: c.new_facts_at.clone(),
        acknowledged_at: c.acknowledged_at,
        answered_at: c.answered_at.or_else(|| ended_without_answer(c)),
    }
}

/// A complaint withdrawn, declined or merged stops its clocks the day it ended.
fn ended_without_answer(c: &Complaint) -> Option<Timestamp> {
    use complaints_domain::model::Status;
    match c.status {
        Status::Withdrawn | Status::Declined | Status::Merged => c.ended_at,
        _ => None,
    }
}

/// The regimes (latest policies) the engine knows, with the regions each has calendars for.
pub fn regimes(engine: &complaints_sla::Engine) -> complaints_domain::Regimes {
    let mut known = std::collections::BTreeMap::new();
    for id in engine.policies.ids() {
        if let Ok(policy) = engine.policies.latest(id) {
            let regions = match policy.default_calendar {
                Some(_) => None,
                None => Some(policy.regions.keys().cloned().collect()),
            };
            known.insert(id.to_owned(), regions);
        }
    }
    complaints_domain::Regimes(known)
}
