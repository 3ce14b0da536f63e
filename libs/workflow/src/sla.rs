//! What registrations may name: the regimes and regions the SLA engine knows.

/// The regimes (latest policies) the engine knows, with the regions each has calendars for
/// and the variants its clocks define (their `category_lengths`).
pub fn regimes(engine: &complaints_sla::Engine) -> complaints_domain::Regimes {
    let mut known = std::collections::BTreeMap::new();
    let mut variants = std::collections::BTreeMap::new();
    for id in engine.policies.ids() {
        if let Ok(policy) = engine.policies.latest(id) {
            let regions = match policy.default_calendar {
                Some(_) => None,
                None => Some(policy.regions.keys().cloned().collect()),
            };
            known.insert(id.to_owned(), regions);
            variants.insert(id.to_owned(), policy.variants());
        }
    }
    complaints_domain::Regimes(known, complaints_domain::Variants(variants))
}
