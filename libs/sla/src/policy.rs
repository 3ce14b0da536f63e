//! Regimes as versioned policies, written as data. The built-in ones (`policies/*.toml`)
//! and an operator's own (internal targets, a new regulator) have the same form.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Deserialize;

use crate::error::{Result, SlaError};

/// How long a clock runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Length {
    /// Calendar days after the start day; due at the end of the last day.
    CalendarDays(u32),
    /// Calendar weeks (7 days each).
    Weeks(u32),
    /// Calendar months (same day of the month, clamped to its end).
    Months(u32),
    /// Working days after the start day, on the region's calendar.
    BusinessDays(u32),
    /// Exact hours from the start instant.
    Hours(u32),
    /// Exact minutes from the start instant.
    Minutes(u32),
}

impl Length {
    /// Counted in whole days (so due at the end of, or close of business on, a day).
    pub fn is_day_based(self) -> bool {
        !matches!(self, Length::Hours(_) | Length::Minutes(_))
    }
}

impl std::fmt::Display for Length {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Length::CalendarDays(n) => write!(f, "{n} calendar days"),
            Length::Weeks(n) => write!(f, "{n} weeks"),
            Length::Months(n) => write!(f, "{n} months"),
            Length::BusinessDays(n) => write!(f, "{n} business days"),
            Length::Hours(n) => write!(f, "{n} hours"),
            Length::Minutes(n) => write!(f, "{n} minutes"),
        }
    }
}

/// When on its last day a day-based clock falls due.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DueAt {
    /// The end of the day (midnight after it) in the policy's time zone.
    EndOfDay,
    /// Close of business at this local time, e.g. "17:00".
    CloseOfBusiness(String),
}

/// What starts a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// The firm received the complaint (for CFPB: sent to the company; for FDA: became
    /// aware).
    Received,
    /// The final answer was sent.
    Answered,
}

/// What stops a clock (it is then met, or breached if after its due time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    Acknowledged,
    Answered,
    /// A window for the complainant (review, ombudsman): it never "breaches" for the firm;
    /// it only closes.
    WindowCloses,
}

/// One breach tier: over by at most `up_to_minutes` (the last tier has none).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub name: String,
    #[serde(default)]
    pub up_to_minutes: Option<u64>,
}

/// Extensions a clock allows.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionRule {
    /// Most days all approved extensions may add.
    pub max_days: u32,
    /// Whether an extension extends the complex length (CN: the +30 of especially complex
    /// complaints comes on top of the 30 days of complex ones).
    #[serde(default)]
    pub on_top_of_complex: bool,
}

/// One clock of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockRule {
    pub id: String,
    pub title: String,
    pub starts: Start,
    pub stops: Stop,
    pub length: Length,
    /// The length when the firm classified the complaint complex.
    #[serde(default)]
    pub complex_length: Option<Length>,
    /// The length once a holding response was sent (UK PSD: 35 business days).
    #[serde(default)]
    pub holding_response_length: Option<Length>,
    /// Lengths by complaint category (AU: superannuation, default notices, hardship).
    #[serde(default)]
    pub category_lengths: BTreeMap<String, Length>,
    #[serde(default)]
    pub extension: Option<ExtensionRule>,
    /// Pause reasons that stop this clock (none: it never pauses).
    #[serde(default)]
    pub pause_reasons: Vec<String>,
    /// New facts restart the clock from the new material.
    #[serde(default)]
    pub restart_on_new_facts: bool,
    #[serde(default = "end_of_day")]
    pub due: DueAt,
    /// Percent of the time used at which the clock is at risk, ascending.
    #[serde(default = "default_at_risk")]
    pub at_risk: Vec<u8>,
    #[serde(default)]
    pub breach_tiers: Vec<Tier>,
    /// A rule that the complaint must go to this regulator or ombudsman (e.g. "FOS") once
    /// the clock breaches: the breach puts an outbound item in the regulator queue.
    #[serde(default)]
    pub on_breach_refer_to: Option<String>,
}

fn end_of_day() -> DueAt {
    DueAt::EndOfDay
}

fn default_at_risk() -> Vec<u8> {
    vec![50, 75, 90]
}

/// A regime (or internal target) as a versioned policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub id: String,
    pub version: u32,
    pub title: String,
    /// The rule it implements, for explanations.
    #[serde(default)]
    pub source: String,
    /// IANA time zone whose days the clocks count, e.g. "Europe/London".
    pub time_zone: String,
    /// Region code -> calendar id (e.g. GB-WLS -> GB-ENG).
    #[serde(default)]
    pub regions: BTreeMap<String, String>,
    /// The calendar for regions not listed, if any.
    #[serde(default)]
    pub default_calendar: Option<String>,
    #[serde(rename = "clock")]
    pub clocks: Vec<ClockRule>,
}

