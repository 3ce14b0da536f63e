//! Due dates and their explanations, and what a clock looks like at a given moment.
//! Pure: "now" is an argument, never read from the wall clock.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp, ToSpan};

use crate::calendar::Calendars;
use crate::error::{Result, SlaError};
use crate::policy::{ClockRule, DueAt, Length, Policies, Policy, Start, Stop};

/// A clock pause as the complaint records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PauseFact {
    /// The pause reason's stable name, e.g. `external_appraisal`.
    pub reason: String,
    /// When it started and ended (effective: what is counted).
    pub from: Timestamp,
    pub until: Option<Timestamp>,
    /// When its start and end were recorded: later than they happened for a pause
    /// recorded after the fact, which the explanation says.
    pub recorded_from: Timestamp,
    pub recorded_until: Option<Timestamp>,
}

impl PauseFact {
    /// "recorded on ..." for the parts of the pause recorded later than they happened (a
    /// minute's slack), or nothing.
    fn recorded_late(&self, zone: &TimeZone) -> String {
        let late = |happened: Timestamp, recorded: Timestamp| {
            recorded.duration_since(happened) > SignedDuration::from_mins(1)
        };
        let mut parts = Vec::new();
        if late(self.from, self.recorded_from) {
            parts.push(format!(
                "its start on {}",
                self.recorded_from.to_zoned(zone.clone())
            ));
        }
        if let (Some(until), Some(recorded)) = (self.until, self.recorded_until) {
            if late(until, recorded) {
                parts.push(format!("its end on {}", recorded.to_zoned(zone.clone())));
            }
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" (recorded after the fact: {})", parts.join(", "))
        }
    }
}

/// What the engine needs to know about a complaint: all of it from its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub received_at: Timestamp,
    pub region: String,
    pub category: String,
    /// The variant named at registration; empty: the category selects one.
    pub variant: String,
    pub complex: bool,
    pub holding_response_at: Option<Timestamp>,
    /// Approved extensions: days, and when approved.
    pub extensions: Vec<(u32, Timestamp)>,
    pub pauses: Vec<PauseFact>,
    pub new_facts_at: Vec<Timestamp>,
    pub acknowledged_at: Option<Timestamp>,
    pub answered_at: Option<Timestamp>,
}

impl Facts {
    /// A complaint received at `received_at` in `region`, with nothing else yet.
    pub fn received(received_at: Timestamp, region: &str) -> Self {
        Self {
            received_at,
            region: region.to_owned(),
            category: String::new(),
            variant: String::new(),
            complex: false,
            holding_response_at: None,
            extensions: Vec::new(),
            pauses: Vec::new(),
            new_facts_at: Vec::new(),
            acknowledged_at: None,
            answered_at: None,
        }
    }
}

/// A computed due time, with everything that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub policy: String,
    pub policy_version: u32,
    pub clock: String,
    pub title: String,
    /// When the clock started (after any restart).
    pub started_at: Timestamp,
    /// The last day, for day-based clocks, in the policy's time zone.
    pub due_date: Option<Date>,
    /// The instant the clock falls due (for an end-of-day clock, the midnight after the
    /// last day: on time is strictly before it).
    pub due_at: Timestamp,
    /// The length that applied.
    pub length: Length,
    pub calendar: Option<String>,
    /// When the clock stopped (answered, acknowledged), if it has.
    pub stopped_at: Option<Timestamp>,
    /// An open pause, since when.
    pub paused_since: Option<Timestamp>,
    /// The steps that produced the due time, in order, for people.
    pub explanation: Vec<String>,
}

/// The times of a computed clock, borrowed: what [`Engine::assess_times`] needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockTimes<'a> {
    pub started_at: Timestamp,
    pub due_date: Option<Date>,
    pub due_at: Timestamp,
    /// The business-day calendar, for clocks counted in working days.
    pub calendar: Option<&'a str>,
    pub stopped_at: Option<Timestamp>,
    pub paused_since: Option<Timestamp>,
}

