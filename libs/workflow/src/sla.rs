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

/// The back-dating window of a complaint of `regime` in `region` at `now`: effective times
/// before the start of the business day `days` business days back (on the region's
/// calendar, in the policy's time zone) need a reason and the supervisor role. Where the
/// calendar does not know the days (a year not published yet) it counts calendar days,
/// which asks for a reason sooner, never later.
pub fn backdating(
    engine: &complaints_sla::Engine,
    regime: &str,
    region: &str,
    now: jiff::Timestamp,
    days: u32,
) -> complaints_domain::Backdating {
    let window = format!("{days} business days");
    let policy = engine.policies.latest(regime).ok();
    let zone = policy
        .and_then(|p| jiff::tz::TimeZone::get(&p.time_zone).ok())
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let calendar = policy
        .and_then(|p| p.calendar_for(region).ok())
        .and_then(|id| engine.calendars.get(id).ok());
    let today = now.to_zoned(zone.clone()).date();
    let back = |mut date: jiff::civil::Date| -> Option<jiff::civil::Date> {
        let calendar = calendar?;
        let mut counted = 0;
        while counted < days {
            date = date.yesterday().ok()?;
            if calendar.is_working_day(date).ok()? {
                counted += 1;
            }
        }
        Some(date)
    };
    let date = back(today)
        .or_else(|| {
            today
                .checked_sub(jiff::Span::new().days(i64::from(days)))
                .ok()
        })
        .unwrap_or(today);
    let limit = date.to_zoned(zone).map(|z| z.timestamp()).unwrap_or(now);
    complaints_domain::Backdating { limit, window }
}