impl Policy {
    /// The variants its clocks define: the names of their `category_lengths`, which a
    /// complaint selects by its variant or, naming none, by its category.
    pub fn variants(&self) -> std::collections::BTreeSet<String> {
        self.clocks
            .iter()
            .flat_map(|c| c.category_lengths.keys().cloned())
            .collect()
    }

    /// The calendar id for `region`.
    pub fn calendar_for(&self, region: &str) -> Result<&str> {
        self.regions
            .get(region)
            .or(self.default_calendar.as_ref())
            .map(String::as_str)
            .ok_or_else(|| SlaError::UnknownRegion {
                policy: self.id.clone(),
                region: region.to_owned(),
            })
    }

    fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if jiff::tz::TimeZone::get(&self.time_zone).is_err() {
            problems.push(format!("time zone {:?} is unknown", self.time_zone));
        }
        if self.clocks.is_empty() {
            problems.push("no clocks".into());
        }
        for clock in &self.clocks {
            if !clock.at_risk.windows(2).all(|w| w[0] < w[1])
                || clock.at_risk.iter().any(|p| *p == 0 || *p >= 100)
            {
                problems.push(format!(
                    "clock {}: at_risk must ascend within 1..99",
                    clock.id
                ));
            }
            if let DueAt::CloseOfBusiness(t) = &clock.due {
                if t.parse::<jiff::civil::Time>().is_err() {
                    problems.push(format!(
                        "clock {}: close of business {t:?} is not a time like 17:00",
                        clock.id
                    ));
                }
            }
            let lengths = std::iter::once(clock.length)
                .chain(clock.complex_length)
                .chain(clock.holding_response_length)
                .chain(clock.category_lengths.values().copied());
            let mut day_based = None;
            for l in lengths {
                if *day_based.get_or_insert(l.is_day_based()) != l.is_day_based() {
                    problems.push(format!("clock {}: mixes day and minute lengths", clock.id));
                }
            }
        }
        problems
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(rename = "policy")]
    policies: Vec<Policy>,
}

pub(crate) const BUILT_IN: &[(&str, &str)] =
    &[("regimes.toml", include_str!("../policies/regimes.toml"))];

/// Every loaded policy, by id and version.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    by_id: HashMap<String, BTreeMap<u32, Arc<Policy>>>,
}

impl Policies {
    /// The regimes of REGIMES.md, as shipped.
    pub fn built_in() -> Self {
        let mut policies = Policies::default();
        for (name, text) in BUILT_IN {
            policies
                .add_toml(name, text)
                .unwrap_or_else(|e| panic!("built-in policies {name} are invalid: {e}"));
        }
        policies
    }

    /// Adds the policies in a TOML file; a policy with an id and version already loaded
    /// replaces it. Every problem in the file is reported at once.
    pub fn add_toml(&mut self, origin: &str, text: &str) -> Result<()> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| SlaError::Invalid {
            what: format!("policy file {origin}"),
            reason: e.to_string(),
        })?;
        let problems: Vec<String> = file
            .policies
            .iter()
            .flat_map(|p| {
                p.check()
                    .into_iter()
                    .map(move |m| format!("{} v{}: {m}", p.id, p.version))
            })
            .collect();
        if !problems.is_empty() {
            return Err(SlaError::Invalid {
                what: format!("policy file {origin}"),
                reason: problems.join("; "),
            });
        }
        for policy in file.policies {
            self.by_id
                .entry(policy.id.clone())
                .or_default()
                .insert(policy.version, Arc::new(policy));
        }
        Ok(())
    }

    /// Adds every `*.toml` in `dir` (operator policies), in name order.
    pub fn add_dir(&mut self, dir: &std::path::Path) -> Result<()> {
        for (origin, text) in crate::files::toml_files(dir, "policy")? {
            self.add_toml(&origin, &text)?;
        }
        Ok(())
    }

    /// The latest version of a policy.
    pub fn latest(&self, id: &str) -> Result<&Arc<Policy>> {
        self.by_id
            .get(id)
            .and_then(|versions| versions.values().next_back())
            .ok_or_else(|| SlaError::UnknownPolicy(id.to_owned()))
    }

    /// A given version of a policy.
    pub fn version(&self, id: &str, version: u32) -> Result<&Arc<Policy>> {
        self.by_id
            .get(id)
            .and_then(|versions| versions.get(&version))
            .ok_or_else(|| SlaError::UnknownPolicy(format!("{id} v{version}")))
    }

    /// Every policy id.
    pub fn ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.by_id.keys().map(String::as_str).collect();
        ids.sort();
        ids
    }
}