/// A computed due time without its names or explanation (see [`Engine::timings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub started_at: Timestamp,
    pub due_date: Option<Date>,
    pub due_at: Timestamp,
    pub length: Length,
    /// Counted in working days on the region's calendar.
    pub business_days: bool,
    pub stopped_at: Option<Timestamp>,
    pub paused_since: Option<Timestamp>,
}

impl Timing {
    /// The [`Due`] of these times: clock `rule` of `policy`, for a complaint from `region`.
    pub fn due(
        &self,
        policy: &Policy,
        rule: &ClockRule,
        region: &str,
        explanation: Vec<String>,
    ) -> Due {
        Due {
            policy: policy.id.clone(),
            policy_version: policy.version,
            clock: rule.id.clone(),
            title: rule.title.clone(),
            started_at: self.started_at,
            due_date: self.due_date,
            due_at: self.due_at,
            length: self.length,
            calendar: match self.business_days {
                true => policy.calendar_for(region).ok().map(str::to_owned),
                false => None,
            },
            stopped_at: self.stopped_at,
            paused_since: self.paused_since,
            explanation,
        }
    }
}

/// The state of a clock at a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockState {
    Running,
    Paused,
    /// At or past this percentage of its time.
    AtRisk(u8),
    /// Past due (still running, or stopped late), by this much, in this tier.
    Breached {
        over: SignedDuration,
        tier: Option<String>,
    },
    /// Stopped in time.
    Met,
    /// A complainant's window that is still open / has closed.
    WindowOpen,
    WindowClosed,
}

/// A clock at a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub state: ClockState,
    /// Share of the clock's time used, in percent (may pass 100).
    pub percent_used: f64,
    pub elapsed: SignedDuration,
    pub remaining: SignedDuration,
    /// Working days left until the due date (day-based clocks with a calendar).
    pub remaining_business_days: Option<i64>,
}

/// The steps behind a due time, collected only when asked for.
struct Explanation {
    enabled: bool,
    lines: Vec<String>,
}

impl Explanation {
    fn new(enabled: bool) -> Self {
        Self {
            enabled,
            lines: Vec::new(),
        }
    }

    fn note(&mut self, line: impl FnOnce() -> String) {
        if self.enabled {
            self.lines.push(line());
        }
    }
}

/// Calendars and policies together.
#[derive(Debug, Clone)]
pub struct Engine {
    pub calendars: Calendars,
    pub policies: Policies,
}

fn tz(policy: &Policy) -> Result<TimeZone> {
    TimeZone::get(&policy.time_zone)
        .map_err(|e| SlaError::TimeZone(policy.time_zone.clone(), e.to_string()))
}

fn add_days(date: Date, span: Span) -> Result<Date> {
    date.checked_add(span).map_err(|e| SlaError::Invalid {
        what: "date arithmetic".into(),
        reason: e.to_string(),
    })
}

fn ceil_days(d: SignedDuration) -> i64 {
    let secs = d.as_secs();
    if secs <= 0 {
        0
    } else {
        (secs + 86_399) / 86_400
    }
}

impl Engine {
    /// The built-in calendars and regimes.
    pub fn built_in() -> Self {
        Self {
            calendars: Calendars::built_in(),
            policies: Policies::built_in(),
        }
    }

    /// Every clock of the policy whose start has happened, with its due time.
    pub fn due_dates(&self, policy: &Policy, facts: &Facts) -> Result<Vec<Due>> {
        let mut out = Vec::new();
        for rule in &policy.clocks {
            if let Some(due) = self.due(policy, rule, facts)? {
                out.push(due);
            }
        }
        Ok(out)
    }

    /// One clock's due time with its explanation, or `None` if it has not started.
    pub fn due(&self, policy: &Policy, rule: &ClockRule, facts: &Facts) -> Result<Option<Due>> {
        self.due_explained(policy, rule, facts, true)
    }

    /// Every started clock's due time, without explanations (for projections that keep
    /// many: the explanation is built on request, by [`Engine::due`]).
    pub fn due_dates_unexplained(&self, policy: &Policy, facts: &Facts) -> Result<Vec<Due>> {
        let mut out = Vec::new();
        for rule in &policy.clocks {
            if let Some(due) = self.due_explained(policy, rule, facts, false)? {
                out.push(due);
            }
        }
        Ok(out)
    }

    /// Every started clock's times, by index of its rule in the policy: what
    /// [`Engine::due_dates_unexplained`] gives, without the names (for projections that
    /// keep a million of them).
    pub fn timings(&self, policy: &Policy, facts: &Facts) -> Result<Vec<(usize, Timing)>> {
        let zone = tz(policy)?;
        let mut out = Vec::with_capacity(policy.clocks.len());
        for (i, rule) in policy.clocks.iter().enumerate() {
            let mut why = Explanation::new(false);
            if let Some(t) = self.timing(policy, rule, facts, &zone, &mut why)? {
                out.push((i, t));
            }
        }
        Ok(out)
    }

    fn due_explained(
        &self,
        policy: &Policy,
        rule: &ClockRule,
        facts: &Facts,
        explain: bool,
    ) -> Result<Option<Due>> {
        let zone = tz(policy)?;
        let mut why = Explanation::new(explain);
        let Some(t) = self.timing(policy, rule, facts, &zone, &mut why)? else {
            return Ok(None);
        };
        Ok(Some(t.due(policy, rule, &facts.region, why.lines)))
    }

    fn timing(
        &self,
        policy: &Policy,
        rule: &ClockRule,
        facts: &Facts,
        zone: &TimeZone,
        why: &mut Explanation,
    ) -> Result<Option<Timing>> {
        why.note(|| {
            format!(
                "policy {} v{} ({}), clock {}: {}",
                policy.id, policy.version, policy.source, rule.id, rule.title
            )
        });
        let (mut started_at, start_name) = match rule.starts {
            Start::Received => (facts.received_at, "received"),
            Start::Answered => match facts.answered_at {
                Some(at) => (at, "answered"),
                None => return Ok(None),
            },
        };
        why.note(|| {
            format!(
                "starts when {start_name}: {}",
                started_at.to_zoned(zone.clone())
            )
        });
        let stopped_at = match rule.stops {
            Stop::Acknowledged => facts.acknowledged_at,
            Stop::Answered => facts.answered_at,
            Stop::WindowCloses => None,
        };
        if rule.restart_on_new_facts {
            if let Some(latest) = facts
                .new_facts_at
                .iter()
                .copied()
                .filter(|at| *at > started_at && stopped_at.is_none_or(|s| *at < s))
                .max()
            {
                started_at = latest;
                why.note(|| {
                    format!(
                        "restarted by new facts at {}",
                        latest.to_zoned(zone.clone())
                    )
                });
            }
        }

        // The length that applies.
        let mut length = rule.length;
        if !facts.variant.is_empty() {
            // Named explicitly: it alone decides (a variant this clock does not define
            // keeps the clock's own length).
            if let Some(l) = rule.category_lengths.get(&facts.variant) {
                length = *l;
                why.note(|| format!("variant {}: {l}", facts.variant));
            }
        } else if let Some(l) = rule.category_lengths.get(&facts.category) {
            length = *l;
            why.note(|| format!("category {}: {l}", facts.category));
        }
        if let (true, Some(l)) = (facts.complex, rule.complex_length) {
            length = l;
            why.note(|| format!("classified complex: {l}"));
        }
        if let (Some(at), Some(l)) = (facts.holding_response_at, rule.holding_response_length) {
            length = l;
            why.note(|| {
                format!(
                    "holding response sent at {}: {l}",
                    at.to_zoned(zone.clone())
                )
            });
        }
        let mut extra_days: u32 = 0;
        if let Some(ext) = &rule.extension {
            let approved: u32 = facts.extensions.iter().map(|(d, _)| *d).sum();
            if approved > 0 {
                let granted = approved.min(ext.max_days);
                if ext.on_top_of_complex {
                    if let Some(l) = rule.complex_length {
                        if length != l {
                            length = l;
                            why.note(|| {
                                format!("an extension implies especially complex: from {l}")
                            });
                        }
                    }
                }
                extra_days = granted;
                why.note(|| {
                    format!(
                        "approved and notified extensions: +{granted} days{}",
                        if granted < approved {
                            format!(" (of {approved} asked; at most {})", ext.max_days)
                        } else {
                            String::new()
                        }
                    )
                });
            }
        }

        // Pauses this clock honours.
        let mut paused = SignedDuration::ZERO;
        let mut paused_since = None;
        for p in &facts.pauses {
            if !rule.pause_reasons.iter().any(|r| r == &p.reason) || p.from < started_at {
                continue;
            }
            match p.until {
                Some(until) => {
                    let d = until.duration_since(p.from);
                    paused += d;
                    why.note(|| {
                        format!(
                            "paused for {} from {} to {} (not counted){}",
                            p.reason,
                            p.from.to_zoned(zone.clone()),
                            until.to_zoned(zone.clone()),
                            p.recorded_late(zone)
                        )
                    });
                }
                None => {
                    paused_since = Some(p.from);
                    why.note(|| {
                        format!(
                            "paused for {} since {} (due time moves while paused){}",
                            p.reason,
                            p.from.to_zoned(zone.clone()),
                            p.recorded_late(zone)
                        )
                    });
                }
            }
        }

        let (due_date, due_at, business_days) = if length.is_day_based() {
            let start_date = started_at.to_zoned(zone.clone()).date();
            let calendar_id = policy.calendar_for(&facts.region).ok();
            let mut date = match length {
                Length::CalendarDays(n) => add_days(start_date, (n as i64).days())?,
                Length::Weeks(n) => add_days(start_date, (7 * n as i64).days())?,
                Length::Months(n) => add_days(start_date, (n as i64).months())?,
                Length::BusinessDays(n) => {
                    let id = calendar_id.ok_or_else(|| SlaError::UnknownRegion {
                        policy: policy.id.clone(),
                        region: facts.region.clone(),
                    })?;
                    let calendar = self.calendars.get(id)?;
                    why.note(|| {
                        format!(
                            "business days on calendar {} ({})",
                            calendar.id, calendar.name
                        )
                    });
                    calendar.nth_working_day_after(start_date, n)?
                }
                Length::Hours(_) | Length::Minutes(_) => return Err(mixed(rule)),
            };
            why.note(|| format!("{length} after {start_date}: {date}"));
            if extra_days > 0 {
                date = add_days(date, (extra_days as i64).days())?;
                why.note(|| format!("+{extra_days} days: {date}"));
            }
            let paused_days = ceil_days(paused);
            if paused_days > 0 {
                date = match (length, calendar_id) {
                    (Length::BusinessDays(_), Some(id)) => {
                        let calendar = self.calendars.get(id)?;
                        calendar.nth_working_day_after(date, paused_days as u32)?
                    }
                    _ => add_days(date, paused_days.days())?,
                };
                why.note(|| format!("+{paused_days} paused days (not counted): {date}"));
            }
            if let Some(id) = calendar_id {
                if self.calendars.get(id).is_ok_and(|c| c.is_provisional(date)) {
                    why.note(|| format!("note: calendar {id} is provisional for {}", date.year()));
                }
            }
            let due_at = match &rule.due {
                DueAt::EndOfDay => {
                    let midnight = add_days(date, 1.day())?;
                    why.note(|| {
                        format!(
                            "due by the end of {date} ({}): due_time is the midnight that ends it, {midnight}T00:00 local",
                            policy.time_zone
                        )
                    });
                    midnight.to_zoned(zone.clone())
                }
                DueAt::CloseOfBusiness(time) => {
                    let t: jiff::civil::Time =
                        time.parse().map_err(|e: jiff::Error| SlaError::Invalid {
                            what: format!("close of business of {}", rule.id),
                            reason: e.to_string(),
                        })?;
                    why.note(|| {
                        format!(
                            "due by close of business ({time}) on {date} ({})",
                            policy.time_zone
                        )
                    });
                    date.to_datetime(t).to_zoned(zone.clone())
                }
            }
            .map_err(|e| SlaError::TimeZone(policy.time_zone.clone(), e.to_string()))?
            .timestamp();
            (
                Some(date),
                due_at,
                calendar_id.is_some() && matches!(length, Length::BusinessDays(_)),
            )
        } else {
            let span = match length {
                Length::Hours(h) => SignedDuration::from_hours(h as i64),
                Length::Minutes(m) => SignedDuration::from_mins(m as i64),
                _ => return Err(mixed(rule)),
            };
            let due = started_at
                .checked_add(span + paused + SignedDuration::from_hours(24 * extra_days as i64))
                .map_err(|e| SlaError::Invalid {
                    what: "time arithmetic".into(),
                    reason: e.to_string(),
                })?;
            why.note(|| {
                format!(
                    "{length} after the start: due at {}",
                    due.to_zoned(zone.clone())
                )
            });
            (None, due, false)
        };
        Ok(Some(Timing {
            started_at,
            due_date,
            due_at,
            length,
            business_days,
            stopped_at,
            paused_since,
        }))
    }

    /// The clock `due` (of `rule`) as it stands at `now`.
    pub fn assess(&self, rule: &ClockRule, due: &Due, now: Timestamp) -> Assessment {
        self.assess_times(
            rule,
            &ClockTimes {
                started_at: due.started_at,
                due_date: due.due_date,
                due_at: due.due_at,
                calendar: due.calendar.as_deref(),
                stopped_at: due.stopped_at,
                paused_since: due.paused_since,
            },
            now,
        )
    }

    /// [`Engine::assess`] from the times alone (for projections that keep no [`Due`]).
    pub fn assess_times(
        &self,
        rule: &ClockRule,
        due: &ClockTimes<'_>,
        now: Timestamp,
    ) -> Assessment {
        let end = due.stopped_at.map_or(now, |s| s.min(now));
        let total = due.due_at.duration_since(due.started_at);
        let elapsed = end.duration_since(due.started_at);
        let percent_used = if total.is_zero() {
            100.0
        } else {
            elapsed.as_secs_f64() / total.as_secs_f64() * 100.0
        };
        let remaining = due.due_at.duration_since(end);
        let remaining_business_days = match (due.calendar, due.due_date) {
            (Some(id), Some(date)) => self.calendars.get(id).ok().and_then(|c| {
                let today = end.to_zoned(TimeZone::UTC).date();
                c.working_days_between(today, date).ok()
            }),
            _ => None,
        };
        let state = if rule.stops == Stop::WindowCloses {
            if now < due.due_at {
                ClockState::WindowOpen
            } else {
                ClockState::WindowClosed
            }
        } else if let Some(stopped) = due.stopped_at.filter(|s| *s <= now) {
            if stopped < due.due_at {
                ClockState::Met
            } else {
                breached(rule, stopped.duration_since(due.due_at))
            }
        } else if now >= due.due_at {
            breached(rule, now.duration_since(due.due_at))
        } else if due.paused_since.is_some() {
            ClockState::Paused
        } else {
            match rule
                .at_risk
                .iter()
                .rev()
                .find(|p| percent_used >= **p as f64)
            {
                Some(p) => ClockState::AtRisk(*p),
                None => ClockState::Running,
            }
        };
        Assessment {
            state,
            percent_used,
            elapsed,
            remaining,
            remaining_business_days,
        }
    }
}

fn breached(rule: &ClockRule, over: SignedDuration) -> ClockState {
    let minutes = (over.as_secs().max(0) as u64).div_ceil(60);
    let tier = rule
        .breach_tiers
        .iter()
        .find(|t| t.up_to_minutes.is_none_or(|max| minutes <= max))
        .map(|t| t.name.clone());
    ClockState::Breached { over, tier }
}

/// Policies are checked on load not to mix day and minute lengths; kept total anyway.
fn mixed(rule: &ClockRule) -> SlaError {
    SlaError::Invalid {
        what: format!("clock {}", rule.id),
        reason: "mixes day and minute lengths".into(),
    }
}
